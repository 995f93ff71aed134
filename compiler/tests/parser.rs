//! The parser: precedence and associativity, every syntactic form, doc comments, recovery.

use ppl::diagnostics::ErrorCode;
use ppl::syntax::ast::ItemKind;
use ppl::syntax::parse;
use ppl::syntax::sexp::{expr_sexp, program_sexp};

/// The S-expression of the value of `let e = SOURCE;`.
fn expr(source: &str) -> String {
    let parsed = parse(&format!("let e = {source};"), 0);
    assert!(parsed.diagnostics.is_empty(), "{source}: {:?}", parsed.diagnostics);
    match &parsed.program.items[0].kind {
        ItemKind::Let(binding) => expr_sexp(&binding.value),
        other => panic!("not a let: {other:?}"),
    }
}

fn program(source: &str) -> String {
    let parsed = parse(source, 0);
    assert!(parsed.diagnostics.is_empty(), "{source}: {:?}", parsed.diagnostics);
    program_sexp(&parsed.program)
}

#[test]
fn power_binds_tighter_than_unary_minus_and_associates_right() {
    assert_eq!(expr("-x^2"), "(neg (^ x 2))");
    assert_eq!(expr("a^b^c"), "(^ a (^ b c))");
    assert_eq!(expr("2^-1"), "(^ 2 (neg 1))");
    assert_eq!(expr("(-x)^2"), "(^ (neg x) 2)");
    assert_eq!(expr("-x * y"), "(* (neg x) y)");
}

#[test]
fn binary_operators_follow_the_precedence_table() {
    assert_eq!(expr("a - b - c"), "(- (- a b) c)");
    assert_eq!(expr("a + b * c"), "(+ a (* b c))");
    assert_eq!(expr("a / b * c"), "(* (/ a b) c)");
    assert_eq!(expr("m @ v + b"), "(+ (@ m v) b)");
    assert_eq!(expr("a ++ b + c"), "(++ a (+ b c))");
    assert_eq!(expr("a < b ++ c"), "(< a (++ b c))");
    assert_eq!(expr("a || b && c"), "(|| a (&& b c))");
    assert_eq!(expr("!a && b"), "(&& (not a) b)");
    assert_eq!(expr("a == b || c != d"), "(|| (== a b) (!= c d))");
    assert_eq!(expr("a <= b && c >= d"), "(&& (<= a b) (>= c d))");
}

#[test]
fn postfix_forms_chain() {
    assert_eq!(expr("t.x[0]"), "(index (. t x) 0)");
    assert_eq!(expr("p.0"), "(. p 0)");
    assert_eq!(expr("m[i, j]"), "(index m i j)");
    assert_eq!(expr("-v[0]"), "(neg (index v 0))");
    assert_eq!(expr("f(x).y"), "(. (call f x) y)");
}

#[test]
fn literals_calls_and_collections() {
    assert_eq!(expr("1"), "1");
    assert_eq!(expr("1.5e-3"), "0.0015");
    assert_eq!(expr("2E+2"), "200.0");
    assert_eq!(expr("\"a\\\"b\""), "\"a\\\"b\"");
    assert_eq!(expr("adam(lr: 0.1)"), "(call adam (lr: 0.1))");
    assert_eq!(expr("f(a, b,)"), "(call f a b)");
    assert_eq!(expr("[1.0, 2.0]"), "[1.0 2.0]");
    assert_eq!(expr("[]"), "[]");
    assert_eq!(expr("[x * i for i in 0..n]"), "(for-vec (* x i) i 0 n)");
    assert_eq!(expr("[1.0 for _ in 0..3]"), "(for-vec 1.0 _ 0 3)");
    assert_eq!(expr("{ z: 5.0, w: v }"), "(record (z: 5.0) (w: v))");
    assert_eq!(expr("{ x }"), "(block (value x))");
    assert_eq!(expr("()"), "(tuple)");
    assert_eq!(expr("(a,)"), "(tuple a)");
    assert_eq!(expr("(a, b)"), "(tuple a b)");
    assert_eq!(expr("(a)"), "a");
}

#[test]
fn calls_take_positional_then_named_arguments() {
    assert_eq!(expr("f(a, lr: 0.1)"), "(call f a (lr: 0.1))");
    assert_eq!(expr("f()"), "(call f)");
    assert_eq!(expr("estimate(elbo(p, q, obs), samples: 5000)"), "(call estimate (call elbo p q obs) (samples: 5000))");
}

