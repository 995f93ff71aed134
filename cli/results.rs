//! Training results on disk (`--out DIR`) and resuming from them (`--resume DIR`).
//!
//! - `params.json`: the parameters' values, `{"mu": [0.1, 0.2], …}`;
//! - `trace.csv`: one row per step: `command,step,objective,running_objective,gradient_norm,learning_rate`;
//! - `loss.svg`: the running objective against the step, one curve per training command;
//! - `samples-K.csv` and `samples-K.svg`: the draws of the K-th `sample` command, one column
//!   per address element, and a picture of their marginals and pairs;
//! - `NAME.png`: the picture of each `print image("NAME", …)`, written as soon as it is drawn;
//! - `run.json`: the command line, seed, versions, timings, and each training's optimizer
//!   state, from which `--resume` continues.
//!
//! The files are written as one set. Each goes to a temporary file of an unpredictable name,
//! created exclusively (never through a planted symlink), flushed to disk and renamed over the
//! old one; `run.json` comes last and records the generation of the set and the length and
//! checksum of each other file, so a crash or a full disk part-way leaves a set that `--resume`
//! recognises as mixed and refuses, never one it would silently continue from.

use std::path::Path;

use crate::draws::Draws;
use crate::pictures::{draws_csv, draws_svg};
use plotters::prelude::*;
use ppl::run::{OptimizerState, Output, Printed};
use serde_json::{json, Value};

/// One training step as `trace.csv` records it.
pub struct StepRow {
    pub command: usize,
    pub step: u64,
    pub objective: f64,
    pub running: f64,
    pub gradient_norm: f64,
    pub learning_rate: f64,
}

/// What a run has produced so far, to be written to `--out`.
#[derive(Default)]
pub struct Record {
    pub rows: Vec<StepRow>,
    pub trainings: Vec<Value>,
    /// Training commands finished so far.
    pub trained: usize,
    /// Whether one was stopped by Ctrl-C.
    pub interrupted: bool,
    /// Whether the record is to be written (`--out`): only then does it keep the draws of
    /// `sample` commands and each training's optimizer state (two numbers per weight of a
    /// network).
    pub writing: bool,
    pub draws: Vec<Draws>,
    /// The pictures of `image` results written so far: each file's name and fingerprint.
    pub pictures: Vec<(String, Value)>,
}

impl Record {
    pub fn observe(&mut self, output: &Output) {
        match output {
            Output::Sample { source, .. } if self.writing => {
                self.draws.push(Draws::new(source, true));
            }
            Output::Trace { trace, .. } if self.writing => {
                if let Some(draws) = self.draws.last_mut() {
                    draws.add(trace);
                }
            }
            Output::Progress { step, objective, value, gradient_norm, learning_rate, .. } => self.rows.push(StepRow {
                command: self.trained,
                step: *step,
                objective: *value,
                running: *objective,
                gradient_norm: *gradient_norm,
                learning_rate: *learning_rate,
            }),
            Output::Trained {
                source,
                steps,
                skipped,
                seconds,
                time,
                objectives,
                reason,
                optimizers,
                seed,
                fit,
                ..
            } => {
                self.trained += 1;
                self.interrupted |= *reason == ppl::run::StopReason::Interrupted;
                if !self.writing {
                    return;
                }
                self.trainings.push(json!({
                    "source": source,
                    "steps": steps,
                    "skipped": skipped,
                    "seconds": seconds,
                    "time": crate::report::time_json(time),
                    "stopped": reason.describe(),
                    "seed": seed,
                    "objectives": objectives.iter().map(|objective| json!({
                        "source": objective.source,
                        "mean": crate::report::number(objective.statistic.mean),
                        "stderr": crate::report::number(objective.statistic.stderr),
                    })).collect::<Vec<_>>(),
                    "optimizers": optimizers.iter().map(optimizer_json).collect::<Vec<_>>(),
                    "fit": fit.as_ref().map_or(Value::Null, crate::report::fit_json),
                }));
            }
            _ => {}
        }
    }

    /// Writes the picture of an `image` result into `dir` as `NAME.png` at once (atomically, as
    /// every result file is), to be listed in `run.json` with the others; returns its path.
    pub fn picture(&mut self, dir: &Path, name: &str, png: &[u8]) -> Result<std::path::PathBuf, String> {
        let file = format!("{name}.png");
        let path = dir.join(&file);
        crate::files::write_atomically(&path, png)?;
        self.pictures.retain(|(written, _)| *written != file);
        self.pictures.push((file, fingerprint(png)));
        Ok(path)
    }

