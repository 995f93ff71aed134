//! Checking bodies: scopes, statements, random choices and the trace types they build.
//!
//! In a `gen` body every choice is traced: its address becomes a field of the trace type
//! (nested for `gen` calls, vector-valued for addresses indexed by a loop variable, optional
//! when sampled in one branch of an `if` only). Inside `E { … }` choices are sampled without
//! tracing. Anywhere else a choice is an error.

use std::collections::HashMap;

use super::expr::Checked;
use super::Checker;
use crate::diagnostics::{Diagnostic, ErrorCode};
use crate::distributions::{self, Estimator};
use crate::syntax::ast::{Address, Block, ExprId, ExprKind, FnDef, FnParam, Pattern, Stmt, StmtKind, Via};
use crate::syntax::span::Span;
use crate::types::ty::{Dim, Field, Type};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BodyKind {
    Gen,
    Fn,
    /// Values of globals and commands.
    TopLevel,
}

#[derive(Clone, Debug)]
pub(super) struct Local {
    pub ty: Type,
    pub constant: Option<i64>,
}

#[derive(Clone, Debug)]
pub(super) struct LoopVar {
    pub name: String,
    pub len: Dim,
}

/// The addresses a `gen` body has sampled so far.
#[derive(Clone, Debug, Default)]
pub(super) struct TraceBuilder {
    pub fields: Vec<Field>,
    spans: HashMap<String, Span>,
}

/// The state of checking one body.
pub(super) struct Body {
    pub kind: BodyKind,
    scopes: Vec<Vec<(String, Local)>>,
    /// How many `E { … }` blocks enclose the current point.
    pub expect_depth: usize,
    pub loops: Vec<LoopVar>,
    pub trace: TraceBuilder,
    pub returns: Vec<(Type, Span)>,
    pub types: HashMap<ExprId, Type>,
    /// The instance each call of a `gen`/`fn` definition resolved to.
    pub calls: HashMap<ExprId, usize>,
}

impl Body {
    pub fn new(kind: BodyKind) -> Self {
        Body {
            kind,
            scopes: vec![Vec::new()],
            expect_depth: 0,
            loops: Vec::new(),
            trace: TraceBuilder::default(),
            returns: Vec::new(),
            types: HashMap::new(),
            calls: HashMap::new(),
        }
    }

    pub fn bind(&mut self, name: &str, ty: Type, constant: Option<i64>) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.push((name.to_string(), Local { ty, constant }));
        }
    }

    pub fn bind_parameter(&mut self, checker: &mut Checker<'_>, param: &FnParam, ty: Type, constant: Option<i64>) {
        if self.scopes.iter().flatten().any(|(name, _)| *name == param.name.name) {
            checker.report(
                Diagnostic::error(
                    ErrorCode::DuplicateParameter,
                    format!("parameter `{}` is named twice", param.name.name),
                )
                .with_primary(param.name.span, "second parameter of this name"),
            );
        }
        self.bind(&param.name.name, ty, constant);
    }

    pub fn lookup(&self, name: &str) -> Option<&Local> {
        self.scopes.iter().rev().flat_map(|scope| scope.iter().rev()).find(|(n, _)| n == name).map(|(_, local)| local)
    }

    pub fn local_names(&self) -> Vec<&str> {
        self.scopes.iter().flatten().map(|(name, _)| name.as_str()).collect()
    }

    pub fn push_scope(&mut self) {
        self.scopes.push(Vec::new());
    }

    pub fn pop_scope(&mut self) {
        self.scopes.pop();
    }

    pub fn in_expectation(&self) -> bool {
        self.expect_depth > 0
    }

    /// Whether `~` here records an address: in a `gen` body, outside any `E { … }`.
    pub(super) fn traces_choices(&self) -> bool {
        self.kind == BodyKind::Gen && !self.in_expectation()
    }
}

impl<'a> Checker<'a> {
    /// Checks a `gen`/`fn` body and returns the function's result type.
    pub(super) fn check_function_body(&mut self, body: &mut Body, def: &'a FnDef) -> Type {
        let tail = self.check_block(body, &def.body);
        let mut ret = tail.ty;
        let tail_span = def.body.tail.as_ref().map_or(def.body.span, |tail| tail.span);
        if def.body.tail.is_none() && !body.returns.is_empty() {
            ret = Type::Unknown;
        }
        for (ty, span) in std::mem::take(&mut body.returns) {
            match ret.join(&ty) {
                Some(joined) => ret = joined,
                None => self.report(
                    Diagnostic::error(
                        ErrorCode::TypeMismatch,
                        format!("`{}` returns values of different types", def.name.name),
                    )
                    .with_primary(span, format!("this returns {ty}"))
                    .with_secondary(tail_span, format!("this returns {ret}")),
                ),
            }
        }
        if let Some(annotation) = &def.ret {
            let declared = self.resolve_annotation(annotation);
            self.expect_fits(&ret, &declared, tail_span, Some(annotation.span));
            return declared;
        }
        if ret == Type::unit() && !body.returns.is_empty() {
            return Type::Unknown;
        }
        ret
    }

