//! Lowering expressions, statements and estimates.

use std::rc::Rc;

use super::gen::Selection;
use super::value::{Deferred, Element, Env, Estimate, Family, Operand, Val};
use super::{internal, unsupported, FunctionLowerer, Lowered};
use crate::adev::estimators::{self, ExpectState, Rule};
use crate::diagnostics::{Diagnostic, ErrorCode};
use crate::distributions::{self, Distribution, Estimator, ParamKind};
use crate::ir::{self, BinaryOp, CompareOp, Op, ReduceOp, Type, UnaryOp, Value};
use crate::syntax::ast::{self, Arg, Block, Expr, ExprKind, Pattern, Stmt, StmtKind};
use crate::syntax::span::Span;
use crate::types::Type as SurfaceType;

/// The most values a lowered program may reach through inlining (see E0602): real programs stay
/// far below; past it, compiling would take minutes and gigabytes.
const MAX_VALUES: usize = 250_000;

impl<'p, 'a> FunctionLowerer<'p, 'a> {
    pub(crate) fn expr(&mut self, env: &mut Env<'a>, expr: &'a Expr) -> Lowered<Val<'a>> {
        self.span = Some(expr.span);
        self.builder.set_span(Some(expr.span));
        match &expr.kind {
            ExprKind::Int(n) => Ok(Val::Ir(self.builder.int(*n)?)),
            ExprKind::Real(x) => Ok(Val::Ir(self.builder.real(*x)?)),
            ExprKind::Bool(b) => Ok(Val::Ir(self.builder.boolean(*b)?)),
            ExprKind::Str(text) => Ok(Val::Str(text.clone())),
            ExprKind::Name(name) => self.name(env, name, expr.span),
            ExprKind::Unary(op, operand) => {
                let value = self.expr(env, operand)?;
                self.builder.set_span(Some(expr.span));
                match (op, value) {
                    (ast::UnaryOp::Neg, Val::Est(estimate)) => Ok(Val::Est(Rc::new(Estimate::Neg(estimate)))),
                    (ast::UnaryOp::Neg, value) => {
                        let value = self.scalar(value, operand.span)?;
                        Ok(Val::Ir(self.builder.unary(UnaryOp::Neg, value)?))
                    }
                    (ast::UnaryOp::Not, value) => {
                        let value = self.scalar(value, operand.span)?;
                        Ok(Val::Ir(self.builder.unary(UnaryOp::Not, value)?))
                    }
                }
            }
            ExprKind::Binary(op, left, right) => self.binary(env, expr, *op, left, right),
            ExprKind::Call { callee, args } => self.call(env, expr, callee, args),
            ExprKind::Index { base, indices }
                if indices.iter().any(|index| matches!(index.kind, ExprKind::Range { .. })) =>
            {
                self.slice(env, expr, base, indices)
            }
            ExprKind::Range { .. } => Err(internal(Some(expr.span), "a range outside an index")),
            ExprKind::Index { base, indices } => {
                if let Some(outcome) = self.summed_out_read(base, indices) {
                    return Ok(Val::Ir(outcome));
                }
                let mut value = self.expr(env, base)?;
                for index in indices {
                    if let Val::Stacked { .. } = value {
                        let position = self.expr(env, index)?;
                        let position = self.scalar(position, index.span)?;
                        value = self.unstack(&value, position, index.span)?;
                        continue;
                    }
                    if let Val::Array { data, element } = value {
                        let position = self.expr(env, index)?;
                        let position = self.scalar(position, index.span)?;
                        let stored = self.builder.push1(Op::Extract { aggregate: data, index: position })?;
                        value = Val::Ir(self.stored_element(stored, element)?);
                        continue;
                    }
                    let aggregate = self.scalar(value, base.span)?;
                    let index_value = self.expr(env, index)?;
                    let index_value = self.scalar(index_value, index.span)?;
                    self.builder.set_span(Some(expr.span));
                    let extracted = self.builder.push1(Op::Extract { aggregate, index: index_value })?;
                    value = Val::Ir(extracted);
                }
                Ok(value)
            }
            ExprKind::Field { base, field } => {
                let value = self.expr(env, base)?;
                match value {
                    Val::Record(fields) => fields
                        .into_iter()
                        .find(|(name, _)| *name == field.name)
                        .map(|(_, value)| match value {
                            Val::Optional { value, .. } => *value,
                            value => value,
                        })
                        .ok_or_else(|| internal(Some(field.span), "no such field")),
                    Val::Tuple(parts) => field
                        .name
                        .parse::<usize>()
                        .ok()
                        .and_then(|index| parts.into_iter().nth(index))
                        .ok_or_else(|| internal(Some(field.span), "no such tuple element")),
                    _ => Err(internal(Some(field.span), "field of a non-record")),
                }
            }
            ExprKind::Vector(elements) => {
                let mut values = Vec::with_capacity(elements.len());
                for element in elements {
                    values.push(self.expr(env, element)?);
                }
                self.builder.set_span(Some(expr.span));
                // Records, tuples and arrays are stacked leaf by leaf (see `super::stacked`).
                if values.iter().any(|value| {
                    matches!(value, Val::Record(_) | Val::Tuple(_) | Val::Array { .. } | Val::Optional { .. })
                }) {
                    return self.stack(values, expr.span);
                }
                // `[true, false]` is an array of booleans: reals (0/1) marked with what they hold,
                // as traces keep indexed flips. (`[3, 5]` is a real vector, as the checker types
                // it; where it observes counts, each element is checked to be a whole number.)
                let booleans = !values.is_empty()
                    && values
                        .iter()
                        .all(|value| matches!(value, Val::Ir(v) if self.builder.ty(*v) == Some(Type::Bool)));
                let mut parts = Vec::with_capacity(values.len());
                for (value, element) in values.into_iter().zip(elements) {
                    parts.push(match value {
                        Val::Ir(value) if booleans => self.discrete_as_real(value)?,
                        value => self.real_or_vector(value, element.span)?,
                    });
                }
                let data = self.builder.push1(Op::Build(parts))?;
                Ok(if booleans { Val::Array { data, element: Element::Bool } } else { Val::Ir(data) })
            }
            ExprKind::Comprehension { body, var, lo, hi } => self.comprehension(env, expr, body, var, lo, hi),
            ExprKind::Record(fields) => {
                let mut values = Vec::with_capacity(fields.len());
                for field in fields {
                    values.push((field.name.name.clone(), self.expr(env, &field.value)?));
                }
                Ok(Val::Record(values))
            }
            ExprKind::Tuple(parts) => {
                let values = parts.iter().map(|part| self.expr(env, part)).collect::<Lowered<Vec<_>>>()?;
                Ok(Val::Tuple(values))
            }
            ExprKind::Block(block) => self.block(env, block),
            ExprKind::If { cond, then, otherwise } => self.if_expr(env, expr, cond, then, otherwise.as_deref()),
            ExprKind::Expect(block) => Ok(Val::Est(Rc::new(Estimate::Expect { block, env: env.clone() }))),
        }
    }

    fn name(&mut self, env: &mut Env<'a>, name: &str, span: Span) -> Lowered<Val<'a>> {
        if let Some(value) = env.lookup(name) {
            return Ok(value.clone());
        }
        if let Some(value) = self.params.get(name) {
            return Ok(Val::Ir(*value));
        }
        if let Some(ty) = self.program.records.get(name) {
            return self.record_param(name, ty, span);
        }
        if let Some(value) = self.global(name, span)? {
            return Ok(value);
        }
        self.builder.set_span(Some(span));
        match name {
            "pi" => Ok(Val::Ir(self.builder.real(std::f64::consts::PI)?)),
            "inf" => Ok(Val::Ir(self.builder.real(f64::INFINITY)?)),
            _ => Err(internal(Some(span), format!("`{name}` is not bound"))),
        }
    }

    /// The IR value of a real, int, bool, vector or matrix.
    pub(crate) fn scalar(&self, value: Val<'a>, span: Span) -> Lowered<Value> {
        match value {
            Val::Ir(value) => Ok(value),
            _ => Err(internal(Some(span), "expected a number, vector or matrix")),
        }
    }

    /// A real (ints converted), vector or matrix.
    fn real_or_vector(&mut self, value: Val<'a>, span: Span) -> Lowered<Value> {
        let value = self.scalar(value, span)?;
        self.converted_to_real(value)
    }

    pub(crate) fn converted_to_real(&mut self, value: Value) -> Lowered<Value> {
        if self.builder.ty(value) == Some(Type::Int) {
            Ok(self.builder.unary(UnaryOp::ToReal, value)?)
        } else {
            Ok(value)
        }
    }

    /// Converts ints to reals where the surface type says `real` (recursively).
    pub(crate) fn coerce(&mut self, value: Val<'a>, ty: &SurfaceType) -> Lowered<Val<'a>> {
        Ok(match (value, ty) {
            (Val::Ir(v), SurfaceType::Real) => Val::Ir(self.converted_to_real(v)?),
            (Val::Ir(v), SurfaceType::Int | SurfaceType::Bool) if self.builder.ty(v) == Some(Type::Real) => {
                let element = if *ty == SurfaceType::Int { Element::Int } else { Element::Bool };
                self.check_discrete(v, element)?;
                let zero = self.builder.real(0.0)?;
                match element {
                    Element::Int => Val::Ir(self.builder.unary(UnaryOp::ToInt, v)?),
                    Element::Bool => Val::Ir(self.builder.compare(CompareOp::Ne, v, zero)?),
                }
            }
            (Val::Ir(v), SurfaceType::Array(element, _)) if matches!(self.builder.ty(v), Some(Type::Vec(_))) => {
                let element = if **element == SurfaceType::Int { Element::Int } else { Element::Bool };
                self.check_discrete(v, element)?;
                Val::Array { data: v, element }
            }
            (Val::Tuple(parts), SurfaceType::Tuple(types)) if parts.len() == types.len() => Val::Tuple(
                parts.into_iter().zip(types).map(|(part, ty)| self.coerce(part, ty)).collect::<Lowered<_>>()?,
            ),
            (Val::Record(fields), SurfaceType::Record(types)) => {
                let mut converted = Vec::with_capacity(fields.len());
                for (name, field) in fields {
                    let field = match types.iter().find(|t| t.name == name) {
                        Some(t) => self.coerce(field, &t.ty)?,
                        None => field,
                    };
                    converted.push((name, field));
                }
                Val::Record(converted)
            }
            (value, _) => value,
        })
    }

    /// `v[a..b]`, `m[a..b]`, `m[.., j]`, `m[i, a..b]`, `m[a..b, c..d]` (see `check_slice`):
    /// a slice of consecutive elements (rows) is one [`Op::Slice`]; a column goes through the
    /// transpose.
    fn slice(&mut self, env: &mut Env<'a>, expr: &'a Expr, base: &'a Expr, indices: &'a [Expr]) -> Lowered<Val<'a>> {
        let value = self.expr(env, base)?;
        if let Val::Stacked { .. } = value {
            return self.stacked_slice(env, expr, value, indices);
        }
        let (data, element) = match value {
            Val::Ir(data) => (data, None),
            Val::Array { data, element } => (data, Some(element)),
            _ => return Err(internal(Some(expr.span), "a slice of a non-vector")),
        };
        let dims = match self.builder.ty(data) {
            Some(Type::Vec(n)) => vec![n],
            Some(Type::Mat(m, n)) => vec![m, n],
            _ => return Err(internal(Some(expr.span), "a slice of a non-vector")),
        };
        // Each index: `(start, length)` of a slice, or a position.
        let mut parts = Vec::with_capacity(indices.len());
        for (index, dim) in indices.iter().zip(&dims) {
            let ExprKind::Range { lo, hi } = &index.kind else {
                let position = self.expr(env, index)?;
                parts.push(Err(self.scalar(position, index.span)?));
                continue;
            };
            let start = self.slice_bound(env, lo, 0, *dim)?;
            let end = self.slice_bound(env, hi, *dim, *dim)?;
            parts.push(Ok((start, end.saturating_sub(start))));
        }
        self.builder.set_span(Some(expr.span));
        let b = &mut self.builder;
        let sliced = match parts.as_slice() {
            [Ok((start, len))] => b.push1(Op::Slice { aggregate: data, start: *start, len: *len })?,
            [Ok((start, len)), Err(column)] => {
                let rows = b.push1(Op::Slice { aggregate: data, start: *start, len: *len })?;
                let columns = b.push1(Op::Transpose(rows))?;
                b.push1(Op::Extract { aggregate: columns, index: *column })?
            }
            [Err(row), Ok((start, len))] => {
                let row = b.push1(Op::Extract { aggregate: data, index: *row })?;
                b.push1(Op::Slice { aggregate: row, start: *start, len: *len })?
            }
            [Ok((row_start, rows)), Ok((column_start, columns))] => {
                let rows = b.push1(Op::Slice { aggregate: data, start: *row_start, len: *rows })?;
                let transposed = b.push1(Op::Transpose(rows))?;
                let columns = b.push1(Op::Slice { aggregate: transposed, start: *column_start, len: *columns })?;
                b.push1(Op::Transpose(columns))?
            }
            _ => return Err(internal(Some(expr.span), "a slice with positions only")),
        };
        Ok(match element {
            Some(element) => Val::Array { data: sliced, element },
            None => Val::Ir(sliced),
        })
    }

    /// Checks that reals standing for counts are whole numbers (of at most 2^53 in size) and
    /// that reals standing for booleans are 0 or 1, every element of a vector at once.
    pub(super) fn check_discrete(&mut self, values: Value, element: Element) -> Lowered<()> {
        // What a data set's failing element adds to each message: where to look in the data.
        let found = match self.data_check(values, element) {
            DataCheck::Passes => return Ok(()),
            DataCheck::NotData => String::new(),
            DataCheck::FirstFailure(place) => format!(" ({place})"),
        };
        let b = &mut self.builder;
        let values = b.unary(UnaryOp::Detach, values)?;
        let (reduce, culprit_of) = match b.ty(values) {
            Some(Type::Vec(_)) => (true, "element"),
            _ => (false, "value"),
        };
        let extreme = |b: &mut crate::ir::FunctionBuilder, op: ReduceOp, x: Value| match reduce {
            true => b.push1(Op::Reduce(op, x)),
            false => Ok(x),
        };
        let zero = b.real(0.0)?;
        let whole = b.unary(UnaryOp::Floor, values)?;
        let fraction = b.sub(values, whole)?;
        let largest_fraction = extreme(b, ReduceOp::Max, fraction)?;
        let magnitude = b.unary(UnaryOp::Abs, values)?;
        let largest_magnitude = extreme(b, ReduceOp::Max, magnitude)?;
        let (smallest, largest) = (extreme(b, ReduceOp::Min, values)?, extreme(b, ReduceOp::Max, values)?);
        let check = |b: &mut crate::ir::FunctionBuilder, cond: Value, culprit: Value, message: String| {
            b.push(Op::Check { cond, culprit, message }).map(|_| ())
        };
        let integral = b.compare(CompareOp::Eq, largest_fraction, zero)?;
        let (kind, largest_fraction_is) = match (element, reduce) {
            (Element::Int, true) => ("counts must be whole numbers", "the largest fractional part is {}"),
            (Element::Int, false) => ("a count must be a whole number", "its fractional part is {}"),
            (Element::Bool, true) => ("booleans must be 0 or 1", "the largest fractional part is {}"),
            (Element::Bool, false) => ("a boolean must be 0 or 1", "its fractional part is {}"),
        };
        check(b, integral, largest_fraction, format!("{kind}, but {largest_fraction_is}{found}"))?;
        match element {
            Element::Int => {
                let most = b.real(9_007_199_254_740_992.0)?;
                let bounded = b.compare(CompareOp::Le, largest_magnitude, most)?;
                let message =
                    format!("counts must be at most 2^53 in size, but the largest {culprit_of} is {{}}{found}");
                check(b, bounded, largest_magnitude, message)?;
            }
            Element::Bool => {
                let one = b.real(1.0)?;
                let low = b.compare(CompareOp::Ge, smallest, zero)?;
                let message = format!("booleans must be 0 or 1, but the smallest {culprit_of} is {{}}{found}");
                check(b, low, smallest, message)?;
                let high = b.compare(CompareOp::Le, largest, one)?;
                let message = format!("booleans must be 0 or 1, but the largest {culprit_of} is {{}}{found}");
                check(b, high, largest, message)?;
            }
        }
        Ok(())
    }

    /// Whether `values` are a data set or one of its rows (a minibatch's image), and if so
    /// whether every element of the data set passes [`Self::check_discrete`]'s checks: then no
    /// row can fail them, and they are left out rather than run again on every row of every step.
    /// A data set with an element that fails keeps the checks, which name that element.
    fn data_check(&self, values: Value, element: Element) -> DataCheck {
        let b = &self.builder;
        let mut source = values;
        while let Some(Op::Unary(UnaryOp::Detach, from) | Op::Extract { aggregate: from, .. }) = b.definition(source) {
            source = *from;
        }
        let Some(Op::Data(tensor)) = b.definition(source) else { return DataCheck::NotData };
        let Some(index) = self.program.discrete_data.first_failure(&tensor.values, element) else {
            return DataCheck::Passes;
        };
        let value = tensor.values.get(index).copied().unwrap_or(f64::NAN);
        let what = match element {
            Element::Bool => "that is not 0 or 1",
            Element::Int => "that is not a whole number of at most 2^53 in size",
        };
        let name = &tensor.name;
        DataCheck::FirstFailure(match tensor.ty {
            Type::Mat(_, columns) => {
                let columns = (columns as usize).max(1);
                let (row, column) = (index / columns, index % columns);
                format!("the first element of `{name}` {what} is in row {row}, column {column}: {value}")
            }
            _ => format!("the first element of `{name}` {what} is element {index}: {value}"),
        })
    }

    fn binary(
        &mut self,
        env: &mut Env<'a>,
        expr: &'a Expr,
        op: ast::BinaryOp,
        left: &'a Expr,
        right: &'a Expr,
    ) -> Lowered<Val<'a>> {
        let lhs = self.expr(env, left)?;
        let rhs = self.expr(env, right)?;
        self.builder.set_span(Some(expr.span));
        self.span = Some(expr.span);
        if let (Val::Est(_), _) | (_, Val::Est(_)) = (&lhs, &rhs) {
            let op = arithmetic(op).ok_or_else(|| internal(Some(expr.span), "estimate operator"))?;
            let left = self.operand(lhs, left.span)?;
            let right = self.operand(rhs, right.span)?;
            return Ok(Val::Est(Rc::new(Estimate::Arith { op, left, right })));
        }
        if op == ast::BinaryOp::Merge {
            return match (lhs, rhs) {
                (Val::Record(mut a), Val::Record(b)) => {
                    a.extend(b);
                    Ok(Val::Record(a))
                }
                _ => Err(internal(Some(expr.span), "`++` of non-records")),
            };
        }
        let (a, b) = (self.scalar(lhs, left.span)?, self.scalar(rhs, right.span)?);
        let value = match op {
            ast::BinaryOp::Or => self.builder.binary(BinaryOp::Or, a, b),
            ast::BinaryOp::And => self.builder.binary(BinaryOp::And, a, b),
            ast::BinaryOp::Eq
            | ast::BinaryOp::Ne
            | ast::BinaryOp::Lt
            | ast::BinaryOp::Le
            | ast::BinaryOp::Gt
            | ast::BinaryOp::Ge => {
                let (a, b) = self.same_scalar_type(a, b)?;
                let compare = match op {
                    ast::BinaryOp::Eq => CompareOp::Eq,
                    ast::BinaryOp::Ne => CompareOp::Ne,
                    ast::BinaryOp::Lt => CompareOp::Lt,
                    ast::BinaryOp::Le => CompareOp::Le,
                    ast::BinaryOp::Gt => CompareOp::Gt,
                    _ => CompareOp::Ge,
                };
                self.builder.compare(compare, a, b)
            }
            ast::BinaryOp::MatMul => self.builder.push1(Op::MatMul(a, b)),
            ast::BinaryOp::Div | ast::BinaryOp::Pow => {
                // Integer operands of `/` and `^` give reals.
                let (a, b) = (self.converted_to_real(a)?, self.converted_to_real(b)?);
                let op = if op == ast::BinaryOp::Div { BinaryOp::Div } else { BinaryOp::Pow };
                self.builder.binary(op, a, b)
            }
            _ => {
                let op = arithmetic(op).ok_or_else(|| internal(Some(expr.span), "operator"))?;
                let (a, b) = self.same_scalar_type(a, b)?;
                self.builder.binary(op, a, b)
            }
        };
        Ok(Val::Ir(value?))
    }

    /// Converts an int to a real when the other operand is real-valued.
    fn same_scalar_type(&mut self, a: Value, b: Value) -> Lowered<(Value, Value)> {
        match (self.builder.ty(a), self.builder.ty(b)) {
            (Some(Type::Int), Some(Type::Int)) | (Some(Type::Bool), Some(Type::Bool)) => Ok((a, b)),
            _ => Ok((self.converted_to_real(a)?, self.converted_to_real(b)?)),
        }
    }

    /// A slice bound's value (`default` where it is left out), which the checker has found to
    /// be a constant from 0 to `len`.
    pub(super) fn slice_bound(
        &mut self,
        env: &mut Env<'a>,
        bound: &'a Option<Box<Expr>>,
        default: u32,
        len: u32,
    ) -> Lowered<u32> {
        let Some(bound) = bound else { return Ok(default) };
        let value = self.expr(env, bound)?;
        let value = self.scalar(value, bound.span)?;
        self.builder
            .int_constant(value)
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n <= len)
            .ok_or_else(|| internal(Some(bound.span), "a slice bound that is not a constant in range"))
    }

    fn operand(&mut self, value: Val<'a>, span: Span) -> Lowered<Operand<'a>> {
        match value {
            Val::Est(estimate) => Ok(Operand::Est(estimate)),
            value => Ok(Operand::Real(self.real_or_vector(value, span)?)),
        }
    }

    pub(crate) fn block(&mut self, env: &mut Env<'a>, block: &'a Block) -> Lowered<Val<'a>> {
        let scope = env.locals.len();
        let result = self.block_in_scope(env, block, false);
        env.locals.truncate(scope);
        result
    }

    pub(super) fn block_in_scope(
        &mut self,
        env: &mut Env<'a>,
        block: &'a Block,
        function_body: bool,
    ) -> Lowered<Val<'a>> {
        self.statements(env, block, 0, function_body)
    }

    /// The statements of `block` from the `first` on, then its final expression. A function's
    /// body may end with `return e;`; a `return` before the end is lowered as
    /// `super::returns` describes.
    pub(super) fn statements(
        &mut self,
        env: &mut Env<'a>,
        block: &'a Block,
        first: usize,
        function_body: bool,
    ) -> Lowered<Val<'a>> {
        for (index, stmt) in block.stmts.iter().enumerate().skip(first) {
            if let StmtKind::Return(value) = &stmt.kind {
                if self.returning() {
                    self.early_return(env, value)?;
                    return self.after_return(env, block);
                }
                if function_body && index + 1 == block.stmts.len() && block.tail.is_none() {
                    return self.expr(env, value);
                }
                return Err(internal(Some(stmt.span), "a `return` in a function that does not return early"));
            }
            if self.sums_out(stmt) {
                return self.summed_out(env, block, index);
            }
            self.stmt(env, stmt)?;
            let rest = index + 1 < block.stmts.len() || block.tail.is_some();
            if rest && self.returning() && stmt.contains_return() {
                return self.unless_returned(env, block, index + 1, function_body);
            }
        }
        match &block.tail {
            Some(tail) => self.expr(env, tail),
            None => Ok(Val::unit()),
        }
    }

    fn stmt(&mut self, env: &mut Env<'a>, stmt: &'a Stmt) -> Lowered<()> {
        self.span = Some(stmt.span);
        match &stmt.kind {
            StmtKind::Let { pattern, ty: _, value } => {
                let lowered = self.expr(env, value)?;
                let lowered = match env.ty(value) {
                    Some(ty) => self.coerce(lowered, ty)?,
                    None => lowered,
                };
                self.bind_pattern(env, pattern, lowered)
            }
            StmtKind::Choice { address, dist, via } => self.choice(env, stmt, address, dist, via.as_ref()),
            StmtKind::For { var, lo, hi, body } => self.for_stmt(env, var, lo, hi, body),
            StmtKind::Return(_) => Err(internal(Some(stmt.span), "`return` outside a block's statements")),
            StmtKind::Expr(expr) => self.expr(env, expr).map(|_| ()),
        }
    }

    pub(crate) fn bind_pattern(&mut self, env: &mut Env<'a>, pattern: &Pattern, value: Val<'a>) -> Lowered<()> {
        match (pattern, value) {
            (Pattern::Name(ident), value) => env.bind(&ident.name, value),
            (Pattern::Wildcard(_), _) => {}
            (Pattern::Tuple(parts, _), Val::Tuple(values)) if parts.len() == values.len() => {
                for (part, value) in parts.iter().zip(values) {
                    self.bind_pattern(env, part, value)?;
                }
            }
            (pattern, _) => return Err(internal(Some(pattern.span()), "pattern does not match")),
        }
        Ok(())
    }

    /// The values a branch or loop must carry besides its own: the expectation's state, the
    /// innermost `gen` body's scores and trace, and the innermost function's return slot.
    pub(super) fn state_values(&self) -> Vec<Value> {
        let mut values = self.state.map(|state| state.values().to_vec()).unwrap_or_default();
        if let Some(gen) = self.gen.last() {
            values.extend(gen.values());
        }
        if let Some(Some(slot)) = self.returns.last() {
            values.extend(slot.values());
        }
        values
    }

    pub(super) fn restore_state(&mut self, values: &[Value]) {
        let mut rest = values;
        if self.state.is_some() {
            let count = ExpectState::VALUES;
            self.state = values.get(..count).and_then(ExpectState::from_values);
            rest = values.get(count..).unwrap_or(&[]);
        }
        if let Some(gen) = self.gen.last_mut() {
            let count = gen.values().len();
            if let Some(rebuilt) = gen.rebuilt(rest) {
                *gen = rebuilt;
            }
            rest = rest.get(count..).unwrap_or(&[]);
        }
        if let Some(Some(slot)) = self.returns.last_mut() {
            if let Some(rebuilt) = slot.rebuilt(rest) {
                *slot = rebuilt;
            }
        }
    }

    fn if_expr(
        &mut self,
        env: &mut Env<'a>,
        expr: &'a Expr,
        cond: &'a Expr,
        then: &'a Block,
        otherwise: Option<&'a Expr>,
    ) -> Lowered<Val<'a>> {
        let condition = self.expr(env, cond)?;
        let condition = self.scalar(condition, cond.span)?;
        let ty = env.ty(expr).cloned().unwrap_or(SurfaceType::Unknown);
        if matches!(ty, SurfaceType::Est(_)) {
            let otherwise = otherwise.ok_or_else(|| internal(Some(expr.span), "estimate `if` without `else`"))?;
            return Ok(Val::Est(Rc::new(Estimate::Choose {
                cond: condition,
                then: Deferred::Block(then, env.clone()),
                otherwise: Deferred::Expr(otherwise, env.clone()),
            })));
        }
        let entry_state = self.state_values();
        let mut blocks = Vec::with_capacity(2);
        let mut template = None;
        for branch in 0..2 {
            self.restore_state(&entry_state);
            self.builder.begin_block(&[]);
            let value = match (branch, otherwise) {
                (0, _) => self.block(env, then)?,
                (_, Some(otherwise)) => self.expr(env, otherwise)?,
                (_, None) => Val::unit(),
            };
            let value = self.coerce(value, &ty)?;
            let mut yielded = Vec::new();
            value.flatten(&mut yielded);
            yielded.extend(self.state_values());
            blocks.push(self.builder.end_block(yielded)?);
            template.get_or_insert(value);
        }
        let otherwise_block = blocks.pop().ok_or_else(|| internal(Some(expr.span), "branch"))?;
        let then_block = blocks.pop().ok_or_else(|| internal(Some(expr.span), "branch"))?;
        if then_block.results.len() != otherwise_block.results.len() {
            return Err(internal(Some(expr.span), "branches of different shapes"));
        }
        self.builder.set_span(Some(expr.span));
        let results = self.builder.push_if(condition, then_block, otherwise_block)?;
        let template = template.ok_or_else(|| internal(Some(expr.span), "branch"))?;
        let mut flat = Vec::new();
        template.flatten(&mut flat);
        let (values, state) = results.split_at(flat.len());
        self.restore_state(state);
        Ok(template.rebuild(&mut values.iter().copied()))
    }

    fn loop_bound(&mut self, env: &mut Env<'a>, bound: &'a Expr) -> Lowered<Value> {
        let value = self.expr(env, bound)?;
        self.scalar(value, bound.span)
    }

    fn for_stmt(
        &mut self,
        env: &mut Env<'a>,
        var: &'a Pattern,
        lo: &'a Expr,
        hi: &'a Expr,
        body: &'a Block,
    ) -> Lowered<()> {
        let (lo, hi) = (self.loop_bound(env, lo)?, self.loop_bound(env, hi)?);
        let init = self.state_values();
        let mut param_types = vec![Type::Int];
        param_types.extend(init.iter().filter_map(|value| self.builder.ty(*value)));
        let params = self.builder.begin_block(&param_types);
        self.restore_state(&params[1..]);
        let scope = env.locals.len();
        self.bind_pattern(env, var, Val::Ir(params[0]))?;
        if let Pattern::Name(variable) = var {
            self.loop_starts.push((variable.name.clone(), lo));
        }
        // Once a `return` has run, the remaining iterations do nothing.
        let lowered = match self.returning() && body.contains_return() {
            true => self.unless_returned(env, body, 0, false),
            false => self.block(env, body),
        };
        if let Pattern::Name(_) = var {
            self.loop_starts.pop();
        }
        lowered?;
        env.locals.truncate(scope);
        let yielded = self.state_values();
        let block = self.builder.end_block(yielded)?;
        let results = self.builder.push_for(lo, hi, init, block)?;
        self.restore_state(&results);
        Ok(())
    }

    fn comprehension(
        &mut self,
        env: &mut Env<'a>,
        expr: &'a Expr,
        body: &'a Expr,
        var: &'a Pattern,
        lo: &'a Expr,
        hi: &'a Expr,
    ) -> Lowered<Val<'a>> {
        if let Some(SurfaceType::Array(..)) = env.ty(expr) {
            return self.stacked_comprehension(env, expr, body, var, (lo, hi));
        }
        let result_type = env.ty(expr).and_then(super::ir_type).ok_or_else(|| {
            unsupported(expr.span, "a comprehension whose length is not a constant, or more than 16,777,216 elements,")
        })?;
        let (lo_value, hi_value) = (self.loop_bound(env, lo)?, self.loop_bound(env, hi)?);
        self.builder.set_span(Some(expr.span));
        let empty = self.builder.filled(result_type, 0.0)?;
        let mut init = vec![empty];
        init.extend(self.state_values());
        let mut param_types = vec![Type::Int];
        param_types.extend(init.iter().filter_map(|value| self.builder.ty(*value)));
        let params = self.builder.begin_block(&param_types);
        self.restore_state(&params[2..]);
        let scope = env.locals.len();
        self.bind_pattern(env, var, Val::Ir(params[0]))?;
        let element = self.expr(env, body)?;
        env.locals.truncate(scope);
        let element = self.real_or_vector(element, body.span)?;
        self.builder.set_span(Some(expr.span));
        let position = self.builder.sub(params[0], lo_value)?;
        let filled = self.builder.push1(Op::Insert { aggregate: params[1], index: position, value: element })?;
        let mut yielded = vec![filled];
        yielded.extend(self.state_values());
        let block = self.builder.end_block(yielded)?;
        let results = self.builder.push_for(lo_value, hi_value, init, block)?;
        self.restore_state(&results[1..]);
        Ok(Val::Ir(results[0]))
    }

    fn choice(
        &mut self,
        env: &mut Env<'a>,
        stmt: &'a Stmt,
        address: &'a ast::Address,
        dist: &'a Expr,
        via: Option<&'a ast::Via>,
    ) -> Lowered<()> {
        let chosen = self.expr(env, dist)?;
        let estimator = match (via, &chosen) {
            (Some(via), _) => Estimator::from_name(&via.estimator.name)
                .ok_or_else(|| internal(Some(via.span), "unknown estimator"))?,
            (None, Val::Dist(distribution, _)) => distribution.default_estimator(),
            (None, _) => Estimator::Reinforce,
        };
        let baseline = match via.and_then(|via| via.args.as_ref()).and_then(|args| args.first()) {
            Some(arg) => {
                let value = self.expr(env, &arg.value)?;
                Some(self.real_or_vector(value, arg.value.span)?)
            }
            None => None,
        };
        self.builder.set_span(Some(stmt.span));
        self.span = Some(stmt.span);
        let rule = match self.plain_sampling {
            true => Rule { estimator: Estimator::Reinforce, baseline: None },
            false => Rule { estimator, baseline },
        };
        if !self.gen.is_empty() {
            return self.gen_choice(env, stmt, address, chosen, rule);
        }
        let Some(mut state) = self.state else {
            return Err(internal(Some(stmt.span), "a choice outside `E` and `gen`"));
        };
        let (distribution, args) = match chosen {
            Val::Dist(distribution, args) => (distribution, args),
            Val::Family(family) => {
                // Inside `E`, sampling a generative function runs it without keeping its trace.
                let Family::Gen { instance, args } = family.as_ref() else {
                    return Err(unsupported(dist.span, "`~` of `marginal(…)` or `normalize(…)`"));
                };
                let run = self.run_gen(*instance, args, None, Selection::All, stmt.span)?;
                env.bind(&address.name.name, run.ret);
                return Ok(());
            }
            _ => return Err(internal(Some(dist.span), "`~` of neither a distribution nor a family")),
        };
        self.check_domains(distribution, &args)?;
        let value = self.draw(&mut state, distribution, &args, rule)?;
        self.state = Some(state);
        env.bind(&address.name.name, value);
        Ok(())
    }

    /// Draws from a distribution; a scalar distribution given vector arguments draws each
    /// element independently (a discrete one into an array of bools or ints).
    pub(super) fn draw(
        &mut self,
        state: &mut ExpectState,
        distribution: &'static Distribution,
        args: &[Value],
        rule: Rule,
    ) -> Lowered<Val<'a>> {
        let length = elementwise_length(self, distribution, args);
        let Some(length) = length else {
            return Ok(Val::Ir(estimators::choose(&mut self.builder, state, distribution, args, rule)?));
        };
        let element = discrete_element(distribution);
        let mut elements = Vec::with_capacity(length as usize);
        for i in 0..length {
            let index = self.builder.int(i64::from(i))?;
            let scalars = self.element_args(args, index)?;
            let drawn = estimators::choose(&mut self.builder, state, distribution, &scalars, rule)?;
            elements.push(match element {
                Some(_) => self.discrete_as_real(drawn)?,
                None => drawn,
            });
        }
        let data = self.builder.push1(Op::Build(elements))?;
        Ok(match element {
            Some(element) => Val::Array { data, element },
            None => Val::Ir(data),
        })
    }

    /// The arguments of element `i` of an elementwise draw: element `i` of each vector
    /// argument, and each scalar argument as it is.
    pub(super) fn element_args(&mut self, args: &[Value], index: Value) -> Lowered<Vec<Value>> {
        let mut scalars = Vec::with_capacity(args.len());
        for arg in args {
            scalars.push(match self.builder.ty(*arg) {
                Some(Type::Vec(_)) => self.builder.push1(Op::Extract { aggregate: *arg, index })?,
                _ => *arg,
            });
        }
        Ok(scalars)
    }

    /// Emits the run-time checks of a distribution's arguments.
    pub(super) fn check_domains(&mut self, distribution: &'static Distribution, args: &[Value]) -> Lowered<()> {
        use crate::distributions::Domain;
        for (index, (domain, arg)) in distribution.domains.iter().zip(args).enumerate() {
            let name = distribution.params.get(index).map_or("argument", |(name, _)| *name);
            let requirement =
                format!("`{name}` of `{}` {}", distribution.name, domain.requirement(distribution.params));
            if *domain == Domain::Any {
                continue;
            }
            if *domain == Domain::Weights {
                let total = self.builder.push1(Op::Reduce(ReduceOp::Sum, *arg))?;
                let zero = self.builder.real(0.0)?;
                let positive = self.builder.compare(CompareOp::Gt, total, zero)?;
                let message = format!("the weights of `{}` must have a positive sum", distribution.name);
                self.builder.push(Op::Check { cond: positive, culprit: total, message })?;
            }
            match self.builder.ty(*arg) {
                Some(Type::Vec(_) | Type::Mat(..)) => self.check_elements(*domain, *arg, args, &requirement)?,
                _ => {
                    let ok = self.domain_holds(*domain, *arg, args)?;
                    self.builder.push(Op::Check { cond: ok, culprit: *arg, message: requirement })?;
                }
            }
        }
        Ok(())
    }

    /// Checks every element of a vector or matrix by its extremes, in code whose size does not
    /// grow with the length: the smallest element must satisfy a lower bound, the largest an
    /// upper one.
    fn check_elements(
        &mut self,
        domain: crate::distributions::Domain,
        elements: Value,
        args: &[Value],
        requirement: &str,
    ) -> Lowered<()> {
        use crate::distributions::Domain;
        let b = &mut self.builder;
        let values = b.unary(UnaryOp::Detach, elements)?;
        let smallest = b.push1(Op::Reduce(ReduceOp::Min, values))?;
        let largest = b.push1(Op::Reduce(ReduceOp::Max, values))?;
        let zero = b.real(0.0)?;
        let one = b.real(1.0)?;
        let check = |b: &mut crate::ir::FunctionBuilder, cond: Value, culprit: Value, which: &str| {
            let message = format!("{requirement}, but its {which} is {{}}");
            b.push(Op::Check { cond, culprit, message }).map(|_| ())
        };
        match domain {
            Domain::Any => {}
            Domain::Positive | Domain::PositiveVector => {
                let ok = b.compare(CompareOp::Gt, smallest, zero)?;
                check(b, ok, smallest, "smallest element")?;
            }
            Domain::ScaleTril => {
                let diagonal = crate::adev::rules::diagonal(b, values)?;
                let least = b.push1(Op::Reduce(ReduceOp::Min, diagonal))?;
                let ok = b.compare(CompareOp::Gt, least, zero)?;
                check(b, ok, least, "smallest diagonal element")?;
            }
            Domain::NonNegative | Domain::Weights => {
                let ok = b.compare(CompareOp::Ge, smallest, zero)?;
                check(b, ok, smallest, "smallest element")?;
            }
            // Every element above the bound (a scalar or one per element): `min(x - bound) > 0`.
            Domain::Above(index) => {
                let Some(bound) = args.get(index) else { return Ok(()) };
                let margin = b.sub(values, *bound)?;
                let least_margin = b.push1(Op::Reduce(ReduceOp::Min, margin))?;
                let ok = b.compare(CompareOp::Gt, least_margin, zero)?;
                check(b, ok, smallest, "smallest element")?;
            }
            Domain::Probability | Domain::SuccessProbability | Domain::Count => {
                let low = match domain {
                    Domain::SuccessProbability => b.compare(CompareOp::Gt, smallest, zero)?,
                    _ => b.compare(CompareOp::Ge, smallest, zero)?,
                };
                check(b, low, smallest, "smallest element")?;
                let most = match domain {
                    Domain::Count => b.real(9_007_199_254_740_992.0)?,
                    _ => one,
                };
                let high = b.compare(CompareOp::Le, largest, most)?;
                check(b, high, largest, "largest element")?;
                if domain == Domain::Count {
                    let whole = b.unary(UnaryOp::Floor, values)?;
                    let fraction = b.sub(values, whole)?;
                    let largest_fraction = b.push1(Op::Reduce(ReduceOp::Max, fraction))?;
                    let integral = b.compare(CompareOp::Eq, largest_fraction, zero)?;
                    check(b, integral, largest_fraction, "largest fractional part")?;
                }
            }
        }
        Ok(())
    }

    fn domain_holds(&mut self, domain: crate::distributions::Domain, x: Value, args: &[Value]) -> Lowered<Value> {
        use crate::distributions::Domain;
        let b = &mut self.builder;
        let result = (|| {
            let zero = b.real(0.0)?;
            let one = b.real(1.0)?;
            match domain {
                Domain::Any => b.boolean(true),
                Domain::Positive | Domain::PositiveVector | Domain::ScaleTril => b.compare(CompareOp::Gt, x, zero),
                Domain::NonNegative | Domain::Weights => b.compare(CompareOp::Ge, x, zero),
                Domain::Probability => {
                    let low = b.compare(CompareOp::Ge, x, zero)?;
                    let high = b.compare(CompareOp::Le, x, one)?;
                    b.binary(BinaryOp::And, low, high)
                }
                Domain::SuccessProbability => {
                    let low = b.compare(CompareOp::Gt, x, zero)?;
                    let high = b.compare(CompareOp::Le, x, one)?;
                    b.binary(BinaryOp::And, low, high)
                }
                Domain::Count => {
                    let low = b.compare(CompareOp::Ge, x, zero)?;
                    let most = b.real(9_007_199_254_740_992.0)?;
                    let high = b.compare(CompareOp::Le, x, most)?;
                    let whole = b.unary(UnaryOp::Floor, x)?;
                    let integral = b.compare(CompareOp::Eq, whole, x)?;
                    let bounded = b.binary(BinaryOp::And, low, high)?;
                    b.binary(BinaryOp::And, bounded, integral)
                }
                Domain::Above(index) => match args.get(index) {
                    Some(bound) => b.compare(CompareOp::Gt, x, *bound),
                    None => b.boolean(true),
                },
            }
        })();
        Ok(result?)
    }

    fn call(&mut self, env: &mut Env<'a>, expr: &'a Expr, callee: &'a ast::Ident, args: &'a [Arg]) -> Lowered<Val<'a>> {
        if let Some(instance) = env.context.calls.get(&expr.id).copied() {
            return self.inline_call(env, expr, instance, args);
        }
        if let Some(distribution) = distributions::lookup(&callee.name) {
            let names: Vec<&str> = distribution.params.iter().map(|(name, _)| *name).collect();
            let slots = bind_args(&names, args);
            let mut values = Vec::with_capacity(slots.len());
            for (slot, (_, kind)) in slots.into_iter().zip(distribution.params) {
                let arg = slot.ok_or_else(|| internal(Some(expr.span), "missing argument"))?;
                let value = self.expr(env, arg)?;
                let value = self.real_or_vector(value, arg.span)?;
                let fits = match kind {
                    ParamKind::Real => true,
                    ParamKind::Vector => matches!(self.builder.ty(value), Some(Type::Vec(_))),
                    ParamKind::Matrix => matches!(self.builder.ty(value), Some(Type::Mat(..))),
                };
                if fits {
                    values.push(value);
                } else {
                    return Err(internal(Some(arg.span), "vector argument expected"));
                }
            }
            return Ok(Val::Dist(distribution, values));
        }
        self.builtin(env, expr, &callee.name, args)
    }

    fn inline_call(&mut self, env: &mut Env<'a>, expr: &'a Expr, index: usize, args: &'a [Arg]) -> Lowered<Val<'a>> {
        if self.builder.values() > MAX_VALUES {
            return Err(Diagnostic::error(
                ErrorCode::ProgramTooLarge,
                format!("the program grows past {MAX_VALUES} values as its calls are inlined"),
            )
            .with_primary(expr.span, "inlining this call went past the limit")
            .with_note("every `fn` call is inlined: a function calling another twice doubles its size, level by level")
            .with_help("compute a repeated value once with `let`, or call functions fewer times"));
        }
        let checked = self.program.checked();
        let instance = checked.instances.get(index).ok_or_else(|| internal(Some(expr.span), "no instance"))?;
        let def = match self
            .program
            .analysis
            .files
            .get(instance.item.file)
            .and_then(|file| file.program.items.get(instance.item.item))
        {
            Some(ast::Item { kind: ast::ItemKind::Fn(def), .. }) => def,
            Some(ast::Item { kind: ast::ItemKind::Gen(def), .. }) => {
                let names: Vec<&str> = def.params.iter().map(|param| param.name.name.as_str()).collect();
                let mut values = Vec::with_capacity(names.len());
                for slot in bind_args(&names, args) {
                    let arg = slot.ok_or_else(|| internal(Some(expr.span), "missing argument"))?;
                    values.push(self.expr(env, arg)?);
                }
                return Ok(Val::Family(Rc::new(Family::Gen { instance: index, args: values })));
            }
            _ => return Err(internal(Some(expr.span), "call of a non-function")),
        };
        let names: Vec<&str> = def.params.iter().map(|param| param.name.name.as_str()).collect();
        let mut values = Vec::with_capacity(names.len());
        for slot in bind_args(&names, args) {
            let arg = slot.ok_or_else(|| internal(Some(expr.span), "missing argument"))?;
            values.push(self.expr(env, arg)?);
        }
        self.call_fn(index, values, expr.span)
    }

    /// Inlines the `fn` instance `index` applied to lowered arguments, in order.
    pub(super) fn call_fn(&mut self, index: usize, args: Vec<Val<'a>>, span: Span) -> Lowered<Val<'a>> {
        let checked = self.program.checked();
        let instance = checked.instances.get(index).ok_or_else(|| internal(Some(span), "no instance"))?;
        let item = self
            .program
            .analysis
            .files
            .get(instance.item.file)
            .and_then(|file| file.program.items.get(instance.item.item));
        let Some(ast::Item { kind: ast::ItemKind::Fn(def), .. }) = item else {
            return Err(internal(Some(span), "call of a non-function"));
        };
        let mut callee_env = Env::new(super::value::Context { types: &instance.types, calls: &instance.calls });
        for ((param, value), ty) in def.params.iter().zip(args).zip(&instance.args) {
            let value = self.coerce(value, ty)?;
            callee_env.bind(&param.name.name, value);
        }
        let value = self.function_body(&mut callee_env, &def.body, &instance.ret, span)?;
        self.coerce(value, &instance.ret)
    }

    /// Lowers an `E { … }` block on `rng` into an `Expect` operation; returns its value.
    fn expectation(&mut self, block: &'a Block, env: &Env<'a>, rng: Value) -> Lowered<Value> {
        let outer_state = self.state.take();
        let params = self.builder.begin_block(&[Type::Rng]);
        let start = ExpectState::start(&mut self.builder, params[0]);
        self.state = Some(start?);
        let mut env = env.clone();
        // Nothing in `E { … }` returns from the function around it (E0209).
        self.returns.push(None);
        let value = self.block(&mut env, block);
        self.returns.pop();
        let value = value.and_then(|value| {
            let span = block.tail.as_ref().map_or(block.span, |tail| tail.span);
            self.real_or_vector(value, span)
        });
        let state = self.state.take();
        self.state = outer_state;
        let value = value?;
        let state = state.ok_or_else(|| internal(Some(block.span), "lost the expectation's state"))?;
        self.builder.set_span(Some(block.span));
        let result = estimators::finish(&mut self.builder, &state, value)?;
        let body = self.builder.end_block(vec![result])?;
        Ok(self.builder.push_expect(rng, body)?)
    }
}

/// The length of a vector argument given where the distribution takes a real, if any.
pub(super) fn elementwise_length(
    lowerer: &FunctionLowerer<'_, '_>,
    distribution: &Distribution,
    args: &[Value],
) -> Option<u32> {
    distribution.params.iter().zip(args).find_map(|((_, kind), arg)| match (kind, lowerer.builder.ty(*arg)) {
        (ParamKind::Real, Some(Type::Vec(n))) => Some(n),
        _ => None,
    })
}

fn arithmetic(op: ast::BinaryOp) -> Option<BinaryOp> {
    Some(match op {
        ast::BinaryOp::Add => BinaryOp::Add,
        ast::BinaryOp::Sub => BinaryOp::Sub,
        ast::BinaryOp::Mul => BinaryOp::Mul,
        ast::BinaryOp::Div => BinaryOp::Div,
        ast::BinaryOp::Pow => BinaryOp::Pow,
        _ => return None,
    })
}

/// Which argument expression fills each parameter: positional ones in order, then by name.
pub(crate) fn bind_args<'e>(params: &[&str], args: &'e [Arg]) -> Vec<Option<&'e Expr>> {
    let mut slots = vec![None; params.len()];
    let mut positional = 0;
    for arg in args {
        let index = match &arg.name {
            Some(name) => params.iter().position(|param| *param == name.name),
            None => {
                positional += 1;
                Some(positional - 1)
            }
        };
        if let Some(slot) = index.and_then(|index| slots.get_mut(index)) {
            *slot = Some(&arg.value);
        }
    }
    slots
}

