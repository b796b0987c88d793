"""A trained run as a digit classifier: prepared 28×28 images in, class probabilities out.

    predictor = Predictor(Path("runs/20261201-093012-cnn"))
    images = np.stack([prepare_digit(read_image(p)) for p in paths])   # (N, 28, 28) in [0, 1]
    p = predictor.probabilities(images)                                 # (N, C), rows sum to 1
    maps = predictor.feature_maps(images)                               # (N, F, 28, 28)

The images go through the run's own normalization, the one its training data had:
x' = (x · image_max − shift) / scale, x · image_max being the raw pixel values (0..255 for
MNIST). The network is rebuilt from config.yaml and weights.npz alone (npnet.engine.inputs).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from npnet.data import apply_normalization
from npnet.data.digits import IMAGE_SUFFIXES, SIZE, prepare_digit, read_image, unit_range
from npnet.engine.inputs import load_network
from npnet.errors import DataError, RunError
from npnet.functional.activations import sigmoid, softmax


def output_kind(last_layer: str, loss: str, output_shape: tuple[int, ...]) -> str | None:
    """How the network's output becomes probabilities: "probabilities" (a softmax last
    layer), "softmax" (logits of softmax_cross_entropy), "sigmoid" (one logit of
    binary_cross_entropy), or None when the outputs are scores of another kind."""
    if last_layer == "softmax":
        return "probabilities"
    if loss == "softmax_cross_entropy":
        return "softmax"
    if loss == "binary_cross_entropy" and tuple(output_shape) == (1,):
        return "sigmoid"
    return None


class Predictor:
    """A run's network, ready to classify (N, 28, 28) images in [0, 1], light on dark.

    `class_names` has one name per class: the dataset's names when it records them, else
    "0", "1", ...
    """

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.config, self.inputs, self.net = load_network(self.run_dir)
        shape, loss = self.inputs.shape, self.config.loss.name
        if self.inputs.num_classes is None:
            raise RunError(f"{run_dir}: a regression run; predict needs a classifier")
        self.output = output_kind(self.net.layers[-1].name, loss, self.net.output_shape)
        if self.output is None:
            raise RunError(
                f"{run_dir}: trained with loss {loss!r} on outputs {list(self.net.output_shape)}"
                ", which are not probabilities; predict needs softmax_cross_entropy, "
                "binary_cross_entropy on one logit, or a softmax last layer"
            )
        if self.inputs.image_max is None or int(np.prod(shape)) != SIZE * SIZE:
            raise RunError(
                f"{run_dir}: the network takes inputs of shape {list(shape)}; predict prepares "
                f"{SIZE}x{SIZE} grey digit images (MNIST's format)"
            )
        self.num_classes = self.inputs.num_classes
        self.class_names = self.inputs.class_names or [str(c) for c in range(self.num_classes)]

    def network_input(self, images: np.ndarray) -> np.ndarray:
        """Images (N, 28, 28) in [0, 1] as the network takes them: (N, *input_shape) float32,
        normalized as the training data was."""
        images = np.asarray(images)
        if images.ndim != 3 or images.shape[1:] != (SIZE, SIZE):
            raise DataError(f"expected images of shape (N, {SIZE}, {SIZE}), got {images.shape}")
        if images.size and not (images.min() >= 0 and images.max() <= 1):
            raise DataError(
                f"image values must be in [0, 1], got {images.min():g}..{images.max():g}"
            )
        raw = images.astype(np.float32) * np.float32(self.inputs.image_max)
        x = apply_normalization(raw, self.inputs.normalization)
        return x.reshape(len(x), *self.inputs.shape)

    def scores(self, images: np.ndarray) -> np.ndarray:
        """The network's outputs (N, C) (or (N, 1) for one logit) in evaluation mode."""
        return self.net.predict(self.network_input(images))

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, C) float32 class probabilities, each row summing to 1: softmax of the logits
        (one sigmoid logit s gives [1 − σ(s), σ(s)])."""
        out = self.scores(images)
        if self.output == "sigmoid":
            p = sigmoid(out)
            return np.concatenate([1 - p, p], axis=1)
        return softmax(out) if self.output == "softmax" else out

    def feature_maps(self, images: np.ndarray) -> np.ndarray:
        """The first conv2d layer's output, before its activation, as `npnet features`
        shows it: (N, F, OH, OW). A network without a convolution is a RunError."""
        x = self.network_input(images)
        for layer in self.net.layers:
            x = layer.forward(x, training=False)
            if layer.name == "conv2d":
                return x
        raise RunError(f"{self.run_dir}: the model has no conv2d layer to show feature maps of")


# --- the inputs of `npnet predict`: image files, directories of them, arrays ---------------


@dataclass(frozen=True)
class Prepared:
    """One input as the network sees it: `label` names it (the file, or file[i] for the
    i-th image of an array), `image` is (28, 28) float32 in [0, 1]."""

    label: str
    image: np.ndarray


def prepare_inputs(paths: list[Path]) -> tuple[list[Prepared], list[str]]:
    """Every usable input and one message per input that is not, in the order given.

    An image file is read and prepared (npnet.data.digits.prepare_digit); a directory gives
    its image files (by suffix, sorted, not recursing); a .npy or .npz file gives its 28×28
    images, (28, 28), (N, 28, 28) or (N, 1, 28, 28), taken as they are: already in MNIST's
    format, light on dark, values 0..255 or 0..1.
    """
    prepared: list[Prepared] = []
    problems: list[str] = []
    for path in paths:
        try:
            if path.is_dir():
                files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
                if not files:
                    raise DataError(
                        f"{path}: no images in this directory (looked for "
                        f"{', '.join(IMAGE_SUFFIXES)})"
                    )
            else:
                files = [path]
        except OSError as error:
            problems.append(f"{path}: cannot read ({error.strerror})")
            continue
        except DataError as error:
            problems.append(str(error))
            continue
        for file in files:
            try:
                if file.suffix.lower() in (".npy", ".npz"):
                    prepared += _arrays(file)
                else:
                    prepared.append(Prepared(str(file), _digit(file)))
            except DataError as error:
                problems.append(str(error))
    return prepared, problems


def _digit(path: Path) -> np.ndarray:
    try:
        return prepare_digit(read_image(path))
    except DataError as error:
        message = str(error)
        raise DataError(
            message if message.startswith(str(path)) else f"{path}: {message}"
        ) from None


def _arrays(path: Path) -> list[Prepared]:
    """The 28×28 images of a .npy file, or of every array in a .npz file."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):  # a .npy file: one array
            arrays = {"": loaded}
        else:
            with loaded:
                arrays = {key: loaded[key] for key in loaded.files}
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: not a readable NumPy array file ({error})") from None
    prepared = []
    for key, array in arrays.items():
        name = f"{path}[{key}]" if key else str(path)
        images = array.reshape(-1, SIZE, SIZE) if array.shape[-2:] == (SIZE, SIZE) else None
        if images is None or array.ndim > 4 or (array.ndim == 4 and array.shape[1] != 1):
            raise DataError(
                f"{name}: expected 28x28 images, (28, 28), (N, 28, 28) or (N, 1, 28, 28), "
                f"got shape {array.shape}"
            )
        try:
            images = unit_range(images)
        except DataError as error:
            raise DataError(f"{name}: {error}") from None
        single = array.ndim == 2
        prepared += [
            Prepared(name if single else f"{name}[{i}]", image) for i, image in enumerate(images)
        ]
    return prepared
