//! Pattern text files (`.csv`/`.txt`, one pattern a line): `patterns::patterns_from_text`, what
//! `--patterns FILE.csv` and `--cue FILE.csv` run after reading the file as UTF-8, then the
//! z-scoring FEP training applies.
//!
//! Input: the file contents (inputs that are not UTF-8 are refused by the file reader before
//! parsing and are skipped here).
#![no_main]

use std::path::Path;

use attractor_parsers::data::patterns;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(p) = patterns::patterns_from_text(text, Path::new("fuzz.csv")) else {
        return;
    };
    assert!(p.n > 0, "a pattern set with length-0 patterns was accepted");
    assert_eq!(p.data.len() % p.n, 0);
    assert_eq!(p.rows().count(), p.len());
    assert!(p.data.iter().all(|v| v.is_finite()));
    let mut z = p.data.clone();
    let _ = patterns::zscore_rows(&mut z, p.n);
});
