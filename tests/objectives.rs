//! The variational objectives of the standard library (`stdlib/vi.ppl`: `elbo`, `iwelbo`,
//! `wake_p`, `wake_q`) and the generative-function forms they are built from (`sim`,
//! `density`, `marginal`, `normalize`, `sample`), checked against closed forms end to end
//! (semantics.md §3–§4).
//!
//! Most tests run `ppl run --json` on a program and compare each reported mean with its exact
//! value within `Z` standard errors, with a bound on the standard error (`sd / √N`, `sd` about
//! 1.5× the standard deviation of one estimate, simulated in numpy) so that a noisy result
//! fails instead of passing. Where no closed form exists (IWELBO(n) for n ≥ 2, moments of
//! SIR's output), the reference is a numpy simulation of the same estimator with ~100× the
//! samples, and its own standard error is added in quadrature. The wake–sleep test and two
//! exactness checks run compiled objectives stream by stream through the library instead.
//!
//! Unless a comment says otherwise, the data is one observation `y = Y = 1.5` of the conjugate
//! model x ~ N(0, 1), y ~ N(x, 1): posterior N(y/2, √½), evidence p(y) = N(y; 0, √2).
//! Seeds are fixed, so every test is deterministic.

mod common;

use std::process::Command;

use common::Scratch;
use ppl::adev::Estimator;
use ppl::interp::RuntimeValue;
use serde_json::Value;

/// How many standard errors a mean may be from its reference.
const Z: f64 = 4.0;

/// The observation.
const Y: f64 = 1.5;

/// The conjugate model and the Gaussian guide of most tests.
const GAUSSIAN: &str = "
gen model() { x ~ normal(0.0, 1.0); y ~ normal(x, 1.0); }
gen guide(m: real, log_s: real) { x ~ normal(m, exp(log_s)); }
data obs = { y: 1.5 };
";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn log_normal_pdf(x: f64, mu: f64, sigma: f64) -> f64 {
    -0.5 * (2.0 * std::f64::consts::PI).ln() - sigma.ln() - 0.5 * ((x - mu) / sigma).powi(2)
}

fn normal_pdf(x: f64, mu: f64, sigma: f64) -> f64 {
    log_normal_pdf(x, mu, sigma).exp()
}

/// log p(y) = log N(y; 0, √2).
fn log_evidence() -> f64 {
    log_normal_pdf(Y, 0.0, 2f64.sqrt())
}

/// Runs `ppl run --json --seed SEED` on `program` (which must succeed) and parses its output:
/// one JSON object per line.
fn run_json(name: &str, program: &str, seed: u64) -> Vec<Value> {
    let scratch = Scratch::new(&format!("objectives-{name}"));
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
    String::from_utf8(output.stdout)
        .expect("stdout is UTF-8")
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}")))
        .collect()
}

fn number(value: &Value, what: &str) -> f64 {
    value.as_f64().unwrap_or_else(|| panic!("{what}: expected a number, found {value}"))
}

/// A mean with its standard error, as reported by `estimate` or `grad`.
#[derive(Clone, Copy, Debug)]
struct Stat {
    mean: f64,
    stderr: f64,
    samples: usize,
    /// `estimate(…)` or `grad(…) d/dPARAM`, for messages.
    what: &'static str,
}

/// The statistic of an `estimate` report.
fn estimate(report: &Value) -> (Stat, String) {
    let source = report["source"].as_str().unwrap_or("?").to_string();
    assert_eq!(report["kind"], "estimate", "expected an estimate, found {report}");
    let stat = Stat {
        mean: number(&report["mean"], &source),
        stderr: number(&report["stderr"], &source),
        samples: report["samples"].as_u64().unwrap_or_else(|| panic!("no samples in {report}")) as usize,
        what: "estimate",
    };
    (stat, source)
}

/// The statistic of a `grad` report for the scalar parameter `param`.
fn grad(report: &Value, param: &str) -> (Stat, String) {
    let source = report["source"].as_str().unwrap_or("?").to_string();
    assert_eq!(report["kind"], "grad", "expected a grad, found {report}");
    let entry = &report["params"][param];
    assert!(!entry.is_null(), "grad `{source}`: no entry for `{param}` in {report}");
    let stat = Stat {
        mean: number(&entry["mean"], &source),
        stderr: number(&entry["stderr"], &source),
        samples: report["samples"].as_u64().unwrap_or_else(|| panic!("no samples in {report}")) as usize,
        what: "grad",
    };
    (stat, format!("{source} d/d{param}"))
}

/// Checks a mean against a reference known to within `reference_se` (0 for a closed form):
/// the standard error must be at most `max_sd / √N` and the mean within `Z` combined standard
/// errors. Returns a description of what is wrong.
fn check(stat: (Stat, String), reference: f64, reference_se: f64, max_sd: f64) -> Result<(), String> {
    let (stat, source) = stat;
    let numbers = format!(
        "{} `{source}`: mean {:.6} ± {:.2e}, expected {reference:.6} ± {reference_se:.1e}",
        stat.what, stat.mean, stat.stderr
    );
    if !stat.mean.is_finite() || !stat.stderr.is_finite() || stat.stderr < 0.0 {
        return Err(format!("{numbers}: not finite"));
    }
    let bound = max_sd / (stat.samples as f64).sqrt();
    if stat.stderr > bound {
        return Err(format!("{numbers}: stderr above the bound {bound:.2e} (too noisy)"));
    }
    let se = stat.stderr.hypot(reference_se);
    let error = (stat.mean - reference).abs();
    if error > Z * se + 1e-9 * (1.0 + reference.abs()) {
        return Err(format!("{numbers}: off by {error:.2e} = {:.1} standard errors", error / se));
    }
    Ok(())
}

/// Panics listing every failure, with the program.
fn assert_no_failures(name: &str, failures: Vec<String>, program: &str) {
    assert!(
        failures.is_empty(),
        "{name}: {} failures\n  {}\n--- program ---\n{program}",
        failures.len(),
        failures.join("\n  ")
    );
}

/// Checks `source` and compiles the objective of every `estimate`/`grad` in it, in order.
fn compile(source: &str) -> Vec<(String, Estimator)> {
    let analysis = ppl::check_source("objectives.ppl", source);
    assert!(
        !analysis.has_errors(),
        "the program does not check:\n{}\n--- program ---\n{source}",
        analysis.render_diagnostics(ppl::diagnostics::ColorChoice::Never)
    );
    let session = ppl::run::Session::new(&analysis, ppl::run::RunOptions::default())
        .unwrap_or_else(|error| panic!("cannot start the program: {error:?}\n--- program ---\n{source}"));
    session
        .compile_objectives()
        .unwrap_or_else(|error| panic!("cannot compile the objectives: {error:?}\n--- program ---\n{source}"))
}

/// Runs a compiled function (`primal` or `reverse`) at the real parameters `params` (every
/// `param` of the program, in order) on stream `stream` of `seed`; returns its results as reals.
fn run_on_stream(function: &ppl::ir::Function, params: &[f64], seed: u64, stream: u64) -> Vec<f64> {
    let mut args: Vec<RuntimeValue> = params.iter().map(|x| RuntimeValue::Real(*x)).collect();
    args.push(RuntimeValue::Rng(Box::new(ppl_runtime::Rng::new(seed, stream))));
    let results = ppl::interp::run(function, args)
        .unwrap_or_else(|error| panic!("the objective failed on stream {stream}: {error:?}"));
    results
        .iter()
        .map(|value| value.as_real().unwrap_or_else(|_| panic!("expected reals, found {results:?}")))
        .collect()
}

/// Whether `a` and `b` agree to `tolerance` relative to max(1, |a|, |b|).
fn agree(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * 1f64.max(a.abs()).max(b.abs())
}

// ---------------------------------------------------------------------------------------------
// 1. ELBO of the conjugate Gaussian model
// ---------------------------------------------------------------------------------------------

/// ELBO of guide N(m, s²), s = exp(log_s), and its gradient (d/dm, d/dlog_s):
/// E_q[log N(x; 0, 1)] = −½log 2π − ½(m² + s²), E_q[log N(y; x, 1)] = −½log 2π − ½((y − m)² + s²),
/// E_q[−log q] = ½log 2π + ½ + log s, so
/// ELBO = −½log 2π − ½(m² + s²) − ½((y − m)² + s²) + ½ + log s,
/// d/dm = y − 2m, d/dlog_s = 1 − 2s².
fn gaussian_elbo(m: f64, log_s: f64) -> (f64, f64, f64) {
    let s2 = (2.0 * log_s).exp();
    let half_log_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
    let value = -half_log_2pi - 0.5 * (m * m + s2) - 0.5 * ((Y - m).powi(2) + s2) + 0.5 + log_s;
    (value, Y - 2.0 * m, 1.0 - 2.0 * s2)
}

