//! A tiny raster plotting library on top of [`image::RgbImage`].
//!
//! It needs no system fonts: text is drawn with a built-in 5x7 bitmap font
//! (plus two descender rows) scaled by whole pixels. The main entry point is [`Figure`], a grid of
//! [`Axes`] panels. Axes record what to draw (lines, scatter points, quivers,
//! heatmaps, greyscale images, reference lines, text, legends) and everything
//! is rasterised when the figure is rendered, so automatic axis ranges take
//! all data into account.
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
//! Conventions: colours are `[u8; 3]` RGB triples; non-finite data values
//! (NaN, ±inf) are skipped; slices of unequal length are truncated to the
//! shortest one.

use std::fs;
use std::io::Cursor;
use std::path::Path;

use anyhow::Context;
use image::{ImageFormat, Rgb, RgbImage};

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

/// Anchor colours of the sequential colormap (dark purple → blue → teal →
/// green → yellow), evenly spaced on `[0, 1]`.
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

/// Perceptually ordered sequential colormap (viridis-like). `t` is clamped to
/// `[0, 1]`; NaN maps to light grey.
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

// ---------------------------------------------------------------------------
// Bitmap font
// ---------------------------------------------------------------------------

const GLYPH_W: i32 = 5;
/// Cell height including two descender rows (g, j, p, q, y, `,`, `;`).
const GLYPH_H: i32 = 9;
/// Height of capitals and digits (rows above the baseline).
const CAP_H: i32 = 7;
/// Horizontal advance per character (glyph + 1 px spacing), unscaled.
const ADVANCE: i32 = 6;

/// Glyphs for ASCII 32..=126, 9 rows each (rows 7–8 are below the baseline);
/// each row is 5 bits, bit 4 = leftmost column.
#[rustfmt::skip]
const FONT: [[u8; 9]; 95] = [
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000], // ' '
    [0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00000, 0b00100, 0b00000, 0b00000], // '!'
    [0b01010, 0b01010, 0b01010, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000], // '"'
    [0b01010, 0b01010, 0b11111, 0b01010, 0b11111, 0b01010, 0b01010, 0b00000, 0b00000], // '#'
    [0b00100, 0b01111, 0b10100, 0b01110, 0b00101, 0b11110, 0b00100, 0b00000, 0b00000], // '$'
    [0b11000, 0b11001, 0b00010, 0b00100, 0b01000, 0b10011, 0b00011, 0b00000, 0b00000], // '%'
    [0b01100, 0b10010, 0b10100, 0b01000, 0b10101, 0b10010, 0b01101, 0b00000, 0b00000], // '&'
    [0b00100, 0b00100, 0b01000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000], // '\''
    [0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010, 0b00000, 0b00000], // '('
    [0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000, 0b00000, 0b00000], // ')'
    [0b00000, 0b00100, 0b10101, 0b01110, 0b10101, 0b00100, 0b00000, 0b00000, 0b00000], // '*'
    [0b00000, 0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0b00000, 0b00000, 0b00000], // '+'
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100, 0b00100, 0b01000], // ','
    [0b00000, 0b00000, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000], // '-'
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100, 0b00000, 0b00000], // '.'
    [0b00000, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b00000, 0b00000, 0b00000], // '/'
    [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110, 0b00000, 0b00000], // '0'
    [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110, 0b00000, 0b00000], // '1'
    [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111, 0b00000, 0b00000], // '2'
    [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110, 0b00000, 0b00000], // '3'
    [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010, 0b00000, 0b00000], // '4'
    [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110, 0b00000, 0b00000], // '5'
    [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110, 0b00000, 0b00000], // '6'
    [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00000, 0b00000], // '7'
    [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110, 0b00000, 0b00000], // '8'
    [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100, 0b00000, 0b00000], // '9'
    [0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00000, 0b00000, 0b00000], // ':'
    [0b00000, 0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00100, 0b01000], // ';'
    [0b00010, 0b00100, 0b01000, 0b10000, 0b01000, 0b00100, 0b00010, 0b00000, 0b00000], // '<'
    [0b00000, 0b00000, 0b11111, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000, 0b00000], // '='
    [0b01000, 0b00100, 0b00010, 0b00001, 0b00010, 0b00100, 0b01000, 0b00000, 0b00000], // '>'
    [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b00000, 0b00100, 0b00000, 0b00000], // '?'
    [0b01110, 0b10001, 0b00001, 0b01101, 0b10101, 0b10101, 0b01110, 0b00000, 0b00000], // '@'
    [0b01110, 0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b00000, 0b00000], // 'A'
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110, 0b00000, 0b00000], // 'B'
    [0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110, 0b00000, 0b00000], // 'C'
    [0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100, 0b00000, 0b00000], // 'D'
    [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111, 0b00000, 0b00000], // 'E'
    [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000, 0b00000, 0b00000], // 'F'
    [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111, 0b00000, 0b00000], // 'G'
    [0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001, 0b00000, 0b00000], // 'H'
    [0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110, 0b00000, 0b00000], // 'I'
    [0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100, 0b00000, 0b00000], // 'J'
    [0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001, 0b00000, 0b00000], // 'K'
    [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111, 0b00000, 0b00000], // 'L'
    [0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001, 0b00000, 0b00000], // 'M'
    [0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001, 0b00000, 0b00000], // 'N'
    [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110, 0b00000, 0b00000], // 'O'
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000, 0b00000, 0b00000], // 'P'
    [0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101, 0b00000, 0b00000], // 'Q'
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001, 0b00000, 0b00000], // 'R'
    [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110, 0b00000, 0b00000], // 'S'
    [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00000, 0b00000], // 'T'
    [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110, 0b00000, 0b00000], // 'U'
    [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00000, 0b00000], // 'V'
    [0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010, 0b00000, 0b00000], // 'W'
    [0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001, 0b00000, 0b00000], // 'X'
    [0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100, 0b00000, 0b00000], // 'Y'
    [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111, 0b00000, 0b00000], // 'Z'
    [0b01110, 0b01000, 0b01000, 0b01000, 0b01000, 0b01000, 0b01110, 0b00000, 0b00000], // '['
    [0b00000, 0b10000, 0b01000, 0b00100, 0b00010, 0b00001, 0b00000, 0b00000, 0b00000], // '\\'
    [0b01110, 0b00010, 0b00010, 0b00010, 0b00010, 0b00010, 0b01110, 0b00000, 0b00000], // ']'
    [0b00100, 0b01010, 0b10001, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000], // '^'
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b11111, 0b00000, 0b00000], // '_'
    [0b01000, 0b00100, 0b00010, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000], // '`'
    [0b00000, 0b00000, 0b01110, 0b00001, 0b01111, 0b10001, 0b01111, 0b00000, 0b00000], // 'a'
    [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b11110, 0b00000, 0b00000], // 'b'
    [0b00000, 0b00000, 0b01110, 0b10000, 0b10000, 0b10001, 0b01110, 0b00000, 0b00000], // 'c'
    [0b00001, 0b00001, 0b01101, 0b10011, 0b10001, 0b10001, 0b01111, 0b00000, 0b00000], // 'd'
    [0b00000, 0b00000, 0b01110, 0b10001, 0b11111, 0b10000, 0b01110, 0b00000, 0b00000], // 'e'
    [0b00110, 0b01001, 0b01000, 0b11100, 0b01000, 0b01000, 0b01000, 0b00000, 0b00000], // 'f'
    [0b00000, 0b00000, 0b01111, 0b10001, 0b10001, 0b10011, 0b01101, 0b00001, 0b01110], // 'g'
    [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001, 0b00000, 0b00000], // 'h'
    [0b00100, 0b00000, 0b01100, 0b00100, 0b00100, 0b00100, 0b01110, 0b00000, 0b00000], // 'i'
    [0b00010, 0b00000, 0b00110, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100], // 'j'
    [0b10000, 0b10000, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b00000, 0b00000], // 'k'
    [0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110, 0b00000, 0b00000], // 'l'
    [0b00000, 0b00000, 0b11010, 0b10101, 0b10101, 0b10001, 0b10001, 0b00000, 0b00000], // 'm'
    [0b00000, 0b00000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001, 0b00000, 0b00000], // 'n'
    [0b00000, 0b00000, 0b01110, 0b10001, 0b10001, 0b10001, 0b01110, 0b00000, 0b00000], // 'o'
    [0b00000, 0b00000, 0b11110, 0b10001, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000], // 'p'
    [0b00000, 0b00000, 0b01111, 0b10001, 0b10001, 0b10001, 0b01111, 0b00001, 0b00001], // 'q'
    [0b00000, 0b00000, 0b10110, 0b11001, 0b10000, 0b10000, 0b10000, 0b00000, 0b00000], // 'r'
    [0b00000, 0b00000, 0b01111, 0b10000, 0b01110, 0b00001, 0b11110, 0b00000, 0b00000], // 's'
    [0b01000, 0b01000, 0b11100, 0b01000, 0b01000, 0b01001, 0b00110, 0b00000, 0b00000], // 't'
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b10011, 0b01101, 0b00000, 0b00000], // 'u'
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00000, 0b00000], // 'v'
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10101, 0b10101, 0b01010, 0b00000, 0b00000], // 'w'
    [0b00000, 0b00000, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b00000, 0b00000], // 'x'
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b10011, 0b01101, 0b00001, 0b01110], // 'y'
    [0b00000, 0b00000, 0b11111, 0b00010, 0b00100, 0b01000, 0b11111, 0b00000, 0b00000], // 'z'
    [0b00010, 0b00100, 0b00100, 0b01000, 0b00100, 0b00100, 0b00010, 0b00000, 0b00000], // '{'
    [0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00000, 0b00000], // '|'
    [0b01000, 0b00100, 0b00100, 0b00010, 0b00100, 0b00100, 0b01000, 0b00000, 0b00000], // '}'
    [0b00000, 0b00000, 0b01000, 0b10101, 0b00010, 0b00000, 0b00000, 0b00000, 0b00000], // '~'
];

fn glyph(c: char) -> &'static [u8; 9] {
    let code = u32::from(c);
    let idx = if (32..=126).contains(&code) {
        code - 32
    } else {
        u32::from(b'?') - 32
    };
    &FONT[idx as usize]
}

