//! `ppl repl`: definitions accumulate, commands and bare expressions run at once.
//!
//! Each input is checked as its own file (`<input>`) together with everything defined so far
//! (`<definitions>`), so diagnostics point into what was just typed, and a redefinition
//! replaces the earlier item (its dependants are rechecked with the whole program). Parameters
//! keep their values from one input to the next, trained ones included. With a terminal the
//! loop uses rustyline (history in the user's data directory, completion of keywords,
//! built-ins, distributions and defined names, `..` prompts while the input is incomplete);
//! otherwise it reads inputs from stdin without prompts.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ppl::diagnostics::ColorChoice;
use ppl::interp::RuntimeValue;
use ppl::run::{Output, Printed, RunOptions, Session};
use ppl::syntax::ast::{ExprKind, ItemKind};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

use crate::draws::Draws;
use crate::progress::Progress;

const HELP: &str = "\
Type definitions (gen, fn, param, data, let), commands (print, maximize, minimize) or an
expression to evaluate, e.g. `estimate(elbo(model(), guide(m), obs))`. Input continues on
`..` lines while a bracket is open or a line ends in an operator.

  :help            this text
  :load FILE       load a file's definitions and run its commands
  :reload          load the loaded files again
  :type EXPR       the type of an expression
  :ir EXPR         the compiled IR (value, forward and reverse mode) of an estimate (or of
                   the estimate an `estimate(…)` or `grad(…)` reports)
  :clif EXPR       the Cranelift IR of an estimate's value and reverse-mode programs
  :params          the parameters' current values
  :set seed N      the seed of the following commands
  :set threads N   worker threads for particles
  :set precision f32  products of two matrices and trainings in f32 (`f64`: in f64), also in
                   a training whose `precision` option asks for the other
  :set out DIR     write each `sample`'s draws to DIR as CSV and a picture (SVG),
                   and each `image` as NAME.png; `:set out` alone stops
  :reset           forget every definition and parameter
  :quit            leave (also Ctrl-D)";

/// One top-level item defined so far.
struct Definition {
    name: String,
    text: String,
}

struct Repl {
    definitions: Vec<Definition>,
    params: Vec<(String, RuntimeValue)>,
    seed: Option<u64>,
    /// Worker threads for samples and particles; `None`: every core.
    threads: Option<usize>,
    /// The precision of products of two matrices and of trainings (`:set precision f32`).
    precision: Option<ppl_runtime::Precision>,
    loaded: Vec<PathBuf>,
    color: ColorChoice,
    interrupt: Arc<AtomicBool>,
    progress_quiet: bool,
    /// Where `sample` draws are written as CSV and SVG (`:out DIR`), and how many have been.
    out: Option<PathBuf>,
    samples_written: usize,
}

/// An expression typed at the prompt, checked as the command `before` + it + `after`.
fn expression<'t>(text: &'t str, before: &'t str, after: &'t str) -> ppl::Wrapped<'t> {
    ppl::Wrapped { name: "<input>", before, text, after }
}

/// The estimate `estimate(…)` or `grad(…)` reports, as the text of `expr` that writes it; `None`
/// if `expr` is not such a report.
fn reported_estimate(expr: &str) -> Option<&str> {
    const BEFORE: &str = "print ";
    let parsed = ppl::syntax::parse(&expression(expr, BEFORE, "\n;").parsed(), 0);
    let ItemKind::Print(exprs) = &parsed.program.items.first()?.kind else { return None };
    let ExprKind::Call { callee, args } = &exprs.first()?.kind else { return None };
    let first = args.first().filter(|_| matches!(callee.name.as_str(), "estimate" | "grad"))?;
    let span = first.value.span;
    expr.get((span.start as usize).checked_sub(BEFORE.len())?..(span.end as usize).checked_sub(BEFORE.len())?)
}

/// What one input shows: its results as text and, with `:out DIR`, its samples' draws kept
/// to be written when the input is done, and its pictures written at once.
struct Screen {
    text: crate::draws::Text,
    draws: Option<Vec<Draws>>,
    out: Option<PathBuf>,
}

