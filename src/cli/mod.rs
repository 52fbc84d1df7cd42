//! Command-line interface (thin: parses arguments, calls the library, prints results).
//!
//! [`ddm`], [`fep`] and [`nlm`] hold each family's analysis commands (argument structs and
//! handlers: loading runs, writing files and figures, printing; the measurements are in
//! [`crate::analysis`]); [`help`] holds the worked examples of every command, shell completions
//! and the generator of `docs/cli.md`; [`logging`] routes diagnostics through `log`
//! (`RUST_LOG`).

mod bars;
pub mod ddm;
pub mod fep;
pub mod help;
pub mod logging;
pub mod nlm;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, FromArgMatches, Parser, Subcommand};

use crate::api::family;
use crate::api::{Ctx, family::Family};
use crate::checkpoint;
use crate::device::{self, DeviceChoice, Selected};
use crate::progress::{Control, Stop};
use crate::sde::builtin::catalogue;

/// The help heading of the options every command takes (given before or after the command).
const GLOBAL: &str = "Global options";

/// Train, run and inspect stochastic recurrent networks.
#[derive(Parser, Debug)]
#[command(name = "attractor", version, about, long_about = None)]
pub struct Cli {
    /// Backend: auto (hardware GPU if present, else CPU), flex, ndarray, wgpu, cuda.
    #[arg(long, global = true, default_value = "auto", help_heading = GLOBAL)]
    pub device: DeviceChoice,
    /// Seed of every random stream (training: stored in config.json; analysis: its own draws).
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub seed: Option<u64>,
    /// No progress bars or chatter (results are still printed).
    #[arg(long, short, global = true, help_heading = GLOBAL)]
    pub quiet: bool,
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// Top-level commands.
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Target SDEs.
    Sde {
        #[command(subcommand)]
        cmd: SdeCmd,
    },
    /// Continuous-time RNNs trained by drift-diffusion matching.
    Ddm {
        #[command(subcommand)]
        cmd: DdmCmd,
    },
    /// Self-orthogonalising attractor networks (free energy principle).
    Fep {
        #[command(subcommand)]
        cmd: FepCmd,
    },
    /// Neural Langevin machines: image models trained by a local contrastive rule.
    Nlm {
        #[command(subcommand)]
        cmd: NlmCmd,
    },
    /// Continues a run from its newest checkpoint.
    Resume(ResumeArgs),
    /// Writes the trained parameters as .npy files or one .safetensors file (read on the CPU:
    /// `--device` is not used).
    Export(ExportArgs),
    /// Checks every checkpoint of a run directory (format and checksum) without changing it.
    Verify(VerifyArgs),
    /// Lists the runs in a folder: family, steps, state, last loss, time since the last change.
    ///
    /// A run is `running` while a process holds its lock, `finished` at its configured total,
    /// `diverged` after a non-finite value, `interrupted` otherwise (`attractor resume`
    /// continues it).
    Runs(RunsArgs),
    /// Benchmarks (throughput in steps/s and GFLOP/s).
    Bench {
        #[command(subcommand)]
        cmd: BenchCmd,
    },
    /// Lists the compiled backends and the GPU adapters visible to wgpu.
    Devices,
    /// Prints a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `attractor sde …`
#[derive(Subcommand, Debug)]
pub enum SdeCmd {
    /// Lists the built-in targets with their parameters and defaults.
    List,
    /// Parses a user TOML file and prints what was understood.
    Check {
        /// Path of the TOML file.
        file: PathBuf,
    },
}

/// Options shared by commands that create a run.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Run directory (default: `checkpoints/<model>-<time>`).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// JSON file with configuration values (any subset of the keys of config.json).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override any configuration key: --set key=value (repeatable). The keys are those of a
    /// run's config.json, tabled with their defaults in docs/ddm.md, docs/nlm.md, docs/fep.md.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Replace an existing run in --run-dir.
    #[arg(long)]
    pub overwrite: bool,
}

