//! Reader for IDX files, the format of the MNIST data set.
//!
//! An IDX file is a big-endian header followed by raw `u8` data:
//!
//! - images: magic `0x00000803`, then `u32` count, `u32` rows, `u32` cols, then
//!   `count * rows * cols` bytes in row-major order;
//! - labels: magic `0x00000801`, then `u32` count, then `count` bytes.
//!
//! Files may be stored raw or gzip-compressed; compression is detected from the gzip magic
//! bytes `1f 8b`, never from the file name. Every header is validated before any buffer sized
//! from it is allocated, and the data length must match the header exactly.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::Context;
use flate2::read::MultiGzDecoder;

/// Magic number of an IDX file holding `u8` images (three dimensions).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file holding `u8` labels (one dimension).
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// Largest data section (in bytes, after decompression) this reader accepts: 2 GiB.
pub const MAX_DATA_BYTES: u64 = 2 << 30;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Errors from reading IDX files. Every variant names the file or directory involved.
#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    /// An I/O error (opening, reading or decompressing).
    #[error("{path}: I/O error: {source}")]
    Io {
        /// The file being read.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file (or its decompressed stream) is empty.
    #[error("{path}: file is empty")]
    Empty {
        /// The file being read.
        path: PathBuf,
    },
    /// The file ends inside the header.
    #[error("{path}: incomplete IDX header: expected {expected} bytes, found {found}")]
    ShortHeader {
        /// The file being read.
        path: PathBuf,
        /// Header size in bytes.
        expected: usize,
        /// Bytes actually present.
        found: usize,
    },
    /// The magic number is not the one expected for this kind of file.
    #[error("{path}: bad IDX magic number: expected {expected:#010x}, found {found:#010x}")]
    BadMagic {
        /// The file being read.
        path: PathBuf,
        /// The magic number required.
        expected: u32,
        /// The magic number in the file.
        found: u32,
    },
    /// A dimension in the header is zero.
    #[error("{path}: IDX header has a zero dimension: {dims:?}")]
    ZeroDim {
        /// The file being read.
        path: PathBuf,
        /// The dimensions from the header.
        dims: Vec<u32>,
    },
    /// The header claims more data than the file can hold (or more than [`MAX_DATA_BYTES`]).
    #[error(
        "{path}: IDX header {dims:?} claims {claimed} data bytes, but at most {available} are possible"
    )]
    TooLarge {
        /// The file being read.
        path: PathBuf,
        /// The dimensions from the header.
        dims: Vec<u32>,
        /// Data bytes implied by the header (`u64::MAX` if the product overflows).
        claimed: u64,
        /// Upper bound on the data bytes actually available.
        available: u64,
    },
    /// The data section is shorter than the header says.
    #[error("{path}: truncated IDX data: expected {expected} bytes, found {actual}")]
    Truncated {
        /// The file being read.
        path: PathBuf,
        /// Data bytes implied by the header.
        expected: u64,
        /// Data bytes present.
        actual: u64,
    },
    /// The data section is longer than the header says.
    #[error("{path}: trailing bytes after IDX data: expected {expected} bytes, found {actual}")]
    Trailing {
        /// The file being read.
        path: PathBuf,
        /// Data bytes implied by the header.
        expected: u64,
        /// Data bytes present (capped at [`MAX_DATA_BYTES`] + 1 for compressed files).
        actual: u64,
    },
    /// The image and label files of a data set hold different numbers of records.
    #[error(
        "label count mismatch: {images_path} holds {images} images but {labels_path} holds {labels} labels"
    )]
    CountMismatch {
        /// The images file.
        images_path: PathBuf,
        /// The labels file.
        labels_path: PathBuf,
        /// Number of images.
        images: usize,
        /// Number of labels.
        labels: usize,
    },
    /// No images file was found in a data directory.
    #[error("{dir}: no MNIST images file found (looked for {expected})")]
    MissingImages {
        /// The directory searched.
        dir: PathBuf,
        /// The file names tried, comma separated.
        expected: String,
    },
}

/// A stack of `u8` images, stored contiguously in row-major order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// All pixels, `count * rows * cols` bytes; image `i` is `pixels[i*rows*cols..(i+1)*rows*cols]`.
    pub pixels: Vec<u8>,
}

