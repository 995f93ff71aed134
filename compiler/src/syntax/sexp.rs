//! A span-free S-expression dump of the syntax tree, for tests: `-x^2` is `(neg (^ x 2))`.
//!
//! Two trees with the same dump are the same program (up to spans, expression ids and doc
//! comment placement); the parser's precedence tests and the formatter's round-trip property
//! compare dumps. It is not a user-facing format.

use super::ast::*;

pub fn program_sexp(program: &Program) -> String {
    program.items.iter().map(item_sexp).collect::<Vec<_>>().join("\n")
}

fn item_sexp(item: &Item) -> String {
    match &item.kind {
        ItemKind::Gen(def) => def_sexp("gen", def),
        ItemKind::Fn(def) => def_sexp("fn", def),
        ItemKind::Param(binding) => binding_sexp("param", binding),
        ItemKind::Data(binding) => binding_sexp("data", binding),
        ItemKind::Let(binding) => binding_sexp("let", binding),
        ItemKind::Print(exprs) => format!("(print {})", list(exprs.iter().map(expr_sexp))),
        ItemKind::Optimize(optimize) => {
            let verb = match optimize.direction {
                Direction::Maximize => "maximize",
                Direction::Minimize => "minimize",
            };
            let objectives = optimize.objectives.iter().map(|objective| match &objective.wrt {
                Some(names) => {
                    format!("(wrt {} [{}])", expr_sexp(&objective.expr), list(names.iter().map(|n| n.name.clone())))
                }
                None => expr_sexp(&objective.expr),
            });
            format!("({verb} {} (with {}))", list(objectives), list(optimize.options.iter().map(field_sexp)))
        }
        ItemKind::Error => "(error)".to_string(),
    }
}

fn def_sexp(keyword: &str, def: &FnDef) -> String {
    let params = def.params.iter().map(|param| match &param.ty {
        Some(ty) => format!("({}: {})", param.name.name, type_sexp(ty)),
        None => param.name.name.clone(),
    });
    let ret = def.ret.as_ref().map_or(String::new(), |ty| format!(" -> {}", type_sexp(ty)));
    format!("({keyword} {} ({}){ret} {})", def.name.name, list(params), block_sexp(&def.body))
}

fn binding_sexp(keyword: &str, binding: &Binding) -> String {
    let ty = binding.ty.as_ref().map_or(String::new(), |ty| format!(": {}", type_sexp(ty)));
    format!("({keyword} {}{ty} {})", binding.name.name, expr_sexp(&binding.value))
}

fn type_sexp(ty: &TypeExpr) -> String {
    match &ty.kind {
        TypeExprKind::Named(name) => name.name.clone(),
        TypeExprKind::Vec(n) => format!("vec[{}]", dim_sexp(n)),
        TypeExprKind::Mat(m, n) => format!("mat[{}, {}]", dim_sexp(m), dim_sexp(n)),
        TypeExprKind::Tuple(parts) => format!("(tuple {})", list(parts.iter().map(type_sexp))),
        TypeExprKind::Record(fields) => {
            format!("(record {})", list(fields.iter().map(|(name, ty)| format!("({}: {})", name.name, type_sexp(ty)))))
        }
    }
}

fn dim_sexp(dim: &Dim) -> String {
    match dim {
        Dim::Literal(n, _) => n.to_string(),
        Dim::Name(name) => name.name.clone(),
    }
}

fn block_sexp(block: &Block) -> String {
    let mut parts: Vec<String> = block.stmts.iter().map(stmt_sexp).collect();
    if let Some(tail) = &block.tail {
        parts.push(format!("(value {})", expr_sexp(tail)));
    }
    format!("(block {})", parts.join(" "))
}

fn stmt_sexp(stmt: &Stmt) -> String {
    match &stmt.kind {
        StmtKind::Let { pattern, ty, value } => {
            let ty = ty.as_ref().map_or(String::new(), |ty| format!(": {}", type_sexp(ty)));
            format!("(let {}{ty} {})", pattern_sexp(pattern), expr_sexp(value))
        }
        StmtKind::Choice { address, dist, via } => {
            let address = match &address.index {
                Some(index) => format!("(index {} {})", address.name.name, expr_sexp(index)),
                None => address.name.name.clone(),
            };
            let via = via.as_ref().map_or(String::new(), |via| match &via.args {
                Some(args) => format!(" (via {} {})", via.estimator.name, list(args.iter().map(arg_sexp))),
                None => format!(" (via {})", via.estimator.name),
            });
            format!("(~ {address} {}{via})", expr_sexp(dist))
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
        Pattern::Tuple(parts, _) => format!("(tuple {})", list(parts.iter().map(pattern_sexp))),
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
        ExprKind::Call { callee, args } => format!("(call {} {})", callee.name, list(args.iter().map(arg_sexp))),
        ExprKind::Index { base, indices } => {
            format!("(index {} {})", expr_sexp(base), list(indices.iter().map(expr_sexp)))
        }
        ExprKind::Field { base, field } => format!("(. {} {})", expr_sexp(base), field.name),
        ExprKind::Vector(parts) => format!("[{}]", list(parts.iter().map(expr_sexp))),
        ExprKind::Comprehension { body, var, lo, hi } => {
            format!("(for-vec {} {} {} {})", expr_sexp(body), pattern_sexp(var), expr_sexp(lo), expr_sexp(hi))
        }
        ExprKind::Record(fields) => format!("(record {})", list(fields.iter().map(field_sexp))),
        ExprKind::Tuple(parts) => format!("(tuple {})", list(parts.iter().map(expr_sexp))),
        ExprKind::Block(block) => block_sexp(block),
        ExprKind::If { cond, then, otherwise } => {
            let otherwise = otherwise.as_ref().map_or(String::new(), |e| format!(" {}", expr_sexp(e)));
            format!("(if {} {}{otherwise})", expr_sexp(cond), block_sexp(then))
        }
        ExprKind::Expect(block) => format!("(E {})", block_sexp(block)),
    }
}

fn list(parts: impl Iterator<Item = String>) -> String {
    parts.collect::<Vec<_>>().join(" ")
}
