//! DDM model tests: least-squares anchor, manifold invariance, resume equivalence, backends.

mod common;

use attractor::checkpoint;
use attractor::models::ctrnn::NetworkSde;
use attractor::models::ddm::{DdmConfig, DdmTrainer, objective, ridge_init};
use attractor::optim::AdamState;
use attractor::rng::Rng;
use attractor::run::{RunDir, RunMeta};
use attractor::sde::Sde;
use attractor::sde::solver::EulerMaruyama;
use attractor::train::{self, DriverOptions, Trainable};
use attractor::transfer::{tensor2, to_vec_f32};
use burn::tensor::Tensor;

fn small_cfg() -> DdmConfig {
    DdmConfig::new()
        .with_sde(attractor::sde::builtin::Kind::OuRot.into())
        .with_neurons(40)
        .with_batch(256)
        .with_iters(40)
        .with_pool_size(4000)
        .with_pool_chains(200)
        .with_burn_in(5.0)
        .with_ridge_points(2000)
        .with_checkpoint_every(10)
        .with_log_every(5)
}

/// Spec check 1: with U, h fixed, Adam on the DDM loss reaches the closed-form ridge optimum
/// (within 5 %) on the same points.
#[test]
fn adam_reaches_the_ridge_optimum() {
    let dev = common::cpu();
    let cfg = small_cfg()
        .with_lambda_w(1e-3)
        .with_lambda_diff(0.0)
        .with_init(attractor::models::ddm::Init::Zero);
    let mut tr = DdmTrainer::new(&cfg, &dev).unwrap();
    let mut rng = Rng::new(5);
    let (z, u) = tr.sample_points(1000, &mut rng);
    let mut opt_ddm = tr.ddm.clone();
    let j_star = ridge_init(&mut opt_ddm, &z, u.as_ref()).unwrap();
    // Adam from zero on the full fixed batch.
    let f = tr.ddm.target.drift(z.clone(), None);
    let ggt = tr.target_ggt(&z);
    let names = ["read", "c"];
    let mut adam = AdamState::new(&[
        ("read", tr.ddm.net.param("read")),
        ("c", tr.ddm.net.param("c")),
    ]);
    let acfg = cfg.adam();
    let iters = 10000u64;
    let mut last = f64::NAN;
    for t in 0..iters {
        let lr = attractor::optim::Schedule::Cosine.lr(3e-2, 1e-4, t, iters);
        let tracked = tr.ddm.net.tracked(&names);
        let l = objective(&tracked, &cfg, z.clone(), None, f.clone(), &ggt, 1.0);
        let grads = l.total.backward();
        last = to_vec_f32(&l.total.clone().inner()).unwrap()[0] as f64;
        let grads = names
            .iter()
            .map(|n| {
                (
                    tracked.param(n).id,
                    tracked.get(n).grad(&grads).unwrap(),
                    &acfg,
                )
            })
            .collect();
        tr.ddm.net = adam.step(tr.ddm.net.clone(), grads, lr).unwrap();
    }
    // The closed-form optimum evaluated by the same f32 loss code.
    let at_opt = objective(&opt_ddm.net, &cfg, z.clone(), None, f, &ggt, 1.0);
    let j_opt_f32 = to_vec_f32(&at_opt.total).unwrap()[0] as f64;
    assert!(
        (j_opt_f32 - j_star).abs() <= 1e-3 * j_star.max(1e-6) + 1e-6,
        "loss code disagrees with f64 ridge: {j_opt_f32} vs {j_star}"
    );
    eprintln!(
        "least-squares anchor: Adam {last:.6e}, closed-form ridge {j_star:.6e}, ratio {:.4}",
        last / j_star
    );
    assert!(
        last <= 1.05 * j_star,
        "Adam loss {last} is not within 5 % of the ridge optimum {j_star}"
    );
    assert!(
        last >= 0.999 * j_star - 1e-7,
        "Adam beat the exact optimum ({last} < {j_star}): the loss or the solve is wrong"
    );
}

