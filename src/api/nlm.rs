//! The NLM family's operations on a run: [`generate`], [`eval`], [`explore`], [`denoise`] and
//! [`summarize`], each a function of a plain options struct (whose `Default` is the command
//! line's defaults) returning a typed report (`serde::Serialize`: the JSON `attractor nlm …`
//! writes); and what they share: loading a run ([`load`] into a [`LoadedNlm`]), the states its
//! chains start at ([`start_states`]), the sampler ([`SamplerOptions`]), the training images'
//! typical energy ([`typical_energy`], [`data_energy`]). Nothing here writes a file: the
//! images a report carries (`#[serde(skip)]` fields) are drawn and saved by the caller.
//! The sampling and the metrics themselves are in [`crate::analysis::nlm`].

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor};
use serde::Serialize;
use serde_json::Value;

use super::Ctx;
use crate::analysis::nlm::{
    ClassShares, Corruption, Frames, GenSampler, Init, Metrics, NlmData, Stop, Tempering,
    UNSTABLE_ENERGY, class_share_metrics, class_stay_frac, denoise as relax_denoise, energies,
    generate_from, generate_tempering, knn_classes, langevin, mean_image, median, metrics_repeated,
    pca, polarity_warning, prepare_trained, project,
};
use crate::checkpoint;
use crate::data::images::{atanh_map, binarize_pixels, signed};
use crate::data::patterns::read_grey_image;
use crate::device::fast;
use crate::models::nlm::{Nlm, NlmConfig, load_nlm, streams};
use crate::rng::Rng;
use crate::run::RunDir;
use crate::stats::mean_sample_sd;
use crate::transfer::{tensor2_f32, to_vec_f32};

// ---------------------------------------------------------------------------------------------
// Loading a run
// ---------------------------------------------------------------------------------------------

/// Which parameters of a run to load, and at what temperature to sample them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelOptions {
    /// The t_age snapshot of this many updates (`tage/`) instead of the newest checkpoint.
    pub tage: Option<u64>,
    /// The untrained initial parameters of the run's configuration (a control).
    pub untrained: bool,
    /// Sample at this temperature instead of the run's (a diagnostic; at most 1000).
    pub temperature: Option<f64>,
}

/// A trained (or untrained) NLM with its configuration and data.
pub struct LoadedNlm {
    /// The run directory.
    pub rd: RunDir,
    /// Its configuration.
    pub cfg: NlmConfig,
    /// The model.
    pub nlm: Nlm,
    /// Updates done (t_age).
    pub step: u64,
    /// Its images.
    pub data: NlmData,
    /// Whether these are the untrained initial parameters.
    pub untrained: bool,
}

/// Opens the run at `run_dir` and its parameters.
pub fn load(run_dir: &Path, o: &ModelOptions, device: &Device) -> Result<LoadedNlm> {
    if let Some(t) = o.temperature
        && !(t.is_finite() && t > 0.0 && t <= 1e3)
    {
        bail!("--temperature must be a positive number (at most 1000), got {t}");
    }
    let rd = RunDir::open(run_dir)?;
    let meta = rd.meta()?;
    if meta.model != <super::family::NlmFamily as super::family::Family>::KIND {
        bail!(
            "{} is a `{}` run, not an NLM run",
            run_dir.display(),
            meta.model
        );
    }
    let cfg: NlmConfig = rd.config_or(&NlmConfig::legacy())?;
    cfg.validate().with_context(|| {
        format!(
            "invalid configuration in {}",
            rd.file("config.json").display()
        )
    })?;
    let data = prepare_trained(&cfg)?;
    let n = data.train.dim();
    let (mut nlm, step) = if o.untrained {
        (Nlm::for_run(&cfg, &data.x_train, n, device), 0)
    } else {
        let ck = match o.tage {
            Some(t) => {
                let p = checkpoint::path_for(&rd.path().join("tage"), t);
                if !p.is_file() {
                    let have: Vec<u64> = checkpoint::list(&rd.path().join("tage"))
                        .map(|v| v.into_iter().map(|x| x.0).rev().collect())
                        .unwrap_or_default();
                    bail!(
                        "no t_age snapshot {t} in {} (have {have:?})",
                        rd.path().display()
                    );
                }
                checkpoint::load_file(&p)?
            }
            None => checkpoint::load_latest(rd.path())?
                .with_context(|| format!("{} has no checkpoint", rd.path().display()))?,
        };
        (load_nlm(&ck, device)?, ck.step)
    };
    if nlm.n() != n {
        bail!(
            "the checkpoint has N = {} neurons but the run's images have {n} pixels",
            nlm.n()
        );
    }
    if let Some(t) = o.temperature {
        nlm.temperature = t;
    }
    Ok(LoadedNlm {
        rd,
        cfg,
        nlm,
        step,
        data,
        untrained: o.untrained,
    })
}

/// Where a run's images come from, for drawing a report's images: the run directory (where
/// files go by default) and the images' size.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunImages {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Pixel rows of one image.
    pub rows: usize,
    /// Pixel columns of one image.
    pub cols: usize,
}

impl RunImages {
    /// The images (pixels in [-1, 1], `rows × cols` each) drawn as a grid of `cols` columns,
    /// each scaled up to about 84 pixels a side: what `nlm generate` writes.
    pub fn grid(&self, images: &[Vec<f32>], cols: usize) -> image::RgbImage {
        let scale = (84 / self.rows.max(self.cols).max(1)).clamp(1, 8) as u32;
        crate::plot::image_grid(images, self.cols, self.rows, cols, -1.0, 1.0, scale)
    }
    fn of(l: &LoadedNlm) -> Self {
        Self {
            run_dir: l.rd.path().to_path_buf(),
            rows: l.data.train.rows,
            cols: l.data.train.cols,
        }
    }
    /// Neurons (pixels) of one image.
    pub fn dim(&self) -> usize {
        self.rows * self.cols
    }
    /// A file inside the run directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.run_dir.join(name)
    }
}

/// The images (pixels in [0, 1], `[k, N]` flattened) that `chains` chains of `init` start at,
/// chain c at image c mod k: the first min(chains, count) training or held-out images; none for
/// `Noise`.
pub fn start_pixels(l: &LoadedNlm, init: Init, chains: usize) -> Result<&[f32]> {
    let set = match init {
        Init::Noise => return Ok(&[]),
        Init::Data => &l.data.train,
        Init::HeldOut => &l.data.held_out,
    };
    if set.is_empty() {
        bail!(
            "--init {}: this run's data have no such images",
            init.name()
        );
    }
    Ok(&set.pixels[..set.len().min(chains) * l.nlm.n()])
}

/// Start states `[chains, N]` of `init` for a loaded run: N(0, 1) draws from `rng`, or the
/// training (held-out) images' x, chain c starting at image c mod their count (which the caller
/// recovers as such: no index list is needed).
pub fn start_states(
    l: &LoadedNlm,
    init: Init,
    chains: usize,
    rng: &mut Rng,
    device: &Device,
) -> Result<Tensor<2>> {
    let n = l.nlm.n();
    if init == Init::Noise {
        return Ok(crate::models::nlm::gaussian(rng, chains, n, 1.0, device));
    }
    let x: Vec<f32> = atanh_map(start_pixels(l, init, chains)?, l.cfg.eps)
        .chunks(n)
        .cycle()
        .take(chains)
        .flatten()
        .copied()
        .collect();
    Ok(tensor2_f32(x, chains, n, device))
}

// ---------------------------------------------------------------------------------------------
// The training images' typical energy
// ---------------------------------------------------------------------------------------------

/// The file `nlm train` writes the training images' energies under the final model to.
pub const DATA_ENERGY_FILE: &str = "data_energy.json";

/// The training images' energies under a model, as written to [`DATA_ENERGY_FILE`] (fields in
/// the file's key order).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DataEnergy {
    /// How many images.
    pub images: usize,
    /// Their mean energy.
    pub mean: f64,
    /// Their median energy: the typical energy `nlm denoise --stop energy` stops at.
    pub median: f64,
    /// The model's update count.
    pub t_age: u64,
}

