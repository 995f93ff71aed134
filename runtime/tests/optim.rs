//! The optimizers: each update rule against steps computed by hand, the learning-rate
//! schedules, gradient clipping, bit-identical resumption from a checkpoint, the errors for bad
//! settings, schedules and checkpoints, and convergence on a quadratic.

mod common;

use common::assert_close;
use ppl_runtime::optim::{
    clip_by_norm, divide_and_norm, global_norm, Method, Optimizer, OptimizerState, Schedule, Term,
};
use ppl_runtime::Precision;

// The test problem: a real a and a 2-vector b (two parameters, sizes [1, 2]) minimising
//     f(a, b) = (a − 3)² + 2 (b₀ + 1)² + ½ (b₁ − 2)²,
// whose gradient is (2(a − 3), 4(b₀ + 1), b₁ − 2) and whose minimum is (3, −1, 2). Every run
// starts at a = 0.5, b = (1, −0.5), so the first gradient is (−5, 8, −2.5).
const SIZES: [usize; 2] = [1, 2];
const OPTIMUM: [f64; 3] = [3.0, -1.0, 2.0];

fn start() -> Vec<Vec<f64>> {
    vec![vec![0.5], vec![1.0, -0.5]]
}

fn gradient(params: &[Vec<f64>]) -> Vec<Vec<f64>> {
    gradient_towards(params, OPTIMUM)
}

/// The gradient of the same quadratic moved to have its minimum at `optimum`.
fn gradient_towards(params: &[Vec<f64>], optimum: [f64; 3]) -> Vec<Vec<f64>> {
    let (a, b) = (params[0][0], &params[1]);
    vec![vec![2.0 * (a - optimum[0])], vec![4.0 * (b[0] - optimum[1]), b[1] - optimum[2]]]
}

fn flat(params: &[Vec<f64>]) -> [f64; 3] {
    [params[0][0], params[1][0], params[1][1]]
}

/// The parameters after each of the first three steps from `start()`.
fn three_steps(method: Method, schedule: Schedule) -> Vec<[f64; 3]> {
    let mut optimizer = Optimizer::new(method, schedule, &SIZES);
    let mut params = start();
    (0..3)
        .map(|_| {
            let grads = gradient(&params);
            optimizer.step(&mut params, &grads);
            flat(&params)
        })
        .collect()
}

/// Compares with values computed independently (see each test), allowing the rounding of a
/// different but equivalent order of operations.
fn assert_trajectory(what: &str, actual: &[[f64; 3]], expected: &[[f64; 3]]) {
    for (step, (actual, expected)) in actual.iter().zip(expected).enumerate() {
        for (index, (&actual, &expected)) in actual.iter().zip(expected).enumerate() {
            assert_close(&format!("{what}, step {}, coordinate {index}", step + 1), actual, expected, 1e-12);
        }
    }
}

// Expected trajectories. Each is PyTorch's documented update rule (torch.optim docs, with
// the settings named) evaluated in plain Python floats, element by element, by a separate
// script written from the formulas, not from this crate; g is the gradient above, t the
// 1-based step. The script's numbers are pasted here.

#[test]
fn sgd_matches_hand_computed_steps() {
    // θ ← θ − lr·g, lr 0.1. Step 1: g = (−5, 8, −2.5) → (1.0, 0.2, −0.25); then g = (−4, 4.8,
    // −2.25) → (1.4, −0.28, −0.025); then g = (−3.2, 2.88, −2.025) → (1.72, −0.568, 0.1775).
    let method = Method::Sgd { lr: 0.1, momentum: 0.0, nesterov: false };
    let expected = [
        [1.0, 0.19999999999999996, -0.25],
        [1.4, -0.28, -0.024999999999999994],
        [1.72, -0.5680000000000001, 0.17750000000000002],
    ];
    assert_trajectory("sgd", &three_steps(method, Schedule::Constant), &expected);
}

#[test]
fn sgd_with_momentum_matches_hand_computed_steps() {
    // b₁ = g₁, bₜ = μ·bₜ₋₁ + gₜ; θ ← θ − lr·b, lr 0.1, μ 0.9.
    let method = Method::Sgd { lr: 0.1, momentum: 0.9, nesterov: false };
    let expected =
        [[1.0, 0.19999999999999996, -0.25], [1.85, -1.0000000000000002, 0.2], [2.845, -2.08, 0.7849999999999999]];
    assert_trajectory("sgd momentum", &three_steps(method, Schedule::Constant), &expected);
}

#[test]
fn sgd_with_nesterov_momentum_matches_hand_computed_steps() {
    // b as above; θ ← θ − lr·(g + μ·b), lr 0.1, μ 0.9.
    let method = Method::Sgd { lr: 0.1, momentum: 0.9, nesterov: true };
    let expected = [
        [1.4500000000000002, -0.52, -0.024999999999999967],
        [2.444, -1.5328000000000002, 0.5622500000000001],
        [3.27088, -1.8665920000000003, 1.1816975000000003],
    ];
    assert_trajectory("sgd nesterov", &three_steps(method, Schedule::Constant), &expected);
}

