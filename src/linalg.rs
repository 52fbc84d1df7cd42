//! Small, dependency-free dense linear algebra on `f64`.
//!
//! Everything here works on [`Mat`], a plain row-major dense matrix. The
//! routines are aimed at the sizes that occur in this crate:
//!
//! * [`gram`] / [`at_b`] / [`ridge`] / [`cholesky_solve`]: ridge-regression
//!   read-outs with a tall feature matrix `Φ` (K ≈ 2·10⁴–10⁵ rows, n ≈ 500
//!   columns). The Gram product is register-blocked and split across threads
//!   (deterministically: the result does not depend on the thread count).
//! * [`qr_thin`]: Householder QR of tall, thin matrices (d ≤ 8 columns).
//! * [`solve`] / [`inverse`]: LU with partial pivoting.
//! * [`lyapunov`] / [`ou_entropy_production`]: stationary covariance and
//!   entropy production of small linear (Ornstein–Uhlenbeck) systems.
//! * [`eigenvalues`]: spectrum of small general real matrices (Hessenberg
//!   reduction + Francis double-shift QR).
//! * [`sym_eigen`]: symmetric eigen-decomposition (Householder
//!   tridiagonalisation + implicit QL), fine up to n of a few hundred to ~1000.

use std::fmt;
use std::ops::{Index, IndexMut};

/// Errors reported by the linear-algebra routines.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LinalgError {
    /// Operand shapes are incompatible.
    #[error("dimension mismatch: {0}")]
    DimensionMismatch(String),
    /// Cholesky factorisation met a non-positive (or non-finite) pivot.
    #[error("matrix is not positive definite (pivot {index} = {pivot:e})")]
    NotPositiveDefinite {
        /// Row/column at which the factorisation broke down.
        index: usize,
        /// The offending pivot value (≤ 0 or non-finite).
        pivot: f64,
    },
    /// LU factorisation met a (numerically) zero pivot.
    #[error("matrix is singular to working precision (column {index})")]
    Singular {
        /// Elimination step (column) at which the pivot vanished.
        index: usize,
    },
    /// An argument is outside its admissible range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The input contains NaN or infinite entries.
    #[error("input contains non-finite values")]
    NonFinite,
}

// ---------------------------------------------------------------------------
// Dense matrix type
// ---------------------------------------------------------------------------

/// Dense row-major `f64` matrix: entry `(i, j)` lives at `data[i * cols + j]`.
#[derive(Clone, PartialEq, Default)]
pub struct Mat {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Row-major entries, length `rows * cols`.
    pub data: Vec<f64>,
}

impl fmt::Debug for Mat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Mat {}x{} [", self.rows, self.cols)?;
        for i in 0..self.rows.min(12) {
            write!(f, "  ")?;
            for j in 0..self.cols.min(12) {
                write!(f, "{:>12.5e} ", self[(i, j)])?;
            }
            if self.cols > 12 {
                write!(f, "...")?;
            }
            writeln!(f)?;
        }
        if self.rows > 12 {
            writeln!(f, "  ...")?;
        }
        write!(f, "]")
    }
}

impl Index<(usize, usize)> for Mat {
    type Output = f64;
    #[inline]
    fn index(&self, (i, j): (usize, usize)) -> &f64 {
        debug_assert!(i < self.rows && j < self.cols, "index out of bounds");
        &self.data[i * self.cols + j]
    }
}

impl IndexMut<(usize, usize)> for Mat {
    #[inline]
    fn index_mut(&mut self, (i, j): (usize, usize)) -> &mut f64 {
        debug_assert!(i < self.rows && j < self.cols, "index out of bounds");
        &mut self.data[i * self.cols + j]
    }
}

impl Mat {
    /// `rows × cols` matrix of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Mat {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    /// `n × n` identity.
    pub fn eye(n: usize) -> Self {
        let mut m = Mat::zeros(n, n);
        for i in 0..n {
            m.data[i * n + i] = 1.0;
        }
        m
    }

    /// Builds a matrix from a slice of rows. Panics if the rows are ragged.
    pub fn from_rows(rows: &[Vec<f64>]) -> Self {
        let r = rows.len();
        let c = rows.first().map_or(0, Vec::len);
        let mut data = Vec::with_capacity(r * c);
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(row.len(), c, "Mat::from_rows: row {i} has wrong length");
            data.extend_from_slice(row);
        }
        Mat {
            rows: r,
            cols: c,
            data,
        }
    }

    /// Wraps row-major `data`. Panics if `data.len() != rows * cols`.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<f64>) -> Self {
        assert_eq!(
            data.len(),
            rows * cols,
            "Mat::from_vec: data length does not match shape"
        );
        Mat { rows, cols, data }
    }

    /// Square diagonal matrix with the given diagonal.
    pub fn diag(d: &[f64]) -> Self {
        let n = d.len();
        let mut m = Mat::zeros(n, n);
        for (i, &v) in d.iter().enumerate() {
            m.data[i * n + i] = v;
        }
        m
    }

    /// Entry `(i, j)`.
    #[inline]
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self[(i, j)]
    }

    /// Sets entry `(i, j)`.
    #[inline]
    pub fn set(&mut self, i: usize, j: usize, v: f64) {
        self[(i, j)] = v;
    }

    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// True for square matrices.
    pub fn is_square(&self) -> bool {
        self.rows == self.cols
    }

    /// Row `i` as a slice.
    #[inline]
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Row `i` as a mutable slice.
    #[inline]
    pub fn row_mut(&mut self, i: usize) -> &mut [f64] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Column `j` copied into a vector.
    pub fn col(&self, j: usize) -> Vec<f64> {
        (0..self.rows).map(|i| self[(i, j)]).collect()
    }

    /// Transpose (blocked for cache friendliness).
    pub fn transpose(&self) -> Mat {
        const BS: usize = 32;
        let (r, c) = (self.rows, self.cols);
        let mut t = Mat::zeros(c, r);
        for i0 in (0..r).step_by(BS) {
            for j0 in (0..c).step_by(BS) {
                for i in i0..(i0 + BS).min(r) {
                    for j in j0..(j0 + BS).min(c) {
                        t.data[j * r + i] = self.data[i * c + j];
                    }
                }
            }
        }
        t
    }

    /// Matrix product `self · other`. Panics on shape mismatch.
    pub fn matmul(&self, other: &Mat) -> Mat {
        assert_eq!(
            self.cols, other.rows,
            "Mat::matmul: inner dimensions differ ({}x{} · {}x{})",
            self.rows, self.cols, other.rows, other.cols
        );
        let m = other.cols;
        let mut out = Mat::zeros(self.rows, m);
        if m == 0 {
            return out;
        }
        for (orow, arow) in out
            .data
            .chunks_exact_mut(m)
            .zip(self.data.chunks_exact(self.cols.max(1)))
        {
            for (k, &a) in arow.iter().enumerate() {
                if a != 0.0 {
                    axpy(a, other.row(k), orow);
                }
            }
        }
        out
    }

    /// Matrix–vector product `self · v`. Panics on shape mismatch.
    pub fn matvec(&self, v: &[f64]) -> Vec<f64> {
        assert_eq!(self.cols, v.len(), "Mat::matvec: length mismatch");
        (0..self.rows).map(|i| dot(self.row(i), v)).collect()
    }

    /// Element-wise sum. Panics on shape mismatch.
    pub fn add(&self, other: &Mat) -> Mat {
        assert_eq!(self.shape(), other.shape(), "Mat::add: shape mismatch");
        let data = self
            .data
            .iter()
            .zip(&other.data)
            .map(|(a, b)| a + b)
            .collect();
        Mat::from_vec(self.rows, self.cols, data)
    }

    /// Element-wise difference. Panics on shape mismatch.
    pub fn sub(&self, other: &Mat) -> Mat {
        assert_eq!(self.shape(), other.shape(), "Mat::sub: shape mismatch");
        let data = self
            .data
            .iter()
            .zip(&other.data)
            .map(|(a, b)| a - b)
            .collect();
        Mat::from_vec(self.rows, self.cols, data)
    }

    /// `s · self`.
    pub fn scale(&self, s: f64) -> Mat {
        Mat::from_vec(
            self.rows,
            self.cols,
            self.data.iter().map(|a| a * s).collect(),
        )
    }

    /// Frobenius norm (overflow-safe scaling).
    pub fn frobenius_norm(&self) -> f64 {
        let amax = self.max_abs();
        if amax == 0.0 || !amax.is_finite() {
            return amax;
        }
        let s: f64 = self.data.iter().map(|&a| (a / amax) * (a / amax)).sum();
        amax * s.sqrt()
    }

    /// Largest absolute entry (0 for an empty matrix).
    pub fn max_abs(&self) -> f64 {
        self.data.iter().fold(0.0_f64, |m, &a| m.max(a.abs()))
    }

    /// Sum of the diagonal entries. Panics for non-square matrices.
    pub fn trace(&self) -> f64 {
        assert!(self.is_square(), "Mat::trace: matrix is not square");
        (0..self.rows).map(|i| self[(i, i)]).sum()
    }

    /// True if every entry is finite.
    pub fn is_finite(&self) -> bool {
        self.data.iter().all(|a| a.is_finite())
    }
}

// ---------------------------------------------------------------------------
// Small vector kernels
// ---------------------------------------------------------------------------