/// The training images' energies under `nlm` (x-space `x_train`, `[k, N]`) at update `t_age`.
pub fn data_energy(nlm: &Nlm, x_train: &[f32], t_age: u64, device: &Device) -> Result<DataEnergy> {
    let e = energies(nlm, x_train, device)?;
    let mean = e.iter().sum::<f64>() / e.len().max(1) as f64;
    Ok(DataEnergy {
        images: e.len(),
        mean,
        median: median(e),
        t_age,
    })
}

/// Where [`typical_energy`] took its number from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EnergySource {
    /// DIR/data_energy.json, written by `nlm train` for the final parameters.
    Run,
    /// The training images now (a t_age snapshot, the untrained control, or a run written
    /// before the file existed — the same number).
    Computed,
}

/// The training images' typical (median) energy under the loaded model, and where it came
/// from.
pub fn typical_energy(l: &LoadedNlm, device: &Device) -> Result<(f64, EnergySource)> {
    let path = l.rd.file(DATA_ENERGY_FILE);
    if path.is_file() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        let trained = !l.untrained && l.step > 0;
        if let (Some(t), Some(m)) = (v["t_age"].as_u64(), v["median"].as_f64())
            && trained
            && t == l.step
            && m.is_finite()
        {
            return Ok((m, EnergySource::Run));
        }
    }
    let e = data_energy(&l.nlm, &l.data.x_train, l.step, device)?;
    Ok((e.median, EnergySource::Computed))
}

// ---------------------------------------------------------------------------------------------
// The sampler of generate and eval
// ---------------------------------------------------------------------------------------------

/// How `generate` and `eval` sample the model.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerOptions {
    /// Langevin dynamics at the run's temperature, or replica exchange (`tempering`).
    pub sampler: GenSampler,
    /// `tempering`: temperatures on the ladder, T included.
    pub replicas: usize,
    /// `tempering`: the hottest temperature over T.
    pub t_max: f64,
    /// `tempering`: Langevin steps between exchange rounds.
    pub swap_every: usize,
}

impl Default for SamplerOptions {
    fn default() -> Self {
        Self {
            sampler: GenSampler::Langevin,
            replicas: 4,
            t_max: 2.0,
            swap_every: 10,
        }
    }
}

/// The sampler as a report states it: the ladder and the share of accepted exchanges for
/// `tempering`, nothing more for `langevin`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SamplerReport {
    /// The sampler.
    pub sampler: GenSampler,
    /// `tempering`: temperatures on the ladder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<usize>,
    /// `tempering`: the hottest temperature over T.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub t_max: Option<f64>,
    /// `tempering`: steps between exchange rounds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_every: Option<usize>,
    /// `tempering`: the share of accepted exchanges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_acceptance: Option<f64>,
}

impl SamplerOptions {
    /// Samples `steps` steps from `x0` with the chosen sampler ([`generate_from`] or
    /// [`generate_tempering`]); the share of accepted exchanges for `tempering`.
    pub fn run(
        &self,
        nlm: &Nlm,
        x0: Tensor<2>,
        steps: usize,
        dt: f64,
        record: &[usize],
        rng: &mut Rng,
    ) -> Result<(Frames, Tensor<2>, Option<f64>)> {
        match self.sampler {
            GenSampler::Langevin => {
                let (f, x) = generate_from(nlm, x0, steps, dt, record, rng)?;
                Ok((f, x, None))
            }
            GenSampler::Tempering => {
                let t = Tempering {
                    replicas: self.replicas,
                    t_max: self.t_max,
                    swap_every: self.swap_every,
                };
                let (f, x, rate) = generate_tempering(nlm, x0, steps, dt, record, rng, &t)?;
                Ok((f, x, Some(rate)))
            }
        }
    }

    /// The report of a run that accepted `swap_rate` of its exchanges.
    pub fn report(&self, swap_rate: Option<f64>) -> SamplerReport {
        let tempering = self.sampler == GenSampler::Tempering;
        SamplerReport {
            sampler: self.sampler,
            replicas: tempering.then_some(self.replicas),
            t_max: tempering.then_some(self.t_max),
            swap_every: tempering.then_some(self.swap_every),
            swap_acceptance: if tempering { swap_rate } else { None },
        }
    }

    /// Memory: `replicas` chains per chain with `tempering`.
    pub fn copies(&self) -> usize {
        match self.sampler {
            GenSampler::Langevin => 1,
            GenSampler::Tempering => self.replicas.max(1),
        }
    }
}

fn check_counts(chains: usize, steps: usize) -> Result<()> {
    if chains == 0 || chains > 1 << 20 {
        bail!("--chains must be between 1 and {}", 1 << 20);
    }
    if steps > 100_000_000 {
        bail!("--steps {steps} is absurdly large");
    }
    Ok(())
}

/// Refuses chain counts whose state (about a dozen `[chains, N]` arrays while stepping, plus the
/// recorded frames) would not fit in memory.
pub fn check_chain_memory(chains: usize, dim: usize, frames: usize) -> Result<()> {
    let per_frame = 4.0 * chains as f64 * dim as f64;
    crate::error::check_memory(
        &format!("{chains} chains of {dim} neurons with {frames} recorded frames"),
        per_frame * (12.0 + frames as f64),
    )
}

fn mean_f32(v: &[f32]) -> f64 {
    v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64
}

// ---------------------------------------------------------------------------------------------
// generate
// ---------------------------------------------------------------------------------------------

/// Options of [`generate`] (`nlm generate`).
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateOptions {
    /// Which parameters.
    pub model: ModelOptions,
    /// Seed of the chains' noise (default: the run's seed).
    pub seed: Option<u64>,
    /// Chains (images).
    pub chains: usize,
    /// Langevin steps (dt from the run's configuration).
    pub steps: usize,
    /// Also keep the states every this many steps (`frames`).
    pub snapshots: Option<usize>,
    /// Where the chains start.
    pub init: Init,
    /// The sampler.
    pub sampler: SamplerOptions,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            model: ModelOptions::default(),
            seed: None,
            chains: 100,
            steps: 10_000,
            snapshots: None,
            init: Init::Noise,
            sampler: SamplerOptions::default(),
        }
    }
}

/// The class shares of generated samples against the data's (labelled data only).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SampleClasses {
    /// The samples' share in each class (by their nearest training image).
    pub class_shares: Vec<f64>,
    /// The training images' share in each class.
    pub data_class_shares: Vec<f64>,
    /// Total variation distance of the two.
    pub class_tv: f64,
    /// How many data classes get under a quarter of their share.
    pub classes_starved: usize,
}

/// What [`generate`] reports; the samples themselves are in `frames` (not serialised).
#[derive(Clone, Debug, Serialize)]
pub struct Generated {
    /// The model's update count.
    pub t_age: u64,
    /// Chains.
    pub chains: usize,
    /// Steps.
    pub steps: usize,
    /// Where the chains started.
    pub init: Init,
    /// Mean pixel of the samples (display space, [-1, 1]).
    pub mean_pixel: f64,
    /// Mean pixel of the training images.
    pub data_mean_pixel: f64,
    /// The sampler.
    #[serde(flatten)]
    pub sampler: SamplerReport,
    /// Labelled data: the samples' classes against the data's.
    #[serde(flatten)]
    pub classes: Option<SampleClasses>,
    /// tanh(x) `[chains·N]` at each snapshot step and, last, at `steps`.
    #[serde(skip)]
    pub frames: Frames,
    /// The run directory and the images' size.
    #[serde(skip)]
    pub images: RunImages,
}

