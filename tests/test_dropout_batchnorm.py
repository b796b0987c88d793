"""Dropout and batch normalization: statistics, exact values, gradient checks, dtypes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from npnet.errors import ConfigError
from npnet.nn.batch_norm import BatchNorm
from npnet.nn.dropout import Dropout
from npnet.registry import LAYERS
from npnet.tools.gradcheck import TOLERANCE, check_layer


def built(name, in_shape, dtype=np.float64, seed=0, **args):
    layer = LAYERS.build(name, args)
    layer.build(in_shape, np.random.default_rng(seed), dtype)
    return layer


# --- dropout -----------------------------------------------------------------------------


def test_dropout_is_registered():
    assert LAYERS.get("dropout") is Dropout
    assert Dropout().rate == 0.5


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_dropout_zeroes_the_rate_and_preserves_the_mean(rate):
    layer = built("dropout", (1000,), dtype=np.float32, rate=rate)
    out = layer.forward(np.ones((1000, 1000), dtype=np.float32), training=True)
    n = out.size
    # Binomial: the share of zeros has standard deviation √(p(1 − p)/n) ≈ 0.0005; allow 5σ.
    assert np.mean(out == 0) == pytest.approx(rate, abs=5 * math.sqrt(rate * (1 - rate) / n))
    # Each output is 0 or 1/(1 − p): mean 1, standard deviation √(p/(1 − p)) per entry.
    assert np.mean(out) == pytest.approx(1.0, abs=5 * math.sqrt(rate / (1 - rate) / n))
    np.testing.assert_allclose(np.unique(out), [0.0, 1 / (1 - rate)], rtol=1e-6)


def test_dropout_backward_routes_through_the_same_mask():
    layer = built("dropout", (50,), rate=0.3)
    x = np.random.default_rng(1).standard_normal((4, 50))
    out = layer.forward(x, training=True)
    dx = layer.backward(np.ones_like(x))
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / 0.7)
    np.testing.assert_allclose(dx[kept], 1 / 0.7)
    np.testing.assert_array_equal(dx[~kept], 0.0)


def test_dropout_is_the_identity_at_evaluation():
    layer = built("dropout", (10,), rate=0.5)
    x = np.random.default_rng(1).standard_normal((3, 10))
    out = layer.forward(x, training=False)
    np.testing.assert_array_equal(out, x)
    grad = np.random.default_rng(2).standard_normal((3, 10))
    np.testing.assert_array_equal(layer.backward(grad), grad)


def test_dropout_rate_zero_trains_as_the_identity():
    layer = built("dropout", (10,), rate=0.0)
    x = np.ones((3, 10))
    np.testing.assert_array_equal(layer.forward(x, training=True), x)
    np.testing.assert_array_equal(layer.backward(x), x)


def test_dropout_same_rng_same_mask_and_a_new_mask_each_step():
    x = np.ones((8, 20))
    a, b = built("dropout", (20,), seed=7), built("dropout", (20,), seed=7)
    first = a.forward(x, training=True)
    np.testing.assert_array_equal(first, b.forward(x, training=True))
    assert not np.array_equal(first, a.forward(x, training=True))
    other = built("dropout", (20,), seed=8).forward(x, training=True)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("in_shape", [(12,), (2, 3, 3)])
def test_dropout_gradient_check(training, in_shape):
    layer = built("dropout", in_shape, rate=0.4)
    x = np.random.default_rng(1).standard_normal((5, *in_shape))
    assert check_layer(layer, x, training=training)["x"] < TOLERANCE


class UnscaledDropoutBackward(Dropout):
    """A classic bug: the backward pass forgets the 1/(1 − rate) of the forward pass."""

    def backward(self, grad_out):
        return grad_out * (self.mask != 0)


def test_dropout_gradient_check_catches_a_missing_scale():
    layer = UnscaledDropoutBackward(rate=0.4)
    layer.build((12,), np.random.default_rng(0), np.float64)
    x = np.random.default_rng(1).standard_normal((5, 12))
    assert check_layer(layer, x)["x"] > 1e-3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_keeps_the_dtype(dtype):
    layer = built("dropout", (6,), dtype=dtype)
    x = np.ones((4, 6), dtype=dtype)
    assert layer.forward(x, training=True).dtype == dtype
    assert layer.backward(x).dtype == dtype


@pytest.mark.parametrize(
    "rate, message",
    [
        (1.0, "'rate' must be in [0, 1), got 1.0"),
        (-0.1, "'rate' must be in [0, 1), got -0.1"),
        ("half", "'rate' must be a number, got 'half'"),
    ],
)
def test_dropout_rejects_bad_rates(rate, message):
    with pytest.raises(ConfigError) as error:
        Dropout(rate=rate)
    assert str(error.value) == message


def test_dropout_config_round_trip():
    layer = Dropout(rate=0.25)
    assert layer.get_config() == {"rate": 0.25}
    assert Dropout(**layer.get_config()).rate == 0.25


# --- batch norm --------------------------------------------------------------------------


def test_batch_norm_build_creates_params_and_buffers():
    layer = built("batch_norm", (3, 4, 4), dtype=np.float32)
    assert layer.out_shape == (3, 4, 4)
    np.testing.assert_array_equal(layer.params["gamma"], np.ones(3))
    np.testing.assert_array_equal(layer.params["beta"], np.zeros(3))
    np.testing.assert_array_equal(layer.buffers["running_mean"], np.zeros(3))
    np.testing.assert_array_equal(layer.buffers["running_var"], np.ones(3))
    assert all(a.dtype == np.float32 for a in [*layer.params.values(), *layer.buffers.values()])
    assert set(layer.grads) == set(layer.params)


def test_batch_norm_training_forward_by_hand():
    layer = built("batch_norm", (1,))
    layer.params["gamma"][:] = 2.0
    layer.params["beta"][:] = 0.5
    # batch [1, 3]: μ = 2, biased σ² = 1, so x̂ = ±1/√(1 + ε)
    out = layer.forward(np.array([[1.0], [3.0]]), training=True)
    scaled = 2.0 / math.sqrt(1 + 1e-5)  # γ·x̂ for x̂ = 1
    np.testing.assert_allclose(out, [[0.5 - scaled], [0.5 + scaled]])


def test_batch_norm_running_statistics_by_hand():
    layer = built("batch_norm", (1,))
    # batch means 2, 4, 0; unbiased variances 2, 8, 2; r ← 0.9·r + 0.1·batch from r = (0, 1)
    for batch in ([1.0, 3.0], [2.0, 6.0], [-1.0, 1.0]):
        layer.forward(np.array(batch)[:, None], training=True)
    mean_1, var_1 = 0.1 * 2, 0.9 * 1 + 0.1 * 2
    mean_2, var_2 = 0.9 * mean_1 + 0.1 * 4, 0.9 * var_1 + 0.1 * 8
    mean_3, var_3 = 0.9 * mean_2 + 0.1 * 0, 0.9 * var_2 + 0.1 * 2
    assert (mean_3, var_3) == pytest.approx((0.522, 1.811))
    np.testing.assert_allclose(layer.buffers["running_mean"], [mean_3], rtol=1e-14)
    np.testing.assert_allclose(layer.buffers["running_var"], [var_3], rtol=1e-14)
    # Evaluation normalizes with them, and does not change them.
    out = layer.forward(np.array([[2.0]]), training=False)
    np.testing.assert_allclose(out, [[(2.0 - 0.522) / math.sqrt(1.811 + 1e-5)]], rtol=1e-12)
    np.testing.assert_allclose(layer.buffers["running_mean"], [mean_3], rtol=1e-14)


def test_batch_norm_statistics_are_per_channel_for_images():
    layer = built("batch_norm", (2, 3, 3), momentum=0.5)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 2, 3, 3)) * np.array([1.0, 5.0])[:, None, None] + 3.0
    out = layer.forward(x, training=True)
    # each channel of the output has mean 0 and (biased) variance 1 over batch and pixels
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), [1.0, 1.0], rtol=1e-4)
    per_channel = x.transpose(1, 0, 2, 3).reshape(2, -1)  # (C, N·H·W), m = 36 values each
    np.testing.assert_allclose(layer.buffers["running_mean"], 0.5 * per_channel.mean(axis=1))
    unbiased = per_channel.var(axis=1, ddof=1)
    np.testing.assert_allclose(layer.buffers["running_var"], 0.5 * 1.0 + 0.5 * unbiased)


def test_batch_norm_evaluation_uses_loaded_buffers():
    layer = built("batch_norm", (2,), eps=1e-300)  # a negligible ε, so the values are exact
    # a checkpoint may replace the arrays rather than fill them
    layer.buffers = {"running_mean": np.array([1.0, -1.0]), "running_var": np.array([4.0, 0.25])}
    out = layer.forward(np.array([[3.0, 0.0]]), training=False)
    np.testing.assert_allclose(out, [[(3 - 1) / 2, (0 + 1) / 0.5]])


def test_batch_norm_evaluation_output_does_not_depend_on_the_batch():
    layer = built("batch_norm", (3,))
    layer.forward(np.random.default_rng(0).standard_normal((8, 3)), training=True)
    x = np.random.default_rng(1).standard_normal((5, 3))
    alone = layer.forward(x[:1], training=False)
    np.testing.assert_allclose(layer.forward(x, training=False)[:1], alone)


def test_batch_norm_backward_by_hand_in_evaluation():
    layer = built("batch_norm", (1,))
    layer.buffers["running_var"][:] = 4.0 - 1e-5  # √(var + ε) = 2
    layer.params["gamma"][:] = 3.0
    layer.forward(np.array([[2.0], [4.0]]), training=False)  # x̂ = [1, 2]
    dx = layer.backward(np.array([[1.0], [10.0]]))
    np.testing.assert_allclose(dx, [[1.5], [15.0]])  # γ/2 · g
    np.testing.assert_allclose(layer.grads["gamma"], [1 * 1 + 10 * 2])  # Σ g·x̂
    np.testing.assert_allclose(layer.grads["beta"], [11.0])  # Σ g


def test_batch_norm_training_backward_removes_mean_and_scale_directions():
    """In training a constant or a multiple of x̂ in dL/dout gives dx = 0 (γ = 1): the
    normalization cannot change the batch's mean or spread. (Exactly so only for ε → 0: with ε
    the spread of x̂ is σ²/(σ² + ε), not 1.)"""
    layer = built("batch_norm", (4,), eps=1e-12)
    x = np.random.default_rng(0).standard_normal((6, 4))
    x_hat = layer.forward(x, training=True)
    np.testing.assert_allclose(layer.backward(np.ones_like(x)), 0.0, atol=1e-12)
    np.testing.assert_allclose(layer.backward(3.0 * x_hat), 0.0, atol=1e-9)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("in_shape", [(5,), (3, 4, 4), (2, 6)])
def test_batch_norm_gradient_check(training, in_shape):
    layer = built("batch_norm", in_shape)
    rng = np.random.default_rng(1)
    channels = in_shape[0]
    layer.params["gamma"][:] = rng.uniform(0.5, 2.0, channels)
    layer.params["beta"][:] = rng.standard_normal(channels)
    layer.buffers["running_mean"][:] = rng.standard_normal(channels)
    layer.buffers["running_var"][:] = rng.uniform(0.5, 2.0, channels)
    x = rng.standard_normal((4, *in_shape)) * 2.0 + 1.0
    errors = check_layer(layer, x, training=training)
    assert set(errors) == {"x", "gamma", "beta"}
    assert max(errors.values()) < TOLERANCE, errors


class ConstantStatisticsBackward(BatchNorm):
    """A classic bug: in training, treating the batch's μ and σ² as constants."""

    def backward(self, grad_out):
        self.cache.count = None  # as if the forward pass had been an evaluation
        return super().backward(grad_out)


