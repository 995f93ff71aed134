//! Differential testing of the two back ends: random well-typed programs — parameters, `fn`
//! objectives whose `E { … }` bodies draw from every kind of distribution with every
//! estimator, mix the draws by arithmetic, special functions, branches, vectors and
//! comprehensions — must print the same bits under the Cranelift JIT and the reference
//! interpreter, or fail with the same diagnostic.
//!
//! Programs come from a fixed seed (`PPL_DIFFERENTIAL_SEED` to explore others) and the test runs
//! for a fixed number of programs, sized to take seconds in CI; `PPL_DIFFERENTIAL_PROGRAMS`
//! runs more. A disagreeing program is printed with both outputs.

use ppl::run::{Backend, RunOptions, Session};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Writes random programs, each a few parameters and one objective.
struct Writer {
    rng: ChaCha8Rng,
    /// Real-valued names in scope: parameters, then draws and `let`s of the body so far.
    reals: Vec<String>,
    fresh: usize,
}

impl Writer {
    fn name(&mut self, prefix: &str) -> String {
        self.fresh += 1;
        format!("{prefix}{}", self.fresh)
    }

    /// A real expression of at most `depth` levels over the names in scope.
    fn real(&mut self, depth: u32) -> String {
        let leaf = depth == 0 || self.rng.random_bool(0.3);
        if leaf {
            return if self.rng.random_bool(0.7) && !self.reals.is_empty() {
                self.reals.choose(&mut self.rng).cloned().unwrap_or_else(|| "1.0".into())
            } else {
                ["0.5", "1.0", "-1.5", "2.0", "0.1", "3.0"].choose(&mut self.rng).map_or("1.0", |x| x).to_string()
            };
        }
        let (a, b) = (self.real(depth - 1), self.real(depth - 1));
        match self.rng.random_range(0..12) {
            0 => format!("({a} + {b})"),
            1 => format!("({a} - {b})"),
            2 => format!("({a} * {b})"),
            3 => format!("({a} / (abs({b}) + 0.5))"),
            4 => format!("exp(tanh({a}))"),
            5 => format!("log(softplus({a}) + 0.01)"),
            6 => format!("sqrt(abs({a}))"),
            7 => format!("sigmoid({a})"),
            8 => format!("min({a}, {b})"),
            9 => format!("max({a}, {b})"),
            10 => format!("(if {a} > {b} {{ {a} }} else {{ {b} * 0.5 }})"),
            _ => format!("({a})^2"),
        }
    }

    /// A positive real expression.
    fn positive(&mut self, depth: u32) -> String {
        format!("(softplus({}) + 0.1)", self.real(depth))
    }

