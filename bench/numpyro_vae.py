#!/usr/bin/env python3
"""NumPyro reference for the variational autoencoder of Becker et al. (PLDI 2024), Table 1:
trains it on binarized MNIST, times it, and evaluates it on the test set.

  decoder (model): z ~ N(0, 1)^10; h = leaky_relu(W1 z + b1) (200 units, slope 0.01);
                   x ~ Bernoulli(logits = W2 h + b2), 784 pixels
  encoder (guide): h = leaky_relu(V1 x + c1) (200 units); out = V2 h + c2 (20 outputs);
                   z ~ N(out[:10], softplus(out[10:]))
  every weight and bias starts uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) like torch's nn.Linear.

Training: `Trace_ELBO` (one particle per image), `SVI` with Adam(1e-3), minibatches of 64
images drawn by `numpyro.plate("data", 50000, subsample_size=64)` (so each step's ELBO is the
minibatch's sum scaled by 50000/64), ceil(50000/64) = 782 steps per epoch, 10 epochs. The
jitted `svi.update` is compiled ahead of time; that compile is reported apart from the
training time. Then, in nats per image over the 10,000 test images: the ELBO (one particle
each) and the IWELBO with 100 particles each (log-mean-exp of the importance weights).
Last, the time of one call of `jax.jit(jax.grad(loss))` for the summed (unscaled) ELBO of a
minibatch of 64 and of 1024 images: the median of 30 calls after the first, whose time
(mostly compilation) is also printed. All in float32 on the CPU.

XLA ignores `intra_op_parallelism_threads`, so `--threads N` also pins the process to N CPUs,
which is what bounds the threads XLA computes on.

Data: ../shared/data/binarized_mnist/ from the repository root. Needs numpyro (see
bench/README.md); not run by the tests. Prints a human-readable summary, then one JSON line.
Usage: python bench/numpyro_vae.py [--epochs 10] [--threads 2] [--quick]
"""
import argparse
import gzip
import json
import math
import os
import statistics
import time

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "..", "..", "shared", "data", "binarized_mnist")
Z_DIM, HIDDEN, PIXELS = 10, 200, 784
BATCH = 64
SEED = 0
IW_PARTICLES = 100


def load_split(name):
    """One split as a float32 array of shape (rows, 784) with values 0/1."""
    import numpy as np

    with gzip.open(os.path.join(DATA_DIR, f"binarized_mnist_{name}.npy.gz")) as f:
        return np.load(f).astype(np.float32)


def torch_linear_init(rng, fan_in, fan_out):
    """Weight (fan_out, fan_in) and bias (fan_out,) as torch.nn.Linear initialises them."""
    import numpy as np

    bound = 1.0 / math.sqrt(fan_in)
    weight = rng.uniform(-bound, bound, size=(fan_out, fan_in)).astype(np.float32)
    bias = rng.uniform(-bound, bound, size=(fan_out,)).astype(np.float32)
    return weight, bias


def make_vae():
    """The model and the guide, over a data array x of shape (N, 784); with batch_size set,
    both see a random minibatch of that many rows (NumPyro's subsampling plate)."""
    import jax
    import numpy as np
    import numpyro
    import numpyro.distributions as dist

    rng = np.random.default_rng(SEED)
    init = {}
    layers = [(("W1", "b1"), Z_DIM, HIDDEN), (("W2", "b2"), HIDDEN, PIXELS),
              (("V1", "c1"), PIXELS, HIDDEN), (("V2", "c2"), HIDDEN, 2 * Z_DIM)]
    for names, fan_in, fan_out in layers:
        init.update(zip(names, torch_linear_init(rng, fan_in, fan_out)))

    def linear(h, weight, bias):
        return h @ numpyro.param(weight, init[weight]).T + numpyro.param(bias, init[bias])

    def model(x, batch_size=None):
        with numpyro.plate("data", x.shape[0], subsample_size=batch_size):
            x = numpyro.subsample(x, event_dim=1)
            z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([Z_DIM]).to_event(1))
            h = jax.nn.leaky_relu(linear(z, "W1", "b1"), 0.01)
            logits = linear(h, "W2", "b2")
            numpyro.sample("x", dist.Bernoulli(logits=logits).to_event(1), obs=x)

    def guide(x, batch_size=None):
        with numpyro.plate("data", x.shape[0], subsample_size=batch_size):
            x = numpyro.subsample(x, event_dim=1)
            h = jax.nn.leaky_relu(linear(x, "V1", "c1"), 0.01)
            out = linear(h, "V2", "c2")
            loc, scale = out[..., :Z_DIM], jax.nn.softplus(out[..., Z_DIM:])
            numpyro.sample("z", dist.Normal(loc, scale).to_event(1))

    return model, guide