impl Generated {
    /// The final samples as an image grid of `cols` columns (see [`RunImages::grid`]).
    pub fn grid(&self, cols: usize) -> image::RgbImage {
        let rows: Vec<Vec<f32>> = self
            .samples()
            .chunks(self.images.dim().max(1))
            .map(<[f32]>::to_vec)
            .collect();
        self.images.grid(&rows, cols)
    }
    /// The final samples, tanh(x) `[chains, N]`.
    pub fn samples(&self) -> &[f32] {
        self.frames.last().map_or(&[], |(_, v)| v.as_slice())
    }
}

/// `nlm generate`: `chains` chains from `init`, `steps` steps of the chosen sampler.
pub fn generate(run_dir: &Path, o: &GenerateOptions, ctx: &Ctx) -> Result<Generated> {
    let device = &ctx.device;
    check_counts(o.chains, o.steps)?;
    let l = load(run_dir, &o.model, device)?;
    let dim = l.nlm.n();
    let frames = o.snapshots.map_or(0, |e| o.steps / e.max(1));
    check_chain_memory(o.chains * o.sampler.copies(), dim, frames)?;
    let mut rng = Rng::derived(o.seed.unwrap_or(l.cfg.seed), streams::GENERATE);
    let record: Vec<usize> = match o.snapshots {
        Some(0) => bail!("--snapshots must be >= 1"),
        Some(e) => (1..=o.steps / e).map(|i| i * e).collect(),
        None => Vec::new(),
    };
    let x0 = start_states(&l, o.init, o.chains, &mut rng, device)?;
    let bar = ctx
        .control
        .scope((o.steps * o.sampler.copies()) as u64, "generate");
    let (frames, _, swap_rate) = o
        .sampler
        .run(&l.nlm, x0, o.steps, l.cfg.dt, &record, &mut rng)?;
    drop(bar);
    let (_, last) = frames.last().context("no frames")?;
    let data_mean = mean_f32(&signed(&l.data.train.pixels));
    // Labelled data: the samples' classes by nearest training image against the data's.
    let train = signed(&l.data.train.pixels);
    let classes =
        class_share_metrics(last, &l.data.train, &train, device)?.map(|c| SampleClasses {
            class_shares: c.class_shares,
            data_class_shares: c.data_class_shares,
            class_tv: c.class_tv,
            classes_starved: c.classes_starved,
        });
    Ok(Generated {
        t_age: l.step,
        chains: o.chains,
        steps: o.steps,
        init: o.init,
        mean_pixel: mean_f32(last),
        data_mean_pixel: data_mean,
        sampler: o.sampler.report(swap_rate),
        classes,
        images: RunImages::of(&l),
        frames,
    })
}

// ---------------------------------------------------------------------------------------------
// eval
// ---------------------------------------------------------------------------------------------

/// Options of [`eval`] (`nlm eval`).
#[derive(Clone, Debug, PartialEq)]
pub struct EvalOptions {
    /// Which parameters.
    pub model: ModelOptions,
    /// Seed of the chains' noise (default: the run's seed).
    pub seed: Option<u64>,
    /// Generated images per set (and as many reference images, capped by the set sizes).
    pub n_gen: usize,
    /// Langevin steps before the samples are taken.
    pub gen_steps: usize,
    /// Also measure at these generation steps (`trace`).
    pub record_at: Vec<usize>,
    /// Also relax the final samples this many noise-free steps (`relaxed`); 0: no.
    pub relax_steps: usize,
    /// Where the chains start.
    pub init: Init,
    /// Independent sample sets of `n_gen` chains each (generated together).
    pub repeats: usize,
    /// The sampler.
    pub sampler: SamplerOptions,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            model: ModelOptions::default(),
            seed: None,
            n_gen: 1000,
            gen_steps: 10_000,
            record_at: Vec::new(),
            relax_steps: 0,
            init: Init::Noise,
            repeats: 1,
            sampler: SamplerOptions::default(),
        }
    }
}

/// The metrics against the held-out images.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HeldOutMetrics {
    /// The metric block.
    #[serde(flatten)]
    pub metrics: Metrics,
    /// The first held-out image compared (those after the chains' starting images with
    /// `init = held-out`).
    pub first_image: usize,
}

/// The class shares at a trace point.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceClasses {
    /// The samples' share in each class.
    pub class_shares: Vec<f64>,
    /// Total variation distance to the data's shares.
    pub class_tv: f64,
    /// How many data classes get under a quarter of their share.
    pub classes_starved: usize,
}

/// The metrics at one of `record_at`'s generation steps.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TracePoint {
    /// The metric block against the training images.
    #[serde(flatten)]
    pub metrics: Metrics,
    /// Generation steps done.
    pub gen_steps: usize,
    /// Labelled data: class shares.
    #[serde(flatten)]
    pub classes: Option<TraceClasses>,
}

/// The metrics of the samples relaxed without noise.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RelaxedMetrics {
    /// The metric block against the training images.
    #[serde(flatten)]
    pub metrics: Metrics,
    /// Noise-free steps.
    pub relax_steps: usize,
}

/// What [`eval`] reports (`eval.json`).
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    /// The paper's metrics of the samples against the training images.
    #[serde(flatten)]
    pub metrics: Metrics,
    /// Mean energy of the samples.
    pub energy_gen: f64,
    /// Mean energy of the training images.
    pub energy_data: f64,
    /// The thermal level N·T/2.
    pub energy_thermal: f64,
    /// Labelled data: the samples' classes (all sets together).
    #[serde(flatten)]
    pub classes: Option<ClassShares>,
    /// Labelled data, `init = data`: share of chains ending in their starting image's class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_stay_frac: Option<f64>,
    /// The metrics against the held-out images (where there are any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<HeldOutMetrics>,
    /// The metrics at the `record_at` steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<Vec<TracePoint>>,
    /// The metrics after `relax_steps` noise-free steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relaxed: Option<RelaxedMetrics>,
    /// `init` not noise: median distance of a sample to its own starting image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_dist: Option<f64>,
    /// `start_dist` over `ref_nn`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_ratio: Option<f64>,
    /// Whether the samples' polarity matches the data's.
    pub polarity_ok: bool,
    /// Where the chains started.
    pub init: Init,
    /// The sampler.
    #[serde(flatten)]
    pub sampler: SamplerReport,
    /// The model's update count.
    pub t_age: u64,
    /// Training images.
    pub n_data: usize,
    /// Samples per set.
    pub n_gen: usize,
    /// Sample sets.
    pub n_repeats: usize,
    /// Generation steps.
    pub gen_steps: usize,
    /// Seconds the generation took.
    pub generation_s: f64,
    /// Whether the parameters are the untrained control.
    pub untrained: bool,
    /// The sampling temperature.
    pub temperature: f64,
}

fn check_eval(o: &EvalOptions) -> Result<usize> {
    check_counts(o.n_gen, o.gen_steps)?;
    if o.repeats == 0 || o.repeats > 1000 {
        bail!("--repeats must be between 1 and 1000, got {}", o.repeats);
    }
    let chains = o.n_gen * o.repeats;
    if chains > 1 << 20 {
        bail!(
            "--n-gen × --repeats must be at most {}, got {chains}",
            1 << 20
        );
    }
    if o.relax_steps > 1_000_000_000 {
        bail!("--relax-steps must be at most 1e9");
    }
    Ok(chains)
}

