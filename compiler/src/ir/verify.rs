//! The verifier: every value defined once before use in an enclosing block, every operation
//! applied to operands of the types it accepts, blocks yielding what their owners expect.
//!
//! Run after every pass in debug builds and in tests; a failure is a compiler bug, reported
//! with the function printed so the broken instruction can be found.

use std::collections::HashSet;
use std::fmt;

use super::function::{BinaryOp, Block, BranchRule, Constant, Function, Kernel, Op, Sampler, UnaryOp, Value};
use super::types::Type;

/// What is wrong with a function, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IrError {
    pub message: String,
}

impl fmt::Display for IrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for IrError {}

fn error<T>(message: impl Into<String>) -> Result<T, IrError> {
    Err(IrError { message: message.into() })
}

/// The result types of an operation whose operands have the given types. `If` and `For` are
/// typed by their blocks instead (see [`structured_result_types`]).
pub fn result_types(op: &Op, operand: impl Fn(Value) -> Option<Type>) -> Result<Vec<Type>, IrError> {
    let ty = |value: Value| operand(value).ok_or_else(|| IrError { message: format!("%{} is not defined", value.0) });
    match op {
        Op::Const(Constant::Real(_)) => Ok(vec![Type::Real]),
        Op::Const(Constant::Int(_)) => Ok(vec![Type::Int]),
        Op::Const(Constant::Bool(_)) => Ok(vec![Type::Bool]),
        Op::Data(tensor) => match tensor.ty {
            Type::Vec(_) | Type::Mat(..) if tensor.values.len() == tensor.ty.elements() => Ok(vec![tensor.ty]),
            ty => Err(IrError {
                message: format!("data {} holds {} reals, not a {ty}", tensor.name, tensor.values.len()),
            }),
        },
        Op::Unary(unary, value) => {
            let t = ty(*value)?;
            match (unary, t) {
                (UnaryOp::Not, Type::Bool) => Ok(vec![Type::Bool]),
                (UnaryOp::ToReal, Type::Int) => Ok(vec![Type::Real]),
                (UnaryOp::ToInt, Type::Real) => Ok(vec![Type::Int]),
                (UnaryOp::Neg, Type::Int) => Ok(vec![Type::Int]),
                (UnaryOp::Not | UnaryOp::ToReal | UnaryOp::ToInt, _) => error(format!("{unary:?} of {t}")),
                (_, Type::Real | Type::Vec(_) | Type::Mat(..)) => Ok(vec![t]),
                _ => error(format!("{unary:?} of {t}")),
            }
        }
        Op::Binary(binary, a, b) => {
            let (ta, tb) = (ty(*a)?, ty(*b)?);
            match binary {
                BinaryOp::And | BinaryOp::Or if ta == Type::Bool && tb == Type::Bool => Ok(vec![Type::Bool]),
                BinaryOp::And | BinaryOp::Or => error(format!("{binary:?} of {ta} and {tb}")),
                _ if ta == Type::Int
                    && tb == Type::Int
                    && !matches!(binary, BinaryOp::Pow | BinaryOp::Div | BinaryOp::AtLeast) =>
                {
                    Ok(vec![Type::Int])
                }
                _ => broadcast(ta, tb)
                    .map(|t| vec![t])
                    .ok_or(IrError { message: format!("{binary:?} of {ta} and {tb}") }),
            }
        }
        Op::Compare(_, a, b) => {
            let (ta, tb) = (ty(*a)?, ty(*b)?);
            let scalar = |t: Type| matches!(t, Type::Real | Type::Int | Type::Bool);
            if ta == tb && scalar(ta) {
                Ok(vec![Type::Bool])
            } else {
                error(format!("comparison of {ta} and {tb}"))
            }
        }
        Op::Select { cond, if_true, if_false } => {
            let (tc, tt, tf) = (ty(*cond)?, ty(*if_true)?, ty(*if_false)?);
            if tc == Type::Bool && tt == tf {
                Ok(vec![tt])
            } else {
                error(format!("select on {tc} between {tt} and {tf}"))
            }
        }
        Op::Draw { rng, .. } => match ty(*rng)? {
            Type::Rng => Ok(vec![Type::Real, Type::Rng]),
            other => error(format!("draw from {other}, not a stream")),
        },
        Op::Split { rng } => match ty(*rng)? {
            Type::Rng => Ok(vec![Type::Rng, Type::Rng]),
            other => error(format!("split of {other}, not a stream")),
        },
        Op::StreamAfter { rng, offset } => match (ty(*rng)?, ty(*offset)?) {
            (Type::Rng, Type::Int) => Ok(vec![Type::Rng]),
            (stream, offset) => error(format!("stream_after of {stream} by {offset}, not a stream by an int")),
        },
        Op::Build(parts) => {
            let types = parts.iter().map(|part| ty(*part)).collect::<Result<Vec<_>, _>>()?;
            let len = u32::try_from(types.len()).map_err(|_| IrError { message: "vector too long".into() })?;
            match types.first() {
                None | Some(Type::Real) if types.iter().all(|t| *t == Type::Real) => Ok(vec![Type::Vec(len)]),
                Some(Type::Vec(n)) if types.iter().all(|t| *t == Type::Vec(*n)) => Ok(vec![Type::Mat(len, *n)]),
                _ => error(format!("build from {types:?}")),
            }
        }
        Op::Extract { aggregate, index } => match (ty(*aggregate)?, ty(*index)?) {
            (Type::Vec(_), Type::Int) => Ok(vec![Type::Real]),
            (Type::Mat(_, n), Type::Int) => Ok(vec![Type::Vec(n)]),
            (a, i) => error(format!("extract from {a} at {i}")),
        },
        Op::Reduce(_, value) => match ty(*value)? {
            Type::Vec(_) | Type::Mat(..) => Ok(vec![Type::Real]),
            other => error(format!("reduction of {other}")),
        },
        Op::MatMul(a, b) => match (ty(*a)?, ty(*b)?) {
            (Type::Mat(m, n), Type::Vec(k)) if n == k => Ok(vec![Type::Vec(m)]),
            (Type::Vec(k), Type::Mat(m, n)) if k == m => Ok(vec![Type::Vec(n)]),
            (Type::Mat(m, n), Type::Mat(k, p)) if n == k => Ok(vec![Type::Mat(m, p)]),
            (Type::Vec(a), Type::Vec(b)) if a == b => Ok(vec![Type::Real]),
            (a, b) => error(format!("product of {a} and {b}")),
        },
        Op::Insert { aggregate, index, value } => match (ty(*aggregate)?, ty(*index)?, ty(*value)?) {
            (Type::Vec(n), Type::Int, Type::Real) => Ok(vec![Type::Vec(n)]),
            (Type::Mat(m, n), Type::Int, Type::Vec(k)) if k == n => Ok(vec![Type::Mat(m, n)]),
            (a, i, v) => error(format!("insert of {v} into {a} at {i}")),
        },
        Op::Transpose(a) => match ty(*a)? {
            Type::Mat(m, n) => Ok(vec![Type::Mat(n, m)]),
            other => error(format!("transpose of {other}")),
        },
        Op::Slice { aggregate, start, len } => {
            let end = start.checked_add(*len);
            match ty(*aggregate)? {
                Type::Vec(n) if end.is_some_and(|end| end <= n) => Ok(vec![Type::Vec(*len)]),
                Type::Mat(m, n) if end.is_some_and(|end| end <= m) => Ok(vec![Type::Mat(*len, n)]),
                other => error(format!("{len} from {start} of {other}")),
            }
        }
        Op::Place { value, start, total } => {
            let fits = |len: u32| start.checked_add(len).is_some_and(|end| end <= *total);
            match ty(*value)? {
                Type::Vec(n) if fits(n) => Ok(vec![Type::Vec(*total)]),
                Type::Mat(m, n) if fits(m) => Ok(vec![Type::Mat(*total, n)]),
                other => error(format!("{other} placed at {start} of {total}")),
            }
        }
        Op::Outer(a, b) => match (ty(*a)?, ty(*b)?) {
            (Type::Vec(m), Type::Vec(n)) => Ok(vec![Type::Mat(m, n)]),
            (a, b) => error(format!("outer product of {a} and {b}")),
        },
        Op::MatMulTransposed { a, b, transposed, .. } => match (ty(*a)?, ty(*b)?) {
            (Type::Mat(r, c), Type::Mat(s, t)) => {
                let (m, n) = if transposed.a { (c, r) } else { (r, c) };
                let (k, p) = if transposed.b { (t, s) } else { (s, t) };
                if n == k {
                    Ok(vec![Type::Mat(m, p)])
                } else {
                    error(format!(
                        "product of {ta} and {tb} read as {transposed:?}",
                        ta = Type::Mat(r, c),
                        tb = Type::Mat(s, t)
                    ))
                }
            }
            (a, b) => error(format!("transposed product of {a} and {b}")),
        },
        Op::AddOuter { acc, a, b } => match (ty(*acc)?, ty(*a)?, ty(*b)?) {
            (Type::Mat(m, n), Type::Vec(rows), Type::Vec(cols)) if (m, n) == (rows, cols) => Ok(vec![Type::Mat(m, n)]),
            (acc, a, b) => error(format!("{acc} plus the outer product of {a} and {b}")),
        },
        Op::WithTangent { value, tangent_of } => {
            let (tv, tt) = (ty(*value)?, ty(*tangent_of)?);
            if tv == tt && tv.is_differentiable() {
                Ok(vec![tv])
            } else {
                error(format!("{tv} with the tangent of {tt}"))
            }
        }
        Op::Sample { sampler, args, rng } => {
            let types = args.iter().map(|arg| ty(*arg)).collect::<Result<Vec<_>, _>>()?;
            let (expected, value) = match sampler {
                Sampler::Gamma => (vec![Type::Real], Type::Real),
                Sampler::Poisson | Sampler::Geometric => (vec![Type::Real], Type::Int),
                Sampler::Categorical => match types.first() {
                    Some(Type::Vec(n)) => (vec![Type::Vec(*n)], Type::Int),
                    _ => return error("categorical draw from a non-vector"),
                },
                Sampler::Binomial => (vec![Type::Int, Type::Real], Type::Int),
                Sampler::Subsample { population, size } if size <= population => (Vec::new(), Type::Vec(*size)),
                Sampler::Subsample { population, size } => {
                    return error(format!("a subsample of {size} from {population} rows"))
                }
            };
            if types != expected || ty(*rng)? != Type::Rng {
                return error(format!("{sampler:?} draw from {types:?}"));
            }
            Ok(vec![value, Type::Rng])
        }
        Op::Kernel(Kernel::SoftplusSigmoid, args) => {
            let types = args.iter().map(|arg| ty(*arg)).collect::<Result<Vec<_>, _>>()?;
            match types[..] {
                [t @ (Type::Real | Type::Vec(_) | Type::Mat(..))] => Ok(vec![t, t]),
                _ => error(format!("softplus_sigmoid of {types:?}")),
            }
        }
        Op::Kernel(Kernel::SoftplusSigmoidSingle, args) => {
            let types = args.iter().map(|arg| ty(*arg)).collect::<Result<Vec<_>, _>>()?;
            match types[..] {
                [t @ Type::Mat(..)] => Ok(vec![t, t]),
                _ => error(format!("softplus_sigmoid.f32 of {types:?}")),
            }
        }
        Op::Kernel(Kernel::GammaSampleDShape, args) => {
            let types = args.iter().map(|arg| ty(*arg)).collect::<Result<Vec<_>, _>>()?;
            if types == [Type::Real, Type::Real] {
                Ok(vec![Type::Real])
            } else {
                error(format!("gamma_sample_dshape of {types:?}"))
            }
        }
        Op::Check { cond, culprit, .. } => match (ty(*cond)?, ty(*culprit)?) {
            (Type::Bool, _) => Ok(Vec::new()),
            (other, _) => error(format!("check of {other}")),
        },
        Op::Save(value) => ty(*value).map(|_| Vec::new()),
        Op::Restore(t) => Ok(vec![*t]),
        Op::Branch { rule, args, rng } => {
            let types = args.iter().map(|arg| ty(*arg)).collect::<Result<Vec<_>, _>>()?;
            let value = branch_value_type(*rule, &types)?;
            if ty(*rng)? != Type::Rng {
                return error("a branch draws from a non-stream");
            }
            Ok(vec![value, Type::Rng])
        }
        Op::If { .. } | Op::For { .. } | Op::Expect { .. } => error("structured operations are typed by their blocks"),
    }
}

