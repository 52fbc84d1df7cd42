//! Figures drawn with [`plotters`] on its bitmap backend.
//!
//! Text is anti-aliased DejaVu Sans, compiled in from the `dejavu` crate and rasterised by
//! plotters' `ab_glyph` feature (no system fonts). The main entry point is [`Figure`], a grid of
//! [`Axes`] panels. Axes record what to draw (lines, markers, quivers, heatmaps, greyscale images,
//! reference lines, text, legends) and everything is drawn when the figure is rendered, so
//! automatic axis ranges take all data into account.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use attractor::plot::{Figure, palette};
//! let xs: Vec<f64> = (0..100).map(|i| i as f64 * 0.1).collect();
//! let ys: Vec<f64> = xs.iter().map(|x| x.sin()).collect();
//! let mut fig = Figure::new(1, 1, 480, 360);
//! fig.axes(0, 0)
//!     .line(&xs, &ys, palette(0))
//!     .set_title("sin(x)")
//!     .set_xlabel("x");
//! fig.save_png(std::path::Path::new("sine.png"))?;
//! # Ok(())
//! # }
//! ```
//!
//! Conventions: colours are `[u8; 3]` RGB triples; non-finite data values (NaN, ±inf) are
//! skipped; slices of unequal length are truncated to the shortest one.
//!
//! A panel's data are drawn into a bitmap the size of its plot area (a plotters
//! [`BitMapElement`], which also clips them) that is then blitted into the figure; plotters'
//! [`ChartBuilder`] mesh draws the axes and tick marks around it.

use std::collections::HashMap;
use std::fs;
use std::io::Cursor;
use std::path::Path;
use std::sync::{Once, OnceLock};

use anyhow::Context;
use image::{ImageFormat, Rgb, RgbImage};
use plotters::chart::ChartBuilder;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::{
    BitMapBackend, BitMapElement, Circle, DrawingArea, IntoDrawingArea, PathElement, Pixel, Ranged,
    Rectangle, Text,
};
use plotters::style::{
    Color as _, FontStyle, FontTransform, IntoFont, RGBColor, ShapeStyle, TextStyle,
};

/// An RGB colour.
pub type Color = [u8; 3];

/// White.
pub const WHITE: Color = [255, 255, 255];
/// Black.
pub const BLACK: Color = [0, 0, 0];
/// Mid grey.
pub const GREY: Color = [128, 128, 128];
const LIGHT_GREY: Color = [225, 225, 225];
const TEXT: Color = [20, 20, 20];
const NAN_COLOR: Color = [200, 200, 200];

/// Ten distinguishable colours for successive series.
pub const PALETTE: [Color; 10] = [
    [31, 100, 200],  // blue
    [240, 130, 20],  // orange
    [40, 160, 60],   // green
    [210, 40, 40],   // red
    [140, 90, 200],  // purple
    [140, 90, 60],   // brown
    [220, 110, 190], // pink
    [110, 110, 110], // grey
    [170, 170, 30],  // olive
    [20, 170, 190],  // teal
];

/// Colour `i` of [`PALETTE`], cycling.
pub fn palette(i: usize) -> Color {
    PALETTE[i % PALETTE.len()]
}

/// Anchor colours of the sequential colormap (dark purple → blue → teal → green → yellow),
/// evenly spaced on `[0, 1]`.
const CMAP_ANCHORS: [Color; 9] = [
    [68, 1, 84],
    [71, 44, 122],
    [59, 81, 139],
    [44, 113, 142],
    [33, 144, 141],
    [39, 173, 129],
    [92, 200, 99],
    [170, 220, 50],
    [253, 231, 37],
];

/// Perceptually ordered sequential colormap (viridis-like). `t` is clamped to `[0, 1]`; NaN
/// maps to light grey.
pub fn colormap(t: f64) -> Color {
    if t.is_nan() {
        return NAN_COLOR;
    }
    let n = CMAP_ANCHORS.len() - 1;
    let pos = t.clamp(0.0, 1.0) * n as f64;
    let i = (pos.floor() as usize).min(n - 1);
    let f = pos - i as f64;
    let (a, b) = (CMAP_ANCHORS[i], CMAP_ANCHORS[i + 1]);
    let mix = |k: usize| (f64::from(a[k]) + (f64::from(b[k]) - f64::from(a[k])) * f).round() as u8;
    [mix(0), mix(1), mix(2)]
}

fn rgb(c: Color) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

/// `v` mapped linearly from `lo` (black) over `span` to white; non-finite is light grey.
fn gray_level(v: f32, lo: f32, span: f64) -> Color {
    if !v.is_finite() {
        return NAN_COLOR;
    }
    let t = if span > 0.0 {
        ((f64::from(v) - f64::from(lo)) / span).clamp(0.0, 1.0)
    } else {
        0.5
    };
    let g = (t * 255.0).round() as u8;
    [g, g, g]
}

mod axes;
mod compare;
mod curves;
pub mod ddm;
mod text;

