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
//! - `batched_minibatches_equal_their_rows_one_by_one`: a minibatch run as one batched program
//!   (`ir::batch`) gives the value and gradient of running its rows one by one, up to summation
//!   order, and its modes agree as above;
//! - `implicit_gradients_match_the_cdf`: for `gamma`'s shape and `beta`, whose sampler is an
//!   accept/reject algorithm, the reverse gradient equals the implicit-reparameterisation
//!   derivative `−(∂F/∂θ)/p` at the draw the program made, with ∂F/∂θ by finite differences of
//!   an incomplete gamma function written here (see that test for why the primal's own finite
//!   differences are not the right reference there).
//!
//! Each failure message carries the program, the objective and the numbers; each test lists
//! all its failures before failing.

use ppl::adev::Estimator;
use ppl::diagnostics::ColorChoice;
use ppl::interp::{run, RuntimeValue};
use ppl::run::{RunOptions, Session};
use ppl_runtime::Rng;
use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;

// ---------------------------------------------------------------------------------------------
// Compiling and running
// ---------------------------------------------------------------------------------------------

/// A checked program's compiled objectives and its parameters' initial values.
struct Compiled {
    program: String,
    sources: ppl::diagnostics::SourceMap,
    params: Vec<(String, RuntimeValue)>,
    objectives: Vec<(String, Estimator)>,
    /// Each objective's primal, forward and reverse functions as native code: every run below
    /// also runs these and requires the same bits as the interpreter.
    natives: Vec<[ppl::codegen::Compiled; 3]>,
}

/// Why a program could not be compiled.
enum CompileError {
    /// The checker rejected it (rendered diagnostics).
    Check(String),
    /// The checker accepted it but the session or the compiler failed: a compiler bug.
    Compile(String),
}

fn try_compile(program: &str) -> Result<Compiled, CompileError> {
    try_compile_with(program, RunOptions::default(), 1)
}

/// Compiles each objective as the sum of `particles` samples (see
/// `Session::compile_objectives_with`).
fn try_compile_with(program: &str, options: RunOptions, particles: u32) -> Result<Compiled, CompileError> {
    try_compile_by(program, options, |session| session.compile_objectives_with(particles))
}

/// Compiles a program's `estimate`/`grad` objectives by `compile`, natively too.
fn try_compile_by(
    program: &str,
    options: RunOptions,
    compile: impl Fn(&Session) -> Result<Vec<(String, Estimator)>, ppl::diagnostics::Diagnostic>,
) -> Result<Compiled, CompileError> {
    let analysis = ppl::check_source("t.ppl", program);
    if analysis.has_errors() {
        return Err(CompileError::Check(analysis.render_diagnostics(ColorChoice::Never)));
    }
    let render = |diagnostic: ppl::diagnostics::Diagnostic| {
        ppl::diagnostics::render_all(&[diagnostic], &analysis.sources, ColorChoice::Never)
    };
    let session = Session::new(&analysis, options).map_err(|d| CompileError::Compile(render(d)))?;
    let params = session.params().map(|(name, value)| (name.to_string(), value.clone())).collect();
    let objectives = compile(&session).map_err(|d| CompileError::Compile(render(d)))?;
    drop(session);
    let mut natives = Vec::with_capacity(objectives.len());
    for (objective, estimator) in &objectives {
        let native = |function: &ppl::ir::Function| {
            ppl::codegen::compile(function).map_err(|error| {
                CompileError::Compile(format!("`{objective}` does not compile to native code: {error}"))
            })
        };
        natives.push([native(&estimator.primal)?, native(&estimator.forward)?, native(&estimator.reverse)?]);
    }
    Ok(Compiled { program: program.to_string(), sources: analysis.sources, params, objectives, natives })
}

