"""2-D convolution as one matrix multiply: im2col on the forward, col2im on the backward.

Images are NCHW and weights W (F, C, kh, kw), as in PyTorch (which, like every deep-learning
library, computes a cross-correlation and calls it a convolution):

    Y[n, f, i, j] = b[f] + Σ_{c, p, q} W[f, c, p, q] · Xpad[n, c, i·sh + p, j·sw + q]

im2col copies every kh×kw window of Xpad into a column, so for each image n the sum becomes
the product of W reshaped to (F, C·kh·kw) with its columns (C·kh·kw, OH·OW): a batched
BLAS call whose result (N, F, OH·OW) is already in NCHW order. Its adjoint, col2im, adds
each column of the gradient back onto the window it came from (both copies:
npnet.functional.conv_columns).
`reference.py` holds the same computations as plain loops, to read and to test against.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from npnet.functional.conv_columns import (
    Padding,
    Pair,
    as_padding,
    as_pair,
    col2im_images_last,
    conv_output_size,
    im2col,
    im2col_by_window,
)

# The im2col columns of a chunk of images stay under this size, so the matrix product reads
# them from cache right after they are written. LeNet-5's and cnn.yaml's training steps on
# 64 images in one pass (one core; AMD Zen 5, 1 MiB L2, 32 MiB L3 shared with other
# machines): 2 MiB 0.94x-0.99x the time of 4 MiB; 1 MiB no faster; 32 images: the same.
CHUNK_BYTES = 2**21
# Up to this many rows per column (C·kh·kw), conv2d_forward adds the bias inside the product.
FOLD_BIAS_MAX_ROWS = 32
# Up to this many kernel offsets (kh·kw), or at a stride other than 1, conv2d_input_gradient
# takes dX by col2im; above it, by rows (`input_gradient_by_rows`).
COL2IM_MAX_OFFSETS = 9
# At stride 1 with at least this many output pixels, a training pass keeps the images instead
# of their im2col columns, and dW builds the columns again (`conv2d_weight_gradient_rebuilt`).
REBUILD_MIN_PIXELS = 64


def input_gradient_by_rows(
    grad_out: np.ndarray, W: np.ndarray, x_shape: tuple[int, ...], padding: Padding
) -> np.ndarray:
    """dX of a stride-1 convolution with the kernel's columns q inside one matrix product and
    its rows p as shifted adds: dXpad[c, y, x] = Σ_p T[p, c, y - p, x], where
    T[p, c, i, x] = Σ_{f, q} W[f, c, p, q] · Gq[f, q, i, x] and Gq[f, q, i, x] = G[f, i, x - q]
    (zero where x - q falls outside 0..OW-1): the output gradient shifted kw times along its
    rows, images last.

    grad_out (N, F, OH, OW) -> dx (N, C, H, W), contiguous. col2im adds kh·kw blocks the size
    of the columns; this makes kw shifted copies of G and kh adds instead: for a 5x5 kernel
    (LeNet's second conv) 1.3x-1.5x as fast, for 7x7 1.7x, for 3x3 no faster. The same sum in
    another order than `col2im`'s (f and q inside the product, p outside).
    Plain loops: `npnet.functional.reference.conv2d_backward`.
    """
    n, f, oh, ow = grad_out.shape
    c, kh, kw = W.shape[1:]
    (top, bottom), (left, right) = padding
    h, w = x_shape[2:]
    hp, wp = h + top + bottom, w + left + right
    # (F, OH, OW, N): images last, rows of OW·N floats. Copied once: the kw shifted copies
    # then read whole rows (0.084 against 0.128 ms for LeNet's second conv at batch 32).
    g = np.ascontiguousarray(grad_out.transpose(1, 2, 3, 0))
    shifted = np.empty((f, kw, oh, wp, n), dtype=grad_out.dtype)
    for q in range(kw):
        shifted[:, q, :, :q] = 0
        shifted[:, q, :, q : q + ow] = g
        shifted[:, q, :, q + ow :] = 0
    rows = W.transpose(2, 1, 0, 3).reshape(kh * c, f * kw)  # row (p, c), column (f, q)
    t = (rows @ shifted.reshape(f * kw, -1)).reshape(kh, c, oh, wp, n)
    dxp = np.zeros((c, hp, wp, n), dtype=t.dtype)
    for p in range(kh):
        dxp[:, p : p + oh] += t[p]
    # Back to NCHW in one copy, the padding cropped off.
    return np.ascontiguousarray(dxp[:, top : top + h, left : left + w].transpose(3, 0, 1, 2))


def images_per_chunk(bytes_per_image: int) -> int:
    """How many images' im2col columns fit in CHUNK_BYTES (at least one)."""
    return max(1, CHUNK_BYTES // bytes_per_image)


def conv2d_forward(
    x: np.ndarray,
    W: np.ndarray,
    b: np.ndarray | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] | Padding = 0,
    *,
    keep_cols: bool = True,
    window: int = 1,
) -> tuple[np.ndarray, np.ndarray | None]:
    """`conv2d`, also returning the im2col columns the backward pass needs (None when
    `keep_cols` is False: an evaluation pass then reuses one chunk's worth of memory).

    x (N, C, H, W), W (F, C, kh, kw), b (F,) -> out (N, F, OH, OW), cols (N, C·kh·kw, OH·OW).
    With `window` k > 1 the columns come from `im2col_by_window` and out is (N, F, k², OH'·OW'):
    the conv's output as the blocks of the k×k max-pool after it (npnet.functional.conv_pool).
    """
    stride, padding = as_pair(stride), as_padding(padding)
    f, c, kh, kw = W.shape
    n, _, h, w = x.shape
    oh, ow = (
        conv_output_size(h, kh, stride[0], padding[0]),
        conv_output_size(w, kw, stride[1], padding[1]),
    )
    pixels = oh * ow if window == 1 else window * window * (oh // window) * (ow // window)
    k = c * kh * kw
    # With few rows per column (a first layer's one channel) the pass adding b over the
    # output costs as much as the product itself: b then rides in the product, as a last
    # row of ones in the columns and a last column b in W (1.3x-1.5x as fast for 1x3x3 to
    # 3x3x3 kernels; the same numbers there, b being the last term of each sum either way).
    fold_bias = b is not None and k <= FOLD_BIAS_MAX_ROWS
    rows = W.reshape(f, k)
    if fold_bias:
        rows = np.concatenate([rows, b[:, None]], axis=1)
    out = np.empty((n, f, pixels), dtype=np.result_type(x, W))
    # A chunk of images at a time: its columns are still in cache when the matrix product
    # reads them (the columns of a whole batch of 1000 would be 113 MB for the MNIST CNN's
    # second conv), and Y[n] = W cols[n] comes out in NCHW order (or, with `window`, in the
    # pool's window order), with no transposing copy.
    chunk = images_per_chunk((k + fold_bias) * pixels * x.itemsize)
    cols = np.empty((n if keep_cols else min(n, chunk), k + fold_bias, pixels), dtype=x.dtype)
    cols[:, k:] = 1  # the row of ones, when b is folded in
    for start in range(0, n, chunk):
        part = slice(start, start + chunk)
        x_part = x[part]
        part_cols = cols[part] if keep_cols else cols[: len(x_part)]
        if window == 1:
            im2col(x_part, (kh, kw), stride, padding, out=part_cols[:, :k])
        else:
            im2col_by_window(x_part, (kh, kw), stride, padding, window, out=part_cols[:, :k])
        np.matmul(rows, part_cols, out=out[part])
        if b is not None and not fold_bias:
            out[part] += b[:, None]
    shape = (n, f, oh, ow) if window == 1 else (n, f, window * window, -1)
    return out.reshape(shape), (cols[:, :k] if keep_cols else None)


def conv2d(
    x: np.ndarray,
    W: np.ndarray,
    b: np.ndarray | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] | Padding = 0,
) -> np.ndarray:
    """Y[n, f, i, j] = b[f] + Σ_{c, p, q} W[f, c, p, q] · Xpad[n, c, i·sh + p, j·sw + q].

    x (N, C, H, W), W (F, C, kh, kw), b (F,) or None -> (N, F, OH, OW) with
    OH = ⌊(H + pad_top + pad_bottom - kh) / sh⌋ + 1 (likewise OW). `stride` is an int or
    (sh, sw); `padding` an int, (ph, pw) or ((top, bottom), (left, right)).
    Plain loops: `npnet.functional.reference.conv2d`.
    """
    return conv2d_forward(x, W, b, stride, padding, keep_cols=False)[0]


def sum_over_images(
    values: np.ndarray, cuts: Sequence[int] | None, axis: int | tuple[int, ...] = 0
) -> np.ndarray:
    """Σ of `values` over `axis`, which holds axis 0, the images. With `cuts` (row indices)
    the images between them are summed block by block and the blocks' sums added in order:
    the bits of each block's backward pass taken on its own (npnet.nn.parallel's slices), while
    every per-image product before the sum runs once over the whole batch."""
    if not cuts:
        return values.sum(axis=axis)
    blocks = [values[block].sum(axis=axis) for block in image_blocks(len(values), cuts)]
    return functools.reduce(np.add, blocks)


def image_blocks(images: int, cuts: Sequence[int] | None) -> list[slice]:
    """The blocks of images between the `cuts` (row indices): cuts [3] of 5 -> 0:3 and 3:5;
    one block of all the images without cuts."""
    starts, ends = [0, *(cuts or [])], [*(cuts or []), images]
    return [slice(start, end) for start, end in zip(starts, ends, strict=True)]


def conv2d_weight_gradient(
    g: np.ndarray, cols: np.ndarray, W_shape: tuple[int, ...], cuts: Sequence[int] | None = None
) -> np.ndarray:
    """dW = Σ_n G[n] cols[n]ᵀ: g (N, F, P) the output gradient with its pixels in the order of
    the columns of cols (N, C·kh·kw, P) -> dW (F, C, kh, kw); the sum over the images in
    blocks at `cuts` (`sum_over_images`)."""
    # dWᵀ = Σ_n cols[n] G[n]ᵀ, one (C·kh·kw, F) product per image: OpenBLAS runs this
    # orientation 1.5x faster than G[n] cols[n]ᵀ at the MNIST CNN's shapes.
    return sum_over_images(np.matmul(cols, g.transpose(0, 2, 1)), cuts).T.reshape(W_shape)


def conv2d_weight_gradient_rebuilt(
    g: np.ndarray,
    x: np.ndarray,
    W_shape: tuple[int, ...],
    stride: Pair,
    padding: Padding,
    cuts: Sequence[int] | None = None,
) -> np.ndarray:
    """`conv2d_weight_gradient` with the im2col columns built again from the images x
    (N, C, H, W), a chunk of images at a time (CHUNK_BYTES) into one buffer: the same
    products, so the same numbers, without keeping the columns from the forward pass.

    The columns are kh·kw (times C) copies of the input; kept, they go out to memory and
    come back for dW (LeNet-5's at batch 64: 5 MB for the first conv, 3.8 MB for the second).
    At stride 1 im2col copies runs of OH·OW floats, and building them again in cache costs
    less: training steps (one core, batch 64, AMD Zen 5) with the columns built again took
    0.96x the time for LeNet-5's first conv (1 -> 6, 28x28), 0.97x-0.98x for its second
    (6 -> 16, 10x10 out), 0.92x for 3 -> 16 (5x5, 28x28 out), 0.96x for 16 -> 32 (10x10
    out); with 7x7 outputs (32 -> 64 and 64 -> 64, 3x3) 1.01x and 1.03x, at stride 2 (1 -> 8
    and 8 -> 16, 14x14 and 7x7 out) 1.11x and 1.22x: hence REBUILD_MIN_PIXELS, stride 1.
    """
    n, f, pixels = g.shape
    _, c, kh, kw = W_shape
    k = c * kh * kw
    chunk = images_per_chunk(k * pixels * x.itemsize)
    products = np.empty((n, k, f), dtype=np.result_type(g, x))
    cols = np.empty((min(n, chunk), k, pixels), dtype=x.dtype)
    for start in range(0, n, chunk):
        part = slice(start, start + chunk)
        part_cols = cols[: len(x[part])]
        im2col(x[part], (kh, kw), stride, padding, out=part_cols)
        np.matmul(part_cols, g[part].transpose(0, 2, 1), out=products[part])
    return sum_over_images(products, cuts).T.reshape(W_shape)


def conv2d_backward(
    grad_out: np.ndarray,
    cols: np.ndarray | None,
    W: np.ndarray,
    x_shape: tuple[int, ...],
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] | Padding = 0,
    *,
    input_grad: bool = True,
    x: np.ndarray | None = None,
    cuts: Sequence[int] | None = None,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of `conv2d` with G[n] = dL/dY[n] as (F, OH·OW): dW = Σ_n G[n] cols[n]ᵀ,
    db = Σ G over (n, i, j), dX = col2im(Wᵀ G[n] for each n) (`col2im_images_last`), or for a
    stride-1 kernel of more than COL2IM_MAX_OFFSETS offsets `input_gradient_by_rows`.

    grad_out (N, F, OH, OW), cols from `conv2d_forward`, or None and x the conv's input
    (N, C, H, W) to build them again (`conv2d_weight_gradient_rebuilt`) -> dx (N, C, H, W)
    or None when `input_grad` is False (the col2im is skipped), dW (F, C, kh, kw), db (F,).
    With `cuts`, the numbers of the blocks of images between them run apart: dW and db
    summed block by block (`sum_over_images`), dX's product, which spans the images, taken
    block by block.
    Plain loops: `npnet.functional.reference.conv2d_backward`.
    """
    n, f = grad_out.shape[:2]
    g = grad_out.reshape(n, f, -1)  # (N, F, OH·OW): image n's rows match cols[n]
    stride, padding = as_pair(stride), as_padding(padding)
    if cols is None:
        dW = conv2d_weight_gradient_rebuilt(g, x, W.shape, stride, padding, cuts)
    else:
        dW = conv2d_weight_gradient(g, cols, W.shape, cuts)
    db = sum_over_images(g, cuts, axis=(0, 2))
    if not input_grad:
        return None, dW, db
    dxs = [
        conv2d_input_gradient(
            grad_out[block], W, (len(grad_out[block]), *x_shape[1:]), stride, padding
        )
        for block in image_blocks(n, cuts)
    ]
    return (dxs[0] if len(dxs) == 1 else np.concatenate(dxs)), dW, db


def conv2d_input_gradient(
    grad_out: np.ndarray, W: np.ndarray, x_shape: tuple[int, ...], stride: Pair, padding: Padding
) -> np.ndarray:
    """dX of `conv2d`: col2im(Wᵀ G[n] for each n) (`col2im_images_last`), or for a stride-1
    kernel of more than COL2IM_MAX_OFFSETS offsets `input_gradient_by_rows`.

    grad_out (N, F, OH, OW), W (F, C, kh, kw) -> dx (N, C, H, W)."""
    f, kh, kw = W.shape[0], *W.shape[2:]
    if stride == (1, 1) and kh * kw > COL2IM_MAX_OFFSETS:
        return input_gradient_by_rows(grad_out, W, x_shape, padding)
    # Wᵀ G as one matrix product over the whole batch, G with the filter axis first and the
    # images last (F, OH·OW·N): faster than one product per image, and its
    # (C·kh·kw, OH, OW, N) result is the order col2im adds fastest in.
    g_images_last = grad_out.transpose(1, 2, 3, 0).reshape(f, -1)  # copies
    dcols = W.reshape(f, -1).T @ g_images_last
    return col2im_images_last(dcols, x_shape, (kh, kw), stride, padding)