#[test]
fn elbo_of_the_conjugate_gaussian_model_matches_its_closed_form() {
    // (m, log_s, sd of one value, d/dm and d/dlog_s estimate), sd = 1.5× numpy's: one estimate
    // is log p(y) + log p(x|y) − log q(x) at x = m + sε; its gradient y − 2x in m and
    // (y − 2x)·sε + 1 in log_s (log q(m + sε) = −log s − ε²/2 + const).
    let points = [(0.0, 0.0, 2.5, 3.0, 4.8), (1.0, -0.5, 0.54, 1.9, 1.7), (-0.5, 0.3, 5.8, 4.1, 9.3)];
    let samples = 20_000;
    let optimum = (Y / 2.0, -0.5 * 2f64.ln());
    let mut program = GAUSSIAN.to_string();
    for (k, (m, log_s)) in points.iter().map(|p| (p.0, p.1)).chain([optimum]).enumerate() {
        program.push_str(&format!("param m{k}: real = {m:?};\nparam log_s{k}: real = {log_s:?};\n"));
    }
    for k in 0..=points.len() {
        let objective = format!("elbo(model(), guide(m{k}, log_s{k}), obs)");
        program.push_str(&format!("print estimate({objective}, samples: {samples});\n"));
        program.push_str(&format!("print grad({objective}, samples: {samples});\n"));
    }
    let reports = run_json("elbo", &program, 11);
    assert_eq!(reports.len(), 2 * (points.len() + 1), "one report per print:\n{program}");

    let mut failures = Vec::new();
    for (k, &(m, log_s, sd_value, sd_m, sd_log_s)) in points.iter().enumerate() {
        let (value, d_m, d_log_s) = gaussian_elbo(m, log_s);
        let (estimate_report, grad_report) = (&reports[2 * k], &reports[2 * k + 1]);
        for result in [
            check(estimate(estimate_report), value, 0.0, sd_value),
            check(grad(grad_report, &format!("m{k}")), d_m, 0.0, sd_m),
            check(grad(grad_report, &format!("log_s{k}")), d_log_s, 0.0, sd_log_s),
        ] {
            failures.extend(result.err());
        }
    }

    // At the optimum q is the posterior: every estimate is log p(y) + log p(x|y) − log q(x) =
    // log p(y) exactly (up to rounding), so the mean is exact and the standard error ~0. The
    // gradient is 0 in expectation; one estimate is −2sε in m and −2s²ε² + 1 in log_s (sd √2).
    let k = points.len();
    let (optimum_value, _, _) = gaussian_elbo(optimum.0, optimum.1);
    assert!((optimum_value - log_evidence()).abs() < 1e-14, "the closed forms disagree at the optimum");
    let (stat, source) = estimate(&reports[2 * k]);
    if (stat.mean - log_evidence()).abs() > 1e-9 || stat.stderr > 1e-12 {
        failures.push(format!(
            "`{source}` at the optimum: mean {:.12} ± {:.2e}, expected exactly log N(y; 0, √2) = {:.12} with \
             stderr ~0 (zero-variance estimator)",
            stat.mean,
            stat.stderr,
            log_evidence()
        ));
    }
    failures.extend(check(grad(&reports[2 * k + 1], &format!("m{k}")), 0.0, 0.0, 2.2).err());
    failures.extend(check(grad(&reports[2 * k + 1], &format!("log_s{k}")), 0.0, 0.0, 2.2).err());
    assert_no_failures("elbo", failures, &program);
}

// ---------------------------------------------------------------------------------------------
// 2. IWELBO(n)
// ---------------------------------------------------------------------------------------------

/// At (m, log_s) = (0, 0), q = N(0, 1) against the posterior N(0.75, √½). References for
/// n ≥ 2: numpy, 20M particles per n (mean, its standard error, sd of one estimate).
const IWELBO_REFERENCES: [(usize, usize, f64, f64, f64); 5] = [
    // (n, samples, reference, reference se, sd of one estimate)
    (1, 20_000, f64::NAN, 0.0, 1.658), // the closed-form ELBO
    (2, 20_000, -2.099197, 2.8e-4, 0.897),
    (5, 10_000, -1.909629, 2.2e-4, 0.435),
    (20, 6_000, -1.845653, 1.9e-4, 0.191),
    (100, 3_000, -1.831205, 1.9e-4, 0.0828),
];

/// χ²(posterior ‖ q) = ∫ p(x|y)²/q(x) dx − 1 at q = N(0, 1), by quadrature (numpy: 0.680079).
/// The delta method gives log p(y) − IWELBO(n) = χ²/(2n) + O(n⁻²) (Burda et al.; Maddison et al.
/// 2017), the tolerance of the n = 100 check below.
fn chi2_posterior_vs_standard_normal() -> f64 {
    let (lo, hi, steps) = (-30.0, 30.0, 600_000);
    let h = (hi - lo) / steps as f64;
    let mut total = 0.0;
    for i in 0..=steps {
        let x = lo + h * i as f64;
        let weight = if i == 0 || i == steps { 0.5 } else { 1.0 };
        total += weight * normal_pdf(x, Y / 2.0, 0.5f64.sqrt()).powi(2) / normal_pdf(x, 0.0, 1.0);
    }
    total * h - 1.0
}

#[test]
fn iwelbo_is_at_least_the_elbo_increases_with_n_and_tends_to_log_evidence() {
    let mut program = format!("{GAUSSIAN}param m: real = 0.0;\nparam log_s: real = 0.0;\n");
    for (n, samples, ..) in IWELBO_REFERENCES {
        program.push_str(&format!("print estimate(iwelbo(model(), guide(m, log_s), obs, {n}), samples: {samples});\n"));
    }
    let reports = run_json("iwelbo", &program, 12);
    assert_eq!(reports.len(), IWELBO_REFERENCES.len(), "one report per print:\n{program}");

    let (elbo, _, _) = gaussian_elbo(0.0, 0.0);
    let log_p = log_evidence();
    let mut failures = Vec::new();
    let mut stats = Vec::new();
    for ((n, _, reference, reference_se, sd), report) in IWELBO_REFERENCES.into_iter().zip(&reports) {
        let reference = if n == 1 { elbo } else { reference };
        let stat = estimate(report);
        failures.extend(check(stat.clone(), reference, reference_se, 1.5 * sd).err());
        // Never above log p(y) (Jensen), never below the ELBO.
        let (s, source) = stat.clone();
        if s.mean > log_p + Z * s.stderr || s.mean < elbo - Z * s.stderr {
            failures.push(format!(
                "`{source}`: mean {:.6} ± {:.1e} outside [ELBO {elbo:.6}, log p(y) {log_p:.6}]",
                s.mean, s.stderr
            ));
        }
        stats.push((n, s));
    }
    // Increasing in n: the gaps between consecutive references (0.44, 0.19, 0.064, 0.0144) are
    // at least 5 combined standard errors of these runs, so each mean must exceed the previous one.
    for pair in stats.windows(2) {
        let ((n1, a), (n2, b)) = (pair[0], pair[1]);
        if b.mean <= a.mean {
            failures.push(format!(
                "IWELBO({n2}) = {:.6} ± {:.1e} is not above IWELBO({n1}) = {:.6} ± {:.1e}",
                b.mean, b.stderr, a.mean, a.stderr
            ));
        }
    }
    // n = 100: log p(y) − IWELBO(100) = χ²/200 + O(n⁻²) = 0.0034 (numpy: 0.00319 ± 0.0002). Allow
    // 0.001 for the O(n⁻²) term and the usual 4 standard errors.
    let chi2 = chi2_posterior_vs_standard_normal();
    assert!((chi2 - 0.680079).abs() < 1e-5, "χ² by quadrature: {chi2}");
    let (_, s) = stats[stats.len() - 1];
    let predicted = log_p - chi2 / 200.0;
    if (s.mean - predicted).abs() > 0.001 + Z * s.stderr {
        failures.push(format!(
            "IWELBO(100) = {:.6} ± {:.1e}, expected log p(y) − χ²/(2n) = {predicted:.6} (log p(y) = {log_p:.6}) \
             within 0.001 + {Z} stderr",
            s.mean, s.stderr
        ));
    }
    assert_no_failures("iwelbo", failures, &program);
}

