//! Training: `maximize`/`minimize` — gradient steps on the parameters, each step averaging
//! `particles` independent gradient estimates of every objective, each objective updating its
//! own group of parameters (`wrt`) with its own optimizer state.
//!
//! Progress goes out as [`Output::Progress`] after every step; a client decides how to show it.
//! A run stops after `steps`, when the objective's running average has stopped improving
//! (`tolerance`, `patience`), when the interrupt flag is raised (after the current step), or
//! at the first non-finite objective or gradient (unless `on_nan: "skip"`), which is reported
//! as a diagnostic pointing at the first operation that produced it. Parameters keep the last
//! finite values in every case.

use std::time::Instant;

use ppl_runtime::optim::{clip_by_norm, global_norm, Method, Optimizer, OptimizerState, Schedule};
use ppl_runtime::Rng;

use super::output::{Output, Statistic, TrainedObjective};
use super::{runtime_error, Session};
use crate::adev::Estimator;
use crate::diagnostics::{Diagnostic, ErrorCode};
use crate::interp::{self, RuntimeValue};
use crate::syntax::ast::{Direction, Expr, ExprKind, Optimize};
use crate::syntax::span::Span;

/// The top bit marks training streams, apart from those of `estimate`, `grad` and `sample`.
const TRAINING_STREAMS: u64 = 1 << 63;

/// How many of the last steps the final objective estimate averages.
const FINAL_WINDOW: usize = 100;

/// The weight of the newest step in the running average that `tolerance`/`patience` watch.
const RUNNING_AVERAGE_WEIGHT: f64 = 0.05;

/// The options of one `maximize`/`minimize`, evaluated.
struct Settings {
    method: Method,
    schedule_text: String,
    steps: u64,
    particles: u64,
    seed: u64,
    tolerance: Option<f64>,
    patience: u64,
    clip: Option<f64>,
    skip_nan: bool,
}

/// One objective of the command with its parameter group.
struct Group {
    source: String,
    span: Span,
    estimator: Estimator,
    /// Indices (into the program's parameters) this objective trains.
    params: Vec<usize>,
    optimizer: Optimizer,
    values: Vec<f64>,
    /// The reverse program's native code, with the JIT back end.
    native: Option<crate::codegen::Compiled>,
}

/// Why a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    Finished,
    Converged,
    Interrupted,
}

impl StopReason {
    pub fn describe(self) -> &'static str {
        match self {
            StopReason::Finished => "finished",
            StopReason::Converged => "converged",
            StopReason::Interrupted => "interrupted",
        }
    }
}

