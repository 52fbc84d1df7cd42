//! `attractor nlm …` analysis commands: the argument structs of `nlm generate`, `eval`,
//! `explore`, `denoise` and `summarize` (their help text), and handlers that turn them into the
//! options of [`crate::api::nlm`], call the operation, write its PNG grids, figures, JSON and
//! `.npy` files, and print. `nlm train` is dispatched in `cli/mod.rs`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use crate::analysis::nlm::{GenSampler, Init, Stop};
use crate::api::nlm as api;
use crate::checkpoint::atomic_write;
use crate::plot::{Figure, palette, save_rgb_png};

/// How `generate` and `eval` sample the model.
#[derive(Args, Debug, Clone)]
pub struct SamplerArgs {
    /// `langevin` (Langevin dynamics at the run's temperature T, the paper's sampler) or
    /// `tempering` (replica exchange: the same distribution at T, with `--replicas` copies of
    /// every chain on a temperature ladder up to `--t-max`·T exchanging states; costs
    /// `--replicas` times the steps).
    #[arg(long, value_enum, default_value_t = GenSampler::Langevin)]
    pub sampler: GenSampler,
    /// `tempering`: temperatures on the ladder, T included.
    #[arg(long, default_value_t = 4)]
    pub replicas: usize,
    /// `tempering`: the hottest temperature over T.
    #[arg(long, default_value_t = 2.0)]
    pub t_max: f64,
    /// `tempering`: Langevin steps between exchange rounds.
    #[arg(long, default_value_t = 10)]
    pub swap_every: usize,
}

impl SamplerArgs {
    /// The library's sampler options.
    pub fn options(&self) -> api::SamplerOptions {
        api::SamplerOptions {
            sampler: self.sampler,
            replicas: self.replicas,
            t_max: self.t_max,
            swap_every: self.swap_every,
        }
    }
}

/// Which parameters of a run to load.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Run directory.
    #[arg(long)]
    pub run_dir: PathBuf,
    /// Use the t_age snapshot of this many updates (`tage/`) instead of the newest checkpoint.
    #[arg(long)]
    pub tage: Option<u64>,
    /// Use the untrained initial parameters of the run's configuration (a control).
    #[arg(long)]
    pub untrained: bool,
    /// Sample at this temperature instead of the run's (a diagnostic: the paper trains and
    /// samples at T = 1; a lower T shows how much of the samples' distance to the data is
    /// thermal noise).
    #[arg(long)]
    pub temperature: Option<f64>,
}

impl ModelArgs {
    /// The library's model options.
    pub fn options(&self) -> api::ModelOptions {
        api::ModelOptions {
            tage: self.tage,
            untrained: self.untrained,
            temperature: self.temperature,
        }
    }
}

fn grid_png(images: &[Vec<f32>], im: &api::RunImages, cols: usize, path: &Path) -> Result<()> {
    save_rgb_png(&im.grid(images, cols), path)
}

fn rows_of(v: &[f32], dim: usize) -> Vec<Vec<f32>> {
    v.chunks(dim).map(<[f32]>::to_vec).collect()
}

fn parse_list(s: &str) -> Result<Vec<usize>> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<usize>()
                .with_context(|| format!("`{t}` is not a step count"))
        })
        .collect()
}

/// A report as JSON text: through a `Value`, so that the keys come out sorted.
fn pretty<T: Serialize>(report: &T) -> Result<String> {
    Ok(serde_json::to_string_pretty(&serde_json::to_value(
        report,
    )?)?)
}

// ---------------------------------------------------------------------------------------------
// generate
// ---------------------------------------------------------------------------------------------

