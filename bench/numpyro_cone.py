#!/usr/bin/env python3
"""NumPyro comparison for examples/cone.ppl: trains the noisy cone's ELBO with a mean-field
Gaussian guide under the protocol of Becker et al. (PLDI 2024), Table 4, and times it.

  model: x ~ N(0, 10), y ~ N(0, 10), rs = x^2 + y^2, z ~ N(rs, 0.1 + rs/100), z = 5.0 observed
  guide: x ~ N(mu[0], exp(log_sigma[0])), y ~ N(mu[1], exp(log_sigma[1])) (reparameterised)
  init mu = (0, 0), log_sigma = (1, 1); plain SGD (no momentum) with learning rate 0.001 on
  -ELBO (i.e. gradient ascent on the ELBO), 5000 steps, 64 particles per step; then the ELBO
  estimated from 5000 samples. The paper reports ELBO ~ -8.08.

The whole update step (`svi.update`) is jitted and run once per step from Python, with
`block_until_ready` after each step, so the first step's time is JAX's compilation and the
rest are per-step times. Prints a human-readable summary, then one JSON line.

See bench/README.md for installing the dependencies. Not run by the tests.
Usage: python bench/numpyro_cone.py [--x64] [--seed 314159] [--steps 5000]
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
                        help="compute in float64 (ppl's precision); JAX's default is float32")
    args = parser.parse_args()

    import jax
    if args.x64:
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.optim import SGD

    z_obs = 5.0

    def model():
        x = numpyro.sample("x", dist.Normal(0.0, 10.0))
        y = numpyro.sample("y", dist.Normal(0.0, 10.0))
        rs = x**2 + y**2
        numpyro.sample("z", dist.Normal(rs, 0.1 + rs / 100.0), obs=z_obs)

    def guide():
        mu = numpyro.param("mu", jnp.array([0.0, 0.0]))
        log_sigma = numpyro.param("log_sigma", jnp.array([1.0, 1.0]))
        numpyro.sample("x", dist.Normal(mu[0], jnp.exp(log_sigma[0])))
        numpyro.sample("y", dist.Normal(mu[1], jnp.exp(log_sigma[1])))

    elbo = Trace_ELBO(num_particles=args.particles, vectorize_particles=True)
    svi = SVI(model, guide, SGD(step_size=args.lr), loss=elbo)  # minimises -ELBO
    update = jax.jit(svi.update)

    key_init, key_eval = jax.random.split(jax.random.PRNGKey(args.seed))
    started = time.perf_counter()
    state = svi.init(key_init)
    jax.block_until_ready(state)
    init_seconds = time.perf_counter() - started

    step_seconds = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        state, loss = update(state)
        jax.block_until_ready((state, loss))
        step_seconds.append(time.perf_counter() - t0)
    total_seconds = time.perf_counter() - started

    params = svi.get_params(state)
    eval_elbo = Trace_ELBO(num_particles=args.eval_samples, vectorize_particles=True)
    final_elbo = -float(eval_elbo.loss(key_eval, params, model, guide))

    first = step_seconds[0]
    median = statistics.median(step_seconds[1:]) if len(step_seconds) > 1 else first
    print(f"numpyro {numpyro.__version__}, jax {jax.__version__}, "
          f"{'float64' if args.x64 else 'float32'}, backend {jax.default_backend()}, "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}")
    print(f"svi.init:                       {init_seconds:.4f} s")
    print(f"first jitted step (compile):    {first:.4f} s")
    print(f"median step over the other {len(step_seconds) - 1}: {median * 1e6:.1f} µs")
    print(f"total training (init + {args.steps} steps): {total_seconds:.3f} s")
    print(f"mu = {[float(v) for v in params['mu']]}, "
          f"log_sigma = {[float(v) for v in params['log_sigma']]}")
    print(f"final ELBO ({args.eval_samples} samples): {final_elbo:.4f} (paper: -8.08)")
    print(json.dumps({"framework": "numpyro", "first_step_seconds": first,
                      "median_step_seconds": median, "total_seconds": total_seconds,
                      "final_elbo": final_elbo}))


if __name__ == "__main__":
    main()
