//! Special functions that compiled log-densities and their derivatives call.
//!
//! Everything here is a pure `f64 -> f64` (or `&[f64] -> f64`) function: no allocation, no
//! global state, no panics. Invalid or out-of-domain arguments give NaN or the limiting
//! infinity, as documented on each function, exactly as `f64` arithmetic would; deciding that an
//! argument is a user error is the compiler's job, not this module's.
//!
//! Transcendental building blocks come from the pure-Rust `libm` crate rather than the
//! platform's C library, so results are the same bit for bit on every platform.
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

/// ln Σᵢ e^{xᵢ}, without overflow or underflow.
///
/// The smallest of `values` (+∞ if there are none), or NaN if any is NaN.
pub fn minimum(values: &[f64]) -> f64 {
    values
        .iter()
        .try_fold(f64::INFINITY, |least, &x| if x.is_nan() { None } else { Some(least.min(x)) })
        .unwrap_or(f64::NAN)
}

/// The largest of `values` (−∞ if there are none), or NaN if any is NaN.
pub fn maximum(values: &[f64]) -> f64 {
    values
        .iter()
        .try_fold(f64::NEG_INFINITY, |most, &x| if x.is_nan() { None } else { Some(most.max(x)) })
        .unwrap_or(f64::NAN)
}

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