/// Dot product with four independent accumulators (lets LLVM vectorise).
#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0_f64; 4];
    let ca = a.chunks_exact(4);
    let cb = b.chunks_exact(4);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        acc[0] += x[0] * y[0];
        acc[1] += x[1] * y[1];
        acc[2] += x[2] * y[2];
        acc[3] += x[3] * y[3];
    }
    let mut s = (acc[0] + acc[2]) + (acc[1] + acc[3]);
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// `y += a · x`.
#[inline]
fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    debug_assert_eq!(x.len(), y.len());
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

fn ensure_finite(m: &Mat) -> Result<(), LinalgError> {
    if m.is_finite() {
        Ok(())
    } else {
        Err(LinalgError::NonFinite)
    }
}

fn ensure_square(m: &Mat, what: &str) -> Result<(), LinalgError> {
    if m.is_square() {
        Ok(())
    } else {
        Err(LinalgError::DimensionMismatch(format!(
            "{what} must be square, got {}x{}",
            m.rows, m.cols
        )))
    }
}

// ---------------------------------------------------------------------------
// AᵀB and the Gram matrix ΦᵀΦ
// ---------------------------------------------------------------------------

/// Rows of `K` processed per cache block in the AᵀB kernels.
const KBLOCK: usize = 128;
/// Output rows per parallel work item.
const STRIP: usize = 32;
/// Below this many multiply-adds the products run single-threaded.
const PAR_THRESHOLD: usize = 4_000_000;

/// Computes the strip `C[i0..i1, j_lo(i0)..q]` of `C = AᵀB`, where `A` is
/// `K × p` and `B` is `K × q` (both row-major). The strip is written
/// row-major into `out` with row stride `q - jlo`.
///
/// The inner kernel accumulates 4×4 output blocks in registers while
/// streaming over a cache-resident block of `K` rows. The summation order for
/// each output entry depends only on `K`, never on how strips are scheduled.
fn atb_strip(a: &Mat, b: &Mat, i0: usize, i1: usize, jlo: usize, out: &mut [f64]) {
    let p = a.cols;
    let q = b.cols;
    let k_total = a.rows;
    let w = q - jlo;
    debug_assert_eq!(out.len(), (i1 - i0) * w);
    out.fill(0.0);
    for k0 in (0..k_total).step_by(KBLOCK) {
        let k1 = (k0 + KBLOCK).min(k_total);
        let mut i = i0;
        while i < i1 {
            let ih = (i1 - i).min(4);
            let mut j = jlo;
            while j < q {
                let jw = (q - j).min(4);
                if ih == 4 && jw == 4 {
                    let mut acc = [[0.0_f64; 4]; 4];
                    for k in k0..k1 {
                        let ar: &[f64; 4] = a.data[k * p + i..k * p + i + 4].try_into().unwrap();
                        let br: &[f64; 4] = b.data[k * q + j..k * q + j + 4].try_into().unwrap();
                        for (accr, &av) in acc.iter_mut().zip(ar) {
                            for (c, &bv) in accr.iter_mut().zip(br) {
                                *c += av * bv;
                            }
                        }
                    }
                    for (ii, accr) in acc.iter().enumerate() {
                        let o = (i - i0 + ii) * w + (j - jlo);
                        for (dst, &v) in out[o..o + 4].iter_mut().zip(accr) {
                            *dst += v;
                        }
                    }
                } else {
                    let mut acc = [[0.0_f64; 4]; 4];
                    for k in k0..k1 {
                        let ar = &a.data[k * p + i..k * p + i + ih];
                        let br = &b.data[k * q + j..k * q + j + jw];
                        for (accr, &av) in acc.iter_mut().zip(ar) {
                            for (c, &bv) in accr.iter_mut().zip(br) {
                                *c += av * bv;
                            }
                        }
                    }
                    for (ii, accr) in acc.iter().enumerate().take(ih) {
                        let o = (i - i0 + ii) * w + (j - jlo);
                        for (dst, &v) in out[o..o + jw].iter_mut().zip(accr) {
                            *dst += v;
                        }
                    }
                }
                j += 4;
            }
            i += 4;
        }
    }
}

/// Number of worker threads to use for `work` multiply-adds.
fn worker_count(work: usize, items: usize) -> usize {
    if work < PAR_THRESHOLD || items < 2 {
        return 1;
    }
    crate::device::cpu_threads().min(items).min(64)
}

/// Maps `f` over `items` on `threads` scoped worker threads (dynamic
/// scheduling). Results come back in arbitrary order; callers key them.
fn par_map<T: Send>(items: &[usize], threads: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    if threads <= 1 {
        return items.iter().map(|&x| f(x)).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let t = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if t >= items.len() {
                            break;
                        }
                        mine.push(f(items[t]));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("linalg worker thread panicked"))
            .collect()
    })
}

/// Computes `C = AᵀB` row-strip by row-strip; `jlo_of(i0)` gives the first
/// column computed for the strip starting at row `i0` (0 for a full product,
/// `i0` for the upper triangle of a Gram matrix). Entries left of `jlo_of`
/// are left at zero.
fn atb_strips(a: &Mat, b: &Mat, jlo_of: impl Fn(usize) -> usize + Sync) -> Mat {
    let p = a.cols;
    let q = b.cols;
    let mut c = Mat::zeros(p, q);
    if p == 0 || q == 0 {
        return c;
    }
    let starts: Vec<usize> = (0..p).step_by(STRIP).collect();
    let work: usize = starts
        .iter()
        .map(|&i0| (STRIP.min(p - i0)) * (q - jlo_of(i0)) * a.rows)
        .sum();
    let threads = worker_count(work, starts.len());

    let run_strip = |i0: usize| -> (usize, usize, Vec<f64>) {
        let i1 = (i0 + STRIP).min(p);
        let jlo = jlo_of(i0);
        let mut buf = vec![0.0; (i1 - i0) * (q - jlo)];
        atb_strip(a, b, i0, i1, jlo, &mut buf);
        (i0, jlo, buf)
    };

    // Dynamic scheduling: strips have unequal cost for the Gram product.
    let results = par_map(&starts, threads, run_strip);

    for (i0, jlo, buf) in results {
        let w = q - jlo;
        for (ii, src) in buf.chunks_exact(w).enumerate() {
            c.row_mut(i0 + ii)[jlo..].copy_from_slice(src);
        }
    }
    c
}

/// `AᵀB` for `A: K × p`, `B: K × q` (same number of rows). Panics if the row
/// counts differ. Cache-blocked and multi-threaded for large inputs.
pub fn at_b(a: &Mat, b: &Mat) -> Mat {
    assert_eq!(
        a.rows, b.rows,
        "at_b: row counts differ ({} vs {})",
        a.rows, b.rows
    );
    if b.cols < 8 {
        atb_narrow(a, b)
    } else {
        atb_strips(a, b, |_| 0)
    }
}

/// `AᵀB` for narrow `B` (few columns, e.g. ridge targets): accumulates
/// `(AᵀB)ᵀ = BᵀA` with contiguous, vectorisable axpys over the rows of `A`.
/// Work is split over column ranges of `A`, so every entry is summed in the
/// same order regardless of the thread count.
fn atb_narrow(a: &Mat, b: &Mat) -> Mat {
    let (k_total, p, q) = (a.rows, a.cols, b.cols);
    let mut c = Mat::zeros(p, q);
    if p == 0 || q == 0 {
        return c;
    }
    const CHUNK: usize = 128;
    let starts: Vec<usize> = (0..p).step_by(CHUNK).collect();
    let threads = worker_count(k_total * p * q, starts.len());
    let run = |j0: usize| -> (usize, Vec<f64>) {
        let j1 = (j0 + CHUNK).min(p);
        let w = j1 - j0;
        let mut ct = vec![0.0; q * w]; // q × w, row-major
        for k in 0..k_total {
            let arow = &a.data[k * p + j0..k * p + j1];
            for (t, &bv) in b.row(k).iter().enumerate() {
                if bv != 0.0 {
                    axpy(bv, arow, &mut ct[t * w..(t + 1) * w]);
                }
            }
        }
        (j0, ct)
    };
    let results = par_map(&starts, threads, run);
    for (j0, ct) in results {
        let w = ct.len() / q;
        for t in 0..q {
            for jj in 0..w {
                c.data[(j0 + jj) * q + t] = ct[t * w + jj];
            }
        }
    }
    c
}

/// Gram matrix `ΦᵀΦ` (n × n) of a tall `K × n` matrix. Only the upper
/// triangle is computed (in register-blocked strips, multi-threaded for large
/// inputs) and then mirrored, so the result is exactly symmetric.
pub fn gram(phi: &Mat) -> Mat {
    let n = phi.cols;
    // Each strip computes columns from its first row onward; the few
    // sub-diagonal entries inside its diagonal block are overwritten below.
    let mut g = atb_strips(phi, phi, |i0| i0);
    for i in 0..n {
        for j in 0..i {
            g.data[i * n + j] = g.data[j * n + i];
        }
    }
    g
}

// ---------------------------------------------------------------------------
// Cholesky
// ---------------------------------------------------------------------------

