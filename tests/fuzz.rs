//! Fuzzing the front end: whatever text it is given, `ppl::check_source` must come back.
//!
//! The property, checked for every input by [`check_never_panics`]: the front end returns
//! without panicking, within [`TIME_LIMIT`]; every error it reports has a primary span inside a
//! source file (and every label lies within its file, on character boundaries); and rendering
//! the diagnostics does not panic and shows every error's code. Programs without errors pass.
//!
//! The inputs are mutations of the seed programs in `tests/fuzz/corpus/*.ppl` (the examples,
//! the standard library, one small program per syntactic form, broken and pathological
//! files): character-level edits (flip, insert, delete, duplicate), token-level edits (delete,
//! duplicate, swap, replace or repeat tokens of `ppl::syntax::token::lex`, or replace a name,
//! number or string by another, which keeps the file parseable so that the type checker sees
//! it) and splices of one corpus file into another. All randomness comes from fixed seeds, so
//! a failure reproduces.
//!
//! - `mutations_of_the_corpus_never_panic`: a fixed set of mutations of every corpus file.
//! - `time_bounded_fuzz`: stacked random mutations for `PPL_FUZZ_SECONDS` (default 5) seconds,
//!   seeded by `PPL_FUZZ_SEED`. Run it longer, e.g. nightly, with
//!   `PPL_FUZZ_SECONDS=600 cargo test --release --test fuzz time_bounded_fuzz -- --nocapture`
//!   (and a new `PPL_FUZZ_SEED=<n>` each night to explore new inputs).
//! - `cli_exit_codes_on_mutated_inputs`, `cli_reports_unreadable_files`: the `ppl` binary exits
//!   with 0 or 1, never with a crash, and says why on stderr.
//!
//! A failing input is saved to `target/fuzz-failures/<hash>.ppl`; reproduce it with
//! `ppl check target/fuzz-failures/<hash>.ppl`, and once it is fixed add it (shortened) to the
//! corpus as a `pathological_*` regression seed, as the earlier hangs and crashes are.

use std::any::Any;
use std::fmt;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;

use common::Scratch;
use ppl::diagnostics::{ColorChoice, Diagnostic, ErrorCode, Label, SourceMap};
use ppl::syntax::token::{lex, Token};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How long the front end may take on one input before it counts as a hang. Every corpus
/// file takes well under 0.1 s in a debug build, so this leaves room for a loaded CI machine.
const TIME_LIMIT: Duration = Duration::from_secs(2);

/// Mutated inputs are cut to this size: larger than any corpus file, small enough to keep
/// every check in milliseconds.
const MAX_INPUT_LEN: usize = 32 * 1024;

/// Mutated versions of each corpus file in `mutations_of_the_corpus_never_panic`: a check takes
/// ~2.5 ms in a debug build, but 10–40 ms for the deeply nested and long `pathological_*` files.
const MUTATIONS_PER_FILE: usize = 60;
const MUTATIONS_PER_PATHOLOGICAL_FILE: usize = 10;

/// `time_bounded_fuzz` settings when the environment does not give them.
const DEFAULT_FUZZ_SECONDS: f64 = 5.0;
const DEFAULT_FUZZ_SEED: u64 = 0x5EED_F022;

/// Mutated files run through the real binary in `cli_exit_codes_on_mutated_inputs`.
const CLI_INPUTS: usize = 30;

/// The name the fuzzed file has in diagnostics.
const FILE_NAME: &str = "fuzz.ppl";

// ---------------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------------

