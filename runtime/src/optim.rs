//! The optimizers training (`maximize` / `minimize`) uses: update rules, learning-rate
//! schedules, gradient clipping, and checkpointing of optimizer state.
//!
//! Parameters are plain storage: each parameter is a flat slice of `f64` (a real is a slice of
//! one), and [`Optimizer::step`] takes gradients of the same shapes. An optimizer keeps its
//! state and computes in f64, or in f32 ([`Optimizer::in_precision`]) as JAX and PyTorch train
//! f32 networks: it then leaves f32 values in the parameters' f64 storage. Every [`Method`] follows
//! PyTorch's documented algorithm for that optimizer with the same settings (no dampening, no
//! AMSGrad, not centred, weight decay only as AdamW's decoupled one), so hyperparameters carry
//! over from PyTorch code and papers unchanged. One departure, as JAX on a CPU (which flushes
//! subnormal numbers to zero): a running average that decays into the subnormal range is set to
//! zero. A weight whose gradient stays zero for a while (a pixel that is almost always off)
//! would otherwise keep a first moment that takes some 150 steps (in f32) to decay through that
//! range, and arithmetic on subnormal numbers costs many times the normal: the VAE's 0.8 % of
//! such weights made its whole f32 update 40–65 % slower. What such a moment would move a
//! weight by (under 10⁻³⁰ times the learning rate) is far below a rounding of the weight.
//!
//! This module owns the arithmetic and the state it needs; it does not compute gradients, decide
//! when to stop, or deal with non-finite gradients. The training loop must screen those (its
//! `on_nan` policy) *before* calling [`Optimizer::step`], because a NaN that reaches the moment
//! buffers stays there for every later step.
//!
//! Powers and cosines go through `libm`, as in the rest of the runtime, so a run — and a run
//! resumed from [`Optimizer::state`] — produces the same bits on every platform.
//!
//! ```
//! use ppl_runtime::optim::{clip_by_norm, Method, Optimizer, Schedule};
//!
//! // Minimise (x − 3)² with Adam and a cosine-annealed learning rate.
//! let method = Method::from_settings("adam", &[("lr", 0.1)])?;
//! let schedule = Schedule::parse("cosine", 2000)?;
//! let mut optimizer = Optimizer::new(method, schedule, &[1]);
//! let mut params = vec![vec![0.0]];
//! for _ in 0..2000 {
//!     let mut grads = vec![vec![2.0 * (params[0][0] - 3.0)]];
//!     clip_by_norm(&mut grads, 10.0);
//!     optimizer.step(&mut params, &grads);
//! }
//! assert!((params[0][0] - 3.0).abs() < 1e-6);
//! # Ok::<(), ppl_runtime::optim::OptimError>(())
//! ```

use std::convert::Infallible;
use std::f64::consts::PI;
use std::fmt;

use crate::linalg::Element;
use crate::single::{convert, ConvertFrom};
use crate::Precision;

/// A bad optimizer setting, schedule or checkpoint, with a message naming what is wrong,
/// e.g. `adam: beta1 must be in [0, 1), got 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptimError {
    /// The whole message, ready to show to the user.
    pub message: String,
}

impl OptimError {
    fn new(message: impl Into<String>) -> OptimError {
        OptimError { message: message.into() }
    }
}

impl fmt::Display for OptimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OptimError {}

/// An update rule and its hyperparameters. Each is PyTorch's optimizer of the same name, and
/// [`Method::from_settings`] fills in PyTorch's defaults for everything but `lr`.
///
/// In the formulas, g is the gradient, t the 1-based step number and lr the scheduled learning
/// rate; all operations are elementwise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    /// Stochastic gradient descent, optionally with (Nesterov) momentum:
    /// b ← g at t = 1, else b ← μ·b + g; θ ← θ − lr·(nesterov ? g + μ·b : b).
    /// Without momentum (μ = 0), θ ← θ − lr·g. Defaults: momentum 0, nesterov off.
    Sgd { lr: f64, momentum: f64, nesterov: bool },
    /// Adam with bias correction: m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g²,
    /// θ ← θ − (lr / (1−β₁ᵗ))·m / (√v / √(1−β₂ᵗ) + ε). Defaults: β₁ 0.9, β₂ 0.999, ε 1e-8.
    Adam { lr: f64, beta1: f64, beta2: f64, eps: f64 },
    /// Adam with decoupled weight decay: θ ← θ·(1 − lr·weight_decay), then the Adam update.
    /// Defaults as Adam, and weight_decay 0.01.
    AdamW { lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64 },
    /// RMSprop: v ← αv + (1−α)g²; without momentum θ ← θ − lr·g / (√v + ε), with momentum
    /// b ← μ·b + g / (√v + ε), θ ← θ − lr·b. Defaults: α 0.99, ε 1e-8, momentum 0.
    RmsProp { lr: f64, alpha: f64, eps: f64, momentum: f64 },
    /// Adagrad: s ← s + g², θ ← θ − lr·g / (√s + ε). Default: ε 1e-10.
    Adagrad { lr: f64, eps: f64 },
}

/// The optimizer names [`Method::from_settings`] accepts, for error messages.
const METHOD_NAMES: &str = "sgd, adam, adamw, rmsprop, adagrad";

/// Where a numeric setting must lie. None admits NaN or ∞.
#[derive(Clone, Copy)]
enum Range {
    /// Finite and > 0 (learning rates, ε).
    Positive,
    /// Finite and ≥ 0 (weight decay, a minimum learning rate).
    NonNegative,
    /// [0, 1): decay factors of running averages, and momentum (at 1 or above it never forgets
    /// and the iterates diverge).
    UnitInterval,
    /// (0, 1]: per-step decay factors of a schedule (above 1 the learning rate would grow).
    Decay,
}

impl Range {
    fn admits(self, value: f64) -> bool {
        match self {
            Range::Positive => value > 0.0 && value.is_finite(),
            Range::NonNegative => value >= 0.0 && value.is_finite(),
            Range::UnitInterval => (0.0..1.0).contains(&value),
            Range::Decay => value > 0.0 && value <= 1.0,
        }
    }

    /// What a value must satisfy, phrased to follow "must".
    fn requirement(self) -> &'static str {
        match self {
            Range::Positive => "be finite and > 0",
            Range::NonNegative => "be finite and >= 0",
            Range::UnitInterval => "be in [0, 1)",
            Range::Decay => "be in (0, 1]",
        }
    }
}

/// Checks one setting, naming the owner (`adam`, `schedule step`) and the setting on failure.
fn require(owner: &str, setting: &str, value: f64, range: Range) -> Result<(), OptimError> {
    if range.admits(value) {
        Ok(())
    } else {
        Err(OptimError::new(format!("{owner}: {setting} must {}, got {value}", range.requirement())))
    }
}

