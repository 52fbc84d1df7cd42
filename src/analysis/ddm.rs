//! DDM measurements on trained networks (no CLI, no output files): simulation of the network or
//! the target (with the entropy-production estimator), drift and diffusion errors, the asymmetry
//! index, the largest Lyapunov exponent, well-to-well transitions, the switching protocol,
//! limit cycles, the kernel density of `ddm decompose` and the named tensors of `export`. The
//! operations on run directories that use them are in [`crate::api::ddm`].

use anyhow::{Result, bail};
use burn::tensor::{Device, Tensor};

use crate::models::ctrnn::{CtRnn, NetworkSde};
use crate::models::ddm::{Ddm, stationary_samples};
use crate::rng::Rng;
use crate::sde::Sde;
use crate::sde::solver::EulerMaruyama;
use crate::stats::mean_std;
use crate::transfer::{Pending, tensor2, tensor2_f32, to_vec_f32};

/// Output of [`simulate`].
pub struct SimOut {
    /// Latent states, `[n_rec][K][d]` row-major.
    pub frames: Vec<f32>,
    /// Recorded time points.
    pub n_rec: usize,
    /// Trajectories.
    pub k: usize,
    /// Latent dimension.
    pub d: usize,
    /// Time between records.
    pub dt_rec: f64,
    /// Stratonovich entropy-production estimate (per unit time), if asked for.
    pub epr: Option<f64>,
    /// Quadratic variation of the latent path per unit time, `Σ Δz Δzᵀ / T` (`[d, d]`),
    /// computed with the entropy production.
    pub qv: Option<Vec<f64>>,
}

impl SimOut {
    /// Trajectories as `[K, n_rec, d]`.
    pub fn by_trajectory(&self) -> Vec<f32> {
        let (k, n, d) = (self.k, self.n_rec, self.d);
        let mut out = vec![0f32; k * n * d];
        for t in 0..n {
            for i in 0..k {
                for j in 0..d {
                    out[(i * n + t) * d + j] = self.frames[(t * k + i) * d + j];
                }
            }
        }
        out
    }

    /// All recorded values of coordinate `j`.
    pub fn coord(&self, j: usize) -> Vec<f64> {
        self.frames
            .iter()
            .skip(j)
            .step_by(self.d)
            .map(|&x| x as f64)
            .collect()
    }

    /// Coordinate `j` of trajectory `i` over time.
    pub fn series(&self, i: usize, j: usize) -> Vec<f64> {
        (0..self.n_rec)
            .map(|t| self.frames[(t * self.k + i) * self.d + j] as f64)
            .collect()
    }
}

/// Settings of one simulation.
#[derive(Clone, Debug)]
pub struct SimSpec {
    /// Simulate the target SDE instead of the network.
    pub target: bool,
    /// Time step.
    pub dt: f64,
    /// Recorded duration (after burn-in).
    pub t_end: f64,
    /// Burn-in duration (not recorded).
    pub burn_in: f64,
    /// Noise multiplier.
    pub noise_scale: f64,
    /// Record every this many steps.
    pub record_every: usize,
    /// Accumulate the entropy-production estimator.
    pub epr: bool,
}

/// `D⁻¹` (row-major `[d, d]`) of `D = ½ G Gᵀ` for `G` `[d, m]`, when it is invertible.
fn dinv(g_or_a: &[f64], d: usize, m: usize) -> Option<Vec<f64>> {
    let dm = nalgebra::DMatrix::from_fn(d, d, |i, j| {
        0.5 * (0..m)
            .map(|k| g_or_a[i * m + k] * g_or_a[j * m + k])
            .sum::<f64>()
    });
    let inv = dm.try_inverse()?;
    let v: Vec<f64> = (0..d * d).map(|k| inv[(k / d, k % d)]).collect();
    v.iter().all(|x| x.is_finite()).then_some(v)
}

