//! Neural Langevin machine core: spec checks 1 (force = −∇E), 2 (energy descent) and 3 (Gibbs
//! sampling on small N).

mod common;

use attractor::models::nlm::Nlm;
use attractor::rng::Rng;
use attractor::sde::solver::{EulerMaruyama, tensor2, to_vec_f32};

/// f64 reference energy for row-major J [n, n], b [n].
fn energy_f64(j: &[f64], b: &[f64], x: &[f64]) -> f64 {
    let n = x.len();
    (0..n)
        .map(|i| {
            let h: f64 = (0..n).map(|k| j[i * n + k] * x[k].tanh()).sum();
            0.5 * (h + b[i] - x[i]).powi(2)
        })
        .sum()
}

fn force_f64(j: &[f64], b: &[f64], x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let e: Vec<f64> = (0..n)
        .map(|i| (0..n).map(|k| j[i * n + k] * x[k].tanh()).sum::<f64>() + b[i] - x[i])
        .collect();
    (0..n)
        .map(|i| {
            let d = 1.0 - x[i].tanh().powi(2);
            e[i] - d * (0..n).map(|k| j[k * n + i] * e[k]).sum::<f64>()
        })
        .collect()
}

/// Check 1: F = −∇E (finite differences in f64), and the tensor force equals the f64 formula.
#[test]
fn force_is_minus_energy_gradient() {
    let dev = common::cpu();
    let n = 12;
    let mut rng = Rng::new(1);
    let net = Nlm::init(n, 2.0, 1.0, &mut rng, &dev);
    let b: Vec<f64> = rng.normal_vec_f64(n).into_iter().map(|v| 0.3 * v).collect();
    let net = Nlm {
        b: tensor2(&b, 1, n, &dev),
        ..net
    };
    let j: Vec<f64> = to_vec_f32(&net.j)
        .unwrap()
        .into_iter()
        .map(|v| v as f64)
        .collect();
    let x: Vec<f64> = rng.normal_vec_f64(n);
    let f = force_f64(&j, &b, &x);
    let h = 1e-6;
    for i in 0..n {
        let (mut xp, mut xm) = (x.clone(), x.clone());
        xp[i] += h;
        xm[i] -= h;
        let fd = -(energy_f64(&j, &b, &xp) - energy_f64(&j, &b, &xm)) / (2.0 * h);
        assert!(
            (fd - f[i]).abs() <= 1e-4 * f[i].abs().max(1.0),
            "F_{i}: formula {} vs −dE/dx {fd}",
            f[i]
        );
    }
    let ft = to_vec_f32(&net.force(tensor2(&x, 1, n, &dev))).unwrap();
    for i in 0..n {
        assert!(
            (ft[i] as f64 - f[i]).abs() <= 1e-4 * f[i].abs().max(1.0),
            "tensor F_{i} {} vs {}",
            ft[i],
            f[i]
        );
    }
    let et = to_vec_f32(&net.energy(tensor2(&x, 1, n, &dev))).unwrap()[0] as f64;
    let e = energy_f64(&j, &b, &x);
    assert!((et - e).abs() <= 1e-4 * e.max(1.0));
}

/// Check 2: noise-free Euler steps (dt = 0.01) never increase the energy (random J, g = 2).
#[test]
fn noise_free_relaxation_descends_the_energy() {
    let dev = common::cpu();
    let n = 100;
    let mut rng = Rng::new(2);
    let net = Nlm::init(n, 2.0, 1.0, &mut rng, &dev);
    let em = EulerMaruyama::new(0.01, 0.0).unwrap();
    let mut x = tensor2(&rng.normal_vec_f64(8 * n), 8, n, &dev);
    let mut last = to_vec_f32(&net.energy(x.clone())).unwrap();
    let first = last.clone();
    for _ in 0..500 {
        x = em.step(&net, x, None, &mut rng);
        let e = to_vec_f32(&net.energy(x.clone())).unwrap();
        for (a, b) in e.iter().zip(&last) {
            assert!(
                *a <= *b + 1e-6 * b.abs().max(1.0),
                "energy rose from {b} to {a}"
            );
        }
        last = e;
    }
    assert!(
        last.iter().zip(&first).all(|(a, b)| a < b),
        "energy did not fall"
    );
}

