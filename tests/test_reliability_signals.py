"""Issue 12, lifecycle and signals: real SIGINT/SIGTERM sent to this process at chosen points
(start-up, inside the end-of-epoch writes, the final test evaluation) and at random times
(a Hypothesis property), and what the run directory must then say and hold.

The invariants, after any interrupt:
- summary.json exists and tells the truth: status `interrupted`, `epochs_completed` the
  epoch the checkpoint holds, a message that promises a resume only when there is one;
- checkpoint, weights.npz and metrics.csv agree (same epoch, same arrays), and no temporary
  is left;
- `--resume` ends bit-identical to an uninterrupted run.
"""

import json
import os
import signal
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny import TINY_MLP
from typer.testing import CliRunner

from npnet.cli import app
from npnet.config import load_config
from npnet.engine import checkpoint, experiment, loop, runs
from npnet.engine.callbacks import Callback
from npnet.engine.loop import fit, resume
from npnet.errors import RunError

# Batch norm, dropout, Adam and a schedule: all the state a checkpoint must bring back.
TINY = (
    TINY_MLP.replace("    - relu\n", "    - batch_norm\n    - relu\n    - dropout: {rate: 0.2}\n")
    .replace("{name: sgd, lr: 0.1, momentum: 0.9}", "{name: adam, lr: 0.01}")
    .replace("train: {", "schedule: {name: step, step_size: 1, gamma: 0.5}\ntrain: {")
)


def send(signum=signal.SIGINT):
    os.kill(os.getpid(), signum)


def arrays_equal(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def metrics_without_time(run_dir):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in runs.read_metrics(run_dir)]


def check_interrupted(run_dir, epochs):
    """The invariants of an interrupted run directory; returns the epoch it holds."""
    summary = runs.read_summary(run_dir)
    assert summary["status"] == "interrupted", summary
    saved = checkpoint.saved_epoch(run_dir)
    completed = summary["epochs_completed"]
    assert completed == (saved or 0)
    assert not list(run_dir.glob(".*.tmp"))
    if saved is None:
        assert "nothing to resume" in summary["message"]
        assert not (run_dir / runs.WEIGHTS_FILE).exists()
        assert not (run_dir / runs.METRICS_FILE).exists()
        with pytest.raises(RunError, match=r"no checkpoint\.npz"):
            resume(run_dir)
        return 0
    assert f"npnet train --resume {run_dir}" in summary["message"]
    if saved < epochs:
        assert f"interrupted after epoch {saved}, which is saved" in summary["message"]
    else:
        assert "during the final test evaluation" in summary["message"]
    stored = runs.load_arrays(run_dir / checkpoint.CHECKPOINT_FILE)
    net = {k[len("net/") :]: v for k, v in stored.items() if k.startswith("net/")}
    arrays_equal(net, runs.load_arrays(run_dir / runs.WEIGHTS_FILE))
    rows = json.loads(str(stored["meta"]))["rows"]
    metrics = runs.read_metrics(run_dir)
    assert [r["epoch"] for r in metrics] == list(range(1, saved + 1))
    for row, stored_row in zip(metrics, rows, strict=True):
        assert row["train_loss"] == pytest.approx(stored_row["train_loss"], rel=1e-12)
    return saved


def check_same_as(run_dir, reference):
    assert runs.read_summary(run_dir)["status"] == "completed"
    weights = [runs.load_arrays(d / runs.WEIGHTS_FILE) for d in (reference, run_dir)]
    arrays_equal(*weights)
    assert metrics_without_time(run_dir) == metrics_without_time(reference)
    assert runs.read_summary(run_dir)["test_loss"] == runs.read_summary(reference)["test_loss"]


@pytest.fixture
def config(write_config):
    return load_config(write_config(TINY))


@pytest.fixture
def reference(config, tmp_path):
    run_dir, summary = fit(config, tmp_path / "reference")
    assert summary["status"] == "completed"
    return run_dir


# --- interrupts at chosen points ------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("epoch", [1, 2])
def test_a_signal_inside_the_epoch_writes_waits_for_them(
    config, reference, tmp_path, monkeypatch, signum, epoch
):
    real, commits = runs.write_files, []

    def write_files(files):
        if any(path.name == checkpoint.CHECKPOINT_FILE for path, _ in files):
            commits.append(files)
            if len(commits) == epoch:
                send(signum)  # handled at once, in the middle of the epoch's files
        real(files)

    monkeypatch.setattr(runs, "write_files", write_files)
    run_dir, summary = fit(config, tmp_path / "runs")
    assert summary["epochs_completed"] == epoch
    assert check_interrupted(run_dir, 3) == epoch
    monkeypatch.setattr(runs, "write_files", real)
    resume(run_dir)
    check_same_as(run_dir, reference)