    /// Writes every file into `dir` (created if needed), `run.json` last.
    pub fn write(&self, dir: &Path, params: &[(String, Printed)], run: Value) -> Result<(), String> {
        prepare(dir)?;
        let params_in_place = params;
        let params: serde_json::Map<String, Value> =
            params.iter().map(|(name, value)| (name.clone(), crate::report::printed(value))).collect();
        let mut csv = String::from("command,step,objective,running_objective,gradient_norm,learning_rate\n");
        for row in &self.rows {
            csv.push_str(&format!(
                "{},{},{:?},{:?},{:?},{:?}\n",
                row.command, row.step, row.objective, row.running, row.gradient_norm, row.learning_rate
            ));
        }
        let mut files: Vec<(String, Vec<u8>)> = vec![
            ("params.json".to_string(), pretty(&Value::Object(params)).into_bytes()),
            ("trace.csv".to_string(), csv.into_bytes()),
            ("loss.svg".to_string(), self.plot()?.into_bytes()),
        ];
        // Each vector and matrix parameter also as NumPy reads it (`numpy.load("DIR/w.npy")`).
        for (name, value) in params_in_place {
            if let Some(array) = npy(value) {
                files.push((format!("{name}.npy"), array));
            }
        }
        for (k, draws) in self.draws.iter().enumerate() {
            files.push((format!("samples-{}.csv", k + 1), draws_csv(draws.columns()).into_bytes()));
            files.push((format!("samples-{}.svg", k + 1), draws_svg(draws.source(), draws.columns())?.into_bytes()));
        }
        let generation = previous_generation(dir).map_or(1, |previous| previous + 1);
        let mut manifest = serde_json::Map::new();
        for (name, contents) in &files {
            crate::files::write_atomically(&dir.join(name), contents)?;
            manifest.insert(name.clone(), fingerprint(contents));
        }
        for (name, fingerprint) in &self.pictures {
            manifest.insert(name.clone(), fingerprint.clone());
        }
        let mut run = run;
        run["trainings"] = Value::Array(self.trainings.clone());
        run["generation"] = json!(generation);
        run["files"] = Value::Object(manifest);
        crate::files::write_atomically(&dir.join("run.json"), pretty(&run))
    }

    /// The running objective of each training command against the step, as SVG.
    fn plot(&self) -> Result<String, String> {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (800, 500)).into_drawing_area();
            root.fill(&WHITE).map_err(|error| error.to_string())?;
            let finite: Vec<&StepRow> = self.rows.iter().filter(|row| row.running.is_finite()).collect();
            let steps = finite.iter().map(|row| row.step).max().unwrap_or(1).max(1);
            let (mut low, mut high) = finite.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), row| {
                (low.min(row.running), high.max(row.running))
            });
            if !low.is_finite() {
                (low, high) = (0.0, 1.0);
            }
            let margin = ((high - low) * 0.05).max(1e-9);
            let mut chart = ChartBuilder::on(&root)
                .caption("objective (running average) by step", ("sans-serif", 20))
                .margin(15)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .build_cartesian_2d(0..steps, (low - margin)..(high + margin))
                .map_err(|error| error.to_string())?;
            chart.configure_mesh().x_desc("step").y_desc("objective").draw().map_err(|error| error.to_string())?;
            let commands = self.rows.iter().map(|row| row.command).max().map_or(0, |last| last + 1);
            for command in 0..commands {
                let color = Palette99::pick(command).to_rgba();
                let points = finite.iter().filter(|row| row.command == command).map(|row| (row.step, row.running));
                chart
                    .draw_series(LineSeries::new(points, color.stroke_width(2)))
                    .map_err(|error| error.to_string())?
                    .label(format!("training {}", command + 1))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            }
            if commands > 1 {
                chart.configure_series_labels().border_style(BLACK).draw().map_err(|error| error.to_string())?;
            }
            root.present().map_err(|error| error.to_string())?;
        }
        Ok(svg)
    }
}

fn optimizer_json(state: &OptimizerState) -> Value {
    let buffers: serde_json::Map<String, Value> =
        state.buffers.iter().map(|(name, buffer)| (name.clone(), json!(buffer))).collect();
    json!({ "steps_taken": state.steps_taken, "buffers": buffers })
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    text.push('\n');
    text
}

/// Makes sure results can be written to `dir` (creating it if needed) before any work is done:
/// a file in the way or a folder without write permission is reported at once.
pub fn prepare(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|error| format!("cannot create `{}`: {error}", dir.display()))?;
    tempfile::Builder::new()
        .prefix(".ppl-write-test-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|error| format!("cannot write in `{}`: {error}", dir.display()))
}

