//! Text on figures: DejaVu Sans through plotters' `ab_glyph` path, laid out glyph by glyph
//! with the font's own metrics, and the number formats of tick labels.

use super::*;

// ---------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------

/// The font family every text is drawn in: DejaVu Sans, registered once.
pub(super) const FAMILY: &str = "sans-serif";

pub(super) fn ensure_font() {
    static FONT: Once = Once::new();
    FONT.call_once(|| {
        // A failure surfaces as a font error when the first text is drawn.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, dejavu::sans::regular());
    });
}

/// Font size in pixels for a text scale. It is `ab_glyph`'s pixel scale, the height from the
/// ascender to the descender, so capitals are about 0.63 of it.
pub(super) fn font_size(scale: u32) -> f64 {
    f64::from(11 + 4 * scale)
}

/// DejaVu Sans' cap height and descender as fractions of the font size (ascender 1901,
/// descender 483, cap height 1493 font units).
pub(super) const CAP: f64 = 1493.0 / 2384.0;
pub(super) const DESCENT: f64 = 483.0 / 2384.0;
/// plotters' `ab_glyph` path puts the baseline half a font size below the text origin.
pub(super) const BASELINE: f64 = 0.5;

/// Pixels from the top of the capitals to the bottom of the descenders.
pub(super) fn text_h(size: f64) -> i32 {
    ((CAP + DESCENT) * size).ceil() as i32
}

/// Horizontal metrics of DejaVu Sans, from its `hhea`, `hmtx` and `cmap` (format 4) tables.
///
/// plotters 0.3.7 draws an `ab_glyph` outline at the pen position without the glyph's left side
/// bearing, which spaces letters unevenly; [`put_text`] places glyph by glyph with it added back.
pub(super) struct Metrics {
    /// Ems per pixel of font size.
    pub(super) em: f64,
    /// Advance width and left side bearing, in ems, of every character the font maps.
    pub(super) glyphs: HashMap<char, (f64, f64)>,
}

pub(super) fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        parse_metrics(dejavu::sans::regular()).unwrap_or_else(|| Metrics {
            em: 2048.0 / 2384.0,
            glyphs: HashMap::new(),
        })
    })
}

pub(super) fn parse_metrics(font: &[u8]) -> Option<Metrics> {
    let u16_at = |o: usize| Some(u16::from_be_bytes(font.get(o..o + 2)?.try_into().ok()?));
    let i16_at = |o: usize| u16_at(o).map(|v| f64::from(v as i16));
    let u32_at = |o: usize| Some(u32::from_be_bytes(font.get(o..o + 4)?.try_into().ok()?) as usize);
    let table = |tag: &[u8]| {
        let mut records = (0..usize::from(u16_at(4)?)).map(|i| 12 + 16 * i);
        u32_at(records.find(|&r| font.get(r..r + 4) == Some(tag))? + 8)
    };
    let (head, hhea, hmtx, cmap) = (
        table(b"head")?,
        table(b"hhea")?,
        table(b"hmtx")?,
        table(b"cmap")?,
    );
    let upem = f64::from(u16_at(head + 18)?);
    let em = upem / (i16_at(hhea + 4)? - i16_at(hhea + 6)?);
    let long = usize::from(u16_at(hhea + 34)?).max(1);
    let hmetric = |gid: usize| {
        let advance = f64::from(u16_at(hmtx + 4 * gid.min(long - 1))?);
        let lsb = i16_at(if gid < long {
            hmtx + 4 * gid + 2
        } else {
            hmtx + 2 * (long + gid)
        })?;
        Some((advance / upem, lsb / upem))
    };
    // The Windows Unicode BMP subtable: segments of consecutive characters.
    let mut subtables = (0..usize::from(u16_at(cmap + 2)?)).map(|i| cmap + 4 + 8 * i);
    let record = subtables.find(|&r| u16_at(r) == Some(3) && u16_at(r + 2) == Some(1))?;
    let sub = cmap + u32_at(record + 4)?;
    if u16_at(sub)? != 4 {
        return None;
    }
    let segments = usize::from(u16_at(sub + 6)?) / 2;
    let column =
        |k: usize, s: usize| sub + 14 + 2 * k * segments + 2 * s + if k > 0 { 2 } else { 0 };
    let mut glyphs = HashMap::new();
    for s in 0..segments {
        let (end, start) = (u16_at(column(0, s))?, u16_at(column(1, s))?);
        let (delta, range) = (u16_at(column(2, s))?, u16_at(column(3, s))?);
        for c in start..=end.min(0xfffe) {
            let gid = match range {
                0 => c.wrapping_add(delta),
                _ => {
                    match u16_at(column(3, s) + usize::from(range) + 2 * usize::from(c - start))? {
                        0 => 0,
                        g => g.wrapping_add(delta),
                    }
                }
            };
            if let (Some(ch), Some(m)) = (char::from_u32(c.into()), hmetric(gid.into())) {
                glyphs.insert(ch, m);
            }
        }
    }
    Some(Metrics { em, glyphs })
}

