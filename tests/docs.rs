//! The transcripts in `README.md` and `docs/reference.md` are real: each is run and its output
//! compared with what the document shows, so a change of output fails the tests until the
//! documents are updated.
//!
//! # Writing a checked transcript
//!
//! A transcript is a fenced block tagged ```` ```text ```` whose first line starts with `$ `:
//!
//! ````text
//! ```text
//! $ ppl check examples/cone.ppl
//! checked examples/cone.ppl: 17 items, no errors
//! ```
//! ````
//!
//! Only such blocks are checked. A ```` ```text ```` block whose first line does not start with
//! `$ ` (a JSON line, a diagnostic shown alone) is not checked at all, so show output as a
//! transcript of the command that produces it. Shell commands that are not to be run go in
//! ```` ```sh ```` blocks. The fences may be indented (in a list item); the block's lines lose
//! the same indentation.
//!
//! **Commands.** Every line of the block that starts with `$ ` is a command; the lines after it,
//! up to the next `$ ` line or the end of the block, are what it prints. A command is one of
//!
//! - `ppl ARGS…`,
//! - `cargo run --release -- ARGS…` or `cargo run -- ARGS…`,
//!
//! and either way the test runs the `ppl` binary built for the tests with `ARGS` from the
//! repository's root. Arguments are separated by spaces; there is no shell: quotes, pipes,
//! redirections, `$`, globs and the like are refused (the test fails and says so), and so are
//! `--out` and `--write`, which would write into the repository.
//!
//! **What is compared.** The command runs with `NO_COLOR=1` (and stderr is not a terminal, so
//! there is no colour either way; `--color always` in a transcript would show escape codes and
//! fail), stdin empty, and stdout and stderr going to one pipe (`2>&1`): the output is both
//! streams in the order the command wrote them, as on a terminal. `ppl` flushes every result
//! line, so that order is always the same. Each expected line must equal its output line
//! exactly, except that trailing whitespace is ignored on both sides and for these two
//! normalisations, applied to both sides:
//!
//! - training time: in a line containing ` after N steps in T s` (`N` digits, `T` digits with an
//!   optional `.` and digits, then ` s` at the end of the line or before a space), `T` becomes
//!   `<time>`: `    finished after 5000 steps in 0.06 s` matches any time;
//! - in JSON output, a number right after `"seconds":` becomes `<time>`, as do those of a
//!   training's `"time"` (after `"preparation":`, `"gradients":`, `"gradient_passes":` and
//!   `"updates":`).
//!
//! Writing `<time>` in the document instead of a number works too. Nothing else is fuzzy: in
//! particular the progress lines that `ppl run` prints on stderr when it is not on a terminal
//! (`step 500/5000: objective … (running average), 81716 steps/s`) contain a rate that changes
//! from run to run, and on a terminal they are a bar that is cleared; so a transcript of a
//! training run passes `--quiet` (or `-q`), or covers those lines with `...`.
//!
//! **`...`** A line that is `...` (surrounding whitespace ignored) matches any number of output
//! lines, none included. Use it sparingly: everything it covers is unchecked.
//!
//! The exit code is not compared (a transcript may show a failing `ppl check`), but it is shown
//! when a transcript fails.
//!
//! **REPL transcripts.** After `$ ppl repl` or `$ ppl repl FILE…`, a line starting with `>> ` or
//! `.. ` (or that is just `>>` or `..`) is input: its first three characters, the prompt, are
//! removed and the rest is typed. Every other line is output. The inputs are piped into
//! `ppl repl`, which then prints no prompts and no banner, and the test checks the prompts
//! instead: an input's first line must show `>> ` and its continuation lines `.. `, exactly
//! where the REPL would show them (it continues while a bracket is open or a line ends in an
//! operator, `=`, `,`, `~`, `via` or `with`). The output of each input must come right after
//! it: the test types `:type /* ppl docs test: end of input */ 0` between inputs and splits the
//! output where that marker is printed, so each input's output is compared on its own (and a
//! `...` only covers lines of one input's output). Output before the first input is what
//! loading `FILE…` printed. Progress is never shown when the REPL is piped, so training needs
//! no `--quiet` there.
//!
//! When a transcript differs, the test reports the document and line, the command, the first
//! expected line that does not match and the output at that point, and everything the command
//! printed, laid out as a transcript ready to paste (check the numbers before pasting: `...`
//! lines and times are written out in full).