/// The `(name, value)` settings given for one optimizer, checked against the names it accepts.
struct Settings<'s> {
    method: &'static str,
    given: &'s [(&'s str, f64)],
}

impl<'s> Settings<'s> {
    /// Rejects a setting the method does not have, or one given twice.
    fn new(method: &'static str, accepted: &[&str], given: &'s [(&'s str, f64)]) -> Result<Settings<'s>, OptimError> {
        for (index, (name, _)) in given.iter().enumerate() {
            if !accepted.contains(name) {
                return Err(OptimError::new(format!(
                    "{method} has no setting `{name}`; its settings are {}",
                    accepted.join(", ")
                )));
            }
            if given[..index].iter().any(|(earlier, _)| earlier == name) {
                return Err(OptimError::new(format!("{method}: setting `{name}` is given twice")));
            }
        }
        Ok(Settings { method, given })
    }

    fn get(&self, name: &str) -> Option<f64> {
        self.given.iter().find(|(given, _)| *given == name).map(|&(_, value)| value)
    }

    fn or(&self, name: &str, default: f64) -> f64 {
        self.get(name).unwrap_or(default)
    }

    fn learning_rate(&self) -> Result<f64, OptimError> {
        self.get("lr").ok_or_else(|| OptimError::new(format!("{}: the learning rate `lr` is required", self.method)))
    }

    /// A boolean setting passed as a number: 0 is false, 1 is true, anything else an error.
    fn flag(&self, name: &str) -> Result<bool, OptimError> {
        match self.get(name) {
            None => Ok(false),
            Some(0.0) => Ok(false),
            Some(1.0) => Ok(true),
            Some(value) => {
                Err(OptimError::new(format!("{}: {name} must be 0 (false) or 1 (true), got {value}", self.method)))
            }
        }
    }
}

impl Method {
    /// Builds a method from the language's `optimizer:` call, e.g. `("sgd", [("lr", 0.1),
    /// ("momentum", 0.9), ("nesterov", 1.0)])`, with PyTorch's defaults for omitted settings.
    ///
    /// Errors for an unknown optimizer or setting, a setting given twice, a missing `lr`, or a
    /// value outside its range (see [`Method::validate`]); the message names the setting.
    pub fn from_settings(name: &str, settings: &[(&str, f64)]) -> Result<Method, OptimError> {
        let method = match name {
            "sgd" => {
                let settings = Settings::new("sgd", &["lr", "momentum", "nesterov"], settings)?;
                Method::Sgd {
                    lr: settings.learning_rate()?,
                    momentum: settings.or("momentum", 0.0),
                    nesterov: settings.flag("nesterov")?,
                }
            }
            "adam" => {
                let settings = Settings::new("adam", &["lr", "beta1", "beta2", "eps"], settings)?;
                Method::Adam {
                    lr: settings.learning_rate()?,
                    beta1: settings.or("beta1", 0.9),
                    beta2: settings.or("beta2", 0.999),
                    eps: settings.or("eps", 1e-8),
                }
            }
            "adamw" => {
                let settings = Settings::new("adamw", &["lr", "beta1", "beta2", "eps", "weight_decay"], settings)?;
                Method::AdamW {
                    lr: settings.learning_rate()?,
                    beta1: settings.or("beta1", 0.9),
                    beta2: settings.or("beta2", 0.999),
                    eps: settings.or("eps", 1e-8),
                    weight_decay: settings.or("weight_decay", 0.01),
                }
            }
            "rmsprop" => {
                let settings = Settings::new("rmsprop", &["lr", "alpha", "eps", "momentum"], settings)?;
                Method::RmsProp {
                    lr: settings.learning_rate()?,
                    alpha: settings.or("alpha", 0.99),
                    eps: settings.or("eps", 1e-8),
                    momentum: settings.or("momentum", 0.0),
                }
            }
            "adagrad" => {
                let settings = Settings::new("adagrad", &["lr", "eps"], settings)?;
                Method::Adagrad { lr: settings.learning_rate()?, eps: settings.or("eps", 1e-10) }
            }
            _ => return Err(OptimError::new(format!("unknown optimizer `{name}`; expected one of {METHOD_NAMES}"))),
        };
        method.validate()?;
        Ok(method)
    }

    /// Checks every hyperparameter: `lr` and `eps` finite and > 0; `beta1`, `beta2`, `alpha`
    /// and `momentum` in [0, 1); `weight_decay` finite and ≥ 0; `nesterov` only with momentum > 0.
    ///
    /// [`Method::from_settings`] calls this; a method built directly should be checked too, since
    /// [`Optimizer::new`] takes its hyperparameters as given.
    pub fn validate(&self) -> Result<(), OptimError> {
        let name = self.name();
        require(name, "lr", self.learning_rate(), Range::Positive)?;
        match *self {
            Method::Sgd { momentum, nesterov, .. } => {
                require(name, "momentum", momentum, Range::UnitInterval)?;
                if nesterov && momentum == 0.0 {
                    return Err(OptimError::new("sgd: nesterov needs momentum > 0"));
                }
            }
            Method::Adam { beta1, beta2, eps, .. } => {
                require(name, "beta1", beta1, Range::UnitInterval)?;
                require(name, "beta2", beta2, Range::UnitInterval)?;
                require(name, "eps", eps, Range::Positive)?;
            }
            Method::AdamW { beta1, beta2, eps, weight_decay, .. } => {
                require(name, "beta1", beta1, Range::UnitInterval)?;
                require(name, "beta2", beta2, Range::UnitInterval)?;
                require(name, "eps", eps, Range::Positive)?;
                require(name, "weight_decay", weight_decay, Range::NonNegative)?;
            }
            Method::RmsProp { alpha, eps, momentum, .. } => {
                require(name, "alpha", alpha, Range::UnitInterval)?;
                require(name, "eps", eps, Range::Positive)?;
                require(name, "momentum", momentum, Range::UnitInterval)?;
            }
            Method::Adagrad { eps, .. } => require(name, "eps", eps, Range::Positive)?,
        }
        Ok(())
    }

    /// The name the language uses for this method: `"sgd"`, `"adam"`, `"adamw"`, `"rmsprop"`
    /// or `"adagrad"`.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Sgd { .. } => "sgd",
            Method::Adam { .. } => "adam",
            Method::AdamW { .. } => "adamw",
            Method::RmsProp { .. } => "rmsprop",
            Method::Adagrad { .. } => "adagrad",
        }
    }

    /// The base learning rate `lr`, before any schedule.
    pub fn learning_rate(&self) -> f64 {
        match *self {
            Method::Sgd { lr, .. }
            | Method::Adam { lr, .. }
            | Method::AdamW { lr, .. }
            | Method::RmsProp { lr, .. }
            | Method::Adagrad { lr, .. } => lr,
        }
    }
}

/// How the learning rate changes with the number of steps already taken, `step` (0 for the
/// first update). Each matches the PyTorch scheduler of the same idea stepped once per update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// lr at every step.
    Constant,
    /// lr · rate^step (PyTorch `ExponentialLR`).
    ExponentialDecay { rate: f64 },
    /// Cosine annealing from lr at step 0 to `min_lr` at `total_steps`:
    /// min_lr + (lr − min_lr)·(1 + cos(π·step / total_steps)) / 2, and `min_lr` from
    /// `total_steps` on (PyTorch `CosineAnnealingLR` without its restart past the end).
    Cosine { total_steps: u64, min_lr: f64 },
    /// lr · factor^⌊step / every⌋ (PyTorch `StepLR`).
    Step { every: u64, factor: f64 },
}

