"""The Predictor (npnet.tools.predict): a run's network on prepared images, normalized
exactly as its training data was."""

import json
import shutil

import numpy as np
import pytest
from tiny import TINY_MLP

from npnet.config import load_config
from npnet.data.mnist import load_mnist
from npnet.engine.evaluate import load_run
from npnet.engine.inputs import describe_inputs, read_inputs
from npnet.engine.loop import fit
from npnet.errors import DataError, RunError
from npnet.functional.activations import softmax
from npnet.tools.explain import feature_maps
from npnet.tools.predict import Predictor


@pytest.fixture(scope="module")
def mnist_test():
    _, _, x_test, y_test = load_mnist(None)
    return x_test.reshape(-1, 28, 28), y_test


def test_probabilities_are_the_trained_networks_on_its_own_normalized_test_set(cnn_run, mnist_test):
    """Pixels / 255 through the Predictor give what the training pipeline's own test split
    (normalized by npnet.data.load_dataset) gives: the same normalization, the same network."""
    predictor = Predictor(cnn_run)
    images, labels = mnist_test
    p = predictor.probabilities(images[:500] / 255.0)
    exp = load_run(cnn_run)
    reference = softmax(exp.net.predict(exp.dataset.x_test[:500]))
    assert p.shape == (500, 10) and p.dtype == np.float32
    np.testing.assert_allclose(p, reference, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    assert np.mean(p.argmax(axis=1) == labels[:500]) > 0.85
    assert predictor.class_names == [str(c) for c in range(10)]


def test_the_recorded_inputs_equal_those_rebuilt_from_the_data(cnn_run, tmp_path):
    """summary.json's "inputs" spare predict the data; an older run without them rebuilds
    them from its config, and both ways give the same numbers."""
    recorded = json.loads((cnn_run / "summary.json").read_text())["inputs"]
    assert recorded["shape"] == [1, 28, 28] and recorded["image_max"] == 255.0
    assert recorded["normalization"]["method"] == "standard"
    old_run = tmp_path / "old-run"
    shutil.copytree(cnn_run, old_run)
    summary = json.loads((old_run / "summary.json").read_text())
    del summary["inputs"]
    (old_run / "summary.json").write_text(json.dumps(summary))
    config = load_config(cnn_run / "config.yaml")
    assert read_inputs(old_run, config) == read_inputs(cnn_run, config)
    assert read_inputs(cnn_run, config) == describe_inputs(load_run(cnn_run).dataset)


def test_feature_maps_are_the_first_convolutions_output(cnn_run, mnist_test):
    images, _ = mnist_test
    maps = Predictor(cnn_run).feature_maps(images[:3] / 255.0)
    assert maps.shape == (3, 16, 28, 28)
    np.testing.assert_allclose(maps[2], feature_maps(cnn_run, image=2)["maps"], atol=1e-6)


def test_images_of_the_wrong_shape_or_range_are_data_errors(cnn_run):
    predictor = Predictor(cnn_run)
    with pytest.raises(DataError, match=r"\(N, 28, 28\)"):
        predictor.probabilities(np.zeros((2, 1, 28, 28)))
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        predictor.probabilities(np.full((2, 28, 28), 255.0))


def train(write_config, tmp_path, text):
    run_dir, _ = fit(load_config(write_config(text)), tmp_path / "runs")
    return run_dir


def test_runs_predict_cannot_serve_are_refused_with_the_reason(write_config, tmp_path):
    eight_by_eight = train(write_config, tmp_path, TINY_MLP)
    with pytest.raises(RunError, match=r"shape \[1, 8, 8\]; predict prepares 28x28"):
        Predictor(eight_by_eight)
    mse = train(write_config, tmp_path, TINY_MLP + "loss: mse\n")
    with pytest.raises(RunError, match=r"'mse'.*not probabilities"):
        Predictor(mse)
    regression = train(
        write_config,
        tmp_path,
        "name: line\ndata: {dataset: linear, validation: 20}\n"
        "model: {layers: [{dense: {units: 1}}]}\nloss: mse\ntrain: {epochs: 1}\n",
    )
    with pytest.raises(RunError, match="regression"):
        Predictor(regression)
    (eight_by_eight / "weights.npz").unlink()
    with pytest.raises(RunError, match=r"no weights\.npz"):
        Predictor(eight_by_eight)
