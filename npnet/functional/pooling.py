"""Max and average pooling over square windows of NCHW images, forward and backward.

A k×k window with stride s (no padding) gives OH = ⌊(H - k) / s⌋ + 1 (likewise OW), as in
PyTorch. The passes loop over the offsets of a window, never over pixels: the input pixels
at offset (p, q) of every window form the strided view X[:, :, p::s, q::s] (cropped to
OH×OW), so each step is one vectorized operation on an (N, C, OH, OW) array.

The max pool's forward is separable: the maximum of a window is the maximum of its k row
maxima. Taking the row maxima first (k views of X with stride s along the rows), then the
maximum over k rows of that k times smaller array, starts from a pairwise maximum instead
of a copy at each stage and reads whole rows in the second: fewer and cheaper passes than
over the k² window views, each strided in both directions.

Fast path: when the windows tile the image exactly (s = k dividing H and W) every pixel
lies in exactly one window, so the backward writes each pixel once into an uninitialized
array instead of zero-filling and accumulating. Both paths compute the same numbers. The
max-pool layer then also runs `max_pool2d_tiled_forward`/`_backward`: the k pixels of a
window's row are k consecutive floats, so the row stage is k long 1-D passes over the
whole batch, and the first maximum is kept as (row, column) offsets, not assembled into
p·k + q: the same numbers again, in fewer and longer passes.

`reference.py` holds every pass here as plain loops over the windows, to read and to test
against (tests/test_reference.py, ties included).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def pool_output_size(size: int, window: int, stride: int) -> int:
    """O = ⌊(size - window) / stride⌋ + 1."""
    return (size - window) // stride + 1


def tiles_exactly(shape: tuple[int, ...], size: int, stride: int) -> bool:
    """Whether size×size windows with this stride cover an (N, C, H, W) image exactly once."""
    return stride == size and shape[2] % size == 0 and shape[3] % size == 0


def window_offsets(x: np.ndarray, size: int, stride: int) -> Iterator[tuple[int, np.ndarray]]:
    """(p·k + q, X[n, c, i·s + p, j·s + q] over all (n, c, i, j)) for each window offset (p, q)
    in row-major order: k·k strided views of shape (N, C, OH, OW)."""
    oh = pool_output_size(x.shape[2], size, stride)
    ow = pool_output_size(x.shape[3], size, stride)
    for p in range(size):
        for q in range(size):
            rows = slice(p, p + stride * (oh - 1) + 1, stride)
            columns = slice(q, q + stride * (ow - 1) + 1, stride)
            yield p * size + q, x[:, :, rows, columns]


def offsets_along(x: np.ndarray, axis: int, size: int, stride: int) -> list[np.ndarray]:
    """x[..., o·s + p, ...] over all windows o, for each offset 0 ≤ p < k along one axis
    (2: rows, 3: columns): k strided views whose `axis` has length O = ⌊(len - k) / s⌋ + 1."""
    length = pool_output_size(x.shape[axis], size, stride)
    views = []
    for p in range(size):
        index = [slice(None)] * x.ndim
        index[axis] = slice(p, p + stride * (length - 1) + 1, stride)
        views.append(x[tuple(index)])
    return views


def max_of(views: list[np.ndarray]) -> np.ndarray:
    """M = max_p views[p], elementwise over equal-shaped arrays."""
    if len(views) == 1:
        return views[0].copy()
    # Starting from the first two saves a copy: one pass fewer of the k + 1.
    out = np.maximum(views[0], views[1])
    for view in views[2:]:
        np.maximum(out, view, out=out)
    return out


def first_max_of(views: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """`max_of`, and the first p with views[p] equal to the maximum, in a small unsigned int
    type."""
    index = np.zeros(views[0].shape, dtype=np.min_scalar_type(len(views) - 1))
    if len(views) == 1:
        return views[0].copy(), index
    # Strictly greater: on a tie the earlier offset keeps the maximum, as in PyTorch. The
    # comparison is written straight into `index` (True is offset 1, False offset 0), seen as
    # bools where its type has their size: no cast in the loop (0.057 against 0.082 ms on
    # LeNet's first pool at batch 32).
    np.greater(views[1], views[0], out=index.view(bool) if index.itemsize == 1 else index)
    out = np.maximum(views[0], views[1])
    beats = np.empty(out.shape, dtype=bool)
    offset_of = index.dtype.type  # keeps beats * offset in index's small type
    for p, view in enumerate(views[2:], start=2):
        np.greater(view, out, out=beats)
        # Offsets only grow, so the last one to beat the running max is the largest; a
        # branch-free maximum is 30x faster than a masked assignment on random masks.
        np.maximum(index, beats * offset_of(p), out=index)
        np.maximum(out, view, out=out)
    return out, index


def max_along(x: np.ndarray, axis: int, size: int, stride: int) -> np.ndarray:
    """M[..., o, ...] = max_{0 ≤ p < k} x[..., o·s + p, ...] along one axis."""
    return max_of(offsets_along(x, axis, size, stride))


def first_max_along(
    x: np.ndarray, axis: int, size: int, stride: int
) -> tuple[np.ndarray, np.ndarray]:
    """`max_along`, and the first offset p attaining each maximum, in a small unsigned int
    type."""
    return first_max_of(offsets_along(x, axis, size, stride))


def max_pool2d_forward(
    x: np.ndarray, size: int = 2, stride: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """`max_pool2d`, also returning which offset p·k + q of each window holds its first
    maximum (row-major), the only thing the backward pass needs.

    x (N, C, H, W) -> out (N, C, OH, OW), argmax (N, C, OH, OW) of a small unsigned int type.
    Plain loops: `npnet.functional.reference.max_pool2d`.

    Separably, like `max_pool2d`: q_h = the first column of maximum in each window's row h,
    then p = the first of the k row maxima that is the window's maximum. Every row before
    p holds only smaller values, and row p none equal before column q_p: p·k + q_p is the
    first maximum in row-major order.
    """
    stride = size if stride is None else stride
    row_max, column = first_max_along(x, 3, size, stride)  # (N, C, H, OW)
    out, row = first_max_along(row_max, 2, size, stride)  # (N, C, OH, OW)
    # argmax = p·k + q_p: take each window's column from its winning row p.
    offset_type = np.min_scalar_type(size * size - 1)
    argmax = row.astype(offset_type, copy=False) * offset_type.type(size)
    for p, column_p in enumerate(offsets_along(column, 2, size, stride)):
        argmax += column_p * (row == p)
    return out, argmax


def max_pool2d(x: np.ndarray, size: int = 2, stride: int | None = None) -> np.ndarray:
    """Y[n, c, i, j] = max_{0 ≤ p, q < k} X[n, c, i·s + p, j·s + q] (stride s defaults to k).

    x (N, C, H, W) -> (N, C, OH, OW), OH = ⌊(H - k) / s⌋ + 1. Only the maxima: an evaluation
    forward has no use for where they are, which `max_pool2d_forward` also tracks.

    Computed separably, the maximum along each window's rows first, then down the k row
    maxima: the first step reads X as k column views of stride s, the second reads
    contiguous rows of a k times smaller array. On the MNIST CNN's first pool at batch
    1000 this is 1.4x as fast as taking the maximum over the k² strided window views.
    Plain loops: `npnet.functional.reference.max_pool2d`.
    """
    stride = size if stride is None else stride
    row_max = max_along(x, 3, size, stride)
    return max_along(row_max, 2, size, stride)


def max_pool2d_backward(
    grad_out: np.ndarray,
    argmax: np.ndarray,
    x_shape: tuple[int, ...],
    size: int = 2,
    stride: int | None = None,
) -> np.ndarray:
    """dX[n, c, i·s + p, j·s + q] += dY[n, c, i, j] for the one offset (p, q) = argmax[n, c, i, j]
    of each window; every other pixel of the window gets nothing.

    grad_out, argmax (N, C, OH, OW) -> dx (N, C, H, W).
    Plain loops: `npnet.functional.reference.max_pool2d_backward`.
    """
    stride = size if stride is None else stride
    offset_of = argmax.dtype.type  # compare in argmax's own type: no int64 temporaries
    if tiles_exactly(x_shape, size, stride):
        dx = np.empty(x_shape, dtype=grad_out.dtype)
        for offset, window in window_offsets(dx, size, stride):
            np.multiply(grad_out, argmax == offset_of(offset), out=window)
        return dx
    dx = np.zeros(x_shape, dtype=grad_out.dtype)
    for offset, window in window_offsets(dx, size, stride):
        window += grad_out * (argmax == offset_of(offset))
    return dx


def max_pool2d_tiled_forward(
    x: np.ndarray, size: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`max_pool2d_forward` for windows that tile the image (stride = size, dividing H and W),
    keeping where each window's first maximum lies as two offsets instead of p·k + q: the
    same maxima in 4 passes instead of 11 for k = 2 (1.25x-1.35x as fast on the MNIST CNN's
    pools).

    x (N, C, H, W) -> out (N, C, OH, OW); rows (N, C, OH, OW), the offset p of the row of each
    window holding its first maximum; columns (N, C, H, OW), in the row h of window j the
    offset q of its first maximum. The window's first maximum in row-major order is at
    (p, columns[n, c, i·k + p, j]) (see `max_pool2d_forward`: the same two stages).
    Plain loops: `npnet.functional.reference.max_pool2d_tiled`.
    """
    n, c, h, w = x.shape
    oh, ow = h // size, w // size
    # The k pixels of a window's row are k consecutive floats of x: seen as (N·C·H·OW, k),
    # each offset q is one long strided pass instead of N·C·H passes over OW floats.
    row_max, columns = first_max_along(x.reshape(-1, size), 1, size, size)
    # (N·C·OH, k, OW): the k row maxima of each window, OW floats per row.
    out, rows = first_max_along(row_max.reshape(n * c * oh, size, ow), 1, size, size)
    return out.reshape(n, c, oh, ow), rows.reshape(n, c, oh, ow), columns.reshape(n, c, h, ow)


