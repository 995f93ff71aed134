//! Matrix products: the one kernel both back ends call for `@`, so they agree bit for bit.
//!
//! Products of at least [`GEMM_WORK`] multiply–adds go to the `gemm` crate's tuned kernels
//! (single-threaded: a step's particles already run on every core), smaller ones to plain dot
//! products, whose call costs less than `gemm`'s dispatch. `gemm` picks its kernels by the
//! CPU's vector width, so a large product's last bits may differ between machines (never
//! between runs or back ends on one machine); small ones are the same everywhere.

/// Multiply–adds from which a product is worth `gemm`'s dispatch.
pub const GEMM_WORK: usize = 4096;

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
    let fits = |len: usize, rows: usize, cols: usize| rows.checked_mul(cols) == Some(len);
    if !(fits(a.len(), m, n) && fits(b.len(), n, p) && fits(out.len(), m, p)) {
        out.fill(f64::NAN);
        return;
    }
    // Where element (i, l) of each operand is: `i · row + l · column`.
    let (a_row, a_column) = if transposed.a { (1, m) } else { (n, 1) };
    let (b_row, b_column) = if transposed.b { (1, n) } else { (p, 1) };
    if m.saturating_mul(n).saturating_mul(p) < GEMM_WORK || n == 0 {
        for (i, row) in out.chunks_exact_mut(p.max(1)).enumerate().take(m) {
            for (j, cell) in row.iter_mut().enumerate() {
                *cell = (0..n).fold(0.0, |sum, l| sum + a[i * a_row + l * a_column] * b[l * b_row + j * b_column]);
            }
        }
        return;
    }
    let stride = |step: usize| isize::try_from(step).unwrap_or(isize::MAX);
    // SAFETY: the three slices hold exactly the matrices the strides describe (their lengths are
    // checked above, and the strides walk an `m × n`, `n × p` and `m × p` matrix within them),
    // `out` does not alias the others (it is borrowed mutably), and `read_dst` is false, so `out`
    // is only written.
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
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `out += a ⊗ b` for `out` a row-major `a.len() × b.len()` matrix (a rank-one update, as an
/// adjoint accumulates a matrix's gradient): each element `out + a·b`, the bits of adding the
/// outer product after forming it. Lengths that do not fit leave `out` NaN.
pub fn add_outer(out: &mut [f64], a: &[f64], b: &[f64]) {
    if a.len().checked_mul(b.len()) != Some(out.len()) {
        out.fill(f64::NAN);
        return;
    }
    for (row, &x) in out.chunks_exact_mut(b.len().max(1)).zip(a) {
        for (cell, &y) in row.iter_mut().zip(b) {
            *cell += x * y;
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
        for (m, n, p) in [(3, 4, 2), (64, 784, 200), (200, 64, 784), (5, 1, 7), (1, 9, 1)] {
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
