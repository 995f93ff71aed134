//! Random *tensor* programs: a data set of rows, weight matrices and bias vectors, and a per-row
//! objective built from matrix–vector products, elementwise activations, reductions, slices,
//! reparameterised draws of reals and vectors, and sometimes an ELBO of a model and an amortised
//! guide — estimated and differentiated over the rows with `mean_over` and `sum_over`, on
//! minibatches and in full passes. Two properties:
//!
//! 1. the Cranelift JIT and the reference interpreter print the same bits (or stop with the
//!    same diagnostic), with products of matrices in f64 and in f32 (`precision`);
//! 2. a batched minibatch (one program over the stack of its rows) gives the numbers of its rows
//!    run one by one (`row_by_row`), up to the rounding of sums; and batching does happen: the
//!    batched IR multiplies stacks of rows by weight matrices.
//!
//! One program in five is wide (rows of 48–64 numbers, minibatches of half the rows or more),
//! so that compiled code runs its elementwise operations tile by tile.
//!
//! Programs come from a fixed seed (`PPL_TENSOR_PROGRAMS_SEED` to explore others);
//! `PPL_TENSOR_PROGRAMS` sets how many, `PPL_TENSOR_PROGRAMS_SHOW` prints each one.

use ppl::embed::Precision;
use ppl::run::{Backend, Output, RunOptions, Session, Statistic};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Writes random tensor programs over a data set `rows: mat[R, n]`.
struct Writer {
    rng: ChaCha8Rng,
    /// Row width.
    n: usize,
    /// Hidden width.
    h: usize,
    /// Real-valued names in scope in the body so far.
    reals: Vec<String>,
    /// Vector-valued names in scope, with their lengths.
    vectors: Vec<(String, usize)>,
    fresh: usize,
}

