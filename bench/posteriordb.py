#!/usr/bin/env python3
"""Mean-field variational inference in `ppl` against posteriordb's reference posteriors.

For every `examples/posteriordb/*.ppl`, this runs `ppl run --json --quiet FILE`, which trains a
mean-field guide and, as its last command, prints `{ mean: {...}, sd: {...} }`: the guide's mean
and standard deviation of every parameter of the posterior, in the Stan model's
parameterisation and with its names. It compares them with the reference posterior, whose means
and sds it computes from the reference draws (posteriordb's `reference_draws*.json.zip`: NUTS
draws pooled over chains; German credit: the Inference Gym's published `summary.json`).

It prints one table per model, then a summary. The error of a mean is |mean - reference mean|
in reference sds; the sd ratio is the guide's sd over the reference sd. A mean-field guide is
expected to find the means and to shrink the sds of correlated parameters (ratio < 1).

With `--python PY`, a Python with NumPyro (e.g. /tmp/numpyro-venv/bin/python), the same models,
written in NumPyro below, are also fitted with NumPyro's `AutoNormal` guide, with the optimizer,
learning rate, schedule, steps and particles read from each `.ppl` file's training command, in
float64 as `ppl` computes; the tables then show its means and sds beside `ppl`'s. The script
re-runs itself under PY for each model (`--numpyro-worker`); without NumPyro there, that column
is left out.

Run from the repository root, after `cargo build --release`:

    python3 bench/posteriordb.py
    python3 bench/posteriordb.py --python /tmp/numpyro-venv/bin/python
    python3 bench/posteriordb.py --only eight_schools    # files whose name contains this
"""

import argparse
import glob
import json
import math
import os
import re
import subprocess
import sys
import time
import zipfile

try:  # only the NumPyro worker needs these; the comparison itself is standard library only
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.distributions import constraints
except ImportError:
    numpyro = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data")


def reference(name):
    """{parameter: (mean, sd)} of the reference posterior, in the draws' order, and a note."""
    if name == "german_credit":
        with open(os.path.join(DATA, "german_credit", "summary.json")) as f:
            summary = json.load(f)["parameters"]
        return {p: (s["mean"], s["sd"]) for p, s in summary.items()}, "Inference Gym summary"
    (path,) = glob.glob(os.path.join(DATA, "posteriordb", name, "reference_draws*.json.zip"))
    with zipfile.ZipFile(path) as archive:
        chains = json.loads(archive.read(archive.namelist()[0]))
    moments = {}
    for p in chains[0]:
        draws = [x for chain in chains for x in chain[p]]
        mean = sum(draws) / len(draws)
        sd = math.sqrt(sum((x - mean) ** 2 for x in draws) / (len(draws) - 1))
        moments[p] = (mean, sd)
    n = sum(len(chain[next(iter(chain))]) for chain in chains)
    return moments, f"{n} NUTS draws in {len(chains)} chains ({os.path.basename(path)})"


def flatten(record):
    """{"beta": [a, b], "sigma": c} -> {"beta[1]": a, "beta[2]": b, "sigma": c} (Stan's names)."""
    flat = {}
    for name, value in record.items():
        if isinstance(value, list):
            flat.update({f"{name}[{i + 1}]": float(x) for i, x in enumerate(value)})
        else:
            flat[name] = float(value)
    return flat


def run_ppl(ppl, path):
    """Runs a program; returns {parameter: (mean, sd)} of its guide and the training report."""
    started = time.monotonic()
    out = subprocess.run([ppl, "run", "--json", "--quiet", path], capture_output=True, text=True)
    wall = time.monotonic() - started
    if out.returncode != 0:
        raise RuntimeError(f"ppl run {path} failed:\n{out.stderr}")
    results = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    training = next(r for r in results if r["kind"] == "maximize")
    moments = next(r["value"] for r in reversed(results)
                   if r["kind"] == "print" and isinstance(r["value"], dict) and "sd" in r["value"])
    mean, sd = flatten(moments["mean"]), flatten(moments["sd"])
    fit = training.get("fit") or {}
    report = {"seconds": training["seconds"], "wall": wall, "elbo": training["objective"]["mean"],
              "pareto_k": fit.get("pareto_k")}
    return {p: (mean[p], sd[p]) for p in mean}, report


def training_settings(path):
    """The optimizer's learning rate, the schedule, steps and particles of a file's `maximize`."""
    with open(path) as f:
        source = f.read()
    lr = re.search(r"adam\(lr:\s*([0-9.eE+-]+)", source)
    schedule = re.search(r'schedule:\s*"(\w+)"', source)
    steps = re.search(r"steps:\s*(\d+)", source)
    particles = re.search(r"particles:\s*(\d+)", source)
    if not (lr and steps):
        raise ValueError(f"{path}: no `adam(lr: …)` and `steps:` to copy")
    return {"lr": float(lr.group(1)), "schedule": schedule.group(1) if schedule else "constant",
            "steps": int(steps.group(1)), "particles": int(particles.group(1)) if particles else 1}


