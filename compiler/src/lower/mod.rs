//! Lowering: checked syntax to the probabilistic IR.
//!
//! Every `fn` call is inlined (the checker has rejected recursion), tuples and records become
//! groups of IR values, `param`s become function parameters, `data` and `let` globals are
//! computed at the start of each function, and estimates (`est`) stay symbolic until a
//! command consumes one. Choices inside `E { … }` are lowered by ADEV's estimator rules
//! (`adev::estimators`), which leave `Expect` and `Branch` operations for ADEV to expand.
//!
//! This stage must not differentiate anything or decide how an estimate is run; it produces
//! one function per command input, which `adev` compiles.

mod builtins;
mod discrete_data;
mod expr;
mod gen;
mod plates;
mod returns;
mod rows;
mod stacked;
mod value;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

pub(crate) use expr::bind_args;
pub use value::{Element, Shape, Val};

use crate::adev::estimators::ExpectState;
use crate::diagnostics::{Diagnostic, ErrorCode};
use crate::interp::RuntimeValue;
use crate::ir::verify::IrError;
use crate::ir::{Constant, Function, FunctionBuilder, Op, Tensor, Type};
use crate::syntax::ast::{Binding, Expr, ExprKind, ItemKind};
use crate::syntax::span::Span;
use crate::types::{CheckedProgram, ItemRef, Type as SurfaceType};
use crate::Analysis;
use value::{Context, Env, Estimate};

pub type Lowered<T> = Result<T, Diagnostic>;

/// A parameter: a `param` of type real, vector or matrix, or one of the leaves of a record
/// `param` (`param net: {w: mat[2, 3], b: vec[2]} = …;` declares `net.w`, then `net.b`):
/// its name (dotted for a leaf), its IR type and where it is declared.
#[derive(Clone, Debug)]
pub struct Param {
    pub name: String,
    pub ty: Type,
    pub item: ItemRef,
    /// The fields from the declared record parameter down to this leaf (`["w"]` for `net.w`);
    /// empty for a parameter that is not a record.
    pub path: Vec<String>,
}

/// The program-wide facts lowering needs: the parsed and checked files and the parameters.
pub struct Program<'a> {
    pub analysis: &'a Analysis,
    /// Every parameter, record parameters as their leaves, in declaration order.
    pub params: Vec<Param>,
    /// The record parameters' types, by name: the name stands for the record of its leaves.
    records: HashMap<String, SurfaceType>,
    globals: HashMap<&'a str, Global<'a>>,
    /// Each `data` item's value, computed at its first use.
    data: RefCell<HashMap<&'a str, Rc<DataValue<'a>>>>,
    /// The run's seed, from which `data` items declared with a random initialiser draw their
    /// values (`data z: mat[64, 10] = normal_init(1.0);`), each on a stream of its own.
    pub seed: u64,
    /// Which data sets' elements can stand for booleans or counts, scanned at their first use.
    discrete_data: discrete_data::DiscreteData,
}

/// A top-level `data` or `let` binding.
#[derive(Clone, Copy)]
struct Global<'a> {
    at: ItemRef,
    binding: &'a Binding,
    is_data: bool,
}

/// A `data` item's value, computed once: vectors and matrices become [`Tensor`]s every function
/// reads in place (a data set costs its bytes, not code), scalars constants the compiler folds.
enum DataValue<'a> {
    Computed {
        /// The value's structure (its IR values belong to no function; see [`Val::rebuild`]).
        template: Val<'a>,
        leaves: Vec<DataLeaf>,
    },
    /// Computed from parameters (`data d = 2.0 * p;`): lowered where it is used, like a `let`.
    Inline,
}

enum DataLeaf {
    Constant(crate::ir::Constant),
    Tensor(Tensor),
}

/// A lowered command input: the function and the layout of what it returns.
#[derive(Debug)]
pub struct LoweredValues {
    /// Parameters: one per `param` of the program, in declaration order.
    pub function: Function,
    pub shapes: Vec<Shape>,
}

