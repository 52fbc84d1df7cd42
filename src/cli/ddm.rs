//! `attractor ddm …` analysis commands: the argument structs and handlers of `ddm simulate`,
//! `eval` and `decompose`. Each handler opens the run, calls its operation in
//! [`crate::api::ddm`], writes the files and figures ([`crate::plot::ddm`]) and prints; `ddm
//! train` is dispatched in `cli/mod.rs`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use crate::api::ddm::{
    self as api, DdmRun, DecomposeOptions, EvalOptions, SimulateOptions, Simulation,
};
use crate::plot;

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

impl SimulateArgs {
    /// The operation's options (`seed`: `--seed`).
    pub fn options(&self, seed: Option<u64>) -> SimulateOptions {
        SimulateOptions {
            t_end: self.t_end,
            dt: self.dt,
            trajectories: self.trajectories,
            noise_scale: self.noise_scale,
            target: self.target,
            record_every: self.record_every,
            seed,
        }
    }
}

/// `<stem>.json` of `ddm simulate`: the simulation's report and the name of its `.npy` file.
#[derive(Serialize)]
struct SimulateFile<'a> {
    #[serde(flatten)]
    sim: &'a Simulation,
    npy: Option<String>,
}

/// `ddm simulate`: writes `<out>.npy` (`[K, steps, d]`), `<out>.png` and `<out>.json`.
pub fn simulate_cmd(a: &SimulateArgs, cx: &super::Global) -> Result<()> {
    let run = DdmRun::open(&a.run_dir, &cx.ctx)?;
    let sim = api::simulate(&run, &a.options(cx.seed), &cx.ctx)?;
    let stem = a.out.clone().unwrap_or_else(|| {
        if a.target {
            "simulate_target".into()
        } else {
            "simulate".into()
        }
    });
    let npy = run.rd.file(&format!("{stem}.npy"));
    crate::npy::write_npy_f32(&npy, &sim.paths.shape, &sim.paths.data)?;
    let png = run.rd.file(&format!("{stem}.png"));
    let title = if a.target {
        "target SDE"
    } else {
        "network (latent read-out)"
    };
    plot::ddm::trajectories(
        &sim.paths.shape,
        &sim.paths.data,
        sim.dt_record,
        title,
        &png,
    )?;
    let file = SimulateFile {
        sim: &sim,
        npy: npy.file_name().map(|n| n.to_string_lossy().to_string()),
    };
    run.rd
        .write_json(&format!("{stem}.json"), &serde_json::to_value(&file)?)?;
    log::info!(
        "wrote {} ({} x {} x {}) and {}",
        npy.display(),
        sim.trajectories,
        sim.steps,
        sim.d,
        png.display()
    );
    // Once both the target's and the network's default simulations exist: both in one picture.
    if a.out.is_none()
        && let Some(p) = plot::ddm_comparison(run.rd.path())?
    {
        log::info!("wrote {} (target and network overlaid)", p.display());
    }
    Ok(())
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

impl EvalArgs {
    /// The operation's options (`seed`: `--seed`).
    pub fn options(&self, seed: Option<u64>) -> EvalOptions {
        EvalOptions {
            t_end: self.t_end,
            trajectories: self.trajectories,
            points: self.points,
            burn_in: self.burn_in,
            seed,
        }
    }
}

/// `ddm eval`: writes `DIR/eval.json` and prints it.
pub fn eval_cmd(a: &EvalArgs, cx: &super::Global) -> Result<()> {
    let run = DdmRun::open(&a.run_dir, &cx.ctx)?;
    let v = serde_json::to_value(api::eval(&run, &a.options(cx.seed), &cx.ctx)?)?;
    let p = run.rd.write_json("eval.json", &v)?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    log::info!("wrote {}", p.display());
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

impl DecomposeArgs {
    /// The operation's options (`seed`: `--seed`).
    pub fn options(&self, seed: Option<u64>) -> DecomposeOptions {
        DecomposeOptions {
            grid: self.grid,
            t_end: self.t_end,
            trajectories: self.trajectories,
            seed,
        }
    }
}

/// `ddm decompose`: drift fields of W, W_s and W_a; reversible/irreversible parts; EPR.
pub fn decompose_cmd(a: &DecomposeArgs, cx: &super::Global) -> Result<()> {
    let run = DdmRun::open(&a.run_dir, &cx.ctx)?;
    let r = api::decompose(&run, &a.options(cx.seed), &cx.ctx)?;
    let p1 = run.rd.file("decompose_asymmetry.png");
    let p2 = run.rd.file("decompose_irreversibility.png");
    plot::ddm::asymmetry(&r.fields, &p1)?;
    plot::ddm::irreversibility(&r.fields, &p2)?;
    let v = serde_json::to_value(&r)?;
    let p = run.rd.write_json("decompose.json", &v)?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    log::info!(
        "wrote {}, {} and {}",
        p.display(),
        p1.display(),
        p2.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::test_support::bare_args;

    /// The command line's defaults are the library's (see the NLM's test of the same name).
    #[test]
    fn command_line_defaults_are_the_librarys() {
        let s: SimulateArgs = bare_args("simulate");
        assert_eq!(s.options(None), SimulateOptions::default());
        let e: EvalArgs = bare_args("eval");
        assert_eq!(e.options(None), EvalOptions::default());
        let d: DecomposeArgs = bare_args("decompose");
        assert_eq!(d.options(None), DecomposeOptions::default());
    }
}
