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
config.yaml and weights.npz (`npnet.engine.evaluate.load_run`). Regression runs get only
the curves.

matplotlib (the `plot` extra) is loaded only when a figure is drawn (`npnet.cli.figure`); the
image figures are in `npnet.cli.image_figures`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from npnet.cli.figure import matplotlib_figure, new_figure
from npnet.cli.image_figures import filters_figure, first_conv_weights, misclassified_figure
from npnet.config import Config
from npnet.engine import runs
from npnet.engine.evaluate import load_run
from npnet.engine.metrics import class_report, evaluate
from npnet.errors import RunError
from npnet.nn.network import is_weight, layer_index

if TYPE_CHECKING:
    from matplotlib.figure import Figure


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
    if runs.present(run_dirs[0] / runs.GRAD_NORMS_FILE):
        epochs = runs.read_grad_norms(run_dirs[0], len(first.config.model.layers))
        figures["grad_norms.png"] = grad_norms_figure(figure_class, first, epochs)
    if first.classify:
        figures.update(evaluation_figures(figure_class, run_dirs[0], first.label))

    written = []
    for name, figure in figures.items():
        path = out / name
        # Atomic like every file npnet writes: a viewer never shows a half-written PNG.
        runs.write_file(path, lambda file, figure=figure: figure.savefig(file, format="png"))
        written.append(path)
    return written


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


def grad_norms_figure(
    figure_class: type[Figure], run: RunCurves, rows: list[dict[str, float]]
) -> Figure:
    """One line per layer: the mean L2 norm of its weight gradient ("<index>.W") per epoch,
    from `runs.read_grad_norms`."""
    layers = run.config.model.layers
    figure = new_figure(figure_class)
    ax = figure.add_subplot()
    epochs = [int(row["epoch"]) for row in rows]
    for key in filter(is_weight, rows[0]):
        index = layer_index(key)
        name = next(iter(layers[index]))
        ax.plot(
            epochs,
            [row[key] for row in rows],
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
    names = data.class_names
    figures = {"confusion_matrix.png": confusion_figure(figure_class, matrix, label, names)}
    if data.x_test.ndim == 4 and data.x_test.shape[1] in (1, 3):
        figures["misclassified.png"] = misclassified_figure(
            figure_class, data.x_test, data.y_test, outputs, label, names
        )
    filters = first_conv_weights(exp.config, exp.net.parameters())
    if filters is not None:
        figures["filters.png"] = filters_figure(figure_class, *filters, label)
    return figures


def confusion_figure(
    figure_class: type[Figure], matrix: np.ndarray, label: str, names: list[str] | None = None
) -> Figure:
    """matrix (K, K): counts, rows the true class, columns the predicted one; the ticks carry
    the class names (`names`, K of them) when they are more than the class numbers."""
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
    if names is not None and names != [str(c) for c in range(classes)]:
        ax.set_xticklabels(names, rotation=45, ha="right", fontsize=fontsize)
        ax.set_yticklabels(names, fontsize=fontsize)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    accuracy = np.trace(matrix) / matrix.sum()
    ax.set_title(f"confusion matrix on the test set: {100 * accuracy:.2f}% correct\n{label}")
    return figure