impl<'a> Program<'a> {
    /// Collects the parameters and globals of a checked program (which must have no errors).
    pub fn new(analysis: &'a Analysis) -> Lowered<Self> {
        let mut params = Vec::new();
        let mut records = HashMap::new();
        let mut globals = HashMap::new();
        for (file, parsed) in analysis.files.iter().enumerate() {
            for (index, item) in parsed.program.items.iter().enumerate() {
                let at = ItemRef { file, item: index };
                match &item.kind {
                    ItemKind::Param(binding) => {
                        let ty = analysis.checked.globals.get(&binding.name.name).map(|global| &global.ty);
                        let ty = ty.ok_or_else(|| internal(Some(binding.name.span), "an unchecked `param`"))?;
                        if let SurfaceType::Record(_) = ty {
                            records.insert(binding.name.name.clone(), ty.clone());
                        }
                        let mut path = Vec::new();
                        leaf_params(&binding.name, at, ty, &mut path, &mut params)?;
                    }
                    ItemKind::Data(binding) | ItemKind::Let(binding) => {
                        let is_data = matches!(item.kind, ItemKind::Data(_));
                        globals.insert(binding.name.name.as_str(), Global { at, binding, is_data });
                    }
                    _ => {}
                }
            }
        }
        Ok(Program {
            analysis,
            params,
            records,
            globals,
            data: RefCell::default(),
            seed: 0,
            discrete_data: Default::default(),
        })
    }

    pub fn checked(&self) -> &'a CheckedProgram {
        &self.analysis.checked
    }

    fn top_level_context(&self, file: usize) -> Option<Context<'a>> {
        let checked = self.checked();
        Some(Context { types: checked.top_level_types.get(file)?, calls: checked.top_level_calls.get(file)? })
    }

    /// A function of the parameters returning the values of `exprs` (top-level expressions of
    /// `file`), for `print` and for parameters' initial values.
    pub fn lower_values(&self, file: usize, exprs: &[&'a Expr]) -> Lowered<LoweredValues> {
        let context = self.top_level_context(file).ok_or_else(|| internal(None, "file was not checked"))?;
        let mut lowerer = FunctionLowerer::new(self, "print", &[])?;
        let mut results = Vec::new();
        let mut shapes = Vec::new();
        for expr in exprs {
            let mut env = Env::new(context);
            let value = lowerer.expr(&mut env, expr)?;
            if let Val::Est(_) | Val::Dist(..) = value {
                return Err(unsupported(expr.span, "printing an estimate or a distribution"));
            }
            shapes.push(value.shape());
            value.flatten(&mut results);
        }
        let function = lowerer.builder.finish(results).map_err(|e| internal(None, e))?;
        Ok(LoweredValues { function, shapes })
    }

    /// A function `(params…, stream) -> estimate` running one sample of the estimate `expr`.
    pub fn lower_estimate(&self, file: usize, expr: &'a Expr, name: &str) -> Lowered<Function> {
        self.lower_estimates(file, expr, name, 1)
    }

    /// A function `(params…, stream) -> real` summing `particles` independent samples of the
    /// estimate `expr` (a training step's particles), sample `p` on the stream `p` places after
    /// the function's: the streams they draw from when each runs on its own.
    pub fn lower_estimates(&self, file: usize, expr: &'a Expr, name: &str, particles: u32) -> Lowered<Function> {
        let context = self.top_level_context(file).ok_or_else(|| internal(None, "file was not checked"))?;
        let mut lowerer = FunctionLowerer::new(self, name, &[Type::Rng])?;
        let rng = lowerer.extra_params[0];
        let mut env = Env::new(context);
        let estimate = match lowerer.expr(&mut env, expr)? {
            Val::Est(estimate) => estimate,
            _ => return Err(internal(Some(expr.span), "not an estimate")),
        };
        let result = if particles == 1 {
            lowerer.emit_estimate(&estimate, rng)?
        } else {
            let b = &mut lowerer.builder;
            let (zero, lo, hi) = (b.real(0.0)?, b.int(0)?, b.int(i64::from(particles))?);
            let params = b.begin_block(&[Type::Int, Type::Real]);
            let (particle, total) = (params[0], params[1]);
            let stream = b.push1(Op::StreamAfter { rng, offset: particle })?;
            let value = lowerer.emit_estimate(&estimate, stream)?;
            let next = lowerer.builder.add(total, value)?;
            let body = lowerer.builder.end_block(vec![next])?;
            let sums = lowerer.builder.push_for(lo, hi, vec![zero], body)?;
            sums.first().copied().ok_or_else(|| internal(Some(expr.span), "a loop without results"))?
        };
        lowerer.builder.finish(vec![result]).map_err(|e| internal(Some(expr.span), e))
    }

    /// A function `(params…, stream, part) -> estimate` computing part `part` (from 0) of
    /// `parts` of one sample of `expr`, an estimate over rows (`mean_over(…)`, `sum_over(…)`):
    /// every part draws the same minibatch from the stream (if there is one) and estimates
    /// `B / parts` consecutive rows of it (or of all rows), each on the stream it has in the
    /// whole, scaled as the whole is. The parts' sum is the estimate, up to summation order;
    /// they can run side by side (a training step's do).
    pub fn lower_estimate_part(&self, file: usize, expr: &'a Expr, name: &str, parts: u32) -> Lowered<Function> {
        let context = self.top_level_context(file).ok_or_else(|| internal(None, "file was not checked"))?;
        let mut lowerer = FunctionLowerer::new(self, name, &[Type::Rng, Type::Int])?;
        let (rng, part) = (lowerer.extra_params[0], lowerer.extra_params[1]);
        lowerer.rows_part = Some(rows::RowsPart { part, parts });
        let mut env = Env::new(context);
        let Val::Est(estimate) = lowerer.expr(&mut env, expr)? else {
            return Err(internal(Some(expr.span), "not an estimate"));
        };
        let result = lowerer.emit_estimate(&estimate, rng)?;
        if lowerer.rows_part.is_some() {
            return Err(internal(Some(expr.span), "parts of an estimate that is not over rows"));
        }
        lowerer.builder.finish(vec![result]).map_err(|e| internal(Some(expr.span), e))
    }
}

