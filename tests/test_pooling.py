"""Max and average pooling: exact values by hand (ties routed to the first maximum), the fast
and general paths against each other, gradient checks with negative controls, dtypes, configs
and errors."""

from __future__ import annotations

import numpy as np
import pytest

from npnet.errors import ConfigError
from npnet.functional import pooling as P
from npnet.nn import pooling
from npnet.registry import LAYERS
from npnet.tools.gradcheck import TOLERANCE, check_layer

TIES = np.array(
    [
        [1.0, 1.0, 0.0, 2.0],
        [0.0, 1.0, 2.0, 2.0],
        [3.0, 0.0, 5.0, 5.0],
        [3.0, 3.0, 5.0, 5.0],
    ]
).reshape(1, 1, 4, 4)
X3 = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)


def built(name, in_shape, dtype=np.float64, **args):
    layer = LAYERS.build(name, args)
    layer.build(in_shape, np.random.default_rng(0), dtype)
    return layer


def general_path(monkeypatch):
    """Force the zero-fill-and-accumulate backward even where windows tile the image."""
    monkeypatch.setattr(P, "tiles_exactly", lambda shape, size, stride: False)


def test_registered():
    assert LAYERS.get("max_pool2d") is pooling.MaxPool2D
    assert LAYERS.get("avg_pool2d") is pooling.AvgPool2D


def test_max_pool_routes_ties_to_the_first_maximum():
    out, argmax = P.max_pool2d_forward(TIES, 2)
    np.testing.assert_array_equal(out, [[[[1.0, 2.0], [3.0, 5.0]]]])
    np.testing.assert_array_equal(argmax, [[[[0, 1], [0, 0]]]])  # p·2 + q, row-major
    dx = P.max_pool2d_backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), argmax, TIES.shape, 2)
    expected = np.zeros((1, 1, 4, 4))
    expected[0, 0, 0, 0], expected[0, 0, 0, 3], expected[0, 0, 2, 0], expected[0, 0, 2, 2] = (
        1,
        2,
        3,
        4,
    )
    np.testing.assert_array_equal(dx, expected)


def test_max_pool_flat_background_sends_everything_to_each_top_left():
    x = np.zeros((1, 1, 4, 4))
    out, argmax = P.max_pool2d_forward(x, 2)
    dx = P.max_pool2d_backward(np.ones_like(out), argmax, x.shape, 2)
    np.testing.assert_array_equal(
        dx[0, 0], [[1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    )


def test_overlapping_max_pool_by_hand():
    out, argmax = P.max_pool2d_forward(X3, 2, 1)
    np.testing.assert_array_equal(out, [[[[5.0, 6.0], [8.0, 9.0]]]])
    dx = P.max_pool2d_backward(np.ones_like(out), argmax, X3.shape, 2, 1)
    np.testing.assert_array_equal(dx[0, 0], [[0, 0, 0], [0, 1, 1], [0, 1, 1]])
    # one pixel that is the maximum of all four overlapping windows collects all four gradients
    peak = np.zeros((1, 1, 3, 3))
    peak[0, 0, 1, 1] = 9.0
    out, argmax = P.max_pool2d_forward(peak, 2, 1)
    dx = P.max_pool2d_backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), argmax, peak.shape, 2, 1)
    np.testing.assert_array_equal(dx[0, 0], [[0, 0, 0], [0, 10, 0], [0, 0, 0]])
    # all tied: each window picks its own top-left pixel
    out, argmax = P.max_pool2d_forward(np.ones((1, 1, 3, 3)), 2, 1)
    dx = P.max_pool2d_backward(np.ones_like(out), argmax, (1, 1, 3, 3), 2, 1)
    np.testing.assert_array_equal(dx[0, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])


def test_pooling_drops_the_rows_and_columns_no_window_reaches():
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    out, argmax = P.max_pool2d_forward(x, 2)
    np.testing.assert_array_equal(out[0, 0], [[6, 8], [16, 18]])
    dx = P.max_pool2d_backward(np.ones_like(out), argmax, x.shape, 2)
    assert not dx[0, 0, 4].any() and not dx[0, 0, :, 4].any()
    np.testing.assert_array_equal(P.avg_pool2d(x, 2)[0, 0], [[3, 5], [13, 15]])
    assert not P.avg_pool2d_backward(np.ones_like(out), x.shape, 2)[0, 0, 4].any()


