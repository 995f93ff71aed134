//! Forward mode: the Jacobian–vector product of a function, as another function.
//!
//! `jvp(f, wrt)` takes `f(x₁ … xₙ) -> (y₁ … yₘ)` and returns
//! `f'(x₁ … xₙ, ẋᵢ for each i in wrt) -> (y₁ … yₘ, ẏⱼ for each real-valued yⱼ)`: the same
//! primal computation, interleaved with the tangent of every real value, which is linear in
//! the input tangents. Tangents that are structurally zero (constants, draws, `detach`,
//! integer code) are never materialised, except where a block must yield one. A
//! differentiated `softplus` and its derivative, the `sigmoid` of the same argument, come from
//! one [`Kernel::SoftplusSigmoid`], which shares their exponential.
//!
//! This is the forward-mode program the ADEV core keeps for testing reverse mode against;
//! it must not change what the primal part computes.

use std::collections::HashMap;

use super::builder::FunctionBuilder;
use super::function::{BinaryOp, Block, CompareOp, Function, Kernel, Op, ReduceOp, UnaryOp, Value};
use super::types::Type;
use super::verify::IrError;

/// The forward-mode version of `function`, differentiating with respect to the parameters
/// flagged in `wrt` (one flag per parameter; non-real parameters are never differentiated).
pub fn jvp(function: &Function, wrt: &[bool]) -> Result<Function, IrError> {
    let body = &function.body;
    if wrt.len() != body.params.len() {
        return Err(IrError { message: format!("jvp: {} flags for {} parameters", wrt.len(), body.params.len()) });
    }
    let ty = |value: Value| function.ty(value).ok_or(IrError { message: format!("{value} has no type") });
    let mut param_types: Vec<Type> = body.params.iter().map(|p| ty(*p)).collect::<Result<_, _>>()?;
    let differentiated: Vec<usize> =
        (0..wrt.len()).filter(|i| wrt[*i] && param_types[*i].is_differentiable()).collect();
    let tangent_types: Vec<Type> = differentiated.iter().map(|i| param_types[*i]).collect();
    param_types.extend(tangent_types);

    let (builder, params) = FunctionBuilder::new(format!("{}_jvp", function.name), &param_types);
    let mut pass = Jvp { source: function, builder, primal: HashMap::new(), tangent: HashMap::new() };
    for (old, new) in body.params.iter().zip(&params) {
        pass.primal.insert(*old, *new);
    }
    for (k, i) in differentiated.iter().enumerate() {
        pass.tangent.insert(body.params[*i], params[body.params.len() + k]);
    }
    pass.insts(body)?;
    let results = pass.results_with_tangents(&body.results)?;
    pass.builder.finish(results)
}

struct Jvp<'f> {
    source: &'f Function,
    builder: FunctionBuilder,
    /// Each value of the source function, as a value of the new one.
    primal: HashMap<Value, Value>,
    /// The tangent of each source value whose tangent is not structurally zero.
    tangent: HashMap<Value, Value>,
}

