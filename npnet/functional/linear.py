"""The affine map behind the dense layer, forward and backward side by side.

Shapes: X (N, in), W (in, out), b (out,), Z (N, out). Both directions are one BLAS matrix
multiply per array, so the cost is that of `matrix_multiply`.
"""

from __future__ import annotations

import numpy as np


def matrix_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The matrix product C = A B, C[i, j] = Σ_k A[i, k] B[k, j].

    a (m, k), b (k, n) -> (m, n). NumPy hands this to BLAS (one gemm call); a transposed
    operand such as `x.T` is passed as a flag, not copied.
    """
    return a @ b


def linear(x: np.ndarray, W: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Z = X W + b (b broadcast over the batch; omitted when None).

    x (N, in), W (in, out), b (out,) -> (N, out).
    """
    out = matrix_multiply(x, W)
    if b is not None:
        out += b
    return out


def linear_backward(
    grad_out: np.ndarray, x: np.ndarray, W: np.ndarray, *, input_grad: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of Z = X W + b: dW = Xᵀ G, db = Σ_n G[n], dX = G Wᵀ (G = dL/dZ).

    grad_out (N, out), x (N, in), W (in, out) -> dx (N, in) or None when `input_grad` is
    False, dW (in, out), db (out,).
    """
    dW = matrix_multiply(x.T, grad_out)
    db = grad_out.sum(axis=0)
    dx = matrix_multiply(grad_out, W.T) if input_grad else None
    return dx, dW, db
