//! `ppl repl` end to end, typed into a real pseudo-terminal (and once piped, without one).
//!
//! Every session gets its own `XDG_DATA_HOME`, so the history file never touches the user's,
//! and every wait has a deadline, so a hang fails the test instead of blocking the run.

#![cfg(unix)]

#[allow(dead_code)]
mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::Scratch;
use expectrl::process::unix::WaitStatus;
use expectrl::{Captures, ControlCode, Eof, Expect, Needle, Regex, Session};

/// How long any one expected output may take before the test fails.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A `ppl repl` on a pseudo-terminal, with its own data directory.
struct Repl {
    // Declared first so the process is ended before its data directory is removed.
    session: expectrl::session::OsSession,
    data: Scratch,
}

impl Repl {
    /// Starts `ppl repl` in the project's root and waits for its first prompt.
    fn start(name: &str) -> Repl {
        let data = Scratch::new(&format!("repl-{name}"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_ppl"));
        command
            .arg("repl")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("XDG_DATA_HOME", &data.0)
            // A terminal rustyline edits on (it falls back to plain reads on `dumb`), and one
            // indicatif draws its progress bar on.
            .env("TERM", "xterm")
            .env_remove("NO_COLOR");
        let mut session = Session::spawn(command).expect("ppl repl starts on a pseudo-terminal");
        // A safety net for any blocking expect; `expect` below polls with its own deadline.
        session.set_expect_timeout(Some(TIMEOUT));
        let mut repl = Repl { session, data };
        repl.expect("ppl ");
        repl.prompt();
        repl
    }

    fn history_file(&self) -> PathBuf {
        self.data.0.join("ppl").join("history")
    }

    /// Waits for `needle` in the output and consumes the output up to its end.
    ///
    /// expectrl's own `expect` spins without sleeping; this polls every few milliseconds, so
    /// parallel tests leave the CPU to the REPLs they drive.
    fn expect<N: Needle + std::fmt::Debug>(&mut self, needle: N) -> Captures {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self.session.check(&needle) {
                Ok(found) if !found.is_empty() => return found,
                Ok(_) => {}
                Err(error) => panic!("waiting for {needle:?}: {error}; the REPL printed {:?}", self.unread()),
            }
            if Instant::now() > deadline {
                panic!("no {needle:?} within {TIMEOUT:?}; the REPL printed {:?}", self.unread());
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whatever the REPL printed that no expectation consumed yet.
    fn unread(&mut self) -> String {
        match self.session.check(Regex("(?s).+")) {
            Ok(found) => String::from_utf8_lossy(found.as_bytes()).into_owned(),
            Err(error) => format!("<{error}>"),
        }
    }

    /// Waits for the primary prompt.
    fn prompt(&mut self) {
        self.expect(">> ");
    }

    /// Types `line` and Enter.
    fn line(&mut self, line: &str) {
        self.session.send(line).expect("typing into the REPL");
        self.session.send("\r").expect("typing Enter");
    }

    /// Types a complete input, waits for `output`, then for the next prompt.
    fn run(&mut self, input: &str, output: &str) {
        self.line(input);
        self.expect(output);
        self.prompt();
    }

    /// Waits for the REPL to close the terminal and exit, and returns its exit code.
    fn exit_code(&mut self) -> i32 {
        let deadline = Instant::now() + TIMEOUT;
        // The end of the output: EOF, or EIO once Linux has closed the terminal's other side.
        loop {
            match self.session.check(Eof) {
                Ok(found) if !found.is_empty() => break,
                Ok(_) => {}
                Err(expectrl::Error::Eof) => break,
                Err(expectrl::Error::IO(error)) if error.raw_os_error() == Some(5) => break,
                Err(error) => panic!("waiting for the REPL to exit: {error}"),
            }
            assert!(Instant::now() < deadline, "the REPL did not exit; it printed {:?}", self.unread());
            thread::sleep(Duration::from_millis(10));
        }
        loop {
            match self.session.get_process().status() {
                Ok(WaitStatus::Exited(_, code)) => return code,
                Ok(WaitStatus::StillAlive) => {}
                other => panic!("the REPL ended with {other:?}"),
            }
            assert!(Instant::now() < deadline, "the REPL closed its terminal but did not exit");
            thread::sleep(Duration::from_millis(10));
        }
    }
}

fn text(captures: &Captures, group: usize) -> String {
    String::from_utf8_lossy(captures.get(group).expect("the capture group matched")).into_owned()
}

#[test]
fn a_definition_continues_on_dotted_lines_until_its_brace_closes() {
    let mut repl = Repl::start("multiline");
    repl.line("gen guide(m: real) {");
    repl.expect(".. ");
    repl.line("x ~ normal(m, 1.0);");
    repl.expect(".. ");
    repl.line("}");
    repl.prompt();
    repl.line("param m: real = 0.5;");
    repl.prompt();
    repl.run("m * 2.0", "1.0 : real");
    // The generative function was defined: its traces can be drawn.
    repl.line("sample(guide(m), 1)");
    repl.expect(Regex(r"\{x: -?[0-9][0-9.e-]*\}"));
    repl.prompt();
}

#[test]
fn estimates_and_samples_print_their_reports() {
    let mut repl = Repl::start("evaluate");
    repl.line("gen guide(m: real) { x ~ normal(m, 1.0); }");
    repl.prompt();
    repl.line("param m: real = 0.5;");
    repl.prompt();

    repl.line("estimate(E { x ~ normal(0.0, 1.0); x^2 }, samples: 2000)");
    repl.expect(Regex(
        r"estimate\(E \{ x ~ normal\(0\.0, 1\.0\); x\^2 \}, samples: 2000\) = [0-9.]+ ± [0-9.e-]+ \(2000 samples\)",
    ));
    repl.prompt();

    repl.line("sample(guide(m), 2)");
    repl.expect(Regex(r"sample\(guide\(m\), 2\):\r?\n +\{x: -?[0-9][0-9.e-]*\}\r?\n +\{x: -?[0-9][0-9.e-]*\}\r?\n"));
    repl.prompt();
}

#[test]
fn an_error_leaves_the_session_usable() {
    let mut repl = Repl::start("error");
    repl.line("foo(3)");
    repl.expect("E0101");
    repl.expect("cannot find function `foo`");
    repl.prompt();
    repl.run("1 + 2", "3 : int");
}

#[test]
fn load_runs_a_files_commands_and_keeps_its_definitions() {
    let mut repl = Repl::start("load");
    repl.line(":load examples/flip.ppl");
    // Exact: -0.12 and d/dtheta = -0.1 at theta = 0.4 (100000 samples, so within ±0.003).
    repl.expect(Regex(r"estimate\(l_reinforce\(theta\), samples: 100000\) = -0\.1[12][0-9]*"));
    for _ in 0..3 {
        repl.expect(Regex(r"d/dtheta = -0\.(09|10)[0-9]*"));
    }
    repl.prompt();
    repl.run(":type l_enum(theta)", "l_enum(theta) : est");
}

#[test]
fn tab_completes_a_defined_name() {
    let mut repl = Repl::start("complete");
    repl.line("let my_constant = 41;");
    repl.prompt();
    repl.session.send("my_con").unwrap();
    repl.expect("my_con");
    repl.session.send("\t").unwrap();
    // The line is redrawn with the completed name.
    repl.expect("my_constant");
    repl.session.send(" + 1").unwrap();
    repl.expect(" + 1");
    repl.session.send("\r").unwrap();
    repl.expect("42 : int");
    repl.prompt();
}

#[test]
fn ctrl_c_stops_training_and_keeps_the_trained_parameters() {
    let mut repl = Repl::start("interrupt");
    repl.line("gen guide(m: real) { x ~ normal(m, 1.0); }");
    repl.prompt();
    repl.line("param m: real = 0.0;");
    repl.prompt();
    repl.line(
        "maximize E { let (t, lq) = sim(guide(m)); -(t.x - 3.0)^2 } with { optimizer: adam(lr: 0.01), steps: 100000000 };",
    );
    // Training has started once the progress bar counts steps; let it run a little.
    repl.expect("/100000000 steps");
    thread::sleep(Duration::from_secs(1));
    repl.session.send(ControlCode::EndOfText).unwrap();
    let report = repl.expect(Regex(r"interrupted after ([0-9]+) steps"));
    let steps: u64 = text(&report, 1).parse().unwrap();
    assert!(steps > 0 && steps < 100_000_000, "{steps} steps");
    repl.expect(Regex(r"\n +m = -?[0-9]"));
    repl.prompt();

    repl.line(":params");
    let params = repl.expect(Regex(r"\nm = (-?[0-9][0-9.e-]*)\r?\n"));
    let m: f64 = text(&params, 1).parse().unwrap();
    assert!(m != 0.0 && m.is_finite(), "training moved m towards 3, but m = {m}");
    repl.prompt();
    repl.run("1 + 2", "3 : int");
}

#[test]
fn reset_forgets_definitions_and_quit_saves_the_history() {
    let mut repl = Repl::start("reset");
    repl.line("let m = 1;");
    repl.prompt();
    repl.line("m");
    repl.expect("1 : int");
    repl.prompt();
    repl.run(":reset", "forgot every definition and parameter");
    repl.line("m");
    repl.expect("E0100");
    repl.expect("cannot find `m`");
    repl.prompt();
    repl.line(":quit");
    assert_eq!(repl.exit_code(), 0);
    let history = std::fs::read_to_string(repl.history_file()).expect("the history is written into XDG_DATA_HOME");
    for entry in ["let m = 1;", ":reset", ":quit"] {
        assert!(history.lines().any(|line| line == entry), "{entry:?} missing from the history {history:?}");
    }
}

#[test]
fn invalid_utf8_at_the_prompt_is_refused_and_the_session_goes_on() {
    let mut repl = Repl::start("utf8");
    repl.line("param m: real = 0.25;");
    repl.prompt();
    repl.session.send(b"\xff\xfe\r").expect("typing bytes");
    repl.expect("not valid UTF-8");
    repl.prompt();
    repl.run("m * 2.0", "0.5 : real");
}

/// A paste, as terminals deliver it (bracketed, since the line editor asks for that), of a
/// 100 KB line is taken in at once.
#[test]
fn a_pasted_100_kb_line_is_read_at_once() {
    let mut repl = Repl::start("paste");
    let line = format!("sum([{}])", vec!["1.0"; 20_000].join(", "));
    let mut paste = b"\x1b[200~".to_vec();
    paste.extend_from_slice(line.as_bytes());
    paste.extend_from_slice(b"\x1b[201~\r");
    repl.session.send(&paste).expect("pasting");
    repl.expect("20000.0 : real");
    repl.prompt();
}

#[test]
fn ctrl_d_at_an_empty_prompt_leaves() {
    let mut repl = Repl::start("eof");
    repl.run("1 + 2", "3 : int");
    repl.session.send(ControlCode::EndOfTransmission).unwrap();
    assert_eq!(repl.exit_code(), 0);
    let history = std::fs::read_to_string(repl.history_file()).expect("the history is written into XDG_DATA_HOME");
    assert!(history.lines().any(|line| line == "1 + 2"), "{history:?}");
}

#[test]
fn without_a_terminal_inputs_are_read_from_stdin_without_prompts() {
    let data = Scratch::new("repl-piped");
    let script = "\
gen guide(m: real) {
    x ~ normal(m, 1.0);
}
param m: real = 0.5;
let offset = 1 +
    2;
m * 2.0
offset
:params
:quit
offset + 1
";
    let (status, stdout, stderr) = piped(&data, script.as_bytes());
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(stdout, "1.0 : real\n3 : int\nm = 0.5\n", "stderr: {stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert!(!Path::new(&data.0).join("ppl").exists(), "no history without a terminal");
}

/// Runs `ppl repl` with `script` piped into it; its exit status, stdout and stderr.
fn piped(data: &Scratch, script: &[u8]) -> (std::process::ExitStatus, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ppl"))
        .arg("repl")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("XDG_DATA_HOME", &data.0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the ppl binary runs");
    child.stdin.take().unwrap().write_all(script).unwrap();
    let stdout = reader(child.stdout.take().unwrap());
    let stderr = reader(child.stderr.take().unwrap());
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`ppl repl` with piped stdin did not exit");
        }
        thread::sleep(Duration::from_millis(10));
    };
    (status, stdout.join().unwrap(), stderr.join().unwrap())
}

#[test]
fn piped_invalid_utf8_and_failing_inputs_leave_the_session_as_it_was() {
    let data = Scratch::new("repl-piped-faults");
    let mut script = b"param m: real = 0.5;\n".to_vec();
    script.extend_from_slice(b"\xff\xfe not text\n");
    script.extend_from_slice(
        b"m + 1.0\n\
          param m: real = 100.0; fn bad(t) { E { x ~ normal(t, t - 200.0); x } } print estimate(bad(m));\n\
          :params\n\
          :type bad(m)\n\
          :load\n",
    );
    let (status, stdout, stderr) = piped(&data, &script);
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(stdout, "1.5 : real\nm = 0.5\n", "stderr: {stderr}");
    assert!(stderr.contains("line 2 is not valid UTF-8"), "{stderr}");
    assert!(stderr.contains("E0700"), "the failing input's error: {stderr}");
    assert!(stderr.contains("unknown function") || stderr.contains("E0101"), "`bad` was not kept: {stderr}");
    assert!(stderr.contains("`:load` needs a file"), "{stderr}");
}

fn reader(mut stream: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    })
}

#[test]
fn an_image_is_written_to_the_out_folder_once_there_is_one() {
    let data = Scratch::new("repl-image");
    let out = data.0.join("pictures");
    let script = format!(
        "data pixels: mat[2, 4] = [[0.0, 1.0, 1.0, 0.0], [1.0, 0.5, 0.5, 1.0]];\n\
         image(\"pair\", pixels, width: 2)\n\
         :set out {}\n\
         image(\"pair\", pixels, width: 2)\n\
         :type image(\"pair\", pixels, width: 2)\n",
        out.display()
    );
    let (status, stdout, stderr) = piped(&data, script.as_bytes());
    assert!(status.success(), "{status}: {stderr}");
    let shown = "image(\"pair\", pixels, width: 2) = 2 images of 2 × 2 in a grid of 2 × 1";
    assert!(stdout.contains(&format!("{shown} (not written: `:set out DIR` writes it)\n")), "{stdout}");
    assert!(stdout.contains(&format!("{shown}, written to {}\n", out.join("pair.png").display())), "{stdout}");
    assert!(stdout.contains(" : picture\n"), "{stdout}");
    let png = std::fs::read(out.join("pair.png")).expect("the picture");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG file");
}

/// `:set precision f32` compiles the products of two matrices of what follows in f32 (and
/// trains in f32), and `:set precision f64` goes back.
#[test]
fn set_precision_chooses_the_precision_of_products_and_training() {
    let data = Scratch::new("repl-piped-matmul");
    let script = "data rows: mat[4, 3] = [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]];\n\
         param w: mat[3, 3] = uniform_init(0.5);\n\
         fn row(x: vec[3]) { E { z ~ normal(sum(w @ x), 1.0); z * z } }\n\
         :ir mean_over(rows, row, batch: 4)\n\
         :set precision f32\n\
         :ir mean_over(rows, row, batch: 4)\n\
         :set precision f16\n\
         :set precision f64\n";
    let (status, stdout, stderr) = piped(&data, script.as_bytes());
    assert!(status.success(), "{status}: {stderr}");
    let (f64_ir, rest) =
        stdout.split_once("products of two matrices and trainings in f32").expect("`:set precision f32` answers");
    assert!(f64_ir.contains("= matmul ") && !f64_ir.contains("matmul.f32"), "{f64_ir}");
    assert!(rest.contains("= matmul.f32 "), "{rest}");
    assert!(stderr.contains("error: `:set precision f32` or `:set precision f64`"), "{stderr}");
    assert!(rest.contains("products of two matrices and trainings in f64"), "{rest}");
}

/// `:ir` of an `estimate(…)` or `grad(…)` report shows the programs of the estimate it reports,
/// as `:ir` of the estimate itself does.
#[test]
fn ir_of_a_report_shows_its_estimate() {
    let data = Scratch::new("repl-piped-ir-report");
    let script = "param m: real = 0.0;\n\
         fn f(m) { E { x ~ normal(m, 1.0); x * x } }\n\
         :ir f(m)\n\
         :ir grad(f(m), samples: 10)\n\
         :ir estimate(f(m))\n";
    let (status, stdout, stderr) = piped(&data, script.as_bytes());
    assert!(status.success(), "{status}: {stderr}");
    let programs: Vec<&str> = stdout.split("fn estimate(").skip(1).collect();
    assert_eq!(programs.len(), 3, "{stdout}");
    assert!(programs.iter().all(|program| *program == programs[0]), "{stdout}");
    assert!(!stdout.contains("only estimates"), "{stdout}");
}

#[test]
fn piped_errors_quote_what_was_typed_and_set_out_writes_the_draws() {
    let data = Scratch::new("repl-piped-quote");
    let out = data.0.join("pictures");
    let script = format!(
        "gen q() {{ a ~ normal(0.0, 1.0); }}\n\
         estimate(E {{ x ~ normal(0.0, 1.0); y }})\n\
         :ir E {{ x ~ normal(0.0, 1.0); zz }}\n\
         :type 1 // a comment ends the input\n\
         :set out {}\n\
         sample(q(), 20)\n",
        out.display()
    );
    let (status, stdout, stderr) = piped(&data, script.as_bytes());
    assert!(status.success(), "{status}: {stderr}");
    // The diagnostics show the expressions as typed, never the `print …` the REPL checks.
    assert!(stderr.contains(" │ estimate(E { x ~ normal(0.0, 1.0); y })\n"), "{stderr}");
    assert!(stderr.contains(" │ E { x ~ normal(0.0, 1.0); zz }\n"), "{stderr}");
    assert!(!stderr.contains("print"), "{stderr}");
    assert!(stdout.contains("1 // a comment ends the input : int\n"), "{stdout}");
    assert!(
        stdout.contains("    … 10 more draws; each address over all 20 draws (`:set out DIR` writes them):"),
        "{stdout}"
    );
    let written = format!("wrote {} and {}", out.join("samples-1.csv").display(), out.join("samples-1.svg").display());
    assert!(stdout.contains(&written), "{stdout}");
    let csv = std::fs::read_to_string(out.join("samples-1.csv")).expect("the draws");
    assert_eq!(csv.lines().count(), 21, "{csv}");
}
