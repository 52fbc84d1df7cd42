//! Neural Langevin machine: an asymmetric RNN whose squared speed is an energy,
//! sampled by Langevin dynamics. Row-vector convention: states `x: [B, N]`.
//!
//! `e = −x + φ(x)Jᵀ + b`, `E = ½‖e‖²`, force `F = −∇E = e − φ'(x) ⊙ (e J)` (the second term is
//! the Onsager reaction term), SDE `dx = F dt + √(2T) dW`. The model implements [`Sde`], so
//! sampling goes through the project's one Euler–Maruyama solver.
//!
//! Training is the local asymmetric contrastive rule: the gradient of the data
//! log-likelihood with respect to J_ij is ⟨(x_i − h_i − b_i)φ(x_j)⟩ over the data minus the
//! same average over Langevin samples, applied with Adam; [`NlmTrainer`] runs it through the
//! shared training driver.

pub mod kernel;

use anyhow::{Context, Result, bail};
use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use self::kernel::NlmHostDrift;
use crate::checkpoint::{Checkpoint, NamedArray};
use crate::data::images::{BuiltinImages, ImageSource};
use crate::device::fast;
use crate::models::param;
use crate::optim::{Adam, AdamState, Schedule};
use crate::rng::Rng;
use crate::sde::solver::EulerMaruyama;
use crate::sde::{Diffusion, HostDrift, Sde};
use crate::train::{StepOutput, Trainable};
use crate::transfer::{tensor2, tensor2_f32, to_vec_f32};

/// Couplings, bias and temperature of an NLM, a Burn module: `J` and `b` are [`Param`]s with
/// ids fixed by their names (`nlm.J`, `nlm.b`), T is a constant of the module.
#[derive(Module, Debug)]
pub struct Nlm {
    /// Couplings `J: [N, N]` (J_ij from j to i, zero diagonal).
    pub j: Param<Tensor<2>>,
    /// Bias `b: [1, N]`.
    pub b: Param<Tensor<2>>,
    /// Temperature T.
    pub temperature: f64,
}

/// Configuration of a fresh [`Nlm`] ([`NlmModelConfig::init`]): the paper's initialisation
/// J_ij ~ N(0, g²/N) with a zero diagonal, b = 0.
#[derive(Config, Debug)]
pub struct NlmModelConfig {
    /// Neurons N (pixels).
    pub neurons: usize,
    /// Coupling gain g.
    #[config(default = 1.0)]
    pub gain: f64,
    /// Temperature T.
    #[config(default = 1.0)]
    pub temperature: f64,
    /// Seed of the couplings' draws (stream [`streams::INIT`]).
    #[config(default = 0)]
    pub seed: u64,
}

impl NlmModelConfig {
    /// A fresh model on `device`.
    pub fn init(&self, device: &Device) -> Nlm {
        let mut rng = Rng::derived(self.seed, streams::INIT);
        Nlm::init(self.neurons, self.gain, self.temperature, &mut rng, device)
    }
}

impl Nlm {
    /// A model with these couplings `[N, N]`, bias `[1, N]` and temperature.
    pub fn from_tensors(j: Tensor<2>, b: Tensor<2>, temperature: f64) -> Self {
        Self {
            j: param("nlm.J", j),
            b: param("nlm.b", b),
            temperature,
        }
    }

    /// Replaces the couplings (same parameter id).
    pub fn set_j(&mut self, j: Tensor<2>) {
        self.j = Param::initialized(self.j.id, j);
    }

    /// Replaces the bias (same parameter id).
    pub fn set_b(&mut self, b: Tensor<2>) {
        self.b = Param::initialized(self.b.id, b);
    }

    /// The paper's initialisation: J_ij ~ N(0, g²/N) with zero diagonal, b = 0.
    pub fn init(n: usize, gain: f64, temperature: f64, rng: &mut Rng, device: &Device) -> Self {
        let sd = gain / (n as f64).sqrt();
        let mut j: Vec<f64> = rng
            .normal_vec_f64(n * n)
            .into_iter()
            .map(|x| x * sd)
            .collect();
        for i in 0..n {
            j[i * n + i] = 0.0;
        }
        Self::from_tensors(
            tensor2(&j, n, n, device),
            Tensor::zeros([1, n], device),
            temperature,
        )
    }

    /// The initial model of a run: couplings as [`Nlm::init`] (same random stream), bias as
    /// `cfg.bias_init` says, from the training images `x_train` (`[n_data, n]`, x-space).
    pub fn for_run(cfg: &NlmConfig, x_train: &[f32], n: usize, device: &Device) -> Self {
        let mut rng = Rng::derived(cfg.seed, streams::INIT);
        let mut nlm = Self::init(n, cfg.gain, cfg.temperature, &mut rng, device);
        if cfg.bias_init == BiasInit::DataMean {
            nlm.set_b(tensor2_f32(initial_bias(x_train, n), 1, n, device));
        }
        nlm
    }

    /// Neurons N.
    pub fn n(&self) -> usize {
        self.j.dims()[0]
    }

    /// Speed `e = −x + φ(x)Jᵀ + b`, `[B, N]`.
    pub fn speed(&self, x: Tensor<2>) -> Tensor<2> {
        let phi = fast::tanh(x.clone());
        phi.matmul(self.j.val().transpose()) + self.b.val() - x
    }

    /// Energy `E = ½‖e‖²` per state, `[B, 1]`.
    pub fn energy(&self, x: Tensor<2>) -> Tensor<2> {
        self.speed(x).powi_scalar(2).sum_dim(1).mul_scalar(0.5)
    }

    /// Force `F = −∇E = e − φ'(x) ⊙ (e J)`, `[B, N]`.
    pub fn force(&self, x: Tensor<2>) -> Tensor<2> {
        let (phi, dphi) = fast::tanh_and_derivative(x.clone());
        let e = phi.matmul(self.j.val().transpose()) + self.b.val() - x;
        e.clone() - dphi * e.matmul(self.j.val())
    }

