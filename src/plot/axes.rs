//! One panel of a figure: what [`Axes`] records (lines, points, quivers, heatmaps, images,
//! reference lines, text, legends) and how it is drawn with plotters.

use super::*;

// ---------------------------------------------------------------------------
// Axes
// ---------------------------------------------------------------------------

/// Where a legend box is placed inside the plot area.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Corner {
    /// Upper left.
    TopLeft,
    /// Upper right (default).
    #[default]
    TopRight,
    /// Lower left.
    BottomLeft,
    /// Lower right.
    BottomRight,
}

/// What a panel draws. Points are data coordinates, non-finite ones included (they are skipped
/// when drawing).
#[derive(Clone, Debug)]
pub(super) enum Item {
    /// A polyline: points, colour, width in pixels.
    Line(Vec<(f64, f64)>, Color, u32),
    /// Filled discs: centres, colours (cycled), radius in pixels.
    Markers(Vec<(f64, f64)>, Vec<Color>, u32),
    /// Arrows `[x, y, u, v]`.
    Quiver(Vec<[f64; 4]>, Color),
    /// Colour cells, row-major from the bottom row, covering `x_range × y_range`.
    Raster {
        colors: Vec<Color>,
        nx: usize,
        xr: (f64, f64),
        yr: (f64, f64),
    },
    /// A reference line across the panel: vertical at x, or horizontal at y.
    Rule(f64, bool, Color),
    /// Text whose left edge is at x and middle at y.
    Text(f64, f64, String, Color),
}

/// Running min/max of finite values along one axis.
#[derive(Clone, Copy, Debug)]
pub(super) struct Span {
    pub(super) lo: f64,
    pub(super) hi: f64,
}

impl Span {
    const EMPTY: Span = Span {
        lo: f64::INFINITY,
        hi: f64::NEG_INFINITY,
    };

    pub(super) fn add(&mut self, v: f64) {
        if v.is_finite() {
            self.lo = self.lo.min(v);
            self.hi = self.hi.max(v);
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.lo > self.hi
    }
}

/// Sanitise an explicit range: swap reversed ends, widen degenerate ones.
pub(super) fn fix_range(lo: f64, hi: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
    if hi > lo {
        return (lo, hi);
    }
    let d = if lo == 0.0 { 0.5 } else { lo.abs() * 0.05 };
    (lo - d, hi + d)
}

/// The range of `span` widened by `margin` of its width on each side.
pub(super) fn auto_range(span: Span, margin: f64) -> (f64, f64) {
    if span.is_empty() {
        return (0.0, 1.0);
    }
    let pad = (span.hi - span.lo) * margin;
    let (lo, hi) = (span.lo - pad, span.hi + pad);
    if lo.is_finite() && hi.is_finite() {
        fix_range(lo, hi)
    } else {
        fix_range(span.lo, span.hi)
    }
}

/// Tick mark length in pixels (plotters puts tick labels twice as far from the axis).
pub(super) const TICK: i32 = 4;
/// Padding around panel edges and between labels.
pub(super) const PAD: i32 = 4;
/// A heatmap's colour bar: width, gap to the plot, ticks.
pub(super) const CBAR_W: i32 = 12;
pub(super) const CBAR_GAP: i32 = 10;
pub(super) const CBAR_TICKS: usize = 5;

/// A pixel rectangle of the figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Rect {
    pub(super) x: i32,
    pub(super) y: i32,
    pub(super) w: i32,
    pub(super) h: i32,
}

impl Rect {
    pub(super) fn right(&self) -> i32 {
        self.x + self.w - 1
    }

    pub(super) fn bottom(&self) -> i32 {
        self.y + self.h - 1
    }

    pub(super) fn area<'a>(&self, root: &Area<'a>) -> Area<'a> {
        root.clone().shrink(
            (self.x, self.y),
            (self.w.max(1) as u32, self.h.max(1) as u32),
        )
    }
}

pub(super) type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Resolved geometry of one panel: the plot area inside it, the ranges drawn, how many ticks
/// each axis may get (0: none) and the font size.
#[derive(Clone, Debug)]
pub(super) struct Layout {
    pub(super) panel: Rect,
    pub(super) plot: Rect,
    pub(super) xr: (f64, f64),
    pub(super) yr: (f64, f64),
    pub(super) nx: usize,
    pub(super) ny: usize,
    pub(super) size: f64,
}

impl Layout {
    /// Position of data point (`x`, `y`) relative to the plot area's top-left pixel.
    pub(super) fn local(&self, x: f64, y: f64) -> (f64, f64) {
        let fx = (x - self.xr.0) / (self.xr.1 - self.xr.0);
        let fy = (y - self.yr.0) / (self.yr.1 - self.yr.0);
        (
            fx * f64::from(self.plot.w - 1),
            (1.0 - fy) * f64::from(self.plot.h - 1),
        )
    }

