//! Drift–diffusion matching: pointwise regression of the network's latent drift
//! and diffusion onto a target SDE, with Adam on autodiff gradients. No back-propagation
//! through time.

pub mod ctrnn;

use anyhow::{Context, Result, bail};
use burn::config::Config;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use self::ctrnn::{Connectivity, CtRnn, CtRnnConfig, Shape};
use crate::checkpoint::{Checkpoint, NamedArray};
use crate::optim::{Adam, AdamState, Schedule};
use crate::rng::Rng;
use crate::sde::builtin::Kind;
use crate::sde::solver::EulerMaruyama;
use crate::sde::target::{SdeSource, Target, TargetSpec};
use crate::sde::{Diffusion, Sde};
use crate::train::{StepOutput, Trainable};
use crate::transfer::{tensor2, tensor2_f32, to_vec_f32};

/// RNG stream labels (derived from the seed) so that each purpose has its own numbers.
pub mod streams {
    /// Network initialisation.
    pub const INIT: u64 = super::ctrnn::INIT_STREAM;
    /// Stationary pool of training points.
    pub const POOL: u64 = 2;
    /// Training batches.
    pub const TRAIN: u64 = 3;
    /// Ridge initialiser points.
    pub const RIDGE: u64 = 4;
    /// Held-out evaluation points and simulations.
    pub const EVAL: u64 = 5;
}

/// How the readout is initialised (`init`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Init {
    /// The closed-form ridge fit of the drift on `ridge_points` points (low-rank networks).
    Ridge,
    /// All trained parameters start at 0.
    Zero,
}

/// Amplitude of the input pulses drawn with the training points (`input_amplitude`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum InputAmplitude {
    /// Uniform in [0, 1].
    Uniform,
    /// Always 1.
    Unit,
}

/// Which gradient trains the network (`grad`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Grad {
    /// The closed form where it applies (low-rank W, fixed h), else autodiff.
    Auto,
    /// The closed form where it applies (same as `auto`; named for benchmarks).
    Analytic,
    /// Burn's autodiff always.
    Autodiff,
}

crate::config::choice_display!(Init, InputAmplitude, Grad);

/// Every hyperparameter of a DDM run. Saved as `config.json`; the run is rebuilt from it alone.
#[derive(Config, Debug)]
pub struct DdmConfig {
    /// Target SDE: a built-in name (`attractor sde list`) or the path of a TOML file.
    #[config(default = "SdeSource::Builtin(Kind::OuRot)")]
    pub sde: SdeSource,
    /// Target parameter overrides, `name=value`.
    #[config(default = "Vec::new()")]
    pub params: Vec<String>,
    /// Text of a user SDE file, embedded when the run is created.
    pub sde_toml: Option<String>,
    /// Number of neurons N.
    #[config(default = 200)]
    pub neurons: usize,
    /// Neuron time constant τ.
    #[config(default = 1.0)]
    pub tau: f64,
    /// Connectivity: `low-rank` (W = U Vᵀ/N), `full-rank` (dense W, off-manifold penalty) or
    /// `symmetric` (W = U C Uᵀ/N², the Hopfield-type control).
    #[config(default = "Connectivity::LowRank")]
    pub connectivity: Connectivity,
    /// Scale s_b of the transverse bias h ~ P⊥ N(0, s_b² I).
    #[config(default = 2.0)]
    pub bias_scale: f64,
    /// Train the transverse bias h as well.
    #[config(default = false)]
    pub train_bias: bool,
    /// Scale of the transverse input loadings B⊥ (inputs shift the features).
    #[config(default = 2.0)]
    pub input_scale: f64,
    /// Weight of the diffusion loss.
    #[config(default = 1.0)]
    pub lambda_diff: f64,
    /// Weight of the off-manifold penalty (full-rank W only).
    #[config(default = 1.0)]
    pub lambda_perp: f64,
    /// Ridge penalty λ_W on ‖W‖_F² = ‖V‖²/N.
    #[config(default = 1e-9)]
    pub lambda_w: f64,
    /// Divide the drift loss by mean ‖f‖² over the stationary pool (for large drifts, Lorenz).
    #[config(default = false)]
    pub normalize_drift: bool,
    /// Training iterations.
    #[config(default = 20000)]
    pub iters: u64,
    /// Points per iteration.
    #[config(default = 1024)]
    pub batch: usize,
    /// Initial Adam learning rate.
    #[config(default = 1e-3)]
    pub lr: f64,
    /// Final learning rate of the schedule.
    #[config(default = 1e-5)]
    pub lr_final: f64,
    /// Learning-rate schedule: `cosine`, `linear` or `constant`.
    #[config(default = "Schedule::Cosine")]
    pub schedule: Schedule,
    /// Adam β₁.
    #[config(default = 0.9)]
    pub beta1: f64,
    /// Adam β₂.
    #[config(default = 0.999)]
    pub beta2: f64,
    /// Adam ε.
    #[config(default = 1e-8)]
    pub adam_eps: f64,
    /// Initialisation of the read-out: `ridge` (closed-form f64 ridge fit, low-rank only) or
    /// `zero`.
    #[config(default = "Init::Ridge")]
    pub init: Init,
    /// Train the direct latent input loading M (B_in = U M + B⊥). Off by default: M u acts on z
    /// instantly while the feature shift B⊥ u builds up at rate 1/τ, so a trained M makes the
    /// full network overshoot for about τ after an input switches; without it, inputs act
    /// only through the features and the network stays consistent during transients.
    #[config(default = false)]
    pub train_input_latent: bool,
    /// Amplitude of the sampled input pulses: `uniform` (a ~ U(0, 1) on the chosen channel, so
    /// the network is also right while its transverse state relaxes after an input switches
    /// on or off) or `unit` (a = 1, the paper's u ∈ {0, e_1, …, e_K}).
    #[config(default = "InputAmplitude::Uniform")]
    pub input_amplitude: InputAmplitude,
    /// Gradient computation: `auto` (closed form for the low-rank network with fixed h,
    /// autodiff otherwise), `analytic` (same as auto) or `autodiff` (always Burn's autodiff).
    #[config(default = "Grad::Auto")]
    pub grad: Grad,
    /// Points used by the ridge initialiser.
    #[config(default = 20000)]
    pub ridge_points: usize,
    /// Share of each batch drawn from the stationary pool (the rest is uniform in the box).
    #[config(default = 0.5)]
    pub stationary_frac: f64,
    /// Expansion of the visited region's bounding box, per side, as a fraction of its width.
    #[config(default = 0.25)]
    pub box_expand: f64,
    /// Size of the pool of stationary training points.
    #[config(default = 100000)]
    pub pool_size: usize,
    /// Parallel target chains used to fill the pool.
    #[config(default = 1000)]
    pub pool_chains: usize,
    /// Burn-in of the pool chains (time units).
    #[config(default = 20.0)]
    pub burn_in: f64,
    /// Time between two pool samples of one chain.
    #[config(default = 0.2)]
    pub thin: f64,
    /// Time step of the target simulation (0: the target's default).
    #[config(default = 0.0)]
    pub sample_dt: f64,
    /// Checkpoint period (iterations).
    #[config(default = 1000)]
    pub checkpoint_every: u64,
    /// Metrics period (iterations).
    #[config(default = 50)]
    pub log_every: u64,
    /// Checkpoints kept on disk.
    #[config(default = 3)]
    pub keep_checkpoints: usize,
    /// Also write TensorBoard event files in `tb/`: the metrics as scalars, a picture at each
    /// checkpoint and this configuration as text (`tensorboard --logdir <run>/tb`).
    #[config(default = true)]
    pub tensorboard: bool,
    /// Seed of every random stream.
    #[config(default = 0)]
    pub seed: u64,
}

