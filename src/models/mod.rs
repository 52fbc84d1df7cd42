//! Model families. Models know nothing of files, the CLI or printing.

pub mod ctrnn;
pub mod ddm;
