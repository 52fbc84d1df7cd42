//! Euler–Maruyama convergence orders on Ornstein–Uhlenbeck, against the exact solution.

mod common;

use attractor::rng::Rng;
use attractor::sde::Sde;
use attractor::sde::builtin::Builtin;
use attractor::sde::solver::EulerMaruyama;
use attractor::sde::target::Target;
use attractor::transfer::{tensor2, tensor2_f32, to_vec_f32};

/// dz = -a z dt + sqrt(2 eps) dW in 2-D (rotation off): a = 1, eps = 0.5.
fn ou() -> Target {
    Target::Builtin(Builtin::new("ou-rot", &[("theta".into(), 0.0)], &common::cpu()).unwrap())
}

fn slope(dts: &[f64], errs: &[f64]) -> f64 {
    let n = dts.len() as f64;
    let lx: Vec<f64> = dts.iter().map(|x| x.ln()).collect();
    let ly: Vec<f64> = errs.iter().map(|x| x.ln()).collect();
    let mx = lx.iter().sum::<f64>() / n;
    let my = ly.iter().sum::<f64>() / n;
    let num: f64 = lx.iter().zip(&ly).map(|(x, y)| (x - mx) * (y - my)).sum();
    let den: f64 = lx.iter().map(|x| (x - mx).powi(2)).sum();
    num / den
}

#[test]
fn strong_order_one_for_additive_noise() {
    let dev = common::cpu();
    let sde = ou();
    let paths = 2000;
    let t_end = 1.0;
    let fine = 1024usize;
    let dtf = t_end / fine as f64;
    let mut rng = Rng::new(11);
    // Brownian increments on the fine grid, [fine][paths*2].
    let incs: Vec<Vec<f32>> = (0..fine)
        .map(|_| {
            rng.normal_vec(paths * 2)
                .into_iter()
                .map(|x| x * dtf.sqrt() as f32)
                .collect()
        })
        .collect();
    let z0 = vec![1.0f64; paths * 2];
    let solve = |steps: usize| -> Vec<f32> {
        let em = EulerMaruyama::new(t_end / steps as f64, 1.0).unwrap();
        let per = fine / steps;
        let mut x = tensor2(&z0, paths, 2, &dev);
        for s in 0..steps {
            let mut dw = vec![0f32; paths * 2];
            for inc in &incs[s * per..(s + 1) * per] {
                for (a, b) in dw.iter_mut().zip(inc) {
                    *a += *b;
                }
            }
            x = em.step_with(&sde, x, None, Some(tensor2_f32(dw, paths, 2, &dev)));
        }
        to_vec_f32(&x).unwrap()
    };
    let reference = solve(fine);
    let levels = [16usize, 32, 64, 128];
    let mut errs = Vec::new();
    for &l in &levels {
        let x = solve(l);
        let e = x
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs() as f64)
            .sum::<f64>()
            / x.len() as f64;
        errs.push(e);
    }
    let dts: Vec<f64> = levels.iter().map(|&l| t_end / l as f64).collect();
    let p = slope(&dts, &errs);
    assert!(
        (0.85..=1.15).contains(&p),
        "strong order {p} (errors {errs:?})"
    );
}

#[test]
fn weak_order_one_for_second_moment() {
    let dev = common::cpu();
    let sde = ou();
    let paths = 200_000;
    let t_end = 2.0;
    let (a, eps, z0v) = (1.0f64, 0.5f64, 1.0f64);
    // Exact: E z = z0 e^{-aT}, Var z = (eps/a)(1 - e^{-2aT}) per coordinate.
    let m = z0v * (-a * t_end).exp();
    let exact_m2 = m * m + (eps / a) * (1.0 - (-2.0 * a * t_end).exp());
    let mut errs = Vec::new();
    let dts = [0.4, 0.2, 0.1];
    for (i, &dt) in dts.iter().enumerate() {
        let em = EulerMaruyama::new(dt, 1.0).unwrap();
        let mut rng = Rng::new(100 + i as u64);
        let mut x = tensor2(&vec![z0v; paths * 2], paths, 2, &dev);
        for _ in 0..(t_end / dt).round() as usize {
            x = em.step(&sde, x, None, &mut rng);
        }
        let v = to_vec_f32(&x).unwrap();
        let m2 = v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / v.len() as f64;
        errs.push((m2 - exact_m2).abs());
    }
    let p = slope(&dts, &errs);
    assert!((0.7..=1.3).contains(&p), "weak order {p} (errors {errs:?})");
    // And the drift alone: noise-free mean error is first order too (no Monte-Carlo noise).
    let mut errs = Vec::new();
    for &dt in &dts {
        let em = EulerMaruyama::new(dt, 0.0).unwrap();
        let mut rng = Rng::new(0);
        let mut x = tensor2(&[z0v, z0v], 1, 2, &dev);
        for _ in 0..(t_end / dt).round() as usize {
            x = em.step(&sde, x, None, &mut rng);
        }
        errs.push((to_vec_f32(&x).unwrap()[0] as f64 - m).abs());
    }
    let p = slope(&dts, &errs);
    assert!(
        (0.8..=1.2).contains(&p),
        "deterministic order {p} (errors {errs:?})"
    );
    assert_eq!(sde.dim(), 2);
}

#[test]
fn invalid_steps_are_rejected() {
    assert!(EulerMaruyama::new(-0.01, 1.0).is_err());
    assert!(EulerMaruyama::new(f64::NAN, 1.0).is_err());
    assert!(EulerMaruyama::new(0.01, -1.0).is_err());
}

#[test]
fn rk4_is_fourth_order_on_the_noise_free_flow() {
    use attractor::sde::solver::rk4_step;
    let dev = common::cpu();
    let sde = Target::Builtin(Builtin::new("ou-rot", &[], &common::cpu()).unwrap());
    // dz = -B z dt with B = [[1, -1], [1, 1]]: z(t) = e^{-t} (cos t, -sin t) from z0 = (1, 0).
    let t_end = 2.0f64;
    let exact = [(-t_end).exp() * t_end.cos(), -(-t_end).exp() * t_end.sin()];
    let dts = [0.4, 0.2, 0.1];
    let mut errs = Vec::new();
    for &dt in &dts {
        let mut x = tensor2(&[1.0, 0.0], 1, 2, &dev);
        for _ in 0..(t_end / dt).round() as usize {
            x = rk4_step(&sde, x, dt);
        }
        let v = to_vec_f32(&x).unwrap();
        errs.push(((v[0] as f64 - exact[0]).powi(2) + (v[1] as f64 - exact[1]).powi(2)).sqrt());
    }
    let p = slope(&dts, &errs);
    assert!((3.5..=4.5).contains(&p), "RK4 order {p} (errors {errs:?})");
}
