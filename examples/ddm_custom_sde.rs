//! A CT-RNN trained by drift–diffusion matching on an SDE written in Rust.
//!
//! The target is a noisy Duffing oscillator, `dz₁ = z₂ dt + σ dW₁`,
//! `dz₂ = (α z₁ − z₁³ − γ z₂) dt + σ dW₂`, implemented as the project's [`Sde`] trait on Burn
//! tensors. A 100-neuron low-rank network learns to carry it in a 2-D latent subspace; the
//! example prints the loss and the relative drift error on the training pool.
//!
//! Run: `cargo run --release --example ddm_custom_sde`

use std::sync::Arc;

use anyhow::Result;
use attractor::device::{DeviceChoice, select};
use attractor::models::ddm::{DdmConfig, DdmTrainer};
use attractor::sde::target::Target;
use attractor::sde::{Diffusion, Sde};
use attractor::train::Trainable;
use attractor::transfer::{tensor2_f32, to_vec_f32};
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
    let device = select(DeviceChoice::Flex)?.device;
    let duffing = Duffing {
        alpha: 1.0,
        gamma: 0.5,
        sigma: 0.4,
    };
    let target = Target::custom("duffing", Arc::new(duffing), 0.01, &device)?;
    let cfg = DdmConfig::new()
        .with_neurons(100)
        .with_iters(600)
        .with_pool_size(4000)
        .with_seed(7);
    let mut trainer = DdmTrainer::with_target(&cfg, target, &device)?;
    // The default `init = ridge` starts the read-out at a least-squares fit of the drift; Adam
    // then refines it on both the drift and the diffusion.
    println!("iteration    1: loss {:.4e}", trainer.step(0)?.loss()?);
    for step in 1..cfg.iters {
        let out = trainer.step(step)?;
        if (step + 1) % 200 == 0 {
            println!("iteration {:4}: loss {:.4e}", step + 1, out.loss()?);
        }
    }

    // Drift of the network's latent dynamics against the target's, on the stationary pool.
    let n = trainer.pool.len() / 2;
    let z = tensor2_f32(trainer.pool.clone(), n, 2, &device);
    let f_target = to_vec_f32(&trainer.ddm.target.drift(z.clone(), None))?;
    let f_net = to_vec_f32(&trainer.ddm.net.latent_drift(z, None))?;
    let err: f64 = f_target
        .iter()
        .zip(&f_net)
        .map(|(a, b)| f64::from(a - b).powi(2))
        .sum();
    let norm: f64 = f_target.iter().map(|a| f64::from(*a).powi(2)).sum();
    let rel = (err / norm).sqrt();
    println!("relative drift error on {n} stationary points: {rel:.3}");
    anyhow::ensure!(
        rel < 0.3,
        "the network did not learn the drift (error {rel:.3})"
    );
    Ok(())
}
