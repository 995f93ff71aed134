//! Plates: the enumerated choices of a `gen` body that `density` may sum out iteration by
//! iteration (Pyro's plate-aware enumeration).
//!
//! A choice `z[i] ~ flip(p) via enum` (or `categorical`) written directly in the body of a loop
//! `for i in …` is *summed out* when `density` is given a trace without `z`: the rest of that
//! iteration runs once per outcome, and the iteration adds the log of the outcomes' likelihoods
//! weighted by their probabilities. Iteration by iteration, that is the exact marginal — at a
//! cost linear in the number of iterations — only if nothing outside the iteration depends on
//! the outcome: the body must read `z` only as `z[i]`, after the choice and in the same
//! iteration, and the iteration must not `return`. This module finds the choices that qualify,
//! by their syntax alone; it must not know types or how the sum is lowered.

use crate::syntax::ast::{Block, Expr, ExprKind, Pattern, Stmt, StmtKind};
use crate::syntax::visit::{block_exprs, child_exprs, stmt_exprs};

/// The distributions whose outcomes `via enum` lists.
const ENUMERABLE: &[&str] = &["flip", "bernoulli", "categorical"];

/// The addresses of `body` (a `gen` body) that `density` may sum out.
pub fn summable_addresses(body: &Block) -> Vec<String> {
    let mut candidates = Vec::new();
    collect_candidates(body, &mut candidates);
    candidates
        .into_iter()
        .filter(|candidate| {
            let all_reads = count_names(&block_exprs(body), candidate.name);
            let rest = &candidate.loop_body.stmts[candidate.position + 1..];
            let mut rest_exprs: Vec<&Expr> = rest.iter().flat_map(stmt_exprs).collect();
            rest_exprs.extend(candidate.loop_body.tail.as_deref());
            let own_reads = count_own_reads(&rest_exprs, candidate.name, candidate.variable);
            // Lowering reads `z[i]` as the outcome being summed over, so no other binding may
            // take the name.
            all_reads == own_reads && !candidate.loop_body.contains_return() && !block_binds(body, candidate.name)
        })
        .map(|candidate| candidate.name.to_string())
        .collect()
}

/// An enumerated choice indexed by the variable of the loop whose body holds it.
struct Candidate<'a> {
    name: &'a str,
    variable: &'a str,
    loop_body: &'a Block,
    /// Its statement's place in the loop body.
    position: usize,
}

fn collect_candidates<'a>(block: &'a Block, found: &mut Vec<Candidate<'a>>) {
    for stmt in &block.stmts {
        if let StmtKind::For { var: Pattern::Name(variable), body, .. } = &stmt.kind {
            for (position, inner) in body.stmts.iter().enumerate() {
                if let Some(name) = enumerated_choice(inner, &variable.name) {
                    found.push(Candidate { name, variable: &variable.name, loop_body: body, position });
                }
            }
            collect_candidates(body, found);
        }
    }
}

/// `name[variable] ~ flip(…) via enum` (or another enumerable distribution): its name.
fn enumerated_choice<'a>(stmt: &'a Stmt, variable: &str) -> Option<&'a str> {
    let StmtKind::Choice { address, dist, via: Some(via) } = &stmt.kind else { return None };
    let indexed_by_variable =
        matches!(&address.index, Some(Expr { kind: ExprKind::Name(index), .. }) if index == variable);
    let enumerable = matches!(&dist.kind, ExprKind::Call { callee, .. } if ENUMERABLE.contains(&callee.name.as_str()));
    (indexed_by_variable && enumerable && via.estimator.name == "enum").then_some(address.name.name.as_str())
}

/// Whether a `let`, loop or comprehension in `block` (or in an expression in it) binds `name`.
fn block_binds(block: &Block, name: &str) -> bool {
    block.stmts.iter().any(|stmt| {
        let binds_here = match &stmt.kind {
            StmtKind::Let { pattern, .. } | StmtKind::For { var: pattern, .. } => pattern_binds(pattern, name),
            _ => false,
        };
        let nested = match &stmt.kind {
            StmtKind::For { body, .. } => block_binds(body, name),
            _ => false,
        };
        binds_here || nested || stmt_exprs(stmt).into_iter().any(|expr| expr_binds(expr, name))
    }) || block.tail.as_deref().is_some_and(|tail| expr_binds(tail, name))
}

