//! Minimal reader/writer for NumPy `.npy` files.
//!
//! Writing always produces format version 1.0, little-endian, C order, with
//! the header padded so that the array data starts at a multiple of 64 bytes
//! (the same layout `numpy.save` produces for small arrays).
//!
//! Reading accepts format versions 1.0, 2.0 and 3.0 headers with C-ordered
//! data of dtype `<f4`, `<f8`, `<i1`/`|i1`, `<i2`, `<i4`, `<i8`,
//! `<u1`/`|u1`, `<u2`, `<u4`, `<u8` or `|b1`; every element is converted to
//! `f64`.

use std::fs;
use std::path::Path;

use anyhow::{Context, bail};
use thiserror::Error;

/// The six magic bytes every `.npy` file starts with.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Data offset alignment used when writing.
const ALIGN: usize = 64;

/// An array loaded from a `.npy` file, converted to `f64`, in C order.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// Array dimensions; empty for a 0-d (scalar) array.
    pub shape: Vec<usize>,
    /// Elements in C (row-major) order; `data.len()` equals the product of `shape`.
    pub data: Vec<f64>,
}

impl NpyArray {
    /// Number of elements (product of the shape).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the array holds no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Problems found while decoding `.npy` bytes.
#[derive(Debug, Error, PartialEq)]
pub enum NpyError {
    /// The file does not start with `\x93NUMPY`.
    #[error("not a .npy file: bad magic bytes")]
    BadMagic,
    /// Format version other than 1.0, 2.0 or 3.0.
    #[error("unsupported .npy format version {0}.{1}")]
    UnsupportedVersion(u8, u8),
    /// The file ends before the header does.
    #[error("file truncated inside the header ({0})")]
    TruncatedHeader(&'static str),
    /// The header dictionary could not be parsed or lacks a key.
    #[error("malformed header: {0}")]
    BadHeader(String),
    /// `fortran_order` is `True`.
    #[error("fortran_order arrays are not supported (only C order)")]
    FortranOrder,
    /// A dtype this reader does not handle (e.g. big-endian, complex).
    #[error("unsupported dtype descr '{0}'")]
    UnsupportedDtype(String),
    /// Fewer data bytes than the shape and dtype require.
    #[error("truncated data: expected {expected} bytes for shape {shape:?}, found {found}")]
    TruncatedData {
        /// Bytes the header promises.
        expected: usize,
        /// Bytes actually present after the header.
        found: usize,
        /// Shape from the header.
        shape: Vec<usize>,
    },
    /// More data bytes than the shape and dtype require.
    #[error("{0} unexpected trailing bytes after the array data")]
    TrailingData(usize),
    /// The element count or byte size overflows `usize`.
    #[error("shape {0:?} is too large")]
    ShapeOverflow(Vec<usize>),
}

/// Element types that can be written.
trait WriteElem: Copy {
    const DESCR: &'static str;
    const SIZE: usize;
    fn put_le(self, out: &mut Vec<u8>);
}

impl WriteElem for f32 {
    const DESCR: &'static str = "<f4";
    const SIZE: usize = 4;
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl WriteElem for f64 {
    const DESCR: &'static str = "<f8";
    const SIZE: usize = 8;
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Python tuple syntax for a shape: `()`, `(5,)`, `(3, 4)`.
fn shape_repr(shape: &[usize]) -> String {
    match shape {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", parts.join(", "))
        }
    }
}

/// Preamble + header, padded with spaces and terminated by `\n` so that the
/// total length is a multiple of [`ALIGN`]. Version 1.0 is used unless the
/// header would not fit its 16-bit length field (then 2.0, like numpy).
fn header_bytes(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': {}, }}",
        shape_repr(shape)
    );
    let layout = |preamble: usize| {
        let total = (preamble + dict.len() + 1).div_ceil(ALIGN) * ALIGN;
        (total, total - preamble)
    };
    let (total, header_len) = layout(10);
    let mut out;
    if let Ok(len16) = u16::try_from(header_len) {
        out = Vec::with_capacity(total);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&len16.to_le_bytes());
    } else {
        let (total, header_len) = layout(12);
        let len32 = u32::try_from(header_len).unwrap_or(u32::MAX);
        out = Vec::with_capacity(total);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&len32.to_le_bytes());
    }
    let preamble = out.len();
    let total = (preamble + dict.len() + 1).div_ceil(ALIGN) * ALIGN;
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out
}

