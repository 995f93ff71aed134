//! Dead-code elimination: removes instructions none of whose results are used.
//!
//! Apart from checks and the tape, operations are free of side effects (a draw returns its
//! advanced stream instead of mutating one), so an instruction whose results feed nothing can
//! go, a draw included: no later draw reads the stream it would have advanced. Operations
//! with blocks are kept or removed as a whole; a kept loop keeps all its carried values. A
//! [`Kernel::SoftplusSigmoid`] of which only one result is used becomes the unary operation
//! computing that one (the same bits, for less work).

use std::collections::HashSet;

use super::function::{Block, Function, Inst, Kernel, Op, UnaryOp, Value};

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
        if !is_needed(inst, live) {
            continue;
        }
        for block in inst.op.blocks() {
            mark_block(block, live);
        }
        live.extend(inst.op.operands());
    }
}

fn is_needed(inst: &Inst, live: &HashSet<Value>) -> bool {
    inst.op.has_effect() || block_has_effect(&inst.op) || inst.results.iter().any(|result| live.contains(result))
}

/// Whether a block of the operation contains an operation with an effect.
fn block_has_effect(op: &Op) -> bool {
    op.blocks().iter().any(|block| block.insts.iter().any(|inst| inst.op.has_effect() || block_has_effect(&inst.op)))
}

fn sweep_block(block: &mut Block, live: &HashSet<Value>) {
    block.insts.retain(|inst| is_needed(inst, live));
    for inst in &mut block.insts {
        narrow(inst, live);
        for block in inst.op.blocks_mut() {
            sweep_block(block, live);
        }
    }
}

/// Replaces a softplus-and-sigmoid kernel of which one result is dead by the unary operation
/// giving the other.
fn narrow(inst: &mut Inst, live: &HashSet<Value>) {
    let (Op::Kernel(Kernel::SoftplusSigmoid, args), &[softplus, sigmoid]) = (&inst.op, inst.results.as_slice()) else {
        return;
    };
    let &[x] = args.as_slice() else { return };
    let (unary, kept) = match (live.contains(&softplus), live.contains(&sigmoid)) {
        (true, false) => (UnaryOp::Softplus, softplus),
        (false, true) => (UnaryOp::Sigmoid, sigmoid),
        _ => return,
    };
    inst.op = Op::Unary(unary, x);
    inst.results = vec![kept];
}
