//! Each distribution's sampler, log-density and parameter domains, as IR.
//!
//! The samplers are *pathwise*: a continuous draw is a differentiable function of the
//! arguments and base noise (location–scale or inverse-CDF reparameterisation), and `gamma`
//! and `beta` carry their implicit-reparameterisation tangent (Figurnov et al. 2018) through
//! [`Op::WithTangent`]. So the `reparam` and `implicit` estimators are "run the sampler and
//! differentiate it"; `reinforce` runs the sampler on detached arguments and scores the draw
//! with the log-density. Discrete draws have no tangent.
//!
//! Samplers and densities here take scalar arguments (vectors only where the distribution is
//! over vectors: `categorical`'s weights, `mv_normal_diag`); the lowering applies a scalar
//! distribution to vector arguments element by element. This file must not know about
//! estimators or the surface language beyond the distribution table that points into it.

use std::f64::consts::PI;
use std::sync::Arc;

use crate::ir::verify::IrError;
use crate::ir::{
    BinaryOp, CompareOp, FunctionBuilder, Kernel, Noise, Op, ReduceOp, Sampler, Tensor, Type, UnaryOp, Value,
};

/// `(value, next stream)` drawn from arguments and a stream.
pub type SampleFn = fn(&mut FunctionBuilder, &[Value], Value) -> Result<(Value, Value), IrError>;
/// The log-density (or log-mass) of a value given the arguments, summed over a vector's elements.
pub type LogDensityFn = fn(&mut FunctionBuilder, &[Value], Value) -> Result<Value, IrError>;

fn noise(b: &mut FunctionBuilder, kind: Noise, rng: Value) -> Result<(Value, Value), IrError> {
    let drawn = b.push(Op::Draw { noise: kind, rng })?;
    Ok((drawn[0], drawn[1]))
}

fn constant(b: &mut FunctionBuilder, value: f64) -> Result<Value, IrError> {
    b.real(value)
}

fn log(b: &mut FunctionBuilder, x: Value) -> Result<Value, IrError> {
    b.unary(UnaryOp::Log, x)
}

/// `−½((x − μ)/σ)² − log σ − ½ log 2π`, elementwise.
fn normal_terms(b: &mut FunctionBuilder, mu: Value, sigma: Value, x: Value) -> Result<Value, IrError> {
    let centred = b.sub(x, mu)?;
    let z = b.div(centred, sigma)?;
    let square = b.mul(z, z)?;
    let minus_half = constant(b, -0.5)?;
    let quadratic = b.mul(minus_half, square)?;
    let log_sigma = log(b, sigma)?;
    let without_constant = b.sub(quadratic, log_sigma)?;
    let half_log_two_pi = constant(b, 0.5 * (2.0 * PI).ln())?;
    b.sub(without_constant, half_log_two_pi)
}

pub fn normal_sample(b: &mut FunctionBuilder, args: &[Value], rng: Value) -> Result<(Value, Value), IrError> {
    let (eps, rng) = noise(b, Noise::Normal, rng)?;
    let scaled = b.mul(args[1], eps)?;
    Ok((b.add(args[0], scaled)?, rng))
}

pub fn normal_log_density(b: &mut FunctionBuilder, args: &[Value], x: Value) -> Result<Value, IrError> {
    normal_terms(b, args[0], args[1], x)
}

/// The sum of [`normal_log_density`] over a vector of draws, whose arithmetic is elementwise.
pub fn normal_log_density_of_draws(b: &mut FunctionBuilder, args: &[Value], x: Value) -> Result<Value, IrError> {
    let terms = normal_terms(b, args[0], args[1], x)?;
    b.push1(Op::Reduce(ReduceOp::Sum, terms))
}

pub fn uniform_sample(b: &mut FunctionBuilder, args: &[Value], rng: Value) -> Result<(Value, Value), IrError> {
    let (u, rng) = noise(b, Noise::Uniform, rng)?;
    let width = b.sub(args[1], args[0])?;
    let offset = b.mul(width, u)?;
    Ok((b.add(args[0], offset)?, rng))
}

pub fn uniform_log_density(b: &mut FunctionBuilder, args: &[Value], x: Value) -> Result<Value, IrError> {
    let width = b.sub(args[1], args[0])?;
    let log_width = log(b, width)?;
    let inside = b.unary(UnaryOp::Neg, log_width)?;
    outside_support_is_impossible(b, x, args[0], args[1], inside)
}

/// `density` when `lo <= x <= hi`, and `-inf` otherwise.
fn outside_support_is_impossible(
    b: &mut FunctionBuilder,
    x: Value,
    lo: Value,
    hi: Value,
    density: Value,
) -> Result<Value, IrError> {
    let above = b.compare(CompareOp::Ge, x, lo)?;
    let below = b.compare(CompareOp::Le, x, hi)?;
    let inside = b.binary(BinaryOp::And, above, below)?;
    let impossible = constant(b, f64::NEG_INFINITY)?;
    b.select(inside, density, impossible)
}