/// Arguments of `nlm generate`.
#[derive(Args, Debug, Clone)]
pub struct GenerateArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub model: ModelArgs,
    /// Chains (images).
    #[arg(long, default_value_t = 100)]
    pub chains: usize,
    /// Langevin steps (dt from the run's configuration). Fresh chains from N(0, 1) reach the
    /// model's class balance slowly: on the bundled digits the samples' class shares are still
    /// skewed after 2000 steps (total variation 0.29 from the data's) and balanced after 10 000
    /// (0.06); the paper generates for about 25 000.
    #[arg(long, default_value_t = 10_000)]
    pub steps: usize,
    /// Output PNG (default DIR/generate.png).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write the final tanh(x) as `[chains, N]` .npy.
    #[arg(long)]
    pub npy: Option<PathBuf>,
    /// Also write a grid every this many steps (DIR/snapshots/`grid-<step>.png`).
    #[arg(long)]
    pub snapshots: Option<usize>,
    /// Where the chains start: `noise` (N(0, 1)), `data` (the training images, cycled) or
    /// `held-out` (the held-out images, cycled).
    #[arg(long, value_enum, default_value_t = Init::Noise)]
    pub init: Init,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub sampler: SamplerArgs,
}

/// What `nlm generate` prints: the report and the grid's file.
#[derive(Serialize)]
struct GenerateOut<'a> {
    #[serde(flatten)]
    report: &'a api::Generated,
    png: &'a Path,
}

impl GenerateArgs {
    /// The operation's options (`seed`: `--seed`).
    pub fn options(&self, seed: Option<u64>) -> api::GenerateOptions {
        api::GenerateOptions {
            model: self.model.options(),
            seed,
            chains: self.chains,
            steps: self.steps,
            snapshots: self.snapshots,
            init: self.init,
            sampler: self.sampler.options(),
        }
    }
}

/// `nlm generate`.
pub fn generate_cmd(a: &GenerateArgs, cx: &super::Global) -> Result<api::Generated> {
    let g = api::generate(&a.model.run_dir, &a.options(cx.seed), &cx.ctx)?;
    let dim = g.images.dim();
    let cols = (a.chains as f64).sqrt().ceil() as usize;
    if a.snapshots.is_some() {
        let dir = g.images.file("snapshots");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        for (k, v) in &g.frames {
            let path = dir.join(format!("grid-{k:07}.png"));
            grid_png(&rows_of(v, dim), &g.images, cols, &path)?;
        }
    }
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| g.images.file("generate.png"));
    grid_png(&rows_of(g.samples(), dim), &g.images, cols, &out)?;
    if let Some(p) = &a.npy {
        crate::npy::write_npy_f32(p, &[a.chains, dim], g.samples())?;
    }
    let printed = GenerateOut {
        report: &g,
        png: &out,
    };
    println!("{}", serde_json::to_value(printed)?);
    log::info!("wrote {}", out.display());
    Ok(g)
}

// ---------------------------------------------------------------------------------------------
// eval
// ---------------------------------------------------------------------------------------------

/// Arguments of `nlm eval`.
#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub model: ModelArgs,
    /// Generated images (and as many reference images, capped by the set sizes).
    #[arg(long, default_value_t = 1000)]
    pub n_gen: usize,
    /// Langevin steps from N(0, 1) before the samples are taken: as `nlm generate`'s default
    /// (the paper measures E² after at least 5000; fresh chains approach the model's class
    /// balance slowly: on the bundled digits the class-share TV is 0.185 after 5000 steps and
    /// 0.130 after 10 000).
    #[arg(long, default_value_t = 10000)]
    pub gen_steps: usize,
    /// Also measure at these generation steps (comma list), into `trace` (out-of-equilibrium
    /// study).
    #[arg(long)]
    pub record_at: Option<String>,
    /// Also relax the final samples this many noise-free steps (the denoising dynamics) and
    /// report their metrics under `relaxed` — a diagnostic of how much of the distance to the
    /// data is the sampling noise at T = 1; the main metrics stay the paper's.
    #[arg(long, default_value_t = 0)]
    pub relax_steps: usize,
    /// Where the chains start: `noise` (N(0, 1), the paper's protocol) or `data` (the training
    /// images in x-space, cycled — a diagnostic: the samples then show the model's equilibrium
    /// around the data without the search for it; `start_dist` is the median distance of a
    /// sample to its own starting image, `start_ratio` that over `ref_nn`) or `held-out` (the
    /// held-out images, never trained on: after a few steps, new digits with the model's
    /// thermal jitter — what a perfectly generalising model would score at this temperature).
    #[arg(long, value_enum, default_value_t = Init::Noise)]
    pub init: Init,
    /// Independent sample sets of `--n-gen` chains each (generated together): every metric is
    /// then the mean over the sets, with `<metric>_sd` and each set's own figures under
    /// `repeats` (E_AAI of one set of 1000 samples scatters by about ±0.004).
    #[arg(long, default_value_t = 1)]
    pub repeats: usize,
    /// Output JSON (default DIR/eval.json).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub sampler: SamplerArgs,
}

