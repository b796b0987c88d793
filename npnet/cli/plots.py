"""Figures of runs (`npnet plot`): PNG files that show what a training did.

    loss.png              training (solid) and validation (dashed) loss per epoch, runs overlaid
    accuracy.png          the same for accuracy, in %         (classification runs)
    learning_rate.png     the learning rate of each epoch
    grad_norms.png        per-layer weight-gradient L2 norm per epoch, log scale (first run,
                          when it logged them with train.log_grad_norms)
    confusion_matrix.png  test-set counts, true class on rows, predicted on columns (first run)
    misclassified.png     the most confidently wrong test images             (first run, images)
    filters.png           the first conv2d layer's kernels                  (first run, CNNs)

The curves need only metrics.csv; the test-set figures rebuild the first run's network from
config.yaml and weights.npz (`npnet.engine.evaluate.load_run`). Regression runs get only the curves.

matplotlib is an optional dependency (`pip install 'npnet[plot]'`), imported only when a
figure is drawn, so `import npnet` never needs it. Figures use matplotlib's object-oriented
`Figure` API, which renders with Agg and needs neither pyplot nor a display.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from npnet.config import Config
from npnet.engine import runs
from npnet.engine.evaluate import load_run
from npnet.engine.metrics import class_report, evaluate, predicted_classes
from npnet.errors import NpnetError, RunError
from npnet.functional.activations import sigmoid, softmax

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FIGSIZE = (7.0, 4.5)  # inches; at DPI this is 840 x 540 pixels
DPI = 120
MISCLASSIFIED_GRID = (4, 6)  # rows, columns
FILTER_COLUMNS = 8
MISSING_MATPLOTLIB = (
    "matplotlib is not installed: pip install 'npnet[plot]' (make venv installs it)"
)


class PlottingUnavailable(NpnetError):
    """matplotlib, the optional dependency that draws the figures, is not installed."""


def plot_runs(run_dirs: list[Path], out_dir: Path | None = None) -> list[Path]:
    """Write the figures of `run_dirs` into `out_dir` (created if needed) or, by default, into
    the first run directory; return the paths written.

    Curves overlay every run; the confusion matrix, misclassified images, filters and gradient
    norms describe the first run. Raises RunError when a run lacks what a figure needs
    (config.yaml, a non-empty metrics.csv, or weights.npz for a classification run).
    """
    figure_class = matplotlib_figure()
    if not run_dirs:
        raise RunError("give at least one run directory to plot")
    curves = [read_curves(run_dir) for run_dir in run_dirs]
    out = run_dirs[0] if out_dir is None else out_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunError(f"{out}: cannot create the output directory ({error.strerror})") from None

    figures: dict[str, Figure] = {"loss.png": loss_figure(figure_class, curves)}
    if any(run.classify for run in curves):
        figures["accuracy.png"] = accuracy_figure(figure_class, curves)
    figures["learning_rate.png"] = learning_rate_figure(figure_class, curves)
    first = curves[0]
    grad_norms_path = run_dirs[0] / runs.GRAD_NORMS_FILE
    if runs.present(grad_norms_path):
        figures["grad_norms.png"] = grad_norms_figure(figure_class, first, grad_norms_path)
    if first.classify:
        figures.update(evaluation_figures(figure_class, run_dirs[0], first.label))

    written = []
    for name, figure in figures.items():
        path = out / name
        # Atomic like every file npnet writes: a viewer never shows a half-written PNG.
        runs.write_file(path, lambda file, figure=figure: figure.savefig(file, format="png"))
        written.append(path)
    return written


def matplotlib_figure() -> type[Figure]:
    """matplotlib's Figure class, or PlottingUnavailable with the install command."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise PlottingUnavailable(MISSING_MATPLOTLIB) from None
    return Figure


@dataclass
class RunCurves:
    """What a run's curves need: its label (the directory's name), its per-epoch rows from
    metrics.csv and its config."""

    label: str
    rows: list[dict[str, Any]]
    config: Config

    @property
    def classify(self) -> bool:
        # From the recorded metrics, so that deciding never needs the dataset.
        return self.rows[0]["train_accuracy"] is not None


