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
