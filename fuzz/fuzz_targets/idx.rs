//! IDX images and labels (raw or gzip), from memory and as an MNIST-layout folder.
//!
//! Input: one selector byte, then the payload.
//! - selector % 4 == 0: the payload is an images file (`idx::parse_images_bytes`);
//! - 1: a labels file (`idx::parse_labels_bytes`);
//! - 2: a folder holding the payload as `train-images-idx3-ubyte[.gz]` (`images::load_source`);
//! - 3: the same with labels: the payload is split at the first `00 00 08 01` (the labels magic)
//!   after byte 16 into `train-images…` and `train-labels…`; bit 2 of the selector also copies
//!   both as the `t10k-*` test split.
//!
//! Bit 3 of the selector adds `.gz` to the file names (detection is by content, never by name).
#![no_main]

use std::path::Path;

use attractor_parsers::data::{idx, images};
use attractor_parsers::harness::{put, scratch_dir};
use libfuzzer_sys::fuzz_target;

fn check_images(im: &idx::Images) {
    assert_eq!(im.pixels.len(), im.count * im.rows * im.cols);
    let _ = im.image(im.count - 1);
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, payload)) = data.split_first() else {
        return;
    };
    let src = Path::new("fuzz-input");
    match sel % 4 {
        0 => {
            if let Ok(im) = idx::parse_images_bytes(payload, src) {
                check_images(&im);
            }
        }
        1 => {
            let _ = idx::parse_labels_bytes(payload, src);
        }
        mode => {
            let gz = if sel & 8 != 0 { ".gz" } else { "" };
            let dir = scratch_dir("idx");
            let (imgs, labs) = match payload.windows(4).skip(16).position(|w| w == [0, 0, 8, 1]) {
                Some(p) if mode == 3 => payload.split_at(p + 16),
                _ => (payload, &[][..]),
            };
            put(&dir, &format!("train-images-idx3-ubyte{gz}"), imgs);
            if mode == 3 {
                put(&dir, &format!("train-labels-idx1-ubyte{gz}"), labs);
                if sel & 4 != 0 {
                    put(&dir, &format!("t10k-images.idx3-ubyte{gz}"), imgs);
                    put(&dir, &format!("t10k-labels.idx1-ubyte{gz}"), labs);
                }
            }
            let dir_str = dir.to_str().expect("scratch path is UTF-8");
            if let Ok((set, n_train)) = images::load_source(dir_str) {
                assert!(n_train <= set.len());
                assert_eq!(set.pixels.len(), set.len() * set.dim());
                if let Some(l) = &set.labels {
                    assert_eq!(l.len(), set.len());
                    let _ = images::filter_labels(&set, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
                }
                let _ = set.pooled(2);
            }
        }
    }
});
