//! Built-in target SDEs of the paper, with named, overridable parameters.

use anyhow::{Result, bail};
use burn::tensor::{Device, Tensor, activation};

use super::col;
use crate::transfer::tensor2;

/// A named parameter with its default.
#[derive(Clone, Debug)]
pub struct ParamSpec {
    /// Name used with `--param name=value`.
    pub name: &'static str,
    /// Default value.
    pub default: f64,
    /// What it means.
    pub doc: &'static str,
}

/// A built-in system.
#[derive(Clone, Debug)]
pub struct BuiltinInfo {
    /// Name used with `--sde`.
    pub name: &'static str,
    /// One line of description.
    pub doc: &'static str,
    /// Its parameters.
    pub params: Vec<ParamSpec>,
}

const fn p(name: &'static str, default: f64, doc: &'static str) -> ParamSpec {
    ParamSpec { name, default, doc }
}

/// Every built-in target with its parameters and defaults.
pub fn catalogue() -> Vec<BuiltinInfo> {
    vec![
        BuiltinInfo {
            name: "ou-rot",
            doc: "2-D Ornstein-Uhlenbeck with rotation: dz = -Bz dt + sqrt(2 eps) dW, B = [[a,-theta],[theta,a]]; EPR = 2 theta^2/a",
            params: vec![
                p("a", 1.0, "relaxation rate"),
                p("theta", 1.0, "rotation rate (nonequilibrium current)"),
                p("eps", 0.5, "noise intensity D = eps I"),
            ],
        },
        BuiltinInfo {
            name: "double-well",
            doc: "double well f = z - z^3 (d=1) or (z1 - z1^3, -z2) (d=2), g = sigma I; equilibrium",
            params: vec![
                p("dim", 1.0, "latent dimension, 1 or 2"),
                p("sigma", 0.7, "noise amplitude"),
            ],
        },
        BuiltinInfo {
            name: "stuart-landau",
            doc: "Hopf normal form f = (mu - |z|^2) z + omega J z, g = sigma I; limit cycle of radius sqrt(mu), period 2 pi/omega",
            params: vec![
                p("mu", 1.0, "bifurcation parameter (radius^2)"),
                p("omega", 2.0, "angular frequency"),
                p("sigma", 0.1, "noise amplitude"),
            ],
        },
        BuiltinInfo {
            name: "lorenz",
            doc: "stochastic Lorenz rescaled into the latent box: z = (y - (0,0,m3))/L, f(z) = f_raw(Lz + m)/L, g = sigma_y/L",
            params: vec![
                p("s", 10.0, "Prandtl number"),
                p("r", 28.0, "Rayleigh number"),
                p("beta", 8.0 / 3.0, "geometric factor"),
                p("sigma_y", 1.0, "noise amplitude in raw units"),
                p("scale", 10.0, "rescaling length L"),
                p("m3", 25.0, "offset of y3"),
            ],
        },
        BuiltinInfo {
            name: "multiwell-switch",
            doc: "K wells on a circle, V = -log sum exp(-|z - xi|^2/(2 w^2)); input channel mu pulls towards memory mu: f = -grad V + sum u_mu kappa (xi_mu - z)",
            params: vec![
                p("k", 3.0, "number of wells / input channels"),
                p("radius", 1.5, "radius of the circle of memories"),
                p("width", 0.5, "well width w"),
                p(
                    "kappa",
                    8.0,
                    "strength of the input pull (8: a unit pulse carries the state past the barrier)",
                ),
                p("sigma", 0.4, "noise amplitude (spontaneous switches rare)"),
            ],
        },
        BuiltinInfo {
            name: "multiwell-cycle",
            doc: "K wells with a rotational current: f = -(I - gamma J) grad V; stationary law exp(-V/D) for every gamma, EPR = gamma^2 E[lap V]",
            params: vec![
                p("k", 3.0, "number of wells"),
                p("radius", 1.5, "radius of the circle of wells"),
                p("width", 0.5, "well width w"),
                p("gamma", 2.0, "rotational current strength"),
                p("sigma", 1.2, "noise amplitude"),
            ],
        },
    ]
}

/// Which built-in system (its name is the catalogue's, e.g. `ou-rot`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Rotated OU.
    OuRot,
    /// Double well (1-D or 2-D).
    DoubleWell,
    /// Stuart–Landau limit cycle.
    StuartLandau,
    /// Rescaled stochastic Lorenz.
    Lorenz,
    /// K wells with input-driven switching.
    MultiwellSwitch,
    /// K wells with a rotational current.
    MultiwellCycle,
}

impl crate::config::Builtins for Kind {
    const WHAT: &'static str = "SDE";
}

crate::config::choice_display!(Kind);

