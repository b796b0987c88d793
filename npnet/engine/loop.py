"""Training: the loop that turns a config into a run directory.

Each step is the textbook one: forward, loss, backward, (L2, clipping), optimizer step.

    out = net.forward(x, training=True)
    L = loss.forward(out, y)
    net.backward(loss.backward())
    grads["i.W"] += λ W                     # the gradient of 0.5·λ·Σ W²
    optimizer.step(params, grads)

One seed drives three independent random streams (weights, shuffling, dropout), so the same
config and seed give the same run, bit for bit, on the same machine.
"""

from __future__ import annotations

import platform
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

import npnet
from npnet.config import Config
from npnet.data import Dataset
from npnet.engine import checkpoint, early_stopping, runs
from npnet.engine.callbacks import Callback
from npnet.engine.experiment import Experiment, build_experiment, random_streams
from npnet.engine.inputs import describe_inputs
from npnet.engine.metrics import evaluate, predicted_classes
from npnet.engine.state import TrainingState
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
    # Gather once per epoch: contiguous batches are then free slices.
    x_all, y_all = data.x_train[order], data.y_train[order]
    batch_size = config.train.batch_size
    classify = data.num_classes is not None
    params = net.parameters()
    total_loss, total_correct = 0.0, 0
    norm_sums = dict.fromkeys(params, 0.0) if config.train.log_grad_norms else None
    for batch, start in enumerate(range(0, n, batch_size)):
        x, y = x_all[start : start + batch_size], y_all[start : start + batch_size]
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
    runs.write_config(run_dir, config)
    state = TrainingState(epoch=0, rows=[], shuffle_rng=shuffle_rng, noise_rng=noise_rng)
    return run_dir, run_epochs(exp, run_dir, state, callback or Callback())


def resume(run_dir: Path, callback: Callback | None = None) -> dict[str, Any]:
    """Continue an interrupted run in its own directory from its last completed epoch.

    Everything comes from the run directory: the config, and the checkpoint's weights,
    optimizer and schedule state and random streams, so the result is the one an
    uninterrupted run would have given.
    """
    config = runs.read_config(run_dir)
    exp = build_experiment(config)
    state = checkpoint.load(run_dir, exp)
    return run_epochs(exp, run_dir, state, callback or Callback())


def run_epochs(
    exp: Experiment, run_dir: Path, state: TrainingState, callback: Callback
) -> dict[str, Any]:
    """Train from `state.epoch + 1` to the configured number of epochs, then evaluate on the
    test split and write summary.json. Any error on the way still leaves a summary, with
    status `failed` and the error, before it propagates."""
    config, data, train = exp.config, exp.dataset, exp.config.train
    exp.net.set_noise_rng(state.noise_rng)
    callback.on_train_start(run_dir, exp.net, exp.dataset, list(state.rows))
    session_start = time.perf_counter()
    test = {"loss": None, "accuracy": None}
    try:
        with interrupts_as_keyboard_interrupt():
            try:
                status, message = epoch_loop(exp, run_dir, state, callback)
            except KeyboardInterrupt:
                # Checkpoints are written atomically after each epoch, so whenever the
                # interrupt lands, the last completed epoch is on disk.
                status = "interrupted"
                message = (
                    f"interrupted after epoch {state.epoch}, which is saved. "
                    f"Resume with: npnet train --resume {run_dir}"
                )
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
    except Exception as error:
        state.seconds += time.perf_counter() - session_start
        message = f"{type(error).__name__}: {error}"
        runs.write_summary(run_dir, summarize(config, run_dir, exp, state, "failed", message, test))
        raise
    state.seconds += time.perf_counter() - session_start
    summary = summarize(config, run_dir, exp, state, status, message, test)
    runs.write_summary(run_dir, summary)
    callback.on_train_end(summary)
    return summary


def epoch_loop(
    exp: Experiment, run_dir: Path, state: TrainingState, callback: Callback
) -> tuple[str, str | None]:
    """The epochs: train, validate, step the schedule, checkpoint. Returns the status
    (`completed` or `diverged`) and a message for the user, if any."""
    data, train = exp.dataset, exp.config.train
    classify = data.num_classes is not None
    batches = -(-len(data.x_train) // train.batch_size)
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
                f"{lr:g}) or gradient clipping (train.clip_grad_norm); the weights of the "
                f"last good epoch are kept"
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
        state.rows.append(row)
        state.epoch = epoch
        exp.optimizer.lr = exp.schedule.step(val["loss"])
        stop = early_stopping.update(state, exp, row) if train.early_stopping else False
        # The checkpoint and the delivered weights are written together, after the epoch.
        checkpoint.save(run_dir, exp, state)
        runs.write_metrics(run_dir, state.rows)
        if train.log_grad_norms:
            runs.write_grad_norms(run_dir, state.rows)
        runs.save_arrays(run_dir / runs.WEIGHTS_FILE, delivered_weights(exp, state))
        callback.on_epoch_end(row)
        if stop:
            return "completed", early_stopping.message(state, train.early_stopping)
    return "completed", None


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
