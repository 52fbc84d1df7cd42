//! Self-orthogonalising attractor networks from the free energy principle.
//!
//! G independent networks of N continuous-Bernoulli units are trained together as one batched
//! computation: couplings `J: [G, N, N]` (J_ij from j to i, zero diagonal), states `σ: [G, N]`,
//! per-network precision β, evidence and learning rate (so a grid of settings is one run).
//! Learning is local: the form of the paper's code (default), the paper form, or Hebbian.
//! Analysis (attractors, orthogonality, retrieval) runs on the host in f64 (`analysis::fep`).
//!
//! Two engines compute the same update from the same random numbers (see
//! [`FepConfig::engine`]): Burn tensor ops batched over the networks (any device; rank-1
//! updates deferred and folded every 16 steps), and the fused CPU loop of
//! [`super::fep_host`].

pub mod cb;
pub mod kernel;
pub mod tensor;

use anyhow::{Context, Result, bail};
use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, NamedArray};
use crate::data::patterns::{PatternSet, PatternSource};
use crate::models::param;
use crate::rng::Rng;
use crate::train::{StepOutput, Trainable};

/// RNG streams of FEP runs.
pub mod streams {
    /// Pattern order and unit sampling during training.
    pub const TRAIN: u64 = 11;
    /// Evaluation cues and sampling.
    pub const EVAL: u64 = 12;
}

/// What a FEP network sees as input during training (`input`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Input {
    /// Bias b = evidence × the presented pattern.
    Patterns,
    /// b = 0: free running with learning on (Sim 4).
    None,
}

/// Order in which patterns are presented (`order`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Order {
    /// A uniformly random pattern per epoch and network.
    Random,
    /// 0, 1, …, P−1, 0, …
    Sequential,
}

/// Which prediction error drives learning (`rule`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// ε = σ − L(Jσ_prev) (the reference code's form, default).
    Code,
    /// ε = σ − L(β(b + Jσ_prev)) (the paper's form).
    Paper,
    /// ΔJ = α σσᵀ (baseline).
    Hebbian,
}

/// How the units of a network are updated within a step (`schedule`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    /// All units from the previous state.
    Synchronous,
    /// Node by node, each unit seeing the units already updated.
    Sequential,
}

/// What computes the networks (`engine`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// `host` on a CPU device when N <= 512, else `tensor`.
    Auto,
    /// Burn tensor ops batched over the networks (any device).
    Tensor,
    /// A fused CPU loop per network (see `fep_host`).
    Host,
}

crate::config::choice_display!(Input, Order, Rule, UpdateOrder, Engine);