def test_ctrl_c_during_the_final_test_evaluation(config, reference, tmp_path, monkeypatch):
    real = loop.evaluate

    def evaluate(net, loss, x, y, *args):
        if x is net_data["x_test"]:
            send()
        return real(net, loss, x, y, *args)

    net_data = {}

    class Remember(Callback):
        def on_train_start(self, run_dir, net, dataset):
            net_data["x_test"] = dataset.x_test

    monkeypatch.setattr(loop, "evaluate", evaluate)
    run_dir, summary = fit(config, tmp_path / "runs", Remember())
    assert summary["status"] == "interrupted" and summary["test_loss"] is None
    assert check_interrupted(run_dir, 3) == 3
    monkeypatch.setattr(loop, "evaluate", real)
    after = resume(run_dir)  # trains nothing more: it evaluates and completes
    assert after["epochs_completed"] == 3
    check_same_as(run_dir, reference)


def test_ctrl_c_at_start_up_leaves_a_truthful_summary(config, tmp_path):
    class CtrlCAtStart(Callback):
        def on_train_start(self, run_dir, net, dataset):
            send()
            time.sleep(1)  # the signal is handled at the next bytecode; never this long

    run_dir, summary = fit(config, tmp_path / "runs", CtrlCAtStart())
    assert summary["epochs_completed"] == 0
    assert "Resume with" not in summary["message"]
    assert check_interrupted(run_dir, 3) == 0


def test_ctrl_c_while_building_is_one_line_and_no_run(write_config, tmp_path, monkeypatch):
    real = experiment.build_network

    def build_network(*args, **kwargs):
        send()
        time.sleep(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(experiment, "build_network", build_network)
    args = ["train", str(write_config(TINY)), "--runs-dir", str(tmp_path / "runs")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 130, result.output
    assert "interrupted" in result.stderr and "no run was saved" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_divergence_after_a_good_epoch_names_what_is_kept(write_config, tmp_path):
    class Explode(Callback):
        def __init__(self):
            self.net = None

        def on_train_start(self, run_dir, net, dataset):
            self.net = net

        def on_epoch_end(self, row):
            for param in self.net.parameters().values():  # the next step overflows
                param *= 1e30

    run_dir, summary = fit(load_config(write_config(TINY_MLP)), tmp_path / "runs", Explode())
    assert summary["status"] == "diverged" and summary["epochs_completed"] == 1
    assert "the files saved after epoch 1, the last good one, are kept" in summary["message"]
    assert checkpoint.saved_epoch(run_dir) == 1
    kept = runs.load_arrays(run_dir / runs.WEIGHTS_FILE)
    assert all(np.isfinite(v).all() for v in kept.values())


# --- interrupts at random times: the property -----------------------------------------------

REFERENCES: dict[int, tuple[Path, float]] = {}
WORK = Path(tempfile.mkdtemp(prefix="npnet-interrupts-"))


class Stopwatch(Callback):
    """Times the training itself (from the model table to the summary); with a `signum`,
    sends it `delay` seconds after the training started, from another thread."""

    def __init__(self, signum=None, delay=0.0):
        self.timer = threading.Timer(delay, send, (signum,)) if signum else None
        self.start = self.seconds = None

    def on_train_start(self, run_dir, net, dataset):
        self.start = time.perf_counter()
        if self.timer:
            self.timer.start()

    def on_train_end(self, summary):
        self.seconds = time.perf_counter() - self.start


def reference_run(seed):
    """The uninterrupted run for `seed` and how long its training took (once per seed)."""
    if seed not in REFERENCES:
        config = seeded_config(seed)
        run_dir, _ = fit(config, WORK / f"reference-{seed}")
        # Timed the second time (the first pays for imports and caches), which must also be
        # the same run, bit for bit.
        watch = Stopwatch()
        again, _ = fit(config, WORK / f"reference-{seed}", watch)
        check_same_as(again, run_dir)
        REFERENCES[seed] = (run_dir, watch.seconds)
    return REFERENCES[seed]


def seeded_config(seed):
    path = WORK / f"config-{seed}.yaml"
    path.write_text(TINY.replace("name: tiny", f"name: tiny\nseed: {seed}"))
    return load_config(path)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    seed=st.sampled_from([0, 1]),
    signum=st.sampled_from([signal.SIGINT, signal.SIGTERM]),
    when=st.floats(min_value=0.0, max_value=1.1),
)
def test_interrupts_at_random_times_keep_every_invariant(seed, signum, when):
    """A signal `when` × (the training's duration) after training starts: anywhere in an
    epoch, in its files, in the test evaluation, or (past 1) too late to matter."""
    reference, duration = reference_run(seed)
    config = seeded_config(seed)
    runs_dir = Path(tempfile.mkdtemp(dir=WORK))
    # SIGTERM outside the training (after it ends) must not kill pytest.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    watch = Stopwatch(signum, when * duration)
    try:
        try:
            fit(config, runs_dir, watch)
            watch.timer.join()
            time.sleep(0.01)  # a signal sent just now is handled here, too late to matter
        except KeyboardInterrupt:
            pass
    finally:
        watch.timer.cancel()
        signal.signal(signal.SIGTERM, previous)
    (run_dir,) = runs_dir.iterdir()
    if runs.read_summary(run_dir)["status"] == "interrupted":
        if check_interrupted(run_dir, config.train.epochs) == 0:
            return
        resume(run_dir)
    check_same_as(run_dir, reference)
