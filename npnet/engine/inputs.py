"""What a run's network takes as input, so a run can be used without its data.

Training records it in summary.json under "inputs":

    {"shape": [1, 28, 28], "image_max": 255.0, "num_classes": 10, "class_names": null,
     "normalization": {"method": "standard", "shift": 33.32, "scale": 78.57, ...}}

so `npnet predict` and `npnet export` rebuild the network from config.yaml and weights.npz
and treat new inputs exactly as the training data was: x' = (x - shift) / scale on the raw
values (pixels 0..image_max). A run trained before npnet recorded this gets it by rebuilding
its data from the config, which gives the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from npnet.config import Config
from npnet.data import Dataset
from npnet.engine import runs
from npnet.engine.experiment import build_dataset
from npnet.errors import ConfigError, RunError
from npnet.nn.network import Network


@dataclass(frozen=True)
class Inputs:
    """A run's inputs: per-sample `shape`, the raw images' maximum (None for tabular data),
    the normalization fitted on its training split, and its classes (None: regression)."""

    shape: tuple[int, ...]
    image_max: float | None
    normalization: dict[str, Any]
    num_classes: int | None
    class_names: list[str] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "image_max": self.image_max,
            "num_classes": self.num_classes,
            "class_names": self.class_names,
            "normalization": self.normalization,
        }


def describe_inputs(dataset: Dataset) -> Inputs:
    """The Inputs of a network trained on `dataset`; class names come from the dataset's
    info["class_names"] when it has them."""
    names = dataset.info.get("class_names")
    return Inputs(
        shape=tuple(dataset.input_shape),
        image_max=dataset.image_max,
        normalization=dict(dataset.normalization),
        num_classes=dataset.num_classes,
        class_names=None if names is None else [str(name) for name in names],
    )


def read_inputs(run_dir: Path, config: Config) -> Inputs:
    """The run's Inputs from its summary.json, or rebuilt from its data for older runs."""
    path = run_dir / runs.SUMMARY_FILE
    recorded = runs.read_summary(run_dir).get("inputs") if path.is_file() else None
    if recorded is None:
        return describe_inputs(build_dataset(config))
    try:
        return Inputs(
            shape=tuple(int(n) for n in recorded["shape"]),
            image_max=recorded["image_max"],
            normalization=dict(recorded["normalization"]),
            num_classes=recorded["num_classes"],
            class_names=recorded["class_names"],
        )
    except (KeyError, TypeError, ValueError) as error:
        raise RunError(f"{path}: 'inputs' is damaged ({error!r}); retrain the run") from None


def load_network(run_dir: Path) -> tuple[Config, Inputs, Network]:
    """A run's config, its Inputs and its network (evaluation only, one thread) with the
    run's weights, built without loading its data when summary.json records the inputs."""
    config = runs.read_config(run_dir)
    inputs = read_inputs(run_dir, config)
    try:
        net = Network.from_specs(config.model.layers, inputs.shape, np.random.default_rng(0))
    except ConfigError as error:
        raise RunError(f"{run_dir / runs.CONFIG_FILE}: {error}") from None
    weights_path = run_dir / runs.WEIGHTS_FILE
    if not weights_path.is_file():
        raise RunError(
            f"{run_dir}: no {runs.WEIGHTS_FILE}; the run saved no epoch yet "
            "(train it, or resume it with `npnet train --resume`)"
        )
    net.load_state(runs.load_arrays(weights_path), str(weights_path))
    return config, inputs, net
