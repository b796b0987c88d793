"""Sweeps on a real PostgreSQL server: one process with two workers, and two processes with
their own run directories (two machines that share only the database)."""

import os
import signal

import pytest
import yaml
from optuna.trial import TrialState
from sweep_checks import (
    check_finished_sweep,
    finish,
    running_trial_mid_epochs,
    start_sweep,
    started_sweep,
    study_of,
    wait_for,
)
from test_sweep_runs import SEARCH
from typer.testing import CliRunner

from npnet.cli import app

pytestmark = pytest.mark.sweep
runner = CliRunner()


def test_twelve_trials_two_workers_on_postgres(postgres_url, sweep_file, tmp_path):
    path = sweep_file(SEARCH)
    result = runner.invoke(
        app,
        [
            "sweep",
            str(path),
            "--workers",
            "2",
            "--storage",
            postgres_url,
            "--study",
            "two-workers",
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
    )
    assert result.exit_code == 0, result.output
    sweep_dir = tmp_path / "runs" / "sweeps" / "two-workers"
    assert not (sweep_dir / "study.db").exists()  # the study is in PostgreSQL
    trials = check_finished_sweep(sweep_dir, 12)
    assert len({t.user_attrs["pid"] for t in trials}) == 2


def test_two_machines_share_one_study(postgres_url, sweep_file, tmp_path):
    """Machine a's worker is paused (SIGSTOP) mid-trial while machine b starts, so b must
    train the other trials whatever the two start-up times; a long heartbeat keeps b from
    failing a's paused trial. Each trial is still trained exactly once."""
    body = "trials: 6\npruner: none\nfixed: {train.epochs: 60}\n" + SEARCH.split("\n", 3)[3]
    path = sweep_file(body, heartbeat_seconds=600)
    args = [str(path), "--storage", postgres_url, "--study", "two-machines"]
    a = start_sweep([*args, "--runs-dir", str(tmp_path / "a")], tmp_path)
    sweep_a = wait_for(lambda: started_sweep(tmp_path / "a"), what="machine a's sweep")
    paused = wait_for(lambda: running_trial_mid_epochs(study_of(sweep_a), a), what="a trial")
    worker_a = paused.user_attrs["pid"]
    os.kill(worker_a, signal.SIGSTOP)
    try:
        b = start_sweep([*args, "--runs-dir", str(tmp_path / "b")], tmp_path)
        wait_for(lambda: trained_by_another(study_of(sweep_a), worker_a), what="b's first trial")
    finally:
        os.kill(worker_a, signal.SIGCONT)
    machines = [a, b]
    outputs = [finish(process) for process in machines]
    assert [process.returncode for process in machines] == [0, 0], outputs
    dirs = [tmp_path / machine / "sweeps" / "two-machines" for machine in ("a", "b")]
    study = study_of(dirs[0])
    assert len(study.trials) == 6 and all(t.state.is_finished() for t in study.trials)
    trained = [p.name for d in dirs for p in (d / "trials").iterdir()]
    assert len(trained) == len(set(trained)) == 6  # each trial trained once, on one machine
    pids = {t.user_attrs["pid"] for t in study.trials}
    assert len(pids) == 2 and worker_a in pids
    assert study.trials[paused.number].state == TrialState.COMPLETE  # resumed, not failed
    # Either machine's best.yaml is the same: the configs live in the study, not on a disk.
    best = [yaml.safe_load((d / "best.yaml").read_text()) for d in dirs]
    assert best[0] == best[1] == study.best_trial.user_attrs["config"]


def trained_by_another(study, pid: int) -> bool:
    """Whether a worker other than `pid` has finished a trial of the study."""
    return any(t.state.is_finished() and t.user_attrs["pid"] != pid for t in study.trials)


def test_a_different_sweep_cannot_join_the_study(postgres_url, sweep_file, tmp_path):
    first = sweep_file(SEARCH.replace("trials: 12", "trials: 1"), "one.yaml")
    args = ["--storage", postgres_url, "--study", "taken", "--runs-dir", str(tmp_path / "runs")]
    assert runner.invoke(app, ["sweep", str(first), *args]).exit_code == 0
    other = sweep_file(SEARCH.replace("0.5]", "0.9]"), "other.yaml")
    result = runner.invoke(app, ["sweep", str(other), *args])
    assert result.exit_code == 2
    assert "study 'taken'" in result.output and "'parameters' differs" in result.output
