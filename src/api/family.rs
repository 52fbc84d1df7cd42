//! The model families: one trait ([`Family`]) that each family implements once — its
//! configuration, trainer, Burn module, driver settings, what happens around a run, what
//! `export` writes — and one registration line each in [`dispatch`]. Every front then has one
//! train path ([`train()`]), one resume path ([`resume`]) and one export path ([`export`]); a
//! fourth family is its folder under `src/models/`, an `impl Family` here and a line in
//! [`dispatch`].

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Ctx;
use crate::checkpoint;
use crate::models::export::TrainedModel;
use crate::run::RunDir;
use crate::train::{self, DriverOptions, Outcome, Trainable};

/// Named f32 tensors (name, shape, row-major values) that `export` writes.
pub type NamedTensors = Vec<(String, Vec<usize>, Vec<f32>)>;

/// One model family.
pub trait Family {
    /// Its name in run directories (`config.json`'s `meta.model`) and checkpoints.
    const KIND: &'static str;
    /// What one training step is called in messages (`iteration`, `epoch`, `update`).
    const STEP: &'static str;
    /// The configuration key of the run's length in steps (`iters`, `updates`, `epochs`).
    const TOTAL_KEY: &'static str;
    /// The command to try once a run has finished.
    const NEXT: &'static str;
    /// Every hyperparameter of a run (`config.json`'s `config`).
    type Config: RunConfig;
    /// The training state the driver steps.
    type Trainer: Trainable;
    /// The network as a Burn module (`model.bpk`).
    type Model: TrainedModel;

    /// The defaults an existing run's `config.json` is read against (keys added since the
    /// first release take the values runs written before them used).
    fn legacy_defaults() -> Self::Config {
        Self::Config::defaults()
    }
    /// Completes and checks a new run's configuration (e.g. embeds a user SDE file's text).
    fn prepare(cfg: &mut Self::Config) -> Result<()> {
        cfg.check()
    }
    /// A fresh trainer (everything is built, and so checked, before the run directory exists).
    fn trainer(cfg: &Self::Config, device: &Device) -> Result<Self::Trainer>;
    /// The skeleton of a trainer whose state comes from `run`'s newest checkpoint.
    fn resume_trainer(cfg: &Self::Config, run: &RunDir, device: &Device) -> Result<Self::Trainer>;
    /// The driver's loop settings.
    fn driver_options(cfg: &Self::Config, until: Option<u64>) -> DriverOptions;
    /// What to say once the run directory exists.
    fn started(trainer: &Self::Trainer, run: &RunDir) -> String {
        let _ = trainer;
        format!("run directory: {}", run.path().display())
    }
    /// Work after the driver returns (a final check, a figure).
    fn finished(trainer: &Self::Trainer, run: &RunDir, outcome: &Outcome, ctx: &Ctx) -> Result<()> {
        let _ = (trainer, run, outcome, ctx);
        Ok(())
    }
    /// The tensors `export --format npy|safetensors` writes, from the run's newest checkpoint.
    fn tensors(run: &RunDir, device: &Device) -> Result<NamedTensors>;
}

/// What the driver needs of a family's configuration.
pub trait RunConfig: Serialize + DeserializeOwned + Clone {
    /// The family this configuration trains.
    type Family: Family<Config = Self>;
    /// The configuration of a new run before the user's file, `--set`s and flags.
    fn defaults() -> Self;
    /// The seed of every random stream of a run.
    fn seed(&self) -> u64;
    /// Checks the configuration.
    fn check(&self) -> Result<()>;
}

macro_rules! run_config {
    ($($t:ty => $f:ty),*) => {$(
        impl RunConfig for $t {
            type Family = $f;
            fn defaults() -> Self {
                Self::new()
            }
            fn seed(&self) -> u64 {
                self.seed
            }
            fn check(&self) -> Result<()> {
                self.validate()
            }
        }
    )*};
}

run_config!(
    crate::models::ddm::DdmConfig => DdmFamily,
    crate::models::nlm::NlmConfig => NlmFamily,
    crate::models::fep::FepConfig => FepFamily
);

/// Something done with a family chosen by its name (see [`dispatch`]).
pub trait Visit {
    /// The result.
    type Out;
    /// Does it with family `F`.
    fn visit<F: Family>(self) -> Self::Out;
}

