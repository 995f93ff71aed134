//! Results under faults: output files that a planted symlink cannot redirect and a crash cannot
//! mix, `--resume` refusing what does not fit, SIGTERM saving like Ctrl-C, and non-finite or
//! extreme results reported as what they are.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{ppl, stderr, stdout, Scratch};
use serde_json::Value;

/// The conjugate model trained with `options`, then its parameters printed.
fn conjugate(options: &str) -> String {
    common::conjugate(options) + "print m, log_s;\n"
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("readable")).expect("JSON")
}

#[test]
fn planted_symlinks_are_replaced_never_followed() {
    let scratch = Scratch::new("faults-symlink");
    let victim = scratch.file("victim.txt", "precious");
    let out = scratch.0.join("out");
    std::fs::create_dir_all(&out).expect("out");
    // The names the old writer used, and the final names themselves.
    for name in ["params.json.tmp", "run.json.tmp", "params.json", "run.json", "trace.csv", "loss.svg"] {
        std::os::unix::fs::symlink(&victim, out.join(name)).expect("a symlink");
    }
    let program = scratch.file("p.ppl", conjugate("optimizer: adam(lr: 0.05), steps: 20, seed: 1"));
    let output = ppl(&["run", "--quiet", "--out", out.to_str().expect("utf-8"), program.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "precious");
    for name in ["params.json", "run.json", "trace.csv", "loss.svg"] {
        let metadata = std::fs::symlink_metadata(out.join(name)).expect("written");
        assert!(metadata.file_type().is_file(), "{name} is a regular file now");
    }

    // `fmt --write` likewise.
    let unformatted = scratch.file("f.ppl", "param   a: real = 1.0;\n");
    std::os::unix::fs::symlink(&victim, scratch.0.join("f.ppl.ppl-fmt.tmp")).expect("a symlink");
    let output = ppl(&["fmt", "--write", unformatted.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "precious");
    assert_eq!(std::fs::read_to_string(&unformatted).expect("formatted"), "param a: real = 1.0;\n");
}

#[test]
fn out_problems_are_found_before_training() {
    let scratch = Scratch::new("faults-out");
    let in_the_way = scratch.file("file", "not a folder");
    // A long training: the error must come at once, not after it.
    let program = scratch.file("p.ppl", conjugate("optimizer: adam(lr: 0.05), steps: 100000000, seed: 1"));
    let started = std::time::Instant::now();
    let output =
        ppl(&["run", "--quiet", "--out", in_the_way.to_str().expect("utf-8"), program.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("cannot create"), "{}", stderr(&output));
    assert!(started.elapsed().as_secs() < 20, "found before training");
}

#[test]
fn a_set_mixed_by_a_crash_is_refused_and_a_whole_one_resumes_exactly() {
    let scratch = Scratch::new("faults-mixed");
    let options = |steps: u32| format!("optimizer: adam(lr: 0.05), steps: {steps}, particles: 4, seed: 5");
    let first = scratch.file("first.ppl", conjugate(&options(25)));
    let whole = scratch.file("whole.ppl", conjugate(&options(60)));
    let dir = scratch.0.join("checkpoint");
    let dir = dir.to_str().expect("utf-8");
    let part = ppl(&["run", "--quiet", "--out", dir, first.to_str().expect("utf-8")]);
    assert_eq!(part.status.code(), Some(0), "{}", stderr(&part));
    let run = read_json(&Path::new(dir).join("run.json"));
    assert_eq!(run["generation"], 1);
    assert_eq!(run["ended"], "completed");

    // A newer params.json beside the old run.json: what a crash between the two writes leaves.
    let saved = std::fs::read_to_string(Path::new(dir).join("params.json")).expect("params");
    std::fs::write(Path::new(dir).join("params.json"), "{\"m\": 0.25, \"log_s\": -0.5}\n").expect("write");
    let mixed = ppl(&["run", "--quiet", "--resume", dir, whole.to_str().expect("utf-8")]);
    assert_eq!(mixed.status.code(), Some(1));
    assert!(stderr(&mixed).contains("does not belong with `run.json`"), "{}", stderr(&mixed));
    std::fs::write(Path::new(dir).join("params.json"), saved).expect("restore");
    let resumed = ppl(&["run", "--quiet", "--json", "--resume", dir, whole.to_str().expect("utf-8")]);
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
}

/// Kills runs that write `--out` at many moments; every folder left behind is either refused
/// by `--resume` as mixed or resumes to the same bits as a run never stopped.
#[test]
fn killed_while_writing_the_folder_is_refused_or_resumes_exactly() {
    let scratch = Scratch::new("faults-kill");
    let options = |steps: u32| format!("optimizer: adam(lr: 0.05), steps: {steps}, particles: 4, seed: 5");
    let first = scratch.file("first.ppl", conjugate(&options(25)));
    let whole = scratch.file("whole.ppl", conjugate(&options(60)));
    let whole = whole.to_str().expect("utf-8");
    let expected = stdout(&ppl(&["run", "--quiet", whole]));
    let expected = expected.lines().skip_while(|line| !line.starts_with("m = ")).collect::<Vec<_>>().join("\n");
    let mut refused = 0;
    let mut resumed = 0;
    for attempt in 0..24u64 {
        let dir = scratch.0.join(format!("checkpoint-{attempt}"));
        let dir = dir.to_str().expect("utf-8");
        let part = ppl(&["run", "--quiet", "--out", dir, first.to_str().expect("utf-8")]);
        assert_eq!(part.status.code(), Some(0), "{}", stderr(&part));
        // Rewrite the same folder and kill the writer at a moment that moves through its run.
        let mut child = Command::new(env!("CARGO_BIN_EXE_ppl"))
            .args(["run", "--quiet", "--out", dir, first.to_str().expect("utf-8")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ppl starts");
        // A run takes about 10 ms, writing the folder at its end: the moments sweep across it.
        std::thread::sleep(std::time::Duration::from_micros(1000 + attempt * 600));
        let _ = child.kill();
        let _ = child.wait();
        let leftovers: Vec<String> = std::fs::read_dir(dir)
            .expect("the folder")
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| !name.starts_with('.'))
            .collect();
        assert!(leftovers.len() == 4, "only the four result files are visible: {leftovers:?}");
        let output = ppl(&["run", "--quiet", "--resume", dir, whole]);
        match output.status.code() {
            Some(0) => {
                resumed += 1;
                let text = stdout(&output);
                let got = text.lines().skip_while(|line| !line.starts_with("m = ")).collect::<Vec<_>>().join("\n");
                assert_eq!(got, expected, "attempt {attempt}: resumed to other bits");
            }
            _ => {
                refused += 1;
                assert!(stderr(&output).contains("does not belong"), "attempt {attempt}: {}", stderr(&output));
            }
        }
    }
    assert_eq!(refused + resumed, 24);
}

#[test]
fn resume_refuses_parameters_and_records_that_do_not_fit() {
    let scratch = Scratch::new("faults-resume");
    let options = "optimizer: adam(lr: 0.05), steps: 30, particles: 4, seed: 5";
    let program = scratch.file("p.ppl", conjugate(options));
    let dir = scratch.0.join("checkpoint");
    let dir = dir.to_str().expect("utf-8");
    let part = ppl(&["run", "--quiet", "--out", dir, program.to_str().expect("utf-8")]);
    assert_eq!(part.status.code(), Some(0), "{}", stderr(&part));
    let cases = [
        // A parameter of another shape.
        (
            conjugate(options)
                .replace("param m: real = 0.0;", "param m: vec[2] = [0.0, 0.0];")
                .replace("guide(m, log_s)", "guide(m[0], log_s)"),
            "the saved `m` is a real, but the program declares it vec[2]",
        ),
        // A parameter the saved run did not have.
        (
            conjugate(options)
                .replace("param log_s: real = 0.0;", "param log_s: real = 0.0;\nparam extra: real = 1.0;"),
            "the saved parameters have no `extra`",
        ),
        // A parameter the program no longer declares.
        (
            conjugate(options).replace("param log_s: real = 0.0;", "let log_s = 0.0;"),
            "which the program does not declare",
        ),
        // Fewer steps than the saved run took.
        (
            conjugate(&options.replace("steps: 30", "steps: 10")),
            "the saved run took 30 steps, more than this command's 10",
        ),
    ];
    for (source, message) in cases {
        let path = scratch.file("changed.ppl", source);
        let output = ppl(&["run", "--quiet", "--color", "never", "--resume", dir, path.to_str().expect("utf-8")]);
        assert_eq!(output.status.code(), Some(1), "{message}: {}", stderr(&output));
        assert!(
            stderr(&output).contains("E0504") && stderr(&output).contains(message),
            "{message}:\n{}",
            stderr(&output)
        );
    }
}

#[test]
fn sigterm_stops_training_and_saves_like_ctrl_c() {
    use std::io::{BufRead, BufReader};
    let scratch = Scratch::new("faults-sigterm");
    let steps = 20_000_000u64;
    let program = scratch.file("p.ppl", conjugate(&format!("optimizer: adam(lr: 0.001), steps: {steps}, seed: 1")));
    let dir = scratch.0.join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ppl"))
        .args(["run", "--out", dir.to_str().expect("utf-8"), program.to_str().expect("utf-8")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ppl starts");
    // Progress lines (a tenth of the run each, without a terminal) show that training runs;
    // a signal before the handler is installed would not test it. Wait for the first one.
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(first.starts_with("step "), "training reports progress: {first}");
    let terminated = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
    assert!(terminated.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("it exits");
    assert_eq!(status.code(), Some(130), "{rest:?}");
    let run = read_json(&dir.join("run.json"));
    assert_eq!(run["ended"], "interrupted");
    assert_eq!(run["trainings"][0]["stopped"], "interrupted");
    let taken = run["trainings"][0]["steps"].as_u64().expect("steps");
    assert!(taken > 0 && taken < steps, "{taken}");
}

#[test]
fn infinite_samples_are_reported_as_infinite() {
    let scratch = Scratch::new("faults-inf");
    let program = scratch.file(
        "p.ppl",
        "param t: real = 0.5;\nfn f(t) { E { x ~ normal(t, 1.0); exp(1000.0 * x^2) } }\n\
         print estimate(f(t), samples: 100);\n",
    );
    let output = ppl(&["run", program.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("= inf ± inf (100 samples)"), "{}", stdout(&output));
    // Its gradient is +∞ for some samples and −∞ for others: no mean, and it says so.
    let gradient = scratch.file(
        "g.ppl",
        "param t: real = 0.5;\nfn f(t) { E { x ~ normal(t, 1.0); exp(1000.0 * x^2) } }\n\
         print grad(f(t), samples: 100);\n",
    );
    let output = ppl(&["run", "--color", "never", gradient.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("[E0701]") && stderr(&output).contains("both +inf and -inf"),
        "{}",
        stderr(&output)
    );
    assert!(!stdout(&output).contains("NaN"), "{}", stdout(&output));
}

#[test]
fn counts_beyond_the_int_range_saturate_instead_of_turning_negative() {
    let scratch = Scratch::new("faults-count");
    let program = scratch.file("p.ppl", "gen g() { n ~ geometric(1e-300); }\nprint sample(g(), 5);\n");
    for backend in ["jit", "interp"] {
        let output = ppl(&["run", "--json", "--backend", backend, program.to_str().expect("utf-8")]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let counts: Vec<i64> = stdout(&output)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter_map(|line| line["trace"]["n"].as_i64())
            .collect();
        assert_eq!(counts, vec![i64::MAX; 5], "{backend}");
    }
}

#[test]
fn messages_show_what_happened_and_never_echo_control_bytes() {
    let scratch = Scratch::new("faults-messages");
    // A byte-order mark is read as blank space.
    let marked = scratch.file("bom.ppl", "\u{FEFF}param a: real = 1.0;\nprint a;\n");
    let output = ppl(&["run", marked.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "a = 1.0\n");
    // A file's escape bytes are not sent to the terminal when it is quoted.
    let escaping = scratch.file("escape.ppl", "param a: real = 1.0;\n\u{1b}[2J\u{1b}]0;owned\u{7}\nprint a;\n");
    let output = ppl(&["check", "--color", "never", escaping.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("E0004"), "{}", stderr(&output));
    assert!(!output.stderr.iter().any(|byte| *byte == 0x1b || *byte == 0x07), "{:?}", stderr(&output));
    // A huge rate is written as a number people read.
    let huge = scratch.file("huge.ppl", "param t: real = 1.0;\nfn f(t) { E { n ~ poisson(t * 1e300); if n > 0 { 1.0 } else { 0.0 } } }\nprint estimate(f(t));\n");
    let output = ppl(&["run", "--color", "never", huge.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("got 1e300"), "{}", stderr(&output));
    // NaN computed from constants says so.
    let constant = scratch.file(
        "nan.ppl",
        "param t: real = 1.0;\nfn f(t) { E { x ~ normal(t, 1.0); x + 0.0 / 0.0 } }\nprint estimate(f(t));\n",
    );
    let output = ppl(&["run", "--color", "never", constant.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("a constant the program computes from constants"), "{}", stderr(&output));
}

/// Every distribution's draws stay in its support at the extremes of its valid parameters,
/// on both back ends: `(distribution call, what a draw must satisfy)`.
#[test]
fn draws_stay_in_their_support_at_extreme_parameters() {
    use ppl::run::{Backend, Output, Printed, RunOptions, Session};
    let tiny = ["1e-300", "1e-10", "1.0", "1e10", "1e300"];
    type InSupport = fn(&Printed) -> bool;
    let mut cases: Vec<(String, InSupport)> = Vec::new();
    let real = |x: &Printed| matches!(x, Printed::Real(x) if !x.is_nan());
    let non_negative = |x: &Printed| matches!(x, Printed::Real(x) if *x >= 0.0);
    let count = |x: &Printed| matches!(x, Printed::Int(n) if *n >= 0);
    for a in tiny {
        for b in tiny {
            cases.push((format!("normal(-{a}, {b})"), real));
            cases.push((format!("laplace({a}, {b})"), real));
            cases.push((format!("cauchy(-{a}, {b})"), real));
            cases.push((format!("lognormal({a}, {b})"), non_negative));
            cases.push((format!("gamma({a}, {b})"), non_negative));
            cases.push((format!("beta({a}, {b})"), |x| matches!(x, Printed::Real(x) if (0.0..=1.0).contains(x))));
            cases.push((format!("uniform(-{a}, {b})"), real));
        }
        cases.push((format!("exponential({a})"), non_negative));
        cases.push((format!("half_normal({a})"), non_negative));
        cases.push((format!("half_cauchy({a})"), non_negative));
        for p in ["1e-10", "0.5", "1.0"] {
            cases.push((format!("negative_binomial({a}, {p})"), count));
        }
        for (n, p) in [("0", "0.5"), ("1", "0.0"), ("1000000", "1.0"), ("9007199254740992", "1e-10")] {
            cases.push((format!("binomial({n}, {p})"), count));
        }
        for df in ["1e-3", "1.0", "1e6"] {
            cases.push((format!("student_t({df}, -{a}, {a})"), real));
        }
        cases.push((format!("poisson({})", if a == "1e300" { "1e18" } else { a }), count));
    }
    for logit in ["-1e300", "-40.0", "0.0", "40.0", "1e300"] {
        cases.push((format!("bernoulli_logit({logit})"), |x| matches!(x, Printed::Bool(_))));
    }
    for p in ["0.0", "1e-300", "1e-10", "0.5", "1.0"] {
        cases.push((format!("flip({p})"), |x| matches!(x, Printed::Bool(_))));
        if p != "0.0" {
            cases.push((format!("geometric({p})"), count));
        }
    }
    cases.push(("categorical([1e-300, 1.0, 0.0])".into(), |x| matches!(x, Printed::Int(0..=2))));
    let program: String = cases
        .iter()
        .enumerate()
        .map(|(k, (call, _))| format!("gen g{k}() {{ x ~ {call}; }}\nprint sample(g{k}(), 50);\n"))
        .collect();
    let analysis = ppl::check_source("support.ppl", &program);
    assert!(!analysis.has_errors(), "{}", analysis.render_diagnostics(ppl::diagnostics::ColorChoice::Never));
    for backend in [Backend::Jit, Backend::Interpreter] {
        let options = RunOptions { backend, seed: Some(11), ..Default::default() };
        let mut session = Session::new(&analysis, options).expect("it runs");
        let mut traces: Vec<(String, Printed)> = Vec::new();
        session
            .run_commands(&mut |output| {
                if let Output::Trace { source, trace, .. } = output {
                    traces.push((source, trace));
                }
            })
            .unwrap_or_else(|diagnostic| panic!("{backend:?}: {}", diagnostic.message));
        assert_eq!(traces.len(), 50 * cases.len());
        for ((source, trace), k) in traces.iter().zip((0..cases.len()).flat_map(|k| std::iter::repeat_n(k, 50))) {
            let (call, in_support) = &cases[k];
            let Printed::Record(fields) = trace else { panic!("{source}: {trace}") };
            let draw = &fields[0].1;
            assert!(in_support(draw), "{backend:?}: {call} drew {draw}");
        }
    }
}

#[test]
fn thousands_of_threads_are_not_started() {
    let scratch = Scratch::new("faults-threads");
    let program = scratch.file(
        "p.ppl",
        "param t: real = 0.5;\nfn f(t) { E { x ~ normal(t, 1.0); x } }\nprint estimate(f(t), samples: 10000);\n",
    );
    let started = std::time::Instant::now();
    let many = ppl(&["run", "--threads", "5000", program.to_str().expect("utf-8")]);
    assert_eq!(many.status.code(), Some(0), "{}", stderr(&many));
    assert!(started.elapsed().as_secs() < 20, "5000 threads asked for: {:?}", started.elapsed());
    let one = ppl(&["run", "--threads", "1", program.to_str().expect("utf-8")]);
    assert_eq!(stdout(&many), stdout(&one));
}
