"""Reference values pasted into runtime/tests/*.rs. Not run by the tests.

Run with `python3 runtime/tests/reference_values.py` (needs mpmath; scipy only to pick gamma
quantiles as starting points). Every value is computed at 60 significant digits and printed
rounded to the nearest f64 (repr), as Rust literals.
"""
import mpmath as mp
from scipy.special import gammaincinv

mp.mp.dps = 60


def f64(v):
    return repr(float(v))


def table(name, pairs):
    print(f"const {name}: &[(f64, f64)] = &[")
    for x, v in pairs:
        print(f"    ({f64(x)}, {f64(v)}),")
    print("];")


LGAMMA_X = [1e-300, 1e-10, 0.1, 0.5, 0.9, 0.999, 1.0000000001, 1.001, 1.5, 1.999, 1.999999999, 2.001, 2.5, 3.7, 10.0, 25.5,
            100.0, 1234.5, 1e5, 1e10, 1e300, -0.5, -1.5, -2.5, -10.3]
DIGAMMA_X = [1e-10, 0.01, 0.1, 0.5, 1.0, 1.2, 1.4, 1.4616321449683622, 1.46163214496836, 1.5,
             1.7, 2.0, 3.5, 9.99, 10.0, 10.5, 100.0, 1e5, 1e15, -0.5, -1.5, -2.3, -10.7]
TRIGAMMA_X = [1e-10, 0.01, 0.5, 1.0, 1.5, 2.0, 5.5, 9.99, 10.0, 10.5, 100.0, 1e5, 1e10, -0.5,
              -1.5, -2.3]

table("LGAMMA", [(x, mp.log(abs(mp.gamma(mp.mpf(x))))) if x < 170 else (x, mp.loggamma(mp.mpf(x)))
                 for x in LGAMMA_X])
table("DIGAMMA", [(x, mp.digamma(mp.mpf(x))) for x in DIGAMMA_X])
table("TRIGAMMA", [(x, mp.psi(1, mp.mpf(x))) for x in TRIGAMMA_X])

SOFTPLUS_X = [-800.0, -40.0, -1.0, -1e-10, 0.0, 1e-10, 1.0, 3.5, 40.0, 800.0]
softplus = lambda x: mp.log1p(mp.exp(mp.mpf(x)))
table("SOFTPLUS", [(x, softplus(x)) for x in SOFTPLUS_X])
table("LOG_SIGMOID", [(x, -softplus(-x)) for x in SOFTPLUS_X])
table("SIGMOID", [(x, 1 / (1 + mp.exp(-mp.mpf(x)))) for x in SOFTPLUS_X])
table("LOG1P", [(x, mp.log1p(mp.mpf(x))) for x in [1e-300, -1e-10, 1e-10, -0.5, 0.75, 3.0, 1e10]])
table("EXPM1", [(x, mp.expm1(mp.mpf(x))) for x in [1e-300, -1e-10, 1e-10, -0.5, 0.75, 3.0, 700.0]])

LOGSUMEXP_CASES = [[1.0, 2.0, 3.0], [1000.0, 1000.0], [-1000.0, -1000.5], [0.0, -40.0],
                   [-3.0, 0.5, -745.0, 2.25, 0.0], [42.0]]
print("const LOGSUMEXP: &[(&[f64], f64)] = &[")
for case in LOGSUMEXP_CASES:
    value = mp.log(mp.fsum(mp.exp(mp.mpf(v)) for v in case))
    print(f"    (&[{', '.join(f64(v) for v in case)}], {f64(value)}),")
print("];")


# Implicit reparameterisation: dx/dα for x ~ Gamma(α, 1), as the central finite difference of
# the inverse CDF at the fixed level u = P(α, x): (P⁻¹(α+h, u) − P⁻¹(α−h, u)) / 2h with
# h = 1e-20 and the inverse solved by Newton's method at 60 digits (error O(h²) ≈ 1e-40).
# Cross-checked against −(∂P/∂α)/p from mpmath's numerical derivative.
def cdf_upper(a, x):
    return mp.gammainc(a, x, mp.inf, regularized=True)


def density(a, t):
    return mp.exp((a - 1) * mp.log(t) - t - mp.loggamma(a))


def newton(g, dg, start):
    t = mp.mpf(start)
    for _ in range(100):
        step = g(t) / dg(t)
        t -= step
        if abs(step) <= abs(t) * mp.mpf(10) ** -55:
            return t
    raise ValueError("Newton did not converge")


