//! Constant folding: a unary, binary or comparison operation on scalar constants becomes the
//! constant it computes, and a check whose condition is a true constant goes.
//!
//! The value is computed by the reference interpreter's own evaluation, so folding can never
//! change a result, not even in the last bit. Operations that would fail at run time (integer
//! overflow) are left for the run to report.

use std::collections::HashMap;

use super::function::{BinaryOp, Block, Constant, Function, Op, Value};
use crate::interp::{evaluate_pure, RuntimeValue};

/// Folds the constant operations of `function`, in place.
pub fn fold_constants(function: &mut Function) {
    let mut constants = HashMap::new();
    fold_block(&mut function.body, &mut constants);
}

/// Whether `inst` is a check whose condition is known to hold.
fn passes(inst: &crate::ir::Inst, constants: &HashMap<Value, RuntimeValue>) -> bool {
    matches!(&inst.op, Op::Check { cond, .. } if constants.get(cond) == Some(&RuntimeValue::Bool(true)))
}

fn fold_block(block: &mut Block, constants: &mut HashMap<Value, RuntimeValue>) {
    for inst in &mut block.insts {
        let blocks = inst.op.blocks_mut();
        if !blocks.is_empty() {
            for block in blocks {
                fold_block(block, constants);
            }
            continue;
        }
        // `x ^ 2` becomes `x * x` and `x ^ 1` becomes `x * 1` (multiplications, correctly
        // rounded, instead of calls to `pow`), so squares in models and in their derivatives
        // cost what they cost in hand-written code. This comes before the operands are read,
        // which must be those of the rewritten operation.
        if let Op::Binary(BinaryOp::Pow, base, exponent) = inst.op {
            match constants.get(&exponent) {
                Some(RuntimeValue::Real(x)) if *x == 2.0 => inst.op = Op::Binary(BinaryOp::Mul, base, base),
                Some(RuntimeValue::Real(x)) if *x == 1.0 => inst.op = Op::Binary(BinaryOp::Mul, base, exponent),
                _ => {}
            }
        }
        let operands: Option<Vec<&RuntimeValue>> = match &inst.op {
            Op::Unary(_, a) => constants.get(a).map(|a| vec![a]),
            Op::Binary(_, a, b) | Op::Compare(_, a, b) => {
                constants.get(a).zip(constants.get(b)).map(|(a, b)| vec![a, b])
            }
            _ => None,
        };
        let folded = operands.and_then(|operands| evaluate_pure(&inst.op, &operands));
        let constant = match &folded {
            Some(RuntimeValue::Real(x)) => Some(Constant::Real(*x)),
            Some(RuntimeValue::Int(n)) => Some(Constant::Int(*n)),
            Some(RuntimeValue::Bool(b)) => Some(Constant::Bool(*b)),
            _ => None,
        };
        if let Some(constant) = constant {
            inst.op = Op::Const(constant);
        }
        if let (Op::Const(constant), [result]) = (&inst.op, inst.results.as_slice()) {
            let value = match constant {
                Constant::Real(x) => RuntimeValue::Real(*x),
                Constant::Int(n) => RuntimeValue::Int(*n),
                Constant::Bool(b) => RuntimeValue::Bool(*b),
            };
            constants.insert(*result, value);
        }
    }
    block.insts.retain(|inst| !passes(inst, constants));
}
