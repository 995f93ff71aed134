//! The IR: the contract between the front end and every later stage.
//!
//! A typed, first-order, *structured* SSA form: a [`Function`] is one [`Block`]; blocks hold
//! instructions in order and end by yielding values; control flow is structured (`If` and
//! `For` own their blocks, and loop-carried values are block parameters), which keeps
//! linearisation, transposition and both back ends simple. Randomness is explicit: a value of
//! type `rng` is a stream, and every draw takes a stream and returns the advanced one, so data
//! flow alone orders draws and no pass can merge or drop one by mistake.
//!
//! This module owns the data structure, its [`builder`], its [`verify`]er and its [`print`]er.
//! Passes live beside it, one per file: [`batch`] (minibatch loops as one program over the
//! batch), [`jvp`] (forward mode), [`const_fold`], [`cse`], [`dce`], and [`fuse`], [`precision`] and
//! [`schedule`] (after differentiation). Nothing here knows the surface language.

pub mod batch;
pub mod builder;
pub mod const_fold;
pub mod cse;
pub mod dce;
mod function;
pub mod fuse;
pub mod jvp;
pub mod precision;
pub mod print;
pub mod schedule;
mod types;
pub mod verify;

pub use builder::FunctionBuilder;
use std::collections::HashSet;

pub use function::{
    BinaryOp, Block, BranchRule, CompareOp, Constant, Function, Inst, Kernel, Noise, Op, ReduceOp, Sampler, Tensor,
    UnaryOp, Value,
};
pub use types::Type;

/// A new value of type `ty`, added to a function's table of value types (which passes that add
/// values take out of the function while they rewrite its body).
pub fn fresh_value(types: &mut Vec<Type>, ty: Type) -> Value {
    types.push(ty);
    Value(types.len() as u32 - 1)
}

/// How many times each value is read in `block` (by its instructions, nested blocks included,
/// and by its results).
pub fn count_uses(block: &Block, uses: &mut std::collections::HashMap<Value, usize>) {
    for value in &block.results {
        *uses.entry(*value).or_default() += 1;
    }
    for inst in &block.insts {
        for operand in inst.op.operands() {
            *uses.entry(operand).or_default() += 1;
        }
        for nested in inst.op.blocks() {
            count_uses(nested, uses);
        }
    }
}

/// Every value a block defines: its parameters and its instructions' results, nested blocks'
/// included.
pub fn defined_in(block: &Block) -> Vec<Value> {
    let mut values = block.params.clone();
    for inst in &block.insts {
        values.extend(&inst.results);
        for inner in inst.op.blocks() {
            values.extend(defined_in(inner));
        }
    }
    values
}

/// The values `inst` reads: its operands and what its blocks read from outside them.
pub fn reads(inst: &Inst) -> Vec<Value> {
    fn visit(block: &Block, defined: &mut HashSet<Value>, used: &mut HashSet<Value>) {
        defined.extend(block.params.iter().copied());
        used.extend(block.results.iter().copied());
        for inst in &block.insts {
            defined.extend(inst.results.iter().copied());
            used.extend(inst.op.operands());
            for nested in inst.op.blocks() {
                visit(nested, defined, used);
            }
        }
    }
    let mut read = inst.op.operands();
    let (mut defined, mut used) = (HashSet::new(), HashSet::new());
    for block in inst.op.blocks() {
        visit(block, &mut defined, &mut used);
    }
    let mut outside: Vec<Value> = used.difference(&defined).copied().collect();
    outside.sort();
    read.extend(outside);
    read
}

/// The value of every `int` constant defined in `block` or the blocks inside it.
pub fn int_constants(block: &Block, constants: &mut std::collections::HashMap<Value, i64>) {
    for inst in &block.insts {
        if let (Op::Const(Constant::Int(n)), [result]) = (&inst.op, inst.results.as_slice()) {
            constants.insert(*result, *n);
        }
        for nested in inst.op.blocks() {
            int_constants(nested, constants);
        }
    }
}

/// Every value an instruction of `function` reads or a block yields.
pub fn uses(function: &Function) -> std::collections::HashSet<Value> {
    fn visit(block: &Block, used: &mut std::collections::HashSet<Value>) {
        used.extend(block.results.iter().copied());
        for inst in &block.insts {
            used.extend(inst.op.operands());
            for nested in inst.op.blocks() {
                visit(nested, used);
            }
        }
    }
    let mut used = std::collections::HashSet::new();
    visit(&function.body, &mut used);
    used
}

#[cfg(test)]
pub(crate) mod tests;
