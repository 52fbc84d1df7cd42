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
    fn normal_moments() {
        let mut r = Rng::new(3);
        let v = r.normal_vec_f64(200_000);
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64;
        assert!(m.abs() < 0.01, "mean {m}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
    }
}
