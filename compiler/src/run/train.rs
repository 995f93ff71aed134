//! Training: `maximize`/`minimize` — gradient steps on the parameters, each step averaging
//! `particles` independent gradient estimates of every objective, each objective updating its
//! own group of parameters (`wrt`) with its own optimizer state. A step's particles run one per
//! call, spread over the threads, or, where they batch (`adev::compile_particles`), all in one
//! call; particle `p` draws from the same stream either way. A particle of a minibatch objective
//! runs in parts, a few rows of its minibatch each, side by side (see [`super::parts`]).
//!
//! Progress goes out as [`Output::Progress`] after every step; a client decides how to show it.
//! A run stops after `steps`, when the objective's running average has stopped improving
//! (`tolerance`, `patience`), when the interrupt flag is raised (after the current step), or
//! at the first non-finite objective or gradient (unless `on_nan: "skip"`), which is reported
//! as a diagnostic pointing at the first operation that produced it. Parameters keep the last
//! finite values in every case.

use std::collections::VecDeque;
use std::ops::Range;
use std::time::{Duration, Instant};

use ppl_runtime::optim::{clip_to, divide_and_norm, Method, Optimizer, OptimizerState, Schedule, Term};

use super::execute::{Executor, Kernel, CHUNK};
use super::moments::Moments;
use super::output::{Minibatch, Output, TrainedObjective, TrainingTime};
use super::parts::{particle_and_part, parts_of, OverRows};
use super::{fit, runtime_error, Session};
use crate::adev::Estimator;
use crate::diagnostics::{Diagnostic, ErrorCode};
use crate::interp::RuntimeValue;
use crate::syntax::ast::{Direction, Expr, ExprKind, Optimize};
use crate::syntax::span::Span;

/// The top bit of a training stream (see [`training_stream`]).
pub(super) const TRAINING_STREAMS: u64 = 1 << 63;

/// Training commands of one run have streams of their own while there are at most this many
/// (the command's number takes 14 bits of [`training_stream`]).
const MOST_TRAININGS: u64 = 1 << 14;

/// How many of the last steps the final objective estimate averages.
const FINAL_WINDOW: usize = 100;

/// The weight of the newest step in the running average that `tolerance`/`patience` watch.
const RUNNING_AVERAGE_WEIGHT: f64 = 0.05;

/// At most this many particles per step run one per chunk (see `sum_gradient`).
const FEW_PARTICLES: u64 = 8;

/// A step whose particles take longer than this on one thread runs them on every thread; a
/// shorter one would spend more on handing work to the threads than it saves.
const PARALLEL_STEP: Duration = Duration::from_micros(100);

/// A step's passes over a gradient of at least this many elements run on every thread, when
/// its calls did: threads that slept through the calls cost more to wake than they save.
const PARALLEL_PASS: usize = 1 << 16;

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
    /// Draws for the fit diagnostics after training (0: none).
    fit_draws: u64,
    /// The training's own precision (`precision: "f32"`), if it sets one.
    precision: Option<ppl_runtime::Precision>,
}

/// One objective of the command with its parameter group, as compiled.
struct Objective {
    source: String,
    span: Span,
    estimator: Estimator,
    /// The sum of a step's particles as one batched program, where that pays (see
    /// `adev::compile_particles`).
    particles_at_once: Option<Estimator>,
    /// The parts each particle runs in (see [`super::parts`]); `estimator` computes one.
    parts: u32,
    /// The whole of a particle run in parts, for the fit diagnostics.
    whole: Option<Estimator>,
    /// Indices (into the program's parameters) this objective trains.
    params: Vec<usize>,
}

