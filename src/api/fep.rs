//! FEP run-level operations: loading a run ([`load`] into a [`LoadedFep`]), the patterns a
//! configuration names ([`resolve_patterns`]), and the analyses of `attractor fep …` —
//! [`attractors`], [`eval`], [`run_free`], [`recall`] (reconstruction from cues held as input
//! bias, the paper's Sim-5 protocol) and [`sweep`] (the Sim-2 regime grid as one batched
//! training run, then scored). Each takes plain options with the command line's defaults and
//! returns a typed result; its serialisation (through `serde_json::to_value`, which sorts the
//! keys) is the JSON file the command line writes. Arrays that go to `.npy` files and the data
//! behind the figures are fields skipped by serde. The measurements themselves are in
//! [`crate::analysis::fep`].

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use image::RgbImage;
use serde::Serialize;

use super::Ctx;
use crate::analysis::fep::free::forward_fraction;
use crate::analysis::fep::{
    asymmetry, attractors as find_attractors, corr, infer_mean, orthogonality, reconstruction_dr2,
    symmetric_part,
};
use crate::checkpoint;
use crate::data::patterns::{
    PatternSet, PatternSource, Patterns, digits_preprocessed, load_patterns,
};
use crate::models::fep::{Engine, FepConfig, FepTrainer, streams};
use crate::plot::{Figure, image_grid};
use crate::rng::Rng;
use crate::run::RunDir;
use crate::train::{self, DriverOptions, Trainable};

/// Noise levels of the relaxations that find the attractors (`attractors`, `eval`, `sweep`).
const ATTRACTOR_NOISE: [f64; 4] = [0.0, 0.1, 0.2, 0.5];

/// A row-major `f64` array with its shape (what the command line writes as `.npy`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Array64 {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f64>,
}

impl Array64 {
    /// Rows of length `n` stacked into a `[rows, n]` array.
    fn from_rows(rows: &[Vec<f64>], n: usize) -> Self {
        Self {
            shape: vec![rows.len(), n],
            data: rows.iter().flatten().copied().collect(),
        }
    }
}

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

impl LoadedFep {
    /// Fails unless `network` is one of the run's networks (`long`: the message of `fep
    /// attractors`, "the run has G networks"; else "G networks").
    fn check_network(&self, network: usize, long: bool) -> Result<()> {
        let g = self.trainer.g;
        if network >= g {
            if long {
                bail!("--network {network} out of range (the run has {g} networks)");
            }
            bail!("--network {network} out of range ({g} networks)");
        }
        Ok(())
    }
    /// Row `k` of the training patterns.
    fn pattern(&self, k: usize) -> &[f64] {
        let n = self.trainer.n;
        &self.trainer.patterns[k * n..(k + 1) * n]
    }
}

/// Loads the newest checkpoint of a FEP run.
pub fn load(dir: &Path, device: &Device) -> Result<LoadedFep> {
    let rd = RunDir::open(dir)?;
    if rd.meta()?.model != <super::family::FepFamily as super::family::Family>::KIND {
        bail!("{} is not a FEP run", dir.display());
    }
    let cfg: FepConfig = rd.config_or(&FepConfig::new())?;
    let ck = checkpoint::load_latest(rd.path())?
        .with_context(|| format!("{} has no checkpoint", dir.display()))?;
    if ck.kind != <super::family::FepFamily as super::family::Family>::KIND {
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

/// Draws the couplings of network 0 as a heat map into `path` (`couplings.png` of `fep train`).
pub fn plot_couplings(t: &FepTrainer, path: &Path) -> Result<()> {
    let n = t.n;
    crate::plot::matrix_figure("couplings J (row i <- column j)", &t.j_host(0)?, n, n)
        .save_png(path)
}

/// A grid of images (`cols` per row) of `n` values each at `shape` (a strip when unknown),
/// scaled so that an 8×8 image is drawn 8 pixels per value.
fn picture(imgs: &[Vec<f32>], shape: Option<(usize, usize)>, n: usize, cols: usize) -> RgbImage {
    let (h, w) = shape.unwrap_or((1, n));
    let scale = if h == 1 {
        4
    } else {
        (64 / h.max(w)).max(4) as u32
    };
    image_grid(imgs, w, h, cols, -1.0, 1.0, scale)
}

/// Median of the finite values (NaN when there are none).
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

// ---------------------------------------------------------------------------------------------
// attractors
// ---------------------------------------------------------------------------------------------

/// Options of [`attractors`] (`fep attractors`).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct AttractorsOptions {
    /// Which of the batched networks.
    pub network: usize,
    /// Relax with the symmetric part J† = (J + Jᵀ)/2 (asymmetric J trained on sequences
    /// cycles instead of converging).
    pub symmetric_part: bool,
    /// Seed of the relaxations' noise (default: the run's seed).
    pub seed: Option<u64>,
}

/// The distinct deterministic attractors of one network.
#[derive(Clone, Debug, Serialize)]
pub struct Attractors {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Which network.
    pub network: usize,
    /// The distinct attractors, `[count, N]` (`attractors.npy`).
    pub attractors: Array64,
    /// The training patterns, `[P, N]`.
    pub patterns: Array64,
    /// Image `(height, width)` of a pattern, when known.
    pub image_shape: Option<(usize, usize)>,
}

impl Attractors {
    /// Number of distinct attractors.
    pub fn count(&self) -> usize {
        self.attractors.shape[0]
    }
    /// Top row the training patterns (÷3, clipped), bottom row the attractors
    /// (`attractors.png`).
    pub fn picture(&self) -> RgbImage {
        let n = self.patterns.shape[1];
        let rows = |a: &Array64| -> Vec<Vec<f64>> {
            a.data.chunks(n.max(1)).map(<[f64]>::to_vec).collect()
        };
        let mut imgs: Vec<Vec<f32>> = rows(&self.patterns)
            .iter()
            .map(|p| {
                p.iter()
                    .map(|&x| (x / 3.0).clamp(-1.0, 1.0) as f32)
                    .collect()
            })
            .collect();
        let distinct = rows(&self.attractors);
        let cols = imgs.len().max(distinct.len()).max(1);
        imgs.resize(cols, vec![f32::NAN; n]);
        imgs.extend(
            distinct
                .iter()
                .map(|d| d.iter().map(|&x| x as f32).collect()),
        );
        imgs.resize(2 * cols, vec![f32::NAN; n]);
        picture(&imgs, self.image_shape, n, cols)
    }
}

/// Distinct deterministic attractors of one network, reached from the scaled training patterns
/// with a few noise levels.
pub fn attractors(run_dir: &Path, o: &AttractorsOptions, ctx: &Ctx) -> Result<Attractors> {
    let l = load(run_dir, &ctx.device)?;
    l.check_network(o.network, true)?;
    let t = &l.trainer;
    let n = t.n;
    let j = t.j_host(o.network)?;
    let j = if o.symmetric_part {
        symmetric_part(&j, n)
    } else {
        j
    };
    let scaled: Vec<f64> = t
        .patterns
        .iter()
        .map(|x| x * t.evidences[o.network])
        .collect();
    let mut rng = Rng::derived(o.seed.unwrap_or(t.cfg.seed), streams::EVAL);
    let (_, distinct) = find_attractors(&j, n, &scaled, &ATTRACTOR_NOISE, &mut rng);
    Ok(Attractors {
        run_dir: l.rd.path().to_path_buf(),
        network: o.network,
        attractors: Array64::from_rows(&distinct, n),
        patterns: Array64 {
            shape: vec![t.n_patterns(), n],
            data: t.patterns.clone(),
        },
        image_shape: l.shape,
    })
}

// ---------------------------------------------------------------------------------------------
// eval
// ---------------------------------------------------------------------------------------------

/// Options of [`eval`] (`fep eval`).
#[derive(Clone, Debug, PartialEq)]
pub struct EvalOptions {
    /// Trials per ΔR² estimate.
    pub trials: usize,
    /// Stochastic steps per trial.
    pub steps: usize,
    /// Score against the training patterns of another run with the same N (e.g. the Sim-4
    /// negative control, trained on digit 0 only, scored on the ten digits).
    pub patterns_of: Option<PathBuf>,
    /// Score only these patterns (0-based indices; empty: all).
    pub pattern_index: Vec<usize>,
    /// Rescale each network's couplings to the Frobenius norm of the same network of another
    /// run before scoring (the paper's weight-norm-matched Hebbian baseline).
    pub match_norm_of: Option<PathBuf>,
    /// Seed of the scoring's noise (network k uses seed + k; default: the run's seed).
    pub seed: Option<u64>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            trials: 100,
            steps: 100,
            patterns_of: None,
            pattern_index: Vec::new(),
            match_norm_of: None,
            seed: None,
        }
    }
}

