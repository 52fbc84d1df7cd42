//! Model families. Models know nothing of files, the CLI or printing.

pub mod cb;
pub mod ctrnn;
pub mod ddm;
pub mod export;
pub mod fep;
pub mod fep_host;
pub mod nlm;
pub mod nlm_host;

use burn::module::{Param, ParamId};
use burn::tensor::Tensor;

/// A parameter whose id is fixed by `name` (FNV-1a of the name): Burn draws ids at random per
/// process, and a record written by one run must name the same parameters as the next.
pub fn param<const D: usize>(name: &str, value: Tensor<D>) -> Param<Tensor<D>> {
    Param::initialized(ParamId::from(param_id(name)), value)
}

/// The id [`param`] gives the parameter `name`.
pub fn param_id(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
