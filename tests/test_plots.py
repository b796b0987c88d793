"""Figures of runs (`npnet plot`): tiny real trainings on the 8x8 digits, every PNG checked by
its header, the figures' contents checked on matplotlib's objects, and the CLI's errors."""

import re
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("matplotlib")

from npnet.cli import app, plots
from npnet.config import load_config
from npnet.engine import runs
from npnet.engine.loop import fit
from npnet.errors import RunError

COMMON = """\
data: {dataset: digits, validation: 200, normalize: scale}
optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
train: {epochs: 2, batch_size: 32, log_grad_norms: true}
"""
MLP = """\
name: mlp
model:
  layers: [flatten, {dense: {units: 32}}, relu, {dense: {units: 10}}]
"""
CNN = """\
name: cnn
model:
  layers:
    - conv2d: {filters: 4, kernel: 3, padding: 1}
    - relu
    - max_pool2d: {size: 2}
    - flatten
    - dense: {units: 10}
"""
REGRESSION = """\
name: line
data: {dataset: linear, validation: 50, normalize: none}
model: {layers: [{dense: {units: 1}}]}
loss: mse
train: {epochs: 2, batch_size: 32}
"""
CURVES = ["loss.png", "accuracy.png", "learning_rate.png"]
TEST_SET = ["confusion_matrix.png", "misclassified.png"]
DIGITS_TEST_IMAGES = 360

runner = CliRunner()


def train(tmp_dir: Path, text: str) -> Path:
    config_path = tmp_dir / "config.yaml"
    config_path.write_text(text)
    run_dir, summary = fit(load_config(config_path), tmp_dir / "runs")
    assert summary["status"] == "completed"
    return run_dir


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    return train(tmp_path_factory.mktemp("mlp"), MLP + COMMON)


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    return train(tmp_path_factory.mktemp("cnn"), CNN + COMMON)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, after checking the 8 signature bytes."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    assert header[12:16] == b"IHDR"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def assert_figures(paths: list[Path], directory: Path, names: list[str]) -> None:
    assert sorted(p.name for p in paths) == sorted(names)
    for path in paths:
        assert path.parent == directory and path.is_file()
        width, height = png_size(path)
        assert width > 300 and height > 200, (path.name, width, height)
        assert path.stat().st_size > 5_000, path.name


def test_cnn_run_gets_every_figure_in_its_directory(cnn_run):
    paths = plots.plot_runs([cnn_run])
    assert_figures(paths, cnn_run, [*CURVES, "grad_norms.png", *TEST_SET, "filters.png"])
    assert png_size(cnn_run / "loss.png") == (840, 540)  # 7 x 4.5 in at 120 dpi


def test_mlp_run_has_no_filters_figure(mlp_run, tmp_path):
    paths = plots.plot_runs([mlp_run], tmp_path / "figures")
    assert_figures(paths, tmp_path / "figures", [*CURVES, "grad_norms.png", *TEST_SET])


def test_several_runs_are_overlaid_and_out_dir_is_honoured(cnn_run, mlp_run, tmp_path):
    out = tmp_path / "nested" / "figures"
    before = sorted(p.name for p in mlp_run.iterdir())
    paths = plots.plot_runs([mlp_run, cnn_run], out)
    # The first run decides the per-run figures: the MLP has no filters.
    assert_figures(paths, out, [*CURVES, "grad_norms.png", *TEST_SET])
    assert sorted(p.name for p in mlp_run.iterdir()) == before  # nothing written beside it

    curves = [plots.read_curves(mlp_run), plots.read_curves(cnn_run)]
    ax = plots.loss_figure(plots.matplotlib_figure(), curves).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {
        f"{run.name} {split}" for run in (mlp_run, cnn_run) for split in ("training", "validation")
    }
    assert lines[f"{cnn_run.name} training"].get_linestyle() == "-"
    assert lines[f"{cnn_run.name} validation"].get_linestyle() == "--"
    val_loss = [row["val_loss"] for row in curves[1].rows]
    assert list(lines[f"{cnn_run.name} validation"].get_ydata()) == val_loss
    assert ax.get_xlabel() == "epoch"
    assert ax.get_ylabel() == "loss (softmax cross-entropy)"
    accuracy_ax = plots.accuracy_figure(plots.matplotlib_figure(), curves).axes[0]
    percent = [100 * row["train_accuracy"] for row in curves[0].rows]
    assert list(accuracy_ax.get_lines()[0].get_ydata()) == pytest.approx(percent)


