"""Gradient checking: compare each analytic backward pass with central differences.

A layer is checked through the scalar L = sum(out * g) with a fixed random g, so dL/dout = g
and every output entry matters. Where a step of 1e-6 disagrees, steps of 1e-7 and 1e-4 are
tried too (see `compare`): kinks and rounding fade with one or the other, a wrong backward
pass does not.
Stochastic layers get the same random stream for every evaluation (their `rng` is
re-seeded), so a dropout mask is fixed while the input moves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from npnet.config import Config
from npnet.engine.experiment import build_dataset, build_network, random_streams
from npnet.engine.preflight import check_output, dry_step
from npnet.functional.numerical import numerical_gradient, relative_error
from npnet.nn.layer import Layer
from npnet.nn.loss import Loss
from npnet.nn.network import Network
from npnet.registry import LAYERS, LOSSES
from npnet.validate import positive_int

TOLERANCE = 1e-6


def sample_indices(size: int, entries: int | None, rng: np.random.Generator) -> np.ndarray | None:
    """`entries` random flat positions out of `size` (all of them when `entries` is None or
    at least `size`): large tensors are checked on a sample to keep the check fast."""
    if entries is None or entries >= size:
        return None
    return rng.choice(size, size=entries, replace=False)


# Central differences with the first step; where they disagree, with the others in turn.
STEPS = (1e-6, 1e-7, 1e-4)
# In float64, on a loss of order 1, central differences' rounding noise is ~1e-10: a tensor
# whose analytic and numerical gradients both stay below this has a zero gradient.
ZERO_GRADIENT = 1e-8


def compare(
    f: Callable[[], float], array: np.ndarray, analytic: np.ndarray, indices: np.ndarray | None
) -> float:
    """Relative error between `analytic` and the numerical gradient of `f` w.r.t. `array`,
    on the sampled `indices` only.

    Central differences have two errors of their own: a kink (ReLU at 0, a tie in a max-pool)
    within one step of the point, which fades with a smaller step (batch norm's standardized
    activations put many values near ReLU's kink), and rounding, ~1e-16·|L| / step, which
    fades with a larger one and matters for tiny gradients (the first layers of a deep
    sigmoid network: 4e-5). A wrong backward pass disagrees at every step. So a tensor that
    fails with the first step is checked with the others, and the smallest error counts.
    Gradients that are both all but zero (a bias right before batch norm, which subtracts it
    again) agree: error 0.
    """
    if indices is not None:
        analytic = analytic.reshape(-1)[indices]
    error = np.inf
    for eps in STEPS:
        numeric = numerical_gradient(f, array, eps=eps, indices=indices)
        if indices is not None:
            numeric = numeric.reshape(-1)[indices]
        if max(np.max(np.abs(analytic)), np.max(np.abs(numeric))) < ZERO_GRADIENT:
            return 0.0
        error = min(error, relative_error(analytic, numeric))
        if error < TOLERANCE:
            break
    return error


def check_layer(
    layer: Layer,
    x: np.ndarray,
    *,
    training: bool = True,
    entries: int | None = 40,
    seed: int = 0,
) -> dict[str, float]:
    """Relative error of dL/dx and of every dL/dparam of a built float64 `layer` at input `x`.

    Returns {"x": err, "W": err, ...}; each should be below `TOLERANCE`.
    """
    rng = np.random.default_rng(seed)
    g = None

    def loss() -> float:
        layer.rng = np.random.default_rng(seed)  # the same dropout mask at every evaluation
        return float(np.sum(layer.forward(x, training) * g))

    layer.rng = np.random.default_rng(seed)
    g = rng.standard_normal(layer.forward(x, training).shape)
    layer.rng = np.random.default_rng(seed)
    layer.forward(x, training)
    dx = layer.backward(g)
    analytic = {name: grad.copy() for name, grad in layer.grads.items()}

    errors = {"x": compare(loss, x, dx, sample_indices(x.size, entries, rng))}
    for name, param in layer.params.items():
        indices = sample_indices(param.size, entries, rng)
        errors[name] = compare(loss, param, analytic[name], indices)
    return errors


def check_network(
    net: Network,
    loss: Loss,
    x: np.ndarray,
    y: np.ndarray,
    *,
    entries: int | None = 30,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Check dL/dx and every dL/dparam of a float64 network through its loss on (x, y).

    One row per tensor: {"layer", "name", "tensor", "shape", "checked", "error"}. The input
    gradient is checked too, so every layer's `input_grad` is switched on for the check.
    """
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        layer.input_grad = True

    def evaluate() -> float:
        net.set_noise_rng(np.random.default_rng(seed))  # the same dropout masks every time
        return loss.forward(net.forward(x, training=True), y)

    evaluate()
    dx = net.backward(loss.backward())
    analytic = {key: grad.copy() for key, grad in net.gradients().items()}

    indices = sample_indices(x.size, entries, rng)
    rows = [row("-", "input", "x", x, indices, compare(evaluate, x, dx, indices))]
    for key, param in net.parameters().items():
        index, name = key.split(".", 1)
        layer = net.layers[int(index)]
        indices = sample_indices(param.size, entries, rng)
        error = compare(evaluate, param, analytic[key], indices)
        rows.append(row(index, layer.name, name, param, indices, error))
    return rows


def row(
    layer: str, name: str, tensor: str, array: np.ndarray, indices: np.ndarray | None, error: float
) -> dict[str, Any]:
    return {
        "layer": layer,
        "name": name,
        "tensor": tensor,
        "shape": tuple(array.shape),
        "checked": array.size if indices is None else len(indices),
        "error": error,
    }


def check_config(
    config: Config, samples: int = 4, entries: int | None = 30
) -> list[dict[str, Any]]:
    """Gradient-check the config's network in float64 on its first `samples` training samples.

    The batch gets a 0.01 jitter: real images have exact ties (MNIST's flat background makes
    identical patches), and at or near a tie max-pooling's gradient is one-sided, so central
    differences straddling it would disagree with any correct backward pass. (With 1e-4 the
    pooled values of flat regions still lie within a step of each other.) Kinks that remain
    near the point, e.g. after batch norm, are what `compare`'s second step is for.
    """
    samples = positive_int("--samples", samples)
    if entries is not None:
        entries = positive_int("--entries", entries)
    dataset = build_dataset(config)
    init_rng, _, _ = random_streams(config.seed)
    net = build_network(config, dataset, init_rng, np.float64)
    loss = LOSSES.build(config.loss.name, config.loss.args)
    # The checks training makes at build time: a network or loss that does not fit the data
    # is a config error here too, not a ValueError from inside the check.
    check_output(config, dataset, net)
    dry_step(config, dataset, net, loss)
    x = dataset.x_train[:samples].astype(np.float64)
    x += 0.01 * np.random.default_rng(config.seed).standard_normal(x.shape)
    y = dataset.y_train[:samples]
    if y.dtype.kind == "f":
        y = y.astype(np.float64)
    return check_network(net, loss, x, y, entries=entries, seed=config.seed)


# Small cases for every registered layer: (constructor arguments, per-sample input shape).
# `npnet gradcheck --all` and the contract tests run each; a layer without cases fails them.
ACTIVATION_CASES = [({}, (6,)), ({}, (2, 3, 3))]
LAYER_CASES: dict[str, list[tuple[dict[str, Any], tuple[int, ...]]]] = {
    "dense": [({"units": 3}, (4,)), ({"units": 5, "use_bias": False}, (7,))],
    "conv2d": [
        ({"filters": 2, "kernel": 3}, (2, 5, 5)),
        ({"filters": 3, "kernel": [2, 3], "stride": 2, "padding": 1}, (1, 6, 7)),
        ({"filters": 2, "kernel": 3, "padding": "same", "use_bias": False}, (3, 4, 4)),
    ],
    "max_pool2d": [({"size": 2}, (2, 4, 4)), ({"size": 3, "stride": 2}, (1, 7, 7))],
    "avg_pool2d": [({"size": 2}, (2, 4, 4)), ({"size": 3, "stride": 2}, (1, 7, 7))],
    "flatten": [({}, (2, 3, 3))],
    "dropout": [({"rate": 0.3}, (10,)), ({"rate": 0.5}, (2, 3, 3))],
    "batch_norm": [({}, (5,)), ({"momentum": 0.2}, (3, 4, 4))],
    **{
        name: ACTIVATION_CASES
        for name in ("relu", "sigmoid", "tanh", "softmax", "identity", "elu", "gelu")
    },
    "leaky_relu": [({"negative_slope": 0.2}, (6,)), ({}, (2, 3, 3))],
}


def class_labels(rng: np.random.Generator, n: int, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(0, shape[0], size=n)


def same_shape_targets(rng: np.random.Generator, n: int, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_normal((n, *shape))


def binary_targets(rng: np.random.Generator, n: int, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(0, 2, size=(n, *shape)).astype(np.float64)


# Losses: (constructor arguments, per-sample output shape, how to draw targets).
LOSS_CASES: dict[str, list[tuple[dict[str, Any], tuple[int, ...], Callable[..., np.ndarray]]]] = {
    "softmax_cross_entropy": [
        ({}, (5,), class_labels),
        ({"label_smoothing": 0.1}, (3,), class_labels),
    ],
    "mse": [({}, (3,), same_shape_targets), ({}, (4,), class_labels)],
    # Integer labels for several outputs are one-hot targets for every loss that compares.
    "mae": [({}, (3,), same_shape_targets), ({}, (4,), class_labels)],
    "huber": [
        ({}, (3,), same_shape_targets),
        ({"delta": 0.5}, (2,), same_shape_targets),
        ({"delta": 0.5}, (4,), class_labels),
    ],
    "binary_cross_entropy": [
        ({}, (1,), binary_targets),
        ({}, (3,), binary_targets),
        ({}, (4,), class_labels),
    ],
    "hinge": [({}, (4,), class_labels), ({"margin": 0.5}, (3,), class_labels)],
}


def check_loss(loss: Loss, out: np.ndarray, y: np.ndarray) -> float:
    """Relative error of the loss's dL/dout at (out, y)."""
    loss.forward(out, y)
    analytic = loss.backward()
    return compare(lambda: loss.forward(out, y), out, analytic, None)


def check_all(batch: int = 4, seed: int = 0) -> list[dict[str, Any]]:
    """Gradient-check every case of every registered layer and loss in float64.

    One row per checked tensor: {"kind", "name", "args", "shape", "tensor", "error"}; a
    registered component without cases gets a row with error inf, so it fails loudly.
    """
    rows = []
    rng = np.random.default_rng(seed)
    for name in LAYERS.names():
        for args, shape in LAYER_CASES.get(name, [(None, ())]):
            if args is None:
                rows.append(all_row("layer", name, {}, shape, "no cases", float("inf")))
                continue
            layer = LAYERS.build(name, args)
            layer.build(shape, rng, np.dtype(np.float64))
            x = rng.standard_normal((batch, *shape))
            for tensor, error in check_layer(layer, x, seed=seed).items():
                rows.append(all_row("layer", name, args, (batch, *shape), tensor, error))
    for name in LOSSES.names():
        for args, shape, targets in LOSS_CASES.get(name, [(None, (), None)]):
            if args is None:
                rows.append(all_row("loss", name, {}, shape, "no cases", float("inf")))
                continue
            out = rng.standard_normal((batch, *shape))
            y = targets(rng, batch, shape)
            error = check_loss(LOSSES.build(name, args), out, y)
            rows.append(all_row("loss", name, args, (batch, *shape), "out", error))
    return rows


def all_row(
    kind: str, name: str, args: dict[str, Any], shape: tuple[int, ...], tensor: str, error: float
) -> dict[str, Any]:
    return {
        "kind": kind,
        "name": name,
        "args": args,
        "shape": shape,
        "tensor": tensor,
        "error": error,
    }
