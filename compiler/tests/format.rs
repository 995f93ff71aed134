//! The formatter: canonical layout, idempotent, meaning-preserving (the same tree after a
//! round trip, doc comments included), and every comment kept exactly once. Checked on the
//! examples, on hand-written layouts and awkward comment placements, and on thousands of
//! random well-formed syntax trees.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use ppl::syntax::ast::*;
use ppl::syntax::format::{format_program, format_source};
use ppl::syntax::parse;
use ppl::syntax::sexp::program_sexp;
use ppl::syntax::token::CommentKind;
use ppl::syntax::Span;

/// Formats `source`, checks that the result parses to the same tree, formats to itself and
/// keeps every comment, and returns it.
fn assert_round_trip(source: &str) -> String {
    let original = parse(source, 0);
    assert!(original.diagnostics.is_empty(), "input does not parse:\n{source}\n{:?}", original.diagnostics);
    let formatted = format_source(source).unwrap_or_else(|d| panic!("format failed: {d:?}\n{source}"));
    let reparsed = parse(&formatted, 0);
    assert!(reparsed.diagnostics.is_empty(), "output does not parse:\n{formatted}\n{:?}", reparsed.diagnostics);
    assert_eq!(
        program_sexp(&original.program),
        program_sexp(&reparsed.program),
        "the tree changed:\n{source}\n--- formatted:\n{formatted}"
    );
    let again = format_source(&formatted).expect("formats again");
    assert_eq!(formatted, again, "not idempotent:\n{formatted}");

    // Plain comments are copied verbatim; `///` lines are reprinted from `Item::doc` (the
    // tree comparison above covers their text), so only their number must match.
    for comment in original.comments.iter().filter(|comment| comment.kind != CommentKind::Doc) {
        let text = source[comment.span.range()].trim_end();
        let (before, after) = (source.matches(text).count(), formatted.matches(text).count());
        assert_eq!(before, after, "comment {text:?} appears {before} times before and {after} after:\n{formatted}");
    }
    let docs =
        |comments: &[ppl::syntax::token::Comment]| comments.iter().filter(|c| c.kind == CommentKind::Doc).count();
    assert_eq!(docs(&original.comments), docs(&reparsed.comments), "doc comments lost or added:\n{formatted}");
    formatted
}

fn assert_formats_to(source: &str, expected: &str) {
    assert_eq!(assert_round_trip(source), expected, "from:\n{source}");
}

#[test]
fn the_examples_and_the_standard_library_are_in_canonical_layout() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    for path in ["examples/cone.ppl", "examples/cone_hvi.ppl", "examples/flip.ppl", "stdlib/vi.ppl"] {
        let text = std::fs::read_to_string(format!("{root}/{path}")).expect("readable");
        assert_eq!(assert_round_trip(&text), text, "{path} is not in canonical layout");
    }
}

#[test]
fn spacing_and_indentation_are_canonical() {
    assert_formats_to(
        "param   theta : real=0.5 ;\nfn f(x,y:vec[ 2 ])->real{let a=x+1.0;a*y[0]}\ndata obs={z:5.0,w:[1.0,2.0]};",
        "param theta: real = 0.5;\n\nfn f(x, y: vec[2]) -> real {\n    let a = x + 1.0;\n    a * y[0]\n}\n\n\
         data obs = { z: 5.0, w: [1.0, 2.0] };\n",
    );
    assert_formats_to(
        "gen g(n:int){for i in 0..n{y[i]~normal(0.0,1.0) via reinforce(baseline:0.5);}}",
        "gen g(n: int) {\n    for i in 0..n {\n        y[i] ~ normal(0.0, 1.0) via reinforce(baseline: 0.5);\n    }\n}\n",
    );
    assert_formats_to("let v=[ x*i for i in 0..n ];", "let v = [x * i for i in 0..n];\n");
    assert_formats_to(
        "fn f(){let t=( a , );let u=();let (a,(b,))=(1,2);u}",
        "fn f() {\n    let t = (a,);\n    let u = ();\n    let (a, (b,)) = (1, 2);\n    u\n}\n",
    );
    assert_formats_to("gen empty(){}", "gen empty() {}\n");
}