impl<'a> Program<'a> {
    /// A function `(params…, stream) -> trace` drawing one trace of the family `expr`, every
    /// choice sampled plainly (estimators only matter for gradients).
    pub fn lower_sample(&self, file: usize, expr: &'a Expr) -> Lowered<LoweredValues> {
        let context = self.top_level_context(file).ok_or_else(|| internal(None, "file was not checked"))?;
        let mut lowerer = FunctionLowerer::new(self, "sample", &[Type::Rng])?;
        lowerer.plain_sampling = true;
        let rng = lowerer.extra_params[0];
        lowerer.state = Some(ExpectState::start(&mut lowerer.builder, rng)?);
        let mut env = Env::new(context);
        let Val::Family(family) = lowerer.expr(&mut env, expr)? else {
            return Err(internal(Some(expr.span), "not a generative function"));
        };
        let (trace, _) = lowerer.simulate(&family, expr.span)?;
        let mut results = Vec::new();
        trace.flatten(&mut results);
        let function = lowerer.builder.finish(results)?;
        Ok(LoweredValues { function, shapes: vec![trace.shape()] })
    }
}

impl<'a> Program<'a> {
    /// The value of the `data` item `name`, computed (by the interpreter) at its first use.
    fn data_value(&self, name: &str, global: Global<'a>) -> Lowered<Rc<DataValue<'a>>> {
        if let Some(value) = self.data.borrow().get(name) {
            return Ok(value.clone());
        }
        let value = Rc::new(self.compute_data(name, global)?);
        self.data.borrow_mut().insert(global.binding.name.name.as_str(), value.clone());
        Ok(value)
    }

    fn compute_data(&self, name: &str, global: Global<'a>) -> Lowered<DataValue<'a>> {
        let span = global.binding.value.span;
        if let Some((ty, values)) = self.random_data(name, global)? {
            let leaf = match ty {
                Type::Vec(_) | Type::Mat(..) => tensor(name, ty, values),
                _ => DataLeaf::Constant(Constant::Real(values.first().copied().unwrap_or(0.0))),
            };
            // The template's value is a placeholder: `Val::rebuild` replaces it with the leaf.
            return Ok(DataValue::Computed { template: Val::Ir(crate::ir::Value(0)), leaves: vec![leaf] });
        }
        let mut lowerer = FunctionLowerer::new(self, name, &[])?;
        let template = lowerer.lower_global(name, global, span)?;
        let mut results = Vec::new();
        template.flatten(&mut results);
        let function = lowerer.builder.finish(results).map_err(|e| internal(Some(span), e))?;
        let reads_params = function.body.params.iter().any(|param| crate::ir::uses(&function).contains(param));
        if reads_params {
            return Ok(DataValue::Inline);
        }
        // A loaded file's tensors are the results themselves: taken as they are, not copied
        // through the interpreter (a data set is held once).
        let defined: HashMap<crate::ir::Value, &Op> = function
            .body
            .insts
            .iter()
            .filter_map(|inst| match inst.results.as_slice() {
                [result] => Some((*result, &inst.op)),
                _ => None,
            })
            .collect();
        let direct = |value: &crate::ir::Value| match defined.get(value) {
            Some(Op::Data(tensor)) => Some(DataLeaf::Tensor(tensor.clone())),
            Some(Op::Const(constant)) => Some(DataLeaf::Constant(*constant)),
            _ => None,
        };
        if let Some(leaves) = function.body.results.iter().map(direct).collect::<Option<Vec<_>>>() {
            return Ok(DataValue::Computed { template, leaves });
        }
        let args = self.params.iter().map(|param| RuntimeValue::from_reals(param.ty, &[])).collect();
        let values = crate::interp::run(&function, args).map_err(|error| {
            let code = match error.kind {
                crate::interp::ErrorKind::Domain => ErrorCode::DomainError,
                _ => ErrorCode::RuntimeFailure,
            };
            Diagnostic::error(code, error.message).with_primary(span, format!("computing `{name}` from this"))
        })?;
        let leaves = values
            .into_iter()
            .map(|value| match value {
                RuntimeValue::Real(x) => Ok(DataLeaf::Constant(Constant::Real(x))),
                RuntimeValue::Int(n) => Ok(DataLeaf::Constant(Constant::Int(n))),
                RuntimeValue::Bool(b) => Ok(DataLeaf::Constant(Constant::Bool(b))),
                RuntimeValue::Vec(data) => Ok(tensor(name, Type::Vec(data.len() as u32), data)),
                RuntimeValue::Mat { rows, cols, data } => Ok(tensor(name, Type::Mat(rows as u32, cols as u32), data)),
                RuntimeValue::Rng(_) => Err(internal(Some(span), "data holds a random stream")),
            })
            .collect::<Lowered<_>>()?;
        Ok(DataValue::Computed { template, leaves })
    }
}

impl<'a> Program<'a> {
    /// The type and values of a `data` item declared with a random initialiser
    /// (`data z: mat[64, 10] = normal_init(1.0);`), drawn from the run's seed on the stream
    /// `DATA_STREAMS | hash of its name` (see [`crate::run`]): the same seed gives the same values,
    /// and neither parameters nor other data items change them.
    fn random_data(&self, name: &str, global: Global<'a>) -> Lowered<Option<(Type, Vec<f64>)>> {
        let value = &global.binding.value;
        let ExprKind::Call { callee, args } = &value.kind else { return Ok(None) };
        if !crate::types::INITIALISERS.contains(&callee.name.as_str()) {
            return Ok(None);
        }
        let ty = self.checked().globals.get(name).and_then(|global| ir_type(&global.ty));
        let ty = ty.ok_or_else(|| unsupported(value.span, "random data that is not a real, vector or matrix"))?;
        let scale = match (callee.name.as_str(), args.first()) {
            ("glorot_init", _) => match ty {
                Type::Mat(rows, cols) => (6.0 / (f64::from(rows) + f64::from(cols))).sqrt(),
                _ => return Err(internal(Some(value.span), "`glorot_init` of a non-matrix")),
            },
            (_, Some(arg)) => self.constant_real(name, global, &arg.value)?,
            (_, None) => return Err(internal(Some(value.span), "an initialiser without its argument")),
        };
        if !(scale.is_finite() && scale >= 0.0) {
            let what = if callee.name == "normal_init" { "standard deviation" } else { "bound" };
            return Err(Diagnostic::error(
                ErrorCode::InvalidOption,
                format!("an initialiser's {what} must be finite and not negative, but it is {scale}"),
            )
            .with_primary(value.span, format!("`{}` of `{name}`", callee.name)));
        }
        // FNV-1a of the name, in the stream's low 48 bits.
        let hash = name
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3));
        let mut rng = ppl_runtime::Rng::new(self.seed, crate::run::DATA_STREAMS | (hash & ((1 << 48) - 1)));
        let values = random_values(callee.name == "normal_init", scale, ty.elements(), &mut rng);
        Ok(Some((ty, values)))
    }

