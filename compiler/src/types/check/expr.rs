//! Expressions: names, operators with broadcasting and static shapes, indexing, fields,
//! literals, comprehensions, `if` and `E { … }`. Calls live in `calls`.

use super::body::Body;
use super::Checker;
use crate::diagnostics::{Diagnostic, ErrorCode};
use crate::syntax::ast::{BinaryOp, Expr, ExprKind, Ident, UnaryOp};
use crate::syntax::span::Span;
use crate::types::ty::{Dim, Field, Type};

/// An expression's type and, for integer expressions fixed at compile time, its value (which
/// fixes shapes: `zeros(n)`, `[… for i in 0..n]`).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Checked {
    pub ty: Type,
    pub int: Option<i64>,
}

impl Checked {
    pub fn of(ty: Type) -> Self {
        Checked { ty, int: None }
    }

    fn unknown() -> Self {
        Checked::of(Type::Unknown)
    }
}

/// Expressions checked inside one another beyond this depth are rejected.
const MAX_CHECK_DEPTH: usize = 10_000;

/// Types with more parts than this (fields, elements, nested traces) are rejected, so that
/// doubling records cannot take exponential time and memory.
pub(super) const MAX_TYPE_SIZE: usize = 10_000;

/// Built-in constants.
pub(super) const CONSTANTS: &[&str] = &["pi", "inf"];

impl<'a> Checker<'a> {
    pub(super) fn check_expr(&mut self, body: &mut Body, expr: &'a Expr) -> Checked {
        // The parser bounds one expression's depth; this bounds the recursion across
        // definitions checked inside one another (a chain of `let`s of deep expressions).
        if self.expr_depth >= MAX_CHECK_DEPTH {
            self.report_limit(
                Diagnostic::error(ErrorCode::NestingTooDeep, "expressions and definitions nested too deeply")
                    .with_primary(
                        expr.span,
                        format!("more than {MAX_CHECK_DEPTH} expressions checked inside one another"),
                    )
                    .with_help("split the computation into named parts with `let`"),
            );
            return Checked::unknown();
        }
        self.expr_depth += 1;
        let mut checked = self.check_expr_kind(body, expr);
        self.expr_depth -= 1;
        if checked.ty.size_exceeds(MAX_TYPE_SIZE) {
            self.report_limit(
                Diagnostic::error(ErrorCode::TypeTooLarge, "this value's type is too large")
                    .with_primary(expr.span, format!("its type has more than {MAX_TYPE_SIZE} parts"))
                    .with_help("types that double at each step grow exponentially; use vectors for repeated data"),
            );
            checked = Checked::unknown();
        }
        body.types.insert(expr.id, checked.ty.clone());
        checked
    }

