//! TensorBoard event files, written by hand (no TensorFlow, no protobuf crate).
//!
//! The training driver writes `<run>/tb/events.out.tfevents.<secs>.<host>`: every metrics line
//! as scalars (the same steps and values as `metrics.jsonl`, which stays the source of truth),
//! pictures at checkpoints, the run's `config.json` as text. `tensorboard --logdir <run>/tb`
//! (or a folder of runs) shows them.
//!
//! Format: a file is a sequence of records, each `u64` little-endian length, the masked CRC32C
//! of those 8 bytes (`u32` LE), the data, the masked CRC32C of the data; the data is a protobuf
//! `Event`. The first event of a file names the format (`file_version = "brain.Event:2"`).
//! Only the handful of protobuf fields used here are encoded:
//!
//! - `Event { wall_time = 1 (double), step = 2 (int64), file_version = 3 (string),
//!   summary = 5 (Summary) }`
//! - `Summary { value = 1 (repeated Value) }`
//! - `Value { tag = 1, simple_value = 2 (float), image = 4 (Image), tensor = 8 (TensorProto),
//!   metadata = 9 (SummaryMetadata) }`
//! - `Image { height = 1, width = 2, colorspace = 3, encoded_image_string = 4 }`
//! - text: a scalar `TensorProto { dtype = 1 (DT_STRING = 7), tensor_shape = 2 (empty: a
//!   scalar), string_val = 8 }` with `SummaryMetadata { plugin_data = 1 { plugin_name = 1
//!   ("text") } }`, as TensorBoard's text plugin writes it.
//!
//! Resumed runs: [`prune`] drops, from the event files already there, every event logged after
//! the step the run resumes from (as the driver drops those lines of `metrics.jsonl`), and a
//! torn last record left by a crash; the resumed process then writes a new file. Every step is
//! thus in the folder once.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::atomic::{WriteError, atomic_write};

/// Folder of the event files inside a run directory.
pub const DIR: &str = "tb";

/// The name prefix TensorBoard looks for.
pub const PREFIX: &str = "events.out.tfevents.";

/// The format named by the first event of every file.
pub const FILE_VERSION: &str = "brain.Event:2";

// ---------------------------------------------------------------------------------------------
// Framing: CRC32C (Castagnoli), masked
// ---------------------------------------------------------------------------------------------

/// The byte table of the reflected CRC32C polynomial 0x82F63B78.
const fn crc_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC_TABLE: [u32; 256] = crc_table();

/// CRC32C (Castagnoli) of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// The masked CRC32C of TFRecord framing: `((crc >> 15) | (crc << 17)) + 0xa282ead8`.
pub fn masked_crc(data: &[u8]) -> u32 {
    crc32c(data).rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One framed record holding `data`.
pub fn frame(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// The records of `bytes` in order, each as `(start offset, data)`, up to the first one that is
/// torn or fails its checksum; the second value is the length of the intact prefix.
pub fn unframe(bytes: &[u8]) -> (Vec<(usize, &[u8])>, usize) {
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some(head) = bytes.get(at..at + 12) {
        let (len, crc) = head.split_at(8);
        let crc = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        if masked_crc(len) != crc {
            break;
        }
        let n = u64::from_le_bytes([
            len[0], len[1], len[2], len[3], len[4], len[5], len[6], len[7],
        ]);
        let Some(end) = usize::try_from(n)
            .ok()
            .and_then(|n| (at + 12).checked_add(n))
            .filter(|&e| e.checked_add(4).is_some_and(|f| f <= bytes.len()))
        else {
            break;
        };
        let data = &bytes[at + 12..end];
        let dcrc = u32::from_le_bytes([bytes[end], bytes[end + 1], bytes[end + 2], bytes[end + 3]]);
        if masked_crc(data) != dcrc {
            break;
        }
        out.push((at, data));
        at = end + 4;
    }
    (out, at)
}

// ---------------------------------------------------------------------------------------------
// Protobuf: the few fields needed
// ---------------------------------------------------------------------------------------------

fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn key(buf: &mut Vec<u8>, field: u32, wire: u8) {
    varint(buf, (u64::from(field) << 3) | u64::from(wire));
}

fn put_varint(buf: &mut Vec<u8>, field: u32, v: u64) {
    key(buf, field, 0);
    varint(buf, v);
}

fn put_bytes(buf: &mut Vec<u8>, field: u32, v: &[u8]) {
    key(buf, field, 2);
    varint(buf, v.len() as u64);
    buf.extend_from_slice(v);
}

fn put_f64(buf: &mut Vec<u8>, field: u32, v: f64) {
    key(buf, field, 1);
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put_f32(buf: &mut Vec<u8>, field: u32, v: f32) {
    key(buf, field, 5);
    buf.extend_from_slice(&v.to_le_bytes());
}

/// A protobuf field as read back.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

fn read_varint(buf: &[u8], at: &mut usize) -> Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at).context("truncated varint")?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    bail!("varint longer than 10 bytes")
}

/// The `n` bytes of `buf` at `at`, moving `at` past them.
fn take<'a>(buf: &'a [u8], at: &mut usize, n: usize) -> Result<&'a [u8]> {
    let s = buf
        .get(*at..at.checked_add(n).context("field too long")?)
        .context("truncated field")?;
    *at += n;
    Ok(s)
}

