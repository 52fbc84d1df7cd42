//! Target systems: a built-in or a user TOML file, bound to parameters and a device.

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::builtin::{Builtin, Kind};
use super::user::UserTarget;
use super::{Diffusion, Sde};
use crate::rng::Rng;
use crate::transfer::tensor2;

/// The `sde` of a configuration: a built-in (`attractor sde list`) or a TOML file.
pub type SdeSource = crate::config::Source<Kind>;

/// How a target is named in a configuration: everything needed to rebuild it, including the
/// text of a user file (so a run directory is self-contained).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TargetSpec {
    /// Built-in name or the path of a `.toml` file.
    pub sde: SdeSource,
    /// Parameter overrides `name=value`.
    pub params: Vec<String>,
    /// Contents of the user file, embedded when the run was created.
    pub toml: Option<String>,
}

impl TargetSpec {
    /// A spec for `sde` with overrides; reads and embeds a user file.
    pub fn new(sde: &SdeSource, params: &[String]) -> Result<Self> {
        let toml = match sde {
            SdeSource::Path(p) => Some(
                std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read SDE file {}", p.display()))?,
            ),
            SdeSource::Builtin(_) => None,
        };
        let s = Self {
            sde: sde.clone(),
            params: params.to_vec(),
            toml,
        };
        s.overrides()?;
        Ok(s)
    }

    /// Parsed overrides.
    pub fn overrides(&self) -> Result<Vec<(String, f64)>> {
        self.params
            .iter()
            .map(|kv| {
                let (k, v) = kv
                    .split_once('=')
                    .with_context(|| format!("--param `{kv}`: expected name=value"))?;
                let v: f64 = v
                    .trim()
                    .parse()
                    .with_context(|| format!("--param `{kv}`: `{v}` is not a number"))?;
                if !v.is_finite() {
                    bail!("--param `{kv}`: value must be finite");
                }
                Ok((k.trim().to_string(), v))
            })
            .collect()
    }
}

/// A target SDE ready to evaluate.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // one per run (the built-in holds its device constants)
pub enum Target {
    /// One of the built-ins.
    Builtin(Builtin),
    /// A user-defined system.
    User(UserTarget),
    /// A system written in Rust by a library user ([`Target::custom`]).
    Custom(Custom),
}

/// A target SDE implemented in Rust (the library's way to train on a system that neither a
/// built-in nor a TOML file describes). Not stored in `config.json`: a run trained on one is
/// analysed by the program that defined it.
#[derive(Clone)]
pub struct Custom {
    /// Display name.
    pub name: String,
    /// The system.
    pub sde: std::sync::Arc<dyn Sde + Send + Sync>,
    /// Simulation time step.
    pub dt: f64,
    /// Constant diffusion `[dim, m]` row-major, when the system's noise is additive.
    pub g: Option<Vec<f64>>,
    /// Sampling box of the training points (default: from the stationary samples).
    pub bbox: Option<Vec<(f64, f64)>>,
}

impl std::fmt::Debug for Custom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Custom")
            .field("name", &self.name)
            .field("dim", &self.sde.dim())
            .field("dt", &self.dt)
            .finish()
    }
}

impl Target {
    /// A target written in Rust: `sde` simulated with time step `dt`. Additive noise
    /// ([`Diffusion::Additive`] or [`Diffusion::Isotropic`] at the origin) is read once here
    /// as the constant diffusion the matching uses; state-dependent noise is matched point by
    /// point.
    pub fn custom(
        name: &str,
        sde: std::sync::Arc<dyn Sde + Send + Sync>,
        dt: f64,
        device: &Device,
    ) -> Result<Self> {
        if !(dt.is_finite() && dt > 0.0) {
            bail!("time step of `{name}` must be finite and > 0 (got {dt})");
        }
        let (d, m) = (sde.dim(), sde.noise_dim());
        let g = match sde.diffusion(&Tensor::zeros([1, d], device)) {
            Diffusion::Additive(g) => Some(
                crate::transfer::to_vec_f32(&g)?
                    .into_iter()
                    .map(f64::from)
                    .collect(),
            ),
            Diffusion::Isotropic(s) if m == d => Some(
                (0..d * d)
                    .map(|k| if k % (d + 1) == 0 { s } else { 0.0 })
                    .collect(),
            ),
            _ => None,
        };
        Ok(Self::Custom(Custom {
            name: name.to_string(),
            sde,
            dt,
            g,
            bbox: None,
        }))
    }

    /// Builds the target of `spec` on `device`.
    pub fn from_spec(spec: &TargetSpec, device: &Device) -> Result<Self> {
        let ov = spec.overrides()?;
        match (&spec.sde, &spec.toml) {
            (SdeSource::Path(p), Some(text)) => {
                Ok(Self::User(UserTarget::from_text(text, p, &ov, device)?))
            }
            (SdeSource::Path(p), None) => bail!(
                "SDE file {} was not embedded in the configuration",
                p.display()
            ),
            (SdeSource::Builtin(kind), _) => {
                Ok(Self::Builtin(Builtin::new(&kind.to_string(), &ov, device)?))
            }
        }
    }

