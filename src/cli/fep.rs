//! `attractor fep …` analysis commands: the argument structs and handlers of `fep attractors`,
//! `eval`, `run-free`, `sweep` (the Sim-2 regime grid as one batched training run) and `recall`
//! (reconstruction from cues held as input bias, the paper's Sim-5 protocol). Each handler
//! turns its arguments into the options of the operation in [`crate::api::fep`], calls it,
//! writes its files and prints its summary; `fep train` is dispatched in `cli/mod.rs`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Serialize;

use crate::api::fep::{self as op, Array64};
use crate::data::patterns::PatternSource;
use crate::plot::save_rgb_png;
use crate::run::RunDir;

/// Writes `v` as pretty JSON into `dir/name`, keys sorted (through `serde_json::Value`).
fn write_json<T: Serialize>(dir: &std::path::Path, name: &str, v: &T) -> Result<serde_json::Value> {
    let v = serde_json::to_value(v)?;
    RunDir::open(dir)?.write_json(name, &v)?;
    Ok(v)
}

/// Writes `a` as `dir/name` (`.npy`, f64).
fn write_npy(dir: &std::path::Path, name: &str, a: &Array64) -> Result<PathBuf> {
    let p = dir.join(name);
    crate::npy::write_npy_f64(&p, &a.shape, &a.data)?;
    Ok(p)
}

// ---------------------------------------------------------------------------------------------
// attractors
// ---------------------------------------------------------------------------------------------

/// Arguments of `fep attractors`.
#[derive(Args, Debug, Clone)]
pub struct AttractorsArgs {
    /// Run directory.
    #[arg(long)]
    pub run_dir: PathBuf,
    /// Which of the batched networks.
    #[arg(long, default_value_t = 0)]
    pub network: usize,
    /// Relax with the symmetric part J† = (J + Jᵀ)/2 (asymmetric J trained on sequences
    /// cycles instead of converging).
    #[arg(long)]
    pub symmetric_part: bool,
}

/// `fep attractors`: `attractors.npy` (distinct attractors) and `attractors.png`.
impl AttractorsArgs {
    /// The operation's options (`seed`: `--seed`).
    pub fn options(&self, seed: Option<u64>) -> op::AttractorsOptions {
        op::AttractorsOptions {
            network: self.network,
            symmetric_part: self.symmetric_part,
            seed,
        }
    }
}

pub fn attractors_cmd(a: &AttractorsArgs, cx: &super::Global) -> Result<()> {
    let r = op::attractors(&a.run_dir, &a.options(cx.seed), &cx.ctx)?;
    let npy = write_npy(&r.run_dir, "attractors.npy", &r.attractors)?;
    let png = r.run_dir.join("attractors.png");
    save_rgb_png(&r.picture(), &png)?;
    println!(
        "{} distinct attractors (network {}); top row: training patterns, bottom: attractors",
        r.count(),
        a.network
    );
    log::info!("wrote {} and {}", npy.display(), png.display());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// eval
// ---------------------------------------------------------------------------------------------

/// Arguments of `fep eval`.
#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// Run directory.
    #[arg(long)]
    pub run_dir: PathBuf,
    /// Trials per ΔR² estimate.
    #[arg(long, default_value_t = 100)]
    pub trials: usize,
    /// Stochastic steps per trial.
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
    /// Score against the training patterns of another run with the same N (e.g. the Sim-4
    /// negative control, trained on digit 0 only, scored on the ten digits).
    #[arg(long)]
    pub patterns_of: Option<PathBuf>,
    /// Score only these patterns (0-based indices, repeatable; default: all).
    #[arg(long = "pattern-index")]
    pub pattern_index: Vec<usize>,
    /// Output file name inside the run directory.
    #[arg(long, default_value = "eval.json")]
    pub out: String,
    /// Rescale each network's couplings to the Frobenius norm of the same network of
    /// another run before scoring (the paper's weight-norm-matched Hebbian baseline).
    #[arg(long)]
    pub match_norm_of: Option<PathBuf>,
}

/// `fep eval`: writes `eval.json` and prints it.
impl EvalArgs {
    /// The operation's options (`seed`: `--seed`).
    pub fn options(&self, seed: Option<u64>) -> op::EvalOptions {
        op::EvalOptions {
            trials: self.trials,
            steps: self.steps,
            patterns_of: self.patterns_of.clone(),
            pattern_index: self.pattern_index.clone(),
            match_norm_of: self.match_norm_of.clone(),
            seed,
        }
    }
}