def max_pool2d_tiled_backward(
    grad_out: np.ndarray, rows: np.ndarray, columns: np.ndarray, size: int = 2
) -> np.ndarray:
    """`max_pool2d_backward` from the offsets of `max_pool2d_tiled_forward`: dY goes to the
    winning row p of each window, then within that row to its winning column q; every other
    pixel gets 0 (dY·1·1 or dY·0: the same numbers as the argmax form, zeros' signs included).

    grad_out, rows (N, C, OH, OW), columns (N, C, H, OW) -> dx (N, C, OH·k, OW·k).
    Plain loops: `npnet.functional.reference.max_pool2d_tiled_backward`.
    """
    n, c, oh, ow = grad_out.shape
    offset_of = rows.dtype.type  # compare in the offsets' own small type
    g, r = grad_out.reshape(n * c * oh, 1, ow), rows.reshape(n * c * oh, 1, ow)
    grad_rows = np.empty((n * c * oh, size, ow), dtype=grad_out.dtype)  # (N, C, H, OW)
    for p in range(size):
        np.multiply(g, r == offset_of(p), out=grad_rows[:, p : p + 1])
    # As in the forward pass, offset q of every window's row is one long strided pass.
    dx = np.empty((grad_rows.size, size), dtype=grad_out.dtype)
    flat_rows, flat_columns = grad_rows.reshape(-1, 1), columns.reshape(-1, 1)
    for q in range(size):
        np.multiply(flat_rows, flat_columns == offset_of(q), out=dx[:, q : q + 1])
    return dx.reshape(n, c, oh * size, ow * size)