    fn check_expr_kind(&mut self, body: &mut Body, expr: &'a Expr) -> Checked {
        match &expr.kind {
            ExprKind::Int(value) => Checked { ty: Type::Int, int: Some(*value) },
            ExprKind::Real(_) => Checked::of(Type::Real),
            ExprKind::Bool(_) => Checked::of(Type::Bool),
            ExprKind::Str(_) => Checked::of(Type::Str),
            ExprKind::Name(name) => self.check_name(body, name, expr.span),
            ExprKind::Unary(op, operand) => self.check_unary(body, *op, operand, expr.span),
            ExprKind::Binary(op, lhs, rhs) => self.check_binary(body, *op, lhs, rhs, expr.span),
            ExprKind::Call { callee, args } => self.check_call(body, callee, args, expr),
            ExprKind::Index { base, indices } => self.check_index(body, base, indices),
            ExprKind::Range { .. } => {
                self.report(
                    Diagnostic::error(ErrorCode::InvalidIndex, "a range `lo..hi` is a slice, written as an index")
                        .with_primary(expr.span, "not in the brackets of an index")
                        .with_help("slice a vector or matrix with it: `v[2..5]`, `m[.., j]`"),
                );
                Checked::unknown()
            }
            ExprKind::Field { base, field } => self.check_field(body, base, field),
            ExprKind::Vector(parts) => self.check_vector(body, parts),
            ExprKind::Comprehension { body: element, var, lo, hi } => {
                let lo_value = self.expect_int(body, lo, "a comprehension bound");
                let hi_value = self.expect_int(body, hi, "a comprehension bound");
                let len = match (lo_value, hi_value) {
                    (Some(lo), Some(hi)) => Dim::Known(hi.saturating_sub(lo).max(0) as u64),
                    _ => Dim::Unknown,
                };
                // Its value has a static length in the compiled program.
                if len == Dim::Unknown && [lo, hi].iter().all(|bound| body.types.get(&bound.id) == Some(&Type::Int)) {
                    self.unsupported(
                        body,
                        Diagnostic::error(
                            ErrorCode::Unsupported,
                            "a comprehension whose length is not a constant is not supported by the compiler yet",
                        )
                        .with_primary(expr.span, "its bounds are not known when compiling")
                        .with_help("give the bounds as literals, integer constants (`let n = 5;`), or arguments that every call gives as constants; or compute the values in a `for` loop"),
                    );
                }
                body.push_scope();
                self.bind_pattern(body, var, Checked::of(Type::Int), lo.span);
                let element_type = self.check_expr(body, element).ty;
                body.pop_scope();
                self.expect_stackable(&element_type, element.span);
                Checked::of(collection_of(element_type, len))
            }
            ExprKind::Record(fields) => {
                let mut types: Vec<Field> = Vec::with_capacity(fields.len());
                for field in fields {
                    let ty = self.check_expr(body, &field.value).ty;
                    if types.iter().any(|f| f.name == field.name.name) {
                        self.report(
                            Diagnostic::error(
                                ErrorCode::DuplicateParameter,
                                format!("field `{}` is given twice", field.name.name),
                            )
                            .with_primary(field.name.span, "repeated field"),
                        );
                        continue;
                    }
                    types.push(Field::new(field.name.name.clone(), ty));
                }
                Checked::of(Type::Record(types))
            }
            ExprKind::Tuple(parts) => {
                let types = parts.iter().map(|part| self.check_expr(body, part).ty).collect();
                Checked::of(Type::Tuple(types))
            }
            ExprKind::Block(block) => self.check_block(body, block),
            ExprKind::If { cond, then, otherwise } => {
                let condition = self.check_expr(body, cond).ty;
                self.expect_fits(&condition, &Type::Bool, cond.span, None);
                let (then_value, otherwise_value) = self.check_branches(body, then, otherwise.as_deref());
                let then_span = then.tail.as_ref().map_or(then.span, |tail| tail.span);
                match (otherwise_value, otherwise) {
                    (Some(other), Some(other_expr)) => match then_value.ty.join(&other.ty) {
                        Some(joined) => Checked::of(joined),
                        None => {
                            self.report(
                                Diagnostic::error(ErrorCode::TypeMismatch, "`if` and `else` have different types")
                                    .with_primary(other_expr.span, format!("this is {}", other.ty))
                                    .with_secondary(then_span, format!("this is {}", then_value.ty)),
                            );
                            Checked::unknown()
                        }
                    },
                    _ => {
                        if !then_value.ty.fits(&Type::unit()) {
                            self.report(
                                Diagnostic::error(ErrorCode::TypeMismatch, "`if` without `else` has a value")
                                    .with_primary(then_span, format!("this is {}", then_value.ty))
                                    .with_help("add an `else` branch with a value of the same type"),
                            );
                        }
                        Checked::of(Type::unit())
                    }
                }
            }
            ExprKind::Expect(block) => {
                body.expect_depth += 1;
                let value = self.check_block(body, block);
                body.expect_depth -= 1;
                let value_span = block.tail.as_ref().map_or(block.span, |tail| tail.span);
                // A misplaced `return` as the last statement has been reported already.
                let ends_in_return = block.tail.is_none()
                    && matches!(
                        block.stmts.last().map(|stmt| &stmt.kind),
                        Some(crate::syntax::ast::StmtKind::Return(_))
                    );
                let estimated = match value.ty {
                    Type::Vec(n) => Type::Vec(n),
                    Type::Unknown => Type::Unknown,
                    _ => Type::Real,
                };
                if !value.ty.fits(&Type::Real) && !matches!(value.ty, Type::Vec(_)) && !ends_in_return {
                    self.report(
                        Diagnostic::error(
                            ErrorCode::TypeMismatch,
                            format!("an expectation's value must be real or a vector, not {}", value.ty),
                        )
                        .with_primary(value_span, format!("this is {}", value.ty))
                        .with_help(
                            "`E { … }` estimates the expected value of a program whose value is a real or a `vec[n]`",
                        ),
                    );
                }
                Checked::of(Type::Est(Box::new(estimated)))
            }
        }
    }

