//! Building, verifying and printing small functions.

use super::builder::FunctionBuilder;
use super::function::{BinaryOp, Block, Function, Inst, Noise, Op, ReduceOp, Value};
use super::types::Type;
use super::verify::verify;

/// `E { x ~ normal(theta, 1); x^2 }` for one draw: returns the value and the next stream.
pub(crate) fn square_of_normal() -> Function {
    let (mut b, params) = FunctionBuilder::new("square", &[Type::Real, Type::Rng]);
    let (theta, rng) = (params[0], params[1]);
    let draw = b.push(Op::Draw { noise: Noise::Normal, rng }).expect("draw");
    let x = b.push1(Op::Binary(BinaryOp::Add, theta, draw[0])).expect("add");
    let two = b.real(2.0).expect("const");
    let square = b.push1(Op::Binary(BinaryOp::Pow, x, two)).expect("pow");
    b.finish(vec![square, draw[1]]).expect("finish")
}

#[test]
fn a_built_function_verifies_and_prints() {
    let function = square_of_normal();
    assert_eq!(verify(&function), Ok(()));
    assert_eq!(
        function.to_string(),
        "fn square(%0: real, %1: rng) -> (real, rng) {
    %2: real, %3: rng = draw normal %1
    %4: real = add %0, %2
    %5: real = const 2.0
    %6: real = pow %4, %5
    return %6, %3
}"
    );
}

#[test]
fn loops_and_branches_verify_and_print() {
    let (mut b, params) = FunctionBuilder::new("sum_positive", &[Type::Vec(3)]);
    let v = params[0];
    let (lo, hi) = (b.int(0).expect("lo"), b.int(3).expect("hi"));
    let zero = b.real(0.0).expect("zero");
    let body_params = b.begin_block(&[Type::Int, Type::Real]);
    let (i, acc) = (body_params[0], body_params[1]);
    let element = b.push1(Op::Extract { aggregate: v, index: i }).expect("extract");
    let positive = b.push1(Op::Compare(super::CompareOp::Gt, element, zero)).expect("cmp");
    b.begin_block(&[]);
    let added = b.push1(Op::Binary(BinaryOp::Add, acc, element)).expect("add");
    let then = b.end_block(vec![added]).expect("then");
    b.begin_block(&[]);
    let otherwise = b.end_block(vec![acc]).expect("else");
    let next = b.push_if(positive, then, otherwise).expect("if");
    let body = b.end_block(next).expect("body");
    let total = b.push_for(lo, hi, vec![zero], body).expect("for");
    let sum = b.push1(Op::Reduce(ReduceOp::Sum, v)).expect("sum");
    let both = b.push1(Op::Binary(BinaryOp::Sub, total[0], sum)).expect("sub");
    let function = b.finish(vec![both]).expect("finish");
    assert_eq!(verify(&function), Ok(()));
    let printed = function.to_string();
    assert!(printed.contains("for %1..%2 init(%3) |%4: int, %5: real| {"), "{printed}");
    assert!(printed.contains("yield %8"), "{printed}");
}

#[test]
fn the_builder_rejects_ill_typed_operations() {
    let (mut b, params) = FunctionBuilder::new("bad", &[Type::Vec(2), Type::Vec(3)]);
    assert!(b.push(Op::Binary(BinaryOp::Add, params[0], params[1])).is_err(), "vec[2] + vec[3]");
    assert!(b.push(Op::Draw { noise: Noise::Uniform, rng: params[0] }).is_err(), "draw from a vector");
    assert!(b.push(Op::MatMul(params[0], params[1])).is_err(), "inner product of different lengths");
}

#[test]
fn the_verifier_finds_use_before_definition_and_double_definition() {
    let mut function = square_of_normal();
    function.body.insts.swap(0, 1);
    assert!(verify(&function).is_err_and(|e| e.message.contains("not defined")));

    let mut function = square_of_normal();
    let duplicate = function.body.insts[2].clone();
    function.body.insts.push(duplicate);
    assert!(verify(&function).is_err_and(|e| e.message.contains("defined twice")));
}

