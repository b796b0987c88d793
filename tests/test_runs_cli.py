"""`npnet runs`, `npnet runs compare`, `npnet check` and the `failed` status."""

import json

import pytest
from tiny import TINY_MLP
from typer.testing import CliRunner

from npnet.cli import app
from npnet.config import load_config
from npnet.engine import runs
from npnet.engine.loop import fit
from npnet.nn.dense import Dense

TINY = TINY_MLP.replace("epochs: 3", "epochs: 2")


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def two_runs(write_config, tmp_path):
    config = load_config(write_config(TINY))
    first, _ = fit(config, tmp_path / "runs")
    other = load_config(write_config(TINY), ["optimizer.lr=0.05", "train.epochs=1"])
    second, _ = fit(other, tmp_path / "runs")
    return first, second


def test_runs_table_lists_every_run(two_runs, tmp_path):
    (tmp_path / "runs" / "stray-file.txt").write_text("not a run")
    result = invoke("runs", "--runs-dir", tmp_path / "runs", "--sort", "test_accuracy")
    assert result.exit_code == 0, result.output
    rows = runs.list_runs(tmp_path / "runs")
    assert [r["run"] for r in rows] == sorted((p.name for p in two_runs), reverse=True)
    assert {r["status"] for r in rows} == {"completed"}
    assert sorted(r["epochs"] for r in rows) == [1, 2]
    assert "completed" in result.stdout


def test_runs_compare_shows_the_differences(two_runs):
    first, second = two_runs
    comparison = runs.compare_runs(first, second)
    assert comparison["config_differences"] == [
        {"key": "optimizer.lr", "a": 0.1, "b": 0.05},
        {"key": "train.epochs", "a": 2, "b": 1},
    ]
    result = invoke("runs", "compare", first, second)
    assert result.exit_code == 0, result.output
    assert "optimizer.lr" in result.stdout and "train.epochs" in result.stdout
    assert "test_accuracy" in result.stdout


def test_runs_rejects_an_unknown_sort_key(tmp_path):
    result = invoke("runs", "--runs-dir", tmp_path, "--sort", "speed")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --sort must be one of run, name, date")


def test_check_builds_everything_and_trains_nothing(write_config, tmp_path):
    result = invoke("check", write_config(TINY))
    assert result.exit_code == 0, result.output
    assert "config OK" in result.stdout
    assert "optimizer:" in result.stdout  # the resolved config is printed
    dry = invoke("train", write_config(TINY), "--dry-run", "--runs-dir", tmp_path / "runs")
    assert dry.exit_code == 0
    assert not (tmp_path / "runs").exists()


def test_a_crash_mid_training_leaves_a_failed_summary(write_config, tmp_path, monkeypatch):
    real_backward = Dense.backward

    def broken_backward(self, grad_out):
        if len(grad_out) <= 2:  # the build's dry step; the bug strikes in training
            return real_backward(self, grad_out)
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(Dense, "backward", broken_backward)
    with pytest.raises(RuntimeError, match="simulated bug"):
        fit(load_config(write_config(TINY)), tmp_path / "runs")
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert summary["message"] == "RuntimeError: simulated bug"
    assert summary["epochs_completed"] == 0