fn npy_bytes<T: WriteElem>(shape: &[usize], data: &[T]) -> Vec<u8> {
    let count = element_count(shape);
    assert!(
        count == Some(data.len()),
        "npy: shape {shape:?} does not match data length {}",
        data.len()
    );
    let mut out = header_bytes(T::DESCR, shape);
    out.reserve(data.len() * T::SIZE);
    for &v in data {
        v.put_le(&mut out);
    }
    out
}

/// Encode an `f32` array as complete `.npy` file contents (header + data).
///
/// # Panics
/// Panics if the product of `shape` differs from `data.len()`.
pub fn npy_bytes_f32(shape: &[usize], data: &[f32]) -> Vec<u8> {
    npy_bytes(shape, data)
}

/// Encode an `f64` array as complete `.npy` file contents (header + data).
///
/// # Panics
/// Panics if the product of `shape` differs from `data.len()`.
pub fn npy_bytes_f64(shape: &[usize], data: &[f64]) -> Vec<u8> {
    npy_bytes(shape, data)
}

fn check_shape(path: &Path, shape: &[usize], len: usize) -> anyhow::Result<()> {
    match element_count(shape) {
        Some(n) if n == len => Ok(()),
        Some(n) => bail!(
            "cannot write {}: shape {shape:?} has {n} elements but data has {len}",
            path.display()
        ),
        None => bail!(
            "cannot write {}: shape {shape:?} overflows usize",
            path.display()
        ),
    }
}

/// Write `bytes` to `path` atomically (the project's one helper, [`crate::atomic`]).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    crate::atomic::atomic_write(path, bytes)
}

/// Write an `f32` array to `path` as `.npy` (v1.0, `<f4`, C order), atomically.
pub fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) -> anyhow::Result<()> {
    check_shape(path, shape, data.len())?;
    write_atomic(path, &npy_bytes_f32(shape, data))
        .with_context(|| format!("failed to write npy file {}", path.display()))
}

/// Write an `f64` array to `path` as `.npy` (v1.0, `<f8`, C order), atomically.
pub fn write_npy_f64(path: &Path, shape: &[usize], data: &[f64]) -> anyhow::Result<()> {
    check_shape(path, shape, data.len())?;
    write_atomic(path, &npy_bytes_f64(shape, data))
        .with_context(|| format!("failed to write npy file {}", path.display()))
}

