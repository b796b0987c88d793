"""Batch normalization, forward and backward, per channel (axis 1), statistics over every
other axis: (N, D) per feature, (N, C, H, W) per channel over the batch and every pixel.

    y = γ·x̂ + β,  x̂ = (x − μ) / √(σ² + ε),  μ = Σ x / m,  σ² = Σ (x − μ)² / m

with m the values behind each channel's statistics. Every sum over the batch goes through
`batch_sum`, by default the identity (`whole_batch`): when a batch runs in slices on several
threads (npnet.nn.parallel.SliceSum), it adds up the slices' parts, so the statistics and the
gradient are still the whole batch's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

BatchSum = Callable[[Any], Any]


def whole_batch(total: Any) -> Any:
    """A sum over the batch when this call sees all of it: already complete."""
    return total


@dataclass
class BatchNormCache:
    """What the backward pass needs: x̂ and 1/√(σ² + ε), and m (None when the statistics
    were constants, at evaluation). mean and var are the ones used, (C,)."""

    x_hat: np.ndarray
    inv_std: np.ndarray
    count: int | None
    mean: np.ndarray
    var: np.ndarray


def statistics_axes(x: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The axes the statistics sum over (all but 1), and the shape (C, 1, 1, ...) that makes
    a per-channel (C,) array broadcast against x."""
    return (0, *range(2, x.ndim)), (x.shape[1],) + (1,) * (x.ndim - 2)


def normalize_and_scale(
    x_hat: np.ndarray, var: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """x̂ = (x − μ) / √(σ² + ε) in place on the centered `x_hat`, then y = γ·x̂ + β.
    Returns (y, 1/√(σ² + ε))."""
    channel_shape = (x_hat.shape[1],) + (1,) * (x_hat.ndim - 2)
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat *= inv_std.reshape(channel_shape)
    out = x_hat * gamma.reshape(channel_shape)
    out += beta.reshape(channel_shape)
    return out, inv_std


def batch_norm_forward(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    eps: float,
    batch_sum: BatchSum = whole_batch,
) -> tuple[np.ndarray, BatchNormCache]:
    """Training: y = γ·(x − μ)/√(σ² + ε) + β with the batch's μ and biased σ².

    x (N, C, ...), gamma and beta (C,) -> y (same shape as x), and the cache for
    `batch_norm_backward` (mean and var (C,) in it, for a running average).
    """
    axes, channel_shape = statistics_axes(x)
    count = batch_sum(x.size // x.shape[1])
    if count < 2:
        raise ValueError(
            f"batch_norm needs more than one value per channel to train, got input of "
            f"shape {x.shape}; use a batch size above 1"
        )
    mean = batch_sum(x.sum(axis=axes)) / count
    x_hat = x - mean.reshape(channel_shape)
    var = batch_sum(np.square(x_hat).sum(axis=axes)) / count
    out, inv_std = normalize_and_scale(x_hat, var, gamma, beta, eps)
    return out, BatchNormCache(x_hat, inv_std, count, mean, var)


def batch_norm_inference(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    eps: float,
) -> tuple[np.ndarray, BatchNormCache]:
    """Evaluation: y = γ·(x − μ)/√(σ² + ε) + β with fixed μ and σ² (the running statistics),
    so one sample's output does not depend on the rest of its batch. Shapes as the forward."""
    _, channel_shape = statistics_axes(x)
    x_hat = x - mean.reshape(channel_shape)
    out, inv_std = normalize_and_scale(x_hat, var, gamma, beta, eps)
    return out, BatchNormCache(x_hat, inv_std, None, mean, var)


def batch_norm_backward(
    grad_out: np.ndarray,
    cache: BatchNormCache,
    gamma: np.ndarray,
    batch_sum: BatchSum = whole_batch,
    *,
    input_grad: bool = True,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """dβ = Σ g, dγ = Σ g·x̂ (sums over all but the channel axis); after a training forward
    dx = γ/√(σ² + ε) · (g − dβ/m − x̂·dγ/m), because μ and σ² depend on every x in the batch;
    after an evaluation forward they are constants and dx = γ/√(σ² + ε) · g.

    grad_out (same shape as x) -> dx (None when `input_grad` is False), dγ, dβ (C,). dγ and
    dβ are this call's share: with `batch_sum` over slices, the sum of the slices' is the
    batch's.
    """
    axes, channel_shape = statistics_axes(grad_out)
    g_x_hat = grad_out * cache.x_hat
    d_gamma = g_x_hat.sum(axis=axes)
    d_beta = grad_out.sum(axis=axes)
    if not input_grad:
        return None, d_gamma, d_beta
    scale = (gamma * cache.inv_std).reshape(channel_shape)
    if cache.count is None:
        return grad_out * scale, d_gamma, d_beta
    # dx needs the sums over the whole batch; those of several slices in one exchange
    m = cache.count
    total_gamma, total_beta = batch_sum(np.stack([d_gamma, d_beta]))
    # g·x̂ has been summed; its buffer becomes dx.
    dx = np.multiply(cache.x_hat, (-total_gamma / m).reshape(channel_shape), out=g_x_hat)
    dx += grad_out
    dx -= (total_beta / m).reshape(channel_shape)
    dx *= scale
    return dx, d_gamma, d_beta
