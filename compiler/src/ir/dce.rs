//! Dead-code elimination: removes instructions none of whose results are used.
//!
//! Apart from checks and the tape, operations are free of side effects (a draw returns its
//! advanced stream instead of mutating one), so an instruction whose results feed nothing can
//! go, a draw included: no later draw reads the stream it would have advanced. Operations
//! with blocks are kept or removed as a whole, but a kept loop drops each carried value that
//! nothing live reads, in or after the loop (the zero tangents a batched loop stacks, say). A
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
    mark_insts(&block.insts, live);
}

fn mark_insts(insts: &[Inst], live: &mut HashSet<Value>) {
    for inst in insts.iter().rev() {
        if !is_needed(inst, live) {
            continue;
        }
        if let Op::For { lo, hi, init, body } = &inst.op {
            let carried = live_carried(&inst.results, body, live);
            live.extend([*lo, *hi]);
            live.extend(init.iter().zip(carried).filter(|(_, kept)| *kept).map(|(value, _)| *value));
            continue;
        }
        for block in inst.op.blocks() {
            mark_block(block, live);
        }
        live.extend(inst.op.operands());
    }
}

/// Which of a loop's carried values are live — its result is, or something live in an
/// iteration reads it — marking what the live ones need in `body`.
fn live_carried(results: &[Value], body: &Block, live: &mut HashSet<Value>) -> Vec<bool> {
    let mut kept: Vec<bool> = results.iter().map(|result| live.contains(result)).collect();
    loop {
        let mut inside: HashSet<Value> =
            body.results.iter().zip(&kept).filter(|(_, kept)| **kept).map(|(value, _)| *value).collect();
        mark_insts(&body.insts, &mut inside);
        let params = body.params.get(1..).unwrap_or(&[]);
        let newly: Vec<usize> = (0..kept.len()).filter(|k| !kept[*k] && inside.contains(&params[*k])).collect();
        if newly.is_empty() {
            live.extend(inside);
            return kept;
        }
        for k in newly {
            kept[k] = true;
        }
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
        drop_dead_carried(inst, live);
        for block in inst.op.blocks_mut() {
            sweep_block(block, live);
        }
    }
}

/// Removes from a loop the carried values that neither its result nor its body's live code reads.
fn drop_dead_carried(inst: &mut Inst, live: &HashSet<Value>) {
    let Op::For { init, body, .. } = &mut inst.op else { return };
    let dead: Vec<bool> = (0..inst.results.len())
        .map(|k| !live.contains(&inst.results[k]) && body.params.get(k + 1).is_some_and(|param| !live.contains(param)))
        .collect();
    if !dead.contains(&true) {
        return;
    }
    let keep = |values: &mut Vec<Value>, offset: usize| {
        let mut position = 0;
        values.retain(|_| {
            position += 1;
            position <= offset || !dead[position - 1 - offset]
        });
    };
    keep(&mut inst.results, 0);
    keep(init, 0);
    keep(&mut body.results, 0);
    keep(&mut body.params, 1);
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
