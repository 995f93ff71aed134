//! Single precision (`--precision f32`): every product of two matrices becomes a
//! [`Op::MatMulTransposed`] computed by `ppl_runtime::matmul_single`, which rounds its operands
//! to f32 and sums in f32, as f32 networks in JAX and PyTorch do; every softplus and sigmoid of
//! a matrix becomes a [`Kernel::SoftplusSigmoidSingle`], computed in f32.
//!
//! Only these change — a batched minibatch's or a step's particles' products and its
//! Bernoulli-logit likelihood, where the time goes; a matrix–vector product, and everything
//! else, stays f64. The pass runs last, on differentiated and fused functions, so
//! differentiation never sees it.

use std::collections::HashSet;

use super::function::{Block, Function, Kernel, Op, UnaryOp};
use super::types::Type;
use super::Value;
use ppl_runtime::{Precision, Transposed};

/// Computes every product of two matrices of `function`, and every softplus and sigmoid of a
/// matrix, in single precision, in place.
pub fn compute_in_single_precision(function: &mut Function) {
    single_block(&mut function.body, &mut function.value_types);
}

/// Which of `function`'s results a single-precision product of its top level computes and
/// nothing else reads or returns again: values that are f32 numbers, which a caller may take as
/// f32 rather than widened (a training's weight gradients, which its gradient pass adds up).
pub fn narrowable_results(function: &Function) -> Vec<bool> {
    let body = &function.body;
    let read: HashSet<Value> = body.insts.iter().flat_map(super::reads).collect();
    body.results
        .iter()
        .map(|result| {
            let computed_by_product = body.insts.iter().any(|inst| {
                matches!(inst.op, Op::MatMulTransposed { precision: Precision::Single, .. })
                    && inst.results.first() == Some(result)
            });
            let returned_once = body.results.iter().filter(|other| *other == result).count() == 1;
            computed_by_product && returned_once && !read.contains(result)
        })
        .collect()
}

/// Which of `function`'s parameters only single-precision products read (as an operand, in any
/// block): compiled code reads those through their rounded copy alone (`codegen`'s
/// `rounded_address`), so a caller that keeps that copy current, as a training in single
/// precision does, need not keep their f64 values current meanwhile.
pub fn params_read_rounded(function: &Function) -> Vec<bool> {
    fn visit(block: &Block, rounded: &mut HashSet<Value>, wide: &mut HashSet<Value>) {
        wide.extend(block.results.iter().copied());
        for inst in &block.insts {
            match inst.op {
                Op::MatMulTransposed { a, b, precision: Precision::Single, .. } => rounded.extend([a, b]),
                ref op => wide.extend(op.operands()),
            }
            for nested in inst.op.blocks() {
                visit(nested, rounded, wide);
            }
        }
    }
    let (mut rounded, mut wide) = (HashSet::new(), HashSet::new());
    visit(&function.body, &mut rounded, &mut wide);
    function.body.params.iter().map(|param| rounded.contains(param) && !wide.contains(param)).collect()
}

fn single_block(block: &mut Block, types: &mut Vec<Type>) {
    for inst in &mut block.insts {
        for nested in inst.op.blocks_mut() {
            single_block(nested, types);
        }
        let matrix = |value: Value| match types.get(value.0 as usize) {
            Some(ty @ Type::Mat(..)) => Some(*ty),
            _ => None,
        };
        let is_matrix = |value: Value| matrix(value).is_some();
        inst.op = match inst.op {
            Op::Kernel(Kernel::SoftplusSigmoid, ref args) if matches!(args[..], [x] if is_matrix(x)) => {
                Op::Kernel(Kernel::SoftplusSigmoidSingle, args.clone())
            }
            // The kernel computes both; the one not asked for is a value nothing reads.
            Op::Unary(op @ (UnaryOp::Softplus | UnaryOp::Sigmoid), x) if is_matrix(x) => {
                let (Some(ty), &[result]) = (matrix(x), inst.results.as_slice()) else { continue };
                let unread = super::fresh_value(types, ty);
                inst.results = match op {
                    UnaryOp::Softplus => vec![result, unread],
                    _ => vec![unread, result],
                };
                Op::Kernel(Kernel::SoftplusSigmoidSingle, vec![x])
            }
            Op::MatMul(a, b) if is_matrix(a) && is_matrix(b) => {
                Op::MatMulTransposed { a, b, transposed: Transposed::default(), precision: Precision::Single }
            }
            Op::MatMulTransposed { a, b, transposed, .. } => {
                Op::MatMulTransposed { a, b, transposed, precision: Precision::Single }
            }
            _ => continue,
        };
    }
}
