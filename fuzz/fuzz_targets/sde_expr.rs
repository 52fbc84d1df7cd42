//! Single SDE expressions (the strings inside a user SDE file) and `--param name=value`
//! overrides, without the TOML layer, so that the fuzzer spends its time in the expression
//! parser (`evalexpr` tree building and our lowering, folding and printing).
//!
//! Input: one selector byte, then the expression text. The scope is `dim = 3`, `inputs = 2`,
//! parameters `alpha`, `beta`, `sigma`; selector bit 0 forbids `z`, bit 1 forbids `u`.
#![no_main]

use attractor_parsers::sde::expr::{Expr, ExprScope, parse_param_override};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, payload)) = data.split_first() else {
        return;
    };
    let Ok(src) = std::str::from_utf8(payload) else {
        return;
    };
    let _ = parse_param_override(src);
    let params = [
        ("alpha".to_string(), 1.0),
        ("beta".to_string(), 0.5),
        ("sigma".to_string(), -0.3),
    ];
    let scope = ExprScope {
        dim: 3,
        inputs: 2,
        params: &params,
        allow_z: sel & 1 == 0,
        allow_u: sel & 2 == 0,
    };
    let Ok(e) = Expr::parse(src, &scope) else {
        return;
    };
    let _ = e.eval(&[0.5, -1.0, 2.0], &[0.25, 0.0]);
    let _ = (
        e.is_constant(),
        e.depends_on_z(),
        e.depends_on_u(),
        e.integer_power(),
    );
    // The printed form is what `sde check` shows; parsing it again must not panic either.
    let printed = e.to_string();
    let _ = Expr::parse(&printed, &scope);
    let _ = e.simplify();
});
