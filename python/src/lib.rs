//! `attractor._attractor`: the extension module under the Python package `attractor`.
//!
//! Nothing here computes: each function converts its arguments, calls one operation of the
//! library's `attractor::api` (on a worker thread, the GIL released: [`driver::run`]) and
//! converts the result: JSON text for structured results (the package turns it into dicts),
//! numpy arrays handed over without a copy (`PyArray::from_vec`, then a reshape, a view) for
//! arrays. The Python package (`attractor/*.py`) holds the signatures, defaults and docstrings.

use std::path::{Path, PathBuf};

use anyhow::Context;
use attractor::api::{self, Ctx, ResumeOptions, Run, RunPlace};
use attractor::device::DeviceChoice;
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

mod ddm;
mod driver;
mod errors;
mod fep;
mod nlm;
mod opts;

// The allocator the command line uses (src/main.rs): freed tensor buffers are kept for reuse
// instead of being returned to the kernel and re-faulted (~20 % of a DDM step otherwise), so
// training from Python runs as fast as from the command line.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The context of one operation: the device named `device` and the driver's control.
pub(crate) fn ctx(device: &str, control: attractor::progress::Control) -> anyhow::Result<Ctx> {
    let choice: DeviceChoice = device.parse()?;
    Ok(Ctx::new(attractor::device::select(choice)?.device).with_control(control))
}

pub(crate) fn json<T: serde::Serialize>(v: &T) -> anyhow::Result<String> {
    serde_json::to_string(v).context("cannot serialise the result")
}

/// Named f32 arrays as a dict of numpy arrays, each built on its `Vec` without a copy.
fn arrays<'py>(
    py: Python<'py>,
    tensors: api::family::NamedTensors,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (name, shape, data) in tensors {
        d.set_item(name, array(py, data, &shape)?)?;
    }
    Ok(d)
}

/// `data` (row-major) as a numpy array of `shape`, owning the `Vec` (no copy).
pub(crate) fn array<'py, T: numpy::Element>(
    py: Python<'py>,
    data: Vec<T>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    let flat = PyArray1::from_vec(py, data);
    Ok(flat.reshape(shape.to_vec())?.into_any())
}

/// The overrides (a JSON object of configuration keys) as `config::build`'s extra values:
/// the same path as the command line's flags, so unknown keys and bad values get its
/// messages.
fn overrides(text: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let v: serde_json::Value =
        serde_json::from_str(text).context("the configuration overrides are not valid JSON")?;
    Ok(vec![v])
}

fn build<C: api::RunConfig>(file: Option<&Path>, extra: &[serde_json::Value]) -> anyhow::Result<C> {
    attractor::config::build(&C::defaults(), file, &[], extra)
}

/// Trains a new run of `family` in `run_dir` from the defaults, the configuration file
/// `config` and the overrides (JSON text); returns the report as JSON text.
#[pyfunction]
#[pyo3(signature = (family, run_dir, overrides_json, config=None, overwrite=false, device="auto", progress=None))]
#[allow(clippy::too_many_arguments)]
fn train(
    py: Python<'_>,
    family: &str,
    run_dir: PathBuf,
    overrides_json: &str,
    config: Option<PathBuf>,
    overwrite: bool,
    device: &str,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let kind: api::Kind = family.parse().map_err(|e| errors::to_py(py, e))?;
    let extra = overrides(overrides_json).map_err(|e| errors::to_py(py, e))?;
    let device = device.to_owned();
    driver::run(py, progress, move |control| {
        let ctx = ctx(&device, control)?;
        let place = RunPlace {
            run_dir: Some(run_dir),
            overwrite,
        };
        let file = config.as_deref();
        let report = match kind {
            api::Kind::Nlm => api::train(
                build::<attractor::models::nlm::NlmConfig>(file, &extra)?,
                &place,
                &ctx,
            )?,
            api::Kind::Ddm => api::train(
                build::<attractor::models::ddm::DdmConfig>(file, &extra)?,
                &place,
                &ctx,
            )?,
            api::Kind::Fep => api::train(
                build::<attractor::models::fep::FepConfig>(file, &extra)?,
                &place,
                &ctx,
            )?,
        };
        json(&report)
    })
}

/// Makes `run_dir` ready to receive a new run's input files: refuses a directory that already
/// holds a run unless `overwrite` (the message training would give), creates it.
#[pyfunction]
fn prepare_run_dir(py: Python<'_>, run_dir: PathBuf, overwrite: bool) -> PyResult<()> {
    let made = if overwrite {
        std::fs::create_dir_all(&run_dir)
            .with_context(|| format!("cannot create {}", run_dir.display()))
    } else {
        // Creating (and at once releasing) the run directory checks it as training will.
        attractor::run::RunDir::create(&run_dir, false).map(drop)
    };
    made.map_err(|e| errors::to_py(py, e))
}

