//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use attractor::device::{DeviceChoice, select};
use burn::tensor::Device;

/// The flex CPU device (the deterministic reference backend).
pub fn cpu() -> Device {
    select(DeviceChoice::Flex)
        .expect("flex backend compiled in")
        .device
}

/// A temporary directory for one test: removed when the test passes, kept after a failure
/// (for inspection).
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A fresh temporary directory for one test.
pub fn tmpdir(name: &str) -> TempDir {
    let p = std::env::temp_dir().join(format!("attractor-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).expect("create temp dir");
    TempDir(p)
}

/// Runs the `attractor` binary.
pub fn attractor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_attractor"))
        .args(args)
        .output()
        .expect("run attractor binary")
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Asserts a clean failure: non-zero exit, an `error:` line mentioning every `needles`, no panic.
pub fn assert_clean_error(o: &Output, needles: &[&str]) {
    let e = stderr(o);
    assert!(
        !o.status.success(),
        "expected failure, got success; stderr:\n{e}"
    );
    assert!(
        !e.contains("panicked"),
        "panicked instead of a clean error:\n{e}"
    );
    assert!(e.contains("error:"), "no error line:\n{e}");
    for n in needles {
        assert!(e.contains(n), "error does not mention `{n}`:\n{e}");
    }
}

/// A small, fast DDM training command line (flex, quiet; ou-rot, N = 24, batch 128, a small
/// initial pool): `--sde`, `--neurons` or `--batch` in `extra` replace the defaults, everything
/// else in `extra` is appended.
pub fn ddm_train_args(run: &Path, iters: &str, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<&str> = vec![
        "--device",
        "flex",
        "--quiet",
        "ddm",
        "train",
        "--iters",
        iters,
        "--run-dir",
        run.to_str().expect("UTF-8 temp path"),
    ];
    for (flag, default) in [("--sde", "ou-rot"), ("--neurons", "24"), ("--batch", "128")] {
        if !extra.contains(&flag) {
            a.extend_from_slice(&[flag, default]);
        }
    }
    a.extend_from_slice(&[
        "--set",
        "pool_size=2000",
        "--set",
        "pool_chains=100",
        "--set",
        "burn_in=2.0",
        "--set",
        "ridge_points=1000",
    ]);
    a.extend_from_slice(extra);
    a.into_iter().map(String::from).collect()
}

/// `p` random patterns of length `n`, each z-scored (mean 0, SD 1), row-major.
pub fn zscored_patterns(rng: &mut attractor::rng::Rng, p: usize, n: usize) -> Vec<f64> {
    let mut pats = Vec::with_capacity(p * n);
    for _ in 0..p {
        let v: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let m = v.iter().sum::<f64>() / n as f64;
        let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n as f64).sqrt();
        pats.extend(v.iter().map(|x| (x - m) / sd));
    }
    pats
}