/// Runs an estimate once on `rng`, each sub-estimate on its own stream.
pub(super) fn emit_estimate<'a>(
    lowerer: &mut FunctionLowerer<'_, 'a>,
    estimate: &Rc<Estimate<'a>>,
    rng: Value,
) -> Lowered<Value> {
    match estimate.as_ref() {
        Estimate::Expect { block, env } => lowerer.expectation(block, env, rng),
        Estimate::Arith { op, left, right } => {
            let streams = lowerer.builder.push(Op::Split { rng })?;
            let a = emit_operand(lowerer, left, streams[0])?;
            let b = emit_operand(lowerer, right, streams[1])?;
            Ok(lowerer.builder.binary(*op, a, b)?)
        }
        Estimate::Neg(inner) => {
            let value = emit_estimate(lowerer, inner, rng)?;
            Ok(lowerer.builder.unary(UnaryOp::Neg, value)?)
        }
        Estimate::Exp(inner) => emit_exp(lowerer, inner, rng),
        Estimate::OverRows(over) => lowerer.over_rows(over, rng),
        Estimate::Choose { cond, then, otherwise } => {
            let mut blocks = Vec::with_capacity(2);
            for deferred in [then, otherwise] {
                lowerer.builder.begin_block(&[]);
                let value = match deferred {
                    Deferred::Block(block, env) => lowerer.block(&mut env.clone(), block)?,
                    Deferred::Expr(expr, env) => lowerer.expr(&mut env.clone(), expr)?,
                };
                let Val::Est(inner) = value else {
                    return Err(internal(lowerer.span, "estimate branch is not an estimate"));
                };
                let result = emit_estimate(lowerer, &inner, rng)?;
                blocks.push(lowerer.builder.end_block(vec![result])?);
            }
            let otherwise = blocks.pop().ok_or_else(|| internal(lowerer.span, "branch"))?;
            let then = blocks.pop().ok_or_else(|| internal(lowerer.span, "branch"))?;
            let results = lowerer.builder.push_if(*cond, then, otherwise)?;
            results.first().copied().ok_or_else(|| internal(lowerer.span, "branch"))
        }
    }
}