/// A built-in system with bound parameters, living on a device.
#[derive(Clone, Debug)]
pub struct Builtin {
    /// Which system.
    pub kind: Kind,
    /// Parameter values in catalogue order.
    pub values: Vec<(String, f64)>,
    /// Latent dimension.
    pub dim: usize,
    /// Input channels.
    pub inputs: usize,
    /// Memories (well centres) for the multi-well systems, `[K][d]`.
    pub memories: Vec<Vec<f64>>,
    /// Constant diffusion matrix `g`, row-major `[dim, dim]`.
    pub g: Vec<f64>,
    device: Device,
    mem_t: Option<Tensor<2>>,
    /// `-|ξ_μ|²/2` per memory, `[1, K]` (multi-well systems).
    mem_bias: Option<Tensor<2>>,
    /// The constant linear part of the drift as `zMᵀ`'s `Mᵀ`, `[2, 2]` (ou-rot, Stuart–Landau,
    /// multiwell-cycle's rotation).
    lin_t: Option<Tensor<2>>,
    /// `g` on the device.
    g_t: Tensor<2>,
}

impl Builtin {
    /// Binds `name` with parameter overrides.
    pub fn new(name: &str, overrides: &[(String, f64)], device: &Device) -> Result<Self> {
        let cat = catalogue();
        let Some(info) = cat.iter().find(|b| b.name == name) else {
            bail!(
                "unknown SDE `{name}`: built-ins are {} (or give a path to a .toml file)",
                cat.iter().map(|b| b.name).collect::<Vec<_>>().join(", ")
            );
        };
        let mut values: Vec<(String, f64)> = info
            .params
            .iter()
            .map(|p| (p.name.to_string(), p.default))
            .collect();
        for (k, v) in overrides {
            let Some(slot) = values.iter_mut().find(|(n, _)| n == k) else {
                bail!(
                    "SDE `{name}` has no parameter `{k}` (parameters: {})",
                    info.params
                        .iter()
                        .map(|p| p.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            };
            if !v.is_finite() {
                bail!("parameter `{k}` of `{name}` must be finite, got {v}");
            }
            slot.1 = *v;
        }
        let get = |n: &str| {
            values
                .iter()
                .find(|(k, _)| k == n)
                .map(|x| x.1)
                .unwrap_or(f64::NAN)
        };
        let kind = match name {
            "ou-rot" => Kind::OuRot,
            "double-well" => Kind::DoubleWell,
            "stuart-landau" => Kind::StuartLandau,
            "lorenz" => Kind::Lorenz,
            "multiwell-switch" => Kind::MultiwellSwitch,
            _ => Kind::MultiwellCycle,
        };
        let positive = |n: &str| -> Result<f64> {
            let v = get(n);
            if v <= 0.0 {
                bail!("parameter `{n}` of `{name}` must be > 0, got {v}");
            }
            Ok(v)
        };
        let (dim, inputs, sig) = match kind {
            Kind::OuRot => {
                positive("a")?;
                (2, 0, (2.0 * positive("eps")?).sqrt())
            }
            Kind::DoubleWell => {
                let d = get("dim");
                if d != 1.0 && d != 2.0 {
                    bail!("parameter `dim` of `double-well` must be 1 or 2, got {d}");
                }
                (d as usize, 0, positive("sigma")?)
            }
            Kind::StuartLandau => (2, 0, positive("sigma")?),
            Kind::Lorenz => (3, 0, positive("sigma_y")? / positive("scale")?),
            Kind::MultiwellSwitch | Kind::MultiwellCycle => {
                let k = get("k");
                if !(2.0..=12.0).contains(&k) || k.fract() != 0.0 {
                    bail!("parameter `k` of `{name}` must be an integer in 2..=12, got {k}");
                }
                positive("width")?;
                positive("radius")?;
                let inputs = if kind == Kind::MultiwellSwitch {
                    k as usize
                } else {
                    0
                };
                (2, inputs, positive("sigma")?)
            }
        };
        let mut g = vec![0.0; dim * dim];
        for i in 0..dim {
            g[i * dim + i] = sig;
        }
        let memories: Vec<Vec<f64>> = match kind {
            Kind::MultiwellSwitch | Kind::MultiwellCycle => {
                let k = get("k") as usize;
                let r = get("radius");
                (0..k)
                    .map(|i| {
                        let a = std::f64::consts::FRAC_PI_2
                            + 2.0 * std::f64::consts::PI * i as f64 / k as f64;
                        vec![r * a.cos(), r * a.sin()]
                    })
                    .collect()
            }
            _ => Vec::new(),
        };
        let mem_t = (!memories.is_empty()).then(|| {
            let flat: Vec<f64> = memories.iter().flatten().copied().collect();
            tensor2(&flat, memories.len(), 2, device)
        });
        // Every constant goes to the device once, here: drift and diffusion are called every
        // step and upload nothing.
        let mem_bias = (!memories.is_empty()).then(|| {
            let half_norm: Vec<f64> = memories
                .iter()
                .map(|m| -0.5 * (m[0] * m[0] + m[1] * m[1]))
                .collect();
            tensor2(&half_norm, 1, memories.len(), device)
        });
        let param = |n: &str| {
            values
                .iter()
                .find(|(k, _)| k == n)
                .map(|x| x.1)
                .unwrap_or(f64::NAN)
        };
        let lin = match kind {
            Kind::OuRot => {
                let (a, th) = (param("a"), param("theta"));
                Some([-a, -th, th, -a])
            }
            Kind::StuartLandau => {
                let om = param("omega");
                Some([0.0, om, -om, 0.0])
            }
            Kind::MultiwellCycle => Some([0.0, 1.0, -1.0, 0.0]),
            _ => None,
        };
        let lin_t = lin.map(|m| tensor2(&m, 2, 2, device));
        let g_t = tensor2(&g, dim, dim, device);
        Ok(Self {
            kind,
            values,
            dim,
            inputs,
            memories,
            g,
            device: device.clone(),
            mem_t,
            mem_bias,
            lin_t,
            g_t,
        })
    }

    /// A parameter value.
    pub fn param(&self, name: &str) -> f64 {
        self.values
            .iter()
            .find(|(k, _)| k == name)
            .map(|x| x.1)
            .unwrap_or(f64::NAN)
    }

    /// Suggested time step.
    pub fn default_dt(&self) -> f64 {
        match self.kind {
            Kind::Lorenz => 1e-3,
            _ => 1e-2,
        }
    }

    /// Gradient of the multi-well potential, `[B, 2]`.
    fn grad_v(&self, z: &Tensor<2>) -> Tensor<2> {
        let (Some(mem), Some(bias)) = (&self.mem_t, &self.mem_bias) else {
            return z.zeros_like();
        };
        let w2 = self.param("width").powi(2);
        // logits_mu = -|z - xi_mu|^2 / (2 w^2) = (z.xi - |xi|^2/2 - |z|^2/2) / w^2; the |z|^2 term
        // cancels in the softmax.
        let logits = (z.clone().matmul(mem.clone().transpose()) + bias.clone()).div_scalar(w2);
        let wts = activation::softmax(logits, 1);
        (z.clone() - wts.matmul(mem.clone())).div_scalar(w2)
    }

    /// The constant diffusion `g` as a device tensor (uploaded once, at construction).
    pub fn g_tensor(&self) -> Tensor<2> {
        self.g_t.clone()
    }

    /// The drift's constant linear part (the systems that have one).
    fn lin(&self) -> Tensor<2> {
        match &self.lin_t {
            Some(m) => m.clone(),
            None => Tensor::zeros([self.dim, self.dim], &self.device),
        }
    }

    /// Drift `f(z, u)` on a batch.
    pub fn drift(&self, z: Tensor<2>, u: Option<Tensor<2>>) -> Tensor<2> {
        match self.kind {
            Kind::OuRot => {
                // f = -B z, rows: f1 = -a z1 + th z2, f2 = -th z1 - a z2; as z M^T with M = -B.
                z.matmul(self.lin())
            }
            Kind::DoubleWell => {
                let z1 = col(&z, 0);
                let f1 = z1.clone() - z1.powi_scalar(3);
                if self.dim == 1 {
                    f1
                } else {
                    Tensor::cat(vec![f1, col(&z, 1).neg()], 1)
                }
            }
            Kind::StuartLandau => {
                let mu = self.param("mu");
                let r2 = z.clone().powi_scalar(2).sum_dim(1);
                z.clone() * (r2.neg().add_scalar(mu)) + z.matmul(self.lin())
            }
            Kind::Lorenz => {
                let (s, r, b) = (self.param("s"), self.param("r"), self.param("beta"));
                let (l, m3) = (self.param("scale"), self.param("m3"));
                let y1 = col(&z, 0).mul_scalar(l);
                let y2 = col(&z, 1).mul_scalar(l);
                let y3 = col(&z, 2).mul_scalar(l).add_scalar(m3);
                let f1 = (y2.clone() - y1.clone()).mul_scalar(s);
                let f2 = y1.clone() * (y3.clone().neg().add_scalar(r)) - y2.clone();
                let f3 = y1 * y2 - y3.mul_scalar(b);
                Tensor::cat(vec![f1, f2, f3], 1).div_scalar(l)
            }
            Kind::MultiwellSwitch => {
                let mut f = self.grad_v(&z).neg();
                if let (Some(u), Some(mem)) = (u, &self.mem_t) {
                    let kappa = self.param("kappa");
                    let pull = u.clone().matmul(mem.clone()) - z * u.sum_dim(1);
                    f = f + pull.mul_scalar(kappa);
                }
                f
            }
            Kind::MultiwellCycle => {
                let gv = self.grad_v(&z);
                let g = self.param("gamma");
                // J = [[0,-1],[1,0]]; (J gradV)^T as gradV J^T.
                gv.clone().neg() + gv.matmul(self.lin()).mul_scalar(g)
            }
        }
    }
}
