//! Diagnostics of a fit, measured after training at the trained parameters from fresh draws:
//!
//! - the Pareto k̂ of the importance weights p(x, obs) / q(x), x ~ q, of the first objective's
//!   guide `q` against its model `p` and observations `obs` (found among the objective's
//!   arguments by type: the first two generative function applications, the first record),
//!   with the importance-sampling estimate of log p(obs) (PSIS, Vehtari et al. 2024);
//! - the variance of one draw of each trained parameter's gradient estimate: what the
//!   estimators chosen with `via` cost in noise.
//!
//! Draws come from streams of their own (see [`fit_stream`]), so diagnosing a run never changes
//! what it trains to. A diagnostic that cannot be computed says why; it never fails the run.

use super::execute::{Executor, Kernel};
use super::output::{Fit, Printed};
use super::psis;
use super::{Resume, RunOptions, Session};
use crate::diagnostics::Diagnostic;
use crate::syntax::ast::{Expr, ExprKind, ItemKind};
use crate::syntax::span::Span;
use crate::types::ty::Type;

/// The draws of the fit diagnostics when a training command does not say (`diagnostics: N`).
pub const DEFAULT_DRAWS: u64 = 1000;

/// The most draws `diagnostics: N` may ask for: the log weights are kept (8 bytes each), and a
/// draw's number must fit below the purpose bits of [`fit_stream`].
pub const MOST_DRAWS: u64 = 1 << 24;

/// The second bit of a training stream marks the draws of fit diagnostics.
const FIT_STREAMS: u64 = 1 << 62;

/// The stream of draw `draw` of diagnostic `purpose` (0: importance weights; 1 + g: objective
/// g's gradient) after training command `training`.
fn fit_stream(training: u64, purpose: u64, draw: u64) -> u64 {
    super::train::TRAINING_STREAMS | FIT_STREAMS | (training << 48) | (purpose << 40) | draw
}

/// One objective of a training command, as the fit diagnostics need it.
pub(super) struct Trained<'e> {
    pub executor: &'e Executor,
    /// The number of reals of one draw of its reverse program: the objective, then the
    /// gradient of every differentiated parameter.
    pub width: usize,
    /// The parameters it trains (indices) and where each one's gradient is among those reals.
    pub params: Vec<(usize, std::ops::Range<usize>)>,
}

impl<'a> Session<'a> {
    /// The fit diagnostics after training command number `training`, whose first objective
    /// is `objective`.
    pub(super) fn fit(
        &self,
        file: usize,
        objective: &'a Expr,
        objectives: Vec<Trained<'_>>,
        draws: u64,
        seed: u64,
        training: u64,
    ) -> Fit {
        let importance = self.importance(file, objective, draws, seed, training);
        let gradient_variance = objectives
            .into_iter()
            .enumerate()
            .map(|(g, trained)| self.gradient_variance(trained, draws, seed, training, g as u64))
            .collect::<Result<Vec<_>, String>>()
            .map(|groups| groups.into_iter().flatten().collect());
        Fit { draws, importance, gradient_variance }
    }

    /// The elementwise variance of one draw of each trained parameter's gradient.
    fn gradient_variance(
        &self,
        trained: Trained<'_>,
        draws: u64,
        seed: u64,
        training: u64,
        objective: u64,
    ) -> Result<Vec<(String, Printed)>, String> {
        let executor = trained.executor;
        let stream = |draw| fit_stream(training, 1 + objective, draw);
        let moments = self.moments(executor, trained.width, draws, seed, stream).map_err(|draw| {
            let diagnostic = self.explain(executor, seed, stream(draw), Span::default(), draw);
            failed(draw, &diagnostic)
        })?;
        Ok(trained
            .params
            .into_iter()
            .filter_map(|(index, range)| {
                let param = self.program.params.get(index)?;
                let variances: Vec<f64> = range.map(|element| moments.variance(element)).collect();
                Some((param.name.clone(), Printed::shaped(param.ty, &variances)))
            })
            .collect())
    }

