//! The forward rules of ADEV's primitives (`semantics.md` §1), applied where a choice is
//! lowered inside `E { … }`.
//!
//! Every rule is stated as primal code whose forward-mode derivative *is* the rule, using
//! [`Op::WithTangent`] for tangents that are not the derivative of the value's code:
//!
//! - `reparam`, `implicit`: the distribution's pathwise sampler, differentiated as it stands.
//! - `reinforce(baseline: b)`: the draw from detached arguments (zero tangent), and the
//!   score `log p(v; θ)` added to the expectation's *score*, a value with primal 0 whose
//!   tangent is `Σ d log p`. At the end of the expectation, [`finish`] turns the result `l`
//!   into `(l, dl + l·Σ d log p − Σ b·d log p)`: each site's `(l − b)·d log p`.
//! - `enum`, `mvd`: an [`Op::Branch`] left for `expand`, which runs the rest of the
//!   expectation once per outcome.
//!
//! Because the score travels with the program's other values (through branches and loop
//! iterations), a site inside a continuation contributes with that continuation's `l`,
//! exactly as the CPS rule says.

use crate::distributions::{Distribution, Estimator};
use crate::ir::verify::IrError;
use crate::ir::{BranchRule, FunctionBuilder, Op, UnaryOp, Value};

/// What an expectation threads through its body besides values: the random stream and the
/// REINFORCE scores.
#[derive(Clone, Copy, Debug)]
pub struct ExpectState {
    pub rng: Value,
    /// Σ (log p − detach(log p)) over REINFORCE sites: primal 0, tangent Σ d log p.
    pub score: Value,
    /// Σ detach(b)·(log p − detach(log p)) over sites with a baseline b.
    pub baseline_score: Value,
}

impl ExpectState {
    pub fn start(b: &mut FunctionBuilder, rng: Value) -> Result<Self, IrError> {
        let zero = b.real(0.0)?;
        Ok(ExpectState { rng, score: zero, baseline_score: zero })
    }

    /// How many values [`ExpectState::values`] returns.
    pub const VALUES: usize = 3;

    /// The values a branch or loop must carry, in a fixed order.
    pub fn values(&self) -> [Value; 3] {
        [self.rng, self.score, self.baseline_score]
    }

    pub fn from_values(values: &[Value]) -> Option<Self> {
        match values {
            [rng, score, baseline_score] => {
                Some(ExpectState { rng: *rng, score: *score, baseline_score: *baseline_score })
            }
            _ => None,
        }
    }
}

/// The estimator of a choice and its baseline, if any.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub estimator: Estimator,
    pub baseline: Option<Value>,
}

/// Draws `dist(args)` under `rule`, advancing `state`; returns the value drawn.
pub fn choose(
    b: &mut FunctionBuilder,
    state: &mut ExpectState,
    dist: &'static Distribution,
    args: &[Value],
    rule: Rule,
) -> Result<Value, IrError> {
    match rule.estimator {
        Estimator::Reparam | Estimator::Implicit => {
            let (value, rng) = (dist.sample)(b, args, state.rng)?;
            state.rng = rng;
            Ok(value)
        }
        Estimator::Reinforce => {
            let detached = args.iter().map(|arg| b.unary(UnaryOp::Detach, *arg)).collect::<Result<Vec<_>, _>>()?;
            let (drawn, rng) = (dist.sample)(b, &detached, state.rng)?;
            state.rng = rng;
            let value = if b.ty(drawn).is_some_and(|ty| ty.is_differentiable()) {
                b.unary(UnaryOp::Detach, drawn)?
            } else {
                drawn
            };
            let log_density = (dist.log_density)(b, args, value)?;
            let zero = b.real(0.0)?;
            let score = b.push1(Op::WithTangent { value: zero, tangent_of: log_density })?;
            state.score = b.add(state.score, score)?;
            if let Some(baseline) = rule.baseline {
                let constant = b.unary(UnaryOp::Detach, baseline)?;
                let weighted = b.mul(constant, log_density)?;
                let baseline_score = b.push1(Op::WithTangent { value: zero, tangent_of: weighted })?;
                state.baseline_score = b.add(state.baseline_score, baseline_score)?;
            }
            Ok(value)
        }
        Estimator::Enum | Estimator::Mvd => {
            let branch = match (rule.estimator, dist.name) {
                (Estimator::Enum, "flip") => BranchRule::EnumFlip,
                (Estimator::Enum, "categorical") => BranchRule::EnumCategorical,
                (Estimator::Mvd, "flip") => BranchRule::MvdFlip,
                (Estimator::Mvd, "poisson") => BranchRule::MvdPoisson,
                _ => return Err(IrError { message: format!("{} via {}", dist.name, rule.estimator) }),
            };
            let results = b.push(Op::Branch { rule: branch, args: args.to_vec(), rng: state.rng })?;
            state.rng = results[1];
            Ok(results[0])
        }
    }
}

/// The expectation's result `l` with every REINFORCE site's contribution added to its tangent.
pub fn finish(b: &mut FunctionBuilder, state: &ExpectState, result: Value) -> Result<Value, IrError> {
    let constant = b.unary(UnaryOp::Detach, result)?;
    let scored = b.mul(constant, state.score)?;
    let with_score = b.add(result, scored)?;
    let tangent = b.sub(with_score, state.baseline_score)?;
    b.push1(Op::WithTangent { value: result, tangent_of: tangent })
}
