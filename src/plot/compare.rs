//! The target SDE and the trained network in one picture: `ddm simulate`'s
//! `simulate_compare.png`.
//!
//! The two simulations of a DDM run look alike by design (the network was trained to reproduce
//! the target), so two separate portraits read as one picture shown twice. This one draws both
//! on the same axes in two colours, and beside it each coordinate's stationary density for
//! both with their difference, so that what agrees and what does not is visible.

use super::curves::emptiest_corner;
use super::*;

/// Fraction of each trajectory's recorded points (its start, where it still depends on the
/// initial state) left out of the densities.
pub const BURN_IN: f64 = 0.2;
/// Bins of each density.
const BINS: usize = 40;
/// Trajectories drawn in the phase portrait, per simulation.
const MAX_DRAWN: usize = 8;

/// Colours of the target, the network and their difference.
const TARGET: Color = PALETTE[0];
const NETWORK: Color = PALETTE[1];
const DIFFERENCE: Color = PALETTE[3];

/// `k` recorded trajectories of `n` points in `d` dimensions, `dt` apart: `data` is
/// `[k, n, d]` in row-major order (the layout of `ddm simulate`'s `.npy`).
#[derive(Clone, Debug, PartialEq)]
pub struct Trajectories {
    /// Number of trajectories.
    pub k: usize,
    /// Recorded points per trajectory.
    pub n: usize,
    /// Dimension of the state.
    pub d: usize,
    /// The points, `[k, n, d]` row-major.
    pub data: Vec<f64>,
    /// Time between recorded points.
    pub dt: f64,
}

impl Trajectories {
    /// Coordinate `j` of trajectory `i` over time.
    pub fn series(&self, i: usize, j: usize) -> Vec<f64> {
        (0..self.n)
            .map(|t| self.data[(i * self.n + t) * self.d + j])
            .collect()
    }

    /// Coordinate `j` of every trajectory's points after the first [`BURN_IN`] of them.
    pub fn stationary(&self, j: usize) -> Vec<f64> {
        let from = (self.n as f64 * BURN_IN).floor() as usize;
        (0..self.k)
            .flat_map(|i| (from..self.n).map(move |t| (i, t)))
            .map(|(i, t)| self.data[(i * self.n + t) * self.d + j])
            .collect()
    }

    /// Reads `<stem>.npy` (`[k, n, d]`) and the `dt_record` of `<stem>.json` that `ddm
    /// simulate` wrote into `dir`.
    pub fn read(dir: &Path, stem: &str) -> anyhow::Result<Self> {
        let npy = dir.join(format!("{stem}.npy"));
        let a = crate::npy::read_npy(&npy)?;
        let &[k, n, d] = a.shape.as_slice() else {
            anyhow::bail!(
                "{}: expected a [trajectories, steps, d] array, got shape {:?}",
                npy.display(),
                a.shape
            );
        };
        let json = dir.join(format!("{stem}.json"));
        let text =
            fs::read_to_string(&json).with_context(|| format!("cannot read {}", json.display()))?;
        let meta: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", json.display()))?;
        let dt = meta["dt_record"]
            .as_f64()
            .with_context(|| format!("{} has no number `dt_record`", json.display()))?;
        Ok(Trajectories {
            k,
            n,
            d,
            data: a.data,
            dt,
        })
    }
}

/// Densities of two samples on a common range: bin centres, the two densities, and their total
/// variation distance (half the L1 distance of the bin masses: 0 identical, 1 disjoint).
pub(super) fn densities(a: &[f64], b: &[f64], bins: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>, f64) {
    let (lo, hi) = a
        .iter()
        .chain(b)
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    let (lo, hi) = if lo <= hi {
        fix_range(lo, hi)
    } else {
        (0.0, 1.0)
    };
    // The top edge nudged up so that the largest value falls in the last bin.
    let hi = hi + (hi - lo) * 1e-9;
    let w = (hi - lo) / bins as f64;
    let (pa, pb) = (
        crate::stats::histogram(a, lo, hi, bins),
        crate::stats::histogram(b, lo, hi, bins),
    );
    let tv = 0.5 * pa.iter().zip(&pb).map(|(x, y)| (x - y).abs()).sum::<f64>();
    let centres = (0..bins).map(|i| lo + (i as f64 + 0.5) * w).collect();
    let dens = |p: Vec<f64>| p.into_iter().map(|m| m / w).collect();
    (centres, dens(pa), dens(pb), tv)
}

