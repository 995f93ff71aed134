//! Benchmarks that print the figures the issues ask for. Run in release mode:
//!
//! ```text
//! cargo run --release --bin bench -- frontend [--lines 10000] [--runs 15]
//! cargo run --release --bin bench -- interp [--runs 15]
//! ```
//!
//! `frontend` generates a program of realistic items (models with loops, guides, parameters,
//! data, objectives built on the standard library, commands), then reports the median time to
//! parse it and to check it completely, the throughput in lines per second, and the peak
//! resident memory of the process. `interp` reports the reference interpreter's estimates
//! per second, value alone and value with gradient, for `E { x ~ normal(θ, 1); x^2 }` and the
//! ADEV README's `flip` example under each of its estimators. The machine is shared and noisy:
//! medians, not means.

use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let option = |name: &str, default: usize| -> Result<usize, String> {
        match args.iter().position(|arg| arg == name) {
            Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).ok_or(format!("{name} needs a positive number")),
            None => Ok(default),
        }
    };
    let (lines, runs) = match (option("--lines", 10_000), option("--runs", 15)) {
        (Ok(lines), Ok(runs)) if runs > 0 => (lines, runs),
        (Err(message), _) | (_, Err(message)) => return usage(&message),
        _ => return usage("--runs must be at least 1"),
    };
    match args.first().map(String::as_str) {
        Some("frontend") => frontend(lines, runs),
        Some("interp") => interp(runs),
        _ => usage("which benchmark? (frontend, interp)"),
    }
}

fn usage(message: &str) -> ExitCode {
    eprintln!("error: {message}\nusage: bench frontend [--lines N] [--runs N] | bench interp [--runs N]");
    ExitCode::from(2)
}

/// The objectives `interp` measures, as one program: the estimate of each `print grad`.
const INTERP_PROGRAM: &str = "
param theta: real = 0.4;
fn square(theta) { E { x ~ normal(theta, 1.0); x^2 } }
fn flip_reinforce(theta) { E { b ~ flip(theta) via reinforce; if b { 0.0 } else { -theta / 2.0 } } }
fn flip_enum(theta) { E { b ~ flip(theta) via enum; if b { 0.0 } else { -theta / 2.0 } } }
fn flip_mvd(theta) { E { b ~ flip(theta) via mvd; if b { 0.0 } else { -theta / 2.0 } } }
print grad(square(theta));
print grad(flip_reinforce(theta));
print grad(flip_enum(theta));
print grad(flip_mvd(theta));
";

/// A model with many parameters, for the cost of the gradient relative to the value.
const WIDE_PROGRAM: &str = "
param w: vec[200] = zeros(200);
fn wide(w) { E { x ~ mv_normal_diag(w, exp(w)); sum(x^2 * exp(-w)) + dot(w, w) } }
print grad(wide(w));
";

fn interp(runs: usize) -> ExitCode {
    use ppl::interp::{run, RuntimeValue};
    let analysis = ppl::check_source("bench.ppl", INTERP_PROGRAM);
    let compiled = ppl::run::Session::new(&analysis, ppl::run::RunOptions::default())
        .and_then(|session| session.compile_objectives());
    let compiled = match compiled {
        Ok(compiled) => compiled,
        Err(diagnostic) => {
            eprint!(
                "{}",
                ppl::diagnostics::render(&diagnostic, &analysis.sources, ppl::diagnostics::ColorChoice::Never)
            );
            return ExitCode::from(1);
        }
    };
    const ESTIMATES: u64 = 20_000;
    println!("reference interpreter, estimates per second (median of {runs} runs of {ESTIMATES}):");
    println!("{:<48} {:>14} {:>18}", "objective", "value", "value + gradient");
    for (source, estimator) in &compiled {
        let measure = |function: &ppl::ir::Function| {
            let time = median(runs, || {
                for stream in 0..ESTIMATES {
                    let args =
                        vec![RuntimeValue::Real(0.4), RuntimeValue::Rng(Box::new(ppl_runtime::Rng::new(1, stream)))];
                    std::hint::black_box(run(function, args).map(|results| results.len()).unwrap_or(0));
                }
            });
            ESTIMATES as f64 / time.as_secs_f64()
        };
        let value = measure(&estimator.primal);
        let gradient = measure(&estimator.reverse);
        println!("{source:<48} {value:>14.0} {gradient:>18.0}");
    }
    wide_gradient_cost(runs)
}

