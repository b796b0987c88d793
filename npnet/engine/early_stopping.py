"""Early stopping: stop when a validation metric has not improved for `patience` epochs,
and deliver the best epoch's weights rather than the last ones."""

from __future__ import annotations

from typing import Any

import numpy as np

from npnet.engine.experiment import Experiment
from npnet.engine.state import Best, TrainingState

METRICS = {"val_loss": "min", "val_accuracy": "max"}


def improved(value: float, best: float, mode: str, min_delta: float) -> bool:
    return value < best - min_delta if mode == "min" else value > best + min_delta


def update(state: TrainingState, exp: Experiment, row: dict[str, Any]) -> bool:
    """Record the epoch in `row` if it is the best so far (copying its weights); return True
    when the last `patience` epochs brought no improvement."""
    settings = exp.config.train.early_stopping
    value = row[settings["metric"]]
    mode = METRICS[settings["metric"]]
    best = state.best
    if best is None or improved(value, best.value, mode, settings["min_delta"]):
        state.best = Best(
            epoch=row["epoch"],
            value=value,
            state={k: np.array(v, copy=True) for k, v in exp.net.state().items()},
        )
        return False
    return row["epoch"] - best.epoch >= settings["patience"]


def stopped(state: TrainingState, settings: dict[str, Any]) -> bool:
    """Whether the state's epochs already ended the training: `patience` epochs since the best."""
    return state.best is not None and state.epoch - state.best.epoch >= settings["patience"]


def message(state: TrainingState, settings: dict[str, Any]) -> str:
    return (
        f"stopped early after epoch {state.epoch}: {settings['metric']} has not improved for "
        f"{settings['patience']} epochs; the weights of the best epoch ({state.best.epoch}) "
        f"are kept"
    )
