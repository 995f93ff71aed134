//! What running a command produces, and its human-readable form. (The CLI renders the same
//! values as JSON.)

use std::fmt;

use ppl_runtime::optim::OptimizerState;

use super::psis::Diagnosis;
use super::StopReason;
use crate::interp::RuntimeValue;
use crate::ir::Type;
use crate::lower::{Element, Shape};
use crate::syntax::ast::Direction;

/// How a training objective walks through a data set: rows per step, of how many.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Minibatch {
    /// Rows each step estimates the objective on: the batch size times the particles.
    pub rows_per_step: u64,
    pub rows: u64,
}

impl Minibatch {
    /// How many passes over the data set `steps` steps make.
    pub fn epochs(self, steps: u64) -> f64 {
        (steps as f64) * (self.rows_per_step as f64) / (self.rows.max(1) as f64)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// One expression of a `print`.
    Print { source: String, value: Printed },
    /// `estimate(EST, samples: N)`: mean and standard error of N independent estimates of a
    /// value of type `ty` (`Real`, or `Vec(n)` with a statistic per element).
    Estimate { source: String, ty: Type, statistics: Vec<Statistic>, samples: u64 },
    /// `grad(EST, samples: N)`: per parameter the estimate depends on.
    Grad { source: String, samples: u64, params: Vec<ParamGradient> },
    /// `sample(Q, N)`: N traces follow, one [`Output::Trace`] each, as they are drawn.
    Sample { source: String, count: u64 },
    /// Trace number `index` of the `sample` command `source`.
    Trace { source: String, index: u64, trace: Printed },
    /// After each training step: the running average of the (first) objective.
    /// `objective` is the running average, `value` this step's estimate.
    /// `minibatch` is set when the objective is estimated on minibatches of a data set; `time`
    /// is where the training's time has gone so far.
    Progress {
        step: u64,
        steps: u64,
        objective: f64,
        value: f64,
        gradient_norm: f64,
        learning_rate: f64,
        minibatch: Option<Minibatch>,
        time: TrainingTime,
    },
    /// A `maximize`/`minimize` finished.
    Trained {
        source: String,
        direction: Direction,
        /// Steps taken in all (including those of a resumed run).
        steps: u64,
        /// Steps skipped because of a non-finite objective or gradient (`on_nan: "skip"`).
        skipped: u64,
        seconds: f64,
        /// Where the steps' time went.
        time: TrainingTime,
        /// Each objective's mean ± standard error over the last steps.
        objectives: Vec<TrainedObjective>,
        params: Vec<(String, Printed)>,
        reason: StopReason,
        /// Each objective's optimizer state, to resume from.
        optimizers: Vec<OptimizerState>,
        seed: u64,
        /// How well the trained parameters fit (none with `diagnostics: 0`).
        fit: Option<Fit>,
    },
    /// The IR of a compiled estimate (`--emit ir`).
    Ir { source: String, text: String },
    /// `image(name, pixels, width: W)`: `count` images of `width` × `height` pixels tiled in a
    /// grid of `columns` × `rows`, as a PNG file's bytes, for a client to write as `NAME.png`.
    Image { source: String, name: String, count: u64, width: u64, height: u64, columns: u64, rows: u64, png: Vec<u8> },
}

/// Marks an optional trace entry that was not sampled, until its record drops it.
fn absent() -> Printed {
    Printed::Tuple(vec![Printed::Str("\u{0}absent".into())])
}

/// Element `i` of an array held leaf by leaf (see [`Shape::Stacked`]): each leaf of `shape`
/// holds that leaf of every element, a vector (of reals, or of bools and ints stored as reals)
/// or a matrix of one row per element.
fn read_stacked<'v>(shape: &Shape, leaves: &mut impl Iterator<Item = &'v RuntimeValue>, i: usize) -> Printed {
    let element = |leaf: Option<&RuntimeValue>, as_printed: &dyn Fn(f64) -> Printed| match leaf {
        Some(RuntimeValue::Vec(data)) => data.get(i).map_or(Printed::Tuple(Vec::new()), |x| as_printed(*x)),
        Some(RuntimeValue::Mat { cols, data, .. }) => {
            let row = data.chunks((*cols).max(1)).nth(i).unwrap_or(&[]);
            Printed::List(row.iter().map(|x| as_printed(*x)).collect())
        }
        _ => Printed::Tuple(Vec::new()),
    };
    match shape {
        Shape::Leaf => element(leaves.next(), &Printed::Real),
        Shape::Array(Element::Bool) => element(leaves.next(), &|x| Printed::Bool(x != 0.0)),
        Shape::Array(Element::Int) => element(leaves.next(), &|x| Printed::Int(x as i64)),
        Shape::Tuple(parts) => Printed::Tuple(parts.iter().map(|part| read_stacked(part, leaves, i)).collect()),
        Shape::Record(fields) => Printed::Record(
            fields
                .iter()
                .map(|(name, field)| (name.clone(), read_stacked(field, leaves, i)))
                .filter(|(_, value)| *value != absent())
                .collect(),
        ),
        Shape::Optional(inner) => {
            let present = element(leaves.next(), &|x| Printed::Bool(x != 0.0)) == Printed::Bool(true);
            let value = read_stacked(inner, leaves, i);
            if present {
                value
            } else {
                absent()
            }
        }
        Shape::Str(text) => Printed::Str(text.clone()),
        // Lowering stacks no arrays inside the elements of arrays.
        Shape::Stacked { element, .. } => {
            leaves.take(element.leaves()).for_each(drop);
            Printed::Tuple(Vec::new())
        }
    }
}

