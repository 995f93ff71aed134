//! A span-free, id-free S-expression dump of the syntax tree: `-x^2` is `(neg (^ x 2))`,
//! `f(a, lr: 0.1)` is `(call f a (lr: 0.1))`.
//!
//! This module owns the dump's format, which exists for tests: the parser's tests compare
//! dumps against expected text, and the formatter's round-trip tests compare the dumps of two
//! trees, since two trees with the same dump are the same program up to spans and expression
//! ids (doc comments included). It is deterministic and not a user-facing format. Reals print
//! with `{:?}`, so distinct values print differently.

use super::ast::*;

/// One line per item.
pub fn program_sexp(program: &Program) -> String {
    program.items.iter().map(item_sexp).collect::<Vec<_>>().join("\n")
}

pub fn item_sexp(item: &Item) -> String {
    let body = match &item.kind {
        ItemKind::Gen(def) => def_sexp("gen", def),
        ItemKind::Fn(def) => def_sexp("fn", def),
        ItemKind::Param(binding) => binding_sexp("param", binding),
        ItemKind::Data(binding) => binding_sexp("data", binding),
        ItemKind::Let(binding) => binding_sexp("let", binding),
        ItemKind::Type(alias) => format!("(type {} {})", alias.name.name, type_sexp(&alias.ty)),
        ItemKind::Print(exprs) => node("print", exprs.iter().map(expr_sexp)),
        ItemKind::Optimize(optimize) => {
            let verb = match optimize.direction {
                Direction::Maximize => "maximize",
                Direction::Minimize => "minimize",
            };
            let objectives = optimize.objectives.iter().map(|objective| match &objective.wrt {
                Some(names) => {
                    let names: Vec<&str> = names.iter().map(|name| name.name.as_str()).collect();
                    format!("(wrt {} [{}])", expr_sexp(&objective.expr), names.join(" "))
                }
                None => expr_sexp(&objective.expr),
            });
            let options = node("with", optimize.options.iter().map(field_sexp));
            node(verb, objectives.chain(std::iter::once(options)))
        }
        ItemKind::Error => "(error)".to_string(),
    };
    match &item.doc {
        Some(doc) => format!("(doc {doc:?} {body})"),
        None => body,
    }
}

fn def_sexp(keyword: &str, def: &FnDef) -> String {
    let params = def.params.iter().map(|param| match &param.ty {
        Some(ty) => format!("({}: {})", param.name.name, type_sexp(ty)),
        None => param.name.name.clone(),
    });
    let ret = def.ret.as_ref().map(|ty| format!("-> {}", type_sexp(ty)));
    let parts = [def.name.name.clone(), node("", params)].into_iter().chain(ret);
    node(keyword, parts.chain(std::iter::once(block_sexp(&def.body))))
}

fn binding_sexp(keyword: &str, binding: &Binding) -> String {
    let name = match &binding.ty {
        Some(ty) => format!("{}: {}", binding.name.name, type_sexp(ty)),
        None => binding.name.name.clone(),
    };
    node(keyword, [name, expr_sexp(&binding.value)].into_iter())
}

pub fn type_sexp(ty: &TypeExpr) -> String {
    match &ty.kind {
        TypeExprKind::Named(name) => name.name.clone(),
        TypeExprKind::Vec(n) => format!("vec[{}]", dim_sexp(n)),
        TypeExprKind::Mat(m, n) => format!("mat[{}, {}]", dim_sexp(m), dim_sexp(n)),
        TypeExprKind::Array(element, n) => format!("[{}; {}]", type_sexp(element), dim_sexp(n)),
        TypeExprKind::Tuple(parts) => node("tuple", parts.iter().map(type_sexp)),
        TypeExprKind::Record(fields) => {
            node("record", fields.iter().map(|(name, ty)| format!("({}: {})", name.name, type_sexp(ty))))
        }
    }
}

fn dim_sexp(dim: &Dim) -> String {
    match dim {
        Dim::Literal(n, _) => n.to_string(),
        Dim::Name(name) => name.name.clone(),
    }
}

/// Statements in order, then `(value e)` for the block's final expression.
pub fn block_sexp(block: &Block) -> String {
    let tail = block.tail.iter().map(|tail| format!("(value {})", expr_sexp(tail)));
    node("block", block.stmts.iter().map(stmt_sexp).chain(tail))
}

