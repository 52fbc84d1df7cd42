//! Run directories: `checkpoints/<run>/` with `config.json`, checkpoints, `metrics.jsonl` and
//! outputs (images, plots, `.npy` tensors, evaluation JSON).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::checkpoint::{WriteError, atomic_write};
use crate::error::Failure;

/// Name of the lock file inside a run directory.
pub const LOCK_FILE: &str = "run.lock";

/// An exclusive advisory lock (`flock`) on `<run>/run.lock`, held for the life of the process's
/// use of the run directory. The kernel drops the lock when its holder dies, so a lock left by a
/// killed process is simply taken over; the file's text (pid, command, start time) names the
/// holder in the refusal message.
#[derive(Debug)]
struct RunLock {
    file: File,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Empty file = released cleanly; the kernel releases the flock itself on close.
        let _ = self.file.set_len(0);
    }
}

/// Locks held by this process, so that opening the same run twice in one process shares them.
static HELD: Mutex<Option<HashMap<PathBuf, Weak<RunLock>>>> = Mutex::new(None);

fn describe_self() -> String {
    let cmd: Vec<String> = std::env::args().collect();
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!(
        "pid {} started at unix time {t}: {}",
        std::process::id(),
        cmd.join(" ")
    )
}

/// Takes the lock of the run directory `dir` (which must exist).
fn lock_dir(dir: &Path) -> Result<Arc<RunLock>> {
    let key = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
    let map = held.get_or_insert_with(HashMap::new);
    if let Some(l) = map.get(&key).and_then(Weak::upgrade) {
        return Ok(l);
    }
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|source| WriteError {
            path: path.clone(),
            source,
        })?;
    let mut previous = String::new();
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let _ = file.read_to_string(&mut previous);
            let holder = previous.trim();
            bail!(Failure::Busy {
                dir: dir.to_path_buf(),
                holder: if holder.is_empty() {
                    "a process that has not yet written its name".into()
                } else {
                    holder.to_string()
                },
            });
        }
        Err(fs::TryLockError::Error(e)) => {
            return Err(anyhow::Error::from(e).context(format!(
                "cannot lock {} (filesystem without locks?)",
                path.display()
            )));
        }
    }
    let _ = file.read_to_string(&mut previous);
    if !previous.trim().is_empty() {
        log::info!(
            "note: {} was left locked by a process that is no longer running ({}); taking it over",
            dir.display(),
            previous.trim()
        );
    }
    let me = describe_self();
    let write = (|| -> std::io::Result<()> {
        file.set_len(0)?;
        file.rewind()?;
        file.write_all(me.as_bytes())?;
        file.sync_all()
    })();
    write.map_err(|source| WriteError {
        path: path.clone(),
        source,
    })?;
    let lock = Arc::new(RunLock { file });
    map.retain(|_, w| w.strong_count() > 0);
    map.insert(key, Arc::downgrade(&lock));
    Ok(lock)
}

/// Written beside the checkpoints when training diverges: the step, the quantity and the last
/// good checkpoint.
pub const DIVERGED_FILE: &str = "diverged.json";

/// The model configuration in `dir/config.json`, keys missing from the file (a run written by
/// an older version) taken from `defaults`; read without taking the run's lock.
pub fn read_config<C: Serialize + DeserializeOwned>(dir: &Path, defaults: &C) -> Result<C> {
    let file = dir.join("config.json");
    let text =
        fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", file.display()))?;
    let c = v
        .get("config")
        .and_then(|c| c.as_object())
        .with_context(|| format!("{} has no `config` object", file.display()))?;
    let mut base = serde_json::to_value(defaults)?;
    if let Some(b) = base.as_object_mut() {
        for (k, val) in c {
            b.insert(k.clone(), val.clone());
        }
    }
    serde_json::from_value(base)
        .with_context(|| format!("{}: `config` does not match this model", file.display()))
}

