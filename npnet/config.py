"""Experiment configs: YAML in, validated dataclasses out.

Every mistake is a `ConfigError` naming the file and the key path, e.g.

    configs/cnn.yaml: model.layers[3].conv2d: unknown key 'filter'; did you mean 'filters'?

Components (layers, loss, optimizer, schedule) are constructed once while loading, so their
own argument checks run before any data is read. `to_dict` gives the fully resolved config
(defaults, overrides and seed included) that a run directory keeps, and loading that dict
again gives the same config.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import yaml

from npnet.compose import (
    PLACEHOLDER,
    attribute,
    compose_files,
    parse_key,
    record,
    set_path,
)
from npnet.config_schema import (
    DATA_KEYS,
    NORMALIZATIONS,
    TOP_LEVEL_KEYS,
    Component,
    Config,
    DataConfig,
    ModelConfig,
    RegularizationConfig,
    TrainConfig,
    default,
)
from npnet.config_yaml import load_yaml
from npnet.errors import ConfigError, shown
from npnet.files import read_text_bounded
from npnet.registry import DATASETS, LAYERS, LOSSES, OPTIMIZERS, SCHEDULES, Registry, did_you_mean
from npnet.validate import boolean, non_negative_int, number, one_of, positive_int


def load_config(
    paths: str | Path | Sequence[str | Path], overrides: list[str] | None = None
) -> Config:
    """Read and compose the YAML config(s) at `paths` (`extends:` chains, `overrides:`,
    several files laid over each other left to right: see `npnet.compose`), override
    (`["optimizer.lr=0.01", ...]`) and validate. Errors name the file that set the key."""
    files = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    if not files:
        raise ConfigError("give at least one config file")
    raw, origins = compose_files(files, read_config_file)
    source = str(files[-1])  # --set belongs to the command line; its errors name this file
    for override in overrides or []:
        apply_override(raw, override, source)
        record(origins, parse_key(override.split("=", 1)[0], source), source)
    try:
        config = config_from_dict(raw, PLACEHOLDER)
    except ConfigError as error:
        raise ConfigError(attribute(str(error), origins, source)) from None
    config.source = source
    return config


def read_config_file(path: Path) -> dict[str, Any]:
    """The raw mapping of one YAML config file."""
    source = str(path)
    try:
        text = read_text_bounded(path, CONFIG_LIMIT)
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such config file") from None
    except OSError as error:
        raise ConfigError(f"{source}: cannot read the config ({error.strerror or error})") from None
    except ValueError as error:
        raise ConfigError(f"{source}: cannot read the config ({error})") from None
    return parse_yaml(text, source)


# A config is a page of YAML; the bound keeps /dev/zero or a huge file from filling memory.
CONFIG_LIMIT = 1 << 20


def parse_yaml(text: str, source: str) -> dict[str, Any]:
    """The config mapping in `text`, read as `npnet.config_yaml` does (YAML 1.2 numbers, no
    duplicate keys, bounded nesting and expansion)."""
    raw = load_yaml(text, source)
    if raw is None:
        raise ConfigError(f"{source}: the config is empty; start from configs/cnn.yaml")
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: the config must be a mapping of keys, got {type(raw).__name__}"
        )
    return raw


def apply_override(raw: dict[str, Any], override: str, source: str) -> None:
    """Set `KEY=VALUE` in the raw config; KEY is a dotted path (`model.layers[0].dense.units`),
    VALUE is parsed as YAML (`0.01`, `true`, `[1, 28, 28]`). Missing mappings are created so
    that e.g. `schedule.name=cosine` works on a config without a schedule."""
    where = f"{source}: --set {shown(override)}"
    if "=" not in override:
        raise ConfigError(f"{where}: expected KEY=VALUE, e.g. optimizer.lr=0.01")
    key, text = override.split("=", 1)
    steps = parse_key(key, where)
    try:
        value = load_yaml(text, f"the value {shown(text)}")
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None
    set_path(raw, steps, value, where)


class Checker:
    """Validates one raw config, prefixing every error with the file and the key path."""

    def __init__(self, source: str):
        self.source = source

    def error(self, path: str, message: str) -> ConfigError:
        return ConfigError(
            f"{self.source}: {path}: {message}" if path else f"{self.source}: {message}"
        )

    def mapping(self, value: Any, path: str, allowed: list[str]) -> dict[str, Any]:
        """`value` as a dict (None counts as empty) whose keys are all in `allowed`."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(path, f"expected a mapping of keys, got {shown(value)}")
        for key in value:
            if key not in allowed:
                hint = did_you_mean(str(key), allowed)
                raise self.error(
                    path, f"unknown key {shown(key)}{hint} (valid keys: {', '.join(allowed)})"
                )
        return value

    def check(self, path: str, check: Any, *args: Any, **kwargs: Any) -> Any:
        """Run an npnet.validate check, re-raising its error with the file and path in front."""
        try:
            return check(*args, **kwargs)
        except ConfigError as error:
            raise self.error(path, str(error)) from None

    def component(self, value: Any, path: str, registry: Registry) -> Component:
        """`adam` or `{name: adam, lr: 0.001}`, constructed once so its arguments are checked."""
        if isinstance(value, str):
            name, args = value, {}
        elif isinstance(value, dict):
            if "name" not in value:
                raise self.error(path, f"missing 'name' (choices: {', '.join(registry.names())})")
            args = {k: v for k, v in value.items() if k != "name"}
            name = value["name"]
        else:
            raise self.error(path, f"expected a {registry.kind} name or a mapping with 'name'")
        self.check(path, registry.build, name, args)
        return Component(name, args)

    def early_stopping(self, value: Any, path: str) -> dict[str, Any]:
        """`{patience: 3}` filled in to `{metric: val_loss, patience: 3, min_delta: 0.0}`."""
        raw = self.mapping(value, path, ["metric", "patience", "min_delta"])
        if "patience" not in raw:
            raise self.error(path, "missing required key 'patience' (epochs without improvement)")
        metric = raw.get("metric", "val_loss")
        return {
            "metric": self.check(
                f"{path}.metric", one_of, "metric", metric, ["val_loss", "val_accuracy"]
            ),
            "patience": self.check(f"{path}.patience", positive_int, "patience", raw["patience"]),
            "min_delta": self.check(
                f"{path}.min_delta", number, "min_delta", raw.get("min_delta", 0.0), low=0
            ),
        }

    def augment(self, value: Any, path: str) -> dict[str, Any] | None:
        """`{shift: 2, elastic: {sigma: 4}}` filled in to all four keys (0 / None: off)."""
        if value is None:
            return None
        raw = self.mapping(value, path, ["shift", "rotate", "scale", "elastic"])
        resolved: dict[str, Any] = {
            "shift": self.check(f"{path}.shift", number, "shift", raw.get("shift", 0.0), low=0),
            "rotate": self.check(
                f"{path}.rotate", number, "rotate", raw.get("rotate", 0.0), low=0, high=180
            ),
            "scale": self.check(
                f"{path}.scale",
                number,
                "scale",
                raw.get("scale", 0.0),
                low=0,
                high=1,
                high_open=True,
            ),
            "elastic": None,
        }
        if raw.get("elastic") is not None:
            elastic = self.mapping(raw["elastic"], f"{path}.elastic", ["sigma", "alpha"])
            resolved["elastic"] = {
                "sigma": self.check(
                    f"{path}.elastic.sigma",
                    number,
                    "sigma",
                    elastic.get("sigma", 4.0),
                    low=0,
                    low_open=True,
                ),
                "alpha": self.check(
                    f"{path}.elastic.alpha", number, "alpha", elastic.get("alpha", 34.0), low=0
                ),
            }
        return resolved

    def layers(self, value: Any, path: str) -> list[dict[str, dict[str, Any]]]:
        """`[relu, {dense: {units: 10}}, ...]` as `[{"relu": {}}, {"dense": {"units": 10}}]`."""
        if not isinstance(value, list) or not value:
            raise self.error(
                path, "expected a non-empty list of layers, e.g. [flatten, {dense: {units: 10}}]"
            )
        layers = []
        for index, entry in enumerate(value):
            where = f"{path}[{index}]"
            if isinstance(entry, str):
                name, args = entry, {}
            elif isinstance(entry, dict) and len(entry) == 1:
                name, args = next(iter(entry.items()))
                args = {} if args is None else args
                if not isinstance(args, dict):
                    raise self.error(
                        f"{where}.{name}", f"expected a mapping of arguments, got {shown(args)}"
                    )
            else:
                raise self.error(where, "expected a layer name or a one-key mapping {name: {args}}")
            self.check(where, LAYERS.get, name)
            self.check(f"{where}.{name}", LAYERS.build, name, args)
            layers.append({name: dict(args)})
        return layers


