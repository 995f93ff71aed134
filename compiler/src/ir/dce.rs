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
            Op::If { then, otherwise, .. } => {
                mark_block(then, live);
                mark_block(otherwise, live);
            }
            Op::For { body, .. } => mark_block(body, live),
            _ => {}
        }
        live.extend(inst.op.operands());
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