/// A printed value.
#[derive(Clone, Debug, PartialEq)]
pub enum Printed {
    Real(f64),
    Int(i64),
    Bool(bool),
    Str(String),
    /// A vector, or a matrix as a list of rows.
    List(Vec<Printed>),
    Tuple(Vec<Printed>),
    Record(Vec<(String, Printed)>),
}

impl Printed {
    /// Reads a value of the given layout from flattened run-time values.
    pub fn read(shape: &Shape, values: &mut impl Iterator<Item = RuntimeValue>) -> Printed {
        match shape {
            Shape::Leaf => values.next().map_or(Printed::Tuple(Vec::new()), |value| Printed::from_runtime(&value)),
            Shape::Tuple(parts) => Printed::Tuple(parts.iter().map(|part| Printed::read(part, values)).collect()),
            Shape::Record(fields) => Printed::Record(
                fields
                    .iter()
                    .map(|(name, field)| (name.clone(), Printed::read(field, values)))
                    // An address this run did not sample is left out of the trace.
                    .filter(|(_, value)| *value != absent())
                    .collect(),
            ),
            Shape::Optional(inner) => {
                let present = matches!(values.next(), Some(RuntimeValue::Bool(true)));
                let value = Printed::read(inner, values);
                if present {
                    value
                } else {
                    absent()
                }
            }
            Shape::Str(text) => Printed::Str(text.clone()),
            Shape::Array(element) => match values.next() {
                Some(RuntimeValue::Vec(data)) => Printed::List(
                    data.iter()
                        .map(|x| match element {
                            Element::Bool => Printed::Bool(*x != 0.0),
                            Element::Int => Printed::Int(*x as i64),
                        })
                        .collect(),
                ),
                _ => Printed::Tuple(Vec::new()),
            },
            Shape::Stacked { len, element } => {
                let leaves: Vec<RuntimeValue> = values.take(element.leaves()).collect();
                Printed::List((0..*len as usize).map(|i| read_stacked(element, &mut leaves.iter(), i)).collect())
            }
        }
    }

