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

/// One summary value of a TensorBoard event file, as [`tb_events`] reads it.
#[derive(Clone, Debug, PartialEq)]
pub enum TbValue {
    /// `simple_value`.
    Scalar(f32),
    /// An image: width, height and the PNG file's first bytes.
    Image(u64, u64, Vec<u8>),
    /// A text summary's string.
    Text(String),
}

/// Every `(step, tag, value)` of the event files in `dir` (name order), read by a reader written
/// from the format description (framing, checksums, protobuf wire format) independently of the
/// library's; panics on a damaged record. The header events are checked and skipped.
pub fn tb_events(dir: &Path) -> Vec<(u64, String, TbValue)> {
    // The mask as the format spells it.
    #[allow(clippy::manual_rotate)]
    fn crc(data: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    (c >> 1) ^ 0x82F6_3B78
                } else {
                    c >> 1
                };
            }
        }
        let c = !c;
        ((c >> 15) | (c << 17)).wrapping_add(0xa282_ead8)
    }
    fn varint(b: &[u8], at: &mut usize) -> u64 {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let x = b[*at];
            *at += 1;
            v |= u64::from(x & 0x7f) << shift;
            if x & 0x80 == 0 {
                return v;
            }
            shift += 7;
        }
    }
    /// (field, wire type, varint or fixed value, bytes)
    fn fields(b: &[u8]) -> Vec<(u64, u64, u64, Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < b.len() {
            let k = varint(b, &mut at);
            let (f, w) = (k >> 3, k & 7);
            match w {
                0 => out.push((f, w, varint(b, &mut at), vec![])),
                1 => {
                    out.push((
                        f,
                        w,
                        u64::from_le_bytes(b[at..at + 8].try_into().unwrap()),
                        vec![],
                    ));
                    at += 8;
                }
                5 => {
                    let v = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
                    out.push((f, w, u64::from(v), vec![]));
                    at += 4;
                }
                2 => {
                    let n = varint(b, &mut at) as usize;
                    out.push((f, w, 0, b[at..at + n].to_vec()));
                    at += n;
                }
                _ => panic!("wire type {w}"),
            }
        }
        out
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("events.out.tfevents.")
        })
        .collect();
    files.sort();
    let mut out = Vec::new();
    for p in files {
        let bytes = std::fs::read(&p).unwrap();
        let mut at = 0;
        let mut first = true;
        while at < bytes.len() {
            let len = &bytes[at..at + 8];
            let n = u64::from_le_bytes(len.try_into().unwrap()) as usize;
            let c = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
            assert_eq!(c, crc(len), "{}: length checksum at {at}", p.display());
            let data = &bytes[at + 12..at + 12 + n];
            let c = u32::from_le_bytes(bytes[at + 12 + n..at + 16 + n].try_into().unwrap());
            assert_eq!(c, crc(data), "{}: data checksum at {at}", p.display());
            at += 16 + n;
            let ev = fields(data);
            let step = ev.iter().find(|f| f.0 == 2).map_or(0, |f| f.2);
            if first {
                let v = ev.iter().find(|f| f.0 == 3).expect("header event");
                assert_eq!(v.3, b"brain.Event:2");
                first = false;
                continue;
            }
            for (_, _, _, summary) in ev.iter().filter(|f| f.0 == 5) {
                for (_, _, _, value) in fields(summary).iter().filter(|f| f.0 == 1) {
                    let vf = fields(value);
                    let tag =
                        String::from_utf8(vf.iter().find(|f| f.0 == 1).unwrap().3.clone()).unwrap();
                    let v = if let Some(x) = vf.iter().find(|f| f.0 == 2) {
                        TbValue::Scalar(f32::from_bits(x.2 as u32))
                    } else if let Some(img) = vf.iter().find(|f| f.0 == 4) {
                        let g = fields(&img.3);
                        let get = |k| g.iter().find(|f| f.0 == k).unwrap();
                        let png = &get(4).3;
                        TbValue::Image(get(2).2, get(1).2, png[..8.min(png.len())].to_vec())
                    } else {
                        let t = vf.iter().find(|f| f.0 == 8).expect("a tensor");
                        let s = fields(&t.3);
                        assert_eq!(s.iter().find(|f| f.0 == 1).unwrap().2, 7, "DT_STRING");
                        let text = &s.iter().find(|f| f.0 == 8).unwrap().3;
                        TbValue::Text(String::from_utf8(text.clone()).unwrap())
                    };
                    out.push((step, tag, v));
                }
            }
        }
    }
    out
}

/// The `(step, name, value)` of every numeric quantity of `metrics.jsonl` in `run` (not `step`).
pub fn metrics_scalars(run: &Path) -> Vec<(u64, String, f64)> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let mut out = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let step = v["step"].as_u64().unwrap();
        for (k, x) in v.as_object().unwrap() {
            if let (true, Some(x)) = (k != "step", x.as_f64()) {
                out.push((step, k.clone(), x));
            }
        }
    }
    out
}

/// Asserts that the scalars of `<run>/tb` are those of `metrics.jsonl`, step for step, each
/// once, in the same order, values to f32 precision.
pub fn assert_tb_matches_metrics(run: &Path) {
    let tb: Vec<(u64, String, f32)> = tb_events(&run.join("tb"))
        .into_iter()
        .filter_map(|(s, t, v)| match v {
            TbValue::Scalar(x) => Some((s, t, x)),
            _ => None,
        })
        .collect();
    let m = metrics_scalars(run);
    assert_eq!(
        tb.iter()
            .map(|(s, t, _)| (*s, t.clone()))
            .collect::<Vec<_>>(),
        m.iter()
            .map(|(s, t, _)| (*s, t.clone()))
            .collect::<Vec<_>>(),
        "{}: TensorBoard scalars and metrics.jsonl differ in steps or names",
        run.display()
    );
    for ((s, t, a), (_, _, b)) in tb.iter().zip(&m) {
        assert_eq!(*a, *b as f32, "{}: {t} at step {s}", run.display());
    }
}
