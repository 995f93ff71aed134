//! Running a checked program: parameters' initial values, then its commands in order.
//!
//! Each `print` expression, `estimate` and `grad` is lowered, compiled by `adev` and run by
//! the reference interpreter; results come back as [`Output`] values for a client (the CLI,
//! the REPL, a test) to show. Every sample of every command draws from its own stream,
//! `(seed, command << 32 | sample)` (training: `(seed, 1 << 63 | training << 48 | objective << 40
//! | step · particles + particle)`), so the same file and seed give bit-identical output.
//! Failures at run time are diagnostics pointing at the expression or choice concerned.
//!
//! This module must not print anything itself.

mod output;
mod train;

pub use output::{Output, ParamGradient, Printed, Statistic, TrainedObjective};
pub use ppl_runtime::optim::OptimizerState;
pub use train::StopReason;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ppl_runtime::Rng;

use crate::adev::{self, Estimator};
use crate::codegen::{self, Compiled, Scratch};
use crate::diagnostics::{Diagnostic, ErrorCode};
use crate::interp::{self, ErrorKind, InterpError, RuntimeValue};
use crate::lower::{Program, Shape};
use crate::syntax::ast::{Expr, ExprKind, ItemKind};
use crate::syntax::span::Span;
use crate::Analysis;

/// The seed used when neither the command line nor the program gives one.
pub const DEFAULT_SEED: u64 = 0;

/// The number of samples of `estimate`/`grad` without `samples:`.
pub const DEFAULT_SAMPLES: u64 = 1000;

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
}

/// A program being run: its parameters' current values and how many commands have drawn
/// random numbers so far.
pub struct Session<'a> {
    program: Program<'a>,
    params: Vec<RuntimeValue>,
    options: RunOptions,
    /// How many `estimate`/`grad`/`sample` commands have drawn random numbers so far.
    commands: u64,
    /// How many training commands have run so far.
    trainings: u64,
    /// Runs samples and particles in parallel (none: on the calling thread).
    pool: Option<rayon::ThreadPool>,
}

