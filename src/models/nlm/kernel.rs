//! Fused CPU kernel for the NLM's drift (the Langevin force `F = e − φ'(x) ⊙ (e J)` with
//! `e = φ(x)Jᵀ + b − x`, or the plain RNN speed `e`), on row-major host buffers.
//!
//! The tensor form in [`super`] runs every elementwise operation as its own pass with its
//! own allocation (tanh, its derivative, `+ b`, `− x`, the product and difference of the
//! Onsager term, then the solver's update), which on a CPU added about 40 % to the time of the
//! two GEMMs (1000 chains × 784 neurons). Here one pass computes `φ`, `φ'` and `b − x`, the
//! first GEMM accumulates `φJᵀ` onto `b − x`, the second writes `eJ`, and one more pass forms
//! the force. Inside the solver ([`HostDrift::em_step`]) that last pass also applies the
//! Euler–Maruyama update and computes the next step's `φ`, `φ'` and `b − x`, so a step is two
//! GEMMs and one sweep over the states; the buffers are reused from step to step. The GEMMs
//! are the `gemm` crate's (the one Burn's CPU backend calls), split over the cores; each
//! output element is one fixed-order dot product, so the numbers do not depend on the number
//! of threads (tested). Only float rounding separates the result from the tensor form
//! (`(b − x) + φJᵀ` instead of `(φJᵀ + b) − x`; tested).
//!
//! Pure computation on host slices: no files, no devices.

use crate::device::fast::tanh_f32;
use crate::device::{chunk_len, par_each};
use crate::sde::HostDrift;
use crate::sde::solver::EmCoefs;
#[cfg(doc)]
use crate::sde::solver::em_update;

/// The NLM drift with its parameters and scratch buffers on the host.
pub struct NlmHostDrift {
    n: usize,
    /// `J: [N, N]` row-major (J_ij from j to i).
    j: Vec<f32>,
    /// `b: [N]`.
    b: Vec<f32>,
    /// With the Onsager term (the Langevin force) or without it (the plain RNN speed).
    onsager: bool,
    threads: usize,
    phi: Vec<f32>,
    dphi: Vec<f32>,
    e: Vec<f32>,
    g: Vec<f32>,
    /// `φ`, `φ'` and `e = b − x` hold for the state the last `em_step` left.
    carried: bool,
}

impl NlmHostDrift {
    /// A kernel for couplings `j: [N, N]` and bias `b: [N]`; `onsager = false` gives the plain
    /// RNN speed `e`. `threads` cores share the work (1: the calling thread only).
    pub fn new(j: Vec<f32>, b: Vec<f32>, onsager: bool, threads: usize) -> Self {
        let n = b.len();
        assert_eq!(j.len(), n * n, "J must be [N, N] with N = len(b)");
        Self {
            n,
            j,
            b,
            onsager,
            threads: threads.max(1),
            phi: Vec::new(),
            dphi: Vec::new(),
            e: Vec::new(),
            g: Vec::new(),
            carried: false,
        }
    }

    fn parallelism(&self, rows: usize) -> gemm::Parallelism {
        if self.threads > 1 && rows * self.n * self.n >= 1 << 20 {
            gemm::Parallelism::Rayon(self.threads)
        } else {
            gemm::Parallelism::None
        }
    }
}

/// Pass 1 on whole rows: `φ = tanh x`, `φ' = 1 − φ²`, `e = b − x` (`b` one row). Compiled a
/// second time for AVX2 and picked at run time; the operations are the same (no
/// contraction), so both give identical numbers.
fn tanh_pass(phi: &mut [f32], dphi: &mut [f32], e: &mut [f32], x: &[f32], b: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { tanh_pass_avx2(phi, dphi, e, x, b) };
    }
    tanh_pass_rows(phi, dphi, e, x, b)
}

/// [`tanh_pass_rows`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn tanh_pass_avx2(phi: &mut [f32], dphi: &mut [f32], e: &mut [f32], x: &[f32], b: &[f32]) {
    tanh_pass_rows(phi, dphi, e, x, b)
}

#[inline(always)]
fn tanh_pass_rows(phi: &mut [f32], dphi: &mut [f32], e: &mut [f32], x: &[f32], b: &[f32]) {
    let n = b.len();
    for (((pr, dr), er), xr) in phi
        .chunks_exact_mut(n)
        .zip(dphi.chunks_exact_mut(n))
        .zip(e.chunks_exact_mut(n))
        .zip(x.chunks_exact(n))
    {
        for ((((p, d), e), &x), &b) in pr.iter_mut().zip(dr).zip(er).zip(xr).zip(b) {
            let t = tanh_f32(x);
            *p = t;
            *d = 1.0 - t * t;
            *e = b - x;
        }
    }
}

