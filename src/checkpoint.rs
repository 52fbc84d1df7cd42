//! Whole-state checkpoints, written so that a crash at any moment loses nothing.
//!
//! A checkpoint is one file, `ckpt-<step>.atck`, holding every tensor of a training state
//! (parameters, optimiser moments, persistent chains …) as named f32 arrays, plus a JSON header
//! (model kind, step, RNG state, anything else the model needs). The file ends with a 64-bit
//! FNV-1a checksum of everything before it, so truncation or corruption is detected on load.
//!
//! Writing: the bytes go to `ckpt-<step>.atck.tmp`, are `fsync`ed, renamed to the final name and
//! the directory is synced; only then are older checkpoints pruned (the newest `keep` survive).
//! A process killed mid-write leaves at worst a `.tmp` file, which is ignored and cleaned up.
//!
//! Layout: `b"ATTRCKPT"`, `u32` format version, `u64` header length, header JSON, the tensor
//! payloads (little-endian f32, in header order), `u64` checksum.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 8] = b"ATTRCKPT";
const VERSION: u32 = 1;
/// File extension of checkpoints.
pub const EXT: &str = "atck";

/// A named f32 array.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedArray {
    /// Name, e.g. `V` or `adam.m.V`.
    pub name: String,
    /// Shape (row-major).
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f32>,
}

/// Everything needed to continue a training run exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// Model family (`ddm`, `nlm`, `fep`).
    pub kind: String,
    /// Number of completed training steps.
    pub step: u64,
    /// Tensors of the state.
    pub arrays: Vec<NamedArray>,
    /// Everything else (RNG state, schedule position …).
    pub extra: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
struct Header {
    kind: String,
    step: u64,
    arrays: Vec<(String, Vec<usize>)>,
    extra: serde_json::Value,
}

impl Checkpoint {
    /// The array called `name`, or an error naming what is missing.
    pub fn array(&self, name: &str) -> Result<&NamedArray> {
        self.arrays
            .iter()
            .find(|a| a.name == name)
            .with_context(|| format!("checkpoint has no tensor `{name}`"))
    }

    /// The array called `name`, checked against an expected shape.
    pub fn array_shaped(&self, name: &str, shape: &[usize]) -> Result<&NamedArray> {
        let a = self.array(name)?;
        if a.shape != shape {
            bail!(
                "checkpoint tensor `{name}` has shape {:?}, but the run's config needs {:?} \
                 (checkpoint from a different configuration?)",
                a.shape,
                shape
            );
        }
        Ok(a)
    }

    /// Serialises to bytes (the on-disk format).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let header = Header {
            kind: self.kind.clone(),
            step: self.step,
            arrays: self
                .arrays
                .iter()
                .map(|a| (a.name.clone(), a.shape.clone()))
                .collect(),
            extra: self.extra.clone(),
        };
        for a in &self.arrays {
            let n: usize = a.shape.iter().product();
            if n != a.data.len() {
                bail!(
                    "tensor `{}`: shape {:?} but {} values",
                    a.name,
                    a.shape,
                    a.data.len()
                );
            }
        }
        let hj = serde_json::to_vec(&header)?;
        let payload: usize = self.arrays.iter().map(|a| a.data.len() * 4).sum();
        let mut out = Vec::with_capacity(8 + 4 + 8 + hj.len() + payload + 8);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(hj.len() as u64).to_le_bytes());
        out.extend_from_slice(&hj);
        for a in &self.arrays {
            for v in &a.data {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        let sum = fnv1a(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        Ok(out)
    }

    /// Parses bytes written by [`Checkpoint::to_bytes`], verifying magic, version and checksum.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < 8 + 4 + 8 + 8 {
            bail!("file is truncated ({} bytes)", bytes.len());
        }
        if &bytes[..8] != MAGIC {
            bail!("not an attractor checkpoint (bad magic bytes)");
        }
        let body = &bytes[..bytes.len() - 8];
        let mut sum = [0u8; 8];
        sum.copy_from_slice(&bytes[bytes.len() - 8..]);
        if fnv1a(body) != u64::from_le_bytes(sum) {
            bail!("checksum mismatch: the file is truncated or corrupt");
        }
        let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if version != VERSION {
            bail!("unsupported checkpoint format version {version} (this build reads {VERSION})");
        }
        let mut hl = [0u8; 8];
        hl.copy_from_slice(&bytes[12..20]);
        let hlen = u64::from_le_bytes(hl) as usize;
        let hend = 20usize
            .checked_add(hlen)
            .context("header length overflows")?;
        if hend > body.len() {
            bail!("header length {hlen} runs past the end of the file");
        }
        let header: Header = serde_json::from_slice(&body[20..hend])
            .context("checkpoint header is not valid JSON")?;
        let mut pos = hend;
        let mut arrays = Vec::with_capacity(header.arrays.len());
        for (name, shape) in header.arrays {
            // Checked: a corrupt header must not wrap around to a small size.
            let Some(end) = shape
                .iter()
                .try_fold(4usize, |n, &d| n.checked_mul(d))
                .and_then(|len| pos.checked_add(len))
            else {
                bail!("tensor `{name}`: shape {shape:?} is too large");
            };
            if end > body.len() {
                bail!("tensor `{name}` runs past the end of the file");
            }
            let data = body[pos..end]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            pos = end;
            arrays.push(NamedArray { name, shape, data });
        }
        if pos != body.len() {
            bail!(
                "{} unexpected bytes after the last tensor",
                body.len() - pos
            );
        }
        Ok(Self {
            kind: header.kind,
            step: header.step,
            arrays,
            extra: header.extra,
        })
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

pub use crate::atomic::{WriteError, atomic_write};

/// Path of the checkpoint for `step` in `dir`.
pub fn path_for(dir: &Path, step: u64) -> PathBuf {
    dir.join(format!("ckpt-{step:09}.{EXT}"))
}

/// Complete checkpoint files in `dir`, newest (highest step) first.
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let rd = fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for e in rd {
        let e = e.with_context(|| format!("cannot read {}", dir.display()))?;
        let p = e.path();
        let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(s) = name
            .strip_prefix("ckpt-")
            .and_then(|s| s.strip_suffix(&format!(".{EXT}")))
            && let Ok(step) = s.parse::<u64>()
        {
            out.push((step, p));
        }
    }
    out.sort_by_key(|b| std::cmp::Reverse(b.0));
    Ok(out)
}

