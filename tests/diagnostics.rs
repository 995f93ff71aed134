//! Golden tests of diagnostics, rustc-UI style: each `tests/diagnostics/EXXXX-name.ppl` is
//! checked and, if it checks, run; its rendered diagnostics (no colour) must equal
//! `EXXXX-name.stderr` byte for byte. Every error code has at least one case, and each case
//! produces its code.
//!
//! After an intended change of wording, regenerate the expected files with
//! `BLESS=1 cargo test --test diagnostics` and review the diff.

use std::path::{Path, PathBuf};

use ppl::diagnostics::{ColorChoice, ErrorCode};

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diagnostics");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/diagnostics exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "ppl"))
        .collect();
    cases.sort();
    cases
}

fn render(case: &Path) -> String {
    let text = std::fs::read_to_string(case).expect("readable case");
    let name = format!("tests/diagnostics/{}", case.file_name().expect("a file name").to_string_lossy());
    let analysis = ppl::check_source(&name, &text);
    let mut rendered = analysis.render_diagnostics(ColorChoice::Never);
    if !analysis.has_errors() {
        let options = ppl::run::RunOptions { resume: saved_params(case), ..Default::default() };
        let outcome = ppl::with_large_stack(|| {
            let mut session = ppl::run::Session::new(&analysis, options)?;
            session.run_commands(&mut |_| {})
        });
        if let Err(diagnostic) = outcome {
            rendered.push_str(&ppl::diagnostics::render(&diagnostic, &analysis.sources, ColorChoice::Never));
        }
    }
    rendered
}

/// The parameters a case resumes from, as `ppl run --resume` would: `EXXXX-name.params`
/// beside the case holds `name = number` or `name = [numbers]` lines.
fn saved_params(case: &Path) -> Option<ppl::run::Resume> {
    use ppl::interp::RuntimeValue;
    let text = std::fs::read_to_string(case.with_extension("params")).ok()?;
    let params = text
        .lines()
        .filter_map(|line| line.split_once(" = "))
        .map(|(name, value)| {
            let numbers: Vec<f64> =
                value.trim_matches(['[', ']']).split(',').filter_map(|x| x.trim().parse().ok()).collect();
            let value =
                if value.starts_with('[') { RuntimeValue::Vec(numbers) } else { RuntimeValue::Real(numbers[0]) };
            (name.to_string(), value)
        })
        .collect();
    Some(ppl::run::Resume { params, exact: true, ..Default::default() })
}

/// Codes no program can produce: they report bugs of the compiler itself.
const BUGS_ONLY: &[ErrorCode] = &[ErrorCode::InternalError];

#[test]
fn rendered_diagnostics_match_the_golden_files() {
    let bless = std::env::var_os("BLESS").is_some();
    let mut failures = Vec::new();
    for case in cases() {
        let actual = render(&case);
        let expected_path = case.with_extension("stderr");
        if bless {
            std::fs::write(&expected_path, &actual).expect("writable golden file");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            failures.push(format!("--- {}\n+++ actual\n{actual}", expected_path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden files differ (BLESS=1 to update):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_case_reports_the_code_in_its_name() {
    for case in cases() {
        let stem = case.file_stem().expect("a file stem").to_string_lossy().into_owned();
        let code = stem.split('-').next().expect("a code prefix");
        let rendered = render(&case);
        assert!(rendered.contains(&format!("[{code}]")), "{} does not report {code}:\n{rendered}", case.display());
    }
}

#[test]
fn every_error_code_has_a_golden_test() {
    let names: Vec<String> =
        cases().iter().map(|case| case.file_name().expect("a file name").to_string_lossy().into_owned()).collect();
    let missing: Vec<&str> = ErrorCode::ALL
        .iter()
        .filter(|code| !BUGS_ONLY.contains(code))
        .map(|code| code.as_str())
        .filter(|code| !names.iter().any(|name| name.starts_with(&format!("{code}-"))))
        .collect();
    assert!(missing.is_empty(), "error codes without a golden test: {missing:?}");
}

#[test]
fn error_codes_are_unique() {
    let mut codes: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
    codes.sort();
    let count = codes.len();
    codes.dedup();
    assert_eq!(codes.len(), count, "two error kinds share a code");
}

#[test]
fn every_error_code_is_documented() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/errors.md")).expect("docs/errors.md");
    let undocumented: Vec<&str> =
        ErrorCode::ALL.iter().map(|code| code.as_str()).filter(|code| !docs.contains(&format!("| {code} |"))).collect();
    assert!(undocumented.is_empty(), "error codes missing from docs/errors.md: {undocumented:?}");
}
