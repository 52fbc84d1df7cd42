//! `attractor`: training, simulating and inspecting stochastic recurrent networks on Burn.
//!
//! Where to start:
//! - the three model families in [`models`]: [`models::ddm`] (continuous-time RNNs trained by
//!   drift–diffusion matching to embed a target SDE in a latent subspace; network in
//!   [`models::ctrnn`]), [`models::nlm`] (neural Langevin machines trained on images by a local
//!   contrastive rule; fused CPU kernel in [`models::nlm_host`]) and [`models::fep`]
//!   (self-orthogonalising attractor networks; host engine in [`models::fep_host`],
//!   continuous-Bernoulli units in [`models::cb`]);
//! - [`analysis`]: the pure measurements the analysis commands call (metrics, samplers,
//!   denoising, decompositions, estimators; no argument parsing, output files or printing), shared
//!   statistics and the benchmarks;
//! - shared infrastructure: [`device`] (the only backend-aware module), [`sde`] (SDE trait and
//!   the one solver), [`train`] (the one training driver), [`checkpoint`] (atomic whole-state
//!   checkpoints), [`run`] (run directories), [`config`] (configuration overrides), [`data`]
//!   (IDX, PNG and pattern readers), [`rng`] (serialisable random streams), [`optim`] (Adam),
//!   [`plot`] and [`npy`] (outputs), [`progress`] (progress bars), [`transfer`] (the one door for host↔device copies), [`error`] (exit codes);
//! - [`cli`]: the command line: argument structs and the command handlers that load runs, write
//!   files and figures and print ([`cli::ddm`], [`cli::nlm`], [`cli::fep`]: each family's
//!   analysis commands), dispatch, examples, completions, logging.
//!
//! `docs/design.md` in the repository is the longer map.

#![warn(missing_docs)]

pub mod analysis;
pub mod atomic;
pub mod checkpoint;
#[allow(missing_docs)]
pub mod cli;
pub mod config;
pub mod data;
pub mod device;
pub mod error;
pub mod models;
pub mod npy;
pub mod optim;
pub mod plot;
pub mod progress;
pub mod rng;
pub mod run;
pub mod sde;
pub mod train;
pub mod transfer;

pub use models::export::load_model;
