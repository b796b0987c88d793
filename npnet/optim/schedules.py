"""The learning-rate schedules a config can name, each equal to a torch.optim.lr_scheduler one.

constant, step, multistep, exponential and cosine are closed forms in the epoch e (0-based);
reduce_on_plateau follows the validation loss. `lr₀` is the optimizer's learning rate.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

from npnet.errors import ConfigError
from npnet.optim.schedule import Schedule
from npnet.registry import SCHEDULES
from npnet.validate import non_negative_int, number, one_of, positive_int


def _gamma(value: Any) -> float:
    return number("gamma", value, low=0.0, high=1.0, low_open=True)


def improves(
    value: float, best: float, mode: str, threshold: float, threshold_mode: str = "abs"
) -> bool:
    """Whether `value` improves on `best` by more than `threshold`, as ReduceLROnPlateau
    judges it (early stopping too, with the absolute threshold `min_delta`):
    mode min: v < b − t (abs) or v < b·(1 − t) (rel); mode max: v > b + t or v > b·(1 + t)."""
    if mode == "min":
        if threshold_mode == "rel":
            return value < best * (1.0 - threshold)
        return value < best - threshold
    if threshold_mode == "rel":
        return value > best * (1.0 + threshold)
    return value > best + threshold


@SCHEDULES.register("constant")
class Constant(Schedule):
    """The same learning rate every epoch: lr = lr₀."""

    def lr_at(self, epoch: int) -> float:
        return self.base_lr


@SCHEDULES.register("step")
class Step(Schedule):
    """Decay by `gamma` every `step_size` epochs, as StepLR: lr = lr₀ · γ^⌊e / step_size⌋."""

    def __init__(self, step_size: int, gamma: float = 0.1) -> None:
        super().__init__()
        self.step_size = positive_int("step_size", step_size)
        self.gamma = _gamma(gamma)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


@SCHEDULES.register("multistep")
class MultiStep(Schedule):
    """Decay by `gamma` at each milestone epoch, as MultiStepLR: lr = lr₀ · γ^#{m ≤ e}."""

    def __init__(self, milestones: list[int], gamma: float = 0.1) -> None:
        super().__init__()
        if not isinstance(milestones, (list, tuple)) or not milestones:
            raise ConfigError(
                f"'milestones' must be a non-empty list of epochs, got {milestones!r}"
            )
        checked = [positive_int(f"milestones[{i}]", m) for i, m in enumerate(milestones)]
        if checked != sorted(set(checked)):
            raise ConfigError(f"'milestones' must be strictly increasing, got {milestones!r}")
        self.milestones = checked
        self.gamma = _gamma(gamma)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** bisect.bisect_right(self.milestones, epoch)


@SCHEDULES.register("exponential")
class Exponential(Schedule):
    """Decay by `gamma` every epoch, as ExponentialLR: lr = lr₀ · γᵉ."""

    def __init__(self, gamma: float) -> None:
        super().__init__()
        self.gamma = _gamma(gamma)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma**epoch


