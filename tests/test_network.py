"""The network: shape inference, build-time shape errors, state save/load checks."""

import numpy as np
import pytest
from rich.console import Console

from npnet.cli.tables import model_table
from npnet.errors import ConfigError, RunError
from npnet.nn.network import Network

CNN = [
    {"conv2d": {"filters": 4, "kernel": 3, "padding": 1}},
    {"relu": {}},
    {"max_pool2d": {"size": 2}},
    {"flatten": {}},
    {"dense": {"units": 10}},
]


def build(specs, shape=(1, 8, 8), dtype=np.float32):
    return Network.from_specs(specs, shape, np.random.default_rng(0), dtype)


def test_shapes_are_inferred_layer_by_layer():
    net = build(CNN)
    assert [row["output_shape"] for row in net.summary()] == [
        (4, 8, 8),
        (4, 8, 8),
        (4, 4, 4),
        (64,),
        (10,),
    ]
    assert [row["params"] for row in net.summary()] == [4 * 9 + 4, 0, 0, 0, 64 * 10 + 10]
    assert net.num_params() == 40 + 650
    out = net.forward(np.zeros((5, 1, 8, 8), np.float32))
    assert out.shape == (5, 10)
    assert out.dtype == np.float32


def test_first_layer_skips_its_input_gradient():
    net = build(CNN)
    assert net.layers[0].input_grad is False
    assert all(layer.input_grad for layer in net.layers[1:])
    net.forward(np.ones((2, 1, 8, 8), np.float32), training=True)
    assert net.backward(np.ones((2, 10), np.float32)) is None
    assert set(net.gradients()) == set(net.parameters()) == {"0.W", "0.b", "4.W", "4.b"}


def test_same_seed_same_weights():
    a, b = build(CNN), build(CNN)
    for key, value in a.parameters().items():
        np.testing.assert_array_equal(value, b.parameters()[key])


def test_dense_after_conv_without_flatten_names_the_layer():
    with pytest.raises(ConfigError, match=r"^model.layers\[3\] \(dense\): .*flatten"):
        build([*CNN[:3], {"dense": {"units": 10}}])


def test_kernel_larger_than_input_names_the_layer():
    with pytest.raises(ConfigError, match=r"^model.layers\[0\] \(conv2d\): "):
        build([{"conv2d": {"filters": 2, "kernel": 5}}], shape=(1, 3, 3))


def test_load_state_checks_keys_and_shapes():
    net = build(CNN)
    state = {k: v.copy() for k, v in net.state().items()}
    with pytest.raises(RunError, match=r"missing \['4.b'\]"):
        net.load_state({k: v for k, v in state.items() if k != "4.b"}, "w.npz")
    wrong = dict(state, **{"4.W": np.zeros((3, 10), np.float32)})
    with pytest.raises(RunError, match=r"w.npz: layer 4 \(dense\) '4.W' has shape \(3, 10\)"):
        net.load_state(wrong, "w.npz")
    state["4.b"][:] = 7
    net.load_state(state, "w.npz")
    assert np.all(net.parameters()["4.b"] == 7)


def test_a_max_pool_runs_before_the_relu_it_follows():
    net = build([*CNN, {"relu": {}}])
    names = [layer.name for layer in net.run_order]
    assert names == ["conv2d", "max_pool2d", "relu", "flatten", "dense", "relu"]
    assert [layer.name for layer in net.layers][1:3] == ["relu", "max_pool2d"]


def test_the_summary_says_where_the_network_reorders():
    net = build([*CNN, {"relu": {}}])
    assert net.reorderings() == [(1, 2)]
    assert [row["runs"] for row in net.summary()] == [None, "after 2", "before 1", *[None] * 3]
    assert build(CNN[2:3] + CNN[1:2]).reorderings() == []  # pool then ReLU: already in order


def test_the_model_tables_show_the_reordering(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    console = Console(record=True, width=200)
    console.print(model_table(build(CNN)))
    text = console.export_text()
    assert "relu (runs after 2)" in text and "max_pool2d (runs before 1)" in text
    assert "max(relu(x)) = relu(max(x))" in text
    console.print(model_table(build(CNN[3:])))
    assert "runs" not in console.export_text()


def test_pooling_before_the_relu_gives_the_same_outputs_and_gradients():
    # max(relu(x)) = relu(max(x)), and the gradient of either order reaches the same entries:
    # small integers make windows of negatives, of zeros and of ties (float64: any change shows).
    net = build(
        [{"relu": {}}, {"max_pool2d": {"size": 2}}, {"flatten": {}}, {"dense": {"units": 3}}],
        dtype=np.float64,
    )
    for layer in net.layers:
        layer.input_grad = True
    x = np.random.default_rng(1).integers(-2, 3, size=(6, 1, 8, 8)).astype(np.float64)
    grad = np.random.default_rng(2).normal(size=(6, 3))
    results = []
    for order in (list(net.layers), net.run_order):
        net.run_order = order
        out = net.forward(x, training=True)
        dx = net.backward(grad)
        results.append((out, dx, net.gradients()["3.W"].copy()))
    (out_a, dx_a, dW_a), (out_b, dx_b, dW_b) = results
    np.testing.assert_array_equal(out_a, out_b)
    np.testing.assert_array_equal(dx_a, dx_b)
    np.testing.assert_array_equal(dW_a, dW_b)
    assert np.count_nonzero(dx_a) > 0


def test_only_stochastic_layers_get_the_noise_stream():
    net = build([{"flatten": {}}, {"dropout": {"rate": 0.5}}, {"dense": {"units": 3}}])
    noise = np.random.default_rng(7)
    net.set_noise_rng(noise)
    assert net.layers[1].rng is noise
    assert net.layers[0].rng is None and net.layers[2].rng is None
