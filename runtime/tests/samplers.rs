//! Samplers: moments against closed forms at several parameter values, boundary parameters,
//! and domain errors instead of panics.

mod common;

use common::{assert_moments, moments_of, STANDARD_ERRORS};
use ppl_runtime::{beta, categorical, flip, gamma, geometric, poisson, DomainError, Rng, POISSON_MAX_RATE};

/// Draws per parameter setting: enough for 5-standard-error checks to be meaningful (the
/// standard error of a mean is ~0.3% of the standard deviation), small enough for a debug build.
const DRAWS: usize = 100_000;

#[test]
fn gamma_has_the_closed_form_mean_and_variance() {
    for (stream, (shape, rate)) in [(0.3, 1.0), (2.5, 0.5), (50.0, 4.0)].into_iter().enumerate() {
        let mut rng = Rng::new(10, stream as u64);
        let moments = moments_of((0..DRAWS).map(|_| gamma(&mut rng, shape, rate).unwrap()));
        let what = format!("gamma({shape}, {rate})");
        assert_moments(&what, &moments, shape / rate, shape / (rate * rate), 6.0 / shape);
    }
}

#[test]
fn beta_has_the_closed_form_mean_and_variance() {
    for (stream, (a, b)) in [(0.5, 0.5), (2.0, 5.0), (0.2, 3.0)].into_iter().enumerate() {
        let mut rng = Rng::new(11, stream as u64);
        let moments = moments_of((0..DRAWS).map(|_| beta(&mut rng, a, b).unwrap()));
        let sum = a + b;
        let mean = a / sum;
        let variance = a * b / (sum * sum * (sum + 1.0));
        let excess_kurtosis =
            6.0 * ((a - b) * (a - b) * (sum + 1.0) - a * b * (sum + 2.0)) / (a * b * (sum + 2.0) * (sum + 3.0));
        assert_moments(&format!("beta({a}, {b})"), &moments, mean, variance, excess_kurtosis);
    }
}

#[test]
fn flip_has_the_closed_form_mean_and_variance() {
    for (stream, p) in [0.1, 0.5, 0.97].into_iter().enumerate() {
        let mut rng = Rng::new(12, stream as u64);
        let moments = moments_of((0..DRAWS).map(|_| if flip(&mut rng, p).unwrap() { 1.0 } else { 0.0 }));
        let variance = p * (1.0 - p);
        assert_moments(&format!("flip({p})"), &moments, p, variance, (1.0 - 6.0 * variance) / variance);
    }
}

#[test]
fn flip_is_certain_at_zero_and_one() {
    let mut rng = Rng::new(13, 0);
    for _ in 0..10_000 {
        assert_eq!(flip(&mut rng, 0.0), Ok(false));
        assert_eq!(flip(&mut rng, 1.0), Ok(true));
    }
}

/// Asserts each category's frequency is within five standard errors of wᵢ / Σw, and the
/// index's mean and variance match.
fn check_categorical(seed: u64, weights: &[f64]) {
    let total: f64 = weights.iter().sum();
    let probabilities: Vec<f64> = weights.iter().map(|w| w / total).collect();
    let mut rng = Rng::new(seed, 0);
    let mut counts = vec![0usize; weights.len()];
    let mut draws = Vec::with_capacity(DRAWS);
    for _ in 0..DRAWS {
        let index = categorical(&mut rng, weights).unwrap();
        counts[index] += 1;
        draws.push(index as f64);
    }
    for (index, (&count, &p)) in counts.iter().zip(&probabilities).enumerate() {
        let frequency = count as f64 / DRAWS as f64;
        let standard_error = (p * (1.0 - p) / DRAWS as f64).sqrt();
        assert!(
            (frequency - p).abs() <= STANDARD_ERRORS * standard_error,
            "categorical({weights:?}): category {index} frequency {frequency} vs {p}"
        );
    }
    let mean: f64 = probabilities.iter().enumerate().map(|(i, p)| i as f64 * p).sum();
    let central_moment =
        |k: i32| -> f64 { probabilities.iter().enumerate().map(|(i, p)| p * (i as f64 - mean).powi(k)).sum() };
    let variance = central_moment(2);
    let excess_kurtosis = central_moment(4) / (variance * variance) - 3.0;
    assert_moments(&format!("categorical({weights:?})"), &moments_of(draws), mean, variance, excess_kurtosis);
}

#[test]
fn categorical_follows_normalised_probabilities() {
    check_categorical(14, &[0.1, 0.2, 0.7]);
}

#[test]
fn categorical_normalises_unnormalised_weights() {
    check_categorical(15, &[1.0, 2.0, 3.0, 4.0]);
    check_categorical(16, &[1e-300, 3e-300]);
}

