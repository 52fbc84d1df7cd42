//! `attractor`: training, simulating and inspecting stochastic recurrent networks on Burn.
//!
//! - [`models::ddm`]: continuous-time RNNs trained by drift–diffusion matching to embed a target
//!   SDE in a latent subspace;
//! - shared infrastructure: [`device`] (the only backend-aware module), [`sde`] (SDE trait and
//!   the one solver), [`train`] (the one training driver), [`checkpoint`] (atomic whole-state
//!   checkpoints), [`run`] (run directories), [`config`] (configuration overrides).

#![warn(missing_docs)]

pub mod analysis;
pub mod checkpoint;
#[allow(missing_docs)]
pub mod cli;
pub mod config;
pub mod data;
pub mod device;
pub mod error;
pub mod linalg;
pub mod models;
pub mod npy;
pub mod optim;
pub mod plot;
pub mod rng;
pub mod run;
pub mod sde;
pub mod train;
