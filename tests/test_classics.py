"""The classic recipes as the books state them: one training step of the shipped Nielsen
configs (configs/classics/) equals Nielsen's own update rule, written out here from his
network.py and network2.py in float64, from the same weights on the same mini-batch. That
checks the converted constants (lr 15 for η = 3.0, lr 5.0 and l2 1e-5 for η = 0.5, λ = 5.0)
and the costs against one-hot targets, not only that the configs load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from npnet.config import load_config
from npnet.data import Dataset
from npnet.engine.experiment import build_experiment
from npnet.engine.loop import add_l2_gradient

CLASSICS = Path(__file__).resolve().parents[1] / "configs" / "classics"
BATCH = 10  # Nielsen's mini-batch
N_TRAIN = 50_000  # his training set: the n of his L2 term


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def nielsen_step(weights, x, labels, cost: str, eta: float, lmbda: float):
    """One mini-batch step of network.py (cost "quadratic", no L2) or network2.py (cost
    "cross_entropy", L2 λ over n = 50,000): w ← (1 − ηλ/n)·w − (η/m)·Σ ∂C_x/∂w."""
    w1, b1, w2, b2 = weights
    y = np.eye(10)[labels]
    a1 = sigmoid(x @ w1 + b1)
    a2 = sigmoid(a1 @ w2 + b2)
    delta2 = a2 - y  # the cross-entropy's δ: σ' cancels
    if cost == "quadratic":
        delta2 = delta2 * a2 * (1 - a2)
    delta1 = (delta2 @ w2.T) * a1 * (1 - a1)
    decay, rate = 1 - eta * lmbda / N_TRAIN, eta / len(x)
    return [
        decay * w1 - rate * x.T @ delta1,
        b1 - rate * delta1.sum(axis=0),
        decay * w2 - rate * a1.T @ delta2,
        b2 - rate * delta2.sum(axis=0),
    ]


def tiny_mnist(seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.random((40, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 40)
    return Dataset("mnist", x[:30], y[:30], x[30:35], y[30:35], x[35:], y[35:], 10)


def npnet_step(name: str):
    """One step of the shipped config `name` on a tiny batch: (weights before as float64,
    weights after, the batch's flattened images as float64, its labels)."""
    config = load_config(CLASSICS / f"{name}.yaml")
    data = tiny_mnist(0)
    exp = build_experiment(config, data)
    params = exp.net.parameters()
    before = [params[key].astype(np.float64) for key in params]
    x, labels = data.x_train[:BATCH], data.y_train[:BATCH]
    exp.loss.forward(exp.net.forward(x, training=True), labels)
    exp.net.backward(exp.loss.backward())
    grads = exp.net.gradients()
    add_l2_gradient(params, grads, config.regularization.l2)
    exp.optimizer.step(params, grads)
    return before, list(params.values()), x.reshape(BATCH, -1).astype(np.float64), labels


@pytest.mark.parametrize(
    "name, cost, eta, lmbda",
    [
        ("nielsen-network1", "quadratic", 3.0, 0.0),
        ("nielsen-network2", "cross_entropy", 0.5, 5.0),
    ],
)
def test_one_step_of_the_config_is_nielsens_update(name, cost, eta, lmbda):
    before, after, x, labels = npnet_step(name)
    expected = nielsen_step(before, x, labels, cost, eta, lmbda)
    for got, want, old in zip(after, expected, before, strict=True):
        moved = np.abs(want - old).max()
        assert moved > 1e-3  # the step is large enough to tell a wrong constant
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-6 + 1e-5 * moved)


@pytest.mark.parametrize("eta, lmbda", [(0.55, 5.0), (0.5, 50.0)])
def test_a_wrong_constant_would_be_caught(eta, lmbda):
    """Negative control: the same comparison fails for η 10 % off or λ ten times too large."""
    before, after, x, labels = npnet_step("nielsen-network2")
    wrong = nielsen_step(before, x, labels, "cross_entropy", eta, lmbda)
    assert any(np.abs(got - want).max() > 1e-4 for got, want in zip(after, wrong, strict=True))