pub fn stmt_sexp(stmt: &Stmt) -> String {
    match &stmt.kind {
        StmtKind::Let { pattern, ty, value } => {
            let pattern = match ty {
                Some(ty) => format!("{}: {}", pattern_sexp(pattern), type_sexp(ty)),
                None => pattern_sexp(pattern),
            };
            format!("(let {pattern} {})", expr_sexp(value))
        }
        StmtKind::Choice { address, dist, via } => {
            let address = match &address.index {
                Some(index) => format!("(index {} {})", address.name.name, expr_sexp(index)),
                None => address.name.name.clone(),
            };
            let via = via.as_ref().map(|via| {
                let estimator = std::iter::once(via.estimator.name.clone());
                match &via.args {
                    Some(args) => {
                        node("via", estimator.chain(std::iter::once(node("args", args.iter().map(arg_sexp)))))
                    }
                    None => node("via", estimator),
                }
            });
            node("~", [address, expr_sexp(dist)].into_iter().chain(via))
        }
        StmtKind::For { var, lo, hi, body } => {
            format!("(for {} {} {} {})", pattern_sexp(var), expr_sexp(lo), expr_sexp(hi), block_sexp(body))
        }
        StmtKind::Return(expr) => format!("(return {})", expr_sexp(expr)),
        StmtKind::Expr(expr) => format!("(do {})", expr_sexp(expr)),
    }
}

fn pattern_sexp(pattern: &Pattern) -> String {
    match pattern {
        Pattern::Name(name) => name.name.clone(),
        Pattern::Wildcard(_) => "_".to_string(),
        Pattern::Tuple(parts, _) => node("tuple", parts.iter().map(pattern_sexp)),
    }
}

fn arg_sexp(arg: &Arg) -> String {
    match &arg.name {
        Some(name) => format!("({}: {})", name.name, expr_sexp(&arg.value)),
        None => expr_sexp(&arg.value),
    }
}

fn field_sexp(field: &Field) -> String {
    format!("({}: {})", field.name.name, expr_sexp(&field.value))
}

pub fn expr_sexp(expr: &Expr) -> String {
    match &expr.kind {
        ExprKind::Int(n) => n.to_string(),
        ExprKind::Real(x) => format!("{x:?}"),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Str(s) => format!("{s:?}"),
        ExprKind::Name(name) => name.clone(),
        ExprKind::Unary(op, operand) => {
            let name = match op {
                UnaryOp::Neg => "neg",
                UnaryOp::Not => "not",
            };
            format!("({name} {})", expr_sexp(operand))
        }
        ExprKind::Binary(op, lhs, rhs) => format!("({} {} {})", op.symbol(), expr_sexp(lhs), expr_sexp(rhs)),
        ExprKind::Call { callee, args } => {
            node("call", std::iter::once(callee.name.clone()).chain(args.iter().map(arg_sexp)))
        }
        ExprKind::Index { base, indices } => node("index", std::iter::once(&**base).chain(indices).map(expr_sexp)),
        ExprKind::Range { lo, hi } => {
            node("range", [lo, hi].into_iter().map(|bound| bound.as_deref().map_or("_".to_string(), expr_sexp)))
        }
        ExprKind::Field { base, field } => format!("(. {} {})", expr_sexp(base), field.name),
        ExprKind::Vector(parts) => format!("[{}]", parts.iter().map(expr_sexp).collect::<Vec<_>>().join(" ")),
        ExprKind::Comprehension { body, var, lo, hi } => {
            format!("(for-vec {} {} {} {})", expr_sexp(body), pattern_sexp(var), expr_sexp(lo), expr_sexp(hi))
        }
        ExprKind::Record(fields) => node("record", fields.iter().map(field_sexp)),
        ExprKind::Tuple(parts) => node("tuple", parts.iter().map(expr_sexp)),
        ExprKind::Block(block) => block_sexp(block),
        ExprKind::If { cond, then, otherwise } => {
            let otherwise = otherwise.as_deref().map(expr_sexp);
            node("if", [expr_sexp(cond), block_sexp(then)].into_iter().chain(otherwise))
        }
        ExprKind::Expect(block) => format!("(E {})", block_sexp(block)),
    }
}

/// `(head part part …)`, with no stray space when there are no parts (or no head).
fn node(head: &str, parts: impl Iterator<Item = String>) -> String {
    let mut out = String::from("(");
    out.push_str(head);
    for part in parts {
        if out.len() > 1 {
            out.push(' ');
        }
        out.push_str(&part);
    }
    out.push(')');
    out
}
