//! Data sets and pattern files.

pub mod patterns;
