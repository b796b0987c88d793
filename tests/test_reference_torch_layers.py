"""dense, conv2d, max_pool2d, avg_pool2d and flatten against PyTorch in float64: forward
outputs and gradients w.r.t. the input and every parameter, with the same weights."""

from __future__ import annotations

import numpy as np
import pytest

from npnet.registry import LAYERS

torch = pytest.importorskip("torch")
TF = torch.nn.functional
TOL = {"rtol": 1e-8, "atol": 1e-8}


def built(name, in_shape, **args):
    layer = LAYERS.build(name, args)
    layer.build(in_shape, np.random.default_rng(0), np.float64)
    return layer


def compare(layer, x, reference, params_to_torch):
    """Run `layer` and `reference(tx, *torch_params)` on x with dL/dout = g; compare all."""
    rng = np.random.default_rng(1)
    out = layer.forward(x, training=True)
    g = rng.standard_normal(out.shape)
    dx = layer.backward(g)

    tx = torch.tensor(x, requires_grad=True)
    tparams = {k: torch.tensor(v, requires_grad=True) for k, v in params_to_torch.items()}
    ref = reference(tx, **tparams)
    ref.backward(torch.tensor(g))

    np.testing.assert_allclose(out, ref.detach().numpy(), **TOL, err_msg="out: ours vs reference")
    np.testing.assert_allclose(dx, tx.grad.numpy(), **TOL, err_msg="dx: ours vs reference")
    return {k: v.grad.numpy() for k, v in tparams.items()}


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("batch, features, units", [(1, 3, 2), (16, 50, 10), (64, 1568, 128)])
def test_dense(batch, features, units, use_bias):
    layer = built("dense", (features,), units=units, use_bias=use_bias)
    x = np.random.default_rng(2).standard_normal((batch, features))
    W = layer.params["W"]
    torch_params = {"weight": W.T.copy()}  # torch stores (out, in)
    if use_bias:
        layer.params["b"][...] = np.random.default_rng(3).standard_normal(units)
        torch_params["bias"] = layer.params["b"]
    grads = compare(layer, x, lambda tx, **p: TF.linear(tx, **p), torch_params)
    np.testing.assert_allclose(layer.grads["W"], grads["weight"].T, **TOL, err_msg="dW")
    if use_bias:
        np.testing.assert_allclose(layer.grads["b"], grads["bias"], **TOL, err_msg="db")


CONV_CASES = [  # args, per-sample input shape, torch padding
    ({"filters": 16, "kernel": 3, "padding": 1}, (1, 28, 28), 1),
    ({"filters": 32, "kernel": 3, "padding": 1}, (16, 14, 14), 1),
    ({"filters": 4, "kernel": 5}, (3, 9, 9), 0),
    ({"filters": 3, "kernel": 3, "stride": 2, "padding": 1}, (2, 8, 7), 1),
    ({"filters": 2, "kernel": [3, 2], "stride": [2, 3], "padding": [2, 0]}, (3, 9, 10), (2, 0)),
    ({"filters": 3, "kernel": 3, "padding": "same"}, (2, 6, 5), "same"),
    ({"filters": 3, "kernel": 4, "padding": "same"}, (2, 6, 5), "same"),  # asymmetric
    ({"filters": 2, "kernel": 2, "stride": 2, "use_bias": False}, (3, 6, 6), 0),
    # by shifted copies (npnet.functional.conv_shifted): >= 4 channels, >= 64 pixels, "same"
    ({"filters": 3, "kernel": 5, "padding": 2}, (4, 8, 9), 2),
    ({"filters": 3, "kernel": 4, "padding": "same"}, (5, 9, 8), "same"),  # asymmetric
    ({"filters": 2, "kernel": [3, 1], "padding": [1, 0], "use_bias": False}, (4, 8, 8), (1, 0)),
]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("args, in_shape, torch_padding", CONV_CASES)
def test_conv2d(args, in_shape, torch_padding):
    layer = built("conv2d", in_shape, **args)
    x = np.random.default_rng(2).standard_normal((3, *in_shape))
    use_bias = args.get("use_bias", True)
    torch_params = {"weight": layer.params["W"]}
    if use_bias:
        layer.params["b"][...] = np.random.default_rng(3).standard_normal(args["filters"])
        torch_params["bias"] = layer.params["b"]
    stride = args.get("stride", 1)
    stride = tuple(stride) if isinstance(stride, list) else stride

    def reference(tx, **p):
        padding = tuple(torch_padding) if isinstance(torch_padding, tuple) else torch_padding
        return TF.conv2d(tx, stride=stride, padding=padding, **p)

    grads = compare(layer, x, reference, torch_params)
    np.testing.assert_allclose(layer.grads["W"], grads["weight"], **TOL, err_msg="dW")
    if use_bias:
        np.testing.assert_allclose(layer.grads["b"], grads["bias"], **TOL, err_msg="db")


