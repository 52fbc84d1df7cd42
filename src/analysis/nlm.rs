//! NLM measurements and commands: data preparation, sampling, the spec's metrics (E_AAI,
//! Acc_S, Acc_T, E²), generation, exploration, denoising and evaluation.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor};
use clap::Args;
use serde_json::{Value, json};

use super::stats::mean_sample_sd;
use crate::checkpoint;
use crate::data::images::{
    ImageSet, atanh_map, binarize_pixels, filter_labels, load_source, signed,
};
use crate::data::patterns::read_grey_image;
use crate::device::fast;
use crate::models::nlm::{Nlm, NlmConfig, load_nlm, streams};
use crate::plot::{Figure, image_grid, palette, save_rgb_png};
use crate::rng::Rng;
use crate::run::RunDir;
use crate::sde::solver::EulerMaruyama;
use crate::transfer::{tensor2_f32, to_vec_f32};

/// Training and held-out images of an NLM configuration.
#[derive(Clone, Debug)]
pub struct NlmData {
    /// The first `n_data` images of the pool.
    pub train: ImageSet,
    /// The rest of the pool (for MNIST digits 1/3/6 at the defaults: mostly the test split).
    pub held_out: ImageSet,
    /// Training images in x-space (atanh map), `[n_data, N]`.
    pub x_train: Vec<f32>,
    /// Things the user should know (caps, conversions).
    pub warnings: Vec<String>,
}

/// Loads, filters, pools and maps the images named by `cfg` (spec §1.3, §4).
pub fn prepare(cfg: &NlmConfig) -> Result<NlmData> {
    let (set, _) = load_source(&cfg.data.to_string())?;
    let mut warnings = set.warnings.clone();
    let set = if set.labels.is_none() && !cfg.digits.is_empty() {
        if cfg.digits != [1, 3, 6] {
            warnings.push(format!(
                "{} has no labels: --digits {:?} ignored",
                set.source, cfg.digits
            ));
        }
        set
    } else {
        filter_labels(&set, &cfg.digits)?
    };
    let set = set.pooled(cfg.pool)?;
    let set = if cfg.binarize { set.binarized() } else { set };
    if set.is_empty() {
        bail!("{}: no images", set.source);
    }
    let mut n_data = cfg.n_data;
    if n_data > set.len() {
        warnings.push(format!(
            "n_data = {} but only {} images are selected: training on all of them",
            cfg.n_data,
            set.len()
        ));
        n_data = set.len();
    }
    let train = set.select(&(0..n_data).collect::<Vec<_>>());
    let held_out = set.select(&(n_data..set.len()).collect::<Vec<_>>());
    let constant = (0..train.len())
        .filter(|&i| {
            let im = train.image(i);
            im.iter().all(|&v| v == im[0])
        })
        .count();
    if constant == train.len() {
        bail!(
            "{}: all {} training images are constant (every pixel the same value): there is \
             nothing to learn",
            train.source,
            constant
        );
    }
    if constant > 0 {
        warnings.push(format!(
            "{constant} of {} training images are constant (blank)",
            train.len()
        ));
    }
    let x_train = atanh_map(&train.pixels, cfg.eps);
    Ok(NlmData {
        train,
        held_out,
        x_train,
        warnings,
    })
}

// ---------------------------------------------------------------------------------------------
// Sampling
// ---------------------------------------------------------------------------------------------

/// Runs `steps` Euler–Maruyama steps of the Langevin dynamics (`noise = false`: the noise-free
/// relaxation) from `x0`, calling `observe(step, x)` at step 0 and after every step in
/// `record` (sorted).
#[allow(clippy::too_many_arguments)]
pub fn langevin(
    nlm: &Nlm,
    x0: Tensor<2>,
    steps: usize,
    dt: f64,
    noise: bool,
    rng: &mut Rng,
    record: &[usize],
    observe: &mut dyn FnMut(usize, &Tensor<2>) -> Result<()>,
) -> Result<Tensor<2>> {
    let em = EulerMaruyama::new(dt, if noise { 1.0 } else { 0.0 })?;
    em.simulate_at(
        nlm,
        x0,
        steps,
        rng,
        &mut |_| None,
        &|k| record.binary_search(&k).is_ok(),
        observe,
    )
}

/// Recorded images: (generation step, tanh(x) as `[chains·N]` row-major), in step order.
pub type Frames = Vec<(usize, Vec<f32>)>;

/// Generation: `chains` fresh N(0, 1) chains, `steps` Langevin steps; returns tanh(x) at each
/// step of `record` (plus the final state last), each `[chains·N]` row-major, and the final
/// states x (`[chains, N]`).
pub fn generate(
    nlm: &Nlm,
    chains: usize,
    steps: usize,
    dt: f64,
    record: &[usize],
    rng: &mut Rng,
    device: &Device,
) -> Result<(Frames, Tensor<2>)> {
    let x0 = crate::models::nlm::gaussian(rng, chains, nlm.n(), 1.0, device);
    generate_from(nlm, x0, steps, dt, record, rng)
}

