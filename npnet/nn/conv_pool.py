"""A first convolution and the max-pool after it, run as one pass (npnet.functional.conv_pool).

The network pairs a conv2d with the max_pool2d right after it (in the order it runs them, so
also across a ReLU, which runs after the pool) when the pool's stride is its size (windows
side by side, not overlapping), the conv has at least as many filters as rows per im2col
column (F ≥ C·kh·kw: its output, which the pool's strided passes read, outweighs the
columns, which the window-ordered im2col writes) and nobody needs dL/dx of the conv's input
(a first layer). The two layers keep their parameters, gradients and summary rows; only their
passes are merged, and each pass checks again, so a gradient check that switches on the input
gradient runs them apart. The merged pass keeps its window-ordered columns even where the conv
alone would build them again (`Conv2D.rebuilds_columns`): for cnn.yaml's first conv, built
again, the training step took 1.00x-1.01x the time.
"""

from __future__ import annotations

import numpy as np

from npnet.functional.conv_pool import conv2d_max_pool2d_backward, conv2d_max_pool2d_forward
from npnet.nn.conv import Conv2D
from npnet.nn.layer import Layer
from npnet.nn.pooling import MaxPool2D


def fusable(conv: Layer, pool: Layer) -> bool:
    """Whether `conv` then `pool` can run as one `ConvMaxPool` (see the module docstring)."""
    if not (isinstance(conv, Conv2D) and isinstance(pool, MaxPool2D)):
        return False
    kh, kw = conv.kernel_hw
    return (
        pool.step == pool.size
        # Measured on a training step of one slice of 32 images, merged / apart: with the
        # MNIST CNN's first conv (16 filters, 1x3x3 = 9 rows) 0.88x-0.95x; with LeNet's
        # (6 filters, 1x5x5 = 25 rows) 1.01x (its evaluation 1.10x). The CNN's second conv
        # (32 filters, 16x3x3 = 144 rows) would need input gradients, and its window-ordered
        # im2col alone takes 1.7x as long as im2col's.
        and conv.filters >= conv.in_shape[0] * kh * kw
    )


class ConvMaxPool:
    """conv2d then max_pool2d in one forward and one backward pass, filling the conv's grads."""

    def __init__(self, conv: Conv2D, pool: MaxPool2D):
        self.conv, self.pool = conv, pool
        self.layers = (conv, pool)
        self.saved: tuple[np.ndarray, np.ndarray] | None = None

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        conv = self.conv
        if conv.input_grad:  # dL/dx wanted (a gradient check): the two layers one by one
            self.saved = None
            return self.pool.forward(conv.forward(x, training), training)
        out, self.saved = conv2d_max_pool2d_forward(
            x,
            conv.params["W"],
            conv.params.get("b"),
            conv.stride_hw,
            conv.pads,
            self.pool.size,
            keep=training,
        )
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        if self.saved is None:
            return self.conv.backward(self.pool.backward(grad_out))
        cols, winner = self.saved
        W_shape = self.conv.params["W"].shape
        # dW and db summed over the images block by block at the conv's cuts (`Layer.cuts`).
        dW, db = conv2d_max_pool2d_backward(grad_out, cols, winner, W_shape, self.conv.cuts)
        self.conv.grads = {"W": dW, "b": db} if self.conv.use_bias else {"W": dW}
        return None