    pub fn from_runtime(value: &RuntimeValue) -> Printed {
        let reals = |data: &[f64]| Printed::List(data.iter().map(|x| Printed::Real(*x)).collect());
        match value {
            RuntimeValue::Real(x) => Printed::Real(*x),
            RuntimeValue::Int(n) => Printed::Int(*n),
            RuntimeValue::Bool(b) => Printed::Bool(*b),
            RuntimeValue::Vec(data) => reals(data),
            RuntimeValue::Mat { cols, data, .. } => Printed::List(data.chunks((*cols).max(1)).map(reals).collect()),
            RuntimeValue::Rng(_) => Printed::Str("<stream>".into()),
        }
    }

    /// A real, vector or matrix: its shape (`real`, `vec[n]`, `mat[m, n]`) and its elements in
    /// row-major order; `None` for anything else.
    fn reals(&self) -> Option<(String, Vec<f64>)> {
        let real = |value: &Printed| match value {
            Printed::Real(x) => Some(*x),
            _ => None,
        };
        match self {
            Printed::Real(x) => Some(("real".into(), vec![*x])),
            Printed::List(items) if items.iter().all(|item| matches!(item, Printed::Real(_))) => {
                Some((format!("vec[{}]", items.len()), items.iter().filter_map(real).collect()))
            }
            Printed::List(rows) => {
                let cols = match rows.first() {
                    Some(Printed::List(first)) => first.len(),
                    _ => return None,
                };
                let mut data = Vec::with_capacity(rows.len() * cols);
                for row in rows {
                    let Printed::List(row) = row else { return None };
                    if row.len() != cols || !row.iter().all(|item| matches!(item, Printed::Real(_))) {
                        return None;
                    }
                    data.extend(row.iter().filter_map(real));
                }
                Some((format!("mat[{}, {cols}]", rows.len()), data))
            }
            _ => None,
        }
    }

    /// The value with every real shown by `number`.
    fn map_reals(&self, number: &impl Fn(f64) -> String) -> String {
        match self {
            Printed::Real(x) => number(*x),
            Printed::List(items) => {
                format!("[{}]", items.iter().map(|item| item.map_reals(number)).collect::<Vec<_>>().join(", "))
            }
            other => other.to_string(),
        }
    }

    /// Reals laid out as a value of type `ty` (a real, a vector, or a matrix's rows).
    pub(crate) fn shaped(ty: Type, data: &[f64]) -> Printed {
        match ty {
            Type::Vec(_) => Printed::List(data.iter().map(|x| Printed::Real(*x)).collect()),
            Type::Mat(_, cols) => Printed::List(
                data.chunks((cols as usize).max(1))
                    .map(|row| Printed::List(row.iter().map(|x| Printed::Real(*x)).collect()))
                    .collect(),
            ),
            _ => Printed::Real(data.first().copied().unwrap_or(f64::NAN)),
        }
    }
}

impl fmt::Display for Printed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, items: &[Printed], open: &str, close: &str| {
            f.write_str(open)?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{item}")?;
            }
            f.write_str(close)
        };
        match self {
            Printed::Real(x) => write!(f, "{x:?}"),
            Printed::Int(n) => write!(f, "{n}"),
            Printed::Bool(b) => write!(f, "{b}"),
            Printed::Str(text) => write!(f, "{text:?}"),
            Printed::List(items) => list(f, items, "[", "]"),
            Printed::Tuple(items) => list(f, items, "(", ")"),
            Printed::Record(fields) => {
                f.write_str("{")?;
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{name}: {value}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// The mean and standard error of independent draws.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Statistic {
    pub mean: f64,
    pub stderr: f64,
}

/// Where a training's time went, in seconds of the thread that runs it: its preparation
/// (compiling its objectives, and loading the data they read if nothing has yet), then in its
/// steps the calls of the objective (its gradients: a step's particles or the parts of its
/// minibatch, side by side on every thread), the passes over the gradient that add the calls'
/// results, take their mean and norm and clip them, and the optimizer's updates of the
/// parameters. The rest of a training's `seconds` is its progress reports and bookkeeping.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TrainingTime {
    pub preparation: f64,
    pub gradients: f64,
    pub gradient_passes: f64,
    pub updates: f64,
}

