//! Neural Langevin machine (NLM spec §1): an asymmetric RNN whose squared speed is an energy,
//! sampled by Langevin dynamics. Row-vector convention: states `x: [B, N]`.
//!
//! `e = −x + φ(x)Jᵀ + b`, `E = ½‖e‖²`, force `F = −∇E = e − φ'(x) ⊙ (e J)` (the second term is
//! the Onsager reaction term), SDE `dx = F dt + √(2T) dW`. The model implements [`Sde`], so
//! sampling goes through the project's one Euler–Maruyama solver.
//!
//! Status: model core only (energy, force, Langevin sampling); the contrastive training rule,
//! data pipeline and commands are issue 3's remaining work.

use burn::tensor::{Device, Tensor};

use crate::device::fast;
use crate::rng::Rng;
use crate::sde::solver::tensor2;
use crate::sde::{Diffusion, Sde};

/// Couplings, bias and temperature of an NLM.
#[derive(Clone, Debug)]
pub struct Nlm {
    /// Couplings `J: [N, N]` (J_ij from j to i, zero diagonal).
    pub j: Tensor<2>,
    /// Bias `b: [1, N]`.
    pub b: Tensor<2>,
    /// Temperature T.
    pub temperature: f64,
}

impl Nlm {
    /// The spec's initialisation: J_ij ~ N(0, g²/N) with zero diagonal, b = 0.
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
        Self {
            j: tensor2(&j, n, n, device),
            b: Tensor::zeros([1, n], device),
            temperature,
        }
    }

    /// Neurons N.
    pub fn n(&self) -> usize {
        self.j.dims()[0]
    }

    /// Speed `e = −x + φ(x)Jᵀ + b`, `[B, N]`.
    pub fn speed(&self, x: Tensor<2>) -> Tensor<2> {
        let phi = fast::tanh(x.clone());
        phi.matmul(self.j.clone().transpose()) + self.b.clone() - x
    }

    /// Energy `E = ½‖e‖²` per state, `[B, 1]`.
    pub fn energy(&self, x: Tensor<2>) -> Tensor<2> {
        self.speed(x).powi_scalar(2).sum_dim(1).mul_scalar(0.5)
    }

    /// Force `F = −∇E = e − φ'(x) ⊙ (e J)`, `[B, N]`.
    pub fn force(&self, x: Tensor<2>) -> Tensor<2> {
        let phi = fast::tanh(x.clone());
        let e = phi.clone().matmul(self.j.clone().transpose()) + self.b.clone() - x;
        let dphi = phi.powi_scalar(2).neg().add_scalar(1.0);
        e.clone() - dphi * e.matmul(self.j.clone())
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
}
