//! FEP attractor networks: `attractor.fep`'s operations over `attractor::api::fep`. Options
//! left `None` take the library's defaults (`Default` of each options structure).

use std::path::PathBuf;

use attractor::api::fep::{self, Array64};
use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::{array, ctx, driver, errors, json};

fn a64<'py>(py: Python<'py>, a: Array64) -> PyResult<Bound<'py, PyAny>> {
    array(py, a.data, &a.shape)
}

/// `(result JSON, {name: array})`.
type WithArrays<'py> = (String, Bound<'py, PyDict>);

fn set<T>(field: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *field = v;
    }
}

/// `fep attractors`: `(json, {"attractors", "patterns"})`.
#[pyfunction]
#[pyo3(signature = (run_dir, network=None, symmetric_part=None, seed=None, device="auto"))]
fn fep_attractors<'py>(
    py: Python<'py>,
    run_dir: PathBuf,
    network: Option<usize>,
    symmetric_part: Option<bool>,
    seed: Option<u64>,
    device: &str,
) -> PyResult<WithArrays<'py>> {
    let mut o = fep::AttractorsOptions::default();
    set(&mut o.network, network);
    set(&mut o.symmetric_part, symmetric_part);
    o.seed = seed;
    let device = device.to_owned();
    let r = driver::run(py, None, move |c| {
        fep::attractors(&run_dir, &o, &ctx(&device, c)?)
    })?;
    let count = r.count();
    let text = serde_json::json!({
        "run_dir": r.run_dir,
        "network": r.network,
        "count": count,
        "image_shape": r.image_shape,
    })
    .to_string();
    let d = PyDict::new(py);
    d.set_item("attractors", a64(py, r.attractors)?)?;
    d.set_item("patterns", a64(py, r.patterns)?)?;
    Ok((text, d))
}

/// `fep eval`: the report as JSON (the keys of `eval.json`).
#[pyfunction]
#[pyo3(signature = (run_dir, trials=None, steps=None, patterns_of=None, pattern_index=None, match_norm_of=None, seed=None, device="auto", progress=None))]
#[allow(clippy::too_many_arguments)]
fn fep_eval(
    py: Python<'_>,
    run_dir: PathBuf,
    trials: Option<usize>,
    steps: Option<usize>,
    patterns_of: Option<PathBuf>,
    pattern_index: Option<Vec<usize>>,
    match_norm_of: Option<PathBuf>,
    seed: Option<u64>,
    device: &str,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let mut o = fep::EvalOptions::default();
    set(&mut o.trials, trials);
    set(&mut o.steps, steps);
    set(&mut o.pattern_index, pattern_index);
    o.patterns_of = patterns_of;
    o.match_norm_of = match_norm_of;
    o.seed = seed;
    let device = device.to_owned();
    driver::run(py, progress, move |c| {
        json(&fep::eval(&run_dir, &o, &ctx(&device, c)?)?)
    })
}

/// `fep run-free`: `(json, {"states", "correlations"})`.
#[pyfunction]
#[pyo3(signature = (run_dir, steps=None, beta=None, network=None, symmetric_only=None, threshold=None, seed=None, device="auto"))]
#[allow(clippy::too_many_arguments)]
fn fep_run_free<'py>(
    py: Python<'py>,
    run_dir: PathBuf,
    steps: Option<usize>,
    beta: Option<f64>,
    network: Option<usize>,
    symmetric_only: Option<bool>,
    threshold: Option<f64>,
    seed: Option<u64>,
    device: &str,
) -> PyResult<WithArrays<'py>> {
    let mut o = fep::RunFreeOptions::default();
    set(&mut o.steps, steps);
    set(&mut o.beta, beta);
    set(&mut o.network, network);
    set(&mut o.symmetric_only, symmetric_only);
    set(&mut o.threshold, threshold);
    o.seed = seed;
    let device = device.to_owned();
    let r = driver::run(py, None, move |c| {
        fep::run_free(&run_dir, &o, &ctx(&device, c)?)
    })?;
    let text = json(&r).map_err(|e| errors::to_py(py, e))?;
    let d = PyDict::new(py);
    d.set_item("states", a64(py, r.states)?)?;
    d.set_item("correlations", a64(py, r.correlations)?)?;
    Ok((text, d))
}

