//! Walking every expression of the tree, in source order.

use super::ast::*;

/// Calls `f` on every expression of `item`, parents before children, in source order.
pub fn walk_item_exprs_mut(item: &mut Item, f: &mut impl FnMut(&mut Expr)) {
    match &mut item.kind {
        ItemKind::Gen(def) | ItemKind::Fn(def) => walk_block_mut(&mut def.body, f),
        ItemKind::Param(binding) | ItemKind::Data(binding) | ItemKind::Let(binding) => {
            walk_expr_mut(&mut binding.value, f)
        }
        ItemKind::Print(exprs) => exprs.iter_mut().for_each(|expr| walk_expr_mut(expr, f)),
        ItemKind::Type(_) => {}
        ItemKind::Optimize(optimize) => {
            for objective in &mut optimize.objectives {
                walk_expr_mut(&mut objective.expr, f);
            }
            for option in &mut optimize.options {
                walk_expr_mut(&mut option.value, f);
            }
        }
        ItemKind::Error => {}
    }
}

fn walk_block_mut(block: &mut Block, f: &mut impl FnMut(&mut Expr)) {
    for stmt in &mut block.stmts {
        match &mut stmt.kind {
            StmtKind::Let { value, .. } => walk_expr_mut(value, f),
            StmtKind::Choice { address, dist, via } => {
                if let Some(index) = &mut address.index {
                    walk_expr_mut(index, f);
                }
                walk_expr_mut(dist, f);
                for arg in via.iter_mut().flat_map(|via| via.args.iter_mut().flatten()) {
                    walk_expr_mut(&mut arg.value, f);
                }
            }
            StmtKind::For { lo, hi, body, .. } => {
                walk_expr_mut(lo, f);
                walk_expr_mut(hi, f);
                walk_block_mut(body, f);
            }
            StmtKind::Return(expr) | StmtKind::Expr(expr) => walk_expr_mut(expr, f),
        }
    }
    if let Some(tail) = &mut block.tail {
        walk_expr_mut(tail, f);
    }
}

pub fn walk_expr_mut(expr: &mut Expr, f: &mut impl FnMut(&mut Expr)) {
    f(expr);
    match &mut expr.kind {
        ExprKind::Int(_) | ExprKind::Real(_) | ExprKind::Bool(_) | ExprKind::Str(_) | ExprKind::Name(_) => {}
        ExprKind::Unary(_, operand) => walk_expr_mut(operand, f),
        ExprKind::Binary(_, lhs, rhs) => {
            walk_expr_mut(lhs, f);
            walk_expr_mut(rhs, f);
        }
        ExprKind::Call { args, .. } => args.iter_mut().for_each(|arg| walk_expr_mut(&mut arg.value, f)),
        ExprKind::Index { base, indices } => {
            walk_expr_mut(base, f);
            indices.iter_mut().for_each(|index| walk_expr_mut(index, f));
        }
        ExprKind::Field { base, .. } => walk_expr_mut(base, f),
        ExprKind::Range { lo, hi } => {
            for bound in [lo, hi].into_iter().flatten() {
                walk_expr_mut(bound, f);
            }
        }
        ExprKind::Vector(parts) | ExprKind::Tuple(parts) => parts.iter_mut().for_each(|part| walk_expr_mut(part, f)),
        ExprKind::Comprehension { body, lo, hi, .. } => {
            walk_expr_mut(lo, f);
            walk_expr_mut(hi, f);
            walk_expr_mut(body, f);
        }
        ExprKind::Record(fields) => fields.iter_mut().for_each(|field| walk_expr_mut(&mut field.value, f)),
        ExprKind::Block(block) | ExprKind::Expect(block) => walk_block_mut(block, f),
        ExprKind::If { cond, then, otherwise } => {
            walk_expr_mut(cond, f);
            walk_block_mut(then, f);
            if let Some(otherwise) = otherwise {
                walk_expr_mut(otherwise, f);
            }
        }
    }
}

/// The expressions directly inside `expr`, looking through the statements of the blocks it
/// contains (so recursion over blocks is bounded by bracket nesting, not expression depth).
pub fn child_exprs(expr: &Expr) -> Vec<&Expr> {
    match &expr.kind {
        ExprKind::Int(_) | ExprKind::Real(_) | ExprKind::Bool(_) | ExprKind::Str(_) | ExprKind::Name(_) => Vec::new(),
        ExprKind::Unary(_, operand) => vec![operand],
        ExprKind::Binary(_, lhs, rhs) => vec![lhs, rhs],
        ExprKind::Call { args, .. } => args.iter().map(|arg| &arg.value).collect(),
        ExprKind::Index { base, indices } => std::iter::once(&**base).chain(indices).collect(),
        ExprKind::Field { base, .. } => vec![base],
        ExprKind::Range { lo, hi } => [lo, hi].into_iter().flatten().map(|bound| &**bound).collect(),
        ExprKind::Vector(parts) | ExprKind::Tuple(parts) => parts.iter().collect(),
        ExprKind::Comprehension { body, lo, hi, .. } => vec![lo, hi, body],
        ExprKind::Record(fields) => fields.iter().map(|field| &field.value).collect(),
        ExprKind::Block(block) | ExprKind::Expect(block) => block_exprs(block),
        ExprKind::If { cond, then, otherwise } => {
            let mut children = vec![&**cond];
            children.extend(block_exprs(then));
            children.extend(otherwise.as_deref());
            children
        }
    }
}

/// The outermost expressions of a block's statements and tail, including nested loop bodies.
pub fn block_exprs(block: &Block) -> Vec<&Expr> {
    let mut exprs: Vec<&Expr> = block.stmts.iter().flat_map(stmt_exprs).collect();
    exprs.extend(block.tail.as_deref());
    exprs
}

/// The outermost expressions of a statement, including those of a loop body.
pub fn stmt_exprs(stmt: &Stmt) -> Vec<&Expr> {
    match &stmt.kind {
        StmtKind::Let { value, .. } => vec![value],
        StmtKind::Choice { address, dist, via } => {
            let mut exprs: Vec<&Expr> = address.index.iter().collect();
            exprs.push(dist);
            exprs.extend(via.iter().flat_map(|via| via.args.iter().flatten()).map(|arg| &arg.value));
            exprs
        }
        StmtKind::For { lo, hi, body, .. } => {
            let mut exprs = vec![lo, hi];
            exprs.extend(block_exprs(body));
            exprs
        }
        StmtKind::Return(expr) | StmtKind::Expr(expr) => vec![expr],
    }
}

/// The outermost expressions of an item.
pub fn item_exprs(item: &Item) -> Vec<&Expr> {
    match &item.kind {
        ItemKind::Gen(def) | ItemKind::Fn(def) => block_exprs(&def.body),
        ItemKind::Param(binding) | ItemKind::Data(binding) | ItemKind::Let(binding) => vec![&binding.value],
        ItemKind::Print(exprs) => exprs.iter().collect(),
        ItemKind::Type(_) => Vec::new(),
        ItemKind::Optimize(optimize) => optimize
            .objectives
            .iter()
            .map(|objective| &objective.expr)
            .chain(optimize.options.iter().map(|option| &option.value))
            .collect(),
        ItemKind::Error => Vec::new(),
    }
}