/// The fields of one protobuf message, in order.
fn fields(buf: &[u8]) -> Result<Vec<(u32, Field<'_>)>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let k = read_varint(buf, &mut at)?;
        let field = u32::try_from(k >> 3).context("bad field number")?;
        let f = match k & 7 {
            0 => Field::Varint(read_varint(buf, &mut at)?),
            1 => {
                let s = take(buf, &mut at, 8)?;
                Field::Fixed64(u64::from_le_bytes(s.try_into()?))
            }
            2 => {
                let n = usize::try_from(read_varint(buf, &mut at)?)?;
                Field::Bytes(take(buf, &mut at, n)?)
            }
            5 => {
                let s = take(buf, &mut at, 4)?;
                Field::Fixed32(u32::from_le_bytes(s.try_into()?))
            }
            w => bail!("unsupported protobuf wire type {w}"),
        };
        out.push((field, f));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// What one summary value holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// A scalar (`simple_value`).
    Scalar(f32),
    /// An encoded image.
    Image {
        /// Height in pixels.
        height: u32,
        /// Width in pixels.
        width: u32,
        /// The PNG file.
        png: Vec<u8>,
    },
    /// A text summary (the text plugin's string tensor).
    Text(String),
    /// Something else.
    Other,
}

/// One summary value: a tag and its data.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    /// The tag (chart name).
    pub tag: String,
    /// The data.
    pub data: Data,
}

/// One event as read back by [`read_dir`].
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Seconds since the Unix epoch.
    pub wall_time: f64,
    /// The training step.
    pub step: u64,
    /// The format name (first event of a file only).
    pub file_version: Option<String>,
    /// The summary values.
    pub values: Vec<Value>,
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// An encoded `Event` at `step` holding the encoded summary `values` (each a `Value` message).
fn summary_event(step: u64, values: &[Vec<u8>]) -> Vec<u8> {
    let mut summary = Vec::new();
    for v in values {
        put_bytes(&mut summary, 1, v);
    }
    let mut e = Vec::new();
    put_f64(&mut e, 1, now());
    put_varint(&mut e, 2, step);
    put_bytes(&mut e, 5, &summary);
    e
}

fn scalar_value(tag: &str, v: f32) -> Vec<u8> {
    let mut b = Vec::new();
    put_bytes(&mut b, 1, tag.as_bytes());
    put_f32(&mut b, 2, v);
    b
}

fn image_value(tag: &str, height: u32, width: u32, png: &[u8]) -> Vec<u8> {
    let mut img = Vec::new();
    put_varint(&mut img, 1, u64::from(height));
    put_varint(&mut img, 2, u64::from(width));
    put_varint(&mut img, 3, 3); // RGB
    put_bytes(&mut img, 4, png);
    let mut b = Vec::new();
    put_bytes(&mut b, 1, tag.as_bytes());
    put_bytes(&mut b, 4, &img);
    b
}

fn text_value(tag: &str, text: &str) -> Vec<u8> {
    let mut plugin = Vec::new();
    put_bytes(&mut plugin, 1, b"text");
    let mut meta = Vec::new();
    put_bytes(&mut meta, 1, &plugin);
    let mut tensor = Vec::new();
    put_varint(&mut tensor, 1, 7); // DT_STRING
    put_bytes(&mut tensor, 2, &[]); // shape []: a scalar
    put_bytes(&mut tensor, 8, text.as_bytes());
    let mut b = Vec::new();
    put_bytes(&mut b, 1, tag.as_bytes());
    put_bytes(&mut b, 8, &tensor);
    put_bytes(&mut b, 9, &meta);
    b
}

