//! Training patterns for the FEP attractor network.
//!
//! A pattern set is a `[P, N]` matrix of `f64` (P patterns of length N) kept row-major in a
//! [`Patterns`]. Where the patterns come from:
//!
//! - [`load_digits_csv_gz`]: the bundled 8×8 handwritten digits (`data/digits/digits.csv.gz`),
//!   raw pixel values 0..=16 with their labels. [`digits_preprocessed`] applies the FEP
//!   preprocessing (square every pixel, then z-score every image) and splits off the training
//!   set (the first ten rows, one exemplar of each digit 0..9) from the test set (the rest).
//! - [`load_patterns`]: user patterns from a folder of PNG images, a `.npy` array, or a
//!   `.csv`/`.txt` text file with one pattern per line.
//!
//! Every public loader returns [`anyhow::Result`] with context naming the path; the underlying
//! problem is a [`PatternError`], which callers can recover with `downcast_ref`. Positions in
//! errors follow one rule: lines and columns of text files are 1-based (as editors show them),
//! rows and columns of arrays (`.npy`, [`zscore_rows`]) are 0-based indices.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufRead, Read, Seek};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use flate2::read::MultiGzDecoder;
use image::{DynamicImage, ImageDecoder, ImageReader};
use thiserror::Error;

/// The built-in pattern sets of FEP runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PatternSet {
    /// The bundled 8×8 digits (first 10 as the training set, z-scored).
    Digits,
}

impl crate::config::Builtins for PatternSet {
    const WHAT: &'static str = "pattern set";
}

/// The `patterns` of a FEP configuration: a built-in set or a file/folder.
pub type PatternSource = crate::config::Source<PatternSet>;

/// Pixels in one digits image.
pub const DIGITS_PIXELS: usize = 64;
/// Height and width of one digits image.
pub const DIGITS_SHAPE: (usize, usize) = (8, 8);
/// Largest pixel value in the digits data (counts of set bits in 4×4 blocks: 0..=16).
pub const DIGITS_MAX: f64 = 16.0;
/// Number of digit classes (labels 0..=9).
pub const DIGITS_CLASSES: usize = 10;
/// Rows of the digits file that form the FEP training set (one exemplar of each digit).
pub const DIGITS_TRAIN: usize = 10;

/// Largest image the loaders decode, in pixels (e.g. 4096 × 4096). Every pixel becomes an
/// `f64`, so this bounds what one image file can make us allocate, however well it compresses.
pub const MAX_IMAGE_PIXELS: u64 = 1 << 24;

/// Rec. 709 luma weights used to turn colour pixels into grey (the `image` crate's choice too).
const LUMA: [f64; 3] = [0.2126, 0.7152, 0.0722];

/// A set of P training patterns of length N.
#[derive(Debug, Clone, PartialEq)]
pub struct Patterns {
    /// Pattern length N.
    pub n: usize,
    /// Pattern values, row-major `[P, N]`.
    pub data: Vec<f64>,
    /// One class label per pattern, when the source has them (the digits do).
    pub labels: Option<Vec<usize>>,
    /// Image `(height, width)` with `height * width == n`, when the patterns are images.
    pub shape: Option<(usize, usize)>,
    /// Where the patterns came from (path and kind), for run metadata.
    pub source: String,
    /// Non-fatal remarks made while loading, e.g. a colour PNG converted to greyscale.
    pub warnings: Vec<String>,
}

impl Patterns {
    /// Number of patterns P.
    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.n).unwrap_or(0)
    }

    /// True when there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pattern `i` as a slice of length N.
    ///
    /// # Panics
    /// Panics if `i >= self.len()`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.n..(i + 1) * self.n]
    }

    /// Iterator over the patterns, each a slice of length N.
    pub fn rows(&self) -> impl Iterator<Item = &[f64]> + '_ {
        (0..self.len()).map(|i| self.row(i))
    }
}

/// Which record (pattern) of a source an error refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// 1-based line of a text file.
    Line(usize),
    /// 0-based row of an array.
    Row(usize),
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Record::Line(line) => write!(f, "line {line}"),
            Record::Row(row) => write!(f, "row {row}"),
        }
    }
}

/// One value's position: a record and a column within it.
///
/// The column is 1-based for [`Record::Line`] and 0-based for [`Record::Row`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    /// The line or row.
    pub record: Record,
    /// The column (field) within the record.
    pub column: usize,
}