impl Images {
    /// The pixels of image `i` (`rows * cols` bytes, row-major).
    ///
    /// # Panics
    /// If `i >= self.count`.
    pub fn image(&self, i: usize) -> &[u8] {
        assert!(
            i < self.count,
            "image index {i} out of range ({} images)",
            self.count
        );
        let n = self.rows * self.cols;
        &self.pixels[i * n..(i + 1) * n]
    }
}

/// Dimensions and data of a validated IDX file.
struct Idx {
    dims: Vec<usize>,
    data: Vec<u8>,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> IdxError + '_ {
    move |source| IdxError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads up to `buf.len()` bytes, stopping early only at end of stream; returns bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads and validates an IDX file with the given magic number and number of dimensions.
fn read_idx(path: &Path, magic: u32, ndims: usize) -> Result<Idx, IdxError> {
    let file = File::open(path).map_err(io_err(path))?;
    let file_len = file.metadata().map_err(io_err(path))?.len();
    read_idx_from(BufReader::new(file), file_len, path, magic, ndims)
}

/// Validates IDX contents read from `file` (`file_len` bytes in all, raw or gzip-compressed);
/// `path` names the source in errors.
fn read_idx_from(
    mut file: impl Read,
    file_len: u64,
    path: &Path,
    magic: u32,
    ndims: usize,
) -> Result<Idx, IdxError> {
    // Sniff the gzip magic bytes.
    let mut sniff = [0u8; 2];
    let n = read_full(&mut file, &mut sniff).map_err(io_err(path))?;
    let gzipped = n == 2 && sniff == GZIP_MAGIC;
    let mut reader: Box<dyn Read + '_> = if gzipped {
        Box::new(MultiGzDecoder::new(io::Cursor::new(sniff).chain(file)))
    } else {
        Box::new(io::Cursor::new(sniff[..n].to_vec()).chain(file))
    };

    // Header: magic + one u32 per dimension.
    let header_len = 4 * (1 + ndims);
    let mut header = vec![0u8; header_len];
    let got = read_full(&mut reader, &mut header).map_err(io_err(path))?;
    if got == 0 {
        return Err(IdxError::Empty {
            path: path.to_path_buf(),
        });
    }
    if got < header_len {
        return Err(IdxError::ShortHeader {
            path: path.to_path_buf(),
            expected: header_len,
            found: got,
        });
    }
    let word = |k: usize| {
        u32::from_be_bytes([
            header[4 * k],
            header[4 * k + 1],
            header[4 * k + 2],
            header[4 * k + 3],
        ])
    };
    let found = word(0);
    if found != magic {
        return Err(IdxError::BadMagic {
            path: path.to_path_buf(),
            expected: magic,
            found,
        });
    }
    let dims: Vec<u32> = (1..=ndims).map(word).collect();
    if dims.contains(&0) {
        return Err(IdxError::ZeroDim {
            path: path.to_path_buf(),
            dims,
        });
    }
    let claimed = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)))
        .unwrap_or(u64::MAX);
    // Upper bound on what the data section can hold, checked before allocating anything.
    let available = if gzipped {
        MAX_DATA_BYTES
    } else {
        file_len
            .saturating_sub(header_len as u64)
            .min(MAX_DATA_BYTES)
    };
    if claimed > available {
        if !gzipped && claimed <= MAX_DATA_BYTES {
            return Err(IdxError::Truncated {
                path: path.to_path_buf(),
                expected: claimed,
                actual: available,
            });
        }
        return Err(IdxError::TooLarge {
            path: path.to_path_buf(),
            dims,
            claimed,
            available,
        });
    }

    // Read at most one byte more than claimed; the buffer grows with the data actually present,
    // so a lying header in a small compressed file cannot force a large allocation.
    let mut data = Vec::new();
    reader
        .by_ref()
        .take(claimed + 1)
        .read_to_end(&mut data)
        .map_err(io_err(path))?;
    let actual = data.len() as u64;
    if actual < claimed {
        return Err(IdxError::Truncated {
            path: path.to_path_buf(),
            expected: claimed,
            actual,
        });
    }
    if actual > claimed {
        // Count the rest without storing it, up to the cap.
        let rest =
            io::copy(&mut reader.take(MAX_DATA_BYTES), &mut io::sink()).map_err(io_err(path))?;
        return Err(IdxError::Trailing {
            path: path.to_path_buf(),
            expected: claimed,
            actual: actual + rest,
        });
    }
    Ok(Idx {
        dims: dims.into_iter().map(|d| d as usize).collect(),
        data,
    })
}