/// `attractor ddm …`
#[derive(Subcommand, Debug)]
pub enum DdmCmd {
    /// Trains a network to embed a target SDE.
    Train {
        /// Target: built-in name (see `attractor sde list`) or path of a TOML file.
        #[arg(long)]
        sde: Option<crate::sde::target::SdeSource>,
        /// Target parameter override name=value (repeatable).
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// Number of neurons N.
        #[arg(long)]
        neurons: Option<usize>,
        /// Training iterations.
        #[arg(long, alias = "iterations")]
        iters: Option<u64>,
        /// Points per iteration.
        #[arg(long)]
        batch: Option<usize>,
        /// Initial learning rate.
        #[arg(long)]
        lr: Option<f64>,
        /// Connectivity of the network.
        #[arg(long, value_enum)]
        connectivity: Option<crate::models::ctrnn::Connectivity>,
        /// Readout initialisation.
        #[arg(long, value_enum)]
        init: Option<crate::models::ddm::Init>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Simulates the trained network (or the target) and writes trajectories and a plot; once
    /// both have been simulated, also `simulate_compare.png`, the two overlaid.
    Simulate(ddm::SimulateArgs),
    /// Measures how well the network reproduces the target: DIR/eval.json.
    Eval(ddm::EvalArgs),
    /// Symmetric/antisymmetric and reversible/irreversible decompositions: PNGs, decompose.json.
    Decompose(ddm::DecomposeArgs),
}

/// `attractor fep …`
#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum FepCmd {
    /// Trains networks on patterns with the local predictive-coding rule.
    Train {
        /// `digits` (bundled 8×8 digits, first 10) or a .npy / CSV file or a folder of PNGs.
        #[arg(long)]
        patterns: Option<crate::data::patterns::PatternSource>,
        /// Evidence level (bias = evidence × pattern).
        #[arg(long)]
        evidence: Option<f64>,
        /// Precision (inverse temperature) β.
        #[arg(long)]
        beta: Option<f64>,
        /// Learning rate α.
        #[arg(long)]
        lr: Option<f64>,
        /// Epochs (pattern presentations).
        #[arg(long)]
        epochs: Option<u64>,
        /// Steps per epoch.
        #[arg(long)]
        steps_per_epoch: Option<usize>,
        /// Pattern order.
        #[arg(long, value_enum)]
        order: Option<crate::models::fep::Order>,
        /// Learning rule (default: code).
        #[arg(long, value_enum)]
        rule: Option<crate::models::fep::Rule>,
        /// Independent networks trained together (seeds).
        #[arg(long)]
        networks: Option<usize>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Distinct deterministic attractors: attractors.npy and a PNG beside the patterns.
    Attractors(fep::AttractorsArgs),
    /// Attractor count, orthogonality, retrieval and generalisation ΔR², asymmetry: eval.json.
    Eval(fep::EvalArgs),
    /// Free-running replay with zero input: states.npy, raster PNG, forward-transition fraction.
    RunFree(fep::RunFreeArgs),
    /// The regime grid (evidence × precision × seeds) as one batched run: sweep.json, heat maps.
    Sweep(fep::SweepArgs),
    /// Reconstruction from noisy cues held as input bias: recall.npy, PNG, recall.json.
    Recall(fep::RecallArgs),
}

/// `attractor nlm …`
#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum NlmCmd {
    /// Trains an NLM on images with persistent Langevin chains.
    Train {
        /// `mnist` (bundled), an IDX folder or a folder of same-size PNGs.
        #[arg(long)]
        data: Option<crate::data::images::ImageSource>,
        /// Labels to keep, e.g. 1,3,6 ('' for all).
        #[arg(long)]
        digits: Option<String>,
        /// Training images (the first of the pool).
        #[arg(long)]
        n_data: Option<usize>,
        /// Parameter updates.
        #[arg(long)]
        updates: Option<u64>,
        /// Persistent chains M.
        #[arg(long)]
        chains: Option<usize>,
        /// Data minibatch B.
        #[arg(long)]
        batch: Option<usize>,
        /// Langevin steps per update k.
        #[arg(long)]
        steps_per_update: Option<usize>,
        /// Negative-phase sampler.
        #[arg(long, value_enum)]
        sampler: Option<crate::models::nlm::Sampler>,
        /// Adam learning rate.
        #[arg(long)]
        lr: Option<f64>,
        /// Average-pool images by this factor (2: 28×28 → 14×14).
        #[arg(long)]
        pool: Option<usize>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Generates images from fresh chains: grid PNG (and .npy, snapshots).
    Generate(nlm::GenerateArgs),
    /// One long chain: snapshots and its trajectory over the data's principal components.
    Explore(nlm::ExploreArgs),
    /// Corrupts images and restores them by noise-free relaxation: PNGs and denoise.json.
    Denoise(nlm::DenoiseArgs),
    /// E_AAI, Acc_S, Acc_T, E², mean pixel against training and held-out images: eval.json.
    Eval(nlm::EvalArgs),
    /// Plots several eval.json files against data size or t_age (sweeps, out-of-equilibrium).
    Summarize(nlm::SummarizeArgs),
}

/// `attractor resume`
#[derive(Args, Debug)]
pub struct ResumeArgs {
    /// Run directory.
    #[arg(long)]
    pub run_dir: PathBuf,
    /// Stop at this step (default: the run's total; it cannot go past it: see --total).
    #[arg(long)]
    pub until: Option<u64>,
    /// Train the run to this total instead of its configured one (a finished run continues;
    /// config.json is updated; a learning rate that decays over the run is re-planned over the
    /// new total from the current step on, so the numbers differ from a run started with it).
    #[arg(long, visible_aliases = ["updates", "iters", "epochs"])]
    pub total: Option<u64>,
}

/// `attractor verify`
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Run directory.
    #[arg(long)]
    pub run_dir: PathBuf,
}

