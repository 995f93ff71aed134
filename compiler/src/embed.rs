//! Embedding `ppl` in a Rust program: compile a source string once (with data from the host
//! program if it has some), then train its parameters with any `maximize`/`minimize` command,
//! or call an objective's value and gradient on flat parameter buffers in a loop of your own,
//! without allocating. Errors are the diagnostics `ppl run` prints, with the same spans.
//!
//! ```
//! use std::ops::ControlFlow;
//! use ppl::embed::Data;
//!
//! let source = "
//!     gen model() { x ~ normal(0.0, 1.0); y ~ normal(x, 1.0); }
//!     gen guide(m: real, log_s: real) { x ~ normal(m, exp(log_s)); }
//!     param m: real = 0.0;
//!     param log_s: real = 0.0;
//!     data obs = { y: 0.0 };
//! ";
//! // The host's observations replace the program's `data obs`.
//! let observed = Data::Record(vec![("y".into(), Data::Real(1.5))]);
//! let mut program = ppl::compile_with_data(source, &[("obs", observed)]).expect("the program checks");
//!
//! // Train with the language's own command and options; watch (or stop) it step by step.
//! let mut last = 0;
//! let training = program
//!     .train(
//!         "maximize elbo(model(), guide(m, log_s), obs) with { optimizer: adam(lr: 0.05), steps: 500, particles: 8 }",
//!         |progress| {
//!             last = progress.step;
//!             ControlFlow::Continue(())
//!         },
//!     )
//!     .expect("it trains");
//! assert_eq!((last, training.steps), (500, 500));
//! let m = program.param("m").expect("declared")[0];
//! assert!((m - 0.75).abs() < 0.1); // the posterior mean is y/2
//!
//! // Or run your own loop on the compiled objective's value and gradient.
//! let mut objective = program.objective("elbo(model(), guide(m, log_s), obs)").expect("it compiles");
//! let mut params = program.param_values(); // [m, log_s], flattened in declaration order
//! let mut gradient = vec![0.0; params.len()];
//! for step in 0..200 {
//!     let elbo = objective.value_and_grad(&params, 1, step, &mut gradient).expect("finite");
//!     assert!(elbo.is_finite());
//!     for (p, g) in params.iter_mut().zip(&gradient) {
//!         *p += 0.01 * g; // gradient ascent on the ELBO
//!     }
//! }
//! program.set_param_values(&params).expect("as many values as parameters");
//! ```

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::codegen;
pub use crate::data::Data;
use crate::diagnostics::{ColorChoice, Diagnostic, ErrorCode, SourceMap};
use crate::interp::RuntimeValue;
use crate::run::execute::{Kernel, Worker};
use crate::run::{Fit, Output, Resume, RunOptions, Session, StopReason, TrainedObjective};
use crate::syntax::ast::ItemKind;
use crate::syntax::span::Span;
use crate::Wrapped;

/// The precision of matrix products and of trainings ([`Program::set_precision`]).
pub use ppl_runtime::Precision;

/// A checked program, ready to compile objectives against and to train: its source, the data
/// the host program gave it and its parameters' current values.
#[derive(Debug)]
pub struct Program {
    /// The user's source with every `data` item the host replaces blanked out (so that every
    /// other span is where the user wrote it).
    source: String,
    /// The host's data, as `data` items.
    data: String,
    params: Vec<(String, RuntimeValue)>,
    /// The precision of products of two matrices and of trainings in what is compiled next, if
    /// the host set one (else f64, except in a training that asks for f32).
    precision: Option<Precision>,
}

/// Why compiling, training or calling failed: the rendered diagnostics, as `ppl run` prints them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub message: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl Error {
    fn plain(message: impl Into<String>) -> Error {
        Error { message: message.into() }
    }

    fn rendered(diagnostic: &Diagnostic, sources: &SourceMap) -> Error {
        Error { message: crate::diagnostics::render(diagnostic, sources, ColorChoice::Never) }
    }
}

/// Parses and checks `source` and computes its parameters' initial values.
pub fn compile(source: &str) -> Result<Program, Error> {
    compile_with_data(source, &[])
}