impl Cell {
    fn line(line: usize, column: usize) -> Self {
        Self {
            record: Record::Line(line),
            column,
        }
    }

    fn row(row: usize, column: usize) -> Self {
        Self {
            record: Record::Row(row),
            column,
        }
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, column {}", self.record, self.column)
    }
}

/// Why a pattern source was rejected.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PatternError {
    /// The path does not exist.
    #[error("{}: no such file or directory", .path.display())]
    NotFound {
        /// The missing path.
        path: PathBuf,
    },
    /// A file holds no patterns: it is empty, or has only blank and `#` comment lines.
    #[error("{}: no patterns (the file is empty or has only blank and comment lines)", .path.display())]
    NoPatterns {
        /// The file.
        path: PathBuf,
    },
    /// A directory holds no `.png` files.
    #[error("{}: the directory contains no .png files", .path.display())]
    NoPngs {
        /// The directory.
        path: PathBuf,
    },
    /// The path is neither a directory nor a `.npy`, `.csv` or `.txt` file.
    #[error(
        "{}: unsupported pattern source (expected a directory of .png files, a .npy file, or a .csv/.txt file)",
        .path.display()
    )]
    Unsupported {
        /// The path.
        path: PathBuf,
    },
    /// Patterns of different lengths in one source.
    #[error(
        "{}: {at} has {found} values but {first} has {expected}; all patterns must have the same length",
        .path.display()
    )]
    MixedLength {
        /// The file.
        path: PathBuf,
        /// The first record whose length differs.
        at: Record,
        /// Its length.
        found: usize,
        /// The first record of the source, which set the length.
        first: Record,
        /// The length of that first record.
        expected: usize,
    },
    /// Images of different sizes in one directory.
    #[error(
        "{}: image is {}x{} (height x width) but {} is {}x{}; all images must have the same size",
        .path.display(), .found.0, .found.1, .first.display(), .expected.0, .expected.1
    )]
    ImageSize {
        /// The first image whose size differs.
        path: PathBuf,
        /// Its `(height, width)`.
        found: (usize, usize),
        /// The first image of the directory, which set the size.
        first: PathBuf,
        /// Its `(height, width)`.
        expected: (usize, usize),
    },
    /// An image larger than [`MAX_IMAGE_PIXELS`].
    #[error(
        "{}: image is {width}x{height} (width x height), more than the {} pixels accepted",
        .path.display(), MAX_IMAGE_PIXELS
    )]
    ImageTooLarge {
        /// The image file.
        path: PathBuf,
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
    },
    /// A NaN or infinite value.
    #[error("{}: {at}: value {value} is not finite", .path.display())]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// Where the value is.
        at: Cell,
        /// The value.
        value: f64,
    },
    /// A text cell that is not a number.
    #[error("{}: {at}: cannot read {text:?} as a number", .path.display())]
    NotNumeric {
        /// The file.
        path: PathBuf,
        /// Where the cell is.
        at: Cell,
        /// The cell's text.
        text: String,
    },
    /// A `.npy` array that is not 1-D or 2-D.
    #[error(
        "{}: the .npy array has shape {shape:?}; expected [N] (one pattern) or [P, N]",
        .path.display()
    )]
    NpyDims {
        /// The file.
        path: PathBuf,
        /// The array's shape.
        shape: Vec<usize>,
    },
    /// No patterns, or patterns of length zero.
    #[error("{}: {p} patterns of length {n}; need at least one pattern of length at least one", .path.display())]
    ZeroSize {
        /// The file or directory.
        path: PathBuf,
        /// Number of patterns P.
        p: usize,
        /// Pattern length N.
        n: usize,
    },
    /// A digits line without exactly 65 fields.
    #[error(
        "{}: line {line} has {found} columns, expected {expected} (64 pixels then the label)",
        .path.display()
    )]
    ColumnCount {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Fields on the line.
        found: usize,
        /// Fields required.
        expected: usize,
    },
    /// A value outside its allowed range.
    #[error("{}: {at}: value {value} is outside [{min}, {max}]", .path.display())]
    OutOfRange {
        /// The file.
        path: PathBuf,
        /// Where the value is.
        at: Cell,
        /// The value.
        value: f64,
        /// Smallest allowed value.
        min: f64,
        /// Largest allowed value.
        max: f64,
    },
    /// A digits label that is not an integer in 0..=9.
    #[error("{}: line {line}: label {text:?} is not an integer in 0..=9", .path.display())]
    BadLabel {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The label's text.
        text: String,
    },
    /// The digits file is too short to split into the training and test sets.
    #[error("{}: {found} rows, need more than {need} (the training set plus a test set)", .path.display())]
    TooFewRows {
        /// The file.
        path: PathBuf,
        /// Rows present.
        found: usize,
        /// Training rows required before the test rows.
        need: usize,
    },
    /// The first rows of the digits file are not the digits 0..9 in order.
    #[error(
        "{}: the first ten rows must be the digits 0..9 in order (the training set) but their labels are {found:?}",
        .path.display()
    )]
    TrainOrder {
        /// The file.
        path: PathBuf,
        /// Labels of the first ten rows.
        found: Vec<usize>,
    },
    /// The data length is not a whole number of rows (or the row length is zero).
    #[error("{len} values do not make whole rows of length {n}")]
    RowLength {
        /// Number of values.
        len: usize,
        /// Row length.
        n: usize,
    },
    /// A row with (numerically) zero variance cannot be z-scored.
    #[error("row {row} has zero variance; cannot z-score it")]
    ZeroVariance {
        /// 0-based row index.
        row: usize,
    },
    /// A row whose mean or variance is not finite cannot be z-scored.
    #[error("row {row} has a non-finite mean or variance; cannot z-score it")]
    NonFiniteRow {
        /// 0-based row index.
        row: usize,
    },
}