/// `fep recall`: `(json, {"outputs", "cues"})`.
#[pyfunction]
#[pyo3(signature = (run_dir, cue=None, pattern_index=None, noise_sd=None, beta=None, steps=None, burn_in=None, network=None, cue_scale=None, seed=None, device="auto"))]
#[allow(clippy::too_many_arguments)]
fn fep_recall<'py>(
    py: Python<'py>,
    run_dir: PathBuf,
    cue: Option<PathBuf>,
    pattern_index: Option<Vec<usize>>,
    noise_sd: Option<f64>,
    beta: Option<f64>,
    steps: Option<usize>,
    burn_in: Option<usize>,
    network: Option<usize>,
    cue_scale: Option<f64>,
    seed: Option<u64>,
    device: &str,
) -> PyResult<WithArrays<'py>> {
    let mut o = fep::RecallOptions {
        cue,
        ..Default::default()
    };
    set(&mut o.pattern_index, pattern_index);
    set(&mut o.noise_sd, noise_sd);
    set(&mut o.beta, beta);
    set(&mut o.steps, steps);
    set(&mut o.burn_in, burn_in);
    set(&mut o.network, network);
    set(&mut o.cue_scale, cue_scale);
    o.seed = seed;
    let device = device.to_owned();
    let r = driver::run(py, None, move |c| {
        fep::recall(&run_dir, &o, &ctx(&device, c)?)
    })?;
    let text = json(&r).map_err(|e| errors::to_py(py, e))?;
    let d = PyDict::new(py);
    d.set_item("outputs", a64(py, r.outputs)?)?;
    d.set_item("cues", a64(py, r.cue_values)?)?;
    Ok((text, d))
}

/// `fep sweep`: the regime grid as JSON (the keys of `sweep.json`, `run_dir` added).
#[pyfunction]
#[pyo3(signature = (evidence=None, beta=None, seeds=None, epochs=None, steps_per_epoch=None, lr=None, patterns=None, trials=None, engine=None, run_dir=None, overwrite=false, seed=None, device="auto", progress=None))]
#[allow(clippy::too_many_arguments)]
fn fep_sweep(
    py: Python<'_>,
    evidence: Option<Vec<f64>>,
    beta: Option<Vec<f64>>,
    seeds: Option<usize>,
    epochs: Option<u64>,
    steps_per_epoch: Option<usize>,
    lr: Option<f64>,
    patterns: Option<String>,
    trials: Option<usize>,
    engine: Option<String>,
    run_dir: Option<PathBuf>,
    overwrite: bool,
    seed: Option<u64>,
    device: &str,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let device = device.to_owned();
    driver::run(py, progress, move |c| {
        let mut o = fep::SweepOptions::default();
        set(&mut o.evidence, evidence);
        set(&mut o.beta, beta);
        set(&mut o.seeds, seeds);
        set(&mut o.epochs, epochs);
        set(&mut o.steps_per_epoch, steps_per_epoch);
        set(&mut o.lr, lr);
        set(&mut o.trials, trials);
        if let Some(p) = patterns {
            o.patterns = p.parse()?;
        }
        if let Some(e) = engine {
            o.engine = <attractor::models::fep::Engine as clap::ValueEnum>::from_str(&e, true)
                .map_err(|_| anyhow::anyhow!("unknown engine `{e}` (auto, host, tensor)"))?;
        }
        o.run_dir = run_dir;
        o.overwrite = overwrite;
        o.seed = seed;
        let r = fep::sweep(&o, &ctx(&device, c)?)?;
        let mut v = serde_json::to_value(&r)?;
        v["run_dir"] = serde_json::to_value(&r.run_dir)?;
        json(&v)
    })
}

/// `A..B`, `LO..HI:N` (log-spaced when `log`) or `x,y,z` as a list (the sweep's ranges).
#[pyfunction]
fn fep_parse_range<'py>(
    py: Python<'py>,
    s: &str,
    log: bool,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let v = fep::parse_range(s, log).map_err(|e| errors::to_py(py, e))?;
    Ok(PyArray1::from_vec(py, v))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(fep_attractors, m)?)?;
    m.add_function(wrap_pyfunction!(fep_eval, m)?)?;
    m.add_function(wrap_pyfunction!(fep_run_free, m)?)?;
    m.add_function(wrap_pyfunction!(fep_recall, m)?)?;
    m.add_function(wrap_pyfunction!(fep_sweep, m)?)?;
    m.add_function(wrap_pyfunction!(fep_parse_range, m)?)?;
    Ok(())
}
