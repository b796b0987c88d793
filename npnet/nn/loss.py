"""The loss contract every npnet loss follows.

    value = loss.forward(out, y)   # out: (N, ...) network output, y: targets -> float
    dout = loss.backward()          # dL/dout, same shape and dtype as `out`

Every loss is a mean, as PyTorch's `reduction="mean"`: over the N samples for the
classification losses (cross-entropy, hinge), over all N·D entries for the element-wise ones
(mse, mae, huber, binary cross-entropy). `backward` includes that 1/N (or 1/(N·D)), so the
learning rate does not depend on the batch size.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from npnet.registry import constructor_config


class Loss:
    """Base class; subclasses keep what `backward` needs from the last `forward`."""

    @property
    def name(self) -> str:
        return type(self).registered_name

    def forward(self, out: np.ndarray, y: np.ndarray) -> float:
        raise NotImplementedError

    def backward(self) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments; each is stored under an attribute of the same name."""
        return constructor_config(self)
