//! Trained models as Burn modules outside the project: each family's network is written beside
//! its checkpoints as Burn's own record (`model.bpk`, burnpack, parameters named by module
//! path: `u`, `read`, … for the CT-RNN, `j`, `b` for the NLM, `j`, `state` for FEP networks)
//! with the module's configuration (`model.json`, a Burn [`Config`]), and read back by
//! [`load_model`].
//!
//! The project's checksummed checkpoint stays the resume format (it also holds optimiser
//! moments, random streams and pools); `model.bpk` is what another Burn program reads:
//!
//! ```no_run
//! use attractor::models::nlm::Nlm;
//! use burn::module::Module;
//!
//! # fn main() -> anyhow::Result<()> {
//! let device = attractor::device::select(attractor::device::DeviceChoice::Flex)?.device;
//! let nlm: Nlm = attractor::load_model("checkpoints/nlm-digits".as_ref(), &device)?;
//! println!("{} parameters", nlm.num_params());
//! # Ok(()) }
//! ```
//!
//! Both files are written after every checkpoint (atomically, each), so they hold the model of
//! the newest checkpoint. A run written before this export existed has no `model.bpk`: then
//! [`load_model`] reads the newest checkpoint instead.

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::config::Config;
use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Device;

use crate::atomic::atomic_write;
use crate::checkpoint::{self, Checkpoint};
use crate::models::ddm::ctrnn::{CtRnn, CtRnnConfig};
use crate::models::fep::{FepNetworks, FepNetworksConfig};
use crate::models::nlm::{Nlm, NlmModelConfig, load_nlm};

/// File of the module's record in a run directory.
pub const RECORD_FILE: &str = "model.bpk";
/// File of the module's configuration in a run directory.
pub const CONFIG_FILE: &str = "model.json";

/// A family's network as a Burn module that a run directory exports.
pub trait TrainedModel: Module + Sized {
    /// The Burn configuration that builds an empty module of the right shape.
    type Config: Config;
    /// The family's name in checkpoints (`ddm`, `nlm`, `fep`).
    const KIND: &'static str;
    /// The configuration of this module (shape and constants).
    fn model_config(&self) -> Self::Config;
    /// A module of the configured shape, to load a record into.
    fn from_config(cfg: &Self::Config, device: &Device) -> Result<Self>;
    /// The module from a checkpoint of its family and the run's configuration (the `config`
    /// object of `config.json`; `null` when absent), for runs without `model.bpk`.
    fn from_checkpoint(
        ck: &Checkpoint,
        run_config: &serde_json::Value,
        device: &Device,
    ) -> Result<Self>;
}

impl TrainedModel for CtRnn {
    type Config = CtRnnConfig;
    const KIND: &'static str = "ddm";
    fn model_config(&self) -> CtRnnConfig {
        let s = &self.shape;
        CtRnnConfig::new(s.n, s.d, s.m)
            .with_inputs(s.p)
            .with_tau(s.tau)
            .with_connectivity(s.conn)
    }
    fn from_config(cfg: &CtRnnConfig, device: &Device) -> Result<Self> {
        cfg.init(device)
    }
    fn from_checkpoint(
        ck: &Checkpoint,
        run_config: &serde_json::Value,
        device: &Device,
    ) -> Result<Self> {
        // The shape is in the tensors: U [N, d], A [d, m], M [d, p], and `read`'s shape tells
        // the connectivity; τ comes from the run's configuration.
        let dims = |name: &str| -> Result<Vec<usize>> { Ok(ck.array(name)?.shape.clone()) };
        let (u, a, m) = (dims("U")?, dims("A")?, dims("M")?);
        let (n, d) = (u[0], u[1]);
        let conn = match dims("read")?.as_slice() {
            [r, c] if *r == n && *c == n && n != d => {
                crate::models::ddm::ctrnn::Connectivity::FullRank
            }
            [r, _] if *r == d && d != n => crate::models::ddm::ctrnn::Connectivity::Symmetric,
            _ => crate::models::ddm::ctrnn::Connectivity::LowRank,
        };
        let mut net = CtRnnConfig::new(n, d, a[1])
            .with_inputs(m[1])
            .with_connectivity(conn)
            .with_tau(run_config["tau"].as_f64().unwrap_or(1.0))
            .init(device)?;
        net.load_from(ck)?;
        Ok(net)
    }
}

impl TrainedModel for Nlm {
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

impl TrainedModel for FepNetworks {
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

/// Writes `model` to `dir` as [`RECORD_FILE`] and [`CONFIG_FILE`] (each atomically).
pub fn export<M: TrainedModel>(model: &M, dir: &Path) -> Result<()> {
    let json = serde_json::to_vec_pretty(&model.model_config())
        .context("cannot serialise the model configuration")?;
    let bytes = crate::transfer::record_bytes(model.clone())?;
    atomic_write(&dir.join(RECORD_FILE), &bytes)?;
    atomic_write(&dir.join(CONFIG_FILE), &json)?;
    Ok(())
}

/// The trained network of the run directory `dir` as a Burn module on `device`: built from
/// `model.json` and loaded from `model.bpk` (Burn's record), or — for a run written before the
/// export existed — from the newest checkpoint. Fails with the run's family when it is not
/// `M`'s.
pub fn load_model<M: TrainedModel>(dir: &Path, device: &Device) -> Result<M> {
    let record = dir.join(RECORD_FILE);
    let config = dir.join(CONFIG_FILE);
    let run_json = run_json(dir);
    if let Some(kind) = run_json["meta"]["model"].as_str()
        && kind != M::KIND
    {
        bail!(
            "{} holds a `{kind}` run, not a `{}` one",
            dir.display(),
            M::KIND
        );
    }
    if record.is_file() && config.is_file() {
        let text = std::fs::read_to_string(&config)
            .with_context(|| format!("cannot read {}", config.display()))?;
        let cfg: M::Config = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a `{}` model configuration",
                config.display(),
                M::KIND
            )
        })?;
        let module = M::from_config(&cfg, device)?;
        let rec = ModuleRecord::load(&record)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e:?}", record.display()))?;
        return module.try_load_record(rec).map_err(|e| {
            anyhow::anyhow!("{} does not fit its model.json: {e:?}", record.display())
        });
    }
    let ck = checkpoint::load_latest(dir)?.with_context(|| {
        format!(
            "{} has neither {RECORD_FILE} nor a checkpoint (is it a run directory?)",
            dir.display()
        )
    })?;
    if ck.kind != M::KIND {
        bail!(
            "{} holds a `{}` run, not a `{}` one",
            dir.display(),
            ck.kind,
            M::KIND
        );
    }
    M::from_checkpoint(&ck, &run_json["config"], device)
}

/// The run's `config.json` (`{"meta": …, "config": …}`; `null` when absent or unreadable: a
/// model can be loaded from a folder of checkpoints alone).
fn run_json(dir: &Path) -> serde_json::Value {
    std::fs::read_to_string(dir.join("config.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}