impl NlmHostDrift {
    /// Sizes the scratch buffers for `rows` states.
    fn resize(&mut self, rows: usize) {
        let len = rows * self.n;
        for buf in [&mut self.phi, &mut self.dphi, &mut self.e, &mut self.g] {
            buf.resize(len, 0.0);
        }
    }

    /// Pass 1: `φ = tanh x`, `φ' = 1 − φ²`, `e = b − x`.
    fn prepare(&mut self, x: &[f32], rows: usize) {
        let n = self.n;
        let c = chunk_len(rows * n, n, self.threads);
        let b = &self.b;
        let items: Vec<_> = self
            .phi
            .chunks_mut(c)
            .zip(self.dphi.chunks_mut(c))
            .zip(self.e.chunks_mut(c))
            .zip(x.chunks(c))
            .collect();
        par_each(items, |(((phi, dphi), e), x)| tanh_pass(phi, dphi, e, x, b));
    }

    /// GEMM 1, `e += φJᵀ`, and (with the Onsager term) GEMM 2, `g = eJ`.
    fn gemms(&mut self, rows: usize) {
        let (n, par) = (self.n, self.parallelism(rows));
        // e[r, i] += Σ_k φ[r, k] J[i, k].
        gemm_rows(&mut self.e, &self.phi, &self.j, rows, n, true, true, par);
        if self.onsager {
            // g[r, k] = Σ_i e[r, i] J[i, k].
            gemm_rows(&mut self.g, &self.e, &self.j, rows, n, false, false, par);
        }
    }
}

/// `dst ← (dst, if `accumulate`) + lhs · Jᵀ` (`transpose`) or `+ lhs · J`, with `dst` and
/// `lhs` row-major `[rows, n]` and `J` row-major `[n, n]`: one call of the `gemm` crate.
#[allow(clippy::too_many_arguments)]
fn gemm_rows(
    dst: &mut [f32],
    lhs: &[f32],
    j: &[f32],
    rows: usize,
    n: usize,
    accumulate: bool,
    transpose: bool,
    par: gemm::Parallelism,
) {
    assert!(dst.len() >= rows * n && lhs.len() >= rows * n && j.len() >= n * n);
    let nn = n as isize;
    // Jᵀ is read through J's storage with the strides swapped.
    let (rhs_cs, rhs_rs) = if transpose { (nn, 1) } else { (1, nn) };
    // SAFETY: the three buffers hold at least the elements the shapes and strides address
    // (checked above), and `dst` does not alias the inputs (a `&mut` borrow).
    unsafe {
        gemm::gemm(
            rows,
            n,
            n,
            dst.as_mut_ptr(),
            1,
            nn,
            accumulate,
            lhs.as_ptr(),
            1,
            nn,
            j.as_ptr(),
            rhs_cs,
            rhs_rs,
            if accumulate { 1.0f32 } else { 0.0 },
            1.0f32,
            false,
            false,
            false,
            par,
        );
    }
}

impl HostDrift for NlmHostDrift {
    fn drift(&mut self, x: &[f32], rows: usize, out: &mut [f32]) {
        let len = rows * self.n;
        assert!(
            x.len() == len && out.len() == len,
            "x and out must be [rows, N]"
        );
        self.carried = false;
        self.resize(rows);
        self.prepare(x, rows);
        self.gemms(rows);
        if !self.onsager {
            out.copy_from_slice(&self.e);
            return;
        }
        // Pass 2: F = e − φ' ⊙ g.
        let c = chunk_len(len, self.n, self.threads);
        let items: Vec<_> = out
            .chunks_mut(c)
            .zip(self.e.chunks(c))
            .zip(self.dphi.chunks(c))
            .zip(self.g.chunks(c))
            .collect();
        par_each(items, |(((o, e), d), g)| {
            for (((o, &e), &d), &g) in o.iter_mut().zip(e).zip(d).zip(g) {
                *o = e - d * g;
            }
        });
    }

