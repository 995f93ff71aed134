//! Softplus and sigmoid in single precision (`--precision f32`): the Bernoulli-logit
//! likelihood's kernel and its derivative, computed in f32 as f32 networks in JAX and PyTorch
//! compute them, for the matrices of a batched minibatch. The one kernel both back ends call, so
//! they agree bit for bit.
//!
//! Each element is rounded to f32, computed in f32 by the same operations whatever its place in
//! the slice (no branch, no second path for some arguments: the compiler runs eight elements
//! at once), and its results widened back. Accuracy, checked in this module's tests against the
//! f64 kernel: within a few f32 ulps; results below f32's smallest normal number are flushed
//! to zero, as JAX on a CPU flushes them.

/// Beyond this magnitude (126 ln 2), exp(−|x|) is below f32's smallest normal number: flushed
/// to zero.
const EXP_FLUSH: f32 = 87.336_54;

/// ln 2 in two parts, the first with few enough bits that `n · LN2_HI` is exact for the `n`
/// of [`exp_of_nonpositive`] (Cody and Waite's reduction).
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// 1.5 · 2²³: a sum with it has no bits below units, so it rounds to an integer (to even),
/// which its low mantissa bits hold (`exp_of_nonpositive`).
const ROUNDING_SHIFT: f32 = 12_582_912.0;

/// `[softplus(x), sigmoid(x)]` of every element of `x`, computed in f32, into `softplus` and
/// `sigmoid` (as many elements as the shortest of the three).
pub fn softplus_and_sigmoid_single(x: &[f64], softplus: &mut [f64], sigmoid: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { elements_avx2(x, softplus, sigmoid) };
    }
    elements(x, softplus, sigmoid)
}

/// [`elements`], compiled for AVX2 (whose vectors hold eight f32 numbers) and FMA (which
/// computes the fused multiply–adds of the polynomials in one instruction; elsewhere they take
/// a call, with the same bits).
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn elements_avx2(x: &[f64], softplus: &mut [f64], sigmoid: &mut [f64]) {
    elements(x, softplus, sigmoid)
}

/// The elements in chunks: rounded to f32 into a chunk of f32 numbers, computed there (eight to
/// a vector), widened back; each element by the same operations wherever it lies.
#[inline(always)]
fn elements(x: &[f64], softplus: &mut [f64], sigmoid: &mut [f64]) {
    const CHUNK: usize = 64;
    for ((x, softplus), sigmoid) in x.chunks(CHUNK).zip(softplus.chunks_mut(CHUNK)).zip(sigmoid.chunks_mut(CHUNK)) {
        let mut narrow = [0.0_f32; CHUNK];
        for (narrow, x) in narrow.iter_mut().zip(x) {
            *narrow = *x as f32;
        }
        let (mut softplus_chunk, mut sigmoid_chunk) = ([0.0_f32; CHUNK], [0.0_f32; CHUNK]);
        for ((x, softplus), sigmoid) in narrow.iter().zip(&mut softplus_chunk).zip(&mut sigmoid_chunk) {
            (*softplus, *sigmoid) = softplus_and_sigmoid_f32(*x);
        }
        for (out, value) in softplus.iter_mut().zip(&softplus_chunk) {
            *out = f64::from(*value);
        }
        for (out, value) in sigmoid.iter_mut().zip(&sigmoid_chunk) {
            *out = f64::from(*value);
        }
    }
}

/// softplus(x) = max(x, 0) + log1p(e) and sigmoid(x) = 1/(1 + e) (x ≥ 0) or e/(1 + e), with
/// e = exp(−|x|) ∈ [0, 1].
#[inline(always)]
fn softplus_and_sigmoid_f32(x: f32) -> (f32, f32) {
    let e = exp_of_nonpositive(-x.abs());
    let softplus = if x > 0.0 { x + log1p_of_unit(e) } else { log1p_of_unit(e) };
    let reciprocal = 1.0 / (1.0 + e);
    let sigmoid = if x >= 0.0 { reciprocal } else { e * reciprocal };
    (softplus, sigmoid)
}

/// exp(t) for t ≤ 0 (NaN for NaN): t = n ln 2 + r with |r| ≤ ln 2 / 2, e^r by its Taylor
/// polynomial of degree 7 (whose remainder is below 6e-9) in fused multiply–adds, times 2^n
/// built from its bits.
#[inline(always)]
fn exp_of_nonpositive(t: f32) -> f32 {
    // A comparison, not `max`, so that NaN stays NaN.
    let clamped = if t < -EXP_FLUSH { -EXP_FLUSH } else { t };
    // Adding 1.5 · 2²³ rounds to the nearest integer n, which the low bits of the sum then hold.
    let shifted = clamped * std::f32::consts::LOG2_E + ROUNDING_SHIFT;
    let n = shifted - ROUNDING_SHIFT;
    let r = (clamped - n * LN2_HI) - n * LN2_LO;
    let mut p: f32 = 1.0 / 5040.0;
    for coefficient in [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = p.mul_add(r, coefficient);
    }
    // 2ⁿ: the exponent field n + 127 (the bits above it shift out).
    let scale = f32::from_bits(shifted.to_bits().wrapping_add(127) << 23);
    let value = p * scale;
    if t < -EXP_FLUSH {
        0.0
    } else {
        value
    }
}