impl<'a> Session<'a> {
    pub(super) fn train(
        &mut self,
        file: usize,
        command: &'a Optimize,
        span: Span,
        emit: &mut dyn FnMut(Output),
    ) -> Result<(), Diagnostic> {
        let started = Instant::now();
        let settings = self.settings(file, command)?;
        // Training streams depend only on the seed and on which training command this is, so
        // adding a `print` before a `maximize` does not change what it trains to.
        let command_index = self.trainings;
        self.trainings += 1;
        let mut groups = self.groups(file, command, &settings, emit)?;
        if let Some(resume) = self.options.resume.as_ref() {
            for (group, state) in groups.iter_mut().zip(&resume.optimizers) {
                let schedule = Schedule::parse(&settings.schedule_text, settings.steps)
                    .map_err(|error| option_error(command, "schedule", &error.message))?;
                let sizes = group.optimizer.sizes().to_vec();
                group.optimizer = Optimizer::restore(settings.method, schedule, &sizes, state.clone())
                    .map_err(|error| option_error(command, "optimizer", &error.message))?;
            }
        }
        let sign = if command.direction == Direction::Maximize { -1.0 } else { 1.0 };
        let resumed_steps =
            self.options.resume.as_ref().filter(|resume| !resume.optimizers.is_empty()).and_then(|resume| resume.steps);
        let first_step =
            resumed_steps.unwrap_or_else(|| groups.first().map_or(0, |group| group.optimizer.steps_taken()));
        let mut running: Option<f64> = None;
        let mut best = f64::NEG_INFINITY;
        let mut stale = 0;
        let mut skipped = 0;
        let mut reason = StopReason::Finished;
        let mut step = first_step;
        while step < settings.steps {
            let mut step_objective = 0.0;
            let mut step_norm = 0.0;
            let mut learning_rate = 0.0;
            let mut finite = true;
            let mut updates = Vec::with_capacity(groups.len());
            for (g, group) in groups.iter().enumerate() {
                let (value, mut gradient) = self.average_gradient(group, &settings, command_index, g, step)?;
                if !value.is_finite() || gradient.iter().flatten().any(|x| !x.is_finite()) {
                    finite = false;
                    if !settings.skip_nan {
                        return Err(self.divergence(group, &settings, command_index, g, step, value, &gradient));
                    }
                }
                for element in gradient.iter_mut().flatten() {
                    *element *= sign;
                }
                let norm = match settings.clip {
                    Some(limit) => clip_by_norm(&mut gradient, limit),
                    None => global_norm(&gradient),
                };
                step_norm += norm * norm;
                if g == 0 {
                    step_objective = value;
                    learning_rate = group.optimizer.learning_rate();
                }
                updates.push(gradient);
            }
            if finite {
                for (group, gradient) in groups.iter_mut().zip(updates) {
                    let mut values: Vec<Vec<f64>> = group.params.iter().map(|p| flat(&self.params[*p])).collect();
                    group.optimizer.step(&mut values, &gradient);
                    for (p, value) in group.params.iter().zip(values) {
                        self.params[*p] = reshaped(&self.params[*p], value);
                    }
                }
            } else {
                skipped += 1;
            }
            step += 1;
            if finite {
                if let Some(group) = groups.first_mut() {
                    group.values.push(step_objective);
                }
            }
            let oriented = -sign * step_objective;
            // The running average starts at the first finite step and ignores skipped ones.
            let average = match (running, finite) {
                (Some(previous), true) => previous + RUNNING_AVERAGE_WEIGHT * (oriented - previous),
                (Some(previous), false) => previous,
                (None, true) => oriented,
                (None, false) => f64::NAN,
            };
            if average.is_finite() {
                running = Some(average);
            }
            emit(Output::Progress {
                step,
                steps: settings.steps,
                objective: -sign * average,
                value: step_objective,
                gradient_norm: step_norm.sqrt(),
                learning_rate,
            });
            if let (Some(tolerance), true) = (settings.tolerance, average.is_finite()) {
                if average > best + tolerance {
                    best = average;
                    stale = 0;
                } else {
                    stale += 1;
                    if stale >= settings.patience {
                        reason = StopReason::Converged;
                        break;
                    }
                }
            }
            if self.options.interrupt.as_ref().is_some_and(|flag| flag.load(std::sync::atomic::Ordering::SeqCst)) {
                reason = StopReason::Interrupted;
                break;
            }
        }
        let trained: Vec<usize> = groups.iter().flat_map(|group| group.params.iter().copied()).collect();
        let objectives = groups
            .iter()
            .map(|group| {
                let tail = &group.values[group.values.len().saturating_sub(FINAL_WINDOW)..];
                TrainedObjective { source: group.source.clone(), statistic: Statistic::of(tail) }
            })
            .collect();
        let optimizers: Vec<OptimizerState> = groups.iter().map(|group| group.optimizer.state()).collect();
        emit(Output::Trained {
            source: self.source(span),
            direction: command.direction,
            steps: step,
            skipped,
            seconds: started.elapsed().as_secs_f64(),
            objectives,
            params: self.param_outputs(&trained),
            reason,
            optimizers,
            seed: settings.seed,
        });
        Ok(())
    }

    /// The mean objective and mean gradient (per parameter of the group) over the step's
    /// particles.
    fn average_gradient(
        &self,
        group: &Group,
        settings: &Settings,
        command: u64,
        g: usize,
        step: u64,
    ) -> Result<(f64, Vec<Vec<f64>>), Diagnostic> {
        let mut value = 0.0;
        let mut gradient: Vec<Vec<f64>> =
            group.params.iter().map(|p| vec![0.0; flat(&self.params[*p]).len()]).collect();
        let runs = self.run_each(&group.estimator.reverse, group.native.as_ref(), settings.particles, |particle| {
            self.training_args(settings, command, g, step, particle)
        });
        for results in runs {
            let results = results.map_err(|error| runtime_error(error, Some(group.span), None))?;
            value += results.first().and_then(|v| v.as_real().ok()).unwrap_or(f64::NAN);
            let differentiated = (0..self.program.params.len()).filter(|i| group.estimator.wrt[*i]);
            for (k, p) in differentiated.enumerate() {
                let Some(position) = group.params.iter().position(|q| *q == p) else { continue };
                let draw = results.get(k + 1).map(flat).unwrap_or_default();
                for (total, x) in gradient[position].iter_mut().zip(draw) {
                    *total += x;
                }
            }
        }
        let count = settings.particles as f64;
        for element in gradient.iter_mut().flatten() {
            *element /= count;
        }
        Ok((value / count, gradient))
    }

