//! The `ppl` command: a thin client of the `ppl` library.
//!
//! It reads files, calls the library and prints what comes back; it decides nothing about
//! the language. Every failure is a diagnostic on stderr and exit code 1.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod draws;
mod files;
mod pictures;
mod progress;
mod repl;
mod report;
mod results;

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
        /// Show no training progress.
        #[arg(long, short)]
        quiet: bool,
        /// Print every element of large values (by default, parameters of more than 10
        /// elements and values of more than 1000 are summarised: shape, leading values, range).
        #[arg(long)]
        full: bool,
        /// Write the trained parameters, the objective's trace and plot, samples, pictures and the run's record here.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Continue training from the parameters and optimizer state saved by `--out DIR`.
        #[arg(long, value_name = "DIR")]
        resume: Option<PathBuf>,
        /// Worker threads for samples and particles (default: every core); results do not depend on it.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        threads: Option<u64>,
        /// What runs the compiled programs.
        #[arg(long, value_enum, default_value_t = BackendChoice::Jit)]
        backend: BackendChoice,
        /// Run each minibatch's rows and each training step's particles one by one instead of
        /// as one batched program (to compare: the same draws, values equal up to the rounding
        /// of sums)
        #[arg(long)]
        row_by_row: bool,
        /// The precision of products of two matrices (a batched minibatch's or particles'
        /// layers) and of trainings: f32 rounds the products' operands to f32 and sums in f32,
        /// about twice as fast, and keeps a training's optimizer state and parameters in f32;
        /// everything else stays f64. Default: f64, except in a training whose `precision`
        /// option asks for f32; given, it holds for every training too
        #[arg(long, value_enum, alias = "matmul-precision")]
        precision: Option<PrecisionChoice>,
    },
    /// Explore interactively: define models, evaluate estimates and gradients, train.
    Repl {
        /// Files whose definitions to load (and whose commands to run) first.
        files: Vec<PathBuf>,
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
    /// The Cranelift IR of each function compiled to native code.
    Clif,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendChoice {
    /// Native code compiled by Cranelift.
    Jit,
    /// The reference interpreter (bit-identical, slower).
    Interp,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PrecisionChoice {
    F64,
    F32,
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
        Command::Repl { files } => repl::run(&files, color),
        Command::Run { file, json, seed, emit, quiet, full, out, resume, threads, backend, row_by_row, precision } => {
            let flags =
                RunFlags { json, seed, emit, quiet, full, out, resume, threads, backend, row_by_row, precision };
            run(&file, flags, color)
        }
        Command::Fmt { file, check, write } => format(&file, check, write, color),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure) => ExitCode::from(1),
    }
}

/// The command failed; what went wrong has been printed.
pub struct Failure;

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

/// The options of `ppl run`.
struct RunFlags {
    json: bool,
    seed: Option<u64>,
    emit: Option<Emit>,
    quiet: bool,
    full: bool,
    out: Option<PathBuf>,
    resume: Option<PathBuf>,
    threads: Option<u64>,
    backend: BackendChoice,
    row_by_row: bool,
    precision: Option<PrecisionChoice>,
}