/// Every hyperparameter of a FEP run.
#[derive(Config, Debug)]
pub struct FepConfig {
    /// Patterns: `digits` (the bundled 8×8 digits, first 10 as training set) or a path
    /// (`.npy` `[P, N]`, CSV one pattern a row, or a folder of same-size PNGs).
    #[config(default = "PatternSource::Builtin(PatternSet::Digits)")]
    pub patterns: PatternSource,
    /// Input during training: `patterns` (bias = evidence × pattern) or `none` (b = 0: free
    /// running with learning on, the paper's Sim 4).
    #[config(default = "Input::Patterns")]
    pub input: Input,
    /// Start from the couplings and states of another run's newest checkpoint (run directory).
    pub init_from: Option<std::path::PathBuf>,
    /// Train on these pattern indices only (empty: all), e.g. `[1, 2, 3]` for Sim 3.
    #[config(default = "Vec::new()")]
    pub subset: Vec<usize>,
    /// Z-score each user pattern (the digits are always preprocessed as in the paper).
    #[config(default = true)]
    pub zscore: bool,
    /// Evidence level: a pattern x is presented as bias b = evidence · x.
    #[config(default = 11.0)]
    pub evidence: f64,
    /// Inverse temperature (precision) β multiplying the local field.
    #[config(default = 0.1668)]
    pub beta: f64,
    /// Learning rate α.
    #[config(default = 0.001)]
    pub lr: f64,
    /// Training epochs (one pattern presentation each).
    #[config(default = 5000)]
    pub epochs: u64,
    /// Update + learning steps per epoch.
    #[config(default = 10)]
    pub steps_per_epoch: usize,
    /// Pattern order: `random` (uniform per epoch) or `sequential` (0, 1, …, P−1, 0, …).
    #[config(default = "Order::Random")]
    pub order: Order,
    /// Learning rule: `code` (ε = σ − L(Jσ_prev), default), `paper` (ε = σ − L(β(b + Jσ_prev)))
    /// or `hebbian` (ΔJ = α σσᵀ, baseline).
    #[config(default = "Rule::Code")]
    pub rule: Rule,
    /// Update schedule: `synchronous` (all units from the previous state, as both reference
    /// codebases) or `sequential` (node by node, each seeing the units already updated, as the
    /// paper's text describes; N times more tensor operations per step).
    #[config(default = "UpdateOrder::Synchronous")]
    pub schedule: UpdateOrder,
    /// Multiply the prediction error by the precision 1/max(L'(βh), 1e-8).
    #[config(default = false)]
    pub precision_weighting: bool,
    /// Reset the state to 0 at the start of each epoch (the numpy reference carries it over).
    #[config(default = false)]
    pub reset_state: bool,
    /// Independent networks trained together (different seeds of the same setting).
    #[config(default = 1)]
    pub networks: usize,
    /// Computation: `tensor` (Burn tensor ops batched over the networks; any device), `host`
    /// (a fused CPU loop per network with its couplings in cache, networks spread over the
    /// cores; see `fep_host`) or `auto` (host on a CPU device when N <= 512, else tensor).
    /// Both compute the same update from the same random numbers; float rounding differs.
    #[config(default = "Engine::Auto")]
    pub engine: Engine,
    /// Checkpoint period (epochs).
    #[config(default = 500)]
    pub checkpoint_every: u64,
    /// Metrics period (epochs).
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

impl FepConfig {
    /// Rejects invalid hyperparameters with a message naming the key.
    pub fn validate(&self) -> Result<()> {
        for (k, v) in [
            ("evidence", self.evidence),
            ("beta", self.beta),
            ("lr", self.lr),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                bail!("`{k}` must be a finite number >= 0, got {v}");
            }
        }
        if self.steps_per_epoch == 0 || self.networks == 0 || self.epochs == 0 {
            bail!("`epochs`, `steps_per_epoch` and `networks` must be >= 1");
        }
        Ok(())
    }
}

/// The couplings and states of G networks of N units, a Burn module. `J` is learned by the
/// local rule (not by gradients); the states σ are a frozen parameter of the module (they are
/// the networks' memory between epochs). Ids fixed by name (`fep.J`, `fep.state`).
#[derive(Module, Debug)]
pub struct FepNetworks {
    /// Couplings `[G, N, N]` (J_ij from unit j to unit i, zero diagonal).
    pub j: Param<Tensor<3>>,
    /// States σ `[G, N]`.
    pub state: Param<Tensor<2>>,
}

/// Configuration of fresh [`FepNetworks`] (J = 0, σ = 0).
#[derive(Config, Debug)]
pub struct FepNetworksConfig {
    /// Networks G.
    pub networks: usize,
    /// Units per network N.
    pub neurons: usize,
}

impl FepNetworksConfig {
    /// Fresh networks on `device`.
    pub fn init(&self, device: &Device) -> FepNetworks {
        let (g, n) = (self.networks, self.neurons);
        FepNetworks::from_tensors(
            Tensor::zeros([g, n, n], device),
            Tensor::zeros([g, n], device),
        )
    }
}

impl FepNetworks {
    /// Networks with these couplings `[G, N, N]` and states `[G, N]`.
    pub fn from_tensors(j: Tensor<3>, state: Tensor<2>) -> Self {
        Self {
            j: param("fep.J", j),
            state: param("fep.state", state).set_require_grad(false),
        }
    }

    /// Replaces the couplings.
    pub fn set_j(&mut self, j: Tensor<3>) {
        self.j = param("fep.J", j);
    }

    /// Replaces the states.
    pub fn set_state(&mut self, state: Tensor<2>) {
        self.state = param("fep.state", state).set_require_grad(false);
    }

    /// Networks G.
    pub fn networks(&self) -> usize {
        self.j.dims()[0]
    }

    /// Units per network N.
    pub fn neurons(&self) -> usize {
        self.j.dims()[1]
    }
}

