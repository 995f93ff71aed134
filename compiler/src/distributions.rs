//! The table of distributions: one entry per distribution, the single place a new one is added.
//!
//! Each entry states the parameters (in order), what a choice yields, and which gradient
//! estimators it supports, the first being its default. The type checker reads it to check
//! calls and `via` annotations; later stages add each entry's sampler, log-density and
//! forward rule beside it.

use std::fmt;

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

/// The kind of each parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// A real; a vector here makes the choice a vector of independent draws.
    Real,
    /// A real vector (probabilities, means, scales).
    Vector,
}

#[derive(Debug)]
pub struct Distribution {
    pub name: &'static str,
    pub params: &'static [(&'static str, ParamKind)],
    pub support: Support,
    /// Supported estimators; the first is the default.
    pub estimators: &'static [Estimator],
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
use ParamKind::{Real as R, Vector as V};

pub const DISTRIBUTIONS: &[Distribution] = &[
    Distribution {
        name: "normal",
        params: &[("mu", R), ("sigma", R)],
        support: Support::Real,
        estimators: &[Reparam, Reinforce],
    },
    Distribution {
        name: "uniform",
        params: &[("lo", R), ("hi", R)],
        support: Support::Real,
        estimators: &[Reparam, Reinforce],
    },
    Distribution {
        name: "exponential",
        params: &[("rate", R)],
        support: Support::Real,
        estimators: &[Reparam, Reinforce],
    },
    Distribution {
        name: "laplace",
        params: &[("mu", R), ("b", R)],
        support: Support::Real,
        estimators: &[Reparam, Reinforce],
    },
    Distribution {
        name: "lognormal",
        params: &[("mu", R), ("sigma", R)],
        support: Support::Real,
        estimators: &[Reparam, Reinforce],
    },
    Distribution {
        name: "cauchy",
        params: &[("loc", R), ("scale", R)],
        support: Support::Real,
        estimators: &[Reparam, Reinforce],
    },
    Distribution {
        name: "gamma",
        params: &[("shape", R), ("rate", R)],
        support: Support::Real,
        estimators: &[Implicit, Reinforce],
    },
    Distribution {
        name: "beta",
        params: &[("a", R), ("b", R)],
        support: Support::Real,
        estimators: &[Implicit, Reinforce],
    },
    Distribution { name: "flip", params: &[("p", R)], support: Support::Bool, estimators: &[Reinforce, Enum, Mvd] },
    Distribution {
        name: "categorical",
        params: &[("probs", V)],
        support: Support::Int,
        estimators: &[Reinforce, Enum],
    },
    Distribution { name: "geometric", params: &[("p", R)], support: Support::Int, estimators: &[Reinforce] },
    Distribution { name: "poisson", params: &[("rate", R)], support: Support::Int, estimators: &[Reinforce, Mvd] },
    Distribution {
        name: "mv_normal_diag",
        params: &[("mu", V), ("sigma", V)],
        support: Support::RealVector,
        estimators: &[Reparam, Reinforce],
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
