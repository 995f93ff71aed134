//! Generative functions: running a `gen` body to sample a trace (`sim`) or to score one
//! (`density`), and the approximate marginal and posterior families built on them
//! (`semantics.md` §3).
//!
//! One engine, [`FunctionLowerer::run_gen`], runs a body with some addresses *constrained*
//! (their values given) and the rest *sampled* by their estimator rules, and adds each choice's
//! log-density to one of two scores: the selected addresses' and the others'. The trace is a
//! record with one entry per address of the checker's trace type, allocated (as zeros) before
//! the body runs and overwritten by each choice, so it has the same shape on every path and
//! flows through branches and loops like any other value.
//!
//! - `sim(P)`: nothing constrained; the log weight is the score of every choice (and of every
//!   `factor(w)`, which adds `w` to the score without an address).
//! - `density(P, t)`: everything constrained to `t`; the log density is the score.
//! - `marginal(Q, select(x…), sir(n))`: particle 0 is `sim(Q)` scored on the selected
//!   addresses (`log q(x | u₀)`); particles 1…n−1 rerun Q with x constrained (fresh `u`);
//!   `log_w = log (1/n) Σ exp(wᵢ)`. With a proposal R for the auxiliary addresses u, each
//!   weight is `log q(x, uᵢ) − log r(uᵢ)`.
//! - `normalize(posterior(P, obs), sir(n, Q))`: n particles from Q weighted by
//!   `p(xᵢ, obs)/q(xᵢ)`, one chosen in proportion (a `categorical` choice, so ADEV
//!   differentiates through the resampling); `log_w = log p(x, obs) − log (1/n) Σ wᵢ`.

use std::rc::Rc;

use super::value::{Context, Element, Env, Family, Val};
use super::{internal, unsupported, FunctionLowerer, Lowered};
use crate::adev::estimators::{self, Rule};
use crate::distributions::{self, Distribution, Estimator};
use crate::ir::{BinaryOp, CompareOp, Op, ReduceOp, Type, UnaryOp, Value};
use crate::syntax::ast::{self, ItemKind};
use crate::syntax::span::Span;
use crate::types::Type as SurfaceType;

/// Which addresses' log-densities a run adds to its *selected* score.
#[derive(Clone, Debug)]
pub enum Selection {
    All,
    Only(Vec<String>),
}

impl Selection {
    pub(super) fn contains(&self, address: &str) -> bool {
        match self {
            Selection::All => true,
            Selection::Only(names) => names.iter().any(|name| name == address),
        }
    }

    /// The selection inside the nested call at `address`: all of it or none of it.
    fn nested(&self, address: &str) -> Selection {
        if self.contains(address) {
            Selection::All
        } else {
            Selection::Only(Vec::new())
        }
    }
}

/// The state of a `gen` body being run.
#[derive(Clone, Debug)]
pub struct GenState<'a> {
    /// Values of the constrained addresses (a record, nested for `gen` calls).
    pub constraints: Option<Val<'a>>,
    pub selection: Selection,
    /// One entry per address, in the trace type's order.
    pub trace: Vec<(String, Val<'a>)>,
    pub selected: Value,
    pub other: Value,
    /// The addresses `density` sums out where the constraints lack them (see `plates`).
    pub summable: Rc<[String]>,
}

impl<'a> GenState<'a> {
    pub fn values(&self) -> Vec<Value> {
        let mut values = vec![self.selected, self.other];
        Val::Record(self.trace.clone()).flatten(&mut values);
        values
    }

    /// The same state made of `values` (in [`GenState::values`] order).
    pub fn rebuilt(&self, values: &[Value]) -> Option<Self> {
        let (&[selected, other], rest) = (values.get(..2)?, values.get(2..)?) else {
            return None;
        };
        let Val::Record(trace) = Val::Record(self.trace.clone()).rebuild(&mut rest.iter().copied()) else {
            return None;
        };
        Some(GenState { trace, selected, other, ..self.clone() })
    }
}

/// What running a `gen` body produced.
pub struct GenRun<'a> {
    pub trace: Val<'a>,
    pub ret: Val<'a>,
    pub selected: Value,
    pub other: Value,
}

