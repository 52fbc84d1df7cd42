//! Small statistics helpers on host data.

/// Histogram (probability masses) of `xs` on `bins` equal bins over `[lo, hi]`; values outside
/// are dropped from the counts but not from the total (mass outside counts as a difference).
pub fn histogram(xs: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<f64> {
    let mut h = vec![0.0; bins];
    if xs.is_empty() || hi <= lo {
        return h;
    }
    let w = (hi - lo) / bins as f64;
    for &x in xs {
        if x.is_finite() && x >= lo && x < hi {
            let i = (((x - lo) / w) as usize).min(bins - 1);
            h[i] += 1.0;
        }
    }
    let n = xs.len() as f64;
    h.iter_mut().for_each(|v| *v /= n);
    h
}

/// L1 distance between two samples' histograms on a common range (0 = identical, 2 = disjoint).
pub fn hist_l1(a: &[f64], b: &[f64], bins: usize) -> f64 {
    let lo = a
        .iter()
        .chain(b)
        .copied()
        .filter(|x| x.is_finite())
        .fold(f64::INFINITY, f64::min);
    let hi = a
        .iter()
        .chain(b)
        .copied()
        .filter(|x| x.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return f64::NAN;
    }
    let hi = hi + 1e-9 * (hi - lo);
    let (ha, hb) = (histogram(a, lo, hi, bins), histogram(b, lo, hi, bins));
    ha.iter().zip(&hb).map(|(x, y)| (x - y).abs()).sum()
}

/// L1 distance between a sample's histogram and a density given on the same bins.
pub fn hist_l1_density(
    a: &[f64],
    lo: f64,
    hi: f64,
    bins: usize,
    density: impl Fn(f64) -> f64,
) -> f64 {
    let ha = histogram(a, lo, hi, bins);
    let w = (hi - lo) / bins as f64;
    // Fine quadrature of the density per bin, then normalise over [lo, hi].
    let sub = 20;
    let mut q: Vec<f64> = (0..bins)
        .map(|i| {
            (0..sub)
                .map(|s| density(lo + w * (i as f64 + (s as f64 + 0.5) / sub as f64)))
                .sum::<f64>()
        })
        .collect();
    let tot: f64 = q.iter().sum();
    q.iter_mut().for_each(|v| *v /= tot);
    ha.iter().zip(&q).map(|(x, y)| (x - y).abs()).sum()
}

/// Mean and population standard deviation (divisor n).
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len().max(1) as f64;
    let m = xs.iter().sum::<f64>() / n;
    let v = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n;
    (m, v.sqrt())
}

/// Mean and sample standard deviation (divisor n − 1; 0 for fewer than two values): the spread
/// reported over runs or sample sets.
pub fn mean_sample_sd(xs: &[f64]) -> (f64, f64) {
    let (m, sd) = mean_std(xs);
    let n = xs.len() as f64;
    if xs.len() < 2 {
        return (m, 0.0);
    }
    (m, sd * (n / (n - 1.0)).sqrt())
}

/// Number of switches between the states `x < -th` and `x > th` (hysteresis) in a series.
pub fn count_switches(xs: &[f64], th: f64) -> usize {
    let mut state = 0i8;
    let mut n = 0;
    for &x in xs {
        let s = if x > th {
            1
        } else if x < -th {
            -1
        } else {
            0
        };
        if s != 0 {
            if state != 0 && s != state {
                n += 1;
            }
            state = s;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_sd_divides_by_n_minus_one() {
        let (m, sd) = mean_sample_sd(&[1.0, 2.0, 3.0, 6.0]);
        assert_eq!(m, 3.0);
        assert!((sd - (14.0f64 / 3.0).sqrt()).abs() < 1e-12, "{sd}");
        assert_eq!(mean_sample_sd(&[0.4]), (0.4, 0.0));
        assert_eq!(mean_std(&[1.0, 3.0]), (2.0, 1.0));
    }

    #[test]
    fn l1_of_identical_and_disjoint() {
        let a: Vec<f64> = (0..1000).map(|i| i as f64 / 1000.0).collect();
        assert!(hist_l1(&a, &a, 20) < 1e-12);
        let b: Vec<f64> = a.iter().map(|x| x + 10.0).collect();
        assert!((hist_l1(&a, &b, 20) - 2.0).abs() < 1e-9);
    }

    #[test]
    fn switches_with_hysteresis() {
        assert_eq!(
            count_switches(&[-1.0, 0.1, -0.1, 1.0, 0.0, -1.0, -2.0, 1.0], 0.5),
            3
        );
    }
}
