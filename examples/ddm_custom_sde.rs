//! A CT-RNN trained by drift–diffusion matching on an SDE written in Rust.
//!
//! The target is a noisy Duffing oscillator, `dz₁ = z₂ dt + σ dW₁`,
//! `dz₂ = (α z₁ − z₁³ − γ z₂) dt + σ dW₂`, implemented as the project's [`Sde`] trait on Burn
//! tensors. A 100-neuron low-rank network learns to carry it in a 2-D latent subspace, trained
//! through the library (`api::ddm::train_on`: the one driver, checkpoints, metrics); the
//! example prints the loss and the relative drift error on held-out stationary points.
//!
//! Run: `cargo run --release --example ddm_custom_sde`

use std::sync::Arc;

use anyhow::Result;
use attractor::api::ddm::{DdmRun, EvalOptions, eval, train_on};
use attractor::api::{Ctx, RunPlace};
use attractor::models::ddm::DdmConfig;
use attractor::sde::target::Target;
use attractor::sde::{Diffusion, Sde};
use burn::tensor::Tensor;

/// The noisy Duffing oscillator.
struct Duffing {
    alpha: f64,
    gamma: f64,
    sigma: f64,
}

impl Sde for Duffing {
    fn dim(&self) -> usize {
        2
    }
    fn noise_dim(&self) -> usize {
        2
    }
    fn drift(&self, z: Tensor<2>, _input: Option<Tensor<2>>) -> Tensor<2> {
        let z1 = z.clone().narrow(1, 0, 1);
        let z2 = z.narrow(1, 1, 1);
        let f2 = z1.clone().mul_scalar(self.alpha)
            - z1.powi_scalar(3)
            - z2.clone().mul_scalar(self.gamma);
        Tensor::cat(vec![z2, f2], 1)
    }
    fn diffusion(&self, _z: &Tensor<2>) -> Diffusion {
        Diffusion::Isotropic(self.sigma)
    }
}

fn main() -> Result<()> {
    let ctx = Ctx::cpu()?;
    let duffing = || {
        let sde = Duffing {
            alpha: 1.0,
            gamma: 0.5,
            sigma: 0.4,
        };
        Target::custom("duffing", Arc::new(sde), 0.01, &ctx.device)
    };
    let cfg = DdmConfig::new()
        .with_neurons(100)
        .with_iters(600)
        .with_pool_size(4000)
        .with_seed(7);
    // The default `init = ridge` starts the read-out at a least-squares fit of the drift; Adam
    // then refines it on both the drift and the diffusion. Checkpoints and metrics.jsonl go to
    // the run directory, as for a built-in target.
    let dir = std::env::temp_dir().join(format!("attractor-duffing-{}", std::process::id()));
    let report = train_on(duffing()?, cfg, &RunPlace::at(&dir).overwrite(), &ctx)?;
    for m in attractor::api::Run::open(&dir)?.metrics()? {
        println!("iteration {:4}: loss {:.4e}", m.step, m.values["loss"]);
    }

    // The network's latent drift and diffusion against the target's, on held-out stationary
    // points (what `attractor ddm eval` measures); the run reopens with its Rust target.
    let run = DdmRun::open_with_target(&report.run_dir, duffing()?, &ctx)?;
    let m = eval(&run, &EvalOptions::default(), &ctx)?.metrics;
    let rel = m.drift_rel_err;
    println!("relative drift error on held-out stationary points: {rel:.3}");
    std::fs::remove_dir_all(&dir)?;
    anyhow::ensure!(
        rel < 0.3,
        "the network did not learn the drift (error {rel:.3})"
    );
    Ok(())
}
