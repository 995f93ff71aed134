//! Tokens and the lexer (logos).
//!
//! `lex` turns source text into the token stream the parser reads, the comments the formatter
//! and doc-comment attachment need (kept aside as trivia, never seen by the parser), and one
//! diagnostic per malformed token. It never fails as a whole: a bad character becomes an
//! `Error` token so that parsing goes on and reports everything at once.

use std::fmt;

use logos::Logos;

use super::span::Span;
use crate::diagnostics::{Diagnostic, ErrorCode};

/// Deeper bracket nesting than this is rejected before parsing, so that no input can exhaust
/// the stack of the recursive parser and checker.
pub const MAX_NESTING: usize = 256;

#[derive(Logos, Clone, Copy, Debug, PartialEq)]
#[logos(skip r"[ \t\r\n\f]+")]
pub enum Token<'src> {
    #[token("gen")]
    Gen,
    #[token("fn")]
    Fn,
    #[token("param")]
    Param,
    #[token("data")]
    Data,
    #[token("let")]
    Let,
    #[token("type")]
    Type,
    #[token("for")]
    For,
    #[token("in")]
    In,
    #[token("if")]
    If,
    #[token("else")]
    Else,
    #[token("return")]
    Return,
    #[token("E", priority = 3)]
    Expect,
    #[token("via")]
    Via,
    #[token("maximize")]
    Maximize,
    #[token("minimize")]
    Minimize,
    #[token("with")]
    With,
    #[token("wrt")]
    Wrt,
    #[token("print")]
    Print,
    #[token("true")]
    True,
    #[token("false")]
    False,

    #[regex(r"[A-Za-z_][A-Za-z0-9_]*")]
    Ident(&'src str),
    #[regex(r"[0-9]+")]
    Int(&'src str),
    #[regex(r"[0-9]+\.[0-9]+([eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+")]
    Real(&'src str),
    #[regex(r#""([^"\\\n]|\\.)*""#)]
    Str(&'src str),
    /// A string literal that reaches the end of its line without its closing quote.
    #[regex(r#""([^"\\\n]|\\.)*"#, priority = 1)]
    UnterminatedStr(&'src str),

    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token(",")]
    Comma,
    #[token(";")]
    Semi,
    #[token(":")]
    Colon,
    #[token(".")]
    Dot,
    #[token("..")]
    DotDot,
    #[token("~")]
    Tilde,
    #[token("->")]
    Arrow,
    #[token("=")]
    Assign,

    #[token("+")]
    Plus,
    #[token("++")]
    PlusPlus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("^")]
    Caret,
    #[token("@")]
    At,
    #[token("==")]
    EqEq,
    #[token("!=")]
    NotEq,
    #[token("<")]
    Lt,
    #[token("<=")]
    Le,
    #[token(">")]
    Gt,
    #[token(">=")]
    Ge,
    #[token("&&")]
    AndAnd,
    #[token("||")]
    OrOr,
    #[token("!")]
    Bang,

    #[regex(r"///[^\n]*", allow_greedy = true)]
    DocComment(&'src str),
    #[regex(r"//[^\n]*", allow_greedy = true)]
    LineComment(&'src str),
    #[token("/*", block_comment)]
    BlockComment(BlockCommentEnd),

    /// A character that starts no token; the lexer reports it and parsing continues.
    Error,
}

/// Whether a block comment found its closing `*/` (comments nest, as in Rust).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockCommentEnd {
    Closed,
    Unterminated,
}

fn block_comment<'src>(lex: &mut logos::Lexer<'src, Token<'src>>) -> BlockCommentEnd {
    let rest = lex.remainder().as_bytes();
    let mut depth = 1usize;
    let mut i = 0;
    while i < rest.len() {
        match (rest[i], rest.get(i + 1)) {
            (b'/', Some(b'*')) => {
                depth += 1;
                i += 2;
            }
            (b'*', Some(b'/')) => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    lex.bump(i);
                    return BlockCommentEnd::Closed;
                }
            }
            _ => i += 1,
        }
    }
    lex.bump(rest.len());
    BlockCommentEnd::Unterminated
}

impl fmt::Display for Token<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Token::Ident(s) | Token::Int(s) | Token::Real(s) | Token::Str(s) => {
                return write!(f, "`{s}`");
            }
            Token::UnterminatedStr(_) => "unterminated string",
            Token::DocComment(_) | Token::LineComment(_) | Token::BlockComment(_) => "comment",
            Token::Error => "invalid character",
            other => return write!(f, "`{}`", other.punctuation()),
        };
        f.write_str(text)
    }
}