/// Z-score each row of the row-major matrix `data` (rows of length `n`) in place: subtract the
/// row mean and divide by the row's population standard deviation.
///
/// Errors name the first row that cannot be scaled: zero variance (a constant row, judged
/// relative to the row's magnitude so rounding noise does not count as variance) or a
/// non-finite mean or variance. Rows before it have already been scaled.
pub fn zscore_rows(data: &mut [f64], n: usize) -> Result<(), PatternError> {
    if n == 0 || !data.len().is_multiple_of(n) {
        return Err(PatternError::RowLength { len: data.len(), n });
    }
    let count = n as f64;
    for (row, values) in data.chunks_exact_mut(n).enumerate() {
        let mean = values.iter().sum::<f64>() / count;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / count;
        if !mean.is_finite() || !var.is_finite() {
            return Err(PatternError::NonFiniteRow { row });
        }
        let std = var.sqrt();
        let scale = values.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        if std <= f64::EPSILON * scale || std == 0.0 {
            return Err(PatternError::ZeroVariance { row });
        }
        for v in values.iter_mut() {
            *v = (*v - mean) / std;
        }
    }
    Ok(())
}

/// Load the 8×8 digits from a gzipped CSV (scikit-learn's `digits.csv.gz`).
///
/// Each line has 65 comma-separated numbers: 64 pixels in 0..=16 (row-major image) and the
/// label 0..=9 (written as an integer or as a float such as `3.000000000000000000e+00`). The
/// pixels are returned as they are, unpreprocessed, with the labels and shape `(8, 8)`.
pub fn load_digits_csv_gz(path: &Path) -> Result<Patterns> {
    read_digits(path).with_context(|| format!("failed to load digits from {}", path.display()))
}

/// The digits with the FEP preprocessing, split into `(train, test)`.
///
/// Every pixel is squared, then every image (row) is z-scored ([`zscore_rows`]). The training
/// set is the first [`DIGITS_TRAIN`] rows, which must be the digits 0..9 in order; the test set
/// is all the remaining rows (1787 for the bundled file). Both keep labels and shape `(8, 8)`.
pub fn digits_preprocessed(path: &Path) -> Result<(Patterns, Patterns)> {
    let raw = load_digits_csv_gz(path)?;
    preprocess_digits(path, raw)
        .with_context(|| format!("failed to preprocess digits from {}", path.display()))
}

/// Load patterns from `path`, choosing the reader by what the path is:
///
/// - a directory: every `*.png` in it (not recursive), sorted by file name, one pattern per
///   image, pixels scaled to [0, 1]. Greyscale images are read as they are; colour images are
///   converted to grey by Rec. 709 luma and an alpha channel is dropped, each noted in
///   [`Patterns::warnings`]. All images must have the same size, recorded in
///   [`Patterns::shape`].
/// - a `.npy` file: a 2-D array `[P, N]`, or a 1-D array `[N]` taken as one pattern.
/// - a `.csv` or `.txt` file: one pattern per line, values separated by commas (when the line
///   has any) or else by whitespace; blank lines and lines starting with `#` are skipped.
///
/// Every pattern must have the same length N ≥ 1, there must be at least one, and every
/// value must be finite.
pub fn load_patterns(path: &Path) -> Result<Patterns> {
    load_any(path).with_context(|| format!("failed to load patterns from {}", path.display()))
}

