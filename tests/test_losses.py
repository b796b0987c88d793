"""Losses: exact values, gradient checks w.r.t. the network output, target checks, stability."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from npnet.errors import ConfigError
from npnet.functional.numerical import numerical_gradient, relative_error
from npnet.nn import losses
from npnet.registry import LOSSES
from npnet.tools.gradcheck import TOLERANCE

LN3 = math.log(3.0)


def gradient_error(loss, out, y):
    """Relative error between loss.backward() and central differences of loss.forward."""
    loss.forward(out, y)
    analytic = loss.backward().copy()
    numeric = numerical_gradient(lambda: loss.forward(out, y), out)
    return relative_error(analytic, numeric)


def case(name, out_shape, seed=0, **args):
    """A loss with a random float64 output of `out_shape` and fitting random targets."""
    rng = np.random.default_rng(seed)
    out = rng.standard_normal(out_shape) * 2.0
    if name in ("softmax_cross_entropy", "hinge"):
        y = rng.integers(0, out_shape[1], out_shape[0])
    elif name == "binary_cross_entropy":
        y = rng.integers(0, 2, out_shape).astype(np.float64)
    else:
        y = rng.standard_normal(out_shape)
    return LOSSES.build(name, args), out, y


CASES = [
    ("softmax_cross_entropy", (6, 4), {}),
    ("softmax_cross_entropy", (5, 3), {"label_smoothing": 0.2}),
    ("mse", (6, 3), {}),
    ("mse", (4, 2, 3), {}),
    ("mae", (6, 3), {}),
    ("huber", (6, 3), {}),
    ("huber", (6, 3), {"delta": 0.5}),
    ("binary_cross_entropy", (7, 1), {}),
    ("binary_cross_entropy", (7,), {}),
    ("hinge", (6, 4), {}),
    ("hinge", (6, 4), {"margin": 2.0}),
]


def test_every_loss_is_registered_to_its_class():
    classes = {
        "softmax_cross_entropy": losses.SoftmaxCrossEntropy,
        "mse": losses.MSE,
        "mae": losses.MAE,
        "huber": losses.Huber,
        "binary_cross_entropy": losses.BinaryCrossEntropy,
        "hinge": losses.Hinge,
    }
    for name, cls in classes.items():
        assert LOSSES.get(name) is cls


@pytest.mark.parametrize("name, shape, args", CASES)
def test_gradient_check(name, shape, args):
    loss, out, y = case(name, shape, **args)
    assert gradient_error(loss, out, y) < TOLERANCE


@pytest.mark.parametrize("name, shape, args", CASES[:1] + CASES[2:3] + CASES[7:8] + CASES[9:10])
def test_gradient_check_catches_a_missing_one_over_n(name, shape, args):
    loss, out, y = case(name, shape, **args)
    loss.forward(out, y)
    forgot_the_mean = loss.backward() * out.shape[0]
    numeric = numerical_gradient(lambda: loss.forward(out, y), out)
    assert relative_error(forgot_the_mean, numeric) > 0.5


@pytest.mark.parametrize("name, shape, args", CASES)
def test_float32_output_gives_float32_gradient_and_float_value(name, shape, args):
    loss, out, y = case(name, shape, **args)
    out = out.astype(np.float32)
    value = loss.forward(out, y)
    grad = loss.backward()
    assert type(value) is float
    assert grad.dtype == np.float32 and grad.shape == out.shape


@pytest.mark.parametrize("name, shape, args", CASES)
def test_value_is_a_mean_over_the_batch(name, shape, args):
    """Repeating the batch changes nothing: the value does not grow with N."""
    loss, out, y = case(name, shape, **args)
    once = loss.forward(out, y)
    twice = loss.forward(np.concatenate([out, out]), np.concatenate([y, y]))
    assert twice == pytest.approx(once, rel=1e-12)


def test_softmax_cross_entropy_by_hand():
    loss = losses.SoftmaxCrossEntropy()
    out = np.array([[0.0, LN3], [0.0, LN3]])  # softmax rows [1/4, 3/4]
    assert loss.forward(out, np.array([1, 0])) == pytest.approx(
        (math.log(4 / 3) + math.log(4)) / 2, rel=1e-14
    )
    np.testing.assert_allclose(loss.backward(), [[1 / 8, -1 / 8], [-3 / 8, 3 / 8]], rtol=1e-12)


def test_mse_one_hot_encodes_integer_labels():
    loss = losses.MSE()
    out = np.array([[0.5, 0.2], [0.1, 0.9]])
    # targets [[1, 0], [0, 1]]: squared errors 0.25, 0.04, 0.01, 0.01, mean over all 4
    assert loss.forward(out, np.array([0, 1])) == pytest.approx(0.31 / 4)
    np.testing.assert_allclose(loss.backward(), 2 * np.array([[-0.5, 0.2], [0.1, -0.1]]) / 4)


def test_mse_is_the_mean_over_all_entries_like_pytorch():
    loss = losses.MSE()
    assert loss.forward(np.array([[1.0, 2.0]]), np.zeros((1, 2))) == pytest.approx(2.5)


def test_single_output_regression_accepts_flat_targets():
    out = np.array([[1.0], [2.0]])
    for name in ("mse", "mae", "huber"):
        loss = LOSSES.build(name)
        assert loss.forward(out, np.array([1.0, 2.0])) == 0.0
        assert loss.backward().shape == (2, 1)


def test_binary_cross_entropy_by_hand_and_flat_targets():
    loss = losses.BinaryCrossEntropy()
    out = np.array([[LN3], [LN3]])  # σ = 3/4
    value = loss.forward(out, np.array([1, 0]))  # (N,) integer targets for (N, 1) logits
    assert value == pytest.approx((math.log(4 / 3) + math.log(4)) / 2, rel=1e-14)
    np.testing.assert_allclose(loss.backward(), [[-1 / 8], [3 / 8]], rtol=1e-12)


def test_hinge_by_hand():
    loss = losses.Hinge()
    out = np.array([[1.0, 2.0, 0.5], [3.0, 0.0, 1.0]])
    assert loss.forward(out, np.array([0, 0])) == pytest.approx(2.5 / 6)
    np.testing.assert_allclose(loss.backward(), [[-2 / 6, 1 / 6, 1 / 6], [0, 0, 0]])


@pytest.mark.parametrize(
    "name, out, y",
    [
        ("softmax_cross_entropy", [[1000.0, -1000.0], [-1000.0, 1000.0]], [1, 1]),
        ("binary_cross_entropy", [[1000.0], [-1000.0], [1000.0]], [0.0, 0.0, 1.0]),
        ("hinge", [[1000.0, -1000.0], [-1000.0, 1000.0]], [1, 1]),
        ("mse", [[1000.0, -1000.0]], [[0.0, 0.0]]),
    ],
)
def test_huge_logits_give_finite_loss_and_gradient(name, out, y):
    loss = LOSSES.build(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = loss.forward(np.array(out), np.array(y))
        grad = loss.backward()
    assert math.isfinite(value) and np.all(np.isfinite(grad))
    assert value > 0  # a confidently wrong answer costs, rather than vanishing to 0 or NaN


def test_huge_logits_have_the_exact_cross_entropy():
    loss = losses.SoftmaxCrossEntropy()
    out = np.array([[1000.0, -1000.0], [-1000.0, 1000.0]])
    assert loss.forward(out, np.array([1, 1])) == pytest.approx(1000.0)  # (2000 + 0) / 2
    np.testing.assert_allclose(loss.backward(), [[0.5, -0.5], [0.0, 0.0]])


@pytest.mark.parametrize(
    "name, out_shape, y, message",
    [
        ("softmax_cross_entropy", (3, 4), np.array([0.0, 1.0, 2.0]), "integer class labels"),
        ("softmax_cross_entropy", (3, 4), np.array([[0], [1], [2]]), "labels of shape (3,)"),
        ("softmax_cross_entropy", (3, 4), np.array([0, 1, 4]), "labels in [0, 4)"),
        ("softmax_cross_entropy", (3,), np.array([0, 1, 2]), "scores of shape (N, C)"),
        ("hinge", (3, 4), np.array([0, -1, 2]), "labels in [0, 4)"),
        ("mse", (3, 4), np.zeros((3, 5)), "targets of the same shape or integer labels"),
        ("mse", (3, 4), np.zeros(3), "targets of the same shape"),
        ("mae", (3, 4), np.array([0, 1, 4]), "labels in [0, 4)"),
        ("huber", (3, 4), np.array([0.5, 1, 2]), "targets of the same shape or integer"),
        ("huber", (3, 4), np.array(["a", "b", "c"]), "numeric targets"),
        ("binary_cross_entropy", (3, 2), np.zeros(3), "targets of the same shape"),
        ("binary_cross_entropy", (3, 1), np.array([0, 1, 2]), "targets in [0, 1]"),
    ],
)
def test_wrong_targets_raise_value_error(name, out_shape, y, message):
    loss = LOSSES.build(name)
    with pytest.raises(ValueError) as error:
        loss.forward(np.zeros(out_shape), y)
    assert message in str(error.value)
    assert name in str(error.value)


@pytest.mark.parametrize(
    "name, args, message",
    [
        ("softmax_cross_entropy", {"label_smoothing": 1.5}, "'label_smoothing' must be in [0, 1]"),
        ("huber", {"delta": 0.0}, "'delta' must be in (0, inf]"),
        ("hinge", {"margin": -1.0}, "'margin' must be in [0, inf]"),
    ],
)
def test_bad_arguments_are_config_errors(name, args, message):
    with pytest.raises(ConfigError) as error:
        LOSSES.build(name, args)
    assert message in str(error.value)


@pytest.mark.parametrize(
    "name, args",
    [
        ("softmax_cross_entropy", {"label_smoothing": 0.1}),
        ("mse", {}),
        ("mae", {}),
        ("huber", {"delta": 2.0}),
        ("binary_cross_entropy", {}),
        ("hinge", {"margin": 0.5}),
    ],
)
def test_config_round_trip(name, args):
    loss = LOSSES.build(name, args)
    assert loss.get_config() == args
    assert type(loss)(**loss.get_config()).get_config() == args