    /// Checks a block in a new scope; its value is its tail expression's (or `()`).
    pub(super) fn check_block(&mut self, body: &mut Body, block: &'a Block) -> Checked {
        body.push_scope();
        for stmt in &block.stmts {
            self.check_stmt(body, stmt);
        }
        let value = match &block.tail {
            Some(tail) => self.check_expr(body, tail),
            None => Checked::of(Type::unit()),
        };
        body.pop_scope();
        value
    }

    fn check_stmt(&mut self, body: &mut Body, stmt: &'a Stmt) {
        match &stmt.kind {
            StmtKind::Let { pattern, ty, value } => {
                let checked = self.check_expr(body, value);
                let bound = match ty {
                    Some(annotation) => {
                        let declared = self.resolve_annotation(annotation);
                        self.expect_fits(&checked.ty, &declared, value.span, Some(annotation.span));
                        Checked { ty: declared, int: checked.int }
                    }
                    None => checked,
                };
                self.bind_pattern(body, pattern, bound, value.span);
            }
            StmtKind::Choice { address, dist, via } => self.check_choice(body, address, dist, via.as_ref(), stmt.span),
            StmtKind::For { var, lo, hi, body: loop_body } => {
                let lo_value = self.expect_int(body, lo, "a loop bound");
                let hi_value = self.expect_int(body, hi, "a loop bound");
                let len = match (lo_value, hi_value) {
                    (Some(lo), Some(hi)) => Dim::Known(hi.saturating_sub(lo).max(0) as u64),
                    _ => Dim::Unknown,
                };
                body.push_scope();
                let name = match var {
                    Pattern::Name(ident) => ident.name.clone(),
                    _ => "_".to_string(),
                };
                if let Pattern::Tuple(_, span) = var {
                    self.report(
                        Diagnostic::error(ErrorCode::PatternMismatch, "a loop variable is an integer, not a tuple")
                            .with_primary(*span, "expected a name or `_`"),
                    );
                }
                body.bind(&name, Type::Int, None);
                body.loops.push(LoopVar { name, len });
                let value = self.check_block(body, loop_body);
                body.loops.pop();
                body.pop_scope();
                if let Some(tail) = &loop_body.tail {
                    self.expect_fits(&value.ty, &Type::unit(), tail.span, None);
                }
            }
            StmtKind::Return(value) => {
                let checked = self.check_expr(body, value);
                if body.kind == BodyKind::TopLevel || body.in_expectation() {
                    let place = if body.in_expectation() { "an `E { … }` block" } else { "the top level" };
                    self.report(
                        Diagnostic::error(ErrorCode::MisplacedReturn, format!("`return` in {place}"))
                            .with_primary(stmt.span, "nothing to return from here")
                            .with_help("an `E { … }` block's value is its last expression"),
                    );
                } else {
                    body.returns.push((checked.ty, value.span));
                }
            }
            StmtKind::Expr(expr) => {
                self.check_expr(body, expr);
            }
        }
    }

    pub(super) fn bind_pattern(&mut self, body: &mut Body, pattern: &Pattern, value: Checked, value_span: Span) {
        match pattern {
            Pattern::Name(ident) => body.bind(&ident.name, value.ty, value.int),
            Pattern::Wildcard(_) => {}
            Pattern::Tuple(parts, span) => match value.ty {
                Type::Tuple(types) if types.len() == parts.len() => {
                    for (part, ty) in parts.iter().zip(types) {
                        self.bind_pattern(body, part, Checked::of(ty), value_span);
                    }
                }
                Type::Unknown => {
                    for part in parts {
                        self.bind_pattern(body, part, Checked::of(Type::Unknown), value_span);
                    }
                }
                other => {
                    self.report(
                        Diagnostic::error(
                            ErrorCode::PatternMismatch,
                            format!("a pattern of {} names cannot take apart {other}", parts.len()),
                        )
                        .with_primary(*span, format!("expects a tuple of {} values", parts.len()))
                        .with_secondary(value_span, format!("this is {other}")),
                    );
                    for part in parts {
                        self.bind_pattern(body, part, Checked::of(Type::Unknown), value_span);
                    }
                }
            },
        }
    }

