//! Benchmarks that print the figures the issues ask for. Run in release mode:
//!
//! ```text
//! cargo run --release --bin bench -- frontend [--lines 10000] [--runs 15]
//! cargo run --release --bin bench -- interp [--runs 15]
//! cargo run --release --bin bench -- jit [--runs 15]
//! cargo run --release --bin bench -- exec [--runs 5] [--samples 10000000]
//! cargo run --release --bin bench -- tensors [--runs 15]
//! ```
//!
//! `frontend` generates a program of realistic items (models with loops, guides, parameters,
//! data, objectives built on the standard library, commands), then reports the median time to
//! parse it and to check it completely, the throughput in lines per second, and the peak
//! resident memory of the process. `interp` reports the reference interpreter's estimates
//! per second, value alone and value with gradient, for `E { x ~ normal(θ, 1); x^2 }` and the
//! ADEV README's `flip` example under each of its estimators. `jit` reports, for the noisy
//! cone's ELBO (`examples/cone.ppl`): compile latency, process start to first gradient,
//! particle-gradients per second of the compiled objective beside a hand-written Rust
//! implementation of the same estimator (same math, same random streams), the interpreter's
//! rate, and the compiled rate on 1 and 2 threads. `exec` times what users run, `ppl run`
//! processes, beside the hand-written Rust of `bench/cone_by_hand.rs` (see `bench/exec.rs`).
//! `tensors` times the paper's VAE: compiling, one image's gradient, minibatches' gradients,
//! and the matrix product at its shapes (see `bench/tensors.rs`).
//! The machine is shared and noisy: medians, not means.

#[path = "../bench/cone_by_hand.rs"]
mod cone_by_hand;
#[path = "../bench/exec.rs"]
mod exec;
#[path = "../bench/tensors.rs"]
mod tensors;

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
        Some("jit") => jit(runs),
        Some("tensors") => tensors::run(runs),
        Some("exec") => match option("--samples", 10_000_000) {
            // Whole processes of seconds each: fewer runs by default.
            Ok(samples) => exec::run(if args.iter().any(|arg| arg == "--runs") { runs } else { 5 }, samples as u64),
            Err(message) => usage(&message),
        },
        _ => usage("which benchmark? (frontend, interp, jit, exec, tensors)"),
    }
}