/// IWELBO(1) is the ELBO estimator itself: on every stream, its value and gradient equal the
/// ELBO's (logsumexp of one weight minus log 1 is that weight).
#[test]
fn iwelbo_with_one_particle_is_the_elbo_on_every_stream() {
    let program = format!(
        "{GAUSSIAN}param m: real = 0.4;\nparam log_s: real = -0.3;\n\
         print grad(elbo(model(), guide(m, log_s), obs));\n\
         print grad(iwelbo(model(), guide(m, log_s), obs, 1));\n"
    );
    let objectives = compile(&program);
    assert_eq!(objectives.len(), 2);
    let (elbo, iwelbo) = (&objectives[0].1, &objectives[1].1);
    let params = [0.4, -0.3];
    for stream in 0..200 {
        let a = run_on_stream(&elbo.reverse, &params, 5, stream);
        let b = run_on_stream(&iwelbo.reverse, &params, 5, stream);
        assert_eq!(a.len(), 3, "value and two gradients: {a:?}");
        assert!(
            a.iter().zip(&b).all(|(x, y)| agree(*x, *y, 1e-12)),
            "stream {stream}: elbo (value, d/dm, d/dlog_s) = {a:?}, iwelbo(…, 1) = {b:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. marginal
// ---------------------------------------------------------------------------------------------

/// `aux(m)`: u ~ N(m, 1), x ~ N(u, 1), so x ~ N(m, √2). `prop(c)`: u ~ N(c, 1.5).
///
/// (a) `exp(density(marginal(…), {x: X0}))` = (1/K) Σ q(X0, uᵢ)/r(uᵢ), uᵢ ~ r, is unbiased for
/// N(X0; m, √2) and its derivative (X0 − m)/2 · N(X0; m, √2).
///
/// (b) With (t, log_w) = sim(marginal(…)), E[exp(−log_w) | x] = 1/q(x), so
/// E[exp(−log_w)·N(t.x; 0, 1)] = ∫ N(x; 0, 1) dx = 1 for every m (derivative 0). K = 1 is not
/// tested: with K = 1, exp(−log_w) = 1/q(x | u₀) and E[(1/q(x | u₀))² …] = ∫ r(u)/q(x | u) du ·…
/// diverges (the integrand's exponent is linear in u), so its variance is infinite whatever the
/// test function (numpy: sample sd 3.3, 4.3, 4.6 on three runs of 2M). K = 2 has finite variance
/// but an infinite fourth moment; K = 5 (default proposal) and K = 8 (`prop`, wider than the
/// prior, whose weights vanish in the tails) have finite moments beyond the fourth.
#[test]
fn marginal_density_and_sim_weights_are_unbiased() {
    let (m, x0, c) = (0.4, 1.0, -0.3);
    let program = format!(
        "gen aux(m: real) {{ u ~ normal(m, 1.0); x ~ normal(u, 1.0); }}
gen prop(c: real) {{ u ~ normal(c, 1.5); }}
param m: real = {m:?};
fn dens(m, k) {{ E {{ exp(density(marginal(aux(m), select(x), sir(k)), {{ x: {x0:?} }})) }} }}
fn dens_prop(m, k) {{ E {{ exp(density(marginal(aux(m), select(x), sir(k, prop({c:?}))), {{ x: {x0:?} }})) }} }}
fn recip(m, k) {{
    E {{
        let (t, log_w) = sim(marginal(aux(m), select(x), sir(k)));
        exp(-log_w) * exp(-0.5 * t.x^2) / sqrt(2.0 * pi)
    }}
}}
fn recip_prop(m, k) {{
    E {{
        let (t, log_w) = sim(marginal(aux(m), select(x), sir(k, prop({c:?}))));
        exp(-log_w) * exp(-0.5 * t.x^2) / sqrt(2.0 * pi)
    }}
}}
"
    );
    // (objective, value, derivative, sd of one value, of one derivative): 1.5× numpy's sd for
    // (a), 2× for (b), whose tails are heavier (see above).
    let density = normal_pdf(x0, m, 2f64.sqrt());
    let d_density = density * (x0 - m) / 2.0;
    let cases = [
        ("dens(m, 1)", density, d_density, 0.19, 0.24),
        ("dens(m, 5)", density, d_density, 0.083, 0.11),
        ("dens_prop(m, 1)", density, d_density, 0.40, 0.36),
        ("dens_prop(m, 5)", density, d_density, 0.18, 0.17),
        ("recip(m, 5)", 1.0, 0.0, 1.25, 2.2),
        ("recip_prop(m, 8)", 1.0, 0.0, 1.25, 2.35),
    ];
    let samples = 20_000;
    let mut program = program;
    for (objective, ..) in cases {
        program.push_str(&format!("print estimate({objective}, samples: {samples});\n"));
        program.push_str(&format!("print grad({objective}, samples: {samples});\n"));
    }
    let reports = run_json("marginal", &program, 13);
    assert_eq!(reports.len(), 2 * cases.len(), "one report per print:\n{program}");
    let mut failures = Vec::new();
    for (k, (_, value, derivative, sd_value, sd_derivative)) in cases.into_iter().enumerate() {
        failures.extend(check(estimate(&reports[2 * k]), value, 0.0, sd_value).err());
        failures.extend(check(grad(&reports[2 * k + 1], "m"), derivative, 0.0, sd_derivative).err());
    }
    assert_no_failures("marginal", failures, &program);
}

// ---------------------------------------------------------------------------------------------
// 4. normalize
// ---------------------------------------------------------------------------------------------

/// SIR with n particles from the proposal N(0, e^0.5) for the posterior N(0.75, √½): the
/// selected x has E[x], E[x²] given by numpy (Rao–Blackwellised over 40M particles per n):
/// (n, samples, E[x], its se, sd of x, E[x²], its se, sd of x²). n = 1 is the proposal itself:
/// E[x] = 0, E[x²] = e, sd e^0.5 and √2·e.
type SirReference = (usize, usize, f64, f64, f64, f64, f64, f64);
const SIR_REFERENCES: [SirReference; 3] = [
    (1, 20_000, 0.0, 0.0, 1.6487, std::f64::consts::E, 0.0, 3.844),
    (10, 40_000, 0.73166, 1.3e-4, 0.743, 1.08877, 2.4e-4, 1.339),
    (100, 6_000, 0.74852, 1.2e-4, 0.711, 1.06456, 2.1e-4, 1.283),
];

#[test]
fn normalize_samples_approach_the_posterior_as_particles_grow() {
    let mut program = format!(
        "{GAUSSIAN}
fn draw_x(n) {{ E {{ let (t, log_w) = sim(normalize(posterior(model(), obs), sir(n, guide(0.0, 0.5)))); t.x }} }}
fn draw_x2(n) {{ E {{ let (t, log_w) = sim(normalize(posterior(model(), obs), sir(n, guide(0.0, 0.5)))); t.x^2 }} }}
// exp(log p(x, obs) − log_w) is SIR's evidence estimate (1/n) Σ wᵢ, unbiased for p(y).
fn evidence(n) {{
    E {{
        let (t, log_w) = sim(normalize(posterior(model(), obs), sir(n, guide(0.0, 0.5))));
        exp(density(model(), t ++ obs) - log_w)
    }}
}}
"
    );
    for (n, samples, ..) in SIR_REFERENCES {
        program.push_str(&format!("print estimate(draw_x({n}), samples: {samples});\n"));
        program.push_str(&format!("print estimate(draw_x2({n}), samples: {samples});\n"));
    }
    program.push_str("print estimate(evidence(10), samples: 10000);\n");
    let reports = run_json("normalize", &program, 14);
    assert_eq!(reports.len(), 2 * SIR_REFERENCES.len() + 1, "one report per print:\n{program}");

    let (post_mean, post_second) = (Y / 2.0, Y * Y / 4.0 + 0.5);
    let mut failures = Vec::new();
    let mut errors = Vec::new();
    for (k, (n, _, mean, mean_se, sd, second, second_se, sd2)) in SIR_REFERENCES.into_iter().enumerate() {
        let first = estimate(&reports[2 * k]);
        let squares = estimate(&reports[2 * k + 1]);
        failures.extend(check(first.clone(), mean, mean_se, 1.5 * sd).err());
        failures.extend(check(squares.clone(), second, second_se, 1.5 * sd2).err());
        errors.push((n, first.0, squares.0));
    }
    // The error shrinks. Each n's moments are SIR's with n particles (checked above against
    // numpy, whose biases are E[x]: −0.75, −0.018, −0.0015 and E[x²]: +1.66, +0.026, +0.0021 for
    // n = 1, 10, 100, O(1/n)). Here: n = 1 is far from the posterior, and at n = 100 the mean and
    // second moment are the posterior's within SIR's remaining bias plus 4 standard errors.
    // (Telling n = 10 from n = 100 directly, at 4 standard errors, would need ~3·10⁶ particles at
    // n = 100, ~5 s: the standard error of these 6000 runs, ~0.009, is half the n = 10 bias.)
    for &(n, first, squares) in &errors {
        let (e1, e2) = ((first.mean - post_mean).abs(), (squares.mean - post_second).abs());
        let wrong = match n {
            1 => e1 < 0.5 || e2 < 1.0,
            100 => e1 > 0.0015 + Z * first.stderr || e2 > 0.0021 + Z * squares.stderr,
            _ => false,
        };
        if wrong {
            failures.push(format!(
                "SIR(n = {n}): E[x] = {:.5} ± {:.1e}, E[x²] = {:.5} ± {:.1e}; the posterior's are {post_mean}, \
                 {post_second}",
                first.mean, first.stderr, squares.mean, squares.stderr,
            ));
        }
    }
    // SIR's evidence estimate: sd of one estimate 0.049 (numpy) for n = 10.
    let p_y = log_evidence().exp();
    failures.extend(check(estimate(&reports[2 * SIR_REFERENCES.len()]), p_y, 0.0, 0.074).err());
    assert_no_failures("normalize", failures, &program);
}

// ---------------------------------------------------------------------------------------------
// 5. Reweighted wake–sleep
// ---------------------------------------------------------------------------------------------

/// On the same stream, the reverse-mode gradients of `wake_p` and `wake_q` equal hand-written
/// self-normalised importance-weighted gradients, computed as the *value* of objectives that
/// draw the same particles in the same order:
/// d/dmu log p(x, y) = x − mu (model x ~ N(mu, 1), y ~ N(x, 1));
/// d/dm log N(x; m, s) = (x − m)/s², d/dlog_s log N(x; m, s) = (x − m)²/s² − 1.
/// The particles come from `detach(q)` and the weights are detached, so `wake_p` has gradient
/// exactly 0 in the guide's parameters and `wake_q` exactly 0 in the model's.
#[test]
fn wake_sleep_gradients_are_self_normalised_importance_weighted_gradients() {
    let rows = |last: &str| {
        format!(
            "E {{
        let rows = [{{
            let (t, log_q) = sim(detach(guide(m, log_s)));
            [detach(density(model(mu), t ++ obs) - log_q), {last}]
        }} for _ in 0..4];
        sum(softmax(rows @ [1.0, 0.0]) * (rows @ [0.0, 1.0]))
    }}"
        )
    };
    let program = format!(
        "gen model(mu: real) {{ x ~ normal(mu, 1.0); y ~ normal(x, 1.0); }}
gen guide(m: real, log_s: real) {{ x ~ normal(m, exp(log_s)); }}
param mu: real = 0.3;
param m: real = 0.9;
param log_s: real = -0.4;
data obs = {{ y: 1.5 }};
fn hand_p(mu, m, log_s) {{ {} }}
fn hand_q_m(mu, m, log_s) {{ {} }}
fn hand_q_log_s(mu, m, log_s) {{ {} }}
print grad(wake_p(model(mu), guide(m, log_s), obs, 4));
print grad(wake_q(model(mu), guide(m, log_s), obs, 4));
print estimate(hand_p(mu, m, log_s));
print estimate(hand_q_m(mu, m, log_s));
print estimate(hand_q_log_s(mu, m, log_s));
",
        rows("t.x - mu"),
        rows("(t.x - m) / exp(2.0 * log_s)"),
        rows("(t.x - m)^2 / exp(2.0 * log_s) - 1.0"),
    );
    let objectives = compile(&program);
    assert_eq!(objectives.len(), 5, "five objectives: {:?}", objectives.iter().map(|o| &o.0).collect::<Vec<_>>());
    let [wake_p, wake_q, hand_p, hand_q_m, hand_q_log_s] = [0, 1, 2, 3, 4].map(|i| &objectives[i].1);
    let mut failures = Vec::new();
    for (seed, params) in [(21, [0.3, 0.9, -0.4]), (22, [-1.0, 0.2, 0.5])] {
        for stream in 0..200 {
            let p = run_on_stream(&wake_p.reverse, &params, seed, stream);
            let q = run_on_stream(&wake_q.reverse, &params, seed, stream);
            assert_eq!((p.len(), q.len()), (4, 4), "value and three gradients: {p:?} {q:?}");
            let p_value = run_on_stream(&wake_p.primal, &params, seed, stream)[0];
            let q_value = run_on_stream(&wake_q.primal, &params, seed, stream)[0];
            let hand_mu = run_on_stream(&hand_p.primal, &params, seed, stream)[0];
            let hand_m = run_on_stream(&hand_q_m.primal, &params, seed, stream)[0];
            let hand_log_s = run_on_stream(&hand_q_log_s.primal, &params, seed, stream)[0];
            let at = format!("seed {seed}, stream {stream}, (mu, m, log_s) = {params:?}");
            if !agree(p[0], p_value, 1e-12) || !agree(q[0], q_value, 1e-12) {
                failures.push(format!(
                    "{at}: reverse-mode values {}, {} differ from the primal values {p_value}, {q_value}",
                    p[0], q[0]
                ));
            }
            if !agree(p[1], hand_mu, 1e-12) {
                failures.push(format!("{at}: wake_p d/dmu = {:.17}, hand-computed {hand_mu:.17}", p[1]));
            }
            if p[2] != 0.0 || p[3] != 0.0 {
                failures.push(format!("{at}: wake_p d/dm, d/dlog_s = {}, {} (expected exactly 0)", p[2], p[3]));
            }
            if q[1] != 0.0 {
                failures.push(format!("{at}: wake_q d/dmu = {} (expected exactly 0)", q[1]));
            }
            if !agree(q[2], hand_m, 1e-12) || !agree(q[3], hand_log_s, 1e-12) {
                failures.push(format!(
                    "{at}: wake_q (d/dm, d/dlog_s) = ({:.17}, {:.17}), hand-computed ({hand_m:.17}, {hand_log_s:.17})",
                    q[2], q[3]
                ));
            }
        }
    }
    let shown: Vec<String> = failures.iter().take(10).cloned().collect();
    assert_no_failures("wake-sleep", shown, &program);
}

// ---------------------------------------------------------------------------------------------
// 6. A discrete latent in model and guide
// ---------------------------------------------------------------------------------------------

/// Model: b ~ flip(0.3); x ~ N(−2, 1) if b else N(2, 1); y ~ N(x, 1). Guide: b ~ flip(p);
/// x ~ N(m1, 1) if b else N(m2, 1). With μ_b = ∓2, m_b = m1 / m2, q(b) = p / 1 − p,
/// ELBO = Σ_b q(b)[log p(b) − log q(b) + g(m_b, μ_b)], where
/// g(m, μ) = E_{x~N(m,1)}[log N(x; μ, 1) + log N(y; x, 1) − log N(x; m, 1)]
///         = −½log 2π − ½(m − μ)² − ½(y − m)² − ½
/// (E[log N(x; μ, 1)] = −½log 2π − ½((m − μ)² + 1), likewise for y, and the entropy ½log 2π + ½).
/// d/dp = log(0.3/p) + g(m1, −2) − log(0.7/(1 − p)) − g(m2, 2) (the −1 and +1 from d(q log q)
/// cancel), d/dm1 = p(y − 2 − 2m1), d/dm2 = (1 − p)(y + 2 − 2m2). Checked in numpy against
/// quadrature and central differences.
fn mixture_elbo(p: f64, m1: f64, m2: f64) -> [f64; 4] {
    let g = |m: f64, mu: f64| {
        -0.5 * (2.0 * std::f64::consts::PI).ln() - 0.5 * (m - mu).powi(2) - 0.5 * (Y - m).powi(2) - 0.5
    };
    let (g1, g2) = (g(m1, -2.0), g(m2, 2.0));
    let value = p * ((0.3 / p).ln() + g1) + (1.0 - p) * ((0.7 / (1.0 - p)).ln() + g2);
    let d_p = (0.3 / p).ln() + g1 - (0.7 / (1.0 - p)).ln() - g2;
    [value, d_p, p * (Y - 2.0 - 2.0 * m1), (1.0 - p) * (Y + 2.0 + -2.0 * m2)]
}

#[test]
fn elbo_with_a_discrete_latent_agrees_across_reinforce_enum_and_mvd() {
    assert!((mixture_elbo(0.4, -1.0, 1.2)[0] - -3.1105209542890297).abs() < 1e-12);
    // `x` is bound by a `let` because a choice inside a branch is scoped to that branch's block.
    let mut program = String::from(
        "gen mix() {
    b ~ flip(0.3);
    let x = if b { x ~ normal(-2.0, 1.0); x } else { x ~ normal(2.0, 1.0); x };
    y ~ normal(x, 1.0);
}
data obs = { y: 1.5 };
",
    );
    let estimators = ["reinforce", "enum", "mvd"];
    for estimator in estimators {
        program.push_str(&format!(
            "gen g_{estimator}(p: real, m1: real, m2: real) {{
    b ~ flip(p) via {estimator};
    if b {{ x ~ normal(m1, 1.0); }} else {{ x ~ normal(m2, 1.0); }}
}}
"
        ));
    }
    // (p, m1, m2, then for reinforce, enum, mvd: sd of one value, d/dp, d/dm1, d/dm2): 1.5× the
    // larger of numpy's sd with the two branches of enum/mvd sharing randomness or not.
    let points: [([f64; 3], [[f64; 4]; 3]); 2] = [
        ([0.4, -1.0, 1.2], [[3.5, 15.6, 2.2, 2.5], [2.2, 3.2, 1.2, 1.8], [3.5, 4.4, 2.2, 2.5]]),
        ([0.15, 0.0, 0.5], [[3.7, 20.7, 1.2, 3.1], [3.3, 4.5, 0.45, 2.6], [3.7, 6.2, 1.2, 3.1]]),
    ];
    let samples = 20_000;
    for (k, (params, _)) in points.iter().enumerate() {
        program.push_str(&format!(
            "param p{k}: real = {:?};\nparam m1_{k}: real = {:?};\nparam m2_{k}: real = {:?};\n",
            params[0], params[1], params[2]
        ));
    }
    for k in 0..points.len() {
        for estimator in estimators {
            let objective = format!("elbo(mix(), g_{estimator}(p{k}, m1_{k}, m2_{k}), obs)");
            program.push_str(&format!("print estimate({objective}, samples: {samples});\n"));
            program.push_str(&format!("print grad({objective}, samples: {samples});\n"));
        }
    }
    let reports = run_json("mixture", &program, 16);
    assert_eq!(reports.len(), 2 * estimators.len() * points.len(), "one report per print:\n{program}");

    let mut failures = Vec::new();
    let mut reports = reports.iter();
    for (k, (params, sds)) in points.iter().enumerate() {
        let exact = mixture_elbo(params[0], params[1], params[2]);
        let mut stats: Vec<Vec<(Stat, String)>> = Vec::new();
        for sd in sds {
            let value_report = reports.next().expect("counted");
            let grad_report = reports.next().expect("counted");
            let row = vec![
                estimate(value_report),
                grad(grad_report, &format!("p{k}")),
                grad(grad_report, &format!("m1_{k}")),
                grad(grad_report, &format!("m2_{k}")),
            ];
            for (i, stat) in row.iter().enumerate() {
                failures.extend(check(stat.clone(), exact[i], 0.0, sd[i]).err());
            }
            stats.push(row);
        }
        // The three estimators agree with each other.
        for (a, b) in [(0, 1), (0, 2), (1, 2)] {
            for ((x, xs), (y, _)) in stats[a].iter().zip(&stats[b]) {
                let se = x.stderr.hypot(y.stderr);
                if (x.mean - y.mean).abs() > Z * se {
                    failures.push(format!(
                        "`{xs}` under {} and {}: {:.5} vs {:.5} (> {Z} combined stderr {se:.1e})",
                        estimators[a], estimators[b], x.mean, y.mean
                    ));
                }
            }
        }
    }
    assert_no_failures("mixture", failures, &program);
}

