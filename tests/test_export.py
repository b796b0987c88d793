"""ONNX export (npnet.tools.export), checked by running the models in onnxruntime: every
shipped config, every registered layer, the whole test set for a trained CNN."""

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from npnet.config import load_config
from npnet.data import load_dataset
from npnet.data.mnist import load_mnist
from npnet.engine.experiment import build_network
from npnet.engine.inputs import Inputs, describe_inputs
from npnet.errors import RunError
from npnet.nn.layer import Layer
from npnet.nn.network import Network
from npnet.registry import LAYERS, LOSSES, OPTIMIZERS
from npnet.tools.predict import Predictor

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from npnet.tools.export import LAYER_OPS, export_run, network_to_onnx, write_model  # noqa: E402

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def run_onnx(model, x: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {"input": x}), strict=True))


def relative_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    """max |ours − theirs| / max |theirs|: relative to the output's scale, so a logit that
    happens to be near 0 does not make a tiny absolute difference look large."""
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


@cache
def dataset_for(dataset, options, validation, normalize, train_size, seed):
    """Each distinct data section of the shipped configs is built once (MNIST takes seconds),
    as npnet.engine.experiment.build_dataset builds it."""
    return load_dataset(
        dataset,
        dict(options),
        validation=validation,
        normalize=normalize,
        train_size=train_size,
        seed=seed,
    )


@pytest.fixture(scope="module")
def mnist_pixels():
    """The first 256 MNIST test images as the exported model takes them: (N, 1, 28, 28) in
    [0, 1]."""
    _, _, x_test, _ = load_mnist(None)
    return (x_test[:256].reshape(-1, 1, 28, 28) / np.float32(255)).astype(np.float32)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_shipped_config_exports_and_onnxruntime_agrees(path, mnist_pixels):
    """Briefly trained (three SGD steps on real batches, so batch norm's running statistics
    and the weights are not their initial values), exported, run in onnxruntime on a real
    batch: the scores match npnet's on the same data, as its training pipeline normalizes it,
    to 1e-5 relative in float32."""
    config = load_config(path)
    data = config.data
    dataset = dataset_for(
        data.dataset,
        tuple(sorted(data.options.items())),
        data.validation,
        data.normalize,
        data.train_size,
        config.seed,
    )
    net = build_network(config, dataset, np.random.default_rng(config.seed))
    loss = LOSSES.build(config.loss.name, config.loss.args)
    optimizer = OPTIMIZERS.build(config.optimizer.name, config.optimizer.args)
    net.set_noise_rng(np.random.default_rng(1))
    for start in range(0, 3 * 32, 32):
        loss.forward(
            net.forward(dataset.x_train[start : start + 32], training=True),
            dataset.y_train[start : start + 32],
        )
        net.backward(loss.backward())
        optimizer.step(net.parameters(), net.gradients())

    inputs = describe_inputs(dataset)
    model = network_to_onnx(net, inputs, config.loss.name, config.name)
    if inputs.image_max is not None:  # MNIST: the model takes the pixels / 255
        x_model, x_npnet = mnist_pixels, dataset.x_test[:256]
    else:  # raw features, which for the unnormalized synthetic sets npnet sees as they are
        assert inputs.normalization["method"] == "none"
        x_model = x_npnet = dataset.x_test[:256].astype(np.float32)
    outputs = run_onnx(model, x_model)
    expected = net.predict(x_npnet)
    assert outputs["scores"].shape == expected.shape
    assert relative_error(outputs["scores"], expected) < 1e-5
    if "probabilities" in outputs:
        exp_z = np.exp(expected - expected.max(axis=1, keepdims=True))
        probabilities = exp_z / exp_z.sum(axis=1, keepdims=True)
        assert relative_error(outputs["probabilities"], probabilities) < 1e-5


def test_a_trained_cnn_gives_the_same_class_on_the_whole_test_set(cnn_run, tmp_path):
    """Exported from the run directory and written to disk, as `npnet export` does."""
    path = tmp_path / "cnn.onnx"
    write_model(export_run(cnn_run), path)
    _, _, x_test, y_test = load_mnist(None)
    pixels = x_test.reshape(-1, 1, 28, 28) / np.float32(255)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    scores, probabilities = session.run(["scores", "probabilities"], {"input": pixels})
    predictor = Predictor(cnn_run)
    ours = predictor.probabilities(pixels[:, 0])
    assert len(scores) == 10_000
    np.testing.assert_array_equal(probabilities.argmax(axis=1), ours.argmax(axis=1))
    np.testing.assert_array_equal(scores.argmax(axis=1), ours.argmax(axis=1))
    assert relative_error(scores, predictor.scores(pixels[:, 0])) < 1e-5
    assert np.mean(ours.argmax(axis=1) == y_test) > 0.85
    metadata = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert metadata["image_max"] == "255.0" and metadata["class_names"] == "null"


