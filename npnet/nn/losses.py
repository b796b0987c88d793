"""The losses a config can name; the math lives in `npnet.functional.losses`.

    value = loss.forward(out, y)   # a Python float, a MEAN (over what: each class says)
    dout = loss.backward()          # dL/dout, out's shape and dtype, the 1/N included

Targets of the wrong shape or dtype raise ValueError: they are bugs in the calling code, not
config mistakes, so the message says what was expected and what arrived.
"""

from __future__ import annotations

import numpy as np

from npnet.functional import losses as F
from npnet.nn.loss import Loss
from npnet.registry import LOSSES
from npnet.validate import number


def class_labels(out: np.ndarray, y: np.ndarray, loss: str) -> np.ndarray:
    """`y` checked as class labels for scores `out`: integers (N,) in [0, C) for out (N, C)."""
    y = np.asarray(y)
    if out.ndim != 2:
        raise ValueError(f"{loss} expects scores of shape (N, C), got {out.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{loss} expects integer class labels, got dtype {y.dtype}")
    if y.shape != out.shape[:1]:
        raise ValueError(
            f"{loss} expects labels of shape ({out.shape[0]},) for scores of shape {out.shape}, "
            f"got {y.shape}"
        )
    if y.size and (y.min() < 0 or y.max() >= out.shape[1]):
        raise ValueError(
            f"{loss} expects labels in [0, {out.shape[1]}) for {out.shape[1]} classes, "
            f"got values from {y.min()} to {y.max()}"
        )
    return y


def value_targets(out: np.ndarray, y: np.ndarray, loss: str, one_hot: bool = False) -> np.ndarray:
    """`y` as targets of out's shape and dtype: the same shape, (N,) for out (N, 1), or, with
    `one_hot`, integer labels (N,) for out (N, C), turned into one-hot rows."""
    y = np.asarray(y)
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_):
        raise ValueError(f"{loss} expects numeric targets, got dtype {y.dtype}")
    if y.shape == out.shape:
        return y.astype(out.dtype, copy=False)
    if out.ndim == 2 and y.shape == out.shape[:1]:
        if out.shape[1] == 1:
            return y.reshape(out.shape).astype(out.dtype, copy=False)
        if one_hot and np.issubdtype(y.dtype, np.integer):
            labels = class_labels(out, y, loss)
            targets = np.zeros_like(out)
            targets[np.arange(out.shape[0]), labels] = 1.0
            return targets
    expected = "the same shape" + (" or integer labels (N,)" if one_hot else "")
    raise ValueError(f"{loss} expects targets of {expected} for output {out.shape}, got {y.shape}")


