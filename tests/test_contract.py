"""One contract, every registered component: parametrized over the registries, so a layer or
loss is tested the moment it is registered (and fails until it has gradient-check cases)."""

import numpy as np
import pytest

from npnet.registry import LAYERS, LOSSES, OPTIMIZERS, SCHEDULES
from npnet.tools.gradcheck import LAYER_CASES, LOSS_CASES, TOLERANCE, check_all, check_layer

LAYER_PARAMS = [
    pytest.param(name, args, shape, id=f"{name}-{i}")
    for name in LAYERS.names()
    for i, (args, shape) in enumerate(LAYER_CASES.get(name, [({}, (0,))]))
]
LOSS_PARAMS = [
    pytest.param(name, args, shape, targets, id=f"{name}-{i}")
    for name in LOSSES.names()
    for i, (args, shape, targets) in enumerate(LOSS_CASES.get(name, [({}, (0,), None)]))
]


@pytest.mark.parametrize("name", LAYERS.names())
def test_every_layer_has_gradient_check_cases(name):
    assert LAYER_CASES.get(name), f"add cases for '{name}' to npnet.tools.gradcheck.LAYER_CASES"


@pytest.mark.parametrize("name", LOSSES.names())
def test_every_loss_has_gradient_check_cases(name):
    assert LOSS_CASES.get(name), f"add cases for '{name}' to npnet.tools.gradcheck.LOSS_CASES"


def built(name, args, shape, dtype, seed=0):
    layer = LAYERS.build(name, args)
    out_shape = layer.build(shape, np.random.default_rng(seed), np.dtype(dtype))
    return layer, out_shape


@pytest.mark.parametrize(("name", "args", "shape"), LAYER_PARAMS)
def test_layer_contract_in_float32(name, args, shape):
    layer, out_shape = built(name, args, shape, np.float32)
    assert out_shape == layer.output_shape(shape)
    x = np.random.default_rng(1).standard_normal((4, *shape)).astype(np.float32)
    out = layer.forward(x, training=True)
    assert out.shape == (4, *out_shape)
    assert out.dtype == np.float32
    dx = layer.backward(np.ones_like(out))
    assert dx.shape == x.shape
    assert dx.dtype == np.float32
    assert layer.grads.keys() == layer.params.keys()
    for key, param in layer.params.items():
        assert param.dtype == np.float32
        assert layer.grads[key].shape == param.shape
        assert layer.grads[key].dtype == np.float32
    evaluation = layer.forward(x, training=False)
    assert evaluation.shape == out.shape and evaluation.dtype == np.float32


@pytest.mark.parametrize(("name", "args", "shape"), LAYER_PARAMS)
def test_layer_config_round_trip_rebuilds_the_same_layer(name, args, shape):
    layer, _ = built(name, args, shape, np.float64)
    again, _ = built(name, layer.get_config(), shape, np.float64)
    assert again.get_config() == layer.get_config()
    x = np.random.default_rng(2).standard_normal((3, *shape))
    np.testing.assert_array_equal(layer.forward(x, False), again.forward(x, False))


@pytest.mark.parametrize(("name", "args", "shape"), LAYER_PARAMS)
def test_layer_gradients_match_central_differences(name, args, shape):
    layer, _ = built(name, args, shape, np.float64)
    x = np.random.default_rng(3).standard_normal((4, *shape))
    errors = check_layer(layer, x)
    assert max(errors.values()) < TOLERANCE, errors


@pytest.mark.parametrize(("name", "args", "shape", "targets"), LOSS_PARAMS)
def test_loss_contract(name, args, shape, targets):
    rng = np.random.default_rng(4)
    loss = LOSSES.build(name, args)
    out = rng.standard_normal((4, *shape)).astype(np.float32)
    value = loss.forward(out, targets(rng, 4, shape))
    assert isinstance(value, float) and np.isfinite(value)
    grad = loss.backward()
    assert grad.shape == out.shape and grad.dtype == np.float32
    assert type(loss)(**loss.get_config()).get_config() == loss.get_config()


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_optimizer_config_round_trip(name):
    optimizer = OPTIMIZERS.build(name, {"lr": 0.1})
    assert type(optimizer)(**optimizer.get_config()).get_config() == optimizer.get_config()


