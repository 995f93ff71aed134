//! The `ppl` command end to end: exit codes, where output goes, colour, formatting in place.

mod common;

use std::process::{Command, Output};

use common::Scratch;

fn ppl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ppl"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("NO_COLOR")
        .output()
        .expect("the ppl binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn check_accepts_every_example() {
    for example in ["examples/cone.ppl", "examples/cone_hvi.ppl", "examples/flip.ppl"] {
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
    for example in ["examples/cone.ppl", "examples/cone_hvi.ppl", "examples/flip.ppl", "stdlib/vi.ppl"] {
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