    pub(super) fn to_px(&self, x: f64, y: f64) -> (f64, f64) {
        let (lx, ly) = self.local(x, y);
        (f64::from(self.plot.x) + lx, f64::from(self.plot.y) + ly)
    }

    /// Pixels per data unit along x and y.
    pub(super) fn scales(&self) -> (f64, f64) {
        let (w, h) = (f64::from(self.plot.w - 1), f64::from(self.plot.h - 1));
        (w / (self.xr.1 - self.xr.0), h / (self.yr.1 - self.yr.0))
    }
}

/// The pixel plotters' coordinate mapping gives a local position (it floors along each axis's
/// direction, and y runs up in data space).
pub(super) fn ipx((x, y): (f64, f64)) -> (i32, i32) {
    ((x + 1e-3).floor() as i32, (y - 1e-3).ceil() as i32)
}

/// Clip segment `a`–`b` to the box `[lo, hi]²` (Liang–Barsky).
pub(super) fn clip(a: (f64, f64), b: (f64, f64), lo: f64, hi: f64) -> Option<[(f64, f64); 2]> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a.0 - lo),
        (dx, hi - a.0),
        (-dy, a.1 - lo),
        (dy, hi - a.1),
    ] {
        if p == 0.0 && q < 0.0 {
            return None;
        } else if p < 0.0 {
            t0 = t0.max(q / p);
        } else if p > 0.0 {
            t1 = t1.min(q / p);
        }
    }
    let at = |t: f64| (a.0 + t * dx, a.1 + t * dy);
    (t0 <= t1).then(|| [at(t0), at(t1)])
}

/// Draws the polyline through `points` (local pixels; `None` breaks it) on a plot layer, a
/// segment at a time, each clipped to a little more than the layer so that plotters only sees
/// small coordinates. A point without neighbours is drawn as a dot.
pub(super) fn draw_polyline(
    area: &Area<'_>,
    points: impl Iterator<Item = Option<(f64, f64)>>,
    style: ShapeStyle,
) -> anyhow::Result<()> {
    let (w, h) = area.dim_in_pixel();
    let margin = f64::from(8 + style.stroke_width);
    let (lo, hi) = (-margin, f64::from(w.max(h)) + margin);
    let dot = |p: (f64, f64)| match clip(p, p, lo, hi) {
        None => Ok(()),
        Some(_) if style.stroke_width <= 1 => area.draw(&Pixel::new(ipx(p), style)),
        Some(_) => area.draw(&Circle::new(ipx(p), style.stroke_width / 2, style.filled())),
    };
    // The previous point, and whether it began a run.
    let mut prev: Option<((f64, f64), bool)> = None;
    for p in points {
        // Far-away points are pulled in so that the clipping arithmetic stays finite.
        let p = p.map(|(x, y)| (x.clamp(-1e15, 1e15), y.clamp(-1e15, 1e15)));
        match (prev, p) {
            (Some((a, _)), Some(b)) => {
                if let Some([c, d]) = clip(a, b, lo, hi) {
                    area.draw(&PathElement::new(vec![ipx(c), ipx(d)], style))?;
                }
            }
            (Some((a, true)), None) => dot(a)?,
            _ => {}
        }
        prev = p.map(|p| (p, prev.is_none()));
    }
    match prev {
        Some((a, true)) => Ok(dot(a)?),
        _ => Ok(()),
    }
}

pub(super) fn zip(xs: &[f64], ys: &[f64]) -> Vec<(f64, f64)> {
    xs.iter().copied().zip(ys.iter().copied()).collect()
}

/// One plotting panel. Drawing calls record data; nothing is drawn until the owning [`Figure`]
/// is rendered. All methods return `&mut Self` so calls can be chained.
#[derive(Clone, Debug)]
pub struct Axes {
    pub(super) items: Vec<Item>,
    pub(super) xlim: Option<(f64, f64)>,
    pub(super) ylim: Option<(f64, f64)>,
    pub(super) title: String,
    pub(super) xlabel: String,
    pub(super) ylabel: String,
    pub(super) legend: Vec<(String, Color)>,
    pub(super) legend_corner: Corner,
    /// Colour limits of the first heatmap, shown on a colour bar.
    pub(super) colorbar: Option<(f64, f64)>,
    pub(super) grid: bool,
    pub(super) axis_visible: bool,
    pub(super) equal_aspect: bool,
    pub(super) margin: f64,
}

impl Default for Axes {
    fn default() -> Self {
        Self::new()
    }
}

