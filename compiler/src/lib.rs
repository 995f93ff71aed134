//! `ppl`: a probabilistic programming language for programmable variational inference.
//!
//! The crate is the compiler as a library; the `ppl` command and the REPL are its clients.
//! Its folders follow the pipeline: `syntax` (text to tree), `types` (names, types, shapes and
//! trace types), `diagnostics` (errors as values, rendered with ariadne), `lower` (checked
//! syntax to IR), `adev` (estimators and their derivatives), `ir` and `interp` (the IR and its
//! reference interpreter), `run` (running commands). The front door is [`check_source`]:
//! source text in, checked program and diagnostics out, never a panic.

pub mod adev;
pub mod codegen;
pub mod data;
pub mod diagnostics;
pub mod distributions;
pub mod embed;
pub mod interp;
pub mod ir;
pub mod load;
pub mod lower;
pub mod run;
pub mod stdlib;
pub mod syntax;
pub mod types;

pub use embed::{compile, compile_with_data};

use diagnostics::{Diagnostic, SourceMap};
use syntax::ast::Program;
use syntax::token::Comment;

/// One parsed file of a compilation.
#[derive(Debug)]
pub struct ParsedFile {
    pub file: diagnostics::FileId,
    pub program: Program,
    pub comments: Vec<Comment>,
}

/// Everything the front end learnt about a program: its files (the standard library first,
/// then the user's), their syntax trees, the checker's results and every diagnostic, sorted
/// by position. The program is usable by later stages only if [`Analysis::has_errors`] is false.
#[derive(Debug)]
pub struct Analysis {
    pub sources: SourceMap,
    pub files: Vec<ParsedFile>,
    pub checked: types::CheckedProgram,
    pub diagnostics: Vec<Diagnostic>,
}

impl Analysis {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The diagnostics rendered as text, as `ppl check` prints them.
    pub fn render_diagnostics(&self, color: diagnostics::ColorChoice) -> String {
        diagnostics::render_all(&self.diagnostics, &self.sources, color)
    }
}

/// Parses and checks one user file together with the standard library.
///
/// Runs on a thread with a large stack, so that deeply nested (but legal) programs cannot
/// overflow it; the work itself is single-threaded and deterministic.
pub fn check_source(name: &str, text: &str) -> Analysis {
    check_sources(&[(name, text)])
}

/// Parses and checks several user files together with the standard library, as one program:
/// definitions in any file are visible in all, and the last file's commands are the ones a
/// [`run::Session`] runs. The REPL keeps its definitions and the input just typed apart this
/// way, so that diagnostics point into the input.
pub fn check_sources(user_files: &[(&str, &str)]) -> Analysis {
    with_large_stack(|| analyse(user_files, None))
}

/// Input that the user typed and that is checked as the command it stands for: an expression
/// typed into the REPL as `print ` + text + `\n;`, an objective given to the embedding API as
/// `print grad(` + text + `\n);`. Diagnostics quote only what the user typed. `after` starts
/// with a line break, so that a `//` comment at the end of the text cannot hide it.
#[derive(Clone, Copy, Debug)]
pub struct Wrapped<'t> {
    pub name: &'t str,
    pub before: &'t str,
    pub text: &'t str,
    pub after: &'t str,
}

impl Wrapped<'_> {
    /// The text the parser reads.
    pub fn parsed(&self) -> String {
        format!("{}{}{}", self.before, self.text, self.after)
    }
}

/// Checks `files` and then `input` as the last file, as [`check_sources`] does.
pub fn check_wrapped(files: &[(&str, &str)], input: Wrapped<'_>) -> Analysis {
    with_large_stack(|| analyse(files, Some(input)))
}

fn analyse(user_files: &[(&str, &str)], wrapped: Option<Wrapped<'_>>) -> Analysis {
    let mut sources = SourceMap::new();
    let mut files = Vec::new();
    let mut diagnostics = Vec::new();
    for (library_name, library_text) in stdlib::FILES {
        files.push(parse_into(&mut sources, &mut diagnostics, library_name, library_text));
    }
    for (name, text) in user_files {
        files.push(parse_into(&mut sources, &mut diagnostics, name, text));
    }
    if let Some(input) = wrapped {
        let file = sources.add_wrapped(input.name, input.before, input.text.to_string(), input.after);
        let source = sources.file(file);
        let parsed = syntax::parse(source.parsed_text(), source.base - source.hidden.0);
        diagnostics.extend(parsed.diagnostics);
        files.push(ParsedFile { file, program: parsed.program, comments: parsed.comments });
    }

    // Checking a file with syntax errors would report the consequences of the parser's
    // recovery (a skipped definition is an unknown name later), not problems of its own.
    let checked = if diagnostics.iter().any(Diagnostic::is_error) {
        types::CheckedProgram::default()
    } else {
        let programs: Vec<&Program> = files.iter().map(|file| &file.program).collect();
        types::check(&programs, stdlib::FILES.len(), &mut diagnostics)
    };
    diagnostics.sort_by_key(|d| d.span().map(|span| (span.start, span.end)));
    Analysis { sources, files, checked, diagnostics }
}

fn parse_into(sources: &mut SourceMap, diagnostics: &mut Vec<Diagnostic>, name: &str, text: &str) -> ParsedFile {
    // A UTF-8 byte-order mark (which some editors write) is read as the spaces it occupies.
    let unmarked = text.strip_prefix('\u{FEFF}').map(|rest| format!("   {rest}"));
    let text = unmarked.as_deref().unwrap_or(text);
    let file = sources.add(name, text);
    let parsed = syntax::parse(text, sources.file(file).base);
    diagnostics.extend(parsed.diagnostics);
    ParsedFile { file, program: parsed.program, comments: parsed.comments }
}

/// Stack size for the front end: recursion depth follows the program's nesting.
const FRONT_END_STACK: usize = 256 << 20;

/// Runs `work` on a scoped thread with a large stack and returns its result (on the current
/// thread if no thread can be started).
pub fn with_large_stack<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    let mut work = Some(work);
    let spawned = std::thread::scope(|scope| {
        let thread = std::thread::Builder::new().stack_size(FRONT_END_STACK);
        let handle = thread.spawn_scoped(scope, || work.take().map(|work| work())).ok()?;
        match handle.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    match (spawned, work) {
        (Some(value), _) => value,
        (None, Some(work)) => work(),
        (None, None) => unreachable!("the work ran on the spawned thread and returned a value"),
    }
}
