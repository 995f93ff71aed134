//! Functions, blocks, instructions and operations.

use std::sync::Arc;

use super::types::Type;
use crate::syntax::span::Span;

/// An SSA value: an instruction result or a block parameter, defined exactly once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Value(pub u32);

#[derive(Clone, Debug, PartialEq)]
pub struct Function {
    pub name: String,
    /// The body; its parameters are the function's arguments and its results its outputs.
    pub body: Block,
    /// The type of every value, indexed by `Value`.
    pub value_types: Vec<Type>,
}

impl Function {
    pub fn ty(&self, value: Value) -> Option<Type> {
        self.value_types.get(value.0 as usize).copied()
    }
}

/// A sequence of instructions with parameters (bound by whoever runs the block) and results.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Block {
    pub params: Vec<Value>,
    pub insts: Vec<Inst>,
    pub results: Vec<Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Inst {
    pub results: Vec<Value>,
    pub op: Op,
    /// The source the instruction was lowered from, for runtime diagnostics.
    pub span: Option<Span>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Constant {
    Real(f64),
    Int(i64),
    Bool(bool),
}

/// A vector or matrix of reals the function reads but does not compute: a `data` item's value,
/// held once and shared (never copied into code, so compiling costs nothing per element).
/// Two tensors are the same operation only if they are the same buffer.
#[derive(Clone)]
pub struct Tensor {
    /// The `data` item it holds (or a part of it), for printing.
    pub name: Arc<str>,
    /// `Vec` or `Mat`.
    pub ty: Type,
    /// Row-major; as many elements as `ty` has. (An `Arc<Vec>` rather than an `Arc<[f64]>` so
    /// that a loaded data set moves in without a second copy of its bytes.)
    pub values: Arc<Vec<f64>>,
}

impl PartialEq for Tensor {
    fn eq(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.values, &other.values) && self.ty == other.ty
    }
}

/// Identity rather than contents: passes key operations by their `Debug` text.
impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor({}: {} at {:p})", self.name, self.ty, self.values.as_ptr())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Neg,
    Exp,
    Log,
    Log1p,
    Expm1,
    Sqrt,
    Abs,
    Sin,
    Cos,
    Tan,
    Tanh,
    Sigmoid,
    Softplus,
    Lgamma,
    Digamma,
    Trigamma,
    Floor,
    /// Boolean negation.
    Not,
    /// `int` to `real`.
    ToReal,
    /// An integral `real` to `int` (rounding towards zero): how traces store counts.
    ToInt,
    /// The value, through which no derivative flows.
    Detach,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Min,
    Max,
    /// `1` where `a >= b`, else `0` (NaN compares false): a mask, through which no derivative
    /// flows, that selects elementwise by arithmetic (`m·a + (1 − m)·b`).
    AtLeast,
    And,
    Or,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    Sum,
    LogSumExp,
    /// The smallest element; NaN if any is. Has no derivative: it decides checks.
    Min,
    /// The largest element; NaN if any is. Has no derivative: it decides checks.
    Max,
}

/// Base noise drawn from a stream; samplers of named distributions are built on these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Noise {
    /// U(0, 1), never 0 or 1.
    Uniform,
    /// N(0, 1).
    Normal,
}

/// A runtime sampler not expressible as a transformation of base noise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sampler {
    /// Gamma(shape, 1), from `[shape]`.
    Gamma,
    /// Poisson(rate), from `[rate]`; an int.
    Poisson,
    /// Failures before the first success, from `[p]`; an int.
    Geometric,
    /// An index drawn in proportion to `[weights]` (a vector); an int.
    Categorical,
    /// Successes in `[trials (an int ≥ 0), p]` Bernoulli trials; an int.
    Binomial,
    /// `size` distinct indices of `0..population`, uniformly (a minibatch's rows), from `[]`;
    /// a vector of them as reals.
    Subsample { population: u32, size: u32 },
}

/// A pure runtime function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// `[x, shape]`: ∂x/∂shape for x ~ Gamma(shape, 1), by implicit differentiation of the CDF.
    GammaSampleDShape,
    /// `[x]` (a real, vector or matrix): `results = [softplus(x), sigmoid(x)]`, elementwise,
    /// with the bits of [`UnaryOp::Softplus`] and [`UnaryOp::Sigmoid`] but one exponential per
    /// element instead of two (`ppl_runtime::softplus_and_sigmoid`). `jvp` computes a
    /// differentiated softplus this way, since its derivative is the sigmoid; `dce` narrows it
    /// back to the one unary operation when only one of its results is used.
    SoftplusSigmoid,
    /// `[x]` (a matrix): [`Kernel::SoftplusSigmoid`] computed in f32
    /// (`ppl_runtime::softplus_and_sigmoid_single`), for `--precision f32`: each element rounded
    /// to f32, both results computed in f32 and widened. Only `ir::precision` makes it.
    SoftplusSigmoidSingle,
}