/// Lower-triangular Cholesky factor `L` (row-major, `A = L Lᵀ`) of a symmetric
/// positive-definite matrix. Only the lower triangle of `a` is read.
pub fn cholesky(a: &Mat) -> Result<Mat, LinalgError> {
    ensure_square(a, "cholesky: matrix")?;
    ensure_finite(a)?;
    let n = a.rows;
    let mut l = Mat::zeros(n, n);
    for i in 0..n {
        // Row i of L only depends on rows 0..i, which are already final.
        let (done, rest) = l.data.split_at_mut(i * n);
        let li = &mut rest[..n];
        for j in 0..i {
            let lj = &done[j * n..j * n + j];
            let s = a.data[i * n + j] - dot(&li[..j], lj);
            li[j] = s / done[j * n + j];
        }
        let d = a.data[i * n + i] - dot(&li[..i], &li[..i]);
        if d <= 0.0 || !d.is_finite() {
            return Err(LinalgError::NotPositiveDefinite { index: i, pivot: d });
        }
        li[i] = d.sqrt();
    }
    Ok(l)
}

/// Solves `L Lᵀ X = B` in place given the Cholesky factor `L`.
fn cholesky_substitute(l: &Mat, x: &mut Mat) {
    let n = l.rows;
    let m = x.cols;
    if m == 0 {
        return;
    }
    // Forward: L Y = B, row by row (row-oriented axpys on X).
    for i in 0..n {
        let (prev, cur) = x.data.split_at_mut(i * m);
        let xi = &mut cur[..m];
        let lrow = l.row(i);
        for (j, &lij) in lrow[..i].iter().enumerate() {
            if lij != 0.0 {
                axpy(-lij, &prev[j * m..(j + 1) * m], xi);
            }
        }
        let inv = 1.0 / lrow[i];
        xi.iter_mut().for_each(|v| *v *= inv);
    }
    // Backward: Lᵀ X = Y. Column-oriented on Lᵀ == row-oriented on L.
    for i in (0..n).rev() {
        let (prev, cur) = x.data.split_at_mut(i * m);
        let xi = &mut cur[..m];
        let lrow = l.row(i);
        let inv = 1.0 / lrow[i];
        xi.iter_mut().for_each(|v| *v *= inv);
        for (j, &lij) in lrow[..i].iter().enumerate() {
            if lij != 0.0 {
                axpy(-lij, xi, &mut prev[j * m..(j + 1) * m]);
            }
        }
    }
}

/// Solves `A X = B` for symmetric positive-definite `A` (n × n) and any
/// number of right-hand sides `B` (n × m) via Cholesky. Only the lower
/// triangle of `a` is read. Fails with
/// [`LinalgError::NotPositiveDefinite`] if a pivot is not positive.
pub fn cholesky_solve(a: &Mat, b: &Mat) -> Result<Mat, LinalgError> {
    ensure_square(a, "cholesky_solve: A")?;
    if b.rows != a.rows {
        return Err(LinalgError::DimensionMismatch(format!(
            "cholesky_solve: A is {}x{} but B has {} rows",
            a.rows, a.cols, b.rows
        )));
    }
    ensure_finite(b)?;
    let l = cholesky(a)?;
    let mut x = b.clone();
    cholesky_substitute(&l, &mut x);
    Ok(x)
}

// ---------------------------------------------------------------------------
// Ridge regression
// ---------------------------------------------------------------------------

/// Ridge regression with multiple outputs.
///
/// Solves `min_X ‖Φ X − Y‖²_F + λ ‖X_pen‖²_F` through the normal equations
/// `(ΦᵀΦ + λ P) X = ΦᵀY`, where `Φ` is `K × n`, `Y` is `K × m`, `X` is `n × m`
/// and `P = I`, except that with `unpenalized_last = true` the last diagonal
/// entry of `P` is 0 (the last column of `Φ` is a bias/constant column whose
/// weights — the last row of `X` — are not shrunk).
///
/// **Loss convention:** the data term is the plain *sum* of squared residuals
/// over all `K` rows — it is *not* divided by `K`. To minimise the mean loss
/// `(1/K)‖ΦX − Y‖² + λ'‖X_pen‖²` pass `lambda = K · λ'`.
///
/// Requires `lambda ≥ 0` and finite; fails with
/// [`LinalgError::NotPositiveDefinite`] if the regularised system is singular
/// (e.g. `lambda = 0` with rank-deficient `Φ`).
pub fn ridge(phi: &Mat, y: &Mat, lambda: f64, unpenalized_last: bool) -> Result<Mat, LinalgError> {
    if phi.rows != y.rows {
        return Err(LinalgError::DimensionMismatch(format!(
            "ridge: Φ has {} rows but Y has {}",
            phi.rows, y.rows
        )));
    }
    if !(lambda >= 0.0 && lambda.is_finite()) {
        return Err(LinalgError::InvalidArgument(format!(
            "ridge: lambda must be finite and >= 0, got {lambda}"
        )));
    }
    ensure_finite(phi)?;
    ensure_finite(y)?;
    let n = phi.cols;
    let mut g = gram(phi);
    let penalised = if unpenalized_last {
        n.saturating_sub(1)
    } else {
        n
    };
    for i in 0..penalised {
        g.data[i * n + i] += lambda;
    }
    let rhs = at_b(phi, y);
    cholesky_solve(&g, &rhs)
}

// ---------------------------------------------------------------------------
// Thin QR
// ---------------------------------------------------------------------------

/// Thin Householder QR of an `n × d` matrix: `A = Q R` with `Q` (`n × k`,
/// orthonormal columns) and `R` (`k × d`, upper triangular), `k = min(n, d)`.
/// For the usual tall case (`n ≥ d`) this is `Q: n × d`, `R: d × d`.
///
/// Signs are normalised so that `diag(R) ≥ 0`, which makes the factorisation
/// unique for full-rank `A` (convenient for Lyapunov-exponent
/// re-orthonormalisation, where `ln R_ii` is accumulated).
pub fn qr_thin(a: &Mat) -> (Mat, Mat) {
    let n = a.rows;
    let d = a.cols;
    let k = n.min(d);
    // Work on columns stored contiguously.
    let mut cols: Vec<Vec<f64>> = (0..d).map(|j| a.col(j)).collect();
    let mut vs: Vec<Vec<f64>> = Vec::with_capacity(k);
    for j in 0..k {
        let x = &cols[j][j..];
        let scale = x.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let mut v: Vec<f64> = x.to_vec();
        if scale == 0.0 {
            vs.push(Vec::new()); // identity reflector
            continue;
        }
        let norm = scale
            * x.iter()
                .map(|t| (t / scale) * (t / scale))
                .sum::<f64>()
                .sqrt();
        let alpha = if x[0] >= 0.0 { -norm } else { norm };
        v[0] -= alpha;
        let vnorm = scale_norm(&v);
        if vnorm == 0.0 {
            vs.push(Vec::new());
            continue;
        }
        v.iter_mut().for_each(|t| *t /= vnorm);
        for c in cols.iter_mut().skip(j) {
            let seg = &mut c[j..];
            let s = 2.0 * dot(&v, seg);
            axpy(-s, &v, seg);
        }
        // Exact values for the reflected column.
        cols[j][j] = alpha;
        for t in cols[j][j + 1..].iter_mut() {
            *t = 0.0;
        }
        vs.push(v);
    }
    let mut r = Mat::zeros(k, d);
    for (jc, c) in cols.iter().enumerate() {
        for i in 0..k.min(jc + 1) {
            r[(i, jc)] = c[i];
        }
    }
    // Q = H_0 H_1 … H_{k-1} [I_k; 0], built column by column.
    let mut qcols: Vec<Vec<f64>> = (0..k)
        .map(|j| {
            let mut e = vec![0.0; n];
            e[j] = 1.0;
            e
        })
        .collect();
    for (j, v) in vs.iter().enumerate().rev() {
        if v.is_empty() {
            continue;
        }
        for qc in qcols.iter_mut() {
            let seg = &mut qc[j..];
            let s = 2.0 * dot(v, seg);
            axpy(-s, v, seg);
        }
    }
    for i in 0..k {
        if r[(i, i)] < 0.0 {
            r.row_mut(i).iter_mut().for_each(|t| *t = -*t);
            qcols[i].iter_mut().for_each(|t| *t = -*t);
        }
    }
    let mut q = Mat::zeros(n, k);
    for (j, qc) in qcols.iter().enumerate() {
        for (i, &v) in qc.iter().enumerate() {
            q[(i, j)] = v;
        }
    }
    (q, r)
}

fn scale_norm(v: &[f64]) -> f64 {
    let s = v.iter().fold(0.0_f64, |m, t| m.max(t.abs()));
    if s == 0.0 {
        return 0.0;
    }
    s * v.iter().map(|t| (t / s) * (t / s)).sum::<f64>().sqrt()
}

// ---------------------------------------------------------------------------
// LU with partial pivoting
// ---------------------------------------------------------------------------

/// Packed LU factorisation `P A = L U` (unit lower `L` below the diagonal).
struct Lu {
    lu: Mat,
    perm: Vec<usize>,
}

fn lu_factor(a: &Mat) -> Result<Lu, LinalgError> {
    ensure_square(a, "LU: matrix")?;
    ensure_finite(a)?;
    let n = a.rows;
    let mut lu = a.clone();
    let mut perm: Vec<usize> = (0..n).collect();
    // Pivots below this are treated as zero (rank deficiency at working
    // precision); relative to the largest entry of A.
    let tol = a.max_abs() * f64::EPSILON * (n as f64);
    for k in 0..n {
        let (mut p, mut pmax) = (k, lu[(k, k)].abs());
        for i in k + 1..n {
            let v = lu[(i, k)].abs();
            if v > pmax {
                p = i;
                pmax = v;
            }
        }
        if pmax <= tol || pmax == 0.0 {
            return Err(LinalgError::Singular { index: k });
        }
        if p != k {
            for j in 0..n {
                lu.data.swap(k * n + j, p * n + j);
            }
            perm.swap(k, p);
        }
        let (top, bottom) = lu.data.split_at_mut((k + 1) * n);
        let pivot_row = &top[k * n..(k + 1) * n];
        let inv = 1.0 / pivot_row[k];
        for row in bottom.chunks_exact_mut(n) {
            let f = row[k] * inv;
            row[k] = f;
            if f != 0.0 {
                axpy(-f, &pivot_row[k + 1..], &mut row[k + 1..]);
            }
        }
    }
    Ok(Lu { lu, perm })
}

