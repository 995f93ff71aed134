//! Implicit reparameterisation gradients (Figurnov, Mohamed & Mnih 2018) for the gamma family.
//!
//! For x ~ Gamma(α, 1) drawn by any sampler, the pathwise derivative is
//! dx/dα = −(∂F(x; α)/∂α) / p(x; α), with F the regularised lower incomplete gamma P(α, x) and
//! p the density. The compiler handles the rate (x/β) and beta (a ratio of two gammas), so
//! [`gamma_sample_dshape`] is the whole contract. This module only evaluates the derivative; it
//! never samples and never allocates.
//!
//! # Method
//!
//! Neither F nor p is formed: both are tiny, or F is ~1, in the tails, and only their ratio
//! matters. Write ∂ for ∂/∂α and ψ for digamma. Then
//! dx/dα = −∫₀ˣ p(t)(ln t − ψ(α)) dt / p(x) = ∫ₓ^∞ p(t)(ln t − ψ(α)) dt / p(x)
//! (the two agree because E[ln X] = ψ(α)), so dx/dα > 0 everywhere.
//!
//! - **Lower side**, x < max(e^{ψ(α+1)}, 1) (e^{ψ(α+1)} ≈ α + ½ for large α): the power series
//!   P(α, x) = x^α e^{−x} Σₙ xⁿ/Γ(α+n+1), differentiated term by term and divided by p, gives
//!   dx/dα = (x/α)·[(ψ(α+1) − ln x)·S + S′] with S = Σₙ tₙ, S′ = Σₙ tₙ·Σₖ₌₁ⁿ 1/(α+k) and
//!   tₙ = xⁿ/((α+1)…(α+n)). Every term is positive, and so is ψ(α+1) − ln x below e^{ψ(α+1)}:
//!   nothing cancels. (Only for α < ~1.5 and e^{ψ(α+1)} ≤ x < 1, where the continued fraction
//!   below would converge slowly, do the two products have opposite signs; they are then of the
//!   size of the result.) Writing ψ(α+1) rather than ψ(α) removes two O(1/α) terms that would
//!   cancel exactly, and overflow, for tiny α.
//! - **Upper side**, x beyond that: with R = Q(α, x)/p(x; α) (Q = 1 − P),
//!   dx/dα = (ln x − ψ(α))·R + ∂R, both terms positive. R comes from Legendre's continued
//!   fraction for Γ(α, x), R = x / (x+1−α − 1(1−α)/(x+3−α − 2(2−α)/(x+5−α − …))), evaluated with
//!   the modified Lentz algorithm in dual numbers (value, ∂/∂α): forward-mode differentiation of
//!   the convergents, which converge to ∂R along with R.
//!
//! Near the mode of a large-shape gamma, ln x and ψ(α) agree in most of their digits, so their
//! difference is computed as ln(x/α) − (ψ(α) − ln α), the latter from its asymptotic series.
//!
//! Both sums need about 9√α terms near the mode, so their cost grows like √α (~0.2 µs at
//! α = 50, ~1.5 µs at α = 1e4, ~4 µs at α = 1e5, ~30 µs at 1e7 in a release build). From
//! α = 1e7 on, samples within 10 standard deviations of the mean (all but ~1e-23 of them) use
//! instead a four-term expansion in 1/√α derived from the Cornish–Fisher quantile expansion.
//!
//! Measured accuracy against mpmath (`tests/implicit.rs`; during development also a sweep of 169
//! points over α ∈ [1e-3, 1e5] and the 1e-10 … 1 − 1e-10 quantiles): within 5e-15 relative for
//! α ≤ 1e5; the sums lose about a digit per two decades of α beyond that (~1e-13 at 1e8) and the
//! expansion is within ~3e-14 from 1e7 on. Far-tail samples of a huge shape (|x − α| > 10√α,
//! α ≥ 1e7) still take the sums; beyond α ≈ 1e10 those would hit the iteration cap and lose
//! accuracy.

use crate::special::{digamma, digamma_minus_log};

/// Relative size of the last series term at which the series stops.
const SERIES_TOLERANCE: f64 = 1e-17;

/// Relative change of the last continued-fraction step at which it stops (one ulp: a step can
/// never change the value by less without changing it by nothing).
const FRACTION_TOLERANCE: f64 = f64::EPSILON;