fn decode_value(buf: &[u8]) -> Result<Value> {
    let mut tag = String::new();
    let mut data = Data::Other;
    let mut text_plugin = false;
    let mut tensor_text = None;
    for (f, v) in fields(buf)? {
        match (f, v) {
            (1, Field::Bytes(s)) => tag = String::from_utf8_lossy(s).into_owned(),
            (2, Field::Fixed32(x)) => data = Data::Scalar(f32::from_bits(x)),
            (4, Field::Bytes(s)) => {
                let (mut height, mut width, mut png) = (0, 0, Vec::new());
                for (g, w) in fields(s)? {
                    match (g, w) {
                        (1, Field::Varint(x)) => height = u32::try_from(x)?,
                        (2, Field::Varint(x)) => width = u32::try_from(x)?,
                        (4, Field::Bytes(p)) => png = p.to_vec(),
                        _ => {}
                    }
                }
                data = Data::Image { height, width, png };
            }
            (8, Field::Bytes(s)) => {
                for (g, w) in fields(s)? {
                    if let (8, Field::Bytes(t)) = (g, w) {
                        tensor_text = Some(String::from_utf8_lossy(t).into_owned());
                    }
                }
            }
            (9, Field::Bytes(s)) => {
                for (g, w) in fields(s)? {
                    if let (1, Field::Bytes(p)) = (g, w) {
                        text_plugin |= fields(p)?
                            .iter()
                            .any(|(h, n)| *h == 1 && *n == Field::Bytes(b"text"));
                    }
                }
            }
            _ => {}
        }
    }
    if let (true, Some(t)) = (text_plugin, tensor_text) {
        data = Data::Text(t);
    }
    Ok(Value { tag, data })
}