fn finite_pos(name: &str, v: f64) -> Result<()> {
    if !(v.is_finite() && v > 0.0) {
        bail!("`{name}` must be a positive number, got {v}");
    }
    Ok(())
}

fn finite_nonneg(name: &str, v: f64) -> Result<()> {
    if !(v.is_finite() && v >= 0.0) {
        bail!("`{name}` must be >= 0, got {v}");
    }
    Ok(())
}

impl DdmConfig {
    /// Rejects invalid hyperparameters with a message naming the key.
    pub fn validate(&self) -> Result<()> {
        finite_pos("tau", self.tau)?;
        finite_nonneg("bias_scale", self.bias_scale)?;
        finite_nonneg("input_scale", self.input_scale)?;
        finite_nonneg("lambda_diff", self.lambda_diff)?;
        finite_nonneg("lambda_perp", self.lambda_perp)?;
        finite_nonneg("lambda_w", self.lambda_w)?;
        finite_pos("lr", self.lr)?;
        finite_nonneg("lr_final", self.lr_final)?;
        finite_pos("adam_eps", self.adam_eps)?;
        finite_pos("thin", self.thin)?;
        finite_nonneg("burn_in", self.burn_in)?;
        finite_nonneg("sample_dt", self.sample_dt)?;
        finite_nonneg("box_expand", self.box_expand)?;
        if !(0.0..=1.0).contains(&self.stationary_frac) {
            bail!(
                "`stationary_frac` must lie in [0, 1], got {}",
                self.stationary_frac
            );
        }
        if self.batch == 0 || self.pool_size == 0 || self.pool_chains == 0 {
            bail!("`batch`, `pool_size` and `pool_chains` must be >= 1");
        }
        if self.neurons == 0 {
            bail!("`neurons` must be >= 1");
        }
        if self.iters == 0 {
            bail!("`iters` must be >= 1");
        }
        // Activations and gradients of a batch (~16 arrays of batch × N), the f64 ridge system,
        // and dense N × N matrices (weights, Adam moments, gradient) for full connectivity.
        let n = self.neurons as f64;
        let mut bytes = 4.0 * n * self.batch as f64 * 16.0;
        if self.init == Init::Ridge {
            bytes += 8.0 * n * self.ridge_points as f64 * 2.0;
        }
        if self.connectivity == Connectivity::FullRank {
            bytes += 4.0 * n * n * 6.0;
        }
        crate::error::check_memory(
            &format!(
                "a DDM network of {} neurons with batch {}",
                self.neurons, self.batch
            ),
            bytes,
        )?;
        if self.init == Init::Ridge && self.ridge_points == 0 {
            bail!("`ridge_points` must be >= 1");
        }
        self.adam().validate()
    }

