"""A first conv and its max-pool as one pass: the plain loops' numbers (ties to the first
maximum included), numerical gradients, evaluation in chunks, and when the network merges."""

from __future__ import annotations

import numpy as np
import pytest

from npnet.functional import conv as C
from npnet.functional import reference as R
from npnet.functional.conv import conv2d_forward
from npnet.functional.conv_columns import im2col_by_window
from npnet.functional.conv_pool import conv2d_max_pool2d_backward, conv2d_max_pool2d_forward
from npnet.functional.numerical import numerical_gradient
from npnet.functional.pooling import max_pool2d_forward
from npnet.nn.conv_pool import ConvMaxPool
from npnet.nn.network import Network, pool_before_relu
from npnet.registry import LOSSES
from npnet.tools.gradcheck import TOLERANCE, check_network

# (N, C, H, W), (F, kh, kw), stride, padding, window
CASES = [
    ((3, 1, 8, 8), (4, 3, 3), (1, 1), ((1, 1), (1, 1)), 2),
    ((2, 2, 9, 7), (3, 2, 3), (1, 1), ((0, 1), (1, 0)), 2),  # 8x6 and 9x5 outputs, odd ones dropped
    ((2, 1, 11, 11), (5, 3, 3), (2, 2), ((1, 1), (1, 1)), 3),  # stride 2, 3x3 windows
    ((1, 3, 6, 6), (2, 1, 1), (1, 1), ((0, 0), (0, 0)), 2),  # 1x1 kernel, three channels
]


def case_arrays(shape, filters, rng, integers=False):
    c = shape[1]
    f, kh, kw = filters
    if integers:  # small integers: sums exact, windows full of equal values
        return (
            rng.integers(0, 2, shape).astype(np.float64),
            rng.integers(-1, 2, (f, c, kh, kw)).astype(np.float64),
            rng.integers(0, 2, f).astype(np.float64),
        )
    return rng.standard_normal(shape), rng.standard_normal((f, c, kh, kw)), rng.standard_normal(f)


def reference_pass(x, W, b, stride, padding, window, grad_out):
    """The plain loops: conv, then pool, then back through both."""
    y = R.conv2d(x, W, b, stride, padding)
    pooled, _ = R.max_pool2d(y, window, window)
    dy = np.zeros_like(y)
    oh, ow = pooled.shape[2:]
    dy[:, :, : oh * window, : ow * window] = R.max_pool2d_backward(
        grad_out, y[:, :, : oh * window, : ow * window], window, window
    )
    _, dW, db = R.conv2d_backward(dy, x, W, stride, padding)
    return pooled, dW, db