pub fn exponential_sample(b: &mut FunctionBuilder, args: &[Value], rng: Value) -> Result<(Value, Value), IrError> {
    let (u, rng) = noise(b, Noise::Uniform, rng)?;
    let log_u = log(b, u)?;
    let over_rate = b.div(log_u, args[0])?;
    Ok((b.unary(UnaryOp::Neg, over_rate)?, rng))
}

pub fn exponential_log_density(b: &mut FunctionBuilder, args: &[Value], x: Value) -> Result<Value, IrError> {
    let log_rate = log(b, args[0])?;
    let decay = b.mul(args[0], x)?;
    let density = b.sub(log_rate, decay)?;
    let zero = constant(b, 0.0)?;
    let infinity = constant(b, f64::INFINITY)?;
    outside_support_is_impossible(b, x, zero, infinity, density)
}

/// The difference of two exponential draws: `μ + b·log(u₂/u₁)`.
pub fn laplace_sample(b: &mut FunctionBuilder, args: &[Value], rng: Value) -> Result<(Value, Value), IrError> {
    let (u1, rng) = noise(b, Noise::Uniform, rng)?;
    let (u2, rng) = noise(b, Noise::Uniform, rng)?;
    let ratio = b.div(u2, u1)?;
    let log_ratio = log(b, ratio)?;
    let scaled = b.mul(args[1], log_ratio)?;
    Ok((b.add(args[0], scaled)?, rng))
}

pub fn laplace_log_density(b: &mut FunctionBuilder, args: &[Value], x: Value) -> Result<Value, IrError> {
    let centred = b.sub(x, args[0])?;
    let distance = b.unary(UnaryOp::Abs, centred)?;
    let scaled = b.div(distance, args[1])?;
    let two = constant(b, 2.0)?;
    let twice_scale = b.mul(two, args[1])?;
    let log_norm = log(b, twice_scale)?;
    let negative = b.unary(UnaryOp::Neg, scaled)?;
    b.sub(negative, log_norm)
}

pub fn lognormal_sample(b: &mut FunctionBuilder, args: &[Value], rng: Value) -> Result<(Value, Value), IrError> {
    let (normal, rng) = normal_sample(b, args, rng)?;
    Ok((b.unary(UnaryOp::Exp, normal)?, rng))
}

pub fn lognormal_log_density(b: &mut FunctionBuilder, args: &[Value], x: Value) -> Result<Value, IrError> {
    let log_x = log(b, x)?;
    let normal = normal_terms(b, args[0], args[1], log_x)?;
    b.sub(normal, log_x)
}

/// `sigmoid(μ + σε)`: a draw in (0, 1) whose logit is normal.
pub fn logit_normal_sample(b: &mut FunctionBuilder, args: &[Value], rng: Value) -> Result<(Value, Value), IrError> {
    let (normal, rng) = normal_sample(b, args, rng)?;
    Ok((b.unary(UnaryOp::Sigmoid, normal)?, rng))
}

/// The normal density of `logit x` times the Jacobian `1/(x(1 − x))`; −∞ outside (0, 1).
pub fn logit_normal_log_density(b: &mut FunctionBuilder, args: &[Value], x: Value) -> Result<Value, IrError> {
    let log_x = log(b, x)?;
    let negated = b.unary(UnaryOp::Neg, x)?;
    let log_complement = b.unary(UnaryOp::Log1p, negated)?;
    let logit = b.sub(log_x, log_complement)?;
    let normal = normal_terms(b, args[0], args[1], logit)?;
    let jacobian = b.add(log_x, log_complement)?;
    let density = b.sub(normal, jacobian)?;
    let (zero, one) = (constant(b, 0.0)?, constant(b, 1.0)?);
    outside_support_is_impossible(b, x, zero, one, density)
}

/// Inverse CDF: `loc + scale·tan(π(u − ½))`.
pub fn cauchy_sample(b: &mut FunctionBuilder, args: &[Value], rng: Value) -> Result<(Value, Value), IrError> {
    let (u, rng) = noise(b, Noise::Uniform, rng)?;
    let half = constant(b, 0.5)?;
    let centred = b.sub(u, half)?;
    let pi = constant(b, PI)?;
    let angle = b.mul(pi, centred)?;
    let standard = b.unary(UnaryOp::Tan, angle)?;
    let scaled = b.mul(args[1], standard)?;
    Ok((b.add(args[0], scaled)?, rng))
}

pub fn cauchy_log_density(b: &mut FunctionBuilder, args: &[Value], x: Value) -> Result<Value, IrError> {
    let centred = b.sub(x, args[0])?;
    let z = b.div(centred, args[1])?;
    let square = b.mul(z, z)?;
    let log_term = b.unary(UnaryOp::Log1p, square)?;
    let log_scale = log(b, args[1])?;
    let log_pi = constant(b, PI.ln())?;
    let norm = b.add(log_scale, log_pi)?;
    let negative = b.unary(UnaryOp::Neg, log_term)?;
    b.sub(negative, norm)
}

