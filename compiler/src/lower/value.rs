//! What an expression lowers to: IR values arranged as the surface value they represent, and
//! the two kinds of compile-time-only values (distributions and estimates).

use std::rc::Rc;

use crate::distributions::Distribution;
use crate::ir::{BinaryOp, Value};
use crate::syntax::ast::{Block, Expr, ExprId};
use crate::syntax::span::Span;
use crate::types::Type as SurfaceType;

/// A lowered value.
#[derive(Clone, Debug)]
pub enum Val<'a> {
    /// A real, int, bool, vector or matrix.
    Ir(Value),
    Tuple(Vec<Val<'a>>),
    Record(Vec<(String, Val<'a>)>),
    Str(String),
    /// A distribution applied to its (converted) arguments, not yet sampled.
    Dist(&'static Distribution, Vec<Value>),
    Est(Rc<Estimate<'a>>),
    /// Indexed discrete choices of a trace: a real vector holding bools (0/1) or ints.
    Array {
        data: Value,
        element: Element,
    },
    /// A trace entry sampled on some paths only: whether this run sampled it, and its value
    /// (zero if not).
    Optional {
        present: Value,
        value: Box<Val<'a>>,
    },
    /// An array of `len` values that are not numbers — records (traces of a `gen` called at a
    /// loop-indexed address), tuples, vectors, arrays — held leaf by leaf: `element` has the
    /// elements' structure, each of its leaves the `len` values of that leaf, stacked (see
    /// `super::stacked`).
    Stacked {
        len: u32,
        element: Box<Val<'a>>,
    },
    /// A generative function application, `marginal(…)` or `normalize(…)`.
    Family(Rc<Family<'a>>),
    /// `select(a, b)`.
    Selection(Vec<String>),
    /// `sir(n)` or `sir(n, proposal)`.
    Sir {
        particles: usize,
        proposal: Option<Rc<Family<'a>>>,
    },
    /// `posterior(P, obs)`.
    Posterior {
        model: Rc<Family<'a>>,
        observations: Box<Val<'a>>,
    },
}

/// What the elements of a [`Val::Array`] are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Element {
    Bool,
    Int,
}

/// A distribution over traces.
#[derive(Debug)]
pub enum Family<'a> {
    /// A `gen` definition's instance applied to arguments.
    Gen { instance: usize, args: Vec<Val<'a>> },
    /// `marginal(inner, select(…), sir(particles[, proposal]))`.
    Marginal { inner: Rc<Family<'a>>, selection: Vec<String>, particles: usize, proposal: Option<Rc<Family<'a>>> },
    /// `normalize(posterior(model, observations), sir(particles, proposal))`.
    Normalize { model: Rc<Family<'a>>, observations: Val<'a>, particles: usize, proposal: Rc<Family<'a>> },
}

impl<'a> Val<'a> {
    pub fn unit() -> Self {
        Val::Tuple(Vec::new())
    }

    /// The IR values of a first-order value, in a fixed order.
    pub fn flatten(&self, out: &mut Vec<Value>) {
        match self {
            Val::Ir(value) => out.push(*value),
            Val::Tuple(parts) => parts.iter().for_each(|part| part.flatten(out)),
            Val::Record(fields) => fields.iter().for_each(|(_, field)| field.flatten(out)),
            Val::Array { data, .. } => out.push(*data),
            Val::Optional { present, value } => {
                out.push(*present);
                value.flatten(out);
            }
            Val::Stacked { element, .. } => element.flatten(out),
            _ => {}
        }
    }

    /// A value of the same shape as `self` made of `values` (in [`Val::flatten`] order).
    pub fn rebuild(&self, values: &mut impl Iterator<Item = Value>) -> Val<'a> {
        match self {
            Val::Ir(_) => values.next().map_or_else(Val::unit, Val::Ir),
            Val::Array { element, .. } => {
                values.next().map_or_else(Val::unit, |data| Val::Array { data, element: *element })
            }
            Val::Optional { value, .. } => match values.next() {
                Some(present) => Val::Optional { present, value: Box::new(value.rebuild(values)) },
                None => Val::unit(),
            },
            Val::Stacked { len, element } => Val::Stacked { len: *len, element: Box::new(element.rebuild(values)) },
            Val::Tuple(parts) => Val::Tuple(parts.iter().map(|part| part.rebuild(values)).collect()),
            Val::Record(fields) => {
                Val::Record(fields.iter().map(|(name, field)| (name.clone(), field.rebuild(values))).collect())
            }
            other => other.clone(),
        }
    }

    /// The layout of a first-order value, to read its flattened run-time values back.
    pub fn shape(&self) -> Shape {
        match self {
            Val::Ir(_) => Shape::Leaf,
            Val::Tuple(parts) => Shape::Tuple(parts.iter().map(Val::shape).collect()),
            Val::Record(fields) => {
                Shape::Record(fields.iter().map(|(name, field)| (name.clone(), field.shape())).collect())
            }
            Val::Str(text) => Shape::Str(text.clone()),
            Val::Array { element, .. } => Shape::Array(*element),
            Val::Optional { value, .. } => Shape::Optional(Box::new(value.shape())),
            Val::Stacked { len, element } => Shape::Stacked { len: *len, element: Box::new(element.shape()) },
            _ => Shape::Tuple(Vec::new()),
        }
    }
}

/// The structure of a printed value: which flattened values form which part.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    Leaf,
    Tuple(Vec<Shape>),
    Record(Vec<(String, Shape)>),
    Str(String),
    /// A vector of bools or ints, stored as reals.
    Array(Element),
    /// A presence flag, then the value (shown only if present).
    Optional(Box<Shape>),
    /// An array of `len` values laid out as `element`, each of whose leaves holds that leaf of
    /// every element (a vector of reals, a matrix of rows; presence flags as reals).
    Stacked {
        len: u32,
        element: Box<Shape>,
    },
}

impl Shape {
    /// How many flattened values the layout holds.
    pub fn leaves(&self) -> usize {
        match self {
            Shape::Leaf | Shape::Array(_) => 1,
            Shape::Optional(inner) => 1 + inner.leaves(),
            Shape::Stacked { element, .. } => element.leaves(),
            Shape::Tuple(parts) => parts.iter().map(Shape::leaves).sum(),
            Shape::Record(fields) => fields.iter().map(|(_, field)| field.leaves()).sum(),
            Shape::Str(_) => 0,
        }
    }
}

/// An estimate (`est`): compiled only when something consumes it, each consumption with its
/// own random stream, so that `a * a` multiplies two independent estimates.
#[derive(Debug)]
pub enum Estimate<'a> {
    /// `E { … }` with the environment it was written in.
    Expect {
        block: &'a Block,
        env: Env<'a>,
    },
    /// Arithmetic of independent estimates and reals: `a + b`, `r * a`, `a / r`, …
    Arith {
        op: BinaryOp,
        left: Operand<'a>,
        right: Operand<'a>,
    },
    Neg(Rc<Estimate<'a>>),
    /// ADEV's unbiased `exp`.
    Exp(Rc<Estimate<'a>>),
    /// `mean_over(…)` / `sum_over(…)`.
    OverRows(OverRows<'a>),
    /// `if cond { e₁ } else { e₂ }` with estimate branches, lowered when consumed.
    Choose {
        cond: Value,
        then: Deferred<'a>,
        otherwise: Deferred<'a>,
    },
}

/// The mean (or sum) over a data set's rows of a per-row estimate, on a minibatch or all rows.
#[derive(Debug)]
pub struct OverRows<'a> {
    /// A matrix (rows), a vector (elements) or an array.
    pub rows: Val<'a>,
    /// The instance of the `fn` estimating one row.
    pub per_row: usize,
    /// Rows drawn per estimate, without replacement; all rows in order if `None`.
    pub batch: Option<u32>,
    /// The sum over rows, rather than the mean.
    pub sum: bool,
    pub span: Span,
}

#[derive(Debug)]
pub enum Operand<'a> {
    Est(Rc<Estimate<'a>>),
    Real(Value),
}

/// An expression to lower later, in its environment.
#[derive(Debug)]
pub enum Deferred<'a> {
    Block(&'a Block, Env<'a>),
    Expr(&'a Expr, Env<'a>),
}

/// Where names and types come from: the types and call targets of one checked body.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub types: &'a std::collections::HashMap<ExprId, SurfaceType>,
    pub calls: &'a std::collections::HashMap<ExprId, usize>,
}

/// The locals in scope, innermost last, and the body they belong to.
#[derive(Clone, Debug)]
pub struct Env<'a> {
    pub context: Context<'a>,
    pub locals: Vec<(String, Val<'a>)>,
}

impl<'a> Env<'a> {
    pub fn new(context: Context<'a>) -> Self {
        Env { context, locals: Vec::new() }
    }

    pub fn lookup(&self, name: &str) -> Option<&Val<'a>> {
        self.locals.iter().rev().find(|(n, _)| n == name).map(|(_, value)| value)
    }

    pub fn bind(&mut self, name: &str, value: Val<'a>) {
        self.locals.push((name.to_string(), value));
    }

    pub fn ty(&self, expr: &Expr) -> Option<&'a SurfaceType> {
        self.context.types.get(&expr.id)
    }
}
