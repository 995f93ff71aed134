//! The types the checker assigns: first-order data, and the three kinds of values only the
//! checker sees — generative-function families (with their trace types), traces (records of
//! addresses) and estimates (`est`).

use std::fmt;

use crate::distributions::Constraint;

/// A static dimension of a vector or matrix; `Unknown` where no constant fixes it (a generic
/// argument checked without a call), compatible with any length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    Known(u64),
    Unknown,
}

impl Dim {
    /// Whether two dimensions can describe the same value.
    pub fn agrees(self, other: Dim) -> bool {
        match (self, other) {
            (Dim::Known(a), Dim::Known(b)) => a == b,
            _ => true,
        }
    }

    /// The more informative of two agreeing dimensions.
    pub fn meet(self, other: Dim) -> Dim {
        if self == Dim::Unknown {
            other
        } else {
            self
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Known(n) => write!(f, "{n}"),
            Dim::Unknown => f.write_str("_"),
        }
    }
}

/// A field of a record type; in a trace type each field is an address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Field {
    pub name: String,
    pub ty: Type,
    /// The address is sampled on some paths only (inside one branch of an `if`).
    pub optional: bool,
    /// Where the choice at this address lies (`None` for data and nested traces): a guide must
    /// not give the model values outside it.
    pub support: Option<Constraint>,
    /// `density` sums the address out when the trace lacks it (an enumerated choice in a plate:
    /// see `check::plates`).
    pub enumerated: bool,
}

impl Field {
    /// A field of a record or trace with no more than a name and a type.
    pub fn new(name: impl Into<String>, ty: Type) -> Field {
        Field { name: name.into(), ty, optional: false, support: None, enumerated: false }
    }
}

/// What a generative function application denotes: a distribution over traces of this type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Family {
    /// How the family was built, for messages: `cone`, `marginal(hvi_guide)`.
    pub name: String,
    /// The trace type: one field per address.
    pub trace: Vec<Field>,
    /// The value of the `gen` body's `return` (`()` if none).
    pub ret: Type,
    /// What built it: the compiler handles some forms only for `gen` applications.
    pub kind: FamilyKind,
}

/// How a family was built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FamilyKind {
    /// A `gen` function applied to its arguments (or a `posterior`'s or proposal's target,
    /// which only names addresses).
    Gen,
    /// `marginal(…)`.
    Marginal,
    /// `normalize(…)`.
    Normalize,
}

impl FamilyKind {
    /// The form that built the family, for messages: `marginal(…)`.
    pub fn form(self) -> &'static str {
        match self {
            FamilyKind::Gen => "a `gen` application",
            FamilyKind::Marginal => "`marginal(…)`",
            FamilyKind::Normalize => "`normalize(…)`",
        }
    }
}

/// The built-in values that only configure something: `select(…)`, `sir(…)`, optimizers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Config {
    /// `select(a, b)`: addresses to keep in `marginal`.
    Selection(Vec<String>),
    /// `sir(n)` / `sir(n, proposal)`: sampling importance resampling.
    Sir { particles: Option<u64>, proposal: Option<Box<Family>> },
    /// `posterior(P, obs)`: what `normalize` approximates.
    Posterior(Box<Family>),
    /// `sgd(…)`, `adam(…)`, …
    Optimizer(String),
}

/// What `estimate`, `grad`, `sample` and `image` produce: results to print, not data to compute
/// with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Report {
    Estimate,
    Grad,
    Sample,
    /// `image(name, pixels, width: W)`: a picture, only as a whole expression of a `print`.
    Image,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    Real,
    Int,
    Bool,
    Str,
    Vec(Dim),
    Mat(Dim, Dim),
    /// A vector of non-real elements: indexed discrete choices, traces of a `gen` call in a loop.
    Array(Box<Type>, Dim),
    /// `()` is the empty tuple.
    Tuple(Vec<Type>),
    /// Records and traces: a trace is a record whose fields are addresses.
    Record(Vec<Field>),
    /// An estimate: what `E { … }` returns, of a value of this type (`real`, or `vec[n]`
    /// estimated element by element).
    Est(Box<Type>),
    /// A distribution with its arguments, e.g. `normal(0.0, 1.0)`; `value` is what it samples.
    Dist {
        name: &'static str,
        value: Box<Type>,
    },
    Family(Box<Family>),
    Config(Config),
    Report(Report),
    /// Not known: a generic argument checked without a call, or the type of an expression
    /// whose error has been reported. It agrees with everything, so one mistake gives one
    /// diagnostic.
    Unknown,
}

