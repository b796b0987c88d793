"""A sweep worker: one process that claims trials and trains them until the study is done.

    python -m npnet.tools.sweep.worker SWEEP_DIR --index K --threads T

`npnet sweep` starts one per `--workers`, with its BLAS held to the thread budget in the
environment (set before NumPy loads) and `train.threads` capped at it. Each trial is an
ordinary run directory under SWEEP_DIR/trials/, trained by the engine's `fit`; the pruning
callback reports the metric to Optuna after every epoch and stops the run (status `pruned`)
when the pruner says so.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import Trial
from threadpoolctl import threadpool_limits

from npnet.config import Config, to_dict
from npnet.data import Dataset
from npnet.engine import runs
from npnet.engine.callbacks import Callback, StopTraining
from npnet.engine.experiment import build_dataset
from npnet.engine.loop import fit
from npnet.errors import NpnetError, RunError
from npnet.nn.network import Network
from npnet.tools.sweep.spec import Sweep, build_pruner, build_sampler, trial_config
from npnet.tools.sweep.storage import ERROR_ATTR, StudyLock, open_storage, tally
from npnet.tools.sweep.sweep_dir import TRIALS_DIR, read_sweep, storage_url

WAIT_SECONDS = 1.0


class Pruning(Callback):
    """Reports `metric` after each epoch (step = epoch) and stops a trial the pruner prunes."""

    def __init__(self, trial: Trial, metric: str, sweep_dir: Path):
        self.trial, self.metric, self.sweep_dir = trial, metric, sweep_dir
        self.rows: list[dict[str, Any]] = []

    def on_train_start(
        self, run_dir: Path, net: Network, dataset: Dataset, rows: list[dict[str, Any]]
    ) -> None:
        self.trial.set_user_attr("run_dir", str(run_dir.relative_to(self.sweep_dir)))

    def on_epoch_end(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        value = row[self.metric]
        if value is None:
            raise RunError(f"trial {self.trial.number}: the run reports no {self.metric}")
        self.trial.report(value, row["epoch"])
        if self.trial.should_prune():
            raise StopTraining(
                "pruned",
                f"pruned by the sweep after epoch {row['epoch']}: {self.metric} {value:.4g}",
            )


class Objective:
    """Optuna's objective: one trial's config, trained into its run directory."""

    def __init__(self, sweep: Sweep, sweep_dir: Path, lock: StudyLock, threads: int, blas: int):
        self.sweep, self.sweep_dir, self.lock = sweep, sweep_dir, lock
        self.threads, self.blas = threads, blas
        self.datasets: dict[str, Dataset] = {}  # a worker loads each split of data once

    def __call__(self, trial: Trial) -> float:
        self.lock.release()  # the trial exists now, so the count it guarded is settled
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        # OpenBLAS sums in an order that depends on its thread count, so the last digits of a
        # trial's numbers do too: retraining it exactly takes the same BLAS threads.
        trial.set_user_attr("blas_threads", self.blas)
        params = {key: suggest(trial, key, spec) for key, spec in self.sweep.parameters.items()}
        callback = Pruning(trial, self.sweep.metric, self.sweep_dir)
        try:
            config = trial_config(
                self.sweep, params, f"{self.sweep.name}-trial{trial.number:03d}", self.threads
            )
            trial.set_user_attr("config", to_dict(config))
            run_dir, summary = fit(
                config, self.sweep_dir / TRIALS_DIR, callback, self.dataset(config)
            )
        except Exception as error:  # an error of the trial's own, not an interruption
            trial.set_user_attr(ERROR_ATTR, f"{type(error).__name__}: {error}")
            raise
        summary["sweep"] = {
            "sweep_dir": str(self.sweep_dir),
            "study": self.sweep.study,
            "trial": trial.number,
            "params": params,
        }
        runs.write_summary(run_dir, summary)
        trial.set_user_attr("status", summary["status"])
        if summary["status"] == "interrupted":
            raise KeyboardInterrupt
        if summary["status"] in ("pruned", "diverged"):
            # A diverged trial stopped early too: as a pruned trial, the sampler still learns
            # from the epochs it reported that this region is bad.
            raise optuna.TrialPruned(summary["message"])
        rows = callback.rows
        delivered = rows[summary["best_epoch"] - 1] if summary["best_epoch"] else rows[-1]
        return delivered[self.sweep.metric]

    def dataset(self, config: Config) -> Dataset:
        key = repr((config.data, config.seed))
        if key not in self.datasets:
            self.datasets[key] = build_dataset(config)
        return self.datasets[key]


def suggest(trial: Trial, key: str, spec: dict[str, Any]) -> Any:
    ((kind, args),) = spec.items()
    if kind == "choice":
        return trial.suggest_categorical(key, args)
    if kind == "int":
        return trial.suggest_int(key, *args)
    return trial.suggest_float(key, *args, log=kind == "loguniform")


def worker_seed(sweep: Sweep, index: int) -> int:
    """The sweep's seed for worker 0, so one worker's sweep is reproducible; other workers mix
    in their host and process, so parallel workers never sample the same points. The grid
    sampler is the exception: it shuffles the grid with its seed and gives trial n the n-th
    point, so every worker must shuffle alike or two trials would get the same point."""
    if index == 0 or sweep.sampler["name"] == "grid":
        return sweep.seed
    entropy = [sweep.seed, index, os.getpid(), *socket.gethostname().encode()]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def run_worker(sweep_dir: Path, index: int, threads: int, blas: int) -> None:
    """Claim and train trials until the study has its total of done trials."""
    sweep = read_sweep(sweep_dir)
    storage = open_storage(storage_url(sweep, sweep_dir), sweep.heartbeat_seconds)
    study = optuna.load_study(
        study_name=sweep.study,
        storage=storage,
        sampler=build_sampler(sweep, worker_seed(sweep, index)),
        pruner=build_pruner(sweep),
    )
    lock = StudyLock(storage_url(sweep, sweep_dir), sweep.study)
    objective = Objective(sweep, sweep_dir, lock, threads, blas)
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        lock.acquire()
        try:
            counts = tally(study.get_trials(deepcopy=False))
            if counts.done >= sweep.trials:
                return
            if counts.claimed < sweep.trials:
                study.optimize(objective, n_trials=1)
                continue
        finally:
            lock.release()
        # Every remaining trial is running elsewhere: wait until they end, or until one's
        # worker dies and its trial goes stale, leaving a place to take.
        time.sleep(WAIT_SECONDS)


def exit_with_parent() -> None:
    """End this worker like Ctrl-C ends a training (at a safe point) if `npnet sweep`, its
    parent, dies: an orphan would go on claiming trials nobody watches."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description="one npnet sweep worker")
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="cap on train.threads")
    parser.add_argument("--blas", type=int, default=1, help="BLAS threads")
    args = parser.parse_args()
    # The environment already held BLAS before NumPy loaded; this holds any pool it missed.
    threadpool_limits(args.blas, user_api="blas")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    exit_with_parent()
    try:
        run_worker(args.sweep_dir, args.index, args.threads, args.blas)
    except KeyboardInterrupt:
        sys.exit(130)
    except NpnetError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
