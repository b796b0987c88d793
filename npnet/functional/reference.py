"""Plain-loop versions of the fast paths, written to be obviously correct, not fast.

The layers run the vectorized, cache-aware functions in `conv.py`, `pooling.py` and
`npnet.optim.optimizers`; each of those links to its twin here, and tests/test_reference.py
compares the two on random shapes (ties included for the max pool).
Read these first: they are the definitions, one output entry at a time.

    conv2d, conv2d_backward   Y[n, f, i, j] = b[f] + Σ W[f, c, p, q]·Xpad[n, c, i·sh + p, j·sw + q]
    im2col, col2im            the windows as columns, and their adjoint
    max_pool2d(_backward)     the first maximum of each window in row-major order wins
    max_pool2d_tiled(...)     the same for windows that tile the image, in two stages
    avg_pool2d(_backward)     the mean of each window
    adam_step                 m̂ / (√v̂ + ε) with the bias corrections spelled out

Arrays are NCHW; `stride` is (sh, sw), `padding` ((top, bottom), (left, right)); pooling
windows are k×k with stride s, no padding, as in the fast functions.
"""

from __future__ import annotations

import math
from itertools import product

import numpy as np

Pair = tuple[int, int]
Padding = tuple[Pair, Pair]


def padded(x: np.ndarray, padding: Padding) -> np.ndarray:
    """Xpad: zeros around the height and width of x (N, C, H, W)."""
    return np.pad(x, ((0, 0), (0, 0), *padding))


def output_size(size: int, kernel: int, stride: int) -> int:
    """How many windows of `kernel` with `stride` fit along an axis of `size` (padded)."""
    return (size - kernel) // stride + 1


def conv2d(
    x: np.ndarray, W: np.ndarray, b: np.ndarray | None, stride: Pair, padding: Padding
) -> np.ndarray:
    """Y[n, f, i, j] = b[f] + Σ_{c, p, q} W[f, c, p, q] · Xpad[n, c, i·sh + p, j·sw + q].

    x (N, C, H, W), W (F, C, kh, kw), b (F,) or None -> Y (N, F, OH, OW).
    """
    (sh, sw), xp = stride, padded(x, padding)
    n, c, hp, wp = xp.shape
    f, _, kh, kw = W.shape
    oh, ow = output_size(hp, kh, sh), output_size(wp, kw, sw)
    out = np.zeros((n, f, oh, ow), dtype=np.result_type(x, W))
    for s, k, i, j in product(range(n), range(f), range(oh), range(ow)):
        total = 0.0 if b is None else b[k]
        for ch, p, q in product(range(c), range(kh), range(kw)):
            total += W[k, ch, p, q] * xp[s, ch, i * sh + p, j * sw + q]
        out[s, k, i, j] = total
    return out