#[test]
fn categorical_never_returns_a_category_of_weight_zero() {
    let weights = [0.0, 0.3, 0.0, 0.7, 0.0];
    check_categorical(17, &weights);
    let mut rng = Rng::new(18, 0);
    for _ in 0..10_000 {
        let index = categorical(&mut rng, &weights).unwrap();
        assert!(weights[index] > 0.0);
    }
    for _ in 0..100 {
        assert_eq!(categorical(&mut rng, &[0.0, 0.0, 5.0]), Ok(2));
        assert_eq!(categorical(&mut rng, &[5.0]), Ok(0));
    }
}

#[test]
fn geometric_has_the_closed_form_mean_and_variance() {
    for (stream, p) in [0.1, 0.5, 0.9].into_iter().enumerate() {
        let mut rng = Rng::new(19, stream as u64);
        let moments = moments_of((0..DRAWS).map(|_| geometric(&mut rng, p).unwrap() as f64));
        let q = 1.0 - p;
        assert_moments(&format!("geometric({p})"), &moments, q / p, q / (p * p), 6.0 + p * p / q);
    }
}

#[test]
fn geometric_at_one_and_tiny_p_behave_as_documented() {
    let mut rng = Rng::new(20, 0);
    for _ in 0..1000 {
        assert_eq!(geometric(&mut rng, 1.0), Ok(0));
    }
    // The draw exceeds u64::MAX and saturates rather than wrapping or panicking.
    assert_eq!(geometric(&mut rng, 1e-300), Ok(u64::MAX));
    assert_eq!(geometric(&mut rng, f64::MIN_POSITIVE), Ok(u64::MAX));
}

#[test]
fn poisson_has_the_closed_form_mean_and_variance() {
    // 0.5 and 7 use the multiplication method, 150 the rejection method.
    for (stream, rate) in [0.5, 7.0, 150.0].into_iter().enumerate() {
        let mut rng = Rng::new(21, stream as u64);
        let moments = moments_of((0..DRAWS).map(|_| poisson(&mut rng, rate).unwrap() as f64));
        assert_moments(&format!("poisson({rate})"), &moments, rate, rate, 1.0 / rate);
    }
}

#[test]
fn poisson_at_rate_zero_is_zero() {
    let mut rng = Rng::new(22, 0);
    let before = rng.clone();
    assert_eq!(poisson(&mut rng, 0.0), Ok(0));
    assert_eq!(rng, before, "rate 0 consumes no randomness");
}

#[test]
fn samplers_report_domain_errors_instead_of_panicking() {
    let mut rng = Rng::new(23, 0);
    let nan = f64::NAN;
    let inf = f64::INFINITY;
    let cases: Vec<(Result<(), DomainError>, &str, &str)> = vec![
        (gamma(&mut rng, 0.0, 1.0).map(drop), "gamma", "shape"),
        (gamma(&mut rng, -1.0, 1.0).map(drop), "gamma", "shape"),
        (gamma(&mut rng, nan, 1.0).map(drop), "gamma", "shape"),
        (gamma(&mut rng, inf, 1.0).map(drop), "gamma", "shape"),
        (gamma(&mut rng, 1.0, 0.0).map(drop), "gamma", "rate"),
        (gamma(&mut rng, 1.0, nan).map(drop), "gamma", "rate"),
        (gamma(&mut rng, 1.0, inf).map(drop), "gamma", "rate"),
        (beta(&mut rng, 0.0, 1.0).map(drop), "beta", "a"),
        (beta(&mut rng, -2.0, 1.0).map(drop), "beta", "a"),
        (beta(&mut rng, 1.0, nan).map(drop), "beta", "b"),
        (beta(&mut rng, 1.0, inf).map(drop), "beta", "b"),
        (flip(&mut rng, -0.1).map(drop), "flip", "p"),
        (flip(&mut rng, 1.1).map(drop), "flip", "p"),
        (flip(&mut rng, nan).map(drop), "flip", "p"),
        (categorical(&mut rng, &[]).map(drop), "categorical", "probs"),
        (categorical(&mut rng, &[0.5, -0.5]).map(drop), "categorical", "probs"),
        (categorical(&mut rng, &[0.5, nan]).map(drop), "categorical", "probs"),
        (categorical(&mut rng, &[inf, 1.0]).map(drop), "categorical", "probs"),
        (categorical(&mut rng, &[0.0, 0.0]).map(drop), "categorical", "probs"),
        (categorical(&mut rng, &[1e308, 1e308]).map(drop), "categorical", "probs"),
        (geometric(&mut rng, 0.0).map(drop), "geometric", "p"),
        (geometric(&mut rng, -0.5).map(drop), "geometric", "p"),
        (geometric(&mut rng, 1.5).map(drop), "geometric", "p"),
        (geometric(&mut rng, nan).map(drop), "geometric", "p"),
        (poisson(&mut rng, -1.0).map(drop), "poisson", "rate"),
        (poisson(&mut rng, nan).map(drop), "poisson", "rate"),
        (poisson(&mut rng, inf).map(drop), "poisson", "rate"),
        (poisson(&mut rng, 2.0 * POISSON_MAX_RATE).map(drop), "poisson", "rate"),
    ];
    for (index, (result, distribution, parameter)) in cases.into_iter().enumerate() {
        let error = result.expect_err(&format!("case {index} ({distribution} {parameter}) should be an error"));
        assert_eq!((error.distribution, error.parameter), (distribution, parameter), "case {index}");
    }
}