def tied_windows(y, k):
    """The share of the k×k windows of y whose maximum is there more than once."""
    n, f, h, w = y.shape
    windows = y[:, :, : h // k * k, : w // k * k].reshape(n, f, h // k, k, w // k, k)
    top = windows.max(axis=(3, 5), keepdims=True)
    return float(np.mean((windows == top).sum(axis=(3, 5)) > 1))


@pytest.mark.parametrize("integers", [False, True], ids=["random", "ties"])
@pytest.mark.parametrize("shape, filters, stride, padding, window", CASES)
def test_matches_the_plain_loops(shape, filters, stride, padding, window, integers):
    rng = np.random.default_rng(0)
    x, W, b = case_arrays(shape, filters, rng, integers)
    out, (cols, winner) = conv2d_max_pool2d_forward(x, W, b, stride, padding, window)
    g = rng.standard_normal(out.shape)
    expected, dW_ref, db_ref = reference_pass(x, W, b, stride, padding, window, g)
    dW, db = conv2d_max_pool2d_backward(g, cols, winner, W.shape)
    if integers:
        # Exact sums: the ties went to the same (first) pixel of each window as in the loops.
        assert np.array_equal(out, expected)
        assert tied_windows(R.conv2d(x, W, b, stride, padding), window) > 0.2
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dW, dW_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(db, db_ref, rtol=1e-10, atol=1e-10)


def test_ties_go_to_the_first_maximum_by_hand():
    # One 2x2 window, all four outputs equal (the bias alone): dW gets the top-left pixel.
    x = np.array([[[[0.0, 0.0], [0.0, 0.0]]]])
    x_left = x.copy()
    x_left[0, 0, 0, 0] = 5.0  # with W = 0 every output is still b
    W = np.zeros((1, 1, 1, 1))
    none = ((0, 0), (0, 0))
    out, saved = conv2d_max_pool2d_forward(x_left, W, np.array([2.0]), (1, 1), none, 2)
    assert out.item() == 2.0 and saved[1].item() == 0
    dW, db = conv2d_max_pool2d_backward(np.array([[[[3.0]]]]), *saved, W.shape)
    assert dW.item() == 15.0 and db.item() == 3.0  # 3 · x[0, 0] = 3 · 5; db = 3
    x_right = x.copy()
    x_right[0, 0, 1, 1] = 5.0  # the last pixel: not the first maximum, gets nothing
    _, saved = conv2d_max_pool2d_forward(x_right, W, np.array([2.0]), (1, 1), none, 2)
    dW, _ = conv2d_max_pool2d_backward(np.array([[[[3.0]]]]), *saved, W.shape)
    assert dW.item() == 0.0


def test_gradients_are_the_numerical_ones():
    rng = np.random.default_rng(1)
    x, W, b = case_arrays((2, 2, 6, 6), (3, 3, 3), rng)
    stride, padding = (1, 1), ((1, 1), (1, 1))
    out, saved = conv2d_max_pool2d_forward(x, W, b, stride, padding, 2)
    g = rng.standard_normal(out.shape)
    dW, db = conv2d_max_pool2d_backward(g, *saved, W.shape)

    def loss():
        return float(np.sum(conv2d_max_pool2d_forward(x, W, b, stride, padding, 2)[0] * g))

    np.testing.assert_allclose(dW, numerical_gradient(loss, W), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db, numerical_gradient(loss, b), rtol=1e-6, atol=1e-8)
    assert not np.allclose(dW, numerical_gradient(loss, W) * 1.01)  # a 1 % error would show


def test_without_bias():
    rng = np.random.default_rng(2)
    x, W, _ = case_arrays((2, 1, 8, 8), (4, 3, 3), rng)
    same = ((1, 1), (1, 1))
    out, saved = conv2d_max_pool2d_forward(x, W, None, (1, 1), same, 2)
    g = rng.standard_normal(out.shape)
    expected, dW_ref, _ = reference_pass(x, W, None, (1, 1), same, 2, g)
    dW, _ = conv2d_max_pool2d_backward(g, *saved, W.shape)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    np.testing.assert_allclose(dW, dW_ref, rtol=1e-10)


def test_float32_outputs_are_the_conv_then_pool_numbers():
    # The MNIST CNN's first conv and pool: the same sums as the two fast passes apart, the
    # same winners. Equal to the last bit only where OpenBLAS rounds a column alike wherever
    # it stands in the product: on an AMD Zen 5 with its AVX2 kernels 1 % of them differ by
    # an ulp (the columns come in window order here, in pixel order apart).
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 1, 28, 28)).astype(np.float32)
    x[:3] = 0  # blank images: every window a tie
    W = rng.standard_normal((16, 1, 3, 3)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    out, (_, winner) = conv2d_max_pool2d_forward(x, W, b, (1, 1), ((1, 1), (1, 1)), 2)
    y, _ = conv2d_forward(x, W, b, 1, 1)
    expected, argmax = max_pool2d_forward(y, 2)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    assert np.array_equal(out[:3], expected[:3])  # blank images: b alone, no product to round
    assert np.array_equal(winner.reshape(argmax.shape), argmax)


def test_window_ordered_columns():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 2, 7, 6))  # a 7x6 output: its last row past the windows
    cols = im2col_by_window(x, (3, 3), (1, 1), ((1, 1), (1, 1)), 2)
    standard = R.im2col(x, (3, 3), (1, 1), ((1, 1), (1, 1))).reshape(2, 18, 7, 6)[:, :, :6]
    # (n, row, (i', a), (j', b)) -> (n, row, a, b, i', j')
    reordered = standard.reshape(2, 18, 3, 2, 3, 2).transpose(0, 1, 3, 5, 2, 4).reshape(2, 18, -1)
    assert np.array_equal(cols, reordered)


def test_evaluation_goes_in_chunks_with_the_same_numbers(monkeypatch):
    rng = np.random.default_rng(5)
    x, W, b = case_arrays((7, 1, 8, 8), (4, 3, 3), rng)
    whole, _ = conv2d_max_pool2d_forward(x, W, b, (1, 1), ((1, 1), (1, 1)), 2)
    monkeypatch.setattr(C, "CHUNK_BYTES", 1)  # one image per chunk
    chunked, saved = conv2d_max_pool2d_forward(x, W, b, (1, 1), ((1, 1), (1, 1)), 2, keep=False)
    assert saved is None and np.array_equal(chunked, whole)


def network(layers, input_shape=(1, 12, 12), dtype=np.float64):
    specs = [layer if isinstance(layer, dict) else {layer: {}} for layer in layers]
    return Network.from_specs(specs, input_shape, np.random.default_rng(0), dtype)


