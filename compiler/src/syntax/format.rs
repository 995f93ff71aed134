//! The formatter: a syntax tree back to text in the one canonical layout, comments kept.
//!
//! Layout: four-space indentation; one statement per line; spaces around binary operators
//! except `^`; the fewest parentheses that keep the tree (derived from the parser's
//! precedences); a blank line around `gen`/`fn` definitions, and elsewhere where the source
//! had one (at most one). A block without statements whose value fits on the line stays on
//! one line: `if b { 0.0 } else { -theta / 2.0 }`.
//!
//! Comments are not in the tree; they come from the lexer with their spans. Each one is
//! printed before the first item or statement that starts after it, and one that ends a
//! source line after code stays at the end of that line. A comment inside an expression
//! therefore moves before the next statement, but no comment is lost or repeated.
//! The formatter never changes a program's meaning: parsing its output gives the same tree.

use super::ast::*;
use super::parser::parse;
use super::span::Span;
use super::token::Comment;
use crate::diagnostics::Diagnostic;

/// Lines longer than this break `maximize … with { … }` onto a continuation line.
const MAX_WIDTH: usize = 100;
const INDENT: &str = "    ";

/// Formats source text; a file with syntax errors is returned as its diagnostics.
pub fn format_source(text: &str) -> Result<String, Vec<Diagnostic>> {
    let parsed = parse(text, 0);
    if !parsed.diagnostics.is_empty() {
        return Err(parsed.diagnostics);
    }
    Ok(format_program(&parsed.program, &parsed.comments, text))
}

/// Prints a parsed program. `comments` and `source` are the lexer's comments and the text the
/// program was parsed from (spans from offset 0); a generated tree may pass none and `""`.
pub fn format_program(program: &Program, comments: &[Comment], source: &str) -> String {
    let mut printer = Printer { source, comments, next_comment: 0, out: String::new(), last_end: 0 };
    let mut previous_kind: Option<bool> = None;
    for item in &program.items {
        let is_definition = matches!(item.kind, ItemKind::Gen(_) | ItemKind::Fn(_));
        let force_blank = previous_kind.is_some_and(|was_definition| was_definition || is_definition);
        printer.leading_comments(item.span.start, 0, force_blank);
        let text = printer.item(item);
        printer.out.push_str(&text);
        printer.last_end = item.span.end;
        printer.trailing_comment();
        printer.out.push('\n');
        previous_kind = Some(is_definition);
    }
    printer.comments_before(u32::MAX, 0, false);
    let trimmed = printer.out.trim_end().len();
    printer.out.truncate(trimmed);
    if !printer.out.is_empty() {
        printer.out.push('\n');
    }
    printer.out
}

struct Printer<'a> {
    source: &'a str,
    comments: &'a [Comment],
    next_comment: usize,
    out: String,
    /// Where the last printed node or comment ended in the source.
    last_end: u32,
}

