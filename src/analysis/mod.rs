//! Measurements, simulations and benchmarks built on the models (no CLI parsing here beyond
//! the argument structs).

pub mod bench;
pub mod ddm;
pub mod fep;
pub mod nlm;
pub mod stats;
