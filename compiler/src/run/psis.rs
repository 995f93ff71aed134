//! Pareto-smoothed importance sampling (PSIS) diagnostics of a set of log importance weights
//! (Vehtari, Simpson, Gelman, Yao and Gabry 2024, "Pareto smoothed importance sampling", JMLR
//! 25(72)): the Pareto k̂ of the upper tail of the weights, its sample-size-dependent threshold,
//! the importance-sampling estimate of log Z with its standard error, and the effective sample
//! size of the Pareto-smoothed weights.
//!
//! This module owns the statistics of a slice of log weights and nothing else: it draws nothing,
//! knows nothing of programs, models or proposals, and prints nothing. Its results depend only on
//! the multiset of log weights (not their order, not any seed): they are computed from the
//! sorted weights, relative to the largest, so log weights around -1e5 or +700 neither overflow
//! nor underflow.
//!
//! The generalized Pareto fit is Zhang and Stephens' (2009) empirical-Bayes estimate, with the
//! weakly informative prior of Vehtari et al. pulling k̂ toward 0.5 with the weight of 10
//! observations, on the M = ⌈min(S/5, 3√S)⌉ largest weights, as in the paper, the `loo` R
//! package and ArviZ's `psislw` (with `r_eff = 1`).

/// A GPD is not fitted to fewer tail draws than this (as in `loo` and ArviZ).
const MIN_TAIL_DRAWS: usize = 5;

/// The Zhang–Stephens grid has this many points plus ⌊√n⌋.
const MIN_GRID_POINTS: usize = 30;

/// Zhang and Stephens' prior constant for the grid of θ = -k/σ.
const THETA_PRIOR: f64 = 3.0;

/// The weakly informative prior on k: this many pseudo-observations ...
const K_PRIOR_WEIGHT: f64 = 10.0;

/// ... at this value.
const K_PRIOR_MEAN: f64 = 0.5;

/// What PSIS says of a set of importance weights.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Diagnosis {
    /// Pareto k̂ of the upper tail of the weights: the shape of a generalized Pareto distribution
    /// fitted to the exceedances of the largest M = ⌈min(S/5, 3√S)⌉ weights over the next
    /// largest, with the weakly informative prior of Vehtari et al. (k̂ shrunk toward 0.5 with the
    /// weight of 10 draws).
    ///
    /// Two cases are not fitted:
    /// - `-∞` when the upper tail is a point mass: the M + 1 largest weights are equal (this
    ///   includes all weights equal), or at least 5 draws lie above the cutoff and all of them
    ///   have the same weight. Such weights are bounded, which is the best case for importance
    ///   sampling (the limit of the GPD as k → -∞); nothing is smoothed. (ArviZ reports `+∞`
    ///   for the first case and fits the second, e.g. -5.5 for 95 draws at e^0 above 905 at e^-1;
    ///   `loo` reports `+∞` for both, as a failed fit.)
    /// - `NaN` when it cannot be fitted: fewer than 5 draws lie above the cutoff (always so for
    ///   S ≤ 20; also when the tail ties with the cutoff or the cutoff is more than ≈ 708 below
    ///   the largest log weight, as in ArviZ), or the fit is numerically degenerate. A NaN k̂
    ///   says nothing good: test `!(k_hat <= k_threshold)`, not `k_hat > k_threshold`, to warn.
    ///   (ArviZ and `loo` report `+∞` here.)
    pub k_hat: f64,
    /// The sample-size-dependent threshold min(1 - 1/log10(S), 0.7) above which the estimates
    /// are not to be trusted.
    pub k_threshold: f64,
    /// log of the mean of the raw weights: the importance-sampling estimate of log Z (the log
    /// evidence when weights are p(x, obs)/q(x)). `-∞` when every weight is zero.
    pub log_mean_weight: f64,
    /// Its standard error on the log scale by the delta method, sd(w) / (√S · mean(w)) with the
    /// sample standard deviation (divisor S - 1) of the raw weights, computed on the weights
    /// scaled by the largest. `+∞` when every weight is zero.
    pub log_mean_weight_stderr: f64,
    /// Effective sample size 1 / Σ w̃ᵢ² of the self-normalised weights w̃ after Pareto smoothing
    /// (the M largest replaced by GPD quantiles, truncated at the largest raw weight); of the raw
    /// weights when k̂ is not fitted (`-∞` or `NaN`). Between 1 and S; 0 when every weight is
    /// zero.
    pub effective_samples: f64,
    /// The number S of weights, zero weights included.
    pub samples: usize,
}

