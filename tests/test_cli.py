"""The CLI end to end: real short trainings into tmp_path, their files and numbers, eval,
gradcheck, and one-line errors with exit code 2."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from tiny import TINY_MLP as TINY
from typer.testing import CliRunner

from npnet.cli import app
from npnet.nn.dense import Dense

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def train_tiny(write_config, tmp_path, *extra, text=TINY):
    result = invoke("train", write_config(text), "--runs-dir", tmp_path / "runs", *extra)
    assert result.exit_code == 0, result.output
    run_dir = Path(result.stdout.strip().splitlines()[-1].removeprefix("run saved to "))
    assert run_dir.parent == tmp_path / "runs"
    return run_dir, result


def test_train_writes_a_complete_run_directory(write_config, tmp_path):
    run_dir, result = train_tiny(write_config, tmp_path)
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "checkpoint.npz",
        "config.yaml",
        "metrics.csv",
        "summary.json",
        "weights.npz",
    ]
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["epochs_completed"] == 3
    assert summary["test_accuracy"] > 0.9  # 8x8 digits learn quickly: it is really training
    assert summary["seed"] == 0
    assert summary["numpy_version"] == np.__version__
    with np.load(run_dir / "weights.npz", allow_pickle=False) as weights:
        assert sorted(weights.files) == ["1.W", "1.b", "3.W", "3.b"]
        assert weights["1.W"].shape == (64, 32)
        assert weights["1.W"].dtype == np.float32
    assert "epoch 3/3" in result.stdout


@pytest.mark.parametrize("threads", ["1", "2"])
def test_eval_reproduces_the_summary_exactly(write_config, tmp_path, threads):
    run_dir, _ = train_tiny(write_config, tmp_path, "--set", f"train.threads={threads}")
    summary = json.loads((run_dir / "summary.json").read_text())
    result = invoke("eval", run_dir, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["accuracy"] == summary["test_accuracy"]
    assert report["loss"] == summary["test_loss"]
    assert report["samples"] == 360
    assert sum(row["support"] for row in report["per_class"]) == 360
    assert np.trace(report["confusion_matrix"]) == round(360 * report["accuracy"])
    latest = invoke("eval", "latest", "--runs-dir", tmp_path / "runs", "--split", "val")
    assert latest.exit_code == 0, latest.output
    assert "val split" in latest.stdout
    assert "confusion matrix" in latest.stdout


@pytest.mark.parametrize("threads", ["1", "2"])
def test_same_seed_gives_identical_runs(write_config, tmp_path, threads):
    threads_set = ("--set", f"train.threads={threads}")
    first, _ = train_tiny(write_config, tmp_path, *threads_set)
    second, _ = train_tiny(write_config, tmp_path, *threads_set)
    assert first != second

    def metrics(run_dir):
        rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]

    assert metrics(first) == metrics(second)
    with np.load(first / "weights.npz") as a, np.load(second / "weights.npz") as b:
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])
    third, _ = train_tiny(write_config, tmp_path, *threads_set, "--seed", "1")
    assert metrics(third) != metrics(first)
    _, result = train_tiny(write_config, tmp_path, *threads_set)
    shown = "threads: 2 (each batch in 2 slices at once)" in result.stdout
    assert shown == (threads == "2")


def test_more_threads_than_cores_gets_a_note(write_config, tmp_path, monkeypatch):
    monkeypatch.setattr("npnet.cli.progress.available_cores", lambda: 1)
    _, result = train_tiny(write_config, tmp_path, "--set", "train.threads=2")
    assert "note: train.threads is 2, but this process may use 1 core(s)" in result.stdout
    _, result = train_tiny(write_config, tmp_path, "--set", "train.threads=1")
    assert "note:" not in result.stdout


def test_a_pin_to_narrower_blas_kernels_gets_a_line(write_config, tmp_path, monkeypatch):
    said = "OPENBLAS_CORETYPE=Haswell holds OpenBLAS back"
    monkeypatch.setattr("npnet.cli.progress.pinned_narrower_kernels", lambda: said)
    _, result = train_tiny(write_config, tmp_path)
    assert f"blas: {said}" in result.stdout
    monkeypatch.setattr("npnet.cli.progress.pinned_narrower_kernels", lambda: None)
    _, result = train_tiny(write_config, tmp_path)
    assert "blas:" not in result.stdout


def test_resolved_config_includes_overrides_and_rebuilds_the_run(write_config, tmp_path):
    run_dir, _ = train_tiny(write_config, tmp_path, "--set", "train.epochs=1", "--seed", "3")
    saved = (run_dir / "config.yaml").read_text()
    assert "seed: 3" in saved
    assert "epochs: 1" in saved
    again, _ = train_tiny(write_config, tmp_path, text=saved)
    assert (
        json.loads((again / "summary.json").read_text())["test_accuracy"]
        == json.loads((run_dir / "summary.json").read_text())["test_accuracy"]
    )


@pytest.mark.slow
def test_learns_real_mnist(tmp_path):
    result = invoke(
        "train",
        CONFIGS / "mlp.yaml",
        "--runs-dir",
        tmp_path,
        "--set",
        "data.train_size=5000",
        "--set",
        "train.epochs=1",
    )
    assert result.exit_code == 0, result.output
    run_dir = Path(result.stdout.strip().splitlines()[-1].removeprefix("run saved to "))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["train_examples"] == 5000
    assert summary["test_accuracy"] > 0.85  # one epoch on 5k images; chance is 0.10


def test_gradcheck_passes_on_a_config(write_config):
    result = invoke("gradcheck", write_config(TINY))
    assert result.exit_code == 0, result.output
    assert "passed" in result.stdout


# Every shipped config with data on this machine: not the sweep files (configs/sweeps/) nor
# the examples of your own data (configs/examples/, whose files the user brings).
TRAINABLE = sorted(
    p for p in CONFIGS.rglob("*.yaml") if p.parent.name not in ("sweeps", "examples")
)


@pytest.mark.parametrize("path", TRAINABLE, ids=lambda p: p.name)
def test_gradcheck_passes_on_every_shipped_config(path):
    # Among them: batch norm's standardized activations near ReLU's kink and the zero gradient
    # of a bias before it (the capstone), and the tiny gradients of a deep sigmoid network's
    # first layers (ch4.1): each once made this check fail on a correct network.
    result = invoke("gradcheck", path)
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.stdout


def test_gradcheck_catches_a_wrong_backward(write_config, monkeypatch):
    correct = Dense.backward

    def wrong(self, grad_out):  # forgets the bias gradient's sum over the batch
        dx = correct(self, grad_out)
        self.grads["b"] = self.grads["b"] * 0.5
        return dx

    monkeypatch.setattr(Dense, "backward", wrong)
    result = invoke("gradcheck", write_config(TINY))
    assert result.exit_code == 1
    assert "FAIL" in result.stdout


def assert_user_error(result, expected):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert expected in lines[0]
    assert "Traceback" not in result.output


def test_config_mistakes_are_one_line_with_exit_code_2(write_config, tmp_path):
    bad = write_config(TINY.replace("- relu", "- rellu"), "bad.yaml")
    assert_user_error(
        invoke("train", bad, "--runs-dir", tmp_path / "runs"),
        "bad.yaml: model.layers[2]: unknown layer 'rellu'; did you mean 'relu'?",
    )
    assert not (tmp_path / "runs").exists()  # nothing was created for a config that failed
    assert_user_error(invoke("train", tmp_path / "missing.yaml"), "no such config file")
    assert_user_error(
        invoke("train", write_config(TINY), "--set", "optimizer.lr=-1"),
        "optimizer: 'lr' must be",
    )
    conv_into_dense = TINY.replace("- flatten\n", "- conv2d: {filters: 2, kernel: 3}\n")
    assert_user_error(
        invoke("gradcheck", write_config(conv_into_dense)),
        "model.layers[1] (dense): ",
    )


def test_run_directory_mistakes_are_one_line_with_exit_code_2(write_config, tmp_path):
    assert_user_error(invoke("eval", tmp_path / "nowhere"), "no such run directory")
    assert_user_error(invoke("eval", "latest", "--runs-dir", tmp_path / "empty"), "no runs yet")
    (tmp_path / "not-a-run").mkdir()
    assert_user_error(invoke("eval", tmp_path / "not-a-run"), "no config.yaml")
    run_dir, _ = train_tiny(write_config, tmp_path)
    assert_user_error(invoke("eval", run_dir, "--split", "dev"), "--split must be one of")
    weights = run_dir / "weights.npz"
    weights.write_bytes(weights.read_bytes()[:100])
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    assert_user_error(invoke("eval", run_dir), "weights.npz: not a readable weights file")
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


def test_list_shows_every_registered_component():
    from npnet.registry import DATASETS, INITIALIZERS, LAYERS, LOSSES, OPTIMIZERS, SCHEDULES

    result = CliRunner().invoke(app, ["list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for registry in (LAYERS, LOSSES, INITIALIZERS, OPTIMIZERS, SCHEDULES, DATASETS):
        for name in registry.names():
            assert f" {name} " in result.stdout, name
    assert "filters, kernel, stride=1, padding=0" in result.stdout


def test_gradcheck_all_passes_and_fails_on_a_broken_layer(monkeypatch):
    result = invoke("gradcheck", "--all")
    assert result.exit_code == 0, result.output
    assert "passed" in result.stdout
    correct = Dense.backward

    def wrong(self, grad_out):
        dx = correct(self, grad_out)
        return dx * 1.01 if dx is not None else dx

    monkeypatch.setattr(Dense, "backward", wrong)
    result = invoke("gradcheck", "--all")
    assert result.exit_code == 1
    assert "FAILED" in result.stdout
