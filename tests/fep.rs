//! FEP attractor networks: numerics (spec checks A1–A3) and short versions of Sims 1 and 3.

mod common;

use attractor::analysis::fep::{asymmetry, attractors, corr, relax};
use attractor::models::cb::{langevin, sample_t};
use attractor::models::fep::{FepConfig, FepTrainer, Order, Rule, UpdateOrder};
use attractor::rng::Rng;
use attractor::train::Trainable;
use attractor::transfer::{tensor2_f32, to_vec_f32};

/// A2: the batched tensor sampler has mean L(θ) (10⁶ draws) and stays in [−1, 1].
#[test]
fn cb_sampler_means_match_langevin() {
    let dev = common::cpu();
    let thetas = [-5.0f64, -1.0, 0.0, 0.5, 3.0, 50.0];
    let per = 1_000_000usize;
    let mut rng = Rng::new(8);
    for &t in &thetas {
        let u: Vec<f32> = (0..per).map(|_| rng.uniform(0.0, 1.0) as f32).collect();
        let th = tensor2_f32(vec![t as f32; per], 1, per, &dev);
        let s = to_vec_f32(&sample_t(th, tensor2_f32(u, 1, per, &dev))).unwrap();
        assert!(
            s.iter().all(|x| (-1.0..=1.0).contains(x)),
            "sample out of range at θ = {t}"
        );
        let m = s.iter().map(|&x| x as f64).sum::<f64>() / per as f64;
        assert!(
            (m - langevin(t)).abs() < 3e-3,
            "θ = {t}: mean {m} vs L = {}",
            langevin(t)
        );
        if t == 0.0 {
            // Uniform on [-1, 1]: variance 1/3.
            let v = s.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / per as f64;
            assert!((v - 1.0 / 3.0).abs() < 3e-3, "variance {v} at θ = 0");
        }
    }
}

/// Tensor L(θ) agrees with the f64 reference on both branches.
#[test]
fn tensor_langevin_matches_f64() {
    let dev = common::cpu();
    let xs: Vec<f32> = (-300..=300)
        .map(|i| i as f32 * 0.05)
        .chain([1e-4, -1e-4, 0.0, 80.0])
        .collect();
    let n = xs.len();
    let got = to_vec_f32(&attractor::models::cb::langevin_t(tensor2_f32(
        xs.clone(),
        1,
        n,
        &dev,
    )))
    .unwrap();
    for (x, g) in xs.iter().zip(&got) {
        assert!(
            (*g as f64 - langevin(*x as f64)).abs() < 2e-6,
            "L({x}) = {g}"
        );
    }
}

/// Tensor ψ(θ) agrees with the f64 reference on both branches.
#[test]
fn tensor_log_partition_matches_f64() {
    use attractor::models::cb::{log_partition, log_partition_t};
    let dev = common::cpu();
    let xs: Vec<f32> = (-400..=400)
        .map(|i| i as f32 * 0.1)
        .chain([1e-4, 0.0])
        .collect();
    let n = xs.len();
    let got = to_vec_f32(&log_partition_t(tensor2_f32(xs.clone(), 1, n, &dev))).unwrap();
    for (x, g) in xs.iter().zip(&got) {
        let want = log_partition(*x as f64);
        assert!(
            (*g as f64 - want).abs() < 1e-5 * want.abs().max(1.0),
            "psi({x}) = {g}, want {want}"
        );
    }
}

/// The Sim-1 toy patterns: vertical and horizontal centre lines on 5×5, z-scored.
fn sim1_patterns() -> Vec<f64> {
    let mut out = Vec::new();
    for vertical in [true, false] {
        let mut p = [0.0; 25];
        for k in 0..5 {
            let idx = if vertical { k * 5 + 2 } else { 2 * 5 + k };
            p[idx] = 1.0;
        }
        p[12] = 4.0;
        let m = p.iter().sum::<f64>() / 25.0;
        let sd = (p.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 25.0).sqrt();
        out.extend(p.iter().map(|x| (x - m) / sd));
    }
    out
}