impl Printer<'_> {
    fn text(&self, span: Span) -> &str {
        self.source.get(span.range()).unwrap_or("")
    }

    fn blank_line_between(&self, start: u32, end: u32) -> bool {
        if self.last_end == 0 && self.out.is_empty() {
            return false;
        }
        self.source.get(start as usize..end as usize).is_some_and(|gap| gap.matches('\n').count() >= 2)
    }

    /// Prints the comments that start before `position`, each on its own line at `depth`,
    /// then starts the line of the node at `position`; one blank line is kept where the source
    /// had any, or where `force_blank` asks for one before the node's group.
    fn leading_comments(&mut self, position: u32, depth: usize, force_blank: bool) {
        let printed_any = self.comments_before(position, depth, force_blank);
        let blank = self.blank_line_between(self.last_end, position) || (!printed_any && force_blank);
        self.start_line(blank, depth);
    }

    /// Prints every comment that starts before `position` on its own line; returns whether
    /// there was one.
    fn comments_before(&mut self, position: u32, depth: usize, force_blank: bool) -> bool {
        let mut first = true;
        while let Some(comment) = self.comments.get(self.next_comment).filter(|c| c.span.start < position) {
            let blank = self.blank_line_between(self.last_end, comment.span.start) || (first && force_blank);
            self.start_line(blank, depth);
            let text = self.text(comment.span).trim_end().to_string();
            self.out.push_str(&text);
            self.out.push('\n');
            self.last_end = comment.span.end;
            self.next_comment += 1;
            first = false;
        }
        !first
    }

    fn start_line(&mut self, blank: bool, depth: usize) {
        if blank && !self.out.is_empty() && !self.out.ends_with("{\n") {
            self.out.push('\n');
        }
        self.out.push_str(&INDENT.repeat(depth));
    }

    /// Comments inside the node just printed (within an expression, which prints on its own
    /// terms) and a comment that starts on the line where the node ended go at the end of its
    /// last line, in source order.
    fn trailing_comment(&mut self) {
        while let Some(comment) = self.comments.get(self.next_comment) {
            let inside = comment.span.start < self.last_end;
            let between = self.source.get(self.last_end as usize..comment.span.start as usize).unwrap_or("\n");
            let text = self.text(comment.span);
            let on_a_later_line = !inside && between.contains('\n');
            if text.contains('\n') || on_a_later_line {
                return;
            }
            let text = text.trim_end().to_string();
            self.out.push(' ');
            self.out.push_str(&text);
            self.last_end = self.last_end.max(comment.span.end);
            self.next_comment += 1;
        }
    }

    fn item(&mut self, item: &Item) -> String {
        match &item.kind {
            ItemKind::Gen(def) => self.definition("gen", def),
            ItemKind::Fn(def) => self.definition("fn", def),
            ItemKind::Param(binding) => self.binding("param", binding),
            ItemKind::Data(binding) => self.binding("data", binding),
            ItemKind::Let(binding) => self.binding("let", binding),
            ItemKind::Print(exprs) => {
                let values: Vec<String> = exprs.iter().map(|e| self.expr(e, 0)).collect();
                format!("print {};", values.join(", "))
            }
            ItemKind::Optimize(optimize) => self.optimize(optimize),
            ItemKind::Error => self.text(item.span).to_string(),
        }
    }

    fn definition(&mut self, keyword: &str, def: &FnDef) -> String {
        let params: Vec<String> = def
            .params
            .iter()
            .map(|param| match &param.ty {
                Some(ty) => format!("{}: {}", param.name.name, type_text(ty)),
                None => param.name.name.clone(),
            })
            .collect();
        let ret = def.ret.as_ref().map_or(String::new(), |ty| format!(" -> {}", type_text(ty)));
        let body = self.block(&def.body, 0, true);
        format!("{keyword} {}({}){ret} {body}", def.name.name, params.join(", "))
    }

    fn binding(&mut self, keyword: &str, binding: &Binding) -> String {
        let ty = binding.ty.as_ref().map_or(String::new(), |ty| format!(": {}", type_text(ty)));
        format!("{keyword} {}{ty} = {};", binding.name.name, self.expr(&binding.value, 0))
    }

    fn optimize(&mut self, optimize: &Optimize) -> String {
        let verb = match optimize.direction {
            Direction::Maximize => "maximize",
            Direction::Minimize => "minimize",
        };
        let objectives: Vec<String> = optimize
            .objectives
            .iter()
            .map(|objective| {
                let expr = self.expr(&objective.expr, 0);
                match &objective.wrt {
                    Some(names) => {
                        let names: Vec<&str> = names.iter().map(|n| n.name.as_str()).collect();
                        format!("{expr} wrt [{}]", names.join(", "))
                    }
                    None => expr,
                }
            })
            .collect();
        let head = format!("{verb} {}", objectives.join(", "));
        if optimize.options.is_empty() {
            return format!("{head};");
        }
        let options: Vec<String> =
            optimize.options.iter().map(|o| format!("{}: {}", o.name.name, self.expr(&o.value, 1))).collect();
        let with = format!("with {{ {} }};", options.join(", "));
        if head.len() + 1 + with.len() <= MAX_WIDTH && !head.contains('\n') {
            format!("{head} {with}")
        } else {
            format!("{head}\n{INDENT}{with}")
        }
    }

    /// A block at indentation `depth`. With `force_lines`, or when it has statements or
    /// comments, it spans lines; otherwise `{ value }` or `{}`.
    fn block(&mut self, block: &Block, depth: usize, force_lines: bool) -> String {
        let has_comments = self.comments.get(self.next_comment).is_some_and(|c| c.span.start < block.span.end);
        if !force_lines && block.stmts.is_empty() && !has_comments {
            match &block.tail {
                None => return "{}".to_string(),
                Some(tail) => {
                    let text = self.expr(tail, depth);
                    if !text.contains('\n') {
                        return format!("{{ {text} }}");
                    }
                }
            }
        }
        let saved = std::mem::take(&mut self.out);
        self.out.push_str("{\n");
        self.last_end = block.span.start + 1;
        let inner = depth + 1;
        for (position, stmt) in block.stmts.iter().enumerate() {
            self.leading_comments(stmt.span.start, inner, false);
            let next = match block.stmts.get(position + 1) {
                Some(Stmt { kind: StmtKind::Expr(expr), .. }) => Some(Some(expr)),
                Some(_) => Some(None),
                None => block.tail.as_deref().map(Some),
            };
            // A block-like statement needs no `;`, unless it is last in a block without a
            // value (it would become that value) or the next part could continue it as an
            // expression (`[…]` would index it, `-x` would subtract).
            let needs_semicolon = match next {
                None => true,
                Some(None) => false,
                Some(Some(expr)) => starts_like_a_continuation(expr),
            };
            let text = self.stmt(stmt, inner, needs_semicolon);
            self.out.push_str(&text);
            self.last_end = stmt.span.end;
            self.trailing_comment();
            self.out.push('\n');
        }
        if let Some(tail) = &block.tail {
            self.leading_comments(tail.span.start, inner, false);
            let text = self.expr(tail, inner);
            self.out.push_str(&text);
            self.last_end = tail.span.end;
            self.trailing_comment();
            self.out.push('\n');
        }
        self.comments_before(block.span.end.saturating_sub(1), inner, false);
        self.out.push_str(&INDENT.repeat(depth));
        self.out.push('}');
        self.last_end = block.span.end;
        std::mem::replace(&mut self.out, saved)
    }

    fn stmt(&mut self, stmt: &Stmt, depth: usize, block_like_needs_semicolon: bool) -> String {
        match &stmt.kind {
            StmtKind::Let { pattern, ty, value } => {
                let ty = ty.as_ref().map_or(String::new(), |ty| format!(": {}", type_text(ty)));
                format!("let {}{ty} = {};", pattern_text(pattern), self.expr(value, depth))
            }
            StmtKind::Choice { address, dist, via } => {
                let index = address.index.as_ref().map_or(String::new(), |i| format!("[{}]", self.expr(i, depth)));
                let dist = self.expr(dist, depth);
                let via = match via {
                    None => String::new(),
                    Some(via) => match &via.args {
                        None => format!(" via {}", via.estimator.name),
                        Some(args) => format!(" via {}({})", via.estimator.name, self.args(args, depth)),
                    },
                };
                format!("{}{index} ~ {dist}{via};", address.name.name)
            }
            StmtKind::For { var, lo, hi, body } => {
                let (lo, hi) = (self.expr(lo, depth), self.expr(hi, depth));
                format!("for {} in {lo}..{hi} {}", pattern_text(var), self.block(body, depth, true))
            }
            StmtKind::Return(expr) => format!("return {};", self.expr(expr, depth)),
            StmtKind::Expr(expr) => {
                let text = self.expr(expr, depth);
                if expr.kind.is_block_like() && !block_like_needs_semicolon {
                    text
                } else {
                    format!("{text};")
                }
            }
        }
    }

    fn args(&mut self, args: &[Arg], depth: usize) -> String {
        let parts: Vec<String> = args
            .iter()
            .map(|arg| match &arg.name {
                Some(name) => format!("{}: {}", name.name, self.expr(&arg.value, depth)),
                None => self.expr(&arg.value, depth),
            })
            .collect();
        parts.join(", ")
    }

    /// An expression at indentation `depth` (for the blocks inside it).
    fn expr(&mut self, expr: &Expr, depth: usize) -> String {
        match &expr.kind {
            ExprKind::Int(n) => n.to_string(),
            ExprKind::Real(x) => real_text(*x),
            ExprKind::Bool(b) => b.to_string(),
            ExprKind::Str(s) => string_literal(s),
            ExprKind::Name(name) => name.clone(),
            ExprKind::Unary(op, operand) => {
                let symbol = match op {
                    UnaryOp::Neg => "-",
                    UnaryOp::Not => "!",
                };
                let operand_text = self.operand(operand, UNARY_PRECEDENCE, depth);
                // `- -x`, not `--x`, for readability.
                let space = if operand_text.starts_with(symbol) { " " } else { "" };
                format!("{symbol}{space}{operand_text}")
            }
            ExprKind::Binary(op, lhs, rhs) => {
                let precedence = op.precedence();
                let (left_min, right_min) = if op.is_right_associative() {
                    (precedence + 1, UNARY_PRECEDENCE)
                } else {
                    (precedence, precedence + 1)
                };
                let left = self.operand(lhs, left_min, depth);
                let right = self.operand(rhs, right_min, depth);
                if *op == BinaryOp::Pow {
                    format!("{left}^{right}")
                } else {
                    format!("{left} {} {right}", op.symbol())
                }
            }
            ExprKind::Call { callee, args } => format!("{}({})", callee.name, self.args(args, depth)),
            ExprKind::Index { base, indices } => {
                let base = self.operand(base, POSTFIX_PRECEDENCE, depth);
                let indices: Vec<String> = indices.iter().map(|i| self.expr(i, depth)).collect();
                format!("{base}[{}]", indices.join(", "))
            }
            ExprKind::Field { base, field } => {
                format!("{}.{}", self.operand(base, POSTFIX_PRECEDENCE, depth), field.name)
            }
            ExprKind::Vector(parts) => {
                let parts: Vec<String> = parts.iter().map(|p| self.expr(p, depth)).collect();
                format!("[{}]", parts.join(", "))
            }
            ExprKind::Comprehension { body, var, lo, hi } => {
                let body = self.expr(body, depth);
                let (lo, hi) = (self.expr(lo, depth), self.expr(hi, depth));
                format!("[{body} for {} in {lo}..{hi}]", pattern_text(var))
            }
            ExprKind::Record(fields) => {
                let fields: Vec<String> =
                    fields.iter().map(|f| format!("{}: {}", f.name.name, self.expr(&f.value, depth))).collect();
                format!("{{ {} }}", fields.join(", "))
            }
            ExprKind::Tuple(parts) => {
                let texts: Vec<String> = parts.iter().map(|p| self.expr(p, depth)).collect();
                if texts.len() == 1 {
                    format!("({},)", texts[0])
                } else {
                    format!("({})", texts.join(", "))
                }
            }
            ExprKind::Block(block) => self.block(block, depth, false),
            ExprKind::Expect(block) => format!("E {}", self.block(block, depth, false)),
            ExprKind::If { cond, then, otherwise } => {
                let cond = self.expr(cond, depth);
                let then = self.block(then, depth, false);
                let mut text = format!("if {cond} {then}");
                if let Some(otherwise) = otherwise {
                    let otherwise = match &otherwise.kind {
                        ExprKind::Block(block) => self.block(block, depth, false),
                        _ => self.expr(otherwise, depth),
                    };
                    text = format!("{text} else {otherwise}");
                }
                text
            }
        }
    }

    /// An operand that needs parentheses if it binds looser than `minimum`.
    fn operand(&mut self, expr: &Expr, minimum: u8, depth: usize) -> String {
        let text = self.expr(expr, depth);
        if precedence(expr) < minimum {
            format!("({text})")
        } else {
            text
        }
    }
}