impl Writer {
    fn name(&mut self, prefix: &str) -> String {
        self.fresh += 1;
        format!("{prefix}{}", self.fresh)
    }

    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items.choose(&mut self.rng).copied().unwrap_or(items[0])
    }

    /// A vector expression of length `len` (which is `n` or `h`), of at most `depth` levels.
    fn vector(&mut self, len: usize, depth: u32) -> String {
        let leaf = depth == 0 || self.rng.random_bool(0.25);
        if leaf {
            let names: Vec<String> =
                self.vectors.iter().filter(|(_, l)| *l == len).map(|(name, _)| name.clone()).collect();
            if let Some(name) = names.choose(&mut self.rng) {
                if self.rng.random_bool(0.8) {
                    return name.clone();
                }
            }
            return if len == self.n {
                self.pick(&["x", "u", "x", "(x * u)"]).to_string()
            } else {
                self.pick(&["b", "(W @ x)", "(W @ x + b)"]).to_string()
            };
        }
        match self.rng.random_range(0..13) {
            // Products with the weight matrices: h × n, h × h, n × h.
            0 | 1 if len == self.h => format!("(W @ {})", self.vector(self.n, depth - 1)),
            0 | 1 => format!("(D @ {})", self.vector(self.h, depth - 1)),
            2 if len == self.h => format!("(V @ {} + b)", self.vector(self.h, depth - 1)),
            2 => format!("(D @ tanh({}) + c)", self.vector(self.h, depth - 1)),
            3 => {
                let bias = if len == self.h { "b" } else { "c" };
                format!("({} + {bias})", self.vector(len, depth - 1))
            }
            4 => format!("tanh({})", self.vector(len, depth - 1)),
            5 => format!("sigmoid({})", self.vector(len, depth - 1)),
            6 => format!("softplus({})", self.vector(len, depth - 1)),
            7 => format!("exp(-({}) * ({}))", self.vector(len, depth - 1), self.vector(len, depth - 1)),
            8 => format!("leaky_relu({})", self.vector(len, depth - 1)),
            9 => format!("relu({})", self.vector(len, depth - 1)),
            10 => format!("({} * {})", self.vector(len, depth - 1), self.vector(len, depth - 1)),
            11 => format!("({} - {} * {})", self.vector(len, depth - 1), self.real(0), self.vector(len, depth - 1)),
            _ if len == self.h => format!("(W @ tanh(x) + {})", self.vector(self.h, depth - 1)),
            _ => format!("(D @ tanh(W @ tanh(x) + {}))", self.vector(self.h, depth - 1)),
        }
    }

    /// A real expression of at most `depth` levels.
    fn real(&mut self, depth: u32) -> String {
        let leaf = depth == 0 || self.rng.random_bool(0.2);
        if leaf {
            return if self.rng.random_bool(0.6) && !self.reals.is_empty() {
                self.reals.choose(&mut self.rng).cloned().unwrap_or_else(|| "a".into())
            } else {
                self.pick(&["0.5", "-1.5", "a", "x[0]", "2.0"]).to_string()
            };
        }
        let n = self.n;
        let h = self.h;
        match self.rng.random_range(0..14) {
            0 => format!("sum({})", self.vector(h, depth - 1)),
            1 => format!("sum({})", self.vector(n, depth - 1)),
            2 => format!("dot(u, {})", self.vector(n, depth - 1)),
            3 => format!("dot(b, {})", self.vector(h, depth - 1)),
            4 => format!("logsumexp({})", self.vector(h, depth - 1)),
            5 => {
                let k = self.rng.random_range(1..n);
                format!("sum(x[..{k}] * u[..{k}])")
            }
            6 => {
                let k = self.rng.random_range(1..n);
                format!("dot(u[{k}..], tanh({})[{k}..])", self.vector(n, depth - 1))
            }
            7 => format!("({} + {})", self.real(depth - 1), self.real(depth - 1)),
            8 => format!("({} * {})", self.real(depth - 1), self.real(depth - 1)),
            9 => format!("tanh({})", self.real(depth - 1)),
            10 => format!("-({})^2", self.real(depth - 1)),
            11 => format!("mean({})", self.vector(h, depth - 1)),
            12 => format!("({} - {})", self.real(depth - 1), self.real(depth - 1)),
            _ => format!("softplus({})", self.real(depth - 1)),
        }
    }

    /// One statement of the row's `E { … }` body, adding its name to the scope.
    fn statement(&mut self) -> String {
        let h = self.h;
        match self.rng.random_range(0..6) {
            0 => {
                let name = self.name("z");
                let mean = self.real(2);
                self.reals.push(name.clone());
                format!("{name} ~ normal({mean}, exp(a));")
            }
            1 => {
                let name = self.name("z");
                let mean = self.real(2);
                let scale = self.real(1);
                self.reals.push(name.clone());
                format!("{name} ~ normal({mean}, softplus({scale}) + 0.1);")
            }
            2 | 3 => {
                let name = self.name("v");
                let mean = self.vector(h, 2);
                let scale = self.vector(h, 1);
                self.vectors.push((name.clone(), h));
                format!("{name} ~ mv_normal_diag({mean}, softplus({scale}));")
            }
            4 => {
                let name = self.name("w");
                let mean = self.vector(self.n, 1);
                self.vectors.push((name.clone(), self.n));
                format!("{name} ~ mv_normal_diag({mean}, exp(a) * ones({}));", self.n)
            }
            _ => {
                let name = self.name("l");
                let value = self.vector(h, 2);
                self.vectors.push((name.clone(), h));
                format!("let {name} = {value};")
            }
        }
    }

    fn values(&mut self, count: usize, scale: f64) -> String {
        let values: Vec<String> = (0..count)
            .map(|_| format!("{:?}", (self.rng.random_range(-1.0..1.0) * scale * 100.0).round() / 100.0))
            .collect();
        format!("[{}]", values.join(", "))
    }

    fn program(&mut self) -> String {
        self.fresh = 0;
        // A wide program's minibatches are matrices of two tiles or more, which compiled code
        // computes tile by tile (`codegen/tiles.rs`).
        let wide = self.rng.random_bool(0.2);
        let rows = if wide { self.rng.random_range(60..=90) } else { self.rng.random_range(6..=30) };
        self.n = if wide { self.rng.random_range(48..=64) } else { self.rng.random_range(2..=6) };
        self.h = self.rng.random_range(2..=5);
        let (n, h) = (self.n, self.h);
        let phase: f64 = self.rng.random_range(0.0..3.0);
        let step: f64 = self.rng.random_range(0.1..1.3);
        let data: Vec<String> = (0..rows)
            .map(|r| {
                let row: Vec<String> =
                    (0..n).map(|k| format!("{:?}", ((r * n + k) as f64 * step + phase).sin())).collect();
                format!("[{}]", row.join(", "))
            })
            .collect();
        let mut source = format!("data rows: mat[{rows}, {n}] = [{}];\n", data.join(", "));
        let init = |writer: &mut Self, count: usize| {
            if writer.rng.random_bool(0.5) {
                "uniform_init(0.5)".to_string()
            } else {
                writer.values(count, 0.8)
            }
        };
        source += &format!("param W: mat[{h}, {n}] = uniform_init(0.5);\n");
        source += &format!("param V: mat[{h}, {h}] = uniform_init(0.5);\n");
        source += &format!("param D: mat[{n}, {h}] = uniform_init(0.5);\n");
        let b = init(self, h);
        source += &format!("param b: vec[{h}] = {b};\n");
        let c = init(self, n);
        source += &format!("param c: vec[{n}] = {c};\n");
        let u = self.values(n, 1.0);
        source += &format!("param u: vec[{n}] = {u};\n");
        let a = self.pick(&["-0.5", "0.2", "-1.0"]);
        source += &format!("param a: real = {a};\n");

        self.reals = Vec::new();
        self.vectors = vec![("x".into(), n)];
        if self.rng.random_bool(0.25) {
            // A model and an amortised guide: the row is observed through the decoder.
            let observe = if self.rng.random_bool(0.5) {
                "x ~ mv_normal_diag(d @ tanh(z) + e, exp(s) * ones(N));".to_string()
            } else {
                "let y = d @ leaky_relu(z) + e;\n    x ~ mv_normal_diag(y, softplus(y) + 0.5);".to_string()
            };
            let encoder = if self.rng.random_bool(0.5) {
                "let out = w @ x + g;\n    z ~ mv_normal_diag(out, softplus(out));"
            } else {
                "let out = v @ tanh(w @ x + g) + g;\n    z ~ mv_normal_diag(tanh(out), exp(-(out * out)) + 0.2);"
            };
            source += &format!(
                "gen decoder(d: mat[{n}, {h}], e: vec[{n}], s: real) {{\n    \
                 z ~ mv_normal_diag(zeros({h}), ones({h}));\n    {}\n}}\n\
                 gen encoder(x: vec[{n}], w: mat[{h}, {n}], v: mat[{h}, {h}], g: vec[{h}]) {{\n    {encoder}\n}}\n",
                observe.replace("ones(N)", &format!("ones({n})")),
            );
            let extra = if self.rng.random_bool(0.5) {
                format!(" + 0.1 * dot(u, {})", self.vector(n, 1))
            } else {
                String::new()
            };
            source += &format!(
                "fn row_f(x: vec[{n}]) {{ elbo(decoder(D, c, a), encoder(x, W, V, b), {{ x: x }}){extra} }}\n"
            );
        } else {
            let statements: Vec<String> = (0..self.rng.random_range(1..4)).map(|_| self.statement()).collect();
            // Every draw reaches the result.
            let mut terms = vec![self.real(3)];
            for name in self.reals.clone() {
                terms.push(format!("tanh({name})"));
            }
            for (name, len) in self.vectors.clone().into_iter().skip(1) {
                let weights = if len == n { "u" } else { "b" };
                terms.push(format!("dot({weights}, tanh({name}))"));
            }
            source += &format!(
                "fn row_f(x: vec[{n}]) {{\n    E {{\n        {}\n        {}\n    }}\n}}\n",
                statements.join("\n        "),
                terms.join(" + ")
            );
        }
        for (command, samples) in [("estimate", 20), ("grad", 5)] {
            let over = if self.rng.random_bool(0.7) { "mean_over" } else { "sum_over" };
            let smallest = if wide { rows / 2 } else { 2 };
            let batch = if self.rng.random_bool(0.8) {
                format!(", batch: {}", self.rng.random_range(smallest..=rows))
            } else {
                String::new()
            };
            source += &format!("print {command}({over}(rows, row_f{batch}), samples: {samples});\n");
        }
        source
    }
}

