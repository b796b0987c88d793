"""The 2-D convolution layer (NCHW, weights (F, C, kh, kw) as in PyTorch)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from npnet.errors import ConfigError
from npnet.functional.conv import REBUILD_MIN_PIXELS, conv2d, conv2d_backward, conv2d_forward
from npnet.functional.conv_columns import Padding, Pair, as_padding, as_pair, conv_output_size
from npnet.functional.conv_shifted import (
    conv2d_shifted_backward,
    conv2d_shifted_forward,
    runs_shifted,
)
from npnet.nn.init import check_initializer, initialize
from npnet.nn.layer import Layer, Shape
from npnet.registry import LAYERS, did_you_mean
from npnet.validate import boolean, non_negative_int, positive_int


def int_or_pair(name: str, value: Any, check: Callable[[str, Any], int]) -> int | list[int]:
    """`value` as an int or a [height, width] list, each entry passing `check`; the list
    form (not a tuple) so the config stays plain YAML."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ConfigError(f"'{name}' must be an int or a pair [height, width], got {value!r}")
        return [check(name, v) for v in value]
    return check(name, value)


def image_shape(layer: str, in_shape: Shape) -> Shape:
    """`in_shape` when it is a per-sample image (channels, height, width)."""
    if len(in_shape) != 3:
        raise ConfigError(
            f"{layer} expects an image input (channels, height, width), got {tuple(in_shape)}"
        )
    return tuple(in_shape)


def resolve_padding(padding: int | list[int] | str, kernel_hw: Pair) -> Padding:
    """Zero padding per side, ((top, bottom), (left, right)), for a `padding` argument."""
    if padding == "valid":
        return as_padding(0)
    if padding == "same":
        # k - 1 rows (columns) keep the size at stride 1; an odd one out goes after, as in PyTorch
        kh, kw = kernel_hw
        return ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2)
    return as_padding(padding)


