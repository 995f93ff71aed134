//! The embedding API runs on the execution path of `ppl run`: its estimates are the same bits.

use ppl::run::{Output, RunOptions, Session};

const CONE: &str = include_str!("../examples/cone.ppl");
const OBJECTIVE: &str = "iwelbo(cone(), guide(mu_iw, log_sigma_iw), obs, 5)";

#[test]
fn value_and_grad_is_the_first_grad_commands_sample() {
    let program = ppl::compile(CONE).expect("the example checks");
    let mut objective = program.objective(OBJECTIVE).expect("it compiles");
    let params = program.param_values();
    let mut gradient = vec![0.0; params.len()];
    let seed = 7;
    objective.value_and_grad(&params, seed, 0, &mut gradient).expect("finite");

    // One sample of the first `grad` of a file draws from stream 0: its mean is that sample.
    let definitions = &CONE[..CONE.find("// The objectives and their gradients").expect("the commands")];
    let source = format!("{definitions}print grad({OBJECTIVE}, samples: 1);\n");
    let analysis = ppl::check_source("cone.ppl", &source);
    assert!(!analysis.has_errors());
    let options = RunOptions { seed: Some(seed), ..Default::default() };
    let mut session = Session::new(&analysis, options).expect("it runs");
    let mut reported = Vec::new();
    session
        .run_commands(&mut |output| {
            if let Output::Grad { params, .. } = output {
                reported = params;
            }
        })
        .expect("the command runs");
    let names: Vec<(String, usize)> = program.params();
    let mut offset = 0;
    for (name, len) in names {
        let mine = &gradient[offset..offset + len];
        match reported.iter().find(|param| param.name == name) {
            Some(param) => {
                let means: Vec<f64> = param.statistics.iter().map(|statistic| statistic.mean).collect();
                assert_eq!(
                    means.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    mine.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    "d/d{name}"
                );
            }
            None => assert!(mine.iter().all(|x| *x == 0.0), "{name} is not in the objective: {mine:?}"),
        }
        offset += len;
    }
    assert!(reported.len() == 2, "{reported:?}");
}

const CONJUGATE: &str = "
    gen model() { x ~ normal(0.0, 1.0); y ~ normal(x, 1.0); }
    gen guide(m: real, log_s: real) { x ~ normal(m, exp(log_s)); }
    param m: real = 0.0;
    param log_s: real = 0.0;
    data obs: {y: real} = { y: 0.0 };
";

fn observed(y: f64) -> ppl::embed::Data {
    ppl::embed::Data::Record(vec![("y".into(), ppl::embed::Data::Real(y))])
}

#[test]
fn host_data_replaces_the_programs_and_training_reads_back_its_parameters() {
    let mut program = ppl::compile_with_data(CONJUGATE, &[("obs", observed(3.0))]).expect("it checks");
    let mut steps = Vec::new();
    let training = program
        .train(
            "maximize elbo(model(), guide(m, log_s), obs) with { optimizer: adam(lr: 0.05), steps: 1500, particles: 8, seed: 4, schedule: \"cosine\" };",
            |progress| {
                steps.push(progress.step);
                std::ops::ControlFlow::Continue(())
            },
        )
        .expect("it trains");
    assert_eq!(steps, (1..=1500).collect::<Vec<_>>());
    assert_eq!(training.steps, 1500);
    // The posterior given y = 3 is N(1.5, √½).
    let m = program.param("m").expect("m")[0];
    assert!((m - 1.5).abs() < 0.05, "m = {m}");
    assert_eq!(program.param_values()[0], m);
    let fit = training.fit.expect("diagnosed");
    assert!(fit.importance.expect("k̂").k_hat < 0.5);

    // The same training as a `.ppl` file gives the same bits.
    let file = format!(
        "{}maximize elbo(model(), guide(m, log_s), obs) with {{ optimizer: adam(lr: 0.05), steps: 1500, particles: 8, seed: 4, schedule: \"cosine\" }};\n",
        CONJUGATE.replace("{ y: 0.0 }", "{ y: 3.0 }")
    );
    let analysis = ppl::check_source("c.ppl", &file);
    let mut session = Session::new(&analysis, RunOptions::default()).expect("it runs");
    session.run_commands(&mut |_| {}).expect("it trains");
    let trained: Vec<f64> = session.params().map(|(_, value)| value.as_real().expect("real")).collect();
    assert_eq!(trained, program.param_values());
}

