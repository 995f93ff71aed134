//! Training a model from a Rust program: the eight schools model of `eight_schools.ppl` with
//! the observations passed in from Rust, trained by the language's own `maximize` with a
//! progress callback, then the trained parameters and the fit diagnostics read back.
//!
//! Run with `cargo run --release --example embed_train`.

use std::ops::ControlFlow;

use ppl::embed::Data;

const SOURCE: &str = include_str!("eight_schools.ppl");

fn main() -> Result<(), ppl::embed::Error> {
    // Observations from the host program replace the file's `data obs`.
    let effects = vec![28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0];
    let observations = Data::Record(vec![("y".into(), Data::Vec(effects))]);
    let mut program = ppl::compile_with_data(SOURCE, &[("obs", observations)])?;

    let training = program.train(
        "maximize elbo(schools(), guide(loc, log_scale), obs) \
         with { optimizer: adam(lr: 0.01), steps: 5000, particles: 16, seed: 1 }",
        |progress| {
            if progress.step % 1000 == 0 {
                println!("step {:>4}: ELBO ≈ {:.3}", progress.step, progress.objective);
            }
            ControlFlow::Continue(())
        },
    )?;
    println!("{} after {} steps in {:.2} s", training.stopped.describe(), training.steps, training.seconds);

    let loc = program.param("loc").unwrap_or_default();
    let log_scale = program.param("log_scale").unwrap_or_default();
    println!("mu  ~ normal({:.3}, {:.3})", loc[0], log_scale[0].exp());
    println!("tau ~ lognormal({:.3}, {:.3})", loc[1], log_scale[1].exp());
    if let Some(Ok(diagnosis)) = training.fit.map(|fit| fit.importance) {
        println!("Pareto k̂ = {:.2} (reliable below {:.2})", diagnosis.k_hat, diagnosis.k_threshold);
    }
    Ok(())
}
