"""Gradient descent for linear regression: the series' `gradient_descent` (chapters 2.2, 2.3).

Each step is the textbook one, built from the functions the layers use, so no formula is
written twice:

    ŷ = X W + b                       (functional.linear)
    L = (1/N)·Σ (ŷ − y)²              (functional.mse_loss)
    dW = Xᵀ G, db = Σ_n G[n], G = 2·(ŷ − y)/N   (linear_backward of mse_loss_gradient)
    W ← W − lr·dW,  b ← b − lr·db
"""

from __future__ import annotations

import numpy as np

from npnet.errors import ConfigError
from npnet.functional.linear import linear, linear_backward
from npnet.functional.losses import mse_loss, mse_loss_gradient


def gradient_descent(
    X: np.ndarray,
    y: np.ndarray,
    W: np.ndarray,
    b: np.ndarray,
    lr: float,
    epochs: int,
    batch_size: int | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Fit Z = X W + b to y by (mini-batch) gradient descent on the MSE.

    `batch_size=None` is full-batch gradient descent: one step per epoch on all N samples.
    A smaller batch takes ⌈N / batch_size⌉ steps per epoch on the samples in an order
    shuffled by `rng` each epoch (in order without one): cheaper, noisier steps.
    W and b are not modified; the fitted copies are returned with the loss of every step
    (on that step's batch, before the step), so `len(losses)` is the number of steps.
    X (N, D), y (N, 1), W (D, 1), b (1,) -> W (D, 1), b (1,), losses.
    """
    n = len(X)
    if batch_size is not None and not (isinstance(batch_size, int) and batch_size > 0):
        raise ConfigError(f"'batch_size' must be a positive int or None, got {batch_size!r}")
    size = n if batch_size is None else min(batch_size, n)
    W, b = np.array(W, dtype=np.float64), np.array(b, dtype=np.float64)
    losses = []
    for _ in range(epochs):
        order = rng.permutation(n) if rng is not None and size < n else np.arange(n)
        for start in range(0, n, size):
            batch = order[start : start + size]
            x_batch, y_batch = X[batch], y[batch]
            pred = linear(x_batch, W, b)
            losses.append(mse_loss(pred, y_batch))
            _, dW, db = linear_backward(
                mse_loss_gradient(pred, y_batch), x_batch, W, input_grad=False
            )
            W -= lr * dW
            b -= lr * db
    return W, b, losses