/// `nlm eval`: the paper's metrics of `n_gen × repeats` samples against the training (and
/// held-out) images, with energies, class shares, and the optional trace and relaxation.
pub fn eval(run_dir: &Path, o: &EvalOptions, ctx: &Ctx) -> Result<EvalReport> {
    let device = &ctx.device;
    let chains = check_eval(o)?;
    let l = load(run_dir, &o.model, device)?;
    let dim = l.nlm.n();
    check_chain_memory(chains * o.sampler.copies(), dim, 0)?;
    let mut rng = Rng::derived(o.seed.unwrap_or(l.cfg.seed), streams::GENERATE);
    let t0 = std::time::Instant::now();
    let _bar = ctx.control.scope(
        (o.gen_steps * o.sampler.copies() + o.relax_steps) as u64,
        "eval",
    );
    let x0 = start_states(&l, o.init, chains, &mut rng, device)?;
    let (frames, x_final, swap_rate) =
        o.sampler
            .run(&l.nlm, x0, o.gen_steps, l.cfg.dt, &o.record_at, &mut rng)?;
    let generation_s = t0.elapsed().as_secs_f64();
    let train = signed(&l.data.train.pixels);
    // Chains started at held-out images are compared with the held-out images after those.
    let first_held = if o.init == Init::HeldOut {
        start_pixels(&l, o.init, chains)?.len() / dim
    } else {
        0
    };
    let held = signed(&l.data.held_out.pixels[first_held * dim..]);
    let (_, last) = frames.last().context("no samples")?;
    let metrics = metrics_repeated(&train, last, dim, o.repeats, device)?;
    // Mean energy of the samples and of the training images under the model: at temperature T
    // equilibrium samples sit near the thermal level N·T/2, and how far below it the data sit
    // says how much sharper than the model's equilibrium the data are.
    let mean_energy =
        |x: Tensor<2>| -> Result<f64> { Ok(to_vec_f32(&l.nlm.energy(x).mean())?[0] as f64) };
    let energy_gen = mean_energy(x_final.clone())?;
    let nd = l.data.train.len();
    let energy_data = mean_energy(tensor2_f32(l.data.x_train.clone(), nd, dim, device))?;
    let thermal = 0.5 * dim as f64 * l.nlm.temperature;
    // Labelled data: which classes the samples fall into, each labelled by its nearest
    // training image (all of the eval's samples, every set together).
    let classes = class_share_metrics(last, &l.data.train, &train, device)?;
    let stay = match (&classes, &l.data.train.labels) {
        (Some(_), Some(labels)) if o.init == Init::Data => {
            let starts = start_pixels(&l, o.init, chains)?.len() / dim;
            Some(class_stay_frac(last, &train, labels, starts, dim, device)?)
        }
        _ => None,
    };
    let test = if held.is_empty() {
        None
    } else {
        Some(HeldOutMetrics {
            metrics: metrics_repeated(&held, last, dim, o.repeats, device)?,
            first_image: first_held,
        })
    };
    let trace = if o.record_at.is_empty() {
        None
    } else {
        Some(trace_points(&l, &frames, &train, o.repeats, device)?)
    };
    let relaxed = if o.relax_steps > 0 {
        Some(relax_metrics(&l, x_final, &train, o, &mut rng, device)?)
    } else {
        None
    };
    let start_dist = if o.init == Init::Noise {
        None
    } else {
        Some(start_distance(last, start_pixels(&l, o.init, chains)?, dim))
    };
    let polarity_ok = eval_warnings(&metrics, energy_gen, thermal, l.cfg.dt);
    Ok(EvalReport {
        start_ratio: start_dist.map(|d| d / metrics.ref_nn),
        metrics,
        energy_gen,
        energy_data,
        energy_thermal: thermal,
        classes,
        class_stay_frac: stay,
        test,
        trace,
        relaxed,
        start_dist,
        polarity_ok,
        init: o.init,
        sampler: o.sampler.report(swap_rate),
        t_age: l.step,
        n_data: l.data.train.len(),
        n_gen: o.n_gen,
        n_repeats: o.repeats,
        gen_steps: o.gen_steps,
        generation_s,
        untrained: o.model.untrained,
        temperature: l.nlm.temperature,
    })
}

/// The metrics of the final states relaxed `o.relax_steps` noise-free steps.
fn relax_metrics(
    l: &LoadedNlm,
    x_final: Tensor<2>,
    train: &[f32],
    o: &EvalOptions,
    rng: &mut Rng,
    device: &Device,
) -> Result<RelaxedMetrics> {
    let x = langevin(
        &l.nlm,
        x_final,
        o.relax_steps,
        l.cfg.dt,
        false,
        rng,
        &[],
        &mut |_, _| Ok(()),
    )?;
    let relaxed = to_vec_f32(&fast::tanh(x))?;
    Ok(RelaxedMetrics {
        metrics: metrics_repeated(train, &relaxed, l.nlm.n(), o.repeats, device)?,
        relax_steps: o.relax_steps,
    })
}

/// Warns when the samples' polarity departs from the data's (and says whether it matches) or
/// when their mean energy shows unstable chains.
fn eval_warnings(m: &Metrics, energy_gen: f64, thermal: f64, dt: f64) -> bool {
    let warning = polarity_warning(
        "the samples",
        m.mean_pixel,
        m.data_mean_pixel,
        m.inverted_frac,
    );
    if let Some(w) = &warning {
        log::warn!("{w}");
    }
    if energy_gen.is_nan() || energy_gen > UNSTABLE_ENERGY * thermal {
        log::warn!(
            "the samples' mean energy {energy_gen:.3e} is {:.0}× the thermal level N·T/2 = \
             {thermal:.0}: the Langevin chains are unstable at dt = {dt} (a smaller dt, or \
             retraining with `--set stiffness_cap=1`, keeps them stable)",
            energy_gen / thermal,
        );
    }
    warning.is_none()
}

/// The metrics (and class shares) of every recorded frame.
fn trace_points(
    l: &LoadedNlm,
    frames: &Frames,
    train: &[f32],
    repeats: usize,
    device: &Device,
) -> Result<Vec<TracePoint>> {
    let dim = l.nlm.n();
    frames
        .iter()
        .map(|(k, f)| {
            Ok(TracePoint {
                metrics: metrics_repeated(train, f, dim, repeats, device)?,
                gen_steps: *k,
                classes: class_share_metrics(f, &l.data.train, train, device)?.map(|c| {
                    TraceClasses {
                        class_shares: c.class_shares,
                        class_tv: c.class_tv,
                        classes_starved: c.classes_starved,
                    }
                }),
            })
        })
        .collect()
}

