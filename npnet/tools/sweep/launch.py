"""The worker processes of one `npnet sweep`, each with its share of the cores.

With C cores and N workers, each worker gets c = max(1, C // N) cores: its trials'
`train.threads` is capped at c and its BLAS gets c // train.threads threads, so the worker
never runs more than c threads and N workers never more than C. BLAS is held through the
environment (OMP/OpenBLAS/MKL *_NUM_THREADS, read when NumPy loads) and threadpoolctl.
Workers run in their own session, so a terminal's Ctrl-C reaches only `npnet sweep`, which
passes it on to each worker exactly once (one SIGINT: finish the epoch, save, stop).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from npnet.tools.sweep.sweep_dir import WORKERS_DIR

BLAS_VARIABLES = ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"]


def cores() -> int:
    return len(os.sched_getaffinity(0))


def thread_budget(workers: int, train_threads: int | str) -> tuple[int, int]:
    """(the cap on train.threads, BLAS threads) of each of `workers` workers; under `auto`
    every slice runs on one BLAS thread."""
    per_worker = max(1, cores() // workers)
    if train_threads == "auto":
        return per_worker, 1
    threads = min(train_threads, per_worker)
    return per_worker, max(1, per_worker // threads)


@dataclass
class Worker:
    index: int
    process: subprocess.Popen
    log: Path

    def last_line(self) -> str:
        lines = self.log.read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else ""


class Workers:
    """Start, watch and interrupt the worker processes."""

    def __init__(self, sweep_dir: Path, count: int, train_threads: int | str):
        self.sweep_dir, self.count = sweep_dir, count
        self.threads, self.blas = thread_budget(count, train_threads)
        self.running: list[Worker] = []

    def start(self) -> None:
        logs = self.sweep_dir / WORKERS_DIR
        logs.mkdir(exist_ok=True)
        env = {**os.environ, **dict.fromkeys(BLAS_VARIABLES, str(self.blas))}
        for index in range(self.count):
            log = logs / f"worker-{os.getpid()}-{index}.log"
            command = [
                sys.executable,
                "-m",
                "npnet.tools.sweep.worker",
                str(self.sweep_dir),
                f"--index={index}",
                f"--threads={self.threads}",
                f"--blas={self.blas}",
            ]
            with log.open("w") as output:
                process = subprocess.Popen(
                    command,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self.running.append(Worker(index, process, log))

    def exited(self) -> list[tuple[Worker, int]]:
        """The workers that ended since the last call, with their exit codes."""
        ended = [(w, w.process.poll()) for w in self.running if w.process.poll() is not None]
        self.running = [w for w in self.running if w.process.poll() is None]
        return ended

    def interrupt(self) -> None:
        for worker in self.running:
            worker.process.send_signal(signal.SIGINT)

    def wait(self) -> list[tuple[Worker, int]]:
        ended = [(w, w.process.wait()) for w in self.running]
        self.running = []
        return ended
