"""The shape of a config: the dataclasses a validated YAML config becomes, with every
default written once, here (`npnet.config` reads, merges and validates into them)."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any


@dataclass
class DataConfig:
    """Which dataset, how it is split and normalized; `options` go to the dataset's builder."""

    dataset: str = "mnist"
    validation: int | float = 5000
    normalize: str = "standard"
    train_size: int | None = None
    # {"shift", "rotate", "scale", "elastic": {"sigma", "alpha"} | None}, or None: no
    # augmentation (npnet.data.augment)
    augment: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    """The per-sample input shape (None: the dataset's) and the layers, in order."""

    layers: list[dict[str, dict[str, Any]]]
    input_shape: list[int] | None = None


@dataclass
class Component:
    """A registered component by name, with its constructor arguments."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig:
    epochs: int = 3
    batch_size: int = 64
    shuffle: bool = True
    eval_batch_size: int = 1000
    clip_grad_norm: float | None = None
    # {"metric": "val_loss" | "val_accuracy", "patience": int, "min_delta": float} or None
    early_stopping: dict[str, Any] | None = None
    log_grad_norms: bool = False  # per-parameter gradient norms per epoch, in grad_norms.csv
    # slices of each batch run at once, one thread each, or "auto": as fast as the machine's
    # free cores allow, the numbers fixed by the network alone (npnet.nn.parallel)
    threads: int | str = "auto"


@dataclass
class RegularizationConfig:
    """`l2`: λ of the coupled penalty 0.5·λ·Σ W² on weights (biases are not penalized)."""

    l2: float = 0.0


@dataclass
class Config:
    name: str
    model: ModelConfig
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    loss: Component = field(default_factory=lambda: Component("softmax_cross_entropy"))
    optimizer: Component = field(default_factory=lambda: Component("sgd", {"lr": 0.01}))
    schedule: Component = field(default_factory=lambda: Component("constant"))
    regularization: RegularizationConfig = field(default_factory=RegularizationConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    source: str = field(default="<config>", compare=False)


TOP_LEVEL_KEYS = [f.name for f in fields(Config) if f.name != "source"]
DATA_KEYS = ["dataset", "validation", "normalize", "train_size", "augment"]
NORMALIZATIONS = ["none", "scale", "standard"]  # data.normalize; npnet.data applies them


def default(cls: type, name: str) -> Any:
    """The default of dataclass `cls`'s field `name`, in the form a YAML config writes it
    (a component as {name: ..., args...}): defaults are written once, in the dataclasses."""
    spec = next(f for f in fields(cls) if f.name == name)
    value = spec.default_factory() if spec.default is MISSING else spec.default
    return {"name": value.name, **value.args} if isinstance(value, Component) else value