def read_curves(run_dir: Path) -> RunCurves:
    """A run's curves; RunError when it has no config.yaml or no recorded epoch."""
    path = run_dir / runs.METRICS_FILE
    if not runs.present(path):
        raise RunError(f"{run_dir}: no {runs.METRICS_FILE}; is this a run directory?")
    rows = runs.read_metrics(run_dir)
    if not rows:
        raise RunError(f"{path}: no epochs recorded yet; nothing to plot")
    config = runs.read_config(run_dir)
    return RunCurves(run_dir.resolve().name, rows, config)


def new_figure(figure_class: type[Figure], size: tuple[float, float] = FIGSIZE) -> Figure:
    return figure_class(figsize=size, dpi=DPI, layout="constrained")


def epoch_axis(ax: Any, epochs: list[float]) -> None:
    """An x axis of whole epochs; half an epoch of margin so a one-epoch run still gets an
    integer tick rather than a zoom into 0.95 .. 1.05."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)


def title_for(what: str, curves: list[RunCurves]) -> str:
    return f"{what}: {curves[0].label}" if len(curves) == 1 else f"{what}: {len(curves)} runs"


def all_epochs(curves: list[RunCurves]) -> list[float]:
    return [row["epoch"] for run in curves for row in run.rows]


def column(rows: list[dict[str, Any]], key: str, factor: float = 1.0) -> tuple[list, list]:
    """Epochs and values of `key`, skipping epochs without one (e.g. no validation split)."""
    kept = [row for row in rows if row[key] is not None]
    return [row["epoch"] for row in kept], [factor * row[key] for row in kept]


def train_val_figure(
    figure_class: type[Figure], curves: list[RunCurves], what: str, ylabel: str, factor: float
) -> Figure:
    """Training (solid) and validation (dashed) `what` per epoch; one colour per run.
    Markers on every epoch, because a one-epoch run is a single point and no line."""
    figure = new_figure(figure_class)
    ax = figure.add_subplot()
    for i, run in enumerate(curves):
        prefix = "" if len(curves) == 1 else f"{run.label} "
        for split, style, face in (("train", "-", f"C{i}"), ("val", "--", "white")):
            epochs, values = column(run.rows, f"{split}_{what}", factor)
            if values:
                name = "training" if split == "train" else "validation"
                ax.plot(
                    epochs,
                    values,
                    style,
                    color=f"C{i}",
                    label=prefix + name,
                    marker="o",
                    markersize=5,
                    markerfacecolor=face,
                )
    epoch_axis(ax, all_epochs(curves))
    ax.set_ylabel(ylabel)
    ax.set_title(title_for(f"{what} per epoch", curves))
    ax.legend(fontsize="small")
    return figure


def loss_figure(figure_class: type[Figure], curves: list[RunCurves]) -> Figure:
    # softmax_cross_entropy -> "softmax cross-entropy"; several runs may use different losses.
    names = dict.fromkeys(
        run.config.loss.name.replace("_cross_entropy", " cross-entropy").replace("_", " ")
        for run in curves
    )
    return train_val_figure(figure_class, curves, "loss", f"loss ({', '.join(names)})", 1.0)


def accuracy_figure(figure_class: type[Figure], curves: list[RunCurves]) -> Figure:
    return train_val_figure(figure_class, curves, "accuracy", "accuracy (%)", 100.0)


def learning_rate_figure(figure_class: type[Figure], curves: list[RunCurves]) -> Figure:
    figure = new_figure(figure_class)
    ax = figure.add_subplot()
    for i, run in enumerate(curves):
        epochs, values = column(run.rows, "lr")
        ax.plot(epochs, values, marker="o", markersize=5, color=f"C{i}", label=run.label)
    epoch_axis(ax, all_epochs(curves))
    ax.set_ylabel("learning rate")
    ax.set_title(title_for("learning rate per epoch", curves))
    ax.legend(fontsize="small")
    return figure


def grad_norms_figure(figure_class: type[Figure], run: RunCurves, path: Path) -> Figure:
    """One line per layer: the mean L2 norm of its weight gradient ("<index>.W") per epoch."""
    rows = runs.read_grad_norms(path.parent, len(run.config.model.layers))
    if not rows:
        raise RunError(f"{path}: no epochs recorded")
    layers = run.config.model.layers
    figure = new_figure(figure_class)
    ax = figure.add_subplot()
    epochs = [int(row["epoch"]) for row in rows]
    for key in (k for k in rows[0] if k.endswith(".W")):
        index = int(key.split(".")[0])
        name = next(iter(layers[index]))
        ax.plot(
            epochs,
            [float(row[key]) for row in rows],
            marker="o",
            markersize=5,
            label=f"{index} {name}",
        )
    ax.set_yscale("log")
    epoch_axis(ax, epochs)
    ax.set_ylabel("gradient L2 norm (mean over batches)")
    ax.set_title(f"weight-gradient norm per layer: {run.label}")
    ax.legend(fontsize="small", title="layer")
    return figure


def evaluation_figures(figure_class: type[Figure], run_dir: Path, label: str) -> dict[str, Figure]:
    """The confusion matrix, the misclassified images and the first conv layer's filters of
    the run's final weights on its test set."""
    if not (run_dir / runs.WEIGHTS_FILE).is_file():
        raise RunError(
            f"{run_dir}: no {runs.WEIGHTS_FILE}; the test-set figures need the trained weights"
        )
    exp = load_run(run_dir)
    data = exp.dataset
    if data.num_classes is None:
        return {}
    outputs = evaluate(
        exp.net, exp.loss, data.x_test, data.y_test, exp.config.train.eval_batch_size, True
    )["outputs"]
    matrix = np.array(class_report(outputs, data.y_test, data.num_classes)["confusion_matrix"])
    figures = {"confusion_matrix.png": confusion_figure(figure_class, matrix, label)}
    if data.x_test.ndim == 4 and data.x_test.shape[1] == 1:
        figures["misclassified.png"] = misclassified_figure(
            figure_class, data.x_test, data.y_test, outputs, label
        )
    filters = first_conv_weights(exp.config, exp.net.parameters())
    if filters is not None:
        figures["filters.png"] = filters_figure(figure_class, *filters, label)
    return figures


