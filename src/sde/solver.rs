//! Euler–Maruyama, written once for every [`Sde`] (targets and trained networks).
//!
//! Noise comes from the project's own [`Rng`] so that simulations are reproducible from the
//! seed on every backend (the draws are identical; only floating-point reductions may differ).

use anyhow::{Result, bail};
use burn::tensor::{Device, Tensor, TensorData};

use super::{Diffusion, Sde};
use crate::rng::Rng;

/// Settings of one simulation.
#[derive(Clone, Debug)]
pub struct EulerMaruyama {
    /// Time step.
    pub dt: f64,
    /// Multiplies the diffusion (0 gives the deterministic flow).
    pub noise_scale: f64,
}

impl EulerMaruyama {
    /// A stepper, validating `dt`.
    pub fn new(dt: f64, noise_scale: f64) -> Result<Self> {
        if !(dt.is_finite() && dt > 0.0) {
            bail!("dt must be a positive number, got {dt}");
        }
        if !(noise_scale.is_finite() && noise_scale >= 0.0) {
            bail!("noise scale must be >= 0, got {noise_scale}");
        }
        Ok(Self { dt, noise_scale })
    }

    /// Standard normal increments `[B, m]` scaled by `sqrt(dt) * noise_scale`.
    pub fn increments(&self, rng: &mut Rng, batch: usize, m: usize, device: &Device) -> Tensor<2> {
        let s = (self.dt.sqrt() * self.noise_scale) as f32;
        let mut v = vec![0f32; batch * m];
        rng.fill_normal_f32(&mut v);
        if s != 1.0 {
            v.iter_mut().for_each(|x| *x *= s);
        }
        Tensor::from_data(TensorData::new(v, [batch, m]), device)
    }

    /// One step with given Brownian increments `dw: [B, m]` (already scaled by √dt).
    pub fn step_with(
        &self,
        sde: &dyn Sde,
        x: Tensor<2>,
        u: Option<Tensor<2>>,
        dw: Option<Tensor<2>>,
    ) -> Tensor<2> {
        let f = sde.drift(x.clone(), u);
        let mut next = x.clone() + f.mul_scalar(self.dt);
        if let Some(dw) = dw {
            next = next + apply_diffusion(&sde.diffusion(&x), dw);
        }
        next
    }

    /// One step, drawing the noise from `rng`.
    pub fn step(
        &self,
        sde: &dyn Sde,
        x: Tensor<2>,
        u: Option<Tensor<2>>,
        rng: &mut Rng,
    ) -> Tensor<2> {
        let dw = if self.noise_scale > 0.0 {
            let [b, _] = x.dims();
            Some(self.increments(rng, b, sde.noise_dim(), &x.device()))
        } else {
            None
        };
        self.step_with(sde, x, u, dw)
    }

    /// Runs `steps` steps from `x0`. `input(k)` gives the input at step `k` (or `None`),
    /// `observe(k, x)` is called with the state after every `every`-th step (and with `k = 0`
    /// for the initial state).
    #[allow(clippy::too_many_arguments)]
    pub fn simulate(
        &self,
        sde: &dyn Sde,
        x0: Tensor<2>,
        steps: usize,
        every: usize,
        rng: &mut Rng,
        input: &mut dyn FnMut(usize) -> Option<Tensor<2>>,
        observe: &mut dyn FnMut(usize, &Tensor<2>) -> Result<()>,
    ) -> Result<Tensor<2>> {
        let every = every.max(1);
        let mut x = x0;
        observe(0, &x)?;
        for k in 0..steps {
            x = self.step(sde, x, input(k), rng);
            if (k + 1) % every == 0 {
                observe(k + 1, &x)?;
            }
        }
        Ok(x)
    }
}

/// One classical Runge–Kutta step of the noise-free flow `dx = f(x) dt` of an [`Sde`] (used
/// where the deterministic flow must be accurate, e.g. Lyapunov exponents).
pub fn rk4_step(sde: &dyn Sde, x: Tensor<2>, dt: f64) -> Tensor<2> {
    let k1 = sde.drift(x.clone(), None);
    let k2 = sde.drift(x.clone() + k1.clone().mul_scalar(dt / 2.0), None);
    let k3 = sde.drift(x.clone() + k2.clone().mul_scalar(dt / 2.0), None);
    let k4 = sde.drift(x.clone() + k3.clone().mul_scalar(dt), None);
    x + (k1 + k2.mul_scalar(2.0) + k3.mul_scalar(2.0) + k4).mul_scalar(dt / 6.0)
}

/// `G dW` for a batch: `[B, m] x [dim, m]^T -> [B, dim]`, or per-sample `G`.
pub fn apply_diffusion(g: &Diffusion, dw: Tensor<2>) -> Tensor<2> {
    match g {
        Diffusion::Additive(g) => dw.matmul(g.clone().transpose()),
        Diffusion::Isotropic(s) => dw.mul_scalar(*s),
        Diffusion::PerSample(g) => {
            // [B, dim, m] x [B, m, 1] -> [B, dim, 1]
            let [b, m] = dw.dims();
            let d = g.dims()[1];
            g.clone().matmul(dw.reshape([b, m, 1])).reshape([b, d])
        }
    }
}

/// Reads a `[B, d]` tensor back as rows of f64.
pub fn to_rows(t: &Tensor<2>) -> Result<Vec<Vec<f64>>> {
    let [b, d] = t.dims();
    let v = to_vec_f32(t)?;
    Ok((0..b)
        .map(|i| v[i * d..(i + 1) * d].iter().map(|&x| x as f64).collect())
        .collect())
}

/// Reads any tensor back as a flat f32 vector.
pub fn to_vec_f32<const D: usize>(t: &Tensor<D>) -> Result<Vec<f32>> {
    t.clone()
        .try_into_vec_as::<f32>()
        .map_err(|e| anyhow::anyhow!("cannot read tensor back: {e:?}"))
}

/// A `[rows, cols]` tensor from row-major f64 values.
pub fn tensor2(v: &[f64], rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    let data: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(data, [rows, cols]), device)
}

/// A `[rows, cols]` tensor from row-major f32 values.
pub fn tensor2_f32(v: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v, [rows, cols]), device)
}
