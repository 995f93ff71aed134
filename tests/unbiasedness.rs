//! Unbiasedness of every ADEV estimator rule and every estimate combinator (semantics.md §1 and
//! §4), end to end through `ppl run --json`.
//!
//! Each test is a *row*: one program declaring two parameters `theta1`, `theta2` (the two values
//! of θ the row is checked at), a few `fn`s whose `E { … }` blocks use one estimator rule each,
//! and for every case and every θ a `print estimate(…)` and a `print grad(…)`. The mean of N
//! estimates must be within 4 standard errors of the closed form (value and d/dθ), and the
//! standard error must be below a bound, so that a test cannot pass by being noisy: each
//! case's `sd` is about 1.5× the standard deviation of *one* estimate under the rule of
//! semantics.md §1, simulated in numpy (2× where the implementation may choose whether the
//! branches of `enum`/`mvd` share randomness, 3× for ADEV's `exp`), and the bound on the
//! standard error is `sd / √N`. Enumeration without other randomness is exact: its bound is ~0.
//!
//! Cost: 260 `print`s of `SAMPLES` estimates each in 11 processes, plus 3 small runs (the seed test).
//!
//! Every closed form is derived in a comment on its line and was checked numerically (quadrature
//! or an exact sum, and central finite differences for the derivative) before being written in.
//! Seeds are fixed: a run is a pure function of the program and the seed, so these tests are
//! deterministic.

mod common;

use std::process::Command;

use common::Scratch;
use serde_json::Value;

/// Estimates per `print` unless a row says otherwise.
const SAMPLES: usize = 20_000;

/// How many standard errors a mean may be from the exact value.
const Z: f64 = 4.0;

/// Runs `ppl run --json --seed SEED` on `program` and returns its stdout, which must be a
/// success (exit code 0).
fn run_stdout(name: &str, program: &str, seed: u64) -> String {
    let scratch = Scratch::new(&format!("unbiasedness-{name}"));
    let path = scratch.file(&format!("{name}.ppl"), program);
    let output = Command::new(env!("CARGO_BIN_EXE_ppl"))
        .args(["run", "--json", "--color", "never", "--seed", &seed.to_string()])
        .arg(&path)
        .output()
        .expect("the ppl binary runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "`ppl run` failed on\n{program}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("stdout is UTF-8")
}

/// Runs `program` and parses its output: one JSON object per line.
fn run_json(name: &str, program: &str, seed: u64) -> Vec<Value> {
    run_stdout(name, program, seed)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}")))
        .collect()
}

fn number(value: &Value, what: &str) -> f64 {
    value.as_f64().unwrap_or_else(|| panic!("{what}: expected a number, found {value}"))
}

/// Checks one `{mean, stderr}` pair against `exact`; returns a description of what is wrong.
fn close(mean: f64, stderr: f64, exact: f64, max_stderr: f64) -> Result<(), String> {
    let numbers = format!("mean {mean:.6} ± {stderr:.2e}, exact {exact:.6}");
    if !mean.is_finite() || !stderr.is_finite() || stderr < 0.0 {
        return Err(format!("{numbers}: not finite"));
    }
    if stderr > max_stderr {
        return Err(format!("{numbers}: stderr above the bound {max_stderr:.2e} (too noisy)"));
    }
    let error = (mean - exact).abs();
    if error > Z * stderr + 1e-9 * (1.0 + exact.abs()) {
        return Err(format!("{numbers}: off by {error:.2e} = {:.1} stderr", error / stderr));
    }
    Ok(())
}

/// Checks an `estimate` report (`{"kind":"estimate","mean","stderr","samples"}`).
fn assert_estimate(report: &Value, exact: f64, max_sd: f64, samples: usize) -> Result<(), String> {
    let source = report["source"].as_str().unwrap_or("?");
    if report["kind"] != "estimate" || report["samples"].as_u64() != Some(samples as u64) {
        return Err(format!("expected an estimate of {samples} samples, found {report}"));
    }
    let mean = number(&report["mean"], source);
    let stderr = number(&report["stderr"], source);
    close(mean, stderr, exact, max_sd / (samples as f64).sqrt())
        .map_err(|problem| format!("estimate `{source}`: {problem}"))
}

/// Checks a `grad` report's entry for a scalar parameter
/// (`{"kind":"grad","params":{NAME:{"mean","stderr"}},"samples"}`).
fn assert_grad(report: &Value, param: &str, exact: f64, max_sd: f64, samples: usize) -> Result<(), String> {
    let source = report["source"].as_str().unwrap_or("?");
    if report["kind"] != "grad" || report["samples"].as_u64() != Some(samples as u64) {
        return Err(format!("expected a grad of {samples} samples, found {report}"));
    }
    let entry = &report["params"][param];
    if entry.is_null() {
        return Err(format!("grad `{source}`: no entry for `{param}` in {report}"));
    }
    let mean = number(&entry["mean"], source);
    let stderr = number(&entry["stderr"], source);
    close(mean, stderr, exact, max_sd / (samples as f64).sqrt())
        .map_err(|problem| format!("grad `{source}` d/d{param}: {problem}"))
}

/// One objective checked against its closed form.
struct Case {
    /// The objective, with `THETA` standing for the parameter: `f(THETA) * g(THETA)`.
    objective: &'static str,
    /// Its exact value and derivative at θ.
    exact: fn(f64) -> (f64, f64),
    /// Bounds on the standard deviation of one value estimate and of one gradient estimate.
    sd: (f64, f64),
}

/// A program: definitions, the two values of θ, and the cases.
struct Row {
    name: &'static str,
    seed: u64,
    thetas: [f64; 2],
    samples: usize,
    defs: &'static str,
    cases: &'static [Case],
}

/// The program of a row: both parameters, the definitions, then for every case and every θ an
/// `estimate` and a `grad`.
fn program(row: &Row) -> String {
    let mut text = format!("param theta1: real = {:?};\nparam theta2: real = {:?};\n\n", row.thetas[0], row.thetas[1]);
    text.push_str(row.defs.trim());
    text.push_str("\n\n");
    for case in row.cases {
        for param in ["theta1", "theta2"] {
            let objective = case.objective.replace("THETA", param);
            text.push_str(&format!("print estimate({objective}, samples: {});\n", row.samples));
            text.push_str(&format!("print grad({objective}, samples: {});\n", row.samples));
        }
    }
    text
}

