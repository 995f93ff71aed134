//! Special functions that compiled log-densities and their derivatives call.
//!
//! Everything here is a pure `f64 -> f64` (or `&[f64] -> f64`) function, or writes such a
//! function's values into slices it is given: no allocation, no panics, no global state but
//! the standard library's record of the CPU's features. Invalid or out-of-domain arguments give
//! NaN or the limiting infinity, as documented on each function, exactly as `f64` arithmetic
//! would; deciding that an argument is a user error is the compiler's job, not this module's.
//!
//! Transcendental building blocks come from the pure-Rust `libm` crate rather than the
//! platform's C library, so results are the same bit for bit on every platform. The one
//! exception, for speed, is [`softplus_and_sigmoid_slices`] (the Bernoulli-logit likelihood's
//! kernel), which performs `libm`'s `exp` and `log1p` operations itself without their branches,
//! so that the compiler vectorises them: the same operations, so the same bits, which this
//! module's tests check against `libm`.
//!
//! Accuracy (checked against mpmath in `tests/special.rs`): within ~1e-15 relative for
//! [`lgamma`] (libm's, which stays accurate next to its zeros at 1 and 2), [`digamma`] (including
//! at its positive root, where a Taylor series takes over) and [`trigamma`] on x > 0, and to a
//! few ulps for the rest. On x < 0 the reflection formulas keep the *absolute* error ~1e-16, so
//! the relative error grows next to the negative zeros of lgamma and digamma (e.g. ~1e-2 for
//! lgamma at its zero −2.457…, where the value is 6e-17); log-densities only need x > 0.

use std::f64::consts::PI;

/// Below this, digamma and trigamma use the recurrence to shift the argument up; at or above
/// it their asymptotic series are accurate to a few ulps with the terms kept below.
const ASYMPTOTIC_THRESHOLD: f64 = 10.0;

/// The positive root of digamma, split into a double and the remainder so that `x − root`
/// keeps full relative accuracy next to it (mpmath `findroot(digamma, 1.46)` at 40 digits:
/// 1.461632144968362341262659542325721328468).
const DIGAMMA_ROOT_HI: f64 = 1.4616321449683622;
const DIGAMMA_ROOT_LO: f64 = 9.549995429965697e-17;

/// Within this distance of the root, digamma uses the Taylor series below instead of the
/// recurrence, which would cancel catastrophically as ψ → 0.
const DIGAMMA_ROOT_RADIUS: f64 = 0.25;

/// Taylor coefficients of digamma about its positive root x₀: ψ(x) = Σₖ cₖ (x − x₀)^k with
/// cₖ = (−1)^(k+1) ζ(k + 1, x₀), k = 1..=24 (mpmath `zeta(k+1, x0)` at 40 digits). With
/// |x − x₀| ≤ 0.25 the first omitted term is below 1e-18 of the result.
const DIGAMMA_ROOT_TAYLOR: [f64; 24] = [
    0.9676722454476212,
    -0.4427631689835921,
    0.258499760955651,
    -0.16394270544240652,
    0.10782405069126237,
    -0.07219956125645471,
    0.04880428816414311,
    -0.03316112647484736,
    0.022597648232218104,
    -0.01542476590494896,
    0.010538791616612175,
    -0.007204534386356869,
    0.004926781395729853,
    -0.003369801655439328,
    0.002305126326734928,
    -0.0015769367714301972,
    0.0010788252019162967,
    -0.0007380709389960052,
    0.000504953265834602,
    -0.0003454680251063077,
    0.00023635601564027053,
    -0.00016170622091974803,
    0.0001106337276874741,
    -7.569179582195066e-05,
];

/// ln(1 + x), accurate for small |x| (re-exported from `libm` for platform independence).
pub use libm::log1p;

/// e^x − 1, accurate for small |x| (re-exported from `libm` for platform independence).
pub use libm::expm1;