fn emit_operand<'a>(lowerer: &mut FunctionLowerer<'_, 'a>, operand: &Operand<'a>, rng: Value) -> Lowered<Value> {
    match operand {
        Operand::Est(estimate) => emit_estimate(lowerer, estimate, rng),
        Operand::Real(value) => Ok(*value),
    }
}

/// ADEV's `exp`: with N ~ Poisson(2), `e²·Π_{i<N} (xᵢ/2)` over N fresh primal estimates is
/// unbiased for `exp(E x)`; the tangent is that estimate times one more independent
/// estimate's tangent.
fn emit_exp<'a>(lowerer: &mut FunctionLowerer<'_, 'a>, inner: &Rc<Estimate<'a>>, rng: Value) -> Lowered<Value> {
    let b = &mut lowerer.builder;
    let streams = b.push(Op::Split { rng })?;
    let rate = b.real(2.0)?;
    let drawn = b.push(Op::Sample { sampler: ir::Sampler::Poisson, args: vec![rate], rng: streams[0] })?;
    let split = b.push(Op::Split { rng: drawn[1] })?;
    let (count, product_rng, tangent_rng) = (drawn[0], split[0], split[1]);
    let zero = b.int(0)?;
    let one = b.real(1.0)?;
    let params = b.begin_block(&[Type::Int, Type::Real, Type::Rng]);
    let (product, stream) = (params[1], params[2]);
    let streams = b.push(Op::Split { rng: stream })?;
    let sample = emit_estimate(lowerer, inner, streams[1])?;
    let b = &mut lowerer.builder;
    let primal = b.unary(UnaryOp::Detach, sample)?;
    let half = b.real(0.5)?;
    let factor = b.mul(primal, half)?;
    let next = b.mul(product, factor)?;
    let block = b.end_block(vec![next, streams[0]])?;
    let results = b.push_for(zero, count, vec![one, product_rng], block)?;
    let tangent_source = emit_estimate(lowerer, inner, tangent_rng)?;
    let b = &mut lowerer.builder;
    let scale = b.real(std::f64::consts::E * std::f64::consts::E)?;
    let value = b.mul(scale, results[0])?;
    let tangent = b.mul(value, tangent_source)?;
    Ok(b.push1(Op::WithTangent { value, tangent_of: tangent })?)
}

/// What an array of a discrete distribution's draws holds; `None` for a real distribution.
pub(super) fn discrete_element(distribution: &Distribution) -> Option<Element> {
    match distribution.support {
        distributions::Support::Bool => Some(Element::Bool),
        distributions::Support::Int => Some(Element::Int),
        distributions::Support::Real | distributions::Support::RealVector => None,
    }
}

/// What [`FunctionLowerer::data_check`] finds of the values an observation checks.
enum DataCheck {
    /// They are not read from a data set.
    NotData,
    /// They are read from a data set whose every element passes.
    Passes,
    /// They are read from a data set with an element that fails, described.
    FirstFailure(String),
}
