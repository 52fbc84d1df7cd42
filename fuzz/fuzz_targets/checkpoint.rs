//! Checkpoint files (`ckpt-<step>.atck`, read by `resume`, `eval`, `generate` …):
//! `Checkpoint::from_bytes`, then a write/read round trip of whatever it accepted.
//!
//! Input: one selector byte, then the file contents. Selector bit 0 set: the target appends the
//! correct FNV-1a checksum to the payload first, so that mutations reach the header and tensor
//! parsing instead of stopping at the checksum test.
#![no_main]

use attractor_parsers::checkpoint::Checkpoint;
use attractor_parsers::harness::fnv1a;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, payload)) = data.split_first() else {
        return;
    };
    let mut bytes = payload.to_vec();
    if sel & 1 != 0 {
        let sum = fnv1a(&bytes);
        bytes.extend_from_slice(&sum.to_le_bytes());
    }
    let Ok(ck) = Checkpoint::from_bytes(&bytes) else {
        return;
    };
    for a in &ck.arrays {
        let count = a.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        assert_eq!(count, Some(a.data.len()));
        let _ = ck.array_shaped(&a.name, &a.shape);
    }
    let out = ck
        .to_bytes()
        .expect("an accepted checkpoint can be written");
    let again = Checkpoint::from_bytes(&out).expect("our own output reads back");
    assert_eq!(again.to_bytes().expect("written again"), out);
});