    /// Display name.
    pub fn name(&self) -> String {
        match self {
            Self::Builtin(b) => format!("{:?}", b.kind),
            Self::User(u) => u.sde.name.clone(),
            Self::Custom(c) => c.name.clone(),
        }
    }

    /// Built-in kind, if any.
    pub fn builtin_kind(&self) -> Option<Kind> {
        match self {
            Self::Builtin(b) => Some(b.kind),
            Self::User(_) | Self::Custom(_) => None,
        }
    }

    /// Constant diffusion `g` as row-major `[dim, m]`, when the diffusion is constant.
    pub fn g_const(&self) -> Option<Vec<f64>> {
        match self {
            Self::Builtin(b) => Some(b.g.clone()),
            Self::User(u) => u.g_const(),
            Self::Custom(c) => c.g.clone(),
        }
    }

    /// Suggested time step.
    pub fn default_dt(&self) -> f64 {
        match self {
            Self::Builtin(b) => b.default_dt(),
            Self::User(u) => u.sde.dt.unwrap_or(1e-2),
            Self::Custom(c) => c.dt,
        }
    }

    /// A user-declared sampling box.
    pub fn declared_box(&self) -> Option<Vec<(f64, f64)>> {
        match self {
            Self::Builtin(_) => None,
            Self::User(u) => u.sde.bbox.clone(),
            Self::Custom(c) => c.bbox.clone(),
        }
    }

    /// Well centres of multi-well systems.
    pub fn memories(&self) -> Vec<Vec<f64>> {
        match self {
            Self::Builtin(b) => b.memories.clone(),
            Self::User(_) | Self::Custom(_) => Vec::new(),
        }
    }

    /// A parameter of a built-in (NaN otherwise).
    pub fn param(&self, name: &str) -> f64 {
        match self {
            Self::Builtin(b) => b.param(name),
            Self::User(u) => u
                .sde
                .params
                .iter()
                .find(|(k, _)| k == name)
                .map(|x| x.1)
                .unwrap_or(f64::NAN),
            Self::Custom(_) => f64::NAN,
        }
    }

    /// The input values seen in training: 0 and each unit pulse.
    pub fn input_values(&self) -> Vec<Vec<f64>> {
        let p = self.inputs();
        let mut v = vec![vec![0.0; p]];
        for i in 0..p {
            let mut e = vec![0.0; p];
            e[i] = 1.0;
            v.push(e);
        }
        v
    }

    /// `n` initial states (row-major `[n, dim]`) for long stationary runs.
    pub fn initial_states(&self, rng: &mut Rng, n: usize) -> Vec<f64> {
        let d = self.dim();
        let mem = self.memories();
        let mut out = Vec::with_capacity(n * d);
        for i in 0..n {
            if !mem.is_empty() {
                let m = &mem[i % mem.len()];
                for mj in m.iter().take(d) {
                    out.push(mj + 0.1 * rng.normal());
                }
            } else {
                for _ in 0..d {
                    out.push(0.5 * rng.normal());
                }
            }
        }
        out
    }

    /// Exact entropy production rate where it is known in closed form.
    pub fn epr_theory(&self) -> Option<f64> {
        match self.builtin_kind()? {
            Kind::OuRot => Some(2.0 * self.param("theta").powi(2) / self.param("a")),
            Kind::DoubleWell => Some(0.0),
            _ => None,
        }
    }

    /// The constant diffusion as a device tensor.
    pub fn g_tensor(&self, device: &Device) -> Option<Tensor<2>> {
        self.g_const()
            .map(|g| tensor2(&g, self.dim(), self.noise_dim(), device))
    }
}

impl Sde for Target {
    fn dim(&self) -> usize {
        match self {
            Self::Builtin(b) => b.dim,
            Self::User(u) => u.sde.dim,
            Self::Custom(c) => c.sde.dim(),
        }
    }
    fn noise_dim(&self) -> usize {
        match self {
            Self::Builtin(b) => b.dim,
            Self::User(u) => u.sde.noise_dim,
            Self::Custom(c) => c.sde.noise_dim(),
        }
    }
    fn inputs(&self) -> usize {
        match self {
            Self::Builtin(b) => b.inputs,
            Self::User(u) => u.sde.inputs,
            Self::Custom(c) => c.sde.inputs(),
        }
    }
    fn drift(&self, x: Tensor<2>, u: Option<Tensor<2>>) -> Tensor<2> {
        match self {
            Self::Builtin(b) => b.drift(x, u),
            Self::User(t) => t.drift(x, u),
            Self::Custom(c) => c.sde.drift(x, u),
        }
    }
    fn diffusion(&self, x: &Tensor<2>) -> Diffusion {
        match self {
            Self::Builtin(b) => Diffusion::Additive(b.g_tensor()),
            Self::User(t) => t.diffusion(x),
            Self::Custom(c) => c.sde.diffusion(x),
        }
    }
}
