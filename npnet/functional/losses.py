"""Loss functions and their gradients: the pure math the loss classes call.

Each `*_loss` / `cross_entropy` returns a Python float and is a MEAN (what it is a mean over is
stated on each); each `*_gradient` is the derivative of that mean with respect to the network
output, so it already includes the 1/N. Gradients have the output's shape and dtype: targets
are cast to the output's dtype first, so float32 stays float32. Shapes are checked by the
loss classes (`npnet.nn.losses`); these functions assume they match.
"""

from __future__ import annotations

import numpy as np

from npnet.functional.activations import log_softmax, sigmoid, softmax


def _as(target: np.ndarray, like: np.ndarray) -> np.ndarray:
    return np.asarray(target, dtype=like.dtype)


def mse_loss(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean squared error over all n entries: L = (1/n)·Σ (ŷ − y)² (PyTorch's MSELoss)."""
    return float(np.mean(np.square(pred - _as(target, pred))))


def mse_loss_gradient(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """dL/dŷ = 2·(ŷ − y) / n."""
    grad = pred - _as(target, pred)
    grad *= 2.0 / grad.size
    return grad


def mae_loss(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute error over all n entries: L = (1/n)·Σ |ŷ − y| (PyTorch's L1Loss)."""
    return float(np.mean(np.abs(pred - _as(target, pred))))


def mae_loss_gradient(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """dL/dŷ = sign(ŷ − y) / n (0 where ŷ = y, as PyTorch)."""
    grad = np.sign(pred - _as(target, pred))
    grad /= grad.size
    return grad


def huber_loss(pred: np.ndarray, target: np.ndarray, delta: float = 1.0) -> float:
    """Huber loss over all n entries, with d = ŷ − y (PyTorch's HuberLoss):

    L = (1/n)·Σ [½·d² if |d| ≤ δ else δ·(|d| − ½·δ)]: quadratic near 0, linear in the tails,
    so an outlier pulls with a force of at most δ.
    """
    abs_diff = np.abs(pred - _as(target, pred))
    quadratic = np.minimum(abs_diff, delta)
    # ½·q² + δ·(|d| − q) covers both branches: q = |d| inside, q = δ outside.
    return float(np.mean(0.5 * np.square(quadratic) + delta * (abs_diff - quadratic)))


def huber_loss_gradient(pred: np.ndarray, target: np.ndarray, delta: float = 1.0) -> np.ndarray:
    """dL/dŷ = clip(ŷ − y, −δ, δ) / n."""
    grad = np.clip(pred - _as(target, pred), -delta, delta)
    grad /= grad.size
    return grad


def binary_cross_entropy(logits: np.ndarray, target: np.ndarray) -> float:
    """Binary cross-entropy on LOGITS z (not probabilities), mean over all n entries
    (PyTorch's BCEWithLogitsLoss): L = (1/n)·Σ −[y·log σ(z) + (1 − y)·log(1 − σ(z))].

    Computed as max(z, 0) − z·y + log(1 + e^-|z|), the same value rearranged so that e^x
    never overflows and log never sees 0: z = ±1000 gives a finite loss.
    """
    y = _as(target, logits)
    per_entry = np.maximum(logits, 0.0) - logits * y + np.log1p(np.exp(-np.abs(logits)))
    return float(np.mean(per_entry))


def binary_cross_entropy_gradient(logits: np.ndarray, target: np.ndarray) -> np.ndarray:
    """dL/dz = (σ(z) − y) / n: the sigmoid's slope cancels the log's."""
    grad = sigmoid(logits)
    grad -= _as(target, logits)
    grad /= grad.size
    return grad


def _smoothed_targets(
    shape: tuple[int, int], labels: np.ndarray, label_smoothing: float, dtype: np.dtype
) -> np.ndarray:
    """q = (1 − ε)·onehot(y) + ε/C: the target distribution of label smoothing. (N, C)."""
    n, classes = shape
    q = np.full(shape, label_smoothing / classes, dtype=dtype)
    q[np.arange(n), labels] += 1.0 - label_smoothing
    return q


def cross_entropy(logits: np.ndarray, labels: np.ndarray, label_smoothing: float = 0.0) -> float:
    """Softmax cross-entropy on logits, mean over the N samples (PyTorch's CrossEntropyLoss):

    L = −(1/N)·Σ_n Σ_c q_nc·log softmax(z_n)_c, with q = (1 − ε)·onehot(y) + ε/C;
    for ε = 0 (no label smoothing) that is −(1/N)·Σ_n log softmax(z_n)_(y_n).
    Softmax and log are fused through log-sum-exp, so logits of ±1000 give a finite loss.
    logits: (N, C); labels: (N,) integers in [0, C).
    """
    log_probs = log_softmax(logits)
    q = _smoothed_targets(logits.shape, labels, label_smoothing, log_probs.dtype)
    return float(-np.sum(q * log_probs) / logits.shape[0])


def cross_entropy_gradient(
    logits: np.ndarray, labels: np.ndarray, label_smoothing: float = 0.0
) -> np.ndarray:
    """dL/dz = (softmax(z) − q) / N: the fused gradient, without the softmax Jacobian.

    logits: (N, C); labels: (N,) -> (N, C).
    """
    grad = softmax(logits)
    grad -= _smoothed_targets(logits.shape, labels, label_smoothing, grad.dtype)
    grad /= logits.shape[0]
    return grad


def _margins(scores: np.ndarray, labels: np.ndarray, margin: float) -> np.ndarray:
    """max(0, margin − z_y + z_c) for every class c ≠ y, 0 at c = y. (N, C)."""
    rows = np.arange(scores.shape[0])
    margins = scores - scores[rows, labels][:, None]
    margins += margin
    margins[rows, labels] = 0.0
    np.maximum(margins, 0.0, out=margins)
    return margins


def hinge_loss(scores: np.ndarray, labels: np.ndarray, margin: float = 1.0) -> float:
    """Multi-class hinge (margin) loss, mean over the N samples (PyTorch's MultiMarginLoss):

    L = (1/N)·Σ_n (1/C)·Σ_(c ≠ y_n) max(0, margin − z_(n,y_n) + z_(n,c)).
    Zero once the true class beats every other by the margin; the 1/C is PyTorch's.
    scores: (N, C); labels: (N,) integers in [0, C).
    """
    return float(np.sum(_margins(scores, labels, margin)) / scores.size)


def hinge_loss_gradient(scores: np.ndarray, labels: np.ndarray, margin: float = 1.0) -> np.ndarray:
    """dL/dz_c = [margin violated at c]/(N·C) for c ≠ y, and −(number violated)/(N·C) at y.

    scores: (N, C); labels: (N,) -> (N, C).
    """
    grad = (_margins(scores, labels, margin) > 0).astype(scores.dtype)
    grad[np.arange(scores.shape[0]), labels] = -grad.sum(axis=1)
    grad /= scores.size
    return grad
