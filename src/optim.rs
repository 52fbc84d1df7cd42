//! The project's one Adam, acting on a Burn module through [`ModuleMapper`], with a
//! serialisable state; learning-rate schedules.
//!
//! Gradients come from Burn's autodiff (DDM) or from explicit statistics (the NLM's local
//! contrastive rule); the update is the same. [`AdamState::step`] takes the module by value with
//! the gradients keyed by [`ParamId`] and returns it updated: a mapper walks the module's
//! parameters (`module.map(..)`) and each one whose id has a gradient is replaced through
//! [`Param::map`], which keeps its id and its training state (`require_grad`); parameters without
//! a gradient (the CT-RNN's frozen `U` and `B_perp`, an NLM's untrained bias) pass through
//! untouched. No parameter is looked up or written back by name.
//!
//! The moments are ordinary tensors held per parameter id, and named only for checkpoints:
//! `adam.m.<name>`, `adam.v.<name>` (`adam.m.read`, `adam.v.J`, …) and `adam_t`, as in earlier
//! releases, so their checkpoints load and resume.
//!
//! Why not `burn::optim::Adam` (0.22.1): its record (moments by `ParamId`) is rebuilt on
//! `Device::default()` by `load_record` (this project never uses the default device: a GPU run
//! would move its moments to another device on resume), its record's order follows a randomly
//! seeded `HashMap` (the checkpoint would differ run to run), `step` wraps the parameters in
//! autodiff (the NLM's and FEP's local rules have no graph), and it keeps f32
//! hyperparameters where the runs' configurations are f64. Bit-exact resume on the CPU — the
//! kill drills check it — and the checkpoints of earlier releases (moments named by parameter)
//! hold with this one Adam. What it shares with Burn's optimisers is the way to the
//! parameters: the module's own traversal ([`Module::map`]) and the parameters' ids. The
//! update's arithmetic (ops and their order) is the one of earlier releases, so their runs are
//! reproduced bit for bit.
//!
//! Every parameter of the project's modules is a `Tensor<2>`, and so are gradients and moments;
//! a gradient for a parameter of another rank is an error.

use std::any::Any;

use anyhow::{Result, anyhow, bail};
use burn::module::{Module, ModuleMapper, Param, ParamId};
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

/// Adam moments of one parameter.
#[derive(Clone, Debug)]
pub struct Slot {
    /// Name in checkpoints (`adam.m.<name>`, `adam.v.<name>`).
    pub name: String,
    /// Id of the parameter in the module.
    pub id: ParamId,
    /// First moment.
    pub m: Tensor<2>,
    /// Second moment.
    pub v: Tensor<2>,
}

/// Adam state of a set of a module's parameters.
#[derive(Clone, Debug)]
pub struct AdamState {
    /// Completed updates.
    pub t: u64,
    /// Moments per parameter.
    pub slots: Vec<Slot>,
}

/// The gradient of one parameter (by id) and the Adam hyperparameters of its update.
pub type ParamGrad<'a> = (ParamId, Tensor<2>, &'a Adam);

impl AdamState {
    /// Zero moments for these parameters, each with the name its moments have in checkpoints.
    pub fn new(params: &[(&str, &Param<Tensor<2>>)]) -> Self {
        Self {
            t: 0,
            slots: params
                .iter()
                .map(|(name, p)| Slot {
                    name: name.to_string(),
                    id: p.id,
                    m: p.zeros_like(),
                    v: p.zeros_like(),
                })
                .collect(),
        }
    }

    /// One Adam step of `module`: the parameters with a gradient in `grads` (by id) are
    /// updated, every other one is returned untouched. Each gradient must name a parameter of
    /// the module that has moments here.
    pub fn step<M: Module>(&mut self, module: M, grads: Vec<ParamGrad<'_>>, lr: f64) -> Result<M> {
        self.t += 1;
        let mut mapper = AdamMapper {
            t: self.t as i32,
            lr,
            slots: &mut self.slots,
            grads,
            error: None,
        };
        let module = module.map(&mut mapper);
        if let Some(e) = mapper.error {
            return Err(e);
        }
        if let Some((id, ..)) = mapper.grads.first() {
            bail!("Adam: a gradient for parameter {id}, which the module does not have");
        }
        Ok(module)
    }

