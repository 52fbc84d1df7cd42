//! Long operations from Python: the library call runs on a worker thread while the calling
//! thread waits with the GIL released, waking every 100 ms to look for Ctrl-C
//! (`KeyboardInterrupt` → the stop flag: training saves a checkpoint and returns; the
//! exception is raised once it has) and to show progress.
//!
//! Progress: the worker's observer ([`Shared`]) only records where each task stands, under a
//! lock (no channel message per step: the solver's loops advance it every Euler–Maruyama step);
//! the waiting thread hands a snapshot to a Python callback when it changed.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use attractor::progress::{Control, Progress};
use pyo3::exceptions::PyKeyboardInterrupt;
use pyo3::prelude::*;

use crate::errors;

/// One task of the observer's stack.
#[derive(Clone, Debug, Default)]
struct Task {
    id: u64,
    label: String,
    len: u64,
    pos: u64,
    msg: String,
}

#[derive(Default)]
struct State {
    tasks: Vec<Task>,
    /// Tasks finished since the last snapshot, as they ended (their bars are completed).
    done: Vec<Task>,
    next_id: u64,
    changes: u64,
}

/// The observer handed to the library: where each open task stands.
#[derive(Default)]
struct Shared(Mutex<State>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn innermost(&self, f: impl FnOnce(&mut Task)) {
        let mut s = self.lock();
        if let Some(t) = s.tasks.last_mut() {
            f(t);
        }
        s.changes += 1;
    }
}

impl Progress for Shared {
    fn start(&self, label: &str, len: u64) {
        let mut s = self.lock();
        s.next_id += 1;
        let id = s.next_id;
        s.tasks.push(Task {
            id,
            label: label.to_owned(),
            len,
            ..Task::default()
        });
        s.changes += 1;
    }
    fn advance(&self, n: u64) {
        self.innermost(|t| t.pos += n);
    }
    fn set_position(&self, pos: u64) {
        self.innermost(|t| t.pos = pos);
    }
    fn message(&self, msg: &str) {
        self.innermost(|t| msg.clone_into(&mut t.msg));
    }
    fn finish(&self) {
        let mut s = self.lock();
        if let Some(t) = s.tasks.pop() {
            s.done.push(t);
        }
        s.changes += 1;
    }
}

/// `(id, label, len, pos, message, finished)` per task.
type Snapshot = Vec<(u64, String, u64, u64, String, bool)>;

/// Hands the tasks' state to `cb` when it changed since `seen`: the tasks finished since the
/// last call (`finished` true, at their last position), then the open ones, outermost first. A `KeyboardInterrupt` raised while Python code ran
/// is returned; any other error of the callback turns progress off.
fn show(
    py: Python<'_>,
    shared: &Shared,
    cb: &mut Option<Py<PyAny>>,
    seen: &mut u64,
) -> Option<PyErr> {
    let f = cb.as_ref()?;
    let snap: Snapshot = {
        let mut s = shared.lock();
        if s.changes == *seen {
            return None;
        }
        *seen = s.changes;
        let done = std::mem::take(&mut s.done);
        let row =
            |t: &Task, finished| (t.id, t.label.clone(), t.len, t.pos, t.msg.clone(), finished);
        done.iter()
            .map(|t| row(t, true))
            .chain(s.tasks.iter().map(|t| row(t, false)))
            .collect()
    };
    match f.call1(py, (snap,)) {
        Ok(_) => None,
        Err(e) if e.is_instance_of::<PyKeyboardInterrupt>(py) => Some(e),
        Err(_) => {
            *cb = None;
            None
        }
    }
}

/// Runs `op` on a worker thread with a fresh [`Control`] (reporting to `progress`, a Python
/// callable, when given), the GIL released while it works. Ctrl-C requests a stop, waits for
/// the operation to return (training saves its checkpoint) and raises `KeyboardInterrupt`.
/// The library's errors become the package's exceptions ([`errors::to_py`]).
pub fn run<T, F>(py: Python<'_>, progress: Option<Py<PyAny>>, op: F) -> PyResult<T>
where
    T: Send + 'static,
    F: FnOnce(Control) -> anyhow::Result<T> + Send + 'static,
{
    let shared = Arc::new(Shared::default());
    let control = match progress {
        Some(_) => Control::new(shared.clone()),
        None => Control::default(),
    };
    let stop = control.stop.clone();
    let (tx, rx) = mpsc::channel();
    // Waited on with the GIL released: shared with that closure (a receiver alone is not Sync).
    let rx = Mutex::new(rx);
    let worker = std::thread::Builder::new()
        .name("attractor".into())
        .spawn(move || {
            let r = std::panic::catch_unwind(AssertUnwindSafe(|| op(control)));
            // The receiver only goes away if the waiting thread itself failed.
            let _ = tx.send(r);
        })
        .map_err(|e| errors::to_py(py, anyhow::Error::from(e).context("cannot start a thread")))?;
    let mut cb = progress;
    let mut seen = 0;
    let mut interrupt: Option<PyErr> = None;
    let outcome = loop {
        match py.detach(|| {
            rx.lock()
                .unwrap_or_else(|e| e.into_inner())
                .recv_timeout(Duration::from_millis(100))
        }) {
            Ok(r) => break Some(r),
            Err(RecvTimeoutError::Disconnected) => break None,
            Err(RecvTimeoutError::Timeout) => {}
        }
        if interrupt.is_none() {
            if let Err(e) = py.check_signals() {
                stop.request();
                interrupt = Some(e);
            } else if let Some(e) = show(py, &shared, &mut cb, &mut seen) {
                stop.request();
                interrupt = Some(e);
            }
        }
    };
    // The worker has sent its result (or died): joining does not block for long.
    let joined = worker.join();
    if let Some(f) = &cb {
        // The last state, then an empty stack: the callback closes its bars.
        let _ = show(py, &shared, &mut Some(f.clone_ref(py)), &mut seen);
        let _ = f.call1(py, (Snapshot::new(),));
    }
    if let Some(e) = interrupt {
        return Err(e);
    }
    match outcome {
        Some(Ok(Ok(t))) => Ok(t),
        Some(Ok(Err(e))) => Err(errors::to_py(py, e)),
        Some(Err(panic)) => Err(errors::internal(py, &panic_text(&*panic))),
        None => Err(errors::internal(
            py,
            &match joined {
                Err(p) => panic_text(&*p),
                Ok(()) => "the worker thread ended without a result".into(),
            },
        )),
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    let what = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into());
    format!("internal error (a bug: please report it): {what}")
}
