//! User SDE files (`--sde FILE.toml`, `attractor sde check FILE.toml`): `expr::parse_user_sde`,
//! then what a run does with the result: print it, evaluate drift and diffusion, re-bind the
//! parameters (`--param`).
//!
//! Input: the file contents (not UTF-8: refused by the file reader, skipped here).
#![no_main]

use std::path::Path;

use attractor_parsers::sde::expr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(sde) = expr::parse_user_sde(text, Path::new("fuzz.toml")) else {
        return;
    };
    assert!(sde.dim >= 1 && sde.dim <= expr::MAX_DIM);
    assert_eq!(sde.drift.len(), sde.dim);
    // `sde check` prints these.
    let _ = format!("{} {:?} {:?}", sde.name, sde.params, sde.diffusion);
    for e in &sde.drift {
        let _ = e.to_string();
    }
    let z = vec![0.5; sde.dim];
    let u = vec![0.25; sde.inputs];
    assert_eq!(sde.drift_point(&z, &u).len(), sde.dim);
    let g = sde.diffusion_point(&z);
    assert_eq!(g.len(), sde.dim);
    assert!(g.iter().all(|r| r.len() == sde.noise_dim));
    let _ = sde.is_additive_noise();
    if let Some(b) = &sde.bbox {
        assert_eq!(b.len(), sde.dim);
    }
    // `--param name=value` for every parameter.
    let overrides: Vec<(String, f64)> = sde
        .params
        .iter()
        .map(|(k, v)| (k.clone(), v * 2.0 + 1.0))
        .collect();
    if let Ok(again) = sde.with_params(&overrides) {
        assert_eq!(again.dim, sde.dim);
    }
});
