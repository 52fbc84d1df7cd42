//! `curves.png`: a run's training curves, from its `metrics.jsonl`.
//!
//! One panel per distinct quantity: a quantity logged under two names with the same values is
//! drawn once (its title names both), a `<name>_data`/`<name>_model` pair shares a panel, a
//! series that is mostly noise around its trend is drawn faint with its running mean over it,
//! and where the model has a reference level (the NLM's thermal energy N·T/2 and its data's
//! mean pixel) it is drawn as a labelled horizontal line.

use super::*;

/// Keys of `metrics.jsonl` that are bookkeeping, not curves.
pub(super) const NOT_CURVES: &[&str] = &["step", "wall_s", "pattern"];

/// A series is smoothed when its raw total variation is more than this many times its running
/// mean's: it wiggles far more than its trend moves.
pub(super) const NOISY: f64 = 2.0;

/// Colour of reference lines.
pub(super) const REFERENCE: Color = [70, 70, 70];

/// Steps and values of one logged quantity.
pub(super) type Series = (Vec<f64>, Vec<f64>);

/// Centred running mean over `window` points (an even window is made odd); near the ends the
/// window shrinks symmetrically, so the first and last values are kept.
pub fn running_mean(ys: &[f64], window: usize) -> Vec<f64> {
    let half = window.max(1) / 2;
    let n = ys.len();
    let mut prefix = Vec::with_capacity(n + 1);
    prefix.push(0.0);
    for y in ys {
        prefix.push(prefix.last().copied().unwrap_or(0.0) + y);
    }
    (0..n)
        .map(|i| {
            let h = half.min(i).min(n - 1 - i);
            (prefix[i + h + 1] - prefix[i - h]) / (2 * h + 1) as f64
        })
        .collect()
}

/// The window [`smoothed`] uses for `n` points: about a tenth of them, odd, at least 3.
pub(super) fn smoothing_window(n: usize) -> usize {
    (n / 10).max(3) | 1
}

fn total_variation(ys: &[f64]) -> f64 {
    ys.windows(2).map(|w| (w[1] - w[0]).abs()).sum()
}

/// The running mean of `ys` when the raw series is mostly noise around its trend (its total
/// variation more than [`NOISY`] times the mean's), else `None`. Series of fewer than 12
/// points are never smoothed.
pub fn smoothed(ys: &[f64]) -> Option<Vec<f64>> {
    if ys.len() < 12 {
        return None;
    }
    let mean = running_mean(ys, smoothing_window(ys.len()));
    (total_variation(ys) > NOISY * total_variation(&mean)).then_some(mean)
}

/// Whether two series hold the same values at the same steps (to a relative 1e-9).
pub(super) fn same_series(a: &Series, b: &Series) -> bool {
    let close = |x: &f64, y: &f64| (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1e-300);
    a.0 == b.0 && a.1.len() == b.1.len() && a.1.iter().zip(&b.1).all(|(x, y)| close(x, y))
}

/// One panel of `curves.png`: its title, its series (legend label, data) and its reference
/// lines (legend label, level).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct CurvePanel {
    pub(super) title: String,
    pub(super) lines: Vec<(String, Series)>,
    pub(super) rules: Vec<(String, f64)>,
}

/// Reference levels a run's model has, drawn on the panels of the quantities they belong to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct References {
    /// The thermal energy N·T/2 (NLM): where samples at equilibrium sit.
    pub thermal_energy: Option<f64>,
    /// The training data's mean pixel in [−1, 1] (NLM), the target of the chains' mean pixel.
    pub data_mean_pixel: Option<f64>,
}