#[test]
fn the_verifier_rejects_values_escaping_their_block() {
    let (mut b, params) = FunctionBuilder::new("escape", &[Type::Bool]);
    b.begin_block(&[]);
    let inner = b.real(1.0).expect("const");
    let then = b.end_block(vec![inner]).expect("then");
    b.begin_block(&[]);
    let other = b.real(2.0).expect("const");
    let otherwise = b.end_block(vec![other]).expect("else");
    b.push_if(params[0], then, otherwise).expect("if");
    let function = b.finish(vec![inner]).expect("finish");
    assert!(verify(&function).is_err_and(|e| e.message.contains("not visible")));
}

#[test]
fn the_verifier_checks_recorded_result_types() {
    let mut function = square_of_normal();
    function.body.insts.push(Inst { results: vec![Value(99)], op: Op::Reduce(ReduceOp::Sum, Value(0)), span: None });
    assert!(verify(&function).is_err());
    let empty = Function { name: "empty".into(), body: Block::default(), value_types: Vec::new() };
    assert_eq!(verify(&empty), Ok(()));
}

mod forward_mode {
    use ppl_runtime::Rng;

    use crate::interp::{run, RuntimeValue};
    use crate::ir::jvp::jvp;
    use crate::ir::verify::verify;
    use crate::ir::{
        BinaryOp, CompareOp, Function, FunctionBuilder, Kernel, Noise, Op, ReduceOp, Type, UnaryOp, Value,
    };

    /// A function of (theta: real, v: vec[3], rng) -> real exercising every tangent rule:
    /// every unary and binary operation, the softplus-and-sigmoid kernel, select, build,
    /// extract, reductions, products, a branch and a loop carrying a real.
    fn everything() -> Function {
        let (mut b, params) = FunctionBuilder::new("everything", &[Type::Real, Type::Vec(3), Type::Rng]);
        let (theta, v, rng) = (params[0], params[1], params[2]);
        let mut terms: Vec<Value> = Vec::new();
        let positive = {
            let square = b.push1(Op::Binary(BinaryOp::Mul, theta, theta)).expect("mul");
            let one = b.real(1.0).expect("1");
            b.push1(Op::Binary(BinaryOp::Add, square, one)).expect("add")
        };
        for op in [
            UnaryOp::Neg,
            UnaryOp::Exp,
            UnaryOp::Log,
            UnaryOp::Log1p,
            UnaryOp::Expm1,
            UnaryOp::Sqrt,
            UnaryOp::Abs,
            UnaryOp::Sin,
            UnaryOp::Cos,
            UnaryOp::Tan,
            UnaryOp::Tanh,
            UnaryOp::Sigmoid,
            UnaryOp::Softplus,
            UnaryOp::Lgamma,
            UnaryOp::Digamma,
        ] {
            let operand = if matches!(op, UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Lgamma | UnaryOp::Digamma) {
                positive
            } else {
                theta
            };
            terms.push(b.push1(Op::Unary(op, operand)).expect("unary"));
        }
        let both = b.push(Op::Kernel(Kernel::SoftplusSigmoid, vec![theta])).expect("softplus_sigmoid");
        terms.extend(both);
        let scaled_v = b.push1(Op::Binary(BinaryOp::Mul, v, theta)).expect("mul");
        let both = b.push(Op::Kernel(Kernel::SoftplusSigmoid, vec![scaled_v])).expect("softplus_sigmoid");
        for result in both {
            terms.push(b.push1(Op::Reduce(ReduceOp::Sum, result)).expect("sum"));
        }
        let softplus_v = b.push1(Op::Unary(UnaryOp::Softplus, v)).expect("softplus");
        terms.push(b.push1(Op::Reduce(ReduceOp::Sum, softplus_v)).expect("sum"));
        for op in
            [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Pow, BinaryOp::Min, BinaryOp::Max]
        {
            terms.push(b.push1(Op::Binary(op, positive, theta)).expect("binary"));
        }
        let draw = b.push(Op::Draw { noise: Noise::Normal, rng }).expect("draw");
        terms.push(b.push1(Op::Binary(BinaryOp::Mul, draw[0], theta)).expect("mul"));
        let scaled = b.push1(Op::Binary(BinaryOp::Mul, v, theta)).expect("mul");
        let shifted = b.push1(Op::Binary(BinaryOp::Sub, theta, v)).expect("broadcast sub");
        terms.push(b.push1(Op::Reduce(ReduceOp::Sum, shifted)).expect("sum"));
        terms.push(b.push1(Op::Reduce(ReduceOp::LogSumExp, scaled)).expect("lse"));
        terms.push(b.push1(Op::MatMul(v, scaled)).expect("dot"));
        let matrix = b.push1(Op::Build(vec![v, scaled])).expect("matrix");
        let product = b.push1(Op::MatMul(matrix, v)).expect("matvec");
        let one = b.int(1).expect("1");
        terms.push(b.push1(Op::Extract { aggregate: product, index: one }).expect("extract"));
        let built = b.push1(Op::Build(vec![theta, positive])).expect("build");
        terms.push(b.push1(Op::Extract { aggregate: built, index: one }).expect("extract"));
        let zero = b.real(0.0).expect("0");
        let is_positive = b.push1(Op::Compare(CompareOp::Gt, theta, zero)).expect("cmp");
        terms.push(b.push1(Op::Select { cond: is_positive, if_true: positive, if_false: theta }).expect("select"));

        b.begin_block(&[]);
        let then_value = b.push1(Op::Binary(BinaryOp::Mul, theta, positive)).expect("mul");
        let then = b.end_block(vec![then_value]).expect("then");
        b.begin_block(&[]);
        let otherwise = b.end_block(vec![zero]).expect("else");
        terms.push(b.push_if(is_positive, then, otherwise).expect("if")[0]);

        let (lo, hi) = (b.int(0).expect("0"), b.int(3).expect("3"));
        let loop_params = b.begin_block(&[Type::Int, Type::Real]);
        let element = b.push1(Op::Extract { aggregate: v, index: loop_params[0] }).expect("extract");
        let weighted = b.push1(Op::Binary(BinaryOp::Mul, element, loop_params[1])).expect("mul");
        let next = b.push1(Op::Binary(BinaryOp::Add, weighted, theta)).expect("add");
        let body = b.end_block(vec![next]).expect("body");
        terms.push(b.push_for(lo, hi, vec![theta], body).expect("for")[0]);

        let all = b.push1(Op::Build(terms)).expect("all terms");
        let total = b.push1(Op::Reduce(ReduceOp::Sum, all)).expect("sum");
        b.finish(vec![total]).expect("finish")
    }

