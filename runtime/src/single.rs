//! Matrix products in single precision (`--precision f32`), the one kernel both back
//! ends call for them, so they agree bit for bit.
//!
//! A product rounds its operands to f32, sums in f32 and widens its result back (or leaves it in
//! f32 for a caller that keeps it so: [`SingleOut::Narrow`]), as JAX's and PyTorch's f32
//! networks compute theirs; the values around it stay f64. On this kind of CPU
//! `gemm`'s f32 kernels do twice the multiply–adds per instruction of its f64 ones, and the
//! rounding costs one pass over each operand, which a product of a minibatch reuses hundreds
//! of times. The product itself is [`crate::linalg`]'s, in f32: `gemm`'s kernels from
//! [`crate::linalg::GEMM_WORK`] multiply–adds (chosen by the CPU's vector width, so they may
//! round differently between machines), plain dot products below, a lent pool's threads for
//! the largest.
//!
//! The f32 copies of the operands live in buffers of the calling thread, reused from call to
//! call: a training step allocates nothing here after its first. An operand the caller has
//! already rounded ([`round_to_single`]: a step's weights, rounded once rather than by each of
//! the products that read them) is used as given, with the same bits: a number has one
//! rounding to f32.

use std::cell::RefCell;

use crate::linalg::{at_least, product, shapes_fit, Transposed};

thread_local! {
    /// The operands and result of the thread's last single-precision product, rounded.
    static BUFFERS: RefCell<[Vec<f32>; 3]> = const { RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
}

/// Which precision a matrix product, or an optimizer ([`crate::optim::Optimizer::in_precision`]),
/// computes in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    /// f64, as every other operation.
    #[default]
    Double,
    /// f32: a product's operands rounded to f32 and its sums in f32 ([`matmul_single`]); an
    /// optimizer's state and arithmetic in f32.
    Single,
}

/// `out = a · b` as [`crate::matmul_transposed`] computes it, in single precision: each
/// operand's elements rounded to f32, the products summed in f32, the result widened to f64.
/// Slices of other lengths leave `out` NaN.
pub fn matmul_single(a: &[f64], b: &[f64], out: &mut [f64], m: usize, n: usize, p: usize, transposed: Transposed) {
    matmul_single_rounded([(a, None), (b, None)], SingleOut::Wide(out), (m, n, p), transposed)
}

/// Where a single-precision product leaves its result: widened to f64, or as the f32 sums
/// themselves (the same numbers, for a caller that keeps them in f32).
pub enum SingleOut<'o> {
    Wide(&'o mut [f64]),
    Narrow(&'o mut [f32]),
}

impl SingleOut<'_> {
    fn len(&self) -> usize {
        match self {
            SingleOut::Wide(out) => out.len(),
            SingleOut::Narrow(out) => out.len(),
        }
    }
}

/// [`matmul_single`] of operands each given with, perhaps, its elements already rounded to f32
/// ([`round_to_single`]), which it then reads instead of rounding them again: the same bits.
/// A rounded copy of another length than its operand leaves `out` NaN.
pub fn matmul_single_rounded(
    [(a, a_rounded), (b, b_rounded)]: [(&[f64], Option<&[f32]>); 2],
    out: SingleOut,
    (m, n, p): (usize, usize, usize),
    transposed: Transposed,
) {
    let copies_fit = a_rounded.is_none_or(|x| x.len() == a.len()) && b_rounded.is_none_or(|x| x.len() == b.len());
    if !shapes_fit([a.len(), b.len(), out.len()], m, n, p) || !copies_fit {
        match out {
            SingleOut::Wide(out) => out.fill(f64::NAN),
            SingleOut::Narrow(out) => out.fill(f32::NAN),
        }
        return;
    }
    BUFFERS.with_borrow_mut(|[a32, b32, out32]| {
        let (a32, b32) = (rounded(a_rounded, a, a32), rounded(b_rounded, b, b32));
        match out {
            SingleOut::Wide(out) => {
                let out32 = at_least(out32, out.len());
                product(a32, b32, out32, m, n, p, transposed);
                convert(out32, out);
            }
            SingleOut::Narrow(out) => product(a32, b32, out, m, n, p, transposed),
        }
    });
}

