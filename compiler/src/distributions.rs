//! The table of distributions: one entry per distribution, the single place a new one is added.
//!
//! Each entry states the parameters (in order) and their domains, what a choice yields, which
//! gradient estimators it supports (the first being its default), and its pathwise sampler
//! and log-density as IR emitters (`adev/rules.rs`). The type checker reads it to check calls
//! and `via` annotations; ADEV reads it to lower choices. The estimator rules themselves are
//! generic over entries (`adev::choice`).

use std::fmt;

use crate::adev::rules::{self, LogDensityFn, SampleFn};

/// A gradient estimator for one random choice (ADEV's primitive rules, `semantics.md` §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Estimator {
    /// Pathwise derivative through a location–scale or inverse-CDF sampler.
    Reparam,
    /// Implicit reparameterisation through the CDF (Figurnov et al. 2018).
    Implicit,
    /// Score function (REINFORCE), optionally with a baseline.
    Reinforce,
    /// Exact enumeration of a finite support.
    Enum,
    /// Measure-valued derivative.
    Mvd,
}

impl Estimator {
    pub const ALL: [Estimator; 5] =
        [Estimator::Reparam, Estimator::Implicit, Estimator::Reinforce, Estimator::Enum, Estimator::Mvd];

    pub fn name(self) -> &'static str {
        match self {
            Estimator::Reparam => "reparam",
            Estimator::Implicit => "implicit",
            Estimator::Reinforce => "reinforce",
            Estimator::Enum => "enum",
            Estimator::Mvd => "mvd",
        }
    }

    pub fn from_name(name: &str) -> Option<Estimator> {
        Estimator::ALL.into_iter().find(|estimator| estimator.name() == name)
    }
}

impl fmt::Display for Estimator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What one draw of a distribution is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    Real,
    Int,
    Bool,
    /// A real vector as long as the (vector) parameters.
    RealVector,
}

/// Where a real draw lies: what the checker compares between a guide's choice and the model's
/// at the same address (a guide must not place mass where the model's density is 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Constraint {
    /// Any real (elementwise for vectors).
    Real,
    /// Positive reals (or non-negative: a boundary has no mass).
    Positive,
    /// (0, 1).
    UnitInterval,
    /// Vectors of positive elements summing to 1.
    Simplex,
    /// An interval set by the arguments (`uniform`): not known before the run.
    Bounded,
    /// Counts and booleans, whose types already tell them apart.
    Discrete,
}

impl Constraint {
    /// Whether every value in `inner` is in `self`; `Bounded` is taken on trust.
    pub fn contains(self, inner: Constraint) -> bool {
        use Constraint::*;
        matches!(
            (self, inner),
            (Bounded | Discrete, _)
                | (_, Bounded | Discrete)
                | (Real, _)
                | (Positive, Positive | UnitInterval | Simplex)
                | (UnitInterval, UnitInterval | Simplex)
                | (Simplex, Simplex)
        )
    }

    /// The set in words: "positive reals".
    pub fn describe(self) -> &'static str {
        match self {
            Constraint::Real => "all reals",
            Constraint::Positive => "positive reals",
            Constraint::UnitInterval => "reals between 0 and 1",
            Constraint::Simplex => "the simplex (positive elements summing to 1)",
            Constraint::Bounded => "an interval",
            Constraint::Discrete => "discrete values",
        }
    }

    /// A guide distribution with this support, for the help of a diagnostic.
    pub fn guide_suggestion(self) -> &'static str {
        match self {
            Constraint::Positive => "`lognormal(m, s)` (the exp of a normal), or `gamma`",
            Constraint::UnitInterval => "`logit_normal(m, s)` (the sigmoid of a normal), or `beta`",
            Constraint::Simplex => "`dirichlet(exp(log_alpha))`",
            _ => "a distribution with the same support as the model's",
        }
    }
}

/// The kind of each parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// A real; a vector here makes the choice a vector of independent draws.
    Real,
    /// A real vector (probabilities, means, scales).
    Vector,
    /// A square real matrix as wide as the vector parameters.
    Matrix,
}