/// The type of the value a multi-run choice draws, given its arguments' types.
pub fn branch_value_type(rule: BranchRule, args: &[Type]) -> Result<Type, IrError> {
    match (rule, args) {
        (BranchRule::EnumFlip | BranchRule::MvdFlip, [Type::Real]) => Ok(Type::Bool),
        (BranchRule::EnumCategorical, [Type::Vec(_)]) => Ok(Type::Int),
        (BranchRule::MvdPoisson, [Type::Real]) => Ok(Type::Int),
        _ => error(format!("{rule:?} of {args:?}")),
    }
}

/// The result types of `If` (its branches' results) and `For` (its carried values).
pub fn structured_result_types(function: &Function, op: &Op) -> Vec<Type> {
    let values = match op {
        Op::If { then, .. } => &then.results,
        Op::For { init, .. } => init,
        Op::Expect { body, .. } => &body.results,
        _ => return Vec::new(),
    };
    values.iter().filter_map(|value| function.ty(*value)).collect()
}

/// The type of an elementwise operation on two operands, a scalar broadcasting.
fn broadcast(a: Type, b: Type) -> Option<Type> {
    let real_scalar = |t: Type| matches!(t, Type::Real | Type::Int);
    match (a, b) {
        _ if real_scalar(a) && real_scalar(b) => Some(Type::Real),
        (t, s) | (s, t) if real_scalar(s) && matches!(t, Type::Vec(_) | Type::Mat(..)) => Some(t),
        _ if a == b && matches!(a, Type::Vec(_) | Type::Mat(..)) => Some(a),
        _ => None,
    }
}

