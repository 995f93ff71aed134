//! Showing training as it runs: a progress bar on a terminal, a plain line every tenth of the
//! run otherwise, nothing with `--quiet`. Everything goes to stderr, so stdout keeps only
//! results.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ppl::run::Minibatch;

pub enum Progress {
    Quiet,
    Bar(Option<ProgressBar>),
    /// When and at which step the rate's clock started; the last step shown.
    Lines {
        started: Option<(Instant, u64)>,
        last: u64,
    },
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        if quiet {
            Progress::Quiet
        } else if std::io::stderr().is_terminal() {
            Progress::Bar(None)
        } else {
            Progress::Lines { started: None, last: 0 }
        }
    }

    /// A step finished; `minibatch` says how the objective walks through a data set, if it does.
    pub fn step(&mut self, step: u64, steps: u64, objective: f64, minibatch: Option<Minibatch>) {
        match self {
            Progress::Quiet => {}
            Progress::Bar(bar) => {
                let bar = bar.get_or_insert_with(|| new_bar(steps));
                bar.set_position(step);
                match minibatch {
                    Some(minibatch) => bar.set_message(format!("{objective:.4} · epoch {:.2}", minibatch.epochs(step))),
                    None => bar.set_message(format!("{objective:.4}")),
                }
            }
            Progress::Lines { started, last } => {
                // The first step (compiling, warming up) is not counted in the rates.
                let (since, first) = *started.get_or_insert_with(|| (Instant::now(), step));
                let every = (steps / 10).max(1);
                if step == steps || (step > first && step >= *last + every) {
                    *last = step;
                    let rate = (step - first) as f64 / since.elapsed().as_secs_f64().max(1e-9);
                    let line = format!("step {step}/{steps}: objective {objective:.6} (running average)");
                    match minibatch {
                        Some(minibatch) => eprintln!(
                            "epoch {:.2}, {line}, {:.0} rows/s",
                            minibatch.epochs(step),
                            rate * minibatch.rows_per_step as f64
                        ),
                        None => eprintln!("{line}, {rate:.0} steps/s"),
                    }
                }
            }
        }
    }

    /// Ends the current run's display (before its report is printed).
    pub fn finish(&mut self) {
        match self {
            Progress::Bar(bar) => {
                if let Some(bar) = bar.take() {
                    bar.finish_and_clear();
                }
            }
            Progress::Lines { started, last } => {
                *started = None;
                *last = 0;
            }
            Progress::Quiet => {}
        }
    }
}

fn new_bar(steps: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(steps), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} steps · objective {msg} · {per_sec} · eta {eta}",
    );
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
