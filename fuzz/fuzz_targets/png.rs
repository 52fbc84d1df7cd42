//! PNG images: one decode from memory, and a folder of 1–3 PNGs through the folder loaders.
//!
//! Input: one selector byte, then the payload. The payload is decoded as one image
//! (`patterns::decode_grey_image`). It is also split before every further PNG signature
//! (`89 50 4E 47 0D 0A 1A 0A`) into at most three files `img0.png`, `img1.png`, `img2.png`
//! written to a fresh folder, which is loaded by `images::load_source` (the NLM's `--data DIR`,
//! through `patterns::load_patterns`, the FEP's `--patterns DIR`). Selector bit 0 names the
//! second file `img1.txt` instead (not a PNG: must be skipped).
#![no_main]

use std::path::Path;

use attractor_parsers::data::{images, patterns};
use attractor_parsers::harness::{put, scratch_dir, split_at_marker};
use libfuzzer_sys::fuzz_target;

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

fuzz_target!(|data: &[u8]| {
    let Some((&sel, payload)) = data.split_first() else {
        return;
    };
    let mut warnings = Vec::new();
    if let Ok((h, w, px)) =
        patterns::decode_grey_image(payload, Path::new("fuzz.png"), &mut warnings)
    {
        assert_eq!(px.len(), h * w);
        assert!(px.iter().all(|v| (0.0..=1.0).contains(v)));
    }
    let dir = scratch_dir("png");
    for (i, part) in split_at_marker(payload, PNG_MAGIC, 3)
        .into_iter()
        .enumerate()
    {
        let ext = if i == 1 && sel & 1 != 0 { "txt" } else { "png" };
        put(&dir, &format!("img{i}.{ext}"), part);
    }
    let dir_str = dir.to_str().expect("scratch path is UTF-8");
    if let Ok((set, count)) = images::load_source(dir_str) {
        assert_eq!(count, set.len());
        assert!(set.dim() > 0);
        assert_eq!(set.pixels.len(), set.len() * set.dim());
    }
});
