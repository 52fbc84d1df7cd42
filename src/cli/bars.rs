//! The command line's progress observer: indicatif bars on stderr.
//!
//! Bars are drawn only when stderr is a terminal (indicatif's stderr target hides itself
//! otherwise, so pipes, CI logs and tests see none) and never with `--quiet`. They show the
//! elapsed time, the rate and the ETA; a task of unknown length is a counter.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};

use crate::progress::Progress;

const TEMPLATE: &str =
    "{spinner} {prefix} [{elapsed_precise}<{eta_precise}] {wide_bar} {pos}/{len} {rate} {msg}";

/// The style with a `{rate}` key: units per second, rounded for reading.
fn with_rate(style: Result<ProgressStyle, indicatif::style::TemplateError>) -> ProgressStyle {
    style
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "rate",
            |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let r = s.per_sec();
                let _ = if r >= 100.0 {
                    write!(w, "{r:.0}/s")
                } else {
                    write!(w, "{r:.2}/s")
                };
            },
        )
}

/// A bar of `len` units named `what` (a counter when `len` is 0), hidden when `quiet`.
fn bar(len: u64, what: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = if len == 0 {
        let pb = ProgressBar::new_spinner();
        pb.set_style(with_rate(ProgressStyle::with_template(
            "{spinner} {prefix} [{elapsed_precise}] {pos} steps {rate}",
        )));
        pb
    } else {
        let pb = ProgressBar::new(len);
        pb.set_style(with_rate(ProgressStyle::with_template(TEMPLATE)));
        pb
    };
    pb.set_prefix(what.to_string());
    pb
}

/// Indicatif bars, one per open task (the innermost drawn last), none with `--quiet`.
#[derive(Debug, Default)]
pub struct Bars {
    quiet: bool,
    open: Mutex<Vec<ProgressBar>>,
}

impl Bars {
    /// Bars, or none at all when `quiet`.
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            open: Mutex::new(Vec::new()),
        }
    }
    fn with_top(&self, f: impl FnOnce(&ProgressBar)) {
        if let Ok(open) = self.open.lock()
            && let Some(pb) = open.last()
        {
            f(pb);
        }
    }
}

impl Progress for Bars {
    fn start(&self, label: &str, len: u64) {
        let pb = bar(len, label, self.quiet);
        if let Ok(mut open) = self.open.lock() {
            open.push(pb);
        }
    }
    fn advance(&self, n: u64) {
        self.with_top(|pb| pb.inc(n));
    }
    fn set_position(&self, pos: u64) {
        self.with_top(|pb| {
            pb.set_position(pos);
            pb.reset_eta();
        });
    }
    fn message(&self, msg: &str) {
        let msg = msg.to_string();
        self.with_top(|pb| pb.set_message(msg));
    }
    fn finish(&self) {
        // Cleared rather than left drawn: the command's closing line takes its place.
        if let Ok(mut open) = self.open.lock()
            && let Some(pb) = open.pop()
        {
            pb.finish_and_clear();
        }
    }
}
