//! Special functions against high-precision reference values, and their edge behaviour.

// The reference tables are generated literals; some happen to equal named constants such as ln 2.
#![allow(clippy::approx_constant)]

mod common;

use common::{assert_close, relative_error};
use ppl_runtime::{
    digamma, expm1, floor_slice, lgamma, log1p, log_sigmoid, logsumexp, maximum, minimum, sigmoid, softplus,
    softplus_and_sigmoid, softplus_and_sigmoid_slices, softplus_slice, trigamma,
};

// Reference values: produced once by `python3 runtime/tests/reference_values.py` (mpmath at 60
// significant digits, rounded to the nearest f64) and pasted here; the tests do not run Python.

const LGAMMA: &[(f64, f64)] = &[
    (1e-300, 690.7755278982137),
    (1e-10, 23.025850929882736),
    (0.1, 2.252712651734206),
    (0.5, 0.5723649429247001),
    (0.9, 0.06637623973474295),
    (0.999, 0.0005780385328913802),
    (1.0000000001, -5.772157125783244e-11),
    (1.001, -0.0005763935982833062),
    (1.5, -0.12078223763524522),
    (1.999, -0.0004224618006921073),
    (1.999999999, -4.227843697573328e-10),
    (2.001, 0.000423106734800117),
    (2.5, 0.2846828704729192),
    (3.7, 1.428072326665388),
    (10.0, 12.801827480081469),
    (25.5, 56.389167643719944),
    (100.0, 359.1342053695754),
    (1234.5, 7550.550901077895),
    (100000.0, 1051287.7089736569),
    (10000000000.0, 220258509288.81058),
    (1e+300, 6.897755278982137e+302),
    (-0.5, 1.2655121234846454),
    (-1.5, 0.860047015376481),
    (-2.5, -0.056243716497674054),
    (-10.3, -14.457515440024208),
];
const DIGAMMA: &[(f64, f64)] = &[
    (1e-10, -10000000000.577215),
    (0.01, -100.56088545786868),
    (0.1, -10.423754940411076),
    (0.5, -1.9635100260214235),
    (1.0, -0.5772156649015329),
    (1.2, -0.2890398965921884),
    (1.4, -0.06138454458511624),
    (1.4616321449683622, -9.241265521729427e-17),
    (1.46163214496836, -2.2410766695906462e-15),
    (1.5, 0.03648997397857652),
    (1.7, 0.2085478748734939),
    (2.0, 0.42278433509846713),
    (3.5, 1.103156640645243),
    (9.99, 2.250700372831201),
    (10.0, 2.251752589066721),
    (10.5, 2.3030010342976865),
    (100.0, 4.600161852738087),
    (100000.0, 11.512920464961896),
    (1000000000000000.0, 34.538776394910684),
    (-0.5, 0.03648997397857652),
    (-1.5, 0.7031566406452432),
    (-2.3, 3.3173231575618227),
    (-10.7, 0.13374481244706443),
];
const TRIGAMMA: &[(f64, f64)] = &[
    (1e-10, 1e+20),
    (0.01, 10001.621213528313),
    (0.5, 4.934802200544679),
    (1.0, 1.6449340668482264),
    (1.5, 0.9348022005446793),
    (2.0, 0.6449340668482264),
    (5.5, 0.19934238698962767),
    (9.99, 0.10527695014824179),
    (10.0, 0.10516633568168575),
    (10.5, 0.09991695605912673),
    (100.0, 0.010050166663333571),
    (100000.0, 1.0000050000166667e-05),
    (10000000000.0, 1.00000000005e-10),
    (-0.5, 8.934802200544679),
    (-1.5, 9.379246644989124),
    (-2.3, 14.725912160961292),
];
const SOFTPLUS: &[(f64, f64)] = &[
    (-800.0, 0.0),
    (-40.0, 4.248354255291589e-18),
    (-1.0, 0.3132616875182228),
    (-1e-10, 0.6931471805099453),
    (0.0, 0.6931471805599453),
    (1e-10, 0.6931471806099453),
    (1.0, 1.3132616875182228),
    (3.5, 3.5297504182726205),
    (40.0, 40.0),
    (800.0, 800.0),
];
const LOG_SIGMOID: &[(f64, f64)] = &[
    (-800.0, -800.0),
    (-40.0, -40.0),
    (-1.0, -1.3132616875182228),
    (-1e-10, -0.6931471806099453),
    (0.0, -0.6931471805599453),
    (1e-10, -0.6931471805099453),
    (1.0, -0.3132616875182228),
    (3.5, -0.029750418272620566),
    (40.0, -4.248354255291589e-18),
    (800.0, -0.0),
];
const SIGMOID: &[(f64, f64)] = &[
    (-800.0, 0.0),
    (-40.0, 4.248354255291589e-18),
    (-1.0, 0.2689414213699951),
    (-1e-10, 0.499999999975),
    (0.0, 0.5),
    (1e-10, 0.500000000025),
    (1.0, 0.7310585786300049),
    (3.5, 0.9706877692486436),
    (40.0, 1.0),
    (800.0, 1.0),
];
const LOG1P: &[(f64, f64)] = &[
    (1e-300, 1e-300),
    (-1e-10, -1.00000000005e-10),
    (1e-10, 9.999999999500001e-11),
    (-0.5, -0.6931471805599453),
    (0.75, 0.5596157879354227),
    (3.0, 1.3862943611198906),
    (10000000000.0, 23.025850930040455),
];
const EXPM1: &[(f64, f64)] = &[
    (1e-300, 1e-300),
    (-1e-10, -9.999999999500001e-11),
    (1e-10, 1.00000000005e-10),
    (-0.5, -0.3934693402873666),
    (0.75, 1.1170000166126746),
    (3.0, 19.085536923187668),
    (700.0, 1.0142320547350045e+304),
];
const LOGSUMEXP: &[(&[f64], f64)] = &[
    (&[1.0, 2.0, 3.0], 3.40760596444438),
    (&[1000.0, 1000.0], 1000.6931471805599),
    (&[-1000.0, -1000.5], -999.5259230158199),
    (&[0.0, -40.0], 4.248354255291589e-18),
    (&[-3.0, 0.5, -745.0, 2.25, 0.0], 2.5003077889984864),
    (&[42.0], 42.0),
];

