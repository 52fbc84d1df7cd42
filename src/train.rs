//! The one training driver shared by every model family.
//!
//! A model provides a [`Trainable`]: one training step, and conversion of its whole state to and
//! from a [`Checkpoint`]. The driver owns the loop: progress bar with ETA and loss,
//! `metrics.jsonl`, periodic atomic checkpoints, Ctrl-C (save, then stop), and NaN detection
//! (stop without touching the last good checkpoint).

use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::error::Failure;
use crate::run::DIVERGED_FILE;

use crate::checkpoint::{self, Checkpoint};
use crate::progress::Control;
use crate::run::RunDir;

/// What one training step reports: named scalars, one of them `loss` (the training loss or the
/// model's monitor quantity). On a GPU a step leaves its scalars on the device ([`Self::device`])
/// and the driver reads the scalars of many steps back in one copy at log, checkpoint or
/// interrupt time, so a step never waits for the device; scalars known on the host (a
/// learning rate) ride along in [`Self::host`].
#[derive(Clone, Debug, Default)]
pub struct StepOutput {
    /// Scalars still on the device, `[k]`, named by `device_names`.
    pub device: Option<burn::tensor::Tensor<1>>,
    /// Names of the device scalars, in order.
    pub device_names: Vec<String>,
    /// Scalars already on the host.
    pub host: Vec<(String, f64)>,
}

impl StepOutput {
    /// Host scalars: the loss and further metrics.
    pub fn host(loss: f64, metrics: Vec<(String, f64)>) -> Self {
        let mut host = vec![("loss".to_string(), loss)];
        host.extend(metrics);
        Self {
            host,
            ..Self::default()
        }
    }

    /// Device scalars `values` (`[names.len()]`) named by `names` (one of them `loss`).
    pub fn device(values: burn::tensor::Tensor<1>, names: &[&str]) -> Self {
        Self {
            device: Some(values),
            device_names: names.iter().map(|n| n.to_string()).collect(),
            host: Vec::new(),
        }
    }

    /// Every scalar by name (reads the device scalars back: one copy).
    pub fn read(&self) -> Result<Vec<(String, f64)>> {
        let mut out = Vec::new();
        if let Some(t) = &self.device {
            let v = crate::transfer::download(t)?;
            out.extend(
                self.device_names
                    .iter()
                    .cloned()
                    .zip(v.iter().map(|&x| x as f64)),
            );
        }
        out.extend(self.host.iter().cloned());
        Ok(out)
    }

    /// The loss (reads it back when it is on the device).
    pub fn loss(&self) -> Result<f64> {
        self.read()?
            .into_iter()
            .find(|(k, _)| k == "loss")
            .map(|(_, v)| v)
            .context("the step reported no `loss`")
    }
}

/// Named scalars of one step.
type Scalars = Vec<(String, f64)>;

/// Reads the scalars of `pending` steps back in one copy (their device scalars concatenated).
fn read_all(pending: &mut Vec<(u64, StepOutput)>) -> Result<Vec<(u64, Scalars)>> {
    let device: Vec<burn::tensor::Tensor<1>> = pending
        .iter()
        .filter_map(|(_, o)| o.device.clone())
        .collect();
    let flat = if device.is_empty() {
        Vec::new()
    } else {
        crate::transfer::download(&burn::tensor::Tensor::cat(device, 0))?
    };
    let mut at = 0;
    let mut out = Vec::with_capacity(pending.len());
    for (step, o) in pending.drain(..) {
        let mut vals = Vec::new();
        if o.device.is_some() {
            let k = o.device_names.len();
            let v = flat
                .get(at..at + k)
                .context("device scalars of a step do not match their names")?;
            vals.extend(o.device_names.into_iter().zip(v.iter().map(|&x| x as f64)));
            at += k;
        }
        vals.extend(o.host);
        out.push((step, vals));
    }
    Ok(out)
}

