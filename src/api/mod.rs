//! Run-level operations: what the command line and the Python package do, as library
//! functions of typed options returning typed results.
//!
//! Every operation takes a [`Ctx`] — the device it computes on and the [`Control`] it reports
//! progress to and polls for a stop — and returns the structure that the command line writes as
//! its JSON file (`serde::Serialize`). Nothing here parses arguments or prints; files are
//! written only where an operation's purpose is a run directory (training) or where the caller
//! asks for them.
//!
//! - [`train()`] a new run from a configuration ([`crate::models::nlm::NlmConfig`] trains an
//!   NLM, and so on), [`Run::open`] an existing one (family, configuration, metrics, progress,
//!   its Burn module, [`Run::resume`], [`Run::export`]);
//! - [`family`]: the model-family registry ([`family::Family`], [`family::dispatch`]) behind
//!   them: the one train, resume and export path of every family;
//! - [`nlm`], [`ddm`], [`fep`]: each family's operations on a trained run.

use burn::tensor::Device;

use crate::progress::Control;

pub mod ddm;
pub mod family;
pub mod fep;
pub mod nlm;
pub mod run;

pub use family::{ExportFormat, ResumeOptions, Resumed, RunConfig, RunPlace, TrainReport, train};
pub use run::{Kind, MetricsLine, Run};

/// What every operation is handed besides its inputs: the device it computes on and where it
/// reports progress and looks for a stop request.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// The device tensors are made on (see [`crate::device::select`]).
    pub device: Device,
    /// Progress observer and stop flag.
    pub control: Control,
}

impl Ctx {
    /// Computes on `device`, silently, never stopped.
    pub fn new(device: Device) -> Self {
        Self {
            device,
            control: Control::default(),
        }
    }
    /// The CPU backend every build has (`flex`, else the first compiled CPU backend), silent.
    pub fn cpu() -> anyhow::Result<Self> {
        let sel = crate::device::select(crate::device::DeviceChoice::Flex)
            .or_else(|_| crate::device::select(crate::device::DeviceChoice::Auto))?;
        Ok(Self::new(sel.device))
    }
    /// The same context reporting to `control`.
    pub fn with_control(mut self, control: Control) -> Self {
        self.control = control;
        self
    }
}