    fn check_name(&mut self, body: &mut Body, name: &str, span: Span) -> Checked {
        if let Some(local) = body.lookup(name) {
            return Checked { ty: local.ty.clone(), int: local.constant };
        }
        if self.global_in_progress(name) {
            self.report(
                Diagnostic::error(ErrorCode::Recursion, format!("`{name}` is defined in terms of itself"))
                    .with_primary(span, "used in its own definition"),
            );
            return Checked::unknown();
        }
        if let Some((ty, constant)) = self.global(name) {
            return Checked { ty, int: constant };
        }
        if CONSTANTS.contains(&name) {
            return Checked::of(Type::Real);
        }
        if let Some((_, item)) = self.lookup_definition(name) {
            let kind = if matches!(item.kind, crate::syntax::ast::ItemKind::Gen(_)) {
                "generative function"
            } else {
                "function"
            };
            self.report(
                Diagnostic::error(ErrorCode::UnknownName, format!("`{name}` is a {kind}, not a value"))
                    .with_primary(span, "functions are not values")
                    .with_secondary(item.span, "defined here")
                    .with_help(format!("call it: `{name}(…)`")),
            );
            return Checked::unknown();
        }
        let locals = body.local_names();
        let suggestion = self.suggest(name, &locals, CONSTANTS);
        let mut diagnostic = Diagnostic::error(ErrorCode::UnknownName, format!("cannot find `{name}` in this scope"))
            .with_primary(span, "not found");
        if let Some(close) = suggestion {
            diagnostic = diagnostic.with_help(format!("a name with a similar spelling exists: `{close}`"));
        }
        self.report(diagnostic);
        Checked::unknown()
    }

    fn check_unary(&mut self, body: &mut Body, op: UnaryOp, operand: &'a Expr, span: Span) -> Checked {
        let value = self.check_expr(body, operand);
        match (op, &value.ty) {
            (UnaryOp::Neg, Type::Int) => Checked { ty: Type::Int, int: value.int.and_then(i64::checked_neg) },
            (UnaryOp::Neg, Type::Real | Type::Vec(_) | Type::Mat(..) | Type::Est(_) | Type::Unknown) => {
                Checked::of(value.ty)
            }
            (UnaryOp::Not, Type::Bool | Type::Unknown) => Checked::of(Type::Bool),
            (_, other) => {
                let symbol = if op == UnaryOp::Neg { "-" } else { "!" };
                self.report(
                    Diagnostic::error(ErrorCode::InvalidOperands, format!("cannot apply unary `{symbol}` to {other}"))
                        .with_primary(span, format!("`{symbol}` is not defined for {other}")),
                );
                Checked::unknown()
            }
        }
    }