/// Runs `v` with the family called `kind` — the registry: one line per family.
pub fn dispatch<V: Visit>(kind: &str, v: V) -> Result<V::Out> {
    match kind {
        DdmFamily::KIND => Ok(v.visit::<DdmFamily>()),
        NlmFamily::KIND => Ok(v.visit::<NlmFamily>()),
        FepFamily::KIND => Ok(v.visit::<FepFamily>()),
        other => bail!("unknown model family `{other}` (known: ddm, nlm, fep)"),
    }
}

/// Where a new run goes.
#[derive(Clone, Debug, Default)]
pub struct RunPlace {
    /// The run directory (default: a new folder under `checkpoints/`, named by family and
    /// time).
    pub run_dir: Option<PathBuf>,
    /// Replace an existing run directory there.
    pub overwrite: bool,
}

impl RunPlace {
    /// The run directory `dir` (refused if it already holds a run).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self {
            run_dir: Some(dir.into()),
            overwrite: false,
        }
    }
    /// The same, replacing a run already there.
    pub fn overwrite(mut self) -> Self {
        self.overwrite = true;
        self
    }
}

/// What a training (or a resumed training) did.
#[derive(Clone, Debug, Serialize)]
pub struct TrainReport {
    /// The run directory.
    pub run_dir: PathBuf,
    /// The step the process started from (0 for a new run).
    pub start: u64,
    /// The step reached.
    pub step: u64,
    /// The run's planned length in steps.
    pub total: u64,
    /// Whether it stopped on request (a checkpoint was saved at `step`).
    pub interrupted: bool,
    /// Seconds spent in the driver.
    pub seconds: f64,
}

impl TrainReport {
    fn new(rd: &RunDir, start: u64, total: u64, out: Outcome, took: std::time::Duration) -> Self {
        let (step, interrupted) = match out {
            Outcome::Finished(s) => (s, false),
            Outcome::Interrupted(s) => (s, true),
        };
        Self {
            run_dir: rd.path().to_path_buf(),
            start,
            step,
            total,
            interrupted,
            seconds: took.as_secs_f64(),
        }
    }
}

/// Trains a new run with configuration `cfg` — its type names the family: a
/// [`crate::models::nlm::NlmConfig`] trains an NLM — completed and checked by
/// [`Family::prepare`] (build it in code, or from defaults, a file and overrides with
/// [`crate::config::build`]): builds the trainer, the run directory, and runs the one driver
/// (checkpoints, metrics, stop on request).
pub fn train<C: RunConfig>(cfg: C, place: &RunPlace, ctx: &Ctx) -> Result<TrainReport> {
    train_family::<C::Family>(cfg, place, ctx)
}

fn train_family<F: Family>(mut cfg: F::Config, place: &RunPlace, ctx: &Ctx) -> Result<TrainReport> {
    F::prepare(&mut cfg)?;
    let mut trainer = F::trainer(&cfg, &ctx.device)?;
    let rd = crate::run::start_run(
        place.run_dir.as_deref(),
        F::KIND,
        F::KIND,
        cfg.seed(),
        place.overwrite,
        &cfg,
    )?;
    log::info!("{}", F::started(&trainer, &rd));
    let t0 = std::time::Instant::now();
    let opts = F::driver_options(&cfg, None);
    let out = train::run(&mut trainer, &rd, 0, &opts, &ctx.control)?;
    let took = t0.elapsed();
    F::finished(&trainer, &rd, &out, ctx)?;
    Ok(TrainReport::new(&rd, 0, opts.total_steps, out, took))
}

/// The run length (`TOTAL_KEY`) of a configuration.
fn total_of<F: Family>(cfg: &F::Config) -> Result<u64> {
    serde_json::to_value(cfg)?
        .get(F::TOTAL_KEY)
        .and_then(|v| v.as_u64())
        .with_context(|| format!("configuration has no `{}`", F::TOTAL_KEY))
}

/// `steps` steps in the family's word (`1 update`, `200 iterations`).
pub fn steps<F: Family>(n: u64) -> String {
    format!("{n} {}{}", F::STEP, if n == 1 { "" } else { "s" })
}