fn load_any(path: &Path) -> Result<Patterns> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(PatternError::NotFound {
                path: path.to_path_buf(),
            }
            .into());
        }
        Err(e) => return Err(anyhow::Error::new(e).context("cannot inspect the path")),
    };
    if meta.is_dir() {
        return load_png_dir(path);
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("npy") => load_npy(path),
        Some("csv" | "txt") => {
            let text = fs::read_to_string(path).context("cannot read the file as UTF-8 text")?;
            Ok(parse_text(path, &text)?)
        }
        _ => Err(PatternError::Unsupported {
            path: path.to_path_buf(),
        }
        .into()),
    }
}

fn read_digits(path: &Path) -> Result<Patterns> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(PatternError::NotFound {
                path: path.to_path_buf(),
            }
            .into());
        }
        Err(e) => return Err(anyhow::Error::new(e).context("cannot open the file")),
    };
    let mut text = String::new();
    MultiGzDecoder::new(file)
        .read_to_string(&mut text)
        .context("cannot decompress the file as gzipped UTF-8 text")?;
    Ok(parse_digits(path, &text)?)
}

/// Parse one text cell as a finite number.
fn parse_cell(path: &Path, text: &str, at: Cell) -> Result<f64, PatternError> {
    let value: f64 = text.parse().map_err(|_| PatternError::NotNumeric {
        path: path.to_path_buf(),
        at,
        text: text.to_string(),
    })?;
    if !value.is_finite() {
        return Err(PatternError::NonFinite {
            path: path.to_path_buf(),
            at,
            value,
        });
    }
    Ok(value)
}

fn parse_digits(path: &Path, text: &str) -> Result<Patterns, PatternError> {
    let columns = DIGITS_PIXELS + 1;
    let mut data = Vec::new();
    let mut labels = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            continue;
        }
        let fields: Vec<&str> = trimmed.split(',').map(str::trim).collect();
        if fields.len() != columns {
            return Err(PatternError::ColumnCount {
                path: path.to_path_buf(),
                line,
                found: fields.len(),
                expected: columns,
            });
        }
        for (j, field) in fields[..DIGITS_PIXELS].iter().enumerate() {
            let at = Cell::line(line, j + 1);
            let value = parse_cell(path, field, at)?;
            if !(0.0..=DIGITS_MAX).contains(&value) {
                return Err(PatternError::OutOfRange {
                    path: path.to_path_buf(),
                    at,
                    value,
                    min: 0.0,
                    max: DIGITS_MAX,
                });
            }
            data.push(value);
        }
        let label_text = fields[DIGITS_PIXELS];
        labels.push(
            parse_label(label_text).ok_or_else(|| PatternError::BadLabel {
                path: path.to_path_buf(),
                line,
                text: label_text.to_string(),
            })?,
        );
    }
    if labels.is_empty() {
        return Err(PatternError::NoPatterns {
            path: path.to_path_buf(),
        });
    }
    Ok(Patterns {
        n: DIGITS_PIXELS,
        data,
        labels: Some(labels),
        shape: Some(DIGITS_SHAPE),
        source: format!("digits:{}", path.display()),
        warnings: Vec::new(),
    })
}

/// A digit label: an integer 0..=9, possibly written as a float (`3.0e+00`).
fn parse_label(text: &str) -> Option<usize> {
    let value: f64 = text.parse().ok()?;
    let classes = DIGITS_CLASSES as f64;
    if value.is_finite() && value.fract() == 0.0 && (0.0..classes).contains(&value) {
        // Exact: an integer in 0..10.
        Some(value as usize)
    } else {
        None
    }
}

