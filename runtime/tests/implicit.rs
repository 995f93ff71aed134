//! Implicit reparameterisation of gamma samples: accuracy against high-precision values,
//! edge behaviour, and unbiasedness of the resulting gradient estimates.

// The reference tables are generated literals; some happen to equal named constants such as ln 2.
#![allow(clippy::approx_constant)]

mod common;

use common::{assert_close, assert_unbiased, moments_of, relative_error, Moments};
use ppl_runtime::{gamma, gamma_sample_dshape, Rng};

// Reference values: produced once by `python3 runtime/tests/reference_values.py` and pasted
// here; the tests do not run Python. Each dx/dα is the central finite difference, at 60
// significant digits with h = 1e-20, of the inverse CDF x(α) = P⁻¹(α, u) at the fixed level
// u = P(α, x) (mpmath), cross-checked there against −(∂P/∂α)/p from mpmath's numerical
// derivative (agreement to 1e-25). The x are the 1e-6, 0.05, 0.5, 0.95 and 1 − 1e-6 quantiles
// (those that do not underflow); the rows for α ≥ 1e7 come from quadrature, as noted there.

const GAMMA_DSHAPE: &[(f64, f64, f64)] = &[
    // (shape α, x, dx/dα)
    (0.01, 4.465535018910624e-131, 1.3377911107700541e-126),
    (0.01, 4.465535018910562e-31, 3.0956367409140126e-27),
    (0.01, 0.003362623998074687, 1.7332896819656978),
    (0.01, 7.151253478084882, 91.29303120987623),
    (0.3, 6.97269909640939e-21, 1.0747972581453881e-18),
    (0.3, 3.211034699722965e-05, 0.0010893340746718945),
    (0.3, 0.07313113586695198, 0.642064162445568),
    (0.3, 1.372349944100886, 3.1061656651898866),
    (0.3, 10.984835632108625, 5.6458591069129795),
    (0.9, 2.0631059928342241e-07, 3.6104512974323547e-06),
    (0.9, 0.034959469312141146, 0.14716842227317914),
    (0.9, 0.5967430489553945, 0.9595676775965251),
    (0.9, 2.798961058467818, 2.00061884016172),
    (0.9, 13.482084784620756, 3.401613274560413),
    (1.0, 1.0000005000003338e-06, 1.4238308881371559e-05),
    (1.0, 0.05129329438755053, 0.17925468309434225),
    (1.0, 0.6931471805599455, 0.9680448304420446),
    (1.0, 2.9957322735539895, 1.936792542746883),
    (1.0, 13.815510557935518, 3.270780014941891),
    (2.5, 0.0064480801032485435, 0.015885485924179092),
    (2.5, 0.5727381130308846, 0.46500319919134503),
    (2.5, 2.175730095547763, 0.9959193767730196),
    (2.5, 5.535248846758176, 1.5485213729778806),
    (2.5, 17.94409343980521, 2.4335331443239028),
    (10.0, 1.276818787864408, 0.3056551972712944),
    (10.0, 5.425405697091295, 0.7372310889505137),
    (10.0, 9.668714614714128, 0.9997879018331381),
    (10.0, 15.705216422115459, 1.263436239395265),
    (10.0, 32.710340517484816, 1.7345100761037466),
    (50.0, 23.25066535794657, 0.6677196575300014),
    (50.0, 38.96473258250863, 0.8834274921098884),
    (50.0, 49.66706461799423, 0.9999919830850547),
    (50.0, 62.17105670200203, 1.116597505201199),
    (50.0, 91.06338855971309, 1.333932199781984),
    (1000.0, 856.8146512793919, 0.92487644472504),
    (1000.0, 948.5598493836511, 0.9739895095875511),
    (1000.0, 999.6666864269652, 0.9999999802324887),
    (1000.0, 1052.5771180823206, 1.0260105519410345),
    (1000.0, 1157.577911008724, 1.0751276881337226),
    (10000.0, 9531.835117189807, 0.9762339288834874),
    (10000.0, 9836.085110855192, 0.9917756340670525),
    (10000.0, 9999.666668642047, 0.9999999998024547),
    (10000.0, 10165.051911966126, 1.0082243665477806),
    (10000.0, 10482.561164638257, 1.023766112444313),
    // Huge shapes (the runtime's large-shape expansion): mpmath tanh-sinh quadrature of
    // ∫ₓ^∞ (p(t)/p(x))(ln t − ψ(α)) dt, itself checked against the finite difference at α = 1e4.
    (10000000.0, 9984999.051522689, 0.9992495939013109),
    (10000000.0, 9999999.666666668, 0.9999999999999998),
    (10000000.0, 10015038.846499585, 1.0007515823425162),
    (1000000000.0, 999856061.317296, 0.9999280273719967),
    (1000000000.0, 999999999.6666666, 1.0),
    (1000000000.0, 1000150323.6734234, 1.0000751582374727),
];

