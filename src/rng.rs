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
    /// this stream seeds fixed-size blocks (each its own ChaCha8 stream), filled in parallel.
    /// The numbers depend only on this stream's state and `out.len()`, not on the thread count,
    /// and the stream advances by exactly one draw, so checkpoints stay small and exact.
    pub fn fill_normal_f32(&mut self, out: &mut [f32]) {
        const BLOCK: usize = 1 << 14;
        let base = self.inner.next_u64();
        let fill = |bi: usize, chunk: &mut [f32]| {
            let mut r = ChaCha8Rng::seed_from_u64(base);
            r.set_stream(bi as u64);
            for x in chunk.iter_mut() {
                *x = StandardNormal.sample(&mut r);
            }
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
        std::thread::scope(|s| {
            for g in groups {
                s.spawn(move || {
                    for (i, c) in g {
                        fill(i, c);
                    }
                });
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
