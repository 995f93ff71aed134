//! Running a checked program: parameters' initial values, then its commands in order.
//!
//! Each `estimate`, `grad`, `sample` and training objective is lowered, compiled by `adev`
//! (and to native code by `codegen` with the JIT back end) and run on the one execution path
//! of `execute.rs`, at the parameters' flat buffer (`params.rs`), with streaming statistics
//! (`moments.rs`); plain `print` expressions are evaluated once by the interpreter. Results come
//! back as [`Output`] values for a client (the CLI, the REPL, a test) to show, as they are
//! produced. Every sample of every command draws from its own stream,
//! `(seed, command << 32 | sample)` (training: `(seed, 1 << 63 | training << 48 | objective << 40
//! | step · particles + particle)`; the fit diagnostics after a training also set bit 62, see
//! `fit.rs`; random initial values, bit 61; random `data` values, bit 60), so the same file and
//! seed give bit-identical output.
//! Failures at run time are diagnostics pointing at the expression or choice concerned.
//!
//! This module must not print anything itself.

pub(crate) mod execute;
mod fit;
mod image;
mod moments;
mod output;
mod params;
mod parts;
pub mod psis;
mod train;

pub use output::{
    significant, Fit, Minibatch, Output, ParamGradient, Printed, Shown, Statistic, TrainedObjective, TrainingTime,
};
pub use params::Params;
pub use ppl_runtime::optim::OptimizerState;
pub use train::StopReason;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::adev::{self, Estimator};
use crate::codegen::{self, Compiled};
use crate::diagnostics::{Diagnostic, ErrorCode};
use crate::interp::{self, ErrorKind, InterpError, RuntimeValue};
use crate::lower::{Program, Shape};
use crate::syntax::ast::{Expr, ExprKind, ItemKind};
use crate::syntax::span::Span;
use crate::Analysis;

use execute::{Executor, Kernel};
use moments::Moments;

/// Where the leaf at `path` of a value of layout `shape` is among its flattened values.
fn leaf_offset(shape: &Shape, path: &[String]) -> Option<usize> {
    let Some((first, rest)) = path.split_first() else { return matches!(shape, Shape::Leaf).then_some(0) };
    let Shape::Record(fields) = shape else { return None };
    let mut offset = 0;
    for (name, field) in fields {
        if name == first {
            return Some(offset + leaf_offset(field, rest)?);
        }
        offset += field.leaves();
    }
    None
}

/// The seed used when neither the command line nor the program gives one.
pub const DEFAULT_SEED: u64 = 0;

/// The streams of random initial values (`uniform_init`, …): this bit, or the parameter's index.
const INITIAL_STREAMS: u64 = 1 << 61;

/// The streams of random `data` values (`data z: mat[64, 10] = normal_init(1.0);`): this bit, or
/// 48 bits of a hash of the item's name (drawn by `lower`, which computes data).
pub(crate) const DATA_STREAMS: u64 = 1 << 60;

/// The number of samples of `estimate`/`grad` without `samples:`.
pub const DEFAULT_SAMPLES: u64 = 1000;

/// Which parameters of `lowered` to differentiate: the differentiable ones among `only` (by
/// index), or all.
fn differentiated(lowered: &crate::ir::Function, only: Option<&[usize]>) -> Vec<bool> {
    let params = lowered.body.params.iter().enumerate();
    params
        .map(|(i, param)| {
            lowered.ty(*param).is_some_and(|ty| ty.is_differentiable()) && only.is_none_or(|only| only.contains(&i))
        })
        .collect()
}

/// `--threads` beyond this many per core are not started.
pub const MAX_THREADS_PER_CORE: usize = 4;

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Overrides every seed of the program.
    pub seed: Option<u64>,
    /// Also report the IR of every compiled estimate.
    pub emit_ir: bool,
    /// Also report the Cranelift IR of every natively compiled function.
    pub emit_clif: bool,
    /// Run compiled native code (the default) or the reference interpreter.
    pub backend: Backend,
    /// Raised (by a Ctrl-C handler) to stop training after the current step.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Parameters and optimizer states to continue the first `maximize`/`minimize` from.
    pub resume: Option<Resume>,
    /// Worker threads for samples and particles (default: every core). Results do not depend
    /// on it: each sample has its own stream and results are combined in sample order.
    pub threads: Option<usize>,
    /// Run a minibatch's rows, and a training step's particles, one by one instead of as one
    /// batched program (`ir::batch`): the same draws, and values equal up to the summation order
    /// of products and row sums.
    pub row_by_row: bool,
    /// The precision of products of two matrices (`ir::precision`) and of a training's
    /// optimizer (`Optimizer::in_precision`): f64, or f32 as in JAX's and PyTorch's f32
    /// networks, about twice as fast. `None`: f64, except in a training whose `precision`
    /// option asks for f32; given, it holds for every training too (as `seed` overrides the
    /// program's seeds).
    pub precision: Option<ppl_runtime::Precision>,
}

