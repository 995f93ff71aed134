//! Expanding expectations: each `Expect` is replaced by its body, and each `enum`/`mvd`
//! choice ([`Op::Branch`]) runs the rest of its expectation — its continuation — once per
//! outcome, as the rules of `semantics.md` §1 require.
//!
//! The continuation of a choice is everything after it up to the end of its `E` body:
//! the rest of its block, then the rest of each enclosing block. It is copied into the body
//! of a two-iteration (or K-iteration) loop, so it is code that runs more than once without
//! being duplicated per outcome; a choice inside an `if` takes the rest of the body into both
//! branches, and a choice inside a `for` unrolls that loop (its bounds must be constants),
//! so that "the rest of iteration i and the remaining iterations" is straight-line code.
//!
//! The combination of the outcomes is ordinary code whose forward-mode derivative is the
//! rule: `Σ pᵢ·lᵢ` for `enum`, `l + detach(l_true − l_false)·(p − p)` for `mvd`.

use std::collections::HashMap;

use super::rules;
use crate::diagnostics::{Diagnostic, ErrorCode};
use crate::ir::verify::IrError;
use crate::ir::{BranchRule, CompareOp, Function, FunctionBuilder, Inst, Op, Type, UnaryOp, Value};

/// Loops unrolled because they contain an `enum`/`mvd` choice may not exceed this many
/// instructions in total.
const MAX_EXPANDED_INSTRUCTIONS: usize = 2_000_000;

/// The most times one estimate may run its innermost continuation. Choices in sequence nest
/// their outcome loops, so k `enum` flips run the rest of the expectation 2^k times: 2^16 runs
/// take milliseconds per estimate, 2^20 seconds, 2^30 hours.
const MAX_CONTINUATION_RUNS: u64 = 1 << 16;

/// The function with every expectation inlined and every multi-run choice expanded.
pub fn expand(function: &Function) -> Result<Function, Diagnostic> {
    let param_types: Vec<Type> = function.body.params.iter().filter_map(|p| function.ty(*p)).collect();
    let (builder, params) = FunctionBuilder::new(function.name.clone(), &param_types);
    let mut constants = HashMap::new();
    crate::ir::int_constants(&function.body, &mut constants);
    let mut expander = Expander {
        builder,
        map: function.body.params.iter().copied().zip(params).collect(),
        constants,
        emitted: 0,
        runs: 1,
        nested_choices: 0,
        source_types: function.value_types.clone(),
        estimated: Type::Real,
    };
    let body = &function.body;
    let results = expander.copy_frames(&[Frame::of(&body.insts, &body.results, &[])])?;
    Ok(expander.builder.finish(results)?)
}

/// Whether an operation is, or contains outside nested expectations, a multi-run choice.
fn contains_branch(op: &Op) -> bool {
    match op {
        Op::Branch { .. } => true,
        Op::Expect { .. } => false,
        op => op.blocks().iter().any(|block| block.insts.iter().any(|inst| contains_branch(&inst.op))),
    }
}

/// A stretch of source instructions still to copy: when copied, its results are bound to
/// `binds` (the values that receive them in the source), and `index` binds a loop variable of
/// an unrolled iteration first.
#[derive(Clone, Copy)]
struct Frame<'s> {
    insts: &'s [Inst],
    results: &'s [Value],
    binds: &'s [Value],
    index: Option<(Value, i64)>,
}

impl<'s> Frame<'s> {
    fn of(insts: &'s [Inst], results: &'s [Value], binds: &'s [Value]) -> Self {
        Frame { insts, results, binds, index: None }
    }
}

struct Expander {
    builder: FunctionBuilder,
    /// Each source value as a value of the new function.
    map: HashMap<Value, Value>,
    /// Integer constants of the source (loop bounds).
    constants: HashMap<Value, i64>,
    emitted: usize,
    /// How many times the code being emitted runs per estimate: the product of the outcome
    /// counts of the `enum`/`mvd` choices whose continuation it is part of.
    runs: u64,
    /// The number of such choices around it.
    nested_choices: u32,
    /// The source's value types.
    source_types: Vec<Type>,
    /// The type of the expectation being expanded: `Real`, or a vector estimated elementwise.
    estimated: Type,
}

impl Expander {
    fn value(&self, value: Value) -> Result<Value, IrError> {
        self.map.get(&value).copied().ok_or(IrError { message: format!("{value} used before definition") })
    }

