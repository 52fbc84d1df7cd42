//! Simulation, evaluation, decomposition and export of trained DDM networks.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor};
use clap::Args;
use serde_json::{Value, json};

use super::stats::{count_switches, hist_l1, hist_l1_density, mean_std};
use crate::checkpoint;
use crate::models::ctrnn::{CtRnn, LatentSde, NetworkSde};
use crate::models::ddm::{Ddm, DdmConfig, load_network, stationary_samples, streams};
use crate::plot::{Figure, palette};
use crate::rng::Rng;
use crate::run::RunDir;
use crate::sde::Sde;
use crate::sde::builtin::Kind;
use crate::sde::solver::EulerMaruyama;
use crate::transfer::{Pending, tensor2, tensor2_f32, to_vec_f32};

/// A trained run loaded for analysis.
pub struct Loaded {
    /// The run directory.
    pub rd: RunDir,
    /// Target and trained network.
    pub ddm: Ddm,
    /// Training step of the checkpoint.
    pub step: u64,
    /// Sampling box of training.
    pub bbox: Vec<(f64, f64)>,
}

/// Loads the newest checkpoint of a DDM run.
pub fn load_run(dir: &std::path::Path, device: &Device) -> Result<Loaded> {
    let rd = RunDir::open(dir)?;
    let meta = rd.meta()?;
    if meta.model != "ddm" {
        bail!(
            "{} holds a `{}` run, not a DDM one",
            dir.display(),
            meta.model
        );
    }
    let cfg: DdmConfig = rd.config_or(&DdmConfig::new())?;
    let ck = checkpoint::load_latest(rd.path())?
        .with_context(|| format!("{} has no checkpoint yet", rd.path().display()))?;
    let ddm = load_network(&cfg, &ck, device)?;
    let bbox: Vec<(f64, f64)> = ck
        .extra
        .get("bbox")
        .cloned()
        .map(serde_json::from_value)
        .transpose()?
        .unwrap_or_default();
    Ok(Loaded {
        rd,
        ddm,
        step: ck.step,
        bbox,
    })
}

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

/// Arguments of `ddm simulate`.
#[derive(Args, Debug, Clone)]
pub struct SimulateArgs {
    /// Run directory.
    #[arg(long)]
    pub run_dir: PathBuf,
    /// Simulated time.
    #[arg(long, default_value_t = 50.0)]
    pub t_end: f64,
    /// Time step (default: the target's).
    #[arg(long)]
    pub dt: Option<f64>,
    /// Number of trajectories K.
    #[arg(long, default_value_t = 8)]
    pub trajectories: usize,
    /// Noise multiplier (0: deterministic flow).
    #[arg(long, default_value_t = 1.0)]
    pub noise_scale: f64,
    /// Simulate the target SDE instead of the network.
    #[arg(long)]
    pub target: bool,
    /// Record every this many steps (default: so that about 2000 points are kept).
    #[arg(long)]
    pub record_every: Option<usize>,
    /// Output name stem (default: simulate or simulate_target).
    #[arg(long)]
    pub out: Option<String>,
}