/// Reads an IDX image file (magic `0x00000803`), raw or gzip-compressed.
///
/// Fails if the header is incomplete, the magic number is wrong, a dimension is zero, the header
/// claims more data than the file can hold, or the data length differs from
/// `count * rows * cols`.
pub fn read_images(path: &Path) -> anyhow::Result<Images> {
    let idx = read_idx(path, IMAGES_MAGIC, 3)
        .with_context(|| format!("reading IDX images from {}", path.display()))?;
    Ok(images_of(idx))
}

fn images_of(idx: Idx) -> Images {
    Images {
        count: idx.dims[0],
        rows: idx.dims[1],
        cols: idx.dims[2],
        pixels: idx.data,
    }
}

/// Parses the contents of an IDX image file held in memory (raw or gzip-compressed), with the
/// checks of [`read_images`]; `source` names the input in errors.
pub fn parse_images_bytes(bytes: &[u8], source: &Path) -> Result<Images, IdxError> {
    let idx = read_idx_from(bytes, bytes.len() as u64, source, IMAGES_MAGIC, 3)?;
    Ok(images_of(idx))
}

/// Parses the contents of an IDX label file held in memory (raw or gzip-compressed), with the
/// checks of [`read_labels`]; `source` names the input in errors.
pub fn parse_labels_bytes(bytes: &[u8], source: &Path) -> Result<Vec<u8>, IdxError> {
    Ok(read_idx_from(bytes, bytes.len() as u64, source, LABELS_MAGIC, 1)?.data)
}

/// Reads an IDX label file (magic `0x00000801`), raw or gzip-compressed.
///
/// Labels are returned as raw bytes; their values are not checked.
pub fn read_labels(path: &Path) -> anyhow::Result<Vec<u8>> {
    let idx = read_idx(path, LABELS_MAGIC, 1)
        .with_context(|| format!("reading IDX labels from {}", path.display()))?;
    Ok(idx.data)
}

/// File names tried for `stem`: `stem`, `stem.gz`, and the dotted variant
/// (`train-images.idx3-ubyte` for `train-images-idx3-ubyte`) with and without `.gz`.
fn candidates(stem: &str) -> Vec<String> {
    let mut names = vec![stem.to_string(), format!("{stem}.gz")];
    if let Some(pos) = stem.find("-idx") {
        let dotted = format!("{}.{}", &stem[..pos], &stem[pos + 1..]);
        names.push(dotted.clone());
        names.push(format!("{dotted}.gz"));
    }
    names
}

/// Finds the IDX file `stem` in `dir`, trying `stem`, `stem.gz` and the dotted variant
/// (`train-images.idx3-ubyte[.gz]` for stem `train-images-idx3-ubyte`), in that order.
pub fn find_idx(dir: &Path, stem: &str) -> Option<PathBuf> {
    candidates(stem)
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

/// Which MNIST split to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The 60 000-image training set (`train-*`).
    Train,
    /// The 10 000-image test set (`t10k-*`).
    Test,
}

impl Split {
    /// Standard file stem of the images file.
    pub fn images_stem(self) -> &'static str {
        match self {
            Split::Train => "train-images-idx3-ubyte",
            Split::Test => "t10k-images-idx3-ubyte",
        }
    }

    /// Standard file stem of the labels file.
    pub fn labels_stem(self) -> &'static str {
        match self {
            Split::Train => "train-labels-idx1-ubyte",
            Split::Test => "t10k-labels-idx1-ubyte",
        }
    }
}

/// Images with optional labels (one per image when present).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    /// The images.
    pub images: Images,
    /// The labels, if a label file was found; same length as `images.count`.
    pub labels: Option<Vec<u8>>,
}

