//! The parser (chumsky over the logos token stream): tokens to [`Program`].
//!
//! Precedence, loosest first: `||`, `&&`, comparisons, `++`, `+ -`, `* / @`, prefix `- !`,
//! `^` (right-associative, so `-x^2` is `-(x^2)` and `2^-1` is `2^(-1)`), then postfix
//! indexing and field access. Calls are first order: the callee is a name.
//!
//! Errors are recovered item by item: a broken item is skipped up to the next item keyword
//! outside any brackets, so one run reports the first error of every item. The parser only
//! builds syntax; meaning is the type checker's business.

use chumsky::input::{Input as _, ValueInput};
use chumsky::prelude::*;

use super::ast::*;
use super::span::Span;
use super::token::{lex, Comment, CommentKind, Token};
use crate::diagnostics::{Diagnostic, ErrorCode};

type Extra<'tokens, 'src> = extra::Err<Rich<'tokens, Token<'src>, SimpleSpan>>;

/// The result of parsing one file: the tree (with `Error` items where recovery happened),
/// its comments (for the formatter) and every diagnostic found.
#[derive(Debug)]
pub struct Parsed {
    pub program: Program,
    pub comments: Vec<Comment>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses one file whose first byte sits at offset `base` of the [`SourceMap`](crate::diagnostics::SourceMap).
///
/// Expressions may nest up to [`MAX_EXPRESSION_DEPTH`] deep, and later passes recurse that deep:
/// run on a large stack ([`crate::with_large_stack`]) when the input is untrusted.
pub fn parse(src: &str, base: u32) -> Parsed {
    let lexed = lex(src);
    let shift = |span: Span| Span::new(span.start + base, span.end + base);
    let comments: Vec<Comment> =
        lexed.comments.iter().map(|comment| Comment { kind: comment.kind, span: shift(comment.span) }).collect();
    let mut diagnostics: Vec<Diagnostic> = lexed.diagnostics.into_iter().map(|d| shift_diagnostic(d, base)).collect();
    // Unbalanced brackets (also after an unterminated string or comment) would send error
    // recovery into retries at every level (rustc, too, checks delimiters before parsing);
    // too deep nesting could exhaust the stack.
    let structural = [
        ErrorCode::NestingTooDeep,
        ErrorCode::MismatchedDelimiter,
        ErrorCode::UnclosedDelimiter,
        ErrorCode::UnterminatedString,
        ErrorCode::UnterminatedComment,
    ];
    if diagnostics.iter().any(|d| structural.contains(&d.code)) {
        return Parsed { program: Program::default(), comments, diagnostics };
    }

    let end = base as usize + src.len();
    let tokens: Vec<(Token<'_>, SimpleSpan)> =
        lexed.tokens.into_iter().map(|(token, span)| (token, shift(span).range().into())).collect();
    let input = tokens.as_slice().map((end..end).into(), |(token, span)| (token, span));
    let (items, errors) = program_parser().parse(input).into_output_errors();
    // An invalid token has been reported by the lexer already.
    let reported_by_lexer = |error: &&Rich<'_, Token<'_>, SimpleSpan>| matches!(error.found(), Some(Token::Error));
    diagnostics.extend(errors.iter().filter(|e| !reported_by_lexer(e)).map(|error| syntax_error(error, &tokens)));

    let mut program = Program { items: items.unwrap_or_default(), expr_count: 0 };
    if let Some(span) = too_deep(&program) {
        diagnostics.push(
            Diagnostic::error(ErrorCode::NestingTooDeep, "expression nested too deeply")
                .with_primary(span, format!("more than {MAX_EXPRESSION_DEPTH} operations inside one another"))
                .with_help("split the expression into named parts with `let`"),
        );
        return Parsed { program: Program::default(), comments, diagnostics };
    }
    attach_docs(&mut program, &comments, src, base);
    number_expressions(&mut program);
    Parsed { program, comments, diagnostics }
}

fn shift_diagnostic(mut diagnostic: Diagnostic, base: u32) -> Diagnostic {
    let shift = |span: &mut Span| *span = Span::new(span.start + base, span.end + base);
    if let Some(primary) = &mut diagnostic.primary {
        shift(&mut primary.span);
    }
    for label in &mut diagnostic.secondary {
        shift(&mut label.span);
    }
    diagnostic
}

const MISSING_SEMICOLON: &str = "expected `;` after this expression";

fn syntax_error(error: &Rich<'_, Token<'_>, SimpleSpan>, tokens: &[(Token<'_>, SimpleSpan)]) -> Diagnostic {
    let span = Span::from(*error.span());
    let mut diagnostic = match error.reason() {
        chumsky::error::RichReason::Custom(message) if message == MISSING_SEMICOLON => {
            Diagnostic::error(ErrorCode::MissingSemicolon, "missing `;`")
                .with_primary(span, MISSING_SEMICOLON)
                .with_help("only the last expression of a block may omit `;`: it is the block's value")
        }
        chumsky::error::RichReason::Custom(message) => {
            Diagnostic::error(ErrorCode::UnexpectedToken, message.clone()).with_primary(span, message.clone())
        }
        chumsky::error::RichReason::ExpectedFound { expected, found } => {
            let found = found.as_deref().map_or("end of input".to_string(), |token| token.to_string());
            let mut expected: Vec<String> = expected.iter().map(describe_pattern).collect();
            if expected.iter().any(|e| e == "an expression") {
                expected.retain(|e| e != "`-`" && e != "`!`");
            }
            // Any operator could continue an expression; listing them all hides what matters.
            let operators: Vec<String> = CONTINUATIONS.iter().map(|token| token.to_string()).collect();
            if expected.iter().any(|e| operators.contains(e)) {
                expected.retain(|e| !operators.contains(e));
                expected.push("an operator".to_string());
            }
            expected.sort();
            expected.dedup();
            let wants_semicolon = expected.iter().any(|e| e == "`;`");
            let wanted = match expected.as_slice() {
                [] => "something else".to_string(),
                [one] => one.clone(),
                [init @ .., last] => format!("{} or {last}", init.join(", ")),
            };
            let diagnostic = Diagnostic::error(ErrorCode::UnexpectedToken, format!("expected {wanted}, found {found}"))
                .with_primary(span, format!("unexpected {found}"));
            match tokens.iter().rev().find(|(_, token_span)| token_span.end <= span.start as usize) {
                Some((_, previous)) if wants_semicolon => {
                    let end = previous.end;
                    diagnostic.with_secondary(Span::from(end..end), "perhaps a `;` is missing here")
                }
                _ => diagnostic,
            }
        }
    };
    for (context, context_span) in error.contexts() {
        diagnostic = diagnostic
            .with_secondary(Span::from(*context_span), format!("while parsing {}", describe_pattern(context)));
    }
    diagnostic
}

fn describe_pattern(pattern: &chumsky::error::RichPattern<'_, Token<'_>>) -> String {
    use chumsky::error::RichPattern;
    match pattern {
        RichPattern::Token(token) => token.to_string(),
        RichPattern::Label(label) => label.to_string(),
        RichPattern::Identifier(name) => format!("`{name}`"),
        RichPattern::Any => "any token".to_string(),
        RichPattern::SomethingElse => "something else".to_string(),
        RichPattern::EndOfInput => "end of input".to_string(),
        _ => "something else".to_string(),
    }
}

/// Tokens that continue an expression: binary operators and postfix forms.
const CONTINUATIONS: [Token<'static>; 19] = [
    Token::OrOr,
    Token::AndAnd,
    Token::EqEq,
    Token::NotEq,
    Token::Lt,
    Token::Le,
    Token::Gt,
    Token::Ge,
    Token::PlusPlus,
    Token::Plus,
    Token::Minus,
    Token::Star,
    Token::Slash,
    Token::At,
    Token::Caret,
    Token::Dot,
    Token::LBracket,
    Token::LParen,
    Token::Via,
];

/// Tokens that begin an item; error recovery resumes at the next one outside brackets.
const ITEM_STARTS: [Token<'static>; 9] = [
    Token::Gen,
    Token::Fn,
    Token::Param,
    Token::Data,
    Token::Let,
    Token::Type,
    Token::Print,
    Token::Maximize,
    Token::Minimize,
];

fn program_parser<'tokens, 'src: 'tokens, I>() -> impl Parser<'tokens, I, Vec<Item>, Extra<'tokens, 'src>>
where
    I: ValueInput<'tokens, Token = Token<'src>, Span = SimpleSpan>,
{
    let (expr, block) = expression_parsers::<I>();
    let ident = ident_parser::<I>();
    let ty = type_parser::<I>();
    let annotation = just(Token::Colon).ignore_then(ty.clone()).or_not();

    let param = ident.clone().then(annotation.clone()).map(|(name, ty)| FnParam { name, ty });
    let params = param
        .separated_by(just(Token::Comma))
        .allow_trailing()
        .collect::<Vec<_>>()
        .delimited_by(just(Token::LParen), just(Token::RParen));
    let fn_def = ident
        .clone()
        .then(params)
        .then(just(Token::Arrow).ignore_then(ty.clone()).or_not())
        .then(block.clone())
        .map(|(((name, params), ret), body)| FnDef { name, params, ret, body });
    let gen_item = just(Token::Gen).ignore_then(fn_def.clone()).map(ItemKind::Gen).labelled("a `gen` definition");
    let fn_item = just(Token::Fn).ignore_then(fn_def).map(ItemKind::Fn).labelled("a `fn` definition");

    let binding = ident
        .clone()
        .then(annotation)
        .then_ignore(just(Token::Assign))
        .then(expr.clone())
        .then_ignore(just(Token::Semi))
        .map(|((name, ty), value)| Binding { name, ty, value });
    let param_item = just(Token::Param).ignore_then(binding.clone()).map(ItemKind::Param);
    let data_item = just(Token::Data).ignore_then(binding.clone()).map(ItemKind::Data);
    let let_item = just(Token::Let).ignore_then(binding).map(ItemKind::Let);
    let type_item = just(Token::Type)
        .ignore_then(ident.clone())
        .then_ignore(just(Token::Assign))
        .then(ty.clone())
        .then_ignore(just(Token::Semi))
        .map(|(name, ty)| ItemKind::Type(TypeAlias { name, ty }))
        .labelled("a `type` alias");

    let print_item = just(Token::Print)
        .ignore_then(expr.clone().separated_by(just(Token::Comma)).at_least(1).collect::<Vec<_>>())
        .then_ignore(just(Token::Semi))
        .map(ItemKind::Print);

    // `net` or a part of a record parameter, `net.w1`: one identifier holding the dotted path.
    let path = ident.clone().foldl(just(Token::Dot).ignore_then(ident.clone()).repeated(), |path, field| Ident {
        name: format!("{}.{}", path.name, field.name),
        span: Span::new(path.span.start, field.span.end),
    });
    let wrt = just(Token::Wrt).ignore_then(
        path.separated_by(just(Token::Comma))
            .allow_trailing()
            .collect::<Vec<_>>()
            .delimited_by(just(Token::LBracket), just(Token::RBracket)),
    );
    let objective = expr.clone().then(wrt.or_not()).map(|(expr, wrt)| Objective { expr, wrt });
    let direction = just(Token::Maximize).to(Direction::Maximize).or(just(Token::Minimize).to(Direction::Minimize));
    let options = just(Token::With).ignore_then(field_list(ident.clone(), expr.clone())).or_not();
    let optimize_item = direction
        .then(objective.separated_by(just(Token::Comma)).at_least(1).collect::<Vec<_>>())
        .then(options)
        .then_ignore(just(Token::Semi))
        .map(|((direction, objectives), options)| {
            ItemKind::Optimize(Optimize { direction, objectives, options: options.unwrap_or_default() })
        });

    let item = choice((gen_item, fn_item, param_item, data_item, let_item, type_item, print_item, optimize_item))
        .map_with(|kind, e| Item { kind, span: span_of(e.span()), doc: None })
        .labelled("an item");

    // Skip a broken item: its first token, then whole bracketed groups and any tokens that
    // cannot start an item, so a `let` inside a broken body does not look like a new item.
    let group = nested_delimiters(
        Token::LBrace,
        Token::RBrace,
        [(Token::LParen, Token::RParen), (Token::LBracket, Token::RBracket)],
        |_| (),
    );
    let skip_item = any().then(group.or(none_of(ITEM_STARTS).ignored()).repeated()).map_with(|_, e| Item {
        kind: ItemKind::Error,
        span: span_of(e.span()),
        doc: None,
    });

    item.recover_with(via_parser(skip_item)).repeated().collect::<Vec<_>>().then_ignore(end())
}

fn ident_parser<'tokens, 'src: 'tokens, I>() -> impl Parser<'tokens, I, Ident, Extra<'tokens, 'src>> + Clone
where
    I: ValueInput<'tokens, Token = Token<'src>, Span = SimpleSpan>,
{
    select! { Token::Ident(name) => name }
        .map_with(|name: &str, e| Ident { name: name.to_string(), span: span_of(e.span()) })
        .labelled("an identifier")
}

/// `{ name: value, … }`: record literals and the options of `maximize … with { … }`.
fn field_list<'tokens, 'src: 'tokens, I, P, Q>(
    ident: P,
    expr: Q,
) -> impl Parser<'tokens, I, Vec<Field>, Extra<'tokens, 'src>> + Clone
where
    I: ValueInput<'tokens, Token = Token<'src>, Span = SimpleSpan>,
    P: Parser<'tokens, I, Ident, Extra<'tokens, 'src>> + Clone,
    Q: Parser<'tokens, I, Expr, Extra<'tokens, 'src>> + Clone,
{
    ident
        .then_ignore(just(Token::Colon))
        .then(expr)
        .map(|(name, value)| Field { name, value })
        .separated_by(just(Token::Comma))
        .allow_trailing()
        .collect::<Vec<_>>()
        .delimited_by(just(Token::LBrace), just(Token::RBrace))
}

fn type_parser<'tokens, 'src: 'tokens, I>() -> impl Parser<'tokens, I, TypeExpr, Extra<'tokens, 'src>> + Clone
where
    I: ValueInput<'tokens, Token = Token<'src>, Span = SimpleSpan>,
{
    let ident = ident_parser::<I>();
    recursive(|ty| {
        let dim = select! { Token::Int(digits) => digits }
            .map_with(|digits: &str, e| Dim::Literal(digits.parse().unwrap_or(u64::MAX), span_of(e.span())))
            .or(ident.clone().map(Dim::Name))
            .labelled("a dimension");
        let bracketed_dims = dim
            .clone()
            .separated_by(just(Token::Comma))
            .at_least(1)
            .at_most(2)
            .collect::<Vec<_>>()
            .delimited_by(just(Token::LBracket), just(Token::RBracket));
        let shaped = ident.clone().then(bracketed_dims.or_not()).try_map(|(name, dims), span: SimpleSpan| {
            match (name.name.as_str(), dims) {
                (_, None) => Ok(TypeExprKind::Named(name)),
                ("vec", Some(mut dims)) if dims.len() == 1 => Ok(TypeExprKind::Vec(dims.remove(0))),
                ("mat", Some(mut dims)) if dims.len() == 2 => {
                    let columns = dims.remove(1);
                    Ok(TypeExprKind::Mat(dims.remove(0), columns))
                }
                (other, Some(_)) => {
                    Err(Rich::custom(span, format!("`{other}[…]` is not a type: write `vec[n]` or `mat[m, n]`")))
                }
            }
        });
        let tuple = ty
            .clone()
            .separated_by(just(Token::Comma))
            .allow_trailing()
            .collect::<Vec<_>>()
            .delimited_by(just(Token::LParen), just(Token::RParen))
            .map(TypeExprKind::Tuple);
        let record = ident
            .clone()
            .then_ignore(just(Token::Colon))
            .then(ty.clone())
            .separated_by(just(Token::Comma))
            .allow_trailing()
            .collect::<Vec<_>>()
            .delimited_by(just(Token::LBrace), just(Token::RBrace))
            .map(TypeExprKind::Record);
        let array = ty
            .clone()
            .then_ignore(just(Token::Semi))
            .then(dim)
            .delimited_by(just(Token::LBracket), just(Token::RBracket))
            .map(|(element, length)| TypeExprKind::Array(Box::new(element), length));
        choice((shaped, tuple, record, array))
            .map_with(|kind, e| TypeExpr { kind, span: span_of(e.span()) })
            .labelled("a type")
    })
}

fn span_of(span: SimpleSpan) -> Span {
    Span::from(span)
}

fn expr_node(kind: ExprKind, span: SimpleSpan) -> Expr {
    Expr { id: ExprId(0), kind, span: span.into() }
}

/// The expression and block parsers, defined together because each contains the other.
#[allow(clippy::type_complexity)]
fn expression_parsers<'tokens, 'src: 'tokens, I>() -> (
    Recursive<chumsky::recursive::Indirect<'tokens, 'tokens, I, Expr, Extra<'tokens, 'src>>>,
    Recursive<chumsky::recursive::Indirect<'tokens, 'tokens, I, Block, Extra<'tokens, 'src>>>,
)
where
    I: ValueInput<'tokens, Token = Token<'src>, Span = SimpleSpan>,
{
    let mut expr = Recursive::declare();
    let mut block = Recursive::declare();
    let ident = ident_parser::<I>();
    let ty = type_parser::<I>();

    let pattern = recursive(|pattern| {
        let name =
            ident.clone().map(|name| if name.name == "_" { Pattern::Wildcard(name.span) } else { Pattern::Name(name) });
        let tuple = pattern
            .separated_by(just(Token::Comma))
            .allow_trailing()
            .collect::<Vec<_>>()
            .delimited_by(just(Token::LParen), just(Token::RParen))
            .map_with(|parts, e| Pattern::Tuple(parts, span_of(e.span())));
        name.or(tuple).labelled("a pattern")
    });

    let literal = select! {
        Token::Int(digits) => ExprKind::Int(digits.parse().unwrap_or(i64::MAX)),
        Token::Real(digits) => ExprKind::Real(digits.parse().unwrap_or(f64::INFINITY)),
        Token::True => ExprKind::Bool(true),
        Token::False => ExprKind::Bool(false),
        Token::Str(quoted) => ExprKind::Str(unescape(quoted)),
    }
    .map_with(|kind, e| expr_node(kind, e.span()));

    let arg = ident
        .clone()
        .then_ignore(just(Token::Colon))
        .or_not()
        .then(expr.clone())
        .map(|(name, value)| Arg { name, value });
    let args = arg
        .separated_by(just(Token::Comma))
        .allow_trailing()
        .collect::<Vec<_>>()
        .delimited_by(just(Token::LParen), just(Token::RParen));
    let name_or_call = ident.clone().then(args.clone().or_not()).map_with(|(name, args), e| match args {
        Some(args) => expr_node(ExprKind::Call { callee: name, args }, e.span()),
        None => expr_node(ExprKind::Name(name.name), e.span()),
    });

    let parenthesised = expr
        .clone()
        .separated_by(just(Token::Comma))
        .collect::<Vec<_>>()
        .then(just(Token::Comma).or_not())
        .delimited_by(just(Token::LParen), just(Token::RParen))
        .map_with(|(mut parts, trailing_comma), e| {
            if parts.len() == 1 && trailing_comma.is_none() {
                let mut inner = parts.remove(0);
                inner.span = Span::from(e.span());
                inner
            } else {
                expr_node(ExprKind::Tuple(parts), e.span())
            }
        });

    let range = expr.clone().then_ignore(just(Token::DotDot)).then(expr.clone());
    let comprehension_tail =
        just(Token::For).ignore_then(pattern.clone()).then_ignore(just(Token::In)).then(range.clone());
    // `[e for i in lo..hi]` and `[e, …]` share their first element, parsed once: trying one
    // form and then the other would parse nested brackets again at every level.
    enum AfterFirst {
        Comprehension(Pattern, Expr, Expr),
        Elements(Vec<Expr>),
    }
    let after_first =
        comprehension_tail.map(|(var, (lo, hi))| AfterFirst::Comprehension(var, lo, hi)).or(just(Token::Comma)
            .ignore_then(expr.clone().separated_by(just(Token::Comma)).allow_trailing().collect::<Vec<_>>())
            .or_not()
            .map(|rest| AfterFirst::Elements(rest.unwrap_or_default())));
    let bracketed =
        expr.clone().then(after_first).or_not().delimited_by(just(Token::LBracket), just(Token::RBracket)).map_with(
            |contents, e| {
                let kind = match contents {
                    None => ExprKind::Vector(Vec::new()),
                    Some((body, AfterFirst::Comprehension(var, lo, hi))) => {
                        ExprKind::Comprehension { body: Box::new(body), var, lo: Box::new(lo), hi: Box::new(hi) }
                    }
                    Some((first, AfterFirst::Elements(rest))) => {
                        ExprKind::Vector(std::iter::once(first).chain(rest).collect())
                    }
                };
                expr_node(kind, e.span())
            },
        );

    let record = ident
        .clone()
        .then_ignore(just(Token::Colon))
        .then(expr.clone())
        .map(|(name, value)| Field { name, value })
        .separated_by(just(Token::Comma))
        .at_least(1)
        .allow_trailing()
        .collect::<Vec<_>>()
        .delimited_by(just(Token::LBrace), just(Token::RBrace))
        .map_with(|fields, e| expr_node(ExprKind::Record(fields), e.span()));

    let if_expr = recursive(|if_expr| {
        just(Token::If)
            .ignore_then(expr.clone())
            .then(block.clone())
            .then(
                just(Token::Else)
                    .ignore_then(block.clone().map_with(|b, e| expr_node(ExprKind::Block(b), e.span())).or(if_expr))
                    .or_not(),
            )
            .map_with(|((cond, then), otherwise): ((Expr, Block), Option<Expr>), e| {
                expr_node(ExprKind::If { cond: Box::new(cond), then, otherwise: otherwise.map(Box::new) }, e.span())
            })
    });
    let expect =
        just(Token::Expect).ignore_then(block.clone()).map_with(|b, e| expr_node(ExprKind::Expect(b), e.span()));
    let block_expr = block.clone().map_with(|b, e| expr_node(ExprKind::Block(b), e.span()));

    let atom = choice((literal, name_or_call, parenthesised, bracketed, record, if_expr, expect, block_expr))
        .labelled("an expression")
        .boxed();

    enum Postfix {
        Index(Vec<Expr>),
        Field(Ident),
    }
    let tuple_field = select! { Token::Int(digits) => digits }
        .map_with(|digits: &str, e| Ident { name: digits.to_string(), span: span_of(e.span()) });
    let slice =
        expr.clone().or_not().then_ignore(just(Token::DotDot)).then(expr.clone().or_not()).map_with(|(lo, hi), e| {
            expr_node(ExprKind::Range { lo: lo.map(Box::new), hi: hi.map(Box::new) }, e.span())
        });
    let index_item = choice((slice, expr.clone()));
    let postfix_op = choice((
        index_item
            .separated_by(just(Token::Comma))
            .at_least(1)
            .collect::<Vec<_>>()
            .delimited_by(just(Token::LBracket), just(Token::RBracket))
            .map(Postfix::Index),
        just(Token::Dot).ignore_then(ident.clone().or(tuple_field)).map(Postfix::Field),
    ));
    let postfix = atom.foldl_with(postfix_op.repeated(), |base, op, e| {
        let kind = match op {
            Postfix::Index(indices) => ExprKind::Index { base: Box::new(base), indices },
            Postfix::Field(field) => ExprKind::Field { base: Box::new(base), field },
        };
        expr_node(kind, e.span())
    });

    let mut unary = Recursive::declare();
    let power = postfix.then(just(Token::Caret).ignore_then(unary.clone()).or_not()).map_with(
        |(base, exponent): (Expr, Option<Expr>), e| match exponent {
            Some(exponent) => expr_node(ExprKind::Binary(BinaryOp::Pow, Box::new(base), Box::new(exponent)), e.span()),
            None => base,
        },
    );
    let prefix = just(Token::Minus).to(UnaryOp::Neg).or(just(Token::Bang).to(UnaryOp::Not));
    unary.define(
        prefix
            .then(unary.clone())
            .map_with(|(op, operand), e| expr_node(ExprKind::Unary(op, Box::new(operand)), e.span()))
            .or(power)
            .boxed(),
    );

    fn binary_level<'tokens, 'src: 'tokens, I, P, O>(
        operand: P,
        operator: O,
    ) -> impl Parser<'tokens, I, Expr, Extra<'tokens, 'src>> + Clone
    where
        I: ValueInput<'tokens, Token = Token<'src>, Span = SimpleSpan>,
        P: Parser<'tokens, I, Expr, Extra<'tokens, 'src>> + Clone,
        O: Parser<'tokens, I, BinaryOp, Extra<'tokens, 'src>> + Clone,
    {
        operand.clone().foldl_with(operator.then(operand).repeated(), |lhs, (op, rhs), e| {
            expr_node(ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)), e.span())
        })
    }
    let product = binary_level(
        unary,
        choice((
            just(Token::Star).to(BinaryOp::Mul),
            just(Token::Slash).to(BinaryOp::Div),
            just(Token::At).to(BinaryOp::MatMul),
        )),
    )
    .boxed();
    let sum =
        binary_level(product, just(Token::Plus).to(BinaryOp::Add).or(just(Token::Minus).to(BinaryOp::Sub))).boxed();
    let merge = binary_level(sum, just(Token::PlusPlus).to(BinaryOp::Merge)).boxed();
    let comparison = binary_level(
        merge,
        choice((
            just(Token::EqEq).to(BinaryOp::Eq),
            just(Token::NotEq).to(BinaryOp::Ne),
            just(Token::Le).to(BinaryOp::Le),
            just(Token::Lt).to(BinaryOp::Lt),
            just(Token::Ge).to(BinaryOp::Ge),
            just(Token::Gt).to(BinaryOp::Gt),
        )),
    )
    .boxed();
    let conjunction = binary_level(comparison, just(Token::AndAnd).to(BinaryOp::And)).boxed();
    let disjunction = binary_level(conjunction, just(Token::OrOr).to(BinaryOp::Or));
    expr.define(disjunction.labelled("an expression").boxed());

    // Statements.
    let let_stmt = just(Token::Let)
        .ignore_then(pattern.clone())
        .then(just(Token::Colon).ignore_then(ty).or_not())
        .then_ignore(just(Token::Assign))
        .then(expr.clone())
        .then_ignore(just(Token::Semi))
        .map(|((pattern, ty), value)| StmtKind::Let { pattern, ty, value });
    let via = just(Token::Via)
        .ignore_then(ident.clone().labelled("an estimator"))
        .then(args.or_not())
        .map_with(|(estimator, args), e| Via { estimator, args, span: span_of(e.span()) });
    let for_stmt = just(Token::For)
        .ignore_then(pattern)
        .then_ignore(just(Token::In))
        .then(range)
        .then(block.clone())
        .map(|((var, (lo, hi)), body)| StmtKind::For { var, lo, hi, body });
    let return_stmt =
        just(Token::Return).ignore_then(expr.clone()).then_ignore(just(Token::Semi)).map(StmtKind::Return);
    let statement = choice((let_stmt, for_stmt, return_stmt))
        .map_with(|kind, e| BlockPart::Stmt(Stmt { kind, span: span_of(e.span()) }));
    // A random choice `ADDR ~ EXPR;` starts like an expression (`y[i]`), so it is parsed as
    // one and then read as an address: trying both forms would parse nested brackets again
    // at every level.
    enum Ending {
        Choice(Expr, Option<Via>),
        Semicolon,
    }
    let choice_tail = just(Token::Tilde)
        .ignore_then(expr.clone())
        .then(via.or_not())
        .then_ignore(just(Token::Semi))
        .map(|(dist, via)| Ending::Choice(dist, via));
    let ending = choice_tail.or(just(Token::Semi).map(|_| Ending::Semicolon)).or_not();
    let expr_part = expr.clone().then(ending).validate(|(lhs, ending), e, emitter| {
        let span = span_of(e.span());
        match ending {
            Some(Ending::Choice(dist, via)) => match address_of(lhs) {
                Ok(address) => BlockPart::Stmt(Stmt { kind: StmtKind::Choice { address, dist, via }, span }),
                Err(lhs_span) => {
                    emitter.emit(Rich::custom(lhs_span.range().into(), NOT_AN_ADDRESS));
                    BlockPart::Skipped
                }
            },
            Some(Ending::Semicolon) => BlockPart::Expr { expr: lhs, semicolon: true, span },
            None => BlockPart::Expr { expr: lhs, semicolon: false, span },
        }
    });

    // A broken statement is skipped up to its `;` (or the block's `}`), so that one block can
    // report several independent errors.
    let statement_group = nested_delimiters(
        Token::LBrace,
        Token::RBrace,
        [(Token::LParen, Token::RParen), (Token::LBracket, Token::RBracket)],
        |_| (),
    );
    let skip_statement = statement_group
        .or(none_of([Token::Semi, Token::RBrace]).ignored())
        .repeated()
        .at_least(1)
        .then(just(Token::Semi).or_not())
        .map(|_| BlockPart::Skipped);
    block.define(
        statement
            .or(expr_part)
            .recover_with(via_parser(skip_statement))
            .repeated()
            .collect::<Vec<_>>()
            .delimited_by(just(Token::LBrace), just(Token::RBrace))
            .validate(|parts, e, emitter| assemble_block(parts, e.span(), emitter))
            .labelled("a block")
            .boxed(),
    );

    (expr, block)
}