#[test]
fn a_callback_stops_training_and_the_parameters_are_kept() {
    let mut program = ppl::compile(CONJUGATE).expect("it checks");
    let training = program
        .train("maximize elbo(model(), guide(m, log_s), obs) with { steps: 1000 }", |progress| {
            if progress.step == 10 {
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            }
        })
        .expect("it trains");
    assert_eq!((training.steps, training.stopped), (10, ppl::run::StopReason::Interrupted));
    assert!(training.fit.is_none(), "an interrupted run is saved at once, undiagnosed");
    // Without its `;`, and with a comment at the end, a command is still the whole command.
    let training = program
        .train("maximize elbo(model(), guide(m, log_s), obs) with { steps: 20 } // twenty", |_| {
            std::ops::ControlFlow::Continue(())
        })
        .expect("it trains");
    assert!(training.fit.expect("diagnosed").importance.is_ok());
    program.objective("elbo(model(), guide(m, log_s), obs) // the ELBO").expect("a comment ends the objective");
    assert_ne!(program.param("m"), Some(vec![0.0]), "ten steps moved m");
    program.set_param_values(&[0.25, -1.0]).expect("two values");
    assert_eq!(program.param("log_s"), Some(vec![-1.0]));
    assert!(program.set_param_values(&[1.0]).is_err());
}

#[test]
fn errors_are_the_diagnostics_of_ppl_run_on_what_the_host_wrote() {
    // Data that does not fit its declaration points at the declaration.
    let error =
        ppl::compile_with_data(CONJUGATE, &[("obs", ppl::embed::Data::Vec(vec![1.0; 7]))]).expect_err("a misfit");
    assert!(error.message.contains("the host's data `obs` is a vec[7], which does not fit its declaration"), "{error}");
    assert!(error.message.contains("data obs: {y: real}"), "the declaration is quoted: {error}");
    let error = ppl::compile_with_data(CONJUGATE, &[("xs", observed(1.0))]).expect_err("no such data");
    assert!(error.message.contains("declares no `data xs`"), "{error}");
    let with_count = format!("{CONJUGATE}data n: int = 0;\n");
    ppl::compile_with_data(&with_count, &[("n", ppl::embed::Data::Int(i64::MIN))])
        .expect("the smallest int is data too");
    let error = ppl::compile_with_data(CONJUGATE, &[("obs", observed(f64::NAN))]).expect_err("NaN");
    assert!(error.message.contains("NaN is not a finite number"), "{error}");

    let mut program = ppl::compile(CONJUGATE).expect("it checks");
    // A mistake in an expression is shown as the host wrote it.
    let error = program.objective("elbo(model(), gide(m, log_s), obs)").err().expect("unknown `gide`");
    assert!(error.message.contains(" │ elbo(model(), gide(m, log_s), obs)\n"), "{error}");
    assert!(error.message.contains("cannot find function `gide`") && !error.message.contains("print"), "{error}");
    let error = program
        .train(
            "maximize elbo(model(), guide(m, log_s), obs) with { stepz: 3 }",
            |_| std::ops::ControlFlow::Continue(()),
        )
        .expect_err("a typo");
    assert!(error.message.contains("<training>:1:") && error.message.contains("stepz"), "{error}");

    // A failure at run time is the diagnostic `ppl run` prints, at the choice concerned.
    let mut objective = program.objective("E { x ~ normal(m, log_s); x }").expect("it compiles");
    let mut gradient = vec![0.0; 2];
    let error = objective.value_and_grad(&[0.0, -1.0], 1, 2, &mut gradient).expect_err("a negative scale");
    assert!(error.message.contains("[E0700]"), "{error}");
    assert!(error.message.contains(" │ E { x ~ normal(m, log_s); x }\n"), "{error}");
    assert!(error.message.contains("on stream (1, 2)"), "{error}");
}

#[test]
fn a_record_parameter_is_its_leaves_for_the_host_too() {
    let source = "type Layer = { w: mat[2, 3], b: vec[2] };
        param layer: Layer = { w: uniform_init(0.5), b: zeros(2) };
        param s: real = 0.5;
        gen model(l: Layer) { y ~ mv_normal_diag(l.w @ [1.0, 2.0, 3.0] + l.b, ones(2)); }
        fn fit() { E { density(model(layer), { y: [1.0, -1.0] }) * s } }";
    let program = ppl::compile(source).expect("it checks");
    assert_eq!(program.params(), [("layer.w".to_string(), 6), ("layer.b".to_string(), 2), ("s".to_string(), 1)]);
    assert_eq!(program.param("layer.b"), Some(vec![0.0, 0.0]));
    let mut objective = program.objective("fit()").expect("it compiles");
    let params = program.param_values();
    let mut gradient = vec![0.0; params.len()];
    objective.value_and_grad(&params, 1, 0, &mut gradient).expect("finite");
    // d/db of s · log N(y; w x + b, I) is s (y − w x − b): not zero.
    assert!(gradient[6..8].iter().all(|g| *g != 0.0), "{gradient:?}");
}
