//! The main crate's parser modules, compiled here without Burn (see `fuzz/README.md`).
//!
//! Every module below is the main crate's own source file, included with `#[path]` and arranged
//! in the same tree (`crate::npy`, `crate::data::{idx, images, patterns}`, `crate::sde::expr`,
//! `crate::atomic`, `crate::checkpoint`, `crate::config`) so that their `crate::…` and `super::…` paths resolve
//! unchanged. If one of them ever pulls in Burn, this crate stops compiling: the mirror doubles
//! as the guarantee that the parsers stay Burn-free.
//!
//! [`harness`] holds what the fuzz targets share (scratch folders, the stand-in config struct).

// Functions of the mirrored modules that only the rest of the main crate calls.
#![allow(dead_code)]

#[path = "../../src/atomic.rs"]
pub mod atomic;
#[path = "../../src/checkpoint.rs"]
pub mod checkpoint;
#[path = "../../src/config.rs"]
pub mod config;
#[path = "../../src/npy.rs"]
pub mod npy;

pub mod data;
pub mod sde;

pub mod harness;