    fn check_choice(
        &mut self,
        body: &mut Body,
        address: &'a Address,
        dist: &'a crate::syntax::ast::Expr,
        via: Option<&'a Via>,
        span: Span,
    ) {
        let sampled = self.check_expr(body, dist);
        let value = match &sampled.ty {
            Type::Dist { name, value } => {
                if let Some(via) = via {
                    self.check_via(body, via, name);
                }
                (**value).clone()
            }
            Type::Family(family) => {
                if let Some(via) = via {
                    self.report(
                        Diagnostic::error(
                            ErrorCode::InvalidEstimator,
                            "`via` applies to distributions, not generative functions",
                        )
                        .with_primary(via.span, "not allowed here")
                        .with_secondary(dist.span, format!("this samples a trace of `{}`", family.name))
                        .with_help("put `via` on the choices inside the generative function"),
                    );
                }
                family.ret.clone()
            }
            Type::Unknown => Type::Unknown,
            other => {
                self.report(
                    Diagnostic::error(ErrorCode::NotADistribution, format!("cannot sample from {other}"))
                        .with_primary(dist.span, format!("this is {other}, not a distribution"))
                        .with_help(
                            "sample from a distribution such as `normal(0.0, 1.0)` or a `gen` function application",
                        ),
                );
                Type::Unknown
            }
        };
        let traced = match &sampled.ty {
            Type::Family(family) => Type::Record(family.trace.clone()),
            _ => value.clone(),
        };

        if body.traces_choices() {
            self.record_address(body, address, traced, value, span);
            return;
        }
        if !body.in_expectation() {
            let place = if body.kind == BodyKind::TopLevel { "at the top level" } else { "in a `fn` body" };
            self.report(
                Diagnostic::error(ErrorCode::MisplacedChoice, format!("random choice {place}"))
                    .with_primary(span, "`~` needs a `gen` body or an `E { … }` block")
                    .with_help("wrap the random part in `E { … }` to make an estimate, or define a `gen` function"),
            );
        }
        if let Some(index) = &address.index {
            self.report(
                Diagnostic::error(ErrorCode::InvalidAddressIndex, "an indexed address outside a `gen` body")
                    .with_primary(index.span, "choices in `E { … }` are not traced, so they have no addresses to index")
                    .with_help(format!("bind the value to a plain name: `{} ~ …`", address.name.name)),
            );
        }
        body.bind(&address.name.name, value, None);
    }

    /// Adds a traced choice's address to the trace type and binds its name.
    fn record_address(&mut self, body: &mut Body, address: &'a Address, traced: Type, value: Type, span: Span) {
        let name = &address.name.name;
        let (field_type, bound) = match (&address.index, body.loops.last().cloned()) {
            (None, None) => (traced, value),
            (None, Some(innermost)) => {
                self.report(
                    Diagnostic::error(
                        ErrorCode::InvalidAddressIndex,
                        format!("address `{name}` is sampled on every iteration"),
                    )
                    .with_primary(address.name.span, "the same address in each iteration")
                    .with_help(format!("index it by the loop variable: `{name}[{}] ~ …`", innermost.name)),
                );
                (Type::Unknown, value)
            }
            (Some(index), loop_var) => {
                let index_type = self.check_expr(body, index).ty;
                let is_loop_var =
                    matches!(&index.kind, ExprKind::Name(n) if loop_var.as_ref().is_some_and(|l| *n == l.name));
                if !is_loop_var || body.loops.len() > 1 {
                    let help = match &loop_var {
                        Some(l) if body.loops.len() > 1 => format!(
                            "choices in nested loops are not supported yet; sample a vector in the inner loop with `{name}[{}] ~ …` in a separate `gen` function",
                            l.name
                        ),
                        Some(l) => format!("index the address by the loop variable: `{name}[{}] ~ …`", l.name),
                        None => "indexed addresses belong inside a `for` loop, indexed by its variable".to_string(),
                    };
                    self.report(
                        Diagnostic::error(
                            ErrorCode::InvalidAddressIndex,
                            format!("address `{name}` must be indexed by its loop variable"),
                        )
                        .with_primary(index.span, format!("this index is {index_type}, not the loop variable"))
                        .with_help(help),
                    );
                }
                let len = loop_var.map_or(Dim::Unknown, |l| l.len);
                let vector = match traced {
                    Type::Real => Type::Vec(len),
                    other => Type::Array(Box::new(other), len),
                };
                (vector.clone(), vector)
            }
        };
        if let Some(first) = body.trace.spans.get(name) {
            self.report(
                Diagnostic::error(ErrorCode::DuplicateAddress, format!("address `{name}` is sampled twice"))
                    .with_primary(address.name.span, "sampled again here")
                    .with_secondary(*first, "first sampled here")
                    .with_help("every random choice of a trace needs its own address"),
            );
        } else {
            body.trace.spans.insert(name.clone(), span);
            body.trace.fields.push(Field { name: name.clone(), ty: field_type, optional: false });
        }
        body.bind(name, bound, None);
    }

