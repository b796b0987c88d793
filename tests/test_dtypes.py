"""Float32 from the data to the weights: no silent upcast to float64 anywhere in a training step.

One float64 temporary per layer would double the memory traffic of the whole step, and a
float64 output would make every later layer run in float64; neither would change a result
enough for any accuracy test to notice, so this test checks the dtypes themselves, layer by
layer, through the forward pass, the backward pass and the optimizer step of the default
network (configs/cnn.yaml) on real MNIST images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from npnet.config import load_config
from npnet.engine.experiment import build_dataset, build_network
from npnet.registry import LOSSES, OPTIMIZERS

CNN_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "cnn.yaml"


@pytest.fixture(scope="module")
def experiment():
    config = load_config(CNN_CONFIG)
    dataset = build_dataset(config)
    net = build_network(config, dataset, np.random.default_rng(0))
    loss = LOSSES.build(config.loss.name, config.loss.args)
    optimizer = OPTIMIZERS.build(config.optimizer.name, config.optimizer.args)
    return dataset, net, loss, optimizer


def test_the_data_is_float32(experiment):
    dataset, *_ = experiment
    for split in (dataset.x_train, dataset.x_val, dataset.x_test):
        assert split.dtype == np.float32


def test_a_training_step_of_the_cnn_stays_float32(experiment):
    dataset, net, loss, optimizer = experiment
    x, y = dataset.x_train[:64], dataset.y_train[:64]

    out = x
    for index, layer in enumerate(net.layers):
        out = layer.forward(out, training=True)
        assert out.dtype == np.float32, f"layer {index} ({layer.name}) forward: {out.dtype}"
    loss.forward(out, y)
    grad = loss.backward()
    assert grad.dtype == np.float32, f"loss gradient: {grad.dtype}"

    for index in reversed(range(len(net.layers))):
        layer = net.layers[index]
        grad = layer.backward(grad)
        if grad is None:  # the first layer skips dL/dx of the data
            assert index == 0
            break
        assert grad.dtype == np.float32, f"layer {index} ({layer.name}) backward: {grad.dtype}"
    grads = net.gradients()
    for key, param in net.parameters().items():
        assert param.dtype == np.float32, f"parameter {key}: {param.dtype}"
        assert grads[key].dtype == np.float32, f"gradient {key}: {grads[key].dtype}"

    optimizer.step(net.parameters(), grads)
    for key, param in net.parameters().items():
        assert param.dtype == np.float32, f"parameter {key} after the step: {param.dtype}"
    for key, slots in optimizer.state.items():
        for slot, value in slots.items():
            assert value.dtype == np.float32, f"optimizer state {key}/{slot}: {value.dtype}"


def test_evaluation_of_the_cnn_stays_float32(experiment):
    dataset, net, *_ = experiment
    out = dataset.x_test[:100]
    for index, layer in enumerate(net.layers):
        out = layer.forward(out, training=False)
        assert out.dtype == np.float32, f"layer {index} ({layer.name}) evaluation: {out.dtype}"