#[test]
fn adam_matches_hand_computed_steps() {
    // m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ),
    // θ ← θ − lr·m̂/(√v̂ + ε); lr 0.1 and the defaults β₁ 0.9, β₂ 0.999, ε 1e-8. The first step
    // moves each coordinate by lr·sign(g) up to ε: (0.6, 0.9, −0.4).
    let method = Method::Adam { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    let expected = [
        [0.5999999998, 0.900000000125, -0.4000000004],
        [0.6998728116191738, 0.8001664858630053, -0.3001271887843059],
        [0.7995260661370407, 0.7006233916636408, -0.20047393447308245],
    ];
    assert_trajectory("adam", &three_steps(method, Schedule::Constant), &expected);
}

#[test]
fn adam_with_other_hyperparameters_matches_hand_computed_steps() {
    // The same rule with β₁ 0.5, β₂ 0.9, ε 0.1, large enough to show in every digit.
    let method = Method::Adam { lr: 0.1, beta1: 0.5, beta2: 0.9, eps: 0.1 };
    let expected = [
        [0.5980392156862745, 0.9012345679012346, -0.40384615384615385],
        [0.6954681060495082, 0.8032352299785259, -0.3083156388848519],
        [0.7919391379835549, 0.7064591534880289, -0.2137430981922169],
    ];
    assert_trajectory("adam β₁ 0.5 β₂ 0.9 ε 0.1", &three_steps(method, Schedule::Constant), &expected);
}

#[test]
fn adamw_matches_hand_computed_steps() {
    // θ ← θ·(1 − lr·λ) first, then the Adam update; lr 0.1, λ 0.1, Adam defaults.
    let method = Method::AdamW { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1 };
    let expected = [
        [0.5949999998, 0.890000000125, -0.3950000004],
        [0.6889302985991743, 0.7812873168904528, -0.2911847990439548],
        [0.7817170554436534, 0.6739870506433884, -0.18863869219111373],
    ];
    assert_trajectory("adamw", &three_steps(method, Schedule::Constant), &expected);
}

#[test]
fn adamw_without_weight_decay_is_adam_bit_for_bit() {
    let adam = three_steps(Method::Adam { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8 }, Schedule::Constant);
    let adamw = three_steps(
        Method::AdamW { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 },
        Schedule::Constant,
    );
    assert_eq!(bits(&adam), bits(&adamw));
}

#[test]
fn rmsprop_matches_hand_computed_steps() {
    // v ← αv + (1−α)g², θ ← θ − lr·g/(√v + ε); lr 0.01, α 0.99, ε 1e-8.
    let method = Method::RmsProp { lr: 0.01, alpha: 0.99, eps: 1e-8, momentum: 0.0 };
    let expected = [
        [0.599999998, 0.90000000125, -0.4000000039999999],
        [0.6694340828820112, 0.8309433272561533, -0.3305659200924168],
        [0.7255319687056437, 0.7753494433525812, -0.27446803491031657],
    ];
    assert_trajectory("rmsprop", &three_steps(method, Schedule::Constant), &expected);
}

#[test]
fn rmsprop_with_momentum_matches_hand_computed_steps() {
    // v as above; b ← μ·b + g/(√v + ε) from b = 0, θ ← θ − lr·b; lr 0.01, μ 0.9.
    let method = Method::RmsProp { lr: 0.01, alpha: 0.99, eps: 1e-8, momentum: 0.9 };
    let expected = [
        [0.599999998, 0.90000000125, -0.4000000039999999],
        [0.7594340810820113, 0.7409433283811533, -0.2405659236924167],
        [0.9575107812560781, 0.5441299602647877, -0.04248922661400065],
    ];
    assert_trajectory("rmsprop momentum", &three_steps(method, Schedule::Constant), &expected);
}

#[test]
fn adagrad_matches_hand_computed_steps() {
    // s ← s + g², θ ← θ − lr·g/(√s + ε); lr 0.1, ε 1e-10.
    let method = Method::Adagrad { lr: 0.1, eps: 1e-10 };
    let expected = [
        [0.599999999998, 0.90000000000125, -0.400000000004],
        [0.6692531828160022, 0.831125053810381, -0.3307468171869669],
        [0.7250606379635519, 0.775821515010822, -0.27493936204005176],
    ];
    assert_trajectory("adagrad", &three_steps(method, Schedule::Constant), &expected);
}

#[test]
fn the_schedule_sets_the_learning_rate_of_each_step() {
    // Adam as above with lr_t = 0.1·0.5ᵗ for t = 0, 1, 2 (step 1 is unchanged).
    let method = Method::Adam { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    let expected = [
        [0.5999999998, 0.900000000125, -0.4000000004],
        [0.6499364057095869, 0.8500832429940027, -0.35006359459215297],
        [0.6748745737725547, 0.8251639097045571, -0.32512542658061894],
    ];
    assert_trajectory(
        "adam exponential(0.5)",
        &three_steps(method, Schedule::ExponentialDecay { rate: 0.5 }),
        &expected,
    );
}

// Schedules. Expected rates from the formulas in Python, base lr 0.1.

/// The learning rate an optimizer reports before each of the first `steps + 1` steps.
fn optimizer_rates(schedule: Schedule, steps: u64) -> Vec<f64> {
    let mut optimizer = Optimizer::new(Method::Sgd { lr: 0.1, momentum: 0.0, nesterov: false }, schedule, &[1]);
    let mut params = vec![vec![0.0]];
    let mut rates = vec![optimizer.learning_rate()];
    for _ in 0..steps {
        optimizer.step(&mut params, &[vec![0.0]]);
        rates.push(optimizer.learning_rate());
    }
    rates
}

fn assert_rates(what: &str, schedule: Schedule, expected: &[(u64, f64)]) {
    let through_optimizer = optimizer_rates(schedule, expected.iter().map(|&(step, _)| step).max().unwrap_or(0));
    for &(step, rate) in expected {
        assert_close(&format!("{what} at step {step}"), schedule.learning_rate(0.1, step), rate, 1e-14);
        assert_eq!(through_optimizer[step as usize], schedule.learning_rate(0.1, step), "{what} at step {step}");
    }
}

#[test]
fn constant_schedule_keeps_the_learning_rate() {
    assert_rates("constant", Schedule::Constant, &[(0, 0.1), (1, 0.1), (1000, 0.1)]);
}

#[test]
fn exponential_schedule_multiplies_by_the_rate_each_step() {
    // 0.1·0.9^step
    let expected = [
        (0, 0.1),
        (1, 0.09000000000000001),
        (2, 0.08100000000000002),
        (10, 0.03486784401000001),
        (100, 2.6561398887587545e-06),
    ];
    assert_rates("exponential(0.9)", Schedule::ExponentialDecay { rate: 0.9 }, &expected);
}

#[test]
fn cosine_schedule_anneals_to_the_minimum_and_stays_there() {
    // 0.001 + (0.1 − 0.001)·(1 + cos(π·step/100))/2, then 0.001 from step 100 on.
    let expected = [
        (0, 0.1),
        (1, 0.09997557473810371),
        (25, 0.0855017856687341),
        (50, 0.0505),
        (75, 0.0154982143312659),
        (99, 0.0010244252618962857),
        (100, 0.001),
        (150, 0.001),
    ];
    assert_rates("cosine", Schedule::Cosine { total_steps: 100, min_lr: 0.001 }, &expected);
}

#[test]
fn step_schedule_decays_every_so_many_steps() {
    // 0.1·0.5^⌊step/10⌋
    let expected = [(0, 0.1), (9, 0.1), (10, 0.05), (19, 0.05), (20, 0.025), (35, 0.0125)];
    assert_rates("step(10, 0.5)", Schedule::Step { every: 10, factor: 0.5 }, &expected);
}

#[test]
fn schedules_outside_their_domain_do_not_panic() {
    assert_eq!(Schedule::Step { every: 0, factor: 0.5 }.learning_rate(0.1, 7), 0.1);
    assert_eq!(Schedule::Cosine { total_steps: 0, min_lr: 0.01 }.learning_rate(0.1, 0), 0.01);
}

// Clipping.

#[test]
fn clipping_scales_down_to_the_limit_and_returns_the_old_norm() {
    let mut grads = vec![vec![3.0], vec![0.0, -4.0]];
    let norm = clip_by_norm(&mut grads, 1.0);
    assert_eq!(norm, 5.0);
    assert_close("clipped norm", global_norm(&grads), 1.0, 1e-15);
    // The direction is kept: every entry scaled by the same 1/5.
    assert_close("first", grads[0][0], 0.6, 1e-15);
    assert_eq!(grads[1][0], 0.0);
    assert_close("third", grads[1][1], -0.8, 1e-15);
}

#[test]
fn clipping_preserves_direction_for_many_parameters() {
    let original = vec![vec![1.5, -2.0, 0.25], vec![], vec![7.0], vec![-0.5, 3.0]];
    let mut grads = original.clone();
    let norm = clip_by_norm(&mut grads, 2.0);
    assert_close("norm", norm, global_norm(&original), 0.0);
    assert!(global_norm(&grads) <= 2.0 * (1.0 + 1e-15));
    for (clipped, unclipped) in grads.iter().flatten().zip(original.iter().flatten()) {
        assert_close("scaled entry", *clipped, unclipped * 2.0 / norm, 1e-15);
    }
}

#[test]
fn gradients_within_the_limit_are_left_untouched() {
    for limit in [5.0, 6.0, f64::INFINITY] {
        let mut grads = vec![vec![3.0], vec![4.0]];
        assert_eq!(clip_by_norm(&mut grads, limit), 5.0);
        assert_eq!(grads, vec![vec![3.0], vec![4.0]], "limit {limit}");
    }
    let mut zeros = vec![vec![0.0, 0.0]];
    assert_eq!(clip_by_norm(&mut zeros, 1.0), 0.0);
    assert_eq!(zeros, vec![vec![0.0, 0.0]]);
}

#[test]
fn non_finite_gradients_are_reported_not_scaled() {
    let mut with_nan = vec![vec![1.0, f64::NAN]];
    assert!(clip_by_norm(&mut with_nan, 1.0).is_nan());
    assert_eq!(with_nan[0][0], 1.0);
    let mut with_infinity = vec![vec![1.0], vec![f64::NEG_INFINITY]];
    assert_eq!(clip_by_norm(&mut with_infinity, 1.0), f64::INFINITY);
    assert_eq!(with_infinity, vec![vec![1.0], vec![f64::NEG_INFINITY]]);
}

#[test]
fn the_norm_neither_overflows_nor_underflows() {
    assert_close("huge", global_norm(&[vec![3e200], vec![4e200]]), 5e200, 1e-15);
    assert_close("tiny", global_norm(&[vec![3e-200, 4e-200]]), 5e-200, 1e-15);
    assert_eq!(global_norm(&[]), 0.0);
    let mut huge = vec![vec![3e200, -4e200]];
    assert_close("huge norm", clip_by_norm(&mut huge, 1.0), 5e200, 1e-15);
    assert_close("huge clipped", huge[0][0], 0.6, 1e-15);
    assert_close("huge clipped", huge[0][1], -0.8, 1e-15);
}

/// The one-pass sum, mean and norm of a step gives the bits of adding (from zero), dividing and
/// then taking the norm, for tensors of every length around the blocks and lanes it works in, on one thread
/// or on a pool of two or three; and the norm is the sum of squares to within rounding.
#[test]
fn summing_dividing_and_taking_the_norm_in_one_pass_gives_the_bits_of_three() {
    let pools: Vec<rayon::ThreadPool> = [2, 3]
        .iter()
        .map(|threads| rayon::ThreadPoolBuilder::new().num_threads(*threads).build().expect("a pool"))
        .collect();
    for lengths in [vec![1], vec![7, 8, 9], vec![4095, 4096, 4097, 4103], vec![157_000, 200, 784], vec![]] {
        let tensors = |seed: usize| -> Vec<Vec<f64>> {
            let values = |(k, len): (usize, &usize)| {
                (0..*len).map(|i| ((i * 31 + k * 7 + seed) as f64 * 0.37).sin() * 3.0).collect()
            };
            lengths.iter().enumerate().map(values).collect()
        };
        let (grads, first, second) = (tensors(0), tensors(5), tensors(11));
        // Divisors with and without an exact reciprocal (a step's sign times its particles).
        for divisor in [-3.0, 1.0, -1.0, 64.0, -0.25, 6.0, 1e-300, f64::MIN_POSITIVE] {
            let bits = |grads: &[Vec<f64>]| grads.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>();
            for terms in [
                vec![],
                vec![first.as_slice()],
                vec![first.as_slice(), second.as_slice()],
                vec![first.as_slice(), second.as_slice(), grads.as_slice()],
            ] {
                // Given terms, their sum from zero replaces the gradients.
                let passes: Vec<Vec<f64>> = (0..grads.len())
                    .map(|k| {
                        let start = |i: usize| if terms.is_empty() { grads[k][i] } else { 0.0 };
                        let sums =
                            (0..grads[k].len()).map(|i| terms.iter().fold(start(i), |sum, term| sum + term[k][i]));
                        sums.map(|x| x / divisor).collect()
                    })
                    .collect();
                for pool in [None, Some(&pools[0]), Some(&pools[1])] {
                    let mut divided = grads.clone();
                    let norm = divide_and_norm(&mut divided, &terms, |term, k| Term::Wide(&term[k]), divisor, pool);
                    let case = format!("{lengths:?} / {divisor}, {} terms, {pool:?}", terms.len());
                    assert_eq!(bits(&divided), bits(&passes), "{case}");
                    assert_eq!(norm.to_bits(), global_norm(&passes).to_bits(), "{case}");
                    let plain = passes.iter().flatten().map(|x| x * x).sum::<f64>().sqrt();
                    if plain.is_finite() {
                        assert_close("norm", norm, plain, 1e-12);
                    }
                }
            }
        }
    }
}

/// Terms in f32 add up to the bits of the same terms widened to f64.
#[test]
fn terms_in_f32_add_up_to_the_bits_of_the_widened_terms() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("a pool");
    let lengths = [157_000, 200, 3];
    let narrow = |seed: usize| -> Vec<Vec<f32>> {
        let values =
            |(k, len): (usize, &usize)| (0..*len).map(|i| ((i * 31 + k * 7 + seed) as f32 * 0.37).sin()).collect();
        lengths.iter().enumerate().map(values).collect()
    };
    let (first, second) = (narrow(5), narrow(11));
    let widen = |tensors: &[Vec<f32>]| -> Vec<Vec<f64>> {
        tensors.iter().map(|values| values.iter().map(|x| f64::from(*x)).collect()).collect()
    };
    let (wide_first, wide_second) = (widen(&first), widen(&second));
    for pool in [None, Some(&pool)] {
        let mut wide: Vec<Vec<f64>> = lengths.iter().map(|len| vec![f64::NAN; *len]).collect();
        let mut mixed = wide.clone();
        let terms = [&wide_first, &wide_second];
        let wide_norm = divide_and_norm(&mut wide, &terms, |term, k| Term::Wide(&term[k]), -64.0, pool);
        // The first term in f32, the second in f64, as a step's two parts may be.
        enum Part<'p> {
            Narrow(&'p [Vec<f32>]),
            Wide(&'p [Vec<f64>]),
        }
        let terms = [Part::Narrow(&first), Part::Wide(&wide_second)];
        let mixed_norm = divide_and_norm(
            &mut mixed,
            &terms,
            |part, k| match *part {
                Part::Narrow(tensors) => Term::Narrow(&tensors[k]),
                Part::Wide(tensors) => Term::Wide(&tensors[k]),
            },
            -64.0,
            pool,
        );
        assert_eq!(wide_norm.to_bits(), mixed_norm.to_bits());
        let bits = |grads: &[Vec<f64>]| grads.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert!(bits(&wide) == bits(&mixed), "on a pool: {}", pool.is_some());
    }
}

/// Adam's update of a large tensor in blocks on a pool's threads has the bits of one thread's,
/// and every rule's rounded copies, written in its pass, are its new values rounded to f32.
#[test]
fn updates_on_a_pool_and_with_rounded_copies_have_the_bits_of_one_thread() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().expect("a pool");
    let sizes = [100_003, 7];
    for method in [Method::from_settings("adam", &[("lr", 0.01)]), Method::from_settings("sgd", &[("lr", 0.01)])] {
        let method = method.expect("a method");
        let run = |pool: Option<&rayon::ThreadPool>, rounding: bool, precision: Precision| {
            let schedule = Schedule::parse("constant", 10).expect("a schedule");
            let mut optimizer = Optimizer::new(method, schedule, &sizes).in_precision(precision);
            let mut params: Vec<Vec<f64>> =
                sizes.iter().map(|n| (0..*n).map(|i| (i as f64 * 0.1).cos()).collect()).collect();
            // In f64 the copy is only written; in f32 it is what the update reads.
            let mut rounded: Vec<Vec<f32>> = match precision {
                Precision::Double => sizes.iter().map(|n| vec![f32::NAN; *n]).collect(),
                Precision::Single => params.iter().map(|param| param.iter().map(|x| *x as f32).collect()).collect(),
            };
            for step in 0..3 {
                for (k, (param, rounded)) in params.iter_mut().zip(&mut rounded).enumerate() {
                    let grad: Vec<f64> = (0..param.len()).map(|i| ((i * (step + 2) + k) as f64 * 0.3).sin()).collect();
                    optimizer.update(k, param, rounding.then_some(&mut rounded[..]), &grad, pool);
                }
                optimizer.finish_step();
            }
            if rounding {
                let expected: Vec<u32> = params.concat().iter().map(|x| (*x as f32).to_bits()).collect();
                let written: Vec<u32> = rounded.concat().iter().map(|x| x.to_bits()).collect();
                assert!(expected == written, "{method:?}: rounded copies of other values than the parameters'");
            }
            params.concat().iter().map(|x| x.to_bits()).collect::<Vec<u64>>()
        };
        let alone = run(None, false, Precision::Double);
        for (pool, rounding) in [(Some(&pool), false), (None, true), (Some(&pool), true)] {
            let same = alone == run(pool, rounding, Precision::Double);
            assert!(same, "{method:?} on a pool: {}, rounding: {rounding}", pool.is_some());
        }
        // In single precision the update reads the rounded copy, or rounds the values itself.
        let alone = run(None, false, Precision::Single);
        for (pool, rounding) in [(Some(&pool), false), (None, true), (Some(&pool), true)] {
            let same = alone == run(pool, rounding, Precision::Single);
            assert!(same, "{method:?} in f32 on a pool: {}, rounding: {rounding}", pool.is_some());
        }
    }
}

/// Moving the rounded values alone (`update_rounded`, a weight that compiled code reads only
/// rounded) leaves them as `update` leaves the rounded copy, bits and all, in single precision
/// (its f64 values are then the widened copy), and in double precision after a step from f32
/// values.
#[test]
fn updating_the_rounded_values_alone_has_the_bits_of_updating_both() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("a pool");
    let sizes = [50_001, 3];
    let start = |n: usize| -> Vec<f32> { (0..n).map(|i| (i as f32 * 0.1).cos()).collect() };
    let grad = |n: usize, step: usize| -> Vec<f64> { (0..n).map(|i| ((i * (step + 2)) as f64 * 0.3).sin()).collect() };
    for method in all_methods() {
        for (precision, steps) in [(Precision::Single, 3), (Precision::Double, 1)] {
            let optimizer = || {
                let schedule = Schedule::parse("constant", 10).expect("a schedule");
                Optimizer::new(method, schedule, &sizes).in_precision(precision)
            };
            let (mut both, mut alone) = (optimizer(), optimizer());
            let mut rounded: Vec<Vec<f32>> = sizes.iter().map(|n| start(*n)).collect();
            let mut values: Vec<Vec<f64>> = rounded.iter().map(|r| r.iter().map(|x| f64::from(*x)).collect()).collect();
            let mut moved: Vec<Vec<f32>> = rounded.clone();
            for step in 0..steps {
                for k in 0..sizes.len() {
                    let grad = grad(sizes[k], step);
                    both.update(k, &mut values[k], Some(&mut rounded[k]), &grad, Some(&pool));
                    alone.update_rounded(k, &mut moved[k], &grad, Some(&pool));
                }
                both.finish_step();
                alone.finish_step();
            }
            let bits = |values: &[Vec<f32>]| values.concat().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert!(bits(&moved) == bits(&rounded), "{method:?} in {precision:?}");
            if precision == Precision::Single {
                let widened: Vec<f64> = rounded.concat().iter().map(|x| f64::from(*x)).collect();
                assert!(widened == values.concat(), "{method:?}: the f64 values are the widened copy");
            }
        }
    }
}

