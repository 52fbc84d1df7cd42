//! The only module that knows about backends: maps `--device` to a Burn [`Device`].
//!
//! `auto` picks CUDA when the build has it and the NVIDIA driver reports a device, else a
//! hardware wgpu adapter (never a software Vulkan adapter such as llvmpipe), else the fastest
//! CPU backend compiled in (`flex`, then `ndarray`); the command line always names the choice.
//! `Device::default()` is never used: it silently picks any GPU, software ones included.

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, bail};
use burn::tensor::Device;

/// A backend choice as given on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// Hardware GPU if present, else the best CPU backend.
    Auto,
    /// Burn's pure-Rust CPU backend.
    Flex,
    /// The (deprecated) burn-ndarray CPU backend.
    Ndarray,
    /// GPU through wgpu (Vulkan/Metal/DX12); a software adapter is accepted when asked for.
    Wgpu,
    /// NVIDIA GPU through CUDA.
    Cuda,
}

impl FromStr for DeviceChoice {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "auto" => Self::Auto,
            "flex" | "cpu" => Self::Flex,
            "ndarray" => Self::Ndarray,
            "wgpu" | "gpu" => Self::Wgpu,
            "cuda" => Self::Cuda,
            other => bail!("unknown device `{other}`: expected auto, flex, ndarray, wgpu or cuda"),
        })
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::Auto => "auto",
            Self::Flex => "flex",
            Self::Ndarray => "ndarray",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
        };
        f.write_str(s)
    }
}

/// Backends compiled into this build.
pub fn compiled() -> Vec<DeviceChoice> {
    let mut v = Vec::new();
    if cfg!(feature = "flex") {
        v.push(DeviceChoice::Flex);
    }
    if cfg!(feature = "ndarray") {
        v.push(DeviceChoice::Ndarray);
    }
    if cfg!(feature = "wgpu") {
        v.push(DeviceChoice::Wgpu);
    }
    if cfg!(feature = "cuda") {
        v.push(DeviceChoice::Cuda);
    }
    v
}

/// What `attractor devices` prints: the compiled backends, CUDA devices, wgpu adapters and what
/// `--device auto` picks, one line each.
pub fn inventory() -> Result<String> {
    use std::fmt::Write;
    let mut out = String::new();
    let names: Vec<String> = compiled().iter().map(|d| d.to_string()).collect();
    let _ = writeln!(out, "compiled backends: {}", names.join(", "));
    match cuda_devices() {
        Ok(names) => {
            for (i, n) in names.iter().enumerate() {
                let _ = writeln!(out, "cuda device {i}: {n}");
            }
            if !cfg!(feature = "cuda") {
                out.push_str("cuda: not usable by this build (rebuild with `--features cuda`)\n");
            }
        }
        Err(why) => {
            let _ = writeln!(out, "cuda: none ({why})");
        }
    }
    let adapters = wgpu_adapters();
    for a in &adapters {
        let _ = writeln!(out, "wgpu adapter: {a}");
    }
    if cfg!(feature = "wgpu") && adapters.is_empty() {
        out.push_str(
            "wgpu: no adapter (no Vulkan/Metal driver; on Linux install a Vulkan ICD, e.g. the \
             NVIDIA driver or Debian's mesa-vulkan-drivers libvulkan1)\n",
        );
    }
    let _ = writeln!(
        out,
        "--device auto selects: {}",
        select(DeviceChoice::Auto)?.description
    );
    Ok(out)
}

/// A resolved device with a human-readable description.
#[derive(Clone, Debug)]
pub struct Selected {
    /// The concrete backend.
    pub choice: DeviceChoice,
    /// The Burn device.
    pub device: Device,
    /// What was picked, e.g. `wgpu: NVIDIA H100 (DiscreteGpu, Vulkan)`.
    pub description: String,
}

