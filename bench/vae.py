#!/usr/bin/env python3
"""The paper's VAE (Table 1) in ppl beside NumPyro, in one run: training time, test ELBO and
IWELBO(100) per image, peak memory, and the ratio of the training times; then the gradient of a
minibatch of 64 and of 1024 images and a training step of each, and their ratios to NumPyro's
gradient.

Runs `ppl run --json --quiet examples/vae.ppl` with products of matrices in f64 and in f32
(`--precision`) and `bench tensors` (build both with
`cargo build --release` first), then `bench/numpyro_vae.py` with the Python given by `--python`
(a virtual environment with NumPyro, see bench/README.md), which is skipped if it cannot import
numpyro. Not run by the tests.
Usage: python3 bench/vae.py [--python /tmp/numpyro-venv/bin/python]
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_ppl(precision):
    """Times the whole `ppl run` of the example with products of matrices in `precision` (f64 or
    f32); returns its figures, with the run's own peak memory."""
    ppl = os.path.join(ROOT, "target", "release", "ppl")
    command = [ppl, "run", "--json", "--quiet", "--precision", precision, "examples/vae.ppl"]
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    stdout = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        sys.exit(f"{' '.join(command)} failed")
    results = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    trained = next(result for result in results if result["kind"] == "maximize")
    elbo, iwelbo = [result["mean"] for result in results if result["kind"] == "estimate"]
    return {"train_seconds": trained["seconds"], "preparation_seconds": trained["time"]["preparation"],
            "test_elbo": elbo, "test_iwelbo100": iwelbo, "wall_seconds": wall, "peak_mib": usage.ru_maxrss / 1024}


def run_bench_tensors():
    """`bench tensors`: ppl's gradient of a minibatch of 64 and of 1024 images (on one thread, and
    the 1024 with its products on every core), of 64 particles of one image, and a training step
    of a minibatch of 64 and of 1024 as `ppl run` takes it, in ms, for each precision of
    products."""
    bench = os.path.join(ROOT, "target", "release", "bench")
    done = subprocess.run([bench, "tensors", "--runs", "15"], cwd=ROOT, capture_output=True, text=True, check=True)
    figures, precision = {}, None
    for line in done.stdout.splitlines():
        if "products of two matrices in" in line and line.rstrip().endswith(":"):
            precision = line.split()[-1].rstrip(":")
            figures[precision] = {}
        elif precision and line.startswith("    ") and line.rstrip().endswith("ms"):
            what = line.split(":")[0].strip()
            figures[precision][what] = float(line.split()[-2])
    return figures


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
    runs = {precision: run_ppl(precision) for precision in ("f64", "f32")}
    for precision, ppl in runs.items():
        print(f"ppl ({precision} products): training {ppl['train_seconds']:.1f} s (of which "
              f"{ppl['preparation_seconds']:.2f} s preparing: compiling, loading the training set), "
              f"test ELBO {ppl['test_elbo']:.2f}, "
              f"IWELBO(100) {ppl['test_iwelbo100']:.2f} nats per image; whole run {ppl['wall_seconds']:.0f} s, "
              f"peak memory {ppl['peak_mib']:.0f} MiB")
    numpyro = run_numpyro(args.python)
    if numpyro is None:
        print(f"NumPyro: skipped ({args.python} cannot run bench/numpyro_vae.py; see bench/README.md)")
        return
    print(f"NumPyro: training {numpyro['train_seconds']:.1f} s (+{numpyro['compile_seconds']:.1f} s compiling), "
          f"test ELBO {numpyro['test_elbo']:.2f}, IWELBO(100) {numpyro['test_iwelbo100']:.2f} nats per image")
    # NumPyro's training time leaves out its compiling and its data loading; ppl's is given with
    # its preparation (compiling, loading the training set) and without.
    for precision, ppl in runs.items():
        steps = ppl['train_seconds'] - ppl['preparation_seconds']
        print(f"training time ({precision} products), ppl / NumPyro: "
              f"{ppl['train_seconds'] / numpyro['train_seconds']:.2f}; its steps alone: "
              f"{steps / numpyro['train_seconds']:.2f}")
    figures = run_bench_tensors()
    for precision, grads in figures.items():
        for what, batch in [("gradient of a minibatch of 64 images", 64),
                            ("gradient of a minibatch of 1024 images", 1024),
                            ("1024 images, products on every core", 1024),
                            ("gradient of 64 images, every core", 64),
                            ("gradient of 1024 images, every core", 1024)]:
            ours, theirs = grads[what], numpyro[f"grad_ms_b{batch}"]
            print(f"{what}: ppl {ours:.2f} ms ({precision} products), NumPyro {theirs:.2f} ms (f32), "
                  f"ppl / NumPyro: {ours / theirs:.2f}")
        for what, batch in [("training step, minibatch of 64, every core", 64),
                            ("training step, minibatch of 1024, every core", 1024)]:
            ours, theirs = grads[what], numpyro[f"grad_ms_b{batch}"]
            print(f"{what} (gradient in two parts, then Adam): ppl {ours:.2f} ms ({precision} products), "
                  f"NumPyro's gradient alone {theirs:.2f} ms (f32), ppl / NumPyro: {ours / theirs:.2f}")
        ours, theirs = grads["64 particles of one image's ELBO"], numpyro["grad_ms_b64"]
        print(f"64 particles of one image: ppl {ours:.2f} ms ({precision} products), "
              f"{ours / theirs:.2f} x NumPyro's gradient of 64 images (target: at most 2)")

if __name__ == "__main__":
    main()