impl EvalArgs {
    /// The operation's options (`seed`: `--seed`); fails on a malformed `--record-at`.
    pub fn options(&self, seed: Option<u64>) -> Result<api::EvalOptions> {
        Ok(api::EvalOptions {
            model: self.model.options(),
            seed,
            n_gen: self.n_gen,
            gen_steps: self.gen_steps,
            record_at: match &self.record_at {
                Some(s) => parse_list(s)?,
                None => Vec::new(),
            },
            relax_steps: self.relax_steps,
            init: self.init,
            repeats: self.repeats,
            sampler: self.sampler.options(),
        })
    }
}

/// `nlm eval`: writes eval.json and returns the report.
pub fn eval_cmd(a: &EvalArgs, cx: &super::Global) -> Result<api::EvalReport> {
    let r = api::eval(&a.model.run_dir, &a.options(cx.seed)?, &cx.ctx)?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| a.model.run_dir.join("eval.json"));
    atomic_write(&out, pretty(&r)?.as_bytes())?;
    let m = &r.metrics;
    let sd = match m.e_aai_sd {
        Some(sd) => format!(" ± {sd:.4} over {} sets", a.repeats),
        None => String::new(),
    };
    let classes = match &r.classes {
        Some(c) => format!(
            ", class shares TV {:.3} ({} starved)",
            c.class_tv, c.classes_starved
        ),
        None => String::new(),
    };
    println!(
        "t_age {}: E_AAI {:.4}{sd} (Acc_S {:.3}, Acc_T {:.3}), E² {:.5}, mean pixel {:.3} (data {:.3}), inverted {:.1} %, energy {:.1} (data {:.1}, N·T/2 {:.1}){classes}",
        r.t_age,
        m.e_aai,
        m.acc_s,
        m.acc_t,
        m.e2,
        m.mean_pixel,
        m.data_mean_pixel,
        100.0 * m.inverted_frac,
        r.energy_gen,
        r.energy_data,
        r.energy_thermal,
    );
    log::info!("wrote {}", out.display());
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// explore
// ---------------------------------------------------------------------------------------------

/// Arguments of `nlm explore`.
#[derive(Args, Debug, Clone)]
pub struct ExploreArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub model: ModelArgs,
    /// Steps of the one chain.
    #[arg(long, default_value_t = 30_000)]
    pub steps: usize,
    /// Snapshot period (steps).
    #[arg(long, default_value_t = 1500)]
    pub every: usize,
    /// Trajectory sampling period (steps) for the PCA plot.
    #[arg(long, default_value_t = 20)]
    pub record_every: usize,
    /// Data images defining the principal components.
    #[arg(long, default_value_t = 400)]
    pub pca_images: usize,
}

impl ExploreArgs {
    /// The operation's options (`seed`: `--seed`).
    pub fn options(&self, seed: Option<u64>) -> api::ExploreOptions {
        api::ExploreOptions {
            model: self.model.options(),
            seed,
            steps: self.steps,
            every: self.every,
            record_every: self.record_every,
            pca_images: self.pca_images,
        }
    }
}

