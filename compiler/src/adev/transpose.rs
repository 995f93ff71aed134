//! Reverse mode: the primal part of a linearised program, followed by the transpose of its
//! linear part, as one function.
//!
//! The primal part runs first, as in the forward program, and saves on the tape each residual
//! defined inside a branch or loop body (at the end of that block, once per iteration); the
//! residuals of the top-level block stay in scope and are read directly. The transposed
//! linear part then runs the linear instructions backwards, accumulating adjoints: each
//! transposed block first restores the residuals its primal block saved, in reverse order, so
//! the tape is a stack and loops run their iterations in reverse. A transposed block yields
//! the adjoints of the linear values it uses from enclosing blocks.
//!
//! Value and full gradient come out of one pass whose cost is a small multiple of the
//! primal's, whatever the number of parameters.

use std::collections::HashMap;

use super::linearize::{linearize, Linearization};
use crate::ir::verify::IrError;
use crate::ir::{BinaryOp, Block, Function, FunctionBuilder, Inst, Op, ReduceOp, Type, UnaryOp, Value};

fn error<T>(message: impl Into<String>) -> Result<T, IrError> {
    Err(IrError { message: message.into() })
}

/// The reverse-mode program of a forward-mode function `(x…, ẋ…) -> (y, ẏ)` whose last
/// `tangent_count` parameters are the input tangents and whose results are one value and its
/// tangent: `(x…) -> (y, x̄…)` with `x̄ = ∂y/∂x` for each tangent input.
pub fn reverse(forward: &Function, tangent_count: usize) -> Result<Function, IrError> {
    let params = &forward.body.params;
    let Some(primal_count) = params.len().checked_sub(tangent_count) else {
        return error("more tangents than parameters");
    };
    let (primal_params, tangent_params) = params.split_at(primal_count);
    let &[value, tangent] = forward.body.results.as_slice() else {
        return error("reverse mode needs a function yielding a value and its tangent");
    };
    let split = linearize(forward, tangent_params);
    let types: Vec<Type> = primal_params.iter().filter_map(|p| forward.ty(*p)).collect();
    let (builder, new_params) = FunctionBuilder::new(format!("{}_reverse", forward.name), &types);
    let mut pass = Transpose {
        source: forward,
        split: &split,
        builder,
        primal: vec![primal_params.iter().copied().zip(new_params).collect()],
        adjoint: HashMap::new(),
    };
    pass.copy_primal(&forward.body, &[])?;
    let mut results = vec![pass.primal(value)?];
    if split.is_linear(tangent) {
        let one = pass.builder.real(1.0)?;
        pass.adjoint.insert(tangent, one);
        pass.transpose_insts(&forward.body.insts)?;
    }
    for param in tangent_params {
        results.push(pass.adjoint_or_zero(*param)?);
    }
    pass.builder.finish(results)
}

struct Transpose<'f> {
    source: &'f Function,
    split: &'f Linearization,
    builder: FunctionBuilder,
    /// Primal source values as new values: one scope per open block (the top level first).
    primal: Vec<HashMap<Value, Value>>,
    /// The adjoint accumulated so far for each linear source value of the current block.
    adjoint: HashMap<Value, Value>,
}