/// Compiles a program that must check and compile, with at least one objective; the error
/// carries the program and its diagnostics.
fn compile(program: &str) -> Result<Compiled, String> {
    match try_compile(program) {
        Ok(compiled) if compiled.objectives.is_empty() => Err(format!("no `estimate`/`grad` objective in\n{program}")),
        Ok(compiled) => Ok(compiled),
        Err(CompileError::Check(diagnostics)) => Err(format!("the program does not check:\n{program}\n{diagnostics}")),
        Err(CompileError::Compile(diagnostics)) => {
            Err(format!("the program checks but does not compile (a compiler bug):\n{program}\n{diagnostics}"))
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

impl Compiled {
    /// Runs one of the compiled functions; an error names the function and the source of the
    /// instruction that failed.
    fn run(
        &self,
        function: &ppl::ir::Function,
        what: &str,
        args: Vec<RuntimeValue>,
    ) -> Result<Vec<RuntimeValue>, String> {
        let native = self.objectives.iter().zip(&self.natives).find_map(|((_, estimator), natives)| {
            [&estimator.primal, &estimator.forward, &estimator.reverse]
                .iter()
                .position(|candidate| std::ptr::eq(*candidate, function))
                .map(|k| &natives[k])
        });
        let native_results = native.map(|native| native.run(&mut native.scratch(), &args));
        let interpreted = run(function, args);
        if let (Some(native_results), Ok(results)) = (&native_results, &interpreted) {
            let bits = |values: &[RuntimeValue]| -> Vec<u64> {
                values.iter().filter_map(elements).flatten().map(f64::to_bits).collect()
            };
            match native_results {
                Some(native_results) if bits(native_results) == bits(results) => {}
                other => return Err(format!("`{what}`: native code gave {other:?}, the interpreter {results:?}")),
            }
        }
        interpreted.map_err(|error| {
            let place = error.span.map_or(String::new(), |span| {
                let snippet = self.sources.snippet(span);
                let first = snippet.lines().next().unwrap_or("");
                format!(" at `{first}{}`", if first.len() < snippet.len() { " …" } else { "" })
            });
            format!("`{what}` failed to run: {error} ({:?}){place}", error.kind)
        })
    }
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
                failures.push(format!("`{objective}`: the {what} function fails the IR verifier: {error}\n{function}"));
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
    let fail = |message: String| format!("`{objective}` on stream ({seed}, {stream_index}): {message}");
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

    let primal = compiled
        .run(&estimator.primal, "primal", arguments(&params, stream(seed, stream_index), vec![]))
        .map_err(&fail)?;
    let primal_value = real_result(&primal, 0, "primal").map_err(&fail)?;
    if !primal_value.is_finite() {
        return Ok(Compared::NotFinite(primal_value));
    }
    let reverse = compiled
        .run(&estimator.reverse, "reverse", arguments(&params, stream(seed, stream_index), vec![]))
        .map_err(&fail)?;
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
            let forward = compiled
                .run(&estimator.forward, "forward", arguments(&params, stream(seed, stream_index), tangents))
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
/// verifier. Returns the number of gradient elements compared, or a description of every
/// failure, after the program.
fn check_modes(program: &str, seed: u64, streams: u64) -> Result<usize, String> {
    check_compiled_modes(&compile(program)?, seed, streams, &mut None)
}

/// [`check_modes`] on a compiled program. A sample whose value is not finite is a failure,
/// unless `skipped` counts them (for generated programs).
fn check_compiled_modes(
    compiled: &Compiled,
    seed: u64,
    streams: u64,
    skipped: &mut Option<usize>,
) -> Result<usize, String> {
    let mut failures = verify_all(compiled);
    let mut compared = 0;
    for index in 0..compiled.objectives.len() {
        for stream_index in 0..streams {
            match compare_modes(compiled, index, seed, stream_index) {
                Ok(Compared::Agreed(count)) => compared += count,
                Ok(Compared::NotFinite(_)) if skipped.is_some() => *skipped = skipped.map(|n| n + 1),
                Ok(Compared::NotFinite(value)) => failures.push(format!(
                    "`{}` on stream ({seed}, {stream_index}): the value is {value}",
                    compiled.objectives[index].0
                )),
                Err(failure) => failures.push(failure),
            }
        }
    }
    const SHOWN: usize = 12;
    if failures.len() > SHOWN {
        let more = failures.len() - SHOWN;
        failures.truncate(SHOWN);
        failures.push(format!("… and {more} more failure(s) of this program"));
    }
    if failures.is_empty() {
        Ok(compared)
    } else {
        Err(format!("program:\n{}\n{}", compiled.program, failures.join("\n")))
    }
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
             x ~ mv_normal_diag(v, exp(v));
             let h = W @ x;
             let p = softmax(h);
             let u = [x[i] * v[i] + W[1, i] for i in 0..3];
             logsumexp(W @ tanh(x)) + p[0] * sum(h @ W) + mean(W) + v @ v + sum(u) * dot(h, h)
         } }",
        &["f(W, v)"],
    ),
    (
        // `+ - *` of independent estimates differentiate their samples pathwise. `exp(est)` is
        // left out: ADEV's tangent for it is exp-estimate × a *separate* tangent sample, an
        // unbiased estimate of the derivative but not the derivative of the primal sample
        // (with N = 0 factors the primal is the constant e², its tangent is not 0).
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
    (
        // `exp` of an estimate after another estimate whose body has a `for` or an `if` holding
        // a choice: the order of the terms matters.
        "estimate combinators after estimates with loops and ifs",
        "fn h(a) { E { x ~ normal(a, 1.0); sum([x * a * i for i in 0..2]) } }
         fn k(a) { E { x ~ normal(a, 1.0); if x > 0.0 { y ~ normal(x, 1.0); y * a } else { x } } }
         fn r(a) { E {
             let xs = [{ x ~ normal(a, 1.0) via reinforce; x } for i in 0..3];
             c ~ flip(sigmoid(a)) via reinforce;
             sum(xs) + (if c { 1.0 } else { 0.0 })
         } }",
        &[
            "exp(h(a)) + h(a)",
            "h(a) + exp(h(a))",
            "exp(k(a)) + k(a)",
            "k(a) + exp(k(a))",
            "exp(r(a)) * r(a)",
            "r(a) * exp(r(a))",
            "exp(r(a)) + exp(r(a))",
        ],
    ),
];

#[test]
fn reverse_equals_forward() {
    let mut failures = Vec::new();
    let mut compared = 0;
    for (name, defs, objectives) in MODE_CASES {
        match check_modes(&program_of(defs, objectives), 7, MODE_STREAMS) {
            Ok(count) => compared += count,
            Err(failure) => failures.push(format!("[{name}] {failure}")),
        }
    }
    report("reverse_equals_forward", &failures);
    // Every case has an objective differentiated in at least two elements.
    assert!(compared >= 2 * MODE_STREAMS as usize * MODE_CASES.len(), "only {compared} gradient elements compared");
}

// ---------------------------------------------------------------------------------------------
// 2. Reverse mode equals forward mode on generated programs
// ---------------------------------------------------------------------------------------------

/// Writes random well-typed objectives `fn f(a, v, M) { E { … } }` over `param a: real`,
/// `param v: vec[3]` and `param M: mat[2, 3]`: lets, choices of every distribution and estimator
/// (continuous ones reparameterised or by REINFORCE, discrete ones by every rule they allow),
/// `if`s on sampled values with choices inside, comprehensions with choices inside, and an
/// estimate combinator around `f` one time in three. Every value stays tame: lets are mostly
/// wrapped in `tanh`, exponentials only see a `tanh`, denominators are `1 + e²`, a Cauchy draw is
/// only used through `tanh`.
struct Generator {
    rng: ChaCha8Rng,
    /// Real variables in scope (parameters included).
    reals: Vec<String>,
    /// Boolean variables (flips).
    bools: Vec<String>,
    /// Integer variables (Poisson draws), used as reals.
    ints: Vec<String>,
    /// Integer variables in 0..3 (categorical draws), usable as indices of `v`.
    indices: Vec<String>,
    /// `vec[3]` variables (`v` included).
    vecs: Vec<String>,
    /// Product of the number of times `enum`/`mvd` choices rerun their continuation.
    branching: u32,
    next_name: usize,
}

const MAX_BRANCHING: u32 = 32;

impl Generator {
    fn new(seed: u64) -> Self {
        Generator {
            rng: ChaCha8Rng::seed_from_u64(seed),
            reals: vec!["a".to_string()],
            bools: Vec::new(),
            ints: Vec::new(),
            indices: Vec::new(),
            vecs: vec!["v".to_string()],
            branching: 1,
            next_name: 0,
        }
    }

    fn name(&mut self, prefix: &str) -> String {
        self.next_name += 1;
        format!("{prefix}{}", self.next_name)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn pick<'s>(&mut self, items: &'s [String]) -> &'s str {
        &items[self.rng.random_range(0..items.len())]
    }

    fn vector(&mut self) -> String {
        let vecs = self.vecs.clone();
        self.pick(&vecs).to_string()
    }

    fn literal(&mut self) -> String {
        format!("{:.2}", self.rng.random_range(-1.5..1.5))
    }

    /// A real expression; `index` is the loop variable in scope, if any.
    fn real(&mut self, depth: u32, index: Option<&str>) -> String {
        if depth == 0 || self.chance(0.25) {
            return self.leaf(index);
        }
        let d = depth - 1;
        match self.rng.random_range(0..19) {
            0 => format!("({} + {})", self.real(d, index), self.real(d, index)),
            1 => format!("({} - {})", self.real(d, index), self.real(d, index)),
            2 | 3 => format!("({} * {})", self.real(d, index), self.real(d, index)),
            4 => format!("({} / (1.0 + ({})^2))", self.real(d, index), self.real(d, index)),
            5 => format!("exp(tanh({}))", self.real(d, index)),
            6 => format!("tanh({})", self.real(d, index)),
            7 => format!("sin({})", self.real(d, index)),
            8 => format!("log(1.0 + exp(tanh({})))", self.real(d, index)),
            9 => format!("sum({} * {})", self.vector(), self.real(d, index)),
            10 => format!("dot({}, {} * {})", self.vector(), self.vector(), self.real(d, index)),
            11 => format!("logsumexp({} * {})", self.vector(), self.real(d, index)),
            16 => format!("sum(M @ ({} * {}))", self.vector(), self.real(d, index)),
            17 => format!("(logsumexp(M @ {}) * {})", self.vector(), self.real(d, index)),
            18 => format!("dot(softmax({} * {}), {})", self.vector(), self.real(d, index), self.vector()),
            12 => {
                let i = self.rng.random_range(0..3);
                format!("(v[{i}] * {})", self.real(d, index))
            }
            13 => format!(
                "(if {} > 0.0 {{ {} }} else {{ {} }})",
                self.real(d, index),
                self.real(d, index),
                self.real(d, index)
            ),
            14 if !self.bools.is_empty() => {
                let bools = self.bools.clone();
                let b = self.pick(&bools).to_string();
                format!("(if {b} {{ {} }} else {{ {} }})", self.real(d, index), self.real(d, index))
            }
            15 => format!("sigmoid({})", self.real(d, index)),
            _ => format!("({} * {})", self.real(d, index), self.leaf(index)),
        }
    }

    fn leaf(&mut self, index: Option<&str>) -> String {
        match self.rng.random_range(0..10) {
            0 => self.literal(),
            1 => format!("{}[{}]", self.vector(), self.rng.random_range(0..3)),
            2 if index.is_some() => format!("{}[{}]", self.vector(), index.unwrap_or("0")),
            3 if !self.ints.is_empty() => {
                let ints = self.ints.clone();
                format!("({} * 0.25)", self.pick(&ints))
            }
            4 if !self.indices.is_empty() => {
                let indices = self.indices.clone();
                format!("v[{}]", self.pick(&indices))
            }
            5 => format!("sum({})", self.vector()),
            _ => {
                let reals = self.reals.clone();
                self.pick(&reals).to_string()
            }
        }
    }

    /// `tanh(e)` mostly, `e` sometimes.
    fn tame(&mut self, depth: u32, index: Option<&str>) -> String {
        let e = self.real(depth, index);
        if self.chance(0.75) {
            format!("tanh({e})")
        } else {
            e
        }
    }

    /// Can a choice that reruns its continuation `times` times be added?
    fn branch(&mut self, times: u32) -> bool {
        if self.branching * times <= MAX_BRANCHING {
            self.branching *= times;
            true
        } else {
            false
        }
    }

    fn statement(&mut self) -> String {
        match self.rng.random_range(0..16) {
            12 | 15 => {
                // Another real distribution; unbounded draws are used through `tanh`.
                let name = self.name("x");
                let (e1, e2) = (self.real(2, None), self.real(2, None));
                let (distribution, wrap) = match self.rng.random_range(0..7) {
                    0 => (format!("uniform({e1} - 1.0, {e1} + exp(tanh({e2})))"), false),
                    1 => (format!("exponential(exp(tanh({e1})))"), false),
                    2 => (format!("laplace({e1}, exp(tanh({e2})))"), false),
                    3 => (format!("lognormal(tanh({e1}), 0.5)"), false),
                    4 => (format!("cauchy({e1}, exp(tanh({e2})))"), true),
                    5 => (format!("gamma(exp(tanh({e1})), exp(tanh({e2})))"), false),
                    _ => (format!("beta(exp(tanh({e1})), exp(tanh({e2})))"), false),
                };
                let via = if self.chance(0.25) { " via reinforce" } else { "" };
                if wrap {
                    let tamed = self.name("t");
                    self.reals.push(tamed.clone());
                    format!("{name} ~ {distribution}{via};\n        let {tamed} = tanh({name});")
                } else {
                    self.reals.push(name.clone());
                    format!("{name} ~ {distribution}{via};")
                }
            }
            13 => {
                let name = self.name("w");
                let (m, s) = (self.vector(), self.vector());
                let (e1, e2) = (self.real(2, None), self.real(2, None));
                let via = if self.chance(0.25) { " via reinforce" } else { "" };
                self.vecs.push(name.clone());
                format!("{name} ~ mv_normal_diag({m} * {e1}, exp(tanh({s} * {e2}))){via};")
            }
            14 => {
                let name = self.name("w");
                let (v1, v2) = (self.vector(), self.vector());
                let e = self.real(2, None);
                self.vecs.push(name.clone());
                format!("let {name} = tanh({v1} * {e} + {v2});")
            }
            0..=2 => {
                let name = self.name("t");
                let e = self.tame(3, None);
                self.reals.push(name.clone());
                format!("let {name} = {e};")
            }
            3 | 4 => {
                let name = self.name("x");
                let (mu, sigma) = (self.real(2, None), self.real(2, None));
                let via = if self.chance(0.25) { " via reinforce" } else { "" };
                self.reals.push(name.clone());
                format!("{name} ~ normal({mu}, exp(tanh({sigma}))){via};")
            }
            5 | 6 => {
                let name = self.name("b");
                let p = self.real(2, None);
                let via = match self.rng.random_range(0..3) {
                    0 if self.branch(2) => "enum",
                    1 if self.branch(2) => "mvd",
                    _ => "reinforce",
                };
                self.bools.push(name.clone());
                format!("{name} ~ flip(sigmoid({p})) via {via};")
            }
            7 => {
                let name = self.name("k");
                let rate = self.real(2, None);
                let via = if self.chance(0.5) && self.branch(2) { "mvd" } else { "reinforce" };
                self.ints.push(name.clone());
                format!("{name} ~ poisson(exp(tanh({rate}))) via {via};")
            }
            8 => {
                let name = self.name("c");
                let logits = self.real(2, None);
                let via = if self.chance(0.5) && self.branch(3) { "enum" } else { "reinforce" };
                self.indices.push(name.clone());
                format!("{name} ~ categorical(softmax(v * {logits})) via {via};")
            }
            9 => {
                // A choice inside one branch of an `if` on a (possibly sampled) value.
                let name = self.name("t");
                let inner = self.name("y");
                let condition = self.real(2, None);
                let mu = self.real(2, None);
                self.reals.push(inner.clone());
                let then = self.tame(2, None);
                self.reals.pop();
                let otherwise = self.tame(2, None);
                self.reals.push(name.clone());
                format!(
                    "let {name} = if {condition} > 0.0 {{ {inner} ~ normal({mu}, 1.0); {then} }} else {{ {otherwise} }};"
                )
            }
            10 => {
                // A comprehension, with a choice per iteration half of the time.
                let name = self.name("t");
                let flip_rule = match self.rng.random_range(0..6) {
                    0 if self.branch(8) => Some("enum"),
                    1 if self.branch(8) => Some("mvd"),
                    2 => Some("reinforce"),
                    _ => None,
                };
                let body = if let Some(rule) = flip_rule {
                    let inner = self.name("z");
                    let p = self.real(2, Some("i"));
                    let then = self.tame(2, Some("i"));
                    let otherwise = self.tame(2, Some("i"));
                    format!(
                        "{{ {inner} ~ flip(sigmoid({p})) via {rule}; if {inner} {{ {then} }} else {{ {otherwise} }} }}"
                    )
                } else if self.chance(0.5) {
                    let inner = self.name("z");
                    let mu = self.real(2, Some("i"));
                    self.reals.push(inner.clone());
                    let value = self.tame(2, Some("i"));
                    self.reals.pop();
                    let via = if self.chance(0.3) { " via reinforce" } else { "" };
                    format!("{{ {inner} ~ normal({mu}, 1.0){via}; {value} }}")
                } else {
                    self.tame(2, Some("i"))
                };
                self.reals.push(name.clone());
                format!("let {name} = sum([{body} for i in 0..3]);")
            }
            _ => {
                let name = self.name("t");
                let e = format!("({} / (1.0 + ({})^2))", self.real(2, None), self.real(2, None));
                self.reals.push(name.clone());
                format!("let {name} = {e};")
            }
        }
    }

    /// A whole program: the parameters, `f` and one `print grad(…)`.
    fn program(&mut self) -> String {
        let a = self.literal();
        let v: Vec<String> = (0..3).map(|_| self.literal()).collect();
        let statements: Vec<String> = (0..self.rng.random_range(2..8)).map(|_| self.statement()).collect();
        let mut result = self.real(3, None);
        if self.chance(0.8) {
            // Make the result depend on every choice made.
            let mut terms: Vec<String> = self.reals.clone();
            terms.extend(self.ints.iter().map(|k| format!("{k} * 0.25")));
            terms.extend(self.indices.iter().map(|c| format!("v[{c}]")));
            terms.extend(self.bools.iter().map(|b| format!("(if {b} {{ 0.5 }} else {{ -0.25 }})")));
            terms.extend(self.vecs.iter().map(|w| format!("sum({w})")));
            result = format!("{result} + 0.5 * tanh({})", terms.join(" + "));
        }
        let objective = match self.rng.random_range(0..12) {
            0 => "exp(F)",
            1 => "a * F",
            2 => "F * F",
            3 => "F + F - 0.5",
            4 => "F + exp(F)",
            _ => "F",
        }
        .replace('F', "f(a, v, M)");
        let rows: Vec<String> =
            (0..2).map(|_| format!("[{}]", (0..3).map(|_| self.literal()).collect::<Vec<_>>().join(", "))).collect();
        format!(
            "param a: real = {a};\nparam v: vec[3] = [{}];\nparam M: mat[2, 3] = [{}];\n\n\
             fn f(a, v, M) {{\n    E {{\n        {}\n        {result}\n    }}\n}}\n\n\
             print grad({objective}, samples: 1);\n",
            v.join(", "),
            rows.join(", "),
            statements.join("\n        ")
        )
    }
}

const GENERATED_PROGRAMS: u64 = 200;
const GENERATED_STREAMS: u64 = 3;

#[test]
fn random_programs_reverse_equals_forward() {
    let mut checked = 0;
    let mut rejected = Vec::new();
    let mut failures = Vec::new();
    let mut compared = 0;
    let mut skipped = Some(0);
    for seed in 0..GENERATED_PROGRAMS {
        let program = Generator::new(seed).program();
        let compiled = match try_compile(&program) {
            Ok(compiled) => compiled,
            Err(CompileError::Check(diagnostics)) => {
                rejected.push(format!("program {seed}:\n{program}\n{diagnostics}"));
                continue;
            }
            Err(CompileError::Compile(diagnostics)) => {
                checked += 1;
                failures.push(format!(
                    "[generated program {seed}] checks but does not compile (a compiler bug):\n{program}\n{diagnostics}"
                ));
                continue;
            }
        };
        checked += 1;
        match check_compiled_modes(&compiled, seed, GENERATED_STREAMS, &mut skipped) {
            Ok(count) => compared += count,
            Err(failure) => failures.push(format!("[generated program {seed}] {failure}")),
        }
    }
    assert!(
        checked * 10 >= GENERATED_PROGRAMS * 9,
        "only {checked} of {GENERATED_PROGRAMS} generated programs check; the first rejected:\n{}",
        rejected.iter().take(3).cloned().collect::<Vec<_>>().join("\n\n")
    );
    report("random_programs_reverse_equals_forward", &failures);
    // Values are tame by construction: hardly any sample may be skipped as not finite.
    let skipped = skipped.unwrap_or(0) as u64;
    assert!(skipped * 20 <= checked * GENERATED_STREAMS, "{skipped} samples skipped as not finite");
    assert!(compared as u64 >= checked * GENERATED_STREAMS * 4 / 2, "only {compared} gradient elements compared");
}

// ---------------------------------------------------------------------------------------------
// 3. Finite differences with common random numbers
// ---------------------------------------------------------------------------------------------

/// Relative tolerance of a central difference against a reparameterised gradient. With
/// h = 1e-5·max(1, |θ|) the truncation error is ~h²·f‴/6 ≈ 1e-10 relative and the rounding
/// error ~ε·|f|/h ≈ 1e-11, so 1e-5 leaves a wide margin.
const FD_RELATIVE: f64 = 1e-5;
/// For gradient elements that are ~0 (a Cauchy draw far in its tail, say).
const FD_ABSOLUTE: f64 = 1e-8;
const FD_STREAMS: u64 = 8;

/// Central differences of `primal` in every parameter element, on the stream of the `reverse`
/// run they are compared with. Returns the number of elements compared.
fn check_finite_differences(compiled: &Compiled, seed: u64) -> Result<usize, String> {
    let params: Vec<RuntimeValue> = compiled.params.iter().map(|(_, value)| value.clone()).collect();
    let mut problems = Vec::new();
    let mut compared = 0;
    for (objective, estimator) in &compiled.objectives {
        for stream_index in 0..FD_STREAMS {
            let at = |message: String| format!("`{objective}` on stream ({seed}, {stream_index}): {message}");
            let primal_at = |params: &[RuntimeValue]| -> Result<f64, String> {
                let results =
                    compiled.run(&estimator.primal, "primal", arguments(params, stream(seed, stream_index), vec![]))?;
                real_result(&results, 0, "primal")
            };
            let reverse = compiled
                .run(&estimator.reverse, "reverse", arguments(&params, stream(seed, stream_index), vec![]))
                .map_err(&at)?;
            let value = real_result(&reverse, 0, "reverse").map_err(&at)?;
            let mut k = 0;
            for (i, (name, param)) in compiled.params.iter().enumerate() {
                if !estimator.wrt[i] {
                    continue;
                }
                k += 1;
                let gradient =
                    reverse.get(k).and_then(elements).ok_or_else(|| at(format!("no gradient for `{name}`")))?;
                let theta = elements(param).ok_or_else(|| at(format!("`{name}` is not differentiable")))?;
                for (element, (&g, &t)) in gradient.iter().zip(&theta).enumerate() {
                    let h = 1e-5 * t.abs().max(1.0);
                    let (up, down) = (t + h, t - h);
                    let mut shifted = params.clone();
                    shifted[i] = with_element(param, element, up);
                    let f_up = primal_at(&shifted).map_err(&at)?;
                    shifted[i] = with_element(param, element, down);
                    let f_down = primal_at(&shifted).map_err(&at)?;
                    let difference = (f_up - f_down) / (up - down);
                    if !close(difference, g, FD_RELATIVE, FD_ABSOLUTE) {
                        problems.push(at(format!(
                            "d/d{name}[{element}] at {t}: reverse {g:e}, central difference {difference:e} \
                             (value {value:e}; f(θ+h) = {f_up:e}, f(θ−h) = {f_down:e}, h = {h:e})"
                        )));
                    }
                    compared += 1;
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(compared)
    } else {
        Err(format!("program:\n{}\n{}", compiled.program, problems.join("\n")))
    }
}

/// Reparameterised programs only, whose value is a smooth function of the parameters on
/// every stream (no `if` on a sampled value), over [`PARAMS`].
const FD_CASES: &[(&str, &str, &[&str])] = &[
    (
        "normal",
        "fn f(a, b) { E { x ~ normal(a, exp(b)); sin(x) + x^2 * a } }
         fn g(v, a) { E { x ~ normal(v, exp(a)); sum(tanh(x) * v) } }",
        &["f(a, b)", "g(v, a)"],
    ),
    ("uniform", "fn f(a, b) { E { x ~ uniform(a - 1.0, a + exp(b)); x^3 - x * b } }", &["f(a, b)"]),
    ("exponential", "fn f(a, b) { E { x ~ exponential(exp(a)); tanh(x) + x * b } }", &["f(a, b)"]),
    ("laplace", "fn f(a, b) { E { x ~ laplace(a, exp(b)); cos(x) * a + x } }", &["f(a, b)"]),
    ("lognormal", "fn f(a, b) { E { x ~ lognormal(a, exp(b)); log(1.0 + x) + x * b } }", &["f(a, b)"]),
    (
        "cauchy with a bounded function",
        "fn f(a, b) { E { x ~ cauchy(a, exp(b)); 1.0 / (1.0 + x^2) + tanh(x) * b } }",
        &["f(a, b)"],
    ),
    (
        "mv_normal_diag",
        "fn f(v, W) { E { x ~ mv_normal_diag(v, exp(W[0])); sum(x * x) + dot(x, W[1]) + logsumexp(W @ x) } }",
        &["f(v, W)"],
    ),
    (
        // The rate of a gamma is pathwise (Gamma(shape, 1) / rate); its shape is not (below).
        "gamma's rate",
        "fn f(a, b) { E { x ~ gamma(2.5, exp(a)); tanh(x) * b + log(x) } }",
        &["f(a, b)"],
    ),
    (
        "chained choices in a loop",
        "fn f(v, a) { E { sum([{ x ~ normal(v[i], exp(a)); y ~ laplace(x, 1.0); z ~ lognormal(y * 0.1, 0.5); tanh(y) * z } for i in 0..3]) } }",
        &["f(v, a)"],
    ),
    (
        // `+ - *` of independent estimates differentiate their samples pathwise. `exp(est)` is
        // left out: ADEV's tangent for it is exp-estimate × a *separate* tangent sample, an
        // unbiased estimate of the derivative but not the derivative of the primal sample
        // (with N = 0 factors the primal is the constant e², its tangent is not 0).
        "estimate combinators",
        "fn f(a, b) { E { x ~ normal(a, exp(b)); tanh(x) } }
         fn g(v) { E { x ~ uniform(v[0] - 1.0, v[1] + 1.0); y ~ exponential(exp(v[2])); x * y } }",
        &["f(a, b) + g(v)", "f(a, b) * g(v)", "a * g(v) - f(a, b)", "g(v) * f(a, b) * 2.0 - 1.0"],
    ),
];

#[test]
fn finite_differences_match_reparameterised_gradients() {
    let mut failures = Vec::new();
    let mut compared = 0;
    for (name, defs, objectives) in FD_CASES {
        let program = program_of(defs, objectives);
        let compiled = match compile(&program) {
            Ok(compiled) => compiled,
            Err(failure) => {
                failures.push(format!("[{name}] {failure}"));
                continue;
            }
        };
        match check_finite_differences(&compiled, 11) {
            Ok(count) => compared += count,
            Err(failure) => failures.push(format!("[{name}] {failure}")),
        }
    }
    report("finite_differences_match_reparameterised_gradients", &failures);
    assert!(compared >= FD_CASES.len() * FD_STREAMS as usize, "only {compared} gradient elements compared");
}

// ---------------------------------------------------------------------------------------------
// 3b. Implicit reparameterisation: gamma's shape and beta
// ---------------------------------------------------------------------------------------------
//
// Central differences of `primal` on a fixed stream are the wrong reference here. The gamma
// sampler (Marsaglia–Tsang through `rand_distr`, boosted by U^(1/α) below α = 1) maps the
// stream's noise to x by a transform that depends on α, but that transform does not hold the
// CDF F(x; α) fixed, so its pathwise derivative ∂x/∂α at fixed noise is a *different*
// (generally not even unbiased, because of the rejection step) derivative from the implicit one,
// −(∂F/∂α)/p, that ADEV's rule prescribes. Measured on 8 streams: the two differ by 1–5% at
// α = 1.35, ~0.03% at α = 20, up to 40% at α = 0.4 and up to 60% for a beta's second argument —
// with no change of the sampler's branch, so neither a looser tolerance nor a median over
// streams would make them agree. Instead this test takes the draw the program made and checks
// the derivative the rule must give *at that draw*:
//
// - a gamma draw x with rate β is Gamma(α, 1)/β, so g = βx is the unit draw and
//   ∂x/∂α = D(g, α)/β, ∂x/∂β = −x/β, with D(g, α) = −(∂P(α, g)/∂α)/p(g; α), P the regularised
//   lower incomplete gamma function (written below) and ∂P/∂α by a five-point difference;
// - a beta draw is g₁/(g₁ + g₂) for unit gammas g₁ ~ Gamma(a), g₂ ~ Gamma(b) drawn one after the
//   other from the estimate's stream (the rule in `adev/rules.rs`), so ∂x/∂a = D(g₁, a)·g₂/(g₁+g₂)²
//   and ∂x/∂b = −g₁·D(g₂, b)/(g₁+g₂)². g₁ and g₂ are read from two companion objectives that draw
//   the same two unit gammas on the same stream; that they reproduce the beta's draw is
//   checked first.
//
// The reference D is accurate to ~1e-11 relative (series/continued fraction to 1e-16, five-point
// stencil with h = 1e-3·α: truncation ~h⁴, rounding ~1e-16/h); the compiled gradients agree
// with it to ~1e-12. The tolerance, 1e-8, is far below the 1–60% of a wrong coupling.

const IMPLICIT_RELATIVE: f64 = 1e-8;
const IMPLICIT_STREAMS: u64 = 12;

/// The regularised incomplete gamma functions: P(a, x) by its power series when `series`,
/// Q(a, x) = 1 − P by Legendre's continued fraction otherwise (modified Lentz).
fn incomplete_gamma(a: f64, x: f64, series: bool) -> f64 {
    let prefactor = (-x + a * x.ln() - ppl_runtime::lgamma(a)).exp();
    if series {
        let (mut term, mut sum) = (1.0 / a, 1.0 / a);
        for n in 1..100_000 {
            term *= x / (a + n as f64);
            sum += term;
            if term.abs() < sum.abs() * 1e-17 {
                break;
            }
        }
        sum * prefactor
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..100_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        h * prefactor
    }
}

/// ∂g/∂α for a draw g ~ Gamma(α, 1) under the implicit (CDF-preserving) reparameterisation.
fn implicit_dshape(g: f64, alpha: f64) -> f64 {
    let series = g < alpha + 1.0;
    let f = |a: f64| {
        let value = incomplete_gamma(a, g, series);
        if series {
            value
        } else {
            -value // −Q = P − 1: the same derivative as P
        }
    };
    let h = 1e-3 * alpha;
    let dp = (8.0 * (f(alpha + h) - f(alpha - h)) - (f(alpha + 2.0 * h) - f(alpha - 2.0 * h))) / (12.0 * h);
    let density = ((alpha - 1.0) * g.ln() - g - ppl_runtime::lgamma(alpha)).exp();
    -dp / density
}

/// The value and gradient (one element per real param, in order) of objective `index` on a
/// stream, from `reverse`.
fn value_and_gradient(
    compiled: &Compiled,
    index: usize,
    seed: u64,
    stream_index: u64,
) -> Result<(f64, Vec<f64>), String> {
    let (objective, estimator) = &compiled.objectives[index];
    let params: Vec<RuntimeValue> = compiled.params.iter().map(|(_, value)| value.clone()).collect();
    let results = compiled
        .run(&estimator.reverse, "reverse", arguments(&params, stream(seed, stream_index), vec![]))
        .map_err(|e| format!("`{objective}`: {e}"))?;
    let value = real_result(&results, 0, objective)?;
    let gradient =
        results[1..].iter().map(|r| real_result(std::slice::from_ref(r), 0, objective)).collect::<Result<_, _>>()?;
    Ok((value, gradient))
}

#[test]
fn implicit_gradients_match_the_cdf() {
    let mut failures = Vec::new();
    let mut compared = 0;
    // (α, β) for the gamma with rate, (a, b) for the beta: small, moderate and large shapes.
    for (alpha, beta) in [(0.4, 2.0), (1.35, 0.67), (3.0, 0.5), (20.0, 3.0)] {
        let program = format!(
            "param a: real = {:?};\nparam b: real = {:?};\n
fn gamma_(a, b) {{ E {{ x ~ gamma(exp(a), exp(b)); x }} }}
fn beta_(a, b) {{ E {{ x ~ beta(exp(a), exp(b)); x }} }}
fn first(a, b) {{ E {{ g ~ gamma(exp(a), 1.0); h ~ gamma(exp(b), 1.0); g }} }}
fn second(a, b) {{ E {{ g ~ gamma(exp(a), 1.0); h ~ gamma(exp(b), 1.0); h }} }}
print grad(gamma_(a, b), samples: 1);
print grad(beta_(a, b), samples: 1);
print grad(first(a, b), samples: 1);
print grad(second(a, b), samples: 1);
",
            f64::ln(alpha),
            f64::ln(beta)
        );
        let compiled = match compile(&program) {
            Ok(compiled) => compiled,
            Err(failure) => {
                failures.push(failure);
                continue;
            }
        };
        let mut problems = Vec::new();
        for stream_index in 0..IMPLICIT_STREAMS {
            let result = (|| -> Result<(), String> {
                let seed = 5;
                let (x, gamma_gradient) = value_and_gradient(&compiled, 0, seed, stream_index)?;
                let (y, beta_gradient) = value_and_gradient(&compiled, 1, seed, stream_index)?;
                let (g1, _) = value_and_gradient(&compiled, 2, seed, stream_index)?;
                let (g2, _) = value_and_gradient(&compiled, 3, seed, stream_index)?;
                let (alpha, beta) = (alpha, beta);
                let at = |what: &str, message: String| format!("stream ({seed}, {stream_index}), {what}: {message}");

                // Gamma(α, β): x = g/β, with g the first unit draw of the stream.
                if !close(x * beta, g1, 1e-13, 0.0) {
                    return Err(at("gamma", format!("the draw x = {x:e} is not g/β for the unit draw g = {g1:e}")));
                }
                let expected = [implicit_dshape(g1, alpha) / beta * alpha, -x];
                for (k, (&got, &want)) in gamma_gradient.iter().zip(&expected).enumerate() {
                    if !close(got, want, IMPLICIT_RELATIVE, 1e-14) {
                        problems.push(at(
                            "gamma_(a, b)",
                            format!("d/d{}: reverse {got:e}, implicit reference {want:e} (x = {x:e})", ["a", "b"][k]),
                        ));
                    }
                }

                // Beta(a, b) = g₁/(g₁ + g₂).
                let s = g1 + g2;
                if !close(y, g1 / s, 1e-13, 0.0) {
                    return Err(at(
                        "beta",
                        format!(
                            "the draw {y:e} is not g₁/(g₁+g₂) = {:e} for the companion draws {g1:e}, {g2:e}",
                            g1 / s
                        ),
                    ));
                }
                let expected = [
                    implicit_dshape(g1, alpha) * g2 / (s * s) * alpha,
                    -g1 * implicit_dshape(g2, beta) / (s * s) * beta,
                ];
                for (k, (&got, &want)) in beta_gradient.iter().zip(&expected).enumerate() {
                    if !close(got, want, IMPLICIT_RELATIVE, 1e-14) {
                        problems.push(at(
                            "beta_(a, b)",
                            format!(
                                "d/d{}: reverse {got:e}, implicit reference {want:e} (x = {y:e}, g₁ = {g1:e}, g₂ = {g2:e})",
                                ["a", "b"][k]
                            ),
                        ));
                    }
                }
                if gamma_gradient.len() != 2 || beta_gradient.len() != 2 {
                    return Err(at("both", "expected a gradient of two elements".to_string()));
                }
                compared += 4;
                Ok(())
            })();
            if let Err(problem) = result {
                problems.push(problem);
            }
        }
        if !problems.is_empty() {
            failures.push(format!("program:\n{program}\n{}", problems.join("\n")));
        }
    }
    report("implicit_gradients_match_the_cdf", &failures);
    assert!(compared >= 4 * 4 * IMPLICIT_STREAMS as usize, "only {compared} gradient elements compared");
}

// ---------------------------------------------------------------------------------------------
// 5. Batched minibatches
// ---------------------------------------------------------------------------------------------

/// A small VAE on binary images, a regression on rows of reals and an IWELBO per image, each
/// over minibatches; the data and weights are fixed by the program.
/// A VAE of 5-pixel images with a 2-dimensional code: its decoder and encoder and their weights.
const SMALL_VAE: &str = "gen decoder(w1: mat[4, 2], b1: vec[4], w2: mat[5, 4], b2: vec[5]) {
    z ~ mv_normal_diag(zeros(2), ones(2));
    x ~ bernoulli_logit(w2 @ leaky_relu(w1 @ z + b1) + b2);
}
gen encoder(x: vec[5], v1: mat[4, 5], c1: vec[4], v2: mat[4, 4], c2: vec[4]) {
    let out = v2 @ tanh(v1 @ x + c1) + c2;
    z ~ mv_normal_diag(out[..2], softplus(out[2..]));
}
param w1: mat[4, 2] = uniform_init(0.7);
param b1: vec[4] = uniform_init(0.7);
param w2: mat[5, 4] = uniform_init(0.5);
param b2: vec[5] = uniform_init(0.5);
param v1: mat[4, 5] = uniform_init(0.45);
param c1: vec[4] = uniform_init(0.45);
param v2: mat[4, 4] = uniform_init(0.5);
param c2: vec[4] = uniform_init(0.5);
";

fn minibatch_program() -> String {
    let bits = |i: usize| (0..5).map(|j| if (i * 7 + j * 3) % 5 < 2 { "1.0" } else { "0.0" }).collect::<Vec<_>>();
    let images: Vec<String> = (0..24).map(|i| format!("[{}]", bits(i).join(", "))).collect();
    let values: Vec<String> = (0..24)
        .map(|i| {
            let x = |k: usize| format!("{:?}", ((i * 3 + k) as f64 * 0.37).sin());
            format!("[{}, {}, {}]", x(0), x(1), x(2))
        })
        .collect();
    format!(
        "data images: mat[24, 5] = [{}];\n\
         data values: mat[24, 3] = [{}];\n\
         {SMALL_VAE}\
         param u: vec[3] = [0.4, -0.3, 0.8];\n\
         param a: real = -0.2;\n\
         fn image_elbo(x: vec[5]) {{ elbo(decoder(w1, b1, w2, b2), encoder(x, v1, c1, v2, c2), {{ x: x }}) }}\n\
         fn image_iwelbo(x: vec[5]) {{ iwelbo(decoder(w1, b1, w2, b2), encoder(x, v1, c1, v2, c2), {{ x: x }}, 3) }}\n\
         fn regression(r: vec[3]) {{ E {{ s ~ normal(dot(u, r), exp(a)); -(s - r[0])^2 + sum(r * u) * s }} }}\n\
         print grad(mean_over(images, image_elbo, batch: 8), samples: 3);\n\
         print grad(sum_over(values, regression, batch: 6), samples: 3);\n\
         print grad(mean_over(images, image_iwelbo, batch: 4), samples: 3);\n\
         print grad(mean_over(images, image_elbo), samples: 1);\n",
        images.join(", "),
        values.join(", "),
    )
}

#[test]
fn batched_minibatches_equal_their_rows_one_by_one() {
    let program = minibatch_program();
    let batched = compile(&program).unwrap_or_else(|error| panic!("{error}"));
    let options = RunOptions { row_by_row: true, ..Default::default() };
    let one_by_one = match try_compile_with(&program, options, 1) {
        Ok(compiled) => compiled,
        Err(CompileError::Check(error) | CompileError::Compile(error)) => panic!("{error}"),
    };
    // The VAE's layers run as products of the 8 rows' stack with each weight matrix.
    let primal = batched.objectives[0].1.primal.to_string();
    assert!(primal.contains(": mat[8, 4] = matmul"), "the minibatch was not batched:\n{primal}");
    assert!(!one_by_one.objectives[0].1.primal.to_string().contains(": mat[8, 4] = matmul"));

    let mut failures = Vec::new();
    let params: Vec<RuntimeValue> = batched.params.iter().map(|(_, value)| value.clone()).collect();
    let mut compared = 0;
    for (index, ((objective, estimator), (_, reference))) in
        batched.objectives.iter().zip(&one_by_one.objectives).enumerate()
    {
        for stream_index in 0..4 {
            let run = |compiled: &Compiled, function| {
                compiled.run(function, "reverse", arguments(&params, stream(7, stream_index), vec![]))
            };
            let (got, want) = match (run(&batched, &estimator.reverse), run(&one_by_one, &reference.reverse)) {
                (Ok(got), Ok(want)) => (got, want),
                (got, want) => {
                    failures.push(format!("`{objective}` (objective {index}): {got:?} batched, {want:?} row by row"));
                    continue;
                }
            };
            let (got, want) = (got.iter().filter_map(elements).flatten(), want.iter().filter_map(elements).flatten());
            for (k, (got, want)) in got.zip(want).enumerate() {
                compared += 1;
                if !close(got, want, 1e-11, 1e-12) {
                    failures.push(format!(
                        "`{objective}` on stream {stream_index}, element {k}: batched {got:e}, row by row {want:e}"
                    ));
                }
            }
        }
    }
    report("batched_minibatches_equal_their_rows_one_by_one", &failures);
    assert_eq!(compared, 4 * 4 * 86, "every value and gradient element is compared");
    // The batched programs' own modes agree (reverse = forward, native = interpreter), and their
    // gradients (every draw is reparameterised) are the central differences of their values.
    if let Err(failure) = check_compiled_modes(&batched, 7, 2, &mut None) {
        panic!("{failure}");
    }
    match check_finite_differences(&batched, 7) {
        Ok(compared) => assert_eq!(compared, 4 * FD_STREAMS as usize * 85, "every gradient element is compared"),
        Err(failure) => panic!("{failure}"),
    }
}

/// Compares sums computed two ways element by element, to within their rounding, counting each
/// element in `compared` and describing each that differs with `what(k, got, want)`.
fn compare_sums(
    got: &[f64],
    want: &[f64],
    compared: &mut usize,
    failures: &mut Vec<String>,
    what: impl Fn(usize, f64, f64) -> String,
) {
    for (k, (got, want)) in got.iter().zip(want).enumerate() {
        *compared += 1;
        if !close(*got, *want, 1e-11, 1e-12) {
            failures.push(what(k, *got, *want));
        }
    }
}

/// A training step computes a minibatch in parts side by side, and a one-sample estimate over
/// all rows runs so too: the parts' values and gradients sum to the whole's, each row on the
/// stream it has in the whole, for minibatches and all rows, the mean and the sum over rows, an
/// ELBO and an IWELBO per row; native code and interpreter agree.
#[test]
fn a_minibatch_in_parts_sums_to_the_whole() {
    const PARTS: u32 = 2;
    let program = minibatch_program();
    let whole = compile(&program).unwrap_or_else(|error| panic!("{error}"));
    let parted =
        match try_compile_by(&program, RunOptions::default(), |session| session.compile_objectives_in_parts(PARTS)) {
            Ok(compiled) => compiled,
            Err(CompileError::Check(error) | CompileError::Compile(error)) => panic!("{error}"),
        };
    // Each part of the ELBO's minibatch of 8 multiplies the stack of its 4 rows by each layer.
    let primal = parted.objectives[0].1.primal.to_string();
    assert!(primal.contains(": mat[4, 4] = matmul"), "the part was not batched:\n{primal}");

    let params: Vec<RuntimeValue> = whole.params.iter().map(|(_, value)| value.clone()).collect();
    let mut failures = Vec::new();
    let mut compared = 0;
    for ((objective, estimator), (_, part)) in whole.objectives.iter().zip(&parted.objectives) {
        for stream_index in 0..4 {
            // `run` also runs the native code and requires the interpreter's bits.
            let run = |compiled: &Compiled, function, extra| {
                let args = arguments(&params, stream(7, stream_index), extra);
                let values = compiled.run(function, "reverse", args);
                let values = values.unwrap_or_else(|error| panic!("`{objective}`: {error}"));
                values.iter().filter_map(elements).flatten().collect::<Vec<f64>>()
            };
            let want = run(&whole, &estimator.reverse, vec![]);
            let mut got = vec![0.0; want.len()];
            for index in 0..PARTS {
                let values = run(&parted, &part.reverse, vec![RuntimeValue::Int(i64::from(index))]);
                assert_eq!(values.len(), got.len(), "`{objective}`: a part's results");
                got.iter_mut().zip(values).for_each(|(total, x)| *total += x);
            }
            compare_sums(&got, &want, &mut compared, &mut failures, |k, got, want| {
                format!("`{objective}` on stream {stream_index}, element {k}: parts {got:e}, whole {want:e}")
            });
        }
    }
    report("a_minibatch_in_parts_sums_to_the_whole", &failures);
    assert_eq!(compared, 4 * 4 * 86, "every value and gradient element is compared");
}

/// A training step's particles of one example run as one program over all of them where a
/// network is applied to each particle's draw: its value and gradient are the sums of the
/// particles run one at a time, particle `p` on the stream `p` places after the step's.
#[test]
fn particles_at_once_sum_the_particles_run_one_by_one() {
    const PARTICLES: u32 = 12;
    let program = format!(
        "data image: vec[5] = [1.0, 0.0, 1.0, 1.0, 0.0];\n\
         {SMALL_VAE}\
         print grad(elbo(decoder(w1, b1, w2, b2), encoder(image, v1, c1, v2, c2), {{ x: image }}));\n\
         print grad(iwelbo(decoder(w1, b1, w2, b2), encoder(image, v1, c1, v2, c2), {{ x: image }}, 3));\n"
    );
    let compile = |particles| match try_compile_with(&program, RunOptions::default(), particles) {
        Ok(compiled) => compiled,
        Err(CompileError::Check(error) | CompileError::Compile(error)) => panic!("{error}"),
    };
    let (at_once, one) = (compile(PARTICLES), compile(1));
    let primal = at_once.objectives[0].1.primal.to_string();
    assert!(primal.contains(&format!(": mat[{PARTICLES}, 4] = matmul")), "the particles were not batched:\n{primal}");

    let params: Vec<RuntimeValue> = at_once.params.iter().map(|(_, value)| value.clone()).collect();
    let mut failures = Vec::new();
    let mut compared = 0;
    for ((objective, estimator), (_, single)) in at_once.objectives.iter().zip(&one.objectives) {
        for first in [0, 40, 1 << 20] {
            // `run` also runs the native code and requires the interpreter's bits.
            let run = |compiled: &Compiled, function, stream_number| {
                let values = compiled.run(function, "reverse", arguments(&params, stream(7, stream_number), vec![]));
                values.unwrap_or_else(|error| panic!("`{objective}`: {error}"))
            };
            let got: Vec<f64> =
                run(&at_once, &estimator.reverse, first).iter().filter_map(elements).flatten().collect();
            let mut want = vec![0.0; got.len()];
            for particle in 0..u64::from(PARTICLES) {
                let values = run(&one, &single.reverse, first + particle);
                for (total, x) in want.iter_mut().zip(values.iter().filter_map(elements).flatten()) {
                    *total += x;
                }
            }
            compare_sums(&got, &want, &mut compared, &mut failures, |k, got, want| {
                format!("`{objective}` from stream {first}, element {k}: {got:e} at once, {want:e} one by one")
            });
        }
    }
    report("particles_at_once_sum_the_particles_run_one_by_one", &failures);
    assert_eq!(compared, 2 * 3 * 82, "every value and gradient element is compared");
}