/// `nlm explore`: one long chain; snapshots PNG, PCA trajectory PNG, trajectory .npy and
/// explore.json in the run directory.
pub fn explore_cmd(a: &ExploreArgs, cx: &super::Global) -> Result<api::Explored> {
    let e = api::explore(&a.model.run_dir, &a.options(cx.seed), &cx.ctx)?;
    let cols = (e.snapshots.len() as f64).sqrt().ceil().max(1.0) as usize;
    let png = e.images.file("explore.png");
    if !e.snapshots.is_empty() {
        grid_png(&e.snapshots, &e.images, cols, &png)?;
    }
    let pca_png = e.images.file("explore_pca.png");
    explore_figure(&e, a.every).save_png(&pca_png)?;
    let flat: Vec<f64> = e.trajectory.iter().flatten().copied().collect();
    let npy = e.images.file("explore_trajectory.npy");
    crate::npy::write_npy_f64(&npy, &[e.trajectory.len(), 3], &flat)?;
    let v = serde_json::to_value(&e)?;
    let json = e.images.file("explore.json");
    atomic_write(&json, serde_json::to_string_pretty(&v)?.as_bytes())?;
    println!("{v}");
    log::info!(
        "wrote {}, {} and explore.json",
        png.display(),
        pca_png.display()
    );
    Ok(e)
}

/// The chain over the data's principal components: data coloured by class, the trajectory in
/// black, the snapshots (every `every` steps) as larger dots.
fn explore_figure(e: &api::Explored, every: usize) -> Figure {
    let np = e.data_projection.len();
    let mut fig = Figure::new(2, 1, 520, 480);
    for (c, (i, j)) in [(0usize, 1usize), (0, 2)].into_iter().enumerate() {
        let ax = fig.axes(c, 0);
        ax.set_title(&format!("chain over data PCA (PC{} vs PC{})", i + 1, j + 1))
            .set_xlabel(&format!("PC{}", i + 1))
            .set_ylabel(&format!("PC{}", j + 1));
        let coord = |pts: &[Vec<f64>], p: usize| -> Vec<f64> { pts.iter().map(|q| q[p]).collect() };
        let colors: Vec<_> = match &e.data_labels {
            Some(lab) => lab.iter().map(|&c| palette(c as usize)).collect(),
            None => vec![palette(0); np],
        };
        ax.points_colored(
            &coord(&e.data_projection, i),
            &coord(&e.data_projection, j),
            &colors,
        );
        ax.line(
            &coord(&e.trajectory, i),
            &coord(&e.trajectory, j),
            [0, 0, 0],
        );
        let snap = |p: usize| -> Vec<f64> {
            e.trajectory_steps
                .iter()
                .zip(&e.trajectory)
                .filter(|(k, _)| **k > 0 && (**k).is_multiple_of(every))
                .map(|(_, q)| q[p])
                .collect()
        };
        ax.scatter(&snap(i), &snap(j), [0, 0, 0], 4);
        if let Some(lab) = &e.data_labels {
            let mut present: Vec<u8> = lab.clone();
            present.sort_unstable();
            present.dedup();
            let names: Vec<String> = present.iter().map(|c| format!("digit {c}")).collect();
            let entries: Vec<(&str, _)> = names
                .iter()
                .zip(&present)
                .map(|(s, &c)| (s.as_str(), palette(c as usize)))
                .collect();
            ax.legend(&entries);
        }
    }
    fig
}

// ---------------------------------------------------------------------------------------------
// denoise
// ---------------------------------------------------------------------------------------------

/// Arguments of `nlm denoise`.
#[derive(Args, Debug, Clone)]
pub struct DenoiseArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub model: ModelArgs,
    /// Clean input images (PNG, the model's size).
    #[arg(long, num_args = 1..)]
    pub input: Vec<PathBuf>,
    /// Held-out images by index (never trained on).
    #[arg(long, num_args = 1.., value_delimiter = ',')]
    pub test_index: Vec<usize>,
    /// The first K held-out images.
    #[arg(long)]
    pub n_test: Option<usize>,
    /// Corruption: uniform:P (each neuron w.p. P replaced by U(−1, 1) in x-space),
    /// gauss:S (x + N(0, S²)) or mask:P (each neuron w.p. P set to 0, a grey pixel).
    #[arg(long, default_value = "uniform:0.25")]
    pub corrupt: String,
    /// Noise-free relaxation steps (at most, with `--stop energy`).
    #[arg(long, default_value_t = 450)]
    pub steps: usize,
    /// Where each image's relaxation stops: `energy` (when its energy has fallen to the
    /// training images' median energy under the model — the level the data sit at, written by
    /// `nlm train` to DIR/data_energy.json, or computed from the training images for runs
    /// without it) or `minimum` (all `--steps` steps, toward the energy minimum).
    #[arg(long, value_enum, default_value_t = Stop::Energy)]
    pub stop: Stop,
    /// Output PNG (rows: original, corrupted, restored; default DIR/denoise.png).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// What `nlm denoise` writes to its JSON file: the report and the figures' files.