    fn training_args(
        &self,
        settings: &Settings,
        command: u64,
        g: usize,
        step: u64,
        particle: u64,
    ) -> Vec<RuntimeValue> {
        let stream = TRAINING_STREAMS | (command << 48) | ((g as u64) << 40) | (step * settings.particles + particle);
        let mut args = self.params.clone();
        args.push(RuntimeValue::Rng(Box::new(Rng::new(settings.seed, stream))));
        args
    }

    /// The report of a non-finite objective or gradient: the step, the parameters, and where
    /// the first NaN came from.
    #[allow(clippy::too_many_arguments)]
    fn divergence(
        &self,
        group: &Group,
        settings: &Settings,
        command: u64,
        g: usize,
        step: u64,
        value: f64,
        gradient: &[Vec<f64>],
    ) -> Diagnostic {
        let bad: Vec<&str> = group
            .params
            .iter()
            .zip(gradient)
            .filter(|(_, g)| g.iter().any(|x| !x.is_finite()))
            .map(|(p, _)| self.program.params[*p].name.as_str())
            .collect();
        let mut origin = None;
        for particle in 0..settings.particles {
            let args = self.training_args(settings, command, g, step, particle);
            if let Err(error) = interp::run_watching_nan(&group.estimator.reverse, args) {
                origin = Some(error);
                break;
            }
        }
        let what = if value.is_finite() { "the gradient" } else { "the objective" };
        let mut diagnostic = match origin {
            Some(error) => runtime_error(error, Some(group.span), None),
            None => Diagnostic::error(ErrorCode::NotANumber, format!("{what} is not finite"))
                .with_primary(group.span, "this objective"),
        };
        diagnostic = diagnostic.with_note(format!(
            "training stopped at step {} of {}: {what} is {value}{}; the parameters keep their last finite values",
            step + 1,
            settings.steps,
            if bad.is_empty() { String::new() } else { format!(", non-finite gradient for {}", bad.join(", ")) },
        ));
        diagnostic.with_help(
            "lower the learning rate, clip gradients (`clip: 10.0`), or skip such steps (`on_nan: \"skip\"`)",
        )
    }