/// How a resumed run ended.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Resumed {
    /// The run had already done all its steps: nothing was done.
    AlreadyComplete {
        /// The steps done.
        step: u64,
        /// The run's length.
        total: u64,
    },
    /// Trained on.
    Trained(TrainReport),
}

/// How to go on with a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct ResumeOptions {
    /// Stop after this step (default: the end of the run).
    pub until: Option<u64>,
    /// First set the run's length to this many steps (rewriting `config.json`): schedules tied
    /// to the run's length (the NLM's cosine learning rate) are re-planned over the new total
    /// from the current step on.
    pub total: Option<u64>,
}

/// Continues `rd` from its newest checkpoint (from its configuration when it has none yet).
pub fn resume<F: Family>(rd: &RunDir, o: ResumeOptions, ctx: &Ctx) -> Result<Resumed> {
    let mut cfg: F::Config = rd.config_or(&F::legacy_defaults())?;
    cfg.check().with_context(|| {
        format!(
            "invalid configuration in {}",
            rd.file("config.json").display()
        )
    })?;
    let dir = rd.path().display();
    let planned = total_of::<F>(&cfg)?;
    let longer = o.total.filter(|n| *n != planned);
    if let Some(n) = longer {
        let mut v = serde_json::to_value(&cfg)?;
        v[F::TOTAL_KEY] = n.into();
        cfg = serde_json::from_value(v)?;
        cfg.check()?;
    }
    let total = total_of::<F>(&cfg)?;
    if let Some(u) = o.until.filter(|u| *u > total) {
        bail!(
            "--until {u} is past the end of the run ({}); to train it longer: attractor resume \
             --run-dir {dir} --total {u}",
            steps::<F>(total)
        );
    }
    let mut trainer = F::resume_trainer(&cfg, rd, &ctx.device)?;
    // The checkpoint is read (and so checked against the configuration) before anything is
    // changed: a damaged or mismatched run is refused with config.json untouched.
    let start = train::restore_latest(&mut trainer, rd)?;
    if let Some(n) = longer {
        if n < start {
            bail!(
                "--total {n}: the run has already done {}; the total can only be set at or \
                 above that",
                steps::<F>(start)
            );
        }
        rd.write_config(&rd.meta()?, &cfg)?;
        log::info!(
            "{dir}: {} → {} ({} = {n} in config.json; schedules over the run's length are \
             re-planned from {} {start})",
            steps::<F>(planned),
            steps::<F>(n),
            F::TOTAL_KEY,
            F::STEP
        );
    }
    if start >= total {
        return Ok(Resumed::AlreadyComplete { step: start, total });
    }
    log::info!("resuming {} from {} {start}", rd.path().display(), F::STEP);
    let t0 = std::time::Instant::now();
    let out = train::run(
        &mut trainer,
        rd,
        start,
        &F::driver_options(&cfg, o.until),
        &ctx.control,
    )?;
    let took = t0.elapsed();
    F::finished(&trainer, rd, &out, ctx)?;
    Ok(Resumed::Trained(TrainReport::new(
        rd, start, total, out, took,
    )))
}

/// What `export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One `.npy` file per tensor.
    Npy,
    /// One `model.safetensors`.
    Safetensors,
    /// Burn's record of the network (`model.bpk`) with its configuration (`model.json`), as
    /// `attractor::load_model` and any Burn program read it.
    Burnpack,
}

impl std::str::FromStr for ExportFormat {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        <Self as clap::ValueEnum>::from_str(s, true).map_err(|_| {
            anyhow::anyhow!("unknown export format `{s}` (npy, safetensors, burnpack)")
        })
    }
}

/// `export`: the newest checkpoint's tensors of `rd` written to `out`; returns what it wrote.
pub fn export<F: Family>(rd: &RunDir, format: ExportFormat, out: &Path) -> Result<String> {
    let dev = Ctx::cpu()?.device;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    if format == ExportFormat::Burnpack {
        let model: F::Model = crate::models::export::load_model(rd.path(), &dev)?;
        crate::models::export::export(&model, out)?;
        return Ok(format!(
            "wrote {} and {} ({} parameters) to {}",
            crate::models::export::RECORD_FILE,
            crate::models::export::CONFIG_FILE,
            burn::module::Module::num_params(&model),
            out.display()
        ));
    }
    let tensors = F::tensors(rd, &dev)?;
    write_tensors(out, format, &tensors)?;
    Ok(format!(
        "wrote {} tensors to {}",
        tensors.len(),
        out.display()
    ))
}

