"""Metrics: accuracy, dataset-wide evaluation, and the per-class report `npnet eval` prints."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from npnet.nn.loss import Loss
from npnet.nn.network import Network


def predicted_classes(out: np.ndarray) -> np.ndarray:
    """Class predictions from outputs (N, C): argmax over classes; for one output column
    (N, 1) the logit's sign (> 0 means class 1)."""
    if out.ndim == 2 and out.shape[1] == 1:
        return (out[:, 0] > 0).astype(np.int64)
    return out.argmax(axis=1)


def accuracy(out: np.ndarray, y: np.ndarray) -> float:
    """Fraction of samples whose predicted class equals the label y (N,) (or y (N, 1))."""
    return float(np.mean(predicted_classes(out) == y.reshape(len(y))))


def evaluate(
    net: Network, loss: Loss, x: np.ndarray, y: np.ndarray, batch_size: int, classify: bool
) -> dict[str, Any]:
    """Mean loss (and accuracy when `classify`) over all of (x, y) in evaluation mode.

    The batch size is fixed by the config, so evaluating the same weights again (`npnet eval`)
    sums the same float32 numbers in the same order and reproduces the figures exactly.
    """
    if len(x) == 0:
        return {"loss": None, "accuracy": None, "outputs": np.empty((0,), np.float32)}
    total = 0.0
    outs = []
    for start in range(0, len(x), batch_size):
        out = net.forward(x[start : start + batch_size], training=False)
        total += loss.forward(out, y[start : start + batch_size]) * len(out)
        outs.append(out)
    outputs = np.concatenate(outs)
    return {
        "loss": total / len(x),
        "accuracy": accuracy(outputs, y) if classify else None,
        "outputs": outputs,
    }


def class_report(outputs: np.ndarray, y: np.ndarray, num_classes: int) -> dict[str, Any]:
    """Per-class precision, recall, F1 and support, and the confusion matrix
    (rows: true class, columns: predicted class)."""
    labels = list(range(num_classes))
    predicted = predicted_classes(outputs)
    precision, recall, f1, support = precision_recall_fscore_support(
        y, predicted, labels=labels, zero_division=0
    )
    return {
        "per_class": [
            {
                "class": c,
                "precision": float(precision[c]),
                "recall": float(recall[c]),
                "f1": float(f1[c]),
                "support": int(support[c]),
            }
            for c in labels
        ],
        "confusion_matrix": confusion_matrix(y, predicted, labels=labels).tolist(),
    }