/// Runs a row and checks every report, listing every failure (with the program) at the end.
fn check_row(row: &Row) {
    let program = program(row);
    let reports = run_json(row.name, &program, row.seed);
    assert_eq!(reports.len(), 4 * row.cases.len(), "one report per print command:\n{program}");
    let mut failures = Vec::new();
    let mut reports = reports.iter();
    for case in row.cases {
        for (param, theta) in ["theta1", "theta2"].into_iter().zip(row.thetas) {
            let (value, derivative) = (case.exact)(theta);
            let estimate = reports.next().expect("counted");
            let grad = reports.next().expect("counted");
            for result in [
                assert_estimate(estimate, value, case.sd.0, row.samples),
                assert_grad(grad, param, derivative, case.sd.1, row.samples),
            ] {
                if let Err(problem) = result {
                    failures.push(format!("  θ = {theta}: {problem}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} (seed {}): {} failures\n{}\n--- program ---\n{program}",
        row.name,
        row.seed,
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Reparameterisation: v = loc + scale·ε (or an inverse CDF), tangents flow through v.
// ---------------------------------------------------------------------------------------------

#[test]
fn reparam_is_unbiased_for_every_location_scale_family() {
    check_row(&Row {
        name: "reparam",
        seed: 1,
        thetas: [0.6, 1.4],
        samples: SAMPLES,
        defs: "
fn normal_scale(theta) { E { x ~ normal(0.5, theta) via reparam; x^2 } }
fn uniform_hi(theta) { E { x ~ uniform(0.0, theta); x^2 } }
fn exponential_rate(theta) { E { x ~ exponential(theta); x^2 } }
fn laplace_loc(theta) { E { x ~ laplace(theta, 1.0); x^2 } }
fn laplace_scale(theta) { E { x ~ laplace(0.5, theta) via reparam; x^2 } }
fn lognormal_loc(theta) { E { x ~ lognormal(theta, 0.5); x } }
fn lognormal_scale(theta) { E { x ~ lognormal(0.0, 0.5 * theta); x } }
fn cauchy_loc(theta) { E { x ~ cauchy(theta, 1.0); 1.0 / (1.0 + x^2) } }
fn cauchy_scale(theta) { E { x ~ cauchy(0.0, theta) via reparam; 1.0 / (1.0 + x^2) } }
fn half_normal_scale(theta) { E { x ~ half_normal(theta); x^2 } }
fn logit_normal_loc(theta) { E { x ~ logit_normal(theta, 0.5); logit(x)^2 } }
fn logit_normal_scale(theta) { E { x ~ logit_normal(0.5, theta); logit(x)^2 } }
fn half_cauchy_scale(theta) { E { x ~ half_cauchy(theta); 1.0 / (1.0 + x^2) } }
fn student_t_df(theta) { E { x ~ student_t(10.0 + 10.0 * theta, 0.5, 1.0); x^2 } }
fn student_t_scale(theta) { E { x ~ student_t(10.0, 0.5, theta); x^2 } }
// `theta: real`: in an untyped (generic) fn the checker types `[theta, 2.0 * theta]` as `[_; 2]`
// and rejects it where a vector is expected (E0200), so the argument is annotated.
fn diag_normal(theta: real) { E { x ~ mv_normal_diag([theta, 2.0 * theta], [1.0, theta]); sum(x^2) } }
// The 5.0 above the diagonal is not part of the Cholesky factor: it must be ignored.
fn mv_normal_full(theta: real) { E { x ~ mv_normal([theta, 0.0], [[1.0, 5.0], [theta, 2.0]]); x[0] * x[1] + x[1]^2 } }
",
        cases: &[
            // E[x²] = μ² + σ² = 0.25 + θ².
            Case { objective: "normal_scale(THETA)", exact: |t| (0.25 + t * t, 2.0 * t), sd: (4.7, 6.1) },
            // x = θu: E[x²] = θ²/3.
            Case { objective: "uniform_hi(THETA)", exact: |t| (t * t / 3.0, 2.0 * t / 3.0), sd: (0.9, 1.3) },
            // x = e/θ, e ~ Exp(1): E[x²] = 2/θ².
            Case {
                objective: "exponential_rate(THETA)",
                exact: |t| (2.0 / (t * t), -4.0 / t.powi(3)),
                sd: (19.0, 63.0),
            },
            // Var Laplace(μ, b) = 2b²: E[x²] = θ² + 2.
            Case { objective: "laplace_loc(THETA)", exact: |t| (t * t + 2.0, 2.0 * t), sd: (9.0, 4.3) },
            // E[x²] = 0.25 + 2θ².
            Case { objective: "laplace_scale(THETA)", exact: |t| (0.25 + 2.0 * t * t, 4.0 * t), sd: (14.0, 19.0) },
            // E[x] = exp(μ + σ²/2) = exp(θ + 0.125).
            Case {
                objective: "lognormal_loc(THETA)",
                exact: |t| ((t + 0.125).exp(), (t + 0.125).exp()),
                sd: (3.7, 3.7),
            },
            // E[x] = exp(σ²/2) = exp(θ²/8), d = (θ/4)·exp(θ²/8).
            Case {
                objective: "lognormal_scale(THETA)",
                exact: |t| ((t * t / 8.0).exp(), t / 4.0 * (t * t / 8.0).exp()),
                sd: (1.6, 2.0),
            },
            // 1/(1+x²) = π·Cauchy(0,1) density, so E = π·density of x − x' ~ Cauchy(θ, 2) at 0
            // = 2/(4 + θ²).
            Case {
                objective: "cauchy_loc(THETA)",
                exact: |t| (2.0 / (4.0 + t * t), -4.0 * t / (4.0 + t * t).powi(2)),
                sd: (0.51, 0.56),
            },
            // As above with x − x' ~ Cauchy(0, 1 + θ): E = 1/(1 + θ).
            Case {
                objective: "cauchy_scale(THETA)",
                exact: |t| (1.0 / (1.0 + t), -1.0 / (1.0 + t).powi(2)),
                sd: (0.53, 0.45),
            },
            // logit(x) ~ N(μ, σ²): E[logit(x)²] = μ² + σ².
            Case { objective: "logit_normal_loc(THETA)", exact: |t| (t * t + 0.25, 2.0 * t), sd: (2.2, 1.5) },
            Case { objective: "logit_normal_scale(THETA)", exact: |t| (0.25 + t * t, 2.0 * t), sd: (4.7, 6.1) },
            // E[x²] = σ² for a half-normal as for the normal it folds.
            Case { objective: "half_normal_scale(THETA)", exact: |t| (t * t, 2.0 * t), sd: (4.2, 6.2) },
            // ∫₀^∞ 2/(πθ(1 + (x/θ)²)) · 1/(1 + x²) dx = 1/(1 + θ).
            Case {
                objective: "half_cauchy_scale(THETA)",
                exact: |t| (1.0 / (1.0 + t), -1.0 / (1.0 + t).powi(2)),
                sd: (0.5, 0.45),
            },
            // E[x²] = μ² + σ²·ν/(ν − 2) with ν = 10 + 10θ: the derivative in ν is implicit (gamma).
            Case {
                objective: "student_t_df(THETA)",
                exact: |t| {
                    let nu = 10.0 + 10.0 * t;
                    (0.25 + nu / (nu - 2.0), -20.0 / (nu - 2.0).powi(2))
                },
                sd: (3.2, 0.7),
            },
            // E[x²] = 0.25 + θ²·10/8.
            Case { objective: "student_t_scale(THETA)", exact: |t| (0.25 + 1.25 * t * t, 2.5 * t), sd: (6.6, 9.0) },
            // E[x₁² + x₂²] = (θ² + 1) + (4θ² + θ²) = 6θ² + 1.
            Case { objective: "diag_normal(THETA)", exact: |t| (6.0 * t * t + 1.0, 12.0 * t), sd: (14.0, 18.0) },
            // x₀ = θ + ε₀, x₁ = θε₀ + 2ε₁: E[x₀x₁] = θ, E[x₁²] = θ² + 4.
            Case { objective: "mv_normal_full(THETA)", exact: |t| (t + t * t + 4.0, 1.0 + 2.0 * t), sd: (17.0, 12.0) },
        ],
    });
}

// ---------------------------------------------------------------------------------------------
// Implicit reparameterisation (gamma, beta): dv = −(∂F/∂θ)/p.
// ---------------------------------------------------------------------------------------------

#[test]
fn implicit_reparam_is_unbiased_for_gamma_and_beta() {
    check_row(&Row {
        name: "implicit",
        seed: 2,
        thetas: [0.7, 2.5],
        samples: SAMPLES,
        defs: "
fn gamma_shape(theta) { E { x ~ gamma(theta, 1.0); x^2 } }
fn gamma_rate(theta) { E { x ~ gamma(2.0, theta) via implicit; x^2 } }
fn beta_a(theta) { E { x ~ beta(theta, 2.0); x } }
fn beta_b(theta) { E { x ~ beta(2.0, theta) via implicit; x^2 } }
fn dirichlet_a(theta: real) { E { p ~ dirichlet([theta, 2.0, 1.0]); p[0]^2 } }
",
        cases: &[
            // E[x²] = α(α + 1) for rate 1. (E[x] alone would not catch dv = x/α, which has the same mean.)
            Case { objective: "gamma_shape(THETA)", exact: |t| (t * t + t, 2.0 * t + 1.0), sd: (18.0, 8.5) },
            // E[x²] = α(α + 1)/β² = 6/θ².
            Case { objective: "gamma_rate(THETA)", exact: |t| (6.0 / (t * t), -12.0 / t.powi(3)), sd: (28.0, 80.0) },
            // E[x] = a/(a + b) = θ/(θ + 2).
            Case { objective: "beta_a(THETA)", exact: |t| (t / (t + 2.0), 2.0 / (t + 2.0).powi(2)), sd: (0.35, 0.18) },
            // E[x²] = a(a + 1)/((a + b)(a + b + 1)) = 6/((2 + θ)(3 + θ)).
            Case {
                objective: "beta_b(THETA)",
                exact: |t| {
                    let q = (2.0 + t) * (3.0 + t);
                    (6.0 / q, -6.0 * (2.0 * t + 5.0) / (q * q))
                },
                sd: (0.45, 0.26),
            },
            // E[p₀²] = α₀(α₀ + 1)/(A(A + 1)), A = θ + 3.
            Case {
                objective: "dirichlet_a(THETA)",
                exact: |t| {
                    let q = (t + 3.0) * (t + 4.0);
                    (t * (t + 1.0) / q, ((2.0 * t + 1.0) * q - t * (t + 1.0) * (2.0 * t + 7.0)) / (q * q))
                },
                sd: (0.29, 0.17),
            },
        ],
    });
}

// ---------------------------------------------------------------------------------------------
// REINFORCE: dl + l·∂θ log p(v; θ).
// `uniform(0, θ) via reinforce` is not tested: its support depends on θ, and the score-function
// estimator is not unbiased for a parameter that moves the support (the boundary term is missing).
// ---------------------------------------------------------------------------------------------

#[test]
fn reinforce_is_unbiased_for_every_continuous_distribution() {
    check_row(&Row {
        name: "reinforce-continuous",
        seed: 3,
        thetas: [0.6, 1.4],
        samples: SAMPLES,
        defs: "
fn exponential_r(theta) { E { x ~ exponential(theta) via reinforce; x } }
fn laplace_r(theta) { E { x ~ laplace(theta, 1.0) via reinforce; x^2 } }
fn lognormal_r(theta) { E { x ~ lognormal(theta, 0.5) via reinforce; x } }
fn cauchy_r(theta) { E { x ~ cauchy(theta, 1.0) via reinforce; 1.0 / (1.0 + x^2) } }
fn gamma_shape_r(theta) { E { x ~ gamma(theta, 1.0) via reinforce; x^2 } }
fn gamma_rate_r(theta) { E { x ~ gamma(2.0, theta) via reinforce; x } }
fn beta_r(theta) { E { x ~ beta(theta, 2.0) via reinforce; x } }
fn mv_normal_r(theta: real) { E { x ~ mv_normal_diag([theta, 2.0 * theta], [1.0, 1.0]) via reinforce; sum(x^2) } }
fn mv_normal_full_r(theta: real) { E { x ~ mv_normal([theta, 0.0], [[1.0, 0.0], [0.5, theta]]) via reinforce; sum(x^2) } }
fn dirichlet_r(theta: real) { E { p ~ dirichlet([theta, 2.0]) via reinforce; p[0] } }
fn logit_normal_r(theta) { E { x ~ logit_normal(theta, 1.0) via reinforce; logit(x) } }
",
        cases: &[
            // E[x] = 1/θ.
            Case { objective: "exponential_r(THETA)", exact: |t| (1.0 / t, -1.0 / (t * t)), sd: (2.6, 16.0) },
            // E[x²] = θ² + 2.
            Case { objective: "laplace_r(THETA)", exact: |t| (t * t + 2.0, 2.0 * t), sd: (9.0, 10.0) },
            // E[x] = exp(θ + 0.125).
            Case {
                objective: "lognormal_r(THETA)",
                exact: |t| ((t + 0.125).exp(), (t + 0.125).exp()),
                sd: (3.7, 21.0),
            },
            // E[1/(1+x²)] = 2/(4 + θ²) (see the reparam row).
            Case {
                objective: "cauchy_r(THETA)",
                exact: |t| (2.0 / (4.0 + t * t), -4.0 * t / (4.0 + t * t).powi(2)),
                sd: (0.51, 0.61),
            },
            // E[x²] = θ(θ + 1).
            Case { objective: "gamma_shape_r(THETA)", exact: |t| (t * t + t, 2.0 * t + 1.0), sd: (9.5, 18.0) },
            // E[x] = 2/θ.
            Case { objective: "gamma_rate_r(THETA)", exact: |t| (2.0 / t, -2.0 / (t * t)), sd: (3.6, 28.0) },
            // E[x] = θ/(θ + 2).
            Case { objective: "beta_r(THETA)", exact: |t| (t / (t + 2.0), 2.0 / (t + 2.0).powi(2)), sd: (0.36, 0.69) },
            // E[x₁² + x₂²] = θ² + 1 + 4θ² + 1 = 5θ² + 2.
            Case { objective: "mv_normal_r(THETA)", exact: |t| (5.0 * t * t + 2.0, 10.0 * t), sd: (10.0, 56.0) },
            // E[x₀²] = θ² + 1, x₁ = ε₀/2 + θε₁: E[x₁²] = 1/4 + θ².
            Case { objective: "mv_normal_full_r(THETA)", exact: |t| (2.0 * t * t + 1.25, 4.0 * t), sd: (7.0, 28.0) },
            // E[logit(x)] = μ.
            Case { objective: "logit_normal_r(THETA)", exact: |t| (t, 1.0), sd: (1.5, 3.0) },
            // E[p₀] = θ/(θ + 2).
            Case { objective: "dirichlet_r(THETA)", exact: |t| (t / (t + 2.0), 2.0 / (t + 2.0).powi(2)), sd: (0.36, 0.69) },
        ],
    });
}

#[test]
fn reinforce_is_unbiased_for_every_discrete_distribution() {
    check_row(&Row {
        name: "reinforce-discrete",
        seed: 4,
        thetas: [0.3, 0.7],
        samples: SAMPLES,
        defs: "
fn categorical_r(theta) { E { c ~ categorical(softmax([0.0, theta, 2.0 * theta])) via reinforce; c } }
// `theta: real`: see `mv_normal` in the reparam row.
fn categorical_probs_r(theta: real) { E { c ~ categorical([0.5 * theta, 0.5 * theta, 1.0 - theta]) via reinforce; c^2 } }
fn geometric_r(theta) { E { k ~ geometric(theta) via reinforce; k } }
fn poisson_r(theta) { E { k ~ poisson(theta) via reinforce; k^2 } }
fn negative_binomial_r(theta) { E { k ~ negative_binomial(3.0, theta); k } }
fn binomial_r(theta) { E { k ~ binomial(10, theta); k^2 } }
fn bernoulli_logit_r(theta) { E { b ~ bernoulli_logit(theta); if b { 3.0 } else { 1.0 } } }
",
        cases: &[
            // pᵢ ∝ e^{iθ}, i = 0, 1, 2: E[c] = (e^θ + 2e^{2θ})/Z, Z = 1 + e^θ + e^{2θ}; an exponential
            // family in θ with statistic c, so dE[c]/dθ = Var c = E[c²] − E[c]².
            Case { objective: "categorical_r(THETA)", exact: categorical_softmax_mean, sd: (1.2, 1.3) },
            // E[c²] = 0·θ/2 + 1·θ/2 + 4·(1 − θ) = 4 − 3.5θ.
            Case { objective: "categorical_probs_r(THETA)", exact: |t| (4.0 - 3.5 * t, -3.5), sd: (2.5, 9.7) },
            // Failures before the first success: E[k] = (1 − θ)/θ.
            Case { objective: "geometric_r(THETA)", exact: |t| ((1.0 - t) / t, -1.0 / (t * t)), sd: (4.2, 58.0) },
            // E[k²] = Var + mean² = θ + θ².
            Case { objective: "poisson_r(THETA)", exact: |t| (t + t * t, 1.0 + 2.0 * t), sd: (3.4, 13.5) },
            // Failures before the third success: E[k] = 3(1 − θ)/θ.
            Case {
                objective: "negative_binomial_r(THETA)",
                exact: |t| (3.0 * (1.0 - t) / t, -3.0 / (t * t)),
                sd: (7.0, 150.0),
            },
            // E[k²] = nθ(1 − θ) + n²θ² with n = 10.
            Case {
                objective: "binomial_r(THETA)",
                exact: |t| (10.0 * t * (1.0 - t) + 100.0 * t * t, 10.0 * (1.0 - 2.0 * t) + 200.0 * t),
                sd: (30.0, 580.0),
            },
            // E = 1 + 2σ(θ), d/dθ = 2σ(θ)(1 − σ(θ)).
            Case {
                objective: "bernoulli_logit_r(THETA)",
                exact: |t| {
                    let s = 1.0 / (1.0 + (-t).exp());
                    (1.0 + 2.0 * s, 2.0 * s * (1.0 - s))
                },
                sd: (1.5, 1.5),
            },
        ],
    });
}

/// E[c] and d/dθ for c ~ categorical(softmax([0, θ, 2θ])).
fn categorical_softmax_mean(t: f64) -> (f64, f64) {
    let w = [1.0, t.exp(), (2.0 * t).exp()];
    let z: f64 = w.iter().sum();
    let mean = (w[1] + 2.0 * w[2]) / z;
    let second = (w[1] + 4.0 * w[2]) / z;
    (mean, second - mean * mean)
}

#[test]
fn reinforce_with_a_baseline_is_unbiased() {
    check_row(&Row {
        name: "reinforce-baseline",
        seed: 5,
        thetas: [0.4, 0.75],
        samples: SAMPLES,
        defs: "
fn flip_b(theta) { E { b ~ flip(theta) via reinforce(baseline: 0.5); if b { 0.0 } else { -theta / 2.0 } } }
// A baseline that depends on θ: only its value is used, never its tangent.
fn normal_b(theta) { E { x ~ normal(theta, 1.0) via reinforce(baseline: theta^2 + 1.0); x^2 } }
fn poisson_b(theta) { E { k ~ poisson(theta) via reinforce(baseline: 2.0); k^2 } }
",
        cases: &[
            // (1 − θ)(−θ/2) = −θ(1 − θ)/2, d = θ − 1/2 (the ADEV README example).
            Case { objective: "flip_b(THETA)", exact: readme, sd: (0.25, 2.4) },
            // E[x²] = θ² + 1.
            Case { objective: "normal_b(THETA)", exact: |t| (t * t + 1.0, 2.0 * t), sd: (3.1, 5.7) },
            // E[k²] = θ + θ².
            Case { objective: "poisson_b(THETA)", exact: |t| (t + t * t, 1.0 + 2.0 * t), sd: (3.7, 12.0) },
        ],
    });
}

/// The ADEV README example, E[b ? 0 : −θ/2] for b ~ flip(θ): value −θ(1 − θ)/2, d/dθ = θ − 1/2
/// (−0.12 and −0.1 at θ = 0.4).
fn readme(t: f64) -> (f64, f64) {
    (-t * (1.0 - t) / 2.0, t - 0.5)
}

// ---------------------------------------------------------------------------------------------
// The table of semantics.md §4 (rows 1 and 2).
// ---------------------------------------------------------------------------------------------

#[test]
fn the_semantics_table_examples_are_unbiased() {
    check_row(&Row {
        name: "semantics-table",
        seed: 6,
        thetas: [0.4, 0.75],
        samples: SAMPLES,
        defs: "
fn l_reinforce(theta) { E { b ~ flip(theta) via reinforce; if b { 0.0 } else { -theta / 2.0 } } }
fn l_enum(theta) { E { b ~ flip(theta) via enum; if b { 0.0 } else { -theta / 2.0 } } }
fn l_mvd(theta) { E { b ~ flip(theta) via mvd; if b { 0.0 } else { -theta / 2.0 } } }
fn sq_reparam(theta) { E { x ~ normal(theta, 1.0) via reparam; x^2 } }
fn sq_reinforce(theta) { E { x ~ normal(theta, 1.0) via reinforce; x^2 } }
",
        cases: &[
            Case { objective: "l_reinforce(THETA)", exact: readme, sd: (0.25, 0.65) },
            // Enumeration is exact: every estimate is the same number.
            Case { objective: "l_enum(THETA)", exact: readme, sd: (1e-6, 1e-6) },
            Case { objective: "l_mvd(THETA)", exact: readme, sd: (0.25, 0.37) },
            // E[x²] = θ² + 1, d = 2θ.
            Case { objective: "sq_reparam(THETA)", exact: |t| (t * t + 1.0, 2.0 * t), sd: (3.1, 3.0) },
            Case { objective: "sq_reinforce(THETA)", exact: |t| (t * t + 1.0, 2.0 * t), sd: (3.1, 7.2) },
        ],
    });
}

// ---------------------------------------------------------------------------------------------
// Enumeration and measure-valued derivatives.
// ---------------------------------------------------------------------------------------------

#[test]
fn enum_and_mvd_are_unbiased() {
    check_row(&Row {
        name: "enum-mvd",
        seed: 7,
        thetas: [0.3, 0.7],
        samples: SAMPLES,
        defs: "
fn flip_enum(theta) { E { b ~ flip(theta) via enum; if b { theta^2 } else { 1.0 - theta } } }
fn flip_mvd(theta) { E { b ~ flip(theta) via mvd; if b { theta^2 } else { 1.0 - theta } } }
fn categorical_e(theta) { E { c ~ categorical(softmax([0.0, theta, 2.0 * theta])) via enum; c } }
fn categorical_probs_e(theta: real) { E { c ~ categorical([0.5 * theta, 0.5 * theta, 1.0 - theta]) via enum; c^2 } }
fn poisson_mvd(theta) { E { k ~ poisson(theta) via mvd; k^2 } }
// The continuation's value depends on θ as well: dl + (l(k + 1) − l(k))·dλ.
fn poisson_mvd_scaled(theta) { E { k ~ poisson(theta) via mvd; theta * k } }
",
        cases: &[
            // θ·θ² + (1 − θ)(1 − θ) = θ³ + (1 − θ)², d = 3θ² − 2(1 − θ).
            Case { objective: "flip_enum(THETA)", exact: flip_branches, sd: (1e-6, 1e-6) },
            Case { objective: "flip_mvd(THETA)", exact: flip_branches, sd: (0.42, 1.65) },
            Case { objective: "categorical_e(THETA)", exact: categorical_softmax_mean, sd: (1e-6, 1e-6) },
            // 4 − 3.5θ (see the REINFORCE row).
            Case { objective: "categorical_probs_e(THETA)", exact: |t| (4.0 - 3.5 * t, -3.5), sd: (1e-6, 1e-6) },
            // E[k²] = θ + θ².
            Case { objective: "poisson_mvd(THETA)", exact: |t| (t + t * t, 1.0 + 2.0 * t), sd: (3.4, 2.5) },
            // E[θk] = θ².
            Case { objective: "poisson_mvd_scaled(THETA)", exact: |t| (t * t, 2.0 * t), sd: (0.9, 1.3) },
        ],
    });
}

/// E[b ? θ² : 1 − θ] for b ~ flip(θ).
fn flip_branches(t: f64) -> (f64, f64) {
    (t.powi(3) + (1.0 - t).powi(2), 3.0 * t * t - 2.0 * (1.0 - t))
}

// ---------------------------------------------------------------------------------------------
// Continuations that run many times: discrete choices inside loops, and rules mixed in one
// program (the continuation of an `enum` site holds a `reinforce` site and the other way round).
// ---------------------------------------------------------------------------------------------

/// S = number of successes in 3 flips of θ ~ Binomial(3, θ): E[S²] = Var S + (E S)² = 3θ(1 − θ)
/// + 9θ² = 3θ + 6θ², d = 3 + 12θ.
fn binomial_square(t: f64) -> (f64, f64) {
    (3.0 * t + 6.0 * t * t, 3.0 + 12.0 * t)
}

#[test]
fn discrete_choices_in_loops_are_unbiased() {
    check_row(&Row {
        name: "loops",
        seed: 8,
        thetas: [0.3, 0.8],
        samples: SAMPLES,
        defs: "
gen coins_enum(p: real) {
    for i in 0..3 {
        b[i] ~ flip(p) via enum;
    }
}

gen coins_mvd(p: real) {
    for i in 0..3 {
        b[i] ~ flip(p) via mvd;
    }
}

fn loop_enum(theta) { E { let s = [{ b ~ flip(theta) via enum; if b { 1.0 } else { 0.0 } } for i in 0..3]; sum(s)^2 } }
fn loop_mvd(theta) { E { let s = [{ b ~ flip(theta) via mvd; if b { 1.0 } else { 0.0 } } for i in 0..3]; sum(s)^2 } }
fn loop_reinforce(theta) { E { let s = [{ b ~ flip(theta) via reinforce; if b { 1.0 } else { 0.0 } } for i in 0..3]; sum(s)^2 } }
// The same with a `for` statement: the choices of a generative function's loop, sampled by `sim`.
fn for_enum(theta) { E { let (t, log_q) = sim(coins_enum(theta)); sum([if t.b[i] { 1.0 } else { 0.0 } for i in 0..3])^2 } }
fn for_mvd(theta) { E { let (t, log_q) = sim(coins_mvd(theta)); sum([if t.b[i] { 1.0 } else { 0.0 } for i in 0..3])^2 } }
",
        cases: &[
            // Enumerating 3 sites nested in each other's continuations: exact.
            Case { objective: "loop_enum(THETA)", exact: binomial_square, sd: (1e-6, 1e-6) },
            Case { objective: "loop_mvd(THETA)", exact: binomial_square, sd: (3.0 * 1.5, 4.8 * 2.0) },
            Case { objective: "loop_reinforce(THETA)", exact: binomial_square, sd: (3.0 * 1.5, 21.7 * 1.5) },
            Case { objective: "for_enum(THETA)", exact: binomial_square, sd: (1e-6, 1e-6) },
            Case { objective: "for_mvd(THETA)", exact: binomial_square, sd: (3.0 * 1.5, 4.8 * 2.0) },
        ],
    });
}

#[test]
fn mixing_estimator_rules_is_unbiased() {
    check_row(&Row {
        name: "mixed",
        seed: 9,
        thetas: [0.3, 0.8],
        samples: SAMPLES,
        defs: "
fn enum_then_reinforce(theta) { E { b ~ flip(theta) via enum; x ~ normal(if b { theta } else { 1.0 }, 1.0) via reinforce; x^2 } }
fn mvd_then_reparam(theta) { E { b ~ flip(theta) via mvd; x ~ normal(if b { theta } else { 1.0 }, 1.0) via reparam; x^2 } }
fn reinforce_then_enum(theta) { E { x ~ beta(theta, 2.0) via reinforce; b ~ flip(x) via enum; if b { 1.0 } else { theta } } }
fn implicit_then_mvd(theta) { E { x ~ beta(theta, 2.0) via implicit; b ~ flip(x) via mvd; if b { 1.0 } else { theta } } }
fn chain(theta) {
    E {
        a ~ flip(theta) via enum;
        b ~ flip(if a { theta } else { 0.5 }) via mvd;
        c ~ flip(if b { 0.5 } else { theta }) via reinforce;
        (if a { 1.0 } else { 0.0 }) + 2.0 * (if b { 1.0 } else { 0.0 }) + 4.0 * (if c { 1.0 } else { 0.0 })
    }
}
",
        // sd bounds are 2× the simulated ones here: whether the branches of an `enum` share
        // randomness is the implementation's choice, and changes the variance.
        cases: &[
            // θ·E[N(θ,1)²] + (1 − θ)·E[N(1,1)²] = θ(θ² + 1) + 2(1 − θ) = θ³ − θ + 2.
            Case { objective: "enum_then_reinforce(THETA)", exact: |t| (t.powi(3) - t + 2.0, 3.0 * t * t - 1.0), sd: (3.6, 12.8) },
            Case { objective: "mvd_then_reparam(THETA)", exact: |t| (t.powi(3) - t + 2.0, 3.0 * t * t - 1.0), sd: (4.5, 8.8) },
            // x ~ Beta(θ, 2), m = E x = θ/(θ + 2): E[x + (1 − x)θ] = m + θ(1 − m) = 3θ/(θ + 2).
            Case { objective: "reinforce_then_enum(THETA)", exact: beta_flip, sd: (0.26, 2.4) },
            Case { objective: "implicit_then_mvd(THETA)", exact: beta_flip, sd: (0.47, 0.9) },
            // P(a) = θ; P(b) = θ·θ + (1 − θ)/2; P(c) = P(b)/2 + (1 − P(b))θ; value P(a) + 2P(b) + 4P(c).
            Case { objective: "chain(THETA)", exact: chain, sd: (3.6, 10.2) },
        ],
    });
}

/// E[b ? 1 : θ] for x ~ Beta(θ, 2), b ~ flip(x): 3θ/(θ + 2), d = 6/(θ + 2)².
fn beta_flip(t: f64) -> (f64, f64) {
    (3.0 * t / (t + 2.0), 6.0 / (t + 2.0).powi(2))
}

/// The enum → mvd → reinforce chain: 2.732 and 3.52 at θ = 0.3.
fn chain(t: f64) -> (f64, f64) {
    let pb = t * t + (1.0 - t) / 2.0;
    let dpb = 2.0 * t - 0.5;
    let pc = t + pb * (0.5 - t);
    let dpc = 1.0 + dpb * (0.5 - t) - pb;
    (t + 2.0 * pb + 4.0 * pc, 1.0 + 2.0 * dpb + 4.0 * dpc)
}

// ---------------------------------------------------------------------------------------------
// Estimates over a data set's rows: all rows, and minibatches drawn without replacement.
// ---------------------------------------------------------------------------------------------

#[test]
fn minibatch_estimates_are_unbiased_for_the_full_data_objective() {
    check_row(&Row {
        name: "rows",
        seed: 17,
        thetas: [0.3, -0.7],
        samples: 20_000,
        defs: "
gen model() { x ~ normal(0.0, 1.0); y ~ normal(x, 1.0); }
gen guide(m: real) { x ~ normal(m, 1.0); }
data ys: vec[6] = [0.5, -1.0, 2.0, 0.25, 1.5, -0.5];
fn row_theta1(y: real) { elbo(model(), guide(theta1), { y: y }) }
fn row_theta2(y: real) { elbo(model(), guide(theta2), { y: y }) }
",
        cases: &[
            // Per row, with q = N(θ, 1): ELBO(y) = −½log 2π − ½θ² − ½(y − θ)² − ½; d/dθ = y − 2θ.
            Case { objective: "mean_over(ys, row_THETA)", exact: rows_mean, sd: (1.4, 1.3) },
            Case { objective: "mean_over(ys, row_THETA, batch: 2)", exact: rows_mean, sd: (2.8, 2.4) },
            Case { objective: "sum_over(ys, row_THETA, batch: 3)", exact: rows_sum, sd: (13.0, 11.2) },
        ],
    });
}

const ROWS: [f64; 6] = [0.5, -1.0, 2.0, 0.25, 1.5, -0.5];

/// The mean over `ROWS` of the per-row ELBO above, and its derivative.
fn rows_mean(t: f64) -> (f64, f64) {
    let n = ROWS.len() as f64;
    let value =
        ROWS.iter().map(|y| -0.5 * (2.0 * std::f64::consts::PI).ln() - 0.5 * t * t - 0.5 * (y - t).powi(2) - 0.5);
    (value.sum::<f64>() / n, ROWS.iter().map(|y| y - 2.0 * t).sum::<f64>() / n)
}

fn rows_sum(t: f64) -> (f64, f64) {
    let (value, derivative) = rows_mean(t);
    (6.0 * value, 6.0 * derivative)
}

// ---------------------------------------------------------------------------------------------
// Combinators on estimates.
// ---------------------------------------------------------------------------------------------

#[test]
fn estimate_combinators_are_unbiased() {
    check_row(&Row {
        name: "combinators",
        seed: 10,
        thetas: [0.5, 1.3],
        samples: SAMPLES,
        defs: "
fn f(theta) { E { x ~ normal(theta, 1.0); x^2 } }
fn g(theta) { E { x ~ exponential(theta); x } }
fn h(theta) { E { x ~ normal(theta, 0.5); x } }
",
        // f = θ² + 1 (d 2θ), g = 1/θ (d −1/θ²), h = θ (d 1).
        cases: &[
            Case {
                objective: "f(THETA) + g(THETA)",
                exact: |t| (t * t + 1.0 + 1.0 / t, 2.0 * t - 1.0 / (t * t)),
                sd: (4.6, 6.7),
            },
            Case {
                objective: "f(THETA) - g(THETA)",
                exact: |t| (t * t + 1.0 - 1.0 / t, 2.0 * t + 1.0 / (t * t)),
                sd: (4.6, 6.8),
            },
            Case { objective: "2.0 * f(THETA)", exact: |t| (2.0 * t * t + 2.0, 4.0 * t), sd: (8.9, 6.0) },
            // A real that depends on θ times an estimate: the product rule, θ³ + θ → 3θ² + 1.
            Case { objective: "THETA * f(THETA)", exact: |t| (t.powi(3) + t, 3.0 * t * t + 1.0), sd: (5.8, 8.1) },
            // Independent estimates: (θ² + 1)/θ = θ + 1/θ.
            Case { objective: "f(THETA) * g(THETA)", exact: |t| (t + 1.0 / t, 1.0 - 1.0 / (t * t)), sd: (8.2, 12.7) },
            // Two independent runs of the same estimate: (E f)² = (θ² + 1)², not E[f²] = θ⁴ + 6θ² + 3.
            Case {
                objective: "f(THETA) * f(THETA)",
                exact: |t| ((t * t + 1.0).powi(2), 4.0 * t * (t * t + 1.0)),
                sd: (21.5, 32.0),
            },
            // ADEV's exp_: exp(E h) = e^θ, d = e^θ.
            Case { objective: "exp(h(THETA))", exact: |t| (t.exp(), t.exp()), sd: (7.8, 7.8) },
            Case { objective: "f(THETA) + THETA", exact: |t| (t * t + t + 1.0, 2.0 * t + 1.0), sd: (4.5, 3.0) },
            Case { objective: "f(THETA) - 1.0", exact: |t| (t * t, 2.0 * t), sd: (4.5, 3.0) },
            Case { objective: "f(THETA) / 2.0", exact: |t| ((t * t + 1.0) / 2.0, t), sd: (2.2, 1.5) },
            Case { objective: "-f(THETA)", exact: |t| (-t * t - 1.0, -2.0 * t), sd: (4.5, 3.0) },
            // Composed: e^θ/θ + 2θ² + 2, d = e^θ/θ − e^θ/θ² + 4θ.
            Case {
                objective: "exp(h(THETA)) * g(THETA) + 2.0 * f(THETA)",
                exact: |t| (t.exp() / t + 2.0 * t * t + 2.0, t.exp() / t - t.exp() / (t * t) + 4.0 * t),
                sd: (26.0, 52.0),
            },
        ],
    });
}

// ---------------------------------------------------------------------------------------------
// A vector parameter: `grad` reports `mean` and `stderr` as arrays.
// ---------------------------------------------------------------------------------------------

#[test]
fn gradients_with_respect_to_a_vector_parameter_are_unbiased() {
    let program = format!(
        "param m1: vec[2] = [0.3, -0.5];
param m2: vec[2] = [1.2, 0.4];

fn mv_reparam(m: vec[2]) {{ E {{ x ~ mv_normal_diag(m, [1.0, 1.0]); sum(x^2) }} }}
fn mv_reinforce(m: vec[2]) {{ E {{ x ~ mv_normal_diag(m, [1.0, 1.0]) via reinforce; sum(x^2) }} }}
// A scalar distribution with a vector argument draws a vector. (`m: vec[2]` is annotated: in an
// untyped fn the checker types the draw of `normal(m, 0.5)` as `real`.)
fn normal_vec(m: vec[2]) {{ E {{ x ~ normal(m, 0.5); sum(x^2) }} }}

{}",
        ["mv_reparam", "mv_reinforce", "normal_vec"]
            .iter()
            .flat_map(|f| ["m1", "m2"].map(move |m| format!(
                "print estimate({f}({m}), samples: {SAMPLES});\nprint grad({f}({m}), samples: {SAMPLES});\n"
            )))
            .collect::<String>()
    );
    let reports = run_json("vector-param", &program, 11);
    assert_eq!(reports.len(), 12, "one report per print command:\n{program}");
    // E[Σ xᵢ²] = |m|² + Σ σᵢ², gradient 2m. (sd bounds of one value / one gradient component.)
    let cases: [(f64, (f64, f64)); 3] = [(2.0, (4.9, 3.0)), (2.0, (4.9, 11.0)), (0.5, (2.1, 1.5))];
    let mut failures = Vec::new();
    let mut reports = reports.iter();
    for (variance, sd) in cases {
        for (name, m) in [("m1", [0.3, -0.5]), ("m2", [1.2, 0.4])] {
            let estimate = reports.next().expect("counted");
            let grad = reports.next().expect("counted");
            let value = m[0] * m[0] + m[1] * m[1] + variance;
            if let Err(problem) = assert_estimate(estimate, value, sd.0, SAMPLES) {
                failures.push(problem);
            }
            let source = grad["source"].as_str().unwrap_or("?");
            let entry = &grad["params"][name];
            let (means, stderrs) = (entry["mean"].as_array(), entry["stderr"].as_array());
            let (Some(means), Some(stderrs)) = (means, stderrs) else {
                failures.push(format!("grad `{source}`: expected arrays for `{name}`, found {grad}"));
                continue;
            };
            if grad["kind"] != "grad" || means.len() != 2 || stderrs.len() != 2 {
                failures.push(format!("grad `{source}`: expected 2 components for `{name}`, found {grad}"));
                continue;
            }
            for i in 0..2 {
                let (mean, stderr) = (number(&means[i], source), number(&stderrs[i], source));
                if let Err(problem) = close(mean, stderr, 2.0 * m[i], sd.1 / (SAMPLES as f64).sqrt()) {
                    failures.push(format!("grad `{source}` d/d{name}[{i}]: {problem}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}\n--- program ---\n{program}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Estimates of vectors: every rule applies element by element.
// ---------------------------------------------------------------------------------------------

#[test]
fn vector_estimates_are_unbiased_element_by_element() {
    let program = "param theta: real = 0.7;
gen coin(p: real) { b ~ flip(p) via enum; x ~ normal(if b { 1.0 } else { -1.0 }, 1.0); }
fn enum_moments(p) { E { let (t, log_q) = sim(coin(p)); [t.x, t.x^2] } }
fn mvd_moments(p) { E { b ~ flip(p) via mvd; y ~ normal(if b { 2.0 } else { 0.0 }, 1.0); [y, y * y] } }
fn reinforce_moments(p) { E { k ~ poisson(3.0 * p) via reinforce; [1.0 * k, 1.0 * k^2] } }
data rows = [[1.0, 2.0], [3.0, 4.0], [5.0, 7.0]];
fn noisy(r: vec[2]) { E { x ~ normal(0.0, 1.0); r + x } }
print estimate(enum_moments(theta), samples: 20000);
print estimate(mvd_moments(theta), samples: 20000);
print estimate(reinforce_moments(theta), samples: 20000);
print estimate(mean_over(rows, noisy, batch: 2), samples: 20000);
print estimate(sum_over(rows, noisy, batch: 2) - 2.0 * E { [1.0, 1.0] }, samples: 20000);
";
    let lambda: f64 = 2.1;
    // Each row: the exact means and bounds on one estimate's standard deviation, per element.
    let expected: [([f64; 2], [f64; 2]); 5] = [
        // x ~ N(±1, 1): E[x] = 2p − 1, E[x²] = 2.
        ([0.4, 2.0], [2.1, 3.7]),
        // y = 2b + ε: E[y] = 2p, E[y²] = 1 + 4p.
        ([1.4, 3.8], [2.1, 6.1]),
        // k ~ Poisson(λ): E[k] = λ, E[k²] = λ + λ².
        ([lambda, lambda + lambda * lambda], [2.2, 12.2]),
        // The rows' mean, from two rows per estimate.
        ([3.0, 13.0 / 3.0], [2.0, 2.2]),
        // Their sum, less 2.
        ([7.0, 11.0], [6.0, 6.6]),
    ];
    let reports = run_json("vectors", program, 9);
    assert_eq!(reports.len(), expected.len(), "{reports:?}");
    let mut failures = Vec::new();
    for (report, (exact, sd)) in reports.iter().zip(expected) {
        let source = report["source"].as_str().unwrap_or("?");
        let (Some(means), Some(stderrs)) = (report["mean"].as_array(), report["stderr"].as_array()) else {
            panic!("a vector estimate reports a mean and a standard error per element: {report}");
        };
        assert_eq!((means.len(), stderrs.len()), (2, 2), "{report}");
        for element in 0..2 {
            let (mean, stderr) = (number(&means[element], source), number(&stderrs[element], source));
            if let Err(problem) = close(mean, stderr, exact[element], sd[element] / (20_000f64).sqrt()) {
                failures.push(format!("  `{source}`[{element}]: {problem}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}\n--- program ---\n{program}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Reproducibility: the same seed gives bit-identical output, another seed another output.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_seed_makes_a_run_reproducible() {
    let program = "param theta: real = 0.4;

fn l(theta) { E { b ~ flip(theta) via reinforce; if b { 0.0 } else { -theta / 2.0 } } }
fn m(theta) { E { b ~ flip(theta) via mvd; x ~ gamma(theta + 1.0, 2.0); if b { x } else { theta } } }
fn p(theta: real) { E { k ~ poisson(theta) via mvd; c ~ categorical([theta, 1.0 - theta]) via enum; k * c } }
fn q(theta) { E { x ~ normal(theta, 1.0); x } }

print estimate(l(theta), samples: 1000);
print grad(l(theta), samples: 1000);
print grad(m(theta), samples: 1000);
print grad(p(theta), samples: 1000);
print estimate(exp(q(theta)) * q(theta), samples: 1000);
print grad(exp(q(theta)), samples: 1000);
";
    let first = run_stdout("seed-a", program, 21);
    let second = run_stdout("seed-b", program, 21);
    let other = run_stdout("seed-c", program, 22);
    assert_eq!(first.lines().count(), 6, "{first}");
    assert_eq!(first, second, "the same seed must give bit-identical output");
    assert_ne!(first, other, "a different seed must give different estimates");
}