/// Writes images `(n, h, w)` uint8 (and optional labels `(n,)` uint8) as an IDX folder
/// (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`), the layout of MNIST that NLM runs
/// read.
#[pyfunction]
#[pyo3(signature = (dir, images, labels=None))]
fn write_idx(
    py: Python<'_>,
    dir: PathBuf,
    images: PyReadonlyArrayDyn<'_, u8>,
    labels: Option<PyReadonlyArrayDyn<'_, u8>>,
) -> PyResult<()> {
    let shape = images.shape().to_vec();
    let [n, h, w] = shape[..] else {
        return Err(errors::config(
            py,
            format!("images must have shape (n, h, w), not {shape:?}"),
        ));
    };
    let pixels = images.as_slice()?;
    let labels = labels
        .map(|l| {
            let l = l.as_slice()?.to_vec();
            if l.len() == n {
                Ok(l)
            } else {
                Err(errors::config(
                    py,
                    format!("{} labels for {n} images", l.len()),
                ))
            }
        })
        .transpose()?;
    let write = || -> anyhow::Result<()> {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let mut img = idx_header(0x0803, &[n, h, w])?;
        img.extend_from_slice(pixels);
        attractor::checkpoint::atomic_write(&dir.join("train-images-idx3-ubyte"), &img)?;
        let lab = dir.join("train-labels-idx1-ubyte");
        match &labels {
            Some(l) => {
                let mut bytes = idx_header(0x0801, &[n])?;
                bytes.extend_from_slice(l);
                attractor::checkpoint::atomic_write(&lab, &bytes)?;
            }
            None if lab.exists() => std::fs::remove_file(&lab)
                .with_context(|| format!("cannot remove {}", lab.display()))?,
            None => {}
        }
        Ok(())
    };
    write().map_err(|e| errors::to_py(py, e))
}

/// An IDX header: the magic number, then each dimension as a big-endian u32.
fn idx_header(magic: u32, dims: &[usize]) -> anyhow::Result<Vec<u8>> {
    let mut out = magic.to_be_bytes().to_vec();
    for &d in dims {
        let d = u32::try_from(d).with_context(|| format!("dimension {d} is too large for IDX"))?;
        out.extend_from_slice(&d.to_be_bytes());
    }
    Ok(out)
}

/// Writes a float64 array as a `.npy` file (the FEP's pattern files).
#[pyfunction]
fn write_npy(py: Python<'_>, path: PathBuf, array: PyReadonlyArrayDyn<'_, f64>) -> PyResult<()> {
    let shape = array.shape().to_vec();
    let data = array.as_slice()?;
    attractor::npy::write_npy_f64(&path, &shape, data).map_err(|e| errors::to_py(py, e))
}

/// A run directory opened by `attractor.open` (the package's `Run` wraps it).
#[pyclass(module = "attractor._attractor", frozen)]
struct RunHandle {
    run: Run,
}

#[pymethods]
impl RunHandle {
    /// Opens the run directory `path`.
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        Run::open(&path)
            .map(|run| Self { run })
            .map_err(|e| errors::to_py(py, e))
    }
    /// `ddm`, `nlm` or `fep`.
    #[getter]
    fn family(&self) -> &'static str {
        self.run.kind().name()
    }
    /// The run directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.run.path().to_path_buf()
    }
    /// `config.json`'s `config` object as JSON text.
    fn config_json(&self, py: Python<'_>) -> PyResult<String> {
        self.run
            .config_json()
            .and_then(|v| json(&v))
            .map_err(|e| errors::to_py(py, e))
    }
    /// `metrics.jsonl` as JSON text (a list of `{step, values}`).
    fn metrics_json(&self, py: Python<'_>) -> PyResult<String> {
        self.run
            .metrics()
            .and_then(|v| json(&v))
            .map_err(|e| errors::to_py(py, e))
    }
    /// Where the run stands, as JSON text.
    fn status_json(&self, py: Python<'_>) -> PyResult<String> {
        self.run
            .status()
            .and_then(|v| json(&v))
            .map_err(|e| errors::to_py(py, e))
    }
    /// The step of the newest checkpoint.
    fn step(&self, py: Python<'_>) -> PyResult<u64> {
        self.run.step().map_err(|e| errors::to_py(py, e))
    }
    /// The newest checkpoint's named arrays (what `export --format npy` writes).
    fn parameters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let run = self.run.clone();
        let t = driver::run(py, None, move |_| run.tensors())?;
        arrays(py, t)
    }
    /// Trains on from the newest checkpoint; the outcome as JSON text.
    #[pyo3(signature = (until=None, total=None, device="auto", progress=None))]
    fn resume(
        &self,
        py: Python<'_>,
        until: Option<u64>,
        total: Option<u64>,
        device: &str,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<String> {
        let run = self.run.clone();
        let device = device.to_owned();
        driver::run(py, progress, move |control| {
            let ctx = ctx(&device, control)?;
            json(&run.resume(ResumeOptions { until, total }, &ctx)?)
        })
    }
    /// Writes the newest checkpoint's tensors to `out` (`npy`, `safetensors`, `burnpack`);
    /// returns what it wrote.
    fn export(&self, py: Python<'_>, format: &str, out: PathBuf) -> PyResult<String> {
        let run = self.run.clone();
        let format = format.to_owned();
        driver::run(py, None, move |_| run.export(format.parse()?, &out))
    }
}

#[pymodule]
fn _attractor(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_function(wrap_pyfunction!(prepare_run_dir, m)?)?;
    m.add_function(wrap_pyfunction!(write_idx, m)?)?;
    m.add_function(wrap_pyfunction!(write_npy, m)?)?;
    m.add_class::<RunHandle>()?;
    fep::register(m)?;
    nlm::register(m)?;
    ddm::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