/// Loads one MNIST split from `dir`, using the standard file names (see [`find_idx`]).
///
/// The images file is required; the labels file is optional, but if present must hold exactly
/// one label per image.
pub fn load_mnist_dir(dir: &Path, split: Split) -> anyhow::Result<Dataset> {
    let images_path =
        find_idx(dir, split.images_stem()).ok_or_else(|| IdxError::MissingImages {
            dir: dir.to_path_buf(),
            expected: candidates(split.images_stem()).join(", "),
        })?;
    let images = read_images(&images_path)?;
    let labels = match find_idx(dir, split.labels_stem()) {
        None => None,
        Some(labels_path) => {
            let labels = read_labels(&labels_path)?;
            if labels.len() != images.count {
                return Err(IdxError::CountMismatch {
                    images_path,
                    labels_path,
                    images: images.count,
                    labels: labels.len(),
                }
                .into());
            }
            Some(labels)
        }
    };
    Ok(Dataset { images, labels })
}

/// Indices (in data set order) of the records whose label is in `digits`.
///
/// Fails if the data set has no labels or if nothing is selected.
pub fn filter_digits(ds: &Dataset, digits: &[u8]) -> anyhow::Result<Vec<usize>> {
    let Some(labels) = &ds.labels else {
        anyhow::bail!("cannot filter digits {digits:?}: the data set has no labels");
    };
    let idx: Vec<usize> = labels
        .iter()
        .enumerate()
        .filter(|(_, l)| digits.contains(l))
        .map(|(i, _)| i)
        .collect();
    if idx.is_empty() {
        anyhow::bail!(
            "no records with digits {digits:?} among {} labels",
            labels.len()
        );
    }
    Ok(idx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    fn mnist_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist")
    }

    /// A fresh empty temporary directory.
    fn tmp_dir() -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "attractor-idx-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn header(magic: u32, dims: &[u32]) -> Vec<u8> {
        let mut h = magic.to_be_bytes().to_vec();
        for d in dims {
            h.extend_from_slice(&d.to_be_bytes());
        }
        h
    }

    fn decompressed(path: &Path) -> Vec<u8> {
        let mut v = Vec::new();
        MultiGzDecoder::new(File::open(path).unwrap())
            .read_to_end(&mut v)
            .unwrap();
        v
    }

    fn root_err(e: &anyhow::Error) -> &IdxError {
        e.downcast_ref::<IdxError>()
            .unwrap_or_else(|| panic!("not an IdxError: {e:#}"))
    }

    #[test]
    fn train_split() {
        let ds = load_mnist_dir(&mnist_dir(), Split::Train).unwrap();
        assert_eq!(
            (ds.images.count, ds.images.rows, ds.images.cols),
            (60000, 28, 28)
        );
        assert_eq!(ds.images.pixels.len(), 60000 * 784);
        let labels = ds.labels.as_ref().unwrap();
        assert_eq!(&labels[..10], &[5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
        let mut counts = [0usize; 10];
        for &l in labels {
            counts[l as usize] += 1;
        }
        assert_eq!(
            counts,
            [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
        );
        assert_eq!(filter_digits(&ds, &[1, 3, 6]).unwrap().len(), 18791);
        assert_eq!(ds.images.image(1).len(), 784);
    }

    #[test]
    fn test_split() {
        let ds = load_mnist_dir(&mnist_dir(), Split::Test).unwrap();
        assert_eq!(
            (ds.images.count, ds.images.rows, ds.images.cols),
            (10000, 28, 28)
        );
        let labels = ds.labels.as_ref().unwrap();
        assert_eq!(&labels[..10], &[7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
        let mut counts = [0usize; 10];
        for &l in labels {
            counts[l as usize] += 1;
        }
        assert_eq!(
            counts,
            [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
        );
        assert_eq!(filter_digits(&ds, &[1, 3, 6]).unwrap().len(), 3103);
    }

    #[test]
    fn raw_round_trip_and_dotted_names() {
        let src = mnist_dir();
        let dir = tmp_dir();
        let imgs = decompressed(&src.join("t10k-images-idx3-ubyte.gz"));
        let labs = decompressed(&src.join("t10k-labels-idx1-ubyte.gz"));
        // Raw files under the dotted names.
        std::fs::write(dir.join("t10k-images.idx3-ubyte"), &imgs).unwrap();
        std::fs::write(dir.join("t10k-labels.idx1-ubyte"), &labs).unwrap();
        let raw = load_mnist_dir(&dir, Split::Test).unwrap();
        let gzd = load_mnist_dir(&src, Split::Test).unwrap();
        assert_eq!(raw, gzd);
        assert_eq!(&raw.images.pixels[..], &imgs[16..]);

        // A gzipped file with no .gz extension is still detected; a raw file named .gz too.
        let p = dir.join("imgs-noext");
        std::fs::write(&p, gz(&imgs)).unwrap();
        assert_eq!(read_images(&p).unwrap(), gzd.images);
        let p = dir.join("labels-raw.gz");
        std::fs::write(&p, &labs).unwrap();
        assert_eq!(read_labels(&p).unwrap(), gzd.labels.unwrap());

        // Small synthetic file, checking image().
        let mut bytes = header(IMAGES_MAGIC, &[2, 2, 3]);
        bytes.extend(0u8..12);
        let p = dir.join("small");
        std::fs::write(&p, &bytes).unwrap();
        let im = read_images(&p).unwrap();
        assert_eq!(im.image(1), &[6, 7, 8, 9, 10, 11]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn labels_optional() {
        let dir = tmp_dir();
        let mut bytes = header(IMAGES_MAGIC, &[3, 1, 1]);
        bytes.extend([0, 1, 2]);
        std::fs::write(dir.join("train-images-idx3-ubyte"), &bytes).unwrap();
        let ds = load_mnist_dir(&dir, Split::Train).unwrap();
        assert!(ds.labels.is_none());
        let e = filter_digits(&ds, &[1]).unwrap_err();
        assert!(e.to_string().contains("no labels"), "{e:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn truncated_images() {
        let dir = tmp_dir();
        let imgs = decompressed(&mnist_dir().join("t10k-images-idx3-ubyte.gz"));
        let cut = &imgs[..imgs.len() - 100];
        for (name, bytes) in [("cut-raw", cut.to_vec()), ("cut.gz", gz(cut))] {
            let p = dir.join(name);
            std::fs::write(&p, bytes).unwrap();
            let e = read_images(&p).unwrap_err();
            match root_err(&e) {
                IdxError::Truncated {
                    expected, actual, ..
                } => {
                    assert_eq!(*expected, 7_840_000);
                    assert_eq!(*actual, 7_840_000 - 100);
                }
                other => panic!("unexpected {other:?}"),
            }
            let msg = format!("{e:#}");
            assert!(
                msg.contains("7840000") && msg.contains("7839900") && msg.contains(name),
                "{msg}"
            );
        }
        // Header cut short.
        let p = dir.join("short-header");
        std::fs::write(&p, &imgs[..10]).unwrap();
        let e = read_images(&p).unwrap_err();
        assert!(
            matches!(
                root_err(&e),
                IdxError::ShortHeader {
                    expected: 16,
                    found: 10,
                    ..
                }
            ),
            "{e:#}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn trailing_bytes() {
        let dir = tmp_dir();
        let mut bytes = header(LABELS_MAGIC, &[3]);
        bytes.extend([1, 2, 3, 4, 5]);
        for (name, b) in [("trail", bytes.clone()), ("trail.gz", gz(&bytes))] {
            let p = dir.join(name);
            std::fs::write(&p, b).unwrap();
            let e = read_labels(&p).unwrap_err();
            assert!(
                matches!(
                    root_err(&e),
                    IdxError::Trailing {
                        expected: 3,
                        actual: 5,
                        ..
                    }
                ),
                "{e:#}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn wrong_magic() {
        let dir = tmp_dir();
        // A label file read as images.
        let e = read_images(&mnist_dir().join("t10k-labels-idx1-ubyte.gz")).unwrap_err();
        match root_err(&e) {
            IdxError::BadMagic {
                expected, found, ..
            } => {
                assert_eq!((*expected, *found), (IMAGES_MAGIC, LABELS_MAGIC));
            }
            other => panic!("unexpected {other:?}"),
        }
        let msg = format!("{e:#}");
        assert!(
            msg.contains("0x00000803") && msg.contains("0x00000801"),
            "{msg}"
        );
        let p = dir.join("junk");
        std::fs::write(&p, b"hello world, not an idx file").unwrap();
        assert!(matches!(
            root_err(&read_labels(&p).unwrap_err()),
            IdxError::BadMagic { .. }
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn zero_dim() {
        let dir = tmp_dir();
        let p = dir.join("zero");
        std::fs::write(&p, header(IMAGES_MAGIC, &[0, 28, 28])).unwrap();
        assert!(matches!(
            root_err(&read_images(&p).unwrap_err()),
            IdxError::ZeroDim { .. }
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn label_count_mismatch() {
        let dir = tmp_dir();
        let mut imgs = header(IMAGES_MAGIC, &[3, 2, 2]);
        imgs.extend([0u8; 12]);
        let mut labs = header(LABELS_MAGIC, &[2]);
        labs.extend([1, 2]);
        std::fs::write(dir.join("t10k-images-idx3-ubyte.gz"), gz(&imgs)).unwrap();
        std::fs::write(dir.join("t10k-labels-idx1-ubyte"), &labs).unwrap();
        let e = load_mnist_dir(&dir, Split::Test).unwrap_err();
        match root_err(&e) {
            IdxError::CountMismatch { images, labels, .. } => {
                assert_eq!((*images, *labels), (3, 2))
            }
            other => panic!("unexpected {other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn huge_count_tiny_file() {
        let dir = tmp_dir();
        let mut bytes = header(IMAGES_MAGIC, &[1_000_000_000, 28, 28]);
        bytes.resize(1024, 7);
        let mut labs = header(LABELS_MAGIC, &[1_000_000_000]);
        labs.resize(1024, 7);
        let t = Instant::now();
        for (name, b) in [("huge", bytes.clone()), ("huge.gz", gz(&bytes))] {
            let p = dir.join(name);
            std::fs::write(&p, b).unwrap();
            let e = read_images(&p).unwrap_err();
            assert!(matches!(root_err(&e), IdxError::TooLarge { .. }), "{e:#}");
        }
        for (name, b) in [("huge-l", labs.clone()), ("huge-l.gz", gz(&labs))] {
            let p = dir.join(name);
            std::fs::write(&p, b).unwrap();
            let e = read_labels(&p).unwrap_err();
            // 1e9 bytes is under the cap: raw files know their length, gzip streams run short.
            assert!(
                matches!(
                    root_err(&e),
                    IdxError::Truncated {
                        expected: 1_000_000_000,
                        actual: 1016,
                        ..
                    }
                ),
                "{e:#}"
            );
        }
        // Dims whose product overflows u64.
        let p = dir.join("overflow");
        std::fs::write(&p, header(IMAGES_MAGIC, &[u32::MAX, u32::MAX, u32::MAX])).unwrap();
        assert!(matches!(
            root_err(&read_images(&p).unwrap_err()),
            IdxError::TooLarge {
                claimed: u64::MAX,
                ..
            }
        ));
        assert!(t.elapsed().as_secs_f64() < 2.0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn empty_file() {
        let dir = tmp_dir();
        let p = dir.join("empty");
        std::fs::write(&p, b"").unwrap();
        assert!(matches!(
            root_err(&read_images(&p).unwrap_err()),
            IdxError::Empty { .. }
        ));
        let p = dir.join("empty.gz");
        std::fs::write(&p, gz(b"")).unwrap();
        assert!(matches!(
            root_err(&read_labels(&p).unwrap_err()),
            IdxError::Empty { .. }
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_dir_and_file() {
        let dir = tmp_dir();
        let e = load_mnist_dir(&dir.join("nope"), Split::Train).unwrap_err();
        let msg = format!("{e:#}");
        assert!(matches!(root_err(&e), IdxError::MissingImages { .. }));
        assert!(
            msg.contains("nope") && msg.contains("train-images-idx3-ubyte.gz"),
            "{msg}"
        );
        let e = load_mnist_dir(&dir, Split::Test).unwrap_err();
        assert!(format!("{e:#}").contains("t10k-images-idx3-ubyte"));
        let e = read_labels(&dir.join("missing.gz")).unwrap_err();
        assert!(matches!(root_err(&e), IdxError::Io { .. }));
        assert!(format!("{e:#}").contains("missing.gz"));
        assert!(find_idx(&dir, "train-images-idx3-ubyte").is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn filter_selects_nothing() {
        let ds = Dataset {
            images: Images {
                count: 3,
                rows: 1,
                cols: 1,
                pixels: vec![0; 3],
            },
            labels: Some(vec![0, 1, 2]),
        };
        assert_eq!(filter_digits(&ds, &[2, 0]).unwrap(), vec![0, 2]);
        let e = filter_digits(&ds, &[7, 8]).unwrap_err();
        assert!(e.to_string().contains("[7, 8]"), "{e:#}");
    }
}
