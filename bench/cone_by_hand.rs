//! The noisy cone of `examples/cone.ppl`, written by hand in Rust: the yardstick `bench exec`
//! holds `ppl` against. The ELBO and IWELBO estimators and their reparameterised gradients in
//! (mu, log_sigma) use the same draws in the same order as the compiled programs (each sample
//! or particle on its own stream, x's noise then y's, particle after particle) and the same
//! `libm` logarithm and exponential; the statistics are Welford's running moments; training uses
//! `ppl`'s own optimizer. Nothing here is generated or shared with the compiler.

use std::ops::Range;

use ppl_runtime::optim::{Method, Optimizer, Schedule};
use ppl_runtime::Rng;

const LOG_SQRT_TWO_PI: f64 = 0.918_938_533_204_672_8;

/// The observed squared radius.
const OBSERVED: f64 = 5.0;

fn normal_log_density(x: f64, mu: f64, sigma: f64) -> f64 {
    let z = (x - mu) / sigma;
    -0.5 * z * z - libm::log(sigma) - LOG_SQRT_TWO_PI
}

/// One reparameterised particle: log p(x, y, z) - log q(x, y) and its gradient in
/// (mu[0], mu[1], log_sigma[0], log_sigma[1]).
fn particle(params: &[f64], rng: &mut Rng) -> (f64, [f64; 4]) {
    let (mu, log_sigma) = ([params[0], params[1]], [params[2], params[3]]);
    let sigma = [libm::exp(log_sigma[0]), libm::exp(log_sigma[1])];
    let eps = [rng.standard_normal(), rng.standard_normal()];
    let (x, y) = (mu[0] + sigma[0] * eps[0], mu[1] + sigma[1] * eps[1]);
    let rs = x * x + y * y;
    let scale = 0.1 + rs / 100.0;
    let log_q = normal_log_density(x, mu[0], sigma[0]) + normal_log_density(y, mu[1], sigma[1]);
    let log_p =
        normal_log_density(x, 0.0, 10.0) + normal_log_density(y, 0.0, 10.0) + normal_log_density(OBSERVED, rs, scale);
    // d log N(5; rs, scale)/d rs, through the mean and the scale.
    let residual = OBSERVED - rs;
    let d_rs = residual / (scale * scale) + (residual * residual / (scale * scale * scale) - 1.0 / scale) / 100.0;
    let dx = -x / 100.0 + d_rs * 2.0 * x;
    let dy = -y / 100.0 + d_rs * 2.0 * y;
    // log q at a reparameterised draw is -ε²/2 - log σ - const: only -log σ depends on θ.
    (log_p - log_q, [dx, dy, dx * sigma[0] * eps[0] + 1.0, dy * sigma[1] * eps[1] + 1.0])
}

/// One ELBO estimate and its gradient.
pub fn elbo(params: &[f64], rng: &mut Rng) -> (f64, [f64; 4]) {
    particle(params, rng)
}

/// One IWELBO estimate with `n` particles (at most 16) and its gradient: the log of the mean
/// weight, whose gradient is the particles' gradients weighted by their normalised weights.
pub fn iwelbo(params: &[f64], rng: &mut Rng, n: usize) -> (f64, [f64; 4]) {
    let mut weights = [0.0; 16];
    let mut gradients = [[0.0; 4]; 16];
    let n = n.min(16);
    for i in 0..n {
        (weights[i], gradients[i]) = particle(params, rng);
    }
    let largest = weights[..n].iter().fold(f64::NEG_INFINITY, |a, b| a.max(*b));
    let total: f64 = weights[..n].iter().map(|w| libm::exp(w - largest)).sum();
    let value = largest + libm::log(total) - libm::log(n as f64);
    let mut gradient = [0.0; 4];
    for i in 0..n {
        let share = libm::exp(weights[i] - largest) / total;
        for (g, x) in gradient.iter_mut().zip(gradients[i]) {
            *g += share * x;
        }
    }
    (value, gradient)
}