/// Checks a whole function.
pub fn verify(function: &Function) -> Result<(), IrError> {
    let mut verifier =
        Verifier { function, defined: HashSet::new(), visible: HashSet::new(), scopes: vec![Vec::new()] };
    verifier.block(&function.body).map_err(|e| IrError { message: format!("in `{}`: {}", function.name, e.message) })
}

struct Verifier<'f> {
    function: &'f Function,
    /// Every value defined so far anywhere (each may be defined only once).
    defined: HashSet<Value>,
    /// Values visible at the current point (looked up in constant time: verifying is linear
    /// in the size of the function, which inlining can make large).
    visible: HashSet<Value>,
    /// The values each enclosing block defined, to hide when it ends.
    scopes: Vec<Vec<Value>>,
}

impl Verifier<'_> {
    fn define(&mut self, value: Value) -> Result<(), IrError> {
        if self.function.ty(value).is_none() {
            return error(format!("%{} has no type", value.0));
        }
        if !self.defined.insert(value) {
            return error(format!("%{} is defined twice", value.0));
        }
        if let Some(scope) = self.scopes.last_mut() {
            scope.push(value);
            self.visible.insert(value);
        }
        Ok(())
    }

    fn visible(&self, value: Value) -> Option<Type> {
        self.visible.contains(&value).then(|| self.function.ty(value)).flatten()
    }

    fn block(&mut self, block: &Block) -> Result<(), IrError> {
        self.scopes.push(Vec::new());
        for param in &block.params {
            self.define(*param)?;
        }
        for inst in &block.insts {
            match &inst.op {
                Op::If { cond, then, otherwise } => {
                    if self.visible(*cond) != Some(Type::Bool) {
                        return error(format!("`if` condition %{} is not a visible bool", cond.0));
                    }
                    if !then.params.is_empty() || !otherwise.params.is_empty() {
                        return error("`if` branches take no parameters");
                    }
                    self.block(then)?;
                    self.block(otherwise)?;
                    let then_types: Vec<Option<Type>> = then.results.iter().map(|v| self.function.ty(*v)).collect();
                    let else_types: Vec<Option<Type>> =
                        otherwise.results.iter().map(|v| self.function.ty(*v)).collect();
                    if then_types != else_types {
                        return error("`if` branches yield different types");
                    }
                }
                Op::For { lo, hi, init, body } => {
                    for bound in [lo, hi] {
                        if self.visible(*bound) != Some(Type::Int) {
                            return error(format!("loop bound %{} is not a visible int", bound.0));
                        }
                    }
                    let carried: Vec<Option<Type>> = init.iter().map(|v| self.visible(*v)).collect();
                    let mut params = vec![Some(Type::Int)];
                    params.extend(carried.iter().copied());
                    let body_params: Vec<Option<Type>> = body.params.iter().map(|v| self.function.ty(*v)).collect();
                    if carried.contains(&None) || body_params != params {
                        return error("loop parameters must be [int, carried values…]");
                    }
                    self.block(body)?;
                    let yielded: Vec<Option<Type>> = body.results.iter().map(|v| self.function.ty(*v)).collect();
                    if yielded != carried {
                        return error("a loop body must yield its carried values");
                    }
                }
                Op::Expect { rng, body } => {
                    if self.visible(*rng) != Some(Type::Rng) {
                        return error(format!("expectation stream %{} is not a visible stream", rng.0));
                    }
                    let params: Vec<Option<Type>> = body.params.iter().map(|v| self.function.ty(*v)).collect();
                    if params != [Some(Type::Rng)] {
                        return error("an expectation's body takes one stream");
                    }
                    self.block(body)?;
                    let yielded: Vec<Option<Type>> = body.results.iter().map(|v| self.function.ty(*v)).collect();
                    if !matches!(yielded.as_slice(), [Some(Type::Real | Type::Vec(_))]) {
                        return error("an expectation's body must yield one real or one vector");
                    }
                }
                _ => {}
            }
            let expected = match &inst.op {
                Op::If { .. } | Op::For { .. } | Op::Expect { .. } => structured_result_types(self.function, &inst.op),
                op => result_types(op, |value| self.visible(value))?,
            };
            let actual: Vec<Type> = inst.results.iter().filter_map(|v| self.function.ty(*v)).collect();
            if actual != expected || actual.len() != inst.results.len() {
                return error(format!("{:?} yields {expected:?}, but its results are typed {actual:?}", inst.op));
            }
            for result in &inst.results {
                self.define(*result)?;
            }
        }
        for result in &block.results {
            if self.visible(*result).is_none() {
                return error(format!("block yields %{}, which is not visible there", result.0));
            }
        }
        for value in self.scopes.pop().into_iter().flatten() {
            self.visible.remove(&value);
        }
        Ok(())
    }
}