/// Batched FEP networks with their training state.
pub struct FepTrainer {
    /// Configuration.
    pub cfg: FepConfig,
    /// Training patterns, row-major `[P, N]` (already preprocessed).
    pub patterns: Vec<f64>,
    /// Pattern length N.
    pub n: usize,
    /// Networks G.
    pub g: usize,
    /// The engine holding couplings and states.
    nets: Box<dyn Networks>,
    /// Precision β of each network (default: `cfg.beta` for all).
    pub betas: Vec<f64>,
    /// Evidence level of each network (default: `cfg.evidence` for all).
    pub evidences: Vec<f64>,
    rng: Rng,
    /// Pattern presented in the last epoch, per network.
    pub last_pattern: Vec<usize>,
}

/// What an epoch reports: (‖ΔJ‖², VFE) per network, on the host or still on the device.
#[allow(clippy::large_enum_variant)] // one per epoch, moved once
pub(crate) enum EpochOut {
    Host(f64, f64),
    /// `[2]`: the same two values, not read back.
    Device(Tensor<1>),
}

/// Largest N the `auto` engine runs on the host (J of one network ≤ 1 MB, in cache).
pub const HOST_MAX_N: usize = 512;

/// What an engine needs for one epoch.
pub(crate) struct EpochInput<'a> {
    pub(crate) cfg: &'a FepConfig,
    /// `[P, N]`.
    pub(crate) patterns: &'a [f64],
    /// The pattern each network sees this epoch.
    pub(crate) last_pattern: &'a [usize],
    pub(crate) evidences: &'a [f64],
    pub(crate) betas: &'a [f64],
    /// Seed of the epoch's random numbers: network k's uniforms come from stream k of it.
    pub(crate) base: u64,
}

/// Input biases on the host `[G, N]`: evidence × the presented pattern (0 with `input = none`).
pub(crate) fn host_bias(cx: &EpochInput<'_>, g: usize, n: usize) -> Vec<f32> {
    let mut bias = vec![0f32; g * n];
    if cx.cfg.input == Input::Patterns {
        for k in 0..g {
            let idx = cx.last_pattern[k];
            for i in 0..n {
                bias[k * n + i] = (cx.evidences[k] * cx.patterns[idx * n + i]) as f32;
            }
        }
    }
    bias
}

/// Each network's stream of this epoch: the same numbers whichever engine runs it and however
/// the networks are shared out.
pub(crate) fn streams_of(cx: &EpochInput<'_>, g: usize) -> Vec<Rng> {
    (0..g as u64).map(|k| Rng::substream(cx.base, k)).collect()
}