/// A model that the driver can train.
pub trait Trainable {
    /// Model family name stored in checkpoints (`ddm`, `nlm`, `fep`).
    fn kind(&self) -> &'static str;
    /// Performs training step `step` (0-based).
    fn step(&mut self, step: u64) -> Result<StepOutput>;
    /// The whole training state after `step` completed steps.
    fn checkpoint(&self, step: u64) -> Result<Checkpoint>;
    /// Restores a state produced by [`Trainable::checkpoint`].
    fn restore(&mut self, ck: &Checkpoint) -> Result<()>;
    /// What a milestone snapshot keeps (default: the whole checkpoint); models override this
    /// to keep only their parameters.
    fn snapshot(&self, step: u64) -> Result<Checkpoint> {
        self.checkpoint(step)
    }
    /// Writes the network as a Burn module (`model.bpk` + `model.json`, see
    /// [`crate::models::export`]) into `dir`; called after every checkpoint.
    fn export(&self, dir: &std::path::Path) -> Result<()>;
    /// A cheap picture of the current state, shown in TensorBoard at each checkpoint beside
    /// the training curves (default: none). It must not draw random numbers or change the
    /// state.
    fn picture(&self) -> Result<Option<Picture>> {
        Ok(None)
    }
}

/// A picture of a model's state (see [`Trainable::picture`]), drawn by the driver.
#[derive(Clone, Debug)]
pub enum Picture {
    /// Greyscale images (`width`×`height`, row-major), `lo`..`hi` black to white, tiled.
    Grid {
        /// TensorBoard tag.
        tag: String,
        /// The images.
        images: Vec<Vec<f32>>,
        /// Width of one image.
        width: usize,
        /// Height of one image.
        height: usize,
        /// Value drawn black.
        lo: f32,
        /// Value drawn white.
        hi: f32,
    },
    /// A matrix (`rows`×`cols`, row-major) as a heat map, row 0 at the top.
    Matrix {
        /// TensorBoard tag.
        tag: String,
        /// Title over the heat map.
        title: String,
        /// The entries.
        values: Vec<f64>,
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
    },
}

impl Picture {
    /// The tag and the picture as a PNG file.
    pub fn png(&self) -> Result<(String, Vec<u8>)> {
        match self {
            Self::Grid {
                tag,
                images,
                width,
                height,
                lo,
                hi,
            } => {
                let cols = (images.len() as f64).sqrt().ceil() as usize;
                let scale = (96 / (*width).max(*height).max(1)).clamp(1, 8) as u32;
                let img = crate::plot::image_grid(images, *width, *height, cols, *lo, *hi, scale);
                Ok((tag.clone(), crate::plot::png_bytes(&img)?))
            }
            Self::Matrix {
                tag,
                title,
                values,
                rows,
                cols,
            } => Ok((
                tag.clone(),
                crate::plot::matrix_figure(title, values, *rows, *cols).png_bytes()?,
            )),
        }
    }
}

/// Loop settings.
#[derive(Clone, Debug)]
pub struct DriverOptions {
    /// Total number of steps of the run.
    pub total_steps: u64,
    /// Stop after this many steps (for `resume --until`), default `total_steps`.
    pub until: Option<u64>,
    /// Checkpoint period in steps (0: only at the end).
    pub checkpoint_every: u64,
    /// Metrics period in steps.
    pub log_every: u64,
    /// Checkpoints kept on disk (at least 2).
    pub keep: usize,
    /// Steps after which a [`Trainable::snapshot`] is kept for good in `<run>/<milestone_dir>/`
    /// (the NLM's t_age schedule); never pruned.
    pub milestones: Vec<u64>,
    /// Folder of the milestone snapshots inside the run directory.
    pub milestone_dir: &'static str,
    /// Also write TensorBoard event files in `<run>/tb/` (see [`crate::tensorboard`]).
    pub tensorboard: bool,
}

impl DriverOptions {
    /// The same settings, stopping at `until` (default: the total).
    pub fn until(mut self, until: Option<u64>) -> Self {
        self.until = until;
        self
    }
}

/// How a training run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// All requested steps done.
    Finished(u64),
    /// Stopped on request (the [`Control`]'s stop flag: Ctrl-C on the command line) after
    /// saving a checkpoint at this step.
    Interrupted(u64),
}

/// Restores the newest checkpoint of `run` into `task`, returning its step (0 when none) and
/// dropping metric lines logged after it.
pub fn restore_latest(task: &mut dyn Trainable, run: &RunDir) -> Result<u64> {
    match checkpoint::load_latest(run.path())? {
        Some(ck) => {
            if ck.kind != task.kind() {
                bail!(
                    "checkpoint in {} is a `{}` checkpoint, not `{}`",
                    run.path().display(),
                    ck.kind,
                    task.kind()
                );
            }
            task.restore(&ck)?;
            run.truncate_metrics(ck.step)?;
            Ok(ck.step)
        }
        None => {
            run.truncate_metrics(0)?;
            Ok(0)
        }
    }
}