pub fn eval_cmd(a: &EvalArgs, cx: &super::Global) -> Result<()> {
    let o = a.options(cx.seed);
    o.check()?;
    if a.out.is_empty() || a.out.contains(['/', '\\']) || a.out.starts_with('.') {
        bail!("--out must be a plain file name, got `{}`", a.out);
    }
    let r = op::eval(&a.run_dir, &o, &cx.ctx)?;
    let v = write_json(&a.run_dir, &a.out, &r)?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    log::info!("wrote {}", a.run_dir.join(&a.out).display());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// run-free: free-running replay with zero input
// ---------------------------------------------------------------------------------------------

/// Arguments of `fep run-free`.
#[derive(Args, Debug, Clone)]
pub struct RunFreeArgs {
    /// Run directory.
    #[arg(long)]
    pub run_dir: PathBuf,
    /// Stochastic steps with zero input and no learning.
    #[arg(long, default_value_t = 200)]
    pub steps: usize,
    /// Precision β of the free run.
    #[arg(long, default_value_t = 1.0)]
    pub beta: f64,
    /// Which network.
    #[arg(long, default_value_t = 0)]
    pub network: usize,
    /// Use only the symmetric part J† = (J + Jᵀ)/2 (control: no replay expected).
    #[arg(long)]
    pub symmetric_only: bool,
    /// Correlation needed to label a state with a pattern.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f64,
}

/// `fep run-free`: `states.npy`, `run_free.png` (correlation raster), `run_free.json`.
impl RunFreeArgs {
    /// The operation's options (`seed`: `--seed`).
    pub fn options(&self, seed: Option<u64>) -> op::RunFreeOptions {
        op::RunFreeOptions {
            steps: self.steps,
            beta: self.beta,
            network: self.network,
            symmetric_only: self.symmetric_only,
            threshold: self.threshold,
            seed,
        }
    }
}

pub fn run_free_cmd(a: &RunFreeArgs, cx: &super::Global) -> Result<()> {
    let r = op::run_free(&a.run_dir, &a.options(cx.seed), &cx.ctx)?;
    write_npy(&r.run_dir, "states.npy", &r.states)?;
    r.figure().save_png(&r.run_dir.join("run_free.png"))?;
    let v = write_json(&r.run_dir, "run_free.json", &r)?;
    let frac = r.forward_transition_frac;
    println!(
        "forward transitions {} of {} label changes; labelled {:.2}",
        if frac.is_finite() {
            format!("{frac:.3}")
        } else {
            "n/a".into()
        },
        r.label_changes,
        v["labelled_frac"]
    );
    log::info!(
        "wrote states.npy, run_free.png, run_free.json in {}",
        r.run_dir.display()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// sweep: the Sim-2 regime grid as one batched training run
// ---------------------------------------------------------------------------------------------

/// Arguments of `fep sweep`.
#[derive(Args, Debug, Clone)]
pub struct SweepArgs {
    /// Evidence levels `A..B` (integer steps) or a comma list.
    #[arg(long, default_value = "1..20")]
    pub evidence: String,
    /// Precisions `LO..HI:N` (log-spaced) or a comma list.
    #[arg(long, default_value = "0.01..1:19")]
    pub beta: String,
    /// Networks per setting (seeds).
    #[arg(long, default_value_t = 1)]
    pub seeds: usize,
    /// Epochs.
    #[arg(long, default_value_t = 5000)]
    pub epochs: u64,
    /// Steps per epoch.
    #[arg(long, default_value_t = 10)]
    pub steps_per_epoch: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 0.001)]
    pub lr: f64,
    /// Patterns (as `fep train`).
    #[arg(long, default_value = "digits")]
    pub patterns: PatternSource,
    /// Trials per ΔR² estimate.
    #[arg(long, default_value_t = 100)]
    pub trials: usize,
    /// Engine (see `FepConfig::engine`).
    #[arg(long, value_enum, default_value_t = crate::models::fep::Engine::Auto)]
    pub engine: crate::models::fep::Engine,
    /// Run directory.
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Replace an existing run.
    #[arg(long)]
    pub overwrite: bool,
}

/// `fep sweep`: trains and scores the grid, writes `sweep.png` and `sweep.json`.
pub fn sweep_cmd(a: &SweepArgs, cx: &super::Global) -> Result<()> {
    let o = op::SweepOptions {
        evidence: op::parse_range(&a.evidence, false)?,
        beta: op::parse_range(&a.beta, true)?,
        seeds: a.seeds,
        epochs: a.epochs,
        steps_per_epoch: a.steps_per_epoch,
        lr: a.lr,
        patterns: a.patterns.clone(),
        trials: a.trials,
        engine: a.engine,
        run_dir: a.run_dir.clone(),
        overwrite: a.overwrite,
        seed: cx.seed,
    };
    let r = op::sweep(&o, &cx.ctx)?;
    r.figure().save_png(&r.run_dir.join("sweep.png"))?;
    write_json(&r.run_dir, "sweep.json", &r).context("writing sweep.json")?;
    let rate = r.network_steps_per_s;
    println!(
        "{} networks: training {:.1} s ({:.0} network-steps/s), evaluation {:.1} s; wrote sweep.json and sweep.png in {}",
        r.networks,
        r.train_seconds,
        if rate.is_finite() { rate } else { 0.0 },
        r.eval_seconds,
        r.run_dir.display()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// recall: reconstruction from cues held as input bias (the paper's Sim-5 protocol)
// ---------------------------------------------------------------------------------------------

/// Arguments of `fep recall`.
#[derive(Args, Debug, Clone)]
pub struct RecallArgs {
    /// Run directory.
    #[arg(long)]
    pub run_dir: PathBuf,
    /// Cue file (same formats as --patterns; each row a cue, in pattern units).
    #[arg(long)]
    pub cue: Option<PathBuf>,
    /// Training patterns to corrupt into cues (repeatable).
    #[arg(long = "pattern-index")]
    pub pattern_index: Vec<usize>,
    /// Noise sd of the corrupted cues, in units of the pattern's sd.
    #[arg(long, default_value_t = 2.0)]
    pub noise_sd: f64,
    /// Precision β of inference.
    #[arg(long, default_value_t = 1.0)]
    pub beta: f64,
    /// Stochastic steps.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Steps dropped before averaging.
    #[arg(long, default_value_t = 5)]
    pub burn_in: usize,
    /// Which network.
    #[arg(long, default_value_t = 0)]
    pub network: usize,
    /// The bias is `cue_scale × cue` (the paper's Sim-5 protocol holds the cue itself: 1).
    #[arg(long, default_value_t = 1.0)]
    pub cue_scale: f64,
}

/// `fep recall`: `recall.npy` (posterior means), `recall.png`, `recall.json`.
impl RecallArgs {
    /// The operation's options (`seed`: `--seed`).
    pub fn options(&self, seed: Option<u64>) -> op::RecallOptions {
        op::RecallOptions {
            cue: self.cue.clone(),
            pattern_index: self.pattern_index.clone(),
            noise_sd: self.noise_sd,
            beta: self.beta,
            steps: self.steps,
            burn_in: self.burn_in,
            network: self.network,
            cue_scale: self.cue_scale,
            seed,
        }
    }
}

pub fn recall_cmd(a: &RecallArgs, cx: &super::Global) -> Result<()> {
    let r = op::recall(&a.run_dir, &a.options(cx.seed), &cx.ctx)?;
    write_npy(&r.run_dir, "recall.npy", &r.outputs)?;
    save_rgb_png(&r.picture(), &r.run_dir.join("recall.png"))?;
    let v = write_json(&r.run_dir, "recall.json", &r)?;
    println!(
        "corr(cue, target) {} -> corr(output, target) {}",
        v["corr_cue"], v["corr_output"]
    );
    log::info!(
        "wrote recall.npy, recall.png (cue | output | target per row), recall.json in {}",
        r.run_dir.display()
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
        let a: AttractorsArgs = bare_args("attractors");
        assert_eq!(a.options(None), op::AttractorsOptions::default());
        let e: EvalArgs = bare_args("eval");
        assert_eq!(e.options(None), op::EvalOptions::default());
        let r: RunFreeArgs = bare_args("run-free");
        assert_eq!(r.options(None), op::RunFreeOptions::default());
        let c: RecallArgs = bare_args("recall");
        assert_eq!(c.options(None), op::RecallOptions::default());
    }
}
