//! Adam on the models' named parameters, with a serialisable state, and learning-rate
//! schedules.
//!
//! Gradients come from Burn's autodiff (DDM) or from explicit statistics (the NLM's local
//! contrastive rule); the update is the same. The moments are ordinary tensors keyed by the
//! parameter's name (`adam.m.read`, …), so they go into checkpoints like parameters.
//!
//! Why not `burn::optim::Adam` (0.22.1): its state is keyed by `ParamId` and rebuilt on
//! `Device::default()` by `load_record` (this project never uses the default device: a GPU run
//! would move its moments to another device on resume), its record's order follows a randomly
//! seeded `HashMap` (the checkpoint would differ run to run), `step` wraps the parameters in
//! autodiff (the NLM's and FEP's local rules have no graph), and it keeps f32
//! hyperparameters where the runs' configurations are f64. Bit-exact resume on the CPU — the
//! kill drills check it — and the checkpoints of earlier releases (moments named by parameter)
//! hold with this one Adam; it reads and writes the modules' `Param`s through their names
//! ([`crate::models::ctrnn::CtRnn::get`]/`set`, `Nlm::set_j`/`set_b`), which keep each
//! parameter's id.

use anyhow::{Result, bail};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, NamedArray};
use crate::transfer::{tensor2_f32, to_vec_f32};

/// Adam hyperparameters (PyTorch conventions; `weight_decay` is coupled L2).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Adam {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator offset.
    pub eps: f64,
    /// Coupled L2 weight decay added to the gradient.
    pub weight_decay: f64,
}

impl Adam {
    /// Validates the hyperparameters.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.beta1) || !(0.0..1.0).contains(&self.beta2) {
            bail!(
                "Adam betas must lie in [0, 1), got {} and {}",
                self.beta1,
                self.beta2
            );
        }
        if self.eps.is_nan()
            || self.eps <= 0.0
            || self.weight_decay.is_nan()
            || self.weight_decay < 0.0
        {
            bail!("Adam eps must be > 0 and weight decay >= 0");
        }
        Ok(())
    }
}

/// Moments of one parameter tensor.
#[derive(Clone, Debug)]
pub struct Moments {
    /// First moment.
    pub m: Tensor<2>,
    /// Second moment.
    pub v: Tensor<2>,
}

/// Adam state of a set of named parameters.
#[derive(Clone, Debug)]
pub struct AdamState {
    /// Completed updates.
    pub t: u64,
    /// Moments by parameter name.
    pub slots: Vec<(String, Moments)>,
}

impl AdamState {
    /// Zero moments for parameters of the given names and shapes (as tensors).
    pub fn new(params: &[(&str, &Tensor<2>)]) -> Self {
        Self {
            t: 0,
            slots: params
                .iter()
                .map(|(n, p)| {
                    (
                        n.to_string(),
                        Moments {
                            m: p.zeros_like(),
                            v: p.zeros_like(),
                        },
                    )
                })
                .collect(),
        }
    }

    /// One Adam update of parameter `name`; call [`AdamState::tick`] once per step first.
    pub fn update(
        &mut self,
        cfg: &Adam,
        name: &str,
        p: Tensor<2>,
        g: Tensor<2>,
        lr: f64,
    ) -> Tensor<2> {
        let t = self.t.max(1) as i32;
        let Some((_, s)) = self.slots.iter_mut().find(|(n, _)| n == name) else {
            return p;
        };
        let g = if cfg.weight_decay > 0.0 {
            g + p.clone().mul_scalar(cfg.weight_decay)
        } else {
            g
        };
        s.m = s.m.clone().mul_scalar(cfg.beta1) + g.clone().mul_scalar(1.0 - cfg.beta1);
        s.v = s.v.clone().mul_scalar(cfg.beta2) + g.powi_scalar(2).mul_scalar(1.0 - cfg.beta2);
        let bc1 = 1.0 - cfg.beta1.powi(t);
        let bc2 = 1.0 - cfg.beta2.powi(t);
        let denom = s.v.clone().div_scalar(bc2).sqrt().add_scalar(cfg.eps);
        p - s.m.clone().div(denom).mul_scalar(lr / bc1)
    }

    /// Advances the step counter (bias correction).
    pub fn tick(&mut self) {
        self.t += 1;
    }

    /// Appends the moments to a checkpoint.
    pub fn save_into(&self, ck: &mut Checkpoint) -> Result<()> {
        for (n, s) in &self.slots {
            for (which, t) in [("m", &s.m), ("v", &s.v)] {
                let [r, c] = t.dims();
                ck.arrays.push(NamedArray {
                    name: format!("adam.{which}.{n}"),
                    shape: vec![r, c],
                    data: to_vec_f32(t)?,
                });
            }
        }
        ck.extra["adam_t"] = self.t.into();
        Ok(())
    }

    /// Restores moments saved by [`AdamState::save_into`].
    pub fn load_from(&mut self, ck: &Checkpoint) -> Result<()> {
        for (n, s) in &mut self.slots {
            let [r, c] = s.m.dims();
            let dev = s.m.device();
            let m = ck.array_shaped(&format!("adam.m.{n}"), &[r, c])?;
            let v = ck.array_shaped(&format!("adam.v.{n}"), &[r, c])?;
            s.m = tensor2_f32(m.data.clone(), r, c, &dev);
            s.v = tensor2_f32(v.data.clone(), r, c, &dev);
        }
        self.t = ck.extra.get("adam_t").and_then(|v| v.as_u64()).unwrap_or(0);
        Ok(())
    }
}

/// Learning-rate schedule.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// Constant rate.
    Constant,
    /// Cosine decay from `lr` to `lr_final` over the run.
    Cosine,
    /// Linear decay from `lr` to `lr_final`.
    Linear,
}

crate::config::choice_display!(Schedule);

impl Schedule {
    /// Rate at step `t` of `total`.
    pub fn lr(&self, lr: f64, lr_final: f64, t: u64, total: u64) -> f64 {
        let x = if total == 0 {
            1.0
        } else {
            (t as f64 / total as f64).clamp(0.0, 1.0)
        };
        match self {
            Self::Constant => lr,
            Self::Cosine => {
                lr_final + 0.5 * (lr - lr_final) * (1.0 + (std::f64::consts::PI * x).cos())
            }
            Self::Linear => lr + (lr_final - lr) * x,
        }
    }
}

impl std::str::FromStr for Schedule {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "constant" => Self::Constant,
            "cosine" => Self::Cosine,
            "linear" => Self::Linear,
            _ => bail!("unknown schedule `{s}` (constant, cosine, linear)"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_endpoints() {
        let s = Schedule::Cosine;
        assert!((s.lr(1e-3, 1e-5, 0, 100) - 1e-3).abs() < 1e-12);
        assert!((s.lr(1e-3, 1e-5, 100, 100) - 1e-5).abs() < 1e-12);
        assert!(s.lr(1e-3, 1e-5, 50, 100) < 1e-3);
    }
}