/// Prints the worst relative error of `function` over `table` and asserts each is within `tolerance`.
fn check_table(name: &str, function: fn(f64) -> f64, table: &[(f64, f64)], tolerance: f64) {
    let mut worst: f64 = 0.0;
    for &(x, expected) in table {
        let actual = function(x);
        worst = worst.max(relative_error(actual, expected));
        assert_close(&format!("{name}({x:e})"), actual, expected, tolerance);
    }
    println!("{name}: worst relative error {worst:.2e} over {} points", table.len());
}

#[test]
fn lgamma_matches_reference_values() {
    // Including next to its zeros at 1 and 2, where libm's lgamma keeps full relative accuracy.
    check_table("lgamma", lgamma, LGAMMA, 1e-14);
}

#[test]
fn lgamma_is_exact_at_one_and_two_and_infinite_at_poles() {
    assert_eq!(lgamma(1.0), 0.0);
    assert_eq!(lgamma(2.0), 0.0);
    assert_eq!(lgamma(0.0), f64::INFINITY);
    assert_eq!(lgamma(-3.0), f64::INFINITY);
    assert!(lgamma(f64::NAN).is_nan());
}

#[test]
fn digamma_matches_reference_values() {
    check_table("digamma", digamma, DIGAMMA, 1e-14);
}

#[test]
fn digamma_keeps_relative_accuracy_at_its_positive_root() {
    // The double nearest the root, where ψ ≈ −9.2e-17: the recurrence alone would give noise.
    let (root, expected) = DIGAMMA[7];
    assert_eq!(root, 1.4616321449683622);
    assert_close("digamma(root)", digamma(root), expected, 1e-14);
}

#[test]
fn digamma_is_nan_at_poles_and_follows_infinities() {
    for pole in [0.0, -1.0, -2.0, -1e6] {
        assert!(digamma(pole).is_nan(), "digamma({pole})");
    }
    assert!(digamma(f64::NAN).is_nan());
    assert!(digamma(f64::NEG_INFINITY).is_nan());
    assert_eq!(digamma(f64::INFINITY), f64::INFINITY);
}

#[test]
fn trigamma_matches_reference_values() {
    check_table("trigamma", trigamma, TRIGAMMA, 1e-14);
}

#[test]
fn trigamma_is_infinite_at_poles_and_zero_at_infinity() {
    for pole in [0.0, -1.0, -7.0] {
        assert_eq!(trigamma(pole), f64::INFINITY, "trigamma({pole})");
    }
    assert_eq!(trigamma(f64::INFINITY), 0.0);
    assert!(trigamma(f64::NAN).is_nan());
}