#[test]
fn derivative_matches_high_precision_finite_differences_of_the_inverse_cdf() {
    let mut worst: f64 = 0.0;
    for &(shape, x, expected) in GAMMA_DSHAPE {
        let actual = gamma_sample_dshape(x, shape);
        worst = worst.max(relative_error(actual, expected));
        // Measured ≤ 5e-15 on every point.
        assert_close(&format!("dx/dα at α = {shape}, x = {x:e}"), actual, expected, 2e-14);
    }
    println!("gamma_sample_dshape: worst relative error {worst:.2e} over {} points", GAMMA_DSHAPE.len());
}

#[test]
fn derivative_is_continuous_where_the_method_switches() {
    // The series is used below max(e^ψ(α+1), 1), the continued fraction above; the two must
    // agree at the switch (e^ψ(α+1) ≈ α + 1/2 for large α).
    for shape in [0.05_f64, 0.7, 1.0, 3.0, 20.0, 400.0, 1e5] {
        let switch = ppl_runtime::digamma(shape + 1.0).exp().max(1.0);
        let below = gamma_sample_dshape(switch * (1.0 - 1e-12), shape);
        let above = gamma_sample_dshape(switch * (1.0 + 1e-12), shape);
        assert_close(&format!("continuity at α = {shape}, x = {switch}"), above, below, 1e-11);
    }
}

#[test]
fn derivative_is_continuous_where_the_large_shape_expansion_takes_over() {
    // In shape, at α = 1e7 (sums below, expansion from there on) ...
    let shape: f64 = 1e7;
    for deviation in [-9.0, -2.0, 0.0, 1.0, 5.0] {
        let x = shape + deviation * shape.sqrt();
        let sums = gamma_sample_dshape(x, shape * (1.0 - 1e-15));
        let expansion = gamma_sample_dshape(x, shape);
        assert_close(&format!("continuity in α at w = {deviation}"), expansion, sums, 1e-13);
    }
    // ... and in x, at ten standard deviations from the mean.
    for shape in [1e7_f64, 1e9] {
        for side in [-1.0, 1.0] {
            let edge = shape + side * 10.0 * shape.sqrt();
            let inside = gamma_sample_dshape(edge - side * 1e-6, shape);
            let outside = gamma_sample_dshape(edge + side * 1e-6, shape);
            assert_close(&format!("continuity in x at α = {shape}, w = {}", side * 10.0), outside, inside, 1e-12);
        }
    }
}

#[test]
fn derivative_is_positive_and_zero_at_zero() {
    // Including a tiny shape, where the O(1/α) parts of the formula must not overflow or cancel.
    for shape in [1e-300, 1e-3, 0.5, 1.0, 7.0, 300.0, 1e8] {
        assert_eq!(gamma_sample_dshape(0.0, shape), 0.0);
        for x in [1e-300, 1e-20, 1e-3, 0.5, 2.0, 30.0, 700.0, 1e4] {
            let derivative = gamma_sample_dshape(x, shape);
            assert!(derivative.is_finite() && derivative >= 0.0, "dx/dα({x}, {shape}) = {derivative}");
        }
    }
}

/// At α = 1 (the exponential) dx/dα = eˣ·E₁(x) + ln x + γ; reference values from that closed
/// form in mpmath (see reference_values.py).
const EXPONENTIAL_DSHAPE: &[(f64, f64)] = &[
    (0.6931471805599453, 0.9680448304420445),
    (0.001, 0.007334456244883786),
    (5.0, 2.3570757536203653),
    (40.0, 4.290499234095098),
];