    /// Checks both branches of an `if` against the same trace so far; an address sampled on
    /// one side only becomes optional.
    pub(super) fn check_branches(
        &mut self,
        body: &mut Body,
        then: &'a Block,
        otherwise: Option<&'a crate::syntax::ast::Expr>,
    ) -> (Checked, Option<Checked>) {
        let before = body.trace.clone();
        let then_value = self.check_block(body, then);
        let after_then = std::mem::replace(&mut body.trace, before.clone());
        let otherwise_value = otherwise.map(|expr| self.check_expr(body, expr));
        let after_otherwise = std::mem::replace(&mut body.trace, before.clone());

        let mut merged = before.clone();
        let new_then = &after_then.fields[before.fields.len()..];
        let new_otherwise = &after_otherwise.fields[before.fields.len()..];
        for field in new_then {
            let both = new_otherwise.iter().find(|other| other.name == field.name);
            let optional = field.optional || both.is_none_or(|other| other.optional);
            let ty = both.and_then(|other| field.ty.join(&other.ty)).unwrap_or_else(|| field.ty.clone());
            merged.fields.push(Field { name: field.name.clone(), ty, optional });
            if let Some(span) = after_then.spans.get(&field.name) {
                merged.spans.insert(field.name.clone(), *span);
            }
        }
        for field in new_otherwise.iter().filter(|f| !new_then.iter().any(|t| t.name == f.name)) {
            merged.fields.push(Field { name: field.name.clone(), ty: field.ty.clone(), optional: true });
            if let Some(span) = after_otherwise.spans.get(&field.name) {
                merged.spans.insert(field.name.clone(), *span);
            }
        }
        body.trace = merged;
        (then_value, otherwise_value)
    }

    fn check_via(&mut self, body: &mut Body, via: &'a Via, dist_name: &str) {
        let Some(estimator) = Estimator::from_name(&via.estimator.name) else {
            let names: Vec<&str> = Estimator::ALL.iter().map(|e| e.name()).collect();
            let mut diagnostic = Diagnostic::error(
                ErrorCode::UnknownEstimator,
                format!("unknown gradient estimator `{}`", via.estimator.name),
            )
            .with_primary(via.estimator.span, "not an estimator");
            diagnostic = match crate::diagnostics::closest_name(&via.estimator.name, names.iter().copied()) {
                Some(close) => diagnostic.with_help(format!("did you mean `{close}`?")),
                None => diagnostic.with_help(format!("the estimators are {}", names.join(", "))),
            };
            self.report(diagnostic);
            return;
        };
        if let Some(distribution) = distributions::lookup(dist_name) {
            if !distribution.supports(estimator) {
                let supported: Vec<String> = distribution.estimators.iter().map(|e| format!("`{e}`")).collect();
                self.report(
                    Diagnostic::error(
                        ErrorCode::InvalidEstimator,
                        format!("`{}` cannot be differentiated `via {estimator}`", distribution.name),
                    )
                    .with_primary(
                        via.estimator.span,
                        format!("`{estimator}` is not available for `{}`", distribution.name),
                    )
                    .with_help(format!(
                        "`{}` supports {}",
                        distribution.name,
                        supported.join(", ")
                    )),
                );
            }
        }
        let Some(args) = &via.args else { return };
        if estimator != Estimator::Reinforce {
            self.report(
                Diagnostic::error(ErrorCode::BadNamedArgument, format!("`{estimator}` takes no arguments"))
                    .with_primary(via.span, "remove the parenthesised arguments"),
            );
            return;
        }
        for arg in args {
            let value = self.check_expr(body, &arg.value);
            match &arg.name {
                Some(name) if name.name == "baseline" => {
                    self.expect_fits(&value.ty, &Type::Real, arg.value.span, None);
                }
                _ => {
                    let span = arg.name.as_ref().map_or(arg.value.span, |name| name.span);
                    self.report(
                        Diagnostic::error(
                            ErrorCode::BadNamedArgument,
                            "`reinforce` takes one named argument, `baseline`",
                        )
                        .with_primary(span, "unexpected argument")
                        .with_help("write `via reinforce(baseline: b)`"),
                    );
                }
            }
        }
    }
}