    fn value(function: &Function, theta: f64, v: &[f64], extra: Vec<RuntimeValue>) -> Vec<f64> {
        let mut args =
            vec![RuntimeValue::Real(theta), RuntimeValue::Vec(v.to_vec()), RuntimeValue::Rng(Box::new(Rng::new(7, 3)))];
        args.extend(extra);
        run(function, args).expect("runs").iter().map(|out| out.as_real().expect("real")).collect()
    }

    #[test]
    fn tangents_match_central_finite_differences_with_common_random_numbers() {
        let function = everything();
        verify(&function).expect("the test function verifies");
        let forward = jvp(&function, &[true, true, false]).expect("jvp");
        verify(&forward).unwrap_or_else(|e| panic!("{e}\n{forward}"));

        let direction = (1.0, [0.3, -0.2, 0.5]);
        for theta in [0.4, 1.3] {
            let v = [0.7, -1.1, 0.2];
            let tangent_args = vec![RuntimeValue::Real(direction.0), RuntimeValue::Vec(direction.1.to_vec())];
            let out = value(&forward, theta, &v, tangent_args);
            let (primal, tangent) = (out[0], out[1]);
            assert_eq!(primal.to_bits(), value(&function, theta, &v, vec![])[0].to_bits(), "primal unchanged");

            let h = 1e-6;
            let at = |s: f64| {
                let shifted: Vec<f64> = v.iter().zip(direction.1).map(|(x, d)| x + s * d).collect();
                value(&function, theta + s * direction.0, &shifted, vec![])[0]
            };
            let finite_difference = (at(h) - at(-h)) / (2.0 * h);
            assert!(
                (tangent - finite_difference).abs() < 1e-5 * (1.0 + finite_difference.abs()),
                "theta {theta}: jvp {tangent} vs finite difference {finite_difference}"
            );
        }
    }