/// Saves `ck` into `dir` atomically and prunes all but the newest `keep` checkpoints
/// (never fewer than 2, so a previous good checkpoint always survives the newest).
pub fn save(dir: &Path, ck: &Checkpoint, keep: usize) -> Result<PathBuf> {
    let path = path_for(dir, ck.step);
    atomic_write(&path, &ck.to_bytes()?)?;
    let keep = keep.max(2);
    for (_, old) in list(dir)?.into_iter().skip(keep) {
        let _ = fs::remove_file(old);
    }
    // Leftovers of writes interrupted by a crash.
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "tmp")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("ckpt-"))
            {
                let _ = fs::remove_file(p);
            }
        }
    }
    Ok(path)
}

/// What a checkpoint file's header says, read without its tensors (and so without checking its
/// checksum): for a look at a run's shapes or settings that does not load the state.
#[derive(Clone, Debug, PartialEq)]
pub struct HeaderInfo {
    /// Model family (`ddm`, `nlm`, `fep`).
    pub kind: String,
    /// Number of completed training steps.
    pub step: u64,
    /// Names and shapes of the tensors, in file order.
    pub shapes: Vec<(String, Vec<usize>)>,
    /// Everything else the model stored.
    pub extra: serde_json::Value,
}

/// Reads only the header of checkpoint `path` (see [`HeaderInfo`]).
pub fn read_header(path: &Path) -> Result<HeaderInfo> {
    use std::io::Read;
    let what = || format!("cannot read the header of checkpoint {}", path.display());
    let mut f = fs::File::open(path).with_context(what)?;
    let mut head = [0u8; 20];
    f.read_exact(&mut head).with_context(what)?;
    if &head[..8] != MAGIC {
        bail!(
            "{} is not an attractor checkpoint (bad magic bytes)",
            path.display()
        );
    }
    let mut hl = [0u8; 8];
    hl.copy_from_slice(&head[12..20]);
    let hlen = u64::from_le_bytes(hl);
    let file_len = f.metadata().with_context(what)?.len();
    if hlen > file_len.saturating_sub(20) {
        bail!(
            "{}: header length {hlen} runs past the end of the file",
            path.display()
        );
    }
    let mut hj = vec![0u8; hlen as usize];
    f.read_exact(&mut hj).with_context(what)?;
    let header: Header = serde_json::from_slice(&hj).with_context(|| {
        format!(
            "checkpoint {} has a header that is not valid JSON",
            path.display()
        )
    })?;
    Ok(HeaderInfo {
        kind: header.kind,
        step: header.step,
        shapes: header.arrays,
        extra: header.extra,
    })
}

/// One checkpoint file as [`verify`] found it.
#[derive(Clone, Debug, Serialize)]
pub struct CheckedFile {
    /// The step in its name.
    pub step: u64,
    /// The file.
    pub file: String,
    /// Whether it loads and holds the step of its name.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
}

/// What `attractor verify` reports on a run directory.
#[derive(Clone, Debug, Serialize)]
pub struct Verification {
    /// The run directory.
    pub run_dir: String,
    /// Every checkpoint, newest first.
    pub checkpoints: Vec<CheckedFile>,
    /// The newest checkpoint's step.
    pub latest_step: Option<u64>,
    /// Temporary files left by an interrupted write (`*.tmp`).
    pub tmp_files: Vec<String>,
    /// Whether every checkpoint is usable.
    pub ok: bool,
}