/// ln |Γ(x)|.
///
/// `+∞` at the poles x = 0, −1, −2, …; NaN for NaN. For x < 0 this is the log of the absolute
/// value (Γ alternates sign there); the compiler only needs x > 0 for log-densities.
#[inline]
pub fn lgamma(x: f64) -> f64 {
    libm::lgamma(x)
}

/// The digamma function ψ(x) = d/dx ln Γ(x).
///
/// NaN at the poles x = 0, −1, −2, … (the two one-sided limits differ) and for NaN or −∞;
/// `+∞` at `+∞`.
pub fn digamma(x: f64) -> f64 {
    if x.is_nan() || x == f64::NEG_INFINITY {
        return f64::NAN;
    }
    if x <= 0.0 {
        if x == libm::floor(x) {
            return f64::NAN;
        }
        // Reflection: ψ(x) = ψ(1 − x) − π cot(πx).
        return digamma_positive(1.0 - x) - PI * cot_pi(x);
    }
    digamma_positive(x)
}

fn digamma_positive(x: f64) -> f64 {
    let offset_from_root = (x - DIGAMMA_ROOT_HI) - DIGAMMA_ROOT_LO;
    if offset_from_root.abs() <= DIGAMMA_ROOT_RADIUS {
        let mut sum = 0.0;
        for &coefficient in DIGAMMA_ROOT_TAYLOR.iter().rev() {
            sum = (sum + coefficient) * offset_from_root;
        }
        return sum;
    }
    // Recurrence ψ(x) = ψ(x + 1) − 1/x up to the asymptotic region.
    let mut shifted = x;
    let mut correction = 0.0;
    while shifted < ASYMPTOTIC_THRESHOLD {
        correction += 1.0 / shifted;
        shifted += 1.0;
    }
    digamma_asymptotic(shifted) - correction
}

/// ψ(x) ~ ln x − 1/(2x) − Σ B₂ₖ / (2k x^{2k}) for x ≥ 10, through B₁₄ (next term < 5e-17).
#[inline]
fn digamma_asymptotic(x: f64) -> f64 {
    if x == f64::INFINITY {
        return f64::INFINITY;
    }
    libm::log(x) + digamma_minus_log_asymptotic(x)
}

/// ψ(x) − ln x ~ −1/(2x) − Σ B₂ₖ / (2k x^{2k}) for x ≥ 10 (see [`digamma_asymptotic`]).
#[inline]
fn digamma_minus_log_asymptotic(x: f64) -> f64 {
    let z = 1.0 / (x * x);
    let series = z
        * (1.0 / 12.0
            - z * (1.0 / 120.0
                - z * (1.0 / 252.0 - z * (1.0 / 240.0 - z * (1.0 / 132.0 - z * (691.0 / 32760.0 - z / 12.0))))));
    -0.5 / x - series
}

/// ψ(x) − ln x for x > 0, without the cancellation of subtracting two nearly equal logarithms
/// when x is large (there the difference is ≈ −1/(2x) while both terms are ≈ ln x).
pub(crate) fn digamma_minus_log(x: f64) -> f64 {
    if x >= ASYMPTOTIC_THRESHOLD {
        digamma_minus_log_asymptotic(x)
    } else {
        digamma(x) - libm::log(x)
    }
}

/// The trigamma function ψ′(x) = d²/dx² ln Γ(x), needed for the forward-mode rule of digamma.
///
/// `+∞` at the poles x = 0, −1, −2, … (both one-sided limits are +∞), 0 at `+∞`, NaN for NaN
/// and −∞.
pub fn trigamma(x: f64) -> f64 {
    if x.is_nan() || x == f64::NEG_INFINITY {
        return f64::NAN;
    }
    if x <= 0.0 {
        if x == libm::floor(x) {
            return f64::INFINITY;
        }
        // Reflection: ψ′(x) + ψ′(1 − x) = π² / sin²(πx).
        let sine = sin_pi(x);
        return PI * PI / (sine * sine) - trigamma_positive(1.0 - x);
    }
    trigamma_positive(x)
}

