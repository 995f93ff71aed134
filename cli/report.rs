//! Command results as JSON, one object per line (`language.md` §8).

use ppl::run::{Fit, Output, Printed, Statistic};
use ppl::syntax::ast::Direction;
use serde_json::{json, Value};
use std::path::Path;

/// The JSON object of a result; `None` for what has no JSON form (the IR listing).
pub fn json(output: &Output) -> Option<String> {
    let value = match output {
        Output::Print { source, value } => json!({ "kind": "print", "source": source, "value": printed(value) }),
        Output::Estimate { source, ty, statistics, samples } => json!({
            "kind": "estimate", "source": source,
            "mean": printed(&Statistic::means(*ty, statistics)), "stderr": printed(&Statistic::stderrs(*ty, statistics)),
            "samples": samples,
        }),
        Output::Grad { source, samples, params } => {
            let params: serde_json::Map<String, Value> = params
                .iter()
                .map(|param| {
                    (param.name.clone(), json!({ "mean": printed(&param.mean()), "stderr": printed(&param.stderr()) }))
                })
                .collect();
            json!({ "kind": "grad", "source": source, "samples": samples, "params": params })
        }
        Output::Sample { source, count } => json!({ "kind": "sample", "source": source, "samples": count }),
        Output::Trace { source, index, trace } => {
            json!({ "kind": "trace", "source": source, "index": index, "trace": printed(trace) })
        }
        Output::Trained { source, direction, steps, seconds, time, objectives, params, reason, fit, .. } => {
            let kind = if *direction == Direction::Maximize { "maximize" } else { "minimize" };
            let statistic = |objective: &ppl::run::TrainedObjective| json!({ "mean": number(objective.statistic.mean), "stderr": number(objective.statistic.stderr) });
            let params: serde_json::Map<String, Value> =
                params.iter().map(|(name, value)| (name.clone(), printed(value))).collect();
            let mut report = json!({
                "kind": kind, "source": source, "steps": steps, "seconds": seconds, "time": time_json(time),
                "objective": objectives.first().map(statistic).unwrap_or(Value::Null),
                "params": params, "stopped": reason.describe(),
            });
            if let Some(fit) = fit {
                report["fit"] = fit_json(fit);
            }
            if objectives.len() > 1 {
                report["objectives"] = Value::Array(
                    objectives
                        .iter()
                        .map(|objective| {
                            let mut entry = statistic(objective);
                            entry["source"] = json!(objective.source);
                            entry
                        })
                        .collect(),
                );
            }
            report
        }
        Output::Image { .. } => return image_json(output, None),
        Output::Progress { .. } | Output::Ir { .. } => return None,
    };
    Some(value.to_string())
}

/// The JSON object of an `image` result, with the path its picture was written to (`null` if
/// it was not written).
pub fn image_json(output: &Output, path: Option<&Path>) -> Option<String> {
    let Output::Image { source, name, count, width, height, columns, rows, .. } = output else { return None };
    let path = path.map(|path| path.display().to_string());
    let value = json!({
        "kind": "image", "source": source, "name": name, "images": count, "width": width, "height": height,
        "columns": columns, "rows": rows, "path": path,
    });
    Some(value.to_string())
}

/// The text of an `image` result: where its picture was written, or (`hint`) how to write it.
pub fn image_text(shown: &str, path: Option<&Path>, hint: &str) -> String {
    match path {
        Some(path) => format!("{shown}, written to {}", path.display()),
        None => format!("{shown} (not written: {hint})"),
    }
}

/// The fit diagnostics of a training: `null` where one is missing, with the reason beside it.
pub fn fit_json(fit: &Fit) -> Value {
    let mut value = json!({ "draws": fit.draws });
    match &fit.importance {
        Ok(diagnosis) => {
            value["pareto_k"] = number(diagnosis.k_hat);
            value["pareto_k_threshold"] = number(diagnosis.k_threshold);
            value["log_evidence"] = json!({ "mean": number(diagnosis.log_mean_weight), "stderr": number(diagnosis.log_mean_weight_stderr) });
            value["effective_samples"] = number(diagnosis.effective_samples);
        }
        Err(reason) => {
            value["pareto_k"] = Value::Null;
            value["pareto_k_missing"] = json!(reason);
        }
    }
    match &fit.gradient_variance {
        Ok(params) => {
            value["gradient_variance"] =
                Value::Object(params.iter().map(|(name, variance)| (name.clone(), printed(variance))).collect());
        }
        Err(reason) => {
            value["gradient_variance"] = Value::Null;
            value["gradient_variance_missing"] = json!(reason);
        }
    }
    value
}

/// A real as a JSON number; NaN and infinities, which JSON lacks, as strings.
pub fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or_else(|| Value::String(x.to_string()), Value::Number)
}

pub fn printed(value: &Printed) -> Value {
    match value {
        Printed::Real(x) => number(*x),
        Printed::Int(n) => json!(n),
        Printed::Bool(b) => json!(b),
        Printed::Str(text) => json!(text),
        Printed::List(items) | Printed::Tuple(items) => Value::Array(items.iter().map(printed).collect()),
        Printed::Record(fields) => {
            Value::Object(fields.iter().map(|(name, field)| (name.clone(), printed(field))).collect())
        }
    }
}

/// Where a training's time went ([`ppl::run::TrainingTime`]), in seconds.
pub fn time_json(time: &ppl::run::TrainingTime) -> Value {
    json!({
        "preparation": time.preparation,
        "gradients": time.gradients,
        "gradient_passes": time.gradient_passes,
        "updates": time.updates,
    })
}
