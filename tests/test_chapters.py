"""The tutorial chapters end to end: every `make chN.N` recipe, read from the Makefile and run
through the CLI in a shortened form: on a 1,200/300-image MNIST subset (real images, written
as IDX files), training on 500 of them for one epoch, into tmp_path.

Reading the recipes from the Makefile keeps the two in step: a chapter command that breaks
breaks here. The figures need matplotlib; those steps are skipped while it is missing.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from npnet.cli import app
from npnet.config import load_config
from npnet.tools.explain import fit_linear, gradient_norms

ROOT = Path(__file__).resolve().parents[1]
MAKEFILE = (ROOT / "Makefile").read_text()
CHAPTERS = [
    f"ch{part}.{n}" for part, count in ((1, 3), (2, 4), (3, 4), (4, 5)) for n in range(1, count + 1)
]
SHORT = ["--set", "data.train_size=500", "--set", "train.epochs=1"]
MNIST_COMMANDS = {"train", "data", "summary", "gradcheck"}  # the ones that read a config's data
HAS_PLOTS = importlib.util.find_spec("matplotlib") is not None  # the optional extra
runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """A wide console, so table cells are not wrapped across lines and can be searched.
    (rich reads COLUMNS when it renders; setting console.width would outlive the test.)"""
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture(scope="module")
def small_mnist(tmp_path_factory):
    """The first 1,200 training and 300 test images of MNIST as IDX files: evaluating the full
    10,000-image test set would take most of this file's time budget."""
    from npnet.data import encode_idx, load_mnist
    from npnet.data.mnist import FILES

    directory = tmp_path_factory.mktemp("mnist")
    x_train, y_train, x_test, y_test = load_mnist()
    for name, array in zip(
        FILES, (x_train[:1200], y_train[:1200], x_test[:300], y_test[:300]), strict=True
    ):
        (directory / name.removesuffix(".gz")).write_bytes(encode_idx(array))
    return directory


def recipe(target: str) -> list[list[str]]:
    """The npnet commands of a Makefile target, as argument lists (without `$(NPNET)`)."""
    match = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", MAKEFILE, re.MULTILINE)
    assert match, f"no recipe for {target} in the Makefile"
    lines = [line.strip() for line in match.group(1).splitlines()]
    assert all(line.startswith("$(NPNET) ") for line in lines), lines
    # `$(call last_run,NAME)` has a space; as one `@last_run:NAME` token it survives the split
    lines = [re.sub(r"\$\(call last_run,([^)]+)\)", r"@last_run:\1", line) for line in lines]
    return [shlex.split(line.removeprefix("$(NPNET) ")) for line in lines]


def run_chapter(target: str, tmp_path: Path, mnist: Path) -> list[str]:
    """Run a chapter's commands on the MNIST subset `mnist`, with runs under tmp_path;
    returns each command's output. Later commands (eval, features, plot) find the subset
    through the run's config.yaml, which records `--data-dir` as data.root."""
    runs = tmp_path / "runs"
    outputs = []
    for args in recipe(target):
        if args[0] == "plot" and not HAS_PLOTS:
            continue
        resolved = []
        for arg in args:
            if arg.startswith("@last_run:"):
                arg = str(sorted(runs.glob(f"*-{arg.removeprefix('@last_run:')}"))[-1])
            elif arg.startswith("runs/"):
                arg = str(tmp_path / arg)
            resolved.append(arg)
        if args[0] in MNIST_COMMANDS:
            resolved += ["--data-dir", str(mnist), "--set", "data.validation=200"]
        if args[0] == "train":
            resolved += [*SHORT, "--runs-dir", str(runs)]
        result = runner.invoke(app, resolved)
        assert result.exit_code == 0, f"{target}: npnet {' '.join(resolved)}\n{result.output}"
        outputs.append(result.output)
    return outputs


