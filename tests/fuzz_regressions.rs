//! Every crash, overflow or huge allocation the fuzz targets in `fuzz/` led to, fed again as the
//! exact reproducer kept in `fuzz/regressions/<target>/` (see `fuzz/README.md`). Each must now
//! be a clear error. Inputs start with the target's selector byte where the target has one.

use std::path::Path;

use attractor::checkpoint::Checkpoint;
use attractor::config;
use attractor::data::{images, patterns};
use attractor::npy::{self, NpyError};
use attractor::sde::expr::{self, Expr, ExprError, ExprScope};

macro_rules! input {
    ($target:literal / $name:literal) => {
        include_bytes!(concat!("../fuzz/regressions/", $target, "/", $name)).as_slice()
    };
}

/// The input without its selector byte.
fn payload(input: &[u8]) -> &[u8] {
    &input[1..]
}

#[test]
fn checkpoint_shape_product_overflow() {
    // Shape [2^32, 2^32]: the element count overflowed usize (a panic in debug builds, a
    // wrapped-around 0 in release builds, accepting a tensor without data).
    let err = Checkpoint::from_bytes(payload(input!("checkpoint" / "shape-product-overflow")))
        .expect_err("must be refused");
    assert!(format!("{err:#}").contains("is too large"), "{err:#}");
}

#[test]
fn checkpoint_shape_bytes_overflow() {
    // Shape [2^62]: the element count fits but its byte size (×4) wrapped around to 0.
    let err = Checkpoint::from_bytes(payload(input!("checkpoint" / "shape-bytes-overflow")))
        .expect_err("must be refused");
    assert!(format!("{err:#}").contains("is too large"), "{err:#}");
}

#[test]
fn npy_header_tuple_nesting() {
    // 7600 nested `(` in the header: the recursive-descent parser overflowed the stack.
    let err = npy::parse_npy(input!("npy" / "header-tuple-nesting-7600")).expect_err("refused");
    match err {
        NpyError::BadHeader(m) => assert!(m.contains("nested more than 32 deep"), "{m}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn config_set_key_with_13000_dots() {
    // `--set ....=1`: one nested JSON object per dot, dropped recursively: a stack overflow.
    let text = std::str::from_utf8(input!("config" / "set-key-13000-dots")).unwrap();
    let set = text.split('\0').nth(1).unwrap();
    let err = config::parse_set(set).expect_err("refused");
    assert!(
        format!("{err:#}").contains("nest at most 16 deep"),
        "{err:#}"
    );
    let defaults = serde_json::json!({"lr": 1.0});
    let err = config::build_from_text(&defaults, None, &[set.to_string()], &[]).unwrap_err();
    assert!(format!("{err:#}").contains("13001 dotted parts"), "{err:#}");
}

fn scope(params: &[(String, f64)]) -> ExprScope<'_> {
    ExprScope {
        dim: 3,
        inputs: 2,
        params,
        allow_z: true,
        allow_u: true,
    }
}

fn expr_error(input: &[u8]) -> String {
    let src = std::str::from_utf8(payload(input)).unwrap();
    let err = Expr::parse(src, &scope(&[])).expect_err("refused");
    err.to_string()
}

#[test]
fn sde_expression_3000_parentheses() {
    // Lowering recursed once per level: a stack overflow. The reproducer (6001 bytes) is now
    // refused for its length; the same nesting within the length limit for its depth.
    let msg = expr_error(input!("sde_expr" / "parens-3000"));
    assert!(msg.contains("6001 bytes long; at most 4096"), "{msg}");
    let deep = format!("{}z1{}", "(".repeat(2000), ")".repeat(2000));
    let msg = Expr::parse(&deep, &scope(&[])).unwrap_err().to_string();
    assert!(msg.contains("nests too deeply (2002 levels"), "{msg}");
}

#[test]
fn sde_expression_3000_unary_minus() {
    // Same overflow; also quadratic parse time, bounded by the length limit.
    let msg = expr_error(input!("sde_expr" / "unary-minus-3000"));
    assert!(msg.contains("nests too deeply"), "{msg}");
    let long = format!("z1{}", "+1".repeat(3000));
    let err = Expr::parse(&long, &scope(&[])).unwrap_err().to_string();
    assert!(err.contains("at most 4096 are accepted"), "{err}");
}

#[test]
fn sde_expression_max_with_2000_arguments() {
    // A shallow call that lowers to a 2000-deep chain: folding and printing overflowed. Within
    // the length limit, 1300 arguments are refused for the depth of the lowered chain.
    let msg = expr_error(input!("sde_expr" / "max-2000-args"));
    assert!(msg.contains("6006 bytes long; at most 4096"), "{msg}");
    let wide = format!("max({}1)", "z1,".repeat(1300));
    let msg = Expr::parse(&wide, &scope(&[])).unwrap_err().to_string();
    assert!(msg.contains("nests too deeply (1301 levels"), "{msg}");
    // An ordinary number of arguments is fine.
    assert!(Expr::parse("max(z1, z2, z3, u1, u2, 0)", &scope(&[])).is_ok());
}

#[test]
fn sde_toml_deep_drift_expression() {
    let text = std::str::from_utf8(input!("sde_toml" / "drift-parens-3000.toml")).unwrap();
    match expr::parse_user_sde(text, Path::new("deep.toml")).expect_err("refused") {
        ExprError::Expr {
            loc, key, message, ..
        } => {
            assert_eq!((loc.line, key.as_str()), (Some(3), "drift.z1"));
            assert!(message.contains("at most 4096 are accepted"), "{message}");
        }
        other => panic!("unexpected {other}"),
    }
    let text = text
        .replacen(&"(".repeat(1000), "", 1)
        .replacen(&")".repeat(1000), "", 1);
    match expr::parse_user_sde(&text, Path::new("deep.toml")).expect_err("refused") {
        ExprError::Expr { message, .. } => {
            assert!(
                message.contains("nests too deeply (2002 levels"),
                "{message}"
            )
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn png_12000x12000_bilevel_image() {
    // A 17 KB 1-bit PNG of 12000×12000 pixels: decoding it allocated 1.15 GB of f64 pixels.
    let png = payload(input!("png" / "grey1-12000x12000"));
    let mut warnings = Vec::new();
    let err = patterns::decode_grey_image(png, Path::new("big.png"), &mut warnings).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("12000x12000") && msg.contains("16777216"),
        "{msg}"
    );
    // And through the folder loaders (`--data DIR`, `--patterns DIR`).
    let dir = std::env::temp_dir().join(format!("attractor-fuzzreg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("big.png"), png).unwrap();
    let err = images::load_source(dir.to_str().unwrap()).unwrap_err();
    let found = err.chain().any(|e| {
        matches!(
            e.downcast_ref::<patterns::PatternError>(),
            Some(patterns::PatternError::ImageTooLarge {
                width: 12000,
                height: 12000,
                ..
            })
        )
    });
    assert!(found, "{err:#}");
    let _ = std::fs::remove_dir_all(&dir);
}