/// Median distance of each sample (`[chains, dim]`, display space) to its own starting image
/// (chain c started at image c mod their count; `start_px` in pixel space).
fn start_distance(samples: &[f32], start_px: &[f32], dim: usize) -> f64 {
    let starts = signed(start_px);
    let d: Vec<f64> = samples
        .chunks(dim)
        .zip(starts.chunks(dim).cycle())
        .map(|(g, s)| {
            g.iter()
                .zip(s)
                .map(|(&a, &b)| ((a - b) as f64).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    median(d)
}

// ---------------------------------------------------------------------------------------------
// explore
// ---------------------------------------------------------------------------------------------

/// Options of [`explore`] (`nlm explore`).
#[derive(Clone, Debug, PartialEq)]
pub struct ExploreOptions {
    /// Which parameters.
    pub model: ModelOptions,
    /// Seed of the chain's noise (default: the run's seed).
    pub seed: Option<u64>,
    /// Steps of the one chain.
    pub steps: usize,
    /// Snapshot period (steps).
    pub every: usize,
    /// Trajectory sampling period (steps) for the PCA projection.
    pub record_every: usize,
    /// Data images defining the principal components.
    pub pca_images: usize,
}

impl Default for ExploreOptions {
    fn default() -> Self {
        Self {
            model: ModelOptions::default(),
            seed: None,
            steps: 30_000,
            every: 1500,
            record_every: 20,
            pca_images: 400,
        }
    }
}

/// What [`explore`] reports (`explore.json`), with the snapshots and the projections to draw.
#[derive(Clone, Debug, Serialize)]
pub struct Explored {
    /// The model's update count.
    pub t_age: u64,
    /// Steps of the chain.
    pub steps: usize,
    /// The steps of the snapshots.
    pub snapshot_steps: Vec<usize>,
    /// Labelled data: each snapshot's class by 5-NN among the training images.
    pub snapshot_classes: Option<Vec<u8>>,
    /// Labelled data: the classes visited.
    pub classes_visited: Option<Vec<u8>>,
    /// Labelled data: changes of class between consecutive snapshots.
    pub class_switches: Option<usize>,
    /// tanh(x) `[N]` at each snapshot step.
    #[serde(skip)]
    pub snapshots: Vec<Vec<f32>>,
    /// The recorded steps of the trajectory.
    #[serde(skip)]
    pub trajectory_steps: Vec<usize>,
    /// The trajectory projected on the data's first three principal axes.
    #[serde(skip)]
    pub trajectory: Vec<Vec<f64>>,
    /// The PCA images projected on the same axes.
    #[serde(skip)]
    pub data_projection: Vec<Vec<f64>>,
    /// Their labels (labelled data).
    #[serde(skip)]
    pub data_labels: Option<Vec<u8>>,
    /// The run directory and the images' size.
    #[serde(skip)]
    pub images: RunImages,
}

/// `nlm explore`: one long chain from N(0, 1); its snapshots, their classes, and the trajectory
/// over the data's principal components.
pub fn explore(run_dir: &Path, o: &ExploreOptions, ctx: &Ctx) -> Result<Explored> {
    let device = &ctx.device;
    check_counts(1, o.steps)?;
    if o.every == 0 || o.record_every == 0 || o.pca_images == 0 {
        bail!("--every, --record-every and --pca-images must be >= 1");
    }
    let l = load(run_dir, &o.model, device)?;
    let dim = l.nlm.n();
    let mut rng = Rng::derived(o.seed.unwrap_or(l.cfg.seed), streams::GENERATE);
    let mut record: Vec<usize> = (1..=o.steps / o.record_every)
        .map(|i| i * o.record_every)
        .collect();
    record.extend((1..=o.steps / o.every).map(|i| i * o.every));
    record.sort_unstable();
    record.dedup();
    let x0 = crate::models::nlm::gaussian(&mut rng, 1, dim, 1.0, device);
    let mut traj_at = Vec::new();
    let mut traj_frames = Vec::new();
    let bar = ctx.control.scope(o.steps as u64, "explore");
    langevin(
        &l.nlm,
        x0,
        o.steps,
        l.cfg.dt,
        true,
        &mut rng,
        &record,
        &mut |k, x| {
            traj_at.push(k);
            traj_frames.push(fast::tanh(x.clone()));
            Ok(())
        },
    )?;
    drop(bar);
    // The recorded states come back in one copy after the run.
    let traj = crate::transfer::download_all(&traj_frames)?;
    let is_snap = |k: usize| k > 0 && k.is_multiple_of(o.every);
    let (snapshot_steps, snapshots): (Vec<usize>, Vec<Vec<f32>>) = traj_at
        .iter()
        .zip(&traj)
        .filter(|(k, _)| is_snap(**k))
        .map(|(k, v)| (*k, v.clone()))
        .unzip();
    // PCA of the first data images (display space).
    let train = signed(&l.data.train.pixels);
    let np = o.pca_images.min(l.data.train.len());
    let mut prng = Rng::derived(l.cfg.seed, streams::GENERATE + 100);
    let (mean, axes) = pca(&train[..np * dim], dim, 3, &mut prng);
    let data_projection: Vec<Vec<f64>> = train[..np * dim]
        .chunks(dim)
        .map(|r| project(r, &mean, &axes))
        .collect();
    let trajectory: Vec<Vec<f64>> = traj.iter().map(|v| project(v, &mean, &axes)).collect();
    // Classes of the snapshots by 5-NN among the training images.
    let snap_flat: Vec<f32> = snapshots.iter().flatten().copied().collect();
    let classes = match &l.data.train.labels {
        Some(lab) if !snap_flat.is_empty() => {
            Some(knn_classes(&snap_flat, &train, lab, dim, 5, device)?)
        }
        _ => None,
    };
    let visited = classes.as_ref().map(|c| {
        let mut v = c.clone();
        v.sort_unstable();
        v.dedup();
        v
    });
    let switches = classes
        .as_ref()
        .map(|c| c.windows(2).filter(|w| w[0] != w[1]).count());
    Ok(Explored {
        t_age: l.step,
        steps: o.steps,
        snapshot_steps,
        snapshot_classes: classes,
        classes_visited: visited,
        class_switches: switches,
        snapshots,
        trajectory_steps: traj_at,
        trajectory,
        data_projection,
        data_labels: l.data.train.labels.as_ref().map(|lab| lab[..np].to_vec()),
        images: RunImages::of(&l),
    })
}

// ---------------------------------------------------------------------------------------------
// denoise
// ---------------------------------------------------------------------------------------------

/// Options of [`denoise`] (`nlm denoise`).
#[derive(Clone, Debug, PartialEq)]
pub struct DenoiseOptions {
    /// Which parameters.
    pub model: ModelOptions,
    /// Seed of the corruption (default: the run's seed).
    pub seed: Option<u64>,
    /// Clean input images (PNG, the model's size).
    pub input: Vec<PathBuf>,
    /// Held-out images by index.
    pub test_index: Vec<usize>,
    /// The first K held-out images.
    pub n_test: Option<usize>,
    /// The corruption.
    pub corruption: Corruption,
    /// Noise-free relaxation steps (at most, with `Stop::Energy`).
    pub steps: usize,
    /// Where each image's relaxation stops.
    pub stop: Stop,
}

impl Default for DenoiseOptions {
    fn default() -> Self {
        Self {
            model: ModelOptions::default(),
            seed: None,
            input: Vec::new(),
            test_index: Vec::new(),
            n_test: None,
            corruption: Corruption::Uniform(0.25),
            steps: 450,
            stop: Stop::Energy,
        }
    }
}

/// One denoised image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DenoisedImage {
    /// Its file, or `held-out #I`.
    pub source: String,
    /// MSE of the corrupted image to the clean one.
    pub mse_corrupted: f64,
    /// MSE of the restored image to the clean one.
    pub mse_restored: f64,
    /// Whether the restored image's nearest clean image is its own.
    pub nearest_correct: bool,
    /// The step it stopped at.
    pub stop_step: usize,
    /// Whether it reached the stopping energy.
    pub stop_reached: bool,
}

/// What [`denoise`] reports (`denoise.json` less its file names), with the images to draw.
#[derive(Clone, Debug, Serialize)]
pub struct DenoiseReport {
    /// The model's update count.
    pub t_age: u64,
    /// Whether the parameters are the untrained control.
    pub untrained: bool,
    /// Images denoised.
    pub images: usize,
    /// The corruption (`uniform:P`, `gauss:S` or `mask:P`).
    pub corrupt: String,
    /// Steps (at most).
    pub steps: usize,
    /// Mean MSE of the corrupted images.
    pub mse_corrupted: f64,
    /// Mean MSE of the restored images.
    pub mse_restored: f64,
    /// `mse_restored / mse_corrupted`.
    pub mse_ratio: f64,
    /// Mean MSE of the training images' mean state to the clean images (a memoryless baseline).
    pub mse_mean_image: f64,
    /// `mse_mean_image / mse_corrupted`.
    pub mean_image_ratio: f64,
    /// Where the relaxation stopped.
    pub stop: Stop,
    /// The stopping energy (`Stop::Energy`).
    pub stop_energy: Option<f64>,
    /// Where it came from.
    pub stop_energy_source: Option<EnergySource>,
    /// Mean stopping step.
    pub stop_step_mean: f64,
    /// Median stopping step.
    pub stop_step_median: f64,
    /// Share of images that reached the stopping energy.
    pub stop_reached_frac: f64,
    /// The step of the lowest mean MSE.
    pub best_step: usize,
    /// That MSE.
    pub best_mse: f64,
    /// `best_mse / mse_corrupted`.
    pub best_ratio: f64,
    /// Share of restored images nearest their own clean image.
    pub nearest_correct_frac: f64,
    /// Whether the mean energy never rose.
    pub energy_monotone: bool,
    /// The mean energy at step 0.
    pub energy_initial: Option<f64>,
    /// The mean energy at the last step.
    pub energy_final: Option<f64>,
    /// The mean energy per step.
    pub energy: Vec<f64>,
    /// The mean MSE to the clean images per step.
    pub mse: Vec<f64>,
    /// Each image.
    pub per_image: Vec<DenoisedImage>,
    /// Clean images `[images, N]`, display space.
    #[serde(skip)]
    pub clean: Vec<f32>,
    /// Corrupted images, display space.
    #[serde(skip)]
    pub corrupted: Vec<f32>,
    /// Restored images, display space.
    #[serde(skip)]
    pub restored: Vec<f32>,
    /// The run directory and the images' size.
    #[serde(skip)]
    pub images_of: RunImages,
}

/// The clean images (pixels in [0, 1]) named by `o` and their names.
fn denoise_inputs(l: &LoadedNlm, o: &DenoiseOptions) -> Result<(Vec<f32>, Vec<String>)> {
    let (rows, cols) = (l.data.train.rows, l.data.train.cols);
    let mut pixels: Vec<f32> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for p in &o.input {
        let mut w = Vec::new();
        let (h, wd, px) = read_grey_image(p, &mut w)?;
        for m in w {
            log::warn!("{m}");
        }
        if (h, wd) != (rows, cols) {
            bail!(
                "{} is {h}×{wd} pixels (rows × columns) but the model was trained on {rows}×{cols} images",
                p.display()
            );
        }
        pixels.extend(px.iter().map(|&v| v as f32));
        names.push(p.display().to_string());
    }
    // The run's preprocessing: a binarised model is given binarised clean images.
    if l.cfg.binarize {
        binarize_pixels(&mut pixels);
    }
    let held = l.data.held_out.len();
    for &i in &o.test_index {
        if i >= held {
            bail!("--test-index {i} out of range: the held-out set has {held} images");
        }
    }
    let mut idx: Vec<usize> = o.test_index.clone();
    if let Some(k) = o.n_test {
        if k > 0 && held == 0 {
            bail!(
                "--n-test {k}: this run holds no images out (all {} were trained on); give \
                 --input PNG… or train with more images than `n_data`, or a `held_out` share \
                 (`--set held_out=0.1`)",
                l.data.train.len()
            );
        }
        if k > held {
            log::warn!("--n-test {k}: the held-out set has only {held} images; denoising those");
        }
        idx.extend(0..k.min(held));
    }
    for &i in &idx {
        pixels.extend_from_slice(l.data.held_out.image(i));
        names.push(format!("held-out #{i}"));
    }
    if pixels.is_empty() {
        bail!("nothing to denoise: give --input PNG…, --test-index I… or --n-test K");
    }
    Ok((pixels, names))
}

/// The mean squared error of each image of `a` to the same image of `b` (`[k, dim]`).
fn mse_per_image(a: &[f32], b: &[f32], dim: usize) -> Vec<f64> {
    a.chunks(dim)
        .zip(b.chunks(dim))
        .map(|(x, y)| {
            x.iter()
                .zip(y)
                .map(|(p, q)| ((p - q) as f64).powi(2))
                .sum::<f64>()
                / dim as f64
        })
        .collect()
}

/// The training images' mean state tanh(x) through the run's own pixel map, `[N]`.
fn mean_train_state(l: &LoadedNlm, dim: usize) -> Vec<f32> {
    let mut train_px = l.data.train.pixels.clone();
    if l.cfg.binarize {
        binarize_pixels(&mut train_px);
    }
    let train_state: Vec<f32> = atanh_map(&train_px, l.cfg.eps)
        .iter()
        .map(|v| v.tanh())
        .collect();
    mean_image(&train_state, dim)
        .iter()
        .map(|&v| v as f32)
        .collect()
}

/// `nlm denoise`: corrupts the given clean images and relaxes them without noise.
pub fn denoise(run_dir: &Path, o: &DenoiseOptions, ctx: &Ctx) -> Result<DenoiseReport> {
    let device = &ctx.device;
    check_counts(1, o.steps)?;
    let l = load(run_dir, &o.model, device)?;
    let dim = l.nlm.n();
    let (pixels, names) = denoise_inputs(&l, o)?;
    let x = atanh_map(&pixels, l.cfg.eps);
    let (stop_energy, stop_source) = match o.stop {
        Stop::Minimum => (None, None),
        Stop::Energy => {
            let (e, src) = typical_energy(&l, device)?;
            (Some(e), Some(src))
        }
    };
    let mut rng = Rng::derived(o.seed.unwrap_or(l.cfg.seed), streams::CORRUPT);
    let bar = ctx.control.scope(o.steps as u64, "denoise");
    let d = relax_denoise(
        &l.nlm,
        &x,
        o.corruption,
        o.steps,
        l.cfg.dt,
        stop_energy,
        &mut rng,
        device,
    )?;
    drop(bar);
    let k = names.len();
    let mc = mse_per_image(&d.corrupted, &d.clean, dim);
    let mr = mse_per_image(&d.restored, &d.clean, dim);
    // The baseline a restorer with no memory of single images reaches: every image replaced by
    // the training images' mean state (through the run's own pixel map). On images that vary
    // little (low-contrast grey) it beats the corrupted input by itself.
    let mm = mse_per_image(&mean_train_state(&l, dim).repeat(k), &d.clean, dim);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let monotone = d
        .energy
        .windows(2)
        .all(|w| w[1] <= w[0] + 1e-6 * w[0].abs().max(1e-12));
    let (best_step, best_mse) = d
        .mse
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, &m)| (i, m))
        .unwrap_or((0, f64::NAN));
    let stop_steps: Vec<f64> = d.stop_step.iter().map(|&s| s as f64).collect();
    let per_image = names
        .into_iter()
        .enumerate()
        .map(|(i, source)| DenoisedImage {
            source,
            mse_corrupted: mc[i],
            mse_restored: mr[i],
            nearest_correct: d.nearest_correct[i],
            stop_step: d.stop_step[i],
            stop_reached: d.stop_reached[i],
        })
        .collect();
    Ok(DenoiseReport {
        t_age: l.step,
        untrained: o.model.untrained,
        images: k,
        corrupt: o.corruption.to_string(),
        steps: o.steps,
        mse_corrupted: mean(&mc),
        mse_restored: mean(&mr),
        mse_ratio: mean(&mr) / mean(&mc),
        mse_mean_image: mean(&mm),
        mean_image_ratio: mean(&mm) / mean(&mc),
        stop: o.stop,
        stop_energy,
        stop_energy_source: stop_source,
        stop_step_mean: mean(&stop_steps),
        stop_step_median: median(stop_steps),
        stop_reached_frac: d.stop_reached.iter().filter(|&&r| r).count() as f64 / k as f64,
        best_step,
        best_mse,
        best_ratio: best_mse / mean(&mc),
        nearest_correct_frac: d.nearest_correct.iter().filter(|&&c| c).count() as f64 / k as f64,
        energy_monotone: monotone,
        energy_initial: d.energy.first().copied(),
        energy_final: d.energy.last().copied(),
        energy: d.energy,
        mse: d.mse,
        per_image,
        clean: d.clean,
        corrupted: d.corrupted,
        restored: d.restored,
        images_of: RunImages::of(&l),
    })
}