impl Axes {
    /// An empty panel with automatic ranges and visible axes.
    pub fn new() -> Self {
        Axes {
            items: Vec::new(),
            xlim: None,
            ylim: None,
            title: String::new(),
            xlabel: String::new(),
            ylabel: String::new(),
            legend: Vec::new(),
            legend_corner: Corner::TopRight,
            colorbar: None,
            grid: false,
            axis_visible: true,
            equal_aspect: false,
            margin: 0.05,
        }
    }

    pub(super) fn push(&mut self, item: Item) -> &mut Self {
        self.items.push(item);
        self
    }

    /// Title drawn above the plot area.
    pub fn set_title(&mut self, title: &str) -> &mut Self {
        self.title = title.to_string();
        self
    }

    /// Label drawn below the x tick labels.
    pub fn set_xlabel(&mut self, label: &str) -> &mut Self {
        self.xlabel = label.to_string();
        self
    }

    /// Label drawn vertically left of the y tick labels.
    pub fn set_ylabel(&mut self, label: &str) -> &mut Self {
        self.ylabel = label.to_string();
        self
    }

    /// Fix the x range (used exactly, without margin).
    pub fn set_xlim(&mut self, lo: f64, hi: f64) -> &mut Self {
        self.xlim = Some(fix_range(lo, hi));
        self
    }

    /// Fix the y range (used exactly, without margin).
    pub fn set_ylim(&mut self, lo: f64, hi: f64) -> &mut Self {
        self.ylim = Some(fix_range(lo, hi));
        self
    }

    /// Fraction of the data span added on each side of automatic ranges (default 0.05). Ranges
    /// made only of heatmaps/images get no margin.
    pub fn set_margin(&mut self, fraction: f64) -> &mut Self {
        self.margin = if fraction.is_finite() {
            fraction.max(0.0)
        } else {
            0.0
        };
        self
    }

    /// Light grey grid lines at the tick positions.
    pub fn set_grid(&mut self, on: bool) -> &mut Self {
        self.grid = on;
        self
    }

    /// Show or hide the axis box, ticks and tick labels (e.g. for images).
    pub fn set_axis_visible(&mut self, visible: bool) -> &mut Self {
        self.axis_visible = visible;
        self
    }

    /// Expand one of the ranges so one data unit spans the same number of pixels on both axes.
    pub fn set_equal_aspect(&mut self, on: bool) -> &mut Self {
        self.equal_aspect = on;
        self
    }

    /// Polyline through the points (1 px wide). Non-finite points break the line.
    pub fn line(&mut self, xs: &[f64], ys: &[f64], color: Color) -> &mut Self {
        self.line_width(xs, ys, color, 1)
    }

    /// Polyline with a given width in pixels (1–2 recommended).
    pub fn line_width(&mut self, xs: &[f64], ys: &[f64], color: Color, width: u32) -> &mut Self {
        self.push(Item::Line(zip(xs, ys), color, width.clamp(1, 8)))
    }

    /// Filled circular markers of the given radius (0 = single pixel).
    pub fn scatter(&mut self, xs: &[f64], ys: &[f64], color: Color, radius: u32) -> &mut Self {
        self.push(Item::Markers(zip(xs, ys), vec![color], radius.min(64)))
    }

    /// Small markers (discs of radius 2 px) with one colour per point; `colors` is cycled if
    /// shorter than the data, and an empty `colors` draws nothing.
    pub fn points_colored(&mut self, xs: &[f64], ys: &[f64], colors: &[Color]) -> &mut Self {
        self.push(Item::Markers(zip(xs, ys), colors.to_vec(), 2))
    }

    /// Arrows from (`xs[i]`, `ys[i]`) in direction (`us[i]`, `vs[i]`) (data units). Lengths are
    /// scaled together so the longest arrow spans about one grid cell (estimated from the point
    /// density).
    pub fn quiver(
        &mut self,
        xs: &[f64],
        ys: &[f64],
        us: &[f64],
        vs: &[f64],
        color: Color,
    ) -> &mut Self {
        let n = xs.len().min(ys.len()).min(us.len()).min(vs.len());
        let arrows = (0..n).map(|i| [xs[i], ys[i], us[i], vs[i]]).collect();
        self.push(Item::Quiver(arrows, color))
    }

    /// Colour-mapped grid with automatic colour limits (finite min/max).
    ///
    /// `grid` is row-major with `nx` columns and `ny` rows: `grid[j * nx + i]` is the cell at
    /// column `i` (increasing x) and row `j` (increasing y, so row 0 is at the bottom).
    /// `x_range`/`y_range` are the outer edges of the grid. NaN cells (or cells missing from a
    /// short `grid`) are light grey. A colour bar is drawn to the right of the panel.
    pub fn heatmap(
        &mut self,
        grid: &[f64],
        nx: usize,
        ny: usize,
        x_range: (f64, f64),
        y_range: (f64, f64),
    ) -> &mut Self {
        let mut s = Span::EMPTY;
        grid.iter()
            .take(nx.saturating_mul(ny))
            .for_each(|&v| s.add(v));
        let limits = if s.is_empty() {
            (0.0, 1.0)
        } else {
            (s.lo, s.hi)
        };
        self.heatmap_limits(grid, nx, ny, x_range, y_range, limits)
    }