/// Spec check 2: the latent subspace is invariant and attracting (rate 1/τ), and with
/// P⊥Σ = 0 noise never leaves it.
#[test]
fn manifold_is_invariant_and_attracting() {
    let dev = common::cpu();
    let cfg = small_cfg().with_neurons(200).with_tau(1.0);
    let tr = DdmTrainer::new(&cfg, &dev).unwrap();
    let net = &tr.ddm.net;
    let n = 200usize;
    let mut rng = Rng::new(9);
    let z0 = tensor2(&[0.5, -0.3], 1, 2, &dev);
    let on = net.embed(z0, None);
    let delta: Vec<f64> = rng.normal_vec_f64(n);
    let delta = tensor2(&delta, 1, n, &dev);
    let u = net.u.val();
    let perp = |x: Tensor<2>| {
        x.clone()
            - x.matmul(u.clone())
                .matmul(u.clone().transpose())
                .div_scalar(n as f64)
    };
    let delta = perp(delta);
    let off = |x: &Tensor<2>| -> f64 {
        let v = to_vec_f32(&(perp(x.clone()) - net.h.val())).unwrap();
        v.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt()
    };
    let sde = NetworkSde(net);
    let dt = 1e-3;
    let em = EulerMaruyama::new(dt, 0.0).unwrap();
    let mut x = on.clone() + delta;
    let d0 = off(&x);
    for _ in 0..2000 {
        x = em.step(&sde, x, None, &mut rng);
    }
    let d2 = off(&x);
    let rate = (d0 / d2).ln() / 2.0;
    eprintln!("manifold invariance: transverse decay rate {rate:.4} (1/tau = 1)");
    // EM's discrete decay (1 - dt)^(t/dt) differs from e^{-t} by O(dt); the check is 5 %.
    assert!(
        (rate - 1.0).abs() < 0.05,
        "transverse decay rate {rate}, expected 1/τ = 1"
    );
    // Noise confined to span(U): the state never leaves the manifold (f32 rounding only).
    let em = EulerMaruyama::new(1e-2, 1.0).unwrap();
    let mut x = on;
    let mut worst: f64 = 0.0;
    for _ in 0..500 {
        x = em.step(&sde, x, None, &mut rng);
        worst = worst.max(off(&x) / (n as f64).sqrt());
    }
    eprintln!("manifold invariance: max RMS off-manifold deviation with noise {worst:.3e}");
    // RMS per neuron; f32 rounding of O(1) activities is ~1e-7.
    assert!(
        worst < 1e-5,
        "state left the manifold: RMS off-manifold deviation {worst}"
    );
}

fn params(t: &DdmTrainer) -> Vec<f32> {
    let mut v = Vec::new();
    for n in ["read", "c", "A"] {
        v.extend(to_vec_f32(t.ddm.net.get(n)).unwrap());
    }
    v
}

/// Resume after an interruption ends with exactly the parameters of an uninterrupted run.
#[test]
fn resume_is_bit_exact_on_cpu() {
    let dev = common::cpu();
    let cfg = small_cfg();
    let opts = |until| DriverOptions {
        total_steps: cfg.iters,
        until,
        checkpoint_every: 7,
        log_every: 5,
        keep: 2,
        milestones: Vec::new(),
        milestone_dir: "milestones",
        tensorboard: true,
    };
    let meta = RunMeta {
        model: "ddm".into(),
        version: "test".into(),
        seed: 0,
    };
    // Uninterrupted.
    let da = common::tmpdir("resume-a");
    let ra = RunDir::create(&da, false).unwrap();
    ra.write_config(&meta, &cfg).unwrap();
    let mut a = DdmTrainer::new(&cfg, &dev).unwrap();
    train::run(&mut a, &ra, 0, &opts(None), &Default::default()).unwrap();
    // Interrupted at 23 (last checkpoint at 21), then resumed in a fresh trainer.
    let db = common::tmpdir("resume-b");
    let rb = RunDir::create(&db, false).unwrap();
    rb.write_config(&meta, &cfg).unwrap();
    let mut b = DdmTrainer::new(&cfg, &dev).unwrap();
    train::run(&mut b, &rb, 0, &opts(Some(23)), &Default::default()).unwrap();
    drop(b);
    let mut c = DdmTrainer::for_resume(&cfg, &dev).unwrap();
    let start = train::restore_latest(&mut c, &rb).unwrap();
    assert_eq!(start, 23);
    train::run(&mut c, &rb, start, &opts(None), &Default::default()).unwrap();
    assert_eq!(
        params(&a),
        params(&c),
        "resumed run differs from the uninterrupted one"
    );
    // Metrics of the resumed run agree line by line on the loss.
    let la = std::fs::read_to_string(ra.file("metrics.jsonl")).unwrap();
    let lb = std::fs::read_to_string(rb.file("metrics.jsonl")).unwrap();
    let loss = |s: &str| -> Vec<(u64, f64)> {
        s.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .map(|v| (v["step"].as_u64().unwrap(), v["loss"].as_f64().unwrap()))
            .collect()
    };
    assert_eq!(loss(&la), loss(&lb));
    // The checkpoint restores the same state it was written from.
    let ck = checkpoint::load_latest(rb.path()).unwrap().unwrap();
    assert_eq!(ck.step, 40);
    assert_eq!(ck, c.checkpoint(40).unwrap());
}

