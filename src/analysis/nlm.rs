//! NLM measurements (no CLI, no output files): data preparation, Langevin sampling and
//! generation, the paper's metrics (E_AAI, Acc_S, Acc_T, E²), the polarity check, principal
//! components, nearest-neighbour classes, corruptions and denoising. The `nlm …` commands that
//! load runs are in the library's run-level layer (`api::nlm`).

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor};
use serde_json::{Value, json};

use crate::data::images::{ImageSet, atanh_map, filter_labels, load_source};
use crate::device::fast;
use crate::models::nlm::{DataOrder, Nlm, NlmConfig, streams};
use crate::rng::Rng;
use crate::sde::solver::EulerMaruyama;
use crate::stats::mean_sample_sd;
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

/// Loads, filters, pools and maps the images named by `cfg`, then splits them:
/// PNG folders are first shuffled by the run's seed (`data_order`); the first `n_data` images
/// are trained on and the rest held out, or, when the pool has no more than `n_data` images,
/// the last `held_out` share of it is held out.
pub fn prepare(cfg: &NlmConfig) -> Result<NlmData> {
    prepare_with(cfg, false)
}

/// [`prepare`] for a trained run's configuration: a folder of images that is no longer there
/// is named as the run's training images.
pub fn prepare_trained(cfg: &NlmConfig) -> Result<NlmData> {
    prepare_with(cfg, true)
}

