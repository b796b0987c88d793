"""The served run: one run directory's network, its summary, and a prediction as JSON.

An upload goes bytes -> decoded image -> MNIST-style 28×28 digit (`prepare_digit`, light
ink on dark, [0, 1]) -> the run's own normalization -> the network; a JSON array is already
such a digit and skips the first two steps. The answer holds the probabilities, the class,
the digit the network saw and, for a CNN, its first convolution's feature maps.
"""

from __future__ import annotations

import io
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from npnet.engine import runs
from npnet.errors import DataError

FORMATS = ("PNG", "JPEG")
MAX_PIXELS = 25_000_000  # a 12-megapixel phone photo fits twice; a decompression bomb does not


class BadRequest(Exception):
    """A request the client must change: answered with HTTP `status` and {"error": message}."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def decode_image(data: bytes) -> Image.Image:
    """The PNG or JPEG image in `data`, fully decoded; 400 for anything else, 413 for more
    than MAX_PIXELS pixels (checked from the header, before decoding)."""
    too_large = f"the image has over {MAX_PIXELS:,} pixels; send a smaller one"
    try:
        with warnings.catch_warnings():  # Pillow's own guard, for images far over MAX_PIXELS
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise BadRequest(400, "the body is not a PNG or JPEG image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadRequest(413, too_large) from None
    if image.format not in FORMATS:
        raise BadRequest(400, f"the body is a {image.format} image; send PNG or JPEG")
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise BadRequest(413, f"{too_large} (this one is {width}×{height})")
    try:
        image.load()
    except (OSError, ValueError) as error:  # truncated or corrupt data after a valid header
        raise BadRequest(400, f"the {image.format} image is damaged ({error})") from None
    return image


class ServedRun:
    """A run's network, ready to answer predictions from several threads (one at a time:
    the layers keep per-call caches, so two forward passes must not interleave)."""

    def __init__(self, run_dir: Path, data_dir: Path | None = None):
        self.run_dir = run_dir
        self.predictor = Predictor(run_dir, data_dir)
        self.lock = threading.Lock()

    def summary(self) -> dict[str, Any]:
        """What GET /api/run answers: the run's name, figures and layers."""
        saved = runs.read_summary(self.run_dir)
        config = runs.read_config(self.run_dir)
        net = self.predictor.net
        layers = [
            row | {"args": next(iter(spec.values())) or {}}
            for row, spec in zip(net.summary(), config.model.layers, strict=True)
        ]
        return {
            "run": self.run_dir.name,
            "name": saved.get("name", config.name),
            "status": saved.get("status"),
            "test_accuracy": saved.get("test_accuracy"),
            "epochs": saved.get("epochs_completed"),
            "num_params": net.num_params(),
            "input_shape": list(net.input_shape),
            "layers": [layer | {"output_shape": list(layer["output_shape"])} for layer in layers],
            "feature_maps": self.predictor.conv_layer is not None,
        }

    def predict_upload(self, data: bytes) -> dict[str, Any]:
        image = decode_image(data)
        try:
            digit = prepare_digit(image)
        except DataError as error:  # an image with no ink
            raise BadRequest(422, str(error)) from None
        return self.predict_array(digit)

    def predict_array(self, digit: np.ndarray) -> dict[str, Any]:
        """The answer for one (28, 28) digit in [0, 1]."""
        if not digit.any():
            raise BadRequest(422, "the image has no ink: every pixel is 0 (draw a digit)")
        with self.lock:
            probabilities, maps = self.predictor.predict(digit)
        answer = {
            "class": int(probabilities.argmax()),
            "probabilities": probabilities.tolist(),
            "image": np.round(digit, 3).tolist(),
            "feature_maps": None,
        }
        if maps is not None:
            answer["feature_maps"] = {
                "layer": self.predictor.conv_layer,
                "shape": list(maps.shape),
                "maps": np.round(maps, 4).tolist(),
            }
        return answer


# --- TEMPORARY: until issue 16's preprocessing and Predictor land (branch e16) -------------
# Replaced by npnet.data.digits.prepare_digit and npnet.tools.predict.Predictor.

from npnet.data.dataset import apply_normalization  # noqa: E402
from npnet.engine.evaluate import load_run  # noqa: E402
from npnet.functional.activations import softmax  # noqa: E402


def prepare_digit(image: Image.Image) -> np.ndarray:
    grey = np.asarray(image.convert("L").resize((28, 28)), dtype=np.float32) / 255
    if grey.mean() > 0.5:
        grey = 1 - grey
    if grey.max() < 0.1:
        raise DataError("the image has no ink")
    return grey


class Predictor:
    def __init__(self, run_dir: Path, data_dir: Path | None = None):
        exp = load_run(run_dir, data_dir)
        self.net = exp.net
        self.normalization = exp.dataset.normalization
        self.conv_layer = next(
            (i for i, layer in enumerate(self.net.layers) if layer.name == "conv2d"), None
        )

    def predict(self, digit: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        x = apply_normalization(255 * digit[None, None], self.normalization)
        probabilities = softmax(self.net.forward(x))[0]
        maps = None
        if self.conv_layer is not None:
            out = x
            for layer in self.net.layers[: self.conv_layer + 1]:
                out = layer.forward(out, training=False)
            maps = out[0]
        return probabilities, maps