/// The newest complete checkpoint of `run`, as `path (step S)`, or `none`.
fn last_good(run: &RunDir) -> String {
    checkpoint::list(run.path())
        .ok()
        .and_then(|l| l.into_iter().next())
        .map(|(s, p)| format!("{} (step {s})", p.display()))
        .unwrap_or_else(|| "none".into())
}

/// Context of a failed checkpoint write: what was lost and what is intact.
fn not_saved(run: &RunDir, step: u64) -> String {
    format!(
        "training stopped: the checkpoint of step {step} could not be saved; the last good \
         checkpoint, {}, is intact (resume from it once there is room)",
        last_good(run)
    )
}

/// Records a divergence in `<run>/diverged.json` (step, quantity, value, last good
/// checkpoint) and returns the error that stops training.
fn diverged(run: &RunDir, step: u64, quantity: String, value: f64) -> anyhow::Error {
    let last_good = last_good(run);
    let record = serde_json::json!({
        "step": step,
        "quantity": quantity,
        "value": value.to_string(),
        "last_good_checkpoint": last_good,
    });
    let err = Failure::Diverged {
        step,
        quantity,
        value,
        last_good,
    };
    match run.write_json(DIVERGED_FILE, &record) {
        Ok(_) => err.into(),
        Err(e) => anyhow::Error::from(err).context(format!("(could not record it: {e:#})")),
    }
}

/// Passes `ck` through when every array is finite; a non-finite parameter is a divergence and is
/// never written as a checkpoint.
fn checked(run: &RunDir, ck: Checkpoint) -> Result<Checkpoint> {
    for a in &ck.arrays {
        if let Some(v) = a.data.iter().find(|v| !v.is_finite()) {
            return Err(diverged(
                run,
                ck.step,
                format!("parameter `{}`", a.name),
                *v as f64,
            ));
        }
    }
    Ok(ck)
}

/// Redraws `curves.png` from `metrics.jsonl`. A picture that cannot be written costs the run
/// nothing: the checkpoint is already on disk, so this only warns.
fn refresh_curves(run: &RunDir) {
    let metrics = run.path().join("metrics.jsonl");
    if let Err(e) = crate::plot::training_curves(&metrics, &run.path().join("curves.png")) {
        log::warn!("could not draw curves.png: {e:#}");
    }
}

/// The run's TensorBoard event file. Failing to write it costs the run nothing: the first
/// failure warns and ends the TensorBoard output of this process (`metrics.jsonl` stays
/// complete).
struct Board {
    writer: Option<crate::tensorboard::EventWriter>,
}

impl Board {
    /// Off, or a new event file in `<run>/tb/` after dropping the events of steps after
    /// `start` (as `metrics.jsonl` drops its lines); a run from step 0 starts the folder over
    /// and writes its `config.json` as text.
    fn open(run: &RunDir, start: u64, on: bool) -> Self {
        if !on {
            return Self { writer: None };
        }
        let dir = run.path().join(crate::tensorboard::DIR);
        let opened = (|| -> Result<crate::tensorboard::EventWriter> {
            crate::tensorboard::prune(&dir, (start > 0).then_some(start))?;
            let mut w = crate::tensorboard::EventWriter::create(&dir)?;
            let config = run.file("config.json");
            if start == 0 && config.is_file() {
                let text = std::fs::read_to_string(&config)
                    .with_context(|| format!("cannot read {}", config.display()))?;
                // Indented: a Markdown code block.
                let md: String = text.lines().map(|l| format!("    {l}\n")).collect();
                w.text(0, "config", &md)?;
            }
            Ok(w)
        })();
        match opened {
            Ok(w) => Self { writer: Some(w) },
            Err(e) => {
                Self::warn(&e);
                Self { writer: None }
            }
        }
    }

    fn warn(e: &anyhow::Error) {
        log::warn!("TensorBoard events: {e:#}; no more events are written in this run");
    }

    fn with(&mut self, f: impl FnOnce(&mut crate::tensorboard::EventWriter) -> Result<()>) {
        if let Some(w) = self.writer.as_mut()
            && let Err(e) = f(w)
        {
            Self::warn(&e);
            self.writer = None;
        }
    }
}

/// The driver's task on a [`Control`]'s observer, finished however the loop ends (an error
/// included).
struct Bar<'a>(&'a Control);

impl<'a> Bar<'a> {
    fn open(ctl: &'a Control, end: u64, start: u64) -> Self {
        ctl.progress.start("train", end);
        if start > 0 {
            ctl.progress.set_position(start);
        }
        Self(ctl)
    }
    fn advance(&self) {
        self.0.progress.advance(1);
    }
    fn message(&self, msg: &str) {
        self.0.progress.message(msg);
    }
}