#[test]
fn parentheses_are_the_fewest_that_keep_the_tree() {
    let cases = [
        ("(a + b) * c", "(a + b) * c"),
        ("a + (b * c)", "a + b * c"),
        ("a - (b - c)", "a - (b - c)"),
        ("(a - b) - c", "a - b - c"),
        ("(-x)^2", "(-x)^2"),
        ("-(x^2)", "-x^2"),
        ("2^(-1)", "2^-1"),
        ("(a^b)^c", "(a^b)^c"),
        ("a^(b^c)", "a^b^c"),
        ("-(-x)", "- -x"),
        ("!(a && b) || c", "!(a && b) || c"),
        ("(a ++ b) + c", "(a ++ b) + c"),
        ("(a < b) == (c < d)", "a < b == (c < d)"),
        ("(m @ v)[0]", "(m @ v)[0]"),
        ("(t.0).1", "(t.0).1"),
        ("(1).0", "(1).0"),
        ("(1.5).x", "1.5.x"),
        ("(if c { a } else { b }) + 1", "(if c { a } else { b }) + 1"),
        ("E { x } + E { y }", "E { x } + E { y }"),
    ];
    for (source, expected) in cases {
        assert_formats_to(&format!("let e = {source};"), &format!("let e = {expected};\n"));
    }
}

#[test]
fn reals_print_exactly() {
    assert_formats_to(
        "let a = 1.0; let b = 0.001; let c = 1e-300; let d = 2.5E+4; let e = 0.1000000000000000055511151231257827;",
        "let a = 1.0;\nlet b = 0.001;\nlet c = 1e-300;\nlet d = 25000.0;\nlet e = 0.1;\n",
    );
    assert_formats_to("let s = \"a \\\"b\\\" \\\\ \\n\";", "let s = \"a \\\"b\\\" \\\\ \\n\";\n");
}

#[test]
fn short_conditionals_stay_on_one_line_and_long_ones_break() {
    assert_formats_to(
        "fn f(b) { if b { 0.0 } else { -theta / 2.0 } }",
        "fn f(b) {\n    if b { 0.0 } else { -theta / 2.0 }\n}\n",
    );
    let long = "fn f(b) { if b { a_rather_long_name_for_a_value + another_long_name } else if c { \
                yet_another_value_that_is_long } else { the_last_one } }";
    assert_formats_to(
        long,
        "fn f(b) {\n    if b {\n        a_rather_long_name_for_a_value + another_long_name\n    } else if c {\n        \
         yet_another_value_that_is_long\n    } else {\n        the_last_one\n    }\n}\n",
    );
    // A block with statements is never on one line.
    assert_formats_to(
        "fn f(b) { if b { let a = 1.0; a } else { 2.0 } }",
        "fn f(b) {\n    if b {\n        let a = 1.0;\n        a\n    } else {\n        2.0\n    }\n}\n",
    );
    assert_formats_to(
        "let w = [ { let (x, l) = sim(q); l } for _ in 0..n ];",
        "let w = [{\n    let (x, l) = sim(q);\n    l\n} for _ in 0..n];\n",
    );
}

#[test]
fn block_like_statements_get_a_semicolon_only_when_needed() {
    assert_formats_to(
        "gen g(b) { if b { x ~ flip(0.5); } if b { y ~ flip(0.5); }; -1.0 }",
        "gen g(b) {\n    if b {\n        x ~ flip(0.5);\n    }\n    if b {\n        y ~ flip(0.5);\n    };\n    -1.0\n}\n",
    );
    // Last in a block without a value: without `;` it would become the value.
    assert_formats_to("fn f(b) { { 1.0 }; }", "fn f(b) {\n    { 1.0 };\n}\n");
    assert_formats_to("fn f(b) { { 1.0 } [1.0] }", "fn f(b) {\n    { 1.0 }[1.0]\n}\n");
    assert_formats_to("fn f(b) { { 1.0 }; [1.0] }", "fn f(b) {\n    { 1.0 };\n    [1.0]\n}\n");
}

