"""`load_dataset`: a registered dataset, split, subset and normalized, ready to train on.

A builder in `DATASETS` returns `Splits` (the raw train and test data); `load_dataset` then
carves a validation set from the training split, optionally keeps fewer training examples,
and normalizes every split with statistics of the training part alone:

    scale:    images  x / max           (max = 255 for MNIST, 16 for digits)  → [0, 1]
              tabular (x - min) / (max - min), per feature
    standard: scale, then (x - mean) / std  (one scalar for images, per feature for tabular)

Both are one affine map, x' = (x - shift) / scale, recorded in `Dataset.normalization` so
new inputs (a prediction, an exported model) can be treated the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

import numpy as np

from npnet.errors import ConfigError
from npnet.registry import DATASETS
from npnet.validate import non_negative_int, one_of, positive_int

NORMALIZATIONS = ["none", "scale", "standard"]


@dataclass(frozen=True)
class Splits:
    """What a dataset builder returns: the raw train and test splits.

    x_*: (N, *input_shape), any numeric dtype; y_*: (N,) class labels or (N, 1) targets.
    `num_classes` is None for regression. `image_max` is the natural maximum of image
    pixels (255, 16); None marks tabular (N, D) data, which is min-max scaled per feature.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int | None
    image_max: float | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(repr=False)
class Dataset:
    """Train, validation and test splits as float32 inputs and int64 labels (or float32
    (N, 1) targets). With no validation split, x_val/y_val are empty (0 rows)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int | None
    info: dict[str, Any] = field(default_factory=dict)
    normalization: dict[str, Any] = field(default_factory=dict)
    image_max: float | None = None  # the raw images' natural maximum (Splits.image_max)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Per-sample input shape, e.g. (1, 28, 28) for MNIST or (2,) for moons."""
        return tuple(self.x_train.shape[1:])

    @property
    def task(self) -> str:
        return "regression" if self.num_classes is None else "classification"

    def __repr__(self) -> str:
        classes = "" if self.num_classes is None else f", classes={self.num_classes}"
        return (
            f"Dataset('{self.name}', train={self.x_train.shape}, val={self.x_val.shape}, "
            f"test={self.x_test.shape}, {self.task}{classes}, "
            f"normalization='{self.normalization.get('method')}')"
        )


def load_dataset(
    name: str,
    options: dict[str, Any] | None = None,
    *,
    validation: int | float = 0,
    normalize: str = "none",
    train_size: int | None = None,
    seed: int = 0,
) -> Dataset:
    """Build dataset `name` with its `options`, then split, subset and normalize it.

    validation: a count (0 = none) or a fraction in [0, 1) of the training split, drawn
        with `np.random.default_rng(seed)`; the test split is never touched.
    train_size: keep only this many of the remaining training examples (None = all).
    normalize: "none", "scale" or "standard"; statistics come from the training part only.
    """
    if options is not None and not isinstance(options, dict):
        raise ConfigError(f"'options' for dataset '{name}' must be a mapping, got {options!r}")
    normalize = one_of("normalize", normalize, NORMALIZATIONS)
    seed = non_negative_int("seed", seed)
    if train_size is not None:
        train_size = positive_int("train_size", train_size)
    splits: Splits = DATASETS.build(name, options)

    n = len(splits.x_train)
    n_val = _validation_count(validation, n)
    if train_size is not None and train_size > n - n_val:
        raise ConfigError(
            f"'train_size' must be at most {n - n_val} (the training examples left after "
            f"the validation split), got {train_size}"
        )
    x_train, y_train = splits.x_train, splits.y_train
    x_val, y_val = x_train[:0], y_train[:0]
    if n_val or train_size is not None:
        order = np.random.default_rng(seed).permutation(n)
        # Sorted indices keep the original relative order and gather memory front to back.
        val_index = np.sort(order[:n_val])
        train_index = np.sort(order[n_val:][:train_size])
        x_val, y_val = x_train[val_index], y_train[val_index]
        x_train, y_train = x_train[train_index], y_train[train_index]

    normalization = fit_normalization(normalize, x_train, splits.image_max)
    label_dtype = np.float32 if splits.num_classes is None else np.int64
    return Dataset(
        name=name,
        x_train=apply_normalization(x_train, normalization),
        y_train=np.array(y_train, dtype=label_dtype, order="C"),
        x_val=apply_normalization(x_val, normalization),
        y_val=np.array(y_val, dtype=label_dtype, order="C"),
        x_test=apply_normalization(splits.x_test, normalization),
        y_test=np.array(splits.y_test, dtype=label_dtype, order="C"),
        num_classes=splits.num_classes,
        info=dict(splits.info),
        normalization=normalization,
        image_max=splits.image_max,
    )


