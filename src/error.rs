//! Failure kinds that decide the process exit code, and the exit codes themselves.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 2 | bad input: an invalid option, hyperparameter, expression or file (missing, corrupt, wrong size) |
//! | 3 | I/O failure while writing: disk full, file too large, read-only or unwritable location |
//! | 4 | training diverged (NaN/Inf in a loss, a monitored quantity or a parameter) |
//! | 5 | the run directory is in use by another process |
//! | 130 | interrupted by Ctrl-C, SIGTERM or SIGHUP (a checkpoint was saved first) |
//! | 101 | internal error (a bug: please report it) |
//!
//! Errors travel as [`anyhow::Error`]; [`exit_code`] looks through the whole chain of causes for
//! a [`Failure`], a [`crate::checkpoint::WriteError`] or an I/O error of a write-side kind.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Process exit codes (see the module documentation).
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// Bad input (options, hyperparameters, files).
    pub const BAD_INPUT: i32 = 2;
    /// A write failed (disk full, file too large, read-only location).
    pub const IO: i32 = 3;
    /// Training diverged.
    pub const DIVERGED: i32 = 4;
    /// The run directory is locked by another process.
    pub const BUSY: i32 = 5;
    /// Interrupted by Ctrl-C, SIGTERM or SIGHUP after saving a checkpoint.
    pub const INTERRUPTED: i32 = 130;
}

/// Failures with their own exit code.
#[derive(Debug, Error)]
pub enum Failure {
    /// A non-finite value appeared during training.
    #[error(
        "training diverged at step {step}: {quantity} = {value}; stopped without saving. The last \
         good checkpoint is {last_good} (recorded in diverged.json). Lower the learning rate or \
         check the data, then `attractor resume` or start again."
    )]
    Diverged {
        /// 1-based step at which the value appeared.
        step: u64,
        /// What became non-finite (`loss`, a metric name, or `parameter <name>`).
        quantity: String,
        /// The offending value (NaN, inf, -inf).
        value: f64,
        /// The last good checkpoint (path and step), or `none`.
        last_good: String,
    },
    /// Another process holds the run directory's lock.
    #[error(
        "run directory {} is in use by another attractor process ({holder}); wait for it to \
         finish or stop it, or pick another --run-dir",
        dir.display()
    )]
    Busy {
        /// The run directory.
        dir: PathBuf,
        /// What the lock file says about the holder (pid, command, start time).
        holder: String,
    },
}

/// Whether an I/O error kind belongs to the write side (no space, too large, read-only …).
fn is_write_side(kind: io::ErrorKind) -> bool {
    matches!(
        kind,
        io::ErrorKind::StorageFull
            | io::ErrorKind::FileTooLarge
            | io::ErrorKind::ReadOnlyFilesystem
            | io::ErrorKind::QuotaExceeded
            | io::ErrorKind::WriteZero
    )
}

/// The exit code for an error that ended the program.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    for cause in e.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return match f {
                Failure::Diverged { .. } => exit::DIVERGED,
                Failure::Busy { .. } => exit::BUSY,
            };
        }
        if cause
            .downcast_ref::<crate::checkpoint::WriteError>()
            .is_some()
        {
            return exit::IO;
        }
        if let Some(io) = cause.downcast_ref::<io::Error>()
            && is_write_side(io.kind())
        {
            return exit::IO;
        }
    }
    exit::BAD_INPUT
}

/// The machine's physical memory in bytes (Linux `/proc/meminfo`), if known.
pub fn physical_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// Refuses a configuration whose estimated memory (`bytes`, from the sizes named in `what`)
/// exceeds the machine's physical memory, before anything large is allocated.
pub fn check_memory(what: &str, bytes: f64) -> anyhow::Result<()> {
    let limit = physical_memory().unwrap_or(64 << 30) as f64;
    if !bytes.is_finite() || bytes > limit {
        anyhow::bail!(
            "{what} would need about {:.1} GiB of memory, more than this machine's {:.1} GiB: \
             choose smaller sizes",
            bytes / (1u64 << 30) as f64,
            limit / (1u64 << 30) as f64
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_failure_kind() {
        let w: anyhow::Error = crate::checkpoint::WriteError {
            path: "x".into(),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        }
        .into();
        assert_eq!(exit_code(&w.context("saving checkpoint")), exit::IO);
        let d: anyhow::Error = Failure::Diverged {
            step: 3,
            quantity: "loss".into(),
            value: f64::NAN,
            last_good: "none".into(),
        }
        .into();
        assert_eq!(exit_code(&d), exit::DIVERGED);
        let b: anyhow::Error = Failure::Busy {
            dir: "r".into(),
            holder: "pid 1".into(),
        }
        .into();
        assert_eq!(exit_code(&b), exit::BUSY);
        let full = anyhow::Error::from(io::Error::from(io::ErrorKind::FileTooLarge));
        assert_eq!(exit_code(&full.context("cannot write metrics")), exit::IO);
        let missing = anyhow::Error::from(io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(exit_code(&missing), exit::BAD_INPUT);
        assert_eq!(
            exit_code(&anyhow::anyhow!("`dt` must be > 0")),
            exit::BAD_INPUT
        );
    }

    #[test]
    fn memory_check_refuses_absurd_sizes() {
        assert!(check_memory("small", 1e6).is_ok());
        let e = check_memory("N = 1e9", 4e18).unwrap_err().to_string();
        assert!(e.contains("N = 1e9") && e.contains("GiB"), "{e}");
        assert!(check_memory("overflow", f64::INFINITY).is_err());
    }
}
