"""Layers that only change the shape of their input."""

from __future__ import annotations

import math

import numpy as np

from npnet.nn.layer import Layer, Shape
from npnet.registry import LAYERS


@LAYERS.register("flatten")
class Flatten(Layer):
    """Each sample to a vector: x (N, C, H, W) -> out (N, C·H·W), in C-order (any per-sample
    rank works). A view of x when x's memory allows it, so it costs nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.x_shape: tuple[int, ...] | None = None

    def output_shape(self, in_shape: Shape) -> Shape:
        return (math.prod(in_shape),)

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        self.x_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        return grad_out.reshape(self.x_shape) if self.input_grad else None