#[test]
fn optimisation_options_move_to_a_continuation_line_when_long() {
    assert_formats_to("maximize elbo(p, q, obs) with { steps: 10 };", "maximize elbo(p, q, obs) with { steps: 10 };\n");
    assert_formats_to(
        "maximize elbo(cone(), guide(mu, log_sigma), obs) with { optimizer: adam(lr: 0.001), steps: 5000, particles: 64, seed: 314159 };",
        "maximize elbo(cone(), guide(mu, log_sigma), obs)\n    \
         with { optimizer: adam(lr: 0.001), steps: 5000, particles: 64, seed: 314159 };\n",
    );
    assert_formats_to(
        "minimize a wrt [x,y], b wrt [z] with {steps: 1};",
        "minimize a wrt [x, y], b wrt [z] with { steps: 1 };\n",
    );
}

#[test]
fn blank_lines_separate_definitions_and_kinds_of_item_and_are_kept_at_most_once() {
    assert_formats_to(
        "param a: real = 1.0;\nparam b: real = 2.0;\n\n\n\ndata c = 3.0;\ngen g() { x ~ flip(0.5);\n\n\n y ~ flip(0.5); }\ngen h() {}\n\
         print a;\n\nprint b;\nmaximize a;\nlet d = 1;",
        "param a: real = 1.0;\nparam b: real = 2.0;\n\ndata c = 3.0;\n\ngen g() {\n    x ~ flip(0.5);\n\n    y ~ flip(0.5);\n}\n\n\
         gen h() {}\n\nprint a;\n\nprint b;\nmaximize a;\n\nlet d = 1;\n",
    );
}

#[test]
fn comments_keep_their_lines_and_trailing_comments_their_line_end() {
    assert_formats_to(
        "// header\n\n/// Doc.\ngen g() { // after the brace\n    x ~ flip(0.5);   // trailing\n\n\n    // before y\n    y ~ flip(0.5);\n    \
         // closing\n}\nparam p: real = 1.0; /* block */ // two\n/* multi\n   line */\nlet q = 1;\n// at the end\n",
        "// header\n\n/// Doc.\ngen g() {\n    // after the brace\n    x ~ flip(0.5); // trailing\n\n    // before y\n    y ~ flip(0.5);\n    \
         // closing\n}\n\nparam p: real = 1.0; /* block */ // two\n/* multi\n   line */\nlet q = 1;\n// at the end\n",
    );
}

#[test]
fn comments_inside_expressions_move_before_their_statement() {
    assert_formats_to(
        "fn f(c) {\n    let q = [1.0, // element\n        2.0];\n    if c { a } else /* between */ { b }\n}\n",
        "fn f(c) {\n    // element\n    let q = [1.0, 2.0];\n    /* between */\n    if c { a } else { b }\n}\n",
    );
    assert_formats_to(
        "param p: real = /* why */ 1.0;\nprint p, // this one\n    p;\n",
        "/* why */\nparam p: real = 1.0;\n\n// this one\nprint p, p;\n",
    );
    // A comment inside a block of a one-line `if` puts the `if` on several lines.
    assert_formats_to(
        "fn f(c) { if c { a // the a\n } else { b } }",
        "fn f(c) {\n    if c {\n        a // the a\n    } else {\n        b\n    }\n}\n",
    );
}

#[test]
fn doc_comments_are_reprinted_and_stray_ones_never_become_documentation() {
    assert_formats_to(
        "///Model.\n// plain\n///\n///   indented\ngen g() {}\n",
        "/// Model.\n// plain\n///\n///   indented\ngen g() {}\n",
    );
    // A `///` inside an item would document it if it moved above; it stays inside.
    assert_formats_to("print a, /// stray\n b;\nparam p = 1;", "print /// stray\n    a, b;\n\nparam p = 1;\n");
    assert_formats_to("fn f(a /// stray\n) { a }", "fn f(a) {\n    /// stray\n    a\n}\n");
    assert_formats_to(
        "fn f() { /// stray\n}\n/// after everything",
        "fn f() {\n    /// stray\n}\n/// after everything\n",
    );
}