/// A file's length and 64-bit FNV-1a checksum, as `run.json` records them.
/// A vector or matrix of reals as a NumPy `.npy` file (format 1.0, little-endian `f64`, C order);
/// `None` for other values.
fn npy(value: &Printed) -> Option<Vec<u8>> {
    let real = |item: &Printed| match item {
        Printed::Real(x) => Some(*x),
        _ => None,
    };
    let (shape, values) = match value {
        Printed::List(rows) if rows.iter().all(|row| matches!(row, Printed::List(_))) && !rows.is_empty() => {
            let rows: Vec<&Vec<Printed>> =
                rows.iter().filter_map(|row| if let Printed::List(row) = row { Some(row) } else { None }).collect();
            let cols = rows[0].len();
            if rows.iter().any(|row| row.len() != cols) {
                return None;
            }
            let values = rows.iter().flat_map(|row| row.iter().map(real)).collect::<Option<Vec<f64>>>()?;
            (format!("({}, {cols})", rows.len()), values)
        }
        Printed::List(items) => (format!("({},)", items.len()), items.iter().map(real).collect::<Option<Vec<f64>>>()?),
        _ => return None,
    };
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
    // The magic, version and length take 10 bytes; the header ends in a newline and pads the
    // whole preamble to a multiple of 64 bytes.
    let padded = (10 + header.len() + 1).div_ceil(64) * 64;
    header.push_str(&" ".repeat(padded - 10 - header.len() - 1));
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend(u16::try_from(header.len()).ok()?.to_le_bytes());
    bytes.extend(header.as_bytes());
    for value in values {
        bytes.extend(value.to_le_bytes());
    }
    Some(bytes)
}

fn fingerprint(bytes: &[u8]) -> Value {
    let checksum = bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3));
    json!({ "bytes": bytes.len(), "fnv1a64": format!("{checksum:016x}") })
}

/// The generation of the set in `dir`, if it holds one.
fn previous_generation(dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("run.json")).ok()?;
    serde_json::from_str::<Value>(&text).ok()?["generation"].as_u64()
}

/// Reads the parameters and the first training's optimizer states saved in `dir`.
pub fn load(dir: &Path) -> Result<ppl::run::Resume, String> {
    let read = |name: &str| -> Result<Value, String> {
        let path = dir.join(name);
        let text =
            std::fs::read_to_string(&path).map_err(|error| format!("cannot read `{}`: {error}", path.display()))?;
        serde_json::from_str(&text).map_err(|error| format!("`{}` is not valid JSON: {error}", path.display()))
    };
    let run = read("run.json")?;
    // The set must be the one `run.json` describes, whole.
    let Some(files) = run["files"].as_object() else {
        return Err(format!(
            "`{}` lists no result files: it was not written by a finished save",
            dir.join("run.json").display()
        ));
    };
    for name in ["params.json", "trace.csv", "loss.svg"] {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|error| format!("cannot read `{}`: {error}", path.display()))?;
        if files.get(name) != Some(&fingerprint(&bytes)) {
            return Err(format!(
                "`{}` does not belong with `run.json` (generation {}): the save was interrupted or the files were changed",
                path.display(),
                run["generation"]
            ));
        }
    }
    let params = read("params.json")?;
    let Value::Object(params) = params else { return Err("params.json must hold an object".into()) };
    let mut resume = ppl::run::Resume { exact: true, ..Default::default() };
    for (name, value) in params {
        let value =
            runtime_value(&value).ok_or_else(|| format!("params.json: `{name}` is not a number, vector or matrix"))?;
        resume.params.push((name, value));
    }
    resume.steps = run["trainings"][0]["steps"].as_u64();
    if let Some(optimizers) = run["trainings"][0]["optimizers"].as_array() {
        for optimizer in optimizers {
            let steps_taken = optimizer["steps_taken"].as_u64().ok_or("run.json: an optimizer has no step count")?;
            let mut buffers = Vec::new();
            if let Some(map) = optimizer["buffers"].as_object() {
                for (name, buffer) in map {
                    let buffer: Vec<Vec<f64>> = serde_json::from_value(buffer.clone())
                        .map_err(|error| format!("run.json: optimizer buffer `{name}`: {error}"))?;
                    buffers.push((name.clone(), buffer));
                }
            }
            resume.optimizers.push(OptimizerState { steps_taken, buffers });
        }
    }
    Ok(resume)
}

fn runtime_value(value: &Value) -> Option<ppl::interp::RuntimeValue> {
    use ppl::interp::RuntimeValue;
    match value {
        Value::Number(number) => number.as_f64().map(RuntimeValue::Real),
        Value::Array(items) if items.iter().all(Value::is_number) => {
            Some(RuntimeValue::Vec(items.iter().filter_map(Value::as_f64).collect()))
        }
        Value::Array(rows) => {
            let rows: Vec<Vec<f64>> = rows
                .iter()
                .map(|row| row.as_array().map(|row| row.iter().filter_map(Value::as_f64).collect()))
                .collect::<Option<_>>()?;
            let cols = rows.first().map_or(0, Vec::len);
            Some(RuntimeValue::Mat { rows: rows.len(), cols, data: rows.concat() })
        }
        _ => None,
    }
}
