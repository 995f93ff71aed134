//! The `ppl` command end to end: exit codes, where output goes, colour, formatting in place.

mod common;

use common::{ppl, stderr, stdout, Scratch};

const EXAMPLES: &[&str] = &["examples/cone.ppl", "examples/cone_hvi.ppl", "examples/flip.ppl", "examples/mixture.ppl"];

#[test]
fn check_accepts_every_example() {
    for example in EXAMPLES {
        let output = ppl(&["check", example]);
        assert_eq!(output.status.code(), Some(0), "{example}: {}", stderr(&output));
        assert!(stderr(&output).contains("no errors"));
    }
}

#[test]
fn check_reports_errors_on_stderr_with_exit_code_1() {
    let output = ppl(&["check", "--color", "never", "tests/diagnostics/E0300-missing-address.ppl"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let text = stderr(&output);
    assert!(text.contains("[E0300]"), "{text}");
    assert!(!text.contains('\u{1b}'), "--color never prints no escape codes");
}

#[test]
fn color_always_colours_the_diagnostics() {
    let output = ppl(&["check", "--color", "always", "tests/diagnostics/E0100-unknown-name.ppl"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains('\u{1b}'), "escape codes expected");
}

#[test]
fn a_missing_file_is_an_error_not_a_crash() {
    let output = ppl(&["check", "no/such/file.ppl"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("no/such/file.ppl"));
}

#[test]
fn fmt_check_accepts_the_formatted_examples_and_rejects_others() {
    for example in EXAMPLES.iter().chain(&["stdlib/vi.ppl"]) {
        let output = ppl(&["fmt", "--check", example]);
        assert_eq!(output.status.code(), Some(0), "{example} is not formatted: {}", stderr(&output));
    }
    let scratch = Scratch::new("fmt-check");
    let messy = scratch.file("messy.ppl", "param   theta : real=0.5 ;\n");
    let output = ppl(&["fmt", "--check", messy.to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("not formatted"));
}

#[test]
fn fmt_write_rewrites_the_file_and_keeps_comments() {
    let scratch = Scratch::new("fmt-write");
    let path = scratch.file("messy.ppl", "// keep me\nparam   theta : real=0.5 ; // and me\n");
    let output = ppl(&["fmt", "--write", path.to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let formatted = std::fs::read_to_string(&path).expect("formatted file");
    assert!(formatted.contains("// keep me") && formatted.contains("// and me"), "{formatted}");
    assert!(formatted.contains("param theta: real = 0.5;"), "{formatted}");
    let again = ppl(&["fmt", "--check", path.to_str().expect("utf-8 path")]);
    assert_eq!(again.status.code(), Some(0), "formatting is idempotent");
}

#[test]
fn fmt_refuses_a_file_with_syntax_errors_and_leaves_it_alone() {
    let scratch = Scratch::new("fmt-broken");
    let source = "param theta: real = ;\n";
    let path = scratch.file("broken.ppl", source);
    let output = ppl(&["fmt", "--write", "--color", "never", path.to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("[E0001]"));
    assert_eq!(std::fs::read_to_string(&path).expect("file still there"), source);
}

#[test]
fn help_lists_the_commands() {
    let output = ppl(&["--help"]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("check") && text.contains("fmt"), "{text}");
}

#[test]
fn run_flip_prints_the_exact_answers_for_every_estimator() {
    let output = ppl(&["run", "--json", "examples/flip.ppl"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let reports: Vec<serde_json::Value> =
        stdout(&output).lines().map(|line| serde_json::from_str(line).expect("one JSON object per line")).collect();
    assert_eq!(reports.len(), 6);
    for pair in reports.chunks(2) {
        let (estimate, grad) = (&pair[0], &pair[1]);
        assert_eq!(estimate["kind"], "estimate");
        let (mean, stderr) = (estimate["mean"].as_f64().expect("mean"), estimate["stderr"].as_f64().expect("stderr"));
        assert!((mean + 0.12).abs() <= 4.0 * stderr + 1e-9, "{estimate}");
        assert_eq!(grad["kind"], "grad");
        let theta = &grad["params"]["theta"];
        let (mean, stderr) = (theta["mean"].as_f64().expect("mean"), theta["stderr"].as_f64().expect("stderr"));
        assert!((mean + 0.1).abs() <= 4.0 * stderr + 1e-9, "{grad}");
    }
}

#[test]
fn run_json_objects_have_the_documented_fields_in_order() {
    let scratch = Scratch::new("run-json");
    let path = scratch.file(
        "p.ppl",
        "param theta: real = 0.5;\nparam mu: vec[2] = [1.0, 2.0];\ndata d = { z: 5.0 };\n\
         fn f(theta, mu) { E { x ~ normal(theta, 1.0); x + sum(mu) } }\n\
         print mu, d;\nprint estimate(f(theta, mu), samples: 10);\nprint grad(f(theta, mu), samples: 10);\n",
    );
    let output = ppl(&["run", "--json", path.to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let lines: Vec<String> = stdout(&output).lines().map(str::to_string).collect();
    assert_eq!(lines[0], r#"{"kind":"print","source":"mu","value":[1.0,2.0]}"#);
    assert_eq!(lines[1], r#"{"kind":"print","source":"d","value":{"z":5.0}}"#);
    assert!(
        lines[2].starts_with(r#"{"kind":"estimate","source":"estimate(f(theta, mu), samples: 10)","mean":"#),
        "{}",
        lines[2]
    );
    assert!(lines[2].ends_with(r#","samples":10}"#), "{}", lines[2]);
    let grad: serde_json::Value = serde_json::from_str(&lines[3]).expect("JSON");
    assert_eq!(grad["params"]["theta"]["mean"].as_f64(), Some(1.0), "d/dθ E[x + Σμ] = 1 exactly: {grad}");
    assert_eq!(grad["params"]["mu"]["mean"], serde_json::json!([1.0, 1.0]), "{grad}");
    assert!(
        lines[3].starts_with(r#"{"kind":"grad","source":"grad(f(theta, mu), samples: 10)","samples":10,"params":{"#)
    );
}

#[test]
fn run_is_reproducible_and_the_seed_changes_the_draws() {
    let run = |seed: &str| stdout(&ppl(&["run", "--json", "--seed", seed, "examples/flip.ppl"]));
    assert_eq!(run("7"), run("7"));
    assert_ne!(run("7"), run("8"));
}

#[test]
fn run_emit_ir_prints_the_three_programs_of_each_estimate() {
    let output = ppl(&["run", "--emit", "ir", "examples/flip.ppl"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    for name in ["fn estimate(", "fn estimate_jvp(", "fn estimate_jvp_reverse("] {
        assert_eq!(text.matches(name).count(), 6, "{name} once per estimate and grad:\n{text}");
    }
    assert!(text.contains("restore"), "the reverse program of `enum` reads its tape:\n{text}");
}

#[test]
fn a_run_time_error_is_a_diagnostic_with_exit_code_1() {
    let output = ppl(&["run", "--color", "never", "tests/diagnostics/E0700-negative-scale.ppl"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(text.contains("[E0700]") && text.contains("must be positive, but it is -1"), "{text}");
}

#[test]
fn every_example_runs() {
    // `cone_hvi.ppl` trains DIWHVI with the paper's protocol, about half a minute of work:
    // `bench/table4.py` runs it; here it is checked and formatted (above) but not run.
    for example in EXAMPLES.iter().filter(|example| !example.ends_with("cone_hvi.ppl")) {
        let output = ppl(&["run", "--json", example]);
        assert_eq!(output.status.code(), Some(0), "{example}: {}", stderr(&output));
        for line in stdout(&output).lines() {
            let report: serde_json::Value = serde_json::from_str(line).expect("one JSON object per line");
            assert!(report["kind"].is_string(), "{example}: {line}");
        }
    }
}

#[test]
fn results_do_not_depend_on_the_number_of_threads() {
    let run =
        |threads: &str| stdout(&ppl(&["run", "--json", "--threads", threads, "--seed", "3", "examples/mixture.ppl"]));
    let one = run("1");
    assert!(!one.is_empty());
    assert_eq!(one, run("2"));
    assert_eq!(one, run("3"));
}

/// Many chunks of samples, rounds of chunks, streamed traces and training steps large enough
/// to run on every thread: the same bits whatever the threads and the back end.
#[test]
fn chunked_statistics_and_parallel_steps_do_not_depend_on_threads_or_backend() {
    let scratch = Scratch::new("run-chunks");
    let cone = std::fs::read_to_string("examples/cone.ppl").expect("the example");
    let definitions = &cone[..cone.find("// The objectives and their gradients").expect("commands")];
    let program = format!(
        "{definitions}
print estimate(elbo(cone(), guide(mu, log_sigma), obs), samples: 5000);
print grad(iwelbo(cone(), guide(mu_iw, log_sigma_iw), obs, 5), samples: 3001);
print sample(guide(mu, log_sigma), 300);
maximize elbo(cone(), guide(mu, log_sigma), obs) with {{ optimizer: adam(lr: 0.01), steps: 4, particles: 3000 }};
print mu, log_sigma;
"
    );
    let path = scratch.file("chunks.ppl", &program);
    let run = |threads: &str, backend: &str| json_without_times(&path, threads, backend);
    let one = run("1", "jit");
    assert_eq!(one.lines().filter(|line| line.contains("\"kind\":\"trace\"")).count(), 300, "{one}");
    assert_eq!(one, run("2", "jit"));
    assert_eq!(one, run("3", "jit"));
    assert_eq!(one, run("2", "interp"));
}

#[test]
fn run_emit_clif_prints_the_native_code_and_backends_agree() {
    let output = ppl(&["run", "--emit", "clif", "examples/flip.ppl"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert_eq!(text.matches("function ").count(), 6, "one Cranelift function per estimate and grad:\n{text}");
    let run = |backend: &str| stdout(&ppl(&["run", "--json", "--backend", backend, "examples/mixture.ppl"]));
    assert_eq!(run("jit"), run("interp"), "the JIT and the interpreter print the same bits");
}

#[test]
fn indexed_choices_are_readable_inside_their_loop_and_huge_shapes_are_refused() {
    let scratch = Scratch::new("run-indexed");
    let program =
        "gen h() { for i in 0..3 { b[i] ~ flip(0.3); z[i] ~ normal(if b[i] { -2.0 } else { 2.0 }, 1.0); } }\n\
                   print sample(h(), 2);\n";
    let path = scratch.file("indexed.ppl", program);
    let output = ppl(&["run", "--json", path.to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let huge = "param t: real = 0.5;\nfn f(t) { E { let m = zeros(65536, 65537); m[1, 2] + t } }\nprint estimate(f(t), samples: 1);\n";
    let path = scratch.file("huge.ppl", huge);
    let output = ppl(&["run", "--color", "never", path.to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("[E0600]"), "{}", stderr(&output));
}

#[test]
fn int_converts_a_real_towards_zero_on_both_backends() {
    let scratch = Scratch::new("cli-int");
    let program = "let v = [10.0, 20.0, 30.0];\n\
                   print int(2.9), int(-2.9), int(7), v[int(1.5)], int(1e300);\n\
                   param t: real = 1.7;\n\
                   print grad(E { x ~ uniform(0.0, 3.0); v[int(floor(x))] * t }, samples: 4000);\n";
    let path = scratch.file("int.ppl", program);
    let jit = ppl(&["run", path.to_str().expect("utf-8")]);
    assert_eq!(jit.status.code(), Some(0), "{}", stderr(&jit));
    let text = stdout(&jit);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        &lines[..5],
        ["int(2.9) = 2", "int(-2.9) = -2", "int(7) = 7", "v[int(1.5)] = 20.0", "int(1e300) = 9223372036854775807"]
    );
    // d/dt E[v[⌊x⌋]·t] = E[v[⌊x⌋]] = 20.
    let gradient: f64 =
        lines[6].trim().trim_start_matches("d/dt = ").split(" ± ").next().and_then(|x| x.parse().ok()).expect("d/dt");
    assert!((gradient - 20.0).abs() < 0.6, "{text}");
    let interp = ppl(&["run", "--backend", "interp", path.to_str().expect("utf-8")]);
    assert_eq!(stdout(&interp), text);
}

/// Every example program, the posteriordb suite's included, passes `ppl check`.
#[test]
fn every_example_checks() {
    let mut files = Vec::new();
    for directory in ["examples", "examples/posteriordb"] {
        for entry in std::fs::read_dir(directory).expect("the examples directory") {
            let path = entry.expect("a directory entry").path();
            if path.extension().is_some_and(|extension| extension == "ppl") {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 12, "{files:?}");
    for file in files {
        let output = common::ppl(&["check", &file.to_string_lossy()]);
        assert_eq!(output.status.code(), Some(0), "{}: {}", file.display(), common::stderr(&output));
    }
}

/// A PNG's width, height and 8-bit grey pixels.
fn decode_png(path: &std::path::Path) -> (u32, u32, Vec<u8>) {
    let file = std::io::BufReader::new(std::fs::File::open(path).expect("the picture"));
    let mut reader = png::Decoder::new(file).read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a buffer size")];
    let info = reader.next_frame(&mut pixels).expect("an image");
    assert_eq!((info.color_type, info.bit_depth), (png::ColorType::Grayscale, png::BitDepth::Eight));
    pixels.truncate(info.buffer_size());
    (info.width, info.height, pixels)
}

#[test]
fn print_image_writes_a_png_with_out_and_says_how_to_without() {
    let scratch = Scratch::new("image");
    // Three images of 3 × 2 pixels: the default grid is 2 × 2, its last cell empty.
    let path = scratch.file(
        "tiles.ppl",
        "data tiles: mat[3, 6] = [[0.0, 1.0, 0.5, 0.25, 1.0, 0.0], ones(6), [-1.0, 2.0, 0.0, 0.0, 0.0, 0.0]];\n\
         print image(\"tiles\", tiles, width: 3);\nprint image(\"row\", tiles[0], width: 6);\n",
    );
    let path = path.to_str().expect("utf-8 path");
    let output = ppl(&["run", path]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "image(\"tiles\", tiles, width: 3) = 3 images of 3 × 2 in a grid of 2 × 2 (not written: give --out DIR)\n\
         image(\"row\", tiles[0], width: 6) = 1 image of 6 × 1 (not written: give --out DIR)\n"
    );
    let json = ppl(&["run", "--json", path]);
    let line: serde_json::Value = serde_json::from_str(stdout(&json).lines().next().expect("a line")).expect("JSON");
    assert_eq!(line["path"], serde_json::Value::Null);

    // A symlink planted where the picture goes is replaced, never written through.
    let out = scratch.0.join("out");
    std::fs::create_dir_all(&out).expect("a folder");
    let victim = scratch.file("victim.txt", "untouched");
    std::os::unix::fs::symlink(&victim, out.join("tiles.png")).expect("a symlink");
    let written = ppl(&["run", "--json", "--out", out.to_str().expect("utf-8 path"), path]);
    assert_eq!(written.status.code(), Some(0), "{}", stderr(&written));
    let lines: Vec<serde_json::Value> =
        stdout(&written).lines().map(|line| serde_json::from_str(line).expect("JSON")).collect();
    let tiles = out.join("tiles.png");
    assert_eq!(
        lines[0],
        serde_json::json!({
            "kind": "image", "source": "image(\"tiles\", tiles, width: 3)", "name": "tiles", "images": 3,
            "width": 3, "height": 2, "columns": 2, "rows": 2, "path": tiles.display().to_string(),
        })
    );
    assert_eq!(std::fs::read_to_string(&victim).expect("the victim"), "untouched");
    assert!(std::fs::symlink_metadata(&tiles).expect("the picture").file_type().is_file());

    // 2 columns of 3 pixels and a gap of 2 across, 2 rows of 2 and a gap down; the gaps and the
    // empty cell are mid-grey, values are clamped to [0, 1] (0 black, 1 white).
    let (width, height, pixels) = decode_png(&tiles);
    assert_eq!((width, height), (8, 6));
    let at = |x: usize, y: usize| pixels[y * 8 + x];
    assert_eq!([at(0, 0), at(1, 0), at(2, 0), at(0, 1), at(1, 1)], [0, 255, 128, 64, 255]);
    assert_eq!([at(3, 0), at(4, 1), at(0, 2), at(7, 3)], [128; 4], "gaps");
    assert_eq!([at(5, 0), at(7, 1)], [255, 255], "the second image, to the right of the first");
    assert_eq!([at(0, 4), at(1, 4), at(2, 5)], [0, 255, 0], "the third, clamped, below the first");
    assert_eq!([at(5, 4), at(7, 5)], [128, 128], "the empty cell");
    assert_eq!(decode_png(&out.join("row.png")), (6, 1, vec![0, 255, 128, 64, 255, 0]));
    // The pictures belong to the set of results `run.json` describes.
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).expect("run.json")).expect("JSON");
    let bytes = std::fs::metadata(&tiles).expect("the picture").len();
    assert_eq!(run["files"]["tiles.png"]["bytes"], bytes, "{run}");
    assert!(run["files"]["row.png"].is_object(), "{run}");

    let text = ppl(&["run", "--out", out.to_str().expect("utf-8 path"), path]);
    let expected = format!("= 3 images of 3 × 2 in a grid of 2 × 2, written to {}\n", tiles.display());
    assert!(stdout(&text).contains(&expected), "{}", stdout(&text));
}

#[test]
fn check_rejects_what_the_compiler_does_not_support_so_run_never_meets_it() {
    // Each golden E0600 program is rejected by `check`, and `run` (which checks first) stops
    // with the same diagnostic, never an internal error from lowering.
    let mut programs: Vec<_> = std::fs::read_dir("tests/diagnostics")
        .expect("tests/diagnostics")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path.file_name().and_then(|name| name.to_str()).unwrap_or("");
            name.starts_with("E0600-") && name.ends_with(".ppl")
        })
        .collect();
    programs.sort();
    assert!(programs.len() >= 9, "{programs:?}");
    for program in &programs {
        let program = program.to_str().expect("utf-8 path");
        for command in ["check", "run"] {
            let output = ppl(&[command, "--color", "never", program]);
            let text = stderr(&output);
            assert_eq!(output.status.code(), Some(1), "{command} {program}: {text}");
            assert!(text.contains("[E0600]") && !text.contains("[E0699]"), "{command} {program}: {text}");
        }
    }
}

#[test]
fn constants_that_calls_give_fix_particles_lengths_and_loops() {
    // Definitions checked without a call know no values; only the instances commands run
    // decide what is supported, and here every call gives constants.
    let scratch = Scratch::new("run-constant-arguments");
    let program = "gen model() { x ~ normal(0.0, 1.0); y ~ normal(x, 1.0); }\n\
        gen guide() { x ~ normal(0.0, 2.0); }\n\
        gen inner() { x ~ normal(0.0, 1.0); u ~ normal(x, 1.0); }\n\
        fn h(r) { E { let (t, w) = sim(normalize(posterior(model(), { y: 1.0 }), sir(2, r))); w } }\n\
        fn f(n: int) { E { let (t, w) = sim(marginal(inner(), select(x), sir(n))); w } }\n\
        fn outer(n: int) { inner2(n) }\n\
        fn inner2(k: int) { E { let v = [1.0 for i in 0..k]; sum(zeros(k)) + sum(v) } }\n\
        gen chain(n: int) { for i in 0..n { y[i] ~ normal(0.0, 1.0); } }\n\
        fn l(n: int) { E { let (t, w) = sim(chain(n)); w } }\n\
        fn g(n) { f(n) + h(guide()) + outer(n) + l(n) }\n\
        print estimate(g(3), samples: 10);\n";
    let path = scratch.file("constants.ppl", program);
    let path = path.to_str().expect("utf-8 path");
    for command in ["check", "run"] {
        let output = ppl(&[command, "--color", "never", path]);
        assert_eq!(output.status.code(), Some(0), "{command}: {}", stderr(&output));
    }
}

/// A small VAE on 80 rows of 6 numbers: estimates, gradients and trainings of minibatches (one
/// of 64 rows, which a step computes in two parts), a gradient over all rows (in two parts too),
/// and a training of one row's ELBO with 16 particles.
fn minibatch_program() -> String {
    let rows: Vec<String> = (0..80)
        .map(|i| {
            format!(
                "[{}]",
                (0..6).map(|j| format!("{:?}", ((i * 6 + j) as f64 * 0.71).sin())).collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    format!(
        "data rows: mat[80, 6] = [{}];
gen model(w: mat[6, 3]) {{ z ~ mv_normal_diag(zeros(3), ones(3)); x ~ mv_normal_diag(w @ tanh(z), ones(6)); }}
gen guide(x: vec[6], v: mat[6, 6]) {{ let h = v @ x; z ~ mv_normal_diag(h[..3], softplus(h[3..])); }}
param w: mat[6, 3] = uniform_init(0.5);
param v: mat[6, 6] = uniform_init(0.4);
fn row_elbo(x: vec[6]) {{ elbo(model(w), guide(x, v), {{ x: x }}) }}
print estimate(mean_over(rows, row_elbo, batch: 8), samples: 50);
print grad(mean_over(rows, row_elbo), samples: 1);
print grad(sum_over(rows, row_elbo, batch: 5), samples: 20);
maximize mean_over(rows, row_elbo, batch: 8) with {{ optimizer: adam(lr: 0.01), steps: 30, seed: 2 }};
print w, v;
maximize mean_over(rows, row_elbo, batch: 64) with {{ optimizer: adam(lr: 0.01), steps: 10, particles: 2 }};
print w, v;
maximize row_elbo(rows[3]) with {{ optimizer: adam(lr: 0.01), steps: 20, particles: 16, seed: 3 }};
print w, v;
",
        rows.join(", ")
    )
}

/// A minibatch, and a training step's particles of one example, run as one batched program, or
/// one by one with `--row-by-row`: the same draws, so the same numbers up to the rounding of
/// sums, through `estimate`, `grad` and training.
#[test]
fn row_by_row_runs_give_the_numbers_of_batched_runs() {
    let scratch = Scratch::new("run-row-by-row");
    let program = minibatch_program();
    let path = scratch.file("rows.ppl", &program);
    let (batched, row_by_row) = (json_numbers(&path, &[]), json_numbers(&path, &["--row-by-row"]));
    assert_eq!(batched.len(), row_by_row.len());
    assert!(batched.len() > 100, "{batched:?}");
    for (k, (a, b)) in batched.iter().zip(&row_by_row).enumerate() {
        assert!((a - b).abs() <= 1e-9 * (1.0 + a.abs()), "number {k}: batched {a}, row by row {b}");
    }
}

/// A minibatch, and one sample over all rows, computed in parts, one per thread: the same bits
/// on any number of threads and on both back ends.
#[test]
fn minibatches_in_parts_do_not_depend_on_threads_or_backend() {
    let scratch = Scratch::new("run-parts");
    let path = scratch.file("rows.ppl", minibatch_program());
    let run = |threads: &str, backend: &str| json_without_times(&path, threads, backend);
    let one = run("1", "jit");
    assert_eq!(one, run("2", "jit"));
    assert_eq!(one, run("3", "jit"));
    assert_eq!(one, run("2", "interp"));
}

/// A row that makes its part of a minibatch, or of a one-sample estimate over all rows, fail is
/// reported as the row-by-row run reports it: at the operation, in the objective, whichever
/// part it falls in.
#[test]
fn a_failing_part_of_a_minibatch_is_reported_as_row_by_row() {
    let scratch = Scratch::new("run-failing-part");
    let rows: Vec<String> =
        (0..70).map(|i| format!("[{:?}, 1.0]", if i == 50 { -1.0 } else { 0.5 + i as f64 * 0.01 })).collect();
    let program = format!(
        "data rows: mat[70, 2] = [{}];
param m: real = 0.0;
fn row_density(r: vec[2]) {{ E {{ z ~ normal(m, r[0]); z * r[1] }} }}
maximize mean_over(rows, row_density, batch: 64) with {{ optimizer: adam(lr: 0.01), steps: 5 }};
",
        rows.join(", ")
    );
    // The same row in the second part of a one-sample estimate over all rows.
    let estimate = program.replace(
        "maximize mean_over(rows, row_density, batch: 64) with { optimizer: adam(lr: 0.01), steps: 5 };",
        "print estimate(mean_over(rows, row_density), samples: 1);",
    );
    assert_ne!(estimate, program);
    for (name, program) in [("fail.ppl", &program), ("fail-estimate.ppl", &estimate)] {
        let path = scratch.file(name, program);
        let path = path.to_str().expect("a UTF-8 path");
        let (parts, row_by_row) =
            (ppl(&["run", "--color", "never", path]), ppl(&["run", "--color", "never", "--row-by-row", path]));
        assert_eq!(parts.status.code(), Some(1), "{}", stderr(&parts));
        assert!(stderr(&parts).contains("normal"), "{}", stderr(&parts));
        assert_eq!(stderr(&parts), stderr(&row_by_row));
    }
}

/// A step whose particles run as one program and fail reports what the step reports run
/// particle by particle: the failing particle's diagnostic, at its operation.
#[test]
fn a_failing_batched_step_is_reported_as_one_by_one() {
    let scratch = Scratch::new("run-failing-particles");
    let path = scratch.file(
        "fail.ppl",
        "data x: vec[3] = [0.5, -0.2, 1.0];
gen model(w: mat[3, 2], s: vec[3]) { z ~ mv_normal_diag(zeros(2), ones(2)); x ~ mv_normal_diag(w @ tanh(z), s); }
gen guide(v: mat[4, 3]) { let h = v @ x; z ~ mv_normal_diag(h[..2], softplus(h[2..])); }
param w: mat[3, 2] = uniform_init(0.5);
param s: vec[3] = [1.0, 1.0, -1.0];
param v: mat[4, 3] = uniform_init(0.4);
maximize elbo(model(w, s), guide(v), { x: x }) with { optimizer: adam(lr: 0.01), steps: 20, particles: 16 };
",
    );
    let path = path.to_str().expect("a UTF-8 path");
    let (batched, one_by_one) = (ppl(&["run", path]), ppl(&["run", "--row-by-row", path]));
    assert_eq!(batched.status.code(), Some(1));
    assert!(stderr(&batched).contains("E0700"), "{}", stderr(&batched));
    assert!(stderr(&batched).contains("must have positive elements"), "{}", stderr(&batched));
    assert_eq!(stderr(&batched), stderr(&one_by_one));
}

/// `--precision f32` computes products of two matrices in f32 and trains in f32: the IR
/// says so, both back ends give the same bits, the trained weights are f32 values, and the
/// numbers are those in f64 up to f32's rounding.
#[test]
fn products_in_f32_round_as_f32_on_both_back_ends() {
    let scratch = Scratch::new("run-matmul-f32");
    let path = scratch.file("rows.ppl", minibatch_program());
    let f32_flags = ["--precision", "f32"];
    let (double, single) = (json_numbers(&path, &[]), json_numbers(&path, &f32_flags));
    // `print w, v` after each training: the weights as the optimizer left them.
    let weights = |flags: &[&str]| {
        let output = ppl(&[&["run", "--json", "--quiet"], flags, &[path.to_str().expect("a UTF-8 path")]].concat());
        // Read with `str::parse`, which rounds correctly (serde_json's default parser need not).
        let lines = stdout(&output);
        let lines = lines.lines().filter_map(|line| line.strip_prefix(r#"{"kind":"print","source":"w","value":"#));
        let words = lines.flat_map(|value| value.split(['[', ']', ',', '}']).filter(|word| !word.is_empty()));
        let numbers: Vec<f64> = words.map(|word| word.parse().expect("a number")).collect();
        assert_eq!(numbers.len(), 3 * 18, "{}", stdout(&output));
        numbers
    };
    let is_f32 = |x: &f64| f64::from(*x as f32) == *x;
    assert!(weights(&f32_flags).iter().all(is_f32), "trained in f32, the weights are f32 values");
    assert!(!weights(&[]).iter().all(is_f32), "trained in f64, the weights are not all f32 values");
    let interpreted = json_numbers(&path, &[&f32_flags[..], &["--backend", "interp"]].concat());
    assert_eq!(single, interpreted, "the JIT and the interpreter give the same bits in f32");
    // The weights compiled code reads rounded are rounded by every rule as it moves them (Adam in
    // its pass, the others after it), and the interpreter rounds them in each product itself.
    let momentum =
        scratch.file("momentum.ppl", minibatch_program().replace("adam(lr: 0.01)", "sgd(lr: 0.01, momentum: 0.9)"));
    let (native, interpreted) = (
        json_numbers(&momentum, &f32_flags),
        json_numbers(&momentum, &[&f32_flags[..], &["--backend", "interp"]].concat()),
    );
    assert_eq!(native, interpreted, "SGD with momentum: the same bits in f32 on both back ends");
    assert_ne!(native, single, "another optimizer trains to other weights");
    assert_eq!(double.len(), single.len());
    for (k, (a, b)) in double.iter().zip(&single).enumerate() {
        assert!((a - b).abs() <= 1e-3 * (1.0 + a.abs()), "number {k}: {a} in f64, {b} in f32");
    }
    assert!(double.iter().zip(&single).filter(|(a, b)| a != b).count() > double.len() / 2);

    let ir = ppl(&[&["run", "--emit", "ir"], &f32_flags[..], &[path.to_str().expect("a UTF-8 path")]].concat());
    assert_eq!(ir.status.code(), Some(0), "{}", stderr(&ir));
    assert!(stdout(&ir).contains("= matmul.f32 "), "{}", stdout(&ir));
    let ir = ppl(&["run", "--emit", "ir", path.to_str().expect("a UTF-8 path")]);
    assert!(!stdout(&ir).contains("matmul.f32"));
}

/// What `ppl run --json --quiet --threads THREADS --backend BACKEND PATH` prints, but the lines
/// that tell how long something took.
fn json_without_times(path: &std::path::Path, threads: &str, backend: &str) -> String {
    let path = path.to_str().expect("a UTF-8 path");
    let output = ppl(&["run", "--json", "--quiet", "--threads", threads, "--backend", backend, path]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    stdout(&output).lines().filter(|line| !line.contains("\"seconds\"")).collect::<Vec<_>>().join("\n")
}

/// The numbers `ppl run --json --threads 1 FLAGS PATH` prints, in order.
fn json_numbers(path: &std::path::Path, flags: &[&str]) -> Vec<f64> {
    let output = ppl(&[&["run", "--json", "--threads", "1"], flags, &[path.to_str().expect("a UTF-8 path")]].concat());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let mut numbers = Vec::new();
    for line in stdout(&output).lines() {
        let report: serde_json::Value = serde_json::from_str(line).expect("one JSON object per line");
        collect_numbers(&report, &mut numbers);
    }
    numbers
}

/// Every number in a JSON value, in order (times excluded: they differ from run to run).
fn collect_numbers(value: &serde_json::Value, numbers: &mut Vec<f64>) {
    match value {
        serde_json::Value::Number(number) => numbers.extend(number.as_f64()),
        serde_json::Value::Array(items) => items.iter().for_each(|item| collect_numbers(item, numbers)),
        serde_json::Value::Object(fields) => fields
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "seconds" | "time"))
            .for_each(|(_, item)| collect_numbers(item, numbers)),
        _ => {}
    }
}

/// Booleans and counts observed from a data set are checked once, for the whole set, when the
/// program is compiled: the kernel of a minibatch of such rows checks no row, and one whose set
/// has an element that fails checks each row it draws (and its message names that element:
/// `tests/diagnostics/E0700-fractional-boolean-row`).
#[test]
fn observations_from_a_binary_data_set_are_checked_once() {
    let scratch = Scratch::new("run-binary-rows");
    let program = |row: &str, distribution: &str| {
        format!(
            "data rows: mat[4, 3] = [[0, 1, 1], [1, 0, 1], {row}, [1, 1, 1]];\n\
             param w: vec[3] = zeros(3);\n\
             gen m() {{ x ~ {distribution}; }}\n\
             fn row_elbo(x: vec[3]) {{ E {{ density(m(), {{ x: x }}) }} }}\n\
             print estimate(mean_over(rows, row_elbo, batch: 2), samples: 10);\n"
        )
    };
    let ir = |name: &str, row: &str, distribution: &str| {
        let path = scratch.file(name, program(row, distribution));
        let output = ppl(&["run", "--emit", "ir", path.to_str().expect("a UTF-8 path")]);
        (output.status.code(), stdout(&output))
    };
    for (distribution, message, fine, failing) in [
        ("bernoulli_logit(w)", "booleans must be 0 or 1", "[0, 0, 1]", "[0, 0.5, 1]"),
        ("bernoulli_logit(w)", "booleans must be 0 or 1", "[0, 0, 1]", "[0, 2, 1]"),
        ("poisson(exp(w))", "counts must be", "[0, 9, 4]", "[0, 2.5, 1]"),
        ("poisson(exp(w))", "counts must be", "[0, 9, 4]", "[0, 1e300, 1]"),
    ] {
        let (status, checked_once) = ir("fine.ppl", fine, distribution);
        assert_eq!(status, Some(0), "{distribution}: {checked_once}");
        assert!(checked_once.contains("subsample") && !checked_once.contains(message), "{checked_once}");
        let (status, checked_per_row) = ir("failing.ppl", failing, distribution);
        assert_eq!(status, Some(1), "{distribution} of {failing}");
        assert!(checked_per_row.contains(message), "{distribution} of {failing}: {checked_per_row}");
    }
}
