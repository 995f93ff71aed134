//! ADEV's three compiled forms of an objective (`semantics.md` §1–§2) checked against each other
//! and against finite differences, on identical randomness.
//!
//! Every objective is compiled by `Session::compile_objectives` into `primal`, `forward` (the
//! forward-mode rules of §1, one tangent per parameter) and `reverse` (§2: the linearised forward
//! program, transposed). Runs given the same stream draw the same numbers, so on one stream:
//!
//! - `reverse_equals_forward`: the three values agree bit for bit, and each element of the
//!   reverse gradient equals the forward tangent for the one-hot tangent of that element, for
//!   programs covering every estimator rule, control flow around choices and the estimate
//!   combinators;
//! - `random_programs_reverse_equals_forward`: the same for ~200 generated programs;
//! - `finite_differences_match_reparameterised_gradients`: central differences of `primal` on a
//!   fixed stream equal the `reverse` gradient of reparameterised programs (and of a gamma's
//!   rate, which is pathwise);
//! - `implicit_gradients_match_the_cdf`: for `gamma`'s shape and `beta`, whose sampler is an
//!   accept/reject algorithm, the reverse gradient equals the implicit-reparameterisation
//!   derivative `−(∂F/∂θ)/p` of the replayed draw, with ∂F/∂θ by finite differences of an
//!   incomplete gamma function written here (see that test for why the primal's own finite
//!   differences are not the right reference there).
//!
//! Each failure message carries the program, the objective and the numbers; each test lists
//! all its failures before failing.

use ppl::adev::Estimator;
use ppl::diagnostics::ColorChoice;
use ppl::interp::{run, RuntimeValue};
use ppl::run::{RunOptions, Session};
use ppl_runtime::Rng;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng};

// ---------------------------------------------------------------------------------------------
// Compiling and running
// ---------------------------------------------------------------------------------------------

/// A checked program's compiled objectives and its parameters' initial values.
struct Compiled {
    program: String,
    params: Vec<(String, RuntimeValue)>,
    objectives: Vec<(String, Estimator)>,
}

/// Why a program could not be compiled.
enum CompileError {
    /// The checker rejected it (rendered diagnostics).
    Check(String),
    /// The checker accepted it but the session or the compiler failed: a compiler bug.
    Compile(String),
}

fn try_compile(program: &str) -> Result<Compiled, CompileError> {
    let analysis = ppl::check_source("t.ppl", program);
    if analysis.has_errors() {
        return Err(CompileError::Check(analysis.render_diagnostics(ColorChoice::Never)));
    }
    let render = |diagnostic: ppl::diagnostics::Diagnostic| {
        ppl::diagnostics::render_all(&[diagnostic], &analysis.sources, ColorChoice::Never)
    };
    let session = Session::new(&analysis, RunOptions::default()).map_err(|d| CompileError::Compile(render(d)))?;
    let params = session.params().map(|(name, value)| (name.to_string(), value.clone())).collect();
    let objectives = session.compile_objectives().map_err(|d| CompileError::Compile(render(d)))?;
    Ok(Compiled { program: program.to_string(), params, objectives })
}

/// Compiles a program that must check and compile, with at least one objective.
fn compile(program: &str) -> Compiled {
    match try_compile(program) {
        Ok(compiled) => {
            assert!(!compiled.objectives.is_empty(), "no `estimate`/`grad` objective in\n{program}");
            compiled
        }
        Err(CompileError::Check(diagnostics)) => panic!("the program does not check:\n{program}\n{diagnostics}"),
        Err(CompileError::Compile(diagnostics)) => {
            panic!("the program checks but does not compile:\n{program}\n{diagnostics}")
        }
    }
}

fn stream(seed: u64, index: u64) -> RuntimeValue {
    RuntimeValue::Rng(Box::new(Rng::new(seed, index)))
}

/// The elements of a real, vector or matrix.
fn elements(value: &RuntimeValue) -> Option<Vec<f64>> {
    match value {
        RuntimeValue::Real(x) => Some(vec![*x]),
        RuntimeValue::Vec(data) | RuntimeValue::Mat { data, .. } => Some(data.clone()),
        _ => None,
    }
}

/// `value` with every element set to 0, except element `hot` (if any) set to 1.
fn one_hot(value: &RuntimeValue, hot: Option<usize>) -> RuntimeValue {
    let pick = |i: usize| if Some(i) == hot { 1.0 } else { 0.0 };
    match value {
        RuntimeValue::Vec(data) => RuntimeValue::Vec((0..data.len()).map(pick).collect()),
        RuntimeValue::Mat { rows, cols, data } => {
            RuntimeValue::Mat { rows: *rows, cols: *cols, data: (0..data.len()).map(pick).collect() }
        }
        _ => RuntimeValue::Real(pick(0)),
    }
}

