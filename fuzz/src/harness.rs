//! Helpers shared by the fuzz targets.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A fresh, empty scratch folder for this process (the same path every call: it is emptied).
///
/// Fuzz targets that feed folder loaders write their files here; one folder per process so that
/// parallel fuzzing jobs do not collide.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("attractor-fuzz-{tag}-{}", std::process::id()));
    if dir.exists() {
        for entry in fs::read_dir(&dir)
            .expect("scratch dir is readable")
            .flatten()
        {
            let _ = fs::remove_file(entry.path());
        }
    } else {
        fs::create_dir_all(&dir).expect("scratch dir can be created");
    }
    dir
}

/// Writes `bytes` to `dir/name` (harness failure, not a finding, if that fails).
pub fn put(dir: &Path, name: &str, bytes: &[u8]) {
    fs::write(dir.join(name), bytes).expect("scratch file can be written");
}

/// 64-bit FNV-1a, the checkpoint checksum (so the target can make checksums right).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Splits `bytes` before every occurrence of `marker` after the start, into at most `max` parts
/// (the last part keeps the rest).
pub fn split_at_marker<'a>(bytes: &'a [u8], marker: &[u8], max: usize) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 1;
    while parts.len() + 1 < max && i + marker.len() <= bytes.len() {
        if &bytes[i..i + marker.len()] == marker {
            parts.push(&bytes[start..i]);
            start = i;
            i += marker.len();
        } else {
            i += 1;
        }
    }
    parts.push(&bytes[start..]);
    parts
}

/// Stand-in for the main crate's `#[derive(Config)]` structs (which need Burn): a few typed
/// fields of the kinds those structs have, one nested.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct StandInConfig {
    /// A float hyperparameter.
    pub lr: f64,
    /// A count.
    pub iters: usize,
    /// A string option.
    pub data: String,
    /// A flag.
    pub symmetric: bool,
    /// A list, like `digits` or `subset`.
    pub digits: Vec<u8>,
    /// An optional value.
    pub until: Option<u64>,
    /// A nested table.
    pub sampler: StandInInner,
}

/// The nested part of [`StandInConfig`].
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct StandInInner {
    /// A count.
    pub steps: usize,
    /// A float.
    pub noise: f64,
}

impl Default for StandInConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            iters: 2000,
            data: "mnist".into(),
            symmetric: false,
            digits: vec![1, 3, 6],
            until: None,
            sampler: StandInInner {
                steps: 10,
                noise: 0.5,
            },
        }
    }
}