impl Selected {
    /// Whether this is a CPU backend (bit-exact determinism is promised there).
    pub fn is_cpu(&self) -> bool {
        matches!(self.choice, DeviceChoice::Flex | DeviceChoice::Ndarray)
    }
}

/// Keeps libwayland from printing `error: XDG_RUNTIME_DIR is invalid or not set in the
/// environment.` on a headless machine with a Vulkan driver.
///
/// Vulkan drivers and layers may ask a Wayland compositor which GPU is the default one whenever
/// a program creates a Vulkan instance with the Wayland surface extension (wgpu does, even just
/// to list adapters; Mesa's `VK_LAYER_MESA_device_select` is one such asker). Without a desktop
/// session (`XDG_RUNTIME_DIR` unset or not an absolute path: ssh, containers, batch jobs)
/// libwayland prints that error line, several times per command, and everything then works.
/// There is no compositor to find on such a machine, so the process is given a private, empty
/// runtime folder (`<tmp>/attractor-runtime-<uid>`, mode 0700): the question then finds no
/// compositor quietly. A desktop session's own folder is left as it is.
///
/// Changes the process environment: call it at the start of `main`, before any thread exists
/// (the command line does).
pub fn quiet_headless_vulkan() {
    #[cfg(all(unix, any(feature = "wgpu", feature = "cuda")))]
    if needs_private_runtime_dir(std::env::var_os("XDG_RUNTIME_DIR").as_deref()) {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        // SAFETY: `getuid` has no preconditions.
        let uid = unsafe { libc::getuid() };
        let dir = std::env::temp_dir().join(format!("attractor-runtime-{uid}"));
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        // Only a folder of our own (not one planted by another user of a shared /tmp).
        if std::fs::metadata(&dir).is_ok_and(|m| m.is_dir() && m.uid() == uid) {
            // SAFETY: called at the start of `main`, before any other thread exists (see the
            // function's documentation), so nothing reads the environment concurrently.
            unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
        }
    }
}

/// Whether `XDG_RUNTIME_DIR` (its value, if set) is one libwayland refuses: unset, empty or
/// relative.
pub fn needs_private_runtime_dir(xdg: Option<&std::ffi::OsStr>) -> bool {
    !xdg.is_some_and(|d| std::path::Path::new(d).is_absolute())
}

/// Description of the first hardware GPU adapter wgpu sees, if any.
#[cfg(feature = "wgpu")]
pub fn hardware_gpu() -> Option<(burn::tensor::DeviceKind, String)> {
    use burn::tensor::DeviceKind;
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::PRIMARY,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY));
    let infos: Vec<_> = adapters.iter().map(|a| a.get_info()).collect();
    for ty in [
        wgpu::DeviceType::DiscreteGpu,
        wgpu::DeviceType::IntegratedGpu,
    ] {
        if let Some(info) = infos.iter().find(|i| i.device_type == ty) {
            let kind = match ty {
                wgpu::DeviceType::DiscreteGpu => DeviceKind::DiscreteGpu(0),
                _ => DeviceKind::IntegratedGpu(0),
            };
            return Some((
                kind,
                format!("{} ({:?}, {:?})", info.name, info.device_type, info.backend),
            ));
        }
    }
    None
}

