//! Arrays of values that are not numbers: the traces of a `gen` function called at a
//! loop-indexed address (`obj[i] ~ object(…)`), vectors drawn at one
//! (`v[i] ~ mv_normal_diag(…)`), and literals and comprehensions of records, tuples or arrays
//! (`[{x: 1.0}, {x: 2.0}]`, which observe them).
//!
//! Such an array is held leaf by leaf ([`Val::Stacked`]): the structure of its element, each
//! leaf holding that leaf of every element — a real leaf as a vector, a vector leaf as a matrix
//! of one row per element, a bool or int leaf (and an optional entry's presence) as a vector of
//! reals standing for them, an array of bools or ints as such a matrix. Element `i` is read and
//! written leaf by leaf, by code whose size does not grow with the length, and the array flows
//! through branches and loops as its leaves do. An element holding a matrix, or an array of
//! anything but numbers, would need a third dimension: the checker rejects such addresses.

use super::value::{Element, Env, Val};
use super::{internal, unsupported, FunctionLowerer, Lowered};
use crate::ir::{CompareOp, Op, Type, Value};
use crate::syntax::ast::{Expr, ExprKind, Pattern};
use crate::syntax::span::Span;
use crate::types::{Dim, Type as SurfaceType};

impl<'p, 'a> FunctionLowerer<'p, 'a> {
    /// The array of `len` zero elements of type `element` (absent, where optional).
    pub(super) fn stacked_zeros(&mut self, element: &SurfaceType, len: u32, span: Span) -> Lowered<Val<'a>> {
        Ok(Val::Stacked { len, element: Box::new(self.zero_leaves(element, len, span)?) })
    }

    fn zero_leaves(&mut self, ty: &SurfaceType, len: u32, span: Span) -> Lowered<Val<'a>> {
        let filled = |lowerer: &mut Self, columns: Option<u64>| {
            let ty = match columns {
                None => SurfaceType::Vec(Dim::Known(u64::from(len))),
                Some(columns) => SurfaceType::Mat(Dim::Known(u64::from(len)), Dim::Known(columns)),
            };
            let ir = super::ir_type(&ty)
                .ok_or_else(|| unsupported(span, "an array of more than 16,777,216 numbers in all"))?;
            Ok::<_, crate::diagnostics::Diagnostic>(lowerer.builder.filled(ir, 0.0)?)
        };
        Ok(match ty {
            SurfaceType::Real => Val::Ir(filled(self, None)?),
            SurfaceType::Int => Val::Array { data: filled(self, None)?, element: Element::Int },
            SurfaceType::Bool => Val::Array { data: filled(self, None)?, element: Element::Bool },
            SurfaceType::Vec(Dim::Known(columns)) => Val::Ir(filled(self, Some(*columns))?),
            SurfaceType::Array(element, Dim::Known(columns)) => {
                let element = match element.as_ref() {
                    SurfaceType::Int => Element::Int,
                    SurfaceType::Bool => Element::Bool,
                    _ => return Err(internal(Some(span), format!("an array of {ty}"))),
                };
                Val::Array { data: filled(self, Some(*columns))?, element }
            }
            SurfaceType::Tuple(parts) => {
                Val::Tuple(parts.iter().map(|part| self.zero_leaves(part, len, span)).collect::<Lowered<_>>()?)
            }
            SurfaceType::Record(fields) => {
                let mut entries = Vec::with_capacity(fields.len());
                for field in fields {
                    let mut entry = self.zero_leaves(&field.ty, len, span)?;
                    if field.optional {
                        entry = Val::Optional { present: filled(self, None)?, value: Box::new(entry) };
                    }
                    entries.push((field.name.clone(), entry));
                }
                Val::Record(entries)
            }
            _ => return Err(internal(Some(span), format!("an array of {ty}"))),
        })
    }

    /// Element `index` of an array held leaf by leaf.
    pub(super) fn unstack(&mut self, stacked: &Val<'a>, index: Value, span: Span) -> Lowered<Val<'a>> {
        match stacked {
            Val::Stacked { element, .. } => self.element_of(element, index, span),
            _ => Err(internal(Some(span), "indexing an array that is not stacked")),
        }
    }

    fn element_of(&mut self, leaves: &Val<'a>, index: Value, span: Span) -> Lowered<Val<'a>> {
        Ok(match leaves {
            Val::Ir(data) => Val::Ir(self.builder.push1(Op::Extract { aggregate: *data, index })?),
            Val::Array { data, element } => {
                let part = self.builder.push1(Op::Extract { aggregate: *data, index })?;
                match self.builder.ty(part) {
                    Some(Type::Vec(_)) => Val::Array { data: part, element: *element },
                    _ => Val::Ir(self.stored_element(part, *element)?),
                }
            }
            Val::Optional { present, value } => {
                let stored = self.builder.push1(Op::Extract { aggregate: *present, index })?;
                let zero = self.builder.real(0.0)?;
                let present = self.builder.compare(CompareOp::Ne, stored, zero)?;
                Val::Optional { present, value: Box::new(self.element_of(value, index, span)?) }
            }
            Val::Tuple(parts) => {
                Val::Tuple(parts.iter().map(|part| self.element_of(part, index, span)).collect::<Lowered<_>>()?)
            }
            Val::Record(fields) => Val::Record(
                fields
                    .iter()
                    .map(|(name, field)| Ok((name.clone(), self.element_of(field, index, span)?)))
                    .collect::<Lowered<_>>()?,
            ),
            _ => return Err(internal(Some(span), "an array of values that are not data")),
        })
    }

    /// `stacked` with element `index` replaced by `value`.
    pub(super) fn stack_insert(
        &mut self,
        stacked: Val<'a>,
        index: Value,
        value: Val<'a>,
        span: Span,
    ) -> Lowered<Val<'a>> {
        match stacked {
            Val::Stacked { len, element } => {
                Ok(Val::Stacked { len, element: Box::new(self.insert_leaves(*element, index, value, span)?) })
            }
            _ => Err(internal(Some(span), "storing into an array that is not stacked")),
        }
    }

    fn insert_leaves(&mut self, leaves: Val<'a>, index: Value, value: Val<'a>, span: Span) -> Lowered<Val<'a>> {
        let mismatch = || internal(Some(span), "an element of another shape than its array's");
        Ok(match (leaves, value) {
            (Val::Ir(data), Val::Ir(value)) => {
                let value = self.converted_to_real(value)?;
                Val::Ir(self.builder.push1(Op::Insert { aggregate: data, index, value })?)
            }
            (Val::Array { data, element }, Val::Ir(value) | Val::Array { data: value, .. }) => {
                let value = self.discrete_as_real(value)?;
                Val::Array { data: self.builder.push1(Op::Insert { aggregate: data, index, value })?, element }
            }
            (Val::Optional { present, value: leaves }, value) => {
                let (given, value) = match value {
                    Val::Optional { present, value } => (present, *value),
                    value => (self.builder.boolean(true)?, value),
                };
                let given = self.discrete_as_real(given)?;
                let present = self.builder.push1(Op::Insert { aggregate: present, index, value: given })?;
                Val::Optional { present, value: Box::new(self.insert_leaves(*leaves, index, value, span)?) }
            }
            // An entry present on every path of the element is present in the array's type.
            (leaves, Val::Optional { value, .. }) => self.insert_leaves(leaves, index, *value, span)?,
            (Val::Tuple(parts), Val::Tuple(values)) if parts.len() == values.len() => Val::Tuple(
                parts
                    .into_iter()
                    .zip(values)
                    .map(|(part, value)| self.insert_leaves(part, index, value, span))
                    .collect::<Lowered<_>>()?,
            ),
            (Val::Record(fields), Val::Record(mut values)) => {
                let mut entries = Vec::with_capacity(fields.len());
                for (name, field) in fields {
                    let position = values.iter().position(|(n, _)| *n == name).ok_or_else(mismatch)?;
                    let (_, value) = values.swap_remove(position);
                    entries.push((name, self.insert_leaves(field, index, value, span)?));
                }
                Val::Record(entries)
            }
            _ => return Err(mismatch()),
        })
    }

    /// `a[lo..hi]` of an array held leaf by leaf: the same rows of every leaf.
    pub(super) fn stacked_slice(
        &mut self,
        env: &mut Env<'a>,
        expr: &'a Expr,
        array: Val<'a>,
        indices: &'a [Expr],
    ) -> Lowered<Val<'a>> {
        let (Val::Stacked { len, element }, [index]) = (array, indices) else {
            return Err(internal(Some(expr.span), "a slice of an array with more than one index"));
        };
        let ExprKind::Range { lo, hi } = &index.kind else {
            return Err(internal(Some(index.span), "a slice without a range"));
        };
        let start = self.slice_bound(env, lo, 0, len)?;
        let end = self.slice_bound(env, hi, len, len)?;
        let kept = end.saturating_sub(start);
        self.builder.set_span(Some(expr.span));
        Ok(Val::Stacked { len: kept, element: Box::new(self.slice_leaves(*element, start, kept, expr.span)?) })
    }

    fn slice_leaves(&mut self, leaves: Val<'a>, start: u32, len: u32, span: Span) -> Lowered<Val<'a>> {
        let slice = |lowerer: &mut Self, aggregate: Value| lowerer.builder.push1(Op::Slice { aggregate, start, len });
        Ok(match leaves {
            Val::Ir(data) => Val::Ir(slice(self, data)?),
            Val::Array { data, element } => Val::Array { data: slice(self, data)?, element },
            Val::Optional { present, value } => {
                let present = slice(self, present)?;
                Val::Optional { present, value: Box::new(self.slice_leaves(*value, start, len, span)?) }
            }
            Val::Tuple(parts) => Val::Tuple(
                parts.into_iter().map(|part| self.slice_leaves(part, start, len, span)).collect::<Lowered<_>>()?,
            ),
            Val::Record(fields) => Val::Record(
                fields
                    .into_iter()
                    .map(|(name, field)| Ok((name, self.slice_leaves(field, start, len, span)?)))
                    .collect::<Lowered<_>>()?,
            ),
            _ => return Err(internal(Some(span), "an array of values that are not data")),
        })
    }

    /// The array of `values`, elements of one type (a vector literal's).
    pub(super) fn stack(&mut self, values: Vec<Val<'a>>, span: Span) -> Lowered<Val<'a>> {
        let len = u32::try_from(values.len()).map_err(|_| internal(Some(span), "a literal too long"))?;
        let template = values.first().cloned().ok_or_else(|| internal(Some(span), "an empty array literal"))?;
        Ok(Val::Stacked { len, element: Box::new(self.stack_leaves(&template, values, span)?) })
    }

    fn stack_leaves(&mut self, template: &Val<'a>, values: Vec<Val<'a>>, span: Span) -> Lowered<Val<'a>> {
        let mismatch = || internal(Some(span), "elements of different shapes");
        Ok(match template {
            Val::Ir(_) | Val::Array { .. } => {
                let mut parts = Vec::with_capacity(values.len());
                let mut elements = Vec::with_capacity(values.len());
                for value in values {
                    let (part, element) = match value {
                        Val::Ir(part) => (part, None),
                        Val::Array { data, element } => (data, Some(element)),
                        _ => return Err(mismatch()),
                    };
                    parts.push(part);
                    elements.push(element);
                }
                // Counts and booleans are stored as reals; ints among reals are reals.
                let types: Vec<Option<Type>> = parts.iter().map(|part| self.builder.ty(*part)).collect();
                let element = match (elements.first().copied().flatten(), types.first().copied().flatten()) {
                    (Some(element), _) => Some(element),
                    (None, Some(Type::Bool)) => Some(Element::Bool),
                    (None, Some(Type::Int)) if types.iter().all(|ty| *ty == Some(Type::Int)) => Some(Element::Int),
                    _ => None,
                };
                let mut stored = Vec::with_capacity(parts.len());
                for part in parts {
                    stored.push(match self.builder.ty(part) {
                        Some(Type::Bool | Type::Int) => self.discrete_as_real(part)?,
                        Some(Type::Mat(..)) => return Err(internal(Some(span), "an array of matrices")),
                        _ => part,
                    });
                }
                let data = self.builder.push1(Op::Build(stored))?;
                match element {
                    Some(element) => Val::Array { data, element },
                    None => Val::Ir(data),
                }
            }
            Val::Optional { value: inner, .. } => {
                let mut present = Vec::with_capacity(values.len());
                let mut inner_values = Vec::with_capacity(values.len());
                for value in values {
                    let (flag, value) = match value {
                        Val::Optional { present, value } => (present, *value),
                        value => (self.builder.boolean(true)?, value),
                    };
                    present.push(self.discrete_as_real(flag)?);
                    inner_values.push(value);
                }
                let present = self.builder.push1(Op::Build(present))?;
                Val::Optional { present, value: Box::new(self.stack_leaves(inner, inner_values, span)?) }
            }
            Val::Tuple(parts) => {
                let mut columns: Vec<Vec<Val<'a>>> = parts.iter().map(|_| Vec::new()).collect();
                for value in values {
                    let Val::Tuple(items) = value else { return Err(mismatch()) };
                    if items.len() != columns.len() {
                        return Err(mismatch());
                    }
                    for (column, item) in columns.iter_mut().zip(items) {
                        column.push(item);
                    }
                }
                Val::Tuple(
                    parts
                        .iter()
                        .zip(columns)
                        .map(|(part, column)| self.stack_leaves(part, column, span))
                        .collect::<Lowered<_>>()?,
                )
            }
            Val::Record(fields) => {
                let mut columns: Vec<Vec<Val<'a>>> = fields.iter().map(|_| Vec::new()).collect();
                for value in values {
                    let Val::Record(mut entries) = value else { return Err(mismatch()) };
                    for ((name, _), column) in fields.iter().zip(columns.iter_mut()) {
                        let position = entries.iter().position(|(n, _)| n == name).ok_or_else(mismatch)?;
                        column.push(entries.swap_remove(position).1);
                    }
                }
                let mut entries = Vec::with_capacity(fields.len());
                for ((name, field), column) in fields.iter().zip(columns) {
                    entries.push((name.clone(), self.stack_leaves(field, column, span)?));
                }
                Val::Record(entries)
            }
            _ => return Err(internal(Some(span), "an array of values that are not data")),
        })
    }

    /// `[body for var in lo..hi]` of records, tuples or arrays: each element stored in place.
    pub(super) fn stacked_comprehension(
        &mut self,
        env: &mut Env<'a>,
        expr: &'a Expr,
        body: &'a Expr,
        var: &'a Pattern,
        (lo, hi): (&'a Expr, &'a Expr),
    ) -> Lowered<Val<'a>> {
        let (element, len) = match env.ty(expr) {
            Some(SurfaceType::Array(element, Dim::Known(len))) => (element.as_ref().clone(), *len),
            _ => return Err(unsupported(expr.span, "a comprehension whose length is not a constant")),
        };
        let len = u32::try_from(len).map_err(|_| unsupported(expr.span, "a comprehension this long"))?;
        let (lo_value, hi_value) = (self.expr(env, lo)?, self.expr(env, hi)?);
        let (lo_value, hi_value) = (self.scalar(lo_value, lo.span)?, self.scalar(hi_value, hi.span)?);
        self.builder.set_span(Some(expr.span));
        let empty = self.stacked_zeros(&element, len, expr.span)?;
        let mut init = Vec::new();
        empty.flatten(&mut init);
        let carried = init.len();
        init.extend(self.state_values());
        let mut param_types = vec![Type::Int];
        param_types.extend(init.iter().filter_map(|value| self.builder.ty(*value)));
        let params = self.builder.begin_block(&param_types);
        let lost = || internal(Some(expr.span), "a loop's parameters do not match its state");
        let (&index, params) = params.split_first().ok_or_else(lost)?;
        let (carried_params, state) = (params.get(..carried).ok_or_else(lost)?, params.get(carried..).unwrap_or(&[]));
        let array = empty.rebuild(&mut carried_params.iter().copied());
        self.restore_state(state);
        let scope = env.locals.len();
        self.bind_pattern(env, var, Val::Ir(index))?;
        let value = self.expr(env, body);
        env.locals.truncate(scope);
        let value = self.coerce(value?, &element)?;
        self.builder.set_span(Some(expr.span));
        let position = self.builder.sub(index, lo_value)?;
        let filled = self.stack_insert(array, position, value, expr.span)?;
        let mut yielded = Vec::new();
        filled.flatten(&mut yielded);
        yielded.extend(self.state_values());
        let block = self.builder.end_block(yielded)?;
        let results = self.builder.push_for(lo_value, hi_value, init, block)?;
        let (carried_results, state) =
            (results.get(..carried).ok_or_else(lost)?, results.get(carried..).unwrap_or(&[]));
        self.restore_state(state);
        let array = empty.rebuild(&mut carried_results.iter().copied());
        // An array of booleans is the vector of reals standing for them, as a literal's is.
        Ok(match (array, &element) {
            (Val::Stacked { element: leaves, .. }, SurfaceType::Bool | SurfaceType::Int) => *leaves,
            (array, _) => array,
        })
    }
}
