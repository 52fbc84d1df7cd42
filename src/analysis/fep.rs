//! FEP network measurements on the host (f64; no CLI, no output files): deterministic
//! attractors, orthogonality, retrieval and one-shot generalisation (ΔR²), asymmetry, and the
//! forward-transition fraction of free-running replay ([`free`]). The operations on trained runs
//! that use them are in [`crate::api::fep`].

use crate::models::cb::{langevin, sample};
use crate::rng::Rng;

/// `y = J x` for row-major `J: [n, n]`.
fn matvec(j: &[f64], x: &[f64], n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            j[i * n..(i + 1) * n]
                .iter()
                .zip(x)
                .map(|(a, b)| a * b)
                .sum()
        })
        .collect()
}

/// Deterministic ("least action") relaxation σ ← L(β(b + Jσ)) from `s0` until the largest
/// change is below `tol`; `None` if not converged within `max_steps`.
pub fn relax(
    j: &[f64],
    n: usize,
    b: &[f64],
    beta: f64,
    s0: &[f64],
    max_steps: usize,
    tol: f64,
) -> Option<Vec<f64>> {
    let mut s = s0.to_vec();
    for _ in 0..max_steps {
        let h = matvec(j, &s, n);
        let next: Vec<f64> = (0..n).map(|i| langevin(beta * (b[i] + h[i]))).collect();
        let d = next
            .iter()
            .zip(&s)
            .map(|(a, c)| (a - c).abs())
            .fold(0.0, f64::max);
        s = next;
        if d < tol {
            return Some(s);
        }
    }
    None
}

/// Deterministic attractors reached from each pattern (already × evidence) at β = 1, b = 0,
/// σ₀ = L(0.1x + noise), for each noise level (noise sd = level · 0.1 · std x). Returns all
/// end points (converged ones) and the distinct ones (rounded to 2 decimals).
pub fn attractors(
    j: &[f64],
    n: usize,
    patterns: &[f64],
    noise_levels: &[f64],
    rng: &mut Rng,
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let p = patterns.len() / n;
    let zero = vec![0.0; n];
    let mut all = Vec::new();
    for k in 0..p {
        let x = &patterns[k * n..(k + 1) * n];
        let sd = std(x);
        for &lvl in noise_levels {
            let s0: Vec<f64> = x
                .iter()
                .map(|v| langevin(0.1 * v + lvl * 0.1 * sd * rng.normal()))
                .collect();
            if let Some(a) = relax(j, n, &zero, 1.0, &s0, 1000, 1e-10) {
                all.push(a);
            }
        }
    }
    let mut distinct: Vec<Vec<f64>> = Vec::new();
    for a in &all {
        let r: Vec<f64> = a.iter().map(|v| (v * 100.0).round() / 100.0).collect();
        if !distinct.iter().any(|d| d == &r) {
            distinct.push(r);
        }
    }
    (all, distinct)
}

fn std(x: &[f64]) -> f64 {
    let m = x.iter().sum::<f64>() / x.len() as f64;
    (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

/// Pearson correlation.
pub fn corr(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    sab / (saa * sbb).sqrt().max(1e-300)
}

fn angle_deg(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    (dot / (na * nb).max(1e-300))
        .clamp(-1.0, 1.0)
        .acos()
        .to_degrees()
}

/// Orthogonality of a set of vectors: (code form, off-diagonal form).
///
/// Code form (the reference's data value): mean |90° − angle| over the full matrix whose
/// diagonal angle is left 0 (so each diagonal entry counts 90°). Off-diagonal form: mean over
/// pairs i ≠ j only. With `drop_degenerate` (used for attractors), angles outside (1°, 179°) are
/// dropped first, which removes the diagonal and duplicates; NaN when nothing remains.
pub fn orthogonality(vs: &[Vec<f64>], drop_degenerate: bool) -> (f64, f64) {
    let p = vs.len();
    let mut full = Vec::new();
    let mut off = Vec::new();
    for i in 0..p {
        for k in 0..p {
            let a = if i == k {
                0.0
            } else {
                angle_deg(&vs[i], &vs[k])
            };
            if drop_degenerate && !(a > 1.0 && a < 179.0) {
                continue;
            }
            full.push((90.0 - a).abs());
            if i != k {
                off.push((90.0 - a).abs());
            }
        }
    }
    let mean = |v: &[f64]| {
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    (mean(&full), mean(&off))
}

/// The symmetric part J† = (J + Jᵀ)/2.
pub fn symmetric_part(j: &[f64], n: usize) -> Vec<f64> {
    let mut s = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            s[i * n + k] = 0.5 * (j[i * n + k] + j[k * n + i]);
        }
    }
    s
}

/// A = ‖J − Jᵀ‖_F / ‖J‖_F (0 symmetric, ≈ √2 unrelated, 2 antisymmetric).
pub fn asymmetry(j: &[f64], n: usize) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for i in 0..n {
        for k in 0..n {
            num += (j[i * n + k] - j[k * n + i]).powi(2);
            den += j[i * n + k].powi(2);
        }
    }
    if den > 0.0 { (num / den).sqrt() } else { 0.0 }
}