/// Simulates the full network (or the target) from latent states `z0` (`[K, d]`), with inputs
/// from `input(step)`, and records the latent state.
pub fn simulate(
    ddm: &Ddm,
    spec: &SimSpec,
    z0: &[f64],
    rng: &mut Rng,
    input: &mut dyn FnMut(usize) -> Option<Tensor<2>>,
) -> Result<SimOut> {
    let dev = &ddm.device;
    let d = ddm.target.dim();
    let k = z0.len() / d;
    let em = EulerMaruyama::new(spec.dt, spec.noise_scale)?;
    let net = &ddm.net;
    let netsde = NetworkSde(net);
    let sde: &dyn Sde = if spec.target { &ddm.target } else { &netsde };
    let z0t = tensor2(z0, k, d, dev);
    let readout = |x: &Tensor<2>| {
        if spec.target {
            x.clone()
        } else {
            net.readout(x.clone())
        }
    };
    let latent_drift = |z: Tensor<2>, u: Option<Tensor<2>>| {
        if spec.target {
            ddm.target.drift(z, u)
        } else {
            net.latent_drift(z, u.as_ref())
        }
    };
    let m = ddm.target.noise_dim();
    let dinv_t = if spec.epr {
        let g = if spec.target {
            ddm.target.g_const()
        } else {
            Some(to_vec_f32(&net.a)?.iter().map(|&x| x as f64).collect())
        };
        g.and_then(|g| dinv(&g, d, m))
            .map(|di| tensor2(&di, d, d, dev))
    } else {
        None
    };
    let mut x = if spec.target {
        z0t
    } else {
        net.embed(z0t, None)
    };
    let burn = (spec.burn_in / spec.dt).round() as usize;
    let steps = (spec.t_end / spec.dt).round() as usize;
    let every = spec.record_every.max(1);
    // Nothing is read back inside the loop: frames and the EPR / quadratic-variation partial
    // sums (one per 256 steps, summed in f64 at the end as before) stay on the device and come
    // back in one copy.
    let mut noise = em.noise(x.dims()[0], m, burn + steps, dev);
    for s in 0..burn {
        crate::progress::tick();
        let u = input(s);
        x = em.step_with(sde, x, u, noise.next(rng));
    }
    let mut frames = Pending::default();
    let mut z = readout(&x);
    frames.push(z.clone());
    let mut acc: Option<Tensor<2>> = None;
    let mut qv_acc: Option<Tensor<2>> = None;
    let mut partial_epr = Pending::default();
    let mut partial_qv = Pending::default();
    for s in 0..steps {
        crate::progress::tick();
        let u = input(burn + s);
        x = em.step_with(sde, x, u.clone(), noise.next(rng));
        let zn = readout(&x);
        if let Some(di) = &dinv_t {
            let zbar = (z.clone() + zn.clone()).mul_scalar(0.5);
            let f = latent_drift(zbar, u);
            let dz = zn.clone() - z.clone();
            let inc = (f.matmul(di.clone()) * dz.clone()).sum_dim(1);
            let q = dz.clone().transpose().matmul(dz);
            acc = Some(match acc {
                Some(a) => a + inc,
                None => inc,
            });
            qv_acc = Some(match qv_acc {
                Some(a) => a + q,
                None => q,
            });
            if (s + 1) % 256 == 0 {
                partial_epr.extend(acc.take());
                partial_qv.extend(qv_acc.take().map(|q| q.reshape([1, d * d])));
            }
        }
        z = zn;
        if (s + 1) % every == 0 {
            frames.push(z.clone());
        }
    }
    partial_epr.extend(acc.take());
    partial_qv.extend(qv_acc.take().map(|q| q.reshape([1, d * d])));
    let mut epr_sum = 0.0f64;
    if let Some(p) = partial_epr.into_tensor() {
        // Column sums of each block, in f64 and in the order the blocks were made.
        let v = to_vec_f32(&p)?;
        for chunk in v.chunks(k) {
            epr_sum += chunk.iter().map(|&v| v as f64).sum::<f64>();
        }
    }
    let mut qv_sum = vec![0.0f64; d * d];
    if let Some(p) = partial_qv.into_tensor() {
        for chunk in to_vec_f32(&p)?.chunks(d * d) {
            for (t, v) in qv_sum.iter_mut().zip(chunk) {
                *t += *v as f64;
            }
        }
    }
    let frames = match frames.into_tensor() {
        Some(f) => to_vec_f32(&f)?,
        None => Vec::new(),
    };
    if frames.iter().any(|v| !v.is_finite()) {
        bail!("the simulation diverged (NaN/inf): lower --dt");
    }
    let n_rec = frames.len() / (k * d);
    let t_tot = k as f64 * steps as f64 * spec.dt;
    let epr = dinv_t.as_ref().map(|_| epr_sum / t_tot);
    let qv = dinv_t
        .as_ref()
        .map(|_| qv_sum.iter().map(|v| v / t_tot).collect());
    Ok(SimOut {
        frames,
        n_rec,
        k,
        d,
        dt_rec: spec.dt * every as f64,
        epr,
        qv,
    })
}