    /// PSIS of the log importance weights log p(x, obs) − log q(x), x ~ q, of the objective's
    /// model, guide and observations.
    fn importance(
        &self,
        file: usize,
        objective: &'a Expr,
        draws: u64,
        seed: u64,
        training: u64,
    ) -> Result<psis::Diagnosis, String> {
        let (model, guide, observations) = self
            .model_guide_observations(file, objective)
            .ok_or("the objective's arguments name no model, guide and observations")?;
        // The weights are draws of an estimate written in the language, checked and compiled
        // like any other against the user's definitions (a function keeps its names apart).
        let weights = format!(
            "fn ppl_fit_log_weight(p, q, obs) {{ E {{ let (x, log_q) = sim(q); density(p, x ++ obs) - log_q }} }}\n\
             print estimate(ppl_fit_log_weight({model}, {guide}, {observations}));\n"
        );
        let analysis = self.program.analysis;
        let mut files: Vec<(&str, &str)> = analysis
            .files
            .iter()
            .skip(crate::stdlib::FILES.len())
            .map(|parsed| analysis.sources.file(parsed.file))
            .map(|source| (source.name.as_str(), source.parsed_text()))
            .collect();
        files.push(("<fit diagnostics>", &weights));
        let checked = crate::check_sources(&files);
        if let Some(problem) = checked.diagnostics.iter().find(|diagnostic| diagnostic.is_error()) {
            return Err(format!("the guide's traces do not fit the model: {}", problem.message));
        }
        let params = self.params().map(|(name, value)| (name.to_string(), value)).collect();
        let options = RunOptions {
            seed: Some(seed),
            backend: self.options.backend,
            resume: Some(Resume { params, ..Resume::default() }),
            threads: Some(1),
            ..RunOptions::default()
        };
        let mut session = Session::new(&checked, options).map_err(|diagnostic| diagnostic.message.clone())?;
        session.pool = self.pool.clone();
        let log_weights = session.draws_of_first_estimate(draws, seed, |draw| fit_stream(training, 0, draw))?;
        psis::diagnose(&log_weights).ok_or_else(|| "a log importance weight is NaN or +inf".to_string())
    }

    /// The source texts of the model, guide and observations among the objective's arguments.
    fn model_guide_observations(&self, file: usize, objective: &Expr) -> Option<(String, String, String)> {
        let ExprKind::Call { args, .. } = &objective.kind else { return None };
        let types = self.program.analysis.checked.top_level_types.get(file)?;
        let of_type = |wanted: fn(&Type) -> bool| {
            args.iter()
                .filter(move |arg| types.get(&arg.value.id).is_some_and(wanted))
                .map(|arg| self.source(arg.value.span))
        };
        let mut families = of_type(|ty| matches!(ty, Type::Family(_)));
        let (model, guide) = (families.next()?, families.next()?);
        let observations = of_type(|ty| matches!(ty, Type::Record(_))).next()?;
        Some((model, guide, observations))
    }

    /// `draws` values of the first `estimate` of the last file (the one the diagnostics wrote),
    /// in draw order.
    fn draws_of_first_estimate(
        &self,
        draws: u64,
        seed: u64,
        stream: impl Fn(u64) -> u64 + Sync,
    ) -> Result<Vec<f64>, String> {
        let analysis = self.program.analysis;
        let file = analysis.files.len().saturating_sub(1);
        let objective = analysis
            .files
            .get(file)
            .and_then(|parsed| {
                parsed.program.items.iter().find_map(|item| match &item.kind {
                    ItemKind::Print(exprs) => exprs.first().and_then(super::objective_of),
                    _ => None,
                })
            })
            .ok_or("no estimate to draw from")?;
        let estimator = self.compile(file, objective).map_err(|diagnostic| diagnostic.message.clone())?;
        let native =
            self.native(&estimator.primal, "", &mut |_| {}).map_err(|diagnostic| diagnostic.message.clone())?;
        let executor = Executor::new(Kernel::new(estimator.primal, native), self.pool.clone());
        let mut values = Vec::with_capacity(draws as usize);
        let first = |kernel: &Kernel, worker: &super::execute::Worker| kernel.reals(worker).first().copied();
        self.each_draw(&executor, draws, seed, &stream, first, |_, value| values.push(value.unwrap_or(f64::NAN)))
            .map_err(|draw| failed(draw, &self.explain(&executor, seed, stream(draw), objective.span, draw)))?;
        Ok(values)
    }
}

/// Why a diagnostic is missing: its draw `draw` failed with `diagnostic`.
fn failed(draw: u64, diagnostic: &Diagnostic) -> String {
    format!("draw {draw} failed: {}", diagnostic.message)
}