/// What runs the G networks: the host engine ([`kernel::HostNetworks`], the fused CPU loop)
/// or the tensor engine ([`tensor::TensorNetworks`], Burn tensors on any device). Both compute
/// the same update from the same random numbers; the trainer never asks which it holds.
pub(crate) trait Networks: Send + Sync {
    /// `host` or `tensor`.
    fn name(&self) -> &'static str;
    /// One epoch of `cx.cfg.steps_per_epoch` steps; J has every update added when it returns.
    fn epoch(&mut self, cx: &EpochInput<'_>) -> Result<EpochOut>;
    /// Couplings of every network, row-major `[G, N, N]` (one read-back).
    fn couplings(&self) -> Result<Vec<f32>>;
    /// Couplings of network `k`, `[N, N]`.
    fn coupling(&self, k: usize) -> Result<Vec<f32>>;
    /// States `[G, N]`.
    fn states(&self) -> Result<Vec<f32>>;
    /// State of network `k`.
    fn state(&self, k: usize) -> Result<Vec<f32>>;
    /// Replaces couplings (`[G, N, N]`) and states (`[G, N]`).
    fn load(&mut self, j: &[f32], state: &[f32]);
    /// Multiplies network k's couplings by `factors[k]`.
    fn scale(&mut self, factors: &[f64]);
    /// The networks as a Burn module.
    fn module(&self) -> FepNetworks;
    /// Fold deferred updates after `k` (tensor engine; tests).
    #[cfg(test)]
    fn set_max_pending(&mut self, _k: usize) {}
}

impl FepTrainer {
    /// Fresh networks (J = 0, σ = 0) for `patterns` (`[P, N]`).
    pub fn new(cfg: &FepConfig, patterns: Vec<f64>, n: usize, device: &Device) -> Result<Self> {
        cfg.validate()?;
        if n == 0 || patterns.is_empty() || !patterns.len().is_multiple_of(n) {
            bail!(
                "patterns must be a non-empty [P, N] array (got {} values for N = {n})",
                patterns.len()
            );
        }
        if patterns.iter().any(|x| !x.is_finite()) {
            bail!("patterns contain NaN or infinite values");
        }
        let g = cfg.networks;
        let nf = n as f64;
        crate::error::check_memory(
            &format!("{g} FEP networks of {n} units"),
            4.0 * g as f64 * (4.0 * nf * nf + 8.0 * nf) + 8.0 * patterns.len() as f64,
        )?;
        let nets: Box<dyn Networks> = match cfg.engine {
            Engine::Host => {
                if !crate::device::is_host(device) {
                    log::warn!(
                        "engine = host runs the FEP networks on the CPU although the device is \
                         a GPU; use engine = auto or tensor to run them on the GPU"
                    );
                }
                Box::new(kernel::HostNetworks::new(g, n, device))
            }
            Engine::Auto if crate::device::is_host(device) && n <= HOST_MAX_N => {
                Box::new(kernel::HostNetworks::new(g, n, device))
            }
            Engine::Auto | Engine::Tensor => Box::new(tensor::TensorNetworks::new(g, n, device)),
        };
        Ok(Self {
            cfg: cfg.clone(),
            // Held at f32 precision, as the checkpoint stores them: a resumed run then computes
            // bit-identical input biases (found by the SIGKILL drill).
            patterns: patterns.iter().map(|&x| x as f32 as f64).collect(),
            n,
            g,
            nets,
            betas: vec![cfg.beta; g],
            evidences: vec![cfg.evidence; g],
            rng: Rng::derived(cfg.seed, streams::TRAIN),
            last_pattern: vec![0; g],
        })
    }

    /// Copies couplings and states (and per-network β, evidence) from another run's
    /// checkpoint (same N and number of networks); the step counter starts again at 0.
    pub fn init_from(&mut self, ck: &Checkpoint) -> Result<()> {
        let rng = self.rng.clone();
        let (betas, evs) = (self.betas.clone(), self.evidences.clone());
        self.restore(ck)?;
        self.rng = rng;
        self.betas = betas;
        self.evidences = evs;
        Ok(())
    }

    /// Multiplies network k's couplings by `factors[k]` (weight-norm matching of baselines).
    pub fn scale_couplings(&mut self, factors: &[f64]) -> Result<()> {
        if factors.len() != self.g {
            bail!("{} scale factors for {} networks", factors.len(), self.g);
        }
        self.nets.scale(factors);
        Ok(())
    }

    /// Number of patterns P.
    pub fn n_patterns(&self) -> usize {
        self.patterns.len() / self.n
    }

    /// Which engine runs the networks: `host` or `tensor`.
    pub fn engine(&self) -> &'static str {
        self.nets.name()
    }

    /// Couplings of network `k` as row-major f64 `[N, N]`.
    pub fn j_host(&self, k: usize) -> Result<Vec<f64>> {
        Ok(self.nets.coupling(k)?.into_iter().map(f64::from).collect())
    }

    /// Couplings of every network as row-major f64 `[N, N]` each (one read-back).
    pub fn j_host_all(&self) -> Result<Vec<Vec<f64>>> {
        let nn = self.n * self.n;
        Ok(self
            .nets
            .couplings()?
            .chunks(nn)
            .map(|c| c.iter().map(|&x| f64::from(x)).collect())
            .collect())
    }

    /// The networks as a Burn module on the trainer's device (with the host engine, built from
    /// its couplings and states: one upload).
    pub fn networks(&self) -> FepNetworks {
        self.nets.module()
    }

    /// State of network `k`.
    pub fn state_host(&self, k: usize) -> Result<Vec<f64>> {
        Ok(self.nets.state(k)?.into_iter().map(f64::from).collect())
    }