/// Running mean and sum of squared deviations of `N` numbers per draw (Welford).
pub struct Welford<const N: usize> {
    count: u64,
    mean: [f64; N],
    squares: [f64; N],
}

impl<const N: usize> Welford<N> {
    pub fn new() -> Self {
        Welford { count: 0, mean: [0.0; N], squares: [0.0; N] }
    }

    pub fn add(&mut self, draw: &[f64; N]) {
        self.count += 1;
        let weight = 1.0 / self.count as f64;
        for ((mean, squares), x) in self.mean.iter_mut().zip(&mut self.squares).zip(draw) {
            let delta = x - *mean;
            *mean += delta * weight;
            *squares += delta * (x - *mean);
        }
    }

    /// Element `i`'s mean and standard error.
    pub fn statistic(&self, i: usize) -> (f64, f64) {
        let n = self.count as f64;
        (self.mean[i], (self.squares[i] / (n - 1.0) / n).sqrt())
    }
}

/// What a command estimates: `estimate` (the value) or `grad` (value and gradient), of the
/// ELBO or the IWELBO with five particles.
#[derive(Clone, Copy, Debug)]
pub enum Estimator {
    Elbo,
    Iwelbo5,
}

/// The estimates `samples` at `params`, sample `s` on the stream `(seed, s)`, summarised: the
/// value's and each gradient element's mean and standard error.
pub fn estimate(estimator: Estimator, params: &[f64], seed: u64, samples: Range<u64>) -> Welford<5> {
    let mut moments = Welford::<5>::new();
    for sample in samples {
        let mut rng = Rng::new(seed, sample);
        let (value, gradient) = match estimator {
            Estimator::Elbo => elbo(params, &mut rng),
            Estimator::Iwelbo5 => iwelbo(params, &mut rng, 5),
        };
        moments.add(&[value, gradient[0], gradient[1], gradient[2], gradient[3]]);
    }
    moments
}

/// Estimates of the value alone (the optimiser drops the unused gradient).
pub fn estimate_value(estimator: Estimator, params: &[f64], seed: u64, samples: Range<u64>) -> Welford<1> {
    let mut moments = Welford::<1>::new();
    for sample in samples {
        let mut rng = Rng::new(seed, sample);
        let (value, _) = match estimator {
            Estimator::Elbo => elbo(params, &mut rng),
            Estimator::Iwelbo5 => iwelbo(params, &mut rng, 5),
        };
        moments.add(&[value]);
    }
    moments
}

/// Gradient ascent on the ELBO with `ppl`'s SGD: `steps` steps of `particles` particles, the
/// particle `p` of step `s` on the stream `stream(s, p)`. Returns (mu, log_sigma).
pub fn train(
    mut params: [f64; 4],
    steps: u64,
    particles: u64,
    lr: f64,
    seed: u64,
    stream: impl Fn(u64, u64) -> u64,
) -> [f64; 4] {
    let Ok(method) = Method::from_settings("sgd", &[("lr", lr)]) else { return [f64::NAN; 4] };
    let Ok(schedule) = Schedule::parse("constant", steps) else { return [f64::NAN; 4] };
    let mut optimizer = Optimizer::new(method, schedule, &[2, 2]);
    let mut groups = vec![vec![0.0; 2], vec![0.0; 2]];
    let mut gradient = vec![vec![0.0; 2], vec![0.0; 2]];
    for step in 0..steps {
        let mut total = [0.0; 4];
        for particle in 0..particles {
            let (_, g) = elbo(&params, &mut Rng::new(seed, stream(step, particle)));
            for (t, x) in total.iter_mut().zip(g) {
                *t += x;
            }
        }
        // Maximising: step against the negated mean gradient.
        for (i, t) in total.iter().enumerate() {
            gradient[i / 2][i % 2] = -(t / particles as f64);
        }
        groups[0].copy_from_slice(&params[..2]);
        groups[1].copy_from_slice(&params[2..]);
        optimizer.step(&mut groups, &gradient);
        params[..2].copy_from_slice(&groups[0]);
        params[2..].copy_from_slice(&groups[1]);
    }
    params
}