    /// The value of a real expression of the `data` item `name` that reads no parameter.
    fn constant_real(&self, name: &str, global: Global<'a>, expr: &'a Expr) -> Lowered<f64> {
        let context =
            self.top_level_context(global.at.file).ok_or_else(|| internal(Some(expr.span), "file was not checked"))?;
        let mut lowerer = FunctionLowerer::new(self, name, &[])?;
        let value = lowerer.expr(&mut Env::new(context), expr)?;
        let mut results = Vec::new();
        value.flatten(&mut results);
        let function = lowerer.builder.finish(results).map_err(|e| internal(Some(expr.span), e))?;
        if function.body.params.iter().any(|param| crate::ir::uses(&function).contains(param)) {
            return Err(Diagnostic::error(ErrorCode::InvalidOption, "random data cannot depend on parameters")
                .with_primary(expr.span, format!("`{name}` is drawn once, before any training: this reads a `param`"))
                .with_help("give the initialiser a constant"));
        }
        let args = self.params.iter().map(|param| RuntimeValue::from_reals(param.ty, &[])).collect();
        let values = crate::interp::run(&function, args).map_err(|error| {
            Diagnostic::error(ErrorCode::RuntimeFailure, error.message).with_primary(expr.span, "computing this")
        })?;
        match values.first() {
            Some(RuntimeValue::Real(x)) => Ok(*x),
            Some(RuntimeValue::Int(n)) => Ok(*n as f64),
            _ => Err(internal(Some(expr.span), "an initialiser's argument is not a number")),
        }
    }
}

