//! Common-subexpression elimination: an operation repeated with the same operands is
//! replaced by the first one's results, where those are visible.
//!
//! Every operation but the tape and checks is a pure function of its operands (a draw of the
//! same stream value gives the same number), so merging those is sound. A softplus or sigmoid
//! after a [`Kernel::SoftplusSigmoid`] of the same value is that kernel's result. Operations with
//! blocks are not merged; what their blocks compute may reuse what encloses them, but not the
//! other way round.

use std::collections::{HashMap, HashSet};

use super::defined_in;

use super::function::{Block, Function, Inst, Kernel, Op, UnaryOp, Value};

/// Merges repeated operations of `function`, in place.
pub fn eliminate_common_subexpressions(function: &mut Function) {
    let mut replaced = HashMap::new();
    let mut known = Vec::new();
    rewrite_block(&mut function.body, &mut known, &mut replaced);
}

/// An `if` result that both branches take, unchanged, from outside the `if` is that value:
/// its uses read the value, and the `if` no longer yields it. (Lowering threads every piece of
/// state — a trace's vectors, say — through each `if`, which would otherwise copy them.)
fn forward_unchanged_if_results(inst: &mut Inst, replaced: &mut HashMap<Value, Value>) {
    let Op::If { then, otherwise, .. } = &mut inst.op else { return };
    let inside: HashSet<Value> = [&*then, &*otherwise].into_iter().flat_map(defined_in).collect();
    let mut kept = Vec::with_capacity(inst.results.len());
    for (index, result) in inst.results.iter().enumerate() {
        match (then.results.get(index), otherwise.results.get(index)) {
            (Some(a), Some(b)) if a == b && !inside.contains(a) => {
                replaced.insert(*result, *a);
            }
            _ => kept.push(index),
        }
    }
    if kept.len() == inst.results.len() {
        return;
    }
    let keep = |values: &[Value]| kept.iter().filter_map(|index| values.get(*index).copied()).collect::<Vec<_>>();
    then.results = keep(&then.results);
    otherwise.results = keep(&otherwise.results);
    inst.results = keep(&inst.results);
}

/// `known` holds, for each enclosing block (innermost last), the operations computed there.
fn rewrite_block(
    block: &mut Block,
    known: &mut Vec<HashMap<String, Vec<Value>>>,
    replaced: &mut HashMap<Value, Value>,
) {
    known.push(HashMap::new());
    let insts = std::mem::take(&mut block.insts);
    for mut inst in insts {
        for operand in inst.op.operands_mut() {
            if let Some(value) = replaced.get(operand) {
                *operand = *value;
            }
        }
        let has_blocks = !inst.op.blocks().is_empty();
        match &mut inst.op {
            op if has_blocks => {
                for block in op.blocks_mut() {
                    rewrite_block(block, known, replaced);
                }
                forward_unchanged_if_results(&mut inst, replaced);
            }
            op if op.has_effect() => {}
            op => {
                // Debug prints every operand and constant exactly (f64 Debug round-trips).
                let key = format!("{op:?}");
                if let Some(earlier) = known.iter().rev().find_map(|scope| scope.get(&key)) {
                    for (result, earlier) in inst.results.iter().zip(earlier) {
                        replaced.insert(*result, *earlier);
                    }
                    continue;
                }
                if let Some(scope) = known.last_mut() {
                    scope.insert(key, inst.results.clone());
                    // Each result of a softplus-and-sigmoid kernel is also what the unary
                    // operation giving it alone would compute.
                    if let (Op::Kernel(Kernel::SoftplusSigmoid, args), &[softplus, sigmoid]) =
                        (&*op, inst.results.as_slice())
                    {
                        if let &[x] = args.as_slice() {
                            scope.insert(format!("{:?}", Op::Unary(UnaryOp::Softplus, x)), vec![softplus]);
                            scope.insert(format!("{:?}", Op::Unary(UnaryOp::Sigmoid, x)), vec![sigmoid]);
                        }
                    }
                }
            }
        }
        block.insts.push(inst);
    }
    for result in &mut block.results {
        if let Some(value) = replaced.get(result) {
            *result = *value;
        }
    }
    known.pop();
}