#[test]
fn a_field_of_a_tuple_field_needs_parentheses() {
    // The lexer reads `t.0.1` as `t`, `.`, `0.1`; the formatter prints these forms.
    assert_eq!(expr("(t.0).1"), "(. (. t 0) 1)");
    assert_eq!(expr("(1).0"), "(. 1 0)");
    assert_eq!(expr("t.a.b"), "(. (. t a) b)");
}

#[test]
fn conditionals_and_expectations() {
    assert_eq!(expr("if a { 1 } else { 2 }"), "(if a (block (value 1)) (block (value 2)))");
    assert_eq!(
        expr("if a { 1 } else if b { 2 } else { 3 }"),
        "(if a (block (value 1)) (if b (block (value 2)) (block (value 3))))"
    );
    assert_eq!(expr("if a { f(); }"), "(if a (block (do (call f))))");
    assert_eq!(expr("E { x ~ normal(0.0, 1.0); x }"), "(E (block (~ x (call normal 0.0 1.0)) (value x)))");
}

#[test]
fn statements() {
    let body = program(
        "gen g(n: int) {
             let (a, b) = pair;
             let c: real = 1.0;
             x ~ flip(0.5) via reinforce(baseline: 0.5);
             for i in 0..n { y[i] ~ normal(0.0, 1.0) via reparam; }
             if x { f(); }
             return a;
         }",
    );
    assert!(body.contains("(let (tuple a b) pair)"), "{body}");
    assert!(body.contains("(let c: real 1.0)"), "{body}");
    assert!(body.contains("(~ x (call flip 0.5) (via reinforce (args (baseline: 0.5))))"), "{body}");
    assert!(body.contains("(for i 0 n (block (~ (index y i) (call normal 0.0 1.0) (via reparam))))"), "{body}");
    assert!(body.contains("(do (if x (block (do (call f)))))"), "{body}");
    assert!(body.contains("(return a)"), "{body}");
}

#[test]
fn loops_may_ignore_their_index_and_estimators_may_take_no_arguments() {
    let body = program("gen g(n: int) { for _ in 0..n { z ~ flip(0.5) via reinforce(); } }");
    assert_eq!(body, "(gen g ((n: int)) (block (for _ 0 n (block (~ z (call flip 0.5) (via reinforce (args)))))))");
}

#[test]
fn every_item_kind() {
    let items = program(
        "gen g() -> real { 1.0 }
         fn f(a, b: vec[2]) -> mat[2, n] { a }
         param p: vec[2] = [0.0, 0.0];
         data d: { z: real } = { z: 1.0 };
         let k = 3;
         print a, b;
         maximize a wrt [x, y], b wrt [z] with { steps: 10, optimizer: sgd(lr: 0.1) };
         minimize c;",
    );
    let expected = [
        "(gen g () -> real (block (value 1.0)))",
        "(fn f (a (b: vec[2])) -> mat[2, n] (block (value a)))",
        "(param p: vec[2] [0.0 0.0])",
        "(data d: (record (z: real)) (record (z: 1.0)))",
        "(let k 3)",
        "(print a b)",
        "(maximize (wrt a [x y]) (wrt b [z]) (with (steps: 10) (optimizer: (call sgd (lr: 0.1)))))",
        "(minimize c (with))",
    ];
    assert_eq!(items, expected.join("\n"));
}

#[test]
fn doc_comments_attach_to_the_next_item_only() {
    let parsed = parse(
        "/// First line.\n/// Second line.\ngen g() { x ~ normal(0.0, 1.0); }\n// plain\nparam p: real = 1.0;",
        0,
    );
    assert_eq!(parsed.program.items[0].doc.as_deref(), Some("First line.\nSecond line."));
    assert_eq!(parsed.program.items[1].doc, None);
}

#[test]
fn doc_comments_run_across_plain_comments_and_blank_lines_but_not_into_bodies() {
    let items = program(
        "/// Model.\n// plain\n\n///More.\n///  Indented.\n///\ngen g() {\n    /// inside: not documentation\n    \
         x ~ normal(0.0, 1.0);\n}\nparam p: real = 1.0;\n/// after the last item: documents nothing\n",
    );
    assert_eq!(
        items,
        "(doc \"Model.\\nMore.\\n Indented.\\n\" (gen g () (block (~ x (call normal 0.0 1.0)))))\n(param p: real 1.0)"
    );
}