// ---------------------------------------------------------------------------------------------
// 7. print sample
// ---------------------------------------------------------------------------------------------

#[test]
fn print_sample_reports_traces_as_json() {
    let program = "
gen inner(a: real) { z ~ normal(a, 0.5); }
gen outer(p: real) {
    x ~ normal(1.0, 2.0);
    sub ~ inner(x);
    for i in 0..3 { c[i] ~ flip(p); }
}
gen aux(m: real) { u ~ normal(m, 1.0); x ~ normal(u, 1.0); }
print sample(outer(0.3), 4000);
print sample(outer(0.3));
print sample(marginal(aux(0.4), select(x), sir(2)), 4000);
";
    let reports = run_json("sample", program, 17);
    let headers: Vec<&Value> = reports.iter().filter(|report| report["kind"] == "sample").collect();
    assert_eq!(headers.len(), 3, "one report per print:\n{program}");
    let mut traces = Vec::new();
    for (report, source, count) in [
        (headers[0], "sample(outer(0.3), 4000)", 4000),
        (headers[1], "sample(outer(0.3))", 1),
        (headers[2], "sample(marginal(aux(0.4), select(x), sir(2)), 4000)", 4000),
    ] {
        let keys: Vec<&str> = report.as_object().expect("an object").keys().map(String::as_str).collect();
        assert_eq!(keys, ["kind", "source", "samples"], "{report}");
        assert_eq!(report["source"], source);
        assert_eq!(report["samples"], count);
        traces.push(traces_of(&reports, source));
        assert_eq!(traces.last().map(Vec::len), Some(count as usize), "{source}");
    }

    // outer: {x: real, sub: {z: real}, c: [bool; 3]}.
    let (mut xs, mut dz, mut flips) = (Vec::new(), Vec::new(), Vec::new());
    for trace in traces[0].iter().chain(&traces[1]) {
        let fields = trace.as_object().unwrap_or_else(|| panic!("a trace is an object: {trace}"));
        let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(names, ["c", "sub", "x"], "{trace}");
        let x = trace["x"].as_f64().unwrap_or_else(|| panic!("x is a number: {trace}"));
        let sub = trace["sub"].as_object().unwrap_or_else(|| panic!("sub is a nested record: {trace}"));
        assert_eq!(sub.keys().collect::<Vec<_>>(), ["z"], "{trace}");
        let z = sub["z"].as_f64().unwrap_or_else(|| panic!("sub.z is a number: {trace}"));
        let c = trace["c"].as_array().unwrap_or_else(|| panic!("c is an array: {trace}"));
        assert_eq!(c.len(), 3, "{trace}");
        for flip in c {
            flips.push(if flip.as_bool().unwrap_or_else(|| panic!("c holds booleans: {trace}")) { 1.0 } else { 0.0 });
        }
        xs.push(x);
        dz.push(z - x);
    }
    // The draws follow the model: x ~ N(1, 2), z − x ~ N(0, 0.5), c[i] ~ flip(0.3).
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let sd = |v: &[f64]| {
        let m = mean(v);
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
    };
    let n = xs.len() as f64;
    assert!((mean(&xs) - 1.0).abs() < Z * 2.0 / n.sqrt(), "mean of x: {}", mean(&xs));
    assert!((sd(&xs) - 2.0).abs() < Z * 2.0 / (2.0 * n).sqrt(), "sd of x: {}", sd(&xs));
    assert!(mean(&dz).abs() < Z * 0.5 / n.sqrt(), "mean of z − x: {}", mean(&dz));
    assert!((sd(&dz) - 0.5).abs() < Z * 0.5 / (2.0 * n).sqrt(), "sd of z − x: {}", sd(&dz));
    let p_sd = (0.3f64 * 0.7).sqrt() / (flips.len() as f64).sqrt();
    assert!((mean(&flips) - 0.3).abs() < Z * p_sd, "frequency of c[i]: {}", mean(&flips));

    // A marginal's trace holds only the selected address, distributed as N(m, √2).
    let marginal: Vec<f64> = traces[2]
        .iter()
        .map(|trace| {
            let fields = trace.as_object().unwrap_or_else(|| panic!("a trace is an object: {trace}"));
            assert_eq!(fields.keys().collect::<Vec<_>>(), ["x"], "{trace}");
            trace["x"].as_f64().unwrap_or_else(|| panic!("x is a number: {trace}"))
        })
        .collect();
    let n = marginal.len() as f64;
    let s = 2f64.sqrt();
    assert!((mean(&marginal) - 0.4).abs() < Z * s / n.sqrt(), "mean of the marginal's x: {}", mean(&marginal));
    assert!((sd(&marginal) - s).abs() < Z * s / (2.0 * n).sqrt(), "sd of the marginal's x: {}", sd(&marginal));
}

