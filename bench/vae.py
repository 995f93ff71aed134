#!/usr/bin/env python3
"""The paper's VAE (Table 1) in ppl beside NumPyro, in one run: training time, test ELBO and
IWELBO(100) per image, peak memory, and the ratio of the training times; then the gradient of a
minibatch of 64 and of 1024 images, and their ratios.

Runs `ppl run --json --quiet examples/vae.ppl` and `bench tensors` (build both with
`cargo build --release` first), then `bench/numpyro_vae.py` with the Python given by `--python`
(a virtual environment with NumPyro, see bench/README.md), which is skipped if it cannot import
numpyro. Not run by the tests.
Usage: python3 bench/vae.py [--python /tmp/numpyro-venv/bin/python]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_ppl():
    """Times the whole `ppl run` of the example; returns its figures."""
    ppl = os.path.join(ROOT, "target", "release", "ppl")
    started = time.perf_counter()
    done = subprocess.run([ppl, "run", "--json", "--quiet", "examples/vae.ppl"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    trained = next(result for result in results if result["kind"] == "maximize")
    elbo, iwelbo = [result["mean"] for result in results if result["kind"] == "estimate"]
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"train_seconds": trained["seconds"], "test_elbo": elbo, "test_iwelbo100": iwelbo,
            "wall_seconds": wall, "peak_mib": peak_mib}


def run_bench_tensors():
    """`bench tensors`: ppl's gradient of a minibatch of 64 and of 1024 images, in ms."""
    bench = os.path.join(ROOT, "target", "release", "bench")
    done = subprocess.run([bench, "tensors", "--runs", "15"], cwd=ROOT, capture_output=True, text=True, check=True)
    grads = {}
    for line in done.stdout.splitlines():
        for batch in (64, 1024):
            if f"minibatch of {batch} images" in line:
                grads[batch] = float(line.split()[-2])
    return grads


def run_numpyro(python):
    """Runs the NumPyro reference; None if that Python has no NumPyro."""
    script = os.path.join(ROOT, "bench", "numpyro_vae.py")
    done = subprocess.run([python, script], cwd=ROOT, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if done.returncode == 0 and lines else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="a Python with numpyro installed")
    args = parser.parse_args()
    ppl = run_ppl()
    print(f"ppl:     training {ppl['train_seconds']:.1f} s, test ELBO {ppl['test_elbo']:.2f}, "
          f"IWELBO(100) {ppl['test_iwelbo100']:.2f} nats per image; whole run {ppl['wall_seconds']:.0f} s, "
          f"peak memory {ppl['peak_mib']:.0f} MiB")
    numpyro = run_numpyro(args.python)
    if numpyro is None:
        print(f"NumPyro: skipped ({args.python} cannot run bench/numpyro_vae.py; see bench/README.md)")
        return
    print(f"NumPyro: training {numpyro['train_seconds']:.1f} s (+{numpyro['compile_seconds']:.1f} s compiling), "
          f"test ELBO {numpyro['test_elbo']:.2f}, IWELBO(100) {numpyro['test_iwelbo100']:.2f} nats per image")
    print(f"training time, ppl / NumPyro: {ppl['train_seconds'] / numpyro['train_seconds']:.2f}")
    grads = run_bench_tensors()
    for batch in (64, 1024):
        theirs = numpyro[f"grad_ms_b{batch}"]
        print(f"gradient of {batch} images: ppl {grads[batch]:.2f} ms (f64, one thread), "
              f"NumPyro {theirs:.2f} ms (f32), ppl / NumPyro: {grads[batch] / theirs:.2f}")


if __name__ == "__main__":
    main()
