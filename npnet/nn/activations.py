"""Activation layers: no parameters, the per-sample shape unchanged.

Each layer is its forward pass and the local rule for its gradient, side by side; the math
lives in `npnet.functional.activations`. x: (N, *shape) -> out: (N, *shape), same dtype.
"""

from __future__ import annotations

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


@LAYERS.register("relu")
class ReLU(Layer):
    """ReLU(x) = max(0, x), elementwise."""

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        # The slope is 1 where x > 0 and 0 elsewhere: a boolean mask (1 byte per entry) is the
        # whole of it, and multiplying by it is cheaper than building a float derivative array.
        # Evaluation has no backward pass, so it skips the mask.
        self.mask = x > 0 if training else None
        return F.relu(x)

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        if not self.input_grad:
            return None
        return np.multiply(grad_out, self.mask)


@LAYERS.register("leaky_relu")
class LeakyReLU(Layer):
    """LeakyReLU(x) = x if x > 0 else a·x, a = `negative_slope`: negative inputs keep a
    small gradient, so a unit cannot die."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = number("negative_slope", negative_slope)

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        self.x = x
        return F.leaky_relu(x, self.negative_slope)

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        if not self.input_grad:
            return None
        dx = F.leaky_relu_derivative(self.x, self.negative_slope)
        dx *= grad_out
        return dx


@LAYERS.register("elu")
class ELU(Layer):
    """ELU(x) = x if x > 0 else α·(e^x − 1): smooth, saturating at −α for very negative x."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = number("alpha", alpha, low=0.0)

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        self.x = x
        return F.elu(x, self.alpha)

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        if not self.input_grad:
            return None
        dx = F.elu_derivative(self.x, self.alpha)
        dx *= grad_out
        return dx


@LAYERS.register("gelu")
class GELU(Layer):
    """GELU(x) = x·Φ(x) = x/2 · (1 + erf(x/√2)), the exact form (PyTorch's default)."""

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        self.x = x
        return F.gelu(x)

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        if not self.input_grad:
            return None
        dx = F.gelu_derivative(self.x)
        dx *= grad_out
        return dx


@LAYERS.register("sigmoid")
class Sigmoid(Layer):
    """σ(x) = 1 / (1 + e^-x), elementwise; the backward pass needs only the output."""

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        self.out = F.sigmoid(x)
        return self.out

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        if not self.input_grad:
            return None
        dx = F.sigmoid_derivative_from_output(self.out)
        dx *= grad_out
        return dx


@LAYERS.register("tanh")
class Tanh(Layer):
    """tanh(x), elementwise; the backward pass needs only the output."""

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        self.out = F.tanh(x)
        return self.out

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        if not self.input_grad:
            return None
        dx = F.tanh_derivative_from_output(self.out)
        dx *= grad_out
        return dx


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
