//! `src/data/` of the main crate (its own `mod.rs` is just these three declarations).

#[path = "../../../src/data/idx.rs"]
pub mod idx;
#[path = "../../../src/data/images.rs"]
pub mod images;
#[path = "../../../src/data/patterns/mod.rs"]
pub mod patterns;