#![cfg(unix)]

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// How long one command may run before the transcript fails.
const TIMEOUT: Duration = Duration::from_secs(300);

/// Typed between REPL inputs; its output splits the REPL's output by input.
const BOUNDARY_INPUT: &str = ":type /* ppl docs test: end of input */ 0";
const BOUNDARY_OUTPUT: &str = "/* ppl docs test: end of input */ 0 : int";

#[test]
fn readme_transcripts_are_true() {
    check_document("README.md");
}

#[test]
fn reference_transcripts_are_true() {
    check_document("docs/reference.md");
}

fn check_document(path: &str) {
    let text = std::fs::read_to_string(Path::new(ROOT).join(path)).expect("the document is readable");
    let transcripts = transcripts(&text);
    assert!(
        !transcripts.is_empty(),
        "{path} has no transcript (a ```text block starting with a `$ ` line), so nothing in it is checked; \
         show output as transcripts (see tests/docs.rs)"
    );
    let mut failures = Vec::new();
    let mut passed = Vec::new();
    for transcript in &transcripts {
        match check(transcript) {
            Ok(()) => passed.push(format!("{path}:{}: `{}`", transcript.line, transcript.command)),
            Err(report) => failures.push(format!("{path}:{}: `{}`\n{report}", transcript.line, transcript.command)),
        }
    }
    for line in &passed {
        println!("ok {line}");
    }
    if !failures.is_empty() {
        panic!(
            "{} of the {} transcripts in {path} are not what `ppl` prints{}\n\n{}",
            failures.len(),
            transcripts.len(),
            if passed.is_empty() { String::new() } else { format!(" (true: {})", passed.join(", ")) },
            failures.join("\n\n")
        );
    }
}

/// One line of a document and its number (from 1).
#[derive(Clone, Copy, Debug)]
struct Line<'a> {
    number: usize,
    text: &'a str,
}

/// A `$ ` line and the lines after it in its block, up to the next `$ ` line.
#[derive(Debug)]
struct Transcript<'a> {
    line: usize,
    command: &'a str,
    body: Vec<Line<'a>>,
}

/// The transcripts of a Markdown document: the commands of every ```text block whose first
/// line starts with `$ `.
fn transcripts(document: &str) -> Vec<Transcript<'_>> {
    let mut found = Vec::new();
    let mut lines = document.lines().enumerate().map(|(index, text)| Line { number: index + 1, text });
    while let Some(line) = lines.next() {
        let trimmed = line.text.trim_start();
        let Some(info) = trimmed.strip_prefix("```") else { continue };
        let indent = line.text.len() - trimmed.len();
        let mut block = Vec::new();
        for line in lines.by_ref() {
            if line.text.trim_start().starts_with("```") {
                break;
            }
            block.push(Line { number: line.number, text: strip_indent(line.text, indent) });
        }
        if info.trim() != "text" || !block.first().is_some_and(|first| first.text.starts_with("$ ")) {
            continue;
        }
        for line in block {
            match line.text.strip_prefix("$ ") {
                Some(command) => {
                    found.push(Transcript { line: line.number, command: command.trim(), body: Vec::new() })
                }
                None => found.last_mut().expect("the block starts with a command").body.push(line),
            }
        }
    }
    found
}

/// `text` without up to `indent` leading spaces.
fn strip_indent(text: &str, indent: usize) -> &str {
    let spaces = text.len() - text.trim_start_matches(' ').len();
    &text[spaces.min(indent)..]
}