    fn settings(&self, file: usize, command: &'a Optimize) -> Result<Settings, Diagnostic> {
        let option =
            |name: &str| command.options.iter().find(|field| field.name.name == name).map(|field| &field.value);
        let mut settings = Settings {
            method: Method::Adam { lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
            schedule_text: "constant".into(),
            steps: 1000,
            particles: 1,
            seed: self.options.seed.unwrap_or(super::DEFAULT_SEED),
            tolerance: None,
            patience: 100,
            clip: None,
            skip_nan: false,
        };
        if let Some(expr) = option("optimizer") {
            settings.method = self.optimizer(file, command, expr)?;
        }
        if let Some(expr) = option("steps") {
            settings.steps = self.count(file, expr)?;
        }
        if let Some(expr) = option("particles") {
            settings.particles = self.count(file, expr)?;
        }
        if let (Some(expr), None) = (option("seed"), self.options.seed) {
            settings.seed = match self.number(file, expr)? {
                RuntimeValue::Int(n) => n as u64,
                _ => return Err(option_error(command, "seed", "must be an integer")),
            };
        }
        if let Some(expr) = option("tolerance") {
            settings.tolerance = Some(self.real(file, expr)?);
        }
        if let Some(expr) = option("patience") {
            settings.patience = self.count(file, expr)?;
        }
        if let Some(expr) = option("clip") {
            let limit = self.real(file, expr)?;
            if limit.is_nan() || limit <= 0.0 {
                return Err(option_error(command, "clip", "must be a positive number"));
            }
            settings.clip = Some(limit);
        }
        if let Some(expr) = option("schedule") {
            settings.schedule_text =
                string(expr).ok_or_else(|| option_error(command, "schedule", "must be a string"))?;
        }
        if let Some(expr) = option("on_nan") {
            settings.skip_nan = match string(expr).as_deref() {
                Some("stop") => false,
                Some("skip") => true,
                _ => return Err(option_error(command, "on_nan", "must be \"stop\" or \"skip\"")),
            };
        }
        Schedule::parse(&settings.schedule_text, settings.steps)
            .map_err(|error| option_error(command, "schedule", &error.message))?;
        Ok(settings)
    }

    fn optimizer(&self, file: usize, command: &Optimize, expr: &'a Expr) -> Result<Method, Diagnostic> {
        let ExprKind::Call { callee, args } = &expr.kind else {
            return Err(option_error(command, "optimizer", "must be an optimizer such as `adam(lr: 0.001)`"));
        };
        let mut values = Vec::with_capacity(args.len());
        for (position, arg) in args.iter().enumerate() {
            let name = match (&arg.name, position) {
                (Some(name), _) => name.name.clone(),
                (None, 0) => "lr".to_string(),
                (None, _) => return Err(option_error(command, "optimizer", "settings after `lr` must be named")),
            };
            let value = match self.number(file, &arg.value)? {
                RuntimeValue::Bool(b) => f64::from(u8::from(b)),
                other => other.as_real().map_err(|_| option_error(command, "optimizer", "settings are numbers"))?,
            };
            values.push((name, value));
        }
        let settings: Vec<(&str, f64)> = values.iter().map(|(name, value)| (name.as_str(), *value)).collect();
        Method::from_settings(&callee.name, &settings).map_err(|error| {
            Diagnostic::error(ErrorCode::InvalidOption, format!("invalid optimizer: {}", error.message))
                .with_primary(expr.span, "this optimizer")
        })
    }

    fn number(&self, file: usize, expr: &'a Expr) -> Result<RuntimeValue, Diagnostic> {
        let values = self.evaluate(file, &[expr])?;
        values
            .into_iter()
            .next()
            .and_then(|(flat, _)| flat.into_iter().next())
            .ok_or_else(|| crate::lower::internal(Some(expr.span), "no value"))
    }

    fn real(&self, file: usize, expr: &'a Expr) -> Result<f64, Diagnostic> {
        self.number(file, expr)?.as_real().map_err(|_| crate::lower::internal(Some(expr.span), "not a number"))
    }

    /// Compiles each objective for its parameter group.
    fn groups(
        &self,
        file: usize,
        command: &'a Optimize,
        settings: &Settings,
        emit: &mut dyn FnMut(Output),
    ) -> Result<Vec<Group>, Diagnostic> {
        let mut groups = Vec::with_capacity(command.objectives.len());
        for objective in &command.objectives {
            let explicit: Option<Vec<usize>> = objective.wrt.as_ref().map(|names| {
                names
                    .iter()
                    .filter_map(|name| self.program.params.iter().position(|param| param.name == name.name))
                    .collect()
            });
            let estimator = self.compile_for(file, &objective.expr, explicit.as_deref())?;
            let used = crate::ir::uses(&estimator.forward);
            let params: Vec<usize> = (0..self.program.params.len())
                .filter(|i| estimator.wrt[*i] && used.contains(&estimator.forward.body.params[*i]))
                .collect();
            if params.is_empty() {
                return Err(Diagnostic::error(ErrorCode::InvalidWrt, "this objective depends on no parameter")
                    .with_primary(objective.expr.span, "nothing here can be trained")
                    .with_help("a `param` must appear in the objective for training to change it"));
            }
            let sizes: Vec<usize> = params.iter().map(|p| flat(&self.params[*p]).len()).collect();
            let schedule = Schedule::parse(&settings.schedule_text, settings.steps)
                .map_err(|error| option_error(command, "schedule", &error.message))?;
            let native = self.native(&estimator.reverse, &self.source(objective.expr.span), emit)?;
            groups.push(Group {
                native,
                source: self.source(objective.expr.span),
                span: objective.expr.span,
                estimator,
                params,
                optimizer: Optimizer::new(settings.method, schedule, &sizes),
                values: Vec::new(),
            });
        }
        Ok(groups)
    }
}

fn option_error(command: &Optimize, name: &str, message: &str) -> Diagnostic {
    let field = command.options.iter().find(|field| field.name.name == name);
    let diagnostic = Diagnostic::error(ErrorCode::InvalidOption, format!("option `{name}` {message}"));
    match field {
        Some(field) => diagnostic.with_primary(field.value.span, "this value"),
        None => diagnostic,
    }
}

fn string(expr: &Expr) -> Option<String> {
    match &expr.kind {
        ExprKind::Str(text) => Some(text.clone()),
        _ => None,
    }
}

/// A parameter's value as a flat vector (matrices row-major).
pub(super) fn flat(value: &RuntimeValue) -> Vec<f64> {
    match value {
        RuntimeValue::Real(x) => vec![*x],
        RuntimeValue::Vec(data) | RuntimeValue::Mat { data, .. } => data.clone(),
        RuntimeValue::Int(n) => vec![*n as f64],
        _ => Vec::new(),
    }
}

/// A flat vector back in the shape of `like`.
pub(super) fn reshaped(like: &RuntimeValue, data: Vec<f64>) -> RuntimeValue {
    match like {
        RuntimeValue::Real(_) => RuntimeValue::Real(data.first().copied().unwrap_or(f64::NAN)),
        RuntimeValue::Vec(_) => RuntimeValue::Vec(data),
        RuntimeValue::Mat { rows, cols, .. } => RuntimeValue::Mat { rows: *rows, cols: *cols, data },
        other => other.clone(),
    }
}
