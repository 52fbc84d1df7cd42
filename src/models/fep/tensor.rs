//! The tensor engine of FEP networks: Burn tensor operations batched over the G networks, on
//! any device. The rank-1 updates of a step are deferred and folded into J every 16 steps and
//! at every epoch end; on a GPU an epoch makes no copy either way.

use anyhow::Result;
use burn::tensor::{Device, Tensor};

use super::cb::{langevin_t, log_partition_t, sample_t};
use super::{
    EpochInput, EpochOut, FepConfig, FepNetworks, Input, Networks, Rule, UpdateOrder, host_bias,
    streams_of,
};
use crate::models::param;
use crate::rng::Rng;
use crate::transfer::{tensor2_f32, to_vec_f32};

/// Host values mirrored on the device: each is uploaded again only when its host copy changed
/// (a comparison on the host, no copy), so an epoch on a GPU uploads nothing.
#[derive(Default)]
struct DeviceConsts {
    patterns: Option<(Vec<f64>, Tensor<2>)>,
    betas: Option<(Vec<f64>, Tensor<2>)>,
    evidences: Option<(Vec<f64>, Tensor<2>)>,
}

/// `v` as a `[rows, cols]` device tensor, from `slot` when `v` has not changed since.
fn mirrored(
    slot: &mut Option<(Vec<f64>, Tensor<2>)>,
    v: &[f64],
    rows: usize,
    cols: usize,
    device: &Device,
) -> Tensor<2> {
    if let Some((host, t)) = slot
        && host.as_slice() == v
    {
        return t.clone();
    }
    let t = crate::transfer::tensor2(v, rows, cols, device);
    *slot = Some((v.to_vec(), t.clone()));
    t
}

/// `acc += x` for a running device sum that starts empty.
fn add_to(acc: &mut Option<Tensor<1>>, x: Tensor<1>) {
    *acc = Some(match acc.take() {
        Some(a) => a + x,
        None => x,
    });
}

/// Deferred coupling updates: the effective couplings are `j + U Vᵀ − diag(d)`, with the K
/// pending updates ΔJ_k = u_k v_kᵀ as the columns of U and V and d = Σ_k u_k ⊙ v_k their
/// diagonal (ΔJ has a zero diagonal). Each step then reads J once (the product Jσ) instead of
/// three to four times (outer product, mask, add); every [`MAX_PENDING`] steps and at the end of
/// every epoch the updates are folded into J with one batched matmul. Same updates, same order
/// at every fold; only float rounding differs from adding each one at once.
struct Pending {
    /// `[G, N, K]`.
    u: Tensor<3>,
    /// `[G, N, K]`.
    v: Tensor<3>,
    /// `[G, N]`.
    d: Tensor<2>,
    k: usize,
}

/// Most updates kept pending before they are folded into J.
const MAX_PENDING: usize = 16;

/// The networks as Burn tensors ([`FepNetworks`]) with the engine's working state.
pub(crate) struct TensorNetworks {
    nets: FepNetworks,
    g: usize,
    n: usize,
    offdiag: Tensor<3>,
    device: Device,
    /// Rank-1 updates not yet added to J (see [`TensorNetworks::fold`]).
    pending: Option<Pending>,
    /// Fold after this many pending updates (1: add every update at once).
    pub(crate) max_pending: usize,
    /// Patterns, β and evidence on a non-host device, uploaded when they change.
    consts: DeviceConsts,
}

impl TensorNetworks {
    /// G fresh networks of N units (J = 0, σ = 0) on `device`.
    pub(crate) fn new(g: usize, n: usize, device: &Device) -> Self {
        let mut mask = vec![1f32; n * n];
        for i in 0..n {
            mask[i * n + i] = 0.0;
        }
        Self {
            nets: FepNetworks::from_tensors(
                Tensor::zeros([g, n, n], device),
                Tensor::zeros([g, n], device),
            ),
            g,
            n,
            offdiag: tensor2_f32(mask, n, n, device).reshape([1, n, n]),
            device: device.clone(),
            pending: None,
            max_pending: MAX_PENDING,
            consts: DeviceConsts::default(),
        }
    }

