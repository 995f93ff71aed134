//! Matrix products in single precision (`--precision f32`): every product of two
//! matrices becomes a [`Op::MatMulTransposed`] computed by `ppl_runtime::matmul_single`, which
//! rounds its operands to f32 and sums in f32, as f32 networks in JAX and PyTorch do.
//!
//! Only products of two matrices change — those of a batched minibatch or of a step's particles,
//! where the time goes; a matrix–vector product, and everything else, stays f64. The pass runs
//! last, on differentiated and fused functions, so differentiation never sees it.

use std::collections::HashSet;

use super::function::{Block, Function, Op};
use super::types::Type;
use super::Value;
use ppl_runtime::{Precision, Transposed};

/// Computes every product of two matrices of `function` in single precision, in place.
pub fn products_in_single_precision(function: &mut Function) {
    let types = function.value_types.clone();
    single_block(&mut function.body, &types);
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

fn single_block(block: &mut Block, types: &[Type]) {
    let is_matrix = |value: super::Value| matches!(types.get(value.0 as usize), Some(Type::Mat(..)));
    for inst in &mut block.insts {
        for nested in inst.op.blocks_mut() {
            single_block(nested, types);
        }
        inst.op = match inst.op {
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