/// The same seed gives the same numbers on the CPU.
#[test]
fn same_seed_same_numbers() {
    let dev = common::cpu();
    let cfg = small_cfg().with_iters(5);
    let run = |seed| {
        let mut t = DdmTrainer::new(&cfg.clone().with_seed(seed), &dev).unwrap();
        for s in 0..5 {
            t.step(s).unwrap();
        }
        params(&t)
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}

/// The closed-form gradients equal Burn's autodiff gradients (with inputs and normalisation).
#[test]
fn analytic_gradients_match_autodiff() {
    use attractor::models::ddm::analytic_grads;
    let dev = common::cpu();
    for (sde, norm) in [("multiwell-switch", true), ("lorenz", false)] {
        let cfg = small_cfg()
            .with_sde(attractor::config::Source::parse(sde).unwrap())
            .with_normalize_drift(norm)
            .with_lambda_w(1e-3)
            .with_init(attractor::models::ddm::Init::Zero);
        let mut tr = DdmTrainer::new(&cfg, &dev).unwrap();
        // Non-trivial parameters.
        let mut rng = Rng::new(2);
        for name in ["read", "c", "A", "M"] {
            let [r, c] = tr.ddm.net.get(name).dims();
            let v: Vec<f64> = rng.normal_vec_f64(r * c);
            tr.ddm.net.set(name, tensor2(&v, r, c, &dev));
        }
        let (z, u) = tr.sample_points(300, &mut rng);
        let f = tr.ddm.target.drift(z.clone(), u.clone());
        let ggt = tr.target_ggt(&z);
        let (la, ga) = analytic_grads(
            &tr.ddm.net,
            &cfg,
            z.clone(),
            u.as_ref(),
            f.clone(),
            &ggt,
            tr.drift_norm(),
        );
        let names: Vec<&str> = ga.iter().map(|(n, _)| *n).collect();
        let tracked = tr.ddm.net.tracked(&names);
        let lb = objective(&tracked, &cfg, z, u.as_ref(), f, &ggt, tr.drift_norm());
        let grads = lb.total.backward();
        let ta = to_vec_f32(&la.total).unwrap()[0];
        let tb = to_vec_f32(&lb.total.inner()).unwrap()[0];
        assert!(
            (ta - tb).abs() <= 1e-5 * tb.abs(),
            "{sde}: loss {ta} vs {tb}"
        );
        for (name, g) in ga {
            let a = to_vec_f32(&g).unwrap();
            let b = to_vec_f32(&tracked.get(name).grad(&grads).unwrap()).unwrap();
            let scale = b.iter().map(|x| x.abs()).fold(0f32, f32::max).max(1e-12);
            let err = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(
                err <= 1e-4 * scale,
                "{sde}: gradient of {name} differs by {err} (scale {scale})"
            );
        }
    }
}

/// Full-rank W with the off-manifold penalty: training reduces both the drift loss and the
/// off-manifold drift (autodiff path).
#[test]
fn full_rank_option_trains_with_off_manifold_penalty() {
    let dev = common::cpu();
    let cfg = small_cfg()
        .with_connectivity(attractor::models::ctrnn::Connectivity::FullRank)
        .with_iters(60)
        .with_lr(1e-2)
        .with_lambda_w(1e-6);
    let mut tr = DdmTrainer::new(&cfg, &dev).unwrap();
    assert!(!tr.analytic());
    // Start from a random dense W so that the off-manifold part is not zero.
    let mut rng = Rng::new(4);
    let w: Vec<f64> = rng
        .normal_vec_f64(40 * 40)
        .into_iter()
        .map(|x| x * 0.3)
        .collect();
    tr.ddm.net.set("read", tensor2(&w, 40, 40, &dev));
    let (z, _) = tr.sample_points(256, &mut rng);
    let off = |t: &DdmTrainer| -> f64 {
        let v = to_vec_f32(&t.ddm.net.off_manifold(z.clone(), None)).unwrap();
        v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>()
    };
    let off0 = off(&tr);
    let first = tr.step(0).unwrap().loss().unwrap();
    let mut last = first;
    for s in 1..60 {
        last = tr.step(s).unwrap().loss().unwrap();
    }
    let off1 = off(&tr);
    assert!(last < 0.5 * first, "loss {first} -> {last}");
    assert!(off1 < 0.5 * off0, "off-manifold drift {off0} -> {off1}");
}