    fn check_binary(&mut self, body: &mut Body, op: BinaryOp, lhs: &'a Expr, rhs: &'a Expr, span: Span) -> Checked {
        let left = self.check_expr(body, lhs);
        let right = self.check_expr(body, rhs);
        let result = match op {
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Pow => {
                arithmetic(op, &left, &right)
            }
            BinaryOp::MatMul => matrix_product(&left.ty, &right.ty).map(Checked::of),
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                (left.ty.is_scalar() && right.ty.is_scalar()).then(|| Checked::of(Type::Bool)).ok_or(Mismatch::Operands)
            }
            BinaryOp::Eq | BinaryOp::Ne => {
                let comparable = (left.ty.is_scalar() && right.ty.is_scalar())
                    || matches!((&left.ty, &right.ty), (Type::Bool | Type::Unknown, Type::Bool | Type::Unknown));
                comparable.then(|| Checked::of(Type::Bool)).ok_or(Mismatch::Operands)
            }
            BinaryOp::And | BinaryOp::Or => {
                let boolean = |ty: &Type| matches!(ty, Type::Bool | Type::Unknown);
                (boolean(&left.ty) && boolean(&right.ty)).then(|| Checked::of(Type::Bool)).ok_or(Mismatch::Operands)
            }
            BinaryOp::Merge => return self.check_merge(left.ty, right.ty, lhs.span, rhs.span),
        };
        match result {
            Ok(checked) => checked,
            Err(mismatch) => {
                self.report_operands(op, mismatch, (&left.ty, lhs.span), (&right.ty, rhs.span), span);
                Checked::unknown()
            }
        }
    }

    fn report_operands(
        &mut self,
        op: BinaryOp,
        mismatch: Mismatch,
        left: (&Type, Span),
        right: (&Type, Span),
        span: Span,
    ) {
        let symbol = op.symbol();
        let diagnostic = match mismatch {
            Mismatch::Shapes => Diagnostic::error(
                ErrorCode::ShapeMismatch,
                format!("mismatched shapes for `{symbol}`: {} and {}", left.0, right.0),
            )
            .with_primary(left.1, format!("this is {}", left.0))
            .with_secondary(right.1, format!("this is {}", right.0))
            .with_help(match op {
                BinaryOp::MatMul => "`a @ b` needs the columns of `a` to match the rows of `b`",
                _ => "elementwise operations need equal shapes (or a scalar on one side)",
            }),
            Mismatch::Operands => Diagnostic::error(
                ErrorCode::InvalidOperands,
                format!("`{symbol}` is not defined for {} and {}", left.0, right.0),
            )
            .with_primary(span, format!("{} {symbol} {}", left.0, right.0))
            .with_secondary(left.1, format!("this is {}", left.0))
            .with_secondary(right.1, format!("this is {}", right.0)),
        };
        self.report(diagnostic);
    }

    fn check_merge(&mut self, left: Type, right: Type, left_span: Span, right_span: Span) -> Checked {
        match (left, right) {
            (Type::Record(left_fields), Type::Record(right_fields)) => {
                let shared: Vec<String> = left_fields
                    .iter()
                    .filter(|f| right_fields.iter().any(|g| g.name == f.name))
                    .map(|f| f.name.clone())
                    .collect();
                if !shared.is_empty() {
                    let names = shared.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
                    self.report(
                        Diagnostic::error(ErrorCode::MergeOverlap, format!("both sides of `++` have {names}"))
                            .with_primary(right_span, format!("this also has {names}"))
                            .with_secondary(left_span, format!("this has {names}"))
                            .with_help(
                                "`a ++ b` joins records with disjoint fields; remove the duplicates from one side",
                            ),
                    );
                }
                let mut fields = left_fields;
                fields.extend(right_fields.into_iter().filter(|g| !shared.contains(&g.name)));
                Checked::of(Type::Record(fields))
            }
            (Type::Unknown, _) | (_, Type::Unknown) => Checked::unknown(),
            (left, right) => {
                let (bad, span) = if matches!(left, Type::Record(_)) { (right, right_span) } else { (left, left_span) };
                self.report(
                    Diagnostic::error(ErrorCode::InvalidOperands, format!("`++` joins records (traces), not {bad}"))
                        .with_primary(span, format!("this is {bad}")),
                );
                Checked::unknown()
            }
        }
    }

    fn check_index(&mut self, body: &mut Body, base: &'a Expr, indices: &'a [Expr]) -> Checked {
        let base_type = self.check_expr(body, base).ty;
        if indices.iter().any(|index| matches!(index.kind, ExprKind::Range { .. })) {
            return self.check_slice(body, base, &base_type, indices);
        }
        let mut values = Vec::with_capacity(indices.len());
        for index in indices {
            values.push(self.expect_int(body, index, "an index"));
        }
        let Some(dims) = self.index_dims(base, &base_type, indices) else { return Checked::unknown() };
        for ((index, value), dim) in indices.iter().zip(&values).zip(&dims) {
            if let (Some(value), Dim::Known(len)) = (value, dim) {
                if *value < 0 || *value as u64 >= *len {
                    self.report(
                        Diagnostic::error(
                            ErrorCode::IndexOutOfBounds,
                            format!("index {value} is out of bounds for length {len}"),
                        )
                        .with_primary(index.span, format!("valid indices are 0 to {}", len.saturating_sub(1)))
                        .with_secondary(base.span, format!("this is {base_type}")),
                    );
                }
            }
        }
        Checked::of(match (&base_type, indices.len()) {
            (Type::Vec(_), _) => Type::Real,
            (Type::Array(element, _), _) => (**element).clone(),
            (Type::Mat(_, n), 1) => Type::Vec(*n),
            _ => Type::Real,
        })
    }

    /// The dimensions `indices` select from, or `None` (reported unless the type is unknown) if
    /// `base` cannot be indexed or they are too many.
    fn index_dims(&mut self, base: &'a Expr, base_type: &Type, indices: &'a [Expr]) -> Option<Vec<Dim>> {
        let dims: Vec<Dim> = match base_type {
            Type::Vec(n) | Type::Array(_, n) => vec![*n],
            Type::Mat(m, n) => vec![*m, *n],
            Type::Unknown => return None,
            other => {
                self.report(
                    Diagnostic::error(ErrorCode::InvalidIndex, format!("cannot index into {other}"))
                        .with_primary(base.span, format!("this is {other}"))
                        .with_help("vectors, matrices and indexed addresses can be indexed"),
                );
                return None;
            }
        };
        if indices.len() > dims.len() {
            self.report(
                Diagnostic::error(
                    ErrorCode::InvalidIndex,
                    format!(
                        "{base_type} takes at most {} ind{}",
                        dims.len(),
                        if dims.len() == 1 { "ex" } else { "ices" }
                    ),
                )
                .with_primary(indices[dims.len()].span, "one index too many"),
            );
            return None;
        }
        Some(dims)
    }

    /// `v[a..b]`, `m[a..b]` (rows), `m[.., j]` (a column), `m[i, a..b]` (part of a row),
    /// `m[a..b, c..d]`: the bounds are `int` constants (an omitted one is the start or the end).
    fn check_slice(&mut self, body: &mut Body, base: &'a Expr, base_type: &Type, indices: &'a [Expr]) -> Checked {
        let Some(dims) = self.index_dims(base, base_type, indices) else { return Checked::unknown() };
        // Each index: a slice's length, or `None` for a single position.
        let mut lengths = Vec::with_capacity(indices.len());
        for (index, dim) in indices.iter().zip(&dims) {
            let ExprKind::Range { lo, hi } = &index.kind else {
                self.expect_int(body, index, "an index");
                lengths.push(None);
                continue;
            };
            // `Err` for a bound that is not a constant (reported); `Ok(None)` for an omitted end
            // of a dimension that is not known.
            let mut bound = |checker: &mut Self, bound: &'a Option<Box<Expr>>, default: Option<i64>| match bound {
                Some(bound) => match checker.expect_int(body, bound, "a slice's bound") {
                    Some(value) => Ok(Some(value)),
                    None => {
                        checker.report(
                            Diagnostic::error(ErrorCode::NotConstant, "a slice's bounds must be constants")
                                .with_primary(bound.span, "not known before the program runs")
                                .with_help("a slice's length is part of its type; index element by element instead"),
                        );
                        Err(())
                    }
                },
                None => Ok(default),
            };
            let length = match dim {
                Dim::Known(length) => i64::try_from(*length).ok(),
                Dim::Unknown => None,
            };
            let (Ok(start), Ok(end)) = (bound(self, lo, Some(0)), bound(self, hi, length)) else {
                return Checked::unknown();
            };
            match (start, end, length) {
                (Some(start), Some(end), Some(length)) if 0 <= start && start <= end && end <= length => {
                    lengths.push(Some(Dim::Known((end - start) as u64)))
                }
                (Some(start), Some(end), Some(length)) => {
                    self.report(
                        Diagnostic::error(
                            ErrorCode::IndexOutOfBounds,
                            format!("slice {start}..{end} is out of bounds for length {length}"),
                        )
                        .with_primary(
                            index.span,
                            format!("a slice must lie within 0..{length}, its start before its end"),
                        )
                        .with_secondary(base.span, format!("this is {base_type}")),
                    );
                    return Checked::unknown();
                }
                _ => lengths.push(Some(Dim::Unknown)),
            }
        }
        Checked::of(match (base_type, lengths.as_slice()) {
            (Type::Vec(_), [Some(length)]) => Type::Vec(*length),
            (Type::Array(element, _), [Some(length)]) => Type::Array(element.clone(), *length),
            (Type::Mat(_, n), [Some(rows)]) => Type::Mat(*rows, *n),
            (Type::Mat(..), [Some(rows), None]) => Type::Vec(*rows),
            (Type::Mat(..), [None, Some(cols)]) => Type::Vec(*cols),
            (Type::Mat(..), [Some(rows), Some(cols)]) => Type::Mat(*rows, *cols),
            _ => Type::Unknown,
        })
    }

    fn check_field(&mut self, body: &mut Body, base: &'a Expr, field: &Ident) -> Checked {
        let base_type = self.check_expr(body, base).ty;
        match &base_type {
            Type::Record(fields) => match fields.iter().find(|f| f.name == field.name) {
                Some(found) => Checked::of(found.ty.clone()),
                None => {
                    let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
                    let mut diagnostic = Diagnostic::error(
                        ErrorCode::UnknownField,
                        format!("{base_type} has no field `{}`", field.name),
                    )
                    .with_primary(field.span, "unknown field");
                    diagnostic = match crate::diagnostics::closest_name(&field.name, names.iter().copied()) {
                        Some(close) => diagnostic.with_help(format!("did you mean `{close}`?")),
                        None => diagnostic.with_note(format!("the fields are {}", join_names(&names))),
                    };
                    self.report(diagnostic);
                    Checked::unknown()
                }
            },
            Type::Tuple(parts) => match field.name.parse::<usize>().ok().and_then(|i| parts.get(i)) {
                Some(part) => Checked::of(part.clone()),
                None => {
                    self.report(
                        Diagnostic::error(
                            ErrorCode::UnknownField,
                            format!("{base_type} has no field `{}`", field.name),
                        )
                        .with_primary(
                            field.span,
                            format!("a tuple of {} has fields 0 to {}", parts.len(), parts.len().saturating_sub(1)),
                        ),
                    );
                    Checked::unknown()
                }
            },
            Type::Unknown => Checked::unknown(),
            other => {
                self.report(
                    Diagnostic::error(ErrorCode::UnknownField, format!("{other} has no fields"))
                        .with_primary(field.span, format!("cannot take `.{}` of {other}", field.name))
                        .with_secondary(base.span, format!("this is {other}")),
                );
                Checked::unknown()
            }
        }
    }

    fn check_vector(&mut self, body: &mut Body, parts: &'a [Expr]) -> Checked {
        let mut element: Option<(Type, Span)> = None;
        for part in parts {
            let ty = self.check_expr(body, part).ty;
            match &element {
                None => element = Some((ty, part.span)),
                Some((first, first_span)) => match first.join(&ty) {
                    Some(joined) => element = Some((joined, *first_span)),
                    None => {
                        let code = if matches!((first, &ty), (Type::Vec(_), Type::Vec(_))) {
                            ErrorCode::ShapeMismatch
                        } else {
                            ErrorCode::TypeMismatch
                        };
                        self.report(
                            Diagnostic::error(code, format!("vector elements differ: {first} and {ty}"))
                                .with_primary(part.span, format!("this is {ty}"))
                                .with_secondary(*first_span, format!("this is {first}"))
                                .with_help("all elements of `[…]` must have the same type and shape"),
                        );
                    }
                },
            }
        }
        let len = Dim::Known(parts.len() as u64);
        if let Some((ty, span)) = &element {
            self.expect_stackable(ty, *span);
        }
        Checked::of(collection_of(element.map_or(Type::Real, |(ty, _)| ty), len))
    }

    /// Checks that a value may be used where `expected` is wanted; `declared` is the span of
    /// the annotation that asks for it, if any.
    pub(super) fn expect_fits(&mut self, actual: &Type, expected: &Type, span: Span, declared: Option<Span>) -> bool {
        if actual.fits(expected) {
            return true;
        }
        let code = match (actual, expected) {
            (Type::Vec(_), Type::Vec(_)) | (Type::Mat(..), Type::Mat(..)) => ErrorCode::ShapeMismatch,
            _ => ErrorCode::TypeMismatch,
        };
        let mut diagnostic = Diagnostic::error(code, format!("expected {expected}, found {actual}"))
            .with_primary(span, format!("this is {actual}"));
        if let Some(declared) = declared {
            diagnostic = diagnostic.with_secondary(declared, format!("{expected} expected because of this"));
        }
        if matches!(actual, Type::Est(_)) {
            diagnostic =
                diagnostic.with_help("an estimate is not a number: use `estimate(e, samples: n)` to compute one");
        }
        self.report(diagnostic);
        false
    }

    /// Checks an integer operand and returns its value when known at compile time.
    pub(super) fn expect_int(&mut self, body: &mut Body, expr: &'a Expr, what: &str) -> Option<i64> {
        let value = self.check_expr(body, expr);
        if !matches!(value.ty, Type::Int | Type::Unknown) {
            self.report(
                Diagnostic::error(ErrorCode::TypeMismatch, format!("{what} must be an int, found {}", value.ty))
                    .with_primary(expr.span, format!("this is {}", value.ty)),
            );
        }
        value.int
    }
}