impl Drop for Bar<'_> {
    fn drop(&mut self) {
        self.0.progress.finish();
    }
}

/// Runs `task` from `start` to the end (or `until`), checkpointing into `run`, reporting to
/// `ctl.progress` (one task named `train`) and stopping early, after a checkpoint, when
/// `ctl.stop` is raised.
pub fn run(
    task: &mut dyn Trainable,
    run: &RunDir,
    start: u64,
    opts: &DriverOptions,
    ctl: &Control,
) -> Result<Outcome> {
    let end = opts.until.unwrap_or(opts.total_steps).min(opts.total_steps);
    crate::device::persist_autotune(&run.path().join("autotune"));
    if start == 0 {
        // A step-0 checkpoint makes every run resumable, even one killed in its first step.
        checkpoint::save(run.path(), &task.checkpoint(0)?, opts.keep)
            .with_context(|| not_saved(run, 0))?;
        task.export(run.path())
            .context("cannot export the initial model")?;
    }
    let mut board = Board::open(run, start, opts.tensorboard && start < end);
    let pb = Bar::open(ctl, end, start);
    let t0 = Instant::now();
    let mut step = start;
    // Steps whose scalars are still on the device; read in one copy whenever the driver needs
    // them (a metrics line, a checkpoint, a milestone, an interrupt, the end). A non-finite
    // scalar stops the run naming the first step that produced one, before anything is saved.
    let mut pending: Vec<(u64, StepOutput)> = Vec::new();
    while step < end {
        pending.push((step, task.step(step)?));
        step += 1;
        let log_now =
            opts.log_every > 0 && (step.is_multiple_of(opts.log_every) || step == opts.total_steps);
        let periodic = opts.checkpoint_every > 0 && step.is_multiple_of(opts.checkpoint_every);
        let milestone = opts.milestones.contains(&step);
        let stop = ctl.stopped();
        pb.advance();
        if !(log_now || periodic || milestone || step == end || stop) {
            continue;
        }
        let read = read_all(&mut pending)?;
        for (s, vals) in &read {
            if let Some((quantity, value)) = vals.iter().find(|(_, v)| !v.is_finite()) {
                return Err(diverged(run, s + 1, quantity.clone(), *value));
            }
        }
        let last = read.last().map(|(_, v)| v.clone()).unwrap_or_default();
        let loss = last
            .iter()
            .find(|(k, _)| k == "loss")
            .map_or(f64::NAN, |(_, v)| *v);
        if log_now {
            log::debug!("step {step}: {last:?}");
            let mut m = serde_json::Map::new();
            m.insert("step".into(), step.into());
            for (k, v) in &last {
                m.insert(k.clone(), (*v).into());
            }
            m.insert("wall_s".into(), t0.elapsed().as_secs_f64().into());
            // TensorBoard gets the values of the line, as written.
            let scalars: Vec<(String, f64)> = m
                .iter()
                .filter(|(k, _)| *k != "step")
                .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                .collect();
            run.append_metrics(&serde_json::Value::Object(m))?;
            board.with(|w| w.scalars(step, &scalars));
        }
        pb.message(&format!("loss {loss:.4e}"));
        if milestone {
            let dir = run.path().join(opts.milestone_dir);
            std::fs::create_dir_all(&dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
            let snap = checked(run, task.snapshot(step)?)?;
            checkpoint::save(&dir, &snap, usize::MAX).with_context(|| not_saved(run, step))?;
        }
        if periodic || step == end || stop {
            let ck = checked(run, task.checkpoint(step)?)?;
            checkpoint::save(run.path(), &ck, opts.keep).with_context(|| not_saved(run, step))?;
            task.export(run.path())
                .with_context(|| format!("cannot export the model of step {step}"))?;
            log::debug!(
                "checkpoint of step {step} written to {}",
                run.path().display()
            );
            refresh_curves(run);
            board.with(|w| {
                if let Some(p) = task.picture()? {
                    let (tag, png) = p.png()?;
                    w.image(step, &tag, &png)?;
                }
                let curves = run.file("curves.png");
                if curves.is_file() {
                    let png = std::fs::read(&curves)
                        .with_context(|| format!("cannot read {}", curves.display()))?;
                    w.image(step, "curves", &png)?;
                }
                w.sync()
            });
        }
        if stop {
            return Ok(Outcome::Interrupted(step));
        }
    }
    Ok(Outcome::Finished(step))
}