/// An objective being trained: its executor and the memory of its steps, allocated once.
struct Group {
    source: String,
    span: Span,
    /// Runs one particle per call, or one part of one (see [`Objective::parts`]).
    executor: Executor,
    parts: u32,
    /// Runs one whole particle per call where `executor` runs parts (see [`Objective::whole`]).
    whole: Option<Executor>,
    /// Runs all of a step's particles in one call, if they batch (see [`Objective`]).
    particles_at_once: Option<Executor>,
    params: Vec<usize>,
    /// For each trained parameter, where its gradient is among the reverse program's results
    /// flattened (the objective comes first).
    gradients: Vec<Range<usize>>,
    /// For each trained parameter, whether a call of `executor` (of `particles_at_once`) into
    /// a chunk's results leaves its gradient there in f32 (see `Kernel::call_part_into`).
    narrowed: Vec<bool>,
    narrowed_at_once: Vec<bool>,
    /// The number of those results.
    width: usize,
    /// For each trained parameter, whether every kernel of the training reads it only rounded
    /// to f32: an optimizer in single precision then moves the rounded values alone (see
    /// `Params::rounded_mut`). Set once all groups are built.
    rounded_only: Vec<bool>,
    optimizer: Optimizer,
    /// This step's objective, and those of the last finite steps (at most [`FINAL_WINDOW`]).
    value: f64,
    values: VecDeque<f64>,
    /// The step's gradient: summed over its particles, then averaged and oriented (see `train`).
    gradient: Vec<Vec<f64>>,
    /// The per-chunk sums of one round of particles.
    round: Vec<ParticleSums>,
    /// Whether the last step's passes over the gradient ran on every thread (see
    /// [`PARALLEL_PASS`]).
    passes_in_parallel: bool,
}

/// The sums of objective and gradient over a chunk of particles, and the first that failed.
/// The gradient's memory is not cleared between chunks: its first particle is written over it
/// (see [`add_gradient`]). A chunk of one call of a step that fits one round keeps that call's
/// results as the kernel wrote them instead, without a copy.
#[derive(Debug)]
struct ParticleSums {
    value: f64,
    gradient: Vec<Vec<f64>>,
    /// The results of the chunk's one call (objective, then gradients), if `in_results`.
    results: Vec<f64>,
    in_results: bool,
    failed: Option<u64>,
}

impl ParticleSums {
    fn clear(&mut self) {
        self.value = 0.0;
        self.failed = None;
        self.in_results = false;
    }

    /// The sum of gradient tensor `k`, which is `ranges[k]` of a call's results, in f32 there
    /// if `narrowed[k]` (see `Kernel::call_part_into`).
    fn tensor<'s>(&'s self, k: usize, ranges: &[Range<usize>], narrowed: &[bool]) -> Term<'s> {
        match self.in_results {
            true => {
                let range = ranges.get(k).cloned().unwrap_or_default();
                let results = self.results.get(range.clone()).unwrap_or(&[]);
                match narrowed.get(k) {
                    Some(true) => Term::Narrow(ppl_runtime::narrow_view(results, range.len())),
                    _ => Term::Wide(results),
                }
            }
            false => Term::Wide(self.gradient.get(k).map_or(&[], Vec::as_slice)),
        }
    }
}

