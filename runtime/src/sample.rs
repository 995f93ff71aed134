//! Samplers for the distributions that are not a location–scale or inverse-CDF transform of the
//! base noise in [`crate::rng`] (those the compiler writes as IR arithmetic itself).
//!
//! Every sampler validates its parameters first and returns a [`DomainError`] for a value
//! outside the domain (including NaN and infinities); none of them panics or allocates. Each
//! consumes randomness only from the [`Rng`] it is given, so a draw is a pure function of the
//! stream's position. Log-densities and gradient rules are the compiler's business, not this
//! module's; only the conventions they must match are stated here (see [`categorical`]).

use rand_distr::{Beta, Binomial, Distribution, Gamma, Poisson};

use crate::error::DomainError;
use crate::rng::Rng;

const FINITE_POSITIVE: &str = "be finite and > 0";
const PROBABILITY: &str = "be in [0, 1]";

/// The largest Poisson rate accepted: beyond it draws no longer fit the sampler's arithmetic
/// (`rand_distr::Poisson::MAX_LAMBDA`, ≈ 2^64).
pub const POISSON_MAX_RATE: f64 = Poisson::<f64>::MAX_LAMBDA;

fn require_finite_positive(distribution: &'static str, parameter: &'static str, value: f64) -> Result<(), DomainError> {
    if value > 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(DomainError::new(distribution, parameter, value, FINITE_POSITIVE))
    }
}

/// A draw from Gamma(shape, rate), density ∝ x^(shape−1) e^(−rate·x) on x > 0.
///
/// It is a standard Gamma(shape, 1) draw (Marsaglia & Tsang, via `rand_distr`) divided by `rate`,
/// matching the implicit-reparameterisation rule, which differentiates the standard draw
/// ([`crate::gamma_sample_dshape`]) and divides by the rate. Errors unless both parameters are
/// finite and > 0. For shape ≪ 1 the draw can underflow to exactly 0 (its true value is below
/// the smallest `f64`), e.g. with probability ≈ 0.5 at shape = 0.001.
pub fn gamma(rng: &mut Rng, shape: f64, rate: f64) -> Result<f64, DomainError> {
    require_finite_positive("gamma", "shape", shape)?;
    require_finite_positive("gamma", "rate", rate)?;
    match Gamma::new(shape, 1.0) {
        Ok(standard) => Ok(standard.sample(rng) / rate),
        Err(_) => Err(DomainError::new("gamma", "shape", shape, FINITE_POSITIVE)),
    }
}

/// A draw from Beta(a, b), density ∝ x^(a−1) (1−x)^(b−1) on (0, 1).
///
/// Cheng's algorithms BB and BC (via `rand_distr`). Errors unless both parameters are finite
/// and > 0. For tiny parameters the draw can round to exactly 0 or 1.
pub fn beta(rng: &mut Rng, a: f64, b: f64) -> Result<f64, DomainError> {
    require_finite_positive("beta", "a", a)?;
    require_finite_positive("beta", "b", b)?;
    match Beta::new(a, b) {
        Ok(distribution) => Ok(distribution.sample(rng)),
        Err(_) => Err(DomainError::new("beta", "a", a, FINITE_POSITIVE)),
    }
}

/// A Bernoulli draw: `true` with probability `p`.
///
/// One uniform u ∈ (0, 1) and `u < p`, so p = 0 is always `false` and p = 1 always `true`.
/// Errors unless p ∈ [0, 1].
#[inline]
pub fn flip(rng: &mut Rng, p: f64) -> Result<bool, DomainError> {
    if !(0.0..=1.0).contains(&p) {
        return Err(DomainError::new("flip", "p", p, PROBABILITY));
    }
    Ok(rng.uniform() < p)
}

/// A draw from the categorical distribution over `0..weights.len()` with P(i) = wᵢ / Σⱼ wⱼ.
///
/// **Weights need not be normalised**: they are divided by their sum, so probabilities that
/// sum to 1 up to rounding (a softmax, say) are used as given, and any non-negative weights
/// work. The log-density consistent with this sampler is `ln wᵢ − ln Σⱼ wⱼ` (equal to `ln pᵢ`
/// for normalised input); the compiler must use that form, or normalise, to stay consistent.
///
/// One uniform draw and a linear scan; a category of weight 0 is never returned. Errors if the
/// slice is empty (value = 0, the length), if a weight is negative, NaN or infinite (value =
/// that weight), or if the sum is 0 or overflows (value = the sum).
pub fn categorical(rng: &mut Rng, weights: &[f64]) -> Result<usize, DomainError> {
    if weights.is_empty() {
        return Err(DomainError::new("categorical", "probs", 0.0, "be non-empty"));
    }
    let mut total = 0.0;
    for &weight in weights {
        if !(weight >= 0.0 && weight.is_finite()) {
            return Err(DomainError::new("categorical", "probs", weight, "have finite entries >= 0"));
        }
        total += weight;
    }
    if !(total > 0.0 && total.is_finite()) {
        return Err(DomainError::new("categorical", "probs", total, "have a finite sum > 0"));
    }
    let target = rng.uniform() * total;
    let mut cumulative = 0.0;
    let mut last_positive = 0;
    for (index, &weight) in weights.iter().enumerate() {
        // The same summation order as `total`, so the final cumulative equals `total` exactly.
        cumulative += weight;
        if weight > 0.0 {
            if target < cumulative {
                return Ok(index);
            }
            last_positive = index;
        }
    }
    // Reached only when rounding made `target` equal to `total`: that mass belongs to the top end.
    Ok(last_positive)
}