/// Width in pixels of `text` drawn at `scale` (without trailing spacing).
pub fn text_width(text: &str, scale: u32) -> u32 {
    let n = u32::try_from(text.chars().count()).unwrap_or(u32::MAX / 8);
    if n == 0 {
        0
    } else {
        (n * ADVANCE as u32 - 1).saturating_mul(scale.max(1))
    }
}

/// Height in pixels of one line of text drawn at `scale`.
pub fn text_height(scale: u32) -> u32 {
    GLYPH_H as u32 * scale.max(1)
}

/// Height of digits and capitals at `scale`, used to centre labels on ticks.
fn cap_height(scale: u32) -> i64 {
    i64::from(CAP_H) * i64::from(scale.max(1))
}

/// Draw `text` with its top-left corner at (`x`, `y`) in the built-in 5x7
/// font, each font pixel becoming a `scale`×`scale` block. Characters outside
/// ASCII 32..=126 are drawn as `?`; pixels outside the image are skipped.
pub fn draw_text(img: &mut RgbImage, x: i32, y: i32, text: &str, color: Color, scale: u32) {
    let clip = Rect::of_image(img);
    Canvas { img, clip }.text(i64::from(x), i64::from(y), text, color, scale);
}

/// Draw `text` rotated 90° counter-clockwise (reading bottom to top). The
/// top-left corner of its bounding box is (`x`, `y`); the box is
/// `text_height(scale)` wide and `text_width(text, scale)` tall.
pub fn draw_text_vertical(
    img: &mut RgbImage,
    x: i32,
    y: i32,
    text: &str,
    color: Color,
    scale: u32,
) {
    let clip = Rect::of_image(img);
    Canvas { img, clip }.text_vertical(i64::from(x), i64::from(y), text, color, scale);
}

// ---------------------------------------------------------------------------
// Raster primitives
// ---------------------------------------------------------------------------

/// Integer pixel rectangle (inclusive of its edge pixels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rect {
    x: i64,
    y: i64,
    w: i64,
    h: i64,
}

impl Rect {
    fn of_image(img: &RgbImage) -> Self {
        Rect {
            x: 0,
            y: 0,
            w: i64::from(img.width()),
            h: i64::from(img.height()),
        }
    }

    fn right(&self) -> i64 {
        self.x + self.w - 1
    }

    fn bottom(&self) -> i64 {
        self.y + self.h - 1
    }

    fn contains(&self, x: i64, y: i64) -> bool {
        x >= self.x && y >= self.y && x <= self.right() && y <= self.bottom()
    }

    fn intersect(&self, o: &Rect) -> Rect {
        let x = self.x.max(o.x);
        let y = self.y.max(o.y);
        let r = self.right().min(o.right());
        let b = self.bottom().min(o.bottom());
        Rect {
            x,
            y,
            w: (r - x + 1).max(0),
            h: (b - y + 1).max(0),
        }
    }
}

/// An image plus a clip rectangle; every drawing operation respects both.
struct Canvas<'a> {
    img: &'a mut RgbImage,
    clip: Rect,
}

impl Canvas<'_> {
    fn with_clip(&mut self, clip: Rect) -> Canvas<'_> {
        let clip = clip.intersect(&Rect::of_image(self.img));
        Canvas {
            img: &mut *self.img,
            clip,
        }
    }

    fn plot(&mut self, x: i64, y: i64, color: Color) {
        if self.clip.contains(x, y) && Rect::of_image(self.img).contains(x, y) {
            self.img.put_pixel(x as u32, y as u32, Rgb(color));
        }
    }

    fn fill_rect(&mut self, r: Rect, color: Color) {
        let r = r.intersect(&self.clip).intersect(&Rect::of_image(self.img));
        for y in r.y..r.y + r.h {
            for x in r.x..r.x + r.w {
                self.img.put_pixel(x as u32, y as u32, Rgb(color));
            }
        }
    }

    fn rect_outline(&mut self, r: Rect, color: Color) {
        if r.w <= 0 || r.h <= 0 {
            return;
        }
        for x in r.x..=r.right() {
            self.plot(x, r.y, color);
            self.plot(x, r.bottom(), color);
        }
        for y in r.y..=r.bottom() {
            self.plot(r.x, y, color);
            self.plot(r.right(), y, color);
        }
    }

    /// A `width`×`width` square centred (rounding down-left) on a pixel.
    fn stamp(&mut self, x: i64, y: i64, color: Color, width: u32) {
        let w = i64::from(width.max(1));
        let lo = -(w - 1) / 2;
        for dy in lo..lo + w {
            for dx in lo..lo + w {
                self.plot(x + dx, y + dy, color);
            }
        }
    }

    /// Bresenham line between pixel-space points, clipped to the canvas.
    fn line(&mut self, p0: (f64, f64), p1: (f64, f64), color: Color, width: u32) {
        let (x0, y0) = p0;
        let (x1, y1) = p1;
        if ![x0, y0, x1, y1].iter().all(|v| v.is_finite()) {
            return;
        }
        let pad = f64::from(width.max(1));
        let c = self.clip;
        let Some((ax, ay, bx, by)) = clip_segment(
            (x0, y0, x1, y1),
            c.x as f64 - pad,
            c.y as f64 - pad,
            c.right() as f64 + pad,
            c.bottom() as f64 + pad,
        ) else {
            return;
        };
        let (mut x, mut y) = (ax.round() as i64, ay.round() as i64);
        let (xe, ye) = (bx.round() as i64, by.round() as i64);
        let dx = (xe - x).abs();
        let dy = -(ye - y).abs();
        let sx = if x < xe { 1 } else { -1 };
        let sy = if y < ye { 1 } else { -1 };
        let mut err = dx + dy;
        loop {
            self.stamp(x, y, color, width);
            if x == xe && y == ye {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    fn hline_px(&mut self, x0: i64, x1: i64, y: i64, color: Color) {
        for x in x0.min(x1)..=x0.max(x1) {
            self.plot(x, y, color);
        }
    }

    fn vline_px(&mut self, x: i64, y0: i64, y1: i64, color: Color) {
        for y in y0.min(y1)..=y0.max(y1) {
            self.plot(x, y, color);
        }
    }

    /// Filled disc; radius 0 is a single pixel.
    fn disc(&mut self, cx: f64, cy: f64, radius: u32, color: Color) {
        if !(cx.is_finite() && cy.is_finite()) {
            return;
        }
        let r = i64::from(radius);
        let (cx, cy) = (cx.round(), cy.round());
        let c = self.clip;
        // Skip far-away points cheaply (also avoids casting huge floats).
        if cx < (c.x - r) as f64
            || cx > (c.right() + r) as f64
            || cy < (c.y - r) as f64
            || cy > (c.bottom() + r) as f64
        {
            return;
        }
        let (cx, cy) = (cx as i64, cy as i64);
        for dy in -r..=r {
            for dx in -r..=r {
                if dx * dx + dy * dy <= r * r + r {
                    self.plot(cx + dx, cy + dy, color);
                }
            }
        }
    }

    fn text(&mut self, x: i64, y: i64, text: &str, color: Color, scale: u32) {
        let s = i64::from(scale.max(1));
        let mut cx = x;
        for ch in text.chars() {
            for (row, bits) in glyph(ch).iter().enumerate() {
                for col in 0..GLYPH_W {
                    if (bits >> (GLYPH_W - 1 - col)) & 1 == 1 {
                        let r = Rect {
                            x: cx + i64::from(col) * s,
                            y: y + row as i64 * s,
                            w: s,
                            h: s,
                        };
                        self.fill_rect(r, color);
                    }
                }
            }
            cx += i64::from(ADVANCE) * s;
        }
    }

    fn text_vertical(&mut self, x: i64, y: i64, text: &str, color: Color, scale: u32) {
        let s = i64::from(scale.max(1));
        let total = i64::from(text_width(text, scale));
        for (i, ch) in text.chars().enumerate() {
            for (row, bits) in glyph(ch).iter().enumerate() {
                for col in 0..GLYPH_W {
                    if (bits >> (GLYPH_W - 1 - col)) & 1 == 1 {
                        let hx = i as i64 * i64::from(ADVANCE) * s + i64::from(col) * s;
                        let hy = row as i64 * s;
                        let r = Rect {
                            x: x + hy,
                            y: y + total - hx - s,
                            w: s,
                            h: s,
                        };
                        self.fill_rect(r, color);
                    }
                }
            }
        }
    }
}

/// Liang–Barsky clipping of a segment to an axis-aligned box.
fn clip_segment(
    seg: (f64, f64, f64, f64),
    xmin: f64,
    ymin: f64,
    xmax: f64,
    ymax: f64,
) -> Option<(f64, f64, f64, f64)> {
    let (x0, y0, x1, y1) = seg;
    let (dx, dy) = (x1 - x0, y1 - y0);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, x0 - xmin),
        (dx, xmax - x0),
        (-dy, y0 - ymin),
        (dy, ymax - y0),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let r = q / p;
            if p < 0.0 {
                if r > t1 {
                    return None;
                }
                t0 = t0.max(r);
            } else {
                if r < t0 {
                    return None;
                }
                t1 = t1.min(r);
            }
        }
    }
    Some((x0 + t0 * dx, y0 + t0 * dy, x0 + t1 * dx, y0 + t1 * dy))
}

// ---------------------------------------------------------------------------
// Ticks and number formatting
// ---------------------------------------------------------------------------

/// Smallest number of decimals that represents multiples of `step` exactly
/// (e.g. 0.25 → 2, 5 → 0).
fn decimals_for_step(step: f64) -> usize {
    for d in 0..=9 {
        let scaled = step * 10f64.powi(d);
        if (scaled - scaled.round()).abs() < 1e-6 * scaled.abs().max(1.0) {
            return d as usize;
        }
    }
    9
}

/// `format!("{:.prec$e}")` with trailing zeros of the mantissa removed.
fn sci(v: f64, prec: usize) -> String {
    let s = format!("{v:.prec$e}");
    match s.split_once('e') {
        Some((mant, exp)) if mant.contains('.') => {
            let mant = mant.trim_end_matches('0').trim_end_matches('.');
            format!("{mant}e{exp}")
        }
        _ => s,
    }
}

