//! The canonical formatter: a syntax tree back to text in the one layout, comments kept.
//!
//! Layout: four-space indentation; one statement per line; spaces around binary operators
//! except `^`; the fewest parentheses that keep the tree (derived from the parser's
//! precedences); a blank line between `gen`/`fn` definitions and between groups of different
//! kinds of item (definitions; `param`/`data`/`let` declarations; `print`/`maximize`/`minimize`
//! commands), and elsewhere where the source had one or more (at most one). An `if`, `E { … }`
//! or `{ … }` whose blocks have no statements stays on one line while it fits in
//! [`MAX_WIDTH`] columns; `maximize … with { … }` breaks before `with` when it does not, and
//! the record literal that is a declaration's value puts each field on a line of its own.
//!
//! Comments are not in the tree: they come from the lexer with their spans. Before printing,
//! every comment is given one place (`CommentPlan`): on its own line before the first
//! item or statement that starts after it, at the end of the line where a node ends if it sat
//! on that line in the source, or before the closing brace of its block. A comment inside an
//! expression moves before the statement holding it. Printing is then a pure function of the
//! tree and the plan, so a piece can be tried on one line and printed again broken over
//! several lines without a comment being lost or repeated.
//!
//! The formatter never changes a program: parsing its output gives the same tree, doc
//! comments included.

use std::cmp::Reverse;
use std::collections::HashMap;

use super::ast::*;
use super::parser::parse;
use super::span::Span;
use super::token::{Comment, CommentKind};
use super::visit;
use crate::diagnostics::Diagnostic;

/// Lines longer than this break `maximize … with { … }` and keep blocks off one line.
pub const MAX_WIDTH: usize = 100;
const INDENT: &str = "    ";

/// Indexing and field access (and atoms) bind tighter than every operator.
const POSTFIX_PRECEDENCE: u8 = 9;
/// `if` is wrapped in parentheses wherever it is an operand: `(if c { a } else { b }) + 1`
/// parses without them, but reads as if the `+ 1` belonged to the `else` branch.
const IF_PRECEDENCE: u8 = 0;

/// Formats source text. A file with syntax errors is not formatted: its diagnostics are
/// returned instead.
///
/// Runs on a large stack (see [`crate::with_large_stack`]): parsing and printing recurse as
/// deep as the program nests.
pub fn format_source(text: &str) -> Result<String, Vec<Diagnostic>> {
    crate::with_large_stack(|| {
        let parsed = parse(text, 0);
        if !parsed.diagnostics.is_empty() {
            return Err(parsed.diagnostics);
        }
        Ok(format_program(&parsed.program, &parsed.comments, text))
    })
}

/// Prints a program in the canonical layout. `comments` and `source` are the lexer's comments
/// and the text the program was parsed from, with spans starting at offset 0; a tree built by
/// hand may pass no comments and `""` (its `doc`s are still printed).
///
/// The tree should be one the parser can produce (no `Error` items, which are copied from
/// `source` verbatim); recursion follows its depth, so call this on a large stack for deep
/// trees. The output is empty for an empty program and otherwise ends with one newline.
pub fn format_program(program: &Program, comments: &[Comment], source: &str) -> String {
    let plan = CommentPlan::new(program, comments, source);
    let mut printer = Printer {
        source,
        comments,
        plan: &plan,
        out: String::new(),
        indent: 0,
        column: 0,
        at_line_start: true,
        flat: false,
        overflowed: false,
    };
    printer.write_program(program);
    printer.finish()
}

// ---------------------------------------------------------------------------------------------
// Where each comment goes.

/// The place of every comment, decided before printing. Nodes are keyed by their source
/// offsets: no two items, statements or block values start (or end) at the same offset, and
/// no two blocks end at the same offset.
#[derive(Default)]
struct CommentPlan {
    /// On their own lines before the item, statement or block value starting at the key.
    leading: HashMap<u32, Vec<usize>>,
    /// At the end of the last line of the item, statement or block value ending at the key.
    trailing: HashMap<u32, Vec<usize>>,
    /// On their own lines before the closing brace of the block ending at the key.
    closing: HashMap<u32, Vec<usize>>,
    /// After the last item.
    end_of_file: Vec<usize>,
    /// `///` comments inside an item that has no body, by item start. Above the item they
    /// would become its documentation, so they stay inside it, right after its keyword.
    after_keyword: HashMap<u32, Vec<usize>>,
    /// The `///` comments an item's `doc` was read from, by item start. They are printed from
    /// `Item::doc`, not from here; their spans tell where the lines stood among other comments.
    doc_comments: HashMap<u32, Vec<Span>>,
}

/// A sequence of nodes that comments are placed among: the items of the file, or the
/// statements and value of one block.
struct Container {
    start: u32,
    end: u32,
    entries: Vec<Span>,
    scope: Scope,
}

#[derive(Clone, Copy, PartialEq)]
enum Scope {
    File,
    /// A block, by the end of its span.
    Block(u32),
}

