//! Fused CPU engine for FEP networks: each network's whole epoch runs as one loop over its
//! couplings, which stay in cache (N ≤ 512: at most 1 MB), with the networks of a batch shared
//! out over the CPU cores.
//!
//! It computes the same update as the tensor engine in [`super::tensor`] from the same uniforms,
//! with the same branches of the continuous-Bernoulli functions (in f32; the sampler in an
//! equivalent closed form with two transcendentals). Only float rounding differs: the rank-1
//! coupling update is added at once here, and the next step's field is computed in the same
//! pass over each column of J — J_{·c} ← J_{·c} + σ_c ε (J_cc = 0), then h += σ_c J_{·c} — one
//! read and one write of J per step, with no per-operation dispatch. That is what makes a grid
//! of 380 small networks fast on a CPU, where tensor ops on `[380, 64]` are dispatch-bound.
//!
//! Pure computation on host slices: no files, no devices.

use burn::tensor::Device;

use super::{EpochInput, EpochOut, FepNetworks, Networks, UpdateOrder, host_bias, streams_of};
use crate::rng::Rng;

pub use super::Rule;

/// Settings shared by every network of one epoch.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Learning rule.
    pub rule: Rule,
    /// Divide ε by the precision 1/max(L'(βh), 1e-8).
    pub precision_weighting: bool,
    /// Node-by-node updates (each unit sees the units already updated in this sweep).
    pub sequential: bool,
    /// Learning rate α.
    pub lr: f32,
    /// Update + learning steps in the epoch.
    pub steps: usize,
}

/// What one network's epoch reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct EpochStats {
    /// Σ over the epoch's steps of ‖ΔJ‖² (the same factorised form as the tensor engine).
    pub dj_sq: f64,
    /// VFE proxy Σ_i ψ(θ_i) − θ_i σ_i at the epoch's last step.
    pub vfe: f64,
}

/// `L(t)` in f32 with the tensor engine's branches (series for |t| < 0.1); branch-free, so
/// loops over it vectorise.
#[inline(always)]
pub fn langevin_f32(t: f32) -> f32 {
    let t2 = t * t;
    let series = t * (((t2 * (-1.0 / 4725.0) + 2.0 / 945.0) * t2 + -1.0 / 45.0) * t2 + 1.0 / 3.0);
    let exact = 1.0 / crate::device::fast::tanh_f32(t) - 1.0 / t;
    if t.abs() < 0.1 { series } else { exact }
}

pub use crate::device::fast::{exp_f32, ln_f32};

/// Inverse-CDF continuous-Bernoulli sample in f32, branch-free:
/// σ = sgn θ + ln(v + (1 − v) e^{−2|θ|}) / θ with v = u for θ > 0 and 1 − u otherwise (the
/// same quantity as the tensor engine's logaddexp form, with two transcendentals instead of
/// four and no overflow); 2u − 1 for |θ| < 1e-6.
#[inline(always)]
pub fn sample_f32(t: f32, u: f32) -> f32 {
    let u = u.clamp(1e-7, 1.0 - 1e-7);
    let pos = t > 0.0;
    let v = if pos { u } else { -u + 1.0 };
    let e = exp_f32(-2.0 * t.abs());
    let l = ln_f32(v + (-v + 1.0) * e);
    let tiny = t.abs() < 1e-6;
    let safe = if tiny { 1.0 } else { t };
    let sgn = if pos { 1.0 } else { -1.0 };
    let s = (sgn + l / safe).clamp(-1.0 + 1e-7, 1.0 - 1e-7);
    if tiny { u * 2.0 + -1.0 } else { s }
}

/// One network's state, updated in place by [`network_epoch`].
pub struct Net<'a> {
    /// Couplings, transposed (`[N, N]`, see [`network_epoch`]).
    pub jt: &'a mut [f32],
    /// State σ (`[N]`).
    pub sigma: &'a mut [f32],
    /// The field h = Jσ (`[N]`), carried from one epoch to the next: the last step's sweep
    /// leaves it computed (synchronous schedule).
    pub field: &'a mut [f32],
    /// Whether `field` holds Jσ; if not it is recomputed (same numbers: same sweep order).
    pub field_valid: bool,
}

