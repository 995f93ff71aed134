//! Matrix products: the one kernel both back ends call for `@`, so they agree bit for bit; and
//! the outer products (formed, or added to a matrix) that both call too.
//!
//! Products of at least [`GEMM_WORK`] multiply–adds go to the `gemm` crate's tuned kernels,
//! smaller ones to plain dot products, whose call costs less than `gemm`'s dispatch. `gemm`
//! picks its kernels by the CPU's vector width, so a large product's last bits may differ
//! between machines (never between runs or back ends on one machine); small ones are the same
//! everywhere.
//!
//! `gemm` reads the right operand through its rows: stored transposed, each of its elements is
//! fetched from a row of its own. For a thin left operand (a part of a minibatch times a weight
//! matrix, the way a layer's weights are stored: outputs × inputs) that gather costs more than
//! the product, and [`product`] computes the result's transpose instead, whose gather is of the
//! thin operand, then transposes the (thin) result into place.
//!
//! A product runs on the calling thread alone, since the callers usually keep every core busy
//! (a step's particles, a command's samples, each on a thread of its own), unless the caller
//! lends this thread a pool whose threads are idle ([`lend_threads`]: the executor does while
//! it runs a round of work on one thread, such as a step of one costly call). Then a
//! product of at least [`PARALLEL_WORK`] multiply–adds is split over the pool's threads by rows
//! and columns of its result; each element is still one thread's sum, in the same order, so the
//! bits are those of one thread.

use std::cell::RefCell;
use std::sync::Arc;

use rayon::ThreadPool;

/// Multiply–adds from which a product is worth `gemm`'s dispatch.
pub const GEMM_WORK: usize = 4096;

/// Multiply–adds from which a product is worth splitting over a lent pool's threads (measured
/// on two busy cores: products of 10 to 40 million, such as 64 × 784 · 784 × 200, lose 5–15 %;
/// from 80 million, such as 1024 × 784 · 784 × 200, they gain 10–30 %; on idle cores, 1.6–1.9×).
pub const PARALLEL_WORK: usize = 1 << 26;

thread_local! {
    /// The pool this thread's large products may use (see [`lend_threads`]).
    static LENT: RefCell<Option<Arc<ThreadPool>>> = const { RefCell::new(None) };
}

/// Runs `work` with this thread's large products split over `pool`'s threads, which must be
/// idle meanwhile (or their work waits for the products).
pub fn lend_threads<R>(pool: &Arc<ThreadPool>, work: impl FnOnce() -> R) -> R {
    /// Puts back what this thread had before, also if `work` panics.
    struct Restore(Option<Arc<ThreadPool>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            LENT.with(|lent| *lent.borrow_mut() = self.0.take());
        }
    }
    let _restore = Restore(LENT.with(|lent| lent.replace(Some(pool.clone()))));
    work()
}

/// `out = a · b` for a row-major `m × n` matrix `a` and `n × p` matrix `b` (`out` is `m × p`); a
/// vector is a matrix with one row or one column. Slices of other lengths leave `out` NaN.
pub fn matmul(a: &[f64], b: &[f64], out: &mut [f64], m: usize, n: usize, p: usize) {
    matmul_transposed(a, b, out, m, n, p, Transposed::default());
}

/// Which operands of a product are stored transposed, and read so in place: `a` as a row-major
/// `n × m` matrix, `b` as `p × n`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Transposed {
    pub a: bool,
    pub b: bool,
}

/// `out = a · b` for an `m × n` matrix `a` and `n × p` matrix `b`, each stored row-major or (as
/// `transposed` says) as its transpose: the product of a transpose without forming it.
pub fn matmul_transposed(a: &[f64], b: &[f64], out: &mut [f64], m: usize, n: usize, p: usize, transposed: Transposed) {
    if !shapes_fit([a.len(), b.len(), out.len()], m, n, p) {
        out.fill(f64::NAN);
        return;
    }
    product(a, b, out, m, n, p, transposed);
}