    /// Adam settings.
    pub fn adam(&self) -> Adam {
        Adam {
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.adam_eps,
            weight_decay: 0.0,
        }
    }

    /// The target as named by the configuration.
    pub fn target_spec(&self) -> TargetSpec {
        TargetSpec {
            sde: self.sde.clone(),
            params: self.params.clone(),
            toml: self.sde_toml.clone(),
        }
    }
}

/// A target and a network built from a configuration (deterministically from its seed).
#[derive(Clone, Debug)]
pub struct Ddm {
    /// The configuration.
    pub cfg: DdmConfig,
    /// The target SDE.
    pub target: Target,
    /// The network.
    pub net: CtRnn,
    /// Where the tensors live.
    pub device: Device,
}

impl Ddm {
    /// Builds the target and a freshly initialised network.
    pub fn new(cfg: &DdmConfig, device: &Device) -> Result<Self> {
        cfg.validate()?;
        let target = Target::from_spec(&cfg.target_spec(), device)?;
        Self::with_target(cfg, target, device)
    }

    /// A freshly initialised network for `target` (e.g. a [`Target::custom`] written in Rust;
    /// `cfg`'s `sde` and `params` are then not used).
    pub fn with_target(cfg: &DdmConfig, target: Target, device: &Device) -> Result<Self> {
        cfg.validate()?;
        let d = target.dim();
        if cfg.neurons < d {
            bail!(
                "`neurons` (N = {}) must be at least the latent dimension d = {d}",
                cfg.neurons
            );
        }
        let net = CtRnnConfig::new(cfg.neurons, d, target.noise_dim())
            .with_inputs(target.inputs())
            .with_tau(cfg.tau)
            .with_connectivity(cfg.connectivity)
            .with_bias_scale(cfg.bias_scale)
            .with_input_scale(cfg.input_scale)
            .with_seed(cfg.seed)
            .init(device)?;
        Ok(Self {
            cfg: cfg.clone(),
            target,
            net,
            device: device.clone(),
        })
    }

    /// Time step for simulating the target.
    pub fn dt(&self) -> f64 {
        if self.cfg.sample_dt > 0.0 {
            self.cfg.sample_dt
        } else {
            self.target.default_dt()
        }
    }
}

/// Runs `chains` target chains and collects `total` stationary states (row-major `[total, d]`):
/// burn-in `burn_in`, then one sample per chain every `thin` time units.
#[allow(clippy::too_many_arguments)]
pub fn stationary_samples(
    sde: &dyn Sde,
    x0: Tensor<2>,
    total: usize,
    burn_in: f64,
    thin: f64,
    dt: f64,
    rng: &mut Rng,
    readout: &dyn Fn(&Tensor<2>) -> Tensor<2>,
) -> Result<Vec<f32>> {
    let em = EulerMaruyama::new(dt, 1.0)?;
    let [chains, _] = x0.dims();
    let burn_steps = (burn_in / dt).round() as usize;
    let thin_steps = ((thin / dt).round() as usize).max(1);
    let rounds = total.div_ceil(chains);
    // The samples stay on the device until every round has run: one read-back.
    let mut samples = crate::transfer::Pending::default();
    em.simulate_at(
        sde,
        x0,
        burn_steps + rounds * thin_steps,
        rng,
        &mut |_| None,
        &|k| k > burn_steps && (k - burn_steps).is_multiple_of(thin_steps),
        &mut |k, x| {
            if k > 0 {
                samples.push(readout(x));
            }
            Ok(())
        },
    )?;
    let mut out = match samples.into_tensor() {
        Some(t) => to_vec_f32(&t)?,
        None => Vec::new(),
    };
    if out.iter().any(|v| !v.is_finite()) {
        bail!("the simulated SDE diverged (NaN/inf): lower the time step or check the drift");
    }
    let d = out.len() / (rounds * chains);
    out.truncate(total * d);
    Ok(out)
}

/// Training state of a DDM run.
pub struct DdmTrainer {
    /// Target and network.
    pub ddm: Ddm,
    adam: AdamState,
    adam_cfg: Adam,
    schedule: Schedule,
    rng: Rng,
    /// Stationary pool `[P, d]` (row-major).
    pub pool: Vec<f32>,
    /// Sampling box per coordinate.
    pub bbox: Vec<(f64, f64)>,
    names: Vec<&'static str>,
    ggt: Option<Tensor<2>>,
    drift_norm: f64,
    /// The pool and box on a non-host device (uploaded once), where training points are drawn.
    on_device: Option<DevicePool>,
}

