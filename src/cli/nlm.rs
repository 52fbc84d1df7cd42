//! `attractor nlm …` analysis commands: the argument structs and handlers of `nlm generate`,
//! `eval`, `explore`, `denoise` and `summarize`; loading a run ([`load`] into a [`LoadedNlm`])
//! and the states its chains start at; the PNG grids, figures, JSON and `.npy` files they
//! write. The sampling and the metrics are in [`crate::analysis::nlm`]; `nlm train` is
//! dispatched in `cli/mod.rs`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor};
use clap::Args;
use serde_json::{Value, json};

use crate::analysis::nlm::{
    Corruption, GenSampler, Init, NlmData, Stop, Tempering, UNSTABLE_ENERGY, class_share_metrics,
    denoise, energies, generate_from, generate_tempering, knn_classes, langevin, mean_image,
    median, metrics_repeated, pca, polarity_warning, prepare, project,
};
use crate::analysis::stats::mean_sample_sd;
use crate::checkpoint;
use crate::data::images::{ImageSet, atanh_map, binarize_pixels, signed};
use crate::data::patterns::read_grey_image;
use crate::device::fast;
use crate::models::nlm::{Nlm, NlmConfig, load_nlm, streams};
use crate::plot::{Figure, image_grid, palette, save_rgb_png};
use crate::rng::Rng;
use crate::run::RunDir;
use crate::transfer::{tensor2_f32, to_vec_f32};

// ---------------------------------------------------------------------------------------------
// Loading a run
// ---------------------------------------------------------------------------------------------

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
    /// Whether these are the untrained initial parameters (`--untrained`).
    pub untrained: bool,
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

/// The file `nlm train` writes the training images' energies under the final model to.
pub const DATA_ENERGY_FILE: &str = "data_energy.json";

/// The training images' energies under `nlm` (x-space `x_train`, `[k, N]`) as written to
/// [`DATA_ENERGY_FILE`]: their median (the typical energy `nlm denoise --stop energy` stops at),
/// mean and count, at update `t_age`.
pub fn data_energy_json(nlm: &Nlm, x_train: &[f32], t_age: u64, device: &Device) -> Result<Value> {
    let e = energies(nlm, x_train, device)?;
    let mean = e.iter().sum::<f64>() / e.len().max(1) as f64;
    Ok(json!({"t_age": t_age, "images": e.len(), "median": median(e), "mean": mean}))
}

/// The training images' typical (median) energy under the loaded model, and where it came
/// from: `run` (DIR/data_energy.json, written by `nlm train` for the final parameters) or
/// `computed` (from the training images now: a t_age snapshot, the untrained control, or a
/// run written before the file existed — the same number).
pub fn typical_energy(l: &LoadedNlm, device: &Device) -> Result<(f64, &'static str)> {
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
            return Ok((m, "run"));
        }
    }
    let v = data_energy_json(&l.nlm, &l.data.x_train, l.step, device)?;
    Ok((v["median"].as_f64().unwrap_or(f64::NAN), "computed"))
}

/// How `generate` and `eval` sample the model.
#[derive(Args, Debug, Clone)]
pub struct SamplerArgs {
    /// `langevin` (Langevin dynamics at the run's temperature T, the paper's sampler) or
    /// `tempering` (replica exchange: the same distribution at T, with `--replicas` copies of
    /// every chain on a temperature ladder up to `--t-max`·T exchanging states; costs
    /// `--replicas` times the steps).
    #[arg(long, value_enum, default_value_t = GenSampler::Langevin)]
    pub sampler: GenSampler,
    /// `tempering`: temperatures on the ladder, T included.
    #[arg(long, default_value_t = 4)]
    pub replicas: usize,
    /// `tempering`: the hottest temperature over T.
    #[arg(long, default_value_t = 2.0)]
    pub t_max: f64,
    /// `tempering`: Langevin steps between exchange rounds.
    #[arg(long, default_value_t = 10)]
    pub swap_every: usize,
}

impl SamplerArgs {
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
    ) -> Result<(crate::analysis::nlm::Frames, Tensor<2>, Option<f64>)> {
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

    /// The sampler's description in JSON (`sampler`, and the ladder with the share of accepted
    /// exchanges for `tempering`).
    pub fn describe(&self, v: &mut Value, swap_rate: Option<f64>) {
        v["sampler"] = self.sampler.name().into();
        if self.sampler == GenSampler::Tempering {
            v["replicas"] = self.replicas.into();
            v["t_max"] = self.t_max.into();
            v["swap_every"] = self.swap_every.into();
            v["swap_acceptance"] = swap_rate.into();
        }
    }

    /// Memory: `replicas` chains per chain with `tempering`.
    fn copies(&self) -> usize {
        match self.sampler {
            GenSampler::Langevin => 1,
            GenSampler::Tempering => self.replicas.max(1),
        }
    }
}

/// Which parameters of a run to load.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Run directory.
    #[arg(long)]
    pub run_dir: PathBuf,
    /// Use the t_age snapshot of this many updates (`tage/`) instead of the newest checkpoint.
    #[arg(long)]
    pub tage: Option<u64>,
    /// Use the untrained initial parameters of the run's configuration (a control).
    #[arg(long)]
    pub untrained: bool,
    /// Sample at this temperature instead of the run's (a diagnostic: the paper trains and
    /// samples at T = 1; a lower T shows how much of the samples' distance to the data is
    /// thermal noise).
    #[arg(long)]
    pub temperature: Option<f64>,
}