#[test]
fn domain_errors_carry_the_value_and_read_well() {
    let mut rng = Rng::new(24, 0);
    let error = gamma(&mut rng, -1.5, 2.0).unwrap_err();
    assert_eq!(error.value, -1.5);
    assert_eq!(error.to_string(), "gamma: shape must be finite and > 0, got -1.5");
    let error = flip(&mut rng, 2.0).unwrap_err();
    assert_eq!(error.to_string(), "flip: p must be in [0, 1], got 2.0");
    let error = poisson(&mut rng, 1e300).unwrap_err();
    assert_eq!(error.to_string(), "poisson: rate must be in [0, 1.844e19], got 1e300");
    let error = categorical(&mut rng, &[0.25, -3.0]).unwrap_err();
    assert_eq!(error.value, -3.0);
}

#[test]
fn extreme_valid_parameters_do_not_panic() {
    let mut rng = Rng::new(25, 0);
    for _ in 0..200 {
        let tiny_shape = gamma(&mut rng, 1e-300, 1.0).unwrap();
        assert!(tiny_shape >= 0.0);
        assert!(gamma(&mut rng, 1e300, 1.0).unwrap().is_finite());
        assert!(gamma(&mut rng, 1.0, 1e-300).unwrap() >= 0.0);
        let tiny_beta = beta(&mut rng, 1e-300, 1e-300).unwrap();
        assert!((0.0..=1.0).contains(&tiny_beta));
        let huge_beta = beta(&mut rng, 1e300, 1e300).unwrap();
        assert!((0.0..=1.0).contains(&huge_beta));
        poisson(&mut rng, POISSON_MAX_RATE).unwrap();
        poisson(&mut rng, 1e-300).unwrap();
        geometric(&mut rng, 1e-17).unwrap();
        categorical(&mut rng, &[f64::MIN_POSITIVE, 1e300]).unwrap();
    }
}

#[test]
fn subsamples_are_distinct_and_every_subset_is_equally_likely() {
    // Both algorithms: Floyd's (k² ≤ n) and selection sampling. Every 2-subset of 0..5 (10 of
    // them) and every row of 0..6 in 4-subsets must be equally frequent.
    for (population, size) in [(5u64, 2usize), (6, 4)] {
        let mut counts = std::collections::HashMap::new();
        let mut rows = vec![0u64; population as usize];
        let draws = 60_000;
        for stream in 0..draws {
            let mut rng = Rng::new(9, stream);
            let mut out = vec![0.0; size];
            ppl_runtime::sample::subsample(&mut rng, population, &mut out).expect("fits");
            let mut indices: Vec<u64> = out.iter().map(|x| *x as u64).collect();
            indices.sort();
            indices.dedup();
            assert_eq!(indices.len(), size, "repeated index in {out:?}");
            assert!(indices.iter().all(|i| *i < population));
            for i in &indices {
                rows[*i as usize] += 1;
            }
            *counts.entry(indices).or_insert(0u64) += 1;
        }
        let subsets = if size == 2 { 10.0 } else { 15.0 };
        assert_eq!(counts.len() as f64, subsets);
        for count in counts.values() {
            let expected = draws as f64 / subsets;
            // Binomial standard deviation is under 75 here; 5 of them.
            assert!((*count as f64 - expected).abs() < 5.0 * (expected * (1.0 - 1.0 / subsets)).sqrt(), "{counts:?}");
        }
        for count in rows {
            let expected = draws as f64 * size as f64 / population as f64;
            assert!((count as f64 - expected).abs() < 5.0 * expected.sqrt(), "row frequency {count} vs {expected}");
        }
    }
    let mut out = vec![0.0; 3];
    assert!(ppl_runtime::sample::subsample(&mut Rng::new(1, 1), 2, &mut out).is_err());
}