impl Token<'_> {
    /// The fixed spelling of a keyword or punctuation token (empty for tokens with payload).
    pub fn punctuation(&self) -> &'static str {
        match self {
            Token::Gen => "gen",
            Token::Fn => "fn",
            Token::Param => "param",
            Token::Data => "data",
            Token::Let => "let",
            Token::Type => "type",
            Token::For => "for",
            Token::In => "in",
            Token::If => "if",
            Token::Else => "else",
            Token::Return => "return",
            Token::Expect => "E",
            Token::Via => "via",
            Token::Maximize => "maximize",
            Token::Minimize => "minimize",
            Token::With => "with",
            Token::Wrt => "wrt",
            Token::Print => "print",
            Token::True => "true",
            Token::False => "false",
            Token::LParen => "(",
            Token::RParen => ")",
            Token::LBracket => "[",
            Token::RBracket => "]",
            Token::LBrace => "{",
            Token::RBrace => "}",
            Token::Comma => ",",
            Token::Semi => ";",
            Token::Colon => ":",
            Token::Dot => ".",
            Token::DotDot => "..",
            Token::Tilde => "~",
            Token::Arrow => "->",
            Token::Assign => "=",
            Token::Plus => "+",
            Token::PlusPlus => "++",
            Token::Minus => "-",
            Token::Star => "*",
            Token::Slash => "/",
            Token::Caret => "^",
            Token::At => "@",
            Token::EqEq => "==",
            Token::NotEq => "!=",
            Token::Lt => "<",
            Token::Le => "<=",
            Token::Gt => ">",
            Token::Ge => ">=",
            Token::AndAnd => "&&",
            Token::OrOr => "||",
            Token::Bang => "!",
            _ => "",
        }
    }
}

/// What kind of comment a piece of trivia is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommentKind {
    /// `/// …`: documentation of the next item.
    Doc,
    /// `// …`
    Line,
    /// `/* … */`, possibly spanning lines.
    Block,
}

/// A comment, kept out of the token stream so that the formatter can put it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    pub kind: CommentKind,
    pub span: Span,
}

/// The lexer's output: tokens for the parser, comments for the formatter, malformed tokens.
pub struct Lexed<'src> {
    pub tokens: Vec<(Token<'src>, Span)>,
    pub comments: Vec<Comment>,
    pub diagnostics: Vec<Diagnostic>,
}

