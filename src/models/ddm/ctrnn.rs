//! Stochastic continuous-time RNN with a linear latent embedding.
//!
//! `dx = (1/τ)[−x + W φ(x) + b + B_in u] dt + Σ dW` with `W = U Vᵀ/N` (low rank, default),
//! `W = U C Uᵀ/N²` with `C = Cᵀ` (symmetric control) or a dense trainable `W` (full rank, with an
//! off-manifold penalty). `U` has `UᵀU = N I`, `b = U c + h` with `h ⟂ U`, `Σ = U A`,
//! `B_in = U M + B_⊥` with `B_⊥ ⟂ U` (inputs also shift the features).

use anyhow::{Result, bail};
use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, NamedArray};
use crate::device::fast;
use crate::models::param;
use crate::rng::Rng;
use crate::sde::{Diffusion, Sde};
use crate::transfer::{tensor2, tensor2_f32, to_vec_f32};

/// Connectivity of the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Connectivity {
    /// `W = U Vᵀ/N`: the latent subspace is exactly invariant.
    LowRank,
    /// Dense trainable `W` with an off-manifold penalty.
    FullRank,
    /// `W = U C Uᵀ/N²`, `C` symmetric: the Hopfield-type control.
    Symmetric,
}

crate::config::choice_display!(Connectivity);

impl std::str::FromStr for Connectivity {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "low-rank" => Self::LowRank,
            "full-rank" => Self::FullRank,
            "symmetric" => Self::Symmetric,
            _ => bail!("unknown connectivity `{s}` (low-rank, full-rank, symmetric)"),
        })
    }
}

/// Shape and fixed-structure settings of a network.
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    /// Neurons N.
    pub n: usize,
    /// Latent dimension d.
    pub d: usize,
    /// Input channels p.
    pub p: usize,
    /// Brownian dimension m.
    pub m: usize,
    /// Time constant τ.
    pub tau: f64,
    /// Connectivity.
    pub conn: Connectivity,
}

/// The network, a Burn module: the trainable tensors (`read`, `c`, `A`, `M`, and `h` when the
/// bias is trained) and the frozen embedding (`U`, `B_perp`, `set_require_grad(false)`) are
/// [`Param`]s with ids fixed by their names, so two processes build the same record.
#[derive(Module, Debug)]
pub struct CtRnn {
    /// Embedding `U` `[N, d]`, `UᵀU = N I` (frozen).
    pub u: Param<Tensor<2>>,
    /// Transverse bias `h = b_⊥` `[1, N]`.
    pub h: Param<Tensor<2>>,
    /// Transverse input loading `B_⊥ᵀ` `[p, N]` (empty when p = 0; frozen).
    pub bp: Param<Tensor<2>>,
    /// Read-out: `V` `[N, d]` (low rank), `P` `[d, d]` with `C = (P + Pᵀ)/2` (symmetric) or
    /// `W` `[N, N]` (full rank).
    pub read: Param<Tensor<2>>,
    /// Latent bias `c` `[1, d]`.
    pub c: Param<Tensor<2>>,
    /// Latent diffusion `A` `[d, m]` (`Σ = U A`).
    pub a: Param<Tensor<2>>,
    /// Latent input loading `M` `[d, p]`.
    pub min: Param<Tensor<2>>,
    /// Structure.
    #[module(skip)]
    pub shape: Shape,
}

/// Names of the tensors in checkpoints and exports.
pub const TENSORS: [&str; 7] = ["U", "h", "B_perp", "read", "c", "A", "M"];

/// Tensors that training never changes.
const FROZEN: [&str; 2] = ["U", "B_perp"];

/// RNG stream of a fresh network's random draws.
pub const INIT_STREAM: u64 = 1;

/// Configuration of a fresh [`CtRnn`]: its shape, the scales of the random transverse parts
/// and the seed of its draws ([`CtRnnConfig::init`]).
#[derive(Config, Debug)]
pub struct CtRnnConfig {
    /// Neurons N.
    pub neurons: usize,
    /// Latent dimension d.
    pub latent: usize,
    /// Input channels p.
    #[config(default = 0)]
    pub inputs: usize,
    /// Brownian dimension m.
    pub noise: usize,
    /// Time constant τ.
    #[config(default = 1.0)]
    pub tau: f64,
    /// Connectivity.
    #[config(default = "Connectivity::LowRank")]
    pub connectivity: Connectivity,
    /// Scale of the transverse bias `h`.
    #[config(default = 1.0)]
    pub bias_scale: f64,
    /// Scale of the transverse input loadings `B_⊥`.
    #[config(default = 1.0)]
    pub input_scale: f64,
    /// Seed of the random draws (stream [`INIT_STREAM`]).
    #[config(default = 0)]
    pub seed: u64,
}