/// Format a tick value `v` on an axis with tick spacing `step` whose largest
/// magnitude is `mag`.
fn format_tick(v: f64, step: f64, mag: f64) -> String {
    if !v.is_finite() {
        return format_compact(v);
    }
    if v.abs() < step.abs() * 1e-6 || v == 0.0 {
        return "0".to_string();
    }
    if !(1e-3..1e5).contains(&mag) {
        let e_v = v.abs().log10().floor();
        let e_s = step.abs().log10().floor();
        let extra = decimals_for_step(step.abs() / 10f64.powf(e_s)) as f64;
        let prec = (e_v - e_s + extra).clamp(0.0, 6.0) as usize;
        sci(v, prec)
    } else {
        format!("{:.*}", decimals_for_step(step.abs()), v)
    }
}

/// Compact human-readable number: about three significant digits, switching to
/// exponent notation (`1.5e-4`, `2.3e6`) for very small or large magnitudes.
pub fn format_compact(v: f64) -> String {
    if v.is_nan() {
        return "nan".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if v == 0.0 {
        return "0".to_string();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        return sci(v, 2);
    }
    let d = (2.0 - a.log10().floor()).clamp(0.0, 5.0) as usize;
    let s = format!("{v:.d$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// "Nice" tick positions (multiples of 1, 2, 2.5 or 5 × 10^k) inside
/// `[lo, hi]`, aiming for about `target` ticks. Returns the ticks and the step.
fn nice_ticks(lo: f64, hi: f64, target: usize) -> (Vec<f64>, f64) {
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0 && lo.is_finite() && hi.is_finite()) {
        return (if lo.is_finite() { vec![lo] } else { vec![] }, 1.0);
    }
    let target = target.max(2) as f64;
    let base = (span / target).log10().floor() as i32;
    let mut best: Option<(f64, f64, f64, f64)> = None; // (score, step, first, last)
    for e in base - 1..=base + 1 {
        for m in [1.0, 2.0, 2.5, 5.0] {
            let step = m * 10f64.powi(e);
            let tol = 1e-9;
            let first = (lo / step - tol).ceil();
            let last = (hi / step + tol).floor();
            let count = last - first + 1.0;
            if count < 1.0 {
                continue;
            }
            let mut score = (count - target).abs();
            if m == 2.5 {
                score += 1.1; // prefer 1, 2, 5 steps
            }
            let better = match best {
                None => true,
                Some((bs, bstep, _, _)) => {
                    score < bs - 1e-9 || (score <= bs + 1e-9 && step > bstep)
                }
            };
            if better {
                best = Some((score, step, first, last));
            }
        }
    }
    let Some((_, step, first, last)) = best else {
        return (vec![lo, hi], span);
    };
    let n = (last - first) as i64;
    let ticks = (0..=n)
        .map(|k| {
            let v = (first + k as f64) * step;
            if v.abs() < step * 1e-9 { 0.0 } else { v }
        })
        .collect();
    (ticks, step)
}

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

#[derive(Clone, Debug)]
enum Item {
    Line {
        xs: Vec<f64>,
        ys: Vec<f64>,
        color: Color,
        width: u32,
    },
    Scatter {
        xs: Vec<f64>,
        ys: Vec<f64>,
        color: Color,
        radius: u32,
    },
    Colored {
        xs: Vec<f64>,
        ys: Vec<f64>,
        colors: Vec<Color>,
        radius: u32,
    },
    Quiver {
        xs: Vec<f64>,
        ys: Vec<f64>,
        us: Vec<f64>,
        vs: Vec<f64>,
        color: Color,
    },
    Heatmap {
        grid: Vec<f64>,
        nx: usize,
        ny: usize,
        xr: (f64, f64),
        yr: (f64, f64),
        limits: (f64, f64),
    },
    Gray {
        pixels: Vec<f32>,
        w: usize,
        h: usize,
        lo: f32,
        hi: f32,
    },
    HLine {
        y: f64,
        color: Color,
    },
    VLine {
        x: f64,
        color: Color,
    },
    Text {
        x: f64,
        y: f64,
        text: String,
        color: Color,
    },
}

impl Item {
    fn is_raster(&self) -> bool {
        matches!(self, Item::Heatmap { .. } | Item::Gray { .. })
    }
}

/// Running min/max of finite values along one axis.
#[derive(Clone, Copy, Debug)]
struct Span {
    lo: f64,
    hi: f64,
}

impl Span {
    fn empty() -> Self {
        Span {
            lo: f64::INFINITY,
            hi: f64::NEG_INFINITY,
        }
    }

    fn add(&mut self, v: f64) {
        if v.is_finite() {
            self.lo = self.lo.min(v);
            self.hi = self.hi.max(v);
        }
    }

    fn is_empty(&self) -> bool {
        self.lo > self.hi
    }
}

/// Sanitise an explicit range: swap reversed ends, widen degenerate ones.
fn fix_range(lo: f64, hi: f64) -> (f64, f64) {
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

fn auto_range(span: Span, margin: f64) -> (f64, f64) {
    if span.is_empty() {
        return (0.0, 1.0);
    }
    if span.hi == span.lo {
        return fix_range(span.lo, span.hi);
    }
    let pad = (span.hi - span.lo) * margin;
    let (lo, hi) = (span.lo - pad, span.hi + pad);
    if lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        (span.lo, span.hi)
    }
}

/// Finite min/max of a slice, or `(0, 1)` if there are none.
fn finite_limits(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let mut s = Span::empty();
    for v in values {
        s.add(v);
    }
    if s.is_empty() {
        (0.0, 1.0)
    } else {
        (s.lo, s.hi)
    }
}

/// Tick marks length in pixels.
const TICK: i64 = 4;
/// Padding around panel edges and between labels.
const PAD: i64 = 4;

/// Resolved geometry of one panel.
#[derive(Clone, Debug)]
struct Layout {
    panel: Rect,
    plot: Rect,
    xr: (f64, f64),
    yr: (f64, f64),
    xticks: Vec<f64>,
    xstep: f64,
    yticks: Vec<f64>,
    ystep: f64,
    scale: u32,
    colorbar: Option<(Rect, (f64, f64))>,
}

impl Layout {
    fn to_px(&self, x: f64, y: f64) -> (f64, f64) {
        let fx = (x - self.xr.0) / (self.xr.1 - self.xr.0);
        let fy = (y - self.yr.0) / (self.yr.1 - self.yr.0);
        (
            self.plot.x as f64 + fx * (self.plot.w - 1) as f64,
            self.plot.y as f64 + (1.0 - fy) * (self.plot.h - 1) as f64,
        )
    }

    fn px_to_data(&self, px: f64, py: f64) -> (f64, f64) {
        let fx = (px - self.plot.x as f64) / ((self.plot.w - 1).max(1) as f64);
        let fy = 1.0 - (py - self.plot.y as f64) / ((self.plot.h - 1).max(1) as f64);
        (
            self.xr.0 + fx * (self.xr.1 - self.xr.0),
            self.yr.0 + fy * (self.yr.1 - self.yr.0),
        )
    }

    /// Pixels per data unit along x and y.
    fn scales(&self) -> (f64, f64) {
        (
            (self.plot.w - 1) as f64 / (self.xr.1 - self.xr.0),
            (self.plot.h - 1) as f64 / (self.yr.1 - self.yr.0),
        )
    }
}

/// One plotting panel. Drawing calls record data; nothing is rasterised until
/// the owning [`Figure`] is rendered. All methods return `&mut Self` so calls
/// can be chained.
#[derive(Clone, Debug)]
pub struct Axes {
    items: Vec<Item>,
    xlim: Option<(f64, f64)>,
    ylim: Option<(f64, f64)>,
    title: String,
    xlabel: String,
    ylabel: String,
    legend: Vec<(String, Color)>,
    legend_corner: Corner,
    grid: bool,
    axis_visible: bool,
    equal_aspect: bool,
    margin: f64,
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
            grid: false,
            axis_visible: true,
            equal_aspect: false,
            margin: 0.05,
        }
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

    /// Fraction of the data span added on each side of automatic ranges
    /// (default 0.05). Ranges made only of heatmaps/images get no margin.
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

    /// Expand one of the ranges so one data unit spans the same number of
    /// pixels on both axes.
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
        let n = xs.len().min(ys.len());
        self.items.push(Item::Line {
            xs: xs[..n].to_vec(),
            ys: ys[..n].to_vec(),
            color,
            width: width.clamp(1, 8),
        });
        self
    }

    /// Filled circular markers of the given radius (0 = single pixel).
    pub fn scatter(&mut self, xs: &[f64], ys: &[f64], color: Color, radius: u32) -> &mut Self {
        let n = xs.len().min(ys.len());
        self.items.push(Item::Scatter {
            xs: xs[..n].to_vec(),
            ys: ys[..n].to_vec(),
            color,
            radius: radius.min(64),
        });
        self
    }

    /// Small markers (radius 1) with one colour per point; `colors` is cycled
    /// if shorter than the data, and an empty `colors` draws nothing.
    pub fn points_colored(&mut self, xs: &[f64], ys: &[f64], colors: &[Color]) -> &mut Self {
        let n = xs.len().min(ys.len());
        self.items.push(Item::Colored {
            xs: xs[..n].to_vec(),
            ys: ys[..n].to_vec(),
            colors: colors.to_vec(),
            radius: 1,
        });
        self
    }

    /// Arrows from (`xs[i]`, `ys[i]`) in direction (`us[i]`, `vs[i]`) (data
    /// units). Lengths are scaled together so the longest arrow spans about one
    /// grid cell (estimated from the point density).
    pub fn quiver(
        &mut self,
        xs: &[f64],
        ys: &[f64],
        us: &[f64],
        vs: &[f64],
        color: Color,
    ) -> &mut Self {
        let n = xs.len().min(ys.len()).min(us.len()).min(vs.len());
        self.items.push(Item::Quiver {
            xs: xs[..n].to_vec(),
            ys: ys[..n].to_vec(),
            us: us[..n].to_vec(),
            vs: vs[..n].to_vec(),
            color,
        });
        self
    }

    /// Colour-mapped grid with automatic colour limits (finite min/max).
    ///
    /// `grid` is row-major with `nx` columns and `ny` rows: `grid[j * nx + i]`
    /// is the cell at column `i` (increasing x) and row `j` (increasing y, so
    /// row 0 is at the bottom). `x_range`/`y_range` are the outer edges of the
    /// grid. NaN cells (or cells missing from a short `grid`) are light grey.
    /// A colour bar is drawn to the right of the panel.
    pub fn heatmap(
        &mut self,
        grid: &[f64],
        nx: usize,
        ny: usize,
        x_range: (f64, f64),
        y_range: (f64, f64),
    ) -> &mut Self {
        let limits = finite_limits(grid.iter().take(nx.saturating_mul(ny)).copied());
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
        let n = nx.saturating_mul(ny).min(grid.len());
        self.items.push(Item::Heatmap {
            grid: grid[..n].to_vec(),
            nx,
            ny,
            xr: fix_range(x_range.0, x_range.1),
            yr: fix_range(y_range.0, y_range.1),
            limits: fix_range(limits.0, limits.1),
        });
        self
    }

    /// Greyscale image (`w`×`h`, row-major, row 0 at the top) mapped linearly
    /// from `lo` (black) to `hi` (white), occupying data coordinates
    /// `[0, w] × [0, h]`. Missing or NaN pixels are drawn in light grey.
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
        let n = w.saturating_mul(h).min(pixels.len());
        self.items.push(Item::Gray {
            pixels: pixels[..n].to_vec(),
            w,
            h,
            lo,
            hi,
        });
        self
    }

    /// Horizontal reference line across the whole panel.
    pub fn hline(&mut self, y: f64, color: Color) -> &mut Self {
        self.items.push(Item::HLine { y, color });
        self
    }

    /// Vertical reference line across the whole panel.
    pub fn vline(&mut self, x: f64, color: Color) -> &mut Self {
        self.items.push(Item::VLine { x, color });
        self
    }

    /// Text whose left edge is at data `x` and vertical centre at data `y`.
    pub fn text(&mut self, x: f64, y: f64, text: &str, color: Color) -> &mut Self {
        self.items.push(Item::Text {
            x,
            y,
            text: text.to_string(),
            color,
        });
        self
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

    /// The data ranges `((x_lo, x_hi), (y_lo, y_hi))` the panel will use,
    /// before any equal-aspect adjustment.
    pub fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let mut xs = Span::empty();
        let mut ys = Span::empty();
        let mut loose_x = false;
        let mut loose_y = false;
        for item in &self.items {
            match item {
                Item::Quiver { xs: px, ys: py, .. } => {
                    // Leave room for arrows near the edges: about one cell.
                    let mut qx = Span::empty();
                    let mut qy = Span::empty();
                    let mut n = 0usize;
                    for (&x, &y) in px.iter().zip(py) {
                        if x.is_finite() && y.is_finite() {
                            qx.add(x);
                            qy.add(y);
                            n += 1;
                        }
                    }
                    if n > 0 {
                        let f = 0.9 / (n as f64).sqrt();
                        let (padx, pady) = ((qx.hi - qx.lo) * f, (qy.hi - qy.lo) * f);
                        xs.add(qx.lo - padx);
                        xs.add(qx.hi + padx);
                        ys.add(qy.lo - pady);
                        ys.add(qy.hi + pady);
                        loose_x = true;
                        loose_y = true;
                    }
                }
                Item::Line { xs: px, ys: py, .. }
                | Item::Scatter { xs: px, ys: py, .. }
                | Item::Colored { xs: px, ys: py, .. } => {
                    for (&x, &y) in px.iter().zip(py) {
                        if x.is_finite() && y.is_finite() {
                            xs.add(x);
                            ys.add(y);
                            loose_x = true;
                            loose_y = true;
                        }
                    }
                }
                Item::Text { x, y, .. } => {
                    if x.is_finite() && y.is_finite() {
                        xs.add(*x);
                        ys.add(*y);
                        loose_x = true;
                        loose_y = true;
                    }
                }
                Item::Heatmap { xr, yr, .. } => {
                    xs.add(xr.0);
                    xs.add(xr.1);
                    ys.add(yr.0);
                    ys.add(yr.1);
                }
                Item::Gray { w, h, .. } => {
                    xs.add(0.0);
                    xs.add(*w as f64);
                    ys.add(0.0);
                    ys.add(*h as f64);
                }
                Item::HLine { y, .. } => {
                    if y.is_finite() {
                        ys.add(*y);
                        loose_y = true;
                    }
                }
                Item::VLine { x, .. } => {
                    if x.is_finite() {
                        xs.add(*x);
                        loose_x = true;
                    }
                }
            }
        }
        let xr = self
            .xlim
            .unwrap_or_else(|| auto_range(xs, if loose_x { self.margin } else { 0.0 }));
        let yr = self
            .ylim
            .unwrap_or_else(|| auto_range(ys, if loose_y { self.margin } else { 0.0 }));
        (xr, yr)
    }

    fn colorbar_limits(&self) -> Option<(f64, f64)> {
        self.items.iter().find_map(|it| match it {
            Item::Heatmap { limits, .. } => Some(*limits),
            _ => None,
        })
    }

    /// Expand `xr` or `yr` so that both axes have the same pixels per unit.
    fn equalize(xr: (f64, f64), yr: (f64, f64), plot: Rect) -> ((f64, f64), (f64, f64)) {
        let (pw, ph) = ((plot.w - 1).max(1) as f64, (plot.h - 1).max(1) as f64);
        let sx = pw / (xr.1 - xr.0);
        let sy = ph / (yr.1 - yr.0);
        if !(sx.is_finite() && sy.is_finite() && sx > 0.0 && sy > 0.0) {
            return (xr, yr);
        }
        if sx > sy {
            let half = pw / sy / 2.0;
            let c = (xr.0 + xr.1) / 2.0;
            ((c - half, c + half), yr)
        } else {
            let half = ph / sx / 2.0;
            let c = (yr.0 + yr.1) / 2.0;
            (xr, (c - half, c + half))
        }
    }

    fn max_label_width(ticks: &[f64], step: f64, range: (f64, f64), scale: u32) -> i64 {
        let mag = range.0.abs().max(range.1.abs());
        ticks
            .iter()
            .map(|&t| i64::from(text_width(&format_tick(t, step, mag), scale)))
            .max()
            .unwrap_or(0)
    }

    /// Choose x ticks so that labels do not overlap.
    fn fit_xticks(xr: (f64, f64), plot_w: i64, scale: u32) -> (Vec<f64>, f64) {
        let mut fallback = None;
        for target in (2..=6).rev() {
            let (ticks, step) = nice_ticks(xr.0, xr.1, target);
            let px_per_tick = step / (xr.1 - xr.0) * (plot_w - 1) as f64;
            let widest = Self::max_label_width(&ticks, step, xr, scale) as f64;
            let gap = f64::from(ADVANCE as u32 * 2 * scale);
            if ticks.len() <= 1 || widest + gap <= px_per_tick {
                return (ticks, step);
            }
            fallback = Some((ticks, step));
        }
        fallback.unwrap_or((Vec::new(), 1.0))
    }

    fn fit_yticks(yr: (f64, f64), plot_h: i64, scale: u32) -> (Vec<f64>, f64) {
        let line = i64::from(text_height(scale));
        let target = (plot_h / (line * 3)).clamp(2, 5) as usize;
        nice_ticks(yr.0, yr.1, target)
    }

    fn layout(&self, panel: Rect, scale: u32) -> Layout {
        let ch = i64::from(text_height(scale));
        let (base_x, base_y) = self.ranges();
        let cbar_limits = self.colorbar_limits();
        let cbar_ticks = cbar_limits.map(|l| nice_ticks(l.0, l.1, 4));
        let cbar_space = match (&cbar_limits, &cbar_ticks) {
            (Some(l), Some((t, step))) => {
                10 + 10 + 2 + TICK + Self::max_label_width(t, *step, *l, scale) + PAD
            }
            _ => 0,
        };
        let top = if !self.title.is_empty() {
            PAD + ch + 6
        } else if self.axis_visible {
            (ch / 2 + PAD).max(8)
        } else {
            2
        };

        let make = |plot: Rect,
                    xr: (f64, f64),
                    yr: (f64, f64),
                    xt: (Vec<f64>, f64),
                    yt: (Vec<f64>, f64)| {
            let colorbar = cbar_limits.map(|l| {
                (
                    Rect {
                        x: plot.right() + 10,
                        y: plot.y,
                        w: 10,
                        h: plot.h,
                    },
                    l,
                )
            });
            Layout {
                panel,
                plot,
                xr,
                yr,
                xticks: xt.0,
                xstep: xt.1,
                yticks: yt.0,
                ystep: yt.1,
                scale,
                colorbar,
            }
        };

        if !self.axis_visible {
            let bottom = if self.xlabel.is_empty() {
                2
            } else {
                ch + 2 * PAD
            };
            let left = if self.ylabel.is_empty() {
                2
            } else {
                ch + 2 * PAD
            };
            let plot = Rect {
                x: panel.x + left,
                y: panel.y + top,
                w: (panel.w - left - 2 - cbar_space).max(2),
                h: (panel.h - top - bottom).max(2),
            };
            let (xr, yr) = if self.equal_aspect {
                Self::equalize(base_x, base_y, plot)
            } else {
                (base_x, base_y)
            };
            return make(plot, xr, yr, (Vec::new(), 1.0), (Vec::new(), 1.0));
        }

        let ylabel_w = if self.ylabel.is_empty() { 0 } else { ch + 6 };
        let xlabel_h = if self.xlabel.is_empty() { 0 } else { ch + 6 };
        let bottom = TICK + 3 + ch + xlabel_h + PAD;
        let mut ytick_w = 0;
        let mut right_overhang = 0;
        let mut result = None;
        for _ in 0..4 {
            let left = PAD + ylabel_w + ytick_w + 3 + TICK;
            let right = (right_overhang + 2).max(10) + cbar_space;
            let plot = Rect {
                x: panel.x + left,
                y: panel.y + top,
                w: (panel.w - left - right).max(2),
                h: (panel.h - top - bottom).max(2),
            };
            let (xr, yr) = if self.equal_aspect {
                Self::equalize(base_x, base_y, plot)
            } else {
                (base_x, base_y)
            };
            let yt = Self::fit_yticks(yr, plot.h, scale);
            let xt = Self::fit_xticks(xr, plot.w, scale);
            let new_ytick_w = Self::max_label_width(&yt.0, yt.1, yr, scale);
            // How far the label of the right-most tick sticks out past the plot.
            let mag = xr.0.abs().max(xr.1.abs());
            let new_overhang = xt.0.last().map_or(0, |&t| {
                let w = i64::from(text_width(&format_tick(t, xt.1, mag), scale));
                let px = plot.x as f64 + (t - xr.0) / (xr.1 - xr.0) * (plot.w - 1) as f64;
                ((px.round() as i64 + w / 2 + 1) - plot.right()).max(0)
            });
            let stable = new_ytick_w <= ytick_w && new_overhang <= right_overhang;
            result = Some(make(plot, xr, yr, xt, yt));
            if stable {
                break;
            }
            ytick_w = ytick_w.max(new_ytick_w);
            right_overhang = right_overhang.max(new_overhang);
        }
        result.unwrap_or_else(|| make(panel, base_x, base_y, (Vec::new(), 1.0), (Vec::new(), 1.0)))
    }

    fn render(&self, img: &mut RgbImage, layout: &Layout) {
        let full = Rect::of_image(img);
        let mut canvas = Canvas { img, clip: full };
        let panel = layout.panel;
        let plot = layout.plot;
        canvas.fill_rect(panel, WHITE);

        // Rasters underneath everything else.
        {
            let mut c = canvas.with_clip(plot);
            for item in self.items.iter().filter(|i| i.is_raster()) {
                draw_raster(&mut c, layout, item);
            }
        }
        if self.grid && self.axis_visible {
            let mut c = canvas.with_clip(plot);
            for &t in &layout.xticks {
                let (px, _) = layout.to_px(t, layout.yr.0);
                c.vline_px(px.round() as i64, plot.y, plot.bottom(), LIGHT_GREY);
            }
            for &t in &layout.yticks {
                let (_, py) = layout.to_px(layout.xr.0, t);
                c.hline_px(plot.x, plot.right(), py.round() as i64, LIGHT_GREY);
            }
        }
        {
            let mut c = canvas.with_clip(plot);
            for item in self.items.iter().filter(|i| !i.is_raster()) {
                draw_vector(&mut c, layout, item);
            }
        }
        let s = layout.scale;
        let ch = i64::from(text_height(s));
        let mut c = canvas.with_clip(panel);
        if self.axis_visible {
            c.rect_outline(plot, BLACK);
            let xmag = layout.xr.0.abs().max(layout.xr.1.abs());
            for &t in &layout.xticks {
                let px = layout.to_px(t, layout.yr.0).0.round() as i64;
                c.vline_px(px, plot.bottom() + 1, plot.bottom() + TICK, BLACK);
                let label = format_tick(t, layout.xstep, xmag);
                let w = i64::from(text_width(&label, s));
                let x = (px - w / 2).clamp(panel.x + 1, (panel.right() - w).max(panel.x + 1));
                c.text(x, plot.bottom() + TICK + 3, &label, TEXT, s);
            }
            let ymag = layout.yr.0.abs().max(layout.yr.1.abs());
            for &t in &layout.yticks {
                let py = layout.to_px(layout.xr.0, t).1.round() as i64;
                c.hline_px(plot.x - TICK, plot.x - 1, py, BLACK);
                let label = format_tick(t, layout.ystep, ymag);
                let w = i64::from(text_width(&label, s));
                let y = (py - cap_height(s) / 2)
                    .clamp(panel.y + 1, (panel.bottom() - ch).max(panel.y + 1));
                c.text(plot.x - TICK - 3 - w, y, &label, TEXT, s);
            }
        }
        if !self.title.is_empty() {
            let w = i64::from(text_width(&self.title, s));
            let x = (plot.x + plot.w / 2 - w / 2)
                .clamp(panel.x + 1, (panel.right() - w).max(panel.x + 1));
            c.text(x, panel.y + PAD, &self.title, TEXT, s);
        }
        if !self.xlabel.is_empty() {
            let w = i64::from(text_width(&self.xlabel, s));
            let x = (plot.x + plot.w / 2 - w / 2)
                .clamp(panel.x + 1, (panel.right() - w).max(panel.x + 1));
            let y = if self.axis_visible {
                plot.bottom() + TICK + 3 + ch + 6
            } else {
                plot.bottom() + PAD
            };
            c.text(x, y, &self.xlabel, TEXT, s);
        }
        if !self.ylabel.is_empty() {
            let h = i64::from(text_width(&self.ylabel, s));
            let y = (plot.y + plot.h / 2 - h / 2)
                .clamp(panel.y + 1, (panel.bottom() - h).max(panel.y + 1));
            c.text_vertical(panel.x + PAD, y, &self.ylabel, TEXT, s);
        }
        if let Some((bar, limits)) = layout.colorbar {
            draw_colorbar(&mut c, bar, limits, s);
        }
        if !self.legend.is_empty() {
            draw_legend(&mut c, plot, &self.legend, self.legend_corner, s);
        }
    }
}

