"""Regularization math: the L2 weight penalty and inverted dropout."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def l2_penalty(weights: np.ndarray | Iterable[np.ndarray], lam: float) -> float:
    """The L2 penalty added to the loss: R = ½·λ·Σ W², summed over every entry of every array.

    `weights`: one array or several (the weight matrices of a network; biases are usually
    left out). The ½ makes the gradient plain λ·W.
    """
    arrays = [weights] if isinstance(weights, np.ndarray) else list(weights)
    return 0.5 * lam * float(sum(np.sum(np.square(w)) for w in arrays))


def l2_penalty_gradient(w: np.ndarray, lam: float) -> np.ndarray:
    """dR/dW = λ·W for R = ½·λ·Σ W²; same shape and dtype as `w`."""
    return lam * w


def dropout(
    x: np.ndarray, rate: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    """Inverted dropout at training time: out = x ⊙ m / (1 − p), m_i ~ Bernoulli(1 − p).

    Each entry is zeroed with probability p = `rate`; the survivors are scaled by 1/(1 − p) so
    E[out] = x and evaluation needs no rescaling (it is the identity). Returns
    (out, mask) with mask = m / (1 − p) in x's dtype, the local gradient: dL/dx = mask ⊙ dL/dout.
    At p = 0 nothing is dropped and nothing is drawn: returns (x, None).
    x: any shape; out, mask: the same shape and dtype.
    """
    if rate == 0.0:
        return x, None
    # Draw in float32 for float32 input: half the random bits, same Bernoulli to 2^-24.
    uniform = rng.random(x.shape, dtype=np.float32 if x.dtype == np.float32 else np.float64)
    mask = np.multiply(uniform >= rate, 1.0 / (1.0 - rate), dtype=x.dtype)
    return x * mask, mask