/// The schedule forms [`Schedule::parse`] accepts, for error messages.
const SCHEDULE_FORMS: &str = "constant, exponential(rate), cosine, cosine(min_lr) or step(every, factor)";

impl Schedule {
    /// Parses the language's `schedule:` string: `"constant"`, `"exponential(0.999)"`,
    /// `"cosine"` (annealing to 0), `"cosine(0.0001)"` (annealing to that minimum learning rate),
    /// `"step(1000, 0.5)"`. Spaces are allowed around names, brackets and arguments.
    /// `total_steps` is the run's step count, over which `cosine` anneals.
    ///
    /// Errors name what is wrong: an unknown schedule, a missing bracket, the wrong number of
    /// arguments, something that is not a number, or a value out of range (see
    /// [`Schedule::validate`]).
    pub fn parse(text: &str, total_steps: u64) -> Result<Schedule, OptimError> {
        let trimmed = text.trim();
        let fail = |problem: String| OptimError::new(format!("schedule `{trimmed}`: {problem}"));
        let (name, arguments): (&str, Vec<&str>) = match trimmed.split_once('(') {
            None => (trimmed, Vec::new()),
            Some((name, rest)) => {
                let Some(inside) = rest.trim_end().strip_suffix(')') else {
                    return Err(fail("expected `)` at the end".to_string()));
                };
                let arguments =
                    if inside.trim().is_empty() { Vec::new() } else { inside.split(',').map(str::trim).collect() };
                (name.trim_end(), arguments)
            }
        };
        let expect_count = |allowed: &[usize], signature: &str| {
            if allowed.contains(&arguments.len()) {
                Ok(())
            } else {
                Err(fail(format!("{name} takes {signature}, got {} argument(s)", arguments.len())))
            }
        };
        let number = |index: usize, setting: &str| -> Result<f64, OptimError> {
            let argument = arguments.get(index).copied().unwrap_or_default();
            argument.parse::<f64>().map_err(|_| fail(format!("{setting} must be a number, got `{argument}`")))
        };
        let schedule = match name {
            "constant" => {
                expect_count(&[0], "no arguments")?;
                Schedule::Constant
            }
            "exponential" => {
                expect_count(&[1], "one argument (the decay rate per step)")?;
                Schedule::ExponentialDecay { rate: number(0, "rate")? }
            }
            "cosine" => {
                expect_count(&[0, 1], "at most one argument (the minimum learning rate)")?;
                let min_lr = if arguments.is_empty() { 0.0 } else { number(0, "min_lr")? };
                Schedule::Cosine { total_steps, min_lr }
            }
            "step" => {
                expect_count(&[2], "two arguments (every, factor)")?;
                let every_text = arguments.first().copied().unwrap_or_default();
                let every = every_text
                    .parse::<u64>()
                    .map_err(|_| fail(format!("every must be a whole number of steps >= 1, got `{every_text}`")))?;
                Schedule::Step { every, factor: number(1, "factor")? }
            }
            "" if trimmed.is_empty() => {
                return Err(OptimError::new(format!("empty schedule; expected {SCHEDULE_FORMS}")))
            }
            "" => return Err(fail(format!("missing the schedule's name; expected {SCHEDULE_FORMS}"))),
            _ => return Err(fail(format!("unknown schedule `{name}`; expected {SCHEDULE_FORMS}"))),
        };
        schedule.validate().map_err(|error| fail(error.message))?;
        Ok(schedule)
    }

    /// Checks the schedule's values: `rate` and `factor` in (0, 1], `every` and `total_steps`
    /// ≥ 1, `min_lr` finite and ≥ 0. [`Schedule::parse`] calls this.
    pub fn validate(&self) -> Result<(), OptimError> {
        match *self {
            Schedule::Constant => Ok(()),
            Schedule::ExponentialDecay { rate } => require("exponential", "rate", rate, Range::Decay),
            Schedule::Cosine { total_steps, min_lr } => {
                if total_steps == 0 {
                    return Err(OptimError::new("cosine: total_steps must be >= 1, got 0"));
                }
                require("cosine", "min_lr", min_lr, Range::NonNegative)
            }
            Schedule::Step { every, factor } => {
                if every == 0 {
                    return Err(OptimError::new("step: every must be a whole number of steps >= 1, got 0"));
                }
                require("step", "factor", factor, Range::Decay)
            }
        }
    }

    /// The learning rate for the update after `step` updates have been taken, given the base
    /// learning rate `lr`.
    ///
    /// Never panics or divides by zero, even for a schedule [`Schedule::validate`] rejects:
    /// `Step` with `every` = 0 never decays and `Cosine` with `total_steps` = 0 is at `min_lr`.
    pub fn learning_rate(&self, lr: f64, step: u64) -> f64 {
        match *self {
            Schedule::Constant => lr,
            // Step counts stay far below 2^53, so `as f64` is exact.
            Schedule::ExponentialDecay { rate } => lr * libm::pow(rate, step as f64),
            Schedule::Cosine { total_steps, min_lr } => {
                if step >= total_steps {
                    return min_lr;
                }
                let progress = step as f64 / total_steps as f64;
                min_lr + (lr - min_lr) * (1.0 + libm::cos(PI * progress)) / 2.0
            }
            Schedule::Step { every, factor } => match step.checked_div(every) {
                Some(decays) => lr * libm::pow(factor, decays as f64),
                None => lr,
            },
        }
    }
}

/// One state buffer: a `Vec` per parameter, each as long as the parameter.
type Buffer<T> = Vec<Vec<T>>;