    /// A differentiated softplus and its derivative come from one kernel; one whose argument
    /// has no tangent stays a plain softplus.
    #[test]
    fn a_differentiated_softplus_shares_its_kernel_with_its_derivative() {
        let (mut b, params) = FunctionBuilder::new("softplus", &[Type::Vec(3), Type::Real]);
        let differentiated = b.push1(Op::Unary(UnaryOp::Softplus, params[0])).expect("softplus");
        let constant = b.push1(Op::Unary(UnaryOp::Softplus, params[1])).expect("softplus");
        let sum = b.push1(Op::Reduce(ReduceOp::Sum, differentiated)).expect("sum");
        let total = b.push1(Op::Binary(BinaryOp::Add, sum, constant)).expect("add");
        let function = b.finish(vec![total]).expect("finish");
        let forward = jvp(&function, &[true, false]).expect("jvp");
        verify(&forward).unwrap_or_else(|e| panic!("{e}\n{forward}"));
        let printed = forward.to_string();
        assert!(
            printed.contains("%3: vec[3], %4: vec[3] = softplus_sigmoid %0\n    %5: vec[3] = mul %4, %2"),
            "{printed}"
        );
        assert!(printed.contains("= softplus %1") && !printed.contains("= sigmoid %"), "{printed}");
        let args = vec![
            RuntimeValue::Vec(vec![0.5, -40.0, 3.0]),
            RuntimeValue::Real(2.0),
            RuntimeValue::Vec(vec![1.0, 2.0, -1.0]),
        ];
        let out = run(&forward, args).expect("runs");
        let (primal, tangent) = (out[0].as_real().expect("real"), out[1].as_real().expect("real"));
        let softplus = |x: f64| ppl_runtime::softplus(x);
        let sigmoid = |x: f64| ppl_runtime::sigmoid(x);
        let expected = softplus(0.5) + softplus(-40.0) + softplus(3.0) + softplus(2.0);
        assert_eq!(primal.to_bits(), expected.to_bits());
        assert_eq!(tangent.to_bits(), (sigmoid(0.5) + 2.0 * sigmoid(-40.0) - sigmoid(3.0)).to_bits());
    }

    #[test]
    fn no_derivative_flows_through_detach() {
        let (mut b, params) = FunctionBuilder::new("detached", &[Type::Real]);
        let held = b.push1(Op::Unary(UnaryOp::Detach, params[0])).expect("detach");
        let product = b.push1(Op::Binary(BinaryOp::Mul, held, params[0])).expect("mul");
        let function = b.finish(vec![product]).expect("finish");
        let forward = jvp(&function, &[true]).expect("jvp");
        let out = run(&forward, vec![RuntimeValue::Real(3.0), RuntimeValue::Real(1.0)]).expect("runs");
        // d/dx (detach(x) * x) = detach(x) = 3, not 2x = 6.
        assert_eq!(out, vec![RuntimeValue::Real(9.0), RuntimeValue::Real(3.0)]);
    }

    #[test]
    fn differentiating_nothing_gives_zero_tangents() {
        let function = everything();
        let forward = jvp(&function, &[false, false, false]).expect("jvp");
        verify(&forward).expect("verifies");
        let out = value(&forward, 0.5, &[1.0, 2.0, 3.0], vec![]);
        assert_eq!(out[1], 0.0);
    }
}

mod dead_code {
    use ppl_runtime::Rng;

    use crate::interp::{run, RuntimeValue};
    use crate::ir::dce::eliminate_dead_code;
    use crate::ir::verify::verify;
    use crate::ir::{BinaryOp, FunctionBuilder, Kernel, Noise, Op, ReduceOp, Type, UnaryOp};

