"""The registered datasets: builders that return the raw train and test splits.

Each builder's keyword arguments are the dataset's options in a config (`data.options`),
checked here so a bad value fails with the option's name. Synthetic sets draw everything
from `seed`, so the same options give the same data on every machine. scikit-learn is
imported inside the builders that use it: it takes most of a second, which every CLI call
(even `--help`) would otherwise pay.
"""

from __future__ import annotations

import numpy as np

from npnet.data.dataset import Splits
from npnet.data.mnist import MNIST
from npnet.data.mnist_like import idx_splits
from npnet.registry import DATASETS
from npnet.validate import non_negative_int, number, positive_int


@DATASETS.register("mnist")
def mnist(root: str | None = None) -> Splits:
    """Handwritten digits, 60,000 train and 10,000 test images of (1, 28, 28), uint8 0..255.

    `root` is searched first for the IDX files (see `npnet.data.mnist.find_mnist`).
    """
    digits = [str(d) for d in range(10)]
    return idx_splits(MNIST, root, digits, "MNIST handwritten digits (LeCun et al., 1998)")


@DATASETS.register("digits")
def digits() -> Splits:
    """scikit-learn's bundled 8x8 digits: 1,797 images of (1, 8, 8), values 0..16.

    A fixed stratified split: 20 % test (360 images), `random_state=0`.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = bunch.images.astype(np.uint8)[:, None]
    x_train, x_test, y_train, y_test = train_test_split(
        images, bunch.target, test_size=0.2, stratify=bunch.target, random_state=0
    )
    return Splits(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=10,
        image_max=16.0,
        info={"description": "UCI optical handwritten digits, 8x8 (scikit-learn load_digits)"},
    )


@DATASETS.register("linear")
def linear(
    n_train: int = 200,
    n_test: int = 100,
    n_features: int = 1,
    noise: float = 0.1,
    seed: int = 0,
) -> Splits:
    """Linear regression: y = X w_true + b_true + ε, X ~ N(0, 1), ε ~ N(0, noise²).

    X: (N, n_features), y: (N, 1). w_true (n_features values) ~ U(-3, 3) and b_true ~ U(-2, 2)
    are drawn with `seed` and returned in `info`, so a fitted model can be compared with them
    (uniform rather than normal so the slope is rarely too flat to see in a plot).
    """
    n_train, n_test, n_features, seed = _sizes(n_train, n_test, n_features, seed)
    noise = number("noise", noise, low=0.0)
    rng = np.random.default_rng(seed)
    w_true = rng.uniform(-3.0, 3.0, (n_features, 1))
    b_true = float(rng.uniform(-2.0, 2.0))
    x = rng.standard_normal((n_train + n_test, n_features))
    y = x @ w_true + b_true + noise * rng.standard_normal((n_train + n_test, 1))
    return Splits(
        x_train=x[:n_train],
        y_train=y[:n_train],
        x_test=x[n_train:],
        y_test=y[n_train:],
        num_classes=None,
        info={
            "description": "y = X w_true + b_true + noise",
            "w_true": w_true[:, 0].tolist(),
            "b_true": b_true,
        },
    )


@DATASETS.register("blobs")
def blobs(
    n_train: int = 400,
    n_test: int = 100,
    n_features: int = 2,
    centers: int = 3,
    cluster_std: float = 1.0,
    seed: int = 0,
) -> Splits:
    """Isotropic Gaussian clusters, one class per center (scikit-learn make_blobs).

    X: (N, n_features), y: (N,) in 0..centers-1; the centers are returned in `info`.
    """
    n_train, n_test, n_features, seed = _sizes(n_train, n_test, n_features, seed)
    centers = positive_int("centers", centers)
    cluster_std = number("cluster_std", cluster_std, low=0.0, low_open=True)
    from sklearn.datasets import make_blobs

    x, y, center_points = make_blobs(
        n_samples=n_train + n_test,
        n_features=n_features,
        centers=centers,
        cluster_std=cluster_std,
        random_state=seed,
        return_centers=True,
    )
    return Splits(
        x_train=x[:n_train],
        y_train=y[:n_train],
        x_test=x[n_train:],
        y_test=y[n_train:],
        num_classes=centers,
        info={
            "description": f"{centers} Gaussian blobs in {n_features} dimensions",
            "centers": center_points.tolist(),
        },
    )


@DATASETS.register("moons")
def moons(n_train: int = 400, n_test: int = 100, noise: float = 0.1, seed: int = 0) -> Splits:
    """Two interleaving half circles in 2-D, two classes (scikit-learn make_moons).

    X: (N, 2), y: (N,) in {0, 1}; not linearly separable, so a hidden layer is needed.
    """
    n_train, n_test, _, seed = _sizes(n_train, n_test, 2, seed)
    noise = number("noise", noise, low=0.0)
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=n_train + n_test, noise=noise, random_state=seed)
    return Splits(
        x_train=x[:n_train],
        y_train=y[:n_train],
        x_test=x[n_train:],
        y_test=y[n_train:],
        num_classes=2,
        info={"description": "two interleaving half moons"},
    )


def _sizes(n_train: int, n_test: int, n_features: int, seed: int) -> tuple[int, int, int, int]:
    """The options every synthetic set shares, checked."""
    return (
        positive_int("n_train", n_train),
        positive_int("n_test", n_test),
        positive_int("n_features", n_features),
        non_negative_int("seed", seed),
    )
