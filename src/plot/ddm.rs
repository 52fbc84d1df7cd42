//! The figures of the DDM analyses: `ddm simulate`'s trajectories ([`trajectories`]) and
//! `ddm decompose`'s drift fields ([`asymmetry`], [`irreversibility`]).

use super::*;

/// Time series of the first trajectory and phase portrait (an oblique 3-D projection as well
/// for d ≥ 3; a histogram for d = 1) of `paths` (`[K, steps, d]` row-major, `dt` apart).
pub fn trajectories(
    shape: &[usize],
    paths: &[f32],
    dt: f64,
    title: &str,
    path: &Path,
) -> anyhow::Result<()> {
    let &[k, n, d] = shape else {
        anyhow::bail!("expected a [trajectories, steps, d] array, got shape {shape:?}");
    };
    let out = Trajectories {
        k,
        n,
        d,
        data: paths.iter().map(|&x| x as f64).collect(),
        dt,
    };
    let cols = if d <= 2 { 2 } else { 3 };
    let mut fig = Figure::new(cols, 1, 420, 360);
    fig.set_title(title);
    let t: Vec<f64> = (0..n).map(|i| i as f64 * dt).collect();
    {
        let ax = fig.axes(0, 0);
        ax.set_title("time series (trajectory 1)")
            .set_xlabel("t")
            .set_ylabel("z");
        for j in 0..d {
            ax.line(&t, &out.series(0, j), palette(j));
        }
        let names: Vec<String> = (0..d).map(|j| format!("z{}", j + 1)).collect();
        let entries: Vec<(&str, [u8; 3])> = names
            .iter()
            .enumerate()
            .map(|(j, n)| (n.as_str(), palette(j)))
            .collect();
        ax.legend(&entries);
    }
    if d == 1 {
        let ax = fig.axes(1, 0);
        let xs = out.data.clone();
        let (lo, hi) = xs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        let h = crate::stats::histogram(&xs, lo, hi + 1e-9, 50);
        let w = (hi - lo) / 50.0;
        let cx: Vec<f64> = (0..50).map(|i| lo + (i as f64 + 0.5) * w).collect();
        let dens: Vec<f64> = h.iter().map(|v| v / w.max(1e-12)).collect();
        ax.set_title("histogram")
            .set_xlabel("z1")
            .set_ylabel("density")
            .line(&cx, &dens, palette(0));
    } else {
        phase_portraits(&mut fig, &out);
    }
    fig.save_png(path)
}

/// The (z1, z2) — or (z1, z3) — portrait, and for d ≥ 3 an oblique projection.
fn phase_portraits(fig: &mut Figure, out: &Trajectories) {
    let d = out.d;
    {
        let ax = fig.axes(1, 0);
        ax.set_title("phase portrait")
            .set_xlabel("z1")
            .set_ylabel(if d == 2 { "z2" } else { "z3" });
        let b = if d == 2 { 1 } else { 2 };
        for i in 0..out.k.min(8) {
            ax.line(&out.series(i, 0), &out.series(i, b), palette(i));
        }
    }
    if d >= 3 {
        // Oblique 3-D projection: rotate (z1, z2) by 35° and tilt by 20°.
        let (ca, sa) = (35f64.to_radians().cos(), 35f64.to_radians().sin());
        let (ct, st) = (20f64.to_radians().cos(), 20f64.to_radians().sin());
        let ax = fig.axes(2, 0);
        ax.set_title("3-D projection (z1, z2, z3)")
            .set_axis_visible(false);
        for i in 0..out.k.min(8) {
            let (z1, z2, z3) = (out.series(i, 0), out.series(i, 1), out.series(i, 2));
            let px: Vec<f64> = z1.iter().zip(&z2).map(|(a, b)| a * ca - b * sa).collect();
            let py: Vec<f64> = (0..z1.len())
                .map(|t| z3[t] * ct + (z1[t] * sa + z2[t] * ca) * st)
                .collect();
            ax.line(&px, &py, palette(i));
        }
    }
}

/// A network's latent drift and its parts on a grid over the training box (`ddm decompose`):
/// for d = 1 on a line of `g` points, for d ≥ 2 on the `g × g` (z1, z2) plane (row `j`, column
/// `i` at index `j g + i`) through the mean of the other coordinates. Vector fields are
/// `[points, d]` row-major.
#[derive(Clone, Debug, Default)]
pub struct DriftFields {
    /// Latent dimension.
    pub d: usize,
    /// Grid points per axis.
    pub g: usize,
    /// The box, one `(lo, hi)` per coordinate.
    pub bbox: Vec<(f64, f64)>,
    /// z1 of each grid point.
    pub x: Vec<f64>,
    /// z2 of each grid point (0 for d = 1).
    pub y: Vec<f64>,
    /// The drift F of the full W.
    pub full: Vec<f32>,
    /// The drift F_s of the symmetric part W_s alone.
    pub symmetric: Vec<f32>,
    /// F_a = F − F_s.
    pub antisymmetric: Vec<f32>,
    /// The stationary density p (a kernel estimate from the network's samples).
    pub density: Vec<f64>,
    /// The diffusion matrix D = A Aᵀ / 2 (`[d, d]`).
    pub diffusion: Vec<f64>,
    /// The reversible part f_rev = D ∇log p (0 for d = 1).
    pub reversible: Vec<f64>,
    /// The irreversible part f_irr = F − f_rev.
    pub irreversible: Vec<f64>,
}

