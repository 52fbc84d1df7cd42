//! Progress bars (indicatif) for every command that can run for more than a few seconds.
//!
//! Bars are drawn on stderr only when it is a terminal (indicatif's stderr target hides itself
//! otherwise, so pipes, CI logs and tests see none) and never with `--quiet`. They show the
//! elapsed time, the rate and the ETA.

use indicatif::{ProgressBar, ProgressStyle};

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

/// A bar of `len` units named `what` (e.g. `"eval: sampling"`), hidden when `quiet`.
pub fn bar(len: u64, what: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(with_rate(ProgressStyle::with_template(TEMPLATE)));
    pb.set_prefix(what.to_string());
    pb
}

thread_local! {
    static CURRENT: std::cell::RefCell<Option<ProgressBar>> = const { std::cell::RefCell::new(None) };
}

/// A bar that the solver's step loops advance ([`tick`]) while it lives, on this thread: a
/// command that simulates or samples opens one with its total number of steps, and the
/// Euler–Maruyama loops (target, network, Langevin) move it one step at a time without knowing
/// who asked. Dropping the scope clears the bar.
pub struct Scope {
    pb: ProgressBar,
    previous: Option<ProgressBar>,
}

/// Opens a [`Scope`] of `len` steps named `what`, hidden when `quiet`; `len = 0` when the
/// total is not known up front (a counter with the elapsed time and rate, no ETA).
pub fn scope(len: u64, what: &str, quiet: bool) -> Scope {
    let pb = if len == 0 && !quiet {
        let pb = ProgressBar::new_spinner();
        pb.set_style(with_rate(ProgressStyle::with_template(
            "{spinner} {prefix} [{elapsed_precise}] {pos} steps {rate}",
        )));
        pb.set_prefix(what.to_string());
        pb
    } else {
        bar(len, what, quiet)
    };
    let previous = CURRENT.with(|c| c.borrow_mut().replace(pb.clone()));
    Scope { pb, previous }
}

impl Scope {
    /// The bar, e.g. to change its length once a command knows it.
    pub fn bar(&self) -> &ProgressBar {
        &self.pb
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        self.pb.finish_and_clear();
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// Advances this thread's open [`Scope`] by one step (nothing when none is open).
#[inline]
pub fn tick() {
    CURRENT.with(|c| {
        if let Some(pb) = c.borrow().as_ref() {
            pb.inc(1);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_ticks_reach_the_innermost() {
        let outer = scope(10, "outer", false);
        tick();
        {
            let inner = scope(5, "inner", false);
            tick();
            tick();
            assert_eq!(inner.bar().position(), 2);
        }
        tick();
        assert_eq!(outer.bar().position(), 2);
        drop(outer);
        tick(); // no scope: nothing to advance, no panic
    }
}