#[test]
fn block_comments_nest() {
    assert_eq!(program("/* outer /* inner */ still comment */ let a = 1;"), "(let a 1)");
}

#[test]
fn spans_cover_their_source() {
    let source = "let e = a + b * c;";
    let parsed = parse(source, 0);
    let ItemKind::Let(binding) = &parsed.program.items[0].kind else { panic!("a let") };
    assert_eq!(&source[binding.value.span.range()], "a + b * c");
    assert_eq!(&source[binding.name.span.range()], "e");
    // Spans are shifted by the file's base offset in the shared source map.
    let shifted = parse(source, 100);
    let ItemKind::Let(binding) = &shifted.program.items[0].kind else { panic!("a let") };
    assert_eq!(binding.value.span.start, 108);
}

#[test]
fn every_broken_item_is_reported_and_the_good_ones_survive() {
    let source = "gen a() { x ~ normal(0.0, 1.0) y ~ normal(0.0, 1.0); }
         param good: real = 1.0;
         fn b(x) { x + }
         let also_good = 2;
         print 1 +* 2;
         data last = 3;";
    let parsed = parse(source, 0);
    assert!(parsed.diagnostics.len() >= 3, "{:?}", parsed.diagnostics);
    for diagnostic in &parsed.diagnostics {
        assert!(matches!(diagnostic.code, ErrorCode::UnexpectedToken | ErrorCode::MissingSemicolon), "{diagnostic:?}");
    }
    // One diagnostic inside each broken item (each is on its own line).
    for broken in ["gen a()", "fn b(x)", "print 1"] {
        let start = source.find(broken).unwrap_or_else(|| panic!("{broken} is in the source"));
        let end = start + source[start..].find('\n').unwrap_or(source.len() - start);
        let reported = parsed.diagnostics.iter().any(|diagnostic| {
            diagnostic.primary.as_ref().is_some_and(|label| (start..=end).contains(&(label.span.start as usize)))
        });
        assert!(reported, "no diagnostic in `{}`: {:?}", &source[start..end], parsed.diagnostics);
    }
    let names: Vec<String> = parsed
        .program
        .items
        .iter()
        .filter_map(|item| match &item.kind {
            ItemKind::Param(b) | ItemKind::Let(b) | ItemKind::Data(b) => Some(b.name.name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["good", "also_good", "last"]);
}

#[test]
fn several_broken_statements_in_one_block_are_each_reported() {
    let parsed = parse("fn f() { let a = ; let b = 1.0; let c = * 2.0; b }", 0);
    assert_eq!(parsed.diagnostics.len(), 2, "{:?}", parsed.diagnostics);
}

#[test]
fn a_missing_semicolon_between_expressions_has_its_own_code() {
    let parsed = parse("fn f(x) { x + 1.0\n x - 1.0 }", 0);
    assert_eq!(parsed.diagnostics.len(), 1);
    assert_eq!(parsed.diagnostics[0].code, ErrorCode::MissingSemicolon);
}

#[test]
fn the_examples_and_the_standard_library_parse_cleanly() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    for path in ["examples/cone.ppl", "examples/cone_hvi.ppl", "examples/flip.ppl", "stdlib/vi.ppl"] {
        let text = std::fs::read_to_string(format!("{root}/{path}")).expect("readable");
        let parsed = parse(&text, 0);
        assert!(parsed.diagnostics.is_empty(), "{path}: {:?}", parsed.diagnostics);
    }
}

#[test]
fn doc_comments_in_crlf_files_lose_their_carriage_returns() {
    let parsed = parse("/// doc\r\nparam a: real = 1.0;\r\n", 0);
    assert_eq!(parsed.program.items[0].doc.as_deref(), Some("doc"));
}

#[test]
fn type_aliases_are_items_and_wrt_names_parts_of_record_parameters() {
    assert_eq!(program("type Net = { w: mat[2, n], b: vec[2] };"), program("type Net = {w: mat[2, n], b: vec[2],};"),);
    assert!(program("type Net = { w: mat[2, 3] };").starts_with("(type Net "));
    assert_eq!(
        program("maximize f() wrt [net.w1, net, a.b.c] with { steps: 1 };"),
        "(maximize (wrt (call f) [net.w1 net a.b.c]) (with (steps: 1)))"
    );
    // `type` is a keyword: not a name any more.
    assert!(!parse("let type = 1;", 0).diagnostics.is_empty());
}