/// Every corpus file as it is, then 60 mutated versions of each (10 of each `pathological_*`
/// file), each made by 1–3 stacked mutations from a seed derived from the file's name (so
/// adding a file changes no other file's inputs). With the 50 files of today's corpus: 50 +
/// 1,850 inputs, ~6 s in a debug build on 2 cores with the other tests running alongside.
#[test]
fn mutations_of_the_corpus_never_panic() {
    let corpus = corpus();
    let dictionary = Dictionary::from_corpus(&corpus);
    for seed in &corpus {
        check_never_panics(&seed.text);
    }
    let mut stats = Stats::new();
    let mut failures = Vec::new();
    'files: for seed in &corpus {
        let mut mutator = Mutator::new(fnv1a(seed.name.as_bytes()), &corpus, &dictionary);
        let pathological = seed.name.starts_with("pathological_");
        let mutations = if pathological { MUTATIONS_PER_PATHOLOGICAL_FILE } else { MUTATIONS_PER_FILE };
        for number in 1..=mutations {
            let count = mutator.rng.random_range(1..=3);
            let (input, applied) = mutator.mutate_repeatedly(&seed.text, count);
            match check_front_end(&input) {
                Ok(outcome) => stats.record(outcome),
                Err(failure) => {
                    let saved = save_failure(&input);
                    failures.push(format!(
                        "{} mutation #{number} ({applied:?}): {failure}\n    saved to {}",
                        seed.name,
                        saved.display()
                    ));
                    // A hung check goes on using a core, which would make later timings meaningless.
                    if matches!(failure, Failure::Hang) {
                        break 'files;
                    }
                    // One failure per file is enough to investigate; the rest are likely the same bug.
                    break;
                }
            }
        }
    }
    eprintln!("mutations_of_the_corpus_never_panic: {stats}");
    assert!(failures.is_empty(), "the front end failed on {} inputs:\n{}", failures.len(), failures.join("\n"));
}

/// A coverage-free random fuzzer: each input is a random corpus file (or, half the time after
/// an input without errors, that input again, so that it can drift further from the seeds
/// while staying valid enough to reach the checker) with 1–8 stacked mutations. It runs for
/// `PPL_FUZZ_SECONDS` seconds (default 5) from seed `PPL_FUZZ_SEED` (default fixed); the n-th
/// input depends only on the seed, so a failure reproduces with the same seed and a long
/// enough run. Run it longer with
/// `PPL_FUZZ_SECONDS=600 cargo test --release --test fuzz time_bounded_fuzz -- --nocapture`.
#[test]
fn time_bounded_fuzz() {
    let seconds = env_or("PPL_FUZZ_SECONDS", DEFAULT_FUZZ_SECONDS);
    let seed = env_or("PPL_FUZZ_SEED", DEFAULT_FUZZ_SEED);
    let corpus = corpus();
    let dictionary = Dictionary::from_corpus(&corpus);
    let mut mutator = Mutator::new(seed, &corpus, &dictionary);
    // A stack overflow aborts the process before any test can report it; the input being
    // checked is then left behind in this file.
    let in_flight = InFlight::new("time_bounded_fuzz");
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut stats = Stats::new();
    let mut previous_clean: Option<String> = None;
    while Instant::now() < deadline {
        let base = match previous_clean.take() {
            Some(clean) if mutator.rng.random_bool(0.5) => clean,
            _ => corpus.choose(&mut mutator.rng).expect("a non-empty corpus").text.clone(),
        };
        let count = mutator.rng.random_range(1..=8);
        let (input, applied) = mutator.mutate_repeatedly(&base, count);
        in_flight.record(&input);
        match check_front_end(&input) {
            Ok(outcome) => {
                if outcome == Outcome::Clean {
                    previous_clean = Some(input);
                }
                stats.record(outcome);
            }
            Err(failure) => {
                let saved = save_failure(&input);
                panic!(
                    "the front end failed on input #{} of seed {seed} ({applied:?}): {failure}\n\
                     saved to {}; rerun with PPL_FUZZ_SEED={seed}",
                    stats.inputs + 1,
                    saved.display()
                );
            }
        }
    }
    eprintln!("time_bounded_fuzz (seed {seed}, {seconds} s): {stats}");
}

/// Mutated files through the real `ppl check`: the exit code is 0 or 1 (never a crash),
/// stdout stays empty, and a failure is explained on stderr in the rendered-diagnostic style
/// (`[E0001] Error: …` blocks and a `error: could not compile: …` summary).
#[test]
fn cli_exit_codes_on_mutated_inputs() {
    let corpus = corpus();
    let dictionary = Dictionary::from_corpus(&corpus);
    let mut mutator = Mutator::new(0xC11, &corpus, &dictionary);
    let scratch = Scratch::new("cli-mutations");
    let mut exit_codes = [0usize; 2];
    for number in 0..CLI_INPUTS {
        // Spread over the corpus so that every kind of seed program reaches the binary.
        let original = &corpus[number * corpus.len() / CLI_INPUTS];
        let count = mutator.rng.random_range(1..=2);
        let (input, applied) = mutator.mutate_repeatedly(&original.text, count);
        let path = scratch.file(&format!("mutated-{number}.ppl"), input.as_bytes());
        let run = run_ppl(&scratch, &["check", "--color", "never", path.to_str().expect("a UTF-8 temp path")]);
        let context = format!("{} mutated by {applied:?}, kept at {}:\n{}", original.name, path.display(), run.stderr);
        assert!(run.stdout.is_empty(), "`ppl check` printed to stdout: {context}");
        match run.status.code() {
            Some(0) => {
                assert!(run.stderr.contains("no errors"), "exit 0 without the summary line: {context}");
                exit_codes[0] += 1;
            }
            Some(1) => {
                assert!(run.stderr.contains("] Error: "), "exit 1 without a rendered diagnostic: {context}");
                assert!(run.stderr.contains("error: could not compile: "), "exit 1 without the summary: {context}");
                exit_codes[1] += 1;
            }
            _ => panic!("`ppl check` ended with {} (101 is a panic): {context}", run.status),
        }
        std::fs::remove_file(&path).expect("a removable temp file");
    }
    eprintln!("cli_exit_codes_on_mutated_inputs: {} exited 0, {} exited 1", exit_codes[0], exit_codes[1]);
}