impl EvalOptions {
    /// Fails on options that cannot be scored (checked by [`eval`] before loading the run).
    pub fn check(&self) -> Result<()> {
        if self.trials == 0 || self.steps == 0 {
            bail!("--trials and --steps must be >= 1");
        }
        Ok(())
    }
}

/// Per-network values of an [`EvalReport`] (NaN, written `null`, where undefined).
#[derive(Clone, Debug, Serialize)]
pub struct EvalPerNetwork {
    /// Distinct attractors.
    pub n_attractors: Vec<f64>,
    /// Mean |90° − angle| between the attractors, degrees.
    pub orthogonality_deg: Vec<f64>,
    /// Retrieval ΔR² of the scored patterns.
    pub retrieval_dr2: Vec<f64>,
    /// ΔR² of the held-out patterns.
    pub generalization_dr2: Vec<f64>,
    /// Asymmetry of the couplings.
    pub asymmetry: Vec<f64>,
}

/// How the ΔR² values of an [`EvalReport`] were measured.
#[derive(Clone, Debug, Serialize)]
pub struct EvalScoring {
    /// Trials per estimate.
    pub trials: usize,
    /// Stochastic steps per trial.
    pub steps: usize,
    /// Cue signal level.
    pub signal: f64,
    /// Cue signal-to-noise ratio.
    pub snr: f64,
    /// Precision of the retrieval.
    pub beta: f64,
}

/// The metrics of every network of a run (`eval.json`): medians over the networks, NaN
/// (written `null`) where undefined.
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    /// Checkpoint step.
    pub step: u64,
    /// Networks scored.
    pub networks: usize,
    /// Distinct attractors.
    pub n_attractors: f64,
    /// Mean |90° − angle| between the attractors, degrees.
    pub orthogonality_deg: f64,
    /// The same over off-diagonal pairs only.
    pub orthogonality_offdiag_deg: f64,
    /// Mean |90° − angle| between the scored patterns themselves.
    pub data_orthogonality_deg: f64,
    /// The same over off-diagonal pairs only.
    pub data_orthogonality_offdiag_deg: f64,
    /// Retrieval ΔR² of the scored patterns.
    pub retrieval_dr2: f64,
    /// ΔR² of the held-out patterns (digits runs).
    pub generalization_dr2: f64,
    /// Asymmetry of the couplings.
    pub asymmetry: f64,
    /// Distinct attractors of the symmetric part J†.
    pub n_attractors_symmetric_part: f64,
    /// Mean pairwise correlation of the patterns' noise-free end points (Sim 1).
    pub attractor_pairwise_corr: f64,
    /// Worst pattern's best correlation with an attractor of J† (Sim 3).
    pub min_pattern_best_corr_symmetric_part: f64,
    /// The values of each network.
    pub per_network: EvalPerNetwork,
    /// How ΔR² was measured.
    pub scoring: EvalScoring,
}