impl Type {
    pub fn unit() -> Type {
        Type::Tuple(Vec::new())
    }

    pub fn record(fields: impl IntoIterator<Item = (String, Type)>) -> Type {
        Type::Record(fields.into_iter().map(|(name, ty)| Field::new(name, ty)).collect())
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, Type::Unknown)
    }

    /// Whether the type has more than `limit` parts (stops counting at the limit).
    pub fn size_exceeds(&self, limit: usize) -> bool {
        fn count(ty: &Type, budget: &mut usize) -> bool {
            if *budget == 0 {
                return true;
            }
            *budget -= 1;
            match ty {
                Type::Array(element, _) => count(element, budget),
                Type::Tuple(parts) => parts.iter().any(|part| count(part, budget)),
                Type::Record(fields) => fields.iter().any(|field| count(&field.ty, budget)),
                Type::Dist { value, .. } => count(value, budget),
                Type::Family(family) => {
                    family.trace.iter().any(|field| count(&field.ty, budget)) || count(&family.ret, budget)
                }
                Type::Config(Config::Sir { proposal: Some(family), .. } | Config::Posterior(family)) => {
                    family.trace.iter().any(|field| count(&field.ty, budget)) || count(&family.ret, budget)
                }
                _ => false,
            }
        }
        let mut budget = limit;
        count(self, &mut budget)
    }

    /// Plain data: numbers, strings, vectors, and tuples, records and arrays of them.
    pub fn is_first_order(&self) -> bool {
        match self {
            Type::Real | Type::Int | Type::Bool | Type::Str | Type::Vec(_) | Type::Mat(..) | Type::Unknown => true,
            Type::Array(element, _) => element.is_first_order(),
            Type::Tuple(parts) => parts.iter().all(Type::is_first_order),
            Type::Record(fields) => fields.iter().all(|field| field.ty.is_first_order()),
            Type::Est(_) | Type::Dist { .. } | Type::Family(_) | Type::Config(_) | Type::Report(_) => false,
        }
    }

    /// The type of an estimate of a real: `est`.
    pub fn real_estimate() -> Type {
        Type::Est(Box::new(Type::Real))
    }

    /// Scalars that arithmetic accepts: `real`, `int`, or not known.
    pub fn is_scalar(&self) -> bool {
        matches!(self, Type::Real | Type::Int | Type::Unknown)
    }

    /// Whether a value of type `self` may be used where `expected` is wanted: equal types,
    /// `int` where `real` is wanted, agreeing dimensions, unknown on either side.
    pub fn fits(&self, expected: &Type) -> bool {
        match (self, expected) {
            (Type::Unknown, _) | (_, Type::Unknown) => true,
            (Type::Int, Type::Real) => true,
            (Type::Vec(a), Type::Vec(b)) => a.agrees(*b),
            (Type::Mat(a, b), Type::Mat(c, d)) => a.agrees(*c) && b.agrees(*d),
            (Type::Array(a, n), Type::Array(b, m)) => n.agrees(*m) && a.fits(b),
            (Type::Tuple(a), Type::Tuple(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.fits(y)),
            (Type::Record(a), Type::Record(b)) => {
                a.len() == b.len() && a.iter().all(|fa| b.iter().any(|fb| fa.name == fb.name && fa.ty.fits(&fb.ty)))
            }
            (Type::Family(a), Type::Family(b)) => {
                a.trace.len() == b.trace.len() && Type::Record(a.trace.clone()).fits(&Type::Record(b.trace.clone()))
            }
            _ => self == expected,
        }
    }

    /// Whether a value of this type can stand for an observed value of type `expected`: as
    /// [`Type::fits`], and also reals for counts and booleans (`{ k: [3.0, 5.0] }` observes
    /// `k: [int; 2]`), whose values are checked to be whole numbers, or 0 and 1, when they are
    /// used.
    pub fn observes(&self, expected: &Type) -> bool {
        match (self, expected) {
            (Type::Real, Type::Int | Type::Bool) => true,
            (Type::Vec(n), Type::Array(element, m)) => n.agrees(*m) && matches!(**element, Type::Int | Type::Bool),
            // A matrix's rows stand for the vectors (or counts or booleans) drawn at a
            // loop-indexed address.
            (Type::Mat(m, k), Type::Array(element, n)) => m.agrees(*n) && Type::Vec(*k).observes(element),
            (Type::Array(a, n), Type::Array(b, m)) => n.agrees(*m) && a.observes(b),
            (Type::Record(a), Type::Record(b)) => {
                a.len() == b.len() && a.iter().all(|fa| b.iter().any(|fb| fa.name == fb.name && fa.ty.observes(&fb.ty)))
            }
            _ => self.fits(expected),
        }
    }

    /// The common type of two values that must agree (the branches of an `if`), if any.
    pub fn join(&self, other: &Type) -> Option<Type> {
        match (self, other) {
            (Type::Unknown, t) | (t, Type::Unknown) => Some(t.clone()),
            (Type::Int, Type::Real) | (Type::Real, Type::Int) => Some(Type::Real),
            (Type::Vec(a), Type::Vec(b)) if a.agrees(*b) => Some(Type::Vec(a.meet(*b))),
            (Type::Mat(a, b), Type::Mat(c, d)) if a.agrees(*c) && b.agrees(*d) => {
                Some(Type::Mat(a.meet(*c), b.meet(*d)))
            }
            _ if self.fits(other) && other.fits(self) => Some(self.clone()),
            _ => None,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Real => f.write_str("real"),
            Type::Int => f.write_str("int"),
            Type::Bool => f.write_str("bool"),
            Type::Str => f.write_str("string"),
            Type::Vec(n) => write!(f, "vec[{n}]"),
            Type::Mat(m, n) => write!(f, "mat[{m}, {n}]"),
            Type::Array(element, n) => write!(f, "[{element}; {n}]"),
            Type::Tuple(parts) if parts.len() == 1 => write!(f, "({},)", parts[0]),
            Type::Tuple(parts) => {
                f.write_str("(")?;
                write_joined(f, parts.iter())?;
                f.write_str(")")
            }
            Type::Record(fields) => write_record(f, fields),
            Type::Est(value) if **value == Type::Real => f.write_str("est"),
            Type::Est(value) => write!(f, "est of {value}"),
            Type::Dist { name, value } => write!(f, "distribution `{name}` over {value}"),
            Type::Family(family) => write!(f, "generative function `{}`", family.name),
            Type::Config(Config::Selection(_)) => f.write_str("selection"),
            Type::Config(Config::Sir { .. }) => f.write_str("inference algorithm"),
            Type::Config(Config::Posterior(_)) => f.write_str("posterior"),
            Type::Config(Config::Optimizer(name)) => write!(f, "optimizer `{name}`"),
            Type::Report(Report::Estimate) => f.write_str("estimate report"),
            Type::Report(Report::Grad) => f.write_str("gradient report"),
            Type::Report(Report::Sample) => f.write_str("samples"),
            Type::Report(Report::Image) => f.write_str("picture"),
            Type::Unknown => f.write_str("_"),
        }
    }
}

/// Writes `{x: real, y?: real}`; `?` marks addresses present on some paths only.
pub fn write_record(f: &mut impl fmt::Write, fields: &[Field]) -> fmt::Result {
    f.write_str("{")?;
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        let optional = if field.optional { "?" } else { "" };
        write!(f, "{}{optional}: {}", field.name, field.ty)?;
    }
    f.write_str("}")
}

fn write_joined<'a>(f: &mut fmt::Formatter<'_>, parts: impl Iterator<Item = &'a Type>) -> fmt::Result {
    for (i, part) in parts.enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{part}")?;
    }
    Ok(())
}