    /// One epoch: pick a pattern per network, present it as bias for `steps_per_epoch` steps.
    /// Returns (‖ΔJ‖² summed over the epoch, VFE proxy at its last step), means over networks.
    fn epoch(&mut self, epoch: u64) -> Result<EpochOut> {
        let (g, p) = (self.g, self.n_patterns());
        for k in 0..g {
            self.last_pattern[k] = if self.cfg.order == Order::Sequential {
                (epoch as usize) % p
            } else {
                self.rng.index(p)
            };
        }
        // Each network draws its uniforms from its own stream, seeded once per epoch: the same
        // numbers whichever engine runs it and however the networks are shared out.
        let base = self.rng.next_u64();
        let cx = EpochInput {
            cfg: &self.cfg,
            patterns: &self.patterns,
            last_pattern: &self.last_pattern,
            evidences: &self.evidences,
            betas: &self.betas,
            base,
        };
        self.nets.epoch(&cx)
    }
}

impl Trainable for FepTrainer {
    fn kind(&self) -> &'static str {
        "fep"
    }

    fn export(&self, dir: &std::path::Path) -> Result<()> {
        crate::models::export::export(&self.networks(), dir)
    }

    /// The couplings of network 0 (the heat map `couplings.png` shows at the end).
    fn picture(&self) -> Result<Option<crate::train::Picture>> {
        Ok(Some(crate::train::Picture::Matrix {
            tag: "couplings".into(),
            title: "couplings J of network 0 (row i <- column j)".into(),
            values: self.j_host(0)?,
            rows: self.n,
            cols: self.n,
        }))
    }

    fn step(&mut self, step: u64) -> Result<StepOutput> {
        let pattern = |t: &Self| ("pattern".to_string(), t.last_pattern[0] as f64);
        Ok(match self.epoch(step)? {
            EpochOut::Host(dj, vfe) => {
                StepOutput::host(dj, vec![("vfe".into(), vfe), pattern(self)])
            }
            EpochOut::Device(v) => {
                let mut out = StepOutput::device(v, &["loss", "vfe"]);
                out.host.push(pattern(self));
                out
            }
        })
    }

    fn checkpoint(&self, step: u64) -> Result<Checkpoint> {
        let (g, n) = (self.g, self.n);
        Ok(Checkpoint {
            kind: "fep".into(),
            step,
            arrays: vec![
                NamedArray {
                    name: "J".into(),
                    shape: vec![g, n, n],
                    data: self.nets.couplings()?,
                },
                NamedArray {
                    name: "state".into(),
                    shape: vec![g, n],
                    data: self.nets.states()?,
                },
                NamedArray {
                    name: "patterns".into(),
                    shape: vec![self.n_patterns(), n],
                    data: self.patterns.iter().map(|&x| x as f32).collect(),
                },
            ],
            extra: serde_json::json!({
                "rng": self.rng.to_json(),
                "last_pattern": self.last_pattern,
                "betas": self.betas,
                "evidences": self.evidences,
            }),
        })
    }

    fn restore(&mut self, ck: &Checkpoint) -> Result<()> {
        let (g, n) = (self.g, self.n);
        let j = ck.array_shaped("J", &[g, n, n])?;
        let s = ck.array_shaped("state", &[g, n])?;
        if j.data.iter().chain(&s.data).any(|x| !x.is_finite()) {
            bail!("checkpoint contains NaN or infinite couplings");
        }
        self.nets.load(&j.data, &s.data);
        self.rng = Rng::from_json(ck.extra.get("rng").context("checkpoint has no RNG state")?)?;
        if let Some(v) = ck.extra.get("betas") {
            self.betas = serde_json::from_value(v.clone())?;
        }
        if let Some(v) = ck.extra.get("evidences") {
            self.evidences = serde_json::from_value(v.clone())?;
        }
        if let Some(lp) = ck.extra.get("last_pattern") {
            self.last_pattern = serde_json::from_value(lp.clone())?;
        }
        Ok(())
    }
}