#[derive(Serialize)]
struct DenoiseOut<'a> {
    #[serde(flatten)]
    report: &'a api::DenoiseReport,
    png: &'a Path,
    energy_png: &'a Path,
}

impl DenoiseArgs {
    /// The operation's options (`seed`: `--seed`); fails on a malformed `--corrupt`.
    pub fn options(&self, seed: Option<u64>) -> Result<api::DenoiseOptions> {
        Ok(api::DenoiseOptions {
            model: self.model.options(),
            seed,
            corruption: self.corrupt.parse()?,
            input: self.input.clone(),
            test_index: self.test_index.clone(),
            n_test: self.n_test,
            steps: self.steps,
            stop: self.stop,
        })
    }
}

/// `nlm denoise`: PNG grid, energy PNG and denoise.json; returns the report.
pub fn denoise_cmd(a: &DenoiseArgs, cx: &super::Global) -> Result<api::DenoiseReport> {
    let d = api::denoise(&a.model.run_dir, &a.options(cx.seed)?, &cx.ctx)?;
    let dim = d.images_of.dim();
    // Grid: originals, corrupted, restored (at most 16 columns).
    let show = d.images.min(16);
    let mut imgs: Vec<Vec<f32>> = Vec::new();
    for src in [&d.clean, &d.corrupted, &d.restored] {
        imgs.extend(rows_of(&src[..show * dim], dim));
    }
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| d.images_of.file("denoise.png"));
    grid_png(&imgs, &d.images_of, show, &out)?;
    let stem = out
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("denoise");
    let energy_png = out.with_file_name(format!("{stem}-energy.png"));
    denoise_figure(&d).save_png(&energy_png)?;
    let json_path = out.with_file_name(format!("{stem}.json"));
    let written = DenoiseOut {
        report: &d,
        png: &out,
        energy_png: &energy_png,
    };
    atomic_write(&json_path, pretty(&written)?.as_bytes())?;
    println!(
        "{} images: MSE {:.4} → {:.4} (ratio {:.3}, stop {}{}; best {:.4} at step {}), nearest correct {:.2}, energy {:.3} → {:.3}{}",
        d.images,
        d.mse_corrupted,
        d.mse_restored,
        d.mse_ratio,
        a.stop.name(),
        match d.stop_energy {
            Some(e) => format!(" at energy {e:.1}, mean step {:.1}", d.stop_step_mean),
            None => String::new(),
        },
        d.best_mse,
        d.best_step,
        d.nearest_correct_frac,
        d.energy_initial.unwrap_or(f64::NAN),
        d.energy_final.unwrap_or(f64::NAN),
        if d.energy_monotone {
            " (monotone)"
        } else {
            " (NOT monotone)"
        }
    );
    log::info!(
        "wrote {}, {} and {}",
        out.display(),
        energy_png.display(),
        json_path.display()
    );
    Ok(d)
}

/// The mean energy and the mean MSE to the clean images during the relaxation.
fn denoise_figure(d: &api::DenoiseReport) -> Figure {
    let mut fig = Figure::new(2, 1, 480, 360);
    let steps: Vec<f64> = (0..d.energy.len()).map(|s| s as f64).collect();
    fig.axes(0, 0)
        .set_title("mean energy during relaxation")
        .set_xlabel("step")
        .set_ylabel("E")
        .line(&steps, &d.energy, palette(0));
    fig.axes(1, 0)
        .set_title("mean MSE to the clean images")
        .set_xlabel("step")
        .set_ylabel("MSE")
        .line(&steps, &d.mse, palette(1));
    fig
}

// ---------------------------------------------------------------------------------------------
// summarize (plots over several eval.json files)
// ---------------------------------------------------------------------------------------------

