"""Activation functions and their derivatives: the pure math the activation layers call.

Every function is elementwise (softmax and log_softmax: along the last axis), takes an array
`z` of any shape and returns an array of the same shape and dtype: float32 stays float32.
Each derivative is the local slope f'(z) that backpropagation multiplies the incoming gradient
by; where the slope is cheapest from the forward output (σ, tanh), `*_derivative_from_output`
holds the formula and `*_derivative(z)` goes through it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

_SQRT_2 = math.sqrt(2.0)
_SQRT_2PI = math.sqrt(2.0 * math.pi)


def _floating(z: np.ndarray) -> np.ndarray:
    """`z` as an array, floating point: integer input becomes float64, floats keep their dtype."""
    z = np.asarray(z)
    return z if np.issubdtype(z.dtype, np.floating) else z.astype(np.float64)


def identity(z: np.ndarray) -> np.ndarray:
    """f(z) = z."""
    return _floating(z)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """σ(z) = 1 / (1 + e^-z), elementwise, in (0, 1).

    Computed as e^min(z, 0) / (1 + e^-|z|), the same value for either sign of z (multiply
    through by e^z when z < 0), but no exponent is ever positive: no overflow at z = -1000,
    and σ(-50) ≈ 2e-22 keeps its relative precision, which 1 − σ(50) would not. Branch-free,
    because np.where on a random sign pattern is several times slower than the arithmetic.
    """
    z = _floating(z)
    out = np.exp(np.minimum(z, 0.0))
    out /= 1.0 + np.exp(-np.abs(z))
    return out


def sigmoid_derivative_from_output(s: np.ndarray) -> np.ndarray:
    """σ'(z) = σ(z)·(1 − σ(z)), given s = σ(z) (a sigmoid layer keeps its output for this)."""
    slope = 1.0 - s
    slope *= s
    return slope


def sigmoid_derivative(z: np.ndarray) -> np.ndarray:
    """σ'(z) = σ(z)·(1 − σ(z)), elementwise; at most 1/4, at z = 0."""
    return sigmoid_derivative_from_output(sigmoid(z))


def tanh(z: np.ndarray) -> np.ndarray:
    """tanh(z) = (e^z − e^-z) / (e^z + e^-z), elementwise, in (-1, 1)."""
    return np.tanh(_floating(z))


def tanh_derivative_from_output(t: np.ndarray) -> np.ndarray:
    """tanh'(z) = 1 − tanh(z)², given t = tanh(z)."""
    slope = np.square(t)
    np.subtract(1.0, slope, out=slope)
    return slope


def tanh_derivative(z: np.ndarray) -> np.ndarray:
    """tanh'(z) = 1 − tanh(z)², elementwise; 1 at z = 0."""
    return tanh_derivative_from_output(tanh(z))


def relu(z: np.ndarray) -> np.ndarray:
    """ReLU(z) = max(0, z), elementwise."""
    return np.maximum(_floating(z), 0.0)


def relu_derivative(z: np.ndarray) -> np.ndarray:
    """ReLU'(z) = 1 if z > 0 else 0 (0 at z = 0, as PyTorch), elementwise."""
    z = _floating(z)
    return (z > 0).astype(z.dtype)


def leaky_relu(z: np.ndarray, negative_slope: float = 0.01) -> np.ndarray:
    """LeakyReLU(z) = z if z > 0 else a·z, with a = `negative_slope`, elementwise.

    Computed as max(z, 0) + a·min(z, 0), which needs no branch per entry.
    """
    z = _floating(z)
    out = np.minimum(z, 0.0)
    out *= negative_slope
    out += np.maximum(z, 0.0)
    return out


def leaky_relu_derivative(z: np.ndarray, negative_slope: float = 0.01) -> np.ndarray:
    """LeakyReLU'(z) = 1 if z > 0 else a (a at z = 0, as PyTorch), elementwise."""
    z = _floating(z)
    slope = (z > 0).astype(z.dtype)  # [z > 0]·(1 − a) + a
    slope *= 1.0 - negative_slope
    slope += negative_slope
    return slope


def elu(z: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """ELU(z) = z if z > 0 else α·(e^z − 1), elementwise.

    Computed as max(z, 0) + α·(e^min(z, 0) − 1): no branch per entry, no overflow for a large
    positive z, and expm1 keeps the precision of e^z − 1 for a small negative z.
    """
    z = _floating(z)
    out = np.expm1(np.minimum(z, 0.0))
    out *= alpha
    out += np.maximum(z, 0.0)
    return out


def elu_derivative(z: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """ELU'(z) = 1 if z > 0 else α·e^z (α at z = 0, as PyTorch), elementwise."""
    z = _floating(z)
    slope = np.exp(np.minimum(z, 0.0))  # α·e^min(z, 0) + (1 − α)·[z > 0]
    slope *= alpha
    slope += (z > 0) * z.dtype.type(1.0 - alpha)
    return slope


def gelu(z: np.ndarray) -> np.ndarray:
    """GELU(z) = z·Φ(z) = z/2 · (1 + erf(z/√2)), elementwise: the exact form, PyTorch's default.

    Φ is the standard normal CDF.
    """
    z = _floating(z)
    out = erf(z / _SQRT_2)
    out += 1.0
    out *= 0.5 * z
    return out


def gelu_derivative(z: np.ndarray) -> np.ndarray:
    """GELU'(z) = Φ(z) + z·φ(z), with φ(z) = e^(-z²/2) / √(2π) the standard normal density."""
    z = _floating(z)
    slope = np.exp(-0.5 * np.square(z))
    slope *= z / _SQRT_2PI
    slope += 0.5 * (1.0 + erf(z / _SQRT_2))
    return slope


def softmax(z: np.ndarray) -> np.ndarray:
    """softmax(z)_i = e^(z_i) / Σ_j e^(z_j) along the last axis; each row sums to 1.

    The row maximum is subtracted first (the result does not change) so e^x never overflows.
    z: (..., C) -> (..., C).
    """
    z = _floating(z)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


def softmax_backward(grad_out: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The Jacobian-vector product of softmax, given s = softmax(z) and g = dL/ds.

    ∂s_i/∂z_j = s_i·(δ_ij − s_j), so dL/dz = s ⊙ (g − Σ_j g_j s_j) along the last axis.
    grad_out, s: (..., C) -> (..., C).
    """
    dz = grad_out * s
    dz -= s * dz.sum(axis=-1, keepdims=True)
    return dz


def log_softmax(z: np.ndarray) -> np.ndarray:
    """log softmax(z)_i = z_i − log Σ_j e^(z_j) along the last axis, via log-sum-exp.

    log Σ_j e^(z_j) = m + log Σ_j e^(z_j − m) with m = max_j z_j, so nothing overflows and a
    logit far below the others gives a large negative number rather than log(0) = -inf.
    z: (..., C) -> (..., C).
    """
    z = _floating(z)
    shifted = z - z.max(axis=-1, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return shifted