impl References {
    /// What the run directory `dir` tells: for an NLM run, N·T/2 from its newest checkpoint's
    /// header (the couplings' size N and the temperature T) and the data's mean pixel from the
    /// `polarity.json` of its finished training. Anything missing or unreadable is left out.
    pub fn of_run(dir: &Path) -> Self {
        let mut refs = References::default();
        let polarity = fs::read_to_string(dir.join("polarity.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
        let from_polarity = |key: &str| {
            polarity
                .as_ref()
                .and_then(|v| v[key].as_f64())
                .filter(|v| v.is_finite())
        };
        refs.data_mean_pixel = from_polarity("data_mean_pixel");
        refs.thermal_energy = from_polarity("energy_thermal").or_else(|| {
            let (_, newest) = crate::checkpoint::list(dir).ok()?.into_iter().next()?;
            let h = crate::checkpoint::read_header(&newest).ok()?;
            let n = h.shapes.iter().find(|(name, _)| name == "J")?.1.first()?;
            let t = h.extra["temperature"].as_f64()?;
            (h.kind == "nlm" && t.is_finite()).then_some(0.5 * *n as f64 * t)
        });
        refs
    }
}

/// The panels for `series` (keyed by metric name): `loss` first, the others in name order; a
/// series equal to an earlier one is named in that one's title instead of drawn again;
/// `X_data` and `X_model` share a panel titled `X`; reference levels join their quantity's
/// panel (`energy` or `energy_*`: N·T/2; `chain_mean_pixel` or `mean_pixel`: the data's).
pub(super) fn curve_panels(
    series: &std::collections::BTreeMap<String, Series>,
    refs: &References,
) -> Vec<CurvePanel> {
    let mut keys: Vec<&String> = series.keys().collect();
    keys.sort_by_key(|k| (*k != "loss", (*k).clone()));
    // Each kept key with the keys that duplicate it.
    let mut kept: Vec<(&String, Vec<&String>)> = Vec::new();
    for k in keys {
        match kept
            .iter_mut()
            .find(|(o, _)| same_series(&series[*o], &series[k]))
        {
            Some((_, aliases)) => aliases.push(k),
            None => kept.push((k, Vec::new())),
        }
    }
    let title = |k: &String, aliases: &[&String]| {
        std::iter::once(k.as_str())
            .chain(aliases.iter().map(|a| a.as_str()))
            .collect::<Vec<_>>()
            .join(" = ")
    };
    let mut panels = Vec::new();
    let mut done: Vec<&String> = Vec::new();
    for (k, aliases) in &kept {
        if done.contains(k) {
            continue;
        }
        done.push(*k);
        let partner = k
            .strip_suffix("_data")
            .map(|stem| format!("{stem}_model"))
            .and_then(|m| kept.iter().find(|(o, _)| **o == m));
        let mut panel = match partner {
            Some((m, m_aliases)) if !done.contains(m) => {
                done.push(*m);
                let stem = &k[..k.len() - "_data".len()];
                CurvePanel {
                    title: stem.to_string(),
                    lines: vec![
                        (title(k, aliases), series[*k].clone()),
                        (title(m, m_aliases), series[*m].clone()),
                    ],
                    rules: Vec::new(),
                }
            }
            _ => CurvePanel {
                title: title(k, aliases),
                lines: vec![(String::new(), series[*k].clone())],
                rules: Vec::new(),
            },
        };
        let stem = panel
            .title
            .split(" = ")
            .next()
            .unwrap_or_default()
            .to_string();
        if let Some(e) = refs.thermal_energy
            && (stem == "energy" || stem.starts_with("energy_"))
        {
            panel.rules.push(("N·T/2".into(), e));
        }
        if let Some(p) = refs.data_mean_pixel
            && (stem == "chain_mean_pixel" || stem == "mean_pixel")
        {
            panel.rules.push(("data".into(), p));
        }
        panels.push(panel);
    }
    panels
}

/// `c` blended towards white, `keep` of it kept.
pub(super) fn faint(c: Color, keep: f64) -> Color {
    c.map(|v| (255.0 - (255.0 - f64::from(v)) * keep).round() as u8)
}

/// `curves.png`: every numeric quantity of a run's `metrics.jsonl` against the step, laid out
/// by [`curve_panels`] with the reference levels of the run directory `metrics` is in
/// ([`References::of_run`]). A panel whose values stay positive and span more than two decades
/// is drawn as log10; a noisy series faint under its running mean ([`smoothed`]); a single
/// logged step as a dot. Returns `Ok(false)` (and writes nothing) when there is nothing to plot
/// yet.
pub fn training_curves(metrics: &Path, out: &Path) -> anyhow::Result<bool> {
    let refs = metrics.parent().map(References::of_run).unwrap_or_default();
    training_curves_with(metrics, out, &refs)
}

/// [`training_curves`] with the reference levels given.
pub fn training_curves_with(metrics: &Path, out: &Path, refs: &References) -> anyhow::Result<bool> {
    let text = match fs::read_to_string(metrics) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", metrics.display())),
    };
    let mut series: std::collections::BTreeMap<String, Series> = Default::default();
    for line in text.lines() {
        let Ok(serde_json::Value::Object(row)) = serde_json::from_str::<serde_json::Value>(line)
        else {
            continue;
        };
        let Some(step) = row.get("step").and_then(|s| s.as_f64()) else {
            continue;
        };
        for (k, v) in &row {
            if let Some(v) = v.as_f64().filter(|v| v.is_finite())
                && !NOT_CURVES.contains(&k.as_str())
            {
                let s = series.entry(k.clone()).or_default();
                s.0.push(step);
                s.1.push(v);
            }
        }
    }
    let panels = curve_panels(&series, refs);
    if panels.is_empty() {
        return Ok(false);
    }
    let cols = panels.len().min(3);
    let rows = panels.len().div_ceil(cols);
    let mut fig = Figure::new(cols, rows, 360, 260);
    fig.set_title("training curves (metrics.jsonl)");
    for (i, p) in panels.iter().enumerate() {
        draw_curve_panel(fig.axes_at(i), p);
    }
    for i in panels.len()..cols * rows {
        fig.axes_at(i).set_axis_visible(false);
    }
    fig.save_png(out)?;
    Ok(true)
}

/// Draws one [`CurvePanel`] into `ax`.
pub(super) fn draw_curve_panel(ax: &mut Axes, p: &CurvePanel) {
    let (lo, hi) = p
        .lines
        .iter()
        .flat_map(|(_, s)| s.1.iter())
        .chain(p.rules.iter().map(|(_, v)| v))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &y| {
            (a.min(y), b.max(y))
        });
    let log = lo > 0.0 && hi / lo > 100.0;
    let shown = |y: f64| if log { y.log10() } else { y };
    let title = if log {
        format!("log10 {}", p.title)
    } else {
        p.title.clone()
    };
    ax.set_title(&title).set_xlabel("step");
    let mut legend: Vec<(String, Color)> = Vec::new();
    for (j, (label, (xs, ys))) in p.lines.iter().enumerate() {
        let color = palette(j);
        let ys: Vec<f64> = ys.iter().map(|&y| shown(y)).collect();
        if xs.len() == 1 {
            ax.scatter(xs, &ys, color, 3);
        } else if let Some(mean) = smoothed(&ys) {
            ax.line(xs, &ys, faint(color, 0.35))
                .line_width(xs, &mean, color, 2);
            let what = format!("mean of {}", smoothing_window(ys.len()));
            match label.is_empty() {
                true => legend.extend([("raw".into(), faint(color, 0.35)), (what, color)]),
                false => legend.push((format!("{label} ({what})"), color)),
            }
            continue;
        } else {
            ax.line_width(xs, &ys, color, if p.lines.len() > 1 { 2 } else { 1 });
        }
        if !label.is_empty() {
            legend.push((label.clone(), color));
        }
    }
    for (label, v) in &p.rules {
        ax.hline(shown(*v), REFERENCE);
        legend.push((format!("{label} = {}", format_compact(*v)), REFERENCE));
    }
    if !legend.is_empty() {
        let entries: Vec<(&str, Color)> = legend.iter().map(|(l, c)| (l.as_str(), *c)).collect();
        ax.legend_at(&entries, emptiest_corner(ax));
    }
}