/// The traces `print sample(…)` streamed for `source`, checked to come in order.
fn traces_of(reports: &[Value], source: &str) -> Vec<Value> {
    let lines = reports.iter().filter(|report| report["kind"] == "trace" && report["source"] == source);
    let mut traces = Vec::new();
    for (position, line) in lines.enumerate() {
        assert_eq!(line["index"].as_u64(), Some(position as u64), "the traces of {source} come in order");
        traces.push(line["trace"].clone());
    }
    traces
}

// ---------------------------------------------------------------------------------------------
// Addresses sampled on some paths only
// ---------------------------------------------------------------------------------------------

/// A spike: `x` exists only when the coin comes up true. Model and guide sample `x` alike, so
/// the ELBO is exactly `E_q[log p(b)/q(b)] + log N(y; 0, 1)` with `q(b) = p`, estimated with
/// zero variance under `enum`; its derivative is `log(0.3/p) − log(0.7/(1−p))`.
#[test]
fn addresses_sampled_on_some_paths_only_are_traced_and_scored() {
    let program = "gen spike() { b ~ flip(0.3); if b { x ~ normal(0.0, 1.0); } y ~ normal(0.0, 1.0); }
gen q(p: real) { b ~ flip(p) via enum; if b { x ~ normal(0.0, 1.0); } }
param p: real = 0.4;
data obs = { y: 0.5 };
print sample(q(p), 20);
print estimate(elbo(spike(), q(p), obs), samples: 100);
print grad(elbo(spike(), q(p), obs), samples: 100);
";
    let reports = run_json("optional", program, 3);
    let traces = traces_of(&reports, "sample(q(p), 20)");
    assert_eq!(traces.len(), 20);
    for trace in &traces {
        let b = trace["b"].as_bool().expect("b is always there");
        assert_eq!(trace.get("x").is_some(), b, "x is in the trace exactly when b is true: {trace}");
    }
    let p: f64 = 0.4;
    let log_normal = -0.125 - 0.5 * (2.0 * std::f64::consts::PI).ln();
    let value = p * (0.3 / p).ln() + (1.0 - p) * (0.7 / (1.0 - p)).ln() + log_normal;
    let derivative = (0.3 / p).ln() - (0.7 / (1.0 - p)).ln();
    let results: Vec<&Value> =
        reports.iter().filter(|report| report["kind"] == "estimate" || report["kind"] == "grad").collect();
    let mean = results[0]["mean"].as_f64().expect("mean");
    assert!((mean - value).abs() < 1e-12, "ELBO {mean} vs {value}");
    let gradient = results[1]["params"]["p"]["mean"].as_f64().expect("gradient");
    assert!((gradient - derivative).abs() < 1e-12, "d/dp {gradient} vs {derivative}");
}