    /// [`Axes::heatmap`] with explicit colour limits `(vmin, vmax)`.
    pub fn heatmap_limits(
        &mut self,
        grid: &[f64],
        nx: usize,
        ny: usize,
        x_range: (f64, f64),
        y_range: (f64, f64),
        limits: (f64, f64),
    ) -> &mut Self {
        if nx == 0 || ny == 0 {
            return self;
        }
        let (lo, hi) = fix_range(limits.0, limits.1);
        let color = |v: Option<&f64>| match v {
            Some(&v) if v.is_finite() => colormap((v - lo) / (hi - lo)),
            _ => NAN_COLOR,
        };
        let colors = (0..nx.saturating_mul(ny))
            .map(|k| color(grid.get(k)))
            .collect();
        self.colorbar.get_or_insert((lo, hi));
        self.push(Item::Raster {
            colors,
            nx,
            xr: fix_range(x_range.0, x_range.1),
            yr: fix_range(y_range.0, y_range.1),
        })
    }

    /// Greyscale image (`w`×`h`, row-major, row 0 at the top) mapped linearly from `lo` (black)
    /// to `hi` (white), occupying data coordinates `[0, w] × [0, h]`. Missing or NaN pixels are
    /// drawn in light grey.
    pub fn image_gray(
        &mut self,
        pixels: &[f32],
        w: usize,
        h: usize,
        lo: f32,
        hi: f32,
    ) -> &mut Self {
        if w == 0 || h == 0 {
            return self;
        }
        let span = f64::from(hi) - f64::from(lo);
        let at = |k: usize| pixels.get((h - 1 - k / w) * w + k % w).copied();
        let colors = (0..w.saturating_mul(h))
            .map(|k| at(k).map_or(NAN_COLOR, |v| gray_level(v, lo, span)))
            .collect();
        self.push(Item::Raster {
            colors,
            nx: w,
            xr: (0.0, w as f64),
            yr: (0.0, h as f64),
        })
    }

    /// Horizontal reference line across the whole panel.
    pub fn hline(&mut self, y: f64, color: Color) -> &mut Self {
        self.push(Item::Rule(y, false, color))
    }

    /// Vertical reference line across the whole panel.
    pub fn vline(&mut self, x: f64, color: Color) -> &mut Self {
        self.push(Item::Rule(x, true, color))
    }

    /// Text whose left edge is at data `x` and vertical centre at data `y`.
    pub fn text(&mut self, x: f64, y: f64, text: &str, color: Color) -> &mut Self {
        self.push(Item::Text(x, y, text.to_string(), color))
    }

    /// Legend box in the top-right corner of the plot area.
    pub fn legend(&mut self, entries: &[(&str, Color)]) -> &mut Self {
        self.legend_at(entries, Corner::TopRight)
    }

    /// Legend box in the given corner of the plot area.
    pub fn legend_at(&mut self, entries: &[(&str, Color)], corner: Corner) -> &mut Self {
        self.legend = entries.iter().map(|(s, c)| (s.to_string(), *c)).collect();
        self.legend_corner = corner;
        self
    }

