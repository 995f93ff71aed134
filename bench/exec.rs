//! `bench exec`: what a user runs, timed beside the same computation written by hand.
//!
//! Each figure is a whole `ppl run` process (the release build beside this binary): the noisy
//! cone's `estimate` and `grad` of the ELBO and of the IWELBO(5) from `--samples` samples
//! (default 10 million) on one and on two threads, the cone's training (5000 steps of 64
//! particles, the README's main job) and all of `examples/cone.ppl`. Beside each stands the
//! hand-written Rust of `cone_by_hand.rs` doing the same work on one thread, in this process.
//! Every time is the median of `--runs` runs; peak memory is the largest resident set of the
//! `ppl` processes (from `wait4`). Before timing, the results of `ppl` and of the hand-written
//! code are checked against each other.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use crate::cone_by_hand::{self, Estimator};
use crate::median;

const CONE: &str = include_str!("../examples/cone.ppl");

/// The cone's definitions from `examples/cone.ppl`, without its commands.
fn definitions() -> String {
    let end = CONE.find("// The objectives and their gradients").unwrap_or(CONE.len());
    CONE[..end].to_string()
}

/// The seed of the cone's training in `examples/cone.ppl`.
const TRAINING_SEED: u64 = 314159;
const TRAINING_STEPS: u64 = 5000;
const TRAINING_PARTICLES: u64 = 64;

pub fn run(runs: usize, samples: u64) -> ExitCode {
    match figures(runs.max(1), samples.max(2)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

/// A finished `ppl run`: its standard output, wall time and peak resident memory.
struct Process {
    stdout: String,
    time: Duration,
    peak_kib: u64,
}

fn ppl() -> Result<PathBuf, String> {
    let path = std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("ppl");
    if path.exists() {
        Ok(path)
    } else {
        Err(format!("{} is missing: `cargo build --release` first", path.display()))
    }
}

/// Runs `ppl run --json --quiet ARGS… FILE` to the end.
fn run_ppl(file: &Path, args: &[&str]) -> Result<Process, String> {
    let started = Instant::now();
    let child = Command::new(ppl()?)
        .arg("run")
        .arg("--json")
        .arg("--quiet")
        .args(args)
        .arg(file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start ppl: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let mut stdout = String::new();
    if let Some(mut pipe) = child.stdout {
        use std::io::Read;
        pipe.read_to_string(&mut stdout).map_err(|e| e.to_string())?;
    }
    let mut status = 0;
    // SAFETY: `rusage` is plain data that `wait4` fills in; `pid` is our own child, not yet
    // waited for (std's `Child` is dropped without waiting).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; the pointers are to live locals.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let time = started.elapsed();
    if waited != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("`ppl run {}` failed", file.display()));
    }
    Ok(Process { stdout, time, peak_kib: usage.ru_maxrss as u64 })
}

/// The median time and largest peak memory of `runs` runs, and the output of the last.
fn measure_ppl(runs: usize, file: &Path, args: &[&str]) -> Result<Process, String> {
    let mut processes = Vec::with_capacity(runs);
    for _ in 0..runs {
        processes.push(run_ppl(file, args)?);
    }
    processes.sort_by_key(|process| process.time);
    let peak_kib = processes.iter().map(|process| process.peak_kib).max().unwrap_or(0);
    let middle = processes.swap_remove(processes.len() / 2);
    Ok(Process { peak_kib, ..middle })
}

/// The first JSON object of kind `kind` that `ppl` printed.
fn report(process: &Process, kind: &str) -> Result<serde_json::Value, String> {
    process
        .stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|value| value["kind"] == kind)
        .ok_or_else(|| format!("`ppl run` printed no {kind} result"))
}

fn number(value: &serde_json::Value) -> f64 {
    value.as_f64().unwrap_or(f64::NAN)
}

/// Close enough for two implementations of the same arithmetic in a different order.
fn agree(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
}

fn write_program(name: &str, commands: &str) -> Result<PathBuf, String> {
    let path = std::env::temp_dir().join(format!("ppl-bench-exec-{}-{name}.ppl", std::process::id()));
    std::fs::write(&path, format!("{}{commands}", definitions())).map_err(|e| e.to_string())?;
    Ok(path)
}