    /// The force (`onsager`) or the plain speed `e` as a fused CPU kernel
    /// ([`NlmHostDrift`]), when J lives on a CPU device.
    pub fn host_kernel(&self, onsager: bool) -> Result<Option<Box<dyn HostDrift>>> {
        if !crate::device::is_host(&self.j.device()) {
            return Ok(None);
        }
        Ok(Some(Box::new(NlmHostDrift::new(
            to_vec_f32(&self.j)?,
            to_vec_f32(&self.b)?,
            onsager,
            crate::device::cpu_threads(),
        ))))
    }
}

impl Sde for Nlm {
    fn dim(&self) -> usize {
        self.n()
    }
    fn noise_dim(&self) -> usize {
        self.n()
    }
    fn drift(&self, x: Tensor<2>, _u: Option<Tensor<2>>) -> Tensor<2> {
        self.force(x)
    }
    fn diffusion(&self, _x: &Tensor<2>) -> Diffusion {
        Diffusion::Isotropic((2.0 * self.temperature).sqrt())
    }
    fn host_drift(&self) -> Result<Option<Box<dyn HostDrift + '_>>> {
        Ok(self.host_kernel(true)?.map(|k| k as Box<dyn HostDrift>))
    }
}

// ---------------------------------------------------------------------------------------------
// Training: the local asymmetric contrastive rule with Adam and persistent chains.
// ---------------------------------------------------------------------------------------------

/// RNG streams of NLM runs.
pub mod streams {
    /// Initial couplings.
    pub const INIT: u64 = 21;
    /// Minibatch choice.
    pub const BATCH: u64 = 22;
    /// Langevin noise and chain (re)initialisation during training.
    pub const CHAINS: u64 = 23;
    /// Generation, exploration and evaluation chains.
    pub const GENERATE: u64 = 24;
    /// Corruption of images for denoising.
    pub const CORRUPT: u64 = 25;
    /// The fresh chains of the polarity check at the end of training.
    pub const POLARITY: u64 = 26;
    /// The start of the spectral-norm tracking of J (`stiffness_cap`).
    pub const SPECTRAL: u64 = 27;
    /// The shuffle of a PNG folder's images before the training/held-out split
    /// (`data_order = "shuffled"`).
    pub const DATA_ORDER: u64 = 28;
}

/// The order of a PNG folder's images before the first `n_data` are taken for training and the
/// rest held out. IDX data (and the bundled MNIST) keep their files' order either way: the
/// training split, then the test split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DataOrder {
    /// Shuffled by the run's `seed` (stream [`streams::DATA_ORDER`]): the training and the
    /// held-out images are both drawn from every class of a class-folder set.
    Shuffled,
    /// File-name order (sub-folder after sub-folder): runs written before `data_order` existed.
    Files,
}

/// How the bias b of a new run starts.
///
/// The energy `½‖−x + J tanh(x) + b‖²` is unchanged under x → −x except through b, so b is
/// what tells an image from its negative. Started at 0 (the paper's initialisation) and moved
/// by Adam at the learning rate per update, b stays small while the N couplings of each row
/// learn the background as a polarity-blind (ferromagnetic) pattern; fresh chains from N(0, 1)
/// then fall into the inverted images about as often as into the right ones (measured on a
/// dark-background object dataset: 40 % inverted). Starting b at the data's mean state breaks
/// the symmetry from the first update; it is the stationary point of the bias rule at J = 0,
/// as the visible biases of an RBM are started at the data's log-odds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BiasInit {
    /// b_i = the mean of x_i over the training images (x-space, per pixel).
    DataMean,
    /// b = 0 (the paper's initialisation; runs written before `bias_init` existed).
    Zero,
}

/// The data-mean initial bias: the mean state of each pixel over the training images
/// (`x: [n_data, n]`, x-space).
pub fn initial_bias(x: &[f32], n: usize) -> Vec<f32> {
    let rows = (x.len() / n.max(1)).max(1);
    let mut sum = vec![0f64; n];
    for row in x.chunks_exact(n) {
        for (s, &v) in sum.iter_mut().zip(row) {
            *s += v as f64;
        }
    }
    sum.into_iter().map(|s| (s / rows as f64) as f32).collect()
}

