//! Diagnostics through the `log` facade, printed by `env_logger` on stderr.
//!
//! Without `RUST_LOG` the filter is `warn,attractor=info`: the project's own messages as plain
//! lines (`run directory: …`, `warning: …`), and warnings of the crates below it (Burn, wgpu,
//! cubecl), which were dropped before there was a logger. `RUST_LOG=debug` (or any
//! `env_logger` filter, e.g. `RUST_LOG=attractor=debug,wgpu_core=info`) shows more. `--quiet`
//! makes the filter `warn` (the library's messages are info records; it hides chatter, never
//! warnings); the few lines said even then are printed by the command line itself; results go
//! to stdout and are not log records.

use std::io::Write;

use log::Level;

/// The filter used when `RUST_LOG` is unset or empty.
pub const DEFAULT_FILTER: &str = "warn,attractor=info";

/// The log target of the lines the command line says even with `--quiet`.
pub const SAY: &str = "attractor::say";

/// The filter used with `--quiet` when `RUST_LOG` is unset or empty: warnings, and the lines
/// said even then.
pub const QUIET_FILTER: &str = "warn,attractor::say=info";

/// Installs the logger (once; later calls do nothing).
pub fn init(quiet: bool) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| (if quiet { QUIET_FILTER } else { DEFAULT_FILTER }).to_string());
    let _ = env_logger::Builder::new()
        .parse_filters(&filter)
        .format(|buf, record| {
            let ours = record.target().starts_with("attractor");
            match (record.level(), ours) {
                (Level::Info, true) => writeln!(buf, "{}", record.args()),
                (Level::Warn, true) => writeln!(buf, "warning: {}", record.args()),
                (Level::Error, true) => writeln!(buf, "error: {}", record.args()),
                (level, _) => writeln!(buf, "[{level} {}] {}", record.target(), record.args()),
            }
        })
        .target(env_logger::Target::Stderr)
        .try_init();
}