/// Opens a run and its parameters.
pub fn load(a: &ModelArgs, device: &Device) -> Result<LoadedNlm> {
    if let Some(t) = a.temperature
        && !(t.is_finite() && t > 0.0 && t <= 1e3)
    {
        bail!("--temperature must be a positive number (at most 1000), got {t}");
    }
    let rd = RunDir::open(&a.run_dir)?;
    let meta = rd.meta()?;
    if meta.model != "nlm" {
        bail!(
            "{} is a `{}` run, not an NLM run",
            a.run_dir.display(),
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
    let data = prepare(&cfg)?;
    let n = data.train.dim();
    let (mut nlm, step) = if a.untrained {
        (Nlm::for_run(&cfg, &data.x_train, n, device), 0)
    } else {
        let ck = match a.tage {
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
    if let Some(t) = a.temperature {
        nlm.temperature = t;
    }
    Ok(LoadedNlm {
        rd,
        cfg,
        nlm,
        step,
        data,
        untrained: a.untrained,
    })
}

fn grid_png(images: &[Vec<f32>], set: &ImageSet, cols: usize, path: &Path) -> Result<()> {
    let scale = (84 / set.rows.max(set.cols).max(1)).clamp(1, 8) as u32;
    save_rgb_png(
        &image_grid(images, set.cols, set.rows, cols, -1.0, 1.0, scale),
        path,
    )
}

fn rows_of(v: &[f32], dim: usize) -> Vec<Vec<f32>> {
    v.chunks(dim).map(<[f32]>::to_vec).collect()
}

fn parse_list(s: &str) -> Result<Vec<usize>> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<usize>()
                .with_context(|| format!("`{t}` is not a step count"))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// generate
// ---------------------------------------------------------------------------------------------

/// Arguments of `nlm generate`.
#[derive(Args, Debug, Clone)]
pub struct GenerateArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub model: ModelArgs,
    /// Chains (images).
    #[arg(long, default_value_t = 100)]
    pub chains: usize,
    /// Langevin steps (dt from the run's configuration). Fresh chains from N(0, 1) reach the
    /// model's class balance slowly: on the bundled digits the samples' class shares are still
    /// skewed after 2000 steps (total variation 0.29 from the data's) and balanced after 10 000
    /// (0.06); the paper generates for about 25 000.
    #[arg(long, default_value_t = 10_000)]
    pub steps: usize,
    /// Output PNG (default DIR/generate.png).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write the final tanh(x) as `[chains, N]` .npy.
    #[arg(long)]
    pub npy: Option<PathBuf>,
    /// Also write a grid every this many steps (DIR/snapshots/`grid-<step>.png`).
    #[arg(long)]
    pub snapshots: Option<usize>,
    /// Where the chains start: `noise` (N(0, 1)), `data` (the training images, cycled) or
    /// `held-out` (the held-out images, cycled).
    #[arg(long, value_enum, default_value_t = Init::Noise)]
    pub init: Init,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub sampler: SamplerArgs,
}

/// `nlm generate`.
pub fn generate_cmd(a: &GenerateArgs, cx: &super::Global) -> Result<()> {
    let (device, seed, quiet) = (&cx.ctx.device, cx.seed, cx.quiet);
    check_counts(a.chains, a.steps)?;
    let l = load(&a.model, device)?;
    let dim = l.nlm.n();
    let frames = a.snapshots.map_or(0, |e| a.steps / e.max(1));
    check_chain_memory(a.chains * a.sampler.copies(), dim, frames)?;
    let mut rng = Rng::derived(seed.unwrap_or(l.cfg.seed), streams::GENERATE);
    let record: Vec<usize> = match a.snapshots {
        Some(0) => bail!("--snapshots must be >= 1"),
        Some(e) => (1..=a.steps / e).map(|i| i * e).collect(),
        None => Vec::new(),
    };
    let x0 = start_states(&l, a.init, a.chains, &mut rng, device)?;
    let bar = cx
        .ctx
        .control
        .scope((a.steps * a.sampler.copies()) as u64, "generate");
    let (frames, _, swap_rate) = a
        .sampler
        .run(&l.nlm, x0, a.steps, l.cfg.dt, &record, &mut rng)?;
    drop(bar);
    let cols = (a.chains as f64).sqrt().ceil() as usize;
    if a.snapshots.is_some() {
        let dir = l.rd.file("snapshots");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        for (k, v) in &frames {
            grid_png(
                &rows_of(v, dim),
                &l.data.train,
                cols,
                &dir.join(format!("grid-{k:07}.png")),
            )?;
        }
    }
    let (_, last) = frames.last().context("no frames")?;
    let out = a.out.clone().unwrap_or_else(|| l.rd.file("generate.png"));
    grid_png(&rows_of(last, dim), &l.data.train, cols, &out)?;
    if let Some(p) = &a.npy {
        crate::npy::write_npy_f32(p, &[a.chains, dim], last)?;
    }
    let mean = last.iter().map(|&x| x as f64).sum::<f64>() / last.len() as f64;
    let data_mean = signed(&l.data.train.pixels)
        .iter()
        .map(|&x| x as f64)
        .sum::<f64>()
        / l.data.train.pixels.len() as f64;
    let mut v = json!({"t_age": l.step, "chains": a.chains, "steps": a.steps,
                       "init": a.init.name(), "mean_pixel": mean, "data_mean_pixel": data_mean,
                       "png": out});
    a.sampler.describe(&mut v, swap_rate);
    // Labelled data: the samples' classes by nearest training image against the data's.
    let train = signed(&l.data.train.pixels);
    if let Some(c) = class_share_metrics(last, &l.data.train, &train, device)? {
        for k in [
            "class_shares",
            "data_class_shares",
            "class_tv",
            "classes_starved",
        ] {
            v[k] = c[k].clone();
        }
    }
    println!("{v}");
    if !quiet {
        log::info!("wrote {}", out.display());
    }
    Ok(())
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
fn check_chain_memory(chains: usize, dim: usize, frames: usize) -> Result<()> {
    let per_frame = 4.0 * chains as f64 * dim as f64;
    crate::error::check_memory(
        &format!("{chains} chains of {dim} neurons with {frames} recorded frames"),
        per_frame * (12.0 + frames as f64),
    )
}

// ---------------------------------------------------------------------------------------------
// eval
// ---------------------------------------------------------------------------------------------

/// Arguments of `nlm eval`.
#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub model: ModelArgs,
    /// Generated images (and as many reference images, capped by the set sizes).
    #[arg(long, default_value_t = 1000)]
    pub n_gen: usize,
    /// Langevin steps from N(0, 1) before the samples are taken (the paper measures E² after
    /// at least 5000; fresh chains approach the model's equilibrium slowly).
    #[arg(long, default_value_t = 5000)]
    pub gen_steps: usize,
    /// Also measure at these generation steps (comma list), into `trace` (out-of-equilibrium
    /// study).
    #[arg(long)]
    pub record_at: Option<String>,
    /// Also relax the final samples this many noise-free steps (the denoising dynamics) and
    /// report their metrics under `relaxed` — a diagnostic of how much of the distance to the
    /// data is the sampling noise at T = 1; the main metrics stay the paper's.
    #[arg(long, default_value_t = 0)]
    pub relax_steps: usize,
    /// Where the chains start: `noise` (N(0, 1), the paper's protocol) or `data` (the training
    /// images in x-space, cycled — a diagnostic: the samples then show the model's equilibrium
    /// around the data without the search for it; `start_dist` is the median distance of a
    /// sample to its own starting image, `start_ratio` that over `ref_nn`) or `held-out` (the
    /// held-out images, never trained on: after a few steps, new digits with the model's
    /// thermal jitter — what a perfectly generalising model would score at this temperature).
    #[arg(long, value_enum, default_value_t = Init::Noise)]
    pub init: Init,
    /// Independent sample sets of `--n-gen` chains each (generated together): every metric is
    /// then the mean over the sets, with `<metric>_sd` and each set's own figures under
    /// `repeats` (E_AAI of one set of 1000 samples scatters by about ±0.004).
    #[arg(long, default_value_t = 1)]
    pub repeats: usize,
    /// Output JSON (default DIR/eval.json).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub sampler: SamplerArgs,
}

/// `nlm eval`: writes eval.json and returns it.
pub fn eval_cmd(a: &EvalArgs, cx: &super::Global) -> Result<Value> {
    let (device, seed, quiet) = (&cx.ctx.device, cx.seed, cx.quiet);
    check_counts(a.n_gen, a.gen_steps)?;
    if a.repeats == 0 || a.repeats > 1000 {
        bail!("--repeats must be between 1 and 1000, got {}", a.repeats);
    }
    let chains = a.n_gen * a.repeats;
    if chains > 1 << 20 {
        bail!(
            "--n-gen × --repeats must be at most {}, got {chains}",
            1 << 20
        );
    }
    let l = load(&a.model, device)?;
    let dim = l.nlm.n();
    check_chain_memory(chains * a.sampler.copies(), dim, 0)?;
    let mut rng = Rng::derived(seed.unwrap_or(l.cfg.seed), streams::GENERATE);
    let record = match &a.record_at {
        Some(s) => parse_list(s)?,
        None => Vec::new(),
    };
    let t0 = std::time::Instant::now();
    let _bar = cx.ctx.control.scope(
        (a.gen_steps * a.sampler.copies() + a.relax_steps) as u64,
        "eval",
    );
    let x0 = start_states(&l, a.init, chains, &mut rng, device)?;
    let (frames, x_final, swap_rate) =
        a.sampler
            .run(&l.nlm, x0, a.gen_steps, l.cfg.dt, &record, &mut rng)?;
    let gen_s = t0.elapsed().as_secs_f64();
    let train = signed(&l.data.train.pixels);
    // Chains started at held-out images are compared with the held-out images after those.
    let first_held = if a.init == Init::HeldOut {
        start_pixels(&l, a.init, chains)?.len() / dim
    } else {
        0
    };
    let held = signed(&l.data.held_out.pixels[first_held * dim..]);
    let (_, last) = frames.last().context("no samples")?;
    let mut v = metrics_repeated(&train, last, dim, a.repeats, device)?;
    // Mean energy of the samples and of the training images under the model: at temperature T
    // equilibrium samples sit near the thermal level N·T/2, and how far below it the data sit
    // says how much sharper than the model's equilibrium the data are.
    let mean_energy =
        |x: Tensor<2>| -> Result<f64> { Ok(to_vec_f32(&l.nlm.energy(x).mean())?[0] as f64) };
    let e_gen = mean_energy(x_final.clone())?;
    let nd = l.data.train.len();
    let e_data = mean_energy(tensor2_f32(l.data.x_train.clone(), nd, dim, device))?;
    v["energy_gen"] = e_gen.into();
    v["energy_data"] = e_data.into();
    v["energy_thermal"] = (0.5 * dim as f64 * l.nlm.temperature).into();
    // Labelled data: which classes the samples fall into, each labelled by its nearest
    // training image (all of the eval's samples, every set together).
    if let Some(c) = class_share_metrics(last, &l.data.train, &train, device)? {
        for (k, x) in c.as_object().into_iter().flatten() {
            v[k] = x.clone();
        }
        if a.init == Init::Data
            && let Some(labels) = &l.data.train.labels
        {
            let starts = start_pixels(&l, a.init, chains)?.len() / dim;
            v["class_stay_frac"] =
                crate::analysis::nlm::class_stay_frac(last, &train, labels, starts, dim, device)?
                    .into();
        }
    }
    if !held.is_empty() {
        v["test"] = metrics_repeated(&held, last, dim, a.repeats, device)?;
        v["test"]["first_image"] = first_held.into();
    }
    if !record.is_empty() {
        let mut trace = Vec::new();
        for (k, f) in &frames {
            let mut m = metrics_repeated(&train, f, dim, a.repeats, device)?;
            m["gen_steps"] = (*k).into();
            if let Some(c) = class_share_metrics(f, &l.data.train, &train, device)? {
                for key in ["class_shares", "class_tv", "classes_starved"] {
                    m[key] = c[key].clone();
                }
            }
            trace.push(m);
        }
        v["trace"] = trace.into();
    }
    if a.relax_steps > 0 {
        if a.relax_steps > 1_000_000_000 {
            bail!("--relax-steps must be at most 1e9");
        }
        let x = langevin(
            &l.nlm,
            x_final,
            a.relax_steps,
            l.cfg.dt,
            false,
            &mut rng,
            &[],
            &mut |_, _| Ok(()),
        )?;
        let relaxed = to_vec_f32(&fast::tanh(x))?;
        let mut m = metrics_repeated(&train, &relaxed, dim, a.repeats, device)?;
        m["relax_steps"] = a.relax_steps.into();
        v["relaxed"] = m;
    }
    if a.init != Init::Noise {
        // Median distance of each sample to its own starting image (chain c started at image
        // c mod their count), and that over the median training-to-training nearest-neighbour
        // distance (as `nn_ratio`).
        let starts = signed(start_pixels(&l, a.init, chains)?);
        let d: Vec<f64> = last
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
        let d = median(d);
        v["start_dist"] = d.into();
        v["start_ratio"] = (d / v["ref_nn"].as_f64().unwrap_or(f64::NAN)).into();
    }
    let warning = polarity_warning(
        "the samples",
        v["mean_pixel"].as_f64().unwrap_or(f64::NAN),
        v["data_mean_pixel"].as_f64().unwrap_or(f64::NAN),
        v["inverted_frac"].as_f64().unwrap_or(f64::NAN),
    );
    v["polarity_ok"] = warning.is_none().into();
    if let Some(w) = &warning {
        log::warn!("{w}");
    }
    let thermal = 0.5 * dim as f64 * l.nlm.temperature;
    if e_gen.is_nan() || e_gen > UNSTABLE_ENERGY * thermal {
        log::warn!(
            "the samples' mean energy {e_gen:.3e} is {:.0}× the thermal level N·T/2 = \
             {thermal:.0}: the Langevin chains are unstable at dt = {} (a smaller dt, or \
             retraining with `--set stiffness_cap=1`, keeps them stable)",
            e_gen / thermal,
            l.cfg.dt
        );
    }
    v["init"] = a.init.name().into();
    a.sampler.describe(&mut v, swap_rate);
    v["t_age"] = l.step.into();
    v["n_data"] = l.data.train.len().into();
    v["n_gen"] = a.n_gen.into();
    v["n_repeats"] = a.repeats.into();
    v["gen_steps"] = a.gen_steps.into();
    v["generation_s"] = gen_s.into();
    v["untrained"] = a.model.untrained.into();
    v["temperature"] = l.nlm.temperature.into();
    let out = a.out.clone().unwrap_or_else(|| l.rd.file("eval.json"));
    crate::checkpoint::atomic_write(&out, serde_json::to_string_pretty(&v)?.as_bytes())?;
    let sd = match v["e_aai_sd"].as_f64() {
        Some(sd) => format!(" ± {sd:.4} over {} sets", a.repeats),
        None => String::new(),
    };
    let classes = match v["class_tv"].as_f64() {
        Some(tv) => format!(
            ", class shares TV {tv:.3} ({} starved)",
            v["classes_starved"].as_u64().unwrap_or(0)
        ),
        None => String::new(),
    };
    println!(
        "t_age {}: E_AAI {:.4}{sd} (Acc_S {:.3}, Acc_T {:.3}), E² {:.5}, mean pixel {:.3} (data {:.3}), inverted {:.1} %, energy {e_gen:.1} (data {e_data:.1}, N·T/2 {:.1}){classes}",
        l.step,
        v["e_aai"].as_f64().unwrap_or(f64::NAN),
        v["acc_s"].as_f64().unwrap_or(f64::NAN),
        v["acc_t"].as_f64().unwrap_or(f64::NAN),
        v["e2"].as_f64().unwrap_or(f64::NAN),
        v["mean_pixel"].as_f64().unwrap_or(f64::NAN),
        v["data_mean_pixel"].as_f64().unwrap_or(f64::NAN),
        100.0 * v["inverted_frac"].as_f64().unwrap_or(f64::NAN),
        0.5 * dim as f64 * l.nlm.temperature
    );
    if !quiet {
        log::info!("wrote {}", out.display());
    }
    Ok(v)
}

// ---------------------------------------------------------------------------------------------
// explore
// ---------------------------------------------------------------------------------------------

/// Arguments of `nlm explore`.
#[derive(Args, Debug, Clone)]
pub struct ExploreArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub model: ModelArgs,
    /// Steps of the one chain.
    #[arg(long, default_value_t = 30_000)]
    pub steps: usize,
    /// Snapshot period (steps).
    #[arg(long, default_value_t = 1500)]
    pub every: usize,
    /// Trajectory sampling period (steps) for the PCA plot.
    #[arg(long, default_value_t = 20)]
    pub record_every: usize,
    /// Data images defining the principal components.
    #[arg(long, default_value_t = 400)]
    pub pca_images: usize,
}

/// `nlm explore`: one long chain; snapshots PNG, PCA trajectory PNG, explore.json.
pub fn explore_cmd(a: &ExploreArgs, cx: &super::Global) -> Result<Value> {
    let (device, seed, quiet) = (&cx.ctx.device, cx.seed, cx.quiet);
    check_counts(1, a.steps)?;
    if a.every == 0 || a.record_every == 0 || a.pca_images == 0 {
        bail!("--every, --record-every and --pca-images must be >= 1");
    }
    let l = load(&a.model, device)?;
    let dim = l.nlm.n();
    let mut rng = Rng::derived(seed.unwrap_or(l.cfg.seed), streams::GENERATE);
    let mut record: Vec<usize> = (1..=a.steps / a.record_every)
        .map(|i| i * a.record_every)
        .collect();
    record.extend((1..=a.steps / a.every).map(|i| i * a.every));
    record.sort_unstable();
    record.dedup();
    let x0 = crate::models::nlm::gaussian(&mut rng, 1, dim, 1.0, device);
    let mut traj_at = Vec::new();
    let mut traj_frames = Vec::new();
    let bar = cx.ctx.control.scope(a.steps as u64, "explore");
    langevin(
        &l.nlm,
        x0,
        a.steps,
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
    let traj: Vec<(usize, Vec<f32>)> = traj_at
        .into_iter()
        .zip(crate::transfer::download_all(&traj_frames)?)
        .collect();
    let snaps: Vec<&(usize, Vec<f32>)> = traj
        .iter()
        .filter(|(k, _)| *k > 0 && k % a.every == 0)
        .collect();
    // PCA of the first data images (display space).
    let train = signed(&l.data.train.pixels);
    let np = a.pca_images.min(l.data.train.len());
    let mut prng = Rng::derived(l.cfg.seed, streams::GENERATE + 100);
    let (mean, axes) = pca(&train[..np * dim], dim, 3, &mut prng);
    let data_proj: Vec<Vec<f64>> = train[..np * dim]
        .chunks(dim)
        .map(|r| project(r, &mean, &axes))
        .collect();
    let traj_proj: Vec<Vec<f64>> = traj.iter().map(|(_, v)| project(v, &mean, &axes)).collect();
    // Classes of the snapshots by 5-NN among the training images.
    let snap_flat: Vec<f32> = snaps.iter().flat_map(|(_, v)| v.iter().copied()).collect();
    let classes = match &l.data.train.labels {
        Some(lab) if !snap_flat.is_empty() => {
            Some(knn_classes(&snap_flat, &train, lab, dim, 5, device)?)
        }
        _ => None,
    };
    // Snapshots PNG.
    let cols = (snaps.len() as f64).sqrt().ceil().max(1.0) as usize;
    let png = l.rd.file("explore.png");
    let imgs: Vec<Vec<f32>> = snaps.iter().map(|(_, v)| v.clone()).collect();
    if !imgs.is_empty() {
        grid_png(&imgs, &l.data.train, cols, &png)?;
    }
    // PCA PNG: data coloured by class, trajectory in black, snapshots as larger dots.
    let mut fig = Figure::new(2, 1, 520, 480);
    for (c, (i, j)) in [(0usize, 1usize), (0, 2)].into_iter().enumerate() {
        let ax = fig.axes(c, 0);
        ax.set_title(&format!("chain over data PCA (PC{} vs PC{})", i + 1, j + 1))
            .set_xlabel(&format!("PC{}", i + 1))
            .set_ylabel(&format!("PC{}", j + 1));
        let xs: Vec<f64> = data_proj.iter().map(|p| p[i]).collect();
        let ys: Vec<f64> = data_proj.iter().map(|p| p[j]).collect();
        let colors: Vec<_> = match &l.data.train.labels {
            Some(lab) => lab[..np].iter().map(|&c| palette(c as usize)).collect(),
            None => vec![palette(0); np],
        };
        ax.points_colored(&xs, &ys, &colors);
        let tx: Vec<f64> = traj_proj.iter().map(|p| p[i]).collect();
        let ty: Vec<f64> = traj_proj.iter().map(|p| p[j]).collect();
        ax.line(&tx, &ty, [0, 0, 0]);
        let sx: Vec<f64> = traj
            .iter()
            .zip(&traj_proj)
            .filter(|((k, _), _)| *k > 0 && k % a.every == 0)
            .map(|(_, p)| p[i])
            .collect();
        let sy: Vec<f64> = traj
            .iter()
            .zip(&traj_proj)
            .filter(|((k, _), _)| *k > 0 && k % a.every == 0)
            .map(|(_, p)| p[j])
            .collect();
        ax.scatter(&sx, &sy, [0, 0, 0], 4);
        if let Some(lab) = &l.data.train.labels {
            let mut present: Vec<u8> = lab[..np].to_vec();
            present.sort_unstable();
            present.dedup();
            let names: Vec<String> = present.iter().map(|c| format!("digit {c}")).collect();
            let entries: Vec<(&str, _)> = names
                .iter()
                .zip(&present)
                .map(|(s, &c)| (s.as_str(), palette(c as usize)))
                .collect();
            ax.legend(&entries);
        }
    }
    let pca_png = l.rd.file("explore_pca.png");
    fig.save_png(&pca_png)?;
    let flat: Vec<f64> = traj_proj.iter().flatten().copied().collect();
    crate::npy::write_npy_f64(
        &l.rd.file("explore_trajectory.npy"),
        &[traj_proj.len(), 3],
        &flat,
    )?;
    let visited = classes.as_ref().map(|c| {
        let mut v = c.clone();
        v.sort_unstable();
        v.dedup();
        v
    });
    let switches = classes
        .as_ref()
        .map(|c| c.windows(2).filter(|w| w[0] != w[1]).count());
    let v = json!({
        "t_age": l.step,
        "steps": a.steps,
        "snapshot_steps": snaps.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        "snapshot_classes": classes,
        "classes_visited": visited,
        "class_switches": switches,
    });
    l.rd.write_json("explore.json", &v)?;
    println!("{v}");
    if !quiet {
        log::info!(
            "wrote {}, {} and explore.json",
            png.display(),
            pca_png.display()
        );
    }
    Ok(v)
}

// ---------------------------------------------------------------------------------------------
// denoise
// ---------------------------------------------------------------------------------------------

/// Arguments of `nlm denoise`.
#[derive(Args, Debug, Clone)]
pub struct DenoiseArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub model: ModelArgs,
    /// Clean input images (PNG, the model's size).
    #[arg(long, num_args = 1..)]
    pub input: Vec<PathBuf>,
    /// Held-out images by index (never trained on).
    #[arg(long, num_args = 1.., value_delimiter = ',')]
    pub test_index: Vec<usize>,
    /// The first K held-out images.
    #[arg(long)]
    pub n_test: Option<usize>,
    /// Corruption: uniform:P (each neuron w.p. P replaced by U(−1, 1) in x-space),
    /// gauss:S (x + N(0, S²)) or mask:P (each neuron w.p. P set to 0, a grey pixel).
    #[arg(long, default_value = "uniform:0.25")]
    pub corrupt: String,
    /// Noise-free relaxation steps (at most, with `--stop energy`).
    #[arg(long, default_value_t = 450)]
    pub steps: usize,
    /// Where each image's relaxation stops: `energy` (when its energy has fallen to the
    /// training images' median energy under the model — the level the data sit at, written by
    /// `nlm train` to DIR/data_energy.json, or computed from the training images for runs
    /// without it) or `minimum` (all `--steps` steps, toward the energy minimum).
    #[arg(long, value_enum, default_value_t = Stop::Energy)]
    pub stop: Stop,
    /// Output PNG (rows: original, corrupted, restored; default DIR/denoise.png).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `nlm denoise`: PNG grid, energy PNG and denoise.json; returns the JSON.
pub fn denoise_cmd(a: &DenoiseArgs, cx: &super::Global) -> Result<Value> {
    let (device, seed, quiet) = (&cx.ctx.device, cx.seed, cx.quiet);
    let corruption: Corruption = a.corrupt.parse()?;
    check_counts(1, a.steps)?;
    let l = load(&a.model, device)?;
    let dim = l.nlm.n();
    let (rows, cols) = (l.data.train.rows, l.data.train.cols);
    // Clean images in pixel space [0, 1].
    let mut pixels: Vec<f32> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for p in &a.input {
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
    for &i in &a.test_index {
        if i >= held {
            bail!("--test-index {i} out of range: the held-out set has {held} images");
        }
    }
    let mut idx: Vec<usize> = a.test_index.clone();
    if let Some(k) = a.n_test {
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
    let x = atanh_map(&pixels, l.cfg.eps);
    let (stop_energy, stop_source) = match a.stop {
        Stop::Minimum => (None, None),
        Stop::Energy => {
            let (e, src) = typical_energy(&l, device)?;
            (Some(e), Some(src))
        }
    };
    let mut rng = Rng::derived(seed.unwrap_or(l.cfg.seed), streams::CORRUPT);
    let bar = cx.ctx.control.scope(a.steps as u64, "denoise");
    let d = denoise(
        &l.nlm,
        &x,
        corruption,
        a.steps,
        l.cfg.dt,
        stop_energy,
        &mut rng,
        device,
    )?;
    drop(bar);
    let k = names.len();
    let mse_img = |a: &[f32], b: &[f32]| -> Vec<f64> {
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
    };
    let mc = mse_img(&d.corrupted, &d.clean);
    let mr = mse_img(&d.restored, &d.clean);
    // The baseline a restorer with no memory of single images reaches: every image replaced by
    // the training images' mean state (through the run's own pixel map). On images that vary
    // little (low-contrast grey) it beats the corrupted input by itself.
    let mut train_px = l.data.train.pixels.clone();
    if l.cfg.binarize {
        binarize_pixels(&mut train_px);
    }
    let train_state: Vec<f32> = atanh_map(&train_px, l.cfg.eps)
        .iter()
        .map(|v| v.tanh())
        .collect();
    let mean_state: Vec<f32> = mean_image(&train_state, dim)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let mm = mse_img(&mean_state.repeat(k), &d.clean);
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
    let correct = d.nearest_correct.iter().filter(|&&c| c).count() as f64 / k as f64;
    // Grid: originals, corrupted, restored (at most 16 columns).
    let show = k.min(16);
    let mut imgs: Vec<Vec<f32>> = Vec::new();
    for src in [&d.clean, &d.corrupted, &d.restored] {
        imgs.extend(rows_of(&src[..show * dim], dim));
    }
    let out = a.out.clone().unwrap_or_else(|| l.rd.file("denoise.png"));
    grid_png(&imgs, &l.data.train, show, &out)?;
    let energy_png = out.with_file_name(format!(
        "{}-energy.png",
        out.file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("denoise")
    ));
    let mut fig = Figure::new(2, 1, 480, 360);
    let steps: Vec<f64> = (0..d.energy.len()).map(|s| s as f64).collect();
    fig.axes(0, 0)
        .set_title("mean energy during relaxation")
        .set_xlabel("step")
        .set_ylabel("E")
        .line(&steps, &d.energy, palette(0));
    fig.axes(1, 0)
        .set_title("mean MSE to the clean images")
        .set_xlabel("step")
        .set_ylabel("MSE")
        .line(&steps, &d.mse, palette(1));
    fig.save_png(&energy_png)?;
    let v = json!({
        "t_age": l.step,
        "untrained": a.model.untrained,
        "images": k,
        "corrupt": a.corrupt,
        "steps": a.steps,
        "mse_corrupted": mean(&mc),
        "mse_restored": mean(&mr),
        "mse_ratio": mean(&mr) / mean(&mc),
        "mse_mean_image": mean(&mm),
        "mean_image_ratio": mean(&mm) / mean(&mc),
        "stop": a.stop.name(),
        "stop_energy": stop_energy,
        "stop_energy_source": stop_source,
        "stop_step_mean": mean(&d.stop_step.iter().map(|&s| s as f64).collect::<Vec<_>>()),
        "stop_step_median": median(d.stop_step.iter().map(|&s| s as f64).collect()),
        "stop_reached_frac": d.stop_reached.iter().filter(|&&r| r).count() as f64 / k as f64,
        "best_step": best_step,
        "best_mse": best_mse,
        "best_ratio": best_mse / mean(&mc),
        "nearest_correct_frac": correct,
        "energy_monotone": monotone,
        "energy_initial": d.energy.first(),
        "energy_final": d.energy.last(),
        "energy": d.energy,
        "mse": d.mse,
        "per_image": names.iter().enumerate().map(|(i, nm)| json!({
            "source": nm, "mse_corrupted": mc[i], "mse_restored": mr[i],
            "nearest_correct": d.nearest_correct[i], "stop_step": d.stop_step[i],
            "stop_reached": d.stop_reached[i]})).collect::<Vec<_>>(),
        "png": out,
        "energy_png": energy_png,
    });
    let json_path = out.with_file_name(format!(
        "{}.json",
        out.file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("denoise")
    ));
    crate::checkpoint::atomic_write(&json_path, serde_json::to_string_pretty(&v)?.as_bytes())?;
    println!(
        "{k} images: MSE {:.4} → {:.4} (ratio {:.3}, stop {}{}; best {:.4} at step {best_step}), nearest correct {:.2}, energy {:.3} → {:.3}{}",
        mean(&mc),
        mean(&mr),
        mean(&mr) / mean(&mc),
        a.stop.name(),
        match stop_energy {
            Some(e) => format!(
                " at energy {e:.1}, mean step {:.1}",
                v["stop_step_mean"].as_f64().unwrap_or(f64::NAN)
            ),
            None => String::new(),
        },
        best_mse,
        correct,
        d.energy.first().copied().unwrap_or(f64::NAN),
        d.energy.last().copied().unwrap_or(f64::NAN),
        if monotone {
            " (monotone)"
        } else {
            " (NOT monotone)"
        }
    );
    if !quiet {
        log::info!(
            "wrote {}, {} and {}",
            out.display(),
            energy_png.display(),
            json_path.display()
        );
    }
    Ok(v)
}

// ---------------------------------------------------------------------------------------------
// summarize (plots over several eval.json files)
// ---------------------------------------------------------------------------------------------

/// Arguments of `nlm summarize`.
#[derive(Args, Debug, Clone)]
pub struct SummarizeArgs {
    /// eval.json files (from `nlm eval`).
    #[arg(long, num_args = 1.., required = true)]
    pub evals: Vec<PathBuf>,
    /// Horizontal axis of the final-state plot: `n_data` or `t_age` (log scale).
    #[arg(long, default_value = "n_data")]
    pub x: String,
    /// Output PNG; a JSON table is written beside it.
    #[arg(long)]
    pub out: PathBuf,
}

/// `nlm summarize`: E_AAI, Acc_S, Acc_T (mean ± sd over files sharing an x value, or over the
/// sample sets of a lone file made with `eval --repeats`; `sd_over` says which) against
/// log10(x); and, where the files hold a `trace` (eval --record-at), E_AAI and E² against
/// log10(generation steps), one curve per file.
pub fn summarize_cmd(a: &SummarizeArgs) -> Result<Value> {
    if !matches!(a.x.as_str(), "n_data" | "t_age") {
        bail!("--x must be n_data or t_age, got `{}`", a.x);
    }
    let mut evs = Vec::new();
    for p in &a.evals {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        let v: Value =
            serde_json::from_str(&text).with_context(|| format!("{} is not JSON", p.display()))?;
        if !v["e_aai"].is_number() || !v[&a.x].is_number() {
            bail!(
                "{} is not an nlm eval.json (needs e_aai and {})",
                p.display(),
                a.x
            );
        }
        evs.push(v);
    }
    // Group by x.
    let mut xs: Vec<f64> = evs.iter().filter_map(|v| v[&a.x].as_f64()).collect();
    xs.sort_by(|p, q| p.total_cmp(q));
    xs.dedup();
    let mut table = Vec::new();
    let keys = ["e_aai", "acc_s", "acc_t", "e2", "nn_ratio"];
    for &x in &xs {
        let group: Vec<&Value> = evs.iter().filter(|v| v[&a.x].as_f64() == Some(x)).collect();
        // One file made with `eval --repeats`: its own spread over the sample sets; else the
        // spread over the files (runs).
        let sets = match group.as_slice() {
            [v] => v["n_repeats"].as_u64().filter(|&r| r > 1),
            _ => None,
        };
        let mut row = json!({ a.x.as_str(): x, "runs": group.len() });
        row["sd_over"] = if sets.is_some() { "sets" } else { "runs" }.into();
        for k in keys {
            let vals: Vec<f64> = group.iter().filter_map(|v| v[k].as_f64()).collect();
            let (m, sd) = mean_sample_sd(&vals);
            row[k] = m.into();
            row[format!("{k}_sd")] = match sets {
                Some(_) => group[0][format!("{k}_sd")].as_f64().unwrap_or(f64::NAN),
                None => sd,
            }
            .into();
        }
        if let Some(r) = sets {
            row["sets"] = r.into();
        }
        table.push(row);
    }
    let has_trace = evs.iter().any(|v| v["trace"].is_array());
    let mut fig = Figure::new(if has_trace { 3 } else { 1 }, 1, 520, 400);
    {
        let lx: Vec<f64> = xs.iter().map(|x| x.max(1e-12).log10()).collect();
        let ax = fig.axes(0, 0);
        ax.set_title(&format!("final state vs {}", a.x))
            .set_xlabel(&format!("log10 {}", a.x))
            .set_ylabel("value")
            .set_ylim(0.0, 1.0)
            .hline(0.5, [160, 160, 160]);
        for (i, k) in ["e_aai", "acc_s", "acc_t"].iter().enumerate() {
            let ys: Vec<f64> = table
                .iter()
                .map(|r| r[*k].as_f64().unwrap_or(f64::NAN))
                .collect();
            ax.line(&lx, &ys, palette(i))
                .scatter(&lx, &ys, palette(i), 3);
        }
        ax.legend(&[
            ("E_AAI", palette(0)),
            ("Acc_S", palette(1)),
            ("Acc_T", palette(2)),
        ]);
    }
    if has_trace {
        for (c, key) in [(1usize, "e_aai"), (2, "e2")] {
            let ax = fig.axes(c, 0);
            ax.set_title(&format!("{key} vs generation time"))
                .set_xlabel("log10 generation steps")
                .set_ylabel(key);
            let mut legend = Vec::new();
            for (i, v) in evs.iter().enumerate() {
                let Some(tr) = v["trace"].as_array() else {
                    continue;
                };
                let lx: Vec<f64> = tr
                    .iter()
                    .filter_map(|t| t["gen_steps"].as_f64())
                    .map(|s| s.max(1.0).log10())
                    .collect();
                let ys: Vec<f64> = tr.iter().filter_map(|t| t[key].as_f64()).collect();
                ax.line(&lx, &ys, palette(i))
                    .scatter(&lx, &ys, palette(i), 2);
                legend.push((format!("{} {}", a.x, v[&a.x]), palette(i)));
            }
            let entries: Vec<(&str, _)> = legend.iter().map(|(s, c)| (s.as_str(), *c)).collect();
            ax.legend(&entries);
        }
    }
    fig.save_png(&a.out)?;
    let v = json!({ "x": a.x, "table": table });
    let jp = a.out.with_extension("json");
    crate::checkpoint::atomic_write(&jp, serde_json::to_string_pretty(&v)?.as_bytes())?;
    for r in &table {
        println!("{r}");
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let evals = vec![
            write("a.json", ev(10, 0.10, json!({})))?,
            write("b.json", ev(10, 0.14, json!({})))?,
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
        let out = dir.join("s.png");
        let v = summarize_cmd(&SummarizeArgs {
            evals,
            x: "n_data".into(),
            out: out.clone(),
        })?;
        let t = v["table"].as_array().context("table")?;
        // Two runs at n_data 10: mean and sample sd over the runs (as over the sets of a
        // `--repeats` eval: one convention in the table).
        assert_eq!(
            (t[0]["runs"].as_u64(), t[0]["sd_over"].as_str()),
            (Some(2), Some("runs"))
        );
        assert!((t[0]["e_aai"].as_f64().unwrap_or(0.0) - 0.12).abs() < 1e-12);
        let sd = t[0]["e_aai_sd"].as_f64().unwrap_or(0.0);
        assert!((sd - 0.02 * 2f64.sqrt()).abs() < 1e-12, "{sd}");
        // One file with four sample sets: its own spread.
        assert_eq!(t[1]["sd_over"], "sets");
        assert_eq!(t[1]["sets"], 4);
        assert_eq!(t[1]["e_aai_sd"], 0.007);
        assert!(out.is_file() && out.with_extension("json").is_file());
        // A file that is not an eval.json is refused by name.
        let bad = write("bad.json", json!({"x": 1}))?;
        let err = summarize_cmd(&SummarizeArgs {
            evals: vec![bad],
            x: "n_data".into(),
            out,
        })
        .err()
        .context("accepted a non-eval file")?;
        assert!(
            format!("{err}").contains("bad.json is not an nlm eval.json"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