impl CommentPlan {
    fn new(program: &Program, comments: &[Comment], source: &str) -> CommentPlan {
        let mut plan = CommentPlan::default();
        let is_doc_of_an_item = plan.take_doc_comments(program, comments);
        let containers = containers(program);

        let mut order: Vec<usize> = (0..comments.len()).filter(|&index| !is_doc_of_an_item[index]).collect();
        order.sort_by_key(|&index| comments[index].span.start);
        // One sweep in source order, keeping the stack of containers open at each comment:
        // blocks nest, so the innermost one holding a comment is on top.
        let mut open: Vec<&Container> = Vec::new();
        let mut next_container = 0;
        for index in order {
            let start = comments[index].span.start;
            while let Some(container) = containers.get(next_container).filter(|c| c.start <= start) {
                while open.last().is_some_and(|outer| outer.end <= container.start) {
                    open.pop();
                }
                open.push(container);
                next_container += 1;
            }
            while open.last().is_some_and(|container| container.end <= start) {
                open.pop();
            }
            match open.last() {
                Some(container) => plan.place(index, &comments[index], container, program, source),
                None => plan.end_of_file.push(index),
            }
        }
        plan
    }

    /// Finds the `///` comments that the parser attached to items (the rule of
    /// `parser::attach_docs`: those between the previous item and this one) and returns which
    /// comments they are. An item without `doc` keeps them as ordinary comments.
    fn take_doc_comments(&mut self, program: &Program, comments: &[Comment]) -> Vec<bool> {
        let mut is_doc_of_an_item = vec![false; comments.len()];
        let mut docs = comments.iter().enumerate().filter(|(_, comment)| comment.kind == CommentKind::Doc).peekable();
        let mut previous_end = 0;
        for item in &program.items {
            let mut attached = Vec::new();
            while let Some((index, doc)) = docs.next_if(|(_, doc)| doc.span.start < item.span.start) {
                if doc.span.start >= previous_end {
                    attached.push((index, doc.span));
                }
            }
            if item.doc.is_some() && !attached.is_empty() {
                for &(index, _) in &attached {
                    is_doc_of_an_item[index] = true;
                }
                self.doc_comments.insert(item.span.start, attached.into_iter().map(|(_, span)| span).collect());
            }
            previous_end = item.span.end;
        }
        is_doc_of_an_item
    }

    /// Places one comment within the innermost container holding it.
    fn place(&mut self, index: usize, comment: &Comment, container: &Container, program: &Program, source: &str) {
        let start = comment.span.start;
        let entries = &container.entries;
        let next = entries.partition_point(|entry| entry.end <= start);
        if let Some(entry) = entries.get(next).filter(|entry| entry.start < start) {
            // Inside an entry but in none of its blocks: in an expression or a header.
            match (container.scope, comment.kind, program.items.get(next)) {
                (Scope::File, CommentKind::Doc, Some(item)) => self.place_doc_inside(index, item),
                _ => push(&mut self.leading, entry.start, index),
            }
            return;
        }
        if let Some(previous) = next.checked_sub(1).and_then(|position| entries.get(position)) {
            let on_its_last_line =
                source.get(previous.end as usize..start as usize).is_some_and(|gap| !gap.contains('\n'));
            if on_its_last_line {
                push(&mut self.trailing, previous.end, index);
                return;
            }
        }
        match (entries.get(next), container.scope) {
            (Some(entry), _) => push(&mut self.leading, entry.start, index),
            (None, Scope::Block(end)) => push(&mut self.closing, end, index),
            (None, Scope::File) => self.end_of_file.push(index),
        }
    }

    /// A `///` comment inside an item (not its documentation) must stay inside it.
    fn place_doc_inside(&mut self, index: usize, item: &Item) {
        match &item.kind {
            ItemKind::Gen(def) | ItemKind::Fn(def) => match block_entries(&def.body).first() {
                Some(first) => push(&mut self.leading, first.start, index),
                None => push(&mut self.closing, def.body.span.end, index),
            },
            _ => push(&mut self.after_keyword, item.span.start, index),
        }
    }

    fn leading(&self, start: u32) -> &[usize] {
        self.leading.get(&start).map_or(&[], Vec::as_slice)
    }

    fn trailing(&self, end: u32) -> &[usize] {
        self.trailing.get(&end).map_or(&[], Vec::as_slice)
    }

    fn closing(&self, block_end: u32) -> &[usize] {
        self.closing.get(&block_end).map_or(&[], Vec::as_slice)
    }

    fn after_keyword(&self, item_start: u32) -> &[usize] {
        self.after_keyword.get(&item_start).map_or(&[], Vec::as_slice)
    }

    /// Whether printing `block` on one line would drop a comment.
    fn has_comments_in(&self, block: &Block) -> bool {
        !self.closing(block.span.end).is_empty()
            || block_entries(block)
                .iter()
                .any(|entry| !self.leading(entry.start).is_empty() || !self.trailing(entry.end).is_empty())
    }
}

fn push(map: &mut HashMap<u32, Vec<usize>>, key: u32, index: usize) {
    map.entry(key).or_default().push(index);
}