/// Replaces the patterns that `l` is scored against and rescales its couplings
/// ([`EvalOptions::patterns_of`], `pattern_index`, `match_norm_of`).
fn select_scored_patterns(l: &mut LoadedFep, o: &EvalOptions) -> Result<()> {
    let n = l.trainer.n;
    if let Some(dir) = &o.patterns_of {
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
    if let Some(dir) = &o.match_norm_of {
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
    if !o.pattern_index.is_empty() {
        let p = l.trainer.n_patterns();
        let mut kept = Vec::new();
        for &i in &o.pattern_index {
            if i >= p {
                bail!("--pattern-index {i} out of range ({p} patterns)");
            }
            kept.extend_from_slice(l.pattern(i));
        }
        l.trainer.patterns = kept;
    }
    Ok(())
}

/// One network's values in [`evaluate`].
struct NetworkEval {
    n_attractors: f64,
    orth: f64,
    orth_off: f64,
    retrieval: f64,
    generalisation: f64,
    asymmetry: f64,
    n_attractors_sym: f64,
    pair_corr: f64,
    best_sym: f64,
}

/// Scores network `k` of `l` with the noise of `rng`.
fn evaluate_network(
    l: &LoadedFep,
    o: &EvalOptions,
    k: usize,
    rng: &mut Rng,
) -> Result<NetworkEval> {
    let t = &l.trainer;
    let n = t.n;
    let p = t.n_patterns();
    let scaled: Vec<f64> = t.patterns.iter().map(|x| x * t.evidences[k]).collect();
    let j = t.j_host(k)?;
    let (_, distinct) = find_attractors(&j, n, &scaled, &ATTRACTOR_NOISE, rng);
    let (orth, orth_off) = orthogonality(&distinct, true);
    let (trials, steps) = (o.trials, o.steps);
    let retrieval = reconstruction_dr2(
        &j,
        n,
        &scaled,
        &mut |i, _| i % p,
        0.1,
        1.0,
        trials,
        steps,
        1.0,
        rng,
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
                trials,
                steps,
                1.0,
                rng,
            )
        }
        _ => f64::NAN,
    };
    let sym = symmetric_part(&j, n);
    let (_, distinct_sym) = find_attractors(&sym, n, &scaled, &ATTRACTOR_NOISE, rng);
    // Per-pattern noise-free end points: their pairwise correlation (Sim 1) and each pattern's
    // best correlation with an attractor of J† (Sim 3).
    let (ends, _) = find_attractors(&j, n, &scaled, &[0.0], rng);
    let pair_corr = if ends.len() == p && p >= 2 {
        let mut cs = Vec::new();
        for a in 0..p {
            for b in (a + 1)..p {
                cs.push(corr(&ends[a], &ends[b]));
            }
        }
        cs.iter().sum::<f64>() / cs.len() as f64
    } else {
        f64::NAN
    };
    let best_sym = (0..p)
        .map(|a| {
            distinct_sym
                .iter()
                .map(|v| corr(v, l.pattern(a)))
                .fold(f64::NEG_INFINITY, f64::max)
        })
        .fold(f64::INFINITY, f64::min);
    Ok(NetworkEval {
        n_attractors: distinct.len() as f64,
        orth,
        orth_off,
        retrieval,
        generalisation,
        asymmetry: asymmetry(&j, n),
        n_attractors_sym: distinct_sym.len() as f64,
        pair_corr,
        best_sym,
    })
}

/// The metrics of every network of a loaded run (network k's noise from `seed + k`); polls
/// the stop flag between networks.
pub fn evaluate(l: &LoadedFep, o: &EvalOptions, seed: u64, ctx: &Ctx) -> Result<EvalReport> {
    let t = &l.trainer;
    let rows: Vec<Vec<f64>> = (0..t.n_patterns()).map(|k| l.pattern(k).to_vec()).collect();
    let (data_full, data_off) = orthogonality(&rows, false);
    let mut per = Vec::with_capacity(t.g);
    for k in 0..t.g {
        if ctx.control.stopped() {
            bail!("fep eval stopped after {k} of {} networks", t.g);
        }
        let mut rng = Rng::derived(seed.wrapping_add(k as u64), streams::EVAL);
        per.push(evaluate_network(l, o, k, &mut rng)?);
    }
    let col = |f: fn(&NetworkEval) -> f64| -> Vec<f64> { per.iter().map(f).collect() };
    let per_network = EvalPerNetwork {
        n_attractors: col(|x| x.n_attractors),
        orthogonality_deg: col(|x| x.orth),
        retrieval_dr2: col(|x| x.retrieval),
        generalization_dr2: col(|x| x.generalisation),
        asymmetry: col(|x| x.asymmetry),
    };
    Ok(EvalReport {
        step: l.step,
        networks: t.g,
        n_attractors: median(per_network.n_attractors.clone()),
        orthogonality_deg: median(per_network.orthogonality_deg.clone()),
        orthogonality_offdiag_deg: median(col(|x| x.orth_off)),
        data_orthogonality_deg: data_full,
        data_orthogonality_offdiag_deg: data_off,
        retrieval_dr2: median(per_network.retrieval_dr2.clone()),
        generalization_dr2: median(per_network.generalization_dr2.clone()),
        asymmetry: median(per_network.asymmetry.clone()),
        n_attractors_symmetric_part: median(col(|x| x.n_attractors_sym)),
        attractor_pairwise_corr: median(col(|x| x.pair_corr)),
        min_pattern_best_corr_symmetric_part: median(col(|x| x.best_sym)),
        per_network,
        scoring: EvalScoring {
            trials: o.trials,
            steps: o.steps,
            signal: 0.1,
            snr: 1.0,
            beta: 1.0,
        },
    })
}

/// Attractor count, orthogonality, retrieval and generalisation ΔR² and asymmetry of every
/// network of the run in `run_dir` (`fep eval`).
pub fn eval(run_dir: &Path, o: &EvalOptions, ctx: &Ctx) -> Result<EvalReport> {
    o.check()?;
    let mut l = load(run_dir, &ctx.device)?;
    select_scored_patterns(&mut l, o)?;
    let seed = o.seed.unwrap_or(l.trainer.cfg.seed);
    evaluate(&l, o, seed, ctx)
}

// ---------------------------------------------------------------------------------------------
// run-free: free-running replay with zero input
// ---------------------------------------------------------------------------------------------

/// Options of [`run_free`] (`fep run-free`).
#[derive(Clone, Debug, PartialEq)]
pub struct RunFreeOptions {
    /// Stochastic steps with zero input and no learning.
    pub steps: usize,
    /// Precision β of the free run.
    pub beta: f64,
    /// Which network.
    pub network: usize,
    /// Use only the symmetric part J† = (J + Jᵀ)/2 (control: no replay expected).
    pub symmetric_only: bool,
    /// Correlation needed to label a state with a pattern.
    pub threshold: f64,
    /// Seed of the free run's noise (default: the run's seed).
    pub seed: Option<u64>,
}