/// Diagnoses log importance weights; `None` when there are fewer than 2 weights or any is NaN
/// or +inf. Weights of -inf (zero weight) are allowed: they count in S and in the mean, and are
/// never in the smoothed tail. Deterministic and independent of the order of the weights.
pub fn diagnose(log_weights: &[f64]) -> Option<Diagnosis> {
    let samples = log_weights.len();
    if samples < 2 || log_weights.iter().any(|w| w.is_nan() || *w == f64::INFINITY) {
        return None;
    }
    let s = samples as f64;
    let k_threshold = (1.0 - 1.0 / s.log10()).min(0.7);
    let max = log_weights.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return Some(Diagnosis {
            k_hat: f64::NAN,
            k_threshold,
            log_mean_weight: f64::NEG_INFINITY,
            log_mean_weight_stderr: f64::INFINITY,
            effective_samples: 0.0,
            samples,
        });
    }
    // Log weights relative to the largest, which is now exactly 0; `+ 0.0` turns -0 into +0.
    let mut relative: Vec<f64> = log_weights.iter().map(|w| (w - max) + 0.0).collect();
    relative.sort_by(f64::total_cmp);

    // The raw weights, scaled so that the largest is 1: their sum is at least 1.
    let sum: f64 = relative.iter().map(|r| r.exp()).sum();
    let mean = sum / s;
    let squares: f64 = relative.iter().map(|r| (r.exp() - mean).powi(2)).sum();
    let log_mean_weight = max + (sum.ln() - s.ln());
    let log_mean_weight_stderr = (squares / (s - 1.0) / s).sqrt() / mean;

    let (k_hat, effective_samples) = match smooth_tail(&relative) {
        Tail::Smoothed { k_hat, body, tail } => {
            (k_hat, effective_samples(body.iter().copied().chain(tail.iter().copied())))
        }
        Tail::PointMass => (f64::NEG_INFINITY, effective_samples(relative.iter().copied())),
        Tail::Unfitted => (f64::NAN, effective_samples(relative.iter().copied())),
    };
    Some(Diagnosis { k_hat, k_threshold, log_mean_weight, log_mean_weight_stderr, effective_samples, samples })
}

/// The number M of largest weights that PSIS fits and smooths: ⌈min(S/5, 3√S)⌉ (written `S/5`,
/// not `0.2 S`, so that it is exact when S/5 is an integer, as in ArviZ). At most S - 1 for
/// S ≥ 2.
fn tail_length(samples: usize) -> usize {
    let s = samples as f64;
    (s / 5.0).min(3.0 * s.sqrt()).ceil() as usize
}

/// The upper tail of sorted log weights, relative to the largest.
enum Tail<'a> {
    /// Fitted: k̂, the draws at or below the cutoff, and the smoothed, truncated log weights
    /// of the draws above it.
    Smoothed { k_hat: f64, body: &'a [f64], tail: Vec<f64> },
    /// The tail is a point mass: nothing to fit.
    PointMass,
    /// Too few draws above the cutoff, or a degenerate fit.
    Unfitted,
}