    /// The next step's uniforms `[G, N]`: network k's N values from its own stream.
    fn uniforms(&self, streams: &mut [Rng]) -> Tensor<2> {
        let (g, n) = (self.g, self.n);
        let mut v = vec![0f32; g * n];
        for (chunk, r) in v.chunks_mut(n).zip(streams.iter_mut()) {
            r.fill_uniform_f32(chunk);
        }
        tensor2_f32(v, g, n, &self.device)
    }

    /// One stochastic update + learning step with biases `b: [G, N]`; returns ‖ΔJ‖² summed and
    /// the VFE proxy Σ_i ψ(θ_i) − θ_i σ_i (the negative log-likelihood of the new state under
    /// its CB posterior; the JAX form of the paper's code), summed over networks.
    fn learn_step(
        &mut self,
        cfg: &FepConfig,
        b: &Tensor<2>,
        beta: &Tensor<2>,
        u: Tensor<2>,
    ) -> (Tensor<1>, Tensor<1>) {
        let (g, n) = (self.g, self.n);
        let prev = self.nets.state.val();
        // h = J σ_prev (row form: σ_prev Jᵀ per network).
        let (h, s) = if cfg.schedule == UpdateOrder::Sequential {
            self.fold();
            // Node by node: unit i sees the units already updated in this sweep.
            let mut cur = prev;
            let mut hs = Vec::with_capacity(n);
            for i in 0..n {
                let row = self.nets.j.val().narrow(1, i, 1); // [G, 1, N]
                let hi = row.matmul(cur.clone().reshape([g, n, 1])).reshape([g, 1]);
                let th = (b.clone().narrow(1, i, 1) + hi.clone()) * beta.clone();
                let si = sample_t(th, u.clone().narrow(1, i, 1));
                cur = cur.slice_assign([0..g, i..i + 1], si);
                hs.push(hi);
            }
            (Tensor::cat(hs, 1), cur)
        } else {
            let row = prev.clone().reshape([g, 1, n]);
            let mut h = row
                .clone()
                .matmul(self.nets.j.val().swap_dims(1, 2))
                .reshape([g, n]);
            if let Some(p) = &self.pending {
                // (U Vᵀ − diag d) σ = U (Vᵀσ) − d ⊙ σ
                let c = row.matmul(p.v.clone()); // [G, 1, K]
                let lowrank = c.matmul(p.u.clone().swap_dims(1, 2)).reshape([g, n]);
                h = h + lowrank - p.d.clone() * prev;
            }
            let theta = (b.clone() + h.clone()) * beta.clone();
            let s = sample_t(theta, u);
            (h, s)
        };
        let theta = (b.clone() + h.clone()) * beta.clone();
        let vfe = (log_partition_t(theta.clone()) - theta.clone() * s.clone()).sum();
        let mut eps = match cfg.rule {
            Rule::Hebbian => s.clone(),
            Rule::Paper => s.clone() - langevin_t(theta.clone()),
            Rule::Code => s.clone() - langevin_t(h.clone()),
        };
        if cfg.precision_weighting && cfg.rule != Rule::Hebbian {
            let bh = h * beta.clone();
            // L'(x) = 1/x² − 1/sinh²(x); use 1 − L² − 2L/x ≡ L'(x) (stable for moderate x).
            let l = langevin_t(bh.clone());
            let safe = bh.clone().mask_fill(bh.clone().abs().lower_elem(1e-3), 1.0);
            let lp = l.clone().powi_scalar(2).neg().add_scalar(1.0) - l.mul_scalar(2.0).div(safe);
            let lp = lp
                .mask_fill(bh.abs().lower_elem(1e-3), 1.0 / 3.0)
                .clamp_min(1e-8);
            eps = eps.div(lp);
        }
        // ΔJ = α ε σᵀ off the diagonal. Its squared norm factorises:
        // ‖ΔJ‖² = α² (‖ε‖²‖σ‖² − Σ_i ε_i² σ_i²) per network — no pass over the N×N matrices.
        let eps = eps.mul_scalar(cfg.lr);
        let e2 = eps.clone().powi_scalar(2);
        let s2 = s.clone().powi_scalar(2);
        let norm = (e2.clone().sum_dim(1) * s2.clone().sum_dim(1) - (e2 * s2).sum_dim(1)).sum();
        let du = eps.clone() * s.clone();
        let (u, v) = (eps.reshape([g, n, 1]), s.clone().reshape([g, n, 1]));
        self.pending = Some(match self.pending.take() {
            None => Pending { u, v, d: du, k: 1 },
            Some(p) => Pending {
                u: Tensor::cat(vec![p.u, u], 2),
                v: Tensor::cat(vec![p.v, v], 2),
                d: p.d + du,
                k: p.k + 1,
            },
        });
        if cfg.schedule == UpdateOrder::Sequential
            || self
                .pending
                .as_ref()
                .is_some_and(|p| p.k >= self.max_pending)
        {
            self.fold();
        }
        self.nets.set_state(s);
        (norm, vfe)
    }

