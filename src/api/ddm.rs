//! The DDM operations on trained runs (see [`super`]): open a run ([`DdmRun`]), [`simulate`]
//! it, evaluate it ([`eval`], the contents of `eval.json`), [`decompose`] its drift; and
//! [`train_on`], a run on a target SDE written in Rust.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use attractor::api::{Ctx, ddm};
//! let ctx = Ctx::cpu()?;
//! let run = ddm::DdmRun::open(std::path::Path::new("runs/ddm-1"), &ctx)?;
//! let report = ddm::eval(&run, &ddm::EvalOptions::default(), &ctx)?;
//! println!("drift error {}", report.metrics.drift_rel_err);
//! let sim = ddm::simulate(&run, &ddm::SimulateOptions::default(), &ctx)?;
//! println!("{:?} recorded states", sim.paths.shape);
//! # Ok(())
//! # }
//! ```

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::Ctx;
use super::family::{DdmFamily, Family, RunPlace, TrainReport};
use crate::analysis::ddm::{
    SimOut, SimSpec, asymmetry_index, diffusion_rel_err, drift_rel_err, kde_grid, limit_cycle,
    lyapunov_max, simulate as run_sim, switch_protocol, transition_stats,
};
use crate::checkpoint::{self, Checkpoint};
use crate::models::ctrnn::LatentSde;
use crate::models::ddm::{Ddm, DdmConfig, DdmTrainer, load_network, streams};
use crate::plot::ddm::DriftFields;
use crate::rng::Rng;
use crate::run::RunDir;
use crate::sde::Sde;
use crate::sde::builtin::Kind;
use crate::sde::target::Target;
use crate::stats::{count_switches, hist_l1, hist_l1_density, mean_std};
use crate::train::Outcome;
use crate::transfer::{tensor2, tensor2_f32, to_vec_f32};

/// A row-major array of `f32` with its shape.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Array {
    /// The dimensions.
    pub shape: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<f32>,
}

// ---------------------------------------------------------------------------------------------
// Opening a run
// ---------------------------------------------------------------------------------------------

/// A trained DDM run loaded for analysis: its newest checkpoint's network and its target.
#[derive(Clone, Debug)]
pub struct DdmRun {
    /// The run directory.
    pub rd: RunDir,
    /// Target and trained network.
    pub ddm: Ddm,
    /// Training step of the checkpoint.
    pub step: u64,
    /// Sampling box of training (one `(lo, hi)` per latent coordinate).
    pub bbox: Vec<(f64, f64)>,
}

impl DdmRun {
    /// Loads the newest checkpoint of the DDM run in `dir`, its target rebuilt from
    /// `config.json`.
    pub fn open(dir: &Path, ctx: &Ctx) -> Result<Self> {
        let (rd, cfg, ck) = Self::read(dir)?;
        if let Some(name) = rust_target(&cfg) {
            bail!(
                "{} was trained on `{name}`, an SDE written in Rust: open it with \
                 DdmRun::open_with_target",
                dir.display()
            );
        }
        let ddm = load_network(&cfg, &ck, &ctx.device)?;
        Self::assemble(rd, ddm, &ck)
    }

    /// Loads the newest checkpoint of a run trained with [`train_on`] on `target` (an SDE
    /// written in Rust, which `config.json` cannot rebuild).
    pub fn open_with_target(dir: &Path, target: Target, ctx: &Ctx) -> Result<Self> {
        let (rd, cfg, ck) = Self::read(dir)?;
        if ck.kind != DdmFamily::KIND {
            bail!("this is a `{}` checkpoint, not a DDM one", ck.kind);
        }
        let mut ddm = Ddm::with_target(&cfg, target, &ctx.device)?;
        ddm.net.load_from(&ck)?;
        Self::assemble(rd, ddm, &ck)
    }

    fn read(dir: &Path) -> Result<(RunDir, DdmConfig, Checkpoint)> {
        let rd = RunDir::open(dir)?;
        let meta = rd.meta()?;
        if meta.model != DdmFamily::KIND {
            bail!(
                "{} holds a `{}` run, not a DDM one",
                dir.display(),
                meta.model
            );
        }
        let cfg: DdmConfig = rd.config_or(&DdmConfig::new())?;
        let ck = checkpoint::load_latest(rd.path())?
            .with_context(|| format!("{} has no checkpoint yet", rd.path().display()))?;
        Ok((rd, cfg, ck))
    }