/// Early `return`s in model and guide. Model: b ~ flip(0.3); if b, y ~ N(0, 1) and return;
/// otherwise x ~ N(0, 1), y ~ N(x, 1). Guide: b ~ flip(p); if b, return; otherwise
/// x ~ N(m, 1). With ℓ(b) = log p − log q on each path and x = m + ε,
/// ELBO = p (log(0.3/p) + log N(y; 0, 1)) + (1 − p)(log(0.7/(1 − p)) + g(m)),
/// g(m) = −½log 2π − ½m² − ½(y − m)² − ½; d/dp = ℓ(true) − E ℓ(false) (the ∓1 from
/// d(q log q) cancel), d/dm = (1 − p)(y − 2m). The sds (1.5× one estimate's, simulated):
/// under `enum` the value's is (1 − p)·√((y − 2m)² + ½), d/dm's 2(1 − p).
#[test]
fn early_returns_in_model_and_guide_match_the_closed_form() {
    let mut program = String::from(
        "gen model() {
    b ~ flip(0.3);
    if b {
        y ~ normal(0.0, 1.0);
        return 0.0;
    }
    x ~ normal(0.0, 1.0);
    y ~ normal(x, 1.0);
    x
}
data obs = { y: 0.5 };
param p: real = 0.4;
param m: real = 0.2;
print estimate(E { density(model(), { b: false, x: 0.3, y: 0.5 }) }, samples: 2);
print estimate(E { density(model(), { b: true, y: 0.5 }) }, samples: 2);
",
    );
    let estimators = ["reinforce", "enum"];
    let samples = 20_000;
    for estimator in estimators {
        program.push_str(&format!(
            "gen g_{estimator}(p: real, m: real) {{
    b ~ flip(p) via {estimator};
    if b {{
        return 1.0;
    }}
    x ~ normal(m, 1.0);
    x
}}
print estimate(elbo(model(), g_{estimator}(p, m), obs), samples: {samples});
print grad(elbo(model(), g_{estimator}(p, m), obs), samples: {samples});
"
        ));
    }
    let reports = run_json("early-return", &program, 5);
    assert_eq!(reports.len(), 2 + 2 * estimators.len(), "one report per print:\n{program}");
    let (y, p, m): (f64, f64, f64) = (0.5, 0.4, 0.2);
    let exact_density = log_normal_pdf(0.3, 0.0, 1.0) + log_normal_pdf(y, 0.3, 1.0) + 0.7f64.ln();
    assert!((number(&reports[0]["mean"], "density") - exact_density).abs() < 1e-12, "{}", reports[0]);
    let exact_density = log_normal_pdf(y, 0.0, 1.0) + 0.3f64.ln();
    assert!((number(&reports[1]["mean"], "density") - exact_density).abs() < 1e-12, "{}", reports[1]);

    let g = -0.5 * (2.0 * std::f64::consts::PI).ln() - 0.5 * m * m - 0.5 * (y - m) * (y - m) - 0.5;
    let returned = (0.3 / p).ln() + log_normal_pdf(y, 0.0, 1.0);
    let went_on = (0.7 / (1.0 - p)).ln() + g;
    let exact = [p * returned + (1.0 - p) * went_on, returned - went_on, (1.0 - p) * (y - 2.0 * m)];
    let sds = [[0.85, 7.3, 2.35], [0.65, 1.1, 1.8]];
    let mut failures = Vec::new();
    for (k, sd) in sds.iter().enumerate() {
        let (value, gradient) = (&reports[2 + 2 * k], &reports[3 + 2 * k]);
        failures.extend(check(estimate(value), exact[0], 0.0, sd[0]).err());
        failures.extend(check(grad(gradient, "p"), exact[1], 0.0, sd[1]).err());
        failures.extend(check(grad(gradient, "m"), exact[2], 0.0, sd[2]).err());
    }
    assert_no_failures("early return", failures, &program);
}