/// `σ·|ε|`: the normal folded onto the positive half-line.
pub fn half_normal_sample(b: &mut FunctionBuilder, args: &[Value], rng: Value) -> Result<(Value, Value), IrError> {
    let (eps, rng) = noise(b, Noise::Normal, rng)?;
    let folded = b.unary(UnaryOp::Abs, eps)?;
    Ok((b.mul(args[0], folded)?, rng))
}

/// Twice the normal density, on x ≥ 0.
pub fn half_normal_log_density(b: &mut FunctionBuilder, args: &[Value], x: Value) -> Result<Value, IrError> {
    let zero = constant(b, 0.0)?;
    let normal = normal_terms(b, zero, args[0], x)?;
    let log_two = constant(b, std::f64::consts::LN_2)?;
    let density = b.add(normal, log_two)?;
    let infinity = constant(b, f64::INFINITY)?;
    outside_support_is_impossible(b, x, zero, infinity, density)
}

/// Inverse CDF: `scale·tan(πu/2)`.
pub fn half_cauchy_sample(b: &mut FunctionBuilder, args: &[Value], rng: Value) -> Result<(Value, Value), IrError> {
    let (u, rng) = noise(b, Noise::Uniform, rng)?;
    let half_pi = constant(b, PI / 2.0)?;
    let angle = b.mul(half_pi, u)?;
    let standard = b.unary(UnaryOp::Tan, angle)?;
    Ok((b.mul(args[0], standard)?, rng))
}

/// Twice the Cauchy(0, scale) density, on x ≥ 0.
pub fn half_cauchy_log_density(b: &mut FunctionBuilder, args: &[Value], x: Value) -> Result<Value, IrError> {
    let zero = constant(b, 0.0)?;
    let cauchy = cauchy_log_density(b, &[zero, args[0]], x)?;
    let log_two = constant(b, std::f64::consts::LN_2)?;
    let density = b.add(cauchy, log_two)?;
    let infinity = constant(b, f64::INFINITY)?;
    outside_support_is_impossible(b, x, zero, infinity, density)
}

/// `loc + scale·ε·√(ν / χ²)` with χ² = 2·Gamma(ν/2, 1): pathwise in `loc` and `scale`, implicit
/// in the degrees of freedom `ν` (through the gamma draw).
pub fn student_t_sample(b: &mut FunctionBuilder, args: &[Value], rng: Value) -> Result<(Value, Value), IrError> {
    let (df, loc, scale) = (args[0], args[1], args[2]);
    let (eps, rng) = noise(b, Noise::Normal, rng)?;
    let half = constant(b, 0.5)?;
    let shape = b.mul(df, half)?;
    let (gamma, rng) = unit_gamma(b, shape, rng)?;
    // ν / χ² = (ν/2) / Gamma(ν/2, 1).
    let ratio = b.div(shape, gamma)?;
    let stretch = b.unary(UnaryOp::Sqrt, ratio)?;
    let standard = b.mul(eps, stretch)?;
    let scaled = b.mul(scale, standard)?;
    Ok((b.add(loc, scaled)?, rng))
}

/// `lgamma((ν+1)/2) − lgamma(ν/2) − ½·log(νπ) − log σ − (ν+1)/2 · log1p(z²/ν)`, z = (x − μ)/σ.
pub fn student_t_log_density(b: &mut FunctionBuilder, args: &[Value], x: Value) -> Result<Value, IrError> {
    let (df, loc, scale) = (args[0], args[1], args[2]);
    let half = constant(b, 0.5)?;
    let one = constant(b, 1.0)?;
    let df_plus_one = b.add(df, one)?;
    let upper = b.mul(df_plus_one, half)?;
    let lower = b.mul(df, half)?;
    let lgamma_upper = b.unary(UnaryOp::Lgamma, upper)?;
    let lgamma_lower = b.unary(UnaryOp::Lgamma, lower)?;
    let pi = constant(b, PI)?;
    let df_pi = b.mul(df, pi)?;
    let log_df_pi = log(b, df_pi)?;
    let half_log_df_pi = b.mul(half, log_df_pi)?;
    let log_scale = log(b, scale)?;
    let centred = b.sub(x, loc)?;
    let z = b.div(centred, scale)?;
    let square = b.mul(z, z)?;
    let per_df = b.div(square, df)?;
    let log_term = b.unary(UnaryOp::Log1p, per_df)?;
    let tail = b.mul(upper, log_term)?;
    let normaliser = b.sub(lgamma_upper, lgamma_lower)?;
    let normaliser = b.sub(normaliser, half_log_df_pi)?;
    let normaliser = b.sub(normaliser, log_scale)?;
    b.sub(normaliser, tail)
}

