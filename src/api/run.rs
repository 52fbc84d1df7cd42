//! A run directory as a value: which family, its configuration, its metrics, how far it
//! trained, its Burn module, and going on with it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::Ctx;
use super::family::{self, Family, ResumeOptions, Resumed, Visit};
use crate::models::export::TrainedModel;
use crate::run::{RunDir, RunState};

/// The model families.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Continuous-time RNNs trained by drift–diffusion matching.
    Ddm,
    /// Neural Langevin machines.
    Nlm,
    /// Self-orthogonalising attractor networks.
    Fep,
}

impl Kind {
    /// The name in run directories (`config.json`'s `meta.model`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Ddm => family::DdmFamily::KIND,
            Self::Nlm => family::NlmFamily::KIND,
            Self::Fep => family::FepFamily::KIND,
        }
    }
}

impl std::str::FromStr for Kind {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        [Self::Ddm, Self::Nlm, Self::Fep]
            .into_iter()
            .find(|k| k.name() == s)
            .with_context(|| format!("unknown model family `{s}` (known: ddm, nlm, fep)"))
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One line of `metrics.jsonl`: the step and the named values logged there.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricsLine {
    /// The training step the line was logged at.
    pub step: u64,
    /// Every other numeric key of the line (`loss`, `lr`, `wall_s`, the family's metrics).
    pub values: BTreeMap<String, f64>,
}

/// A training run on disk. Opening one reads it without locking it (a run being trained can be
/// looked at); [`Run::resume`] takes the lock.
#[derive(Clone, Debug)]
pub struct Run {
    path: PathBuf,
    kind: Kind,
}

impl Run {
    /// Opens the run directory `dir` (it must hold a `config.json` naming a model family).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let path = dir.as_ref().to_path_buf();
        crate::run::check_run_dir(&path)?;
        let summary = crate::run::summarize(&path)?;
        Ok(Self {
            kind: summary.family.parse()?,
            path,
        })
    }
    /// The run directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Its model family.
    pub fn kind(&self) -> Kind {
        self.kind
    }
    /// Where it stands: steps done, newest checkpoint, total, last loss, state.
    pub fn status(&self) -> Result<crate::run::RunSummary> {
        crate::run::summarize(&self.path)
    }
    /// The step of the newest checkpoint (what [`Run::resume`] continues from; 0 when none).
    pub fn step(&self) -> Result<u64> {
        Ok(crate::checkpoint::list(&self.path)?
            .first()
            .map_or(0, |c| c.0))
    }
    /// Whether its newest checkpoint is at the configured total.
    pub fn finished(&self) -> Result<bool> {
        Ok(self.status()?.state == RunState::Finished)
    }
    /// The whole `config` object of `config.json`, as written.
    pub fn config_json(&self) -> Result<serde_json::Value> {
        let p = self.path.join("config.json");
        let s =
            std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
        let v: serde_json::Value = serde_json::from_str(&s)
            .with_context(|| format!("{} is not valid JSON", p.display()))?;
        Ok(v["config"].clone())
    }
    /// The run's configuration as family `F`'s typed configuration (keys added since the run
    /// was written take the values runs of that time used).
    pub fn config<F: Family>(&self) -> Result<F::Config> {
        self.expect(F::KIND)?;
        crate::run::read_config(&self.path, &F::legacy_defaults())
    }
    /// Every line of `metrics.jsonl` (none when the run has not logged yet).
    pub fn metrics(&self) -> Result<Vec<MetricsLine>> {
        let p = self.path.join("metrics.jsonl");
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", p.display())),
        };
        // A line cut short by a kill is skipped, as the driver itself does on resume.
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| {
                let m = v.as_object()?;
                Some(MetricsLine {
                    step: m.get("step")?.as_u64()?,
                    values: m
                        .iter()
                        .filter(|(k, _)| *k != "step")
                        .filter_map(|(k, x)| Some((k.clone(), x.as_f64()?)))
                        .collect(),
                })
            })
            .collect())
    }
    /// The trained network as its Burn module (`model.bpk`, or the newest checkpoint for runs
    /// without one): `run.load_model::<attractor::models::nlm::Nlm>(&device)`.
    pub fn load_model<M: TrainedModel>(&self, device: &Device) -> Result<M> {
        crate::models::export::load_model(&self.path, device)
    }
    /// Trains on from the newest checkpoint (see [`ResumeOptions`]), through the one driver.
    pub fn resume(&self, o: ResumeOptions, ctx: &Ctx) -> Result<Resumed> {
        let rd = RunDir::open(&self.path)?;
        struct Go<'a>(&'a RunDir, ResumeOptions, &'a Ctx);
        impl Visit for Go<'_> {
            type Out = Result<Resumed>;
            fn visit<F: Family>(self) -> Result<Resumed> {
                family::resume::<F>(self.0, self.1, self.2)
            }
        }
        family::dispatch(self.kind.name(), Go(&rd, o, ctx))?
    }
    /// Writes the newest checkpoint's tensors to `out` (see [`family::ExportFormat`]); returns
    /// what it wrote.
    pub fn export(&self, format: family::ExportFormat, out: &Path) -> Result<String> {
        let rd = RunDir::open(&self.path)?;
        struct Go<'a>(&'a RunDir, family::ExportFormat, &'a Path);
        impl Visit for Go<'_> {
            type Out = Result<String>;
            fn visit<F: Family>(self) -> Result<String> {
                family::export::<F>(self.0, self.1, self.2)
            }
        }
        family::dispatch(self.kind.name(), Go(&rd, format, out))?
    }

    /// The newest checkpoint's named tensors (what [`Run::export`] writes as `.npy` files:
    /// `J`, `b`, `W`, `U` …), read on the CPU.
    pub fn tensors(&self) -> Result<family::NamedTensors> {
        let rd = RunDir::open(&self.path)?;
        struct Go<'a>(&'a RunDir, &'a Device);
        impl Visit for Go<'_> {
            type Out = Result<family::NamedTensors>;
            fn visit<F: Family>(self) -> Result<family::NamedTensors> {
                F::tensors(self.0, self.1)
            }
        }
        let dev = Ctx::cpu()?.device;
        family::dispatch(self.kind.name(), Go(&rd, &dev))?
    }

    fn expect(&self, kind: &str) -> Result<()> {
        if self.kind.name() != kind {
            bail!(
                "{} holds a `{}` run, not a `{kind}` one",
                self.path.display(),
                self.kind
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{RunPlace, train};
    use crate::models::fep::{FepConfig, FepNetworks};

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("attractor-api-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn small() -> FepConfig {
        FepConfig::new()
            .with_epochs(60)
            .with_log_every(20)
            .with_checkpoint_every(20)
            .with_seed(5)
    }

    #[test]
    fn train_open_and_resume_without_the_cli() -> Result<()> {
        let dir = tmp("fep");
        let ctx = Ctx::cpu()?;
        // A stop raised before the start: the driver saves step 1 and reports the interruption.
        let stopped = ctx
            .clone()
            .with_control(crate::progress::Control::default());
        stopped.control.stop.request();
        let r = train(small(), &RunPlace::at(&dir), &stopped)?;
        assert!(r.interrupted && r.step == 1 && r.total == 60, "{r:?}");

        let run = Run::open(&dir)?;
        assert_eq!(run.kind(), Kind::Fep);
        assert_eq!(run.step()?, 1);
        assert!(!run.finished()?);
        assert_eq!(run.config::<family::FepFamily>()?.epochs, 60);
        assert!(
            run.config::<family::NlmFamily>().is_err(),
            "a FEP run is not an NLM one"
        );
        match run.resume(ResumeOptions::default(), &ctx)? {
            Resumed::Trained(r) => assert!(!r.interrupted && r.start == 1 && r.step == 60),
            other => panic!("{other:?}"),
        }
        assert!(run.finished()?);
        let steps: Vec<u64> = run.metrics()?.iter().map(|m| m.step).collect();
        assert_eq!(steps, [20, 40, 60]);
        assert!(run.metrics()?[2].values.contains_key("loss"));
        assert!(matches!(
            run.resume(ResumeOptions::default(), &ctx)?,
            Resumed::AlreadyComplete {
                step: 60,
                total: 60
            }
        ));
        // Longer, through `total`: config.json is rewritten.
        let o = ResumeOptions {
            until: None,
            total: Some(80),
        };
        assert!(matches!(run.resume(o, &ctx)?, Resumed::Trained(r) if r.step == 80));
        assert_eq!(run.config::<family::FepFamily>()?.epochs, 80);
        let net: FepNetworks = run.load_model(&ctx.device)?;
        assert!(burn::module::Module::num_params(&net) > 0);
        let t = run.tensors()?;
        let names: Vec<&str> = t.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(names, ["J", "state", "patterns"]);
        let j = crate::checkpoint::load_latest(&dir)?.context("checkpoint")?;
        assert_eq!(t[0].2, j.array("J")?.data);
        assert_eq!(t[0].1, j.array("J")?.shape);

        // The same seed without the interruption gives the same couplings.
        let dir2 = tmp("fep-straight");
        train(small().with_epochs(80), &RunPlace::at(&dir2), &ctx)?;
        let a = crate::checkpoint::load_latest(&dir)?.context("checkpoint")?;
        let b = crate::checkpoint::load_latest(&dir2)?.context("checkpoint")?;
        assert_eq!(a.array("J")?.data, b.array("J")?.data);
        for d in [dir, dir2] {
            let _ = std::fs::remove_dir_all(d);
        }
        Ok(())
    }

    #[test]
    fn open_refuses_what_is_not_a_run() {
        let dir = tmp("none");
        let e = Run::open(&dir).unwrap_err().to_string();
        assert!(e.contains("does not exist"), "{e}");
    }
}