/// The arguments of `ppl` that a transcript's command stands for.
fn ppl_arguments(command: &str) -> Result<Vec<&str>, String> {
    if let Some(special) = command.chars().find(|c| "|&;<>()$`\\\"'*?#~".contains(*c)) {
        return Err(format!(
            "  the command contains `{special}`: transcripts are run without a shell (see tests/docs.rs)"
        ));
    }
    let words: Vec<&str> = command.split_whitespace().collect();
    let arguments = match words.as_slice() {
        ["ppl", arguments @ ..] => arguments,
        ["cargo", "run", "--release", "--", arguments @ ..] | ["cargo", "run", "--", arguments @ ..] => arguments,
        _ => {
            return Err("  not a command the test can run: write `ppl ARGS…` or `cargo run --release -- ARGS…` \
                        (or put the block in ```sh, unchecked)"
                .to_string())
        }
    };
    for argument in arguments {
        if ["--out", "--write"].iter().any(|flag| argument == flag || argument.starts_with(&format!("{flag}="))) {
            return Err(format!("  `{argument}` would write into the repository; transcripts may not use it"));
        }
    }
    Ok(arguments.to_vec())
}

/// Runs the transcript's command and compares; the error is the report of a difference.
fn check(transcript: &Transcript) -> Result<(), String> {
    let arguments = ppl_arguments(transcript.command)?;
    if arguments.first() == Some(&"repl") {
        check_repl(transcript, &arguments)
    } else {
        let ran = run_ppl(&arguments, None)?;
        let expected: Vec<Line> = transcript.body.clone();
        let actual: Vec<&str> = ran.output.lines().collect();
        match mismatch(&texts(&expected), &actual) {
            None => Ok(()),
            Some(at) => {
                let mut report = describe(&expected, &actual, at, transcript.line, "output line");
                let _ = writeln!(report, "  {}", ran.status);
                let _ = writeln!(report, "  what it printed, as a transcript:\n");
                let _ = writeln!(report, "```text\n$ {}", transcript.command);
                for line in &actual {
                    let _ = writeln!(report, "{}", line.trim_end());
                }
                report.push_str("```");
                Err(report)
            }
        }
    }
}

fn texts<'a>(lines: &[Line<'a>]) -> Vec<&'a str> {
    lines.iter().map(|line| line.text).collect()
}

/// The first difference of `expected` (document lines) and `actual`, in words.
fn describe(expected: &[Line], actual: &[&str], at: Mismatch, after_line: usize, actual_line: &str) -> String {
    let expected_text = match at.expected {
        Some(index) => format!("line {}: {}", expected[index].number, expected[index].text.trim_end()),
        None => match expected.last() {
            Some(last) => format!("nothing after line {}", last.number),
            None => format!("no output after line {after_line}"),
        },
    };
    let actual_text = match at.actual {
        Some(index) => format!("{actual_line} {}: {}", index + 1, actual[index].trim_end()),
        None => "the end of the output".to_string(),
    };
    let note = match at.expected {
        Some(index) if index > 0 && is_ellipsis(expected[index - 1].text) => {
            "\n  (this line follows `...`: it occurs nowhere in the rest of the output)"
        }
        _ => "",
    };
    format!("  expected {expected_text}\n  found    {actual_text}{note}\n")
}