/// A Gamma(shape, 1) draw whose tangent is `∂x/∂shape · d shape`, the derivative of the
/// inverse CDF at fixed uniform noise (implicit reparameterisation).
fn unit_gamma(b: &mut FunctionBuilder, shape: Value, rng: Value) -> Result<(Value, Value), IrError> {
    let drawn = b.push(Op::Sample { sampler: Sampler::Gamma, args: vec![shape], rng })?;
    let (x, rng) = (drawn[0], drawn[1]);
    let slope = b.push1(Op::Kernel(Kernel::GammaSampleDShape, vec![x, shape]))?;
    let tangent = b.mul(slope, shape)?;
    Ok((b.push1(Op::WithTangent { value: x, tangent_of: tangent })?, rng))
}

/// `Gamma(shape, 1) / rate`: the rate's derivative is pathwise, the shape's implicit.
pub fn gamma_sample(b: &mut FunctionBuilder, args: &[Value], rng: Value) -> Result<(Value, Value), IrError> {
    let (unit, rng) = unit_gamma(b, args[0], rng)?;
    Ok((b.div(unit, args[1])?, rng))
}

pub fn gamma_log_density(b: &mut FunctionBuilder, args: &[Value], x: Value) -> Result<Value, IrError> {
    let (shape, rate) = (args[0], args[1]);
    let log_rate = log(b, rate)?;
    let first = b.mul(shape, log_rate)?;
    let lgamma = b.unary(UnaryOp::Lgamma, shape)?;
    let normaliser = b.sub(first, lgamma)?;
    let one = constant(b, 1.0)?;
    let shape_minus_one = b.sub(shape, one)?;
    let log_x = log(b, x)?;
    let power = b.mul(shape_minus_one, log_x)?;
    let decay = b.mul(rate, x)?;
    let kernel = b.sub(power, decay)?;
    let density = b.add(normaliser, kernel)?;
    let zero = constant(b, 0.0)?;
    let infinity = constant(b, f64::INFINITY)?;
    outside_support_is_impossible(b, x, zero, infinity, density)
}

/// `g₁/(g₁ + g₂)` for independent unit gammas: implicit tangents through both.
pub fn beta_sample(b: &mut FunctionBuilder, args: &[Value], rng: Value) -> Result<(Value, Value), IrError> {
    let (g1, rng) = unit_gamma(b, args[0], rng)?;
    let (g2, rng) = unit_gamma(b, args[1], rng)?;
    let total = b.add(g1, g2)?;
    // For tiny shapes both gamma draws can underflow to 0: the draw is then 0, never 0 / 0.
    // (A total of at least the smallest normal number is used as it is, so nothing else moves.)
    let smallest = constant(b, f64::MIN_POSITIVE)?;
    let total = b.binary(BinaryOp::Max, total, smallest)?;
    Ok((b.div(g1, total)?, rng))
}

pub fn beta_log_density(b: &mut FunctionBuilder, args: &[Value], x: Value) -> Result<Value, IrError> {
    let (alpha, beta) = (args[0], args[1]);
    let one = constant(b, 1.0)?;
    let alpha_minus_one = b.sub(alpha, one)?;
    let beta_minus_one = b.sub(beta, one)?;
    let log_x = log(b, x)?;
    let negated = b.unary(UnaryOp::Neg, x)?;
    let log_complement = b.unary(UnaryOp::Log1p, negated)?;
    let left = b.mul(alpha_minus_one, log_x)?;
    let right = b.mul(beta_minus_one, log_complement)?;
    let kernel = b.add(left, right)?;
    let lgamma_alpha = b.unary(UnaryOp::Lgamma, alpha)?;
    let lgamma_beta = b.unary(UnaryOp::Lgamma, beta)?;
    let sum = b.add(alpha, beta)?;
    let lgamma_sum = b.unary(UnaryOp::Lgamma, sum)?;
    let numerator = b.add(lgamma_alpha, lgamma_beta)?;
    let log_beta_function = b.sub(numerator, lgamma_sum)?;
    let density = b.sub(kernel, log_beta_function)?;
    let zero = constant(b, 0.0)?;
    outside_support_is_impossible(b, x, zero, one, density)
}

pub fn flip_sample(b: &mut FunctionBuilder, args: &[Value], rng: Value) -> Result<(Value, Value), IrError> {
    let (u, rng) = noise(b, Noise::Uniform, rng)?;
    Ok((b.compare(CompareOp::Lt, u, args[0])?, rng))
}

pub fn flip_log_density(b: &mut FunctionBuilder, args: &[Value], x: Value) -> Result<Value, IrError> {
    let probability = flip_probability(b, args[0], x)?;
    log(b, probability)
}

/// `u < sigmoid(logit)`: `flip(sigmoid(logit))`.
pub fn bernoulli_logit_sample(b: &mut FunctionBuilder, args: &[Value], rng: Value) -> Result<(Value, Value), IrError> {
    let p = b.unary(UnaryOp::Sigmoid, args[0])?;
    flip_sample(b, &[p], rng)
}