#[test]
fn derivative_for_an_exponential_sample_matches_its_closed_form() {
    for &(x, expected) in EXPONENTIAL_DSHAPE {
        assert_close(&format!("dx/dα at α = 1, x = {x}"), gamma_sample_dshape(x, 1.0), expected, 2e-15);
    }
}

#[test]
fn invalid_arguments_give_nan() {
    for (x, shape) in [
        (1.0, 0.0),
        (1.0, -1.0),
        (1.0, f64::NAN),
        (1.0, f64::INFINITY),
        (-1.0, 2.0),
        (f64::NAN, 2.0),
        (f64::INFINITY, 2.0),
    ] {
        assert!(gamma_sample_dshape(x, shape).is_nan(), "dx/dα({x}, {shape}) should be NaN");
    }
}

/// For x ~ Gamma(θ, 1), E[x] = θ, so E[dx/dθ] = d/dθ E[x] = 1; and E[x²] = θ(θ + 1), so
/// E[x·dx/dθ] = ½ d/dθ E[x²] = θ + ½.
#[test]
fn pathwise_gradient_of_the_mean_is_unbiased() {
    for (stream, theta) in [0.3, 2.5, 50.0].into_iter().enumerate() {
        let mut rng = Rng::new(30, stream as u64);
        let mut derivative = Moments::default();
        let mut half_square_derivative = Moments::default();
        for _ in 0..20_000 {
            let x = gamma(&mut rng, theta, 1.0).unwrap();
            let dx = gamma_sample_dshape(x, theta);
            derivative.push(dx);
            half_square_derivative.push(x * dx);
        }
        assert_unbiased(&format!("E[dx/dθ] at θ = {theta}"), &derivative, 1.0);
        assert_unbiased(&format!("E[x dx/dθ] at θ = {theta}"), &half_square_derivative, theta + 0.5);
    }
}

/// With a rate β the compiler differentiates the standard draw and divides: for x = g/β,
/// dx/dα = gamma_sample_dshape(g, α)/β, so E[dx/dα] = d/dα (α/β) = 1/β.
#[test]
fn pathwise_gradient_with_a_rate_is_unbiased() {
    let (shape, rate) = (1.7, 4.0);
    let mut rng = Rng::new(31, 0);
    let derivative = moments_of((0..20_000).map(|_| {
        let x = gamma(&mut rng, shape, rate).unwrap();
        gamma_sample_dshape(rate * x, shape) / rate
    }));
    assert_unbiased("E[dx/dα] with rate 4", &derivative, 1.0 / rate);
}

/// Beta as a ratio of gammas, as the compiler builds it: x = g_a / (g_a + g_b) with
/// g_a ~ Gamma(a, 1), g_b ~ Gamma(b, 1). By the chain rule dx/da = (dg_a/da)·g_b/(g_a + g_b)²,
/// and E[dx/da] = d/da (a/(a + b)) = b/(a + b)².
#[test]
fn beta_gradient_through_two_gammas_is_unbiased() {
    for (stream, (a, b)) in [(0.4, 0.9), (3.0, 1.5)].into_iter().enumerate() {
        let mut rng = Rng::new(32, stream as u64);
        let mut dx_da = Moments::default();
        let mut dx_db = Moments::default();
        for _ in 0..20_000 {
            let g_a = gamma(&mut rng, a, 1.0).unwrap();
            let g_b = gamma(&mut rng, b, 1.0).unwrap();
            let sum_squared = (g_a + g_b) * (g_a + g_b);
            dx_da.push(gamma_sample_dshape(g_a, a) * g_b / sum_squared);
            dx_db.push(-gamma_sample_dshape(g_b, b) * g_a / sum_squared);
        }
        let sum = a + b;
        assert_unbiased(&format!("E[dx/da] for beta({a}, {b})"), &dx_da, b / (sum * sum));
        assert_unbiased(&format!("E[dx/db] for beta({a}, {b})"), &dx_db, -a / (sum * sum));
    }
}
