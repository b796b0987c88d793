"""The window copies behind a 2-D convolution: im2col, which copies every kh×kw window of
the padded images into a column, its window-ordered twin for a conv merged with the max-pool
after it, and their adjoint col2im, which adds each column of a gradient back onto the
window it came from; and the shapes they share.

    cols[n, (c, p, q), (i, j)] = Xpad[n, c, i·sh + p, j·sw + q]
    col2im: dX[n, c, i·sh + p, j·sw + q] += dcols[n, (c, p, q), (i, j)]

npnet.functional.conv multiplies the columns by the weights. `reference.py` holds the same
copies as plain loops, to read and to test against.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Pair = tuple[int, int]
Padding = tuple[Pair, Pair]  # ((top, bottom), (left, right))


def as_pair(value: int | Sequence[int]) -> Pair:
    """`3` -> (3, 3); `(3, 5)` -> (3, 5): the (height, width) form of a kernel or stride."""
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    height, width = value
    return int(height), int(width)


def as_padding(value: int | Sequence[int] | Padding) -> Padding:
    """Zero padding per side: `1` -> ((1, 1), (1, 1)); `(1, 2)` -> ((1, 1), (2, 2));
    `((0, 1), (0, 1))` is kept (asymmetric, as "same" needs for an even kernel)."""
    if isinstance(value, (int, np.integer)):
        return (int(value), int(value)), (int(value), int(value))
    height, width = value
    return as_pair(height), as_pair(width)


def conv_output_size(size: int, kernel: int, stride: int, pad: Pair = (0, 0)) -> int:
    """Output length along one axis: O = ⌊(size + pad_before + pad_after - kernel) / stride⌋ + 1."""
    return (size + pad[0] + pad[1] - kernel) // stride + 1


def pad_images(x: np.ndarray, padding: Padding) -> np.ndarray:
    """Xpad: x (N, C, H, W) with zeros around its height and width; x itself when no padding."""
    (top, bottom), (left, right) = padding
    if top == bottom == left == right == 0:
        return x
    n, c, h, w = x.shape
    # Zeros and one copy: the same as np.pad, without its general machinery (2x faster on
    # a batch of 64 MNIST images).
    xpad = np.zeros((n, c, top + h + bottom, left + w + right), dtype=x.dtype)
    xpad[:, :, top : top + h, left : left + w] = x
    return xpad


def im2col(
    x: np.ndarray,
    kernel: Pair,
    stride: Pair,
    padding: Padding,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Every window as a column, image by image: cols[n, (c, p, q), (i, j)] =
    Xpad[n, c, i·sh + p, j·sw + q].

    x (N, C, H, W) -> cols (N, C·kh·kw, OH·OW), written into `out` when given. Rows are
    ordered like W.reshape(F, -1), so W.reshape(F, -1) @ cols[n] is image n's output.
    Plain loops: `npnet.functional.reference.im2col`.
    """
    (kh, kw), (sh, sw) = kernel, stride
    xpad = pad_images(x, padding)
    n, c, hp, wp = xpad.shape
    oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    # Two copies instead of one: first every row of Xpad cut to the OW columns each column
    # offset q reads, shifted[q, n, c, r, j] = Xpad[n, c, r, j·sw + q]; then at stride 1
    # a window offset's (i, j) block is OH whole rows of that, one contiguous run of OH·OW
    # floats. Copying runs of 196 instead of rows of 14 makes the MNIST CNN's second im2col
    # 1.1x as fast at batch 32 (LeNet's 6-channel 5x5 one 1.5x; one channel: no change).
    shifted = np.empty((kw, n, c, hp, ow), dtype=x.dtype)
    for q in range(kw):
        shifted[q] = xpad[:, :, :, q : q + sw * (ow - 1) + 1 : sw]
    windows = sliding_window_view(shifted, kh, axis=3)[:, :, :, ::sh]  # (kw, N, C, OH, OW, kh)
    if out is None:
        out = np.empty((n, c * kh * kw, oh * ow), dtype=x.dtype)
    np.copyto(out.reshape(n, c, kh, kw, oh, ow), windows.transpose(1, 2, 5, 0, 3, 4))
    return out