/// `ddm simulate`: writes `<out>.npy` (`[K, steps, d]`), `<out>.png` and `<out>.json`.
pub fn simulate_cmd(
    a: &SimulateArgs,
    device: &Device,
    seed: Option<u64>,
    quiet: bool,
) -> Result<()> {
    let l = load_run(&a.run_dir, device)?;
    let ddm = &l.ddm;
    let dt = a.dt.unwrap_or(ddm.target.default_dt());
    if !(a.t_end.is_finite() && a.t_end > 0.0) {
        bail!("--t-end must be > 0, got {}", a.t_end);
    }
    if !(dt.is_finite() && dt > 0.0) {
        bail!("--dt: dt must be a positive number, got {dt}");
    }
    if a.t_end / dt > 1e9 {
        bail!(
            "--t-end {} / --dt {dt} is {:.3e} steps: absurdly many (limit 1e9)",
            a.t_end,
            a.t_end / dt
        );
    }
    if a.trajectories == 0 {
        bail!("--trajectories must be >= 1");
    }
    let steps = (a.t_end / dt).round().max(1.0) as usize;
    let every = a.record_every.unwrap_or((steps / 2000).max(1));
    if every == 0 {
        bail!("--record-every must be >= 1");
    }
    crate::error::check_memory(
        &format!(
            "{} trajectories recorded at {} points",
            a.trajectories,
            steps / every + 1
        ),
        8.0 * a.trajectories as f64
            * ((steps / every + 1) as f64 * 4.0 + 8.0 * ddm.cfg.neurons as f64),
    )?;
    let mut rng = Rng::derived(seed.unwrap_or(ddm.cfg.seed), streams::EVAL);
    let z0 = ddm.target.initial_states(&mut rng, a.trajectories);
    let spec = SimSpec {
        target: a.target,
        dt,
        t_end: a.t_end,
        burn_in: 0.0,
        noise_scale: a.noise_scale,
        record_every: every,
        epr: false,
    };
    let bar = crate::progress::scope(steps as u64, "simulate", quiet);
    let out = simulate(ddm, &spec, &z0, &mut rng, &mut |_| None)?;
    drop(bar);
    let stem = a.out.clone().unwrap_or_else(|| {
        if a.target {
            "simulate_target".into()
        } else {
            "simulate".into()
        }
    });
    let npy = l.rd.file(&format!("{stem}.npy"));
    crate::npy::write_npy_f32(&npy, &[out.k, out.n_rec, out.d], &out.by_trajectory())?;
    let png = l.rd.file(&format!("{stem}.png"));
    plot_trajectories(
        &out,
        if a.target {
            "target SDE"
        } else {
            "network (latent read-out)"
        },
        &png,
    )?;
    l.rd.write_json(
        &format!("{stem}.json"),
        &json!({"dt": dt, "record_every": every, "dt_record": out.dt_rec, "t_end": a.t_end,
                "trajectories": out.k, "steps": out.n_rec, "d": out.d, "noise_scale": a.noise_scale,
                "target": a.target, "npy": npy.file_name().map(|n| n.to_string_lossy().to_string())}),
    )?;
    if !quiet {
        log::info!(
            "wrote {} ({} x {} x {}) and {}",
            npy.display(),
            out.k,
            out.n_rec,
            out.d,
            png.display()
        );
    }
    Ok(())
}

