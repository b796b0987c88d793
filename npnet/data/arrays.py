"""Your own arrays as a dataset: a NumPy .npz file or a CSV table.

    data: {dataset: npz, path: faces.npz, x: images, y: labels}
    data: {dataset: csv, path: iris.csv, label: species}

Inputs are (N, D) features or (N, H, W) / (N, C, H, W) images; labels are the integers
0..C-1, and C and the input shape come from the data. The test split is given (`x_test` and
`y_test` arrays, or `test_path`, a second file of the same layout) or drawn: `test_fraction`
of the samples, with `seed`. Bad data is a `DataError` naming the file and the problem.
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from npnet.data.checks import (
    as_inputs,
    class_names_option,
    count_classes,
    file_option,
    labels,
    same_length,
    split_test,
    test_split_options,
)
from npnet.data.dataset import Splits
from npnet.errors import ConfigError, DataError
from npnet.registry import DATASETS, did_you_mean


@DATASETS.register("npz")
def npz(
    path: str,
    x: str = "x",
    y: str = "y",
    x_test: str | None = None,
    y_test: str | None = None,
    test_path: str | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    class_names: list[str] | None = None,
) -> Splits:
    """Arrays of a NumPy .npz file: inputs `x` (N, D) or (N, [C,] H, W), labels `y` (N,).

    The test split: arrays `x_test`/`y_test` of the file (of `test_path` when given, where
    `x`/`y` are the default names), else `test_fraction` of the samples drawn with `seed`.
    Class names: `class_names`, else a `class_names` array in the file, else the numbers.
    """
    file = file_option("path", path)
    if (x_test is None) != (y_test is None):
        raise ConfigError("give both 'x_test' and 'y_test' (the test arrays' names), or neither")
    fraction, seed = test_split_options(test_fraction, seed)
    names = class_names_option(class_names)
    arrays = read_npz(file)
    x_train, y_train = npz_pair(file, arrays, x, y)
    if test_path is not None:
        test_file = file_option("test_path", test_path)
        x_test_all, y_test_all = npz_pair(test_file, read_npz(test_file), x_test or x, y_test or y)
        test_source = str(test_file)
    elif x_test is not None:
        x_test_all, y_test_all = npz_pair(file, arrays, x_test, y_test)
        test_source = str(file)
    else:
        x_train, y_train, x_test_all, y_test_all = split_test(
            x_train, y_train, fraction, seed, str(file)
        )
        test_source = str(file)
    if x_test_all.shape[1:] != x_train.shape[1:]:
        raise DataError(
            f"{test_source}: test inputs have shape {x_test_all.shape[1:]} per sample, "
            f"the training inputs of {file} {x_train.shape[1:]}"
        )
    if names is None and "class_names" in arrays:
        names = [str(name) for name in np.asarray(arrays["class_names"]).tolist()]
    num_classes = count_classes([(str(file), y_train), (test_source, y_test_all)], names)
    _, image_max = as_inputs(str(file), x_train, x)
    return Splits(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test_all,
        y_test=y_test_all,
        num_classes=num_classes,
        image_max=image_max,
        info={"description": f"arrays {x!r} and {y!r} of {file}", "path": str(file)},
        class_names=names,
    )


def read_npz(file: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz file; pickled objects are refused, as for weights."""
    try:
        with np.load(file, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise DataError(f"{file}: no such file") from None
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        raise DataError(f"{file}: not a readable .npz file of plain arrays ({error})") from None


def npz_pair(
    file: Path, arrays: dict[str, np.ndarray], x_key: str, y_key: str
) -> tuple[np.ndarray, np.ndarray]:
    """The inputs and int64 labels stored under `x_key` and `y_key`, checked."""
    for key in (x_key, y_key):
        if key not in arrays:
            held = ", ".join(sorted(arrays)) or "nothing"
            raise DataError(
                f"{file}: no array {key!r}{did_you_mean(key, list(arrays))} (it holds: {held})"
            )
    x, _ = as_inputs(str(file), arrays[x_key], x_key)
    y = labels(f"{file}: {y_key!r}", arrays[y_key])
    same_length(str(file), x, y, (repr(x_key), repr(y_key)))
    return x, y


@DATASETS.register("csv")
def csv_table(
    path: str,
    label: str,
    test_path: str | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    class_names: list[str] | None = None,
) -> Splits:
    """A CSV table with a header row: column `label` holds the class (0..C-1), every other
    column is a numeric feature, so X is (N, D). The test split: the rows of `test_path`
    (the same columns), else `test_fraction` of the rows drawn with `seed`."""
    file = file_option("path", path)
    if not isinstance(label, str) or not label:
        raise ConfigError(f"'label' must be the name of the label column, got {label!r}")
    fraction, seed = test_split_options(test_fraction, seed)
    names = class_names_option(class_names)
    header, x_train, y_train = read_csv(file, label)
    if test_path is not None:
        test_file = file_option("test_path", test_path)
        test_header, x_test, y_test = read_csv(test_file, label)
        if test_header != header:
            raise DataError(
                f"{test_file}: columns {', '.join(test_header)} differ from those of {file}: "
                f"{', '.join(header)}"
            )
        test_source = str(test_file)
    else:
        x_train, y_train, x_test, y_test = split_test(x_train, y_train, fraction, seed, str(file))
        test_source = str(file)
    num_classes = count_classes([(str(file), y_train), (test_source, y_test)], names)
    features = [column for column in header if column != label]
    return Splits(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=num_classes,
        image_max=None,
        info={
            "description": f"{len(features)} feature columns of {file}, label {label!r}",
            "features": features,
        },
        class_names=names,
    )


def read_csv(file: Path, label: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The header, the features X (N, D) as float32 and the labels y (N,) of a CSV file."""
    try:
        with file.open(newline="") as handle:
            reader = csv.reader(handle)
            rows, lines = [], []
            for row in reader:
                if row and any(cell.strip() for cell in row):  # blank lines are skipped
                    rows.append([cell.strip() for cell in row])
                    lines.append(reader.line_num)
    except FileNotFoundError:
        raise DataError(f"{file}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"{file}: not a readable CSV file ({error})") from None
    if not rows:
        raise DataError(f"{file}: empty; a header row naming the columns is required")
    header = rows[0]
    if all(_is_number(cell) for cell in header):
        raise DataError(
            f"{file}: line 1 must be a header row naming the columns, got numbers: "
            f"{', '.join(header)}"
        )
    if len(set(header)) != len(header) or "" in header:
        raise DataError(f"{file}: the header needs distinct, non-empty column names: {header}")
    if label not in header:
        raise DataError(
            f"{file}: no column {label!r}{did_you_mean(label, header)} "
            f"(columns: {', '.join(header)})"
        )
    if len(rows) == 1:
        raise DataError(f"{file}: a header but no data rows")
    for row, line in zip(rows[1:], lines[1:], strict=True):
        if len(row) != len(header):
            raise DataError(
                f"{file}: line {line} has {len(row)} cells, the header has {len(header)}"
            )
    cells = np.array(rows[1:], dtype=str)
    try:
        values = cells.astype(np.float64)
    except ValueError:
        raise _first_bad_cell(file, header, cells, lines[1:], label) from None
    column = header.index(label)
    features = np.delete(values, column, axis=1)
    bad = ~np.isfinite(features)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        name = [c for c in header if c != label][col]
        cell = str(cells[row, col + (col >= column)])
        raise DataError(
            f"{file}: line {lines[1 + row]}, column {name!r}: {cell!r} is not a finite number"
        )
    y = labels(f"{file}: column {label!r}", values[:, column])
    return header, features.astype(np.float32), y


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _first_bad_cell(
    file: Path, header: list[str], cells: np.ndarray, lines: list[int], label: str
) -> Any:
    """The DataError for the first cell that is not a number (only called on failure)."""
    for (row, col), cell in np.ndenumerate(cells):
        if not _is_number(cell):
            what = "not an integer label 0..C-1" if header[col] == label else "not a number"
            where = f"{file}: line {lines[row]}, column {header[col]!r}"
            return DataError(f"{where}: {str(cell)!r} is {what}")
    return DataError(f"{file}: a cell is not a number")
