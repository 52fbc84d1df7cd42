//! The library's errors as the package's exceptions (`attractor/_errors.py`): one function
//! decides the kind.

use pyo3::prelude::*;

/// What went wrong, as the package's exception classes name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A bad configuration value, option or input file (`ConfigError`, a `ValueError`).
    Config,
    /// A missing run, checkpoint, data folder or file (`NotFoundError`, a
    /// `FileNotFoundError`).
    NotFound,
    /// Training diverged (`DivergedError`).
    Diverged,
    /// Another process holds the run directory (`BusyError`).
    Busy,
    /// A write failed: disk full, read-only location (`WriteError`, an `OSError`).
    Write,
}

impl Kind {
    fn class(self) -> &'static str {
        match self {
            Self::Config => "ConfigError",
            Self::NotFound => "NotFoundError",
            Self::Diverged => "DivergedError",
            Self::Busy => "BusyError",
            Self::Write => "WriteError",
        }
    }
}

/// The kind of `e`: the library's own classification first (the exit code it gives the
/// command line: typed failures and write-side I/O errors in the chain), then a missing file
/// (an I/O `NotFound` in the chain, else the library's words for one).
pub fn classify(e: &anyhow::Error) -> Kind {
    use attractor::error::{exit, exit_code};
    match exit_code(e) {
        exit::DIVERGED => return Kind::Diverged,
        exit::BUSY => return Kind::Busy,
        exit::IO => return Kind::Write,
        _ => {}
    }
    let io_missing = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
    });
    // The library reports most missing inputs with `bail!` after checking for them; these
    // are its phrasings (run directory, data source, checkpoint, image folder).
    const MISSING: [&str; 5] = [
        "does not exist",
        "cannot be found",
        "is not a run directory",
        "has no checkpoint",
        "No such file",
    ];
    let text = format!("{e:#}");
    if io_missing || MISSING.iter().any(|m| text.contains(m)) {
        Kind::NotFound
    } else {
        Kind::Config
    }
}

fn raise(py: Python<'_>, class: &str, msg: String) -> PyErr {
    let made = py
        .import("attractor._errors")
        .and_then(|m| m.getattr(class))
        .and_then(|c| c.call1((msg.clone(),)));
    match made {
        Ok(v) => PyErr::from_value(v),
        // The package's module is always there; if not, the message still reaches the user.
        Err(_) => pyo3::exceptions::PyRuntimeError::new_err(msg),
    }
}

/// `e` as the package's exception, its message the library's whole chain (`{:#}`).
pub fn to_py(py: Python<'_>, e: anyhow::Error) -> PyErr {
    raise(py, classify(&e).class(), format!("{e:#}"))
}

/// An `attractor.Error` for a bug (a panic in the library).
pub fn internal(py: Python<'_>, msg: &str) -> PyErr {
    raise(py, "Error", msg.to_owned())
}

/// A `ConfigError` for a bad argument found here.
pub fn config(py: Python<'_>, msg: String) -> PyErr {
    raise(py, "ConfigError", msg)
}