use self::axes::*;
pub use self::axes::{Axes, Corner};
pub use self::compare::{Trajectories, compare_trajectories, ddm_comparison};
pub use self::curves::{References, running_mean, smoothed, training_curves, training_curves_with};
pub use self::text::format_compact;
use self::text::*;
#[cfg(test)]
use self::{compare::*, curves::*};

// ---------------------------------------------------------------------------
// Figure
// ---------------------------------------------------------------------------

/// A grid of `cols` × `rows` equally sized panels, each an [`Axes`].
#[derive(Clone, Debug)]
pub struct Figure {
    cols: usize,
    rows: usize,
    panel_w: u32,
    panel_h: u32,
    axes: Vec<Axes>,
    title: String,
    text_scale: Option<u32>,
}

impl Figure {
    /// A figure of `cols` × `rows` panels of `panel_w` × `panel_h` pixels each (at least 1
    /// panel, at least 40×40 pixels).
    pub fn new(cols: usize, rows: usize, panel_w: u32, panel_h: u32) -> Self {
        let (cols, rows) = (cols.max(1), rows.max(1));
        Figure {
            cols,
            rows,
            panel_w: panel_w.max(40),
            panel_h: panel_h.max(40),
            axes: vec![Axes::new(); cols * rows],
            title: String::new(),
            text_scale: None,
        }
    }

    /// The panel in column `col`, row `row` (row 0 at the top).
    ///
    /// # Panics
    /// Panics if `col >= cols` or `row >= rows`.
    pub fn axes(&mut self, col: usize, row: usize) -> &mut Axes {
        let (cols, rows) = (self.cols, self.rows);
        assert!(
            col < cols && row < rows,
            "panel ({col}, {row}) outside a {cols}x{rows} figure"
        );
        &mut self.axes[row * cols + col]
    }

    /// The panel with row-major index `index`.
    ///
    /// # Panics
    /// Panics if `index >= cols * rows`.
    pub fn axes_at(&mut self, index: usize) -> &mut Axes {
        let n = self.axes.len();
        assert!(
            index < n,
            "panel index {index} outside a figure of {n} panels"
        );
        &mut self.axes[index]
    }

    /// Figure-wide title drawn above all panels.
    pub fn set_title(&mut self, title: &str) -> &mut Self {
        self.title = title.to_string();
        self
    }

    /// Override the text scale (default: 1, or 2 for panels at least 400 px in both
    /// dimensions); the font size is `11 + 4 × scale` pixels.
    pub fn set_text_scale(&mut self, scale: u32) -> &mut Self {
        self.text_scale = Some(scale.clamp(1, 8));
        self
    }

    /// Text scale used for all text (see [`Figure::set_text_scale`]).
    pub fn text_scale(&self) -> u32 {
        let default = if self.panel_w.min(self.panel_h) >= 400 {
            2
        } else {
            1
        };
        self.text_scale.unwrap_or(default)
    }

    fn title_height(&self) -> u32 {
        match self.title.is_empty() {
            true => 0,
            false => text_h(font_size(self.text_scale() + 1)) as u32 + 12,
        }
    }

    /// Width of the rendered image in pixels.
    pub fn width(&self) -> u32 {
        self.panel_w.saturating_mul(self.cols as u32)
    }

    /// Height of the rendered image in pixels.
    pub fn height(&self) -> u32 {
        let panels = self.panel_h.saturating_mul(self.rows as u32);
        panels.saturating_add(self.title_height())
    }

    fn layout_of(&self, col: usize, row: usize) -> Layout {
        let (w, h) = (self.panel_w as i32, self.panel_h as i32);
        let (x, y) = (col as i32 * w, self.title_height() as i32 + row as i32 * h);
        self.axes[row * self.cols + col].layout(Rect { x, y, w, h }, self.text_scale())
    }

    /// Pixel position (in the rendered image) of data point (`x`, `y`) in panel (`col`, `row`);
    /// `None` if the panel does not exist.
    pub fn data_to_pixel(&self, col: usize, row: usize, x: f64, y: f64) -> Option<(f64, f64)> {
        (col < self.cols && row < self.rows).then(|| self.layout_of(col, row).to_px(x, y))
    }

    /// The data ranges panel (`col`, `row`) is drawn with, after any equal-aspect adjustment.
    pub fn panel_ranges(&self, col: usize, row: usize) -> Option<((f64, f64), (f64, f64))> {
        let layout = (col < self.cols && row < self.rows).then(|| self.layout_of(col, row));
        layout.map(|l| (l.xr, l.yr))
    }

