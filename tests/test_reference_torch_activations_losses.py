"""Activations, batch norm and losses against PyTorch in float64: forward and gradients agree
to 1e-8 over several shapes. Skipped when torch is not installed (`make torch`)."""

from __future__ import annotations

import numpy as np
import pytest

from npnet.nn import activations, batch_norm, losses  # noqa: F401  (registers the components)
from npnet.registry import LAYERS, LOSSES

torch = pytest.importorskip("torch")
TF = torch.nn.functional

SHAPES = [(4, 7), (2, 3, 4, 4), (1, 5)]


def agree(ours, reference, what):
    np.testing.assert_allclose(
        ours, reference, rtol=1e-8, atol=1e-10, err_msg=f"{what}: ours vs reference (torch)"
    )


def tensor(array, grad=False):
    return torch.tensor(array, dtype=torch.float64, requires_grad=grad)


ACTIVATIONS = [
    ("identity", {}, lambda x: x),
    ("relu", {}, TF.relu),
    ("leaky_relu", {}, lambda x: TF.leaky_relu(x, 0.01)),
    ("leaky_relu", {"negative_slope": 0.2}, lambda x: TF.leaky_relu(x, 0.2)),
    ("elu", {}, lambda x: TF.elu(x, 1.0)),
    ("elu", {"alpha": 0.5}, lambda x: TF.elu(x, 0.5)),
    ("gelu", {}, TF.gelu),
    ("sigmoid", {}, torch.sigmoid),
    ("tanh", {}, torch.tanh),
    ("softmax", {}, lambda x: TF.softmax(x, dim=-1)),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name, args, reference", ACTIVATIONS)
def test_activation_matches_torch(name, args, reference, shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape) * 3.0
    g = rng.standard_normal(shape)
    layer = LAYERS.build(name, args)
    layer.build(shape[1:], rng, np.float64)
    out = layer.forward(x, training=True)
    dx = layer.backward(g)

    x_t = tensor(x, grad=True)
    out_t = reference(x_t)
    out_t.backward(tensor(g))
    agree(out, out_t.detach().numpy(), f"{name} forward")
    agree(dx, x_t.grad.numpy(), f"{name} dx")


@pytest.mark.parametrize("momentum", [0.1, 0.3])
@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 6), (4, 3, 5, 5)])
def test_batch_norm_matches_torch(shape, momentum):
    rng = np.random.default_rng(1)
    channels = shape[1]
    ours = LAYERS.build("batch_norm", {"momentum": momentum})
    ours.build(shape[1:], rng, np.float64)
    reference = (torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d)(
        channels, momentum=momentum, eps=1e-5, dtype=torch.float64
    )
    gamma, beta = rng.uniform(0.5, 2.0, channels), rng.standard_normal(channels)
    ours.params["gamma"][:], ours.params["beta"][:] = gamma, beta
    with torch.no_grad():
        reference.weight.copy_(tensor(gamma))
        reference.bias.copy_(tensor(beta))

    def step(training, x, g):
        reference.train(training)
        reference.zero_grad()
        x_t = tensor(x, grad=True)
        out_t = reference(x_t)
        out_t.backward(tensor(g))
        out = ours.forward(x, training=training)
        dx = ours.backward(g)
        mode = "train" if training else "eval"
        agree(out, out_t.detach().numpy(), f"batch_norm {mode} forward")
        agree(dx, x_t.grad.numpy(), f"batch_norm {mode} dx")
        agree(ours.grads["gamma"], reference.weight.grad.numpy(), f"batch_norm {mode} dgamma")
        agree(ours.grads["beta"], reference.bias.grad.numpy(), f"batch_norm {mode} dbeta")

    for _ in range(3):
        step(True, rng.standard_normal(shape) * 2.0 + 1.0, rng.standard_normal(shape))
    agree(ours.buffers["running_mean"], reference.running_mean.numpy(), "running_mean")
    agree(ours.buffers["running_var"], reference.running_var.numpy(), "running_var")
    step(False, rng.standard_normal(shape), rng.standard_normal(shape))


def class_labels(rng, n, classes):
    return rng.integers(0, classes, n)