/// The file and every block in it, sorted by start (outer before inner).
fn containers(program: &Program) -> Vec<Container> {
    let mut blocks = Vec::new();
    for item in &program.items {
        match &item.kind {
            ItemKind::Gen(def) | ItemKind::Fn(def) => blocks_in_block(&def.body, &mut blocks),
            _ => visit::item_exprs(item).into_iter().for_each(|expr| blocks_in_expr(expr, &mut blocks)),
        }
    }
    let file = Container {
        start: 0,
        end: u32::MAX,
        entries: program.items.iter().map(|item| item.span).collect(),
        scope: Scope::File,
    };
    let mut containers: Vec<Container> = std::iter::once(file)
        .chain(blocks.into_iter().map(|block| Container {
            start: block.span.start,
            end: block.span.end,
            entries: block_entries(block),
            scope: Scope::Block(block.span.end),
        }))
        .collect();
    containers.sort_by_key(|container| (container.start, Reverse(container.end)));
    containers
}

/// The statements and value of a block, in order.
fn block_entries(block: &Block) -> Vec<Span> {
    block.stmts.iter().map(|stmt| stmt.span).chain(block.tail.iter().map(|tail| tail.span)).collect()
}

fn blocks_in_block<'a>(block: &'a Block, blocks: &mut Vec<&'a Block>) {
    blocks.push(block);
    for stmt in &block.stmts {
        match &stmt.kind {
            StmtKind::Let { value, .. } | StmtKind::Return(value) | StmtKind::Expr(value) => {
                blocks_in_expr(value, blocks)
            }
            StmtKind::Choice { address, dist, via } => {
                address.index.iter().for_each(|index| blocks_in_expr(index, blocks));
                blocks_in_expr(dist, blocks);
                via.iter().flat_map(|via| via.args.iter().flatten()).for_each(|arg| blocks_in_expr(&arg.value, blocks));
            }
            StmtKind::For { lo, hi, body, .. } => {
                blocks_in_expr(lo, blocks);
                blocks_in_expr(hi, blocks);
                blocks_in_block(body, blocks);
            }
        }
    }
    block.tail.iter().for_each(|tail| blocks_in_expr(tail, blocks));
}

fn blocks_in_expr<'a>(expr: &'a Expr, blocks: &mut Vec<&'a Block>) {
    match &expr.kind {
        ExprKind::Block(block) | ExprKind::Expect(block) => blocks_in_block(block, blocks),
        ExprKind::If { cond, then, otherwise } => {
            blocks_in_expr(cond, blocks);
            blocks_in_block(then, blocks);
            otherwise.iter().for_each(|otherwise| blocks_in_expr(otherwise, blocks));
        }
        _ => visit::child_exprs(expr).into_iter().for_each(|child| blocks_in_expr(child, blocks)),
    }
}

// ---------------------------------------------------------------------------------------------
// Printing.

/// Items of different groups are separated by a blank line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ItemGroup {
    Definition,
    Declaration,
    Command,
}

impl ItemGroup {
    fn of(item: &Item) -> ItemGroup {
        match item.kind {
            ItemKind::Gen(_) | ItemKind::Fn(_) => ItemGroup::Definition,
            ItemKind::Param(_) | ItemKind::Data(_) | ItemKind::Let(_) | ItemKind::Type(_) => ItemGroup::Declaration,
            ItemKind::Print(_) | ItemKind::Optimize(_) | ItemKind::Error => ItemGroup::Command,
        }
    }
}

struct Printer<'a> {
    source: &'a str,
    comments: &'a [Comment],
    plan: &'a CommentPlan,
    out: String,
    indent: usize,
    /// Characters on the current line so far.
    column: usize,
    /// Nothing (not even the indentation) has been written on the current line.
    at_line_start: bool,
    /// Trying to print a piece on one line (see [`Printer::try_flat`]).
    flat: bool,
    /// The piece being tried did not fit on one line.
    overflowed: bool,
}

/// Where the output stood, to undo a layout that did not work out.
#[derive(Clone, Copy)]
struct Checkpoint {
    len: usize,
    column: usize,
    at_line_start: bool,
}