/// Like [`compile`], with each `data NAME` item of `source` replaced by the host's value
/// (checked against the item's type annotation, if it has one).
pub fn compile_with_data(source: &str, data: &[(&str, Data)]) -> Result<Program, Error> {
    let parsed = crate::check_source("<program>", source);
    if parsed.has_errors() {
        return Err(Error::plain(parsed.render_diagnostics(ColorChoice::Never)));
    }
    let Some(user) = parsed.files.last() else { return Err(Error::plain("no program")) };
    let mut blanked = source.as_bytes().to_vec();
    let mut items = String::new();
    for (name, value) in data {
        let declared = user.program.items.iter().find_map(|item| match &item.kind {
            ItemKind::Data(binding) if binding.name.name == *name => Some((item.span, binding)),
            _ => None,
        });
        let Some((span, binding)) = declared else {
            return Err(Error::plain(format!("the program declares no `data {name}` for the host's data to replace")));
        };
        let literal = value.literal().map_err(|why| Error::plain(format!("the host's data `{name}`: {why}")))?;
        let annotation = binding.ty.as_ref().map(|ty| format!(": {}", parsed.sources.snippet(ty.span)));
        items.push_str(&format!("data {name}{} = {literal};\n", annotation.unwrap_or_default()));
        // Blank the declaration, keeping line breaks, so every other span stays where it was.
        let base = parsed.sources.file(user.file).base;
        let range = span.start.saturating_sub(base) as usize..span.end.saturating_sub(base) as usize;
        for byte in blanked.get_mut(range).into_iter().flatten() {
            if *byte != b'\n' {
                *byte = b' ';
            }
        }
    }
    let mut program = Program {
        source: String::from_utf8_lossy(&blanked).into_owned(),
        data: items,
        params: Vec::new(),
        precision: None,
    };
    let analysis = program.check(None);
    if analysis.has_errors() {
        return Err(program.data_misfit(&analysis, &parsed, data));
    }
    program.params = crate::with_large_stack(|| {
        Session::new(&analysis, RunOptions::default())
            .map(|session| session.params().map(|(name, value)| (name.to_string(), value)).collect())
    })
    .map_err(|diagnostic| Error::rendered(&diagnostic, &analysis.sources))?;
    Ok(program)
}

/// A step of a training run, as [`Program::train`] reports it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    pub step: u64,
    pub steps: u64,
    /// The running average of the (first) objective.
    pub objective: f64,
    /// This step's estimate of it.
    pub value: f64,
    pub gradient_norm: f64,
    pub learning_rate: f64,
    /// Passes over the data set so far, for an objective on minibatches (`mean_over(…, batch: B)`).
    pub epoch: Option<f64>,
}

/// What a training command did, as `ppl run` reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct Training {
    /// Steps taken in all.
    pub steps: u64,
    pub stopped: StopReason,
    pub seconds: f64,
    /// Each objective's mean ± standard error over the last steps.
    pub objectives: Vec<TrainedObjective>,
    /// The fit diagnostics (none with `diagnostics: 0`).
    pub fit: Option<Fit>,
}

impl Program {
    /// The program's files: the user's source, then the host's data.
    fn check(&self, last: Option<Wrapped<'_>>) -> crate::Analysis {
        let files = [("<program>", self.source.as_str()), ("<data>", self.data.as_str())];
        match last {
            Some(input) => crate::check_wrapped(&files, input),
            None => crate::check_sources(&files),
        }
    }

    /// The error of host data that does not fit its declaration, at the declaration.
    fn data_misfit(&self, analysis: &crate::Analysis, parsed: &crate::Analysis, data: &[(&str, Data)]) -> Error {
        let in_data = analysis.diagnostics.iter().filter(|d| d.is_error()).find_map(|diagnostic| {
            let span = diagnostic.span()?;
            let (file, range) = analysis.sources.locate(span)?;
            (file.name == "<data>")
                .then(|| file.text.get(..range.start).map_or(0, |before| before.matches('\n').count()))
        });
        let Some(line) = in_data else { return Error::plain(analysis.render_diagnostics(ColorChoice::Never)) };
        let Some((name, value)) = data.get(line) else {
            return Error::plain(analysis.render_diagnostics(ColorChoice::Never));
        };
        let declaration = parsed.files.last().and_then(|user| {
            user.program.items.iter().find_map(|item| match &item.kind {
                ItemKind::Data(binding) if binding.name.name == *name => {
                    Some(binding.ty.as_ref().map_or(item.span, |ty| ty.span))
                }
                _ => None,
            })
        });
        let diagnostic = Diagnostic::error(
            ErrorCode::TypeMismatch,
            format!("the host's data `{name}` is {}, which does not fit its declaration", value.kind()),
        )
        .with_primary(declaration.unwrap_or_default(), "declared here")
        .with_help("give data of the declared type and shape, or change the declaration");
        Error::rendered(&diagnostic, &parsed.sources)
    }

    /// Every parameter's name and number of elements, in the order of the flat buffers.
    pub fn params(&self) -> Vec<(String, usize)> {
        self.params.iter().map(|(name, value)| (name.clone(), flat_len(value))).collect()
    }

    /// The parameters' current values (initial, or as training left them), flattened in
    /// declaration order (matrices row-major).
    pub fn param_values(&self) -> Vec<f64> {
        self.params.iter().flat_map(|(_, value)| flat(value)).collect()
    }