/// Scratch buffers of one worker (reused across networks and epochs).
#[derive(Default)]
pub struct Scratch {
    theta: Vec<f32>,
    s: Vec<f32>,
    eps: Vec<f32>,
    u: Vec<f32>,
}

/// One epoch of one network. `jt` holds the couplings **transposed** (`jt[c·N + r] = J_rc`:
/// column c of J, the weights out of unit c, is contiguous), so that both the field
/// h = Σ_c J_{·c} σ_c and the update J_{·c} += σ_c ε are sweeps of contiguous axpys (they
/// vectorise with a fixed summation order). `sigma` (`[N]`) is updated in place; `bias` is
/// the input b (`[N]`), `beta` its precision; the uniforms come from `rng` in the order
/// step 0's N units, step 1's, ….
///
/// On x86-64 CPUs with AVX2 and FMA the same code is compiled a second time for them and
/// picked at run time; the multiply-adds are explicit (`mul_add`, exactly rounded with or
/// without the instruction) and every sum has a fixed order, so both versions give identical
/// numbers (tested).
pub fn network_epoch(
    net: Net<'_>,
    bias: &[f32],
    beta: f32,
    set: &Settings,
    rng: &mut Rng,
    w: &mut Scratch,
) -> EpochStats {
    let Net {
        jt,
        sigma,
        field,
        field_valid,
    } = net;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
        return unsafe { epoch_avx2(jt, sigma, field, field_valid, bias, beta, set, rng, w) };
    }
    epoch_slices(jt, sigma, field, field_valid, bias, beta, set, rng, w)
}

/// [`epoch_slices`] compiled for AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
fn epoch_avx2(
    jt: &mut [f32],
    sigma: &mut [f32],
    h: &mut [f32],
    field_valid: bool,
    bias: &[f32],
    beta: f32,
    set: &Settings,
    rng: &mut Rng,
    w: &mut Scratch,
) -> EpochStats {
    epoch_slices(jt, sigma, h, field_valid, bias, beta, set, rng, w)
}

/// ψ(θ) = ln(2 sinh θ / θ) in f32 with the tensor engine's branches, branch-free.
#[inline(always)]
pub fn log_partition_f32(t: f32) -> f32 {
    let a = t.abs();
    let a2 = a * a;
    let series = (a2 * (-1.0 / 180.0) + 1.0 / 6.0) * a2 + std::f32::consts::LN_2;
    let safe = if a < 0.1 { 1.0 } else { a };
    let exact = safe + ln_f32(-exp_f32(-2.0 * safe) + 1.0) - ln_f32(safe);
    if a < 0.1 { series } else { exact }
}

/// `out[i] = f(a[i], b[i])`, 16 elements at a time: two independent 8-lane chains per
/// iteration, so the long dependent chains of the transcendental functions overlap.
#[inline(always)]
fn map2(a: &[f32], b: &[f32], out: &mut [f32], f: impl Fn(f32, f32) -> f32) {
    const W: usize = 16;
    let full = out.len() / W * W;
    for ((o, x), y) in out[..full]
        .chunks_exact_mut(W)
        .zip(a[..full].chunks_exact(W))
        .zip(b[..full].chunks_exact(W))
    {
        for l in 0..W {
            o[l] = f(x[l], y[l]);
        }
    }
    for i in full..out.len() {
        out[i] = f(a[i], b[i]);
    }
}

/// Lanes of the fixed-order partial sums (reductions vectorise without reassociation).
const LANES: usize = 8;