/// The parameters a `param` named `name` of type `ty` declares, appended to `params`: itself,
/// or each leaf of a record, depth first in the order of the type's fields.
fn leaf_params(
    name: &crate::syntax::ast::Ident,
    item: ItemRef,
    ty: &SurfaceType,
    path: &mut Vec<String>,
    params: &mut Vec<Param>,
) -> Lowered<()> {
    if let SurfaceType::Record(fields) = ty {
        for field in fields {
            path.push(field.name.clone());
            leaf_params(name, item, &field.ty, path, params)?;
            path.pop();
        }
        return Ok(());
    }
    let ir = ir_type(ty).filter(|ty| matches!(ty, Type::Real | Type::Vec(_) | Type::Mat(..)));
    let full_name = std::iter::once(name.name.as_str()).chain(path.iter().map(String::as_str)).collect::<Vec<_>>();
    let full_name = full_name.join(".");
    let ty = ir.ok_or_else(|| {
        unsupported(name.span, "a `param` that is not a real, vector or matrix of at most 16,777,216 elements")
    })?;
    params.push(Param { name: full_name, ty, item, path: path.clone() });
    Ok(())
}

/// The initial value of a parameter's leaf in its `param`'s value: the field of the record
/// literals at `path`, as deep as they go, and the path left below it (empty when the leaf's
/// own expression was reached; otherwise the expression gives a whole record, or is a random
/// initialiser filling each of its leaves).
pub(crate) fn leaf_value<'e, 'p>(mut value: &'e Expr, mut path: &'p [String]) -> (&'e Expr, &'p [String]) {
    while let (ExprKind::Record(fields), Some((first, rest))) = (&value.kind, path.split_first()) {
        match fields.iter().find(|field| field.name.name == *first) {
            Some(field) => {
                value = &field.value;
                path = rest;
            }
            None => break,
        }
    }
    (value, path)
}

