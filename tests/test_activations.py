"""Activation layers: exact values, gradient checks (with negative controls), dtypes, configs."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from npnet.errors import ConfigError
from npnet.functional import activations as A
from npnet.nn import activations
from npnet.registry import LAYERS
from npnet.tools.gradcheck import TOLERANCE, check_layer

ACTIVATIONS = ["identity", "relu", "leaky_relu", "elu", "gelu", "sigmoid", "tanh", "softmax"]
LN3 = math.log(3.0)


def built(name, in_shape, dtype=np.float64, **args):
    layer = LAYERS.build(name, args)
    layer.build(in_shape, np.random.default_rng(0), dtype)
    return layer


def test_every_activation_is_registered_to_its_class():
    classes = {
        "identity": activations.Identity,
        "relu": activations.ReLU,
        "leaky_relu": activations.LeakyReLU,
        "elu": activations.ELU,
        "gelu": activations.GELU,
        "sigmoid": activations.Sigmoid,
        "tanh": activations.Tanh,
        "softmax": activations.Softmax,
    }
    for name, cls in classes.items():
        assert LAYERS.get(name) is cls


@pytest.mark.parametrize(
    "name, args, x, out, dx",
    [
        ("identity", {}, [-1.0, 2.0], [-1.0, 2.0], [1.0, 1.0]),
        ("relu", {}, [-2.0, 0.0, 3.0], [0.0, 0.0, 3.0], [0.0, 0.0, 1.0]),
        ("leaky_relu", {"negative_slope": 0.1}, [-2.0, 3.0], [-0.2, 3.0], [0.1, 1.0]),
        ("elu", {"alpha": 2.0}, [-math.log(2.0), 3.0], [-1.0, 3.0], [1.0, 1.0]),
        ("sigmoid", {}, [-LN3, 0.0, LN3], [0.25, 0.5, 0.75], [3 / 16, 1 / 4, 3 / 16]),
        ("tanh", {}, [-math.log(2.0), 0.0], [-0.6, 0.0], [0.64, 1.0]),
        ("gelu", {}, [0.0], [0.0], [0.5]),
    ],
)
def test_elementwise_forward_and_local_slope(name, args, x, out, dx):
    """With dL/dout = 1 the backward pass returns exactly the local slope f'(x)."""
    layer = built(name, (len(x),), **args)
    x = np.array([x])
    np.testing.assert_allclose(layer.forward(x, training=True), [out], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(layer.backward(np.ones_like(x)), [dx], rtol=1e-12, atol=1e-15)


def test_backward_multiplies_the_incoming_gradient():
    layer = built("relu", (3,))
    layer.forward(np.array([[-1.0, 2.0, 3.0]]), training=True)
    np.testing.assert_array_equal(layer.backward(np.array([[5.0, 6.0, -7.0]])), [[0, 6, -7]])


def test_softmax_layer_forward_and_jacobian_product():
    layer = built("softmax", (2,))
    out = layer.forward(np.array([[0.0, LN3]]), training=True)
    np.testing.assert_allclose(out, [[0.25, 0.75]], rtol=1e-12)
    # J = diag(s) − s sᵀ; J·[1, 0] = [3/16, −3/16]
    np.testing.assert_allclose(layer.backward(np.array([[1.0, 0.0]])), [[3 / 16, -3 / 16]])


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("in_shape", [(7,), (3, 4, 4)])
def test_gradient_check(name, in_shape):
    layer = built(name, in_shape)
    x = np.random.default_rng(1).standard_normal((4, *in_shape))
    errors = check_layer(layer, x, training=True)
    assert errors["x"] < TOLERANCE, errors
    assert set(errors) == {"x"}  # no parameters


class DiagonalSoftmax(activations.Softmax):
    """A classic bug: only the Jacobian's diagonal, dz_i = g_i·s_i·(1 − s_i)."""

    def backward(self, grad_out):
        return grad_out * self.out * (1 - self.out)


class SigmoidSlopeBug(activations.Sigmoid):
    """Another classic: σ(x) used as if it were σ'(x)."""

    slope = staticmethod(np.copy)


@pytest.mark.parametrize("cls", [DiagonalSoftmax, SigmoidSlopeBug])
def test_gradient_check_catches_a_wrong_backward(cls):
    layer = cls()
    layer.build((5,), np.random.default_rng(0), np.float64)
    x = np.random.default_rng(1).standard_normal((3, 5))
    assert check_layer(layer, x)["x"] > 1e-3


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_and_shape_are_kept(name, dtype):
    layer = built(name, (3, 2, 2), dtype=dtype)
    assert layer.out_shape == (3, 2, 2)
    x = np.random.default_rng(0).standard_normal((5, 3, 2, 2)).astype(dtype)
    out = layer.forward(x, training=True)
    dx = layer.backward(np.ones_like(out))
    assert out.dtype == dtype and out.shape == x.shape
    assert dx.dtype == dtype and dx.shape == x.shape


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_no_input_gradient_when_not_needed(name):
    layer = built(name, (3,))
    layer.input_grad = False
    layer.forward(np.ones((2, 3)), training=True)
    assert layer.backward(np.ones((2, 3))) is None


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_huge_inputs_give_finite_values_without_warnings(name):
    layer = built(name, (4,))
    x = np.array([[-1000.0, -30.0, 30.0, 1000.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = layer.forward(x, training=True)
        dx = layer.backward(np.ones_like(x))
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(dx))


def test_saturated_sigmoid_and_softmax_values():
    x = np.array([[-1000.0, 1000.0]])
    np.testing.assert_array_equal(built("sigmoid", (2,)).forward(x, True), [[0.0, 1.0]])
    np.testing.assert_array_equal(built("softmax", (2,)).forward(x, True), [[0.0, 1.0]])


@pytest.mark.parametrize(
    "name, args", [("leaky_relu", {"negative_slope": 0.2}), ("elu", {"alpha": 0.5})]
)
def test_config_round_trip(name, args):
    layer = LAYERS.build(name, args)
    assert layer.get_config() == args
    assert type(layer)(**layer.get_config()).get_config() == args


@pytest.mark.parametrize("name", ["identity", "relu", "gelu", "sigmoid", "tanh", "softmax"])
def test_parameterless_config_is_empty(name):
    assert LAYERS.build(name).get_config() == {}


@pytest.mark.parametrize(
    "name, args, message",
    [
        ("leaky_relu", {"negative_slope": "big"}, "'negative_slope' must be a number"),
        ("elu", {"alpha": -1.0}, "'alpha' must be in [0, inf]"),
    ],
)
def test_bad_arguments_are_config_errors(name, args, message):
    with pytest.raises(ConfigError) as error:
        LAYERS.build(name, args)
    assert message in str(error.value)


def test_relu_backward_uses_the_mask_of_the_last_forward():
    layer = built("relu", (2,))
    layer.forward(np.array([[1.0, -1.0]]), training=True)
    layer.forward(np.array([[-1.0, 1.0]]), training=True)
    np.testing.assert_array_equal(layer.backward(np.ones((1, 2))), [[0.0, 1.0]])


def test_layers_and_functions_agree():
    """The layers are thin: each forward is its function from npnet.functional.activations."""
    x = np.random.default_rng(2).standard_normal((3, 5))
    for name, f in [("gelu", A.gelu), ("elu", A.elu), ("tanh", A.tanh), ("softmax", A.softmax)]:
        np.testing.assert_array_equal(built(name, (5,)).forward(x, True), f(x))