/// Every hyperparameter of an NLM run.
#[derive(Config, Debug)]
pub struct NlmConfig {
    /// Images: `mnist` (the bundled MNIST), a folder in IDX layout
    /// (`train-images-idx3-ubyte[.gz]`, optional labels and `t10k-*` files) or a folder of
    /// same-size PNG images.
    #[config(default = "ImageSource::Builtin(BuiltinImages::Mnist)")]
    pub data: ImageSource,
    /// Labels to keep (empty: all images; needs labelled data otherwise).
    #[config(default = "vec![1, 3, 6]")]
    pub digits: Vec<u8>,
    /// Training images: the first `n_data` of the pool (IDX: train split, then test split, in
    /// order; PNG folders: in `data_order`). The rest of the pool is the held-out set.
    #[config(default = 5000)]
    pub n_data: usize,
    /// Order of a PNG folder's images before the split: `shuffled` (by `seed`) or `files`
    /// (file-name order; earlier runs). IDX data keep their files' order.
    #[config(default = "DataOrder::Shuffled")]
    pub data_order: DataOrder,
    /// Share of the pool held out when it has no more than `n_data` images (the rest is trained
    /// on), so that `nlm denoise --n-test` and the held-out metrics have images never trained
    /// on; a warning says so when the pool is too small to hold any out. 0: train on the whole
    /// pool (earlier runs).
    #[config(default = 0.1)]
    pub held_out: f64,
    /// Average-pool images by this factor before training (1: full size; 2: 28×28 → 14×14).
    #[config(default = 1)]
    pub pool: usize,
    /// Threshold the (pooled) pixels at 0.5, p → 0 or 1, before the atanh map: binarised
    /// images, every unit saturated at ±atanh(1 − ε), where the T = 1 jitter costs least in
    /// pixel distance (off by default: the paper uses grey levels).
    #[config(default = false)]
    pub binarize: bool,
    /// ε of the pixel map x = atanh(clamp(2p − 1, −1 + ε, 1 − ε)).
    #[config(default = 0.03)]
    pub eps: f64,
    /// Gain g of the initial couplings J_ij ~ N(0, g²/N).
    #[config(default = 2.0)]
    pub gain: f64,
    /// Temperature T of the Langevin dynamics.
    #[config(default = 1.0)]
    pub temperature: f64,
    /// Euler–Maruyama time step.
    #[config(default = 0.01)]
    pub dt: f64,
    /// Parameter updates (t_age at the end of the run).
    #[config(default = 4000)]
    pub updates: u64,
    /// Data minibatch B (capped at the number of training images).
    #[config(default = 256)]
    pub batch: usize,
    /// Persistent chains M (`pcd`, `restart`); `one-chain` and `online` use one chain.
    #[config(default = 256)]
    pub chains: usize,
    /// Langevin steps per update k.
    #[config(default = 10)]
    pub steps_per_update: usize,
    /// Negative samples: `pcd` (persistent chains), `restart` (fresh N(0,1) chains every
    /// update), `one-chain` (one persistent chain, samples after `burn_in` every `thin` steps)
    /// or `online` (one image and one persistent chain per update).
    #[config(default = "Sampler::Pcd")]
    pub sampler: Sampler,
    /// `one-chain`: steps discarded at the start of every update.
    #[config(default = 600)]
    pub burn_in: usize,
    /// `one-chain`: steps between recorded samples.
    #[config(default = 20)]
    pub thin: usize,
    /// `online`: the first steps of every update run without the Onsager term (plain RNN).
    #[config(default = 150)]
    pub onsager_off_steps: usize,
    /// Adam learning rate.
    #[config(default = 1e-3)]
    pub lr: f64,
    /// Learning-rate schedule over the run: `cosine` (from `lr` down to `lr_final`, the
    /// default: the last updates average out Adam's fluctuations, which otherwise keep moving
    /// the attractors; on the shapes test set the denoising ratio goes from 0.60 with a constant
    /// rate to 0.11), `linear` (to `lr_final`) or `constant` (the paper's; earlier runs).
    #[config(default = "Schedule::Cosine")]
    pub schedule: Schedule,
    /// Final learning rate of the `cosine` and `linear` schedules.
    #[config(default = 1e-5)]
    pub lr_final: f64,
    /// Coupled L2 weight decay on J (not on b).
    #[config(default = 5e-7)]
    pub weight_decay: f64,
    /// Adam β₁.
    #[config(default = 0.9)]
    pub beta1: f64,
    /// Adam β₂.
    #[config(default = 0.999)]
    pub beta2: f64,
    /// Adam ε.
    #[config(default = 1e-8)]
    pub adam_eps: f64,
    /// Learn the bias b (without it samples come out sign-inverted half the time).
    #[config(default = true)]
    pub bias: bool,
    /// Initial bias: `data-mean` (each b_i the training images' mean state x_i: keeps samples
    /// on the data's polarity on any dataset) or `zero` (the paper's; earlier runs).
    #[config(default = "BiasInit::DataMean")]
    pub bias_init: BiasInit,
    /// Keep the Langevin sampler stable: after every update J is scaled down, when needed, so
    /// that its largest singular value σ (tracked by one power-iteration step per update)
    /// satisfies (1 + σ)²·dt ≤ `stiffness_cap` (0: off). Euler–Maruyama on the energy is
    /// stable while dt times its largest curvature, at most about (1 + σ)², stays below 2;
    /// past it the chains' energy explodes and the contrastive rule learns from garbage. The
    /// digit models stay far inside (σ ≈ 6 at dt 0.01, the cap 9), so it only acts on data
    /// the model cannot fit at this dt, such as low-contrast grey images, whose maximum-
    /// likelihood couplings grow without bound at T = 1.
    #[config(default = 1.0)]
    pub stiffness_cap: f64,
    /// Fresh chains of the polarity check run at the end of `nlm train` (0: no check).
    #[config(default = 100)]
    pub polarity_chains: usize,
    /// Langevin steps of the polarity check's chains from N(0, 1) (fresh chains pass through
    /// brighter states before they settle; the mean pixel is near its final value after 5000
    /// steps, the class shares are not: `nlm eval` runs 10 000).
    #[config(default = 5000)]
    pub polarity_steps: usize,
    /// Keep parameter snapshots at the paper's t_age schedule round(201·1.7^i) in `tage/`.
    #[config(default = true)]
    pub tage_snapshots: bool,
    /// Checkpoint period (updates).
    #[config(default = 500)]
    pub checkpoint_every: u64,
    /// Metrics period (updates).
    #[config(default = 50)]
    pub log_every: u64,
    /// Checkpoints kept on disk.
    #[config(default = 2)]
    pub keep_checkpoints: usize,
    /// Also write TensorBoard event files in `tb/`: the metrics as scalars, a picture at each
    /// checkpoint and this configuration as text (`tensorboard --logdir <run>/tb`).
    #[config(default = true)]
    pub tensorboard: bool,
    /// Seed of every random stream.
    #[config(default = 0)]
    pub seed: u64,
}

/// Negative-phase sampling scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Sampler {
    /// Persistent contrastive divergence.
    Pcd,
    /// Chains restarted from N(0, 1) before every update.
    Restart,
    /// One persistent chain, thinned samples after a burn-in.
    OneChain,
    /// One image and one persistent chain per update.
    Online,
}

crate::config::choice_display!(Sampler);
crate::config::choice_display!(DataOrder);

impl NlmConfig {
    /// The defaults a run directory's `config.json` is read against: today's, except for the
    /// keys added since the first release, which take the value runs written before them used
    /// (`bias_init` = `zero`, no `stiffness_cap`, a `constant` learning rate, PNG folders in
    /// file-name order with nothing held out when `n_data` covers them). New runs write every
    /// key, so this only fills old files.
    pub fn legacy() -> Self {
        Self::new()
            .with_bias_init(BiasInit::Zero)
            .with_stiffness_cap(0.0)
            .with_schedule(Schedule::Constant)
            .with_data_order(DataOrder::Files)
            .with_held_out(0.0)
    }

    /// The largest singular value of J that `stiffness_cap` allows (∞ when off).
    pub fn max_coupling_norm(&self) -> f64 {
        if self.stiffness_cap > 0.0 {
            ((self.stiffness_cap / self.dt).sqrt() - 1.0).max(0.0)
        } else {
            f64::INFINITY
        }
    }