fn trigamma_positive(x: f64) -> f64 {
    // Recurrence ψ′(x) = ψ′(x + 1) + 1/x²: every term is positive, so nothing cancels.
    let mut shifted = x;
    let mut correction = 0.0;
    while shifted < ASYMPTOTIC_THRESHOLD {
        correction += 1.0 / (shifted * shifted);
        shifted += 1.0;
    }
    trigamma_asymptotic(shifted) + correction
}

/// ψ′(x) ~ 1/x + 1/(2x²) + Σ B₂ₖ / x^{2k+1} for x ≥ 10, through B₁₆ (next term < 1e-17 relative).
#[inline]
fn trigamma_asymptotic(x: f64) -> f64 {
    if x == f64::INFINITY {
        return 0.0;
    }
    let inverse = 1.0 / x;
    let z = inverse * inverse;
    let series = z
        * (1.0 / 6.0
            - z * (1.0 / 30.0
                - z * (1.0 / 42.0
                    - z * (1.0 / 30.0
                        - z * (5.0 / 66.0 - z * (691.0 / 2730.0 - z * (7.0 / 6.0 - z * (3617.0 / 510.0))))))));
    inverse + 0.5 * z + inverse * series
}

/// cot(πx), with the argument reduced exactly to r ∈ [−½, ½] first so large |x| loses nothing,
/// and near r = ±½ (where cot vanishes) computed as tan(π(½ − |r|)), so that the small result
/// keeps its relative accuracy instead of being 1 / (a huge, inexact tangent).
fn cot_pi(x: f64) -> f64 {
    let reduced = x - libm::round(x);
    if reduced.abs() <= 0.25 {
        1.0 / libm::tan(PI * reduced)
    } else {
        // 0.5 − |r| is exact for |r| ∈ [0.25, 0.5] (Sterbenz).
        libm::copysign(libm::tan(PI * (0.5 - reduced.abs())), reduced)
    }
}

/// sin(πx) up to sign (only its square is used), with the argument reduced exactly first.
fn sin_pi(x: f64) -> f64 {
    libm::sin(PI * (x - libm::round(x)))
}

/// The smallest of `values` (+∞ if there are none), or NaN if any is NaN.
pub fn minimum(values: &[f64]) -> f64 {
    extremum(values, f64::INFINITY, f64::min)
}

/// The largest of `values` (−∞ if there are none), or NaN if any is NaN.
pub fn maximum(values: &[f64]) -> f64 {
    extremum(values, f64::NEG_INFINITY, f64::max)
}

/// How many running extrema [`extremum`] keeps: a vector register's worth twice over.
const EXTREMUM_LANES: usize = 8;

/// The extremum of `values` by `pick` (`f64::min` or `f64::max`) from `start`, NaN if any
/// is NaN: element `i` into running extremum `i % 8`, those picked in order at the end, with AVX2
/// where the CPU has it. Only the sign of a zero extremum can depend on the order (`pick` may
/// return either of −0 and +0); the order is fixed, so the bits are too. A check of every
/// observed pixel of a minibatch reads its values this way.
fn extremum(values: &[f64], start: f64, pick: impl Fn(f64, f64) -> f64 + Copy) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { extremum_avx2(values, start, pick) };
    }
    extremum_lanes(values, start, pick)
}

/// [`extremum_lanes`], compiled for AVX2.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn extremum_avx2(values: &[f64], start: f64, pick: impl Fn(f64, f64) -> f64 + Copy) -> f64 {
    extremum_lanes(values, start, pick)
}

#[inline(always)]
fn extremum_lanes(values: &[f64], start: f64, pick: impl Fn(f64, f64) -> f64 + Copy) -> f64 {
    let mut lanes = [start; EXTREMUM_LANES];
    let mut nan = false;
    let mut chunks = values.chunks_exact(EXTREMUM_LANES);
    for chunk in &mut chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            nan |= x.is_nan();
            *lane = pick(*lane, x);
        }
    }
    for (lane, &x) in lanes.iter_mut().zip(chunks.remainder()) {
        nan |= x.is_nan();
        *lane = pick(*lane, x);
    }
    if nan {
        return f64::NAN;
    }
    lanes.into_iter().fold(start, pick)
}