/// What [`DdmTrainer::sample_points`] needs on a GPU, uploaded once (at build and restore).
struct DevicePool {
    /// Stationary pool `[P, d]`.
    pool: Tensor<2>,
    /// Box lower corner `[1, d]`.
    lo: Tensor<2>,
    /// Box side lengths `[1, d]`.
    span: Tensor<2>,
    /// `1..=p` as `[1, p]` (input channel numbers), when the target has inputs.
    channels: Option<Tensor<2>>,
}

/// Losses of one evaluation of the DDM objective.
pub struct Losses {
    /// Total objective (tracked when the network is).
    pub total: Tensor<1>,
    /// Drift term.
    pub drift: Tensor<1>,
    /// Diffusion term.
    pub diff: Tensor<1>,
}

/// The DDM objective at points `z` (inputs `u`) with target drift `f`.
#[allow(clippy::too_many_arguments)]
pub fn objective(
    net: &CtRnn,
    cfg: &DdmConfig,
    z: Tensor<2>,
    u: Option<&Tensor<2>>,
    f: Tensor<2>,
    ggt: &Tensor<2>,
    drift_norm: f64,
) -> Losses {
    let [b, _] = z.dims();
    let fnet = net.latent_drift(z.clone(), u);
    let mut drift = (fnet - f).powi_scalar(2).sum().div_scalar(b as f64);
    if cfg.normalize_drift && drift_norm > 0.0 {
        drift = drift.div_scalar(drift_norm);
    }
    let aat = net.a.val().matmul(net.a.val().transpose());
    let diff = (aat - ggt.clone()).powi_scalar(2).sum();
    let mut total = drift.clone()
        + diff.clone().mul_scalar(cfg.lambda_diff)
        + net.w_norm2().mul_scalar(cfg.lambda_w);
    if net.shape.conn == Connectivity::FullRank && cfg.lambda_perp > 0.0 {
        let off = net
            .off_manifold(z, u)
            .powi_scalar(2)
            .sum()
            .div_scalar(b as f64);
        total = total + off.mul_scalar(cfg.lambda_perp);
    }
    Losses { total, drift, diff }
}

impl DdmTrainer {
    /// Builds a fresh run: network, stationary pool, box, optional ridge initialisation.
    pub fn new(cfg: &DdmConfig, device: &Device) -> Result<Self> {
        Self::build(cfg, Ddm::new(cfg, device)?, true)
    }

    /// A fresh run on `target` (e.g. a [`Target::custom`] written in Rust).
    pub fn with_target(cfg: &DdmConfig, target: Target, device: &Device) -> Result<Self> {
        Self::build(cfg, Ddm::with_target(cfg, target, device)?, true)
    }

    /// Builds the skeleton of a run whose state will come from a checkpoint (no pool
    /// sampling, no ridge fit).
    pub fn for_resume(cfg: &DdmConfig, device: &Device) -> Result<Self> {
        Self::build(cfg, Ddm::new(cfg, device)?, false)
    }

    fn build(cfg: &DdmConfig, ddm: Ddm, fresh: bool) -> Result<Self> {
        let device = &ddm.device.clone();
        let d = ddm.target.dim();
        let mut prng = Rng::derived(cfg.seed, streams::POOL);
        let cfg = &DdmConfig {
            pool_size: if fresh { cfg.pool_size } else { 1 },
            pool_chains: if fresh { cfg.pool_chains } else { 1 },
            burn_in: if fresh { cfg.burn_in } else { 0.0 },
            ..cfg.clone()
        };
        let x0 = tensor2(
            &ddm.target.initial_states(&mut prng, cfg.pool_chains),
            cfg.pool_chains,
            d,
            device,
        );
        let pool = stationary_samples(
            &ddm.target,
            x0,
            cfg.pool_size,
            cfg.burn_in,
            cfg.thin,
            ddm.dt(),
            &mut prng,
            &|x| x.clone(),
        )
        .context("while sampling the target's stationary distribution")?;
        let bbox = match ddm.target.declared_box() {
            Some(b) => b,
            None => (0..d)
                .map(|j| {
                    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
                    for r in pool.chunks_exact(d) {
                        lo = lo.min(r[j] as f64);
                        hi = hi.max(r[j] as f64);
                    }
                    let w = (hi - lo).max(1e-3);
                    (lo - cfg.box_expand * w, hi + cfg.box_expand * w)
                })
                .collect(),
        };
        let drift_norm = {
            let n = pool.len() / d;
            let f = ddm
                .target
                .drift(tensor2_f32(pool.clone(), n, d, device), None);
            let v = to_vec_f32(&f)?;
            v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / n as f64
        };
        let ggt = ddm.target.g_const().map(|g| {
            let (dd, m) = (d, ddm.target.noise_dim());
            let mut out = vec![0.0; dd * dd];
            for i in 0..dd {
                for j in 0..dd {
                    out[i * dd + j] = (0..m).map(|k| g[i * m + k] * g[j * m + k]).sum();
                }
            }
            tensor2(&out, dd, dd, device)
        });
        let mut names = vec!["read", "c", "A"];
        if ddm.net.shape.p > 0 && cfg.train_input_latent {
            names.push("M");
        }
        if cfg.train_bias {
            names.push("h");
        }
        let params: Vec<_> = names.iter().map(|n| (*n, ddm.net.param(n))).collect();
        let adam = AdamState::new(&params);
        let mut t = Self {
            adam,
            adam_cfg: cfg.adam(),
            schedule: cfg.schedule,
            rng: Rng::derived(cfg.seed, streams::TRAIN),
            pool,
            bbox,
            names,
            ggt,
            drift_norm,
            ddm,
            on_device: None,
        };
        t.upload_pool();
        if fresh && cfg.init == Init::Ridge && t.ddm.net.shape.conn == Connectivity::LowRank {
            let mut rr = Rng::derived(cfg.seed, streams::RIDGE);
            let (z, u) = t.sample_points(cfg.ridge_points, &mut rr);
            ridge_init(&mut t.ddm, &z, u.as_ref())?;
        }
        Ok(t)
    }

