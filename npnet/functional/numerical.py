"""Numerical gradients: the slow, obviously right derivative every backward pass is checked
against."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_gradient(
    f: Callable[[], float],
    x: np.ndarray,
    eps: float = 1e-6,
    indices: np.ndarray | None = None,
) -> np.ndarray:
    """Central differences of the scalar `f()` with respect to the array `x`.

    df/dx_i ≈ (f(x + eps·e_i) - f(x - eps·e_i)) / (2·eps), with error O(eps²).
    `x` is perturbed in place (and restored), so `f` must read it.
    `indices` (flat positions) limits the work to a sample of entries; the others stay 0.
    Use float64: in float32 the rounding error of f swamps a difference this small.
    """
    grad = np.zeros_like(x)
    flat_x = x.reshape(-1)  # a view: writing it perturbs x
    flat_grad = grad.reshape(-1)
    for i in range(flat_x.size) if indices is None else indices:
        original = flat_x[i]
        flat_x[i] = original + eps
        f_plus = f()
        flat_x[i] = original - eps
        f_minus = f()
        flat_x[i] = original
        flat_grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """max_i |a_i - n_i| / max(max_i |a_i|, max_i |n_i|): the worst disagreement,
    relative to the size of the gradient as a whole.

    Relative to the whole tensor rather than entry by entry, so an entry that is nearly zero
    (a dead ReLU, a background pixel) does not turn harmless rounding into a huge ratio.
    0 when both are exactly zero.
    """
    scale = max(np.max(np.abs(analytic), initial=0.0), np.max(np.abs(numeric), initial=0.0))
    if scale == 0.0:
        return 0.0
    return float(np.max(np.abs(analytic - numeric)) / scale)