    /// Rejects invalid hyperparameters with a message naming the key.
    pub fn validate(&self) -> Result<()> {
        for (k, v) in [
            ("gain", self.gain),
            ("temperature", self.temperature),
            ("weight_decay", self.weight_decay),
            ("stiffness_cap", self.stiffness_cap),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                bail!("`{k}` must be a finite number >= 0, got {v}");
            }
        }
        for (k, v) in [
            ("dt", self.dt),
            ("lr", self.lr),
            ("adam_eps", self.adam_eps),
        ] {
            if !(v.is_finite() && v > 0.0) {
                bail!("`{k}` must be a finite number > 0, got {v}");
            }
        }
        if !(self.held_out.is_finite() && (0.0..1.0).contains(&self.held_out)) {
            bail!("`held_out` must lie in [0, 1), got {}", self.held_out);
        }
        if !(self.eps.is_finite() && self.eps > 0.0 && self.eps < 1.0) {
            bail!("`eps` must lie in (0, 1), got {}", self.eps);
        }
        if self.dt > 0.5 {
            bail!(
                "`dt` = {} is too large for Euler–Maruyama (use <= 0.5)",
                self.dt
            );
        }
        for (k, v) in [
            ("n_data", self.n_data),
            ("batch", self.batch),
            ("chains", self.chains),
            ("steps_per_update", self.steps_per_update),
            ("pool", self.pool),
            ("thin", self.thin),
        ] {
            if v == 0 {
                bail!("`{k}` must be >= 1");
            }
        }
        const LIMIT: usize = 1 << 20;
        for (k, v) in [
            ("batch", self.batch),
            ("chains", self.chains),
            ("steps_per_update", self.steps_per_update),
            ("polarity_chains", self.polarity_chains),
        ] {
            if v > LIMIT {
                bail!("`{k}` = {v} is absurdly large (limit {LIMIT})");
            }
        }
        if self.updates == 0 {
            bail!("`updates` must be >= 1");
        }
        if self.polarity_steps > 100_000_000 {
            bail!(
                "`polarity_steps` = {} is absurdly large (limit 100000000)",
                self.polarity_steps
            );
        }
        if !(self.lr_final.is_finite() && self.lr_final >= 0.0) {
            bail!(
                "`lr_final` must be a finite number >= 0, got {}",
                self.lr_final
            );
        }
        let s = self.sampler()?;
        if s == Sampler::OneChain && self.burn_in + self.thin > self.steps_per_update {
            bail!(
                "sampler one-chain: `steps_per_update` ({}) must exceed `burn_in` ({}) by at least `thin` ({})",
                self.steps_per_update,
                self.burn_in,
                self.thin
            );
        }
        self.adam().validate()
    }

    /// The optimiser of J (coupled L2 `weight_decay`, the paper's: on J only).
    pub fn adam(&self) -> Adam {
        Adam {
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.adam_eps,
            weight_decay: self.weight_decay,
        }
    }

    /// The optimiser of b: that of J without the weight decay.
    pub fn adam_bias(&self) -> Adam {
        Adam {
            weight_decay: 0.0,
            ..self.adam()
        }
    }

    /// The sampling scheme.
    pub fn sampler(&self) -> Result<Sampler> {
        Ok(self.sampler)
    }

    /// Chains carried by the trainer.
    pub fn n_chains(&self) -> usize {
        match self.sampler() {
            Ok(Sampler::OneChain | Sampler::Online) => 1,
            _ => self.chains,
        }
    }
}

/// The paper's t_age snapshot schedule: round(201·1.7^i) up to `total`.
pub fn tage_schedule(total: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let t = (201.0 * 1.7f64.powi(i)).round() as u64;
        if t > total {
            break;
        }
        out.push(t);
        i += 1;
    }
    out
}

/// Training state of an NLM: parameters, Adam moments, chains and random streams.
pub struct NlmTrainer {
    /// Configuration.
    pub cfg: NlmConfig,
    /// The model (J, b, T).
    pub nlm: Nlm,
    adam: AdamState,
    adam_j: Adam,
    adam_b: Adam,
    /// Chains `[M, N]`.
    pub chains: Tensor<2>,
    /// Training images, x-space, host copy `[n_data, N]`.
    data: Vec<f32>,
    /// tanh of the training images (host).
    data_phi: Vec<f32>,
    /// The training images and their tanh on a non-host device (uploaded once), where
    /// minibatches are selected; `None` on the CPU backends.
    data_on_device: Option<(Tensor<2>, Tensor<2>)>,
    n: usize,
    offdiag: Tensor<2>,
    batch_rng: Rng,
    chain_rng: Rng,
    sampler: Sampler,
    schedule: Schedule,
    device: Device,
    /// Power-iteration estimate `[1, N]` (unit norm) of J's top right singular vector.
    spectral_u: Tensor<2>,
    /// Fingerprint of the training images (checked on resume).
    pub data_hash: u64,
}

/// The unit vector `[1, n]` the spectral-norm tracking starts from (stream
/// [`streams::SPECTRAL`]).
fn spectral_start(seed: u64, n: usize, device: &Device) -> Tensor<2> {
    let mut r = Rng::derived(seed, streams::SPECTRAL);
    let mut v = vec![0f32; n];
    r.fill_normal_f32(&mut v);
    let norm = v
        .iter()
        .map(|x| (*x as f64).powi(2))
        .sum::<f64>()
        .sqrt()
        .max(1e-30);
    v.iter_mut().for_each(|x| *x = (*x as f64 / norm) as f32);
    tensor2_f32(v, 1, n, device)
}