/// What a run prints (every output's text) and its estimates' outputs, or the diagnostic it
/// stops with as a last line; with `emit_ir`, also the IR texts.
struct Run {
    printed: Vec<String>,
    outputs: Vec<Output>,
    ir: Vec<String>,
}

fn run(analysis: &ppl::Analysis, options: RunOptions) -> Run {
    let mut result = Run { printed: Vec::new(), outputs: Vec::new(), ir: Vec::new() };
    let outcome = Session::new(analysis, options).and_then(|mut session| {
        session.run_commands(&mut |output| {
            if let Output::Ir { text, .. } = &output {
                result.ir.push(text.clone());
                return;
            }
            result.printed.push(output.to_string());
            result.outputs.push(output);
        })
    });
    if let Err(diagnostic) = outcome {
        result.printed.push(ppl::diagnostics::render(
            &diagnostic,
            &analysis.sources,
            ppl::diagnostics::ColorChoice::Never,
        ));
    }
    result
}

fn options(backend: Backend) -> RunOptions {
    RunOptions { backend, seed: Some(3), threads: Some(1), ..Default::default() }
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

/// Whether two statistics of `samples` samples are equal up to the rounding of sums: relative
/// error 1e-9 of the scale of the samples they summarise (the mean's magnitude, or the spread
/// of the samples when it is larger — a mean near 0 cancels samples of that size).
fn close(x: &Statistic, y: &Statistic, samples: u64) -> bool {
    let near = |p: f64, q: f64, scale: f64| {
        p == q || (p.is_finite() && q.is_finite() && (p - q).abs() <= 1e-9 * scale.max(p.abs()).max(q.abs()))
    };
    let spread = x.stderr.abs().max(y.stderr.abs()) * (samples as f64).sqrt();
    let scale = x.mean.abs().max(y.mean.abs()).max(spread);
    near(x.mean, y.mean, scale) && near(x.stderr, y.stderr, scale)
}

/// Why the outputs of a batched and a row-by-row run differ, if they do.
fn differs(batched: &Run, rows: &Run) -> Option<String> {
    if batched.outputs.len() != rows.outputs.len() || batched.printed.len() != rows.printed.len() {
        return Some(format!(
            "different numbers of outputs, ending\n{}\n{}",
            batched.printed.last().map_or("", |s| s),
            rows.printed.last().map_or("", |s| s)
        ));
    }
    for (x, y) in batched.outputs.iter().zip(&rows.outputs) {
        match (x, y) {
            (
                Output::Estimate { source, ty, statistics, samples },
                Output::Estimate { source: source2, ty: ty2, statistics: statistics2, samples: samples2 },
            ) => {
                if source != source2 || ty != ty2 || samples != samples2 || statistics.len() != statistics2.len() {
                    return Some(format!("different estimates:\n{x}\n{y}"));
                }
                if let Some((p, q)) = statistics.iter().zip(statistics2).find(|(p, q)| !close(p, q, *samples)) {
                    return Some(format!("{source}: {p:?} against {q:?}"));
                }
            }
            (
                Output::Grad { source, samples, params },
                Output::Grad { source: source2, samples: samples2, params: params2 },
            ) => {
                if source != source2 || samples != samples2 || params.len() != params2.len() {
                    return Some(format!("different gradients:\n{x}\n{y}"));
                }
                for (p, q) in params.iter().zip(params2) {
                    if p.name != q.name || p.ty != q.ty || p.statistics.len() != q.statistics.len() {
                        return Some(format!("different gradients:\n{x}\n{y}"));
                    }
                    if let Some((s, t)) = p.statistics.iter().zip(&q.statistics).find(|(s, t)| !close(s, t, *samples)) {
                        return Some(format!("{source}: d/d{}: {s:?} against {t:?}", p.name));
                    }
                }
            }
            _ if x.to_string() == y.to_string() => {}
            _ => return Some(format!("different outputs:\n{x}\n{y}")),
        }
    }
    // A diagnostic the runs stop with must be the same.
    if batched.printed.len() > batched.outputs.len() && batched.printed.last() != rows.printed.last() {
        return Some(format!(
            "different diagnostics:\n{}\n{}",
            batched.printed.last().map_or("", |s| s),
            rows.printed.last().map_or("", |s| s)
        ));
    }
    None
}

/// Whether the IR multiplies a stack of `batch` rows by a matrix: `%k: mat[B, …] = matmul …`.
fn batched_product(ir: &[String], batch: usize) -> bool {
    let stack = format!(": mat[{batch}, ");
    ir.iter().any(|text| text.lines().any(|line| line.contains(&stack) && line.contains("= matmul")))
}

#[test]
fn random_tensor_programs_agree_across_back_ends_and_batching() {
    let started = std::time::Instant::now();
    let programs = setting("PPL_TENSOR_PROGRAMS", 100) as usize;
    let mut writer = Writer {
        rng: ChaCha8Rng::seed_from_u64(setting("PPL_TENSOR_PROGRAMS_SEED", 2027)),
        n: 0,
        h: 0,
        reals: Vec::new(),
        vectors: Vec::new(),
        fresh: 0,
    };
    let show = std::env::var_os("PPL_TENSOR_PROGRAMS_SHOW").is_some();
    let mut rejected = Vec::new();
    let (mut checked, mut ran, mut minibatched, mut batched) = (0, 0, 0, 0);
    let mut stopped = None;
    // Programs whose batched and row-by-row outputs are not the same text (rounding shows).
    let mut inexact = 0;
    let mut backend_disagreements = Vec::new();
    let mut batching_disagreements = Vec::new();
    for _ in 0..programs {
        let source = writer.program();
        if show {
            eprintln!("{source}");
        }
        let analysis = ppl::check_source("tensors.ppl", &source);
        if analysis.has_errors() {
            rejected.push(format!("{source}\n{}", analysis.render_diagnostics(ppl::diagnostics::ColorChoice::Never)));
            continue;
        }
        checked += 1;

        // 1. Both back ends print the same bits, with products of matrices in f64 and in f32.
        // The printed text rounds estimates to their standard error: compare the raw numbers
        // too (`{:?}` of an f64 is exact).
        let runs = |precision| {
            let precise = |backend| RunOptions { precision: Some(precision), ..options(backend) };
            (run(&analysis, precise(Backend::Jit)), run(&analysis, precise(Backend::Interpreter)))
        };
        let (native, interpreted) = runs(Precision::Double);
        let (single, single_interpreted) = runs(Precision::Single);
        for (precision, native, interpreted) in
            [(Precision::Double, &native, &interpreted), (Precision::Single, &single, &single_interpreted)]
        {
            if native.printed != interpreted.printed
                || format!("{:?}", native.outputs) != format!("{:?}", interpreted.outputs)
            {
                eprintln!("back-end disagreement on program {} ({precision:?})", checked - 1);
                backend_disagreements.push(format!(
                    "{source}\n--- jit ({precision:?}):\n{}\n--- interpreter:\n{}",
                    native.printed.join("\n"),
                    interpreted.printed.join("\n")
                ));
            }
        }
        if native.outputs.len() == 2 && native.printed.len() == 2 {
            ran += 1;
        } else if stopped.is_none() {
            stopped = Some(format!("{source}\n{}", native.printed.join("\n")));
        }

        // 2. Batched minibatches give the numbers of their rows one by one.
        let batched_run = run(&analysis, RunOptions { emit_ir: true, ..options(Backend::Jit) });
        assert_eq!(batched_run.printed, native.printed, "emitting the IR changed the outputs of\n{source}");
        let rows_run = run(&analysis, RunOptions { row_by_row: true, ..options(Backend::Jit) });
        if batched_run.printed != rows_run.printed {
            inexact += 1;
        }
        if let Some(difference) = differs(&batched_run, &rows_run) {
            eprintln!("batching disagreement: {}", difference.replace('\n', " | "));
            batching_disagreements.push(format!(
                "{source}\n{difference}\n--- batched:\n{}\n--- row by row:\n{}",
                batched_run.printed.join("\n"),
                rows_run.printed.join("\n")
            ));
        }
        let batches: Vec<usize> = source
            .lines()
            .filter_map(|line| line.split("batch: ").nth(1))
            .filter_map(|rest| rest.split(')').next()?.parse().ok())
            .collect();
        if let Some(&batch) = batches.first() {
            minibatched += 1;
            if batches.iter().any(|&batch| batched_product(&batched_run.ir, batch)) {
                batched += 1;
            } else if show {
                eprintln!("not batched (batch {batch}):\n{source}");
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    // Report the shortest program of each kind of disagreement.
    backend_disagreements.sort_by_key(String::len);
    batching_disagreements.sort_by_key(String::len);
    eprintln!(
        "{programs} programs in {seconds:.1} s: {checked} checked, {ran} ran to the end, \
         {minibatched} with a minibatch, {batched} of them batched into matrix products, \
         {inexact} printing differently batched and row by row; \
         {} back-end disagreements, {} batching disagreements",
        backend_disagreements.len(),
        batching_disagreements.len()
    );
    assert!(
        backend_disagreements.is_empty(),
        "the back ends disagree on {} programs; the shortest:\n{}",
        backend_disagreements.len(),
        backend_disagreements[0]
    );
    assert!(
        batching_disagreements.is_empty(),
        "batched and row-by-row runs disagree on {} programs; the shortest:\n{}",
        batching_disagreements.len(),
        batching_disagreements[0]
    );
    assert!(
        checked * 10 >= programs * 9,
        "only {checked} of {programs} programs check; the first rejected:\n{}",
        rejected.first().map_or("", |s| s)
    );
    assert!(
        ran * 10 >= programs * 7,
        "only {ran} of {programs} programs ran to the end; the first that stopped:\n{}",
        stopped.unwrap_or_default()
    );
    assert!(
        batched * 2 >= programs,
        "only {batched} of {programs} programs ({minibatched} with a minibatch) were batched into matrix products"
    );
}

/// The smallest program the generator found disagreeing: a scale that is a dot product of a
/// parameter and the row. Batched, `dot(u, x)` becomes the product of the stack of rows with
/// `u`, and the check that every row's scale is positive took the smallest of them without
/// detaching it first, which did not compile ("internal compiler error: Min of a differentiated
/// vector"), even for `estimate`; row by row it ran.
#[test]
fn a_scale_from_a_dot_product_with_the_row_runs_batched() {
    let source = "data rows: mat[3, 2] = [[0.1, 0.2], [0.3, -0.4], [0.5, 0.6]];\n\
                  param u: vec[2] = [0.4, -0.3];\n\
                  fn row_f(x: vec[2]) { E { z ~ normal(0.0, exp(dot(u, x))); z } }\n\
                  print estimate(mean_over(rows, row_f, batch: 2), samples: 2);\n";
    let analysis = ppl::check_source("dot_scale.ppl", source);
    assert!(!analysis.has_errors(), "{}", analysis.render_diagnostics(ppl::diagnostics::ColorChoice::Never));
    let batched = run(&analysis, options(Backend::Jit));
    let rows = run(&analysis, RunOptions { row_by_row: true, ..options(Backend::Jit) });
    assert_eq!(differs(&batched, &rows), None, "batched and row by row differ on\n{source}");
}

/// A row's vector computed elementwise from its data and read only by the batched code (the
/// likelihood's `1 - 2x` of a row of pixels) is computed on the stack of rows, one pass over the
/// batch, rather than row by row and stacked: the gathering loop stacks the row alone. The
/// numbers are those of the rows run one by one.
#[test]
fn a_rows_elementwise_vector_is_computed_on_the_stack_of_rows() {
    let source = "data rows: mat[6, 12] = [\n\
                  [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0],\n\
                  [0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0],\n\
                  [1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0],\n\
                  [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0],\n\
                  [1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0],\n\
                  [0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0]];\n\
                  param w: mat[12, 3] = uniform_init(0.3);\n\
                  fn row_f(x: vec[12]) { E { z ~ normal(0.0, 1.0); sum(softplus((1.0 - 2.0 * x) * (w @ [z, 1.0, -z]))) } }\n\
                  print estimate(mean_over(rows, row_f, batch: 4), samples: 3);\n\
                  print grad(mean_over(rows, row_f, batch: 4), samples: 3);\n";
    let analysis = ppl::check_source("row_elementwise.ppl", source);
    assert!(!analysis.has_errors(), "{}", analysis.render_diagnostics(ppl::diagnostics::ColorChoice::Never));
    let batched = run(&analysis, RunOptions { emit_ir: true, ..options(Backend::Jit) });
    let rows = run(&analysis, RunOptions { row_by_row: true, ..options(Backend::Jit) });
    assert_eq!(differs(&batched, &rows), None, "batched and row by row differ on\n{source}");
    assert_eq!(run(&analysis, options(Backend::Interpreter)).printed, batched.printed);
    // The value's program (forward and reverse mode also stack the rows' tangents): its
    // gathering loop stacks the rows, not `1 - 2x`.
    let primal: Vec<&str> =
        batched.ir.iter().filter_map(|ir| ir.split("\n}").find(|f| f.contains("fn estimate("))).collect();
    assert!(!primal.is_empty(), "no IR of an estimate's value");
    for ir in primal {
        let row_by_row = |line: &&str| line.contains(": vec[12] = mul") || line.contains(": vec[12] = sub");
        assert!(!ir.lines().any(|line| row_by_row(&line)), "1 - 2x is computed row by row:\n{ir}");
        assert!(
            ir.lines().any(|line| line.contains(": mat[4, 12] = sub")),
            "1 - 2x is not computed on the stack:\n{ir}"
        );
        let stacked_rows = ir.lines().filter(|line| line.contains(": mat[4, 12] = insert")).count();
        assert_eq!(stacked_rows, 1, "a row's vector is stacked besides the row:\n{ir}");
    }
}
