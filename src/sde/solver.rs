//! Euler–Maruyama, written once for every [`Sde`] (targets and trained networks).
//!
//! Noise comes from the project's own [`Rng`] so that simulations are reproducible from the
//! seed on every backend (the draws are identical; only floating-point reductions may differ).

use anyhow::{Result, bail};
use burn::tensor::{Device, Tensor};

use super::{Diffusion, HostDrift, Sde};
use crate::rng::Rng;
use crate::transfer::{tensor2_f32, to_vec_f32};

/// Settings of one simulation.
#[derive(Clone, Debug)]
pub struct EulerMaruyama {
    /// Time step.
    pub dt: f64,
    /// Multiplies the diffusion (0 gives the deterministic flow).
    pub noise_scale: f64,
    /// Use the system's fused CPU kernel ([`Sde::host_drift`]) in [`EulerMaruyama::simulate`]
    /// and its relatives when it has one (default); `false` always uses tensor ops.
    pub fused: bool,
}

/// Brownian increments handed out step by step (see [`EulerMaruyama::noise`]).
pub struct Noise {
    em: EulerMaruyama,
    rows: usize,
    m: usize,
    /// Steps not yet handed out (blocks never reach past the simulation's end).
    left: usize,
    /// Steps per device block (0 on the CPU backends).
    block: usize,
    buf: Option<Tensor<2>>,
    /// Next step's row block inside `buf`.
    j: usize,
    device: Device,
}

impl Noise {
    /// The next step's increments `[rows, m]` (already scaled by `√dt · noise_scale`), or
    /// `None` for a noise-free simulation.
    pub fn next(&mut self, rng: &mut Rng) -> Option<Tensor<2>> {
        if self.em.noise_scale <= 0.0 {
            return None;
        }
        self.left = self.left.saturating_sub(1);
        if self.block == 0 {
            return Some(self.em.increments(rng, self.rows, self.m, &self.device));
        }
        if self.m == 0 {
            return Some(Tensor::zeros([self.rows, 0], &self.device));
        }
        if self.buf.is_none() || self.j == self.block {
            let len = self.block.min(self.left + 1);
            let w = crate::device::device_normal(
                rng.next_u64(),
                [len * self.rows, self.m],
                &self.device,
            );
            let s = (self.em.dt.sqrt() * self.em.noise_scale) as f32;
            self.buf = Some(if s != 1.0 { w.mul_scalar(s) } else { w });
            self.block = len.max(1);
            self.j = 0;
        }
        let rows = self.rows;
        let dw = self
            .buf
            .as_ref()
            .map(|w| w.clone().narrow(0, self.j * rows, rows));
        self.j += 1;
        dw
    }
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
        Ok(Self {
            dt,
            noise_scale,
            fused: true,
        })
    }

    /// The same stepper restricted to tensor ops (no fused CPU kernel).
    pub fn tensor_ops(self) -> Self {
        Self {
            fused: false,
            ..self
        }
    }

    /// Standard normal increments `[B, m]` scaled by `sqrt(dt) * noise_scale`: drawn from the
    /// host stream on the CPU backends, on the device elsewhere ([`crate::device::device_normal`],
    /// one seed from `rng`), so that no noise crosses the bus.
    pub fn increments(&self, rng: &mut Rng, batch: usize, m: usize, device: &Device) -> Tensor<2> {
        let s = (self.dt.sqrt() * self.noise_scale) as f32;
        if !crate::device::is_host(device) {
            let w = crate::device::device_normal(rng.next_u64(), [batch, m], device);
            return if s != 1.0 { w.mul_scalar(s) } else { w };
        }
        let mut v = vec![0f32; batch * m];
        rng.fill_normal_f32(&mut v);
        if s != 1.0 {
            v.iter_mut().for_each(|x| *x *= s);
        }
        crate::transfer::upload(v, [batch, m], device)
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
        crate::progress::tick();
        let dw = if self.noise_scale > 0.0 {
            let [b, _] = x.dims();
            Some(self.increments(rng, b, sde.noise_dim(), &x.device()))
        } else {
            None
        };
        self.step_with(sde, x, u, dw)
    }

    /// The increments of a `steps`-step simulation of `rows` states with `m` noise channels,
    /// one step after another ([`Noise::next`]). On the CPU backends each step draws from the
    /// host stream exactly as [`EulerMaruyama::step`] does; elsewhere a block of steps (at most
    /// 256, at most 2²⁴ values) is drawn on the device in one call — one seed, one
    /// synchronisation — and sliced per step, so a loop of steps neither uploads noise nor
    /// stalls every step.
    pub fn noise(&self, rows: usize, m: usize, steps: usize, device: &Device) -> Noise {
        let host = crate::device::is_host(device);
        let block = if host {
            0
        } else {
            crate::device::draw_block(rows * m, steps)
        };
        Noise {
            em: self.clone(),
            rows,
            m,
            left: steps,
            block,
            buf: None,
            j: 0,
            device: device.clone(),
        }
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
        self.simulate_at(sde, x0, steps, rng, input, &|k| k % every == 0, observe)
    }

    /// `steps` steps from `x0` without observing (the state after the last step).
    pub fn advance(
        &self,
        sde: &dyn Sde,
        x0: Tensor<2>,
        steps: usize,
        rng: &mut Rng,
    ) -> Result<Tensor<2>> {
        self.simulate_at(
            sde,
            x0,
            steps,
            rng,
            &mut |_| None,
            &|_| false,
            &mut |_, _| Ok(()),
        )
    }

    /// Like [`EulerMaruyama::simulate`], observing after step `k` whenever `at(k)` (and at
    /// `k = 0`). A system without inputs whose drift has a fused CPU kernel
    /// ([`Sde::host_drift`]) and isotropic noise is stepped on host buffers: the same noise
    /// draws and the same update, without a tensor op per elementwise operation.
    #[allow(clippy::too_many_arguments)]
    pub fn simulate_at(
        &self,
        sde: &dyn Sde,
        x0: Tensor<2>,
        steps: usize,
        rng: &mut Rng,
        input: &mut dyn FnMut(usize) -> Option<Tensor<2>>,
        at: &dyn Fn(usize) -> bool,
        observe: &mut dyn FnMut(usize, &Tensor<2>) -> Result<()>,
    ) -> Result<Tensor<2>> {
        if self.fused
            && sde.inputs() == 0
            && steps > 0
            && let Diffusion::Isotropic(g) = sde.diffusion(&x0)
            && let Some(kernel) = sde.host_drift()?
        {
            return self.simulate_host(kernel, g, x0, steps, rng, at, observe);
        }
        let [rows, _] = x0.dims();
        let mut noise = self.noise(rows, sde.noise_dim(), steps, &x0.device());
        let mut x = x0;
        observe(0, &x)?;
        for k in 0..steps {
            crate::progress::tick();
            let u = input(k);
            let dw = noise.next(rng);
            x = self.step_with(sde, x, u, dw);
            if at(k + 1) {
                observe(k + 1, &x)?;
            }
        }
        Ok(x)
    }

    /// The host-buffer path of [`EulerMaruyama::simulate_at`]: `x ← (x + f(x)·dt) + (w·s)·g`
    /// with `w` the same standard normals [`EulerMaruyama::increments`] draws and `s`, `g`
    /// the same f32 factors.
    #[allow(clippy::too_many_arguments)]
    fn simulate_host(
        &self,
        mut kernel: Box<dyn HostDrift + '_>,
        g: f64,
        x0: Tensor<2>,
        steps: usize,
        rng: &mut Rng,
        at: &dyn Fn(usize) -> bool,
        observe: &mut dyn FnMut(usize, &Tensor<2>) -> Result<()>,
    ) -> Result<Tensor<2>> {
        let device = x0.device();
        let [rows, dim] = x0.dims();
        observe(0, &x0)?;
        let mut x = to_vec_f32(&x0)?;
        drop(x0);
        let mut scratch = Vec::new();
        let noisy = self.noise_scale > 0.0;
        let mut w = vec![0f32; if noisy { rows * dim } else { 0 }];
        let em = EmCoefs {
            dt: self.dt as f32,
            s: (self.dt.sqrt() * self.noise_scale) as f32,
            g: g as f32,
        };
        for k in 0..steps {
            if noisy {
                rng.fill_normal_f32(&mut w);
            }
            // From the second step on, x holds what the previous step left.
            kernel.em_step(&mut x, rows, &w, &em, k > 0, &mut scratch);
            crate::progress::tick();
            if at(k + 1) {
                observe(k + 1, &tensor2_f32(x.clone(), rows, dim, &device))?;
            }
        }
        Ok(tensor2_f32(x, rows, dim, &device))
    }
}