fn preprocess_digits(path: &Path, raw: Patterns) -> Result<(Patterns, Patterns)> {
    let rows = raw.len();
    if rows <= DIGITS_TRAIN {
        return Err(PatternError::TooFewRows {
            path: path.to_path_buf(),
            found: rows,
            need: DIGITS_TRAIN,
        }
        .into());
    }
    let labels = raw.labels.unwrap_or_default();
    let train_labels = labels.get(..DIGITS_TRAIN).unwrap_or_default();
    if !train_labels.iter().copied().eq(0..DIGITS_TRAIN) {
        return Err(PatternError::TrainOrder {
            path: path.to_path_buf(),
            found: train_labels.to_vec(),
        }
        .into());
    }
    let n = raw.n;
    let mut data = raw.data;
    for v in &mut data {
        *v *= *v;
    }
    zscore_rows(&mut data, n)?;
    let test_data = data.split_off(DIGITS_TRAIN * n);
    let mut train_labels = labels;
    let test_labels = train_labels.split_off(DIGITS_TRAIN);
    let make = |data: Vec<f64>, labels: Vec<usize>, what: &str| Patterns {
        n,
        data,
        labels: Some(labels),
        shape: raw.shape,
        source: format!("{} ({what}; pixels squared, images z-scored)", raw.source),
        warnings: raw.warnings.clone(),
    };
    let train = make(data, train_labels, "train: rows 0..10");
    let test = make(test_data, test_labels, &format!("test: rows 10..{rows}"));
    Ok((train, test))
}

fn parse_text(path: &Path, text: &str) -> Result<Patterns, PatternError> {
    let mut data = Vec::new();
    let mut n = 0;
    let mut first = 0;
    let mut p = 0;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim_start_matches('\u{feff}').trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let start = data.len();
        if trimmed.contains(',') {
            for (j, field) in trimmed.split(',').enumerate() {
                data.push(parse_cell(path, field.trim(), Cell::line(line, j + 1))?);
            }
        } else {
            for (j, field) in trimmed.split_whitespace().enumerate() {
                data.push(parse_cell(path, field, Cell::line(line, j + 1))?);
            }
        }
        let len = data.len() - start;
        if p == 0 {
            n = len;
            first = line;
        } else if len != n {
            return Err(PatternError::MixedLength {
                path: path.to_path_buf(),
                at: Record::Line(line),
                found: len,
                first: Record::Line(first),
                expected: n,
            });
        }
        p += 1;
    }
    if p == 0 {
        return Err(PatternError::NoPatterns {
            path: path.to_path_buf(),
        });
    }
    Ok(Patterns {
        n,
        data,
        labels: None,
        shape: None,
        source: format!("text:{}", path.display()),
        warnings: Vec::new(),
    })
}

/// Patterns from the text of a `.csv`/`.txt` file (the rules of [`load_patterns`]); `source`
/// names the input in errors and in [`Patterns::source`].
pub fn patterns_from_text(text: &str, source: &Path) -> Result<Patterns, PatternError> {
    parse_text(source, text)
}

fn load_npy(path: &Path) -> Result<Patterns> {
    let array = crate::npy::read_npy(path)?;
    Ok(patterns_from_npy(array, path)?)
}

/// Patterns from a decoded `.npy` array (the rules of [`load_patterns`]); `path` names the
/// source in errors and in [`Patterns::source`].
pub fn patterns_from_npy(
    array: crate::npy::NpyArray,
    path: &Path,
) -> Result<Patterns, PatternError> {
    let (p, n) = match array.shape.as_slice() {
        &[n] => (1, n),
        &[p, n] => (p, n),
        shape => {
            return Err(PatternError::NpyDims {
                path: path.to_path_buf(),
                shape: shape.to_vec(),
            });
        }
    };
    if p == 0 || n == 0 {
        return Err(PatternError::ZeroSize {
            path: path.to_path_buf(),
            p,
            n,
        });
    }
    if let Some(i) = array.data.iter().position(|v| !v.is_finite()) {
        return Err(PatternError::NonFinite {
            path: path.to_path_buf(),
            at: Cell::row(i / n, i % n),
            value: array.data[i],
        });
    }
    Ok(Patterns {
        n,
        data: array.data,
        labels: None,
        shape: None,
        source: format!("npy:{}", path.display()),
        warnings: Vec::new(),
    })
}

