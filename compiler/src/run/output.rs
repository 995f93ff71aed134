//! What running a command produces, and its human-readable form. (The CLI renders the same
//! values as JSON.)

use std::fmt;

use ppl_runtime::optim::OptimizerState;

use super::StopReason;
use crate::interp::RuntimeValue;
use crate::ir::Type;
use crate::lower::{Element, Shape};
use crate::syntax::ast::Direction;

#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// One expression of a `print`.
    Print { source: String, value: Printed },
    /// `estimate(EST, samples: N)`: mean and standard error of N independent estimates.
    Estimate { source: String, mean: f64, stderr: f64, samples: u64 },
    /// `grad(EST, samples: N)`: per parameter the estimate depends on.
    Grad { source: String, samples: u64, params: Vec<ParamGradient> },
    /// `sample(Q, N)`: N traces follow, one [`Output::Trace`] each, as they are drawn.
    Sample { source: String, count: u64 },
    /// Trace number `index` of the `sample` command `source`.
    Trace { source: String, index: u64, trace: Printed },
    /// After each training step: the running average of the (first) objective.
    /// `objective` is the running average, `value` this step's estimate.
    Progress { step: u64, steps: u64, objective: f64, value: f64, gradient_norm: f64, learning_rate: f64 },
    /// A `maximize`/`minimize` finished.
    Trained {
        source: String,
        direction: Direction,
        /// Steps taken in all (including those of a resumed run).
        steps: u64,
        /// Steps skipped because of a non-finite objective or gradient (`on_nan: "skip"`).
        skipped: u64,
        seconds: f64,
        /// Each objective's mean ± standard error over the last steps.
        objectives: Vec<TrainedObjective>,
        params: Vec<(String, Printed)>,
        reason: StopReason,
        /// Each objective's optimizer state, to resume from.
        optimizers: Vec<OptimizerState>,
        seed: u64,
    },
    /// The IR of a compiled estimate (`--emit ir`).
    Ir { source: String, text: String },
}

/// Marks an optional trace entry that was not sampled, until its record drops it.
fn absent() -> Printed {
    Printed::Tuple(vec![Printed::Str("\u{0}absent".into())])
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

    /// Reals laid out as a value of type `ty` (a real, a vector, or a matrix's rows).
    fn shaped(ty: Type, data: &[f64]) -> Printed {
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
        Printed::shaped(self.ty, &self.statistics.iter().map(|s| s.mean).collect::<Vec<_>>())
    }

    pub fn stderr(&self) -> Printed {
        Printed::shaped(self.ty, &self.statistics.iter().map(|s| s.stderr).collect::<Vec<_>>())
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Print { source, value } => write!(f, "{source} = {value}"),
            Output::Estimate { source, mean, stderr, samples } => {
                write!(f, "{source} = {} ({samples} samples)", with_error(*mean, *stderr))
            }
            Output::Grad { source, samples, params } => {
                write!(f, "{source} ({samples} samples):")?;
                if params.is_empty() {
                    write!(f, " depends on no parameter")?;
                }
                for param in params {
                    let parts: Vec<String> = param.statistics.iter().map(|s| with_error(s.mean, s.stderr)).collect();
                    match param.ty {
                        Type::Real => write!(f, "\n    d/d{} = {}", param.name, parts.join(", "))?,
                        _ => write!(f, "\n    d/d{} = [{}]", param.name, parts.join(", "))?,
                    }
                }
                Ok(())
            }
            Output::Sample { source, .. } => write!(f, "{source}:"),
            Output::Trace { trace, .. } => write!(f, "    {trace}"),
            Output::Progress { step, steps, objective, gradient_norm, learning_rate, .. } => write!(
                f,
                "step {step}/{steps}: objective {objective:.6} (running average), gradient norm {gradient_norm:.4}, learning rate {learning_rate:e}"
            ),
            Output::Trained { source, steps, skipped, seconds, objectives, params, reason, .. } => {
                write!(f, "{source}\n    {} after {steps} steps in {seconds:.2} s", reason.describe())?;
                if *skipped > 0 {
                    write!(f, " ({skipped} skipped: non-finite)")?;
                }
                for objective in objectives {
                    let statistic = objective.statistic;
                    write!(f, "\n    {} = {} (last steps)", objective.source, with_error(statistic.mean, statistic.stderr))?;
                }
                for (name, value) in params {
                    write!(f, "\n    {name} = {value}")?;
                }
                Ok(())
            }
            Output::Ir { source, text } => write!(f, "// {source}\n{text}"),
        }
    }
}

/// `mean ± stderr` with the standard error to two significant digits and the mean to the
/// same decimal place; an exact result (zero error) in full.
fn with_error(mean: f64, stderr: f64) -> String {
    if !(stderr.is_finite() && mean.is_finite()) || stderr <= 1e-12 * mean.abs().max(1e-300) {
        return format!("{mean} ± {stderr:.1e}");
    }
    let decimals = (1 - stderr.log10().floor() as i32).clamp(0, 15) as usize;
    format!("{mean:.decimals$} ± {stderr:.decimals$}")
}
