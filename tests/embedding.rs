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