/// Read a `.npy` file, converting its elements to `f64`.
pub fn read_npy(path: &Path) -> anyhow::Result<NpyArray> {
    let bytes = fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    parse_npy(&bytes).with_context(|| format!("failed to decode npy file {}", path.display()))
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Dtype {
    F4,
    F8,
    I1,
    I2,
    I4,
    I8,
    U1,
    U2,
    U4,
    U8,
    Bool,
}

impl Dtype {
    fn from_descr(descr: &str) -> Result<Self, NpyError> {
        let dt = match descr {
            "<f4" => Dtype::F4,
            "<f8" => Dtype::F8,
            "|i1" | "<i1" => Dtype::I1,
            "<i2" => Dtype::I2,
            "<i4" => Dtype::I4,
            "<i8" => Dtype::I8,
            "|u1" | "<u1" => Dtype::U1,
            "<u2" => Dtype::U2,
            "<u4" => Dtype::U4,
            "<u8" => Dtype::U8,
            "|b1" => Dtype::Bool,
            other => return Err(NpyError::UnsupportedDtype(other.to_string())),
        };
        Ok(dt)
    }

    fn size(self) -> usize {
        match self {
            Dtype::I1 | Dtype::U1 | Dtype::Bool => 1,
            Dtype::I2 | Dtype::U2 => 2,
            Dtype::F4 | Dtype::I4 | Dtype::U4 => 4,
            Dtype::F8 | Dtype::I8 | Dtype::U8 => 8,
        }
    }

    /// Decode one element from exactly `self.size()` bytes.
    fn decode(self, b: &[u8]) -> f64 {
        fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
            let mut a = [0u8; N];
            a.copy_from_slice(&b[..N]);
            a
        }
        match self {
            Dtype::F4 => f64::from(f32::from_le_bytes(arr(b))),
            Dtype::F8 => f64::from_le_bytes(arr(b)),
            Dtype::I1 => f64::from(i8::from_le_bytes(arr(b))),
            Dtype::I2 => f64::from(i16::from_le_bytes(arr(b))),
            Dtype::I4 => f64::from(i32::from_le_bytes(arr(b))),
            Dtype::I8 => i64::from_le_bytes(arr(b)) as f64,
            Dtype::U1 => f64::from(b[0]),
            Dtype::U2 => f64::from(u16::from_le_bytes(arr(b))),
            Dtype::U4 => f64::from(u32::from_le_bytes(arr(b))),
            Dtype::U8 => u64::from_le_bytes(arr(b)) as f64,
            Dtype::Bool => {
                if b[0] != 0 {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }
}

/// A value in the (tiny) subset of Python literal syntax used by npy headers.
#[derive(Debug, Clone, PartialEq)]
enum PyValue {
    Str(String),
    Bool(bool),
    Int(usize),
    Tuple(Vec<PyValue>),
}

/// Deepest tuple nesting accepted in a header (numpy writes flat tuples: depth 1). The parser
/// recurses once per level, so this bounds its stack use whatever the header holds.
const MAX_HEADER_NESTING: usize = 32;

/// Recursive-descent parser for `{'key': value, ...}` header dictionaries.
struct HeaderParser<'a> {
    s: &'a [u8],
    pos: usize,
    /// Tuples currently open.
    depth: usize,
}

impl<'a> HeaderParser<'a> {
    fn new(s: &'a str) -> Self {
        Self {
            s: s.as_bytes(),
            pos: 0,
            depth: 0,
        }
    }

    fn err(&self, what: &str) -> NpyError {
        NpyError::BadHeader(format!("{what} at byte {}", self.pos))
    }

    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), NpyError> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", c as char)))
        }
    }

    fn string(&mut self) -> Result<String, NpyError> {
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return Err(self.err("expected a string")),
        };
        self.pos += 1;
        let start = self.pos;
        while self.pos < self.s.len() && self.s[self.pos] != quote {
            if self.s[self.pos] == b'\\' {
                return Err(self.err("escape sequences are not supported"));
            }
            self.pos += 1;
        }
        if self.pos >= self.s.len() {
            return Err(self.err("unterminated string"));
        }
        let text = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
        self.pos += 1;
        Ok(text)
    }

    fn value(&mut self) -> Result<PyValue, NpyError> {
        match self.peek() {
            Some(b'\'' | b'"') => Ok(PyValue::Str(self.string()?)),
            Some(b'(') => {
                if self.depth >= MAX_HEADER_NESTING {
                    return Err(self.err(&format!(
                        "tuples nested more than {MAX_HEADER_NESTING} deep"
                    )));
                }
                self.depth += 1;
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    if self.peek() == Some(b')') {
                        self.pos += 1;
                        break;
                    }
                    items.push(self.value()?);
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b')') => {}
                        _ => return Err(self.err("expected ',' or ')' in tuple")),
                    }
                }
                self.depth -= 1;
                Ok(PyValue::Tuple(items))
            }
            Some(c) if c.is_ascii_digit() => {
                let start = self.pos;
                while self.pos < self.s.len() && self.s[self.pos].is_ascii_digit() {
                    self.pos += 1;
                }
                // Python 2 era files may write dimensions as e.g. `3L`.
                if self.s.get(self.pos) == Some(&b'L') {
                    self.pos += 1;
                }
                let digits = std::str::from_utf8(&self.s[start..self.pos])
                    .unwrap_or("")
                    .trim_end_matches('L');
                digits
                    .parse::<usize>()
                    .map(PyValue::Int)
                    .map_err(|_| self.err("integer out of range"))
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self.pos < self.s.len() && self.s[self.pos].is_ascii_alphanumeric() {
                    self.pos += 1;
                }
                match &self.s[start..self.pos] {
                    b"True" => Ok(PyValue::Bool(true)),
                    b"False" => Ok(PyValue::Bool(false)),
                    _ => Err(self.err("unexpected identifier")),
                }
            }
            _ => Err(self.err("unexpected character")),
        }
    }

    fn dict(&mut self) -> Result<Vec<(String, PyValue)>, NpyError> {
        self.expect(b'{')?;
        let mut entries = Vec::new();
        loop {
            if self.peek() == Some(b'}') {
                self.pos += 1;
                break;
            }
            let key = self.string()?;
            self.expect(b':')?;
            let value = self.value()?;
            entries.push((key, value));
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err(self.err("expected ',' or '}' in dict")),
            }
        }
        if self.peek().is_some() {
            return Err(self.err("unexpected text after the dict"));
        }
        Ok(entries)
    }
}