def inverse_upper(a, q, start):
    # Solve ln Q(a, x) = ln q (dQ/dx = −p): well scaled even deep in the tail.
    return newton(lambda t: mp.log(cdf_upper(a, t) / q), lambda t: -density(a, t) / cdf_upper(a, t), start)


def inverse_lower(a, p, start):
    lower = lambda t: mp.gammainc(a, 0, t, regularized=True)
    return newton(lambda t: mp.log(lower(t) / p), lambda t: density(a, t) / lower(t), start)


def dx_dshape(a, x):
    a = mp.mpf(a)
    x = mp.mpf(x)
    h = mp.mpf(10) ** -20
    P = mp.gammainc(a, 0, x, regularized=True)
    if P < 0.5:
        lo, hi = inverse_lower(a - h, P, x), inverse_lower(a + h, P, x)
    else:
        Q = cdf_upper(a, x)
        lo, hi = inverse_upper(a - h, Q, x), inverse_upper(a + h, Q, x)
    fd = (hi - lo) / (2 * h)
    logp = (a - 1) * mp.log(x) - x - mp.loggamma(a)
    if P < 0.5:
        direct = -mp.diff(lambda s: mp.gammainc(s, 0, x, regularized=True), a)
    else:
        direct = mp.diff(lambda s: cdf_upper(s, x), a)
    direct /= mp.exp(logp)
    assert abs(fd - direct) <= abs(direct) * mp.mpf(10) ** -25, (a, x, fd, direct)
    return fd


SHAPES = [0.01, 0.3, 0.9, 1.0, 2.5, 10.0, 50.0, 1000.0, 1e4]
LEVELS = [1e-6, 0.05, 0.5, 0.95, 1 - 1e-6]
print("const GAMMA_DSHAPE: &[(f64, f64, f64)] = &[")
print("    // (shape α, x, dx/dα)")
for a in SHAPES:
    for u in LEVELS:
        x = float(gammaincinv(a, u))
        if x <= 0.0:
            continue
        print(f"    ({f64(a)}, {f64(x)}, {f64(dx_dshape(a, x))}),")
# Huge shapes, where the runtime switches to a large-shape expansion and mpmath's incomplete
# gamma no longer converges: dx/dα = ∫ₓ^∞ (p(t)/p(x))·(ln t − ψ(α)) dt by tanh-sinh quadrature
# (mpmath quad, breakpoints every few standard deviations), checked against the inverse-CDF
# finite difference at α = 1e4 (agreement to 1e-25). Levels 1e-6, 0.5, 1 − 1e-6.
def dx_dshape_by_quadrature(a, x):
    a = mp.mpf(a)
    x = mp.mpf(x)
    psi = mp.digamma(a)
    sd = mp.sqrt(a)
    integrand = lambda t: mp.exp((a - 1) * mp.log(t / x) - (t - x)) * (mp.log(t) - psi)
    cuts = [a + k * sd for k in (-16, -8, -4, -2, -1, 0, 1, 2, 4, 8, 16, 32)]
    return mp.quad(integrand, [x] + [c for c in cuts if c > x] + [mp.inf])


for u in [1e-6, 0.5, 1 - 1e-6]:
    x = float(gammaincinv(1e4, u))
    by_quadrature, by_difference = dx_dshape_by_quadrature(1e4, x), dx_dshape(1e4, x)
    assert abs(by_quadrature - by_difference) <= abs(by_difference) * mp.mpf(10) ** -25

for a in [1e7, 1e9]:
    for u in [1e-6, 0.5, 1 - 1e-6]:
        x = float(gammaincinv(a, u))
        print(f"    ({f64(a)}, {f64(x)}, {f64(dx_dshape_by_quadrature(a, x))}),")
print("];")

# At α = 1 (the exponential) there is a closed form: ∂P/∂α = −E₁(x) − e^{−x}(ln x + γ), so
# dx/dα = eˣ·E₁(x) + ln x + γ (γ Euler's constant, E₁ the exponential integral).
table("EXPONENTIAL_DSHAPE",
      [(x, mp.exp(mp.mpf(x)) * mp.e1(mp.mpf(x)) + mp.log(mp.mpf(x)) + mp.euler)
       for x in [0.6931471805599453, 1e-3, 5.0, 40.0]])