    /// The data ranges `((x_lo, x_hi), (y_lo, y_hi))` the panel will use, before any
    /// equal-aspect adjustment.
    pub fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        // Spans of everything, and whether something other than rasters (which get no margin)
        // contributed.
        let (mut xs, mut ys) = (Span::EMPTY, Span::EMPTY);
        let (mut loose_x, mut loose_y) = (false, false);
        let mut add_point = |(x, y): (f64, f64), xs: &mut Span, ys: &mut Span| {
            if x.is_finite() && y.is_finite() {
                xs.add(x);
                ys.add(y);
                (loose_x, loose_y) = (true, true);
            }
        };
        let mut rules = Vec::new();
        for item in &self.items {
            match item {
                Item::Line(pts, ..) | Item::Markers(pts, ..) => {
                    pts.iter().for_each(|&p| add_point(p, &mut xs, &mut ys));
                }
                Item::Text(x, y, ..) => add_point((*x, *y), &mut xs, &mut ys),
                Item::Quiver(arrows, _) => {
                    // Leave room for arrows near the edges: about one cell.
                    let (mut qx, mut qy, mut n) = (Span::EMPTY, Span::EMPTY, 0);
                    for a in arrows
                        .iter()
                        .filter(|a| a[0].is_finite() && a[1].is_finite())
                    {
                        qx.add(a[0]);
                        qy.add(a[1]);
                        n += 1;
                    }
                    if n > 0 {
                        let f = 0.9 / (n as f64).sqrt();
                        let (dx, dy) = ((qx.hi - qx.lo) * f, (qy.hi - qy.lo) * f);
                        add_point((qx.lo - dx, qy.lo - dy), &mut xs, &mut ys);
                        add_point((qx.hi + dx, qy.hi + dy), &mut xs, &mut ys);
                    }
                }
                Item::Raster { xr, yr, .. } => {
                    xs.add(xr.0);
                    xs.add(xr.1);
                    ys.add(yr.0);
                    ys.add(yr.1);
                }
                Item::Rule(at, vertical, _) => rules.push((*at, *vertical)),
            }
        }
        for (at, vertical) in rules.into_iter().filter(|r| r.0.is_finite()) {
            if vertical {
                xs.add(at);
                loose_x = true;
            } else {
                ys.add(at);
                loose_y = true;
            }
        }
        let margin = |loose: bool| if loose { self.margin } else { 0.0 };
        let xr = self.xlim.unwrap_or_else(|| auto_range(xs, margin(loose_x)));
        let yr = self.ylim.unwrap_or_else(|| auto_range(ys, margin(loose_y)));
        (xr, yr)
    }

    /// Expand `xr` or `yr` so that both axes have the same pixels per unit.
    pub(super) fn equalize(xr: (f64, f64), yr: (f64, f64), plot: Rect) -> ((f64, f64), (f64, f64)) {
        let (pw, ph) = (
            f64::from((plot.w - 1).max(1)),
            f64::from((plot.h - 1).max(1)),
        );
        let (sx, sy) = (pw / (xr.1 - xr.0), ph / (yr.1 - yr.0));
        let widen = |r: (f64, f64), half: f64| ((r.0 + r.1) / 2.0 - half, (r.0 + r.1) / 2.0 + half);
        if !(sx.is_finite() && sy.is_finite() && sx > 0.0 && sy > 0.0) {
            (xr, yr)
        } else if sx > sy {
            (widen(xr, pw / sy / 2.0), yr)
        } else {
            (xr, widen(yr, ph / sx / 2.0))
        }
    }

    pub(super) fn layout(&self, panel: Rect, scale: u32) -> Layout {
        let size = font_size(scale);
        let th = text_h(size);
        let (base_x, base_y) = self.ranges();
        let widest =
            |t: &[(f64, String)]| t.iter().map(|(_, l)| text_w(l, size)).max().unwrap_or(0);
        let cbar_space = self.colorbar.map_or(0, |l| {
            CBAR_GAP + CBAR_W + 2 * TICK + widest(&ticks(l, CBAR_TICKS)) + PAD
        });
        let top = match (self.title.is_empty(), self.axis_visible) {
            (false, _) => PAD + th + 6,
            (true, true) => (th / 2 + PAD).max(8),
            (true, false) => 2,
        };
        let fit = |plot: Rect| {
            let (xr, yr) = if self.equal_aspect {
                Self::equalize(base_x, base_y, plot)
            } else {
                (base_x, base_y)
            };
            let (nx, ny) = (0, 0);
            Layout {
                panel,
                plot,
                xr,
                yr,
                nx,
                ny,
                size,
            }
        };
        let area = |left: i32, right: i32, bottom: i32| Rect {
            x: panel.x + left,
            y: panel.y + top,
            w: (panel.w - left - right - cbar_space).max(2),
            h: (panel.h - top - bottom).max(2),
        };
        if !self.axis_visible {
            let edge = |label: &str| if label.is_empty() { 2 } else { th + 2 * PAD };
            return fit(area(edge(&self.ylabel), 2, edge(&self.xlabel)));
        }
        let ylabel_w = if self.ylabel.is_empty() { 0 } else { th + 6 };
        let xlabel_h = if self.xlabel.is_empty() { 0 } else { th + 6 };
        let bottom = 2 * TICK + th + xlabel_h + PAD;
        // The y tick labels' width and how far the last x label sticks out set the margins,
        // which set the ticks: iterate to a fixed point.
        let (mut ytick_w, mut overhang) = (0, 0);
        for pass in 0.. {
            let mut l = fit(area(
                PAD + ylabel_w + ytick_w + 2 * TICK,
                (overhang + 2).max(10),
                bottom,
            ));
            l.ny = (l.plot.h / (2 * th)).clamp(2, 8) as usize;
            // As many x ticks (up to 8) as leave a gap of a font size between labels.
            let fits = |t: &[(f64, String)]| match t {
                [a, b, ..] => {
                    let room = (b.0 - a.0) / (l.xr.1 - l.xr.0) * f64::from(l.plot.w - 1);
                    f64::from(widest(t)) + size <= room
                }
                _ => true,
            };
            l.nx = (2..=8).rev().find(|&n| fits(&ticks(l.xr, n))).unwrap_or(2);
            let new_ytick_w = widest(&ticks(l.yr, l.ny));
            let new_overhang = ticks(l.xr, l.nx).last().map_or(0, |(t, label)| {
                let px = l.to_px(*t, l.yr.0).0.round() as i32;
                (px + text_w(label, size) / 2 + 1 - l.plot.right()).max(0)
            });
            if pass == 3 || (new_ytick_w <= ytick_w && new_overhang <= overhang) {
                return l;
            }
            ytick_w = ytick_w.max(new_ytick_w);
            overhang = overhang.max(new_overhang);
        }
        unreachable!("the layout loop returns")
    }

    /// Draws the data on the plot area's own layer (local pixels), which clips them.
    pub(super) fn draw_data(&self, area: &Area<'_>, l: &Layout) -> anyhow::Result<()> {
        area.fill(&rgb(WHITE))?;
        let (w, h) = (l.plot.w, l.plot.h);
        // Rasters underneath everything else; a cell covers the pixels whose centres lie in it
        // (both ends of the range included).
        let edge = |v: f64, m: i32, end: bool| match end && v >= f64::from(m - 1) - 1e-9 {
            true => m,
            false => (v.clamp(-1.0, f64::from(m)) + 0.5).floor() as i32,
        };
        for item in &self.items {
            if let Item::Raster { colors, nx, xr, yr } = item {
                let ny = colors.len() / nx;
                let (dx, dy) = ((xr.1 - xr.0) / *nx as f64, (yr.1 - yr.0) / ny as f64);
                for (k, color) in colors.iter().enumerate() {
                    let (x0, y0) = (xr.0 + (k % nx) as f64 * dx, yr.0 + (k / nx) as f64 * dy);
                    let (a, b) = (l.local(x0, y0 + dy), l.local(x0 + dx, y0));
                    let corners = [
                        (edge(a.0, w, false), edge(a.1, h, false)),
                        (edge(b.0, w, true), edge(b.1, h, true)),
                    ];
                    area.draw(&Rectangle::new(corners, rgb(*color).filled()))?;
                }
            }
        }
        if self.grid && self.axis_visible {
            let style = rgb(LIGHT_GREY).stroke_width(1);
            for (t, _) in ticks(l.xr, l.nx) {
                let x = ipx(l.local(t, l.yr.0)).0;
                area.draw(&PathElement::new(vec![(x, 0), (x, h - 1)], style))?;
            }
            for (t, _) in ticks(l.yr, l.ny) {
                let y = ipx(l.local(l.xr.0, t)).1;
                area.draw(&PathElement::new(vec![(0, y), (w - 1, y)], style))?;
            }
        }
        let finite = |&(x, y): &(f64, f64)| (x.is_finite() && y.is_finite()).then(|| l.local(x, y));
        let near = |p: &(f64, f64), r: f64| {
            p.0 > -r && p.1 > -r && p.0 < f64::from(w) + r && p.1 < f64::from(h) + r
        };
        for item in &self.items {
            match item {
                Item::Line(pts, color, width) => {
                    let style = rgb(*color).stroke_width(*width);
                    draw_polyline(area, pts.iter().map(finite), style)?;
                }
                Item::Markers(pts, colors, radius) => {
                    let r = f64::from(*radius) + 1.0;
                    for (p, color) in pts.iter().map(finite).zip(colors.iter().cycle()) {
                        let Some(p) = p.filter(|p| near(p, r)) else {
                            continue;
                        };
                        let style = rgb(*color).filled();
                        match radius {
                            0 => area.draw(&Pixel::new(ipx(p), style))?,
                            _ => area.draw(&Circle::new(ipx(p), *radius, style))?,
                        }
                    }
                }
                Item::Quiver(arrows, color) => draw_quiver(area, l, arrows, *color)?,
                Item::Rule(at, vertical, color) => {
                    let (p, q) = if *vertical {
                        let x = l.local(*at, 0.0).0;
                        ((x, 0.0), (x, f64::from(h - 1)))
                    } else {
                        let y = l.local(0.0, *at).1;
                        ((0.0, y), (f64::from(w - 1), y))
                    };
                    let ends = [p, q].map(|p| at.is_finite().then_some(p));
                    draw_polyline(area, ends.into_iter(), rgb(*color).stroke_width(1))?;
                }
                Item::Text(x, y, text, color) => {
                    if let Some(p) = finite(&(*x, *y)).filter(|p| near(p, 1e4)) {
                        let at = (p.0.round() as i32, p.1.round() as i32);
                        put_text(area, text, at, Anchor::Left, l.size, *color)?;
                    }
                }
                Item::Raster { .. } => {}
            }
        }
        Ok(())
    }

    /// Draws everything around the data: axes and tick marks (plotters' mesh), the box, tick
    /// labels, titles, axis labels, the colour bar and the legend.
    pub(super) fn draw_frame(&self, root: &Area<'_>, l: &Layout) -> anyhow::Result<()> {
        let (panel, plot, size) = (l.panel, l.plot, l.size);
        let text = |at, anchor, s: &str| put_text(root, s, at, anchor, size, TEXT);
        let frame = |r: Rect| {
            let corners = [(r.x - 1, r.y - 1), (r.right() + 1, r.bottom() + 1)];
            root.draw(&Rectangle::new(corners, rgb(BLACK)))
        };
        if self.axis_visible {
            axis_mesh(
                ChartBuilder::on(&panel.area(root))
                    .margin_top(plot.y - panel.y)
                    .margin_right(panel.right() - plot.right())
                    .x_label_area_size(panel.bottom() - plot.bottom())
                    .y_label_area_size(plot.x - panel.x),
                (l.xr, l.yr),
                (l.nx, l.ny),
            )?;
            frame(plot)?;
            for (v, label) in ticks(l.xr, l.nx) {
                let x = plot.x + ipx(l.local(v, l.yr.0)).0;
                text((x, plot.bottom() + 1 + 2 * TICK), Anchor::Top, &label)?;
            }
            for (v, label) in ticks(l.yr, l.ny) {
                let y = plot.y + ipx(l.local(l.xr.0, v)).1;
                text((plot.x - 1 - 2 * TICK, y), Anchor::Right, &label)?;
            }
        }
        // Titles are centred over the plot but kept inside the panel.
        let centred = |s: &str| {
            let (w, left) = (text_w(s, size), panel.x + 1);
            (plot.x + plot.w / 2 - w / 2).clamp(left, (panel.right() - w).max(left))
        };
        if !self.title.is_empty() {
            let at = (centred(&self.title), panel.y + PAD);
            text(at, Anchor::TopLeft, &self.title)?;
        }
        if !self.xlabel.is_empty() {
            let y = match self.axis_visible {
                true => plot.bottom() + 1 + 2 * TICK + text_h(size) + 4,
                false => plot.bottom() + PAD,
            };
            text((centred(&self.xlabel), y), Anchor::TopLeft, &self.xlabel)?;
        }
        if !self.ylabel.is_empty() {
            let at = (panel.x + PAD, plot.y + plot.h / 2);
            put_text(root, &self.ylabel, at, Anchor::Vertical, size, TEXT)?;
        }
        if let Some(limits) = self.colorbar {
            let bar = Rect {
                x: plot.right() + 1 + CBAR_GAP,
                w: CBAR_W,
                ..plot
            };
            let strips = bar.area(root);
            for r in 0..bar.h {
                let t = f64::from(bar.h - 1 - r) / f64::from((bar.h - 1).max(1));
                let strip = [(0, r), (bar.w, r + 1)];
                strips.draw(&Rectangle::new(strip, rgb(colormap(t)).filled()))?;
            }
            // The bar is the plot area of a mesh with its ticks on the right.
            let labels_w = (panel.right() - bar.right()).max(1);
            let area = Rect {
                w: bar.w + labels_w,
                ..bar
            };
            axis_mesh(
                ChartBuilder::on(&area.area(root)).right_y_label_area_size(labels_w),
                ((0.0, 1.0), limits),
                (0, CBAR_TICKS),
            )?;
            frame(bar)?;
            for (v, label) in ticks(limits, CBAR_TICKS) {
                let f = (v - limits.0) / (limits.1 - limits.0);
                let y = bar.y + ipx((0.0, (1.0 - f) * f64::from(bar.h - 1))).1;
                text((bar.right() + 1 + 2 * TICK, y), Anchor::Left, &label)?;
            }
        }
        if !self.legend.is_empty() {
            draw_legend(root, plot, &self.legend, self.legend_corner, size)?;
        }
        Ok(())
    }
}

