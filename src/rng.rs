//! The project's own serialisable random number generator.
//!
//! Burn's RNG state cannot be read back, so every random draw that influences training or
//! simulation comes from this ChaCha8 stream. Its full state goes into checkpoints, which is what
//! makes `resume` give exactly the same numbers as an uninterrupted run.

use rand::{Rng as _, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// A seeded, serialisable random stream.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Rng {
    inner: ChaCha8Rng,
}

impl Rng {
    /// A stream determined by `seed` alone.
    pub fn new(seed: u64) -> Self {
        Self {
            inner: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// An independent stream derived from `seed` and a purpose label (`stream`), so that adding
    /// draws to one part of the program does not shift the numbers seen by another.
    pub fn derived(seed: u64, stream: u64) -> Self {
        let mut inner = ChaCha8Rng::seed_from_u64(seed);
        inner.set_stream(stream);
        Self { inner }
    }

    /// `n` independent standard normal draws.
    pub fn normal_vec(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                let x: f64 = StandardNormal.sample(&mut self.inner);
                x as f32
            })
            .collect()
    }

    /// `n` independent standard normal draws in double precision.
    pub fn normal_vec_f64(&mut self, n: usize) -> Vec<f64> {
        (0..n)
            .map(|_| StandardNormal.sample(&mut self.inner))
            .collect()
    }

    /// One standard normal draw.
    pub fn normal(&mut self) -> f64 {
        StandardNormal.sample(&mut self.inner)
    }

    /// One uniform draw in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.inner.random::<f64>()
    }

    /// A uniform index in `0..n` (`n > 0`).
    pub fn index(&mut self, n: usize) -> usize {
        self.inner.random_range(0..n)
    }

    /// Fills `out` with independent standard normal draws (f32), fast: one 64-bit draw from
    /// this stream seeds fixed-size blocks (each its own ChaCha8 stream), filled in parallel
    /// by the Box–Muller transform (see [`box_muller_block`]). The numbers depend only on
    /// this stream's state and `out.len()`, not on the thread count, and the stream advances
    /// by exactly one draw, so checkpoints stay small and exact.
    pub fn fill_normal_f32(&mut self, out: &mut [f32]) {
        const BLOCK: usize = 1 << 14;
        let base = self.inner.next_u64();
        let fill = |bi: usize, chunk: &mut [f32]| {
            let mut r = ChaCha8Rng::seed_from_u64(base);
            r.set_stream(bi as u64);
            box_muller_block(&mut r, chunk);
        };
        let threads = crate::device::cpu_threads();
        if out.len() <= BLOCK || threads == 1 {
            out.chunks_mut(BLOCK)
                .enumerate()
                .for_each(|(i, c)| fill(i, c));
            return;
        }
        let blocks: Vec<(usize, &mut [f32])> = out.chunks_mut(BLOCK).enumerate().collect();
        let per = blocks.len().div_ceil(threads);
        let mut groups: Vec<Vec<(usize, &mut [f32])>> = Vec::new();
        let mut it = blocks.into_iter();
        loop {
            let g: Vec<_> = it.by_ref().take(per).collect();
            if g.is_empty() {
                break;
            }
            groups.push(g);
        }
        crate::device::par_each(groups, |g| {
            for (i, c) in g {
                fill(i, c);
            }
        });
    }

    /// Stream `index` under `base` (a seed drawn from another stream): independent streams for
    /// the members of a batch, each reproducible on its own.
    pub fn substream(base: u64, index: u64) -> Self {
        let mut inner = ChaCha8Rng::seed_from_u64(base);
        inner.set_stream(index);
        Self { inner }
    }

    /// Fills `out` with uniforms in [0, 1): the top 24 bits of one 32-bit draw each (exact in
    /// f32, never 1).
    pub fn fill_uniform_f32(&mut self, out: &mut [f32]) {
        let mut buf = [0u32; 64];
        for chunk in out.chunks_mut(64) {
            let b = &mut buf[..chunk.len()];
            self.inner.fill(b);
            for (x, &r) in chunk.iter_mut().zip(b.iter()) {
                *x = (r >> 8) as f32 * (1.0 / 16_777_216.0);
            }
        }
    }

    /// A raw 64-bit draw (for deriving seeds).
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// The state as JSON, for checkpoints.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Restores a state written by [`Rng::to_json`].
    pub fn from_json(v: &serde_json::Value) -> anyhow::Result<Self> {
        Ok(serde_json::from_value(v.clone())?)
    }
}