/// The first `len` f32 values stored in `words`, two to a word (the storage of a result taken
/// in f32: see [`SingleOut::Narrow`]); fewer if `words` holds fewer.
pub fn narrow_view(words: &[f64], len: usize) -> &[f32] {
    let narrow: &[f32] = bytemuck::cast_slice(words);
    &narrow[..len.min(narrow.len())]
}

/// [`narrow_view`], to write.
pub fn narrow_view_mut(words: &mut [f64], len: usize) -> &mut [f32] {
    let narrow: &mut [f32] = bytemuck::cast_slice_mut(words);
    let len = len.min(narrow.len());
    &mut narrow[..len]
}

/// `given`, or else `wide` rounded into `buffer`.
fn rounded<'x>(given: Option<&'x [f32]>, wide: &[f64], buffer: &'x mut Vec<f32>) -> &'x [f32] {
    match given {
        Some(given) => given,
        None => {
            let narrow = at_least(buffer, wide.len());
            convert(wide, narrow);
            narrow
        }
    }
}

/// Rounds `wide`'s elements to f32 into `narrow`, of the same length (the shorter's elements
/// only, if not): the copies [`matmul_single_rounded`] takes.
pub fn round_to_single(wide: &[f64], narrow: &mut [f32]) {
    let len = wide.len().min(narrow.len());
    convert(&wide[..len], &mut narrow[..len]);
}

/// Widens `narrow`'s elements to f64 into `wide`, of the same length (the shorter's elements
/// only, if not): exactly, as every f32 number is an f64 one.
pub fn widen_from_single(narrow: &[f32], wide: &mut [f64]) {
    let len = wide.len().min(narrow.len());
    convert(&narrow[..len], &mut wide[..len]);
}

/// Rounds (or widens) `from` into `to`, of the same length: with AVX2 where the CPU has it, four
/// or eight elements an instruction; the same bits either way (a conversion is exact or
/// correctly rounded).
pub(crate) fn convert<From: Copy, To: ConvertFrom<From>>(from: &[From], to: &mut [To]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { convert_avx2(from, to) };
    }
    convert_elements(from, to)
}

/// [`convert`], compiled for AVX2.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn convert_avx2<From: Copy, To: ConvertFrom<From>>(from: &[From], to: &mut [To]) {
    convert_elements(from, to)
}

#[inline(always)]
fn convert_elements<From: Copy, To: ConvertFrom<From>>(from: &[From], to: &mut [To]) {
    to.iter_mut().zip(from).for_each(|(to, from)| *to = To::convert(*from));
}

/// `as` between f64 and f32, for [`convert`].
pub(crate) trait ConvertFrom<From>: Copy {
    fn convert(from: From) -> Self;
}

impl ConvertFrom<f64> for f32 {
    #[inline(always)]
    fn convert(from: f64) -> f32 {
        from as f32
    }
}