/// Relative drift error on held-out stationary points (and their inputs).
pub fn drift_rel_err(ddm: &Ddm, points: usize, rng: &mut Rng) -> Result<f64> {
    let d = ddm.target.dim();
    let chains = points.clamp(1, 500);
    let x0 = tensor2(
        &ddm.target.initial_states(rng, chains),
        chains,
        d,
        &ddm.device,
    );
    let pts = stationary_samples(
        &ddm.target,
        x0,
        points,
        ddm.cfg.burn_in,
        ddm.cfg.thin,
        ddm.dt(),
        rng,
        &|x| x.clone(),
    )?;
    let n = pts.len() / d;
    let z = tensor2_f32(pts, n, d, &ddm.device);
    let p = ddm.target.inputs();
    let mut num = 0.0;
    let mut den = 0.0;
    for inp in ddm.target.input_values() {
        let u = (p > 0).then(|| {
            let flat: Vec<f64> = (0..n).flat_map(|_| inp.iter().copied()).collect();
            tensor2(&flat, n, p, &ddm.device)
        });
        let f = to_vec_f32(&ddm.target.drift(z.clone(), u.clone()))?;
        let fh = to_vec_f32(&ddm.net.latent_drift(z.clone(), u.as_ref()))?;
        num += f
            .iter()
            .zip(&fh)
            .map(|(a, b)| ((a - b) as f64).powi(2))
            .sum::<f64>();
        den += f.iter().map(|a| (*a as f64).powi(2)).sum::<f64>();
    }
    Ok((num / den.max(1e-300)).sqrt())
}

/// ‖AAᵀ − ggᵀ‖_F / ‖ggᵀ‖_F (constant target diffusion), else NaN.
pub fn diffusion_rel_err(ddm: &Ddm) -> Result<f64> {
    let Some(g) = ddm.target.g_const() else {
        return Ok(f64::NAN);
    };
    let (d, m) = (ddm.target.dim(), ddm.target.noise_dim());
    let a: Vec<f64> = to_vec_f32(&ddm.net.a)?.iter().map(|&x| x as f64).collect();
    let (mut num, mut den) = (0.0, 0.0);
    for i in 0..d {
        for j in 0..d {
            let gg: f64 = (0..m).map(|k| g[i * m + k] * g[j * m + k]).sum();
            let aa: f64 = (0..m).map(|k| a[i * m + k] * a[j * m + k]).sum();
            num += (aa - gg).powi(2);
            den += gg * gg;
        }
    }
    Ok((num / den).sqrt())
}

/// η = ‖W_a‖²/‖W‖² of the dense connectivity.
pub fn asymmetry_index(net: &CtRnn) -> Result<f64> {
    let w = net.dense_w();
    let n = net.shape.n;
    let v = to_vec_f32(&w)?;
    let (mut tot, mut anti) = (0.0, 0.0);
    for i in 0..n {
        for j in 0..n {
            let a = v[i * n + j] as f64;
            let b = v[j * n + i] as f64;
            tot += a * a;
            anti += (0.5 * (a - b)).powi(2);
        }
    }
    Ok(if tot > 0.0 { anti / tot } else { 0.0 })
}

/// Largest Lyapunov exponent of the noise-free latent flow (RK4, Benettin renormalisation),
/// averaged over the starting points `z0`.
pub fn lyapunov_max(
    sde: &dyn Sde,
    z0: &[f64],
    d: usize,
    dt: f64,
    t_total: f64,
    renorm: f64,
    device: &Device,
) -> Result<f64> {
    let k = z0.len() / d;
    let delta = 1e-6;
    let mut rng = Rng::new(17);
    let mut pert = Vec::with_capacity(k * d);
    for i in 0..k {
        let v: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
        let nv = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        for j in 0..d {
            pert.push(z0[i * d + j] + delta * v[j] / nv);
        }
    }
    let mut all = z0.to_vec();
    all.extend(pert);
    // f64 state on the host is not needed: the separation is renormalised before f32 rounding
    // dominates (delta 1e-6 relative to O(1) states would be too small in f32), so use 1e-3.
    let delta = 1e-3;
    let x = tensor2(&all, 2 * k, d, device);
    let rk4 = |x: Tensor<2>| crate::sde::solver::rk4_step(sde, x, dt);
    // Initial renormalisation to the working separation.
    let renorm_steps = ((renorm / dt).round() as usize).max(1);
    let blocks = ((t_total / renorm).round() as usize).max(1);
    // The renormalisation runs on the device (nothing is read back per block): each block
    // adds ln(|separation| / delta) per starting point to a device sum, read once at the end.
    let renormalise = |x: Tensor<2>| {
        let base = x.clone().narrow(0, 0, k);
        let sep = x.narrow(0, k, k) - base.clone();
        let ns = sep
            .clone()
            .powi_scalar(2)
            .sum_dim(1)
            .sqrt()
            .clamp_min(1e-30);
        let next = base.clone() + sep.div(ns.clone()).mul_scalar(delta);
        (Tensor::cat(vec![base, next], 0), ns.div_scalar(delta).log())
    };
    let (mut x, _) = renormalise(x);
    let mut sum_log: Option<Tensor<2>> = None;
    for _ in 0..blocks {
        for _ in 0..renorm_steps {
            crate::progress::tick();
            x = rk4(x);
        }
        let (next, logs) = renormalise(x);
        x = next;
        sum_log = Some(match sum_log {
            Some(s) => s + logs,
            None => logs,
        });
    }
    let sum_log = match sum_log {
        Some(s) => to_vec_f32(&s)?,
        None => vec![0.0; k],
    };
    if sum_log.iter().any(|a| !a.is_finite()) {
        bail!("the flow diverged while estimating the Lyapunov exponent");
    }
    let sum_log: Vec<f64> = sum_log.iter().map(|&v| v as f64).collect();
    let t = blocks as f64 * renorm_steps as f64 * dt;
    Ok(sum_log.iter().sum::<f64>() / (k as f64 * t))
}