/// Files `ppl check` cannot read are a one-line error naming the file, with exit code 1.
#[test]
fn cli_reports_unreadable_files() {
    let scratch = Scratch::new("cli-unreadable");

    let missing = run_ppl(&scratch, &["check", "does/not/exist.ppl"]);
    assert_eq!(missing.status.code(), Some(1), "a missing file: {}", missing.stderr);
    assert!(missing.stderr.contains("does/not/exist.ppl"), "the message names the file: {}", missing.stderr);

    // `&str` cannot hold such bytes, so the binary is the only place where they can arrive.
    let invalid = scratch.file("latin1.ppl", b"// caf\xe9 in Latin-1\nlet x = 1.0;\xff\xfe\n");
    let not_utf8 = run_ppl(&scratch, &["check", invalid.to_str().expect("a UTF-8 temp path")]);
    assert_eq!(not_utf8.status.code(), Some(1), "a file that is not UTF-8: {}", not_utf8.stderr);
    assert!(not_utf8.stderr.contains("latin1.ppl"), "the message names the file: {}", not_utf8.stderr);
    assert!(not_utf8.stderr.to_lowercase().contains("utf-8"), "the message says why: {}", not_utf8.stderr);

    let directory = run_ppl(&scratch, &["check", scratch.0.to_str().expect("a UTF-8 temp path")]);
    assert_eq!(directory.status.code(), Some(1), "a directory: {}", directory.stderr);

    for run in [&missing, &not_utf8, &directory] {
        assert!(run.stdout.is_empty(), "nothing on stdout: {}", run.stdout);
        assert!(!run.stderr.contains("panicked"), "no panic: {}", run.stderr);
    }
}

// ---------------------------------------------------------------------------------------------
// The property.
// ---------------------------------------------------------------------------------------------

/// Checks `text` with the front end and panics unless it comes back in time with
/// well-formed diagnostics (see the module documentation). The input is saved first, so that
/// the panic message can say where to find it.
fn check_never_panics(text: &str) {
    if let Err(failure) = check_front_end(text) {
        let saved = save_failure(text);
        let excerpt: String = text.chars().take(2000).collect();
        panic!("{failure}\nsaved to {}\n--- input (first 2000 characters) ---\n{excerpt}", saved.display());
    }
}

/// What the front end made of an input that it handled correctly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Clean,
    /// Lexical or syntax errors: the type checker did not run.
    SyntaxErrors,
    /// The input parsed, and the type checker found errors.
    CheckErrors,
}

/// How the front end failed on an input.
#[derive(Debug)]
enum Failure {
    /// It panicked, with this message.
    Panic(String),
    /// It gave no answer within [`TIME_LIMIT`].
    Hang,
    /// Its diagnostics are wrong in this way.
    BadDiagnostic(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Panic(message) => write!(f, "panicked: {message}"),
            Failure::Hang => write!(f, "hangs: no answer within {TIME_LIMIT:?}"),
            Failure::BadDiagnostic(problem) => f.write_str(problem),
        }
    }
}