/// Time series (first trajectories) and phase portrait (projections for d = 3).
pub fn plot_trajectories(out: &SimOut, title: &str, path: &std::path::Path) -> Result<()> {
    let d = out.d;
    let cols = if d <= 2 { 2 } else { 3 };
    let mut fig = Figure::new(cols, 1, 420, 360);
    fig.set_title(title);
    let t: Vec<f64> = (0..out.n_rec).map(|i| i as f64 * out.dt_rec).collect();
    {
        let ax = fig.axes(0, 0);
        ax.set_title("time series (trajectory 1)")
            .set_xlabel("t")
            .set_ylabel("z");
        for j in 0..d {
            ax.line(&t, &out.series(0, j), palette(j));
        }
        let names: Vec<String> = (0..d).map(|j| format!("z{}", j + 1)).collect();
        let entries: Vec<(&str, [u8; 3])> = names
            .iter()
            .enumerate()
            .map(|(j, n)| (n.as_str(), palette(j)))
            .collect();
        ax.legend(&entries);
    }
    if d == 1 {
        let ax = fig.axes(1, 0);
        let xs = out.coord(0);
        let (lo, hi) = xs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        let h = super::stats::histogram(&xs, lo, hi + 1e-9, 50);
        let w = (hi - lo) / 50.0;
        let cx: Vec<f64> = (0..50).map(|i| lo + (i as f64 + 0.5) * w).collect();
        let dens: Vec<f64> = h.iter().map(|v| v / w.max(1e-12)).collect();
        ax.set_title("histogram")
            .set_xlabel("z1")
            .set_ylabel("density")
            .line(&cx, &dens, palette(0));
    } else {
        {
            let ax = fig.axes(1, 0);
            ax.set_title("phase portrait")
                .set_xlabel("z1")
                .set_ylabel(if d == 2 { "z2" } else { "z3" });
            let b = if d == 2 { 1 } else { 2 };
            for i in 0..out.k.min(8) {
                ax.line(&out.series(i, 0), &out.series(i, b), palette(i));
            }
        }
        if d >= 3 {
            // Oblique 3-D projection: rotate (z1, z2) by 35° and tilt by 20°.
            let (ca, sa) = (35f64.to_radians().cos(), 35f64.to_radians().sin());
            let (ct, st) = (20f64.to_radians().cos(), 20f64.to_radians().sin());
            let ax = fig.axes(2, 0);
            ax.set_title("3-D projection (z1, z2, z3)")
                .set_axis_visible(false);
            for i in 0..out.k.min(8) {
                let (z1, z2, z3) = (out.series(i, 0), out.series(i, 1), out.series(i, 2));
                let px: Vec<f64> = z1.iter().zip(&z2).map(|(a, b)| a * ca - b * sa).collect();
                let py: Vec<f64> = (0..z1.len())
                    .map(|t| z3[t] * ct + (z1[t] * sa + z2[t] * ca) * st)
                    .collect();
                ax.line(&px, &py, palette(i));
            }
        }
    }
    fig.save_png(path)
}

/// Arguments of `ddm eval`.
#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// Run directory.
    #[arg(long)]
    pub run_dir: PathBuf,
    /// Simulated time per trajectory for the statistics (default: 500, or 1e5 steps).
    #[arg(long)]
    pub t_end: Option<f64>,
    /// Trajectories simulated in parallel.
    #[arg(long, default_value_t = 64)]
    pub trajectories: usize,
    /// Held-out stationary points for the drift error.
    #[arg(long, default_value_t = 20000)]
    pub points: usize,
    /// Burn-in before statistics.
    #[arg(long, default_value_t = 20.0)]
    pub burn_in: f64,
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