/// Checks a REPL transcript: prompts where the REPL would show them, then each input's output.
fn check_repl(transcript: &Transcript, arguments: &[&str]) -> Result<(), String> {
    let script = ReplScript::parse(&transcript.body)?;
    let mut stdin = format!("{BOUNDARY_INPUT}\n");
    for input in &script.inputs {
        for line in &input.lines {
            stdin.push_str(line.text);
            stdin.push('\n');
        }
        stdin.push_str(BOUNDARY_INPUT);
        stdin.push('\n');
    }
    let ran = run_ppl(arguments, Some(&stdin))?;
    let all: Vec<&str> = ran.output.lines().collect();
    let segments: Vec<&[&str]> = all.split(|line| line.trim_end() == BOUNDARY_OUTPUT).collect();
    // What the REPL printed, laid out as the transcript it would be.
    let mut actual_transcript = format!("```text\n$ {}\n", transcript.command);
    if segments.len() == script.inputs.len() + 2 {
        let push_lines = |transcript: &mut String, lines: &[&str]| {
            for line in lines {
                let _ = writeln!(transcript, "{}", line.trim_end());
            }
        };
        push_lines(&mut actual_transcript, segments[0]);
        for (input, segment) in script.inputs.iter().zip(&segments[1..]) {
            for (index, line) in input.lines.iter().enumerate() {
                let prompt = if index == 0 { ">>" } else { ".." };
                let _ = writeln!(actual_transcript, "{}", format!("{prompt} {}", line.text).trim_end());
            }
            push_lines(&mut actual_transcript, segment);
        }
        push_lines(&mut actual_transcript, segments[segments.len() - 1]);
    } else {
        let mut boundary = 0;
        for line in &all {
            if line.trim_end() == BOUNDARY_OUTPUT {
                let _ = match boundary {
                    0 => writeln!(actual_transcript, "[the first input starts]"),
                    _ => writeln!(actual_transcript, "[input {boundary} ends]"),
                };
                boundary += 1;
            } else {
                let _ = writeln!(actual_transcript, "{}", line.trim_end());
            }
        }
    }
    actual_transcript.push_str("```");
    let fail = |what: String| {
        Err(format!("{what}  {}\n  what it printed, as a transcript:\n\n{actual_transcript}", ran.status))
    };
    if segments.len() != script.inputs.len() + 2 {
        return fail(format!(
            "  the REPL did not finish every input: {} of {} inputs ended (`[input N ends]` below marks where \
             the output of input N ends)\n",
            segments.len().saturating_sub(2),
            script.inputs.len()
        ));
    }
    // What loading the files printed, each input's output, and nothing after the last input.
    let nothing = Vec::new();
    let last_line = transcript.body.last().map_or(transcript.line, |line| line.number);
    let expected_segments = std::iter::once((&script.before, transcript.line, "before the first input".to_string()))
        .chain(script.inputs.iter().map(|input| {
            let (first, last) = (input.lines[0].number, input.lines[input.lines.len() - 1].number);
            let lines = if first == last { format!("line {first}") } else { format!("lines {first}-{last}") };
            (&input.output, last, format!("of the input on {lines}"))
        }))
        .chain(std::iter::once((&nothing, last_line, "after the last input".to_string())));
    for ((expected, after_line, label), actual) in expected_segments.zip(&segments) {
        if let Some(at) = mismatch(&texts(expected), actual) {
            let report = describe(expected, actual, at, after_line, "its line");
            return fail(format!("  in the output {label}:\n{report}"));
        }
    }
    Ok(())
}

/// A REPL transcript split into inputs and the output expected after each.
#[derive(Debug)]
struct ReplScript<'a> {
    /// Output before the first input (what loading the files printed).
    before: Vec<Line<'a>>,
    inputs: Vec<ReplInput<'a>>,
}

#[derive(Debug)]
struct ReplInput<'a> {
    /// The lines typed, prompts removed.
    lines: Vec<Line<'a>>,
    output: Vec<Line<'a>>,
}