fn fnv(data: &[f32]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in data {
        for b in v.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

impl NlmTrainer {
    /// A fresh trainer on training images already mapped to x-space (`data: [n_data, n]`).
    pub fn new(cfg: &NlmConfig, data: Vec<f32>, n: usize, device: &Device) -> Result<Self> {
        cfg.validate()?;
        if n == 0 || data.is_empty() || !data.len().is_multiple_of(n) {
            bail!("training data must be a non-empty [n_data, N] array");
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            bail!(
                "training data contain a non-finite value (image {}, pixel {})",
                i / n,
                i % n
            );
        }
        let nf = n as f64;
        let rows = (cfg.n_chains() + cfg.batch) as f64;
        crate::error::check_memory(
            &format!(
                "an NLM of {n} neurons with {} chains and batch {}",
                cfg.n_chains(),
                cfg.batch
            ),
            4.0 * (5.0 * nf * nf + 10.0 * rows * nf + data.len() as f64),
        )?;
        let sampler = cfg.sampler()?;
        let schedule = cfg.schedule;
        let nlm = Nlm::for_run(cfg, &data, n, device);
        let mut chain_rng = Rng::derived(cfg.seed, streams::CHAINS);
        let m = cfg.n_chains();
        let chains = gaussian(&mut chain_rng, m, n, 1.0, device);
        let adam = AdamState::new(&[("J", &nlm.j), ("b", &nlm.b)]);
        let (adam_j, adam_b) = (cfg.adam(), cfg.adam_bias());
        let data_phi: Vec<f32> = data.iter().map(|v| v.tanh()).collect();
        let data_on_device = (!crate::device::is_host(device)).then(|| {
            let rows = data.len() / n;
            (
                tensor2_f32(data.clone(), rows, n, device),
                tensor2_f32(data_phi.clone(), rows, n, device),
            )
        });
        Ok(Self {
            data_on_device,
            cfg: cfg.clone(),
            nlm,
            adam,
            adam_j,
            adam_b,
            chains,
            data_hash: fnv(&data),
            data,
            data_phi,
            n,
            offdiag: offdiag_mask(n, device),
            batch_rng: Rng::derived(cfg.seed, streams::BATCH),
            chain_rng,
            sampler,
            schedule,
            spectral_u: spectral_start(cfg.seed, n, device),
            device: device.clone(),
        })
    }

    /// Neurons N.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Training images.
    pub fn n_data(&self) -> usize {
        self.data.len() / self.n
    }

    /// A minibatch (x and tanh x) of `b` distinct training images. On a GPU the images are
    /// chosen there: the indices of the `b` largest of `n_data` uniform keys (one device draw,
    /// `argtopk`, a uniformly random `b`-subset), then `select` — nothing crosses the bus. The
    /// CPU backends draw a partial Fisher–Yates shuffle from the batch stream.
    fn minibatch(&mut self, b: usize) -> (Tensor<2>, Tensor<2>) {
        let nd = self.n_data();
        let n = self.n;
        if let Some((x, p)) = &self.data_on_device {
            if b >= nd {
                return (x.clone(), p.clone());
            }
            let keys = crate::device::device_random(
                self.batch_rng.next_u64(),
                [1, nd],
                burn::tensor::Distribution::Uniform(0.0, 1.0),
                &self.device,
            );
            let idx = keys.argtopk(b, 1).reshape([b]);
            return (x.clone().select(0, idx.clone()), p.clone().select(0, idx));
        }
        let idx: Vec<usize> = if b >= nd {
            (0..nd).collect()
        } else {
            // Partial Fisher–Yates: b distinct indices.
            let mut all: Vec<usize> = (0..nd).collect();
            for i in 0..b {
                let j = i + self.batch_rng.index(nd - i);
                all.swap(i, j);
            }
            all.truncate(b);
            all
        };
        let mut x = Vec::with_capacity(idx.len() * n);
        let mut p = Vec::with_capacity(idx.len() * n);
        for &i in &idx {
            x.extend_from_slice(&self.data[i * n..(i + 1) * n]);
            p.extend_from_slice(&self.data_phi[i * n..(i + 1) * n]);
        }
        let rows = idx.len();
        (
            tensor2_f32(x, rows, n, &self.device),
            tensor2_f32(p, rows, n, &self.device),
        )
    }

    /// Advances the chains for one update and returns the negative samples `[M', N]`.
    fn negative_samples(&mut self) -> Result<Tensor<2>> {
        let k = self.cfg.steps_per_update;
        let em = EulerMaruyama::new(self.cfg.dt, 1.0)?;
        let n = self.n;
        match self.sampler {
            Sampler::Pcd | Sampler::Restart => {
                if self.sampler == Sampler::Restart {
                    let m = self.cfg.chains;
                    self.chains = gaussian(&mut self.chain_rng, m, n, 1.0, &self.device);
                }
                let x = em.advance(&self.nlm, self.chains.clone(), k, &mut self.chain_rng)?;
                self.chains = x.clone();
                Ok(x)
            }
            Sampler::OneChain => {
                let (burn_in, thin) = (self.cfg.burn_in, self.cfg.thin);
                let mut samples = Vec::new();
                let x = em.simulate_at(
                    &self.nlm,
                    self.chains.clone(),
                    k,
                    &mut self.chain_rng,
                    &mut |_| None,
                    &|s| s > burn_in && (s - burn_in).is_multiple_of(thin),
                    &mut |s, x| {
                        if s > 0 {
                            samples.push(x.clone());
                        }
                        Ok(())
                    },
                )?;
                self.chains = x;
                Ok(Tensor::cat(samples, 0))
            }
            Sampler::Online => {
                let plain_steps = self.cfg.onsager_off_steps.min(k);
                let x = em.advance(
                    &PlainRnn(&self.nlm),
                    self.chains.clone(),
                    plain_steps,
                    &mut self.chain_rng,
                )?;
                let x = em.advance(&self.nlm, x, k - plain_steps, &mut self.chain_rng)?;
                self.chains = x.clone();
                Ok(x)
            }
        }
    }

    /// One parameter update; returns (mean grad_J², mean data energy, mean sample energy,
    /// mean sample pixel tanh x).
    /// Returns `[‖∇J‖², E_data, E_model, chain mean pixel]` as device scalars (not read back).
    pub fn update(&mut self, step: u64) -> Result<Tensor<1>> {
        let b = match self.sampler {
            Sampler::Online => 1,
            _ => self.cfg.batch,
        };
        let (xd, phid) = self.minibatch(b);
        let xm = self.negative_samples()?;
        let phim = fast::tanh(xm.clone());
        let g = contrastive_grads(&self.nlm, xd, phid, xm, phim.clone(), &self.offdiag);
        let (grad_j, grad_b, e_data, e_model) = (g.grad_j, g.grad_b, g.energy_data, g.energy_model);
        let gsq = grad_j.clone().powi_scalar(2).mean();
        let pix = phim.mean();
        let lr = self
            .schedule
            .lr(self.cfg.lr, self.cfg.lr_final, step, self.cfg.updates);
        // Weight decay (adam_j) on J only; b is trained when `bias` is on.
        let mut grads = vec![(self.nlm.j.id, grad_j, &self.adam_j)];
        if self.cfg.bias {
            grads.push((self.nlm.b.id, grad_b, &self.adam_b));
        }
        self.nlm = self.adam.step(self.nlm.clone(), grads, lr)?;
        // J keeps its zero diagonal.
        self.nlm.set_j(self.nlm.j.val() * self.offdiag.clone());
        self.cap_stiffness();
        Ok(Tensor::cat(
            vec![
                gsq.reshape([1]),
                e_data.reshape([1]),
                e_model.reshape([1]),
                pix.reshape([1]),
            ],
            0,
        ))
    }
}

impl NlmTrainer {
    /// One power-iteration step on JᵀJ (from the tracked vector u: σ ≈ ‖J u‖), then J scaled
    /// by min(1, σ_max/σ) — all device tensor operations, no readback. Below the cap the factor
    /// is exactly 1 and J is unchanged bit for bit.
    fn cap_stiffness(&mut self) {
        let limit = self.cfg.max_coupling_norm();
        if !limit.is_finite() {
            return;
        }
        let ju = self.spectral_u.clone().matmul(self.nlm.j.val().transpose());
        let sigma = ju.clone().powi_scalar(2).sum().sqrt().reshape([1, 1]);
        let next = ju.matmul(self.nlm.j.val());
        let norm = next.clone().powi_scalar(2).sum().sqrt().clamp_min(1e-30);
        self.spectral_u = next / norm.reshape([1, 1]);
        let factor = sigma
            .clamp_min(1e-30)
            .recip()
            .mul_scalar(limit)
            .clamp_max(1.0);
        self.nlm.set_j(self.nlm.j.val() * factor);
    }
}

/// The contrastive rule's gradients (descent direction on −log-likelihood).
pub struct Grads {
    /// `grad_J = G_model − G_data` with zero diagonal, `[N, N]`.
    pub grad_j: Tensor<2>,
    /// `grad_b = (⟨R⟩_model − ⟨R⟩_data) / T`, `[1, N]`.
    pub grad_b: Tensor<2>,
    /// Mean energy of the data rows (scalar tensor).
    pub energy_data: Tensor<1>,
    /// Mean energy of the samples (scalar tensor).
    pub energy_model: Tensor<1>,
}

/// Gradients of the local asymmetric contrastive rule from data rows `xd` (with `phid =
/// tanh xd`) and model samples `xm` (`phim = tanh xm`): with `R = x − φJᵀ − b` (= −e),
/// `G_ij = ⟨R_i φ_j⟩ / T`, `grad_J = (G_model − G_data) ⊙ offdiag`.
pub fn contrastive_grads(
    nlm: &Nlm,
    xd: Tensor<2>,
    phid: Tensor<2>,
    xm: Tensor<2>,
    phim: Tensor<2>,
    offdiag: &Tensor<2>,
) -> Grads {
    let t = nlm.temperature.max(1e-12);
    let (bd, bm) = (xd.dims()[0] as f64, xm.dims()[0] as f64);
    let jt = nlm.j.val().transpose();
    let rd = xd - phid.clone().matmul(jt.clone()) - nlm.b.val();
    let rm = xm - phim.clone().matmul(jt) - nlm.b.val();
    let g_data = rd.clone().transpose().matmul(phid).div_scalar(t * bd);
    let g_model = rm.clone().transpose().matmul(phim).div_scalar(t * bm);
    Grads {
        grad_j: (g_model - g_data) * offdiag.clone(),
        energy_data: rd.clone().powi_scalar(2).sum().mul_scalar(0.5 / bd),
        energy_model: rm.clone().powi_scalar(2).sum().mul_scalar(0.5 / bm),
        grad_b: (rm.mean_dim(0) - rd.mean_dim(0)).div_scalar(t),
    }
}

/// `rows × cols` ones with a zero diagonal (the mask that keeps diag(J) = 0).
pub fn offdiag_mask(n: usize, device: &Device) -> Tensor<2> {
    let mut mask = vec![1f32; n * n];
    for i in 0..n {
        mask[i * n + i] = 0.0;
    }
    tensor2_f32(mask, n, n, device)
}

/// `rows × cols` standard normals times `sd`, from `rng`.
pub fn gaussian(rng: &mut Rng, rows: usize, cols: usize, sd: f32, device: &Device) -> Tensor<2> {
    if !crate::device::is_host(device) {
        // On a GPU drawn there (one seed from `rng`): the `restart` sampler's fresh chains
        // every update, and generation's start states, cross no bus.
        let w = crate::device::device_normal(rng.next_u64(), [rows, cols], device);
        return if sd != 1.0 { w.mul_scalar(sd) } else { w };
    }
    let mut v = vec![0f32; rows * cols];
    rng.fill_normal_f32(&mut v);
    if sd != 1.0 {
        v.iter_mut().for_each(|x| *x *= sd);
    }
    tensor2_f32(v, rows, cols, device)
}

/// The NLM's vanilla RNN flow `dx = e dt + √(2T) dW` (force without the Onsager term), used by
/// the `online` scheme's first steps.
pub struct PlainRnn<'a>(pub &'a Nlm);

impl Sde for PlainRnn<'_> {
    fn dim(&self) -> usize {
        self.0.n()
    }
    fn noise_dim(&self) -> usize {
        self.0.n()
    }
    fn drift(&self, x: Tensor<2>, _u: Option<Tensor<2>>) -> Tensor<2> {
        self.0.speed(x)
    }
    fn diffusion(&self, _x: &Tensor<2>) -> Diffusion {
        Diffusion::Isotropic((2.0 * self.0.temperature).sqrt())
    }
    fn host_drift(&self) -> Result<Option<Box<dyn HostDrift + '_>>> {
        Ok(self.0.host_kernel(false)?.map(|k| k as Box<dyn HostDrift>))
    }
}

