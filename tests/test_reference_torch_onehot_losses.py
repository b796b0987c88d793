"""Every loss that compares outputs with targets takes integer class labels (N,) for a
multi-output network (N, C) as one-hot targets: gradient-checked in float64, and against
PyTorch given the same one-hot targets explicitly (`torch.nn.functional.one_hot`)."""

from __future__ import annotations

import numpy as np
import pytest

from npnet.nn import losses  # noqa: F401  (registers the losses)
from npnet.registry import LOSSES
from npnet.tools.gradcheck import check_loss

torch = pytest.importorskip("torch")
TF = torch.nn.functional

ONE_HOT_LOSSES = [
    ("mse", {}, TF.mse_loss),
    ("mae", {}, TF.l1_loss),
    ("huber", {}, lambda o, t: TF.huber_loss(o, t, delta=1.0)),
    ("huber", {"delta": 0.3}, lambda o, t: TF.huber_loss(o, t, delta=0.3)),
    ("binary_cross_entropy", {}, TF.binary_cross_entropy_with_logits),
]
SHAPES = [(6, 10), (5, 3), (1, 4)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name, args, reference", ONE_HOT_LOSSES)
def test_integer_labels_are_one_hot_targets_as_in_torch(name, args, reference, shape):
    rng = np.random.default_rng(5)
    out = rng.standard_normal(shape) * 2.0
    labels = rng.integers(0, shape[1], shape[0])
    loss = LOSSES.build(name, args)
    value = loss.forward(out, labels)
    grad = loss.backward()

    out_t = torch.tensor(out, dtype=torch.float64, requires_grad=True)
    one_hot = TF.one_hot(torch.tensor(labels), shape[1]).double()
    value_t = reference(out_t, one_hot)
    value_t.backward()
    np.testing.assert_allclose(value, value_t.item(), rtol=1e-8, err_msg=f"{name}: ours vs torch")
    np.testing.assert_allclose(grad, out_t.grad.numpy(), rtol=1e-8, atol=1e-12)
    # The same as giving the one-hot rows ourselves.
    assert value == LOSSES.build(name, args).forward(out, one_hot.numpy())


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name, args, reference", ONE_HOT_LOSSES)
def test_integer_label_gradients_pass_the_gradient_check(name, args, reference, shape):
    rng = np.random.default_rng(6)
    out = rng.standard_normal(shape)
    labels = rng.integers(0, shape[1], shape[0])
    assert check_loss(LOSSES.build(name, args), out, labels) < 1e-6


@pytest.mark.parametrize("name, args, reference", ONE_HOT_LOSSES)
def test_labels_out_of_range_are_refused(name, args, reference):
    with pytest.raises(ValueError, match=r"labels in \[0, 3\)"):
        LOSSES.build(name, args).forward(np.zeros((2, 3)), np.array([0, 3]))