impl Printer<'_> {
    // --- Output primitives.

    fn write(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if self.at_line_start {
            for _ in 0..self.indent {
                self.out.push_str(INDENT);
            }
            self.column = self.indent * INDENT.len();
            self.at_line_start = false;
        }
        self.out.push_str(text);
        // Only multi-line block comments contain line breaks.
        match text.rfind('\n') {
            Some(position) => self.column = text[position + 1..].chars().count(),
            None => self.column += text.chars().count(),
        }
        if self.flat && self.column > MAX_WIDTH {
            self.overflowed = true;
        }
    }

    fn end_line(&mut self) {
        if self.flat {
            self.overflowed = true;
        }
        self.out.push('\n');
        self.column = 0;
        self.at_line_start = true;
    }

    fn checkpoint(&self) -> Checkpoint {
        Checkpoint { len: self.out.len(), column: self.column, at_line_start: self.at_line_start }
    }

    fn rollback(&mut self, checkpoint: Checkpoint) {
        self.out.truncate(checkpoint.len);
        self.column = checkpoint.column;
        self.at_line_start = checkpoint.at_line_start;
    }

    /// Prints `piece` on the current line if it fits: no statements, no comments, and the line
    /// stays within [`MAX_WIDTH`]. Otherwise prints nothing and returns false, and the caller
    /// prints the piece over several lines. Inside another attempt the piece is simply printed
    /// flat: the outermost attempt decides, so each piece is tried once per layout of its
    /// parent and the work stays proportional to nesting depth times size.
    fn try_flat(&mut self, piece: impl FnOnce(&mut Self)) -> bool {
        if self.flat {
            piece(self);
            return true;
        }
        let checkpoint = self.checkpoint();
        self.flat = true;
        self.overflowed = false;
        piece(self);
        self.flat = false;
        if self.overflowed {
            self.rollback(checkpoint);
            return false;
        }
        true
    }

    fn finish(mut self) -> String {
        let content = self.out.trim_end().len();
        self.out.truncate(content);
        if !self.out.is_empty() {
            self.out.push('\n');
        }
        self.out
    }

    // --- Comments and blank lines.

    fn comment_text(&self, index: usize) -> String {
        let span = self.comments[index].span;
        self.source.get(span.range()).unwrap_or("").trim_end().replace("\r\n", "\n")
    }

    /// Whether the source has a blank line somewhere between `from` and `to`.
    fn blank_line_in_source(&self, from: u32, to: u32) -> bool {
        let Some(gap) = self.source.get(from as usize..to as usize) else { return false };
        // The whole lines strictly between the line of `from` and the line of `to`.
        let lines: Vec<&str> = gap.split('\n').collect();
        lines.len() > 2 && lines[1..lines.len() - 1].iter().any(|line| line.trim().is_empty())
    }

    /// Starts a new group of lines after the one ending at `previous_end` (if any) with a
    /// blank line where the source had one, or where `force` asks for one.
    fn separate(&mut self, previous_end: Option<u32>, start: u32, force: bool) {
        if let Some(end) = previous_end {
            if force || self.blank_line_in_source(end, start) {
                self.out.push('\n');
            }
        }
    }

    fn write_comment_line(&mut self, index: usize, previous_end: &mut Option<u32>) {
        let span = self.comments[index].span;
        self.separate(*previous_end, span.start, false);
        let text = self.comment_text(index);
        self.write(&text);
        self.end_line();
        *previous_end = Some(span.end);
    }

    /// The comments before the node starting at `start`, then the blank line before the node.
    fn write_leading_comments(&mut self, start: u32, previous_end: &mut Option<u32>) {
        let plan = self.plan;
        for &index in plan.leading(start) {
            self.write_comment_line(index, previous_end);
        }
        self.separate(*previous_end, start, false);
    }

    fn write_trailing_comments(&mut self, end: u32, previous_end: &mut Option<u32>) {
        *previous_end = Some(end);
        let plan = self.plan;
        for &index in plan.trailing(end) {
            self.write(" ");
            let text = self.comment_text(index);
            self.write(&text);
            *previous_end = Some(self.comments[index].span.end);
        }
    }

    // --- Items.

    fn write_program(&mut self, program: &Program) {
        let mut previous_group = None;
        let mut previous_end = None;
        for item in &program.items {
            let group = ItemGroup::of(item);
            let force_blank =
                previous_group.is_some_and(|previous| previous != group || group == ItemGroup::Definition);
            self.write_item_preamble(item, &mut previous_end, force_blank);
            self.write_item(item);
            self.write_trailing_comments(item.span.end, &mut previous_end);
            self.end_line();
            previous_group = Some(group);
        }
        let plan = self.plan;
        for &index in &plan.end_of_file {
            self.write_comment_line(index, &mut previous_end);
        }
    }

    /// The comment and documentation lines above an item, in their source order.
    fn write_item_preamble(&mut self, item: &Item, previous_end: &mut Option<u32>, force_blank: bool) {
        enum Line<'d> {
            Comment(usize),
            Doc(&'d str),
        }
        let plan = self.plan;
        let mut lines: Vec<(Span, Line<'_>)> = plan
            .leading(item.span.start)
            .iter()
            .map(|&index| (self.comments[index].span, Line::Comment(index)))
            .collect();
        if let Some(doc) = &item.doc {
            let doc_lines: Vec<&str> = doc.split('\n').collect();
            let doc_spans = plan.doc_comments.get(&item.span.start).filter(|spans| spans.len() == doc_lines.len());
            for (position, text) in doc_lines.into_iter().enumerate() {
                let at_item = Span::new(item.span.start, item.span.start);
                let span = doc_spans.and_then(|spans| spans.get(position)).copied().unwrap_or(at_item);
                lines.push((span, Line::Doc(text)));
            }
        }
        lines.sort_by_key(|(span, _)| span.start);
        let mut force_blank = force_blank;
        for (span, line) in lines {
            self.separate(*previous_end, span.start, force_blank);
            force_blank = false;
            match line {
                Line::Comment(index) => {
                    let text = self.comment_text(index);
                    self.write(&text);
                }
                Line::Doc(text) => self.write(&doc_comment(text)),
            }
            self.end_line();
            *previous_end = Some(span.end);
        }
        self.separate(*previous_end, item.span.start, force_blank);
    }

    fn write_item(&mut self, item: &Item) {
        match &item.kind {
            ItemKind::Gen(def) => self.write_definition(item, "gen", def),
            ItemKind::Fn(def) => self.write_definition(item, "fn", def),
            ItemKind::Param(binding) => self.write_binding(item, "param", binding),
            ItemKind::Data(binding) => self.write_binding(item, "data", binding),
            ItemKind::Let(binding) => self.write_binding(item, "let", binding),
            ItemKind::Type(alias) => {
                let continued = self.write_keyword(item, "type");
                self.write(&alias.name.name);
                self.write(" = ");
                self.write(&type_text(&alias.ty));
                self.write(";");
                self.end_keyword(continued);
            }
            ItemKind::Print(exprs) => {
                let continued = self.write_keyword(item, "print");
                self.write_separated(exprs, |printer, expr| printer.write_expr(expr));
                self.write(";");
                self.end_keyword(continued);
            }
            ItemKind::Optimize(optimize) => self.write_optimize(item, optimize),
            ItemKind::Error => {
                let text = self.source.get(item.span.range()).unwrap_or("").to_string();
                self.write(&text);
            }
        }
    }

    /// Writes an item's keyword and the `///` comments that must stay inside the item; returns
    /// whether those pushed the rest of the item onto a continuation line.
    fn write_keyword(&mut self, item: &Item, keyword: &str) -> bool {
        self.write(keyword);
        let plan = self.plan;
        let inside = plan.after_keyword(item.span.start);
        if inside.is_empty() {
            self.write(" ");
            return false;
        }
        for &index in inside {
            self.write(" ");
            let text = self.comment_text(index);
            self.write(&text);
            self.end_line();
        }
        self.indent += 1;
        true
    }

    fn end_keyword(&mut self, continued: bool) {
        if continued {
            self.indent -= 1;
        }
    }

    fn write_definition(&mut self, item: &Item, keyword: &str, def: &FnDef) {
        let continued = self.write_keyword(item, keyword);
        self.write(&def.name.name);
        self.write("(");
        self.write_separated(&def.params, |printer, param| {
            printer.write(&param.name.name);
            if let Some(ty) = &param.ty {
                printer.write(": ");
                printer.write(&type_text(ty));
            }
        });
        self.write(")");
        if let Some(ret) = &def.ret {
            self.write(" -> ");
            self.write(&type_text(ret));
        }
        self.write(" ");
        self.write_broken_block(&def.body);
        self.end_keyword(continued);
    }

    fn write_binding(&mut self, item: &Item, keyword: &str, binding: &Binding) {
        let continued = self.write_keyword(item, keyword);
        self.write(&binding.name.name);
        if let Some(ty) = &binding.ty {
            self.write(": ");
            self.write(&type_text(ty));
        }
        self.write(" = ");
        self.write_value(&binding.value);
        self.write(";");
        self.end_keyword(continued);
    }

    /// A declaration's value; a record literal that does not fit on the line gets a line per
    /// field (the initial value of a record `param`, a network's weights), and so on inside.
    fn write_value(&mut self, value: &Expr) {
        let ExprKind::Record(fields) = &value.kind else { return self.write_expr(value) };
        if fields.is_empty() || self.try_flat(|printer| printer.write_expr(value)) {
            return;
        }
        self.write("{");
        self.end_line();
        self.indent += 1;
        for field in fields {
            self.write(&field.name.name);
            self.write(": ");
            self.write_value(&field.value);
            self.write(",");
            self.end_line();
        }
        self.indent -= 1;
        self.write("}");
    }

    fn write_optimize(&mut self, item: &Item, optimize: &Optimize) {
        let keyword = match optimize.direction {
            Direction::Maximize => "maximize",
            Direction::Minimize => "minimize",
        };
        let continued = self.write_keyword(item, keyword);
        self.write_separated(&optimize.objectives, |printer, objective| {
            printer.write_expr(&objective.expr);
            if let Some(names) = &objective.wrt {
                printer.write(" wrt [");
                printer.write_separated(names, |printer, name| printer.write(&name.name));
                printer.write("]");
            }
        });
        if optimize.options.is_empty() {
            self.write(";");
            self.end_keyword(continued);
            return;
        }
        let before_with = self.checkpoint();
        let line_start = self.out[..before_with.len].rfind('\n').map_or(0, |position| position + 1);
        self.write(" ");
        self.write_options(&optimize.options);
        let widest = self.out[line_start..].split('\n').map(|line| line.chars().count()).max().unwrap_or(0);
        if widest > MAX_WIDTH {
            self.rollback(before_with);
            self.end_line();
            self.indent += 1;
            self.write_options(&optimize.options);
            self.indent -= 1;
        }
        self.end_keyword(continued);
    }

    fn write_options(&mut self, options: &[Field]) {
        self.write("with { ");
        self.write_fields(options);
        self.write(" };");
    }

    // --- Blocks and statements.

    /// `{ value }` or `{}` on the current line; only while trying a flat layout.
    fn write_flat_block(&mut self, block: &Block) {
        if !block.stmts.is_empty() || self.plan.has_comments_in(block) {
            self.overflowed = true;
            return;
        }
        match &block.tail {
            None => self.write("{}"),
            Some(tail) => {
                self.write("{ ");
                self.write_expr(tail);
                self.write(" }");
            }
        }
    }

    /// A block over several lines (`{}` if it is empty and holds no comment).
    fn write_broken_block(&mut self, block: &Block) {
        if block.stmts.is_empty() && block.tail.is_none() && self.plan.closing(block.span.end).is_empty() {
            self.write("{}");
            return;
        }
        self.write("{");
        self.end_line();
        self.indent += 1;
        let mut previous_end = None;
        for (position, stmt) in block.stmts.iter().enumerate() {
            self.write_leading_comments(stmt.span.start, &mut previous_end);
            let next_starts_with = match block.stmts.get(position + 1) {
                Some(next) => Some(stmt_leading_symbol(next)),
                None => block.tail.as_deref().map(leading_symbol),
            };
            self.write_stmt(stmt, next_starts_with);
            self.write_trailing_comments(stmt.span.end, &mut previous_end);
            self.end_line();
        }
        if let Some(tail) = &block.tail {
            self.write_leading_comments(tail.span.start, &mut previous_end);
            self.write_expr(tail);
            self.write_trailing_comments(tail.span.end, &mut previous_end);
            self.end_line();
        }
        let plan = self.plan;
        for &index in plan.closing(block.span.end) {
            self.write_comment_line(index, &mut previous_end);
        }
        self.indent -= 1;
        self.write("}");
    }

    /// A block in expression position: on one line if it fits, else over several.
    fn write_block_expr(&mut self, block: &Block) {
        if !self.try_flat(|printer| printer.write_flat_block(block)) {
            self.write_broken_block(block);
        }
    }

    /// `next_starts_with` is `None` for the last part of a block, else the symbol the next
    /// statement or value starts with.
    fn write_stmt(&mut self, stmt: &Stmt, next_starts_with: Option<Option<char>>) {
        match &stmt.kind {
            StmtKind::Let { pattern, ty, value } => {
                self.write("let ");
                self.write(&pattern_text(pattern));
                if let Some(ty) = ty {
                    self.write(": ");
                    self.write(&type_text(ty));
                }
                self.write(" = ");
                self.write_expr(value);
                self.write(";");
            }
            StmtKind::Choice { address, dist, via } => {
                self.write(&address.name.name);
                if let Some(index) = &address.index {
                    self.write("[");
                    self.write_expr(index);
                    self.write("]");
                }
                self.write(" ~ ");
                self.write_expr(dist);
                if let Some(via) = via {
                    self.write(" via ");
                    self.write(&via.estimator.name);
                    if let Some(args) = &via.args {
                        self.write("(");
                        self.write_args(args);
                        self.write(")");
                    }
                }
                self.write(";");
            }
            StmtKind::For { var, lo, hi, body } => {
                self.write("for ");
                self.write(&pattern_text(var));
                self.write(" in ");
                self.write_expr(lo);
                self.write("..");
                self.write_expr(hi);
                self.write(" ");
                self.write_broken_block(body);
            }
            StmtKind::Return(value) => {
                self.write("return ");
                self.write_expr(value);
                self.write(";");
            }
            StmtKind::Expr(expr) => {
                self.write_expr(expr);
                // A block-like statement needs no `;`, unless it is the last part of its block
                // (it would become the block's value) or the next part would continue it as an
                // expression: `[…]` would index it, `-x` would subtract from it.
                let needs_semicolon = match next_starts_with {
                    None => true,
                    Some(symbol) => matches!(symbol, Some('[' | '-')),
                };
                if !expr.kind.is_block_like() || needs_semicolon {
                    self.write(";");
                }
            }
        }
    }

    // --- Expressions.

    fn write_expr(&mut self, expr: &Expr) {
        if self.flat && self.overflowed {
            return;
        }
        match &expr.kind {
            ExprKind::Int(value) => self.write(&value.to_string()),
            ExprKind::Real(value) => self.write(&real_text(*value)),
            ExprKind::Bool(value) => self.write(if *value { "true" } else { "false" }),
            ExprKind::Str(value) => self.write(&string_literal(value)),
            ExprKind::Name(name) => self.write(name),
            ExprKind::Unary(op, operand) => {
                let parenthesise = unary_operand_needs_parens(operand);
                match op {
                    UnaryOp::Neg => self.write("-"),
                    UnaryOp::Not => self.write("!"),
                }
                // `- -x` rather than `--x`, which reads as a decrement.
                if *op == UnaryOp::Neg && !parenthesise && leading_symbol(operand) == Some('-') {
                    self.write(" ");
                }
                self.write_operand(operand, parenthesise);
            }
            ExprKind::Binary(op, lhs, rhs) => {
                self.write_operand(lhs, left_operand_needs_parens(*op, lhs));
                if *op == BinaryOp::Pow {
                    self.write("^");
                } else {
                    self.write(" ");
                    self.write(op.symbol());
                    self.write(" ");
                }
                self.write_operand(rhs, right_operand_needs_parens(*op, rhs));
            }
            ExprKind::Call { callee, args } => {
                self.write(&callee.name);
                self.write("(");
                self.write_args(args);
                self.write(")");
            }
            ExprKind::Index { base, indices } => {
                self.write_operand(base, postfix_base_needs_parens(base, false));
                self.write("[");
                self.write_separated(indices, |printer, index| printer.write_expr(index));
                self.write("]");
            }
            ExprKind::Range { lo, hi } => {
                if let Some(lo) = lo {
                    self.write_expr(lo);
                }
                self.write("..");
                if let Some(hi) = hi {
                    self.write_expr(hi);
                }
            }
            ExprKind::Field { base, field } => {
                self.write_operand(base, postfix_base_needs_parens(base, is_tuple_field(&field.name)));
                self.write(".");
                self.write(&field.name);
            }
            ExprKind::Vector(parts) => {
                self.write("[");
                self.write_separated(parts, |printer, part| printer.write_expr(part));
                self.write("]");
            }
            ExprKind::Comprehension { body, var, lo, hi } => {
                self.write("[");
                self.write_expr(body);
                self.write(" for ");
                self.write(&pattern_text(var));
                self.write(" in ");
                self.write_expr(lo);
                self.write("..");
                self.write_expr(hi);
                self.write("]");
            }
            ExprKind::Record(fields) => {
                self.write("{ ");
                self.write_fields(fields);
                self.write(" }");
            }
            ExprKind::Tuple(parts) => {
                self.write("(");
                self.write_separated(parts, |printer, part| printer.write_expr(part));
                // `(a,)` is a one-element tuple; `(a)` is just `a`.
                if parts.len() == 1 {
                    self.write(",");
                }
                self.write(")");
            }
            ExprKind::Block(block) => self.write_block_expr(block),
            ExprKind::Expect(block) => {
                self.write("E ");
                self.write_block_expr(block);
            }
            ExprKind::If { cond, then, otherwise } => {
                let otherwise = otherwise.as_deref();
                if !self.try_flat(|printer| printer.write_if(cond, then, otherwise)) {
                    self.write_if(cond, then, otherwise);
                }
            }
        }
    }

    /// `if … { … } else if … { … } else { … }`, every block on one line when trying the flat
    /// layout, every block over several lines otherwise.
    fn write_if(&mut self, cond: &Expr, then: &Block, otherwise: Option<&Expr>) {
        self.write("if ");
        self.write_expr(cond);
        self.write(" ");
        self.write_if_block(then);
        let Some(otherwise) = otherwise else { return };
        self.write(" else ");
        match &otherwise.kind {
            ExprKind::If { cond, then, otherwise } => self.write_if(cond, then, otherwise.as_deref()),
            ExprKind::Block(block) => self.write_if_block(block),
            // The parser only builds `else` with a block or another `if`.
            _ => self.write_expr(otherwise),
        }
    }

    fn write_if_block(&mut self, block: &Block) {
        if self.flat {
            self.write_flat_block(block);
        } else {
            self.write_broken_block(block);
        }
    }

    fn write_operand(&mut self, expr: &Expr, parenthesise: bool) {
        if parenthesise {
            self.write("(");
            self.write_expr(expr);
            self.write(")");
        } else {
            self.write_expr(expr);
        }
    }

    fn write_args(&mut self, args: &[Arg]) {
        self.write_separated(args, |printer, arg| {
            if let Some(name) = &arg.name {
                printer.write(&name.name);
                printer.write(": ");
            }
            printer.write_expr(&arg.value);
        });
    }

    fn write_fields(&mut self, fields: &[Field]) {
        self.write_separated(fields, |printer, field| {
            printer.write(&field.name.name);
            printer.write(": ");
            printer.write_expr(&field.value);
        });
    }

    fn write_separated<T>(&mut self, items: &[T], mut write_one: impl FnMut(&mut Self, &T)) {
        for (position, item) in items.iter().enumerate() {
            if position > 0 {
                self.write(", ");
            }
            write_one(self, item);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parentheses: the parser's grammar, read backwards.

/// How tightly the printed expression binds, on the scale of [`BinaryOp::precedence`].
fn precedence(expr: &Expr) -> u8 {
    match &expr.kind {
        ExprKind::Binary(op, ..) => op.precedence(),
        ExprKind::Unary(..) => UNARY_PRECEDENCE,
        // Only a hand-built tree has negative literals; they print as a prefix minus.
        ExprKind::Int(value) if *value < 0 => UNARY_PRECEDENCE,
        ExprKind::Real(value) if value.is_sign_negative() => UNARY_PRECEDENCE,
        ExprKind::If { .. } => IF_PRECEDENCE,
        _ => POSTFIX_PRECEDENCE,
    }
}

fn left_operand_needs_parens(op: BinaryOp, lhs: &Expr) -> bool {
    if op.is_right_associative() {
        precedence(lhs) <= op.precedence()
    } else {
        precedence(lhs) < op.precedence()
    }
}

fn right_operand_needs_parens(op: BinaryOp, rhs: &Expr) -> bool {
    if op == BinaryOp::Pow {
        // The exponent is a prefix expression: `2^-1`, `a^b^c`.
        precedence(rhs) < UNARY_PRECEDENCE
    } else if op.is_right_associative() {
        precedence(rhs) < op.precedence()
    } else {
        precedence(rhs) <= op.precedence()
    }
}

/// The operand of `-` and `!` is itself a prefix expression or a power: `-x^2`, `- -x`.
fn unary_operand_needs_parens(operand: &Expr) -> bool {
    precedence(operand) < UNARY_PRECEDENCE
}

/// The base of `[…]` or `.field` must be an atom or another postfix form. Before a numeric
/// field, a base that ends in a number needs parentheses too: the lexer reads `t.0.1` as `t`,
/// `.`, `0.1`, and `(1).0` without them is the real `1.0`.
fn postfix_base_needs_parens(base: &Expr, numeric_field: bool) -> bool {
    let ends_in_number = match &base.kind {
        ExprKind::Int(_) => true,
        ExprKind::Field { field, .. } => is_tuple_field(&field.name),
        _ => false,
    };
    precedence(base) < POSTFIX_PRECEDENCE || (numeric_field && ends_in_number)
}

fn is_tuple_field(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_digit())
}

/// The symbol a printed expression starts with, if it is one that matters after a statement:
/// `-` or `[` would continue the expression before it (and `(` or `!` would not).
fn leading_symbol(expr: &Expr) -> Option<char> {
    let mut leftmost = expr;
    loop {
        match &leftmost.kind {
            ExprKind::Unary(UnaryOp::Neg, _) => return Some('-'),
            ExprKind::Unary(UnaryOp::Not, _) => return Some('!'),
            ExprKind::Int(value) if *value < 0 => return Some('-'),
            ExprKind::Real(value) if value.is_sign_negative() => return Some('-'),
            ExprKind::Vector(_) | ExprKind::Comprehension { .. } => return Some('['),
            ExprKind::Binary(op, lhs, _) if !left_operand_needs_parens(*op, lhs) => leftmost = lhs,
            ExprKind::Index { base, .. } if !postfix_base_needs_parens(base, false) => leftmost = base,
            ExprKind::Field { base, field } if !postfix_base_needs_parens(base, is_tuple_field(&field.name)) => {
                leftmost = base
            }
            ExprKind::Binary(..) | ExprKind::Index { .. } | ExprKind::Field { .. } => return Some('('),
            _ => return None,
        }
    }
}

fn stmt_leading_symbol(stmt: &Stmt) -> Option<char> {
    match &stmt.kind {
        StmtKind::Expr(expr) => leading_symbol(expr),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens.

fn type_text(ty: &TypeExpr) -> String {
    match &ty.kind {
        TypeExprKind::Named(name) => name.name.clone(),
        TypeExprKind::Vec(n) => format!("vec[{}]", dim_text(n)),
        TypeExprKind::Mat(m, n) => format!("mat[{}, {}]", dim_text(m), dim_text(n)),
        TypeExprKind::Array(element, n) => format!("[{}; {}]", type_text(element), dim_text(n)),
        TypeExprKind::Tuple(parts) => tuple_text(parts.iter().map(type_text).collect()),
        TypeExprKind::Record(fields) if fields.is_empty() => "{}".to_string(),
        TypeExprKind::Record(fields) => {
            let fields: Vec<String> =
                fields.iter().map(|(name, ty)| format!("{}: {}", name.name, type_text(ty))).collect();
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
        Pattern::Tuple(parts, _) => tuple_text(parts.iter().map(pattern_text).collect()),
    }
}

/// `()`, `(a,)`, `(a, b)`.
fn tuple_text(parts: Vec<String>) -> String {
    match parts.as_slice() {
        [one] => format!("({one},)"),
        _ => format!("({})", parts.join(", ")),
    }
}

fn doc_comment(line: &str) -> String {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        "///".to_string()
    } else {
        format!("/// {line}")
    }
}

/// The shortest text that reads back as exactly `x` and lexes as a real: Rust's shortest
/// round-trip representation, which always has a `.` or an exponent for finite values
/// (`1.0`, `0.001`, `1e-300`). Infinities and NaN never come from the parser.
fn real_text(x: f64) -> String {
    let text = format!("{x:?}");
    if text.contains(['.', 'e']) || !x.is_finite() {
        text
    } else {
        format!("{text}.0")
    }
}

/// A string literal whose value, after the lexer's unescaping, is `value`.
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
