"""The sweep file: a base config, the search space in `--set` key paths, and how to search.

    name: mlp-search
    base: configs/mlp.yaml            # relative to the sweep file, else to the cwd
    metric: val_accuracy              # val_loss / train_loss are minimized, accuracies maximized
    trials: 20
    sampler: tpe                      # tpe | random | grid, or {name: tpe, n_startup_trials: 5}
    pruner: median                    # none | median | hyperband, or {name: median, ...}
    seed: 0
    fixed: {train.epochs: 5}
    parameters:
      optimizer.lr: {loguniform: [0.001, 0.3]}
      model.layers[1].dense.units: {choice: [64, 128, 256]}

Every key path and every value a trial could take (each range's ends, each choice) is
applied to the base config with config.py's `apply_override` and validated by
`config_from_dict` before any trial runs, so a typo fails here, naming the sweep file and
the key. The resolved form (`to_dict`) embeds the base config as `base_config`, so a sweep
directory is rebuilt from its own `sweep.yaml` even if configs/ changes later.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml

from npnet.config import Config, apply_override, config_from_dict, load_config, parse_yaml, to_dict
from npnet.errors import ConfigError
from npnet.registry import did_you_mean

SWEEP_KEYS = [
    "name",
    "base",
    "metric",
    "trials",
    "sampler",
    "pruner",
    "seed",
    "heartbeat_seconds",
    "fixed",
    "parameters",
]
RESOLVED_KEYS = ["base_config", "storage", "study"]  # what sweep.yaml in a sweep dir adds
METRICS = {
    "val_accuracy": "maximize",
    "val_loss": "minimize",
    "train_accuracy": "maximize",
    "train_loss": "minimize",
}
DISTRIBUTIONS = ["uniform", "loguniform", "int", "choice"]
SAMPLERS = {
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
    "grid": optuna.samplers.GridSampler,
}
PRUNERS = {
    "none": optuna.pruners.NopPruner,
    "median": optuna.pruners.MedianPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
}


@dataclass
class Sweep:
    """A validated sweep file. `parameters` maps key paths to `{kind: args}`."""

    name: str
    base: str
    base_config: dict[str, Any]
    metric: str
    trials: int
    sampler: dict[str, Any]
    pruner: dict[str, Any]
    seed: int
    heartbeat_seconds: int
    fixed: dict[str, Any]
    parameters: dict[str, dict[str, Any]]
    storage: str | None = None  # None: the sweep directory's study.db
    study: str | None = None
    source: str = field(default="<sweep>", compare=False)

    @property
    def direction(self) -> str:
        return METRICS[self.metric]


def load_sweep(path: str | Path) -> Sweep:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such sweep file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the sweep file ({error})") from None
    return sweep_from_dict(parse_yaml(text, str(path)), str(path))


def sweep_from_dict(raw: dict[str, Any], source: str) -> Sweep:
    """Validate a raw sweep mapping; every error names `source` and the key."""

    def error(key: str, message: str) -> ConfigError:
        return ConfigError(f"{source}: {key}: {message}")

    allowed = SWEEP_KEYS + RESOLVED_KEYS
    for key in raw:
        if key not in allowed:
            hint = did_you_mean(str(key), allowed)
            raise ConfigError(
                f"{source}: unknown key {key!r}{hint} (valid keys: {', '.join(SWEEP_KEYS)})"
            )
    for required in ("name", "parameters"):
        if required not in raw:
            raise ConfigError(f"{source}: missing required key '{required}'")
    name = raw["name"]
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise error(
            "name", f"must be a short name of letters, digits, '-', '_' or '.', got {name!r}"
        )
    base, base_config = read_base(raw, source)
    metric = raw.get("metric", "val_accuracy")
    if metric not in METRICS:
        raise error("metric", f"must be one of {', '.join(METRICS)}, got {metric!r}")
    seed = raw.get("seed", 0)
    if not is_int(seed) or seed < 0:
        raise error("seed", f"must be a non-negative int, got {seed!r}")
    heartbeat = raw.get("heartbeat_seconds", 10)
    if not is_int(heartbeat) or heartbeat < 1:
        raise error("heartbeat_seconds", f"must be a positive int, got {heartbeat!r}")
    fixed = raw.get("fixed") or {}
    if not isinstance(fixed, dict):
        raise error("fixed", f"expected a mapping of key paths to values, got {fixed!r}")
    parameters = raw["parameters"]
    if not isinstance(parameters, dict) or not parameters:
        raise error(
            "parameters", "expected a mapping of key paths to {uniform|loguniform|int|choice: ...}"
        )
    parameters = {
        str(key): check_distribution(spec, f"parameters.{key}", error)
        for key, spec in parameters.items()
    }
    sampler = component(raw.get("sampler", "tpe"), "sampler", SAMPLERS, error)
    pruner = component(raw.get("pruner", "median"), "pruner", PRUNERS, error)
    trials = raw.get("trials")
    combinations = math.prod(len(p["choice"]) for p in parameters.values() if "choice" in p)
    if sampler["name"] == "grid":
        not_choices = [key for key, p in parameters.items() if "choice" not in p]
        if not_choices:
            raise error(
                f"parameters.{not_choices[0]}", "the grid sampler needs a {choice: [...]} list"
            )
        trials = combinations if trials is None else trials
        if is_int(trials) and trials > combinations:
            raise error("trials", f"the grid has only {combinations} combinations, got {trials}")
    if not is_int(trials) or trials < 1:
        raise error("trials", f"must be a positive int (the study's total), got {trials!r}")
    sweep = Sweep(
        name=name,
        base=base,
        base_config=base_config,
        metric=metric,
        trials=trials,
        sampler=sampler,
        pruner=pruner,
        seed=seed,
        heartbeat_seconds=heartbeat,
        fixed=fixed,
        parameters=parameters,
        storage=raw.get("storage"),
        study=raw.get("study"),
        source=source,
    )
    check_against_config(sweep)
    build_sampler(sweep, seed)  # so the sampler's and the pruner's arguments are checked now
    build_pruner(sweep)
    return sweep


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_base(raw: dict[str, Any], source: str) -> tuple[str, dict[str, Any]]:
    """The base config as its resolved dict: embedded (`base_config`) or read from `base`."""
    if "base_config" in raw:
        return str(raw.get("base", "<embedded>")), raw["base_config"]
    if "base" not in raw:
        raise ConfigError(
            f"{source}: missing required key 'base' (a config, e.g. configs/mlp.yaml)"
        )
    base = Path(str(raw["base"]))
    beside = Path(source).parent / base
    path = beside if not base.is_absolute() and beside.is_file() else base
    if not path.is_file():
        raise ConfigError(
            f"{source}: base: no such config {str(base)!r} (beside the sweep file or in the cwd)"
        )
    return str(path.resolve()), to_dict(load_config(path))


def check_distribution(spec: Any, key: str, error: Any) -> dict[str, Any]:
    """`{uniform: [low, high]}`, `{loguniform: [low, high]}` (low > 0), `{int: [low, high]}`
    or `{choice: [a, b, ...]}` of plain values."""
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
        raise error(
            key,
            "expected one of {uniform|loguniform|int: [low, high]} or {choice: [...]}, "
            f"got {spec!r}",
        )
    kind, args = next(iter(spec.items()))
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise error(key, f"choice needs a non-empty list of values, got {args!r}")
        for value in args:
            if value is not None and not isinstance(value, (bool, int, float, str)):
                raise error(
                    key, f"choice values must be numbers, strings or booleans, got {value!r}"
                )
        if len(set(map(repr, args))) != len(args):
            raise error(key, f"choice lists a value twice: {args!r}")
        return {"choice": list(args)}
    numeric = (
        (lambda v: is_int(v)) if kind == "int" else (lambda v: is_int(v) or isinstance(v, float))
    )
    if not isinstance(args, list) or len(args) != 2 or not all(numeric(v) for v in args):
        kind_word = "ints" if kind == "int" else "numbers"
        raise error(key, f"{kind} needs [low, high], two {kind_word}, got {args!r}")
    low, high = args
    if not low < high:
        raise error(key, f"{kind} needs low < high, got [{low}, {high}]")
    if kind == "loguniform" and low <= 0:
        raise error(key, f"loguniform needs low > 0, got {low}")
    return {kind: [low, high]}


def component(value: Any, key: str, choices: dict[str, Any], error: Any) -> dict[str, Any]:
    """`tpe` or `{name: tpe, n_startup_trials: 5}` as `{"name": ..., **args}`."""
    raw = {"name": value} if isinstance(value, str) else value
    if not isinstance(raw, dict) or raw.get("name") not in choices:
        raise error(
            key, f"must be one of {', '.join(choices)} (or a mapping with 'name'), got {value!r}"
        )
    return dict(raw)


def candidate_values(spec: dict[str, Any]) -> list[Any]:
    """The values a parameter's checks try: every choice, or both ends of a range."""
    (args,) = spec.values()
    return list(args)