/// `attractor runs`
#[derive(Args, Debug)]
pub struct RunsArgs {
    /// Folder holding run directories (searched 4 levels deep); may be one run directory.
    #[arg(default_value = crate::run::DEFAULT_ROOT)]
    pub dir: PathBuf,
    /// Print a JSON array (one object per run, every field) instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// `attractor export`
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Run directory.
    #[arg(long)]
    pub run_dir: PathBuf,
    /// npy (one file per tensor), safetensors (one file) or burnpack (Burn's record of the
    /// network, `model.bpk` + `model.json`).
    #[arg(long, value_enum, default_value_t = family::ExportFormat::Npy)]
    pub format: family::ExportFormat,
    /// Output directory (default: DIR/export).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `attractor bench …`
#[derive(Subcommand, Debug)]
pub enum BenchCmd {
    /// DDM training iterations/s and simulation trajectory-steps/s.
    Ddm(crate::analysis::bench::DdmBenchArgs),
    /// Single tensor operations (ms per call) on each backend.
    Ops(crate::analysis::bench::OpsBenchArgs),
    /// FEP training network-steps/s (single networks and the batched Sim-2 grid).
    Fep(crate::analysis::bench::FepBenchArgs),
    /// NLM Langevin chain-steps/s and training updates/s.
    Nlm(crate::analysis::bench::NlmBenchArgs),
}

/// Entry point: runs the CLI and returns the process exit code (see [`crate::error::exit`]).
pub fn main() -> i32 {
    device::quiet_headless_vulkan();
    let cli = match help::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    logging::init(cli.quiet);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            crate::error::exit_code(&e)
        }
    }
}

