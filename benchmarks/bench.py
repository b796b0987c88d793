"""Training and inference speed and peak memory of npnet next to PyTorch, measured in one run.

    .venv/bin/python benchmarks/bench.py [--quick] [--load] [--threads N] [--out bench.json]

Three networks on real MNIST, float32, batch 64, SGD with momentum 0.9 (lr 0.01):

    mlp    784-128-10 with ReLU
    cnn    configs/cnn.yaml's network: conv16 3x3 -> pool -> conv32 3x3 -> pool -> dense 128 -> 10
    lenet  conv6 5x5 pad 2 -> relu -> pool -> conv16 5x5 -> relu -> pool -> dense 120 -> 84 -> 10

Method:
- Each (framework, network) pair runs in its own worker process, so its peak memory is its own.
  The parent sends the npnet and PyTorch workers of a network the same command in turn, repeat
  after repeat: both see the same machine load, and each figure comes with the ratio
  npnet / PyTorch (below 1: npnet is faster or smaller).
- Training: one repeat is `--steps` optimizer steps (forward, loss, backward, update, plus the
  running loss and accuracy the trainer reports) on a fixed subset of the 60,000 training
  images, reshuffled per repeat. The median repeat is extrapolated to an epoch of 60,000
  images (938 steps). npnet runs `npnet.engine.loop.train_epoch` itself, on a network, loss and
  optimizer built from the config by the library: what `npnet train` runs.
- Inference: loss and accuracy over the 10,000 test images in batches of 1000, in evaluation
  mode (npnet: `npnet.engine.metrics.evaluate`, as `npnet train` and `npnet eval` do; PyTorch: the
  same under `torch.inference_mode()`); the median of `--repeats` passes.
- Memory: the worker's peak resident set size (`getrusage(RUSAGE_SELF).ru_maxrss`), read
  after data loading, after the training repeats and at the end (after inference). It
  includes the interpreter, the libraries and the MNIST arrays (~220 MB as float32), which
  is why the "after data" baseline is shown too. For npnet also the peak of NumPy's own
  allocations (tracemalloc) during one training step and one inference batch of 1000,
  measured after the timings.
- Threads, by default: npnet as a user gets it, `train.threads: auto` (npnet.nn.parallel:
  image networks in two slices, run side by side or one after the other, whichever steps
  faster; dense networks on one BLAS thread). PyTorch twice, with `torch.set_num_threads(1)`
  and with one thread per core, and the reference is the faster of the two: the fastest plain
  PyTorch loop. `--threads N` instead gives both libraries N threads as before (npnet:
  `train.threads: N` for the convolutional networks, BLAS capped at N).
- Each repeat is timed after a pause (`SETTLE`), so the threads the other worker just used
  (OpenBLAS's and OpenMP's spin a while after their work) are asleep; and the MLP's repeat is
  a whole epoch (938 steps, ~0.6 s): 100 steps of it took ~60 ms, short enough that those
  spinning threads doubled PyTorch's figure (1.1-1.6 s an epoch against 0.58 s alone).
- `--load`: one core kept busy throughout by a competing process (a shell loop that spins
  while the benchmark lives) that the benchmark starts and stops itself: how both libraries
  fare on a shared machine. The load average before and after the run is recorded either way.

It checks nothing: it prints a table and writes every number (and each repeat's raw time) to
JSON, bench.json by default.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TRAIN_IMAGES = 60_000
BATCH = 64
EVAL_BATCH = 1000
STEPS_PER_EPOCH = math.ceil(TRAIN_IMAGES / BATCH)
OPTIMIZER = {"name": "sgd", "lr": 0.01, "momentum": 0.9}
LENET = [
    {"conv2d": {"filters": 6, "kernel": 5, "padding": 2}},
    "relu",
    {"max_pool2d": {"size": 2}},
    {"conv2d": {"filters": 16, "kernel": 5}},
    "relu",
    {"max_pool2d": {"size": 2}},
    "flatten",
    {"dense": {"units": 120}},
    "relu",
    {"dense": {"units": 84}},
    "relu",
    {"dense": {"units": 10}},
]
MLP = ["flatten", {"dense": {"units": 128}}, "relu", {"dense": {"units": 10}}]
NETWORKS = ["mlp", "cnn", "lenet"]
SLICED = {"cnn", "lenet"}  # with --threads N, the networks npnet runs with train.threads = N
EPOCH_REPEAT = {"mlp"}  # networks whose training repeat is a whole epoch (too quick otherwise)
SETTLE = 0.3  # seconds of pause before each timed repeat, for the other worker's threads to sleep


def model_layers(network: str) -> list[Any]:
    """The layer specs of a network, as a config's `model.layers` lists them."""
    if network == "cnn":
        from npnet.config import load_config

        cnn = load_config(ROOT / "configs" / "cnn.yaml")
        return cnn.model.layers
    return {"mlp": MLP, "lenet": LENET}[network]


