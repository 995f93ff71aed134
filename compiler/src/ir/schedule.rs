//! Scheduling: brings the top level's elementwise operations over matrices of one shape next to
//! one another, so that a back end can run each such run tile by tile, its intermediate
//! matrices never leaving the cache (`codegen/tiles.rs`). A batched network's likelihood and its
//! adjoint are chains of a dozen operations over `B × 784` matrices, interleaved with the
//! vector arithmetic of the objective; each pass over such a matrix otherwise goes to memory.
//!
//! The pass only reorders: every instruction stays, with its operands. Operations in a run and
//! those moved above one are pure and cannot fail ([`movable`]); every other instruction keeps
//! its order relative to the others, so checks, the tape, loops and anything that can fail run
//! in the order they did. Nested blocks are left alone: only the top level runs once.

use std::collections::{HashSet, VecDeque};

use super::function::{Function, Inst, Kernel, Op, UnaryOp, Value};
use super::types::Type;

/// How many instructions past a run's last member the pass looks for more members.
const LOOKAHEAD: usize = 48;

/// The shape `(rows, columns)` of the matrices `inst` computes element by element, row by row,
/// if it does: a unary or binary operation (a scalar operand broadcast), both results of a
/// [`Kernel::SoftplusSigmoid`], an outer product or an accumulated one (a bias added to every
/// row). Each row of its results depends only on the same rows of its matrix operands (and on
/// the same elements of the row-indexed vector of an outer product), which is what lets a back
/// end compute a run of them a few rows at a time.
pub fn elementwise_shape(function: &Function, inst: &Inst) -> Option<(u32, u32)> {
    let shape @ (rows, cols) = match function.ty(*inst.results.first()?)? {
        Type::Mat(rows, cols) if rows >= 2 => (rows, cols),
        _ => return None,
    };
    let ty = |value: &Value| function.ty(*value);
    let matrix = |value: &Value| ty(value) == Some(Type::Mat(rows, cols));
    let matrix_or_scalar = |value: &Value| matrix(value) || matches!(ty(value), Some(Type::Real | Type::Int));
    let outer = |a: &Value, b: &Value| ty(a) == Some(Type::Vec(rows)) && ty(b) == Some(Type::Vec(cols));
    let elementwise = match &inst.op {
        Op::Unary(op, a) => *op != UnaryOp::Detach && matrix(a),
        Op::Binary(_, a, b) => matrix_or_scalar(a) && matrix_or_scalar(b),
        Op::Kernel(Kernel::SoftplusSigmoid | Kernel::SoftplusSigmoidSingle, args) => {
            matches!(args.as_slice(), [x] if matrix(x))
        }
        Op::Outer(a, b) => outer(a, b),
        Op::AddOuter { acc, a, b } => matrix(acc) && outer(a, b),
        _ => false,
    };
    let all_results = inst.results.iter().all(matrix);
    (elementwise && all_results).then_some(shape)
}

/// Whether `inst` may move above instructions before it: it computes its results from its
/// operands alone and cannot fail (no check, tape, block, bound, integer overflow or sampler).
fn movable(function: &Function, inst: &Inst) -> bool {
    let real_valued = || inst.results.iter().all(|result| function.ty(*result) != Some(Type::Int));
    match &inst.op {
        Op::Const(_) | Op::Data(_) | Op::Build(_) | Op::Transpose(_) | Op::Slice { .. } | Op::Place { .. } => true,
        Op::Outer(..) | Op::AddOuter { .. } | Op::MatMul(..) | Op::MatMulTransposed { .. } => true,
        Op::Reduce(..) | Op::Compare(..) | Op::Select { .. } | Op::Kernel(..) | Op::WithTangent { .. } => true,
        Op::Unary(..) | Op::Binary(..) => real_valued(),
        _ => false,
    }
}

/// Reorders the top level of `function` so that elementwise operations over matrices of one
/// shape that can run together stand together, in place.
///
/// Greedily, from the first elementwise operation on: each later one of its shape joins it
/// unless it reads something that must stay after the run; an instruction that reads nothing
/// of the run nor of what stays after it, and is [`movable`] (and not elementwise over another
/// shape), moves above the run; any other stays after it, in order. The instructions left after a run are scheduled again.
pub fn cluster_elementwise(function: &mut Function) {
    let mut pending: VecDeque<Inst> = std::mem::take(&mut function.body.insts).into();
    let mut scheduled = Vec::with_capacity(pending.len());
    while let Some(first) = pending.pop_front() {
        let Some(shape) = elementwise_shape(function, &first) else {
            scheduled.push(first);
            continue;
        };
        let mut run_defines: HashSet<Value> = first.results.iter().copied().collect();
        let (mut run, mut above, mut after) = (vec![first], Vec::new(), Vec::new());
        let mut after_defines: HashSet<Value> = HashSet::new();
        let mut since_last_member = 0;
        while since_last_member < LOOKAHEAD {
            let Some(inst) = pending.pop_front() else { break };
            let reads = super::reads(&inst);
            let reads_after = reads.iter().any(|value| after_defines.contains(value));
            let reads_run = reads.iter().any(|value| run_defines.contains(value));
            if !reads_after && elementwise_shape(function, &inst) == Some(shape) {
                run_defines.extend(inst.results.iter().copied());
                run.push(inst);
                since_last_member = 0;
                continue;
            }
            // Another shape's elementwise operation stays below, where its own run may form.
            let other_run = elementwise_shape(function, &inst).is_some();
            if !reads_after && !reads_run && !other_run && movable(function, &inst) {
                above.push(inst);
            } else {
                after_defines.extend(inst.results.iter().copied());
                after.push(inst);
            }
            since_last_member += 1;
        }
        scheduled.extend(above);
        scheduled.extend(run);
        for inst in after.into_iter().rev() {
            pending.push_front(inst);
        }
    }
    function.body.insts = scheduled;
}