POOL_CASES = [  # args, per-sample input shape
    ({}, (16, 28, 28)),
    ({}, (32, 14, 14)),
    ({"size": 3}, (2, 7, 8)),
    ({"size": 3, "stride": 2}, (2, 9, 7)),
    ({"size": 2, "stride": 1}, (3, 5, 5)),
    ({"size": 2, "stride": 3}, (1, 8, 8)),  # gaps between windows
]


@pytest.mark.parametrize("args, in_shape", POOL_CASES)
@pytest.mark.parametrize("values", ["continuous", "ties"])
def test_max_pool2d(args, in_shape, values):
    rng = np.random.default_rng(2)
    if values == "ties":  # MNIST-like: mostly a flat background, a few equal bright pixels
        x = rng.choice([0.0, 0.0, 0.0, 1.0], size=(4, *in_shape))
    else:
        x = rng.standard_normal((4, *in_shape))
    layer = built("max_pool2d", in_shape, **args)
    size = args.get("size", 2)
    stride = args.get("stride", size)
    compare(layer, x, lambda tx: TF.max_pool2d(tx, size, stride), {})


@pytest.mark.parametrize("args, in_shape", POOL_CASES)
def test_avg_pool2d(args, in_shape):
    x = np.random.default_rng(2).standard_normal((4, *in_shape))
    layer = built("avg_pool2d", in_shape, **args)
    size = args.get("size", 2)
    stride = args.get("stride", size)
    compare(layer, x, lambda tx: TF.avg_pool2d(tx, size, stride), {})


def test_flatten():
    layer = built("flatten", (3, 4, 5))
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 5))
    compare(layer, x, lambda tx: torch.flatten(tx, 1), {})


def test_cnn_stack_at_mnist_shapes():
    """The default CNN's conv/pool/flatten/dense stack (ReLU left out: not ours to test) on a
    small batch: every gradient, back through the chain, as PyTorch computes it."""
    specs = [
        ("conv2d", {"filters": 16, "kernel": 3, "padding": 1}),
        ("max_pool2d", {}),
        ("conv2d", {"filters": 32, "kernel": 3, "padding": 1}),
        ("avg_pool2d", {}),
        ("flatten", {}),
        ("dense", {"units": 10}),
    ]
    rng = np.random.default_rng(0)
    shape, layers = (1, 28, 28), []
    for name, args in specs:
        layer = LAYERS.build(name, args)
        shape = layer.build(shape, rng, np.float64)
        layers.append(layer)
    for layer in layers:
        if "b" in layer.params:
            layer.params["b"][...] = rng.standard_normal(layer.params["b"].shape)
    x = rng.standard_normal((4, 1, 28, 28))
    out = x
    for layer in layers:
        out = layer.forward(out, training=True)
    g = rng.standard_normal(out.shape)
    dx = g
    for layer in reversed(layers):
        dx = layer.backward(dx)

    tx = torch.tensor(x, requires_grad=True)
    p = {
        (i, k): torch.tensor(layers[i].params[k], requires_grad=True)
        for i in (0, 2, 5)
        for k in ("W", "b")
    }
    ref = TF.max_pool2d(TF.conv2d(tx, p[0, "W"], p[0, "b"], padding=1), 2)
    ref = TF.avg_pool2d(TF.conv2d(ref, p[2, "W"], p[2, "b"], padding=1), 2)
    ref = TF.linear(torch.flatten(ref, 1), p[5, "W"].T, p[5, "b"])
    ref.backward(torch.tensor(g))

    np.testing.assert_allclose(out, ref.detach().numpy(), **TOL, err_msg="out")
    np.testing.assert_allclose(dx, tx.grad.numpy(), **TOL, err_msg="dx")
    for (i, k), tensor in p.items():
        ours = layers[i].grads[k]
        np.testing.assert_allclose(ours, tensor.grad.numpy(), **TOL, err_msg=f"layer {i} d{k}")