@pytest.mark.parametrize("name", SCHEDULES.names())
def test_schedule_is_constructible_from_its_registry_entry(name):
    required = {
        "step": {"step_size": 2},
        "multistep": {"milestones": [2, 4]},
        "exponential": {"gamma": 0.9},
        "cosine": {"t_max": 5},
    }
    schedule = SCHEDULES.build(name, required.get(name, {}))
    assert schedule.begin(0.1) == pytest.approx(0.1)
    assert type(schedule)(**schedule.get_config()).get_config() == schedule.get_config()


def test_check_all_covers_every_component_and_passes():
    rows = check_all()
    assert {r["name"] for r in rows if r["kind"] == "layer"} == set(LAYERS.names())
    assert {r["name"] for r in rows if r["kind"] == "loss"} == set(LOSSES.names())
    assert max(r["error"] for r in rows) < TOLERANCE


def test_gradient_check_has_teeth():
    """Negative control: a backward pass that is wrong by a little must fail the check."""
    layer, _ = built("dense", {"units": 3}, (4,), np.float64)
    correct = layer.backward

    def slightly_wrong(grad_out):
        dx = correct(grad_out)
        layer.grads["W"] = layer.grads["W"] * 1.001
        return dx

    layer.backward = slightly_wrong
    errors = check_layer(layer, np.random.default_rng(5).standard_normal((4, 4)))
    assert errors["W"] > 1e-4
    assert errors["x"] < TOLERANCE


def changed_inputs(call, **arrays):
    """Run `call(**arrays)` and return the names of the arrays it modified (compared bit for
    bit with copies taken before): npnet computes in place a lot, never in its inputs."""
    before = {name: array.copy() for name, array in arrays.items()}
    call(**arrays)
    return [name for name, array in arrays.items() if array.tobytes() != before[name].tobytes()]


@pytest.mark.parametrize(("name", "args", "shape"), LAYER_PARAMS)
def test_layer_leaves_its_inputs_unmodified(name, args, shape):
    """forward (training and evaluation) leaves x and the parameters alone; backward leaves
    grad_out, the parameters and x (which the layer may keep for the backward pass)."""
    layer, out_shape = built(name, args, shape, np.float32)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, *shape)).astype(np.float32)
    grad_out = rng.standard_normal((4, *out_shape)).astype(np.float32)
    params = dict(layer.params)
    assert not changed_inputs(lambda x, **p: layer.forward(x, False), x=x, **params)
    assert not changed_inputs(lambda x, **p: layer.forward(x, True), x=x, **params)
    changed = changed_inputs(lambda g, x, **p: layer.backward(g), g=grad_out, x=x, **params)
    assert not changed, f"{name}.backward modified {changed}"


@pytest.mark.parametrize(("name", "args", "shape", "targets"), LOSS_PARAMS)
def test_loss_leaves_its_inputs_unmodified(name, args, shape, targets):
    rng = np.random.default_rng(7)
    loss = LOSSES.build(name, args)
    out = rng.standard_normal((4, *shape)).astype(np.float32)
    y = targets(rng, 4, shape)
    assert not changed_inputs(lambda out, y: loss.forward(out, y), out=out, y=y)
    assert not changed_inputs(lambda out, y: loss.backward(), out=out, y=y)


def test_the_mutation_check_has_teeth():
    """Negative control: a ReLU that clips its input in place is caught."""

    def in_place_relu(x):
        np.maximum(x, 0, out=x)

    x = np.array([-1.0, 2.0])
    assert changed_inputs(in_place_relu, x=x) == ["x"]
