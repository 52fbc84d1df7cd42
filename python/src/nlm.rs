//! Neural Langevin machines: `attractor.nlm`'s operations over `attractor::api::nlm`.
//! Images come back as numpy arrays `[k, h, w]` of pixels in [0, 1] (the library's display
//! space [-1, 1] mapped in place: no copy).

use std::path::PathBuf;

use anyhow::{Context, Result};
use attractor::api::nlm::{self, ModelOptions, SamplerOptions};
use numpy::PyUntypedArrayMethods;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::opts::Opts;
use crate::{array, ctx, driver, errors, json};

/// Display space [-1, 1] → pixels [0, 1], in place.
fn to_pixels(mut v: Vec<f32>) -> Vec<f32> {
    for x in &mut v {
        *x = ((*x + 1.0) * 0.5).clamp(0.0, 1.0);
    }
    v
}

fn model(o: &mut Opts) -> Result<ModelOptions> {
    let tage = o.take("tage")?;
    let untrained = o.take("untrained")?.unwrap_or(false);
    Ok(ModelOptions {
        tage,
        untrained,
        temperature: o.take("temperature")?,
    })
}

fn sampler(o: &mut Opts) -> Result<SamplerOptions> {
    let mut s = SamplerOptions::default();
    o.set_choice("sampler", &mut s.sampler)?;
    o.set("replicas", &mut s.replicas)?;
    o.set("t_max", &mut s.t_max)?;
    o.set("swap_every", &mut s.swap_every)?;
    Ok(s)
}

/// `nlm generate`: a dict of the JSON, `frames` `[k, chains, h, w]` (the snapshots, then the
/// final samples) and `frame_steps`.
#[pyfunction]
#[pyo3(signature = (run_dir, opts_json, device="auto", progress=None))]
fn nlm_generate<'py>(
    py: Python<'py>,
    run_dir: PathBuf,
    opts_json: &str,
    device: &str,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let opts_json = opts_json.to_owned();
    let device = device.to_owned();
    let g = driver::run(py, progress, move |c| {
        let mut o = Opts::parse(&opts_json)?;
        let mut go = nlm::GenerateOptions {
            model: model(&mut o)?,
            sampler: sampler(&mut o)?,
            ..Default::default()
        };
        go.seed = o.take("seed")?;
        o.set("chains", &mut go.chains)?;
        o.set("steps", &mut go.steps)?;
        go.snapshots = o.take("snapshots")?;
        o.set_choice("init", &mut go.init)?;
        o.finish()?;
        nlm::generate(&run_dir, &go, &ctx(&device, c)?)
    })?;
    let text = json(&g).map_err(|e| errors::to_py(py, e))?;
    let (h, w, chains) = (g.images.rows, g.images.cols, g.chains);
    let d = PyDict::new(py);
    d.set_item("json", text)?;
    // Every recorded frame, the final samples last (the package hands out `frames[-1]`, a
    // view).
    let steps: Vec<usize> = g.frames.iter().map(|(s, _)| *s).collect();
    let k = g.frames.len();
    let all: Vec<f32> = g.frames.into_iter().flat_map(|(_, v)| v).collect();
    d.set_item("frames", array(py, to_pixels(all), &[k, chains, h, w])?)?;
    d.set_item("frame_steps", steps)?;
    Ok(d)
}

/// `nlm eval`: the report as JSON (the keys of `eval.json`).
#[pyfunction]
#[pyo3(signature = (run_dir, opts_json, device="auto", progress=None))]
fn nlm_eval(
    py: Python<'_>,
    run_dir: PathBuf,
    opts_json: &str,
    device: &str,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let opts_json = opts_json.to_owned();
    let device = device.to_owned();
    driver::run(py, progress, move |c| {
        let mut o = Opts::parse(&opts_json)?;
        let mut eo = nlm::EvalOptions {
            model: model(&mut o)?,
            sampler: sampler(&mut o)?,
            ..Default::default()
        };
        eo.seed = o.take("seed")?;
        o.set("n_gen", &mut eo.n_gen)?;
        o.set("gen_steps", &mut eo.gen_steps)?;
        o.set("record_at", &mut eo.record_at)?;
        o.set("relax_steps", &mut eo.relax_steps)?;
        o.set_choice("init", &mut eo.init)?;
        o.set("repeats", &mut eo.repeats)?;
        o.finish()?;
        json(&nlm::eval(&run_dir, &eo, &ctx(&device, c)?)?)
    })
}