/// Writes named f32 tensors as `.npy` files or one `model.safetensors`.
pub fn write_tensors(out: &Path, format: ExportFormat, tensors: &NamedTensors) -> Result<()> {
    if format == ExportFormat::Npy {
        for (name, shape, data) in tensors {
            crate::npy::write_npy_f32(&out.join(format!("{name}.npy")), shape, data)?;
        }
        return Ok(());
    }
    let raw: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, d)| d.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .zip(&raw)
        .map(|((n, s, _), bytes)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), bytes)
                .map(|v| (n.clone(), v))
                .map_err(|e| anyhow::anyhow!("tensor {n}: {e}"))
        })
        .collect::<Result<_>>()?;
    let bytes =
        safetensors::serialize(views, &None).map_err(|e| anyhow::anyhow!("safetensors: {e}"))?;
    checkpoint::atomic_write(&out.join("model.safetensors"), &bytes)
}

/// Loop settings of a run of `total` steps (no milestones; see [`DriverOptions::until`]).
fn loop_options(
    total: u64,
    checkpoint_every: u64,
    log_every: u64,
    keep: usize,
    tensorboard: bool,
) -> DriverOptions {
    DriverOptions {
        total_steps: total,
        until: None,
        checkpoint_every,
        log_every,
        keep,
        milestones: Vec::new(),
        milestone_dir: "milestones",
        tensorboard,
    }
}