// ---------------------------------------------------------------------------------------------
// summarize (over several eval.json files)
// ---------------------------------------------------------------------------------------------

/// The quantity [`summarize`] groups eval.json files by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SummaryAxis {
    /// Training images (`n_data`).
    #[default]
    NData,
    /// Updates done (`t_age`).
    TAge,
}

impl SummaryAxis {
    /// The eval.json key.
    pub fn key(self) -> &'static str {
        match self {
            Self::NData => "n_data",
            Self::TAge => "t_age",
        }
    }
}

impl std::str::FromStr for SummaryAxis {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "n_data" => Ok(Self::NData),
            "t_age" => Ok(Self::TAge),
            _ => bail!("--x must be n_data or t_age, got `{s}`"),
        }
    }
}

/// Options of [`summarize`] (`nlm summarize`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SummarizeOptions {
    /// The horizontal axis.
    pub x: SummaryAxis,
}

/// Over what a row's standard deviations are taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SdOver {
    /// The files (runs) sharing the x value.
    Runs,
    /// The sample sets of a lone file made with `eval --repeats`.
    Sets,
}

/// One x value of the summary: means and SDs over its files (or its file's sample sets).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SummaryRow {
    /// The x value (`x = n_data`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n_data: Option<f64>,
    /// The x value (`x = t_age`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub t_age: Option<f64>,
    /// Files with this x.
    pub runs: usize,
    /// Over what the SDs are taken.
    pub sd_over: SdOver,
    /// Mean E_AAI.
    pub e_aai: f64,
    /// Its SD.
    pub e_aai_sd: f64,
    /// Mean Acc_S.
    pub acc_s: f64,
    /// Its SD.
    pub acc_s_sd: f64,
    /// Mean Acc_T.
    pub acc_t: f64,
    /// Its SD.
    pub acc_t_sd: f64,
    /// Mean E².
    pub e2: f64,
    /// Its SD.
    pub e2_sd: f64,
    /// Mean nearest-neighbour ratio.
    pub nn_ratio: f64,
    /// Its SD.
    pub nn_ratio_sd: f64,
    /// Sample sets of the lone file (`sd_over = sets`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sets: Option<u64>,
}

