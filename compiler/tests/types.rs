//! What the checker infers for correct programs: trace types, shapes, instances of generic
//! functions, globals. (Errors have golden tests in the root `tests/diagnostics/`.)

use ppl::types::{Dim, Type};
use ppl::Analysis;

fn check_ok(src: &str) -> Analysis {
    let analysis = ppl::check_source("test.ppl", src);
    assert!(!analysis.has_errors(), "unexpected errors:\n{}", analysis.render_diagnostics(Default::default()));
    analysis
}

/// The trace type of the first instance of the `gen` named `name`, printed as a record.
fn trace_of(analysis: &Analysis, name: &str) -> String {
    let instance = analysis
        .checked
        .instances
        .iter()
        .find(|instance| {
            let program = &analysis.files[instance.item.file].program;
            matches!(&program.items[instance.item.item].kind, ppl::syntax::ast::ItemKind::Gen(def) if def.name.name == name)
        })
        .unwrap_or_else(|| panic!("no instance of {name}"));
    Type::Record(instance.trace.clone().expect("a gen instance has a trace")).to_string()
}

fn global_type(analysis: &Analysis, name: &str) -> Type {
    analysis.checked.globals.get(name).unwrap_or_else(|| panic!("no global {name}")).ty.clone()
}

#[test]
fn examples_and_stdlib_check_without_errors() {
    for example in ["cone", "cone_hvi", "flip"] {
        let path = format!("{}/../examples/{example}.ppl", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("example exists");
        let analysis = ppl::check_source(&path, &text);
        assert!(!analysis.has_errors(), "{path}:\n{}", analysis.render_diagnostics(Default::default()));
    }
}

#[test]
fn trace_types_follow_the_choices() {
    let analysis = check_ok(
        "gen cone() { x ~ normal(0.0, 10.0); y ~ normal(0.0, 10.0); z ~ normal(x^2 + y^2, 0.1); }
         gen coin(p: real) { b ~ flip(p); n ~ poisson(3.0); v ~ mv_normal_diag([0.0, 0.0], [1.0, 1.0]); }",
    );
    assert_eq!(trace_of(&analysis, "cone"), "{x: real, y: real, z: real}");
    assert_eq!(trace_of(&analysis, "coin"), "{b: bool, n: int, v: vec[2]}");
}

#[test]
fn nested_generative_calls_nest_their_traces_and_bind_the_return_value() {
    let analysis = check_ok(
        "gen inner(m: real) { a ~ normal(m, 1.0); return a * 2.0; }
         gen outer() { sub ~ inner(0.0); c ~ normal(sub, 1.0); }",
    );
    assert_eq!(trace_of(&analysis, "outer"), "{sub: {a: real}, c: real}");
}

#[test]
fn indexed_addresses_in_loops_are_vectors_of_the_loop_length() {
    let analysis = check_ok(
        "gen model() { for i in 0..8 { y[i] ~ normal(0.0, 1.0); b[i] ~ flip(0.5); } }
         let n = 3;
         gen sized() { for j in 1..n + 1 { w[j] ~ normal(0.0, 1.0); } }",
    );
    assert_eq!(trace_of(&analysis, "model"), "{y: vec[8], b: [bool; 8]}");
    assert_eq!(trace_of(&analysis, "sized"), "{w: vec[3]}");
}

#[test]
fn addresses_in_one_branch_only_are_optional() {
    let analysis = check_ok(
        "gen model() { b ~ flip(0.5); if b { x ~ normal(0.0, 1.0); } else { y ~ normal(0.0, 1.0); } z ~ normal(0.0, 1.0); }
         gen both() { b ~ flip(0.5); if b { x ~ normal(0.0, 1.0); } else { x ~ normal(1.0, 1.0); } }
         fn objective() { E { density(model(), { b: true, x: 1.0, z: 0.0 }) } }",
    );
    assert_eq!(trace_of(&analysis, "model"), "{b: bool, x?: real, y?: real, z: real}");
    assert_eq!(trace_of(&analysis, "both"), "{b: bool, x: real}");
}

#[test]
fn addresses_after_an_early_return_are_optional() {
    let analysis = check_ok(
        "gen stop() { b ~ flip(0.5); if b { y ~ normal(0.0, 1.0); return 0.0; } x ~ normal(0.0, 1.0); y ~ normal(x, 1.0); x }
         gen nested(c: bool) { a ~ normal(0.0, 1.0); { if c { if a > 0.0 { return 1; } } } z ~ normal(a, 1.0); 2 }
         gen both(c: bool) { if c { return 1.0; } else { w ~ normal(0.0, 1.0); return w; } }
         gen looped() { for i in 0..3 { if i == 2 { return i; } } v ~ normal(0.0, 1.0); 0 }",
    );
    // `y` is sampled on both paths (before the `return` and after the `if`), `x` on one.
    assert_eq!(trace_of(&analysis, "stop"), "{b: bool, y: real, x?: real}");
    assert_eq!(trace_of(&analysis, "nested"), "{a: real, z?: real}");
    assert_eq!(trace_of(&analysis, "both"), "{w?: real}");
    assert_eq!(trace_of(&analysis, "looped"), "{v?: real}");
    let returns = |name: &str| {
        let instance = analysis.checked.instances.iter().find(|instance| {
            let program = &analysis.files[instance.item.file].program;
            matches!(&program.items[instance.item.item].kind, ppl::syntax::ast::ItemKind::Gen(def) if def.name.name == name)
        });
        instance.map(|instance| instance.ret.clone())
    };
    assert_eq!(returns("stop"), Some(Type::Real));
    assert_eq!(returns("nested"), Some(Type::Int));
    // Both branches return: the end of the body is never reached, so it adds no `()`.
    assert_eq!(returns("both"), Some(Type::Real));
}

#[test]
fn generative_calls_at_indexed_addresses_are_arrays_of_traces() {
    let analysis = check_ok(
        "gen object(mu: real) { visible ~ flip(0.9); if !visible { return 0.0; } x ~ normal(mu, 1.0); x }
         gen scene() { for i in 0..3 { obj[i] ~ object(1.0); y[i] ~ normal(obj[i].x, 1.0); } }
         gen vectors() { for i in 0..2 { v[i] ~ mv_normal_diag([0.0, 0.0], [1.0, 1.0]); } }
         data rows = [{a: 1.0, b: [true, false]}, {a: 2.0, b: [false, false]}];
         data built = [(i, {c: 1.0 * i}) for i in 0..4];
         fn first_x() { E { density(scene(), { obj: [{visible: true, x: 0.3}, {visible: false, x: 0.0}, {visible: true, x: -1.0}], y: [0.5, -1.0, 2.0] }) } }
         fn rows_x() { E { density(vectors(), { v: [[0.1, 0.2], [0.3, 0.4]] }) } }",
    );
    assert_eq!(trace_of(&analysis, "scene"), "{obj: [{visible: bool, x?: real}; 3], y: vec[3]}");
    assert_eq!(trace_of(&analysis, "vectors"), "{v: [vec[2]; 2]}");
    assert_eq!(global_type(&analysis, "rows").to_string(), "[{a: real, b: [bool; 2]}; 2]");
    assert_eq!(global_type(&analysis, "built").to_string(), "[(int, {c: real}); 4]");
}

#[test]
fn shapes_are_static_through_operators_and_builtins() {
    let analysis = check_ok(
        "let n = 4;
         param w: mat[3, n] = zeros(3, n);
         param v: vec[n] = ones(n);
         data h = w @ v + 1.0;
         data p = softmax(h);
         data s = sum(p) + dot(v, v);
         data m = [[1.0, 2.0], [3.0, 4.0]];
         data r = m[1];
         data c = [i * 2 for i in 0..5];
         data k = len(c);",
    );
    assert_eq!(global_type(&analysis, "h"), Type::Vec(Dim::Known(3)));
    assert_eq!(global_type(&analysis, "p"), Type::Vec(Dim::Known(3)));
    assert_eq!(global_type(&analysis, "s"), Type::Real);
    assert_eq!(global_type(&analysis, "m"), Type::Mat(Dim::Known(2), Dim::Known(2)));
    assert_eq!(global_type(&analysis, "r"), Type::Vec(Dim::Known(2)));
    assert_eq!(global_type(&analysis, "c"), Type::Vec(Dim::Known(5)));
    assert_eq!(analysis.checked.globals["k"].constant, Some(5));
}

#[test]
fn integer_literals_convert_to_real_where_real_is_expected() {
    let analysis = check_ok("param theta: real = 1; fn f(x: real) { x * 2 } data y = f(3); data z = log(5);");
    assert_eq!(global_type(&analysis, "theta"), Type::Real);
    assert_eq!(global_type(&analysis, "y"), Type::Real);
}

#[test]
fn generic_functions_get_one_instance_per_argument_types() {
    let analysis = check_ok(
        "fn twice(x) { x + x }
         data a = twice(1.0);
         data b = twice([1.0, 2.0]);
         data c = twice([1.0, 2.0]);",
    );
    assert_eq!(global_type(&analysis, "a"), Type::Real);
    assert_eq!(global_type(&analysis, "b"), Type::Vec(Dim::Known(2)));
    let instances = analysis.checked.instances.iter().filter(|i| i.args.first() != Some(&Type::Unknown)).count();
    assert_eq!(instances, 2, "real and vec[2]; the second vec[2] call reuses its instance");
}

#[test]
fn constant_integer_arguments_fix_shapes_inside_generic_functions() {
    let analysis = check_ok(
        "gen guide(m: real) { x ~ normal(m, 1.0); }
         gen model() { x ~ normal(0.0, 1.0); z ~ normal(x, 1.0); }
         param m: real = 0.0;
         print estimate(iwelbo(model(), guide(m), { z: 1.0 }, 5), samples: 10);",
    );
    let iwelbo = analysis
        .checked
        .instances
        .iter()
        .find(|instance| instance.constant_args.last() == Some(&Some(5)))
        .expect("iwelbo instantiated with n = 5");
    assert!(iwelbo.types.values().any(|ty| *ty == Type::Vec(Dim::Known(5))), "the weights vector is vec[5]");
    assert_eq!(iwelbo.ret, Type::real_estimate());
}

#[test]
fn marginal_and_normalize_have_the_traces_of_what_they_keep() {
    let analysis = check_ok(
        "gen cone() { x ~ normal(0.0, 10.0); y ~ normal(0.0, 10.0); z ~ normal(x^2 + y^2, 0.1); }
         gen hvi(ls: vec[2]) { u ~ uniform(0.0, 1.0); x ~ normal(cos(u), exp(ls[0])); y ~ normal(sin(u), exp(ls[1])); }
         gen aux(x: real) { u ~ uniform(0.0, 1.0); }
         gen q() { x ~ normal(0.0, 1.0); y ~ normal(0.0, 1.0); }
         param ls: vec[2] = [0.0, 0.0];
         data obs = { z: 5.0 };
         fn objectives(ls) {
             elbo(cone(), marginal(hvi(ls), select(x, y), sir(5, aux(1.0))), obs)
                 + iwelbo(cone(), normalize(posterior(cone(), obs), sir(10, q())), obs, 2)
         }
         print estimate(objectives(ls), samples: 10);",
    );
    assert!(!analysis.has_errors());
}

#[test]
fn a_user_definition_replaces_the_standard_library_one() {
    let analysis = check_ok(
        "fn elbo(a, b) { a + b }
         data x = elbo(1.0, 2.0);",
    );
    assert_eq!(global_type(&analysis, "x"), Type::Real);
}

#[test]
fn definitions_may_be_used_before_they_appear() {
    let analysis = check_ok(
        "data y = f(n);
         fn f(k: int) { k * 2 }
         let n = 21;",
    );
    assert_eq!(analysis.checked.globals["n"].constant, Some(21));
    assert_eq!(global_type(&analysis, "y"), Type::Int);
}

#[test]
fn estimate_combinators_are_estimates() {
    let analysis = check_ok(
        "param t: real = 0.5;
         fn a(t) { E { x ~ normal(t, 1.0); x } }
         fn combined(t) { 2.0 * a(t) + a(t) * a(t) - exp(a(t)) + 1.0 }
         maximize combined(t) with { optimizer: adam(lr: 0.01), steps: 10 };",
    );
    assert!(!analysis.has_errors());
}

#[test]
fn via_annotations_accept_what_each_distribution_supports() {
    check_ok(
        "fn f(t) {
             E {
                 a ~ normal(t, 1.0) via reparam;
                 b ~ normal(t, 1.0) via reinforce(baseline: 0.5);
                 c ~ gamma(t, 1.0) via implicit;
                 d ~ flip(0.3) via enum;
                 e ~ flip(0.3) via mvd;
                 k ~ categorical([0.2, 0.8]) via enum;
                 p ~ poisson(t) via mvd;
                 g ~ beta(t, 2.0);
                 if d && e { a + b + c + g } else { p + k }
             }
         }",
    );
}

#[test]
fn type_aliases_stand_for_their_types_everywhere_a_type_is_written() {
    let analysis = check_ok(
        "let n = 3;
         param layer: Layer = { w: uniform_init(0.1), b: zeros(n) };
         type Layer = { w: mat[n, 2], b: Bias };
         type Bias = vec[n];
         data x: Bias = [1.0, 2.0, 3.0];
         fn apply(l: Layer, v: vec[2]) -> Bias { l.w @ v + l.b }
         let y: Bias = apply(layer, [1.0, 0.0]);
         param deep: { inner: Layer, s: real } = { inner: { w: zeros(3, 2), b: x }, s: 0.5 };",
    );
    assert_eq!(global_type(&analysis, "layer").to_string(), "{w: mat[3, 2], b: vec[3]}");
    assert_eq!(global_type(&analysis, "x"), Type::Vec(Dim::Known(3)));
    assert_eq!(global_type(&analysis, "y"), Type::Vec(Dim::Known(3)));
    assert_eq!(global_type(&analysis, "deep").to_string(), "{inner: {w: mat[3, 2], b: vec[3]}, s: real}");
}
