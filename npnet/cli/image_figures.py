"""Figures of images: the most confidently misclassified test images, the first conv
layer's kernels, and its feature maps for one input (`npnet features`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from npnet.cli.figure import matplotlib_figure, new_figure, save_figure
from npnet.config import Config
from npnet.engine.metrics import predicted_classes
from npnet.functional.activations import sigmoid, softmax

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MISCLASSIFIED_GRID = (4, 6)  # rows, columns
FILTER_COLUMNS = 8


def prediction_confidence(outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predicted class (N,) and the model's probability for it (N,) from outputs (N, C):
    softmax over classes, or for one logit column (N, 1) the sigmoid of binary classification."""
    predicted = predicted_classes(outputs)
    if outputs.shape[1] == 1:
        p_one = sigmoid(outputs[:, 0])
        return predicted, np.where(predicted == 1, p_one, 1.0 - p_one)
    return predicted, softmax(outputs).max(axis=1)


def misclassified_figure(
    figure_class: type[Figure],
    x: np.ndarray,
    y: np.ndarray,
    outputs: np.ndarray,
    label: str,
    names: list[str] | None = None,
) -> Figure:
    """The most confidently wrong test images, x (N, 1, H, W) or (N, 3, H, W), most confident
    first, titled with the class names (`names`, else the numbers).

    Every image shares one scale, the test set's range: normalization is affine, so this
    shows the pixels as they were before normalizing, without per-image contrast stretching.
    """
    names = names or [str(c) for c in range(max(outputs.shape[1], 2))]
    predicted, confidence = prediction_confidence(outputs)
    wrong = np.flatnonzero(predicted != y)
    rows, columns = MISCLASSIFIED_GRID
    shown = wrong[np.argsort(-confidence[wrong], kind="stable")][: rows * columns]
    figure = new_figure(figure_class, (8.0, 6.5))
    figure.suptitle(
        f"most confidently misclassified test images: {len(wrong)} of {len(y)} wrong\n{label}"
    )
    low, high = float(x.min()), float(x.max())
    for slot in range(rows * columns):
        ax = figure.add_subplot(rows, columns, slot + 1)
        ax.set_axis_off()
        if slot < len(shown):
            i = shown[slot]
            if x.shape[1] == 1:
                ax.imshow(x[i, 0], cmap="gray", vmin=low, vmax=high)
            else:  # RGB wants (H, W, 3) in [0, 1]
                ax.imshow((x[i].transpose(1, 2, 0) - low) / ((high - low) or 1.0))
            title = f"true {names[y[i]]} / pred {names[predicted[i]]} ({100 * confidence[i]:.0f}%)"
            ax.set_title(title, fontsize=7.5)
    if not len(wrong):
        figure.text(0.5, 0.5, "every test image is classified correctly", ha="center")
    return figure


def first_conv_weights(
    config: Config, params: dict[str, np.ndarray]
) -> tuple[np.ndarray, int] | None:
    """The kernels W (F, C, kh, kw) of the first conv2d layer and its index; None without one."""
    for index, spec in enumerate(config.model.layers):
        if next(iter(spec)) == "conv2d":
            return params[f"{index}.W"], index
    return None


def filters_figure(
    figure_class: type[Figure], weights: np.ndarray, index: int, label: str
) -> Figure:
    """Each kernel of weights (F, C, kh, kw) (each input channel of it, when C > 1) as a small
    image on one symmetric colour scale: red positive, blue negative, white zero."""
    filters, channels = weights.shape[:2]
    kernels = weights.reshape(filters * channels, *weights.shape[2:])
    columns = min(FILTER_COLUMNS, len(kernels))
    rows = math.ceil(len(kernels) / columns)
    figure = new_figure(figure_class, (1.0 * columns + 1.5, 1.1 * rows + 0.8))
    limit = float(np.abs(weights).max()) or 1.0
    axes = figure.subplots(rows, columns, squeeze=False)
    for slot, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if slot < len(kernels):
            image = ax.imshow(kernels[slot], cmap="RdBu_r", vmin=-limit, vmax=limit)
            name = str(slot) if channels == 1 else f"{slot // channels}.{slot % channels}"
            ax.set_title(name, fontsize=8)
    figure.colorbar(image, ax=axes, shrink=0.8, label="weight")
    kh, kw = weights.shape[2:]
    figure.suptitle(
        f"first conv layer (layer {index}): {filters} filters of {channels}x{kh}x{kw}\n{label}"
    )
    return figure


def feature_maps_figure(figure_class: type[Figure], result: dict[str, Any]) -> Figure:
    """A grid: the input image, then every feature map of `npnet.tools.explain.feature_maps`
    (each map on its own colour scale)."""
    maps = result["maps"]
    panels = len(maps) + 1
    columns = min(panels, 9)  # one row for the input and 8 filters
    rows = math.ceil(panels / columns)
    figure = figure_class(figsize=(1.6 * columns, 1.7 * rows), dpi=100, layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    axes[0, 0].imshow(result["input"][0], cmap="gray")
    axes[0, 0].set_title(f"input ({result['label']})", fontsize=8)
    for f, fmap in enumerate(maps, start=1):
        ax = axes.flat[f]
        ax.imshow(fmap, cmap="viridis")
        ax.set_title(f"filter {f - 1}", fontsize=8)
    return figure


def write_feature_maps(result: dict[str, Any], out: Path) -> Path:
    """Write the feature-map grid to `out` (atomically, its directory created if needed)."""
    figure = feature_maps_figure(matplotlib_figure(), result)
    return save_figure(figure, out)
