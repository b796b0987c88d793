"""Config loading: valid configs load and round-trip; every mistake names file, key and fix."""

from pathlib import Path

import pytest
import yaml
from tiny import TINY_MLP as TINY

from npnet.config import config_from_dict, load_config, to_dict
from npnet.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


# configs/sweeps/ holds sweep files (npnet sweep), which name a config rather than being one.
SHIPPED = sorted(p for p in CONFIGS.rglob("*.yaml") if p.parent.name != "sweeps")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    config = load_config(path)
    assert config.name
    assert config.model.layers


def test_defaults_are_filled_in(write_config):
    config = load_config(write_config(TINY))
    assert config.seed == 0
    assert config.loss.name == "softmax_cross_entropy"
    assert config.schedule.name == "constant"
    assert config.regularization.l2 == 0.0
    assert config.train.shuffle is True
    assert config.model.layers[0] == {"flatten": {}}
    assert config.model.layers[1] == {"dense": {"units": 32}}


def test_resolved_config_round_trips(write_config):
    config = load_config(write_config(TINY), ["optimizer.lr=0.5", "seed=7"])
    again = config_from_dict(yaml.safe_load(yaml.safe_dump(to_dict(config))))
    assert again == config
    assert again.optimizer.args["lr"] == 0.5
    assert again.seed == 7


def test_overrides_reach_nested_keys_and_lists(write_config):
    config = load_config(
        write_config(TINY),
        ["model.layers[1].dense.units=64", "train.epochs=5", "data.normalize=standard"],
    )
    assert config.model.layers[1] == {"dense": {"units": 64}}
    assert config.train.epochs == 5
    assert config.data.normalize == "standard"


def test_override_turns_a_component_name_into_a_mapping(write_config):
    config = load_config(write_config(TINY + "loss: mse\n"), ["loss.name=softmax_cross_entropy"])
    assert config.loss.name == "softmax_cross_entropy"


def error_of(write_config, text, overrides=None):
    path = write_config(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    return str(info.value).replace(str(path), "FILE")


def test_unknown_layer_name_suggests_the_closest(write_config):
    message = error_of(write_config, TINY.replace("- relu", "- rellu"))
    assert message.startswith("FILE: model.layers[2]: unknown layer 'rellu'; did you mean 'relu'?")
    assert "choices:" in message


def test_unknown_layer_key_names_the_path(write_config):
    message = error_of(write_config, TINY.replace("{units: 32}", "{unit: 32}"))
    assert message.startswith(
        "FILE: model.layers[1].dense: unknown key 'unit'; did you mean 'units'?"
    )


def test_unknown_top_level_key(write_config):
    message = error_of(write_config, TINY + "optimiser: {name: adam}\n")
    assert message.startswith("FILE: unknown key 'optimiser'; did you mean 'optimizer'?")


def test_wrong_type_and_out_of_range_values(write_config):
    assert error_of(write_config, TINY.replace("epochs: 3", "epochs: two")) == (
        "FILE: train.epochs: 'epochs' must be a positive int, got 'two'"
    )
    assert error_of(write_config, TINY.replace("batch_size: 32", "batch_size: 0")) == (
        "FILE: train.batch_size: 'batch_size' must be a positive int, got 0"
    )
    assert "optimizer: " in error_of(write_config, TINY.replace("lr: 0.1", "lr: -1"))
    assert error_of(write_config, TINY.replace("normalize: scale", "normalize: scaled")).startswith(
        "FILE: data.normalize: 'normalize' must be one of none, scale, standard, got 'scaled'; "
        "did you mean 'scale'?"
    )


def test_malformed_yaml_gives_line_and_column(write_config):
    message = error_of(write_config, "name: x\nmodel: [flatten\n")
    assert message.startswith("FILE: invalid YAML: line ")
    assert "column" in message


def test_empty_and_non_mapping_files(write_config):
    assert "the config is empty" in error_of(write_config, "")
    assert "must be a mapping" in error_of(write_config, "- a\n- b\n")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: no such config file"):
        load_config(tmp_path / "nope.yaml")


def test_bad_overrides(write_config):
    assert "expected KEY=VALUE" in error_of(write_config, TINY, ["optimizer.lr"])
    assert "does not exist" in error_of(write_config, TINY, ["model.layers[9].dense.units=3"])
    message = error_of(write_config, TINY, ["optimizer.lrr=0.1"])
    assert message.startswith("FILE: optimizer: unknown key 'lrr'; did you mean 'lr'?")


def test_dataset_options_are_checked_against_the_dataset(write_config):
    text = TINY.replace("dataset: digits", "dataset: mnist, rot: data")
    message = error_of(write_config, text)
    assert message.startswith("FILE: data: unknown key 'rot'; did you mean 'root'?")