impl<'a> ReplScript<'a> {
    /// Splits a REPL transcript's lines, checking that each prompt is the one the REPL shows.
    fn parse(body: &[Line<'a>]) -> Result<ReplScript<'a>, String> {
        let mut script = ReplScript { before: Vec::new(), inputs: Vec::new() };
        // The input typed so far, as the REPL accumulates it (`cli/repl.rs`).
        let mut pending = String::new();
        for line in body {
            let prompt = [">>", ".."].into_iter().find(|prompt| {
                line.text.trim_end() == *prompt
                    || line.text.strip_prefix(prompt).is_some_and(|rest| rest.starts_with(' '))
            });
            let Some(prompt) = prompt else {
                if !pending.is_empty() {
                    return Err(format!(
                        "  line {}: output inside an unfinished input (the REPL shows `..` and waits for more)",
                        line.number
                    ));
                }
                match script.inputs.last_mut() {
                    Some(input) => input.output.push(*line),
                    None => script.before.push(*line),
                }
                continue;
            };
            let shown = if pending.is_empty() { ">>" } else { ".." };
            if prompt != shown {
                return Err(format!(
                    "  line {}: the prompt is `{prompt}` but the REPL shows `{shown}` here ({})",
                    line.number,
                    if pending.is_empty() { "the input before is complete" } else { "the input is not complete yet" }
                ));
            }
            let text = line.text.get(3..).unwrap_or("");
            if pending.is_empty() {
                script.inputs.push(ReplInput { lines: Vec::new(), output: Vec::new() });
            }
            script.inputs.last_mut().expect("an input").lines.push(Line { number: line.number, text });
            if !pending.is_empty() {
                pending.push('\n');
            }
            pending.push_str(text);
            if pending.trim().is_empty()
                || pending.trim_start().starts_with(':')
                || !ppl::syntax::token::is_incomplete(&pending)
            {
                pending.clear();
            }
        }
        if !pending.is_empty() {
            let last = script.inputs.last().and_then(|input| input.lines.last()).map_or(0, |line| line.number);
            return Err(format!("  line {last}: the last input is unfinished (the REPL would wait for more)"));
        }
        Ok(script)
    }
}

/// What a run of `ppl` printed.
struct Ran {
    /// Stdout and stderr, in the order written.
    output: String,
    status: std::process::ExitStatus,
}

/// Runs `ppl` with `arguments` from the repository's root, stdout and stderr into one pipe.
fn run_ppl(arguments: &[&str], stdin: Option<&str>) -> Result<Ran, String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("exec \"$0\" \"$@\" 2>&1")
        .arg(env!("CARGO_BIN_EXE_ppl"))
        .args(arguments)
        .current_dir(ROOT)
        .env("NO_COLOR", "1")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|error| format!("  cannot start `ppl`: {error}"))?;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // An early exit (`:quit`) closes the pipe; what was printed still tells.
        let _ = pipe.write_all(text.as_bytes());
    }
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|error| format!("  cannot wait for `ppl`: {error}"))? {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            let partial = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
            return Err(format!("  still running after {TIMEOUT:?}; it printed:\n{partial}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let bytes = reader.join().map_err(|_| "  the output could not be read".to_string())?;
    Ok(Ran { output: String::from_utf8_lossy(&bytes).into_owned(), status })
}

/// Where two line lists first differ: an index into each, `None` for "the end".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mismatch {
    expected: Option<usize>,
    actual: Option<usize>,
}

fn is_ellipsis(line: &str) -> bool {
    line.trim() == "..."
}

/// Whether `expected` (with `...` lines) matches `actual`, after [`normalise`]; if not, the
/// first expected line that cannot be matched, and the output line at that point (or, when
/// all of `expected` matched but output is left, the first extra output line).
fn mismatch(expected: &[&str], actual: &[&str]) -> Option<Mismatch> {
    let expected: Vec<String> = expected.iter().map(|line| normalise(line)).collect();
    let actual: Vec<String> = actual.iter().map(|line| normalise(line)).collect();
    let (n, m) = (expected.len(), actual.len());
    // reach[i][j]: the first i expected lines can match the first j output lines.
    let mut reach = vec![vec![false; m + 1]; n + 1];
    reach[0][0] = true;
    for i in 0..=n {
        for j in 0..=m {
            if !reach[i][j] || i == n {
                continue;
            }
            if is_ellipsis(&expected[i]) {
                reach[i + 1][j] = true;
                if j < m {
                    reach[i][j + 1] = true;
                }
            } else if j < m && expected[i] == actual[j] {
                reach[i + 1][j + 1] = true;
            }
        }
    }
    if reach[n][m] {
        return None;
    }
    let furthest = (0..=n).rev().find(|&i| reach[i].iter().any(|&r| r)).expect("reach[0][0] holds");
    if furthest < n {
        let j = reach[furthest].iter().position(|&r| r).expect("a reachable row");
        Some(Mismatch { expected: Some(furthest), actual: (j < m).then_some(j) })
    } else {
        let j = reach[n].iter().rposition(|&r| r).expect("a reachable row");
        Some(Mismatch { expected: None, actual: Some(j) })
    }
}

/// A line as compared: trailing whitespace removed, and times replaced by `<time>`.
fn normalise(line: &str) -> String {
    let line = line.trim_end();
    let line = normalise_training_time(line).unwrap_or_else(|| line.to_string());
    normalise_json_times(&line)
}

/// `… after N steps in T s…` with `T` replaced by `<time>`, if the line has that form.
fn normalise_training_time(line: &str) -> Option<String> {
    let (head, tail) = line.split_once(" steps in ")?;
    let (before, steps) = head.rsplit_once(" after ")?;
    let (time, rest) = tail.split_once(' ')?;
    let unit_ends = rest == "s" || rest.starts_with("s ");
    let digits = |text: &str| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    let decimal = match time.split_once('.') {
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => digits(time),
    };
    (digits(steps) && decimal && unit_ends).then(|| format!("{before} after {steps} steps in <time> {rest}"))
}

/// The line with every JSON number right after a key of a time (`"seconds":`, and those of a
/// training's `"time"`) replaced by `<time>`.
fn normalise_json_times(line: &str) -> String {
    const KEYS: [&str; 5] =
        ["\"seconds\":", "\"preparation\":", "\"gradients\":", "\"gradient_passes\":", "\"updates\":"];
    let mut normalised = String::new();
    let mut rest = line;
    while let Some((at, key)) = KEYS.iter().filter_map(|key| Some((rest.find(key)?, key))).min() {
        let (before, after) = rest.split_at(at + key.len());
        normalised.push_str(before);
        let end = after.find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c))).unwrap_or(after.len());
        if end > 0 && after[..end].parse::<f64>().is_ok() {
            normalised.push_str("<time>");
            rest = &after[end..];
        } else {
            rest = after;
        }
    }
    normalised.push_str(rest);
    normalised
}