struct Header {
    dtype: Dtype,
    shape: Vec<usize>,
}

fn parse_header_dict(text: &str) -> Result<Header, NpyError> {
    let entries = HeaderParser::new(text).dict()?;
    let get = |k: &str| entries.iter().find(|(key, _)| key == k).map(|(_, v)| v);

    let descr = match get("descr") {
        Some(PyValue::Str(s)) => s.clone(),
        Some(_) => return Err(NpyError::BadHeader("'descr' is not a string".into())),
        None => return Err(NpyError::BadHeader("missing 'descr'".into())),
    };
    match get("fortran_order") {
        Some(PyValue::Bool(false)) => {}
        Some(PyValue::Bool(true)) => return Err(NpyError::FortranOrder),
        Some(_) => return Err(NpyError::BadHeader("'fortran_order' is not a bool".into())),
        None => return Err(NpyError::BadHeader("missing 'fortran_order'".into())),
    }
    let shape = match get("shape") {
        Some(PyValue::Tuple(items)) => items
            .iter()
            .map(|v| match v {
                PyValue::Int(n) => Ok(*n),
                _ => Err(NpyError::BadHeader("non-integer in 'shape'".into())),
            })
            .collect::<Result<Vec<usize>, NpyError>>()?,
        Some(_) => return Err(NpyError::BadHeader("'shape' is not a tuple".into())),
        None => return Err(NpyError::BadHeader("missing 'shape'".into())),
    };
    let dtype = Dtype::from_descr(&descr)?;
    Ok(Header { dtype, shape })
}

