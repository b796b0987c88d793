"""The served run: one run directory's network, its summary, and a prediction as JSON.

An upload goes bytes -> pixels (`read_image`) -> MNIST's 28×28 format (`prepare_digit`:
light ink on dark in [0, 1], 20 px box, centred by centre of mass) -> the run's own
normalization and network (`Predictor`); a JSON array is already such a digit and skips
the first two steps. The answer holds the probabilities, the class, the digit the network
saw and, for a CNN, its first convolution's feature maps (before the activation).
"""

from __future__ import annotations

import io
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from npnet.data.digits import prepare_digit, read_image
from npnet.engine import runs
from npnet.errors import DataError
from npnet.tools.predict import Predictor

FORMATS = ("PNG", "JPEG")
MAX_PIXELS = 25_000_000  # a 12-megapixel phone photo fits twice; a decompression bomb does not


class BadRequest(Exception):
    """A request the client must change: answered with HTTP `status` and {"error": message}."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def check_image(data: bytes) -> None:
    """Refuse, from the header alone, what is not a PNG or JPEG image (400) or has more
    than MAX_PIXELS pixels (413), before anything is decoded."""
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


def pixels(data: bytes) -> np.ndarray:
    """The pixels of a checked PNG or JPEG as `read_image` gives them (EXIF orientation,
    transparency and 16-bit grey included). read_image reads files, so the bytes pass
    through a temporary one that only this call knows; 400 if they do not decode."""
    with tempfile.NamedTemporaryFile(prefix="npnet-serve-", suffix=".image") as file:
        file.write(data)
        file.flush()
        try:
            return read_image(file.name)
        except DataError as error:  # damaged data after a good header
            raise BadRequest(400, str(error).removeprefix(f"{file.name}: ")) from None


class ServedRun:
    """A run's network, ready to answer predictions from several threads (one at a time:
    the layers keep per-call caches, so two forward passes must not interleave)."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.predictor = Predictor(run_dir)
        layers = self.predictor.net.layers
        self.conv_layer = next(
            (i for i, layer in enumerate(layers) if layer.name == "conv2d"), None
        )
        self.lock = threading.Lock()

    def summary(self) -> dict[str, Any]:
        """What GET /api/run answers: the run's name, figures, classes and layers."""
        saved = runs.read_summary(self.run_dir)
        config, net = self.predictor.config, self.predictor.net
        layers = [
            row | {"output_shape": list(row["output_shape"]), "args": next(iter(spec.values()))}
            for row, spec in zip(net.summary(), config.model.layers, strict=True)
        ]
        return {
            "run": self.run_dir.name,
            "name": config.name,
            "status": saved.get("status"),
            "test_accuracy": saved.get("test_accuracy"),
            "epochs": saved.get("epochs_completed"),
            "num_params": net.num_params(),
            "input_shape": list(net.input_shape),
            "classes": self.predictor.class_names,
            "layers": layers,
            "feature_maps": self.conv_layer is not None,
        }

    def predict_upload(self, data: bytes) -> dict[str, Any]:
        check_image(data)
        try:
            digit = prepare_digit(pixels(data))
        except DataError as error:  # an image with no ink
            raise BadRequest(422, str(error)) from None
        return self.predict_array(digit)

    def predict_array(self, digit: np.ndarray) -> dict[str, Any]:
        """The answer for one (28, 28) digit in [0, 1], light on dark."""
        if not digit.any():
            raise BadRequest(422, "the image has no ink: every pixel is 0 (draw a digit)")
        images = digit[None]
        with self.lock:
            probabilities = self.predictor.probabilities(images)[0]
            maps = None if self.conv_layer is None else self.predictor.feature_maps(images)[0]
        answer = {
            "class": int(probabilities.argmax()),
            "probabilities": probabilities.tolist(),
            "image": rounded(digit, 3),
            "feature_maps": None,
        }
        if maps is not None:
            answer["feature_maps"] = {
                "layer": self.conv_layer,
                "shape": list(maps.shape),
                "maps": rounded(maps, 4),
            }
        return answer


def rounded(x: np.ndarray, decimals: int) -> list:
    """`x` as nested lists of floats with `decimals` decimals. Rounded in float64: a float32
    0.1234 is 0.12340000271797180 as a Python float, and 18 characters in JSON."""
    return np.round(x.astype(np.float64), decimals).tolist()