#[test]
fn trigamma_is_the_derivative_of_digamma_across_every_branch() {
    // Points straddling the switches between methods: the Taylor disc about the root
    // (1.4616 ± 0.25), the recurrence, and the asymptotic series at 10.
    let points: [f64; 12] = [0.3, 1.2116, 1.2117, 1.7116, 1.7117, 5.0, 9.999, 10.0, 10.001, 30.0, -0.7, -3.4];
    for x in points {
        let step = 1e-5 * x.abs().max(1.0);
        let central_difference = (digamma(x + step) - digamma(x - step)) / (2.0 * step);
        assert_close(&format!("trigamma({x}) vs difference of digamma"), trigamma(x), central_difference, 1e-8);
    }
}

#[test]
fn digamma_is_continuous_where_its_method_changes() {
    for boundary in [1.4616321449683622 - 0.25, 1.4616321449683622 + 0.25, 10.0] {
        let below = digamma(boundary - 1e-12);
        let above = digamma(boundary + 1e-12);
        // ψ′ ≤ 2 on these points, so a 2e-12 step moves ψ by < 5e-12.
        assert!((above - below).abs() < 5e-12, "digamma jumps at {boundary}: {below} vs {above}");
    }
}

#[test]
fn softplus_log_sigmoid_and_sigmoid_match_reference_values_without_overflow() {
    check_table("softplus", softplus, SOFTPLUS, 1e-15);
    check_table("log_sigmoid", log_sigmoid, LOG_SIGMOID, 1e-15);
    check_table("sigmoid", sigmoid, SIGMOID, 1e-15);
    assert_eq!(softplus(f64::INFINITY), f64::INFINITY);
    assert_eq!(softplus(f64::NEG_INFINITY), 0.0);
    assert_eq!(log_sigmoid(f64::NEG_INFINITY), f64::NEG_INFINITY);
    assert_eq!(sigmoid(f64::NEG_INFINITY), 0.0);
    assert_eq!(sigmoid(f64::INFINITY), 1.0);
    assert!(softplus(f64::NAN).is_nan() && log_sigmoid(f64::NAN).is_nan() && sigmoid(f64::NAN).is_nan());
}

/// Arguments that reach every branch of `softplus`, `sigmoid`, `exp` and `log1p`: both signs of
/// zero, subnormals, where e^{−|x|} underflows (|x| ≈ 745) or is tiny (2⁻⁵³ from |x| ≈ 36.7),
/// where `log1p` changes its reduction (e ≈ √2 − 1), the infinities, NaNs of both signs and
/// other payloads, the last reals with a fraction (for `floor`), then a sweep of [−60, 60] and
/// random bit patterns of every exponent.
fn awkward_grid() -> Vec<f64> {
    let mut grid = vec![
        4503599627370495.5,
        -4503599627370495.5,
        9007199254740993.0,
        0.0,
        -0.0,
        5e-324,
        -5e-324,
        f64::MIN_POSITIVE,
        -f64::MIN_POSITIVE,
        1e-300,
        -1e-300,
        1.1102230246251565e-16,
        -1.1102230246251565e-16,
        36.7368005696771,
        -36.7368005696771,
        37.0,
        -37.0,
        0.8813735870195429,
        -0.8813735870195429,
        (2f64.sqrt() - 1.0).ln(),
        -(2f64.sqrt() - 1.0).ln(),
        708.3964185322641,
        -708.3964185322641,
        709.782712893384,
        -709.782712893384,
        745.1332191019411,
        -745.1332191019411,
        745.1332191019412,
        -745.1332191019412,
        746.0,
        -746.0,
        1e300,
        -1e300,
        f64::MAX,
        f64::MIN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        -f64::NAN,
        f64::from_bits(0x7ff0_0000_0000_0001),
        f64::from_bits(0xfff8_0000_dead_beef),
    ];
    grid.extend((-60_000..=60_000).map(|k| f64::from(k) / 1000.0));
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    grid.extend((0..200_000).map(|_| {
        // splitmix64: every exponent and both signs, uniformly over bit patterns.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        f64::from_bits(z ^ (z >> 31))
    }));
    let neighbours: Vec<f64> = grid
        .iter()
        .flat_map(|x| [f64::from_bits(x.to_bits().wrapping_add(1)), f64::from_bits(x.to_bits().wrapping_sub(1))])
        .collect();
    grid.extend(neighbours.into_iter().filter(|x| x.is_finite()));
    grid
}