    /// One statement of an `E { … }` body: a choice or a `let`, adding its name to the scope.
    fn statement(&mut self) -> String {
        let (mean, scale) = (self.real(2), self.positive(2));
        let name = self.name("z");
        let statement = match self.rng.random_range(0..20) {
            0 => format!("{name} ~ normal({mean}, {scale});"),
            1 => format!("{name} ~ normal({mean}, {scale}) via reinforce;"),
            2 => format!("{name} ~ uniform({mean}, {mean} + {scale});"),
            3 => format!("{name} ~ exponential({scale});"),
            4 => format!("{name} ~ laplace({mean}, {scale});"),
            5 => format!("{name} ~ lognormal(tanh({mean}), {scale});"),
            6 => format!("{name} ~ gamma({scale}, {scale});"),
            7 => format!("{name} ~ beta({scale}, 1.5);"),
            8 => {
                let estimator = ["reinforce", "enum", "mvd"].choose(&mut self.rng).copied().unwrap_or("enum");
                let coin = self.name("b");
                let (then, otherwise) = (self.real(1), self.real(1));
                format!("{coin} ~ flip(sigmoid({mean})) via {estimator};\n        let {name} = if {coin} {{ {then} }} else {{ {otherwise} }};")
            }
            9 => {
                let count = self.name("n");
                format!("{count} ~ poisson({scale}) via reinforce;\n        let {name} = {mean} * 0.5;")
            }
            10 => {
                let vector = self.name("v");
                format!(
                    "{vector} ~ mv_normal_diag([{mean}, 0.5, {mean}], [{scale}, 1.0, 2.0]);\n        let {name} = sum({vector} * [1.0, -0.5, 0.25]) + {vector}[1];"
                )
            }
            11 => format!("{name} ~ half_normal({scale});"),
            12 => format!("{name} ~ half_cauchy({scale});"),
            13 => format!("{name} ~ student_t({scale} + 2.0, {mean}, {scale});"),
            16 => {
                let coin = self.name("b");
                let (then, otherwise) = (self.real(1), self.real(1));
                format!("{coin} ~ bernoulli_logit({mean});\n        let {name} = if {coin} {{ {then} }} else {{ {otherwise} }};")
            }
            15 => {
                let count = self.name("n");
                format!("{count} ~ binomial(7, sigmoid({mean}));\n        let {name} = {mean} * 0.25;")
            }
            14 => {
                let count = self.name("n");
                format!("{count} ~ negative_binomial({scale}, 0.5);\n        let {name} = {mean} * 0.25;")
            }
            17 => {
                let vector = self.name("v");
                format!(
                    "{vector} ~ dirichlet([{scale}, 1.5, {scale}]);\n        let {name} = {vector}[0] - {vector}[2];"
                )
            }
            18 => {
                let vector = self.name("v");
                format!(
                    "{vector} ~ mv_normal([{mean}, 0.5], [[{scale}, 0.0], [{mean}, 1.5]]);\n        let {name} = {vector}[0] * {vector}[1];"
                )
            }
            _ => format!("let {name} = sum([{mean} * 0.5 for _ in 0..3]) + {scale};"),
        };
        self.reals.push(name);
        statement
    }

    fn program(&mut self) -> String {
        self.reals = vec!["a".into(), "c".into()];
        self.fresh = 0;
        let statements: Vec<String> = (0..self.rng.random_range(1..5)).map(|_| self.statement()).collect();
        // Every draw reaches the result, so none is optimised away.
        let drawn: Vec<String> = self.reals[2..].iter().map(|name| format!("tanh({name})")).collect();
        let result = format!("{} + {}", self.real(3), drawn.join(" + "));
        format!(
            "param a: real = {};\nparam c: real = {};\n\
             fn objective(a, c) {{\n    E {{\n        {}\n        {result}\n    }}\n}}\n\
             print estimate(objective(a, c), samples: 40);\n\
             print grad(objective(a, c), samples: 40);\n",
            ["0.3", "-0.7", "1.2"].choose(&mut self.rng).map_or("0.3", |x| x),
            ["0.5", "2.0", "-1.0"].choose(&mut self.rng).map_or("0.5", |x| x),
            statements.join("\n        "),
        )
    }
}