    /// Adds the pending updates to J: J ← (J + U Vᵀ) ⊙ offdiag.
    fn fold(&mut self) {
        if let Some(p) = self.pending.take() {
            let dj = p.u.matmul(p.v.swap_dims(1, 2));
            // Take J out of `self` so the adds can reuse its buffer (no second handle alive).
            let j = std::mem::replace(
                &mut self.nets.j,
                param("fep.J", Tensor::empty([0, 0, 0], &self.device)),
            )
            .into_value();
            self.nets.set_j((j + dj) * self.offdiag.clone());
        }
    }

    /// An epoch on a CPU device: biases and uniforms from the host streams (the numbers the
    /// host engine uses), monitors read back at the end.
    fn host_epoch(&mut self, cx: &EpochInput<'_>) -> Result<EpochOut> {
        let (g, n) = (self.g, self.n);
        let mut streams = streams_of(cx, g);
        if cx.cfg.reset_state {
            self.nets.set_state(Tensor::zeros([g, n], &self.device));
        }
        let b = tensor2_f32(host_bias(cx, g, n), g, n, &self.device);
        // Per-network precision [G, 1], uploaded once per epoch rather than once per step.
        let beta = tensor2_f32(
            cx.betas.iter().map(|&x| x as f32).collect(),
            g,
            1,
            &self.device,
        );
        let mut norm = None;
        let mut vfe = None;
        for _ in 0..cx.cfg.steps_per_epoch {
            let u = self.uniforms(&mut streams);
            let (x, f) = self.learn_step(cx.cfg, &b, &beta, u);
            add_to(&mut norm, x);
            vfe = Some(f);
        }
        // Epoch boundaries (checkpoints, analysis) always see J with every update added.
        self.fold();
        let (v, f) = match (norm, vfe) {
            (Some(t), Some(f)) => {
                let both = to_vec_f32(&Tensor::cat(vec![t, f], 0))?;
                (both[0] as f64, both[1] as f64)
            }
            _ => (0.0, 0.0),
        };
        Ok(EpochOut::Host(v / g as f64, f / g as f64))
    }