/// `value` with element `index` replaced by `x`.
fn with_element(value: &RuntimeValue, index: usize, x: f64) -> RuntimeValue {
    let mut value = value.clone();
    match &mut value {
        RuntimeValue::Real(old) => *old = x,
        RuntimeValue::Vec(data) | RuntimeValue::Mat { data, .. } => data[index] = x,
        _ => {}
    }
    value
}

/// The arguments of a compiled objective: parameters, then the stream, then any tangents.
fn arguments(params: &[RuntimeValue], stream: RuntimeValue, tangents: Vec<RuntimeValue>) -> Vec<RuntimeValue> {
    let mut args = params.to_vec();
    args.push(stream);
    args.extend(tangents);
    args
}

/// Runs a compiled function, with its name and the stream in any error.
fn run_fn(function: &ppl::ir::Function, what: &str, args: Vec<RuntimeValue>) -> Result<Vec<RuntimeValue>, String> {
    run(function, args).map_err(|error| format!("`{what}` failed to run: {error} ({:?})", error.kind))
}

fn real_result(results: &[RuntimeValue], index: usize, what: &str) -> Result<f64, String> {
    match results.get(index) {
        Some(RuntimeValue::Real(x)) => Ok(*x),
        other => Err(format!("`{what}` result {index}: expected a real, found {other:?}")),
    }
}

/// Checks that the primal, forward and reverse functions of every objective pass the verifier.
fn verify_all(compiled: &Compiled) -> Vec<String> {
    let mut failures = Vec::new();
    for (objective, estimator) in &compiled.objectives {
        for (what, function) in
            [("primal", &estimator.primal), ("forward", &estimator.forward), ("reverse", &estimator.reverse)]
        {
            if let Err(error) = ppl::ir::verify::verify(function) {
                failures.push(format!(
                    "`{objective}`: the {what} function fails the IR verifier: {error}\n{function}\nprogram:\n{}",
                    compiled.program
                ));
            }
        }
    }
    failures
}

fn close(a: f64, b: f64, relative: f64, absolute: f64) -> bool {
    (a - b).abs() <= relative * a.abs().max(b.abs()) + absolute
}

const MODE_RELATIVE: f64 = 1e-12;
const MODE_ABSOLUTE: f64 = 1e-12;

/// What one comparison of the modes on one stream found.
enum Compared {
    /// Everything agreed; the number of gradient elements compared.
    Agreed(usize),
    /// The value is not finite (generated programs skip such a sample).
    NotFinite(f64),
}

