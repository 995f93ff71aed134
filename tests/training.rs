//! Training end to end: `maximize`/`minimize` through `ppl run`, its report, its files, resuming,
//! interrupting and diverging.

mod common;

use std::process::{Command, Output, Stdio};

use common::{conjugate, ppl, stderr, stdout, Scratch};
use serde_json::Value;

fn reports(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

fn param(params: &Value, name: &str) -> f64 {
    params[name].as_f64().unwrap_or_else(|| panic!("no parameter `{name}` in {params}"))
}

#[test]
fn maximizing_the_elbo_finds_the_exact_posterior() {
    let scratch = Scratch::new("train-conjugate");
    // The cosine schedule anneals the step size to 0, so the end point is not jittered by noise.
    let program = conjugate("optimizer: adam(lr: 0.05), steps: 2000, particles: 16, seed: 1, schedule: \"cosine\"");
    let path = scratch.file("p.ppl", &program);
    let output = ppl(&["run", "--json", "--quiet", path.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let reports = reports(&output);
    let report = &reports[0];
    assert_eq!(report["kind"], "maximize");
    assert_eq!(report["steps"], 2000);
    let seconds = report["seconds"].as_f64().expect("the training's time");
    // Where the time went: parts of it, none negative.
    let parts: Vec<f64> = ["gradients", "gradient_passes", "updates", "preparation"]
        .iter()
        .map(|part| report["time"][part].as_f64().expect("a part of the time"))
        .collect();
    assert!(parts.iter().all(|part| *part >= 0.0) && parts.iter().sum::<f64>() <= seconds, "{}", report["time"]);
    assert!(parts[0] > 0.0, "the gradients took no time: {}", report["time"]);
    // The posterior is N(y/2, √½): the ELBO's optimum, where it equals log p(y) = log N(1.5; 0, √2).
    let (m, log_s) = (param(&report["params"], "m"), param(&report["params"], "log_s"));
    assert!((m - 0.75).abs() < 0.02, "m = {m}");
    assert!((log_s - 0.5f64.sqrt().ln()).abs() < 0.05, "log_s = {log_s}");
    let log_evidence = -0.5 * (2.0 * std::f64::consts::PI * 2.0).ln() - 1.5f64.powi(2) / 4.0;
    let objective = report["objective"]["mean"].as_f64().expect("objective mean");
    assert!((objective - log_evidence).abs() < 0.02, "ELBO {objective} vs log p(y) {log_evidence}");
    let keys: Vec<&str> = report.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(&keys[..7], ["kind", "source", "steps", "seconds", "time", "objective", "params"]);
}

#[test]
fn minimize_descends_and_wrt_groups_train_their_own_parameters() {
    let scratch = Scratch::new("train-groups");
    let program = "param a: real = 3.0;\nparam b: real = -2.0;\n\
         fn square(a) { E { x ~ normal(a, 0.1); x^2 } }\n\
         minimize square(a) wrt [a], square(b) wrt [b] with { optimizer: sgd(lr: 0.1), steps: 200, particles: 16, seed: 2 };\n\
         print a, b;\n";
    let path = scratch.file("p.ppl", program);
    let output = ppl(&["run", "--json", "--quiet", path.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let reports = reports(&output);
    assert_eq!(reports[0]["kind"], "minimize");
    assert_eq!(reports[0]["objectives"].as_array().map(Vec::len), Some(2));
    // Each objective reports its own estimate over the last steps: E[x²] = a² + 0.01 → 0.01.
    for objective in reports[0]["objectives"].as_array().into_iter().flatten() {
        let mean = objective["mean"].as_f64().unwrap_or_else(|| panic!("a number: {objective}"));
        let stderr = objective["stderr"].as_f64().unwrap_or_else(|| panic!("a number: {objective}"));
        assert!((mean - 0.01).abs() < 0.005 && stderr < 0.005, "{objective}");
    }
    for value in [&reports[1]["value"], &reports[2]["value"]] {
        assert!(value.as_f64().is_some_and(|x| x.abs() < 0.05), "trained to 0: {value}");
    }
}

#[test]
fn out_writes_params_trace_plot_and_record() {
    let scratch = Scratch::new("train-out");
    let path = scratch.file("p.ppl", conjugate("optimizer: adam(lr: 0.05), steps: 50, seed: 3"));
    let dir = scratch.0.join("results");
    let output = ppl(&["run", "--quiet", "--out", dir.to_str().expect("utf-8"), path.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let params: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("params.json")).expect("params.json"))
        .expect("params.json is JSON");
    assert!(params["m"].is_number() && params["log_s"].is_number(), "{params}");
    let trace = std::fs::read_to_string(dir.join("trace.csv")).expect("trace.csv");
    let mut lines = trace.lines();
    assert_eq!(lines.next(), Some("command,step,objective,running_objective,gradient_norm,learning_rate"));
    assert_eq!(lines.count(), 50, "one row per step");
    let plot = std::fs::read_to_string(dir.join("loss.svg")).expect("loss.svg");
    assert!(plot.starts_with("<svg") && plot.contains("<polyline"), "an SVG with a curve");
    let run: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).expect("run.json"))
        .expect("run.json is JSON");
    assert_eq!(run["trainings"][0]["steps"], 50);
    assert!(run["versions"]["ppl"].is_string() && run["seconds"].is_number(), "{run}");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .expect("results dir")
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary files left: {leftovers:?}");
}

/// Vector and matrix parameters are also written as `.npy` files, which `load` (as NumPy) reads
/// back to the values in `params.json`.
#[test]
fn out_writes_vector_and_matrix_params_as_npy_files() {
    let scratch = Scratch::new("train-out-npy");
    let path = scratch.file(
        "p.ppl",
        "param w: mat[2, 3] = [[1.5, -2.0, 3.25], [0.1, 0.2, 1e-300]];\n\
         param v: vec[4] = [1.0, 2.0, 3.0, 4.0];\n\
         param a: real = 2.0;\n\
         maximize E { -sum(w * w) - sum(v * v) - a * a } with { steps: 3, optimizer: sgd(lr: 0.1) };\n",
    );
    let dir = scratch.0.join("results");
    let output = ppl(&["run", "--quiet", "--out", dir.to_str().expect("utf-8"), path.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!dir.join("a.npy").exists(), "a real stays in params.json alone");
    let reader = scratch.file(
        "read.ppl",
        "data w: mat[2, 3] = load(\"results/w.npy\");\ndata v: vec[4] = load(\"results/v.npy\");\nprint w, v;\n",
    );
    let output = ppl(&["run", "--json", reader.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let printed: Vec<Value> =
        stdout(&output).lines().map(|line| serde_json::from_str(line).expect("one JSON object per line")).collect();
    let params: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("params.json")).expect("params.json"))
        .expect("params.json is JSON");
    assert_eq!(printed[0]["value"], params["w"], "{printed:?}");
    assert_eq!(printed[1]["value"], params["v"], "{printed:?}");
}

/// In f64 and in f32 (whose optimizer state is saved widened to f64 and resumed rounded back).
#[test]
fn resuming_continues_exactly_where_the_run_stopped() {
    let scratch = Scratch::new("train-resume");
    let options = |steps: u32| format!("optimizer: adam(lr: 0.05), steps: {steps}, particles: 4, seed: 5");
    let whole = scratch.file("whole.ppl", conjugate(&options(60)));
    let first = scratch.file("first.ppl", conjugate(&options(25)));
    let mut trained = Vec::new();
    for precision in ["f64", "f32"] {
        let dir = scratch.0.join(format!("checkpoint-{precision}"));
        let dir = dir.to_str().expect("utf-8");
        let run = |flags: &[&str], path: &std::path::Path| {
            let output = ppl(&[
                &["run", "--json", "--quiet", "--precision", precision],
                flags,
                &[path.to_str().expect("utf-8")],
            ]
            .concat());
            assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
            output
        };
        let uninterrupted = run(&[], &whole);
        run(&["--out", dir], &first);
        let resumed = run(&["--resume", dir], &whole);
        let (a, b) = (&reports(&uninterrupted)[0], &reports(&resumed)[0]);
        assert_eq!(b["steps"], 60);
        assert_eq!(a["params"], b["params"], "{precision}: bit-identical parameters after resuming");
        trained.push(a["params"].clone());
    }
    assert_ne!(trained[0], trained[1], "trained in f32, not f64");
}

#[test]
fn ctrl_c_stops_after_the_current_step_and_keeps_the_parameters() {
    let scratch = Scratch::new("train-interrupt");
    let path = scratch.file("p.ppl", conjugate("optimizer: adam(lr: 0.01), steps: 100000000, particles: 4, seed: 7"));
    let dir = scratch.0.join("results");
    let child = Command::new(env!("CARGO_BIN_EXE_ppl"))
        .args(["run", "--json", "--out", dir.to_str().expect("utf-8"), path.to_str().expect("utf-8")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the ppl binary starts");
    // Let it train for a while, then interrupt it as a terminal would.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
    let output = child.wait_with_output().expect("ppl exits");
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    let report = &reports(&output)[0];
    assert_eq!(report["stopped"], "interrupted");
    let steps = report["steps"].as_u64().expect("steps");
    assert!(steps > 0 && steps < 100_000_000, "stopped early after {steps} steps");
    let params: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("params.json")).expect("params.json")).expect("JSON");
    assert_eq!(params, report["params"], "the saved parameters are the trained ones");
    assert!(param(&params, "m") > 0.0, "training moved m towards 0.75: {params}");
}

#[test]
fn divergence_is_reported_with_its_step_and_origin_and_keeps_finite_parameters() {
    let scratch = Scratch::new("train-diverge");
    // log(1 - a) is NaN once a passes 1, which plain ascent on this objective soon makes it do.
    let program = "param a: real = 0.5;\nfn f(a) { E { x ~ normal(a, 0.1); x + log(1.0 - a) * 0.01 } }\n\
         maximize f(a) with { optimizer: sgd(lr: 0.2), steps: 1000, seed: 1 };\n";
    let path = scratch.file("p.ppl", program);
    let dir = scratch.0.join("results");
    let output = ppl(&[
        "run",
        "--quiet",
        "--color",
        "never",
        "--out",
        dir.to_str().expect("utf-8"),
        path.to_str().expect("utf-8"),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(text.contains("[E0701]"), "{text}");
    assert!(text.contains("training stopped at step"), "{text}");
    assert!(text.contains("log(1.0 - a)"), "the span of the first NaN is shown:\n{text}");
    let params: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("params.json")).expect("params.json")).expect("JSON");
    let a = param(&params, "a");
    assert!(a.is_finite() && a > 0.5, "the parameters are finite, as they were before the step that diverged: {a}");
}

/// In f32 a weight that only products read is moved in f32 alone during a training, its f64
/// values widened when something else needs them: a training that diverges, or whose call
/// fails, explains itself and saves the same parameters as the interpreter, which reads every
/// weight in f64 at every step.
#[test]
fn a_failing_training_in_f32_keeps_the_weights_its_products_read_rounded() {
    let scratch = Scratch::new("train-fail-f32");
    // `w` is read only by the batched product `w @ x`. Plain ascent on `a` soon makes
    // `log(1 - a)` NaN, or the scale of `y` negative.
    let head = "data rows: mat[4, 2] = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]];\n\
         param w: mat[3, 2] = uniform_init(0.5);\nparam a: real = 0.5;\n";
    let tail = "maximize mean_over(rows, f, batch: 4) with { optimizer: sgd(lr: 0.2), steps: 1000, seed: 1 };\n";
    for (name, objective, message) in [
        (
            "diverges",
            "E { y ~ normal(a, 0.1); y + sum(w @ x) * 0.01 + log(1.0 - a) * 0.01 }",
            "training stopped at step",
        ),
        ("fails", "E { y ~ normal(0.0, 1.5 - a); a + sum(w @ x) * 0.01 + y * 0.0 }", "must be positive"),
    ] {
        let program = format!("{head}fn f(x: vec[2]) {{ {objective} }}\n{tail}");
        let path = scratch.file(&format!("{name}.ppl"), &program);
        let saved = |backend: &str| {
            let dir = scratch.0.join(format!("{name}-{backend}"));
            let (dir, path) = (dir.to_str().expect("utf-8"), path.to_str().expect("utf-8"));
            let output = ppl(&["run", "--quiet", "--precision", "f32", "--backend", backend, "--out", dir, path]);
            assert_eq!(output.status.code(), Some(1), "{name}: {}", stderr(&output));
            assert!(stderr(&output).contains(message), "{name}: {}", stderr(&output));
            std::fs::read_to_string(std::path::Path::new(dir).join("params.json")).expect("params.json")
        };
        let native = saved("jit");
        let params: Value = serde_json::from_str(&native).expect("JSON");
        assert!(params["w"].is_array(), "{name}: w is saved: {params}");
        assert_eq!(native, saved("interp"), "{name}: the same parameters on both back ends");
    }
}

/// A training's `precision: "f32"` trains it as `--precision f32` trains it, to the same bits,
/// and leaves what follows it in f64; `--precision` given on the command line holds for every
/// training instead.
#[test]
fn a_trainings_own_precision_holds_for_it_unless_the_command_line_fixes_one() {
    let scratch = Scratch::new("train-precision");
    let program = |option: &str| {
        format!(
            "data rows: mat[4, 3] = [[1.0, 2.0, -1.0], [0.5, -0.25, 3.0], [-2.0, 1.0, 0.0], [0.0, 4.0, 1.5]];\n\
             param w: mat[2, 3] = uniform_init(0.5);\n\
             fn f(x: vec[3]) {{ E {{ y ~ normal(0.0, 1.0); -sum((w @ x - y)^2) }} }}\n\
             maximize mean_over(rows, f, batch: 4)\n    \
             with {{ optimizer: adam(lr: 0.01), steps: 50, seed: 3, diagnostics: 0{option} }};\n\
             print estimate(mean_over(rows, f, batch: 4), samples: 100);\n"
        )
    };
    let run = |name: &str, option: &str, flags: &[&str]| -> (Value, Value) {
        let path = scratch.file(&format!("{name}.ppl"), program(option));
        let mut args = vec!["run", "--json", "--quiet"];
        args.extend_from_slice(flags);
        let path = path.to_string_lossy().into_owned();
        args.push(&path);
        let output = ppl(&args);
        assert_eq!(output.status.code(), Some(0), "{name}: {}", stderr(&output));
        let lines = reports(&output);
        let trained = lines.iter().find(|line| line["kind"] == "maximize").expect("a training report");
        let estimate = lines.iter().find(|line| line["kind"] == "estimate").expect("an estimate");
        (trained["params"]["w"].clone(), estimate["mean"].clone())
    };
    let (own, own_estimate) = run("own", ", precision: \"f32\"", &[]);
    let (flag, flag_estimate) = run("flag", "", &["--precision", "f32"]);
    let (plain, plain_estimate) = run("plain", "", &[]);
    let (overridden, overridden_estimate) = run("overridden", ", precision: \"f32\"", &["--precision", "f64"]);
    assert_eq!(own, flag, "the option trains as the flag does");
    assert_ne!(own, plain, "f32 training differs from f64's");
    assert_eq!((&overridden, &overridden_estimate), (&plain, &plain_estimate), "the flag holds over the option");
    // Trained in f32, the weights are f32 numbers.
    let weights: Vec<f64> = own
        .as_array()
        .expect("rows")
        .iter()
        .flat_map(|row| row.as_array().expect("a row").clone())
        .map(|x| x.as_f64().expect("a number"))
        .collect();
    assert!(weights.iter().all(|x| f64::from(*x as f32) == *x), "{weights:?}");
    // The estimate after the training computes in f64 with the option, in f32 with the flag.
    assert_ne!(own_estimate, flag_estimate, "the estimate after the option's training is f64's");
}

#[test]
fn on_nan_skip_skips_the_bad_steps_and_tolerance_stops_early() {
    let scratch = Scratch::new("train-skip");
    let program = "param a: real = 0.0;\n\
         fn f(a) { E { x ~ normal(0.0, 1.0); -(a - 1.0)^2 + (if x > 2.5 { log(-1.0) } else { 0.0 }) } }\n\
         maximize f(a) with { optimizer: sgd(lr: 0.1), steps: 5000, seed: 1, on_nan: \"skip\", tolerance: 0.000001, patience: 50 };\n";
    let path = scratch.file("p.ppl", program);
    let output = ppl(&["run", "--json", "--quiet", path.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = &reports(&output)[0];
    assert_eq!(report["stopped"], "converged");
    assert!(report["steps"].as_u64().is_some_and(|steps| steps < 5000), "{report}");
    assert!((param(&report["params"], "a") - 1.0).abs() < 0.01, "{report}");
}

#[test]
fn a_bad_option_is_a_diagnostic() {
    let scratch = Scratch::new("train-bad-option");
    let path = scratch.file("p.ppl", conjugate("optimizer: adam(lr: 0.1, beta1: 1.5), steps: 10"));
    let output = ppl(&["run", "--color", "never", path.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("beta1"), "{}", stderr(&output));
}

#[test]
fn skipped_steps_neither_poison_the_running_average_nor_break_resuming() {
    let scratch = Scratch::new("train-skip-resume");
    // `bad` is NaN when z > 1 (and, in the first program, at the first step: with seed 1 its draw
    // is positive while m is still 0).
    let program = |steps: u32, first: &str, extra: &str| {
        format!(
            "param m: real = 0.0;\n\
             fn obj(m) {{ E {{ z ~ normal(0.0, 1.0); let bad = if z > 1.0 || {first} {{ log(-1.0) }} else {{ 0.0 }}; -(m + z - 10.0)^2 + bad }} }}\n\
             maximize obj(m) with {{ optimizer: sgd(lr: 0.01), steps: {steps}, on_nan: \"skip\"{extra} }};\n"
        )
    };
    let early = scratch.file("early.ppl", program(300, "(z > 0.0 && m == 0.0)", ", tolerance: 0.0001, patience: 20"));
    let output = ppl(&["run", "--json", "--quiet", "--seed", "1", early.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = &reports(&output)[0];
    assert!(param(&report["params"], "m") > 5.0, "training went on after the first, skipped step: {report}");

    let (short, long) =
        (scratch.file("short.ppl", program(10, "false", "")), scratch.file("long.ppl", program(20, "false", "")));
    let dir = scratch.0.join("checkpoint");
    let dir = dir.to_str().expect("utf-8");
    let first = ppl(&["run", "--quiet", "--out", dir, short.to_str().expect("utf-8")]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let resumed = ppl(&["run", "--json", "--quiet", "--resume", dir, long.to_str().expect("utf-8")]);
    let whole = ppl(&["run", "--json", "--quiet", long.to_str().expect("utf-8")]);
    assert_eq!(reports(&resumed)[0]["params"], reports(&whole)[0]["params"], "bit-identical after skipped steps");
}

#[test]
fn random_initialisers_fill_their_shapes_reproducibly_from_the_seed() {
    let source = "param w: mat[40, 50] = uniform_init(0.5);\nparam g: mat[40, 50] = glorot_init();\n\
                  param n: vec[2000] = normal_init(2.0);\nprint w, g, n;\n";
    let scratch = common::Scratch::new("initialisers");
    let path = scratch.file("init.ppl", source);
    let path = path.to_string_lossy();
    let run = |seed: &str| common::stdout(&common::ppl(&["run", "--json", "--full", "--seed", seed, &path]));
    let first = run("5");
    assert_eq!(first, run("5"), "the same seed gives the same initial values");
    assert_ne!(first, run("6"), "another seed gives others");
    let values = |name: &str| -> Vec<f64> {
        let line = first.lines().find(|line| line.contains(&format!("\"{name}\""))).expect("printed");
        let json: serde_json::Value = serde_json::from_str(line).expect("JSON");
        let value = &json["value"];
        let rows: Vec<&serde_json::Value> = match value.as_array() {
            Some(rows) => rows.iter().collect(),
            None => panic!("{line}"),
        };
        rows.iter()
            .flat_map(|row| match row.as_array() {
                Some(row) => row.iter().filter_map(serde_json::Value::as_f64).collect::<Vec<_>>(),
                None => row.as_f64().into_iter().collect(),
            })
            .collect()
    };
    let moments = |xs: &[f64]| {
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        (mean, (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64).sqrt())
    };
    let w = values("w");
    assert_eq!(w.len(), 2000);
    assert!(w.iter().all(|x| x.abs() <= 0.5));
    let (mean, sd) = moments(&w);
    assert!(mean.abs() < 0.03 && (sd - 0.5 / 3f64.sqrt()).abs() < 0.02, "uniform: {mean} ± {sd}");
    let bound = (6.0f64 / 90.0).sqrt();
    let g = values("g");
    assert!(g.iter().all(|x| x.abs() <= bound) && g.iter().any(|x| x.abs() > 0.9 * bound), "glorot bound {bound}");
    let (mean, sd) = moments(&values("n"));
    assert!(mean.abs() < 0.2 && (sd - 2.0).abs() < 0.15, "normal: {mean} ± {sd}");
}

#[test]
fn random_data_is_drawn_once_from_the_seed_on_streams_of_its_own() {
    let scratch = common::Scratch::new("random-data");
    let run = |name: &str, source: &str, seed: &str| -> Vec<Value> {
        let path = scratch.file(name, source);
        let output = ppl(&["run", "--json", "--full", "--seed", seed, &path.to_string_lossy()]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        reports(&output)
    };
    let alone = run("alone.ppl", "param w: vec[5] = normal_init(1.0);\nprint w;\n", "7");
    let with_data = "data z: mat[3, 4] = normal_init(2.0);\ndata u: vec[2000] = uniform_init(0.5);\n\
                     data g: mat[40, 50] = glorot_init();\nparam w: vec[5] = normal_init(1.0);\n\
                     print w, z, u, g, z;\nprint estimate(E { sum(z) }, samples: 3);\n";
    let first = run("data.ppl", with_data, "7");
    // Random data changes no parameter's initial value, and is drawn once per run.
    assert_eq!(first[0]["value"], alone[0]["value"]);
    assert_eq!(first[1]["value"], first[4]["value"]);
    let z: Vec<f64> = first[1]["value"]
        .as_array()
        .expect("rows")
        .iter()
        .flat_map(|row| row.as_array().expect("a row").iter().filter_map(Value::as_f64))
        .collect();
    assert_eq!(z.len(), 12);
    let sum: f64 = z.iter().sum();
    assert!((first[5]["mean"].as_f64().expect("a mean") - sum).abs() < 1e-9, "every sample reads the same data");
    // The same seed gives the same data, another seed other data; other data items, and the
    // order of the items, do not change an item's values (its stream is keyed by its name).
    assert_eq!(first, run("data.ppl", with_data, "7"));
    assert_ne!(first[1], run("data.ppl", with_data, "8")[1]);
    let reordered = "data extra: vec[3] = normal_init(1.0);\ndata u: vec[2000] = uniform_init(0.5);\n\
                     data z: mat[3, 4] = normal_init(2.0);\nprint z, u;\n";
    let reordered = run("reordered.ppl", reordered, "7");
    assert_eq!((&reordered[0]["value"], &reordered[1]["value"]), (&first[1]["value"], &first[2]["value"]));
    let u: Vec<f64> = first[2]["value"].as_array().expect("a vector").iter().filter_map(Value::as_f64).collect();
    let mean = u.iter().sum::<f64>() / u.len() as f64;
    assert!(u.iter().all(|x| x.abs() <= 0.5) && mean.abs() < 0.03, "uniform: mean {mean}");
    let bound = (6.0f64 / 90.0).sqrt();
    let g: Vec<f64> = first[3]["value"]
        .as_array()
        .expect("rows")
        .iter()
        .flat_map(|row| row.as_array().expect("a row").iter().filter_map(Value::as_f64))
        .collect();
    assert!(g.len() == 2000 && g.iter().all(|x| x.abs() <= bound), "glorot bound {bound}");
}

#[test]
fn relu_abs_min_and_max_differentiate_elementwise_on_vectors() {
    // Each element's derivative is exact: relu' = [t > 0], abs' = sign t, min(t, 0.5)' = [t ≤ 0.5],
    // leaky_relu(2t)' = 2 or 0.02. These were internal errors on vectors (a scalar comparison).
    let source = "param t: vec[4] = [-1.5, -0.2, 0.3, 2.0];\n\
                  fn f(t) { E { sum(relu(t)) + sum(abs(t)) + sum(min(t, 0.5)) + sum(leaky_relu(2.0 * t)) } }\n\
                  print grad(f(t), samples: 3);\n";
    let scratch = common::Scratch::new("masks");
    let path = scratch.file("masks.ppl", source);
    for backend in ["jit", "interp"] {
        let output = common::ppl(&["run", "--json", "--backend", backend, &path.to_string_lossy()]);
        let json: serde_json::Value = serde_json::from_str(common::stdout(&output).trim()).expect("one JSON line");
        let mean: Vec<f64> = json["params"]["t"]["mean"]
            .as_array()
            .expect("a gradient vector")
            .iter()
            .filter_map(serde_json::Value::as_f64)
            .collect();
        let exact = [0.02, 0.02, 5.0, 4.0];
        assert_eq!(mean.len(), 4);
        for (got, want) in mean.iter().zip(exact) {
            assert!((got - want).abs() < 1e-12, "{backend}: {mean:?} vs {exact:?}");
        }
    }
}

#[test]
fn slices_read_and_differentiate_like_the_elements_they_hold() {
    // d/dv of sum(v[1..3]) + 2·sum(m[.., 1] * v[2..5]) + m[0, 1..3] · v[0..2], exactly.
    let source = "data m: mat[3, 4] = [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0], [9.0, 10.0, 11.0, 12.0]];\n\
                  param v: vec[5] = [0.5, 1.0, 1.5, 2.0, 2.5];\n\
                  fn f(v) { E { sum(v[1..3]) + 2.0 * sum(m[.., 1] * v[2..5]) + dot(m[0, 1..3], v[..2]) } }\n\
                  print m[1..3, 2..4], m[.., 3];\nprint grad(f(v), samples: 2);\n";
    let scratch = common::Scratch::new("slices");
    let path = scratch.file("slices.ppl", source);
    for backend in ["jit", "interp"] {
        let output = common::ppl(&["run", "--json", "--backend", backend, &path.to_string_lossy()]);
        let lines: Vec<serde_json::Value> =
            common::stdout(&output).lines().map(|line| serde_json::from_str(line).expect("JSON")).collect();
        assert_eq!(lines.len(), 3, "{}", common::stderr(&output));
        assert_eq!(lines[0]["value"], serde_json::json!([[7.0, 8.0], [11.0, 12.0]]));
        assert_eq!(lines[1]["value"], serde_json::json!([4.0, 8.0, 12.0]));
        assert_eq!(lines[2]["params"]["v"]["mean"], serde_json::json!([2.0, 4.0, 5.0, 12.0, 20.0]), "{backend}");
    }
}

/// `examples/vae.ppl` with its training cut to 30 steps and its evaluation to 200 test images:
/// the paper's VAE loads binarized MNIST, trains on minibatches and improves its ELBO.
#[test]
fn the_vae_example_loads_mnist_trains_on_minibatches_and_improves() {
    let example = std::fs::read_to_string("examples/vae.ppl").expect("the example");
    if !std::path::Path::new("../shared/data/binarized_mnist").exists() {
        eprintln!("skipped: ../shared/data/binarized_mnist is not here");
        return;
    }
    let shortened = example
        .replace("steps: 7820", "steps: 30")
        .replace("mean_over(test, image_iwelbo)", "mean_over(test[..20], image_iwelbo)")
        .replace("mean_over(test, image_elbo)", "mean_over(test[..200], image_elbo)")
        .replace("../../shared/", &format!("{}/../shared/", env!("CARGO_MANIFEST_DIR")));
    assert_ne!(shortened, example, "the example's commands changed: update this test");
    let scratch = common::Scratch::new("vae");
    let path = scratch.file("vae.ppl", &shortened);
    let out = scratch.0.join("out");
    let output = common::ppl(&["run", "--json", "--out", &out.to_string_lossy(), &path.to_string_lossy()]);
    assert_eq!(output.status.code(), Some(0), "{}", common::stderr(&output));
    let lines: Vec<serde_json::Value> =
        common::stdout(&output).lines().filter_map(|line| serde_json::from_str(line).ok()).collect();
    let estimates: Vec<f64> =
        lines.iter().filter(|line| line["kind"] == "estimate").filter_map(|line| line["mean"].as_f64()).collect();
    assert_eq!(estimates.len(), 2, "{lines:?}");
    // Untrained, the ELBO is about -545 nats per image; 30 steps of Adam reach about -250.
    assert!(estimates.iter().all(|elbo| (-400.0..-100.0).contains(elbo)), "{estimates:?}");
    assert!(estimates[1] >= estimates[0] - 5.0, "IWELBO {} below ELBO {}", estimates[1], estimates[0]);
    // The pictures: 64 digits drawn from the model, and 32 test digits beside their
    // reconstructions, each 64 images of 28 × 28 in a grid of 8 × 8 with gaps of 2 pixels.
    let images: Vec<&serde_json::Value> = lines.iter().filter(|line| line["kind"] == "image").collect();
    let names: Vec<&str> = images.iter().filter_map(|line| line["name"].as_str()).collect();
    assert_eq!(names, ["samples", "reconstructions"], "{lines:?}");
    for (image, name) in images.iter().zip(names) {
        assert_eq!(
            (image["images"].as_u64(), image["columns"].as_u64(), image["rows"].as_u64()),
            (Some(64), Some(8), Some(8))
        );
        let picture = out.join(format!("{name}.png"));
        assert_eq!(image["path"], serde_json::json!(picture.display().to_string()));
        let file = std::io::BufReader::new(std::fs::File::open(&picture).expect("the picture"));
        let reader = png::Decoder::new(file).read_info().expect("a PNG");
        let info = reader.info();
        assert_eq!(
            (info.width, info.height, info.color_type),
            (8 * 28 + 7 * 2, 8 * 28 + 7 * 2, png::ColorType::Grayscale)
        );
    }
}

#[test]
fn a_weight_gradient_summed_over_rows_is_one_matrix_product_with_the_exact_value() {
    // mean over rows x_i of |W x_i|²: the gradient in W is (2/n) Σ_i (W x_i) x_iᵀ, which reverse
    // mode accumulates over the loop of rows and `ir::fuse` batches into one product.
    let xs = [[1.0, 2.0, -1.0], [0.5, -0.25, 3.0], [-2.0, 1.0, 0.0], [0.0, 4.0, 1.5], [1.0, 1.0, 1.0]];
    let w = [[0.5, -1.0, 0.25], [2.0, 0.0, -0.5]];
    let rows: Vec<String> = xs.iter().map(|x| format!("[{:?}, {:?}, {:?}]", x[0], x[1], x[2])).collect();
    let source = format!(
        "data xs: mat[5, 3] = [{}];\nparam w: mat[2, 3] = [[0.5, -1.0, 0.25], [2.0, 0.0, -0.5]];\n\
         fn row(x: vec[3]) {{ E {{ sum((w @ x)^2) }} }}\nprint grad(mean_over(xs, row), samples: 2);\n",
        rows.join(", ")
    );
    let mut exact = [[0.0; 3]; 2];
    for x in &xs {
        for (r, w_row) in w.iter().enumerate() {
            let y: f64 = w_row.iter().zip(x).map(|(a, b)| a * b).sum();
            for c in 0..3 {
                exact[r][c] += 2.0 * y * x[c] / xs.len() as f64;
            }
        }
    }
    let scratch = common::Scratch::new("batched-outer");
    let path = scratch.file("rows.ppl", source);
    let mut printed = Vec::new();
    for backend in ["jit", "interp"] {
        let output = common::ppl(&["run", "--json", "--backend", backend, &path.to_string_lossy()]);
        let json: serde_json::Value = serde_json::from_str(common::stdout(&output).trim()).expect("one JSON line");
        let mean = json["params"]["w"]["mean"].clone();
        for (r, row) in exact.iter().enumerate() {
            for (c, want) in row.iter().enumerate() {
                let got = mean[r][c].as_f64().expect("a number");
                assert!((got - want).abs() < 1e-12, "{backend}: d/dw[{r}][{c}] = {got}, exactly {want}");
            }
        }
        printed.push(mean);
    }
    assert_eq!(printed[0], printed[1], "the back ends agree bit for bit");
}

#[test]
fn a_matrix_gradient_prints_row_by_row() {
    let scratch = common::Scratch::new("matrix-gradient");
    let path = scratch.file(
        "m.ppl",
        "param m: mat[2, 2] = [[1.0, 2.0], [3.0, 4.0]];\nprint grad(E { sum(m @ [1.0, 2.0]) }, samples: 2);\n",
    );
    let output = common::stdout(&common::ppl(&["run", &path.to_string_lossy()]));
    assert!(output.contains("d/dm = [[1 ± 0, 2 ± 0], [1 ± 0, 2 ± 0]]"), "{output}");
}

#[test]
fn full_rank_and_dirichlet_guides_train_to_the_exact_posteriors() {
    // x ~ N(0, I), y ~ N(x₀ + x₁, ½), y = 1: the posterior is N((4/9, 4/9), [[5, −4], [−4, 5]]/9),
    // which a full-covariance `mv_normal` guide holds exactly (a diagonal one cannot).
    // p ~ Dirichlet(1, 1, 1) with counts (3, 2, 5) of categorical draws: the posterior is
    // Dirichlet(4, 3, 6), which the `dirichlet` guide (implicit gradients) holds exactly.
    let source = "gen line() { x ~ mv_normal([0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]]); y ~ normal(x[0] + x[1], 0.5); }\n\
        gen full(m: vec[2], l: mat[2, 2]) { x ~ mv_normal(m, l); }\n\
        param m: vec[2] = [0.0, 0.0];\nparam l: mat[2, 2] = [[1.0, 0.0], [0.0, 1.0]];\n\
        data seen: [int; 10] = [0, 0, 1, 2, 2, 2, 1, 0, 2, 2];\n\
        gen counts() { p ~ dirichlet([1.0, 1.0, 1.0]); for i in 0..10 { c[i] ~ categorical(p); } }\n\
        gen simplex(log_alpha: vec[3]) { p ~ dirichlet(exp(log_alpha)); }\n\
        param log_alpha: vec[3] = [0.0, 0.0, 0.0];\n\
        maximize elbo(line(), full(m, l), {y: 1.0}) wrt [m, l], elbo(counts(), simplex(log_alpha), {c: seen}) wrt [log_alpha]\n\
            with { optimizer: adam(lr: 0.02), steps: 4000, particles: 16, seed: 3, schedule: \"cosine\" };\n\
        print m, l, exp(log_alpha);\n";
    let scratch = Scratch::new("full-rank");
    let path = scratch.file("p.ppl", source);
    let output = ppl(&["run", "--json", "--quiet", "--full", path.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let reports = reports(&output);
    let numbers = |value: &Value| -> Vec<f64> {
        let flat: Vec<&Value> = match value.as_array() {
            Some(items) => {
                items.iter().flat_map(|item| item.as_array().map_or(vec![item], |row| row.iter().collect())).collect()
            }
            None => vec![value],
        };
        flat.into_iter().filter_map(Value::as_f64).collect()
    };
    let printed = |index: usize| numbers(&reports[index]["value"]);
    let (m, l, alpha) = (printed(1), printed(2), printed(3));
    for mean in &m {
        assert!((mean - 4.0 / 9.0).abs() < 0.03, "mean {m:?}");
    }
    // Σ = L Lᵀ of the lower triangle.
    let (l00, l10, l11) = (l[0], l[2], l[3]);
    let covariance = [l00 * l00, l00 * l10, l10 * l10 + l11 * l11];
    for (found, exact) in covariance.iter().zip([5.0 / 9.0, -4.0 / 9.0, 5.0 / 9.0]) {
        assert!((found - exact).abs() < 0.04, "covariance {covariance:?} from {l:?}");
    }
    for (found, exact) in alpha.iter().zip([4.0, 3.0, 6.0]) {
        assert!((found - exact).abs() < 0.15 * exact, "concentration {alpha:?}");
    }
}

#[test]
fn enumerated_choices_in_a_plate_are_summed_out_exactly_one_iteration_at_a_time() {
    // Twenty points from two components; each assignment `z[i]` is summed out of the model's
    // density iteration by iteration (the guide is over `mu` alone), which must equal the
    // mixture likelihood written by hand. The same holds for a plate of 10,000 points, which
    // enumerating the choices in sequence (2^10000 runs) could never finish.
    let ys = [
        -1.317, -2.973, 1.034, 2.317, -0.691, 2.236, 2.76, 2.01, -0.581, -2.508, -3.601, -2.426, -2.15, -1.92, 1.49,
        -1.987, -2.561, -1.855, 1.059, -2.349,
    ];
    let listed: Vec<String> = ys.iter().map(|y| format!("{y:?}")).collect();
    let source = format!(
        "data ys = [{}];\n\
         data many = [3.0 * sin(1.0 * i) for i in 0..10000];\n\
         gen mixture(n, points) {{\n\
             mu ~ normal(0.0, 5.0);\n\
             for i in 0..n {{\n\
                 z[i] ~ flip(0.4) via enum;\n\
                 y[i] ~ normal(if z[i] {{ -2.0 }} else {{ mu }}, 0.7);\n\
             }}\n\
         }}\n\
         gen by_hand(n, points) {{\n\
             mu ~ normal(0.0, 5.0);\n\
             for i in 0..n {{\n\
                 factor(log_mix([0.4, 0.6], [density(normal(-2.0, 0.7), points[i]), density(normal(mu, 0.7), points[i])]));\n\
             }}\n\
         }}\n\
         gen guide(m: real, log_s: real) {{ mu ~ normal(m, exp(log_s)); }}\n\
         param m: real = 0.0;\nparam log_s: real = 0.0;\n\
         print estimate(E {{ density(mixture(20, ys), {{ mu: 1.3, y: ys }}) - density(by_hand(20, ys), {{ mu: 1.3 }}) }}, samples: 1);\n\
         print estimate(E {{ density(mixture(10000, many), {{ mu: 0.5, y: many }}) }}, samples: 1);\n\
         print estimate(E {{ density(by_hand(10000, many), {{ mu: 0.5 }}) }}, samples: 1);\n\
         maximize elbo(mixture(20, ys), guide(m, log_s), {{ y: ys }})\n\
             with {{ optimizer: adam(lr: 0.05), steps: 3000, particles: 8, seed: 4, schedule: \"cosine\" }};\n\
         print m, exp(log_s);\n",
        listed.join(", ")
    );
    let scratch = Scratch::new("plates");
    let path = scratch.file("p.ppl", &source);
    let output = ppl(&["run", "--json", "--quiet", path.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let reports = reports(&output);
    let mean = |index: usize| reports[index]["mean"].as_f64().unwrap_or(f64::NAN);
    assert!(mean(0).abs() < 1e-9, "summed out {} from the hand-written mixture", mean(0));
    let (many, by_hand) = (mean(1), mean(2));
    assert!(many.is_finite() && (many - by_hand).abs() < 1e-9 * by_hand.abs(), "{many} vs {by_hand}");
    // The exact posterior of mu, on a grid.
    let normal =
        |x: f64, mu: f64, sd: f64| (-0.5 * ((x - mu) / sd).powi(2)).exp() / (sd * (2.0 * std::f64::consts::PI).sqrt());
    let grid: Vec<f64> = (0..20_000).map(|k| -10.0 + 0.001 * k as f64).collect();
    let log_posterior: Vec<f64> = grid
        .iter()
        .map(|&mu| {
            normal(mu, 0.0, 5.0).ln()
                + ys.iter().map(|&y| (0.4 * normal(y, -2.0, 0.7) + 0.6 * normal(y, mu, 0.7)).ln()).sum::<f64>()
        })
        .collect();
    let top = log_posterior.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = log_posterior.iter().map(|l| (l - top).exp()).collect();
    let total: f64 = weights.iter().sum();
    let posterior_mean = grid.iter().zip(&weights).map(|(mu, w)| mu * w).sum::<f64>() / total;
    let posterior_sd =
        (grid.iter().zip(&weights).map(|(mu, w)| (mu - posterior_mean).powi(2) * w).sum::<f64>() / total).sqrt();
    let printed = |index: usize| reports[index]["value"].as_f64().unwrap_or(f64::NAN);
    let (m, s) = (printed(4), printed(5));
    assert!((m - posterior_mean).abs() < 0.03, "m = {m}, posterior mean {posterior_mean}");
    assert!((s / posterior_sd - 1.0).abs() < 0.15, "s = {s}, posterior sd {posterior_sd}");
}

/// A network as a record parameter and the same network as separate parameters: the leaves of
/// `net` are parameters in the order of its type's fields, so they draw the same initial values
/// (a stream per parameter, by position) and train to the same bits, with either back end.
const RECORD_NET: &str = "type Net = { w: mat[2, 3], b: vec[2], scale: { s: real } };
param net: Net = { w: uniform_init(0.5), b: normal_init(0.1), scale: { s: 1 } };
param noise: real = 0.0;
gen model(n: Net, noise: real) {
    y ~ mv_normal_diag(n.w @ [1.0, 2.0, 3.0] + n.b * n.scale.s, ones(2) * exp(noise));
}
gen guide(n: Net) { }
fn objective() { elbo(model(net, noise), guide(net), { y: [1.0, -1.0] }) }
maximize objective() with { optimizer: adam(lr: 0.01), steps: 40, particles: 4, seed: 3 };
print net.w, net.scale.s, noise;
";

const SEPARATE_NET: &str = "param net_w: mat[2, 3] = uniform_init(0.5);
param net_b: vec[2] = normal_init(0.1);
param net_scale_s: real = 1;
param noise: real = 0.0;
gen model(w: mat[2, 3], b: vec[2], s: real, noise: real) {
    y ~ mv_normal_diag(w @ [1.0, 2.0, 3.0] + b * s, ones(2) * exp(noise));
}
gen guide(w: mat[2, 3]) { }
fn objective() { elbo(model(net_w, net_b, net_scale_s, noise), guide(net_w), { y: [1.0, -1.0] }) }
maximize objective() with { optimizer: adam(lr: 0.01), steps: 40, particles: 4, seed: 3 };
print net_w, net_scale_s, noise;
";

#[test]
fn a_record_parameter_trains_to_the_same_bits_as_its_leaves_declared_separately() {
    let scratch = Scratch::new("train-record-param");
    let record = scratch.file("record.ppl", RECORD_NET);
    let separate = scratch.file("separate.ppl", SEPARATE_NET);
    let run = |path: &std::path::Path, backend: &str, out: &str| {
        let out = scratch.0.join(out);
        let output = ppl(&[
            "run",
            "--json",
            "--quiet",
            "--backend",
            backend,
            "--out",
            out.to_str().expect("utf-8"),
            path.to_str().expect("utf-8"),
        ]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        (reports(&output), out)
    };
    let (jit, record_out) = run(&record, "jit", "record-jit");
    let (interpreted, _) = run(&record, "interp", "record-interp");
    let (separately, separate_out) = run(&separate, "jit", "separate");
    // The interpreter and native code agree on every bit (the times aside).
    let without_time = |reports: &[Value]| {
        reports
            .iter()
            .map(|report| {
                let mut report = report.clone();
                if let Some(object) = report.as_object_mut() {
                    object.remove("seconds");
                    object.remove("time");
                }
                report
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(without_time(&jit), without_time(&interpreted));
    // The leaves are named with dots, in the order of the type's fields.
    let params = jit[0]["params"].as_object().expect("the trained parameters");
    let names: Vec<&str> = params.keys().map(String::as_str).collect();
    assert_eq!(names, ["net.w", "net.b", "net.scale.s", "noise"]);
    let renamed = [("net.w", "net_w"), ("net.b", "net_b"), ("net.scale.s", "net_scale_s"), ("noise", "noise")];
    for (leaf, separate) in renamed {
        assert_eq!(params[leaf], separately[0]["params"][separate], "{leaf}");
    }
    // The integer initial value 1 of `net.scale.s` counts as 1.0: training moved it from there.
    assert!((param(&jit[0]["params"], "net.scale.s") - 1.0).abs() < 0.5, "{params:?}");
    assert_eq!(jit[1]["value"], separately[1]["value"]);
    assert_eq!(jit[2]["value"], separately[2]["value"]);
    // `--out` saves each vector and matrix leaf as `NAME.npy` and every leaf in `params.json`.
    for (leaf, separate) in [("net.w", "net_w"), ("net.b", "net_b")] {
        let mine = std::fs::read(record_out.join(format!("{leaf}.npy"))).expect("the leaf's .npy");
        let theirs = std::fs::read(separate_out.join(format!("{separate}.npy"))).expect("the parameter's .npy");
        assert_eq!(mine, theirs, "{leaf}");
    }
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(record_out.join("params.json")).expect("params.json"))
            .expect("JSON");
    assert_eq!(saved["net.scale.s"], params["net.scale.s"]);

    // Resuming reads the dotted names back: the saved run has taken all its steps, so the
    // parameters stay as saved.
    let output = ppl(&[
        "run",
        "--json",
        "--quiet",
        "--resume",
        record_out.to_str().expect("utf-8"),
        record.to_str().expect("utf-8"),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let resumed = reports(&output);
    assert_eq!(resumed.last().map(|report| &report["value"]), jit.last().map(|report| &report["value"]));
}

#[test]
fn wrt_names_a_record_parameter_or_one_of_its_leaves() {
    let scratch = Scratch::new("train-record-wrt");
    let program = RECORD_NET.replace(
        "maximize objective() with",
        "maximize objective() wrt [net.w, net.scale], objective() wrt [noise] with",
    );
    let path = scratch.file("p.ppl", &program);
    let output = ppl(&["run", "--json", "--quiet", path.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let groups = reports(&output);
    let params = groups[0]["params"].as_object().expect("the trained parameters");
    let names: Vec<&str> = params.keys().map(String::as_str).collect();
    // `net.b` is in no group: it is not trained (nor reported).
    assert_eq!(names, ["net.w", "net.scale.s", "noise"]);

    let whole = RECORD_NET.replace("maximize objective() with", "maximize objective() wrt [net] with");
    let path = scratch.file("whole.ppl", &whole);
    let output = ppl(&["run", "--json", "--quiet", path.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let whole = reports(&output);
    let names: Vec<&str> = whole[0]["params"].as_object().expect("params").keys().map(String::as_str).collect();
    assert_eq!(names, ["net.w", "net.b", "net.scale.s"]);
}
