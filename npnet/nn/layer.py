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

import functools
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
        # Where npnet.nn.parallel cuts the batch into its slices, when they run through the
        # layers as one pass (`cut_rows`); None: the batch is one block.
        self.cuts: list[int] | None = None

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
        self.rng = rng if self.stochastic else None
        return self.out_shape

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        """Set `self.grads` and return dL/dx (or None when `self.input_grad` is False)."""
        raise NotImplementedError

    def blocks(self, array: np.ndarray) -> list[np.ndarray]:
        """`array`'s rows cut at `self.cuts`: the blocks in which a layer takes its sums over the
        batch and the matrix products whose size grows with it (BLAS may pick another kernel,
        with other roundings, for another size), one after the other, so that one pass over
        the whole batch gives the bits of its slices run apart. [array] when `cuts` is None."""
        return [array] if self.cuts is None else cut_rows(array, self.cuts)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, so `type(layer)(**layer.get_config())` rebuilds it.

        Every layer stores each constructor argument under an attribute of the same name."""
        return constructor_config(self)


def cut_rows(array: np.ndarray, cuts: list[int]) -> list[np.ndarray]:
    """Views of `array`'s rows between the cuts: cuts [3] of 5 rows -> rows 0-2 and 3-4."""
    starts, ends = [0, *cuts], [*cuts, len(array)]
    return [array[start:end] for start, end in zip(starts, ends, strict=True)]


def joined_gradients(
    blocks: list[tuple[np.ndarray | None, ...]],
) -> tuple[np.ndarray | None, ...]:
    """(dx, *parameter gradients) of the whole batch from those of its blocks, in block order:
    dx the blocks' rows one after the other (None if theirs are), each parameter gradient the
    sum of the blocks' (added in block order, as npnet.nn.parallel adds its slices')."""
    if len(blocks) == 1:
        return blocks[0]
    dxs, *grads = zip(*blocks, strict=True)
    dx = None if dxs[0] is None else np.concatenate(dxs)
    return dx, *(functools.reduce(np.add, parts) for parts in grads)