/// A geometric draw: the number of failures before the first success in Bernoulli(p) trials,
/// P(k) = (1−p)^k p for k = 0, 1, 2, …
///
/// Inversion with one uniform: ⌊ln u / ln(1 − p)⌋. Errors unless p ∈ (0, 1] (p = 0 never
/// succeeds). For p so small that the draw exceeds `u64::MAX` (p ≲ 2e-18) the result saturates
/// at `u64::MAX`.
#[inline]
pub fn geometric(rng: &mut Rng, p: f64) -> Result<u64, DomainError> {
    if !(p > 0.0 && p <= 1.0) {
        return Err(DomainError::new("geometric", "p", p, "be in (0, 1]"));
    }
    // ln(1 − p) is −∞ at p = 1, and ln u / −∞ = 0: every draw is 0, as it should be.
    let failures = libm::floor(libm::log(rng.uniform()) / libm::log1p(-p));
    // Float-to-integer `as` saturates, which is the documented behaviour for huge draws.
    Ok(failures as u64)
}

/// A count drawn by [`geometric`] or [`poisson`] as the language's `int`: a count beyond
/// `i64::MAX` (a geometric draw for p ≲ 1e-18, a Poisson draw for a rate near its maximum)
/// saturates there rather than wrapping to a negative number.
#[inline]
pub fn count_to_int(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// The number of successes in `trials` Bernoulli(p) trials (`rand_distr`'s BTPE and inversion
/// methods). Errors unless p ∈ [0, 1].
pub fn binomial(rng: &mut Rng, trials: u64, p: f64) -> Result<u64, DomainError> {
    match Binomial::new(trials, p) {
        Ok(distribution) => Ok(distribution.sample(rng)),
        Err(_) => Err(DomainError::new("binomial", "p", p, "be in [0, 1]")),
    }
}

/// A Poisson draw with mean `rate`.
///
/// Knuth's multiplication method below rate 12, the PTRS-style rejection method of Ahrens &
/// Dieter above (via `rand_distr`). Errors unless 0 ≤ rate ≤ [`POISSON_MAX_RATE`] (NaN and ∞
/// included); rate = 0 always gives 0 and consumes no randomness.
pub fn poisson(rng: &mut Rng, rate: f64) -> Result<u64, DomainError> {
    if !(0.0..=POISSON_MAX_RATE).contains(&rate) {
        return Err(DomainError::new("poisson", "rate", rate, "be in [0, 1.844e19]"));
    }
    if rate == 0.0 {
        return Ok(0);
    }
    match Poisson::new(rate) {
        // The sampler returns a non-negative whole number below 2^64 as an f64.
        Ok(distribution) => Ok(distribution.sample(rng) as u64),
        Err(_) => Err(DomainError::new("poisson", "rate", rate, "be in [0, 1.844e19]")),
    }
}

/// Fills `out` with distinct indices drawn uniformly from `0..population` (as reals), each set
/// of `out.len()` indices equally likely: a minibatch's rows, sampled without replacement.
/// Errors unless `out.len() <= population`.
///
/// Small samples use Floyd's algorithm (one draw per index, membership by a scan of those so
/// far: `k²` work); large ones Knuth's selection sampling (one draw per row of the population),
/// whichever costs less. Neither allocates.
pub fn subsample(rng: &mut Rng, population: u64, out: &mut [f64]) -> Result<(), DomainError> {
    let size = out.len() as u64;
    if size > population {
        return Err(DomainError::new("subsample", "size", size as f64, "be at most the number of rows"));
    }
    // A uniform integer in 0..=bound (Lemire's multiply-shift; its bias, below 2^-40 for the
    // populations a data set has, is far under the sampling noise).
    let below = |rng: &mut Rng, bound: u64| ((u128::from(rng.next_u64()) * (u128::from(bound) + 1)) >> 64) as u64;
    if size.saturating_mul(size) <= population {
        for (filled, j) in (population - size..population).enumerate() {
            let candidate = below(rng, j) as f64;
            let taken = out[..filled].contains(&candidate);
            out[filled] = if taken { j as f64 } else { candidate };
        }
    } else {
        let mut filled = 0;
        for row in 0..population {
            if filled == out.len() {
                break;
            }
            let remaining_rows = population - row;
            let remaining_picks = size - filled as u64;
            if below(rng, remaining_rows - 1) < remaining_picks {
                out[filled] = row as f64;
                filled += 1;
            }
        }
    }
    Ok(())
}