/// Decode complete `.npy` file contents held in memory.
pub fn parse_npy(bytes: &[u8]) -> Result<NpyArray, NpyError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(NpyError::BadMagic);
    }
    let (major, minor) = match bytes.get(6..8) {
        Some(v) => (v[0], v[1]),
        None => return Err(NpyError::TruncatedHeader("version")),
    };
    let (header_len, header_start) = match major {
        1 => match bytes.get(8..10) {
            Some(b) => (usize::from(u16::from_le_bytes([b[0], b[1]])), 10),
            None => return Err(NpyError::TruncatedHeader("header length")),
        },
        2 | 3 => match bytes.get(8..12) {
            Some(b) => {
                let n = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                let n = usize::try_from(n).map_err(|_| NpyError::TruncatedHeader("length"))?;
                (n, 12)
            }
            None => return Err(NpyError::TruncatedHeader("header length")),
        },
        _ => return Err(NpyError::UnsupportedVersion(major, minor)),
    };
    if minor != 0 {
        return Err(NpyError::UnsupportedVersion(major, minor));
    }
    let data_start = header_start + header_len;
    let raw = bytes
        .get(header_start..data_start)
        .ok_or(NpyError::TruncatedHeader("header text"))?;
    let text = std::str::from_utf8(raw)
        .map_err(|_| NpyError::BadHeader("header is not valid text".into()))?;
    let Header { dtype, shape } = parse_header_dict(text.trim_end())?;

    let count = element_count(&shape).ok_or_else(|| NpyError::ShapeOverflow(shape.clone()))?;
    let expected = count
        .checked_mul(dtype.size())
        .ok_or_else(|| NpyError::ShapeOverflow(shape.clone()))?;
    let body = &bytes[data_start..];
    if body.len() < expected {
        return Err(NpyError::TruncatedData {
            expected,
            found: body.len(),
            shape,
        });
    }
    if body.len() > expected {
        return Err(NpyError::TrailingData(body.len() - expected));
    }
    let data = body
        .chunks_exact(dtype.size())
        .map(|chunk| dtype.decode(chunk))
        .collect();
    Ok(NpyArray { shape, data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atomic::tmp_path;
    use std::path::PathBuf;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("npy_test_{}_{name}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Build a file by hand with an arbitrary header dict and payload.
    fn handmade(major: u8, dict: &str, payload: &[u8]) -> Vec<u8> {
        let pre = if major == 1 { 10 } else { 12 };
        let total = (pre + dict.len() + 1).div_ceil(64) * 64;
        let hlen = total - pre;
        let mut out = MAGIC.to_vec();
        out.push(major);
        out.push(0);
        if major == 1 {
            out.extend_from_slice(&(hlen as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(hlen as u32).to_le_bytes());
        }
        out.extend_from_slice(dict.as_bytes());
        out.resize(total - 1, b' ');
        out.push(b'\n');
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn round_trip_f32_and_f64() {
        let dir = scratch_dir("rt");
        let p32 = dir.join("a.npy");
        let d32: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 2.0).collect();
        write_npy_f32(&p32, &[3, 4], &d32).unwrap();
        let a = read_npy(&p32).unwrap();
        assert_eq!(a.shape, vec![3, 4]);
        assert_eq!(
            a.data,
            d32.iter().map(|&v| f64::from(v)).collect::<Vec<_>>()
        );
        assert!(!tmp_path(&p32).exists(), "tmp file must be renamed away");

        let p64 = dir.join("b.npy");
        let d64 = vec![1.0e-300, -0.0, f64::INFINITY, 3.25, f64::MAX, 7.0];
        write_npy_f64(&p64, &[2, 1, 3], &d64).unwrap();
        let b = read_npy(&p64).unwrap();
        assert_eq!(b.shape, vec![2, 1, 3]);
        assert_eq!(b.data, d64);

        // Overwriting an existing file works.
        write_npy_f64(&p64, &[1], &[42.0]).unwrap();
        assert_eq!(read_npy(&p64).unwrap().data, vec![42.0]);

        // NaN survives (compare bit patterns loosely).
        write_npy_f32(&p32, &[2], &[f32::NAN, 1.0]).unwrap();
        let c = read_npy(&p32).unwrap();
        assert!(c.data[0].is_nan());
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn header_is_aligned_and_terminated() {
        for shape in [
            vec![],
            vec![5],
            vec![3, 4],
            vec![1_000_000, 0, 123_456_789, 7, 9, 11, 13, 17],
        ] {
            let n: usize = shape.iter().product();
            let bytes = npy_bytes_f32(&shape, &vec![0.0; n]);
            let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
            let data_start = 10 + hlen;
            assert_eq!(data_start % 64, 0, "shape {shape:?}");
            assert_eq!(bytes[data_start - 1], b'\n');
            assert_eq!(bytes.len(), data_start + 4 * n);
            let text = std::str::from_utf8(&bytes[10..data_start]).unwrap();
            assert!(text.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': ("));
        }
    }

    #[test]
    fn one_d_and_scalar_shapes() {
        let bytes = npy_bytes_f64(&[5], &[1.0, 2.0, 3.0, 4.0, 5.0]);
        let text = String::from_utf8_lossy(&bytes[10..128]);
        assert!(text.contains("'shape': (5,), }"), "{text}");
        assert_eq!(parse_npy(&bytes).unwrap().shape, vec![5]);

        let bytes = npy_bytes_f64(&[], &[9.5]);
        assert!(String::from_utf8_lossy(&bytes).contains("'shape': (), }"));
        let a = parse_npy(&bytes).unwrap();
        assert!(a.shape.is_empty());
        assert_eq!(a.data, vec![9.5]);

        let bytes = npy_bytes_f32(&[0, 3], &[]);
        let a = parse_npy(&bytes).unwrap();
        assert_eq!(a.shape, vec![0, 3]);
        assert!(a.is_empty());
    }

    #[test]
    fn byte_exact_known_header() {
        // What numpy.save writes for np.array([1.0, 2.0, 3.0]) (float64).
        let mut expected: Vec<u8> = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
        expected.extend_from_slice(b"{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }");
        expected.extend_from_slice(&[b' '; 60]);
        expected.push(b'\n');
        assert_eq!(expected.len(), 128);
        for v in [1.0f64, 2.0, 3.0] {
            expected.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(npy_bytes_f64(&[3], &[1.0, 2.0, 3.0]), expected);

        // And a 2-D float32 one.
        let mut expected: Vec<u8> = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
        expected.extend_from_slice(b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
        expected.extend_from_slice(&[b' '; 58]);
        expected.push(b'\n');
        expected.extend_from_slice(&[0u8; 24]);
        assert_eq!(npy_bytes_f32(&[2, 3], &[0.0; 6]), expected);
    }

    #[test]
    fn truncated_file_is_an_error() {
        let dir = scratch_dir("trunc");
        let path = dir.join("t.npy");
        let mut bytes = npy_bytes_f32(&[4], &[1.0, 2.0, 3.0, 4.0]);
        bytes.truncate(bytes.len() - 3);
        fs::write(&path, &bytes).unwrap();
        let err = read_npy(&path).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("truncated data"), "{msg}");
        assert!(msg.contains("t.npy"), "{msg}");

        // Truncated inside the header.
        assert!(matches!(
            parse_npy(&bytes[..40]),
            Err(NpyError::TruncatedHeader(_))
        ));
        assert!(matches!(
            parse_npy(&bytes[..9]),
            Err(NpyError::TruncatedHeader(_))
        ));
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn bad_inputs_give_clear_errors() {
        assert_eq!(parse_npy(b"PK\x03\x04 not npy"), Err(NpyError::BadMagic));
        assert_eq!(parse_npy(b""), Err(NpyError::BadMagic));

        let f = handmade(
            1,
            "{'descr': '<f8', 'fortran_order': True, 'shape': (1,), }",
            &[0; 8],
        );
        assert_eq!(parse_npy(&f), Err(NpyError::FortranOrder));

        let f = handmade(
            1,
            "{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }",
            &[0; 16],
        );
        assert_eq!(
            parse_npy(&f),
            Err(NpyError::UnsupportedDtype("<c16".into()))
        );

        let f = handmade(
            1,
            "{'descr': '>f8', 'fortran_order': False, 'shape': (1,), }",
            &[0; 8],
        );
        assert!(matches!(parse_npy(&f), Err(NpyError::UnsupportedDtype(_))));

        let f = handmade(1, "{'descr': '<f8', 'shape': (1,), }", &[0; 8]);
        assert!(matches!(parse_npy(&f), Err(NpyError::BadHeader(_))));

        let f = handmade(
            1,
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }",
            &[0; 9],
        );
        assert_eq!(parse_npy(&f), Err(NpyError::TrailingData(1)));

        let mut f = npy_bytes_f32(&[1], &[1.0]);
        f[6] = 4;
        assert_eq!(parse_npy(&f), Err(NpyError::UnsupportedVersion(4, 0)));

        let dir = scratch_dir("bad");
        let missing = dir.join("missing.npy");
        let msg = format!("{:#}", read_npy(&missing).unwrap_err());
        assert!(msg.contains("missing.npy"), "{msg}");

        let err = write_npy_f32(&dir.join("x.npy"), &[2, 2], &[1.0; 3]).unwrap_err();
        assert!(format!("{err:#}").contains("x.npy"));
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn reads_integer_dtypes_and_v2_headers() {
        let ints: Vec<u8> = [-1i32, 7, 100_000]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let f = handmade(
            1,
            "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }",
            &ints,
        );
        assert_eq!(parse_npy(&f).unwrap().data, vec![-1.0, 7.0, 100_000.0]);

        let longs: Vec<u8> = [-5i64, 1 << 40]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let f = handmade(
            2,
            "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 1), }",
            &longs,
        );
        let a = parse_npy(&f).unwrap();
        assert_eq!(a.shape, vec![2, 1]);
        assert_eq!(a.data, vec![-5.0, (1u64 << 40) as f64]);

        for descr in ["|u1", "<u1"] {
            let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (2, 2), }}");
            let f = handmade(1, &dict, &[0, 1, 128, 255]);
            assert_eq!(parse_npy(&f).unwrap().data, vec![0.0, 1.0, 128.0, 255.0]);
        }

        // Key order and quoting style other than numpy's own are accepted.
        let f = handmade(
            1,
            "{\"shape\": (1,2), \"fortran_order\": False, \"descr\": \"<f4\"}",
            &[0, 0, 128, 63, 0, 0, 0, 64],
        );
        assert_eq!(parse_npy(&f).unwrap().data, vec![1.0, 2.0]);
    }
}