/// Arguments of `nlm summarize`.
#[derive(Args, Debug, Clone)]
pub struct SummarizeArgs {
    /// eval.json files (from `nlm eval`).
    #[arg(long, num_args = 1.., required = true)]
    pub evals: Vec<PathBuf>,
    /// Horizontal axis of the final-state plot: `n_data` or `t_age` (log scale).
    #[arg(long, default_value = "n_data")]
    pub x: String,
    /// Output PNG; a JSON table is written beside it.
    #[arg(long)]
    pub out: PathBuf,
}

/// `nlm summarize`: E_AAI, Acc_S, Acc_T (mean ± sd over files sharing an x value, or over the
/// sample sets of a lone file made with `eval --repeats`; `sd_over` says which) against
/// log10(x); and, where the files hold a `trace` (eval --record-at), E_AAI and E² against
/// log10(generation steps), one curve per file.
pub fn summarize_cmd(a: &SummarizeArgs) -> Result<api::Summary> {
    let o = api::SummarizeOptions { x: a.x.parse()? };
    let s = api::summarize(&a.evals, &o)?;
    summary_figure(&s).save_png(&a.out)?;
    atomic_write(&a.out.with_extension("json"), pretty(&s)?.as_bytes())?;
    for r in &s.table {
        println!("{}", serde_json::to_value(r)?);
    }
    Ok(s)
}

fn summary_figure(s: &api::Summary) -> Figure {
    let xk = s.x.key();
    let has_trace = s.traces.iter().any(Option::is_some);
    let mut fig = Figure::new(if has_trace { 3 } else { 1 }, 1, 520, 400);
    let lx: Vec<f64> = s.table.iter().map(|r| r.x().max(1e-12).log10()).collect();
    let ax = fig.axes(0, 0);
    ax.set_title(&format!("final state vs {xk}"))
        .set_xlabel(&format!("log10 {xk}"))
        .set_ylabel("value")
        .set_ylim(0.0, 1.0)
        .hline(0.5, [160, 160, 160]);
    let cols: [fn(&api::SummaryRow) -> f64; 3] = [|r| r.e_aai, |r| r.acc_s, |r| r.acc_t];
    for (i, col) in cols.iter().enumerate() {
        let ys: Vec<f64> = s.table.iter().map(col).collect();
        ax.line(&lx, &ys, palette(i))
            .scatter(&lx, &ys, palette(i), 3);
    }
    ax.legend(&[
        ("E_AAI", palette(0)),
        ("Acc_S", palette(1)),
        ("Acc_T", palette(2)),
    ]);
    if has_trace {
        for (c, key) in [(1usize, "e_aai"), (2, "e2")] {
            let ax = fig.axes(c, 0);
            ax.set_title(&format!("{key} vs generation time"))
                .set_xlabel("log10 generation steps")
                .set_ylabel(key);
            let mut legend = Vec::new();
            for (i, t) in s.traces.iter().enumerate() {
                let Some(t) = t else {
                    continue;
                };
                let lx: Vec<f64> = t.gen_steps.iter().map(|s| s.max(1.0).log10()).collect();
                let ys = if c == 1 { &t.e_aai } else { &t.e2 };
                ax.line(&lx, ys, palette(i)).scatter(&lx, ys, palette(i), 2);
                legend.push((t.label.as_str(), palette(i)));
            }
            ax.legend(&legend);
        }
    }
    fig
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::test_support::bare_args;

    /// The command line's defaults are the library's: a face that defaulted differently would
    /// give a CLI user and a Rust or Python caller different numbers for the same call.
    #[test]
    fn command_line_defaults_are_the_librarys() {
        let ok = "the defaults parse";
        let g: GenerateArgs = bare_args("generate");
        assert_eq!(g.options(None), api::GenerateOptions::default());
        let e: EvalArgs = bare_args("eval");
        assert_eq!(e.options(None).expect(ok), api::EvalOptions::default());
        let x: ExploreArgs = bare_args("explore");
        assert_eq!(x.options(None), api::ExploreOptions::default());
        let d: DenoiseArgs = bare_args("denoise");
        assert_eq!(d.options(None).expect(ok), api::DenoiseOptions::default());
    }
}