fn load_png_dir(dir: &Path) -> Result<Patterns> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).context("cannot list the directory")? {
        let path = entry.context("cannot list the directory")?.path();
        let is_png = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("png"));
        if is_png && path.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    let Some(first) = files.first() else {
        return Err(PatternError::NoPngs {
            path: dir.to_path_buf(),
        }
        .into());
    };

    let mut data = Vec::new();
    let mut warnings = Vec::new();
    let mut size = None;
    for file in &files {
        let reader =
            ImageReader::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        let image = decode_limited(reader, file)?;
        let found = (image.height() as usize, image.width() as usize);
        match size {
            None => size = Some(found),
            Some(expected) if expected != found => {
                return Err(PatternError::ImageSize {
                    path: file.clone(),
                    found,
                    first: first.clone(),
                    expected,
                }
                .into());
            }
            Some(_) => {}
        }
        push_grey(&image, file, &mut data, &mut warnings);
    }

    let (height, width) = size.unwrap_or((0, 0));
    let n = height * width;
    if n == 0 {
        return Err(PatternError::ZeroSize {
            path: dir.to_path_buf(),
            p: files.len(),
            n,
        }
        .into());
    }
    Ok(Patterns {
        n,
        data,
        labels: None,
        shape: Some((height, width)),
        source: format!("png-dir:{}", dir.display()),
        warnings,
    })
}

/// Reads one PNG (or any image the `image` crate decodes) as grey values in [0, 1]: returns
/// `(height, width, pixels)`, row-major; colour or alpha conversions are noted in `warnings`.
pub fn read_grey_image(
    file: &Path,
    warnings: &mut Vec<String>,
) -> Result<(usize, usize, Vec<f64>)> {
    let reader =
        ImageReader::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let image = decode_limited(reader, file)?;
    let mut data = Vec::new();
    push_grey(&image, file, &mut data, warnings);
    Ok((image.height() as usize, image.width() as usize, data))
}

/// [`read_grey_image`] for image file contents held in memory; `file` names the image in errors
/// and warnings.
pub fn decode_grey_image(
    bytes: &[u8],
    file: &Path,
    warnings: &mut Vec<String>,
) -> Result<(usize, usize, Vec<f64>)> {
    let image = decode_limited(ImageReader::new(io::Cursor::new(bytes)), file)?;
    let mut data = Vec::new();
    push_grey(&image, file, &mut data, warnings);
    Ok((image.height() as usize, image.width() as usize, data))
}

/// Decodes an image whose size, read from its header before any pixel buffer is allocated, is
/// at most [`MAX_IMAGE_PIXELS`].
fn decode_limited<R: BufRead + Seek>(reader: ImageReader<R>, file: &Path) -> Result<DynamicImage> {
    let decoder = reader
        .with_guessed_format()
        .with_context(|| format!("cannot open {}", file.display()))?
        .into_decoder()
        .with_context(|| format!("cannot decode {}", file.display()))?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > MAX_IMAGE_PIXELS {
        return Err(PatternError::ImageTooLarge {
            path: file.to_path_buf(),
            width,
            height,
        }
        .into());
    }
    DynamicImage::from_decoder(decoder).with_context(|| format!("cannot decode {}", file.display()))
}

/// Append the image's pixels as grey values in [0, 1], noting any conversion in `warnings`.
fn push_grey(image: &DynamicImage, file: &Path, out: &mut Vec<f64>, warnings: &mut Vec<String>) {
    let color = image.color();
    let name = file.file_name().map_or_else(
        || file.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    let wide = color.bytes_per_pixel() / color.channel_count().max(1) > 1;
    if color.has_color() {
        warnings.push(format!(
            "{name}: colour image ({color:?}) converted to greyscale (Rec. 709 luma)"
        ));
    }
    if color.has_alpha() {
        warnings.push(format!("{name}: alpha channel ignored"));
    }
    let luma = |rgb: [f64; 3], max: f64| {
        let y = LUMA[0] * rgb[0] + LUMA[1] * rgb[1] + LUMA[2] * rgb[2];
        (y / max).clamp(0.0, 1.0)
    };
    match (color.has_color(), wide) {
        (true, true) => {
            let max = f64::from(u16::MAX);
            out.extend(
                image
                    .to_rgb16()
                    .pixels()
                    .map(|p| luma(p.0.map(f64::from), max)),
            );
        }
        (true, false) => {
            let max = f64::from(u8::MAX);
            out.extend(
                image
                    .to_rgb8()
                    .pixels()
                    .map(|p| luma(p.0.map(f64::from), max)),
            );
        }
        (false, true) => {
            let max = f64::from(u16::MAX);
            out.extend(image.to_luma16().pixels().map(|p| f64::from(p.0[0]) / max));
        }
        (false, false) => {
            let max = f64::from(u8::MAX);
            out.extend(image.to_luma8().pixels().map(|p| f64::from(p.0[0]) / max));
        }
    }
}

#[cfg(test)]
mod tests;
