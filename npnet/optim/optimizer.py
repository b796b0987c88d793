"""The optimizer contract every npnet optimizer follows.

    opt.step(params, grads)     # params, grads: {"3.W": array, ...}, same keys; updates in place

Per-parameter state (velocities, moment estimates) lives in `opt.state[key]`, created on the
first step. `opt.lr` is the current learning rate; a schedule sets it before each step.
`state_dict()` / `load_state_dict()` carry everything a checkpoint needs to resume exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from npnet.registry import constructor_config


class Optimizer:
    """Base class: holds the learning rate, the step count and per-parameter state."""

    def __init__(self, lr: float) -> None:
        self.lr = lr
        self.steps = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}

    @property
    def name(self) -> str:
        return type(self).registered_name

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.steps += 1
        for key, param in params.items():
            self.update(key, param, grads[key])

    def update(self, key: str, param: np.ndarray, grad: np.ndarray) -> None:
        """Change `param` in place, using and updating `self.state[key]`."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        """Flat arrays for an `.npz` checkpoint: `"state/<key>/<slot>"` plus lr and steps."""
        flat = {"lr": np.asarray(self.lr), "steps": np.asarray(self.steps)}
        for key, slots in self.state.items():
            for slot, value in slots.items():
                flat[f"state/{key}/{slot}"] = value
        return flat

    def load_state_dict(self, flat: dict[str, np.ndarray]) -> None:
        self.lr = float(flat["lr"])
        self.steps = int(flat["steps"])
        self.state = {}
        for name, value in flat.items():
            if name.startswith("state/"):
                key, slot = name[len("state/") :].rsplit("/", 1)
                self.state.setdefault(key, {})[slot] = np.array(value)

    def get_config(self) -> dict[str, Any]:
        return constructor_config(self)