@LAYERS.register("conv2d")
class Conv2D(Layer):
    """2-D convolution: Y[n, f] = b[f] + Σ_c W[f, c] ⋆ Xpad[n, c] (cross-correlation).

    x (N, C, H, W) -> out (N, filters, OH, OW), OH = ⌊(H + pad_top + pad_bottom - kh) / sh⌋ + 1.
    W (filters, C, kh, kw) drawn by `init` with fan_in = C·kh·kw, fan_out = filters·kh·kw;
    b (filters,) drawn by `bias_init` (zeros) with the same fans; either initializer is a name
    or a mapping with its parameters (npnet.nn.init). `padding` is an int, a pair, "valid" (0)
    or "same" (output as large as the input; stride 1 only; an even kernel pads one more
    row/column at the bottom/right, as PyTorch does). A stride-1 conv whose output is its
    input's size runs by shifted copies of whole images (npnet.functional.conv_shifted) when
    it has the channels and pixels for that to pay (`runs_shifted`), any other by im2col;
    at stride 1 with at least REBUILD_MIN_PIXELS output pixels the backward pass builds the
    im2col columns again from the input rather than keeping them (`rebuilds_columns`).
    """

    def __init__(
        self,
        filters: int,
        kernel: int | list[int],
        stride: int | list[int] = 1,
        padding: int | list[int] | str = 0,
        use_bias: bool = True,
        init: str | dict = "he_normal",
        bias_init: str | dict = "zeros",
    ):
        super().__init__()
        self.filters = positive_int("filters", filters)
        self.kernel = int_or_pair("kernel", kernel, positive_int)
        self.stride = int_or_pair("stride", stride, positive_int)
        self.use_bias = boolean("use_bias", use_bias)
        self.init = check_initializer("init", init)
        self.bias_init = check_initializer("bias_init", bias_init)
        self.kernel_hw = as_pair(self.kernel)
        self.stride_hw = as_pair(self.stride)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ConfigError(
                    "'padding' must be an int, a pair, 'same' or 'valid', "
                    f"got {padding!r}{did_you_mean(padding, ['same', 'valid'])}"
                )
            self.padding = padding
        else:
            self.padding = int_or_pair("padding", padding, non_negative_int)
        if self.padding == "same" and self.stride_hw != (1, 1):
            raise ConfigError(f"padding 'same' needs stride 1, got stride {self.stride!r}")
        self.pads = resolve_padding(self.padding, self.kernel_hw)
        # What the backward pass needs: the im2col columns, the input when it builds them
        # again (`rebuilds_columns`), or the input shifted by columns when the conv runs by
        # shifted copies (npnet.functional.conv_shifted)
        self.saved: np.ndarray | None = None
        self.shifted = False
        self.rebuilds_columns = False
        self.x_shape: tuple[int, ...] | None = None

    def output_shape(self, in_shape: Shape) -> Shape:
        _, height, width = image_shape("conv2d", in_shape)
        (kh, kw), (pad_h, pad_w) = self.kernel_hw, self.pads
        padded_h, padded_w = height + sum(pad_h), width + sum(pad_w)
        if kh > padded_h or kw > padded_w:
            raise ConfigError(
                f"kernel {kh}x{kw} is larger than the padded input {padded_h}x{padded_w}"
            )
        return (
            self.filters,
            conv_output_size(height, kh, self.stride_hw[0], pad_h),
            conv_output_size(width, kw, self.stride_hw[1], pad_w),
        )

    def parameter_count(self, in_shape: Shape) -> int:
        (kh, kw), channels = self.kernel_hw, in_shape[0]
        return self.filters * (channels * kh * kw + self.use_bias)

    def build(self, in_shape: Shape, rng: np.random.Generator, dtype: np.dtype) -> Shape:
        out_shape = super().build(in_shape, rng, dtype)
        channels = self.in_shape[0]
        kh, kw = self.kernel_hw
        shape = (self.filters, channels, kh, kw)
        fan_in, fan_out = channels * kh * kw, self.filters * kh * kw
        self.shifted = runs_shifted(self.in_shape, shape, self.stride_hw, self.pads)
        self.rebuilds_columns = (
            not self.shifted
            and self.stride_hw == (1, 1)
            and out_shape[1] * out_shape[2] >= REBUILD_MIN_PIXELS
        )
        self.params = {"W": initialize(self.init, shape, fan_in, fan_out, rng, dtype)}
        if self.use_bias:
            self.params["b"] = initialize(
                self.bias_init, (self.filters,), fan_in, fan_out, rng, dtype
            )
        return out_shape

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        W, b = self.params["W"], self.params.get("b")
        self.x_shape = x.shape
        if self.shifted:
            out, self.saved = conv2d_shifted_forward(x, W, b, self.pads, keep=training)
            return out
        if not training or self.rebuilds_columns:
            # No backward pass follows, or it builds the columns again from x: keeping them
            # would hold C·kh·kw floats per output pixel (113 MB for the MNIST CNN's second
            # conv at batch 1000), and conv2d builds them a chunk at a time.
            self.saved = x if training else None
            return conv2d(x, W, b, self.stride_hw, self.pads)
        out, self.saved = conv2d_forward(x, W, b, self.stride_hw, self.pads)
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        # With `Layer.cuts`, dW and db are summed over the images block by block, and dX's
        # one product over the images (by rows or by col2im) runs block by block; the
        # per-image products run once over the batch.
        W, saved = self.params["W"], self.saved
        if self.shifted:
            dx, dW, db = conv2d_shifted_backward(
                grad_out, saved, W, self.pads, input_grad=self.input_grad, cuts=self.cuts
            )
        else:
            cols, x = (None, saved) if self.rebuilds_columns else (saved, None)
            dx, dW, db = conv2d_backward(
                grad_out,
                cols,
                W,
                self.x_shape,
                self.stride_hw,
                self.pads,
                input_grad=self.input_grad,
                x=x,
                cuts=self.cuts,
            )
        self.grads = {"W": dW, "b": db} if self.use_bias else {"W": dW}
        return dx