fn run(path: &Path, flags: RunFlags, color: ColorChoice) -> Result<(), Failure> {
    let text = read_source(path)?;
    let analysis = ppl::check_source(&path.display().to_string(), &text);
    eprint!("{}", analysis.render_diagnostics(color));
    if analysis.has_errors() {
        return Err(Failure);
    }
    let resume = match &flags.resume {
        Some(dir) => Some(results::load(dir).map_err(|message| {
            eprintln!("error: cannot resume: {message}");
            Failure
        })?),
        None => None,
    };
    // Problems with `--out` are found before any work is done, not after it.
    if let Some(dir) = &flags.out {
        results::prepare(dir).map_err(|message| {
            eprintln!("error: {message}");
            Failure
        })?;
    }
    let interrupt = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handler_flag = interrupt.clone();
    // The first Ctrl-C (or SIGTERM) stops training after the current step (and everything is
    // still written); a second one exits at once.
    let _ = ctrlc::set_handler(move || {
        if handler_flag.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
    let options = ppl::run::RunOptions {
        seed: flags.seed,
        emit_ir: flags.emit == Some(Emit::Ir),
        emit_clif: flags.emit == Some(Emit::Clif),
        backend: match flags.backend {
            BackendChoice::Jit => ppl::run::Backend::Jit,
            BackendChoice::Interp => ppl::run::Backend::Interpreter,
        },
        interrupt: Some(interrupt),
        resume,
        threads: flags.threads.map(|n| n as usize),
        row_by_row: flags.row_by_row,
        precision: flags.precision.map(|choice| match choice {
            PrecisionChoice::F64 => ppl_runtime::Precision::Double,
            PrecisionChoice::F32 => ppl_runtime::Precision::Single,
        }),
    };
    let started = std::time::Instant::now();
    let mut record = results::Record { writing: flags.out.is_some(), ..results::Record::default() };
    let mut progress = progress::Progress::new(flags.quiet);
    let mut text = draws::Text::new(flags.full, "`--full` prints every draw, `--out DIR` writes them");
    // Whether a picture could not be written (the run goes on; its exit code is then 1).
    let mut unwritten = false;
    let (outcome, params) = ppl::with_large_stack(|| {
        let mut session = match ppl::run::Session::new(&analysis, options) {
            Ok(session) => session,
            Err(diagnostic) => return (Err(diagnostic), None),
        };
        let outcome = session.run_commands(&mut |output| {
            record.observe(&output);
            match &output {
                ppl::run::Output::Progress { step, steps, objective, minibatch, .. } => {
                    progress.step(*step, *steps, *objective, *minibatch);
                    return;
                }
                ppl::run::Output::Trained { .. } => progress.finish(),
                ppl::run::Output::Image { name, png, .. } => {
                    let written = flags.out.as_ref().map(|dir| record.picture(dir, name, png)).transpose();
                    let path = written.unwrap_or_else(|message| {
                        eprintln!("error: {message}");
                        unwritten = true;
                        None
                    });
                    match flags.json {
                        true => report::image_json(&output, path.as_deref()).iter().for_each(|line| write_line(line)),
                        false => {
                            write_line(&report::image_text(&output.to_string(), path.as_deref(), "give --out DIR"))
                        }
                    }
                    return;
                }
                _ => {}
            }
            // Only as JSON does an output become JSON: a network's trained weights are
            // hundreds of thousands of numbers.
            if flags.json {
                match report::json(&output) {
                    Some(line) => write_line(&line),
                    None => eprintln!("{output}"),
                }
            } else if let Some(line) = text.show(&output) {
                write_line(&line);
            }
        });
        progress.finish();
        let params = session.params().map(|(name, value)| (name.to_string(), ppl::run::Printed::from_runtime(&value)));
        (outcome, Some(params.collect::<Vec<_>>()))
    });
    // A program that could not start has nothing to save (and must not replace earlier results).
    if let (Some(dir), Some(params)) = (&flags.out, params) {
        let run = serde_json::json!({
            "command": std::env::args().collect::<Vec<_>>(),
            "file": path.display().to_string(),
            "seed": flags.seed.unwrap_or(ppl::run::DEFAULT_SEED),
            "versions": { "ppl": env!("CARGO_PKG_VERSION") },
            "seconds": started.elapsed().as_secs_f64(),
            // How the run ended: all its commands done, stopped by Ctrl-C or SIGTERM, or
            // stopped by an error (the results are those of the last finished training).
            "ended": match (&outcome, record.interrupted) {
                (Err(_), _) => "error",
                (Ok(()), true) => "interrupted",
                (Ok(()), false) => "completed",
            },
        });
        if let Err(message) = record.write(dir, &params, run) {
            eprintln!("error: {message}");
            return Err(Failure);
        }
    }
    if let Err(diagnostic) = outcome {
        eprint!("{}", ppl::diagnostics::render(&diagnostic, &analysis.sources, color));
        return Err(Failure);
    }
    if record.interrupted {
        eprintln!("interrupted: training stopped early; the results so far are kept");
        std::process::exit(130);
    }
    if unwritten {
        return Err(Failure);
    }
    Ok(())
}

/// Prints a result line. A closed pipe (`ppl run … | head`) ends the run quietly, as it does
/// for other command-line tools; any other failure to write is an error.
pub fn write_line(line: &str) {
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
            files::write_atomically(path, &formatted).map_err(|message| {
                eprintln!("error: {message}");
                Failure
            })?;
        }
        return Ok(());
    }
    print!("{formatted}");
    Ok(())
}