impl Jvp<'_> {
    fn source_type(&self, value: Value) -> Result<Type, IrError> {
        self.source.ty(value).ok_or(IrError { message: format!("{value} has no type") })
    }

    /// The tangent of a source value, `None` if structurally zero.
    fn t(&self, value: &Value) -> Option<Value> {
        self.tangent.get(value).copied()
    }

    fn primal(&self, value: Value) -> Result<Value, IrError> {
        self.primal.get(&value).copied().ok_or(IrError { message: format!("{value} used before definition") })
    }

    fn push(&mut self, op: Op) -> Result<Value, IrError> {
        self.builder.push1(op)
    }

    fn binary(&mut self, op: BinaryOp, a: Value, b: Value) -> Result<Value, IrError> {
        self.push(Op::Binary(op, a, b))
    }

    fn unary(&mut self, op: UnaryOp, a: Value) -> Result<Value, IrError> {
        self.push(Op::Unary(op, a))
    }

    /// A zero of the given (real-valued) type, for blocks that must yield a tangent.
    fn zero(&mut self, ty: Type) -> Result<Value, IrError> {
        self.builder.filled(ty, 0.0)
    }

    /// The tangent of a source value, materialised as zero if it is structurally zero.
    fn tangent_or_zero(&mut self, value: Value) -> Result<Value, IrError> {
        match self.tangent.get(&value) {
            Some(tangent) => Ok(*tangent),
            None => {
                let ty = self.source_type(value)?;
                self.zero(ty)
            }
        }
    }

    /// `values`, followed by the tangents of those that are real-valued.
    fn results_with_tangents(&mut self, values: &[Value]) -> Result<Vec<Value>, IrError> {
        let mut results: Vec<Value> = values.iter().map(|v| self.primal(*v)).collect::<Result<_, _>>()?;
        for value in values {
            if self.source_type(*value)?.is_differentiable() {
                results.push(self.tangent_or_zero(*value)?);
            }
        }
        Ok(results)
    }

    fn insts(&mut self, block: &Block) -> Result<(), IrError> {
        for inst in &block.insts {
            self.builder.set_span(inst.span);
            match &inst.op {
                Op::If { cond, then, otherwise } => self.branch(*cond, then, otherwise, &inst.results)?,
                Op::For { lo, hi, init, body } => self.repeat(*lo, *hi, init, body, &inst.results)?,
                Op::WithTangent { value, tangent_of } => {
                    if let Some(result) = inst.results.first() {
                        self.primal.insert(*result, self.primal(*value)?);
                        if let Some(tangent) = self.t(tangent_of) {
                            self.tangent.insert(*result, tangent);
                        }
                    }
                }
                Op::Expect { .. } | Op::Branch { .. } => {
                    return Err(IrError { message: "jvp of an unexpanded expectation".into() });
                }
                Op::Unary(UnaryOp::Softplus, a) if self.t(a).is_some() => self.softplus_sigmoid(*a, &inst.results)?,
                Op::Kernel(Kernel::SoftplusSigmoid, args) if args.len() == 1 => {
                    self.softplus_sigmoid(args[0], &inst.results)?
                }
                op => {
                    let mapped = self.map_operands(op)?;
                    let results = self.builder.push(mapped.clone())?;
                    for (old, new) in inst.results.iter().zip(&results) {
                        self.primal.insert(*old, *new);
                    }
                    if let (Some(result), Some(primal)) = (inst.results.first(), results.first()) {
                        if let Some(tangent) = self.tangent_rule(op, &mapped, *primal)? {
                            self.tangent.insert(*result, tangent);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// A softplus of `a` whose tangent is not zero, or a [`Kernel::SoftplusSigmoid`] of `a`
    /// (`results` are the source's: the softplus, then the sigmoid if there is one). The
    /// softplus's derivative is the sigmoid of the same argument, so one kernel computes both
    /// (the bits of each, for one exponential per element); the sigmoid's tangent is the
    /// [`UnaryOp::Sigmoid`] rule's.
    fn softplus_sigmoid(&mut self, a: Value, results: &[Value]) -> Result<(), IrError> {
        let x = self.primal(a)?;
        let fused = self.builder.push(Op::Kernel(Kernel::SoftplusSigmoid, vec![x]))?;
        let (&[softplus, sigmoid], Some(&source_softplus)) = (fused.as_slice(), results.first()) else {
            return Err(IrError { message: "a softplus_sigmoid without its two results".into() });
        };
        let source_sigmoid = results.get(1).copied();
        self.primal.insert(source_softplus, softplus);
        if let Some(source_sigmoid) = source_sigmoid {
            self.primal.insert(source_sigmoid, sigmoid);
        }
        let Some(dx) = self.t(&a) else { return Ok(()) };
        let tangent = self.binary(BinaryOp::Mul, sigmoid, dx)?;
        self.tangent.insert(source_softplus, tangent);
        if let Some(source_sigmoid) = source_sigmoid {
            if let Some(tangent) = self.unary_tangent(UnaryOp::Sigmoid, x, sigmoid, dx)? {
                self.tangent.insert(source_sigmoid, tangent);
            }
        }
        Ok(())
    }

    /// `op` with its operands replaced by their primal values in the new function.
    fn map_operands(&self, op: &Op) -> Result<Op, IrError> {
        if !op.blocks().is_empty() || matches!(op, Op::Expect { .. } | Op::Branch { .. }) {
            return Err(IrError { message: "jvp of an operation with blocks or an unexpanded choice".into() });
        }
        let mut mapped = op.clone();
        for operand in mapped.operands_mut() {
            *operand = self.primal(*operand)?;
        }
        Ok(mapped)
    }

    /// The tangent of a (single-result) operation's result, `None` if structurally zero.
    /// `op` is the source operation (operands are source values), `mapped` the same with
    /// operands in the new function, `y` its primal result there.
    fn tangent_rule(&mut self, op: &Op, mapped: &Op, y: Value) -> Result<Option<Value>, IrError> {
        Ok(match (op, mapped) {
            (Op::Unary(unary, a), Op::Unary(_, x)) => match self.t(a) {
                None => None,
                Some(da) => self.unary_tangent(*unary, *x, y, da)?,
            },
            (Op::Binary(BinaryOp::AtLeast, ..), _) => None,
            (Op::AddOuter { .. } | Op::MatMulTransposed { .. }, _) => {
                return Err(IrError { message: "a fused product before differentiation".into() })
            }
            (Op::Binary(binary, a, b), Op::Binary(_, x, z)) => {
                let (da, db) = (self.t(a), self.t(b));
                if da.is_none() && db.is_none() {
                    None
                } else {
                    Some(self.binary_tangent(*binary, (*x, da), (*z, db), y)?)
                }
            }
            (Op::Select { if_true, if_false, .. }, Op::Select { cond, .. }) => {
                match (self.t(if_true), self.t(if_false)) {
                    (None, None) => None,
                    (dt, df) => {
                        let dt = match dt {
                            Some(v) => v,
                            None => self.tangent_or_zero(*if_true)?,
                        };
                        let df = match df {
                            Some(v) => v,
                            None => self.tangent_or_zero(*if_false)?,
                        };
                        Some(self.push(Op::Select { cond: *cond, if_true: dt, if_false: df })?)
                    }
                }
            }
            (Op::Build(parts), _) if parts.iter().any(|part| self.t(part).is_some()) => {
                let tangents = parts.iter().map(|part| self.tangent_or_zero(*part)).collect::<Result<_, _>>()?;
                Some(self.push(Op::Build(tangents))?)
            }
            (Op::Extract { aggregate, .. }, Op::Extract { index, .. }) => match self.t(aggregate) {
                Some(da) => Some(self.push(Op::Extract { aggregate: da, index: *index })?),
                None => None,
            },
            (Op::Insert { aggregate, value, .. }, Op::Insert { index, .. })
                if self.t(aggregate).is_some() || self.t(value).is_some() =>
            {
                let aggregate = self.tangent_or_zero(*aggregate)?;
                let value = self.tangent_or_zero(*value)?;
                Some(self.push(Op::Insert { aggregate, index: *index, value })?)
            }
            (Op::Slice { aggregate, start, len }, _) => match self.t(aggregate) {
                Some(da) => Some(self.push(Op::Slice { aggregate: da, start: *start, len: *len })?),
                None => None,
            },
            (Op::Place { value, start, total }, _) => match self.t(value) {
                Some(dv) => Some(self.push(Op::Place { value: dv, start: *start, total: *total })?),
                None => None,
            },
            (Op::Transpose(a), _) => match self.t(a) {
                Some(da) => Some(self.push(Op::Transpose(da))?),
                None => None,
            },
            (Op::Outer(a, b), Op::Outer(x, z)) => {
                let left = match self.t(a) {
                    Some(da) => Some(self.push(Op::Outer(da, *z))?),
                    None => None,
                };
                let right = match self.t(b) {
                    Some(db) => Some(self.push(Op::Outer(*x, db))?),
                    None => None,
                };
                match (left, right) {
                    (Some(l), Some(r)) => Some(self.binary(BinaryOp::Add, l, r)?),
                    (l, r) => l.or(r),
                }
            }
            (Op::Reduce(reduce, a), Op::Reduce(_, x)) => match (self.t(a), reduce) {
                (None, _) => None,
                (Some(da), ReduceOp::Sum) => Some(self.push(Op::Reduce(ReduceOp::Sum, da))?),
                (Some(da), ReduceOp::LogSumExp) => {
                    // d logsumexp(x) = Σ softmax(x)ᵢ dxᵢ, softmax(x) = exp(x - logsumexp(x)).
                    let shifted = self.binary(BinaryOp::Sub, *x, y)?;
                    let weights = self.unary(UnaryOp::Exp, shifted)?;
                    let weighted = self.binary(BinaryOp::Mul, weights, da)?;
                    Some(self.push(Op::Reduce(ReduceOp::Sum, weighted))?)
                }
                (Some(_), ReduceOp::Min | ReduceOp::Max) => {
                    return Err(IrError { message: format!("{reduce:?} of a differentiated vector") })
                }
            },
            (Op::MatMul(a, b), Op::MatMul(x, z)) => {
                let left = match self.t(a) {
                    Some(da) => Some(self.push(Op::MatMul(da, *z))?),
                    None => None,
                };
                let right = match self.t(b) {
                    Some(db) => Some(self.push(Op::MatMul(*x, db))?),
                    None => None,
                };
                match (left, right) {
                    (Some(l), Some(r)) => Some(self.binary(BinaryOp::Add, l, r)?),
                    (l, r) => l.or(r),
                }
            }
            _ => None,
        })
    }

    /// `dy` for `y = op(x)` given `dx`.
    fn unary_tangent(&mut self, op: UnaryOp, x: Value, y: Value, dx: Value) -> Result<Option<Value>, IrError> {
        let one = |pass: &mut Self| pass.builder.real(1.0);
        let factor = match op {
            UnaryOp::Neg => return Ok(Some(self.unary(UnaryOp::Neg, dx)?)),
            UnaryOp::Detach | UnaryOp::Floor | UnaryOp::Not | UnaryOp::ToReal | UnaryOp::ToInt => return Ok(None),
            UnaryOp::Exp => y,
            UnaryOp::Log => return Ok(Some(self.binary(BinaryOp::Div, dx, x)?)),
            UnaryOp::Log1p => {
                let shifted = {
                    let one = one(self)?;
                    self.binary(BinaryOp::Add, x, one)?
                };
                return Ok(Some(self.binary(BinaryOp::Div, dx, shifted)?));
            }
            UnaryOp::Expm1 => {
                let one = one(self)?;
                self.binary(BinaryOp::Add, y, one)?
            }
            UnaryOp::Sqrt => {
                let two = self.builder.real(2.0)?;
                let twice = self.binary(BinaryOp::Mul, two, y)?;
                return Ok(Some(self.binary(BinaryOp::Div, dx, twice)?));
            }
            UnaryOp::Abs => {
                let zero = self.builder.real(0.0)?;
                if self.builder.ty(x) != Some(Type::Real) {
                    // ±dx elementwise: the sign 2·[x ≥ 0] − 1 is exactly ±1.
                    let (one, two) = (self.builder.real(1.0)?, self.builder.real(2.0)?);
                    let non_negative = self.binary(BinaryOp::AtLeast, x, zero)?;
                    let twice = self.binary(BinaryOp::Mul, two, non_negative)?;
                    let sign = self.binary(BinaryOp::Sub, twice, one)?;
                    return Ok(Some(self.binary(BinaryOp::Mul, sign, dx)?));
                }
                let negative = self.push(Op::Compare(CompareOp::Lt, x, zero))?;
                let flipped = self.unary(UnaryOp::Neg, dx)?;
                return Ok(Some(self.push(Op::Select { cond: negative, if_true: flipped, if_false: dx })?));
            }
            UnaryOp::Sin => self.unary(UnaryOp::Cos, x)?,
            UnaryOp::Cos => {
                let sine = self.unary(UnaryOp::Sin, x)?;
                self.unary(UnaryOp::Neg, sine)?
            }
            UnaryOp::Tan => {
                let square = self.binary(BinaryOp::Mul, y, y)?;
                let one = one(self)?;
                self.binary(BinaryOp::Add, one, square)?
            }
            UnaryOp::Tanh => {
                let square = self.binary(BinaryOp::Mul, y, y)?;
                let one = one(self)?;
                self.binary(BinaryOp::Sub, one, square)?
            }
            UnaryOp::Sigmoid => {
                let one = one(self)?;
                let complement = self.binary(BinaryOp::Sub, one, y)?;
                self.binary(BinaryOp::Mul, y, complement)?
            }
            // Not reached from `insts`, which computes a differentiated softplus with its
            // derivative in one kernel (`softplus_sigmoid`); the same tangent, by definition.
            UnaryOp::Softplus => self.unary(UnaryOp::Sigmoid, x)?,
            UnaryOp::Lgamma => self.unary(UnaryOp::Digamma, x)?,
            UnaryOp::Digamma => self.unary(UnaryOp::Trigamma, x)?,
            UnaryOp::Trigamma => {
                return Err(IrError { message: "the derivative of trigamma is not available".into() });
            }
        };
        Ok(Some(self.binary(BinaryOp::Mul, factor, dx)?))
    }

    /// `dy` for `y = a op b` given the operands' tangents (at least one present).
    fn binary_tangent(
        &mut self,
        op: BinaryOp,
        (a, da): (Value, Option<Value>),
        (b, db): (Value, Option<Value>),
        y: Value,
    ) -> Result<Value, IrError> {
        // Sum of the available terms; each term is a product of a primal factor and a tangent.
        let mut terms = Vec::with_capacity(2);
        match op {
            BinaryOp::Add | BinaryOp::Sub => {
                if let Some(da) = da {
                    terms.push(da);
                }
                if let Some(db) = db {
                    terms.push(if op == BinaryOp::Sub { self.unary(UnaryOp::Neg, db)? } else { db });
                }
            }
            BinaryOp::Mul => {
                if let Some(da) = da {
                    terms.push(self.binary(BinaryOp::Mul, da, b)?);
                }
                if let Some(db) = db {
                    terms.push(self.binary(BinaryOp::Mul, a, db)?);
                }
            }
            BinaryOp::Div => {
                // d(a/b) = da/b - y·db/b
                if let Some(da) = da {
                    terms.push(self.binary(BinaryOp::Div, da, b)?);
                }
                if let Some(db) = db {
                    let scaled = self.binary(BinaryOp::Mul, y, db)?;
                    let over = self.binary(BinaryOp::Div, scaled, b)?;
                    terms.push(self.unary(UnaryOp::Neg, over)?);
                }
            }
            BinaryOp::Pow => {
                // d(a^b) = b·a^(b-1)·da + a^b·ln(a)·db; the log term only when b varies, so a
                // negative base with a constant exponent (x^2) stays finite.
                if let Some(da) = da {
                    let one = self.builder.real(1.0)?;
                    let exponent = self.binary(BinaryOp::Sub, b, one)?;
                    let power = self.binary(BinaryOp::Pow, a, exponent)?;
                    let factor = self.binary(BinaryOp::Mul, b, power)?;
                    terms.push(self.binary(BinaryOp::Mul, factor, da)?);
                }
                if let Some(db) = db {
                    let log = self.unary(UnaryOp::Log, a)?;
                    let factor = self.binary(BinaryOp::Mul, y, log)?;
                    terms.push(self.binary(BinaryOp::Mul, factor, db)?);
                }
            }
            BinaryOp::Min | BinaryOp::Max => {
                // The tangent of whichever operand was chosen (the first on ties).
                let ty = self.builder.ty(y).unwrap_or(Type::Real);
                if ty != Type::Real {
                    // Elementwise, by a mask m: m·da + (1 − m)·db, with m = [a ≥ b] for `max`
                    // and [b ≥ a] for `min`; a scalar operand's tangent is broadcast.
                    let mask = match op {
                        BinaryOp::Max => self.binary(BinaryOp::AtLeast, a, b)?,
                        _ => self.binary(BinaryOp::AtLeast, b, a)?,
                    };
                    let one = self.builder.real(1.0)?;
                    let other = self.binary(BinaryOp::Sub, one, mask)?;
                    let mut terms = Vec::with_capacity(2);
                    if let Some(da) = da {
                        terms.push(self.binary(BinaryOp::Mul, mask, da)?);
                    }
                    if let Some(db) = db {
                        terms.push(self.binary(BinaryOp::Mul, other, db)?);
                    }
                    return match terms.as_slice() {
                        [only] => Ok(*only),
                        [first, second] => self.binary(BinaryOp::Add, *first, *second),
                        _ => self.zero(ty),
                    };
                }
                let compare = if op == BinaryOp::Min { CompareOp::Le } else { CompareOp::Ge };
                let first = self.push(Op::Compare(compare, a, b))?;
                let da = match da {
                    Some(v) => v,
                    None => self.zero(ty)?,
                };
                let db = match db {
                    Some(v) => v,
                    None => self.zero(ty)?,
                };
                return self.push(Op::Select { cond: first, if_true: da, if_false: db });
            }
            BinaryOp::And | BinaryOp::Or | BinaryOp::AtLeast => return self.unsupported(op),
        }
        let tangent = match terms.as_slice() {
            [only] => *only,
            [first, second] => self.binary(BinaryOp::Add, *first, *second)?,
            _ => return self.unsupported(op),
        };
        // A scalar operand broadcast against a vector has a scalar tangent term; the result's
        // tangent has the result's shape.
        let ty = self.builder.ty(y);
        if self.builder.ty(tangent) == ty {
            return Ok(tangent);
        }
        let zero = self.zero(ty.unwrap_or(Type::Real))?;
        self.binary(BinaryOp::Add, zero, tangent)
    }

    fn unsupported<T>(&self, op: BinaryOp) -> Result<T, IrError> {
        Err(IrError { message: format!("no tangent rule for {op:?} here") })
    }

    /// `if`: each branch yields its results followed by the tangents of the real-valued ones.
    fn branch(&mut self, cond: Value, then: &Block, otherwise: &Block, results: &[Value]) -> Result<(), IrError> {
        let cond = self.primal(cond)?;
        let mut blocks = Vec::with_capacity(2);
        for block in [then, otherwise] {
            self.builder.begin_block(&[]);
            self.insts(block)?;
            let yielded = self.results_with_tangents(&block.results)?;
            blocks.push(self.builder.end_block(yielded)?);
        }
        let otherwise = blocks.pop().ok_or(IrError { message: "missing else block".into() })?;
        let then = blocks.pop().ok_or(IrError { message: "missing then block".into() })?;
        let values = self.builder.push_if(cond, then, otherwise)?;
        self.bind_results_with_tangents(results, &values)
    }

    /// `for`: tangents of real-valued carried values are carried too.
    fn repeat(&mut self, lo: Value, hi: Value, init: &[Value], body: &Block, results: &[Value]) -> Result<(), IrError> {
        let (lo, hi) = (self.primal(lo)?, self.primal(hi)?);
        let init_values = self.results_with_tangents(init)?;
        let mut param_types = vec![Type::Int];
        param_types.extend(init_values.iter().filter_map(|value| self.builder.ty(*value)));
        let params = self.builder.begin_block(&param_types);
        // body.params = [i, carried…]; new params = [i, carried…, tangents of real carried…]
        self.bind_results_with_tangents(&body.params[..1], &params[..1])?;
        self.bind_results_with_tangents(&body.params[1..], &params[1..])?;
        self.insts(body)?;
        let yielded = self.results_with_tangents(&body.results)?;
        let block = self.builder.end_block(yielded)?;
        let values = self.builder.push_for(lo, hi, init_values, block)?;
        self.bind_results_with_tangents(results, &values)
    }

    /// Binds source values to new values laid out as `[primals…, tangents of real ones…]`.
    fn bind_results_with_tangents(&mut self, sources: &[Value], values: &[Value]) -> Result<(), IrError> {
        let mut tangents = values.get(sources.len()..).unwrap_or(&[]).iter();
        for (source, value) in sources.iter().zip(values) {
            self.primal.insert(*source, *value);
            if self.source_type(*source)?.is_differentiable() {
                let tangent = tangents.next().ok_or(IrError { message: "missing tangent".into() })?;
                self.tangent.insert(*source, *tangent);
            }
        }
        Ok(())
    }
}
