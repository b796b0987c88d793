"""Every function `npnet.functional` exports (the series' names), on hand-computed values.

Those with their own test files (activations, losses, conv, pooling) are checked briefly
here; the series' own functions, `normalize` and `gradient_descent`, thoroughly.
Inputs are chosen so the answers are exact: σ(ln 3) = 3/4, tanh(ln 2) = 3/5,
softmax(0, ln 2, ln 5) = (1, 2, 5)/8, ...
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import npnet.functional as F
from npnet.errors import ConfigError

LN2, LN3, LN5 = math.log(2.0), math.log(3.0), math.log(5.0)
PHI_1, DENSITY_1 = 0.8413447460685429, 0.24197072451914337  # Φ(1), φ(1) from a table
GRID = np.arange(9.0).reshape(1, 1, 3, 3)  # [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
IMAGE = np.arange(16.0).reshape(1, 1, 4, 4)
WINDOW_COUNTS = [[1, 2, 1], [2, 4, 2], [1, 2, 1]]  # 2x2 windows covering each pixel of 3x3


def a(*values):
    return np.array(values, dtype=np.float64)


# name -> (what npnet computes, the value worked out by hand)
CASES = {
    "normalize": lambda: (F.normalize(a(1, 2, 3, 4)), a(-3, -1, 1, 3) / math.sqrt(5)),
    "matrix_multiply": lambda: (
        F.matrix_multiply(a(1, 2, 3, 4).reshape(2, 2), a(5, 6).reshape(2, 1)),
        [[17], [39]],
    ),
    "linear": lambda: (
        F.linear(a(1, 2).reshape(1, 2), a(1, 2, 3, 4).reshape(2, 2), a(1, -1)),
        [[8, 9]],
    ),
    "linear_backward": lambda: (
        F.linear_backward(
            a(1, 1).reshape(1, 2), a(1, 2).reshape(1, 2), a(1, 2, 3, 4).reshape(2, 2)
        ),
        ([[3, 7]], [[1, 1], [2, 2]], [1, 1]),
    ),
    "identity": lambda: (F.identity(np.array([1, -2])), a(1, -2)),
    "sigmoid": lambda: (F.sigmoid(a(-LN3, 0, LN3)), a(1 / 4, 1 / 2, 3 / 4)),
    "sigmoid_derivative": lambda: (F.sigmoid_derivative(a(0, LN3)), a(1 / 4, 3 / 16)),
    "sigmoid_derivative_from_output": lambda: (
        F.sigmoid_derivative_from_output(a(0.75)),
        a(3 / 16),
    ),
    "tanh": lambda: (F.tanh(a(LN2)), a(3 / 5)),
    "tanh_derivative": lambda: (F.tanh_derivative(a(LN2)), a(16 / 25)),
    "tanh_derivative_from_output": lambda: (F.tanh_derivative_from_output(a(0.6)), a(0.64)),
    "relu": lambda: (F.relu(a(-2, 0, 3)), a(0, 0, 3)),
    "relu_derivative": lambda: (F.relu_derivative(a(-2, 0, 3)), a(0, 0, 1)),
    "leaky_relu": lambda: (F.leaky_relu(a(-2, 3), 0.1), a(-0.2, 3)),
    "leaky_relu_derivative": lambda: (F.leaky_relu_derivative(a(-2, 3), 0.1), a(0.1, 1)),
    "elu": lambda: (F.elu(a(-LN2, 2)), a(-1 / 2, 2)),
    "elu_derivative": lambda: (F.elu_derivative(a(-LN2, 2)), a(1 / 2, 1)),
    "gelu": lambda: (F.gelu(a(0, 1)), a(0, PHI_1)),
    "gelu_derivative": lambda: (F.gelu_derivative(a(1)), a(PHI_1 + DENSITY_1)),
    "softmax": lambda: (F.softmax(a(0, LN2, LN5)), a(1, 2, 5) / 8),
    "log_softmax": lambda: (F.log_softmax(a(0, LN2, LN5)), np.log(a(1, 2, 5) / 8)),
    # s = (1, 2, 5)/8, g = (1, 0, 0): dz = s ⊙ (g − g·s) = s ⊙ (7/8, −1/8, −1/8)
    "softmax_backward": lambda: (
        F.softmax_backward(a(1, 0, 0), a(1, 2, 5) / 8),
        a(7, -2, -5) / 64,
    ),
    "mse_loss": lambda: (F.mse_loss(a(1, 2, 3), a(1, 2, 6)), 3.0),
    "mse_loss_gradient": lambda: (F.mse_loss_gradient(a(1, 2, 3), a(1, 2, 6)), a(0, 0, -2)),
    "mae_loss": lambda: (F.mae_loss(a(1, -1), a(0, 1)), 1.5),
    "mae_loss_gradient": lambda: (F.mae_loss_gradient(a(1, -1), a(0, 1)), a(0.5, -0.5)),
    # d = (−0.5, 3), δ = 1: ½·0.25 and 1·(3 − ½), averaged
    "huber_loss": lambda: (F.huber_loss(a(0, 3), a(0.5, 0)), (0.125 + 2.5) / 2),
    "huber_loss_gradient": lambda: (F.huber_loss_gradient(a(0, 3), a(0.5, 0)), a(-0.25, 0.5)),
    "binary_cross_entropy": lambda: (F.binary_cross_entropy(a(LN3), a(1)), math.log(4 / 3)),
    "binary_cross_entropy_gradient": lambda: (
        F.binary_cross_entropy_gradient(a(LN3, 0), a(1, 0)),
        a(-1 / 8, 1 / 4),
    ),
    "cross_entropy": lambda: (
        F.cross_entropy(a(0, LN2, LN5).reshape(1, 3), np.array([2])),
        math.log(8 / 5),
    ),
    "cross_entropy_gradient": lambda: (
        F.cross_entropy_gradient(a(0, LN2, LN5).reshape(1, 3), np.array([2])),
        [[1 / 8, 1 / 4, -3 / 8]],
    ),
    # scores 0 everywhere, margin 1: two violated classes, each 1, over N·C = 3
    "hinge_loss": lambda: (F.hinge_loss(np.zeros((1, 3)), np.array([0])), 2 / 3),
    "hinge_loss_gradient": lambda: (
        F.hinge_loss_gradient(np.zeros((1, 3)), np.array([0])),
        [[-2 / 3, 1 / 3, 1 / 3]],
    ),
    "numerical_gradient": lambda: (
        F.numerical_gradient(lambda: float(np.sum(X_SQUARED**2)), X_SQUARED),
        a(2, 4),
    ),
    "relative_error": lambda: (F.relative_error(a(1, 2), a(1, 2.5)), 0.5 / 2.5),
    "im2col": lambda: (
        F.im2col(GRID, (2, 2), (1, 1), ((0, 0), (0, 0)))[0],  # the one image's columns
        [[0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7], [4, 5, 7, 8]],
    ),
    "col2im": lambda: (
        F.col2im(np.ones((4, 4)), (1, 1, 3, 3), (2, 2), (1, 1), ((0, 0), (0, 0)))[0, 0],
        WINDOW_COUNTS,
    ),
    # each output is the sum of a 2x2 window plus the bias 1
    "conv2d": lambda: (F.conv2d(GRID, np.ones((1, 1, 2, 2)), a(1))[0, 0], [[9, 13], [21, 25]]),
    "conv2d_forward": lambda: (
        F.conv2d_forward(GRID, np.ones((1, 1, 2, 2)))[0][0, 0],
        [[8, 12], [20, 24]],
    ),
    "conv2d_backward": lambda: conv_backward_case(),
    "max_pool2d": lambda: (F.max_pool2d(IMAGE)[0, 0], [[5, 7], [13, 15]]),
    "max_pool2d_forward": lambda: (F.max_pool2d_forward(IMAGE)[1][0, 0], [[3, 3], [3, 3]]),
    "max_pool2d_backward": lambda: (
        F.max_pool2d_backward(np.ones((1, 1, 2, 2)), F.max_pool2d_forward(IMAGE)[1], IMAGE.shape)[
            0, 0
        ],
        [[0, 0, 0, 0], [0, 1, 0, 1], [0, 0, 0, 0], [0, 1, 0, 1]],
    ),
    "avg_pool2d": lambda: (F.avg_pool2d(IMAGE)[0, 0], [[2.5, 4.5], [10.5, 12.5]]),
    "avg_pool2d_backward": lambda: (
        F.avg_pool2d_backward(np.ones((1, 1, 2, 2)), IMAGE.shape),
        np.full(IMAGE.shape, 0.25),
    ),
    "l2_penalty": lambda: (F.l2_penalty([a(1, 2), a(3).reshape(1, 1)], 0.1), 0.7),
    "l2_penalty_gradient": lambda: (F.l2_penalty_gradient(a(1, -2), 0.1), a(0.1, -0.2)),
    # x = (1, 1, 3, 3): μ = 2, σ² = 1, x̂ = (−1, −1, 1, 1); γ = 2, β = 1 (ε = 0 for exact values)
    "batch_norm_forward": lambda: (
        F.batch_norm_forward(BN_X, a(2), a(1), 0.0)[0],
        [[-1], [-1], [3], [3]],
    ),
    "batch_norm_backward": lambda: batch_norm_backward_case(),
    # fixed μ = 2, σ² = 4: y = 2·(x − 2)/2 + 1 = x − 1
    "batch_norm_inference": lambda: (
        F.batch_norm_inference(a(1, 3).reshape(2, 1), a(2), a(1), a(2), a(4), 0.0)[0],
        [[0], [2]],
    ),
    "dropout": lambda: (F.dropout(a(1, 2), 0.0, np.random.default_rng(0)), (a(1, 2), None)),
    # one full-batch step from 0 on y = 2x (worked out in test_gradient_descent_one_step)
    "gradient_descent": lambda: (
        F.gradient_descent(
            a(1, 2).reshape(2, 1), a(2, 4).reshape(2, 1), a(0).reshape(1, 1), a(0), 0.1, 1
        ),
        ([[1.0]], [0.6], [10.0]),
    ),
}
X_SQUARED = a(1, 2)


BN_X = a(1, 1, 3, 3).reshape(4, 1)


def batch_norm_backward_case():
    """g = (1, 0, 0, 0): dβ = 1, dγ = Σ g·x̂ = −1, and
    dx = γ/σ · (g − dβ/m − x̂·dγ/m) = 2·((1, 0, 0, 0) − 1/4 + x̂/4) = (1, −1, 0, 0)."""
    _, cache = F.batch_norm_forward(BN_X, a(2), a(1), 0.0)
    dx, d_gamma, d_beta = F.batch_norm_backward(a(1, 0, 0, 0).reshape(4, 1), cache, a(2))
    return (dx, d_gamma, d_beta), ([[1], [-1], [0], [0]], [-1], [1])


def conv_backward_case():
    out, cols = F.conv2d_forward(GRID, np.ones((1, 1, 2, 2)))
    dx, dW, db = F.conv2d_backward(np.ones_like(out), cols, np.ones((1, 1, 2, 2)), GRID.shape)
    # dW[p, q] = Σ over windows of the pixel at offset (p, q); dx counts the windows per pixel
    return (dx[0, 0], dW[0, 0], db), (WINDOW_COUNTS, [[8, 12], [20, 24]], [4])


def assert_same(ours, expected):
    if isinstance(expected, tuple):
        assert isinstance(ours, tuple) and len(ours) == len(expected)
        for o, e in zip(ours, expected, strict=True):
            assert_same(o, e)
    elif expected is None:
        assert ours is None
    else:
        np.testing.assert_allclose(ours, expected, rtol=1e-7, atol=1e-12)


def test_every_exported_function_has_a_hand_computed_case():
    assert sorted(CASES) == sorted(F.__all__)
    assert all(callable(getattr(F, name)) for name in F.__all__)


@pytest.mark.parametrize("name", sorted(CASES))
def test_function_matches_hand_computed_value(name):
    ours, expected = CASES[name]()
    assert_same(ours, expected)


# --- normalize ---------------------------------------------------------------------------


def test_normalize_gives_mean_zero_and_std_one_whatever_the_scale():
    x = np.random.default_rng(0).normal(40.0, 7.0, size=(50, 3))
    out = F.normalize(x)
    assert out.shape == x.shape
    assert abs(out.mean()) < 1e-12 and abs(out.std() - 1.0) < 1e-12


def test_normalize_per_column_leaves_a_constant_column_centred_not_nan():
    x = np.array([[0.0, 2.0], [4.0, 2.0]])
    np.testing.assert_array_equal(F.normalize(x, axis=0), [[-1.0, 0.0], [1.0, 0.0]])
    # one scalar mean (2) and std (√2) over all four values instead
    r2 = math.sqrt(2.0)
    np.testing.assert_allclose(F.normalize(x), [[-r2, 0.0], [r2, 0.0]])


def test_normalize_dtypes_and_input_untouched():
    ints = np.array([0, 255])
    np.testing.assert_array_equal(F.normalize(ints), [-1.0, 1.0])
    assert F.normalize(ints).dtype == np.float64
    x32 = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    assert F.normalize(x32).dtype == np.float32
    np.testing.assert_array_equal(x32, [1.0, 2.0, 3.0])


# --- gradient_descent ----------------------------------------------------------------------


def test_gradient_descent_one_step_by_hand():
    # X = [1, 2], y = [2, 4], W = b = 0: ŷ = 0, L = (4 + 16)/2 = 10, G = 2(ŷ − y)/2 = (−2, −4),
    # dW = Xᵀ G = −10, db = −6; with lr 0.1: W = 1, b = 0.6.
    X, y = a(1, 2).reshape(2, 1), a(2, 4).reshape(2, 1)
    W0, b0 = np.zeros((1, 1)), np.zeros(1)
    W, b, losses = F.gradient_descent(X, y, W0, b0, lr=0.1, epochs=1)
    assert_same((W, b, losses), ([[1.0]], [0.6], [10.0]))
    assert W0[0, 0] == 0.0 and b0[0] == 0.0  # the inputs are not modified


def test_mini_batch_of_one_steps_sample_by_sample():
    # Without an rng the samples come in order. Step 1 on (1, 2): G = 2(0 − 2) = −4, so
    # W = b = 0.4 (loss 4). Step 2 on (2, 4): ŷ = 1.2, G = −5.6, dW = −11.2, db = −5.6, so
    # W = 1.52, b = 0.96 (loss 2.8² = 7.84).
    X, y = a(1, 2).reshape(2, 1), a(2, 4).reshape(2, 1)
    W, b, losses = F.gradient_descent(X, y, np.zeros((1, 1)), np.zeros(1), 0.1, 1, batch_size=1)
    assert_same((W, b, losses), ([[1.52]], [0.96], [4.0, 7.84]))


@pytest.mark.parametrize("batch_size", [None, 7, 1000])
def test_gradient_descent_recovers_known_weights(batch_size):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 3))
    w_true, b_true = np.array([[1.5], [-2.0], [0.5]]), 0.75
    y = X @ w_true + b_true  # no noise: the minimum is exactly the truth
    W, b, losses = F.gradient_descent(
        X, y, np.zeros((3, 1)), np.zeros(1), 0.1, 200, batch_size, np.random.default_rng(1)
    )
    np.testing.assert_allclose(W, w_true, atol=1e-8)
    np.testing.assert_allclose(b, [b_true], atol=1e-8)
    assert len(losses) == 200 * (1 if batch_size in (None, 1000) else math.ceil(100 / 7))
    assert losses[-1] < 1e-15 < losses[0]


def test_full_batch_is_batch_size_n_and_ignores_the_rng():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((20, 2)), rng.standard_normal((20, 1))
    start = (np.zeros((2, 1)), np.zeros(1))
    full = F.gradient_descent(X, y, *start, 0.05, 5)
    same = F.gradient_descent(X, y, *start, 0.05, 5, 20, np.random.default_rng(3))
    assert_same(full, same)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5])
def test_gradient_descent_rejects_a_bad_batch_size(batch_size):
    with pytest.raises(ConfigError, match="'batch_size' must be a positive int"):
        F.gradient_descent(
            np.ones((2, 1)), np.ones((2, 1)), np.zeros((1, 1)), np.zeros(1), 0.1, 1, batch_size
        )


def test_dropout_zeroes_and_rescales():
    out, mask = F.dropout(np.ones(1000), 0.5, np.random.default_rng(0))
    assert set(np.unique(mask)) == {0.0, 2.0}
    np.testing.assert_array_equal(out, mask)
    assert 400 < np.count_nonzero(out) < 600