/// Resolves `--device`; names the backend taken on stderr — always for `auto` (even with
/// `--quiet`: a GPU machine that silently trains on the CPU must not go unnoticed), otherwise
/// unless `--quiet`.
fn select_device(cli: &Cli) -> Result<Selected> {
    let sel = device::select(cli.device)?;
    if !cli.quiet {
        log::info!("device: {}", sel.description);
    } else if cli.device == DeviceChoice::Auto {
        say(&format!("device: {}", sel.description));
    }
    Ok(sel)
}

/// The global options, gathered once for a command: the library context (device, progress
/// bars unless `--quiet`, a stop flag), the seed override and `--quiet`.
pub struct Global {
    /// Device, progress observer and stop flag, as every library operation takes them.
    pub ctx: Ctx,
    /// `--seed`, overriding the run's own where a command draws random numbers.
    pub seed: Option<u64>,
    /// `--quiet`.
    pub quiet: bool,
}

impl Global {
    /// Resolves `--device` (see [`select_device`]) and opens the context.
    fn new(cli: &Cli) -> Result<Self> {
        let sel = select_device(cli)?;
        Ok(Self {
            ctx: Ctx::new(sel.device).with_control(Control::new(std::sync::Arc::new(
                bars::Bars::new(cli.quiet),
            ))),
            seed: cli.seed,
            quiet: cli.quiet,
        })
    }
    /// The same, with Ctrl-C (and SIGTERM, SIGHUP) raising the stop flag: the training driver
    /// then checkpoints and stops (exit code 130); a second signal exits at once.
    fn stoppable(cli: &Cli) -> Result<Self> {
        let g = Self::new(cli)?;
        let stop: Stop = g.ctx.control.stop.clone();
        let _ = ctrlc::set_handler(move || {
            if stop.request() {
                std::process::exit(130);
            }
        });
        Ok(g)
    }
}

fn run(cli: Cli) -> Result<i32> {
    match &cli.cmd {
        Cmd::Sde { cmd: SdeCmd::List } => {
            for b in catalogue() {
                println!("{}\n    {}", b.name, b.doc);
                for p in &b.params {
                    println!("    --param {}={}   {}", p.name, p.default, p.doc);
                }
            }
            println!(
                "\nUser systems: --sde path/to/file.toml (see docs/reference.md, `User-defined SDEs`)."
            );
            Ok(0)
        }
        Cmd::Sde {
            cmd: SdeCmd::Check { file },
        } => {
            print!("{}", crate::sde::expr::load_user_sde(file)?.summary());
            Ok(0)
        }
        Cmd::Completions { shell } => {
            let mut script = Vec::new();
            help::completions(*shell, &mut script);
            write_stdout(&script)?;
            Ok(0)
        }
        Cmd::Devices => {
            write_stdout(device::inventory()?.as_bytes())?;
            Ok(0)
        }
        Cmd::Ddm { cmd } => ddm(&cli, cmd),
        Cmd::Fep { cmd } => fep(&cli, cmd),
        Cmd::Nlm { cmd } => nlm(&cli, cmd),
        Cmd::Resume(a) => resume(&cli, a),
        Cmd::Export(a) => export(a),
        Cmd::Verify(a) => verify(a),
        Cmd::Runs(a) => runs(a),
        Cmd::Bench { cmd } => bench(&cli, cmd),
    }
}

/// `bench`: each benchmark measures the backends of its `--devices`; without them, the global
/// `--device` when one is given, else every compiled backend.
fn bench(cli: &Cli, cmd: &BenchCmd) -> Result<i32> {
    use crate::analysis::bench;
    let pick = |given: &[DeviceChoice]| -> Vec<DeviceChoice> {
        match (given.is_empty(), cli.device) {
            (true, DeviceChoice::Auto) | (false, _) => given.to_vec(),
            (true, d) => vec![d],
        }
    };
    match cmd {
        BenchCmd::Fep(a) => bench::fep(&bench::FepBenchArgs {
            devices: pick(&a.devices),
            ..a.clone()
        })?,
        BenchCmd::Nlm(a) => bench::nlm(&bench::NlmBenchArgs {
            devices: pick(&a.devices),
            ..a.clone()
        })?,
        BenchCmd::Ops(a) => bench::ops(&bench::OpsBenchArgs {
            devices: pick(&a.devices),
            ..a.clone()
        })?,
        BenchCmd::Ddm(a) => bench::ddm(
            &bench::DdmBenchArgs {
                devices: pick(&a.devices),
                ..a.clone()
            },
            cli.quiet,
        )?,
    }
    Ok(0)
}