/// All evaluation metrics of a run (the contents of `eval.json`).
pub fn evaluate(ddm: &Ddm, a: &EvalArgs, seed: u64, quiet: bool) -> Result<Value> {
    let mut rng = Rng::derived(seed, streams::EVAL);
    let d = ddm.target.dim();
    let dt = ddm.target.default_dt();
    let t_end = a.t_end.unwrap_or((1e5 * dt).min(500.0));
    let say = |s: &str| {
        if !quiet {
            log::info!("eval: {s}");
        }
    };
    let mut r = serde_json::Map::new();
    say("drift error on held-out stationary points");
    r.insert(
        "drift_rel_err".into(),
        drift_rel_err(ddm, a.points, &mut rng)?.into(),
    );
    r.insert(
        "diffusion_rel_err".into(),
        json_num(diffusion_rel_err(ddm)?),
    );
    r.insert("asymmetry_index".into(), asymmetry_index(&ddm.net)?.into());
    say("simulating network and target");
    let z0 = ddm.target.initial_states(&mut rng, a.trajectories);
    let spec = SimSpec {
        target: false,
        dt,
        t_end,
        burn_in: a.burn_in,
        noise_scale: 1.0,
        record_every: ((0.05 / dt).round() as usize).max(1),
        epr: true,
    };
    let net_out = simulate(ddm, &spec, &z0, &mut rng, &mut |_| None)?;
    let tgt_out = simulate(
        ddm,
        &SimSpec {
            target: true,
            ..spec.clone()
        },
        &z0,
        &mut rng,
        &mut |_| None,
    )?;
    let l1: Vec<f64> = (0..d)
        .map(|j| hist_l1(&net_out.coord(j), &tgt_out.coord(j), 60))
        .collect();
    r.insert("hist_l1".into(), (l1.iter().sum::<f64>() / d as f64).into());
    r.insert("hist_l1_per_coord".into(), json!(l1));
    r.insert(
        "epr_model".into(),
        json_num(net_out.epr.unwrap_or(f64::NAN)),
    );
    r.insert(
        "epr_target".into(),
        json_num(tgt_out.epr.unwrap_or(f64::NAN)),
    );
    if let Some(e) = ddm.target.epr_theory() {
        r.insert("epr_theory".into(), e.into());
    }
    // Stationary covariance and quadratic variation of the latent path.
    let cov = |o: &SimOut| -> Vec<f64> {
        let mut c = vec![0.0; d * d];
        let cols: Vec<Vec<f64>> = (0..d).map(|j| o.coord(j)).collect();
        let means: Vec<f64> = cols.iter().map(|c| mean_std(c).0).collect();
        let n = cols[0].len() as f64;
        for i in 0..d {
            for j in 0..d {
                c[i * d + j] = cols[i]
                    .iter()
                    .zip(&cols[j])
                    .map(|(a, b)| (a - means[i]) * (b - means[j]))
                    .sum::<f64>()
                    / n;
            }
        }
        c
    };
    r.insert("cov_model".into(), json!(cov(&net_out)));
    if let (Some(qv), Some(g)) = (&net_out.qv, ddm.target.g_const()) {
        let m = ddm.target.noise_dim();
        let (mut num, mut den) = (0.0, 0.0);
        for i in 0..d {
            for j in 0..d {
                let gg: f64 = (0..m).map(|k| g[i * m + k] * g[j * m + k]).sum();
                num += (qv[i * d + j] - gg).powi(2);
                den += gg * gg;
            }
        }
        r.insert("quadratic_variation".into(), json!(qv));
        r.insert(
            "quadratic_variation_rel_err".into(),
            json_num((num / den).sqrt()),
        );
    }
    r.insert("cov_target".into(), json!(cov(&tgt_out)));
    r.insert("sim_t_end".into(), t_end.into());
    r.insert("sim_dt".into(), dt.into());
    r.insert("sim_trajectories".into(), a.trajectories.into());
    match ddm.target.builtin_kind() {
        Some(Kind::DoubleWell) => {
            let sigma = ddm.target.param("sigma");
            let z1 = net_out.coord(0);
            if d == 1 {
                let l1x = hist_l1_density(&z1, -2.5, 2.5, 60, |z| {
                    (-2.0 * (z.powi(4) / 4.0 - z * z / 2.0) / (sigma * sigma)).exp()
                });
                r.insert("hist_l1_exact".into(), l1x.into());
            }
            let t_tot = net_out.n_rec as f64 * net_out.dt_rec;
            let res = |o: &SimOut| {
                let sw: usize = (0..o.k).map(|i| count_switches(&o.series(i, 0), 0.5)).sum();
                if sw > 0 {
                    o.k as f64 * t_tot / sw as f64
                } else {
                    f64::INFINITY
                }
            };
            r.insert("mean_residence_model".into(), json_num(res(&net_out)));
            r.insert("mean_residence_target".into(), json_num(res(&tgt_out)));
        }
        Some(Kind::StuartLandau) => {
            say("noise-free limit cycle");
            let (rm, pm) = limit_cycle(ddm, false)?;
            let (rt, pt) = limit_cycle(ddm, true)?;
            r.insert("cycle_radius".into(), json_num(rm));
            r.insert("cycle_period".into(), json_num(pm));
            r.insert("cycle_radius_target".into(), json_num(rt));
            r.insert("cycle_period_target".into(), json_num(pt));
        }
        Some(Kind::Lorenz) => {
            say("largest Lyapunov exponent");
            let starts: Vec<f64> = net_out.frames[(net_out.n_rec - 1) * net_out.k * d..]
                .iter()
                .take(8 * d)
                .map(|&x| x as f64)
                .collect();
            let lat = LatentSde(&ddm.net);
            r.insert(
                "lyapunov_max".into(),
                json_num(lyapunov_max(
                    &lat,
                    &starts,
                    d,
                    0.01,
                    200.0,
                    0.1,
                    &ddm.device,
                )?),
            );
            r.insert(
                "lyapunov_target".into(),
                json_num(lyapunov_max(
                    &ddm.target,
                    &starts,
                    d,
                    0.01,
                    200.0,
                    0.1,
                    &ddm.device,
                )?),
            );
            let t_tot = net_out.n_rec as f64 * net_out.dt_rec * net_out.k as f64;
            let sw = |o: &SimOut| {
                (0..o.k)
                    .map(|i| count_switches(&o.series(i, 0), 0.3))
                    .sum::<usize>() as f64
                    / t_tot
            };
            r.insert("lobe_switch_rate_model".into(), json_num(sw(&net_out)));
            r.insert("lobe_switch_rate_target".into(), json_num(sw(&tgt_out)));
        }
        Some(Kind::MultiwellCycle) => {
            let mem = ddm.target.memories();
            let core = 0.4 * ddm.target.param("radius");
            let (fm, nm) = transition_stats(&net_out, &mem, core);
            let (ft, nt) = transition_stats(&tgt_out, &mem, core);
            // "Forward" is the target's dominant cyclic direction.
            let (fm, ft) = if ft >= 0.5 {
                (fm, ft)
            } else {
                (1.0 - fm, 1.0 - ft)
            };
            r.insert("forward_transition_frac".into(), json_num(fm));
            r.insert("forward_transition_frac_target".into(), json_num(ft));
            r.insert("transitions_model".into(), nm.into());
            r.insert("transitions_target".into(), nt.into());
        }
        Some(Kind::MultiwellSwitch) => {
            say("switching protocol");
            let (ok, spont) = switch_protocol(ddm, false, 99, 3.0, 10.0, 50.0, &mut rng)?;
            r.insert("switch_success".into(), ok.into());
            r.insert("spontaneous_switch_frac".into(), spont.into());
            let (ok, spont) = switch_protocol(ddm, true, 99, 3.0, 10.0, 50.0, &mut rng)?;
            r.insert("switch_success_target".into(), ok.into());
            r.insert("spontaneous_switch_frac_target".into(), spont.into());
        }
        _ => {}
    }
    Ok(Value::Object(r))
}