impl Transpose<'_> {
    fn source_type(&self, value: Value) -> Result<Type, IrError> {
        self.source.ty(value).ok_or(IrError { message: format!("{value} has no type") })
    }

    fn primal(&self, value: Value) -> Result<Value, IrError> {
        self.primal
            .iter()
            .rev()
            .find_map(|scope| scope.get(&value).copied())
            .ok_or(IrError { message: format!("residual {value} is not available") })
    }

    fn bind_primal(&mut self, source: Value, value: Value) {
        if let Some(scope) = self.primal.last_mut() {
            scope.insert(source, value);
        }
    }

    // ---- The primal part ----

    /// Copies the primal instructions of `block` into the open block. Returns the new values
    /// of the block's results at positions `kept` (those its owner classifies primal).
    fn copy_primal(&mut self, block: &Block, kept: &[usize]) -> Result<Vec<Value>, IrError> {
        for inst in &block.insts {
            self.builder.set_span(inst.span);
            match &inst.op {
                Op::If { cond, then, otherwise } => {
                    let cond = self.primal(*cond)?;
                    let mut blocks = Vec::with_capacity(2);
                    let kept: Vec<usize> =
                        (0..inst.results.len()).filter(|k| !self.split.is_linear(inst.results[*k])).collect();
                    for branch in [then, otherwise] {
                        self.builder.begin_block(&[]);
                        self.primal.push(HashMap::new());
                        let yielded = self.copy_nested_primal(branch, &kept)?;
                        self.primal.pop();
                        blocks.push(self.builder.end_block(yielded)?);
                    }
                    let (Some(otherwise), Some(then)) = (blocks.pop(), blocks.pop()) else {
                        return error("missing branch");
                    };
                    let values = self.builder.push_if(cond, then, otherwise)?;
                    self.bind_primal_results(&inst.results, &values);
                }
                Op::For { lo, hi, init, body } => {
                    let (lo, hi) = (self.primal(*lo)?, self.primal(*hi)?);
                    let kept: Vec<usize> =
                        (0..init.len()).filter(|k| !self.split.is_linear(init_param(body, *k))).collect();
                    let init = kept.iter().map(|k| self.primal(init[*k])).collect::<Result<Vec<_>, _>>()?;
                    let mut types = vec![Type::Int];
                    types.extend(init.iter().filter_map(|v| self.builder.ty(*v)));
                    let params = self.builder.begin_block(&types);
                    self.primal.push(HashMap::new());
                    self.bind_primal(body.params[0], params[0]);
                    for (position, k) in kept.iter().enumerate() {
                        self.bind_primal(init_param(body, *k), params[position + 1]);
                    }
                    let yielded = self.copy_nested_primal(body, &kept)?;
                    self.primal.pop();
                    let block = self.builder.end_block(yielded)?;
                    let values = self.builder.push_for(lo, hi, init, block)?;
                    let primal_results: Vec<Value> = kept.iter().map(|k| inst.results[*k]).collect();
                    for (source, value) in primal_results.iter().zip(&values) {
                        self.bind_primal(*source, *value);
                    }
                }
                _ if self.split.is_linear_inst(inst) => {}
                op => {
                    let mut mapped = op.clone();
                    for operand in mapped.operands_mut() {
                        *operand = self.primal(*operand)?;
                    }
                    let values = self.builder.push(mapped)?;
                    for (source, value) in inst.results.iter().zip(&values) {
                        self.bind_primal(*source, *value);
                    }
                }
            }
        }
        kept.iter().map(|k| self.primal(block.results[*k])).collect()
    }

    /// A nested block's primal copy: its instructions, then the saves of its residuals.
    fn copy_nested_primal(&mut self, block: &Block, kept: &[usize]) -> Result<Vec<Value>, IrError> {
        let yielded = self.copy_primal(block, kept)?;
        for residual in self.block_residuals(block) {
            let value = self.primal(residual)?;
            self.builder.push(Op::Save(value))?;
        }
        Ok(yielded)
    }

    /// The residuals defined directly in `block` (its parameters and instructions' results),
    /// in definition order.
    fn block_residuals(&self, block: &Block) -> Vec<Value> {
        let defined = block.params.iter().chain(block.insts.iter().flat_map(|inst| inst.results.iter()));
        defined.copied().filter(|value| self.split.residuals.contains(value)).collect()
    }

    /// Binds the primal results of a branch (the positions not classified linear).
    fn bind_primal_results(&mut self, results: &[Value], values: &[Value]) {
        let primal: Vec<Value> = results.iter().copied().filter(|v| !self.split.is_linear(*v)).collect();
        for (source, value) in primal.iter().zip(values) {
            self.bind_primal(*source, *value);
        }
    }

    // ---- The transposed linear part ----

    fn adjoint_or_zero(&mut self, value: Value) -> Result<Value, IrError> {
        match self.adjoint.get(&value) {
            Some(adjoint) => Ok(*adjoint),
            None => {
                let ty = self.source_type(value)?;
                self.builder.filled(ty, 0.0)
            }
        }
    }

    /// Adds `contribution` to the adjoint of the linear source value `target`, summing a
    /// broadcast contribution down to a scalar target.
    fn accumulate(&mut self, target: Value, contribution: Value) -> Result<(), IrError> {
        if !self.split.is_linear(target) {
            return Ok(());
        }
        let ty = self.source_type(target)?;
        let contribution = if ty == Type::Real && self.builder.ty(contribution) != Some(Type::Real) {
            self.builder.push1(Op::Reduce(ReduceOp::Sum, contribution))?
        } else {
            contribution
        };
        let total = match self.adjoint.get(&target) {
            Some(previous) => self.builder.add(*previous, contribution)?,
            None => contribution,
        };
        self.adjoint.insert(target, total);
        Ok(())
    }

    fn transpose_insts(&mut self, insts: &[Inst]) -> Result<(), IrError> {
        for inst in insts.iter().rev() {
            if !self.split.is_linear_inst(inst) {
                continue;
            }
            self.builder.set_span(inst.span);
            match &inst.op {
                Op::If { cond, then, otherwise } => self.transpose_if(inst, *cond, then, otherwise)?,
                Op::For { lo, hi, init, body } => self.transpose_for(inst, *lo, *hi, init, body)?,
                op => {
                    let Some(result) = inst.results.first() else { continue };
                    let Some(cotangent) = self.adjoint.get(result).copied() else { continue };
                    self.transpose_op(op, cotangent)?;
                }
            }
        }
        Ok(())
    }

    /// Adds to the operands' adjoints the transpose of `op` applied to its result's adjoint.
    fn transpose_op(&mut self, op: &Op, cotangent: Value) -> Result<(), IrError> {
        let linear = |value: &Value| self.split.is_linear(*value);
        match op {
            Op::Unary(UnaryOp::Neg, a) => {
                let negated = self.builder.unary(UnaryOp::Neg, cotangent)?;
                self.accumulate(*a, negated)
            }
            Op::Binary(BinaryOp::Add, a, b) => {
                self.accumulate(*a, cotangent)?;
                self.accumulate(*b, cotangent)
            }
            Op::Binary(BinaryOp::Sub, a, b) => {
                self.accumulate(*a, cotangent)?;
                if linear(b) {
                    let negated = self.builder.unary(UnaryOp::Neg, cotangent)?;
                    self.accumulate(*b, negated)?;
                }
                Ok(())
            }
            Op::Binary(BinaryOp::Mul, a, b) if linear(a) != linear(b) => {
                let (tangent, factor) = if linear(a) { (*a, *b) } else { (*b, *a) };
                let factor = self.primal(factor)?;
                let product = self.builder.mul(cotangent, factor)?;
                self.accumulate(tangent, product)
            }
            Op::Binary(BinaryOp::Div, a, b) if linear(a) && !linear(b) => {
                let divisor = self.primal(*b)?;
                let quotient = self.builder.div(cotangent, divisor)?;
                self.accumulate(*a, quotient)
            }
            Op::Select { cond, if_true, if_false } => {
                let cond = self.primal(*cond)?;
                let zero = self.builder.filled(self.builder.ty(cotangent).unwrap_or(Type::Real), 0.0)?;
                if linear(if_true) {
                    let chosen = self.builder.select(cond, cotangent, zero)?;
                    self.accumulate(*if_true, chosen)?;
                }
                if linear(if_false) {
                    let chosen = self.builder.select(cond, zero, cotangent)?;
                    self.accumulate(*if_false, chosen)?;
                }
                Ok(())
            }
            Op::Build(parts) => {
                for (k, part) in parts.iter().enumerate() {
                    if linear(part) {
                        let index = self.builder.int(k as i64)?;
                        let element = self.builder.push1(Op::Extract { aggregate: cotangent, index })?;
                        self.accumulate(*part, element)?;
                    }
                }
                Ok(())
            }
            Op::Extract { aggregate, index } => {
                let index = self.primal(*index)?;
                let zeros = self.builder.filled(self.source_type(*aggregate)?, 0.0)?;
                let spread = self.builder.push1(Op::Insert { aggregate: zeros, index, value: cotangent })?;
                self.accumulate(*aggregate, spread)
            }
            Op::Insert { aggregate, index, value } => {
                let index = self.primal(*index)?;
                if linear(aggregate) {
                    let zero = self.builder.filled(self.source_type(*value)?, 0.0)?;
                    let rest = self.builder.push1(Op::Insert { aggregate: cotangent, index, value: zero })?;
                    self.accumulate(*aggregate, rest)?;
                }
                if linear(value) {
                    let element = self.builder.push1(Op::Extract { aggregate: cotangent, index })?;
                    self.accumulate(*value, element)?;
                }
                Ok(())
            }
            Op::Reduce(ReduceOp::Sum, a) => {
                let zeros = self.builder.filled(self.source_type(*a)?, 0.0)?;
                let spread = self.builder.add(zeros, cotangent)?;
                self.accumulate(*a, spread)
            }
            Op::MatMul(a, b) if linear(a) != linear(b) => self.transpose_matmul(*a, *b, cotangent),
            Op::Transpose(a) => {
                let transposed = self.builder.push1(Op::Transpose(cotangent))?;
                self.accumulate(*a, transposed)
            }
            Op::Slice { aggregate, start, .. } => {
                let total = match self.source_type(*aggregate)? {
                    Type::Vec(n) | Type::Mat(n, _) => n,
                    other => return error(format!("a slice of {other}")),
                };
                let placed = self.builder.push1(Op::Place { value: cotangent, start: *start, total })?;
                self.accumulate(*aggregate, placed)
            }
            Op::Place { value, start, .. } => {
                let len = match self.source_type(*value)? {
                    Type::Vec(n) | Type::Mat(n, _) => n,
                    other => return error(format!("{other} placed in zeros")),
                };
                let part = self.builder.push1(Op::Slice { aggregate: cotangent, start: *start, len })?;
                self.accumulate(*value, part)
            }
            Op::Outer(a, b) if linear(a) != linear(b) => {
                if linear(a) {
                    let right = self.primal(*b)?;
                    let contribution = self.builder.push1(Op::MatMul(cotangent, right))?;
                    self.accumulate(*a, contribution)
                } else {
                    let left = self.primal(*a)?;
                    let contribution = self.builder.push1(Op::MatMul(left, cotangent))?;
                    self.accumulate(*b, contribution)
                }
            }
            op => error(format!("{op:?} is not linear in its tangent operands")),
        }
    }

    /// `y = a @ b` with exactly one linear operand.
    fn transpose_matmul(&mut self, a: Value, b: Value, cotangent: Value) -> Result<(), IrError> {
        let (ta, tb) = (self.source_type(a)?, self.source_type(b)?);
        if self.split.is_linear(a) {
            let right = self.primal(b)?;
            let contribution = match (ta, tb) {
                // y = A x: Ā = ȳ xᵀ; y = u·v: ū = ȳ v; y = u B: ū = B ȳ; Y = A B: Ā = Ȳ Bᵀ.
                (Type::Mat(..), Type::Vec(_)) => self.builder.push1(Op::Outer(cotangent, right))?,
                (Type::Vec(_), Type::Vec(_)) => self.builder.mul(cotangent, right)?,
                (Type::Vec(_), Type::Mat(..)) => self.builder.push1(Op::MatMul(right, cotangent))?,
                _ => {
                    let transposed = self.builder.push1(Op::Transpose(right))?;
                    self.builder.push1(Op::MatMul(cotangent, transposed))?
                }
            };
            self.accumulate(a, contribution)
        } else {
            let left = self.primal(a)?;
            let contribution = match (ta, tb) {
                // y = A x: x̄ = Aᵀ ȳ = ȳ A; y = u·v: v̄ = ȳ u; y = u B: B̄ = u ȳᵀ; Y = A B: B̄ = Aᵀ Ȳ.
                (Type::Mat(..), Type::Vec(_)) => self.builder.push1(Op::MatMul(cotangent, left))?,
                (Type::Vec(_), Type::Vec(_)) => self.builder.mul(cotangent, left)?,
                (Type::Vec(_), Type::Mat(..)) => self.builder.push1(Op::Outer(left, cotangent))?,
                _ => {
                    let transposed = self.builder.push1(Op::Transpose(left))?;
                    self.builder.push1(Op::MatMul(transposed, cotangent))?
                }
            };
            self.accumulate(b, contribution)
        }
    }

    /// Linear values used inside `blocks` (or yielded by them) but defined outside them.
    fn free_linear(&self, blocks: &[&Block]) -> Vec<Value> {
        let mut defined = std::collections::HashSet::new();
        let mut used = Vec::new();
        for block in blocks {
            collect_uses(block, &mut defined, &mut used);
        }
        let mut free: Vec<Value> = Vec::new();
        for value in used {
            if self.split.is_linear(value) && !defined.contains(&value) && !free.contains(&value) {
                free.push(value);
            }
        }
        free
    }

    /// Transposes a nested block whose results' adjoints are `result_adjoints`, returning the
    /// adjoints of `outputs` (source values) computed inside it.
    fn transpose_nested(
        &mut self,
        block: &Block,
        result_adjoints: &[(Value, Value)],
        outputs: &[Value],
    ) -> Result<Vec<Value>, IrError> {
        let outer = std::mem::take(&mut self.adjoint);
        self.primal.push(HashMap::new());
        for residual in self.block_residuals(block).into_iter().rev() {
            let ty = self.source_type(residual)?;
            let restored = self.builder.push1(Op::Restore(ty))?;
            self.bind_primal(residual, restored);
        }
        for (source, adjoint) in result_adjoints {
            self.accumulate(*source, *adjoint)?;
        }
        self.transpose_insts(&block.insts)?;
        let adjoints = outputs.iter().map(|value| self.adjoint_or_zero(*value)).collect::<Result<Vec<_>, _>>();
        self.primal.pop();
        self.adjoint = outer;
        adjoints
    }

    fn transpose_if(&mut self, inst: &Inst, cond: Value, then: &Block, otherwise: &Block) -> Result<(), IrError> {
        let cond = self.primal(cond)?;
        let free = self.free_linear(&[then, otherwise]);
        let mut blocks = Vec::with_capacity(2);
        for branch in [then, otherwise] {
            let mut result_adjoints = Vec::new();
            for (result, yielded) in inst.results.iter().zip(&branch.results) {
                if let Some(adjoint) = self.adjoint.get(result) {
                    result_adjoints.push((*yielded, *adjoint));
                }
            }
            self.builder.begin_block(&[]);
            let adjoints = self.transpose_nested(branch, &result_adjoints, &free)?;
            blocks.push(self.builder.end_block(adjoints)?);
        }
        let (Some(otherwise), Some(then)) = (blocks.pop(), blocks.pop()) else { return error("missing branch") };
        let adjoints = self.builder.push_if(cond, then, otherwise)?;
        for (value, adjoint) in free.iter().zip(adjoints) {
            self.accumulate(*value, adjoint)?;
        }
        Ok(())
    }

    fn transpose_for(
        &mut self,
        inst: &Inst,
        lo: Value,
        hi: Value,
        init: &[Value],
        body: &Block,
    ) -> Result<(), IrError> {
        let (lo, hi) = (self.primal(lo)?, self.primal(hi)?);
        let carried: Vec<usize> = (0..init.len()).filter(|k| self.split.is_linear(init_param(body, *k))).collect();
        let free = self.free_linear(&[body]);
        let mut start = Vec::with_capacity(carried.len() + free.len());
        for k in &carried {
            start.push(self.adjoint_or_zero(inst.results[*k])?);
        }
        for value in &free {
            let ty = self.source_type(*value)?;
            start.push(self.builder.filled(ty, 0.0)?);
        }
        let mut types = vec![Type::Int];
        types.extend(start.iter().filter_map(|value| self.builder.ty(*value)));
        let params = self.builder.begin_block(&types);
        let result_adjoints: Vec<(Value, Value)> =
            carried.iter().enumerate().map(|(position, k)| (body.results[*k], params[position + 1])).collect();
        let mut outputs: Vec<Value> = carried.iter().map(|k| init_param(body, *k)).collect();
        outputs.extend(free.iter().copied());
        let adjoints = self.transpose_nested(body, &result_adjoints, &outputs)?;
        let mut yielded = adjoints[..carried.len()].to_vec();
        for (position, adjoint) in adjoints[carried.len()..].iter().enumerate() {
            let running = params[1 + carried.len() + position];
            yielded.push(self.builder.add(running, *adjoint)?);
        }
        let block = self.builder.end_block(yielded)?;
        let totals = self.builder.push_for(lo, hi, start, block)?;
        for (k, total) in carried.iter().zip(&totals) {
            self.accumulate(init[*k], *total)?;
        }
        for (value, total) in free.iter().zip(&totals[carried.len()..]) {
            self.accumulate(*value, *total)?;
        }
        Ok(())
    }
}

/// The loop parameter that carries value `k` (after the index).
fn init_param(body: &Block, k: usize) -> Value {
    body.params[k + 1]
}

/// Records the values defined in `block` (recursively) and every value it reads or yields.
fn collect_uses(block: &Block, defined: &mut std::collections::HashSet<Value>, used: &mut Vec<Value>) {
    defined.extend(block.params.iter().copied());
    for inst in &block.insts {
        used.extend(inst.op.operands());
        for nested in inst.op.blocks() {
            collect_uses(nested, defined, used);
        }
        defined.extend(inst.results.iter().copied());
    }
    used.extend(block.results.iter().copied());
}