    fn assemble(rd: RunDir, ddm: Ddm, ck: &Checkpoint) -> Result<Self> {
        let bbox: Vec<(f64, f64)> = ck
            .extra
            .get("bbox")
            .cloned()
            .map(serde_json::from_value)
            .transpose()?
            .unwrap_or_default();
        Ok(Self {
            rd,
            ddm,
            step: ck.step,
            bbox,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// A target written in Rust
// ---------------------------------------------------------------------------------------------

/// The folder of the `sde` path that a run trained by [`train_on`] records (no such file).
pub const RUST_SDE: &str = "<rust>";

/// The name of the Rust target a configuration was trained on by [`train_on`], if it was.
pub fn rust_target(cfg: &DdmConfig) -> Option<String> {
    match &cfg.sde {
        crate::config::Source::Path(p) if p.parent() == Some(Path::new(RUST_SDE)) => {
            Some(p.file_name()?.to_string_lossy().into_owned())
        }
        _ => None,
    }
}

/// Trains a new run of `cfg` on `target` — an SDE written in Rust ([`Target::custom`] of an
/// [`Sde`]) — through the one driver, as [`super::family::train`] does for the built-in and
/// file targets: run directory, checkpoints, metrics, stop on request. `cfg`'s `sde` is
/// recorded as the path `<rust>/<name>` ([`RUST_SDE`]), which names no file, so that the run is
/// never silently reopened on another target: open it with [`DdmRun::open_with_target`].
/// (Resuming such a run is not supported: [`super::family::resume`] rebuilds the target from
/// `config.json`.)
///
/// ```no_run
/// # fn main() -> anyhow::Result<()> {
/// use std::sync::Arc;
/// use attractor::api::{Ctx, ddm, family::RunPlace};
/// use attractor::models::ddm::DdmConfig;
/// use attractor::sde::{Diffusion, Sde, target::Target};
/// use burn::tensor::Tensor;
///
/// /// dz = −z dt + 0.5 dW in two dimensions.
/// struct Ou;
/// impl Sde for Ou {
///     fn dim(&self) -> usize { 2 }
///     fn noise_dim(&self) -> usize { 2 }
///     fn drift(&self, z: Tensor<2>, _u: Option<Tensor<2>>) -> Tensor<2> { -z }
///     fn diffusion(&self, _z: &Tensor<2>) -> Diffusion { Diffusion::Isotropic(0.5) }
/// }
///
/// let ctx = Ctx::cpu()?;
/// let target = || Target::custom("ou", Arc::new(Ou), 0.01, &ctx.device);
/// let cfg = DdmConfig::new().with_neurons(100).with_iters(600);
/// let place = RunPlace { run_dir: Some("runs/ou".into()), overwrite: true };
/// let report = ddm::train_on(target()?, cfg, &place, &ctx)?;
/// let run = ddm::DdmRun::open_with_target(&report.run_dir, target()?, &ctx)?;
/// let m = ddm::eval(&run, &ddm::EvalOptions::default(), &ctx)?;
/// println!("drift error {:.3}", m.metrics.drift_rel_err);
/// # Ok(())
/// # }
/// ```
pub fn train_on(
    target: Target,
    mut cfg: DdmConfig,
    place: &RunPlace,
    ctx: &Ctx,
) -> Result<TrainReport> {
    cfg.sde = crate::config::Source::Path(Path::new(RUST_SDE).join(target.name()));
    cfg.params.clear();
    cfg.sde_toml = None;
    let mut trainer = DdmTrainer::with_target(&cfg, target, &ctx.device)?;
    let rd = crate::run::start_run(
        place.run_dir.as_deref(),
        DdmFamily::KIND,
        DdmFamily::KIND,
        cfg.seed,
        place.overwrite,
        &cfg,
    )?;
    log::info!("{}", DdmFamily::started(&trainer, &rd));
    let t0 = std::time::Instant::now();
    let opts = DdmFamily::driver_options(&cfg, None);
    let out = crate::train::run(&mut trainer, &rd, 0, &opts, &ctx.control)?;
    let (step, interrupted) = match out {
        Outcome::Finished(s) => (s, false),
        Outcome::Interrupted(s) => (s, true),
    };
    Ok(TrainReport {
        run_dir: rd.path().to_path_buf(),
        start: 0,
        step,
        total: opts.total_steps,
        interrupted,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

// ---------------------------------------------------------------------------------------------
// simulate
// ---------------------------------------------------------------------------------------------

/// Options of [`simulate`] (`ddm simulate`).
#[derive(Clone, Debug, PartialEq)]
pub struct SimulateOptions {
    /// Simulated time (default 50).
    pub t_end: f64,
    /// Time step (default: the target's).
    pub dt: Option<f64>,
    /// Number of trajectories K (default 8).
    pub trajectories: usize,
    /// Noise multiplier (0: deterministic flow; default 1).
    pub noise_scale: f64,
    /// Simulate the target SDE instead of the network (default: the network).
    pub target: bool,
    /// Record every this many steps (default: so that about 2000 points are kept).
    pub record_every: Option<usize>,
    /// Seed of the start states and the noise (default: the run's seed).
    pub seed: Option<u64>,
}

impl Default for SimulateOptions {
    fn default() -> Self {
        Self {
            t_end: 50.0,
            dt: None,
            trajectories: 8,
            noise_scale: 1.0,
            target: false,
            record_every: None,
            seed: None,
        }
    }
}

/// What [`simulate`] did (`simulate.json`, less the name of the `.npy` file), and the recorded
/// states.
#[derive(Clone, Debug, Serialize)]
pub struct Simulation {
    /// Time step.
    pub dt: f64,
    /// Steps between records.
    pub record_every: usize,
    /// Time between records.
    pub dt_record: f64,
    /// Simulated time.
    pub t_end: f64,
    /// Number of trajectories K.
    pub trajectories: usize,
    /// Recorded points per trajectory.
    pub steps: usize,
    /// Latent dimension d.
    pub d: usize,
    /// Noise multiplier.
    pub noise_scale: f64,
    /// Whether the target SDE (not the network) was simulated.
    pub target: bool,
    /// The recorded latent states, `[K, steps, d]`.
    #[serde(skip)]
    pub paths: Array,
}

/// `ddm simulate`: K trajectories of the network's latent read-out (or of the target).
pub fn simulate(run: &DdmRun, o: &SimulateOptions, ctx: &Ctx) -> Result<Simulation> {
    let ddm = &run.ddm;
    let dt = o.dt.unwrap_or(ddm.target.default_dt());
    if !(o.t_end.is_finite() && o.t_end > 0.0) {
        bail!("--t-end must be > 0, got {}", o.t_end);
    }
    if !(dt.is_finite() && dt > 0.0) {
        bail!("--dt: dt must be a positive number, got {dt}");
    }
    if o.t_end / dt > 1e9 {
        bail!(
            "--t-end {} / --dt {dt} is {:.3e} steps: absurdly many (limit 1e9)",
            o.t_end,
            o.t_end / dt
        );
    }
    if o.trajectories == 0 {
        bail!("--trajectories must be >= 1");
    }
    let steps = (o.t_end / dt).round().max(1.0) as usize;
    let every = o.record_every.unwrap_or((steps / 2000).max(1));
    if every == 0 {
        bail!("--record-every must be >= 1");
    }
    crate::error::check_memory(
        &format!(
            "{} trajectories recorded at {} points",
            o.trajectories,
            steps / every + 1
        ),
        8.0 * o.trajectories as f64
            * ((steps / every + 1) as f64 * 4.0 + 8.0 * ddm.cfg.neurons as f64),
    )?;
    let mut rng = Rng::derived(o.seed.unwrap_or(ddm.cfg.seed), streams::EVAL);
    let z0 = ddm.target.initial_states(&mut rng, o.trajectories);
    let spec = SimSpec {
        target: o.target,
        dt,
        t_end: o.t_end,
        burn_in: 0.0,
        noise_scale: o.noise_scale,
        record_every: every,
        epr: false,
    };
    let bar = ctx.control.scope(steps as u64, "simulate");
    let out = run_sim(ddm, &spec, &z0, &mut rng, &mut |_| None)?;
    drop(bar);
    Ok(Simulation {
        dt,
        record_every: every,
        dt_record: out.dt_rec,
        t_end: o.t_end,
        trajectories: out.k,
        steps: out.n_rec,
        d: out.d,
        noise_scale: o.noise_scale,
        target: o.target,
        paths: Array {
            shape: vec![out.k, out.n_rec, out.d],
            data: out.by_trajectory(),
        },
    })
}

// ---------------------------------------------------------------------------------------------
// eval
// ---------------------------------------------------------------------------------------------

/// Options of [`eval`] (`ddm eval`).
#[derive(Clone, Debug, PartialEq)]
pub struct EvalOptions {
    /// Simulated time per trajectory for the statistics (default: 500, or 1e5 steps).
    pub t_end: Option<f64>,
    /// Trajectories simulated in parallel (default 64).
    pub trajectories: usize,
    /// Held-out stationary points for the drift error (default 20 000).
    pub points: usize,
    /// Burn-in before statistics (default 20).
    pub burn_in: f64,
    /// Seed of the held-out points and the simulations (default: the run's seed).
    pub seed: Option<u64>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            t_end: None,
            trajectories: 64,
            points: 20000,
            burn_in: 20.0,
            seed: None,
        }
    }
}

/// The evaluation metrics of a network ([`evaluate`]); a non-finite number is written as
/// `null`, a metric that does not apply to the target is absent.
#[derive(Clone, Debug, Serialize)]
pub struct Metrics {
    /// Relative drift error on held-out stationary points.
    pub drift_rel_err: f64,
    /// Relative error of the diffusion (NaN for state-dependent noise).
    pub diffusion_rel_err: f64,
    /// ‖W_a‖ / ‖W‖.
    pub asymmetry_index: f64,
    /// Mean over coordinates of the L1 distance of the network's and the target's histograms.
    pub hist_l1: f64,
    /// The same, per coordinate.
    pub hist_l1_per_coord: Vec<f64>,
    /// Entropy-production rate of the network's latent path.
    pub epr_model: f64,
    /// Entropy-production rate of the target's path.
    pub epr_target: f64,
    /// The target's entropy-production rate in closed form, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epr_theory: Option<f64>,
    /// Stationary covariance of the network's latent path (`[d, d]`).
    pub cov_model: Vec<f64>,
    /// Stationary covariance of the target's path (`[d, d]`).
    pub cov_target: Vec<f64>,
    /// Quadratic variation of the latent path per unit time (`[d, d]`; constant noise only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quadratic_variation: Option<Vec<f64>>,
    /// Its relative error against G Gᵀ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quadratic_variation_rel_err: Option<f64>,
    /// Simulated time per trajectory.
    pub sim_t_end: f64,
    /// Time step of the simulations.
    pub sim_dt: f64,
    /// Trajectories simulated.
    pub sim_trajectories: usize,
    /// Double well, d = 1: L1 distance of the histogram to the exact stationary density.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hist_l1_exact: Option<f64>,
    /// Double well: mean residence time in a well, network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_residence_model: Option<f64>,
    /// Double well: mean residence time in a well, target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_residence_target: Option<f64>,
    /// Stuart–Landau: radius of the noise-free limit cycle, network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycle_radius: Option<f64>,
    /// Stuart–Landau: period of the noise-free limit cycle, network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycle_period: Option<f64>,
    /// Stuart–Landau: radius of the noise-free limit cycle, target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycle_radius_target: Option<f64>,
    /// Stuart–Landau: period of the noise-free limit cycle, target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycle_period_target: Option<f64>,
    /// Lorenz: largest Lyapunov exponent, network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lyapunov_max: Option<f64>,
    /// Lorenz: largest Lyapunov exponent, target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lyapunov_target: Option<f64>,
    /// Lorenz: lobe switches per unit time, network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lobe_switch_rate_model: Option<f64>,
    /// Lorenz: lobe switches per unit time, target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lobe_switch_rate_target: Option<f64>,
    /// Multiwell cycle: share of transitions in the target's dominant direction, network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward_transition_frac: Option<f64>,
    /// Multiwell cycle: the same, target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward_transition_frac_target: Option<f64>,
    /// Multiwell cycle: transitions counted, network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transitions_model: Option<usize>,
    /// Multiwell cycle: transitions counted, target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transitions_target: Option<usize>,
    /// Multiwell switch: share of input pulses that switch the well, network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switch_success: Option<f64>,
    /// Multiwell switch: share of spontaneous switches, network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spontaneous_switch_frac: Option<f64>,
    /// Multiwell switch: share of input pulses that switch the well, target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switch_success_target: Option<f64>,
    /// Multiwell switch: share of spontaneous switches, target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spontaneous_switch_frac_target: Option<f64>,
}

impl Metrics {
    fn new(sim_t_end: f64, sim_dt: f64, sim_trajectories: usize) -> Self {
        Self {
            drift_rel_err: f64::NAN,
            diffusion_rel_err: f64::NAN,
            asymmetry_index: f64::NAN,
            hist_l1: f64::NAN,
            hist_l1_per_coord: Vec::new(),
            epr_model: f64::NAN,
            epr_target: f64::NAN,
            epr_theory: None,
            cov_model: Vec::new(),
            cov_target: Vec::new(),
            quadratic_variation: None,
            quadratic_variation_rel_err: None,
            sim_t_end,
            sim_dt,
            sim_trajectories,
            hist_l1_exact: None,
            mean_residence_model: None,
            mean_residence_target: None,
            cycle_radius: None,
            cycle_period: None,
            cycle_radius_target: None,
            cycle_period_target: None,
            lyapunov_max: None,
            lyapunov_target: None,
            lobe_switch_rate_model: None,
            lobe_switch_rate_target: None,
            forward_transition_frac: None,
            forward_transition_frac_target: None,
            transitions_model: None,
            transitions_target: None,
            switch_success: None,
            spontaneous_switch_frac: None,
            switch_success_target: None,
            spontaneous_switch_frac_target: None,
        }
    }
}

/// What [`eval`] writes as `eval.json`: the metrics and the step of the checkpoint.
#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    /// Training step of the evaluated checkpoint.
    pub step: u64,
    /// The metrics.
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// `ddm eval`: every evaluation metric of a run's newest checkpoint.
pub fn eval(run: &DdmRun, o: &EvalOptions, ctx: &Ctx) -> Result<Evaluation> {
    if o.trajectories == 0 || o.points == 0 {
        bail!("--trajectories and --points must be >= 1");
    }
    if let Some(t) = o.t_end
        && !(t.is_finite() && t > 0.0)
    {
        bail!("--t-end must be > 0, got {t}");
    }
    let _bar = ctx.control.scope(0, "eval");
    Ok(Evaluation {
        step: run.step,
        metrics: evaluate(&run.ddm, o, ctx)?,
    })
}

/// Fails if a stop was requested (polled between the phases of an evaluation).
fn stop_point(ctx: &Ctx) -> Result<()> {
    if ctx.control.stopped() {
        bail!("stopped on request");
    }
    Ok(())
}

/// Stationary covariance (`[d, d]`) of a simulation's recorded states.
fn covariance(o: &SimOut) -> Vec<f64> {
    let d = o.d;
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
}

/// All evaluation metrics of a network and its target (any [`Ddm`], e.g. a trainer's), from
/// `o.seed` (default: the configuration's).
pub fn evaluate(ddm: &Ddm, o: &EvalOptions, ctx: &Ctx) -> Result<Metrics> {
    let mut rng = Rng::derived(o.seed.unwrap_or(ddm.cfg.seed), streams::EVAL);
    let d = ddm.target.dim();
    let dt = ddm.target.default_dt();
    let t_end = o.t_end.unwrap_or((1e5 * dt).min(500.0));
    let mut r = Metrics::new(t_end, dt, o.trajectories);
    log::info!("eval: drift error on held-out stationary points");
    r.drift_rel_err = drift_rel_err(ddm, o.points, &mut rng)?;
    r.diffusion_rel_err = diffusion_rel_err(ddm)?;
    r.asymmetry_index = asymmetry_index(&ddm.net)?;
    stop_point(ctx)?;
    log::info!("eval: simulating network and target");
    let z0 = ddm.target.initial_states(&mut rng, o.trajectories);
    let spec = SimSpec {
        target: false,
        dt,
        t_end,
        burn_in: o.burn_in,
        noise_scale: 1.0,
        record_every: ((0.05 / dt).round() as usize).max(1),
        epr: true,
    };
    let net = run_sim(ddm, &spec, &z0, &mut rng, &mut |_| None)?;
    let tgt_spec = SimSpec {
        target: true,
        ..spec
    };
    let tgt = run_sim(ddm, &tgt_spec, &z0, &mut rng, &mut |_| None)?;
    r.hist_l1_per_coord = (0..d)
        .map(|j| hist_l1(&net.coord(j), &tgt.coord(j), 60))
        .collect();
    r.hist_l1 = r.hist_l1_per_coord.iter().sum::<f64>() / d as f64;
    r.epr_model = net.epr.unwrap_or(f64::NAN);
    r.epr_target = tgt.epr.unwrap_or(f64::NAN);
    r.epr_theory = ddm.target.epr_theory();
    r.cov_model = covariance(&net);
    if let (Some(qv), Some(g)) = (&net.qv, ddm.target.g_const()) {
        let m = ddm.target.noise_dim();
        let (mut num, mut den) = (0.0, 0.0);
        for i in 0..d {
            for j in 0..d {
                let gg: f64 = (0..m).map(|k| g[i * m + k] * g[j * m + k]).sum();
                num += (qv[i * d + j] - gg).powi(2);
                den += gg * gg;
            }
        }
        r.quadratic_variation = Some(qv.clone());
        r.quadratic_variation_rel_err = Some((num / den).sqrt());
    }
    r.cov_target = covariance(&tgt);
    stop_point(ctx)?;
    target_metrics(ddm, &net, &tgt, &mut rng, &mut r)?;
    Ok(r)
}

/// The metrics particular to a built-in target.
fn target_metrics(
    ddm: &Ddm,
    net: &SimOut,
    tgt: &SimOut,
    rng: &mut Rng,
    r: &mut Metrics,
) -> Result<()> {
    let d = ddm.target.dim();
    match ddm.target.builtin_kind() {
        Some(Kind::DoubleWell) => {
            let sigma = ddm.target.param("sigma");
            if d == 1 {
                let density =
                    |z: f64| (-2.0 * (z.powi(4) / 4.0 - z * z / 2.0) / (sigma * sigma)).exp();
                r.hist_l1_exact = Some(hist_l1_density(&net.coord(0), -2.5, 2.5, 60, density));
            }
            let t_tot = net.n_rec as f64 * net.dt_rec;
            let res = |o: &SimOut| {
                let sw: usize = (0..o.k).map(|i| count_switches(&o.series(i, 0), 0.5)).sum();
                if sw > 0 {
                    o.k as f64 * t_tot / sw as f64
                } else {
                    f64::INFINITY
                }
            };
            r.mean_residence_model = Some(res(net));
            r.mean_residence_target = Some(res(tgt));
        }
        Some(Kind::StuartLandau) => {
            log::info!("eval: noise-free limit cycle");
            let (rm, pm) = limit_cycle(ddm, false)?;
            let (rt, pt) = limit_cycle(ddm, true)?;
            r.cycle_radius = Some(rm);
            r.cycle_period = Some(pm);
            r.cycle_radius_target = Some(rt);
            r.cycle_period_target = Some(pt);
        }
        Some(Kind::Lorenz) => {
            log::info!("eval: largest Lyapunov exponent");
            let starts: Vec<f64> = net.frames[(net.n_rec - 1) * net.k * d..]
                .iter()
                .take(8 * d)
                .map(|&x| x as f64)
                .collect();
            let lat = LatentSde(&ddm.net);
            let lyap = |s: &dyn Sde| lyapunov_max(s, &starts, d, 0.01, 200.0, 0.1, &ddm.device);
            r.lyapunov_max = Some(lyap(&lat)?);
            r.lyapunov_target = Some(lyap(&ddm.target)?);
            let t_tot = net.n_rec as f64 * net.dt_rec * net.k as f64;
            let sw = |o: &SimOut| {
                (0..o.k)
                    .map(|i| count_switches(&o.series(i, 0), 0.3))
                    .sum::<usize>() as f64
                    / t_tot
            };
            r.lobe_switch_rate_model = Some(sw(net));
            r.lobe_switch_rate_target = Some(sw(tgt));
        }
        Some(Kind::MultiwellCycle) => {
            let mem = ddm.target.memories();
            let core = 0.4 * ddm.target.param("radius");
            let (fm, nm) = transition_stats(net, &mem, core);
            let (ft, nt) = transition_stats(tgt, &mem, core);
            // "Forward" is the target's dominant cyclic direction.
            let (fm, ft) = if ft >= 0.5 {
                (fm, ft)
            } else {
                (1.0 - fm, 1.0 - ft)
            };
            r.forward_transition_frac = Some(fm);
            r.forward_transition_frac_target = Some(ft);
            r.transitions_model = Some(nm);
            r.transitions_target = Some(nt);
        }
        Some(Kind::MultiwellSwitch) => {
            log::info!("eval: switching protocol");
            let (ok, spont) = switch_protocol(ddm, false, 99, 3.0, 10.0, 50.0, rng)?;
            r.switch_success = Some(ok);
            r.spontaneous_switch_frac = Some(spont);
            let (ok, spont) = switch_protocol(ddm, true, 99, 3.0, 10.0, 50.0, rng)?;
            r.switch_success_target = Some(ok);
            r.spontaneous_switch_frac_target = Some(spont);
        }
        _ => {}
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// decompose
// ---------------------------------------------------------------------------------------------

/// Options of [`decompose`] (`ddm decompose`).
#[derive(Clone, Debug, PartialEq)]
pub struct DecomposeOptions {
    /// Grid points per axis of the fields (clamped to 5..=101; default 21).
    pub grid: usize,
    /// Simulated time for the entropy production and the density (default 300).
    pub t_end: f64,
    /// Trajectories (default 32).
    pub trajectories: usize,
    /// Seed of the simulations (default: the run's seed).
    pub seed: Option<u64>,
}

impl Default for DecomposeOptions {
    fn default() -> Self {
        Self {
            grid: 21,
            t_end: 300.0,
            trajectories: 32,
            seed: None,
        }
    }
}

/// What [`decompose`] found (`decompose.json`) and the fields it drew.
#[derive(Clone, Debug, Serialize)]
pub struct Decomposition {
    /// Entropy-production rate of the network.
    pub epr_model: f64,
    /// Entropy-production rate of the network with W replaced by its symmetric part W_s.
    pub epr_symmetric_only: f64,
    /// ‖W_a‖ / ‖W‖.
    pub asymmetry_index: f64,
    /// Share of the drift carried by the antisymmetric part at stationary states.
    pub antisymmetric_drift_frac: f64,
    /// The target's entropy-production rate in closed form, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epr_theory: Option<f64>,
    /// d = 2: the entropy-production rate from the fields on the grid, Σ p f_irrᵀ D⁻¹ f_irr.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epr_grid_estimate: Option<f64>,
    /// Training step of the checkpoint.
    pub step: u64,
    /// The drift and its parts on the grid (the figures' data).
    #[serde(skip)]
    pub fields: DriftFields,
}

/// `ddm decompose`: the drift of W, of its symmetric part W_s and of W_a = W − W_s; the
/// reversible and irreversible parts f_rev = D ∇log p, f_irr = F − f_rev on a grid over the
/// training box; entropy production with and without W_a.
pub fn decompose(run: &DdmRun, o: &DecomposeOptions, ctx: &Ctx) -> Result<Decomposition> {
    let _bar = ctx.control.scope(0, "decompose");
    let ddm = &run.ddm;
    let d = ddm.target.dim();
    let dev = &ddm.device;
    let w = ddm.net.dense_w();
    let ws = (w.clone() + w.transpose()).mul_scalar(0.5);
    let net_s = ddm.net.with_dense(ws);
    let mut rng = Rng::derived(o.seed.unwrap_or(ddm.cfg.seed), streams::EVAL);
    let dt = ddm.target.default_dt();
    let z0 = ddm.target.initial_states(&mut rng, o.trajectories);
    let spec = SimSpec {
        target: false,
        dt,
        t_end: o.t_end,
        burn_in: 20.0,
        noise_scale: 1.0,
        record_every: ((0.05 / dt).round() as usize).max(1),
        epr: true,
    };
    let full = run_sim(ddm, &spec, &z0, &mut rng, &mut |_| None)?;
    let ddm_s = Ddm {
        net: net_s.clone(),
        ..ddm.clone()
    };
    let sym = run_sim(&ddm_s, &spec, &z0, &mut rng, &mut |_| None)?;
    // Share of the drift carried by the antisymmetric part at stationary states.
    let zs = tensor2_f32(full.frames.clone(), full.frames.len() / d, d, dev);
    let f = to_vec_f32(&ddm.net.latent_drift(zs.clone(), None))?;
    let fs = to_vec_f32(&net_s.latent_drift(zs, None))?;
    let (mut na, mut nf) = (0.0, 0.0);
    for (x, y) in f.iter().zip(&fs) {
        na += ((x - y) as f64).powi(2);
        nf += (*x as f64).powi(2);
    }
    let bbox = if run.bbox.len() == d {
        run.bbox.clone()
    } else {
        vec![(-2.0, 2.0); d]
    };
    let fields = drift_fields(ddm, &net_s, &full, bbox, o.grid.clamp(5, 101))?;
    Ok(Decomposition {
        epr_model: full.epr.unwrap_or(f64::NAN),
        epr_symmetric_only: sym.epr.unwrap_or(f64::NAN),
        asymmetry_index: asymmetry_index(&ddm.net)?,
        antisymmetric_drift_frac: (na / nf.max(1e-300)).sqrt(),
        epr_theory: ddm.target.epr_theory(),
        epr_grid_estimate: grid_epr(&fields),
        step: run.step,
        fields,
    })
}

/// The fields on a `g`-point grid over `bbox` (d = 1: a line; d >= 2: the (z1, z2) plane
/// through the mean of the other coordinates of the stationary samples `full`).
fn drift_fields(
    ddm: &Ddm,
    net_s: &crate::models::ctrnn::CtRnn,
    full: &SimOut,
    bbox: Vec<(f64, f64)>,
    g: usize,
) -> Result<DriftFields> {
    let d = ddm.target.dim();
    let means: Vec<f64> = (0..d).map(|j| mean_std(&full.coord(j)).0).collect();
    let at = |b: (f64, f64), i: usize| b.0 + (b.1 - b.0) * i as f64 / (g - 1) as f64;
    let (gx, gy): (Vec<f64>, Vec<f64>) = if d == 1 {
        ((0..g).map(|i| at(bbox[0], i)).collect(), vec![0.0; g])
    } else {
        (0..g)
            .flat_map(|j| (0..g).map(move |i| (i, j)))
            .map(|(i, j)| (at(bbox[0], i), at(bbox[1], j)))
            .unzip()
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
    let zg = tensor2(&grid, npts, d, &ddm.device);
    let fg = to_vec_f32(&ddm.net.latent_drift(zg.clone(), None))?;
    let fsg = to_vec_f32(&net_s.latent_drift(zg, None))?;
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
    let dens = kde_grid(full, &gx, &gy, d, &bbox);
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
    Ok(DriftFields {
        d,
        g,
        bbox,
        x: gx,
        y: gy,
        full: fg,
        symmetric: fsg,
        antisymmetric: fag,
        density: dens,
        diffusion: dm,
        reversible: frev,
        irreversible: firr,
    })
}

/// The entropy-production rate from the grid, Φ ≈ Σ p f_irrᵀ D⁻¹ f_irr (2-D only; an
/// independent check). A non-finite value is `Some(NaN)` (written as `null`).
fn grid_epr(f: &DriftFields) -> Option<f64> {
    if f.d != 2 {
        return None;
    }
    let di = nalgebra::Matrix2::from_row_slice(&f.diffusion).try_inverse()?;
    let tot: f64 = f.density.iter().sum();
    let mut phi = 0.0;
    for i in 0..f.x.len() {
        let v = [f.irreversible[i * 2], f.irreversible[i * 2 + 1]];
        let q = v[0] * (di[(0, 0)] * v[0] + di[(0, 1)] * v[1])
            + v[1] * (di[(1, 0)] * v[0] + di[(1, 1)] * v[1]);
        phi += f.density[i] * q;
    }
    Some(phi / tot.max(1e-300))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use burn::tensor::Tensor;

    use super::*;
    use crate::sde::Diffusion;

    /// A scratch run directory under the system temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let p = std::env::temp_dir()
                .join(format!("attractor-api-ddm-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            Self(p)
        }
        fn place(&self) -> RunPlace {
            RunPlace {
                run_dir: Some(self.0.clone()),
                overwrite: true,
            }
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tiny() -> DdmConfig {
        DdmConfig::new()
            .with_neurons(40)
            .with_iters(30)
            .with_pool_size(1000)
            .with_seed(11)
    }

    /// A tiny rotated-OU run (d = 2) trained through the family's one train path, opened.
    fn tiny_run(name: &str, ctx: &Ctx) -> Result<(Scratch, DdmRun)> {
        let dir = Scratch::new(name);
        let rep = super::super::family::train(tiny(), &dir.place(), ctx)?;
        assert_eq!((rep.step, rep.total, rep.interrupted), (30, 30, false));
        let run = DdmRun::open(&dir.0, ctx)?;
        Ok((dir, run))
    }

    #[test]
    fn simulate_returns_the_paths_with_their_shape() -> Result<()> {
        let ctx = Ctx::cpu()?;
        let (_dir, run) = tiny_run("simulate", &ctx)?;
        assert_eq!(run.step, 30);
        let o = SimulateOptions {
            t_end: 2.0,
            trajectories: 3,
            record_every: Some(10),
            ..SimulateOptions::default()
        };
        let s = simulate(&run, &o, &ctx)?;
        assert_eq!((s.trajectories, s.d, s.record_every), (3, 2, 10));
        assert_eq!(s.paths.shape, vec![3, s.steps, 2]);
        assert_eq!(s.paths.data.len(), 3 * s.steps * 2);
        assert!(s.paths.data.iter().all(|x| x.is_finite()));
        assert!((s.dt_record - 10.0 * s.dt).abs() < 1e-12);
        // The same seed draws the same paths; another seed others.
        assert_eq!(simulate(&run, &o, &ctx)?.paths, s.paths);
        let other = SimulateOptions {
            seed: Some(99),
            ..o.clone()
        };
        assert_ne!(simulate(&run, &other, &ctx)?.paths, s.paths);
        // The arrays are not part of the report.
        let v = serde_json::to_value(&s)?;
        assert!(v.get("paths").is_none() && v["steps"] == s.steps);
        let bad = SimulateOptions { t_end: 0.0, ..o };
        let e = simulate(&run, &bad, &ctx).unwrap_err().to_string();
        assert_eq!(e, "--t-end must be > 0, got 0");
        Ok(())
    }

    #[test]
    fn eval_reports_the_metrics_and_the_step() -> Result<()> {
        let ctx = Ctx::cpu()?;
        let (_dir, run) = tiny_run("eval", &ctx)?;
        let o = EvalOptions {
            t_end: Some(5.0),
            trajectories: 4,
            points: 500,
            burn_in: 1.0,
            seed: Some(3),
        };
        let r = eval(&run, &o, &ctx)?;
        assert_eq!(r.step, 30);
        let m = &r.metrics;
        assert!(m.drift_rel_err.is_finite() && m.drift_rel_err >= 0.0);
        assert_eq!(m.hist_l1_per_coord.len(), 2);
        assert_eq!((m.cov_model.len(), m.cov_target.len()), (4, 4));
        // Rotated OU: closed-form EPR 2θ²/a = 2, constant noise, no well metrics.
        assert_eq!(m.epr_theory, Some(2.0));
        assert!(m.quadratic_variation.is_some());
        let v = serde_json::to_value(&r)?;
        assert_eq!(v["step"], 30);
        assert!(v.get("mean_residence_model").is_none() && v.get("metrics").is_none());
        assert_eq!(v["sim_trajectories"], 4);
        // Deterministic for a seed.
        assert_eq!(v, serde_json::to_value(eval(&run, &o, &ctx)?)?);
        let bad = EvalOptions { points: 0, ..o };
        let e = eval(&run, &bad, &ctx).unwrap_err().to_string();
        assert_eq!(e, "--trajectories and --points must be >= 1");
        Ok(())
    }

    #[test]
    fn eval_stops_on_request() -> Result<()> {
        let ctx = Ctx::cpu()?;
        let (_dir, run) = tiny_run("eval-stop", &ctx)?;
        ctx.control.stop.request();
        let o = EvalOptions {
            t_end: Some(5.0),
            points: 100,
            ..EvalOptions::default()
        };
        let e = eval(&run, &o, &ctx).unwrap_err().to_string();
        assert_eq!(e, "stopped on request");
        Ok(())
    }

    #[test]
    fn decompose_returns_the_fields_on_the_grid() -> Result<()> {
        let ctx = Ctx::cpu()?;
        let (_dir, run) = tiny_run("decompose", &ctx)?;
        let o = DecomposeOptions {
            grid: 7,
            t_end: 10.0,
            trajectories: 4,
            seed: None,
        };
        let r = decompose(&run, &o, &ctx)?;
        let f = &r.fields;
        assert_eq!((f.d, f.g, f.x.len(), f.y.len()), (2, 7, 49, 49));
        for v in [&f.full, &f.symmetric, &f.antisymmetric] {
            assert_eq!(v.len(), 98);
        }
        assert_eq!((f.reversible.len(), f.irreversible.len()), (98, 98));
        assert_eq!(f.density.len(), 49);
        for (a, (b, c)) in f.antisymmetric.iter().zip(f.full.iter().zip(&f.symmetric)) {
            assert_eq!(*a, b - c);
        }
        assert!((0.0..=1.0).contains(&r.asymmetry_index));
        assert!(r.epr_grid_estimate.is_some());
        let v = serde_json::to_value(&r)?;
        assert!(v.get("fields").is_none());
        assert_eq!(v["step"], 30);
        // The grid is clamped to at least 5 points an axis.
        let small = DecomposeOptions { grid: 2, ..o };
        assert_eq!(decompose(&run, &small, &ctx)?.fields.g, 5);
        Ok(())
    }

    /// dz = −z dt + 0.5 dW in two dimensions, written in Rust.
    struct Ou;

    impl Sde for Ou {
        fn dim(&self) -> usize {
            2
        }
        fn noise_dim(&self) -> usize {
            2
        }
        fn drift(&self, z: Tensor<2>, _u: Option<Tensor<2>>) -> Tensor<2> {
            -z
        }
        fn diffusion(&self, _z: &Tensor<2>) -> Diffusion {
            Diffusion::Isotropic(0.5)
        }
    }

    #[test]
    fn a_run_on_a_rust_sde_trains_reopens_and_evaluates() -> Result<()> {
        let ctx = Ctx::cpu()?;
        let dir = Scratch::new("rust-sde");
        let target = || Target::custom("ou", Arc::new(Ou), 0.01, &ctx.device);
        let rep = train_on(target()?, tiny().with_iters(200), &dir.place(), &ctx)?;
        assert_eq!((rep.step, rep.interrupted), (200, false));
        let run = DdmRun::open_with_target(&rep.run_dir, target()?, &ctx)?;
        assert_eq!(run.step, 200);
        let o = EvalOptions {
            t_end: Some(5.0),
            trajectories: 4,
            points: 500,
            ..EvalOptions::default()
        };
        let m = eval(&run, &o, &ctx)?.metrics;
        assert!(m.drift_rel_err < 0.2, "drift error {}", m.drift_rel_err);
        assert!(
            m.diffusion_rel_err < 0.2,
            "diffusion error {}",
            m.diffusion_rel_err
        );
        // config.json names the Rust target: the run is not reopened on another one.
        let cfg = std::fs::read_to_string(dir.0.join("config.json"))?;
        assert!(cfg.contains("\"<rust>/ou\""), "{cfg}");
        let e = DdmRun::open(&dir.0, &ctx).unwrap_err().to_string();
        assert!(e.contains("`ou`, an SDE written in Rust"), "{e}");
        Ok(())
    }
}
