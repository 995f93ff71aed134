//! The `ppl` command: a thin client of the `ppl` library.
//!
//! It reads files, calls the library and prints what comes back; it decides nothing about
//! the language. Every failure is a diagnostic on stderr and exit code 1.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod report;

use clap::{Parser, Subcommand, ValueEnum};
use ppl::diagnostics::ColorChoice;

#[derive(Parser)]
#[command(name = "ppl", version, about = "Probabilistic programming for programmable variational inference")]
struct Cli {
    /// When to colour diagnostics.
    #[arg(long, value_enum, default_value_t = Color::Auto, global = true)]
    color: Color,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and type-check a program without running it.
    Check {
        /// The `.ppl` file to check.
        file: PathBuf,
    },
    /// Run a program's commands: `print`, `estimate`, `grad`.
    Run {
        /// The `.ppl` file to run.
        file: PathBuf,
        /// Print one JSON object per result, one per line, instead of text.
        #[arg(long)]
        json: bool,
        /// The seed of every random stream (overrides the program's seeds).
        #[arg(long)]
        seed: Option<u64>,
        /// Also print an intermediate form of every compiled estimate.
        #[arg(long, value_enum)]
        emit: Option<Emit>,
    },
    /// Print a program in the canonical layout (comments are kept).
    Fmt {
        /// The `.ppl` file to format.
        file: PathBuf,
        /// Print nothing; exit with 1 if the file is not formatted.
        #[arg(long, conflicts_with = "write")]
        check: bool,
        /// Rewrite the file in place instead of printing it.
        #[arg(long)]
        write: bool,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Emit {
    /// The IR of the value, forward-mode and reverse-mode programs.
    Ir,
}

#[derive(Clone, Copy, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = match cli.color {
        Color::Always => ColorChoice::Always,
        Color::Never => ColorChoice::Never,
        Color::Auto if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() => ColorChoice::Always,
        Color::Auto => ColorChoice::Never,
    };
    let outcome = match cli.command {
        Command::Check { file } => check(&file, color),
        Command::Run { file, json, seed, emit } => run(&file, json, seed, emit, color),
        Command::Fmt { file, check, write } => format(&file, check, write, color),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure) => ExitCode::from(1),
    }
}

/// The command failed; what went wrong has been printed.
struct Failure;

fn read_source(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|error| {
        eprintln!("error: cannot read `{}`: {error}", path.display());
        Failure
    })
}

fn check(path: &Path, color: ColorChoice) -> Result<(), Failure> {
    let text = read_source(path)?;
    let analysis = ppl::check_source(&path.display().to_string(), &text);
    eprint!("{}", analysis.render_diagnostics(color));
    if analysis.has_errors() {
        return Err(Failure);
    }
    let items = analysis.files.last().map_or(0, |file| file.program.items.len());
    eprintln!("checked {}: {items} items, no errors", path.display());
    Ok(())
}

fn run(path: &Path, json: bool, seed: Option<u64>, emit: Option<Emit>, color: ColorChoice) -> Result<(), Failure> {
    let text = read_source(path)?;
    let analysis = ppl::check_source(&path.display().to_string(), &text);
    eprint!("{}", analysis.render_diagnostics(color));
    if analysis.has_errors() {
        return Err(Failure);
    }
    let options = ppl::run::RunOptions { seed, emit_ir: emit == Some(Emit::Ir) };
    let outcome = ppl::with_large_stack(|| {
        let mut session = ppl::run::Session::new(&analysis, options)?;
        session.run_commands(&mut |output| match (json, report::json(&output)) {
            (true, Some(line)) => write_line(&line),
            (true, None) => eprintln!("{output}"),
            (false, _) => write_line(&output.to_string()),
        })
    });
    outcome.map_err(|diagnostic| {
        eprint!("{}", ppl::diagnostics::render(&diagnostic, &analysis.sources, color));
        Failure
    })
}

/// Prints a result line. A closed pipe (`ppl run … | head`) ends the run quietly, as it does
/// for other command-line tools; any other failure to write is an error.
fn write_line(line: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write the results: {error}");
        std::process::exit(1);
    }
}

fn format(path: &Path, check_only: bool, write: bool, color: ColorChoice) -> Result<(), Failure> {
    let text = read_source(path)?;
    let name = path.display().to_string();
    let formatted = match ppl::with_large_stack(|| ppl::syntax::format::format_source(&text)) {
        Ok(formatted) => formatted,
        Err(diagnostics) => {
            let mut sources = ppl::diagnostics::SourceMap::new();
            sources.add(name, text);
            eprint!("{}", ppl::diagnostics::render_all(&diagnostics, &sources, color));
            return Err(Failure);
        }
    };
    if check_only {
        if formatted != text {
            eprintln!("{name} is not formatted: run `ppl fmt --write {name}`");
            return Err(Failure);
        }
        return Ok(());
    }
    if write {
        if formatted != text {
            write_atomically(path, &formatted)?;
        }
        return Ok(());
    }
    print!("{formatted}");
    Ok(())
}

/// Replaces a file's contents through a temporary file and a rename, so that an interrupted
/// write never leaves half a program behind.
fn write_atomically(path: &Path, contents: &str) -> Result<(), Failure> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".ppl-fmt.tmp");
    let temporary = PathBuf::from(temporary);
    let result = std::fs::write(&temporary, contents).and_then(|()| std::fs::rename(&temporary, path));
    result.map_err(|error| {
        let _ = std::fs::remove_file(&temporary);
        eprintln!("error: cannot write `{}`: {error}", path.display());
        Failure
    })
}