def test_every_registered_layer_has_an_onnx_mapping():
    assert sorted(LAYER_OPS) == LAYERS.names()


# Networks that, between them, use every layer and every option an ONNX mapping reads.
LAYER_CASES = {
    "conv-stride-asymmetric-padding-avgpool-gelu": (
        (2, 12, 12),
        [
            {"conv2d": {"filters": 3, "kernel": [3, 2], "stride": [2, 1], "padding": [1, 2]}},
            {"gelu": {}},
            {"avg_pool2d": {"size": 2}},
            {"conv2d": {"filters": 4, "kernel": 2, "padding": "same", "use_bias": False}},
            {"batch_norm": {"eps": 0.001}},
            {"leaky_relu": {"negative_slope": 0.2}},
            {"max_pool2d": {"size": 2, "stride": 1}},
            {"flatten": {}},
            {"dense": {"units": 5, "use_bias": False}},
            {"elu": {"alpha": 0.7}},
            {"dropout": {"rate": 0.3}},
            {"batch_norm": {}},
            {"tanh": {}},
            {"dense": {"units": 4}},
            {"softmax": {}},
        ],
    ),
    "mlp-sigmoid-identity-relu": (
        (6,),
        [
            {"dense": {"units": 8}},
            {"sigmoid": {}},
            {"identity": {}},
            {"dense": {"units": 3}},
            {"relu": {}},
        ],
    ),
}


@pytest.mark.parametrize("case", list(LAYER_CASES))
def test_every_layer_and_option_matches_npnet_in_onnxruntime(case):
    shape, specs = LAYER_CASES[case]
    rng = np.random.default_rng(5)
    net = Network.from_specs(specs, shape, rng)
    for layer in net.layers:  # running statistics away from their initial 0 and 1
        if layer.name == "batch_norm":
            channels = len(layer.buffers["running_mean"])
            layer.buffers["running_mean"][:] = rng.normal(0, 1, channels)
            layer.buffers["running_var"][:] = rng.uniform(0.5, 2, channels)
            layer.params["gamma"][:] = rng.uniform(0.5, 1.5, channels)
            layer.params["beta"][:] = rng.normal(0, 0.5, channels)
    inputs = Inputs(shape, None, {"method": "scale", "shift": 0.5, "scale": 2.0}, 3, None)
    model = network_to_onnx(net, inputs, "mse", case)
    raw = rng.normal(0, 2, (16, *shape)).astype(np.float32)
    expected = net.predict((raw - np.float32(0.5)) / np.float32(2.0))
    assert relative_error(run_onnx(model, raw)["scores"], expected) < 1e-5


def test_one_sigmoid_logit_gives_two_class_probabilities():
    net = Network.from_specs([{"dense": {"units": 1}}], (3,), np.random.default_rng(0))
    inputs = Inputs((3,), None, {"method": "none", "shift": 0.0, "scale": 1.0}, 2, ["no", "yes"])
    x = np.random.default_rng(1).normal(0, 3, (20, 3)).astype(np.float32)
    outputs = run_onnx(network_to_onnx(net, inputs, "binary_cross_entropy", "bce"), x)
    p = 1 / (1 + np.exp(-net.predict(x)))
    np.testing.assert_allclose(outputs["probabilities"], np.hstack([1 - p, p]), atol=1e-6)


class Mystery(Layer):
    """A layer npnet could run but export has no mapping for."""

    registered_name = "mystery"

    def forward(self, x, training):
        return x


def test_a_layer_without_a_mapping_is_refused_by_name():
    net = Network([Mystery()], (4,))
    net.layers[0].build((4,), np.random.default_rng(0), np.dtype(np.float32))
    inputs = Inputs((4,), None, {"method": "none", "shift": 0.0, "scale": 1.0}, 2, None)
    with pytest.raises(RunError, match=r"model.layers\[0\] \(mystery\) has no ONNX mapping"):
        network_to_onnx(net, inputs, "mse", "mystery")