def im2col_by_window(
    x: np.ndarray,
    kernel: Pair,
    stride: Pair,
    padding: Padding,
    window: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """`im2col` with the columns in the order of the k×k windows of a max-pool after the conv
    (k = `window`, side by side): cols[n, (c, p, q), (a, b, i', j')] =
    Xpad[n, c, (k·i' + a)·sh + p, (k·j' + b)·sw + q], for the OH' = ⌊OH / k⌋ by OW' windows.

    x (N, C, H, W) -> cols (N, C·kh·kw, k²·OH'·OW'), written into `out` when given; the product
    with W.reshape(F, -1) is then the conv's output as k² blocks Y_ab (N, F, OH'·OW'), one per
    window offset (a, b), which the pool compares whole (npnet.functional.conv_pool).
    Two copies, as in `im2col`: first each phase plane Z[u, v][n, c, i', j'] =
    Xpad[n, c, k·sh·i' + u, k·sw·j' + v]; then row (c, p, q) of block (a, b) is the plane
    Z[a·sh + p, b·sw + q][n, c], one contiguous run of OH'·OW' floats.
    Plain loops: `npnet.functional.reference.im2col`, its columns reordered.
    """
    (kh, kw), (sh, sw), k = kernel, stride, window
    xpad = pad_images(x, padding)
    n, c, hp, wp = xpad.shape
    oh, ow = ((hp - kh) // sh + 1) // k, ((wp - kw) // sw + 1) // k
    planes = np.empty(((k - 1) * sh + kh, (k - 1) * sw + kw, n, c, oh, ow), dtype=x.dtype)
    for u in range(planes.shape[0]):
        for v in range(planes.shape[1]):
            rows = slice(u, u + k * sh * (oh - 1) + 1, k * sh)
            columns = slice(v, v + k * sw * (ow - 1) + 1, k * sw)
            planes[u, v] = xpad[:, :, rows, columns]
    # windows[a, b, n, c, i', j', p, q] = Z[a·sh + p, b·sw + q][n, c, i', j']
    windows = sliding_window_view(planes, (kh, kw), axis=(0, 1))[::sh, ::sw][:k, :k]
    if out is None:
        out = np.empty((n, c * kh * kw, k * k * oh * ow), dtype=x.dtype)
    np.copyto(out.reshape(n, c, kh, kw, k, k, oh, ow), windows.transpose(2, 3, 6, 7, 0, 1, 4, 5))
    return out


def col2im(
    dcols: np.ndarray, x_shape: tuple[int, ...], kernel: Pair, stride: Pair, padding: Padding
) -> np.ndarray:
    """The adjoint of `im2col`: dX[n, c, i·sh + p, j·sw + q] += dcols[n, (c, p, q), (i, j)],
    overlapping windows summing, the padding cropped off.

    dcols (N, C·kh·kw, OH·OW) -> dx (N, C, H, W) (a view into the padded gradient).
    Plain loops: `npnet.functional.reference.col2im`.
    """
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (pad_h, pad_w) = kernel, stride, padding
    oh, ow = conv_output_size(h, kh, sh, pad_h), conv_output_size(w, kw, sw, pad_w)
    # Accumulate channel-major: for a dcols that is a (C·kh·kw, N, OH·OW) array seen as
    # (N, C·kh·kw, OH·OW) each add then reads whole contiguous blocks, and it is no slower
    # for a contiguous dcols; dx is returned as a transposed view.
    dcols = dcols.reshape(n, c, kh, kw, oh, ow).transpose(1, 0, 2, 3, 4, 5)
    dxp = np.zeros((c, n, h + sum(pad_h), w + sum(pad_w)), dtype=dcols.dtype)
    for p in range(kh):
        for q in range(kw):
            dxp[:, :, p : p + sh * oh : sh, q : q + sw * ow : sw] += dcols[:, :, p, q]
    return dxp[:, :, pad_h[0] : pad_h[0] + h, pad_w[0] : pad_w[0] + w].transpose(1, 0, 2, 3)


def col2im_images_last(
    dcols: np.ndarray, x_shape: tuple[int, ...], kernel: Pair, stride: Pair, padding: Padding
) -> np.ndarray:
    """`col2im` with the images as the last axis: dX[n, c, i·sh + p, j·sw + q] +=
    dcols[(c, p, q), i, j, n], the padding cropped off.

    dcols (C·kh·kw, OH, OW, N) -> dx (N, C, H, W), contiguous. With the images last, a window
    offset's add at stride 1 runs over rows of OW·N contiguous floats (448 for the MNIST CNN's
    second conv at batch 32) instead of OW (14): the same adds in the same order, so the same
    numbers as `col2im`, 1.3x as fast there with the copies in and out included.
    Plain loops: `npnet.functional.reference.col2im` of dcols.transpose(3, 0, 1, 2).
    """
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (pad_h, pad_w) = kernel, stride, padding
    oh, ow = conv_output_size(h, kh, sh, pad_h), conv_output_size(w, kw, sw, pad_w)
    dcols = dcols.reshape(c, kh, kw, oh, ow, n)
    dxp = np.zeros((c, h + sum(pad_h), w + sum(pad_w), n), dtype=dcols.dtype)
    for p in range(kh):
        for q in range(kw):
            dxp[:, p : p + sh * oh : sh, q : q + sw * ow : sw] += dcols[:, p, q]
    dx = dxp[:, pad_h[0] : pad_h[0] + h, pad_w[0] : pad_w[0] + w]
    # Back to NCHW in one copy: the layers after it read whole rows again.
    return np.ascontiguousarray(dx.transpose(3, 0, 1, 2))