    /// Puts the pool and the box on a non-host device (nothing on the CPU backends).
    fn upload_pool(&mut self) {
        let dev = &self.ddm.device;
        let d = self.ddm.target.dim();
        let np = self.pool.len() / d;
        if crate::device::is_host(dev) || np == 0 || self.bbox.len() != d {
            self.on_device = None;
            return;
        }
        let lo: Vec<f64> = self.bbox.iter().map(|b| b.0).collect();
        let span: Vec<f64> = self.bbox.iter().map(|b| b.1 - b.0).collect();
        let p = self.ddm.target.inputs();
        let channels: Vec<f64> = (1..=p).map(|k| k as f64).collect();
        self.on_device = Some(DevicePool {
            pool: tensor2_f32(self.pool.clone(), np, d, dev),
            lo: tensor2(&lo, 1, d, dev),
            span: tensor2(&span, 1, d, dev),
            channels: (p > 0).then(|| tensor2(&channels, 1, p, dev)),
        });
    }

    /// Draws `b` training points: the stationary share from the pool, the rest uniform in the
    /// box; inputs uniformly among 0 and the unit pulses. On a GPU every draw happens there
    /// (one seed from `rng`, nothing uploaded); the CPU backends draw from `rng` on the host.
    pub fn sample_points(&self, b: usize, rng: &mut Rng) -> (Tensor<2>, Option<Tensor<2>>) {
        let d = self.ddm.target.dim();
        let np = self.pool.len() / d;
        let ns = ((self.ddm.cfg.stationary_frac * b as f64).round() as usize).min(b);
        if let Some(dp) = &self.on_device {
            return self.sample_points_device(dp, b, ns, rng);
        }
        let mut z = Vec::with_capacity(b * d);
        for _ in 0..ns {
            let i = rng.index(np);
            z.extend_from_slice(&self.pool[i * d..(i + 1) * d]);
        }
        for _ in ns..b {
            for &(lo, hi) in &self.bbox {
                z.push(rng.uniform(lo, hi) as f32);
            }
        }
        let dev = &self.ddm.device;
        let p = self.ddm.target.inputs();
        let uniform_amp = self.ddm.cfg.input_amplitude == InputAmplitude::Uniform;
        let u = (p > 0).then(|| {
            let mut u = vec![0f32; b * p];
            for r in 0..b {
                let k = rng.index(p + 1);
                if k > 0 {
                    u[r * p + k - 1] = if uniform_amp {
                        rng.uniform(0.0, 1.0) as f32
                    } else {
                        1.0
                    };
                }
            }
            tensor2_f32(u, b, p, dev)
        });
        (tensor2_f32(z, b, d, dev), u)
    }

    fn sample_points_device(
        &self,
        dp: &DevicePool,
        b: usize,
        ns: usize,
        rng: &mut Rng,
    ) -> (Tensor<2>, Option<Tensor<2>>) {
        use burn::tensor::Distribution;
        let dev = &self.ddm.device;
        let d = self.ddm.target.dim();
        let np = dp.pool.dims()[0];
        let draw =
            |shape: [usize; 2]| Tensor::<2>::random(shape, Distribution::Uniform(0.0, 1.0), dev);
        let with_inputs = dp.channels.is_some();
        let (u_pool, u_box, u_in) = crate::device::seeded(rng.next_u64(), dev, || {
            (
                (ns > 0).then(|| draw([ns, 1])),
                (b > ns).then(|| draw([b - ns, d])),
                with_inputs.then(|| (draw([b, 1]), draw([b, 1]))),
            )
        });
        let mut parts = Vec::with_capacity(2);
        if let Some(u) = u_pool {
            let idx = u
                .mul_scalar(np as f64)
                .floor()
                .clamp_max((np - 1) as f64)
                .int()
                .reshape([ns]);
            parts.push(dp.pool.clone().select(0, idx));
        }
        if let Some(u) = u_box {
            parts.push(u * dp.span.clone() + dp.lo.clone());
        }
        let z = Tensor::cat(parts, 0);
        let u = match (&dp.channels, u_in) {
            (Some(ch), Some((pick, amp))) => {
                let p = ch.dims()[1];
                // Channel k ∈ {0, …, p} uniformly (0: no input), as a one-hot row.
                let k = pick.mul_scalar((p + 1) as f64).floor();
                let onehot = (k - ch.clone()).abs().lower_elem(0.5).float();
                Some(if self.ddm.cfg.input_amplitude == InputAmplitude::Uniform {
                    onehot * amp
                } else {
                    onehot
                })
            }
            _ => None,
        };
        (z, u)
    }