    /// Appends the moments to a checkpoint.
    pub fn save_into(&self, ck: &mut Checkpoint) -> Result<()> {
        for s in &self.slots {
            let n = &s.name;
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
        for s in &mut self.slots {
            let n = &s.name;
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

/// The [`ModuleMapper`] of [`AdamState::step`]: updates the parameters whose id has a gradient.
struct AdamMapper<'a, 'g> {
    /// Step number (bias correction), at least 1.
    t: i32,
    lr: f64,
    slots: &'a mut [Slot],
    /// Gradients not yet applied.
    grads: Vec<ParamGrad<'g>>,
    /// The first failure (a mapper cannot return one).
    error: Option<anyhow::Error>,
}

impl ModuleMapper for AdamMapper<'_, '_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(i) = self.grads.iter().position(|(id, ..)| *id == param.id) else {
            return param;
        };
        let (id, g, cfg) = self.grads.swap_remove(i);
        let Some(slot) = self.slots.iter_mut().find(|s| s.id == id) else {
            self.error
                .get_or_insert_with(|| anyhow!("Adam: no moments for parameter {id}"));
            return param;
        };
        if D != 2 {
            let name = &slot.name;
            self.error
                .get_or_insert_with(|| anyhow!("Adam: parameter `{name}` has rank {D}, not 2"));
            return param;
        }
        let (t, lr) = (self.t, self.lr);
        param.map(|p| same_rank(update(cfg, t, slot, same_rank(p), g, lr)))
    }
}

/// `t` as a tensor of rank `B`, for `A == B`: a change of type only, no tensor operation.
fn same_rank<const A: usize, const B: usize>(t: Tensor<A>) -> Tensor<B> {
    let mut t = Some(t);
    (&mut t as &mut dyn Any)
        .downcast_mut::<Option<Tensor<B>>>()
        .and_then(Option::take)
        .expect("the ranks are equal")
}

/// One Adam update of `p` with gradient `g` at step `t` (≥ 1), advancing the moments `s`.
fn update(cfg: &Adam, t: i32, s: &mut Slot, p: Tensor<2>, g: Tensor<2>, lr: f64) -> Tensor<2> {
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

    /// The step changes only the parameters with a gradient, keeps every id, and a first step
    /// moves each trained entry by `lr` against the gradient's sign (m̂ = g, v̂ = g²).
    #[test]
    fn step_updates_the_parameters_with_a_gradient_by_id() -> Result<()> {
        use crate::models::ctrnn::{CtRnnConfig, TENSORS};
        let dev = crate::device::select(crate::device::DeviceChoice::Flex)?.device;
        let net = CtRnnConfig::new(8, 2, 2).with_inputs(1).init(&dev)?;
        let mut adam = AdamState::new(&[("read", net.param("read")), ("c", net.param("c"))]);
        let cfg = Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        };
        let g = net.get("read").ones_like().mul_scalar(-3.0);
        let next = adam.step(net.clone(), vec![(net.param("read").id, g, &cfg)], 1e-2)?;
        assert_eq!(adam.t, 1);
        for name in TENSORS {
            assert_eq!(next.param(name).id, net.param(name).id, "{name}");
            let (old, new) = (to_vec_f32(net.get(name))?, to_vec_f32(next.get(name))?);
            if name == "read" {
                for (o, n) in old.iter().zip(&new) {
                    assert!((n - o - 1e-2).abs() < 1e-6, "{o} -> {n}");
                }
            } else {
                assert_eq!(old, new, "{name} changed without a gradient");
            }
        }
        // The moments stay named for checkpoints; `c` had no gradient and keeps zero moments.
        let mut ck = Checkpoint {
            kind: "test".into(),
            step: 1,
            arrays: Vec::new(),
            extra: serde_json::json!({}),
        };
        adam.save_into(&mut ck)?;
        let names: Vec<_> = ck.arrays.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            ["adam.m.read", "adam.v.read", "adam.m.c", "adam.v.c"]
        );
        assert!(ck.array("adam.m.c")?.data.iter().all(|v| *v == 0.0));
        Ok(())
    }

    /// A gradient whose parameter is not in the module, or has no moments, is an error.
    #[test]
    fn step_refuses_gradients_it_cannot_apply() -> Result<()> {
        use crate::models::ctrnn::CtRnnConfig;
        let dev = crate::device::select(crate::device::DeviceChoice::Flex)?.device;
        let net = CtRnnConfig::new(8, 2, 2).init(&dev)?;
        let mut adam = AdamState::new(&[("read", net.param("read"))]);
        let cfg = Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        };
        let g = net.get("c").zeros_like();
        let stranger = ParamId::from(crate::models::param_id("elsewhere"));
        assert!(
            adam.step(net.clone(), vec![(stranger, g.clone(), &cfg)], 1e-3)
                .is_err()
        );
        let no_moments = net.param("c").id;
        assert!(adam.step(net, vec![(no_moments, g, &cfg)], 1e-3).is_err());
        Ok(())
    }

    #[test]
    fn cosine_endpoints() {
        let s = Schedule::Cosine;
        assert!((s.lr(1e-3, 1e-5, 0, 100) - 1e-3).abs() < 1e-12);
        assert!((s.lr(1e-3, 1e-5, 100, 100) - 1e-5).abs() < 1e-12);
        assert!(s.lr(1e-3, 1e-5, 50, 100) < 1e-3);
    }
}