/// Runs the front end on `text` and says what went wrong, if anything.
///
/// The work runs on its own thread so that a hang can be reported instead of blocking the
/// test forever (the stuck thread is abandoned; the test fails anyway). Its stack is that of
/// a main thread, where the `ppl` binary drops its `Analysis`.
fn check_front_end(text: &str) -> Result<Outcome, Failure> {
    let (sender, receiver) = mpsc::channel();
    let input = text.to_owned();
    let worker = std::thread::Builder::new()
        .name("ppl-fuzz-check".to_owned())
        .stack_size(8 << 20)
        .spawn(move || {
            let result = std::panic::catch_unwind(|| analyse_and_verify(&input));
            // The receiver is gone only if the caller gave up waiting: nobody is left to tell.
            let _ = sender.send(result);
        })
        .expect("a thread for the check");
    let result = match receiver.recv_timeout(TIME_LIMIT) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => return Err(Failure::Hang),
        Err(mpsc::RecvTimeoutError::Disconnected) => unreachable!("the worker sends before it ends, or unwinds"),
    };
    let _ = worker.join();
    match result {
        Err(payload) => Err(Failure::Panic(panic_message(payload.as_ref()))),
        Ok(verdict) => verdict.map_err(Failure::BadDiagnostic),
    }
}

/// The front end on one input, then the checks on its diagnostics.
fn analyse_and_verify(text: &str) -> Result<Outcome, String> {
    let analysis = ppl::check_source(FILE_NAME, text);
    // Warnings are rendered too, so rendering is exercised even for error-free programs.
    let rendered = analysis.render_diagnostics(ColorChoice::Never);
    if !analysis.has_errors() {
        return Ok(Outcome::Clean);
    }
    let mut outcome = Outcome::CheckErrors;
    for diagnostic in analysis.diagnostics.iter().filter(|d| d.is_error()) {
        if is_syntax_error(diagnostic.code) {
            outcome = Outcome::SyntaxErrors;
        }
        let code = format!("[{}]", diagnostic.code.as_str());
        let primary = diagnostic.primary.as_ref().ok_or_else(|| describe(diagnostic, "has no primary span"))?;
        verify_label(&analysis.sources, diagnostic, primary)?;
        for label in &diagnostic.secondary {
            verify_label(&analysis.sources, diagnostic, label)?;
        }
        if !rendered.contains(&code) {
            return Err(describe(diagnostic, &format!("is missing from the rendered output:\n{rendered}")));
        }
    }
    Ok(outcome)
}

/// Lexical and syntax errors have the codes E0001–E0099 (see `docs/errors.md`).
fn is_syntax_error(code: ErrorCode) -> bool {
    code.as_str() < "E0100"
}

/// A label must point into one file of the source map: not past its end (where ariadne could
/// only guess) and not into the middle of a character (where the snippet cannot be shown).
fn verify_label(sources: &SourceMap, diagnostic: &Diagnostic, label: &Label) -> Result<(), String> {
    let span = label.span;
    let located =
        |problem: &str| describe(diagnostic, &format!("has a label at {}..{} that {problem}", span.start, span.end));
    if span.start > span.end {
        return Err(located("ends before it starts"));
    }
    let (file, range) = sources.locate(span).ok_or_else(|| located("lies in no source file"))?;
    let file_end = file.base as usize + file.text.len();
    if span.end as usize > file_end {
        return Err(located(&format!("reaches past the end of `{}` ({file_end})", file.name)));
    }
    if !file.text.is_char_boundary(range.start) || !file.text.is_char_boundary(range.end) {
        return Err(located(&format!("splits a character of `{}`", file.name)));
    }
    Ok(())
}

fn describe(diagnostic: &Diagnostic, problem: &str) -> String {
    format!("error [{}] \"{}\" {problem}", diagnostic.code.as_str(), diagnostic.message)
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

/// How many inputs a fuzz run checked, and how many of them the front end accepted.
struct Stats {
    inputs: usize,
    clean: usize,
    syntax_errors: usize,
    started: Instant,
}

impl Stats {
    fn new() -> Self {
        Stats { inputs: 0, clean: 0, syntax_errors: 0, started: Instant::now() }
    }

    fn record(&mut self, outcome: Outcome) {
        self.inputs += 1;
        self.clean += usize::from(outcome == Outcome::Clean);
        self.syntax_errors += usize::from(outcome == Outcome::SyntaxErrors);
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Stats { inputs, clean, syntax_errors, started } = self;
        let checked = inputs - syntax_errors;
        write!(
            f,
            "{inputs} inputs in {:.1?}: {checked} reached the type checker, {clean} without errors",
            started.elapsed()
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The corpus.
// ---------------------------------------------------------------------------------------------

/// One seed input: a corpus file's name and text.
struct Seed {
    name: String,
    text: String,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus")
}

/// The `.ppl` files of the corpus folder, by name.
fn corpus() -> Vec<Seed> {
    let corpus = read_ppl_files(&corpus_dir());
    assert!(corpus.len() >= 20, "the fuzz corpus at {} is missing", corpus_dir().display());
    corpus
}

fn read_ppl_files(dir: &Path) -> Vec<Seed> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()))
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "ppl"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| Seed {
            name: path.file_name().expect("a file name").to_string_lossy().into_owned(),
            text: std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display())),
        })
        .collect()
}

