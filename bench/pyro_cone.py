#!/usr/bin/env python3
"""Pyro comparison for examples/cone.ppl: trains the noisy cone's ELBO with a mean-field
Gaussian guide under the protocol of Becker et al. (PLDI 2024), Table 4, and times it.

  model: x ~ N(0, 10), y ~ N(0, 10), rs = x^2 + y^2, z ~ N(rs, 0.1 + rs/100), z = 5.0 observed
  guide: x ~ N(mu[0], exp(log_sigma[0])), y ~ N(mu[1], exp(log_sigma[1])) (reparameterised)
  init mu = (0, 0), log_sigma = (1, 1); plain SGD (no momentum) with learning rate 0.001 on
  -ELBO (i.e. gradient ascent on the ELBO), 5000 steps, 64 particles per step (vectorised);
  then the ELBO estimated from 5000 samples. The paper reports ELBO ~ -8.08.

Runs torch on the CPU with its default number of threads, eagerly (no JIT). Validation of
distribution arguments is off (as in NumPyro by default); pass --validate to turn it on.
Prints a human-readable summary, then one JSON line.

See bench/README.md for installing the dependencies. Not run by the tests.
Usage: python bench/pyro_cone.py [--x64] [--seed 314159] [--steps 5000]
"""
import argparse
import json
import os
import platform
import statistics
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--particles", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--eval-samples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=314159)
    parser.add_argument("--x64", action="store_true",
                        help="compute in float64 (ppl's precision); torch's default is float32")
    parser.add_argument("--validate", action="store_true",
                        help="keep Pyro's and torch's argument validation on (slower)")
    args = parser.parse_args()

    import torch
    import pyro
    import pyro.distributions as dist
    from pyro.infer import SVI, Trace_ELBO
    from pyro.optim import SGD

    if args.x64:
        torch.set_default_dtype(torch.float64)
    pyro.enable_validation(args.validate)
    pyro.set_rng_seed(args.seed)
    pyro.clear_param_store()

    z_obs = torch.tensor(5.0)

    def model():
        x = pyro.sample("x", dist.Normal(0.0, 10.0))
        y = pyro.sample("y", dist.Normal(0.0, 10.0))
        rs = x**2 + y**2
        pyro.sample("z", dist.Normal(rs, 0.1 + rs / 100.0), obs=z_obs)

    def guide():
        mu = pyro.param("mu", torch.tensor([0.0, 0.0]))
        log_sigma = pyro.param("log_sigma", torch.tensor([1.0, 1.0]))
        pyro.sample("x", dist.Normal(mu[0], torch.exp(log_sigma[0])))
        pyro.sample("y", dist.Normal(mu[1], torch.exp(log_sigma[1])))

    elbo = Trace_ELBO(num_particles=args.particles, vectorize_particles=True,
                      max_plate_nesting=0)
    svi = SVI(model, guide, SGD({"lr": args.lr}), loss=elbo)  # minimises -ELBO

    step_seconds = []
    started = time.perf_counter()
    for _ in range(args.steps):
        t0 = time.perf_counter()
        svi.step()
        step_seconds.append(time.perf_counter() - t0)
    total_seconds = time.perf_counter() - started

    eval_elbo = Trace_ELBO(num_particles=args.eval_samples, vectorize_particles=True,
                           max_plate_nesting=0)
    with torch.no_grad():
        final_elbo = -float(eval_elbo.loss(model, guide))

    first = step_seconds[0]
    median = statistics.median(step_seconds[1:]) if len(step_seconds) > 1 else first
    store = pyro.get_param_store()
    print(f"pyro {pyro.__version__}, torch {torch.__version__}, "
          f"{'float64' if args.x64 else 'float32'}, {torch.get_num_threads()} torch threads, "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}")
    print(f"first step:                     {first:.4f} s")
    print(f"median step over the other {len(step_seconds) - 1}: {median * 1e6:.1f} µs")
    print(f"total training ({args.steps} steps): {total_seconds:.3f} s")
    print(f"mu = {store['mu'].tolist()}, log_sigma = {store['log_sigma'].tolist()}")
    print(f"final ELBO ({args.eval_samples} samples): {final_elbo:.4f} (paper: -8.08)")
    print(json.dumps({"framework": "pyro", "first_step_seconds": first,
                      "median_step_seconds": median, "total_seconds": total_seconds,
                      "final_elbo": final_elbo}))


if __name__ == "__main__":
    main()
