"""Issue 12, configs: numbers as users type them, hostile YAML, and config mistakes that used
to surface on the first batch (or as a MemoryError). Every refusal is one line on stderr,
exit code 2, no traceback, and no run directory."""

import os
import time

import pytest
from tiny import TINY_MLP
from typer.testing import CliRunner

from npnet.cli import app
from npnet.config import load_config, parse_yaml
from npnet.config_yaml import MAX_DEPTH
from npnet.errors import ConfigError


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def refused(result, runs_dir, *fragments):
    """Exit 2, one line naming `fragments`, no traceback, no run directory."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in line, line
    assert not runs_dir.exists() or not any(runs_dir.iterdir())
    return line


# --- numbers as users type them ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1e-3", 0.001), ("1E+6", 1e6), ("+2.5e-4", 2.5e-4), ("3e4", 3e4), (".5", 0.5)],
)
def test_yaml_12_numbers_in_configs_and_overrides(write_config, text, expected):
    config = load_config(write_config(TINY_MLP.replace("lr: 0.1", f"lr: {text}")))
    assert config.optimizer.args["lr"] == expected
    assert isinstance(config.optimizer.args["lr"], float)
    overridden = load_config(write_config(TINY_MLP), [f"optimizer.lr={text}"])
    assert overridden.optimizer.args["lr"] == expected
    # Negative ones too; ints stay ints.
    assert parse_yaml(f"a: -{text.lstrip('+')}\nb: 10\nc: -3\n", "F") == {
        "a": -expected,
        "b": 10,
        "c": -3,
    }


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("optimizer.lr='1e-3'", ["'lr' must be a number, got '1e-3'", "without quotes"]),
        ("optimizer.lr=1e-3.5", ["got '1e-3.5'", "optional exponent, e.g. 0.001, 1e-3"]),
        ("optimizer.lr=1,5", ["got '1,5'", "write a plain number"]),
        ("train.epochs=1e9", ["'epochs' must be a positive int", "1000000000"]),
        ("train.batch_size=32.0", ["'batch_size' must be a positive int", ": 32)"]),
    ],
)
def test_numbers_that_still_fail_say_the_accepted_form(write_config, tmp_path, override, fragments):
    result = invoke("train", write_config(TINY_MLP), "--runs-dir", tmp_path / "runs",
                    "--set", override)  # fmt: skip
    refused(result, tmp_path / "runs", *fragments)


# --- hostile YAML ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("name: a\nname: b\n", ["line 2: duplicate key 'name' (first given at line 1)"]),
        (
            TINY_MLP.replace("optimizer: {name: sgd,", "optimizer: {name: sgd, lr: 1,"),
            ["line 9: duplicate key 'lr' (first given at line 9)"],
        ),
        (TINY_MLP + "train: {epochs: 1}\n", ["line 11: duplicate key 'train' (first given at"]),
        ("a:\n  b: 1\n  c: 2\n  b: 3\n", ["line 4: duplicate key 'b' (first given at line 2)"]),
    ],
)
def test_duplicate_keys_name_the_key_and_both_lines(write_config, tmp_path, text, fragments):
    refused(invoke("check", write_config(text)), tmp_path / "runs", *fragments)


def test_a_merge_key_may_be_overridden(write_config):
    assert parse_yaml("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  x: 3\n", "F")["c"] == {
        "x": 3,
        "y": 2,
    }


def billion_laughs(levels: int) -> str:
    lines = ["a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]"]
    for level in range(1, levels):
        previous, name = chr(ord("a") + level - 1), chr(ord("a") + level)
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    return "\n".join(lines) + "\nname: x\nmodel: {layers: [flatten]}\n"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a: " + "[" * 1000 + "]" * 1000 + "\n", f"nested deeper than {MAX_DEPTH} levels"),
        ("a: " + "{b: " * 500 + "1" + "}" * 500 + "\n", "nested deeper than"),
        (billion_laughs(9), "the aliases expand to more than 100,000 values"),
        ("a: &x [1, *x]\n", "an alias refers to a node that contains it"),
    ],
    ids=["deep-lists", "deep-maps", "billion-laughs", "recursive-alias"],
)
def test_hostile_yaml_is_refused_quickly(write_config, tmp_path, text, fragment):
    start = time.perf_counter()
    line = refused(invoke("check", write_config(text)), tmp_path / "runs", fragment)
    assert time.perf_counter() - start < 5
    assert len(line) < 300


def test_a_large_expanded_value_is_shown_abbreviated(write_config, tmp_path):
    # About 7,400 values where a shape belongs: under the bound, far too many to print.
    nine = lambda name: "[" + ", ".join([f"*{name}"] * 9) + "]"  # noqa: E731
    shape = f"[&a [1, 2, 3, 4, 5, 6, 7, 8, 9], &b {nine('a')}, &c {nine('b')}, {nine('c')}]"
    text = f"name: x\nmodel:\n  input_shape: {shape}\n  layers: [flatten]\n"
    start = time.perf_counter()
    line = refused(invoke("check", write_config(text)), tmp_path / "runs", "model.input_shape")
    assert time.perf_counter() - start < 5
    assert len(line) < 400 and "..." in line


@pytest.mark.parametrize("kind", ["dev-zero", "directory", "symlink-loop", "name-too-long"])
def test_unreadable_config_paths_are_one_line(tmp_path, kind):
    if kind == "dev-zero":
        path = "/dev/zero"
    elif kind == "directory":
        path = tmp_path
    elif kind == "symlink-loop":
        path = tmp_path / "loop.yaml"
        os.symlink(path, path)
    else:
        path = tmp_path / ("x" * 300 + ".yaml")
    result = invoke("train", path, "--runs-dir", tmp_path / "runs")
    refused(result, tmp_path / "runs", f"{path}: ")


# --- mistakes found at build time, before a run directory exists ---------------------------

MNIST_LIKE_LAYERS = "[{conv2d: {filters: 2, kernel: 3}}, relu, flatten, {dense: {units: 10}}]"


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        (
            ["model.layers[3].dense.units=3"],
            ["model.layers[3] (dense): the network gives 3 outputs", "digits has 10 classes"],
        ),
        (
            ["model.layers=[flatten]"],
            ["model.layers[0] (flatten): the network gives 64 outputs", "10 classes"],
        ),
        (
            ["model.layers=[{conv2d: {filters: 10, kernel: 8}}]"],
            ["the network gives outputs of shape (10, 1, 1)", "10 classes"],
        ),
        (
            ["data.dataset=linear", "data.validation=20", "model.layers[3].dense.units=2"],
            ["the network gives 2 outputs per sample, but the linear targets have shape (1,)"],
        ),
        (
            ["data.dataset=linear", "data.validation=20", "model.layers[3].dense.units=1"],
            ["loss: softmax_cross_entropy does not fit linear's regression targets"],
        ),
        (
            [
                "data.dataset=linear",
                "data.validation=20",
                "model.layers[3].dense.units=1",
                "loss=hinge",
            ],
            ["loss: hinge does not fit linear's regression targets"],
        ),
        (
            [
                "model.layers=[flatten, {dense: {units: 8}}, batch_norm, {dense: {units: 10}}]",
                "data.validation=156",
                "train.batch_size=64",
            ],
            ["train.batch_size: 64 leaves a last batch of 1 sample of the 1281", "batch_norm"],
        ),
        (
            [
                "model.layers=[flatten, {dense: {units: 8}}, batch_norm, {dense: {units: 10}}]",
                "train.batch_size=1",
            ],
            ["train.batch_size: the network cannot train on batches of 1 sample"],
        ),
        (
            ["model.layers[1].dense.units=10000000"],
            ["model: needs about", "750,000,010 parameters", "GiB is available"],
        ),
        (
            [
                "model.layers=[{conv2d: {filters: 1000000000, kernel: 3}}, flatten, "
                "{dense: {units: 10}}]"
            ],
            ["model: needs about", "of memory", "available"],
        ),
        (
            [
                "model.layers="
                + MNIST_LIKE_LAYERS.replace("kernel: 3", "kernel: 3, padding: 100000")
            ],
            ["model: needs about", "GiB of activations for an evaluation batch of 1000"],
        ),
        (["data.validation=5000"], ["data: 'validation' must leave training examples: 5000"]),
        (["data.train_size=5000"], ["data: 'train_size' must be at most 1237"]),
        (["data.dataset=mnist", "data.root=[1]"], ["data: 'root' must be a directory path"]),
    ],
)
def test_config_mistakes_are_refused_at_build_time(write_config, tmp_path, overrides, fragments):
    args = ["train", write_config(TINY_MLP), "--runs-dir", tmp_path / "runs"]
    for override in overrides:
        args += ["--set", override]
    line = refused(invoke(*args), tmp_path / "runs", *fragments)
    assert line.startswith(f"error: {tmp_path / 'config.yaml'}: ")
    # `npnet check` refuses the same config with the same line: it accepts what trains.
    check = ["check", write_config(TINY_MLP)] + [a for o in overrides for a in ("--set", o)]
    # (The memory available may change between the two.)
    assert refused(invoke(*check), tmp_path / "runs").split(", but ")[0] == line.split(", but ")[0]


@pytest.mark.parametrize("loss", ["mse", "mae", "huber", "binary_cross_entropy"])
def test_value_losses_train_a_classifier_on_integer_labels(write_config, tmp_path, loss):
    text = TINY_MLP.replace("epochs: 3", "epochs: 1")
    result = invoke("train", write_config(text), "--runs-dir", tmp_path / "runs",
                    "--set", f"loss={loss}")  # fmt: skip
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (run_dir / "weights.npz").is_file()


def test_a_dry_step_leaves_the_network_as_built(write_config):
    # Batch norm's running statistics and dropout's random stream are restored after it.
    from npnet.engine.experiment import build_dataset, build_network, random_streams
    from npnet.engine.preflight import dry_step
    from npnet.registry import LOSSES

    text = TINY_MLP.replace("- relu", "- batch_norm\n    - relu\n    - dropout: {rate: 0.5}")
    config = load_config(write_config(text))
    dataset = build_dataset(config)
    net = build_network(config, dataset, random_streams(config.seed)[0])
    before = {k: v.copy() for k, v in net.state().items()}
    rng = next(layer.rng for layer in net.layers if layer.name == "dropout")
    draw_state = rng.bit_generator.state
    dry_step(config, dataset, net, LOSSES.build("softmax_cross_entropy"))
    for key, value in net.state().items():
        assert (value == before[key]).all(), key
    assert rng.bit_generator.state == draw_state


def test_a_run_name_too_long_for_the_file_system(write_config, tmp_path):
    text = TINY_MLP.replace("name: tiny", "name: " + "n" * 300)
    line = refused(
        invoke("train", write_config(text), "--runs-dir", tmp_path / "runs"), tmp_path / "runs"
    )
    assert "cannot create the run directory (File name too long)" in line


@pytest.mark.parametrize("samples", ["-3", "0"])
def test_gradcheck_samples_must_be_positive(write_config, tmp_path, samples):
    result = invoke("gradcheck", write_config(TINY_MLP), "--samples", samples)
    refused(result, tmp_path / "runs", f"'--samples' must be a positive int, got {samples}")


def test_config_error_class_is_raised_by_the_library(write_config):
    with pytest.raises(ConfigError, match="duplicate key 'seed'"):
        load_config(write_config("name: a\nseed: 1\nseed: 2\nmodel: {layers: [flatten]}\n"))