/// `nlm explore`: a dict of the JSON and the arrays (snapshots `[k, h, w]`, trajectory
/// `[T, 3]`, data projection `[M, 3]`).
#[pyfunction]
#[pyo3(signature = (run_dir, opts_json, device="auto", progress=None))]
fn nlm_explore<'py>(
    py: Python<'py>,
    run_dir: PathBuf,
    opts_json: &str,
    device: &str,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let opts_json = opts_json.to_owned();
    let device = device.to_owned();
    let e = driver::run(py, progress, move |c| {
        let mut o = Opts::parse(&opts_json)?;
        let mut eo = nlm::ExploreOptions {
            model: model(&mut o)?,
            ..Default::default()
        };
        eo.seed = o.take("seed")?;
        o.set("steps", &mut eo.steps)?;
        o.set("every", &mut eo.every)?;
        o.set("record_every", &mut eo.record_every)?;
        o.set("pca_images", &mut eo.pca_images)?;
        o.finish()?;
        nlm::explore(&run_dir, &eo, &ctx(&device, c)?)
    })?;
    let text = json(&e).map_err(|e| errors::to_py(py, e))?;
    let (h, w) = (e.images.rows, e.images.cols);
    let d = PyDict::new(py);
    d.set_item("json", text)?;
    let k = e.snapshots.len();
    let snaps: Vec<f32> = e.snapshots.into_iter().flatten().collect();
    d.set_item("snapshots", array(py, to_pixels(snaps), &[k, h, w])?)?;
    let rows = |v: Vec<Vec<f64>>| {
        let n = v.len();
        let m = v.first().map_or(0, Vec::len);
        (v.into_iter().flatten().collect::<Vec<f64>>(), [n, m])
    };
    let (t, ts) = rows(e.trajectory);
    d.set_item("trajectory", array(py, t, &ts)?)?;
    d.set_item("trajectory_steps", e.trajectory_steps)?;
    let (p, ps) = rows(e.data_projection);
    d.set_item("data_projection", array(py, p, &ps)?)?;
    // As a list of ints (a Vec<u8> would become `bytes`).
    let labels: Option<Vec<u32>> = e
        .data_labels
        .map(|v| v.into_iter().map(u32::from).collect());
    d.set_item("data_labels", labels)?;
    Ok(d)
}

/// `nlm denoise`: a dict of the JSON and the images (`clean`, `corrupted`, `restored`, each
/// `[k, h, w]` in [0, 1]).
#[pyfunction]
#[pyo3(signature = (run_dir, opts_json, device="auto", progress=None))]
fn nlm_denoise<'py>(
    py: Python<'py>,
    run_dir: PathBuf,
    opts_json: &str,
    device: &str,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let opts_json = opts_json.to_owned();
    let device = device.to_owned();
    let r = driver::run(py, progress, move |c| {
        let mut o = Opts::parse(&opts_json)?;
        let mut d = nlm::DenoiseOptions {
            model: model(&mut o)?,
            ..Default::default()
        };
        d.seed = o.take("seed")?;
        o.set("input", &mut d.input)?;
        o.set("test_index", &mut d.test_index)?;
        d.n_test = o.take("n_test")?;
        if let Some(s) = o.take::<String>("corrupt")? {
            d.corruption = s.parse()?;
        }
        o.set("steps", &mut d.steps)?;
        o.set_choice("stop", &mut d.stop)?;
        o.finish()?;
        nlm::denoise(&run_dir, &d, &ctx(&device, c)?)
    })?;
    let text = json(&r).map_err(|e| errors::to_py(py, e))?;
    let shape = [r.images, r.images_of.rows, r.images_of.cols];
    let d = PyDict::new(py);
    d.set_item("json", text)?;
    d.set_item("clean", array(py, to_pixels(r.clean), &shape)?)?;
    d.set_item("corrupted", array(py, to_pixels(r.corrupted), &shape)?)?;
    d.set_item("restored", array(py, to_pixels(r.restored), &shape)?)?;
    Ok(d)
}

/// Writes images `[k, h, w]` uint8 as PNG files `dir/0000.png`…; returns their paths (the
/// clean images `nlm denoise` reads).
#[pyfunction]
fn write_pngs(
    py: Python<'_>,
    dir: PathBuf,
    images: numpy::PyReadonlyArrayDyn<'_, u8>,
) -> PyResult<Vec<PathBuf>> {
    let shape = images.shape().to_vec();
    let [k, h, w] = shape[..] else {
        return Err(errors::config(
            py,
            format!("images must have shape (k, h, w), not {shape:?}"),
        ));
    };
    let px = images.as_slice()?;
    let write = || -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        (0..k)
            .map(|i| {
                let p = dir.join(format!("{i:04}.png"));
                let img = image::GrayImage::from_raw(
                    u32::try_from(w)?,
                    u32::try_from(h)?,
                    px[i * h * w..(i + 1) * h * w].to_vec(),
                )
                .ok_or_else(|| anyhow::anyhow!("image {i} has the wrong size"))?;
                img.save(&p)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", p.display()))?;
                Ok(p)
            })
            .collect()
    };
    write().map_err(|e| errors::to_py(py, e))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(nlm_generate, m)?)?;
    m.add_function(wrap_pyfunction!(nlm_eval, m)?)?;
    m.add_function(wrap_pyfunction!(nlm_explore, m)?)?;
    m.add_function(wrap_pyfunction!(nlm_denoise, m)?)?;
    m.add_function(wrap_pyfunction!(write_pngs, m)?)?;
    Ok(())
}