/// Pairs of outputs per Box–Muller batch.
const BM_PAIRS: usize = 256;

/// Fills `out` with standard normals from `r` by the Box–Muller transform, in batches of
/// 2·256: each batch draws 512 32-bit words, takes u₁ ∈ (0, 1] and u₂ ∈ [0, 1) from their top
/// 24 bits, and writes `√(−2 ln u₁)·cos 2πu₂` to its first half and `…·sin 2πu₂` to its
/// second (a short final batch keeps the first values). The tails stop at √(2·24 ln 2) ≈ 5.8σ
/// (probability 7e-9 beyond). Branch-free f32 ln and sin/cos polynomials (errors ≤ 1e-6), so
/// the loops vectorise; built for AVX2 as well and picked at run time, with the same numbers
/// (no fused multiply-adds in either build).
pub fn box_muller_block(r: &mut ChaCha8Rng, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { box_muller_avx2(r, out) };
    }
    box_muller_generic(r, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn box_muller_avx2(r: &mut ChaCha8Rng, out: &mut [f32]) {
    box_muller_generic(r, out)
}

#[inline(always)]
fn box_muller_generic(r: &mut ChaCha8Rng, out: &mut [f32]) {
    let mut words = [0u32; 2 * BM_PAIRS];
    let mut z = [0f32; 2 * BM_PAIRS];
    for chunk in out.chunks_mut(2 * BM_PAIRS) {
        let pairs = chunk.len().div_ceil(2);
        let w = &mut words[..2 * pairs];
        r.fill(w);
        let (w1, w2) = w.split_at(pairs);
        let (zc, zs) = z.split_at_mut(BM_PAIRS);
        box_muller_pairs(w1, w2, &mut zc[..pairs], &mut zs[..pairs]);
        let (first, second) = chunk.split_at_mut(pairs);
        first.copy_from_slice(&zc[..pairs]);
        let rest = second.len();
        second.copy_from_slice(&zs[..rest]);
    }
}

#[inline(always)]
fn box_muller_pairs(w1: &[u32], w2: &[u32], zc: &mut [f32], zs: &mut [f32]) {
    const TO_UNIT: f32 = 1.0 / 16_777_216.0;
    const TAU: f32 = std::f32::consts::TAU;
    for (((&a, &b), c), s) in w1.iter().zip(w2).zip(zc.iter_mut()).zip(zs.iter_mut()) {
        let u1 = ((a >> 8) as i32 as f32 + 1.0) * TO_UNIT;
        let u2 = (b >> 8) as i32 as f32 * TO_UNIT;
        let rad = (-2.0 * crate::device::fast::ln_f32(u1)).sqrt();
        // 2πu₂ = 2π(q/4 + t) with q the nearest quarter turn and |2πt| ≤ π/4.
        let qi = (u2 * 4.0 + 0.5) as i32;
        let t = (u2 - qi as f32 * 0.25) * TAU;
        let t2 = t * t;
        let sn = t
            * (1.0
                + t2 * (-1.0 / 6.0
                    + t2 * (1.0 / 120.0 + t2 * (-1.0 / 5040.0 + t2 * (1.0 / 362_880.0)))));
        let cs =
            1.0 + t2 * (-0.5 + t2 * (1.0 / 24.0 + t2 * (-1.0 / 720.0 + t2 * (1.0 / 40_320.0))));
        // Rotate by q quarter turns with exact arithmetic blends (o, h ∈ {0, 1}).
        let o = (qi & 1) as f32;
        let flip = 1.0 - ((qi >> 1) & 1) as f32 * 2.0;
        let x = cs * (1.0 - o) - sn * o;
        let y = sn * (1.0 - o) + cs * o;
        *c = rad * x * flip;
        *s = rad * y * flip;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trip_continues_the_same_stream() {
        let mut a = Rng::new(7);
        let _ = a.normal_vec(13);
        let saved = a.to_json();
        let x = a.normal_vec(5);
        let mut b = Rng::from_json(&saved).unwrap();
        assert_eq!(x, b.normal_vec(5));
    }

    #[test]
    fn derived_streams_differ() {
        let mut a = Rng::derived(1, 1);
        let mut b = Rng::derived(1, 2);
        assert_ne!(a.normal_vec(4), b.normal_vec(4));
    }

    #[test]
    fn fast_normal_fill_is_deterministic_and_standard() {
        let mut a = Rng::new(9);
        let mut b = a.clone();
        let mut x = vec![0f32; 100_003];
        let mut y = vec![0f32; 100_003];
        a.fill_normal_f32(&mut x);
        b.fill_normal_f32(&mut y);
        assert_eq!(x, y);
        assert_eq!(a, b, "the stream advances the same way");
        let n = x.len() as f64;
        let m = x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = x.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / n;
        let k4 = x.iter().map(|&v| (v as f64 - m).powi(4)).sum::<f64>() / n / (var * var);
        assert!(
            m.abs() < 0.01 && (var - 1.0).abs() < 0.02,
            "mean {m} var {var}"
        );
        assert!((k4 - 3.0).abs() < 0.1, "kurtosis {k4}");
        // Blocks are independent streams: the second block is not a copy of the first.
        assert_ne!(x[..16], x[1 << 14..(1 << 14) + 16]);
        a.fill_normal_f32(&mut y);
        assert_ne!(x, y, "successive fills differ");
    }

    /// The f32 Box–Muller follows the f64 formula on the same words, and its draws have the
    /// normal's quantiles, tails and no correlation between the two halves of a batch or
    /// between neighbours.
    #[test]
    fn box_muller_is_accurate_and_normal() {
        let mut r = ChaCha8Rng::seed_from_u64(5);
        let mut words = vec![0u32; 2 * BM_PAIRS];
        r.clone().fill(&mut words[..]);
        let mut z = vec![0f32; 2 * BM_PAIRS];
        box_muller_block(&mut r, &mut z);
        let mut g = vec![0f32; 2 * BM_PAIRS];
        box_muller_generic(&mut ChaCha8Rng::seed_from_u64(5), &mut g);
        assert_eq!(z, g, "AVX2 and portable builds differ");
        for i in 0..BM_PAIRS {
            let u1 = ((words[i] >> 8) as f64 + 1.0) / 16_777_216.0;
            let u2 = (words[BM_PAIRS + i] >> 8) as f64 / 16_777_216.0;
            let rad = (-2.0 * u1.ln()).sqrt();
            let th = std::f64::consts::TAU * u2;
            for (got, want) in [(z[i], rad * th.cos()), (z[BM_PAIRS + i], rad * th.sin())] {
                assert!(
                    (got as f64 - want).abs() < 2e-6 * want.abs().max(1.0),
                    "pair {i}: {got} vs {want}"
                );
            }
        }
        let mut x = vec![0f32; 2_000_001];
        Rng::new(17).fill_normal_f32(&mut x);
        let n = x.len() as f64;
        let phi = |t: f64| 0.5 * (1.0 + erf(t / std::f64::consts::SQRT_2));
        for t in [-3.0, -1.96, -1.0, -0.3, 0.0, 0.5, 1.0, 1.96, 3.0] {
            let frac = x.iter().filter(|&&v| (v as f64) < t).count() as f64 / n;
            let sd = (phi(t) * (1.0 - phi(t)) / n).sqrt();
            assert!(
                (frac - phi(t)).abs() < 5.0 * sd + 1e-6,
                "P(z < {t}) = {frac}, want {}",
                phi(t)
            );
        }
        let corr = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(&p, &q)| p as f64 * q as f64)
                .sum::<f64>()
                / a.len() as f64
        };
        let mut halves = 0.0;
        let mut count = 0.0;
        for b in x.chunks_exact(2 * BM_PAIRS) {
            halves += corr(&b[..BM_PAIRS], &b[BM_PAIRS..]);
            count += 1.0;
        }
        let halves = halves / count;
        let lag1 = corr(&x[..x.len() - 1], &x[1..]);
        let lim = 5.0 / n.sqrt();
        assert!(
            halves.abs() < lim * 1.5,
            "cos/sin halves correlate: {halves}"
        );
        assert!(lag1.abs() < lim, "lag-1 correlation {lag1}");
        // Tails: |z| > 4 happens with probability 6.3e-5.
        let tail = x.iter().filter(|v| v.abs() > 4.0).count() as f64 / n;
        assert!(
            (tail - 6.334e-5).abs() < 5.0 * (6.334e-5 / n).sqrt(),
            "tail {tail}"
        );
    }

    /// erf by Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7), for the quantile test.
    fn erf(x: f64) -> f64 {
        let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
        let y = 1.0
            - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736)
                * t
                + 0.254_829_592)
                * t
                * (-x * x).exp();
        if x >= 0.0 { y } else { -y }
    }

    #[test]
    fn normal_moments() {
        let mut r = Rng::new(3);
        let v = r.normal_vec_f64(200_000);
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64;
        assert!(m.abs() < 0.01, "mean {m}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
    }
}
