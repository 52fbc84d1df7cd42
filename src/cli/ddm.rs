//! `attractor ddm …` analysis commands: the argument structs and handlers of `ddm simulate`,
//! `eval` and `decompose`; loading a run ([`load_run`]), the evaluation report ([`evaluate`],
//! the contents of `eval.json`), the figures and files they write. The measurements are in
//! [`crate::analysis::ddm`]; `ddm train` is dispatched in `cli/mod.rs`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use clap::Args;
use serde_json::{Value, json};

use crate::analysis::ddm::{
    SimOut, SimSpec, asymmetry_index, diffusion_rel_err, drift_rel_err, kde_grid, limit_cycle,
    lyapunov_max, simulate, switch_protocol, transition_stats,
};
use crate::analysis::stats::{count_switches, hist_l1, hist_l1_density, mean_std};
use crate::checkpoint;
use crate::models::ctrnn::LatentSde;
use crate::models::ddm::{Ddm, DdmConfig, load_network, streams};
use crate::plot::{Figure, palette};
use crate::rng::Rng;
use crate::run::RunDir;
use crate::sde::Sde;
use crate::sde::builtin::Kind;
use crate::transfer::{tensor2, tensor2_f32, to_vec_f32};

// ---------------------------------------------------------------------------------------------
// Loading a run
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// simulate
// ---------------------------------------------------------------------------------------------

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
pub fn simulate_cmd(a: &SimulateArgs, cx: &super::Global) -> Result<()> {
    let (device, seed, quiet) = (&cx.ctx.device, cx.seed, cx.quiet);
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
    let bar = cx.ctx.control.scope(steps as u64, "simulate");
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
    // Once both the target's and the network's default simulations exist: both in one picture.
    if a.out.is_none()
        && let Some(p) = crate::plot::ddm_comparison(l.rd.path())?
        && !quiet
    {
        log::info!("wrote {} (target and network overlaid)", p.display());
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
        let h = crate::analysis::stats::histogram(&xs, lo, hi + 1e-9, 50);
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

// ---------------------------------------------------------------------------------------------
// eval
// ---------------------------------------------------------------------------------------------

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
pub fn eval_cmd(a: &EvalArgs, cx: &super::Global) -> Result<()> {
    let (device, seed, quiet) = (&cx.ctx.device, cx.seed, cx.quiet);
    let l = load_run(&a.run_dir, device)?;
    if a.trajectories == 0 || a.points == 0 {
        bail!("--trajectories and --points must be >= 1");
    }
    if let Some(t) = a.t_end
        && !(t.is_finite() && t > 0.0)
    {
        bail!("--t-end must be > 0, got {t}");
    }
    let bar = cx.ctx.control.scope(0, "eval");
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

// ---------------------------------------------------------------------------------------------
// decompose
// ---------------------------------------------------------------------------------------------

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
pub fn decompose_cmd(a: &DecomposeArgs, cx: &super::Global) -> Result<()> {
    let (device, seed, quiet) = (&cx.ctx.device, cx.seed, cx.quiet);
    let l = load_run(&a.run_dir, device)?;
    let _bar = cx.ctx.control.scope(0, "decompose");
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