fn json_num(x: f64) -> Value {
    if x.is_finite() { x.into() } else { Value::Null }
}

/// `ddm eval`: writes `DIR/eval.json` and prints it.
pub fn eval_cmd(a: &EvalArgs, device: &Device, seed: Option<u64>, quiet: bool) -> Result<()> {
    let l = load_run(&a.run_dir, device)?;
    if a.trajectories == 0 || a.points == 0 {
        bail!("--trajectories and --points must be >= 1");
    }
    if let Some(t) = a.t_end
        && !(t.is_finite() && t > 0.0)
    {
        bail!("--t-end must be > 0, got {t}");
    }
    let bar = crate::progress::scope(0, "eval", quiet);
    let mut v = evaluate(&l.ddm, a, seed.unwrap_or(l.ddm.cfg.seed), quiet)?;
    drop(bar);
    v["step"] = l.step.into();
    let p = l.rd.write_json("eval.json", &v)?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    if !quiet {
        log::info!("wrote {}", p.display());
    }
    Ok(())
}

/// Arguments of `ddm decompose`.
#[derive(Args, Debug, Clone)]
pub struct DecomposeArgs {
    /// Run directory.
    #[arg(long)]
    pub run_dir: PathBuf,
    /// Grid points per axis of the field plots.
    #[arg(long, default_value_t = 21)]
    pub grid: usize,
    /// Simulated time for the entropy production and the density.
    #[arg(long, default_value_t = 300.0)]
    pub t_end: f64,
    /// Trajectories.
    #[arg(long, default_value_t = 32)]
    pub trajectories: usize,
}