pub(super) fn join_names(names: &[&str]) -> String {
    names.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ")
}

/// The type of `n` values of one type: `vec[n]` of reals, `mat[n, m]` of `vec[m]`s, an
/// array otherwise.
pub(super) fn collection_of(element: Type, len: Dim) -> Type {
    match element {
        Type::Real | Type::Int => Type::Vec(len),
        Type::Vec(columns) => Type::Mat(len, columns),
        // Elements of a generic argument's type could be reals or vectors.
        Type::Unknown => Type::Unknown,
        other => Type::Array(Box::new(other), len),
    }
}

/// Why an operator's operands were rejected.
pub(super) enum Mismatch {
    /// Both are numeric but their shapes disagree.
    Shapes,
    /// The operator is not defined for these kinds of values.
    Operands,
}

/// `+ - * / ^` with scalar broadcasting, elementwise on equal shapes, and the estimate
/// combinators (`est ± est`, `est ± real`, `real * est`, `est * est`, `est / real`).
pub(super) fn arithmetic(op: BinaryOp, left: &Checked, right: &Checked) -> Result<Checked, Mismatch> {
    use Type::*;
    let folded = match (left.int, right.int) {
        (Some(a), Some(b)) => match op {
            BinaryOp::Add => a.checked_add(b),
            BinaryOp::Sub => a.checked_sub(b),
            BinaryOp::Mul => a.checked_mul(b),
            BinaryOp::Pow => u32::try_from(b).ok().and_then(|b| a.checked_pow(b)),
            _ => None,
        },
        _ => None,
    };
    let ty = match (&left.ty, &right.ty) {
        (Int, Int) if op == BinaryOp::Div => Real,
        (Int, Int) => Int,
        (Real | Int, Real | Int) => Real,
        (Unknown, other) | (other, Unknown) => match other {
            Int | Real | Unknown => Unknown,
            other => other.clone(),
        },
        (Real | Int, Vec(n)) | (Vec(n), Real | Int) => Vec(*n),
        (Real | Int, Mat(m, n)) | (Mat(m, n), Real | Int) => Mat(*m, *n),
        (Vec(a), Vec(b)) => {
            if !a.agrees(*b) {
                return Err(Mismatch::Shapes);
            }
            Vec(a.meet(*b))
        }
        (Mat(a, b), Mat(c, d)) => {
            if !a.agrees(*c) || !b.agrees(*d) {
                return Err(Mismatch::Shapes);
            }
            Mat(a.meet(*c), b.meet(*d))
        }
        (Vec(_), Mat(..)) | (Mat(..), Vec(_)) => return Err(Mismatch::Shapes),
        // Estimates of vectors combine element by element, as their values would.
        (Est(a), Est(b)) if matches!(op, BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul) => estimate_of(op, a, b)?,
        (Est(a), b @ (Real | Int)) if matches!(op, BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div) => {
            estimate_of(op, a, b)?
        }
        (a @ (Real | Int), Est(b)) if matches!(op, BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul) => {
            estimate_of(op, a, b)?
        }
        _ => return Err(Mismatch::Operands),
    };
    Ok(Checked { ty, int: folded })
}

