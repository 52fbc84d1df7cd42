//! Model families. Models know nothing of files, the CLI or printing.

pub mod cb;
pub mod ctrnn;
pub mod ddm;
pub mod fep;
pub mod fep_host;
pub mod nlm;
pub mod nlm_host;