/// Fits and smooths the upper tail of `sorted`: ascending log weights relative to the largest
/// (so the last is 0), none NaN or +∞, at least two.
fn smooth_tail(sorted: &[f64]) -> Tail<'_> {
    let samples = sorted.len();
    let Some(cutoff_index) = samples.checked_sub(tail_length(samples) + 1) else {
        return Tail::Unfitted;
    };
    let Some(&cutoff) = sorted.get(cutoff_index) else {
        return Tail::Unfitted;
    };
    // As in ArviZ: exceedances are of weights over e^cutoff, which must not underflow.
    let cutoff = cutoff.max(f64::MIN_POSITIVE.ln());
    // Ties with the cutoff stay in the body, as in ArviZ.
    let start = sorted.partition_point(|&r| r <= cutoff);
    let (body, tail) = sorted.split_at(start.min(samples));
    let (Some(&lowest), Some(&highest)) = (tail.first(), tail.last()) else {
        // The M + 1 largest weights are equal.
        return Tail::PointMass;
    };
    if tail.len() < MIN_TAIL_DRAWS {
        return Tail::Unfitted;
    }
    if lowest == highest {
        return Tail::PointMass;
    }
    let exp_cutoff = cutoff.exp();
    // e^r - e^cutoff, accurately for r near the cutoff; ascending, as `tail` is.
    let exceedances: Vec<f64> = tail.iter().map(|r| exp_cutoff * (r - cutoff).exp_m1()).collect();
    let Some((k_hat, sigma)) = fit_gpd(&exceedances) else {
        return Tail::Unfitted;
    };
    let len = tail.len() as f64;
    let smoothed = (0..tail.len())
        .map(|i| {
            let p = (i as f64 + 0.5) / len;
            (gpd_quantile(p, k_hat, sigma) + exp_cutoff).ln().min(0.0)
        })
        .collect();
    Tail::Smoothed { k_hat, body, tail: smoothed }
}

/// Zhang and Stephens' (2009) empirical-Bayes estimate of the shape k and scale σ of a
/// generalized Pareto distribution from ascending, positive, finite exceedances (at least
/// [`MIN_TAIL_DRAWS`]), with k then shrunk toward [`K_PRIOR_MEAN`] with the weight of
/// [`K_PRIOR_WEIGHT`] draws (σ is that of the unshrunk k, as in `loo` and ArviZ). `None` when
/// the fit is degenerate.
///
/// With θ = -k/σ, the profile log likelihood is n (log(θ / -k(θ)) - k(θ) - 1) where
/// k(θ) = mean log(1 - θ x); θ is its posterior mean over a grid of m = 30 + ⌊√n⌋ points
/// 1/x₍ₙ₎ + (1 - √(m / (j - ½))) / (3 x₍⌊n/4 + ½⌋₎), j = 1..m, with weights below 10 ε dropped.
fn fit_gpd(exceedances: &[f64]) -> Option<(f64, f64)> {
    let n = exceedances.len();
    let largest = *exceedances.last()?;
    let quartile = *exceedances.get(((n + 2) / 4).checked_sub(1)?)?;
    if !(quartile > 0.0 && largest.is_finite()) {
        return None;
    }
    let count = n as f64;
    let mean_log1p = |theta: f64| exceedances.iter().map(|x| (-theta * x).ln_1p()).sum::<f64>() / count;
    let points = MIN_GRID_POINTS + count.sqrt() as usize;
    let grid: Vec<(f64, f64)> = (1..=points)
        .map(|j| {
            let theta = (1.0 - (points as f64 / (j as f64 - 0.5)).sqrt()) / (THETA_PRIOR * quartile) + 1.0 / largest;
            let k = mean_log1p(theta);
            let log_likelihood = count * ((-theta / k).ln() - k - 1.0);
            (theta, if log_likelihood.is_nan() { f64::NEG_INFINITY } else { log_likelihood })
        })
        .collect();
    let top = grid.iter().map(|&(_, l)| l).fold(f64::NEG_INFINITY, f64::max);
    if !top.is_finite() {
        return None;
    }
    let total: f64 = grid.iter().map(|&(_, l)| (l - top).exp()).sum();
    let (mut weight_sum, mut theta_sum) = (0.0, 0.0);
    for &(theta, l) in &grid {
        let weight = (l - top).exp() / total;
        if weight >= 10.0 * f64::EPSILON {
            weight_sum += weight;
            theta_sum += weight * theta;
        }
    }
    let theta = theta_sum / weight_sum;
    let k = mean_log1p(theta);
    let sigma = -k / theta;
    if !(k.is_finite() && sigma.is_finite() && sigma > 0.0) {
        return None;
    }
    Some(((count * k + K_PRIOR_WEIGHT * K_PRIOR_MEAN) / (count + K_PRIOR_WEIGHT), sigma))
}

