"""Dense and flatten layers: exact values, gradient checks with a negative control, dtypes,
configs and the errors a wrong config gets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from npnet.errors import ConfigError
from npnet.nn import dense, reshape
from npnet.registry import LAYERS
from npnet.tools.gradcheck import TOLERANCE, check_layer


def built(name, in_shape, dtype=np.float64, seed=0, **args):
    layer = LAYERS.build(name, args)
    layer.build(in_shape, np.random.default_rng(seed), dtype)
    return layer


def test_registered():
    assert LAYERS.get("dense") is dense.Dense
    assert LAYERS.get("flatten") is reshape.Flatten


def test_dense_forward_and_backward_by_hand():
    layer = built("dense", (2,), units=3)
    layer.params["W"][...] = [[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]]
    layer.params["b"][...] = [0.5, -1.0, 2.0]
    x = np.array([[1.0, 2.0]])
    np.testing.assert_array_equal(layer.forward(x, training=True), [[5.5, 1.0, 1.0]])
    dx = layer.backward(np.array([[1.0, 0.0, 2.0]]))
    np.testing.assert_array_equal(dx, [[-1.0, 2.0]])  # G Wᵀ
    np.testing.assert_array_equal(layer.grads["W"], [[1.0, 0.0, 2.0], [2.0, 0.0, 4.0]])  # Xᵀ G
    np.testing.assert_array_equal(layer.grads["b"], [1.0, 0.0, 2.0])


def test_dense_bias_gradient_sums_over_the_batch():
    layer = built("dense", (2,), units=1)
    layer.forward(np.ones((3, 2)), training=True)
    layer.backward(np.array([[1.0], [2.0], [3.0]]))
    np.testing.assert_array_equal(layer.grads["b"], [6.0])


@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_gradient_check(use_bias):
    layer = built("dense", (7,), units=5, use_bias=use_bias)
    x = np.random.default_rng(1).standard_normal((4, 7))
    errors = check_layer(layer, x, entries=None)
    assert set(errors) == ({"x", "W", "b"} if use_bias else {"x", "W"})
    assert max(errors.values()) < TOLERANCE, errors


def test_dense_gradient_check_catches_a_wrong_backward(monkeypatch):
    """Negative control: a dW from the first sample only (the batch sum forgotten) must fail."""

    def wrong(grad_out, x, W, *, input_grad=True):
        return grad_out @ W.T, np.outer(x[0], grad_out[0]), grad_out.sum(axis=0)

    monkeypatch.setattr(dense, "linear_backward", wrong)
    layer = built("dense", (6,), units=6)
    errors = check_layer(layer, np.random.default_rng(2).standard_normal((3, 6)), entries=None)
    assert errors["x"] < TOLERANCE
    assert errors["W"] > 0.1


def test_dense_float32_stays_float32():
    layer = built("dense", (8,), dtype=np.float32, units=4)
    x = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    out = layer.forward(x, training=True)
    dx = layer.backward(np.ones_like(out))
    assert out.dtype == dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in layer.grads.values())
    assert all(p.dtype == np.float32 for p in layer.params.values())


def test_dense_weights_use_fan_in_and_biases_start_at_zero():
    layer = built("dense", (800,), units=500)
    assert layer.params["W"].shape == (800, 500)
    assert layer.params["W"].std() == pytest.approx(math.sqrt(2 / 800), rel=0.02)  # he_normal
    assert not layer.params["b"].any()
    np.testing.assert_array_equal(layer.params["W"], built("dense", (800,), units=500).params["W"])


def test_dense_without_input_grad_skips_dx_but_sets_grads():
    layer = built("dense", (3,), units=2)
    layer.input_grad = False
    layer.forward(np.ones((2, 3)), training=True)
    assert layer.backward(np.ones((2, 2))) is None
    assert layer.grads["W"].shape == (3, 2)


def test_dense_config_round_trip():
    init = {"name": "xavier_uniform", "gain": 2.0}
    layer = LAYERS.build("dense", {"units": 7, "use_bias": False, "init": init})
    config = layer.get_config()
    assert config == {"units": 7, "use_bias": False, "init": init, "bias_init": "zeros"}
    assert type(layer)(**config).get_config() == config


@pytest.mark.parametrize(
    "args, message",
    [
        ({"units": 0}, "'units' must be a positive int, got 0"),
        ({"units": 2.5}, "'units' must be a positive int, got 2.5"),
        ({"units": 3, "use_bias": "yes"}, "'use_bias' must be true or false, got 'yes'"),
        ({"units": 3, "init": "he_nromal"}, "did you mean 'he_normal'"),
    ],
)
def test_dense_rejects_bad_arguments(args, message):
    with pytest.raises(ConfigError, match=message):
        LAYERS.build("dense", args)


def test_dense_on_an_image_says_to_flatten():
    with pytest.raises(
        ConfigError,
        match=r"dense expects a flat input \(features,\), got \(16, 14, 14\); add a flatten layer",
    ):
        built("dense", (16, 14, 14), units=10)


def test_flatten_is_a_view_and_round_trips_the_gradient():
    layer = built("flatten", (2, 3, 4))
    assert layer.out_shape == (24,)
    x = np.arange(48.0).reshape(2, 2, 3, 4)
    out = layer.forward(x, training=True)
    assert out.shape == (2, 24)
    assert np.shares_memory(out, x)
    np.testing.assert_array_equal(out[1], np.arange(24.0, 48.0))  # C-order, per sample
    dx = layer.backward(out * 2)
    np.testing.assert_array_equal(dx, x * 2)
    assert layer.get_config() == {}
    assert check_layer(layer, x.copy())["x"] < TOLERANCE


def test_flatten_first_layer_returns_no_input_gradient():
    layer = built("flatten", (1, 2, 2))
    layer.input_grad = False
    layer.forward(np.ones((3, 1, 2, 2), dtype=np.float32), training=True)
    assert layer.backward(np.ones((3, 4), dtype=np.float32)) is None