const NOT_AN_ADDRESS: &str = "the left of `~` must be an address: a name or `name[i]`";

/// Reads the left of `~` as an address, or returns its span if it is not one.
fn address_of(lhs: Expr) -> Result<Address, Span> {
    match lhs.kind {
        ExprKind::Name(name) => Ok(Address { name: Ident { name, span: lhs.span }, index: None }),
        ExprKind::Index { base, mut indices } if indices.len() == 1 => match base.kind {
            ExprKind::Name(name) => Ok(Address { name: Ident { name, span: base.span }, index: indices.pop() }),
            _ => Err(lhs.span),
        },
        _ => Err(lhs.span),
    }
}

enum BlockPart {
    Stmt(Stmt),
    Expr {
        expr: Expr,
        semicolon: bool,
        span: Span,
    },
    /// A statement the parser could not read; its error has been reported, and a file with
    /// syntax errors is neither checked nor formatted, so nothing needs its remains.
    Skipped,
}

/// Turns a block's parts into statements and a tail: the last expression without `;` is the
/// block's value; any earlier one that is not block-like is missing its `;`.
fn assemble_block<'tokens, 'src>(
    parts: Vec<BlockPart>,
    span: SimpleSpan,
    emitter: &mut chumsky::input::Emitter<Rich<'tokens, Token<'src>, SimpleSpan>>,
) -> Block {
    let count = parts.len();
    let mut stmts = Vec::with_capacity(count);
    let mut tail = None;
    let mut parts = parts.into_iter().enumerate().peekable();
    while let Some((position, part)) = parts.next() {
        // Before a skipped statement the parser read a prefix of that broken statement as
        // an expression; its missing `;` is part of the error already reported.
        let before_skipped = matches!(parts.peek(), Some((_, BlockPart::Skipped)));
        match part {
            BlockPart::Stmt(stmt) => stmts.push(stmt),
            BlockPart::Skipped => {}
            BlockPart::Expr { expr, semicolon: false, .. } if position + 1 == count => tail = Some(Box::new(expr)),
            BlockPart::Expr { expr, semicolon, span } => {
                if !semicolon && !expr.kind.is_block_like() && !before_skipped {
                    let end = expr.span.end as usize;
                    emitter.emit(Rich::custom((end..end).into(), MISSING_SEMICOLON));
                }
                stmts.push(Stmt { kind: StmtKind::Expr(expr), span });
            }
        }
    }
    Block { stmts, tail, span: span.into() }
}