/// Each glyph's pen position and left side bearing (pixels) and the text's advance width.
pub(super) fn layout_glyphs(text: &str, size: f64) -> (Vec<(char, f64, f64)>, f64) {
    let m = metrics();
    let px = m.em * size;
    let mut pen = 0.0;
    let mut glyphs = Vec::with_capacity(text.len());
    for c in text.chars() {
        let (advance, lsb) = m.glyphs.get(&c).copied().unwrap_or((0.6, 0.0));
        glyphs.push((c, pen, lsb * px));
        pen += advance * px;
    }
    (glyphs, pen)
}

pub(super) fn text_w(text: &str, size: f64) -> i32 {
    layout_glyphs(text, size).1.ceil() as i32
}

/// Which point of a text's capitals box is put at the anchor.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Anchor {
    /// Top-left corner.
    TopLeft,
    /// Middle of the top edge.
    Top,
    /// Middle of the left edge.
    Left,
    /// Middle of the right edge.
    Right,
    /// Turned to read bottom to top: the middle of its (left) top edge.
    Vertical,
}

/// Draws `text` at `at`, glyph by glyph (see [`Metrics`]).
pub(super) fn put_text(
    area: &Area<'_>,
    text: &str,
    (x, y): (i32, i32),
    anchor: Anchor,
    size: f64,
    color: Color,
) -> anyhow::Result<()> {
    let (glyphs, width) = layout_glyphs(text, size);
    let (start, cap_top) = match anchor {
        Anchor::TopLeft => (0.0, 0.0),
        Anchor::Top | Anchor::Vertical => (-width / 2.0, 0.0),
        Anchor::Left => (0.0, -CAP * size / 2.0),
        Anchor::Right => (-width, -CAP * size / 2.0),
    };
    let down = (cap_top + (CAP - BASELINE) * size).round() as i32;
    let color = rgb(color);
    let mut style = TextStyle::from((FAMILY, size).into_font()).color(&color);
    if anchor == Anchor::Vertical {
        style = style.transform(FontTransform::Rotate270);
    }
    for (c, pen, lsb) in glyphs {
        // plotters puts a glyph's ink, from the pixel where it starts, at the text origin.
        let along = (start + pen).round() as i32 + lsb.floor() as i32;
        let origin = match anchor {
            Anchor::Vertical => (x + down, y - along),
            _ => (x + along, y + down),
        };
        area.draw(&Text::new(c.to_string(), origin, style.clone()))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------

/// Smallest number of decimals that represents multiples of `step` exactly (0.25 → 2, 5 → 0).
pub(super) fn decimals_for_step(step: f64) -> usize {
    (0..9)
        .find(|&d| {
            let scaled = step * 10f64.powi(d);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.abs().max(1.0)
        })
        .unwrap_or(9) as usize
}

/// `format!("{:.prec$e}")` with trailing zeros of the mantissa removed.
pub(super) fn sci(v: f64, prec: usize) -> String {
    let s = format!("{v:.prec$e}");
    match s.split_once('e') {
        Some((mant, exp)) if mant.contains('.') => {
            format!("{}e{exp}", mant.trim_end_matches('0').trim_end_matches('.'))
        }
        _ => s,
    }
}

/// A tick label: `v` on an axis with tick spacing `step` whose largest magnitude is `mag`.
pub(super) fn format_tick(v: f64, step: f64, mag: f64) -> String {
    if !v.is_finite() {
        format_compact(v)
    } else if v == 0.0 || v.abs() < step.abs() * 1e-6 {
        "0".to_string()
    } else if (1e-3..1e5).contains(&mag) {
        format!("{:.*}", decimals_for_step(step.abs()), v)
    } else {
        let e_s = step.abs().log10().floor();
        let extra = decimals_for_step(step.abs() / 10f64.powf(e_s)) as f64;
        let prec = (v.abs().log10().floor() - e_s + extra).clamp(0.0, 6.0);
        sci(v, prec as usize)
    }
}

/// Compact human-readable number: about three significant digits, switching to exponent
/// notation (`1.5e-4`, `2.3e6`) for very small or large magnitudes.
pub fn format_compact(v: f64) -> String {
    let a = v.abs();
    if v.is_nan() {
        "nan".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.to_string()
    } else if v == 0.0 {
        "0".to_string()
    } else if !(1e-3..1e5).contains(&a) {
        sci(v, 2)
    } else {
        let s = format!("{v:.*}", (2.0 - a.log10().floor()).clamp(0.0, 5.0) as usize);
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }
}

/// An axis range as handed to plotters: widened by a hair so that rounding in its key-point
/// search cannot drop a tick at an end of the range.
pub(super) fn coord_range(range: (f64, f64)) -> std::ops::Range<f64> {
    let eps = (range.1 - range.0) * 1e-9;
    range.0 - eps..range.1 + eps
}

/// The ticks plotters' mesh puts on `range` with at most `n` labels, and their labels.
pub(super) fn ticks(range: (f64, f64), n: usize) -> Vec<(f64, String)> {
    let values = RangedCoordf64::from(coord_range(range)).key_points(n);
    let step = match values[..] {
        [a, b, ..] => b - a,
        _ => range.1 - range.0,
    };
    let mag = range.0.abs().max(range.1.abs());
    // Typeset minus signs.
    let label = |v: f64| format_tick(v, step, mag).replace('-', "\u{2212}");
    values.into_iter().map(|v| (v, label(v))).collect()
}
