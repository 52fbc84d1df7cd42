//! DDM CT-RNNs: `attractor.ddm`'s operations over `attractor::api::ddm`.

use std::path::PathBuf;

use attractor::api::ddm::{self, DdmRun};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::opts::Opts;
use crate::{array, ctx, driver, errors, json};

/// `ddm simulate`: a dict of the JSON and `paths` `[K, steps, d]` (float32).
#[pyfunction]
#[pyo3(signature = (run_dir, opts_json, device="auto", progress=None))]
fn ddm_simulate<'py>(
    py: Python<'py>,
    run_dir: PathBuf,
    opts_json: &str,
    device: &str,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let opts_json = opts_json.to_owned();
    let device = device.to_owned();
    let s = driver::run(py, progress, move |c| {
        let mut o = Opts::parse(&opts_json)?;
        let mut so = ddm::SimulateOptions::default();
        o.set("t_end", &mut so.t_end)?;
        so.dt = o.take("dt")?;
        o.set("trajectories", &mut so.trajectories)?;
        o.set("noise_scale", &mut so.noise_scale)?;
        o.set("target", &mut so.target)?;
        so.record_every = o.take("record_every")?;
        so.seed = o.take("seed")?;
        o.finish()?;
        let ctx = ctx(&device, c)?;
        let run = DdmRun::open(&run_dir, &ctx)?;
        ddm::simulate(&run, &so, &ctx)
    })?;
    let text = json(&s).map_err(|e| errors::to_py(py, e))?;
    let d = PyDict::new(py);
    d.set_item("json", text)?;
    d.set_item("paths", array(py, s.paths.data, &s.paths.shape)?)?;
    Ok(d)
}

/// `ddm eval`: the metrics as JSON (the keys of `eval.json`).
#[pyfunction]
#[pyo3(signature = (run_dir, opts_json, device="auto", progress=None))]
fn ddm_eval(
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
        let mut eo = ddm::EvalOptions {
            t_end: o.take("t_end")?,
            ..Default::default()
        };
        o.set("trajectories", &mut eo.trajectories)?;
        o.set("points", &mut eo.points)?;
        o.set("burn_in", &mut eo.burn_in)?;
        eo.seed = o.take("seed")?;
        o.finish()?;
        let ctx = ctx(&device, c)?;
        let run = DdmRun::open(&run_dir, &ctx)?;
        json(&ddm::eval(&run, &eo, &ctx)?)
    })
}

/// `ddm decompose`: the JSON (the keys of `decompose.json`) with the fields on the grid.
#[pyfunction]
#[pyo3(signature = (run_dir, opts_json, device="auto", progress=None))]
fn ddm_decompose<'py>(
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
        let mut d = ddm::DecomposeOptions::default();
        o.set("grid", &mut d.grid)?;
        o.set("t_end", &mut d.t_end)?;
        o.set("trajectories", &mut d.trajectories)?;
        d.seed = o.take("seed")?;
        o.finish()?;
        let ctx = ctx(&device, c)?;
        let run = DdmRun::open(&run_dir, &ctx)?;
        ddm::decompose(&run, &d, &ctx)
    })?;
    let text = json(&r).map_err(|e| errors::to_py(py, e))?;
    let f = r.fields;
    let d = PyDict::new(py);
    d.set_item("json", text)?;
    let pts = f.x.len();
    let dim = f.d;
    d.set_item("grid_x", array(py, f.x, &[pts])?)?;
    d.set_item("grid_y", array(py, f.y, &[pts])?)?;
    d.set_item("drift", array(py, f.full, &[pts, dim])?)?;
    d.set_item("drift_symmetric", array(py, f.symmetric, &[pts, dim])?)?;
    d.set_item(
        "drift_antisymmetric",
        array(py, f.antisymmetric, &[pts, dim])?,
    )?;
    d.set_item("density", array(py, f.density, &[pts])?)?;
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(ddm_simulate, m)?)?;
    m.add_function(wrap_pyfunction!(ddm_eval, m)?)?;
    m.add_function(wrap_pyfunction!(ddm_decompose, m)?)?;
    Ok(())
}
