//! Estimates over a data set's rows in parts that run side by side: a training step's minibatch
//! (`mean_over(…, batch: B)`) and a one-sample estimate over all rows (a test set's ELBO). Each
//! part runs consecutive rows of the same draw, on the streams they have in the whole
//! (`lower::Program::lower_estimate_part`); the parts' sum is the estimate.
//!
//! This module decides into how many parts an estimate is split — from its rows alone, never
//! from the threads, so that results do not depend on them — and must not run anything.

use super::Session;
use crate::diagnostics::Diagnostic;
use crate::syntax::ast::{Expr, ExprKind};
use crate::types::{Dim, Type as SurfaceType};

/// An estimate is split into parts of at least this many rows: fewer would multiply matrices
/// too thin for `gemm` to run at full speed.
const PART_ROWS: u64 = 32;

/// An estimate is split into at most this many parts. Each part's gradient is summed into the
/// whole: more parts would cost more passes over a network's gradient than two threads save.
const MOST_PARTS: u32 = 2;

/// Into how many parts an estimate over `rows` rows is split: as many as fit [`PART_ROWS`] and
/// [`MOST_PARTS`] and divide the rows evenly.
pub(super) fn parts_of(rows: u64) -> u32 {
    (1..=MOST_PARTS)
        .rev()
        .find(|parts| rows % u64::from(*parts) == 0 && rows / u64::from(*parts) >= PART_ROWS)
        .unwrap_or(1)
}

/// The particle (or sample) and part of call `call` of work split into `parts` parts.
pub(super) fn particle_and_part(call: u64, parts: u32) -> (u64, u32) {
    let parts = u64::from(parts.max(1));
    (call / parts, (call % parts) as u32)
}

/// The rows of a data set an estimate walks through.
#[derive(Clone, Copy, Debug)]
pub(super) struct OverRows {
    /// The data set's rows.
    pub rows: u64,
    /// The minibatch drawn per estimate, or `None` for every row.
    pub batch: Option<u64>,
}

impl OverRows {
    /// The rows one estimate runs.
    pub fn rows_per_estimate(self) -> u64 {
        self.batch.map_or(self.rows, |batch| batch.min(self.rows))
    }
}

impl<'a> Session<'a> {
    /// The rows `objective` walks through, if it is a `mean_over(…)` or `sum_over(…)` call.
    pub(super) fn over_rows(&self, file: usize, objective: &'a Expr) -> Result<Option<OverRows>, Diagnostic> {
        let ExprKind::Call { callee, args } = &objective.kind else { return Ok(None) };
        if !matches!(callee.name.as_str(), "mean_over" | "sum_over") {
            return Ok(None);
        }
        let slots = crate::lower::bind_args(&["rows", "f", "batch"], args);
        let Some(rows) = slots[0] else { return Ok(None) };
        let types = self.program.checked().top_level_types.get(file);
        let rows = match types.and_then(|types| types.get(&rows.id)) {
            Some(
                SurfaceType::Mat(Dim::Known(n), _)
                | SurfaceType::Vec(Dim::Known(n))
                | SurfaceType::Array(_, Dim::Known(n)),
            ) => *n,
            _ => return Ok(None),
        };
        let batch = match slots[2] {
            Some(batch) => Some(self.count(file, batch)?),
            None => None,
        };
        Ok(Some(OverRows { rows, batch }))
    }
}