def avg_pool2d(x: np.ndarray, size: int = 2, stride: int | None = None) -> np.ndarray:
    """Y[n, c, i, j] = (1 / k²) Σ_{0 ≤ p, q < k} X[n, c, i·s + p, j·s + q] (s defaults to k).

    x (N, C, H, W) -> (N, C, OH, OW), OH = ⌊(H - k) / s⌋ + 1.
    Plain loops: `npnet.functional.reference.avg_pool2d`.
    """
    stride = size if stride is None else stride
    offsets = window_offsets(x, size, stride)
    _, first = next(offsets)
    out = first.copy()
    for _, window in offsets:
        out += window
    out /= size * size
    return out


def avg_pool2d_backward(
    grad_out: np.ndarray, x_shape: tuple[int, ...], size: int = 2, stride: int | None = None
) -> np.ndarray:
    """dX[n, c, i·s + p, j·s + q] += dY[n, c, i, j] / k² for every offset (p, q) of each window.

    grad_out (N, C, OH, OW) -> dx (N, C, H, W).
    Plain loops: `npnet.functional.reference.avg_pool2d_backward`.
    """
    stride = size if stride is None else stride
    share = grad_out / (size * size)
    if tiles_exactly(x_shape, size, stride):
        dx = np.empty(x_shape, dtype=grad_out.dtype)
        for _, window in window_offsets(dx, size, stride):
            window[...] = share
        return dx
    dx = np.zeros(x_shape, dtype=grad_out.dtype)
    for _, window in window_offsets(dx, size, stride):
        window += share
    return dx