fn draw_raster(c: &mut Canvas<'_>, layout: &Layout, item: &Item) {
    let plot = c.clip;
    match item {
        Item::Heatmap {
            grid,
            nx,
            ny,
            xr,
            yr,
            limits,
        } => {
            let span = limits.1 - limits.0;
            for py in plot.y..=plot.bottom() {
                for px in plot.x..=plot.right() {
                    let (x, y) = layout.px_to_data(px as f64, py as f64);
                    let fx = (x - xr.0) / (xr.1 - xr.0);
                    let fy = (y - yr.0) / (yr.1 - yr.0);
                    if !((0.0..=1.0).contains(&fx) && (0.0..=1.0).contains(&fy)) {
                        continue;
                    }
                    let i = ((fx * *nx as f64) as usize).min(nx - 1);
                    let j = ((fy * *ny as f64) as usize).min(ny - 1);
                    let color = match grid.get(j * nx + i) {
                        Some(&v) if v.is_finite() => colormap(if span > 0.0 {
                            (v - limits.0) / span
                        } else {
                            0.5
                        }),
                        _ => NAN_COLOR,
                    };
                    c.plot(px, py, color);
                }
            }
        }
        Item::Gray {
            pixels,
            w,
            h,
            lo,
            hi,
        } => {
            let span = f64::from(*hi) - f64::from(*lo);
            for py in plot.y..=plot.bottom() {
                for px in plot.x..=plot.right() {
                    let (x, y) = layout.px_to_data(px as f64, py as f64);
                    if !(x >= 0.0 && x <= *w as f64 && y >= 0.0 && y <= *h as f64) {
                        continue;
                    }
                    let col = (x as usize).min(w - 1);
                    let row = h - 1 - (y as usize).min(h - 1);
                    let color = match pixels.get(row * w + col) {
                        Some(&v) if v.is_finite() => gray_level(v, *lo, span),
                        _ => NAN_COLOR,
                    };
                    c.plot(px, py, color);
                }
            }
        }
        _ => {}
    }
}

