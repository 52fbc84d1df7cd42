//! Continuous-Bernoulli units: density θe^{θσ}/(2 sinh θ) on [−1, 1].
//!
//! Scalar f64 functions with Taylor branches where the closed forms cancel, and tensor versions
//! (f32, with the same branches) for batched networks.

use burn::tensor::Tensor;

/// Langevin function L(θ) = coth θ − 1/θ, the CB mean.
pub fn langevin(t: f64) -> f64 {
    let a = t.abs();
    if a < 0.1 {
        let t2 = t * t;
        t * (1.0 / 3.0 - t2 / 45.0 + 2.0 * t2 * t2 / 945.0 - t2 * t2 * t2 / 4725.0)
    } else if a > 20.0 {
        t.signum() - 1.0 / t
    } else {
        1.0 / t.tanh() - 1.0 / t
    }
}

/// L'(θ) = 1/θ² − 1/sinh²θ, the CB variance (Fisher metric); L'(0) = 1/3.
pub fn langevin_prime(t: f64) -> f64 {
    let a = t.abs();
    if a < 0.05 {
        let t2 = t * t;
        1.0 / 3.0 - t2 / 15.0 + 2.0 * t2 * t2 / 189.0 - t2 * t2 * t2 / 675.0
    } else if a > 20.0 {
        1.0 / (t * t)
    } else {
        1.0 / (t * t) - 1.0 / t.sinh().powi(2)
    }
}

/// Log-partition ψ(θ) = ln(2 sinh θ / θ); ψ(0) = ln 2.
pub fn log_partition(t: f64) -> f64 {
    let a = t.abs();
    if a < 0.1 {
        let t2 = t * t;
        std::f64::consts::LN_2 + t2 / 6.0 - t2 * t2 / 180.0
    } else if a >= 20.0 {
        a - a.ln()
    } else {
        (2.0 * a.sinh() / a).ln()
    }
}

/// Inverse-CDF sample for a uniform draw `u` in (0, 1): σ = logaddexp(θ + ln u, −θ + ln(1−u))/θ.
pub fn sample(t: f64, u: f64) -> f64 {
    let u = u.clamp(1e-7, 1.0 - 1e-7);
    if t.abs() < 1e-6 {
        return 2.0 * u - 1.0;
    }
    let a = t + u.ln();
    let b = -t + (1.0 - u).ln();
    let m = a.max(b);
    let s = m + (-(a - b).abs()).exp().ln_1p();
    (s / t).clamp(-1.0 + 1e-7, 1.0 - 1e-7)
}

/// L(θ) elementwise on a tensor (Taylor branch for |θ| < 0.1).
pub fn langevin_t<const D: usize>(t: Tensor<D>) -> Tensor<D> {
    let small = t.clone().abs().lower_elem(0.1);
    let t2 = t.clone().powi_scalar(2);
    let series = t.clone()
        * (t2.clone().mul_scalar(-1.0 / 4725.0).add_scalar(2.0 / 945.0) * t2.clone())
            .add_scalar(-1.0 / 45.0)
            .mul(t2)
            .add_scalar(1.0 / 3.0);
    let safe = t.clone().mask_fill(small.clone(), 1.0);
    let exact = crate::device::fast::tanh(safe.clone()).recip() - safe.recip();
    exact.mask_where(small, series)
}

/// ψ(θ) = ln(2 sinh θ / θ) elementwise (Taylor branch for |θ| < 0.1; for larger |θ| the stable
/// form |θ| + ln(1 − e^{−2|θ|}) − ln|θ|).
pub fn log_partition_t<const D: usize>(t: Tensor<D>) -> Tensor<D> {
    let a = t.abs();
    let small = a.clone().lower_elem(0.1);
    let a2 = a.clone().powi_scalar(2);
    let series = (a2.clone().mul_scalar(-1.0 / 180.0).add_scalar(1.0 / 6.0) * a2)
        .add_scalar(std::f64::consts::LN_2);
    let safe = a.mask_fill(small.clone(), 1.0);
    let exact = safe.clone()
        + safe
            .clone()
            .mul_scalar(-2.0)
            .exp()
            .neg()
            .add_scalar(1.0)
            .log()
        - safe.log();
    exact.mask_where(small, series)
}

/// CB samples for parameters `t` and uniforms `u` of the same shape.
pub fn sample_t<const D: usize>(t: Tensor<D>, u: Tensor<D>) -> Tensor<D> {
    let u = u.clamp(1e-7, 1.0 - 1e-7);
    let tiny = t.clone().abs().lower_elem(1e-6);
    let safe = t.clone().mask_fill(tiny.clone(), 1.0);
    let a = safe.clone() + u.clone().log();
    let b = safe.clone().neg() + u.clone().neg().add_scalar(1.0).log();
    let m = a.clone().max_pair(b.clone());
    let s = m + (a - b).abs().neg().exp().add_scalar(1.0).log();
    let sig = s.div(safe).clamp(-1.0 + 1e-7, 1.0 - 1e-7);
    let uniform = u.mul_scalar(2.0).add_scalar(-1.0);
    sig.mask_where(tiny, uniform)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_values() {
        assert!(langevin(0.0).abs() < 1e-15);
        assert!((langevin(1.0) - 0.313_035_285_499_331).abs() < 1e-9);
        assert!((langevin(2.0) - 0.537_314_720_727_548).abs() < 1e-9);
        assert!((langevin(10.0) - 0.9).abs() < 1e-8);
        for t in [0.03, 0.7, 3.0, 25.0] {
            assert!((langevin(-t) + langevin(t)).abs() < 1e-15, "L odd at {t}");
        }
        assert!((langevin_prime(0.0) - 1.0 / 3.0).abs() < 1e-15);
        assert!((log_partition(0.0) - std::f64::consts::LN_2).abs() < 1e-15);
        // Branches agree at their boundaries.
        let exact_l = |t: f64| 1.0 / t.tanh() - 1.0 / t;
        assert!((langevin(0.0999999) - exact_l(0.0999999)).abs() < 1e-6);
        assert!((langevin(0.1) - exact_l(0.1)).abs() < 1e-12);
        let exact_psi = |t: f64| (2.0 * t.sinh() / t).ln();
        assert!((log_partition(0.0999999) - exact_psi(0.0999999)).abs() < 1e-6);
        assert!((log_partition(20.0) - exact_psi(20.0)).abs() < 1e-6);
        let exact_lp = |t: f64| 1.0 / (t * t) - 1.0 / t.sinh().powi(2);
        assert!((langevin_prime(0.0499999) - exact_lp(0.0499999)).abs() < 1e-6);
        // L' is the derivative of L.
        for t in [-3.0, -0.5, 0.2, 1.0, 4.0] {
            let h = 1e-5;
            let fd = (langevin(t + h) - langevin(t - h)) / (2.0 * h);
            assert!((fd - langevin_prime(t)).abs() < 1e-7, "L' at {t}");
        }
    }

    #[test]
    fn sampler_is_in_range_and_monotone_in_u() {
        for t in [-50.0, -5.0, -1.0, 0.0, 1e-8, 0.5, 3.0, 50.0, 500.0] {
            let mut last = -2.0;
            for i in 1..100 {
                let s = sample(t, i as f64 / 100.0);
                assert!((-1.0..=1.0).contains(&s), "sample {s} at θ = {t}");
                assert!(s >= last - 1e-12, "not monotone at θ = {t}");
                last = s;
            }
        }
    }
}