/// Adds a gradient, tensor by tensor, into `sums`, or with `first` into zeros: `0 + x` written
/// over what `sums` held, the bits of a sum that starts from zeros (-0 included, which becomes
/// 0) without a pass to clear it.
fn add_gradient<'x>(sums: &mut [Vec<f64>], terms: impl Iterator<Item = &'x [f64]>, first: bool) {
    for (sum, term) in sums.iter_mut().zip(terms) {
        if first {
            sum.iter_mut().zip(term).for_each(|(sum, x)| *sum = 0.0 + x);
        } else {
            sum.iter_mut().zip(term).for_each(|(sum, x)| *sum += x);
        }
    }
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
        // A training's own `precision` holds for its objectives and its optimizer, unless the
        // run's options fix one for everything.
        let precision = self.options.precision.or(settings.precision).unwrap_or_default();
        let around = std::mem::replace(&mut self.precision, precision);
        let trained = self.train_with(file, command, span, settings, started, emit);
        self.precision = around;
        trained
    }

    fn train_with(
        &mut self,
        file: usize,
        command: &'a Optimize,
        span: Span,
        settings: Settings,
        started: Instant,
        emit: &mut dyn FnMut(Output),
    ) -> Result<(), Diagnostic> {
        // Training streams depend only on the seed and on which training command this is, so
        // adding a `print` before a `maximize` does not change what it trains to.
        let command_index = self.trainings;
        if command_index >= MOST_TRAININGS {
            return Err(Diagnostic::error(ErrorCode::InvalidOption, "too many training commands in one run")
                .with_primary(span, format!("the {}th training command", command_index + 1))
                .with_note(format!("a run's random streams keep at most {MOST_TRAININGS} trainings apart")));
        }
        self.trainings += 1;
        let objectives = self.objectives(file, command, &settings)?;
        let minibatch = match command.objectives.first() {
            Some(first) => self.minibatch(file, &first.expr, settings.particles)?,
            None => None,
        };
        let mut groups = Vec::with_capacity(objectives.len());
        for objective in objectives {
            groups.push(self.group(command, objective, &settings, emit)?);
        }
        if self.precision == ppl_runtime::Precision::Single {
            let read_rounded = |p: usize| {
                let kernels = groups.iter().flat_map(|group| [Some(&group.executor), group.particles_at_once.as_ref()]);
                kernels.flatten().all(|executor| executor.kernel().reads_only_rounded(p))
            };
            let rounded_only: Vec<Vec<bool>> =
                groups.iter().map(|group| group.params.iter().map(|p| read_rounded(*p)).collect()).collect();
            for (group, rounded_only) in groups.iter_mut().zip(rounded_only) {
                group.rounded_only = rounded_only;
            }
        }
        if let Some(resume) =
            self.options.resume.as_ref().filter(|resume| resume.exact && !resume.optimizers.is_empty())
        {
            let misfit = |message: String| {
                Diagnostic::error(ErrorCode::ResumeMismatch, message).with_primary(span, "this training")
            };
            if resume.optimizers.len() != groups.len() {
                return Err(misfit(format!(
                    "the saved run trained {} objective(s) here, this command has {}",
                    resume.optimizers.len(),
                    groups.len()
                )));
            }
            if let Some(steps) = resume.steps.filter(|steps| *steps > settings.steps) {
                return Err(misfit(format!(
                    "the saved run took {steps} steps, more than this command's {}",
                    settings.steps
                )));
            }
        }
        if let Some(resume) = self.options.resume.as_ref() {
            for (group, state) in groups.iter_mut().zip(&resume.optimizers) {
                let schedule = Schedule::parse(&settings.schedule_text, settings.steps)
                    .map_err(|error| option_error(command, "schedule", &error.message))?;
                let sizes = group.optimizer.sizes().to_vec();
                group.optimizer = Optimizer::restore(settings.method, schedule, &sizes, state.clone())
                    .map_err(|error| option_error(command, "optimizer", &error.message))?
                    .in_precision(self.precision);
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
        // The first step runs on one thread and is timed: later steps use every thread if it
        // was slow enough for that to pay.
        let mut parallel = None;
        let mut time = TrainingTime { preparation: started.elapsed().as_secs_f64(), ..TrainingTime::default() };
        while step < settings.steps {
            if self.precision == ppl_runtime::Precision::Single {
                self.params.round();
            }
            let mut step_objective = 0.0;
            let mut step_norm = 0.0;
            let mut learning_rate = 0.0;
            let mut finite = true;
            let started = Instant::now();
            for (g, group) in groups.iter_mut().enumerate() {
                let parallel = parallel.unwrap_or(false);
                let (value, norm) =
                    self.step_gradient(group, &settings, command_index, g, step, parallel, sign, &mut time)?;
                // A finite norm is a sum of finite squares; the elements are looked at only
                // when it is not (it may also have overflowed).
                if !value.is_finite()
                    || !norm.is_finite() && !group.gradient.iter().all(|values| values.iter().all(|x| x.is_finite()))
                {
                    finite = false;
                    if !settings.skip_nan {
                        self.params.catch_up();
                        return Err(self.divergence(group, &settings, command_index, g, step, value));
                    }
                }
                if let Some(limit) = settings.clip {
                    let clipping = Instant::now();
                    clip_to(&mut group.gradient, norm, limit);
                    time.gradient_passes += clipping.elapsed().as_secs_f64();
                }
                step_norm += norm * norm;
                group.value = value;
                if g == 0 {
                    step_objective = value;
                    learning_rate = group.optimizer.learning_rate();
                }
            }
            parallel.get_or_insert_with(|| started.elapsed() > PARALLEL_STEP);
            let updating = Instant::now();
            if finite {
                // Each parameter moves where it lives: no copy of a network's weights per step.
                for group in &mut groups {
                    let pool = self.pool.as_deref().filter(|_| group.passes_in_parallel);
                    let params = &mut self.params;
                    let mut updates = || {
                        for (k, (p, gradient)) in group.params.iter().zip(&group.gradient).enumerate() {
                            // Single-precision products read the weights rounded: rounded as they
                            // move, and only so while nothing else reads them.
                            let rounded_only = group.rounded_only.get(k).copied().unwrap_or(false);
                            match rounded_only.then(|| params.rounded_mut(*p)).flatten() {
                                Some(rounded) => group.optimizer.update_rounded(k, rounded, gradient, pool),
                                None => {
                                    let (values, rounded) = params.get_mut_with_rounded(*p);
                                    group.optimizer.update(k, values, rounded, gradient, pool);
                                }
                            }
                        }
                    };
                    // As for the gradient's pass: the pool is entered once for every tensor.
                    match pool {
                        Some(pool) => pool.install(&mut updates),
                        None => updates(),
                    }
                    group.optimizer.finish_step();
                }
            } else {
                skipped += 1;
            }
            time.updates += updating.elapsed().as_secs_f64();
            step += 1;
            if finite {
                for group in &mut groups {
                    if group.values.len() == FINAL_WINDOW {
                        group.values.pop_front();
                    }
                    group.values.push_back(group.value);
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
                minibatch,
                time,
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
        self.params.catch_up();
        let trained: Vec<usize> = groups.iter().flat_map(|group| group.params.iter().copied()).collect();
        let objectives = groups
            .iter()
            .map(|group| {
                let mut last = Moments::new(1);
                for value in &group.values {
                    last.add(&[*value]);
                }
                TrainedObjective { source: group.source.clone(), statistic: last.statistic(0) }
            })
            .collect();
        let optimizers: Vec<OptimizerState> = groups.iter().map(|group| group.optimizer.state()).collect();
        // An interrupted run is saved at once, undiagnosed.
        let fit = match (settings.fit_draws, command.objectives.first()) {
            (0, _) | (_, None) => None,
            _ if reason == StopReason::Interrupted => None,
            (draws, Some(first)) => {
                let trained = groups
                    .iter()
                    .map(|group| fit::Trained {
                        executor: group.whole.as_ref().unwrap_or(&group.executor),
                        width: group.width,
                        params: group.params.iter().copied().zip(group.gradients.iter().cloned()).collect(),
                    })
                    .collect();
                Some(self.fit(file, &first.expr, trained, draws, settings.seed, command_index))
            }
        };
        emit(Output::Trained {
            source: self.source(span),
            direction: command.direction,
            steps: step,
            skipped,
            seconds: started.elapsed().as_secs_f64(),
            time,
            objectives,
            params: self.param_outputs(&trained),
            reason,
            optimizers,
            seed: settings.seed,
            fit,
        });
        Ok(())
    }

    /// Runs the step's particles and leaves the mean of their gradients (per parameter of the
    /// group) in `group.gradient`, times `sign` (-1 to maximise); returns their mean objective
    /// and the gradient's norm. Particles are summed in chunks, and the chunks in order, so the
    /// result does not depend on `parallel` or the number of threads.
    #[allow(clippy::too_many_arguments)]
    fn step_gradient(
        &mut self,
        group: &mut Group,
        settings: &Settings,
        command: u64,
        g: usize,
        step: u64,
        parallel: bool,
        sign: f64,
        time: &mut TrainingTime,
    ) -> Result<(f64, f64), Diagnostic> {
        let particles = settings.particles;
        // All particles in one call (on the first one's stream), or one per call.
        let (executor, calls, parts, narrowed) = match &group.particles_at_once {
            Some(executor) => (executor, 1, 1, &group.narrowed_at_once),
            None => (&group.executor, particles * u64::from(group.parts), group.parts, &group.narrowed),
        };
        let mut value = 0.0;
        let mut failed = None;
        let gradients = &group.gradients;
        let seed = settings.seed;
        let gradient = &mut group.gradient;
        let in_place = self.params.in_place();
        // A step of a few particles is one chunk by the usual rule; summed one call (particle,
        // or part of one) per chunk instead, it has the same bits (each chunk's sum starts from
        // 0, and 0 + x is x), and its calls can run on every thread: a minibatch objective's
        // few, costly ones. (With many particles, a chunk each would cost one more pass over the
        // gradient apiece.)
        let chunk = if calls <= FEW_PARTICLES * u64::from(parts) { 1 } else { CHUNK };
        // The chunks of a step that fits one round are summed after it, in the pass that takes
        // the mean (below); a chunk of one call then keeps the results the kernel wrote.
        let chunks = calls.div_ceil(chunk);
        let one_round = chunks <= group.round.len() as u64;
        let width = group.width;
        let mut first_chunk = true;
        // The calls and the pass run as one job of the pool's: its threads go from the parts
        // straight to the pass, instead of handing the step back to this thread in between and
        // being woken again (2.5–3.5 % of the calls and pass of the VAE's step). The norm, or
        // `None` if a call failed.
        let pool = self.pool.clone();
        let mut calls_and_pass = || -> Option<f64> {
            let calling = Instant::now();
            executor.run(
                in_place.values,
                calls,
                chunk,
                parallel,
                &mut group.round,
                |kernel, worker, indices, sums| {
                    sums.clear();
                    let first = indices.start;
                    if one_round && indices.end - first == 1 {
                        let (particle, part) = particle_and_part(first, parts);
                        let stream = training_stream(command, g, step, particles, particle);
                        sums.results.resize(width, 0.0);
                        // The weight gradients that products sum in f32 stay in f32 until the pass
                        // below adds them up: they are not widened to be read once.
                        if !kernel.call_part_into(worker, in_place, (seed, stream, part), &mut sums.results, true) {
                            sums.failed = Some(first);
                            return;
                        }
                        sums.value = sums.results.first().copied().unwrap_or(f64::NAN);
                        sums.in_results = true;
                        return;
                    }
                    for call in indices {
                        let (particle, part) = particle_and_part(call, parts);
                        let stream = training_stream(command, g, step, particles, particle);
                        if !kernel.call_part(worker, in_place, seed, stream, part) {
                            sums.failed = Some(call);
                            return;
                        }
                        let reals = kernel.reals(worker);
                        sums.value += reals.first().copied().unwrap_or(f64::NAN);
                        let terms = gradients.iter().map(|range| reals.get(range.clone()).unwrap_or(&[]));
                        add_gradient(&mut sums.gradient, terms, call == first);
                    }
                },
                |sums| {
                    value += sums.value;
                    if !one_round {
                        add_gradient(gradient, sums.gradient.iter().map(Vec::as_slice), first_chunk);
                        first_chunk = false;
                    }
                    failed = sums.failed;
                    failed.is_none()
                },
            );
            time.gradients += calling.elapsed().as_secs_f64();
            if failed.is_some() {
                return None;
            }
            // The mean over the particles, turned downhill: x / (±n) is ±(x / n), bit for bit,
            // and x / ±1 is ±x, so one pass sums the chunks, does both and takes the norm.
            let divisor = sign * particles as f64;
            group.passes_in_parallel = parallel && calls > 1 && group.width >= PARALLEL_PASS;
            // A pass in parallel runs within the step's job (`passes_in_parallel` needs
            // `parallel`): its tensors' blocks go to the pool's threads without waking them.
            let pass_pool = pool.as_deref().filter(|_| group.passes_in_parallel);
            let terms = match one_round {
                true => group.round.get(..chunks as usize).unwrap_or_default(),
                false => &[],
            };
            let passing = Instant::now();
            let norm =
                divide_and_norm(gradient, terms, |sums, k| sums.tensor(k, gradients, narrowed), divisor, pass_pool);
            time.gradient_passes += passing.elapsed().as_secs_f64();
            Some(norm)
        };
        let norm = match self.pool.as_deref().filter(|_| parallel) {
            Some(pool) => pool.install(&mut calls_and_pass),
            None => calls_and_pass(),
        };
        if let Some(call) = failed {
            self.params.catch_up();
            // The interpreter finds the failing particle (and part), each on its own stream.
            let mut candidates = match group.particles_at_once {
                Some(_) => 0..particles,
                None => call..call + 1,
            };
            let executor = &group.executor;
            let error = candidates.find_map(|call| {
                let (particle, part) = particle_and_part(call, group.parts);
                let stream = training_stream(command, g, step, particles, particle);
                executor.kernel().explain_part(self.params.flat(), seed, stream, part, false)
            });
            return Err(match error {
                Some(error) => runtime_error(error, Some(group.span), None),
                None => crate::lower::internal(Some(group.span), "native code failed where the interpreter did not"),
            });
        }
        Ok((value / particles as f64, norm.unwrap_or(f64::NAN)))
    }

    /// The report of a non-finite objective or gradient: the step, the parameters, and where
    /// the first NaN came from.
    fn divergence(
        &self,
        group: &Group,
        settings: &Settings,
        command: u64,
        g: usize,
        step: u64,
        value: f64,
    ) -> Diagnostic {
        let bad: Vec<&str> = group
            .params
            .iter()
            .zip(&group.gradient)
            .filter(|(_, g)| g.iter().any(|x| !x.is_finite()))
            .map(|(p, _)| self.program.params[*p].name.as_str())
            .collect();
        let origin = (0..settings.particles * u64::from(group.parts)).find_map(|call| {
            let (particle, part) = particle_and_part(call, group.parts);
            let stream = training_stream(command, g, step, settings.particles, particle);
            group.executor.kernel().explain_part(self.params.flat(), settings.seed, stream, part, true)
        });
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
            fit_draws: fit::DEFAULT_DRAWS,
            precision: None,
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
        if let Some(expr) = option("precision") {
            settings.precision = match string(expr).as_deref() {
                Some("f32") => Some(ppl_runtime::Precision::Single),
                Some("f64") => Some(ppl_runtime::Precision::Double),
                _ => return Err(option_error(command, "precision", "must be \"f32\" or \"f64\"")),
            };
        }
        if let Some(expr) = option("diagnostics") {
            settings.fit_draws = match self.number(file, expr)? {
                RuntimeValue::Int(n) if n == 0 || (2..=fit::MOST_DRAWS as i64).contains(&n) => n as u64,
                _ => {
                    let message = format!("must be 0 (none) or from 2 to {} draws", fit::MOST_DRAWS);
                    return Err(option_error(command, "diagnostics", &message));
                }
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
    /// How a `mean_over(…, batch: B)` or `sum_over(…, batch: B)` objective walks through its
    /// data set (for the progress display); `None` for other objectives.
    fn minibatch(&self, file: usize, objective: &'a Expr, particles: u64) -> Result<Option<Minibatch>, Diagnostic> {
        Ok(match self.over_rows(file, objective)? {
            Some(OverRows { rows, batch: Some(batch) }) => {
                Some(Minibatch { rows_per_step: batch.saturating_mul(particles), rows })
            }
            _ => None,
        })
    }

    fn objectives(
        &self,
        file: usize,
        command: &'a Optimize,
        settings: &Settings,
    ) -> Result<Vec<Objective>, Diagnostic> {
        let mut objectives = Vec::with_capacity(command.objectives.len());
        for objective in &command.objectives {
            let explicit: Option<Vec<usize>> = objective.wrt.as_ref().map(|names| {
                // A record parameter's name (or a part of it) stands for each leaf below it.
                let listed = |param: &str| {
                    names.iter().any(|name| {
                        param == name.name
                            || param.strip_prefix(name.name.as_str()).is_some_and(|rest| rest.starts_with('.'))
                    })
                };
                (0..self.program.params.len()).filter(|i| listed(&self.program.params[*i].name)).collect()
            });
            let parts = match self.over_rows(file, &objective.expr)? {
                Some(over) if over.batch.is_some() && !self.options.row_by_row => parts_of(over.rows_per_estimate()),
                _ => 1,
            };
            let estimator = match parts {
                1 => self.compile_for(file, &objective.expr, explicit.as_deref())?,
                _ => self.compile_parts(file, &objective.expr, explicit.as_deref(), parts)?,
            };
            let used = crate::ir::uses(&estimator.forward);
            let params: Vec<usize> = (0..self.program.params.len())
                .filter(|i| estimator.wrt[*i] && used.contains(&estimator.forward.body.params[*i]))
                .collect();
            if params.is_empty() {
                return Err(Diagnostic::error(ErrorCode::InvalidWrt, "this objective depends on no parameter")
                    .with_primary(objective.expr.span, "nothing here can be trained")
                    .with_help("a `param` must appear in the objective for training to change it"));
            }
            let particles_at_once = match u32::try_from(settings.particles) {
                Ok(particles) if parts == 1 => {
                    self.compile_particles(file, &objective.expr, explicit.as_deref(), particles)?
                }
                _ => None,
            };
            // The fit diagnostics take whole draws of the gradient.
            let whole = match parts > 1 && settings.fit_draws > 0 {
                true => Some(self.compile_for(file, &objective.expr, explicit.as_deref())?),
                false => None,
            };
            objectives.push(Objective {
                source: self.source(objective.expr.span),
                span: objective.expr.span,
                estimator,
                particles_at_once,
                parts,
                whole,
                params,
            });
        }
        Ok(objectives)
    }

    /// The executor, optimizer and step memory of one objective.
    fn group(
        &self,
        command: &Optimize,
        objective: Objective,
        settings: &Settings,
        emit: &mut dyn FnMut(Output),
    ) -> Result<Group, Diagnostic> {
        // The reverse program returns the objective, then one gradient per differentiated
        // parameter in order.
        let mut offset = 1;
        let mut gradients = vec![0..0; objective.params.len()];
        for index in (0..self.program.params.len()).filter(|i| objective.estimator.wrt[*i]) {
            let len = self.params.get(index).len();
            if let Some(position) = objective.params.iter().position(|p| *p == index) {
                gradients[position] = offset..offset + len;
            }
            offset += len;
        }
        let executor = self.executor(objective.estimator.reverse, &objective.source, emit)?;
        let particles_at_once = match objective.particles_at_once {
            Some(estimator) => Some(self.executor(estimator.reverse, &objective.source, emit)?),
            None => None,
        };
        let narrowed_by = |executor: &Executor| -> Vec<bool> {
            gradients.iter().map(|range| executor.kernel().narrowable().contains(range)).collect()
        };
        let narrowed = narrowed_by(&executor);
        let narrowed_at_once = particles_at_once.as_ref().map_or_else(Vec::new, narrowed_by);
        let whole = match objective.whole {
            Some(estimator) => Some(self.executor(estimator.reverse, &objective.source, emit)?),
            None => None,
        };
        let zeros: Vec<Vec<f64>> = objective.params.iter().map(|p| vec![0.0; self.params.get(*p).len()]).collect();
        let sizes: Vec<usize> = zeros.iter().map(Vec::len).collect();
        let schedule = Schedule::parse(&settings.schedule_text, settings.steps)
            .map_err(|error| option_error(command, "schedule", &error.message))?;
        // Threads sum chunks side by side: keep each chunk's sums off the others' cache lines.
        let apart = || sizes.iter().map(|size| ppl_runtime::memory::zeros_apart(*size)).collect();
        let round = executor.round(sizes.iter().sum::<usize>() + 1, || ParticleSums {
            value: 0.0,
            gradient: apart(),
            results: Vec::new(),
            in_results: false,
            failed: None,
        });
        Ok(Group {
            source: objective.source,
            span: objective.span,
            executor,
            parts: objective.parts,
            whole,
            particles_at_once,
            params: objective.params,
            gradients,
            narrowed,
            narrowed_at_once,
            width: offset,
            rounded_only: Vec::new(),
            optimizer: Optimizer::new(settings.method, schedule, &sizes).in_precision(self.precision),
            value: f64::NAN,
            values: VecDeque::with_capacity(FINAL_WINDOW),
            gradient: zeros,
            round,
            passes_in_parallel: false,
        })
    }

    /// An executor of `function` (natively compiled unless the run interprets).
    fn executor(
        &self,
        function: crate::ir::Function,
        source: &str,
        emit: &mut dyn FnMut(Output),
    ) -> Result<Executor, Diagnostic> {
        let native = self.native(&function, source, emit)?;
        Ok(Executor::new(Kernel::new(function, native), self.pool.clone()))
    }
}

/// The stream of one particle of one step of one objective of a training command: the top bit
/// sets training streams apart from those of `estimate`, `grad` and `sample`.
fn training_stream(command: u64, objective: usize, step: u64, particles: u64, particle: u64) -> u64 {
    TRAINING_STREAMS | (command << 48) | ((objective as u64) << 40) | (step * particles + particle)
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