/// The NVIDIA devices the CUDA driver reports, by name, or why there are none (no driver
/// library, `cuInit` failed, no device).
///
/// Asked of the driver library itself (`libcuda.so.1`, loaded at run time with `dlopen`) so
/// that `--device auto` and `attractor devices` can tell "no NVIDIA driver" from "driver but no
/// device" — and say so even in a build without the `cuda` feature — without initialising a
/// Burn device, which panics when the driver is missing. Four driver calls; no crate offers
/// this probe without linking the CUDA toolkit.
#[cfg(unix)]
pub fn cuda_devices() -> std::result::Result<Vec<String>, String> {
    use std::ffi::{CStr, c_char, c_int, c_uint};
    type Init = unsafe extern "C" fn(c_uint) -> c_int;
    type Count = unsafe extern "C" fn(*mut c_int) -> c_int;
    type Name = unsafe extern "C" fn(*mut c_char, c_int, c_int) -> c_int;
    // SAFETY: dlopen/dlsym with NUL-terminated names; the symbols are the CUDA driver API's
    // documented C functions with these signatures; the library handle is never closed (the
    // driver stays loaded for the process, as Burn's CUDA runtime would load it anyway).
    unsafe {
        let lib = libc::dlopen(c"libcuda.so.1".as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
        if lib.is_null() {
            return Err("no NVIDIA driver (libcuda.so.1 not found)".into());
        }
        let sym = |name: &CStr| libc::dlsym(lib, name.as_ptr());
        let (init, count, name) = (
            sym(c"cuInit"),
            sym(c"cuDeviceGetCount"),
            sym(c"cuDeviceGetName"),
        );
        if init.is_null() || count.is_null() || name.is_null() {
            return Err("libcuda.so.1 lacks the driver API (cuInit)".into());
        }
        let init: Init = std::mem::transmute(init);
        let count: Count = std::mem::transmute(count);
        let name: Name = std::mem::transmute(name);
        let rc = init(0);
        if rc != 0 {
            return Err(format!(
                "the NVIDIA driver did not initialise (cuInit error {rc})"
            ));
        }
        let mut n: c_int = 0;
        if count(&mut n) != 0 || n <= 0 {
            return Err("the NVIDIA driver sees no CUDA device".into());
        }
        Ok((0..n)
            .map(|i| {
                let mut buf = [0 as c_char; 256];
                if name(buf.as_mut_ptr(), buf.len() as c_int, i) == 0 {
                    CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
                } else {
                    format!("CUDA device {i}")
                }
            })
            .collect())
    }
}

/// Not probed off Unix.
#[cfg(not(unix))]
pub fn cuda_devices() -> std::result::Result<Vec<String>, String> {
    Err("CUDA is only probed on Linux".into())
}

/// Description of every adapter wgpu sees (for `attractor devices`).
#[cfg(feature = "wgpu")]
pub fn wgpu_adapters() -> Vec<String> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::PRIMARY,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY))
        .iter()
        .map(|a| {
            let i = a.get_info();
            format!("{} ({:?}, {:?})", i.name, i.device_type, i.backend)
        })
        .collect()
}

/// Adapters wgpu sees (empty without the `wgpu` feature).
#[cfg(not(feature = "wgpu"))]
pub fn wgpu_adapters() -> Vec<String> {
    Vec::new()
}