fn expr_binds(expr: &Expr, name: &str) -> bool {
    let here = match &expr.kind {
        ExprKind::Block(block) | ExprKind::Expect(block) => block_binds(block, name),
        ExprKind::If { then, .. } => block_binds(then, name),
        ExprKind::Comprehension { var, .. } => pattern_binds(var, name),
        _ => false,
    };
    here || child_exprs(expr).into_iter().any(|child| expr_binds(child, name))
}

fn pattern_binds(pattern: &Pattern, name: &str) -> bool {
    match pattern {
        Pattern::Name(ident) => ident.name == name,
        Pattern::Wildcard(_) => false,
        Pattern::Tuple(parts, _) => parts.iter().any(|part| pattern_binds(part, name)),
    }
}

/// How many times the name `name` is read in `exprs` and below.
fn count_names(exprs: &[&Expr], name: &str) -> usize {
    exprs
        .iter()
        .map(|expr| {
            let here = usize::from(matches!(&expr.kind, ExprKind::Name(read) if read == name));
            here + count_names(&child_exprs(expr), name)
        })
        .sum()
}

/// How many reads of `name` in `exprs` are `name[variable]`.
fn count_own_reads(exprs: &[&Expr], name: &str, variable: &str) -> usize {
    exprs
        .iter()
        .map(|expr| {
            let own = match &expr.kind {
                ExprKind::Index { base, indices } => {
                    matches!(&base.kind, ExprKind::Name(read) if read == name)
                        && matches!(indices.as_slice(), [Expr { kind: ExprKind::Name(index), .. }] if index == variable)
                }
                _ => false,
            };
            usize::from(own) + count_own_reads(&child_exprs(expr), name, variable)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::summable_addresses;
    use crate::syntax::ast::ItemKind;
    use crate::syntax::parser::parse;

    /// The summable addresses of the program's first `gen`.
    fn summable(source: &str) -> Vec<String> {
        let parsed = parse(source, 0);
        assert!(parsed.diagnostics.is_empty(), "{source}: {:?}", parsed.diagnostics);
        let body = parsed.program.items.iter().find_map(|item| match &item.kind {
            ItemKind::Gen(def) => Some(&def.body),
            _ => None,
        });
        summable_addresses(body.expect("a gen item"))
    }

    const PLATE: &str = "gen m(ys: vec[3]) { mu ~ normal(0.0, 1.0); for i in 0..3 { z[i] ~ flip(0.4) via enum; \
                         y[i] ~ normal(if z[i] { mu } else { -mu }, 1.0); } }";

    #[test]
    fn an_enumerated_choice_read_only_in_its_own_iteration_is_summable() {
        assert_eq!(summable(PLATE), ["z"]);
        let categorical = "gen m() { for i in 0..3 { c[i] ~ categorical([0.2, 0.8]) via enum; \
                           let w = [1.0, 2.0][c[i]]; y[i] ~ normal(w, 1.0); } }";
        assert_eq!(summable(categorical), ["c"]);
    }

    #[test]
    fn a_choice_another_iteration_or_the_rest_of_the_body_reads_is_not() {
        let markov = PLATE.replace("if z[i] {", "if z[i] && z[i - 1] {");
        assert!(summable(&markov).is_empty(), "z[i - 1] reads the previous iteration");
        let after = PLATE.replace("} }", "} x ~ normal(sum([1.0 for k in 0..3]), 1.0); let w = z; }");
        assert!(summable(&after).is_empty(), "z is read after the loop");
        let before = PLATE.replace("z[i] ~ flip", "let early = z[i]; z[i] ~ flip");
        assert!(summable(&before).is_empty(), "z[i] is read before it is drawn");
        let returns = PLATE.replace("y[i] ~", "if mu > 5.0 { return 1.0; } y[i] ~");
        assert!(summable(&returns).is_empty(), "the iteration may return");
        let shadowed = PLATE.replace("y[i] ~", "let z = [true, false, true]; y[i] ~");
        assert!(summable(&shadowed).is_empty(), "a `let` takes the name");
    }

    #[test]
    fn only_enum_choices_of_enumerable_distributions_indexed_by_the_loop_variable_qualify() {
        assert!(summable(&PLATE.replace("via enum", "via reinforce")).is_empty());
        assert!(summable(&PLATE.replace("via enum;", ";")).is_empty());
        assert!(summable(&PLATE.replace("flip(0.4) via enum", "poisson(0.4) via mvd")).is_empty());
        let nested = PLATE.replace("z[i] ~ flip(0.4) via enum;", "if mu > 0.0 { z[i] ~ flip(0.4) via enum; }");
        assert!(summable(&nested).is_empty(), "a choice inside an `if` is not directly in the loop body");
    }
}