def test_batch_norm_gradient_check_catches_constant_statistics():
    layer = ConstantStatisticsBackward()
    layer.build((5,), np.random.default_rng(0), np.float64)
    x = np.random.default_rng(1).standard_normal((4, 5))
    errors = check_layer(layer, x, training=True)
    assert errors["x"] > 1e-3
    assert errors["gamma"] < TOLERANCE  # dγ, dβ do not involve the statistics' gradient


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_keeps_the_dtype(training, dtype):
    layer = built("batch_norm", (3, 2, 2), dtype=dtype)
    x = np.random.default_rng(0).standard_normal((4, 3, 2, 2)).astype(dtype)
    out = layer.forward(x, training=training)
    dx = layer.backward(np.ones_like(out))
    assert out.dtype == dtype and dx.dtype == dtype and dx.shape == x.shape
    assert all(g.dtype == dtype and g.shape == (3,) for g in layer.grads.values())
    assert all(b.dtype == dtype for b in layer.buffers.values())


def test_batch_norm_without_input_gradient_still_sets_param_grads():
    layer = built("batch_norm", (2,))
    layer.input_grad = False
    layer.forward(np.array([[1.0, 2.0], [3.0, 5.0]]), training=True)
    assert layer.backward(np.ones((2, 2))) is None
    np.testing.assert_allclose(layer.grads["beta"], [2.0, 2.0])


def test_batch_norm_cannot_train_on_one_value_per_channel():
    layer = built("batch_norm", (3,))
    with pytest.raises(ValueError, match="more than one value per channel"):
        layer.forward(np.ones((1, 3)), training=True)
    layer.forward(np.ones((1, 3)), training=False)  # evaluation is fine


@pytest.mark.parametrize(
    "args, message",
    [
        ({"momentum": 1.5}, "'momentum' must be in [0, 1], got 1.5"),
        ({"eps": 0.0}, "'eps' must be in (0, inf], got 0.0"),
    ],
)
def test_batch_norm_rejects_bad_arguments(args, message):
    with pytest.raises(ConfigError) as error:
        LAYERS.build("batch_norm", args)
    assert str(error.value) == message


def test_batch_norm_config_round_trip():
    layer = BatchNorm(momentum=0.2, eps=1e-3)
    assert layer.get_config() == {"momentum": 0.2, "eps": 1e-3}
    assert BatchNorm(**layer.get_config()).get_config() == layer.get_config()