def peak_rss_mb() -> float:
    """The process's peak resident set size so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def private_mb(pid: int) -> float:
    """The memory process `pid` does not share with another (Private_Clean + Private_Dirty):
    what a forked child adds to its parent's RSS, which its own RSS would count again."""
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        fields = dict(line.split(":", 1) for line in rollup if line.startswith("Private_"))
    return sum(int(value.split()[0]) for value in fields.values()) / 1024


def load_mnist() -> tuple[np.ndarray, ...]:
    """All 60,000 training and 10,000 test images, float32 and standardized as configs/cnn.yaml
    does, and their int64 labels."""
    from npnet.data import load_dataset

    data = load_dataset("mnist", validation=0, normalize="standard")
    return data.x_train, data.y_train, data.x_test, data.y_test


# ---------------------------------------------------------------------------------------------
# Workers: one process per (framework, network), answering the parent's commands one per line.


class NpnetWorker:
    """npnet as its users run it: a config, `build_experiment`, `train_epoch`, `evaluate`."""

    def __init__(
        self, network: str, steps: int, threads: int | None, x_train, y_train, x_test, y_test
    ) -> None:
        from npnet.config import config_from_dict
        from npnet.data import Dataset
        from npnet.engine.callbacks import Callback
        from npnet.engine.experiment import build_experiment

        config = config_from_dict(
            {
                "name": f"bench-{network}",
                "model": {"layers": model_layers(network)},
                "optimizer": OPTIMIZER,
                "train": {
                    "batch_size": BATCH,
                    "eval_batch_size": EVAL_BATCH,
                    "threads": "auto" if threads is None else threads if network in SLICED else 1,
                },
            }
        )
        empty = x_train[:0]
        # `train_epoch` passes over the whole training split: give it the first `steps`
        # batches, so one "epoch" is one timed repeat.
        subset = Dataset(
            name="mnist",
            x_train=x_train[: steps * BATCH],
            y_train=y_train[: steps * BATCH],
            x_val=empty,
            y_val=y_train[:0],
            x_test=x_test,
            y_test=y_test,
            num_classes=10,
        )
        self.exp = build_experiment(config, subset)
        self.shuffle_rng = np.random.default_rng(0)
        self.callback = Callback()

    def train(self) -> None:
        from npnet.engine.loop import train_epoch

        train_epoch(self.exp, self.shuffle_rng, self.callback)

    def infer(self) -> None:
        from npnet.engine.metrics import evaluate

        data = self.exp.dataset
        evaluate(self.exp.net, self.exp.loss, data.x_test, data.y_test, EVAL_BATCH, True)

    def threads_used(self) -> dict[str, Any]:
        """`train.threads: auto`'s choices: steps run with each number of slices at once; the
        private memory of the processes the slices ran in."""
        chooser = getattr(self.exp.net, "chooser", None)
        used = {} if chooser is None else {"slices_at_once_steps": dict(chooser.used)}
        processes = getattr(self.exp.net, "processes", [])
        if processes:
            used["slice_processes_private_mb"] = sum(private_mb(w.process.pid) for w in processes)
        return used

    def numpy_peaks(self) -> dict[str, float]:
        """Peak MB of NumPy allocations (tracemalloc) in one training step and in one
        evaluation batch of 1000: the network's working memory, without the dataset."""
        from npnet.engine.metrics import evaluate

        data, model, loss, optimizer = (
            self.exp.dataset,
            self.exp.net,
            self.exp.loss,
            self.exp.optimizer,
        )
        peaks = {}
        tracemalloc.start()
        out = model.forward(data.x_train[:BATCH], training=True)
        loss.forward(out, data.y_train[:BATCH])
        model.backward(loss.backward())
        optimizer.step(model.parameters(), model.gradients())
        peaks["numpy_train_step_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.reset_peak()
        evaluate(model, loss, data.x_test[:EVAL_BATCH], data.y_test[:EVAL_BATCH], EVAL_BATCH, True)
        peaks["numpy_eval_batch_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        return peaks


def torch_cnn_layers(nn: Any, shape: tuple[int, int, int]) -> list[Any]:
    """configs/cnn.yaml's network in PyTorch, for (C, H, W) inputs."""
    c, h, w = shape
    return [
        nn.Conv2d(c, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * (h // 4) * (w // 4), 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    ]


class TorchWorker:
    """The same network, data and loop in PyTorch (float32, CPU)."""

    def __init__(self, network: str, steps: int, x_train, y_train, x_test, y_test) -> None:
        import torch
        from torch import nn

        self.torch = torch
        torch.manual_seed(0)
        layers = {
            "mlp": lambda: [nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10)],
            "cnn": lambda: torch_cnn_layers(nn, (1, 28, 28)),
            "lenet": lambda: [
                nn.Conv2d(1, 6, 5, padding=2),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(6, 16, 5),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Flatten(),
                nn.Linear(16 * 5 * 5, 120),
                nn.ReLU(),
                nn.Linear(120, 84),
                nn.ReLU(),
                nn.Linear(84, 10),
            ],
        }[network]
        self.model = nn.Sequential(*layers())
        self.loss = nn.CrossEntropyLoss()
        args = {k: v for k, v in OPTIMIZER.items() if k != "name"}
        self.optimizer = torch.optim.SGD(self.model.parameters(), **args)
        self.x_train = torch.from_numpy(x_train[: steps * BATCH])
        self.y_train = torch.from_numpy(y_train[: steps * BATCH])
        self.x_test, self.y_test = torch.from_numpy(x_test), torch.from_numpy(y_test)
        self.shuffle_rng = np.random.default_rng(0)

    def train(self) -> None:
        """What `train_epoch` does, in PyTorch: gather shuffled batches once, then steps that
        also add up the loss and the correct predictions."""
        torch, model = self.torch, self.model
        model.train()
        order = torch.from_numpy(self.shuffle_rng.permutation(len(self.x_train)))
        x_all, y_all = self.x_train[order], self.y_train[order]
        total_loss, total_correct = 0.0, 0
        for start in range(0, len(x_all), BATCH):
            x, y = x_all[start : start + BATCH], y_all[start : start + BATCH]
            out = model(x)
            loss = self.loss(out, y)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            total_loss += loss.item() * len(x)
            total_correct += int((out.argmax(dim=1) == y).sum())
        torch.tensor(total_loss)  # the results are not needed, only the work

    def infer(self) -> None:
        torch, model = self.torch, self.model
        model.eval()
        total, outs = 0.0, []
        with torch.inference_mode():
            for start in range(0, len(self.x_test), EVAL_BATCH):
                out = model(self.x_test[start : start + EVAL_BATCH])
                total += self.loss(out, self.y_test[start : start + EVAL_BATCH]).item() * len(out)
                outs.append(out)
            float((torch.cat(outs).argmax(dim=1) == self.y_test).float().mean())

    def threads_used(self) -> dict[str, Any]:
        return {}

    def numpy_peaks(self) -> dict[str, float]:
        return {}  # PyTorch's tensors are not NumPy allocations: tracemalloc does not see them


def worker(framework: str, network: str, steps: int, threads: int | None) -> None:
    """Answer the parent's commands ("train", "infer", "memory") on stdin, one JSON line each.

    `threads`: None for npnet's `train.threads: auto`; for PyTorch, its intra-op threads."""
    from threadpoolctl import threadpool_limits

    # An explicit cap stays on for the worker's life; PyTorch gets the same number of threads.
    limits = threadpool_limits(limits=threads, user_api="blas")
    data = load_mnist()
    memory = {"rss_after_data_mb": peak_rss_mb()}
    if framework == "npnet":
        runner = NpnetWorker(network, steps, threads, *data)
    else:
        import torch

        torch.set_num_threads(threads)
        runner = TorchWorker(network, steps, *data)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "memory":
            reply = {**memory, "rss_peak_mb": peak_rss_mb(), **runner.threads_used()}
            reply.update(runner.numpy_peaks())
        else:
            start = time.perf_counter()
            runner.train() if command == "train" else runner.infer()
            reply = {"seconds": time.perf_counter() - start}
        if command == "train":
            # ru_maxrss only grows: its value after the last training repeat is the peak of
            # loading and training, before inference's larger batches.
            memory["rss_after_training_mb"] = peak_rss_mb()
        print(json.dumps(reply), flush=True)
    limits.restore_original_limits()


class Worker:
    """The parent's handle on a worker process."""

    def __init__(self, framework: str, network: str, steps: int, threads: int | None) -> None:
        command = [sys.executable, __file__, "--worker", framework, network]
        command += ["--steps", str(steps)]
        command += [] if threads is None else ["--threads", str(threads)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
        )

    def ask(self, command: str) -> dict[str, Any]:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.answer()

    def answer(self) -> dict[str, Any]:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the worker running {self.process.args} died")
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


# ---------------------------------------------------------------------------------------------
# The parent: start the workers, interleave their repeats, report.


def torch_version() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.__version__


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def blas_info() -> list[dict[str, Any]]:
    from threadpoolctl import threadpool_info

    keys = ("internal_api", "version", "num_threads", "architecture")
    return [{k: pool.get(k) for k in keys} for pool in threadpool_info()]


def interleave(workers: dict[str, Worker], command: str, repeats: int) -> dict[str, list[float]]:
    """Seconds of `repeats` runs of `command` per framework, taking turns, each after a pause;
    one untimed run first (page faults, thread pools, first allocations)."""
    for w in workers.values():
        w.ask(command)
    seconds: dict[str, list[float]] = {f: [] for f in workers}
    for _ in range(repeats):
        for f, w in workers.items():
            time.sleep(SETTLE)
            seconds[f].append(w.ask(command)["seconds"])
    return seconds


def worker_threads(options: argparse.Namespace) -> dict[str, int | None]:
    """The workers of a network and their threads: npnet (None: `train.threads: auto`) and
    PyTorch on one thread and on every core, or both on `--threads`."""
    if options.threads is not None:
        return {"npnet": options.threads, "torch": options.threads}
    cores = available_cores()
    torch_threads = {"torch": cores, "torch1": 1} if cores > 1 else {"torch": 1}
    return {"npnet": None, **torch_threads}


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@contextlib.contextmanager
def busy_core(enabled: bool):
    """With `enabled`, a process spinning on one core until the block ends."""
    if not enabled:
        yield
        return
    # It spins only while this process lives, so a benchmark killed from outside (where this
    # `finally` never runs) does not leave a core busy behind it.
    hog = subprocess.Popen(["sh", "-c", f"while kill -0 {os.getpid()} 2>/dev/null; do :; done"])
    try:
        yield
    finally:
        hog.kill()
        hog.wait()


def measure(network: str, frameworks: list[str], options: argparse.Namespace) -> dict[str, Any]:
    """Every figure for one network, the frameworks' repeats interleaved."""
    steps = STEPS_PER_EPOCH if network in EPOCH_REPEAT else options.steps
    threads = worker_threads(options)
    if "torch" not in frameworks:
        threads = {"npnet": threads["npnet"]}
    workers = {
        name: Worker(name.rstrip("1"), network, steps, count) for name, count in threads.items()
    }
    try:
        # Every worker set up (data loaded, libraries imported) before any trains: otherwise
        # npnet's first steps meet the others' start-up on the cores, and `auto` keeps one
        # slice after the other until its next trial.
        for w in workers.values():
            w.answer()
        train = interleave(workers, "train", options.repeats)
        infer = interleave(workers, "infer", options.infer_repeats)
        memory = {f: w.ask("memory") for f, w in workers.items()}
    finally:
        for w in workers.values():
            w.close()
    result: dict[str, Any] = {}
    for f in workers:
        step = statistics.median(train[f]) / steps
        result[f] = {
            "threads": threads[f],
            "train_seconds_per_epoch": step * STEPS_PER_EPOCH,
            "train_ms_per_step": 1e3 * step,
            "infer_seconds": statistics.median(infer[f]),
            "train_repeat_seconds": train[f],
            "infer_repeat_seconds": infer[f],
            **memory[f],
        }
    if "torch" in result:
        # The reference: the faster PyTorch (by thread count) for each figure.
        torches = [result[f] for f in ("torch", "torch1") if f in result]
        best = {
            key: min(torches, key=lambda r, key=key: r[key])
            for key in ("train_seconds_per_epoch", "infer_seconds")
        }
        result["reference_threads"] = {key: r["threads"] for key, r in best.items()}
        ours = result["npnet"]
        result["ratio"] = {key: ours[key] / r[key] for key, r in best.items()}
        ours_mb = ours["rss_after_training_mb"] + ours.get("slice_processes_private_mb", 0.0)
        result["ratio"]["rss_after_training_mb"] = (
            ours_mb / result["torch"]["rss_after_training_mb"]
        )
    return result


def print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    settings = report["settings"]
    threads = settings["threads"] or "npnet auto, PyTorch 1 and all cores"
    load = ", one core busy (--load)" if settings["load"] else ""
    kernels = [pool["architecture"] for pool in report["machine"]["blas"] if pool["architecture"]]
    title = (
        f"npnet vs PyTorch, float32, batch {BATCH}, threads: {threads}{load}, "
        f"OpenBLAS kernels: {', '.join(kernels) or 'unknown'}"
        f"{' (OPENBLAS_CORETYPE)' if report['machine']['openblas_coretype'] else ''}, "
        f"load {report['load_before'][0]:.2f} -> {report['load_after'][0]:.2f}"
    )
    table = Table(title=title)
    for column in ("network", "", "train s/epoch", "inference s", "peak RSS MB", "numpy MB"):
        table.add_column(column, justify="left" if column in ("network", "") else "right")
    for network, result in report["results"].items():
        rows = [("npnet", result["npnet"])]
        for name in ("torch", "torch1"):
            if name in result:
                rows.append((f"PyTorch {result[name]['threads']}t", result[name]))
        for label, r in rows:
            numpy_mb = (
                f"{r['numpy_train_step_mb']:.0f} / {r['numpy_eval_batch_mb']:.0f}"
                if "numpy_train_step_mb" in r
                else "-"
            )
            table.add_row(
                network if label == "npnet" else "",
                label,
                f"{r['train_seconds_per_epoch']:.2f}",
                f"{r['infer_seconds']:.3f}",
                f"{r['rss_after_training_mb']:.0f} ({r['rss_peak_mb']:.0f})"
                + (
                    f" + {r['slice_processes_private_mb']:.0f}"
                    if "slice_processes_private_mb" in r
                    else ""
                ),
                numpy_mb,
            )
        if "ratio" in result:
            ratio = result["ratio"]
            table.add_row(
                "",
                "[bold]ratio[/bold]",
                f"[bold]{ratio['train_seconds_per_epoch']:.2f}x[/bold]",
                f"[bold]{ratio['infer_seconds']:.2f}x[/bold]",
                f"{ratio['rss_after_training_mb']:.2f}x",
                "",
                end_section=True,
            )
    console = Console()
    console.print(table)
    console.print(
        f"Training: median of {settings['repeats']} repeats of {settings['steps']} steps, "
        f"extrapolated to {STEPS_PER_EPOCH} steps (60,000 images). Inference: median of "
        f"{settings['infer_repeats']} passes over the 10,000 test images, batch {EVAL_BATCH}. "
        "PyTorch Nt: on N threads; the ratio is against the faster PyTorch. "
        "Peak RSS (getrusage ru_maxrss) after training, in parentheses after inference too; "
        "it includes Python, the libraries and ~220 MB of MNIST; + N: the private memory of "
        "npnet's slice processes (forked: the rest they share). numpy MB: tracemalloc peak "
        f"of one training step / one inference batch of {EVAL_BATCH}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    parser.add_argument(
        "--threads", type=int, default=None, help="BLAS / PyTorch threads (default: auto)"
    )
    parser.add_argument("--load", action="store_true", help="keep one core busy meanwhile")
    parser.add_argument("--out", type=Path, default=Path("bench.json"), help="JSON output")
    parser.add_argument("--networks", nargs="+", choices=NETWORKS, default=NETWORKS)
    parser.add_argument("--steps", type=int, default=None, help="training steps per repeat")
    parser.add_argument("--worker", nargs=2, metavar=("FRAMEWORK", "NETWORK"), help="internal")
    options = parser.parse_args()
    if options.worker:
        worker(*options.worker, options.steps, options.threads)
        return
    options.steps = options.steps or (20 if options.quick else 100)
    options.repeats = 3 if options.quick else 7
    options.infer_repeats = 2 if options.quick else 5
    frameworks = ["npnet", "torch"] if torch_version() else ["npnet"]
    load_before = os.getloadavg()
    with busy_core(options.load):
        results = {network: measure(network, frameworks, options) for network in options.networks}
    report = {
        "settings": {
            "threads": options.threads,
            "load": options.load,
            "settle_seconds": SETTLE,
            "epoch_repeat_networks": sorted(EPOCH_REPEAT),
            "npnet_sliced_networks": sorted(SLICED),
            "batch_size": BATCH,
            "steps": options.steps,
            "repeats": options.repeats,
            "infer_repeats": options.infer_repeats,
            "eval_batch_size": EVAL_BATCH,
            "steps_per_epoch": STEPS_PER_EPOCH,
            "dtype": "float32",
        },
        "machine": {
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch_version(),
            "blas": blas_info(),
            # OpenBLAS picks its kernels for the CPU unless this names them (read at load)
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        },
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "results": results,
    }
    options.out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"wrote {options.out}")


if __name__ == "__main__":
    main()