// The checker itself.

fn matches(expected: &[&str], actual: &[&str]) -> bool {
    mismatch(expected, actual).is_none()
}

#[test]
fn ellipsis_matches_any_number_of_lines_at_the_start_middle_and_end() {
    assert!(matches(&["...", "c"], &["a", "b", "c"]));
    assert!(matches(&["...", "c"], &["c"]));
    assert!(matches(&["a", "...", "d"], &["a", "b", "c", "d"]));
    assert!(matches(&["a", "...", "b"], &["a", "b"]));
    assert!(matches(&["a", "..."], &["a"]));
    assert!(matches(&["a", "    ..."], &["a", "b", "c"]));
    assert!(matches(&["..."], &[]));
    assert!(matches(&["...", "b", "...", "b"], &["b", "x", "b", "b"]));
    // `...` is a whole line, not a part of one.
    assert!(!matches(&["a..."], &["abc"]));
    assert!(!matches(&["...", "d"], &["a", "b", "c"]));
    assert!(!matches(&["a", "...", "d"], &["x", "b", "d"]));
}

#[test]
fn a_changed_missing_or_extra_line_is_a_mismatch_located_where_it_happens() {
    assert_eq!(mismatch(&["a", "b", "c"], &["a", "x", "c"]), Some(Mismatch { expected: Some(1), actual: Some(1) }));
    assert_eq!(mismatch(&["a", "b"], &["a"]), Some(Mismatch { expected: Some(1), actual: None }));
    assert_eq!(mismatch(&["a"], &["a", "b"]), Some(Mismatch { expected: None, actual: Some(1) }));
    assert_eq!(mismatch(&[], &["a"]), Some(Mismatch { expected: None, actual: Some(0) }));
    assert_eq!(mismatch(&["a", "...", "z"], &["a", "b", "c"]), Some(Mismatch { expected: Some(2), actual: Some(1) }));
    // Only trailing whitespace is ignored.
    assert!(matches(&["a  "], &["a"]));
    assert!(!matches(&[" a"], &["a"]));
    assert!(!matches(&["d/dm = 1.612 ± 0.061"], &["d/dm = 1.613 ± 0.061"]));
}

