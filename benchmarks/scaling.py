"""How training cost grows with the batch: configs/cnn.yaml's network on 3x32x32 images.

    .venv/bin/python benchmarks/scaling.py [--load] [--out scaling.json]

For batch sizes 16 to 512, npnet (`train.threads: auto`, `build_experiment` and `train_epoch`,
as `npnet train` runs) and PyTorch (the same network and loop, on one thread and on one per
core, the faster of the two reported: the fastest plain PyTorch loop) train on
synthetic data of the shape of CIFAR-10 (random normal images, random labels: the arithmetic
does not care what the pixels show). Each figure is the median of 3 repeats of at least 2,048
images (and 5 steps), the two libraries taking turns, each repeat after a pause (`SETTLE`).

Reported: seconds per epoch of 50,000 images, and the achieved GFLOP/s: the multiply-adds of
the convolutions and dense layers (forward, dL/dW and dL/dx, the first convolution without
dL/dx; pooling and ReLU are not counted) over the time, against the machine's peak, measured as
the best of 3 float32 2048x2048 matrix products on every core (NumPy's BLAS). `--load` keeps
one core busy meanwhile, as bench.py does.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench import (
    OPTIMIZER,
    SETTLE,
    available_cores,
    busy_core,
    model_layers,
    torch_cnn_layers,
)

SHAPE = (3, 32, 32)
EPOCH_IMAGES = 50_000
BATCHES = [16, 32, 64, 128, 256, 512]
MIN_IMAGES, MIN_STEPS, REPEATS = 2048, 5, 3


def training_flops(shape: tuple[int, int, int]) -> int:
    """Floating-point operations (2 per multiply-add) of one image's training step through
    cnn.yaml's network: conv 16 3x3 pad 1, pool 2, conv 32 3x3 pad 1, pool 2, dense 128, 10."""
    c, h, w = shape
    conv1 = 2 * c * 9 * 16 * h * w
    conv2 = 2 * 16 * 9 * 32 * (h // 2) * (w // 2)
    dense1 = 2 * 32 * (h // 4) * (w // 4) * 128
    dense2 = 2 * 128 * 10
    # forward and dL/dW for every layer, dL/dx for all but the first
    return 2 * conv1 + 3 * (conv2 + dense1 + dense2)


def gemm_peak_gflops(size: int = 2048) -> float:
    """The best of 3 float32 size x size matrix products on NumPy's BLAS, every core."""
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    a @ a  # threads started, pages faulted
    best = min(timed(lambda: a @ a) for _ in range(3))
    return 2 * size**3 / best / 1e9


def timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


class Npnet:
    def __init__(self, batch: int, x: np.ndarray, y: np.ndarray) -> None:
        from npnet.config import config_from_dict
        from npnet.data import Dataset
        from npnet.engine.callbacks import Callback
        from npnet.engine.experiment import build_experiment

        config = config_from_dict(
            {
                "name": "scaling",
                "model": {"layers": model_layers("cnn")},
                "optimizer": OPTIMIZER,
                "train": {"batch_size": batch},
            }
        )
        empty = x[:0]
        data = Dataset("synthetic", x, y, empty, y[:0], empty, y[:0], num_classes=10)
        self.exp = build_experiment(config, data)
        self.rng, self.callback = np.random.default_rng(0), Callback()

    def train(self) -> None:
        from npnet.engine.loop import train_epoch

        train_epoch(self.exp, self.rng, self.callback)


class Torch:
    def __init__(self, batch: int, x: np.ndarray, y: np.ndarray, threads: int) -> None:
        import torch
        from torch import nn

        self.torch, self.batch, self.threads = torch, batch, threads
        torch.manual_seed(0)
        self.model = nn.Sequential(*torch_cnn_layers(nn, SHAPE))
        args = {k: v for k, v in OPTIMIZER.items() if k != "name"}
        self.optimizer = torch.optim.SGD(self.model.parameters(), **args)
        self.loss = nn.CrossEntropyLoss()
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)

    def train(self) -> None:
        torch = self.torch
        torch.set_num_threads(self.threads)
        order = torch.randperm(len(self.x))
        x_all, y_all = self.x[order], self.y[order]
        for start in range(0, len(x_all), self.batch):
            x, y = x_all[start : start + self.batch], y_all[start : start + self.batch]
            out = self.model(x)
            loss = self.loss(out, y)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            loss.item()


def measure(batch: int, frameworks: list[str]) -> dict[str, Any]:
    steps = max(MIN_STEPS, math.ceil(MIN_IMAGES / batch))
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((steps * batch, *SHAPE), dtype=np.float32)
    y = rng.integers(0, 10, size=steps * batch)
    runners = {
        "npnet": Npnet,
        "torch": lambda *data: Torch(*data, threads=available_cores()),
        "torch1": lambda *data: Torch(*data, threads=1),
    }
    workers = {f: runners[f](batch, x, y) for f in frameworks}
    for w in workers.values():
        w.train()  # untimed: page faults, threads, the auto chooser's first trial
    seconds: dict[str, list[float]] = {f: [] for f in workers}
    for _ in range(REPEATS):
        for f, w in workers.items():
            time.sleep(SETTLE)
            seconds[f].append(timed(w.train))
    flops = training_flops(SHAPE) * len(x)
    result = {
        f: {
            "seconds_per_epoch": statistics.median(s) * EPOCH_IMAGES / len(x),
            "gflops": flops / statistics.median(s) / 1e9,
            "repeat_seconds": s,
            "images": len(x),
            "threads": getattr(workers[f], "threads", "auto"),
        }
        for f, s in seconds.items()
    }
    torches = [result[f] for f in ("torch", "torch1") if f in result]
    if torches:
        result["reference"] = min(torches, key=lambda r: r["seconds_per_epoch"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", action="store_true", help="keep one core busy meanwhile")
    parser.add_argument("--out", type=Path, default=Path("scaling.json"), help="JSON output")
    parser.add_argument("--batches", type=int, nargs="+", default=BATCHES)
    options = parser.parse_args()
    try:
        import torch  # noqa: F401

        frameworks = ["npnet", "torch", "torch1"] if available_cores() > 1 else ["npnet", "torch"]
    except ImportError:
        frameworks = ["npnet"]
    load_before = os.getloadavg()
    with busy_core(options.load):
        peak = gemm_peak_gflops()
        results = {batch: measure(batch, frameworks) for batch in options.batches}
    report = {
        "shape": SHAPE,
        "load": options.load,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "training_flops_per_image": training_flops(SHAPE),
        "gemm_peak_gflops": peak,
        "results": results,
    }
    options.out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report, frameworks)
    print(f"wrote {options.out}")


def print_table(report: dict[str, Any], frameworks: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    peak = report["gemm_peak_gflops"]
    load = ", one core busy (--load)" if report["load"] else ""
    table = Table(
        title=f"cnn.yaml's network on {'x'.join(map(str, SHAPE))} synthetic images{load}, "
        f"load {report['load_before'][0]:.2f} -> {report['load_after'][0]:.2f}"
    )
    columns = ["npnet"] if frameworks == ["npnet"] else ["npnet", "reference"]
    table.add_column("batch", justify="right")
    for f in columns:
        name = "npnet" if f == "npnet" else "PyTorch"
        table.add_column(
            f"{name} s/epoch" + (" (threads)" if f == "reference" else ""), justify="right"
        )
        table.add_column(f"{name} GFLOP/s (% of peak)", justify="right")
    if len(columns) == 2:
        table.add_column("ratio", justify="right")
    for batch, result in report["results"].items():
        row = [str(batch)]
        for f in columns:
            r = result[f]
            seconds = f"{r['seconds_per_epoch']:.1f}"
            seconds += f" ({r['threads']})" if f == "reference" else ""
            row += [seconds, f"{r['gflops']:.1f} ({r['gflops'] / peak:.0%})"]
        if len(columns) == 2:
            ratio = result["npnet"]["seconds_per_epoch"] / result["reference"]["seconds_per_epoch"]
            row.append(f"{ratio:.2f}x")
        table.add_row(*row)
    console = Console()
    console.print(table)
    console.print(
        f"Epoch: {EPOCH_IMAGES:,} images. {report['training_flops_per_image'] / 1e6:.1f} MFLOP "
        f"per image per training step (convolutions and dense layers). Peak: {peak:.0f} GFLOP/s, "
        "the best float32 2048x2048 matrix product on every core."
    )


if __name__ == "__main__":
    main()