/// A `gen` function called at a loop-indexed address: three objects, each visible with
/// probability 0.9 and then at x_i ~ N(μ_i, 1) (otherwise it returns early, and x_i reads 0),
/// observed through y_i ~ N(x_i, 1). The guide's objects are visible with probability p (by
/// `enum`) at x_i ~ N(m_i, s_i). The ELBO is a sum over objects:
/// Σ_i p (log(0.9/p) + G_i) + (1 − p)(log(0.1/(1 − p)) + log N(y_i; 0, 1)), with
/// G_i = −½log 2π − ½(m_i − μ_i)² − ½(y_i − m_i)² − s_i² + log s_i + ½ (the conjugate pair's
/// expected log joint plus the guide's entropy); d/dm_i = p(μ_i + y_i − 2m_i),
/// d/dlog s_i = p(1 − 2s_i²). The sd bounds are 1.5× those of independent draws per object
/// (`enum` reruns the later objects per outcome, which only lowers them).
#[test]
fn arrays_of_traces_match_the_closed_form() {
    let program = "gen object(mu: real) {
    visible ~ flip(0.9);
    if !visible { return 0.0; }
    x ~ normal(mu, 1.0);
    x
}
gen scene(mus: vec[3]) {
    for i in 0..3 {
        obj[i] ~ object(mus[i]);
        y[i] ~ normal(obj[i].x, 1.0);
    }
}
gen object_guide(p: real, m: real, log_s: real) {
    visible ~ flip(p) via enum;
    if visible { x ~ normal(m, exp(log_s)); }
}
gen scene_guide(p: real, m: vec[3], log_s: vec[3]) {
    for i in 0..3 { obj[i] ~ object_guide(p, m[i], log_s[i]); }
}
data mus = [0.0, 1.0, -1.0];
data obs = { y: [0.5, -1.0, 2.0] };
param p: real = 0.7;
param m: vec[3] = [0.1, 0.2, 0.3];
param log_s: vec[3] = [0.0, -0.5, 0.5];
print estimate(E { density(scene(mus), { obj: [{visible: true, x: 0.3}, {visible: false, x: 0.0}, {visible: true, x: -1.0}], y: [0.5, -1.0, 2.0] }) }, samples: 2);
print estimate(E { let (t, w) = sim(scene(mus)); t.obj[1].x + (if t.obj[2].visible { 1.0 } else { 0.0 }) }, samples: 20000);
print estimate(elbo(scene(mus), scene_guide(p, m, log_s), obs), samples: 20000);
print grad(elbo(scene(mus), scene_guide(p, m, log_s), obs), samples: 20000);
";
    let reports = run_json("arrays-of-traces", program, 9);
    assert_eq!(reports.len(), 4, "one report per print:\n{program}");
    let (mus, ys) = ([0.0, 1.0, -1.0], [0.5, -1.0, 2.0]);
    // Object 1 is not visible: its x is absent, and y_1 is observed around 0.
    let density = 0.9f64.ln() * 2.0
        + 0.1f64.ln()
        + log_normal_pdf(0.3, mus[0], 1.0)
        + log_normal_pdf(ys[0], 0.3, 1.0)
        + log_normal_pdf(ys[1], 0.0, 1.0)
        + log_normal_pdf(-1.0, mus[2], 1.0)
        + log_normal_pdf(ys[2], -1.0, 1.0);
    assert!((number(&reports[0]["mean"], "density") - density).abs() < 1e-12, "{}", reports[0]);

    let (p, m, log_s) = (0.7f64, [0.1, 0.2, 0.3], [0.0f64, -0.5, 0.5]);
    let (mut value, mut d_p) = (0.0, 0.0);
    let (mut d_m, mut d_log_s) = ([0.0; 3], [0.0; 3]);
    for i in 0..3 {
        let s = log_s[i].exp();
        let g = -0.5 * (2.0 * std::f64::consts::PI).ln()
            - 0.5 * (m[i] - mus[i]).powi(2)
            - 0.5 * (ys[i] - m[i]).powi(2)
            - s * s
            + log_s[i]
            + 0.5;
        let visible = (0.9 / p).ln() + g;
        let hidden = (0.1 / (1.0 - p)).ln() + log_normal_pdf(ys[i], 0.0, 1.0);
        value += p * visible + (1.0 - p) * hidden;
        d_p += visible - hidden;
        d_m[i] = p * (mus[i] + ys[i] - 2.0 * m[i]);
        d_log_s[i] = p * (1.0 - 2.0 * s * s);
    }
    let mut failures = Vec::new();
    // E[x_1 + [visible_2]] = 0.9 μ_1 + 0.9.
    failures.extend(check(estimate(&reports[1]), 1.8, 0.0, 1.5).err());
    failures.extend(check(estimate(&reports[2]), value, 0.0, 3.5).err());
    failures.extend(check(grad(&reports[3], "p"), d_p, 0.0, 5.0).err());
    let elements = |name: &str| -> Vec<(f64, f64)> {
        let entry = &reports[3]["params"][name];
        let (means, stderrs) = (entry["mean"].as_array(), entry["stderr"].as_array());
        let (means, stderrs) = means.zip(stderrs).unwrap_or_else(|| panic!("{name} is a vector: {entry}"));
        means.iter().zip(stderrs).map(|(mean, stderr)| (number(mean, name), number(stderr, name))).collect()
    };
    let samples = 20_000;
    for (name, exact, sds) in [("m", d_m, [2.1, 1.3, 3.5]), ("log_s", d_log_s, [3.0, 1.1, 8.1])] {
        for (i, (mean, stderr)) in elements(name).into_iter().enumerate() {
            let stat = Stat { mean, stderr, samples, what: "grad" };
            failures.extend(check((stat, format!("d/d{name}[{i}]")), exact[i], 0.0, sds[i]).err());
        }
    }
    assert_no_failures("arrays of traces", failures, program);
}

/// `factor(w)` adds `w` to a trace's log density: a hand-written likelihood of the observation
/// scores exactly as the observed choice does, and trains the guide to the same posterior.
#[test]
fn a_factor_is_a_likelihood_without_an_address() {
    let program = format!(
        "gen observed() {{ x ~ normal(0.0, 1.0); y ~ normal(x, 1.0); }}\n\
         gen factored(y: real) {{ x ~ normal(0.0, 1.0); factor(-0.5 * (y - x)^2 - 0.5 * log(2.0 * pi)); }}\n\
         gen guide(m: real, log_s: real) {{ x ~ normal(m, exp(log_s)); }}\n\
         param m: real = 0.0;\nparam log_s: real = 0.0;\n\
         print estimate(E {{ density(observed(), {{ x: 0.3, y: {Y:?} }}) }}, samples: 2);\n\
         print estimate(E {{ density(factored({Y:?}), {{ x: 0.3 }}) }}, samples: 2);\n\
         print estimate(E {{ let (t, log_w) = sim(factored({Y:?})); log_w - density(factored({Y:?}), t) }}, samples: 100);\n\
         maximize E {{ let (t, log_q) = sim(guide(m, log_s)); density(factored({Y:?}), t) - log_q }}\n\
             with {{ optimizer: adam(lr: 0.05), steps: 2000, particles: 16, seed: 1, schedule: \"cosine\" }};\n"
    );
    let reports = run_json("factor", &program, 3);
    let (observed, factored) = (number(&reports[0]["mean"], "observed"), number(&reports[1]["mean"], "factored"));
    assert!((observed - factored).abs() < 1e-12, "{observed} vs {factored}");
    assert!((observed - (log_normal_pdf(0.3, 0.0, 1.0) + log_normal_pdf(Y, 0.3, 1.0))).abs() < 1e-12);
    assert_eq!(number(&reports[2]["mean"], "sim's weight is the density"), 0.0);
    let m = number(&reports[3]["params"]["m"], "m");
    assert!((m - Y / 2.0).abs() < 0.02, "m = {m}");
    let objective = number(&reports[3]["objective"]["mean"], "the trained ELBO");
    assert!((objective - log_evidence()).abs() < 0.01, "{objective} vs {}", log_evidence());
}

/// A vector of discrete observations (`[true, false, …]`) constrains indexed choices: its
/// density is the sum over the elements, and a logistic regression trains on it.
#[test]
fn vectors_of_bool_observations_are_conditioned_on() {
    let program = "data X = [[1.0, 0.5], [1.0, -1.5], [1.0, 2.0], [1.0, -0.3], [1.0, 0.9]];\n\
        data obs = { y: [true, false, true, false, true] };\n\
        gen coins(p: real) { for n in 0..5 { y[n] ~ flip(p); } }\n\
        gen model() {\n\
            w ~ mv_normal_diag(zeros(2), ones(2));\n\
            for n in 0..5 { y[n] ~ flip(sigmoid(dot(X[n], w))); }\n\
        }\n\
        gen guide(m: vec[2], s: vec[2]) { w ~ mv_normal_diag(m, exp(s)); }\n\
        param m: vec[2] = zeros(2);\nparam s: vec[2] = zeros(2);\n\
        print estimate(E { density(coins(0.25), obs) }, samples: 2);\n\
        maximize elbo(model(), guide(m, s), obs) with { optimizer: adam(lr: 0.05), steps: 1000, particles: 8, seed: 2 };\n";
    let reports = run_json("bool-observations", program, 1);
    let density = number(&reports[0]["mean"], "density");
    assert!((density - (3.0 * 0.25f64.ln() + 2.0 * 0.75f64.ln())).abs() < 1e-12, "{density}");
    // More successes where X[n][1] is large: the slope's posterior mean is positive.
    let slope = number(&reports[1]["params"]["m"][1], "slope");
    assert!(slope > 0.5, "slope {slope}");
}