/// `count` random initial values: N(0, scale²) (`normal`) or U(−scale, scale), from `rng`.
pub(crate) fn random_values(normal: bool, scale: f64, count: usize, rng: &mut ppl_runtime::Rng) -> Vec<f64> {
    (0..count)
        .map(|_| match normal {
            true => scale * rng.standard_normal(),
            false => scale * (2.0 * rng.uniform() - 1.0),
        })
        .collect()
}

fn tensor(name: &str, ty: Type, values: Vec<f64>) -> DataLeaf {
    DataLeaf::Tensor(Tensor { name: Arc::from(name), ty, values: Arc::new(values) })
}

/// The most elements a vector or matrix may have: every value has a slot in scratch memory,
/// so a larger one is refused rather than exhausting memory.
pub const MAX_ELEMENTS: u64 = 1 << 24;

/// The IR type of a first-order surface type with a static shape of at most
/// [`MAX_ELEMENTS`] elements.
pub fn ir_type(ty: &SurfaceType) -> Option<Type> {
    use crate::types::Dim::Known;
    match ty {
        SurfaceType::Real => Some(Type::Real),
        SurfaceType::Int => Some(Type::Int),
        SurfaceType::Bool => Some(Type::Bool),
        SurfaceType::Vec(Known(n)) if *n <= MAX_ELEMENTS => u32::try_from(*n).ok().map(Type::Vec),
        SurfaceType::Mat(Known(m), Known(n)) if m.checked_mul(*n).is_some_and(|size| size <= MAX_ELEMENTS) => {
            Some(Type::Mat(u32::try_from(*m).ok()?, u32::try_from(*n).ok()?))
        }
        _ => None,
    }
}

pub fn unsupported(span: Span, what: &str) -> Diagnostic {
    Diagnostic::error(ErrorCode::Unsupported, format!("{what} is not supported by the compiler yet"))
        .with_primary(span, "used here")
}

/// An IR construction error is a compiler bug.
impl From<IrError> for Diagnostic {
    fn from(error: IrError) -> Self {
        internal(None, error)
    }
}

pub fn internal(span: Option<Span>, error: impl std::fmt::Display) -> Diagnostic {
    let diagnostic = Diagnostic::error(ErrorCode::InternalError, format!("internal compiler error: {error}"))
        .with_note("this is a bug in ppl; please report it with the program that caused it");
    match span {
        Some(span) => diagnostic.with_primary(span, "while compiling this"),
        None => diagnostic,
    }
}

/// Lowers into one function.
pub(crate) struct FunctionLowerer<'p, 'a> {
    program: &'p Program<'a>,
    pub(crate) builder: FunctionBuilder,
    params: HashMap<String, crate::ir::Value>,
    /// Parameters after the `param`s (the stream of an estimate).
    extra_params: Vec<crate::ir::Value>,
    /// `data` and `let` globals, computed at the start of the function.
    globals: HashMap<String, Val<'a>>,
    /// Inside `E { … }`: the stream and scores threaded through the body.
    state: Option<ExpectState>,
    /// The `gen` bodies being run, innermost last.
    gen: Vec<gen::GenState<'a>>,
    /// Each function body being lowered, innermost last: its return slot if it may return
    /// before its end.
    returns: Vec<Option<returns::ReturnSlot<'a>>>,
    /// Each enclosing loop's variable and first value (indexed addresses count from it).
    loop_starts: Vec<(String, crate::ir::Value)>,
    /// Each choice being summed out (`plates`) and the outcome it takes in the code being
    /// lowered: what `z[i]` reads, without a trace to read it from.
    summed_out: Vec<(String, crate::ir::Value)>,
    /// Sample every choice without an estimator rule (for `sample(Q, N)`).
    plain_sampling: bool,
    /// The part of its minibatch that the function's top-level `mean_over`/`sum_over` computes
    /// (see [`Program::lower_estimate_part`]); taken by that estimate.
    rows_part: Option<rows::RowsPart>,
    /// The span of the syntax being lowered, for internal errors.
    span: Option<Span>,
}