/// Σ x in a fixed order: 8 lane sums over the chunks, then the lanes in f64.
#[inline(always)]
fn lane_sum(x: &[f32]) -> f64 {
    let mut acc = [0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail: f64 = chunks.remainder().iter().map(|&v| v as f64).sum();
    for c in chunks {
        for l in 0..LANES {
            acc[l] += c[l];
        }
    }
    acc.iter().map(|&v| v as f64).sum::<f64>() + tail
}

/// Largest N swept in row blocks (the block's fields stay in registers); larger N sweep
/// whole columns (contiguous, prefetch-friendly). Both give identical numbers.
const ROW_BLOCKS_MAX_N: usize = 256;

/// The field-and-update sweep of one step, for each column c of J (row c of `jt`) in the
/// order c = 0, 1, …: optionally J_{·c} ← J_{·c} + σ_c ε with J_cc kept 0 (`eps`), then
/// h ← h + σ_c J_{·c}, both as fused multiply-adds. Every h_i accumulates in that order
/// whatever the blocking or the SIMD width, so the numbers are the same everywhere; each
/// element of J is read and written once per step.
#[inline(always)]
fn sweep_columns(jt: &mut [f32], s: &[f32], eps: Option<&[f32]>, h: &mut [f32]) {
    let n = h.len();
    if n > ROW_BLOCKS_MAX_N {
        h.fill(0.0);
        for (c, &sc) in s.iter().enumerate() {
            let col = &mut jt[c * n..(c + 1) * n];
            if let Some(e) = eps {
                for (x, &ei) in col.iter_mut().zip(e) {
                    *x = ei.mul_add(sc, *x);
                }
                col[c] = 0.0;
            }
            for (hi, &x) in h.iter_mut().zip(col.iter()) {
                *hi = x.mul_add(sc, *hi);
            }
        }
        return;
    }
    let mut i0 = 0;
    while i0 + 32 <= n {
        row_block::<32>(jt, s, eps, h, i0);
        i0 += 32;
    }
    while i0 + 8 <= n {
        row_block::<8>(jt, s, eps, h, i0);
        i0 += 8;
    }
    while i0 < n {
        row_block::<1>(jt, s, eps, h, i0);
        i0 += 1;
    }
}

/// 0, 1, …, 31: the lane numbers of a row block (`B` ≤ 32).
const LANE_INDEX: [i32; 32] = {
    let mut t = [0i32; 32];
    let mut i = 0;
    while i < 32 {
        t[i] = i as i32;
        i += 1;
    }
    t
};

/// One column's slice of a row block: x ← x + σ_c e (lane `diag` set to 0 when `DIAG`: the
/// diagonal J_cc, by a branch-free select — a scalar store into the block would stall the
/// vector loads that follow), then acc ← acc + σ_c x.
#[inline(always)]
fn column<const B: usize, const DIAG: bool>(
    x: &mut [f32],
    sc: f32,
    e: &[f32; B],
    acc: &mut [f32; B],
    diag: i32,
) {
    const { assert!(B <= LANE_INDEX.len()) };
    let x: &mut [f32; B] = match x.try_into() {
        Ok(x) => x,
        Err(_) => return,
    };
    for l in 0..B {
        let y = e[l].mul_add(sc, x[l]);
        // Lane indices as a 32-bit constant table: the compare vectorises on 8 lanes per
        // instruction (a `usize` loop index compared directly became 64-bit compares + packs).
        let y = if DIAG && LANE_INDEX[l] == diag {
            0.0
        } else {
            y
        };
        x[l] = y;
        acc[l] = y.mul_add(sc, acc[l]);
    }
}

/// Rows `i0..i0 + B` of [`sweep_columns`], their fields (and ε) held in registers. The
/// columns are taken in order; those whose diagonal element falls in the block (c in
/// `i0..i0 + B`) zero it with a branch-free select.
#[inline(always)]
fn row_block<const B: usize>(
    jt: &mut [f32],
    s: &[f32],
    eps: Option<&[f32]>,
    h: &mut [f32],
    i0: usize,
) {
    let n = h.len();
    let mut acc = [0f32; B];
    let Some(ev) = eps else {
        for (c, &sc) in s.iter().enumerate() {
            let x = &jt[c * n + i0..c * n + i0 + B];
            for l in 0..B {
                acc[l] = x[l].mul_add(sc, acc[l]);
            }
        }
        h[i0..i0 + B].copy_from_slice(&acc);
        return;
    };
    let mut e = [0f32; B];
    e.copy_from_slice(&ev[i0..i0 + B]);
    for c in 0..i0 {
        column::<B, false>(&mut jt[c * n + i0..c * n + i0 + B], s[c], &e, &mut acc, 0);
    }
    for c in i0..i0 + B {
        let x = &mut jt[c * n + i0..c * n + i0 + B];
        column::<B, true>(x, s[c], &e, &mut acc, (c - i0) as i32);
    }
    for c in i0 + B..n {
        column::<B, false>(&mut jt[c * n + i0..c * n + i0 + B], s[c], &e, &mut acc, 0);
    }
    h[i0..i0 + B].copy_from_slice(&acc);
}

/// The body of [`network_epoch`], every buffer a separate argument (distinct `&mut` arguments
/// tell the optimiser that they do not overlap).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn epoch_slices(
    jt: &mut [f32],
    sigma: &mut [f32],
    h: &mut [f32],
    field_valid: bool,
    bias: &[f32],
    beta: f32,
    set: &Settings,
    rng: &mut Rng,
    w: &mut Scratch,
) -> EpochStats {
    let n = sigma.len();
    debug_assert_eq!(jt.len(), n * n);
    debug_assert_eq!(h.len(), n);
    for v in [&mut w.theta, &mut w.s, &mut w.eps, &mut w.u] {
        v.resize(n, 0.0);
    }
    let (theta, s, eps, u) = (
        &mut w.theta[..n],
        &mut w.s[..n],
        &mut w.eps[..n],
        &mut w.u[..n],
    );
    let bias = &bias[..n];
    let mut stats = EpochStats::default();
    if !set.sequential && !field_valid {
        sweep_columns(jt, sigma, None, h);
    }
    for step in 0..set.steps {
        rng.fill_uniform_f32(u);
        if set.sequential {
            s.copy_from_slice(sigma);
            for i in 0..n {
                let mut hi = 0f32;
                for c in 0..n {
                    hi += jt[c * n + i] * s[c];
                }
                h[i] = hi;
                s[i] = sample_f32((bias[i] + hi) * beta, u[i]);
            }
            for i in 0..n {
                theta[i] = (bias[i] + h[i]) * beta;
            }
        } else {
            for i in 0..n {
                theta[i] = (bias[i] + h[i]) * beta;
            }
            map2(theta, u, s, sample_f32);
        }
        if step + 1 == set.steps {
            for i in 0..n {
                u[i] = log_partition_f32(theta[i]) - theta[i] * s[i];
            }
            stats.vfe = lane_sum(u);
        }
        match set.rule {
            Rule::Hebbian => eps.copy_from_slice(s),
            Rule::Paper => {
                for i in 0..n {
                    eps[i] = s[i] - langevin_f32(theta[i]);
                }
            }
            Rule::Code => {
                map2(s, h, eps, |si, hi| si - langevin_f32(hi));
            }
        }
        if set.precision_weighting && set.rule != Rule::Hebbian {
            for i in 0..n {
                let bh = h[i] * beta;
                let l = langevin_f32(bh);
                let lp = -(l * l) + 1.0 - (l * 2.0) / bh;
                let lp = if bh.abs() < 1e-3 { 1.0 / 3.0 } else { lp };
                eps[i] /= lp.max(1e-8);
            }
        }
        for e in eps.iter_mut() {
            *e *= set.lr;
        }
        // ‖ΔJ‖² = ‖ε‖²‖σ‖² − Σ_i ε_i² σ_i² (u is free scratch now).
        for i in 0..n {
            u[i] = eps[i] * eps[i];
        }
        let e2 = lane_sum(u);
        for i in 0..n {
            u[i] *= s[i] * s[i];
        }
        let es = lane_sum(u);
        for i in 0..n {
            u[i] = s[i] * s[i];
        }
        stats.dj_sq += e2 * lane_sum(u) - es;
        // Column c of J: J_{·c} += σ_c ε (J_cc stays 0); in the same sweep the next step's
        // field h = Σ_c σ_c J_{·c} with the updated column (recomputed per unit when
        // sequential).
        sweep_columns(jt, s, Some(eps), h);
        sigma.copy_from_slice(s);
    }
    stats
}

