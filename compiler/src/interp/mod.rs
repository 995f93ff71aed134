//! The reference interpreter of the IR: the executable specification of what every
//! instruction computes.
//!
//! It is written for clarity, not speed: each operation is evaluated exactly as its
//! definition says, with the same runtime kernels (`ppl_runtime`, `libm`) that compiled code
//! calls, so the Cranelift back end can be required to agree with it bit for bit. It must not
//! optimise, reorder or fuse anything.

mod value;

use std::collections::HashMap;

use ppl_runtime::Rng;

pub use value::RuntimeValue;

use crate::ir::{
    BinaryOp, Block, CompareOp, Constant, Function, Kernel, Noise, Op, ReduceOp, Sampler, Tensor, UnaryOp, Value,
};
use crate::syntax::span::Span;

/// A failure while running a function: an index out of bounds, an integer overflow, or
/// arguments that do not match the function (a bug in the caller).
#[derive(Clone, Debug, PartialEq)]
pub struct InterpError {
    pub kind: ErrorKind,
    pub message: String,
    /// The source of the instruction that failed, when it has one.
    pub span: Option<Span>,
}

/// What kind of failure stopped a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A distribution's argument outside its domain (a failed `check`).
    Domain,
    OutOfBounds,
    /// An instruction produced NaN from operands that were not NaN (when watching for it).
    NotANumber,
    /// Anything else: integer overflow, or a malformed function (a compiler bug).
    Failure,
}

impl std::fmt::Display for InterpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InterpError {}

/// Runs `function` on `args` (one per parameter of its body) and returns its results.
pub fn run(function: &Function, args: Vec<RuntimeValue>) -> Result<Vec<RuntimeValue>, InterpError> {
    run_with(function, &DataInPlace::of(function), args)
}

/// [`run`], with the function's [`DataInPlace`] found once by a caller that runs it many times.
pub fn run_with(
    function: &Function,
    data: &DataInPlace,
    args: Vec<RuntimeValue>,
) -> Result<Vec<RuntimeValue>, InterpError> {
    Frame::new(function, data, false).run_block(&function.body, args)
}

/// Like [`run`], but stops at the first instruction that produces NaN from operands that are
/// not NaN, with an [`ErrorKind::NotANumber`] error at that instruction's source.
pub fn run_watching_nan(function: &Function, args: Vec<RuntimeValue>) -> Result<Vec<RuntimeValue>, InterpError> {
    Frame::new(function, &DataInPlace::of(function), true).run_block(&function.body, args)
}

/// The data tensors a function reads only by element, row or slice: the interpreter reads them
/// where they live, never copying them whole (a picture of a few test images must not copy the
/// test set).
#[derive(Debug, Default)]
pub struct DataInPlace(HashMap<Value, Tensor>);

impl DataInPlace {
    pub fn of(function: &Function) -> DataInPlace {
        DataInPlace(read_in_place(function))
    }
}

/// The values defined so far, indexed by `Value`, and the tape.
struct Frame<'a> {
    values: Vec<Option<RuntimeValue>>,
    in_place: &'a HashMap<Value, Tensor>,
    tape: Vec<RuntimeValue>,
    watch_nan: bool,
}

/// The data tensors of `function` that only `Extract` and `Slice` read (as their aggregate).
fn read_in_place(function: &Function) -> HashMap<Value, Tensor> {
    fn data(block: &Block, tensors: &mut HashMap<Value, Tensor>) {
        for inst in &block.insts {
            if let (Op::Data(tensor), [result]) = (&inst.op, inst.results.as_slice()) {
                tensors.insert(*result, tensor.clone());
            }
            for nested in inst.op.blocks() {
                data(nested, tensors);
            }
        }
    }
    fn read_whole(block: &Block, tensors: &mut HashMap<Value, Tensor>) {
        for value in &block.results {
            tensors.remove(value);
        }
        for inst in &block.insts {
            match &inst.op {
                Op::Extract { index, .. } => {
                    tensors.remove(index);
                }
                Op::Slice { .. } | Op::Data(_) => {}
                op => {
                    for operand in op.operands() {
                        tensors.remove(&operand);
                    }
                }
            }
            for nested in inst.op.blocks() {
                read_whole(nested, tensors);
            }
        }
    }
    let mut tensors = HashMap::new();
    data(&function.body, &mut tensors);
    if !tensors.is_empty() {
        read_whole(&function.body, &mut tensors);
    }
    tensors
}