/// Spec checks 4 (Sim 1) and A3: after training, the two attractors are decorrelated
/// (paper r = −0.19; band [−0.45, 0.05], median over 5 networks), although the patterns
/// correlate at r = 0.77; relaxation converges.
#[test]
fn sim1_attractors_orthogonalise() {
    let dev = common::cpu();
    let pats = sim1_patterns();
    let r_data = corr(&pats[..25], &pats[25..]);
    assert!((r_data - 0.77).abs() < 0.01, "pattern correlation {r_data}");
    let cfg = FepConfig::new()
        .with_evidence(30.0)
        .with_beta(0.1)
        .with_lr(0.01)
        .with_epochs(500)
        .with_steps_per_epoch(10)
        .with_networks(5)
        .with_seed(1);
    let mut t = FepTrainer::new(&cfg, pats.clone(), 25, &dev).unwrap();
    for e in 0..cfg.epochs {
        t.step(e).unwrap();
    }
    let scaled: Vec<f64> = pats.iter().map(|x| x * cfg.evidence).collect();
    let mut rs = Vec::new();
    let mut rng = Rng::new(2);
    for k in 0..5 {
        let j = t.j_host(k).unwrap();
        let (all, _) = attractors(&j, 25, &scaled, &[0.0], &mut rng);
        assert_eq!(all.len(), 2, "relaxation did not converge (A3)");
        rs.push(corr(&all[0], &all[1]));
    }
    rs.sort_by(|a, b| a.total_cmp(b));
    let med = rs[2];
    eprintln!("Sim 1: attractor correlations {rs:?}, median {med:.3} (data {r_data:.2})");
    assert!(
        (-0.45..=0.05).contains(&med),
        "median attractor correlation {med}"
    );
    // Hebbian baseline (spec check 5): attractors stay correlated or collapse.
    let hcfg = cfg.clone().with_rule(Rule::Hebbian).with_networks(1);
    let mut h = FepTrainer::new(&hcfg, pats.clone(), 25, &dev).unwrap();
    for e in 0..hcfg.epochs {
        h.step(e).unwrap();
    }
    let jh = h.j_host(0).unwrap();
    // Match the weight norm of an FEP network.
    let jf = t.j_host(0).unwrap();
    let scale =
        (jf.iter().map(|x| x * x).sum::<f64>() / jh.iter().map(|x| x * x).sum::<f64>()).sqrt();
    let jh: Vec<f64> = jh.iter().map(|x| x * scale).collect();
    let (all, distinct) = attractors(&jh, 25, &scaled, &[0.0], &mut rng);
    let rh = if all.len() == 2 {
        corr(&all[0], &all[1])
    } else {
        1.0
    };
    eprintln!(
        "Sim 1 Hebbian baseline: attractor correlation {rh:.3}, distinct {}",
        distinct.len()
    );
    assert!(
        rh >= 0.6 || distinct.len() == 1 || rh.is_nan(),
        "Hebbian attractors decorrelated ({rh})"
    );
    assert!(
        relax(
            &jf,
            25,
            &[0.0; 25],
            1.0,
            &all[0].iter().map(|x| x * 0.5).collect::<Vec<_>>(),
            1000,
            1e-12
        )
        .is_some()
    );
}

/// Sim 3 (short): cyclic presentation of three patterns, one step each, makes J asymmetric;
/// random order keeps it more symmetric (spec checks 10 and 12).
#[test]
fn sequential_input_makes_couplings_asymmetric() {
    let dev = common::cpu();
    let mut rng = Rng::new(5);
    let n = 64;
    // Three random z-scored patterns (the digit version runs in scripts/fep_reproduce.sh).
    let pats = common::zscored_patterns(&mut rng, 3, n);
    let run = |order: Order| {
        let cfg = FepConfig::new()
            .with_evidence(20.0)
            .with_beta(1.0)
            .with_lr(0.001)
            .with_epochs(2000)
            .with_steps_per_epoch(1)
            .with_order(order);
        let mut t = FepTrainer::new(&cfg, pats.clone(), n, &dev).unwrap();
        for e in 0..cfg.epochs {
            t.step(e).unwrap();
        }
        asymmetry(&t.j_host(0).unwrap(), n)
    };
    let a_seq = run(Order::Sequential);
    let a_rand = run(Order::Random);
    eprintln!("Sim 3: asymmetry sequential {a_seq:.3}, random {a_rand:.3}");
    assert!(a_seq > 0.7, "sequential asymmetry {a_seq}");
    assert!(
        a_rand < a_seq,
        "random-order J ({a_rand}) not more symmetric than sequential ({a_seq})"
    );
}