/// The estimate of `a op b` from estimates (or reals) of `a` and `b`.
fn estimate_of(op: BinaryOp, a: &Type, b: &Type) -> Result<Type, Mismatch> {
    let value = arithmetic(op, &Checked::of(a.clone()), &Checked::of(b.clone()))?.ty;
    Ok(Type::Est(Box::new(if value == Type::Int { Type::Real } else { value })))
}

/// `a @ b`: matrix–vector, vector–matrix, matrix–matrix products and the inner product.
pub(super) fn matrix_product(left: &Type, right: &Type) -> Result<Type, Mismatch> {
    use Type::*;
    let check =
        |inner_left: Dim, inner_right: Dim| if inner_left.agrees(inner_right) { Ok(()) } else { Err(Mismatch::Shapes) };
    match (left, right) {
        (Mat(m, n), Vec(k)) => check(*n, *k).map(|_| Vec(*m)),
        (Vec(k), Mat(m, n)) => check(*k, *m).map(|_| Vec(*n)),
        (Mat(m, n), Mat(k, p)) => check(*n, *k).map(|_| Mat(*m, *p)),
        (Vec(a), Vec(b)) => check(*a, *b).map(|_| Real),
        (Unknown, Vec(_) | Mat(..) | Unknown) | (Vec(_) | Mat(..), Unknown) => Ok(Unknown),
        _ => Err(Mismatch::Operands),
    }
}