/// Exported as `model.bpk` + `model.json` (see [`crate::models::export`]).
impl crate::models::export::TrainedModel for FepNetworks {
    type Config = FepNetworksConfig;
    const KIND: &'static str = "fep";
    fn model_config(&self) -> FepNetworksConfig {
        FepNetworksConfig::new(self.networks(), self.neurons())
    }
    fn from_config(cfg: &FepNetworksConfig, device: &Device) -> Result<Self> {
        Ok(cfg.init(device))
    }
    fn from_checkpoint(ck: &Checkpoint, _: &serde_json::Value, device: &Device) -> Result<Self> {
        let j = ck.array("J")?;
        let [g, n, _] = j.shape[..] else {
            bail!("checkpoint tensor `J` is not [G, N, N]");
        };
        let j = ck.array_shaped("J", &[g, n, n])?;
        let s = ck.array_shaped("state", &[g, n])?;
        Ok(FepNetworks::from_tensors(
            crate::transfer::tensor2_f32(j.data.clone(), g * n, n, device).reshape([g, n, n]),
            crate::transfer::tensor2_f32(s.data.clone(), g, n, device),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{DeviceChoice, select};

    /// Deferring the rank-1 updates (J + U Vᵀ − diag d) computes the same couplings as adding
    /// each update at once, up to f32 rounding — across folds inside an epoch (20 steps > 16
    /// pending) and at epoch ends, for the code, paper and Hebbian rules.
    /// The typed choices keep the spellings `config.json` has always had: a config written by
    /// the release before them loads, and an unknown value names the valid ones.
    #[test]
    fn choices_keep_their_config_json_spellings() {
        let old = serde_json::json!({
            "patterns": "digits", "input": "none", "init_from": null, "subset": [],
            "zscore": true, "evidence": 11.0, "beta": 0.1668, "lr": 0.001, "epochs": 5000,
            "steps_per_epoch": 10, "order": "sequential", "rule": "hebbian",
            "schedule": "sequential", "precision_weighting": false, "reset_state": false,
            "networks": 1, "engine": "host", "checkpoint_every": 500, "log_every": 50,
            "keep_checkpoints": 3, "seed": 0
        });
        // Read as run directories are (`RunDir::config_or`): keys added since (`tensorboard`)
        // come from the defaults.
        let load = |file: &serde_json::Value| {
            let mut base = serde_json::to_value(FepConfig::new()).unwrap();
            for (k, v) in file.as_object().unwrap() {
                base[k] = v.clone();
            }
            serde_json::from_value::<FepConfig>(base)
        };
        let cfg: FepConfig = load(&old).unwrap();
        assert_eq!(cfg.patterns, PatternSource::Builtin(PatternSet::Digits));
        let mut file = old.clone();
        file["patterns"] = "runs/p.npy".into();
        let from_file: FepConfig = load(&file).unwrap();
        assert_eq!(from_file.patterns, PatternSource::Path("runs/p.npy".into()));
        assert_eq!(
            (cfg.input, cfg.order, cfg.rule, cfg.schedule, cfg.engine),
            (
                Input::None,
                Order::Sequential,
                Rule::Hebbian,
                UpdateOrder::Sequential,
                Engine::Host
            )
        );
        let back = serde_json::to_value(&cfg).unwrap();
        for k in ["input", "order", "rule", "schedule", "engine"] {
            assert_eq!(back[k], old[k], "{k}");
        }
        let mut bad = old;
        bad["order"] = "shuffled".into();
        let err = load(&bad).unwrap_err().to_string();
        assert!(
            err.contains("shuffled") && err.contains("random") && err.contains("sequential"),
            "{err}"
        );
    }

    #[test]
    fn deferred_updates_equal_immediate_updates() {
        let dev = select(DeviceChoice::Flex).expect("flex").device;
        let (p, n) = (3, 12);
        let mut r = Rng::new(5);
        let pats: Vec<f64> = (0..p * n).map(|_| r.normal()).collect();
        for rule in [Rule::Code, Rule::Paper, Rule::Hebbian] {
            let cfg = FepConfig::new()
                .with_networks(3)
                .with_steps_per_epoch(20)
                .with_lr(0.01)
                .with_beta(0.5)
                .with_rule(rule)
                .with_engine(Engine::Tensor);
            let mut a = FepTrainer::new(&cfg, pats.clone(), n, &dev).unwrap();
            let mut b = FepTrainer::new(&cfg, pats.clone(), n, &dev).unwrap();
            b.nets.set_max_pending(1);
            for e in 0..6 {
                a.step(e).unwrap();
                b.step(e).unwrap();
            }
            for k in 0..3 {
                let (ja, jb) = (a.j_host(k).unwrap(), b.j_host(k).unwrap());
                let scale = jb.iter().map(|x| x.abs()).fold(0.0, f64::max);
                assert!(scale > 1e-3, "{rule}: couplings did not grow");
                for i in 0..n {
                    assert_eq!(ja[i * n + i], 0.0, "{rule}: non-zero diagonal");
                }
                let err = ja
                    .iter()
                    .zip(&jb)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f64::max);
                assert!(
                    err < 1e-4 * scale,
                    "{rule}: network {k}: max |ΔJ| {err} vs scale {scale}"
                );
            }
        }
    }

    /// The host engine computes what the tensor engine computes: same uniforms, same update;
    /// couplings, states and metrics agree up to f32 rounding (amplified a little by the
    /// stochastic dynamics: 1e-3 of the couplings' scale) for every rule and option, across
    /// epochs (pattern changes), with per-network precision and evidence. Fails if either
    /// engine changes a formula, a branch or the order of the random numbers.
    #[test]
    fn host_engine_matches_tensor_engine() {
        let dev = select(DeviceChoice::Flex).expect("flex").device;
        let (p, n, g) = (4, 24, 5);
        let mut r = Rng::new(8);
        let pats: Vec<f64> = (0..p * n).map(|_| r.normal()).collect();
        let cases = [
            (Rule::Code, false, UpdateOrder::Synchronous, false),
            (Rule::Paper, false, UpdateOrder::Synchronous, true),
            (Rule::Hebbian, false, UpdateOrder::Synchronous, false),
            (Rule::Code, true, UpdateOrder::Synchronous, false),
            (Rule::Code, false, UpdateOrder::Sequential, false),
        ];
        for (rule, pw, schedule, reset) in cases {
            let mk = |engine: Engine| {
                let cfg = FepConfig::new()
                    .with_networks(g)
                    .with_steps_per_epoch(20)
                    .with_lr(0.01)
                    .with_rule(rule)
                    .with_precision_weighting(pw)
                    .with_schedule(schedule)
                    .with_reset_state(reset)
                    .with_engine(engine);
                let mut t = FepTrainer::new(&cfg, pats.clone(), n, &dev).unwrap();
                // Precision weighting divides by L'(βh) ≈ 1 − L² − 2L/βh, which cancels in f32 for
                // large βh and amplifies rounding: keep βh moderate there.
                let slope = if pw { 0.05 } else { 0.3 };
                for k in 0..g {
                    t.betas[k] = 0.2 + slope * k as f64;
                    t.evidences[k] = 1.0 + k as f64;
                }
                t
            };
            let (mut a, mut b) = (mk(Engine::Tensor), mk(Engine::Host));
            assert_eq!((a.engine(), b.engine()), ("tensor", "host"));
            let what = format!("{rule} pw={pw} {schedule} reset={reset}");
            for e in 0..5 {
                let (oa, ob) = (a.step(e).unwrap(), b.step(e).unwrap());
                let (oa, ob) = (oa.read().unwrap(), ob.read().unwrap());
                let get = |o: &[(String, f64)], k: &str| {
                    o.iter().find(|(n, _)| n == k).map_or(f64::NAN, |(_, v)| *v)
                };
                let (la, lb) = (get(&oa, "loss"), get(&ob, "loss"));
                let (va, vb) = (get(&oa, "vfe"), get(&ob, "vfe"));
                assert_eq!(a.last_pattern, b.last_pattern, "{what}");
                let rel = |x: f64, y: f64| (x - y).abs() / x.abs().max(y.abs()).max(1e-12);
                assert!(rel(la, lb) < 1e-3, "{what}: ‖ΔJ‖² {la} vs {lb}");
                assert!(
                    (va - vb).abs() < 1e-3 * (1.0 + va.abs()),
                    "{what}: vfe {va} vs {vb}"
                );
            }
            for k in 0..g {
                let (ja, jb) = (a.j_host(k).unwrap(), b.j_host(k).unwrap());
                let scale = ja.iter().map(|x| x.abs()).fold(0.0, f64::max);
                assert!(scale > 1e-3, "{what}: couplings did not grow");
                let err = ja
                    .iter()
                    .zip(&jb)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f64::max);
                assert!(err < 1e-3 * scale, "{what}: net {k}: |ΔJ| {err} vs {scale}");
                let (sa, sb) = (a.state_host(k).unwrap(), b.state_host(k).unwrap());
                let serr = sa
                    .iter()
                    .zip(&sb)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f64::max);
                assert!(serr < 1e-3, "{what}: net {k}: state differs by {serr}");
            }
        }
    }
}
