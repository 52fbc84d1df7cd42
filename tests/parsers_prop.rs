//! Short property-test version of the fuzz targets in `fuzz/` (see `fuzz/README.md`).
//!
//! For every parser a user can feed, the committed seed corpus (`fuzz/seeds/<target>/`) is
//! mutated a few thousand times with a seeded RNG (bit flips, byte insertions and deletions,
//! truncation, splices of two seeds, interesting integers written over header fields, repeated
//! chunks and syntax tokens) and fed to the same entry points as the fuzz target, with the same
//! selector-byte conventions. Every call must return, `Ok` or `Err`: a panic fails the test
//! and prints the input in hex. The seeds themselves must parse.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use attractor::checkpoint::Checkpoint;
use attractor::config;
use attractor::data::{idx, images, patterns};
use attractor::npy;
use attractor::sde::expr::{self, Expr, ExprScope};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// `(name, contents)` of seed files of one target.
macro_rules! seeds {
    ($target:literal: $($name:literal),+ $(,)?) => {
        &[$(($name, include_bytes!(concat!("../fuzz/seeds/", $target, "/", $name)).as_slice())),+]
    };
}

/// Values that tend to break size arithmetic, written over header fields.
const INTERESTING: [u64; 12] = [
    0,
    1,
    2,
    0x7F,
    0xFF,
    0x7FFF,
    0xFFFF,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFFF,
    0x7FFF_FFFF_FFFF_FFFF,
    u64::MAX,
];

/// Tokens of the text formats (npy headers, CSV, TOML, expressions, JSON), space-separated.
const TOKENS: &str = "( ) [ ] { } , . = \" ' \n - ^ e308 1e999 nan inf NaN 0x z9 u3 max( \
                      sqrt(-1) /0 True 18446744073709551616 \u{1f4a5}";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One to four random mutations of a random seed (sometimes spliced with another).
fn mutate(rng: &mut ChaCha8Rng, seeds: &[&[u8]]) -> Vec<u8> {
    let mut v = seeds[rng.random_range(0..seeds.len())].to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let len = v.len();
        match rng.random_range(0..10) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                v[i] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.random_range(0..len);
                v[i] = rng.random();
            }
            2 => {
                let i = rng.random_range(0..=len);
                let n = rng.random_range(1..=4);
                for _ in 0..n {
                    v.insert(i, rng.random());
                }
            }
            3 if len > 0 => {
                let i = rng.random_range(0..len);
                let j = rng.random_range(i..=len.min(i + 16));
                v.drain(i..j);
            }
            4 => v.truncate(rng.random_range(0..=len)),
            5 => {
                let other = seeds[rng.random_range(0..seeds.len())];
                let cut = rng.random_range(0..=len);
                let from = rng.random_range(0..=other.len());
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            6 if len >= 4 => {
                let value = INTERESTING[rng.random_range(0..INTERESTING.len())];
                let wide = len >= 8 && rng.random_bool(0.3);
                let bytes: Vec<u8> = match (wide, rng.random_bool(0.5)) {
                    (true, true) => value.to_le_bytes().to_vec(),
                    (true, false) => value.to_be_bytes().to_vec(),
                    (false, true) => (value as u32).to_le_bytes().to_vec(),
                    (false, false) => (value as u32).to_be_bytes().to_vec(),
                };
                let i = rng.random_range(0..=len - bytes.len());
                v[i..i + bytes.len()].copy_from_slice(&bytes);
            }
            7 if len > 0 => {
                let i = rng.random_range(0..len);
                let j = rng.random_range(i + 1..=len.min(i + 8));
                let chunk = v[i..j].to_vec();
                for _ in 0..rng.random_range(1..64) {
                    v.splice(i..i, chunk.iter().copied());
                }
            }
            _ => {
                let tokens: Vec<&str> = TOKENS.split(' ').filter(|t| !t.is_empty()).collect();
                let t = tokens[rng.random_range(0..tokens.len())];
                let i = rng.random_range(0..=len);
                v.splice(i..i, t.bytes());
            }
        }
    }
    v
}

/// Feeds the seeds, then `cases` mutants, to `run` (which says whether the input was
/// accepted); fails on the first panic, printing the input. Every seed must be accepted except
/// those named in `rejected` (seeds of error paths).
fn check(
    name: &str,
    seeds: &[(&str, &[u8])],
    rejected: &[&str],
    cases: usize,
    run: impl Fn(&[u8]) -> bool,
) {
    for (seed, bytes) in seeds {
        match catch_unwind(AssertUnwindSafe(|| run(bytes))) {
            Ok(accepted) => assert_eq!(
                accepted,
                !rejected.contains(seed),
                "{name}: seed {seed} accepted = {accepted}"
            ),
            Err(_) => panic!("{name}: seed {seed} panicked"),
        }
    }
    let bytes: Vec<&[u8]> = seeds.iter().map(|s| s.1).collect();
    let stream = name
        .bytes()
        .fold(0x5eed_u64, |h, b| h.rotate_left(8) ^ u64::from(b));
    let mut rng = ChaCha8Rng::seed_from_u64(stream);
    let mut accepted = 0;
    for case in 0..cases {
        let input = mutate(&mut rng, &bytes);
        match catch_unwind(AssertUnwindSafe(|| run(&input))) {
            Ok(ok) => accepted += usize::from(ok),
            Err(_) => panic!(
                "{name}: case {case} panicked on input ({} bytes) {}",
                input.len(),
                hex(&input)
            ),
        }
    }
    eprintln!("{name}: {accepted} of {cases} mutants accepted, the rest refused");
}

