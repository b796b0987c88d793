"""Metrics: accuracy, dataset-wide evaluation, and the per-class report `npnet eval` prints."""

from __future__ import annotations

from typing import Any

import numpy as np

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


def confusion_matrix(y: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """M[i, j] = how many samples of true class i were predicted as class j.

    y, predicted (N,) class indices in 0..C-1 -> M (C, C) int64."""
    pairs = y.reshape(len(y)).astype(np.int64) * num_classes + predicted
    return np.bincount(pairs, minlength=num_classes**2).reshape(num_classes, num_classes)


def ratio_or_zero(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator elementwise, 0 where the denominator is 0 (a class never
    predicted, or never present: scikit-learn's zero_division=0)."""
    out = np.zeros(len(numerator), dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def class_report(outputs: np.ndarray, y: np.ndarray, num_classes: int) -> dict[str, Any]:
    """Per-class precision, recall, F1 and support, and the confusion matrix M (rows: true
    class, columns: predicted class). With TP_c = M[c, c]: precision_c = TP_c / Σ_i M[i, c],
    recall_c = TP_c / Σ_j M[c, j] (the support), F1_c = 2·TP_c / (Σ_i M[i, c] + Σ_j M[c, j]),
    each 0 where its denominator is."""
    labels = list(range(num_classes))
    matrix = confusion_matrix(y, predicted_classes(outputs), num_classes)
    true_positives = np.diag(matrix)
    predicted_as, support = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = ratio_or_zero(true_positives, predicted_as)
    recall = ratio_or_zero(true_positives, support)
    f1 = ratio_or_zero(2 * true_positives, predicted_as + support)
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
        "confusion_matrix": matrix.tolist(),
    }
