//! Building functions instruction by instruction, with result types inferred (and checked)
//! as each instruction is added.

use super::function::{Block, Constant, Function, Inst, Op, Value};
use super::types::Type;
use super::verify::{result_types, IrError};
use crate::syntax::span::Span;

/// Builds one function. Blocks nest: `begin_block` opens one (for an `if` branch or a loop
/// body), instructions go to the innermost open block, `end_block` closes it.
pub struct FunctionBuilder {
    name: String,
    value_types: Vec<Type>,
    open: Vec<Block>,
    span: Option<Span>,
}

impl FunctionBuilder {
    /// Starts a function with parameters of the given types; returns them as values.
    pub fn new(name: impl Into<String>, param_types: &[Type]) -> (Self, Vec<Value>) {
        let mut builder = FunctionBuilder { name: name.into(), value_types: Vec::new(), open: Vec::new(), span: None };
        let params = builder.begin_block(param_types);
        (builder, params)
    }

    /// The source span recorded on the instructions added from now on.
    pub fn set_span(&mut self, span: Option<Span>) {
        self.span = span;
    }

    pub fn ty(&self, value: Value) -> Option<Type> {
        self.value_types.get(value.0 as usize).copied()
    }

    fn fresh(&mut self, ty: Type) -> Value {
        self.value_types.push(ty);
        Value(self.value_types.len() as u32 - 1)
    }

    /// Opens a block with parameters of the given types.
    pub fn begin_block(&mut self, param_types: &[Type]) -> Vec<Value> {
        let params: Vec<Value> = param_types.iter().map(|ty| self.fresh(*ty)).collect();
        self.open.push(Block { params: params.clone(), insts: Vec::new(), results: Vec::new() });
        params
    }

    /// Closes the innermost block, which yields `results`.
    pub fn end_block(&mut self, results: Vec<Value>) -> Result<Block, IrError> {
        let mut block = self.open.pop().ok_or(IrError { message: "no open block".into() })?;
        block.results = results;
        Ok(block)
    }

    fn append(&mut self, op: Op, types: &[Type]) -> Result<Vec<Value>, IrError> {
        let results: Vec<Value> = types.iter().map(|ty| self.fresh(*ty)).collect();
        let span = self.span;
        let block = self.open.last_mut().ok_or(IrError { message: "no open block".into() })?;
        block.insts.push(Inst { results: results.clone(), op, span });
        Ok(results)
    }

    /// Adds a non-structured operation; its results' types follow from its operands'.
    pub fn push(&mut self, op: Op) -> Result<Vec<Value>, IrError> {
        let types = result_types(&op, |value| self.ty(value))?;
        self.append(op, &types)
    }

    /// Adds an operation with a single result and returns it.
    pub fn push1(&mut self, op: Op) -> Result<Value, IrError> {
        self.push(op)?.first().copied().ok_or(IrError { message: "operation has no result".into() })
    }

    pub fn real(&mut self, value: f64) -> Result<Value, IrError> {
        self.push1(Op::Const(Constant::Real(value)))
    }

    pub fn int(&mut self, value: i64) -> Result<Value, IrError> {
        self.push1(Op::Const(Constant::Int(value)))
    }

    /// Adds `if cond { then } else { otherwise }` from two closed blocks.
    pub fn push_if(&mut self, cond: Value, then: Block, otherwise: Block) -> Result<Vec<Value>, IrError> {
        let types: Vec<Type> = then.results.iter().filter_map(|value| self.ty(*value)).collect();
        self.append(Op::If { cond, then, otherwise }, &types)
    }

    /// Adds `for i in lo..hi` carrying `init` through a closed body block.
    pub fn push_for(&mut self, lo: Value, hi: Value, init: Vec<Value>, body: Block) -> Result<Vec<Value>, IrError> {
        let types: Vec<Type> = init.iter().filter_map(|value| self.ty(*value)).collect();
        self.append(Op::For { lo, hi, init, body }, &types)
    }

    /// Finishes the function, whose body yields `results`.
    pub fn finish(mut self, results: Vec<Value>) -> Result<Function, IrError> {
        let body = self.end_block(results)?;
        if !self.open.is_empty() {
            return Err(IrError { message: "a block was left open".into() });
        }
        Ok(Function { name: self.name, body, value_types: self.value_types })
    }
}