def read_json(path):
    """A JSON file, or the one file of a ZIP archive (`data.json.zip`, as `load` reads it)."""
    if path.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            (name,) = [n for n in archive.namelist() if not n.endswith("/")]
            return json.loads(archive.read(name))
    with open(path) as f:
        return json.load(f)


def data_file(path):
    """The data file a `.ppl` program loads (its first `load("…")`), as an absolute path."""
    with open(path) as f:
        match = re.search(r'load\("([^"]+)"\)', f.read())
    return os.path.normpath(os.path.join(os.path.dirname(path), match.group(1)))


# The NumPyro models: each takes the posteriordb data (a dict, as in data.json) and is the Stan
# model of its posterior, as the `.ppl` file of the same name writes it. A parameter without a
# prior in Stan gets NumPyro's improper flat one.

def vec(d, field):
    """A data field as a float64 array."""
    return jnp.array(d[field], dtype=float)


def german_credit(d):
    x = vec(d, "X")
    w = numpyro.sample("w", dist.Normal(0.0, 1.0).expand([x.shape[1]]).to_event(1))
    numpyro.sample("y", dist.Bernoulli(logits=x @ w), obs=vec(d, "y"))


def earnings(d):
    beta = numpyro.sample("beta", dist.ImproperUniform(constraints.real_vector, (), (2,)))
    sigma = numpyro.sample("sigma", dist.ImproperUniform(constraints.positive, (), ()))
    mean = beta[0] + beta[1] * vec(d, "height")
    numpyro.sample("log_earn", dist.Normal(mean, sigma), obs=jnp.log(vec(d, "earn")))


def eight_schools(d):
    theta_trans = numpyro.sample("theta_trans", dist.Normal(0.0, 1.0).expand([d["J"]]).to_event(1))
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    theta = numpyro.deterministic("theta", mu + tau * theta_trans)
    numpyro.sample("y", dist.Normal(theta, vec(d, "sigma")), obs=vec(d, "y"))