/// A running average that decays into the subnormal range is set to zero instead (subnormal
/// arithmetic would slow every later update): after one small gradient and then zeros, every
/// buffer of every optimizer holds a normal number until it decays to zero, in either
/// precision (Adagrad's sum of squares, which does not decay, keeps its value).
#[test]
fn running_averages_never_hold_subnormal_numbers() {
    for method in all_methods() {
        // Gradients whose squares, times 1 − β₂, are still normal numbers.
        for (precision, small, smallest_normal) in
            [(Precision::Single, 1e-17, f64::from(f32::MIN_POSITIVE)), (Precision::Double, 1e-152, f64::MIN_POSITIVE)]
        {
            let mut optimizer = Optimizer::new(method, Schedule::Constant, &[1]).in_precision(precision);
            let mut params = vec![vec![0.5]];
            let mut held: Vec<(String, bool)> = Vec::new();
            for step in 0..10_000 {
                let grad = if step == 0 { small } else { 0.0 };
                optimizer.step(&mut params, &[vec![grad]]);
                for (k, (name, buffer)) in optimizer.state().buffers.into_iter().enumerate() {
                    let value = buffer[0][0];
                    assert!(
                        value == 0.0 || value.abs() >= smallest_normal,
                        "{method:?} in {precision:?}, step {step}: {name} is {value:e}, subnormal"
                    );
                    match held.get_mut(k) {
                        Some((_, nonzero)) => *nonzero |= value != 0.0,
                        None => held.push((name, value != 0.0)),
                    }
                }
            }
            for (name, nonzero) in held {
                assert!(nonzero, "{method:?} in {precision:?}: {name} was always zero");
            }
            for (name, buffer) in optimizer.state().buffers {
                let decays = name != "sum";
                assert!(!decays || buffer[0][0] == 0.0, "{method:?} in {precision:?}: {name} did not decay to zero");
            }
        }
    }
}

