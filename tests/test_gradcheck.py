"""The gradient checker itself: a kink within one step of the point is not a failure, a zero
gradient agrees with central differences' rounding noise, a wrong gradient still fails."""

import numpy as np
import pytest

from npnet.nn.losses import SoftmaxCrossEntropy
from npnet.nn.network import Network
from npnet.registry import LAYERS
from npnet.tools import gradcheck


def relu_near_its_kink():
    layer = LAYERS.build("relu", {})
    layer.build((3,), np.random.default_rng(0), np.dtype(np.float64))
    # 3e-7 lies within the first step (1e-6) of ReLU's kink, not within the second (1e-7)
    return layer, np.array([[3e-7, -0.5, 1.0]])


def test_a_kink_within_the_first_step_passes_with_the_second(monkeypatch):
    layer, x = relu_near_its_kink()
    assert gradcheck.check_layer(layer, x)["x"] < gradcheck.TOLERANCE
    monkeypatch.setattr(gradcheck, "STEPS", (1e-6,))
    assert gradcheck.check_layer(layer, x)["x"] > 1e-3  # the kink, seen with one step only


def test_a_wrong_gradient_fails_with_every_step():
    calls = []

    def f():
        calls.append(1)
        return float(np.sum(x**2))

    x = np.array([1.0, 2.0])
    error = gradcheck.compare(f, x, 2 * x * 1.01, None)  # 1% off
    assert error == pytest.approx(0.01 / 1.01, rel=1e-6)  # |a - n| / max |a|
    assert len(calls) == 2 * 2 * len(gradcheck.STEPS)  # both steps tried


def test_the_other_steps_are_tried_against_the_tolerance_given():
    """sin(1000x) has a large third derivative: with a step of 1e-6 central differences are
    off by ~1.7e-7 (under 1e-6, so the default tolerance stops there), with 1e-7 by ~1e-9.
    At `--tolerance 1e-7` (make ch2.4) the first step fails and the second is tried."""
    x = np.array([0.3, 1.1])

    def f():
        return float(np.sum(np.sin(1000 * x)))

    analytic = 1000 * np.cos(1000 * x)
    assert 1e-7 < gradcheck.compare(f, x, analytic, None) < 1e-6
    assert gradcheck.compare(f, x, analytic, None, tolerance=1e-7) < 1e-8


def test_a_bias_before_batch_norm_has_a_zero_gradient_that_checks_as_zero():
    specs = [
        {"conv2d": {"filters": 2, "kernel": 3}},
        {"batch_norm": {}},
        {"flatten": {}},
        {"dense": {"units": 3}},
    ]
    net = Network.from_specs(specs, (1, 5, 5), np.random.default_rng(0), np.float64)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(4, 1, 5, 5)), np.array([0, 1, 2, 0])
    rows = {
        f"{r['layer']}.{r['tensor']}": r
        for r in gradcheck.check_network(net, SoftmaxCrossEntropy(), x, y)
    }
    assert rows["0.b"]["error"] == 0.0
    assert np.max(np.abs(net.gradients()["0.b"])) < 1e-12  # batch norm subtracts the bias
    assert all(r["error"] < gradcheck.TOLERANCE for r in rows.values())
    assert rows["0.W"]["error"] > 0  # a real comparison, not a skipped one