    /// Target `ggᵀ` for the points `z` (constant, or the batch mean of a state-dependent one).
    pub fn target_ggt(&self, z: &Tensor<2>) -> Tensor<2> {
        if let Some(g) = &self.ggt {
            return g.clone();
        }
        match self.ddm.target.diffusion(z) {
            Diffusion::Additive(g) => g.clone().matmul(g.transpose()),
            Diffusion::Isotropic(s) => {
                let d = self.ddm.target.dim();
                let eye: Vec<f64> = (0..d * d)
                    .map(|k| if k % (d + 1) == 0 { s * s } else { 0.0 })
                    .collect();
                tensor2(&eye, d, d, &self.ddm.device)
            }
            Diffusion::PerSample(g) => {
                let [b, d, _] = g.dims();
                g.clone()
                    .matmul(g.swap_dims(1, 2))
                    .sum_dim(0)
                    .div_scalar(b as f64)
                    .reshape([d, d])
            }
        }
    }

    /// Whether this run uses the closed-form gradient (low-rank W, fixed h, `grad` = `auto` or
    /// `analytic`); otherwise Burn's autodiff.
    pub fn analytic(&self) -> bool {
        let ok = self.ddm.net.shape.conn == Connectivity::LowRank && !self.ddm.cfg.train_bias;
        match self.ddm.cfg.grad {
            Grad::Autodiff => false,
            Grad::Auto | Grad::Analytic => ok,
        }
    }

    /// Mean ‖f‖² over the pool (normaliser of the drift loss).
    pub fn drift_norm(&self) -> f64 {
        self.drift_norm
    }
}