/// The per-method hyperparameters `step` reads, next to the buffers that method keeps — one
/// enum, so the buffers can never belong to a different method than the rule using them. `T` is
/// the precision of the buffers and of the arithmetic ([`State`]).
#[derive(Debug, Clone, PartialEq)]
enum Rule<T> {
    Sgd {
        momentum: f64,
        nesterov: bool,
        momentum_buffer: Option<Buffer<T>>,
    },
    /// Adam is AdamW with `weight_decay` 0: the decay factor is then exactly 1, so the bits agree.
    Adam {
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
        exp_avg: Buffer<T>,
        exp_avg_sq: Buffer<T>,
    },
    RmsProp {
        alpha: f64,
        eps: f64,
        momentum: f64,
        square_avg: Buffer<T>,
        momentum_buffer: Option<Buffer<T>>,
    },
    Adagrad {
        eps: f64,
        sum: Buffer<T>,
    },
}

impl<T> Rule<T> {
    /// The rule for `method`, each buffer obtained from `buffer(name)` (PyTorch's state names).
    /// Momentum buffers exist only when momentum > 0, as in PyTorch.
    fn build<E>(method: Method, mut buffer: impl FnMut(&'static str) -> Result<Buffer<T>, E>) -> Result<Rule<T>, E> {
        Ok(match method {
            Method::Sgd { momentum, nesterov, .. } => Rule::Sgd {
                momentum,
                nesterov,
                momentum_buffer: if momentum > 0.0 { Some(buffer("momentum_buffer")?) } else { None },
            },
            Method::Adam { beta1, beta2, eps, .. } => Rule::Adam {
                beta1,
                beta2,
                eps,
                weight_decay: 0.0,
                exp_avg: buffer("exp_avg")?,
                exp_avg_sq: buffer("exp_avg_sq")?,
            },
            Method::AdamW { beta1, beta2, eps, weight_decay, .. } => Rule::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
                exp_avg: buffer("exp_avg")?,
                exp_avg_sq: buffer("exp_avg_sq")?,
            },
            Method::RmsProp { alpha, eps, momentum, .. } => Rule::RmsProp {
                alpha,
                eps,
                momentum,
                square_avg: buffer("square_avg")?,
                momentum_buffer: if momentum > 0.0 { Some(buffer("momentum_buffer")?) } else { None },
            },
            Method::Adagrad { eps, .. } => Rule::Adagrad { eps, sum: buffer("sum")? },
        })
    }

    /// The buffers with their names, in a fixed order.
    fn named_buffers(&self) -> Vec<(&'static str, &Buffer<T>)> {
        let mut named = Vec::new();
        match self {
            Rule::Sgd { momentum_buffer, .. } => named.extend(momentum_buffer.iter().map(|b| ("momentum_buffer", b))),
            Rule::Adam { exp_avg, exp_avg_sq, .. } => {
                named.push(("exp_avg", exp_avg));
                named.push(("exp_avg_sq", exp_avg_sq));
            }
            Rule::RmsProp { square_avg, momentum_buffer, .. } => {
                named.push(("square_avg", square_avg));
                named.extend(momentum_buffer.iter().map(|b| ("momentum_buffer", b)));
            }
            Rule::Adagrad { sum, .. } => named.push(("sum", sum)),
        }
        named
    }

    /// The same rule with every buffer's elements converted.
    fn convert<U>(self, element: impl Fn(T) -> U + Copy) -> Rule<U> {
        let buffer = |buffer: Buffer<T>| -> Buffer<U> {
            buffer.into_iter().map(|values| values.into_iter().map(element).collect()).collect()
        };
        match self {
            Rule::Sgd { momentum, nesterov, momentum_buffer } => {
                Rule::Sgd { momentum, nesterov, momentum_buffer: momentum_buffer.map(buffer) }
            }
            Rule::Adam { beta1, beta2, eps, weight_decay, exp_avg, exp_avg_sq } => {
                Rule::Adam { beta1, beta2, eps, weight_decay, exp_avg: buffer(exp_avg), exp_avg_sq: buffer(exp_avg_sq) }
            }
            Rule::RmsProp { alpha, eps, momentum, square_avg, momentum_buffer } => Rule::RmsProp {
                alpha,
                eps,
                momentum,
                square_avg: buffer(square_avg),
                momentum_buffer: momentum_buffer.map(buffer),
            },
            Rule::Adagrad { eps, sum } => Rule::Adagrad { eps, sum: buffer(sum) },
        }
    }
}

/// An optimizer's rule in the precision it keeps its state and computes its updates in.
#[derive(Debug, Clone, PartialEq)]
enum State {
    Double(Rule<f64>),
    Single(Rule<f32>),
}

/// Everything an [`Optimizer`] needs to resume bit-identically, as named flat `f64` buffers the
/// caller can serialise however it likes (`f64` values must round-trip exactly, as Rust's
/// `{}`/`{:?}` formatting and `str::parse` do).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OptimizerState {
    /// Updates taken so far: the schedule's position and Adam's bias-correction exponent.
    pub steps_taken: u64,
    /// Each buffer under PyTorch's name for it, with one `Vec` per parameter: `momentum_buffer`
    /// (SGD and RMSprop with momentum), `exp_avg` and `exp_avg_sq` (Adam, AdamW), `square_avg`
    /// (RMSprop), `sum` (Adagrad). Plain SGD has none.
    pub buffers: Vec<(String, Vec<Vec<f64>>)>,
}

/// An update rule with its schedule and state, for a fixed list of parameter shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct Optimizer {
    method: Method,
    schedule: Schedule,
    sizes: Vec<usize>,
    steps_taken: u64,
    state: State,
}

impl Optimizer {
    /// A fresh optimizer for parameters of the given lengths, its buffers all zero.
    ///
    /// The method and schedule are used as given; check them first with [`Method::validate`]
    /// and [`Schedule::validate`] (or build them with `from_settings` and `parse`, which do).
    pub fn new(method: Method, schedule: Schedule, sizes: &[usize]) -> Optimizer {
        let zeros = || -> Buffer<f64> { sizes.iter().map(|&size| vec![0.0; size]).collect() };
        let Ok(rule) = Rule::build::<Infallible>(method, |_| Ok(zeros()));
        Optimizer { method, schedule, sizes: sizes.to_vec(), steps_taken: 0, state: State::Double(rule) }
    }

    /// This optimizer with its state kept, and its updates computed, in `precision`, as JAX and
    /// PyTorch train networks in f32: [`Precision::Single`] rounds the state to f32 (widening it
    /// back is exact), and from then on every update reads the parameter's value rounded to f32,
    /// computes in f32 and leaves an f32 value, which the parameter's f64 storage holds exactly.
    /// New optimizers and restored ones compute in f64.
    pub fn in_precision(self, precision: Precision) -> Optimizer {
        let state = match (self.state, precision) {
            (State::Double(rule), Precision::Single) => State::Single(rule.convert(|x| x as f32)),
            (State::Single(rule), Precision::Double) => State::Double(rule.convert(f64::from)),
            (state, _) => state,
        };
        Optimizer { state, ..self }
    }

