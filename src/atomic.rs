//! The one atomic-write helper: every file the project writes (checkpoints, `config.json`,
//! `.npy` arrays, PNGs, JSON results, exports) goes through [`atomic_write`], so a reader — or a
//! crash at any moment — sees either the old complete file or the new complete one: write
//! `<name>.tmp`, fsync it, rename it over the destination, fsync the directory.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A file could not be written (disk full, file too large, read-only or unwritable location).
/// The process exits with the I/O exit code when this ends it.
#[derive(Debug)]
pub struct WriteError {
    /// The file that could not be written.
    pub path: PathBuf,
    /// The operating system's error.
    pub source: std::io::Error,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write {}", self.path.display())
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// `<path>.tmp`: where [`atomic_write`] writes before the rename (next to the destination, so
/// the rename stays on one filesystem).
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Writes `bytes` to `path` atomically: temporary file, fsync, rename, directory fsync.
/// The previous content of `path` (if any) stays intact until the new file is complete; on
/// failure the temporary file is removed and the error is a [`WriteError`].
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    path.file_name()
        .with_context(|| format!("{} has no file name", path.display()))?;
    let tmp = tmp_path(path);
    let written = (|| -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(source) = written {
        let _ = fs::remove_file(&tmp);
        return Err(WriteError {
            path: path.to_path_buf(),
            source,
        }
        .into());
    }
    if let Err(source) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(WriteError {
            path: path.to_path_buf(),
            source,
        }
        .into());
    }
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
