//! Progress and cancellation, as parameters of every long operation.
//!
//! The library draws nothing and installs no signal handler. A caller hands an operation a
//! [`Progress`] observer (the command line's draws indicatif bars on stderr; a notebook front
//! can print or update a widget; [`Silent`] does nothing) and a [`Stop`] flag that the training
//! driver and the long loops poll (the command line sets it from Ctrl-C). Both travel together
//! in [`Control`].
//!
//! Loops deep inside the solver do not take an observer argument: an operation opens a
//! [`Scope`] with its observer and its length, and the Euler–Maruyama loops advance whichever
//! scope is open on their thread ([`tick`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Observer of a long operation: a task starts with a label and a length (0 when not known up
/// front), advances, may carry a short message (the training loss), and finishes. Tasks nest
/// (a training's final check inside the training): each `start` is matched by one `finish`.
/// Calls may come from several threads.
pub trait Progress: Send + Sync {
    /// A task named `label` of `len` units starts (`len` 0: not known up front).
    fn start(&self, label: &str, len: u64);
    /// The innermost task moved on by `n` units.
    fn advance(&self, n: u64);
    /// The innermost task is at unit `pos` (e.g. a resumed training starts at its step).
    fn set_position(&self, pos: u64) {
        let _ = pos;
    }
    /// A short status of the innermost task (e.g. `loss 1.2e-3`).
    fn message(&self, msg: &str) {
        let _ = msg;
    }
    /// The innermost task finished (or was abandoned).
    fn finish(&self);
}

/// The observer that reports nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// A request to stop, shared between whoever asks (a Ctrl-C handler, another thread, a
/// notebook's interrupt) and the running operation, which polls it: the training driver then
/// saves a checkpoint and returns [`crate::train::Outcome::Interrupted`].
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// A flag nobody has raised.
    pub fn new() -> Self {
        Self::default()
    }
    /// Asks the operation to stop; returns whether it had been asked already.
    pub fn request(&self) -> bool {
        self.0.swap(true, Ordering::SeqCst)
    }
    /// Whether a stop was requested.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    /// A closure that raises this flag, for a signal handler of the caller's:
    /// `ctrlc::set_handler(ctx.control.stop.handler())`.
    pub fn handler(&self) -> impl FnMut() + Send + 'static {
        let flag = self.clone();
        move || {
            flag.request();
        }
    }
}

/// What a long operation is handed besides its inputs: where it reports progress and the flag
/// it polls to stop early.
#[derive(Clone)]
pub struct Control {
    /// The progress observer.
    pub progress: Arc<dyn Progress>,
    /// The stop flag.
    pub stop: Stop,
}

impl Default for Control {
    /// Silent, never stopped.
    fn default() -> Self {
        Self::new(Arc::new(Silent))
    }
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("stop", &self.stop.requested())
            .finish_non_exhaustive()
    }
}

impl Control {
    /// Reports to `progress`, with a fresh stop flag.
    pub fn new(progress: Arc<dyn Progress>) -> Self {
        Self {
            progress,
            stop: Stop::new(),
        }
    }
    /// Whether a stop was requested.
    pub fn stopped(&self) -> bool {
        self.stop.requested()
    }
    /// Opens a [`Scope`] of `len` units named `label` on this observer.
    pub fn scope(&self, len: u64, label: &str) -> Scope {
        scope(&self.progress, len, label)
    }
}

thread_local! {
    static CURRENT: std::cell::RefCell<Vec<Arc<dyn Progress>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A task that the solver's step loops advance ([`tick`]) while it lives, on this thread: an
/// operation that simulates or samples opens one with its total number of steps, and the
/// Euler–Maruyama loops (target, network, Langevin) move it one step at a time without knowing
/// who asked. Dropping the scope finishes the task.
pub struct Scope {
    progress: Arc<dyn Progress>,
}

/// Opens a [`Scope`] of `len` steps named `label` on `progress`; `len = 0` when the total is
/// not known up front.
pub fn scope(progress: &Arc<dyn Progress>, len: u64, label: &str) -> Scope {
    progress.start(label, len);
    CURRENT.with(|c| c.borrow_mut().push(progress.clone()));
    Scope {
        progress: progress.clone(),
    }
}

impl Scope {
    /// The observer the scope reports to.
    pub fn progress(&self) -> &Arc<dyn Progress> {
        &self.progress
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        self.progress.finish();
        CURRENT.with(|c| {
            c.borrow_mut().pop();
        });
    }
}

/// Advances this thread's open [`Scope`] by one step (nothing when none is open).
#[inline]
pub fn tick() {
    CURRENT.with(|c| {
        if let Some(p) = c.borrow().last() {
            p.advance(1);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records what it is told, as lines.
    #[derive(Default)]
    struct Log(Mutex<Vec<String>>);

    impl Progress for Log {
        fn start(&self, label: &str, len: u64) {
            self.0.lock().unwrap().push(format!("start {label} {len}"));
        }
        fn advance(&self, n: u64) {
            self.0.lock().unwrap().push(format!("advance {n}"));
        }
        fn finish(&self) {
            self.0.lock().unwrap().push("finish".into());
        }
    }

    #[test]
    fn scopes_nest_and_ticks_reach_the_innermost() {
        let log = Arc::new(Log::default());
        let p: Arc<dyn Progress> = log.clone();
        let outer = scope(&p, 10, "outer");
        tick();
        {
            let _inner = scope(&p, 5, "inner");
            tick();
        }
        drop(outer);
        tick(); // no scope: nothing to advance, no panic
        let lines = log.0.lock().unwrap().clone();
        assert_eq!(
            lines,
            [
                "start outer 10",
                "advance 1",
                "start inner 5",
                "advance 1",
                "finish",
                "finish"
            ]
        );
    }

    #[test]
    fn a_stop_is_seen_by_every_clone() {
        let c = Control::default();
        let other = c.clone();
        assert!(!c.stopped());
        assert!(!other.stop.request());
        assert!(c.stopped());
        assert!(other.stop.request(), "second request reports the first");
    }
}