CNN = [
    {"conv2d": {"filters": 16, "kernel": 3, "padding": 1}},
    "relu",
    {"max_pool2d": {"size": 2}},
    {"conv2d": {"filters": 32, "kernel": 3, "padding": 1}},
    "relu",
    {"max_pool2d": {"size": 2}},
    "flatten",
    {"dense": {"units": 10}},
]


def test_the_network_merges_only_a_first_conv_with_more_filters_than_rows():
    net = network(CNN)
    assert [type(step).__name__ for step in net.run_order] == [
        "ConvMaxPool", "ReLU", "Conv2D", "MaxPool2D", "ReLU", "Flatten", "Dense"
    ]  # fmt: skip
    assert net.run_order[0].layers == (net.layers[0], net.layers[2])
    # The summary keeps its rows, the ReLU still marked as run after the pool.
    assert [row["runs"] for row in net.summary()[:3]] == [None, "after 2", "before 1"]
    head = ["flatten", {"dense": {"units": 2}}]
    lenet_like = network([{"conv2d": {"filters": 6, "kernel": 5, "padding": 2}}, "relu",
                          {"max_pool2d": {"size": 2}}, *head])  # fmt: skip
    assert not any(isinstance(step, ConvMaxPool) for step in lenet_like.run_order)  # 6 < 25
    overlapping = network([{"conv2d": {"filters": 16, "kernel": 3}},
                           {"max_pool2d": {"size": 3, "stride": 2}}, *head])  # fmt: skip
    assert not any(isinstance(step, ConvMaxPool) for step in overlapping.run_order)
    # Windows side by side that do not fill the conv's 11x11 output: merged, the rest dropped.
    ragged = network([{"conv2d": {"filters": 16, "kernel": 2}}, {"max_pool2d": {"size": 2}}, *head])
    assert isinstance(ragged.run_order[0], ConvMaxPool)


def test_merged_and_apart_give_the_same_outputs_and_gradients():
    rng = np.random.default_rng(6)
    net = network(CNN, dtype=np.float32)
    x = rng.standard_normal((6, 1, 12, 12)).astype(np.float32)
    x[:2] = 0
    g = rng.standard_normal((6, 10)).astype(np.float32)
    results = []
    for order in (net.run_order, pool_before_relu(net.layers)):
        net.run_order = order
        out = net.forward(x, training=True)
        net.backward(g)
        results.append((out, {k: v.copy() for k, v in net.gradients().items()}, net.forward(x)))
    (out, grads, evaluated), (out_apart, grads_apart, evaluated_apart) = results
    # The same sums (to the last bit where OpenBLAS rounds a column alike wherever it stands:
    # see test_float32_outputs_are_the_conv_then_pool_numbers).
    np.testing.assert_allclose(out, out_apart, rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(evaluated, evaluated_apart, rtol=2e-6, atol=1e-6)
    for key in grads:  # the first conv's the same sums in another order, the others the same
        np.testing.assert_allclose(grads[key], grads_apart[key], rtol=2e-5, atol=1e-6)


def test_an_input_gradient_runs_the_layers_apart():
    net = network(CNN)
    net.layers[0].input_grad = True  # as the gradient check does
    x = np.random.default_rng(7).standard_normal((2, 1, 12, 12))
    out = net.forward(x, training=True)
    dx = net.backward(np.ones_like(out))
    assert dx.shape == x.shape and net.run_order[0].saved is None
    rng = np.random.default_rng(8)
    rows = check_network(network(CNN), LOSSES.build("softmax_cross_entropy", {}),
                         rng.standard_normal((2, 1, 12, 12)), np.array([3, 7]))  # fmt: skip
    assert max(row["error"] for row in rows) < TOLERANCE


def test_the_merged_network_gradient_is_the_numerical_one():
    net = network(CNN)
    loss = LOSSES.build("softmax_cross_entropy", {})
    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((3, 1, 12, 12)), np.array([1, 4, 9])
    loss.forward(net.forward(x, training=True), y)
    net.backward(loss.backward())
    assert net.run_order[0].saved is not None  # the merged pass ran
    W, b = net.layers[0].params["W"], net.layers[0].params["b"]
    dW, db = net.layers[0].grads["W"].copy(), net.layers[0].grads["b"].copy()

    def value():
        return loss.forward(net.forward(x, training=True), y)

    np.testing.assert_allclose(dW, numerical_gradient(value, W), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(db, numerical_gradient(value, b), rtol=1e-5, atol=1e-9)