/// One objective's estimate at the end of training.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainedObjective {
    pub source: String,
    pub statistic: Statistic,
}

/// The gradient estimate for one parameter, elementwise for vectors and matrices.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamGradient {
    pub name: String,
    pub statistics: Vec<Statistic>,
    pub ty: Type,
}

impl ParamGradient {
    pub fn mean(&self) -> Printed {
        Statistic::means(self.ty, &self.statistics)
    }

    pub fn stderr(&self) -> Printed {
        Statistic::stderrs(self.ty, &self.statistics)
    }
}

impl Statistic {
    /// The means of a value of type `ty`'s elements, shaped as the value.
    pub fn means(ty: Type, statistics: &[Statistic]) -> Printed {
        Printed::shaped(ty, &statistics.iter().map(|s| s.mean).collect::<Vec<_>>())
    }

    /// Their standard errors, shaped as the value.
    pub fn stderrs(ty: Type, statistics: &[Statistic]) -> Printed {
        Printed::shaped(ty, &statistics.iter().map(|s| s.stderr).collect::<Vec<_>>())
    }
}

/// What training measured of the fit at the trained parameters, from `draws` fresh draws.
#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    pub draws: u64,
    /// PSIS of the importance weights p(x, obs) / q(x) of the guide (the first objective's
    /// model, guide and observations), or why there are none.
    pub importance: Result<Diagnosis, String>,
    /// Per trained parameter, the variance of one draw of its gradient estimate, elementwise
    /// (a step's gradient, the mean of `particles` draws, has this divided by `particles`).
    pub gradient_variance: Result<Vec<(String, Printed)>, String>,
}

/// Values with more elements than this are summarised in reports (`--full` shows them all).
pub const REPORT_ELEMENTS: usize = 10;

/// Printed values with more elements than this are summarised, as NumPy does.
pub const PRINT_ELEMENTS: usize = 1000;

/// How many leading elements a summary shows.
const LEADING: usize = 5;

impl Output {
    /// The human-readable form; `full` shows every element of large values instead of a
    /// summary.
    pub fn shown(&self, full: bool) -> Shown<'_> {
        Shown { output: self, full }
    }
}

/// An [`Output`] as text (see [`Output::shown`]).
pub struct Shown<'a> {
    output: &'a Output,
    full: bool,
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shown(false).fmt(f)
    }
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = |limit: usize| if self.full { usize::MAX } else { limit };
        match self.output {
            Output::Print { source, value } => write!(f, "{source} = {}", summarised(value, limit(PRINT_ELEMENTS))),
            Output::Estimate { source, ty, statistics, samples } => {
                let shown = with_errors(*ty, statistics, limit(REPORT_ELEMENTS));
                write!(f, "{source} = {shown} ({})", count(*samples, "sample"))
            }
            Output::Grad { source, samples, params } => {
                write!(f, "{source} ({}):", count(*samples, "sample"))?;
                if params.is_empty() {
                    write!(f, " depends on no parameter")?;
                }
                for param in params {
                    let shown = with_errors(param.ty, &param.statistics, limit(REPORT_ELEMENTS));
                    write!(f, "\n    d/d{} = {shown}", param.name)?;
                }
                Ok(())
            }
            Output::Sample { source, .. } => write!(f, "{source}:"),
            Output::Trace { trace, .. } => write!(f, "    {}", summarised(trace, limit(PRINT_ELEMENTS))),
            Output::Progress { step, steps, objective, gradient_norm, learning_rate, .. } => write!(
                f,
                "step {step}/{steps}: objective {objective:.6} (running average), gradient norm {gradient_norm:.4}, learning rate {learning_rate:e}"
            ),
            Output::Trained { source, steps, skipped, seconds, objectives, params, reason, fit, .. } => {
                write!(f, "{source}\n    {} after {steps} steps in {seconds:.2} s", reason.describe())?;
                if *skipped > 0 {
                    write!(f, " ({skipped} skipped: non-finite)")?;
                }
                for objective in objectives {
                    let statistic = objective.statistic;
                    write!(f, "\n    {} = {} (last steps)", objective.source, with_error(statistic.mean, statistic.stderr))?;
                }
                for (name, value) in params {
                    write!(f, "\n    {name} = {}", summarised(value, limit(REPORT_ELEMENTS)))?;
                }
                if let Some(fit) = fit {
                    write_fit(f, fit, limit(REPORT_ELEMENTS))?;
                }
                Ok(())
            }
            Output::Ir { source, text } => write!(f, "// {source}\n{text}"),
            Output::Image { source, count: 1, width, height, .. } => {
                write!(f, "{source} = 1 image of {width} × {height}")
            }
            Output::Image { source, count, width, height, columns, rows, .. } => {
                write!(f, "{source} = {count} images of {width} × {height} in a grid of {columns} × {rows}")
            }
        }
    }
}