/// Loads every checkpoint of `dir` and lists leftover temporary files.
pub fn verify(dir: &Path) -> Result<Verification> {
    if !dir.is_dir() {
        bail!("run directory {} does not exist", dir.display());
    }
    let mut checkpoints = Vec::new();
    for (step, path) in list(dir)? {
        let r = load_file(&path).and_then(|c| {
            if c.step == step {
                Ok(c)
            } else {
                bail!("{} holds step {}, not {step}", path.display(), c.step)
            }
        });
        checkpoints.push(CheckedFile {
            step,
            file: path.display().to_string(),
            ok: r.is_ok(),
            error: r.err().map(|e| format!("{e:#}")),
        });
    }
    let tmp_files = fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    Ok(Verification {
        run_dir: dir.display().to_string(),
        latest_step: checkpoints.first().map(|c| c.step),
        ok: checkpoints.iter().all(|c| c.ok),
        checkpoints,
        tmp_files,
    })
}

/// Loads one checkpoint file, with errors that name it.
pub fn load_file(path: &Path) -> Result<Checkpoint> {
    let bytes =
        fs::read(path).with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    Checkpoint::from_bytes(&bytes)
        .with_context(|| format!("checkpoint {} is unusable", path.display()))
}

/// Loads the newest checkpoint in `dir`. A damaged newest checkpoint is an error (naming the
/// file and the older checkpoints that remain) rather than a silent fallback.
pub fn load_latest(dir: &Path) -> Result<Option<Checkpoint>> {
    let all = list(dir)?;
    let Some((_, newest)) = all.first() else {
        return Ok(None);
    };
    match load_file(newest) {
        Ok(c) => Ok(Some(c)),
        Err(e) => {
            let older: Vec<String> = all[1..]
                .iter()
                .map(|(_, p)| p.display().to_string())
                .collect();
            if older.is_empty() {
                Err(e)
            } else {
                Err(e.context(format!(
                    "the newest checkpoint is damaged; older ones exist ({}): move the damaged \
                     file away to resume from them",
                    older.join(", ")
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            kind: "ddm".into(),
            step: 42,
            arrays: vec![
                NamedArray {
                    name: "V".into(),
                    shape: vec![2, 3],
                    data: vec![1., 2., 3., 4., 5., 6.],
                },
                NamedArray {
                    name: "c".into(),
                    shape: vec![3],
                    data: vec![-1., 0.5, 7.],
                },
            ],
            extra: serde_json::json!({"rng": [1, 2, 3]}),
        }
    }

    #[test]
    fn bytes_round_trip() {
        let c = sample();
        assert_eq!(Checkpoint::from_bytes(&c.to_bytes().unwrap()).unwrap(), c);
    }

    #[test]
    fn header_is_read_without_the_tensors() {
        let dir = std::env::temp_dir().join(format!("ckpt_header_{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.atck");
        let bytes = sample().to_bytes().unwrap();
        fs::write(&path, &bytes).unwrap();
        let h = read_header(&path).unwrap();
        assert_eq!((h.kind.as_str(), h.step), ("ddm", 42));
        assert_eq!(
            h.shapes,
            [("V".to_string(), vec![2, 3]), ("c".to_string(), vec![3])]
        );
        assert_eq!(h.extra, serde_json::json!({"rng": [1, 2, 3]}));
        // A file cut inside its header, or not a checkpoint, is an error naming it.
        fs::write(&path, &bytes[..30]).unwrap();
        assert!(format!("{:#}", read_header(&path).unwrap_err()).contains("c.atck"));
        fs::write(&path, b"not a checkpoint at all").unwrap();
        assert!(read_header(&path).is_err());
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn every_truncation_and_bit_flip_is_detected() {
        let b = sample().to_bytes().unwrap();
        for cut in 0..b.len() {
            assert!(
                Checkpoint::from_bytes(&b[..cut]).is_err(),
                "cut at {cut} accepted"
            );
        }
        for i in (0..b.len()).step_by(3) {
            let mut c = b.clone();
            c[i] ^= 0x10;
            assert!(Checkpoint::from_bytes(&c).is_err(), "flip at {i} accepted");
        }
    }

    #[test]
    fn save_prunes_but_keeps_two() {
        let dir = std::env::temp_dir().join(format!("attractor-ck-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("ckpt-000000001.atck.tmp"), b"partial").unwrap();
        let mut c = sample();
        for s in 1..=5 {
            c.step = s;
            save(&dir, &c, 1).unwrap();
        }
        let l = list(&dir).unwrap();
        assert_eq!(l.iter().map(|x| x.0).collect::<Vec<_>>(), vec![5, 4]);
        assert!(!dir.join("ckpt-000000001.atck.tmp").exists());
        assert_eq!(load_latest(&dir).unwrap().unwrap().step, 5);
        fs::write(path_for(&dir, 6), b"garbage").unwrap();
        let err = format!("{:#}", load_latest(&dir).unwrap_err());
        assert!(err.contains("ckpt-000000006"), "{err}");
        assert!(err.contains("older ones exist"), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }
}