/// A fresh folder for one property.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("attractor-prop-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create scratch dir");
    d
}

fn clear(dir: &Path) {
    for e in std::fs::read_dir(dir).expect("read scratch dir").flatten() {
        std::fs::remove_file(e.path()).expect("clear scratch dir");
    }
}

/// Loads `dir` as the NLM's `--data DIR` does and checks the result's consistency.
fn load_folder(dir: &Path) -> bool {
    match images::load_source(dir.to_str().expect("UTF-8 temp path")) {
        Ok((set, n_train)) => {
            assert!(n_train <= set.len());
            assert_eq!(set.pixels.len(), set.len() * set.dim());
            if let Some(l) = &set.labels {
                assert_eq!(l.len(), set.len());
            }
            true
        }
        Err(_) => false,
    }
}

#[test]
fn idx_files_and_folders() {
    let seeds = seeds!("idx": "images-raw", "images-gz", "labels-raw", "labels-gz", "dir-images",
        "dir-images-gzname", "dir-both", "dir-both-test");
    let dir = scratch("idx");
    let src = Path::new("prop-input");
    check("idx", seeds, &[], 6000, |data| {
        let Some((&sel, payload)) = data.split_first() else {
            return false;
        };
        match sel % 4 {
            0 => idx::parse_images_bytes(payload, src).is_ok_and(|im| {
                assert_eq!(im.pixels.len(), im.count * im.rows * im.cols);
                true
            }),
            1 => idx::parse_labels_bytes(payload, src).is_ok(),
            mode => {
                clear(&dir);
                let gz = if sel & 8 != 0 { ".gz" } else { "" };
                let split = payload.windows(4).skip(16).position(|w| w == [0, 0, 8, 1]);
                let (imgs, labs) = match split {
                    Some(p) if mode == 3 => payload.split_at(p + 16),
                    _ => (payload, &[][..]),
                };
                let put = |name: &str, b: &[u8]| std::fs::write(dir.join(name), b).unwrap();
                put(&format!("train-images-idx3-ubyte{gz}"), imgs);
                if mode == 3 {
                    put(&format!("train-labels-idx1-ubyte{gz}"), labs);
                    if sel & 4 != 0 {
                        put(&format!("t10k-images.idx3-ubyte{gz}"), imgs);
                        put(&format!("t10k-labels.idx1-ubyte{gz}"), labs);
                    }
                }
                load_folder(&dir)
            }
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn png_images_and_folders() {
    let seeds = seeds!("png": "grey8", "rgb8", "rgba8", "grey16", "two-same-size", "two-sizes",
        "three-one-not-png");
    let dir = scratch("png");
    const MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";
    check("png", seeds, &["two-sizes"], 3000, |data| {
        let Some((&sel, payload)) = data.split_first() else {
            return false;
        };
        let mut warnings = Vec::new();
        let one = patterns::decode_grey_image(payload, Path::new("prop.png"), &mut warnings);
        if let Ok((h, w, px)) = &one {
            assert_eq!(px.len(), h * w);
        }
        // Split before every further PNG signature, at most three files.
        let mut starts = vec![0];
        let mut i = 1;
        while starts.len() < 3 && i + MAGIC.len() <= payload.len() {
            if &payload[i..i + MAGIC.len()] == MAGIC {
                starts.push(i);
                i += MAGIC.len();
            } else {
                i += 1;
            }
        }
        starts.push(payload.len());
        clear(&dir);
        for (k, w) in starts.windows(2).enumerate() {
            let ext = if k == 1 && sel & 1 != 0 { "txt" } else { "png" };
            std::fs::write(dir.join(format!("img{k}.{ext}")), &payload[w[0]..w[1]]).unwrap();
        }
        load_folder(&dir) && one.is_ok()
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn npy_files() {
    let seeds = seeds!("npy": "f32-3x4", "f64-2x3", "f64-1d", "i4-2x2", "u1-v2");
    check("npy", seeds, &[], 10000, |data| {
        let Ok(array) = npy::parse_npy(data) else {
            return false;
        };
        let count = array
            .shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d));
        assert_eq!(count, Some(array.data.len()));
        patterns::patterns_from_npy(array, Path::new("prop.npy")).is_ok()
    });
    // A 3-D array decodes but is not a pattern set.
    let f32_3d = include_bytes!("../fuzz/seeds/npy/f32-3d");
    let a = npy::parse_npy(f32_3d).expect("3-D seed decodes");
    assert!(patterns::patterns_from_npy(a, Path::new("x.npy")).is_err());
}

#[test]
fn csv_patterns() {
    let seeds = seeds!("csv": "comma", "whitespace-comments", "bom-crlf");
    check("csv", seeds, &[], 10000, |data| {
        let Ok(text) = std::str::from_utf8(data) else {
            return false;
        };
        let Ok(p) = patterns::patterns_from_text(text, Path::new("prop.csv")) else {
            return false;
        };
        assert!(p.n > 0 && p.data.len().is_multiple_of(p.n));
        let mut z = p.data.clone();
        let _ = patterns::zscore_rows(&mut z, p.n);
        true
    });
}

#[test]
fn sde_toml_files() {
    let seeds = seeds!("sde_toml": "readme-duffing.toml", "doc-matrix-inputs.toml",
        "entries-nonsquare.toml", "one-d.toml");
    check("sde_toml", seeds, &[], 6000, |data| {
        let Ok(text) = std::str::from_utf8(data) else {
            return false;
        };
        let Ok(sde) = expr::parse_user_sde(text, Path::new("prop.toml")) else {
            return false;
        };
        for e in &sde.drift {
            let _ = e.to_string();
        }
        let f = sde.drift_point(&vec![0.5; sde.dim], &vec![0.25; sde.inputs]);
        assert_eq!(f.len(), sde.dim);
        let g = sde.diffusion_point(&vec![0.5; sde.dim]);
        assert!(g.len() == sde.dim && g.iter().all(|r| r.len() == sde.noise_dim));
        let overrides: Vec<(String, f64)> = sde
            .params
            .iter()
            .map(|(k, v)| (k.clone(), v * 2.0 + 1.0))
            .collect();
        let _ = sde.with_params(&overrides);
        true
    });
}

#[test]
fn sde_expressions() {
    let seeds = seeds!("sde_expr": "expr0", "expr1", "expr2", "expr3", "expr4", "constant-only");
    let params = [
        ("alpha".to_string(), 1.0),
        ("beta".to_string(), 0.5),
        ("sigma".to_string(), -0.3),
    ];
    check("sde_expr", seeds, &[], 10000, |data| {
        let Some((&sel, payload)) = data.split_first() else {
            return false;
        };
        let Ok(src) = std::str::from_utf8(payload) else {
            return false;
        };
        let _ = expr::parse_param_override(src);
        let scope = ExprScope {
            dim: 3,
            inputs: 2,
            params: &params,
            allow_z: sel & 1 == 0,
            allow_u: sel & 2 == 0,
        };
        let Ok(e) = Expr::parse(src, &scope) else {
            return false;
        };
        let _ = e.eval(&[0.5, -1.0, 2.0], &[0.25, 0.0]);
        let _ = Expr::parse(&e.to_string(), &scope);
        true
    });
}

/// Stand-in for the `#[derive(Config)]` structs, as in the `config` fuzz target.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct StandIn {
    lr: f64,
    iters: usize,
    data: String,
    symmetric: bool,
    digits: Vec<u8>,
    until: Option<u64>,
    sampler: Inner,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Inner {
    steps: usize,
    noise: f64,
}

#[test]
fn config_files_and_sets() {
    let seeds = seeds!("config": "file", "run-config", "file-and-sets", "sets-only");
    let defaults = StandIn {
        lr: 1e-3,
        iters: 2000,
        data: "mnist".into(),
        symmetric: false,
        digits: vec![1, 3, 6],
        until: None,
        sampler: Inner {
            steps: 10,
            noise: 0.5,
        },
    };
    check("config", seeds, &[], 8000, |data| {
        let _ = serde_json::from_slice::<StandIn>(data);
        let Ok(text) = std::str::from_utf8(data) else {
            return false;
        };
        let mut parts = text.split('\0');
        let file = parts.next().unwrap_or_default();
        let sets: Vec<String> = parts.take(8).map(str::to_string).collect();
        let _ = config::parse_set(text);
        let path = Path::new("prop-config.json");
        config::build_from_text(&defaults, Some((path, file)), &sets, &[]).is_ok()
    });
}

#[test]
fn checkpoints() {
    let seeds = seeds!("checkpoint": "valid", "valid-fixup", "empty-fixup");
    check("checkpoint", seeds, &[], 8000, |data| {
        let Some((&sel, payload)) = data.split_first() else {
            return false;
        };
        let mut bytes = payload.to_vec();
        if sel & 1 != 0 {
            // Append the right FNV-1a checksum, so that mutants reach the header parser.
            let sum = bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
                (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
            });
            bytes.extend_from_slice(&sum.to_le_bytes());
        }
        let Ok(ck) = Checkpoint::from_bytes(&bytes) else {
            return false;
        };
        for a in &ck.arrays {
            let count = a.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
            assert_eq!(count, Some(a.data.len()));
        }
        let out = ck.to_bytes().expect("accepted checkpoint can be written");
        assert!(Checkpoint::from_bytes(&out).is_ok());
        true
    });
}