    fn bind(&mut self, sources: &[Value], values: &[Value]) {
        for (source, value) in sources.iter().zip(values) {
            self.map.insert(*source, *value);
        }
    }

    /// Copies the frames in order, the first with any multi-run choice taking the rest of the
    /// frames as its continuation; returns the last frame's results.
    fn copy_frames(&mut self, frames: &[Frame<'_>]) -> Result<Vec<Value>, Diagnostic> {
        let Some((first, rest)) = frames.split_first() else { return Ok(Vec::new()) };
        if let Some((variable, iteration)) = first.index {
            let constant = self.builder.int(iteration)?;
            self.map.insert(variable, constant);
        }
        for (i, inst) in first.insts.iter().enumerate() {
            self.builder.set_span(inst.span);
            if contains_branch(&inst.op) {
                let remaining = Frame { insts: &first.insts[i + 1..], index: None, ..*first };
                let continuation: Vec<Frame<'_>> = std::iter::once(remaining).chain(rest.iter().copied()).collect();
                return self.split(inst, &continuation);
            }
            self.copy_inst(inst)?;
        }
        let values = first.results.iter().map(|value| self.value(*value)).collect::<Result<Vec<_>, _>>()?;
        self.bind(first.binds, &values);
        if rest.is_empty() {
            Ok(values)
        } else {
            self.copy_frames(rest)
        }
    }

    /// Copies an instruction without multi-run choices (outside nested expectations).
    fn copy_inst(&mut self, inst: &Inst) -> Result<(), Diagnostic> {
        self.emitted += 1;
        if self.emitted > MAX_EXPANDED_INSTRUCTIONS {
            return Err(too_large(inst));
        }
        match &inst.op {
            Op::Expect { rng, body } => {
                let rng = self.value(*rng)?;
                self.bind(&body.params, &[rng]);
                let result_type = body.results.first().and_then(|result| self.source_types.get(result.0 as usize));
                let enclosing = std::mem::replace(&mut self.estimated, result_type.copied().unwrap_or(Type::Real));
                // The body's value is the expectation's, whatever continuations it went through.
                let results = self.copy_frames(&[Frame::of(&body.insts, &body.results, &[])]);
                self.estimated = enclosing;
                self.bind(&inst.results, &results?);
            }
            Op::If { cond, then, otherwise } => {
                let cond = self.value(*cond)?;
                let mut blocks = Vec::with_capacity(2);
                for block in [then, otherwise] {
                    self.builder.begin_block(&[]);
                    let results = self.copy_frames(&[Frame::of(&block.insts, &block.results, &[])])?;
                    blocks.push(self.builder.end_block(results)?);
                }
                let (Some(otherwise), Some(then)) = (blocks.pop(), blocks.pop()) else {
                    return Err(IrError { message: "missing branch".into() }.into());
                };
                let results = self.builder.push_if(cond, then, otherwise)?;
                self.bind(&inst.results, &results);
            }
            Op::For { lo, hi, init, body } => {
                let (lo, hi) = (self.value(*lo)?, self.value(*hi)?);
                let init = init.iter().map(|value| self.value(*value)).collect::<Result<Vec<_>, _>>()?;
                let mut types = vec![Type::Int];
                types.extend(init.iter().filter_map(|value| self.builder.ty(*value)));
                let params = self.builder.begin_block(&types);
                self.bind(&body.params, &params);
                let results = self.copy_frames(&[Frame::of(&body.insts, &body.results, &[])])?;
                let block = self.builder.end_block(results)?;
                let results = self.builder.push_for(lo, hi, init, block)?;
                self.bind(&inst.results, &results);
            }
            op => {
                let mut mapped = op.clone();
                for operand in mapped.operands_mut() {
                    *operand = self.value(*operand)?;
                }
                let results = self.builder.push(mapped)?;
                self.bind(&inst.results, &results);
            }
        }
        Ok(())
    }

    /// Copies `inst`, which contains a multi-run choice, followed by `continuation`.
    fn split(&mut self, inst: &Inst, continuation: &[Frame<'_>]) -> Result<Vec<Value>, Diagnostic> {
        match &inst.op {
            Op::Branch { rule, args, rng } => {
                let args = args.iter().map(|arg| self.value(*arg)).collect::<Result<Vec<_>, _>>()?;
                let rng = self.value(*rng)?;
                self.branch(*rule, &args, rng, inst, continuation)
            }
            Op::If { cond, then, otherwise } => {
                let cond = self.value(*cond)?;
                let mut blocks = Vec::with_capacity(2);
                for block in [then, otherwise] {
                    self.builder.begin_block(&[]);
                    let frames: Vec<Frame<'_>> =
                        std::iter::once(Frame::of(&block.insts, &block.results, &inst.results))
                            .chain(continuation.iter().copied())
                            .collect();
                    let results = self.copy_frames(&frames)?;
                    blocks.push(self.builder.end_block(results)?);
                }
                let (Some(otherwise), Some(then)) = (blocks.pop(), blocks.pop()) else {
                    return Err(IrError { message: "missing branch".into() }.into());
                };
                Ok(self.builder.push_if(cond, then, otherwise)?)
            }
            Op::For { lo, hi, init, body } => {
                let bound = |value: &Value| self.constants.get(value).copied();
                let (Some(lo), Some(hi)) = (bound(lo), bound(hi)) else {
                    let diagnostic = Diagnostic::error(
                        ErrorCode::UnboundedContinuation,
                        "an `enum` or `mvd` choice in a loop whose bounds are not constants",
                    )
                    .with_help("the choice's continuation includes the remaining iterations, so the loop is unrolled; give it constant bounds, or use `via reinforce`");
                    return Err(match inst.span {
                        Some(span) => diagnostic.with_primary(span, "this loop"),
                        None => diagnostic,
                    });
                };
                let init = init.iter().map(|value| self.value(*value)).collect::<Result<Vec<_>, _>>()?;
                let carried = body.params.get(1..).unwrap_or(&[]);
                if hi <= lo {
                    self.bind(&inst.results, &init);
                    return self.copy_frames(continuation);
                }
                self.bind(carried, &init);
                let mut frames = Vec::with_capacity((hi - lo) as usize + continuation.len());
                for iteration in lo..hi {
                    let binds = if iteration + 1 == hi { inst.results.as_slice() } else { carried };
                    let index = body.params.first().map(|variable| (*variable, iteration));
                    frames.push(Frame { insts: &body.insts, results: &body.results, binds, index });
                }
                frames.extend(continuation.iter().copied());
                self.copy_frames(&frames)
            }
            _ => Err(IrError { message: "a multi-run choice in an unexpected operation".into() }.into()),
        }
    }

    /// Runs the continuation once per outcome (in a loop) and combines the results.
    fn branch(
        &mut self,
        rule: BranchRule,
        args: &[Value],
        rng: Value,
        inst: &Inst,
        continuation: &[Frame<'_>],
    ) -> Result<Vec<Value>, Diagnostic> {
        let (&[value_source, rng_source], Some(&parameter)) = (inst.results.as_slice(), args.first()) else {
            return Err(IrError { message: "malformed branch".into() }.into());
        };
        match rule {
            BranchRule::EnumFlip | BranchRule::EnumCategorical => {
                let outcomes = match (rule, self.builder.ty(parameter)) {
                    (BranchRule::EnumCategorical, Some(Type::Vec(n))) => i64::from(n),
                    _ => 2,
                };
                let b = &mut self.builder;
                let (zero, lo, hi) = (b.filled(self.estimated, 0.0)?, b.int(0)?, b.int(outcomes)?);
                let params = b.begin_block(&[Type::Int, self.estimated]);
                let (index, sum) = (params[0], params[1]);
                let (value, weight) = if rule == BranchRule::EnumFlip {
                    let first = b.compare(CompareOp::Eq, index, lo)?;
                    (first, rules::flip_probability(b, parameter, first)?)
                } else {
                    (index, rules::categorical_probability(b, parameter, index)?)
                };
                self.bind(&[value_source, rng_source], &[value, rng]);
                let result = self.run_continuation(outcomes as u64, inst, continuation)?;
                let b = &mut self.builder;
                let weighted = b.mul(weight, result)?;
                let next = b.add(sum, weighted)?;
                let block = b.end_block(vec![next])?;
                Ok(b.push_for(lo, hi, vec![zero], block)?)
            }
            BranchRule::MvdFlip | BranchRule::MvdPoisson => {
                let b = &mut self.builder;
                let (drawn, after) = if rule == BranchRule::MvdFlip {
                    rules::flip_sample(b, &[parameter], rng)?
                } else {
                    rules::poisson_sample(b, &[parameter], rng)?
                };
                // mvd(flip) runs the other outcome with fresh randomness; mvd(poisson) runs
                // k + 1 on the same stream (common random numbers), which is also unbiased.
                let streams = b.push(Op::Split { rng: after })?;
                let (zero, lo, hi) = (b.filled(self.estimated, 0.0)?, b.int(0)?, b.int(2)?);
                let params = b.begin_block(&[Type::Int, self.estimated, self.estimated]);
                let (index, sampled, other) = (params[0], params[1], params[2]);
                let first = b.compare(CompareOp::Eq, index, lo)?;
                let (value, stream) = if rule == BranchRule::MvdFlip {
                    let negated = b.unary(UnaryOp::Not, drawn)?;
                    (b.select(first, drawn, negated)?, b.select(first, streams[0], streams[1])?)
                } else {
                    (b.add(drawn, index)?, after)
                };
                self.bind(&[value_source, rng_source], &[value, stream]);
                let result = self.run_continuation(2, inst, continuation)?;
                let b = &mut self.builder;
                let next_sampled = b.select(first, result, sampled)?;
                let next_other = b.select(first, other, result)?;
                let block = b.end_block(vec![next_sampled, next_other])?;
                let runs = b.push_for(lo, hi, vec![zero, zero], block)?;
                let (sampled, other) = (runs[0], runs[1]);
                // The weak derivative: d/dp E[l] = l(true) − l(false); d/dλ E[l] = E[l(k+1) − l(k)].
                let difference = if rule == BranchRule::MvdFlip {
                    let when_true = b.select(drawn, sampled, other)?;
                    let when_false = b.select(drawn, other, sampled)?;
                    b.sub(when_true, when_false)?
                } else {
                    b.sub(other, sampled)?
                };
                let slope = b.unary(UnaryOp::Detach, difference)?;
                let weighted = b.mul(slope, parameter)?;
                let tangent = b.add(sampled, weighted)?;
                Ok(vec![b.push1(Op::WithTangent { value: sampled, tangent_of: tangent })?])
            }
        }
    }

    /// The continuation's result, emitted as the body of a loop over the `outcomes` of the
    /// choice `inst`.
    fn run_continuation(
        &mut self,
        outcomes: u64,
        inst: &Inst,
        continuation: &[Frame<'_>],
    ) -> Result<Value, Diagnostic> {
        let (runs, choices) = (self.runs, self.nested_choices);
        self.runs = runs.saturating_mul(outcomes);
        self.nested_choices += 1;
        if self.runs > MAX_CONTINUATION_RUNS {
            let runs = if self.runs == u64::MAX { "more than 2^64".to_string() } else { self.runs.to_string() };
            let diagnostic = Diagnostic::error(
                ErrorCode::UnboundedContinuation,
                format!("`enum` and `mvd` choices in sequence: the rest of the expectation would run {runs} times per estimate"),
            )
            .with_note(format!(
                "each such choice runs everything after it once per outcome, so their costs multiply; this is choice {} in sequence, and at most {MAX_CONTINUATION_RUNS} runs are allowed",
                self.nested_choices
            ))
            .with_help("use `via reinforce` for some of the choices, or sum them out of the model instead: a model's `z[i] ~ flip(p) via enum` in a loop, left out of the guide, is summed out one iteration at a time");
            return Err(match inst.span {
                Some(span) => diagnostic.with_primary(span, "this choice, in a loop or after others like it"),
                None => diagnostic,
            });
        }
        let result = self.single_result(continuation);
        (self.runs, self.nested_choices) = (runs, choices);
        result
    }

    /// The continuation's result: the expectation's one real (or vector).
    fn single_result(&mut self, continuation: &[Frame<'_>]) -> Result<Value, Diagnostic> {
        match self.copy_frames(continuation)?.as_slice() {
            [result] => Ok(*result),
            _ => Err(IrError { message: "a continuation must yield one value".into() }.into()),
        }
    }
}

fn too_large(inst: &Inst) -> Diagnostic {
    let diagnostic = Diagnostic::error(
        ErrorCode::UnboundedContinuation,
        "the `enum` and `mvd` choices of this expectation expand to too much code",
    )
    .with_help("each such choice in a loop unrolls the loop; use `via reinforce` for some of them");
    match inst.span {
        Some(span) => diagnostic.with_primary(span, "while expanding this"),
        None => diagnostic,
    }
}
