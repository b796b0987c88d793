"""The training state: where a training stands after its last completed epoch, which is
exactly what a checkpoint saves and restores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Best:
    """The best epoch so far under early stopping: its number, the monitored value, and a
    copy of the network's arrays then (the weights delivered in weights.npz)."""

    epoch: int
    value: float
    state: dict[str, np.ndarray]


@dataclass
class TrainingState:
    """Where a training stands after its last completed epoch: what a checkpoint restores."""

    epoch: int
    rows: list[dict[str, Any]]
    shuffle_rng: np.random.Generator
    noise_rng: np.random.Generator
    seconds: float = 0.0
    best: Best | None = None  # set by early stopping
