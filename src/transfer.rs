//! The one door for host↔device copies.
//!
//! Every conversion between host memory and a tensor goes through this module: uploads
//! ([`upload`], [`tensor2`], [`tensor2_f32`]) and read-backs ([`download`], [`to_vec_f32`],
//! [`to_rows`]). The raw Burn calls (`from_data`, `from_floats`, `into_data`, `to_data`,
//! `into_scalar`, `try_into_vec_as`, …) are forbidden elsewhere by `clippy.toml`
//! (`disallowed-methods`), so a copy cannot hide in a hot loop without passing here.
//!
//! Each call is counted on the calling thread ([`counts`]): a test runs K steps of a loop and
//! asserts how much the count grew. Thread-local, because tests run on parallel threads; the
//! copies are made on the thread that asks for them. On the CPU backends a "copy" is a memory
//! copy of the host buffer (their fused kernels work on host slices by design); on a GPU it is
//! a transfer over the bus, which the device-resident loops avoid.

use std::cell::Cell;

use anyhow::Result;
use burn::tensor::{Device, Shape, Tensor, TensorData};

thread_local! {
    static UPLOADS: Cell<u64> = const { Cell::new(0) };
    static DOWNLOADS: Cell<u64> = const { Cell::new(0) };
}

/// Copies made by this thread since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Host → device copies.
    pub uploads: u64,
    /// Device → host copies.
    pub downloads: u64,
}

impl Counts {
    /// Both directions together.
    pub fn total(&self) -> u64 {
        self.uploads + self.downloads
    }
}

/// This thread's copy counts.
pub fn counts() -> Counts {
    Counts {
        uploads: UPLOADS.with(Cell::get),
        downloads: DOWNLOADS.with(Cell::get),
    }
}

fn count(c: &'static std::thread::LocalKey<Cell<u64>>) {
    c.with(|n| n.set(n.get() + 1));
}

/// Uploads row-major f32 values as a tensor of `shape`.
#[allow(clippy::disallowed_methods)]
pub fn upload<const D: usize>(v: Vec<f32>, shape: impl Into<Shape>, device: &Device) -> Tensor<D> {
    count(&UPLOADS);
    Tensor::from_data(TensorData::new(v, shape.into()), device)
}

/// Reads a tensor back as a flat f32 vector, consuming it.
#[allow(clippy::disallowed_methods)]
pub fn download_owned<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    count(&DOWNLOADS);
    t.try_into_vec_as::<f32>()
        .map_err(|e| anyhow::anyhow!("cannot read tensor back: {e:?}"))
}

/// Reads a tensor back as a flat f32 vector.
pub fn download<const D: usize>(t: &Tensor<D>) -> Result<Vec<f32>> {
    download_owned(t.clone())
}

/// Reads any tensor back as a flat f32 vector (the name the code base grew up with).
pub fn to_vec_f32<const D: usize>(t: &Tensor<D>) -> Result<Vec<f32>> {
    download(t)
}

/// A module's parameters as Burn's record (burnpack bytes): one read-back per parameter.
pub fn record_bytes<M: burn::module::Module>(module: M) -> Result<Vec<u8>> {
    let mut params = 0u64;
    module.visit(&mut ParamCounter(&mut params));
    for _ in 0..params {
        count(&DOWNLOADS);
    }
    let bytes = module
        .into_record()
        .into_bytes()
        .map_err(|e| anyhow::anyhow!("cannot serialise the model record: {e:?}"))?;
    Ok(bytes.to_vec())
}

/// Counts a module's float parameters.
struct ParamCounter<'a>(&'a mut u64);

impl burn::module::ModuleVisitor for ParamCounter<'_> {
    fn visit_float<const D: usize>(&mut self, _: &burn::module::Param<Tensor<D>>) {
        *self.0 += 1;
    }
}

/// Reads a `[rows, cols]` tensor back as rows of f64.
pub fn to_rows(t: &Tensor<2>) -> Result<Vec<Vec<f64>>> {
    let [b, d] = t.dims();
    let v = download(t)?;
    Ok((0..b)
        .map(|i| v[i * d..(i + 1) * d].iter().map(|&x| x as f64).collect())
        .collect())
}

/// A `[rows, cols]` tensor from row-major f64 values.
pub fn tensor2(v: &[f64], rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    upload(v.iter().map(|&x| x as f32).collect(), [rows, cols], device)
}

/// A `[rows, cols]` tensor from row-major f32 values.
pub fn tensor2_f32(v: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    upload(v, [rows, cols], device)
}

/// Reads several tensors back in one copy (they are flattened and joined on the device first);
/// returns each one's values, in order.
pub fn download_all<const D: usize>(ts: &[Tensor<D>]) -> Result<Vec<Vec<f32>>> {
    if ts.is_empty() {
        return Ok(Vec::new());
    }
    let lens: Vec<usize> = ts.iter().map(|t| t.shape().num_elements()).collect();
    let flat: Vec<Tensor<2>> = ts
        .iter()
        .zip(&lens)
        .map(|(t, &len)| t.clone().reshape([1, len]))
        .collect();
    let v = download_owned(Tensor::cat(flat, 1))?;
    let mut out = Vec::with_capacity(ts.len());
    let mut at = 0;
    for len in lens {
        out.push(v[at..at + len].to_vec());
        at += len;
    }
    Ok(out)
}

/// Rows gathered on the device, to be read back in one copy: a loop pushes `[r, c]` tensors
/// (frames of a trajectory, partial sums) and reads them all once it is done
/// ([`Pending::into_tensor`], then [`download`]). Every 256 pushes the pieces are concatenated
/// on the device, so a long loop does not keep thousands of small tensors alive.
#[derive(Default)]
pub struct Pending {
    chunks: Vec<Tensor<2>>,
    open: Vec<Tensor<2>>,
}

impl Pending {
    /// Appends rows.
    pub fn push(&mut self, t: Tensor<2>) {
        self.open.push(t);
        if self.open.len() == 256 {
            self.chunks
                .push(Tensor::cat(std::mem::take(&mut self.open), 0));
        }
    }

    /// Appends rows when there are some.
    pub fn extend(&mut self, t: Option<Tensor<2>>) {
        if let Some(t) = t {
            self.push(t);
        }
    }

    /// Everything pushed, in order, as one tensor (`None` when nothing was pushed).
    pub fn into_tensor(mut self) -> Option<Tensor<2>> {
        if !self.open.is_empty() {
            self.chunks.push(Tensor::cat(self.open, 0));
        }
        match self.chunks.len() {
            0 => None,
            1 => self.chunks.pop(),
            _ => Some(Tensor::cat(self.chunks, 0)),
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;

    #[test]
    fn copies_are_counted_on_this_thread_only() -> Result<()> {
        let dev = Device::flex();
        let before = counts();
        let t = tensor2(&[1.0, 2.0, 3.0, 4.0], 2, 2, &dev);
        let doubled = t.mul_scalar(2.0);
        assert_eq!(counts().uploads - before.uploads, 1);
        assert_eq!(to_rows(&doubled)?, vec![vec![2.0, 4.0], vec![6.0, 8.0]]);
        assert_eq!(counts().downloads - before.downloads, 1);
        let other = std::thread::spawn(|| {
            let _ = tensor2_f32(vec![0.0; 4], 2, 2, &Device::flex());
            counts()
        })
        .join()
        .map_err(|_| anyhow::anyhow!("thread panicked"))?;
        assert_eq!(other.uploads, 1);
        assert_eq!(counts().uploads - before.uploads, 1);
        Ok(())
    }
}