def _validation_count(validation: Any, n: int) -> int:
    """The number of validation examples `validation` asks for out of `n` training ones."""
    if isinstance(validation, bool) or not isinstance(validation, Real):
        count = None
    elif isinstance(validation, Integral):
        count = int(validation) if validation >= 0 else None
    else:
        count = round(validation * n) if 0 <= validation < 1 else None
    if count is None:
        raise ConfigError(
            f"'validation' must be an int >= 0 or a fraction in [0, 1), got {validation!r}"
        )
    if count >= n:
        raise ConfigError(
            f"'validation' must leave training examples: {count} of {n} asked, got {validation!r}"
        )
    if count == 0 and validation != 0:
        raise ConfigError(
            f"'validation' {validation!r} of {n} training examples rounds to 0; "
            "use a larger fraction, or 0 for no validation split"
        )
    return count


def fit_normalization(method: str, x_train: np.ndarray, image_max: float | None) -> dict:
    """The affine map x' = (x - shift) / scale for `method`, fitted on `x_train`.

    Images (image_max given) get scalar statistics, tabular (N, D) data one per feature.
    Returns {"method", "shift", "scale"} plus "mean" and "std" (of the scaled training
    data) for "standard"; values are floats or lists, so the dict can go into JSON.
    """
    if method == "none":
        return {"method": "none", "shift": 0.0, "scale": 1.0}
    if image_max is not None:
        low, span = np.float64(0.0), np.float64(image_max)
    else:
        low = x_train.min(axis=0).astype(np.float64)
        high = x_train.max(axis=0).astype(np.float64)
        # A constant feature has no range; leaving it unscaled avoids dividing by zero.
        span = np.where(high > low, high - low, 1.0)
    if method == "scale":
        return {"method": "scale", "shift": _plain(low), "scale": _plain(span)}
    raw_mean, raw_std = _mean_std(x_train, axis=None if image_max is not None else 0)
    mean = (raw_mean - low) / span
    std = raw_std / span
    std = np.where(std > 0, std, 1.0)
    return {
        "method": "standard",
        "shift": _plain(low + mean * span),
        "scale": _plain(span * std),
        "mean": _plain(mean),
        "std": _plain(std),
    }


def _mean_std(x: np.ndarray, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) std of x over `axis`, in float64.

    float64 because MNIST's 47 million pixels are too many for float32 sums; in blocks of
    about a million values because np.std would make a 376 MB float64 copy (and take 10×
    longer) for MNIST.
    """
    mean = x.mean(axis=axis, dtype=np.float64)
    rows = max(1, (1 << 20) // max(1, x[0].size))
    squares = sum(np.square(x[i : i + rows] - mean).sum(axis=axis) for i in range(0, len(x), rows))
    return mean, np.sqrt(squares / (x.size if axis is None else len(x)))


def apply_normalization(x: np.ndarray, normalization: dict) -> np.ndarray:
    """(x - shift) / scale as a new C-contiguous float32 array of x's shape."""
    out = np.array(x, dtype=np.float32, order="C")
    shift = np.asarray(normalization["shift"], dtype=np.float32)
    scale = np.asarray(normalization["scale"], dtype=np.float32)
    if np.any(shift != 0):
        out -= shift
    if np.any(scale != 1):
        out /= scale
    return out


def _plain(value: np.ndarray) -> float | list[float]:
    """A scalar as a float, an array as a list of floats."""
    value = np.asarray(value, dtype=np.float64)
    return float(value) if value.ndim == 0 else value.tolist()