impl Screen {
    fn new(out: Option<PathBuf>) -> Screen {
        Screen {
            text: crate::draws::Text::new(false, "`:set out DIR` writes them"),
            draws: out.is_some().then(Vec::new),
            out,
        }
    }

    fn show(&mut self, output: &Output) {
        if let Output::Image { name, png, .. } = output {
            let path = self.out.as_ref().map(|dir| dir.join(format!("{name}.png")));
            let written = path.map(|path| crate::files::write_atomically(&path, png).map(|()| path)).transpose();
            let path = written.unwrap_or_else(|message| {
                eprintln!("error: {message}");
                None
            });
            let hint = "`:set out DIR` writes it";
            crate::write_line(&crate::report::image_text(&output.to_string(), path.as_deref(), hint));
            return;
        }
        match (output, &mut self.draws) {
            (Output::Sample { source, .. }, Some(draws)) => draws.push(Draws::new(source, true)),
            (Output::Trace { trace, .. }, Some(draws)) => {
                if let Some(last) = draws.last_mut() {
                    last.add(trace);
                }
            }
            _ => {}
        }
        if let Some(line) = self.text.show(output) {
            crate::write_line(&line);
        }
    }
}

pub fn run(files: &[PathBuf], color: ColorChoice) -> Result<(), crate::Failure> {
    let interrupt = Arc::new(AtomicBool::new(false));
    let handler_flag = interrupt.clone();
    let _ = ctrlc::set_handler(move || handler_flag.store(true, Ordering::SeqCst));
    let interactive = std::io::stdin().is_terminal();
    let mut repl = Repl {
        definitions: Vec::new(),
        params: Vec::new(),
        seed: None,
        threads: None,
        precision: None,
        loaded: Vec::new(),
        out: None,
        samples_written: 0,
        color,
        interrupt,
        progress_quiet: !interactive,
    };
    for file in files {
        repl.load(file);
    }
    if interactive {
        repl.interactive()
    } else {
        repl.scripted();
        Ok(())
    }
}

impl Repl {
    fn interactive(&mut self) -> Result<(), crate::Failure> {
        let mut editor: Editor<ReplHelper, DefaultHistory> = Editor::new().map_err(|error| {
            eprintln!("error: cannot start the line editor: {error}");
            crate::Failure
        })?;
        let history = history_path();
        if let Some(path) = &history {
            let _ = editor.load_history(path);
        }
        crate::write_line(&format!("ppl {} — :help for help, :quit or Ctrl-D to leave", env!("CARGO_PKG_VERSION")));
        loop {
            editor.set_helper(Some(ReplHelper { names: self.completion_names() }));
            let mut input = String::new();
            let mut prompt = ">> ";
            let complete = loop {
                match editor.readline(prompt) {
                    Ok(line) => {
                        if !input.is_empty() {
                            input.push('\n');
                        }
                        input.push_str(&line);
                        if input.trim_start().starts_with(':') || !ppl::syntax::token::is_incomplete(&input) {
                            break Some(true);
                        }
                        prompt = ".. ";
                    }
                    Err(ReadlineError::Interrupted) => break Some(false),
                    // A line that is not UTF-8 is refused; the session goes on.
                    Err(ReadlineError::Io(error)) if error.kind() == std::io::ErrorKind::InvalidData => {
                        eprintln!("error: the input is not valid UTF-8; it was ignored");
                        break Some(false);
                    }
                    Err(ReadlineError::WindowResized) => continue,
                    Err(_) => break None,
                }
            };
            match complete {
                Some(true) if !input.trim().is_empty() => {
                    let _ = editor.add_history_entry(input.as_str());
                    if !self.handle(&input) {
                        break;
                    }
                }
                Some(_) => {}
                None => break,
            }
        }
        if let Some(path) = &history {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = editor.save_history(path);
        }
        Ok(())
    }