    fn try_render(&self) -> anyhow::Result<RgbImage> {
        ensure_font();
        let (w, h) = (self.width(), self.height());
        let mut buf = vec![255u8; w as usize * h as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
            if !self.title.is_empty() {
                let size = font_size(self.text_scale() + 1);
                let x = ((w as i32 - text_w(&self.title, size)) / 2).max(2);
                put_text(&root, &self.title, (x, 6), Anchor::TopLeft, size, TEXT)?;
            }
            for (i, axes) in self.axes.iter().enumerate() {
                let l = self.layout_of(i % self.cols, i / self.cols);
                let size = (l.plot.w as u32, l.plot.h as u32);
                let mut layer = BitMapElement::new((l.plot.x, l.plot.y), size);
                axes.draw_data(&layer.as_bitmap_backend().into_drawing_area(), &l)?;
                root.draw(&layer)?;
                axes.draw_frame(&root, &l)?;
            }
            root.present()?;
        }
        RgbImage::from_raw(w, h, buf).context("figure buffer of the wrong size")
    }

    /// Draw the figure.
    ///
    /// # Panics
    /// Panics if plotters fails to draw into memory, which only a missing font could cause
    /// ([`Figure::save_png`] reports that as an error instead).
    pub fn render(&self) -> RgbImage {
        self.try_render()
            .unwrap_or_else(|e| panic!("drawing a figure failed: {e:#}"))
    }

    /// Render and encode as a PNG file in memory.
    pub fn png_bytes(&self) -> anyhow::Result<Vec<u8>> {
        png_bytes(&self.try_render()?)
    }

    /// Render and write a PNG atomically (`<path>.tmp`, fsync, rename).
    pub fn save_png(&self, path: &Path) -> anyhow::Result<()> {
        let img = self
            .try_render()
            .with_context(|| format!("failed to draw {}", path.display()))?;
        save_rgb_png(&img, path)
    }
}

// ---------------------------------------------------------------------------
// Image grids and PNG output
// ---------------------------------------------------------------------------

pub(super) const SEPARATOR: Color = [90, 90, 120];

/// Tile greyscale images (each `w`×`h`, row-major) into a grid with `cols` columns, mapping
/// `lo`..`hi` to black..white and enlarging each pixel to `scale`×`scale`. Images are separated
/// (and framed) by 1 px lines, 2 px when `scale >= 3`. Missing or NaN pixels are drawn in light
/// grey.
pub fn image_grid(
    images: &[Vec<f32>],
    w: usize,
    h: usize,
    cols: usize,
    lo: f32,
    hi: f32,
    scale: u32,
) -> RgbImage {
    let cols = cols.max(1).min(images.len().max(1));
    let rows = images.len().div_ceil(cols);
    let s = scale.clamp(1, 64) as usize;
    let sep = if s >= 3 { 2 } else { 1 };
    let (tile_w, tile_h) = (w * s, h * s);
    let total_w = u32::try_from((cols * (tile_w + sep) + sep).max(1)).unwrap_or(u32::MAX);
    let total_h = u32::try_from((rows * (tile_h + sep) + sep).max(1)).unwrap_or(u32::MAX);
    let mut img = RgbImage::from_pixel(total_w, total_h, Rgb(SEPARATOR));
    let span = f64::from(hi) - f64::from(lo);
    for (k, pixels) in images.iter().enumerate() {
        let ox = sep + (k % cols) * (tile_w + sep);
        let oy = sep + (k / cols) * (tile_h + sep);
        for (py, px) in (0..tile_h).flat_map(|py| (0..tile_w).map(move |px| (py, px))) {
            let v = pixels
                .get((py / s) * w + px / s)
                .copied()
                .unwrap_or(f32::NAN);
            if let (Ok(x), Ok(y)) = (u32::try_from(ox + px), u32::try_from(oy + py))
                && x < total_w
                && y < total_h
            {
                img.put_pixel(x, y, Rgb(gray_level(v, lo, span)));
            }
        }
    }
    img
}

/// `img` encoded as a PNG file.
pub fn png_bytes(img: &RgbImage) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    img.write_to(&mut Cursor::new(&mut buf), ImageFormat::Png)
        .context("failed to encode a PNG image")?;
    Ok(buf)
}

/// Encode `img` as PNG and write it atomically to `path` ([`crate::atomic`]).
pub fn save_rgb_png(img: &RgbImage, path: &Path) -> anyhow::Result<()> {
    let buf = png_bytes(img).with_context(|| format!("for {}", path.display()))?;
    crate::atomic::atomic_write(path, &buf)
}

/// A matrix (`rows`×`cols`, row-major) as a heat map under `title`, row 0 at the top.
pub fn matrix_figure(title: &str, values: &[f64], rows: usize, cols: usize) -> Figure {
    let mut grid = vec![0.0; rows * cols];
    for i in 0..rows {
        for k in 0..cols {
            grid[(rows - 1 - i) * cols + k] = values.get(i * cols + k).copied().unwrap_or(f64::NAN);
        }
    }
    let mut fig = Figure::new(1, 1, 420, 400);
    fig.axes(0, 0).set_title(title).heatmap(
        &grid,
        cols,
        rows,
        (0.0, cols as f64),
        (0.0, rows as f64),
    );
    fig
}

#[cfg(test)]
mod tests;