/// Comments of every kind dropped between random tokens of the examples: each stays exactly
/// once, the tree (documentation included) is unchanged and the layout is a fixed point.
#[test]
fn comments_anywhere_in_the_examples_are_kept() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let cases: u64 = std::env::var("PPL_COMMENT_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(60);
    let sources: Vec<String> = ["examples/cone.ppl", "examples/cone_hvi.ppl", "examples/flip.ppl", "stdlib/vi.ppl"]
        .iter()
        .map(|path| std::fs::read_to_string(format!("{root}/{path}")).expect("readable"))
        .collect();
    for seed in 0..cases {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let source = &sources[seed as usize % sources.len()];
        let boundaries: Vec<usize> =
            ppl::syntax::token::lex(source).tokens.iter().map(|(_, span)| span.end as usize).collect();
        let mut insertions: Vec<(usize, String)> = (0..rng.random_range(1..=4))
            .map(|number| {
                let at = boundaries[rng.random_range(0..boundaries.len())];
                let comment = match rng.random_range(0..4) {
                    0 => format!(" // c{seed}_{number}\n"),
                    1 => format!("\n// c{seed}_{number}\n\n"),
                    2 => format!(" /* c{seed}_{number} /* nested */ */ "),
                    _ => format!(" /// d{seed}_{number}\n"),
                };
                (at, comment)
            })
            .collect();
        insertions.sort();
        let mut commented = source.clone();
        for (at, comment) in insertions.iter().rev() {
            commented.insert_str(*at, comment);
        }
        assert_round_trip(&commented);
    }
}

#[test]
fn a_file_of_comments_only_is_kept() {
    assert_formats_to("// one\n\n\n/* two */   \n", "// one\n\n/* two */\n");
    assert_eq!(format_source("").expect("empty parses"), "");
    assert_eq!(format_source("\n\n").expect("blank parses"), "");
}

#[test]
fn syntax_errors_are_returned_not_formatted() {
    assert!(format_source("let x = ;").is_err());
}