/// A record's field; an optional entry's value (a trace given as constraints follows the same
/// paths as the run it constrains).
fn field<'v, 'a>(record: &'v Val<'a>, name: &str) -> Option<&'v Val<'a>> {
    match record {
        Val::Record(fields) => fields.iter().find(|(n, _)| n == name).map(|(_, value)| match value {
            Val::Optional { value, .. } => value.as_ref(),
            value => value,
        }),
        _ => None,
    }
}

fn restrict<'a>(trace: &Val<'a>, keep: impl Fn(&str) -> bool) -> Val<'a> {
    match trace {
        Val::Record(fields) => Val::Record(fields.iter().filter(|(name, _)| keep(name)).cloned().collect()),
        other => other.clone(),
    }
}

fn merge<'a>(a: &Val<'a>, b: &Val<'a>) -> Val<'a> {
    match (a, b) {
        (Val::Record(x), Val::Record(y)) => Val::Record(x.iter().chain(y).cloned().collect()),
        (x, _) => x.clone(),
    }
}

impl<'p, 'a> FunctionLowerer<'p, 'a> {
    /// Runs the `gen` body of `instance` on `args`, constraining the addresses `constraints`
    /// holds and sampling the others.
    pub(super) fn run_gen(
        &mut self,
        instance: usize,
        args: &[Val<'a>],
        constraints: Option<Val<'a>>,
        selection: Selection,
        span: Span,
    ) -> Lowered<GenRun<'a>> {
        let checked = self.program.checked();
        let instance = checked.instances.get(instance).ok_or_else(|| internal(Some(span), "no instance"))?;
        let def = match self
            .program
            .analysis
            .files
            .get(instance.item.file)
            .and_then(|file| file.program.items.get(instance.item.item))
        {
            Some(ast::Item { kind: ItemKind::Gen(def), .. }) => def,
            _ => return Err(internal(Some(span), "not a generative function")),
        };
        let fields = instance.trace.clone().unwrap_or_default();
        // Every entry starts at zero, so the trace has one shape on every path.
        let Val::Record(trace) = self.zero_value(&SurfaceType::Record(fields.clone()), span)? else {
            return Err(internal(Some(span), "a trace that is not a record"));
        };
        let zero = self.builder.real(0.0)?;
        let summable = fields.iter().filter(|field| field.enumerated).map(|field| field.name.clone()).collect();
        self.gen.push(GenState { constraints, selection, trace, selected: zero, other: zero, summable });
        let mut env = Env::new(Context { types: &instance.types, calls: &instance.calls });
        for ((param, value), ty) in def.params.iter().zip(args).zip(&instance.args) {
            let value = self.coerce(value.clone(), ty)?;
            env.bind(&param.name.name, value);
        }
        let ret = self.function_body(&mut env, &def.body, &instance.ret, span);
        let state = self.gen.pop().ok_or_else(|| internal(Some(span), "lost the generative function's state"))?;
        let ret = self.coerce(ret?, &instance.ret)?;
        Ok(GenRun { trace: Val::Record(state.trace), ret, selected: state.selected, other: state.other })
    }