/// The corner of the plot area (a box half as wide and 40 % as high) with the fewest line
/// points in it, for a legend that hides the least data; ties go to the top right.
pub(super) fn emptiest_corner(ax: &Axes) -> Corner {
    let ((x0, x1), (y0, y1)) = ax.ranges();
    let mut counts = [0usize; 4];
    let corners = [
        Corner::TopRight,
        Corner::TopLeft,
        Corner::BottomRight,
        Corner::BottomLeft,
    ];
    // Line points, and a few points along each horizontal reference line.
    let rules = ax.items.iter().filter_map(|item| match item {
        Item::Rule(at, false, _) => Some(
            (0..8)
                .map(|i| (x0 + (x1 - x0) * (f64::from(i) + 0.5) / 8.0, *at))
                .collect::<Vec<(f64, f64)>>(),
        ),
        _ => None,
    });
    let lines = ax.items.iter().filter_map(|item| match item {
        Item::Line(pts, ..) => Some(pts.clone()),
        _ => None,
    });
    for pts in lines.chain(rules) {
        for &(x, y) in pts.iter().filter(|p| p.0.is_finite() && p.1.is_finite()) {
            let (fx, fy) = ((x - x0) / (x1 - x0), (y - y0) / (y1 - y0));
            let (right, left, top, bottom) = (fx > 0.5, fx < 0.5, fy > 0.6, fy < 0.4);
            for (n, inside) in
                counts
                    .iter_mut()
                    .zip([right && top, left && top, right && bottom, left && bottom])
            {
                *n += usize::from(inside);
            }
        }
    }
    let best = (0..4).min_by_key(|&i| (counts[i], i)).unwrap_or(0);
    corners[best]
}