impl Default for RunFreeOptions {
    fn default() -> Self {
        Self {
            steps: 200,
            beta: 1.0,
            network: 0,
            symmetric_only: false,
            threshold: 0.5,
            seed: None,
        }
    }
}

/// A free run (`run_free.json`; the states and correlations are not in it).
#[derive(Clone, Debug, Serialize)]
pub struct RunFree {
    /// Steps run.
    pub steps: usize,
    /// Precision β.
    pub beta: f64,
    /// Whether only J† was used.
    pub symmetric_only: bool,
    /// Labelling threshold.
    pub threshold: f64,
    /// Share of label changes that go forward (k → k+1 mod P); NaN (`null`) without changes.
    pub forward_transition_frac: f64,
    /// Number of label changes.
    pub label_changes: usize,
    /// Share of states with a label.
    pub labelled_frac: f64,
    /// Each state's best-correlated pattern, if above the threshold.
    pub labels: Vec<Option<usize>>,
    /// The run directory.
    #[serde(skip)]
    pub run_dir: PathBuf,
    /// The states, `[steps, N]` (`states.npy`).
    #[serde(skip)]
    pub states: Array64,
    /// Correlation of each state with each pattern, `[P, steps]`.
    #[serde(skip)]
    pub correlations: Array64,
}

impl RunFree {
    /// The correlation raster (`run_free.png`).
    pub fn figure(&self) -> Figure {
        let (p, steps) = (self.correlations.shape[0], self.correlations.shape[1]);
        let mut fig = Figure::new(1, 1, 640, 260);
        fig.axes(0, 0)
            .set_title("correlation of the free-running state with each pattern")
            .set_xlabel("step")
            .set_ylabel("pattern")
            .heatmap_limits(
                &self.correlations.data,
                steps,
                p,
                (0.0, steps as f64),
                (-0.5, p as f64 - 0.5),
                (-1.0, 1.0),
            );
        fig
    }
}

/// Runs one network with zero input and no learning from its last state and labels the
/// states with the patterns (`fep run-free`).
pub fn run_free(run_dir: &Path, o: &RunFreeOptions, ctx: &Ctx) -> Result<RunFree> {
    let l = load(run_dir, &ctx.device)?;
    l.check_network(o.network, false)?;
    if o.steps == 0 || !(o.beta.is_finite() && o.beta >= 0.0) {
        bail!("--steps must be >= 1 and --beta >= 0");
    }
    let t = &l.trainer;
    let n = t.n;
    let mut j = t.j_host(o.network)?;
    if o.symmetric_only {
        let orig = j.clone();
        for i in 0..n {
            for k in 0..n {
                j[i * n + k] = 0.5 * (orig[i * n + k] + orig[k * n + i]);
            }
        }
    }
    let mut state = t.state_host(o.network)?;
    let mut rng = Rng::derived(o.seed.unwrap_or(t.cfg.seed), streams::EVAL);
    let zero = vec![0.0; n];
    let mut states = Vec::with_capacity(o.steps);
    for _ in 0..o.steps {
        infer_mean(&j, n, &zero, o.beta, &mut state, 1, 1, &mut rng);
        states.push(state.clone());
    }
    let (labels, frac, changes) = forward_fraction(&states, &t.patterns, n, o.threshold);
    let p = t.n_patterns();
    let mut grid = vec![0.0; p * o.steps];
    for (s, st) in states.iter().enumerate() {
        for k in 0..p {
            grid[k * o.steps + s] = corr(st, l.pattern(k));
        }
    }
    Ok(RunFree {
        steps: o.steps,
        beta: o.beta,
        symmetric_only: o.symmetric_only,
        threshold: o.threshold,
        forward_transition_frac: frac,
        label_changes: changes,
        labelled_frac: labels.iter().filter(|l| l.is_some()).count() as f64 / o.steps as f64,
        labels,
        run_dir: l.rd.path().to_path_buf(),
        states: Array64::from_rows(&states, n),
        correlations: Array64 {
            shape: vec![p, o.steps],
            data: grid,
        },
    })
}

// ---------------------------------------------------------------------------------------------
// recall: reconstruction from cues held as input bias (the paper's Sim-5 protocol)
// ---------------------------------------------------------------------------------------------

/// Options of [`recall`] (`fep recall`).
#[derive(Clone, Debug, PartialEq)]
pub struct RecallOptions {
    /// Cue file (same formats as the patterns; each row a cue, in pattern units).
    pub cue: Option<PathBuf>,
    /// Training patterns to corrupt into cues.
    pub pattern_index: Vec<usize>,
    /// Noise sd of the corrupted cues, in units of the pattern's sd.
    pub noise_sd: f64,
    /// Precision β of inference.
    pub beta: f64,
    /// Stochastic steps.
    pub steps: usize,
    /// Steps dropped before averaging.
    pub burn_in: usize,
    /// Which network.
    pub network: usize,
    /// The bias is `cue_scale × cue` (the paper's Sim-5 protocol holds the cue itself: 1).
    pub cue_scale: f64,
    /// Seed of the cue corruption and inference noise (default: the run's seed).
    pub seed: Option<u64>,
}

impl Default for RecallOptions {
    fn default() -> Self {
        Self {
            cue: None,
            pattern_index: Vec::new(),
            noise_sd: 2.0,
            beta: 1.0,
            steps: 20,
            burn_in: 5,
            network: 0,
            cue_scale: 1.0,
            seed: None,
        }
    }
}

/// How well one cue was reconstructed (NaN, written `null`, for a cue without a target).
#[derive(Clone, Debug, Serialize)]
pub struct CueScore {
    /// Correlation of the cue with its target.
    pub corr_cue: f64,
    /// Correlation of the posterior mean with the target.
    pub corr_output: f64,
}