/// Whether slices of lengths `[a, b, out]` hold an `m × n`, `n × p` and `m × p` matrix.
pub(crate) fn shapes_fit([a, b, out]: [usize; 3], m: usize, n: usize, p: usize) -> bool {
    let fits = |len: usize, rows: usize, cols: usize| rows.checked_mul(cols) == Some(len);
    fits(a, m, n) && fits(b, n, p) && fits(out, m, p)
}

/// The numbers products and optimizers compute in: f64, and f32 for [`crate::single`] and a
/// training in single precision ([`crate::optim::Optimizer::in_precision`]).
pub(crate) trait Element:
    Copy
    + Send
    + Sync
    + 'static
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
{
    const ZERO: Self;
    const ONE: Self;

    /// `x` in this precision, correctly rounded.
    fn of(x: f64) -> Self;

    /// The correctly rounded square root.
    fn sqrt(self) -> Self;

    /// Zero for a subnormal number (nonzero, smaller in magnitude than the smallest normal
    /// one), the number itself otherwise (NaN included).
    fn flush_subnormal(self) -> Self;

    /// Runs `work` on this thread's scratch buffer of `len` elements (holding whatever it
    /// held), kept from call to call so that a step's products allocate nothing after its first.
    fn with_scratch<R>(len: usize, work: impl FnOnce(&mut [Self]) -> R) -> R;
}

thread_local! {
    /// [`Element::with_scratch`]'s buffers.
    static SCRATCH_F64: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
    static SCRATCH_F32: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// The first `len` elements of `buffer`, grown to hold them: a buffer is never shrunk, so the
/// products of a step, of several sizes, fill (and zero) its memory only once.
pub(crate) fn at_least<T: Copy + Default>(buffer: &mut Vec<T>, len: usize) -> &mut [T] {
    if buffer.len() < len {
        buffer.resize(len, T::default());
    }
    &mut buffer[..len]
}

impl Element for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;

    #[inline(always)]
    fn of(x: f64) -> f64 {
        x
    }

    #[inline(always)]
    fn sqrt(self) -> f64 {
        f64::sqrt(self)
    }

    #[inline(always)]
    fn flush_subnormal(self) -> f64 {
        if self.abs() < f64::MIN_POSITIVE {
            0.0
        } else {
            self
        }
    }

    fn with_scratch<R>(len: usize, work: impl FnOnce(&mut [f64]) -> R) -> R {
        SCRATCH_F64.with_borrow_mut(|buffer| work(at_least(buffer, len)))
    }
}

impl Element for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;

    #[inline(always)]
    fn of(x: f64) -> f32 {
        x as f32
    }

    #[inline(always)]
    fn sqrt(self) -> f32 {
        f32::sqrt(self)
    }

    #[inline(always)]
    fn flush_subnormal(self) -> f32 {
        if self.abs() < f32::MIN_POSITIVE {
            0.0
        } else {
            self
        }
    }

    fn with_scratch<R>(len: usize, work: impl FnOnce(&mut [f32]) -> R) -> R {
        SCRATCH_F32.with_borrow_mut(|buffer| work(at_least(buffer, len)))
    }
}

/// [`matmul_transposed`] in `T`, for slices whose lengths fit (see [`shapes_fit`]).
pub(crate) fn product<T: Element>(
    a: &[T],
    b: &[T],
    out: &mut [T],
    m: usize,
    n: usize,
    p: usize,
    transposed: Transposed,
) {
    // Where element (i, l) of each operand is: `i · row + l · column`.
    let (a_row, a_column) = if transposed.a { (1, m) } else { (n, 1) };
    let (b_row, b_column) = if transposed.b { (1, n) } else { (p, 1) };
    if m.saturating_mul(n).saturating_mul(p) < GEMM_WORK || n == 0 {
        for (i, row) in out.chunks_exact_mut(p.max(1)).enumerate().take(m) {
            for (j, cell) in row.iter_mut().enumerate() {
                *cell = (0..n).fold(T::ZERO, |sum, l| sum + a[i * a_row + l * a_column] * b[l * b_row + j * b_column]);
            }
        }
        return;
    }
    // Gathering a transposed `b` reads n·p elements apart; computing `bᵀ · aᵀ` gathers a's m·n
    // (if `a` is not stored transposed itself) and transposes its m·p result. Measured on the
    // VAE's 784 × 200 weights, from memory: a third faster at 32 rows, a fifth at 64, a tenth
    // at 128; no faster at 256 and slower at 512, where this rule no longer swaps.
    if transposed.b && n.saturating_mul(p) > m.saturating_mul(n.saturating_add(p)) {
        let swapped = Transposed { a: false, b: !transposed.a };
        return T::with_scratch(m * p, |result_transposed| {
            gemm_product_as_stored(b, a, result_transposed, (p, n, m), swapped);
            transpose::transpose(result_transposed, out, m, p);
        });
    }
    gemm_product_as_stored(a, b, out, (m, n, p), transposed)
}

