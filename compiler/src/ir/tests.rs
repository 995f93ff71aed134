//! Building, verifying and printing small functions.

use super::builder::FunctionBuilder;
use super::function::{BinaryOp, Block, Function, Inst, Noise, Op, ReduceOp, Value};
use super::types::Type;
use super::verify::verify;

/// `E { x ~ normal(theta, 1); x^2 }` for one draw: returns the value and the next stream.
fn square_of_normal() -> Function {
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
