"""Activation layers: no parameters, the per-sample shape unchanged.

Each layer is its forward pass and the local rule for its gradient, side by side; the math
lives in `npnet.functional.activations`. x: (N, *shape) -> out: (N, *shape), same dtype.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from npnet.functional import activations as F
from npnet.nn.layer import Layer
from npnet.registry import LAYERS
from npnet.validate import number


@LAYERS.register("identity")
class Identity(Layer):
    """f(x) = x: a placeholder, e.g. the linear output of a regression model."""

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        return grad_out if self.input_grad else None


class Elementwise(Layer):
    """An activation applied entry by entry: out = f(x), dx = f'(·) ⊙ grad_out.

    A subclass names f (`function`) and its slope f' (`slope`), both from
    `npnet.functional.activations`, called with the layer's `constants()` after the array.
    `slope` reads the input x, or the output when `slope_from_output` is set (σ and tanh
    have their slope in terms of their output, and ReLU's [x > 0] is [out > 0]), so the
    layer keeps that one array for the backward pass. `slope` returns a new array, which
    the backward pass multiplies the incoming gradient into.
    """

    function: Callable[..., np.ndarray]
    slope: Callable[..., np.ndarray]
    slope_from_output = False

    def constants(self) -> tuple[float, ...]:
        """The arguments f and f' take after the array (LeakyReLU's slope, ELU's α)."""
        return ()

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        out = self.function(x, *self.constants())
        self.kept = out if self.slope_from_output else x
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        if not self.input_grad:
            return None
        dx = self.slope(self.kept, *self.constants())
        dx *= grad_out
        return dx


@LAYERS.register("relu")
class ReLU(Elementwise):
    """ReLU(x) = max(0, x), elementwise; its slope [x > 0] is [out > 0]."""

    function = staticmethod(F.relu)
    slope = staticmethod(F.relu_derivative)
    slope_from_output = True


@LAYERS.register("leaky_relu")
class LeakyReLU(Elementwise):
    """LeakyReLU(x) = x if x > 0 else a·x, a = `negative_slope`: negative inputs keep a
    small gradient, so a unit cannot die."""

    function = staticmethod(F.leaky_relu)
    slope = staticmethod(F.leaky_relu_derivative)

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = number("negative_slope", negative_slope)

    def constants(self) -> tuple[float, ...]:
        return (self.negative_slope,)


@LAYERS.register("elu")
class ELU(Elementwise):
    """ELU(x) = x if x > 0 else α·(e^x − 1): smooth, saturating at −α for very negative x."""

    function = staticmethod(F.elu)
    slope = staticmethod(F.elu_derivative)

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = number("alpha", alpha, low=0.0)

    def constants(self) -> tuple[float, ...]:
        return (self.alpha,)


@LAYERS.register("gelu")
class GELU(Elementwise):
    """GELU(x) = x·Φ(x) = x/2 · (1 + erf(x/√2)), the exact form (PyTorch's default)."""

    function = staticmethod(F.gelu)
    slope = staticmethod(F.gelu_derivative)


@LAYERS.register("sigmoid")
class Sigmoid(Elementwise):
    """σ(x) = 1 / (1 + e^-x), elementwise; its slope σ·(1 − σ) needs only the output."""

    function = staticmethod(F.sigmoid)
    slope = staticmethod(F.sigmoid_derivative_from_output)
    slope_from_output = True


@LAYERS.register("tanh")
class Tanh(Elementwise):
    """tanh(x), elementwise; its slope 1 − tanh² needs only the output."""

    function = staticmethod(F.tanh)
    slope = staticmethod(F.tanh_derivative_from_output)
    slope_from_output = True


@LAYERS.register("softmax")
class Softmax(Layer):
    """softmax(x)_i = e^(x_i) / Σ_j e^(x_j) over the last axis.

    For classification prefer a linear output with the "softmax_cross_entropy" loss, which
    fuses the two stably; this layer is for when the probabilities themselves are the output.
    The backward pass is the full Jacobian-vector product, not just its diagonal.
    """

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        self.out = F.softmax(x)
        return self.out

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        if not self.input_grad:
            return None
        return F.softmax_backward(grad_out, self.out)