/// Decodes one `Event` message.
pub fn decode_event(buf: &[u8]) -> Result<Event> {
    let mut e = Event {
        wall_time: 0.0,
        step: 0,
        file_version: None,
        values: Vec::new(),
    };
    for (f, v) in fields(buf)? {
        match (f, v) {
            (1, Field::Fixed64(x)) => e.wall_time = f64::from_bits(x),
            (2, Field::Varint(x)) => e.step = x,
            (3, Field::Bytes(s)) => e.file_version = Some(String::from_utf8_lossy(s).into_owned()),
            (5, Field::Bytes(s)) => {
                for (g, w) in fields(s)? {
                    if let (1, Field::Bytes(v)) = (g, w) {
                        e.values.push(decode_value(v)?);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(e)
}

/// Width and height of a PNG file (from its header).
pub fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    if png.get(..8)? != b"\x89PNG\r\n\x1a\n" || png.get(12..16)? != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(png.get(16..20)?.try_into().ok()?);
    let h = u32::from_be_bytes(png.get(20..24)?.try_into().ok()?);
    Some((w, h))
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

/// The event files of `dir`, in name order (the order TensorBoard reads them in).
pub fn event_files(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(PREFIX) && !n.ends_with(".tmp"))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Every event of every file of `dir`, files in name order (a torn or damaged tail of a file
/// is skipped).
pub fn read_dir(dir: &Path) -> Result<Vec<Event>> {
    let mut out = Vec::new();
    for p in event_files(dir)? {
        let bytes = fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
        for (_, rec) in unframe(&bytes).0 {
            out.push(decode_event(rec).with_context(|| format!("in {}", p.display()))?);
        }
    }
    Ok(out)
}

/// Prepares `dir` for a run continuing after step `through`: the events of later steps, and a
/// torn or damaged tail, are cut from the files already there (a file left with only its
/// header is removed). `None` (a run starting from step 0) removes every event file.
pub fn prune(dir: &Path, through: Option<u64>) -> Result<()> {
    for p in event_files(dir)? {
        let Some(through) = through else {
            fs::remove_file(&p).with_context(|| format!("cannot remove {}", p.display()))?;
            continue;
        };
        let bytes = fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
        let (records, intact) = unframe(&bytes);
        let mut kept = Vec::with_capacity(bytes.len());
        let mut dropped = intact != bytes.len();
        let mut data_kept = false;
        for (i, (start, rec)) in records.iter().enumerate() {
            let end = records.get(i + 1).map_or(intact, |r| r.0);
            let e = decode_event(rec).with_context(|| format!("in {}", p.display()))?;
            if e.step > through {
                dropped = true;
            } else {
                data_kept |= !e.values.is_empty();
                kept.extend_from_slice(&bytes[*start..end]);
            }
        }
        if !data_kept {
            fs::remove_file(&p).with_context(|| format!("cannot remove {}", p.display()))?;
        } else if dropped {
            atomic_write(&p, &kept)?;
        }
    }
    Ok(())
}

/// This machine's name, as it goes into event file names.
fn host() -> String {
    let name = fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default();
    let clean: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "localhost".into()
    } else {
        clean
    }
}

/// An open event file, appended to record by record (each record written whole with one
/// `write`; [`EventWriter::sync`] makes what was written durable).
#[derive(Debug)]
pub struct EventWriter {
    file: File,
    path: PathBuf,
}

impl EventWriter {
    /// Creates a new event file in `dir` (created if needed), named
    /// `events.out.tfevents.<secs>.<host>` (`.1`, `.2`, … appended when that name is taken, so
    /// name order stays creation order), and writes its header event.
    pub fn create(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|source| WriteError {
            path: dir.to_path_buf(),
            source,
        })?;
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let base = format!("{PREFIX}{secs}.{}", host());
        let mut n = 0u32;
        let (file, path) = loop {
            let name = if n == 0 {
                base.clone()
            } else {
                format!("{base}.{n}")
            };
            let path = dir.join(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => break (f, path),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(source) => return Err(WriteError { path, source }.into()),
            }
        };
        let mut w = Self { file, path };
        let mut e = Vec::new();
        put_f64(&mut e, 1, now());
        put_varint(&mut e, 2, 0);
        put_bytes(&mut e, 3, FILE_VERSION.as_bytes());
        w.record(&e)?;
        Ok(w)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn record(&mut self, event: &[u8]) -> Result<()> {
        let rec = frame(event);
        if let Err(source) = self.file.write_all(&rec) {
            return Err(WriteError {
                path: self.path.clone(),
                source,
            }
            .into());
        }
        Ok(())
    }

    /// Scalars of one step (stored as f32, as TensorBoard keeps them).
    pub fn scalars(&mut self, step: u64, values: &[(String, f64)]) -> Result<()> {
        let v: Vec<Vec<u8>> = values
            .iter()
            .map(|(k, x)| scalar_value(k, *x as f32))
            .collect();
        self.record(&summary_event(step, &v))
    }

    /// A PNG image at `step`.
    pub fn image(&mut self, step: u64, tag: &str, png: &[u8]) -> Result<()> {
        let (w, h) = png_size(png).with_context(|| format!("image `{tag}` is not a PNG file"))?;
        self.record(&summary_event(step, &[image_value(tag, h, w, png)]))
    }

    /// A text (Markdown) at `step`.
    pub fn text(&mut self, step: u64, tag: &str, text: &str) -> Result<()> {
        self.record(&summary_event(step, &[text_value(tag, text)]))
    }

    /// Makes everything written so far durable (fsync).
    pub fn sync(&mut self) -> Result<()> {
        self.file.sync_data().map_err(|source| {
            WriteError {
                path: self.path.clone(),
                source,
            }
            .into()
        })
    }
}

#[cfg(test)]
// The tests spell the mask as the format defines it.
#[allow(clippy::manual_rotate)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_known_vectors() {
        assert_eq!(crc32c(b""), 0);
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b"a"), 0xC1D0_4330);
        // RFC 3720 B.4: 32 bytes of zeros, of ones (0xff), ascending 0..31.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
        let asc: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&asc), 0x46DD_794E);
    }

    #[test]
    fn masked_crc_matches_its_definition() {
        for data in [&b""[..], b"123456789", b"hello tensorboard"] {
            let c = crc32c(data);
            assert_eq!(
                masked_crc(data),
                ((c >> 15) | (c << 17)).wrapping_add(0xa282ead8)
            );
        }
    }

    /// A reader written from the format description, independent of [`unframe`].
    fn naive_records(bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let len_bytes = &bytes[at..at + 8];
            let n = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
            let c = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
            let m = crc32c(len_bytes);
            assert_eq!(c, ((m >> 15) | (m << 17)).wrapping_add(0xa282ead8));
            let data = &bytes[at + 12..at + 12 + n];
            let d = u32::from_le_bytes(bytes[at + 12 + n..at + 16 + n].try_into().unwrap());
            let m = crc32c(data);
            assert_eq!(d, ((m >> 15) | (m << 17)).wrapping_add(0xa282ead8));
            out.push(data.to_vec());
            at += 16 + n;
        }
        out
    }

    #[test]
    fn framing_round_trips_and_stops_at_a_torn_or_damaged_tail() {
        let recs: Vec<Vec<u8>> = vec![b"".to_vec(), b"abc".to_vec(), vec![7u8; 300]];
        let bytes: Vec<u8> = recs.iter().flat_map(|r| frame(r)).collect();
        assert_eq!(naive_records(&bytes), recs);
        let (got, intact) = unframe(&bytes);
        assert_eq!(intact, bytes.len());
        assert_eq!(
            got.iter().map(|(_, d)| d.to_vec()).collect::<Vec<_>>(),
            recs
        );
        // Torn: every cut inside the last record keeps the first two.
        let second_end = frame(&recs[0]).len() + frame(&recs[1]).len();
        for cut in second_end..bytes.len() {
            let (got, intact) = unframe(&bytes[..cut]);
            assert_eq!((got.len(), intact), (2, second_end), "cut at {cut}");
        }
        // A flipped data byte fails the data checksum.
        let mut bad = bytes.clone();
        bad[second_end + 20] ^= 1;
        assert_eq!(unframe(&bad).0.len(), 2);
    }

    #[test]
    fn events_encode_and_decode() {
        let png = {
            let img = image::RgbImage::from_pixel(5, 3, image::Rgb([1, 2, 3]));
            let mut buf = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut buf), image::ImageFormat::Png)
                .unwrap();
            buf
        };
        assert_eq!(png_size(&png), Some((5, 3)));
        let e = decode_event(&summary_event(
            300,
            &[
                scalar_value("loss", 0.25),
                image_value("pic", 3, 5, &png),
                text_value("config", "a *b*"),
            ],
        ))
        .unwrap();
        assert_eq!(e.step, 300);
        assert!(e.wall_time > 1.6e9);
        assert_eq!(
            e.values,
            vec![
                Value {
                    tag: "loss".into(),
                    data: Data::Scalar(0.25)
                },
                Value {
                    tag: "pic".into(),
                    data: Data::Image {
                        height: 3,
                        width: 5,
                        png
                    }
                },
                Value {
                    tag: "config".into(),
                    data: Data::Text("a *b*".into())
                },
            ]
        );
        // A step past 2^31 and the varint edge cases.
        for s in [0u64, 127, 128, 16_383, 16_384, 1 << 40, i64::MAX as u64] {
            assert_eq!(decode_event(&summary_event(s, &[])).unwrap().step, s);
        }
    }

    #[test]
    fn prune_keeps_steps_through_the_resume_point_once() {
        let dir = std::env::temp_dir().join(format!("attractor-tb-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let steps = |dir: &Path| -> Vec<u64> {
            read_dir(dir)
                .unwrap()
                .into_iter()
                .filter(|e| !e.values.is_empty())
                .map(|e| e.step)
                .collect()
        };
        let mut w = EventWriter::create(&dir).unwrap();
        w.text(0, "config", "{}").unwrap();
        for s in [10, 20, 30] {
            w.scalars(s, &[("loss".into(), s as f64)]).unwrap();
        }
        let first = w.path().to_path_buf();
        drop(w);
        // A crash tore the last record.
        let len = fs::metadata(&first).unwrap().len();
        let f = OpenOptions::new().write(true).open(&first).unwrap();
        f.set_len(len - 3).unwrap();
        drop(f);
        assert_eq!(steps(&dir), vec![0, 10, 20]);
        // Resume from step 10: 20 goes, and the new file continues.
        prune(&dir, Some(10)).unwrap();
        assert_eq!(steps(&dir), vec![0, 10]);
        let mut w = EventWriter::create(&dir).unwrap();
        assert_ne!(w.path(), first);
        for s in [20, 30] {
            w.scalars(s, &[("loss".into(), s as f64)]).unwrap();
        }
        w.sync().unwrap();
        drop(w);
        assert_eq!(steps(&dir), vec![0, 10, 20, 30]);
        let files = event_files(&dir).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0], first, "name order is creation order");
        let headers: Vec<Option<String>> = read_dir(&dir)
            .unwrap()
            .into_iter()
            .filter(|e| e.values.is_empty())
            .map(|e| e.file_version)
            .collect();
        assert_eq!(headers, vec![Some(FILE_VERSION.to_string()); 2]);
        // Resuming from step 0 starts over.
        prune(&dir, None).unwrap();
        assert!(event_files(&dir).unwrap().is_empty());
        let _ = fs::remove_dir_all(&dir);
    }
}