/// A safety bound on series terms / continued-fraction steps. About 9√α are needed near the
/// mode, so it is only reached for α beyond ~1e10, and there only by far-tail samples (the
/// large-shape expansion takes the rest).
const MAX_ITERATIONS: usize = 1_000_000;

/// Below this x (and always below e^{ψ(α+1)}) the power series is used.
const SERIES_BELOW: f64 = 1.0;

/// From this shape on, samples within [`EXPANSION_MAX_DEVIATION`] standard deviations of the mean
/// use the large-shape expansion ([`large_shape_expansion`]): its error is ≲ 3e-14 relative there,
/// below that of the ~9√α-term sums, which also cost ~30 µs at this shape and grow as √α.
const EXPANSION_MIN_SHAPE: f64 = 1e7;

/// |x − α|/√α up to which the large-shape expansion is used (P(|w| > 10) ≈ 1e-23).
const EXPANSION_MAX_DEVIATION: f64 = 10.0;

/// dx/dα for x ~ Gamma(α, 1): the implicit reparameterisation derivative of a gamma sample with
/// respect to its shape, −(∂P(α, x)/∂α) / p(x; α).
///
/// Returns 0 at x = 0 (the limit: x ∝ u^{1/α} near 0), and NaN when α is not finite and
/// positive or x is negative, infinite or NaN. For x ~ Gamma(α, β) (rate β) the derivative is
/// `gamma_sample_dshape(β·x, α) / β`.
pub fn gamma_sample_dshape(x: f64, shape: f64) -> f64 {
    let shape_valid = shape > 0.0 && shape.is_finite();
    let x_valid = x >= 0.0 && x.is_finite();
    if !(shape_valid && x_valid) {
        return f64::NAN;
    }
    if x == 0.0 {
        return 0.0;
    }
    if shape >= EXPANSION_MIN_SHAPE {
        let inverse_sqrt_shape = 1.0 / libm::sqrt(shape);
        // x − α is exact here (Sterbenz) whenever x is near α.
        let deviation = (x - shape) * inverse_sqrt_shape;
        if deviation.abs() <= EXPANSION_MAX_DEVIATION {
            return large_shape_expansion(deviation, inverse_sqrt_shape);
        }
    }
    let digamma_next_minus_log_x = digamma_next_minus_log_x(x, shape);
    if digamma_next_minus_log_x > 0.0 || x < SERIES_BELOW {
        let series = lower_series(x, shape);
        (x / shape) * (digamma_next_minus_log_x * series.sum + series.weighted_sum)
    } else {
        let upper = upper_ratio(x, shape);
        log_x_minus_digamma(x, shape) * upper.value + upper.dshape
    }
}

/// dx/dα for large α in powers of s = 1/√α at fixed w = (x − α)/√α:
/// 1 + s·w/2 + s²(1 − w²)/6 + s³·w(w² + 1)/12 − s⁴(w² + 1)(3w² − 1)/60 + O(s⁵).
///
/// Derived from the Cornish–Fisher expansion of the gamma quantile (cumulants κᵣ = (r−1)!·α),
/// x = α + √α·z + (z² − 1)/3 + (z³ − 7z)/(36√α) + (−3z⁴ − 7z² + 16)/(810α) + …, differentiated
/// in α at fixed z and re-expressed in w. Compared with the sums, its error falls as α^{−5/2}:
/// ≈ 2e-12 at α = 1e6 and ≈ 3e-14 at α = 1e7 for |w| ≤ 9 (and it matches mpmath quadrature at
/// α = 1e7 and 1e9 to ~1e-16).
fn large_shape_expansion(deviation: f64, inverse_sqrt_shape: f64) -> f64 {
    let w = deviation;
    let w2 = w * w;
    let s = inverse_sqrt_shape;
    let fourth = -(w2 + 1.0) * (3.0 * w2 - 1.0) / 60.0;
    let third = w * (w2 + 1.0) / 12.0;
    let second = (1.0 - w2) / 6.0;
    1.0 + s * (w / 2.0 + s * (second + s * (third + s * fourth)))
}