/// Words to put in place of tokens: every keyword and punctuation spelling, identifier,
/// number and string of the corpus, plus names and numbers at the edges of what is valid.
struct Dictionary {
    keywords_and_punctuation: Vec<&'static str>,
    identifiers: Vec<String>,
    numbers: Vec<String>,
    strings: Vec<String>,
}

/// Identifiers that the checker treats specially, in case the corpus misses some.
const EXTRA_IDENTIFIERS: &str = "_ elbo iwelbo sim density marginal select normalize posterior sir estimate grad \
     sample load detach est vec mat real int bool reparam reinforce baseline enum mvd implicit optimizer steps \
     particles seed lr pi inf";

/// Numbers at the edges: zero, the `i64` limits and just past them, reals that overflow or
/// underflow, huge shapes and indices.
const EXTRA_NUMBERS: &str = "0 1 2 0.0 00 0e0 1.5 2.5E+4 1e308 1e309 1e-400 4294967296 9223372036854775807 \
     9223372036854775808 18446744073709551616";

impl Dictionary {
    fn from_corpus(corpus: &[Seed]) -> Self {
        let mut dictionary = Dictionary {
            keywords_and_punctuation: Vec::new(),
            identifiers: EXTRA_IDENTIFIERS.split_whitespace().map(str::to_owned).collect(),
            numbers: EXTRA_NUMBERS.split_whitespace().map(str::to_owned).collect(),
            strings: vec!["\"\"".to_owned(), "\"\\\"\"".to_owned()],
        };
        for seed in corpus {
            for (token, _) in lex(&seed.text).tokens {
                match token {
                    Token::Ident(word) => dictionary.identifiers.push(word.to_owned()),
                    Token::Int(word) | Token::Real(word) => dictionary.numbers.push(word.to_owned()),
                    Token::Str(word) => dictionary.strings.push(word.to_owned()),
                    other if !other.punctuation().is_empty() => {
                        dictionary.keywords_and_punctuation.push(other.punctuation())
                    }
                    _ => {}
                }
            }
        }
        // Long words (the pathological identifier) would only make every mutation slow.
        dictionary.identifiers.retain(|word| word.len() <= 64);
        for words in [&mut dictionary.identifiers, &mut dictionary.numbers, &mut dictionary.strings] {
            words.sort();
            words.dedup();
        }
        dictionary.keywords_and_punctuation.sort_unstable();
        dictionary.keywords_and_punctuation.dedup();
        dictionary
    }

    /// A random word, each kind equally likely so that rare punctuation is not drowned out.
    fn random_word(&self, rng: &mut ChaCha8Rng) -> &str {
        match rng.random_range(0..7) {
            0..=2 => self.random_keyword_or_punctuation(rng),
            3 | 4 => self.random_identifier(rng),
            5 => self.numbers.choose(rng).map_or("1", String::as_str),
            _ => self.strings.choose(rng).map_or("\"\"", String::as_str),
        }
    }

    /// A random word of the same kind as `token` (any word for punctuation).
    fn random_word_like(&self, token: Token<'_>, rng: &mut ChaCha8Rng) -> &str {
        match token {
            Token::Ident(_) => self.random_identifier(rng),
            Token::Int(_) | Token::Real(_) => self.numbers.choose(rng).map_or("1", String::as_str),
            Token::Str(_) => self.strings.choose(rng).map_or("\"\"", String::as_str),
            _ => self.random_word(rng),
        }
    }

    fn random_keyword_or_punctuation(&self, rng: &mut ChaCha8Rng) -> &str {
        self.keywords_and_punctuation.choose(rng).copied().unwrap_or(";")
    }

    fn random_identifier(&self, rng: &mut ChaCha8Rng) -> &str {
        self.identifiers.choose(rng).map_or("x", String::as_str)
    }
}

