"""Max and average pooling layers over square windows of NCHW images (no padding)."""

from __future__ import annotations

import numpy as np

from npnet.errors import ConfigError
from npnet.functional.pooling import (
    avg_pool2d,
    avg_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
    max_pool2d_forward,
    max_pool2d_tiled_backward,
    max_pool2d_tiled_forward,
    pool_output_size,
    tiles_exactly,
)
from npnet.nn.conv import image_shape
from npnet.nn.layer import Layer, Shape
from npnet.registry import LAYERS
from npnet.validate import positive_int


class Pool2D(Layer):
    """Shared by the pooling layers: `size`×`size` windows, `stride` defaulting to `size`.

    x (N, C, H, W) -> out (N, C, OH, OW), OH = ⌊(H - size) / stride⌋ + 1 (likewise OW).
    """

    def __init__(self, size: int = 2, stride: int | None = None):
        super().__init__()
        self.size = positive_int("size", size)
        self.stride = None if stride is None else positive_int("stride", stride)
        self.x_shape: tuple[int, ...] | None = None

    @property
    def step(self) -> int:
        """The stride actually used."""
        return self.size if self.stride is None else self.stride

    def output_shape(self, in_shape: Shape) -> Shape:
        channels, height, width = image_shape(self.name, in_shape)
        if self.size > height or self.size > width:
            raise ConfigError(
                f"pool size {self.size}x{self.size} is larger than the input {height}x{width}"
            )
        return (
            channels,
            pool_output_size(height, self.size, self.step),
            pool_output_size(width, self.size, self.step),
        )


@LAYERS.register("max_pool2d")
class MaxPool2D(Pool2D):
    """Y[n, c, i, j] = max_{p, q < size} X[n, c, i·s + p, j·s + q].

    The gradient goes to the first maximum of each window in row-major order, as in PyTorch
    (ties are everywhere on MNIST's flat background).
    """

    def __init__(self, size: int = 2, stride: int | None = None):
        super().__init__(size, stride)
        self.argmax: np.ndarray | None = None
        # Windows that tile the image keep (rows, columns) offsets instead of the argmax.
        self.winners: tuple[np.ndarray, np.ndarray] | None = None

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        self.x_shape = x.shape
        self.argmax = self.winners = None
        if not training:
            # Evaluation needs only the maxima, not where they are: a third of the work.
            return max_pool2d(x, self.size, self.step)
        if tiles_exactly(x.shape, self.size, self.step):
            out, rows, columns = max_pool2d_tiled_forward(x, self.size)
            self.winners = (rows, columns)
            return out
        out, self.argmax = max_pool2d_forward(x, self.size, self.step)
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        if not self.input_grad:
            return None
        if self.winners is not None:
            return max_pool2d_tiled_backward(grad_out, *self.winners, self.size)
        return max_pool2d_backward(grad_out, self.argmax, self.x_shape, self.size, self.step)


@LAYERS.register("avg_pool2d")
class AvgPool2D(Pool2D):
    """Y[n, c, i, j] = (1 / size²) Σ_{p, q < size} X[n, c, i·s + p, j·s + q]."""

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        self.x_shape = x.shape
        return avg_pool2d(x, self.size, self.step)

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        if not self.input_grad:
            return None
        return avg_pool2d_backward(grad_out, self.x_shape, self.size, self.step)