    /// `x ~ d` or `x[i] ~ d` inside a `gen` body: constrained or sampled, scored, recorded.
    pub(super) fn gen_choice(
        &mut self,
        env: &mut Env<'a>,
        stmt: &'a ast::Stmt,
        address: &'a ast::Address,
        chosen: Val<'a>,
        rule: Rule,
    ) -> Lowered<()> {
        let name = address.name.name.as_str();
        let position = match &address.index {
            Some(index) => Some(self.address_position(env, index)?),
            None => None,
        };
        self.builder.set_span(Some(stmt.span));
        let state = self.gen.last().cloned().ok_or_else(|| internal(Some(stmt.span), "no generative function"))?;
        let given = state.constraints.as_ref().and_then(|constraints| field(constraints, name)).cloned();
        let given = match (given, position) {
            (Some(value), Some(position)) => Some(self.element(value, position, stmt.span)?),
            (given, _) => given,
        };
        let (value, score) = match chosen {
            Val::Dist(distribution, args) => {
                self.check_domains(distribution, &args)?;
                let value = match given {
                    Some(given) => self.given_value(distribution, &args, given, stmt.span)?,
                    None => {
                        let mut expect = self.state.ok_or_else(|| {
                            unsupported(stmt.span, "sampling a generative function outside `E { … }`")
                        })?;
                        let value = self.draw(&mut expect, distribution, &args, rule)?;
                        self.state = Some(expect);
                        value
                    }
                };
                let score = self.log_density(distribution, &args, &value, stmt.span)?;
                (value, score)
            }
            Val::Family(family) => {
                let Family::Gen { instance, args } = family.as_ref() else {
                    return Err(unsupported(stmt.span, "a choice from `marginal(…)` or `normalize(…)` inside `gen`"));
                };
                let run = self.run_gen(*instance, args, given, state.selection.nested(name), stmt.span)?;
                let Some(current) = self.gen.last_mut() else {
                    return Err(internal(Some(stmt.span), "no generative function"));
                };
                current.selected = self.builder.add(current.selected, run.selected)?;
                current.other = self.builder.add(current.other, run.other)?;
                self.record(name, position, run.trace, stmt.span)?;
                // `obj[i] ~ f(…)` makes `obj` the array of traces, as the checker types it, so
                // that `obj[i].x` reads what this call sampled; `sub ~ f(…)` binds f's value.
                let bound = match position {
                    Some(_) => self.trace_entry(name, stmt.span)?,
                    None => run.ret,
                };
                env.bind(name, bound);
                return Ok(());
            }
            _ => return Err(internal(Some(stmt.span), "`~` of neither a distribution nor a family")),
        };
        let Some(current) = self.gen.last_mut() else {
            return Err(internal(Some(stmt.span), "no generative function"));
        };
        if current.selection.contains(name) {
            current.selected = self.builder.add(current.selected, score)?;
        } else {
            current.other = self.builder.add(current.other, score)?;
        }
        self.record(name, position, value.clone(), stmt.span)?;
        // After `x[i] ~ …`, `x` names the address's vector (as the checker types it), so that
        // `x[i]` reads the element just drawn.
        let bound = match position {
            Some(_) => self.trace_entry(name, stmt.span)?,
            None => value,
        };
        env.bind(name, bound);
        Ok(())
    }

    /// The element of its trace entry that the index of a loop-indexed address names: the
    /// loop variable less the loop's start.
    pub(super) fn address_position(&mut self, env: &mut Env<'a>, index: &'a ast::Expr) -> Lowered<Value> {
        let value = self.expr(env, index)?;
        let value = self.scalar(value, index.span)?;
        let start = match &index.kind {
            ast::ExprKind::Name(variable) => {
                self.loop_starts.iter().rev().find(|(n, _)| n == variable).map(|(_, start)| *start)
            }
            _ => None,
        };
        Ok(match start {
            Some(start) => self.builder.sub(value, start)?,
            None => value,
        })
    }