/// The value of a string literal token (quotes removed, escapes resolved).
fn unescape(quoted: &str) -> String {
    let inner = quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or("");
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Attaches each run of `///` comments to the item that follows it.
fn attach_docs(program: &mut Program, comments: &[Comment], src: &str, base: u32) {
    let mut docs = comments.iter().filter(|c| c.kind == CommentKind::Doc).peekable();
    let mut previous_end = base;
    for item in &mut program.items {
        let mut lines = Vec::new();
        while let Some(doc) = docs.next_if(|doc| doc.span.start < item.span.start) {
            if doc.span.start >= previous_end {
                let text = src.get((doc.span.start - base) as usize + 3..(doc.span.end - base) as usize).unwrap_or("");
                let text = text.trim_end_matches('\r');
                lines.push(text.strip_prefix(' ').unwrap_or(text).to_string());
            }
        }
        if !lines.is_empty() {
            item.doc = Some(lines.join("\n"));
        }
        previous_end = item.span.end;
    }
}

/// Deeper expressions than this (a sum of thousands of terms is as deep as it is long) are
/// rejected, so that no input can exhaust the stack of the recursive passes after parsing.
pub const MAX_EXPRESSION_DEPTH: usize = 5000;

/// The span of an expression nested deeper than [`MAX_EXPRESSION_DEPTH`], found without
/// recursion (the tree may be arbitrarily deep).
fn too_deep(program: &Program) -> Option<Span> {
    let mut stack: Vec<(&Expr, usize)> =
        program.items.iter().flat_map(super::visit::item_exprs).map(|expr| (expr, 1)).collect();
    while let Some((expr, depth)) = stack.pop() {
        if depth > MAX_EXPRESSION_DEPTH {
            return Some(expr.span);
        }
        stack.extend(super::visit::child_exprs(expr).into_iter().map(|child| (child, depth + 1)));
    }
    None
}

/// Gives every expression a dense id in source order.
fn number_expressions(program: &mut Program) {
    let mut next = 0u32;
    let mut number = |expr: &mut Expr| {
        expr.id = ExprId(next);
        next += 1;
    };
    for item in &mut program.items {
        super::visit::walk_item_exprs_mut(item, &mut number);
    }
    program.expr_count = next;
}