impl CtRnnConfig {
    /// The shape this configuration describes.
    pub fn shape(&self) -> Shape {
        Shape {
            n: self.neurons,
            d: self.latent,
            p: self.inputs,
            m: self.noise,
            tau: self.tau,
            conn: self.connectivity,
        }
    }

    /// A fresh network on `device` (see [`CtRnn::init`]).
    pub fn init(&self, device: &Device) -> Result<CtRnn> {
        let mut rng = Rng::derived(self.seed, INIT_STREAM);
        CtRnn::init(
            self.shape(),
            self.bias_scale,
            self.input_scale,
            &mut rng,
            device,
        )
    }
}

impl CtRnn {
    /// A fresh network: random orthogonal `U`, transverse `h` of scale `bias_scale`, transverse
    /// input loadings of scale `input_scale`, zero read-out, small random `A`.
    pub fn init(
        shape: Shape,
        bias_scale: f64,
        input_scale: f64,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Self> {
        let Shape { n, d, p, m, .. } = shape;
        if d == 0 || n < d {
            bail!("the network needs N >= d >= 1 neurons (N = {n}, d = {d})");
        }
        // U = √N Q of the thin QR of a Gaussian [N, d] matrix, signs fixed by diag(R) ≥ 0 (the
        // unique factorisation: the same U whichever QR routine computes it).
        let g = nalgebra::DMatrix::from_row_slice(n, d, &rng.normal_vec_f64(n * d));
        let qr = g.qr();
        let (q, r) = (qr.q(), qr.r());
        let sn = (n as f64).sqrt();
        let mut u = vec![0.0; n * d];
        for j in 0..d {
            let sign = if r[(j, j)] < 0.0 { -sn } else { sn };
            for i in 0..n {
                u[i * d + j] = q[(i, j)] * sign;
            }
        }
        let perp = |v: Vec<f64>| -> Vec<f64> {
            // v - U (Uᵀ v)/N
            let mut coef = vec![0.0; d];
            for i in 0..n {
                for j in 0..d {
                    coef[j] += u[i * d + j] * v[i];
                }
            }
            (0..n)
                .map(|i| v[i] - (0..d).map(|j| u[i * d + j] * coef[j]).sum::<f64>() / n as f64)
                .collect()
        };
        let h = perp(
            rng.normal_vec_f64(n)
                .into_iter()
                .map(|x| x * bias_scale)
                .collect(),
        );
        let mut bp = Vec::with_capacity(p * n);
        for _ in 0..p {
            bp.extend(perp(
                rng.normal_vec_f64(n)
                    .into_iter()
                    .map(|x| x * input_scale)
                    .collect(),
            ));
        }
        let a: Vec<f64> = rng
            .normal_vec_f64(d * m)
            .into_iter()
            .map(|x| 0.1 * x)
            .collect();
        let read = match shape.conn {
            Connectivity::LowRank => Tensor::zeros([n, d], device),
            Connectivity::Symmetric => Tensor::zeros([d, d], device),
            Connectivity::FullRank => Tensor::zeros([n, n], device),
        };
        let mut net = Self {
            u: param("ctrnn.U", tensor2(&u, n, d, device)),
            h: param("ctrnn.h", tensor2(&h, 1, n, device)),
            bp: param("ctrnn.B_perp", tensor2(&bp, p, n, device)),
            read: param("ctrnn.read", read),
            c: param("ctrnn.c", Tensor::zeros([1, d], device)),
            a: param("ctrnn.A", tensor2(&a, d, m, device)),
            min: param("ctrnn.M", Tensor::zeros([d, p], device)),
            shape,
        };
        for name in FROZEN {
            net.set(name, net.get(name).clone());
        }
        Ok(net)
    }

    /// The tensor called `name` (see [`TENSORS`]).
    pub fn get(&self, name: &str) -> &Tensor<2> {
        self.param(name)
    }

    /// The parameter called `name` (see [`TENSORS`]).
    pub fn param(&self, name: &str) -> &Param<Tensor<2>> {
        match name {
            "U" => &self.u,
            "h" => &self.h,
            "B_perp" => &self.bp,
            "read" => &self.read,
            "c" => &self.c,
            "A" => &self.a,
            _ => &self.min,
        }
    }

    /// Replaces the value of the tensor called `name` (same parameter id; frozen ones stay
    /// frozen).
    pub fn set(&mut self, name: &str, t: Tensor<2>) {
        let slot = match name {
            "U" => &mut self.u,
            "h" => &mut self.h,
            "B_perp" => &mut self.bp,
            "read" => &mut self.read,
            "c" => &mut self.c,
            "A" => &mut self.a,
            _ => &mut self.min,
        };
        let p = Param::initialized(slot.id, t);
        *slot = if FROZEN.contains(&name) {
            p.set_require_grad(false)
        } else {
            p
        };
    }

    /// A copy whose tensors `names` are autodiff leaves that require gradients.
    pub fn tracked(&self, names: &[&str]) -> Self {
        let mut c = self.clone();
        for n in names {
            let t = c.get(n).clone().autodiff().require_grad();
            c.set(n, t);
        }
        c
    }

    /// Latent pre-activations `U z + h + B_⊥ u`, `[B, N]`.
    pub fn features_pre(&self, z: Tensor<2>, u: Option<&Tensor<2>>) -> Tensor<2> {
        let mut pre = z.matmul(self.u.val().transpose()) + self.h.val();
        if let Some(u) = u
            && self.shape.p > 0
        {
            pre = pre + u.clone().matmul(self.bp.val());
        }
        pre
    }

    /// Symmetric coupling `C = (P + Pᵀ)/2`.
    fn csym(&self) -> Tensor<2> {
        (self.read.val() + self.read.val().transpose()).mul_scalar(0.5)
    }

    /// Projection onto the latent space of `W φ`: rows `(1/N) Uᵀ W φ`, `[B, d]`.
    fn latent_recurrent(&self, phi: Tensor<2>) -> Tensor<2> {
        let n = self.shape.n as f64;
        match self.shape.conn {
            Connectivity::LowRank => phi.matmul(self.read.val()).div_scalar(n),
            Connectivity::Symmetric => phi
                .matmul(self.u.val())
                .matmul(self.csym())
                .div_scalar(n * n),
            Connectivity::FullRank => phi
                .matmul(self.read.val().transpose())
                .matmul(self.u.val())
                .div_scalar(n),
        }
    }

    /// Latent drift `F_θ(z, u)`, `[B, d]` (exact on the manifold for low-rank and symmetric W).
    pub fn latent_drift(&self, z: Tensor<2>, u: Option<&Tensor<2>>) -> Tensor<2> {
        let phi = fast::tanh(self.features_pre(z.clone(), u));
        let mut f = z.neg() + self.latent_recurrent(phi) + self.c.val();
        if let Some(u) = u
            && self.shape.p > 0
        {
            f = f + u.clone().matmul(self.min.val().transpose());
        }
        f.div_scalar(self.shape.tau)
    }

    /// Off-manifold part of the recurrent drift at `x = U z + h`: `P_⊥ W φ(x)`, `[B, N]`
    /// (identically zero for the low-rank and symmetric forms).
    pub fn off_manifold(&self, z: Tensor<2>, u: Option<&Tensor<2>>) -> Tensor<2> {
        let phi = fast::tanh(self.features_pre(z, u));
        let y = phi.matmul(self.read.val().transpose());
        let proj = y
            .clone()
            .matmul(self.u.val())
            .matmul(self.u.val().transpose());
        y - proj.div_scalar(self.shape.n as f64)
    }

    /// Squared norm of the connectivity, `‖W‖_F²`, as a tensor (for the ridge penalty).
    pub fn w_norm2(&self) -> Tensor<1> {
        let n = self.shape.n as f64;
        match self.shape.conn {
            Connectivity::LowRank => self.read.val().powi_scalar(2).sum().div_scalar(n),
            Connectivity::Symmetric => self.csym().powi_scalar(2).sum().div_scalar(n * n),
            Connectivity::FullRank => self.read.val().powi_scalar(2).sum(),
        }
    }

    /// Full bias `b = U c + h`, `[1, N]`.
    pub fn bias(&self) -> Tensor<2> {
        self.c.val().matmul(self.u.val().transpose()) + self.h.val()
    }

    /// Dense connectivity `W` `[N, N]`.
    pub fn dense_w(&self) -> Tensor<2> {
        let n = self.shape.n as f64;
        match self.shape.conn {
            Connectivity::LowRank => self
                .u
                .val()
                .matmul(self.read.val().transpose())
                .div_scalar(n),
            Connectivity::Symmetric => self
                .u
                .val()
                .matmul(self.csym())
                .matmul(self.u.val().transpose())
                .div_scalar(n * n),
            Connectivity::FullRank => self.read.val(),
        }
    }

    /// The same network with connectivity replaced by a dense `W` (for decompositions).
    pub fn with_dense(&self, w: Tensor<2>) -> Self {
        let mut c = self.clone();
        c.shape.conn = Connectivity::FullRank;
        c.set("read", w);
        c
    }

    /// Noise loading `Σ = U A`, `[N, m]`.
    pub fn sigma(&self) -> Tensor<2> {
        self.u.val().matmul(self.a.val())
    }

    /// Input loading `B_in = U M + B_⊥`, `[N, p]`.
    pub fn b_in(&self) -> Tensor<2> {
        self.u.val().matmul(self.min.val()) + self.bp.val().transpose()
    }

    /// Latent read-out `z = Uᵀx/N` of network states `[B, N]`.
    pub fn readout(&self, x: Tensor<2>) -> Tensor<2> {
        x.matmul(self.u.val()).div_scalar(self.shape.n as f64)
    }

    /// Embedding of latent states on the manifold: `x = U z + h (+ B_⊥ u)`.
    pub fn embed(&self, z: Tensor<2>, u: Option<&Tensor<2>>) -> Tensor<2> {
        self.features_pre(z, u)
    }

    /// Appends the tensors to a checkpoint.
    pub fn save_into(&self, ck: &mut Checkpoint) -> Result<()> {
        for name in TENSORS {
            let t = self.get(name);
            let [r, c] = t.dims();
            ck.arrays.push(NamedArray {
                name: name.into(),
                shape: vec![r, c],
                data: to_vec_f32(t)?,
            });
        }
        Ok(())
    }

    /// Restores the tensors from a checkpoint, checking every shape against `self`.
    pub fn load_from(&mut self, ck: &Checkpoint) -> Result<()> {
        for name in TENSORS {
            let t = self.get(name);
            let [r, c] = t.dims();
            let dev = t.device();
            let a = ck.array_shaped(name, &[r, c])?;
            if a.data.iter().any(|x| !x.is_finite()) {
                bail!("checkpoint tensor `{name}` contains NaN or infinity");
            }
            self.set(name, tensor2_f32(a.data.clone(), r, c, &dev));
        }
        Ok(())
    }
}

/// Exported as `model.bpk` + `model.json` (see [`crate::models::export`]).
impl crate::models::export::TrainedModel for CtRnn {
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
        ck: &crate::checkpoint::Checkpoint,
        run_config: &serde_json::Value,
        device: &Device,
    ) -> Result<Self> {
        // The shape is in the tensors: U [N, d], A [d, m], M [d, p], and `read`'s shape tells
        // the connectivity; τ comes from the run's configuration.
        let dims = |name: &str| -> Result<Vec<usize>> { Ok(ck.array(name)?.shape.clone()) };
        let (u, a, m) = (dims("U")?, dims("A")?, dims("M")?);
        let (n, d) = (u[0], u[1]);
        let conn = match dims("read")?.as_slice() {
            [r, c] if *r == n && *c == n && n != d => Connectivity::FullRank,
            [r, _] if *r == d && d != n => Connectivity::Symmetric,
            _ => Connectivity::LowRank,
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

/// The full N-dimensional network as an SDE.
pub struct NetworkSde<'a>(pub &'a CtRnn);

impl Sde for NetworkSde<'_> {
    fn dim(&self) -> usize {
        self.0.shape.n
    }
    fn noise_dim(&self) -> usize {
        self.0.shape.m
    }
    fn inputs(&self) -> usize {
        self.0.shape.p
    }
    fn drift(&self, x: Tensor<2>, u: Option<Tensor<2>>) -> Tensor<2> {
        let net = self.0;
        let n = net.shape.n as f64;
        let phi = fast::tanh(x.clone());
        let rec = match net.shape.conn {
            Connectivity::LowRank => phi
                .matmul(net.read.val())
                .matmul(net.u.val().transpose())
                .div_scalar(n),
            Connectivity::Symmetric => phi
                .matmul(net.u.val())
                .matmul(net.csym())
                .matmul(net.u.val().transpose())
                .div_scalar(n * n),
            Connectivity::FullRank => phi.matmul(net.read.val().transpose()),
        };
        let mut f = x.neg() + rec + net.bias();
        if let Some(u) = u
            && net.shape.p > 0
        {
            f = f + u.matmul(net.b_in().transpose());
        }
        f.div_scalar(net.shape.tau)
    }
    fn diffusion(&self, _x: &Tensor<2>) -> Diffusion {
        Diffusion::Additive(self.0.sigma())
    }
}

/// The network's exact latent SDE `dz = F_θ(z, u) dt + A dW`.
pub struct LatentSde<'a>(pub &'a CtRnn);

impl Sde for LatentSde<'_> {
    fn dim(&self) -> usize {
        self.0.shape.d
    }
    fn noise_dim(&self) -> usize {
        self.0.shape.m
    }
    fn inputs(&self) -> usize {
        self.0.shape.p
    }
    fn drift(&self, z: Tensor<2>, u: Option<Tensor<2>>) -> Tensor<2> {
        self.0.latent_drift(z, u.as_ref())
    }
    fn diffusion(&self, _x: &Tensor<2>) -> Diffusion {
        Diffusion::Additive(self.0.a.val())
    }
}
