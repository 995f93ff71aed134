//! Building functions instruction by instruction, with result types inferred (and checked)
//! as each instruction is added.

use super::function::{BinaryOp, Block, CompareOp, Constant, Function, Inst, Op, UnaryOp, Value};
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

    /// How many blocks are open: 1 at the function's top level.
    pub fn depth(&self) -> usize {
        self.open.len()
    }

    /// The source span recorded on the instructions added from now on.
    pub fn set_span(&mut self, span: Option<Span>) {
        self.span = span;
    }

    pub fn ty(&self, value: Value) -> Option<Type> {
        self.value_types.get(value.0 as usize).copied()
    }

    /// How many values the function has so far: its size.
    pub fn values(&self) -> usize {
        self.value_types.len()
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

    pub fn boolean(&mut self, value: bool) -> Result<Value, IrError> {
        self.push1(Op::Const(Constant::Bool(value)))
    }

    pub fn unary(&mut self, op: UnaryOp, a: Value) -> Result<Value, IrError> {
        self.push1(Op::Unary(op, a))
    }

    pub fn binary(&mut self, op: BinaryOp, a: Value, b: Value) -> Result<Value, IrError> {
        self.push1(Op::Binary(op, a, b))
    }

    pub fn compare(&mut self, op: CompareOp, a: Value, b: Value) -> Result<Value, IrError> {
        self.push1(Op::Compare(op, a, b))
    }

    pub fn select(&mut self, cond: Value, if_true: Value, if_false: Value) -> Result<Value, IrError> {
        self.push1(Op::Select { cond, if_true, if_false })
    }

    pub fn add(&mut self, a: Value, b: Value) -> Result<Value, IrError> {
        self.binary(BinaryOp::Add, a, b)
    }

    pub fn sub(&mut self, a: Value, b: Value) -> Result<Value, IrError> {
        self.binary(BinaryOp::Sub, a, b)
    }

    pub fn mul(&mut self, a: Value, b: Value) -> Result<Value, IrError> {
        self.binary(BinaryOp::Mul, a, b)
    }

    pub fn div(&mut self, a: Value, b: Value) -> Result<Value, IrError> {
        self.binary(BinaryOp::Div, a, b)
    }

    /// A value of the given real-valued type with every element `value`.
    pub fn filled(&mut self, ty: Type, value: f64) -> Result<Value, IrError> {
        match ty {
            Type::Vec(n) => {
                let element = self.real(value)?;
                self.push1(Op::Build(vec![element; n as usize]))
            }
            Type::Mat(m, n) => {
                let row = self.filled(Type::Vec(n), value)?;
                self.push1(Op::Build(vec![row; m as usize]))
            }
            _ => self.real(value),
        }
    }

    /// Adds `if cond { then } else { otherwise }` from two closed blocks.
    pub fn push_if(&mut self, cond: Value, then: Block, otherwise: Block) -> Result<Vec<Value>, IrError> {
        let types: Vec<Type> = then.results.iter().filter_map(|value| self.ty(*value)).collect();
        self.append(Op::If { cond, then, otherwise }, &types)
    }

    /// The value of an `int` constant defined in an open block, if `value` is one.
    pub fn int_constant(&self, value: Value) -> Option<i64> {
        self.open.iter().flat_map(|block| &block.insts).find_map(|inst| match (&inst.op, inst.results.as_slice()) {
            (Op::Const(Constant::Int(n)), [result]) if *result == value => Some(*n),
            _ => None,
        })
    }

    /// The operation that defines `value` in an open block, if one does.
    pub fn definition(&self, value: Value) -> Option<&Op> {
        let insts = self.open.iter().flat_map(|block| &block.insts);
        insts.rev().find_map(|inst| inst.results.contains(&value).then_some(&inst.op))
    }

    /// Adds `for i in lo..hi` carrying `init` through a closed body block.
    pub fn push_for(&mut self, lo: Value, hi: Value, init: Vec<Value>, body: Block) -> Result<Vec<Value>, IrError> {
        let types: Vec<Type> = init.iter().filter_map(|value| self.ty(*value)).collect();
        self.append(Op::For { lo, hi, init, body }, &types)
    }

    /// Adds an expectation over a closed body block (`[stream] -> [estimate]`).
    pub fn push_expect(&mut self, rng: Value, body: Block) -> Result<Value, IrError> {
        let types: Vec<Type> = body.results.iter().filter_map(|value| self.ty(*value)).collect();
        let results = self.append(Op::Expect { rng, body }, &types)?;
        results.first().copied().ok_or(IrError { message: "an expectation yields nothing".into() })
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