// ---------------------------------------------------------------------------------------------
// Mutations. They work on character boundaries, so every mutated input is valid UTF-8.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Mutation {
    // Character level: splits and merges tokens, and smuggles in odd characters.
    FlipChar,
    InsertChars,
    DeleteChars,
    DuplicateChars,
    // Token level: keeps the words of the language but breaks the grammar, names or types.
    DeleteToken,
    DuplicateToken,
    SwapTokens,
    ReplaceToken,
    ReplaceWord,
    RepeatTokens,
    // A piece of another corpus file, inserted or grafted on.
    Splice,
}

/// The mutations and how often each is picked. Replacing a word (name, number, string) by
/// another is the most frequent because it keeps the program parseable, and the type checker
/// only runs on files without syntax errors.
const MUTATIONS: [(Mutation, u32); 11] = [
    (Mutation::FlipChar, 2),
    (Mutation::InsertChars, 2),
    (Mutation::DeleteChars, 2),
    (Mutation::DuplicateChars, 2),
    (Mutation::DeleteToken, 2),
    (Mutation::DuplicateToken, 2),
    (Mutation::SwapTokens, 2),
    (Mutation::ReplaceToken, 2),
    (Mutation::ReplaceWord, 8),
    (Mutation::RepeatTokens, 2),
    (Mutation::Splice, 2),
];

/// Characters that mean something to the lexer or that it must reject gracefully: NUL,
/// line breaks, quotes and escapes, comment and bracket characters, operators, characters
/// outside the language (`#`, accented and Greek letters, a zero-width space, a combining
/// accent, a byte-order mark, a Unicode line separator, an emoji, the last code point).
const INTERESTING_CHARS: &str =
    "\0\n\r\t \"\\/*()[]{},;:.~-+^@=<>!&|_#09eEx\u{e9}\u{3c0}\u{200b}\u{301}\u{feff}\u{2028}\u{1f3b2}\u{10ffff}";

struct Mutator<'c> {
    rng: ChaCha8Rng,
    corpus: &'c [Seed],
    dictionary: &'c Dictionary,
}

impl<'c> Mutator<'c> {
    fn new(seed: u64, corpus: &'c [Seed], dictionary: &'c Dictionary) -> Self {
        Mutator { rng: ChaCha8Rng::seed_from_u64(seed), corpus, dictionary }
    }

    /// Applies `count` random mutations one after the other; returns the result and the list
    /// of mutations, to tell in a failure report how the input came about.
    fn mutate_repeatedly(&mut self, text: &str, count: usize) -> (String, Vec<Mutation>) {
        let mut text = text.to_owned();
        let mut applied = Vec::with_capacity(count);
        for _ in 0..count {
            let (mutation, _) = *MUTATIONS.choose_weighted(&mut self.rng, |(_, weight)| *weight).expect("mutations");
            text = self.apply(mutation, &text);
            truncate_at_char_boundary(&mut text, MAX_INPUT_LEN);
            applied.push(mutation);
        }
        (text, applied)
    }

    fn apply(&mut self, mutation: Mutation, text: &str) -> String {
        match mutation {
            Mutation::FlipChar => self.flip_char(text),
            Mutation::InsertChars => self.insert_chars(text),
            Mutation::DeleteChars => self.delete_chars(text),
            Mutation::DuplicateChars => self.duplicate_chars(text),
            Mutation::DeleteToken => self.delete_token(text),
            Mutation::DuplicateToken => self.duplicate_token(text),
            Mutation::SwapTokens => self.swap_tokens(text),
            Mutation::ReplaceToken => self.replace_token(text),
            Mutation::ReplaceWord => self.replace_word(text),
            Mutation::RepeatTokens => self.repeat_tokens(text),
            Mutation::Splice => self.splice(text),
        }
    }

    /// Replaces one character by a neighbour of its code point (one bit flipped, mostly in
    /// the low bits that turn ASCII into other ASCII) or by a random character.
    fn flip_char(&mut self, text: &str) -> String {
        let range = self.random_char_range(text, 1);
        let Some(old) = text[range.clone()].chars().next() else { return self.insert_chars(text) };
        let bit = if self.rng.random_bool(0.8) { self.rng.random_range(0..7) } else { self.rng.random_range(7..21) };
        let new = char::from_u32(old as u32 ^ (1 << bit)).unwrap_or_else(|| self.random_char());
        replace_range(text, range, &new.to_string())
    }

