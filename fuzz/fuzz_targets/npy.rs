//! `.npy` files: the decoder, the pattern loader on top of it, and a write/read round trip.
//!
//! Input: the file contents (`npy::parse_npy`, then `patterns::patterns_from_npy`, which is what
//! `--patterns FILE.npy` and `--cue FILE.npy` run).
#![no_main]

use std::path::Path;

use attractor_parsers::data::patterns;
use attractor_parsers::npy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(array) = npy::parse_npy(data) else {
        return;
    };
    let count = array
        .shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d));
    assert_eq!(count, Some(array.data.len()));
    // What we write, we read back (bit for bit, NaNs included).
    let again = npy::parse_npy(&npy::npy_bytes_f64(&array.shape, &array.data))
        .expect("re-reading our own output");
    assert_eq!(again.shape, array.shape);
    assert!(
        again
            .data
            .iter()
            .zip(&array.data)
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
    if let Ok(p) = patterns::patterns_from_npy(array, Path::new("fuzz.npy")) {
        assert!(p.n > 0 && !p.is_empty());
        assert_eq!(p.data.len() % p.n, 0);
        assert!(p.data.iter().all(|v| v.is_finite()));
        let mut z = p.data.clone();
        let _ = patterns::zscore_rows(&mut z, p.n);
    }
});
