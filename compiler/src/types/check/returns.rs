//! Early `return`s: where a `return` may stand, and what a function that returns before its
//! end may return (E0214).
//!
//! A function that may return early runs every statement after one that may have returned
//! only if none did (see `lower::returns`). That is the language's meaning only if nothing
//! else runs between a `return` and the statement that contains it, so a `return` must stand
//! in a *control position*: a statement of the function's body, or of a block or `if` branch
//! that is itself a statement, a `let`'s value or the final expression of a block in a control
//! position, or of a loop body there. Inside an operand, an argument or a choice's
//! distribution, the rest of the expression would still be computed (and a choice made). The
//! returned value and every block or `if` it leaves are carried through branches and loops as
//! data, so they must be data; and in a `gen` body a loop that samples addresses cannot be
//! left, since its vector-valued addresses would be sampled for some iterations only.

use super::body::{Body, BodyKind};
use super::Checker;
use crate::diagnostics::{Diagnostic, ErrorCode};
use crate::syntax::ast::{Block, Expr, ExprKind, FnDef, Stmt, StmtKind};
use crate::syntax::span::Span;
use crate::types::ty::Type;

/// What encloses the statements being walked.
#[derive(Clone, Copy)]
struct Enclosing {
    /// The innermost loop whose iterations sample addresses: the first such choice.
    sampling_loop: Option<Span>,
}

impl<'a> Checker<'a> {
    /// Checks every `return` of a function body whose result type is `ret`.
    pub(super) fn check_returns(&mut self, body: &Body, def: &'a FnDef, ret: &Type) {
        let early = def.body.returns_early();
        if early && !is_data(ret) {
            let span = first_early_return(&def.body).unwrap_or(def.name.span);
            self.report(
                Diagnostic::error(ErrorCode::InvalidReturn, format!("an early `return` of {ret}"))
                    .with_primary(span, format!("`{}` returns {ret} before its end", def.name.name))
                    .with_note("a function that returns before its end must return data: numbers, vectors, matrices, and tuples and records of them")
                    .with_help("choose between the values with an `if` expression: `if c { a } else { b }`"),
            );
        }
        let enclosing = Enclosing { sampling_loop: None };
        self.control_block(body, &def.body, enclosing, early);
    }

    fn control_block(&mut self, body: &Body, block: &'a Block, enclosing: Enclosing, early: bool) {
        for stmt in &block.stmts {
            self.control_stmt(body, stmt, enclosing, early);
        }
        if let Some(tail) = &block.tail {
            self.control_expr(body, tail, enclosing, early);
        }
    }

    fn control_stmt(&mut self, body: &Body, stmt: &'a Stmt, enclosing: Enclosing, early: bool) {
        match &stmt.kind {
            StmtKind::Return(value) => {
                if let Some(choice) = enclosing.sampling_loop {
                    self.report(
                        Diagnostic::error(ErrorCode::InvalidReturn, "`return` from a loop that samples addresses")
                            .with_primary(stmt.span, "this would leave the loop")
                            .with_secondary(choice, "and this address would then hold the iterations before it only")
                            .with_help("compute what to return in the loop and return it after the loop, or sample the loop in a `gen` function of its own"),
                    );
                }
                self.outside_control(value);
            }
            StmtKind::Let { value, .. } | StmtKind::Expr(value) => self.control_expr(body, value, enclosing, early),
            StmtKind::For { lo, hi, body: loop_body, .. } => {
                self.outside_control(lo);
                self.outside_control(hi);
                let sampling_loop = match body.kind {
                    BodyKind::Gen => first_choice(loop_body).or(enclosing.sampling_loop),
                    _ => enclosing.sampling_loop,
                };
                self.control_block(body, loop_body, Enclosing { sampling_loop }, early);
            }
            StmtKind::Choice { address, dist, via } => {
                if let Some(index) = &address.index {
                    self.outside_control(index);
                }
                self.outside_control(dist);
                for arg in via.iter().flat_map(|via| via.args.iter().flatten()) {
                    self.outside_control(&arg.value);
                }
            }
        }
    }

    /// An expression in a control position: a block or an `if` whose statements may return.
    fn control_expr(&mut self, body: &Body, expr: &'a Expr, enclosing: Enclosing, early: bool) {
        let (blocks, rest): (Vec<&'a Block>, Option<&'a Expr>) = match &expr.kind {
            ExprKind::Block(block) => (vec![block], None),
            ExprKind::If { cond, then, otherwise } => {
                self.outside_control(cond);
                (vec![then], otherwise.as_deref())
            }
            _ => {
                self.outside_control(expr);
                return;
            }
        };
        if early && expr.contains_return() {
            let ty = body.types.get(&expr.id).cloned().unwrap_or(Type::Unknown);
            if !is_data(&ty) {
                let what = if matches!(expr.kind, ExprKind::If { .. }) { "an `if`" } else { "a block" };
                self.report(
                    Diagnostic::error(ErrorCode::InvalidReturn, format!("`return` from {what} whose value is {ty}"))
                        .with_primary(expr.span, format!("this is {ty}, and it may return"))
                        .with_note("a block or `if` that may return carries its value through the return as data: numbers, vectors, matrices, and tuples and records of them")
                        .with_help("move the `return` out of it, or give it a value that is data"),
                );
            }
        }
        for block in blocks {
            self.control_block(body, block, enclosing, early);
        }
        if let Some(otherwise) = rest {
            self.control_expr(body, otherwise, enclosing, early);
        }
    }

