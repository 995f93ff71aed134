//! Early `return`: lowering a function body that may return before its end.
//!
//! Such a body carries a *return slot* — whether a `return` has run, and the value it returned
//! (zeros of the function's type until one has) — through every branch and loop, as a `gen`
//! body carries its trace and scores (see `state_values`). `return e;` sets the slot; the
//! statements after one that may have returned run under `if returned { zeros } else { … }`; a
//! loop whose body may return runs each iteration's body that way; and the function's value is
//! the slot's if a `return` ran, its final expression's otherwise. So
//! `if c { …; return a; } rest` means `if c { …; a } else { rest }` without copying `rest`
//! (nested `return`s would copy it once per level), and choices after a `return` are made on
//! the paths that did not return only: the checker makes their addresses optional, and
//! rejects a `return` where something besides these guarded statements would still run
//! (`types::check::returns`).

use super::value::{Env, Val};
use super::{internal, unsupported, FunctionLowerer, Lowered};
use crate::ir::{Type, Value};
use crate::syntax::ast::{Block, Expr};
use crate::syntax::span::Span;
use crate::types::{Dim, Type as SurfaceType};

/// Whether a `return` has run in the function being lowered, and what it returned.
#[derive(Clone, Debug)]
pub(super) struct ReturnSlot<'a> {
    returned: Value,
    /// Shaped as [`FunctionLowerer::zero_value`] of `ty` shapes it, whatever was returned.
    value: Val<'a>,
    ty: SurfaceType,
}

impl<'a> ReturnSlot<'a> {
    pub(super) fn values(&self) -> Vec<Value> {
        let mut values = vec![self.returned];
        self.value.flatten(&mut values);
        values
    }

    /// The same slot made of `values` (in [`ReturnSlot::values`] order).
    pub(super) fn rebuilt(&self, values: &[Value]) -> Option<Self> {
        let (&returned, rest) = values.split_first()?;
        let value = self.value.rebuild(&mut rest.iter().copied());
        Some(ReturnSlot { returned, value, ty: self.ty.clone() })
    }
}

