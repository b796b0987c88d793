"""Training: the loop that turns a config into a run directory.

Each step is the textbook one: forward, loss, backward, (L2, clipping), optimizer step.

    out = net.forward(x, training=True)
    L = loss.forward(out, y)
    net.backward(loss.backward())
    grads["i.W"] += λ W                     # the gradient of 0.5·λ·Σ W²
    optimizer.step(params, grads)

One seed drives three independent random streams (weights, data: shuffling and augmentation,
dropout), so the same config and seed give the same run, bit for bit, on the same machine.
"""

from __future__ import annotations

import contextlib
import platform
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

import npnet
from npnet.config import Config
from npnet.data import Dataset
from npnet.engine import checkpoint, early_stopping, runs
from npnet.engine.callbacks import Callback, StopTraining
from npnet.engine.checkpoint import checkpoint_file
from npnet.engine.experiment import Experiment, build_experiment, random_streams
from npnet.engine.inputs import describe_inputs
from npnet.engine.interrupts import diverged_kept, interrupted_message, interrupts_deferred
from npnet.engine.metrics import evaluate, predicted_classes
from npnet.engine.state import TrainingState
from npnet.errors import NpnetError, RunError
from npnet.functional.regularization import l2_penalty_gradient
from npnet.nn.network import is_weight
from npnet.nn.parallel import threads_record
from npnet.optim.clip import clip_grad_norm


def add_l2_gradient(params: dict[str, np.ndarray], grads: dict[str, np.ndarray], l2: float) -> None:
    """grad += λ W (`functional.l2_penalty_gradient`) for every weight matrix/kernel; biases
    and batch-norm scales are not penalized, as is usual."""
    for key, param in params.items():
        if is_weight(key):
            # λ in the parameter's dtype: float32 stays float32
            grads[key] += l2_penalty_gradient(param, param.dtype.type(l2))


class Diverged(Exception):
    """The loss became NaN or infinite; training cannot go on from these weights."""


def train_epoch(exp: Experiment, shuffle_rng: np.random.Generator, callback: Callback) -> dict:
    """One pass over the training split; returns the mean training loss and accuracy, and
    with `train.log_grad_norms` each parameter's mean gradient L2 norm (of the data loss,
    before L2 and clipping: what back-propagation delivers to that layer)."""
    config, data, net = exp.config, exp.dataset, exp.net
    n = len(data.x_train)
    order = shuffle_rng.permutation(n) if config.train.shuffle else np.arange(n)
    batch_size = config.train.batch_size
    classify = data.num_classes is not None
    params = net.parameters()
    total_loss, total_correct = 0.0, 0
    norm_sums = dict.fromkeys(params, 0.0) if config.train.log_grad_norms else None
    for batch, start in enumerate(range(0, n, batch_size)):
        # Gathered batch by batch, not as one shuffled copy of the split per epoch: a fresh
        # copy that size (188 MB for MNIST) is first-touched memory every epoch, which
        # NumPy asks the kernel to back with huge pages, and where those must be compacted
        # the copy stalls for 1-2 s (docs/performance.md). The same batches, the same numbers.
        index = order[start : start + batch_size]
        x, y = data.x_train[index], data.y_train[index]
        if exp.augment is not None:  # a fresh warp of every batch, from the data stream
            x = exp.augment(x, shuffle_rng)
        # A diverging step overflows; the check below reports that as one clear message,
        # so NumPy's overflow warnings would only be noise.
        with np.errstate(over="ignore", invalid="ignore"):
            out = net.forward(x, training=True)
            loss = exp.loss.forward(out, y)
        if not np.isfinite(loss):
            raise Diverged(batch)
        net.backward(exp.loss.backward())
        grads = net.gradients()
        if norm_sums is not None:
            for key, grad in grads.items():
                norm_sums[key] += float(np.linalg.norm(grad))
        if config.regularization.l2:
            add_l2_gradient(params, grads, config.regularization.l2)
        if config.train.clip_grad_norm is not None:
            clip_grad_norm(grads, config.train.clip_grad_norm)
        exp.optimizer.step(params, grads)
        total_loss += loss * len(x)
        correct = None
        if classify:
            correct = int(np.sum(predicted_classes(out) == y))
            total_correct += correct
        callback.on_batch_end(batch, loss, None if correct is None else correct / len(x))
    summary = {
        "train_loss": total_loss / n,
        "train_accuracy": total_correct / n if classify else None,
    }
    if norm_sums is not None:
        summary["grad_norms"] = {key: total / (batch + 1) for key, total in norm_sums.items()}
    return summary