def conv2d_backward(
    grad_out: np.ndarray, x: np.ndarray, W: np.ndarray, stride: Pair, padding: Padding
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each output's gradient G[n, f, i, j] scattered back over the window it came from:
    dXpad[n, :, window] += G·W[f], dW[f] += G·Xpad[n, :, window], db[f] += G; then the
    padding is cropped off dXpad.

    grad_out (N, F, OH, OW), x (N, C, H, W), W (F, C, kh, kw) -> dx, dW, db (F,).
    """
    (sh, sw), xp = stride, padded(x, padding)
    (top, _), (left, _) = padding
    dxp, dW = np.zeros_like(xp), np.zeros_like(W)
    db = np.zeros(W.shape[0], dtype=W.dtype)
    n, f, oh, ow = grad_out.shape
    kh, kw = W.shape[2:]
    for s, k, i, j in product(range(n), range(f), range(oh), range(ow)):
        g = grad_out[s, k, i, j]
        rows, cols = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
        dxp[s, :, rows, cols] += g * W[k]
        dW[k] += g * xp[s, :, rows, cols]
        db[k] += g
    return dxp[:, :, top : top + x.shape[2], left : left + x.shape[3]], dW, db


def im2col(x: np.ndarray, kernel: Pair, stride: Pair, padding: Padding) -> np.ndarray:
    """cols[n, (c, p, q), (i, j)] = Xpad[n, c, i·sh + p, j·sw + q]; the row (c, p, q) is
    c·kh·kw + p·kw + q and the column (i, j) is i·OW + j.

    x (N, C, H, W) -> cols (N, C·kh·kw, OH·OW).
    """
    (kh, kw), (sh, sw), xp = kernel, stride, padded(x, padding)
    n, c, hp, wp = xp.shape
    oh, ow = output_size(hp, kh, sh), output_size(wp, kw, sw)
    cols = np.zeros((n, c * kh * kw, oh * ow), dtype=x.dtype)
    for s, ch, p, q, i, j in product(*map(range, (n, c, kh, kw, oh, ow))):
        cols[s, (ch * kh + p) * kw + q, i * ow + j] = xp[s, ch, i * sh + p, j * sw + q]
    return cols


def col2im(
    dcols: np.ndarray, x_shape: tuple[int, ...], kernel: Pair, stride: Pair, padding: Padding
) -> np.ndarray:
    """The adjoint of `im2col`: dXpad[n, c, i·sh + p, j·sw + q] += dcols[n, (c, p, q), (i, j)]
    (windows that overlap add up), then the padding cropped off.

    dcols (N, C·kh·kw, OH·OW) -> dx (N, C, H, W).
    """
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), ((top, bottom), (left, right)) = kernel, stride, padding
    hp, wp = h + top + bottom, w + left + right
    oh, ow = output_size(hp, kh, sh), output_size(wp, kw, sw)
    dxp = np.zeros((n, c, hp, wp), dtype=dcols.dtype)
    for s, ch, p, q, i, j in product(*map(range, (n, c, kh, kw, oh, ow))):
        dxp[s, ch, i * sh + p, j * sw + q] += dcols[s, (ch * kh + p) * kw + q, i * ow + j]
    return dxp[:, :, top : top + h, left : left + w]


def max_pool2d(x: np.ndarray, size: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Y[n, c, i, j] = max_{p, q < k} X[n, c, i·s + p, j·s + q], and argmax = p·k + q of the
    first maximum in row-major order (a later equal value does not replace it, as PyTorch).

    x (N, C, H, W) -> out, argmax (N, C, OH, OW).
    """
    n, c, h, w = x.shape
    oh, ow = output_size(h, size, stride), output_size(w, size, stride)
    out = np.zeros((n, c, oh, ow), dtype=x.dtype)
    argmax = np.zeros((n, c, oh, ow), dtype=np.int64)
    for s, ch, i, j in product(range(n), range(c), range(oh), range(ow)):
        best, where = -math.inf, 0
        for p, q in product(range(size), range(size)):  # row-major
            value = x[s, ch, i * stride + p, j * stride + q]
            if value > best:  # strictly: the first maximum stays
                best, where = value, p * size + q
        out[s, ch, i, j], argmax[s, ch, i, j] = best, where
    return out, argmax


def max_pool2d_backward(grad_out: np.ndarray, x: np.ndarray, size: int, stride: int) -> np.ndarray:
    """dX[n, c, i·s + p, j·s + q] += dY[n, c, i, j] at the first maximum (p, q) of each
    window; every other pixel of the window gets nothing.

    grad_out (N, C, OH, OW), x (N, C, H, W) -> dx (N, C, H, W).
    """
    _, argmax = max_pool2d(x, size, stride)
    dx = np.zeros(x.shape, dtype=grad_out.dtype)
    for s, ch, i, j in product(*map(range, grad_out.shape)):
        p, q = divmod(int(argmax[s, ch, i, j]), size)
        dx[s, ch, i * stride + p, j * stride + q] += grad_out[s, ch, i, j]
    return dx


def max_pool2d_tiled(x: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows that tile the image (stride k, H and W multiples of k), in two stages:
    columns[n, c, h, j] = the first q at which row h of window j reaches its maximum;
    rows[n, c, i, j] = the first p whose row maximum is the window's maximum, Y that maximum.
    (p, columns[n, c, i·k + p, j]) is then the first maximum in row-major order.

    x (N, C, H, W) -> out, rows (N, C, OH, OW), columns (N, C, H, OW).
    """
    n, c, h, w = x.shape
    oh, ow = h // size, w // size
    columns = np.zeros((n, c, h, ow), dtype=np.int64)
    for s, ch, row, j in product(range(n), range(c), range(h), range(ow)):
        best = -math.inf
        for q in range(size):
            if x[s, ch, row, j * size + q] > best:  # strictly: the first maximum stays
                best, columns[s, ch, row, j] = x[s, ch, row, j * size + q], q
    out = np.zeros((n, c, oh, ow), dtype=x.dtype)
    rows = np.zeros((n, c, oh, ow), dtype=np.int64)
    for s, ch, i, j in product(range(n), range(c), range(oh), range(ow)):
        best = -math.inf
        for p in range(size):
            value = x[s, ch, i * size + p, j * size + columns[s, ch, i * size + p, j]]
            if value > best:
                best, rows[s, ch, i, j] = value, p
        out[s, ch, i, j] = best
    return out, rows, columns


def max_pool2d_tiled_backward(
    grad_out: np.ndarray, rows: np.ndarray, columns: np.ndarray, size: int
) -> np.ndarray:
    """dX[n, c, i·k + p, j·k + q] += dY[n, c, i, j] with p = rows[n, c, i, j] and
    q = columns[n, c, i·k + p, j]; every other pixel gets nothing.

    grad_out, rows (N, C, OH, OW), columns (N, C, H, OW) -> dx (N, C, OH·k, OW·k).
    """
    n, c, oh, ow = grad_out.shape
    dx = np.zeros((n, c, oh * size, ow * size), dtype=grad_out.dtype)
    for s, ch, i, j in product(range(n), range(c), range(oh), range(ow)):
        p = int(rows[s, ch, i, j])
        q = int(columns[s, ch, i * size + p, j])
        dx[s, ch, i * size + p, j * size + q] += grad_out[s, ch, i, j]
    return dx


def avg_pool2d(x: np.ndarray, size: int, stride: int) -> np.ndarray:
    """Y[n, c, i, j] = (1 / k²) Σ_{p, q < k} X[n, c, i·s + p, j·s + q].

    x (N, C, H, W) -> (N, C, OH, OW).
    """
    n, c, h, w = x.shape
    oh, ow = output_size(h, size, stride), output_size(w, size, stride)
    out = np.zeros((n, c, oh, ow), dtype=x.dtype)
    for s, ch, i, j in product(range(n), range(c), range(oh), range(ow)):
        total = 0.0
        for p, q in product(range(size), range(size)):
            total += x[s, ch, i * stride + p, j * stride + q]
        out[s, ch, i, j] = total / (size * size)
    return out


def avg_pool2d_backward(
    grad_out: np.ndarray, x_shape: tuple[int, ...], size: int, stride: int
) -> np.ndarray:
    """dX[n, c, i·s + p, j·s + q] += dY[n, c, i, j] / k² for every (p, q) of each window.

    grad_out (N, C, OH, OW) -> dx (N, C, H, W).
    """
    dx = np.zeros(x_shape, dtype=grad_out.dtype)
    for s, ch, i, j in product(*map(range, grad_out.shape)):
        share = grad_out[s, ch, i, j] / (size * size)
        for p, q in product(range(size), range(size)):
            dx[s, ch, i * stride + p, j * stride + q] += share
    return dx


def adam_step(
    param: np.ndarray,
    grad: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    t: int,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Adam step (AdamW with `decoupled`), the textbook way, on new arrays:

        g = grad + λ·p                      (Adam; AdamW instead shrinks p ← p·(1 − lr·λ))
        m ← β₁·m + (1 − β₁)·g,  v ← β₂·v + (1 − β₂)·g²
        m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)        (m and v start at 0: bias correction)
        p ← p − lr·m̂ / (√v̂ + ε)

    t is the step count, 1 on the first step. Returns (p, m, v); nothing is modified.
    """
    beta1, beta2 = betas
    if decoupled:
        param = param * (1.0 - lr * weight_decay)
        g = grad
    else:
        g = grad + weight_decay * param
    m = beta1 * m + (1.0 - beta1) * g
    v = beta2 * v + (1.0 - beta2) * g * g
    m_hat = m / (1.0 - beta1**t)
    v_hat = v / (1.0 - beta2**t)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