/// Check 3: on N = 2 the Langevin chains sample exp(−E/T)/Z (histogram TV distance < 0.02).
#[test]
fn langevin_samples_the_gibbs_measure_on_two_neurons() {
    let dev = common::cpu();
    let j = [0.0, 1.2, -0.7, 0.0];
    let b = [0.3, -0.2];
    let net = Nlm {
        j: tensor2(&j, 2, 2, &dev),
        b: tensor2(&b, 1, 2, &dev),
        temperature: 1.0,
    };
    let em = EulerMaruyama::new(0.001, 1.0).unwrap();
    let chains = 4000;
    let mut rng = Rng::new(3);
    let mut x = tensor2(&rng.normal_vec_f64(chains * 2), chains, 2, &dev);
    for _ in 0..3000 {
        x = em.step(&net, x, None, &mut rng);
    }
    let (lo, hi, bins) = (-4.0f64, 4.0f64, 16usize);
    let w = (hi - lo) / bins as f64;
    let mut hist = vec![0.0; bins * bins];
    let mut total = 0.0;
    for _ in 0..40 {
        for _ in 0..100 {
            x = em.step(&net, x, None, &mut rng);
        }
        let v = to_vec_f32(&x).unwrap();
        for c in v.chunks_exact(2) {
            let (a, bb) = (c[0] as f64, c[1] as f64);
            total += 1.0;
            if a >= lo && a < hi && bb >= lo && bb < hi {
                hist[((bb - lo) / w) as usize * bins + ((a - lo) / w) as usize] += 1.0;
            }
        }
    }
    // Grid density exp(−E) integrated per bin (midpoint rule on a 10×10 sub-grid).
    let mut grid = vec![0.0; bins * bins];
    let sub = 10;
    for by in 0..bins {
        for bx in 0..bins {
            let mut acc = 0.0;
            for sy in 0..sub {
                for sx in 0..sub {
                    let xx = [
                        lo + w * (bx as f64 + (sx as f64 + 0.5) / sub as f64),
                        lo + w * (by as f64 + (sy as f64 + 0.5) / sub as f64),
                    ];
                    acc += (-energy_f64(&j, &b, &xx)).exp();
                }
            }
            grid[by * bins + bx] = acc;
        }
    }
    let zg: f64 = grid.iter().sum();
    let tv: f64 = hist
        .iter()
        .zip(&grid)
        .map(|(h, g)| (h / total - g / zg).abs())
        .sum::<f64>()
        / 2.0;
    eprintln!("Gibbs check: total variation {tv:.4}");
    assert!(tv < 0.02, "total variation distance {tv}");
}