impl<'p, 'a> FunctionLowerer<'p, 'a> {
    /// A `gen` or `fn` body whose result type is `ret`.
    pub(super) fn function_body(
        &mut self,
        env: &mut Env<'a>,
        block: &'a Block,
        ret: &SurfaceType,
        span: Span,
    ) -> Lowered<Val<'a>> {
        if !block.returns_early() {
            self.returns.push(None);
            let value = self.block_in_scope(env, block, true);
            self.returns.pop();
            return value;
        }
        let returned = self.builder.boolean(false)?;
        let value = self.zero_value(ret, span)?;
        self.returns.push(Some(ReturnSlot { returned, value, ty: ret.clone() }));
        let fallthrough = self.block_in_scope(env, block, true);
        let slot = self.returns.pop().flatten().ok_or_else(|| internal(Some(span), "lost the return slot"))?;
        let fallthrough = fallthrough?;
        if block.always_returns() {
            return Ok(slot.value);
        }
        let fallthrough = self.coerce(fallthrough, ret)?;
        let fallthrough = self.conform(&slot.value, fallthrough, span)?;
        self.select_val(slot.returned, &slot.value, &fallthrough, span)
    }

    /// Whether the innermost function being lowered may return early.
    pub(super) fn returning(&self) -> bool {
        matches!(self.returns.last(), Some(Some(_)))
    }

    /// `return value;` where the function may go on after it: records the value in the slot.
    pub(super) fn early_return(&mut self, env: &mut Env<'a>, value: &'a Expr) -> Lowered<()> {
        let lowered = self.expr(env, value)?;
        let Some(Some(slot)) = self.returns.last().cloned() else {
            return Err(internal(Some(value.span), "`return` without a return slot"));
        };
        let lowered = self.coerce(lowered, &slot.ty)?;
        let lowered = self.conform(&slot.value, lowered, value.span)?;
        let returned = self.builder.boolean(true)?;
        if let Some(Some(slot)) = self.returns.last_mut() {
            slot.returned = returned;
            slot.value = lowered;
        }
        Ok(())
    }

    /// The value of a block whose end a `return` has made unreachable: zeros of its type, for
    /// the branch or loop around it to carry.
    pub(super) fn after_return(&mut self, env: &Env<'a>, block: &'a Block) -> Lowered<Val<'a>> {
        let ty = block_type(env, block);
        self.zero_value(&ty, block.span)
    }

    /// The statements of `block` from the `first` on, and its final expression, run only if no
    /// `return` has: their value, or zeros of its type.
    pub(super) fn unless_returned(
        &mut self,
        env: &mut Env<'a>,
        block: &'a Block,
        first: usize,
        function_body: bool,
    ) -> Lowered<Val<'a>> {
        let Some(Some(slot)) = self.returns.last() else {
            return Err(internal(Some(block.span), "no return slot"));
        };
        let returned = slot.returned;
        let ty = block_type(env, block);
        let entry = self.state_values();

        self.builder.begin_block(&[]);
        let zeros = self.zero_value(&ty, block.span)?;
        let mut yielded = Vec::new();
        zeros.flatten(&mut yielded);
        yielded.extend(self.state_values());
        let skipped = self.builder.end_block(yielded)?;

        self.restore_state(&entry);
        self.builder.begin_block(&[]);
        let scope = env.locals.len();
        let value = self.statements(env, block, first, function_body);
        env.locals.truncate(scope);
        let value = self.coerce(value?, &ty)?;
        let value = self.conform(&zeros, value, block.span)?;
        let mut yielded = Vec::new();
        value.flatten(&mut yielded);
        yielded.extend(self.state_values());
        let ran = self.builder.end_block(yielded)?;

        if skipped.results.len() != ran.results.len() {
            return Err(internal(Some(block.span), "the statements after a `return` change the state's shape"));
        }
        self.builder.set_span(Some(block.span));
        let results = self.builder.push_if(returned, skipped, ran)?;
        let mut flat = Vec::new();
        zeros.flatten(&mut flat);
        let (values, state) = results
            .split_at_checked(flat.len())
            .ok_or_else(|| internal(Some(block.span), "a branch yields fewer values than its state"))?;
        self.restore_state(state);
        Ok(zeros.rebuild(&mut values.iter().copied()))
    }

    /// The zero value of a data type, shaped as lowering shapes values of that type: a
    /// function's return slot before any `return`, a trace's entries before they are sampled.
    pub(super) fn zero_value(&mut self, ty: &SurfaceType, span: Span) -> Lowered<Val<'a>> {
        Ok(match ty {
            SurfaceType::Real => Val::Ir(self.builder.real(0.0)?),
            SurfaceType::Int => Val::Ir(self.builder.int(0)?),
            SurfaceType::Bool => Val::Ir(self.builder.boolean(false)?),
            SurfaceType::Vec(_) | SurfaceType::Mat(..) => {
                let ir = super::ir_type(ty)
                    .ok_or_else(|| unsupported(span, "a vector or matrix of more than 16,777,216 elements"))?;
                Val::Ir(self.builder.filled(ir, 0.0)?)
            }
            SurfaceType::Array(element, Dim::Known(n)) => {
                let length = u32::try_from(*n).map_err(|_| unsupported(span, "an array of so many elements"))?;
                let element = match element.as_ref() {
                    SurfaceType::Bool => super::Element::Bool,
                    SurfaceType::Int => super::Element::Int,
                    element => return self.stacked_zeros(element, length, span),
                };
                Val::Array { data: self.builder.filled(Type::Vec(length), 0.0)?, element }
            }
            SurfaceType::Tuple(parts) => {
                Val::Tuple(parts.iter().map(|part| self.zero_value(part, span)).collect::<Lowered<_>>()?)
            }
            SurfaceType::Record(fields) => {
                let mut entries = Vec::with_capacity(fields.len());
                for field in fields {
                    let mut entry = self.zero_value(&field.ty, span)?;
                    if field.optional {
                        let present = self.builder.boolean(false)?;
                        entry = Val::Optional { present, value: Box::new(entry) };
                    }
                    entries.push((field.name.clone(), entry));
                }
                Val::Record(entries)
            }
            _ => return Err(internal(Some(span), format!("a returned value of type {ty}"))),
        })
    }

    /// `value` arranged as `template` is: record fields in its order, optional where it has
    /// optional entries. The two have one type, as the checker joined it.
    fn conform(&mut self, template: &Val<'a>, value: Val<'a>, span: Span) -> Lowered<Val<'a>> {
        let mismatch = || internal(Some(span), "a returned value of another shape than the function's");
        Ok(match (template, value) {
            (Val::Record(fields), Val::Record(mut given)) => {
                let mut entries = Vec::with_capacity(fields.len());
                for (name, entry) in fields {
                    let position = given.iter().position(|(n, _)| n == name).ok_or_else(mismatch)?;
                    let (_, value) = given.swap_remove(position);
                    entries.push((name.clone(), self.conform(entry, value, span)?));
                }
                Val::Record(entries)
            }
            (Val::Tuple(parts), Val::Tuple(given)) if parts.len() == given.len() => Val::Tuple(
                parts.iter().zip(given).map(|(part, value)| self.conform(part, value, span)).collect::<Lowered<_>>()?,
            ),
            (Val::Optional { value: inner, .. }, Val::Optional { present, value }) => {
                Val::Optional { present, value: Box::new(self.conform(inner, *value, span)?) }
            }
            (Val::Optional { value: inner, .. }, value) => {
                let present = self.builder.boolean(true)?;
                Val::Optional { present, value: Box::new(self.conform(inner, value, span)?) }
            }
            // An entry the type does not mark optional reads as its value (0 where absent).
            (template, Val::Optional { value, .. }) => self.conform(template, *value, span)?,
            (Val::Ir(zero), Val::Ir(value)) => {
                let value = match (self.builder.ty(*zero), self.builder.ty(value)) {
                    (Some(Type::Real), Some(Type::Int)) => self.converted_to_real(value)?,
                    (expected, found) if expected == found => value,
                    _ => return Err(mismatch()),
                };
                Val::Ir(value)
            }
            (Val::Array { element, .. }, Val::Array { data, element: given }) if *element == given => {
                Val::Array { data, element: given }
            }
            (Val::Stacked { element: template, .. }, Val::Stacked { len, element }) => {
                Val::Stacked { len, element: Box::new(self.conform(template, *element, span)?) }
            }
            _ => return Err(mismatch()),
        })
    }

    /// `if cond { a } else { b }` of two values of one shape, leaf by leaf.
    fn select_val(&mut self, cond: Value, a: &Val<'a>, b: &Val<'a>, span: Span) -> Lowered<Val<'a>> {
        let (mut left, mut right) = (Vec::new(), Vec::new());
        a.flatten(&mut left);
        b.flatten(&mut right);
        if left.len() != right.len() {
            return Err(internal(Some(span), "selecting between values of different shapes"));
        }
        let mut selected = Vec::with_capacity(left.len());
        for (x, y) in left.into_iter().zip(right) {
            selected.push(self.builder.select(cond, x, y)?);
        }
        Ok(a.rebuild(&mut selected.into_iter()))
    }
}

/// A block's type: its final expression's, or `()`.
fn block_type<'a>(env: &Env<'a>, block: &'a Block) -> SurfaceType {
    match &block.tail {
        Some(tail) => env.ty(tail).cloned().unwrap_or(SurfaceType::Unknown),
        None => SurfaceType::unit(),
    }
}