    #[test]
    fn unused_instructions_go_and_results_stay_the_same() {
        let (mut b, params) = FunctionBuilder::new("f", &[Type::Real, Type::Rng, Type::Bool]);
        let (theta, rng, flag) = (params[0], params[1], params[2]);
        let used = b.push(Op::Draw { noise: Noise::Normal, rng }).expect("draw");
        let _unused_draw = b.push(Op::Draw { noise: Noise::Uniform, rng: used[1] }).expect("draw");
        let _unused_exp = b.push1(Op::Unary(UnaryOp::Exp, theta)).expect("exp");
        b.begin_block(&[]);
        let dead_inner = b.real(5.0).expect("const");
        let then = b.end_block(vec![dead_inner]).expect("then");
        b.begin_block(&[]);
        let other = b.real(6.0).expect("const");
        let otherwise = b.end_block(vec![other]).expect("else");
        let _unused_if = b.push_if(flag, then, otherwise).expect("if");
        let sum = b.push1(Op::Binary(BinaryOp::Add, theta, used[0])).expect("add");
        let mut function = b.finish(vec![sum]).expect("finish");

        let args =
            || vec![RuntimeValue::Real(0.5), RuntimeValue::Rng(Box::new(Rng::new(1, 1))), RuntimeValue::Bool(true)];
        let before = run(&function, args()).expect("runs");
        eliminate_dead_code(&mut function);
        verify(&function).expect("still verifies");
        assert_eq!(function.body.insts.len(), 2, "only the used draw and the sum remain:\n{function}");
        assert_eq!(run(&function, args()).expect("runs"), before);
    }

    /// A softplus-and-sigmoid kernel of which one result is used becomes the unary operation
    /// giving that one.
    #[test]
    fn a_kernel_with_one_result_used_is_narrowed_to_it() {
        for (used, name) in [(0, "softplus"), (1, "sigmoid")] {
            let (mut b, params) = FunctionBuilder::new("f", &[Type::Vec(2)]);
            let both = b.push(Op::Kernel(Kernel::SoftplusSigmoid, vec![params[0]])).expect("softplus_sigmoid");
            let sum = b.push1(Op::Reduce(ReduceOp::Sum, both[used])).expect("sum");
            let mut function = b.finish(vec![sum]).expect("finish");
            let args = || vec![RuntimeValue::Vec(vec![0.3, -2.0])];
            let before = run(&function, args()).expect("runs");
            eliminate_dead_code(&mut function);
            verify(&function).unwrap_or_else(|e| panic!("{e}\n{function}"));
            let printed = function.to_string();
            assert!(printed.contains(&format!("= {name} %0")) && !printed.contains("softplus_sigmoid"), "{printed}");
            assert_eq!(run(&function, args()).expect("runs"), before);
        }
    }

    #[test]
    fn a_used_loop_and_what_it_reads_are_kept() {
        let (mut b, params) = FunctionBuilder::new("g", &[Type::Real]);
        let (lo, hi) = (b.int(0).expect("0"), b.int(3).expect("3"));
        let body_params = b.begin_block(&[Type::Int, Type::Real]);
        let doubled = b.push1(Op::Binary(BinaryOp::Mul, body_params[1], params[0])).expect("mul");
        let _dead_in_body = b.push1(Op::Unary(UnaryOp::Sin, doubled)).expect("sin");
        let body = b.end_block(vec![doubled]).expect("body");
        let result = b.push_for(lo, hi, vec![params[0]], body).expect("for");
        let mut function = b.finish(result).expect("finish");
        eliminate_dead_code(&mut function);
        verify(&function).expect("verifies");
        let printed = function.to_string();
        assert!(printed.contains("for ") && !printed.contains("sin"), "{printed}");
        assert_eq!(run(&function, vec![RuntimeValue::Real(2.0)]).expect("runs"), vec![RuntimeValue::Real(16.0)]);
    }
}

mod common_subexpressions {
    use crate::interp::{run, RuntimeValue};
    use crate::ir::cse::eliminate_common_subexpressions;
    use crate::ir::dce::eliminate_dead_code;
    use crate::ir::verify::verify;
    use crate::ir::{BinaryOp, CompareOp, FunctionBuilder, Op, Type, UnaryOp};

