//! Data sets and pattern files.

pub mod idx;
pub mod images;
pub mod patterns;