/// `floor` of every element of `x`, into `out` (as many elements as the shorter has): exact,
/// so the bits of `libm::floor`, with AVX2's rounding instruction where the CPU has it (the check
/// that a minibatch's observed counts are whole numbers floors every one of them).
pub fn floor_slice(x: &[f64], out: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { floor_avx2(x, out) };
    }
    out.iter_mut().zip(x).for_each(|(out, x)| *out = libm::floor(*x));
}

/// [`floor_slice`] with AVX2 (whose `vroundpd` is exact, as `floor` is).
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn floor_avx2(x: &[f64], out: &mut [f64]) {
    out.iter_mut().zip(x).for_each(|(out, x)| *out = x.floor());
}

/// ln Σᵢ e^{xᵢ}, without overflow or underflow.
///
/// −∞ for an empty slice (the log of an empty sum) or when every element is −∞; +∞ if any
/// element is +∞; NaN if any element is NaN. The largest element is factored out and the rest
/// summed through `log1p`, so a dominant element keeps full relative accuracy.
pub fn logsumexp(values: &[f64]) -> f64 {
    let mut max = f64::NEG_INFINITY;
    let mut max_index = 0;
    for (index, &value) in values.iter().enumerate() {
        if value.is_nan() {
            return f64::NAN;
        }
        if value > max {
            max = value;
            max_index = index;
        }
    }
    // All −∞ (or empty): the sum is 0. Any +∞: the sum is +∞. Either way, the max is the answer.
    if max.is_infinite() {
        return max;
    }
    let mut rest = 0.0;
    for (index, &value) in values.iter().enumerate() {
        if index != max_index {
            rest += libm::exp(value - max);
        }
    }
    max + libm::log1p(rest)
}

/// ln(1 + eˣ), stable for large |x|: exactly x + ln(1 + e^{−x}) for x > 0 (no overflow), and
/// ln(1 + eˣ) for x ≤ 0 (no loss of the small value).
#[inline]
pub fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + libm::log1p(libm::exp(-x))
    } else {
        libm::log1p(libm::exp(x))
    }
}

/// ln σ(x) = −softplus(−x), stable for large |x|.
#[inline]
pub fn log_sigmoid(x: f64) -> f64 {
    -softplus(-x)
}

/// The logistic function σ(x) = 1 / (1 + e^{−x}), the derivative of [`softplus`]; computed
/// without overflow for large |x|.
#[inline]
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + libm::exp(-x))
    } else {
        let e = libm::exp(x);
        e / (1.0 + e)
    }
}

/// `(softplus(x), sigmoid(x))` for the price of one: [`softplus`] and its derivative
/// [`sigmoid`] — the Bernoulli-logit log-likelihood and its gradient — are both functions of
/// e = exp(−|x|), and this computes each exactly as those functions do from the one
/// exponential they would each compute, so the bits are theirs for every `x`, ±∞, NaN and
/// −0.0 included (they take exp(x) and exp(−x) on the same sides of 0, apart from x = ±0,
/// where both are exp(±0) = 1).
#[inline]
pub fn softplus_and_sigmoid(x: f64) -> (f64, f64) {
    let e = libm::exp(if x > 0.0 { -x } else { x });
    let softplus = if x > 0.0 { x + libm::log1p(e) } else { libm::log1p(e) };
    let sigmoid = if x >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) };
    (softplus, sigmoid)
}

/// [`softplus_and_sigmoid`] of every element of `x`, into `softplus` and `sigmoid` (as many
/// elements as the shortest of the three; the rest are left alone): the same bits, element by
/// element, several times faster on long slices.
///
/// Elements with 2⁻²⁸ < |x| < 708.39 (all but extreme or tiny arguments) go through
/// [`exp_without_branches`] and [`log1p_without_branches`], which perform `libm`'s operations
/// with its branches turned into selections, in passes over the slices that the compiler
/// vectorises (with AVX2 where the CPU has it: one exponential and one logarithm are long
/// dependency chains, so a pass of each keeps many elements in flight); the others, if any, are
/// then done again by [`softplus_and_sigmoid`].
pub fn softplus_and_sigmoid_slices(x: &[f64], softplus: &mut [f64], sigmoid: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { softplus_and_sigmoid_passes_avx2(x, softplus, sigmoid) };
    }
    softplus_and_sigmoid_passes(x, softplus, sigmoid)
}

