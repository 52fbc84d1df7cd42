//! Measurements, simulations and estimators built on the models: per family ([`ddm`], [`nlm`],
//! [`fep`]) pure functions of models and arrays (no argument parsing, run directories, output
//! files or printing: the operations that call them are in `crate::api`), and the benchmarks
//! ([`bench`](mod@bench), which keeps its own argument structs). Shared statistics:
//! [`crate::stats`].

pub mod bench;
pub mod ddm;
pub mod fep;
pub mod nlm;