impl Lu {
    fn solve(&self, b: &Mat) -> Mat {
        let n = self.lu.rows;
        let m = b.cols;
        let mut x = Mat::zeros(n, m);
        for (i, &pi) in self.perm.iter().enumerate() {
            x.row_mut(i).copy_from_slice(b.row(pi));
        }
        if m == 0 {
            return x;
        }
        for i in 0..n {
            let (prev, cur) = x.data.split_at_mut(i * m);
            let xi = &mut cur[..m];
            for (j, &f) in self.lu.row(i)[..i].iter().enumerate() {
                if f != 0.0 {
                    axpy(-f, &prev[j * m..(j + 1) * m], xi);
                }
            }
        }
        for i in (0..n).rev() {
            let (cur, next) = x.data.split_at_mut((i + 1) * m);
            let xi = &mut cur[i * m..];
            let urow = self.lu.row(i);
            for (j, &u) in urow.iter().enumerate().skip(i + 1) {
                if u != 0.0 {
                    let off = (j - i - 1) * m;
                    axpy(-u, &next[off..off + m], xi);
                }
            }
            let inv = 1.0 / urow[i];
            xi.iter_mut().for_each(|v| *v *= inv);
        }
        x
    }
}

/// Solves `A X = B` for square `A` (LU with partial pivoting). Fails with
/// [`LinalgError::Singular`] if a pivot is below `n·ε·max|A|`.
pub fn solve(a: &Mat, b: &Mat) -> Result<Mat, LinalgError> {
    ensure_square(a, "solve: A")?;
    if b.rows != a.rows {
        return Err(LinalgError::DimensionMismatch(format!(
            "solve: A is {}x{} but B has {} rows",
            a.rows, a.cols, b.rows
        )));
    }
    ensure_finite(b)?;
    Ok(lu_factor(a)?.solve(b))
}

/// Inverse of a square matrix (LU with partial pivoting).
pub fn inverse(a: &Mat) -> Result<Mat, LinalgError> {
    ensure_square(a, "inverse: matrix")?;
    solve(a, &Mat::eye(a.rows))
}

