"""Median forward and backward time of each layer at the default MNIST CNN's shapes.

    .venv/bin/python benchmarks/bench_layers.py [--batch 64] [--repeats 30] [--threads 1]

Float32, batch 64, one layer at a time, as in configs/cnn.yaml. The first conv runs without
its input gradient, as the network runs it. With PyTorch installed, a last column times the
same operation forward + backward in torch (CPU) for comparison. `--threads` caps the BLAS
(and torch) threads: on a busy 2-core machine a spinning second BLAS thread can cost 10x.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from npnet.nn import conv, dense, pooling, reshape  # noqa: F401  (registers the layers)
from npnet.registry import LAYERS

# label, layer name, args, per-sample input shape, input_grad
CNN = [
    (
        "conv2d 16 3x3 pad 1 (no dx)",
        "conv2d",
        {"filters": 16, "kernel": 3, "padding": 1},
        (1, 28, 28),
        False,
    ),
    ("max_pool2d 2", "max_pool2d", {}, (16, 28, 28), True),
    (
        "conv2d 32 3x3 pad 1",
        "conv2d",
        {"filters": 32, "kernel": 3, "padding": 1},
        (16, 14, 14),
        True,
    ),
    ("max_pool2d 2", "max_pool2d", {}, (32, 14, 14), True),
    ("flatten", "flatten", {}, (32, 7, 7), True),
    ("dense 128", "dense", {"units": 128}, (1568,), True),
    ("dense 10", "dense", {"units": 10}, (128,), True),
]
EXTRA = [("avg_pool2d 2 (not in the CNN)", "avg_pool2d", {}, (16, 28, 28), True)]


def median_ms(f, repeats: int) -> float:
    f()  # warm-up: first-touch page faults, BLAS thread start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def torch_step(name, layer, x, g, threads):
    """A closure running the same layer forward + backward in PyTorch, or None without it."""
    try:
        import torch
    except ImportError:
        return None
    if threads is not None:
        torch.set_num_threads(threads)
    F = torch.nn.functional
    tx = torch.tensor(x, requires_grad=layer.input_grad)
    tg = torch.tensor(g)
    p = {k: torch.tensor(v, requires_grad=True) for k, v in layer.params.items()}
    ops = {
        "conv2d": lambda: F.conv2d(tx, p["W"], p["b"], padding=layer.pads[0][0]),
        "max_pool2d": lambda: F.max_pool2d(tx, layer.size),
        "avg_pool2d": lambda: F.avg_pool2d(tx, layer.size),
        "flatten": lambda: torch.flatten(tx, 1),
        "dense": lambda: F.linear(tx, p["W"].T, p["b"]),
    }
    return lambda: ops[name]().backward(tg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None, help="BLAS/torch threads")
    options = parser.parse_args()
    with threadpool_limits(limits=options.threads, user_api="blas"):
        run(options)


def run(options: argparse.Namespace) -> None:
    rng = np.random.default_rng(0)
    threads = options.threads or "default"
    print(
        f"batch {options.batch}, float32, {threads} threads, median of {options.repeats} runs (ms)"
    )
    header = (
        f"{'layer':<32}{'input':>14}{'forward':>9}{'backward':>10}{'total':>9}{'torch f+b':>11}"
    )
    print(header)
    print("-" * len(header))
    totals = [0.0, 0.0]
    for label, name, args, in_shape, input_grad in CNN + EXTRA:
        layer = LAYERS.build(name, args)
        out_shape = layer.build(in_shape, rng, np.float32)
        layer.input_grad = input_grad
        x = rng.standard_normal((options.batch, *in_shape), dtype=np.float32)
        if name == "max_pool2d":
            x = np.maximum(x, 0)  # after a ReLU: ties at 0, as in the real network
        g = rng.standard_normal((options.batch, *out_shape), dtype=np.float32)
        forward = median_ms(lambda: layer.forward(x, True), options.repeats)  # noqa: B023
        layer.forward(x, True)
        backward = median_ms(lambda: layer.backward(g), options.repeats)  # noqa: B023
        step = torch_step(name, layer, x, g, options.threads)
        reference = f"{median_ms(step, options.repeats):11.3f}" if step else f"{'-':>11}"
        shape = "x".join(map(str, in_shape))
        times = f"{forward:9.3f}{backward:10.3f}{forward + backward:9.3f}"
        print(f"{label:<32}{shape:>14}{times}{reference}")
        if (label, name, args, in_shape, input_grad) in CNN:
            totals[0] += forward
            totals[1] += backward
        if label == CNN[-1][0]:
            fwd, bwd = totals
            print("-" * len(header))
            print(f"{'these layers of the default CNN':<46}{fwd:9.3f}{bwd:10.3f}{fwd + bwd:9.3f}")
            print("-" * len(header))


if __name__ == "__main__":
    main()