    /// One parameter's current values, flattened.
    pub fn param(&self, name: &str) -> Option<Vec<f64>> {
        self.params.iter().find(|(param, _)| param == name).map(|(_, value)| flat(value))
    }

    /// Sets every parameter from flat values laid out as [`Program::param_values`] gives them.
    pub fn set_param_values(&mut self, values: &[f64]) -> Result<(), Error> {
        let total: usize = self.params.iter().map(|(_, value)| flat_len(value)).sum();
        if values.len() != total {
            return Err(Error::plain(format!("expected {total} parameter values, got {}", values.len())));
        }
        let mut rest = values;
        for (_, value) in &mut self.params {
            let (these, others) = rest.split_at(flat_len(value));
            match value {
                RuntimeValue::Vec(data) | RuntimeValue::Mat { data, .. } => data.copy_from_slice(these),
                RuntimeValue::Real(x) => *x = these.first().copied().unwrap_or(*x),
                _ => {}
            }
            rest = others;
        }
        Ok(())
    }

    /// The precision of the objectives and trainings compiled from now on (`ppl run
    /// --precision`): `Precision::Single` computes products of two matrices in f32 (operands
    /// rounded to f32, sums in f32) and trains in f32 (the optimizer's state and updates, and
    /// so the trained parameters); f64 (`Double`) by default. Once set, it also holds for a
    /// training whose `precision` option asks for another.
    pub fn set_precision(&mut self, precision: Precision) {
        self.precision = Some(precision);
    }