@SCHEDULES.register("cosine")
class Cosine(Schedule):
    """Cosine annealing from lr₀ to `eta_min` over `t_max` epochs, after an optional linear warmup.

    With w = warmup_epochs and s = warmup_start_factor:
      e < w:  lr = lr₀ · (s + (1 − s) · e / w)
      e ≥ w:  lr = η_min + (lr₀ − η_min) · (1 + cos(π (e − w) / (t_max − w))) / 2
    so lr reaches η_min at epoch t_max. With w = 0 this is CosineAnnealingLR(T_max=t_max); with
    w > 0 it is SequentialLR([LinearLR(s, total_iters=w), CosineAnnealingLR(T_max=t_max − w)],
    milestones=[w]). Past t_max the cosine carries on and the lr climbs back towards lr₀ (period
    2·(t_max − w)), exactly as in PyTorch: set t_max to the number of epochs.
    """

    def __init__(
        self,
        t_max: int,
        eta_min: float = 0.0,
        warmup_epochs: int = 0,
        warmup_start_factor: float = 0.1,
    ) -> None:
        super().__init__()
        self.t_max = positive_int("t_max", t_max)
        self.eta_min = number("eta_min", eta_min, low=0.0)
        self.warmup_epochs = non_negative_int("warmup_epochs", warmup_epochs)
        self.warmup_start_factor = number(
            "warmup_start_factor", warmup_start_factor, low=0.0, high=1.0, low_open=True
        )
        if self.warmup_epochs >= self.t_max:
            raise ConfigError(
                f"'warmup_epochs' must be less than 't_max' ({self.t_max}), "
                f"got {self.warmup_epochs}"
            )

    def lr_at(self, epoch: int) -> float:
        warmup, start = self.warmup_epochs, self.warmup_start_factor
        if epoch < warmup:
            return self.base_lr * (start + (1.0 - start) * epoch / warmup)
        phase = math.pi * (epoch - warmup) / (self.t_max - warmup)
        return self.eta_min + (self.base_lr - self.eta_min) * (1.0 + math.cos(phase)) / 2.0


@SCHEDULES.register("reduce_on_plateau")
class ReduceOnPlateau(Schedule):
    """Multiply the lr by `factor` when the validation loss stops improving, as ReduceLROnPlateau.

    An epoch improves on the best metric b when (mode min) m < b·(1 − threshold), or
    m < b − threshold with threshold_mode abs (mode max: m > b·(1 + threshold), m > b + threshold).
    After more than `patience` epochs without improvement: lr ← max(lr·factor, min_lr) (skipped
    when that changes lr by ≤ eps), then `cooldown` epochs in which bad epochs are not counted.
    """

    def __init__(
        self,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ) -> None:
        super().__init__()
        self.mode = one_of("mode", mode, ["min", "max"])
        self.factor = number("factor", factor, low=0.0, high=1.0, low_open=True, high_open=True)
        self.patience = non_negative_int("patience", patience)
        self.threshold = number("threshold", threshold, low=0.0)
        self.threshold_mode = one_of("threshold_mode", threshold_mode, ["rel", "abs"])
        self.cooldown = non_negative_int("cooldown", cooldown)
        self.min_lr = number("min_lr", min_lr, low=0.0)
        self.eps = number("eps", eps, low=0.0)
        self._reset()

    @property
    def _worst(self) -> float:
        return math.inf if self.mode == "min" else -math.inf

    def _reset(self) -> None:
        self.best = self._worst
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def begin(self, base_lr: float) -> float:
        self._reset()
        self.base_lr = float(base_lr)
        self.epoch = 0
        self.lr = self.base_lr
        return self.lr

    def step(self, metric: float | None = None) -> float:
        self._check_begun()
        if metric is None:
            raise ConfigError(
                "schedule 'reduce_on_plateau' needs a validation loss after every epoch; "
                "give the run validation data or choose another schedule"
            )
        metric = float(metric)
        self.epoch += 1
        if self._improves(metric):
            self.best = metric
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            reduced = max(self.lr * self.factor, self.min_lr)
            # As PyTorch: a reduction of at most eps (say, an lr already at min_lr) is skipped.
            if self.lr - reduced > self.eps:
                self.lr = reduced
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        return self.lr

    def _improves(self, metric: float) -> bool:
        return improves(metric, self.best, self.mode, self.threshold, self.threshold_mode)

    def state_dict(self) -> dict[str, Any]:
        # JSON has no infinity: "no best yet" is stored as None.
        best = None if self.best == self._worst else self.best
        return {
            **super().state_dict(),
            "best": best,
            "num_bad_epochs": self.num_bad_epochs,
            "cooldown_counter": self.cooldown_counter,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._reset()
        if state["best"] is not None:
            self.best = float(state["best"])
        self.num_bad_epochs = int(state["num_bad_epochs"])
        self.cooldown_counter = int(state["cooldown_counter"])