def yaml_value(value: Any) -> str:
    """`value` as the text `apply_override` parses back to exactly it (1e-06 -> 1.0e-06,
    which YAML reads as a float, not the string '1e-06')."""
    text = yaml.safe_dump(value, default_flow_style=True, width=math.inf)
    return text.removesuffix("\n").removesuffix("\n...")


def overridden(base: dict[str, Any], values: dict[str, Any], source: str) -> dict[str, Any]:
    raw = copy.deepcopy(base)
    for key, value in values.items():
        apply_override(raw, f"{key}={yaml_value(value)}", source)
    return raw


def check_against_config(sweep: Sweep) -> None:
    """Each fixed value, and each candidate value of each parameter on top of them, must give
    a config that `config_from_dict` accepts."""
    fixed = overridden_checked(sweep, sweep.fixed, "fixed")
    for key, spec in sweep.parameters.items():
        for value in candidate_values(spec):
            overridden_checked(sweep, {key: value}, f"parameters.{key}", fixed)


def overridden_checked(
    sweep: Sweep, values: dict[str, Any], key: str, base: dict[str, Any] | None = None
) -> dict[str, Any]:
    base = sweep.base_config if base is None else base
    try:
        raw = overridden(base, values, sweep.base)
        config_from_dict(raw, sweep.base)
    except ConfigError as error:
        raise ConfigError(f"{sweep.source}: {key}: {error}") from None
    return raw