/// Compares `primal`, `reverse` and `forward` of one objective on one stream: values bit for
/// bit, and every gradient element against the forward tangent of its one-hot direction.
fn compare_modes(compiled: &Compiled, index: usize, seed: u64, stream_index: u64) -> Result<Compared, String> {
    let (objective, estimator) = &compiled.objectives[index];
    let params: Vec<RuntimeValue> = compiled.params.iter().map(|(_, value)| value.clone()).collect();
    let context =
        || format!("objective `{objective}` on stream ({seed}, {stream_index}); program:\n{}", compiled.program);
    let fail = |message: String| format!("{message}\n  {}", context());
    if estimator.wrt.len() != params.len() + 1 {
        return Err(fail(format!("{} wrt flags for {} params and a stream", estimator.wrt.len(), params.len())));
    }
    let differentiated: Vec<usize> = (0..params.len()).filter(|i| estimator.wrt[*i]).collect();
    for (i, (name, value)) in compiled.params.iter().enumerate() {
        let expected = matches!(value, RuntimeValue::Real(_) | RuntimeValue::Vec(_) | RuntimeValue::Mat { .. });
        if estimator.wrt[i] != expected {
            return Err(fail(format!("param `{name}` ({value}) has wrt flag {}", estimator.wrt[i])));
        }
    }

    let primal =
        run_fn(&estimator.primal, "primal", arguments(&params, stream(seed, stream_index), vec![])).map_err(&fail)?;
    let primal_value = real_result(&primal, 0, "primal").map_err(&fail)?;
    if !primal_value.is_finite() {
        return Ok(Compared::NotFinite(primal_value));
    }
    let reverse =
        run_fn(&estimator.reverse, "reverse", arguments(&params, stream(seed, stream_index), vec![])).map_err(&fail)?;
    if reverse.len() != 1 + differentiated.len() {
        return Err(fail(format!(
            "reverse returned {} results for {} differentiated params",
            reverse.len(),
            differentiated.len()
        )));
    }
    let reverse_value = real_result(&reverse, 0, "reverse").map_err(&fail)?;
    if reverse_value.to_bits() != primal_value.to_bits() {
        return Err(fail(format!("values differ: primal {primal_value:e}, reverse {reverse_value:e}")));
    }

    let mut problems = Vec::new();
    let mut compared = 0;
    for (k, &param) in differentiated.iter().enumerate() {
        let (name, value) = &compiled.params[param];
        let gradient = elements(&reverse[1 + k])
            .ok_or_else(|| fail(format!("reverse gradient of `{name}` is {:?}", reverse[1 + k])))?;
        let size = elements(value).map_or(0, |e| e.len());
        if gradient.len() != size {
            return Err(fail(format!(
                "reverse gradient of `{name}` has {} elements, the param {size}",
                gradient.len()
            )));
        }
        for (element, reverse_element) in gradient.iter().enumerate() {
            let tangents = differentiated
                .iter()
                .map(|&other| one_hot(&params[other], (other == param).then_some(element)))
                .collect();
            let forward =
                run_fn(&estimator.forward, "forward", arguments(&params, stream(seed, stream_index), tangents))
                    .map_err(&fail)?;
            if forward.len() != 2 {
                return Err(fail(format!("forward returned {} results, expected 2", forward.len())));
            }
            let forward_value = real_result(&forward, 0, "forward").map_err(&fail)?;
            let tangent = real_result(&forward, 1, "forward").map_err(&fail)?;
            if forward_value.to_bits() != primal_value.to_bits() {
                problems.push(format!(
                    "value differs: primal/reverse {primal_value:e}, forward {forward_value:e} (tangent d/d{name}[{element}])"
                ));
            }
            if !close(*reverse_element, tangent, MODE_RELATIVE, MODE_ABSOLUTE) {
                problems.push(format!(
                    "d/d{name}[{element}]: reverse {reverse_element:e}, forward {tangent:e} (difference {:e})",
                    reverse_element - tangent
                ));
            }
            compared += 1;
        }
    }
    if problems.is_empty() {
        Ok(Compared::Agreed(compared))
    } else {
        Err(fail(format!("value {primal_value:e}\n  {}", problems.join("\n  "))))
    }
}

/// Compares every objective of `program` on `streams` and checks its functions with the IR
/// verifier; returns the failures.
fn check_modes(program: &str, seed: u64, streams: u64) -> Vec<String> {
    let compiled = compile(program);
    let mut failures = verify_all(&compiled);
    for index in 0..compiled.objectives.len() {
        for stream_index in 0..streams {
            match compare_modes(&compiled, index, seed, stream_index) {
                Ok(Compared::Agreed(_)) => {}
                Ok(Compared::NotFinite(value)) => failures.push(format!(
                    "objective `{}` on stream ({seed}, {stream_index}) has the non-finite value {value}; program:\n{program}",
                    compiled.objectives[index].0
                )),
                Err(failure) => failures.push(failure),
            }
        }
    }
    failures
}

fn report(test: &str, failures: &[String]) {
    assert!(failures.is_empty(), "{test}: {} failure(s):\n\n{}", failures.len(), failures.join("\n\n"));
}

// ---------------------------------------------------------------------------------------------
// 1. Reverse mode equals forward mode, rule by rule
// ---------------------------------------------------------------------------------------------

/// The parameters every hand-written case may use: two reals, a vector and a matrix.
const PARAMS: &str = "param a: real = 0.3;
param b: real = -0.4;
param v: vec[3] = [0.2, -0.5, 0.7];
param W: mat[2, 3] = [[0.3, -0.2, 0.5], [0.1, 0.4, -0.6]];
";

/// A program: [`PARAMS`], the definitions, and a `print grad(…)` per objective.
fn program_of(defs: &str, objectives: &[&str]) -> String {
    let mut program = format!("{PARAMS}\n{}\n\n", defs.trim());
    for objective in objectives {
        program.push_str(&format!("print grad({objective}, samples: 10);\n"));
    }
    program
}

/// Streams per objective in the rule-by-rule comparison.
const MODE_STREAMS: u64 = 4;