    /// The innermost `gen` body's trace entry `name`, as sampled so far.
    pub(super) fn trace_entry(&self, name: &str, span: Span) -> Lowered<Val<'a>> {
        self.gen
            .last()
            .and_then(|state| state.trace.iter().find(|(n, _)| n == name))
            .map(|(_, entry)| entry.clone())
            .ok_or_else(|| internal(Some(span), format!("the trace has no entry `{name}`")))
    }

    /// Element `position` of a trace entry (a vector, an array of bools or ints, or an array
    /// held leaf by leaf).
    pub(super) fn element(&mut self, entry: Val<'a>, position: Value, span: Span) -> Lowered<Val<'a>> {
        match entry {
            Val::Stacked { .. } => self.unstack(&entry, position, span),
            Val::Ir(vector) => Ok(Val::Ir(self.builder.push1(Op::Extract { aggregate: vector, index: position })?)),
            Val::Array { data, element } => {
                let stored = self.builder.push1(Op::Extract { aggregate: data, index: position })?;
                Ok(Val::Ir(self.stored_element(stored, element)?))
            }
            _ => Err(internal(Some(span), "indexing a trace entry that is not a vector")),
        }
    }

    /// A bool or int read back from the real an array stores it as.
    pub(super) fn stored_element(&mut self, stored: Value, element: Element) -> Lowered<Value> {
        Ok(match element {
            Element::Bool => {
                let zero = self.builder.real(0.0)?;
                self.builder.compare(CompareOp::Ne, stored, zero)?
            }
            Element::Int => self.builder.unary(UnaryOp::ToInt, stored)?,
        })
    }

    /// The real an array stores a bool (0 or 1) or an int as: the inverse of
    /// [`Self::stored_element`].
    pub(super) fn discrete_as_real(&mut self, value: Value) -> Lowered<Value> {
        Ok(match self.builder.ty(value) {
            Some(Type::Bool) => {
                let (one, zero) = (self.builder.real(1.0)?, self.builder.real(0.0)?);
                self.builder.select(value, one, zero)?
            }
            _ => self.converted_to_real(value)?,
        })
    }

    /// A constrained value in the type the distribution draws.
    fn given_value(
        &mut self,
        distribution: &'static Distribution,
        args: &[Value],
        given: Val<'a>,
        span: Span,
    ) -> Lowered<Val<'a>> {
        // An array of the distribution's values (`density(flip(p), [true, false])`) is scored
        // element by element as it is.
        if let Val::Array { element, .. } = &given {
            if super::expr::discrete_element(distribution) == Some(*element) {
                return Ok(given);
            }
        }
        // A vector of discrete draws given as reals standing for its elements.
        if let (Some(element), Some(length)) =
            (super::expr::discrete_element(distribution), super::expr::elementwise_length(self, distribution, args))
        {
            return match given {
                Val::Ir(reals) if self.builder.ty(reals) == Some(Type::Vec(length)) => {
                    self.check_discrete(reals, element)?;
                    Ok(Val::Array { data: reals, element })
                }
                _ => Err(internal(Some(span), "an observation of a vector of discrete choices")),
            };
        }
        Ok(Val::Ir(self.given_scalar(distribution, given, span)?))
    }

    /// A constrained value of one draw in the type the distribution draws.
    fn given_scalar(&mut self, distribution: &Distribution, given: Val<'a>, span: Span) -> Lowered<Value> {
        let value = self.scalar(given, span)?;
        let observed_as_real = self.builder.ty(value) == Some(Type::Real);
        Ok(match distribution.support {
            distributions::Support::Real | distributions::Support::RealVector => self.converted_to_real(value)?,
            // A real observing a count or a boolean (see `Type::observes`) must be one.
            distributions::Support::Int if observed_as_real => {
                let whole = self.builder.unary(UnaryOp::Floor, value)?;
                let integral = self.builder.compare(CompareOp::Eq, whole, value)?;
                let message = format!("an observation of a `{}` choice must be a whole number", distribution.name);
                self.builder.push(Op::Check { cond: integral, culprit: value, message })?;
                self.builder.unary(UnaryOp::ToInt, value)?
            }
            distributions::Support::Bool if observed_as_real => {
                let (zero, one) = (self.builder.real(0.0)?, self.builder.real(1.0)?);
                let is_zero = self.builder.compare(CompareOp::Eq, value, zero)?;
                let is_one = self.builder.compare(CompareOp::Eq, value, one)?;
                let either = self.builder.binary(BinaryOp::Or, is_zero, is_one)?;
                let message = format!("an observation of a `{}` choice must be 0 or 1", distribution.name);
                self.builder.push(Op::Check { cond: either, culprit: value, message })?;
                self.builder.compare(CompareOp::Ne, value, zero)?
            }
            _ => value,
        })
    }

    /// Stores a choice's value in the trace, at `position` of its entry if indexed.
    pub(super) fn record(&mut self, name: &str, position: Option<Value>, value: Val<'a>, span: Span) -> Lowered<()> {
        let entry = self
            .gen
            .last()
            .and_then(|state| state.trace.iter().find(|(n, _)| n == name))
            .map(|(_, entry)| entry.clone())
            .ok_or_else(|| internal(Some(span), format!("the trace has no entry `{name}`")))?;
        let updated = match (position, entry, value) {
            (Some(index), entry @ Val::Stacked { .. }, value) => self.stack_insert(entry, index, value, span)?,
            (None, Val::Optional { .. }, value) => {
                Val::Optional { present: self.builder.boolean(true)?, value: Box::new(value) }
            }
            (None, _, value) => value,
            (Some(index), Val::Ir(vector), Val::Ir(value)) => {
                let value = self.converted_to_real(value)?;
                Val::Ir(self.builder.push1(Op::Insert { aggregate: vector, index, value })?)
            }
            (Some(index), Val::Array { data, element }, Val::Ir(value)) => {
                let stored = self.discrete_as_real(value)?;
                Val::Array { data: self.builder.push1(Op::Insert { aggregate: data, index, value: stored })?, element }
            }
            _ => return Err(internal(Some(span), "an indexed address of an unexpected kind")),
        };
        if let Some(slot) = self.gen.last_mut().and_then(|state| state.trace.iter_mut().find(|(n, _)| n == name)) {
            slot.1 = updated;
        }
        Ok(())
    }

    /// The log-density of `value`; a scalar distribution of a vector is scored element by
    /// element.
    pub(super) fn log_density(
        &mut self,
        distribution: &'static Distribution,
        args: &[Value],
        value: &Val<'a>,
        span: Span,
    ) -> Lowered<Value> {
        if let Val::Array { data, element } = value {
            let Some(Type::Vec(length)) = self.builder.ty(*data) else {
                return Err(internal(Some(span), "an array that is not a vector"));
            };
            if let Some(of_draws) = distribution.log_density_of_draws {
                return Ok(of_draws(&mut self.builder, args, *data)?);
            }
            return self.summed(length, |lowerer, index| {
                let scalars = lowerer.element_args(args, index)?;
                let stored = lowerer.builder.push1(Op::Extract { aggregate: *data, index })?;
                let drawn = lowerer.stored_element(stored, *element)?;
                Ok((distribution.log_density)(&mut lowerer.builder, &scalars, drawn)?)
            });
        }
        let value = self.scalar(value.clone(), span)?;
        let vector_arg = distribution.params.iter().zip(args).any(|((_, kind), arg)| {
            *kind == distributions::ParamKind::Real && matches!(self.builder.ty(*arg), Some(Type::Vec(_)))
        });
        let Some(Type::Vec(length)) =
            self.builder.ty(value).filter(|_| vector_arg || distribution.support == distributions::Support::Real)
        else {
            return Ok((distribution.log_density)(&mut self.builder, args, value)?);
        };
        if let Some(of_draws) = distribution.log_density_of_draws {
            return Ok(of_draws(&mut self.builder, args, value)?);
        }
        self.summed(length, |lowerer, index| {
            let scalars = lowerer.element_args(args, index)?;
            let element = lowerer.builder.push1(Op::Extract { aggregate: value, index })?;
            Ok((distribution.log_density)(&mut lowerer.builder, &scalars, element)?)
        })
    }

    /// `Σ term(i)` for `i` in `0..length`, in that order, as a loop whose code is one term's.
    fn summed(&mut self, length: u32, mut term: impl FnMut(&mut Self, Value) -> Lowered<Value>) -> Lowered<Value> {
        let zero = self.builder.real(0.0)?;
        let (lo, hi) = (self.builder.int(0)?, self.builder.int(i64::from(length))?);
        let params = self.builder.begin_block(&[Type::Int, Type::Real]);
        let (index, total) = (params[0], params[1]);
        let term = term(self, index)?;
        let next = self.builder.add(total, term)?;
        let body = self.builder.end_block(vec![next])?;
        let results = self.builder.push_for(lo, hi, vec![zero], body)?;
        results.first().copied().ok_or_else(|| internal(None, "a loop without results"))
    }

    /// `sim(F)`: a trace of F and its (exact or estimated) log weight.
    pub(super) fn simulate(&mut self, family: &Family<'a>, span: Span) -> Lowered<(Val<'a>, Value)> {
        match family {
            Family::Gen { instance, args } => {
                let run = self.run_gen(*instance, args, None, Selection::All, span)?;
                Ok((run.trace, self.builder.add(run.selected, run.other)?))
            }
            Family::Marginal { inner, selection, particles, proposal } => {
                let keep = |name: &str| selection.iter().any(|s| s == name);
                let (trace, first) = match proposal {
                    None => {
                        let Family::Gen { instance, args } = inner.as_ref() else {
                            return Err(unsupported(span, "`marginal` of a family that is not a `gen` application"));
                        };
                        let run = self.run_gen(*instance, args, None, Selection::Only(selection.clone()), span)?;
                        (run.trace, run.selected)
                    }
                    Some(proposal) => {
                        let (trace, joint) = self.simulate(inner, span)?;
                        let auxiliary = restrict(&trace, |name| !keep(name));
                        let log_r = self.density(proposal, &auxiliary, span)?;
                        (trace.clone(), self.builder.sub(joint, log_r)?)
                    }
                };
                let kept = restrict(&trace, keep);
                let mut weights = vec![first];
                for _ in 1..*particles {
                    weights.push(self.marginal_weight(inner, selection, proposal.as_ref(), &kept, span)?);
                }
                Ok((kept, self.log_mean_exp(&weights)?))
            }
            Family::Normalize { model, observations, particles, proposal } => {
                let mut traces = Vec::with_capacity(*particles);
                let mut joints = Vec::with_capacity(*particles);
                let mut weights = Vec::with_capacity(*particles);
                for _ in 0..*particles {
                    let (trace, log_q) = self.simulate(proposal, span)?;
                    let joint = self.density(model, &merge(&trace, observations), span)?;
                    weights.push(self.builder.sub(joint, log_q)?);
                    joints.push(joint);
                    traces.push(trace);
                }
                let chosen = self.resample(&weights, span)?;
                let trace = self.select_among(&traces, chosen, span)?;
                let joint = self.select_value(&joints, chosen)?;
                let normaliser = self.log_mean_exp(&weights)?;
                Ok((trace, self.builder.sub(joint, normaliser)?))
            }
        }
    }

    /// One fresh particle's log weight for `x` under `marginal(inner, selection, sir(·, proposal))`.
    fn marginal_weight(
        &mut self,
        inner: &Family<'a>,
        selection: &[String],
        proposal: Option<&Rc<Family<'a>>>,
        kept: &Val<'a>,
        span: Span,
    ) -> Lowered<Value> {
        match proposal {
            None => {
                let Family::Gen { instance, args } = inner else {
                    return Err(unsupported(span, "`marginal` of a family that is not a `gen` application"));
                };
                let run =
                    self.run_gen(*instance, args, Some(kept.clone()), Selection::Only(selection.to_vec()), span)?;
                Ok(run.selected)
            }
            Some(proposal) => {
                let (auxiliary, log_r) = self.simulate(proposal, span)?;
                let joint = self.density(inner, &merge(kept, &auxiliary), span)?;
                Ok(self.builder.sub(joint, log_r)?)
            }
        }
    }

    /// `density(F, t)`: the (exact or estimated) log density of trace `t` under F.
    pub(super) fn density(&mut self, family: &Family<'a>, trace: &Val<'a>, span: Span) -> Lowered<Value> {
        match family {
            Family::Gen { instance, args } => {
                let run = self.run_gen(*instance, args, Some(trace.clone()), Selection::All, span)?;
                Ok(self.builder.add(run.selected, run.other)?)
            }
            Family::Marginal { inner, selection, particles, proposal } => {
                let mut weights = Vec::with_capacity(*particles);
                for _ in 0..*particles {
                    weights.push(self.marginal_weight(inner, selection, proposal.as_ref(), trace, span)?);
                }
                self.log_mean_exp(&weights)
            }
            Family::Normalize { model, observations, particles, proposal } => {
                let joint = self.density(model, &merge(trace, observations), span)?;
                let log_q = self.density(proposal, trace, span)?;
                let mut weights = vec![self.builder.sub(joint, log_q)?];
                for _ in 1..*particles {
                    let (fresh, log_q) = self.simulate(proposal, span)?;
                    let fresh_joint = self.density(model, &merge(&fresh, observations), span)?;
                    weights.push(self.builder.sub(fresh_joint, log_q)?);
                }
                let normaliser = self.log_mean_exp(&weights)?;
                Ok(self.builder.sub(joint, normaliser)?)
            }
        }
    }

    /// `log (1/n) Σ exp(wᵢ)`.
    fn log_mean_exp(&mut self, weights: &[Value]) -> Lowered<Value> {
        if let [only] = weights {
            return Ok(*only);
        }
        let vector = self.builder.push1(Op::Build(weights.to_vec()))?;
        let total = self.builder.push1(Op::Reduce(ReduceOp::LogSumExp, vector))?;
        let count = self.builder.real(weights.len() as f64)?;
        let log_count = self.builder.unary(UnaryOp::Log, count)?;
        Ok(self.builder.sub(total, log_count)?)
    }

    /// An index drawn in proportion to `exp(weights)`, by a `categorical` choice with its
    /// default estimator, so the resampling is differentiated like any other choice.
    fn resample(&mut self, weights: &[Value], span: Span) -> Lowered<Value> {
        if weights.len() == 1 {
            return Ok(self.builder.int(0)?);
        }
        let categorical = distributions::lookup("categorical").ok_or_else(|| internal(Some(span), "categorical"))?;
        let vector = self.builder.push1(Op::Build(weights.to_vec()))?;
        let normaliser = self.builder.push1(Op::Reduce(ReduceOp::LogSumExp, vector))?;
        let shifted = self.builder.sub(vector, normaliser)?;
        let probabilities = self.builder.unary(UnaryOp::Exp, shifted)?;
        let mut state = self.state.ok_or_else(|| unsupported(span, "`normalize` outside `E { … }`"))?;
        let rule = Rule { estimator: Estimator::Reinforce, baseline: None };
        let index = estimators::choose(&mut self.builder, &mut state, categorical, &[probabilities], rule)?;
        self.state = Some(state);
        Ok(index)
    }

    fn select_value(&mut self, values: &[Value], chosen: Value) -> Lowered<Value> {
        let mut result = values[0];
        for (k, value) in values.iter().enumerate().skip(1) {
            let index = self.builder.int(k as i64)?;
            let is_k = self.builder.compare(CompareOp::Eq, chosen, index)?;
            result = self.builder.select(is_k, *value, result)?;
        }
        Ok(result)
    }

    /// The trace at index `chosen` among traces of one shape.
    fn select_among(&mut self, traces: &[Val<'a>], chosen: Value, span: Span) -> Lowered<Val<'a>> {
        let mut flat: Vec<Vec<Value>> = Vec::with_capacity(traces.len());
        for trace in traces {
            let mut values = Vec::new();
            trace.flatten(&mut values);
            flat.push(values);
        }
        let first = traces.first().ok_or_else(|| internal(Some(span), "no particles"))?;
        let mut selected = Vec::with_capacity(flat[0].len());
        for leaf in 0..flat[0].len() {
            let column: Vec<Value> = flat.iter().map(|values| values[leaf]).collect();
            selected.push(self.select_value(&column, chosen)?);
        }
        Ok(first.rebuild(&mut selected.into_iter()))
    }
}

impl<'p, 'a> FunctionLowerer<'p, 'a> {
    /// `sim`, `density`, `marginal`, `select`, `sir`, `posterior`, `normalize`, `factor`, or
    /// `None` for another name.
    pub(super) fn inference_form(
        &mut self,
        env: &mut Env<'a>,
        expr: &'a ast::Expr,
        name: &str,
        args: &'a [ast::Arg],
    ) -> Lowered<Option<Val<'a>>> {
        let span = expr.span;
        let arg = |k: usize| args.get(k).map(|arg| &arg.value).ok_or_else(|| internal(Some(span), "missing argument"));
        Ok(Some(match name {
            // A factor weights the trace like a choice's density but has no address: it
            // belongs to the selected score, so that `sim`, `density` and a `marginal`'s
            // weights of whatever addresses it selects all include it.
            "factor" => {
                let weight = self.expr(env, arg(0)?)?;
                let weight = self.scalar(weight, span)?;
                let Some(current) = self.gen.last_mut() else {
                    return Err(internal(Some(span), "`factor` outside a generative function"));
                };
                current.selected = self.builder.add(current.selected, weight)?;
                Val::Tuple(Vec::new())
            }
            "select" => {
                let mut names = Vec::with_capacity(args.len());
                for arg in args {
                    match &arg.value.kind {
                        ast::ExprKind::Name(name) => names.push(name.clone()),
                        _ => return Err(internal(Some(arg.value.span), "`select` of a non-address")),
                    }
                }
                Val::Selection(names)
            }
            "sir" => {
                let particles = match env.ty(expr) {
                    Some(SurfaceType::Config(crate::types::Config::Sir { particles: Some(n), .. })) => *n as usize,
                    _ => return Err(unsupported(span, "`sir` with a number of particles that is not a constant")),
                };
                if particles == 0 {
                    return Err(internal(Some(span), "`sir(0)`"));
                }
                let proposal = match args.get(1) {
                    Some(arg) => Some(self.family(env, &arg.value)?),
                    None => None,
                };
                Val::Sir { particles, proposal }
            }
            "posterior" => {
                let model = self.family(env, arg(0)?)?;
                let observations = self.expr(env, arg(1)?)?;
                Val::Posterior { model, observations: Box::new(observations) }
            }
            "marginal" => {
                let inner = self.family(env, arg(0)?)?;
                let Val::Selection(selection) = self.expr(env, arg(1)?)? else {
                    return Err(internal(Some(span), "`marginal` without a selection"));
                };
                let Val::Sir { particles, proposal } = self.expr(env, arg(2)?)? else {
                    return Err(internal(Some(span), "`marginal` without `sir`"));
                };
                Val::Family(Rc::new(Family::Marginal { inner, selection, particles, proposal }))
            }
            "normalize" => {
                let Val::Posterior { model, observations } = self.expr(env, arg(0)?)? else {
                    return Err(internal(Some(span), "`normalize` without a posterior"));
                };
                let Val::Sir { particles, proposal } = self.expr(env, arg(1)?)? else {
                    return Err(internal(Some(span), "`normalize` without `sir`"));
                };
                let proposal =
                    proposal.ok_or_else(|| unsupported(span, "`normalize` without a proposal (write `sir(n, Q)`)"))?;
                Val::Family(Rc::new(Family::Normalize { model, observations: *observations, particles, proposal }))
            }
            "sim" => {
                let family = self.family(env, arg(0)?)?;
                self.builder.set_span(Some(span));
                let (trace, log_weight) = self.simulate(&family, span)?;
                Val::Tuple(vec![trace, Val::Ir(log_weight)])
            }
            "density" => {
                let first = self.expr(env, arg(0)?)?;
                let given = self.expr(env, arg(1)?)?;
                self.builder.set_span(Some(span));
                match first {
                    Val::Dist(distribution, args) => {
                        self.check_domains(distribution, &args)?;
                        let value = self.given_value(distribution, &args, given, span)?;
                        Val::Ir(self.log_density(distribution, &args, &value, span)?)
                    }
                    Val::Family(family) => Val::Ir(self.density(&family, &given, span)?),
                    _ => return Err(internal(Some(span), "`density` of neither a family nor a distribution")),
                }
            }
            _ => return Ok(None),
        }))
    }

    fn family(&mut self, env: &mut Env<'a>, expr: &'a ast::Expr) -> Lowered<Rc<Family<'a>>> {
        match self.expr(env, expr)? {
            Val::Family(family) => Ok(family),
            _ => Err(internal(Some(expr.span), "not a generative function")),
        }
    }

    /// `detach(e)`: every real of `e` without its tangent; a family with detached arguments.
    pub(super) fn detach(&mut self, value: Val<'a>) -> Lowered<Val<'a>> {
        Ok(match value {
            Val::Ir(value) if self.builder.ty(value).is_some_and(Type::is_differentiable) => {
                Val::Ir(self.builder.unary(UnaryOp::Detach, value)?)
            }
            Val::Tuple(parts) => Val::Tuple(parts.into_iter().map(|part| self.detach(part)).collect::<Lowered<_>>()?),
            Val::Record(fields) => Val::Record(
                fields.into_iter().map(|(name, field)| Ok((name, self.detach(field)?))).collect::<Lowered<_>>()?,
            ),
            Val::Family(family) => Val::Family(Rc::new(self.detach_family(&family)?)),
            Val::Stacked { len, element } => Val::Stacked { len, element: Box::new(self.detach(*element)?) },
            other => other,
        })
    }

    fn detach_family(&mut self, family: &Family<'a>) -> Lowered<Family<'a>> {
        Ok(match family {
            Family::Gen { instance, args } => Family::Gen {
                instance: *instance,
                args: args.iter().map(|arg| self.detach(arg.clone())).collect::<Lowered<_>>()?,
            },
            Family::Marginal { inner, selection, particles, proposal } => Family::Marginal {
                inner: Rc::new(self.detach_family(inner)?),
                selection: selection.clone(),
                particles: *particles,
                proposal: match proposal {
                    Some(proposal) => Some(Rc::new(self.detach_family(proposal)?)),
                    None => None,
                },
            },
            Family::Normalize { model, observations, particles, proposal } => Family::Normalize {
                model: Rc::new(self.detach_family(model)?),
                observations: self.detach(observations.clone())?,
                particles: *particles,
                proposal: Rc::new(self.detach_family(proposal)?),
            },
        })
    }
}