/// The quantile at p ∈ (0, 1) of the generalized Pareto distribution with location 0, shape k
/// and scale σ > 0.
fn gpd_quantile(p: f64, k: f64, sigma: f64) -> f64 {
    let log_survival = (-p).ln_1p();
    if k.abs() < f64::EPSILON {
        -sigma * log_survival
    } else {
        sigma * (-k * log_survival).exp_m1() / k
    }
}

/// (Σ w)² / Σ w² of the weights with these logs (none NaN or +∞, at least one finite),
/// scaled by the largest so that neither sum overflows nor underflows.
fn effective_samples(log_weights: impl Iterator<Item = f64> + Clone) -> f64 {
    let top = log_weights.clone().fold(f64::NEG_INFINITY, f64::max);
    let (sum, squares) = log_weights.fold((0.0, 0.0), |(sum, squares), l| {
        let w = (l - top).exp();
        (sum + w, squares + w * w)
    });
    sum * sum / squares
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The probabilities (i - ½)/S, i = 1..S, at which the deterministic "samples" below are
    /// quantiles (bit for bit as numpy's `(np.arange(1, S + 1) - 0.5) / S`).
    fn probabilities(samples: usize) -> impl Iterator<Item = f64> {
        (1..=samples).map(move |i| (i as f64 - 0.5) / samples as f64)
    }

    /// Log quantiles of a Pareto distribution with tail shape ξ (tail index 1/ξ, scale 1):
    /// -ξ log(1 - p), as numpy's `-xi * np.log1p(-p)`.
    fn pareto(xi: f64, samples: usize) -> Vec<f64> {
        probabilities(samples).map(|p| -xi * (-p).ln_1p()).collect()
    }

    /// Standard normal quantiles, by bisection of Φ(z) = erfc(-z/√2)/2 until the interval
    /// cannot shrink (within a few ulps of scipy's `ndtri`).
    fn normal(samples: usize) -> Vec<f64> {
        probabilities(samples)
            .map(|p| {
                let (mut low, mut high) = (-40.0_f64, 40.0_f64);
                loop {
                    let mid = 0.5 * (low + high);
                    if mid <= low || mid >= high {
                        return mid;
                    }
                    if 0.5 * libm::erfc(-mid / std::f64::consts::SQRT_2) < p {
                        low = mid;
                    } else {
                        high = mid;
                    }
                }
            })
            .collect()
    }

    /// Log quantiles of a uniform distribution on (0, 1): bounded weights.
    fn uniform(samples: usize) -> Vec<f64> {
        probabilities(samples).map(f64::ln).collect()
    }

    fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
        (actual - expected).abs() <= tolerance * expected.abs().max(1.0)
    }

    // Reference values from ArviZ 0.23.4 (`az.psislw`, whose tail length ⌈min(S/5, 3√(S/r_eff))⌉
    // with r_eff = 1 and prior on k, (n k + 10 · 0.5)/(n + 10), are the ones used here), made
    // with numpy 2.4.6 and scipy 1.17.1 by
    //
    //     import numpy as np, arviz as az
    //     from scipy.special import ndtri
    //     def p(S): return (np.arange(1, S + 1) - 0.5) / S
    //     cases = {}
    //     for S in (1000, 4000):
    //         for xi in (1.0, 0.7, 0.3):
    //             cases[f"pareto xi={xi} S={S}"] = -xi * np.log1p(-p(S))
    //         cases[f"normal S={S}"] = ndtri(p(S))
    //         cases[f"half-normal S={S}"] = 0.5 * ndtri(p(S))
    //         cases[f"uniform S={S}"] = np.log(p(S))
    //     for name, lw in cases.items():
    //         out, k = az.psislw(lw.copy())
    //         ess = 1.0 / np.exp(2 * out).sum()
    //         print(f"{name:28s} k={float(k)!r} ess={float(ess)!r}")
    //
    // ArviZ reports +inf for k where this module reports NaN or -inf (see `Diagnosis::k_hat`);
    // none of these cases is one of those.
    #[test]
    fn matches_arviz_psislw() {
        let half = |z: Vec<f64>| -> Vec<f64> { z.iter().map(|z| 0.5 * z).collect() };
        let cases = [
            ("pareto xi=1.0 S=1000", pareto(1.0, 1000), 0.9310730242264563, 21.377866140340007),
            ("pareto xi=0.7 S=1000", pareto(0.7, 1000), 0.6706577683143559, 138.93847000409713),
            ("pareto xi=0.3 S=1000", pareto(0.3, 1000), 0.3235606438260692, 832.3783680626304),
            ("normal S=1000", normal(1000), 0.290753024475596, 376.97232424293435),
            ("half-normal S=1000", half(normal(1000)), 0.10819042268751537, 776.35182313387),
            ("uniform S=1000", uniform(1000), -0.8192112494404742, 749.7301439440514),
            ("pareto xi=1.0 S=4000", pareto(1.0, 4000), 0.9633114610314513, 25.881365806946594),
            ("pareto xi=0.7 S=4000", pareto(0.7, 4000), 0.6843220218846074, 319.3199862640287),
            ("pareto xi=0.3 S=4000", pareto(0.3, 4000), 0.31231166382304587, 3303.4378337834664),
            ("normal S=4000", normal(4000), 0.263720026939107, 1485.3996712398805),
            ("half-normal S=4000", half(normal(4000)), 0.08829975518822943, 3111.4031054262837),
            ("uniform S=4000", uniform(4000), -0.8952577492848764, 2999.8587923760615),
        ];
        for (name, log_weights, k_hat, effective_samples) in cases {
            let diagnosis = diagnose(&log_weights).unwrap();
            assert!(close(diagnosis.k_hat, k_hat, 1e-11), "{name}: k̂ {} vs ArviZ {k_hat}", diagnosis.k_hat);
            assert!(
                close(diagnosis.effective_samples, effective_samples, 1e-11),
                "{name}: ESS {} vs ArviZ {effective_samples}",
                diagnosis.effective_samples
            );
            assert_eq!(diagnosis.samples, log_weights.len());
        }
    }

    // Continuing the script above:
    //
    //     from scipy.special import logsumexp
    //     for name in ("pareto xi=0.3 S=1000", "pareto xi=1.0 S=4000", "normal S=1000"):
    //         lw = cases[name]
    //         S = len(lw)
    //         w = np.exp(lw)
    //         print(name, float(logsumexp(lw) - np.log(S)), float(w.std(ddof=1) / (np.sqrt(S) * w.mean())))
    #[test]
    fn log_mean_weight_and_its_error_match_numpy() {
        let cases = [
            (pareto(0.3, 1000), 0.35551170812703603, 0.014030097741306492),
            (pareto(1.0, 4000), 2.328014962400097, 0.21600981388923932),
            (normal(1000), 0.49783525481975044, 0.040223447068407386),
        ];
        for (log_weights, log_mean, stderr) in cases {
            let diagnosis = diagnose(&log_weights).unwrap();
            assert!(close(diagnosis.log_mean_weight, log_mean, 1e-12), "{}", diagnosis.log_mean_weight);
            assert!(close(diagnosis.log_mean_weight_stderr, stderr, 1e-10), "{}", diagnosis.log_mean_weight_stderr);
        }
    }

    #[test]
    fn thresholds_depend_on_the_sample_size() {
        let threshold = |samples: usize| diagnose(&vec![0.0; samples]).unwrap().k_threshold;
        assert_eq!(threshold(10), 0.0);
        assert_eq!(threshold(100), 0.5);
        assert!(close(threshold(1000), 2.0 / 3.0, 1e-15));
        assert_eq!(threshold(10_000), 0.7);
        assert_eq!(threshold(1_000_000), 0.7);
        assert_eq!(tail_length(1000), 95);
        assert_eq!(tail_length(4000), 190);
        assert_eq!(tail_length(100), 20);
        assert_eq!(tail_length(25), 5);
        assert_eq!(tail_length(2), 1);
    }

    #[test]
    fn equal_weights_are_the_best_case() {
        for samples in [2, 3, 20, 1000, 4000] {
            for c in [0.0, -3.5, 1e3, -1e5] {
                let diagnosis = diagnose(&vec![c; samples]).unwrap();
                assert!(diagnosis.k_hat <= diagnosis.k_threshold, "{diagnosis:?}");
                assert_eq!(diagnosis.k_hat, f64::NEG_INFINITY);
                assert_eq!(diagnosis.effective_samples, samples as f64);
                assert_eq!(diagnosis.log_mean_weight, c);
                assert_eq!(diagnosis.log_mean_weight_stderr, 0.0);
            }
        }
    }

    #[test]
    fn a_point_mass_tail_is_not_fitted() {
        // S = 1000, M = 95. 100 draws of weight e^0 above 900 of weight e^-1: the M + 1 largest
        // are equal, nothing lies above the cutoff.
        let mut log_weights = vec![-1.0; 900];
        log_weights.extend([0.0; 100]);
        let diagnosis = diagnose(&log_weights).unwrap();
        assert_eq!(diagnosis.k_hat, f64::NEG_INFINITY);
        let effective_samples = (900.0 * (-1.0_f64).exp() + 100.0).powi(2) / (900.0 * (-2.0_f64).exp() + 100.0);
        assert!(close(diagnosis.effective_samples, effective_samples, 1e-12));
        // Exactly M draws of weight e^0 above 905 at e^-1 = the cutoff: all of the tail is equal.
        let mut log_weights = vec![-1.0; 905];
        log_weights.extend([0.0; 95]);
        let diagnosis = diagnose(&log_weights).unwrap();
        assert_eq!(diagnosis.k_hat, f64::NEG_INFINITY);
        let effective_samples = (905.0 * (-1.0_f64).exp() + 95.0).powi(2) / (905.0 * (-2.0_f64).exp() + 95.0);
        assert!(close(diagnosis.effective_samples, effective_samples, 1e-12));
        // One of those draws larger than the others: the tail is fitted.
        log_weights[999] = 0.5;
        assert!(diagnose(&log_weights).unwrap().k_hat.is_finite());
    }

    #[test]
    fn too_few_tail_draws_are_not_fitted() {
        // S ≤ 20: M = ⌈S/5⌉ ≤ 4.
        let diagnosis = diagnose(&pareto(1.0, 20)).unwrap();
        assert!(diagnosis.k_hat.is_nan());
        assert!(close(diagnosis.effective_samples, effective_samples(pareto(1.0, 20).into_iter()), 1e-13));
        // S = 25: M = 5.
        assert!(diagnose(&pareto(1.0, 25)).unwrap().k_hat.is_finite());
        // Four non-zero weights among 1000.
        let mut log_weights = vec![f64::NEG_INFINITY; 996];
        log_weights.extend([0.0, -1.0, -2.0, -3.0]);
        let diagnosis = diagnose(&log_weights).unwrap();
        assert!(diagnosis.k_hat.is_nan());
        assert!(diagnosis.log_mean_weight.is_finite());
        assert!(diagnosis.effective_samples > 1.0 && diagnosis.effective_samples < 4.0);
    }

    #[test]
    fn k_hat_is_invariant_to_a_constant_added_to_every_log_weight() {
        // Dyadic log weights (multiples of 2⁻²⁰ below 2⁶), so that adding an integer up to 10⁵
        // is exact and so is subtracting the largest: everything but log Z is bitwise equal.
        let dyadic = |log_weights: Vec<f64>| -> Vec<f64> {
            log_weights.iter().map(|l| (l * 1048576.0).round() / 1048576.0).collect()
        };
        for log_weights in [dyadic(pareto(1.0, 1000)), dyadic(normal(4000)), dyadic(uniform(1000))] {
            let base = diagnose(&log_weights).unwrap();
            assert!(base.k_hat.is_finite());
            for c in [1.0, 1e3, -1e5, 7e2] {
                let shifted: Vec<f64> = log_weights.iter().map(|l| l + c).collect();
                let diagnosis = diagnose(&shifted).unwrap();
                assert_eq!(diagnosis.k_hat.to_bits(), base.k_hat.to_bits());
                assert_eq!(diagnosis.effective_samples.to_bits(), base.effective_samples.to_bits());
                assert_eq!(diagnosis.log_mean_weight_stderr.to_bits(), base.log_mean_weight_stderr.to_bits());
                assert!(close(diagnosis.log_mean_weight, base.log_mean_weight + c, 1e-15));
            }
        }
        // Not dyadic: equal up to the rounding of the shifted log weights.
        let log_weights = normal(1000);
        let base = diagnose(&log_weights).unwrap();
        for c in [0.1, -1e5 - 0.3, 1e3 + 0.7] {
            let shifted: Vec<f64> = log_weights.iter().map(|l| l + c).collect();
            let diagnosis = diagnose(&shifted).unwrap();
            let rounding = 4.0 * f64::EPSILON * c.abs().max(1.0);
            assert!(close(diagnosis.k_hat, base.k_hat, 100.0 * rounding), "{c}: {diagnosis:?} vs {base:?}");
            assert!(close(diagnosis.effective_samples, base.effective_samples, 100.0 * rounding));
        }
    }

    #[test]
    fn the_order_of_the_weights_does_not_matter() {
        let log_weights = pareto(0.7, 1000);
        let shuffled: Vec<f64> = (0..1000).map(|i| log_weights[i * 7919 % 1000]).collect();
        let reversed: Vec<f64> = log_weights.iter().rev().copied().collect();
        let base = diagnose(&log_weights).unwrap();
        assert_eq!(diagnose(&shuffled).unwrap(), base);
        assert_eq!(diagnose(&reversed).unwrap(), base);
    }

    #[test]
    fn huge_offsets_give_finite_results() {
        for c in [-1e5, 1e3, 7.1e2, -7.5e2, 1e10] {
            let log_weights: Vec<f64> = pareto(0.5, 1000).iter().map(|l| l + c).collect();
            let diagnosis = diagnose(&log_weights).unwrap();
            assert!(diagnosis.k_hat.is_finite(), "{c}: {diagnosis:?}");
            assert!(diagnosis.log_mean_weight.is_finite(), "{c}: {diagnosis:?}");
            assert!(diagnosis.log_mean_weight_stderr.is_finite(), "{c}: {diagnosis:?}");
            assert!(diagnosis.effective_samples >= 1.0 && diagnosis.effective_samples <= 1000.0);
        }
        // Weights spread over far more than the range of f64.
        let log_weights: Vec<f64> = (0..1000).map(|i| -1e4 * i as f64).collect();
        let diagnosis = diagnose(&log_weights).unwrap();
        assert!(diagnosis.k_hat.is_nan(), "{diagnosis:?}");
        assert_eq!(diagnosis.log_mean_weight, -(1000.0_f64).ln());
        assert_eq!(diagnosis.effective_samples, 1.0);
        assert!(diagnosis.log_mean_weight_stderr.is_finite());
        // Differences of log weights that overflow are zero weights.
        let diagnosis = diagnose(&[f64::MAX, -f64::MAX, f64::MAX]).unwrap();
        assert_eq!(diagnosis.log_mean_weight, f64::MAX + (2.0_f64.ln() - 3.0_f64.ln()));
        assert_eq!(diagnosis.effective_samples, 2.0);
    }

    #[test]
    fn rejects_empty_single_nan_and_infinite_inputs() {
        assert_eq!(diagnose(&[]), None);
        assert_eq!(diagnose(&[0.0]), None);
        assert_eq!(diagnose(&[0.0, f64::NAN]), None);
        assert_eq!(diagnose(&[f64::INFINITY, 0.0]), None);
        let mut log_weights = pareto(0.5, 1000);
        log_weights[500] = f64::NAN;
        assert_eq!(diagnose(&log_weights), None);
        log_weights[500] = f64::INFINITY;
        assert_eq!(diagnose(&log_weights), None);
        assert!(diagnose(&[0.0, 0.0]).is_some());
    }

    #[test]
    fn minus_infinity_is_zero_weight() {
        let diagnosis = diagnose(&[0.0, f64::NEG_INFINITY, 0.0, f64::NEG_INFINITY]).unwrap();
        assert_eq!(diagnosis.log_mean_weight, 0.5_f64.ln());
        assert_eq!(diagnosis.effective_samples, 2.0);
        assert_eq!(diagnosis.samples, 4);

        // 1000 weights and as many zeros: log Z drops by log 2, the tail is the same.
        let finite = normal(1000);
        let mut log_weights = finite.clone();
        log_weights.extend([f64::NEG_INFINITY; 1000]);
        let (base, diagnosis) = (diagnose(&finite).unwrap(), diagnose(&log_weights).unwrap());
        assert!(close(diagnosis.log_mean_weight, base.log_mean_weight - 2.0_f64.ln(), 1e-14));
        assert!(diagnosis.k_hat.is_finite());
        assert!(diagnosis.effective_samples <= 1000.0);
        assert_eq!(diagnosis.samples, 2000);
        // With S zeros added to S weights of relative error e, the relative error e' of the mean
        // has e'² = 2 ((S - 1) e² + 1/2) / (2 S - 1).
        let (s, e) = (1000.0, base.log_mean_weight_stderr);
        let expected = (2.0 * ((s - 1.0) * e * e + 0.5) / (2.0 * s - 1.0)).sqrt();
        assert!(close(diagnosis.log_mean_weight_stderr, expected, 1e-12), "{diagnosis:?} vs {expected}");

        let diagnosis = diagnose(&[f64::NEG_INFINITY; 3]).unwrap();
        assert!(diagnosis.k_hat.is_nan());
        assert_eq!(diagnosis.log_mean_weight, f64::NEG_INFINITY);
        assert_eq!(diagnosis.log_mean_weight_stderr, f64::INFINITY);
        assert_eq!(diagnosis.effective_samples, 0.0);
    }

    #[test]
    fn heavy_tails_are_flagged_and_light_ones_are_not() {
        for samples in [1000, 4000] {
            let heavy = diagnose(&pareto(1.0, samples)).unwrap();
            assert!(heavy.k_hat > 0.7 && heavy.k_hat > heavy.k_threshold, "{heavy:?}");
            for light in [normal(samples), uniform(samples), pareto(0.3, samples)] {
                let light = diagnose(&light).unwrap();
                assert!(light.k_hat < 0.5 && light.k_hat <= light.k_threshold, "{light:?}");
            }
            let lognormal: Vec<f64> = normal(samples).iter().map(|z| 0.25 * z).collect();
            let light = diagnose(&lognormal).unwrap();
            assert!(light.k_hat < 0.2, "{light:?}");
            assert!(light.effective_samples > 0.9 * samples as f64, "{light:?}");
        }
    }
}