def train(model, guide, x_train, epochs):
    """Trains with SVI; returns the parameters, the compile and training seconds, and the
    mean minibatch ELBO per image of each epoch."""
    import jax
    import numpy as np
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.optim import Adam

    svi = SVI(model, guide, Adam(1e-3), loss=Trace_ELBO())
    x_train = jax.device_put(x_train)
    state = svi.init(jax.random.PRNGKey(SEED), x_train, batch_size=BATCH)
    t0 = time.perf_counter()
    update = jax.jit(svi.update, static_argnames="batch_size")
    update = update.lower(state, x_train, batch_size=BATCH).compile()
    compile_seconds = time.perf_counter() - t0

    n = x_train.shape[0]
    steps_per_epoch = -(-n // BATCH)
    epoch_elbos = []
    t0 = time.perf_counter()
    for _ in range(epochs):
        losses = []
        for _ in range(steps_per_epoch):
            state, loss = update(state, x_train)
            losses.append(loss)
        epoch_elbos.append(-float(np.mean(jax.device_get(losses))) / n)
    jax.block_until_ready(state)
    train_seconds = time.perf_counter() - t0
    return svi.get_params(state), compile_seconds, train_seconds, epoch_elbos


def log_weights(model, guide, params, key, x):
    """log p(x, z) - log q(z | x) per image of x, for one z per image drawn from the guide."""
    from numpyro.handlers import replay, seed, substitute, trace

    guide_trace = trace(seed(substitute(guide, params), key)).get_trace(x)
    model_trace = trace(replay(substitute(model, params), guide_trace)).get_trace(x)
    log_p = sum(site["fn"].log_prob(site["value"])
                for site in model_trace.values() if site["type"] == "sample")
    return log_p - guide_trace["z"]["fn"].log_prob(guide_trace["z"]["value"])


def evaluate(model, guide, params, x_test, chunk=500):
    """Test-set ELBO (one particle) and IWELBO (IW_PARTICLES particles), nats per image."""
    import jax
    import numpy as np
    from jax.scipy.special import logsumexp

    @jax.jit
    def elbo_and_iwelbo(params, key, x):
        key_elbo, key_iw = jax.random.split(key)
        elbo = log_weights(model, guide, params, key_elbo, x)
        keys = jax.random.split(key_iw, IW_PARTICLES)
        lw = jax.vmap(lambda k: log_weights(model, guide, params, k, x))(keys)
        return elbo, logsumexp(lw, axis=0) - math.log(IW_PARTICLES)

    keys = jax.random.split(jax.random.PRNGKey(SEED + 1), len(x_test) // chunk)
    results = [elbo_and_iwelbo(params, k, x_test[i * chunk:(i + 1) * chunk])
               for i, k in enumerate(keys)]
    elbo, iwelbo = (np.concatenate([np.asarray(r[j]) for r in results]) for j in (0, 1))
    return float(elbo.mean()), float(iwelbo.mean())


def time_grad(model, guide, params, x, calls=30):
    """Seconds of the first call of jit(grad(-summed ELBO of x)) and the median of the next."""
    import jax
    from numpyro.infer import Trace_ELBO

    elbo = Trace_ELBO()
    grad = jax.jit(jax.grad(lambda p, key, x: elbo.loss(key, p, model, guide, x)))
    x = jax.device_put(x)
    keys = jax.random.split(jax.random.PRNGKey(SEED + 2), calls + 1)
    seconds = []
    for key in keys:
        t0 = time.perf_counter()
        jax.block_until_ready(grad(params, key, x))
        seconds.append(time.perf_counter() - t0)
    return seconds[0], statistics.median(seconds[1:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="1 epoch, for a smoke test")
    args = parser.parse_args()
    epochs = 1 if args.quick else args.epochs

    os.environ["JAX_PLATFORMS"] = "cpu"
    threads = f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={args.threads}"
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {threads}".strip()
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.threads])
    try:
        import jax
        import numpyro
    except ImportError as e:
        print(f"skipped: {e}; install with: python3 -m venv /tmp/numpyro-venv && /tmp/numpyro-venv/"
              "bin/pip install numpyro, then run with /tmp/numpyro-venv/bin/python")
        return
    if not os.path.isdir(DATA_DIR):
        print(f"skipped: no binarized MNIST at {os.path.normpath(DATA_DIR)}")
        return

    x_train, x_test = load_split("train"), load_split("test")
    model, guide = make_vae()
    print(f"numpyro {numpyro.__version__}, jax {jax.__version__}, float32, "
          f"backend {jax.default_backend()}, {args.threads} threads; "
          f"{len(x_train)} train / {len(x_test)} test images")
    params, compile_seconds, train_seconds, epoch_elbos = train(model, guide, x_train, epochs)
    steps = epochs * -(-len(x_train) // BATCH)
    for epoch, elbo in enumerate(epoch_elbos, 1):
        print(f"epoch {epoch:2d}: mean minibatch ELBO {elbo:.2f} nats/image")
    print(f"compile of svi.update:          {compile_seconds:.2f} s")
    print(f"training ({steps} steps of {BATCH}): {train_seconds:.2f} s "
          f"({train_seconds / steps * 1e3:.3f} ms/step)")
    test_elbo, test_iwelbo = evaluate(model, guide, params, x_test)
    print(f"test ELBO:      {test_elbo:.2f} nats/image (1 particle, {len(x_test)} images)")
    print(f"test IWELBO100: {test_iwelbo:.2f} nats/image ({IW_PARTICLES} particles)")
    grad_ms = {}
    for b in (64, 1024):
        first, median = time_grad(model, guide, params, x_train[:b])
        grad_ms[b] = median * 1e3
        print(f"jit(grad(summed ELBO)), B = {b:4d}: {median * 1e3:.3f} ms median of 30 "
              f"(first call, with compile: {first:.2f} s)")
    print(json.dumps({"train_seconds": train_seconds, "compile_seconds": compile_seconds,
                      "test_elbo": test_elbo, "test_iwelbo100": test_iwelbo,
                      "grad_ms_b64": grad_ms[64], "grad_ms_b1024": grad_ms[1024]}))


if __name__ == "__main__":
    main()