impl SummaryRow {
    /// The x value.
    pub fn x(&self) -> f64 {
        self.n_data.or(self.t_age).unwrap_or(f64::NAN)
    }
}

/// A file's `trace` (eval --record-at) for the curves against generation time.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryTrace {
    /// `<x> <value>`: the file's legend entry.
    pub label: String,
    /// Generation steps of the trace points.
    pub gen_steps: Vec<f64>,
    /// E_AAI at them.
    pub e_aai: Vec<f64>,
    /// E² at them.
    pub e2: Vec<f64>,
}

/// What [`summarize`] reports (the JSON table), with the files' traces to draw.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The horizontal axis.
    pub x: SummaryAxis,
    /// One row per x value, ascending.
    pub table: Vec<SummaryRow>,
    /// Each file's trace, where it has one (in the files' order).
    #[serde(skip)]
    pub traces: Vec<Option<SummaryTrace>>,
}

/// `nlm summarize`: E_AAI, Acc_S, Acc_T, E² and the NN ratio of eval.json files, mean ± sd
/// over files sharing an x value, or over the sample sets of a lone file made with
/// `eval --repeats` (`sd_over` says which); and each file's trace.
pub fn summarize(evals: &[PathBuf], o: &SummarizeOptions) -> Result<Summary> {
    let xk = o.x.key();
    let mut evs = Vec::new();
    for p in evals {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        let v: Value =
            serde_json::from_str(&text).with_context(|| format!("{} is not JSON", p.display()))?;
        if !v["e_aai"].is_number() || !v[xk].is_number() {
            bail!(
                "{} is not an nlm eval.json (needs e_aai and {xk})",
                p.display()
            );
        }
        evs.push(v);
    }
    // Group by x.
    let mut xs: Vec<f64> = evs.iter().filter_map(|v| v[xk].as_f64()).collect();
    xs.sort_by(|p, q| p.total_cmp(q));
    xs.dedup();
    let table = xs
        .iter()
        .map(|&x| {
            let group: Vec<&Value> = evs.iter().filter(|v| v[xk].as_f64() == Some(x)).collect();
            summary_row(o.x, x, &group)
        })
        .collect();
    let traces = evs
        .iter()
        .map(|v| {
            let tr = v["trace"].as_array()?;
            let col =
                |key: &str| -> Vec<f64> { tr.iter().filter_map(|t| t[key].as_f64()).collect() };
            Some(SummaryTrace {
                label: format!("{xk} {}", v[xk]),
                gen_steps: col("gen_steps"),
                e_aai: col("e_aai"),
                e2: col("e2"),
            })
        })
        .collect();
    Ok(Summary {
        x: o.x,
        table,
        traces,
    })
}

