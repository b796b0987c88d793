"""The fully connected layer."""

from __future__ import annotations

import math

import numpy as np

from npnet.errors import ConfigError
from npnet.functional.linear import linear, linear_backward
from npnet.nn.init import check_initializer, initialize
from npnet.nn.layer import Layer, Shape, joined_gradients
from npnet.registry import LAYERS
from npnet.validate import boolean, positive_int


@LAYERS.register("dense")
class Dense(Layer):
    """Fully connected: Z = X W + b.

    x (N, in) -> out (N, units); W (in, units) drawn by the `init` initializer, b (units,) by
    `bias_init` (zeros; left out when `use_bias` is false). Either is a name or a mapping
    with its parameters, e.g. `{name: normal, std: 1.0}` (npnet.nn.init).
    """

    def __init__(
        self,
        units: int,
        use_bias: bool = True,
        init: str | dict = "he_normal",
        bias_init: str | dict = "zeros",
    ):
        super().__init__()
        self.units = positive_int("units", units)
        self.use_bias = boolean("use_bias", use_bias)
        self.init = check_initializer("init", init)
        self.bias_init = check_initializer("bias_init", bias_init)
        self.x: np.ndarray | None = None

    def output_shape(self, in_shape: Shape) -> Shape:
        if len(in_shape) != 1:
            raise ConfigError(
                f"dense expects a flat input (features,), got {tuple(in_shape)}; "
                "add a flatten layer before it"
            )
        return (self.units,)

    def parameter_count(self, in_shape: Shape) -> int:
        return math.prod(in_shape) * self.units + self.units * self.use_bias

    def build(self, in_shape: Shape, rng: np.random.Generator, dtype: np.dtype) -> Shape:
        out_shape = super().build(in_shape, rng, dtype)
        (features,) = self.in_shape
        self.params = {
            "W": initialize(self.init, (features, self.units), features, self.units, rng, dtype)
        }
        if self.use_bias:
            self.params["b"] = initialize(
                self.bias_init, (self.units,), features, self.units, rng, dtype
            )
        return out_shape

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        self.x = x
        W, b = self.params["W"], self.params.get("b")
        # Block by block (`Layer.blocks`): BLAS may pick another kernel for more rows.
        outs = [linear(part, W, b) for part in self.blocks(x)]
        return outs[0] if len(outs) == 1 else np.concatenate(outs)

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        W = self.params["W"]
        dx, dW, db = joined_gradients(
            [
                linear_backward(g, x, W, input_grad=self.input_grad)
                for g, x in zip(self.blocks(grad_out), self.blocks(self.x), strict=True)
            ]
        )
        self.grads = {"W": dW, "b": db} if self.use_bias else {"W": dW}
        return dx