/// The f32 factors of one Euler–Maruyama step with isotropic noise:
/// `x ← (x + f·dt) + (w·s)·g` for a standard normal `w`.
#[derive(Clone, Copy, Debug)]
pub struct EmCoefs {
    /// Time step.
    pub dt: f32,
    /// `√dt` times the noise scale.
    pub s: f32,
    /// The isotropic diffusion `G = g·I`.
    pub g: f32,
}

impl EmCoefs {
    /// One coordinate of the noisy update (the only place the formula is written).
    #[inline(always)]
    pub fn noisy(&self, x: f32, f: f32, w: f32) -> f32 {
        (x + f * self.dt) + (w * self.s) * self.g
    }
    /// One coordinate of the noise-free update.
    #[inline(always)]
    pub fn plain(&self, x: f32, f: f32) -> f32 {
        x + f * self.dt
    }
}

/// `x ← (x + f·dt) + (w·s)·g` elementwise (no noise when `w` is empty), shared out over
/// `threads` cores in whole rows of `dim`.
pub fn em_update(x: &mut [f32], f: &[f32], w: &[f32], em: &EmCoefs, dim: usize, threads: usize) {
    use crate::device::{chunk_len, par_each};
    assert_eq!(x.len(), f.len(), "x and f must have the same shape");
    let c = chunk_len(x.len(), dim, threads).max(1);
    if w.is_empty() {
        let items: Vec<_> = x.chunks_mut(c).zip(f.chunks(c)).collect();
        par_each(items, |(x, f)| {
            for (x, &f) in x.iter_mut().zip(f) {
                *x = em.plain(*x, f);
            }
        });
    } else {
        assert_eq!(x.len(), w.len(), "x and the noise must have the same shape");
        let items: Vec<_> = x.chunks_mut(c).zip(f.chunks(c)).zip(w.chunks(c)).collect();
        par_each(items, |((x, f), w)| {
            for ((x, &f), &w) in x.iter_mut().zip(f).zip(w) {
                *x = em.noisy(*x, f, w);
            }
        });
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