impl Trainable for NlmTrainer {
    fn kind(&self) -> &'static str {
        "nlm"
    }

    fn export(&self, dir: &std::path::Path) -> Result<()> {
        crate::models::export::export(&self.nlm, dir)
    }

    /// The first 36 persistent chains as images (tanh of the state, as `nlm generate` draws
    /// samples), when the images are square.
    fn picture(&self) -> Result<Option<crate::train::Picture>> {
        let [m, n] = self.chains.dims();
        let side = (n as f64).sqrt().round() as usize;
        if side * side != n || m == 0 {
            return Ok(None);
        }
        let shown = m.min(36);
        let x = crate::transfer::download(&self.chains.clone().narrow(0, 0, shown))?;
        Ok(Some(crate::train::Picture::Grid {
            tag: "chains".into(),
            images: x
                .chunks(n)
                .map(|c| c.iter().map(|v| v.tanh()).collect())
                .collect(),
            width: side,
            height: side,
            lo: -1.0,
            hi: 1.0,
        }))
    }

    fn step(&mut self, step: u64) -> Result<StepOutput> {
        // The monitor is the squared gradient norm: `loss` and `grad_sq` are the same scalar.
        let s = self.update(step)?;
        let values = Tensor::cat(vec![s.clone().narrow(0, 0, 1), s], 0);
        Ok(StepOutput::device(
            values,
            &[
                "loss",
                "grad_sq",
                "energy_data",
                "energy_model",
                "chain_mean_pixel",
            ],
        ))
    }

    fn checkpoint(&self, step: u64) -> Result<Checkpoint> {
        let mut ck = self.snapshot(step)?;
        let [m, n] = self.chains.dims();
        ck.arrays.push(NamedArray {
            name: "chains".into(),
            shape: vec![m, n],
            data: to_vec_f32(&self.chains)?,
        });
        ck.arrays.push(NamedArray {
            name: "spectral_u".into(),
            shape: vec![1, n],
            data: to_vec_f32(&self.spectral_u)?,
        });
        self.adam.save_into(&mut ck)?;
        ck.extra["batch_rng"] = self.batch_rng.to_json();
        ck.extra["chain_rng"] = self.chain_rng.to_json();
        Ok(ck)
    }

    fn snapshot(&self, step: u64) -> Result<Checkpoint> {
        let n = self.n;
        Ok(Checkpoint {
            kind: "nlm".into(),
            step,
            arrays: vec![
                NamedArray {
                    name: "J".into(),
                    shape: vec![n, n],
                    data: to_vec_f32(&self.nlm.j)?,
                },
                NamedArray {
                    name: "b".into(),
                    shape: vec![1, n],
                    data: to_vec_f32(&self.nlm.b)?,
                },
            ],
            extra: serde_json::json!({
                "temperature": self.nlm.temperature,
                "data_hash": format!("{:016x}", self.data_hash),
            }),
        })
    }

    fn restore(&mut self, ck: &Checkpoint) -> Result<()> {
        let n = self.n;
        if let Some(h) = ck.extra.get("data_hash").and_then(|v| v.as_str()) {
            let mine = format!("{:016x}", self.data_hash);
            if h != mine {
                bail!(
                    "the training images differ from those the checkpoint was trained on \
                     (fingerprint {h} vs {mine}): was the data folder changed?"
                );
            }
        }
        self.nlm = load_nlm(ck, &self.device)?;
        if self.nlm.n() != n {
            bail!("checkpoint has N = {}, the data N = {n}", self.nlm.n());
        }
        let m = self.cfg.n_chains();
        let c = ck.array_shaped("chains", &[m, n])?;
        self.chains = tensor2_f32(c.data.clone(), m, n, &self.device);
        // Checkpoints written before `stiffness_cap` have no tracked vector: start afresh (their
        // runs keep the cap off, so it never acts on J).
        if ck.arrays.iter().any(|a| a.name == "spectral_u") {
            let u = ck.array_shaped("spectral_u", &[1, n])?;
            self.spectral_u = tensor2_f32(u.data.clone(), 1, n, &self.device);
        }
        self.adam.load_from(ck)?;
        self.batch_rng = Rng::from_json(
            ck.extra
                .get("batch_rng")
                .context("checkpoint has no batch RNG")?,
        )?;
        self.chain_rng = Rng::from_json(
            ck.extra
                .get("chain_rng")
                .context("checkpoint has no chain RNG")?,
        )?;
        Ok(())
    }
}