def gp_regr(d):
    x, y = vec(d, "x"), vec(d, "y")
    rho = numpyro.sample("rho", dist.Gamma(25.0, 4.0))
    alpha = numpyro.sample("alpha", dist.HalfNormal(2.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    sqdist = (x[:, None] - x[None, :]) ** 2
    k = alpha**2 * jnp.exp(-sqdist / (2 * rho**2)) + sigma * jnp.eye(len(x))
    numpyro.sample("y", dist.MultivariateNormal(jnp.zeros(len(x)), covariance_matrix=k), obs=y)


def low_dim_gauss_mix(d):
    y = vec(d, "y")
    mu = numpyro.sample("mu", dist.ImproperUniform(constraints.ordered_vector, (), (2,)))
    numpyro.factor("mu_prior", dist.Normal(0.0, 2.0).log_prob(mu).sum())
    sigma = numpyro.sample("sigma", dist.HalfNormal(2.0).expand([2]).to_event(1))
    theta = numpyro.sample("theta", dist.Beta(5.0, 5.0))
    first = jnp.log(theta) + dist.Normal(mu[0], sigma[0]).log_prob(y)
    second = jnp.log1p(-theta) + dist.Normal(mu[1], sigma[1]).log_prob(y)
    numpyro.factor("y", jnp.logaddexp(first, second).sum())


def radon_pooled(d):
    sigma_y = numpyro.sample("sigma_y", dist.HalfNormal(1.0))
    alpha = numpyro.sample("alpha", dist.Normal(0.0, 10.0))
    beta = numpyro.sample("beta", dist.Normal(0.0, 10.0))
    mean = alpha + beta * vec(d, "floor_measure")
    numpyro.sample("log_radon", dist.Normal(mean, sigma_y), obs=vec(d, "log_radon"))


def radon_variable_intercept_noncentered(d):
    sigma_y = numpyro.sample("sigma_y", dist.HalfNormal(1.0))
    sigma_alpha = numpyro.sample("sigma_alpha", dist.HalfNormal(1.0))
    mu_alpha = numpyro.sample("mu_alpha", dist.Normal(0.0, 10.0))
    beta = numpyro.sample("beta", dist.Normal(0.0, 10.0))
    alpha_raw = numpyro.sample("alpha_raw", dist.Normal(0.0, 1.0).expand([d["J"]]).to_event(1))
    alpha = numpyro.deterministic("alpha", mu_alpha + sigma_alpha * alpha_raw)
    mean = alpha[jnp.array(d["county_idx"]) - 1] + vec(d, "floor_measure") * beta
    numpyro.sample("log_radon", dist.Normal(mean, sigma_y), obs=vec(d, "log_radon"))


def diamonds(d):
    xc = vec(d, "X")[:, 1:]
    xc = xc - xc.mean(axis=0)  # brms's centred predictors, without the column of ones
    b = numpyro.sample("b", dist.Normal(0.0, 1.0).expand([xc.shape[1]]).to_event(1))
    intercept = numpyro.sample("Intercept", dist.StudentT(3.0, 8.0, 10.0))
    sigma = numpyro.sample("sigma", dist.FoldedDistribution(dist.StudentT(3.0, 0.0, 10.0)))
    numpyro.sample("Y", dist.Normal(intercept + xc @ b, sigma), obs=vec(d, "Y"))


def wells(d):
    alpha = numpyro.sample("alpha", dist.ImproperUniform(constraints.real, (), ()))
    beta = numpyro.sample("beta", dist.ImproperUniform(constraints.real_vector, (), (2,)))
    logit = alpha + beta[0] * vec(d, "dist") / 100.0 + beta[1] * vec(d, "arsenic")
    numpyro.sample("switched", dist.Bernoulli(logits=logit), obs=vec(d, "switched"))


NUMPYRO_MODELS = {
    "german_credit": german_credit,
    "diamonds-diamonds": diamonds,
    "earnings-logearn_height": earnings,
    "eight_schools-eight_schools_noncentered": eight_schools,
    "gp_pois_regr-gp_regr": gp_regr,
    "low_dim_gauss_mix-low_dim_gauss_mix": low_dim_gauss_mix,
    "radon_mn-radon_pooled": radon_pooled,
    "radon_mn-radon_variable_intercept_noncentered": radon_variable_intercept_noncentered,
    "wells_data-wells_dist100ars_model": wells,
}


def fit_numpyro(name, data_path, settings, sites, draws=10000):
    """In the worker: fits AutoNormal with ppl's settings; {parameter: (mean, sd)} over draws."""
    from numpyro.infer import SVI, Predictive, Trace_ELBO
    from numpyro.infer.autoguide import AutoNormal

    jax.config.update("jax_enable_x64", True)
    data = read_json(data_path)
    model, guide = NUMPYRO_MODELS[name], AutoNormal(NUMPYRO_MODELS[name])
    lr, steps = settings["lr"], settings["steps"]

    def cosine(t):  # ppl's "cosine" schedule: lr annealed to 0 over the run
        return lr * 0.5 * (1.0 + jnp.cos(jnp.pi * t / steps))

    if settings["schedule"] not in ("cosine", "constant"):
        raise ValueError(f"schedule {settings['schedule']} is not translated to NumPyro")
    optimizer = numpyro.optim.Adam(cosine if settings["schedule"] == "cosine" else lr)
    svi = SVI(model, guide, optimizer, Trace_ELBO(num_particles=settings["particles"]))
    started = time.monotonic()
    result = svi.run(jax.random.PRNGKey(1), steps, data, progress_bar=False)
    result.losses.block_until_ready()
    seconds = time.monotonic() - started
    predictive = Predictive(model, guide=guide, params=result.params, num_samples=draws,
                            return_sites=sites)
    samples = predictive(jax.random.PRNGKey(2), data)
    moments = {}
    for site in sites:
        values = samples[site].reshape(draws, -1)
        mean, sd = values.mean(axis=0), values.std(axis=0, ddof=1)
        scalar = samples[site].ndim == 1
        for i in range(values.shape[1]):
            moments[site if scalar else f"{site}[{i + 1}]"] = (float(mean[i]), float(sd[i]))
    return {"moments": moments, "seconds": seconds, "elbo": -float(result.losses[-100:].mean())}


def run_numpyro(python, name, path, parameters):
    """Fits the model under `python` (a worker process); None when it has no NumPyro model."""
    if name not in NUMPYRO_MODELS:
        return None
    sites = sorted({p.split("[")[0] for p in parameters})
    command = [python, os.path.abspath(__file__), "--numpyro-worker", name, data_file(path),
               json.dumps(training_settings(path)), ",".join(sites)]
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"NumPyro on {name} failed:\n{out.stderr}")
    result = json.loads(out.stdout.splitlines()[-1])
    result["moments"] = {p: tuple(v) for p, v in result["moments"].items()}
    return result


def fmt(mean, sd):
    """A mean ± sd with about three significant digits of the sd."""
    digits = min(8, max(0, 2 - math.floor(math.log10(sd)))) if sd > 0 else 3
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def errors(ref, fit):
    """Per parameter: |mean error| in reference sds and the sd ratio."""
    return {p: (abs(fit[p][0] - m) / s, fit[p][1] / s) for p, (m, s) in ref.items()}


def print_model(name, note, ref, fit, report, numpyro_fit):
    """The per-parameter table of one model."""
    k = report["pareto_k"]
    k = f"{k:.2f}" if isinstance(k, (int, float)) else "n/a"
    print(f"\n== {name}: {len(ref)} parameters; reference: {note}")
    print(f"   ppl: trained in {report['seconds']:.2f} s ({report['wall']:.2f} s in all), "
          f"ELBO {report['elbo']:.2f}, Pareto k̂ {k}")
    header = f"{'parameter':<12} {'reference':>22} {'ppl':>22} {'err':>5} {'sd ratio':>8}"
    if numpyro_fit:
        print(f"   NumPyro AutoNormal: {numpyro_fit['seconds']:.2f} s with compilation, "
              f"ELBO {numpyro_fit['elbo']:.2f}")
        header += f" {'NumPyro':>22} {'err':>5} {'sd ratio':>8}"
    print(header)
    ours = errors(ref, fit)
    theirs = errors(ref, numpyro_fit["moments"]) if numpyro_fit else {}
    for p, (m, s) in ref.items():
        line = f"{p:<12} {fmt(m, s):>22} {fmt(*fit[p]):>22} {ours[p][0]:5.2f} {ours[p][1]:8.2f}"
        if numpyro_fit:
            line += f" {fmt(*numpyro_fit['moments'][p]):>22} {theirs[p][0]:5.2f} {theirs[p][1]:8.2f}"
        print(line)
    return ours, theirs


def print_summary(rows, with_numpyro):
    """One line per model: worst and mean error of the means, median sd ratio, times."""
    def stats(errs):
        means = [e for e, _ in errs.values()]
        ratios = sorted(r for _, r in errs.values())
        return f"{max(means):5.2f} {sum(means) / len(means):5.2f} {ratios[len(ratios) // 2]:6.2f}"

    print("\n== summary: error of the means in reference sds (max, mean); median sd ratio")
    header = f"{'posterior':<46} {'n':>3} {'ppl s':>6} {'max':>5} {'mean':>5} {'sd r':>6}"
    if with_numpyro:
        header += f" {'NumPyro s':>9} {'max':>5} {'mean':>5} {'sd r':>6}"
    print(header)
    for name, ours, theirs, report, numpyro_fit in rows:
        line = f"{name:<46} {len(ours):>3} {report['seconds']:6.2f} {stats(ours)}"
        if with_numpyro and numpyro_fit:
            line += f" {numpyro_fit['seconds']:9.2f} {stats(theirs)}"
        print(line)


def has_numpyro(python):
    """Whether `python` can import NumPyro and JAX."""
    check = subprocess.run([python, "-c", "import numpyro, jax"], capture_output=True)
    return check.returncode == 0


def uncovered(programs):
    """The posteriordb posteriors in ../shared/data that no program covers."""
    covered = {os.path.splitext(os.path.basename(p))[0] for p in programs}
    folder = os.path.join(DATA, "posteriordb")
    folders = [n for n in os.listdir(folder) if os.path.isdir(os.path.join(folder, n))]
    return sorted(set(folders) - covered)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--numpyro-worker":
        name, data_path, settings, sites = sys.argv[2:6]
        print(json.dumps(fit_numpyro(name, data_path, json.loads(settings), sites.split(","))))
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ppl", default=os.path.join(ROOT, "target", "release", "ppl"))
    parser.add_argument("--python", help="a Python with NumPyro, to fit AutoNormal beside ppl")
    parser.add_argument("--only", default="", help="only the programs whose file name contains this")
    args = parser.parse_args()
    python = args.python
    if python and not has_numpyro(python):
        print(f"({python} cannot import numpyro and jax: NumPyro is left out)")
        python = None
    programs = sorted(glob.glob(os.path.join(ROOT, "examples", "posteriordb", "*.ppl")))
    rows = []
    for path in programs:
        name = os.path.splitext(os.path.basename(path))[0]
        if args.only not in name:
            continue
        ref, note = reference(name)
        fit, report = run_ppl(args.ppl, path)
        numpyro_fit = run_numpyro(python, name, path, ref) if python else None
        ours, theirs = print_model(name, note, ref, fit, report, numpyro_fit)
        rows.append((name, ours, theirs, report, numpyro_fit))
    print_summary(rows, python is not None)
    if uncovered(programs):
        print(f"\nposteriordb posteriors without a program here: {', '.join(uncovered(programs))}")


if __name__ == "__main__":
    main()
