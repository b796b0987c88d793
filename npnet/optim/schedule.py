"""The learning-rate schedule contract every npnet schedule follows.

A schedule is built from its config arguments alone; the base learning rate comes from the
optimizer when training starts. It is stepped once per epoch, as PyTorch's schedulers are:

    opt.lr = schedule.begin(opt.lr)          # the lr for epoch 0
    for epoch in range(epochs):
        ...train one epoch with opt.lr...
        opt.lr = schedule.step(val_loss)     # the lr for the next epoch

`state_dict()` holds plain JSON values only, so a checkpoint can store it next to the config,
and `load_state_dict()` on a freshly built schedule resumes exactly where it stopped.
"""

from __future__ import annotations

from typing import Any

from npnet.registry import constructor_config


class Schedule:
    """Base class: a closed-form schedule, lr = `lr_at(epoch)` given `base_lr`."""

    def __init__(self) -> None:
        self.base_lr: float | None = None
        self.epoch = 0
        self.lr: float | None = None

    @property
    def name(self) -> str:
        return type(self).registered_name

    def begin(self, base_lr: float) -> float:
        """Start at epoch 0 from the optimizer's learning rate; return the lr for epoch 0."""
        self.base_lr = float(base_lr)
        self.epoch = 0
        self.lr = self.lr_at(0)
        return self.lr

    def step(self, metric: float | None = None) -> float:
        """End the current epoch; return the lr for the next. `metric` is the validation loss,
        which only schedules that react to it (reduce_on_plateau) read."""
        self._check_begun()
        self.epoch += 1
        self.lr = self.lr_at(self.epoch)
        return self.lr

    def lr_at(self, epoch: int) -> float:
        """The learning rate for `epoch` (0-based), from `self.base_lr`."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {"base_lr": self.base_lr, "epoch": self.epoch, "lr": self.lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base_lr = float(state["base_lr"])
        self.epoch = int(state["epoch"])
        self.lr = float(state["lr"])

    def get_config(self) -> dict[str, Any]:
        return constructor_config(self)

    def _check_begun(self) -> None:
        if self.base_lr is None:
            # A bug in the caller, not a user mistake: the trainer always calls begin() first.
            raise RuntimeError(f"{type(self).__name__}.step() called before begin(base_lr)")