/// What a parameter must satisfy; checked before every draw and every scoring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    Any,
    Positive,
    NonNegative,
    /// In [0, 1].
    Probability,
    /// In (0, 1].
    SuccessProbability,
    /// Greater than the parameter at this index (`uniform`'s `hi`).
    Above(usize),
    /// A vector of non-negative weights with a positive sum.
    Weights,
    /// A vector of positive numbers.
    PositiveVector,
    /// A whole number from 0 to 2^53 (a count given as a real).
    Count,
    /// A square matrix whose lower triangle is a Cholesky factor: a positive diagonal (the
    /// upper triangle is not used).
    ScaleTril,
}

impl Domain {
    /// The requirement as the diagnostic words it: "must be positive".
    pub fn requirement(self, params: &[(&str, ParamKind)]) -> String {
        match self {
            Domain::Any => "may be anything".into(),
            Domain::Positive => "must be positive".into(),
            Domain::NonNegative => "must not be negative".into(),
            Domain::Probability => "must be between 0 and 1".into(),
            Domain::SuccessProbability => "must be in (0, 1]".into(),
            Domain::Above(index) => {
                format!("must be greater than `{}`", params.get(index).map_or("the lower bound", |(name, _)| name))
            }
            Domain::Weights => "must be non-negative weights with a positive sum".into(),
            Domain::PositiveVector => "must have positive elements".into(),
            Domain::Count => "must be a whole number from 0 to 2^53".into(),
            Domain::ScaleTril => "must have a positive diagonal".into(),
        }
    }
}

pub struct Distribution {
    pub name: &'static str,
    pub params: &'static [(&'static str, ParamKind)],
    /// What each parameter must satisfy, checked at run time before every use.
    pub domains: &'static [Domain],
    pub support: Support,
    /// Where a real draw lies.
    pub constraint: Constraint,
    /// Supported estimators; the first is the default.
    pub estimators: &'static [Estimator],
    /// Draws a value; differentiable in the arguments where a pathwise derivative exists.
    pub sample: SampleFn,
    pub log_density: LogDensityFn,
    /// For a discrete distribution, the summed log-mass of a vector of draws given as reals
    /// (0/1 for booleans) with elementwise arguments, in code whose size does not grow with the
    /// length and with the same bits as summing `log_density` element by element in order.
    /// `None` where only that sum is exact (a term such as `0 · log 0` would be NaN).
    pub log_density_of_draws: Option<LogDensityFn>,
}

impl fmt::Debug for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl Distribution {
    pub fn default_estimator(&self) -> Estimator {
        self.estimators[0]
    }

    pub fn supports(&self, estimator: Estimator) -> bool {
        self.estimators.contains(&estimator)
    }
}

use Estimator::*;
use ParamKind::{Matrix as M, Real as R, Vector as V};