fn gray_level(v: f32, lo: f32, span: f64) -> Color {
    let t = if span > 0.0 {
        ((f64::from(v) - f64::from(lo)) / span).clamp(0.0, 1.0)
    } else {
        0.5
    };
    let g = (t * 255.0).round() as u8;
    [g, g, g]
}

fn draw_vector(c: &mut Canvas<'_>, layout: &Layout, item: &Item) {
    let plot = c.clip;
    match item {
        Item::Line {
            xs,
            ys,
            color,
            width,
        } => {
            let mut prev: Option<(f64, f64)> = None;
            for (&x, &y) in xs.iter().zip(ys) {
                if !(x.is_finite() && y.is_finite()) {
                    prev = None;
                    continue;
                }
                let p = layout.to_px(x, y);
                match prev {
                    Some(q) => c.line(q, p, *color, *width),
                    None => c.line(p, p, *color, *width),
                }
                prev = Some(p);
            }
        }
        Item::Scatter {
            xs,
            ys,
            color,
            radius,
        } => {
            for (&x, &y) in xs.iter().zip(ys) {
                if x.is_finite() && y.is_finite() {
                    let (px, py) = layout.to_px(x, y);
                    c.disc(px, py, *radius, *color);
                }
            }
        }
        Item::Colored {
            xs,
            ys,
            colors,
            radius,
        } => {
            if colors.is_empty() {
                return;
            }
            for (k, (&x, &y)) in xs.iter().zip(ys).enumerate() {
                if x.is_finite() && y.is_finite() {
                    let (px, py) = layout.to_px(x, y);
                    c.disc(px, py, *radius, colors[k % colors.len()]);
                }
            }
        }
        Item::Quiver {
            xs,
            ys,
            us,
            vs,
            color,
        } => draw_quiver(c, layout, (xs, ys, us, vs), *color),
        Item::HLine { y, color } => {
            if y.is_finite() {
                let py = layout.to_px(layout.xr.0, *y).1;
                c.line((plot.x as f64, py), (plot.right() as f64, py), *color, 1);
            }
        }
        Item::VLine { x, color } => {
            if x.is_finite() {
                let px = layout.to_px(*x, layout.yr.0).0;
                c.line((px, plot.y as f64), (px, plot.bottom() as f64), *color, 1);
            }
        }
        Item::Text { x, y, text, color } => {
            if x.is_finite() && y.is_finite() {
                let (px, py) = layout.to_px(*x, *y);
                let ch = cap_height(layout.scale) as f64;
                if px.abs() < 1e9 && py.abs() < 1e9 {
                    c.text(
                        px.round() as i64,
                        (py - ch / 2.0).round() as i64,
                        text,
                        *color,
                        layout.scale,
                    );
                }
            }
        }
        Item::Heatmap { .. } | Item::Gray { .. } => {}
    }
}

type QuiverData<'a> = (&'a [f64], &'a [f64], &'a [f64], &'a [f64]);