def config_from_dict(raw: dict[str, Any], source: str = "<config>") -> Config:
    """Validate a raw config mapping (as read from YAML) into a `Config`."""
    c = Checker(source)
    raw = c.mapping(raw, "", TOP_LEVEL_KEYS)
    for required in ("name", "model"):
        if required not in raw:
            raise c.error("", f"missing required key '{required}'")
    name = raw["name"]
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise c.error(
            "name", f"must be a short name of letters, digits, '-', '_' or '.', got {shown(name)}"
        )
    seed = c.check("seed", non_negative_int, "seed", raw.get("seed", default(Config, "seed")))

    data_raw = raw.get("data") or {}
    if not isinstance(data_raw, dict):
        raise c.error("data", f"expected a mapping of keys, got {shown(data_raw)}")
    dataset = data_raw.get("dataset", default(DataConfig, "dataset"))
    c.check("data.dataset", DATASETS.get, dataset)
    option_names = list(DATASETS.parameters(dataset))
    c.mapping(data_raw, "data", DATA_KEYS + option_names)
    validation = data_raw.get("validation", default(DataConfig, "validation"))
    if isinstance(validation, float):
        c.check("data.validation", number, "validation", validation, low=0, high=1, high_open=True)
    else:
        c.check("data.validation", non_negative_int, "validation", validation)
    train_size = data_raw.get("train_size")
    if train_size is not None:
        c.check("data.train_size", positive_int, "train_size", train_size)
    data = DataConfig(
        dataset=dataset,
        validation=validation,
        normalize=c.check(
            "data.normalize",
            one_of,
            "normalize",
            data_raw.get("normalize", default(DataConfig, "normalize")),
            NORMALIZATIONS,
        ),
        train_size=train_size,
        augment=c.augment(data_raw.get("augment"), "data.augment"),
        options={k: v for k, v in data_raw.items() if k not in DATA_KEYS},
    )

    model_raw = c.mapping(raw["model"], "model", ["input_shape", "layers"])
    if "layers" not in model_raw:
        raise c.error("model", "missing required key 'layers'")
    input_shape = model_raw.get("input_shape")
    if input_shape is not None:
        if not isinstance(input_shape, list) or not input_shape:
            raise c.error(
                "model.input_shape",
                f"expected a list of positive ints like [1, 28, 28], got {shown(input_shape)}",
            )
        for dim in input_shape:
            c.check("model.input_shape", positive_int, "input_shape", dim)
    model = ModelConfig(
        layers=c.layers(model_raw["layers"], "model.layers"), input_shape=input_shape
    )

    regularization_raw = c.mapping(raw.get("regularization"), "regularization", ["l2"])
    train_raw = c.mapping(raw.get("train"), "train", [f.name for f in fields(TrainConfig)])
    train = TrainConfig(**train_raw)
    for key in ("epochs", "batch_size", "eval_batch_size"):
        c.check(f"train.{key}", positive_int, key, getattr(train, key))
    threads = train.threads
    if threads != "auto" and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise c.error("train.threads", f"'threads' must be a positive int or auto, got {threads!r}")
    c.check("train.shuffle", boolean, "shuffle", train.shuffle)
    c.check("train.log_grad_norms", boolean, "log_grad_norms", train.log_grad_norms)
    if train.clip_grad_norm is not None:
        c.check(
            "train.clip_grad_norm",
            number,
            "clip_grad_norm",
            train.clip_grad_norm,
            low=0,
            low_open=True,
        )
    if train.early_stopping is not None:
        train.early_stopping = c.early_stopping(train.early_stopping, "train.early_stopping")
    schedule = c.component(raw.get("schedule", default(Config, "schedule")), "schedule", SCHEDULES)
    if data.validation == 0:
        if train.early_stopping is not None:
            raise c.error("train.early_stopping", "needs a validation split; set data.validation")
        if schedule.name == "reduce_on_plateau":
            raise c.error(
                "schedule", "reduce_on_plateau needs a validation split; set data.validation"
            )

    return Config(
        name=name,
        seed=seed,
        data=data,
        model=model,
        loss=c.component(raw.get("loss", default(Config, "loss")), "loss", LOSSES),
        optimizer=c.component(
            raw.get("optimizer", default(Config, "optimizer")), "optimizer", OPTIMIZERS
        ),
        schedule=schedule,
        regularization=RegularizationConfig(
            l2=c.check(
                "regularization.l2",
                number,
                "l2",
                regularization_raw.get("l2", default(RegularizationConfig, "l2")),
                low=0,
            )
        ),
        train=train,
        source=source,
    )


def to_dict(config: Config) -> dict[str, Any]:
    """The fully resolved config as plain data, in the same shape a YAML config has."""
    data = asdict(config)
    data.pop("source")
    data_section = data["data"]
    data_section.update(data_section.pop("options"))
    for key in ("loss", "optimizer", "schedule"):
        data[key] = {"name": data[key]["name"], **data[key]["args"]}
    return data


def dump_yaml(config: Config) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False, default_flow_style=None)