    /// The force, the update and the next step's pass 1 in one pass: after the GEMMs, each
    /// coordinate gets `f = e − φ'g` (or `e`), `x ← em(x, f, w)`, and then `φ`, `φ'` and
    /// `b − x` of the new x, which the next step (`continued`) uses without pass 1. The same
    /// operations as [`HostDrift::drift`] followed by [`em_update`], so the same numbers.
    fn em_step(
        &mut self,
        x: &mut [f32],
        rows: usize,
        w: &[f32],
        em: &EmCoefs,
        continued: bool,
        _scratch: &mut Vec<f32>,
    ) {
        let n = self.n;
        let len = rows * n;
        assert!(x.len() == len, "x must be [rows, N]");
        assert!(
            w.is_empty() || w.len() == len,
            "the noise must be [rows, N]"
        );
        let ready = continued && self.carried && self.phi.len() == len;
        self.resize(rows);
        if !ready {
            self.prepare(x, rows);
        }
        self.gemms(rows);
        let c = chunk_len(len, n, self.threads);
        let (b, onsager) = (&self.b, self.onsager);
        let mut ws: Vec<&[f32]> = w.chunks(c).collect();
        ws.resize(len.div_ceil(c), &[]);
        let items: Vec<_> = x
            .chunks_mut(c)
            .zip(self.phi.chunks_mut(c))
            .zip(self.dphi.chunks_mut(c))
            .zip(self.e.chunks_mut(c))
            .zip(self.g.chunks(c))
            .zip(ws)
            .collect();
        self.carried = true;
        par_each(items, |(((((x, phi), dphi), e), g), w)| {
            update_pass(
                Rows {
                    x,
                    phi,
                    dphi,
                    e,
                    g,
                    w,
                },
                b,
                em,
                onsager,
            )
        });
    }
}

/// One chunk of whole rows for [`update_pass`].
struct Rows<'a> {
    x: &'a mut [f32],
    phi: &'a mut [f32],
    dphi: &'a mut [f32],
    e: &'a mut [f32],
    g: &'a [f32],
    w: &'a [f32],
}

/// The fused force + update + pass-1 sweep of [`NlmHostDrift::em_step`]; AVX2 build picked
/// at run time (same operations, same numbers).
fn update_pass(r: Rows<'_>, b: &[f32], em: &EmCoefs, onsager: bool) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { update_pass_avx2(r, b, em, onsager) };
    }
    update_pass_rows(r, b, em, onsager)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn update_pass_avx2(r: Rows<'_>, b: &[f32], em: &EmCoefs, onsager: bool) {
    update_pass_rows(r, b, em, onsager)
}

#[inline(always)]
fn update_pass_rows(r: Rows<'_>, b: &[f32], em: &EmCoefs, onsager: bool) {
    let n = b.len();
    let noisy = !r.w.is_empty();
    for (k, ((((xr, pr), dr), er), gr)) in
        r.x.chunks_exact_mut(n)
            .zip(r.phi.chunks_exact_mut(n))
            .zip(r.dphi.chunks_exact_mut(n))
            .zip(r.e.chunks_exact_mut(n))
            .zip(r.g.chunks_exact(n))
            .enumerate()
    {
        let wr = if noisy { &r.w[k * n..(k + 1) * n] } else { gr };
        for (((((x, p), d), e), &g), (&w, &b)) in xr
            .iter_mut()
            .zip(pr.iter_mut())
            .zip(dr.iter_mut())
            .zip(er.iter_mut())
            .zip(gr)
            .zip(wr.iter().zip(b))
        {
            let f = if onsager { *e - *d * g } else { *e };
            let xn = if noisy {
                em.noisy(*x, f, w)
            } else {
                em.plain(*x, f)
            };
            *x = xn;
            let t = tanh_f32(xn);
            *p = t;
            *d = 1.0 - t * t;
            *e = b - xn;
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use crate::rng::Rng;

    /// The AVX2 build of the tanh pass gives the portable build's numbers bit for bit.
    #[test]
    fn tanh_pass_is_identical_in_both_builds() {
        let n = 37;
        let x: Vec<f32> = Rng::new(1)
            .normal_vec(n * 9)
            .iter()
            .map(|v| 4.0 * v)
            .collect();
        let b = Rng::new(2).normal_vec(n);
        let mut a = (vec![0f32; n * 9], vec![0f32; n * 9], vec![0f32; n * 9]);
        let mut c = a.clone();
        super::tanh_pass(&mut a.0, &mut a.1, &mut a.2, &x, &b);
        super::tanh_pass_rows(&mut c.0, &mut c.1, &mut c.2, &x, &b);
        assert_eq!(a, c);
        assert!((a.0[5] - x[5].tanh()).abs() < 1e-6 && a.2[n + 3] == b[3] - x[n + 3]);
    }
}