#[test]
fn softplus_and_sigmoid_together_are_each_bit_for_bit() {
    let grid = awkward_grid();
    for &x in &grid {
        let (both_softplus, both_sigmoid) = softplus_and_sigmoid(x);
        assert_eq!(both_softplus.to_bits(), softplus(x).to_bits(), "softplus({x:e}) ({:#x})", x.to_bits());
        assert_eq!(both_sigmoid.to_bits(), sigmoid(x).to_bits(), "sigmoid({x:e}) ({:#x})", x.to_bits());
    }
    let (mut softplus_of, mut sigmoid_of) = (vec![0.0; grid.len()], vec![0.0; grid.len()]);
    softplus_and_sigmoid_slices(&grid, &mut softplus_of, &mut sigmoid_of);
    for ((x, s), g) in grid.iter().zip(&softplus_of).zip(&sigmoid_of) {
        assert_eq!(s.to_bits(), softplus(*x).to_bits(), "softplus({x:e}) in a slice");
        assert_eq!(g.to_bits(), sigmoid(*x).to_bits(), "sigmoid({x:e}) in a slice");
    }
    let mut alone = vec![0.0; grid.len()];
    softplus_slice(&grid, &mut alone);
    for (x, s) in grid.iter().zip(&alone) {
        assert_eq!(s.to_bits(), softplus(*x).to_bits(), "softplus({x:e}) in a slice of its own");
    }
}

#[test]
fn log1p_and_expm1_match_reference_values() {
    check_table("log1p", log1p, LOG1P, 1e-15);
    check_table("expm1", expm1, EXPM1, 1e-15);
}

#[test]
fn logsumexp_matches_reference_values() {
    for &(values, expected) in LOGSUMEXP {
        assert_close(&format!("logsumexp({values:?})"), logsumexp(values), expected, 1e-15);
    }
}

#[test]
fn logsumexp_handles_empty_infinite_and_nan_inputs() {
    assert_eq!(logsumexp(&[]), f64::NEG_INFINITY);
    assert_eq!(logsumexp(&[f64::NEG_INFINITY, f64::NEG_INFINITY]), f64::NEG_INFINITY);
    assert_eq!(logsumexp(&[f64::NEG_INFINITY, 1.5]), 1.5);
    assert_eq!(logsumexp(&[3.0, f64::INFINITY]), f64::INFINITY);
    assert!(logsumexp(&[1.0, f64::NAN, f64::INFINITY]).is_nan());
}

#[test]
fn awkward_inputs_never_panic() {
    let awkward = [
        0.0,
        -0.0,
        f64::MIN_POSITIVE,
        5e-324,
        -5e-324,
        1e-300,
        0.5,
        -0.5,
        1e300,
        -1e300,
        f64::MAX,
        f64::MIN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
    ];
    for &x in &awkward {
        for function in [lgamma, digamma, trigamma, log1p, expm1, softplus, log_sigmoid, sigmoid] {
            let _ = function(x);
        }
        let _ = softplus_and_sigmoid(x);
        let _ = logsumexp(&[x, 0.0, x]);
        for &shape in &awkward {
            let _ = ppl_runtime::gamma_sample_dshape(x, shape);
        }
    }
}

#[test]
fn the_floor_of_a_slice_is_libm_floor_of_each_element() {
    let values = awkward_grid();
    for len in [0, 1, 3, 4, 7, 8, 9, values.len()] {
        let mut out = vec![7.0; len];
        floor_slice(&values[..len], &mut out);
        for (x, got) in values.iter().zip(&out) {
            let want = libm::floor(*x);
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "floor({x}) = {got}, not {want}"
            );
        }
    }
}

#[test]
fn minimum_and_maximum_are_the_extrema_and_nan_if_any_element_is() {
    let values: Vec<f64> = awkward_grid().into_iter().filter(|x| !x.is_nan()).collect();
    for len in [1, 2, 7, 8, 9, 17, values.len()] {
        let slice = &values[..len];
        let least = slice.iter().copied().fold(f64::INFINITY, f64::min);
        let most = slice.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // Equal as numbers: the sign of a zero extremum may depend on the order of comparisons.
        assert_eq!(minimum(slice), least, "{len}");
        assert_eq!(maximum(slice), most, "{len}");
        for at in [0, len / 2, len - 1] {
            let mut with_nan = slice.to_vec();
            with_nan[at] = f64::NAN;
            assert!(minimum(&with_nan).is_nan() && maximum(&with_nan).is_nan(), "NaN at {at} of {len}");
        }
    }
    assert_eq!(minimum(&[]), f64::INFINITY);
    assert_eq!(maximum(&[]), f64::NEG_INFINITY);
    assert_eq!(maximum(&[-3.0, -2.0, -5.0]), -2.0);
    assert_eq!(minimum(&[3.0, 2.0, 5.0, 9.0, 8.0, 7.0, 6.0, 4.0, 1.5]), 1.5);
}