/// [`softplus_and_sigmoid_passes`], compiled for AVX2 (whose vectors hold four reals).
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn softplus_and_sigmoid_passes_avx2(x: &[f64], softplus: &mut [f64], sigmoid: &mut [f64]) {
    softplus_and_sigmoid_passes(x, softplus, sigmoid)
}

/// See [`softplus_and_sigmoid_slices`]. `sigmoid` holds e = exp(−|x|) between the passes.
#[inline(always)]
fn softplus_and_sigmoid_passes(x: &[f64], softplus: &mut [f64], sigmoid: &mut [f64]) {
    let elsewhere = exponentials_of_minus_magnitudes(x, sigmoid);
    for ((x, softplus), sigmoid) in x.iter().zip(softplus.iter_mut()).zip(sigmoid.iter_mut()) {
        let e = *sigmoid;
        let log1p = log1p_without_branches(e);
        *softplus = if *x > 0.0 { x + log1p } else { log1p };
        *sigmoid = if *x >= 0.0 { 1.0 } else { e } / (1.0 + e);
    }
    if elsewhere {
        for ((x, softplus), sigmoid) in x.iter().zip(softplus).zip(sigmoid) {
            if !exp_needs_no_branches(*x) {
                (*softplus, *sigmoid) = softplus_and_sigmoid(*x);
            }
        }
    }
}

/// [`softplus`] of every element of `x`, into `out` (as many elements as the shorter has): the
/// same bits, several times faster on long slices, as [`softplus_and_sigmoid_slices`] (a
/// softplus whose derivative is not needed: the value of an objective, a network's scale).
pub fn softplus_slice(x: &[f64], out: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { softplus_passes_avx2(x, out) };
    }
    softplus_passes(x, out)
}

/// [`softplus_passes`], compiled for AVX2.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn softplus_passes_avx2(x: &[f64], out: &mut [f64]) {
    softplus_passes(x, out)
}

/// See [`softplus_slice`]. `out` holds e = exp(−|x|) between the passes.
#[inline(always)]
fn softplus_passes(x: &[f64], out: &mut [f64]) {
    let elsewhere = exponentials_of_minus_magnitudes(x, out);
    for (x, out) in x.iter().zip(out.iter_mut()) {
        let log1p = log1p_without_branches(*out);
        *out = if *x > 0.0 { x + log1p } else { log1p };
    }
    if elsewhere {
        for (x, out) in x.iter().zip(out) {
            if !exp_needs_no_branches(*x) {
                *out = softplus(*x);
            }
        }
    }
}

/// The first pass of both slice kernels: `e = exp(−|x|)` for every element (the argument
/// [`softplus`] and [`sigmoid`] give `exp`); whether some element needs the scalar kernel.
#[inline(always)]
fn exponentials_of_minus_magnitudes(x: &[f64], e: &mut [f64]) -> bool {
    let mut elsewhere = false;
    for (x, e) in x.iter().zip(e.iter_mut()) {
        *e = exp_without_branches(if *x > 0.0 { -*x } else { *x });
        elsewhere |= !exp_needs_no_branches(*x);
    }
    elsewhere
}

/// Whether `libm::exp(±x)` takes neither of its early returns (for NaN, |x| ≥ 708.39… and
/// |x| ≤ 2⁻²⁸), so that [`exp_without_branches`] gives its bits.
#[inline(always)]
fn exp_needs_no_branches(x: f64) -> bool {
    let high = (x.to_bits() >> 32) & 0x7fff_ffff;
    high > 0x3e30_0000 && high < 0x4086_232b
}

