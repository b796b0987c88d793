"""A convolution and the max-pool after it in one pass: the pool's windows laid out as blocks.

    P[n, f, i', j'] = max_{0 ≤ a, b < k} Y[n, f, k·i' + a, k·j' + b],  Y = conv2d(X, W, b)

for k×k windows side by side (the pool's stride is k; rows and columns of Y past the last
whole window are dropped, as by the pool). In NCHW order the k² pixels of a window are spread
over k rows, so the pool reads Y through strided views, pass after pass, and its backward
writes the gradient back the same way. With the im2col columns in window order instead
(`conv_columns.im2col_by_window`), the conv's product gives Y as k² contiguous blocks Y_ab, one per
window offset (a, b), and the pool is an elementwise maximum of k² whole arrays (the first
maximum in row-major order (a, b) wins ties, as in PyTorch). Backward: dY_ab = dP ·
[the window's first maximum is at (a, b)], then the conv's dW = Σ_n dY[n] cols[n]ᵀ over
those blocks, its pixels in another order, and db = Σ dP.

It pays where the conv's output outweighs its columns (more filters than rows per column, as
in a first layer on a grey image): a training step of the MNIST CNN on 32 images takes
0.88x-0.95x the time with its first conv and pool merged (npnet.nn.conv_pool says when the
network merges them). No dL/dX: only for a layer whose input needs no gradient. The outputs
are the same sums as the conv then the pool (equal to the last bit where OpenBLAS rounds a
column alike wherever it stands in a product: not on every CPU); dW and db are the same sums
in another order.
The readable twin is the two one after the other: `npnet.functional.reference.conv2d`, then
`reference.max_pool2d`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from npnet.functional.conv import conv2d_forward, conv2d_weight_gradient, sum_over_images
from npnet.functional.conv_columns import Padding, Pair, conv_output_size
from npnet.functional.pooling import first_max_of, max_of


def conv2d_max_pool2d_forward(
    x: np.ndarray,
    W: np.ndarray,
    b: np.ndarray | None,
    stride: Pair,
    padding: Padding,
    window: int,
    *,
    keep: bool = True,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """P = max_pool2d(conv2d(X, W, b, stride, padding), window), and what the backward pass
    needs (None when `keep` is False: an evaluation pass, the columns a chunk at a time).

    x (N, C, H, W), W (F, C, kh, kw), b (F,) or None -> P (N, F, OH', OW') and (cols
    (N, C·kh·kw, k²·OH'·OW') from `im2col_by_window`; winner (N, F, OH'·OW'): the offset
    a·k + b of each window's first maximum, in a small unsigned int type).
    """
    blocks, cols = conv2d_forward(x, W, b, stride, padding, keep_cols=keep, window=window)
    views = [blocks[:, :, offset] for offset in range(window * window)]  # Y_ab (N, F, OH'·OW')
    shape = (*blocks.shape[:2], *pooled_shape(x.shape, W.shape, stride, padding, window))
    if not keep:
        return max_of(views).reshape(shape), None
    pooled, winner = first_max_of(views)
    return pooled.reshape(shape), (cols, winner)


def pooled_shape(
    x_shape: tuple[int, ...], W_shape: tuple[int, ...], stride: Pair, padding: Padding, window: int
) -> tuple[int, int]:
    """(OH', OW') = (⌊OH / k⌋, ⌊OW / k⌋): the k×k windows side by side over the conv's output."""
    height, width = (
        conv_output_size(x_shape[2 + axis], W_shape[2 + axis], stride[axis], padding[axis])
        for axis in (0, 1)
    )
    return height // window, width // window


def conv2d_max_pool2d_backward(
    grad_out: np.ndarray,
    cols: np.ndarray,
    winner: np.ndarray,
    W_shape: tuple[int, ...],
    cuts: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """dW and db of `conv2d_max_pool2d_forward`: dY_ab = dP · [winner = a·k + b], whole blocks
    at a time, then dW = Σ_n dY[n] cols[n]ᵀ (`conv2d_weight_gradient`) and db = Σ dP (each
    pooled gradient lands on exactly one pixel of Y), both summed over the images in blocks at
    `cuts` (`sum_over_images`).

    grad_out (N, F, OH', OW'), cols and winner from the forward -> dW (F, C, kh, kw), db (F,).
    """
    n, f = grad_out.shape[:2]
    g = grad_out.reshape(n, f, -1)
    offsets = cols.shape[2] // g.shape[2]
    dy = np.empty((n, f, offsets, g.shape[2]), dtype=grad_out.dtype)
    offset_of = winner.dtype.type  # compare in the winner's own small type
    for offset in range(offsets):  # a block at a time: 2x as fast as one broadcast product
        np.multiply(g, winner == offset_of(offset), out=dy[:, :, offset])
    dW = conv2d_weight_gradient(dy.reshape(n, f, -1), cols, W_shape, cuts)
    return dW, sum_over_images(g, cuts, axis=(0, 2))