fn draw_quiver(c: &mut Canvas<'_>, layout: &Layout, data: QuiverData<'_>, color: Color) {
    let (xs, ys, us, vs) = data;
    let (sx, sy) = layout.scales();
    // Arrows in pixel space; directions follow the plotted axes.
    let mut arrows = Vec::with_capacity(xs.len());
    let mut bbox_x = Span::empty();
    let mut bbox_y = Span::empty();
    let mut longest = 0.0f64;
    for i in 0..xs.len() {
        let (x, y, u, v) = (xs[i], ys[i], us[i], vs[i]);
        if ![x, y, u, v].iter().all(|t| t.is_finite()) {
            continue;
        }
        let (px, py) = layout.to_px(x, y);
        let (du, dv) = (u * sx, -v * sy);
        let len = du.hypot(dv);
        if !len.is_finite() {
            continue;
        }
        bbox_x.add(px);
        bbox_y.add(py);
        longest = longest.max(len);
        arrows.push((px, py, du, dv));
    }
    if arrows.is_empty() {
        return;
    }
    let n = arrows.len() as f64;
    let w = if bbox_x.is_empty() {
        0.0
    } else {
        bbox_x.hi - bbox_x.lo
    };
    let h = if bbox_y.is_empty() {
        0.0
    } else {
        bbox_y.hi - bbox_y.lo
    };
    let cell = if w > 1.0 && h > 1.0 {
        (w * h / n).sqrt()
    } else if w.max(h) > 1.0 {
        w.max(h) / (n - 1.0).max(1.0)
    } else {
        20.0
    };
    let k = if longest > 0.0 {
        0.9 * cell / longest
    } else {
        0.0
    };
    for (px, py, du, dv) in arrows {
        let (ex, ey) = (px + du * k, py + dv * k);
        let len = (du * k).hypot(dv * k);
        if len < 1.0 {
            c.plot(px.round() as i64, py.round() as i64, color);
            continue;
        }
        c.line((px, py), (ex, ey), color, 1);
        if len < 4.0 {
            continue; // too short for a readable head
        }
        let head = (0.35 * len).clamp(2.0, 8.0);
        let ang = dv.atan2(du);
        for side in [-0.45f64, 0.45] {
            let a = ang + std::f64::consts::PI + side;
            c.line(
                (ex, ey),
                (ex + head * a.cos(), ey + head * a.sin()),
                color,
                1,
            );
        }
    }
}

fn draw_colorbar(c: &mut Canvas<'_>, bar: Rect, limits: (f64, f64), s: u32) {
    if bar.h < 2 {
        return;
    }
    for y in bar.y..=bar.bottom() {
        let t = (bar.bottom() - y) as f64 / (bar.h - 1) as f64;
        c.hline_px(bar.x, bar.right(), y, colormap(t));
    }
    c.rect_outline(bar, BLACK);
    let (ticks, step) = nice_ticks(limits.0, limits.1, 4);
    let mag = limits.0.abs().max(limits.1.abs());
    let cap = cap_height(s);
    for t in ticks {
        let f = (t - limits.0) / (limits.1 - limits.0);
        let y = (bar.bottom() as f64 - f * (bar.h - 1) as f64).round() as i64;
        c.hline_px(bar.right() + 1, bar.right() + TICK, y, BLACK);
        c.text(
            bar.right() + TICK + 2,
            y - cap / 2,
            &format_tick(t, step, mag),
            TEXT,
            s,
        );
    }
}

fn draw_legend(
    c: &mut Canvas<'_>,
    plot: Rect,
    entries: &[(String, Color)],
    corner: Corner,
    s: u32,
) {
    let ch = i64::from(text_height(s));
    let row_h = ch + 4;
    let swatch = 14 * i64::from(s);
    let label_w = entries
        .iter()
        .map(|(l, _)| i64::from(text_width(l, s)))
        .max()
        .unwrap_or(0);
    let w = 4 + swatch + 4 + label_w + 5;
    let h = 4 + row_h * entries.len() as i64;
    let inset = 6;
    let x = match corner {
        Corner::TopLeft | Corner::BottomLeft => plot.x + inset,
        Corner::TopRight | Corner::BottomRight => plot.right() - inset - w + 1,
    };
    let y = match corner {
        Corner::TopLeft | Corner::TopRight => plot.y + inset,
        Corner::BottomLeft | Corner::BottomRight => plot.bottom() - inset - h + 1,
    };
    let r = Rect { x, y, w, h };
    c.fill_rect(r, WHITE);
    c.rect_outline(r, GREY);
    for (i, (label, color)) in entries.iter().enumerate() {
        let ty = y + 4 + row_h * i as i64;
        let mid = (ty + cap_height(s) / 2) as f64;
        let x0 = (x + 4) as f64;
        c.line((x0, mid), (x0 + swatch as f64 - 1.0, mid), *color, 2);
        c.text(x + 4 + swatch + 4, ty, label, TEXT, s);
    }
}

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
    /// A figure of `cols` × `rows` panels of `panel_w` × `panel_h` pixels
    /// each (at least 1 panel, at least 40×40 pixels).
    pub fn new(cols: usize, rows: usize, panel_w: u32, panel_h: u32) -> Self {
        let cols = cols.max(1);
        let rows = rows.max(1);
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
        assert!(
            col < self.cols && row < self.rows,
            "panel ({col}, {row}) outside a {}x{} figure",
            self.cols,
            self.rows
        );
        &mut self.axes[row * self.cols + col]
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

    /// Override the font scale (default: 1, or 2 for panels at least 400 px
    /// in both dimensions).
    pub fn set_text_scale(&mut self, scale: u32) -> &mut Self {
        self.text_scale = Some(scale.clamp(1, 8));
        self
    }

    /// Font scale used for all text (see [`Figure::set_text_scale`]).
    pub fn text_scale(&self) -> u32 {
        self.text_scale
            .unwrap_or(if self.panel_w.min(self.panel_h) >= 400 {
                2
            } else {
                1
            })
    }

    fn title_height(&self) -> u32 {
        if self.title.is_empty() {
            0
        } else {
            text_height(self.text_scale() + 1) + 12
        }
    }

    /// Width of the rendered image in pixels.
    pub fn width(&self) -> u32 {
        self.panel_w.saturating_mul(self.cols as u32)
    }

    /// Height of the rendered image in pixels.
    pub fn height(&self) -> u32 {
        self.panel_h
            .saturating_mul(self.rows as u32)
            .saturating_add(self.title_height())
    }

    fn panel_rect(&self, col: usize, row: usize) -> Rect {
        Rect {
            x: col as i64 * i64::from(self.panel_w),
            y: i64::from(self.title_height()) + row as i64 * i64::from(self.panel_h),
            w: i64::from(self.panel_w),
            h: i64::from(self.panel_h),
        }
    }

    fn layout_of(&self, col: usize, row: usize) -> Layout {
        self.axes[row * self.cols + col].layout(self.panel_rect(col, row), self.text_scale())
    }

    /// Pixel position (in the rendered image) of data point (`x`, `y`) in
    /// panel (`col`, `row`); `None` if the panel does not exist.
    pub fn data_to_pixel(&self, col: usize, row: usize, x: f64, y: f64) -> Option<(f64, f64)> {
        if col >= self.cols || row >= self.rows {
            return None;
        }
        Some(self.layout_of(col, row).to_px(x, y))
    }

    /// The data ranges panel (`col`, `row`) is drawn with, after any
    /// equal-aspect adjustment.
    pub fn panel_ranges(&self, col: usize, row: usize) -> Option<((f64, f64), (f64, f64))> {
        if col >= self.cols || row >= self.rows {
            return None;
        }
        let l = self.layout_of(col, row);
        Some((l.xr, l.yr))
    }

    /// Rasterise the figure.
    pub fn render(&self) -> RgbImage {
        let mut img = RgbImage::from_pixel(self.width(), self.height(), Rgb(WHITE));
        if !self.title.is_empty() {
            let s = self.text_scale() + 1;
            let w = i64::from(text_width(&self.title, s));
            let x = ((i64::from(self.width()) - w) / 2).max(2);
            let clip = Rect::of_image(&img);
            Canvas {
                img: &mut img,
                clip,
            }
            .text(x, 6, &self.title, TEXT, s);
        }
        for row in 0..self.rows {
            for col in 0..self.cols {
                let layout = self.layout_of(col, row);
                self.axes[row * self.cols + col].render(&mut img, &layout);
            }
        }
        img
    }

    /// Render and write a PNG atomically (`<path>.tmp`, fsync, rename).
    pub fn save_png(&self, path: &Path) -> anyhow::Result<()> {
        save_rgb_png(&self.render(), path)
    }
}

// ---------------------------------------------------------------------------
// Image grids and PNG output
// ---------------------------------------------------------------------------

const SEPARATOR: Color = [90, 90, 120];

/// Tile greyscale images (each `w`×`h`, row-major) into a grid with `cols`
/// columns, mapping `lo`..`hi` to black..white and enlarging each pixel to
/// `scale`×`scale`. Images are separated (and framed) by 1 px lines, 2 px when
/// `scale >= 3`. Missing or NaN pixels are drawn in light grey.
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
    let tile_w = w * s;
    let tile_h = h * s;
    let total_w = (cols * (tile_w + sep) + sep).max(1);
    let total_h = (rows * (tile_h + sep) + sep).max(1);
    let mut img = RgbImage::from_pixel(
        u32::try_from(total_w).unwrap_or(u32::MAX),
        u32::try_from(total_h).unwrap_or(u32::MAX),
        Rgb(SEPARATOR),
    );
    let span = f64::from(hi) - f64::from(lo);
    for (k, pixels) in images.iter().enumerate() {
        let ox = sep + (k % cols) * (tile_w + sep);
        let oy = sep + (k / cols) * (tile_h + sep);
        for py in 0..tile_h {
            for px in 0..tile_w {
                let color = match pixels.get((py / s) * w + px / s) {
                    Some(&v) if v.is_finite() => gray_level(v, lo, span),
                    _ => NAN_COLOR,
                };
                let (x, y) = (ox + px, oy + py);
                if x < total_w && y < total_h {
                    img.put_pixel(x as u32, y as u32, Rgb(color));
                }
            }
        }
    }
    img
}

/// Encode `img` as PNG and write it atomically to `path` ([`crate::atomic`]).
pub fn save_rgb_png(img: &RgbImage, path: &Path) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    img.write_to(&mut Cursor::new(&mut buf), ImageFormat::Png)
        .with_context(|| format!("failed to encode PNG for {}", path.display()))?;
    crate::atomic::atomic_write(path, &buf)
}

// ---------------------------------------------------------------------------
// Training curves
// ---------------------------------------------------------------------------

/// Keys of `metrics.jsonl` that are bookkeeping, not curves.
const NOT_CURVES: &[&str] = &["step", "wall_s", "pattern"];