/// Checks that `path` is a run directory (a folder holding `config.json`), without opening it.
pub fn check_run_dir(path: &Path) -> Result<()> {
    if !path.is_dir() {
        bail!(
            "run directory {} does not exist (create one with `attractor ddm|nlm|fep train \
             --run-dir {}`)",
            path.display(),
            path.display()
        );
    }
    if !path.join("config.json").is_file() {
        bail!(
            "{} is not a run directory (no config.json; give the --run-dir of a training run)",
            path.display()
        );
    }
    Ok(())
}

/// Default root for run directories.
pub const DEFAULT_ROOT: &str = "checkpoints";

/// Header stored in `config.json` beside the model's own configuration.
#[derive(Serialize, serde::Deserialize, Clone, Debug)]
pub struct RunMeta {
    /// Model family: `ddm`, `nlm` or `fep`.
    pub model: String,
    /// Version of `attractor` that created the run.
    pub version: String,
    /// Seed of every random stream of the run.
    pub seed: u64,
}

/// A run directory on disk, locked against other processes while this value (or a clone) lives.
#[derive(Clone, Debug)]
pub struct RunDir {
    path: PathBuf,
    _lock: Arc<RunLock>,
}

impl RunDir {
    /// Creates a new run directory. Refuses to reuse a directory that already holds a run
    /// (that would mix two runs' checkpoints) unless `overwrite` is set, in which case the
    /// old checkpoints and metrics are removed.
    pub fn create(path: &Path, overwrite: bool) -> Result<Self> {
        if path.join("config.json").exists() && !overwrite {
            bail!(
                "{} already holds a run (config.json exists): use `attractor resume --run-dir {}` \
                 to continue it, pick another --run-dir, or pass --overwrite",
                path.display(),
                path.display()
            );
        }
        fs::create_dir_all(path).map_err(|source| WriteError {
            path: path.to_path_buf(),
            source,
        })?;
        // Lock before touching anything: an --overwrite must not pull a live run's files away.
        let lock = lock_dir(path)?;
        if path.join("config.json").exists() {
            for (_, p) in crate::checkpoint::list(path)? {
                fs::remove_file(&p).with_context(|| format!("cannot remove {}", p.display()))?;
            }
            for name in ["metrics.jsonl", DIVERGED_FILE] {
                let m = path.join(name);
                if m.exists() {
                    fs::remove_file(&m)
                        .with_context(|| format!("cannot remove {}", m.display()))?;
                }
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// Opens an existing run directory (it must hold `config.json`) and locks it.
    pub fn open(path: &Path) -> Result<Self> {
        check_run_dir(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            _lock: lock_dir(path)?,
        })
    }

    /// Directory path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A file inside the run directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `config.json` = `{"meta": …, "config": …}` atomically.
    pub fn write_config<C: Serialize>(&self, meta: &RunMeta, config: &C) -> Result<()> {
        let v = serde_json::json!({ "meta": meta, "config": config });
        let s = serde_json::to_string_pretty(&v)?;
        atomic_write(&self.file("config.json"), s.as_bytes())
    }

    /// Reads the header of `config.json`.
    pub fn meta(&self) -> Result<RunMeta> {
        let v = self.config_value()?;
        serde_json::from_value(v.get("meta").cloned().unwrap_or_default()).with_context(|| {
            format!(
                "{}: bad or missing `meta`",
                self.file("config.json").display()
            )
        })
    }

    /// The whole `config.json` as JSON.
    pub fn config_value(&self) -> Result<serde_json::Value> {
        let p = self.file("config.json");
        let s = fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
        serde_json::from_str(&s).with_context(|| format!("{} is not valid JSON", p.display()))
    }

    /// The model configuration of the run, keys missing from the file (a run written by an
    /// older version) taken from `defaults`.
    pub fn config_or<C: Serialize + DeserializeOwned>(&self, defaults: &C) -> Result<C> {
        read_config(&self.path, defaults)
    }

    /// Appends one JSON line to `metrics.jsonl`.
    pub fn append_metrics(&self, line: &serde_json::Value) -> Result<()> {
        let p = self.file("metrics.jsonl");
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .with_context(|| format!("cannot open {}", p.display()))?;
        let before = f.metadata().map(|m| m.len()).ok();
        let text = format!("{line}\n");
        if let Err(source) = f.write_all(text.as_bytes()) {
            // Never leave a partial line behind: cut the file back to what it was.
            if let Some(len) = before {
                let _ = f.set_len(len);
            }
            return Err(WriteError { path: p, source }.into());
        }
        Ok(())
    }

    /// Drops metric lines logged after `step` (a resumed run repeats those steps), and any
    /// partial last line left by a crash.
    pub fn truncate_metrics(&self, step: u64) -> Result<()> {
        let p = self.file("metrics.jsonl");
        if !p.exists() {
            return Ok(());
        }
        let f = fs::File::open(&p).with_context(|| format!("cannot open {}", p.display()))?;
        let mut kept = String::new();
        for line in BufReader::new(f).lines() {
            let line = line.with_context(|| format!("cannot read {}", p.display()))?;
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if v.get("step")
                .and_then(|s| s.as_u64())
                .is_some_and(|s| s <= step)
            {
                kept.push_str(&line);
                kept.push('\n');
            }
        }
        atomic_write(&p, kept.as_bytes())
    }

    /// Writes a JSON document (pretty) atomically into the run directory.
    pub fn write_json<T: Serialize>(&self, name: &str, v: &T) -> Result<PathBuf> {
        let p = self.file(name);
        atomic_write(&p, serde_json::to_string_pretty(v)?.as_bytes())?;
        Ok(p)
    }
}

/// Creates the run directory of a new training run (an explicit path, or
/// `checkpoints/<stem>-<timestamp>`) and writes its `config.json`.
pub fn start_run<C: Serialize>(
    path: Option<&Path>,
    stem: &str,
    model: &str,
    seed: u64,
    overwrite: bool,
    config: &C,
) -> Result<RunDir> {
    let path = path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| default_run_path(stem));
    let rd = RunDir::create(&path, overwrite)?;
    let meta = RunMeta {
        model: model.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        seed,
    };
    rd.write_config(&meta, config)?;
    Ok(rd)
}

/// Resolves `--run-dir`: an explicit path, or `checkpoints/<model>-<timestamp>`.
pub fn default_run_path(model: &str) -> PathBuf {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Path::new(DEFAULT_ROOT).join(format!("{model}-{t}"))
}

// ---------------------------------------------------------------------------------------------
// A folder of runs at a glance (`attractor runs`)
// ---------------------------------------------------------------------------------------------

/// Where a run stands.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// A process holds the run's lock (training, resuming or analysing it).
    Running,
    /// Its newest checkpoint is at the configured total.
    Finished,
    /// Stopped short of the total (Ctrl-C, a kill, `resume --until`, a full disk): `attractor
    /// resume` continues it.
    Interrupted,
    /// Stopped on a non-finite value (`diverged.json`).
    Diverged,
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Running => "running",
            Self::Finished => "finished",
            Self::Interrupted => "interrupted",
            Self::Diverged => "diverged",
        })
    }
}

