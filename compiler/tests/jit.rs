//! The Cranelift back end against the reference interpreter: on the same arguments and
//! streams, every compiled function must give bit-identical results.

use ppl::codegen;
use ppl::interp::{self, RuntimeValue};
use ppl_runtime::Rng;

fn bits(values: &[RuntimeValue]) -> Vec<u64> {
    values
        .iter()
        .flat_map(|value| match value {
            RuntimeValue::Real(x) => vec![x.to_bits()],
            RuntimeValue::Int(n) => vec![*n as u64],
            RuntimeValue::Bool(b) => vec![u64::from(*b)],
            RuntimeValue::Vec(data) | RuntimeValue::Mat { data, .. } => data.iter().map(|x| x.to_bits()).collect(),
            RuntimeValue::Rng(_) => vec![],
        })
        .collect()
}

/// Compiles every estimate of `source` and compares the three functions on `streams` streams.
fn agree(source: &str, streams: u64) {
    agree_in(source, streams, ppl_runtime::Precision::Double);
}

/// [`agree`], with products of two matrices in `precision`.
fn agree_in(source: &str, streams: u64, precision: ppl_runtime::Precision) {
    let analysis = ppl::check_source("t.ppl", source);
    assert!(!analysis.has_errors(), "{}", analysis.render_diagnostics(ppl::diagnostics::ColorChoice::Never));
    let options = ppl::run::RunOptions { precision: Some(precision), ..ppl::run::RunOptions::default() };
    let session = ppl::run::Session::new(&analysis, options).expect("session");
    let params: Vec<RuntimeValue> = session.params().map(|(_, value)| value.clone()).collect();
    for (objective, estimator) in session.compile_objectives().expect("compiles") {
        for (which, function) in
            [("primal", &estimator.primal), ("forward", &estimator.forward), ("reverse", &estimator.reverse)]
        {
            let compiled =
                codegen::compile(function).unwrap_or_else(|e| panic!("{objective} ({which}): {e}\n{function}"));
            let mut scratch = compiled.scratch();
            for stream in 0..streams {
                let mut args = params.clone();
                args.push(RuntimeValue::Rng(Box::new(Rng::new(7, stream))));
                if which == "forward" {
                    for (param, flag) in params.iter().zip(&estimator.wrt) {
                        if *flag {
                            args.push(match param {
                                RuntimeValue::Vec(data) => RuntimeValue::Vec(vec![1.0; data.len()]),
                                RuntimeValue::Mat { rows, cols, data } => {
                                    RuntimeValue::Mat { rows: *rows, cols: *cols, data: vec![1.0; data.len()] }
                                }
                                _ => RuntimeValue::Real(1.0),
                            });
                        }
                    }
                }
                let expected = interp::run(function, args.clone());
                let actual = compiled.run(&mut scratch, &args);
                match (expected, actual) {
                    (Ok(expected), Some(actual)) => assert_eq!(
                        bits(&expected),
                        bits(&actual),
                        "{objective} ({which}), stream {stream}: interpreter {expected:?}, compiled {actual:?}"
                    ),
                    (Err(_), None) => {}
                    (expected, actual) => panic!("{objective} ({which}), stream {stream}: {expected:?} vs {actual:?}"),
                }
            }
        }
    }
}

#[test]
fn the_flip_example_compiles_to_the_same_bits() {
    agree(include_str!("../../examples/flip.ppl"), 200);
}

#[test]
fn the_mixture_example_compiles_to_the_same_bits() {
    agree(include_str!("../../examples/mixture.ppl"), 100);
}