/// The host engine: couplings and states in host memory, epochs by [`network_epoch`] on the
/// CPU cores; `jt` holds each network's J transposed
/// (`[G, N, N]`, `jt[k][c][r] = J_rc`, see `fep_host`), `state` is `[G, N]`.
pub(crate) struct HostNetworks {
    g: usize,
    n: usize,
    /// Where [`Networks::module`] puts the module.
    device: Device,
    jt: Vec<f32>,
    state: Vec<f32>,
    /// Fields Jσ `[G, N]` left by the last epoch (see `fep_host::Net::field`).
    field: Vec<f32>,
    field_valid: bool,
}

/// Transposes each of the `[N, N]` matrices in a `[G, N, N]` array.
fn transpose_each(a: &[f32], n: usize) -> Vec<f32> {
    let mut out = vec![0f32; a.len()];
    for (src, dst) in a.chunks(n * n).zip(out.chunks_mut(n * n)) {
        for r in 0..n {
            for c in 0..n {
                dst[c * n + r] = src[r * n + c];
            }
        }
    }
    out
}

impl HostNetworks {
    /// G fresh networks of N units (J = 0, σ = 0); `device` is where [`Networks::module`]
    /// builds the module.
    pub(crate) fn new(g: usize, n: usize, device: &Device) -> Self {
        Self {
            g,
            n,
            device: device.clone(),
            jt: vec![0.0; g * n * n],
            state: vec![0.0; g * n],
            field: vec![0.0; g * n],
            field_valid: false,
        }
    }