    #[test]
    fn repeated_operations_are_merged_where_visible() {
        let (mut b, params) = FunctionBuilder::new("f", &[Type::Real]);
        let x = params[0];
        let first = b.push1(Op::Unary(UnaryOp::Exp, x)).expect("exp");
        let second = b.push1(Op::Unary(UnaryOp::Exp, x)).expect("exp again");
        let zero = b.real(0.0).expect("0");
        let positive = b.push1(Op::Compare(CompareOp::Gt, x, zero)).expect("cmp");
        b.begin_block(&[]);
        let inside = b.push1(Op::Unary(UnaryOp::Exp, x)).expect("exp in branch");
        let only_inside = b.push1(Op::Unary(UnaryOp::Sin, x)).expect("sin in branch");
        let sum = b.push1(Op::Binary(BinaryOp::Add, inside, only_inside)).expect("add");
        let then = b.end_block(vec![sum]).expect("then");
        b.begin_block(&[]);
        let also_sin = b.push1(Op::Unary(UnaryOp::Sin, x)).expect("sin in the other branch");
        let otherwise = b.end_block(vec![also_sin]).expect("else");
        let branch = b.push_if(positive, then, otherwise).expect("if");
        let total = b.push1(Op::Binary(BinaryOp::Mul, first, second)).expect("mul");
        let out = b.push1(Op::Binary(BinaryOp::Add, total, branch[0])).expect("add");
        let mut function = b.finish(vec![out]).expect("finish");

        let before = run(&function, vec![RuntimeValue::Real(0.3)]).expect("runs");
        eliminate_common_subexpressions(&mut function);
        eliminate_dead_code(&mut function);
        verify(&function).unwrap_or_else(|e| panic!("{e}\n{function}"));
        let printed = function.to_string();
        assert_eq!(printed.matches("exp %0").count(), 1, "one exp, reused inside the branch:\n{printed}");
        assert_eq!(printed.matches("sin %0").count(), 2, "a branch's value is not visible in the other:\n{printed}");
        assert_eq!(run(&function, vec![RuntimeValue::Real(0.3)]).expect("runs"), before);
    }
}

/// A softplus or sigmoid of a value the softplus-and-sigmoid kernel has taken is its result.
#[test]
fn the_softplus_and_sigmoid_after_their_kernel_are_its_results() {
    use super::function::{Kernel, UnaryOp};
    let (mut b, params) = FunctionBuilder::new("f", &[Type::Real]);
    let both = b.push(Op::Kernel(Kernel::SoftplusSigmoid, vec![params[0]])).expect("softplus_sigmoid");
    let softplus = b.push1(Op::Unary(UnaryOp::Softplus, params[0])).expect("softplus");
    let sigmoid = b.push1(Op::Unary(UnaryOp::Sigmoid, params[0])).expect("sigmoid");
    let first = b.push1(Op::Binary(BinaryOp::Mul, softplus, both[1])).expect("mul");
    let second = b.push1(Op::Binary(BinaryOp::Mul, both[0], sigmoid)).expect("mul");
    let mut function = b.finish(vec![first, second]).expect("finish");
    let before = crate::interp::run(&function, vec![crate::interp::RuntimeValue::Real(0.7)]).expect("runs");
    super::cse::eliminate_common_subexpressions(&mut function);
    super::dce::eliminate_dead_code(&mut function);
    assert_eq!(verify(&function), Ok(()));
    assert_eq!(
        function.to_string(),
        "fn f(%0: real) -> (real, real) {
    %1: real, %2: real = softplus_sigmoid %0
    %5: real = mul %1, %2
    return %5, %5
}"
    );
    let after = crate::interp::run(&function, vec![crate::interp::RuntimeValue::Real(0.7)]).expect("runs");
    assert_eq!(after, before);
    assert!(super::verify::result_types(&Op::Kernel(Kernel::SoftplusSigmoid, vec![params[0]]), |_| Some(Type::Int))
        .is_err());
}