/// What runs the compiled programs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// Native code from Cranelift; bit-identical to the interpreter.
    #[default]
    Jit,
    /// The reference interpreter.
    Interpreter,
}

/// Where an earlier run stopped: its parameters, and the step reached and the optimizer state
/// of each objective of its first training command.
#[derive(Clone, Debug, Default)]
pub struct Resume {
    pub params: Vec<(String, RuntimeValue)>,
    pub optimizers: Vec<OptimizerState>,
    /// Steps taken, skipped ones included (optimizer states count only the updates made).
    pub steps: Option<u64>,
    /// Whether the saved results must fit the program exactly (`ppl run --resume`): every
    /// parameter there with its shape and nothing else, steps and optimizers that fit the first
    /// training command. Otherwise (the REPL carrying values between inputs) a parameter that
    /// is gone or changed shape keeps its initial value.
    pub exact: bool,
}

/// A program being run: its parameters' current values and how many commands have drawn
/// random numbers so far.
pub struct Session<'a> {
    program: Program<'a>,
    params: Params,
    options: RunOptions,
    /// How many `estimate`/`grad`/`sample` commands have drawn random numbers so far.
    commands: u64,
    /// How many training commands have run so far.
    trainings: u64,
    /// Runs samples and particles in parallel (none: on the calling thread).
    pool: Option<Arc<rayon::ThreadPool>>,
    /// The precision what runs now is compiled and trained in: the options', or a training's
    /// own while it runs (see `train`).
    precision: ppl_runtime::Precision,
}

impl<'a> Session<'a> {
    /// Prepares a checked program (without errors): computes its parameters' initial values.
    pub fn new(analysis: &'a Analysis, options: RunOptions) -> Result<Self, Diagnostic> {
        let mut program = Program::new(analysis)?;
        program.seed = options.seed.unwrap_or(DEFAULT_SEED);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // More threads than cores never speed up this work; thousands would only cost their
        // stacks and start-up. Results do not depend on the number.
        let threads = options.threads.unwrap_or(cores).min(MAX_THREADS_PER_CORE * cores);
        let pool = (threads > 1)
            .then(|| rayon::ThreadPoolBuilder::new().num_threads(threads).build().ok())
            .flatten()
            .map(Arc::new);
        let params = Params::zeros(program.params.iter().map(|param| param.ty));
        let precision = options.precision.unwrap_or_default();
        let mut session = Session { params, program, options, commands: 0, trainings: 0, pool, precision };
        for index in 0..session.program.params.len() {
            let param = &session.program.params[index];
            let Some(ItemKind::Param(binding)) = analysis
                .files
                .get(param.item.file)
                .and_then(|file| file.program.items.get(param.item.item))
                .map(|item| &item.kind)
            else {
                continue;
            };
            // A record parameter's leaf starts from its field of the record literal, or from a
            // random initialiser given for a whole record, or from its part of a record value.
            let (value, below) = crate::lower::leaf_value(&binding.value, &param.path);
            let below = below.to_vec();
            if let Some(values) = session.initialise(param.item.file, index, value)? {
                session.params.get_mut(index).copy_from_slice(&values);
                continue;
            }
            let values = session.evaluate(param.item.file, &[value])?;
            let leaf = values.into_iter().next().and_then(|(flat, shape)| {
                let offset = leaf_offset(&shape, &below)?;
                flat.into_iter().nth(offset)
            });
            if let Some(value) = leaf {
                session.params.set(index, &value);
            }
        }
        if let Some(resume) = session.options.resume.clone() {
            for (name, value) in &resume.params {
                let index = session.program.params.iter().position(|param| param.name == *name);
                let fits = index.is_some_and(|index| session.params.set(index, value));
                if resume.exact && !fits {
                    return Err(session.misfit(name, value, index));
                }
            }
            let missing =
                session.program.params.iter().find(|param| resume.params.iter().all(|(name, _)| *name != param.name));
            if let (true, Some(param)) = (resume.exact, missing) {
                return Err(Diagnostic::error(
                    ErrorCode::ResumeMismatch,
                    format!("the saved parameters have no `{}`", param.name),
                )
                .with_primary(session.param_span(param), "this parameter is not in `params.json`"));
            }
        }
        Ok(session)
    }