/// A Bernoulli-logit likelihood over a small minibatch (too small for tiles), whose softplus
/// and sigmoid of matrices a session in f32 computes in f32: the same bits compiled, in f64 and
/// in f32.
#[test]
fn a_likelihood_of_a_minibatch_compiles_to_the_same_bits_in_both_precisions() {
    let source = "data rows: mat[6, 5] = [[1.0, 0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 1.0, 0.0, 1.0], \
         [1.0, 1.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0, 1.0], \
         [0.0, 1.0, 1.0, 1.0, 1.0]];\n\
         param w: mat[5, 2] = uniform_init(0.5);\nparam e: mat[2, 5] = uniform_init(0.5);\n\
         gen decoder() { z ~ mv_normal_diag(zeros(2), ones(2)); x ~ bernoulli_logit(w @ z); }\n\
         gen encoder(x: vec[5]) { z ~ mv_normal_diag(e @ x, softplus(e @ x)); }\n\
         fn row(x: vec[5]) { elbo(decoder(), encoder(x), { x: x }) }\n\
         print grad(mean_over(rows, row, batch: 4));\n";
    let analysis = ppl::check_source("t.ppl", source);
    let objectives = session_in_f32(&analysis).compile_objectives().expect("compiles");
    let reverse = objectives[0].1.reverse.to_string();
    assert!(reverse.contains("softplus_sigmoid.f32"), "{reverse}");
    agree(source, 8);
    agree_in(source, 8, ppl_runtime::Precision::Single);
}

#[test]
fn the_cone_examples_compile_to_the_same_bits() {
    agree(include_str!("../../examples/cone.ppl"), 50);
    agree(include_str!("../../examples/cone_hvi.ppl"), 20);
}

/// Compiled code writes where its own layout says: memory made for another function (here a
/// much smaller one) is refused, never written out of bounds; it reads as many parameters as
/// the function has: fewer are refused, never read out of bounds; and results written into the
/// caller's memory must fit it exactly.
#[test]
fn a_scratch_belongs_to_the_function_that_made_it() {
    let source = "param w: vec[50] = zeros(50);\nparam t: real = 0.5;\n\
                  fn big(w) { E { x ~ mv_normal_diag(w, exp(w)); sum(x^2) } }\n\
                  fn small(t) { E { x ~ normal(t, 1.0); x } }\n\
                  print grad(big(w));\nprint grad(small(t));\n";
    let analysis = ppl::check_source("t.ppl", source);
    assert!(!analysis.has_errors(), "{}", analysis.render_diagnostics(ppl::diagnostics::ColorChoice::Never));
    let session = ppl::run::Session::new(&analysis, ppl::run::RunOptions::default()).expect("session");
    let objectives = session.compile_objectives().expect("compiles");
    let big = codegen::compile(&objectives[0].1.reverse).expect("big compiles");
    let small = codegen::compile(&objectives[1].1.reverse).expect("small compiles");
    let mut own = big.scratch();
    big.set_rng(&mut own, 2, 1, 0);
    let params = vec![0.25; 51];
    assert!(big.call(&mut own, &params), "its own scratch works");
    let mut other = small.scratch();
    assert!(!big.call(&mut other, &params), "another function's scratch is refused");
    assert!(!big.call(&mut own, &params[..50]), "too few parameters are refused");

    // Results written into the caller's memory are those written into the slots, bit for bit,
    // and a buffer of another length is refused.
    let bits = |values: &[f64]| values.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
    big.set_rng(&mut own, 2, 1, 7);
    assert!(big.call(&mut own, &params));
    let in_slots = bits(big.real_results(&own).expect("real results"));
    assert_eq!(in_slots.len(), 52, "the estimate and its gradient with respect to w and t");
    let mut into = vec![f64::NAN; in_slots.len()];
    big.set_rng(&mut own, 2, 1, 7);
    assert!(big.call_into(&mut own, &params, &mut into));
    assert_eq!(bits(&into), in_slots);
    assert!(!big.call_into(&mut own, &params, &mut vec![0.0; in_slots.len() - 1]), "too short a buffer is refused");
    assert!(!big.call_into(&mut own, &params, &mut vec![0.0; in_slots.len() + 1]), "too long a buffer is refused");
}