/// [`product`] by `gemm`, reading each operand as it is stored, on a lent pool's threads if it
/// is large enough (see [`lend_threads`]).
fn gemm_product_as_stored<T: Element>(
    a: &[T],
    b: &[T],
    out: &mut [T],
    (m, n, p): (usize, usize, usize),
    transposed: Transposed,
) {
    let (a_row, a_column) = if transposed.a { (1, m) } else { (n, 1) };
    let (b_row, b_column) = if transposed.b { (1, n) } else { (p, 1) };
    let lent = if m.saturating_mul(n).saturating_mul(p) >= PARALLEL_WORK {
        LENT.with(|lent| lent.borrow().clone())
    } else {
        None
    };
    let strides = [a_row, a_column, b_row, b_column];
    match lent {
        Some(pool) => pool.install(|| {
            let threads = gemm::Parallelism::Rayon(pool.current_num_threads());
            gemm_product(a, b, out, (m, n, p), strides, threads)
        }),
        None => gemm_product(a, b, out, (m, n, p), strides, gemm::Parallelism::None),
    }
}

/// `out = a · b` by `gemm`, for operands whose lengths fit the shape `(m, n, p)` and whose
/// element (i, l) is at `i · row + l · column` (`strides`: `a`'s row and column, then `b`'s).
fn gemm_product<T: Element>(
    a: &[T],
    b: &[T],
    out: &mut [T],
    (m, n, p): (usize, usize, usize),
    [a_row, a_column, b_row, b_column]: [usize; 4],
    parallelism: gemm::Parallelism,
) {
    let stride = |step: usize| isize::try_from(step).unwrap_or(isize::MAX);
    // SAFETY: the three slices hold exactly the matrices the strides describe (the caller
    // checked their lengths, and the strides walk an `m × n`, `n × p` and `m × p` matrix within
    // them), `out` does not alias the others (it is borrowed mutably), and `read_dst` is false,
    // so `out` is only written.
    unsafe {
        gemm::gemm(
            m,
            p,
            n,
            out.as_mut_ptr(),
            1,
            stride(p),
            false,
            a.as_ptr(),
            stride(a_column),
            stride(a_row),
            b.as_ptr(),
            stride(b_column),
            stride(b_row),
            T::ZERO,
            T::ONE,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `out = a ⊗ b` for `out` a row-major `a.len() × b.len()` matrix: each element `a·b`, a single
/// rounding, so the same bits at any vector width (AVX2 where the CPU has it). Lengths that do
/// not fit leave `out` NaN.
pub fn outer(out: &mut [f64], a: &[f64], b: &[f64]) {
    rows_of_outer(out, a, b, |cell, product| *cell = product)
}

/// `out += a ⊗ b` for `out` a row-major `a.len() × b.len()` matrix (a rank-one update, as an
/// adjoint accumulates a matrix's gradient): each element `out + a·b`, the bits of adding the
/// outer product after forming it. Lengths that do not fit leave `out` NaN.
pub fn add_outer(out: &mut [f64], a: &[f64], b: &[f64]) {
    rows_of_outer(out, a, b, |cell, product| *cell += product)
}

/// `write(cell, a_i · b_j)` for every cell `(i, j)` of `out`, a row at a time.
#[inline(always)]
fn rows_of_outer(out: &mut [f64], a: &[f64], b: &[f64], write: impl Fn(&mut f64, f64) + Copy) {
    if a.len().checked_mul(b.len()) != Some(out.len()) {
        out.fill(f64::NAN);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { rows_of_outer_avx2(out, a, b, write) };
    }
    rows_of_outer_elements(out, a, b, write)
}

/// [`rows_of_outer_elements`], compiled for AVX2.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn rows_of_outer_avx2(out: &mut [f64], a: &[f64], b: &[f64], write: impl Fn(&mut f64, f64) + Copy) {
    rows_of_outer_elements(out, a, b, write)
}

#[inline(always)]
fn rows_of_outer_elements(out: &mut [f64], a: &[f64], b: &[f64], write: impl Fn(&mut f64, f64) + Copy) {
    for (row, &x) in out.chunks_exact_mut(b.len().max(1)).zip(a) {
        for (cell, &y) in row.iter_mut().zip(b) {
            write(cell, x * y);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(a: &[f64], b: &[f64], m: usize, n: usize, p: usize) -> Vec<f64> {
        let mut out = vec![0.0; m * p];
        for i in 0..m {
            for j in 0..p {
                out[i * p + j] = (0..n).map(|l| a[i * n + l] * b[l * p + j]).sum();
            }
        }
        out
    }

    #[test]
    fn outer_products_are_each_element_one_rounded_product() {
        for (m, n) in [(1, 1), (3, 5), (100, 784), (7, 0)] {
            let a: Vec<f64> = (0..m).map(|i| (i as f64 * 0.37).sin()).collect();
            let b: Vec<f64> = (0..n).map(|j| (j as f64 * 0.11).cos() / 3.0).collect();
            let start: Vec<f64> = (0..m * n).map(|k| k as f64 / 7.0).collect();
            let (mut formed, mut added) = (vec![f64::NAN; m * n], start.clone());
            outer(&mut formed, &a, &b);
            add_outer(&mut added, &a, &b);
            for k in 0..m * n {
                let product = a[k / n] * b[k % n];
                assert_eq!(formed[k].to_bits(), product.to_bits(), "{m}×{n}, element {k}");
                assert_eq!(added[k].to_bits(), (start[k] + product).to_bits(), "{m}×{n}, element {k}");
            }
        }
        let mut misfit = vec![0.0; 5];
        outer(&mut misfit, &[1.0, 2.0], &[3.0, 4.0]);
        assert!(misfit.iter().all(|x| x.is_nan()));
    }

    #[test]
    fn small_and_large_products_agree_with_the_definition() {
        for (m, n, p) in [(1, 5, 1), (3, 4, 2), (1, 784, 200), (200, 784, 1), (64, 30, 70), (2, 0, 3)] {
            let a: Vec<f64> = (0..m * n).map(|i| (i as f64 * 0.37).sin()).collect();
            let b: Vec<f64> = (0..n * p).map(|i| (i as f64 * 0.11).cos()).collect();
            let mut out = vec![f64::NAN; m * p];
            matmul(&a, &b, &mut out, m, n, p);
            for (x, y) in out.iter().zip(plain(&a, &b, m, n, p)) {
                assert!((x - y).abs() <= 1e-12 * (1.0 + y.abs()), "{m}×{n}×{p}: {x} vs {y}");
            }
        }
    }

    fn transpose(x: &[f64], rows: usize, cols: usize) -> Vec<f64> {
        (0..cols * rows).map(|k| x[(k % rows) * cols + k / rows]).collect()
    }

    #[test]
    fn products_of_transposes_read_in_place_equal_products_of_the_transposes_formed() {
        // Thin products of a transposed `b` (32 and 64 rows of 784 × 200) are computed transposed.
        for (m, n, p) in [(3, 4, 2), (64, 784, 200), (32, 200, 784), (200, 64, 784), (5, 1, 7), (1, 9, 1)] {
            let a: Vec<f64> = (0..m * n).map(|i| (i as f64 * 0.37).sin()).collect();
            let b: Vec<f64> = (0..n * p).map(|i| (i as f64 * 0.11).cos()).collect();
            let mut expected = vec![f64::NAN; m * p];
            matmul(&a, &b, &mut expected, m, n, p);
            for (ta, tb) in [(true, false), (false, true), (true, true)] {
                let stored_a = if ta { transpose(&a, m, n) } else { a.clone() };
                let stored_b = if tb { transpose(&b, n, p) } else { b.clone() };
                let mut out = vec![f64::NAN; m * p];
                matmul_transposed(&stored_a, &stored_b, &mut out, m, n, p, Transposed { a: ta, b: tb });
                for (x, y) in out.iter().zip(&expected) {
                    assert!((x - y).abs() <= 1e-12 * (1.0 + y.abs()), "{m}×{n}×{p} ({ta}, {tb}): {x} vs {y}");
                }
            }
        }
    }

    fn bits(x: &[f64]) -> Vec<u64> {
        x.iter().map(|x| x.to_bits()).collect()
    }

    /// `gemm` splits a product over threads by rows and columns of its result, never within an
    /// element's sum: the same bits on any number of threads, whatever the shape and layout.
    #[test]
    fn products_on_several_threads_have_the_bits_of_one_thread() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().expect("a thread pool");
        for (m, n, p) in [(256, 300, 200), (200, 784, 64), (1024, 200, 30), (31, 500, 257), (300, 97, 301)] {
            let a: Vec<f64> = (0..m * n).map(|i| (i as f64 * 0.37).sin()).collect();
            let b: Vec<f64> = (0..n * p).map(|i| (i as f64 * 0.11).cos()).collect();
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let strides =
                    [if ta { 1 } else { n }, if ta { m } else { 1 }, if tb { 1 } else { p }, if tb { n } else { 1 }];
                let mut one = vec![f64::NAN; m * p];
                gemm_product(&a, &b, &mut one, (m, n, p), strides, gemm::Parallelism::None);
                let mut several = vec![f64::NAN; m * p];
                pool.install(|| gemm_product(&a, &b, &mut several, (m, n, p), strides, gemm::Parallelism::Rayon(3)));
                assert_eq!(bits(&one), bits(&several), "{m}×{n}×{p} ({ta}, {tb})");
            }
        }
        // And through the public entry, above the threshold, with a pool lent: a thick product,
        // and a thin one that `product` computes transposed.
        let pool = Arc::new(pool);
        for (m, n, p) in [(1024, 784, 200), (16, 2048, 2048)] {
            assert!(m * n * p >= PARALLEL_WORK);
            let a: Vec<f64> = (0..m * n).map(|i| (i as f64 * 0.37).sin()).collect();
            let b: Vec<f64> = (0..p * n).map(|i| (i as f64 * 0.11).cos()).collect();
            let transposed = Transposed { a: false, b: true };
            let mut one = vec![f64::NAN; m * p];
            matmul_transposed(&a, &b, &mut one, m, n, p, transposed);
            let mut several = vec![f64::NAN; m * p];
            lend_threads(&pool, || matmul_transposed(&a, &b, &mut several, m, n, p, transposed));
            assert_eq!(bits(&one), bits(&several), "{m}×{n}×{p}");
        }
    }

    #[test]
    fn mismatched_lengths_give_nan_instead_of_reading_out_of_bounds() {
        let mut out = vec![0.0; 2];
        matmul(&[1.0; 3], &[1.0; 2], &mut out, 2, 2, 1);
        assert!(out.iter().all(|x| x.is_nan()));
    }

    #[test]
    fn the_same_inputs_give_the_same_bits_wherever_they_lie_in_memory() {
        let (m, n, p) = (64, 100, 30);
        let a: Vec<f64> = (0..m * n + 3).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..n * p + 3).map(|i| (i as f64 * 0.11).cos()).collect();
        let mut first = vec![0.0; m * p];
        matmul(&a[..m * n], &b[..n * p], &mut first, m, n, p);
        for shift in 1..3 {
            let a2: Vec<f64> = [vec![0.0; shift], a[..m * n].to_vec()].concat();
            let b2: Vec<f64> = [vec![0.0; shift], b[..n * p].to_vec()].concat();
            let mut out = vec![0.0; m * p + shift];
            matmul(&a2[shift..], &b2[shift..], &mut out[shift..], m, n, p);
            assert_eq!(
                first.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                out[shift..].iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
        }
    }
}
