"""The sweep file: every mistake is one line naming the sweep file and the key, before any
trial runs; the values a sweep writes into a config are exactly the values it sampled."""

import subprocess
import sys

import pytest
import yaml
from typer.testing import CliRunner

from npnet.cli import app
from npnet.errors import ConfigError
from npnet.tools.sweep.spec import load_sweep, trial_config, yaml_value

runner = CliRunner()
SPACE = "trials: 4\nparameters:\n  optimizer.lr: {loguniform: [0.001, 0.3]}\n"


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        (
            "trials: 4\nparameters:\n  optimizer.lrr: {uniform: [0.1, 0.2]}\n",
            "parameters.optimizer.lrr",
            "lrr",
        ),
        (
            "trials: 4\nparameters:\n  train.epoch: {choice: [1, 2]}\n",
            "parameters.train.epoch",
            "did you mean 'epochs'",
        ),
        (
            "trials: 4\nparameters:\n  model.layers[9].dense.units: {choice: [8]}\n",
            "parameters.model.layers[9].dense.units",
            "does not exist",
        ),
        (
            "trials: 4\nparameters:\n  optimizer.lr: {loguniform: [0, 0.3]}\n",
            "parameters.optimizer.lr",
            "low > 0",
        ),
        (
            "trials: 4\nparameters:\n  optimizer.lr: {uniform: [0.3, 0.1]}\n",
            "parameters.optimizer.lr",
            "low < high",
        ),
        (
            "trials: 4\nparameters:\n  model.layers[1].dense.units: {choice: [16, 0]}\n",
            "parameters.model.layers[1].dense.units",
            "units",
        ),
        (
            "trials: 4\nparameters:\n  optimizer.lr: {normal: [0, 1]}\n",
            "parameters.optimizer.lr",
            "expected one of",
        ),
        (
            "trials: 4\nfixed: {train.batch_size: -1}\n" + SPACE.split("\n", 1)[1],
            "fixed",
            "batch_size",
        ),
        ("trials: 0\n" + SPACE.split("\n", 1)[1], "trials", "positive int"),
        ("metric: accuracy\n" + SPACE, "metric", "val_accuracy"),
        ("sampler: grid\n" + SPACE, "parameters.optimizer.lr", "choice"),
        ("sampler: annealing\n" + SPACE, "sampler", "tpe, random, grid"),
        ("pruner: {name: median, n_startup: 2}\n" + SPACE, "pruner", "n_startup"),
        (
            "sampler: grid\ntrials: 3\nparameters:\n  train.batch_size: {choice: [32, 64]}\n",
            "trials",
            "only 2 combinations",
        ),
    ],
)
def test_mistakes_name_the_sweep_file_and_key(sweep_file, body, key, message):
    path = sweep_file(body)
    with pytest.raises(ConfigError) as caught:
        load_sweep(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: {key}: "), text
    assert message in text, text


def test_cli_error_is_one_line_exit_2_and_no_sweep_dir(sweep_file, tmp_path):
    path = sweep_file("trials: 4\nparameters:\n  optimizer.lrr: {uniform: [0.1, 0.2]}\n")
    result = runner.invoke(app, ["sweep", str(path), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert "parameters.optimizer.lrr" in result.output
    assert not (tmp_path / "runs").exists()  # nothing trained, nothing written


def test_unknown_sweep_key_suggests_the_right_one(sweep_file):
    with pytest.raises(ConfigError, match="unknown key 'trails'; did you mean 'trials'"):
        load_sweep(sweep_file("trails: 4\nparameters:\n  optimizer.lr: {uniform: [0.1, 0.2]}\n"))


def test_bad_storage_url_is_refused(sweep_file, tmp_path):
    path = sweep_file(SPACE)
    result = runner.invoke(app, ["sweep", str(path), "--storage", "mysql://x@y/z"])
    assert result.exit_code == 2
    assert "--storage: expected sqlite:///FILE or postgresql://USER@HOST/DB" in result.output


@pytest.mark.parametrize("value", [1e-06, 0.1, 3, True, "adam", [1, 28, 28], 1.5e-300])
def test_values_reach_the_config_exactly(value):
    assert yaml.safe_load(f"x: {yaml_value(value)}")["x"] == value


def test_trial_config_applies_fixed_then_params_and_caps_threads(sweep_file):
    sweep = load_sweep(sweep_file("fixed: {train.epochs: 5, train.threads: 4}\n" + SPACE))
    config = trial_config(sweep, {"optimizer.lr": 1e-06}, "t-007", threads_cap=2)
    assert (config.name, config.train.epochs, config.train.threads) == ("t-007", 5, 2)
    assert config.optimizer.args["lr"] == 1e-06  # a float, not the string '1e-06'
    assert config.optimizer.args["momentum"] == 0.9  # the base config's, untouched


def test_missing_optuna_is_one_line_naming_the_extra(sweep_file):
    path = sweep_file(SPACE)
    # Optuna made unimportable in a fresh interpreter, as on an install without the extra.
    code = (
        "import sys; sys.modules['optuna'] = None; "
        "from npnet.cli import app; app(prog_name='npnet')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "sweep", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: Optuna is not installed: pip install 'npnet[sweep]' (make venv installs it)"
    )
    assert done.stdout == ""