def trial_config(sweep: Sweep, params: dict[str, Any], name: str, threads_cap: int) -> Config:
    """The base config with the fixed values and one trial's `params`, named `name`, with
    `train.threads` capped at `threads_cap` so parallel workers do not oversubscribe cores
    (`auto` is left as it is: its numbers do not depend on the cores it finds)."""
    raw = overridden(sweep.base_config, {**sweep.fixed, **params}, sweep.source)
    raw["name"] = name
    train = raw.setdefault("train", {})
    threads = train.get("threads", "auto")
    if threads != "auto":
        train["threads"] = min(threads, threads_cap)
    return config_from_dict(raw, f"{sweep.source} (trial {name})")


def distributions(sweep: Sweep) -> dict[str, optuna.distributions.BaseDistribution]:
    """The search space as Optuna distributions, keyed by key path."""
    space = {}
    for key, spec in sweep.parameters.items():
        kind, args = next(iter(spec.items()))
        if kind == "choice":
            space[key] = optuna.distributions.CategoricalDistribution(args)
        elif kind == "int":
            space[key] = optuna.distributions.IntDistribution(*args)
        else:
            space[key] = optuna.distributions.FloatDistribution(*args, log=kind == "loguniform")
    return space


def build_sampler(sweep: Sweep, seed: int) -> optuna.samplers.BaseSampler:
    args = {k: v for k, v in sweep.sampler.items() if k != "name"}
    if sweep.sampler["name"] == "grid":
        args["search_space"] = {k: p["choice"] for k, p in sweep.parameters.items()}
    return construct(SAMPLERS[sweep.sampler["name"]], {**args, "seed": seed}, "sampler", sweep)


def build_pruner(sweep: Sweep) -> optuna.pruners.BasePruner:
    args = {k: v for k, v in sweep.pruner.items() if k != "name"}
    return construct(PRUNERS[sweep.pruner["name"]], args, "pruner", sweep)


def construct(cls: Any, args: dict[str, Any], key: str, sweep: Sweep) -> Any:
    try:
        return cls(**args)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{sweep.source}: {key}: {error}") from None


def resolved(sweep: Sweep) -> dict[str, Any]:
    """The resolved sweep file a sweep directory keeps (sweep.yaml)."""
    return {
        "name": sweep.name,
        "base": sweep.base,
        "metric": sweep.metric,
        "trials": sweep.trials,
        "sampler": sweep.sampler,
        "pruner": sweep.pruner,
        "seed": sweep.seed,
        "heartbeat_seconds": sweep.heartbeat_seconds,
        "fixed": sweep.fixed,
        "parameters": sweep.parameters,
        "storage": sweep.storage,
        "study": sweep.study,
        "base_config": sweep.base_config,
    }