/// The model (J, b, T) stored in an NLM checkpoint or snapshot.
pub fn load_nlm(ck: &Checkpoint, device: &Device) -> Result<Nlm> {
    if ck.kind != "nlm" {
        bail!("this is a `{}` checkpoint, not an NLM one", ck.kind);
    }
    let j = ck.array("J")?;
    let n = *j.shape.first().context("bad J in checkpoint")?;
    let j = ck.array_shaped("J", &[n, n])?;
    let b = ck.array_shaped("b", &[1, n])?;
    if j.data.iter().chain(&b.data).any(|v| !v.is_finite()) {
        bail!("checkpoint contains NaN or infinite parameters");
    }
    let temperature = ck
        .extra
        .get("temperature")
        .and_then(|v| v.as_f64())
        .unwrap_or(1.0);
    Ok(Nlm::from_tensors(
        tensor2_f32(j.data.clone(), n, n, device),
        tensor2_f32(b.data.clone(), 1, n, device),
        temperature,
    ))
}

/// Exported as `model.bpk` + `model.json` (see [`crate::models::export`]).
impl crate::models::export::TrainedModel for Nlm {
    type Config = NlmModelConfig;
    const KIND: &'static str = "nlm";
    fn model_config(&self) -> NlmModelConfig {
        NlmModelConfig::new(self.n()).with_temperature(self.temperature)
    }
    fn from_config(cfg: &NlmModelConfig, device: &Device) -> Result<Self> {
        Ok(cfg.init(device))
    }
    fn from_checkpoint(ck: &Checkpoint, _: &serde_json::Value, device: &Device) -> Result<Self> {
        load_nlm(ck, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Largest singular value of a row-major `[n, n]` matrix (power iteration on the host, f64).
    fn sigma_max(j: &[f32], n: usize) -> f64 {
        let mut u = vec![1.0f64; n];
        let mut s = 0.0;
        for _ in 0..500 {
            let ju: Vec<f64> = (0..n)
                .map(|i| (0..n).map(|k| j[i * n + k] as f64 * u[k]).sum())
                .collect();
            let jtju: Vec<f64> = (0..n)
                .map(|k| (0..n).map(|i| j[i * n + k] as f64 * ju[i]).sum())
                .collect();
            let norm = jtju.iter().map(|x| x * x).sum::<f64>().sqrt();
            s = norm.sqrt();
            u = jtju.iter().map(|x| x / norm).collect();
        }
        s
    }

    fn trainer(cap: f64, gain: f64) -> Result<NlmTrainer> {
        let dev = crate::device::select(crate::device::DeviceChoice::Flex)?.device;
        let n = 16;
        let mut r = Rng::new(3);
        let data: Vec<f32> = r.normal_vec(64 * n);
        let cfg = NlmConfig::new()
            .with_n_data(64)
            .with_batch(32)
            .with_chains(32)
            .with_gain(gain)
            .with_stiffness_cap(cap)
            .with_seed(4);
        NlmTrainer::new(&cfg, data, n, &dev)
    }

    /// `sampler` and `schedule` keep their `config.json` spellings.
    #[test]
    fn choices_keep_their_config_json_spellings() {
        let mut v = serde_json::to_value(NlmConfig::new()).unwrap();
        assert_eq!(
            (v["sampler"].clone(), v["schedule"].clone()),
            ("pcd".into(), "cosine".into())
        );
        assert_eq!(v["data"], "mnist");
        v["sampler"] = "one-chain".into();
        v["schedule"] = "constant".into();
        v["data"] = "data/shapes".into();
        let cfg: NlmConfig = serde_json::from_value(v).unwrap();
        assert_eq!(cfg.data, ImageSource::Path("data/shapes".into()));
        assert_eq!(
            (cfg.sampler, cfg.schedule),
            (Sampler::OneChain, Schedule::Constant)
        );
    }

    /// Couplings well inside the cap are never touched (bit for bit the run without it);
    /// couplings far past it are brought down to σ_max = √(cap/dt) − 1 within a few updates and
    /// held there, with a finite sampler.
    #[test]
    fn stiffness_cap_acts_only_past_the_limit() -> Result<()> {
        let (mut on, mut off) = (trainer(1.0, 2.0)?, trainer(0.0, 2.0)?);
        for s in 0..20 {
            on.update(s)?;
            off.update(s)?;
        }
        assert_eq!(to_vec_f32(&on.nlm.j)?, to_vec_f32(&off.nlm.j)?);
        let mut big = trainer(1.0, 20.0)?;
        let n = big.n();
        let limit = big.cfg.max_coupling_norm();
        assert!((limit - 9.0).abs() < 1e-9, "{limit}");
        assert!(sigma_max(&to_vec_f32(&big.nlm.j)?, n) > 3.0 * limit);
        // The projection alone (what ends every update), repeated as over 30 updates.
        for _ in 0..30 {
            big.cap_stiffness();
        }
        let sigma = sigma_max(&to_vec_f32(&big.nlm.j)?, n);
        assert!(
            sigma <= 1.02 * limit && sigma > 0.8 * limit,
            "σ {sigma} vs cap {limit}"
        );
        // Then the sampler at dt 0.01 stays finite, and the cap holds through updates.
        for s in 0..10 {
            let m = to_vec_f32(&big.update(s)?)?;
            assert!(m.iter().all(|v| v.is_finite()), "update {s}: {m:?}");
        }
        let sigma = sigma_max(&to_vec_f32(&big.nlm.j)?, n);
        assert!(sigma <= 1.02 * limit, "σ {sigma} vs cap {limit}");
        Ok(())
    }

    #[test]
    fn initial_bias_is_the_mean_state_of_each_pixel() {
        let x = [1.0f32, -2.0, 3.0, -4.0, 5.0, 0.0];
        assert_eq!(initial_bias(&x, 2), vec![3.0, -2.0]);
    }

    /// A run directory written before `bias_init` existed (its config.json lacks the key) is read
    /// with the bias it was trained from (zero); new runs default to the data mean; the JSON
    /// spellings are kebab-case and an unknown one names the valid values.
    #[test]
    fn old_run_directories_keep_their_zero_bias() -> Result<()> {
        assert_eq!(NlmConfig::new().bias_init, BiasInit::DataMean);
        let dir = std::env::temp_dir().join(format!("attractor-legacy-nlm-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut cfg = serde_json::to_value(NlmConfig::new())?;
        assert_eq!(cfg["bias_init"], "data-mean");
        assert_eq!(cfg["schedule"], "cosine");
        assert_eq!(
            (cfg["data_order"].clone(), cfg["held_out"].clone()),
            ("shuffled".into(), 0.1.into())
        );
        for k in [
            "bias_init",
            "polarity_chains",
            "polarity_steps",
            "schedule",
            "data_order",
            "held_out",
        ] {
            cfg.as_object_mut().map(|o| o.remove(k));
        }
        let meta = serde_json::json!({"model": "nlm", "command": "nlm", "seed": 0});
        std::fs::write(
            dir.join("config.json"),
            serde_json::json!({"meta": meta, "config": cfg}).to_string(),
        )?;
        let rd = crate::run::RunDir::open(&dir)?;
        let old: NlmConfig = rd.config_or(&NlmConfig::legacy())?;
        assert_eq!(old.bias_init, BiasInit::Zero);
        assert_eq!(old.schedule, Schedule::Constant);
        assert_eq!(old.polarity_chains, 100);
        assert_eq!((old.data_order, old.held_out), (DataOrder::Files, 0.0));
        drop(rd);
        std::fs::remove_dir_all(&dir)?;
        let err = serde_json::from_value::<BiasInit>("mean".into())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("data-mean") && err.contains("zero"), "{err}");
        Ok(())
    }
}