/// Fraction of well-to-well transitions that go to the next well counter-clockwise
/// (index i → i+1 mod K), and the number of transitions, from core-to-core visits.
pub fn transition_stats(out: &SimOut, mem: &[Vec<f64>], core: f64) -> (f64, usize) {
    let kw = mem.len();
    let (mut fwd, mut tot) = (0usize, 0usize);
    for i in 0..out.k {
        let mut last: Option<usize> = None;
        for t in 0..out.n_rec {
            let z = &out.frames[(t * out.k + i) * out.d..(t * out.k + i) * out.d + 2];
            for (w, m) in mem.iter().enumerate() {
                let r2 = (z[0] as f64 - m[0]).powi(2) + (z[1] as f64 - m[1]).powi(2);
                if r2 < core * core {
                    if let Some(l) = last
                        && l != w
                    {
                        tot += 1;
                        if w == (l + 1) % kw {
                            fwd += 1;
                        }
                    }
                    last = Some(w);
                }
            }
        }
    }
    (
        if tot > 0 {
            fwd as f64 / tot as f64
        } else {
            f64::NAN
        },
        tot,
    )
}

fn nearest(z: &[f32], mem: &[Vec<f64>]) -> usize {
    let mut best = (0, f64::INFINITY);
    for (w, m) in mem.iter().enumerate() {
        let r2: f64 = m.iter().zip(z).map(|(a, b)| (a - *b as f64).powi(2)).sum();
        if r2 < best.1 {
            best = (w, r2);
        }
    }
    best.0
}

/// Input-switching protocol: from each memory, a pulse on channel μ ≠ start for `pulse` time
/// units, then `settle` units without input; success when the network ends in memory μ.
/// Also the share of spontaneous switches with u = 0 over `spont` time units.
pub fn switch_protocol(
    ddm: &Ddm,
    target: bool,
    trials: usize,
    pulse: f64,
    settle: f64,
    spont: f64,
    rng: &mut Rng,
) -> Result<(f64, f64)> {
    let mem = ddm.target.memories();
    let kw = mem.len();
    let p = ddm.target.inputs();
    let d = 2;
    let dt = ddm.target.default_dt();
    let mut z0 = Vec::new();
    let mut goal = Vec::new();
    let mut uflat = Vec::new();
    for t in 0..trials {
        let s = t % kw;
        let mu = (s + 1 + (t / kw) % (kw - 1)) % kw;
        z0.extend_from_slice(&mem[s]);
        goal.push(mu);
        let mut u = vec![0.0; p];
        u[mu] = 1.0;
        uflat.extend(u);
    }
    let n = trials;
    let u_on = tensor2(&uflat, n, p, &ddm.device);
    let pulse_steps = (pulse / dt).round() as usize;
    let spec = SimSpec {
        target,
        dt,
        t_end: pulse + settle,
        burn_in: 0.0,
        noise_scale: 1.0,
        record_every: ((pulse + settle) / dt).round() as usize,
        epr: false,
    };
    let out = simulate(ddm, &spec, &z0, rng, &mut |s| {
        if s < pulse_steps {
            Some(u_on.clone())
        } else {
            None
        }
    })?;
    let last = &out.frames[(out.n_rec - 1) * n * d..];
    let ok = (0..n)
        .filter(|&i| nearest(&last[i * d..(i + 1) * d], &mem) == goal[i])
        .count();
    // Spontaneous switches.
    let z0s: Vec<f64> = (0..trials).flat_map(|t| mem[t % kw].clone()).collect();
    let spec2 = SimSpec {
        t_end: spont,
        record_every: (spont / dt).round() as usize,
        ..spec
    };
    let out2 = simulate(ddm, &spec2, &z0s, rng, &mut |_| None)?;
    let last2 = &out2.frames[(out2.n_rec - 1) * n * d..];
    let moved = (0..n)
        .filter(|&i| nearest(&last2[i * d..(i + 1) * d], &mem) != i % kw)
        .count();
    Ok((ok as f64 / n as f64, moved as f64 / n as f64))
}