fn figures(runs: usize, samples: u64) -> Result<(), String> {
    println!("`ppl run` beside hand-written Rust (bench/cone_by_hand.rs); medians of {runs} runs");
    println!(
        "{:<36} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>9}",
        "command", "hand 1t", "hand 2t", "ppl 1t", "ppl 2t", "ppl/hand", "hand 2×", "ppl 2×", "peak RSS"
    );
    // mu = (0, 0), log_sigma = (1, 1): the parameters' initial values.
    let params = [0.0, 0.0, 1.0, 1.0];
    let cases = [
        ("grad", Estimator::Elbo, "elbo(cone(), guide(mu, log_sigma), obs)"),
        ("estimate", Estimator::Elbo, "elbo(cone(), guide(mu, log_sigma), obs)"),
        ("grad", Estimator::Iwelbo5, "iwelbo(cone(), guide(mu, log_sigma), obs, 5)"),
        ("estimate", Estimator::Iwelbo5, "iwelbo(cone(), guide(mu, log_sigma), obs, 5)"),
    ];
    let mut files = Vec::new();
    for (command, estimator, objective) in cases {
        let file = write_program(
            &format!("{command}-{estimator:?}"),
            &format!("print {command}({objective}, samples: {samples});\n"),
        )?;
        files.push(file.clone());
        let one = measure_ppl(runs, &file, &["--threads", "1"])?;
        let two = measure_ppl(runs, &file, &["--threads", "2"])?;
        // The first command of a file at the default seed 0 draws sample s from stream s.
        let by_hand = |samples: Range<u64>| match command {
            "grad" => cone_by_hand::estimate(estimator, &params, 0, samples).statistic(1).0,
            _ => cone_by_hand::estimate_value(estimator, &params, 0, samples).statistic(0).0,
        };
        let hand_mean = by_hand(0..samples);
        let hand = median(runs, || {
            std::hint::black_box(by_hand(0..samples));
        });
        // The same on two threads, half the samples each: what this machine's cores give.
        let hand_two = median(runs, || {
            std::thread::scope(|scope| {
                let first = scope.spawn(|| by_hand(0..samples / 2));
                std::hint::black_box(by_hand(samples / 2..samples));
                std::hint::black_box(first.join().ok());
            });
        });
        let result = report(&one, command)?;
        let ppl_mean =
            if command == "grad" { number(&result["params"]["mu"]["mean"][0]) } else { number(&result["mean"]) };
        let threads_agree = report(&two, command)? == result;
        if !agree(ppl_mean, hand_mean) || !threads_agree {
            return Err(format!(
                "{command}({objective}): ppl gives {ppl_mean} (the same on 2 threads: {threads_agree}), by hand {hand_mean}"
            ));
        }
        println!(
            "{:<36} {:>7.3} s {:>7.3} s {:>7.3} s {:>7.3} s {:>7.2}× {:>7.2}× {:>7.2}× {:>6.1} MB",
            format!("{command} {estimator:?}, {samples} samples"),
            hand.as_secs_f64(),
            hand_two.as_secs_f64(),
            one.time.as_secs_f64(),
            two.time.as_secs_f64(),
            one.time.as_secs_f64() / hand.as_secs_f64(),
            hand.as_secs_f64() / hand_two.as_secs_f64(),
            one.time.as_secs_f64() / two.time.as_secs_f64(),
            one.peak_kib.max(two.peak_kib) as f64 / 1024.0,
        );
    }

    // Training: the README's main job, ELBO only; `seconds` is the training time `ppl` reports.
    let maximize = format!(
        "maximize elbo(cone(), guide(mu, log_sigma), obs)\n    with {{ optimizer: sgd(lr: 0.001), steps: {TRAINING_STEPS}, particles: {TRAINING_PARTICLES}, seed: {TRAINING_SEED} }};\n"
    );
    let file = write_program("train", &maximize)?;
    files.push(file.clone());
    let mut trainings = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let process = run_ppl(&file, &["--threads", "1"])?;
        trainings.push(number(&report(&process, "maximize")?["seconds"]));
        last = Some(process);
    }
    trainings.sort_by(f64::total_cmp);
    let trained = report(last.as_ref().ok_or("no run")?, "maximize")?;
    // Training streams: the top bit, then training command 0, objective 0, step · particles + particle.
    let stream = |step: u64, particle: u64| 1 << 63 | (step * TRAINING_PARTICLES + particle);
    let by_hand = cone_by_hand::train(params, TRAINING_STEPS, TRAINING_PARTICLES, 0.001, TRAINING_SEED, stream);
    let ppl_params = [
        &trained["params"]["mu"][0],
        &trained["params"]["mu"][1],
        &trained["params"]["log_sigma"][0],
        &trained["params"]["log_sigma"][1],
    ];
    if !ppl_params.iter().zip(by_hand).all(|(a, b)| agree(number(a), b)) {
        return Err(format!("training: ppl ends at {ppl_params:?}, by hand at {by_hand:?}"));
    }
    let hand = median(runs, || {
        std::hint::black_box(cone_by_hand::train(
            params,
            TRAINING_STEPS,
            TRAINING_PARTICLES,
            0.001,
            TRAINING_SEED,
            stream,
        ));
    });
    let ppl_seconds = trainings[trainings.len() / 2];
    let per_step = |seconds: f64| seconds / TRAINING_STEPS as f64 * 1e6;
    println!(
        "training, {TRAINING_STEPS} steps × {TRAINING_PARTICLES} particles: hand {:.2} µs/step, ppl {:.2} µs/step ({:.2}× hand; the same parameters)",
        per_step(hand.as_secs_f64()),
        per_step(ppl_seconds),
        ppl_seconds / hand.as_secs_f64()
    );

    let whole = measure_ppl(runs, Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/cone.ppl")), &[])?;
    println!(
        "`ppl run examples/cone.ppl` (compile, train ELBO and IWELBO, estimates): {:.3} s, peak RSS {:.1} MB",
        whole.time.as_secs_f64(),
        whole.peak_kib as f64 / 1024.0
    );
    for file in files {
        let _ = std::fs::remove_file(file);
    }
    Ok(())
}
