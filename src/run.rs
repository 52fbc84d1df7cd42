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
        let v = self.config_value()?;
        let file = self.file("config.json");
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