/// Noise-free limit cycle of the network: (mean radius, period) from one orbit.
pub fn limit_cycle(ddm: &Ddm, target: bool) -> Result<(f64, f64)> {
    let dt = 1e-3;
    let spec = SimSpec {
        target,
        dt,
        t_end: 40.0,
        burn_in: 20.0,
        noise_scale: 0.0,
        record_every: 1,
        epr: false,
    };
    let mut rng = Rng::new(0);
    let out = simulate(ddm, &spec, &[0.5, 0.0], &mut rng, &mut |_| None)?;
    let x = out.series(0, 0);
    let y = out.series(0, 1);
    let r: Vec<f64> = x
        .iter()
        .zip(&y)
        .map(|(a, b)| (a * a + b * b).sqrt())
        .collect();
    let (rm, _) = mean_std(&r);
    let mut ups = Vec::new();
    for t in 1..x.len() {
        if x[t - 1] < 0.0 && x[t] >= 0.0 {
            let frac = -x[t - 1] / (x[t] - x[t - 1]);
            ups.push((t as f64 - 1.0 + frac) * out.dt_rec);
        }
    }
    let period = if ups.len() >= 2 {
        (ups[ups.len() - 1] - ups[0]) / (ups.len() - 1) as f64
    } else {
        f64::NAN
    };
    Ok((rm, period))
}

/// Gaussian-kernel density of the simulated latent states on the grid points (normalised to
/// sum 1 over the grid for d ≥ 2; a density on the line for d = 1).
pub(crate) fn kde_grid(
    out: &SimOut,
    gx: &[f64],
    gy: &[f64],
    d: usize,
    bbox: &[(f64, f64)],
) -> Vec<f64> {
    let n = out.frames.len() / d;
    let stride = (n / 20000).max(1);
    let bw: Vec<f64> = (0..d.min(2))
        .map(|j| (bbox[j].1 - bbox[j].0) / 30.0)
        .collect();
    let mut dens = vec![0.0; gx.len()];
    let mut cnt = 0.0;
    for s in (0..n).step_by(stride) {
        let x = out.frames[s * d] as f64;
        let y = if d >= 2 {
            out.frames[s * d + 1] as f64
        } else {
            0.0
        };
        cnt += 1.0;
        for (i, v) in dens.iter_mut().enumerate() {
            let mut q = ((gx[i] - x) / bw[0]).powi(2);
            if d >= 2 {
                q += ((gy[i] - y) / bw[1]).powi(2);
            }
            if q < 25.0 {
                *v += (-0.5 * q).exp();
            }
        }
    }
    let norm = if d == 1 {
        cnt * bw[0] * (2.0 * std::f64::consts::PI).sqrt()
    } else {
        dens.iter().sum::<f64>().max(1e-300)
    };
    dens.iter_mut().for_each(|v| *v /= norm);
    dens
}

/// Named tensors for `export` (the paper's names: U, V, c, h, A, W, Sigma, b, B_in, M).
/// A named f32 tensor: name, shape, row-major values.
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// Named tensors for `export`.
pub fn export_tensors(ddm: &Ddm) -> Result<Vec<NamedTensor>> {
    let net = &ddm.net;
    let mut out = Vec::new();
    let mut put = |name: &str, t: &Tensor<2>| -> Result<()> {
        let [r, c] = t.dims();
        out.push((name.to_string(), vec![r, c], to_vec_f32(t)?));
        Ok(())
    };
    put("U", &net.u)?;
    match net.shape.conn {
        crate::models::ctrnn::Connectivity::LowRank => put("V", &net.read)?,
        crate::models::ctrnn::Connectivity::Symmetric => put("P_sym", &net.read)?,
        crate::models::ctrnn::Connectivity::FullRank => {}
    }
    put("c", &net.c)?;
    put("h", &net.h)?;
    put("A", &net.a)?;
    put("W", &net.dense_w())?;
    put("Sigma", &net.sigma())?;
    put("b", &net.bias())?;
    if net.shape.p > 0 {
        put("B_in", &net.b_in())?;
        put("M", &net.min)?;
    }
    Ok(out)
}