    /// One epoch on the host engine; networks are shared out over the CPU cores in contiguous
    /// blocks (each network's numbers do not depend on the split).
    fn host_epoch(&mut self, cx: &EpochInput<'_>) -> (f64, f64) {
        let (g, n) = (self.g, self.n);
        let bias = &host_bias(cx, g, n);
        let streams = &mut streams_of(cx, g);
        let set = Settings {
            rule: cx.cfg.rule,
            precision_weighting: cx.cfg.precision_weighting,
            sequential: cx.cfg.schedule == UpdateOrder::Sequential,
            lr: cx.cfg.lr as f32,
            steps: cx.cfg.steps_per_epoch,
        };
        let reset = cx.cfg.reset_state;
        let betas: Vec<f32> = cx.betas.iter().map(|&x| x as f32).collect();
        let h = self;
        let field_valid = h.field_valid && !reset;
        let mut stats = vec![EpochStats::default(); g];
        // One worker's contiguous block of networks.
        struct Part<'a> {
            jt: &'a mut [f32],
            state: &'a mut [f32],
            field: &'a mut [f32],
            bias: &'a [f32],
            betas: &'a [f32],
            streams: &'a mut [Rng],
            stats: &'a mut [EpochStats],
        }
        let work = |p: Part<'_>| {
            let mut w = Scratch::default();
            for k in 0..p.betas.len() {
                let sigma = &mut p.state[k * n..(k + 1) * n];
                if reset {
                    sigma.fill(0.0);
                }
                let net = Net {
                    jt: &mut p.jt[k * n * n..(k + 1) * n * n],
                    sigma,
                    field: &mut p.field[k * n..(k + 1) * n],
                    field_valid,
                };
                p.stats[k] = network_epoch(
                    net,
                    &p.bias[k * n..(k + 1) * n],
                    p.betas[k],
                    &set,
                    &mut p.streams[k],
                    &mut w,
                );
            }
        };
        let per = g.div_ceil(crate::device::cpu_threads().min(g).max(1));
        let parts =
            h.jt.chunks_mut(per * n * n)
                .zip(h.state.chunks_mut(per * n))
                .zip(h.field.chunks_mut(per * n))
                .zip(bias.chunks(per * n))
                .zip(betas.chunks(per))
                .zip(streams.chunks_mut(per))
                .zip(stats.chunks_mut(per))
                .map(
                    |((((((jt, state), field), bias), betas), streams), stats)| Part {
                        jt,
                        state,
                        field,
                        bias,
                        betas,
                        streams,
                        stats,
                    },
                );
        if per >= g {
            parts.for_each(work);
        } else {
            use rayon::prelude::*;
            parts.collect::<Vec<_>>().into_par_iter().for_each(work);
        }
        // The synchronous sweep leaves Jσ computed for the next epoch.
        h.field_valid = !set.sequential;
        let dj: f64 = stats.iter().map(|s| s.dj_sq).sum();
        let vfe: f64 = stats.iter().map(|s| s.vfe).sum();
        (dj / g as f64, vfe / g as f64)
    }
}

