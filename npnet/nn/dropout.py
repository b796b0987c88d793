"""Dropout: zero a random share of the activations while training, so no unit can rely on
any other being present."""

from __future__ import annotations

import numpy as np

from npnet.functional.regularization import dropout
from npnet.nn.layer import Layer
from npnet.registry import LAYERS
from npnet.validate import number


@LAYERS.register("dropout")
class Dropout(Layer):
    """Inverted dropout: out = x ⊙ m / (1 − rate), m_i ~ Bernoulli(1 − rate), at training time;
    the identity at evaluation (training=False), which is why the kept units are scaled up.

    The mask is drawn from `self.rng` (given by `build`), so a seeded network drops the same
    units on every run. x: (N, *shape) -> out: same shape and dtype.
    """

    stochastic = True

    def __init__(self, rate: float = 0.5) -> None:
        super().__init__()
        self.rate = number("rate", rate, low=0.0, high=1.0, high_open=True)
        self.mask: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        if not training:
            self.mask = None
            return x
        if self.rng is None:
            raise RuntimeError("dropout has no random generator: build() the layer first")
        out, self.mask = dropout(x, self.rate, self.rng)
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        if not self.input_grad:
            return None
        # mask is None when nothing was dropped (evaluation, or rate 0): the identity.
        return grad_out if self.mask is None else grad_out * self.mask