def test_figure_contents_match_the_run(cnn_run):
    figure_class = plots.matplotlib_figure()
    figures = plots.evaluation_figures(figure_class, cnn_run, "cnn")

    # Confusion matrix: one annotated count per cell, summing to the test set.
    confusion_ax = figures["confusion_matrix.png"].axes[0]
    counts = np.array([int(text.get_text()) for text in confusion_ax.texts]).reshape(10, 10)
    assert counts.sum() == DIGITS_TEST_IMAGES
    assert confusion_ax.get_ylabel() == "true class"
    assert len(figures["confusion_matrix.png"].axes) == 2  # the matrix and its colour bar

    # Misclassified: wrong predictions only, most confident first.
    titled = [ax.get_title() for ax in figures["misclassified.png"].axes if ax.get_title()]
    wrong = counts.sum() - np.trace(counts)
    assert len(titled) == min(24, wrong)
    parsed = [re.fullmatch(r"true (\d) / pred (\d) \((\d+)%\)", title) for title in titled]
    assert all(parsed), titled
    assert all(m[1] != m[2] for m in parsed)
    confidences = [int(m[3]) for m in parsed]
    assert confidences == sorted(confidences, reverse=True)

    # Filters: the 4 kernels of layer 0 on one symmetric colour scale.
    images = [ax.images[0] for ax in figures["filters.png"].axes if ax.images]
    assert len(images) == 4
    low, high = images[0].get_clim()
    assert low == -high and all(image.get_clim() == (low, high) for image in images)

    grad_ax = plots.grad_norms_figure(
        figure_class, plots.read_curves(cnn_run), cnn_run / "grad_norms.csv"
    ).axes[0]
    assert [line.get_label() for line in grad_ax.get_lines()] == ["0 conv2d", "4 dense"]
    assert grad_ax.get_yscale() == "log"


def test_regression_runs_get_only_the_curves(tmp_path):
    run_dir = train(tmp_path, REGRESSION)
    paths = plots.plot_runs([run_dir])
    assert_figures(paths, run_dir, ["loss.png", "learning_rate.png"])


def test_missing_files_are_run_errors_naming_them(mlp_run, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match=r"empty: no metrics\.csv"):
        plots.plot_runs([tmp_path / "empty"])
    header_only = tmp_path / "header-only"
    header_only.mkdir()
    (header_only / "metrics.csv").write_text(",".join(runs.METRIC_COLUMNS) + "\n")
    with pytest.raises(RunError, match="no epochs recorded"):
        plots.plot_runs([header_only])
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    for name in ("config.yaml", "metrics.csv"):
        (no_weights / name).write_bytes((mlp_run / name).read_bytes())
    with pytest.raises(RunError, match=r"no-weights: no weights\.npz"):
        plots.plot_runs([no_weights])


def assert_one_line_error(result, expected: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0]


def test_cli_plot(cnn_run, mlp_run, tmp_path, monkeypatch):
    out = tmp_path / "both"
    result = runner.invoke(app, ["plot", str(cnn_run), str(mlp_run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("wrote ") == 7
    assert (out / "filters.png").is_file()

    (tmp_path / "not-a-run").mkdir()
    result = runner.invoke(app, ["plot", str(tmp_path / "not-a-run")])
    assert_one_line_error(result, "not-a-run: no metrics.csv")

    # Importing a module that sys.modules maps to None raises ImportError, as if it were not
    # installed; the submodule too, since an already imported one would be found directly.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    result = runner.invoke(app, ["plot", str(cnn_run)])
    assert_one_line_error(
        result, "matplotlib is not installed: pip install 'npnet[plot]' (make venv installs it)"
    )