/// Single-precision products of parameters read the caller's rounded copies when it passes
/// them, with the bits of the products that round the parameters themselves; copies of another
/// length than the parameters are refused.
#[test]
fn products_read_rounded_parameters_with_the_same_bits() {
    let source = "param w: mat[8, 8] = uniform_init(0.5);\n\
                  fn f(w) { E { x ~ normal(0.0, 1.0); x * sum((w @ w) @ ones(8)) } }\n\
                  print grad(f(w));\n";
    let analysis = ppl::check_source("t.ppl", source);
    assert!(!analysis.has_errors(), "{}", analysis.render_diagnostics(ppl::diagnostics::ColorChoice::Never));
    let options =
        ppl::run::RunOptions { precision: Some(ppl_runtime::Precision::Single), ..ppl::run::RunOptions::default() };
    let session = ppl::run::Session::new(&analysis, options).expect("session");
    let objectives = session.compile_objectives().expect("compiles");
    assert!(objectives[0].1.reverse.to_string().contains("matmul.f32 %0"), "a product of the parameter in f32");
    let native = codegen::compile(&objectives[0].1.reverse).expect("compiles");
    let mut scratch = native.scratch();
    let values: Vec<f64> = (0..64).map(|i| (f64::from(i) * 0.37).sin() / 3.0).collect();
    let mut rounded = vec![0.0f32; 64];
    ppl_runtime::round_to_single(&values, &mut rounded);
    let bits = |values: &[f64]| values.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
    let mut results = |params: codegen::FlatParams| {
        native.set_rng(&mut scratch, 1, 3, 0);
        native.call(&mut scratch, params).then(|| bits(native.real_results(&scratch).expect("real results")))
    };
    let plain = results(codegen::FlatParams { values: &values, rounded: None }).expect("runs");
    let given = results(codegen::FlatParams { values: &values, rounded: Some(&rounded) }).expect("runs");
    assert_eq!(plain, given);
    // Rounded copies of other values are read: the product is not rounding the values again.
    let halved: Vec<f32> = rounded.iter().map(|x| x / 2.0).collect();
    let stale = results(codegen::FlatParams { values: &values, rounded: Some(&halved) }).expect("runs");
    assert_ne!(plain, stale);
    assert_eq!(results(codegen::FlatParams { values: &values, rounded: Some(&rounded[..63]) }), None);
}

/// A minibatch objective of two layers, `hidden` units wide, over 16 rows of 6 numbers, its
/// gradient printed: a batched program whose products of matrices a session in f32 computes in
/// f32.
fn two_layers(hidden: usize, batch: usize) -> String {
    let rows: Vec<String> = (0..16)
        .map(|i| {
            let row: Vec<String> = (0..6).map(|j| format!("{:?}", (f64::from(i * 6 + j) * 0.7).sin())).collect();
            format!("[{}]", row.join(", "))
        })
        .collect();
    format!(
        "data rows: mat[16, 6] = [{}];\n\
         param w: mat[{hidden}, 6] = uniform_init(0.5);\n\
         param v: mat[6, {hidden}] = uniform_init(0.5);\n\
         fn row(x: vec[6]) {{ E {{ z ~ normal(0.0, 1.0); sum(v @ tanh(w @ x)) * z }} }}\n\
         print grad(mean_over(rows, row, batch: {batch}));\n",
        rows.join(", ")
    )
}

/// A session of a checked program, computing its products in f32.
fn session_in_f32(analysis: &ppl::Analysis) -> ppl::run::Session<'_> {
    let options =
        ppl::run::RunOptions { precision: Some(ppl_runtime::Precision::Single), ..ppl::run::RunOptions::default() };
    ppl::run::Session::new(analysis, options).expect("session")
}

/// A matrix that two single-precision products read (a minibatch's rows: by the first layer
/// and by its weights' gradient) is rounded once, by the first, and read rounded by the other:
/// the bits of products that each round it.
#[test]
fn an_operand_of_two_f32_products_is_rounded_once_with_the_same_bits() {
    let source = two_layers(3, 8);
    // The reverse program has such a matrix: an operand, other than a parameter, of two products.
    let analysis = ppl::check_source("t.ppl", &source);
    let objectives = session_in_f32(&analysis).compile_objectives().expect("compiles");
    let reverse = objectives[0].1.reverse.to_string();
    let header = reverse.lines().next().unwrap_or_default();
    let mut operands: Vec<String> = reverse
        .lines()
        .filter_map(|line| line.split_once("= matmul.f32 ").map(|(_, operands)| operands.to_string()))
        .flat_map(|operands| {
            operands.split(", ").map(|operand| operand.trim_end_matches('ᵀ').to_string()).collect::<Vec<_>>()
        })
        .filter(|operand| !header.contains(&format!("{operand}:")))
        .collect();
    operands.sort();
    assert!(operands.windows(2).any(|pair| pair[0] == pair[1]), "no shared operand in\n{reverse}");
    agree_in(&source, 4, ppl_runtime::Precision::Single);
}