/// Whether the printed expression may begin with a token that would continue the expression
/// before it: `[` (indexing) or `-` (subtraction). Conservative: a parenthesised start is safe
/// but may be counted.
fn starts_like_a_continuation(expr: &Expr) -> bool {
    let mut leftmost = expr;
    loop {
        match &leftmost.kind {
            ExprKind::Vector(_) | ExprKind::Comprehension { .. } | ExprKind::Unary(UnaryOp::Neg, _) => return true,
            ExprKind::Binary(_, lhs, _) => leftmost = lhs,
            ExprKind::Index { base, .. } | ExprKind::Field { base, .. } => leftmost = base,
            _ => return false,
        }
    }
}

/// Indexing and field access bind tighter than every operator.
const POSTFIX_PRECEDENCE: u8 = 9;

fn precedence(expr: &Expr) -> u8 {
    match &expr.kind {
        ExprKind::Binary(op, ..) => op.precedence(),
        ExprKind::Unary(..) => UNARY_PRECEDENCE,
        // `if` and `E` extend as far as they can: wrap them when they are operands.
        ExprKind::If { .. } | ExprKind::Expect(_) => 0,
        _ => POSTFIX_PRECEDENCE,
    }
}

fn type_text(ty: &TypeExpr) -> String {
    match &ty.kind {
        TypeExprKind::Named(name) => name.name.clone(),
        TypeExprKind::Vec(n) => format!("vec[{}]", dim_text(n)),
        TypeExprKind::Mat(m, n) => format!("mat[{}, {}]", dim_text(m), dim_text(n)),
        TypeExprKind::Tuple(parts) => {
            let parts: Vec<String> = parts.iter().map(type_text).collect();
            if parts.len() == 1 {
                format!("({},)", parts[0])
            } else {
                format!("({})", parts.join(", "))
            }
        }
        TypeExprKind::Record(fields) => {
            let fields: Vec<String> = fields.iter().map(|(n, t)| format!("{}: {}", n.name, type_text(t))).collect();
            format!("{{ {} }}", fields.join(", "))
        }
    }
}

fn dim_text(dim: &Dim) -> String {
    match dim {
        Dim::Literal(n, _) => n.to_string(),
        Dim::Name(name) => name.name.clone(),
    }
}

fn pattern_text(pattern: &Pattern) -> String {
    match pattern {
        Pattern::Name(name) => name.name.clone(),
        Pattern::Wildcard(_) => "_".to_string(),
        Pattern::Tuple(parts, _) => {
            let parts: Vec<String> = parts.iter().map(pattern_text).collect();
            if parts.len() == 1 {
                format!("({},)", parts[0])
            } else {
                format!("({})", parts.join(", "))
            }
        }
    }
}

/// The shortest text that reads back as exactly `x` and lexes as a real (it always has a `.`
/// or an exponent).
fn real_text(x: f64) -> String {
    let text = format!("{x:?}");
    if text.contains('.') || text.contains('e') || !x.is_finite() {
        text
    } else {
        format!("{text}.0")
    }
}

fn string_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            other => out.push(other),
        }
    }
    out.push('"');
    out
}
