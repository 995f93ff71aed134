//! Embedding `ppl` in a Rust program: compile a source string once, then call an objective's
//! value and gradient on flat parameter buffers, as often as needed, without allocating.
//!
//! ```
//! let source = "
//!     gen model() { x ~ normal(0.0, 1.0); y ~ normal(x, 1.0); }
//!     gen guide(m: real, log_s: real) { x ~ normal(m, exp(log_s)); }
//!     param m: real = 0.0;
//!     param log_s: real = 0.0;
//!     data obs = { y: 1.5 };
//! ";
//! let program = ppl::compile(source).expect("the program checks");
//! let mut objective = program.objective("elbo(model(), guide(m, log_s), obs)").expect("it compiles");
//! let mut params = program.initial_params(); // [m, log_s], flattened in declaration order
//! let mut gradient = vec![0.0; params.len()];
//! for step in 0..200 {
//!     let elbo = objective.value_and_grad(&params, 1, step, &mut gradient).expect("finite");
//!     assert!(elbo.is_finite());
//!     for (p, g) in params.iter_mut().zip(&gradient) {
//!         *p += 0.05 * g; // gradient ascent on the ELBO
//!     }
//! }
//! assert!((params[0] - 0.75).abs() < 0.2); // the posterior mean is y/2
//! ```

use crate::codegen;
use crate::diagnostics::{ColorChoice, Diagnostic};
use crate::interp::RuntimeValue;
use crate::run::execute::{Kernel, Worker};
use crate::run::{RunOptions, Session};

/// A checked program, ready to compile objectives against.
#[derive(Debug)]
pub struct Program {
    source: String,
    params: Vec<(String, RuntimeValue)>,
}

/// Why compiling or calling failed: the rendered diagnostics, as `ppl check` prints them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub message: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Parses and checks `source` and computes its parameters' initial values.
pub fn compile(source: &str) -> Result<Program, Error> {
    let analysis = crate::check_source("<program>", source);
    if analysis.has_errors() {
        return Err(Error { message: analysis.render_diagnostics(ColorChoice::Never) });
    }
    let params = crate::with_large_stack(|| {
        Session::new(&analysis, RunOptions::default())
            .map(|session| session.params().map(|(name, value)| (name.to_string(), value)).collect())
    })
    .map_err(|diagnostic| render(&diagnostic, &analysis))?;
    Ok(Program { source: source.to_string(), params })
}

fn render(diagnostic: &Diagnostic, analysis: &crate::Analysis) -> Error {
    Error { message: crate::diagnostics::render(diagnostic, &analysis.sources, ColorChoice::Never) }
}

impl Program {
    /// Every parameter's name and number of elements, in the order of the flat buffers.
    pub fn params(&self) -> Vec<(String, usize)> {
        self.params.iter().map(|(name, value)| (name.clone(), flat_len(value))).collect()
    }

    /// The parameters' initial values, flattened in declaration order (matrices row-major).
    pub fn initial_params(&self) -> Vec<f64> {
        self.params.iter().flat_map(|(_, value)| flat(value)).collect()
    }

    /// Compiles the estimate `expression` (written against the program's definitions, e.g.
    /// `elbo(model(), guide(m), obs)`) to native value-and-gradient code.
    pub fn objective(&self, expression: &str) -> Result<Objective, Error> {
        let command = format!("print grad({expression});\n");
        let analysis = crate::check_sources(&[("<program>", &self.source), ("<objective>", &command)]);
        if analysis.has_errors() {
            return Err(Error { message: analysis.render_diagnostics(ColorChoice::Never) });
        }
        let estimator = crate::with_large_stack(|| {
            let session = Session::new(&analysis, RunOptions::default())?;
            session.compile_objectives()
        })
        .map_err(|diagnostic| render(&diagnostic, &analysis))?
        .into_iter()
        .next()
        .map(|(_, estimator)| estimator)
        .ok_or_else(|| Error { message: format!("`{expression}` is not an estimate") })?;
        let native = codegen::compile(&estimator.reverse).map_err(|error| Error { message: error.to_string() })?;
        let shapes: Vec<RuntimeValue> = self.params.iter().map(|(_, value)| value.clone()).collect();
        let wrt = estimator.wrt[..shapes.len()].to_vec();
        let kernel = Kernel::new(estimator.reverse, Some(native));
        let worker = kernel.worker();
        Ok(Objective { kernel, worker, wrt, shapes })
    }
}

/// A compiled objective with its worker memory: not shared between threads (compile one per
/// thread, or clone the program and compile again). It runs on the path every `ppl` command
/// runs on.
pub struct Objective {
    kernel: Kernel,
    worker: Worker,
    wrt: Vec<bool>,
    shapes: Vec<RuntimeValue>,
}

impl Objective {
    /// One unbiased estimate of the objective and of its gradient with respect to every
    /// parameter (zero for those it does not depend on), on the random stream `(seed, stream)`.
    /// `params` and `gradient` are flat, as [`Program::initial_params`] lays them out. Calls
    /// allocate nothing.
    pub fn value_and_grad(
        &mut self,
        params: &[f64],
        seed: u64,
        stream: u64,
        gradient: &mut [f64],
    ) -> Result<f64, Error> {
        let total: usize = self.shapes.iter().map(flat_len).sum();
        if params.len() != total || gradient.len() != total {
            return Err(Error { message: format!("expected {total} parameters and gradient elements") });
        }
        self.kernel.load_params(&mut self.worker, params);
        if !self.kernel.call(&mut self.worker, seed, stream) {
            return Err(Error {
                message: "the estimate failed (a distribution argument outside its domain, an index out of bounds, or an overflow); `ppl run` on the same program reports where".into(),
            });
        }
        // The objective, then the gradient of each differentiated parameter in order.
        let reals = self.kernel.reals(&self.worker);
        let value = reals.first().copied().unwrap_or(f64::NAN);
        let mut results = reals.get(1..).unwrap_or(&[]);
        let mut offset = 0;
        for (shape, differentiated) in self.shapes.iter().zip(&self.wrt) {
            let len = flat_len(shape);
            let slice = &mut gradient[offset..offset + len];
            match (*differentiated, results.split_at_checked(len)) {
                (true, Some((values, rest))) => {
                    slice.copy_from_slice(values);
                    results = rest;
                }
                _ => slice.fill(0.0),
            }
            offset += len;
        }
        Ok(value)
    }
}

fn flat_len(value: &RuntimeValue) -> usize {
    match value {
        RuntimeValue::Vec(data) | RuntimeValue::Mat { data, .. } => data.len(),
        _ => 1,
    }
}

fn flat(value: &RuntimeValue) -> Vec<f64> {
    match value {
        RuntimeValue::Vec(data) | RuntimeValue::Mat { data, .. } => data.clone(),
        RuntimeValue::Real(x) => vec![*x],
        RuntimeValue::Int(n) => vec![*n as f64],
        _ => vec![0.0],
    }
}