/// log(1 + e) for e ∈ [0, 1] (NaN for NaN): 2 atanh(s) with s = e/(2 + e) ≤ 1/3, by its series
/// to s¹⁵ (whose remainder is below 2e-9 of the result) in fused multiply–adds.
#[inline(always)]
fn log1p_of_unit(e: f32) -> f32 {
    let s = e / (2.0 + e);
    let s2 = s * s;
    let mut p: f32 = 1.0 / 15.0;
    for coefficient in [1.0 / 13.0, 1.0 / 11.0, 1.0 / 9.0, 1.0 / 7.0, 1.0 / 5.0, 1.0 / 3.0, 1.0] {
        p = p.mul_add(s2, coefficient);
    }
    2.0 * s * p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The distance in f32 ulps between `value` and the f64 reference rounded to f32.
    fn ulps(value: f64, reference: f64) -> u32 {
        let (a, b) = (value as f32, reference as f32);
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    /// Within 4 f32 ulps of the f64 kernel from −100 to 100 (and at tiny arguments), where the
    /// results are normal f32 numbers; zero, or still within 4 ulps, where they are about to
    /// leave them.
    #[test]
    fn softplus_and_sigmoid_in_f32_are_within_a_few_ulps_of_the_f64_kernel() {
        let mut x: Vec<f64> = (-200_000..=200_000).map(|k| f64::from(k) * 5e-4).collect();
        x.extend((0..60).flat_map(|k| [2f64.powi(-k), -(2f64.powi(-k))]));
        let (mut softplus, mut sigmoid) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        softplus_and_sigmoid_single(&x, &mut softplus, &mut sigmoid);
        for ((x, softplus), sigmoid) in x.iter().zip(&softplus).zip(&sigmoid) {
            let (reference_softplus, reference_sigmoid) = crate::softplus_and_sigmoid(f64::from(*x as f32));
            for (value, reference) in [(*softplus, reference_softplus), (*sigmoid, reference_sigmoid)] {
                if reference < 2.0 * f64::from(f32::MIN_POSITIVE) {
                    assert!(value == 0.0 || ulps(value, reference) <= 4, "x = {x}: {value} for {reference}");
                    continue;
                }
                assert!(ulps(value, reference) <= 4, "x = {x}: {value} for {reference}");
            }
        }
    }

    #[test]
    fn special_arguments_give_the_limits() {
        let x = [0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1e30, -1e30, 88.0, -88.0];
        let (mut softplus, mut sigmoid) = ([0.0; 9], [0.0; 9]);
        softplus_and_sigmoid_single(&x, &mut softplus, &mut sigmoid);
        assert_eq!(softplus[0], f64::from(std::f32::consts::LN_2));
        assert_eq!((sigmoid[0], sigmoid[1]), (0.5, 0.5));
        assert_eq!((softplus[2], sigmoid[2]), (f64::INFINITY, 1.0));
        assert_eq!((softplus[3], sigmoid[3]), (0.0, 0.0));
        assert!(softplus[4].is_nan() && sigmoid[4].is_nan());
        assert_eq!((softplus[5], sigmoid[5]), (f64::from(1e30_f32), 1.0));
        assert_eq!((softplus[6], sigmoid[6]), (0.0, 0.0));
        assert_eq!((softplus[7], sigmoid[7]), (88.0, 1.0));
        assert_eq!((softplus[8], sigmoid[8]), (0.0, 0.0));
    }

    /// Each element has the bits it has alone, wherever it lies in a slice (the vectorised
    /// loop and its remainder compute alike).
    #[test]
    fn an_element_has_the_same_bits_anywhere_in_a_slice() {
        let x: Vec<f64> = (0..37).map(|k| (f64::from(k) * 0.37).sin() * 9.0).collect();
        let (mut softplus, mut sigmoid) = (vec![0.0; 37], vec![0.0; 37]);
        softplus_and_sigmoid_single(&x, &mut softplus, &mut sigmoid);
        for (k, x) in x.iter().enumerate() {
            let (mut one_softplus, mut one_sigmoid) = ([0.0], [0.0]);
            softplus_and_sigmoid_single(&[*x], &mut one_softplus, &mut one_sigmoid);
            assert_eq!(
                (one_softplus[0].to_bits(), one_sigmoid[0].to_bits()),
                (softplus[k].to_bits(), sigmoid[k].to_bits())
            );
        }
    }
}