def test_avg_pool_by_hand():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(P.avg_pool2d(x, 2)[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    np.testing.assert_array_equal(P.avg_pool2d(X3, 2, 1)[0, 0], [[3.0, 4.0], [6.0, 7.0]])
    dx = P.avg_pool2d_backward(np.array([[[[4.0, 8.0], [12.0, 16.0]]]]), x.shape, 2)
    np.testing.assert_array_equal(
        dx[0, 0], [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    )
    dx = P.avg_pool2d_backward(np.ones((1, 1, 2, 2)), X3.shape, 2, 1)
    np.testing.assert_array_equal(dx[0, 0], [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (64, 4, 28, 28)])
def test_fast_and_general_paths_agree(shape, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, size=shape).astype(np.float64)  # many ties
    out, argmax = P.max_pool2d_forward(x, 2)
    g = rng.standard_normal(out.shape)
    assert P.tiles_exactly(shape, 2, 2)
    fast_max = P.max_pool2d_backward(g, argmax, shape, 2)
    fast_avg = P.avg_pool2d_backward(g, shape, 2)
    general_path(monkeypatch)
    np.testing.assert_array_equal(fast_max, P.max_pool2d_backward(g, argmax, shape, 2))
    np.testing.assert_array_equal(fast_avg, P.avg_pool2d_backward(g, shape, 2))


@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize(
    "args, in_shape",
    [({}, (2, 6, 6)), ({"size": 3, "stride": 2}, (2, 7, 8)), ({"size": 2, "stride": 1}, (1, 5, 4))],
)
def test_gradient_check(name, args, in_shape):
    layer = built(name, in_shape, **args)
    # continuous values: no ties, so the max is differentiable at x
    x = np.random.default_rng(1).standard_normal((2, *in_shape))
    errors = check_layer(layer, x, entries=None)
    assert set(errors) == {"x"}
    assert errors["x"] < TOLERANCE, errors


def test_gradient_check_catches_a_max_pool_routing_to_the_wrong_pixel(monkeypatch):
    """Negative control: sending each window's gradient to the next offset must fail (5x5:
    the windows leave a border, so the layer takes the argmax path)."""
    right = P.max_pool2d_forward

    def off_by_one(x, size, stride):
        out, argmax = right(x, size, stride)
        return out, (argmax + 1) % (size * size)

    monkeypatch.setattr(pooling, "max_pool2d_forward", off_by_one)
    layer = built("max_pool2d", (2, 5, 5))
    assert check_layer(layer, np.random.default_rng(0).standard_normal((2, 2, 5, 5)))["x"] > 0.1


@pytest.mark.parametrize("stage", ["rows", "columns"])
def test_gradient_check_catches_a_tiled_max_pool_routing_to_the_wrong_pixel(monkeypatch, stage):
    """Negative control for windows that tile the image: the wrong row or the wrong column
    of each window must fail."""
    right = P.max_pool2d_tiled_forward

    def off_by_one(x, size):
        out, rows, columns = right(x, size)
        if stage == "rows":
            return out, (rows + 1) % size, columns
        return out, rows, (columns + 1) % size

    monkeypatch.setattr(pooling, "max_pool2d_tiled_forward", off_by_one)
    layer = built("max_pool2d", (2, 4, 4))
    assert check_layer(layer, np.random.default_rng(0).standard_normal((2, 2, 4, 4)))["x"] > 0.1


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (64, 16, 28, 28)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_layer_tiled_path_equals_the_argmax_path(shape, dtype):
    """Where windows tile the image the layer keeps (rows, columns) offsets: its output and
    dx equal the argmax functions' bit for bit (signs of zeros included), ties everywhere."""
    rng = np.random.default_rng(0)
    x = rng.integers(-1, 2, size=shape).astype(dtype)
    layer = built("max_pool2d", shape[1:], dtype=dtype)
    out = layer.forward(x, training=True)
    assert layer.winners is not None and layer.argmax is None
    g = rng.standard_normal(out.shape).astype(dtype)
    dx = layer.backward(g)
    expected_out, argmax = P.max_pool2d_forward(x, 2)
    expected_dx = P.max_pool2d_backward(g, argmax, shape, 2)
    np.testing.assert_array_equal(out, expected_out)
    np.testing.assert_array_equal(dx, expected_dx)
    np.testing.assert_array_equal(np.signbit(dx), np.signbit(expected_dx))


def test_gradient_check_catches_an_avg_pool_without_the_division(monkeypatch):
    """Negative control: spreading dY without the 1/k² must fail."""
    monkeypatch.setattr(
        pooling,
        "avg_pool2d_backward",
        lambda g, shape, size, stride: np.repeat(np.repeat(g, size, 2), size, 3),
    )
    layer = built("avg_pool2d", (2, 4, 4))
    assert check_layer(layer, np.random.default_rng(0).standard_normal((2, 2, 4, 4)))["x"] > 0.1


@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("args", [{}, {"size": 3, "stride": 1}])
def test_float32_stays_float32(name, args):
    layer = built(name, (3, 8, 8), dtype=np.float32, **args)
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    out = layer.forward(x, training=True)
    assert out.dtype == np.float32
    assert layer.backward(np.ones_like(out)).dtype == np.float32


@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
def test_no_input_grad_returns_none(name):
    layer = built(name, (1, 4, 4))
    layer.input_grad = False
    out = layer.forward(np.ones((2, 1, 4, 4)), training=True)
    assert layer.backward(np.ones_like(out)) is None


@pytest.mark.parametrize(
    "args, in_shape, out_shape",
    [
        ({}, (16, 28, 28), (16, 14, 14)),
        ({}, (32, 14, 14), (32, 7, 7)),
        ({"size": 3}, (4, 7, 7), (4, 2, 2)),
        ({"size": 3, "stride": 2}, (4, 7, 8), (4, 3, 3)),
        ({"size": 2, "stride": 1}, (1, 5, 4), (1, 4, 3)),
    ],
)
@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
def test_output_shape(name, args, in_shape, out_shape):
    layer = built(name, in_shape, **args)
    assert layer.out_shape == out_shape
    assert layer.forward(np.zeros((3, *in_shape)), training=False).shape == (3, *out_shape)


@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("args", [{}, {"size": 3}, {"size": 3, "stride": 1}])
def test_config_round_trip(name, args):
    layer = LAYERS.build(name, args)
    config = layer.get_config()
    assert config == {"size": 2, "stride": None, **args}
    assert type(layer)(**config).get_config() == config


@pytest.mark.parametrize(
    "args, message",
    [
        ({"size": 0}, "'size' must be a positive int, got 0"),
        ({"size": 2, "stride": 0}, "'stride' must be a positive int, got 0"),
        ({"size": True}, "'size' must be a positive int, got True"),
    ],
)
@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
def test_rejects_bad_arguments(name, args, message):
    with pytest.raises(ConfigError, match=message):
        LAYERS.build(name, args)


@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
def test_build_errors(name):
    with pytest.raises(ConfigError, match="pool size 3x3 is larger than the input 2x2"):
        built(name, (4, 2, 2), size=3)
    with pytest.raises(ConfigError, match=rf"{name} expects an image input .* got \(10,\)"):
        built(name, (10,))


@pytest.mark.parametrize("count", [1, 2, 3, 4, 9, 300])  # 300: offsets past uint8
def test_first_max_of_is_the_first_argmax(count):
    """The maximum over equal-shaped views and the first view attaining it, on values with
    ties everywhere, in the smallest unsigned type that holds every offset."""
    rng = np.random.default_rng(count)
    views = [rng.integers(0, 3, size=(4, 5)).astype(np.float32) for _ in range(count)]
    out, index = P.first_max_of(views)
    np.testing.assert_array_equal(out, np.max(views, axis=0))
    np.testing.assert_array_equal(index, np.argmax(views, axis=0))
    assert index.dtype == (np.uint8 if count <= 256 else np.uint16)