fn write_fit(f: &mut fmt::Formatter<'_>, fit: &Fit, limit: usize) -> fmt::Result {
    write!(f, "\n    fit, from {} at the trained parameters:", count(fit.draws, "draw"))?;
    match &fit.importance {
        Ok(diagnosis) => {
            let k = diagnosis.k_hat;
            // Two decimals, or three where two would show k̂ equal to the threshold it is not.
            let decimals = if format!("{k:.2}") == format!("{:.2}", diagnosis.k_threshold) { 3 } else { 2 };
            let (shown, threshold) = (format!("{k:.decimals$}"), format!("{:.decimals$}", diagnosis.k_threshold));
            let reading = if k.is_nan() {
                "n/a (the weights' tail cannot be fitted)".to_string()
            } else if k <= diagnosis.k_threshold {
                format!("{shown} <= {threshold}: the guide is good for importance sampling from this posterior")
            } else {
                format!("{shown} > {threshold}: the guide misses mass of the posterior; do not trust estimates drawn from it")
            };
            write!(f, "\n        Pareto k̂ = {reading}")?;
            write!(
                f,
                "\n        log evidence ≈ {} (importance sampling; effective sample size {:.0} of {})",
                with_error(diagnosis.log_mean_weight, diagnosis.log_mean_weight_stderr),
                diagnosis.effective_samples,
                diagnosis.samples
            )?;
        }
        Err(reason) => write!(f, "\n        Pareto k̂: n/a ({reason})")?,
    }
    match &fit.gradient_variance {
        Ok(params) => {
            let shown: Vec<String> = params
                .iter()
                .map(|(name, value)| format!("{name} = {}", summarised_with(value, limit, &|x| significant(x, 3))))
                .collect();
            write!(f, "\n        gradient variance per draw: {}", shown.join(", "))
        }
        Err(reason) => write!(f, "\n        gradient variance: n/a ({reason})"),
    }
}