/// `log sigmoid(±logit) = −softplus(∓logit)`, finite for logits of any size (where
/// `log(1 − sigmoid(logit))` is `log 0` from logit ≈ 37 on).
pub fn bernoulli_logit_log_density(b: &mut FunctionBuilder, args: &[Value], x: Value) -> Result<Value, IrError> {
    let logit = args[0];
    let negated = b.unary(UnaryOp::Neg, logit)?;
    let signed = b.select(x, negated, logit)?;
    let softplus = b.unary(UnaryOp::Softplus, signed)?;
    b.unary(UnaryOp::Neg, softplus)
}

/// `p` if `outcome`, else `1 − p`.
/// `Σ log(y·p + (1 − y)·(1 − p))` for draws `y` given as 0/1 reals: each term is exactly `p` or
/// `1 − p` (a product with 0 or 1 is exact), so it is [`flip_log_density`]'s value, elementwise.
pub fn flip_log_density_of_draws(b: &mut FunctionBuilder, args: &[Value], y: Value) -> Result<Value, IrError> {
    let one = constant(b, 1.0)?;
    let complement = b.sub(one, args[0])?;
    let not_y = b.sub(one, y)?;
    let on = b.mul(y, args[0])?;
    let off = b.mul(not_y, complement)?;
    let probability = b.add(on, off)?;
    let terms = log(b, probability)?;
    b.push1(Op::Reduce(ReduceOp::Sum, terms))
}

/// `Σ −softplus((1 − 2y)·logit)` for draws `y` given as 0/1 reals: `(1 − 2y)` is exactly ±1, so
/// each term is [`bernoulli_logit_log_density`]'s.
pub fn bernoulli_logit_log_density_of_draws(
    b: &mut FunctionBuilder,
    args: &[Value],
    y: Value,
) -> Result<Value, IrError> {
    let (one, two) = (constant(b, 1.0)?, constant(b, 2.0)?);
    let twice = b.mul(two, y)?;
    let sign = b.sub(one, twice)?;
    let signed = b.mul(sign, args[0])?;
    let softplus = b.unary(UnaryOp::Softplus, signed)?;
    let terms = b.unary(UnaryOp::Neg, softplus)?;
    b.push1(Op::Reduce(ReduceOp::Sum, terms))
}

pub fn flip_probability(b: &mut FunctionBuilder, p: Value, outcome: Value) -> Result<Value, IrError> {
    let one = constant(b, 1.0)?;
    let complement = b.sub(one, p)?;
    b.select(outcome, p, complement)
}

pub fn categorical_sample(b: &mut FunctionBuilder, args: &[Value], rng: Value) -> Result<(Value, Value), IrError> {
    let drawn = b.push(Op::Sample { sampler: Sampler::Categorical, args: vec![args[0]], rng })?;
    Ok((drawn[0], drawn[1]))
}

pub fn categorical_log_density(b: &mut FunctionBuilder, args: &[Value], x: Value) -> Result<Value, IrError> {
    let probability = categorical_probability(b, args[0], x)?;
    log(b, probability)
}

/// The normalised weight of index `outcome`.
pub fn categorical_probability(b: &mut FunctionBuilder, weights: Value, outcome: Value) -> Result<Value, IrError> {
    let weight = b.push1(Op::Extract { aggregate: weights, index: outcome })?;
    let total = b.push1(Op::Reduce(ReduceOp::Sum, weights))?;
    b.div(weight, total)
}

pub fn geometric_sample(b: &mut FunctionBuilder, args: &[Value], rng: Value) -> Result<(Value, Value), IrError> {
    let drawn = b.push(Op::Sample { sampler: Sampler::Geometric, args: vec![args[0]], rng })?;
    Ok((drawn[0], drawn[1]))
}

/// `k·log(1 − p) + log p` for `k` failures.
pub fn geometric_log_density(b: &mut FunctionBuilder, args: &[Value], x: Value) -> Result<Value, IrError> {
    let failures = b.unary(UnaryOp::ToReal, x)?;
    let negated = b.unary(UnaryOp::Neg, args[0])?;
    let log_failure = b.unary(UnaryOp::Log1p, negated)?;
    let all_failures = b.mul(failures, log_failure)?;
    let log_p = log(b, args[0])?;
    b.add(all_failures, log_p)
}

pub fn poisson_sample(b: &mut FunctionBuilder, args: &[Value], rng: Value) -> Result<(Value, Value), IrError> {
    let drawn = b.push(Op::Sample { sampler: Sampler::Poisson, args: vec![args[0]], rng })?;
    Ok((drawn[0], drawn[1]))
}