    /// The tensor engine's epoch on a GPU: no copy either way. Patterns, β and evidence are
    /// mirrored on the device ([`mirrored`]); each network's bias is its pattern's row
    /// (`narrow`, with the index known on the host); the uniforms of all steps are drawn on the
    /// device from the epoch's seed (a block of steps per draw); the two monitors stay device
    /// scalars. Same seed, same device → same numbers; the values differ from the CPU's, whose
    /// uniforms come from per-network host streams.
    fn device_epoch(&mut self, cx: &EpochInput<'_>) -> EpochOut {
        let (g, n) = (self.g, self.n);
        let p = cx.patterns.len() / n;
        let dev = self.device.clone();
        let b = if cx.cfg.input == Input::Patterns {
            let pt = mirrored(&mut self.consts.patterns, cx.patterns, p, n, &dev);
            let ev = mirrored(&mut self.consts.evidences, cx.evidences, g, 1, &dev);
            let first = cx.last_pattern[0];
            let rows = if cx.last_pattern.iter().all(|&i| i == first) {
                pt.narrow(0, first, 1).repeat_dim(0, g)
            } else {
                let rows = cx
                    .last_pattern
                    .iter()
                    .map(|&i| pt.clone().narrow(0, i, 1))
                    .collect();
                Tensor::cat(rows, 0)
            };
            rows * ev
        } else {
            Tensor::zeros([g, n], &dev)
        };
        let beta = mirrored(&mut self.consts.betas, cx.betas, g, 1, &dev);
        if cx.cfg.reset_state {
            self.nets.set_state(Tensor::zeros([g, n], &dev));
        }
        let steps = cx.cfg.steps_per_epoch;
        let block = crate::device::draw_block(g * n, steps);
        let mut rng = Rng::new(cx.base);
        let mut uniforms: Option<Tensor<2>> = None;
        let mut norm = None;
        let mut vfe = None;
        for s in 0..steps {
            let j = s % block;
            if j == 0 {
                let len = block.min(steps - s);
                uniforms = Some(crate::device::device_random(
                    rng.next_u64(),
                    [len * g, n],
                    burn::tensor::Distribution::Uniform(0.0, 1.0),
                    &dev,
                ));
            }
            let u = match &uniforms {
                Some(all) => all.clone().narrow(0, j * g, g),
                None => Tensor::zeros([g, n], &dev),
            };
            let (x, f) = self.learn_step(cx.cfg, &b, &beta, u);
            add_to(&mut norm, x);
            vfe = Some(f);
        }
        self.fold();
        match (norm, vfe) {
            (Some(t), Some(f)) => EpochOut::Device(Tensor::cat(vec![t, f], 0).div_scalar(g as f64)),
            _ => EpochOut::Host(0.0, 0.0),
        }
    }
}

impl Networks for TensorNetworks {
    fn name(&self) -> &'static str {
        "tensor"
    }
    #[cfg(test)]
    fn set_max_pending(&mut self, k: usize) {
        self.max_pending = k;
    }
    fn epoch(&mut self, cx: &EpochInput<'_>) -> Result<EpochOut> {
        if crate::device::is_host(&self.device) {
            self.host_epoch(cx)
        } else {
            Ok(self.device_epoch(cx))
        }
    }
    fn couplings(&self) -> Result<Vec<f32>> {
        to_vec_f32(&self.nets.j)
    }
    fn coupling(&self, k: usize) -> Result<Vec<f32>> {
        let n = self.n;
        to_vec_f32(&self.nets.j.val().narrow(0, k, 1).reshape([n, n]))
    }
    fn states(&self) -> Result<Vec<f32>> {
        to_vec_f32(&self.nets.state)
    }
    fn state(&self, k: usize) -> Result<Vec<f32>> {
        to_vec_f32(&self.nets.state.val().narrow(0, k, 1))
    }
    fn load(&mut self, j: &[f32], state: &[f32]) {
        let (g, n) = (self.g, self.n);
        self.nets
            .set_j(tensor2_f32(j.to_vec(), g * n, n, &self.device).reshape([g, n, n]));
        self.nets
            .set_state(tensor2_f32(state.to_vec(), g, n, &self.device));
        self.pending = None;
    }
    fn scale(&mut self, factors: &[f64]) {
        let f = tensor2_f32(
            factors.iter().map(|&x| x as f32).collect(),
            self.g,
            1,
            &self.device,
        )
        .reshape([self.g, 1, 1]);
        self.nets.set_j(self.nets.j.val() * f);
    }
    fn module(&self) -> FepNetworks {
        self.nets.clone()
    }
}