/// One run directory as `attractor runs` lists it.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct RunSummary {
    /// The run directory.
    pub path: PathBuf,
    /// Model family (`ddm`, `nlm`, `fep`).
    pub family: String,
    /// Where it stands.
    pub state: RunState,
    /// Steps done: the newest checkpoint's step or metrics line's step, whichever is later.
    pub step: u64,
    /// Step of the newest checkpoint (where `resume` continues from).
    pub checkpoint_step: Option<u64>,
    /// The configured total (`iters`, `updates` or `epochs`).
    pub total_steps: Option<u64>,
    /// The last logged `loss`.
    pub loss: Option<f64>,
    /// Every quantity of the last metrics line.
    pub last_metrics: serde_json::Map<String, serde_json::Value>,
    /// Newest modification time of a file in the directory (Unix seconds).
    pub modified_unix: u64,
    /// Seconds since then.
    pub age_s: u64,
}

/// Whether a process holds the lock of run directory `dir`, found without taking it: a lock
/// released cleanly leaves an empty lock file, so only a non-empty one (held, or left by a
/// process that was killed) is probed, with a shared lock released at once.
pub fn lock_held(dir: &Path) -> bool {
    let Ok(mut f) = File::open(dir.join(LOCK_FILE)) else {
        return false;
    };
    let mut text = String::new();
    if f.read_to_string(&mut text).is_err() || text.trim().is_empty() {
        return false;
    }
    matches!(f.try_lock_shared(), Err(fs::TryLockError::WouldBlock))
}

