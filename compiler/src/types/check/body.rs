//! Checking bodies: scopes, statements, random choices and the trace types they build.
//!
//! In a `gen` body every choice is traced: its address becomes a field of the trace type
//! (nested for `gen` calls, an array with one element per iteration for addresses indexed by a
//! loop variable, optional when some paths through the body — one branch of an `if`, the paths
//! that returned before it — do not sample it). Inside `E { … }` choices are sampled without
//! tracing. Anywhere else a choice is an error.

use std::collections::{HashMap, HashSet};

use super::expr::Checked;
use super::Checker;
use crate::diagnostics::{Diagnostic, ErrorCode};
use crate::distributions::{self, Estimator};
use crate::syntax::ast::{Address, Block, ExprId, ExprKind, FnDef, FnParam, Pattern, Stmt, StmtKind, Via};
use crate::syntax::span::Span;
use crate::types::ty::{Dim, FamilyKind, Field, Type};

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
    /// The bounds are `int`s whose values are not known when compiling (not merely unknown
    /// types, as in a definition checked without a call).
    pub not_constant: bool,
}

/// The addresses a `gen` body samples: the trace type, and what the paths that reach the point
/// being checked have sampled.
///
/// An address is optional unless every path through the body samples it: every path that
/// reaches the end, and every path that stops at a `return`. Sampling an address twice is an
/// error only on one path: `if c { x ~ a; return 0.0; } x ~ b;` samples `x` once either way.
#[derive(Clone, Debug, Default)]
pub(super) struct TraceBuilder {
    /// Every address some path samples, in the order first met; `optional` is set by
    /// [`TraceBuilder::finish`].
    pub fields: Vec<Field>,
    /// Where each address is first sampled.
    spans: HashMap<String, Span>,
    paths: Paths,
    /// The addresses sampled by every path that has returned, once one has.
    returned: Option<HashSet<String>>,
}

/// The addresses sampled by the paths that reach a point of the body.
#[derive(Clone, Debug, Default)]
struct Paths {
    /// Sampled on some path: sampling one again is E0304.
    some: HashSet<String>,
    /// Sampled on every path.
    every: HashSet<String>,
    /// No path reaches the point: it follows a `return`.
    unreachable: bool,
}

impl Paths {
    /// The paths of two branches, joined where they meet again.
    fn join(self, other: Paths) -> Paths {
        match (self.unreachable, other.unreachable) {
            (true, _) => other,
            (_, true) => self,
            _ => Paths {
                some: self.some.union(&other.some).cloned().collect(),
                every: self.every.intersection(&other.every).cloned().collect(),
                unreachable: false,
            },
        }
    }
}

impl TraceBuilder {
    /// The path being checked returns here.
    fn return_here(&mut self) {
        let paths = std::mem::replace(&mut self.paths, Paths { unreachable: true, ..Paths::default() });
        if paths.unreachable {
            return;
        }
        self.returned = Some(match self.returned.take() {
            Some(returned) => returned.intersection(&paths.every).cloned().collect(),
            None => paths.every,
        });
    }