/// The named arrays of `rd`'s newest checkpoint.
fn checkpoint_arrays(rd: &RunDir, names: &[&str]) -> Result<NamedTensors> {
    let ck = checkpoint::load_latest(rd.path())?
        .with_context(|| format!("{} has no checkpoint", rd.path().display()))?;
    names
        .iter()
        .map(|n| {
            ck.array(n)
                .map(|a| (n.to_string(), a.shape.clone(), a.data.clone()))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// DDM
// ---------------------------------------------------------------------------------------------

/// Continuous-time RNNs trained by drift–diffusion matching.
pub struct DdmFamily;

impl Family for DdmFamily {
    const KIND: &'static str = "ddm";
    const STEP: &'static str = "iteration";
    const TOTAL_KEY: &'static str = "iters";
    const NEXT: &'static str = "attractor ddm eval";
    type Config = crate::models::ddm::DdmConfig;
    type Trainer = crate::models::ddm::DdmTrainer;
    type Model = crate::models::ctrnn::CtRnn;

    fn prepare(cfg: &mut Self::Config) -> Result<()> {
        // A user SDE file's text goes into config.json: the run is self-contained.
        let spec = crate::sde::target::TargetSpec::new(&cfg.sde, &cfg.params)?;
        if spec.toml.is_some() {
            cfg.sde_toml = spec.toml;
        }
        cfg.validate()
    }
    fn trainer(cfg: &Self::Config, device: &Device) -> Result<Self::Trainer> {
        Self::Trainer::new(cfg, device)
    }
    fn resume_trainer(cfg: &Self::Config, run: &RunDir, device: &Device) -> Result<Self::Trainer> {
        // A run killed before its first checkpoint restarts from its configuration.
        if checkpoint::list(run.path())?.is_empty() {
            Self::Trainer::new(cfg, device)
        } else {
            Self::Trainer::for_resume(cfg, device)
        }
    }
    fn driver_options(cfg: &Self::Config, until: Option<u64>) -> DriverOptions {
        loop_options(
            cfg.iters,
            cfg.checkpoint_every,
            cfg.log_every,
            cfg.keep_checkpoints,
            cfg.tensorboard,
        )
        .until(until)
    }
    fn tensors(run: &RunDir, device: &Device) -> Result<NamedTensors> {
        let cfg: Self::Config = run.config_or(&Self::Config::defaults())?;
        let ck = checkpoint::load_latest(run.path())?
            .with_context(|| format!("{} has no checkpoint", run.path().display()))?;
        let ddm = crate::models::ddm::load_network(&cfg, &ck, device)?;
        crate::analysis::ddm::export_tensors(&ddm)
    }
}

// ---------------------------------------------------------------------------------------------
// NLM
// ---------------------------------------------------------------------------------------------

/// Neural Langevin machines.
pub struct NlmFamily;

impl NlmFamily {
    /// The trainer of `cfg` with its training images loaded (warnings logged).
    fn build(
        cfg: &crate::models::nlm::NlmConfig,
        device: &Device,
    ) -> Result<crate::models::nlm::NlmTrainer> {
        let mut data = crate::analysis::nlm::prepare(cfg)?;
        for w in &data.warnings {
            log::warn!("{w}");
        }
        log::info!(
            "data: {} training images of {}×{} ({} held out) from {}",
            data.train.len(),
            data.train.rows,
            data.train.cols,
            data.held_out.len(),
            data.train.source
        );
        let x = std::mem::take(&mut data.x_train);
        crate::models::nlm::NlmTrainer::new(cfg, x, data.train.dim(), device)
    }
}

impl Family for NlmFamily {
    const KIND: &'static str = "nlm";
    const STEP: &'static str = "update";
    const TOTAL_KEY: &'static str = "updates";
    const NEXT: &'static str = "attractor nlm generate";
    type Config = crate::models::nlm::NlmConfig;
    type Trainer = crate::models::nlm::NlmTrainer;
    type Model = crate::models::nlm::Nlm;

    fn legacy_defaults() -> Self::Config {
        Self::Config::legacy()
    }
    /// A folder of images is stored as an absolute path: the run's commands find it from any
    /// working directory.
    fn prepare(cfg: &mut Self::Config) -> Result<()> {
        cfg.data = cfg.data.absolute()?;
        cfg.validate()
    }
    fn trainer(cfg: &Self::Config, device: &Device) -> Result<Self::Trainer> {
        Self::build(cfg, device)
    }
    fn resume_trainer(cfg: &Self::Config, _: &RunDir, device: &Device) -> Result<Self::Trainer> {
        Self::build(cfg, device)
    }
    fn driver_options(cfg: &Self::Config, until: Option<u64>) -> DriverOptions {
        let mut opts = loop_options(
            cfg.updates,
            cfg.checkpoint_every,
            cfg.log_every,
            cfg.keep_checkpoints,
            cfg.tensorboard,
        )
        .until(until);
        if cfg.tage_snapshots {
            opts.milestones = crate::models::nlm::tage_schedule(cfg.updates);
            opts.milestone_dir = "tage";
        }
        opts
    }
    /// Once a run has done all its updates (not after an interruption or a `resume --until`
    /// short of the end): the training images' energies (`data_energy.json`) and the polarity
    /// check (`polarity_chains` fresh chains): writes `polarity.json` and warns (even with `--quiet`) when the samples' mean pixel or
    /// inverted fraction departs from the data's.
    fn finished(trainer: &Self::Trainer, run: &RunDir, outcome: &Outcome, ctx: &Ctx) -> Result<()> {
        let cfg = &trainer.cfg;
        let done = matches!(outcome, Outcome::Finished(s) if *s >= cfg.updates);
        if !done {
            return Ok(());
        }
        let data = crate::analysis::nlm::prepare(cfg)?;
        // The training images' typical energy under the final model: where `nlm denoise`
        // stops by default.
        let energy = super::nlm::data_energy(
            &trainer.nlm,
            &data.x_train,
            cfg.updates,
            &trainer.chains.device(),
        )?;
        checkpoint::atomic_write(
            &run.file(super::nlm::DATA_ENERGY_FILE),
            serde_json::to_string_pretty(&energy)?.as_bytes(),
        )?;
        if cfg.polarity_chains == 0 {
            return Ok(());
        }
        let train = data.train;
        let bar = ctx
            .control
            .scope(cfg.polarity_steps as u64, "polarity check");
        let v = crate::analysis::nlm::polarity_check(
            &trainer.nlm,
            &crate::data::images::signed(&train.pixels),
            cfg.polarity_chains,
            cfg.polarity_steps,
            cfg.dt,
            cfg.seed,
            &trainer.chains.device(),
        )?;
        drop(bar);
        checkpoint::atomic_write(
            &run.file("polarity.json"),
            serde_json::to_string_pretty(&v)?.as_bytes(),
        )?;
        // curves.png again, now with the data's mean pixel from polarity.json.
        if let Err(e) =
            crate::plot::training_curves(&run.file("metrics.jsonl"), &run.file("curves.png"))
        {
            log::warn!("could not draw curves.png: {e:#}");
        }
        match v["warning"].as_str() {
            Some(w) => log::warn!("{w}"),
            None => log::info!(
                "polarity check: {} fresh samples, mean pixel {:.3} (data {:.3}), {:.1} % inverted",
                cfg.polarity_chains,
                v["mean_pixel"].as_f64().unwrap_or(f64::NAN),
                v["data_mean_pixel"].as_f64().unwrap_or(f64::NAN),
                100.0 * v["inverted_frac"].as_f64().unwrap_or(f64::NAN)
            ),
        }
        Ok(())
    }
    fn tensors(run: &RunDir, _: &Device) -> Result<NamedTensors> {
        checkpoint_arrays(run, &["J", "b", "chains"])
    }
}

// ---------------------------------------------------------------------------------------------
// FEP
// ---------------------------------------------------------------------------------------------

/// Self-orthogonalising attractor networks.
pub struct FepFamily;

impl Family for FepFamily {
    const KIND: &'static str = "fep";
    const STEP: &'static str = "epoch";
    const TOTAL_KEY: &'static str = "epochs";
    const NEXT: &'static str = "attractor fep attractors";
    type Config = crate::models::fep::FepConfig;
    type Trainer = crate::models::fep::FepTrainer;
    type Model = crate::models::fep::FepNetworks;

    /// A pattern file is stored as an absolute path (see the NLM's `prepare`).
    fn prepare(cfg: &mut Self::Config) -> Result<()> {
        cfg.patterns = cfg.patterns.absolute()?;
        cfg.validate()
    }

    fn trainer(cfg: &Self::Config, device: &Device) -> Result<Self::Trainer> {
        let (pats, _) = super::fep::resolve_patterns(cfg)?;
        for w in &pats.warnings {
            log::warn!("{w}");
        }
        let mut trainer = Self::Trainer::new(cfg, pats.data.clone(), pats.n, device)?;
        if let Some(src) = &cfg.init_from {
            let ck = checkpoint::load_latest(src)?
                .with_context(|| format!("init_from = {}: no checkpoint there", src.display()))?;
            trainer
                .init_from(&ck)
                .with_context(|| format!("init_from = {}", src.display()))?;
        }
        Ok(trainer)
    }
    fn resume_trainer(cfg: &Self::Config, run: &RunDir, device: &Device) -> Result<Self::Trainer> {
        // The run's own patterns (as trained on) come from its checkpoint when there is one.
        let (pats, n) = match checkpoint::load_latest(run.path())? {
            Some(ck) => {
                let arr = ck.array("patterns")?;
                let n = *arr
                    .shape
                    .get(1)
                    .context("bad patterns array in checkpoint")?;
                (arr.data.iter().map(|&x| x as f64).collect::<Vec<f64>>(), n)
            }
            None => {
                let (p, _) = super::fep::resolve_patterns(cfg)?;
                (p.data, p.n)
            }
        };
        Self::Trainer::new(cfg, pats, n, device)
    }
    fn driver_options(cfg: &Self::Config, until: Option<u64>) -> DriverOptions {
        loop_options(
            cfg.epochs,
            cfg.checkpoint_every,
            cfg.log_every,
            cfg.keep_checkpoints,
            cfg.tensorboard,
        )
        .until(until)
    }
    fn started(trainer: &Self::Trainer, run: &RunDir) -> String {
        format!(
            "run directory: {} ({} patterns of N = {}, {} network(s), {} engine)",
            run.path().display(),
            trainer.n_patterns(),
            trainer.n,
            trainer.g,
            trainer.engine()
        )
    }
    fn finished(trainer: &Self::Trainer, run: &RunDir, _: &Outcome, _: &Ctx) -> Result<()> {
        super::fep::plot_couplings(trainer, &run.file("couplings.png"))
    }
    fn tensors(run: &RunDir, _: &Device) -> Result<NamedTensors> {
        checkpoint_arrays(run, &["J", "state", "patterns"])
    }
}