/// Determinant (via LU); 0 for numerically singular matrices.
pub fn determinant(a: &Mat) -> Result<f64, LinalgError> {
    ensure_square(a, "determinant: matrix")?;
    match lu_factor(a) {
        Ok(f) => {
            let n = a.rows;
            let mut det: f64 = (0..n).map(|i| f.lu[(i, i)]).product();
            // Parity of the permutation.
            let mut seen = vec![false; n];
            for s in 0..n {
                if seen[s] {
                    continue;
                }
                let mut len = 0;
                let mut t = s;
                while !seen[t] {
                    seen[t] = true;
                    t = f.perm[t];
                    len += 1;
                }
                if len % 2 == 0 {
                    det = -det;
                }
            }
            Ok(det)
        }
        Err(LinalgError::Singular { .. }) => Ok(0.0),
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------
// Lyapunov equation and OU entropy production
// ---------------------------------------------------------------------------

/// Solves the continuous Lyapunov equation `B S + S Bᵀ = 2 D` for `S`
/// (the stationary covariance of `dx = −B x dt + √(2D) dW` when `B` is
/// stable). Uses the Kronecker form `(B ⊗ I + I ⊗ B) vec(S) = 2 vec(D)`, an
/// `n² × n²` dense solve, so it is intended for small `n` (≤ 6 or so; works
/// for any `n` but costs O(n⁶)). The solution is unique iff no two
/// eigenvalues of `B` sum to zero; otherwise [`LinalgError::Singular`].
/// If `D` is symmetric the returned `S` is symmetrised exactly.
pub fn lyapunov(b: &Mat, d: &Mat) -> Result<Mat, LinalgError> {
    ensure_square(b, "lyapunov: B")?;
    if d.shape() != b.shape() {
        return Err(LinalgError::DimensionMismatch(format!(
            "lyapunov: B is {}x{} but D is {}x{}",
            b.rows, b.cols, d.rows, d.cols
        )));
    }
    ensure_finite(b)?;
    ensure_finite(d)?;
    let n = b.rows;
    let nn = n * n;
    // Row-major vec: index (i, j) -> i n + j.
    // (B S)_{ij} = Σ_k B_ik S_kj ; (S Bᵀ)_{ij} = Σ_l S_il B_jl.
    let mut m = Mat::zeros(nn, nn);
    for i in 0..n {
        for j in 0..n {
            let r = i * n + j;
            for k in 0..n {
                m[(r, k * n + j)] += b[(i, k)];
                m[(r, i * n + k)] += b[(j, k)];
            }
        }
    }
    let rhs = Mat::from_vec(nn, 1, d.data.iter().map(|v| 2.0 * v).collect());
    let s = solve(&m, &rhs)?;
    let mut s = Mat::from_vec(n, n, s.data);
    let d_sym = (0..n).all(|i| (0..i).all(|j| d[(i, j)] == d[(j, i)]));
    if d_sym {
        for i in 0..n {
            for j in 0..i {
                let v = 0.5 * (s[(i, j)] + s[(j, i)]);
                s[(i, j)] = v;
                s[(j, i)] = v;
            }
        }
    }
    Ok(s)
}

/// Entropy production rate of the linear OU process
/// `dx = −B x dt + √(2D) dW` in its stationary state:
///
/// `Φ = −tr(D⁻¹ B Q)`, with `S` solving `B S + S Bᵀ = 2D` and `Q = B S − D`
/// (the antisymmetric / irreversible part). `Φ ≥ 0`, and `Φ = 0` iff the
/// process is in detailed balance. For `B = [[a, −θ], [θ, a]]`,
/// `D = ε I` this is `2θ²/a`.
pub fn ou_entropy_production(b: &Mat, d: &Mat) -> Result<f64, LinalgError> {
    let s = lyapunov(b, d)?;
    let q = b.matmul(&s).sub(d);
    let bq = b.matmul(&q);
    let x = solve(d, &bq)?;
    Ok(-x.trace())
}

// ---------------------------------------------------------------------------
// General real eigenvalues: balancing + Hessenberg + Francis double shift QR
// ---------------------------------------------------------------------------

/// Parlett–Reinsch balancing by powers of two (similarity transform, exact in
/// floating point); improves eigenvalue accuracy for badly scaled matrices.
fn balance(h: &mut Mat) {
    let n = h.rows;
    const RADIX: f64 = 2.0;
    let sqr = RADIX * RADIX;
    let mut done = false;
    let mut sweeps = 0;
    while !done && sweeps < 100 {
        done = true;
        sweeps += 1;
        for i in 0..n {
            let mut r = 0.0;
            let mut c = 0.0;
            for j in 0..n {
                if j != i {
                    c += h[(j, i)].abs();
                    r += h[(i, j)].abs();
                }
            }
            if c == 0.0 || r == 0.0 {
                continue;
            }
            let mut g = r / RADIX;
            let mut f = 1.0;
            let s = c + r;
            while c < g {
                f *= RADIX;
                c *= sqr;
            }
            g = r * RADIX;
            while c > g {
                f /= RADIX;
                c /= sqr;
            }
            if (c + r) / f < 0.95 * s {
                done = false;
                let inv = 1.0 / f;
                for j in 0..n {
                    h[(i, j)] *= inv;
                }
                for j in 0..n {
                    h[(j, i)] *= f;
                }
            }
        }
    }
}

/// Householder reduction to upper Hessenberg form (similarity transform).
fn hessenberg(h: &mut Mat) {
    let n = h.rows;
    if n < 3 {
        return;
    }
    for k in 0..n - 2 {
        let x: Vec<f64> = (k + 1..n).map(|i| h[(i, k)]).collect();
        let norm = scale_norm(&x);
        if norm == 0.0 {
            continue;
        }
        let alpha = if x[0] >= 0.0 { -norm } else { norm };
        let mut v = x;
        v[0] -= alpha;
        let vn = scale_norm(&v);
        if vn == 0.0 {
            continue;
        }
        v.iter_mut().for_each(|t| *t /= vn);
        // Left: rows k+1..n, H ← (I − 2vvᵀ) H.
        let mut w = vec![0.0; n];
        for (ii, &vi) in v.iter().enumerate() {
            axpy(vi, h.row(k + 1 + ii), &mut w);
        }
        for (ii, &vi) in v.iter().enumerate() {
            axpy(-2.0 * vi, &w, h.row_mut(k + 1 + ii));
        }
        // Right: columns k+1..n, H ← H (I − 2vvᵀ).
        for i in 0..n {
            let row = h.row_mut(i);
            let s = 2.0 * dot(&row[k + 1..], &v);
            axpy(-s, &v, &mut row[k + 1..]);
        }
        h[(k + 1, k)] = alpha;
        for i in k + 2..n {
            h[(i, k)] = 0.0;
        }
    }
}

/// Eigenvalues of an upper Hessenberg matrix by the Francis double-shift QR
/// iteration with deflation. Returns `None` if some eigenvalue fails to
/// converge.
fn hessenberg_eigenvalues(h: &mut Mat) -> Option<Vec<(f64, f64)>> {
    let n = h.rows;
    let mut out = vec![(0.0, 0.0); n];
    let norm: f64 = (0..n)
        .flat_map(|i| (i.saturating_sub(1)..n).map(move |j| (i, j)))
        .map(|(i, j)| h[(i, j)].abs())
        .sum();
    if norm == 0.0 {
        return Some(out);
    }
    let mut shift_acc = 0.0; // accumulated exceptional shifts
    let mut hi = n as isize - 1; // active window is rows lo..=hi
    let mut its = 0;
    while hi >= 0 {
        let u = hi as usize;
        // Find the start `lo` of the unreduced block ending at `u`.
        let mut lo = u;
        while lo > 0 {
            let mut s = h[(lo - 1, lo - 1)].abs() + h[(lo, lo)].abs();
            if s == 0.0 {
                s = norm;
            }
            if h[(lo, lo - 1)].abs() <= f64::EPSILON * s {
                h[(lo, lo - 1)] = 0.0;
                break;
            }
            lo -= 1;
        }
        let x = h[(u, u)];
        if lo == u {
            // 1×1 block deflated.
            out[u] = (x + shift_acc, 0.0);
            hi -= 1;
            its = 0;
            continue;
        }
        let y = h[(u - 1, u - 1)];
        let w = h[(u, u - 1)] * h[(u - 1, u)];
        if lo + 1 == u {
            // 2×2 block deflated: eigenvalues of [[y, ·], [·, x]].
            let p = 0.5 * (y - x);
            let disc = p * p + w;
            let z = disc.abs().sqrt();
            let base = x + shift_acc;
            if disc >= 0.0 {
                let zz = p + if p >= 0.0 { z } else { -z };
                let e1 = base + zz;
                let e2 = if zz != 0.0 { base - w / zz } else { e1 };
                out[u - 1] = (e1, 0.0);
                out[u] = (e2, 0.0);
            } else {
                out[u - 1] = (base + p, z);
                out[u] = (base + p, -z);
            }
            hi -= 2;
            its = 0;
            continue;
        }
        if its >= 60 {
            return None;
        }
        // Shift parameters (x, y, w) from the trailing 2×2 block, or an
        // ad-hoc exceptional shift to break cycles.
        let (mut x, mut y, mut w) = (x, y, w);
        if its == 10 || its == 20 || its == 40 {
            shift_acc += x;
            for i in 0..=u {
                h[(i, i)] -= x;
            }
            let s = h[(u, u - 1)].abs() + h[(u - 1, u - 2)].abs();
            x = 0.75 * s;
            y = x;
            w = -0.4375 * s * s;
        }
        its += 1;
        // Look for two consecutive small sub-diagonals to start the bulge.
        let mut m = u - 2;
        let (mut p, mut q, mut r);
        loop {
            let z = h[(m, m)];
            let rr = x - z;
            let ss = y - z;
            p = (rr * ss - w) / h[(m + 1, m)] + h[(m, m + 1)];
            q = h[(m + 1, m + 1)] - z - rr - ss;
            r = h[(m + 2, m + 1)];
            let s = p.abs() + q.abs() + r.abs();
            p /= s;
            q /= s;
            r /= s;
            if m == lo {
                break;
            }
            let left = h[(m, m - 1)].abs() * (q.abs() + r.abs());
            let right = p.abs() * (h[(m - 1, m - 1)].abs() + z.abs() + h[(m + 1, m + 1)].abs());
            if left <= f64::EPSILON * right {
                break;
            }
            m -= 1;
        }
        for i in m + 2..=u {
            h[(i, i - 2)] = 0.0;
            if i != m + 2 {
                h[(i, i - 3)] = 0.0;
            }
        }
        // Chase the bulge with 3×3 Householder reflectors.
        let mut scale = 0.0;
        for k in m..u {
            if k != m {
                p = h[(k, k - 1)];
                q = h[(k + 1, k - 1)];
                r = if k + 1 != u { h[(k + 2, k - 1)] } else { 0.0 };
                scale = p.abs() + q.abs() + r.abs();
                if scale != 0.0 {
                    p /= scale;
                    q /= scale;
                    r /= scale;
                }
            }
            let nrm = (p * p + q * q + r * r).sqrt();
            let s = if p >= 0.0 { nrm } else { -nrm };
            if s == 0.0 {
                continue;
            }
            if k == m {
                if lo != m {
                    h[(k, k - 1)] = -h[(k, k - 1)];
                }
            } else {
                h[(k, k - 1)] = -s * scale;
            }
            p += s;
            let (vx, vy, vz) = (p / s, q / s, r / s);
            let (q2, r2) = (q / p, r / p);
            let three = k + 1 != u;
            // Row operation on rows k, k+1, (k+2).
            for j in k..n {
                let mut t = h[(k, j)] + q2 * h[(k + 1, j)];
                if three {
                    t += r2 * h[(k + 2, j)];
                    h[(k + 2, j)] -= t * vz;
                }
                h[(k + 1, j)] -= t * vy;
                h[(k, j)] -= t * vx;
            }
            // Column operation on columns k, k+1, (k+2).
            let imax = u.min(k + 3);
            for i in 0..=imax {
                let mut t = vx * h[(i, k)] + vy * h[(i, k + 1)];
                if three {
                    t += vz * h[(i, k + 2)];
                    h[(i, k + 2)] -= t * r2;
                }
                h[(i, k + 1)] -= t * q2;
                h[(i, k)] -= t;
            }
        }
    }
    Some(out)
}

/// Eigenvalues `(re, im)` of a small general real square matrix (intended
/// for n ≲ 50; tested for n ≤ 8). Balancing, Householder reduction to
/// Hessenberg form and Francis double-shift QR. Complex eigenvalues come in
/// conjugate pairs. The result is sorted by decreasing real part, then by
/// decreasing imaginary part. If the iteration fails to converge (extremely
/// rare) or the input is non-finite, all entries are NaN.
///
/// Panics if `a` is not square.
pub fn eigenvalues(a: &Mat) -> Vec<(f64, f64)> {
    assert!(a.is_square(), "eigenvalues: matrix must be square");
    let n = a.rows;
    if !a.is_finite() {
        return vec![(f64::NAN, f64::NAN); n];
    }
    let mut h = a.clone();
    balance(&mut h);
    hessenberg(&mut h);
    match hessenberg_eigenvalues(&mut h) {
        Some(mut ev) => {
            ev.sort_by(|x, y| y.0.total_cmp(&x.0).then(y.1.total_cmp(&x.1)));
            ev
        }
        None => vec![(f64::NAN, f64::NAN); n],
    }
}

// ---------------------------------------------------------------------------
// Symmetric eigen-decomposition
// ---------------------------------------------------------------------------

/// Householder tridiagonalisation of a symmetric matrix (full storage, both
/// triangles used). Returns `(diag, offdiag, Qᵀ)` with `A = Q T Qᵀ`;
/// `offdiag[i]` couples `i` and `i+1` (`offdiag[n-1] = 0`).
fn tridiagonalize(a: &Mat) -> (Vec<f64>, Vec<f64>, Mat) {
    let n = a.rows;
    let mut w = a.clone();
    let mut reflectors: Vec<(usize, Vec<f64>)> = Vec::new();
    for k in 0..n.saturating_sub(2) {
        // Column k below the diagonal == row k right of the diagonal.
        let x = &w.row(k)[k + 1..];
        let norm = scale_norm(x);
        if norm == 0.0 {
            continue;
        }
        let alpha = if x[0] >= 0.0 { -norm } else { norm };
        let mut v = x.to_vec();
        v[0] -= alpha;
        let vn = scale_norm(&v);
        if vn == 0.0 {
            continue;
        }
        v.iter_mut().for_each(|t| *t /= vn);
        // Trailing block A22 (rows/cols k+1..n): A22 ← H A22 H, H = I − 2vvᵀ.
        // p = 2 A22 v ; c = vᵀp ; z = p − c v ; A22 ← A22 − v zᵀ − z vᵀ.
        let m = n - k - 1;
        let mut p = vec![0.0; m];
        for (ii, pi) in p.iter_mut().enumerate() {
            *pi = 2.0 * dot(&w.row(k + 1 + ii)[k + 1..], &v);
        }
        let c = dot(&v, &p);
        let z: Vec<f64> = p.iter().zip(&v).map(|(pi, vi)| pi - c * vi).collect();
        for ii in 0..m {
            let (vi, zi) = (v[ii], z[ii]);
            let row = &mut w.row_mut(k + 1 + ii)[k + 1..];
            for ((r, &vj), &zj) in row.iter_mut().zip(&v).zip(&z) {
                *r -= vi * zj + zi * vj;
            }
        }
        w[(k + 1, k)] = alpha;
        w[(k, k + 1)] = alpha;
        for j in k + 2..n {
            w[(k, j)] = 0.0;
            w[(j, k)] = 0.0;
        }
        reflectors.push((k, v));
    }
    let diag: Vec<f64> = (0..n).map(|i| w[(i, i)]).collect();
    let mut off = vec![0.0; n];
    for i in 0..n.saturating_sub(1) {
        off[i] = w[(i + 1, i)];
    }
    // Qᵀ = H_last … H_1 H_0 ; apply H_0 first from the left onto I.
    let mut qt = Mat::eye(n);
    let mut t = vec![0.0; n];
    for (k, v) in &reflectors {
        let s0 = k + 1;
        t.fill(0.0);
        for (ii, &vi) in v.iter().enumerate() {
            axpy(vi, qt.row(s0 + ii), &mut t);
        }
        for (ii, &vi) in v.iter().enumerate() {
            axpy(-2.0 * vi, &t, qt.row_mut(s0 + ii));
        }
    }
    (diag, off, qt)
}

/// Implicit QL iteration with Wilkinson-type shifts on a symmetric
/// tridiagonal matrix. Rotations are applied to the *rows* of `zt`
/// (= transposed eigenvector matrix), which are contiguous in memory.
/// Returns `false` if some eigenvalue failed to converge.
fn tridiagonal_ql(d: &mut [f64], e: &mut [f64], zt: &mut Mat) -> bool {
    let n = d.len();
    let cols = zt.cols;
    for l in 0..n {
        let mut iter = 0;
        loop {
            let mut m = l;
            while m + 1 < n {
                let dd = d[m].abs() + d[m + 1].abs();
                if e[m].abs() <= f64::EPSILON * dd {
                    break;
                }
                m += 1;
            }
            if m == l {
                break;
            }
            iter += 1;
            if iter > 100 {
                return false;
            }
            let mut g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            let mut r = g.hypot(1.0);
            g = d[m] - d[l] + e[l] / (g + if g >= 0.0 { r } else { -r });
            let (mut s, mut c, mut p) = (1.0_f64, 1.0_f64, 0.0_f64);
            let mut underflow = false;
            let mut i = m;
            while i > l {
                i -= 1;
                let f = s * e[i];
                let b = c * e[i];
                r = f.hypot(g);
                e[i + 1] = r;
                if r == 0.0 {
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    underflow = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
                // Rotate rows i and i+1 of Zᵀ.
                let (top, bot) = zt.data.split_at_mut((i + 1) * cols);
                let zi = &mut top[i * cols..];
                let zi1 = &mut bot[..cols];
                for (a, b) in zi.iter_mut().zip(zi1.iter_mut()) {
                    let f = *b;
                    *b = s * *a + c * f;
                    *a = c * *a - s * f;
                }
            }
            if underflow {
                continue;
            }
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
    true
}

/// Eigen-decomposition of a symmetric matrix: returns `(λ, V)` with
/// eigenvalues sorted in **decreasing** order and the corresponding
/// orthonormal eigenvectors as the **columns** of `V`, so `A V = V diag(λ)`.
/// Each eigenvector's sign is fixed so that its largest-magnitude component
/// is positive (deterministic output for PCA).
///
/// Only symmetry is assumed, not definiteness; the matrix is symmetrised as
/// `(A + Aᵀ)/2` first. Householder tridiagonalisation + implicit QL, O(n³):
/// n = 500 takes well under a second. Non-finite input or (practically
/// impossible) non-convergence yields NaN eigenvalues.
///
/// Panics if `a` is not square.
pub fn sym_eigen(a: &Mat) -> (Vec<f64>, Mat) {
    assert!(a.is_square(), "sym_eigen: matrix must be square");
    let n = a.rows;
    if !a.is_finite() {
        return (vec![f64::NAN; n], Mat::eye(n));
    }
    let mut sym = a.clone();
    for i in 0..n {
        for j in 0..i {
            let v = 0.5 * (a[(i, j)] + a[(j, i)]);
            sym[(i, j)] = v;
            sym[(j, i)] = v;
        }
    }
    let (mut d, mut e, mut zt) = tridiagonalize(&sym);
    if !tridiagonal_ql(&mut d, &mut e, &mut zt) {
        return (vec![f64::NAN; n], Mat::eye(n));
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| d[j].total_cmp(&d[i]));
    let vals: Vec<f64> = order.iter().map(|&i| d[i]).collect();
    let mut v = Mat::zeros(n, n);
    for (col, &src) in order.iter().enumerate() {
        let zrow = zt.row(src);
        let (mut big, mut sign) = (0.0_f64, 1.0);
        for &x in zrow {
            if x.abs() > big {
                big = x.abs();
                sign = if x < 0.0 { -1.0 } else { 1.0 };
            }
        }
        for (r, &x) in zrow.iter().enumerate() {
            v.data[r * n + col] = sign * x;
        }
    }
    (vals, v)
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    /// Small deterministic PRNG (SplitMix64) for test matrices.
    struct Rng(u64);
    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        /// Uniform in [-1, 1).
        fn uniform(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        }
        fn mat(&mut self, r: usize, c: usize) -> Mat {
            Mat::from_vec(r, c, (0..r * c).map(|_| self.uniform()).collect())
        }
    }

    fn naive_atb(a: &Mat, b: &Mat) -> Mat {
        let mut c = Mat::zeros(a.cols, b.cols);
        for k in 0..a.rows {
            for i in 0..a.cols {
                for j in 0..b.cols {
                    c[(i, j)] += a[(k, i)] * b[(k, j)];
                }
            }
        }
        c
    }

    fn spd(rng: &mut Rng, n: usize) -> Mat {
        let x = rng.mat(n + 5, n);
        let mut g = gram(&x);
        for i in 0..n {
            g[(i, i)] += 0.1;
        }
        g
    }

    fn rel_err(a: &Mat, b: &Mat) -> f64 {
        a.sub(b).frobenius_norm() / b.frobenius_norm().max(1e-300)
    }

    #[test]
    fn mat_basics() {
        let a = Mat::from_rows(&[vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]]);
        assert_eq!(a.shape(), (2, 3));
        assert_eq!(a[(1, 2)], 6.0);
        assert_eq!(a.get(0, 1), 2.0);
        let t = a.transpose();
        assert_eq!(t.shape(), (3, 2));
        assert_eq!(t[(2, 1)], 6.0);
        let p = a.matmul(&t);
        assert_eq!(p, Mat::from_rows(&[vec![14.0, 32.0], vec![32.0, 77.0]]));
        assert_eq!(p.trace(), 91.0);
        let mut z = Mat::zeros(2, 2);
        z.set(0, 1, 3.0);
        assert_eq!(z.add(&Mat::eye(2)).data, vec![1.0, 3.0, 0.0, 1.0]);
        assert_eq!(Mat::eye(2).sub(&z).data, vec![1.0, -3.0, 0.0, 1.0]);
        assert_eq!(Mat::eye(2).scale(2.5).data, vec![2.5, 0.0, 0.0, 2.5]);
        assert!((Mat::from_vec(1, 2, vec![3.0, 4.0]).frobenius_norm() - 5.0).abs() < 1e-15);
        assert_eq!(a.col(1), vec![2.0, 5.0]);
        assert_eq!(a.matvec(&[1.0, 0.0, -1.0]), vec![-2.0, -2.0]);
        // Big transpose round-trip.
        let mut rng = Rng(1);
        let b = rng.mat(37, 70);
        assert_eq!(b.transpose().transpose(), b);
        assert_eq!(b.transpose()[(69, 36)], b[(36, 69)]);
    }

    #[test]
    fn at_b_and_gram_match_naive() {
        let mut rng = Rng(2);
        for &(k, p, q) in &[(1, 1, 1), (7, 3, 5), (300, 17, 6), (513, 9, 13), (0, 4, 3)] {
            let a = rng.mat(k, p);
            let b = rng.mat(k, q);
            let c = at_b(&a, &b);
            let c0 = naive_atb(&a, &b);
            assert_eq!(c.shape(), (p, q));
            assert!(c.sub(&c0).max_abs() < 1e-12 * (k as f64 + 1.0));
            let g = gram(&a);
            let g0 = naive_atb(&a, &a);
            assert!(g.sub(&g0).max_abs() < 1e-12 * (k as f64 + 1.0));
            assert_eq!(g, g.transpose());
        }
    }

    #[test]
    fn gram_large_threaded_is_correct_and_symmetric() {
        // Big enough to cross the threading threshold.
        let mut rng = Rng(3);
        let a = rng.mat(3000, 70);
        let g = gram(&a);
        let g0 = naive_atb(&a, &a);
        assert!(g.sub(&g0).max_abs() < 1e-10);
        assert_eq!(g, g.transpose());
        let b = rng.mat(3000, 30);
        assert!(at_b(&a, &b).sub(&naive_atb(&a, &b)).max_abs() < 1e-10);
        let a = rng.mat(3000, 300);
        let b = rng.mat(3000, 3);
        assert!(at_b(&a, &b).sub(&naive_atb(&a, &b)).max_abs() < 1e-10);
    }

    #[test]
    fn cholesky_solve_residual() {
        let mut rng = Rng(4);
        for &n in &[1, 2, 5, 33, 120] {
            let a = spd(&mut rng, n);
            let b = rng.mat(n, 4);
            let x = cholesky_solve(&a, &b).unwrap();
            let res = a.matmul(&x).sub(&b).frobenius_norm();
            assert!(res < 1e-9, "n = {n}: residual {res}");
            let l = cholesky(&a).unwrap();
            assert!(rel_err(&l.matmul(&l.transpose()), &a) < 1e-13);
        }
    }

    #[test]
    fn cholesky_rejects_indefinite() {
        let a = Mat::from_rows(&[vec![1.0, 2.0], vec![2.0, 1.0]]);
        let err = cholesky_solve(&a, &Mat::eye(2)).unwrap_err();
        assert!(matches!(
            err,
            LinalgError::NotPositiveDefinite { index: 1, .. }
        ));
        let z = Mat::zeros(3, 3);
        assert!(matches!(
            cholesky_solve(&z, &Mat::eye(3)),
            Err(LinalgError::NotPositiveDefinite { index: 0, .. })
        ));
        assert!(matches!(
            cholesky_solve(&Mat::eye(3), &Mat::eye(2)),
            Err(LinalgError::DimensionMismatch(_))
        ));
        let mut nan = Mat::eye(2);
        nan[(0, 0)] = f64::NAN;
        assert_eq!(cholesky(&nan), Err(LinalgError::NonFinite));
    }

    #[test]
    fn ridge_matches_normal_equations_and_gradient_vanishes() {
        let mut rng = Rng(5);
        let (k, n, m) = (400, 12, 3);
        let mut phi = rng.mat(k, n);
        for r in 0..k {
            phi[(r, n - 1)] = 1.0; // bias column
        }
        let y = rng.mat(k, m);
        for &unpen in &[false, true] {
            let lambda = 2.5;
            let x = ridge(&phi, &y, lambda, unpen).unwrap();
            // Gradient of the objective: Φᵀ(ΦX − Y) + λ P X = 0.
            let resid = phi.matmul(&x).sub(&y);
            let mut grad = at_b(&phi, &resid);
            let pen = if unpen { n - 1 } else { n };
            for i in 0..pen {
                for j in 0..m {
                    grad[(i, j)] += lambda * x[(i, j)];
                }
            }
            assert!(grad.max_abs() < 1e-9, "gradient {}", grad.max_abs());
        }
        // Unpenalised bias: a constant offset in Y is absorbed by the bias
        // exactly and does not change the other weights.
        let x0 = ridge(&phi, &y, 3.0, true).unwrap();
        let y_shift = Mat::from_vec(k, m, y.data.iter().map(|v| v + 7.0).collect());
        let x1 = ridge(&phi, &y_shift, 3.0, true).unwrap();
        for i in 0..n - 1 {
            for j in 0..m {
                assert!((x0[(i, j)] - x1[(i, j)]).abs() < 1e-10);
            }
        }
        for j in 0..m {
            assert!((x1[(n - 1, j)] - x0[(n - 1, j)] - 7.0).abs() < 1e-10);
        }
        // λ = 0 reproduces exact data generated by a linear model.
        let w = rng.mat(n, m);
        let yy = phi.matmul(&w);
        let xw = ridge(&phi, &yy, 0.0, false).unwrap();
        assert!(xw.sub(&w).max_abs() < 1e-9);
        assert!(matches!(
            ridge(&phi, &y, -1.0, false),
            Err(LinalgError::InvalidArgument(_))
        ));
    }

    #[test]
    fn qr_thin_properties() {
        let mut rng = Rng(6);
        for &(n, d) in &[(1, 1), (5, 1), (6, 3), (50, 8), (8, 8), (1000, 4), (3, 5)] {
            let a = rng.mat(n, d);
            let (q, r) = qr_thin(&a);
            let k = n.min(d);
            assert_eq!(q.shape(), (n, k));
            assert_eq!(r.shape(), (k, d));
            assert!(q.matmul(&r).sub(&a).frobenius_norm() < 1e-12 * (n as f64).sqrt());
            assert!(at_b(&q, &q).sub(&Mat::eye(k)).max_abs() < 1e-13);
            for i in 0..k {
                assert!(r[(i, i)] >= 0.0);
                for j in 0..i.min(d) {
                    assert_eq!(r[(i, j)], 0.0);
                }
            }
        }
        // Rank-deficient input: still a valid factorisation.
        let mut a = rng.mat(10, 3);
        for i in 0..10 {
            a[(i, 2)] = a[(i, 0)] + a[(i, 1)];
        }
        let (q, r) = qr_thin(&a);
        assert!(q.matmul(&r).sub(&a).max_abs() < 1e-13);
        assert!(r[(2, 2)].abs() < 1e-12);
        // Zero column.
        let z = Mat::zeros(4, 2);
        let (q, r) = qr_thin(&z);
        assert_eq!(r, Mat::zeros(2, 2));
        assert!(at_b(&q, &q).sub(&Mat::eye(2)).max_abs() < 1e-15);
    }

    #[test]
    fn lu_solve_and_inverse() {
        let mut rng = Rng(7);
        for &n in &[1, 2, 3, 10, 64] {
            let a = rng.mat(n, n);
            let b = rng.mat(n, 3);
            let x = solve(&a, &b).unwrap();
            assert!(a.matmul(&x).sub(&b).frobenius_norm() < 1e-10);
            let inv = inverse(&a).unwrap();
            assert!(a.matmul(&inv).sub(&Mat::eye(n)).max_abs() < 1e-10);
            assert!(inv.matmul(&a).sub(&Mat::eye(n)).max_abs() < 1e-10);
        }
        // Needs pivoting.
        let a = Mat::from_rows(&[vec![0.0, 1.0], vec![1.0, 0.0]]);
        let x = solve(&a, &Mat::from_vec(2, 1, vec![2.0, 3.0])).unwrap();
        assert_eq!(x.data, vec![3.0, 2.0]);
        let s = Mat::from_rows(&[
            vec![1.0, 2.0, 3.0],
            vec![4.0, 5.0, 6.0],
            vec![7.0, 8.0, 9.0],
        ]);
        assert!(matches!(inverse(&s), Err(LinalgError::Singular { .. })));
        assert_eq!(determinant(&s).unwrap(), 0.0);
        let d = Mat::from_rows(&[vec![0.0, 2.0], vec![3.0, 1.0]]);
        assert!((determinant(&d).unwrap() + 6.0).abs() < 1e-14);
        let t = Mat::from_rows(&[
            vec![2.0, 1.0, 1.0],
            vec![0.0, 3.0, 1.0],
            vec![0.0, 0.0, 4.0],
        ]);
        assert!((determinant(&t).unwrap() - 24.0).abs() < 1e-13);
    }

    #[test]
    fn lyapunov_residual_and_rotated_ou() {
        let mut rng = Rng(8);
        for &n in &[1, 2, 3, 6] {
            // Stable B: random plus a dominant diagonal.
            let mut b = rng.mat(n, n);
            for i in 0..n {
                b[(i, i)] += n as f64 + 1.0;
            }
            let c = rng.mat(n, n);
            let d = c.matmul(&c.transpose()).add(&Mat::eye(n));
            let s = lyapunov(&b, &d).unwrap();
            let res = b
                .matmul(&s)
                .add(&s.matmul(&b.transpose()))
                .sub(&d.scale(2.0));
            assert!(res.max_abs() < 1e-10, "n={n}: {}", res.max_abs());
            assert_eq!(s, s.transpose());
            // Detailed balance case: symmetric B, D ∝ I ⇒ zero entropy production.
            let bs = b.add(&b.transpose());
            let ep = ou_entropy_production(&bs, &Mat::eye(n)).unwrap();
            assert!(ep.abs() < 1e-10, "symmetric EP {ep}");
            // Generic case: EP ≥ 0.
            assert!(ou_entropy_production(&b, &d).unwrap() > -1e-10);
        }
        // Rotated OU: B = [[a, -θ], [θ, a]], D = εI ⇒ S = (ε/a) I, Φ = 2θ²/a.
        let (a, th, eps) = (1.0, 1.0, 0.5);
        let b = Mat::from_rows(&[vec![a, -th], vec![th, a]]);
        let d = Mat::eye(2).scale(eps);
        let s = lyapunov(&b, &d).unwrap();
        assert!(s.sub(&Mat::eye(2).scale(eps / a)).max_abs() < 1e-12);
        let ep = ou_entropy_production(&b, &d).unwrap();
        assert!((ep - 2.0).abs() < 1e-12, "EP = {ep}");
        for &(a, th, eps) in &[(0.7, 2.0, 0.3), (2.0, -0.5, 1.5)] {
            let b = Mat::from_rows(&[vec![a, -th], vec![th, a]]);
            let ep = ou_entropy_production(&b, &Mat::eye(2).scale(eps)).unwrap();
            assert!((ep - 2.0 * th * th / a).abs() < 1e-12);
        }
        // Singular Lyapunov operator (eigenvalues ±1 sum to zero).
        let b = Mat::from_rows(&[vec![1.0, 0.0], vec![0.0, -1.0]]);
        assert!(matches!(
            lyapunov(&b, &Mat::eye(2)),
            Err(LinalgError::Singular { .. })
        ));
    }

    /// Checks that each expected eigenvalue is matched by a distinct computed one.
    fn assert_spectrum(got: &[(f64, f64)], want: &[(f64, f64)], tol: f64) {
        assert_eq!(got.len(), want.len());
        let mut used = vec![false; got.len()];
        for w in want {
            let best = got
                .iter()
                .enumerate()
                .filter(|(i, _)| !used[*i])
                .map(|(i, g)| (i, (g.0 - w.0).hypot(g.1 - w.1)))
                .min_by(|x, y| x.1.total_cmp(&y.1))
                .unwrap();
            assert!(best.1 < tol, "eigenvalue {w:?} not found in {got:?}");
            used[best.0] = true;
        }
    }

    /// Roots of the monic cubic x³ + a x² + b x + c (closed form).
    fn cubic_roots(a: f64, b: f64, c: f64) -> Vec<(f64, f64)> {
        let p = b - a * a / 3.0;
        let q = 2.0 * a * a * a / 27.0 - a * b / 3.0 + c;
        let shift = -a / 3.0;
        let disc = (q / 2.0).powi(2) + (p / 3.0).powi(3);
        if disc > 0.0 {
            let sd = disc.sqrt();
            let u = (-q / 2.0 + sd).cbrt();
            let v = (-q / 2.0 - sd).cbrt();
            let re = -(u + v) / 2.0 + shift;
            let im = (u - v) * 3f64.sqrt() / 2.0;
            vec![(u + v + shift, 0.0), (re, im), (re, -im)]
        } else {
            let r = (-p / 3.0).sqrt();
            let phi = (-q / (2.0 * r * r * r)).clamp(-1.0, 1.0).acos();
            (0..3)
                .map(|k| {
                    let t = 2.0 * r * ((phi - 2.0 * std::f64::consts::PI * k as f64) / 3.0).cos();
                    (t + shift, 0.0)
                })
                .collect()
        }
    }

    #[test]
    fn eigenvalues_known_cases() {
        // 2-D rotation by φ: e^{±iφ}.
        let phi: f64 = 0.7;
        let r = Mat::from_rows(&[vec![phi.cos(), -phi.sin()], vec![phi.sin(), phi.cos()]]);
        assert_spectrum(
            &eigenvalues(&r),
            &[(phi.cos(), phi.sin()), (phi.cos(), -phi.sin())],
            1e-12,
        );
        // 3-D rotation about an oblique axis: {1, e^{±iφ}}.
        let (q, _) = qr_thin(&Rng(9).mat(3, 3));
        let mut rz = Mat::eye(3);
        rz[(0, 0)] = phi.cos();
        rz[(0, 1)] = -phi.sin();
        rz[(1, 0)] = phi.sin();
        rz[(1, 1)] = phi.cos();
        let rot = q.matmul(&rz).matmul(&q.transpose());
        assert_spectrum(
            &eigenvalues(&rot),
            &[(1.0, 0.0), (phi.cos(), phi.sin()), (phi.cos(), -phi.sin())],
            1e-12,
        );
        // Pure 90° rotation (zero diagonal, needs the double shift).
        let j = Mat::from_rows(&[vec![0.0, -1.0], vec![1.0, 0.0]]);
        assert_spectrum(&eigenvalues(&j), &[(0.0, 1.0), (0.0, -1.0)], 1e-14);
        // Cyclic permutation of order 5: the 5th roots of unity.
        let mut perm = Mat::zeros(5, 5);
        for i in 0..5 {
            perm[((i + 1) % 5, i)] = 1.0;
        }
        let roots: Vec<(f64, f64)> = (0..5)
            .map(|k| {
                let t = 2.0 * std::f64::consts::PI * k as f64 / 5.0;
                (t.cos(), t.sin())
            })
            .collect();
        assert_spectrum(&eigenvalues(&perm), &roots, 1e-12);
        // Triangular: the diagonal.
        let t = Mat::from_rows(&[
            vec![3.0, 1.0, -2.0, 5.0],
            vec![0.0, -1.0, 4.0, 0.5],
            vec![0.0, 0.0, 2.0, 7.0],
            vec![0.0, 0.0, 0.0, 0.25],
        ]);
        let ev = eigenvalues(&t);
        assert_spectrum(
            &ev,
            &[(3.0, 0.0), (-1.0, 0.0), (2.0, 0.0), (0.25, 0.0)],
            1e-12,
        );
        // Sorted by decreasing real part.
        assert!(ev.windows(2).all(|w| w[0].0 >= w[1].0));
        assert_spectrum(&eigenvalues(&t.transpose()), &ev, 1e-12);
        // Symmetric: compare with sym_eigen.
        let mut rng = Rng(10);
        let s = spd(&mut rng, 8).sub(&Mat::eye(8).scale(3.0));
        let (vals, _) = sym_eigen(&s);
        let want: Vec<(f64, f64)> = vals.iter().map(|&v| (v, 0.0)).collect();
        assert_spectrum(&eigenvalues(&s), &want, 1e-10);
        // Zero and 1×1 matrices.
        assert_eq!(eigenvalues(&Mat::zeros(3, 3)), vec![(0.0, 0.0); 3]);
        assert_eq!(
            eigenvalues(&Mat::from_vec(1, 1, vec![-4.0])),
            vec![(-4.0, 0.0)]
        );
        assert!(eigenvalues(&Mat::zeros(0, 0)).is_empty());
        // Badly scaled (balancing helps).
        let bs = Mat::from_rows(&[
            vec![1.0, 1e6, 0.0],
            vec![1e-6, 2.0, 1e5],
            vec![0.0, 1e-5, 3.0],
        ]);
        let ev = eigenvalues(&bs);
        let tr: f64 = ev.iter().map(|e| e.0).sum();
        assert!((tr - 6.0).abs() < 1e-10);
    }

    #[test]
    fn eigenvalues_random_3x3_match_characteristic_polynomial() {
        let mut rng = Rng(11);
        for _ in 0..200 {
            let a = rng.mat(3, 3).scale(3.0);
            // det(xI − A) = x³ − tr(A) x² + c2 x − det(A).
            let tr = a.trace();
            let c2 = a[(0, 0)] * a[(1, 1)] - a[(0, 1)] * a[(1, 0)] + a[(0, 0)] * a[(2, 2)]
                - a[(0, 2)] * a[(2, 0)]
                + a[(1, 1)] * a[(2, 2)]
                - a[(1, 2)] * a[(2, 1)];
            let det = determinant(&a).unwrap();
            let want = cubic_roots(-tr, c2, -det);
            assert_spectrum(&eigenvalues(&a), &want, 1e-7);
        }
    }

    #[test]
    fn eigenvalues_random_nxn_invariants() {
        // Sum = trace, product = det, conjugate pairing, and each λ makes
        // A − λI singular (smallest singular value ≈ 0 via det of the 2n real form).
        let mut rng = Rng(12);
        for n in 1..=8 {
            for _ in 0..20 {
                let a = rng.mat(n, n);
                let ev = eigenvalues(&a);
                let sum_re: f64 = ev.iter().map(|e| e.0).sum();
                let sum_im: f64 = ev.iter().map(|e| e.1).sum();
                assert!((sum_re - a.trace()).abs() < 1e-10);
                assert!(sum_im.abs() < 1e-10);
                let (mut pr, mut pi) = (1.0, 0.0);
                for &(re, im) in &ev {
                    (pr, pi) = (pr * re - pi * im, pr * im + pi * re);
                }
                let det = determinant(&a).unwrap();
                assert!((pr - det).abs() < 1e-9, "prod {pr} vs det {det}");
                assert!(pi.abs() < 1e-9);
                // Residual: det(A − λI) ≈ 0 for real λ via LU.
                for &(re, im) in &ev {
                    if im == 0.0 {
                        let sh = a.sub(&Mat::eye(n).scale(re));
                        let d = determinant(&sh).unwrap();
                        assert!(d.abs() < 1e-9, "det(A-λI) = {d}");
                    }
                }
            }
        }
    }

    #[test]
    fn sym_eigen_decomposition() {
        let mut rng = Rng(13);
        for &n in &[1, 2, 3, 10, 60, 150] {
            let c = rng.mat(n, n);
            let a = c.add(&c.transpose());
            let (vals, v) = sym_eigen(&a);
            assert_eq!(vals.len(), n);
            assert!(vals.windows(2).all(|w| w[0] >= w[1]));
            let ortho = at_b(&v, &v).sub(&Mat::eye(n)).max_abs();
            assert!(ortho < 1e-12, "n={n} orthogonality {ortho}");
            let res = a
                .matmul(&v)
                .sub(&v.matmul(&Mat::diag(&vals)))
                .frobenius_norm();
            assert!(
                res < 1e-10 * a.frobenius_norm().max(1.0),
                "n={n} residual {res}"
            );
            let tr: f64 = vals.iter().sum();
            assert!((tr - a.trace()).abs() < 1e-10);
        }
        // Known spectrum with multiplicities.
        let d = Mat::diag(&[5.0, 1.0, 1.0, -2.0]);
        let (q, _) = qr_thin(&rng.mat(4, 4));
        let a = q.matmul(&d).matmul(&q.transpose());
        let (vals, v) = sym_eigen(&a);
        for (g, w) in vals.iter().zip([5.0, 1.0, 1.0, -2.0]) {
            assert!((g - w).abs() < 1e-13);
        }
        assert!(a.matmul(&v).sub(&v.matmul(&Mat::diag(&vals))).max_abs() < 1e-13);
        // Already diagonal / zero matrices.
        let (vals, v) = sym_eigen(&Mat::diag(&[1.0, 3.0, 2.0]));
        assert_eq!(vals, vec![3.0, 2.0, 1.0]);
        assert_eq!(v[(1, 0)], 1.0);
        let (vals, v) = sym_eigen(&Mat::zeros(3, 3));
        assert_eq!(vals, vec![0.0; 3]);
        assert_eq!(at_b(&v, &v), Mat::eye(3));
        // PCA use: covariance of data stretched along a known direction.
        let k = 2000;
        let mut x = Mat::zeros(k, 3);
        let dir = [1.0 / 3f64.sqrt(); 3];
        for r in 0..k {
            let t = 5.0 * rng.uniform();
            for c in 0..3 {
                x[(r, c)] = t * dir[c] + 0.01 * rng.uniform();
            }
        }
        let (_, v) = sym_eigen(&gram(&x));
        for c in 0..3 {
            assert!((v[(c, 0)] - dir[c]).abs() < 1e-3);
        }
    }
}