/// `k·log λ − λ − log k!`, and `−λ` at `k = 0` (finite at λ = 0).
pub fn poisson_log_density(b: &mut FunctionBuilder, args: &[Value], x: Value) -> Result<Value, IrError> {
    let rate = args[0];
    let count = b.unary(UnaryOp::ToReal, x)?;
    let log_rate = log(b, rate)?;
    let power = b.mul(count, log_rate)?;
    let one = constant(b, 1.0)?;
    let count_plus_one = b.add(count, one)?;
    let log_factorial = b.unary(UnaryOp::Lgamma, count_plus_one)?;
    let with_rate = b.sub(power, rate)?;
    let general = b.sub(with_rate, log_factorial)?;
    let zero = b.int(0)?;
    let is_zero = b.compare(CompareOp::Eq, x, zero)?;
    let at_zero = b.unary(UnaryOp::Neg, rate)?;
    b.select(is_zero, at_zero, general)
}

/// Failures before the `r`-th success: a Poisson count whose rate is a Gamma(r, p/(1 − p))
/// draw. No derivative flows through it (its estimator is the score function).
pub fn negative_binomial_sample(
    b: &mut FunctionBuilder,
    args: &[Value],
    rng: Value,
) -> Result<(Value, Value), IrError> {
    let (successes, p) = (args[0], args[1]);
    let drawn = b.push(Op::Sample { sampler: Sampler::Gamma, args: vec![successes], rng })?;
    let (unit, rng) = (drawn[0], drawn[1]);
    // Gamma(r, rate) = unit·(1 − p)/p; at p = 1 the rate is 0 and so is every count.
    let one = constant(b, 1.0)?;
    let failure = b.sub(one, p)?;
    let odds = b.div(failure, p)?;
    let rate = b.mul(unit, odds)?;
    // Counts from rates beyond the Poisson sampler's are beyond the largest `int` anyway.
    let largest = constant(b, ppl_runtime::sample::POISSON_MAX_RATE)?;
    let rate = b.binary(BinaryOp::Min, rate, largest)?;
    let counted = b.push(Op::Sample { sampler: Sampler::Poisson, args: vec![rate], rng })?;
    Ok((counted[0], counted[1]))
}

/// `lgamma(k + r) − lgamma(r) − lgamma(k + 1) + r·log p + k·log(1 − p)`, the last term 0 at
/// `k = 0` (finite at p = 1); −∞ for k < 0.
pub fn negative_binomial_log_density(b: &mut FunctionBuilder, args: &[Value], x: Value) -> Result<Value, IrError> {
    let (successes, p) = (args[0], args[1]);
    let count = b.unary(UnaryOp::ToReal, x)?;
    let one = constant(b, 1.0)?;
    let total = b.add(count, successes)?;
    let lgamma_total = b.unary(UnaryOp::Lgamma, total)?;
    let lgamma_successes = b.unary(UnaryOp::Lgamma, successes)?;
    let count_plus_one = b.add(count, one)?;
    let log_factorial = b.unary(UnaryOp::Lgamma, count_plus_one)?;
    let coefficient = b.sub(lgamma_total, lgamma_successes)?;
    let coefficient = b.sub(coefficient, log_factorial)?;
    let log_p = log(b, p)?;
    let success_term = b.mul(successes, log_p)?;
    let negated = b.unary(UnaryOp::Neg, p)?;
    let log_failure = b.unary(UnaryOp::Log1p, negated)?;
    let failure_term = b.mul(count, log_failure)?;
    let zero = b.int(0)?;
    let is_zero = b.compare(CompareOp::Eq, x, zero)?;
    let none = constant(b, 0.0)?;
    let failure_term = b.select(is_zero, none, failure_term)?;
    let density = b.add(coefficient, success_term)?;
    let density = b.add(density, failure_term)?;
    let infinity = constant(b, f64::INFINITY)?;
    outside_support_is_impossible(b, count, none, infinity, density)
}

/// Successes in `n` trials of probability `p`, drawn by the runtime.
pub fn binomial_sample(b: &mut FunctionBuilder, args: &[Value], rng: Value) -> Result<(Value, Value), IrError> {
    let trials = b.unary(UnaryOp::ToInt, args[0])?;
    let drawn = b.push(Op::Sample { sampler: Sampler::Binomial, args: vec![trials, args[1]], rng })?;
    Ok((drawn[0], drawn[1]))
}

/// `lgamma(n + 1) − lgamma(k + 1) − lgamma(n − k + 1) + k·log p + (n − k)·log(1 − p)` for
/// 0 ≤ k ≤ n (each power term 0 when its count is, so p = 0 and p = 1 are finite), −∞ otherwise.
pub fn binomial_log_density(b: &mut FunctionBuilder, args: &[Value], x: Value) -> Result<Value, IrError> {
    let (trials, p) = (args[0], args[1]);
    let successes = b.unary(UnaryOp::ToReal, x)?;
    let failures = b.sub(trials, successes)?;
    let one = constant(b, 1.0)?;
    let zero = constant(b, 0.0)?;
    let mut coefficient = b.add(trials, one)?;
    coefficient = b.unary(UnaryOp::Lgamma, coefficient)?;
    for count in [successes, failures] {
        let shifted = b.add(count, one)?;
        let log_factorial = b.unary(UnaryOp::Lgamma, shifted)?;
        coefficient = b.sub(coefficient, log_factorial)?;
    }
    let log_p = log(b, p)?;
    let negated = b.unary(UnaryOp::Neg, p)?;
    let log_failure = b.unary(UnaryOp::Log1p, negated)?;
    let mut density = coefficient;
    for (count, log_probability) in [(successes, log_p), (failures, log_failure)] {
        let term = b.mul(count, log_probability)?;
        let none = b.compare(CompareOp::Eq, count, zero)?;
        let term = b.select(none, zero, term)?;
        density = b.add(density, term)?;
    }
    outside_support_is_impossible(b, successes, zero, trials, density)
}