fn fail<T>(message: impl Into<String>, span: Option<Span>) -> Result<T, InterpError> {
    Err(InterpError { kind: ErrorKind::Failure, message: message.into(), span })
}

impl<'a> Frame<'a> {
    fn new(function: &Function, data: &'a DataInPlace, watch_nan: bool) -> Frame<'a> {
        let values = vec![None; function.value_types.len()];
        Frame { values, in_place: &data.0, tape: Vec::new(), watch_nan }
    }

    fn get(&self, value: Value) -> Result<&RuntimeValue, InterpError> {
        match self.values.get(value.0 as usize) {
            Some(Some(v)) => Ok(v),
            _ => fail(format!("{value} is used before it is defined"), None),
        }
    }

    fn set(&mut self, value: Value, runtime: RuntimeValue) -> Result<(), InterpError> {
        match self.values.get_mut(value.0 as usize) {
            Some(slot) => {
                *slot = Some(runtime);
                Ok(())
            }
            None => fail(format!("{value} has no slot"), None),
        }
    }

    fn run_block(&mut self, block: &Block, args: Vec<RuntimeValue>) -> Result<Vec<RuntimeValue>, InterpError> {
        if args.len() != block.params.len() {
            return fail(format!("a block of {} parameters given {} values", block.params.len(), args.len()), None);
        }
        for (param, arg) in block.params.iter().zip(args) {
            self.set(*param, arg)?;
        }
        for inst in &block.insts {
            if matches!(inst.op, Op::Data(_)) && inst.results.iter().all(|result| self.in_place.contains_key(result)) {
                continue;
            }
            let results = self.eval(&inst.op).map_err(|mut error| {
                error.span = error.span.or(inst.span);
                error
            })?;
            if results.len() != inst.results.len() {
                return fail("an instruction produced the wrong number of results", inst.span);
            }
            if self.watch_nan && inst.op.blocks().is_empty() && results.iter().any(RuntimeValue::has_nan) {
                let operands = inst.op.operands();
                let mut shown = Vec::with_capacity(operands.len());
                for operand in operands {
                    if let Some(tensor) = self.in_place.get(&operand) {
                        if tensor.values.iter().any(|x| x.is_nan()) {
                            shown.clear();
                            break;
                        }
                        shown.push(format!("the data `{}`", tensor.name));
                        continue;
                    }
                    let value = self.get(operand)?;
                    if value.has_nan() {
                        shown.clear();
                        break;
                    }
                    shown.push(value.to_string());
                }
                if !shown.is_empty() || inst.op.operands().is_empty() {
                    let message = if shown.is_empty() {
                        // An operation on constants, folded at compile time (like 0.0 / 0.0).
                        "a result is NaN; the first NaN is a constant the program computes from constants".to_string()
                    } else {
                        format!("a result is NaN; the first NaN came from an operation on {}", shown.join(" and "))
                    };
                    return Err(InterpError { kind: ErrorKind::NotANumber, message, span: inst.span });
                }
            }
            for (value, result) in inst.results.iter().zip(results) {
                self.set(*value, result)?;
            }
        }
        block.results.iter().map(|value| self.get(*value).cloned()).collect()
    }

    fn eval(&mut self, op: &Op) -> Result<Vec<RuntimeValue>, InterpError> {
        let one = |value: RuntimeValue| Ok(vec![value]);
        match op {
            Op::Const(Constant::Real(x)) => one(RuntimeValue::Real(*x)),
            Op::Const(Constant::Int(n)) => one(RuntimeValue::Int(*n)),
            Op::Const(Constant::Bool(b)) => one(RuntimeValue::Bool(*b)),
            Op::Data(tensor) => one(RuntimeValue::from_reals(tensor.ty, &tensor.values)),
            Op::Unary(unary, value) => one(unary_op(*unary, self.get(*value)?)?),
            Op::Binary(binary, a, b) => one(binary_op(*binary, self.get(*a)?, self.get(*b)?)?),
            Op::Compare(compare, a, b) => one(RuntimeValue::Bool(compare_op(*compare, self.get(*a)?, self.get(*b)?)?)),
            Op::Select { cond, if_true, if_false } => {
                let chosen = if self.get(*cond)?.as_bool()? { if_true } else { if_false };
                one(self.get(*chosen)?.clone())
            }
            Op::Draw { noise, rng } => {
                let mut stream = self.get(*rng)?.as_rng()?.clone();
                let x = match noise {
                    Noise::Uniform => stream.uniform(),
                    Noise::Normal => stream.standard_normal(),
                };
                Ok(vec![RuntimeValue::Real(x), RuntimeValue::Rng(Box::new(stream))])
            }
            Op::Split { rng } => {
                let mut stream: Rng = self.get(*rng)?.as_rng()?.clone();
                let fork = stream.fork();
                Ok(vec![RuntimeValue::Rng(Box::new(stream)), RuntimeValue::Rng(Box::new(fork))])
            }
            Op::StreamAfter { rng, offset } => {
                let offset = self.get(*offset)?.as_int()?;
                one(RuntimeValue::Rng(Box::new(self.get(*rng)?.as_rng()?.stream_after(offset as u64))))
            }
            Op::Build(parts) => {
                let parts: Vec<&RuntimeValue> = parts.iter().map(|part| self.get(*part)).collect::<Result<_, _>>()?;
                one(RuntimeValue::build(&parts)?)
            }
            Op::Extract { aggregate, index } => {
                let index = self.get(*index)?.as_int()?;
                match self.in_place.get(aggregate) {
                    Some(tensor) => one(value::extract_from(&tensor.values, tensor.ty.shape(), index)?),
                    None => one(self.get(*aggregate)?.extract(index)?),
                }
            }
            Op::Reduce(reduce, value) => {
                let elements = self.get(*value)?.elements()?;
                one(RuntimeValue::Real(match reduce {
                    ReduceOp::Sum => elements.iter().sum(),
                    ReduceOp::LogSumExp => ppl_runtime::logsumexp(elements),
                    ReduceOp::Min => ppl_runtime::minimum(elements),
                    ReduceOp::Max => ppl_runtime::maximum(elements),
                }))
            }
            Op::MatMul(a, b) => one(value::matmul(self.get(*a)?, self.get(*b)?)?),
            Op::MatMulTransposed { a, b, transposed, precision } => {
                one(value::matmul_transposed(self.get(*a)?, self.get(*b)?, *transposed, *precision)?)
            }
            Op::Insert { aggregate, index, value } => {
                let index = self.get(*index)?.as_int()?;
                one(self.get(*aggregate)?.insert(index, self.get(*value)?)?)
            }
            Op::Transpose(a) => one(value::transpose(self.get(*a)?)?),
            Op::Outer(a, b) => one(value::outer(self.get(*a)?, self.get(*b)?)?),
            Op::Slice { aggregate, start, len } => match self.in_place.get(aggregate) {
                Some(tensor) => {
                    let cols = tensor.ty.shape().map(|(_, cols)| cols);
                    one(value::slice_from(&tensor.values, cols, *start as usize, *len as usize)?)
                }
                None => one(self.get(*aggregate)?.slice(*start as usize, *len as usize)?),
            },
            Op::Place { value, start, total } => one(self.get(*value)?.placed(*start as usize, *total as usize)?),
            Op::AddOuter { acc, a, b } => match self.get(*acc)?.clone() {
                RuntimeValue::Mat { rows, cols, mut data } => {
                    ppl_runtime::add_outer(&mut data, self.get(*a)?.elements()?, self.get(*b)?.elements()?);
                    one(RuntimeValue::Mat { rows, cols, data })
                }
                other => fail(format!("the outer product added to a {}", other.kind()), None),
            },
            Op::WithTangent { value, .. } => one(self.get(*value)?.clone()),
            Op::Sample { sampler, args, rng } => {
                let mut stream = self.get(*rng)?.as_rng()?.clone();
                let drawn = match (sampler, args.as_slice()) {
                    (Sampler::Gamma, [shape]) => {
                        ppl_runtime::sample::gamma(&mut stream, self.get(*shape)?.as_real()?, 1.0)
                            .map(RuntimeValue::Real)
                    }
                    (Sampler::Poisson, [rate]) => {
                        ppl_runtime::sample::poisson(&mut stream, self.get(*rate)?.as_real()?)
                            .map(|n| RuntimeValue::Int(ppl_runtime::sample::count_to_int(n)))
                    }
                    (Sampler::Geometric, [p]) => ppl_runtime::sample::geometric(&mut stream, self.get(*p)?.as_real()?)
                        .map(|n| RuntimeValue::Int(ppl_runtime::sample::count_to_int(n))),
                    (Sampler::Binomial, [trials, p]) => match u64::try_from(self.get(*trials)?.as_int()?) {
                        Ok(trials) => ppl_runtime::sample::binomial(&mut stream, trials, self.get(*p)?.as_real()?)
                            .map(|n| RuntimeValue::Int(ppl_runtime::sample::count_to_int(n))),
                        Err(_) => return fail("a negative number of binomial trials", None),
                    },
                    (Sampler::Subsample { population, size }, []) => {
                        let mut rows = vec![0.0; *size as usize];
                        ppl_runtime::sample::subsample(&mut stream, u64::from(*population), &mut rows)
                            .map(|()| RuntimeValue::Vec(rows))
                    }
                    (Sampler::Categorical, [weights]) => {
                        ppl_runtime::sample::categorical(&mut stream, self.get(*weights)?.elements()?)
                            .map(|i| RuntimeValue::Int(i as i64))
                    }
                    _ => return fail(format!("{sampler:?} given {} arguments", args.len()), None),
                };
                let drawn = drawn.map_err(|error| InterpError {
                    kind: ErrorKind::Domain,
                    message: error.to_string(),
                    span: None,
                })?;
                Ok(vec![drawn, RuntimeValue::Rng(Box::new(stream))])
            }
            Op::Kernel(kernel @ (Kernel::SoftplusSigmoid | Kernel::SoftplusSigmoidSingle), args) => {
                match args.as_slice() {
                    [x] => softplus_and_sigmoid(self.get(*x)?, *kernel == Kernel::SoftplusSigmoidSingle),
                    _ => fail("softplus_sigmoid takes one argument", None),
                }
            }
            Op::Kernel(Kernel::GammaSampleDShape, args) => match args.as_slice() {
                [x, shape] => one(RuntimeValue::Real(ppl_runtime::gamma_sample_dshape(
                    self.get(*x)?.as_real()?,
                    self.get(*shape)?.as_real()?,
                ))),
                _ => fail("gamma_sample_dshape takes two arguments", None),
            },
            Op::Check { cond, culprit, message } => {
                if self.get(*cond)?.as_bool()? {
                    Ok(Vec::new())
                } else {
                    let culprit = self.get(*culprit)?;
                    let message = match message.contains("{}") {
                        true => message.replacen("{}", &culprit.to_string(), 1),
                        false => format!("{message}, but it is {culprit}"),
                    };
                    Err(InterpError { kind: ErrorKind::Domain, message, span: None })
                }
            }
            Op::Save(value) => {
                let saved = self.get(*value)?.clone();
                self.tape.push(saved);
                Ok(Vec::new())
            }
            Op::Restore(_) => match self.tape.pop() {
                Some(value) => one(value),
                None => fail("restore from an empty tape", None),
            },
            Op::Expect { .. } | Op::Branch { .. } => fail("an expectation must be expanded before it runs", None),
            Op::If { cond, then, otherwise } => {
                let branch = if self.get(*cond)?.as_bool()? { then } else { otherwise };
                self.run_block(branch, Vec::new())
            }
            Op::For { lo, hi, init, body } => {
                let (lo, hi) = (self.get(*lo)?.as_int()?, self.get(*hi)?.as_int()?);
                let mut carried: Vec<RuntimeValue> =
                    init.iter().map(|value| self.get(*value).cloned()).collect::<Result<_, _>>()?;
                for i in lo..hi {
                    let mut args = Vec::with_capacity(carried.len() + 1);
                    args.push(RuntimeValue::Int(i));
                    args.extend(carried);
                    carried = self.run_block(body, args)?;
                }
                Ok(carried)
            }
        }
    }
}

/// Evaluates a unary, binary or comparison operation on given operand values, or `None` for
/// other operations and for failures (an integer overflow stays a run-time error). Constant
/// folding uses it, so a folded constant is exactly what the interpreter computes.
pub fn evaluate_pure(op: &Op, operands: &[&RuntimeValue]) -> Option<RuntimeValue> {
    match (op, operands) {
        (Op::Unary(unary, _), [a]) => unary_op(*unary, a).ok(),
        (Op::Binary(binary, ..), [a, b]) => binary_op(*binary, a, b).ok(),
        (Op::Compare(compare, ..), [a, b]) => compare_op(*compare, a, b).ok().map(RuntimeValue::Bool),
        _ => None,
    }
}

/// The scalar function of an elementwise unary operation on reals.
pub fn real_unary(op: UnaryOp) -> Option<fn(f64) -> f64> {
    Some(match op {
        UnaryOp::Neg => |x: f64| -x,
        UnaryOp::Exp => libm::exp,
        UnaryOp::Log => libm::log,
        UnaryOp::Log1p => libm::log1p,
        UnaryOp::Expm1 => libm::expm1,
        UnaryOp::Sqrt => libm::sqrt,
        UnaryOp::Abs => libm::fabs,
        UnaryOp::Sin => libm::sin,
        UnaryOp::Cos => libm::cos,
        UnaryOp::Tan => libm::tan,
        UnaryOp::Tanh => libm::tanh,
        UnaryOp::Sigmoid => ppl_runtime::sigmoid,
        UnaryOp::Softplus => ppl_runtime::softplus,
        UnaryOp::Lgamma => ppl_runtime::lgamma,
        UnaryOp::Digamma => ppl_runtime::digamma,
        UnaryOp::Trigamma => ppl_runtime::trigamma,
        UnaryOp::Floor => libm::floor,
        UnaryOp::Detach => |x: f64| x,
        UnaryOp::Not | UnaryOp::ToReal | UnaryOp::ToInt => return None,
    })
}

/// The scalar function of an elementwise binary operation on reals.
pub fn real_binary(op: BinaryOp) -> Option<fn(f64, f64) -> f64> {
    Some(match op {
        BinaryOp::Add => |a, b| a + b,
        BinaryOp::Sub => |a, b| a - b,
        BinaryOp::Mul => |a, b| a * b,
        BinaryOp::Div => |a, b| a / b,
        BinaryOp::Pow => libm::pow,
        BinaryOp::Min => f64::min,
        BinaryOp::Max => f64::max,
        BinaryOp::AtLeast => at_least,
        BinaryOp::And | BinaryOp::Or => return None,
    })
}

/// [`BinaryOp::AtLeast`]: 1 where `a >= b`, else 0 (NaN compares false).
pub fn at_least(a: f64, b: f64) -> f64 {
    if a >= b {
        1.0
    } else {
        0.0
    }
}

/// `[softplus(x), sigmoid(x)]` elementwise, by the runtime's kernels for both at once: the
/// scalar one for a real, the slice one (which compiled code calls too) for a vector or matrix,
/// or its f32 counterpart if `single`.
fn softplus_and_sigmoid(x: &RuntimeValue, single: bool) -> Result<Vec<RuntimeValue>, InterpError> {
    if let (RuntimeValue::Real(x), false) = (x, single) {
        let (softplus, sigmoid) = ppl_runtime::softplus_and_sigmoid(*x);
        return Ok(vec![RuntimeValue::Real(softplus), RuntimeValue::Real(sigmoid)]);
    }
    let (mut softplus, mut sigmoid) = (x.clone(), x.clone());
    match (&mut softplus, &mut sigmoid) {
        (RuntimeValue::Vec(s), RuntimeValue::Vec(g))
        | (RuntimeValue::Mat { data: s, .. }, RuntimeValue::Mat { data: g, .. }) => {
            let slices = match single {
                true => ppl_runtime::softplus_and_sigmoid_single,
                false => ppl_runtime::softplus_and_sigmoid_slices,
            };
            slices(x.elements()?, s, g);
        }
        _ => return fail(format!("softplus_sigmoid of a {}", x.kind()), None),
    }
    Ok(vec![softplus, sigmoid])
}

fn unary_op(op: UnaryOp, value: &RuntimeValue) -> Result<RuntimeValue, InterpError> {
    match (op, value) {
        // The slice kernels the native code calls (the same bits as `softplus` and `floor`,
        // faster).
        (UnaryOp::Softplus | UnaryOp::Floor, RuntimeValue::Vec(_) | RuntimeValue::Mat { .. }) => {
            let mut result = value.clone();
            if let RuntimeValue::Vec(out) | RuntimeValue::Mat { data: out, .. } = &mut result {
                let slice_kernel = match op {
                    UnaryOp::Softplus => ppl_runtime::softplus_slice,
                    _ => ppl_runtime::floor_slice,
                };
                slice_kernel(value.elements()?, out);
            }
            Ok(result)
        }
        (UnaryOp::Not, RuntimeValue::Bool(b)) => Ok(RuntimeValue::Bool(!b)),
        (UnaryOp::ToReal, RuntimeValue::Int(n)) => Ok(RuntimeValue::Real(*n as f64)),
        (UnaryOp::ToInt, RuntimeValue::Real(x)) => Ok(RuntimeValue::Int(*x as i64)),
        (UnaryOp::Neg, RuntimeValue::Int(n)) => n.checked_neg().map(RuntimeValue::Int).ok_or(InterpError {
            kind: ErrorKind::Failure,
            message: "integer overflow".into(),
            span: None,
        }),
        _ => match real_unary(op) {
            Some(f) => value.map(f),
            None => fail(format!("{op:?} of {}", value.kind()), None),
        },
    }
}

fn binary_op(op: BinaryOp, a: &RuntimeValue, b: &RuntimeValue) -> Result<RuntimeValue, InterpError> {
    match (op, a, b) {
        (BinaryOp::And, RuntimeValue::Bool(x), RuntimeValue::Bool(y)) => Ok(RuntimeValue::Bool(*x && *y)),
        (BinaryOp::Or, RuntimeValue::Bool(x), RuntimeValue::Bool(y)) => Ok(RuntimeValue::Bool(*x || *y)),
        (
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Min | BinaryOp::Max,
            RuntimeValue::Int(x),
            RuntimeValue::Int(y),
        ) => {
            let result = match op {
                BinaryOp::Add => x.checked_add(*y),
                BinaryOp::Sub => x.checked_sub(*y),
                BinaryOp::Mul => x.checked_mul(*y),
                BinaryOp::Min => Some(*x.min(y)),
                _ => Some(*x.max(y)),
            };
            result.map(RuntimeValue::Int).ok_or(InterpError {
                kind: ErrorKind::Failure,
                message: "integer overflow".into(),
                span: None,
            })
        }
        _ => match real_binary(op) {
            Some(f) => value::broadcast(f, a, b),
            None => fail(format!("{op:?} of {} and {}", a.kind(), b.kind()), None),
        },
    }
}

fn compare_op(op: CompareOp, a: &RuntimeValue, b: &RuntimeValue) -> Result<bool, InterpError> {
    let ordering = match (a, b) {
        (RuntimeValue::Int(x), RuntimeValue::Int(y)) => x.partial_cmp(y),
        (RuntimeValue::Bool(x), RuntimeValue::Bool(y)) => x.partial_cmp(y),
        _ => a.as_real()?.partial_cmp(&b.as_real()?),
    };
    use std::cmp::Ordering::*;
    Ok(match op {
        CompareOp::Eq => ordering == Some(Equal),
        CompareOp::Ne => ordering != Some(Equal),
        CompareOp::Lt => ordering == Some(Less),
        CompareOp::Le => matches!(ordering, Some(Less | Equal)),
        CompareOp::Gt => ordering == Some(Greater),
        CompareOp::Ge => matches!(ordering, Some(Greater | Equal)),
    })
}

#[cfg(test)]
mod tests;