/// `ddm decompose`: drift fields of W, W_s and W_a; reversible/irreversible parts; EPR.
pub fn decompose_cmd(
    a: &DecomposeArgs,
    device: &Device,
    seed: Option<u64>,
    quiet: bool,
) -> Result<()> {
    let l = load_run(&a.run_dir, device)?;
    let _bar = crate::progress::scope(0, "decompose", quiet);
    let ddm = &l.ddm;
    let d = ddm.target.dim();
    let dev = &ddm.device;
    let w = ddm.net.dense_w();
    let ws = (w.clone() + w.clone().transpose()).mul_scalar(0.5);
    let net_s = ddm.net.with_dense(ws);
    let mut rng = Rng::derived(seed.unwrap_or(ddm.cfg.seed), streams::EVAL);
    let dt = ddm.target.default_dt();
    let z0 = ddm.target.initial_states(&mut rng, a.trajectories);
    let spec = SimSpec {
        target: false,
        dt,
        t_end: a.t_end,
        burn_in: 20.0,
        noise_scale: 1.0,
        record_every: ((0.05 / dt).round() as usize).max(1),
        epr: true,
    };
    let full = simulate(ddm, &spec, &z0, &mut rng, &mut |_| None)?;
    let ddm_s = Ddm {
        net: net_s.clone(),
        ..ddm.clone()
    };
    let sym = simulate(&ddm_s, &spec, &z0, &mut rng, &mut |_| None)?;
    // Share of the drift carried by the antisymmetric part at stationary states.
    let zs = tensor2_f32(full.frames.clone(), full.frames.len() / d, d, dev);
    let f = to_vec_f32(&ddm.net.latent_drift(zs.clone(), None))?;
    let fs = to_vec_f32(&net_s.latent_drift(zs, None))?;
    let (mut na, mut nf) = (0.0, 0.0);
    for (x, y) in f.iter().zip(&fs) {
        na += ((x - y) as f64).powi(2);
        nf += (*x as f64).powi(2);
    }
    let frac_anti = (na / nf.max(1e-300)).sqrt();
    let mut report = serde_json::Map::new();
    report.insert("epr_model".into(), json_num(full.epr.unwrap_or(f64::NAN)));
    report.insert(
        "epr_symmetric_only".into(),
        json_num(sym.epr.unwrap_or(f64::NAN)),
    );
    report.insert("asymmetry_index".into(), asymmetry_index(&ddm.net)?.into());
    report.insert("antisymmetric_drift_frac".into(), frac_anti.into());
    if let Some(e) = ddm.target.epr_theory() {
        report.insert("epr_theory".into(), e.into());
    }
    // Fields on a grid over the training box (d = 1: a line; d >= 2: the (z1, z2) plane through
    // the mean of the other coordinates).
    let bbox = if l.bbox.len() == d {
        l.bbox.clone()
    } else {
        vec![(-2.0, 2.0); d]
    };
    let g = a.grid.clamp(5, 101);
    let means: Vec<f64> = (0..d).map(|j| mean_std(&full.coord(j)).0).collect();
    let (gx, gy): (Vec<f64>, Vec<f64>) = if d == 1 {
        (
            (0..g)
                .map(|i| bbox[0].0 + (bbox[0].1 - bbox[0].0) * i as f64 / (g - 1) as f64)
                .collect(),
            vec![0.0; g],
        )
    } else {
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for j in 0..g {
            for i in 0..g {
                xs.push(bbox[0].0 + (bbox[0].1 - bbox[0].0) * i as f64 / (g - 1) as f64);
                ys.push(bbox[1].0 + (bbox[1].1 - bbox[1].0) * j as f64 / (g - 1) as f64);
            }
        }
        (xs, ys)
    };
    let npts = gx.len();
    let mut grid = Vec::with_capacity(npts * d);
    for i in 0..npts {
        for (j, m) in means.iter().enumerate() {
            grid.push(match j {
                0 => gx[i],
                1 => gy[i],
                _ => *m,
            });
        }
    }
    let zg = tensor2(&grid, npts, d, dev);
    let fg = to_vec_f32(&ddm.net.latent_drift(zg.clone(), None))?;
    let fsg = to_vec_f32(&net_s.latent_drift(zg, None))?;
    let comp =
        |v: &[f32], j: usize| -> Vec<f64> { (0..npts).map(|i| v[i * d + j] as f64).collect() };
    let fag: Vec<f32> = fg.iter().zip(&fsg).map(|(a, b)| a - b).collect();
    // Reversible part D ∇log p from a smoothed histogram of the stationary samples.
    let dm: Vec<f64> = {
        let a_: Vec<f64> = to_vec_f32(&ddm.net.a)?.iter().map(|&x| x as f64).collect();
        let m = ddm.net.shape.m;
        (0..d * d)
            .map(|ij| {
                0.5 * (0..m)
                    .map(|k| a_[(ij / d) * m + k] * a_[(ij % d) * m + k])
                    .sum::<f64>()
            })
            .collect()
    };
    let dens = kde_grid(&full, &gx, &gy, d, &bbox);
    let mut frev = vec![0.0f64; npts * d];
    if d >= 2 {
        let hx = (bbox[0].1 - bbox[0].0) / (g - 1) as f64;
        let hy = (bbox[1].1 - bbox[1].0) / (g - 1) as f64;
        for j in 0..g {
            for i in 0..g {
                let idx = j * g + i;
                let lp = |ii: usize, jj: usize| dens[jj * g + ii].max(1e-12).ln();
                let dlx = (lp((i + 1).min(g - 1), j) - lp(i.saturating_sub(1), j))
                    / (hx * ((i + 1).min(g - 1) - i.saturating_sub(1)) as f64);
                let dly = (lp(i, (j + 1).min(g - 1)) - lp(i, j.saturating_sub(1)))
                    / (hy * ((j + 1).min(g - 1) - j.saturating_sub(1)) as f64);
                frev[idx * d] = dm[0] * dlx + dm[1] * dly;
                frev[idx * d + 1] = dm[d] * dlx + dm[d + 1] * dly;
            }
        }
    }
    let firr: Vec<f64> = (0..npts * d).map(|i| fg[i] as f64 - frev[i]).collect();
    // EPR from the grid: Φ ≈ Σ p f_irrᵀ D⁻¹ f_irr (2-D only; an independent check).
    if d == 2
        && let Some(di) = nalgebra::Matrix2::from_row_slice(&dm).try_inverse()
    {
        let tot: f64 = dens.iter().sum();
        let mut phi = 0.0;
        for i in 0..npts {
            let v = [firr[i * 2], firr[i * 2 + 1]];
            let q = v[0] * (di[(0, 0)] * v[0] + di[(0, 1)] * v[1])
                + v[1] * (di[(1, 0)] * v[0] + di[(1, 1)] * v[1]);
            phi += dens[i] * q;
        }
        report.insert("epr_grid_estimate".into(), json_num(phi / tot.max(1e-300)));
    }
    // Plots.
    let p1 = l.rd.file("decompose_asymmetry.png");
    let p2 = l.rd.file("decompose_irreversibility.png");
    if d == 1 {
        let mut fig = Figure::new(1, 1, 520, 380);
        let ax = fig.axes(0, 0);
        ax.set_title("drift: full (blue), W_s only (orange), W_a part (green)")
            .set_xlabel("z1")
            .set_ylabel("F(z)");
        ax.line(&gx, &comp(&fg, 0), palette(0))
            .line(&gx, &comp(&fsg, 0), palette(1))
            .line(&gx, &comp(&fag, 0), palette(2))
            .hline(0.0, [128, 128, 128]);
        fig.save_png(&p1)?;
        let mut fig = Figure::new(1, 1, 520, 380);
        let ax = fig.axes(0, 0);
        ax.set_title("stationary density (1-D: detailed balance, f_irr = 0)")
            .set_xlabel("z1")
            .set_ylabel("p");
        ax.line(&gx, &dens, palette(0));
        fig.save_png(&p2)?;
    } else {
        let mut fig = Figure::new(2, 2, 400, 380);
        fig.set_title("asymmetry decomposition of the latent drift (z1, z2 plane)");
        fig.axes(0, 0)
            .set_title("F: full W")
            .set_xlabel("z1")
            .set_ylabel("z2")
            .quiver(&gx, &gy, &comp(&fg, 0), &comp(&fg, 1), palette(0));
        fig.axes(1, 0)
            .set_title("F_s: W_s only")
            .set_xlabel("z1")
            .set_ylabel("z2")
            .quiver(&gx, &gy, &comp(&fsg, 0), &comp(&fsg, 1), palette(1));
        fig.axes(0, 1)
            .set_title("F_a = F - F_s")
            .set_xlabel("z1")
            .set_ylabel("z2")
            .quiver(&gx, &gy, &comp(&fag, 0), &comp(&fag, 1), palette(2));
        let ratio: Vec<f64> = (0..npts)
            .map(|i| {
                let a = ((fag[i * d] as f64).powi(2) + (fag[i * d + 1] as f64).powi(2)).sqrt();
                let f = ((fg[i * d] as f64).powi(2) + (fg[i * d + 1] as f64).powi(2)).sqrt();
                a / f.max(1e-9)
            })
            .collect();
        fig.axes(1, 1)
            .set_title("|F_a| / |F|")
            .set_xlabel("z1")
            .set_ylabel("z2")
            .heatmap(&ratio, g, g, bbox[0], bbox[1]);
        fig.save_png(&p1)?;
        let mut fig = Figure::new(3, 1, 400, 380);
        fig.set_title("time-irreversibility: F = f_rev + f_irr, f_rev = D grad log p");
        fig.axes(0, 0)
            .set_title("stationary density p")
            .set_xlabel("z1")
            .set_ylabel("z2")
            .heatmap(&dens, g, g, bbox[0], bbox[1]);
        let rx: Vec<f64> = (0..npts).map(|i| frev[i * d]).collect();
        let ry: Vec<f64> = (0..npts).map(|i| frev[i * d + 1]).collect();
        let ix: Vec<f64> = (0..npts).map(|i| firr[i * d]).collect();
        let iy: Vec<f64> = (0..npts).map(|i| firr[i * d + 1]).collect();
        fig.axes(1, 0)
            .set_title("f_rev (reversible)")
            .set_xlabel("z1")
            .set_ylabel("z2")
            .quiver(&gx, &gy, &rx, &ry, palette(0));
        fig.axes(2, 0)
            .set_title("f_irr (irreversible)")
            .set_xlabel("z1")
            .set_ylabel("z2")
            .quiver(&gx, &gy, &ix, &iy, palette(3));
        fig.save_png(&p2)?;
    }
    report.insert("step".into(), l.step.into());
    let v = Value::Object(report);
    let p = l.rd.write_json("decompose.json", &v)?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    if !quiet {
        log::info!(
            "wrote {}, {} and {}",
            p.display(),
            p1.display(),
            p2.display()
        );
    }
    Ok(())
}

/// Gaussian-kernel density of the simulated latent states on the grid points (normalised to
/// sum 1 over the grid for d ≥ 2; a density on the line for d = 1).
fn kde_grid(out: &SimOut, gx: &[f64], gy: &[f64], d: usize, bbox: &[(f64, f64)]) -> Vec<f64> {
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

/// Named tensors for `export` (names of the spec: U, V, c, h, A, W, Sigma, b, B_in, M).
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