LOSS_CASES = [
    # name, args, output shape, targets(rng, out_shape), torch loss of (out, targets)
    (
        "softmax_cross_entropy",
        {},
        (6, 4),
        lambda rng, s: class_labels(rng, s[0], s[1]),
        lambda o, y: TF.cross_entropy(o, torch.tensor(y)),
    ),
    (
        "softmax_cross_entropy",
        {"label_smoothing": 0.1},
        (5, 10),
        lambda rng, s: class_labels(rng, s[0], s[1]),
        lambda o, y: TF.cross_entropy(o, torch.tensor(y), label_smoothing=0.1),
    ),
    (
        "mse",
        {},
        (6, 3),
        lambda rng, s: rng.standard_normal(s),
        lambda o, y: TF.mse_loss(o, tensor(y)),
    ),
    (
        "mse",
        {},
        (2, 3, 4),
        lambda rng, s: rng.standard_normal(s),
        lambda o, y: TF.mse_loss(o, tensor(y)),
    ),
    (
        "mse",
        {},
        (6, 10),
        lambda rng, s: class_labels(rng, s[0], s[1]),
        lambda o, y: TF.mse_loss(o, TF.one_hot(torch.tensor(y), o.shape[1]).double()),
    ),
    (
        "mae",
        {},
        (6, 3),
        lambda rng, s: rng.standard_normal(s),
        lambda o, y: TF.l1_loss(o, tensor(y)),
    ),
    (
        "huber",
        {},
        (6, 3),
        lambda rng, s: rng.standard_normal(s),
        lambda o, y: TF.huber_loss(o, tensor(y), delta=1.0),
    ),
    (
        "huber",
        {"delta": 0.3},
        (4, 2, 2),
        lambda rng, s: rng.standard_normal(s),
        lambda o, y: TF.huber_loss(o, tensor(y), delta=0.3),
    ),
    (
        "binary_cross_entropy",
        {},
        (7, 1),
        lambda rng, s: rng.integers(0, 2, s).astype(np.float64),
        lambda o, y: TF.binary_cross_entropy_with_logits(o, tensor(y)),
    ),
    (
        "binary_cross_entropy",
        {},
        (7,),
        lambda rng, s: rng.uniform(0, 1, s),  # soft targets too
        lambda o, y: TF.binary_cross_entropy_with_logits(o, tensor(y)),
    ),
    (
        "hinge",
        {},
        (6, 4),
        lambda rng, s: class_labels(rng, s[0], s[1]),
        lambda o, y: TF.multi_margin_loss(o, torch.tensor(y), margin=1.0),
    ),
    (
        "hinge",
        {"margin": 0.5},
        (3, 10),
        lambda rng, s: class_labels(rng, s[0], s[1]),
        lambda o, y: TF.multi_margin_loss(o, torch.tensor(y), margin=0.5),
    ),
]


@pytest.mark.parametrize("name, args, shape, targets, reference", LOSS_CASES)
def test_loss_matches_torch(name, args, shape, targets, reference):
    rng = np.random.default_rng(2)
    out = rng.standard_normal(shape) * 2.0
    y = targets(rng, shape)
    loss = LOSSES.build(name, args)
    value = loss.forward(out, y)
    grad = loss.backward()

    out_t = tensor(out, grad=True)
    value_t = reference(out_t, y)
    value_t.backward()
    agree(value, value_t.item(), f"{name} value")
    agree(grad, out_t.grad.numpy(), f"{name} gradient")


@pytest.mark.parametrize("name, args, shape, targets, reference", LOSS_CASES[:2] + LOSS_CASES[8:9])
def test_loss_matches_torch_for_huge_logits(name, args, shape, targets, reference):
    rng = np.random.default_rng(3)
    out = np.where(rng.random(shape) < 0.5, -1000.0, 1000.0)
    y = targets(rng, shape)
    loss = LOSSES.build(name, args)
    value = loss.forward(out, y)
    grad = loss.backward()
    out_t = tensor(out, grad=True)
    value_t = reference(out_t, y)
    value_t.backward()
    agree(value, value_t.item(), f"{name} value at ±1000")
    agree(grad, out_t.grad.numpy(), f"{name} gradient at ±1000")
