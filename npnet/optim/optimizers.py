"""The optimizers a config can name: sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw.

Each follows the update rule and default hyperparameters of its `torch.optim` namesake, so a
run agrees with PyTorch to rounding (the reference tests check 1e-8 in float64). Updates are in
place and keep the parameter's dtype; the caller's gradient arrays are never modified.
`g` below is the gradient, `p` the parameter, `t` the step count (1 on the first step).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from npnet.errors import ConfigError
from npnet.functional.regularization import l2_penalty_gradient
from npnet.optim.optimizer import Optimizer
from npnet.registry import OPTIMIZERS
from npnet.validate import boolean, number


def _lr(value: Any) -> float:
    return number("lr", value, low=0.0, low_open=True)


def _momentum(value: Any) -> float:
    return number("momentum", value, low=0.0, high=1.0, high_open=True)


def _weight_decay(value: Any) -> float:
    return number("weight_decay", value, low=0.0)


def _eps(value: Any) -> float:
    return number("eps", value, low=0.0, low_open=True)


def _betas(value: Any) -> tuple[float, float]:
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 2:
        raise ConfigError(f"'betas' must be a pair [beta1, beta2], got {value!r}")
    beta1 = number("betas[0]", value[0], low=0.0, high=1.0, high_open=True)
    beta2 = number("betas[1]", value[1], low=0.0, high=1.0, high_open=True)
    return beta1, beta2


def _with_weight_decay(grad: np.ndarray, param: np.ndarray, weight_decay: float) -> np.ndarray:
    """g + λ·p (coupled L2 decay: the gradient of ½·λ·Σ p², `functional.l2_penalty_gradient`)
    as a new array, or `grad` itself when λ = 0."""
    if weight_decay == 0.0:
        return grad
    decayed = l2_penalty_gradient(param, weight_decay)
    decayed += grad
    return decayed


@OPTIMIZERS.register("sgd")
class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, as torch.optim.SGD.

    g ← g + λ·p;  v ← μ·v + g (v = g on the first step);  p ← p − lr·(g + μ·v if nesterov else v).
    With μ = 0 this is p ← p − lr·g.
    """

    def __init__(
        self,
        lr: float = 1e-3,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(_lr(lr))
        self.momentum = _momentum(momentum)
        self.nesterov = boolean("nesterov", nesterov)
        self.weight_decay = _weight_decay(weight_decay)
        if self.nesterov and self.momentum == 0.0:
            raise ConfigError(
                f"'momentum' must be > 0 when 'nesterov' is true, got {self.momentum!r}"
            )

    def update(self, key: str, param: np.ndarray, grad: np.ndarray) -> None:
        # float(): a schedule may hand us a NumPy float64, which would upcast float32 temporaries.
        lr = float(self.lr)
        grad = _with_weight_decay(grad, param, self.weight_decay)
        if self.momentum == 0.0:
            param -= lr * grad
            return
        if key not in self.state:
            # A copy, not the array itself: the layer reuses its gradient buffers.
            self.state[key] = {"velocity": grad.copy()}
        else:
            self.state[key]["velocity"] *= self.momentum
            self.state[key]["velocity"] += grad
        velocity = self.state[key]["velocity"]
        if not self.nesterov:
            param -= lr * velocity
            return
        step = velocity * self.momentum
        step += grad
        step *= lr
        param -= step


@OPTIMIZERS.register("momentum")
class Momentum(SGD):
    """SGD with classical (heavy-ball) momentum, μ = 0.9 by default: the `sgd` rule with μ > 0."""

    def __init__(self, lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 0.0) -> None:
        super().__init__(lr=lr, momentum=momentum, nesterov=False, weight_decay=weight_decay)


@OPTIMIZERS.register("nesterov")
class Nesterov(SGD):
    """SGD with Nesterov momentum, μ = 0.9 by default: the `sgd` rule with nesterov=True."""

    def __init__(self, lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 0.0) -> None:
        super().__init__(lr=lr, momentum=momentum, nesterov=True, weight_decay=weight_decay)


@OPTIMIZERS.register("adagrad")
class Adagrad(Optimizer):
    """Adagrad, as torch.optim.Adagrad: a per-coordinate step shrinking with the gradient history.

    g ← g + λ·p;  s ← s + g²  (s starts at `initial_accumulator_value`);
    p ← p − lr / (1 + (t−1)·lr_decay) · g / (√s + ε).
    """

    def __init__(
        self,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        super().__init__(_lr(lr))
        self.lr_decay = number("lr_decay", lr_decay, low=0.0)
        self.weight_decay = _weight_decay(weight_decay)
        self.initial_accumulator_value = number(
            "initial_accumulator_value", initial_accumulator_value, low=0.0
        )
        self.eps = _eps(eps)

    def update(self, key: str, param: np.ndarray, grad: np.ndarray) -> None:
        step_lr = float(self.lr) / (1.0 + (self.steps - 1) * self.lr_decay)
        grad = _with_weight_decay(grad, param, self.weight_decay)
        if key not in self.state:
            self.state[key] = {"sum": np.full_like(param, self.initial_accumulator_value)}
        squares = self.state[key]["sum"]
        step = np.multiply(grad, grad)
        squares += step
        # `step` is reused as the scratch array: √s + ε, then the step itself.
        np.sqrt(squares, out=step)
        step += self.eps
        np.divide(grad, step, out=step)
        step *= step_lr
        param -= step


@OPTIMIZERS.register("rmsprop")
class RMSprop(Optimizer):
    """RMSprop, as torch.optim.RMSprop (uncentered): steps scaled by a running RMS of gradients.

    g ← g + λ·p;  a ← α·a + (1−α)·g²;  d = g / (√a + ε);
    p ← p − lr·d, or with momentum μ > 0: b ← μ·b + d, p ← p − lr·b.
    """

    def __init__(
        self,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
    ) -> None:
        super().__init__(_lr(lr))
        self.alpha = number("alpha", alpha, low=0.0, high=1.0, high_open=True)
        self.eps = _eps(eps)
        self.weight_decay = _weight_decay(weight_decay)
        self.momentum = _momentum(momentum)

    def update(self, key: str, param: np.ndarray, grad: np.ndarray) -> None:
        lr = float(self.lr)
        grad = _with_weight_decay(grad, param, self.weight_decay)
        if key not in self.state:
            self.state[key] = {"square_avg": np.zeros_like(param)}
            if self.momentum > 0.0:
                self.state[key]["momentum_buffer"] = np.zeros_like(param)
        square_avg = self.state[key]["square_avg"]
        step = np.multiply(grad, grad)
        step *= 1.0 - self.alpha
        square_avg *= self.alpha
        square_avg += step
        np.sqrt(square_avg, out=step)
        step += self.eps
        np.divide(grad, step, out=step)
        if self.momentum > 0.0:
            buffer = self.state[key]["momentum_buffer"]
            buffer *= self.momentum
            buffer += step
            np.multiply(buffer, lr, out=step)
        else:
            step *= lr
        param -= step


@OPTIMIZERS.register("adam")
class Adam(Optimizer):
    """Adam, as torch.optim.Adam, with L2 weight decay coupled into the gradient.

    g ← g + λ·p;  m ← β₁·m + (1−β₁)·g;  v ← β₂·v + (1−β₂)·g²;
    bias correction (m and v start at 0): m̂ = m / (1−β₁ᵗ), v̂ = v / (1−β₂ᵗ);
    p ← p − lr·m̂ / (√v̂ + ε), computed as p − (lr / (1−β₁ᵗ))·m / (√v / √(1−β₂ᵗ) + ε).
    In place, with one scratch array; the textbook step it equals (to rounding) is
    `npnet.functional.reference.adam_step`.
    """

    #: Adam adds λ·p to the gradient; AdamW shrinks the parameter instead.
    decoupled = False

    def __init__(
        self,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(_lr(lr))
        self.betas = _betas(betas)
        self.eps = _eps(eps)
        self.weight_decay = _weight_decay(weight_decay)

    def update(self, key: str, param: np.ndarray, grad: np.ndarray) -> None:
        lr = float(self.lr)
        beta1, beta2 = self.betas
        if self.decoupled:
            param *= 1.0 - lr * self.weight_decay
        else:
            grad = _with_weight_decay(grad, param, self.weight_decay)
        if key not in self.state:
            self.state[key] = {"m": np.zeros_like(param), "v": np.zeros_like(param)}
        m, v = self.state[key]["m"], self.state[key]["v"]

        # One scratch array serves every intermediate below.
        scratch = np.subtract(grad, m)
        scratch *= 1.0 - beta1
        m += scratch  # m + (1−β₁)(g − m): the same rounding as torch's lerp
        np.multiply(grad, grad, out=scratch)
        scratch *= 1.0 - beta2
        v *= beta2
        v += scratch

        correction1 = 1.0 - beta1**self.steps
        correction2_sqrt = math.sqrt(1.0 - beta2**self.steps)
        np.sqrt(v, out=scratch)
        scratch /= correction2_sqrt
        scratch += self.eps
        np.divide(m, scratch, out=scratch)
        scratch *= lr / correction1
        param -= scratch


@OPTIMIZERS.register("adamw")
class AdamW(Adam):
    """AdamW, as torch.optim.AdamW: Adam with weight decay decoupled from the gradient.

    p ← p·(1 − lr·λ) first, then the Adam step on the raw gradient g (no λ·p added).
    """

    decoupled = True

    def __init__(
        self,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ) -> None:
        super().__init__(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