pub const DISTRIBUTIONS: &[Distribution] = &[
    Distribution {
        name: "normal",
        params: &[("mu", R), ("sigma", R)],
        domains: &[Domain::Any, Domain::Positive],
        support: Support::Real,
        constraint: Constraint::Real,
        estimators: &[Reparam, Reinforce],
        sample: rules::normal_sample,
        log_density: rules::normal_log_density,
        log_density_of_draws: Some(rules::normal_log_density_of_draws),
    },
    Distribution {
        name: "uniform",
        params: &[("lo", R), ("hi", R)],
        domains: &[Domain::Any, Domain::Above(0)],
        support: Support::Real,
        constraint: Constraint::Bounded,
        estimators: &[Reparam, Reinforce],
        sample: rules::uniform_sample,
        log_density: rules::uniform_log_density,
        log_density_of_draws: None,
    },
    Distribution {
        name: "exponential",
        params: &[("rate", R)],
        domains: &[Domain::Positive],
        support: Support::Real,
        constraint: Constraint::Positive,
        estimators: &[Reparam, Reinforce],
        sample: rules::exponential_sample,
        log_density: rules::exponential_log_density,
        log_density_of_draws: None,
    },
    Distribution {
        name: "laplace",
        params: &[("mu", R), ("b", R)],
        domains: &[Domain::Any, Domain::Positive],
        support: Support::Real,
        constraint: Constraint::Real,
        estimators: &[Reparam, Reinforce],
        sample: rules::laplace_sample,
        log_density: rules::laplace_log_density,
        log_density_of_draws: None,
    },
    Distribution {
        name: "lognormal",
        params: &[("mu", R), ("sigma", R)],
        domains: &[Domain::Any, Domain::Positive],
        support: Support::Real,
        constraint: Constraint::Positive,
        estimators: &[Reparam, Reinforce],
        sample: rules::lognormal_sample,
        log_density: rules::lognormal_log_density,
        log_density_of_draws: None,
    },
    Distribution {
        name: "logit_normal",
        params: &[("mu", R), ("sigma", R)],
        domains: &[Domain::Any, Domain::Positive],
        support: Support::Real,
        constraint: Constraint::UnitInterval,
        estimators: &[Reparam, Reinforce],
        sample: rules::logit_normal_sample,
        log_density: rules::logit_normal_log_density,
        log_density_of_draws: None,
    },
    Distribution {
        name: "cauchy",
        params: &[("loc", R), ("scale", R)],
        domains: &[Domain::Any, Domain::Positive],
        support: Support::Real,
        constraint: Constraint::Real,
        estimators: &[Reparam, Reinforce],
        sample: rules::cauchy_sample,
        log_density: rules::cauchy_log_density,
        log_density_of_draws: None,
    },
    Distribution {
        name: "half_normal",
        params: &[("sigma", R)],
        domains: &[Domain::Positive],
        support: Support::Real,
        constraint: Constraint::Positive,
        estimators: &[Reparam, Reinforce],
        sample: rules::half_normal_sample,
        log_density: rules::half_normal_log_density,
        log_density_of_draws: None,
    },
    Distribution {
        name: "half_cauchy",
        params: &[("scale", R)],
        domains: &[Domain::Positive],
        support: Support::Real,
        constraint: Constraint::Positive,
        estimators: &[Reparam, Reinforce],
        sample: rules::half_cauchy_sample,
        log_density: rules::half_cauchy_log_density,
        log_density_of_draws: None,
    },
    Distribution {
        name: "student_t",
        params: &[("df", R), ("loc", R), ("scale", R)],
        domains: &[Domain::Positive, Domain::Any, Domain::Positive],
        support: Support::Real,
        constraint: Constraint::Real,
        estimators: &[Reparam, Reinforce],
        sample: rules::student_t_sample,
        log_density: rules::student_t_log_density,
        log_density_of_draws: None,
    },
    Distribution {
        name: "gamma",
        params: &[("shape", R), ("rate", R)],
        domains: &[Domain::Positive, Domain::Positive],
        support: Support::Real,
        constraint: Constraint::Positive,
        estimators: &[Implicit, Reinforce],
        sample: rules::gamma_sample,
        log_density: rules::gamma_log_density,
        log_density_of_draws: None,
    },
    Distribution {
        name: "beta",
        params: &[("a", R), ("b", R)],
        domains: &[Domain::Positive, Domain::Positive],
        support: Support::Real,
        constraint: Constraint::UnitInterval,
        estimators: &[Implicit, Reinforce],
        sample: rules::beta_sample,
        log_density: rules::beta_log_density,
        log_density_of_draws: None,
    },
    Distribution {
        name: "flip",
        params: &[("p", R)],
        domains: &[Domain::Probability],
        support: Support::Bool,
        constraint: Constraint::Discrete,
        estimators: &[Reinforce, Enum, Mvd],
        sample: rules::flip_sample,
        log_density: rules::flip_log_density,
        log_density_of_draws: Some(rules::flip_log_density_of_draws),
    },
    Distribution {
        name: "bernoulli_logit",
        params: &[("logit", R)],
        domains: &[Domain::Any],
        support: Support::Bool,
        constraint: Constraint::Discrete,
        estimators: &[Reinforce],
        sample: rules::bernoulli_logit_sample,
        log_density: rules::bernoulli_logit_log_density,
        log_density_of_draws: Some(rules::bernoulli_logit_log_density_of_draws),
    },
    Distribution {
        name: "categorical",
        params: &[("probs", V)],
        domains: &[Domain::Weights],
        support: Support::Int,
        constraint: Constraint::Discrete,
        estimators: &[Reinforce, Enum],
        sample: rules::categorical_sample,
        log_density: rules::categorical_log_density,
        log_density_of_draws: None,
    },
    Distribution {
        name: "geometric",
        params: &[("p", R)],
        domains: &[Domain::SuccessProbability],
        support: Support::Int,
        constraint: Constraint::Discrete,
        estimators: &[Reinforce],
        sample: rules::geometric_sample,
        log_density: rules::geometric_log_density,
        log_density_of_draws: None,
    },
    Distribution {
        name: "poisson",
        params: &[("rate", R)],
        domains: &[Domain::NonNegative],
        support: Support::Int,
        constraint: Constraint::Discrete,
        estimators: &[Reinforce, Mvd],
        sample: rules::poisson_sample,
        log_density: rules::poisson_log_density,
        log_density_of_draws: None,
    },
    Distribution {
        name: "binomial",
        params: &[("n", R), ("p", R)],
        domains: &[Domain::Count, Domain::Probability],
        support: Support::Int,
        constraint: Constraint::Discrete,
        estimators: &[Reinforce],
        sample: rules::binomial_sample,
        log_density: rules::binomial_log_density,
        log_density_of_draws: None,
    },
    Distribution {
        name: "negative_binomial",
        params: &[("r", R), ("p", R)],
        domains: &[Domain::Positive, Domain::SuccessProbability],
        support: Support::Int,
        constraint: Constraint::Discrete,
        estimators: &[Reinforce],
        sample: rules::negative_binomial_sample,
        log_density: rules::negative_binomial_log_density,
        log_density_of_draws: None,
    },
    Distribution {
        name: "mv_normal_diag",
        params: &[("mu", V), ("sigma", V)],
        domains: &[Domain::Any, Domain::PositiveVector],
        support: Support::RealVector,
        constraint: Constraint::Real,
        estimators: &[Reparam, Reinforce],
        sample: rules::mv_normal_diag_sample,
        log_density: rules::mv_normal_diag_log_density,
        log_density_of_draws: None,
    },
    Distribution {
        name: "mv_normal",
        params: &[("mu", V), ("scale_tril", M)],
        domains: &[Domain::Any, Domain::ScaleTril],
        support: Support::RealVector,
        constraint: Constraint::Real,
        estimators: &[Reparam, Reinforce],
        sample: rules::mv_normal_sample,
        log_density: rules::mv_normal_log_density,
        log_density_of_draws: None,
    },
    Distribution {
        name: "dirichlet",
        params: &[("concentration", V)],
        domains: &[Domain::PositiveVector],
        support: Support::RealVector,
        constraint: Constraint::Simplex,
        estimators: &[Implicit, Reinforce],
        sample: rules::dirichlet_sample,
        log_density: rules::dirichlet_log_density,
        log_density_of_draws: None,
    },
];

/// Other spellings of a distribution's name.
const ALIASES: &[(&str, &str)] = &[("bernoulli", "flip")];

pub fn lookup(name: &str) -> Option<&'static Distribution> {
    let name = ALIASES.iter().find(|(alias, _)| *alias == name).map_or(name, |(_, canonical)| canonical);
    DISTRIBUTIONS.iter().find(|distribution| distribution.name == name)
}

/// Every name a distribution can be called by.
pub fn names() -> impl Iterator<Item = &'static str> {
    DISTRIBUTIONS.iter().map(|distribution| distribution.name).chain(ALIASES.iter().map(|(alias, _)| *alias))
}