impl DriftFields {
    /// Coordinate `j` of an `f32` field.
    fn comp(&self, v: &[f32], j: usize) -> Vec<f64> {
        (0..self.x.len())
            .map(|i| v[i * self.d + j] as f64)
            .collect()
    }
    /// Coordinate `j` of an `f64` field.
    fn comp64(&self, v: &[f64], j: usize) -> Vec<f64> {
        (0..self.x.len()).map(|i| v[i * self.d + j]).collect()
    }
}

/// `decompose_asymmetry.png`: F, F_s and F_a (and |F_a| / |F| for d ≥ 2).
pub fn asymmetry(f: &DriftFields, path: &Path) -> anyhow::Result<()> {
    let (gx, gy) = (&f.x, &f.y);
    if f.d == 1 {
        let mut fig = Figure::new(1, 1, 520, 380);
        let ax = fig.axes(0, 0);
        ax.set_title("drift: full (blue), W_s only (orange), W_a part (green)")
            .set_xlabel("z1")
            .set_ylabel("F(z)");
        ax.line(gx, &f.comp(&f.full, 0), palette(0))
            .line(gx, &f.comp(&f.symmetric, 0), palette(1))
            .line(gx, &f.comp(&f.antisymmetric, 0), palette(2))
            .hline(0.0, [128, 128, 128]);
        return fig.save_png(path);
    }
    let mut fig = Figure::new(2, 2, 400, 380);
    fig.set_title("asymmetry decomposition of the latent drift (z1, z2 plane)");
    let panels = [
        (0, 0, "F: full W", &f.full, 0),
        (1, 0, "F_s: W_s only", &f.symmetric, 1),
        (0, 1, "F_a = F - F_s", &f.antisymmetric, 2),
    ];
    for (c, r, title, v, colour) in panels {
        fig.axes(c, r)
            .set_title(title)
            .set_xlabel("z1")
            .set_ylabel("z2")
            .quiver(gx, gy, &f.comp(v, 0), &f.comp(v, 1), palette(colour));
    }
    let (d, fa, fg) = (f.d, &f.antisymmetric, &f.full);
    let ratio: Vec<f64> = (0..f.x.len())
        .map(|i| {
            let a = ((fa[i * d] as f64).powi(2) + (fa[i * d + 1] as f64).powi(2)).sqrt();
            let f = ((fg[i * d] as f64).powi(2) + (fg[i * d + 1] as f64).powi(2)).sqrt();
            a / f.max(1e-9)
        })
        .collect();
    fig.axes(1, 1)
        .set_title("|F_a| / |F|")
        .set_xlabel("z1")
        .set_ylabel("z2")
        .heatmap(&ratio, f.g, f.g, f.bbox[0], f.bbox[1]);
    fig.save_png(path)
}

/// `decompose_irreversibility.png`: the stationary density, f_rev and f_irr (d = 1: the
/// density alone).
pub fn irreversibility(f: &DriftFields, path: &Path) -> anyhow::Result<()> {
    let (gx, gy) = (&f.x, &f.y);
    if f.d == 1 {
        let mut fig = Figure::new(1, 1, 520, 380);
        let ax = fig.axes(0, 0);
        ax.set_title("stationary density (1-D: detailed balance, f_irr = 0)")
            .set_xlabel("z1")
            .set_ylabel("p");
        ax.line(gx, &f.density, palette(0));
        return fig.save_png(path);
    }
    let mut fig = Figure::new(3, 1, 400, 380);
    fig.set_title("time-irreversibility: F = f_rev + f_irr, f_rev = D grad log p");
    fig.axes(0, 0)
        .set_title("stationary density p")
        .set_xlabel("z1")
        .set_ylabel("z2")
        .heatmap(&f.density, f.g, f.g, f.bbox[0], f.bbox[1]);
    let (rx, ry) = (f.comp64(&f.reversible, 0), f.comp64(&f.reversible, 1));
    let (ix, iy) = (f.comp64(&f.irreversible, 0), f.comp64(&f.irreversible, 1));
    fig.axes(1, 0)
        .set_title("f_rev (reversible)")
        .set_xlabel("z1")
        .set_ylabel("z2")
        .quiver(gx, gy, &rx, &ry, palette(0));
    fig.axes(2, 0)
        .set_title("f_irr (irreversible)")
        .set_xlabel("z1")
        .set_ylabel("z2")
        .quiver(gx, gy, &ix, &iy, palette(3));
    fig.save_png(path)
}