/// Writes `bytes` to standard output. A reader that went away (`attractor completions bash |
/// head`) is not an error: the output was wanted only in part.
pub fn write_stdout(bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to standard output")
        }
        _ => Ok(()),
    }
}

/// Explicit CLI flags as configuration overrides (`{key: value}` objects, absent flags skipped).
fn flags(pairs: &[(&str, Option<serde_json::Value>)]) -> Vec<serde_json::Value> {
    pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| serde_json::json!({ *k: v })))
        .collect()
}

fn nlm(cli: &Cli, cmd: &NlmCmd) -> Result<i32> {
    use self::nlm as an;
    match cmd {
        NlmCmd::Train {
            data,
            digits,
            n_data,
            updates,
            chains,
            batch,
            steps_per_update,
            sampler,
            lr,
            pool,
            run,
        } => {
            let digits = digits
                .as_deref()
                .map(crate::data::images::parse_digits)
                .transpose()?;
            let extra = flags(&[
                ("data", data.as_ref().map(|v| v.to_string().into())),
                ("digits", digits.map(Into::into)),
                ("n_data", n_data.map(Into::into)),
                ("updates", updates.map(Into::into)),
                ("chains", chains.map(Into::into)),
                ("batch", batch.map(Into::into)),
                ("steps_per_update", steps_per_update.map(Into::into)),
                ("sampler", sampler.map(|v| v.to_string().into())),
                ("lr", lr.map(Into::into)),
                ("pool", pool.map(Into::into)),
                ("seed", cli.seed.map(Into::into)),
            ]);
            train::<family::NlmFamily>(cli, run, &extra)
        }
        NlmCmd::Generate(a) => an::generate_cmd(a, &Global::new(cli)?).map(|_| 0),
        NlmCmd::Explore(a) => an::explore_cmd(a, &Global::new(cli)?).map(|_| 0),
        NlmCmd::Denoise(a) => an::denoise_cmd(a, &Global::new(cli)?).map(|_| 0),
        NlmCmd::Eval(a) => an::eval_cmd(a, &Global::new(cli)?).map(|_| 0),
        NlmCmd::Summarize(a) => an::summarize_cmd(a).map(|_| 0),
    }
}

/// `<family> train`: the configuration from the defaults, the file, the `--set`s and then the
/// explicit flags in `extra`; trained by the library.
fn train<F: Family>(cli: &Cli, run: &RunArgs, extra: &[serde_json::Value]) -> Result<i32> {
    let cfg: F::Config = crate::config::build(
        &<F::Config as family::RunConfig>::defaults(),
        run.config.as_deref(),
        &run.sets,
        extra,
    )?;
    let place = family::RunPlace {
        run_dir: run.run_dir.clone(),
        overwrite: run.overwrite,
    };
    let g = Global::stoppable(cli)?;
    let report = family::train(cfg, &place, &g.ctx)?;
    Ok(finish::<F>(&report, cli.quiet))
}

/// The closing line of `train` and `resume`: what was done (this process trained from its
/// start step in its time), where it is, and what to run next; the exit code.
fn finish<F: Family>(r: &family::TrainReport, quiet: bool) -> i32 {
    let dir = r.run_dir.display();
    if r.interrupted {
        // Said even with --quiet.
        say(&format!(
            "interrupted at {} {}; checkpoint saved. Continue with: attractor resume --run-dir {dir}",
            F::STEP,
            r.step
        ));
        return crate::error::exit::INTERRUPTED;
    }
    if !quiet {
        log::info!(
            "finished: {} done ({} in {:.1} s), run directory {dir}. Next: {} --run-dir {dir}",
            family::steps::<F>(r.step),
            r.step.saturating_sub(r.start),
            r.seconds,
            F::NEXT
        );
    }
    0
}

