"""A stride-1 convolution whose output is the size of its input ("same" padding), by shifted
copies of whole images instead of im2col:

    Y[n, f, y, x] = b[f] + Σ_{c, p, q} W[f, c, p, q] · X[n, c, y + p - top, x + q - left]

(zero outside the image). Each pass keeps one of the kernel's two axes inside a matrix product
per image and does the other as shifts of the product's inputs or outputs:

    forward  Y[y] = b + Σ_p V_p[y + p - top],      V_p[n, f] = Σ_{c, q} W[f, c, p, q] · Xq[n, c, q]
    dW       dW[f, c, p, q] = Σ_n Σ_{y, x} Gp[n, f, p, y, x] · Xq[n, c, q, y, x]
    dX       dX[x] = Σ_q U_q[x + left - q],    U_q[n, c] = Σ_{f, p} W[f, c, p, q] · Gp[n, f, p]

with Xq[n, c, q, y, x] = X[n, c, y, x + q - left] (the input shifted by columns) and
Gp[n, f, p, y, x] = G[n, f, y + top - p, x] (the output gradient G = dL/dY shifted by rows).
A shift by rows is a slice of whole rows; in a flattened image a shift by s columns is a shift
by s floats, so every copy and add is one run of H·W floats per channel, once the s columns
that would wrap onto the next (or the previous) row are zeroed: those feed only pixels outside
the image. im2col writes C·kh·kw floats per pixel in runs of OW and col2im adds them back;
here the input is copied kw times and the gradient kh times, with kh - 1 and kw - 1 adds.
On the MNIST CNN's second conv (16 -> 32 channels, 14x14, 3x3; 32 images, one thread) the
forward pass is 1.3x as fast, dX 1.4x, dW the same (the products are the same size: one per
image, under 10⁶ multiply-adds, where OpenBLAS is fastest). The sums run in another order
than im2col's. Plain loops: `npnet.functional.reference.conv2d`, `reference.conv2d_backward`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from npnet.functional.conv import images_per_chunk, sum_over_images
from npnet.functional.conv_columns import Padding, Pair

# Fewer channels or pixels stay on im2col, where a conv's forward and backward pass together
# (32 images, one thread) measured: 1 or 3 channels (a first layer: no dX; or 3 -> 16 on
# 32x32) 1.9x-3.4x and 1.1x as slow as im2col, 7x7 images (64 -> 128 channels) 1.1x; 2 to 64
# channels on 8x8 or larger 0.42x-0.88x the time (16 -> 32 on 16x16: 0.75x).
MIN_CHANNELS = 4
MIN_PIXELS = 64
# The backward pass shifts the output gradient of a chunk of images under this size at a time
# (half of a 1 MiB L2). cnn.yaml's second conv (Gp 75 KiB an image), training steps of two
# slices side by side: 0.96x-0.98x the time of the whole slice at once (AMD Zen 5, 32 MiB L3
# shared with other machines); one slice after the other 0.97x-0.98x.
BACKWARD_CHUNK_BYTES = 2**19


def runs_shifted(
    in_shape: tuple[int, ...], W_shape: tuple[int, ...], stride: Pair, padding: Padding
) -> bool:
    """Whether a conv of per-sample input `in_shape` (C, H, W) and weights `W_shape` runs here:
    stride 1, an output of the input's size, at least MIN_CHANNELS and MIN_PIXELS."""
    channels, height, width = in_shape
    (kh, kw), ((top, bottom), (left, right)) = W_shape[2:], padding
    return (
        stride == (1, 1)
        and top + bottom == kh - 1
        and left + right == kw - 1
        and channels >= MIN_CHANNELS
        and height * width >= MIN_PIXELS
    )


def shifted_by_columns(x: np.ndarray, kw: int, left: int) -> np.ndarray:
    """Xq[n, c, q, y, x] = X[n, c, y, x + q - left], zero where x + q - left is outside 0..W-1.

    x (N, C, H, W) -> (N, C, kw, H, W)."""
    n, c, h, w = x.shape
    shifted = np.empty((n, c, kw, h, w), dtype=x.dtype)
    flat, runs = x.reshape(n, c, h * w), shifted.reshape(n, c, kw, h * w)
    for q in range(kw):
        s = q - left  # Xq[k] = X[k + s], k a flat pixel index
        if s >= 0:
            runs[:, :, q, : h * w - s] = flat[:, :, s:]
            shifted[:, :, q, :, w - s :] = 0  # wrapped from the next row (s = 0: none)
        else:
            runs[:, :, q, -s:] = flat[:, :, :s]
            shifted[:, :, q, :, :-s] = 0  # wrapped from the row before
    return shifted


def shifted_by_rows(g: np.ndarray, kh: int, top: int) -> np.ndarray:
    """Gp[n, f, p, y, x] = G[n, f, y + top - p, x], zero where y + top - p is outside 0..H-1.

    g (N, F, H, W) -> (N, F, kh, H, W)."""
    n, f, h, w = g.shape
    shifted = np.empty((n, f, kh, h, w), dtype=g.dtype)
    for p in range(kh):
        lo, hi = max(0, p - top), min(h, h + p - top)  # the rows y with 0 <= y + top - p < H
        shifted[:, :, p, :lo] = 0
        shifted[:, :, p, lo:hi] = g[:, :, lo + top - p : hi + top - p]
        shifted[:, :, p, hi:] = 0
    return shifted