/// Each case: a name, definitions (using `a`, `b`, `v`, `W`), and objectives.
const MODE_CASES: &[(&str, &str, &[&str])] = &[
    (
        "reparam normal",
        "fn f(a, b) { E { x ~ normal(a, exp(b)); x^2 + sin(x) * a } }",
        &["f(a, b)"],
    ),
    (
        "reparam uniform",
        "fn f(a, b) { E { x ~ uniform(a - 1.0, a + exp(b)); x^3 - x * b } }",
        &["f(a, b)"],
    ),
    (
        "reparam exponential",
        "fn f(a, b) { E { x ~ exponential(exp(a)); tanh(x) + x * b } }",
        &["f(a, b)"],
    ),
    (
        "reparam laplace",
        "fn f(a, b) { E { x ~ laplace(a, exp(b)); cos(x) * a + x } }",
        &["f(a, b)"],
    ),
    (
        "reparam lognormal",
        "fn f(a, b) { E { x ~ lognormal(a, exp(b)); log(1.0 + x) + x * b } }",
        &["f(a, b)"],
    ),
    (
        "reparam cauchy",
        "fn f(a, b) { E { x ~ cauchy(a, exp(b)); tanh(x) * (a + b) + 1.0 / (1.0 + x^2) } }",
        &["f(a, b)"],
    ),
    (
        "reparam mv_normal_diag",
        "fn f(v, W) { E { x ~ mv_normal_diag(v, exp(W[0])); sum(x * x) + dot(x, W[1]) } }",
        &["f(v, W)"],
    ),
    (
        "reparam normal with vector arguments",
        "fn f(v, a) { E { x ~ normal(v, exp(a)); sum(tanh(x)) * a } }",
        &["f(v, a)"],
    ),
    (
        "implicit gamma",
        "fn f(a, b) { E { x ~ gamma(exp(a), exp(b)); log(x) + x * a } }",
        &["f(a, b)"],
    ),
    (
        "implicit gamma, small shape",
        "fn f(a, b) { E { x ~ gamma(0.3 * exp(a), 1.0); x + b * x^2 } }",
        &["f(a, b)"],
    ),
    (
        "implicit beta",
        "fn f(a, b) { E { x ~ beta(exp(a), exp(b)); x * (1.0 - x) + a * x } }",
        &["f(a, b)"],
    ),
    (
        "reinforce, continuous",
        "fn normal_(a, b) { E { x ~ normal(a, exp(b)) via reinforce; x^2 + a } }
         fn uniform_(a, b) { E { x ~ uniform(a - 1.0, a + exp(b)) via reinforce; x^2 + b } }
         fn exponential_(a, b) { E { x ~ exponential(exp(a)) via reinforce; tanh(x) * b } }
         fn laplace_(a, b) { E { x ~ laplace(a, exp(b)) via reinforce; x^2 } }
         fn lognormal_(a, b) { E { x ~ lognormal(a, exp(b)) via reinforce; log(1.0 + x) } }
         fn cauchy_(a, b) { E { x ~ cauchy(a, exp(b)) via reinforce; tanh(x) } }
         fn gamma_(a, b) { E { x ~ gamma(exp(a), exp(b)) via reinforce; x * a } }
         fn beta_(a, b) { E { x ~ beta(exp(a), exp(b)) via reinforce; x - b } }
         fn mv_(v, a) { E { x ~ mv_normal_diag(v, exp(a) * ones(3)) via reinforce; sum(x) * a } }",
        &[
            "normal_(a, b)",
            "uniform_(a, b)",
            "exponential_(a, b)",
            "laplace_(a, b)",
            "lognormal_(a, b)",
            "cauchy_(a, b)",
            "gamma_(a, b)",
            "beta_(a, b)",
            "mv_(v, a)",
        ],
    ),
    (
        "reinforce with a baseline",
        "fn f(a, b) { E { x ~ normal(a, exp(b)) via reinforce(baseline: 0.5); x^2 + a } }
         fn g(a, b) { E { c ~ flip(sigmoid(a)) via reinforce(baseline: 0.25); if c { a * b } else { exp(b) } } }
         fn h(v, a) { E { k ~ poisson(exp(a)) via reinforce(baseline: 1.5); k * v[0] + a } }",
        &["f(a, b)", "g(a, b)", "h(v, a)"],
    ),
    (
        "reinforce, discrete",
        "fn flip_(a, b) { E { c ~ flip(sigmoid(a)) via reinforce; if c { b } else { a * b - 1.0 } } }
         fn categorical_(v, W) { E { k ~ categorical(softmax(W @ v)) via reinforce; v[k] * 2.0 + sum(W) } }
         fn geometric_(a) { E { k ~ geometric(sigmoid(a)) via reinforce; k * a } }
         fn poisson_(a, b) { E { k ~ poisson(exp(a)) via reinforce; tanh(k * b) } }",
        &["flip_(a, b)", "categorical_(v, W)", "geometric_(a)", "poisson_(a, b)"],
    ),
    (
        "enum",
        "fn flip_(a, b) { E { c ~ flip(sigmoid(a)) via enum; if c { b } else { a * b - 1.0 } } }
         fn categorical_(v, W) { E { k ~ categorical(softmax(W @ v)) via enum; v[k] * 2.0 + sum(W) } }
         fn nested(a, b) { E {
             c ~ flip(sigmoid(a)) via enum;
             x ~ normal(if c { a } else { b }, 1.0);
             d ~ flip(sigmoid(x)) via enum;
             if d { x * a } else { x + b }
         } }",
        &["flip_(a, b)", "categorical_(v, W)", "nested(a, b)"],
    ),
    (
        "mvd",
        "fn flip_(a, b) { E { c ~ flip(sigmoid(a)) via mvd; if c { b } else { a * b - 1.0 } } }
         fn poisson_(a, b) { E { k ~ poisson(exp(a)) via mvd; tanh(k * b) + a } }
         fn after(a, b) { E {
             c ~ flip(sigmoid(b)) via mvd;
             x ~ normal(a, 1.0);
             k ~ poisson(exp(tanh(x))) via mvd;
             if c { x * k } else { x^2 - b }
         } }",
        &["flip_(a, b)", "poisson_(a, b)", "after(a, b)"],
    ),
    (
        "choices in comprehensions",
        "fn reparam(v, a) { E { sum([{ x ~ normal(v[i], exp(a)); x^2 } for i in 0..3]) } }
         fn enum_(v, a) { E {
             let ys = [{ c ~ flip(sigmoid(v[i])) via enum; if c { v[i] * a } else { a } } for i in 0..3];
             sum(ys * ys)
         } }
         fn mvd_(v, a) { E {
             let ys = [{ c ~ flip(sigmoid(v[i])) via mvd; x ~ normal(a, 1.0); if c { x } else { x * v[i] } } for i in 0..3];
             logsumexp(ys)
         } }
         fn poisson_(v) { E { sum([{ k ~ poisson(exp(v[i])) via mvd; tanh(k * v[i]) } for i in 0..3]) } }
         fn reinforce_(v, a) { E {
             let ys = [{ c ~ flip(sigmoid(v[i])) via reinforce; if c { 1.0 } else { a } } for i in 0..3];
             dot(ys, v)
         } }
         fn categorical_(W, v) { E {
             sum([{ k ~ categorical(softmax(W[i])) via enum; v[k] * W[i, k] } for i in 0..2])
         } }",
        &["reparam(v, a)", "enum_(v, a)", "mvd_(v, a)", "poisson_(v)", "reinforce_(v, a)", "categorical_(W, v)"],
    ),
    (
        "ifs on sampled values",
        "fn f(a, b) { E {
             x ~ normal(a, 1.0);
             let y = if x > 0.0 { y ~ normal(x * b, exp(a)); y * a } else { exp(x) * b };
             c ~ flip(sigmoid(y)) via enum;
             if c { y + x } else { let z = y * x; z - a }
         } }
         fn g(a, v) { E {
             c ~ flip(sigmoid(a)) via reinforce;
             if c { x ~ normal(v[0], 1.0); x * v[1] } else { k ~ poisson(exp(v[2])) via mvd; k * a }
         } }",
        &["f(a, b)", "g(a, v)"],
    ),
    (
        "vectors and matrices",
        "fn f(W, v) { E {
             x ~ mv_normal_diag(W @ v, exp(v));
             let p = softmax(W @ x);
             logsumexp(W @ tanh(x)) + p[0] * sum(v @ transpose_free(W)) + mean(W)
         } }",
        &["f(W, v)"],
    ),
    (
        "estimate combinators",
        "fn f(a, b) { E { x ~ normal(a, exp(b)); tanh(x) } }
         fn g(v) { E { c ~ flip(sigmoid(v[0])) via enum; if c { v[1] } else { v[2] * v[0] } } }",
        &[
            "f(a, b) + g(v)",
            "f(a, b) - g(v)",
            "f(a, b) * g(v)",
            "exp(f(a, b))",
            "a * f(a, b)",
            "-f(a, b) + 1.0",
            "g(v) / 2.0 - b",
            "exp(g(v)) * f(a, b) + a * g(v)",
        ],
    ),
];

#[test]
fn reverse_equals_forward() {
    let mut failures = Vec::new();
    for (name, defs, objectives) in MODE_CASES {
        let program = program_of(defs, objectives);
        for failure in check_modes(&program, 7, MODE_STREAMS) {
            failures.push(format!("[{name}] {failure}"));
        }
    }
    report("reverse_equals_forward", &failures);
}
