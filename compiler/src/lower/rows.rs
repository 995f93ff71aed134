//! Estimates over a data set's rows: `mean_over(rows, f)` and `sum_over(rows, f)`, on all rows
//! or on a minibatch (`batch: B`).
//!
//! A minibatch is `B` distinct rows drawn uniformly from the estimate's own stream (a fresh one
//! every sample, so every training step sees a new batch); each row's estimate `f(row)` runs
//! on a stream of its own, and the mean of the `B` estimates (times the number of rows, for a
//! sum) is unbiased for the mean (sum) over all rows. Without `batch`, every row runs once, in
//! order. The rows run in one loop whose code is one row's.
//!
//! An estimate can also be computed in parts of its rows (see [`RowsPart`]), which a training
//! step's minibatch and a one-sample estimate over all rows run side by side.
//!
//! This module must not decide how rows are batched for the machine, nor into how many parts
//! a minibatch is split; it states the estimate.

use std::rc::Rc;

use super::value::{Env, Estimate, OverRows, Val};
use super::{internal, FunctionLowerer, Lowered};
use crate::ir::{Op, Sampler, Type, UnaryOp, Value};
use crate::syntax::ast::{Arg, Expr};

/// Which part of its rows an estimate over rows computes: of the `B` rows drawn (or of all
/// rows, in order), the `B / parts` from position `part · B / parts` on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowsPart {
    /// An int value of the function: which part, from 0.
    pub part: Value,
    /// How many parts; divides `B`.
    pub parts: u32,
}

impl<'p, 'a> FunctionLowerer<'p, 'a> {
    /// `mean_over(…)` or `sum_over(…)` as a symbolic estimate.
    pub(super) fn over_rows_call(
        &mut self,
        env: &mut Env<'a>,
        expr: &'a Expr,
        name: &str,
        args: &'a [Arg],
    ) -> Lowered<Val<'a>> {
        let slots = super::expr::bind_args(&["rows", "f", "batch"], args);
        let (Some(rows), Some(function)) = (slots[0], slots[1]) else {
            return Err(internal(Some(expr.span), "`mean_over` without its arguments"));
        };
        let rows = self.expr(env, rows)?;
        let per_row = env
            .context
            .calls
            .get(&function.id)
            .copied()
            .ok_or_else(|| internal(Some(function.span), "the per-row function was not instantiated"))?;
        let batch = match slots[2] {
            Some(batch) => match self.expr(env, batch)? {
                Val::Ir(value) => Some(self.constant_count(value, batch)?),
                _ => return Err(internal(Some(batch.span), "a minibatch size that is not an int")),
            },
            None => None,
        };
        let over = OverRows { rows, per_row, batch, sum: name == "sum_over", span: expr.span };
        Ok(Val::Est(Rc::new(Estimate::OverRows(over))))
    }

    fn constant_count(&mut self, value: Value, expr: &Expr) -> Lowered<u32> {
        self.builder
            .int_constant(value)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| internal(Some(expr.span), "a minibatch size that is not a constant"))
    }

    /// One sample of the estimate on `rng`.
    pub(super) fn over_rows(&mut self, over: &OverRows<'a>, rng: Value) -> Lowered<Value> {
        let span = over.span;
        let count = match &over.rows {
            Val::Stacked { len, .. } => Some(*len),
            Val::Ir(data) | Val::Array { data, .. } => match self.builder.ty(*data) {
                Some(Type::Mat(rows, _) | Type::Vec(rows)) => Some(rows),
                _ => None,
            },
            _ => None,
        };
        let count = count.ok_or_else(|| internal(Some(span), "rows that are not a matrix or vector"))?;
        let size = over.batch.unwrap_or(count).min(count);
        let rows_part = self.rows_part.take();
        let (chosen, rng) = match over.batch {
            Some(_) => {
                let sampler = Sampler::Subsample { population: count, size };
                let drawn = self.builder.push(Op::Sample { sampler, args: Vec::new(), rng })?;
                (Some(drawn[0]), drawn[1])
            }
            None => (None, rng),
        };
        // The per-row estimate is of a real, or of a vector summed element by element.
        let checked = self.program.checked().instances.get(over.per_row);
        let estimated = match checked.map(|instance| &instance.ret) {
            Some(crate::types::Type::Est(value)) => super::ir_type(value).unwrap_or(Type::Real),
            _ => Type::Real,
        };
        let zero = self.builder.filled(estimated, 0.0)?;
        let (rows_here, first, rng) = match rows_part {
            Some(RowsPart { part, parts }) if parts > 0 && size % parts == 0 => {
                let rows_here = size / parts;
                let length = self.builder.int(i64::from(rows_here))?;
                let first = self.builder.mul(part, length)?;
                (rows_here, Some(first), self.streams_skipped(rng, first)?)
            }
            None => (size, None, rng),
            Some(_) => return Err(internal(Some(span), "parts that do not divide the rows")),
        };
        let (lo, hi) = (self.builder.int(0)?, self.builder.int(i64::from(rows_here))?);
        let params = self.builder.begin_block(&[Type::Int, estimated, Type::Rng]);
        let (position, total, stream) = (params[0], params[1], params[2]);
        // The position among the rows drawn (or all rows), from the part's first.
        let position = match first {
            Some(first) => self.builder.add(first, position)?,
            None => position,
        };
        let index = match chosen {
            Some(chosen) => {
                let row = self.builder.push1(Op::Extract { aggregate: chosen, index: position })?;
                self.builder.unary(UnaryOp::ToInt, row)?
            }
            None => position,
        };
        let row = self.element(over.rows.clone(), index, span)?;
        let Val::Est(estimate) = self.call_fn(over.per_row, vec![row], span)? else {
            return Err(internal(Some(span), "the per-row function did not return an estimate"));
        };
        let streams = self.builder.push(Op::Split { rng: stream })?;
        let value = self.emit_estimate(&estimate, streams[1])?;
        let next = self.builder.add(total, value)?;
        let body = self.builder.end_block(vec![next, streams[0]])?;
        let results = self.builder.push_for(lo, hi, vec![zero, rng], body)?;
        let total = results.first().copied().ok_or_else(|| internal(Some(span), "a loop without results"))?;
        let scale = match over.sum {
            true => f64::from(count) / f64::from(size),
            false => 1.0 / f64::from(size),
        };
        if scale == 1.0 {
            return Ok(total);
        }
        let scale = self.builder.real(scale)?;
        Ok(self.builder.mul(total, scale)?)
    }

    /// The stream the rows' loop carries into position `first`: each position splits its own
    /// stream off the carried one.
    fn streams_skipped(&mut self, rng: Value, first: Value) -> Lowered<Value> {
        let zero = self.builder.int(0)?;
        let params = self.builder.begin_block(&[Type::Int, Type::Rng]);
        let streams = self.builder.push(Op::Split { rng: params[1] })?;
        let body = self.builder.end_block(vec![streams[0]])?;
        let skipped = self.builder.push_for(zero, first, vec![rng], body)?;
        skipped.first().copied().ok_or_else(|| internal(None, "a loop without results"))
    }
}
