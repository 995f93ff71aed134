//! The one error the numeric kernels report: a parameter outside its distribution's domain.
//!
//! Samplers validate their parameters and return [`DomainError`] instead of panicking or
//! producing garbage, so the compiler can turn a bad argument into a diagnostic at the call
//! site. This module owns only the error value and its message; it knows nothing about
//! source spans (the compiler attaches those) and must not grow variants for unrelated failures.

use std::fmt;

/// A distribution was asked to sample with a parameter outside its domain.
///
/// The message reads like `gamma: shape must be finite and > 0, got -1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DomainError {
    /// The distribution whose sampler rejected the parameter, e.g. `"gamma"`.
    pub distribution: &'static str,
    /// The rejected parameter, e.g. `"shape"`.
    pub parameter: &'static str,
    /// The offending value (for a weight vector: the offending weight, or its sum or length).
    pub value: f64,
    /// What the parameter must satisfy, phrased to follow "must", e.g. `"be finite and > 0"`.
    pub requirement: &'static str,
}

impl DomainError {
    pub(crate) const fn new(
        distribution: &'static str,
        parameter: &'static str,
        value: f64,
        requirement: &'static str,
    ) -> DomainError {
        DomainError { distribution, parameter, value, requirement }
    }
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `{:?}` writes 1e300 as `1e300`, not as 301 digits.
        write!(f, "{}: {} must {}, got {:?}", self.distribution, self.parameter, self.requirement, self.value)
    }
}

impl std::error::Error for DomainError {}