/// plotters' mesh on the chart `builder` lays out: the axis lines beside the plot area and tick
/// marks at up to (`nx`, `ny`) key points of the ranges (an axis with none gets neither). The
/// tick labels are drawn by [`put_text`] instead (see [`Metrics`]).
pub(super) fn axis_mesh(
    builder: &mut ChartBuilder<'_, '_, BitMapBackend<'_>>,
    (xr, yr): ((f64, f64), (f64, f64)),
    (nx, ny): (usize, usize),
) -> anyhow::Result<()> {
    let mut chart = builder.build_cartesian_2d(coord_range(xr), coord_range(yr))?;
    let no_label = |_: &f64| String::new();
    let mut mesh = chart.configure_mesh();
    mesh.disable_mesh()
        .x_labels(nx)
        .y_labels(ny)
        .x_label_formatter(&no_label)
        .y_label_formatter(&no_label)
        .axis_style(rgb(BLACK))
        .set_all_tick_mark_size(TICK);
    if nx == 0 {
        mesh.disable_x_axis();
    }
    mesh.draw()?;
    Ok(())
}

/// A legend box inset in a corner of the plot area: a line swatch and a label per entry.
pub(super) fn draw_legend(
    root: &Area<'_>,
    plot: Rect,
    entries: &[(String, Color)],
    corner: Corner,
    size: f64,
) -> anyhow::Result<()> {
    let (row, swatch) = ((1.3 * size).round() as i32, (1.4 * size).round() as i32);
    let label_w = entries
        .iter()
        .map(|(l, _)| text_w(l, size))
        .max()
        .unwrap_or(0);
    let (w, h) = (
        5 * PAD + swatch + label_w,
        2 * PAD + row * entries.len() as i32,
    );
    let x = match corner {
        Corner::TopLeft | Corner::BottomLeft => plot.x + 6,
        Corner::TopRight | Corner::BottomRight => plot.right() - 6 - w,
    };
    let y = match corner {
        Corner::TopLeft | Corner::TopRight => plot.y + 6,
        Corner::BottomLeft | Corner::BottomRight => plot.bottom() - 6 - h,
    };
    root.draw(&Rectangle::new(
        [(x, y), (x + w, y + h)],
        rgb(WHITE).filled(),
    ))?;
    root.draw(&Rectangle::new([(x, y), (x + w, y + h)], rgb(GREY)))?;
    for (i, (label, color)) in entries.iter().enumerate() {
        let mid = y + PAD + row * i as i32 + row / 2;
        let line = vec![(x + 2 * PAD, mid), (x + 2 * PAD + swatch, mid)];
        root.draw(&PathElement::new(line, rgb(*color).stroke_width(2)))?;
        let at = (x + 3 * PAD + swatch, mid);
        put_text(root, label, at, Anchor::Left, size, TEXT)?;
    }
    Ok(())
}