/// The DDM objective and its gradients in closed form, for the low-rank network with fixed
/// `U`, `h` (the default case): no autodiff tape. Equal to the autodiff gradients (tested).
///
/// With `F = (−z + φ V/N + c + u Mᵀ)/τ`, `R = F − f` and `s` the drift normaliser:
/// `∂L/∂V = 2 s φᵀR/(B N τ) + 2 λ_W V/N`, `∂L/∂c = 2 s Σ_b R/(B τ)`, `∂L/∂M = 2 s Rᵀu/(B τ)`,
/// `∂L/∂A = 4 λ_diff (AAᵀ − ggᵀ) A`.
#[allow(clippy::type_complexity)]
pub fn analytic_grads(
    net: &CtRnn,
    cfg: &DdmConfig,
    z: Tensor<2>,
    u: Option<&Tensor<2>>,
    f: Tensor<2>,
    ggt: &Tensor<2>,
    drift_norm: f64,
) -> (Losses, Vec<(&'static str, Tensor<2>)>) {
    let [b, _] = z.dims();
    let (n, tau) = (net.shape.n as f64, net.shape.tau);
    let phi = crate::device::fast::tanh(net.features_pre(z.clone(), u));
    let mut fnet = z.neg() + phi.clone().matmul(net.read.val()).div_scalar(n) + net.c.val();
    if let Some(u) = u
        && net.shape.p > 0
    {
        fnet = fnet + u.clone().matmul(net.min.val().transpose());
    }
    let r = fnet.div_scalar(tau) - f;
    let scale = if cfg.normalize_drift && drift_norm > 0.0 {
        1.0 / drift_norm
    } else {
        1.0
    };
    let drift = r.clone().powi_scalar(2).sum().mul_scalar(scale / b as f64);
    let df = r.mul_scalar(2.0 * scale / (b as f64 * tau));
    let gv = phi.transpose().matmul(df.clone()).div_scalar(n)
        + net.read.val().mul_scalar(2.0 * cfg.lambda_w / n);
    let gc = df.clone().sum_dim(0);
    let a = net.a.val();
    let e = a.clone().matmul(a.clone().transpose()) - ggt.clone();
    let diff = e.clone().powi_scalar(2).sum();
    let ga = e.matmul(a).mul_scalar(4.0 * cfg.lambda_diff);
    let total = drift.clone()
        + diff.clone().mul_scalar(cfg.lambda_diff)
        + net.w_norm2().mul_scalar(cfg.lambda_w);
    let mut grads = vec![("read", gv), ("c", gc), ("A", ga)];
    if let Some(u) = u
        && net.shape.p > 0
    {
        grads.push(("M", df.transpose().matmul(u.clone())));
    }
    (Losses { total, drift, diff }, grads)
}

/// Closed-form ridge fit of `[V; c; Mᵀ]` with `U`, `h` fixed (f64), and `A` from `ggᵀ`.
/// Minimises `mean_k ‖F_θ(z_k) − f(z_k)‖² + λ_W ‖V‖²/N` exactly.
pub fn ridge_init(ddm: &mut Ddm, z: &Tensor<2>, u: Option<&Tensor<2>>) -> Result<f64> {
    let net = &ddm.net;
    let Shape {
        n,
        d,
        p: p_all,
        m,
        tau,
        ..
    } = net.shape.clone();
    // Columns for the direct latent input M only when it is trained.
    let p = if ddm.cfg.train_input_latent { p_all } else { 0 };
    let [k, _] = z.dims();
    let f = to_vec_f32(&ddm.target.drift(z.clone(), u.cloned()))?;
    let zh = to_vec_f32(z)?;
    let phi = to_vec_f32(&crate::device::fast::tanh(net.features_pre(z.clone(), u)))?;
    let uh = match u {
        Some(u) if p > 0 => to_vec_f32(u)?,
        _ => Vec::new(),
    };
    let cols = n + 1 + p;
    let x = nalgebra::DMatrix::from_fn(k, cols, |r, i| {
        if i < n {
            phi[r * n + i] as f64 / n as f64
        } else if i == n {
            1.0
        } else {
            uh[r * p + i - n - 1] as f64
        }
    });
    let y = nalgebra::DMatrix::from_fn(k, d, |r, j| {
        tau * f[r * d + j] as f64 + zh[r * d + j] as f64
    });
    // (XᵀX/K + λ τ²/N · I_V) sol = XᵀY/K  (the penalty is on V only)
    let kf = k as f64;
    let mut a = x.tr_mul(&x) / kf;
    let rhs = x.tr_mul(&y) / kf;
    let lam = ddm.cfg.lambda_w * tau * tau / n as f64;
    for i in 0..n {
        a[(i, i)] += lam;
    }
    // Tiny jitter on the unpenalised rows keeps the system positive definite.
    for i in n..cols {
        a[(i, i)] += 1e-12;
    }
    let sol = a
        .cholesky()
        .context("ridge solve failed: the normal equations are not positive definite")?
        .solve(&rhs);
    let v: Vec<f64> = (0..n * d).map(|k| sol[(k / d, k % d)]).collect();
    let c: Vec<f64> = (0..d).map(|j| sol[(n, j)]).collect();
    let mut mm = vec![0.0; d * p_all];
    for j in 0..p {
        for i in 0..d {
            mm[i * p_all + j] = sol[(n + 1 + j, i)];
        }
    }
    let dev = ddm.device.clone();
    let net = &mut ddm.net;
    net.set("read", tensor2(&v, n, d, &dev));
    net.set("c", tensor2(&c, 1, d, &dev));
    net.set("M", tensor2(&mm, d, p_all, &dev));
    if let Some(g) = ddm.target.g_const()
        && g.len() == d * m
    {
        net.set("A", tensor2(&g, d, m, &dev));
    }
    // Objective value at the optimum (f64), for the least-squares anchor.
    let mut obj = 0.0;
    for r in 0..k {
        for j in 0..d {
            let pred: f64 = (0..cols).map(|i| x[(r, i)] * sol[(i, j)]).sum();
            obj += ((pred - y[(r, j)]) / tau).powi(2);
        }
    }
    obj /= kf;
    obj += ddm.cfg.lambda_w * v.iter().map(|x| x * x).sum::<f64>() / n as f64;
    Ok(obj)
}

impl Trainable for DdmTrainer {
    fn kind(&self) -> &'static str {
        "ddm"
    }

    fn export(&self, dir: &std::path::Path) -> Result<()> {
        crate::models::export::export(&self.ddm.net, dir)
    }

    fn step(&mut self, step: u64) -> Result<StepOutput> {
        let cfg = &self.ddm.cfg;
        let lr = self.schedule.lr(cfg.lr, cfg.lr_final, step, cfg.iters);
        let mut rng = std::mem::replace(&mut self.rng, Rng::new(0));
        let (z, u) = self.sample_points(cfg.batch, &mut rng);
        self.rng = rng;
        let f = self.ddm.target.drift(z.clone(), u.clone());
        let ggt = self.target_ggt(&z);
        let (vals, grads) = if self.analytic() {
            let (l, g) = analytic_grads(
                &self.ddm.net,
                &self.ddm.cfg,
                z,
                u.as_ref(),
                f,
                &ggt,
                self.drift_norm,
            );
            let g = g
                .into_iter()
                .filter(|(n, _)| self.names.contains(n))
                .map(|(n, g)| (self.ddm.net.param(n).id, g))
                .collect();
            (Tensor::cat(vec![l.total, l.drift, l.diff], 0), g)
        } else {
            let tracked = self.ddm.net.tracked(&self.names);
            let l = objective(
                &tracked,
                &self.ddm.cfg,
                z,
                u.as_ref(),
                f,
                &ggt,
                self.drift_norm,
            );
            let g = l.total.backward();
            let vals = Tensor::cat(vec![l.total.inner(), l.drift.inner(), l.diff.inner()], 0);
            let mut out = Vec::new();
            for name in &self.names {
                let gr = tracked
                    .get(name)
                    .grad(&g)
                    .with_context(|| format!("no gradient for `{name}`"))?;
                out.push((tracked.param(name).id, gr));
            }
            (vals, out)
        };
        let grads = grads
            .into_iter()
            .map(|(id, g)| (id, g, &self.adam_cfg))
            .collect();
        self.ddm.net = self.adam.step(self.ddm.net.clone(), grads, lr)?;
        let mut out = StepOutput::device(vals, &["loss", "loss_drift", "loss_diff"]);
        out.host.push(("lr".into(), lr));
        Ok(out)
    }

    fn checkpoint(&self, step: u64) -> Result<Checkpoint> {
        let d = self.ddm.target.dim();
        let mut ck = Checkpoint {
            kind: "ddm".into(),
            step,
            arrays: Vec::new(),
            extra: serde_json::json!({
                "rng": self.rng.to_json(),
                "bbox": self.bbox,
                "drift_norm": self.drift_norm,
                // The same f64s bit for bit: serde_json's default float parser may land one
                // ulp off, which made a resumed run's box (and so its checkpoint) differ.
                "bbox_bits": self.bbox.iter().map(|(lo, hi)| [lo.to_bits(), hi.to_bits()]).collect::<Vec<_>>(),
                "drift_norm_bits": self.drift_norm.to_bits(),
            }),
        };
        self.ddm.net.save_into(&mut ck)?;
        self.adam.save_into(&mut ck)?;
        ck.arrays.push(NamedArray {
            name: "pool".into(),
            shape: vec![self.pool.len() / d, d],
            data: self.pool.clone(),
        });
        Ok(ck)
    }

    fn restore(&mut self, ck: &Checkpoint) -> Result<()> {
        self.ddm.net.load_from(ck)?;
        self.adam.load_from(ck)?;
        self.pool = ck.array("pool")?.data.clone();
        self.rng = Rng::from_json(ck.extra.get("rng").context("checkpoint has no RNG state")?)?;
        // Exact bits when the checkpoint has them (written since 2026-12-03), else the decimals.
        self.bbox = match ck.extra.get("bbox_bits") {
            Some(bits) => serde_json::from_value::<Vec<[u64; 2]>>(bits.clone())?
                .into_iter()
                .map(|[lo, hi]| (f64::from_bits(lo), f64::from_bits(hi)))
                .collect(),
            None => serde_json::from_value(
                ck.extra
                    .get("bbox")
                    .cloned()
                    .context("checkpoint has no box")?,
            )?,
        };
        self.drift_norm = match ck.extra.get("drift_norm_bits").and_then(|v| v.as_u64()) {
            Some(bits) => f64::from_bits(bits),
            None => ck
                .extra
                .get("drift_norm")
                .and_then(|v| v.as_f64())
                .unwrap_or(self.drift_norm),
        };
        self.upload_pool();
        Ok(())
    }
}