/// Stochastic inference with bias `b` held fixed: `steps` synchronous CB updates at precision
/// `beta` from `state` (updated in place); returns the mean state over steps after `burn_in`.
#[allow(clippy::too_many_arguments)]
pub fn infer_mean(
    j: &[f64],
    n: usize,
    b: &[f64],
    beta: f64,
    state: &mut Vec<f64>,
    steps: usize,
    burn_in: usize,
    rng: &mut Rng,
) -> Vec<f64> {
    let mut mean = vec![0.0; n];
    let mut cnt = 0.0f64;
    for t in 0..steps {
        let h = matvec(j, state, n);
        *state = (0..n)
            .map(|i| sample(beta * (b[i] + h[i]), rng.uniform(0.0, 1.0)))
            .collect();
        if t >= burn_in {
            for (m, s) in mean.iter_mut().zip(state.iter()) {
                *m += s;
            }
            cnt += 1.0;
        }
    }
    mean.iter_mut().for_each(|m| *m /= cnt.max(1.0));
    mean
}

/// Median ΔR² = corr(output, target)² − corr(cue, target)² over `trials`:
/// target = signal · pattern, cue = target + N(0, (std target / snr)²), `steps` stochastic
/// steps at β, state carried over between trials. `pick(t)` chooses the pattern of trial t.
#[allow(clippy::too_many_arguments)]
pub fn reconstruction_dr2(
    j: &[f64],
    n: usize,
    patterns: &[f64],
    pick: &mut dyn FnMut(usize, &mut Rng) -> usize,
    signal: f64,
    snr: f64,
    trials: usize,
    steps: usize,
    beta: f64,
    rng: &mut Rng,
) -> f64 {
    let mut state = vec![0.0; n];
    let mut d = Vec::with_capacity(trials);
    for t in 0..trials {
        let idx = pick(t, rng);
        let target: Vec<f64> = patterns[idx * n..(idx + 1) * n]
            .iter()
            .map(|x| x * signal)
            .collect();
        let sd = std(&target) / snr;
        let cue: Vec<f64> = target.iter().map(|x| x + sd * rng.normal()).collect();
        let out = infer_mean(j, n, &cue, beta, &mut state, steps, 0, rng);
        d.push(corr(&out, &target).powi(2) - corr(&cue, &target).powi(2));
    }
    d.sort_by(|a, b| a.total_cmp(b));
    if d.is_empty() {
        return f64::NAN;
    }
    let m = d.len() / 2;
    if d.len() % 2 == 1 {
        d[m]
    } else {
        0.5 * (d[m - 1] + d[m])
    }
}

/// Free-running replay (`fep run-free`): labelling states by pattern, the forward-transition
/// fraction.
pub mod free {
    use super::corr;

    /// Labels of states (best-correlated pattern if above `threshold`) and the share of label
    /// changes that go forward (k → k+1 mod P), with the number of changes.
    pub fn forward_fraction(
        states: &[Vec<f64>],
        patterns: &[f64],
        n: usize,
        threshold: f64,
    ) -> (Vec<Option<usize>>, f64, usize) {
        let p = patterns.len() / n;
        let labels: Vec<Option<usize>> = states
            .iter()
            .map(|s| {
                let (best, c) = (0..p)
                    .map(|k| (k, corr(s, &patterns[k * n..(k + 1) * n])))
                    .fold((0, f64::NEG_INFINITY), |a, b| if b.1 > a.1 { b } else { a });
                (c > threshold).then_some(best)
            })
            .collect();
        let seq: Vec<usize> = labels.iter().flatten().copied().collect();
        let (mut fwd, mut tot) = (0, 0);
        for w in seq.windows(2) {
            if w[0] != w[1] {
                tot += 1;
                if w[1] == (w[0] + 1) % p {
                    fwd += 1;
                }
            }
        }
        (
            labels,
            if tot > 0 {
                fwd as f64 / tot as f64
            } else {
                f64::NAN
            },
            tot,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orthogonality_of_orthogonal_and_identical_sets() {
        let e = vec![
            vec![1.0, 0.0, 0.0],
            vec![0.0, 1.0, 0.0],
            vec![0.0, 0.0, 1.0],
        ];
        let (full, off) = orthogonality(&e, false);
        assert!((off - 0.0).abs() < 1e-9);
        assert!((full - 30.0).abs() < 1e-9, "{full}"); // 3 diagonal entries of 90 among 9
        assert!(orthogonality(&e, true).1.abs() < 1e-9);
        let same = vec![vec![1.0, 2.0], vec![1.0, 2.0]];
        assert!(orthogonality(&same, true).0.is_nan());
    }

    #[test]
    fn asymmetry_index_limits() {
        assert_eq!(asymmetry(&[0.0, 1.0, 1.0, 0.0], 2), 0.0);
        assert!((asymmetry(&[0.0, 1.0, -1.0, 0.0], 2) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn relax_converges_on_symmetric_couplings() {
        let j = [0.0, 0.5, 0.5, 0.0];
        let s = relax(&j, 2, &[0.0, 0.0], 1.0, &[0.5, 0.4], 1000, 1e-12);
        assert!(s.is_some());
    }
}