/// Arrows on a plot layer: directions follow the plotted axes, and lengths are scaled together
/// so the longest spans about one cell of the point lattice.
pub(super) fn draw_quiver(
    area: &Area<'_>,
    l: &Layout,
    arrows: &[[f64; 4]],
    color: Color,
) -> anyhow::Result<()> {
    let (sx, sy) = l.scales();
    let (mut bx, mut by) = (Span::EMPTY, Span::EMPTY);
    // (start, direction) in local pixels.
    let arrows: Vec<_> = arrows
        .iter()
        .filter(|a| a.iter().all(|t| t.is_finite()))
        .map(|&[x, y, u, v]| (l.local(x, y), (u * sx, -v * sy)))
        .filter(|(p, d)| d.0.hypot(d.1).is_finite() && p.0.abs() < 1e7 && p.1.abs() < 1e7)
        .inspect(|(p, _)| {
            bx.add(p.0);
            by.add(p.1);
        })
        .collect();
    let n = arrows.len() as f64;
    let (w, h) = (bx.hi - bx.lo, by.hi - by.lo);
    let cell = if w > 1.0 && h > 1.0 {
        (w * h / n).sqrt()
    } else if w.max(h) > 1.0 {
        w.max(h) / (n - 1.0).max(1.0)
    } else {
        20.0
    };
    let longest = arrows
        .iter()
        .map(|(_, d)| d.0.hypot(d.1))
        .fold(0.0, f64::max);
    let k = if longest > 0.0 {
        0.9 * cell / longest
    } else {
        0.0
    };
    let style = rgb(color).stroke_width(1);
    let seg =
        |a: (f64, f64), b: (f64, f64)| draw_polyline(area, [Some(a), Some(b)].into_iter(), style);
    for ((px, py), (du, dv)) in arrows {
        let (ex, ey) = (px + du * k, py + dv * k);
        let len = (du * k).hypot(dv * k);
        if len < 1.0 {
            area.draw(&Pixel::new(ipx((px, py)), style))?;
            continue;
        }
        seg((px, py), (ex, ey))?;
        if len >= 4.0 {
            // A head, where there is room for a readable one.
            let head = (0.35 * len).clamp(2.0, 8.0);
            for side in [-0.45f64, 0.45] {
                let a = dv.atan2(du) + std::f64::consts::PI + side;
                seg((ex, ey), (ex + head * a.cos(), ey + head * a.sin()))?;
            }
        }
    }
    Ok(())
}