/// The cost of value and gradient relative to the value alone, for 200 parameters: reverse
/// mode makes it a constant, where forward mode would take 200 passes.
fn wide_gradient_cost(runs: usize) -> ExitCode {
    use ppl::interp::{run, RuntimeValue};
    let analysis = ppl::check_source("wide.ppl", WIDE_PROGRAM);
    let compiled = ppl::run::Session::new(&analysis, ppl::run::RunOptions::default())
        .and_then(|session| session.compile_objectives());
    let Ok(compiled) = compiled else {
        eprintln!("error: the wide program does not compile");
        return ExitCode::from(1);
    };
    let Some((source, estimator)) = compiled.first() else { return ExitCode::from(1) };
    const ESTIMATES: u64 = 2_000;
    let time = |function: &ppl::ir::Function| {
        median(runs, || {
            for stream in 0..ESTIMATES {
                let args = vec![
                    RuntimeValue::Vec(vec![0.1; 200]),
                    RuntimeValue::Rng(Box::new(ppl_runtime::Rng::new(1, stream))),
                ];
                std::hint::black_box(run(function, args).map(|results| results.len()).unwrap_or(0));
            }
        })
    };
    let (value, gradient) = (time(&estimator.primal), time(&estimator.reverse));
    println!(
        "{source} (200 parameters): value + gradient costs {:.2}× the value alone",
        gradient.as_secs_f64() / value.as_secs_f64()
    );
    ExitCode::SUCCESS
}

fn frontend(lines: usize, runs: usize) -> ExitCode {
    let source = generate_program(lines);
    let line_count = source.lines().count();
    let first = ppl::check_source("bench.ppl", &source);
    if first.has_errors() {
        eprint!("{}", first.render_diagnostics(ppl::diagnostics::ColorChoice::Never));
        eprintln!("error: the generated program does not check");
        return ExitCode::from(1);
    }
    drop(first);

    let parse = median(runs, || {
        let parsed = ppl::syntax::parse(&source, 0);
        std::hint::black_box(parsed.program.items.len());
    });
    let check = median(runs, || {
        let analysis = ppl::check_source("bench.ppl", &source);
        std::hint::black_box(analysis.diagnostics.len());
    });
    let per_second = |time: Duration| line_count as f64 / time.as_secs_f64();
    println!(
        "front end on a generated program of {line_count} lines ({} KiB), median of {runs} runs:",
        source.len() / 1024
    );
    println!("  lex + parse:             {:>8.2} ms  ({:>9.0} lines/s)", ms(parse), per_second(parse));
    println!("  parse + check (all):     {:>8.2} ms  ({:>9.0} lines/s)", ms(check), per_second(check));
    match peak_resident_memory_kib() {
        Some(kib) => println!("  peak resident memory:    {:>8.1} MiB", kib as f64 / 1024.0),
        None => println!("  peak resident memory:    not available on this system"),
    }
    ExitCode::SUCCESS
}

fn median(runs: usize, mut work: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn ms(time: Duration) -> f64 {
    time.as_secs_f64() * 1e3
}

/// Peak resident set size, from Linux's `/proc/self/status`.
fn peak_resident_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A program of at least `lines` lines: blocks of a regression model, its guide, parameters,
/// data, an objective from the standard library and commands, each block with its own names.
fn generate_program(lines: usize) -> String {
    let mut out = String::with_capacity(lines * 40);
    let mut block = 0;
    while out.lines().count() < lines {
        let k = block;
        let xs: Vec<String> = (0..8).map(|i| format!("{:.1}", (i + k % 5) as f64 * 0.5)).collect();
        let ys: Vec<String> = (0..8).map(|i| format!("{:.2}", 1.0 + (i * (k % 3 + 1)) as f64 * 0.25)).collect();
        out.push_str(&format!(
            r#"/// Regression model {k}: slope, intercept and noise scale, eight observations.
gen model_{k}(xs: vec[8]) {{
    w ~ normal(0.0, 1.0);
    b ~ normal(0.0, 1.0);
    s ~ gamma(2.0, 2.0);
    for i in 0..8 {{
        let mean = w * xs[i] + b;
        y[i] ~ normal(mean, s + 0.1);
    }}
}}

/// Mean-field guide {k} over (w, b, s).
gen guide_{k}(m: vec[3], ls: vec[3]) {{
    w ~ normal(m[0], exp(ls[0]));
    b ~ normal(m[1], exp(ls[1]));
    s ~ lognormal(m[2], exp(ls[2]));
}}

param m_{k}: vec[3] = [0.0, 0.0, 0.0];
param ls_{k}: vec[3] = zeros(3);
data xs_{k} = [{xs}];
data obs_{k} = {{ y: [{ys}] }};

/// Importance-weighted objective {k}, plus a hand-written penalty on the scales.
fn objective_{k}(m, ls) {{
    let penalty = 0.01 * sum(ls^2);
    iwelbo(model_{k}(xs_{k}), guide_{k}(m, ls), obs_{k}, 4) - penalty
}}

maximize objective_{k}(m_{k}, ls_{k}) with {{ optimizer: adam(lr: 0.01), steps: 100, particles: 8 }};
print estimate(objective_{k}(m_{k}, ls_{k}), samples: 100);
print m_{k}, ls_{k};

"#,
            xs = xs.join(", "),
            ys = ys.join(", "),
        ));
        block += 1;
    }
    out
}
