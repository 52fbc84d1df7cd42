//! `attractor fep …` analysis commands: the argument structs and handlers of `fep attractors`,
//! `eval`, `run-free`, `sweep` (the Sim-2 regime grid as one batched training run) and `recall`
//! (reconstruction from cues held as input bias, the paper's Sim-5 protocol); loading a run
//! ([`load`] into a [`LoadedFep`]), the patterns a configuration names ([`resolve_patterns`]),
//! the couplings figure of `fep train`, and the files they write. The measurements are in
//! [`crate::analysis::fep`]; `fep train` is dispatched in `cli/mod.rs`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use clap::Args;
use serde_json::{Value, json};

use crate::analysis::fep::free::forward_fraction;
use crate::analysis::fep::{
    asymmetry, attractors, corr, infer_mean, orthogonality, reconstruction_dr2, symmetric_part,
};
use crate::checkpoint;
use crate::data::patterns::{
    PatternSet, PatternSource, Patterns, digits_preprocessed, load_patterns,
};
use crate::models::fep::{FepConfig, FepTrainer, streams};
use crate::plot::{Figure, image_grid, save_rgb_png};
use crate::rng::Rng;
use crate::run::RunDir;
use crate::train::{self, DriverOptions, Trainable};

// ---------------------------------------------------------------------------------------------
// Patterns and loading a run
// ---------------------------------------------------------------------------------------------