impl<'a> Session<'a> {
    /// Prepares a checked program (without errors): computes its parameters' initial values.
    pub fn new(analysis: &'a Analysis, options: RunOptions) -> Result<Self, Diagnostic> {
        let program = Program::new(analysis)?;
        let threads = options.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let pool = (threads > 1).then(|| rayon::ThreadPoolBuilder::new().num_threads(threads).build().ok()).flatten();
        let mut session = Session { params: Vec::new(), program, options, commands: 0, trainings: 0, pool };
        session.params = session.program.params.iter().map(|param| zero(param.ty)).collect();
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
            let values = session.evaluate(param.item.file, &[&binding.value])?;
            if let Some((value, _)) = values.into_iter().next() {
                session.params[index] = value.into_iter().next().unwrap_or_else(|| zero(param.ty));
            }
        }
        if let Some(resume) = session.options.resume.clone() {
            for (name, value) in resume.params {
                let Some(index) = session.program.params.iter().position(|param| param.name == name) else {
                    continue;
                };
                if train::flat(&value).len() == train::flat(&session.params[index]).len() {
                    session.params[index] = train::reshaped(&session.params[index], train::flat(&value));
                }
            }
        }
        Ok(session)
    }

    /// The current values of the parameters listed (by index), for reports.
    fn param_outputs(&self, which: &[usize]) -> Vec<(String, Printed)> {
        which
            .iter()
            .filter_map(|index| {
                Some((self.program.params.get(*index)?.name.clone(), Printed::from_runtime(self.params.get(*index)?)))
            })
            .collect()
    }

    /// The current value of each parameter, by name.
    pub fn params(&self) -> impl Iterator<Item = (&str, &RuntimeValue)> {
        self.program.params.iter().map(|param| param.name.as_str()).zip(&self.params)
    }

    /// Runs the commands of the user's file (the last one) in order.
    pub fn run_commands(&mut self, emit: &mut dyn FnMut(Output)) -> Result<(), Diagnostic> {
        let analysis = self.program.analysis;
        let file = analysis.files.len().saturating_sub(1);
        let Some(parsed) = analysis.files.get(file) else { return Ok(()) };
        for item in &parsed.program.items {
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
        if let ExprKind::Call { callee, args } = &expr.kind {
            if callee.name == "sample" {
                let family = args.first().map(|arg| &arg.value);
                let family = family.ok_or_else(|| crate::lower::internal(Some(expr.span), "no family"))?;
                let count = match args.get(1) {
                    Some(arg) => self.count(file, &arg.value)?,
                    None => 1,
                };
                let traces = self.sample(file, family, count)?;
                emit(Output::Sample { source: self.source(expr.span), traces });
                return Ok(());
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

    /// `count` traces of a family, each from its own stream.
    fn sample(&mut self, file: usize, family: &'a Expr, count: u64) -> Result<Vec<Printed>, Diagnostic> {
        let lowered = self.program.lower_sample(file, family)?;
        let mut function = lowered.function;
        adev::optimize(&mut function).map_err(|error| crate::lower::internal(Some(family.span), error))?;
        let command = self.commands;
        self.commands += 1;
        let shape = lowered.shapes.first().cloned().unwrap_or(Shape::Tuple(Vec::new()));
        let mut traces = Vec::with_capacity(count as usize);
        let native = self.native(&function, &self.source(family.span), &mut |_| {})?;
        let runs = self.run_each(&function, native.as_ref(), count, |sample| self.args(command, sample));
        for (sample, results) in (0..count).zip(runs) {
            let results = results.map_err(|error| runtime_error(error, Some(family.span), Some(sample)))?;
            traces.push(Printed::read(&shape, &mut results.into_iter()));
        }
        Ok(traces)
    }

    /// Evaluates first-order expressions at the current parameters: each one's flattened
    /// values and their layout.
    fn evaluate(&self, file: usize, exprs: &[&'a Expr]) -> Result<Vec<(Vec<RuntimeValue>, Shape)>, Diagnostic> {
        let lowered = self.program.lower_values(file, exprs)?;
        let span = exprs.first().map(|expr| expr.span);
        let mut function = lowered.function;
        adev::optimize(&mut function).map_err(|error| crate::lower::internal(span, error))?;
        let results = interp::run(&function, self.params.clone()).map_err(|error| runtime_error(error, span, None))?;
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
        let analysis = self.program.analysis;
        let file = analysis.files.len().saturating_sub(1);
        let mut compiled = Vec::new();
        let Some(parsed) = analysis.files.get(file) else { return Ok(compiled) };
        for item in &parsed.program.items {
            let ItemKind::Print(exprs) = &item.kind else { continue };
            for expr in exprs {
                if let Some(objective) = objective_of(expr) {
                    compiled.push((self.source(objective.span), self.compile(file, objective)?));
                }
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
        let lowered = self.program.lower_estimate(file, objective, "estimate")?;
        let wrt: Vec<bool> = lowered
            .body
            .params
            .iter()
            .enumerate()
            .map(|(i, param)| {
                lowered.ty(*param).is_some_and(|ty| ty.is_differentiable()) && only.is_none_or(|only| only.contains(&i))
            })
            .collect();
        adev::compile(lowered, &wrt)
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
        let estimator = self.compile(file, objective)?;
        let source = self.source(expr.span);
        if self.options.emit_ir {
            for function in [&estimator.primal, &estimator.forward, &estimator.reverse] {
                emit(Output::Ir { source: source.clone(), text: function.to_string() });
            }
        }
        let command = self.commands;
        self.commands += 1;
        let function = if gradient { &estimator.reverse } else { &estimator.primal };
        let native = self.native(function, &source, emit)?;
        if gradient {
            let params = self.gradient(&estimator, native.as_ref(), command, samples, objective.span)?;
            emit(Output::Grad { source, samples, params });
        } else {
            let values = self.sample_values(&estimator, native.as_ref(), command, samples, objective.span)?;
            let statistic = Statistic::of(&values);
            emit(Output::Estimate { source, mean: statistic.mean, stderr: statistic.stderr, samples });
        }
        Ok(())
    }

    fn seed(&self) -> u64 {
        self.options.seed.unwrap_or(DEFAULT_SEED)
    }

    fn args(&self, command: u64, sample: u64) -> Vec<RuntimeValue> {
        let mut args = self.params.clone();
        args.push(RuntimeValue::Rng(Box::new(Rng::new(self.seed(), command << 32 | sample))));
        args
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

    /// Runs `function` (its native code if given) once per index on the arguments `args(index)`
    /// gives, on the worker threads; the results come back in index order, whatever the number
    /// of threads. A native run that fails is repeated in the interpreter, which reports why.
    fn run_each(
        &self,
        function: &crate::ir::Function,
        native: Option<&Compiled>,
        count: u64,
        args: impl Fn(u64) -> Vec<RuntimeValue> + Sync,
    ) -> Vec<Result<Vec<RuntimeValue>, InterpError>> {
        use rayon::prelude::*;
        let one = |scratch: &mut Option<Scratch>, index: u64| {
            let args = args(index);
            if let (Some(native), Some(scratch)) = (native, scratch.as_mut()) {
                if let Some(results) = native.run(scratch, &args) {
                    return Ok(results);
                }
            }
            interp::run(function, args)
        };
        let scratch = || native.map(Compiled::scratch);
        match &self.pool {
            // Below a few runs per thread, handing work to the pool costs more than it saves.
            Some(pool) if count >= 8 * pool.current_num_threads() as u64 => {
                pool.install(|| (0..count).into_par_iter().map_init(scratch, one).collect())
            }
            _ => {
                let mut scratch = scratch();
                (0..count).map(|index| one(&mut scratch, index)).collect()
            }
        }
    }

    fn sample_values(
        &self,
        estimator: &Estimator,
        native: Option<&Compiled>,
        command: u64,
        samples: u64,
        span: Span,
    ) -> Result<Vec<f64>, Diagnostic> {
        let mut values = Vec::with_capacity(samples as usize);
        let runs = self.run_each(&estimator.primal, native, samples, |sample| self.args(command, sample));
        for (sample, results) in (0..samples).zip(runs) {
            let results = results.map_err(|error| runtime_error(error, Some(span), Some(sample)))?;
            let value = results.first().and_then(|value| value.as_real().ok()).unwrap_or(f64::NAN);
            if value.is_nan() {
                return Err(self.explain_nan(&estimator.primal, command, sample, span));
            }
            values.push(value);
        }
        Ok(values)
    }

    fn gradient(
        &self,
        estimator: &Estimator,
        native: Option<&Compiled>,
        command: u64,
        samples: u64,
        span: Span,
    ) -> Result<Vec<ParamGradient>, Diagnostic> {
        let differentiated: Vec<usize> = (0..self.program.params.len()).filter(|i| estimator.wrt[*i]).collect();
        let used = crate::ir::uses(&estimator.forward);
        let mut draws: Vec<Vec<Vec<f64>>> = vec![Vec::with_capacity(samples as usize); differentiated.len()];
        let runs = self.run_each(&estimator.reverse, native, samples, |sample| self.args(command, sample));
        for (sample, results) in (0..samples).zip(runs) {
            let results = results.map_err(|error| runtime_error(error, Some(span), Some(sample)))?;
            if results.iter().any(RuntimeValue::has_nan) {
                return Err(self.explain_nan(&estimator.reverse, command, sample, span));
            }
            for (k, result) in results.iter().skip(1).enumerate() {
                let elements = match result {
                    RuntimeValue::Real(x) => vec![*x],
                    other => other.elements().map(<[f64]>::to_vec).unwrap_or_default(),
                };
                if let Some(slot) = draws.get_mut(k) {
                    slot.push(elements);
                }
            }
        }
        let mut gradients = Vec::new();
        for (k, index) in differentiated.iter().enumerate() {
            let param = &self.program.params[*index];
            if !used.contains(&estimator.forward.body.params[*index]) {
                continue;
            }
            gradients.push(ParamGradient {
                name: param.name.clone(),
                statistics: Statistic::elementwise(&draws[k]),
                ty: param.ty,
            });
        }
        Ok(gradients)
    }

    /// Reruns a sample that gave NaN, watching for the instruction that produced it first.
    fn explain_nan(&self, function: &crate::ir::Function, command: u64, sample: u64, span: Span) -> Diagnostic {
        match interp::run_watching_nan(function, self.args(command, sample)) {
            Err(error) => runtime_error(error, Some(span), Some(sample)),
            Ok(_) => Diagnostic::error(ErrorCode::NotANumber, "the estimate is NaN")
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

fn zero(ty: crate::ir::Type) -> RuntimeValue {
    match ty {
        crate::ir::Type::Vec(n) => RuntimeValue::Vec(vec![0.0; n as usize]),
        crate::ir::Type::Mat(rows, cols) => RuntimeValue::Mat {
            rows: rows as usize,
            cols: cols as usize,
            data: vec![0.0; rows as usize * cols as usize],
        },
        crate::ir::Type::Int => RuntimeValue::Int(0),
        crate::ir::Type::Bool => RuntimeValue::Bool(false),
        _ => RuntimeValue::Real(0.0),
    }
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