    /// The precision of the state and the updates ([`Optimizer::in_precision`]).
    pub fn precision(&self) -> Precision {
        match self.state {
            State::Double(_) => Precision::Double,
            State::Single(_) => Precision::Single,
        }
    }

    /// Resumes from a [`Optimizer::state`] checkpoint, for parameters of the given lengths (those
    /// of the program being resumed, which a stale checkpoint may not match).
    ///
    /// Errors if the state lacks a buffer `method` needs, has one it does not use or has one
    /// twice (e.g. it was saved with a different optimizer, or with momentum on and resumed with it
    /// off), or if a buffer's shape differs from `sizes`. Hyperparameters may differ from the
    /// saved run's: that is how one changes, say, the learning rate on resuming.
    pub fn restore(
        method: Method,
        schedule: Schedule,
        sizes: &[usize],
        state: OptimizerState,
    ) -> Result<Optimizer, OptimError> {
        let OptimizerState { steps_taken, mut buffers } = state;
        for (index, (name, _)) in buffers.iter().enumerate() {
            if buffers[..index].iter().any(|(earlier, _)| earlier == name) {
                return Err(OptimError::new(format!("optimizer state: buffer `{name}` appears twice")));
            }
        }
        let rule = Rule::build(method, |wanted| {
            let Some(position) = buffers.iter().position(|(name, _)| name == wanted) else {
                return Err(OptimError::new(format!(
                    "optimizer state has no `{wanted}` buffer, which {} needs here (was it saved with other settings?)",
                    method.name()
                )));
            };
            let (_, buffer) = buffers.swap_remove(position);
            check_buffer_shape(wanted, &buffer, sizes)?;
            Ok(buffer)
        })?;
        if let Some((unused, _)) = buffers.first() {
            return Err(OptimError::new(format!(
                "optimizer state has a `{unused}` buffer, which {} does not use here (was it saved with other settings?)",
                method.name()
            )));
        }
        Ok(Optimizer { method, schedule, sizes: sizes.to_vec(), steps_taken, state: State::Double(rule) })
    }

    /// A checkpoint from which [`Optimizer::restore`] resumes bit-identically (followed by
    /// [`Optimizer::in_precision`] for an optimizer in single precision, whose state widens to
    /// f64 and rounds back exactly).
    pub fn state(&self) -> OptimizerState {
        let buffers = match &self.state {
            State::Double(rule) => {
                rule.named_buffers().into_iter().map(|(name, buffer)| (name.to_string(), buffer.clone())).collect()
            }
            State::Single(rule) => rule
                .named_buffers()
                .into_iter()
                .map(|(name, buffer)| {
                    let wide = buffer.iter().map(|values| values.iter().copied().map(f64::from).collect());
                    (name.to_string(), wide.collect())
                })
                .collect(),
        };
        OptimizerState { steps_taken: self.steps_taken, buffers }
    }

    /// The update rule and its hyperparameters.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The learning-rate schedule.
    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    /// The length of each parameter, as given to [`Optimizer::new`] or [`Optimizer::restore`].
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// The learning rate the next [`Optimizer::step`] will use.
    pub fn learning_rate(&self) -> f64 {
        self.schedule.learning_rate(self.method.learning_rate(), self.steps_taken)
    }

    /// Updates taken so far.
    pub fn steps_taken(&self) -> u64 {
        self.steps_taken
    }

    /// One minimisation step: `params[k]` moves against `grads[k]` by the method's rule at the
    /// scheduled learning rate. Callers maximising pass negated gradients.
    ///
    /// Gradients are used as given: screen out NaN and ∞ before calling (see the module docs),
    /// and clip with [`clip_by_norm`] if wanted.
    ///
    /// # Panics
    ///
    /// If `params` or `grads` do not have the lengths given by [`Optimizer::sizes`]. Those come
    /// from the caller's own parameter list, never from user input (a checkpoint of the wrong
    /// shape is rejected by [`Optimizer::restore`] instead), so a mismatch is a bug to surface.
    pub fn step(&mut self, params: &mut [Vec<f64>], grads: &[Vec<f64>]) {
        // Compared without allocating: a training step allocates nothing.
        let fits = |vectors: &[Vec<f64>]| vectors.iter().map(Vec::len).eq(self.sizes.iter().copied());
        if !(fits(params) && fits(grads)) {
            let lengths = |vectors: &[Vec<f64>]| vectors.iter().map(Vec::len).collect::<Vec<_>>();
            panic!(
                "Optimizer::step: parameter lengths {:?} and gradient lengths {:?} differ from the optimizer's {:?}",
                lengths(params),
                lengths(grads),
                self.sizes
            );
        }
        for (k, (param, grad)) in params.iter_mut().zip(grads).enumerate() {
            self.update(k, param, None, grad, None);
        }
        self.finish_step();
    }

    /// Parameter `k`'s part of a step, on its values where they live: call it for every
    /// parameter, in any order, then [`Optimizer::finish_step`] ([`Optimizer::step`] does both,
    /// and a training loop that keeps its parameters elsewhere copies nothing). Each update is a
    /// loop over slices the compiler runs at full vector width; with a `pool`, Adam's runs in
    /// blocks on its threads, each element's arithmetic unchanged.
    ///
    /// `rounded`, if given, holds the parameter's values rounded to f32
    /// ([`crate::round_to_single`]), for products in single precision, and is kept so: Adam in
    /// the same pass, the other rules in one more. In single precision
    /// ([`Optimizer::in_precision`]) the update reads the values there instead of rounding them
    /// (without one it rounds them into memory of its own, allocated for the call).
    ///
    /// # Panics
    ///
    /// If `param`, `rounded` and `grad` do not have parameter `k`'s length
    /// ([`Optimizer::sizes`]): a bug in the caller, as for [`Optimizer::step`].
    pub fn update(
        &mut self,
        k: usize,
        param: &mut [f64],
        rounded: Option<&mut [f32]>,
        grad: &[f64],
        pool: Option<&rayon::ThreadPool>,
    ) {
        let rounded_fits = rounded.as_ref().is_none_or(|rounded| rounded.len() == param.len());
        if self.sizes.get(k) != Some(&param.len()) || grad.len() != param.len() || !rounded_fits {
            panic!(
                "Optimizer::update: parameter {k} of length {}, its gradient of length {} and rounded copy of length {:?} for the optimizer's {:?}",
                param.len(),
                grad.len(),
                rounded.as_ref().map(|rounded| rounded.len()),
                self.sizes
            );
        }
        let step = self.step_constants();
        match &mut self.state {
            State::Double(rule) => rule.update(k, param, rounded.unwrap_or_default(), grad, step, pool),
            State::Single(rule) => match rounded {
                Some(rounded) => rule.update(k, rounded, param, grad, step, pool),
                None => {
                    let mut rounded = vec![0.0; param.len()];
                    crate::round_to_single(param, &mut rounded);
                    rule.update(k, &mut rounded, param, grad, step, pool)
                }
            },
        }
    }