#[test]
fn deep_nesting_formats_quickly_and_without_overflowing_the_stack() {
    let started = std::time::Instant::now();
    // `format_source` runs on a large stack itself; the checks around it parse and dump too.
    ppl::with_large_stack(|| {
        assert_round_trip(&format!("let x = {}let a = 1; a{};", "{ ".repeat(200), " }".repeat(200)));
        assert_round_trip(&format!("let x = {}a{};", "{ ".repeat(250), " }".repeat(250)));
        assert_round_trip(&format!("let x = {};", vec!["1"; 4900].join(" + ")));
    });
    // On the test's own small stack.
    assert!(format_source(&format!("let x = {};", vec!["1"; 4900].join(" + "))).is_ok());
    assert!(started.elapsed().as_secs() < 10, "took {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// Random syntax trees.

/// Builds random well-formed syntax trees, nested to a bounded depth: every form the parser
/// can produce, with random names (never keywords), reals that are finite and non-negative
/// (negative numbers are unary minus) and random doc comments.
struct TreeGenerator {
    rng: ChaCha8Rng,
}

const KEYWORDS: &[&str] = &[
    "gen", "fn", "param", "data", "let", "for", "in", "if", "else", "return", "E", "via", "maximize", "minimize",
    "with", "wrt", "print", "true", "false",
];

fn node(kind: ExprKind) -> Expr {
    Expr { id: ExprId(0), kind, span: Span::default() }
}

fn ident(name: String) -> Ident {
    Ident { name, span: Span::default() }
}

impl TreeGenerator {
    fn new(seed: u64) -> Self {
        TreeGenerator { rng: ChaCha8Rng::seed_from_u64(seed) }
    }

    fn below(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn some<T>(&mut self, p: f64, make: impl FnOnce(&mut Self) -> T) -> Option<T> {
        if self.chance(p) {
            Some(make(self))
        } else {
            None
        }
    }

    fn several<T>(&mut self, min: usize, max: usize, mut make: impl FnMut(&mut Self) -> T) -> Vec<T> {
        let count = self.rng.random_range(min..=max);
        (0..count).map(|_| make(self)).collect()
    }

    fn name(&mut self) -> String {
        const FIRST: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFXYZ_";
        const REST: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_";
        loop {
            let length = self.rng.random_range(1..=5);
            let mut name = String::new();
            name.push(FIRST[self.below(FIRST.len())] as char);
            for _ in 1..length {
                name.push(REST[self.below(REST.len())] as char);
            }
            if name != "_" && !KEYWORDS.contains(&name.as_str()) {
                return name;
            }
        }
    }

    fn ident(&mut self) -> Ident {
        let name = self.name();
        ident(name)
    }

    fn real(&mut self) -> f64 {
        match self.below(4) {
            0 => self.below(1000) as f64,
            1 => self.below(100_000) as f64 / 1000.0,
            2 => loop {
                // Any finite non-negative double: subnormals, huge values, everything between.
                let x = f64::from_bits(self.rng.random::<u64>() >> 1);
                if x.is_finite() {
                    break x;
                }
            },
            _ => self.rng.random::<f64>() * 10f64.powi(self.rng.random_range(-30..30)),
        }
    }

    fn string(&mut self) -> String {
        const CHARS: &[char] = &['a', 'z', ' ', '"', '\\', '\n', '\t', '\r', 'é', '→', '/', '*', '{'];
        let length = self.below(6);
        (0..length).map(|_| CHARS[self.below(CHARS.len())]).collect()
    }

    fn leaf(&mut self) -> Expr {
        let kind = match self.below(6) {
            0 => ExprKind::Int(if self.chance(0.1) {
                self.rng.random_range(0..=i64::MAX)
            } else {
                self.below(100) as i64
            }),
            1 => ExprKind::Real(self.real()),
            2 => ExprKind::Bool(self.chance(0.5)),
            3 => ExprKind::Str(self.string()),
            _ => ExprKind::Name(self.name()),
        };
        node(kind)
    }

    fn expr(&mut self, depth: u32) -> Expr {
        if depth == 0 || self.chance(0.25) {
            return self.leaf();
        }
        let d = depth - 1;
        const BINARY: [BinaryOp; 15] = [
            BinaryOp::Or,
            BinaryOp::And,
            BinaryOp::Eq,
            BinaryOp::Ne,
            BinaryOp::Lt,
            BinaryOp::Le,
            BinaryOp::Gt,
            BinaryOp::Ge,
            BinaryOp::Merge,
            BinaryOp::Add,
            BinaryOp::Sub,
            BinaryOp::Mul,
            BinaryOp::Div,
            BinaryOp::MatMul,
            BinaryOp::Pow,
        ];
        let kind = match self.below(16) {
            0 | 1 => {
                let op = if self.chance(0.5) { UnaryOp::Neg } else { UnaryOp::Not };
                ExprKind::Unary(op, Box::new(self.expr(d)))
            }
            2..=4 => {
                let op = BINARY[self.below(BINARY.len())];
                ExprKind::Binary(op, Box::new(self.expr(d)), Box::new(self.expr(d)))
            }
            5 => ExprKind::Call { callee: self.ident(), args: self.args(d) },
            6 => ExprKind::Index { base: Box::new(self.expr(d)), indices: self.several(1, 2, |g| g.expr(d)) },
            7 => {
                let field = if self.chance(0.5) { ident(self.below(12).to_string()) } else { self.ident() };
                ExprKind::Field { base: Box::new(self.expr(d)), field }
            }
            8 => ExprKind::Vector(self.several(0, 3, |g| g.expr(d))),
            9 => ExprKind::Comprehension {
                body: Box::new(self.expr(d)),
                var: self.pattern(1),
                lo: Box::new(self.expr(d)),
                hi: Box::new(self.expr(d)),
            },
            10 => ExprKind::Record(self.several(1, 3, |g| Field { name: g.ident(), value: g.expr(d) })),
            11 => ExprKind::Tuple(self.several(0, 3, |g| g.expr(d))),
            12 => ExprKind::Block(self.block(d)),
            13 | 14 => return self.if_expr(d),
            _ => ExprKind::Expect(self.block(d)),
        };
        node(kind)
    }

    fn if_expr(&mut self, depth: u32) -> Expr {
        let otherwise = match self.below(3) {
            0 => None,
            1 => Some(node(ExprKind::Block(self.block(depth)))),
            _ => Some(self.if_expr(depth.saturating_sub(1))),
        };
        node(ExprKind::If {
            cond: Box::new(self.expr(depth)),
            then: self.block(depth),
            otherwise: otherwise.map(Box::new),
        })
    }

    fn args(&mut self, depth: u32) -> Vec<Arg> {
        self.several(0, 3, |g| Arg { name: g.some(0.3, Self::ident), value: g.expr(depth) })
    }

    fn block(&mut self, depth: u32) -> Block {
        let inner = depth.saturating_sub(1);
        let stmts = if depth == 0 { Vec::new() } else { self.several(0, 3, |g| g.stmt(inner)) };
        let tail = self.some(0.6, |g| Box::new(g.expr(inner)));
        Block { stmts, tail, span: Span::default() }
    }

    fn stmt(&mut self, depth: u32) -> Stmt {
        let kind = match self.below(6) {
            0 => StmtKind::Let {
                pattern: self.pattern(2),
                ty: self.some(0.3, |g| g.type_expr(2)),
                value: self.expr(depth),
            },
            1 | 2 => StmtKind::Choice {
                address: Address { name: self.ident(), index: self.some(0.3, |g| g.expr(depth)) },
                dist: self.expr(depth),
                via: self.some(0.5, |g| Via {
                    estimator: g.ident(),
                    args: g.some(0.5, |g| g.args(depth)),
                    span: Span::default(),
                }),
            },
            3 => StmtKind::For {
                var: self.pattern(1),
                lo: self.expr(depth),
                hi: self.expr(depth),
                body: self.block(depth),
            },
            4 => StmtKind::Return(self.expr(depth)),
            _ => StmtKind::Expr(self.expr(depth)),
        };
        Stmt { kind, span: Span::default() }
    }

    fn pattern(&mut self, depth: u32) -> Pattern {
        match self.below(if depth == 0 { 2 } else { 3 }) {
            0 => Pattern::Name(self.ident()),
            1 => Pattern::Wildcard(Span::default()),
            _ => Pattern::Tuple(self.several(0, 3, |g| g.pattern(depth - 1)), Span::default()),
        }
    }

    fn type_expr(&mut self, depth: u32) -> TypeExpr {
        let kind = match self.below(if depth == 0 { 3 } else { 5 }) {
            0 => TypeExprKind::Named(self.ident()),
            1 => TypeExprKind::Vec(self.dim()),
            2 => TypeExprKind::Mat(self.dim(), self.dim()),
            3 => TypeExprKind::Tuple(self.several(0, 3, |g| g.type_expr(depth - 1))),
            _ => TypeExprKind::Record(self.several(0, 2, |g| (g.ident(), g.type_expr(depth - 1)))),
        };
        TypeExpr { kind, span: Span::default() }
    }

    fn dim(&mut self) -> Dim {
        if self.chance(0.7) {
            // Every integer token must fit in an `i64`, dimensions included.
            let n = if self.chance(0.1) { self.rng.random_range(0..=i64::MAX as u64) } else { self.below(10) as u64 };
            Dim::Literal(n, Span::default())
        } else {
            Dim::Name(self.ident())
        }
    }

    fn doc(&mut self) -> String {
        const WORDS: &[&str] = &["the", "model", "E[x]", "  indented", "-- x ~ q", "/// not a marker", "é", ""];
        let lines = self.several(1, 3, |g| {
            let words = g.several(0, 3, |g| WORDS[g.below(WORDS.len())]);
            words.join(" ")
        });
        lines.join("\n")
    }

    fn binding(&mut self) -> Binding {
        Binding { name: self.ident(), ty: self.some(0.5, |g| g.type_expr(2)), value: self.expr(4) }
    }

    fn fn_def(&mut self) -> FnDef {
        FnDef {
            name: self.ident(),
            params: self.several(0, 3, |g| FnParam { name: g.ident(), ty: g.some(0.5, |g| g.type_expr(2)) }),
            ret: self.some(0.3, |g| g.type_expr(2)),
            body: self.block(4),
        }
    }

    fn item(&mut self) -> Item {
        let kind = match self.below(7) {
            0 => ItemKind::Gen(self.fn_def()),
            1 => ItemKind::Fn(self.fn_def()),
            2 => ItemKind::Param(self.binding()),
            3 => ItemKind::Data(self.binding()),
            4 => ItemKind::Let(self.binding()),
            5 => ItemKind::Print(self.several(1, 3, |g| g.expr(3))),
            _ => ItemKind::Optimize(Optimize {
                direction: if self.chance(0.5) { Direction::Maximize } else { Direction::Minimize },
                objectives: self.several(1, 2, |g| Objective {
                    expr: g.expr(3),
                    wrt: g.some(0.5, |g| g.several(0, 3, Self::ident)),
                }),
                options: self.several(0, 4, |g| Field { name: g.ident(), value: g.expr(2) }),
            }),
        };
        Item { kind, span: Span::default(), doc: self.some(0.2, Self::doc) }
    }

    fn program(&mut self) -> Program {
        Program { items: self.several(1, 4, Self::item), expr_count: 0 }
    }
}

/// 2000 random trees (fixed seeds): each prints to text that parses back to the same tree
/// without diagnostics, formats to itself, and formats to itself from any other layout of the
/// same tokens (here: everything on one line).
#[test]
fn random_trees_round_trip_through_the_printer() {
    for seed in 0..2000 {
        let program = TreeGenerator::new(seed).program();
        let text = format_program(&program, &[], "");
        let parsed = parse(&text, 0);
        assert!(parsed.diagnostics.is_empty(), "seed {seed}: does not parse:\n{text}\n{:?}", parsed.diagnostics);
        assert_eq!(program_sexp(&parsed.program), program_sexp(&program), "seed {seed}: the tree changed:\n{text}");
        // What `format_source(&text)` does, without parsing a second time.
        let again = format_program(&parsed.program, &parsed.comments, &text);
        assert_eq!(again, text, "seed {seed}: not idempotent");
        let has_docs = program.items.iter().any(|item| item.doc.is_some());
        if seed % 8 == 0 && !has_docs {
            // Strings hold no raw line breaks, so joining lines changes only the layout.
            let one_line = text.replace('\n', " ");
            assert_eq!(format_source(&one_line).as_deref(), Ok(text.as_str()), "seed {seed}: layout-dependent");
        }
    }
}

#[test]
fn type_aliases_and_long_record_parameters_are_laid_out() {
    assert_formats_to("type   Net={w:mat[2,3],b:vec[2]};\n", "type Net = { w: mat[2, 3], b: vec[2] };\n");
    assert_formats_to(
        "param net: Net = {w: uniform_init(0.5), b: zeros(2)};\n",
        "param net: Net = { w: uniform_init(0.5), b: zeros(2) };\n",
    );
    let long =
        "param decoder_net: Decoder = { w1: uniform_init(1.0 / sqrt(10.0)), b1: uniform_init(1.0 / sqrt(10.0)), \
                inner: { w2: uniform_init(1.0 / sqrt(200.0)), b2: uniform_init(1.0 / sqrt(200.0)), c: 1.0 } };\n";
    assert_formats_to(
        long,
        "param decoder_net: Decoder = {\n    w1: uniform_init(1.0 / sqrt(10.0)),\n    b1: uniform_init(1.0 / sqrt(10.0)),\n    \
         inner: { w2: uniform_init(1.0 / sqrt(200.0)), b2: uniform_init(1.0 / sqrt(200.0)), c: 1.0 },\n};\n",
    );
    assert_round_trip("maximize f() wrt [net.w1, net] with { steps: 1 };\n");
}
