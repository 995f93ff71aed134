//! What a person reads after a run: the fit diagnostics of every training (Pareto k̂, the log
//! evidence, the gradient estimator's variance), summaries of large values, and the draws of
//! `sample` as a table, a CSV file and a picture.

mod common;

use common::{conjugate, ppl, stderr, stdout, Scratch};
use serde_json::Value;

/// log p(y = 1.5) of the conjugate model: y ~ N(0, √2).
fn conjugate_log_evidence() -> f64 {
    -0.5 * (2.0 * std::f64::consts::PI * 2.0).ln() - 1.5f64.powi(2) / 4.0
}

fn json_lines(output: &std::process::Output) -> Vec<Value> {
    stdout(output).lines().map(|line| serde_json::from_str(line).expect("one JSON object per line")).collect()
}

#[test]
fn a_guide_of_the_posteriors_family_has_a_small_k_and_recovers_the_evidence() {
    let scratch = Scratch::new("fit-exact");
    let program = conjugate(
        "optimizer: adam(lr: 0.05), steps: 2000, particles: 16, seed: 1, schedule: \"cosine\", diagnostics: 4000",
    );
    let path = scratch.file("p.ppl", &program);
    let output = ppl(&["run", "--json", "--quiet", path.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let fit = &json_lines(&output)[0]["fit"];
    assert_eq!(fit["draws"], 4000);
    // The guide can be the posterior itself: the weights are nearly constant.
    let k = fit["pareto_k"].as_f64().expect("k̂");
    assert!(k < 0.3, "k̂ = {k}");
    let log_z = fit["log_evidence"]["mean"].as_f64().expect("log Z");
    let error = fit["log_evidence"]["stderr"].as_f64().expect("its error");
    assert!((log_z - conjugate_log_evidence()).abs() < 4.0 * error + 1e-3, "{log_z} ± {error}");
    assert!(fit["effective_samples"].as_f64().is_some_and(|ess| ess > 3600.0), "{fit}");
}

#[test]
fn a_guide_too_narrow_for_the_posterior_has_a_large_k() {
    let scratch = Scratch::new("fit-narrow");
    // One step from a guide far narrower than the posterior (sd e^-3 against 0.71).
    let program = conjugate("optimizer: sgd(lr: 1e-9), steps: 1, seed: 1")
        .replace("param log_s: real = 0.0", "param log_s: real = -3.0");
    let path = scratch.file("p.ppl", &program);
    let output = ppl(&["run", "--quiet", path.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let line = text.lines().find(|line| line.contains("Pareto k̂")).unwrap_or_else(|| panic!("no k̂ in {text}"));
    assert!(line.contains("> 0.67: the guide misses mass of the posterior"), "{line}");
    assert!(text.contains("fit, from 1000 draws at the trained parameters:"), "{text}");
}

#[test]
fn gradient_variance_is_the_variance_grad_measures_and_shows_what_reinforce_costs() {
    let scratch = Scratch::new("fit-variance");
    let run = |estimator: &str| {
        let program = format!(
            "{}print grad(elbo(model(), guide(m, log_s), obs), samples: 20000);\n",
            conjugate("optimizer: adam(lr: 0.05), steps: 200, particles: 8, seed: 3, diagnostics: 20000")
        )
        .replace("x ~ normal(m, exp(log_s));", &format!("x ~ normal(m, exp(log_s)) via {estimator};"));
        let path = scratch.file(&format!("{estimator}.ppl"), &program);
        let output = ppl(&["run", "--json", "--quiet", path.to_str().expect("utf-8")]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let lines = json_lines(&output);
        let variance = lines[0]["fit"]["gradient_variance"]["m"].as_f64().expect("variance of d/dm");
        // The same estimator's spread as `grad` measures it, on other streams.
        let stderr = lines[1]["params"]["m"]["stderr"].as_f64().expect("stderr of d/dm");
        let measured = stderr * stderr * 20000.0;
        assert!((variance / measured - 1.0).abs() < 0.1, "{estimator}: {variance} vs {measured}");
        variance
    };
    let (reparam, reinforce) = (run("reparam"), run("reinforce"));
    assert!(reinforce > 3.0 * reparam, "reinforce {reinforce}, reparam {reparam}");
}

#[test]
fn diagnostics_can_be_turned_off_and_say_why_they_are_missing() {
    let scratch = Scratch::new("fit-missing");
    let off = scratch.file("off.ppl", conjugate("steps: 5, diagnostics: 0"));
    let output = ppl(&["run", "--quiet", off.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!stdout(&output).contains("fit,"), "{}", stdout(&output));

    for draws in ["1", "9223372036854775807"] {
        let path = scratch.file("draws.ppl", conjugate(&format!("steps: 5, diagnostics: {draws}")));
        let output = ppl(&["run", "--quiet", path.to_str().expect("utf-8")]);
        assert_eq!(output.status.code(), Some(1), "{draws}");
        let expected = "option `diagnostics` must be 0 (none) or from 2 to 16777216 draws";
        assert!(stderr(&output).contains(expected), "{}", stderr(&output));
    }

    // The diagnostics check the program again as it was read, control characters and all.
    let form_feed = scratch.file("ff.ppl", conjugate("steps: 5").replace("param m", "\u{c}param m"));
    let output = ppl(&["run", "--quiet", "--json", form_feed.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(json_lines(&output)[0]["fit"]["pareto_k"].as_f64().is_some(), "{}", stdout(&output));

    // An objective that names no model and guide has no importance weights, but a gradient.
    let inline = "param t: real = 0.0;\nmaximize E { x ~ normal(t, 1.0); -x^2 } with { steps: 5 };\n";
    let path = scratch.file("inline.ppl", inline);
    let output = ppl(&["run", "--json", "--quiet", path.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let fit = &json_lines(&output)[0]["fit"];
    assert_eq!(fit["pareto_k"], Value::Null);
    assert_eq!(fit["pareto_k_missing"], "the objective's arguments name no model, guide and observations");
    assert!(fit["gradient_variance"]["t"].as_f64().is_some_and(|v| (v - 4.0).abs() < 1.0), "{fit}");
}

#[test]
fn fit_diagnostics_are_written_to_run_json_and_do_not_change_training() {
    let scratch = Scratch::new("fit-record");
    let with = scratch.file("with.ppl", conjugate("steps: 50, particles: 4, seed: 2"));
    let without = scratch.file("without.ppl", conjugate("steps: 50, particles: 4, seed: 2, diagnostics: 0"));
    let out = scratch.0.join("out");
    let output =
        ppl(&["run", "--quiet", "--json", "--out", out.to_str().expect("utf-8"), with.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let run: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).expect("run.json")).expect("JSON");
    let fit = &run["trainings"][0]["fit"];
    assert!(fit["pareto_k"].as_f64().is_some(), "{run}");
    assert!(fit["gradient_variance"]["log_s"].as_f64().is_some(), "{run}");
    let plain = ppl(&["run", "--quiet", "--json", without.to_str().expect("utf-8")]);
    assert_eq!(json_lines(&output)[0]["params"], json_lines(&plain)[0]["params"], "diagnosing changes no parameter");
}

#[test]
fn large_parameters_are_summarised_unless_full_and_one_sample_has_no_error() {
    let scratch = Scratch::new("fit-summary");
    let program = "param w: vec[50] = fill(50, 0.5);\n\
                   maximize E { x ~ normal(sum(w), 1.0); -x^2 } with { steps: 1, optimizer: sgd(lr: 1e-300) };\n\
                   print estimate(E { x ~ normal(1.0, 1.0); x }, samples: 1);\n";
    let path = scratch.file("w.ppl", program);
    let output = ppl(&["run", "--quiet", path.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains(
            "    w = vec[50] [0.5000, 0.5000, 0.5000, 0.5000, 0.5000, …] (min 0.5000, mean 0.5000, max 0.5000)"
        ),
        "{text}"
    );
    // Every element's gradient is 2(x − μ)·(−1) with x ~ N(μ, 1): variance 4.
    let variance = text.lines().find(|line| line.contains("gradient variance per draw")).expect("the variance");
    assert!(variance.starts_with("        gradient variance per draw: w = vec[50] ["), "{variance}");
    let mean: f64 = variance
        .split("mean ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|x| x.parse().ok())
        .expect("a mean");
    assert!((mean - 4.0).abs() < 0.6, "{variance}");
    let estimate = text.lines().find(|line| line.starts_with("estimate(")).expect("the estimate");
    assert!(estimate.ends_with(" ± n/a (1 sample)"), "{estimate}");

    let record = scratch.file("record.ppl", "print { a: zeros(2000), b: 1.5 };\n");
    let output = ppl(&["run", record.to_str().expect("utf-8")]);
    assert_eq!(
        stdout(&output),
        "{ a: zeros(2000), b: 1.5 } = {a: vec[2000] [0, 0, 0, 0, 0, …] (min 0, mean 0, max 0), b: 1.5}\n"
    );

    let full = ppl(&["run", "--quiet", "--full", path.to_str().expect("utf-8")]);
    let listed = format!("    w = [{}]", vec!["0.5"; 50].join(", "));
    assert!(stdout(&full).contains(&listed), "{}", stdout(&full));
}

#[test]
fn long_samples_show_a_table_and_out_writes_their_draws_and_picture() {
    let scratch = Scratch::new("fit-sample");
    let program = "gen q() { a ~ normal(2.0, 1.0); for i in 0..2 { b[i] ~ flip(0.25); } }\nprint sample(q(), 4000);\n";
    let path = scratch.file("q.ppl", program);
    let out = scratch.0.join("out");
    let output = ppl(&["run", "--out", out.to_str().expect("utf-8"), path.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "sample(q(), 4000):");
    assert!(lines[1..11].iter().all(|line| line.starts_with("    {a: ")), "{text}");
    assert!(lines[11].starts_with("    … 3990 more draws; each address over all 4000 draws"), "{text}");
    let row = |name: &str| -> Vec<f64> {
        let line = lines.iter().find(|line| line.trim_start().starts_with(&format!("{name} "))).expect("a row");
        line.split_whitespace().skip(1).map(|cell| cell.parse().expect("a number")).collect()
    };
    let (a, b0) = (row("a"), row("b[0]"));
    assert!((a[0] - 2.0).abs() < 0.06 && (a[1] - 1.0).abs() < 0.05 && (a[3] - 2.0).abs() < 0.08, "{a:?}");
    assert!((b0[0] - 0.25).abs() < 0.03, "{b0:?}");

    let csv = std::fs::read_to_string(out.join("samples-1.csv")).expect("the draws");
    let mut rows = csv.lines();
    assert_eq!(rows.next(), Some("a,b[0],b[1]"));
    assert_eq!(rows.count(), 4000);
    let svg = std::fs::read_to_string(out.join("samples-1.svg")).expect("the picture");
    assert!(svg.starts_with("<svg") && svg.contains("b[1]"), "{}", &svg[..200.min(svg.len())]);
    let run: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).expect("run.json")).expect("JSON");
    assert!(run["files"]["samples-1.csv"]["bytes"].as_u64() == Some(csv.len() as u64), "{run}");

    let full = ppl(&["run", "--full", path.to_str().expect("utf-8")]);
    assert_eq!(stdout(&full).lines().count(), 4001);
}

#[test]
fn the_eight_schools_guide_prints_its_k_and_shows_its_posterior_as_a_picture() {
    let scratch = Scratch::new("fit-schools");
    let out = scratch.0.join("out");
    let output = ppl(&["run", "--quiet", "--out", out.to_str().expect("utf-8"), "examples/eight_schools.ppl"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    // The mean-field guide cannot follow the funnel between tau and theta: k̂ says so.
    assert!(text.contains("        Pareto k̂ = 0.74 > 0.67: the guide misses mass of the posterior"), "{text}");
    let svg = std::fs::read_to_string(out.join("samples-1.svg")).expect("the picture");
    for address in ["mu", "tau", "theta_trans[0]"] {
        assert!(svg.lines().any(|line| line.trim() == address), "{address} is drawn");
    }
    let csv = std::fs::read_to_string(out.join("samples-1.csv")).expect("the draws");
    assert!(csv.starts_with("mu,tau,theta_trans[0],"), "{}", &csv[..80]);
}