/// The row of the files `group` at x value `x`.
fn summary_row(axis: SummaryAxis, x: f64, group: &[&Value]) -> SummaryRow {
    // One file made with `eval --repeats`: its own spread over the sample sets; else the
    // spread over the files (runs).
    let sets = match group {
        [v] => v["n_repeats"].as_u64().filter(|&r| r > 1),
        _ => None,
    };
    let stat = |k: &str| -> (f64, f64) {
        let vals: Vec<f64> = group.iter().filter_map(|v| v[k].as_f64()).collect();
        let (m, sd) = mean_sample_sd(&vals);
        match sets {
            Some(_) => (m, group[0][format!("{k}_sd")].as_f64().unwrap_or(f64::NAN)),
            None => (m, sd),
        }
    };
    let (e_aai, e_aai_sd) = stat("e_aai");
    let (acc_s, acc_s_sd) = stat("acc_s");
    let (acc_t, acc_t_sd) = stat("acc_t");
    let (e2, e2_sd) = stat("e2");
    let (nn_ratio, nn_ratio_sd) = stat("nn_ratio");
    SummaryRow {
        n_data: (axis == SummaryAxis::NData).then_some(x),
        t_age: (axis == SummaryAxis::TAge).then_some(x),
        runs: group.len(),
        sd_over: if sets.is_some() {
            SdOver::Sets
        } else {
            SdOver::Runs
        },
        e_aai,
        e_aai_sd,
        acc_s,
        acc_s_sd,
        acc_t,
        acc_t_sd,
        e2,
        e2_sd,
        nn_ratio,
        nn_ratio_sd,
        sets,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use serde_json::json;

    use super::*;
    use crate::api::family::{RunPlace, train};

    /// One tiny run (30 updates of 32 chains on 120 bundled digits, its held-out images after
    /// them) shared by the tests of this module.
    fn tiny_run() -> Result<&'static Path> {
        static RUN: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
        let run = RUN.get_or_init(|| {
            let dir =
                std::env::temp_dir().join(format!("attractor-api-nlm-{}", std::process::id()));
            let mut cfg = NlmConfig::new();
            cfg.updates = 30;
            cfg.chains = 32;
            cfg.batch = 32;
            cfg.n_data = 120;
            cfg.pool = 2;
            cfg.polarity_chains = 0;
            let place = RunPlace {
                run_dir: Some(dir.clone()),
                overwrite: true,
            };
            let ctx = Ctx::cpu().map_err(|e| format!("{e:#}"))?;
            train(cfg, &place, &ctx).map_err(|e| format!("{e:#}"))?;
            Ok(dir)
        });
        match run {
            Ok(p) => Ok(p.as_path()),
            Err(e) => bail!("training the tiny run failed: {e}"),
        }
    }

    #[test]
    fn generate_reports_samples_and_classes() -> Result<()> {
        let run = tiny_run()?;
        let ctx = Ctx::cpu()?;
        let o = GenerateOptions {
            chains: 6,
            steps: 20,
            snapshots: Some(10),
            seed: Some(3),
            ..GenerateOptions::default()
        };
        let g = generate(run, &o, &ctx)?;
        assert_eq!((g.t_age, g.chains, g.steps), (30, 6, 20));
        assert_eq!(
            g.frames.iter().map(|f| f.0).collect::<Vec<_>>(),
            vec![10, 20]
        );
        assert_eq!(g.samples().len(), 6 * g.images.dim());
        assert!(g.samples().iter().all(|v| v.abs() <= 1.0));
        let c = g.classes.as_ref().context("the digits are labelled")?;
        assert!((c.class_shares.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        // The same seed gives the same samples; the JSON has the sampler's name, no ladder.
        assert_eq!(generate(run, &o, &ctx)?.samples(), g.samples());
        let v = serde_json::to_value(&g)?;
        assert_eq!(
            (v["sampler"].clone(), v["init"].clone()),
            (json!("langevin"), json!("noise"))
        );
        assert!(v.get("replicas").is_none() && v.get("frames").is_none());
        // Arguments are checked before the run is opened.
        let err = generate(
            Path::new("/nonexistent"),
            &GenerateOptions { chains: 0, ..o },
            &ctx,
        )
        .err()
        .context("accepted 0 chains")?;
        assert!(
            format!("{err}").contains("--chains must be between 1"),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn eval_reports_the_papers_metrics() -> Result<()> {
        let run = tiny_run()?;
        let ctx = Ctx::cpu()?;
        let o = EvalOptions {
            n_gen: 16,
            gen_steps: 10,
            record_at: vec![5],
            relax_steps: 3,
            repeats: 2,
            init: Init::Data,
            seed: Some(1),
            ..EvalOptions::default()
        };
        let r = eval(run, &o, &ctx)?;
        assert_eq!((r.n_gen, r.n_repeats, r.t_age, r.n_data), (16, 2, 30, 120));
        assert!((0.0..=0.5).contains(&r.metrics.e_aai));
        assert_eq!(r.metrics.repeats.as_ref().map(Vec::len), Some(2));
        assert!(r.metrics.e_aai_sd.is_some());
        assert!(r.test.is_some() && r.class_stay_frac.is_some() && r.start_dist.is_some());
        assert_eq!(r.trace.as_ref().map(|t| t[0].gen_steps), Some(5));
        assert_eq!(r.relaxed.as_ref().map(|m| m.relax_steps), Some(3));
        assert!((r.energy_thermal - 0.5 * (14 * 14) as f64 * r.temperature).abs() < 1e-9);
        let v = serde_json::to_value(&r)?;
        for k in [
            "e_aai",
            "e_aai_sd",
            "class_tv",
            "classes",
            "polarity_ok",
            "generation_s",
        ] {
            assert!(v.get(k).is_some(), "no {k} in {v}");
        }
        assert_eq!(v["init"], "data");
        assert_eq!(v["test"]["first_image"], 0);
        let err = eval(run, &EvalOptions { repeats: 0, ..o }, &ctx)
            .err()
            .context("accepted 0 repeats")?;
        assert!(format!("{err}").contains("--repeats must be between 1 and 1000"));
        Ok(())
    }

    #[test]
    fn explore_reports_snapshots_and_trajectory() -> Result<()> {
        let run = tiny_run()?;
        let ctx = Ctx::cpu()?;
        let o = ExploreOptions {
            steps: 40,
            every: 20,
            record_every: 5,
            pca_images: 50,
            ..ExploreOptions::default()
        };
        let e = explore(run, &o, &ctx)?;
        assert_eq!(e.snapshot_steps, vec![20, 40]);
        assert_eq!(e.snapshots.len(), 2);
        assert_eq!(e.trajectory.len(), e.trajectory_steps.len());
        assert!(e.trajectory.len() >= 8 && e.trajectory.iter().all(|p| p.len() == 3));
        assert_eq!(e.data_projection.len(), 50);
        assert_eq!(e.snapshot_classes.as_ref().map(Vec::len), Some(2));
        let v = serde_json::to_value(&e)?;
        assert_eq!(v.as_object().map(|o| o.len()), Some(6), "{v}");
        Ok(())
    }

    #[test]
    fn denoise_restores_held_out_images() -> Result<()> {
        let run = tiny_run()?;
        let ctx = Ctx::cpu()?;
        let o = DenoiseOptions {
            test_index: vec![0, 3],
            n_test: Some(1),
            steps: 30,
            ..DenoiseOptions::default()
        };
        let d = denoise(run, &o, &ctx)?;
        assert_eq!(d.images, 3);
        assert_eq!(d.corrupt, "uniform:0.25");
        assert_eq!(d.clean.len(), 3 * d.images_of.dim());
        assert_eq!(d.energy.len(), d.mse.len());
        assert_eq!(d.stop_energy_source, Some(EnergySource::Run));
        assert_eq!(d.per_image[1].source, "held-out #3");
        let v = serde_json::to_value(&d)?;
        assert_eq!(
            (v["stop"].clone(), v["stop_energy_source"].clone()),
            (json!("energy"), json!("run"))
        );
        // The typical energy written by training is the one computed now.
        let l = load(run, &ModelOptions::default(), &ctx.device)?;
        let computed = data_energy(&l.nlm, &l.data.x_train, l.step, &ctx.device)?;
        assert!(
            (d.stop_energy.unwrap_or(f64::NAN) - computed.median).abs()
                < 1e-6 * computed.median.abs()
        );
        let err = denoise(
            run,
            &DenoiseOptions {
                test_index: vec![],
                n_test: None,
                ..o
            },
            &ctx,
        )
        .err()
        .context("denoised nothing")?;
        assert!(format!("{err}").contains("nothing to denoise"), "{err}");
        Ok(())
    }

    #[test]
    fn summarize_spread_over_runs_or_sets() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("attractor-summarize-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let write = |name: &str, v: Value| -> Result<PathBuf> {
            let p = dir.join(name);
            std::fs::write(&p, v.to_string())?;
            Ok(p)
        };
        let ev = |n: u64, e: f64, extra: Value| {
            let mut v = json!({"n_data": n, "e_aai": e, "acc_s": 0.9, "acc_t": 0.6,
                               "e2": 0.001, "nn_ratio": 1.5, "n_repeats": 1});
            for (k, x) in extra.as_object().into_iter().flatten() {
                v[k] = x.clone();
            }
            v
        };
        let trace = json!({"trace": [{"gen_steps": 10, "e_aai": 0.3, "e2": 0.01}]});
        let evals = vec![
            write("a.json", ev(10, 0.10, json!({})))?,
            write("b.json", ev(10, 0.14, trace))?,
            write(
                "c.json",
                ev(
                    100,
                    0.05,
                    json!({"n_repeats": 4, "e_aai_sd": 0.007, "acc_s_sd": 0.01,
                           "acc_t_sd": 0.02, "e2_sd": 0.0001, "nn_ratio_sd": 0.03}),
                ),
            )?,
        ];
        let s = summarize(&evals, &SummarizeOptions::default())?;
        let t = &s.table;
        // Two runs at n_data 10: mean and sample sd over the runs (as over the sets of a
        // `--repeats` eval: one convention in the table).
        assert_eq!((t[0].runs, t[0].sd_over), (2, SdOver::Runs));
        assert!((t[0].e_aai - 0.12).abs() < 1e-12);
        assert!(
            (t[0].e_aai_sd - 0.02 * 2f64.sqrt()).abs() < 1e-12,
            "{}",
            t[0].e_aai_sd
        );
        // One file with four sample sets: its own spread.
        assert_eq!(
            (t[1].sd_over, t[1].sets, t[1].e_aai_sd),
            (SdOver::Sets, Some(4), 0.007)
        );
        assert_eq!(t[1].x(), 100.0);
        // The trace of the second file, labelled by its x.
        assert!(s.traces[0].is_none() && s.traces[2].is_none());
        let tr = s.traces[1].as_ref().context("trace")?;
        assert_eq!(
            (tr.label.as_str(), tr.gen_steps.as_slice()),
            ("n_data 10", &[10.0][..])
        );
        // The JSON table names the x by its key.
        let v = serde_json::to_value(&s)?;
        assert_eq!(
            (v["x"].clone(), v["table"][0]["n_data"].clone()),
            (json!("n_data"), json!(10.0))
        );
        assert!(v["table"][0].get("t_age").is_none() && v["table"][0].get("sets").is_none());
        // A file that is not an eval.json is refused by name; an unknown axis by its name.
        let bad = write("bad.json", json!({"x": 1}))?;
        let err = summarize(&[bad], &SummarizeOptions::default())
            .err()
            .context("accepted a non-eval file")?;
        assert!(
            format!("{err}").contains("bad.json is not an nlm eval.json"),
            "{err}"
        );
        let err = "time"
            .parse::<SummaryAxis>()
            .err()
            .context("accepted `time`")?;
        assert_eq!(format!("{err}"), "--x must be n_data or t_age, got `time`");
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