/// Where the bundled digits live (working directory first, then the source tree).
pub fn digits_path() -> Result<PathBuf> {
    let local = Path::new("data/digits/digits.csv.gz");
    if local.is_file() {
        return Ok(local.to_path_buf());
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/digits/digits.csv.gz");
    if built.is_file() {
        return Ok(built);
    }
    bail!(
        "bundled digits not found (looked for data/digits/digits.csv.gz here and in {})",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Training patterns (and held-out patterns for the digits) named by a configuration.
pub fn resolve_patterns(cfg: &FepConfig) -> Result<(Patterns, Option<Patterns>)> {
    let (mut train, test) = if let PatternSource::Path(path) = &cfg.patterns {
        let mut p = load_patterns(path)?;
        if cfg.zscore {
            crate::data::patterns::zscore_rows(&mut p.data, p.n)
                .with_context(|| format!("cannot z-score the patterns of {}", cfg.patterns))?;
        }
        (p, None)
    } else {
        let (train, test) = digits_preprocessed(&digits_path()?)?;
        (train, Some(test))
    };
    if !cfg.subset.is_empty() {
        let n = train.n;
        let mut data = Vec::new();
        let mut labels = Vec::new();
        for &i in &cfg.subset {
            if i >= train.len() {
                bail!("`subset` index {i} out of range ({} patterns)", train.len());
            }
            data.extend_from_slice(&train.data[i * n..(i + 1) * n]);
            labels.push(train.labels.as_ref().map(|l| l[i]).unwrap_or(i));
        }
        train.data = data;
        train.labels = Some(labels);
    }
    Ok((train, test))
}

/// A trained run loaded for analysis.
pub struct LoadedFep {
    /// Run directory.
    pub rd: RunDir,
    /// Networks with their couplings and training patterns.
    pub trainer: FepTrainer,
    /// Checkpoint step.
    pub step: u64,
    /// Image shape of the patterns, if known.
    pub shape: Option<(usize, usize)>,
    /// Held-out patterns (digits test set).
    pub test: Option<Patterns>,
}

/// Loads the newest checkpoint of a FEP run.
pub fn load(dir: &Path, device: &Device) -> Result<LoadedFep> {
    let rd = RunDir::open(dir)?;
    if rd.meta()?.model != "fep" {
        bail!("{} is not a FEP run", dir.display());
    }
    let cfg: FepConfig = rd.config_or(&FepConfig::new())?;
    let ck = checkpoint::load_latest(rd.path())?
        .with_context(|| format!("{} has no checkpoint", dir.display()))?;
    if ck.kind != "fep" {
        bail!("checkpoint in {} is not a FEP checkpoint", dir.display());
    }
    let pats = ck.array("patterns")?;
    let n = *pats
        .shape
        .get(1)
        .context("bad patterns array in checkpoint")?;
    let data: Vec<f64> = pats.data.iter().map(|&x| x as f64).collect();
    let mut trainer = FepTrainer::new(&cfg, data, n, device)?;
    trainer.restore(&ck)?;
    let (shape, test) = if cfg.patterns == PatternSource::Builtin(PatternSet::Digits) {
        (
            Some((8, 8)),
            resolve_patterns(&cfg).ok().and_then(|(_, t)| t),
        )
    } else {
        (None, None)
    };
    Ok(LoadedFep {
        rd,
        trainer,
        step: ck.step,
        shape,
        test,
    })
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
pub fn attractors_cmd(a: &AttractorsArgs, cx: &super::Global) -> Result<()> {
    let (device, seed, quiet) = (&cx.ctx.device, cx.seed, cx.quiet);
    let l = load(&a.run_dir, device)?;
    let t = &l.trainer;
    if a.network >= t.g {
        bail!(
            "--network {} out of range (the run has {} networks)",
            a.network,
            t.g
        );
    }
    let n = t.n;
    let j = t.j_host(a.network)?;
    let j = if a.symmetric_part {
        symmetric_part(&j, n)
    } else {
        j
    };
    let scaled: Vec<f64> = t
        .patterns
        .iter()
        .map(|x| x * t.evidences[a.network])
        .collect();
    let mut rng = Rng::derived(seed.unwrap_or(t.cfg.seed), streams::EVAL);
    let (_, distinct) = attractors(&j, n, &scaled, &[0.0, 0.1, 0.2, 0.5], &mut rng);
    let flat: Vec<f64> = distinct.iter().flatten().copied().collect();
    let npy = l.rd.file("attractors.npy");
    crate::npy::write_npy_f64(&npy, &[distinct.len(), n], &flat)?;
    let png = l.rd.file("attractors.png");
    let (h, w) = l.shape.unwrap_or((1, n));
    let mut imgs: Vec<Vec<f32>> = (0..t.n_patterns())
        .map(|k| {
            t.patterns[k * n..(k + 1) * n]
                .iter()
                .map(|&x| (x / 3.0).clamp(-1.0, 1.0) as f32)
                .collect()
        })
        .collect();
    let cols = imgs.len().max(distinct.len()).max(1);
    while imgs.len() < cols {
        imgs.push(vec![f32::NAN; n]);
    }
    for d in &distinct {
        imgs.push(d.iter().map(|&x| x as f32).collect());
    }
    while imgs.len() < 2 * cols {
        imgs.push(vec![f32::NAN; n]);
    }
    let scale = if h == 1 {
        4
    } else {
        (64 / h.max(w)).max(4) as u32
    };
    save_rgb_png(&image_grid(&imgs, w, h, cols, -1.0, 1.0, scale), &png)?;
    println!(
        "{} distinct attractors (network {}); top row: training patterns, bottom: attractors",
        distinct.len(),
        a.network
    );
    if !quiet {
        log::info!("wrote {} and {}", npy.display(), png.display());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// eval (and the couplings figure of `fep train`)
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

/// Replaces the patterns that `l` is scored against (`--patterns-of`, `--pattern-index`).
fn select_scored_patterns(l: &mut LoadedFep, a: &EvalArgs) -> Result<()> {
    let n = l.trainer.n;
    if let Some(dir) = &a.patterns_of {
        let ck = checkpoint::load_latest(dir)?
            .with_context(|| format!("{} has no checkpoint", dir.display()))?;
        let pats = ck.array("patterns")?;
        if pats.shape.get(1) != Some(&n) {
            bail!(
                "--patterns-of {}: patterns have shape {:?}, this run has N = {n}",
                dir.display(),
                pats.shape
            );
        }
        l.trainer.patterns = pats.data.iter().map(|&x| x as f64).collect();
    }
    if let Some(dir) = &a.match_norm_of {
        let ck = checkpoint::load_latest(dir)?
            .with_context(|| format!("{} has no checkpoint", dir.display()))?;
        let other = ck.array("J")?;
        let (g2, nn) = match other.shape[..] {
            [g2, a, b] if a == n && b == n && g2 > 0 => (g2, n * n),
            _ => bail!(
                "--match-norm-of {}: couplings have shape {:?}, this run has N = {n}",
                dir.display(),
                other.shape
            ),
        };
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let mut factors = Vec::with_capacity(l.trainer.g);
        for k in 0..l.trainer.g {
            let target = other.data[(k % g2) * nn..(k % g2 + 1) * nn]
                .iter()
                .map(|&x| x as f64)
                .collect::<Vec<_>>();
            let own = norm(&l.trainer.j_host(k)?);
            factors.push(if own > 0.0 { norm(&target) / own } else { 1.0 });
        }
        l.trainer.scale_couplings(&factors)?;
    }
    if !a.pattern_index.is_empty() {
        let p = l.trainer.n_patterns();
        let mut kept = Vec::new();
        for &i in &a.pattern_index {
            if i >= p {
                bail!("--pattern-index {i} out of range ({p} patterns)");
            }
            kept.extend_from_slice(&l.trainer.patterns[i * n..(i + 1) * n]);
        }
        l.trainer.patterns = kept;
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    }
}

fn num(x: f64) -> Value {
    if x.is_finite() { x.into() } else { Value::Null }
}

/// The metrics of every network of a run.
pub fn evaluate(l: &LoadedFep, a: &EvalArgs, seed: u64) -> Result<Value> {
    let t = &l.trainer;
    let n = t.n;
    let p = t.n_patterns();
    let rows: Vec<Vec<f64>> = (0..p)
        .map(|k| t.patterns[k * n..(k + 1) * n].to_vec())
        .collect();
    let (data_full, data_off) = orthogonality(&rows, false);
    let mut per = Vec::new();
    let mut sym_counts = Vec::new();
    let mut pair_corr = Vec::new();
    let mut best_sym = Vec::new();
    for k in 0..t.g {
        let scaled: Vec<f64> = t.patterns.iter().map(|x| x * t.evidences[k]).collect();
        let mut rng = Rng::derived(seed.wrapping_add(k as u64), streams::EVAL);
        let j = t.j_host(k)?;
        let (_, distinct) = attractors(&j, n, &scaled, &[0.0, 0.1, 0.2, 0.5], &mut rng);
        let (orth, orth_off) = orthogonality(&distinct, true);
        let retr = reconstruction_dr2(
            &j,
            n,
            &scaled,
            &mut |i, _| i % p,
            0.1,
            1.0,
            a.trials,
            a.steps,
            1.0,
            &mut rng,
        );
        let generalisation = match &l.test {
            Some(test) if !test.is_empty() => {
                let ts: Vec<f64> = test.data.iter().map(|x| x * t.evidences[k]).collect();
                let np = test.len();
                reconstruction_dr2(
                    &j,
                    n,
                    &ts,
                    &mut |_, r| r.index(np),
                    0.1,
                    1.0,
                    a.trials,
                    a.steps,
                    1.0,
                    &mut rng,
                )
            }
            _ => f64::NAN,
        };
        let (_, distinct_sym) = attractors(
            &symmetric_part(&j, n),
            n,
            &scaled,
            &[0.0, 0.1, 0.2, 0.5],
            &mut rng,
        );
        sym_counts.push(distinct_sym.len() as f64);
        // Per-pattern noise-free end points: their pairwise correlation (Sim 1) and each
        // pattern's best correlation with an attractor of J† (Sim 3).
        let (ends, _) = attractors(&j, n, &scaled, &[0.0], &mut rng);
        if ends.len() == p && p >= 2 {
            let mut cs = Vec::new();
            for a in 0..p {
                for b in (a + 1)..p {
                    cs.push(corr(&ends[a], &ends[b]));
                }
            }
            pair_corr.push(cs.iter().sum::<f64>() / cs.len() as f64);
        } else {
            pair_corr.push(f64::NAN);
        }
        let best: Vec<f64> = (0..p)
            .map(|a| {
                distinct_sym
                    .iter()
                    .map(|v| corr(v, &t.patterns[a * n..(a + 1) * n]))
                    .fold(f64::NEG_INFINITY, f64::max)
            })
            .collect();
        best_sym.push(best.iter().copied().fold(f64::INFINITY, f64::min));
        per.push((
            distinct.len() as f64,
            orth,
            orth_off,
            retr,
            generalisation,
            asymmetry(&j, n),
        ));
    }
    type Row = (f64, f64, f64, f64, f64, f64);
    let col = |f: fn(&Row) -> f64| -> Vec<f64> { per.iter().map(f).collect() };
    let na = col(|x| x.0);
    let o = col(|x| x.1);
    let oo = col(|x| x.2);
    let r = col(|x| x.3);
    let g = col(|x| x.4);
    let asy = col(|x| x.5);
    Ok(json!({
        "step": l.step,
        "networks": t.g,
        "n_attractors": num(median(na.clone())),
        "orthogonality_deg": num(median(o.clone())),
        "orthogonality_offdiag_deg": num(median(oo.clone())),
        "data_orthogonality_deg": num(data_full),
        "data_orthogonality_offdiag_deg": num(data_off),
        "retrieval_dr2": num(median(r.clone())),
        "generalization_dr2": num(median(g.clone())),
        "asymmetry": num(median(asy.clone())),
        "n_attractors_symmetric_part": num(median(sym_counts.clone())),
        "attractor_pairwise_corr": num(median(pair_corr.clone())),
        "min_pattern_best_corr_symmetric_part": num(median(best_sym.clone())),
        "per_network": {
            "n_attractors": na.iter().map(|x| num(*x)).collect::<Vec<_>>(),
            "orthogonality_deg": o.iter().map(|x| num(*x)).collect::<Vec<_>>(),
            "retrieval_dr2": r.iter().map(|x| num(*x)).collect::<Vec<_>>(),
            "generalization_dr2": g.iter().map(|x| num(*x)).collect::<Vec<_>>(),
            "asymmetry": asy.iter().map(|x| num(*x)).collect::<Vec<_>>(),
        },
        "scoring": {"trials": a.trials, "steps": a.steps, "signal": 0.1, "snr": 1.0, "beta": 1.0},
    }))
}

/// `fep eval`: writes `eval.json` and prints it.
pub fn eval_cmd(a: &EvalArgs, cx: &super::Global) -> Result<()> {
    let (device, seed, quiet) = (&cx.ctx.device, cx.seed, cx.quiet);
    if a.trials == 0 || a.steps == 0 {
        bail!("--trials and --steps must be >= 1");
    }
    if a.out.is_empty() || a.out.contains(['/', '\\']) || a.out.starts_with('.') {
        bail!("--out must be a plain file name, got `{}`", a.out);
    }
    let mut l = load(&a.run_dir, device)?;
    select_scored_patterns(&mut l, a)?;
    let v = evaluate(&l, a, seed.unwrap_or(l.trainer.cfg.seed))?;
    let p = l.rd.write_json(&a.out, &v)?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    if !quiet {
        log::info!("wrote {}", p.display());
    }
    Ok(())
}

/// Renders the couplings of network 0 as a heat map (for `fep train`).
pub fn plot_couplings(t: &FepTrainer, path: &Path) -> Result<()> {
    let n = t.n;
    crate::plot::matrix_figure("couplings J (row i <- column j)", &t.j_host(0)?, n, n)
        .save_png(path)
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
pub fn run_free_cmd(a: &RunFreeArgs, cx: &super::Global) -> Result<()> {
    let (device, seed, quiet) = (&cx.ctx.device, cx.seed, cx.quiet);
    let l = load(&a.run_dir, device)?;
    let t = &l.trainer;
    if a.network >= t.g {
        bail!("--network {} out of range ({} networks)", a.network, t.g);
    }
    if a.steps == 0 || !(a.beta.is_finite() && a.beta >= 0.0) {
        bail!("--steps must be >= 1 and --beta >= 0");
    }
    let n = t.n;
    let mut j = t.j_host(a.network)?;
    if a.symmetric_only {
        let orig = j.clone();
        for i in 0..n {
            for k in 0..n {
                j[i * n + k] = 0.5 * (orig[i * n + k] + orig[k * n + i]);
            }
        }
    }
    let mut state = t.state_host(a.network)?;
    let mut rng = Rng::derived(seed.unwrap_or(t.cfg.seed), streams::EVAL);
    let zero = vec![0.0; n];
    let mut states = Vec::with_capacity(a.steps);
    for _ in 0..a.steps {
        infer_mean(&j, n, &zero, a.beta, &mut state, 1, 1, &mut rng);
        states.push(state.clone());
    }
    let (labels, frac, changes) = forward_fraction(&states, &t.patterns, n, a.threshold);
    let flat: Vec<f64> = states.iter().flatten().copied().collect();
    crate::npy::write_npy_f64(&l.rd.file("states.npy"), &[a.steps, n], &flat)?;
    let p = t.n_patterns();
    let mut grid = vec![0.0; p * a.steps];
    for (s, st) in states.iter().enumerate() {
        for k in 0..p {
            grid[k * a.steps + s] = corr(st, &t.patterns[k * n..(k + 1) * n]);
        }
    }
    let mut fig = Figure::new(1, 1, 640, 260);
    fig.axes(0, 0)
        .set_title("correlation of the free-running state with each pattern")
        .set_xlabel("step")
        .set_ylabel("pattern")
        .heatmap_limits(
            &grid,
            a.steps,
            p,
            (0.0, a.steps as f64),
            (-0.5, p as f64 - 0.5),
            (-1.0, 1.0),
        );
    fig.save_png(&l.rd.file("run_free.png"))?;
    let v = json!({
        "steps": a.steps, "beta": a.beta, "symmetric_only": a.symmetric_only, "threshold": a.threshold,
        "forward_transition_frac": if frac.is_finite() { json!(frac) } else { json!(null) },
        "label_changes": changes,
        "labelled_frac": labels.iter().filter(|l| l.is_some()).count() as f64 / a.steps as f64,
        "labels": labels,
    });
    l.rd.write_json("run_free.json", &v)?;
    println!(
        "forward transitions {} of {changes} label changes; labelled {:.2}",
        if frac.is_finite() {
            format!("{frac:.3}")
        } else {
            "n/a".into()
        },
        v["labelled_frac"]
    );
    if !quiet {
        log::info!(
            "wrote states.npy, run_free.png, run_free.json in {}",
            l.rd.path().display()
        );
    }
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

/// Parses `A..B` (integers), `LO..HI:N` (log-spaced) or `x,y,z`.
pub fn parse_range(s: &str, log: bool) -> Result<Vec<f64>> {
    let bad =
        || anyhow::anyhow!("cannot parse range `{s}` (expected A..B, LO..HI:N or a comma list)");
    let v: Vec<f64> = if let Some((a, rest)) = s.split_once("..") {
        let (b, n) = match rest.split_once(':') {
            Some((b, n)) => (b, Some(n.trim().parse::<usize>().map_err(|_| bad())?)),
            None => (rest, None),
        };
        let a: f64 = a.trim().parse().map_err(|_| bad())?;
        let b: f64 = b.trim().parse().map_err(|_| bad())?;
        match n {
            Some(n) if n >= 2 && log && a > 0.0 && b > 0.0 => (0..n)
                .map(|i| (a.ln() + (b.ln() - a.ln()) * i as f64 / (n - 1) as f64).exp())
                .collect(),
            Some(n) if n >= 2 => (0..n)
                .map(|i| a + (b - a) * i as f64 / (n - 1) as f64)
                .collect(),
            Some(_) => vec![a],
            None => {
                let mut v = Vec::new();
                let mut x = a;
                while x <= b + 1e-9 {
                    v.push(x);
                    x += 1.0;
                }
                v
            }
        }
    } else {
        s.split(',')
            .map(|x| x.trim().parse::<f64>().map_err(|_| bad()))
            .collect::<Result<_>>()?
    };
    if v.is_empty() || v.iter().any(|x| !x.is_finite() || *x < 0.0) {
        bail!("range `{s}` is empty or has negative/non-finite values");
    }
    Ok(v)
}

/// Runs the sweep; returns the JSON report.
pub fn sweep_cmd(a: &SweepArgs, cx: &super::Global) -> Result<()> {
    let (device, seed, quiet) = (&cx.ctx.device, cx.seed, cx.quiet);
    let evs = parse_range(&a.evidence, false)?;
    let betas = parse_range(&a.beta, true)?;
    if a.seeds == 0 || a.trials == 0 {
        bail!("--seeds and --trials must be >= 1");
    }
    let g = evs.len() * betas.len() * a.seeds;
    let cfg = FepConfig::new()
        .with_patterns(a.patterns.clone())
        .with_epochs(a.epochs)
        .with_steps_per_epoch(a.steps_per_epoch)
        .with_lr(a.lr)
        .with_networks(g)
        .with_engine(a.engine)
        .with_seed(seed.unwrap_or(0));
    cfg.validate()?;
    let (pats, test) = resolve_patterns(&cfg)?;
    let mut t = FepTrainer::new(&cfg, pats.data.clone(), pats.n, device)?;
    let mut k = 0;
    for &e in &evs {
        for &b in &betas {
            for _ in 0..a.seeds {
                t.evidences[k] = e;
                t.betas[k] = b;
                k += 1;
            }
        }
    }
    let rd = crate::run::start_run(
        a.run_dir.as_deref(),
        "fep-sweep",
        "fep",
        cfg.seed,
        a.overwrite,
        &cfg,
    )?;
    if !quiet {
        log::info!(
            "sweep: {} evidence x {} precision x {} seeds = {g} networks of N = {} in one batch ({} engine)",
            evs.len(),
            betas.len(),
            a.seeds,
            pats.n,
            t.engine()
        );
    }
    let t0 = Instant::now();
    let opts = DriverOptions {
        total_steps: cfg.epochs,
        until: None,
        checkpoint_every: cfg.checkpoint_every,
        log_every: cfg.log_every,
        keep: 2,
        milestones: Vec::new(),
        milestone_dir: "milestones",
        tensorboard: cfg.tensorboard,
    };
    train::run(&mut t, &rd, 0, &opts, &cx.ctx.control)?;
    let train_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let n = t.n;
    let p = t.n_patterns();
    let js: Vec<Vec<f64>> = t.j_host_all()?;
    let mut results = vec![(f64::NAN, f64::NAN, f64::NAN, f64::NAN); g];
    let seed0 = cfg.seed;
    let scoring_scope = cx.ctx.control.scope(g as u64, "sweep: scoring");
    let scoring = scoring_scope.progress().clone();
    {
        use rayon::prelude::*;
        let (js, t, test, scoring) = (&js, &t, &test, &scoring);
        results.par_iter_mut().enumerate().for_each(|(k, out)| {
            let mut rng = Rng::derived(seed0.wrapping_add(k as u64), streams::EVAL);
            let scaled: Vec<f64> = t.patterns.iter().map(|x| x * t.evidences[k]).collect();
            let (_, distinct) = attractors(&js[k], n, &scaled, &[0.0, 0.1, 0.2, 0.5], &mut rng);
            let (orth, _) = orthogonality(&distinct, true);
            // Retrieval of the trained patterns and generalisation to the test set: the same
            // cue (signal 0.1, SNR 1), 100 steps at β = 1.
            let dr2 =
                |pats: &[f64], pick: &mut dyn FnMut(usize, &mut Rng) -> usize, rng: &mut Rng| {
                    reconstruction_dr2(&js[k], n, pats, pick, 0.1, 1.0, a.trials, 100, 1.0, rng)
                };
            let retr = dr2(&scaled, &mut |i, _| i % p, &mut rng);
            let gen_ = match test {
                Some(ts) if !ts.is_empty() => {
                    let sc: Vec<f64> = ts.data.iter().map(|x| x * t.evidences[k]).collect();
                    let np = ts.len();
                    dr2(&sc, &mut |_, r| r.index(np), &mut rng)
                }
                _ => f64::NAN,
            };
            *out = (retr, gen_, distinct.len() as f64, orth);
            scoring.advance(1);
        });
    }
    drop(scoring_scope);
    let eval_s = t1.elapsed().as_secs_f64();
    // Medians over seeds per cell: grid[e][b].
    let (ne, nb) = (evs.len(), betas.len());
    type Cell = (f64, f64, f64, f64);
    let med = |f: &dyn Fn(&Cell) -> f64| -> Vec<f64> {
        let mut out = Vec::with_capacity(ne * nb);
        for ie in 0..ne {
            for ib in 0..nb {
                let mut v: Vec<f64> = (0..a.seeds)
                    .map(|s| f(&results[(ie * nb + ib) * a.seeds + s]))
                    .filter(|x| x.is_finite())
                    .collect();
                v.sort_by(|x, y| x.total_cmp(y));
                out.push(if v.is_empty() {
                    f64::NAN
                } else if v.len() % 2 == 1 {
                    v[v.len() / 2]
                } else {
                    0.5 * (v[v.len() / 2 - 1] + v[v.len() / 2])
                });
            }
        }
        out
    };
    let retr = med(&|x| x.0);
    let gene = med(&|x| x.1);
    let natt = med(&|x| x.2);
    let orth = med(&|x| x.3);
    // Heat maps: x = log10 precision, y = evidence.
    let mut fig = Figure::new(2, 2, 380, 340);
    fig.set_title(&format!(
        "FEP regimes ({} networks, {} epochs x {} steps)",
        g, a.epochs, a.steps_per_epoch
    ));
    let to_grid = |v: &[f64]| -> Vec<f64> {
        // heatmap rows = y (evidence), columns = x (beta)
        (0..ne)
            .flat_map(|ie| (0..nb).map(move |ib| (ie, ib)))
            .map(|(ie, ib)| v[ie * nb + ib])
            .collect()
    };
    let xr = (betas[0].log10(), betas[nb - 1].log10());
    let yr = (evs[0] - 0.5, evs[ne - 1] + 0.5);
    let xr = if xr.0 < xr.1 {
        xr
    } else {
        (xr.0 - 0.5, xr.0 + 0.5)
    };
    for (i, (title, v)) in [
        ("retrieval dR2", &retr),
        ("generalisation dR2", &gene),
        ("# attractors", &natt),
        ("mean |90 - angle| (deg)", &orth),
    ]
    .iter()
    .enumerate()
    {
        fig.axes(i % 2, i / 2)
            .set_title(title)
            .set_xlabel("log10 precision")
            .set_ylabel("evidence")
            .heatmap(&to_grid(v), nb, ne, xr, yr);
    }
    fig.save_png(&rd.file("sweep.png"))?;
    let num = |x: &f64| if x.is_finite() { json!(x) } else { json!(null) };
    let report = json!({
        "evidence": evs, "beta": betas, "seeds": a.seeds, "networks": g, "n": n,
        "epochs": a.epochs, "steps_per_epoch": a.steps_per_epoch, "lr": a.lr, "trials": a.trials,
        "engine": t.engine(), "train_seconds": train_s, "eval_seconds": eval_s,
        "network_steps_per_s": (g as f64 * a.epochs as f64 * a.steps_per_epoch as f64) / train_s,
        "retrieval_dr2": retr.iter().map(num).collect::<Vec<_>>(),
        "generalization_dr2": gene.iter().map(num).collect::<Vec<_>>(),
        "n_attractors": natt.iter().map(num).collect::<Vec<_>>(),
        "orthogonality_deg": orth.iter().map(num).collect::<Vec<_>>(),
        "layout": "row-major [evidence][beta], medians over seeds",
    });
    rd.write_json("sweep.json", &report)
        .context("writing sweep.json")?;
    println!(
        "{g} networks: training {train_s:.1} s ({:.0} network-steps/s), evaluation {eval_s:.1} s; wrote sweep.json and sweep.png in {}",
        report["network_steps_per_s"].as_f64().unwrap_or(0.0),
        rd.path().display()
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
pub fn recall_cmd(a: &RecallArgs, cx: &super::Global) -> Result<()> {
    let (device, seed, quiet) = (&cx.ctx.device, cx.seed, cx.quiet);
    let l = load(&a.run_dir, device)?;
    let t = &l.trainer;
    let n = t.n;
    if a.network >= t.g {
        bail!("--network {} out of range ({} networks)", a.network, t.g);
    }
    if a.steps <= a.burn_in
        || !(a.beta.is_finite() && a.beta >= 0.0)
        || !(a.noise_sd.is_finite() && a.noise_sd >= 0.0)
    {
        bail!("need --steps > --burn-in, --beta >= 0 and --noise-sd >= 0");
    }
    let mut rng = Rng::derived(seed.unwrap_or(t.cfg.seed), streams::EVAL);
    let mut cues: Vec<Vec<f64>> = Vec::new();
    let mut targets: Vec<Option<Vec<f64>>> = Vec::new();
    if let Some(path) = &a.cue {
        let p = load_patterns(path)?;
        if p.n != n {
            bail!(
                "cues in {} have {} values, the network has N = {n}",
                path.display(),
                p.n
            );
        }
        for i in 0..p.len() {
            cues.push(p.row(i).to_vec());
            targets.push(None);
        }
    }
    for &i in &a.pattern_index {
        if i >= t.n_patterns() {
            bail!(
                "--pattern-index {i} out of range ({} patterns)",
                t.n_patterns()
            );
        }
        let x = &t.patterns[i * n..(i + 1) * n];
        let m = x.iter().sum::<f64>() / n as f64;
        let sd = (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n as f64).sqrt();
        cues.push(
            x.iter()
                .map(|v| v + a.noise_sd * sd * rng.normal())
                .collect(),
        );
        targets.push(Some(x.to_vec()));
    }
    if cues.is_empty() {
        bail!("give --cue FILE or at least one --pattern-index");
    }
    let j = t.j_host(a.network)?;
    let ev = a.cue_scale;
    let mut outs = Vec::new();
    let mut per = Vec::new();
    for (cue, target) in cues.iter().zip(&targets) {
        let b: Vec<f64> = cue.iter().map(|x| x * ev).collect();
        let mut state: Vec<f64> = b
            .iter()
            .map(|&x| crate::models::cb::langevin(a.beta * x))
            .collect();
        let out = infer_mean(&j, n, &b, a.beta, &mut state, a.steps, a.burn_in, &mut rng);
        let (cc, co) = match target {
            Some(tg) => (corr(cue, tg), corr(&out, tg)),
            None => (f64::NAN, f64::NAN),
        };
        per.push(
            json!({"corr_cue": if cc.is_finite() { json!(cc) } else { json!(null) },
                        "corr_output": if co.is_finite() { json!(co) } else { json!(null) }}),
        );
        outs.push(out);
    }
    let known: Vec<(f64, f64)> = per
        .iter()
        .filter_map(|p| Some((p["corr_cue"].as_f64()?, p["corr_output"].as_f64()?)))
        .collect();
    let mean = |f: fn(&(f64, f64)) -> f64| {
        if known.is_empty() {
            json!(null)
        } else {
            json!(known.iter().map(f).sum::<f64>() / known.len() as f64)
        }
    };
    let v = json!({"cues": per, "corr_cue": mean(|x| x.0), "corr_output": mean(|x| x.1),
                   "beta": a.beta, "steps": a.steps, "burn_in": a.burn_in, "noise_sd": a.noise_sd});
    let flat: Vec<f64> = outs.iter().flatten().copied().collect();
    crate::npy::write_npy_f64(&l.rd.file("recall.npy"), &[outs.len(), n], &flat)?;
    let (h, w) = l.shape.unwrap_or((1, n));
    let mut imgs = Vec::new();
    for ((c, o), tg) in cues.iter().zip(&outs).zip(&targets) {
        imgs.push(c.iter().map(|&x| (x / 3.0) as f32).collect::<Vec<f32>>());
        imgs.push(o.iter().map(|&x| x as f32).collect());
        imgs.push(match tg {
            Some(tg) => tg.iter().map(|&x| (x / 3.0) as f32).collect(),
            None => vec![f32::NAN; n],
        });
    }
    let scale = if h == 1 {
        4
    } else {
        (64 / h.max(w)).max(4) as u32
    };
    save_rgb_png(
        &image_grid(&imgs, w, h, 3, -1.0, 1.0, scale),
        &l.rd.file("recall.png"),
    )?;
    l.rd.write_json("recall.json", &v)?;
    println!(
        "corr(cue, target) {} -> corr(output, target) {}",
        v["corr_cue"], v["corr_output"]
    );
    if !quiet {
        log::info!(
            "wrote recall.npy, recall.png (cue | output | target per row), recall.json in {}",
            l.rd.path().display()
        );
    }
    Ok(())
}