    fn insert_chars(&mut self, text: &str) -> String {
        let at = self.random_boundary(text);
        let count = self.rng.random_range(1..=8);
        let inserted: String = (0..count).map(|_| self.random_char()).collect();
        replace_range(text, at..at, &inserted)
    }

    fn delete_chars(&mut self, text: &str) -> String {
        let max = *[1, 4, 16, 64].choose(&mut self.rng).expect("lengths");
        let range = self.random_char_range(text, max);
        replace_range(text, range, "")
    }

    fn duplicate_chars(&mut self, text: &str) -> String {
        let range = self.random_char_range(text, 32);
        let copy = text[range].to_owned();
        let at = self.random_boundary(text);
        replace_range(text, at..at, &copy)
    }

    fn delete_token(&mut self, text: &str) -> String {
        match self.random_token(text) {
            Some(token) => replace_range(text, token, ""),
            None => self.insert_chars(text),
        }
    }

    /// Repeats a token, sometimes glued to the original (`==` from `=`, `aa` from `a`).
    fn duplicate_token(&mut self, text: &str) -> String {
        let Some(token) = self.random_token(text) else { return self.insert_chars(text) };
        let separator = if self.rng.random_bool(0.7) { " " } else { "" };
        let copy = format!("{separator}{}", &text[token.clone()]);
        replace_range(text, token.end..token.end, &copy)
    }

    fn swap_tokens(&mut self, text: &str) -> String {
        let tokens = token_ranges(text);
        if tokens.len() < 2 {
            return self.delete_chars(text);
        }
        let first = self.rng.random_range(0..tokens.len() - 1);
        // Mostly neighbours (`x ~` to `~ x`), sometimes far apart.
        let second = if self.rng.random_bool(0.5) { first + 1 } else { self.rng.random_range(first + 1..tokens.len()) };
        let (a, b) = (tokens[first].clone(), tokens[second].clone());
        format!("{}{}{}{}{}", &text[..a.start], &text[b.clone()], &text[a.end..b.start], &text[a], &text[b.end..])
    }

    fn replace_token(&mut self, text: &str) -> String {
        let word = self.dictionary.random_word(&mut self.rng).to_owned();
        match self.random_token(text) {
            Some(token) => replace_range(text, token, &word),
            None => word,
        }
    }