/// One standard normal per element, scaled and shifted (vector operations broadcast).
pub fn mv_normal_diag_sample(b: &mut FunctionBuilder, args: &[Value], rng: Value) -> Result<(Value, Value), IrError> {
    let length = vector_length(b, args[0], "mv_normal_diag")?;
    let (eps, rng) = standard_normals(b, length, rng)?;
    let scaled = b.mul(args[1], eps)?;
    Ok((b.add(args[0], scaled)?, rng))
}

pub fn mv_normal_diag_log_density(b: &mut FunctionBuilder, args: &[Value], x: Value) -> Result<Value, IrError> {
    let terms = normal_terms(b, args[0], args[1], x)?;
    b.push1(Op::Reduce(ReduceOp::Sum, terms))
}

/// A vector of `length` independent standard normals, drawn in order from `rng`.
fn standard_normals(b: &mut FunctionBuilder, length: u32, rng: Value) -> Result<(Value, Value), IrError> {
    let mut rng = rng;
    let mut draws = Vec::with_capacity(length as usize);
    for _ in 0..length {
        let (eps, next) = noise(b, Noise::Normal, rng)?;
        draws.push(eps);
        rng = next;
    }
    Ok((b.push1(Op::Build(draws))?, rng))
}

fn vector_length(b: &FunctionBuilder, v: Value, distribution: &str) -> Result<u32, IrError> {
    match b.ty(v) {
        Some(Type::Vec(n)) => Ok(n),
        other => Err(IrError { message: format!("{distribution} of {other:?}") }),
    }
}

/// Independent unit gammas of the given shapes, normalised: implicit tangents through each.
/// Drawn in a loop, so the code does not grow with the number of categories.
pub fn dirichlet_sample(b: &mut FunctionBuilder, args: &[Value], rng: Value) -> Result<(Value, Value), IrError> {
    let concentration = args[0];
    let length = vector_length(b, concentration, "dirichlet")?;
    let zeros = b.filled(Type::Vec(length), 0.0)?;
    let (lo, hi) = (b.int(0)?, b.int(i64::from(length))?);
    let params = b.begin_block(&[Type::Int, Type::Vec(length), Type::Rng]);
    let (index, gammas, stream) = (params[0], params[1], params[2]);
    let shape = b.push1(Op::Extract { aggregate: concentration, index })?;
    let (gamma, stream) = unit_gamma(b, shape, stream)?;
    let gammas = b.push1(Op::Insert { aggregate: gammas, index, value: gamma })?;
    let body = b.end_block(vec![gammas, stream])?;
    let drawn = b.push_for(lo, hi, vec![zeros, rng], body)?;
    let (gammas, rng) = (drawn[0], drawn[1]);
    let total = b.push1(Op::Reduce(ReduceOp::Sum, gammas))?;
    // As for `beta`: if every gamma underflows to 0, the draw is 0, never 0 / 0.
    let smallest = constant(b, f64::MIN_POSITIVE)?;
    let total = b.binary(BinaryOp::Max, total, smallest)?;
    Ok((b.div(gammas, total)?, rng))
}

/// `lgamma(Σα) − Σ lgamma(α) + Σ (α − 1)·log x`; −∞ if an element is negative. (That the
/// elements sum to 1 is not checked: a draw's sum is 1 only up to rounding.)
pub fn dirichlet_log_density(b: &mut FunctionBuilder, args: &[Value], x: Value) -> Result<Value, IrError> {
    let concentration = args[0];
    let total = b.push1(Op::Reduce(ReduceOp::Sum, concentration))?;
    let lgamma_total = b.unary(UnaryOp::Lgamma, total)?;
    let lgammas = b.unary(UnaryOp::Lgamma, concentration)?;
    let lgamma_sum = b.push1(Op::Reduce(ReduceOp::Sum, lgammas))?;
    let one = constant(b, 1.0)?;
    let exponents = b.sub(concentration, one)?;
    let log_x = log(b, x)?;
    let powers = b.mul(exponents, log_x)?;
    let kernel = b.push1(Op::Reduce(ReduceOp::Sum, powers))?;
    let normaliser = b.sub(lgamma_total, lgamma_sum)?;
    let density = b.add(normaliser, kernel)?;
    // Which side of the support a draw is on does not move with it.
    let detached = b.unary(UnaryOp::Detach, x)?;
    let smallest = b.push1(Op::Reduce(ReduceOp::Min, detached))?;
    let (zero, infinity) = (constant(b, 0.0)?, constant(b, f64::INFINITY)?);
    outside_support_is_impossible(b, smallest, zero, infinity, density)
}