/// ∂ ln p(x; α)/∂α = ln x − ψ(α), computed as ln(x/α) − (ψ(α) − ln α) so that it keeps its
/// relative accuracy near the mode of a large-shape gamma, where both ln x and ψ(α) are ≈ ln α
/// but their difference is O(1/√α).
fn log_x_minus_digamma(x: f64, shape: f64) -> f64 {
    let ratio = x / shape;
    let log_ratio = if (0.5..=2.0).contains(&ratio) {
        // x − α is exact here (Sterbenz), so only the final rounding of the quotient remains.
        libm::log1p((x - shape) / shape)
    } else {
        libm::log(x) - libm::log(shape)
    };
    log_ratio - digamma_minus_log(shape)
}

/// ψ(α + 1) − ln x. For small α directly (ψ(α + 1) is moderate); for large α as
/// −(ln x − ψ(α)) + 1/α, which inherits the accuracy of [`log_x_minus_digamma`] near the mode.
fn digamma_next_minus_log_x(x: f64, shape: f64) -> f64 {
    if shape < 1.0 {
        digamma(shape + 1.0) - libm::log(x)
    } else {
        1.0 / shape - log_x_minus_digamma(x, shape)
    }
}

/// The sums S = Σₙ tₙ and S′ = Σₙ tₙ·Σₖ₌₁ⁿ 1/(α+k), with t₀ = 1 and tₙ = tₙ₋₁·x/(α+n).
struct LowerSeries {
    sum: f64,
    weighted_sum: f64,
}

fn lower_series(x: f64, shape: f64) -> LowerSeries {
    let mut term = 1.0;
    let mut harmonic = 0.0; // Σₖ₌₁ⁿ 1/(α+k) = −∂ ln tₙ/∂α
    let mut sum = 1.0;
    let mut weighted_sum = 0.0;
    let mut denominator = shape;
    for _ in 0..MAX_ITERATIONS {
        denominator += 1.0;
        term *= x / denominator;
        harmonic += 1.0 / denominator;
        let weighted_term = term * harmonic;
        sum += term;
        weighted_sum += weighted_term;
        if term <= sum * SERIES_TOLERANCE && weighted_term <= weighted_sum * SERIES_TOLERANCE {
            break;
        }
    }
    LowerSeries { sum, weighted_sum }
}

/// A value with its derivative with respect to the shape α.
#[derive(Clone, Copy, Debug)]
struct Dual {
    value: f64,
    dshape: f64,
}

impl Dual {
    const fn new(value: f64, dshape: f64) -> Dual {
        Dual { value, dshape }
    }

    #[inline]
    fn add(self, other: Dual) -> Dual {
        Dual::new(self.value + other.value, self.dshape + other.dshape)
    }

    #[inline]
    fn mul(self, other: Dual) -> Dual {
        Dual::new(self.value * other.value, self.dshape * other.value + self.value * other.dshape)
    }

    #[inline]
    fn recip(self) -> Dual {
        let inverse = 1.0 / self.value;
        Dual::new(inverse, -self.dshape * inverse * inverse)
    }

    #[inline]
    fn div(self, other: Dual) -> Dual {
        self.mul(other.recip())
    }
}

/// R = Q(α, x)/p(x; α) and ∂R/∂α, by Legendre's continued fraction for Γ(α, x) evaluated with the
/// modified Lentz algorithm in dual numbers.
fn upper_ratio(x: f64, shape: f64) -> Dual {
    // Lentz's guard against a zero denominator; the dual part is dropped with it.
    const TINY: f64 = 1e-300;
    let guard = |d: Dual| if d.value.abs() < TINY { Dual::new(TINY, 0.0) } else { d };

    // b₀ = x + 1 − α; bᵢ = b₀ + 2i; aᵢ = −i(i − α).
    let mut b = Dual::new(x + 1.0 - shape, -1.0);
    let mut c = Dual::new(1.0 / TINY, 0.0);
    let mut d = guard(b).recip();
    let mut fraction = d;
    for step in 1..=MAX_ITERATIONS {
        let i = step as f64;
        let a = Dual::new(-i * (i - shape), i);
        b = b.add(Dual::new(2.0, 0.0));
        d = guard(a.mul(d).add(b)).recip();
        c = guard(b.add(a.div(c)));
        let delta = c.mul(d);
        fraction = fraction.mul(delta);
        let value_converged = (delta.value - 1.0).abs() <= FRACTION_TOLERANCE;
        let derivative_converged =
            delta.dshape.abs() * fraction.value.abs() <= FRACTION_TOLERANCE * fraction.dshape.abs();
        if value_converged && derivative_converged {
            break;
        }
    }
    Dual::new(x * fraction.value, x * fraction.dshape)
}