/// `libm::exp(x)` (musl's, from FreeBSD) for 2⁻²⁸ < |x| < 708.39… ([`exp_needs_no_branches`]),
/// with the same operations in the same order, so the same bits; its choice of the reduction
/// k (by |x|: 0, ±1, or x/ln 2 rounded) is made by selection, and its final `scalbn(y, k)`,
/// which for these k is y·2ᵏ, multiplies by 2ᵏ built from k's bits. Other arguments give an
/// unspecified value.
#[inline(always)]
fn exp_without_branches(x: f64) -> f64 {
    // libm's constants, by their bits.
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000); // 6.93147180369123816490e-01
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76); // 1.90821492927058770002e-10
    const INV_LN2: f64 = f64::from_bits(0x3ff7_1547_652b_82fe); // 1.44269504088896338700e+00
    const P1: f64 = f64::from_bits(0x3fc5_5555_5555_553e); // 1.66666666666666019037e-01
    const P2: f64 = f64::from_bits(0xbf66_c16c_16be_bd93); // -2.77777777770155933842e-03
    const P3: f64 = f64::from_bits(0x3f11_566a_af25_de2c); // 6.61375632143793436117e-05
    const P4: f64 = f64::from_bits(0xbebb_bd41_c5d2_6bf1); // -1.65339022054652515390e-06
    const P5: f64 = f64::from_bits(0x3e66_3769_72be_a4d0); // 4.13813679705723846039e-08
    /// 2⁵²: the bits of 2⁵² + m, for an integer 0 ≤ m < 2¹¹, end in m's (here m = k + 1023,
    /// which shifted into the exponent field makes 2ᵏ).
    const TWO_52: f64 = 4503599627370496.0;
    let bits = x.to_bits();
    let high = (bits >> 32) & 0x7fff_ffff;
    let negative = bits >> 63 != 0;
    // libm's `k` as a real: `(INV_LN2 * x ± 0.5) as i32` for |x| ≥ 1.5 ln 2 (|k| ≥ 2 there,
    // well inside i32, so truncating the real is the same integer), ±1 above ½ ln 2, else 0.
    let k = if high >= 0x3ff0_a2b2 {
        (INV_LN2 * x + if negative { -0.5 } else { 0.5 }).trunc()
    } else if high > 0x3fd6_2e42 {
        if negative {
            -1.0
        } else {
            1.0
        }
    } else {
        0.0
    };
    // With k = 0, libm skips these three lines; they then give hi = x, lo = 0 and x itself.
    let hi = x - k * LN2_HI;
    let lo = k * LN2_LO;
    let x = hi - lo;
    let xx = x * x;
    let c = x - xx * (P1 + xx * (P2 + xx * (P3 + xx * (P4 + xx * P5))));
    let y = 1.0 + (x * c / (2.0 - c) - lo + hi);
    // |k| ≤ 1022, so libm's `scalbn(y, k)` is y · 2ᵏ in one multiplication (and y itself when
    // k = 0, where it is skipped: y · 1).
    y * f64::from_bits((k + (1023.0 + TWO_52)).to_bits() << 52)
}

