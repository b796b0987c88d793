"""The per-class report `npnet eval` prints: exact values on a hand-computed case, and
scikit-learn's figures on random predictions (classes never predicted or never present)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sklearn_confusion
from sklearn.metrics import precision_recall_fscore_support

from npnet.engine.metrics import class_report, confusion_matrix


def one_hot_outputs(predicted: list[int], classes: int) -> np.ndarray:
    """Logits whose argmax is `predicted`."""
    return np.eye(classes, dtype=np.float32)[predicted]


def test_a_hand_computed_report():
    # true 0 0 1 2, predicted 0 1 1 1: M = [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
    report = class_report(one_hot_outputs([0, 1, 1, 1], 3), np.array([0, 0, 1, 2]), 3)
    assert report["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
    rows = report["per_class"]
    assert [r["precision"] for r in rows] == [1.0, 1 / 3, 0.0]  # class 2 never predicted
    assert [r["recall"] for r in rows] == [0.5, 1.0, 0.0]
    assert [r["f1"] for r in rows] == [2 / 3, 0.5, 0.0]  # 2·TP / (predicted + support)
    assert [r["support"] for r in rows] == [2, 1, 1]


def test_a_one_logit_binary_report_takes_the_logits_sign():
    outputs = np.array([[2.0], [-1.0], [0.5], [-3.0]], dtype=np.float32)  # 1 0 1 0
    report = class_report(outputs, np.array([1, 1, 0, 0]), 2)
    assert report["confusion_matrix"] == [[1, 1], [1, 1]]


@pytest.mark.parametrize("seed", range(6))
def test_the_report_is_scikit_learns(seed):
    rng = np.random.default_rng(seed)
    classes = int(rng.integers(2, 12))
    n = int(rng.integers(1, 200))
    # Draw labels and predictions from fewer classes than there are, so some classes are
    # never present and some never predicted.
    y = rng.integers(0, max(1, classes - 2), n)
    predicted = rng.integers(1, classes, n)
    report = class_report(one_hot_outputs(list(predicted), classes), y, classes)
    labels = list(range(classes))
    precision, recall, f1, support = precision_recall_fscore_support(
        y, predicted, labels=labels, zero_division=0
    )
    rows = report["per_class"]
    np.testing.assert_allclose([r["precision"] for r in rows], precision, rtol=1e-15, atol=0)
    np.testing.assert_allclose([r["recall"] for r in rows], recall, rtol=1e-15, atol=0)
    np.testing.assert_allclose([r["f1"] for r in rows], f1, rtol=1e-15, atol=0)
    assert [r["support"] for r in rows] == list(support)
    expected = sklearn_confusion(y, predicted, labels=labels)
    np.testing.assert_array_equal(confusion_matrix(y, predicted, classes), expected)
    assert report["confusion_matrix"] == expected.tolist()