/// `curves.png`: every numeric quantity of a run's `metrics.jsonl` against the step, one panel
/// each (`loss` first). A quantity that stays positive and spans more than two decades is drawn
/// as log10. Returns `Ok(false)` (and writes nothing) when there is nothing to plot yet.
pub fn training_curves(metrics: &Path, out: &Path) -> anyhow::Result<bool> {
    let text = match fs::read_to_string(metrics) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", metrics.display())),
    };
    let mut series: std::collections::BTreeMap<String, (Vec<f64>, Vec<f64>)> = Default::default();
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
    let mut keys: Vec<String> = series.keys().cloned().collect();
    keys.sort_by_key(|k| (k != "loss", k.clone()));
    if keys.is_empty() || series.values().all(|(x, _)| x.len() < 2) {
        return Ok(false);
    }
    let cols = keys.len().min(3);
    let rows = keys.len().div_ceil(cols);
    let mut fig = Figure::new(cols, rows, 360, 260);
    fig.set_title("training curves (metrics.jsonl)");
    for (i, k) in keys.iter().enumerate() {
        let (xs, ys) = &series[k];
        let (lo, hi) = ys
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &y| {
                (a.min(y), b.max(y))
            });
        let log = lo > 0.0 && hi / lo > 100.0;
        let ys: Vec<f64> = if log {
            ys.iter().map(|y| y.log10()).collect()
        } else {
            ys.clone()
        };
        let label = if log { format!("log10 {k}") } else { k.clone() };
        fig.axes_at(i)
            .set_title(&label)
            .set_xlabel("step")
            .line(xs, &ys, palette(0));
    }
    for i in keys.len()..cols * rows {
        fig.axes_at(i).set_axis_visible(false);
    }
    fig.save_png(out)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atomic::tmp_path;
    use std::path::PathBuf;

    fn px(img: &RgbImage, p: (f64, f64)) -> Color {
        img.get_pixel(p.0.round() as u32, p.1.round() as u32).0
    }

    fn count_color(img: &RgbImage, color: Color) -> usize {
        img.pixels().filter(|p| p.0 == color).count()
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("plot_test_{}_{name}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn font_covers_printable_ascii() {
        for code in 33u8..=126 {
            let g = glyph(char::from(code));
            assert!(g.iter().any(|&r| r != 0), "glyph {code} is blank");
            assert!(g.iter().all(|&r| r < 32), "glyph {code} too wide");
        }
        assert!(glyph(' ').iter().all(|&r| r == 0));
        assert_eq!(glyph('\u{e9}'), glyph('?'));
        assert_eq!(text_width("", 3), 0);
        assert_eq!(text_width("ab", 1), 11);
        assert_eq!(text_width("ab", 2), 22);
        assert_eq!(text_height(3), 27);
    }

    #[test]
    fn text_draws_pixels() {
        let mut img = RgbImage::from_pixel(80, 20, Rgb(WHITE));
        draw_text(&mut img, 2, 2, "x=-1.5e3 (ok)", BLACK, 1);
        assert!(count_color(&img, BLACK) > 30);
        // Nothing outside the text box.
        let w = text_width("x=-1.5e3 (ok)", 1);
        for (x, y, p) in img.enumerate_pixels() {
            if p.0 == BLACK {
                assert!((2..2 + w).contains(&x) && (2..11).contains(&y));
            }
        }
        let mut v = RgbImage::from_pixel(20, 80, Rgb(WHITE));
        draw_text_vertical(&mut v, 1, 1, "abc", BLACK, 2);
        assert!(count_color(&v, BLACK) > 20);
        // Off-image text must not panic.
        draw_text(&mut img, -100, -100, "hello", BLACK, 3);
        draw_text(&mut img, 75, 15, "hello", BLACK, 3);
    }

    #[test]
    fn colormap_and_palette() {
        assert_eq!(colormap(0.0), CMAP_ANCHORS[0]);
        assert_eq!(colormap(1.0), CMAP_ANCHORS[8]);
        assert_eq!(colormap(-5.0), colormap(0.0));
        assert_eq!(colormap(f64::NAN), NAN_COLOR);
        // Luminance increases monotonically.
        let lum =
            |c: Color| 0.3 * f64::from(c[0]) + 0.59 * f64::from(c[1]) + 0.11 * f64::from(c[2]);
        let mut prev = -1.0;
        for i in 0..=100 {
            let l = lum(colormap(f64::from(i) / 100.0));
            assert!(l > prev, "luminance not increasing at {i}");
            prev = l;
        }
        assert_eq!(palette(3), palette(13));
        for (i, a) in PALETTE.iter().enumerate() {
            assert!(
                PALETTE[..i].iter().all(|b| b != a),
                "duplicate palette colour {i}"
            );
        }
    }

    #[test]
    fn tick_generation_and_format() {
        let (t, step) = nice_ticks(0.0, 1.0, 5);
        assert_eq!(step, 0.2);
        assert_eq!(t.len(), 6);
        let (t, step) = nice_ticks(-3.3, 7.9, 5);
        assert_eq!(step, 2.0);
        assert_eq!(t, vec![-2.0, 0.0, 2.0, 4.0, 6.0]);
        let labels: Vec<String> = t.iter().map(|&v| format_tick(v, step, 7.9)).collect();
        assert_eq!(labels, ["-2", "0", "2", "4", "6"]);
        let (t, step) = nice_ticks(0.0, 0.001, 5);
        assert!(t.len() >= 4 && t.len() <= 6, "{t:?}");
        let labels: Vec<String> = t.iter().map(|&v| format_tick(v, step, 0.001)).collect();
        assert_eq!(
            labels,
            ["0", "0.0002", "0.0004", "0.0006", "0.0008", "0.0010"]
        );
        assert_eq!(format_tick(0.1 + 0.2, 0.1, 1.0), "0.3");
        assert_eq!(format_tick(2.0e5, 1.0e5, 5.0e5), "2e5");
        assert_eq!(format_tick(1.5e5, 5.0e4, 5.0e5), "1.5e5");
        assert_eq!(format_tick(-2.5e-5, 2.5e-5, 1e-4), "-2.5e-5");
        assert_eq!(format_tick(-1e-17, 0.5, 2.0), "0");
        assert_eq!(format_compact(4.56789), "4.57");
        assert_eq!(format_compact(100.0), "100");
        assert_eq!(format_compact(0.000123), "1.23e-4");
        assert_eq!(format_compact(123456.0), "1.23e5");
        assert_eq!(format_compact(-0.5), "-0.5");
        assert_eq!(format_compact(f64::NAN), "nan");
        // Degenerate inputs do not panic.
        assert_eq!(nice_ticks(1.0, 1.0, 5).0, vec![1.0]);
        assert!(nice_ticks(f64::NAN, 1.0, 5).0.is_empty());
        let (t, _) = nice_ticks(1e300, 1.7e308, 5);
        assert!(!t.is_empty() && t.len() < 20);
    }

    #[test]
    fn ranges_and_transform() {
        let mut ax = Axes::new();
        assert_eq!(ax.ranges(), ((0.0, 1.0), (0.0, 1.0)));
        ax.line(&[0.0, 10.0], &[-1.0, 1.0], BLACK);
        let ((x0, x1), (y0, y1)) = ax.ranges();
        assert!((x0 + 0.5).abs() < 1e-12 && (x1 - 10.5).abs() < 1e-12);
        assert!((y0 + 1.1).abs() < 1e-12 && (y1 - 1.1).abs() < 1e-12);
        ax.set_xlim(2.0, -2.0);
        assert_eq!(ax.ranges().0, (-2.0, 2.0));
        ax.set_ylim(3.0, 3.0);
        let yr = ax.ranges().1;
        assert!(yr.0 < 3.0 && yr.1 > 3.0);

        // Heatmap-only panels are tight.
        let mut hm = Axes::new();
        hm.heatmap(&[0.0; 6], 3, 2, (0.0, 3.0), (-1.0, 1.0));
        assert_eq!(hm.ranges(), ((0.0, 3.0), (-1.0, 1.0)));

        // A single point gets a non-degenerate range.
        let mut one = Axes::new();
        one.scatter(&[5.0], &[0.0], BLACK, 2);
        let ((a, b), (c, d)) = one.ranges();
        assert!(a < 5.0 && b > 5.0 && c < 0.0 && d > 0.0);

        // Transform maps range corners to the plot-area corners.
        let mut fig = Figure::new(2, 1, 300, 200);
        fig.axes(1, 0).set_xlim(0.0, 10.0).set_ylim(-1.0, 1.0);
        let l = fig.layout_of(1, 0);
        assert_eq!(
            fig.data_to_pixel(1, 0, 0.0, -1.0),
            Some((l.plot.x as f64, l.plot.bottom() as f64))
        );
        assert_eq!(
            fig.data_to_pixel(1, 0, 10.0, 1.0),
            Some((l.plot.right() as f64, l.plot.y as f64))
        );
        let (bx, by) = l.px_to_data(l.plot.x as f64, l.plot.y as f64);
        assert!((bx - 0.0).abs() < 1e-9 && (by - 1.0).abs() < 1e-9);
        assert!(
            l.plot.x >= 300 && l.plot.right() < 600,
            "plot inside its panel"
        );
        assert!(l.plot.w > 150 && l.plot.h > 100);
        assert_eq!(fig.data_to_pixel(2, 0, 0.0, 0.0), None);
        // Ticks lie within the range.
        assert!(l.xticks.iter().all(|&t| (0.0..=10.0).contains(&t)));
        assert!(l.yticks.iter().all(|&t| (-1.0..=1.0).contains(&t)));
        assert!(l.xticks.len() >= 3 && l.yticks.len() >= 3);
    }

    #[test]
    fn equal_aspect_expands_one_axis() {
        let mut fig = Figure::new(1, 1, 400, 200);
        fig.axes(0, 0)
            .set_xlim(0.0, 1.0)
            .set_ylim(0.0, 1.0)
            .set_equal_aspect(true);
        let l = fig.layout_of(0, 0);
        let (sx, sy) = l.scales();
        assert!((sx - sy).abs() < 1e-9 * sx);
        assert!(l.xr.1 - l.xr.0 > 1.0);
        assert_eq!(l.yr, (0.0, 1.0));
    }

    #[test]
    fn line_is_drawn_where_expected() {
        let red = [255, 0, 0];
        let blue = [0, 0, 255];
        let mut fig = Figure::new(1, 1, 320, 240);
        fig.axes(0, 0)
            .set_xlim(0.0, 10.0)
            .set_ylim(0.0, 10.0)
            .line(&[0.0, 10.0], &[5.0, 5.0], red)
            .line_width(&[2.0, 2.0], &[0.0, 10.0], blue, 2);
        let img = fig.render();
        for x in [1.0, 3.3, 5.0, 7.7, 9.0] {
            assert_eq!(
                px(&img, fig.data_to_pixel(0, 0, x, 5.0).unwrap()),
                red,
                "x={x}"
            );
        }
        for y in [1.0, 7.0] {
            let (x, yy) = fig.data_to_pixel(0, 0, 2.0, y).unwrap();
            assert_eq!(px(&img, (x, yy)), blue);
        }
        // Off the line stays white.
        assert_eq!(px(&img, fig.data_to_pixel(0, 0, 5.0, 7.0).unwrap()), WHITE);
        // The red line is one pixel thick: count ~ plot width.
        let l = fig.layout_of(0, 0);
        let n = count_color(&img, red) as i64;
        assert!((n - l.plot.w).abs() <= 4, "{n} vs {}", l.plot.w);
    }

    #[test]
    fn drawing_is_clipped_to_plot_area() {
        let green = [0, 200, 0];
        let mut fig = Figure::new(1, 1, 200, 150);
        fig.axes(0, 0)
            .set_xlim(0.0, 1.0)
            .set_ylim(0.0, 1.0)
            .line(&[-100.0, 100.0], &[-50.0, 60.0], green)
            .line(&[-1e300, 1e300], &[0.5, 0.5], green)
            .scatter(&[0.0, 1.0, 5.0, -1e200], &[0.0, 1.0, 0.5, 1e200], green, 6);
        let img = fig.render();
        let l = fig.layout_of(0, 0);
        assert!(count_color(&img, green) > 50);
        for (x, y, p) in img.enumerate_pixels() {
            if p.0 == green {
                assert!(l.plot.contains(i64::from(x), i64::from(y)), "({x},{y})");
            }
        }
    }

    #[test]
    fn non_finite_values_are_skipped() {
        let nan = f64::NAN;
        let inf = f64::INFINITY;
        let mut fig = Figure::new(2, 2, 200, 160);
        fig.axes(0, 0)
            .line(
                &[0.0, 1.0, nan, 3.0, inf, 5.0],
                &[0.0, 1.0, 2.0, nan, 4.0, -inf],
                BLACK,
            )
            .scatter(&[nan, 1.0], &[1.0, inf], BLACK, 3)
            .hline(nan, BLACK)
            .vline(inf, BLACK)
            .text(nan, 0.0, "x", BLACK);
        let ((x0, x1), (y0, y1)) = fig.axes(0, 0).ranges();
        assert!(x0.is_finite() && x1.is_finite() && y0.is_finite() && y1.is_finite());
        assert!(x0 < 0.0 && x1 > 1.0);
        fig.axes(1, 0)
            .quiver(
                &[0.0, 1.0, nan],
                &[0.0, 1.0, 2.0],
                &[1.0, nan, 1.0],
                &[inf, 0.0, 1.0],
                BLACK,
            )
            .points_colored(&[nan, 0.5], &[0.5, 0.5], &[[1, 2, 3]]);
        fig.axes(0, 1)
            .heatmap(&[nan, 1.0, inf, 2.0], 2, 2, (0.0, 1.0), (0.0, nan))
            .heatmap(&[nan; 4], 2, 2, (0.0, 1.0), (0.0, 1.0));
        fig.axes(1, 1)
            .image_gray(&[f32::NAN, 0.5, f32::INFINITY], 2, 2, 0.0, 1.0)
            .set_xlim(nan, 1.0);
        let img = fig.render();
        assert_eq!(img.dimensions(), (400, 320));
    }

    #[test]
    fn empty_data_does_not_panic() {
        let mut fig = Figure::new(3, 2, 120, 90);
        fig.set_title("empty");
        fig.axes(0, 0)
            .line(&[], &[], BLACK)
            .set_title("t")
            .set_xlabel("x")
            .set_ylabel("y");
        fig.axes(1, 0).scatter(&[], &[], BLACK, 2).legend(&[]);
        fig.axes(2, 0).quiver(&[], &[], &[], &[], BLACK);
        fig.axes(0, 1).heatmap(&[], 0, 0, (0.0, 1.0), (0.0, 1.0));
        fig.axes(1, 1)
            .image_gray(&[], 0, 0, 0.0, 1.0)
            .set_axis_visible(false);
        fig.axes(2, 1)
            .points_colored(&[1.0, 2.0], &[1.0, 2.0], &[])
            .heatmap(&[], 3, 3, (0.0, 1.0), (0.0, 1.0));
        let img = fig.render();
        assert_eq!(img.dimensions(), (fig.width(), fig.height()));
        let g = image_grid(&[], 28, 28, 4, 0.0, 1.0, 2);
        assert!(g.width() >= 1 && g.height() >= 1);
        let g = image_grid(&[vec![]], 0, 0, 0, 0.0, 1.0, 0);
        assert!(g.width() >= 1 && g.height() >= 1);
        // Tiny figure.
        let mut tiny = Figure::new(1, 1, 1, 1);
        tiny.axes(0, 0)
            .set_title("a very long title that does not fit")
            .line(&[0.0, 1.0], &[0.0, 1.0], BLACK);
        let _ = tiny.render();
    }

    #[test]
    fn quiver_arrows_fit_cells() {
        let red = [250, 0, 0];
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        let mut us = Vec::new();
        let mut vs = Vec::new();
        for j in 0..5 {
            for i in 0..5 {
                xs.push(f64::from(i));
                ys.push(f64::from(j));
                us.push(1.0 + f64::from(i) * 10.0);
                vs.push(0.0);
            }
        }
        let mut fig = Figure::new(1, 1, 300, 300);
        fig.axes(0, 0).quiver(&xs, &ys, &us, &vs, red);
        let img = fig.render();
        let l = fig.layout_of(0, 0);
        let cell_px = (l.scales().0).min(l.scales().1);
        // Longest arrows start at x=4 and point right; their tip must stay within one cell.
        let (bx, by) = fig.data_to_pixel(0, 0, 4.0, 2.0).unwrap();
        let row = by.round() as u32;
        let reach = (bx.round() as u32..img.width())
            .take_while(|&x| img.get_pixel(x, row).0 == red)
            .count() as f64;
        assert!(
            reach > 0.5 * cell_px && reach <= cell_px + 1.0,
            "{reach} vs {cell_px}"
        );
    }

    #[test]
    fn heatmap_and_image_colours() {
        let mut fig = Figure::new(2, 1, 200, 200);
        // Row 0 (bottom) low values, row 1 (top) high.
        fig.axes(0, 0)
            .heatmap(&[0.0, 0.0, 1.0, 1.0], 2, 2, (0.0, 2.0), (0.0, 2.0));
        fig.axes(1, 0)
            .image_gray(&[0.0, 1.0, 1.0, 0.0], 2, 2, 0.0, 1.0);
        let img = fig.render();
        assert_eq!(
            px(&img, fig.data_to_pixel(0, 0, 0.5, 0.5).unwrap()),
            colormap(0.0)
        );
        assert_eq!(
            px(&img, fig.data_to_pixel(0, 0, 1.5, 1.5).unwrap()),
            colormap(1.0)
        );
        // Image row 0 is at the top: top-left black, top-right white.
        assert_eq!(px(&img, fig.data_to_pixel(1, 0, 0.5, 1.5).unwrap()), BLACK);
        assert_eq!(px(&img, fig.data_to_pixel(1, 0, 1.5, 1.5).unwrap()), WHITE);
        assert_eq!(px(&img, fig.data_to_pixel(1, 0, 0.5, 0.5).unwrap()), WHITE);
    }

    #[test]
    fn image_grid_layout() {
        let a = vec![0.0f32; 4];
        let b = vec![1.0f32; 4];
        let g = image_grid(&[a.clone(), b.clone(), a], 2, 2, 2, 0.0, 1.0, 3);
        // 2 columns of 6 px + 3 separators of 2 px.
        assert_eq!(g.dimensions(), (2 * 6 + 3 * 2, 2 * 6 + 3 * 2));
        assert_eq!(g.get_pixel(0, 0).0, SEPARATOR);
        assert_eq!(g.get_pixel(2, 2).0, BLACK);
        assert_eq!(g.get_pixel(10, 2).0, WHITE);
        assert_eq!(g.get_pixel(2, 10).0, BLACK);
        // Empty slot in the last row is separator-coloured.
        assert_eq!(g.get_pixel(12, 12).0, SEPARATOR);
        let g1 = image_grid(&[b], 2, 2, 5, 0.0, 1.0, 1);
        assert_eq!(g1.dimensions(), (4, 4));
    }

    #[test]
    fn png_round_trip() {
        let dir = scratch("png");
        let path = dir.join("fig.png");
        let mut fig = Figure::new(2, 1, 160, 120);
        fig.set_title("round trip");
        fig.axes(0, 0)
            .line(&[0.0, 1.0, 2.0], &[1.0, 0.0, 1.0], palette(0))
            .legend(&[("a", palette(0))]);
        fig.save_png(&path).unwrap();
        assert!(!tmp_path(&path).exists());
        let back = image::open(&path).unwrap().to_rgb8();
        assert_eq!(back, fig.render());

        let grid = image_grid(&[vec![0.25; 9], vec![0.75; 9]], 3, 3, 2, 0.0, 1.0, 4);
        let gpath = dir.join("grid.png");
        save_rgb_png(&grid, &gpath).unwrap();
        assert_eq!(image::open(&gpath).unwrap().to_rgb8(), grid);

        let bad = dir.join("no_such_dir").join("x.png");
        let msg = format!("{:#}", fig.save_png(&bad).unwrap_err());
        assert!(msg.contains("x.png"), "{msg}");
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn labels_stay_inside_panels() {
        let mut fig = Figure::new(2, 1, 220, 160);
        fig.axes(0, 0)
            .set_xlim(-123456.0, 987654.0)
            .set_ylim(-0.000123, 0.000456)
            .set_title("left")
            .set_xlabel("x label")
            .set_ylabel("y label");
        fig.axes(1, 0).set_xlim(0.0, 1.0).set_ylim(0.0, 1.0);
        let img = fig.render();
        // The second panel's left edge column must be untouched by panel 0.
        let l1 = fig.layout_of(1, 0);
        let l0 = fig.layout_of(0, 0);
        assert!(l0.plot.right() < l1.panel.x);
        for y in 0..img.height() {
            assert_eq!(img.get_pixel(l1.panel.x as u32, y).0, WHITE);
        }
    }
}
