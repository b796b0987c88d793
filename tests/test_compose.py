"""Config composition: extends chains, deep merge, overrides:, several files, --set order,
errors naming the file that set the key, and the resolved config a run keeps."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from tiny import TINY_MLP as TINY
from typer.testing import CliRunner

from npnet.cli import app
from npnet.compose import attribute, merge, origin_of
from npnet.config import load_config, to_dict
from npnet.engine.loop import fit
from npnet.engine.runs import read_config
from npnet.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ---- merge semantics -----------------------------------------------------------------------


def test_mappings_merge_lists_and_scalars_replace():
    base = {"a": {"x": 1, "y": [1, 2, 3]}, "b": 2, "c": {"deep": {"k": 1, "j": 2}}}
    over = {"a": {"y": [9]}, "b": {"now": "a mapping"}, "c": {"deep": {"j": 3}}, "d": None}
    origins = {}
    merged = merge(base, over, "over.yaml", origins)
    assert merged == {
        "a": {"x": 1, "y": [9]},
        "b": {"now": "a mapping"},
        "c": {"deep": {"k": 1, "j": 3}},
        "d": None,
    }
    assert base["a"]["y"] == [1, 2, 3] and over["a"]["y"] == [9]  # inputs untouched
    merged["a"]["y"].append(10)
    assert over["a"]["y"] == [9]  # no shared containers either


def test_a_component_name_merges_like_a_mapping():
    merged = merge({"optimizer": "adam"}, {"optimizer": {"lr": 0.5}}, "f", {})
    assert merged == {"optimizer": {"name": "adam", "lr": 0.5}}


def test_a_component_that_changes_its_name_is_replaced_whole():
    base = {"optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9}, "data": {"dataset": "a"}}
    over = {"optimizer": {"name": "adam", "lr": 0.001}, "data": {"dataset": "b"}}
    merged = merge(base, over, "f", {})
    assert merged["optimizer"] == {"name": "adam", "lr": 0.001}  # no sgd momentum left
    assert merge(base, {"optimizer": {"name": "sgd"}}, "f", {})["optimizer"]["momentum"] == 0.9
    assert merge({"loss": "mse"}, {"loss": {"name": "huber", "delta": 2}}, "f", {}) == {
        "loss": {"name": "huber", "delta": 2}
    }


def test_overrides_replace_a_mapping_whole(tmp_path):
    write(tmp_path, "tiny.yaml", TINY)
    top = write(
        tmp_path, "top.yaml", "extends: tiny.yaml\noverrides:\n  optimizer: {name: sgd, lr: 0.5}\n"
    )
    assert load_config(top).optimizer.args == {"lr": 0.5}


def test_origins_follow_the_last_writer():
    origins = {}
    raw = merge({}, {"a": {"x": 1, "y": [1, 2]}}, "base", origins)
    raw = merge(raw, {"a": {"y": [3]}}, "top", origins)
    assert origin_of(["a", "x"], origins) == "base"
    assert origin_of(["a", "y"], origins) == "top"
    assert origin_of(["a", "y", 0, "deeper"], origins) == "top"  # longest recorded prefix
    assert origin_of(["nothing"], origins) is None


def test_attribution_reads_the_key_from_the_message():
    origins = {("optimizer",): "base.yaml", ("optimizer", "lr"): "top.yaml"}
    fallback = "last.yaml"
    assert (
        attribute(
            "<composed config>: optimizer: 'lr' must be in (0, inf], got -1", origins, fallback
        )
        == "top.yaml: optimizer: 'lr' must be in (0, inf], got -1"
    )
    assert (
        attribute("<composed config>: optimizer: unknown optimizer 'x'", origins, fallback)
        == "base.yaml: optimizer: unknown optimizer 'x'"
    )
    assert (
        attribute("<composed config>: missing required key 'name'", origins, fallback)
        == "last.yaml: missing required key 'name'"
    )
    assert attribute("other.yaml: untouched", origins, fallback) == "other.yaml: untouched"


# ---- extends chains ------------------------------------------------------------------------


def test_extends_chain_relative_to_each_file(tmp_path):
    write(tmp_path, "base/tiny.yaml", TINY)
    write(
        tmp_path,
        "base/small-lr.yaml",
        "extends: tiny.yaml\noptimizer: {lr: 0.01}\ntrain: {epochs: 1}\n",
    )
    top = write(
        tmp_path,
        "variants/deeper.yaml",
        "extends: ../base/small-lr.yaml\nname: deeper\n"
        "overrides:\n  model.layers[2]: tanh\n  model.layers[1].dense.units: 16\n",
    )
    config = load_config(top)
    assert config.name == "deeper" and config.source == str(top)
    assert config.optimizer.name == "sgd"
    assert config.optimizer.args == {"lr": 0.01, "momentum": 0.9}  # merged key by key
    assert config.train.epochs == 1 and config.train.batch_size == 32
    assert config.model.layers == [
        {"flatten": {}},
        {"dense": {"units": 16}},
        {"tanh": {}},
        {"dense": {"units": 10}},
    ]
    assert config.data.dataset == "digits" and config.data.validation == 200


def test_a_layer_list_is_replaced_whole(tmp_path):
    write(tmp_path, "tiny.yaml", TINY)
    top = write(
        tmp_path,
        "top.yaml",
        "extends: tiny.yaml\nmodel:\n  layers: [flatten, {dense: {units: 10}}]\n",
    )
    assert load_config(top).model.layers == [{"flatten": {}}, {"dense": {"units": 10}}]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.yaml": "extends: a.yaml\n"}, "a.yaml: extends: a cycle of configs: "),
        (
            {
                "a.yaml": "extends: b.yaml\n",
                "b.yaml": "extends: c.yaml\n",
                "c.yaml": "extends: a.yaml\n",
            },
            "c.yaml: extends: a cycle of configs: ",
        ),
    ],
)
def test_cycles_are_refused(tmp_path, files, message):
    for name, text in files.items():
        write(tmp_path, name, text)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "a.yaml")
    assert str(caught.value).startswith(str(tmp_path / message.split(":")[0]) + message[6:])
    chain = str(caught.value).split("a cycle of configs: ")[1].split(" -> ")
    assert chain[0] == chain[-1] == str((tmp_path / "a.yaml").resolve())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "extends: nowhere.yaml\n",
            "top.yaml: extends: no such config file 'nowhere.yaml' (looked for ",
        ),
        (
            "extends: [a, b]\n",
            "top.yaml: extends: expected the path of a config file, got ['a', 'b']",
        ),
        (
            "extends: tiny.yaml\noverrides: [optimizer.lr]\n",
            "top.yaml: overrides: expected a mapping",
        ),
        (
            "extends: tiny.yaml\noverrides: {'model.layers[9]': relu}\n",
            "top.yaml: overrides: 'model.layers[9]': 'model.layers[9]' does not exist",
        ),
        (
            "extends: tiny.yaml\noverrides: {'optimizer..lr': 1}\n",
            "top.yaml: overrides: 'optimizer..lr': 'optimizer..lr' is not a key path",
        ),
    ],
)
def test_composition_mistakes_name_the_file(tmp_path, text, message):
    write(tmp_path, "tiny.yaml", TINY)
    top = write(tmp_path, "top.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_config(top)
    assert str(caught.value).startswith(str(tmp_path / message))


# ---- several files, then --set ---------------------------------------------------------------


def test_several_files_left_to_right_then_set(tmp_path):
    base = write(tmp_path, "base.yaml", TINY)
    lr = write(tmp_path, "lr.yaml", "optimizer: {lr: 0.02}\ntrain: {epochs: 2}\n")
    more = write(
        tmp_path, "more.yaml", "optimizer: {lr: 0.03}\noverrides: {'model.layers[2]': tanh}\n"
    )
    config = load_config([base, lr, more], ["train.epochs=5"])
    assert config.optimizer.args == {"lr": 0.03, "momentum": 0.9}
    assert config.train.epochs == 5  # --set comes last
    assert config.model.layers[2] == {"tanh": {}}  # overrides: of a later file see the earlier
    assert config.source == str(more)
    assert load_config([base, more, lr]).optimizer.args["lr"] == 0.02


def test_a_later_file_with_extends_lies_over_the_earlier_ones(tmp_path):
    base = write(tmp_path, "base.yaml", TINY)
    write(tmp_path, "parent.yaml", "train: {epochs: 7}\n")
    child = write(tmp_path, "child.yaml", "extends: parent.yaml\nname: child\n")
    config = load_config([base, child])
    assert (config.name, config.train.epochs, config.train.batch_size) == ("child", 7, 32)


def test_validation_errors_name_the_file_that_set_the_key(tmp_path):
    base = write(tmp_path, "base.yaml", TINY)
    bad_lr = write(tmp_path, "bad-lr.yaml", "extends: base.yaml\noptimizer: {lr: -1}\n")
    top = write(tmp_path, "top.yaml", "extends: bad-lr.yaml\ntrain: {epochs: 2}\n")
    with pytest.raises(ConfigError, match=rf"^{bad_lr}: optimizer: 'lr' must be in \(0, inf\]"):
        load_config(top)
    typo = write(tmp_path, "typo.yaml", "extends: base.yaml\ntrain: {epoch: 2}\n")
    with pytest.raises(ConfigError, match=rf"^{typo}: train: unknown key 'epoch'"):
        load_config([typo, write(tmp_path, "fine.yaml", "seed: 3\n")])
    via_override = write(tmp_path, "ov.yaml", "overrides: {'model.layers[1].dense.units': 0}\n")
    with pytest.raises(ConfigError, match=rf"^{via_override}: model.layers\[1\].dense: 'units'"):
        load_config([base, via_override, write(tmp_path, "later.yaml", "seed: 1\n")])
    # A key the base set and nobody changed is the base's.
    broken_base = write(tmp_path, "broken.yaml", TINY.replace("sgd", "sgdd"))
    child = write(tmp_path, "child.yaml", "extends: broken.yaml\nseed: 1\n")
    with pytest.raises(ConfigError, match=rf"^{broken_base}: optimizer: unknown optimizer 'sgdd'"):
        load_config(child)


def test_cli_train_takes_several_files_and_errors_name_the_file(tmp_path):
    base = write(tmp_path, "base.yaml", TINY)
    bad = write(tmp_path, "bad.yaml", "model:\n  layers: [flatten, {dense: {units: 0}}]\n")
    result = runner.invoke(
        app, ["train", str(base), str(bad), "--runs-dir", str(tmp_path / "runs")]
    )
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {bad}: model.layers[1].dense: 'units' must be a positive int, got 0\n"
    )
    assert not (tmp_path / "runs").exists()


# ---- the run keeps the resolved config -------------------------------------------------------


def test_the_runs_config_yaml_alone_reproduces_the_run(tmp_path):
    write(tmp_path, "base.yaml", TINY)
    variant = write(
        tmp_path,
        "variant.yaml",
        "extends: base.yaml\nname: variant\noverrides:\n  model.layers[2]: tanh\n",
    )
    faster = write(tmp_path, "faster.yaml", "optimizer: {lr: 0.05}\n")
    runs = tmp_path / "runs"
    result = runner.invoke(
        app,
        ["train", str(variant), str(faster), "--set", "train.epochs=2", "--runs-dir", str(runs)],
    )
    assert result.exit_code == 0, result.output
    (run_dir,) = runs.iterdir()
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert "extends" not in saved and "overrides" not in saved
    assert saved["name"] == "variant" and saved["optimizer"]["lr"] == 0.05
    assert saved["model"]["layers"][2] == {"tanh": {}} and saved["train"]["epochs"] == 2
    # Rebuilt from config.yaml alone, elsewhere: the same run, bit for bit.
    alone = tmp_path / "alone" / "config.yaml"
    alone.parent.mkdir()
    alone.write_text((run_dir / "config.yaml").read_text())
    assert to_dict(load_config(alone)) == to_dict(read_config(run_dir))
    again_dir, _ = fit(load_config(alone), tmp_path / "again")
    assert (again_dir / "metrics.csv").read_text().split("seconds")[0] == (
        run_dir / "metrics.csv"
    ).read_text().split("seconds")[0]
    first = json.loads((run_dir / "summary.json").read_text())
    second = json.loads((again_dir / "summary.json").read_text())
    assert first["test_loss"] == second["test_loss"]
    with np.load(run_dir / "weights.npz") as a, np.load(again_dir / "weights.npz") as b:
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])


# ---- the shipped configs ---------------------------------------------------------------------


# Every shipped config; the sweep files in configs/sweeps/ are not configs (they name one).
SHIPPED = sorted(p for p in (ROOT / "configs").rglob("*.yaml") if p.parent.name != "sweeps")


def test_shipped_configs_resolve_to_what_they_were():
    """Configs that now extend others resolve to exactly the configs they were before
    (tests/data/shipped_configs_resolved.json, written from the files before composition;
    regenerate it deliberately when a shipped config changes on purpose)."""
    expected = json.loads((ROOT / "tests/data/shipped_configs_resolved.json").read_text())
    top_level = sorted(p.name for p in (ROOT / "configs").glob("*.yaml"))
    assert sorted(expected) == top_level
    extending = [name for name in top_level if "extends:" in (ROOT / "configs" / name).read_text()]
    assert {"ch23-mini-batch.yaml", "ch41-deep-sigmoid.yaml", "ch44-regularized.yaml"} <= set(
        extending
    )
    for name in top_level:
        assert to_dict(load_config(ROOT / "configs" / name)) == expected[name], name


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT / "configs")))
def test_every_shipped_config_loads(path):
    config = load_config(path)
    assert config.name