    /// Marks every address that some path through the body does not sample optional.
    pub(super) fn finish(&mut self) {
        let every = match (&self.returned, self.paths.unreachable) {
            (Some(returned), false) => returned.intersection(&self.paths.every).cloned().collect(),
            (Some(returned), true) => returned.clone(),
            (None, _) => self.paths.every.clone(),
        };
        for field in &mut self.fields {
            field.optional = !every.contains(&field.name);
        }
    }
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
    /// Constructs the compiler cannot lower given what this instance knows (E0600), reported
    /// only if a command reaches the instance: see [`Checker::unsupported`].
    pub unsupported: Vec<Diagnostic>,
    /// The value of the command option being checked: an optimizer is read there only.
    pub optimizer_option: Option<ExprId>,
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
            unsupported: Vec::new(),
            optimizer_option: None,
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
    /// Checks a `gen`/`fn` body and returns the function's result type: the common type of
    /// its `return`s and, if its end can be reached, of its final expression (or `()`).
    pub(super) fn check_function_body(&mut self, body: &mut Body, def: &'a FnDef) -> Type {
        let tail = self.check_block(body, &def.body);
        let tail_span = def.body.tail.as_ref().map_or(def.body.span, |tail| tail.span);
        let returns = std::mem::take(&mut body.returns);
        let mut ret = None;
        if !def.body.always_returns() {
            ret = Some((tail.ty, tail_span));
        }
        for (ty, span) in returns {
            let Some((joined, joined_span)) = &ret else {
                ret = Some((ty, span));
                continue;
            };
            match joined.join(&ty) {
                Some(common) => ret = Some((common, *joined_span)),
                None => {
                    let (other, other_span) = match def.body.tail {
                        None if *joined_span == def.body.span => {
                            (format!("reaching the end of the body returns {joined}"), def.body.span)
                        }
                        _ => (format!("this returns {joined}"), *joined_span),
                    };
                    self.report(
                        Diagnostic::error(
                            ErrorCode::TypeMismatch,
                            format!("`{}` returns values of different types", def.name.name),
                        )
                        .with_primary(span, format!("this returns {ty}"))
                        .with_secondary(other_span, other),
                    );
                }
            }
        }
        let ret = ret.map_or_else(Type::unit, |(ty, _)| ty);
        let ret = match &def.ret {
            Some(annotation) => {
                let declared = self.resolve_annotation(annotation);
                self.expect_fits(&ret, &declared, tail_span, Some(annotation.span));
                declared
            }
            None => ret,
        };
        self.check_returns(body, def, &ret);
        body.trace.finish();
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
                let not_constant =
                    len == Dim::Unknown && [lo, hi].iter().all(|bound| body.types.get(&bound.id) == Some(&Type::Int));
                body.bind(&name, Type::Int, None);
                body.loops.push(LoopVar { name, len, not_constant });
                let before = body.trace.paths.clone();
                let value = self.check_block(body, loop_body);
                // A loop's addresses hold one element per iteration, however many run; but a
                // `return` in it may leave the loop before any iteration ends.
                if body.trace.paths.unreachable {
                    body.trace.paths = before;
                }
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
                    body.trace.return_here();
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
                // Sampling runs a `gen` body (tracing its choices in a `gen`, or for its value in
                // `E`); a built family has neither body nor value to run.
                if family.kind != FamilyKind::Gen {
                    let help = if body.traces_choices() {
                        "sample the `gen` application itself here, and build the family where it is used"
                    } else {
                        "draw a trace and its log weight with `let (t, log_w) = sim(…);`"
                    };
                    self.report(
                        Diagnostic::error(
                            ErrorCode::Unsupported,
                            format!("`~` of {} is not supported by the compiler yet", family.kind.form()),
                        )
                        .with_primary(dist.span, format!("this is `{}`", family.name))
                        .with_help(help),
                    );
                }
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
            if let Type::Dist { name, .. } = &sampled.ty {
                let constraint = crate::distributions::lookup(name).map(|distribution| distribution.constraint);
                if let Some(field) = body.trace.fields.iter_mut().find(|field| field.name == address.name.name) {
                    field.support = constraint;
                }
            }
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
                let len = loop_var.as_ref().map_or(Dim::Unknown, |l| l.len);
                // The trace holds a vector of one element per iteration, whose length the
                // compiled program fixes.
                if let Some(l) = loop_var.as_ref().filter(|l| l.not_constant) {
                    self.unsupported(
                        body,
                        Diagnostic::error(
                            ErrorCode::Unsupported,
                            format!("address `{name}[{}]` in a loop whose bounds are not constants is not supported by the compiler yet", l.name),
                        )
                        .with_primary(address.name.span, "its trace has one element per iteration")
                        .with_help("give the loop bounds as literals, integer constants (`let n = 5;`), or arguments that every call gives as constants"),
                    );
                }
                if let Some(part) = unstackable(&traced) {
                    self.report(
                        Diagnostic::error(
                            ErrorCode::UnstackableArray,
                            format!("address `{name}[…]` holds {traced}, which has {part}"),
                        )
                        .with_primary(span, format!("each iteration samples {traced} here"))
                        .with_note(STACKABLE)
                        .with_help("sample the inner values as one vector (`v ~ normal(mu, 1.0)` with `mu: vec[n]`), or move this loop into the `gen` function it calls"),
                    );
                }
                let vector = match traced {
                    Type::Real => Type::Vec(len),
                    other => Type::Array(Box::new(other), len),
                };
                (vector.clone(), vector)
            }
        };
        let trace = &mut body.trace;
        if let Some(first) = trace.spans.get(name).filter(|_| trace.paths.some.contains(name)) {
            self.report(
                Diagnostic::error(ErrorCode::DuplicateAddress, format!("address `{name}` is sampled twice"))
                    .with_primary(address.name.span, "sampled again here")
                    .with_secondary(*first, "first sampled here")
                    .with_help("every random choice of a trace needs its own address"),
            );
        } else if let Some(field) = trace.fields.iter_mut().find(|field| field.name == *name) {
            // Sampled on another path that does not reach this one: one address, one type.
            let same = field_type.fits(&field.ty) && field.ty.fits(&field_type);
            match field.ty.join(&field_type).filter(|_| same) {
                Some(joined) => field.ty = joined,
                None => {
                    let (expected, first) = (field.ty.clone(), trace.spans.get(name).copied());
                    let mut diagnostic = Diagnostic::error(
                        ErrorCode::TypeMismatch,
                        format!("address `{name}` is {expected} on one path and {field_type} on another"),
                    )
                    .with_primary(address.name.span, format!("this samples {field_type}"))
                    .with_help("an address has one type in every trace: give one of them another name");
                    if let Some(first) = first {
                        diagnostic = diagnostic.with_secondary(first, format!("this samples {expected}"));
                    }
                    self.report(diagnostic);
                }
            }
        } else {
            trace.spans.insert(name.clone(), span);
            trace.fields.push(Field::new(name.clone(), field_type));
        }
        let paths = &mut body.trace.paths;
        paths.some.insert(name.clone());
        paths.every.insert(name.clone());
        body.bind(name, bound, None);
    }

    /// Checks both branches of an `if` from the same paths; an address sampled on one side only
    /// is then sampled on some paths only.
    pub(super) fn check_branches(
        &mut self,
        body: &mut Body,
        then: &'a Block,
        otherwise: Option<&'a crate::syntax::ast::Expr>,
    ) -> (Checked, Option<Checked>) {
        let before = body.trace.paths.clone();
        let then_value = self.check_block(body, then);
        let after_then = std::mem::replace(&mut body.trace.paths, before);
        let otherwise_value = otherwise.map(|expr| self.check_expr(body, expr));
        let after_otherwise = std::mem::take(&mut body.trace.paths);
        body.trace.paths = after_then.join(after_otherwise);
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

impl Checker<'_> {
    /// E0306 for an array literal or comprehension whose elements are of type `ty`, if they
    /// cannot be held as an array.
    pub(super) fn expect_stackable(&mut self, ty: &Type, span: Span) {
        if let Some(part) = unstackable(ty) {
            self.report(
                Diagnostic::error(ErrorCode::UnstackableArray, format!("an array of {ty}, which has {part}"))
                    .with_primary(span, format!("an element is {ty}"))
                    .with_note(STACKABLE),
            );
        }
    }
}

const STACKABLE: &str = "an array's elements may hold numbers, vectors, arrays of bools or ints, and records and tuples of them; an array of anything else would need a third dimension";

/// What keeps values of type `ty` from being the elements of an array (of a loop-indexed
/// address, a literal or a comprehension), if anything: such an array is held leaf by leaf, a
/// vector or a matrix per leaf (`lower::stacked`), so an element may hold no matrix, no array
/// of vectors or records, and nothing but data.
pub(super) fn unstackable(ty: &Type) -> Option<String> {
    match ty {
        Type::Real | Type::Int | Type::Bool | Type::Vec(_) | Type::Unknown => None,
        Type::Array(element, _) if matches!(**element, Type::Int | Type::Bool | Type::Unknown) => None,
        Type::Tuple(parts) => parts.iter().find_map(unstackable),
        Type::Record(fields) => fields.iter().find_map(|field| unstackable(&field.ty)),
        Type::Mat(..) | Type::Array(..) => Some(format!("a part of type {ty}")),
        other => Some(format!("a part of type {other}")),
    }
}
