//! Short versions of the DDM reproduction checks (the long ones are scripts/ddm_reproduce.sh).

mod common;

use attractor::api::Ctx;
use attractor::api::ddm::{EvalOptions, evaluate as metrics};
use attractor::models::ddm::{Ddm, DdmConfig, DdmTrainer};
use attractor::train::Trainable;

fn train(cfg: &DdmConfig) -> DdmTrainer {
    let mut t = DdmTrainer::new(cfg, &common::cpu()).unwrap();
    for s in 0..cfg.iters {
        t.step(s).unwrap();
    }
    t
}

fn args(t_end: f64, k: usize) -> EvalOptions {
    EvalOptions {
        t_end: Some(t_end),
        trajectories: k,
        points: 20000,
        burn_in: 10.0,
        seed: None,
    }
}

/// `ddm eval`'s metrics of `ddm` drawn from `seed`, as they are written to `eval.json`.
fn evaluate(ddm: &Ddm, o: &EvalOptions, seed: u64) -> serde_json::Value {
    let o = EvalOptions {
        seed: Some(seed),
        ..o.clone()
    };
    let m = metrics(ddm, &o, &Ctx::new(common::cpu())).unwrap();
    serde_json::to_value(m).unwrap()
}

/// Spec check 3 (short): rotated OU, θ = 1: drift error < 1e-2, EPR 2θ²/a = 2 within 10 %,
/// stationary covariance within 5 % of 0.5 I; the symmetric control cannot rotate.
#[test]
fn rotated_ou_is_embedded_with_its_entropy_production() {
    let cfg = DdmConfig::new()
        .with_sde(attractor::sde::builtin::Kind::OuRot.into())
        .with_neurons(200)
        .with_iters(300)
        .with_pool_size(20000);
    let t = train(&cfg);
    let r = evaluate(&t.ddm, &args(400.0, 64), 1);
    let err = r["drift_rel_err"].as_f64().unwrap();
    let epr = r["epr_model"].as_f64().unwrap();
    let cov = r["cov_model"].as_array().unwrap();
    eprintln!("rotated OU: drift_rel_err {err:.3e}, epr_model {epr:.3}, cov {cov:?}");
    assert!(err < 1e-2, "drift error {err}");
    assert!((epr - 2.0).abs() < 0.2, "EPR {epr}, expected 2.0 ± 10 %");
    for (i, want) in [0.5, 0.0, 0.0, 0.5].iter().enumerate() {
        let got = cov[i].as_f64().unwrap();
        assert!(
            (got - want).abs() < 0.025,
            "cov[{i}] = {got}, expected {want} ± 5 % of 0.5"
        );
    }
    assert!(r["diffusion_rel_err"].as_f64().unwrap() < 1e-2);
    assert!(r["asymmetry_index"].as_f64().unwrap() > 0.0);
    // Symmetric control: the drift error stays large (no rotation possible).
    let sym = train(
        &cfg.clone()
            .with_connectivity(attractor::models::ctrnn::Connectivity::Symmetric)
            .with_iters(300)
            .with_lr(1e-2),
    );
    let rs = evaluate(&sym.ddm, &args(50.0, 8), 1);
    let es = rs["drift_rel_err"].as_f64().unwrap();
    eprintln!("symmetric control: drift_rel_err {es:.3}");
    assert!(
        es >= 0.3,
        "symmetric control reached drift error {es}; it should not be able to rotate"
    );
}

/// Spec check 4 (short): double well, σ = 0.7: the network's latent histogram matches the exact
/// stationary density (L1 < 0.05) and the EPR vanishes.
#[test]
fn double_well_matches_the_exact_stationary_density() {
    let cfg = DdmConfig::new()
        .with_sde(attractor::sde::builtin::Kind::DoubleWell.into())
        .with_neurons(200)
        .with_iters(300)
        .with_pool_size(20000);
    let t = train(&cfg);
    let r = evaluate(&t.ddm, &args(500.0, 64), 2);
    let err = r["drift_rel_err"].as_f64().unwrap();
    let l1 = r["hist_l1_exact"].as_f64().unwrap();
    let epr = r["epr_model"].as_f64().unwrap();
    eprintln!(
        "double well: drift_rel_err {err:.3e}, hist_l1_exact {l1:.4}, epr {epr:.4}, residence {} vs {}",
        r["mean_residence_model"], r["mean_residence_target"]
    );
    assert!(err < 1e-2, "drift error {err}");
    assert!(l1 < 0.05, "histogram L1 to the exact density {l1}");
    assert!(epr.abs() < 0.05, "EPR {epr} should vanish at equilibrium");
}

/// Spec check 7 (short): input-driven switching between K = 3 memories in the full network.
#[test]
fn input_pulses_switch_between_memories() {
    use attractor::analysis::ddm::switch_protocol;
    use attractor::rng::Rng;
    let cfg = DdmConfig::new()
        .with_sde(attractor::sde::builtin::Kind::MultiwellSwitch.into())
        .with_neurons(200)
        .with_iters(800)
        .with_pool_size(20000);
    let t = train(&cfg);
    let mut rng = Rng::new(3);
    let (ok, spont) = switch_protocol(&t.ddm, false, 30, 3.0, 10.0, 50.0, &mut rng).unwrap();
    let (ok_t, _) = switch_protocol(&t.ddm, true, 30, 3.0, 10.0, 50.0, &mut rng).unwrap();
    eprintln!("switching: network {ok:.3} (target SDE {ok_t:.3}), spontaneous {spont:.3}");
    assert!(
        ok_t >= 0.95,
        "the target itself does not switch ({ok_t}): protocol broken"
    );
    assert!(ok >= 0.95, "network switch success {ok}");
    assert!(spont < 0.05, "spontaneous switches {spont}");
}
