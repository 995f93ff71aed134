//! Dead-code elimination: removes instructions none of whose results are used.
//!
//! Every operation is free of side effects (a draw returns its advanced stream instead of
//! mutating one), so an instruction whose results feed nothing can go, a draw included: no
//! later draw reads the stream it would have advanced. `if` and `for` are kept or removed as
//! a whole; a kept loop keeps all its carried values.

use std::collections::HashSet;

use super::function::{Block, Function, Op, Value};

/// Removes the dead instructions of `function`, in place.
pub fn eliminate_dead_code(function: &mut Function) {
    let mut live: HashSet<Value> = function.body.results.iter().copied().collect();
    mark_block(&function.body, &mut live);
    sweep_block(&mut function.body, &live);
}

/// Marks, from the block's results backwards, every value a live instruction reads.
fn mark_block(block: &Block, live: &mut HashSet<Value>) {
    live.extend(block.results.iter().copied());
    for inst in block.insts.iter().rev() {
        if !inst.results.iter().any(|result| live.contains(result)) {
            continue;
        }
        match &inst.op {
            Op::If { cond, then, otherwise } => {
                live.insert(*cond);
                mark_block(then, live);
                mark_block(otherwise, live);
            }
            Op::For { lo, hi, init, body } => {
                live.extend([*lo, *hi]);
                live.extend(init.iter().copied());
                mark_block(body, live);
            }
            op => live.extend(operands(op)),
        }
    }
}

fn sweep_block(block: &mut Block, live: &HashSet<Value>) {
    block.insts.retain(|inst| inst.results.iter().any(|result| live.contains(result)));
    for inst in &mut block.insts {
        match &mut inst.op {
            Op::If { then, otherwise, .. } => {
                sweep_block(then, live);
                sweep_block(otherwise, live);
            }
            Op::For { body, .. } => sweep_block(body, live),
            _ => {}
        }
    }
}

/// The values a non-structured operation reads.
fn operands(op: &Op) -> Vec<Value> {
    match op {
        Op::Const(_) => Vec::new(),
        Op::Unary(_, a) | Op::Reduce(_, a) => vec![*a],
        Op::Binary(_, a, b) | Op::Compare(_, a, b) | Op::MatMul(a, b) => vec![*a, *b],
        Op::Select { cond, if_true, if_false } => vec![*cond, *if_true, *if_false],
        Op::Draw { rng, .. } | Op::Split { rng } => vec![*rng],
        Op::Build(parts) => parts.clone(),
        Op::Extract { aggregate, index } => vec![*aggregate, *index],
        Op::If { .. } | Op::For { .. } => Vec::new(),
    }
}