fn not_compiled(c: DeviceChoice) -> anyhow::Error {
    anyhow::anyhow!(
        "device `{c}` is not compiled into this build (compiled: {}); rebuild with `--features {c}`",
        compiled()
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Resolves a `--device` choice to a Burn device.
pub fn select(choice: DeviceChoice) -> Result<Selected> {
    match choice {
        DeviceChoice::Auto => {
            #[cfg(feature = "cuda")]
            if let Ok(names) = cuda_devices() {
                return Ok(Selected {
                    choice: DeviceChoice::Cuda,
                    device: Device::cuda(0),
                    description: format!("cuda:0 ({})", names[0]),
                });
            }
            #[cfg(feature = "wgpu")]
            if let Some((kind, desc)) = hardware_gpu() {
                return Ok(Selected {
                    choice: DeviceChoice::Wgpu,
                    device: Device::wgpu(kind),
                    description: format!("wgpu: {desc}"),
                });
            }
            if cfg!(feature = "flex") {
                select(DeviceChoice::Flex)
            } else if cfg!(feature = "ndarray") {
                select(DeviceChoice::Ndarray)
            } else {
                bail!(
                    "no CPU backend compiled in and no hardware GPU found; pick --device explicitly"
                )
            }
        }
        DeviceChoice::Flex => {
            #[cfg(feature = "flex")]
            return Ok(Selected {
                choice,
                device: Device::flex(),
                description: "flex (pure-Rust CPU)".into(),
            });
            #[allow(unreachable_code)]
            Err(not_compiled(choice))
        }
        DeviceChoice::Ndarray => {
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            return Ok(Selected {
                choice,
                device: Device::ndarray(),
                description: "ndarray (CPU)".into(),
            });
            #[allow(unreachable_code)]
            Err(not_compiled(choice))
        }
        DeviceChoice::Wgpu => {
            #[cfg(feature = "wgpu")]
            {
                use burn::tensor::DeviceKind;
                if let Some((kind, desc)) = hardware_gpu() {
                    return Ok(Selected {
                        choice,
                        device: Device::wgpu(kind),
                        description: format!("wgpu: {desc}"),
                    });
                }
                let adapters = wgpu_adapters();
                if adapters.is_empty() {
                    bail!(
                        "--device wgpu: no wgpu adapter found (install a Vulkan driver, e.g. Debian's \
                         mesa-vulkan-drivers libvulkan1 for a software one)"
                    );
                }
                return Ok(Selected {
                    choice,
                    device: Device::wgpu(DeviceKind::Cpu),
                    description: format!("wgpu: software adapter ({})", adapters.join("; ")),
                });
            }
            #[allow(unreachable_code)]
            Err(not_compiled(choice))
        }
        DeviceChoice::Cuda => {
            #[cfg(feature = "cuda")]
            {
                let names = cuda_devices().map_err(|why| {
                    anyhow::anyhow!(
                        "--device cuda: {why}; `attractor devices` lists what is usable"
                    )
                })?;
                return Ok(Selected {
                    choice,
                    device: Device::cuda(0),
                    description: format!("cuda:0 ({})", names[0]),
                });
            }
            #[allow(unreachable_code)]
            Err(not_compiled(choice))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_missing_or_relative_runtime_dir_is_replaced() {
        use std::ffi::OsStr;
        assert!(needs_private_runtime_dir(None));
        assert!(needs_private_runtime_dir(Some(OsStr::new(""))));
        assert!(needs_private_runtime_dir(Some(OsStr::new("run/user/0"))));
        assert!(!needs_private_runtime_dir(Some(OsStr::new(
            "/run/user/1000"
        ))));
    }

    #[test]
    fn parses_names() {
        assert_eq!("FLEX".parse::<DeviceChoice>().unwrap(), DeviceChoice::Flex);
        assert!("tpu".parse::<DeviceChoice>().is_err());
        for c in compiled() {
            assert_eq!(c.to_string().parse::<DeviceChoice>().unwrap(), c);
        }
    }
}

/// CPU threads for the project's own host-side work (the FEP host engine, noise fills, host
/// linear algebra): `ATTRACTOR_THREADS` if set to a positive number, else
/// `std::thread::available_parallelism` — read once (on Linux the latter reads cgroup files
/// at every call). Numbers never depend on it.
pub fn cpu_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::env::var("ATTRACTOR_THREADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    })
}

/// Elements per chunk when `len` elements (whole rows of `n`) are shared out over `threads`
/// cores: everything in one chunk when the work is small.
pub fn chunk_len(len: usize, n: usize, threads: usize) -> usize {
    let n = n.max(1);
    let rows = len.div_ceil(n).max(1);
    let parts = if len < 64 * 1024 {
        1
    } else {
        threads.clamp(1, rows)
    };
    rows.div_ceil(parts) * n
}

/// Runs `f` on each item in parallel (rayon's pool).
pub fn par_each<T: Send, F: Fn(T) + Sync + Send>(items: Vec<T>, f: F) {
    use rayon::prelude::*;
    items.into_par_iter().for_each(f);
}

/// Whether `device` is the flex backend (cheap host readback and upload).
pub fn is_flex(device: &Device) -> bool {
    #[cfg(feature = "flex")]
    if *device == Device::flex() {
        return true;
    }
    let _ = device;
    false
}

/// Standard normals of `shape` drawn on a non-host device, from one seed taken from `rng`.
///
/// Why this form: Burn 0.22.1's cubecl random numbers come from one process-wide generator,
/// reseeded by `Device::seed` (which flushes the fusion stream) and not safe to share between
/// threads. So the generator is reseeded from the run's ChaCha stream under a process-wide
/// lock, the draw is queued, and the device is synchronised before the lock is released: the
/// draw has run with that seed before anyone reseeds. The same seed on the same device gives
/// the same numbers, and resume is exact because the ChaCha stream's state is in every
/// checkpoint. One call draws a whole block (all the noise of an update's k Langevin steps), so
/// the synchronisation costs one stall per block, not per step, and no noise crosses the bus.
/// A counter-based generator written as a CubeCL kernel would avoid the stall; this uses what
/// Burn has. The CPU backends never come here: they keep their host streams and fused kernels.
pub fn device_normal<const D: usize>(
    seed: u64,
    shape: [usize; D],
    device: &Device,
) -> burn::tensor::Tensor<D> {
    device_random(
        seed,
        shape,
        burn::tensor::Distribution::Normal(0.0, 1.0),
        device,
    )
}

/// Most values one device draw holds (64 MB of f32).
pub const MAX_DRAW_FLOATS: usize = 1 << 24;

/// Steps whose random numbers one device draw holds: at most 256 and at most
/// [`MAX_DRAW_FLOATS`] values (`per_step` values a step), never past the last of `steps`.
pub fn draw_block(per_step: usize, steps: usize) -> usize {
    (MAX_DRAW_FLOATS / per_step.max(1))
        .clamp(1, 256)
        .min(steps.max(1))
}

/// Values of `distribution` drawn on a non-host device from `seed` (the next value of a run's
/// random stream).
pub fn device_random<const D: usize>(
    seed: u64,
    shape: [usize; D],
    distribution: burn::tensor::Distribution,
    device: &Device,
) -> burn::tensor::Tensor<D> {
    seeded(seed, device, || {
        burn::tensor::Tensor::<D>::random(shape, distribution, device)
    })
}

/// Runs `draw` (any number of `Tensor::random` calls on `device`) with the device generator
/// seeded with `seed`, under the process-wide lock, and synchronises before releasing it (see
/// [`device_normal`] for why). Several draws in one call cost one seed and one stall.
pub fn seeded<T>(seed: u64, device: &Device, draw: impl FnOnce() -> T) -> T {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    device.seed(seed);
    let out = draw();
    // A failed sync surfaces again, with its cause, on the next read of a result.
    let _ = device.sync();
    out
}

/// Keeps the GPU backends' autotune results (cubecl's persistent cache, on by default in
/// Burn 0.22.1) in `dir` from now on: the training driver points it at `<run>/autotune/`, so a
/// resumed GPU run finds the kernels the run chose before instead of tuning again (and maybe
/// choosing others). Other commands use cubecl's default place (`target/environment/` inside a
/// Cargo project, else the user cache folder, `~/.cache/cubecl` on Linux). Nothing happens on
/// the CPU backends, which do not tune.
pub fn persist_autotune(dir: &std::path::Path) {
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    cubecl_environment::environment::set_root(dir);
    #[cfg(not(any(feature = "wgpu", feature = "cuda")))]
    let _ = dir;
}

/// Whether `device` is one of the CPU backends (their tensors live in host memory).
pub fn is_host(device: &Device) -> bool {
    #[cfg(feature = "flex")]
    if *device == Device::flex() {
        return true;
    }
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    if *device == Device::ndarray() {
        return true;
    }
    let _ = device;
    false
}

/// Elementwise functions with a fast path for the CPU backends, shared by every model.
///
/// Burn 0.22's CPU `tanh` is a scalar libm call (~14–20 ns per value: 7 ms for 0.5 M values on
/// this 2-core machine) and its `exp` is single-threaded (0.67 ms). On flex, `tanh` of a tensor
/// outside any autodiff graph is evaluated here: read back (a copy), a vectorisable rational
/// approximation on all cores, upload (0.47 ms for 0.5 M values, against 7.1 ms). On ndarray
/// (whose readback is slow) and for tensors that carry gradients, `1 − 2/(e^{2x} + 1)` is built
/// from Burn ops (differentiable, exact ±1 limits). GPU backends use Burn's own kernels.
pub mod fast {
    use burn::tensor::Tensor;
    use rayon::prelude::*;

    /// Rational approximation of tanh on [-7.9, 7.9] (clamped outside, where tanh is ±1 in
    /// f32); max abs error below 5e-7 (tested).
    #[inline(always)]
    pub fn tanh_f32(x: f32) -> f32 {
        const CLAMP: f32 = 7.905_311;
        let x = x.clamp(-CLAMP, CLAMP);
        let x2 = x * x;
        let p = x2 * -2.760_768_5e-16 + 2.000_188e-13;
        let p = x2 * p + -8.604_672e-11;
        let p = x2 * p + 5.122_297e-8;
        let p = x2 * p + 1.485_722_4e-5;
        let p = x2 * p + 6.372_619e-4;
        let p = x2 * p + 4.893_524_6e-3;
        let p = x * p;
        let q = x2 * 1.198_258_4e-6 + 1.185_347_1e-4;
        let q = x2 * q + 2.268_434_6e-3;
        let q = x2 * q + 4.893_525e-3;
        p / q
    }

    /// e^x in f32 (Cephes' range reduction and polynomial, about 1 ulp), branch-free; x is
    /// clamped to [−87, 88] (e^−87 ≈ 1.6e-38: callers only add it to numbers ≥ 1e-7).
    #[inline(always)]
    pub fn exp_f32(x: f32) -> f32 {
        const SHIFT: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer
        let x = x.clamp(-87.0, 88.0);
        let kf = x * std::f32::consts::LOG2_E + SHIFT;
        let k = kf - SHIFT;
        let r = x - k * 0.693_359_4 - k * -2.121_944_4e-4;
        let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2)
            * r
            + 1.666_666_5e-1)
            * r
            + 5e-1;
        let y = p * (r * r) + r + 1.0;
        // kf's low mantissa bits hold k: 2^k from integer operations alone (they vectorise).
        f32::from_bits(kf.to_bits().wrapping_sub(0x4B40_0000).wrapping_add(127) << 23) * y
    }

    /// ln x in f32 for positive normal x (Cephes' polynomial, about 1 ulp), branch-free.
    #[inline(always)]
    pub fn ln_f32(x: f32) -> f32 {
        let bits = x.to_bits();
        let e = ((bits >> 23) & 0xff) as i32 - 126;
        let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000); // [0.5, 1)
        let small = m < std::f32::consts::FRAC_1_SQRT_2;
        let e = (if small { e - 1 } else { e }) as f32;
        let f = if small { m + m - 1.0 } else { m - 1.0 };
        let z = f * f;
        let p = (((((((7.037_683_6e-2 * f - 1.151_461e-1) * f + 1.167_699_9e-1) * f
            - 1.242_014_1e-1)
            * f
            + 1.424_932_3e-1)
            * f
            - 1.666_805_8e-1)
            * f
            + 2.000_071_5e-1)
            * f
            - 2.499_999_4e-1)
            * f
            + 3.333_333e-1;
        let y = p * f * z + e * -2.121_944_4e-4 - 0.5 * z;
        f + y + e * 0.693_359_4
    }

    fn map_parallel<F: Fn(f32) -> f32 + Copy + Send + Sync>(v: &mut [f32], f: F) {
        let threads = crate::device::cpu_threads();
        if v.len() < 64 * 1024 || threads == 1 {
            v.iter_mut().for_each(|x| *x = f(*x));
            return;
        }
        let chunk = v.len().div_ceil(threads);
        v.par_chunks_mut(chunk)
            .for_each(|c| c.iter_mut().for_each(|x| *x = f(*x)));
    }

    /// `tanh(x)` elementwise.
    pub fn tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
        let dev = x.device();
        if !super::is_host(&dev) {
            return x.tanh();
        }
        if x.is_tracked() || !super::is_flex(&dev) {
            return x
                .mul_scalar(2.0)
                .exp()
                .add_scalar(1.0)
                .recip()
                .mul_scalar(-2.0)
                .add_scalar(1.0);
        }
        let shape = x.shape();
        match crate::transfer::download_owned(x.clone()) {
            Ok(mut v) => {
                map_parallel(&mut v, tanh_f32);
                crate::transfer::upload(v, shape, &dev)
            }
            Err(_) => x.tanh(),
        }
    }

    /// `(tanh x, 1 − tanh² x)` in one pass (the NLM's rate and its derivative).
    pub fn tanh_and_derivative<const D: usize>(x: Tensor<D>) -> (Tensor<D>, Tensor<D>) {
        let dev = x.device();
        if super::is_flex(&dev) && !x.is_tracked() {
            let shape = x.shape();
            if let Ok(mut v) = crate::transfer::download_owned(x.clone()) {
                let mut d = vec![0f32; v.len()];
                let threads = crate::device::cpu_threads();
                let chunk = v.len().div_ceil(threads).max(16 * 1024);
                v.par_chunks_mut(chunk)
                    .zip(d.par_chunks_mut(chunk))
                    .for_each(|(a, b)| {
                        for (x, dx) in a.iter_mut().zip(b.iter_mut()) {
                            let t = tanh_f32(*x);
                            *x = t;
                            *dx = 1.0 - t * t;
                        }
                    });
                return (
                    crate::transfer::upload(v, shape.clone(), &dev),
                    crate::transfer::upload(d, shape, &dev),
                );
            }
        }
        let t = tanh(x);
        let d = t.clone().mul(t.clone()).neg().add_scalar(1.0);
        (t, d)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn rational_tanh_is_accurate() {
            let mut worst = 0f64;
            let mut x = -12.0f64;
            while x < 12.0 {
                worst = worst.max((super::tanh_f32(x as f32) as f64 - x.tanh()).abs());
                x += 1e-3;
            }
            assert!(worst < 5e-7, "max abs error {worst}");
            assert_eq!(super::tanh_f32(0.0), 0.0);
            assert_eq!(super::tanh_f32(f32::INFINITY), super::tanh_f32(7.905_311));
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod fast_tests {

    #[test]
    fn fast_tanh_matches_tanh() {
        let dev = burn::tensor::Device::flex();
        let xs: Vec<f32> = (0..4001)
            .map(|i| (i as f32 - 2000.0) * 0.01)
            .chain([60.0, -60.0, 1e-6])
            .collect();
        let n = xs.len();
        let t = crate::transfer::upload::<1>(xs.clone(), [n], &dev);
        let got = crate::transfer::download_owned(super::fast::tanh(t.clone())).unwrap();
        let tracked =
            crate::transfer::download_owned(super::fast::tanh(t.autodiff().require_grad()).inner())
                .unwrap();
        for (x, g) in xs.iter().zip(&tracked) {
            assert!(
                (*g as f64 - (*x as f64).tanh()).abs() < 2e-7,
                "tracked tanh({x}) = {g}"
            );
        }
        for (x, g) in xs.iter().zip(&got) {
            assert!(
                (*g as f64 - (*x as f64).tanh()).abs() < 5e-7,
                "tanh({x}) = {g}"
            );
        }
    }
}