/// Check 4: the contrastive rule is the likelihood gradient. On N = 2 with a quadrature
/// partition function, ⟨Rφ⟩_data − ⟨Rφ⟩_model (R = x − Jφ − b) equals the finite-difference
/// derivative of the mean data log-likelihood with respect to J_ij and b_i; and the tensor
/// implementation used by training computes exactly that formula.
#[test]
fn contrastive_rule_is_the_likelihood_gradient() {
    use attractor::models::nlm::{contrastive_grads, offdiag_mask};
    let n = 2;
    let data: Vec<[f64; 2]> = vec![
        [0.8, -0.3],
        [1.5, 0.9],
        [-0.2, -1.1],
        [0.4, 0.6],
        [-1.3, 0.2],
    ];
    let e_of = |j: &[f64], b: &[f64], x: &[f64; 2]| energy_f64(j, b, x);
    // Grid quadrature of log Z and of model expectations.
    let (lim, m) = (8.0, 500usize);
    let h = 2.0 * lim / m as f64;
    let grid: Vec<[f64; 2]> = (0..m * m)
        .map(|k| {
            [
                -lim + h * ((k / m) as f64 + 0.5),
                -lim + h * ((k % m) as f64 + 0.5),
            ]
        })
        .collect();
    let log_z = |j: &[f64], b: &[f64]| {
        let es: Vec<f64> = grid.iter().map(|x| -e_of(j, b, x)).collect();
        let mx = es.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        mx + (es.iter().map(|e| (e - mx).exp()).sum::<f64>() * h * h).ln()
    };
    let loglik = |j: &[f64], b: &[f64]| {
        -data.iter().map(|x| e_of(j, b, x)).sum::<f64>() / data.len() as f64 - log_z(j, b)
    };
    let r_phi = |j: &[f64], b: &[f64], x: &[f64; 2]| -> ([f64; 4], [f64; 2]) {
        let phi = [x[0].tanh(), x[1].tanh()];
        let r: Vec<f64> = (0..n)
            .map(|i| x[i] - (0..n).map(|k| j[i * n + k] * phi[k]).sum::<f64>() - b[i])
            .collect();
        (
            [r[0] * phi[0], r[0] * phi[1], r[1] * phi[0], r[1] * phi[1]],
            [r[0], r[1]],
        )
    };
    let j = vec![0.0, 1.3, -0.7, 0.0];
    let b = vec![0.2, -0.4];
    // Data and model averages of Rφ and R.
    let mut gd = [0.0; 6];
    for x in &data {
        let (g, r) = r_phi(&j, &b, x);
        for k in 0..4 {
            gd[k] += g[k] / data.len() as f64;
        }
        gd[4] += r[0] / data.len() as f64;
        gd[5] += r[1] / data.len() as f64;
    }
    let lz = log_z(&j, &b);
    let mut gm = [0.0; 6];
    for x in &grid {
        let w = (-e_of(&j, &b, x) - lz).exp() * h * h;
        let (g, r) = r_phi(&j, &b, x);
        for k in 0..4 {
            gm[k] += w * g[k];
        }
        gm[4] += w * r[0];
        gm[5] += w * r[1];
    }
    let eps = 1e-5;
    for (k, name) in [(1usize, "J_01"), (2, "J_10")] {
        let (mut jp, mut jm) = (j.clone(), j.clone());
        jp[k] += eps;
        jm[k] -= eps;
        let fd = (loglik(&jp, &b) - loglik(&jm, &b)) / (2.0 * eps);
        let rule = gd[k] - gm[k];
        assert!(
            (fd - rule).abs() < 1e-4 * (1.0 + fd.abs()),
            "{name}: finite difference {fd} vs rule {rule}"
        );
    }
    for i in 0..2 {
        let (mut bp, mut bm) = (b.clone(), b.clone());
        bp[i] += eps;
        bm[i] -= eps;
        let fd = (loglik(&j, &bp) - loglik(&j, &bm)) / (2.0 * eps);
        let rule = gd[4 + i] - gm[4 + i];
        assert!(
            (fd - rule).abs() < 1e-4 * (1.0 + fd.abs()),
            "b_{i}: finite difference {fd} vs rule {rule}"
        );
    }
    // The tensor implementation: data rows vs a set of "model" rows, against the f64 formula.
    let dev = common::cpu();
    let net = Nlm {
        j: tensor2(&j, 2, 2, &dev),
        b: tensor2(&b, 1, 2, &dev),
        temperature: 1.0,
    };
    let samples: Vec<[f64; 2]> = vec![[0.1, 0.2], [-0.9, 1.4], [2.0, -0.5]];
    let flat = |v: &[[f64; 2]]| v.iter().flatten().copied().collect::<Vec<f64>>();
    let th = |v: &[[f64; 2]]| v.iter().flatten().map(|x| x.tanh()).collect::<Vec<f64>>();
    let g = contrastive_grads(
        &net,
        tensor2(&flat(&data), data.len(), 2, &dev),
        tensor2(&th(&data), data.len(), 2, &dev),
        tensor2(&flat(&samples), samples.len(), 2, &dev),
        tensor2(&th(&samples), samples.len(), 2, &dev),
        &offdiag_mask(2, &dev),
    );
    let gj = to_vec_f32(&g.grad_j).unwrap();
    let gb = to_vec_f32(&g.grad_b).unwrap();
    let mut gs = [0.0; 6];
    for x in &samples {
        let (q, r) = r_phi(&j, &b, x);
        for k in 0..4 {
            gs[k] += q[k] / samples.len() as f64;
        }
        gs[4] += r[0] / samples.len() as f64;
        gs[5] += r[1] / samples.len() as f64;
    }
    for k in 0..4 {
        let want = if k == 0 || k == 3 { 0.0 } else { gs[k] - gd[k] };
        assert!(
            (gj[k] as f64 - want).abs() < 1e-5,
            "grad_J[{k}] {} vs {want}",
            gj[k]
        );
    }
    for i in 0..2 {
        let want = gs[4 + i] - gd[4 + i];
        assert!(
            (gb[i] as f64 - want).abs() < 1e-5,
            "grad_b[{i}] {} vs {want}",
            gb[i]
        );
    }
}
