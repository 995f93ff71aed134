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
//! Passes live beside it, one per file: [`jvp`] (forward mode), [`const_fold`], [`cse`],
//! [`dce`]. Nothing here knows the surface language.

pub mod builder;
pub mod const_fold;
pub mod cse;
pub mod dce;
mod function;
pub mod jvp;
pub mod print;
mod types;
pub mod verify;

pub use builder::FunctionBuilder;
pub use function::{BinaryOp, Block, CompareOp, Constant, Function, Inst, Noise, Op, ReduceOp, UnaryOp, Value};
pub use types::Type;

#[cfg(test)]
pub(crate) mod tests;