/// Draws `target` and `network` (the same dimension) into one figure at `path`: their phase
/// portraits overlaid (a time series of the first trajectory when d = 1; coordinates 1 and 2,
/// or 1 and 3 when d ≥ 3), then per coordinate (up to 3) the two stationary densities and
/// their difference, titled with their total variation distance.
pub fn compare_trajectories(
    target: &Trajectories,
    network: &Trajectories,
    path: &Path,
) -> anyhow::Result<()> {
    if target.d != network.d || target.d == 0 {
        anyhow::bail!(
            "cannot compare a {}-dimensional target with a {}-dimensional network",
            target.d,
            network.d
        );
    }
    let d = target.d;
    let shown = d.min(3);
    let panels = 1 + shown;
    let cols = if panels == 4 { 2 } else { panels };
    let mut fig = Figure::new(cols, panels.div_ceil(cols), 420, 360);
    fig.set_title("target SDE (blue) and trained network (orange)");
    let both = [
        (target, TARGET, "target SDE"),
        (network, NETWORK, "network"),
    ];
    {
        let ax = fig.axes_at(0);
        if d == 1 {
            ax.set_title("time series (trajectory 1)")
                .set_xlabel("t")
                .set_ylabel("z1");
            for (tr, color, _) in both {
                let t: Vec<f64> = (0..tr.n).map(|i| i as f64 * tr.dt).collect();
                if tr.k > 0 {
                    ax.line(&t, &tr.series(0, 0), color);
                }
            }
        } else {
            let b = if d == 2 { 1 } else { 2 };
            ax.set_title("phase portrait")
                .set_xlabel("z1")
                .set_ylabel(&format!("z{}", b + 1));
            for (tr, color, _) in both {
                for i in 0..tr.k.min(MAX_DRAWN) {
                    ax.line(&tr.series(i, 0), &tr.series(i, b), color);
                }
            }
        }
        let corner = emptiest_corner(ax);
        ax.legend_at(&[("target SDE", TARGET), ("network", NETWORK)], corner);
    }
    for j in 0..shown {
        let (x, pt, pn, tv) = densities(&target.stationary(j), &network.stationary(j), BINS);
        let diff: Vec<f64> = pn.iter().zip(&pt).map(|(n, t)| n - t).collect();
        let ax = fig.axes_at(1 + j);
        ax.set_title(&format!(
            "z{} density (TV distance {})",
            j + 1,
            format_compact(tv)
        ))
        .set_xlabel(&format!("z{}", j + 1))
        .hline(0.0, GREY)
        .line_width(&x, &pt, TARGET, 2)
        .line_width(&x, &pn, NETWORK, 2)
        .line(&x, &diff, DIFFERENCE);
        let corner = emptiest_corner(ax);
        ax.legend_at(
            &[
                ("target", TARGET),
                ("network", NETWORK),
                ("network − target", DIFFERENCE),
            ],
            corner,
        );
    }
    fig.save_png(path)
}

/// When the run directory `dir` holds both `ddm simulate --target`'s and `ddm simulate`'s
/// default outputs (`simulate_target.*`, `simulate.*`), draws [`compare_trajectories`] of them
/// into `dir/simulate_compare.png` and returns its path; `Ok(None)` when either is missing.
pub fn ddm_comparison(dir: &Path) -> anyhow::Result<Option<std::path::PathBuf>> {
    let present = |stem: &str| dir.join(format!("{stem}.npy")).is_file();
    if !(present("simulate_target") && present("simulate")) {
        return Ok(None);
    }
    let target = Trajectories::read(dir, "simulate_target")?;
    let network = Trajectories::read(dir, "simulate")?;
    let out = dir.join("simulate_compare.png");
    compare_trajectories(&target, &network, &out)?;
    Ok(Some(out))
}
