"""Data augmentation as pure functions: random warps of a batch of images, all at once.

Each augmentation is a SAMPLING GRID: for every output pixel (i, j) of image n, the source
coordinates (ys, xs)[n, i, j] to read it from, by bilinear interpolation:

    out[n, c, i, j] = Σ over the 4 neighbours (y, x) of (ys, xs) of
                      (1 − |ys − y|)·(1 − |xs − x|)·image[n, c, y, x]

Grids add: an affine grid plus an elastic displacement field is one warp, one interpolation.
Coordinates outside the image are clamped to its border (the border pixel is repeated:
MNIST's border is background, whatever the normalization).

    affine_grid:      rotation θ, scale s, shift t about the centre c:
                      source = R(−θ)·(p − c − t)/s + c
    elastic_field:    Simard et al. 2003: U(−1, 1) per pixel, smoothed by a Gaussian of σ,
                      times α (σ = 4, α = 34 in the paper)
    bilinear_sample:  the interpolation above, for every image and channel at once

No Python loop over images or pixels: grids are (N, H, W) arrays, the Gaussian smoothing is
two batched matrix products (separable, zero padding), the interpolation is four gathers by
flat index (`np.take`).
The plain per-pixel version of the interpolation is `bilinear_sample_loop`, for the tests.
"""

from __future__ import annotations

import numpy as np


def identity_grid(n: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """ys, xs (n, height, width) float32: every pixel reads itself."""
    ys, xs = np.meshgrid(
        np.arange(height, dtype=np.float32), np.arange(width, dtype=np.float32), indexing="ij"
    )
    return np.broadcast_to(ys, (n, height, width)), np.broadcast_to(xs, (n, height, width))


def affine_grid(
    angle: np.ndarray, scale: np.ndarray, shift: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """The sampling grid that rotates each image by angle[n] (radians, counter-clockwise as
    displayed), scales it by scale[n]
    and shifts it by shift[n] = (dy, dx) pixels, about its centre c = ((H−1)/2, (W−1)/2):
    source = R(−θ)·(p − c − t) / s + c.

    angle, scale (N,); shift (N, 2) -> ys, xs (N, H, W) float32.
    """
    cy, cx = (height - 1) / 2, (width - 1) / 2
    ys, xs = identity_grid(1, height, width)
    # (N, H, W) offsets of each output pixel from the shifted centre
    vy = ys - np.float32(cy) - shift[:, 0, None, None].astype(np.float32)
    vx = xs - np.float32(cx) - shift[:, 1, None, None].astype(np.float32)
    cos = (np.cos(angle) / scale).astype(np.float32)[:, None, None]
    sin = (np.sin(angle) / scale).astype(np.float32)[:, None, None]
    # (row, column) axes point down and right, so this R(−θ) turns the content counter-
    # clockwise as displayed, np.rot90's direction
    source_y = cos * vy + sin * vx
    source_x = cos * vx - sin * vy
    source_y += np.float32(cy)
    source_x += np.float32(cx)
    return source_y, source_x


def gaussian_matrix(size: int, sigma: float) -> np.ndarray:
    """(size, size) float32 G with (G @ f)[i] = Σ_k g(i − k)·f[k]: a 1-D Gaussian smoothing
    of f with zero padding, g(d) = exp(−d²/2σ²) / Σ_d' exp(−d'²/2σ²) over |d'| ≤ 4σ
    (scipy.ndimage.gaussian_filter's kernel, truncate = 4)."""
    radius = int(4 * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    norm = np.exp(-(offsets**2) / (2 * sigma**2)).sum()
    d = np.arange(size)[:, None] - np.arange(size)[None, :]
    weights = np.exp(-(d**2) / (2 * sigma**2)) / norm
    weights[np.abs(d) > radius] = 0.0
    return weights.astype(np.float32)


def smooth(fields: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian smoothing of every (H, W) field at once: G_H · F · G_Wᵀ.

    fields (..., H, W) float32 -> (..., H, W) float32.
    """
    height, width = fields.shape[-2:]
    return gaussian_matrix(height, sigma) @ fields @ gaussian_matrix(width, sigma).T


def elastic_field(uniform: np.ndarray, sigma: float, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Simard's elastic displacement: dy, dx = α · smooth(u, σ) for u ~ U(−1, 1) per pixel.

    uniform (2, N, H, W) draws in [−1, 1) -> dy, dx (N, H, W) float32 (pixels).
    """
    field = smooth(uniform.astype(np.float32, copy=False), sigma)
    field *= np.float32(alpha)
    return field[0], field[1]


def bilinear_sample(images: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Read images at real-valued (ys, xs) by bilinear interpolation, clamped to the border.

    images (N, C, H, W); ys, xs (N, H', W') -> (N, C, H', W'), images' dtype.
    """
    n, channels, height, width = images.shape
    ys = np.clip(ys, 0, height - 1)
    xs = np.clip(xs, 0, width - 1)
    # The top-left neighbour; at the last row/column the "next" one is the pixel itself
    # with weight 0, so no index leaves the image.
    y0 = np.minimum(ys.astype(np.intp), max(height - 2, 0))
    x0 = np.minimum(xs.astype(np.intp), max(width - 2, 0))
    wy = (ys - y0).astype(images.dtype)[:, None]
    wx = (xs - x0).astype(images.dtype)[:, None]
    y1 = np.minimum(y0 + 1, height - 1)
    x1 = np.minimum(x0 + 1, width - 1)
    # One 1-D gather per neighbour: flat index of (image, channel, y, x) in the raveled batch.
    flat = images.reshape(-1)
    base = np.arange(n * channels).reshape(n, channels, 1, 1) * (height * width)

    def at(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.take(flat, base + (y * width + x)[:, None])

    top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx
    bottom = at(y1, x0) * (1 - wx) + at(y1, x1) * wx
    return top * (1 - wy) + bottom * wy


def bilinear_sample_loop(images: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """`bilinear_sample` written as the plain loop over images, channels and pixels (slow;
    the reference the tests compare the fast version with)."""
    n, channels, height, width = images.shape
    out = np.zeros((n, channels, *ys.shape[1:]), dtype=np.float64)
    for k in range(n):
        for i in range(ys.shape[1]):
            for j in range(ys.shape[2]):
                y = min(max(float(ys[k, i, j]), 0.0), height - 1)
                x = min(max(float(xs[k, i, j]), 0.0), width - 1)
                for yy in range(height):
                    for xx in range(width):
                        weight = max(0.0, 1 - abs(y - yy)) * max(0.0, 1 - abs(x - xx))
                        if weight:
                            out[k, :, i, j] += weight * images[k, :, yy, xx]
    return out
