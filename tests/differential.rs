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
