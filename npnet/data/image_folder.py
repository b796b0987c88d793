"""A folder of images as a dataset, one sub-folder per class (read with Pillow).

    photos/                 data: {dataset: image_folder, path: photos, size: [32, 32],
      cat/ 001.png ...             channels: 3}
      dog/ 001.jpg ...
      owl/ ...

Class names are the sub-folders' names, sorted (class 0 is the first). With `train/` and
`test/` sub-trees (each holding the same class folders) those are the splits; otherwise
`test_fraction` of the images, drawn with `seed`, are the test split. Every image is
converted to grey (`channels: 1`) or RGB (`channels: 3`) and resized to `size` [H, W]
(bilinear), giving uint8 arrays (N, channels, H, W). Hidden files and files of other types
are skipped; an image that cannot be read is a `DataError` naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from npnet.data.checks import file_option, split_test, test_split_options
from npnet.data.dataset import Splits
from npnet.errors import ConfigError, DataError
from npnet.registry import DATASETS
from npnet.validate import positive_int

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MODES = {1: "L", 3: "RGB"}


@DATASETS.register("image_folder")
def image_folder(
    path: str,
    size: list[int],
    channels: int = 1,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Splits:
    """Images in one sub-folder per class, resized to `size` [H, W]: x (N, channels, H, W)
    uint8; `train/` and `test/` sub-trees are the splits, else a seeded `test_fraction`."""
    root = file_option("path", path)
    height, width = size_option(size)
    if channels not in MODES:
        raise ConfigError(f"'channels' must be 1 (grey) or 3 (RGB), got {channels!r}")
    fraction, seed = test_split_options(test_fraction, seed)
    if not root.is_dir():
        raise DataError(f"{root}: no such directory (expected one sub-folder of images per class)")
    trees = [root / "train", root / "test"]
    if trees[0].is_dir() != trees[1].is_dir():
        have, lack = (trees[0], trees[1]) if trees[0].is_dir() else (trees[1], trees[0])
        raise DataError(
            f"{root}: has {have.name}/ but no {lack.name}/; give both, or put the class "
            "folders directly in it"
        )
    shape = (height, width)
    if trees[0].is_dir():
        classes = class_folders(trees[0])
        test_classes = class_folders(trees[1])
        if test_classes != classes:
            raise DataError(
                f"{trees[1]}: class folders {', '.join(test_classes)} differ from those of "
                f"{trees[0]}: {', '.join(classes)}"
            )
        x_train, y_train = read_tree(trees[0], classes, shape, channels)
        x_test, y_test = read_tree(trees[1], classes, shape, channels)
    else:
        classes = class_folders(root)
        x, y = read_tree(root, classes, shape, channels)
        x_train, y_train, x_test, y_test = split_test(x, y, fraction, seed, str(root))
    return Splits(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=len(classes),
        image_max=255.0,
        info={"description": f"{len(classes)} classes of images in {root}", "path": str(root)},
        class_names=classes,
    )


def size_option(size: Any) -> tuple[int, int]:
    if not isinstance(size, list) or len(size) != 2:
        raise ConfigError(f"'size' must be [height, width], e.g. [32, 32], got {size!r}")
    return positive_int("size", size[0]), positive_int("size", size[1])


def class_folders(tree: Path) -> list[str]:
    """The class names: the names of `tree`'s sub-folders, sorted, hidden ones skipped."""
    names = sorted(p.name for p in tree.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(names) < 2:
        raise DataError(
            f"{tree}: {len(names)} class folder{'s' * (len(names) != 1)}; expected one "
            "sub-folder of images per class, at least two"
        )
    return names


def read_tree(
    tree: Path, classes: list[str], shape: tuple[int, int], channels: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every image under tree/<class>/ as x (N, channels, H, W) uint8 and y (N,) int64."""
    images, labels = [], []
    for index, name in enumerate(classes):
        folder = tree / name
        files = sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise DataError(
                f"{folder}: the class folder {name!r} holds no images ({', '.join(IMAGE_SUFFIXES)})"
            )
        images += [read_image(file, shape, channels) for file in files]
        labels.append(np.full(len(files), index, dtype=np.int64))
    x = np.stack(images)
    x = x[:, None] if channels == 1 else x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x), np.concatenate(labels)


def read_image(file: Path, shape: tuple[int, int], channels: int) -> np.ndarray:
    """One image as uint8 (H, W) grey or (H, W, 3) RGB, resized bilinearly to `shape`."""
    try:
        with Image.open(file) as image:
            converted = image.convert(MODES[channels])
            resized = converted.resize(shape[::-1], Image.Resampling.BILINEAR)
            return np.asarray(resized, dtype=np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(f"{file}: cannot read the image ({error})") from None