def conv2d_shifted_forward(
    x: np.ndarray, W: np.ndarray, b: np.ndarray | None, padding: Padding, *, keep: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Y = conv2d(X, W, b) (see the module docstring), and Xq for the backward pass (None when
    `keep` is False: an evaluation pass then shifts one chunk of images at a time).

    x (N, C, H, W), W (F, C, kh, kw), b (F,) or None -> out (N, F, H, W), Xq (N, C, kw, H, W).
    """
    n, c, h, w = x.shape
    f, _, kh, kw = W.shape
    (top, _), (left, _) = padding
    rows = W.transpose(2, 0, 1, 3).reshape(kh, f, c * kw)  # [p] row f, column (c, q)
    others = [p for p in range(kh) if p != top]
    rest = rows[others].reshape(-1, c * kw)  # the other row blocks, stacked: row (p, f)
    out = np.empty((n, f, h, w), dtype=np.result_type(x, W))
    # A chunk of images at a time, so V is still in cache for the adds. V_top needs no shift:
    # its product is written straight into Y, the other rows' added onto it.
    chunk = images_per_chunk(kh * f * h * w * out.itemsize)
    kept = shifted_by_columns(x, kw, left) if keep else None
    for start in range(0, n, chunk):
        part = slice(start, start + chunk)
        xq = kept[part] if kept is not None else shifted_by_columns(x[part], kw, left)
        xq = xq.reshape(len(xq), c * kw, h * w)
        y = out[part]
        np.matmul(rows[top], xq, out=y.reshape(len(y), f, h * w))
        if others:
            v = np.matmul(rest, xq).reshape(len(y), -1, f, h, w)
        for i, p in enumerate(others):
            s = p - top  # Y[y] += V_p[y + s]
            if s > 0:
                y[:, :, : h - s] += v[:, i, :, s:]
            else:
                y[:, :, -s:] += v[:, i, :, : h + s]
        if b is not None:
            y += b[:, None, None]
    return out, kept


def conv2d_shifted_backward(
    grad_out: np.ndarray,
    xq: np.ndarray,
    W: np.ndarray,
    padding: Padding,
    *,
    input_grad: bool = True,
    cuts: Sequence[int] | None = None,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """dX, dW and db of `conv2d_shifted_forward` (see the module docstring); db = Σ G over
    (n, y, x). A chunk of images at a time (BACKWARD_CHUNK_BYTES of Gp), so both products
    and the adds read Gp and U from cache: the same products per image, the same numbers.
    Every product is one image's, so with `cuts` only the sums over the images (dW, db) are
    taken block by block (`sum_over_images`) to give the bits of the blocks run apart.

    grad_out (N, F, H, W), xq from the forward -> dx (N, C, H, W) or None when `input_grad`
    is False, dW (F, C, kh, kw), db (F,).
    """
    n, f, h, w = grad_out.shape
    c, kh, kw = W.shape[1:]
    (top, _), (left, _) = padding
    rows = W.transpose(3, 1, 0, 2).reshape(kw * c, f * kh)  # row (q, c), column (f, p)
    per_image = np.empty((n, f * kh, c * kw), dtype=np.result_type(grad_out, xq))
    dx = np.empty((n, c, h, w), dtype=np.result_type(grad_out, W)) if input_grad else None
    chunk = max(1, BACKWARD_CHUNK_BYTES // (f * kh * h * w * grad_out.itemsize))
    for start in range(0, n, chunk):
        part = slice(start, start + chunk)
        gp = shifted_by_rows(grad_out[part], kh, top).reshape(-1, f * kh, h * w)
        images = len(gp)
        # One (F·kh, C·kw) product per image, summed below: row (f, p), column (c, q).
        xq_rows = xq[part].reshape(images, c * kw, h * w).transpose(0, 2, 1)
        np.matmul(gp, xq_rows, out=per_image[part])
        if input_grad:
            u = np.matmul(rows, gp).reshape(images, kw, c, h, w)
            add_column_shifts(u, left, dx[part])
    dW = sum_over_images(per_image, cuts).reshape(f, kh, c, kw).transpose(0, 2, 1, 3)
    db = sum_over_images(grad_out, cuts, axis=(0, 2, 3))
    return dx, np.ascontiguousarray(dW), db


def add_column_shifts(u: np.ndarray, left: int, dx: np.ndarray) -> None:
    """dX[n, c, y, x] = Σ_q U_q[n, c, y, x + left - q] into `dx` (N, C, H, W), from
    u (N, kw, C, H, W), whose columns that would wrap onto another row it zeroes first."""
    n, kw, c, h, w = u.shape
    dx[...] = u[:, left]  # U_q for q = left is not shifted; the others are added onto it
    flat = dx.reshape(n, c, h * w)
    for q in range(kw):
        s = left - q  # dX[k] += U_q[k + s], k a flat pixel index
        if s > 0:
            u[:, q, :, :, :s] = 0  # would wrap onto the row before
            flat[:, :, : h * w - s] += u[:, q].reshape(n, c, h * w)[:, :, s:]
        elif s < 0:
            u[:, q, :, :, w + s :] = 0  # would wrap onto the next row
            flat[:, :, -s:] += u[:, q].reshape(n, c, h * w)[:, :, : h * w + s]