/// A choice whose gradient rule runs the rest of its expectation more than once
/// (`semantics.md` §1): enumeration of a finite support, or a measure-valued derivative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BranchRule {
    /// `flip(p)` via enum: both outcomes, weighted.
    EnumFlip,
    /// `categorical(probs)` via enum: every index, weighted.
    EnumCategorical,
    /// `flip(p)` via mvd: the sampled outcome, and the other one with fresh randomness.
    MvdFlip,
    /// `poisson(rate)` via mvd: the sampled count and its successor.
    MvdPoisson,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Const(Constant),
    /// A run-time input: the tensor's values.
    Data(Tensor),
    /// Elementwise on vectors and matrices.
    Unary(UnaryOp, Value),
    /// Elementwise; a scalar operand is broadcast.
    Binary(BinaryOp, Value, Value),
    Compare(CompareOp, Value, Value),
    Select {
        cond: Value,
        if_true: Value,
        if_false: Value,
    },
    /// `results = [value, next stream]`.
    Draw {
        noise: Noise,
        rng: Value,
    },
    /// Two independent streams derived from one: `results = [left, right]`.
    Split {
        rng: Value,
    },
    /// The stream `offset` (an int) places after `rng`'s in its seed's numbering, from its
    /// start: `results = [stream]`. Particle `p` of a training step whose first particle's stream
    /// is `rng` draws from `StreamAfter { rng, offset: p }`, as it does run on its own.
    StreamAfter {
        rng: Value,
        offset: Value,
    },
    /// A vector from scalars, or a matrix from vectors (its rows).
    Build(Vec<Value>),
    /// `v[i]` of a vector, or row `i` of a matrix.
    Extract {
        aggregate: Value,
        index: Value,
    },
    Reduce(ReduceOp, Value),
    /// Matrix–vector, vector–matrix, matrix–matrix product or inner product.
    MatMul(Value, Value),
    /// `aggregate` with element (or row) `index` replaced by `value`.
    Insert {
        aggregate: Value,
        index: Value,
        value: Value,
    },
    /// The transpose of a matrix.
    Transpose(Value),
    /// `len` consecutive elements of a vector (or rows of a matrix) from `start`.
    Slice {
        aggregate: Value,
        start: u32,
        len: u32,
    },
    /// A vector of `total` elements (or a matrix of `total` rows) that is `value` from `start`
    /// and zero elsewhere: the transpose of [`Op::Slice`].
    Place {
        value: Value,
        start: u32,
        total: u32,
    },
    /// The outer product of two vectors.
    Outer(Value, Value),
    /// The product of two matrices either of which may be read transposed, in place: `aᵀ·b`,
    /// `a·bᵀ` or `aᵀ·bᵀ` (see `fuse`), in double or single precision (see `precision`). Made
    /// only after differentiation, which does not know it.
    MatMulTransposed {
        a: Value,
        b: Value,
        transposed: ppl_runtime::Transposed,
        precision: ppl_runtime::Precision,
    },
    /// `acc + outer(a, b)`, formed in one pass (see `fuse`). Made only after differentiation,
    /// which does not know it.
    AddOuter {
        acc: Value,
        a: Value,
        b: Value,
    },
    /// `value`, carrying the tangent of `tangent_of`: how an estimator rule states a tangent
    /// that is not the derivative of the code computing its value.
    WithTangent {
        value: Value,
        tangent_of: Value,
    },
    /// `results = [value, next stream]`, from a runtime sampler.
    Sample {
        sampler: Sampler,
        args: Vec<Value>,
        rng: Value,
    },
    Kernel(Kernel, Vec<Value>),
    /// Stops the run with a diagnostic at this instruction's source unless `cond` holds;
    /// `culprit` is the value the message shows: in place of its `{}`, or after ", but it is".
    /// No results.
    Check {
        cond: Value,
        culprit: Value,
        message: String,
    },
    /// Pushes a value onto the tape, the stack that carries what a transposed program needs
    /// from the primal one. No results. Effects are ordered by position.
    Save(Value),
    /// Pops the value saved last.
    Restore(Type),
    /// An expectation (`E { … }`): `body.params = [stream]`, `body.results = [estimate]`.
    /// Expanded away by ADEV before anything runs.
    Expect {
        rng: Value,
        body: Block,
    },
    /// A random choice whose rule runs the rest of its expectation (its continuation) more
    /// than once: `results = [value, next stream]`. Expanded away by ADEV before anything runs.
    Branch {
        rule: BranchRule,
        args: Vec<Value>,
        rng: Value,
    },
    /// Runs `then` or `otherwise` (neither takes parameters); results are the branch's results.
    If {
        cond: Value,
        then: Block,
        otherwise: Block,
    },
    /// `for i in lo..hi`: `body.params = [i, carried…]`, `body.results = carried…`; results are
    /// the carried values after the last iteration (`init` if none runs).
    For {
        lo: Value,
        hi: Value,
        init: Vec<Value>,
        body: Block,
    },
}