    /// Reads inputs from stdin, each ending where it is complete; no prompts.
    fn scripted(&mut self) {
        let mut input = String::new();
        for (number, line) in std::io::stdin().lock().split(b'\n').enumerate() {
            let Ok(line) = line else { break };
            let Ok(line) = String::from_utf8(line) else {
                // The input this line belongs to is refused; the next one starts afresh.
                eprintln!("error: line {} is not valid UTF-8; its input was ignored", number + 1);
                input.clear();
                continue;
            };
            let line = line.strip_suffix('\r').unwrap_or(&line);
            if !input.is_empty() {
                input.push('\n');
            }
            input.push_str(line);
            if input.trim().is_empty() {
                input.clear();
                continue;
            }
            if input.trim_start().starts_with(':') || !ppl::syntax::token::is_incomplete(&input) {
                let keep_going = self.handle(&input);
                input.clear();
                if !keep_going {
                    return;
                }
            }
        }
        if !input.trim().is_empty() {
            self.handle(&input);
        }
    }

    /// Handles one complete input; returns false to leave.
    fn handle(&mut self, input: &str) -> bool {
        // A Ctrl-C from now on (even before training starts) stops this input's training.
        self.interrupt.store(false, Ordering::SeqCst);
        let trimmed = input.trim();
        if let Some(meta) = trimmed.strip_prefix(':') {
            return self.meta(meta.trim());
        }
        if ppl::syntax::parse(trimmed, 0).diagnostics.is_empty() {
            self.submit(trimmed, "<input>");
        } else if ppl::syntax::parse(&expression(trimmed, "print ", "\n;").parsed(), 0).diagnostics.is_empty() {
            self.evaluate(trimmed);
        } else {
            // Neither items nor an expression: show the errors of the input as written.
            let analysis = ppl::check_sources(&[("<definitions>", &self.definitions_text()), ("<input>", trimmed)]);
            eprint!("{}", analysis.render_diagnostics(self.color));
        }
        true
    }

    fn meta(&mut self, command: &str) -> bool {
        let (name, rest) = command.split_once(char::is_whitespace).unwrap_or((command, ""));
        let rest = rest.trim();
        match name {
            "help" | "h" | "?" => crate::write_line(HELP),
            "quit" | "q" | "exit" => return false,
            "load" if !rest.is_empty() => self.load(&PathBuf::from(rest)),
            "reload" => {
                for file in self.loaded.clone() {
                    self.load(&file);
                }
            }
            "type" | "t" if !rest.is_empty() => {
                if let Some((_, ty)) = self.check_expression(rest, false) {
                    crate::write_line(&format!("{rest} : {ty}"));
                }
            }
            "ir" if !rest.is_empty() => self.show_ir(rest, false),
            "clif" if !rest.is_empty() => self.show_ir(rest, true),
            "params" => {
                if self.params.is_empty() {
                    crate::write_line("no parameters");
                }
                for (name, value) in &self.params {
                    crate::write_line(&format!("{name} = {}", Printed::from_runtime(value)));
                }
            }
            "set" => self.set(rest),
            "load" | "type" | "t" | "ir" | "clif" => {
                eprintln!("error: `:{name}` needs {}", if name == "load" { "a file" } else { "an expression" })
            }
            "reset" => {
                self.definitions.clear();
                self.params.clear();
                self.loaded.clear();
                crate::write_line("forgot every definition and parameter");
            }
            _ => eprintln!("error: unknown command `:{command}` (:help lists them)"),
        }
        true
    }