@LOSSES.register("softmax_cross_entropy")
class SoftmaxCrossEntropy(Loss):
    """Softmax and cross-entropy fused (PyTorch's CrossEntropyLoss), mean over the N samples:
    L = −(1/N)·Σ_n Σ_c q_nc·log softmax(z_n)_c with q = (1 − ε)·onehot(y) + ε/C, ε =
    `label_smoothing`. dL/dz = (softmax(z) − q)/N. out: logits (N, C); y: integer labels (N,).
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        self.label_smoothing = number("label_smoothing", label_smoothing, low=0.0, high=1.0)

    def forward(self, out: np.ndarray, y: np.ndarray) -> float:
        self.out, self.y = out, class_labels(out, y, self.name)
        return F.cross_entropy(out, self.y, self.label_smoothing)

    def backward(self) -> np.ndarray:
        return F.cross_entropy_gradient(self.out, self.y, self.label_smoothing)


@LOSSES.register("mse")
class MSE(Loss):
    """Mean squared error over ALL entries (PyTorch's MSELoss, reduction='mean'):
    L = (1/(N·D))·Σ (out − y)², so with D outputs per sample it is the per-sample sum / D.

    y: out's shape, or (N,) for out (N, 1), or integer labels (N,) for out (N, C), which are
    one-hot encoded: the classic MSE-on-one-hot classifier of the early chapters.
    """

    def forward(self, out: np.ndarray, y: np.ndarray) -> float:
        self.out, self.y = out, value_targets(out, y, self.name, one_hot=True)
        return F.mse_loss(out, self.y)

    def backward(self) -> np.ndarray:
        return F.mse_loss_gradient(self.out, self.y)


@LOSSES.register("mae")
class MAE(Loss):
    """Mean absolute error over ALL entries (PyTorch's L1Loss): L = (1/(N·D))·Σ |out − y|.

    y: out's shape, or (N,) for out (N, 1), or integer labels (N,) for out (N, C), which are
    one-hot encoded (the targets are then onehot(y), as for mse).
    """

    def forward(self, out: np.ndarray, y: np.ndarray) -> float:
        self.out, self.y = out, value_targets(out, y, self.name, one_hot=True)
        return F.mae_loss(out, self.y)

    def backward(self) -> np.ndarray:
        return F.mae_loss_gradient(self.out, self.y)


@LOSSES.register("huber")
class Huber(Loss):
    """Huber loss over ALL entries (PyTorch's HuberLoss), d = out − y:
    L = (1/(N·D))·Σ [½·d² if |d| ≤ δ else δ·(|d| − ½·δ)], δ = `delta`.

    y: out's shape, or (N,) for out (N, 1), or integer labels (N,) for out (N, C), which are
    one-hot encoded (the targets are then onehot(y), as for mse).
    """

    def __init__(self, delta: float = 1.0) -> None:
        self.delta = number("delta", delta, low=0.0, low_open=True)

    def forward(self, out: np.ndarray, y: np.ndarray) -> float:
        self.out, self.y = out, value_targets(out, y, self.name, one_hot=True)
        return F.huber_loss(out, self.y, self.delta)

    def backward(self) -> np.ndarray:
        return F.huber_loss_gradient(self.out, self.y, self.delta)


@LOSSES.register("binary_cross_entropy")
class BinaryCrossEntropy(Loss):
    """Binary cross-entropy on logits, stable (PyTorch's BCEWithLogitsLoss), mean over all
    entries: L = (1/n)·Σ −[y·log σ(z) + (1 − y)·log(1 − σ(z))]; dL/dz = (σ(z) − y)/n.

    out: logits (N, 1) or (N,), with no sigmoid layer before the loss; y: targets in [0, 1]
    (usually 0/1) of out's shape, or (N,) for out (N, 1), or integer labels (N,) for logits
    (N, C), which are one-hot encoded: C independent "is it class c?" logits (one-vs-rest).
    """

    def forward(self, out: np.ndarray, y: np.ndarray) -> float:
        targets = value_targets(out, y, self.name, one_hot=True)
        if targets.size and (targets.min() < 0 or targets.max() > 1):
            raise ValueError(
                f"{self.name} expects targets in [0, 1], got values from "
                f"{targets.min()} to {targets.max()}"
            )
        self.out, self.y = out, targets
        return F.binary_cross_entropy(out, self.y)

    def backward(self) -> np.ndarray:
        return F.binary_cross_entropy_gradient(self.out, self.y)


@LOSSES.register("hinge")
class Hinge(Loss):
    """Multi-class hinge loss (PyTorch's MultiMarginLoss), mean over the N samples:
    L = (1/N)·Σ_n (1/C)·Σ_(c ≠ y_n) max(0, margin − z_(n,y_n) + z_(n,c)).

    The perceptron's loss: zero once the true class wins by `margin` (0 gives the perceptron
    criterion itself). out: scores (N, C); y: integer labels (N,).
    """

    def __init__(self, margin: float = 1.0) -> None:
        self.margin = number("margin", margin, low=0.0)

    def forward(self, out: np.ndarray, y: np.ndarray) -> float:
        self.out, self.y = out, class_labels(out, y, self.name)
        return F.hinge_loss(out, self.y, self.margin)

    def backward(self) -> np.ndarray:
        return F.hinge_loss_gradient(self.out, self.y, self.margin)