/// Reconstructions from cues (`recall.json`; the cues and outputs are not in it).
#[derive(Clone, Debug, Serialize)]
pub struct Recall {
    /// Each cue's scores: file cues first, then corrupted patterns.
    pub cues: Vec<CueScore>,
    /// Mean over the cues with a target (NaN, `null`, when none has one).
    pub corr_cue: f64,
    /// Mean over the cues with a target (NaN, `null`, when none has one).
    pub corr_output: f64,
    /// Precision β of inference.
    pub beta: f64,
    /// Stochastic steps.
    pub steps: usize,
    /// Steps dropped before averaging.
    pub burn_in: usize,
    /// Noise sd of the corrupted cues.
    pub noise_sd: f64,
    /// The run directory.
    #[serde(skip)]
    pub run_dir: PathBuf,
    /// The posterior means, `[cues, N]` (`recall.npy`).
    #[serde(skip)]
    pub outputs: Array64,
    /// The cues, `[cues, N]`.
    #[serde(skip)]
    pub cue_values: Array64,
    /// Each cue's target pattern, if it has one.
    #[serde(skip)]
    pub targets: Vec<Option<Vec<f64>>>,
    /// Image `(height, width)` of a pattern, when known.
    #[serde(skip)]
    pub image_shape: Option<(usize, usize)>,
}

impl Recall {
    /// Cue | output | target per row (`recall.png`).
    pub fn picture(&self) -> RgbImage {
        let n = self.outputs.shape[1];
        let third = |v: &[f64]| v.iter().map(|&x| (x / 3.0) as f32).collect::<Vec<f32>>();
        let mut imgs = Vec::new();
        let rows = self.cue_values.data.chunks(n.max(1));
        for ((c, o), tg) in rows
            .zip(self.outputs.data.chunks(n.max(1)))
            .zip(&self.targets)
        {
            imgs.push(third(c));
            imgs.push(o.iter().map(|&x| x as f32).collect());
            imgs.push(match tg {
                Some(tg) => third(tg),
                None => vec![f32::NAN; n],
            });
        }
        picture(&imgs, self.image_shape, n, 3)
    }
}

/// A cue and the training pattern it was made from, if any.
type Cue = (Vec<f64>, Option<Vec<f64>>);

/// The cues of [`recall`] (file cues, then corrupted training patterns) with their targets.
fn recall_cues(l: &LoadedFep, o: &RecallOptions, rng: &mut Rng) -> Result<Vec<Cue>> {
    let t = &l.trainer;
    let n = t.n;
    let mut cues = Vec::new();
    if let Some(path) = &o.cue {
        let p = load_patterns(path)?;
        if p.n != n {
            bail!(
                "cues in {} have {} values, the network has N = {n}",
                path.display(),
                p.n
            );
        }
        cues.extend(p.rows().map(|r| (r.to_vec(), None)));
    }
    for &i in &o.pattern_index {
        if i >= t.n_patterns() {
            bail!(
                "--pattern-index {i} out of range ({} patterns)",
                t.n_patterns()
            );
        }
        let x = l.pattern(i);
        let m = x.iter().sum::<f64>() / n as f64;
        let sd = (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n as f64).sqrt();
        let cue = x
            .iter()
            .map(|v| v + o.noise_sd * sd * rng.normal())
            .collect();
        cues.push((cue, Some(x.to_vec())));
    }
    if cues.is_empty() {
        bail!("give --cue FILE or at least one --pattern-index");
    }
    Ok(cues)
}

/// Posterior means of one network with each cue held as input bias (`fep recall`).
pub fn recall(run_dir: &Path, o: &RecallOptions, ctx: &Ctx) -> Result<Recall> {
    let l = load(run_dir, &ctx.device)?;
    l.check_network(o.network, false)?;
    if o.steps <= o.burn_in
        || !(o.beta.is_finite() && o.beta >= 0.0)
        || !(o.noise_sd.is_finite() && o.noise_sd >= 0.0)
    {
        bail!("need --steps > --burn-in, --beta >= 0 and --noise-sd >= 0");
    }
    let t = &l.trainer;
    let n = t.n;
    let mut rng = Rng::derived(o.seed.unwrap_or(t.cfg.seed), streams::EVAL);
    let cues = recall_cues(&l, o, &mut rng)?;
    let j = t.j_host(o.network)?;
    let mut outs = Vec::with_capacity(cues.len());
    let mut scores = Vec::with_capacity(cues.len());
    for (cue, target) in &cues {
        let b: Vec<f64> = cue.iter().map(|x| x * o.cue_scale).collect();
        let mut state: Vec<f64> = b
            .iter()
            .map(|&x| crate::models::cb::langevin(o.beta * x))
            .collect();
        let out = infer_mean(&j, n, &b, o.beta, &mut state, o.steps, o.burn_in, &mut rng);
        let (corr_cue, corr_output) = match target {
            Some(tg) => (corr(cue, tg), corr(&out, tg)),
            None => (f64::NAN, f64::NAN),
        };
        scores.push(CueScore {
            corr_cue,
            corr_output,
        });
        outs.push(out);
    }
    let known: Vec<&CueScore> = scores
        .iter()
        .filter(|s| s.corr_cue.is_finite() && s.corr_output.is_finite())
        .collect();
    let mean = |f: fn(&CueScore) -> f64| {
        if known.is_empty() {
            f64::NAN
        } else {
            known.iter().map(|s| f(s)).sum::<f64>() / known.len() as f64
        }
    };
    let cue_rows: Vec<Vec<f64>> = cues.iter().map(|(c, _)| c.clone()).collect();
    Ok(Recall {
        corr_cue: mean(|s| s.corr_cue),
        corr_output: mean(|s| s.corr_output),
        cues: scores,
        beta: o.beta,
        steps: o.steps,
        burn_in: o.burn_in,
        noise_sd: o.noise_sd,
        run_dir: l.rd.path().to_path_buf(),
        outputs: Array64::from_rows(&outs, n),
        cue_values: Array64::from_rows(&cue_rows, n),
        targets: cues.into_iter().map(|(_, t)| t).collect(),
        image_shape: l.shape,
    })
}

// ---------------------------------------------------------------------------------------------
// sweep: the Sim-2 regime grid as one batched training run
// ---------------------------------------------------------------------------------------------

/// `n` values from `a` to `b`, evenly spaced in log (linear when `log` is false or a bound is
/// not positive).
fn spaced(a: f64, b: f64, n: usize, log: bool) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![a],
        _ if log && a > 0.0 && b > 0.0 => (0..n)
            .map(|i| (a.ln() + (b.ln() - a.ln()) * i as f64 / (n - 1) as f64).exp())
            .collect(),
        _ => (0..n)
            .map(|i| a + (b - a) * i as f64 / (n - 1) as f64)
            .collect(),
    }
}

