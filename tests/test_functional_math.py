"""Hand-computed values for every function in npnet.functional.{activations,losses,regularization}.

The inputs are chosen so the answers are exact fractions: σ(ln 3) = 3/4, tanh(ln 2) = 3/5,
softmax(0, ln 2, ln 5) = (1, 2, 5)/8, ...
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from npnet.functional import activations as A
from npnet.functional import losses as L
from npnet.functional import regularization as R

LN2, LN3 = math.log(2.0), math.log(3.0)
PHI_1 = 0.8413447460685429  # Φ(1), the standard normal CDF at 1, from a table
DENSITY_1 = 0.24197072451914337  # φ(1) = e^(-1/2) / √(2π)


def close(ours, expected, rtol=1e-12, atol=1e-15):
    np.testing.assert_allclose(ours, expected, rtol=rtol, atol=atol)


# --- activations -------------------------------------------------------------------------


def test_sigmoid_values_and_derivative():
    z = np.array([-LN3, 0.0, LN3])
    close(A.sigmoid(z), [1 / 4, 1 / 2, 3 / 4])
    close(A.sigmoid_derivative(z), [3 / 16, 1 / 4, 3 / 16])
    close(A.sigmoid_derivative_from_output(np.array([0.5, 0.75])), [0.25, 0.1875])


def test_sigmoid_is_stable_and_keeps_tiny_values_precise():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow warning would fail the test
        out = A.sigmoid(np.array([-1000.0, -50.0, 50.0, 1000.0]))
    assert out[0] == 0.0 and out[3] == 1.0
    # e^-50 / (1 + e^-50): relative precision, not merely "close to 0"
    close(out[1], math.exp(-50) / (1 + math.exp(-50)), rtol=1e-14, atol=0)
    close(out[2], 1 / (1 + math.exp(-50)))


def test_tanh_values_and_derivative():
    z = np.array([-LN2, 0.0, LN2])
    close(A.tanh(z), [-3 / 5, 0.0, 3 / 5])
    close(A.tanh_derivative(z), [16 / 25, 1.0, 16 / 25])
    close(A.tanh_derivative_from_output(np.array([0.6])), [0.64])


def test_relu_values_and_derivative():
    z = np.array([-2.0, 0.0, 3.0])
    close(A.relu(z), [0.0, 0.0, 3.0])
    close(A.relu_derivative(z), [0.0, 0.0, 1.0])


def test_leaky_relu_values_and_derivative():
    z = np.array([-2.0, 0.0, 3.0])
    close(A.leaky_relu(z, 0.1), [-0.2, 0.0, 3.0])
    close(A.leaky_relu_derivative(z, 0.1), [0.1, 0.1, 1.0])
    close(A.leaky_relu(z), [-0.02, 0.0, 3.0])  # default slope 0.01


def test_elu_values_and_derivative():
    z = np.array([-LN2, 0.0, 3.0])
    close(A.elu(z, alpha=2.0), [2 * (1 / 2 - 1), 0.0, 3.0])
    close(A.elu_derivative(z, alpha=2.0), [2 * (1 / 2), 2.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        close(A.elu(np.array([-1000.0, 1000.0])), [-1.0, 1000.0])


def test_gelu_values_and_derivative():
    z = np.array([-1.0, 0.0, 1.0])
    close(A.gelu(z), [-(1 - PHI_1), 0.0, PHI_1])
    close(A.gelu_derivative(z), [(1 - PHI_1) - DENSITY_1, 0.5, PHI_1 + DENSITY_1])


def test_identity():
    close(A.identity(np.array([-1.5, 2.0])), [-1.5, 2.0])


def test_softmax_and_log_softmax_values():
    z = np.array([[0.0, LN2, math.log(5.0)]])
    close(A.softmax(z), [[1 / 8, 2 / 8, 5 / 8]])
    close(A.log_softmax(z), [[math.log(1 / 8), math.log(2 / 8), math.log(5 / 8)]])
    # A shift does not change the result, and ±1000 neither overflows nor takes log(0).
    close(A.softmax(z + 1000.0), [[1 / 8, 2 / 8, 5 / 8]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        close(A.log_softmax(np.array([[1000.0, -1000.0]])), [[0.0, -2000.0]])


def test_softmax_is_over_the_last_axis():
    z = np.zeros((2, 3, 4))
    close(A.softmax(z), np.full((2, 3, 4), 1 / 4))


def test_softmax_backward_is_the_full_jacobian_product():
    s = A.softmax(np.array([[0.0, LN3]]))  # [1/4, 3/4]
    # J = diag(s) − s sᵀ = [[3/16, −3/16], [−3/16, 3/16]]; J g for g = [1, 0]
    close(A.softmax_backward(np.array([[1.0, 0.0]]), s), [[3 / 16, -3 / 16]])


FLOAT32_FUNCTIONS = [
    A.identity,
    A.sigmoid,
    A.sigmoid_derivative,
    A.tanh,
    A.tanh_derivative,
    A.relu,
    A.relu_derivative,
    A.leaky_relu,
    A.leaky_relu_derivative,
    A.elu,
    A.elu_derivative,
    A.gelu,
    A.gelu_derivative,
    A.softmax,
    A.log_softmax,
]


@pytest.mark.parametrize("f", FLOAT32_FUNCTIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations_keep_the_dtype(f, dtype):
    z = np.linspace(-3, 3, 12, dtype=dtype).reshape(3, 4)
    out = f(z)
    assert out.dtype == dtype and out.shape == (3, 4)


def test_softmax_backward_keeps_float32():
    s = A.softmax(np.ones((2, 3), dtype=np.float32))
    assert A.softmax_backward(np.ones((2, 3), dtype=np.float32), s).dtype == np.float32


# --- losses ------------------------------------------------------------------------------


def test_mse_loss_and_gradient():
    pred, target = np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]])
    assert L.mse_loss(pred, target) == pytest.approx((1 + 4) / 2)
    close(L.mse_loss_gradient(pred, target), [[1.0, 2.0]])  # 2·d / n with n = 2


def test_mae_loss_and_gradient():
    pred, target = np.array([1.0, -2.0, 5.0]), np.array([0.0, 0.0, 5.0])
    assert L.mae_loss(pred, target) == pytest.approx(3 / 3)
    close(L.mae_loss_gradient(pred, target), [1 / 3, -1 / 3, 0.0])


def test_huber_loss_and_gradient():
    pred, target = np.array([0.5, 3.0]), np.array([0.0, 0.0])
    # ½·0.5² = 0.125 inside; 1·(3 − ½) = 2.5 outside; mean of the two
    assert L.huber_loss(pred, target, delta=1.0) == pytest.approx((0.125 + 2.5) / 2)
    close(L.huber_loss_gradient(pred, target, delta=1.0), [0.5 / 2, 1.0 / 2])
    # δ = 2: both inside the quadratic zone except 3 → 2·(3 − 1) = 4
    assert L.huber_loss(pred, target, delta=2.0) == pytest.approx((0.125 + 4.0) / 2)


def test_binary_cross_entropy_on_logits():
    logits, target = np.array([LN3, LN3]), np.array([1.0, 0.0])
    # σ(ln 3) = 3/4: −log(3/4) for y = 1, −log(1/4) for y = 0
    expected = (math.log(4 / 3) + math.log(4.0)) / 2
    assert L.binary_cross_entropy(logits, target) == pytest.approx(expected, rel=1e-14)
    close(L.binary_cross_entropy_gradient(logits, target), [(3 / 4 - 1) / 2, (3 / 4) / 2])
    assert L.binary_cross_entropy(np.array([0.0]), np.array([1.0])) == pytest.approx(LN2)


def test_binary_cross_entropy_is_stable_for_huge_logits():
    logits, target = np.array([1000.0, -1000.0, 1000.0]), np.array([1.0, 0.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = L.binary_cross_entropy(logits, target)
        grad = L.binary_cross_entropy_gradient(logits, target)
    assert value == pytest.approx(1000 / 3)  # only the confidently wrong third costs
    close(grad, [0.0, 0.0, 1 / 3])


def test_cross_entropy_and_gradient():
    logits, labels = np.array([[0.0, LN3], [0.0, LN3]]), np.array([1, 0])
    # softmax rows are [1/4, 3/4]
    expected = (math.log(4 / 3) + math.log(4.0)) / 2
    assert L.cross_entropy(logits, labels) == pytest.approx(expected, rel=1e-14)
    close(L.cross_entropy_gradient(logits, labels), [[1 / 8, -1 / 8], [-3 / 8, 3 / 8]])


def test_cross_entropy_with_label_smoothing():
    # ε = 0.5, C = 2, label 1: q = [1/4, 3/4], which is exactly softmax([0, ln 3])
    logits, labels = np.array([[0.0, LN3]]), np.array([1])
    value = L.cross_entropy(logits, labels, label_smoothing=0.5)
    assert value == pytest.approx(0.25 * math.log(4.0) + 0.75 * math.log(4 / 3), rel=1e-14)
    close(L.cross_entropy_gradient(logits, labels, label_smoothing=0.5), [[0.0, 0.0]])


def test_cross_entropy_is_stable_for_huge_logits():
    logits, labels = np.array([[1000.0, -1000.0], [1000.0, -1000.0]]), np.array([0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert L.cross_entropy(logits, labels) == pytest.approx(1000.0)  # (0 + 2000) / 2
        close(L.cross_entropy_gradient(logits, labels), [[0.0, 0.0], [0.5, -0.5]])


def test_hinge_loss_and_gradient():
    scores = np.array([[1.0, 2.0, 0.5], [3.0, 0.0, 1.0]])
    labels = np.array([0, 0])
    # row 0: max(0, 1 − 1 + 2) + max(0, 1 − 1 + 0.5) = 2.5; row 1: every margin met, 0.
    # mean over N = 2 of (sum / C), C = 3
    assert L.hinge_loss(scores, labels) == pytest.approx(2.5 / 6)
    close(L.hinge_loss_gradient(scores, labels), [[-2 / 6, 1 / 6, 1 / 6], [0.0, 0.0, 0.0]])
    # margin 0 is the perceptron criterion: only classes that outscore the label count
    assert L.hinge_loss(scores, labels, margin=0.0) == pytest.approx(1.0 / 6)


@pytest.mark.parametrize(
    "loss, grad, target",
    [
        (L.mse_loss, L.mse_loss_gradient, np.ones((2, 3))),
        (L.mae_loss, L.mae_loss_gradient, np.ones((2, 3))),
        (L.huber_loss, L.huber_loss_gradient, np.ones((2, 3))),
        (L.binary_cross_entropy, L.binary_cross_entropy_gradient, np.ones((2, 3))),
        (L.cross_entropy, L.cross_entropy_gradient, np.array([0, 2])),
        (L.hinge_loss, L.hinge_loss_gradient, np.array([0, 2])),
    ],
    ids=lambda f: getattr(f, "__name__", ""),
)
def test_losses_return_float_and_a_float32_gradient(loss, grad, target):
    out = np.linspace(-2, 2, 6, dtype=np.float32).reshape(2, 3)
    assert type(loss(out, target)) is float
    assert grad(out, target).dtype == np.float32  # float64 targets do not upcast it


# --- regularization ----------------------------------------------------------------------


def test_l2_penalty_and_gradient():
    weights = [np.array([[1.0, 2.0]]), np.array([[3.0]])]
    assert R.l2_penalty(weights, lam=0.1) == pytest.approx(0.5 * 0.1 * (1 + 4 + 9))
    assert R.l2_penalty(weights[0], lam=1.0) == pytest.approx(2.5)  # a single array
    close(R.l2_penalty_gradient(weights[0], lam=0.1), [[0.1, 0.2]])


class FixedUniform:
    """A stand-in generator whose "random" draws are known, so the mask is hand-computable."""

    def __init__(self, values):
        self.values = np.asarray(values)

    def random(self, shape, dtype=np.float64):
        return self.values.reshape(shape).astype(dtype)


def test_dropout_keeps_draws_at_or_above_the_rate_and_scales_them():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    out, mask = R.dropout(x, 0.5, FixedUniform([0.1, 0.6, 0.5, 0.9]))
    close(mask, [0.0, 2.0, 2.0, 2.0])  # P(u ≥ p) = 1 − p; kept units × 1/(1 − p)
    close(out, [0.0, 4.0, 6.0, 8.0])
    out, mask = R.dropout(x, 0.75, FixedUniform([0.1, 0.6, 0.5, 0.9]))
    close(out, [0.0, 0.0, 0.0, 16.0])


def test_dropout_at_rate_zero_is_the_identity_and_draws_nothing():
    x = np.array([1.0, 2.0])
    out, mask = R.dropout(x, 0.0, rng=None)
    assert out is x and mask is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_keeps_the_dtype(dtype):
    out, mask = R.dropout(np.ones((3, 4), dtype=dtype), 0.5, np.random.default_rng(0))
    assert out.dtype == dtype and mask.dtype == dtype