/// `density` of a distribution is its exact log density, anywhere; with `factor` and
/// `logsumexp` it sums a mixture's assignments out by hand.
#[test]
fn the_density_of_a_distribution_writes_likelihoods_by_hand() {
    let program = "print density(normal(0.0, 1.0), 0.3), density(poisson(2.0), 3), density(flip(0.25), true), density(normal(0.0, 1.0), [0.3, -1.0]);\n\
        data ys = [0.1, 2.2];\n\
        gen summed() {\n\
            mu ~ normal(2.0, 1.0);\n\
            for i in 0..2 { factor(logsumexp([log(0.5) + density(normal(0.0, 0.5), ys[i]), log(0.5) + density(normal(mu, 0.5), ys[i])])); }\n\
        }\n\
        fn by_hand(mu) { E { density(summed(), { mu: mu }) } }\n\
        print estimate(by_hand(1.7), samples: 2);\n";
    let reports = run_json("density-of-distributions", program, 1);
    let values: Vec<f64> = reports[..4].iter().map(|report| number(&report["value"], "a density")).collect();
    let expected = [
        log_normal_pdf(0.3, 0.0, 1.0),
        3.0 * 2f64.ln() - 2.0 - 6f64.ln(),
        0.25f64.ln(),
        log_normal_pdf(0.3, 0.0, 1.0) + log_normal_pdf(-1.0, 0.0, 1.0),
    ];
    for (value, expected) in values.iter().zip(expected) {
        assert!((value - expected).abs() < 1e-12, "{values:?} vs {expected}");
    }
    // log p(mu) + Σᵢ log(½N(yᵢ; 0, ½) + ½N(yᵢ; mu, ½)) at mu = 1.7.
    let mixture = |y: f64| (0.5 * normal_pdf(y, 0.0, 0.5) + 0.5 * normal_pdf(y, 1.7, 0.5)).ln();
    let exact = log_normal_pdf(1.7, 2.0, 1.0) + mixture(0.1) + mixture(2.2);
    let by_hand = number(&reports[4]["mean"], "the summed-out density");
    assert!((by_hand - exact).abs() < 1e-12, "{by_hand} vs {exact}");
}

/// A vector of counts observes indexed `poisson` choices (and reals 0/1 observe flips): the
/// gamma–Poisson model trains to its conjugate posterior, Gamma(2 + Σk, 1 + n); an observation
/// that is not a whole number is a run-time error at the choice.
#[test]
fn vectors_of_count_observations_are_conditioned_on() {
    let program = "data counts = { k: [3, 5, 2] };\n\
        gen pois() { lam ~ gamma(2.0, 1.0); for i in 0..3 { k[i] ~ poisson(lam); } }\n\
        gen coins() { for i in 0..2 { c[i] ~ flip(0.25); } }\n\
        gen guide(a: real, b: real) { lam ~ lognormal(a, exp(b)); }\n\
        param a: real = 0.0;\nparam b: real = 0.0;\n\
        print estimate(E { density(pois(), { lam: 2.0, k: [3, 5, 2] }) }, samples: 2);\n\
        print estimate(E { density(coins(), { c: [1.0, 0.0] }) }, samples: 2);\n\
        maximize elbo(pois(), guide(a, b), counts)\n\
            with { optimizer: adam(lr: 0.05), steps: 3000, particles: 16, seed: 1, schedule: \"cosine\" };\n";
    let reports = run_json("count-observations", program, 1);
    let log_poisson = |k: f64, rate: f64| k * rate.ln() - rate - ppl_runtime::special::lgamma(k + 1.0);
    let exact = 2f64.ln() - 2.0 + log_poisson(3.0, 2.0) + log_poisson(5.0, 2.0) + log_poisson(2.0, 2.0);
    let density = number(&reports[0]["mean"], "the counts' density");
    assert!((density - exact).abs() < 1e-12, "{density} vs {exact}");
    let coins = number(&reports[1]["mean"], "the coins' density");
    assert!((coins - (0.25f64.ln() + 0.75f64.ln())).abs() < 1e-12, "{coins}");
    // log λ under Gamma(12, 4): mean ψ(12) − log 4, sd √ψ′(12).
    let (a, b) = (number(&reports[2]["params"]["a"], "a"), number(&reports[2]["params"]["b"], "b"));
    let mean = ppl_runtime::special::digamma(12.0) - 4f64.ln();
    assert!((a - mean).abs() < 0.02, "a = {a}, exact {mean}");
    assert!((b.exp() - ppl_runtime::special::trigamma(12.0).sqrt()).abs() < 0.03, "b = {b}");

    let scratch = Scratch::new("objectives-fractional-count");
    let path = scratch.file(
        "bad.ppl",
        "gen pois() { lam ~ gamma(2.0, 1.0); for i in 0..2 { k[i] ~ poisson(lam); } }\n\
         print estimate(E { density(pois(), { lam: 2.0, k: [3.0, 5.5] }) });\n",
    );
    let output =
        Command::new(env!("CARGO_BIN_EXE_ppl")).args(["run", "--color", "never"]).arg(&path).output().expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("an observation of a `poisson` choice must be a whole number, but it is 5.5"), "{stderr}");
}

/// One `~` of a discrete distribution with vector arguments draws a vector of independent
/// choices: sampled, scored, observed and enumerated element by element, so a logistic
/// regression can be written `y ~ bernoulli_logit(X @ w)`.
#[test]
fn one_choice_of_a_vector_of_discrete_values() {
    let program = "data X = [[1.0, 0.5], [1.0, -1.5], [1.0, 2.0], [1.0, -0.3], [1.0, 0.9]];\n\
        data obs = { y: [true, false, true, false, true] };\n\
        gen vectorised() { w ~ mv_normal_diag(zeros(2), ones(2)); y ~ bernoulli_logit(X @ w); }\n\
        gen looped() { w ~ mv_normal_diag(zeros(2), ones(2)); for n in 0..5 { y[n] ~ bernoulli_logit(dot(X[n], w)); } }\n\
        gen counts() { k ~ poisson([1.0, 2.0, 3.0]); }\n\
        param t: real = 0.3;\n\
        print estimate(E { density(counts(), { k: [1, 2, 3] }) }, samples: 2);\n\
        print grad(E { b ~ flip([t, 0.5]) via enum; if b[0] && b[1] { 1.0 } else { 0.0 } }, samples: 4);\n\
        print estimate(E { density(vectorised(), { w: [0.3, 1.1] } ++ obs) - density(looped(), { w: [0.3, 1.1] } ++ obs) }, samples: 2);\n";
    let reports = run_json("vector-of-discrete", program, 1);
    let log_poisson = |k: f64, rate: f64| k * rate.ln() - rate - ppl_runtime::special::lgamma(k + 1.0);
    let exact = log_poisson(1.0, 1.0) + log_poisson(2.0, 2.0) + log_poisson(3.0, 3.0);
    let density = number(&reports[0]["mean"], "the counts' density");
    assert!((density - exact).abs() < 1e-12, "{density} vs {exact}");
    // P(b₀ ∧ b₁) = 0.5t: enumeration gives its derivative exactly.
    assert_eq!(number(&reports[1]["params"]["t"]["mean"], "d/dt"), 0.5);
    let difference = number(&reports[2]["mean"], "vectorised − looped");
    assert!(difference.abs() < 1e-12, "{difference}");
}

/// Literal vectors of ints stay real vectors wherever the checker types them so (`sum([1, 2])`,
/// integer data in a normal model), and stand for counts or booleans where they observe them;
/// factors count in a `marginal`'s weights; a negative count has probability 0.
#[test]
fn int_literals_factors_and_supports_at_the_edges() {
    let program = "data ys = [28, 8];\n\
        gen normals(mu: real) { y ~ normal(fill(2, mu), [15.0, 10.0]); }\n\
        gen coins() { w ~ normal(0.0, 1.0); for i in 0..3 { y[i] ~ flip(sigmoid(w)); } }\n\
        gen inner() { x ~ normal(0.0, 1.0); factor(-100.0); }\n\
        gen outer() { s ~ inner(); factor(-1.0); }\n\
        print sum([1, 2]);\n\
        print estimate(E { density(normals(1.0), { y: ys }) }, samples: 2);\n\
        print estimate(E { density(coins(), { w: 0.0, y: [1, 0, 1] }) }, samples: 2);\n\
        print estimate(E { let (t, w) = sim(marginal(outer(), select(s), sir(3))); w - density(outer(), t) }, samples: 2);\n\
        print density(negative_binomial(1.0, 0.5), -1);\n\
        print density(flip(0.25), [true, false]);\n";
    let reports = run_json("int-literals-factors-edges", program, 1);
    assert_eq!(number(&reports[0]["value"], "sum"), 3.0);
    let normals = number(&reports[1]["mean"], "normals");
    let exact = log_normal_pdf(28.0, 1.0, 15.0) + log_normal_pdf(8.0, 1.0, 10.0);
    assert!((normals - exact).abs() < 1e-12, "{normals} vs {exact}");
    let coins = number(&reports[2]["mean"], "coins");
    assert!((coins - (log_normal_pdf(0.0, 0.0, 1.0) + 3.0 * 0.5f64.ln())).abs() < 1e-12, "{coins}");
    assert_eq!(number(&reports[3]["mean"], "marginal's weight minus the density"), 0.0);
    assert_eq!(reports[4]["value"], "-inf");
    let coins = number(&reports[5]["value"], "an array's density");
    assert!((coins - (0.25f64.ln() + 0.75f64.ln())).abs() < 1e-12, "{coins}");
}