def test_the_makefile_has_every_chapter_in_order():
    for target in CHAPTERS:
        assert re.search(rf"^{re.escape(target)}: \$\(STAMP\)  ## ", MAKEFILE, re.MULTILINE)
    assert re.search(
        r"^CHAPTERS := " + " ".join(map(re.escape, CHAPTERS)) + "$", MAKEFILE, re.MULTILINE
    )
    assert re.search(r"^chapters: \$\(CHAPTERS\)  ## ", MAKEFILE, re.MULTILINE)


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("ch*.yaml")), ids=lambda p: p.name)
def test_every_chapter_config_loads(path):
    config = load_config(path)
    assert config.name == path.stem or path.stem == "ch32-activations"


def test_chapters_without_training(tmp_path, small_mnist):
    out = {
        t: "\n".join(run_chapter(t, tmp_path, small_mnist))
        for t in ("ch1.1", "ch1.2", "ch1.3", "ch2.1")
    }
    assert "1000×1×28×28" in out["ch1.1"] and "standard" in out["ch1.1"]
    assert "W 784×10" in out["ch1.2"] and "15,680" in out["ch1.2"]  # 2·784·10 FLOPs
    assert "0.104994" in out["ch1.3"]  # σ'(±2) = σ(2)·(1 − σ(2))
    assert "2.3026" in out["ch2.1"]  # −log 0.1: confident and wrong


def test_gradient_descent_chapters(tmp_path, small_mnist):
    (out,) = run_chapter("ch2.2", tmp_path, small_mnist)
    assert "true" in out and "learned (batch 1000)" in out
    (out,) = run_chapter("ch2.3", tmp_path, small_mnist)
    assert "20,000" in out  # batch size 1: 1000 steps per epoch for 20 epochs
    result = fit_linear(load_config(ROOT / "configs/ch22-gradient-descent.yaml"), [1000])
    assert result["rows"][0]["max_error"] < 1e-2


def test_gradient_check_chapter(tmp_path, small_mnist):
    (out,) = run_chapter("ch2.4", tmp_path, small_mnist)
    assert "passed" in out and "< 1e-07" in out


def printed_accuracy(output: str) -> float:
    """The test accuracy, in %, that `npnet train` prints last."""
    return float(re.search(r"test accuracy (\S+)%", output).group(1))


# target -> (trainings, text its last command prints)
MLP_CHAPTERS = {
    "ch3.1": (1, "test accuracy"),
    "ch3.2": (3, "loss.png" if HAS_PLOTS else "test accuracy"),
    "ch3.3": (0, "203,530"),  # 784·256 + 256 + 256·10 + 10 parameters
    "ch3.4": (1, "test accuracy"),
    "ch4.4": (2, "dropout"),  # the config difference `runs compare` shows
}


@pytest.mark.parametrize("target", MLP_CHAPTERS)
def test_mlp_chapters(target, tmp_path, small_mnist):
    outputs = run_chapter(target, tmp_path, small_mnist)
    trainings, last_text = MLP_CHAPTERS[target]
    trained = [output for output in outputs if "status: " in output]
    assert len(trained) == trainings
    for output in trained:
        assert "status: completed" in output
        # one epoch on 500 images is enough to be far above chance (10 %)
        assert printed_accuracy(output) > 30, output
    assert last_text in outputs[-1]


def test_vanishing_gradients_chapter(tmp_path, small_mnist):
    outputs = run_chapter("ch4.1", tmp_path, small_mnist)
    assert "epoch 1 / output layer" in outputs[2]
    runs = tmp_path / "runs"
    (sigmoid,) = runs.glob("*-ch41-deep-sigmoid")
    table = gradient_norms(sigmoid)
    first, last = table["rows"][0], table["rows"][-1]
    assert (first["layer"], last["layer"]) == (1, 11) and last["relative"] == 1.0


def test_convolution_chapters(tmp_path, small_mnist):
    outputs = run_chapter("ch4.2", tmp_path, small_mnist)
    assert "feature maps 8×28×28" in outputs[1]
    (run,) = (tmp_path / "runs").glob("*-ch42-conv")
    assert (run / "feature_maps.png").stat().st_size > 1000
    run_chapter("ch4.3", tmp_path, small_mnist)
    outputs = run_chapter("ch4.5", tmp_path, small_mnist)
    assert "confusion matrix" in outputs[-1]
    assert np.isfinite(float(re.search(r"test loss (\S+)", outputs[0]).group(1)))