/// A constant `n × n` matrix (held as data, not code) whose element `(i, j)` is `f(i, j)`.
fn constant_matrix(
    b: &mut FunctionBuilder,
    name: &str,
    n: u32,
    element: impl Fn(u32, u32) -> f64,
) -> Result<Value, IrError> {
    let values = (0..n).flat_map(|i| (0..n).map(move |j| (i, j))).map(|(i, j)| element(i, j)).collect();
    b.push1(Op::Data(Tensor { name: name.into(), ty: Type::Mat(n, n), values: Arc::new(values) }))
}

/// The lower triangle of a square matrix, its upper triangle zero: what `mv_normal` uses of
/// its `scale_tril`, so that an unconstrained `param` matrix trains only the elements it uses.
pub fn lower_triangle(b: &mut FunctionBuilder, matrix: Value) -> Result<Value, IrError> {
    let n = match b.ty(matrix) {
        Some(Type::Mat(rows, _)) => rows,
        other => return Err(IrError { message: format!("lower triangle of {other:?}") }),
    };
    let mask = constant_matrix(b, "lower triangle", n, |i, j| if j <= i { 1.0 } else { 0.0 })?;
    b.mul(matrix, mask)
}

/// The diagonal of a square matrix, as a vector: `(M ⊙ I) · 1`.
pub fn diagonal(b: &mut FunctionBuilder, matrix: Value) -> Result<Value, IrError> {
    let n = match b.ty(matrix) {
        Some(Type::Mat(rows, _)) => rows,
        other => return Err(IrError { message: format!("diagonal of {other:?}") }),
    };
    let identity = constant_matrix(b, "identity", n, |i, j| if i == j { 1.0 } else { 0.0 })?;
    let masked = b.mul(matrix, identity)?;
    let ones = b.filled(Type::Vec(n), 1.0)?;
    b.push1(Op::MatMul(masked, ones))
}

/// `μ + L ε` for a vector ε of standard normals, L the lower triangle of `scale_tril`.
pub fn mv_normal_sample(b: &mut FunctionBuilder, args: &[Value], rng: Value) -> Result<(Value, Value), IrError> {
    let (mu, scale) = (args[0], lower_triangle(b, args[1])?);
    let length = vector_length(b, mu, "mv_normal")?;
    let (eps, rng) = standard_normals(b, length, rng)?;
    let correlated = b.push1(Op::MatMul(scale, eps))?;
    Ok((b.add(mu, correlated)?, rng))
}

/// `−½‖z‖² − Σ log Lᵢᵢ − (n/2)·log 2π` with `L z = x − μ`, solved by forward substitution in
/// a loop over L's columns (each solved element removed from the rest of the residual).
pub fn mv_normal_log_density(b: &mut FunctionBuilder, args: &[Value], x: Value) -> Result<Value, IrError> {
    let (mu, scale) = (args[0], lower_triangle(b, args[1])?);
    let length = vector_length(b, mu, "mv_normal")?;
    let columns = b.push1(Op::Transpose(scale))?;
    let diagonal = diagonal(b, scale)?;
    let residual = b.sub(x, mu)?;
    let zero = constant(b, 0.0)?;
    let (lo, hi) = (b.int(0)?, b.int(i64::from(length))?);
    let params = b.begin_block(&[Type::Int, Type::Vec(length), Type::Real]);
    let (index, residual_left, squares) = (params[0], params[1], params[2]);
    let column = b.push1(Op::Extract { aggregate: columns, index })?;
    let pivot = b.push1(Op::Extract { aggregate: diagonal, index })?;
    let remaining = b.push1(Op::Extract { aggregate: residual_left, index })?;
    let solved = b.div(remaining, pivot)?;
    let removed = b.mul(solved, column)?;
    let residual_left = b.sub(residual_left, removed)?;
    let square = b.mul(solved, solved)?;
    let squares = b.add(squares, square)?;
    let body = b.end_block(vec![residual_left, squares])?;
    let solved = b.push_for(lo, hi, vec![residual, zero], body)?;
    let minus_half = constant(b, -0.5)?;
    let quadratic = b.mul(minus_half, solved[1])?;
    let log_diagonal = log(b, diagonal)?;
    let log_determinant = b.push1(Op::Reduce(ReduceOp::Sum, log_diagonal))?;
    let without_constant = b.sub(quadratic, log_determinant)?;
    let normaliser = constant(b, 0.5 * f64::from(length) * (2.0 * PI).ln())?;
    b.sub(without_constant, normaliser)
}