    /// Reports every `return` inside an expression that is not in a control position.
    fn outside_control(&mut self, expr: &'a Expr) {
        for stmt in returns_in(expr) {
            self.report(
                Diagnostic::error(ErrorCode::InvalidReturn, "`return` inside an expression")
                    .with_primary(stmt.span, "the rest of the expression around it would still run")
                    .with_help("return from a statement: `if c { return a; }`, or give the expression the value with an `if`: `if c { a } else { b }`"),
            );
        }
    }
}

/// Plain data a returned value can be carried as: numbers, vectors, matrices, arrays of
/// counts and booleans, and tuples and records of them (or not known, after an error).
fn is_data(ty: &Type) -> bool {
    match ty {
        Type::Real | Type::Int | Type::Bool | Type::Vec(_) | Type::Mat(..) | Type::Unknown => true,
        Type::Array(element, _) => is_data(element) && super::body::unstackable(element).is_none(),
        Type::Tuple(parts) => parts.iter().all(is_data),
        Type::Record(fields) => fields.iter().all(|field| is_data(&field.ty)),
        Type::Str | Type::Est(_) | Type::Dist { .. } | Type::Family(_) | Type::Config(_) | Type::Report(_) => false,
    }
}

/// The outermost `return` statements inside an expression (outside `E { … }`).
fn returns_in(expr: &Expr) -> Vec<&Stmt> {
    let mut found = Vec::new();
    collect_returns_expr(expr, &mut found);
    found
}

fn collect_returns_expr<'e>(expr: &'e Expr, found: &mut Vec<&'e Stmt>) {
    match &expr.kind {
        ExprKind::Expect(_) => {}
        ExprKind::Block(block) => collect_returns_block(block, found),
        ExprKind::If { cond, then, otherwise } => {
            collect_returns_expr(cond, found);
            collect_returns_block(then, found);
            if let Some(otherwise) = otherwise {
                collect_returns_expr(otherwise, found);
            }
        }
        _ => {
            for child in crate::syntax::visit::child_exprs(expr) {
                collect_returns_expr(child, found);
            }
        }
    }
}

fn collect_returns_block<'e>(block: &'e Block, found: &mut Vec<&'e Stmt>) {
    for stmt in &block.stmts {
        if matches!(stmt.kind, StmtKind::Return(_)) {
            found.push(stmt);
            continue;
        }
        match &stmt.kind {
            StmtKind::Let { value: expr, .. } | StmtKind::Expr(expr) | StmtKind::Return(expr) => {
                collect_returns_expr(expr, found)
            }
            StmtKind::Choice { address, dist, via } => {
                if let Some(index) = &address.index {
                    collect_returns_expr(index, found);
                }
                collect_returns_expr(dist, found);
                for arg in via.iter().flat_map(|via| via.args.iter().flatten()) {
                    collect_returns_expr(&arg.value, found);
                }
            }
            StmtKind::For { lo, hi, body, .. } => {
                collect_returns_expr(lo, found);
                collect_returns_expr(hi, found);
                collect_returns_block(body, found);
            }
        }
    }
    if let Some(tail) = &block.tail {
        collect_returns_expr(tail, found);
    }
}

/// The span of the first `return` of a body that is not its final statement.
fn first_early_return(body: &Block) -> Option<Span> {
    let mut found = Vec::new();
    collect_returns_block(body, &mut found);
    let last = match (body.stmts.last(), &body.tail) {
        (Some(last), None) if matches!(last.kind, StmtKind::Return(_)) => Some(last.span),
        _ => None,
    };
    found.into_iter().map(|stmt| stmt.span).find(|span| Some(*span) != last)
}

/// The first traced choice of a loop body (`~` outside `E { … }`), at any depth.
fn first_choice(block: &Block) -> Option<Span> {
    for stmt in &block.stmts {
        let found = match &stmt.kind {
            StmtKind::Choice { .. } => Some(stmt.span),
            StmtKind::For { body, .. } => first_choice(body),
            StmtKind::Let { value: expr, .. } | StmtKind::Expr(expr) | StmtKind::Return(expr) => {
                first_choice_expr(expr)
            }
        };
        if found.is_some() {
            return found;
        }
    }
    block.tail.as_deref().and_then(first_choice_expr)
}

fn first_choice_expr(expr: &Expr) -> Option<Span> {
    match &expr.kind {
        ExprKind::Expect(_) => None,
        ExprKind::Block(block) => first_choice(block),
        ExprKind::If { cond, then, otherwise } => first_choice_expr(cond)
            .or_else(|| first_choice(then))
            .or_else(|| otherwise.as_deref().and_then(first_choice_expr)),
        _ => crate::syntax::visit::child_exprs(expr).into_iter().find_map(first_choice_expr),
    }
}

#[cfg(test)]
mod tests {
    use super::is_data;
    use crate::types::ty::{Dim, Field, Type};

    #[test]
    fn data_is_numbers_and_structures_of_them() {
        let record = Type::Record(vec![Field { optional: true, ..Field::new("x", Type::Vec(Dim::Known(3))) }]);
        assert!(is_data(&Type::Tuple(vec![Type::Real, record])));
        assert!(is_data(&Type::Array(Box::new(Type::Bool), Dim::Known(2))));
        assert!(!is_data(&Type::real_estimate()));
        assert!(!is_data(&Type::Str));
        assert!(!is_data(&Type::Tuple(vec![Type::Real, Type::real_estimate()])));
    }
}
