//! Summing an enumerated choice out of `density`, one loop iteration at a time.
//!
//! When `density` scores a trace that lacks an address the checker found summable
//! (`types::check::plates`: `z[i] ~ flip(p) via enum` directly in a loop body, read only as
//! `z[i]` later in that iteration), the rest of the iteration is lowered once per outcome `v`,
//! its scores starting from zero, giving the iteration's log density `lᵥ` with `z[i] = v`.
//! The iteration then adds `log Σᵥ p(v) exp(lᵥ)` = `logsumexp(log p(v) + lᵥ)`: the marginal,
//! exactly, at the cost of running the rest of each iteration once per outcome — linear in the
//! number of iterations where enumerating the choices in sequence would be exponential.
//!
//! This file must not decide which choices are summable (the checker does) and must not sample:
//! every other choice of the rest of the iteration is constrained, as `density` requires.

use super::value::{Env, Val};
use super::{internal, FunctionLowerer, Lowered};
use crate::ir::{Op, ReduceOp, Type};
use crate::syntax::ast::{self, Block, StmtKind};

impl<'p, 'a> FunctionLowerer<'p, 'a> {
    /// Whether `density` sums the choice `stmt` out here: the innermost `gen` body is scoring a
    /// trace that lacks its address, which the checker found summable.
    pub(super) fn sums_out(&self, stmt: &ast::Stmt) -> bool {
        let StmtKind::Choice { address, .. } = &stmt.kind else { return false };
        let Some(state) = self.gen.last() else { return false };
        let name = address.name.name.as_str();
        let given = match &state.constraints {
            Some(Val::Record(fields)) => fields.iter().any(|(field, _)| field == name),
            _ => return false,
        };
        !given && state.summable.iter().any(|summable| summable == name)
    }

    /// The outcome `base[indices]` reads if it is `z[i]` of a choice being summed out (the
    /// checker allows no other read of `z`).
    pub(super) fn summed_out_read(&self, base: &ast::Expr, indices: &[ast::Expr]) -> Option<crate::ir::Value> {
        let ast::ExprKind::Name(name) = &base.kind else { return None };
        let [_] = indices else { return None };
        self.summed_out.iter().rev().find(|(summed, _)| summed == name).map(|(_, outcome)| *outcome)
    }

    /// Lowers the choice `block.stmts[index]` summed out, and the rest of `block` (a loop body)
    /// once per outcome; see the module documentation.
    pub(super) fn summed_out(&mut self, env: &mut Env<'a>, block: &'a Block, index: usize) -> Lowered<Val<'a>> {
        let stmt = block.stmts.get(index).ok_or_else(|| internal(None, "a summed-out choice out of its block"))?;
        let StmtKind::Choice { address, dist, .. } = &stmt.kind else {
            return Err(internal(Some(stmt.span), "summing out a statement that is not a choice"));
        };
        let span = stmt.span;
        let name = address.name.name.as_str();
        let Val::Dist(distribution, args) = self.expr(env, dist)? else {
            return Err(internal(Some(span), "a summed-out choice of something other than a distribution"));
        };
        self.builder.set_span(Some(span));
        self.check_domains(distribution, &args)?;
        let outcomes = match self.builder.ty(args[0]) {
            Some(Type::Vec(categories)) => (0..i64::from(categories)).map(|k| self.builder.int(k)).collect(),
            _ => [true, false].into_iter().map(|outcome| self.builder.boolean(outcome)).collect::<Result<Vec<_>, _>>(),
        }?;
        let state = self.gen.last().ok_or_else(|| internal(Some(span), "no generative function"))?;
        let before = (state.selected, state.other);
        let zero = self.builder.real(0.0)?;
        let mut totals = Vec::with_capacity(outcomes.len());
        // Each outcome's rest of the iteration records the same addresses as the last one's: the
        // trace runs through them in turn (so its vectors are updated in place, not copied per
        // outcome).
        for outcome in outcomes {
            let log_probability = self.log_density(distribution, &args, &Val::Ir(outcome), span)?;
            let state = self.gen.last_mut().ok_or_else(|| internal(Some(span), "no generative function"))?;
            (state.selected, state.other) = (log_probability, zero);
            // The outcome is not recorded in the trace (which `density` does not return): the
            // iteration reads it as `z[i]` straight from here.
            self.summed_out.push((name.to_string(), outcome));
            let rest = self.statements(&mut env.clone(), block, index + 1, false);
            self.summed_out.pop();
            rest?;
            let state = self.gen.last().ok_or_else(|| internal(Some(span), "no generative function"))?;
            totals.push(self.builder.add(state.selected, state.other)?);
        }
        let totals = self.builder.push1(Op::Build(totals))?;
        let marginal = self.builder.push1(Op::Reduce(ReduceOp::LogSumExp, totals))?;
        // The sum goes where the choice's own score would.
        let state = self.gen.last_mut().ok_or_else(|| internal(Some(span), "no generative function"))?;
        (state.selected, state.other) = before;
        if state.selection.contains(name) {
            state.selected = self.builder.add(state.selected, marginal)?;
        } else {
            state.other = self.builder.add(state.other, marginal)?;
        }
        Ok(Val::unit())
    }
}