/// The configuration key holding a family's total number of steps.
fn total_key(family: &str) -> Option<&'static str> {
    match family {
        "ddm" => Some("iters"),
        "nlm" => Some("updates"),
        "fep" => Some("epochs"),
        _ => None,
    }
}

/// The summary of the run directory `dir` (which holds a `config.json` with a `meta.model`).
pub fn summarize(dir: &Path) -> Result<RunSummary> {
    let cfg_path = dir.join("config.json");
    let text = fs::read_to_string(&cfg_path)
        .with_context(|| format!("cannot read {}", cfg_path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", cfg_path.display()))?;
    let family = v["meta"]["model"]
        .as_str()
        .with_context(|| format!("{} has no meta.model", cfg_path.display()))?
        .to_string();
    let total_steps = total_key(&family).and_then(|k| v["config"][k].as_u64());
    let checkpoint_step = crate::checkpoint::list(dir)?.first().map(|c| c.0);
    let metrics = dir.join("metrics.jsonl");
    let last_metrics = match fs::read_to_string(&metrics) {
        Ok(t) => t
            .lines()
            .rev()
            .find_map(|l| match serde_json::from_str(l) {
                Ok(serde_json::Value::Object(m)) => Some(m),
                _ => None,
            })
            .unwrap_or_default(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Default::default(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", metrics.display())),
    };
    let step = checkpoint_step.unwrap_or(0).max(
        last_metrics
            .get("step")
            .and_then(|s| s.as_u64())
            .unwrap_or(0),
    );
    let finished = matches!((checkpoint_step, total_steps), (Some(c), Some(t)) if c >= t);
    let state = if lock_held(dir) {
        RunState::Running
    } else if finished {
        RunState::Finished
    } else if dir.join(DIVERGED_FILE).exists() {
        RunState::Diverged
    } else {
        RunState::Interrupted
    };
    let modified = fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .flatten()
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(RunSummary {
        path: dir.to_path_buf(),
        family,
        state,
        step,
        checkpoint_step,
        total_steps,
        loss: last_metrics.get("loss").and_then(|l| l.as_f64()),
        last_metrics,
        modified_unix: modified,
        age_s: now.saturating_sub(modified),
    })
}

/// How deep below the listed folder [`list_runs`] looks for run directories.
pub const LIST_DEPTH: usize = 4;

/// Every run directory (a folder whose `config.json` names a model family) in `root` or below
/// it (at most [`LIST_DEPTH`] levels; not inside runs), sorted by path. `root` may itself be a
/// run directory.
pub fn list_runs(root: &Path) -> Result<Vec<RunSummary>> {
    if !root.is_dir() {
        bail!("{} is not a folder", root.display());
    }
    fn is_run(dir: &Path) -> bool {
        fs::read_to_string(dir.join("config.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .is_some_and(|v| v["meta"]["model"].is_string())
    }
    fn walk(dir: &Path, depth: usize, out: &mut Vec<RunSummary>) -> Result<()> {
        if is_run(dir) {
            out.push(summarize(dir)?);
            return Ok(());
        }
        if depth == 0 {
            return Ok(());
        }
        let mut subs: Vec<PathBuf> = fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        subs.sort();
        for s in subs {
            walk(&s, depth - 1, out)?;
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, LIST_DEPTH, &mut out)?;
    Ok(out)
}

/// `seconds` as a short age: `42s`, `7m`, `3h`, `12d`.
pub fn human_age(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}
