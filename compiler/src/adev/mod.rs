//! ADEV: from an estimate's probabilistic program to unbiased estimators of its value and
//! gradient (`semantics.md` §1–§2).
//!
//! The pipeline, one module per step:
//! 1. `estimators` (used while lowering): each choice's forward rule as primal code;
//!    `rules` holds each distribution's sampler, log-density and domains.
//! 2. [`expand`]: inline each `E` body; run each `enum`/`mvd` choice's continuation once per
//!    outcome. Then `ir::batch` runs each minibatch's rows as one program over the batch (and,
//!    in [`compile_particles`], a training step's particles as one program over them).
//! 3. `ir::jvp`: forward mode — the [`Estimator::forward`] program.
//! 4. [`linearize`] and [`transpose`]: reverse mode — the [`Estimator::reverse`] program,
//!    value and whole gradient in one pass; then `ir::fuse`, which adds outer products into
//!    the gradients they accumulate in one pass and reads transposes in place, and, with
//!    `--precision f32`, `ir::precision`.
//!
//! The IR verifier runs after every step.

pub mod estimators;
pub mod expand;
pub mod linearize;
pub mod rules;
pub mod transpose;

use crate::diagnostics::Diagnostic;
use crate::ir::verify::{verify, IrError};
use crate::ir::{batch, const_fold, cse, dce, fuse, jvp, precision, schedule, Function};
use crate::lower::internal;
use ppl_runtime::Precision;

/// An estimate compiled three ways. Every function takes the program's parameters (in
/// declaration order) and a random stream; runs on the same stream draw the same numbers.
#[derive(Debug)]
pub struct Estimator {
    /// `(params…, stream) -> (estimate)`.
    pub primal: Function,
    /// `(params…, stream, tangents of the differentiated params…) -> (estimate, tangent)`.
    pub forward: Function,
    /// `(params…, stream) -> (estimate, gradient for each differentiated param…)`.
    pub reverse: Function,
    /// Which parameters are differentiated (one flag per function parameter).
    pub wrt: Vec<bool>,
}

/// Compiles a lowered estimate `(params…, stream) -> (estimate)` (with `Expect` and `Branch`
/// operations), differentiating with respect to the parameters flagged in `wrt`; with
/// `batch_rows`, a minibatch's rows run as one program over the batch (`ir::batch`).
pub fn compile(
    lowered: Function,
    wrt: &[bool],
    batch_rows: bool,
    products: Precision,
) -> Result<Estimator, Diagnostic> {
    let mut expanded = expanded(lowered)?;
    if batch_rows && batch::batch_loops(&mut expanded) {
        optimized(&mut expanded)?;
    }
    differentiate(expanded, wrt, products)
}

/// Compiles a sum of a training step's particles (`lower::Program::lower_estimates`) if
/// batching runs them as one program that multiplies matrices by matrices where each
/// particle multiplied them by vectors (a network's layers applied to every particle's draw);
/// `None` if it does not, and the particles are better run one by one, on every thread.
pub fn compile_particles(
    lowered: Function,
    wrt: &[bool],
    products: Precision,
) -> Result<Option<Estimator>, Diagnostic> {
    let mut expanded = expanded(lowered)?;
    let unbatched = top_level_matrix_products(&expanded);
    if !batch::batch_loops(&mut expanded) {
        return Ok(None);
    }
    optimized(&mut expanded)?;
    if top_level_matrix_products(&expanded) <= unbatched {
        return Ok(None);
    }
    differentiate(expanded, wrt, products).map(Some)
}

/// How many products of two matrices `function` computes outside its loops and branches.
fn top_level_matrix_products(function: &Function) -> usize {
    let is_matrix = |value: &crate::ir::Value| matches!(function.ty(*value), Some(crate::ir::Type::Mat(..)));
    function
        .body
        .insts
        .iter()
        .filter(|inst| matches!(&inst.op, crate::ir::Op::MatMul(a, b) if is_matrix(a) && is_matrix(b)))
        .count()
}

/// The lowered estimate with its `Expect` and `Branch` operations expanded, optimised.
fn expanded(mut lowered: Function) -> Result<Function, Diagnostic> {
    verified(&lowered)?;
    const_fold::fold_constants(&mut lowered);
    let mut expanded = expand::expand(&lowered)?;
    optimized(&mut expanded)?;
    Ok(expanded)
}

/// Forward and reverse mode of an expanded estimate, products of two matrices in `products`
/// precision.
fn differentiate(expanded: Function, wrt: &[bool], products: Precision) -> Result<Estimator, Diagnostic> {
    let mut primal = jvp::jvp(&expanded, &vec![false; wrt.len()]).map_err(|error| bug(error, &expanded))?;
    primal.body.results.truncate(1);
    primal.name = expanded.name.clone();
    optimized(&mut primal)?;

    let mut forward = jvp::jvp(&expanded, wrt).map_err(|error| bug(error, &expanded))?;
    optimized(&mut forward)?;

    let tangent_count = forward.body.params.len() - expanded.body.params.len();
    let mut reverse = transpose::reverse(&forward, tangent_count).map_err(|error| bug(error, &forward))?;
    optimized(&mut reverse)?;
    fuse::fuse_outer_products(&mut reverse);
    fuse::batch_outer_products(&mut reverse);
    for function in [&mut primal, &mut forward, &mut reverse] {
        fuse::fuse_transposes(function);
        if products == Precision::Single {
            precision::compute_in_single_precision(function);
        }
        dce::eliminate_dead_code(function);
        schedule::cluster_elementwise(function);
        verified(function)?;
    }
    Ok(Estimator { primal, forward, reverse, wrt: wrt.to_vec() })
}

/// Constant folding, common subexpressions and dead code, verified after each.
pub fn optimize(function: &mut Function) -> Result<(), IrError> {
    verify(function)?;
    const_fold::fold_constants(function);
    verify(function)?;
    cse::eliminate_common_subexpressions(function);
    verify(function)?;
    dce::eliminate_dead_code(function);
    verify(function)
}

fn verified(function: &Function) -> Result<(), Diagnostic> {
    verify(function).map_err(|error| bug(error, function))
}

fn optimized(function: &mut Function) -> Result<(), Diagnostic> {
    let before = function.clone();
    optimize(function).map_err(|error| bug(error, &before))
}

/// A malformed function is a compiler bug: the report carries the function, for the bug report.
fn bug(error: IrError, function: &Function) -> Diagnostic {
    internal(None, error).with_note(format!("the function being compiled:\n{function}"))
}
