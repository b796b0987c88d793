"""Real sweeps (Optuna, SQLite, worker processes) on scikit-learn's 8x8 digits."""

import csv
import itertools
import json
import os
import signal

import pytest
from optuna.trial import TrialState
from sweep_checks import (
    TINY_BASE,
    check_finished_sweep,
    finish,
    interrupt,
    running_trial_mid_epochs,
    start_sweep,
    started_sweep,
    study_of,
    sweep_dir_in,
    wait_for,
)
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from npnet.cli import app

pytestmark = pytest.mark.sweep
runner = CliRunner()

SEARCH = """\
trials: 12
sampler: tpe
pruner: {name: median, n_startup_trials: 3}
parameters:
  optimizer.lr: {loguniform: [0.01, 0.5]}
  model.layers[1].dense.units: {choice: [8, 16, 32]}
"""


def sweep(args):
    result = runner.invoke(app, ["sweep", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One 12-trial, 2-worker sweep on the default file storage, shared by the tests below."""
    root = tmp_path_factory.mktemp("sweep")
    (root / "tiny.yaml").write_text(TINY_BASE)
    (root / "sweep.yaml").write_text("name: tiny-search\nbase: tiny.yaml\n" + SEARCH)
    result = sweep([str(root / "sweep.yaml"), "--workers", "2", "--runs-dir", str(root / "runs")])
    return root, sweep_dir_in(root / "runs"), result.output


def test_twelve_trials_two_workers_file_storage(finished):
    _, sweep_dir, output = finished
    assert (sweep_dir / "study.db").is_file()
    trials = check_finished_sweep(sweep_dir, 12)
    assert len({t.user_attrs["pid"] for t in trials}) == 2  # both workers trained
    assert "trials of" in output and "best first" in output
    with (sweep_dir / "trials.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [int(r["trial"]) for r in rows] == list(range(12))
    assert {r["state"] for r in rows} <= {"complete", "pruned"}


def test_best_yaml_reproduces_the_best_trial_exactly(finished, tmp_path):
    _, sweep_dir, _ = finished
    best = study_of(sweep_dir).best_trial
    assert f"OMP_NUM_THREADS={best.user_attrs['blas_threads']} npnet train" in (
        (sweep_dir / "best.yaml").read_text()
    )
    with threadpool_limits(best.user_attrs["blas_threads"], user_api="blas"):
        result = runner.invoke(
            app, ["train", str(sweep_dir / "best.yaml"), "--runs-dir", str(tmp_path)]
        )
    assert result.exit_code == 0, result.output
    (again,) = tmp_path.iterdir()
    trial_dir = sweep_dir / best.user_attrs["run_dir"]

    def numbers(run_dir):
        with (run_dir / "metrics.csv").open() as file:
            rows = [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(file)]
        summary = json.loads((run_dir / "summary.json").read_text())
        return rows, summary["test_loss"], summary["test_accuracy"]

    assert numbers(again) == numbers(trial_dir)
    assert float(numbers(again)[0][-1]["val_accuracy"]) == best.value


def test_runs_shows_the_sweep_as_a_group(finished):
    root, sweep_dir, _ = finished
    result = runner.invoke(app, ["runs", "--runs-dir", str(root / "runs")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"sweeps/{sweep_dir.name}" in result.output
    assert "sweep (12)" in result.output
    assert result.output.count("└ tiny-search-trial") == 12


def test_plot_sweep_dir_writes_the_figures(finished, tmp_path):
    _, sweep_dir, _ = finished
    result = runner.invoke(app, ["plot", str(sweep_dir), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name in ("history.png", "parameters.png", "importances.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_grid_runs_every_combination_exactly_once(sweep_file, tmp_path):
    path = sweep_file(
        "sampler: grid\npruner: none\nparameters:\n"
        "  optimizer.lr: {choice: [0.05, 0.2]}\n"
        "  model.layers[1].dense.units: {choice: [8, 16, 32]}\n"
    )
    sweep([str(path), "--workers", "2", "--runs-dir", str(tmp_path / "runs")])
    trials = check_finished_sweep(sweep_dir_in(tmp_path / "runs"), 6)
    combinations = sorted(
        (t.params["optimizer.lr"], t.params["model.layers[1].dense.units"]) for t in trials
    )
    assert combinations == sorted(itertools.product([0.05, 0.2], [8, 16, 32]))


def test_pruning_stops_the_obviously_bad_trials_early(sweep_file, tmp_path):
    # lr 1e-5 learns nothing in 4 epochs, lr 0.2 reaches ~90%. The evaluation batch size
    # changes no number, so the good trials are alike and none is below the others' median.
    path = sweep_file(
        "sampler: grid\npruner: {name: median, n_startup_trials: 1}\n"
        "fixed: {train.epochs: 4}\nparameters:\n"
        "  optimizer.lr: {choice: [0.2, 0.00001]}\n"
        "  train.eval_batch_size: {choice: [100, 200, 500]}\n"
    )
    sweep([str(path), "--runs-dir", str(tmp_path / "runs")])
    sweep_dir = sweep_dir_in(tmp_path / "runs")
    trials = check_finished_sweep(sweep_dir, 6)
    bad = {t.number for t in trials if t.params["optimizer.lr"] == 0.00001}
    good = [t for t in trials if t.params["optimizer.lr"] == 0.2]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned and {t.number for t in pruned} <= bad
    assert all(t.state == TrialState.COMPLETE for t in good)
    for trial in pruned:  # stopped after fewer epochs, with its files and status `pruned`
        summary = json.loads((sweep_dir / trial.user_attrs["run_dir"] / "summary.json").read_text())
        assert summary["status"] == "pruned" and summary["epochs_completed"] < 4
        assert summary["test_accuracy"] is None  # a pruned trial is not evaluated on test


def test_ctrl_c_then_resume_keeps_the_earlier_trials(sweep_file, tmp_path):
    path = sweep_file(
        "trials: 4\npruner: none\nfixed: {train.epochs: 60}\n" + SEARCH.split("\n", 3)[3]
    )
    process = start_sweep([str(path), "--runs-dir", str(tmp_path / "runs")])
    sweep_dir = wait_for(lambda: started_sweep(tmp_path / "runs"), what="the sweep directory")
    study = study_of(sweep_dir)
    wait_for(
        lambda: (
            len(study.get_trials(states=(TrialState.COMPLETE,))) >= 2
            and running_trial_mid_epochs(study, process)
        ),
        what="a finished trial and a second mid-training",
    )
    interrupt(process)  # what Ctrl-C in the terminal sends
    output = finish(process)
    assert process.returncode == 130, output
    assert f"npnet sweep --resume {sweep_dir}" in output
    before = {
        t.number: t.value for t in study_of(sweep_dir).get_trials(states=(TrialState.COMPLETE,))
    }
    (stopped,) = study_of(sweep_dir).get_trials(states=(TrialState.FAIL,))
    summary = json.loads((sweep_dir / stopped.user_attrs["run_dir"] / "summary.json").read_text())
    assert summary["status"] == "interrupted"

    sweep(["--resume", str(sweep_dir)])
    study = study_of(sweep_dir)
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 4
    assert {t.number: t.value for t in done if t.number in before} == before  # kept as they were
    assert [t.number for t in study.get_trials(states=(TrialState.FAIL,))] == [stopped.number]


def test_kill_9_of_a_worker_fails_its_trial_and_the_others_finish(sweep_file, tmp_path):
    path = sweep_file(
        "trials: 6\npruner: none\nfixed: {train.epochs: 60}\n" + SEARCH.split("\n", 3)[3]
    )
    first = start_sweep(
        [str(path), "--workers", "2", "--runs-dir", str(tmp_path / "runs")], tmp_path
    )
    sweep_dir = wait_for(lambda: started_sweep(tmp_path / "runs"), what="the sweep directory")
    study = study_of(sweep_dir)
    victim = wait_for(lambda: running_trial_mid_epochs(study, first), what="a trial mid-training")
    os.kill(victim.user_attrs["pid"], signal.SIGKILL)
    restarted = start_sweep(["--resume", str(sweep_dir)])
    outputs = [finish(process) for process in (first, restarted)]
    assert (first.returncode, restarted.returncode) == (0, 0), outputs
    assert (
        "worker 0 killed by signal 9" in outputs[0] or "worker 1 killed by signal 9" in outputs[0]
    )
    study = study_of(sweep_dir)
    assert study.trials[victim.number].state == TrialState.FAIL  # stale heartbeat: failed
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(finished) == 6 and len(study.trials) == 7
    assert len(list((sweep_dir / "trials").iterdir())) == 7  # no trial trained twice
    later = [t for t in finished if t.number > victim.number]
    assert victim.user_attrs["pid"] not in {t.user_attrs["pid"] for t in later}
