//! `src/sde/` of the main crate: only the expression and TOML parser (the rest of the module is
//! Burn code).

#[path = "../../../src/sde/expr.rs"]
pub mod expr;