impl Op {
    /// The values the operation reads directly (not those read inside its blocks).
    pub fn operands(&self) -> Vec<Value> {
        match self {
            Op::Const(_) | Op::Data(_) => Vec::new(),
            Op::Unary(_, a) | Op::Reduce(_, a) => vec![*a],
            Op::Binary(_, a, b) | Op::Compare(_, a, b) | Op::MatMul(a, b) => vec![*a, *b],
            Op::StreamAfter { rng, offset } => vec![*rng, *offset],
            Op::Select { cond, if_true, if_false } => vec![*cond, *if_true, *if_false],
            Op::Draw { rng, .. } | Op::Split { rng } => vec![*rng],
            Op::Build(parts) => parts.clone(),
            Op::Extract { aggregate, index } => vec![*aggregate, *index],
            Op::Insert { aggregate, index, value } => vec![*aggregate, *index, *value],
            Op::Transpose(a) | Op::Save(a) => vec![*a],
            Op::Slice { aggregate, .. } => vec![*aggregate],
            Op::Place { value, .. } => vec![*value],
            Op::Outer(a, b) => vec![*a, *b],
            Op::AddOuter { acc, a, b } => vec![*acc, *a, *b],
            Op::MatMulTransposed { a, b, .. } => vec![*a, *b],
            Op::WithTangent { value, tangent_of } => vec![*value, *tangent_of],
            Op::Sample { args, rng, .. } | Op::Branch { args, rng, .. } => {
                args.iter().copied().chain(std::iter::once(*rng)).collect()
            }
            Op::Kernel(_, args) => args.clone(),
            Op::Check { cond, culprit, .. } => vec![*cond, *culprit],
            Op::Restore(_) => Vec::new(),
            Op::Expect { rng, .. } => vec![*rng],
            Op::If { cond, .. } => vec![*cond],
            Op::For { lo, hi, init, .. } => [*lo, *hi].into_iter().chain(init.iter().copied()).collect(),
        }
    }

    /// Whether the operation does something besides computing its results (so it must stay,
    /// in its place, even when nothing reads them).
    pub fn has_effect(&self) -> bool {
        matches!(self, Op::Check { .. } | Op::Save(_) | Op::Restore(_))
    }

    /// The blocks the operation owns.
    pub fn blocks(&self) -> Vec<&Block> {
        match self {
            Op::If { then, otherwise, .. } => vec![then, otherwise],
            Op::For { body, .. } | Op::Expect { body, .. } => vec![body],
            _ => Vec::new(),
        }
    }

    pub fn blocks_mut(&mut self) -> Vec<&mut Block> {
        match self {
            Op::If { then, otherwise, .. } => vec![then, otherwise],
            Op::For { body, .. } | Op::Expect { body, .. } => vec![body],
            _ => Vec::new(),
        }
    }

    /// The same values as [`Op::operands`], to rewrite them.
    pub fn operands_mut(&mut self) -> Vec<&mut Value> {
        match self {
            Op::Const(_) | Op::Data(_) => Vec::new(),
            Op::Unary(_, a) | Op::Reduce(_, a) => vec![a],
            Op::Binary(_, a, b) | Op::Compare(_, a, b) | Op::MatMul(a, b) => vec![a, b],
            Op::StreamAfter { rng, offset } => vec![rng, offset],
            Op::Select { cond, if_true, if_false } => vec![cond, if_true, if_false],
            Op::Draw { rng, .. } | Op::Split { rng } => vec![rng],
            Op::Build(parts) => parts.iter_mut().collect(),
            Op::Extract { aggregate, index } => vec![aggregate, index],
            Op::Insert { aggregate, index, value } => vec![aggregate, index, value],
            Op::Transpose(a) | Op::Save(a) => vec![a],
            Op::Slice { aggregate, .. } => vec![aggregate],
            Op::Place { value, .. } => vec![value],
            Op::Outer(a, b) => vec![a, b],
            Op::AddOuter { acc, a, b } => vec![acc, a, b],
            Op::MatMulTransposed { a, b, .. } => vec![a, b],
            Op::WithTangent { value, tangent_of } => vec![value, tangent_of],
            Op::Sample { args, rng, .. } | Op::Branch { args, rng, .. } => {
                let mut values: Vec<&mut Value> = args.iter_mut().collect();
                values.push(rng);
                values
            }
            Op::Kernel(_, args) => args.iter_mut().collect(),
            Op::Check { cond, culprit, .. } => vec![cond, culprit],
            Op::Restore(_) => Vec::new(),
            Op::Expect { rng, .. } => vec![rng],
            Op::If { cond, .. } => vec![cond],
            Op::For { lo, hi, init, .. } => {
                let mut values = vec![lo, hi];
                values.extend(init.iter_mut());
                values
            }
        }
    }
}