impl Networks for HostNetworks {
    fn name(&self) -> &'static str {
        "host"
    }
    fn epoch(&mut self, cx: &EpochInput<'_>) -> anyhow::Result<EpochOut> {
        let (dj, vfe) = self.host_epoch(cx);
        Ok(EpochOut::Host(dj, vfe))
    }
    fn couplings(&self) -> anyhow::Result<Vec<f32>> {
        Ok(transpose_each(&self.jt, self.n))
    }
    fn coupling(&self, k: usize) -> anyhow::Result<Vec<f32>> {
        let nn = self.n * self.n;
        Ok(transpose_each(&self.jt[k * nn..(k + 1) * nn], self.n))
    }
    fn states(&self) -> anyhow::Result<Vec<f32>> {
        Ok(self.state.clone())
    }
    fn state(&self, k: usize) -> anyhow::Result<Vec<f32>> {
        Ok(self.state[k * self.n..(k + 1) * self.n].to_vec())
    }
    fn load(&mut self, j: &[f32], state: &[f32]) {
        self.jt = transpose_each(j, self.n);
        self.field_valid = false;
        self.state.copy_from_slice(state);
    }
    fn scale(&mut self, factors: &[f64]) {
        let nn = self.n * self.n;
        self.field_valid = false;
        for (jk, &f) in self.jt.chunks_mut(nn).zip(factors) {
            jk.iter_mut().for_each(|x| *x *= f as f32);
        }
    }
    fn module(&self) -> FepNetworks {
        let (g, n) = (self.g, self.n);
        let j = crate::transfer::tensor2_f32(transpose_each(&self.jt, n), g * n, n, &self.device);
        FepNetworks::from_tensors(
            j.reshape([g, n, n]),
            crate::transfer::tensor2_f32(self.state.clone(), g, n, &self.device),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::fep::cb;

    #[test]
    fn f32_functions_follow_the_f64_reference() {
        let mut t = -30.0f64;
        while t < 30.0 {
            let l = langevin_f32(t as f32) as f64;
            assert!((l - cb::langevin(t)).abs() < 2e-6, "L({t}) = {l}");
            for u in [1e-9, 0.01, 0.3, 0.5, 0.77, 0.999, 1.0 - 1e-9] {
                let s = sample_f32(t as f32, u as f32) as f64;
                let r = cb::sample(t, (u as f32).clamp(1e-7, 1.0 - 1e-7) as f64);
                assert!(
                    (s - r).abs() < 1e-4 + 1e-4 * r.abs(),
                    "sample({t}, {u}): {s} vs {r}"
                );
            }
            t += 0.0137;
        }
        assert_eq!(sample_f32(0.0, 0.25), -0.5);
        let mut t = -40.0f64;
        while t < 40.0 {
            let (a, r) = (
                log_partition_f32(t as f32) as f64,
                cb::log_partition(t as f32 as f64),
            );
            assert!(
                (a - r).abs() < 2e-6 * r.abs().max(1.0),
                "psi({t}) = {a} vs {r}"
            );
            t += 0.0173;
        }
    }

    #[test]
    fn exp_and_ln_are_accurate_to_a_few_ulp() {
        let mut worst_e = 0f64;
        let mut x = -87.0f64;
        while x < 88.0 {
            let r = (x as f32 as f64).exp();
            worst_e = worst_e.max((exp_f32(x as f32) as f64 - r).abs() / r);
            x += 0.00731;
        }
        let mut worst_l = 0f64;
        let mut x = 1e-30f64;
        while x < 1e30 {
            let r = (x as f32 as f64).ln();
            worst_l = worst_l.max((ln_f32(x as f32) as f64 - r).abs() / r.abs().max(1.0));
            x *= 1.0137;
        }
        for x in [1.0f32, 0.5, 2.0, 1e-7, 0.999_999_9] {
            let r = (x as f64).ln();
            worst_l = worst_l.max((ln_f32(x) as f64 - r).abs() / r.abs().max(1e-30));
        }
        assert!(worst_e < 5e-7, "exp: max relative error {worst_e}");
        assert!(worst_l < 5e-7, "ln: max relative error {worst_l}");
    }

    #[test]
    fn row_blocks_and_column_sweeps_agree_bitwise() {
        let mut r = Rng::new(12);
        for n in [1usize, 5, 8, 40, 64, 70] {
            let jt0: Vec<f32> = r.normal_vec(n * n);
            let s: Vec<f32> = r.normal_vec(n);
            let e: Vec<f32> = r.normal_vec(n);
            let (mut a, mut b) = (jt0.clone(), jt0.clone());
            let (mut ha, mut hb) = (vec![0f32; n], vec![0f32; n]);
            for i in 0..n {
                a[i * n + i] = 0.0;
                b[i * n + i] = 0.0;
            }
            sweep_columns(&mut a, &s, Some(&e), &mut ha);
            // The column form, written out.
            for c in 0..n {
                for i in 0..n {
                    let x = &mut b[c * n + i];
                    *x = if i == c { 0.0 } else { e[i].mul_add(s[c], *x) };
                    hb[i] = x.mul_add(s[c], hb[i]);
                }
            }
            assert!(
                a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
                "J, n = {n}"
            );
            assert!(
                ha.iter().zip(&hb).all(|(x, y)| x.to_bits() == y.to_bits()),
                "h, n = {n}"
            );
        }
    }

    #[test]
    fn avx2_and_generic_code_give_identical_numbers() {
        let n = 40;
        let mut r = Rng::new(4);
        let j0: Vec<f32> = r.normal_vec(n * n).iter().map(|x| x * 0.1).collect();
        let b: Vec<f32> = r.normal_vec(n);
        for rule in [Rule::Code, Rule::Paper] {
            let set = Settings {
                rule,
                precision_weighting: rule == Rule::Paper,
                sequential: false,
                lr: 0.01,
                steps: 30,
            };
            let run = |generic: bool| {
                let (mut j, mut s, mut h) = (j0.clone(), vec![0f32; n], vec![0f32; n]);
                let mut rng = Rng::new(9);
                let mut w = Scratch::default();
                let st = if generic {
                    epoch_slices(
                        &mut j, &mut s, &mut h, false, &b, 0.7, &set, &mut rng, &mut w,
                    )
                } else {
                    let net = Net {
                        jt: &mut j,
                        sigma: &mut s,
                        field: &mut h,
                        field_valid: false,
                    };
                    network_epoch(net, &b, 0.7, &set, &mut rng, &mut w)
                };
                (j, s, st.dj_sq, st.vfe)
            };
            let (a, g) = (run(false), run(true));
            assert!(
                a.0.iter()
                    .zip(&g.0)
                    .all(|(x, y)| x.to_bits() == y.to_bits())
            );
            assert!(
                a.1.iter()
                    .zip(&g.1)
                    .all(|(x, y)| x.to_bits() == y.to_bits())
            );
            assert_eq!((a.2, a.3), (g.2, g.3));
        }
    }
}