/// `libm::log1p(x)` (musl's, from FreeBSD) for 0 ≤ x ≤ 1, with the same operations in the same
/// order, so the same bits: x itself below 2⁻⁵³, else the reduction 1 + x = 2ᵏ(1 + f) with k = 0
/// below √2 − 1 and k = 1 from there (so 1 + x ∈ [√2, 2]), chosen by selection. Other arguments
/// give an unspecified value.
#[inline(always)]
fn log1p_without_branches(x: f64) -> f64 {
    // libm's constants, by their bits.
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000); // 6.93147180369123816490e-01
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76); // 1.90821492927058770002e-10
    const LG1: f64 = f64::from_bits(0x3fe5_5555_5555_5593); // 6.666666666666735130e-01
    const LG2: f64 = f64::from_bits(0x3fd9_9999_9997_fa04); // 3.999999999940941908e-01
    const LG3: f64 = f64::from_bits(0x3fd2_4924_9422_9359); // 2.857142874366239149e-01
    const LG4: f64 = f64::from_bits(0x3fcc_71c5_1d8e_78af); // 2.222219843214978396e-01
    const LG5: f64 = f64::from_bits(0x3fc7_4664_96cb_03de); // 1.818357216161805012e-01
    const LG6: f64 = f64::from_bits(0x3fc3_9a09_d078_c69f); // 1.531383769920937332e-01
    const LG7: f64 = f64::from_bits(0x3fc2_f112_df3e_5244); // 1.479819860511658591e-01
    let high = x.to_bits() >> 32;
    // k = 1: u = 1 + x rounded, the correction c = (x − (u − 1))/u, and f from u's bits brought
    // into [√2/2, √2) (libm's `hu` arithmetic, for the high word 0x3ff6a09e… to 0x40000000 of u).
    let u = 1.0 + x;
    let u_bits = u.to_bits();
    let hu = (u_bits >> 32).wrapping_add(0x3ff0_0000 - 0x3fe6_a09e);
    let reduced = ((hu & 0x000f_ffff).wrapping_add(0x3fe6_a09e) << 32) | (u_bits & 0xffff_ffff);
    let one = high >= 0x3fda_827a;
    let k = if one { 1.0 } else { 0.0 };
    let c = if one { (x - (u - 1.0)) / u } else { 0.0 };
    let f = if one { f64::from_bits(reduced) - 1.0 } else { x };
    let hfsq = 0.5 * f * f;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG2 + w * (LG4 + w * LG6));
    let t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)));
    let r = t2 + t1;
    let log1p = s * (hfsq + r) + (k * LN2_LO + c) - hfsq + f + k * LN2_HI;
    if high < 0x3ca0_0000 {
        x
    } else {
        log1p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every high word where `libm::exp` or `libm::log1p` changes branch, with the reals just
    /// below and above it, of both signs; a sweep; and random bit patterns.
    fn arguments() -> Vec<f64> {
        let mut values = Vec::new();
        for high in [0x3e30_0000_u64, 0x3fd6_2e42, 0x3ff0_a2b2, 0x4086_232b, 0x3fda_827a, 0x3ca0_0000, 0x3ff0_0000] {
            for bits in [high << 32, (high << 32) - 1, (high + 1) << 32, ((high + 1) << 32) - 1, (high << 32) + 1] {
                values.extend([f64::from_bits(bits), -f64::from_bits(bits)]);
            }
        }
        values.extend((-800_000..=800_000).map(|k| f64::from(k) / 1000.0));
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        values.extend((0..100_000).map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            f64::from_bits(state)
        }));
        values.extend([0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 5e-324, f64::MAX]);
        values
    }

    #[test]
    fn exp_and_log1p_without_branches_are_libms_where_they_apply() {
        for x in arguments() {
            if exp_needs_no_branches(x) {
                assert_eq!(exp_without_branches(x).to_bits(), libm::exp(x).to_bits(), "exp({x:e})");
            }
            let unit = x.abs().min(1.0);
            assert_eq!(log1p_without_branches(unit).to_bits(), libm::log1p(unit).to_bits(), "log1p({unit:e})");
        }
    }

    /// The passes as every target compiles them (the public function may take the AVX2 copy),
    /// over slices of every length up to a few vectors and with out-of-range elements among
    /// ordinary ones.
    #[test]
    fn the_passes_give_the_scalar_kernels_bits() {
        let values = arguments();
        for chunk in values.chunks(1000).chain(values.chunks(7).take(2000)) {
            let (mut softplus_of, mut sigmoid_of) = (vec![0.0; chunk.len()], vec![0.0; chunk.len()]);
            softplus_and_sigmoid_passes(chunk, &mut softplus_of, &mut sigmoid_of);
            for ((x, s), g) in chunk.iter().zip(&softplus_of).zip(&sigmoid_of) {
                assert_eq!(s.to_bits(), softplus(*x).to_bits(), "softplus({x:e})");
                assert_eq!(g.to_bits(), sigmoid(*x).to_bits(), "sigmoid({x:e})");
            }
        }
    }
}
