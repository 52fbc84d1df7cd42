//! `attractor`: training, simulating and inspecting stochastic recurrent networks on Burn.
//!
//! Where to start:
//! - a trained run as a Burn module: [`load_model`] (`model.bpk` + `model.json` in every run
//!   directory, see [`models::export`]); the programs in `examples/` (a DDM on an SDE written
//!   in Rust, an NLM trained and sampled, a run loaded as a Burn module);
//! - the three model families, one folder each in [`models`] (model = a Burn `Module` built
//!   from its `Config`, trainer, host kernel): [`models::ddm`] (continuous-time RNNs trained
//!   by drift–diffusion matching to embed a target SDE in a latent subspace; the network
//!   [`models::ddm::ctrnn::CtRnn`]), [`models::nlm`] (neural Langevin machines trained on
//!   images by a local contrastive rule; [`models::nlm::Nlm`], fused CPU kernel in
//!   [`models::nlm::kernel`]) and [`models::fep`] (self-orthogonalising attractor networks;
//!   [`models::fep::FepNetworks`], the host engine in [`models::fep::kernel`], the tensor
//!   engine in [`models::fep::tensor`], continuous-Bernoulli units in [`models::fep::cb`]);
//! - [`analysis`]: the pure measurements the run-level operations call (metrics, samplers,
//!   denoising, decompositions, estimators; no argument parsing, output files or printing)
//!   and the benchmarks; [`stats`]: small shared statistics;
//! - shared infrastructure: [`device`] (the only backend-aware module: `--device` → `Device`),
//!   [`sde`] (SDE trait, built-in and user targets, the one Euler–Maruyama solver), [`train`]
//!   (the one training driver; [`tensorboard`] its event files), [`checkpoint`] (whole-state
//!   checkpoints) and [`atomic`] (the one atomic writer), [`run`] (run directories and the
//!   listing of a folder of runs), [`config`] (configuration overrides, built-in-or-path
//!   [`config::Source`]), [`data`] (IDX, PNG and pattern readers), [`rng`] (serialisable
//!   random streams), [`optim`] (Adam, schedules), [`plot`] and [`npy`] (outputs),
//!   [`progress`] (progress observer and stop flag), [`transfer`] (the one door for host↔device copies),
//!   [`error`] (exit codes);
//! - [`api`]: the run-level operations every front calls (train, resume, export through the
//!   family registry [`api::family`]; each family's operations on trained runs), each a
//!   function of typed options returning a typed result, with progress and cancellation as
//!   parameters ([`progress::Control`]);
//! - [`cli`]: the command line, one face over [`api`]: argument structs and the command
//!   handlers that parse, call, write files and figures and print ([`cli::ddm`], [`cli::nlm`],
//!   [`cli::fep`]), dispatch, examples, completions, logging.
//!
//! `docs/design.md` in the repository is the longer map.

#![warn(missing_docs)]

pub mod analysis;
pub mod api;
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
pub mod stats;
pub mod tensorboard;
pub mod train;
pub mod transfer;

pub use models::export::load_model;