impl<'p, 'a> FunctionLowerer<'p, 'a> {
    fn new(program: &'p Program<'a>, name: &str, extra: &[Type]) -> Lowered<Self> {
        let mut types: Vec<Type> = program.params.iter().map(|param| param.ty).collect();
        types.extend_from_slice(extra);
        let (builder, values) = FunctionBuilder::new(name, &types);
        let params = program.params.iter().zip(&values).map(|(param, value)| (param.name.clone(), *value)).collect();
        let extra_params = values[program.params.len()..].to_vec();
        Ok(FunctionLowerer {
            program,
            builder,
            params,
            extra_params,
            globals: HashMap::new(),
            state: None,
            gen: Vec::new(),
            returns: Vec::new(),
            loop_starts: Vec::new(),
            summed_out: Vec::new(),
            plain_sampling: false,
            rows_part: None,
            span: None,
        })
    }

    /// The value of a `data`/`let` global. A `let` (and a `data` item computed from parameters)
    /// is lowered at its first use. Globals are first-order and built from constants, so
    /// lowering one where it is first used is valid wherever it is used later only if that is
    /// the function's top level: the cache is keyed by the nesting depth at which the value was
    /// computed.
    fn global(&mut self, name: &str, span: Span) -> Lowered<Option<Val<'a>>> {
        if let Some(value) = self.globals.get(name) {
            return Ok(Some(value.clone()));
        }
        let Some(global) = self.program.globals.get(name).copied() else { return Ok(None) };
        let value = match global.is_data {
            true => match &*self.program.data_value(name, global)? {
                DataValue::Computed { template, leaves } => {
                    let mut values = Vec::with_capacity(leaves.len());
                    for leaf in leaves {
                        values.push(match leaf {
                            DataLeaf::Constant(constant) => self.builder.push1(Op::Const(*constant))?,
                            DataLeaf::Tensor(tensor) => self.builder.push1(Op::Data(tensor.clone()))?,
                        });
                    }
                    template.rebuild(&mut values.into_iter())
                }
                DataValue::Inline => self.lower_global(name, global, span)?,
            },
            false => self.lower_global(name, global, span)?,
        };
        if self.builder.depth() == 1 {
            self.globals.insert(name.to_string(), value.clone());
        }
        Ok(Some(value))
    }

    /// A global's expression lowered here, converted to its declared type.
    fn lower_global(&mut self, name: &str, global: Global<'a>, span: Span) -> Lowered<Val<'a>> {
        let context =
            self.program.top_level_context(global.at.file).ok_or_else(|| internal(Some(span), "unchecked"))?;
        let mut env = Env::new(context);
        let saved_state = self.state.take();
        let value = self.expr(&mut env, &global.binding.value);
        self.state = saved_state;
        let value = value?;
        match self.program.checked().globals.get(name).map(|global| global.ty.clone()) {
            Some(ty) => self.coerce(value, &ty),
            None => Ok(value),
        }
    }

    /// The value of a record parameter named `name` (of type `ty`, below its name `prefix`):
    /// the record of its leaves.
    fn record_param(&self, prefix: &str, ty: &SurfaceType, span: Span) -> Lowered<Val<'a>> {
        match ty {
            SurfaceType::Record(fields) => {
                let mut values = Vec::with_capacity(fields.len());
                for field in fields {
                    let name = format!("{prefix}.{}", field.name);
                    values.push((field.name.clone(), self.record_param(&name, &field.ty, span)?));
                }
                Ok(Val::Record(values))
            }
            _ => match self.params.get(prefix) {
                Some(value) => Ok(Val::Ir(*value)),
                None => Err(internal(Some(span), format!("no parameter `{prefix}`"))),
            },
        }
    }

    /// Runs an estimate once on `rng` and returns its (real) value.
    fn emit_estimate(&mut self, estimate: &Rc<Estimate<'a>>, rng: crate::ir::Value) -> Lowered<crate::ir::Value> {
        expr::emit_estimate(self, estimate, rng)
    }
}
