"""What data read from the user's own files must satisfy before it is trained on, and the
options those datasets share (`path`, `class_names`, the seeded test split).

Every failure is one `DataError` line naming the file and what is wrong with it, e.g.

    data/iris.npz: labels must be the integers 0..2, found 0, 1, 3
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from npnet.errors import ConfigError, DataError
from npnet.validate import non_negative_int, number

SHOWN_VALUES = 8  # distinct offending values listed in a message


def some(values: np.ndarray) -> str:
    """ "0, 1, 3" for a few values, "0, 1, 2, ... (12 distinct)" for many."""
    listed = ", ".join(repr(v) if isinstance(v, str) else f"{v:g}" for v in values.tolist())
    if len(values) <= SHOWN_VALUES:
        return listed
    head = ", ".join(listed.split(", ")[:SHOWN_VALUES])
    return f"{head}, ... ({len(values)} distinct)"


def file_option(name: str, value: Any) -> Path:
    """A file or directory option (`path`, `test_path`) as a Path."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"'{name}' must be a file path, got {value!r}")
    return Path(value).expanduser()


def class_names_option(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"'class_names' must be a list of names, one per class, got {value!r}")
    return list(value)


def test_split_options(test_fraction: Any, seed: Any) -> tuple[float, int]:
    fraction = number("test_fraction", test_fraction, low=0, high=1, low_open=True, high_open=True)
    return fraction, non_negative_int("seed", seed)


def labels(source: str, y: np.ndarray) -> np.ndarray:
    """y (N,) or (N, 1) as int64 class numbers; integral floats count as integers."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{source}: labels must be one per sample, shape (N,), got {y.shape}")
    if y.dtype.kind not in "biuf":
        raise DataError(
            f"{source}: labels must be integers 0..C-1, found {y.dtype} values "
            f"{some(np.unique(y)[: SHOWN_VALUES + 1])}"
        )
    if y.dtype.kind == "f":
        bad = np.unique(y[~(np.isfinite(y) & (y == np.round(y)))])
        if len(bad):
            raise DataError(f"{source}: labels must be integers 0..C-1, found {some(bad)}")
    return y.astype(np.int64)


def count_classes(parts: list[tuple[str, np.ndarray]], class_names: list[str] | None) -> int:
    """The number of classes C of the labels in `parts` ((source, y int64) pairs): the
    number of `class_names`, else max + 1, where every class 0..C-1 must occur somewhere."""
    found = np.unique(np.concatenate([y for _, y in parts]))
    if class_names is not None:
        count = len(class_names)
        for source, y in parts:
            outside = np.unique(y[(y < 0) | (y >= count)])
            if len(outside):
                raise DataError(
                    f"{source}: labels must be the integers 0..{count - 1} "
                    f"({count} class_names), found {some(outside)}"
                )
        return count
    sources = ", ".join(dict.fromkeys(source for source, _ in parts))
    count = int(found.max()) + 1
    missing = np.setdiff1d(np.arange(count), found)
    if found.min() < 0 or len(missing):
        gap = f" (no {some(missing)})" if found.min() >= 0 else ""
        raise DataError(
            f"{sources}: labels must be the integers 0..C-1 with every class present, "
            f"found {some(found)}{gap}"
        )
    return count


def same_length(source: str, x: np.ndarray, y: np.ndarray, names: tuple[str, str]) -> None:
    if len(x) != len(y):
        raise DataError(
            f"{source}: {names[0]} has {len(x)} samples but {names[1]} has {len(y)} labels"
        )


def finite(source: str, x: np.ndarray, name: str) -> None:
    """No NaN or infinite inputs: they would make every loss NaN from the first batch."""
    bad = ~np.isfinite(x)
    if bad.any():
        first = np.argwhere(bad)[0]
        raise DataError(
            f"{source}: {name} has {int(bad.sum())} NaN or infinite values "
            f"(the first in sample {first[0]}); remove or fill them"
        )


def as_inputs(source: str, x: np.ndarray, name: str) -> tuple[np.ndarray, float | None]:
    """x as (N, D) features or (N, C, H, W) images ((N, H, W) gains C = 1), and the images'
    natural maximum for normalization (255 for uint8, else the largest value; None for
    features, which are scaled per feature)."""
    if x.dtype.kind not in "biuf":
        raise DataError(f"{source}: {name} must be numeric, got {x.dtype}")
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim not in (2, 4) or len(x) == 0:
        raise DataError(
            f"{source}: {name} must be (N, D) features, (N, H, W) or (N, C, H, W) images "
            f"with N > 0, got shape {x.shape}"
        )
    if x.dtype.kind == "f":
        finite(source, x, name)
    if x.ndim == 2:
        return x, None
    if x.dtype == np.uint8:
        return x, 255.0
    return x, float(x.max()) if x.max() > 0 else 1.0


def split_test(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int, source: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x_train, y_train, x_test, y_test: `fraction` of the samples, drawn with `seed`, become
    the test split (sorted indices keep the file's order within each split)."""
    n = len(x)
    n_test = round(fraction * n)
    if not 0 < n_test < n:
        raise DataError(
            f"{source}: test_fraction {fraction:g} of {n} samples leaves "
            f"{n_test} for testing and {n - n_test} for training; both need at least one"
        )
    order = np.random.default_rng(seed).permutation(n)
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    return x[train], y[train], x[test], y[test]