mod constant_folding {
    use crate::interp::{run, RuntimeValue};
    use crate::ir::const_fold::fold_constants;
    use crate::ir::dce::eliminate_dead_code;
    use crate::ir::verify::verify;
    use crate::ir::{BinaryOp, CompareOp, Constant, FunctionBuilder, Op, Type, UnaryOp};

    #[test]
    fn constant_arithmetic_folds_to_what_the_interpreter_computes() {
        let (mut b, params) = FunctionBuilder::new("f", &[Type::Real]);
        let (two, three) = (b.real(2.0).expect("2"), b.real(3.0).expect("3"));
        let power = b.push1(Op::Binary(BinaryOp::Pow, two, three)).expect("pow");
        let log = b.push1(Op::Unary(UnaryOp::Log, power)).expect("log");
        let bigger = b.push1(Op::Compare(CompareOp::Gt, log, two)).expect("cmp");
        let chosen = b.push1(Op::Select { cond: bigger, if_true: log, if_false: params[0] }).expect("select");
        let out = b.push1(Op::Binary(BinaryOp::Mul, chosen, params[0])).expect("mul");
        let mut function = b.finish(vec![out, log]).expect("finish");

        let before = run(&function, vec![RuntimeValue::Real(1.7)]).expect("runs");
        fold_constants(&mut function);
        eliminate_dead_code(&mut function);
        verify(&function).expect("verifies");
        assert!(
            function.body.insts.iter().any(|inst| inst.op == Op::Const(Constant::Real(libm::log(8.0)))),
            "log(2^3) folded:\n{function}"
        );
        assert!(
            function.body.insts.iter().any(|inst| inst.op == Op::Const(Constant::Bool(true))),
            "log 8 > 2:\n{function}"
        );
        assert_eq!(run(&function, vec![RuntimeValue::Real(1.7)]).expect("runs"), before);
    }

    #[test]
    fn constant_squares_and_first_powers_fold_to_their_values() {
        // `x ^ 2` is rewritten to `x * x` before folding: the fold must multiply x by x, not by 2.
        for (base, exponent, expected) in [(3.0, 2.0, 9.0), (1.2, 2.0, 1.2 * 1.2), (-0.5, 1.0, -0.5)] {
            let (mut b, _) = FunctionBuilder::new("square", &[]);
            let (x, n) = (b.real(base).expect("x"), b.real(exponent).expect("n"));
            let power = b.push1(Op::Binary(BinaryOp::Pow, x, n)).expect("pow");
            let mut function = b.finish(vec![power]).expect("finish");
            let before = run(&function, Vec::new()).expect("runs");
            fold_constants(&mut function);
            eliminate_dead_code(&mut function);
            assert_eq!(run(&function, Vec::new()).expect("runs"), before, "{base}^{exponent}");
            assert_eq!(before, vec![RuntimeValue::Real(expected)], "{base}^{exponent}");
        }
    }

    #[test]
    fn an_overflowing_integer_operation_is_left_to_fail_at_run_time() {
        let (mut b, _) = FunctionBuilder::new("g", &[]);
        let big = b.int(i64::MAX).expect("max");
        let one = b.int(1).expect("1");
        let sum = b.push1(Op::Binary(BinaryOp::Add, big, one)).expect("add");
        let mut function = b.finish(vec![sum]).expect("finish");
        fold_constants(&mut function);
        assert!(matches!(function.body.insts[2].op, Op::Binary(..)));
        assert!(run(&function, vec![]).is_err());
    }
}

