//! The interpreter on hand-built functions, including an unbiasedness check of the simplest
//! reparameterised estimator.

use ppl_runtime::Rng;

use super::{run, RuntimeValue};
use crate::ir::tests::square_of_normal;
use crate::ir::{BinaryOp, CompareOp, FunctionBuilder, Noise, Op, ReduceOp, Type};

fn real(value: &RuntimeValue) -> f64 {
    value.as_real().expect("a real")
}

#[test]
fn arithmetic_and_vectors() {
    let (mut b, params) = FunctionBuilder::new("f", &[Type::Vec(3), Type::Real]);
    let scaled = b.push1(Op::Binary(BinaryOp::Mul, params[0], params[1])).expect("mul");
    let total = b.push1(Op::Reduce(ReduceOp::Sum, scaled)).expect("sum");
    let product = b.push1(Op::MatMul(params[0], params[0])).expect("dot");
    let function = b.finish(vec![total, product]).expect("finish");
    let out = run(&function, vec![RuntimeValue::Vec(vec![1.0, 2.0, 3.0]), RuntimeValue::Real(2.0)]).expect("runs");
    assert_eq!(out, vec![RuntimeValue::Real(12.0), RuntimeValue::Real(14.0)]);
}

#[test]
fn loops_carry_values_and_branches_choose() {
    // sum over i in 0..10 of (i even ? i : 0) = 20
    let (mut b, _) = FunctionBuilder::new("evens", &[]);
    let (lo, hi, zero) = (b.int(0).expect("0"), b.int(10).expect("10"), b.int(0).expect("0"));
    let two = b.int(2).expect("2");
    let params = b.begin_block(&[Type::Int, Type::Int]);
    let (i, acc) = (params[0], params[1]);
    let half = b.push1(Op::Binary(BinaryOp::Mul, i, two)).expect("mul");
    let five = b.int(5).expect("5");
    let small = b.push1(Op::Compare(CompareOp::Lt, i, five)).expect("cmp");
    b.begin_block(&[]);
    let added = b.push1(Op::Binary(BinaryOp::Add, acc, half)).expect("add");
    let then = b.end_block(vec![added]).expect("then");
    b.begin_block(&[]);
    let otherwise = b.end_block(vec![acc]).expect("else");
    let next = b.push_if(small, then, otherwise).expect("if");
    let body = b.end_block(next).expect("body");
    let result = b.push_for(lo, hi, vec![zero], body).expect("for");
    let function = b.finish(result).expect("finish");
    crate::ir::verify::verify(&function).expect("verifies");
    assert_eq!(run(&function, vec![]).expect("runs"), vec![RuntimeValue::Int(20)]);
}

#[test]
fn out_of_bounds_and_overflow_are_errors_not_panics() {
    let (mut b, params) = FunctionBuilder::new("index", &[Type::Vec(2), Type::Int]);
    let element = b.push1(Op::Extract { aggregate: params[0], index: params[1] }).expect("extract");
    let function = b.finish(vec![element]).expect("finish");
    let error =
        run(&function, vec![RuntimeValue::Vec(vec![1.0, 2.0]), RuntimeValue::Int(2)]).expect_err("out of bounds");
    assert!(error.message.contains("out of bounds"), "{}", error.message);

    let (mut b, params) = FunctionBuilder::new("overflow", &[Type::Int]);
    let doubled = b.push1(Op::Binary(BinaryOp::Mul, params[0], params[0])).expect("mul");
    let function = b.finish(vec![doubled]).expect("finish");
    assert!(run(&function, vec![RuntimeValue::Int(i64::MAX)]).is_err());
}

#[test]
fn same_stream_same_result_and_the_estimate_is_unbiased() {
    let function = square_of_normal();
    let once = |seed, stream| {
        let out = run(&function, vec![RuntimeValue::Real(0.7), RuntimeValue::Rng(Box::new(Rng::new(seed, stream)))])
            .expect("runs");
        real(&out[0])
    };
    assert_eq!(once(3, 9).to_bits(), once(3, 9).to_bits());
    assert_ne!(once(3, 9), once(3, 10));

    // E[(theta + e)^2] = theta^2 + 1 at theta = 0.7: 1.49, within 4 standard errors.
    let n = 20_000;
    let samples: Vec<f64> = (0..n).map(|i| once(11, i)).collect();
    let mean = samples.iter().sum::<f64>() / n as f64;
    let variance = samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let stderr = (variance / n as f64).sqrt();
    assert!((mean - 1.49).abs() < 4.0 * stderr, "mean {mean} ± {stderr}");
}

#[test]
fn split_streams_are_independent_of_later_draws() {
    let (mut b, params) = FunctionBuilder::new("fork", &[Type::Rng]);
    let streams = b.push(Op::Split { rng: params[0] }).expect("split");
    let left = b.push(Op::Draw { noise: Noise::Uniform, rng: streams[0] }).expect("draw");
    let right = b.push(Op::Draw { noise: Noise::Uniform, rng: streams[1] }).expect("draw");
    let function = b.finish(vec![left[0], right[0]]).expect("finish");
    let out = run(&function, vec![RuntimeValue::Rng(Box::new(Rng::new(1, 2)))]).expect("runs");
    assert_ne!(real(&out[0]), real(&out[1]));
    let again = run(&function, vec![RuntimeValue::Rng(Box::new(Rng::new(1, 2)))]).expect("runs");
    assert_eq!(out, again);
}