    /// [`Optimizer::update`] of a parameter whose values are, for now, only its `rounded` copy:
    /// in single precision the update moves them there and writes no f64 values, which the
    /// caller widens from them when it needs them (exactly: the bits [`Optimizer::update`] would
    /// have written), saving a training a pass over its weights at every step. In double
    /// precision it widens them, moves them in f64 and rounds them back, allocating.
    ///
    /// # Panics
    ///
    /// As [`Optimizer::update`].
    pub fn update_rounded(&mut self, k: usize, rounded: &mut [f32], grad: &[f64], pool: Option<&rayon::ThreadPool>) {
        if self.sizes.get(k) != Some(&rounded.len()) || grad.len() != rounded.len() {
            panic!(
                "Optimizer::update_rounded: parameter {k} of length {} and its gradient of length {} for the optimizer's {:?}",
                rounded.len(),
                grad.len(),
                self.sizes
            );
        }
        let step = self.step_constants();
        match &mut self.state {
            State::Single(rule) => rule.update(k, rounded, &mut [] as &mut [f64], grad, step, pool),
            State::Double(rule) => {
                let mut values = vec![0.0; rounded.len()];
                convert(rounded, &mut values);
                rule.update(k, &mut values, rounded, grad, step, pool)
            }
        }
    }

    fn step_constants(&self) -> StepConstants {
        StepConstants { lr: self.learning_rate(), first_step: self.steps_taken == 0, t: (self.steps_taken + 1) as f64 }
    }

    /// Ends a step whose every parameter [`Optimizer::update`] has moved.
    pub fn finish_step(&mut self) {
        self.steps_taken += 1;
    }
}

/// What an update needs to know of the step it is part of.
#[derive(Clone, Copy)]
struct StepConstants {
    /// The scheduled learning rate.
    lr: f64,
    /// Whether no update has been taken yet.
    first_step: bool,
    /// Adam's bias-correction exponent: the number of this update, from 1.
    t: f64,
}

impl<T: Element> Rule<T> {
    /// Moves parameter `k`'s `values` against `grad` and, unless `copies` is empty, leaves
    /// there the new values in the other precision. Constants are computed in f64 and rounded
    /// to `T` once, as PyTorch computes its Python-float constants.
    fn update<U: ConvertFrom<T> + Send>(
        &mut self,
        k: usize,
        values: &mut [T],
        copies: &mut [U],
        grad: &[f64],
        StepConstants { lr, first_step, t }: StepConstants,
        pool: Option<&rayon::ThreadPool>,
    ) {
        let elements = values.iter_mut().zip(grad.iter().map(|grad| T::of(*grad)));
        match self {
            Rule::Sgd { momentum_buffer: None, .. } => {
                let lr = T::of(lr);
                for (value, grad) in elements {
                    *value = *value - lr * grad;
                }
            }
            Rule::Sgd { momentum, nesterov, momentum_buffer: Some(buffer) } => {
                let (lr, momentum, nesterov) = (T::of(lr), T::of(*momentum), *nesterov);
                for ((value, grad), velocity) in elements.zip(buffer[k].iter_mut()) {
                    // PyTorch starts the buffer at the first gradient, not at μ·0 + g (which
                    // would differ only in the sign of a zero).
                    *velocity = if first_step { grad } else { (momentum * *velocity + grad).flush_subnormal() };
                    let direction = if nesterov { grad + momentum * *velocity } else { *velocity };
                    *value = *value - lr * direction;
                }
            }
            Rule::Adam { beta1, beta2, eps, weight_decay, exp_avg, exp_avg_sq } => {
                let adam = AdamStep {
                    beta1: T::of(*beta1),
                    one_minus_beta1: T::of(1.0 - *beta1),
                    beta2: T::of(*beta2),
                    one_minus_beta2: T::of(1.0 - *beta2),
                    eps: T::of(*eps),
                    step_size: T::of(lr / (1.0 - libm::pow(*beta1, t))),
                    bias_correction2_sqrt: T::of((1.0 - libm::pow(*beta2, t)).sqrt()),
                    // Decoupled decay shrinks the parameter itself, outside the adaptive scaling.
                    decay: T::of(1.0 - lr * *weight_decay),
                };
                let (mean, mean_square) = (&mut exp_avg[k][..], &mut exp_avg_sq[k][..]);
                let tensors = AdamTensors { values, copies, grad, mean, mean_square };
                match pool.filter(|_| tensors.values.len() >= 2 * BLOCK) {
                    Some(pool) => pool.install(|| tensors.in_blocks(|block| adam.update(block))),
                    None => adam.update(tensors),
                }
                return;
            }
            Rule::RmsProp { alpha, eps, momentum, square_avg, momentum_buffer } => {
                let (lr, alpha, one_minus_alpha) = (T::of(lr), T::of(*alpha), T::of(1.0 - *alpha));
                let (eps, momentum) = (T::of(*eps), T::of(*momentum));
                let mut velocities = momentum_buffer.as_mut().map(|buffer| buffer[k].iter_mut());
                for ((value, grad), mean_square) in elements.zip(square_avg[k].iter_mut()) {
                    *mean_square = (alpha * *mean_square + one_minus_alpha * grad * grad).flush_subnormal();
                    let scaled = grad / (mean_square.sqrt() + eps);
                    match velocities.as_mut().and_then(Iterator::next) {
                        Some(velocity) => {
                            *velocity = (momentum * *velocity + scaled).flush_subnormal();
                            *value = *value - lr * *velocity;
                        }
                        None => *value = *value - lr * scaled,
                    }
                }
            }
            Rule::Adagrad { eps, sum } => {
                let (lr, eps) = (T::of(lr), T::of(*eps));
                for ((value, grad), sum_of_squares) in elements.zip(sum[k].iter_mut()) {
                    *sum_of_squares = *sum_of_squares + grad * grad;
                    *value = *value - lr * (grad / (sum_of_squares.sqrt() + eps));
                }
            }
        }
        if !copies.is_empty() {
            convert(values, copies);
        }
    }
}

