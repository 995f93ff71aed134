//! Helpers shared by the runtime's integration tests: relative-error assertions and
//! moment checks against closed forms.

#![allow(dead_code)] // Each test binary uses a different subset.

/// |actual − expected| / |expected|, or the absolute difference when the expected value is 0.
pub fn relative_error(actual: f64, expected: f64) -> f64 {
    if expected == actual {
        return 0.0;
    }
    let difference = (actual - expected).abs();
    if expected == 0.0 {
        difference
    } else {
        difference / expected.abs()
    }
}

/// Asserts `actual` matches `expected` to `tolerance` relative error, naming the case on failure.
pub fn assert_close(what: &str, actual: f64, expected: f64, tolerance: f64) {
    let error = relative_error(actual, expected);
    assert!(
        error <= tolerance,
        "{what}: got {actual:e}, expected {expected:e}, relative error {error:.2e} > {tolerance:.0e}"
    );
}

/// Sample mean and variance, accumulated with Welford's update.
#[derive(Default)]
pub struct Moments {
    count: f64,
    mean: f64,
    sum_squared_deviations: f64,
}

impl Moments {
    pub fn push(&mut self, value: f64) {
        self.count += 1.0;
        let delta = value - self.mean;
        self.mean += delta / self.count;
        self.sum_squared_deviations += delta * (value - self.mean);
    }

    pub fn count(&self) -> f64 {
        self.count
    }

    pub fn mean(&self) -> f64 {
        self.mean
    }

    pub fn variance(&self) -> f64 {
        self.sum_squared_deviations / (self.count - 1.0)
    }

    /// The standard error of the mean, from the sample variance.
    pub fn standard_error(&self) -> f64 {
        (self.variance() / self.count).sqrt()
    }
}

pub fn moments_of(values: impl IntoIterator<Item = f64>) -> Moments {
    let mut moments = Moments::default();
    for value in values {
        moments.push(value);
    }
    moments
}

/// How many standard errors an estimate may be off before a test fails. With fixed seeds a
/// test is deterministic; 5 keeps the chance that a correct sampler fails with a new seed
/// below 1e-6 per check.
pub const STANDARD_ERRORS: f64 = 5.0;

/// Asserts the sample mean and variance of `moments` are within five standard errors of the
/// closed forms. The standard error of the sample variance s² is the square root of
/// Var(s²) = σ⁴·(κ + 3 − (n − 3)/(n − 1))/n, κ the excess kurtosis of the distribution (≈
/// σ⁴(κ + 2)/n, but exact, which matters for a fair coin where κ + 2 = 0).
pub fn assert_moments(what: &str, moments: &Moments, mean: f64, variance: f64, excess_kurtosis: f64) {
    let n = moments.count();
    let mean_error = (variance / n).sqrt();
    assert!(
        (moments.mean() - mean).abs() <= STANDARD_ERRORS * mean_error,
        "{what}: sample mean {} vs exact {mean} (standard error {mean_error:.3e}, n = {n})",
        moments.mean()
    );
    let variance_error = variance * ((excess_kurtosis + 3.0 - (n - 3.0) / (n - 1.0)) / n).sqrt();
    assert!(
        (moments.variance() - variance).abs() <= STANDARD_ERRORS * variance_error,
        "{what}: sample variance {} vs exact {variance} (standard error {variance_error:.3e}, n = {n})",
        moments.variance()
    );
}

/// Asserts that a Monte Carlo mean is within five of its own (estimated) standard errors of `exact`.
pub fn assert_unbiased(what: &str, moments: &Moments, exact: f64) {
    let standard_error = moments.standard_error();
    assert!(
        (moments.mean() - exact).abs() <= STANDARD_ERRORS * standard_error,
        "{what}: mean {} vs exact {exact} (standard error {standard_error:.3e}, n = {})",
        moments.mean(),
        moments.count()
    );
}
