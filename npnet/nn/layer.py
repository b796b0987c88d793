"""The layer contract every npnet layer follows.

A layer is a forward pass and the local rule for its gradient, side by side:

    out = layer.forward(x, training)      # x: (N, *in_shape)  -> out: (N, *out_shape)
    dx = layer.backward(grad_out)         # grad_out: dL/dout  -> dx: dL/dx, same shape as x

`backward` *assigns* `layer.grads[name]` (dL/dparam, same shape and dtype as
`layer.params[name]`); nothing accumulates, so there is no `zero_grad` to forget.
Weights are created by `build(in_shape, rng, dtype)` once the per-sample input shape is
known, so a config never states fan-in. Images are NCHW, as in PyTorch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from npnet.registry import constructor_config

Shape = tuple[int, ...]


class Layer:
    """Base class: a stateless identity with no parameters; subclasses override what they need."""

    # Whether the training pass mixes the samples of a batch (batch norm's statistics). Such a
    # layer takes its sums over the batch through `self.batch_sum`, which npnet.nn.parallel
    # replaces by a sum over all the slices when the batch runs in slices.
    mixes_batch = False
    # Whether the training forward pass draws from `self.rng` (dropout's masks).
    stochastic = False

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        # The network clears this on its first layer: nobody needs dL/dX of the data, and for
        # a convolution skipping it saves the whole col2im.
        self.input_grad = True
        self.rng: np.random.Generator | None = None
        self.in_shape: Shape | None = None
        self.out_shape: Shape | None = None

    @property
    def name(self) -> str:
        return type(self).registered_name

    def output_shape(self, in_shape: Shape) -> Shape:
        """Per-sample output shape for per-sample input shape `in_shape` (no batch axis)."""
        return in_shape

    def parameter_count(self, in_shape: Shape) -> int:
        """How many values `build(in_shape)` will allocate (parameters and buffers), known
        before allocating them, so a model too large for memory is refused at build time."""
        return 0

    def build(self, in_shape: Shape, rng: np.random.Generator, dtype: np.dtype) -> Shape:
        """Create the parameters for inputs of per-sample shape `in_shape`; return the output
        shape. `rng` initializes weights and, for stochastic layers, is kept for training."""
        self.in_shape = tuple(in_shape)
        self.out_shape = tuple(self.output_shape(self.in_shape))
        self.rng = rng
        return self.out_shape

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        """Set `self.grads` and return dL/dx (or None when `self.input_grad` is False)."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, so `type(layer)(**layer.get_config())` rebuilds it.

        Every layer stores each constructor argument under an attribute of the same name."""
        return constructor_config(self)