#[test]
fn training_times_and_nothing_else_are_normalised() {
    assert_eq!(normalise("    finished after 5000 steps in 0.06 s"), "    finished after 5000 steps in <time> s");
    assert_eq!(
        normalise("    converged after 12 steps in 13 s (3 skipped: non-finite)  "),
        "    converged after 12 steps in <time> s (3 skipped: non-finite)"
    );
    assert!(matches(&["    finished after 5000 steps in 0.06 s"], &["    finished after 5000 steps in 1.25 s"]));
    assert!(matches(&["    finished after 5000 steps in <time> s"], &["    finished after 5000 steps in 1.25 s"]));
    assert!(!matches(&["    finished after 5000 steps in 0.06 s"], &["    finished after 4000 steps in 0.06 s"]));
    assert!(!matches(&["    finished after 5000 steps in 0.06 s"], &["    finished after 5000 steps in 0.06 ms"]));
    for unchanged in [
        "estimate(elbo(cone(), guide(mu, log_sigma), obs), samples: 5000) = -8.064 ± 0.015 (5000 samples)",
        "step 500/5000: objective -8.225544 (running average), 81716 steps/s",
        "    finished after many steps in 0.5 s",
        "    finished after 5 steps in 0.5s",
        "    finished after 5 steps in .5 s",
        "    finished after 5 steps in 0.5 seconds",
        "    finished after 5 steps in 1. s",
        "    finished after 5 steps in 0.5.1 s",
        "    finished after 5e3 steps in 0.5 s",
    ] {
        assert_eq!(normalise(unchanged), unchanged);
    }
    assert_eq!(
        normalise(r#"{"kind":"maximize","steps":5000,"seconds":2.03e-2,"objective":{"mean":-8.1}}"#),
        r#"{"kind":"maximize","steps":5000,"seconds":<time>,"objective":{"mean":-8.1}}"#
    );
    assert_eq!(normalise(r#"{"seconds":"two","steps":3}"#), r#"{"seconds":"two","steps":3}"#);
    assert_eq!(
        normalise(
            r#"{"seconds":0.4,"time":{"preparation":0.01,"gradients":0.3,"gradient_passes":1e-3,"updates":0.05}}"#
        ),
        r#"{"seconds":<time>,"time":{"preparation":<time>,"gradients":<time>,"gradient_passes":<time>,"updates":<time>}}"#
    );
}

#[test]
fn transcripts_are_the_text_blocks_that_start_with_a_command() {
    let document = "\
intro
```text
$ ppl check a.ppl
checked a.ppl: 1 items, no errors
$ cargo run --release -- run -q a.ppl
x = 1
```
```text
{\"kind\":\"print\"}
```
```sh
$ ppl run b.ppl
```
- a list item:
  ```text
  $ ppl repl
  >> 1 + 1
  2 : int
  ```
";
    let found = transcripts(document);
    let summary: Vec<(usize, &str, Vec<&str>)> =
        found.iter().map(|transcript| (transcript.line, transcript.command, texts(&transcript.body))).collect();
    assert_eq!(
        summary,
        vec![
            (3, "ppl check a.ppl", vec!["checked a.ppl: 1 items, no errors"]),
            (5, "cargo run --release -- run -q a.ppl", vec!["x = 1"]),
            (16, "ppl repl", vec![">> 1 + 1", "2 : int"]),
        ]
    );
}

#[test]
fn only_ppl_commands_without_a_shell_are_run() {
    assert_eq!(ppl_arguments("ppl run examples/cone.ppl"), Ok(vec!["run", "examples/cone.ppl"]));
    assert_eq!(ppl_arguments("cargo run --release -- check a.ppl"), Ok(vec!["check", "a.ppl"]));
    assert_eq!(ppl_arguments("cargo run -- repl"), Ok(vec!["repl"]));
    for refused in [
        "python3 bench/table4.py",
        "cargo run --release --bin bench -- jit",
        "ppl run examples/cone.ppl | head",
        "ppl run examples/cone.ppl > out.txt",
        "NO_COLOR=1 ppl run a.ppl",
        "ppl run \"a b.ppl\"",
        "ppl run --out results/ a.ppl",
        "ppl fmt --write a.ppl",
    ] {
        assert!(ppl_arguments(refused).is_err(), "{refused}");
    }
}

#[test]
fn repl_prompts_must_be_where_the_repl_shows_them() {
    let lines = |texts: &[&'static str]| -> Vec<Line<'static>> {
        texts.iter().enumerate().map(|(index, text)| Line { number: index + 1, text }).collect()
    };
    let script = ReplScript::parse(&lines(&[
        "loaded",
        ">> gen g() {",
        "..     x ~ normal(0.0, 1.0);",
        ".. }",
        ">> 1 +",
        "..",
        ".. 2",
        "3 : int",
    ]))
    .expect("a valid transcript");
    assert_eq!(texts(&script.before), ["loaded"]);
    assert_eq!(script.inputs.len(), 2);
    assert_eq!(texts(&script.inputs[0].lines), ["gen g() {", "    x ~ normal(0.0, 1.0);", "}"]);
    assert!(script.inputs[0].output.is_empty());
    assert_eq!(texts(&script.inputs[1].lines), ["1 +", "", "2"]);
    assert_eq!(texts(&script.inputs[1].output), ["3 : int"]);
    // A continuation shown as a new input, a new input shown as a continuation, output in the
    // middle of an input, and an input left unfinished are all refused.
    assert!(ReplScript::parse(&lines(&[">> gen g() {", ">> }"])).is_err());
    assert!(ReplScript::parse(&lines(&[">> 1", ".. + 2"])).is_err());
    assert!(ReplScript::parse(&lines(&[">> f(", "oops", ".. )"])).is_err());
    assert!(ReplScript::parse(&lines(&[">> f("])).is_err());
    // A meta-command is complete on its line.
    assert_eq!(ReplScript::parse(&lines(&[">> :type (1,", ">> 2"])).expect("valid").inputs.len(), 2);
}

#[test]
fn the_checker_runs_ppl_and_sees_stdout_and_stderr_in_the_order_written() {
    let transcript = |command: &'static str, body: &[&'static str]| Transcript {
        line: 1,
        command,
        body: body.iter().enumerate().map(|(index, text)| Line { number: index + 2, text }).collect(),
    };
    const MISSING: &str = "error: cannot read `no/such/file.ppl`: No such file or directory (os error 2)";
    // A line on stderr, then one on stdout, each right after the input that printed it.
    let true_session = [">> :load no/such/file.ppl", MISSING, ">> 1 + 1", "2 : int"];
    assert_eq!(check(&transcript("ppl repl", &true_session)), Ok(()));
    let moved_output = [">> :load no/such/file.ppl", ">> 1 + 1", MISSING, "2 : int"];
    assert!(check(&transcript("ppl repl", &moved_output)).is_err());
    assert!(check(&transcript("cargo run --release -- repl", &[">> 1 + 1", "3 : int"])).is_err());
    let after_quit = check(&transcript("ppl repl", &[">> :quit", ">> 1 + 1", "2 : int"]));
    assert!(after_quit.as_ref().is_err_and(|report| report.contains("did not finish every input")), "{after_quit:?}");
    assert_eq!(check(&transcript("ppl check no/such/file.ppl", &[MISSING])), Ok(()));
    assert!(check(&transcript("ppl check no/such/file.ppl", &[])).is_err());
}
