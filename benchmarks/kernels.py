"""What `OPENBLAS_CORETYPE` costs: npnet training with the kernels it pins against OpenBLAS's
own choice for the CPU, one thread each, interleaved.

    .venv/bin/python benchmarks/kernels.py [--networks cnn lenet mlp] [--rounds 15]

Two worker processes per network, one with the environment as it is and one with
`OPENBLAS_CORETYPE` (and `OPENBLAS_L2_SIZE`) unset, each `bench.py`'s npnet worker with
`train.threads: 1` and `OPENBLAS_NUM_THREADS=1`; they take turns, repeat after repeat (100
steps of 64 images, a whole epoch for the MLP), and the table gives the median ms a step of
each and the median of the paired ratios. Without `OPENBLAS_CORETYPE` both run the same
kernels and there is nothing to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTLE = 0.2  # seconds of pause before each timed repeat

WORKER = """
import json, sys, time
sys.path.insert(0, "benchmarks")
import bench
from npnet.nn.blas import blas_kernels
network, steps = sys.argv[1], int(sys.argv[2])
worker = bench.NpnetWorker(network, steps, 1, *bench.load_mnist())
worker.train()  # untimed: first-touch page faults
print(json.dumps(blas_kernels()), flush=True)
for _ in sys.stdin:
    start = time.perf_counter()
    worker.train()
    print(json.dumps((time.perf_counter() - start) / steps * 1e3), flush=True)
"""


def compare(network: str, rounds: int) -> dict[str, object]:
    """ms a step with the pinned kernels and with OpenBLAS's own, taking turns."""
    steps = 938 if network == "mlp" else 100
    pinned = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    own = {k: v for k, v in pinned.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    workers = {
        name: subprocess.Popen(
            [sys.executable, "-c", WORKER, network, str(steps)],
            env=env,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name, env in (("pinned", pinned), ("own", own))
    }
    kernels = {name: json.loads(w.stdout.readline()) for name, w in workers.items()}
    times: dict[str, list[float]] = {name: [] for name in workers}
    order = list(workers)
    for repeat in range(rounds):
        for name in order if repeat % 2 == 0 else order[::-1]:
            time.sleep(SETTLE)
            workers[name].stdin.write("go\n")
            workers[name].stdin.flush()
            times[name].append(json.loads(workers[name].stdout.readline()))
    for w in workers.values():
        w.stdin.close()
        w.wait()
    paired = [a / b for a, b in zip(times["pinned"], times["own"], strict=True)]
    return {
        "kernels": kernels,
        "ms_per_step": {name: statistics.median(t) for name, t in times.items()},
        "paired_ratio": statistics.median(paired),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", nargs="+", default=["cnn", "lenet", "mlp"])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    if not os.environ.get("OPENBLAS_CORETYPE"):
        print("OPENBLAS_CORETYPE is not set: OpenBLAS runs its own choice of kernels already")
        return
    print(f"{'network':8} {'pinned ms':>10} {'own ms':>8} {'pinned / own':>13}  kernels")
    for network in args.networks:
        result = compare(network, args.rounds)
        ms, kernels = result["ms_per_step"], result["kernels"]
        print(
            f"{network:8} {ms['pinned']:10.3f} {ms['own']:8.3f} {result['paired_ratio']:12.3f}x"
            f"  {kernels['pinned']} / {kernels['own']}"
        )


if __name__ == "__main__":
    main()