def fit(
    config: Config,
    runs_dir: Path,
    callback: Callback | None = None,
    dataset: Dataset | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Train `config` into a new run directory under `runs_dir`; return it and the summary."""
    exp = build_experiment(config, dataset)
    _, shuffle_rng, noise_rng = random_streams(config.seed)
    exp.optimizer.lr = exp.schedule.begin(exp.optimizer.lr)
    run_dir = runs.create_run_dir(runs_dir, config.name)
    try:
        runs.write_config(run_dir, config)
        state = TrainingState(epoch=0, rows=[], shuffle_rng=shuffle_rng, noise_rng=noise_rng)
    except BaseException:
        # A run directory without its config (a full disk, Ctrl-C) is of no use to anyone.
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return run_dir, run_epochs(exp, run_dir, state, callback or Callback())


def resume(run_dir: Path, callback: Callback | None = None) -> dict[str, Any]:
    """Continue an interrupted run in its own directory from its last completed epoch.

    Everything comes from the run directory: the config, and the checkpoint's weights,
    optimizer and schedule state and random streams, so the result is the one an
    uninterrupted run would have given. A completed run is refused: resuming it would change
    it. The files of the last epoch are written again from the checkpoint, the commit point
    (a kill between the files of one epoch can leave weights or metrics an epoch ahead), and
    temporaries a killed write left behind are removed.
    """
    run_dir = runs.run_directory(Path(run_dir), "give the run's directory, e.g. runs/latest-run")
    refuse_completed(run_dir)
    config = runs.read_config(run_dir)
    exp = build_experiment(config)
    state = checkpoint.load(run_dir, exp)
    runs.remove_stale_files(run_dir, [*runs.RUN_FILES, checkpoint.CHECKPOINT_FILE])
    runs.write_files(epoch_files(run_dir, exp, state))
    return run_epochs(exp, run_dir, state, callback or Callback())


def refuse_completed(run_dir: Path) -> None:
    """RunError for a run whose summary says it completed (an unreadable summary does not
    block a resume: the checkpoint decides where the run stands)."""
    try:
        summary = runs.read_summary(run_dir)
    except RunError:
        return
    if summary.get("status") == "completed":
        raise RunError(
            f"{run_dir}: the run completed ({summary.get('epochs_completed')} of "
            f"{summary.get('epochs')} epochs); there is nothing to resume. To train longer, "
            f"train its config again: npnet train {run_dir / runs.CONFIG_FILE} "
            f"--set train.epochs=N"
        )


def run_epochs(
    exp: Experiment, run_dir: Path, state: TrainingState, callback: Callback
) -> dict[str, Any]:
    """Train from `state.epoch + 1` to the configured number of epochs, then evaluate on the
    test split and write summary.json. Any error on the way still leaves a summary, with
    status `failed` and the error, before it propagates."""
    config, data, train = exp.config, exp.dataset, exp.config.train
    session_start, seconds_before = time.perf_counter(), state.seconds

    def clock() -> float:
        """Seconds trained, over every session of this run."""
        return seconds_before + time.perf_counter() - session_start

    test = {"loss": None, "accuracy": None}
    try:
        try:
            with interrupts_as_keyboard_interrupt():
                exp.net.set_noise_rng(state.noise_rng)
                callback.on_train_start(run_dir, exp.net, exp.dataset, list(state.rows))
                status, message = epoch_loop(exp, run_dir, state, callback, clock)
                if state.rows and status == "completed":
                    if state.best is not None:
                        exp.net.load_state(state.best.state)
                    test = evaluate(
                        exp.net,
                        exp.loss,
                        data.x_test,
                        data.y_test,
                        train.eval_batch_size,
                        data.num_classes is not None,
                    )
        except KeyboardInterrupt:
            # Wherever it lands, the files on disk are those of the last committed epoch.
            status, message = "interrupted", interrupted_message(run_dir, train.epochs)
            test = {"loss": None, "accuracy": None}
    except Exception as error:
        message = str(error)
        if not isinstance(error, NpnetError):
            message = f"{type(error).__name__}: {message}"
        # The disk that failed the run may fail the summary too; the error says why.
        with contextlib.suppress(RunError), interrupts_deferred():
            state.seconds = clock()
            runs.write_summary(
                run_dir, summarize(config, run_dir, exp, state, "failed", message, test)
            )
        raise
    # A Ctrl-C now, with everything trained and saved, no longer changes the outcome: it is
    # held until the summary is written, then dropped.
    with contextlib.suppress(KeyboardInterrupt), interrupts_deferred():
        state.seconds = clock()
        summary = summarize(config, run_dir, exp, state, status, message, test)
        runs.write_summary(run_dir, summary)
    with contextlib.suppress(KeyboardInterrupt):
        callback.on_train_end(summary)
    return summary


def epoch_loop(
    exp: Experiment,
    run_dir: Path,
    state: TrainingState,
    callback: Callback,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[str, str | None]:
    """The epochs: train, validate, step the schedule, checkpoint. Returns the status
    (`completed`, `diverged`, or a callback's StopTraining status such as `pruned`) and a
    message for the user, if any."""
    data, train = exp.dataset, exp.config.train
    classify = data.num_classes is not None
    batches = -(-len(data.x_train) // train.batch_size)
    if train.early_stopping and early_stopping.stopped(state, train.early_stopping):
        # Resumed after early stopping had ended it (an interrupt during the test evaluation).
        return "completed", early_stopping.message(state, train.early_stopping)
    for epoch in range(state.epoch + 1, train.epochs + 1):
        callback.on_epoch_start(epoch, train.epochs, batches)
        epoch_start = time.perf_counter()
        lr = exp.optimizer.lr
        try:
            row = train_epoch(exp, state.shuffle_rng, callback)
        except Diverged as diverged:
            return "diverged", (
                f"the loss became NaN or infinite at epoch {epoch}, batch "
                f"{diverged.args[0] + 1}; try a lower learning rate (optimizer.lr, now "
                f"{lr:g}) or gradient clipping (train.clip_grad_norm); "
                f"{diverged_kept(run_dir)}"
            )
        val = evaluate(exp.net, exp.loss, data.x_val, data.y_val, train.eval_batch_size, classify)
        row = {
            "epoch": epoch,
            **row,
            "val_loss": val["loss"],
            "val_accuracy": val["accuracy"],
            "lr": lr,
            "seconds": round(time.perf_counter() - epoch_start, 3),
        }
        stop = commit_epoch(exp, run_dir, state, row, val["loss"], clock)
        try:
            callback.on_epoch_end(row)
        except StopTraining as stopped:  # after the epoch is committed: nothing is lost
            return stopped.status, stopped.message
        if stop:
            return "completed", early_stopping.message(state, train.early_stopping)
    return "completed", None


def commit_epoch(
    exp: Experiment,
    run_dir: Path,
    state: TrainingState,
    row: dict[str, Any],
    val_loss: float | None,
    clock: Callable[[], float],
) -> bool:
    """Add the epoch to the state and write its files, as one step: Ctrl-C and SIGTERM wait
    until the files are written, and a failed write (a full disk) undoes the step, so the
    state, the files and the summary written next always agree. Returns whether early
    stopping ends the training here.

    Every file is written to a temporary first (where a full disk fails, changing nothing),
    then all are renamed, the checkpoint last: it is the commit point. A kill (SIGKILL,
    power) between the renames can leave weights or metrics one epoch ahead of it; `resume`
    rewrites them from the checkpoint."""
    train = exp.config.train
    before = (state.epoch, state.best, state.seconds, exp.optimizer.lr)
    with interrupts_deferred():
        try:
            state.rows.append(row)
            state.epoch = row["epoch"]
            exp.optimizer.lr = exp.schedule.step(val_loss)
            stop = early_stopping.update(state, exp, row) if train.early_stopping else False
            state.seconds = clock()
            files = [*epoch_files(run_dir, exp, state), checkpoint_file(run_dir, exp, state)]
            runs.write_files(files)
        except BaseException:
            state.rows.pop()
            state.epoch, state.best, state.seconds, exp.optimizer.lr = before
            raise
    return stop


def epoch_files(run_dir: Path, exp: Experiment, state: TrainingState) -> list:
    """metrics.csv, grad_norms.csv and weights.npz for the state's last epoch, as
    (path, writer) pairs."""
    if not state.rows:
        return []
    files = [runs.metrics_file(run_dir, state.rows)]
    if exp.config.train.log_grad_norms:
        files.append(runs.grad_norms_file(run_dir, state.rows))
    files.append(runs.arrays_file(run_dir / runs.WEIGHTS_FILE, delivered_weights(exp, state)))
    return files


def delivered_weights(exp: Experiment, state: TrainingState) -> dict[str, np.ndarray]:
    """What weights.npz holds: the best epoch's weights under early stopping, else the latest."""
    return state.best.state if state.best is not None else exp.net.state()


@contextmanager
def interrupts_as_keyboard_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C while training, so both stop at a safe point."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, interrupt) if in_main_thread else None
    try:
        yield
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def summarize(
    config: Config,
    run_dir: Path,
    exp: Experiment,
    state: TrainingState,
    status: str,
    message: str | None,
    test: dict[str, Any],
) -> dict[str, Any]:
    rows = state.rows
    val_accuracies = [r["val_accuracy"] for r in rows if r["val_accuracy"] is not None]
    return {
        "name": config.name,
        "run_dir": str(run_dir),
        "status": status,
        "message": message,
        "epochs_completed": len(rows),
        "epochs": config.train.epochs,
        "best_epoch": state.best.epoch if state.best is not None else None,
        "test_loss": test["loss"],
        "test_accuracy": test["accuracy"],
        "final_val_loss": rows[-1]["val_loss"] if rows else None,
        "final_val_accuracy": rows[-1]["val_accuracy"] if rows else None,
        "best_val_accuracy": max(val_accuracies) if val_accuracies else None,
        "train_examples": len(exp.dataset.x_train),
        "num_params": exp.net.num_params(),
        "duration_seconds": round(state.seconds, 3),
        "seconds_per_epoch": round(sum(r["seconds"] for r in rows) / len(rows), 3)
        if rows
        else None,
        "threads": threads_record(exp.net),
        "seed": config.seed,
        "inputs": describe_inputs(exp.dataset).to_dict(),
        "npnet_version": npnet.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
    }
