"""Every class of user mistake, through the CLI: one exact line on stderr, exit code 2, no
traceback, and nothing written."""

import pytest
from typer.testing import CliRunner

from npnet.cli import app

GOOD = """\
name: tiny
data: {dataset: digits, validation: 100, normalize: scale}
model:
  layers:
    - conv2d: {filters: 2, kernel: 3}
    - relu
    - dropout: {rate: 0.1}
    - flatten
    - dense: {units: 10}
optimizer: {name: sgd, lr: 0.1}
train: {epochs: 1, batch_size: 32}
"""

CASES = [
    (
        "unknown key",
        GOOD.replace("filters: 2", "filter: 2"),
        [],
        "FILE: model.layers[0].conv2d: unknown key 'filter'; did you mean 'filters'? "
        "(valid keys for layer 'conv2d': filters, kernel, stride, padding, use_bias, init, "
        "bias_init)",
    ),
    (
        "unknown layer",
        GOOD.replace("- flatten", "- flaten"),
        [],
        "FILE: model.layers[3]: unknown layer 'flaten'; did you mean 'flatten'? (choices: "
        "avg_pool2d, batch_norm, conv2d, dense, dropout, elu, flatten, gelu, identity, "
        "leaky_relu, max_pool2d, relu, sigmoid, softmax, tanh)",
    ),
    (
        "unknown optimizer",
        GOOD.replace("name: sgd", "name: adamm"),
        [],
        "FILE: optimizer: unknown optimizer 'adamm'; did you mean 'adam'? (choices: adagrad, "
        "adam, adamw, momentum, nesterov, rmsprop, sgd)",
    ),
    (
        "wrong type",
        GOOD.replace("units: 10", "units: ten"),
        [],
        "FILE: model.layers[4].dense: 'units' must be a positive int, got 'ten'",
    ),
    (
        "negative learning rate",
        GOOD.replace("lr: 0.1", "lr: -0.1"),
        [],
        "FILE: optimizer: 'lr' must be in (0, inf], got -0.1",
    ),
    (
        "dropout rate of 1",
        GOOD.replace("rate: 0.1", "rate: 1.0"),
        [],
        "FILE: model.layers[2].dropout: 'rate' must be in [0, 1), got 1.0",
    ),
    (
        "zero batch size",
        GOOD.replace("batch_size: 32", "batch_size: 0"),
        [],
        "FILE: train.batch_size: 'batch_size' must be a positive int, got 0",
    ),
    (
        "dense after conv without flatten",
        GOOD.replace("    - flatten\n", ""),
        [],
        "FILE: model.layers[3] (dense): dense expects a flat input (features,), got (2, 6, 6); "
        "add a flatten layer before it",
    ),
    (
        "kernel larger than its input",
        GOOD.replace("kernel: 3", "kernel: 9"),
        [],
        "FILE: model.layers[0] (conv2d): kernel 9x9 is larger than the padded input 8x8",
    ),
    (
        "malformed YAML",
        GOOD.replace("layers:\n", "layers: [\n", 1),
        [],
        "FILE: invalid YAML: line 5, column 5: expected the node content, but found '-'",
    ),
    ("empty file", "", [], "FILE: the config is empty; start from configs/cnn.yaml"),
    (
        "bad override value",
        GOOD,
        ["--set", "train.epochs=0"],
        "FILE: train.epochs: 'epochs' must be a positive int, got 0",
    ),
    (
        "override of a missing list entry",
        GOOD,
        ["--set", "model.layers[9].dense.units=3"],
        "FILE: --set 'model.layers[9].dense.units=3': 'model.layers[9]' does not exist",
    ),
    (
        "zero threads",
        GOOD.replace("batch_size: 32", "batch_size: 32, threads: 0"),
        [],
        "FILE: train.threads: 'threads' must be a positive int or auto, got 0",
    ),
    (
        "override without a value",
        GOOD,
        ["--set", "optimizer.lr"],
        "FILE: --set 'optimizer.lr': expected KEY=VALUE, e.g. optimizer.lr=0.01",
    ),
]


@pytest.mark.parametrize(
    ("text", "extra", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
@pytest.mark.parametrize("command", ["train", "check"])
def test_config_mistake(tmp_path, command, text, extra, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    runs_dir = tmp_path / "runs"
    args = [command, str(path), *extra]
    if command == "train":
        args += ["--runs-dir", str(runs_dir)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: {expected.replace('FILE', str(path))}\n"
    assert "Traceback" not in result.output
    assert not runs_dir.exists()


def test_runs_dir_that_is_a_file(tmp_path):
    config = tmp_path / "good.yaml"
    config.write_text(GOOD)
    blocker = tmp_path / "runs"
    blocker.write_text("not a directory")
    result = CliRunner().invoke(app, ["train", str(config), "--runs-dir", str(blocker)])
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: {blocker}: cannot create the runs directory (File exists)\n"
    assert blocker.read_text() == "not a directory"


def test_resume_needs_a_checkpoint(tmp_path):
    (tmp_path / "run").mkdir()
    result = CliRunner().invoke(app, ["train", "--resume", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "no config.yaml" in result.stderr
