//! Model families. Models know nothing of files, the CLI or printing.

pub mod ddm;
pub mod export;
pub mod fep;
pub mod nlm;

// The short paths of earlier releases (`models::ctrnn`, `models::nlm_host`, …).
pub use ddm::ctrnn;
pub use fep::{cb, kernel as fep_host};
pub use nlm::kernel as nlm_host;

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