    /// Replaces a name by a name, a number by a number or a string by a string: the result
    /// still parses, so it reaches the type checker (which only sees syntactically valid files).
    fn replace_word(&mut self, text: &str) -> String {
        let words: Vec<(Token<'_>, Range<usize>)> = lex(text)
            .tokens
            .into_iter()
            .filter(|(token, _)| matches!(token, Token::Ident(_) | Token::Int(_) | Token::Real(_) | Token::Str(_)))
            .map(|(token, span)| (token, span.range()))
            .collect();
        let Some((token, range)) = words.choose(&mut self.rng).cloned() else { return self.replace_token(text) };
        let word = self.dictionary.random_word_like(token, &mut self.rng).to_owned();
        replace_range(text, range, &word)
    }

    /// Repeats a run of up to four tokens up to 64 times: long operator chains, long argument
    /// lists, many statements, deep nesting.
    fn repeat_tokens(&mut self, text: &str) -> String {
        let tokens = token_ranges(text);
        if tokens.is_empty() {
            return self.insert_chars(text);
        }
        let first = self.rng.random_range(0..tokens.len());
        let last = (first + self.rng.random_range(0..4)).min(tokens.len() - 1);
        let run = &text[tokens[first].start..tokens[last].end];
        let times = self.rng.random_range(2..=64);
        let repeated = format!(" {run}").repeat(times);
        replace_range(text, tokens[last].end..tokens[last].end, &repeated)
    }

    /// Either inserts a slice of another corpus file, or joins the head of this text to the
    /// tail of another file, as a crossover.
    fn splice(&mut self, text: &str) -> String {
        let corpus = self.corpus;
        let donor = corpus.choose(&mut self.rng).expect("a non-empty corpus").text.as_str();
        if self.rng.random_bool(0.5) {
            let range = self.random_char_range(donor, 200);
            let at = self.random_boundary(text);
            replace_range(text, at..at, &donor[range])
        } else {
            let head = self.random_boundary(text);
            let tail = self.random_boundary(donor);
            format!("{}{}", &text[..head], &donor[tail..])
        }
    }

    fn random_char(&mut self) -> char {
        match self.rng.random_range(0..10) {
            0..=4 => {
                let index = self.rng.random_range(0..INTERESTING_CHARS.chars().count());
                INTERESTING_CHARS.chars().nth(index).expect("an index below the count")
            }
            5..=8 => char::from(self.rng.random_range(0x20u8..0x7f)),
            _ => self.rng.random::<char>(),
        }
    }

    /// A random position between characters, `0..=text.len()`.
    fn random_boundary(&mut self, text: &str) -> usize {
        let mut at = self.rng.random_range(0..=text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    }

    /// A random byte range of 1 to `max_chars` whole characters (empty only if `text` is).
    fn random_char_range(&mut self, text: &str, max_chars: usize) -> Range<usize> {
        if text.is_empty() {
            return 0..0;
        }
        let mut start = self.rng.random_range(0..text.len());
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let chars = self.rng.random_range(1..=max_chars);
        let end = text[start..].char_indices().nth(chars).map_or(text.len(), |(offset, _)| start + offset);
        start..end
    }

    fn random_token(&mut self, text: &str) -> Option<Range<usize>> {
        token_ranges(text).choose(&mut self.rng).cloned()
    }
}

/// The byte ranges of `text`'s tokens, as the real lexer sees them (comments excluded).
fn token_ranges(text: &str) -> Vec<Range<usize>> {
    lex(text).tokens.into_iter().map(|(_, span)| span.range()).collect()
}

fn replace_range(text: &str, range: Range<usize>, with: &str) -> String {
    let mut out = String::with_capacity(text.len() + with.len());
    out.push_str(&text[..range.start]);
    out.push_str(with);
    out.push_str(&text[range.end..]);
    out
}

fn truncate_at_char_boundary(text: &mut String, max_len: usize) {
    if text.len() > max_len {
        let cut = (0..=max_len).rev().find(|&at| text.is_char_boundary(at)).unwrap_or(0);
        text.truncate(cut);
    }
}

// ---------------------------------------------------------------------------------------------
// Saving failures, the environment, the binary.
// ---------------------------------------------------------------------------------------------

fn failures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures")
}

/// Writes a failing input to `target/fuzz-failures/<hash>.ppl` and returns the path.
fn save_failure(text: &str) -> PathBuf {
    let dir = failures_dir();
    let path = dir.join(format!("{:016x}.ppl", fnv1a(text.as_bytes())));
    if let Err(error) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text)) {
        eprintln!("cannot save the failing input to {}: {error}", path.display());
    }
    path
}

/// The input a fuzz loop is checking, kept on disk until the loop ends, so that an abort
/// (which no test harness survives) leaves the culprit behind.
struct InFlight(PathBuf);

impl InFlight {
    fn new(test: &str) -> Self {
        let dir = failures_dir();
        let _ = std::fs::create_dir_all(&dir);
        InFlight(dir.join(format!("in-flight-{test}-{}.ppl", std::process::id())))
    }

    fn record(&self, text: &str) {
        let _ = std::fs::write(&self.0, text);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// 64-bit FNV-1a: a stable hash for seeds and file names, independent of the Rust version.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(value) => value.trim().parse().unwrap_or_else(|_| panic!("{name}={value:?} is not a valid value")),
        Err(_) => default,
    }
}

/// What one run of the binary did.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `ppl ARGS`, waiting at most ten seconds (process start-up of a debug build on a busy
/// machine included).
fn run_ppl(scratch: &Scratch, args: &[&str]) -> Run {
    run_ppl_within(scratch, args, Duration::from_secs(10)).unwrap_or_else(|hang| panic!("{hang}"))
}

/// Runs `ppl ARGS` and kills it if it takes longer than `limit`. Output goes to files in
/// `scratch`, not pipes, so that a child with a lot to say cannot block on a full pipe while
/// we wait for it to exit.
fn run_ppl_within(scratch: &Scratch, args: &[&str], limit: Duration) -> Result<Run, String> {
    let stdout_path = scratch.0.join("stdout.txt");
    let stderr_path = scratch.0.join("stderr.txt");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ppl"))
        .args(args)
        .current_dir(scratch.0.as_path())
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).expect("a writable temp file"))
        .stderr(File::create(&stderr_path).expect("a writable temp file"))
        .spawn()
        .expect("the ppl binary starts");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("the ppl process can be waited for") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("`ppl {}` hangs: killed after {limit:?}", args.join(" ")));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let read = |path: &Path| String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
    Ok(Run { status, stdout: read(&stdout_path), stderr: read(&stderr_path) })
}
