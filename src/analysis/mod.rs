//! Measurements, simulations and estimators built on the models: per family ([`ddm`], [`nlm`],
//! [`fep`]) pure functions of models and arrays (no argument parsing, run directories, output
//! files or printing: the commands that call them are in `crate::cli`), shared statistics
//! ([`stats`]) and the benchmarks ([`bench`](mod@bench), which keeps its own argument structs).

pub mod bench;
pub mod ddm;
pub mod fep;
pub mod nlm;
pub mod stats;
