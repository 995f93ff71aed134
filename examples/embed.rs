//! Embedding `ppl` in a Rust program: compile the noisy cone and its guide from source, then
//! train the guide with your own loop, calling the compiled ELBO's value and gradient.
//!
//! Run with `cargo run --release --example embed`.

const SOURCE: &str = include_str!("cone.ppl");

fn main() -> Result<(), ppl::embed::Error> {
    let program = ppl::compile(SOURCE)?;
    let mut objective = program.objective("elbo(cone(), guide(mu, log_sigma), obs)")?;
    // The flat layout: every `param` of the program in declaration order.
    let layout = program.params();
    let mut params = program.param_values();
    let mut gradient = vec![0.0; params.len()];
    let mut total = vec![0.0; params.len()];
    let (steps, particles, learning_rate) = (5000, 64, 1e-3);
    let started = std::time::Instant::now();
    for step in 0..steps {
        total.fill(0.0);
        for particle in 0..particles {
            objective.value_and_grad(&params, 314159, step * particles + particle, &mut gradient)?;
            for (sum, g) in total.iter_mut().zip(&gradient) {
                *sum += g / particles as f64;
            }
        }
        for (p, g) in params.iter_mut().zip(&total) {
            *p += learning_rate * g;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut estimate = 0.0;
    for sample in 0..5000 {
        estimate += objective.value_and_grad(&params, 1, 1 << 40 | sample, &mut gradient)? / 5000.0;
    }
    println!("trained in {seconds:.3} s; ELBO ≈ {estimate:.3}");
    let mut offset = 0;
    for (name, len) in layout {
        println!("{name} = {:?}", &params[offset..offset + len]);
        offset += len;
    }
    Ok(())
}
