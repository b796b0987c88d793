"""What every finished sweep must satisfy, read back from the study and the directory."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from npnet.engine.evaluate import load_run
from npnet.tools.sweep.sweep_dir import open_study, read_sweep

# The base config of the test sweeps: a small MLP on the 8x8 digits, well under a second a run.
TINY_BASE = """\
name: tiny
data: {dataset: digits, validation: 200, normalize: scale}
model:
  layers:
    - flatten
    - dense: {units: 16}
    - relu
    - dense: {units: 10}
optimizer: {name: sgd, lr: 0.1, momentum: 0.9}
train: {epochs: 2, batch_size: 64}
"""
RUN_FILES = ["config.yaml", "metrics.csv", "weights.npz", "summary.json", "checkpoint.npz"]


def study_of(sweep_dir: Path) -> optuna.Study:
    return open_study(read_sweep(sweep_dir), sweep_dir)


def sweep_dir_in(runs_dir: Path) -> Path:
    (found,) = sorted((runs_dir / "sweeps").iterdir())
    return found


def check_finished_sweep(sweep_dir: Path, trials: int) -> list[optuna.trial.FrozenTrial]:
    """Exactly `trials` complete or pruned trials, none failed or running, each trained once
    into its own complete run directory whose summary names it; returns them."""
    study = study_of(sweep_dir)
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(finished) == trials
    assert len(study.trials) == trials, [t.state for t in study.trials]
    assert sorted(t.number for t in finished) == list(range(trials))
    run_dirs = sorted((sweep_dir / "trials").iterdir())
    assert len(run_dirs) == trials  # no trial trained twice
    seen = []
    for trial in finished:
        run_dir = sweep_dir / trial.user_attrs["run_dir"]
        for name in RUN_FILES:
            assert (run_dir / name).is_file(), (run_dir, name)
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["sweep"]["trial"] == trial.number
        assert summary["sweep"]["params"] == trial.params
        expected = "completed" if trial.state == TrialState.COMPLETE else "pruned"
        assert summary["status"] == expected
        assert summary["epochs_completed"] == len(trial.intermediate_values)
        load_run(run_dir)  # the weights load into the config's network
        seen.append(run_dir)
    assert len(set(seen)) == trials
    return finished


def start_sweep(args: list[str], cwd: Path | None = None) -> subprocess.Popen:
    """`npnet sweep ARGS` as its own process (so that signals can reach it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "npnet", "sweep", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def started_sweep(runs_dir: Path) -> Path | None:
    """The sweep directory a starting `npnet sweep` made, once its sweep.yaml is there."""
    found = next((runs_dir / "sweeps").glob("*/sweep.yaml"), None)
    return None if found is None else found.parent


def wait_for(condition, timeout: float = 120.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def running_trial_mid_epochs(
    study: optuna.Study, process: subprocess.Popen
) -> optuna.trial.FrozenTrial | None:
    """A running trial that has reported at least one epoch and is far from its last (the
    tests give their trials 60 tiny epochs: long enough to be caught mid-training on an idle
    machine, where an epoch takes a few milliseconds, and on a loaded one)."""
    if process.poll() is not None:
        raise AssertionError(f"npnet sweep ended early: {process.communicate()[0]}")
    for trial in study.get_trials(states=(TrialState.RUNNING,)):
        if 1 <= len(trial.intermediate_values) <= 40 and "pid" in trial.user_attrs:
            return trial
    return None


def interrupt(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)


def finish(process: subprocess.Popen, timeout: float = 300.0) -> str:
    """Wait for `npnet sweep` to end; its output. One that hangs is killed and shown."""
    try:
        return process.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"npnet sweep did not end: {process.communicate()[0]}") from None