impl ConvertFrom<f32> for f64 {
    #[inline(always)]
    fn convert(from: f32) -> f64 {
        f64::from(from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The product by definition: f32 operands, f32 sums in order.
    fn plain(a: &[f64], b: &[f64], m: usize, n: usize, p: usize) -> Vec<f64> {
        let mut out = vec![0.0; m * p];
        for i in 0..m {
            for j in 0..p {
                let sum = (0..n).fold(0.0f32, |sum, l| sum + a[i * n + l] as f32 * b[l * p + j] as f32);
                out[i * p + j] = f64::from(sum);
            }
        }
        out
    }

    fn operands(m: usize, n: usize, p: usize) -> (Vec<f64>, Vec<f64>) {
        let a = (0..m * n).map(|i| (i as f64 * 0.37).sin()).collect();
        let b = (0..n * p).map(|i| (i as f64 * 0.11).cos() / 3.0).collect();
        (a, b)
    }

    #[test]
    fn small_products_are_the_f32_sums_in_order_and_large_ones_within_f32_rounding() {
        for (m, n, p) in [(2, 3, 4), (1, 7, 1), (5, 1, 3), (64, 50, 30), (17, 200, 9)] {
            let (a, b) = operands(m, n, p);
            let mut out = vec![0.0; m * p];
            matmul_single(&a, &b, &mut out, m, n, p, Transposed::default());
            let want = plain(&a, &b, m, n, p);
            for (got, want) in out.iter().zip(&want) {
                if m * n * p < crate::linalg::GEMM_WORK {
                    assert_eq!(got.to_bits(), want.to_bits(), "{m}×{n}·{n}×{p}");
                } else {
                    // Summed in another order: within a few f32 roundings of the sum's terms.
                    assert!((got - want).abs() <= 1e-5 * n as f64, "{m}×{n}·{n}×{p}: {got} vs {want}");
                }
            }
            // Single precision, not double: the f64 product differs beyond f32's rounding.
            let mut wide = vec![0.0; m * p];
            crate::matmul(&a, &b, &mut wide, m, n, p);
            assert!(out.iter().zip(&wide).any(|(x, y)| x != y), "{m}×{n}·{n}×{p} was computed in f64");
        }
    }

    #[test]
    fn transposed_operands_are_read_in_place() {
        let (m, n, p) = (40, 30, 20);
        let (a, b) = operands(m, n, p);
        let transpose = |x: &[f64], rows: usize, cols: usize| {
            (0..rows * cols).map(|k| x[(k % rows) * cols + k / rows]).collect::<Vec<f64>>()
        };
        let (at, bt) = (transpose(&a, m, n), transpose(&b, n, p));
        let mut want = vec![0.0; m * p];
        matmul_single(&a, &b, &mut want, m, n, p, Transposed::default());
        for (x, y, transposed) in [
            (&at, &b, Transposed { a: true, b: false }),
            (&a, &bt, Transposed { a: false, b: true }),
            (&at, &bt, Transposed { a: true, b: true }),
        ] {
            let mut got = vec![0.0; m * p];
            matmul_single(x, y, &mut got, m, n, p, transposed);
            for (got, want) in got.iter().zip(&want) {
                assert!((got - want).abs() <= 1e-5 * n as f64, "{transposed:?}");
            }
        }
    }

    #[test]
    fn operands_rounded_by_the_caller_give_the_same_bits() {
        for (m, n, p) in [(3, 4, 2), (64, 200, 784), (32, 784, 200)] {
            let (a, b) = operands(m, n, p);
            let mut want = vec![0.0; m * p];
            matmul_single(&a, &b, &mut want, m, n, p, Transposed::default());
            let (mut a32, mut b32) = (vec![0.0; a.len()], vec![0.0; b.len()]);
            round_to_single(&a, &mut a32);
            round_to_single(&b, &mut b32);
            for given in [[Some(&a32[..]), None], [None, Some(&b32[..])], [Some(&a32[..]), Some(&b32[..])]] {
                let mut got = vec![0.0; m * p];
                let out = SingleOut::Wide(&mut got);
                matmul_single_rounded([(&a, given[0]), (&b, given[1])], out, (m, n, p), Transposed::default());
                assert!(got.iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits()), "{m}×{n}×{p}");
            }
        }
    }

    #[test]
    fn a_product_taken_in_f32_is_the_widened_one_unwidened() {
        for (m, n, p) in [(3, 4, 2), (32, 200, 784)] {
            let (a, b) = operands(m, n, p);
            let mut wide = vec![0.0; m * p];
            matmul_single(&a, &b, &mut wide, m, n, p, Transposed::default());
            // Kept in f64 words, two to a word, as a caller taking it in f32 keeps it.
            let mut words = vec![f64::NAN; m * p];
            let out = SingleOut::Narrow(narrow_view_mut(&mut words, m * p));
            matmul_single_rounded([(&a, None), (&b, None)], out, (m, n, p), Transposed::default());
            let narrow = narrow_view(&words, m * p);
            assert_eq!(narrow.len(), m * p);
            assert!(narrow.iter().zip(&wide).all(|(x, y)| f64::from(*x).to_bits() == y.to_bits()), "{m}×{n}×{p}");
        }
    }

    #[test]
    fn a_rounded_copy_of_another_length_gives_nan() {
        let (a, b) = operands(2, 2, 2);
        let mut out = vec![0.0; 4];
        let given = [(&a[..], Some(&[1.0; 3][..])), (&b[..], None)];
        matmul_single_rounded(given, SingleOut::Wide(&mut out), (2, 2, 2), Transposed::default());
        assert!(out.iter().all(|x| x.is_nan()));
    }

    #[test]
    fn mismatched_lengths_give_nan() {
        let mut out = vec![0.0; 4];
        matmul_single(&[1.0; 3], &[1.0; 4], &mut out, 2, 2, 2, Transposed::default());
        assert!(out.iter().all(|x| x.is_nan()));
    }
}