fn prepare_with(cfg: &NlmConfig, trained: bool) -> Result<NlmData> {
    if let (true, crate::config::Source::Path(p)) = (trained, &cfg.data)
        && !p.exists()
    {
        bail!(
            "this run was trained on images at {}, which cannot be found (put them back there, \
             or set `data` in the run's config.json to where they are now)",
            p.display()
        );
    }
    let (set, _) = load_source(&cfg.data.to_string())?;
    let mut warnings = set.warnings.clone();
    let class_folders = set.class_names.is_some();
    let set = if (set.labels.is_none() || class_folders) && !cfg.digits.is_empty() {
        // `digits` picks MNIST-style labels; unlabelled images, and class-folder sets (whose
        // classes are the sub-folders given), are taken whole.
        if cfg.digits != [1, 3, 6] {
            warnings.push(format!(
                "{} {}: --digits {:?} ignored",
                set.source,
                if class_folders {
                    "has its classes as sub-folders (keep the ones wanted in the folder)"
                } else {
                    "has no labels"
                },
                cfg.digits
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
    let order = data_order(&set, cfg);
    let (n_data, note) = split_sizes(set.len(), cfg.n_data, cfg.held_out);
    warnings.extend(note);
    let train = set.select(&order[..n_data]);
    let held_out = set.select(&order[n_data..]);
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

/// The order in which the pool's images are split: a PNG folder's shuffled by the run's seed
/// (stream [`streams::DATA_ORDER`]) under `data_order = "shuffled"`; otherwise as loaded.
pub fn data_order(set: &ImageSet, cfg: &NlmConfig) -> Vec<usize> {
    let mut order: Vec<usize> = (0..set.len()).collect();
    if set.is_png_folder() && cfg.data_order == DataOrder::Shuffled {
        let mut rng = Rng::derived(cfg.seed, streams::DATA_ORDER);
        for i in (1..order.len()).rev() {
            order.swap(i, rng.index(i + 1));
        }
    }
    order
}

/// How many of a pool of `pool` images are trained on when `n_data` are asked for: `n_data`
/// when the pool is larger (the rest is held out), else the pool less its `held_out` share
/// (rounded down); with the warning to give, if any.
pub fn split_sizes(pool: usize, n_data: usize, held_out: f64) -> (usize, Option<String>) {
    if n_data < pool {
        return (n_data, None);
    }
    let hold = (pool as f64 * held_out).floor() as usize;
    let hold = hold.min(pool.saturating_sub(1));
    if held_out <= 0.0 {
        let note = (n_data > pool).then(|| {
            format!(
                "n_data = {n_data} but only {pool} images are selected: training on all of them"
            )
        });
        return (pool, note);
    }
    if hold == 0 {
        return (
            pool,
            Some(format!(
                "only {pool} images are selected (n_data = {n_data}): too few to hold out \
                 {:.0} % of them, so every image is trained on and none is held out for \
                 `nlm denoise --n-test` or the held-out metrics",
                100.0 * held_out
            )),
        );
    }
    (
        pool - hold,
        Some(format!(
            "n_data = {n_data} but only {pool} images are selected: training on {} and holding \
             out {hold} ({:.0} %, `held_out`)",
            pool - hold,
            100.0 * held_out
        )),
    )
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Init {
    /// Fresh N(0, 1) states (the paper's protocol).
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

/// How `nlm generate` and `nlm eval` draw samples of the model at its temperature T.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GenSampler {
    /// Langevin dynamics at T from the start states (Euler–Maruyama; the paper's sampler).
    Langevin,
    /// Replica exchange (parallel tempering): besides every chain at T, copies at a geometric
    /// ladder of higher temperatures up to `t_max`·T, all Langevin; every `swap_every` steps
    /// neighbouring temperatures exchange states by the Metropolis rule, so that states found
    /// while hot reach T. The chains at T sample the same distribution as `langevin`; the
    /// samples are theirs. Costs `replicas` times the steps.
    Tempering,
}

impl GenSampler {
    /// The name written to JSON.
    pub fn name(self) -> &'static str {
        match self {
            GenSampler::Langevin => "langevin",
            GenSampler::Tempering => "tempering",
        }
    }
}

/// The temperature ladder of [`GenSampler::Tempering`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tempering {
    /// Temperatures, T included (≥ 2).
    pub replicas: usize,
    /// The hottest temperature over T (> 1).
    pub t_max: f64,
    /// Langevin steps between exchange rounds (≥ 1).
    pub swap_every: usize,
}

impl Tempering {
    /// The ladder T·t_max^(k/(R−1)), k = 0…R−1.
    pub fn ladder(&self, t: f64) -> Vec<f64> {
        let r = self.replicas.max(2);
        (0..r)
            .map(|k| t * self.t_max.powf(k as f64 / (r - 1) as f64))
            .collect()
    }

    /// Rejects ladders that are not ones.
    pub fn validate(&self) -> Result<()> {
        if !(2..=64).contains(&self.replicas) {
            bail!("--replicas must be between 2 and 64, got {}", self.replicas);
        }
        if !(self.t_max.is_finite() && self.t_max > 1.0 && self.t_max <= 100.0) {
            bail!("--t-max must lie in (1, 100], got {}", self.t_max);
        }
        if self.swap_every == 0 {
            bail!("--swap-every must be >= 1");
        }
        Ok(())
    }
}

/// Replica-exchange generation from `x0` (`[chains, N]`, the chains at T) as
/// [`generate_from`]: the replicas above T start from N(0, 1) draws of `rng`; rounds of
/// `swap_every` Langevin steps at each temperature alternate with exchanges between the even
/// or the odd neighbouring pairs (in turn), each chain's pair accepting with probability
/// min(1, exp((1/T_a − 1/T_b)(E_a − E_b))). The frames are the chains at T. Also returns the
/// share of exchanges accepted. Everything stays on the device; one read-back at the end.
pub fn generate_tempering(
    nlm: &Nlm,
    x0: Tensor<2>,
    steps: usize,
    dt: f64,
    record: &[usize],
    rng: &mut Rng,
    ladder: &Tempering,
) -> Result<(Frames, Tensor<2>, f64)> {
    ladder.validate()?;
    let [chains, n] = x0.dims();
    let device = x0.device();
    let temps = ladder.ladder(nlm.temperature);
    let models: Vec<Nlm> = temps
        .iter()
        .map(|&t| {
            let mut m = nlm.clone();
            m.temperature = t;
            m
        })
        .collect();
    let mut xs = vec![x0];
    for _ in 1..temps.len() {
        xs.push(crate::models::nlm::gaussian(rng, chains, n, 1.0, &device));
    }
    let mut rec: Vec<usize> = record
        .iter()
        .copied()
        .filter(|&s| s > 0 && s < steps)
        .collect();
    rec.sort_unstable();
    rec.dedup();
    let mut steps_at = Vec::new();
    let mut frames = Vec::new();
    let mut accepted: Option<Tensor<1>> = None;
    let mut proposals = 0usize;
    let (mut done, mut round) = (0usize, 0usize);
    while done < steps {
        let len = ladder.swap_every.min(steps - done);
        for (r, m) in models.iter().enumerate() {
            let local: Vec<usize> = if r == 0 {
                rec.iter()
                    .filter(|&&s| s > done && s <= done + len)
                    .map(|&s| s - done)
                    .collect()
            } else {
                Vec::new()
            };
            let x = xs[r].clone();
            xs[r] = langevin(m, x, len, dt, true, rng, &local, &mut |k, x| {
                if k > 0 {
                    steps_at.push(done + k);
                    frames.push(fast::tanh(x.clone()));
                }
                Ok(())
            })?;
        }
        done += len;
        let mut a = round % 2;
        while a + 1 < models.len() {
            let b = a + 1;
            let (ea, eb) = (nlm.energy(xs[a].clone()), nlm.energy(xs[b].clone()));
            let log_acc = (ea - eb).mul_scalar(1.0 / temps[a] - 1.0 / temps[b]);
            let z = crate::models::nlm::gaussian(rng, chains, 1, 1.0, &device);
            let u = z
                .mul_scalar(std::f64::consts::FRAC_1_SQRT_2)
                .erf()
                .add_scalar(1.0)
                .mul_scalar(0.5);
            let acc = u.lower(log_acc.clamp_max(80.0).exp()).float();
            let diff = (xs[b].clone() - xs[a].clone()) * acc.clone();
            xs[a] = xs[a].clone() + diff.clone();
            xs[b] = xs[b].clone() - diff;
            let sum = acc.sum();
            accepted = Some(match accepted.take() {
                Some(t) => t + sum,
                None => sum,
            });
            proposals += chains;
            a += 2;
        }
        round += 1;
    }
    let x = xs.swap_remove(0);
    steps_at.push(steps);
    frames.push(fast::tanh(x.clone()));
    let out = steps_at
        .into_iter()
        .zip(crate::transfer::download_all(&frames)?)
        .collect();
    let rate = match accepted {
        Some(t) => to_vec_f32(&t)?[0] as f64 / proposals.max(1) as f64,
        None => f64::NAN,
    };
    Ok((out, x, rate))
}

// ---------------------------------------------------------------------------------------------
// Metrics
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

/// The upper median of `v` (NaN when empty).
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
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

/// The paper's metric block of generated images against reference images, as [`metrics`]
/// returns it (and `nlm eval` writes it); with several sample sets ([`metrics_repeated`]) every
/// number is the mean over the sets, the headline metrics have a `<key>_sd` (sample standard
/// deviation; absent where a set's value is not finite) and `repeats` lists each set's own block.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Metrics {
    /// Sample–reference pairs compared (min of the two counts; of the first set).
    pub n: usize,
    /// E_AAI: the mean of |Acc_S − ½| and |Acc_T − ½| (0 at indistinguishable sets).
    pub e_aai: f64,
    /// Acc_S: share of samples whose nearest neighbour is a sample.
    pub acc_s: f64,
    /// Acc_T: share of references whose nearest neighbour is a reference.
    pub acc_t: f64,
    /// E²: the squared distance of the pixel covariances.
    pub e2: f64,
    /// Mean pixel of the samples (display space).
    pub mean_pixel: f64,
    /// Mean pixel of the references.
    pub data_mean_pixel: f64,
    /// Share of positive sample pixels.
    pub frac_positive: f64,
    /// Share of positive reference pixels.
    pub data_frac_positive: f64,
    /// Share of samples with negative overlap with the references' mean image.
    pub inverted_frac: f64,
    /// The same for the references themselves.
    pub data_inverted_frac: f64,
    /// Median sample-to-nearest-reference distance over `ref_nn`.
    pub nn_ratio: f64,
    /// Median reference-to-nearest-other-reference distance.
    pub ref_nn: f64,
    /// Sample SD of `e_aai` over the sets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e_aai_sd: Option<f64>,
    /// Sample SD of `acc_s` over the sets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acc_s_sd: Option<f64>,
    /// Sample SD of `acc_t` over the sets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acc_t_sd: Option<f64>,
    /// Sample SD of `e2` over the sets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e2_sd: Option<f64>,
    /// Sample SD of `mean_pixel` over the sets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_pixel_sd: Option<f64>,
    /// Sample SD of `inverted_frac` over the sets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inverted_frac_sd: Option<f64>,
    /// Sample SD of `nn_ratio` over the sets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nn_ratio_sd: Option<f64>,
    /// Each set's own block (more than one set only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeats: Option<Vec<Metrics>>,
}

/// The paper's metric block of generated images against reference images (both in display
/// space, `[n, dim]`): e_aai, acc_s, acc_t, e2, the mean pixel of each, the fraction of
/// positive pixels, the fraction of inverted images (`inverted_frac`: negative overlap with
/// the reference mean image, see [`inverted_frac`]; `data_inverted_frac` for the references themselves), and the
/// nearest-neighbour distance ratio (median distance of a sample to its nearest reference over
/// the median reference-to-reference nearest distance, `ref_nn`).
pub fn metrics(
    reference: &[f32],
    generated: &[f32],
    dim: usize,
    device: &Device,
) -> Result<Metrics> {
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
    Ok(Metrics {
        n,
        e_aai: e,
        acc_s,
        acc_t,
        e2: cov,
        mean_pixel: mean(g),
        data_mean_pixel: mean(r),
        frac_positive: pos(g),
        data_frac_positive: pos(r),
        inverted_frac: inverted_frac(g, &ref_mean, dim),
        data_inverted_frac: inverted_frac(r, &ref_mean, dim),
        nn_ratio: gen_nn / ref_nn,
        ref_nn,
        e_aai_sd: None,
        acc_s_sd: None,
        acc_t_sd: None,
        e2_sd: None,
        mean_pixel_sd: None,
        inverted_frac_sd: None,
        nn_ratio_sd: None,
        repeats: None,
    })
}

/// [`metrics`] of `reps` equal blocks of `generated` (independent sample sets) against the same
/// reference: with one block exactly [`metrics`]; with more, every number is the mean over the
/// blocks, `<key>_sd` (sample standard deviation) is added for the headline metrics, and
/// `repeats` lists each block's own metrics (E_AAI of 1000 samples against 500–1000 images
/// scatters by about ±0.004 between sample sets, so a threshold is better tested on the mean).
/// A number that is not finite in some block keeps the first block's value and gets no SD.
pub fn metrics_repeated(
    reference: &[f32],
    generated: &[f32],
    dim: usize,
    reps: usize,
    device: &Device,
) -> Result<Metrics> {
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
    // The mean over the blocks (and its SD) where every block's value is finite.
    let agg = |get: fn(&Metrics) -> f64| -> Option<(f64, f64)> {
        let xs: Vec<f64> = each.iter().map(get).filter(|x| x.is_finite()).collect();
        (xs.len() == each.len()).then(|| mean_sample_sd(&xs))
    };
    let mean_sd = |field: &mut f64, get: fn(&Metrics) -> f64| -> Option<f64> {
        let (m, sd) = agg(get)?;
        *field = m;
        Some(sd)
    };
    v.e_aai_sd = mean_sd(&mut v.e_aai, |m| m.e_aai);
    v.acc_s_sd = mean_sd(&mut v.acc_s, |m| m.acc_s);
    v.acc_t_sd = mean_sd(&mut v.acc_t, |m| m.acc_t);
    v.e2_sd = mean_sd(&mut v.e2, |m| m.e2);
    v.mean_pixel_sd = mean_sd(&mut v.mean_pixel, |m| m.mean_pixel);
    v.inverted_frac_sd = mean_sd(&mut v.inverted_frac, |m| m.inverted_frac);
    v.nn_ratio_sd = mean_sd(&mut v.nn_ratio, |m| m.nn_ratio);
    mean_sd(&mut v.data_mean_pixel, |m| m.data_mean_pixel);
    mean_sd(&mut v.frac_positive, |m| m.frac_positive);
    mean_sd(&mut v.data_frac_positive, |m| m.data_frac_positive);
    mean_sd(&mut v.data_inverted_frac, |m| m.data_inverted_frac);
    mean_sd(&mut v.ref_nn, |m| m.ref_nn);
    v.repeats = Some(each);
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
// Principal components and nearest-neighbour classes (`nlm explore`)
// ---------------------------------------------------------------------------------------------

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

/// Coordinates of the row `x` along `axes` around `mean` (as from [`pca`]).
pub(crate) fn project(x: &[f32], mean: &[f64], axes: &[Vec<f64>]) -> Vec<f64> {
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

/// The label of each row of `q` (`[k, dim]`, display space) taken from its nearest image of
/// `reference` (`[m, dim]`, display space), whose labels are `labels`.
pub fn nearest_labels(
    q: &[f32],
    reference: &[f32],
    labels: &[u8],
    dim: usize,
    device: &Device,
) -> Result<Vec<u8>> {
    Ok(nearest(q, reference, dim, false, device)?
        .into_iter()
        .map(|(_, j)| labels[j])
        .collect())
}

/// The share of chains that end in the class of the training image they started at: chain `c`
/// started at training image `c mod starts`; each final state `q` (`[chains, dim]`) is labelled
/// by its nearest training image in `reference`.
pub fn class_stay_frac(
    q: &[f32],
    reference: &[f32],
    labels: &[u8],
    starts: usize,
    dim: usize,
    device: &Device,
) -> Result<f64> {
    let got = nearest_labels(q, reference, labels, dim, device)?;
    let stay = got
        .iter()
        .enumerate()
        .filter(|&(i, &g)| g == labels[i % starts.max(1)])
        .count();
    Ok(stay as f64 / got.len().max(1) as f64)
}

/// The share of each class `0..classes` among `labels` (all zero when there are none).
pub fn class_shares(labels: &[u8], classes: usize) -> Vec<f64> {
    let mut counts = vec![0usize; classes];
    for &l in labels {
        if let Some(c) = counts.get_mut(l as usize) {
            *c += 1;
        }
    }
    let total = labels.len().max(1) as f64;
    counts.into_iter().map(|c| c as f64 / total).collect()
}

/// Total variation distance ½ Σ_c |p_c − q_c| between two share vectors of the same classes.
pub fn total_variation(p: &[f64], q: &[f64]) -> f64 {
    0.5 * p.iter().zip(q).map(|(a, b)| (a - b).abs()).sum::<f64>()
}

/// Classes present in the data (`data` shares) whose share among the samples is below a
/// quarter of it.
pub fn starved_classes(samples: &[f64], data: &[f64]) -> Vec<usize> {
    data.iter()
        .zip(samples)
        .enumerate()
        .filter(|(_, (d, s))| **d > 0.0 && **s < 0.25 * **d)
        .map(|(c, _)| c)
        .collect()
}

/// The class-share block of `nlm eval` for samples `gen_` (`[k, dim]`, display space) labelled
/// by their nearest training image (`train`, display space, with `labels`): `class_shares`,
/// `data_class_shares` (of the training images), `class_tv` (their total variation distance),
/// `classes_starved` (how many data classes get under a quarter of their share) and the class
/// names, in label order.
pub fn class_share_metrics(
    gen_: &[f32],
    train: &ImageSet,
    train_signed: &[f32],
    device: &Device,
) -> Result<Option<ClassShares>> {
    let Some(labels) = &train.labels else {
        return Ok(None);
    };
    let dim = train.dim();
    let classes = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    let present: Vec<usize> = (0..classes)
        .filter(|&c| labels.iter().any(|&l| l as usize == c))
        .collect();
    let got = nearest_labels(gen_, train_signed, labels, dim, device)?;
    let (ps, pd) = (class_shares(&got, classes), class_shares(labels, classes));
    let pick = |v: &[f64]| present.iter().map(|&c| v[c]).collect::<Vec<f64>>();
    let (ps, pd) = (pick(&ps), pick(&pd));
    let starved = starved_classes(&ps, &pd);
    Ok(Some(ClassShares {
        classes: present.iter().map(|&c| train.class_name(c as u8)).collect(),
        class_tv: total_variation(&ps, &pd),
        classes_starved: starved.len(),
        starved_classes: starved
            .iter()
            .map(|&i| train.class_name(present[i] as u8))
            .collect(),
        class_samples: got.len(),
        class_shares: ps,
        data_class_shares: pd,
    }))
}

/// The samples' class shares against the data's ([`class_share_metrics`]), classes in label
/// order.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ClassShares {
    /// The names of the classes present in the training images.
    pub classes: Vec<String>,
    /// The samples' share in each class (labelled by their nearest training image).
    pub class_shares: Vec<f64>,
    /// The training images' share in each class.
    pub data_class_shares: Vec<f64>,
    /// Total variation distance of the two.
    pub class_tv: f64,
    /// How many data classes get under a quarter of their share.
    pub classes_starved: usize,
    /// Their names.
    pub starved_classes: Vec<String>,
    /// Samples labelled.
    pub class_samples: usize,
}

// ---------------------------------------------------------------------------------------------
// Corruption and denoising
// ---------------------------------------------------------------------------------------------

/// A corruption of x-space images.
#[derive(Clone, Copy, Debug, PartialEq)]
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

impl std::fmt::Display for Corruption {
    /// `uniform:P`, `gauss:S` or `mask:P`, as parsed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Uniform(p) => write!(f, "uniform:{p}"),
            Self::Gauss(s) => write!(f, "gauss:{s}"),
            Self::Mask(p) => write!(f, "mask:{p}"),
        }
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

/// Where the noise-free relaxation of `nlm denoise` stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stop {
    /// Each image stops at the first step where its energy has fallen to the training images'
    /// typical (median) energy under the model — where the data live, since at T = 1 the data
    /// sit at the thermal level, not at the energy minimum — or after `--steps`; needs no clean
    /// image.
    Energy,
    /// All `--steps` steps, toward the energy minimum (what earlier releases did).
    Minimum,
}

impl Stop {
    /// The name written to JSON.
    pub fn name(self) -> &'static str {
        match self {
            Stop::Energy => "energy",
            Stop::Minimum => "minimum",
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
    /// Restored images, display space: each image's state where it stopped.
    pub restored: Vec<f32>,
    /// Mean energy per step (0..=steps) of the whole relaxation.
    pub energy: Vec<f64>,
    /// Mean MSE to the clean images per step of the whole relaxation.
    pub mse: Vec<f64>,
    /// Whether each restored image's nearest clean image is its own.
    pub nearest_correct: Vec<bool>,
    /// The step each image stopped at (`steps` when it never reached the stopping energy).
    pub stop_step: Vec<usize>,
    /// Whether each image reached the stopping energy (always true without one).
    pub stop_reached: Vec<bool>,
}

/// Per-image energies `[k]` of x-space states `x` (`[k, N]`), in blocks of rows.
pub fn energies(nlm: &Nlm, x: &[f32], device: &Device) -> Result<Vec<f64>> {
    let n = nlm.n();
    let k = x.len() / n.max(1);
    let block = (2_000_000 / n.max(1)).clamp(1, 4096);
    let mut out = Vec::with_capacity(k);
    let mut start = 0;
    while start < k {
        let rows = block.min(k - start);
        let t = tensor2_f32(x[start * n..(start + rows) * n].to_vec(), rows, n, device);
        out.extend(to_vec_f32(&nlm.energy(t))?.into_iter().map(f64::from));
        start += rows;
    }
    Ok(out)
}

/// Corrupts `clean_x` (x-space, `[k, N]`) and relaxes it without noise for `steps` steps; with
/// `stop_energy`, each image's result is its state at the first step (0 included) where its
/// energy is at most that, or the last state when it never is.
#[allow(clippy::too_many_arguments)]
pub fn denoise(
    nlm: &Nlm,
    clean_x: &[f32],
    corruption: Corruption,
    steps: usize,
    dt: f64,
    stop_energy: Option<f64>,
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
    // Per-step energies and error stay on the device; one read-back after the relaxation. So do
    // the stopped states: `chosen` takes each image's state at the step it first reaches the
    // stopping energy (`done` marks those), by masks, without a host round trip per step.
    let mut curves = crate::transfer::Pending::default();
    let mut chosen: Option<Tensor<2>> = None;
    let mut done: Option<Tensor<2>> = None;
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
            let e = nlm.energy(x.clone());
            let m = (fast::tanh(x.clone()) - clean_t.clone())
                .powi_scalar(2)
                .mean();
            curves.push(Tensor::cat(
                vec![e.clone().reshape([1, k]), m.reshape([1, 1])],
                1,
            ));
            if let Some(thr) = stop_energy {
                // `chosen` holds the stopped images' states and zeros elsewhere.
                let reached = e.lower_equal_elem(thr).float();
                let (c, d) = match (chosen.take(), done.take()) {
                    (Some(c), Some(d)) => {
                        let newly = reached * (d.clone().neg().add_scalar(1.0));
                        (c + x.clone() * newly.clone(), d + newly)
                    }
                    _ => (x.clone() * reached.clone(), reached),
                };
                chosen = Some(c);
                done = Some(d);
            }
            Ok(())
        },
    )?;
    let curves = match curves.into_tensor() {
        Some(t) => to_vec_f32(&t)?,
        None => Vec::new(),
    };
    let rows: Vec<&[f32]> = curves.chunks(k + 1).collect();
    let energy: Vec<f64> = rows
        .iter()
        .map(|r| r[..k].iter().map(|&v| v as f64).sum::<f64>() / k.max(1) as f64)
        .collect();
    let mse: Vec<f64> = rows.iter().map(|r| r[k] as f64).collect();
    let (final_x, stop_step, stop_reached) = match (stop_energy, chosen, done) {
        (Some(thr), Some(c), Some(d)) => {
            // Images that never reached the energy keep their last state.
            let xs = c + x * d.neg().add_scalar(1.0);
            let mut step = vec![steps; k];
            let mut reached = vec![false; k];
            for (i, (s, r)) in step.iter_mut().zip(reached.iter_mut()).enumerate() {
                if let Some(t) = rows.iter().position(|row| row[i] <= thr as f32) {
                    *s = t;
                    *r = true;
                }
            }
            (xs, step, reached)
        }
        _ => (x, vec![steps; k], vec![true; k]),
    };
    let restored = to_vec_f32(&fast::tanh(final_x))?;
    let nn = nearest(&restored, &clean, n, false, device)?;
    let nearest_correct = nn.iter().enumerate().map(|(i, (_, j))| i == *j).collect();
    Ok(Denoised {
        clean,
        corrupted,
        restored,
        energy,
        mse,
        nearest_correct,
        stop_step,
        stop_reached,
    })
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

    /// With J = 0 and b = 0 the noise-free relaxation is x_t = x_0 (1 − dt)^t and the energy
    /// ½‖x_t‖² falls by (1 − dt)² a step: each image stops at the first step where its own energy
    /// is at most the stopping energy, holding that step's state while the others go on; one
    /// whose energy never gets there ends at the last step; `None` runs every step.
    #[test]
    fn denoising_stops_each_image_at_the_stopping_energy() -> Result<()> {
        let dev = select(DeviceChoice::Flex)?.device;
        let n = 4;
        let model = Nlm::from_tensors(
            Tensor::zeros([n, n], &dev),
            Tensor::zeros([1, n], &dev),
            1.0,
        );
        // Energies ½·4·s² = 2s²: 18, 2 and 0.02·… for s = 3, 1, 0.1.
        let x: Vec<f32> = [3.0f32, 1.0, 0.1]
            .iter()
            .flat_map(|&s| [s, -s, s, -s])
            .collect();
        let (dt, steps, thr) = (0.1, 30, 1.5);
        let run = |stop: Option<f64>| {
            denoise(
                &model,
                &x,
                Corruption::Gauss(0.0),
                steps,
                dt,
                stop,
                &mut Rng::new(1),
                &dev,
            )
        };
        let d = run(Some(thr))?;
        let first = |e0: f64| (0..=steps).find(|&t| e0 * (1.0 - dt).powi(2 * t as i32) <= thr);
        let want = [first(18.0).unwrap(), first(2.0).unwrap(), 0];
        assert_eq!(d.stop_step, want, "{:?}", d.stop_step);
        assert!(want[0] > want[1] && want[1] > 0);
        assert_eq!(d.stop_reached, vec![true; 3]);
        for (i, (&s, &t)) in [3.0f64, 1.0, 0.1].iter().zip(&want).enumerate() {
            let v = (s * (1.0 - dt).powi(t as i32)).tanh();
            assert!(
                (d.restored[i * n] as f64 - v).abs() < 1e-4,
                "{i}: {} vs {v}",
                d.restored[i * n]
            );
        }
        // Unreachable: every image runs to the end, as without a stopping energy.
        let never = run(Some(-1.0))?;
        let all = run(None)?;
        assert_eq!(never.stop_step, vec![steps; 3]);
        assert_eq!(never.stop_reached, vec![false; 3]);
        assert_eq!(never.restored, all.restored);
        assert_eq!(all.energy.len(), steps + 1);
        Ok(())
    }

    /// Replica exchange leaves the distribution at T alone: with J = 0 the model at T = 1 is
    /// x ~ N(b, I); the chains at T keep that mean and unit variance although their partners
    /// run up to 4× hotter (exchanges accepted every time would give variance about 2), and a
    /// share of the exchanges, neither none nor all, is accepted.
    #[test]
    fn tempering_samples_the_distribution_at_t() -> Result<()> {
        let dev = select(DeviceChoice::Flex)?.device;
        let n = 4;
        let b = [1.0f32, -1.0, 0.5, 0.0];
        let model = Nlm::from_tensors(
            Tensor::zeros([n, n], &dev),
            tensor2_f32(b.to_vec(), 1, n, &dev),
            1.0,
        );
        let chains = 500;
        let mut rng = Rng::new(11);
        let x0 = crate::models::nlm::gaussian(&mut rng, chains, n, 1.0, &dev);
        let ladder = Tempering {
            replicas: 4,
            t_max: 4.0,
            swap_every: 5,
        };
        let (frames, _, rate) =
            generate_tempering(&model, x0, 1500, 0.01, &[700], &mut rng, &ladder)?;
        assert_eq!(
            frames.iter().map(|f| f.0).collect::<Vec<_>>(),
            vec![700, 1500]
        );
        assert!(rate > 0.05 && rate < 0.95, "acceptance {rate}");
        // Back from tanh to x; pool both frames (1000 draws per coordinate).
        let xs: Vec<f64> = frames
            .iter()
            .flat_map(|f| {
                f.1.iter()
                    .map(|&v| (v as f64).clamp(-0.999_999, 0.999_999).atanh())
            })
            .collect();
        for (i, &bi) in b.iter().enumerate() {
            let col: Vec<f64> = xs.chunks(n).map(|r| r[i]).collect();
            let m = col.iter().sum::<f64>() / col.len() as f64;
            let var = col.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (col.len() - 1) as f64;
            assert!(
                (m - bi as f64).abs() < 0.15,
                "coordinate {i}: mean {m} vs {bi}"
            );
            assert!((var - 1.0).abs() < 0.15, "coordinate {i}: variance {var}");
        }
        assert!(ladder.validate().is_ok());
        let bad = Tempering {
            t_max: 1.0,
            ..ladder
        };
        assert!(bad.validate().is_err());
        assert_eq!(
            ladder.ladder(1.0),
            vec![1.0, 4f64.powf(1.0 / 3.0), 4f64.powf(2.0 / 3.0), 4.0]
        );
        Ok(())
    }

    #[test]
    fn class_shares_tv_and_starved_classes() -> Result<()> {
        assert_eq!(class_shares(&[0, 1, 1, 3], 4), vec![0.25, 0.5, 0.0, 0.25]);
        assert_eq!(class_shares(&[], 2), vec![0.0, 0.0]);
        let data = [0.5, 0.3, 0.2];
        assert_eq!(total_variation(&data, &data), 0.0);
        assert!((total_variation(&[1.0, 0.0, 0.0], &data) - 0.5).abs() < 1e-12);
        assert!((total_variation(&[0.2, 0.3, 0.5], &data) - 0.3).abs() < 1e-12);
        // A class under a quarter of its data share is starved; one at exactly a quarter not.
        assert_eq!(starved_classes(&[0.9, 0.07, 0.03], &data), vec![1, 2]);
        assert_eq!(starved_classes(&[0.9, 0.075, 0.025], &data), vec![2]);
        // Labelling by nearest training image, in display space.
        let dev = select(DeviceChoice::Flex)?.device;
        let train = [-1.0f32, -1.0, 1.0, 1.0, -1.0, 1.0];
        let labels = [2u8, 0, 1];
        let q = [0.9f32, 0.8, -0.7, 0.9, -0.9, -0.8, -0.2, 0.9];
        assert_eq!(
            nearest_labels(&q, &train, &labels, 2, &dev)?,
            vec![0, 1, 2, 1]
        );
        let set = ImageSet {
            rows: 1,
            cols: 2,
            pixels: train.iter().map(|v| (v + 1.0) / 2.0).collect(),
            labels: Some(labels.to_vec()),
            source: "t".into(),
            warnings: vec![],
            class_names: None,
        };
        let m = class_share_metrics(&q, &set, &train, &dev)?.context("labelled")?;
        assert_eq!(m.class_shares, vec![0.25, 0.5, 0.25]);
        assert_eq!(m.classes, vec!["0", "1", "2"]);
        assert!((m.class_tv - 1.0 / 6.0).abs() < 1e-12, "{m:?}");
        assert_eq!(m.classes_starved, 0);
        Ok(())
    }

    #[test]
    fn split_sizes_hold_out_a_share_of_small_pools() {
        assert_eq!(split_sizes(100, 40, 0.1), (40, None));
        let (n, w) = split_sizes(40, 100, 0.1);
        assert_eq!(n, 36);
        assert!(w.is_some_and(|w| w.contains("holding out 4")));
        let (n, w) = split_sizes(5, 100, 0.1);
        assert_eq!(n, 5);
        assert!(w.is_some_and(|w| w.contains("none is held out")));
        // Legacy (held_out 0): all trained on, the old warning only when n_data exceeds the pool.
        assert_eq!(split_sizes(40, 40, 0.0), (40, None));
        assert!(
            split_sizes(30, 40, 0.0)
                .1
                .is_some_and(|w| w.contains("training on all"))
        );
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
