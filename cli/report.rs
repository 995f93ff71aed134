//! Command results as JSON, one object per line (`language.md` §8).

use ppl::run::{Fit, Output, Printed};
use ppl::syntax::ast::Direction;
use serde_json::{json, Value};

/// The JSON object of a result; `None` for what has no JSON form (the IR listing).
pub fn json(output: &Output) -> Option<String> {
    let value = match output {
        Output::Print { source, value } => json!({ "kind": "print", "source": source, "value": printed(value) }),
        Output::Estimate { source, mean, stderr, samples } => json!({
            "kind": "estimate", "source": source, "mean": number(*mean), "stderr": number(*stderr), "samples": samples,
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
        Output::Trained { source, direction, steps, seconds, objectives, params, reason, fit, .. } => {
            let kind = if *direction == Direction::Maximize { "maximize" } else { "minimize" };
            let statistic = |objective: &ppl::run::TrainedObjective| json!({ "mean": number(objective.statistic.mean), "stderr": number(objective.statistic.stderr) });
            let params: serde_json::Map<String, Value> =
                params.iter().map(|(name, value)| (name.clone(), printed(value))).collect();
            let mut report = json!({
                "kind": kind, "source": source, "steps": steps, "seconds": seconds,
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
        Output::Progress { .. } | Output::Ir { .. } => return None,
    };
    Some(value.to_string())
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
