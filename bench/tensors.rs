//! `bench tensors`: the figures of the tensor issue for the paper's VAE (Table 1, as
//! `examples/vae.ppl` writes it), measured through the embedding API on the path every command
//! runs on, each the median of `--runs` calls: the compile time of one image's ELBO gradient,
//! one image's gradient and 64 of them one at a time; then, with products of two matrices in
//! f64 and in f32, the gradient of a minibatch of 64 and of 1024 test images
//! (`mean_over(…, batch: B)`) and a training step's 64 particles of one image, on one thread,
//! and the minibatch of 1024 with its largest products on every core; a whole training step
//! (gradient in two parts on every core, then Adam) of a minibatch of 64 and of 1024, as `ppl
//! run` takes it, and the gradient alone within it (the step's calls and the pass that adds
//! their parts, the median of the warm steps); then the matrix product at the VAE's shapes beside the `gemm` crate called
//! directly.
//! NumPyro's figures on the same machine come from `bench/numpyro_vae.py`.

use std::process::ExitCode;

use ppl::embed::Precision;

use super::{median, ms};

const VAE: &str = include_str!("../examples/vae.ppl");

pub fn run(runs: usize) -> ExitCode {
    match figures(runs) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

/// The example's definitions (everything before its training), its data read from this
/// checkout's `../shared/data`, and an image (of zeros: compiling must not wait for the data set).
fn definitions() -> Result<String, String> {
    let end = VAE.find("\nmaximize").ok_or("examples/vae.ppl has no `maximize`")?;
    let shared = format!("{}/../shared/", env!("CARGO_MANIFEST_DIR"));
    Ok(format!("{}\ndata image: vec[784] = zeros(784);\n", VAE[..end].replace("../../shared/", &shared)))
}

fn figures(runs: usize) -> Result<(), String> {
    let source = definitions()?;
    let mut program = ppl::compile(&source).map_err(|error| error.to_string())?;
    let params = program.param_values();
    let mut gradient = vec![0.0; params.len()];
    println!("the VAE of the paper's Table 1 ({} parameters), one thread, median of {runs}:", params.len());

    let compile = median(runs, || {
        std::hint::black_box(program.objective("image_elbo(image)").is_ok());
    });
    println!("  compile one image's ELBO gradient:        {:>9.1} ms", ms(compile));

    let mut objective = program.objective("image_elbo(image)").map_err(|error| error.to_string())?;
    let mut stream = 0;
    let time = median(runs, || {
        stream += 1;
        std::hint::black_box(objective.value_and_grad(&params, 1, stream, &mut gradient).is_ok());
    });
    println!("  {:<41} {:>9.3} ms", "gradient of one image's ELBO:", ms(time));
    // A training step's 64 particles of one image one call at a time, as they ran before
    // they were batched (`objective_with_particles` below runs them as training does).
    let time = median(runs, || {
        for _ in 0..64 {
            stream += 1;
            std::hint::black_box(objective.value_and_grad(&params, 1, stream, &mut gradient).is_ok());
        }
    });
    println!("  {:<41} {:>9.3} ms", "64 particles of one image, one at a time:", ms(time));

    // A training step of one minibatch runs on the calling thread and lends it the other
    // cores for its largest products; so does the last figure of each precision.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().map_err(|error| error.to_string())?;
    let pool = std::sync::Arc::new(pool);
    for (precision, name) in [(Precision::Double, "f64"), (Precision::Single, "f32")] {
        program.set_precision(precision);
        println!("  products of two matrices in {name}:");
        for (what, expression, particles, lent) in [
            ("gradient of a minibatch of 64 images:", "mean_over(test, image_elbo, batch: 64)", 1, false),
            ("gradient of a minibatch of 1024 images:", "mean_over(test, image_elbo, batch: 1024)", 1, false),
            ("64 particles of one image's ELBO:", "image_elbo(image)", 64, false),
            ("1024 images, products on every core:", "mean_over(test, image_elbo, batch: 1024)", 1, true),
        ] {
            let mut objective =
                program.objective_with_particles(expression, particles).map_err(|error| error.to_string())?;
            let mut call = || {
                stream += u64::from(particles);
                std::hint::black_box(objective.value_and_grad(&params, 1, stream, &mut gradient).is_ok());
            };
            let time = match lent {
                true => ppl_runtime::linalg::lend_threads(&pool, || median(runs, &mut call)),
                false => median(runs, &mut call),
            };
            println!("    {what:<39} {:>9.3} ms", ms(time));
        }
        for (what, batch, steps) in [
            ("training step, minibatch of 64, every core:", 64, 101),
            ("training step, minibatch of 1024, every core:", 1024, 41),
        ] {
            let (time, warm) = training_step(&source, precision, batch, steps)?;
            println!("    {what:<39} {:>9.3} ms", ms(time));
            // The gradient alone, as training computes it on every core: the parts' calls and
            // the pass that adds them, the median of the warm steps as NumPyro's figure is the
            // median of its warm calls.
            let median_of = |seconds: fn(&ppl::run::TrainingTime) -> f64| {
                let mut values: Vec<f64> = warm.iter().map(seconds).collect();
                values.sort_by(f64::total_cmp);
                values.get(values.len() / 2).map_or(f64::NAN, |median| median * 1e3)
            };
            let gradient = format!("gradient of {batch} images, every core:");
            println!("    {gradient:<39} {:>9.3} ms", median_of(|step| step.gradients + step.gradient_passes));
            println!(
                "      (a warm step's medians: the objective's calls {:.3} ms, the pass over their gradient {:.3} ms, Adam {:.3} ms)",
                median_of(|step| step.gradients),
                median_of(|step| step.gradient_passes),
                median_of(|step| step.updates)
            );
        }
    }
    matrix_products(runs);
    Ok(())
}

/// The median step of a training (`maximize`, Adam) on minibatches of `batch` test images, as
/// `ppl run` takes it: a minibatch in two parts on every core, then the step's passes over the
/// gradient. Steps are timed between the progress reports training makes after each; the first,
/// which also decides whether steps use every core, is left out. Also where each warm step's
/// time went, as the reports tell it: the steps after the first two, which are cold as
/// NumPyro's first call is (the first runs on one thread, the second is each thread's first
/// call).
fn training_step(
    definitions: &str,
    precision: Precision,
    batch: u32,
    steps: u64,
) -> Result<(std::time::Duration, Vec<ppl::run::TrainingTime>), String> {
    let source = format!(
        "{definitions}\nmaximize mean_over(test, image_elbo, batch: {batch}) \
         with {{ optimizer: adam(lr: 0.001), steps: {steps}, diagnostics: 0 }};\n"
    );
    let analysis = ppl::check_source("vae.ppl", &source);
    if analysis.has_errors() {
        return Err(analysis.render_diagnostics(ppl::diagnostics::ColorChoice::Never));
    }
    let options = ppl::run::RunOptions { precision: Some(precision), ..Default::default() };
    let mut session = ppl::run::Session::new(&analysis, options).map_err(|error| error.message.clone())?;
    let mut reports = Vec::with_capacity(steps as usize);
    session
        .run_commands(&mut |output| {
            if let ppl::run::Output::Progress { time, .. } = output {
                reports.push((std::time::Instant::now(), time));
            }
        })
        .map_err(|error| error.message.clone())?;
    let mut durations: Vec<std::time::Duration> = reports.windows(2).map(|pair| pair[1].0 - pair[0].0).collect();
    durations.sort();
    // Each report's time is the training's so far: a step's own is the difference.
    let warm = reports.windows(2).skip(1).map(|pair| {
        let (before, after) = (pair[0].1, pair[1].1);
        ppl::run::TrainingTime {
            preparation: 0.0,
            gradients: after.gradients - before.gradients,
            gradient_passes: after.gradient_passes - before.gradient_passes,
            updates: after.updates - before.updates,
        }
    });
    let warm: Vec<ppl::run::TrainingTime> = warm.collect();
    match durations.get(durations.len() / 2) {
        Some(median) if !warm.is_empty() => Ok((*median, warm)),
        _ => Err("the training took too few steps".to_string()),
    }
}

/// `ppl_runtime::matmul` at the VAE's layer shapes (a minibatch of 64 through each layer)
/// beside the same product by `gemm` directly: the kernel's share of the crate's throughput.
fn matrix_products(runs: usize) {
    println!("  matrix products (ppl's kernel beside gemm directly):");
    for (m, n, p) in [(64, 784, 200), (64, 200, 20), (64, 10, 200), (64, 200, 784), (200, 784, 1)] {
        let a: Vec<f64> = (0..m * n).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..n * p).map(|i| (i as f64 * 0.11).cos()).collect();
        let mut out = vec![0.0; m * p];
        let ours = median(runs, || ppl_runtime::matmul(&a, &b, &mut out, m, n, p));
        let direct = median(runs, || {
            // SAFETY: row-major slices of exactly these shapes; `out` is written only.
            unsafe {
                gemm::gemm(
                    m,
                    p,
                    n,
                    out.as_mut_ptr(),
                    1,
                    p as isize,
                    false,
                    a.as_ptr(),
                    1,
                    n as isize,
                    b.as_ptr(),
                    1,
                    p as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                )
            };
        });
        let flops = 2.0 * (m * n * p) as f64;
        println!(
            "    {m:>4} × {n:>3} · {n:>3} × {p:>3}: {:>7.1} GFLOP/s, gemm directly {:>7.1} GFLOP/s ({:.0}%)",
            flops / ours.as_secs_f64() / 1e9,
            flops / direct.as_secs_f64() / 1e9,
            100.0 * direct.as_secs_f64() / ours.as_secs_f64()
        );
    }
}