    /// The values of parameter `index` if it is declared with a random initialiser
    /// (`uniform_init(b)`, `normal_init(sd)`, `glorot_init()`), drawn from the stream
    /// `(seed, INITIAL_STREAMS | index)`: the same seed gives the same initial values.
    fn initialise(&self, file: usize, index: usize, value: &'a Expr) -> Result<Option<Vec<f64>>, Diagnostic> {
        let ExprKind::Call { callee, args } = &value.kind else { return Ok(None) };
        let Some(param) = self.program.params.get(index) else { return Ok(None) };
        let scale = match (callee.name.as_str(), args.first()) {
            ("glorot_init", _) => match param.ty {
                crate::ir::Type::Mat(rows, cols) => (6.0 / (f64::from(rows) + f64::from(cols))).sqrt(),
                _ => return Ok(None),
            },
            ("uniform_init" | "normal_init", Some(arg)) => match self.evaluate(file, &[&arg.value])?.first() {
                Some((values, _)) => match values.first() {
                    Some(RuntimeValue::Real(x)) => *x,
                    Some(RuntimeValue::Int(n)) => *n as f64,
                    _ => return Ok(None),
                },
                None => return Ok(None),
            },
            _ => return Ok(None),
        };
        if !(scale.is_finite() && scale >= 0.0) {
            let what = if callee.name == "normal_init" { "standard deviation" } else { "bound" };
            return Err(Diagnostic::error(
                ErrorCode::InvalidOption,
                format!("an initialiser's {what} must be finite and not negative, but it is {scale}"),
            )
            .with_primary(value.span, format!("`{}` of `{}`", callee.name, param.name)));
        }
        let mut rng = ppl_runtime::Rng::new(self.seed(), INITIAL_STREAMS | index as u64);
        let normal = callee.name == "normal_init";
        Ok(Some(crate::lower::random_values(normal, scale, param.ty.elements(), &mut rng)))
    }

    /// A saved parameter that does not fit the program.
    fn misfit(&self, name: &str, value: &RuntimeValue, index: Option<usize>) -> Diagnostic {
        let saved = match value {
            RuntimeValue::Vec(data) => format!("vec[{}]", data.len()),
            RuntimeValue::Mat { rows, cols, .. } => format!("mat[{rows}, {cols}]"),
            other => other.kind().to_string(),
        };
        match index.and_then(|index| self.program.params.get(index)) {
            Some(param) => Diagnostic::error(
                ErrorCode::ResumeMismatch,
                format!("the saved `{name}` is a {saved}, but the program declares it {}", param.ty),
            )
            .with_primary(self.param_span(param), format!("declared {} here", param.ty)),
            None => Diagnostic::error(
                ErrorCode::ResumeMismatch,
                format!("the saved parameters have `{name}` ({saved}), which the program does not declare"),
            ),
        }
    }

    /// The source of a parameter's declaration.
    fn param_span(&self, param: &crate::lower::Param) -> Span {
        self.program
            .analysis
            .files
            .get(param.item.file)
            .and_then(|file| file.program.items.get(param.item.item))
            .map_or_else(Span::default, |item| item.span)
    }

    /// The current values of the parameters listed (by index), for reports.
    fn param_outputs(&self, which: &[usize]) -> Vec<(String, Printed)> {
        which
            .iter()
            .filter_map(|index| {
                let name = self.program.params.get(*index)?.name.clone();
                Some((name, Printed::from_runtime(&self.params.value(*index))))
            })
            .collect()
    }

    /// The current value of each parameter, by name.
    pub fn params(&self) -> impl Iterator<Item = (&str, RuntimeValue)> + use<'_, 'a> {
        self.program.params.iter().enumerate().map(|(index, param)| (param.name.as_str(), self.params.value(index)))
    }