/// Where generation chains start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Init {
    /// Fresh N(0, 1) states (the spec's protocol).
    Noise,
    /// The training images in x-space (the atanh map), cycled: a diagnostic that separates the
    /// model's equilibrium around the data from how fresh chains find it.
    Data,
    /// The held-out images in x-space, cycled: new digits of the data's distribution, so that a
    /// few steps give what a model that generalised perfectly would sample at this temperature
    /// (a new digit with the model's own thermal jitter) — a reference for E_AAI.
    HeldOut,
}

impl Init {
    /// The name written to JSON.
    pub fn name(self) -> &'static str {
        match self {
            Init::Noise => "noise",
            Init::Data => "data",
            Init::HeldOut => "held-out",
        }
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

/// Generation from given start states `x0` (`[chains, N]`): as [`generate`].
pub fn generate_from(
    nlm: &Nlm,
    x0: Tensor<2>,
    steps: usize,
    dt: f64,
    record: &[usize],
    rng: &mut Rng,
) -> Result<(Frames, Tensor<2>)> {
    // Recorded frames stay on the device until the end: one read-back for all of them.
    let mut steps_at = Vec::new();
    let mut frames = Vec::new();
    let mut rec: Vec<usize> = record.iter().copied().filter(|&s| s <= steps).collect();
    rec.sort_unstable();
    rec.dedup();
    let x = langevin(nlm, x0, steps, dt, true, rng, &rec, &mut |k, x| {
        if k > 0 && k < steps {
            steps_at.push(k);
            frames.push(fast::tanh(x.clone()));
        }
        Ok(())
    })?;
    steps_at.push(steps);
    frames.push(fast::tanh(x.clone()));
    let out = steps_at
        .into_iter()
        .zip(crate::transfer::download_all(&frames)?)
        .collect();
    Ok((out, x))
}

// ---------------------------------------------------------------------------------------------
// Metrics (spec §4.1)
// ---------------------------------------------------------------------------------------------

/// Squared distances between the rows of `a` (`[p, n]`) and `b` (`[q, n]`), computed in row
/// blocks; `f(i, row)` receives row `i` of the `[p, q]` matrix.
fn for_each_distance_row(
    a: &[f32],
    b: &[f32],
    n: usize,
    device: &Device,
    f: &mut dyn FnMut(usize, &[f32]),
) -> Result<()> {
    let (p, q) = (a.len() / n, b.len() / n);
    let bt = tensor2_f32(b.to_vec(), q, n, device);
    let bn = bt.clone().powi_scalar(2).sum_dim(1).reshape([1, q]);
    let bt_t = bt.transpose();
    let block = (4_000_000 / q.max(1)).clamp(1, 2048);
    let mut start = 0;
    while start < p {
        let rows = block.min(p - start);
        let at = tensor2_f32(a[start * n..(start + rows) * n].to_vec(), rows, n, device);
        let an = at.clone().powi_scalar(2).sum_dim(1);
        let d = an + bn.clone() - at.matmul(bt_t.clone()).mul_scalar(2.0);
        let d = to_vec_f32(&d)?;
        for r in 0..rows {
            f(start + r, &d[r * q..(r + 1) * q]);
        }
        start += rows;
    }
    Ok(())
}

/// Nearest-neighbour adversarial accuracy: `(e_aai, acc_s, acc_t)` for `real` and `gen`
/// (`[n, dim]` each, the same n), self-distances excluded.
pub fn aai(real: &[f32], gen_: &[f32], dim: usize, device: &Device) -> Result<(f64, f64, f64)> {
    let n = real.len() / dim;
    if n == 0 || gen_.len() / dim != n {
        bail!("E_AAI needs two non-empty sets of the same size");
    }
    let mut all = real.to_vec();
    all.extend_from_slice(gen_);
    let mut same = [0usize; 2];
    for_each_distance_row(&all, &all, dim, device, &mut |i, row| {
        let mut best = (f32::INFINITY, 0usize);
        for (j, &d) in row.iter().enumerate() {
            if j != i && d < best.0 {
                best = (d, j);
            }
        }
        let (mine, theirs) = (i >= n, best.1 >= n);
        if mine == theirs {
            same[usize::from(mine)] += 1;
        }
    })?;
    let acc_s = same[0] as f64 / n as f64;
    let acc_t = same[1] as f64 / n as f64;
    let e = 0.5 * ((acc_s - 0.5).powi(2) + (acc_t - 0.5).powi(2));
    Ok((e, acc_s, acc_t))
}

/// Unbiased covariance `[dim, dim]` of the rows of `x`.
fn covariance(x: &[f32], dim: usize, device: &Device) -> Tensor<2> {
    let n = x.len() / dim;
    let t = tensor2_f32(x.to_vec(), n, dim, device);
    let c = t.clone() - t.mean_dim(0);
    c.clone()
        .transpose()
        .matmul(c)
        .div_scalar((n.max(2) - 1) as f64)
}

/// E²: mean squared difference between the pixel covariance matrices of `real` and `gen`.
pub fn e2(real: &[f32], gen_: &[f32], dim: usize, device: &Device) -> Result<f64> {
    let d = covariance(real, dim, device) - covariance(gen_, dim, device);
    Ok(to_vec_f32(&d.powi_scalar(2).mean())?[0] as f64)
}

/// Distance of each row of `q` to its nearest row of `set` (excluding index-equal rows when
/// `exclude_self`), and that row's index.
pub fn nearest(
    q: &[f32],
    set: &[f32],
    dim: usize,
    exclude_self: bool,
    device: &Device,
) -> Result<Vec<(f64, usize)>> {
    let mut out = vec![(f64::INFINITY, 0usize); q.len() / dim];
    for_each_distance_row(q, set, dim, device, &mut |i, row| {
        for (j, &d) in row.iter().enumerate() {
            if (!exclude_self || j != i) && (d as f64) < out[i].0 {
                out[i] = (d as f64, j);
            }
        }
    })?;
    for o in &mut out {
        o.0 = o.0.max(0.0).sqrt();
    }
    Ok(out)
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The mean image (per pixel, f64) of `images` (`[k, dim]`).
pub fn mean_image(images: &[f32], dim: usize) -> Vec<f64> {
    let k = (images.len() / dim.max(1)).max(1);
    let mut m = vec![0f64; dim];
    for row in images.chunks_exact(dim) {
        for (s, &v) in m.iter_mut().zip(row) {
            *s += v as f64;
        }
    }
    m.iter_mut().for_each(|s| *s /= k as f64);
    m
}

/// The fraction of `images` (`[k, dim]`, display space, tanh units in [−1, 1]) that are
/// inverted: whose overlap with `mean` (the data's mean image), the uncentred correlation
/// `Σ_i s_i m_i`, is negative — the image lies on the far side of the data's mean image, as the
/// negative of a data image does.
///
/// Uncentred on purpose: around its own mean, a near-blank dark sample (or a small shape in a
/// corner) correlates with the mean image's spatial pattern at random, and half of such
/// images would count as "inverted" although their background has the data's polarity. The
/// overlap keeps the background's sign, which is what an inverted image gets wrong.
pub fn inverted_frac(images: &[f32], mean: &[f64], dim: usize) -> f64 {
    let k = images.len() / dim.max(1);
    let inverted = images
        .chunks_exact(dim)
        .filter(|row| {
            row.iter()
                .zip(mean)
                .map(|(&v, m)| v as f64 * m)
                .sum::<f64>()
                < 0.0
        })
        .count();
    inverted as f64 / k.max(1) as f64
}

/// Largest gap between the samples' and the data's mean pixel (tanh units) that the polarity
/// check accepts (the default run's band).
pub const POLARITY_MEAN_BAND: f64 = 0.15;
/// Mean energy of fresh samples, in units of the thermal level N·T/2, past which the polarity
/// check calls the sampler unstable (trained models sit at 1–2).
pub const UNSTABLE_ENERGY: f64 = 10.0;
/// Largest fraction of inverted samples the polarity check accepts.
pub const POLARITY_INVERTED_MAX: f64 = 0.05;

/// A warning for samples whose polarity departs from the data's: their mean pixel more than
/// [`POLARITY_MEAN_BAND`] from the data's, or at least [`POLARITY_INVERTED_MAX`] of them
/// inverted; `None` when both hold. `what` names the samples (e.g. "fresh samples").
pub fn polarity_warning(
    what: &str,
    mean_pixel: f64,
    data_mean_pixel: f64,
    inverted: f64,
) -> Option<String> {
    let off = (mean_pixel - data_mean_pixel).abs();
    if off <= POLARITY_MEAN_BAND && inverted < POLARITY_INVERTED_MAX {
        return None;
    }
    Some(format!(
        "{what} do not have the data's polarity: mean pixel {mean_pixel:.3} against the data's \
         {data_mean_pixel:.3} (band ±{POLARITY_MEAN_BAND}), {:.1} % inverted (negative overlap \
         with the data's mean image; below {:.0} % expected). Try: more chain steps (fresh \
         chains relax slowly: `--gen-steps`), more training (`--updates`), \
         `--set bias_init=data-mean` if the run started its bias at zero, or a lower `--lr`; \
         `nlm generate --init data` shows whether the model holds the data's polarity once there",
        100.0 * inverted,
        100.0 * POLARITY_INVERTED_MAX
    ))
}

/// The spec's metric block of generated images against reference images (both in display
/// space, `[n, dim]`): e_aai, acc_s, acc_t, e2, the mean pixel of each, the fraction of
/// positive pixels, the fraction of inverted images (`inverted_frac`: negative overlap with
/// the reference mean image, see [`inverted_frac`]; `data_inverted_frac` for the references themselves), and the
/// nearest-neighbour distance ratio (median distance of a sample to its nearest reference over
/// the median reference-to-reference nearest distance, `ref_nn`).
pub fn metrics(reference: &[f32], generated: &[f32], dim: usize, device: &Device) -> Result<Value> {
    let n = (reference.len() / dim).min(generated.len() / dim);
    let (r, g) = (&reference[..n * dim], &generated[..n * dim]);
    let (e, acc_s, acc_t) = aai(r, g, dim, device)?;
    let cov = e2(r, g, dim, device)?;
    let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64;
    let pos = |v: &[f32]| v.iter().filter(|&&x| x > 0.0).count() as f64 / v.len().max(1) as f64;
    let ref_mean = mean_image(r, dim);
    let gen_nn = median(
        nearest(g, r, dim, false, device)?
            .into_iter()
            .map(|x| x.0)
            .collect(),
    );
    let ref_nn = median(
        nearest(r, r, dim, true, device)?
            .into_iter()
            .map(|x| x.0)
            .collect(),
    );
    Ok(json!({
        "n": n,
        "e_aai": e,
        "acc_s": acc_s,
        "acc_t": acc_t,
        "e2": cov,
        "mean_pixel": mean(g),
        "data_mean_pixel": mean(r),
        "frac_positive": pos(g),
        "data_frac_positive": pos(r),
        "inverted_frac": inverted_frac(g, &ref_mean, dim),
        "data_inverted_frac": inverted_frac(r, &ref_mean, dim),
        "nn_ratio": gen_nn / ref_nn,
        "ref_nn": ref_nn,
    }))
}

/// [`metrics`] of `reps` equal blocks of `generated` (independent sample sets) against the same
/// reference: with one block exactly [`metrics`]; with more, every number is the mean over the
/// blocks, `<key>_sd` (sample standard deviation) is added for the headline metrics, and
/// `repeats` lists each block's own metrics (E_AAI of 1000 samples against 500–1000 images
/// scatters by about ±0.004 between sample sets, so a threshold is better tested on the mean).
pub fn metrics_repeated(
    reference: &[f32],
    generated: &[f32],
    dim: usize,
    reps: usize,
    device: &Device,
) -> Result<Value> {
    let block = generated.len() / reps.max(1);
    if reps <= 1 {
        return metrics(reference, generated, dim, device);
    }
    let each = generated
        .chunks(block)
        .take(reps)
        .map(|g| metrics(reference, g, dim, device))
        .collect::<Result<Vec<_>>>()?;
    let mut v = each[0].clone();
    let keys: Vec<String> = each[0]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    for k in keys {
        let xs: Vec<f64> = each.iter().filter_map(|m| m[&k].as_f64()).collect();
        if xs.len() != each.len() || k == "n" {
            continue;
        }
        let (mean, sd) = mean_sample_sd(&xs);
        v[&k] = mean.into();
        if [
            "e_aai",
            "acc_s",
            "acc_t",
            "e2",
            "mean_pixel",
            "inverted_frac",
            "nn_ratio",
        ]
        .contains(&k.as_str())
        {
            v[format!("{k}_sd")] = sd.into();
        }
    }
    v["repeats"] = each.into();
    Ok(v)
}

/// The polarity check that ends `nlm train`: `chains` fresh chains from N(0, 1) (stream
/// [`streams::POLARITY`] of `seed`), `steps` Langevin steps at the model's temperature; their
/// mean pixel and inverted fraction against the training images (`train`, display space,
/// `[k, dim]`). Returns the figures as JSON with `ok` and, when not ok, `warning`.
pub fn polarity_check(
    nlm: &Nlm,
    train: &[f32],
    chains: usize,
    steps: usize,
    dt: f64,
    seed: u64,
    device: &Device,
) -> Result<Value> {
    let dim = nlm.n();
    let mut rng = Rng::derived(seed, streams::POLARITY);
    let (frames, x) = generate(nlm, chains, steps, dt, &[], &mut rng, device)?;
    let (_, last) = frames.last().context("no samples")?;
    let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64;
    let data_mean_image = mean_image(train, dim);
    let (m, dm) = (mean(last), mean(train));
    let inv = inverted_frac(last, &data_mean_image, dim);
    let energy = to_vec_f32(&nlm.energy(x).mean())?[0] as f64;
    let thermal = 0.5 * dim as f64 * nlm.temperature;
    let mut warning = polarity_warning(
        &format!("{chains} fresh samples ({steps} steps from N(0, 1))"),
        m,
        dm,
        inv,
    );
    if energy.is_nan() || energy > UNSTABLE_ENERGY * thermal {
        let unstable = format!(
            "the Langevin chains are unstable: the fresh samples' mean energy is {energy:.3e}, \
             {:.0}× the thermal level N·T/2 = {thermal:.0} (equilibrium sits near it). The \
             couplings are too stiff for dt = {dt}: try a smaller `--set dt=…`, a lower `--lr`, \
             or `--set stiffness_cap=1` if the run had it off",
            energy / thermal
        );
        warning = Some(match warning {
            Some(w) => format!("{unstable}; and {w}"),
            None => unstable,
        });
    }
    let mut v = json!({
        "chains": chains,
        "steps": steps,
        "mean_pixel": m,
        "data_mean_pixel": dm,
        "inverted_frac": inv,
        "data_inverted_frac": inverted_frac(train, &data_mean_image, dim),
        "energy": energy,
        "energy_thermal": thermal,
        "ok": warning.is_none(),
    });
    if let Some(w) = warning {
        v["warning"] = w.into();
    }
    Ok(v)
}

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
    /// Sample at this temperature instead of the run's (a diagnostic: the spec trains and
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
    /// Langevin steps (dt from the run's configuration).
    #[arg(long, default_value_t = 2000)]
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
}

/// `nlm generate`.
pub fn generate_cmd(
    a: &GenerateArgs,
    device: &Device,
    seed: Option<u64>,
    quiet: bool,
) -> Result<()> {
    check_counts(a.chains, a.steps)?;
    let l = load(&a.model, device)?;
    let dim = l.nlm.n();
    let frames = a.snapshots.map_or(0, |e| a.steps / e.max(1));
    check_chain_memory(a.chains, dim, frames)?;
    let mut rng = Rng::derived(seed.unwrap_or(l.cfg.seed), streams::GENERATE);
    let record: Vec<usize> = match a.snapshots {
        Some(0) => bail!("--snapshots must be >= 1"),
        Some(e) => (1..=a.steps / e).map(|i| i * e).collect(),
        None => Vec::new(),
    };
    let x0 = start_states(&l, a.init, a.chains, &mut rng, device)?;
    let bar = crate::progress::scope(a.steps as u64, "generate", quiet);
    let (frames, _) = generate_from(&l.nlm, x0, a.steps, l.cfg.dt, &record, &mut rng)?;
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
    println!(
        "{}",
        json!({"t_age": l.step, "chains": a.chains, "steps": a.steps, "init": a.init.name(),
               "mean_pixel": mean, "data_mean_pixel": data_mean, "png": out})
    );
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
    /// Langevin steps from N(0, 1) before the samples are taken (spec check 7 measures E² after
    /// at least 5000; fresh chains approach the model's equilibrium slowly).
    #[arg(long, default_value_t = 5000)]
    pub gen_steps: usize,
    /// Also measure at these generation steps (comma list), into `trace` (out-of-equilibrium
    /// study).
    #[arg(long)]
    pub record_at: Option<String>,
    /// Also relax the final samples this many noise-free steps (the denoising dynamics) and
    /// report their metrics under `relaxed` — a diagnostic of how much of the distance to the
    /// data is the sampling noise at T = 1; the main metrics stay the spec's.
    #[arg(long, default_value_t = 0)]
    pub relax_steps: usize,
    /// Where the chains start: `noise` (N(0, 1), the spec's protocol) or `data` (the training
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
}

/// `nlm eval`: writes eval.json and returns it.
pub fn eval_cmd(a: &EvalArgs, device: &Device, seed: Option<u64>, quiet: bool) -> Result<Value> {
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
    check_chain_memory(chains, dim, 0)?;
    let mut rng = Rng::derived(seed.unwrap_or(l.cfg.seed), streams::GENERATE);
    let record = match &a.record_at {
        Some(s) => parse_list(s)?,
        None => Vec::new(),
    };
    let t0 = std::time::Instant::now();
    let _bar = crate::progress::scope((a.gen_steps + a.relax_steps) as u64, "eval", quiet);
    let x0 = start_states(&l, a.init, chains, &mut rng, device)?;
    let (frames, x_final) = generate_from(&l.nlm, x0, a.gen_steps, l.cfg.dt, &record, &mut rng)?;
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
    if !held.is_empty() {
        v["test"] = metrics_repeated(&held, last, dim, a.repeats, device)?;
        v["test"]["first_image"] = first_held.into();
    }
    if !record.is_empty() {
        let mut trace = Vec::new();
        for (k, f) in &frames {
            let mut m = metrics_repeated(&train, f, dim, a.repeats, device)?;
            m["gen_steps"] = (*k).into();
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
    println!(
        "t_age {}: E_AAI {:.4}{sd} (Acc_S {:.3}, Acc_T {:.3}), E² {:.5}, mean pixel {:.3} (data {:.3}), inverted {:.1} %, energy {e_gen:.1} (data {e_data:.1}, N·T/2 {:.1})",
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

/// Top `k` principal axes (unit vectors, f64) of the rows of `x` (`[n, dim]`) by power
/// iteration with deflation; returns (mean, axes).
pub fn pca(x: &[f32], dim: usize, k: usize, rng: &mut Rng) -> (Vec<f64>, Vec<Vec<f64>>) {
    let n = x.len() / dim;
    let mut mean = vec![0f64; dim];
    for r in x.chunks(dim) {
        for (m, &v) in mean.iter_mut().zip(r) {
            *m += v as f64 / n as f64;
        }
    }
    let centred: Vec<Vec<f64>> = x
        .chunks(dim)
        .map(|r| r.iter().zip(&mean).map(|(&v, m)| v as f64 - m).collect())
        .collect();
    let mut axes: Vec<Vec<f64>> = Vec::new();
    for _ in 0..k {
        let mut v = rng.normal_vec_f64(dim);
        for _ in 0..200 {
            // w = Xᵀ X v, deflated.
            let mut w = vec![0f64; dim];
            for r in &centred {
                let s: f64 = r.iter().zip(&v).map(|(a, b)| a * b).sum();
                for (wi, ri) in w.iter_mut().zip(r) {
                    *wi += s * ri;
                }
            }
            for a in &axes {
                let s: f64 = a.iter().zip(&w).map(|(x, y)| x * y).sum();
                for (wi, ai) in w.iter_mut().zip(a) {
                    *wi -= s * ai;
                }
            }
            let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-300);
            v = w.into_iter().map(|x| x / norm).collect();
        }
        axes.push(v);
    }
    (mean, axes)
}

fn project(x: &[f32], mean: &[f64], axes: &[Vec<f64>]) -> Vec<f64> {
    axes.iter()
        .map(|a| {
            x.iter()
                .zip(mean)
                .zip(a)
                .map(|((&v, m), ai)| (v as f64 - m) * ai)
                .sum()
        })
        .collect()
}

/// Class of each row of `q` by majority of its `k` nearest labelled images.
pub fn knn_classes(
    q: &[f32],
    reference: &[f32],
    labels: &[u8],
    dim: usize,
    k: usize,
    device: &Device,
) -> Result<Vec<u8>> {
    let mut out = vec![0u8; q.len() / dim];
    for_each_distance_row(q, reference, dim, device, &mut |i, row| {
        let mut idx: Vec<usize> = (0..row.len()).collect();
        let kk = k.min(idx.len()).max(1);
        idx.select_nth_unstable_by(kk - 1, |&a, &b| row[a].total_cmp(&row[b]));
        let mut votes = [0usize; 256];
        for &j in &idx[..kk] {
            votes[labels[j] as usize] += 1;
        }
        out[i] = (0..256)
            .max_by_key(|&c| (votes[c], std::cmp::Reverse(c)))
            .unwrap_or(0) as u8;
    })?;
    Ok(out)
}

/// `nlm explore`: one long chain; snapshots PNG, PCA trajectory PNG, explore.json.
pub fn explore_cmd(
    a: &ExploreArgs,
    device: &Device,
    seed: Option<u64>,
    quiet: bool,
) -> Result<Value> {
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
    let bar = crate::progress::scope(a.steps as u64, "explore", quiet);
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
    /// Noise-free relaxation steps.
    #[arg(long, default_value_t = 450)]
    pub steps: usize,
    /// Output PNG (rows: original, corrupted, restored; default DIR/denoise.png).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// A corruption of x-space images.
#[derive(Clone, Copy, Debug)]
pub enum Corruption {
    /// Each neuron w.p. p replaced by U(−1, 1).
    Uniform(f64),
    /// Additive Gaussian noise of this SD.
    Gauss(f64),
    /// Each neuron w.p. p set to 0.
    Mask(f64),
}

impl std::str::FromStr for Corruption {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let (kind, val) = s
            .split_once(':')
            .with_context(|| format!("--corrupt `{s}`: expected uniform:P, gauss:S or mask:P"))?;
        let v: f64 = val
            .trim()
            .parse()
            .with_context(|| format!("--corrupt `{s}`: `{val}` is not a number"))?;
        let prob = |v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(v)
            } else {
                bail!("--corrupt `{s}`: the probability must lie in [0, 1]")
            }
        };
        Ok(match kind.trim() {
            "uniform" => Self::Uniform(prob(v)?),
            "mask" => Self::Mask(prob(v)?),
            "gauss" if v.is_finite() && v >= 0.0 => Self::Gauss(v),
            "gauss" => bail!("--corrupt `{s}`: the SD must be >= 0"),
            k => bail!("--corrupt `{s}`: unknown kind `{k}` (uniform, gauss, mask)"),
        })
    }
}

impl Corruption {
    /// Corrupts x-space values in place.
    pub fn apply(&self, x: &mut [f32], rng: &mut Rng) {
        for v in x.iter_mut() {
            match *self {
                Self::Uniform(p) => {
                    if rng.uniform(0.0, 1.0) < p {
                        *v = rng.uniform(-1.0, 1.0) as f32;
                    }
                }
                Self::Gauss(s) => *v += (s * rng.normal()) as f32,
                Self::Mask(p) => {
                    if rng.uniform(0.0, 1.0) < p {
                        *v = 0.0;
                    }
                }
            }
        }
    }
}

/// Result of denoising a set of images.
#[derive(Clone, Debug)]
pub struct Denoised {
    /// Clean images, display space.
    pub clean: Vec<f32>,
    /// Corrupted images, display space.
    pub corrupted: Vec<f32>,
    /// Restored images, display space.
    pub restored: Vec<f32>,
    /// Mean energy per step (0..=steps).
    pub energy: Vec<f64>,
    /// Mean MSE to the clean images per step.
    pub mse: Vec<f64>,
    /// Whether each restored image's nearest clean image is its own.
    pub nearest_correct: Vec<bool>,
}

/// Corrupts `clean_x` (x-space, `[k, N]`) and relaxes it without noise for `steps` steps.
pub fn denoise(
    nlm: &Nlm,
    clean_x: &[f32],
    corruption: Corruption,
    steps: usize,
    dt: f64,
    rng: &mut Rng,
    device: &Device,
) -> Result<Denoised> {
    let n = nlm.n();
    let k = clean_x.len() / n;
    let clean: Vec<f32> = clean_x.iter().map(|v| v.tanh()).collect();
    let mut xc = clean_x.to_vec();
    corruption.apply(&mut xc, rng);
    let corrupted: Vec<f32> = xc.iter().map(|v| v.tanh()).collect();
    let clean_t = tensor2_f32(clean.clone(), k, n, device);
    // Per-step energy and error stay on the device; one read-back after the relaxation.
    let mut curves = crate::transfer::Pending::default();
    let all: Vec<usize> = (1..=steps).collect();
    let x = langevin(
        nlm,
        tensor2_f32(xc, k, n, device),
        steps,
        dt,
        false,
        rng,
        &all,
        &mut |_, x| {
            let e = nlm.energy(x.clone()).mean();
            let m = (fast::tanh(x.clone()) - clean_t.clone())
                .powi_scalar(2)
                .mean();
            curves.push(Tensor::cat(vec![e.reshape([1, 1]), m.reshape([1, 1])], 1));
            Ok(())
        },
    )?;
    let curves = match curves.into_tensor() {
        Some(t) => to_vec_f32(&t)?,
        None => Vec::new(),
    };
    let energy: Vec<f64> = curves.chunks(2).map(|c| c[0] as f64).collect();
    let mse: Vec<f64> = curves.chunks(2).map(|c| c[1] as f64).collect();
    let restored = to_vec_f32(&fast::tanh(x))?;
    let nn = nearest(&restored, &clean, n, false, device)?;
    let nearest_correct = nn.iter().enumerate().map(|(i, (_, j))| i == *j).collect();
    Ok(Denoised {
        clean,
        corrupted,
        restored,
        energy,
        mse,
        nearest_correct,
    })
}

/// `nlm denoise`: PNG grid, energy PNG and denoise.json; returns the JSON.
pub fn denoise_cmd(
    a: &DenoiseArgs,
    device: &Device,
    seed: Option<u64>,
    quiet: bool,
) -> Result<Value> {
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
    let mut idx: Vec<usize> = a.test_index.clone();
    if let Some(k) = a.n_test {
        idx.extend(0..k);
    }
    for &i in &idx {
        if i >= l.data.held_out.len() {
            bail!(
                "--test-index {i} out of range: the held-out set has {} images",
                l.data.held_out.len()
            );
        }
        pixels.extend_from_slice(l.data.held_out.image(i));
        names.push(format!("held-out #{i}"));
    }
    if pixels.is_empty() {
        bail!("nothing to denoise: give --input PNG…, --test-index I… or --n-test K");
    }
    let x = atanh_map(&pixels, l.cfg.eps);
    let mut rng = Rng::derived(seed.unwrap_or(l.cfg.seed), streams::CORRUPT);
    let bar = crate::progress::scope(a.steps as u64, "denoise", quiet);
    let d = denoise(&l.nlm, &x, corruption, a.steps, l.cfg.dt, &mut rng, device)?;
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
        "best_step": best_step,
        "best_mse": best_mse,
        "nearest_correct_frac": correct,
        "energy_monotone": monotone,
        "energy_initial": d.energy.first(),
        "energy_final": d.energy.last(),
        "energy": d.energy,
        "mse": d.mse,
        "per_image": names.iter().enumerate().map(|(i, nm)| json!({
            "source": nm, "mse_corrupted": mc[i], "mse_restored": mr[i],
            "nearest_correct": d.nearest_correct[i]})).collect::<Vec<_>>(),
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
        "{k} images: MSE {:.4} → {:.4} (ratio {:.3}; best {:.4} at step {best_step}), nearest correct {:.2}, energy {:.3} → {:.3}{}",
        mean(&mc),
        mean(&mr),
        mean(&mr) / mean(&mc),
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
    use crate::device::{DeviceChoice, select};

    /// Images of 6×6 pixels: a dark background (−0.9) with a bright 3×3 block at one of four
    /// places around the centre (the mean image: a bright centre on a dark border).
    fn blocks(k: usize, rng: &mut Rng) -> Vec<f32> {
        let mut out = Vec::with_capacity(k * 36);
        for _ in 0..k {
            let (r0, c0) = [(1, 1), (1, 2), (2, 1), (2, 2)][rng.index(4)];
            for r in 0..6 {
                for c in 0..6 {
                    let on = (r0..r0 + 3).contains(&r) && (c0..c0 + 3).contains(&c);
                    out.push(if on { 0.9 } else { -0.9 });
                }
            }
        }
        out
    }

    #[test]
    fn inverted_frac_counts_negative_correlation_with_the_mean_image() {
        let mut rng = Rng::new(5);
        let data = blocks(200, &mut rng);
        let mean = mean_image(&data, 36);
        assert_eq!(inverted_frac(&data, &mean, 36), 0.0);
        let negated: Vec<f32> = data.iter().map(|v| -v).collect();
        assert_eq!(inverted_frac(&negated, &mean, 36), 1.0);
        // Half and half.
        let mut mixed = data[..50 * 36].to_vec();
        mixed.extend_from_slice(&negated[..50 * 36]);
        assert_eq!(inverted_frac(&mixed, &mean, 36), 0.5);
        // A blank dark image has the data's polarity (its background); a blank white one not.
        assert_eq!(inverted_frac(&[-0.9; 36], &mean, 36), 0.0);
        assert_eq!(inverted_frac(&[0.9; 36], &mean, 36), 1.0);
    }

    /// The polarity check of a model whose samples are the data's negatives warns (with the
    /// numbers); that of a model sampling the data's side does not. Both are J = 0 models at a
    /// low temperature, x ~ N(b, T): b = the data's mean state or its negative.
    #[test]
    fn polarity_check_warns_on_inverted_samples_only() -> Result<()> {
        let dev = select(DeviceChoice::Flex)?.device;
        let mut rng = Rng::new(6);
        let data = blocks(400, &mut rng);
        let x: Vec<f32> = data.iter().map(|v| v.atanh()).collect();
        let b = crate::models::nlm::initial_bias(&x, 36);
        let model = |sign: f32| {
            Nlm::from_tensors(
                Tensor::zeros([36, 36], &dev),
                tensor2_f32(b.iter().map(|v| sign * v).collect(), 1, 36, &dev),
                0.05,
            )
        };
        let good = polarity_check(&model(1.0), &data, 200, 300, 0.01, 1, &dev)?;
        assert_eq!(good["ok"], true, "{good}");
        assert!(good["inverted_frac"].as_f64() == Some(0.0), "{good}");
        assert!(good.get("warning").is_none());
        let bad = polarity_check(&model(-1.0), &data, 200, 300, 0.01, 1, &dev)?;
        assert_eq!(bad["ok"], false, "{bad}");
        assert!(bad["inverted_frac"].as_f64().unwrap() > 0.95, "{bad}");
        let w = bad["warning"].as_str().unwrap_or_default();
        assert!(w.contains("inverted") && w.contains("Try"), "{w}");
        // The bands themselves.
        assert!(polarity_warning("s", -0.70, -0.77, 0.0).is_none());
        assert!(polarity_warning("s", -0.50, -0.77, 0.0).is_some());
        assert!(polarity_warning("s", -0.77, -0.77, 0.05).is_some());
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

    #[test]
    fn aai_extremes() -> Result<()> {
        let dev = select(DeviceChoice::Flex)?.device;
        let mut rng = Rng::new(1);
        let dim = 8;
        let real: Vec<f32> = rng.normal_vec(50 * dim);
        // Copies: every generated point sits on a real one → Acc_S = Acc_T = 0.
        let copies: Vec<f32> = real.iter().map(|v| v + 1e-4).collect();
        let (e, s, t) = aai(&real, &copies, dim, &dev)?;
        assert!(
            s < 0.05 && t < 0.05 && (e - 0.25).abs() < 0.03,
            "{e} {s} {t}"
        );
        // Far away: Acc = 1.
        let far: Vec<f32> = rng.normal_vec(50 * dim).iter().map(|v| v + 20.0).collect();
        let (e, s, t) = aai(&real, &far, dim, &dev)?;
        assert!(s == 1.0 && t == 1.0 && (e - 0.25).abs() < 1e-12);
        // Same distribution: near 0.5.
        let same: Vec<f32> = Rng::new(2).normal_vec(400 * dim);
        let real2: Vec<f32> = Rng::new(3).normal_vec(400 * dim);
        let (e, _, _) = aai(&real2, &same, dim, &dev)?;
        assert!(e < 0.02, "E_AAI {e}");
        Ok(())
    }

    #[test]
    fn e2_and_pca() -> Result<()> {
        let dev = select(DeviceChoice::Flex)?.device;
        let mut rng = Rng::new(4);
        let a: Vec<f32> = rng.normal_vec(3000 * 3);
        let b: Vec<f32> = a.iter().map(|v| 2.0 * v).collect();
        // cov(b) = 4 cov(a) ≈ 4I → mean squared diff over 9 entries ≈ 9·3/9 = 3.
        let v = e2(&a, &b, 3, &dev)?;
        assert!((v - 3.0).abs() < 0.3, "{v}");
        assert!(e2(&a, &a, 3, &dev)? < 1e-10);
        // PCA recovers the stretched axis.
        let s: Vec<f32> = a.chunks(3).flat_map(|r| [r[0], 5.0 * r[1], r[2]]).collect();
        let (_, axes) = pca(&s, 3, 1, &mut rng);
        assert!(axes[0][1].abs() > 0.99, "{:?}", axes[0]);
        Ok(())
    }

    #[test]
    fn prepare_binarizes_after_pooling() -> Result<()> {
        let mut cfg = NlmConfig::new();
        cfg.pool = 2;
        cfg.n_data = 50;
        cfg.eps = 0.01;
        let grey = prepare(&cfg)?;
        cfg.binarize = true;
        let bin = prepare(&cfg)?;
        assert_eq!((bin.train.rows, bin.train.len()), (14, 50));
        assert_eq!(bin.held_out.len(), grey.held_out.len());
        // Pooling makes grey pixels; binarising leaves only 0 and 1, thresholded at 0.5, in the
        // training and held-out images alike, and every unit at ±atanh(0.99).
        assert!(grey.train.pixels.iter().any(|&p| p > 0.1 && p < 0.9));
        for (set, raw) in [(&bin.train, &grey.train), (&bin.held_out, &grey.held_out)] {
            assert!(
                set.pixels
                    .iter()
                    .zip(&raw.pixels)
                    .all(|(&b, &g)| b == if g > 0.5 { 1.0 } else { 0.0 })
            );
        }
        let sat = 0.99f32.atanh();
        assert!(bin.x_train.iter().all(|&x| (x.abs() - sat).abs() < 1e-5));
        Ok(())
    }

    #[test]
    fn corruption_parse() {
        assert!(
            matches!("uniform:0.25".parse::<Corruption>(), Ok(Corruption::Uniform(p)) if p == 0.25)
        );
        assert!("uniform:2".parse::<Corruption>().is_err());
        assert!("blur:1".parse::<Corruption>().is_err());
        assert!("gauss:x".parse::<Corruption>().is_err());
        assert!("mask".parse::<Corruption>().is_err());
    }
}