/// Adam in single precision, written out in f32 from PyTorch's formulas: the constants are
/// computed in f64 (Python floats) and rounded once, everything else is f32 arithmetic.
fn adam_in_f32(params: &mut [f32], grads: &[f32], moments: &mut [(f32, f32)], t: i32) {
    let (lr, beta1, beta2, eps) = (0.1, 0.9, 0.999, 1e-8);
    let step_size = (lr / (1.0 - f64::powi(beta1, t))) as f32;
    let bias_correction2_sqrt = (1.0 - f64::powi(beta2, t)).sqrt() as f32;
    for ((param, grad), (mean, mean_square)) in params.iter_mut().zip(grads).zip(moments) {
        *mean = beta1 as f32 * *mean + (1.0 - beta1) as f32 * grad;
        *mean_square = beta2 as f32 * *mean_square + (1.0 - beta2) as f32 * grad * grad;
        let denominator = mean_square.sqrt() / bias_correction2_sqrt + eps as f32;
        *param -= step_size * (*mean / denominator);
    }
}

#[test]
fn single_precision_adam_is_adam_in_f32() {
    let method = Method::Adam { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    let mut optimizer = Optimizer::new(method, Schedule::Constant, &SIZES).in_precision(Precision::Single);
    assert_eq!(optimizer.precision(), Precision::Single);
    let mut params = start();
    let mut by_hand: Vec<f32> = flat(&params).iter().map(|x| *x as f32).collect();
    let mut moments = [(0.0, 0.0); 3];
    for t in 1..=5 {
        let grads = gradient(&params);
        optimizer.step(&mut params, &grads);
        let grads: Vec<f32> = grads.concat().iter().map(|x| *x as f32).collect();
        adam_in_f32(&mut by_hand, &grads, &mut moments, t);
        let wide: Vec<u64> = by_hand.iter().map(|x| f64::from(*x).to_bits()).collect();
        assert_eq!(flat(&params).map(f64::to_bits).to_vec(), wide, "step {t}");
    }
}

#[test]
fn every_method_in_single_precision_leaves_f32_values_near_the_f64_ones() {
    for method in all_methods() {
        let mut double = Optimizer::new(method, Schedule::Constant, &SIZES);
        let mut single = Optimizer::new(method, Schedule::Constant, &SIZES).in_precision(Precision::Single);
        let (mut wide, mut narrow) = (start(), start());
        for step in 1..=20 {
            run(&mut double, &mut wide, 1);
            run(&mut single, &mut narrow, 1);
            for (x, y) in flat(&narrow).iter().zip(flat(&wide)) {
                assert_eq!(f64::from(*x as f32), *x, "{method:?}, step {step}: {x} is not an f32 value");
                // Within a few f32 roundings per step, which compound over the steps.
                assert!((x - y).abs() <= 1e-5 * y.abs().max(1.0), "{method:?}, step {step}: {x} vs {y}");
            }
        }
        assert_ne!(bits(&[flat(&narrow)]), bits(&[flat(&wide)]), "{method:?}: computed in f64");
    }
}

#[test]
fn resuming_in_single_precision_is_bit_identical() {
    let schedule = Schedule::Cosine { total_steps: 40, min_lr: 0.001 };
    for method in all_methods() {
        let single = |optimizer: Optimizer| optimizer.in_precision(Precision::Single);
        let mut uninterrupted = single(Optimizer::new(method, schedule, &SIZES));
        let mut straight = start();
        run(&mut uninterrupted, &mut straight, 40);

        let mut first_half = single(Optimizer::new(method, schedule, &SIZES));
        let mut resumed = start();
        run(&mut first_half, &mut resumed, 17);
        let saved = through_text(&first_half.state());
        let mut second_half = match Optimizer::restore(method, schedule, &SIZES, saved) {
            Ok(optimizer) => single(optimizer),
            Err(error) => panic!("{method:?}: {error}"),
        };
        assert_eq!(second_half, first_half, "{method:?}");
        run(&mut second_half, &mut resumed, 23);
        assert_eq!(bits(&[flat(&resumed)]), bits(&[flat(&straight)]), "{method:?}");
        assert_eq!(second_half.state(), uninterrupted.state(), "{method:?}");
    }
}

// Checkpoints.

/// Every method and momentum variant, so every buffer kind goes through a checkpoint.
fn all_methods() -> Vec<Method> {
    vec![
        Method::Sgd { lr: 0.05, momentum: 0.0, nesterov: false },
        Method::Sgd { lr: 0.05, momentum: 0.9, nesterov: false },
        Method::Sgd { lr: 0.05, momentum: 0.9, nesterov: true },
        Method::Adam { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
        Method::AdamW { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 },
        Method::RmsProp { lr: 0.01, alpha: 0.99, eps: 1e-8, momentum: 0.0 },
        Method::RmsProp { lr: 0.01, alpha: 0.99, eps: 1e-8, momentum: 0.9 },
        Method::Adagrad { lr: 0.1, eps: 1e-10 },
    ]
}

fn run(optimizer: &mut Optimizer, params: &mut [Vec<f64>], steps: usize) {
    for _ in 0..steps {
        let grads = gradient(params);
        optimizer.step(params, &grads);
    }
}

fn bits(values: &[[f64; 3]]) -> Vec<[u64; 3]> {
    values.iter().map(|row| row.map(f64::to_bits)).collect()
}

/// A state written out as text and read back, as a caller saving a checkpoint would.
fn through_text(state: &OptimizerState) -> OptimizerState {
    let parse = |text: &str| -> Vec<f64> {
        text.split(' ').filter(|word| !word.is_empty()).map(|word| word.parse().unwrap_or(f64::NAN)).collect()
    };
    let buffers = state
        .buffers
        .iter()
        .map(|(name, buffer)| {
            let texts: Vec<String> = buffer
                .iter()
                .map(|values| values.iter().map(|value| format!("{value:?}")).collect::<Vec<_>>().join(" "))
                .collect();
            (name.clone(), texts.iter().map(|text| parse(text)).collect())
        })
        .collect();
    OptimizerState { steps_taken: state.steps_taken.to_string().parse().unwrap_or(0), buffers }
}

#[test]
fn resuming_from_a_checkpoint_is_bit_identical() {
    let schedule = Schedule::Cosine { total_steps: 40, min_lr: 0.001 };
    for method in all_methods() {
        let mut uninterrupted = Optimizer::new(method, schedule, &SIZES);
        let mut straight = start();
        run(&mut uninterrupted, &mut straight, 40);

        let mut first_half = Optimizer::new(method, schedule, &SIZES);
        let mut resumed = start();
        run(&mut first_half, &mut resumed, 17);
        let saved = through_text(&first_half.state());
        assert_eq!(saved, first_half.state(), "{method:?}: the text round trip");
        assert_eq!(saved.steps_taken, 17);
        let mut second_half = match Optimizer::restore(method, schedule, &SIZES, saved) {
            Ok(optimizer) => optimizer,
            Err(error) => panic!("{method:?}: {error}"),
        };
        assert_eq!(second_half, first_half, "{method:?}");
        assert_eq!(second_half.learning_rate(), first_half.learning_rate());
        run(&mut second_half, &mut resumed, 23);

        assert_eq!(bits(&[flat(&resumed)]), bits(&[flat(&straight)]), "{method:?}");
        assert_eq!(second_half.state(), uninterrupted.state(), "{method:?}");
        assert_eq!(second_half.steps_taken(), 40);
    }
}

#[test]
fn checkpoints_name_their_buffers_as_pytorch_does() {
    let names = |method: Method| -> Vec<String> {
        Optimizer::new(method, Schedule::Constant, &SIZES).state().buffers.into_iter().map(|(name, _)| name).collect()
    };
    let methods = all_methods();
    let expected: [&[&str]; 8] = [
        &[],
        &["momentum_buffer"],
        &["momentum_buffer"],
        &["exp_avg", "exp_avg_sq"],
        &["exp_avg", "exp_avg_sq"],
        &["square_avg"],
        &["square_avg", "momentum_buffer"],
        &["sum"],
    ];
    for (method, expected) in methods.into_iter().zip(expected) {
        assert_eq!(names(method), expected, "{method:?}");
    }
    let fresh =
        Optimizer::new(Method::Adam { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8 }, Schedule::Constant, &SIZES);
    assert_eq!(fresh.state().buffers[0].1, vec![vec![0.0], vec![0.0, 0.0]]);
    assert_eq!(fresh.state().steps_taken, 0);
}

fn restore_error(method: Method, sizes: &[usize], state: OptimizerState) -> String {
    match Optimizer::restore(method, Schedule::Constant, sizes, state) {
        Ok(_) => panic!("restoring {method:?} should fail"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn restoring_a_mismatched_checkpoint_is_an_error() {
    let adam = Method::Adam { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    let adagrad = Method::Adagrad { lr: 0.1, eps: 1e-10 };
    let momentum = Method::Sgd { lr: 0.1, momentum: 0.9, nesterov: false };
    let plain = Method::Sgd { lr: 0.1, momentum: 0.0, nesterov: false };
    let mut optimizer = Optimizer::new(adam, Schedule::Constant, &SIZES);
    let mut params = start();
    run(&mut optimizer, &mut params, 2);
    let state = optimizer.state();

    // Saved by another optimizer: the buffers it needs are missing.
    let message = restore_error(adagrad, &SIZES, state.clone());
    assert!(message.contains("no `sum` buffer") && message.contains("adagrad"), "{message}");
    // Saved without momentum, resumed with it, and the reverse.
    let message = restore_error(momentum, &SIZES, OptimizerState { steps_taken: 2, buffers: vec![] });
    assert!(message.contains("`momentum_buffer`"), "{message}");
    let message = restore_error(plain, &SIZES, Optimizer::new(momentum, Schedule::Constant, &SIZES).state());
    assert!(message.contains("`momentum_buffer` buffer, which sgd does not use"), "{message}");
    // The program's parameters changed shape since the checkpoint.
    let message = restore_error(adam, &[1, 3], state.clone());
    assert!(message.contains("parameter 1 of buffer `exp_avg` has 2 values, expected 3"), "{message}");
    let message = restore_error(adam, &[1, 2, 4], state.clone());
    assert!(message.contains("buffer `exp_avg` has 2 parameters, expected 3"), "{message}");
    // A damaged checkpoint.
    let mut duplicated = state.clone();
    duplicated.buffers.push(duplicated.buffers[0].clone());
    let message = restore_error(adam, &SIZES, duplicated);
    assert!(message.contains("`exp_avg` appears twice"), "{message}");
    let mut ragged = state;
    ragged.buffers[1].1[0].push(0.0);
    let message = restore_error(adam, &SIZES, ragged);
    assert!(message.contains("parameter 0 of buffer `exp_avg_sq` has 2 values, expected 1"), "{message}");

    // Plain SGD keeps no buffers: any shapes resume.
    assert!(Optimizer::restore(plain, Schedule::Constant, &[7], OptimizerState::default()).is_ok());
}

#[test]
#[should_panic(expected = "differ from the optimizer's")]
fn stepping_with_the_wrong_shapes_is_a_caller_bug() {
    let mut optimizer = Optimizer::new(Method::Adagrad { lr: 0.1, eps: 1e-10 }, Schedule::Constant, &SIZES);
    let mut params = vec![vec![0.0], vec![0.0]];
    optimizer.step(&mut params, &[vec![1.0], vec![1.0]]);
}

// Settings.

/// An optimizer's `(name, value)` settings, as `Method::from_settings` takes them.
type Settings<'s> = &'s [(&'s str, f64)];

fn settings_error(name: &str, settings: &[(&str, f64)]) -> String {
    match Method::from_settings(name, settings) {
        Ok(method) => panic!("{name} {settings:?} should be rejected, got {method:?}"),
        Err(error) => error.message,
    }
}

#[test]
fn from_settings_fills_in_pytorch_defaults() {
    let lr = [("lr", 0.5)];
    let cases = [
        ("sgd", Method::Sgd { lr: 0.5, momentum: 0.0, nesterov: false }),
        ("adam", Method::Adam { lr: 0.5, beta1: 0.9, beta2: 0.999, eps: 1e-8 }),
        ("adamw", Method::AdamW { lr: 0.5, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 }),
        ("rmsprop", Method::RmsProp { lr: 0.5, alpha: 0.99, eps: 1e-8, momentum: 0.0 }),
        ("adagrad", Method::Adagrad { lr: 0.5, eps: 1e-10 }),
    ];
    for (name, expected) in cases {
        assert_eq!(Method::from_settings(name, &lr), Ok(expected));
        assert_eq!(expected.name(), name);
        assert_eq!(expected.learning_rate(), 0.5);
    }
}

#[test]
fn from_settings_takes_every_setting() {
    assert_eq!(
        Method::from_settings("sgd", &[("momentum", 0.9), ("lr", 0.1), ("nesterov", 1.0)]),
        Ok(Method::Sgd { lr: 0.1, momentum: 0.9, nesterov: true })
    );
    assert_eq!(
        Method::from_settings("sgd", &[("lr", 0.1), ("nesterov", 0.0)]),
        Ok(Method::Sgd { lr: 0.1, momentum: 0.0, nesterov: false })
    );
    assert_eq!(
        Method::from_settings(
            "adamw",
            &[("lr", 0.001), ("beta1", 0.8), ("beta2", 0.99), ("eps", 1e-6), ("weight_decay", 0.0)]
        ),
        Ok(Method::AdamW { lr: 0.001, beta1: 0.8, beta2: 0.99, eps: 1e-6, weight_decay: 0.0 })
    );
    assert_eq!(
        Method::from_settings("rmsprop", &[("lr", 0.01), ("alpha", 0.9), ("eps", 1e-6), ("momentum", 0.5)]),
        Ok(Method::RmsProp { lr: 0.01, alpha: 0.9, eps: 1e-6, momentum: 0.5 })
    );
    assert_eq!(
        Method::from_settings("adagrad", &[("eps", 1e-8), ("lr", 0.01)]),
        Ok(Method::Adagrad { lr: 0.01, eps: 1e-8 })
    );
}

#[test]
fn from_settings_rejects_unknown_names_and_settings() {
    let message = settings_error("adamax", &[("lr", 0.1)]);
    assert!(message.contains("unknown optimizer `adamax`") && message.contains("adagrad"), "{message}");
    let message = settings_error("adam", &[("lr", 0.1), ("momentum", 0.9)]);
    assert!(message.contains("adam has no setting `momentum`") && message.contains("beta1"), "{message}");
    let message = settings_error("adagrad", &[("lr", 0.1), ("lr", 0.2)]);
    assert!(message.contains("`lr` is given twice"), "{message}");
    let message = settings_error("sgd", &[("momentum", 0.9)]);
    assert!(message.contains("`lr` is required"), "{message}");
    let message = settings_error("rmsprop", &[]);
    assert!(message.contains("`lr` is required"), "{message}");
}

#[test]
fn from_settings_rejects_values_out_of_range_naming_the_setting() {
    let cases: &[(&str, Settings, &str)] = &[
        ("sgd", &[("lr", 0.0)], "sgd: lr must be finite and > 0, got 0"),
        ("adam", &[("lr", -0.1)], "adam: lr must be finite and > 0, got -0.1"),
        ("adam", &[("lr", f64::NAN)], "adam: lr must be finite and > 0, got NaN"),
        ("adagrad", &[("lr", f64::INFINITY)], "adagrad: lr must be finite and > 0, got inf"),
        ("adam", &[("lr", 0.1), ("beta1", 1.0)], "adam: beta1 must be in [0, 1), got 1"),
        ("adamw", &[("lr", 0.1), ("beta2", -0.1)], "adamw: beta2 must be in [0, 1), got -0.1"),
        ("adam", &[("lr", 0.1), ("eps", 0.0)], "adam: eps must be finite and > 0, got 0"),
        ("adagrad", &[("lr", 0.1), ("eps", -1e-10)], "adagrad: eps must be finite and > 0, got -0.0000000001"),
        ("rmsprop", &[("lr", 0.1), ("alpha", 1.5)], "rmsprop: alpha must be in [0, 1), got 1.5"),
        ("rmsprop", &[("lr", 0.1), ("momentum", -0.5)], "rmsprop: momentum must be in [0, 1), got -0.5"),
        ("sgd", &[("lr", 0.1), ("momentum", -0.1)], "sgd: momentum must be in [0, 1), got -0.1"),
        ("sgd", &[("lr", 0.1), ("momentum", 1.0)], "sgd: momentum must be in [0, 1), got 1"),
        ("adamw", &[("lr", 0.1), ("weight_decay", -0.01)], "adamw: weight_decay must be finite and >= 0, got -0.01"),
        ("sgd", &[("lr", 0.1), ("nesterov", 1.0)], "sgd: nesterov needs momentum > 0"),
        (
            "sgd",
            &[("lr", 0.1), ("momentum", 0.9), ("nesterov", 0.5)],
            "sgd: nesterov must be 0 (false) or 1 (true), got 0.5",
        ),
    ];
    for &(name, settings, expected) in cases {
        assert_eq!(settings_error(name, settings), expected);
    }
}

#[test]
fn validate_checks_a_method_built_directly() {
    assert!(Method::Adam { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8 }.validate().is_ok());
    let error = Method::RmsProp { lr: 0.1, alpha: 0.99, eps: 0.0, momentum: 0.0 }.validate();
    assert_eq!(error.map_err(|error| error.message), Err("rmsprop: eps must be finite and > 0, got 0".to_string()));
}

// Schedule text.

#[test]
fn schedules_parse_from_text() {
    let cases = [
        ("constant", Schedule::Constant),
        ("  constant ", Schedule::Constant),
        ("constant()", Schedule::Constant),
        ("exponential(0.999)", Schedule::ExponentialDecay { rate: 0.999 }),
        ("exponential ( 0.5 )", Schedule::ExponentialDecay { rate: 0.5 }),
        ("exponential(1)", Schedule::ExponentialDecay { rate: 1.0 }),
        ("cosine", Schedule::Cosine { total_steps: 5000, min_lr: 0.0 }),
        ("cosine()", Schedule::Cosine { total_steps: 5000, min_lr: 0.0 }),
        ("cosine(0.0001)", Schedule::Cosine { total_steps: 5000, min_lr: 0.0001 }),
        ("cosine(1e-5)", Schedule::Cosine { total_steps: 5000, min_lr: 1e-5 }),
        ("step(1000, 0.5)", Schedule::Step { every: 1000, factor: 0.5 }),
        ("step( 1000 ,0.5 ) ", Schedule::Step { every: 1000, factor: 0.5 }),
    ];
    for (text, expected) in cases {
        assert_eq!(Schedule::parse(text, 5000), Ok(expected), "{text:?}");
    }
}

#[test]
fn schedule_parse_errors_name_what_is_wrong() {
    let cases = [
        ("", "empty schedule"),
        ("   ", "empty schedule"),
        ("linear", "unknown schedule `linear`"),
        ("Cosine", "unknown schedule `Cosine`"),
        ("(0.5)", "missing the schedule's name"),
        ("exponential", "exponential takes one argument (the decay rate per step), got 0"),
        ("exponential(0.9, 0.1)", "exponential takes one argument (the decay rate per step), got 2"),
        ("exponential(fast)", "rate must be a number, got `fast`"),
        ("exponential(1.5)", "exponential: rate must be in (0, 1], got 1.5"),
        ("exponential(0)", "exponential: rate must be in (0, 1], got 0"),
        ("exponential(nan)", "exponential: rate must be in (0, 1], got NaN"),
        ("cosine(-0.1)", "cosine: min_lr must be finite and >= 0, got -0.1"),
        ("cosine(0.1, 0.2)", "cosine takes at most one argument (the minimum learning rate), got 2"),
        ("cosine(0.1", "expected `)` at the end"),
        ("cosine(0.1)x", "expected `)` at the end"),
        ("constant(1)", "constant takes no arguments, got 1"),
        ("step(1000)", "step takes two arguments (every, factor), got 1"),
        ("step(1000, 0.5, 2)", "step takes two arguments (every, factor), got 3"),
        ("step(0, 0.5)", "step: every must be a whole number of steps >= 1, got 0"),
        ("step(1.5, 0.5)", "every must be a whole number of steps >= 1, got `1.5`"),
        ("step(-10, 0.5)", "every must be a whole number of steps >= 1, got `-10`"),
        ("step(10, 2)", "step: factor must be in (0, 1], got 2"),
        ("step(10, )", "factor must be a number, got ``"),
    ];
    for (text, expected) in cases {
        match Schedule::parse(text, 5000) {
            Ok(schedule) => panic!("{text:?} should be rejected, got {schedule:?}"),
            Err(error) => assert!(error.message.contains(expected), "{text:?}: {error}"),
        }
    }
    let message = Schedule::parse("step(10, 2)", 5000).map_err(|error| error.message);
    assert_eq!(message, Err("schedule `step(10, 2)`: step: factor must be in (0, 1], got 2".to_string()));
    let message = Schedule::parse("cosine", 0).map_err(|error| error.message);
    assert_eq!(message, Err("schedule `cosine`: cosine: total_steps must be >= 1, got 0".to_string()));
}

// Convergence.

/// Steps `method` on the test quadratic moved to `optimum` until every coordinate is within 1e-6
/// of it, returning how many steps that took, or the parameters reached if `budget` steps were
/// not enough.
fn steps_to_converge(method: Method, schedule: Schedule, budget: u64, optimum: [f64; 3]) -> Result<u64, [f64; 3]> {
    let mut optimizer = Optimizer::new(method, schedule, &SIZES);
    let mut params = start();
    for step in 0..budget {
        if flat(&params).iter().zip(optimum).all(|(value, optimum)| (value - optimum).abs() <= 1e-6) {
            return Ok(step);
        }
        let grads = gradient_towards(&params, optimum);
        optimizer.step(&mut params, &grads);
    }
    Err(flat(&params))
}

#[test]
fn every_method_minimises_a_quadratic() {
    // Adaptive methods take steps of about lr whatever the gradient's size, so at a constant lr
    // they hover around the minimum; a decaying schedule lets them settle, as in practice.
    let budget = 2000;
    let decaying = Schedule::Cosine { total_steps: budget, min_lr: 0.0 };
    let cases = [
        ("sgd", Method::Sgd { lr: 0.1, momentum: 0.0, nesterov: false }, Schedule::Constant),
        ("sgd momentum", Method::Sgd { lr: 0.05, momentum: 0.5, nesterov: false }, Schedule::Constant),
        ("sgd nesterov", Method::Sgd { lr: 0.05, momentum: 0.5, nesterov: true }, Schedule::Constant),
        ("adam", Method::Adam { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8 }, decaying),
        ("rmsprop", Method::RmsProp { lr: 0.01, alpha: 0.99, eps: 1e-8, momentum: 0.0 }, decaying),
        ("rmsprop momentum", Method::RmsProp { lr: 0.01, alpha: 0.99, eps: 1e-8, momentum: 0.9 }, decaying),
        ("adagrad", Method::Adagrad { lr: 0.5, eps: 1e-10 }, Schedule::Constant),
    ];
    let failures: Vec<String> = cases
        .into_iter()
        .filter_map(|(name, method, schedule)| match steps_to_converge(method, schedule, budget, OPTIMUM) {
            Ok(_) => None,
            Err(reached) => Some(format!("{name} reached {reached:?}")),
        })
        .collect();
    assert!(failures.is_empty(), "not within 1e-6 of {OPTIMUM:?} in {budget} steps: {failures:?}");
}

#[test]
fn adamw_minimises_a_quadratic_centred_at_zero_and_is_pulled_towards_zero_otherwise() {
    // Decoupled weight decay shrinks θ towards 0 outside the gradient, so AdamW minimises f
    // exactly only when f's minimum is at 0; elsewhere it settles short of the minimum, on the
    // side of 0 (PyTorch's AdamW does the same).
    let budget = 2000;
    let method = Method::AdamW { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 };
    let schedule = Schedule::Cosine { total_steps: budget, min_lr: 0.0 };
    let centred = steps_to_converge(method, schedule, budget, [0.0; 3]);
    assert!(centred.is_ok(), "adamw reached {centred:?}, not within 1e-6 of 0, in {budget} steps");
    let Err(reached) = steps_to_converge(method, schedule, budget, OPTIMUM) else {
        panic!("adamw should stop short of {OPTIMUM:?}");
    };
    for (value, optimum) in reached.into_iter().zip(OPTIMUM) {
        assert!(value.abs() < optimum.abs() && (value - optimum).abs() < 0.01, "adamw reached {reached:?}");
    }
}