    /// Runs the commands of the user's file (the last one) in order.
    pub fn run_commands(&mut self, emit: &mut dyn FnMut(Output)) -> Result<(), Diagnostic> {
        let analysis = self.program.analysis;
        let file = analysis.files.len().saturating_sub(1);
        let Some(parsed) = analysis.files.get(file) else { return Ok(()) };
        for item in &parsed.program.items {
            if self.precision == ppl_runtime::Precision::Single {
                self.params.round();
            }
            match &item.kind {
                ItemKind::Print(exprs) => {
                    for expr in exprs {
                        self.print(file, expr, emit)?;
                    }
                }
                ItemKind::Optimize(command) => {
                    self.train(file, command, item.span, emit)?;
                    if let Some(resume) = self.options.resume.as_mut() {
                        // Only the first training command continues from saved optimizer state.
                        resume.optimizers.clear();
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn source(&self, span: Span) -> String {
        self.program.analysis.sources.snippet(span).to_string()
    }

    fn print(&mut self, file: usize, expr: &'a Expr, emit: &mut dyn FnMut(Output)) -> Result<(), Diagnostic> {
        let checked = self.program.analysis.checked.top_level_types.get(file).and_then(|types| types.get(&expr.id));
        if checked == Some(&crate::types::Type::Report(crate::types::Report::Image)) {
            return self.image(file, expr, emit);
        }
        if let ExprKind::Call { callee, args } = &expr.kind {
            if callee.name == "sample" {
                let family = args.first().map(|arg| &arg.value);
                let family = family.ok_or_else(|| crate::lower::internal(Some(expr.span), "no family"))?;
                let count = match args.get(1) {
                    Some(arg) => self.count(file, &arg.value)?,
                    None => 1,
                };
                return self.sample(file, expr, family, count, emit);
            }
        }
        if let (ExprKind::Call { callee, args }, Some(objective)) = (&expr.kind, objective_of(expr)) {
            {
                let samples = match args.iter().find(|arg| arg.name.as_ref().is_some_and(|n| n.name == "samples")) {
                    Some(arg) => self.count(file, &arg.value)?,
                    None => DEFAULT_SAMPLES,
                };
                return self.estimate(file, expr, objective, samples, callee.name == "grad", emit);
            }
        }
        let values = self.evaluate(file, &[expr])?;
        for (flat, shape) in values {
            let value = Printed::read(&shape, &mut flat.into_iter());
            emit(Output::Print { source: self.source(expr.span), value });
        }
        Ok(())
    }

    /// `image(name, pixels, width: W, columns: C)`: the rows of `pixels` (or the vector) as
    /// images `W` wide, tiled in a grid (see `image.rs`).
    fn image(&mut self, file: usize, expr: &'a Expr, emit: &mut dyn FnMut(Output)) -> Result<(), Diagnostic> {
        let ExprKind::Call { args, .. } = &expr.kind else {
            return Err(crate::lower::internal(Some(expr.span), "an image that is not a call"));
        };
        let slots = crate::lower::bind_args(&["name", "pixels", "width", "columns"], args);
        let (Some(name), Some(pixels), Some(width)) = (slots[0], slots[1], slots[2]) else {
            return Err(crate::lower::internal(Some(expr.span), "an image without its arguments"));
        };
        let ExprKind::Str(name) = &name.kind else {
            return Err(crate::lower::internal(Some(name.span), "an image's name that is not a literal"));
        };
        let width = self.count(file, width)? as usize;
        let columns = slots[3].map(|columns| self.count(file, columns)).transpose()?;
        let values = self.evaluate(file, &[pixels])?;
        let (count, per_image, data) = match values.into_iter().next().and_then(|(flat, _)| flat.into_iter().next()) {
            Some(RuntimeValue::Vec(data)) => (1, data.len(), data),
            Some(RuntimeValue::Mat { rows, cols, data }) => (rows, cols, data),
            _ => return Err(crate::lower::internal(Some(pixels.span), "an image's pixels are not numbers")),
        };
        if per_image == 0 || count == 0 || per_image % width != 0 {
            return Err(Diagnostic::error(
                ErrorCode::RuntimeFailure,
                format!("{count} images of {per_image} pixels cannot be drawn {width} pixels wide"),
            )
            .with_primary(pixels.span, "these pixels"));
        }
        let height = per_image / width;
        let columns = columns.map_or_else(|| image::default_columns(count), |columns| columns as usize);
        let picture = image::picture(&data, count, width, height, columns).map_err(|message| {
            Diagnostic::error(ErrorCode::RuntimeFailure, message).with_primary(expr.span, "this picture")
        })?;
        emit(Output::Image {
            source: self.source(expr.span),
            name: name.clone(),
            count: count as u64,
            width: width as u64,
            height: height as u64,
            columns: picture.columns as u64,
            rows: picture.rows as u64,
            png: picture.png,
        });
        Ok(())
    }

    /// `count` traces of a family, each from its own stream, emitted one by one as they are
    /// drawn (in order, a round of chunks at a time).
    fn sample(
        &mut self,
        file: usize,
        expr: &'a Expr,
        family: &'a Expr,
        count: u64,
        emit: &mut dyn FnMut(Output),
    ) -> Result<(), Diagnostic> {
        let lowered = self.program.lower_sample(file, family)?;
        let mut function = lowered.function;
        adev::optimize(&mut function).map_err(|error| crate::lower::internal(Some(family.span), error))?;
        let command = self.commands;
        self.commands += 1;
        let shape = lowered.shapes.first().cloned().unwrap_or(Shape::Tuple(Vec::new()));
        let native = self.native(&function, &self.source(family.span), &mut |_| {})?;
        let executor = Executor::new(Kernel::new(function, native), self.pool.clone());
        let seed = self.seed();
        let source = self.source(expr.span);
        emit(Output::Sample { source: source.clone(), count });
        let read =
            |kernel: &Kernel, worker: &execute::Worker| Printed::read(&shape, &mut kernel.results(worker).into_iter());
        let stream = |sample| command << 32 | sample;
        self.each_draw(&executor, count, seed, stream, read, |index, trace| {
            emit(Output::Trace { source: source.clone(), index, trace })
        })
        .map_err(|sample| self.explain(&executor, seed, stream(sample), family.span, sample))
    }

    /// Calls the executor's kernel on the streams `(seed, stream(draw))` of draws `0..count`
    /// and hands what `read` takes from each call to `consume`, in draw order, a round of chunks
    /// at a time; the first draw that fails stops it (`Err(draw)`).
    fn each_draw<T: Send>(
        &self,
        executor: &Executor,
        count: u64,
        seed: u64,
        stream: impl Fn(u64) -> u64 + Sync,
        read: impl Fn(&Kernel, &execute::Worker) -> T + Sync,
        mut consume: impl FnMut(u64, T),
    ) -> Result<(), u64> {
        let mut round = executor.round(execute::CHUNK as usize, || (Vec::new(), None));
        let mut failed = None;
        let mut index = 0;
        let in_place = self.params.in_place();
        executor.run(
            in_place.values,
            count,
            execute::CHUNK,
            true,
            &mut round,
            |kernel, worker, draws, (values, failure): &mut (Vec<T>, Option<u64>)| {
                values.clear();
                *failure = None;
                for draw in draws {
                    if !kernel.call(worker, in_place, seed, stream(draw)) {
                        *failure = Some(draw);
                        return;
                    }
                    values.push(read(kernel, worker));
                }
            },
            |(values, failure)| {
                for value in values.drain(..) {
                    consume(index, value);
                    index += 1;
                }
                failed = *failure;
                failed.is_none()
            },
        );
        match failed {
            Some(draw) => Err(draw),
            None => Ok(()),
        }
    }

    /// Evaluates first-order expressions at the current parameters: each one's flattened
    /// values and their layout.
    fn evaluate(&self, file: usize, exprs: &[&'a Expr]) -> Result<Vec<(Vec<RuntimeValue>, Shape)>, Diagnostic> {
        let lowered = self.program.lower_values(file, exprs)?;
        let span = exprs.first().map(|expr| expr.span);
        let mut function = lowered.function;
        adev::optimize(&mut function).map_err(|error| crate::lower::internal(span, error))?;
        let results = interp::run(&function, self.params.values()).map_err(|error| runtime_error(error, span, None))?;
        let mut results = results.into_iter();
        let mut values = Vec::with_capacity(lowered.shapes.len());
        for shape in lowered.shapes {
            let count = shape.leaves();
            values.push((results.by_ref().take(count).collect(), shape));
        }
        Ok(values)
    }

    fn count(&self, file: usize, expr: &'a Expr) -> Result<u64, Diagnostic> {
        let values = self.evaluate(file, &[expr])?;
        match values.first().and_then(|(flat, _)| flat.first()) {
            Some(RuntimeValue::Int(n)) if *n > 0 => Ok(*n as u64),
            _ => Err(Diagnostic::error(ErrorCode::InvalidOption, "the number of samples must be a positive integer")
                .with_primary(expr.span, "this is not a positive integer")),
        }
    }

    /// Compiles the objective of every `estimate`/`grad` in the user's file, in order, with
    /// its source text (for tools and tests that run them directly).
    pub fn compile_objectives(&self) -> Result<Vec<(String, Estimator)>, Diagnostic> {
        self.compile_objectives_with(1)
    }

    /// As [`Session::compile_objectives`], each estimating the sum of `particles` independent
    /// samples, sample `p` on the stream `p` places after the call's: one program over all of
    /// them where they batch (as a training step's particles run), else one after another.
    pub fn compile_objectives_with(&self, particles: u32) -> Result<Vec<(String, Estimator)>, Diagnostic> {
        self.compile_printed_objectives(|file, objective| {
            match self.compile_particles(file, objective, None, particles)? {
                Some(batched) => Ok(batched),
                None => {
                    // Particles that do not batch run one after another, as a step's do.
                    let (lowered, wrt) = self.lower_for(file, objective, None, particles)?;
                    let batch_rows = particles == 1 && !self.options.row_by_row;
                    adev::compile(lowered, &wrt, batch_rows, self.precision)
                }
            }
        })
    }

    /// Compiles the objective of every `estimate`/`grad` in the user's file, each an estimate
    /// over rows, in `parts` parts as a training step runs a minibatch (see
    /// `lower::Program::lower_estimate_part`): functions `(params…, stream, part)` whose sum over
    /// the parts is the estimate. For tools and tests.
    pub fn compile_objectives_in_parts(&self, parts: u32) -> Result<Vec<(String, Estimator)>, Diagnostic> {
        self.compile_printed_objectives(|file, objective| self.compile_parts(file, objective, None, parts))
    }

    /// `compile(file, objective)` of every `estimate`/`grad` objective in the user's file, in
    /// order, with its source text.
    fn compile_printed_objectives(
        &self,
        compile: impl Fn(usize, &'a Expr) -> Result<Estimator, Diagnostic>,
    ) -> Result<Vec<(String, Estimator)>, Diagnostic> {
        let analysis = self.program.analysis;
        let file = analysis.files.len().saturating_sub(1);
        let mut compiled = Vec::new();
        let Some(parsed) = analysis.files.get(file) else { return Ok(compiled) };
        for item in &parsed.program.items {
            let ItemKind::Print(exprs) = &item.kind else { continue };
            for objective in exprs.iter().filter_map(objective_of) {
                compiled.push((self.source(objective.span), compile(file, objective)?));
            }
        }
        Ok(compiled)
    }

    fn compile(&self, file: usize, objective: &'a Expr) -> Result<Estimator, Diagnostic> {
        self.compile_for(file, objective, None)
    }

    /// Compiles an objective differentiated with respect to the parameters `only` lists (by
    /// index), or every real-valued parameter.
    fn compile_for(&self, file: usize, objective: &'a Expr, only: Option<&[usize]>) -> Result<Estimator, Diagnostic> {
        let (lowered, wrt) = self.lower_for(file, objective, only, 1)?;
        adev::compile(lowered, &wrt, !self.options.row_by_row, self.precision)
    }

    /// The sum of `particles` samples of an objective as one batched program, differentiated
    /// as [`Session::compile_for`] does, if they batch (`adev::compile_particles`) and the run
    /// batches at all.
    fn compile_particles(
        &self,
        file: usize,
        objective: &'a Expr,
        only: Option<&[usize]>,
        particles: u32,
    ) -> Result<Option<Estimator>, Diagnostic> {
        if particles < 2 || self.options.row_by_row {
            return Ok(None);
        }
        let (lowered, wrt) = self.lower_for(file, objective, only, particles)?;
        adev::compile_particles(lowered, &wrt, self.precision)
    }

    /// The sum of `particles` samples of an objective (see `lower::Program::lower_estimates`)
    /// and which of its parameters to differentiate: `only` (by index), or every real-valued
    /// one.
    fn lower_for(
        &self,
        file: usize,
        objective: &'a Expr,
        only: Option<&[usize]>,
        particles: u32,
    ) -> Result<(crate::ir::Function, Vec<bool>), Diagnostic> {
        let lowered = self.program.lower_estimates(file, objective, "estimate", particles)?;
        let wrt = differentiated(&lowered, only);
        Ok((lowered, wrt))
    }

    /// An objective over rows in `parts` parts that run side by side (see
    /// `lower::Program::lower_estimate_part`), differentiated as [`Session::compile_for`] does.
    fn compile_parts(
        &self,
        file: usize,
        objective: &'a Expr,
        only: Option<&[usize]>,
        parts: u32,
    ) -> Result<Estimator, Diagnostic> {
        let lowered = self.program.lower_estimate_part(file, objective, "estimate", parts)?;
        let wrt = differentiated(&lowered, only);
        adev::compile(lowered, &wrt, true, self.precision)
    }

    fn estimate(
        &mut self,
        file: usize,
        expr: &'a Expr,
        objective: &'a Expr,
        samples: u64,
        gradient: bool,
        emit: &mut dyn FnMut(Output),
    ) -> Result<(), Diagnostic> {
        // An estimate needs no derivative (and an estimate of a vector has none to transpose).
        let only = (!gradient).then_some(&[][..]);
        // One sample over all the rows of a data set (a test set's ELBO) runs in parts side by
        // side; more samples run side by side anyway.
        let parts = match self.over_rows(file, objective)? {
            Some(over) if samples == 1 && over.batch.is_none() && !self.options.row_by_row => {
                parts::parts_of(over.rows)
            }
            _ => 1,
        };
        let estimator = match parts {
            1 => self.compile_for(file, objective, only)?,
            _ => self.compile_parts(file, objective, only, parts)?,
        };
        let source = self.source(expr.span);
        if self.options.emit_ir {
            for function in [&estimator.primal, &estimator.forward, &estimator.reverse] {
                emit(Output::Ir { source: source.clone(), text: function.to_string() });
            }
        }
        let command = self.commands;
        self.commands += 1;
        // The primal gives the estimate; the reverse program also one gradient per
        // differentiated parameter.
        let differentiated: Vec<usize> = (0..self.program.params.len()).filter(|i| estimator.wrt[*i]).collect();
        let used = crate::ir::uses(&estimator.forward);
        let used: Vec<bool> =
            differentiated.iter().map(|i| used.contains(&estimator.forward.body.params[*i])).collect();
        // A real, or a vector estimated element by element.
        let primal = &estimator.primal;
        let estimated =
            primal.body.results.first().and_then(|result| primal.ty(*result)).unwrap_or(crate::ir::Type::Real);
        let function = if gradient { estimator.reverse } else { estimator.primal };
        let native = self.native(&function, &source, emit)?;
        let executor = Executor::new(Kernel::new(function, native), self.pool.clone());
        let width = 1 + differentiated.iter().map(|p| self.params.get(*p).len()).sum::<usize>();
        let width = if gradient { width } else { estimated.elements() };
        let seed = self.seed();
        let stream = |sample| command << 32 | sample;
        let moments = match parts {
            1 => self.moments(&executor, width, samples, seed, stream),
            _ => self.one_sample_in_parts(&executor, width, parts, seed, stream(0)),
        };
        let moments = moments
            .map_err(|sample| self.explain_parts(&executor, (seed, stream(sample), parts), objective.span, sample))?;
        // Samples are never NaN (the first one stops the command): a NaN mean is one of +∞ and −∞.
        if (0..width).any(|element| moments.statistic(element).mean.is_nan()) {
            let what = if gradient { "the estimate or its gradient" } else { "the estimate" };
            return Err(Diagnostic::error(
                ErrorCode::NotANumber,
                format!("the samples of {what} include both +inf and -inf: the mean is undefined"),
            )
            .with_primary(objective.span, "this estimate")
            .with_help(
                "the estimator overflows: rescale the computation (log space, `logsumexp`) so it stays finite",
            ));
        }
        if !gradient {
            let statistics = (0..width).map(|element| moments.statistic(element)).collect();
            emit(Output::Estimate { source, ty: estimated, statistics, samples });
            return Ok(());
        }
        let mut params = Vec::new();
        let mut offset = 1;
        for (index, used) in differentiated.into_iter().zip(used) {
            let param = &self.program.params[index];
            let len = self.params.get(index).len();
            if used {
                params.push(ParamGradient {
                    name: param.name.clone(),
                    statistics: (offset..offset + len).map(|element| moments.statistic(element)).collect(),
                    ty: param.ty,
                });
            }
            offset += len;
        }
        emit(Output::Grad { source, samples, params });
        Ok(())
    }

    /// The mean and spread of `samples` calls of the executor's kernel, each on its stream
    /// `(seed, stream(sample))`, over the `width` reals of its results; the first sample that
    /// fails or gives NaN stops it.
    fn moments(
        &self,
        executor: &Executor,
        width: usize,
        samples: u64,
        seed: u64,
        stream: impl Fn(u64) -> u64 + Sync,
    ) -> Result<Moments, u64> {
        let mut round = executor.round(2 * width, || (Moments::new(width), None));
        let mut total = Moments::new(width);
        let mut failed = None;
        let in_place = self.params.in_place();
        executor.run(
            in_place.values,
            samples,
            execute::CHUNK,
            true,
            &mut round,
            |kernel, worker, indices, (moments, failure): &mut (Moments, Option<u64>)| {
                moments.clear();
                *failure = None;
                for sample in indices {
                    let ok = kernel.call(worker, in_place, seed, stream(sample));
                    let reals = kernel.reals(worker);
                    if !ok || reals.len() != width || reals.iter().any(|x| x.is_nan()) {
                        *failure = Some(sample);
                        return;
                    }
                    moments.add(reals);
                }
            },
            |(moments, failure)| {
                total.merge(moments);
                failed = *failure;
                failed.is_none()
            },
        );
        match failed {
            Some(sample) => Err(sample),
            None => Ok(total),
        }
    }

    /// The moments of one sample on the stream `(seed, stream)` computed in `parts` parts side
    /// by side (see `parts`), their `width` reals added in part order; `Err(0)` if a part fails
    /// or the sample has a NaN.
    fn one_sample_in_parts(
        &self,
        executor: &Executor,
        width: usize,
        parts: u32,
        seed: u64,
        stream: u64,
    ) -> Result<Moments, u64> {
        let mut round = executor.round(width, || (Vec::new(), false));
        let mut sample = Vec::with_capacity(width);
        let mut complete = true;
        let in_place = self.params.in_place();
        executor.run(
            in_place.values,
            u64::from(parts),
            1,
            true,
            &mut round,
            |kernel, worker, calls, (results, ok): &mut (Vec<f64>, bool)| {
                for part in calls {
                    results.resize(width, 0.0);
                    *ok = kernel.call_part_into(worker, in_place, (seed, stream, part as u32), results, false);
                }
            },
            |(results, ok)| {
                complete &= *ok;
                match sample.is_empty() {
                    true => sample.extend(results.iter().map(|x| 0.0 + x)),
                    false => sample.iter_mut().zip(results.iter()).for_each(|(sum, x)| *sum += x),
                }
                complete
            },
        );
        if !complete || sample.len() != width || sample.iter().any(|x| x.is_nan()) {
            return Err(0);
        }
        let mut moments = Moments::new(width);
        moments.add(&sample);
        Ok(moments)
    }

    fn seed(&self) -> u64 {
        self.options.seed.unwrap_or(DEFAULT_SEED)
    }

    /// Native code for `function` with the JIT back end (reported with `--emit clif`), none
    /// with the interpreter.
    fn native(
        &self,
        function: &crate::ir::Function,
        source: &str,
        emit: &mut dyn FnMut(Output),
    ) -> Result<Option<Compiled>, Diagnostic> {
        if self.options.backend == Backend::Interpreter {
            return Ok(None);
        }
        let compiled = codegen::compile(function).map_err(|error| crate::lower::internal(None, error))?;
        if self.options.emit_clif {
            emit(Output::Ir { source: source.to_string(), text: compiled.clif.clone() });
        }
        Ok(Some(compiled))
    }

    /// The diagnostic of a sample that failed or gave NaN: the interpreter reruns it and reports
    /// the instruction that failed, or that produced the first NaN.
    fn explain(&self, executor: &Executor, seed: u64, stream: u64, span: Span, sample: u64) -> Diagnostic {
        self.explain_parts(executor, (seed, stream, 1), span, sample)
    }

    /// [`Session::explain`] for a sample computed in `parts` parts: the first part's failure, or
    /// else the first NaN's origin.
    fn explain_parts(
        &self,
        executor: &Executor,
        (seed, stream, parts): (u64, u64, u32),
        span: Span,
        sample: u64,
    ) -> Diagnostic {
        let kernel = executor.kernel();
        let flat = self.params.flat();
        let error = (0..parts)
            .find_map(|part| kernel.explain_part(flat, seed, stream, part, false))
            .or_else(|| (0..parts).find_map(|part| kernel.explain_part(flat, seed, stream, part, true)));
        match error {
            Some(error) => runtime_error(error, Some(span), Some(sample)),
            None => Diagnostic::error(ErrorCode::NotANumber, "the estimate is NaN")
                .with_primary(span, "this estimate")
                .with_note(format!("in sample {sample}")),
        }
    }
}

/// The objective of `estimate(…)` or `grad(…)`.
fn objective_of(expr: &Expr) -> Option<&Expr> {
    let ExprKind::Call { callee, args } = &expr.kind else { return None };
    if !matches!(callee.name.as_str(), "estimate" | "grad") {
        return None;
    }
    args.iter().find(|arg| arg.name.as_ref().is_none_or(|name| name.name == "objective")).map(|arg| &arg.value)
}

/// A run-time failure as a diagnostic at the instruction's source (or the command's).
pub(crate) fn runtime_error(error: InterpError, command: Option<Span>, sample: Option<u64>) -> Diagnostic {
    let code = match error.kind {
        ErrorKind::Domain => ErrorCode::DomainError,
        ErrorKind::OutOfBounds => ErrorCode::OutOfBounds,
        ErrorKind::NotANumber => ErrorCode::NotANumber,
        ErrorKind::Failure => ErrorCode::RuntimeFailure,
    };
    let label = match error.kind {
        ErrorKind::Domain => "the distribution of this choice",
        ErrorKind::OutOfBounds => "this index",
        ErrorKind::NotANumber => "the first NaN came from here",
        ErrorKind::Failure => "this failed",
    };
    let mut diagnostic = Diagnostic::error(code, error.message.clone());
    diagnostic = match (error.span, command) {
        (Some(span), Some(command)) if span != command => {
            diagnostic.with_primary(span, label).with_secondary(command, "while running this")
        }
        (Some(span), _) | (None, Some(span)) => diagnostic.with_primary(span, label),
        (None, None) => diagnostic,
    };
    if let Some(sample) = sample {
        diagnostic = diagnostic.with_note(format!("in sample {sample} (each sample has its own random stream)"));
    }
    diagnostic
}