/// An `if` that yields a vector from outside in both branches no longer carries it (which
/// would copy it on every run of the `if`): its uses read the vector itself.
#[test]
fn an_if_result_both_branches_take_from_outside_is_forwarded() {
    let (mut b, params) = FunctionBuilder::new("pick", &[Type::Vec(3), Type::Bool, Type::Real]);
    let (v, cond, x) = (params[0], params[1], params[2]);
    b.begin_block(&[]);
    let doubled = b.add(x, x).expect("add");
    let then = b.end_block(vec![doubled, v]).expect("then");
    b.begin_block(&[]);
    let otherwise = b.end_block(vec![x, v]).expect("otherwise");
    let results = b.push_if(cond, then, otherwise).expect("if");
    let total = b.push1(Op::Reduce(ReduceOp::Sum, results[1])).expect("sum");
    let sum = b.add(results[0], total).expect("add");
    let mut function = b.finish(vec![sum]).expect("finish");
    super::cse::eliminate_common_subexpressions(&mut function);
    assert_eq!(verify(&function), Ok(()));
    let branch = function.body.insts.iter().find(|inst| matches!(inst.op, Op::If { .. })).expect("the if");
    assert_eq!(branch.results.len(), 1, "only the value the branches compute is yielded:\n{function}");
    assert!(function.to_string().contains("sum %0"), "the sum reads the parameter itself:\n{function}");
}

/// The scheduler gathers the elementwise operations over `4 × 3` matrices: a vector operation
/// they need moves above them, what reads them (or what must stay after those) stays after
/// them in order, and an index that may fail keeps its place among the other instructions.
/// The function computes what it did.
#[test]
fn elementwise_operations_of_one_shape_are_scheduled_together() {
    use super::schedule::cluster_elementwise;
    use super::{CompareOp, UnaryOp};
    let (mut b, params) = FunctionBuilder::new("run", &[Type::Mat(4, 3), Type::Vec(4), Type::Vec(3), Type::Real]);
    let (m, v, w, s) = (params[0], params[1], params[2], params[3]);
    let squares = b.mul(m, m).expect("mul");
    let total = b.push1(Op::Reduce(ReduceOp::Sum, squares)).expect("sum");
    let two = b.int(2).expect("index");
    let element = b.push1(Op::Extract { aggregate: v, index: two }).expect("extract");
    let doubled = b.add(v, v).expect("vector add");
    let outer = b.push1(Op::Outer(doubled, w)).expect("outer");
    let scaled = b.mul(total, s).expect("scalar mul");
    let sum = b.add(squares, outer).expect("add");
    let zero = b.real(0.0).expect("zero");
    let positive = b.compare(CompareOp::Ge, scaled, zero).expect("compare");
    b.push(Op::Check { cond: positive, culprit: scaled, message: "negative: {}".into() }).expect("check");
    let times = b.mul(sum, scaled).expect("mul by a later scalar");
    let logs = b.unary(UnaryOp::Log1p, times).expect("log1p");
    let function = b.finish(vec![logs, element]).expect("finish");
    let mut scheduled = function.clone();
    cluster_elementwise(&mut scheduled);
    assert_eq!(verify(&scheduled), Ok(()));
    // The run (`squares`, `outer`, `sum`) with `doubled` above it; then, in their order, the
    // sum, the index, the scalar, the check's comparison; then the second run.
    let insts = &scheduled.body.insts;
    let position = |value: Value| insts.iter().position(|inst| inst.results.contains(&value)).expect("kept");
    assert_eq!([squares, outer, sum].map(position), [0, 1, 2].map(|k| k + position(squares)), "{scheduled}");
    assert!(position(doubled) < position(squares), "{scheduled}");
    assert!(position(sum) < position(total) && position(total) < position(element), "{scheduled}");
    assert!(position(positive) < position(times) && position(times) < position(logs), "{scheduled}");
    let is_check = |inst: &Inst| matches!(inst.op, Op::Check { .. });
    let check = insts.iter().position(is_check).expect("the check stays");
    assert!(position(positive) < check && check < position(times), "{scheduled}");
    let args = vec![
        crate::interp::RuntimeValue::Mat { rows: 4, cols: 3, data: (0..12).map(|k| f64::from(k) * 0.25).collect() },
        crate::interp::RuntimeValue::Vec(vec![0.5, -1.0, 2.0, 0.25]),
        crate::interp::RuntimeValue::Vec(vec![1.0, 0.5, -0.5]),
        crate::interp::RuntimeValue::Real(0.75),
    ];
    let results = |function: &Function| format!("{:?}", crate::interp::run(function, args.clone()));
    assert_eq!(results(&function), results(&scheduled));
}