/// Parses `A..B` (integer steps), `LO..HI:N` (`N` values, log-spaced when `log`) or `x,y,z`.
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
            Some(n) => spaced(a, b, n.max(1), log),
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

/// Options of [`sweep`] (`fep sweep`).
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// Evidence levels (default 1, 2, …, 20).
    pub evidence: Vec<f64>,
    /// Precisions β (default 19 log-spaced from 0.01 to 1).
    pub beta: Vec<f64>,
    /// Networks per setting (seeds).
    pub seeds: usize,
    /// Epochs.
    pub epochs: u64,
    /// Steps per epoch.
    pub steps_per_epoch: usize,
    /// Learning rate.
    pub lr: f64,
    /// Patterns (as `fep train`).
    pub patterns: PatternSource,
    /// Trials per ΔR² estimate.
    pub trials: usize,
    /// Engine (see `FepConfig::engine`).
    pub engine: Engine,
    /// Run directory (default: `checkpoints/fep-sweep-<timestamp>`).
    pub run_dir: Option<PathBuf>,
    /// Replace an existing run.
    pub overwrite: bool,
    /// Seed of the run (default 0).
    pub seed: Option<u64>,
}

impl Default for SweepOptions {
    fn default() -> Self {
        Self {
            evidence: (1..=20).map(f64::from).collect(),
            beta: spaced(0.01, 1.0, 19, true),
            seeds: 1,
            epochs: 5000,
            steps_per_epoch: 10,
            lr: 0.001,
            patterns: PatternSource::Builtin(PatternSet::Digits),
            trials: 100,
            engine: Engine::Auto,
            run_dir: None,
            overwrite: false,
            seed: None,
        }
    }
}

/// The regime grid (`sweep.json`): medians over seeds per cell, row-major `[evidence][beta]`,
/// NaN (`null`) where undefined.
#[derive(Clone, Debug, Serialize)]
pub struct Sweep {
    /// Evidence levels (rows).
    pub evidence: Vec<f64>,
    /// Precisions (columns).
    pub beta: Vec<f64>,
    /// Networks per cell.
    pub seeds: usize,
    /// Networks trained.
    pub networks: usize,
    /// Pattern length N.
    pub n: usize,
    /// Epochs.
    pub epochs: u64,
    /// Steps per epoch.
    pub steps_per_epoch: usize,
    /// Learning rate.
    pub lr: f64,
    /// Trials per ΔR² estimate.
    pub trials: usize,
    /// The engine that computed the networks.
    pub engine: String,
    /// Training wall time, seconds.
    pub train_seconds: f64,
    /// Scoring wall time, seconds.
    pub eval_seconds: f64,
    /// Training throughput.
    pub network_steps_per_s: f64,
    /// Retrieval ΔR² of the training patterns.
    pub retrieval_dr2: Vec<f64>,
    /// ΔR² of the held-out patterns.
    pub generalization_dr2: Vec<f64>,
    /// Distinct attractors.
    pub n_attractors: Vec<f64>,
    /// Mean |90° − angle| between the attractors, degrees.
    pub orthogonality_deg: Vec<f64>,
    /// How the grids are laid out.
    pub layout: String,
    /// The run directory.
    #[serde(skip)]
    pub run_dir: PathBuf,
}

impl Sweep {
    /// The four heat maps (`sweep.png`): x = log10 precision, y = evidence.
    pub fn figure(&self) -> Figure {
        let (ne, nb) = (self.evidence.len(), self.beta.len());
        let mut fig = Figure::new(2, 2, 380, 340);
        fig.set_title(&format!(
            "FEP regimes ({} networks, {} epochs x {} steps)",
            self.networks, self.epochs, self.steps_per_epoch
        ));
        let xr = (self.beta[0].log10(), self.beta[nb - 1].log10());
        let yr = (self.evidence[0] - 0.5, self.evidence[ne - 1] + 0.5);
        let xr = if xr.0 < xr.1 {
            xr
        } else {
            (xr.0 - 0.5, xr.0 + 0.5)
        };
        for (i, (title, v)) in [
            ("retrieval dR2", &self.retrieval_dr2),
            ("generalisation dR2", &self.generalization_dr2),
            ("# attractors", &self.n_attractors),
            ("mean |90 - angle| (deg)", &self.orthogonality_deg),
        ]
        .iter()
        .enumerate()
        {
            // Heat-map rows are y (evidence), columns x (beta): the grids' own layout.
            fig.axes(i % 2, i / 2)
                .set_title(title)
                .set_xlabel("log10 precision")
                .set_ylabel("evidence")
                .heatmap(v, nb, ne, xr, yr);
        }
        fig
    }
}