    fn set(&mut self, setting: &str) {
        let mut words = setting.split_whitespace();
        match (words.next(), words.next().map(str::parse::<u64>)) {
            (Some("seed"), Some(Ok(seed))) => {
                self.seed = Some(seed);
                crate::write_line(&format!("seed = {seed}"));
            }
            (Some("out"), _) => {
                let dir = setting.trim_start().trim_start_matches("out").trim();
                if dir.is_empty() {
                    self.out = None;
                    crate::write_line("samples and images are no longer written");
                    return;
                }
                match crate::results::prepare(Path::new(dir)) {
                    Ok(()) => {
                        self.out = Some(PathBuf::from(dir));
                        crate::write_line(&format!("samples (CSV and SVG) and images (PNG) are written to {dir}"));
                    }
                    Err(message) => eprintln!("error: {message}"),
                }
            }
            (Some("threads"), Some(Ok(threads))) if threads > 0 => {
                self.threads = Some(threads as usize);
                crate::write_line(&format!("threads = {threads}"));
            }
            (Some("precision"), _) => {
                let precision = match setting.split_whitespace().nth(1) {
                    Some("f32") => ppl_runtime::Precision::Single,
                    Some("f64") => ppl_runtime::Precision::Double,
                    _ => return eprintln!("error: `:set precision f32` or `:set precision f64`"),
                };
                self.precision = Some(precision);
                let name = if precision == ppl_runtime::Precision::Single { "f32" } else { "f64" };
                crate::write_line(&format!("products of two matrices and trainings in {name}"));
            }
            _ => eprintln!("error: `:set seed N`, `:set threads N`, `:set precision f32|f64` or `:set out DIR`"),
        }
    }