/// Loads the network of a checkpoint into a freshly built [`Ddm`] (for simulate/eval/export).
pub fn load_network(cfg: &DdmConfig, ck: &Checkpoint, device: &Device) -> Result<Ddm> {
    if ck.kind != "ddm" {
        bail!("this is a `{}` checkpoint, not a DDM one", ck.kind);
    }
    let mut ddm = Ddm::new(cfg, device)?;
    ddm.net.load_from(ck)?;
    Ok(ddm)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed choices keep the spellings `config.json` has always had (runs written before
    /// them load) and an unknown value is refused naming the valid ones.
    #[test]
    fn choices_keep_their_config_json_spellings() {
        let mut v = serde_json::to_value(DdmConfig::new()).unwrap();
        for (k, old) in [
            ("sde", "ou-rot"),
            ("connectivity", "low-rank"),
            ("schedule", "cosine"),
            ("init", "ridge"),
            ("input_amplitude", "uniform"),
            ("grad", "auto"),
        ] {
            assert_eq!(v[k], old, "default spelling of {k}");
        }
        for (k, old) in [
            ("sde", "lorenz"),
            ("connectivity", "full-rank"),
            ("schedule", "linear"),
            ("init", "zero"),
            ("input_amplitude", "unit"),
            ("grad", "autodiff"),
        ] {
            v[k] = old.into();
        }
        let cfg: DdmConfig = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(cfg.sde, SdeSource::Builtin(Kind::Lorenz));
        assert_eq!(cfg.connectivity, Connectivity::FullRank);
        assert_eq!(cfg.schedule, Schedule::Linear);
        assert_eq!(
            (cfg.init, cfg.input_amplitude, cfg.grad),
            (Init::Zero, InputAmplitude::Unit, Grad::Autodiff)
        );
        v["grad"] = "numeric".into();
        let err = serde_json::from_value::<DdmConfig>(v)
            .unwrap_err()
            .to_string();
        assert!(err.contains("numeric") && err.contains("autodiff"), "{err}");
    }
}