/// One Adam update's constants, in the precision it computes in.
#[derive(Clone, Copy)]
struct AdamStep<T> {
    beta1: T,
    one_minus_beta1: T,
    beta2: T,
    one_minus_beta2: T,
    eps: T,
    step_size: T,
    bias_correction2_sqrt: T,
    decay: T,
}

/// One tensor's slices that an Adam update reads and writes; `copies` may be empty (no copy
/// in the other precision to write).
struct AdamTensors<'t, T, U> {
    values: &'t mut [T],
    copies: &'t mut [U],
    grad: &'t [f64],
    mean: &'t mut [T],
    mean_square: &'t mut [T],
}

impl<T: Element, U: Send> AdamTensors<'_, T, U> {
    /// Runs `update` on blocks of [`BLOCK`] elements on the current pool's threads.
    fn in_blocks(self, update: impl Fn(AdamTensors<T, U>) + Sync) {
        use rayon::prelude::*;
        let AdamTensors { values, copies, grad, mean, mean_square } = self;
        let moments = mean.par_chunks_mut(BLOCK).zip(mean_square.par_chunks_mut(BLOCK));
        let blocks = values.par_chunks_mut(BLOCK).zip(grad.par_chunks(BLOCK)).zip(moments);
        // An empty slice has no chunks, and zipping it would leave nothing to update.
        match copies.is_empty() {
            false => {
                blocks.zip(copies.par_chunks_mut(BLOCK)).for_each(|(((values, grad), (mean, mean_square)), copies)| {
                    update(AdamTensors { values, copies, grad, mean, mean_square })
                })
            }
            true => blocks.for_each(|((values, grad), (mean, mean_square))| {
                update(AdamTensors { values, copies: &mut [], grad, mean, mean_square })
            }),
        }
    }
}

impl<T: Element> AdamStep<T> {
    /// Updates one parameter tensor and its moments, and writes the new values converted into
    /// `copies` unless it is empty: with AVX2 where the CPU has it (a square root and two
    /// divisions per element, a vector's worth at a time), the same bits either way (IEEE
    /// arithmetic, no fused multiply–adds).
    fn update<U: ConvertFrom<T>>(self, tensors: AdamTensors<T, U>) {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { self.update_avx2(tensors) };
        }
        self.update_elements(tensors)
    }

    /// [`AdamStep::update_elements`], compiled for AVX2.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn update_avx2<U: ConvertFrom<T>>(self, tensors: AdamTensors<T, U>) {
        self.update_elements(tensors)
    }

    #[inline(always)]
    fn update_elements<U: ConvertFrom<T>>(
        self,
        AdamTensors { values, copies, grad, mean, mean_square }: AdamTensors<T, U>,
    ) {
        let moments = mean.iter_mut().zip(mean_square.iter_mut());
        let elements = values.iter_mut().zip(grad).zip(moments);
        match copies.is_empty() {
            true => elements.for_each(|((value, grad), (mean, mean_square))| {
                self.element(value, T::of(*grad), mean, mean_square);
            }),
            false => elements.zip(copies).for_each(|(((value, grad), (mean, mean_square)), copy)| {
                *copy = U::convert(self.element(value, T::of(*grad), mean, mean_square));
            }),
        }
    }

    /// One element's update; returns the new value.
    #[inline(always)]
    fn element(self, value: &mut T, grad: T, mean: &mut T, mean_square: &mut T) -> T {
        *value = *value * self.decay;
        *mean = (self.beta1 * *mean + self.one_minus_beta1 * grad).flush_subnormal();
        *mean_square = (self.beta2 * *mean_square + self.one_minus_beta2 * grad * grad).flush_subnormal();
        let denominator = mean_square.sqrt() / self.bias_correction2_sqrt + self.eps;
        *value = *value - self.step_size * (*mean / denominator);
        *value
    }
}

fn check_buffer_shape(name: &str, buffer: &Buffer<f64>, sizes: &[usize]) -> Result<(), OptimError> {
    if buffer.len() != sizes.len() {
        return Err(OptimError::new(format!(
            "optimizer state: buffer `{name}` has {} parameters, expected {}",
            buffer.len(),
            sizes.len()
        )));
    }
    for (index, (values, &size)) in buffer.iter().zip(sizes).enumerate() {
        if values.len() != size {
            return Err(OptimError::new(format!(
                "optimizer state: parameter {index} of buffer `{name}` has {} values, expected {size}",
                values.len()
            )));
        }
    }
    Ok(())
}

/// Elements per block of a pass over gradients: a block's sum of squares is its own, and the
/// blocks' are added in order, so a pass may run its blocks on any threads and give the same
/// bits. A block stays in the L1 cache from its sums to its squares.
const BLOCK: usize = LANES * 512;

/// The Euclidean norm of all gradients taken together, √(Σₖ Σᵢ gₖᵢ²).
///
/// NaN if any entry is NaN, ∞ if any is infinite. The plain sum of squares is used when it
/// neither overflows nor underflows; otherwise the entries are rescaled by the largest
/// magnitude first, so gradients around 1e200 or 1e-200 still get a finite, accurate norm.
pub fn global_norm(grads: &[Vec<f64>]) -> f64 {
    let squares = grads.iter().flat_map(|grad| grad.chunks(BLOCK)).map(sum_of_squares);
    norm_from(grads, squares.fold(0.0, |sum, block| sum + block))
}

/// A tensor of gradient terms that [`divide_and_norm`] adds up: in f64, or in f32 (a product's
/// sums taken unwidened), which it widens as it adds them.
#[derive(Clone, Copy)]
pub enum Term<'t> {
    Wide(&'t [f64]),
    Narrow(&'t [f32]),
}

impl Term<'_> {
    fn len(self) -> usize {
        match self {
            Term::Wide(values) => values.len(),
            Term::Narrow(values) => values.len(),
        }
    }

    /// Elements `range`.
    fn get(self, range: std::ops::Range<usize>) -> Self {
        match self {
            Term::Wide(values) => Term::Wide(&values[range]),
            Term::Narrow(values) => Term::Narrow(&values[range]),
        }
    }
}