/// The sequential (node-by-node) schedule also trains Sim 1 to decorrelated attractors; the
/// paper form of the rule trains to two attractors per network (not reliably decorrelated);
/// precision weighting runs and keeps couplings finite.
#[test]
fn sequential_schedule_and_paper_rule_train_sim1() {
    let dev = common::cpu();
    let pats = sim1_patterns();
    let scaled: Vec<f64> = pats.iter().map(|x| x * 30.0).collect();
    let base = FepConfig::new()
        .with_evidence(30.0)
        .with_beta(0.1)
        .with_lr(0.01)
        .with_epochs(500)
        .with_steps_per_epoch(10)
        .with_networks(3)
        .with_seed(4);
    for (label, cfg) in [
        (
            "sequential",
            base.clone().with_schedule(UpdateOrder::Sequential),
        ),
        ("paper", base.clone().with_rule(Rule::Paper)),
        (
            "precision-weighted",
            base.clone().with_precision_weighting(true).with_epochs(100),
        ),
    ] {
        let mut t = FepTrainer::new(&cfg, pats.clone(), 25, &dev).unwrap();
        for e in 0..cfg.epochs {
            t.step(e).unwrap();
        }
        let mut rs = Vec::new();
        let mut rng = Rng::new(2);
        for k in 0..3 {
            let j = t.j_host(k).unwrap();
            assert!(
                j.iter().all(|x| x.is_finite()),
                "{label}: non-finite couplings"
            );
            let (all, _) = attractors(&j, 25, &scaled, &[0.0], &mut rng);
            if all.len() == 2 {
                rs.push(corr(&all[0], &all[1]));
            }
        }
        rs.sort_by(|a, b| a.total_cmp(b));
        eprintln!("{label}: attractor correlations {rs:?}");
        if label != "precision-weighted" {
            assert_eq!(rs.len(), 3, "{label}: relaxation did not converge");
        }
        // The paper form does not reliably decorrelate at these settings: over seeds 1–7 its
        // attractor pairs come out anywhere from r = −1 to +1 (an earlier pass at seed 4 was
        // luck of the random stream), so only the node-by-node schedule is held to it.
        if label == "sequential" {
            assert!(
                rs[1] <= 0.05,
                "{label}: median attractor correlation {}",
                rs[1]
            );
        }
    }
}

/// Sim 4, short: the balanced Sim-2 networks (digits, evidence 11, iT 0.1668, 5000 × 10
/// steps) keep learning for 50 000 more steps with zero input. At iT 1, as the authors'
/// notebook 06 runs it, the couplings stay (off-diagonal correlation before/after 0.973 there
/// and in `scripts/fep_reproduce.sh`); at the training iT 0.1668 the free run unlearns what it
/// visits (the code-form error has mean L(βh) − L(h), opposite to h for β < 1): 0.85.
#[test]
fn sim4_free_run_keeps_couplings_at_unit_precision() {
    let t = common::tmpdir("fepsim4");
    let dir = |s: &str| t.join(s).to_str().unwrap().to_string();
    let train = |run: &str, extra: &[&str]| {
        let mut a = vec![
            "--device",
            "flex",
            "--quiet",
            "fep",
            "train",
            "--evidence",
            "11",
            "--lr",
            "0.001",
            "--epochs",
            "5000",
            "--networks",
            "3",
            "--run-dir",
            run,
            "--overwrite",
        ];
        a.extend_from_slice(extra);
        let o = common::attractor(&a);
        assert!(o.status.success(), "{}", common::stderr(&o));
    };
    let (b, free1, free0) = (dir("balanced"), dir("free1"), dir("free0"));
    train(&b, &["--beta", "0.1668"]);
    let init = format!("init_from={b}");
    let free = ["--set", init.as_str(), "--set", "input=none"];
    train(&free1, &[&["--beta", "1"][..], &free[..]].concat());
    train(&free0, &[&["--beta", "0.1668"][..], &free[..]].concat());
    let couplings = |run: &str| {
        let o = common::attractor(&["--quiet", "export", "--run-dir", run, "--format", "npy"]);
        assert!(o.status.success(), "{}", common::stderr(&o));
        attractor::npy::read_npy(&std::path::Path::new(run).join("export").join("J.npy")).unwrap()
    };
    let jb = couplings(&b);
    let (g, n) = (jb.shape[0], jb.shape[1]);
    let offdiag_corr = |ja: &attractor::npy::NpyArray, k: usize| {
        let pick = |a: &attractor::npy::NpyArray| -> Vec<f64> {
            (0..n * n)
                .filter(|e| e / n != e % n)
                .map(|e| a.data[k * n * n + e])
                .collect()
        };
        corr(&pick(&jb), &pick(ja))
    };
    let (j1, j0) = (couplings(&free1), couplings(&free0));
    let c1: Vec<f64> = (0..g).map(|k| offdiag_corr(&j1, k)).collect();
    let c0: Vec<f64> = (0..g).map(|k| offdiag_corr(&j0, k)).collect();
    eprintln!("Sim 4: corr(J before, after) at iT 1 {c1:.3?}, at iT 0.1668 {c0:.3?}");
    assert!(c1.iter().all(|&c| c > 0.95), "iT 1 free run lost J: {c1:?}");
    assert!(
        c0.iter().all(|&c| c < 0.92),
        "iT 0.1668 free run no longer unlearns: {c0:?}"
    );
}