fn usage(message: &str) -> ExitCode {
    eprintln!("error: {message}\nusage: bench frontend [--lines N] [--runs N] | bench interp [--runs N] | bench jit [--runs N] | bench exec [--runs N] [--samples N] | bench tensors [--runs N]");
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

const CONE: &str = include_str!("../examples/cone.ppl");
const CONE_ELBO: &str = "elbo(cone(), guide(mu, log_sigma), obs)";

fn jit(runs: usize) -> ExitCode {
    match jit_figures(runs) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

fn jit_figures(runs: usize) -> Result<(), String> {
    let error = |e: ppl::embed::Error| e.message;
    // Compile latency: source text to a native value-and-gradient function ready to call.
    let compile = median(runs, || {
        let program = ppl::compile(CONE).map_err(error);
        let objective = program.and_then(|program| program.objective(CONE_ELBO).map_err(error));
        std::hint::black_box(objective.is_ok());
    });
    println!("compile latency (cone.ppl source to native ELBO value + gradient): {:.1} ms", ms(compile));

    // Process start to first gradient.
    let file = std::env::temp_dir().join(format!("ppl-bench-first-gradient-{}.ppl", std::process::id()));
    let first_gradient = CONE
        .lines()
        .take_while(|line| !line.starts_with("// The objectives and their gradients"))
        .collect::<Vec<_>>()
        .join("\n")
        + "\nprint grad(elbo(cone(), guide(mu, log_sigma), obs), samples: 1);\n";
    std::fs::write(&file, first_gradient).map_err(|e| e.to_string())?;
    let ppl = std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("ppl");
    let check = std::process::Command::new(&ppl).arg("run").arg("--quiet").arg(&file).output();
    match check {
        Ok(output) if output.status.success() && !output.stdout.is_empty() => {}
        _ => return Err(format!("`{} run` did not print a gradient (build it with `--release` first)", ppl.display())),
    }
    let process = median(runs, || {
        let status = std::process::Command::new(&ppl).arg("run").arg("--quiet").arg(&file).output();
        std::hint::black_box(status.is_ok());
    });
    let _ = std::fs::remove_file(&file);
    println!("`ppl run` process start to first gradient: {:.1} ms", ms(process));

    // One thread: compiled, hand-written, interpreted.
    let program = ppl::compile(CONE).map_err(error)?;
    let params = program.param_values();
    const PARTICLES: u64 = 200_000;
    let mut objective = program.objective(CONE_ELBO).map_err(error)?;
    let mut gradient = vec![0.0; params.len()];
    // The two compute the same estimator: check before timing.
    let mut largest_difference: f64 = 0.0;
    for stream in 0..100 {
        let value = objective.value_and_grad(&params, 1, stream, &mut gradient).map_err(error)?;
        let (hand_value, hand_gradient) = cone_by_hand::elbo(&params[..4], &mut ppl_runtime::Rng::new(1, stream));
        for (a, b) in std::iter::once((value, hand_value)).chain(gradient[..4].iter().copied().zip(hand_gradient)) {
            largest_difference = largest_difference.max((a - b).abs() / a.abs().max(1.0));
        }
    }
    if largest_difference > 1e-9 {
        return Err(format!(
            "the hand-written and compiled ELBO disagree (relative difference {largest_difference:e})"
        ));
    }
    let compiled = median(runs, || {
        for stream in 0..PARTICLES {
            let _ = std::hint::black_box(objective.value_and_grad(&params, 1, stream, &mut gradient));
        }
    });
    let hand = median(runs, || {
        let mut total = [0.0; 4];
        for stream in 0..PARTICLES {
            let mut rng = ppl_runtime::Rng::new(1, stream);
            let (value, g) = cone_by_hand::elbo(&params[..4], &mut rng);
            std::hint::black_box(value);
            for (t, x) in total.iter_mut().zip(g) {
                *t += x;
            }
        }
        std::hint::black_box(total);
    });
    let rate = |time: Duration, n: u64| n as f64 / time.as_secs_f64();
    let (compiled_rate, hand_rate) = (rate(compiled, PARTICLES), rate(hand, PARTICLES));
    println!(
        "one thread, particle-gradients/s: compiled {compiled_rate:.0}, hand-written Rust {hand_rate:.0} (compiled / hand-written = {:.2}; values and gradients agree to {largest_difference:.0e})",
        compiled_rate / hand_rate
    );
    let analysis = ppl::check_source("cone.ppl", &format!("{CONE}\nprint grad({CONE_ELBO});\n"));
    let session = ppl::run::Session::new(&analysis, ppl::run::RunOptions::default()).map_err(|d| d.message.clone())?;
    let estimators = session.compile_objectives().map_err(|d| d.message.clone())?;
    let reverse = &estimators.last().ok_or("no objective")?.1.reverse;
    let runtime_params: Vec<ppl::interp::RuntimeValue> = session.params().map(|(_, value)| value).collect();
    const INTERPRETED: u64 = 20_000;
    let interpreted = median(runs, || {
        for stream in 0..INTERPRETED {
            let mut args = runtime_params.clone();
            args.push(ppl::interp::RuntimeValue::Rng(Box::new(ppl_runtime::Rng::new(1, stream))));
            std::hint::black_box(ppl::interp::run(reverse, args).is_ok());
        }
    });
    let interpreted_rate = rate(interpreted, INTERPRETED);
    println!(
        "interpreter {interpreted_rate:.0} particle-gradients/s: the compiled code is {:.1}× faster",
        compiled_rate / interpreted_rate
    );

    // Scaling: the same particles split over 1 and 2 threads, one compiled objective each.
    const SCALING: u64 = 400_000;
    let mut objectives = Vec::new();
    for _ in 0..2 {
        objectives.push(program.objective(CONE_ELBO).map_err(error)?);
    }
    let mut times = Vec::new();
    for threads in [1usize, 2] {
        let time = median(runs, || {
            std::thread::scope(|scope| {
                let share = SCALING / threads as u64;
                for (t, objective) in objectives.iter_mut().take(threads).enumerate() {
                    let params = &params;
                    scope.spawn(move || {
                        let mut gradient = vec![0.0; params.len()];
                        for stream in t as u64 * share..(t as u64 + 1) * share {
                            let _ = std::hint::black_box(objective.value_and_grad(params, 1, stream, &mut gradient));
                        }
                    });
                }
            });
        });
        times.push(time);
        println!("{threads} thread(s): {:.0} particle-gradients/s ({SCALING} particles)", rate(time, SCALING));
    }
    println!("scaling from 1 to 2 threads: {:.2}×", times[0].as_secs_f64() / times[1].as_secs_f64());
    Ok(())
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

pub(crate) fn median(runs: usize, mut work: impl FnMut()) -> Duration {
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

pub(crate) fn ms(time: Duration) -> f64 {
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