/// `n things`, or `1 thing`.
fn count(n: u64, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// A value in full, or — a vector or matrix of more than `limit` reals — its summary.
fn summarised(value: &Printed, limit: usize) -> String {
    summarised_with(value, limit, &|x| format!("{x:?}"))
}

fn summarised_with(value: &Printed, limit: usize, number: &impl Fn(f64) -> String) -> String {
    let parts = |items: &[Printed]| items.iter().map(|item| summarised_with(item, limit, number)).collect::<Vec<_>>();
    let Some((shape, reals)) = value.reals() else {
        // Records, tuples and lists of them (traces): each part on its own terms.
        return match value {
            Printed::Record(fields) => {
                let fields: Vec<String> = fields
                    .iter()
                    .map(|(name, field)| format!("{name}: {}", summarised_with(field, limit, number)))
                    .collect();
                format!("{{{}}}", fields.join(", "))
            }
            Printed::Tuple(items) => format!("({})", parts(items).join(", ")),
            Printed::List(items) if items.len() > limit => {
                format!("[{}, …] ({} elements)", parts(&items[..LEADING.min(items.len())]).join(", "), items.len())
            }
            Printed::List(items) => format!("[{}]", parts(items).join(", ")),
            other => other.to_string(),
        };
    };
    if reals.len() <= limit {
        return value.map_reals(number);
    }
    summary(&shape, reals.iter().map(|x| significant(*x, 4)), &reals)
}

/// `vec[100] [a, b, c, d, e, …] (min …, mean …, max …)`: the shape, the leading elements and
/// the range of `values`, whose non-finite elements are counted apart.
fn summary(shape: &str, shown: impl Iterator<Item = String>, values: &[f64]) -> String {
    let leading: Vec<String> = shown.take(LEADING).collect();
    let finite: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let mut text = format!("{shape} [{}, …] (", leading.join(", "));
    if !finite.is_empty() {
        let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
        let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mean = finite.iter().sum::<f64>() / finite.len() as f64;
        text += &format!("min {}, mean {}, max {}", significant(min, 4), significant(mean, 4), significant(max, 4));
    }
    let others = values.len() - finite.len();
    if others > 0 {
        text += &format!("{}{others} not finite", if finite.is_empty() { "" } else { "; " });
    }
    text + ")"
}

/// `x` to `digits` significant digits: fixed notation for magnitudes from 1e-4 to 1e6, else
/// scientific.
pub fn significant(x: f64, digits: usize) -> String {
    if !x.is_finite() || x == 0.0 {
        return format!("{x}");
    }
    // The magnitude after rounding: 9.9996 to four digits is 10.00, not 10.000.
    let rounded: f64 = format!("{x:.*e}", digits.saturating_sub(1)).parse().unwrap_or(x);
    let magnitude = rounded.abs().log10().floor() as i32;
    if (-4..6).contains(&magnitude) {
        let decimals = (digits as i32 - 1 - magnitude).max(0) as usize;
        format!("{x:.decimals$}")
    } else {
        format!("{x:.*e}", digits.saturating_sub(1))
    }
}

/// Each element's `mean ± stderr`, shaped as a value of type `ty` prints (a matrix row by
/// row); summarised when there are more than `limit` elements.
fn with_errors(ty: Type, statistics: &[Statistic], limit: usize) -> String {
    let parts = statistics.iter().map(|s| with_error(s.mean, s.stderr));
    match ty {
        Type::Real => parts.collect::<Vec<_>>().join(", "),
        ty if statistics.len() > limit => {
            let means: Vec<f64> = statistics.iter().map(|s| s.mean).collect();
            summary(&ty.to_string(), parts, &means)
        }
        Type::Mat(_, cols) => {
            let parts: Vec<String> = parts.collect();
            let rows = parts.chunks((cols as usize).max(1)).map(|row| format!("[{}]", row.join(", ")));
            format!("[{}]", rows.collect::<Vec<_>>().join(", "))
        }
        _ => format!("[{}]", parts.collect::<Vec<_>>().join(", ")),
    }
}

/// `mean ± stderr` with the standard error to two significant digits and the mean to the
/// same decimal place; an exact result (zero error) in full; `n/a` for an unknown error (one
/// sample), the mean then to six significant digits.
fn with_error(mean: f64, stderr: f64) -> String {
    if stderr.is_nan() && mean.is_finite() {
        return format!("{} ± n/a", significant(mean, 6));
    }
    if stderr == 0.0 {
        return format!("{mean} ± 0");
    }
    if !(stderr.is_finite() && mean.is_finite()) || stderr <= 1e-12 * mean.abs().max(1e-300) {
        return format!("{mean} ± {stderr:.1e}");
    }
    let decimals = (1 - stderr.log10().floor() as i32).clamp(0, 15) as usize;
    format!("{mean:.decimals$} ± {stderr:.decimals$}")
}