    fn load(&mut self, path: &PathBuf) {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                if !self.loaded.contains(path) {
                    self.loaded.push(path.clone());
                }
                self.submit(&text, &path.display().to_string());
            }
            Err(error) => eprintln!("error: cannot read `{}`: {error}", path.display()),
        }
    }

    fn definitions_text(&self) -> String {
        self.definitions.iter().map(|definition| definition.text.as_str()).collect::<Vec<_>>().join("\n")
    }

    /// Checks `text` (items and commands) against the definitions, runs its commands, and keeps
    /// its items. Returns whether it succeeded.
    fn submit(&mut self, text: &str, name: &str) -> bool {
        let parsed = ppl::syntax::parse(text, 0);
        let mut new_items: Vec<Definition> = Vec::new();
        for item in &parsed.program.items {
            let defined = match &item.kind {
                ItemKind::Gen(def) | ItemKind::Fn(def) => Some(def.name.name.clone()),
                ItemKind::Param(binding) | ItemKind::Data(binding) | ItemKind::Let(binding) => {
                    Some(binding.name.name.clone())
                }
                // Types have names of their own: `type net = …;` does not replace `param net`.
                ItemKind::Type(alias) => Some(format!("type {}", alias.name.name)),
                _ => None,
            };
            if let Some(defined) = defined {
                let start = item.span.start as usize;
                let end = (item.span.end as usize).min(text.len());
                new_items.push(Definition { name: defined, text: text.get(start..end).unwrap_or("").to_string() });
            }
        }
        let kept: Vec<&Definition> =
            self.definitions.iter().filter(|old| !new_items.iter().any(|new| new.name == old.name)).collect();
        let kept_text = kept.iter().map(|definition| definition.text.as_str()).collect::<Vec<_>>().join("\n");
        let analysis = ppl::check_sources(&[("<definitions>", &kept_text), (name, text)]);
        eprint!("{}", analysis.render_diagnostics(self.color));
        if analysis.has_errors() {
            return false;
        }
        // A redefined parameter starts again from its new initial value.
        // (A record parameter's leaves, `net.w`, belong to the `param net` that declares them.)
        let redefined = |param: &str| {
            new_items.iter().any(|new| {
                param == new.name || param.strip_prefix(new.name.as_str()).is_some_and(|rest| rest.starts_with('.'))
            })
        };
        let carried = self.params.iter().filter(|(param, _)| !redefined(param)).cloned().collect();
        let mut screen = Screen::new(self.out.clone());
        let ok = self.run(&analysis, carried, &mut |_, output| screen.show(output));
        self.write_draws(screen);
        if ok {
            self.definitions.retain(|old| !new_items.iter().any(|new| new.name == old.name));
            self.definitions.extend(new_items);
        }
        ok
    }

    /// Runs the last file of `analysis` from the parameter values `carried`, reporting each
    /// output; keeps the parameters it ends with if it succeeds. A failing input leaves the
    /// session as it was.
    fn run(
        &mut self,
        analysis: &ppl::Analysis,
        carried: Vec<(String, RuntimeValue)>,
        report: &mut (dyn FnMut(&ppl::Analysis, &Output) + Send),
    ) -> bool {
        let options = RunOptions {
            seed: self.seed,
            emit_ir: false,
            emit_clif: false,
            backend: ppl::run::Backend::Jit,
            interrupt: Some(self.interrupt.clone()),
            resume: Some(ppl::run::Resume { params: carried, ..Default::default() }),
            threads: self.threads,
            row_by_row: false,
            precision: self.precision,
        };
        let mut progress = Progress::new(self.progress_quiet);
        let color = self.color;
        let (outcome, params) = ppl::with_large_stack(|| {
            let mut session = match Session::new(analysis, options) {
                Ok(session) => session,
                Err(diagnostic) => return (Err(diagnostic), None),
            };
            let outcome = session.run_commands(&mut |output| match &output {
                Output::Progress { step, steps, objective, minibatch, .. } => {
                    progress.step(*step, *steps, *objective, *minibatch)
                }
                _ => {
                    progress.finish();
                    report(analysis, &output);
                }
            });
            progress.finish();
            let params: Vec<(String, RuntimeValue)> =
                session.params().map(|(name, value)| (name.to_string(), value)).collect();
            (outcome, Some(params))
        });
        match outcome {
            Ok(()) => {
                if let Some(params) = params {
                    self.params = params;
                }
                true
            }
            Err(diagnostic) => {
                eprint!("{}", ppl::diagnostics::render(&diagnostic, &analysis.sources, color));
                false
            }
        }
    }

    /// Checks `EXPR` as `print EXPR;` (to show its value) or, for its type alone, as the value
    /// of a `let` (so that an estimate, which `print` refuses, has one too; a command such as
    /// `image(…)`, which only `print` takes, is checked as printed); returns the analysis with
    /// the expression's type.
    fn check_expression(&self, expr: &str, to_print: bool) -> Option<(ppl::Analysis, String)> {
        let printed = expression(expr, "print ", "\n;");
        let is_picture = ppl::syntax::parse(&printed.parsed(), 0).program.items.first().is_some_and(|item| {
            matches!(&item.kind, ItemKind::Print(exprs) if matches!(exprs.first().map(|e| &e.kind), Some(ExprKind::Call { callee, .. }) if callee.name == "image"))
        });
        let input = match to_print || is_picture {
            true => printed,
            false => expression(expr, "let __repl_expression = ", "\n;"),
        };
        let analysis = ppl::check_wrapped(&[("<definitions>", &self.definitions_text())], input);
        eprint!("{}", analysis.render_diagnostics(self.color));
        if analysis.has_errors() {
            return None;
        }
        let file = analysis.files.len() - 1;
        let item = analysis.files[file].program.items.first()?;
        let checked = match &item.kind {
            ItemKind::Print(exprs) => exprs.first()?,
            ItemKind::Let(binding) => &binding.value,
            _ => return None,
        };
        let ty = analysis.checked.top_level_types.get(file)?.get(&checked.id)?.to_string();
        Some((analysis, ty))
    }

    /// Evaluates an expression and prints its value with its type.
    fn evaluate(&mut self, expr: &str) {
        let Some((analysis, ty)) = self.check_expression(expr, true) else { return };
        let is_report = matches!(
            &analysis.files[analysis.files.len() - 1].program.items[0].kind,
            ItemKind::Print(exprs) if matches!(&exprs[0].kind, ExprKind::Call { callee, .. } if matches!(callee.name.as_str(), "estimate" | "grad" | "sample"))
        );
        let mut screen = Screen::new(self.out.clone());
        self.run(&analysis, self.params.clone(), &mut |_, output| match output {
            Output::Print { value, .. } if !is_report => crate::write_line(&format!("{value} : {ty}")),
            other => screen.show(other),
        });
        self.write_draws(screen);
    }

    /// Writes the draws an input sampled into the `:out` folder, as `ppl run --out` does.
    fn write_draws(&mut self, screen: Screen) {
        let (Some(dir), Some(draws)) = (&self.out, screen.draws) else { return };
        for draws in draws {
            self.samples_written += 1;
            let stem = dir.join(format!("samples-{}", self.samples_written));
            let (csv, svg) = (stem.with_extension("csv"), stem.with_extension("svg"));
            let written = crate::pictures::draws_svg(draws.source(), draws.columns()).and_then(|picture| {
                crate::files::write_atomically(&csv, crate::pictures::draws_csv(draws.columns()))?;
                crate::files::write_atomically(&svg, &picture)
            });
            match written {
                Ok(()) => crate::write_line(&format!("wrote {} and {}", csv.display(), svg.display())),
                Err(message) => eprintln!("error: {message}"),
            }
        }
    }

    /// The IR of an estimate's value, forward and reverse programs, or (`clif`) the Cranelift
    /// IR of the value and reverse programs as compiled to native code.
    fn show_ir(&mut self, expr: &str, clif: bool) {
        // `:ir grad(f(w))` shows what `grad` compiles: the estimate it is given.
        let expr = reported_estimate(expr).unwrap_or(expr);
        let Some((_, ty)) = self.check_expression(expr, false) else { return };
        if ty != "est" {
            crate::write_line(&format!(
                "`{expr}` is {ty}: only estimates (`est`) are compiled to value and gradient programs"
            ));
            return;
        }
        let input = expression(expr, "print estimate(", "\n);");
        let analysis = ppl::check_wrapped(&[("<definitions>", &self.definitions_text())], input);
        let options = RunOptions {
            resume: Some(ppl::run::Resume { params: self.params.clone(), ..Default::default() }),
            precision: self.precision,
            ..RunOptions::default()
        };
        let compiled = ppl::with_large_stack(|| Session::new(&analysis, options)?.compile_objectives());
        match compiled {
            Ok(compiled) => {
                for (_, estimator) in compiled {
                    if !clif {
                        crate::write_line(&format!(
                            "{}\n{}\n{}",
                            estimator.primal, estimator.forward, estimator.reverse
                        ));
                        continue;
                    }
                    for function in [&estimator.primal, &estimator.reverse] {
                        match ppl::codegen::compile(function) {
                            Ok(native) => crate::write_line(&native.clif),
                            Err(error) => eprintln!("error: {error}"),
                        }
                    }
                }
            }
            Err(diagnostic) => eprint!("{}", ppl::diagnostics::render(&diagnostic, &analysis.sources, self.color)),
        }
    }

    fn completion_names(&self) -> Vec<String> {
        let mut names: Vec<String> = ppl::syntax::token::KEYWORDS
            .iter()
            .copied()
            .chain(ppl::types::builtin_names())
            .chain(ppl::distributions::names())
            .map(str::to_string)
            .chain(self.definitions.iter().map(|definition| definition.name.clone()))
            .chain(["pi", "inf"].map(str::to_string))
            .chain(
                [":help", ":load", ":reload", ":type", ":ir", ":clif", ":params", ":set", ":reset", ":quit"]
                    .map(str::to_string),
            )
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// `$XDG_DATA_HOME/ppl/history`, or `~/.local/share/ppl/history`.
fn history_path() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|path| path.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))?;
    Some(data.join("ppl").join("history"))
}

/// Completion of the word before the cursor.
struct ReplHelper {
    names: Vec<String>,
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _context: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == ':'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &before[start..];
        if word.is_empty() {
            return Ok((pos, Vec::new()));
        }
        let candidates = self
            .names
            .iter()
            .filter(|name| name.starts_with(word))
            .map(|name| Pair { display: name.clone(), replacement: name.clone() })
            .collect();
        Ok((start, candidates))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {}

impl Validator for ReplHelper {}

impl Helper for ReplHelper {}
