"""Fashion-MNIST and KMNIST: drop-in replacements for MNIST, in its very format.

Both are 60,000 train and 10,000 test 28x28 grey images of 10 classes, stored as MNIST's four
IDX files under MNIST's file names, so they are found, downloaded and decoded by the same
code (`npnet.data.mnist`), in their own folders (`fashion_mnist/`, `kmnist/`). No copy is
committed: the first use downloads them into the user cache, verified against the SHA-256
of the .gz files as their hosts serve them (the checksums torchvision pins).
"""

from __future__ import annotations

import os

from npnet.data.dataset import Splits
from npnet.data.mnist import IdxSource, load_idx
from npnet.errors import ConfigError
from npnet.registry import DATASETS

FASHION_MNIST = IdxSource(
    title="Fashion-MNIST",
    folder="fashion_mnist",
    sha256={
        "train-images-idx3-ubyte.gz": (
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"
        ),
        "train-labels-idx1-ubyte.gz": (
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"
        ),
        "t10k-images-idx3-ubyte.gz": (
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"
        ),
    },
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    hash_download=True,
)
FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

KMNIST = IdxSource(
    title="KMNIST",
    folder="kmnist",
    sha256={
        "train-images-idx3-ubyte.gz": (
            "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4"
        ),
        "train-labels-idx1-ubyte.gz": (
            "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17"
        ),
        "t10k-images-idx3-ubyte.gz": (
            "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5"
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c"
        ),
    },
    mirrors=(
        "https://codh.rois.ac.jp/kmnist/dataset/kmnist/",
        "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
    ),
    hash_download=True,
)
# The ten hiragana of Kuzushiji-MNIST (お き す つ な は ま や れ を), romanized so that every
# font can draw them on a plot.
KMNIST_CLASSES = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]


def idx_splits(
    source: IdxSource, root: str | None, class_names: list[str], description: str
) -> Splits:
    """The train and test splits of an MNIST-format dataset, images (N, 1, 28, 28) uint8."""
    if root is not None and not isinstance(root, str | os.PathLike):
        raise ConfigError(f"'root' must be a directory path or null, got {root!r}")
    x_train, y_train, x_test, y_test = load_idx(source, root)
    return Splits(
        x_train=x_train.reshape(-1, 1, 28, 28),
        y_train=y_train,
        x_test=x_test.reshape(-1, 1, 28, 28),
        y_test=y_test,
        num_classes=10,
        image_max=255.0,
        info={"description": description},
        class_names=class_names,
    )


@DATASETS.register("fashion_mnist")
def fashion_mnist(root: str | None = None) -> Splits:
    """Zalando's clothes, 60,000 train and 10,000 test images of (1, 28, 28), uint8 0..255.

    `root` is searched first, as for MNIST; the files are downloaded once if nowhere found.
    """
    return idx_splits(
        FASHION_MNIST, root, FASHION_CLASSES, "Fashion-MNIST, Zalando's article images"
    )


@DATASETS.register("kmnist")
def kmnist(root: str | None = None) -> Splits:
    """Kuzushiji-MNIST: ten cursive Japanese characters, 70,000 images of (1, 28, 28).

    `root` is searched first, as for MNIST; the files are downloaded once if nowhere found.
    """
    return idx_splits(KMNIST, root, KMNIST_CLASSES, "Kuzushiji-MNIST, cursive hiragana")
