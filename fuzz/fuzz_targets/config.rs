//! Configuration building: a `--config file.json` (or a run's `config.json`), `--set key=value`
//! overrides and the merge into the defaults (`config::build_from_text`, `config::parse_set`).
//!
//! The main crate's config structs derive Burn's `Config` and cannot be built here; a stand-in
//! serde struct with fields of the same kinds (f64, usize, String, bool, Vec<u8>, Option, a
//! nested table) takes their place.
//!
//! Input: NUL-separated parts: the config file text, then up to eight `--set` strings.
#![no_main]

use std::path::Path;

use attractor_parsers::config;
use attractor_parsers::harness::StandInConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<StandInConfig>(data);
    let _ = serde_json::from_slice::<serde_json::Value>(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.split('\0');
    let file = parts.next().unwrap_or_default();
    let sets: Vec<String> = parts.take(8).map(str::to_string).collect();
    for s in &sets {
        let _ = config::parse_set(s);
    }
    let defaults = StandInConfig::default();
    let path = Path::new("fuzz-config.json");
    let _ = config::build_from_text(&defaults, Some((path, file)), &sets, &[]);
    let _ = config::build_from_text(&defaults, None, &sets, &[]);
    let _ = config::parse_set(text);
});