/// A line on stderr that is said even with `--quiet` (which silences the library's messages):
/// its log target passes [`logging::QUIET_FILTER`].
fn say(line: &str) {
    log::info!(target: logging::SAY, "{line}");
}

fn ddm(cli: &Cli, cmd: &DdmCmd) -> Result<i32> {
    match cmd {
        DdmCmd::Train {
            sde,
            params,
            neurons,
            iters,
            batch,
            lr,
            connectivity,
            init,
            run,
        } => {
            let extra = flags(&[
                ("sde", sde.as_ref().map(|v| v.to_string().into())),
                (
                    "params",
                    (!params.is_empty()).then(|| params.clone().into()),
                ),
                ("neurons", neurons.map(Into::into)),
                ("iters", iters.map(Into::into)),
                ("batch", batch.map(Into::into)),
                ("lr", lr.map(Into::into)),
                ("connectivity", connectivity.map(|v| v.to_string().into())),
                ("init", init.map(|v| v.to_string().into())),
                ("seed", cli.seed.map(Into::into)),
            ]);
            train::<family::DdmFamily>(cli, run, &extra)
        }
        DdmCmd::Simulate(a) => ddm::simulate_cmd(a, &Global::new(cli)?).map(|_| 0),
        DdmCmd::Eval(a) => ddm::eval_cmd(a, &Global::new(cli)?).map(|_| 0),
        DdmCmd::Decompose(a) => ddm::decompose_cmd(a, &Global::new(cli)?).map(|_| 0),
    }
}

fn fep(cli: &Cli, cmd: &FepCmd) -> Result<i32> {
    use self::fep as fc;
    match cmd {
        FepCmd::Train {
            patterns,
            evidence,
            beta,
            lr,
            epochs,
            steps_per_epoch,
            order,
            rule,
            networks,
            run,
        } => {
            let extra = flags(&[
                ("patterns", patterns.as_ref().map(|v| v.to_string().into())),
                ("evidence", evidence.map(Into::into)),
                ("beta", beta.map(Into::into)),
                ("lr", lr.map(Into::into)),
                ("epochs", epochs.map(Into::into)),
                ("steps_per_epoch", steps_per_epoch.map(Into::into)),
                ("order", order.map(|v| v.to_string().into())),
                ("rule", rule.map(|v| v.to_string().into())),
                ("networks", networks.map(Into::into)),
                ("seed", cli.seed.map(Into::into)),
            ]);
            train::<family::FepFamily>(cli, run, &extra)
        }
        FepCmd::Attractors(a) => fc::attractors_cmd(a, &Global::new(cli)?).map(|_| 0),
        FepCmd::Eval(a) => fc::eval_cmd(a, &Global::new(cli)?).map(|_| 0),
        FepCmd::Recall(a) => fc::recall_cmd(a, &Global::new(cli)?).map(|_| 0),
        FepCmd::Sweep(a) => fc::sweep_cmd(a, &Global::stoppable(cli)?).map(|_| 0),
        FepCmd::RunFree(a) => fc::run_free_cmd(a, &Global::new(cli)?).map(|_| 0),
    }
}

/// Prints one JSON line: the checkpoints (step, file, ok, error), leftover temporary files and
/// whether all are usable; exit code 0 when every checkpoint loads, 2 otherwise.
fn verify(a: &VerifyArgs) -> Result<i32> {
    let v = checkpoint::verify(&a.run_dir)?;
    // Through a `Value`: keys in sorted order, one line, as this command always printed.
    println!("{}", serde_json::to_value(&v)?);
    Ok(if v.ok {
        0
    } else {
        crate::error::exit::BAD_INPUT
    })
}

