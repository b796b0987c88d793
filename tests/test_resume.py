"""Long-run safety: interrupt and resume give the uninterrupted result; divergence stops
cleanly; a real SIGINT to a real training process is survived."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from tiny import TINY_MLP

from npnet.config import load_config
from npnet.engine import runs
from npnet.engine.callbacks import Callback
from npnet.engine.loop import fit, resume
from npnet.optim.schedule import Schedule
from npnet.registry import SCHEDULES

# Batch norm, dropout, Adam and a schedule: every piece of state a checkpoint must bring back.
TINY = (
    TINY_MLP.replace("    - relu\n", "    - batch_norm\n    - relu\n    - dropout: {rate: 0.2}\n")
    .replace("{name: sgd, lr: 0.1, momentum: 0.9}", "{name: adam, lr: 0.01}")
    .replace(
        "train: {epochs: 3,", "schedule: {name: step, step_size: 1, gamma: 0.5}\ntrain: {epochs: 4,"
    )
)


class InterruptAt(Callback):
    """Raises KeyboardInterrupt (what Ctrl-C does) at a given epoch and batch."""

    def __init__(self, epoch, batch):
        self.stop_at = (epoch, batch)
        self.epoch = 0

    def on_epoch_start(self, epoch, epochs, batches):
        self.epoch = epoch

    def on_batch_end(self, batch, loss, accuracy):
        if (self.epoch, batch) == self.stop_at:
            raise KeyboardInterrupt


def weights(run_dir):
    return runs.load_arrays(run_dir / "weights.npz")


def metrics_without_time(run_dir):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in runs.read_metrics(run_dir)]


@pytest.mark.parametrize("threads", [1, 2, "auto"])
def test_interrupted_then_resumed_equals_uninterrupted(write_config, tmp_path, threads):
    # With two threads, each slice's dropout masks and batch norm's running statistics (from
    # the sums over both slices) must come back on resume too.
    text = TINY.replace("batch_size: 32}", f"batch_size: 32, threads: {threads}}}")
    config = load_config(write_config(text))
    assert config.train.threads == threads
    straight, summary = fit(config, tmp_path / "a")
    assert summary["status"] == "completed"

    broken, summary = fit(config, tmp_path / "b", InterruptAt(epoch=3, batch=10))
    assert summary["status"] == "interrupted"
    assert summary["epochs_completed"] == 2
    assert f"npnet train --resume {broken}" in summary["message"]
    assert runs.read_summary(broken)["status"] == "interrupted"
    assert len(runs.read_metrics(broken)) == 2

    summary = resume(broken)
    assert summary["status"] == "completed"
    assert summary["epochs_completed"] == 4
    assert metrics_without_time(broken) == metrics_without_time(straight)
    a, b = weights(straight), weights(broken)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert (
        runs.read_summary(broken)["test_accuracy"] == runs.read_summary(straight)["test_accuracy"]
    )


@pytest.fixture
def exploding_schedule():
    """A schedule whose learning rate becomes absurd after the first epoch."""

    @SCHEDULES.register("explode_after_first_epoch")
    class Explode(Schedule):
        def lr_at(self, epoch):
            return self.base_lr if epoch == 0 else 1e30

    yield
    SCHEDULES._entries.pop("explode_after_first_epoch")


def test_divergence_stops_with_a_message_and_keeps_the_last_good_weights(
    write_config, tmp_path, exploding_schedule
):
    text = TINY.replace("{name: step, step_size: 1, gamma: 0.5}", "explode_after_first_epoch")
    config = load_config(write_config(text.replace("adam, lr: 0.01", "sgd, lr: 0.1")))
    run_dir, summary = fit(config, tmp_path)
    assert summary["status"] == "diverged"
    assert summary["epochs_completed"] == 1
    assert summary["message"].startswith("the loss became NaN or infinite at epoch 2, batch ")
    assert "lower learning rate" in summary["message"]
    assert summary["test_accuracy"] is None
    kept = weights(run_dir)
    assert all(np.all(np.isfinite(v)) for v in kept.values())
    one_epoch, _ = fit(
        load_config(
            write_config(TINY),
            ["train.epochs=1", "optimizer.name=sgd", "optimizer.lr=0.1", "schedule=constant"],
        ),
        tmp_path / "one",
    )
    for key, value in weights(one_epoch).items():
        np.testing.assert_array_equal(kept[key], value)


MNIST_SLOW = """\
name: sigint
data: {dataset: mnist, validation: 1000, normalize: standard, train_size: 20000}
model:
  layers: [flatten, {dense: {units: 128}}, batch_norm, relu, {dense: {units: 10}}]
optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
train: {epochs: 3, batch_size: 32}
"""


@pytest.mark.slow
@pytest.mark.parametrize("threads", [1, 2])
def test_sigint_to_a_real_training_process_then_resume(write_config, tmp_path, threads):
    # With two threads the interrupt can land while a slice waits for batch norm's sums.
    config_path = write_config(
        MNIST_SLOW.replace("batch_size: 32}", f"batch_size: 32, threads: {threads}}}")
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "npnet", "train"]
    process = subprocess.Popen(
        [*command, str(config_path), "--runs-dir", str(tmp_path / "runs")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 120
    while not list((tmp_path / "runs").glob("*/checkpoint.npz")):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no epoch finished in time"
        time.sleep(0.02)
    time.sleep(0.1)  # into the second epoch
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, out + err
    assert "Traceback" not in err
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert f"npnet train --resume {run_dir}" in out.replace("\n", "")
    for name in ("checkpoint.npz", "weights.npz"):
        assert runs.load_arrays(run_dir / name)
    assert runs.read_config(run_dir).name == "sigint"

    resumed = subprocess.run(
        [*command, "--resume", str(run_dir)], capture_output=True, text=True, env=env, timeout=300
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    # The uninterrupted run in a process of its own too: this one's BLAS thread count may have
    # been changed by earlier tests, and OpenBLAS's bits depend on it.
    straight_runs = tmp_path / "straight"
    subprocess.run(
        [*command, str(config_path), "--runs-dir", str(straight_runs)],
        capture_output=True,
        env=env,
        timeout=300,
        check=True,
    )
    (straight,) = straight_runs.iterdir()
    assert metrics_without_time(run_dir) == metrics_without_time(straight)
    a, b = weights(straight), weights(run_dir)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