/// Scores every network of a trained sweep: (retrieval ΔR², generalisation ΔR², attractors,
/// orthogonality) each, network k's noise from `seed + k`.
fn score_sweep(
    t: &FepTrainer,
    test: &Option<Patterns>,
    trials: usize,
    seed: u64,
    ctx: &Ctx,
) -> Result<Vec<[f64; 4]>> {
    use rayon::prelude::*;
    let (n, p, g) = (t.n, t.n_patterns(), t.g);
    let js: Vec<Vec<f64>> = t.j_host_all()?;
    let mut results = vec![[f64::NAN; 4]; g];
    let scope = ctx.control.scope(g as u64, "sweep: scoring");
    let scoring = scope.progress().clone();
    results.par_iter_mut().enumerate().for_each(|(k, out)| {
        let mut rng = Rng::derived(seed.wrapping_add(k as u64), streams::EVAL);
        let scaled: Vec<f64> = t.patterns.iter().map(|x| x * t.evidences[k]).collect();
        let (_, distinct) = find_attractors(&js[k], n, &scaled, &ATTRACTOR_NOISE, &mut rng);
        let (orth, _) = orthogonality(&distinct, true);
        // Retrieval of the trained patterns and generalisation to the test set: the same cue
        // (signal 0.1, SNR 1), 100 steps at β = 1.
        let dr2 = |pats: &[f64], pick: &mut dyn FnMut(usize, &mut Rng) -> usize, rng: &mut Rng| {
            reconstruction_dr2(&js[k], n, pats, pick, 0.1, 1.0, trials, 100, 1.0, rng)
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
        *out = [retr, gen_, distinct.len() as f64, orth];
        scoring.advance(1);
    });
    Ok(results)
}

/// Checks the options of a sweep and builds its configuration and trainer: network
/// `(ie · |beta| + ib) · seeds + s` has evidence `evidence[ie]` and precision `beta[ib]`; with
/// the held-out patterns, if any.
fn sweep_trainer(
    o: &SweepOptions,
    device: &Device,
) -> Result<(FepConfig, FepTrainer, Option<Patterns>)> {
    let (evs, betas) = (&o.evidence, &o.beta);
    if o.seeds == 0 || o.trials == 0 {
        bail!("--seeds and --trials must be >= 1");
    }
    if evs.is_empty()
        || betas.is_empty()
        || evs.iter().chain(betas).any(|x| !x.is_finite() || *x < 0.0)
    {
        bail!("evidence and beta must be non-empty lists of finite values >= 0");
    }
    let g = evs.len() * betas.len() * o.seeds;
    let cfg = FepConfig::new()
        .with_patterns(o.patterns.clone())
        .with_epochs(o.epochs)
        .with_steps_per_epoch(o.steps_per_epoch)
        .with_lr(o.lr)
        .with_networks(g)
        .with_engine(o.engine)
        .with_seed(o.seed.unwrap_or(0));
    cfg.validate()?;
    let (pats, test) = resolve_patterns(&cfg)?;
    let mut t = FepTrainer::new(&cfg, pats.data, pats.n, device)?;
    let mut k = 0;
    for &e in evs {
        for &b in betas {
            for _ in 0..o.seeds {
                t.evidences[k] = e;
                t.betas[k] = b;
                k += 1;
            }
        }
    }
    Ok((cfg, t, test))
}

/// Trains `evidence × beta × seeds` networks as one batched run (a run directory, checkpointed
/// by the training driver, stoppable through `ctx.control`) and scores each (`fep sweep`).
pub fn sweep(o: &SweepOptions, ctx: &Ctx) -> Result<Sweep> {
    let (cfg, mut t, test) = sweep_trainer(o, &ctx.device)?;
    let (evs, betas, g) = (&o.evidence, &o.beta, t.g);
    let rd = crate::run::start_run(
        o.run_dir.as_deref(),
        "fep-sweep",
        <super::family::FepFamily as super::family::Family>::KIND,
        cfg.seed,
        o.overwrite,
        &cfg,
    )?;
    log::info!(
        "sweep: {} evidence x {} precision x {} seeds = {g} networks of N = {} in one batch ({} engine)",
        evs.len(),
        betas.len(),
        o.seeds,
        t.n,
        t.engine()
    );
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
    train::run(&mut t, &rd, 0, &opts, &ctx.control)?;
    let train_seconds = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let results = score_sweep(&t, &test, o.trials, cfg.seed, ctx)?;
    let eval_seconds = t1.elapsed().as_secs_f64();
    // Medians over seeds per cell: grid[e][b].
    let med = |f: usize| -> Vec<f64> {
        results
            .chunks(o.seeds)
            .map(|cell| median(cell.iter().map(|r| r[f]).collect()))
            .collect()
    };
    Ok(Sweep {
        evidence: evs.clone(),
        beta: betas.clone(),
        seeds: o.seeds,
        networks: g,
        n: t.n,
        epochs: o.epochs,
        steps_per_epoch: o.steps_per_epoch,
        lr: o.lr,
        trials: o.trials,
        engine: t.engine().to_string(),
        train_seconds,
        eval_seconds,
        network_steps_per_s: (g as f64 * o.epochs as f64 * o.steps_per_epoch as f64)
            / train_seconds,
        retrieval_dr2: med(0),
        generalization_dr2: med(1),
        n_attractors: med(2),
        orthogonality_deg: med(3),
        layout: "row-major [evidence][beta], medians over seeds".into(),
        run_dir: rd.path().to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::family::{RunPlace, train};
    use crate::models::fep::Order;

    /// A fresh scratch folder holding the three 8-value patterns of `tests/cli.rs`.
    fn scratch(name: &str) -> Result<(PathBuf, PathBuf)> {
        let dir =
            std::env::temp_dir().join(format!("attractor-api-fep-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let csv = dir.join("p.csv");
        std::fs::write(&csv, "1,0,0,1,0,1,0,1\n0,1,1,0,0,1,1,0\n1,1,0,0,1,0,0,1\n")?;
        Ok((dir, csv))
    }

    /// Two networks trained for 40 sequential epochs on the three patterns, through the
    /// library's one training path.
    fn tiny_run(name: &str) -> Result<(PathBuf, Ctx)> {
        let (dir, csv) = scratch(name)?;
        let ctx = Ctx::cpu()?;
        let cfg = FepConfig::new()
            .with_patterns(PatternSource::Path(csv))
            .with_epochs(40)
            .with_steps_per_epoch(1)
            .with_order(Order::Sequential)
            .with_evidence(20.0)
            .with_networks(2);
        let place = RunPlace {
            run_dir: Some(dir.join("run")),
            overwrite: true,
        };
        let report = train(cfg, &place, &ctx)?;
        assert!(report.run_dir.join("couplings.png").is_file());
        Ok((report.run_dir, ctx))
    }

    fn keys(v: &impl Serialize) -> Result<Vec<String>> {
        let v = serde_json::to_value(v)?;
        let obj = v.as_object().context("not an object")?;
        Ok(obj.keys().cloned().collect())
    }

    #[test]
    fn attractors_of_a_tiny_run() -> Result<()> {
        let (run, ctx) = tiny_run("attractors")?;
        let o = AttractorsOptions::default();
        let a = attractors(&run, &o, &ctx)?;
        assert!(a.count() >= 1);
        assert_eq!(a.attractors.shape, vec![a.count(), 8]);
        assert_eq!(a.attractors.data.len(), a.count() * 8);
        assert_eq!(a.patterns.shape, vec![3, 8]);
        assert!(a.picture().width() > 0);
        let sym = attractors(
            &run,
            &AttractorsOptions {
                network: 1,
                symmetric_part: true,
                seed: Some(3),
            },
            &ctx,
        )?;
        assert_eq!(sym.network, 1);
        let err = attractors(&run, &AttractorsOptions { network: 2, ..o }, &ctx)
            .err()
            .context("network 2 of 2 accepted")?;
        assert_eq!(
            err.to_string(),
            "--network 2 out of range (the run has 2 networks)"
        );
        Ok(())
    }

    #[test]
    fn eval_scores_every_network_and_serialises_as_eval_json() -> Result<()> {
        let (run, ctx) = tiny_run("eval")?;
        let o = EvalOptions {
            trials: 5,
            steps: 5,
            ..EvalOptions::default()
        };
        let r = eval(&run, &o, &ctx)?;
        assert_eq!(r.networks, 2);
        assert_eq!(r.step, 40);
        assert_eq!(r.per_network.retrieval_dr2.len(), 2);
        assert!(r.asymmetry.is_finite() && r.retrieval_dr2.is_finite());
        // No held-out set for a CSV run: NaN, written null.
        assert!(r.generalization_dr2.is_nan());
        let v = serde_json::to_value(&r)?;
        assert!(v["generalization_dr2"].is_null());
        assert_eq!(v["scoring"]["trials"], 5);
        assert_eq!(keys(&r)?.len(), 15);
        // The same seed gives the same report.
        let again = eval(&run, &o, &ctx)?;
        assert_eq!(serde_json::to_value(&again)?, v);
        let bad = EvalOptions {
            pattern_index: vec![3],
            ..o.clone()
        };
        let err = eval(&run, &bad, &ctx).err().context("index 3 accepted")?;
        assert_eq!(
            err.to_string(),
            "--pattern-index 3 out of range (3 patterns)"
        );
        let zero = EvalOptions {
            trials: 0,
            ..o.clone()
        };
        assert!(eval(&run, &zero, &ctx).is_err());
        // A raised stop flag ends the scoring before the first network.
        let stopped = ctx.clone();
        stopped.control.stop.request();
        let err = eval(&run, &o, &stopped).err().context("stop ignored")?;
        assert!(err.to_string().contains("stopped"), "{err}");
        Ok(())
    }

    #[test]
    fn run_free_labels_every_state() -> Result<()> {
        let (run, ctx) = tiny_run("free")?;
        let o = RunFreeOptions {
            steps: 30,
            ..RunFreeOptions::default()
        };
        let r = run_free(&run, &o, &ctx)?;
        assert_eq!(r.states.shape, vec![30, 8]);
        assert_eq!(r.labels.len(), 30);
        assert_eq!(r.correlations.shape, vec![3, 30]);
        assert!((0.0..=1.0).contains(&r.labelled_frac));
        assert!(r.correlations.data.iter().all(|c| c.abs() <= 1.0 + 1e-9));
        // The JSON file holds the measures, not the states.
        let k = keys(&r)?;
        assert_eq!(k.len(), 8);
        assert!(!k.iter().any(|k| k == "states" || k == "run_dir"));
        let err = run_free(&run, &RunFreeOptions { steps: 0, ..o }, &ctx)
            .err()
            .context("0 steps accepted")?;
        assert_eq!(err.to_string(), "--steps must be >= 1 and --beta >= 0");
        Ok(())
    }

    #[test]
    fn recall_reconstructs_corrupted_patterns() -> Result<()> {
        let (run, ctx) = tiny_run("recall")?;
        let o = RecallOptions {
            pattern_index: vec![0, 2],
            noise_sd: 1.0,
            ..RecallOptions::default()
        };
        let r = recall(&run, &o, &ctx)?;
        assert_eq!(r.cues.len(), 2);
        assert_eq!(r.outputs.shape, vec![2, 8]);
        assert!(r.corr_cue.is_finite() && r.corr_output.is_finite());
        assert_eq!(r.targets.iter().filter(|t| t.is_some()).count(), 2);
        assert!(r.picture().height() > 0);
        assert_eq!(keys(&r)?.len(), 7);
        let none = RecallOptions {
            pattern_index: Vec::new(),
            ..o
        };
        let err = recall(&run, &none, &ctx).err().context("no cue accepted")?;
        assert_eq!(
            err.to_string(),
            "give --cue FILE or at least one --pattern-index"
        );
        Ok(())
    }

    #[test]
    fn sweep_trains_and_scores_a_small_grid() -> Result<()> {
        let (dir, csv) = scratch("sweep")?;
        let ctx = Ctx::cpu()?;
        let o = SweepOptions {
            evidence: vec![5.0, 10.0],
            beta: parse_range("0.1..1:3", true)?,
            epochs: 10,
            trials: 3,
            patterns: PatternSource::Path(csv),
            run_dir: Some(dir.join("sweep")),
            ..SweepOptions::default()
        };
        let r = sweep(&o, &ctx)?;
        assert_eq!(r.networks, 6);
        assert_eq!(r.n, 8);
        for grid in [&r.retrieval_dr2, &r.n_attractors, &r.orthogonality_deg] {
            assert_eq!(grid.len(), 6);
        }
        assert!(r.n_attractors.iter().all(|x| *x >= 1.0));
        assert!(r.generalization_dr2.iter().all(|x| x.is_nan()));
        assert!(r.run_dir.join("config.json").is_file());
        assert_eq!(keys(&r)?.len(), 18);
        let err = sweep(&SweepOptions { seeds: 0, ..o }, &ctx)
            .err()
            .context("0 seeds accepted")?;
        assert_eq!(err.to_string(), "--seeds and --trials must be >= 1");
        Ok(())
    }

    #[test]
    fn ranges_parse_as_the_command_line_documents() -> Result<()> {
        assert_eq!(parse_range("1..3", false)?, vec![1.0, 2.0, 3.0]);
        assert_eq!(parse_range("0.5,2", true)?, vec![0.5, 2.0]);
        assert_eq!(parse_range("0..1:3", false)?, vec![0.0, 0.5, 1.0]);
        let d = SweepOptions::default();
        assert_eq!(parse_range("1..20", false)?, d.evidence);
        assert_eq!(parse_range("0.01..1:19", true)?, d.beta);
        assert!(parse_range("a..b", false).is_err());
        assert!(parse_range("-1,2", false).is_err());
        Ok(())
    }
}