def confusion_figure(figure_class: type[Figure], matrix: np.ndarray, label: str) -> Figure:
    """matrix (K, K): counts, rows the true class, columns the predicted one."""
    classes = len(matrix)
    figure = new_figure(figure_class, (6.5, 5.5))
    ax = figure.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=ax, label="test images")
    # Dark text on light cells, white on dark ones, so every count stays readable.
    threshold = matrix.max() / 2
    fontsize = 9 if classes <= 10 else 6
    for (true, predicted), count in np.ndenumerate(matrix):
        colour = "white" if count > threshold else "black"
        ax.text(predicted, true, count, ha="center", va="center", color=colour, fontsize=fontsize)
    ax.set_xticks(range(classes))
    ax.set_yticks(range(classes))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    accuracy = np.trace(matrix) / matrix.sum()
    ax.set_title(f"confusion matrix on the test set: {100 * accuracy:.2f}% correct\n{label}")
    return figure


def prediction_confidence(outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predicted class (N,) and the model's probability for it (N,) from outputs (N, C):
    softmax over classes, or for one logit column (N, 1) the sigmoid of binary classification."""
    predicted = predicted_classes(outputs)
    if outputs.shape[1] == 1:
        p_one = sigmoid(outputs[:, 0])
        return predicted, np.where(predicted == 1, p_one, 1.0 - p_one)
    return predicted, softmax(outputs).max(axis=1)


def misclassified_figure(
    figure_class: type[Figure], x: np.ndarray, y: np.ndarray, outputs: np.ndarray, label: str
) -> Figure:
    """The most confidently wrong test images, x (N, 1, H, W), most confident first.

    Every image shares one grey scale, the test set's range: normalization is affine, so this
    shows the pixels as they were before normalizing, without per-image contrast stretching.
    """
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
            ax.imshow(x[i, 0], cmap="gray", vmin=low, vmax=high)
            title = f"true {y[i]} / pred {predicted[i]} ({100 * confidence[i]:.0f}%)"
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
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunError(f"{out.parent}: cannot create the directory ({error.strerror})") from None
    runs.write_file(out, lambda file: figure.savefig(file, format="png"))
    return out