/// What a back end prints for `source`: every output line, or the diagnostic it stops with.
fn run(analysis: &ppl::Analysis, backend: Backend) -> Vec<String> {
    let options = RunOptions { backend, seed: Some(3), threads: Some(1), ..Default::default() };
    let mut printed = Vec::new();
    let outcome = Session::new(analysis, options)
        .and_then(|mut session| session.run_commands(&mut |output| printed.push(output.to_string())));
    if let Err(diagnostic) = outcome {
        printed.push(ppl::diagnostics::render(&diagnostic, &analysis.sources, ppl::diagnostics::ColorChoice::Never));
    }
    printed
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

#[test]
fn random_programs_print_the_same_bits_on_both_back_ends() {
    let programs = setting("PPL_DIFFERENTIAL_PROGRAMS", 300);
    let mut writer =
        Writer { rng: ChaCha8Rng::seed_from_u64(setting("PPL_DIFFERENTIAL_SEED", 2026)), reals: Vec::new(), fresh: 0 };
    let mut checked = 0;
    let mut ran = 0;
    for _ in 0..programs {
        let source = writer.program();
        if std::env::var_os("PPL_DIFFERENTIAL_SHOW").is_some() {
            eprintln!("{source}");
        }
        let analysis = ppl::check_source("random.ppl", &source);
        assert!(
            !analysis.has_errors(),
            "the writer wrote a program that does not check:\n{source}\n{}",
            analysis.render_diagnostics(ppl::diagnostics::ColorChoice::Never)
        );
        checked += 1;
        let native = run(&analysis, Backend::Jit);
        let interpreted = run(&analysis, Backend::Interpreter);
        assert_eq!(native, interpreted, "the back ends disagree on\n{source}");
        if native.len() == 2 {
            ran += 1;
        }
    }
    assert_eq!(checked, programs);
    eprintln!("{programs} programs: {ran} ran to the end, the others stopped with the same diagnostic on both");
    // Most programs must run to the end: a writer whose programs all fail tests nothing.
    assert!(ran * 10 >= programs * 7, "only {ran} of {programs} programs ran to the end");
}

/// A program reading `data` vectors and matrices of `n` elements every way an estimate can:
/// whole, by constant and loop index, through `@`, in a record, and printed directly.
fn data_program(n: usize) -> String {
    let xs: Vec<String> = (0..n).map(|i| format!("{:?}", (i as f64 * 0.37).sin())).collect();
    let rows: Vec<String> = (0..3)
        .map(|r| {
            format!("[{}]", xs.iter().skip(r).cloned().chain(xs.iter().take(r).cloned()).collect::<Vec<_>>().join(", "))
        })
        .collect();
    format!(
        "data xs: vec[{n}] = [{}];\n\
         data m: mat[3, {n}] = [{}];\n\
         data obs = {{ y: xs }};\n\
         gen model(w: real) {{ y ~ mv_normal_diag(w * xs, ones({n})); }}\n\
         param w: real = 0.5;\n\
         fn objective(w) {{ E {{ density(model(w), obs) + sum([xs[i] * w for i in 0..{n}]) + xs[1] + sum(m @ xs) }} }}\n\
         print xs[0], sum(m @ xs);\n\
         print estimate(objective(w), samples: 5);\n\
         print grad(objective(w), samples: 5);\n",
        xs.join(", "),
        rows.join(", "),
    )
}

#[test]
fn data_is_read_in_place_by_both_back_ends_and_costs_no_code() {
    let source = data_program(40);
    let analysis = ppl::check_source("data.ppl", &source);
    assert!(!analysis.has_errors(), "{}", analysis.render_diagnostics(ppl::diagnostics::ColorChoice::Never));
    let native = run(&analysis, Backend::Jit);
    assert_eq!(native.len(), 4, "{native:?}");
    assert_eq!(native, run(&analysis, Backend::Interpreter));

    let ir_lines = |n: usize| {
        let analysis = ppl::check_source("data.ppl", &data_program(n));
        let options = RunOptions { emit_ir: true, seed: Some(3), threads: Some(1), ..Default::default() };
        let mut lines = 0;
        let mut session = Session::new(&analysis, options).expect("it compiles");
        session
            .run_commands(&mut |output| {
                if let ppl::run::Output::Ir { text, .. } = output {
                    lines += text.lines().count();
                }
            })
            .expect("it runs");
        lines
    };
    assert_eq!(ir_lines(40), ir_lines(4000), "the code of an estimate grows with its data");
}

/// A one-column matrix's rows are vectors of one element, not scalars: compiled code read them
/// as 0 and could not build them (an internal error), where the interpreter was right.
#[test]
fn one_column_matrices_agree_on_both_back_ends() {
    let source = "param m: mat[2, 1] = [[2.0], [3.0]];\nparam p: real = 2.0;\n\
                  print estimate(E { m[1, 0] + m[0][0] }, samples: 2);\n\
                  print estimate(E { let x = [[p] for i in 0..2]; x[0, 0] + sum(m[.., 0..1] @ [1.0]) }, samples: 2);\n\
                  print grad(E { let x = [[p * m[1, 0]] for i in 0..2]; x[1, 0] }, samples: 2);\n";
    let analysis = ppl::check_source("columns.ppl", source);
    assert!(!analysis.has_errors(), "{}", analysis.render_diagnostics(ppl::diagnostics::ColorChoice::Never));
    let native = run(&analysis, Backend::Jit);
    assert_eq!(native, run(&analysis, Backend::Interpreter));
    assert!(native[0].ends_with("= 5 ± 0 (2 samples)"), "{native:?}");
    assert!(native[1].ends_with("= 7 ± 0 (2 samples)"), "{native:?}");
    assert!(native[2].contains("d/dp = 3 ± 0"), "{native:?}");
}

/// Estimates of vectors — through `enum`, `mvd` and REINFORCE choices, minibatches of rows and
/// the estimate combinators — give the same bits on both back ends.
#[test]
fn vector_estimates_agree_on_both_back_ends() {
    let source = "param p: real = 0.3;\ndata rows = [[1.0, 2.0, 0.5], [3.0, 4.0, 1.5], [5.0, 7.0, 2.5]];\n\
         fn noisy(r: vec[3]) { E { x ~ normal(0.0, 1.0); r * x }\n}\n\
         fn coins(p) { E { b ~ flip(p) via enum; c ~ flip(p) via mvd; k ~ poisson(2.0) via reinforce;\
             x ~ normal(if b { 1.0 } else { -1.0 }, 1.0); [x, if c { x } else { 2.0 * k }, x * p] } }\n\
         print estimate(coins(p), samples: 300);\n\
         print estimate(2.0 * coins(p) - E { [p, 1.0, 0.0] } + mean_over(rows, noisy, batch: 2) * coins(p), samples: 300);\n";
    let analysis = ppl::check_source("vectors.ppl", source);
    assert!(!analysis.has_errors(), "{}", analysis.render_diagnostics(ppl::diagnostics::ColorChoice::Never));
    let native = run(&analysis, Backend::Jit);
    assert_eq!(native, run(&analysis, Backend::Interpreter));
    assert!(native.iter().all(|line| line.contains("] (300 samples)")), "{native:?}");
}

/// Early `return`s — from nested `if`s and blocks, from a loop, of records conformed to one
/// layout, in `fn`s inlined into an estimate and in `gen`s run by `sim`, `density` and `elbo`,
/// model and guide — give the same bits on both back ends, and the values their paths define.
#[test]
fn early_returns_agree_on_both_back_ends() {
    let source = "fn clipped(x: real) -> real { if x > 1.0 { return 1.0; } x }\n\
         fn first_above(v: vec[5], t: real) -> int { for i in 0..5 { if v[i] > t { return i; } } -1 }\n\
         fn sign(x: real) { if x > 0.0 { return 1; } else { return -1; } }\n\
         fn pair(x: real) {\n\
             let y = if x > 0.0 { let z = 2.0 * x; if z > 3.0 { return { b: [x, x], a: 1.0 }; } z } else { -x };\n\
             { a: y, b: [y, 2.0 * y] }\n\
         }\n\
         gen inner(m: real) { a ~ normal(m, 1.0); if a > m { return a; } c ~ normal(a, 1.0); c }\n\
         gen outer(m: real) {\n\
             u ~ normal(m, 1.0);\n\
             if u < -1.0 { return 0.0; }\n\
             sub ~ inner(u);\n\
             for i in 0..3 { if sub > 10.0 + i { return sub; } }\n\
             w ~ normal(sub, 1.0);\n\
             w\n\
         }\n\
         gen model(m: real) { b ~ flip(0.3); if b { u ~ normal(-2.0, 1.0); return 0.0; } u ~ normal(m, 1.0); sub ~ inner(u); w ~ normal(sub, 1.0); w }\n\
         gen guide(q: real, m: real) { b ~ flip(q) via enum; if b { u ~ normal(-2.0, 0.5); return 0.0; } u ~ normal(m, 1.0); sub ~ inner(u); 1.0 }\n\
         param theta: real = 0.3;\n\
         param q: real = 0.4;\n\
         print clipped(2.0), clipped(0.5), first_above([0.0, 1.0, 5.0, 3.0, 9.0], 2.0), first_above(zeros(5), 1.0), sign(-2.0), sign(3.0);\n\
         print pair(1.0), pair(2.0), pair(-1.0);\n\
         print sample(outer(theta), 20);\n\
         fn clipped_mean(theta) { E { x ~ normal(theta, 1.0); clipped(x) + sign(x) } }\n\
         fn weights(theta) { E { let (t, w) = sim(outer(theta)); density(outer(theta + 1.0), t) - w + t.u } }\n\
         print estimate(clipped_mean(theta), samples: 200);\n\
         print grad(clipped_mean(theta), samples: 200);\n\
         print estimate(weights(theta), samples: 200);\n\
         print grad(weights(theta), samples: 200);\n\
         print estimate(elbo(model(theta), guide(q, theta), { w: 0.5 }), samples: 200);\n\
         print grad(elbo(model(theta), guide(q, theta), { w: 0.5 }), samples: 200);\n";
    let analysis = ppl::check_source("returns.ppl", source);
    assert!(!analysis.has_errors(), "{}", analysis.render_diagnostics(ppl::diagnostics::ColorChoice::Never));
    let native = run(&analysis, Backend::Jit);
    assert_eq!(native, run(&analysis, Backend::Interpreter));
    assert_eq!(native.len(), 36, "{native:?}");
    let values = "clipped(2.0) = 1.0\nclipped(0.5) = 0.5\nfirst_above([0.0, 1.0, 5.0, 3.0, 9.0], 2.0) = 2\n\
                  first_above(zeros(5), 1.0) = -1\nsign(-2.0) = -1\nsign(3.0) = 1\n\
                  pair(1.0) = {a: 2.0, b: [2.0, 4.0]}\npair(2.0) = {a: 1.0, b: [2.0, 2.0]}\n\
                  pair(-1.0) = {a: 1.0, b: [1.0, 2.0]}";
    assert_eq!(native[..9].join("\n"), values);
    // A trace stops where its function returned: `u < -1` keeps `u` alone, `a > u` ends `sub`.
    for trace in &native[10..30] {
        let u: f64 = trace.split(['{', '}', ',', ':']).nth(2).and_then(|u| u.trim().parse().ok()).expect("u");
        assert_eq!(u < -1.0, !trace.contains("sub"), "{trace}");
        assert_eq!(trace.contains("sub"), trace.contains("w:"), "{trace}");
    }
    // Both traces are reparameterised by `theta` alike: the weight's derivative is `t.u`'s.
    assert!(native[33].contains("d/dtheta = 1 ±"), "{}", native[33]);
}

/// `gen` functions called at loop-indexed addresses — arrays of traces with bools, optional
/// addresses and early returns in their elements — vectors drawn at loop-indexed addresses,
/// and literals, comprehensions and slices of records: `sample`, `sim`, `density` of lists of
/// records and matrices, `elbo`, `iwelbo`, `marginal`, `normalize` and `mean_over` give the same
/// bits on both back ends.
#[test]
fn arrays_of_traces_agree_on_both_back_ends() {
    let source = "gen object(mu: real) { visible ~ flip(0.9); if !visible { return 0.0; } x ~ normal(mu, 1.0); x }\n\
         gen scene(mus: vec[3]) { for i in 0..3 { obj[i] ~ object(mus[i]); y[i] ~ normal(obj[i].x, 1.0); } }\n\
         gen object_guide(p: real, m: real) { visible ~ flip(p) via enum; if visible { x ~ normal(m, 1.0); } }\n\
         gen scene_guide(p: real, m: vec[3]) { for i in 0..3 { obj[i] ~ object_guide(p, m[i]); } }\n\
         gen prior() { for i in 0..3 { obj[i] ~ object(0.0); } }\n\
         gen vecs(m: real) { for i in 0..2 { v[i] ~ mv_normal_diag([m, 2.0 * m], [1.0, 1.0]); k[i] ~ poisson(exp(v[i][0])); } }\n\
         data mus = [0.0, 1.0, -1.0];\n\
         data obs = { y: [0.5, -1.0, 2.0] };\n\
         data full = { obj: [{visible: true, x: 0.3}, {visible: false, x: 0.0}, {visible: true, x: -1.0}], y: [0.5, -1.0, 2.0] };\n\
         data rows = [{a: 1.0, b: true}, {a: 2.0, b: false}, {a: 4.0, b: true}];\n\
         param p: real = 0.7;\n\
         param m: vec[3] = [0.1, 0.2, 0.3];\n\
         param theta: real = 0.5;\n\
         fn per_row(r) { E { if r.b { r.a * theta } else { 0.0 } } }\n\
         print full, rows[2].a;\n\
         print sample(scene(mus), 5);\n\
         print sample(vecs(theta), 3);\n\
         print estimate(E { density(scene(mus), full) }, samples: 1);\n\
         print estimate(E { density(vecs(theta), { v: [[0.1, 0.2], [0.3, 0.4]], k: [1, 2] }) }, samples: 1);\n\
         print estimate(E { let (t, w) = sim(scene(mus)); t.obj[1].x + w - density(scene(mus), t) }, samples: 50);\n\
         print grad(E { let (t, w) = sim(vecs(theta)); t.v[1][1] + w }, samples: 50);\n\
         print estimate(elbo(scene(mus), scene_guide(p, m), obs), samples: 50);\n\
         print grad(elbo(scene(mus), scene_guide(p, m), obs), samples: 50);\n\
         print estimate(iwelbo(scene(mus), prior(), obs, 3), samples: 20);\n\
         print estimate(E { let (t, w) = sim(marginal(scene(mus), select(obj), sir(2))); t.obj[0].x + w }, samples: 20);\n\
         print estimate(E { let (t, w) = sim(normalize(posterior(scene(mus), obs), sir(3, prior()))); t.obj[2].x }, samples: 20);\n\
         print grad(mean_over(rows, per_row), samples: 2);\n\
         print estimate(E { let o = [{a: 1.0 * i, c: (i, [i > 1, true])} for i in 0..4]; o[3].a + (if o[2].c.1[0] { 1.0 } else { 0.0 }) }, samples: 1);\n\
         gen counts() { for i in 0..2 { k[i] ~ poisson([1.0, 2.0]); } }\n\
         print estimate(E { density(counts(), { k: [[1, 2], [3, 4]] }) }, samples: 1);\n\
         print estimate(E { let (t, w) = sim(scene(mus)); let s = t.obj[1..3]; s[1].x - t.obj[2].x }, samples: 3);\n";
    let analysis = ppl::check_source("arrays.ppl", source);
    assert!(!analysis.has_errors(), "{}", analysis.render_diagnostics(ppl::diagnostics::ColorChoice::Never));
    let native = run(&analysis, Backend::Jit);
    assert_eq!(native, run(&analysis, Backend::Interpreter));
    assert_eq!(native.len(), 25, "{native:?}");
    assert_eq!(
        native[0],
        "full = {obj: [{visible: true, x: 0.3}, {visible: false, x: 0.0}, {visible: true, x: -1.0}], y: [0.5, -1.0, 2.0]}"
    );
    assert_eq!(native[1], "rows[2].a = 4.0");
    // Each element of `obj` holds `x` exactly when it is visible.
    for trace in &native[3..8] {
        let elements: Vec<&str> = trace.split("}, {").collect();
        assert_eq!(elements.len(), 3, "{trace}");
        for element in elements {
            assert_eq!(element.contains("visible: true"), element.contains("x:"), "{trace}");
        }
    }
    assert!(native[12].ends_with("= -12.1730 ± n/a (1 sample)"), "{}", native[12]);
    assert!(native[13].ends_with("= -6.72393 ± n/a (1 sample)"), "{}", native[13]);
    // (1.0 + 4.0) / 3 rows.
    assert!(native[21].contains("d/dtheta = 1.666666666666666"), "{}", native[21]);
    assert!(native[22].ends_with("= 4.00000 ± n/a (1 sample)"), "{}", native[22]);
    // log Poisson(1; 1) + log Poisson(2; 2) + log Poisson(3; 1) + log Poisson(4; 2).
    assert!(native[23].ends_with("= -7.50408 ± n/a (1 sample)"), "{}", native[23]);
    assert!(native[24].ends_with("= 0 ± 0 (3 samples)"), "{}", native[24]);
}

/// A differentiated `softplus` — here mostly Bernoulli-logit likelihoods of vectors longer than
/// compiled code handles inline — is computed with its derivative by one kernel
/// (`softplus_sigmoid`) of reals, vectors and matrices, at ordinary and extreme arguments, and
/// vectors are negated, taken absolute values of and detached, long and short: the same bits
/// on both back ends.
#[test]
fn softplus_with_its_derivative_and_sign_operations_agree_on_both_back_ends() {
    let n = 40;
    let rows: Vec<String> = (0..n)
        .map(|i| {
            let row: Vec<String> =
                (0..3).map(|j| format!("{:?}", (f64::from(i) * 0.37 + f64::from(j)).sin())).collect();
            format!("[{}]", row.join(", "))
        })
        .collect();
    let ys: Vec<&str> = (0..n).map(|i| if (f64::from(i) * 1.3).cos() > 0.0 { "true" } else { "false" }).collect();
    let source = format!(
        "data X: mat[{n}, 3] = [{}];\n\
         data obs = {{ y: [{}] }};\n\
         gen model(w: vec[3]) {{ y ~ bernoulli_logit(X @ w); }}\n\
         param w: vec[3] = [0.5, -1.0, 2.0];\n\
         param s: real = 0.3;\n\
         fn objective(w, s) {{ E {{\n\
             density(model(w), obs) + sum(softplus(s * (X @ w))) + sum(softplus(w * s)) + softplus(s)\n\
             + sum(softplus(s * X) @ w) - sum(abs(X @ w) * s) - sum(abs(w)) + sum(detach(X @ w) * s)\n\
             + sum(detach(w) * s) + sum(softplus([800.0 * s, -800.0 * s, 1e-10 * s, 0.0 * s, 40.0 * s]))\n\
         }} }}\n\
         print grad(objective(w, s), samples: 2);\n",
        rows.join(", "),
        ys.join(", "),
    );
    let analysis = ppl::check_source("softplus.ppl", &source);
    assert!(!analysis.has_errors(), "{}", analysis.render_diagnostics(ppl::diagnostics::ColorChoice::Never));
    let native = run(&analysis, Backend::Jit);
    assert_eq!(native, run(&analysis, Backend::Interpreter));
    assert!(native.len() == 1 && native[0].contains("d/dw = [") && native[0].contains("d/ds = "), "{native:?}");

    let options = RunOptions { emit_ir: true, seed: Some(3), threads: Some(1), ..Default::default() };
    let mut reverse = String::new();
    let mut session = Session::new(&analysis, options).expect("it compiles");
    session
        .run_commands(&mut |output| {
            if let ppl::run::Output::Ir { text, .. } = output {
                reverse = text.split("fn estimate_jvp_reverse").nth(1).unwrap_or_default().to_string();
            }
        })
        .expect("it runs");
    for kernel in ["real, %", "vec[40], %", "vec[3], %", "mat[40, 3], %"] {
        assert!(
            reverse.lines().any(|line| line.contains(kernel) && line.contains("= softplus_sigmoid %")),
            "no softplus_sigmoid of a {kernel} in\n{reverse}"
        );
    }
}