/// Divides `grads` by `divisor` and returns their [`global_norm`] afterwards, the same bits,
/// from one pass over them instead of two: a network's gradient is megabytes. Given `terms`
/// (gradients whose tensor `k` is `tensor(term, k)`), `grads` are first their sum instead,
/// each element `((0 + t₀) + t₁) + …`, in the same pass (an f32 term's elements widened first:
/// the sum of the widened tensor, bit for bit). With a `pool`, the blocks of a large
/// tensor run on its threads, with the same bits. Allocates nothing once a thread has seen its
/// largest tensor.
///
/// # Panics
///
/// If a term's tensors do not have the lengths of `grads`' (a bug in the caller).
pub fn divide_and_norm<T: Sync>(
    grads: &mut [Vec<f64>],
    terms: &[T],
    tensor: impl Fn(&T, usize) -> Term<'_> + Sync,
    divisor: f64,
    pool: Option<&rayon::ThreadPool>,
) -> f64 {
    use rayon::prelude::*;
    thread_local! {
        /// The sums of squares of a tensor's blocks, kept from call to call.
        static SQUARES: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let fits = |term: &T| grads.iter().enumerate().all(|(k, grad)| tensor(term, k).len() == grad.len());
    assert!(terms.iter().all(fits), "divide_and_norm: terms of other lengths than the gradients'");
    // A power of two (a step's ±1 or ±64 particles) has an exact reciprocal, and then
    // `x · (1/d)` is the correctly rounded `x / d` as the division is: the same bits, at the
    // speed of a multiplication.
    let reciprocal = 1.0 / divisor;
    let power_of_two = divisor.is_normal() && divisor.to_bits() & ((1 << 52) - 1) == 0;
    let scale = Scale { divisor, reciprocal: (power_of_two && reciprocal.is_finite()).then_some(reciprocal) };
    let mut sum_of_squares = 0.0;
    for (k, grad) in grads.iter_mut().enumerate() {
        let block = |(b, values): (usize, &mut [f64])| {
            let range = b * BLOCK..b * BLOCK + values.len();
            scale.block(values, terms.iter().map(|term| tensor(term, k).get(range.clone())))
        };
        match pool.filter(|_| grad.len() >= 2 * BLOCK) {
            Some(pool) => SQUARES.with(|squares| {
                let squares: &mut Vec<f64> = &mut squares.borrow_mut();
                pool.install(|| grad.par_chunks_mut(BLOCK).enumerate().map(block).collect_into_vec(squares));
                sum_of_squares = squares.iter().fold(sum_of_squares, |sum, block| sum + block);
            }),
            None => {
                sum_of_squares = grad.chunks_mut(BLOCK).enumerate().map(block).fold(sum_of_squares, |sum, b| sum + b)
            }
        }
    }
    norm_from(grads, sum_of_squares)
}

/// How [`divide_and_norm`] divides: by `divisor`, or by multiplying with its `reciprocal` where
/// that is exact.
#[derive(Clone, Copy)]
struct Scale {
    divisor: f64,
    reciprocal: Option<f64>,
}

impl Scale {
    /// One block of [`divide_and_norm`]: its values (or the sum of the terms' instead), scaled;
    /// returns their sum of squares.
    fn block<'t>(self, values: &mut [f64], terms: impl Iterator<Item = Term<'t>>) -> f64 {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { self.block_avx2(values, terms) };
        }
        self.block_elements(values, terms)
    }

    /// [`Scale::block_elements`], compiled for AVX2.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn block_avx2<'t>(self, values: &mut [f64], terms: impl Iterator<Item = Term<'t>>) -> f64 {
        self.block_elements(values, terms)
    }

    #[inline(always)]
    fn block_elements<'t>(self, values: &mut [f64], mut terms: impl Iterator<Item = Term<'t>>) -> f64 {
        if let Some(first) = terms.next() {
            match first {
                Term::Wide(first) => values.iter_mut().zip(first).for_each(|(value, x)| *value = 0.0 + x),
                Term::Narrow(first) => values.iter_mut().zip(first).for_each(|(value, x)| *value = 0.0 + f64::from(*x)),
            }
        }
        for term in terms {
            match term {
                Term::Wide(term) => values.iter_mut().zip(term).for_each(|(value, x)| *value += x),
                Term::Narrow(term) => values.iter_mut().zip(term).for_each(|(value, x)| *value += f64::from(*x)),
            }
        }
        match self.reciprocal {
            Some(reciprocal) => values.iter_mut().for_each(|value| *value *= reciprocal),
            None => values.iter_mut().for_each(|value| *value /= self.divisor),
        }
        sum_of_squares(values)
    }
}

/// How many running sums a sum of squares keeps: independent additions the CPU overlaps (one
/// running sum waits four cycles for each addition), and a vector register's worth twice over.
const LANES: usize = 8;

/// The sum of squares of `values` in [`LANES`] running sums, element `i` into sum `i % LANES`,
/// added together in order at the end: the same bits for the same values, at the speed of the
/// memory rather than of one chain of additions.
#[inline(always)]
fn sum_of_squares(values: &[f64]) -> f64 {
    let mut lanes = [0.0; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, x) in lanes.iter_mut().zip(chunk) {
            *lane += x * x;
        }
    }
    for (lane, x) in lanes.iter_mut().zip(chunks.remainder()) {
        *lane += x * x;
    }
    lanes.iter().fold(0.0, |sum, lane| sum + lane)
}

/// The norm of `grads`, whose sum of squares is `sum_of_squares`.
fn norm_from(grads: &[Vec<f64>], sum_of_squares: f64) -> f64 {
    if sum_of_squares.is_nan() {
        return f64::NAN;
    }
    if sum_of_squares.is_finite() && sum_of_squares >= f64::MIN_POSITIVE {
        return sum_of_squares.sqrt();
    }
    let largest = grads.iter().flatten().fold(0.0_f64, |largest, grad| largest.max(grad.abs()));
    if largest == 0.0 || largest.is_infinite() {
        return largest;
    }
    let scaled_sum = grads.iter().flatten().fold(0.0, |sum, grad| {
        let scaled = grad / largest;
        sum + scaled * scaled
    });
    largest * scaled_sum.sqrt()
}

/// Scales the gradients down so their joint Euclidean norm ([`global_norm`]) is at most
/// `max_norm`, keeping their direction (up to rounding); returns the norm before clipping.
///
/// Gradients already within the limit are left bit-for-bit unchanged. Non-finite gradients
/// (norm NaN or ∞) are left alone too — scaling would turn ∞ into NaN and hide the cause — and
/// the returned norm tells the caller to apply its `on_nan` policy. A `max_norm` ≤ 0 scales to
/// zero; a NaN `max_norm` never clips.
pub fn clip_by_norm(grads: &mut [Vec<f64>], max_norm: f64) -> f64 {
    let norm = global_norm(grads);
    clip_to(grads, norm, max_norm);
    norm
}

/// [`clip_by_norm`] for gradients whose norm is already known.
pub fn clip_to(grads: &mut [Vec<f64>], norm: f64, max_norm: f64) {
    if norm.is_finite() && norm > max_norm {
        let scale = max_norm.max(0.0) / norm;
        for grad in grads.iter_mut().flatten() {
            *grad *= scale;
        }
    }
}