/// The values of a session's matrix parameters (`two_layers`' weights), in order.
fn weights(session: &ppl::run::Session<'_>) -> Vec<f64> {
    let matrices = session.params().map(|(_, value)| match value {
        RuntimeValue::Mat { data, .. } => data.clone(),
        _ => Vec::new(),
    });
    matrices.flatten().collect()
}

/// The parameters that only single-precision products read (`params_read_rounded`) are read
/// through their rounded copy alone: compiled code given NaN for their f64 values computes the
/// same bits. (A training moves such weights in f32 and widens them only when it ends.)
#[test]
fn parameters_that_only_f32_products_read_are_read_rounded_alone() {
    let analysis = ppl::check_source("t.ppl", &two_layers(40, 16));
    let session = session_in_f32(&analysis);
    let objectives = session.compile_objectives().expect("compiles");
    let reverse = &objectives[0].1.reverse;
    let read_rounded = ppl::ir::precision::params_read_rounded(reverse);
    assert_eq!(read_rounded, [true, true, false], "both weights, not the stream:\n{reverse}");
    let params = weights(&session);
    let mut rounded = vec![0.0; params.len()];
    ppl_runtime::round_to_single(&params, &mut rounded);
    let native = codegen::compile(reverse).expect("compiles");
    let mut scratch = native.scratch();
    let width = 1 + 40 * 6 * 2;
    let (mut given, mut lagging) = (vec![f64::NAN; width], vec![f64::NAN; width]);
    native.set_rng(&mut scratch, 2, 1, 5);
    let current = codegen::FlatParams { values: &params, rounded: Some(&rounded) };
    assert!(native.call_into(&mut scratch, current, &mut given));
    native.set_rng(&mut scratch, 2, 1, 5);
    let nans = vec![f64::NAN; params.len()];
    assert!(native.call_into(
        &mut scratch,
        codegen::FlatParams { values: &nans, rounded: Some(&rounded) },
        &mut lagging
    ));
    assert!(given.iter().all(|x| x.is_finite()));
    let bits = |values: &[f64]| values.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&given), bits(&lagging));

    // A parameter read in f64 as well (here by `sum(w)`) is not among them.
    let source = two_layers(40, 16).replace("* z }", "* z + sum(w) }");
    let analysis = ppl::check_source("t.ppl", &source);
    let objectives = session_in_f32(&analysis).compile_objectives().expect("compiles");
    assert_eq!(ppl::ir::precision::params_read_rounded(&objectives[0].1.reverse), [false, true, false]);
}

/// A caller may take the weight gradients that single-precision products sum as the f32 sums
/// themselves, two to a word: the same numbers as the widened results, the others unchanged.
#[test]
fn results_taken_in_f32_are_the_widened_results_unwidened() {
    let analysis = ppl::check_source("t.ppl", &two_layers(40, 16));
    let session = session_in_f32(&analysis);
    let objectives = session.compile_objectives().expect("compiles");
    let reverse = &objectives[0].1.reverse;
    let narrowable = ppl::ir::precision::narrowable_results(reverse);
    assert_eq!(narrowable, [false, true, true], "both weight gradients, not the estimate:\n{reverse}");
    let native = codegen::compile(reverse).expect("compiles");
    let mut scratch = native.scratch();
    let params = weights(&session);
    let width = 1 + 40 * 6 * 2;
    let (mut wide, mut narrow) = (vec![f64::NAN; width], vec![f64::NAN; width]);
    native.set_rng(&mut scratch, 2, 1, 5);
    assert!(native.call_into(&mut scratch, &params[..], &mut wide));
    native.set_rng(&mut scratch, 2, 1, 5);
    assert!(native.call_into_narrowing(&mut scratch, &params[..], &mut narrow));
    assert_eq!(wide[0].to_bits(), narrow[0].to_bits(), "the estimate is the same");
    for range in [1..241, 241..481] {
        let taken = ppl_runtime::narrow_view(&narrow[range.clone()], range.len());
        assert_eq!(taken.len(), 240);
        let widened: Vec<u64> = taken.iter().map(|x| f64::from(*x).to_bits()).collect();
        let expected: Vec<u64> = wide[range].iter().map(|x| x.to_bits()).collect();
        assert_eq!(widened, expected);
    }
}
