//! Stochastic differential equations evaluated on batches of states, and the one solver.
//!
//! The [`Sde`] trait is implemented by target systems (built-in or user TOML files) and by
//! trained networks alike, so every simulation in the project goes through
//! [`solver::EulerMaruyama`].

pub mod builtin;
pub mod expr;
pub mod solver;
pub mod target;
pub mod user;

use burn::tensor::Tensor;

/// Noise loading of an SDE `dx = f dt + G dW`.
#[derive(Clone, Debug)]
pub enum Diffusion {
    /// Additive noise: `G` is one `[dim, m]` matrix.
    Additive(Tensor<2>),
    /// State-dependent noise: one `[dim, m]` matrix per batch row, `[B, dim, m]` (Itô).
    PerSample(Tensor<3>),
    /// Isotropic additive noise `G = s·I` (requires `m = dim`), applied without a matrix product.
    Isotropic(f64),
}

/// An SDE `dx = f(x, u) dt + G(x) dW` on batches of states `x: [B, dim]`.
pub trait Sde {
    /// State dimension.
    fn dim(&self) -> usize;
    /// Brownian dimension `m`.
    fn noise_dim(&self) -> usize;
    /// Number of input channels `p` (0 when the system takes no input).
    fn inputs(&self) -> usize {
        0
    }
    /// Drift `f(x, u)`, `[B, dim]`. `u: [B, p]` when the system takes inputs.
    fn drift(&self, x: Tensor<2>, u: Option<Tensor<2>>) -> Tensor<2>;
    /// Diffusion `G(x)`.
    fn diffusion(&self, x: &Tensor<2>) -> Diffusion;
    /// The drift as a fused CPU kernel on host buffers, when the system has one and its
    /// parameters live on a CPU device (`None`: the solver uses [`Sde::drift`]). It must
    /// compute the same function as `drift` up to float rounding.
    fn host_drift(&self) -> anyhow::Result<Option<Box<dyn HostDrift + '_>>> {
        Ok(None)
    }
}

/// A drift `f(x)` (no inputs) evaluated on row-major `[rows, dim]` f32 host buffers; it may
/// keep scratch buffers between calls.
pub trait HostDrift {
    /// Writes `f(x)` into `out` (both `[rows, dim]`).
    fn drift(&mut self, x: &[f32], rows: usize, out: &mut [f32]);

    /// One Euler–Maruyama step in place, `x ← em(x, f(x), w)` ([`solver::EmCoefs`]; `w`
    /// empty: no noise). `continued`: `x` holds exactly what this kernel's previous `em_step`
    /// left there, so state derived from it may be reused. The default evaluates
    /// [`HostDrift::drift`] into `scratch` and applies [`solver::em_update`]; a kernel that
    /// fuses the update into its own passes must give the same numbers.
    fn em_step(
        &mut self,
        x: &mut [f32],
        rows: usize,
        w: &[f32],
        em: &solver::EmCoefs,
        continued: bool,
        scratch: &mut Vec<f32>,
    ) {
        let _ = continued;
        scratch.resize(x.len(), 0.0);
        self.drift(x, rows, scratch);
        let dim = x.len() / rows.max(1);
        solver::em_update(x, scratch, w, em, dim, crate::device::cpu_threads());
    }
}

/// Column `i` of a `[B, d]` tensor as `[B, 1]`.
pub fn col(t: &Tensor<2>, i: usize) -> Tensor<2> {
    t.clone().narrow(1, i, 1)
}