    /// Runs a training command — `maximize …` or `minimize … with { … }`, as in a `.ppl` file
    /// (the final `;` may be left out) — from the parameters' current values, and keeps what it trains them to.
    /// `on_progress` sees every step; returning `ControlFlow::Break(())` stops the run after
    /// that step, as Ctrl-C does.
    pub fn train(
        &mut self,
        command: &str,
        mut on_progress: impl FnMut(&Progress) -> ControlFlow<()> + Send,
    ) -> Result<Training, Error> {
        let after = if command.trim_end().ends_with(';') { "" } else { "\n;" };
        let analysis = self.check(Some(Wrapped { name: "<training>", before: "", text: command, after }));
        if analysis.has_errors() {
            return Err(Error::plain(analysis.render_diagnostics(ColorChoice::Never)));
        }
        let items = analysis.files.last().map_or(&[][..], |file| &file.program.items[..]);
        if !matches!(items, [item] if matches!(item.kind, ItemKind::Optimize(_))) {
            return Err(Error::plain(format!("`{command}` is not one `maximize` or `minimize` command")));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let options = RunOptions {
            interrupt: Some(stop.clone()),
            resume: Some(Resume { params: self.params.clone(), ..Resume::default() }),
            precision: self.precision,
            ..RunOptions::default()
        };
        let mut training = None;
        let (outcome, params) = crate::with_large_stack(|| {
            let mut session = match Session::new(&analysis, options) {
                Ok(session) => session,
                Err(diagnostic) => return (Err(diagnostic), Vec::new()),
            };
            let outcome = session.run_commands(&mut |output| match output {
                Output::Progress { step, steps, objective, value, gradient_norm, learning_rate, minibatch, .. } => {
                    let epoch = minibatch.map(|minibatch| minibatch.epochs(step));
                    let progress = Progress { step, steps, objective, value, gradient_norm, learning_rate, epoch };
                    if on_progress(&progress).is_break() {
                        stop.store(true, Ordering::SeqCst);
                    }
                }
                Output::Trained { steps, reason, seconds, objectives, fit, .. } => {
                    training = Some(Training { steps, stopped: reason, seconds, objectives, fit });
                }
                _ => {}
            });
            let params = session.params().map(|(name, value)| (name.to_string(), value)).collect::<Vec<_>>();
            (outcome, params)
        });
        // Parameters keep their last finite values even when training fails.
        if !params.is_empty() {
            self.params = params;
        }
        outcome.map_err(|diagnostic| Error::rendered(&diagnostic, &analysis.sources))?;
        training.ok_or_else(|| Error::plain("the training command did not run"))
    }

    /// Compiles the estimate `expression` (written against the program's definitions, e.g.
    /// `elbo(model(), guide(m), obs)`) to native value-and-gradient code.
    pub fn objective(&self, expression: &str) -> Result<Objective, Error> {
        self.objective_with_particles(expression, 1)
    }

    /// As [`Program::objective`], each call averaging `particles` independent estimates (as a
    /// training step with `particles` does), estimate `p` on the stream `stream + p`: the
    /// estimates of [`Objective::value_and_grad`] on those streams, averaged. Where they batch
    /// (a network applied to each particle's draw) they run as one program over all of them.
    pub fn objective_with_particles(&self, expression: &str, particles: u32) -> Result<Objective, Error> {
        if particles == 0 {
            return Err(Error::plain("an objective needs at least one particle"));
        }
        let input = Wrapped { name: "<objective>", before: "print grad(", text: expression, after: "\n);" };
        let analysis = self.check(Some(input));
        if analysis.has_errors() {
            return Err(Error::plain(analysis.render_diagnostics(ColorChoice::Never)));
        }
        let estimator = crate::with_large_stack(|| {
            let options = RunOptions { precision: self.precision, ..RunOptions::default() };
            let session = Session::new(&analysis, options)?;
            session.compile_objectives_with(particles)
        })
        .map_err(|diagnostic| Error::rendered(&diagnostic, &analysis.sources))?
        .into_iter()
        .next()
        .map(|(_, estimator)| estimator)
        .ok_or_else(|| Error::plain(format!("`{expression}` is not an estimate")))?;
        let native = codegen::compile(&estimator.reverse).map_err(|error| Error::plain(error.to_string()))?;
        let shapes: Vec<RuntimeValue> = self.params.iter().map(|(_, value)| value.clone()).collect();
        let wrt = estimator.wrt[..shapes.len()].to_vec();
        let kernel = Kernel::new(estimator.reverse, Some(native));
        let worker = kernel.worker();
        let file = analysis.files.last().map(|file| file.file);
        let span = file.map_or_else(Span::default, |file| {
            let file = analysis.sources.file(file);
            Span::new(file.base, file.base + file.text.len() as u32)
        });
        Ok(Objective { kernel, worker, wrt, shapes, particles, sources: analysis.sources, span })
    }
}

/// A compiled objective with its worker memory: not shared between threads (compile one per
/// thread). It runs on the path every `ppl` command runs on.
pub struct Objective {
    kernel: Kernel,
    worker: Worker,
    wrt: Vec<bool>,
    shapes: Vec<RuntimeValue>,
    /// Estimates each call averages; the kernel returns their sums.
    particles: u32,
    /// The program's sources and the objective's place among them, for diagnostics.
    sources: SourceMap,
    span: Span,
}

impl Objective {
    /// One unbiased estimate of the objective and of its gradient with respect to every
    /// parameter (zero for those it does not depend on), on the random stream `(seed, stream)`.
    /// `params` and `gradient` are flat, as [`Program::param_values`] lays them out. Calls
    /// allocate nothing, unless they fail: the error is then the diagnostic `ppl run` gives.
    pub fn value_and_grad(
        &mut self,
        params: &[f64],
        seed: u64,
        stream: u64,
        gradient: &mut [f64],
    ) -> Result<f64, Error> {
        let total: usize = self.shapes.iter().map(flat_len).sum();
        if params.len() != total || gradient.len() != total {
            return Err(Error::plain(format!("expected {total} parameters and gradient elements")));
        }
        self.kernel.load_params(&mut self.worker, params);
        if !self.kernel.call(&mut self.worker, params, seed, stream) {
            let error = self.kernel.explain(params, seed, stream, false);
            let diagnostic = match error {
                Some(error) => crate::run::runtime_error(error, Some(self.span), None),
                None => Diagnostic::error(ErrorCode::RuntimeFailure, "the estimate failed")
                    .with_primary(self.span, "this estimate"),
            };
            return Err(Error::rendered(&diagnostic.with_note(format!("on stream ({seed}, {stream})")), &self.sources));
        }
        // The objective, then the gradient of each differentiated parameter in order.
        let reals = self.kernel.reals(&self.worker);
        let count = f64::from(self.particles);
        let value = reals.first().copied().unwrap_or(f64::NAN) / count;
        let mut results = reals.get(1..).unwrap_or(&[]);
        let mut offset = 0;
        for (shape, differentiated) in self.shapes.iter().zip(&self.wrt) {
            let len = flat_len(shape);
            let slice = &mut gradient[offset..offset + len];
            match (*differentiated, results.split_at_checked(len)) {
                (true, Some((values, rest))) => {
                    // x / 1 is x: one particle's gradient is copied as it is.
                    slice.iter_mut().zip(values).for_each(|(element, sum)| *element = sum / count);
                    results = rest;
                }
                _ => slice.fill(0.0),
            }
            offset += len;
        }
        Ok(value)
    }
}

fn flat_len(value: &RuntimeValue) -> usize {
    match value {
        RuntimeValue::Vec(data) | RuntimeValue::Mat { data, .. } => data.len(),
        _ => 1,
    }
}

fn flat(value: &RuntimeValue) -> Vec<f64> {
    match value {
        RuntimeValue::Vec(data) | RuntimeValue::Mat { data, .. } => data.clone(),
        RuntimeValue::Real(x) => vec![*x],
        RuntimeValue::Int(n) => vec![*n as f64],
        _ => vec![0.0],
    }
}