pub fn lex(src: &str) -> Lexed<'_> {
    let mut tokens = Vec::new();
    let mut comments = Vec::new();
    let mut diagnostics = Vec::new();
    let mut open_brackets: Vec<(Token<'_>, Span)> = Vec::new();
    let mut delimiters_broken = false;
    for (result, range) in Token::lexer(src).spanned() {
        let span = Span::from(range);
        let token = match result {
            Ok(token) => token,
            Err(()) => {
                let text = &src[span.range()];
                diagnostics.push(
                    Diagnostic::error(
                        ErrorCode::InvalidCharacter,
                        format!("invalid character `{}`", text.escape_debug()),
                    )
                    .with_primary(span, "not part of any token"),
                );
                Token::Error
            }
        };
        match token {
            Token::DocComment(_) => comments.push(Comment { kind: CommentKind::Doc, span }),
            Token::LineComment(_) => comments.push(Comment { kind: CommentKind::Line, span }),
            Token::BlockComment(end) => {
                if end == BlockCommentEnd::Unterminated {
                    diagnostics.push(
                        Diagnostic::error(ErrorCode::UnterminatedComment, "unterminated block comment")
                            .with_primary(Span::new(span.start, span.start + 2), "comment starts here")
                            .with_help("close it with `*/` (block comments nest)"),
                    );
                }
                comments.push(Comment { kind: CommentKind::Block, span });
            }
            Token::UnterminatedStr(_) => {
                diagnostics.push(
                    Diagnostic::error(ErrorCode::UnterminatedString, "unterminated string literal")
                        .with_primary(span, "this string has no closing `\"` on its line"),
                );
                tokens.push((Token::Error, span));
            }
            Token::Int(digits) if digits.parse::<i64>().is_err() => {
                diagnostics.push(
                    Diagnostic::error(ErrorCode::InvalidNumber, "integer literal too large")
                        .with_primary(span, format!("integers range from {} to {}", i64::MIN, i64::MAX))
                        .with_help(format!("write it as a real: `{digits}.0`")),
                );
                tokens.push((token, span));
            }
            Token::Real(digits) if !digits.parse::<f64>().is_ok_and(f64::is_finite) => {
                diagnostics.push(
                    Diagnostic::error(ErrorCode::InvalidNumber, "real literal out of range")
                        .with_primary(span, format!("larger than the largest real, {:e}", f64::MAX))
                        .with_help("write `inf` for an infinite value"),
                );
                tokens.push((token, span));
            }
            _ => {
                if matches!(token, Token::LParen | Token::LBracket | Token::LBrace) {
                    open_brackets.push((token, span));
                    if open_brackets.len() == MAX_NESTING + 1 {
                        diagnostics.push(
                            Diagnostic::error(ErrorCode::NestingTooDeep, "brackets nested too deeply")
                                .with_primary(span, format!("more than {MAX_NESTING} levels of nesting"))
                                .with_help("split the expression into named parts with `let`"),
                        );
                    }
                } else if matches!(token, Token::RParen | Token::RBracket | Token::RBrace) && !delimiters_broken {
                    match open_brackets.pop() {
                        Some((open, _)) if closer_of(open) == Some(token) => {}
                        unmatched => {
                            let mut diagnostic = Diagnostic::error(
                                ErrorCode::MismatchedDelimiter,
                                format!("unexpected closing delimiter {token}"),
                            )
                            .with_primary(span, "this does not close anything open here");
                            if let Some((open, open_span)) = unmatched {
                                let expected = closer_of(open).map_or(String::new(), |c| c.to_string());
                                diagnostic = Diagnostic::error(
                                    ErrorCode::MismatchedDelimiter,
                                    format!("mismatched closing delimiter: expected {expected}, found {token}"),
                                )
                                .with_primary(span, format!("expected {expected}"))
                                .with_secondary(open_span, "the open delimiter this should close");
                            }
                            diagnostics.push(diagnostic);
                            delimiters_broken = true;
                        }
                    }
                }
                tokens.push((token, span));
            }
        }
    }
    // An unterminated string or comment swallows the brackets after it: that error explains
    // the imbalance, so it is reported alone.
    let swallowed =
        diagnostics.iter().any(|d| matches!(d.code, ErrorCode::UnterminatedString | ErrorCode::UnterminatedComment));
    if swallowed {
        diagnostics.retain(|d| d.code != ErrorCode::MismatchedDelimiter);
    } else if !delimiters_broken {
        for (open, span) in open_brackets {
            let closer = closer_of(open).map_or(String::new(), |c| c.to_string());
            diagnostics.push(
                Diagnostic::error(ErrorCode::UnclosedDelimiter, format!("unclosed delimiter {open}"))
                    .with_primary(span, format!("never closed: add {closer}")),
            );
        }
    }
    Lexed { tokens, comments, diagnostics }
}

/// The token that closes an opening bracket.
fn closer_of(open: Token<'_>) -> Option<Token<'static>> {
    match open {
        Token::LParen => Some(Token::RParen),
        Token::LBracket => Some(Token::RBracket),
        Token::LBrace => Some(Token::RBrace),
        _ => None,
    }
}

/// The language's keywords (for completion).
pub const KEYWORDS: &[&str] = &[
    "gen", "fn", "param", "data", "let", "type", "for", "in", "if", "else", "return", "E", "via", "maximize",
    "minimize", "with", "wrt", "print", "true", "false",
];

/// Whether `src` is an unfinished input that more lines could complete: a bracket left open,
/// an unterminated block comment, or a last token that cannot end an item or statement (an
/// operator, `=`, `,`, `~`, `via`, `with`, `->`). The REPL keeps reading while it is.
pub fn is_incomplete(src: &str) -> bool {
    let lexed = lex(src);
    if lexed
        .diagnostics
        .iter()
        .any(|d| d.code == ErrorCode::UnclosedDelimiter || d.code == ErrorCode::UnterminatedComment)
    {
        return true;
    }
    let mut depth: i64 = 0;
    for (token, _) in &lexed.tokens {
        match token {
            Token::LParen | Token::LBracket | Token::LBrace => depth += 1,
            Token::RParen | Token::RBracket | Token::RBrace => depth -= 1,
            _ => {}
        }
    }
    if depth > 0 {
        return true;
    }
    let continues = |token: &Token<'_>| {
        matches!(
            token,
            Token::Comma
                | Token::Assign
                | Token::Tilde
                | Token::Arrow
                | Token::Colon
                | Token::Dot
                | Token::DotDot
                | Token::Via
                | Token::With
                | Token::Wrt
                | Token::Else
                | Token::In
                | Token::Plus
                | Token::PlusPlus
                | Token::Minus
                | Token::Star
                | Token::Slash
                | Token::Caret
                | Token::At
                | Token::EqEq
                | Token::NotEq
                | Token::Lt
                | Token::Le
                | Token::Gt
                | Token::Ge
                | Token::AndAnd
                | Token::OrOr
                | Token::Bang
        )
    };
    lexed.tokens.last().is_some_and(|(token, _)| continues(token))
}