/// Prints the runs of a folder as a table, or as JSON with `--json`.
fn runs(a: &RunsArgs) -> Result<i32> {
    let list = crate::run::list_runs(&a.dir)?;
    let text = if a.json {
        serde_json::to_string_pretty(&list)? + "\n"
    } else if list.is_empty() {
        format!("no runs in {}\n", a.dir.display())
    } else {
        runs_table(a, &list)
    };
    write_stdout(text.as_bytes())?;
    Ok(0)
}

/// The table `attractor runs` prints.
fn runs_table(a: &RunsArgs, list: &[crate::run::RunSummary]) -> String {
    let rows: Vec<[String; 6]> = list
        .iter()
        .map(|r| {
            let name = r.path.strip_prefix(&a.dir).unwrap_or(&r.path);
            let name = if name.as_os_str().is_empty() {
                r.path.display().to_string()
            } else {
                name.display().to_string()
            };
            [
                name,
                r.family.clone(),
                r.state.to_string(),
                match r.total_steps {
                    Some(t) => format!("{}/{t}", r.step),
                    None => r.step.to_string(),
                },
                r.loss.map_or("-".into(), |l| format!("{l:.4e}")),
                format!("{} ago", crate::run::human_age(r.age_s)),
            ]
        })
        .collect();
    let head = ["RUN", "FAMILY", "STATE", "STEPS", "LOSS", "CHANGED"];
    let mut width = head.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let s: Vec<String> = cells
            .iter()
            .zip(width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", s.join("  ").trim_end())
    };
    let mut out = line(&head.map(String::from));
    for r in &rows {
        out.push_str(&line(r));
    }
    out
}

fn resume(cli: &Cli, a: &ResumeArgs) -> Result<i32> {
    let run = crate::api::Run::open(&a.run_dir)?;
    struct Say<'a>(&'a Cli, &'a crate::api::Run, &'a ResumeArgs);
    impl family::Visit for Say<'_> {
        type Out = Result<i32>;
        fn visit<F: Family>(self) -> Result<i32> {
            let (cli, run, a) = (self.0, self.1, self.2);
            let g = Global::stoppable(cli)?;
            let o = family::ResumeOptions {
                until: a.until,
                total: a.total,
            };
            match run.resume(o, &g.ctx)? {
                family::Resumed::Trained(r) => Ok(finish::<F>(&r, cli.quiet)),
                family::Resumed::AlreadyComplete { step, total } => {
                    let dir = run.path().display();
                    // Said even with --quiet: it is the command's only result.
                    say(&format!(
                        "{dir} is already complete ({} of {total}); nothing to do. To train it \
                         longer: attractor resume --run-dir {dir} --total N (N > {total}). \
                         Next: {} --run-dir {dir}",
                        family::steps::<F>(step),
                        F::NEXT
                    ));
                    Ok(0)
                }
            }
        }
    }
    family::dispatch(run.kind().name(), Say(cli, &run, a))
        .with_context(|| format!("resume: {}", run.path().join("config.json").display()))?
}

fn export(a: &ExportArgs) -> Result<i32> {
    let run = crate::api::Run::open(&a.run_dir)?;
    let out = a.out.clone().unwrap_or_else(|| run.path().join("export"));
    let said = run.export(a.format, &out).context("export")?;
    println!("{said}");
    Ok(0)
}

/// What the command modules' tests share.
#[cfg(test)]
pub(crate) mod test_support {
    /// A command's arguments as the command line reads them when only `--run-dir` is given:
    /// every other value is its declared default.
    pub(crate) fn bare_args<A: clap::Args + clap::FromArgMatches>(cmd: &'static str) -> A {
        let m = A::augment_args(clap::Command::new(cmd))
            .try_get_matches_from([cmd, "--run-dir", "r"])
            .expect("only --run-dir is required");
        A::from_arg_matches(&m).expect("the matches fit the arguments")
    }
}
