"""What the terminal shows: the training progress bar and the tables of eval and gradcheck."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from npnet.data import Dataset
from npnet.nn.network import Network
from npnet.nn.parallel import DataParallel
from npnet.runs import read_metrics
from npnet.train import Callback


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float | None]) -> str:
    """One block character per value, scaled from the smallest (▁) to the largest (█)."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = high - low
    return "".join(SPARK[round((v - low) / span * 7) if span else 7] for v in known)


def epochs_table(rows: list[dict[str, Any]]) -> Table:
    """Per-epoch metrics with a sparkline of the validation accuracy (or loss) underneath, so
    the trend shows in a terminal without plots."""
    table = Table(title="epochs", title_justify="left")
    for column in ("epoch", "train loss", "train acc", "val loss", "val acc", "lr", "seconds"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            str(int(row["epoch"])),
            number(row["train_loss"]),
            percent(row["train_accuracy"]),
            number(row["val_loss"]),
            percent(row["val_accuracy"]),
            f"{row['lr']:.3g}",
            f"{row['seconds']:.1f}",
        )
    accuracies = [row["val_accuracy"] for row in rows]
    if any(a is not None for a in accuracies):
        table.caption = f"val accuracy {sparkline(accuracies)}"
    elif rows and rows[0]["val_loss"] is not None:
        table.caption = f"val loss {sparkline([row['val_loss'] for row in rows])}"
    table.caption_justify = "left"
    return table


def model_table(net: Network, title: str = "model") -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("layer")
    table.add_column("output shape")
    table.add_column("params", justify="right")
    for row in net.summary():
        table.add_row(
            str(row["index"]), row["layer"], str(row["output_shape"]), f"{row['params']:,}"
        )
    table.add_row(
        "", "[bold]total[/]", str(net.input_shape) + " in", f"[bold]{net.num_params():,}[/]"
    )
    return table


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class TrainingProgress(Callback):
    """A rich progress bar per epoch (batches, running loss and accuracy), then one line per
    epoch that stays in the scroll-back. Without a terminal only the lines are printed."""

    def __init__(self, console: Console):
        self.console = console
        self.progress: Progress | None = None
        self.run_dir: Path | None = None
        self.task = None
        self.loss_sum = 0.0
        self.correct_sum = 0.0
        self.seen = 0
        self.epochs = 0

    def on_train_start(self, run_dir: Path, net: Network, dataset: Dataset) -> None:
        self.run_dir = run_dir
        self.console.print(f"run directory: [bold]{escape(str(run_dir))}[/]")
        self.console.print(
            f"data: {dataset.name}, {len(dataset.x_train):,} train / {len(dataset.x_val):,} "
            f"validation / {len(dataset.x_test):,} test samples of shape {dataset.input_shape}"
        )
        if isinstance(net, DataParallel):
            self.console.print(
                f"threads: {net.threads} (each batch in {net.threads} slices at once)"
            )
            cores = available_cores()
            if net.threads > cores:
                self.console.print(
                    f"[yellow]note: train.threads is {net.threads}, but this process may use "
                    f"{cores} core(s): the slices will take turns, slower than "
                    f"train.threads: {cores}[/]"
                )
        self.console.print(model_table(net))

    def on_epoch_start(self, epoch: int, epochs: int, batches: int) -> None:
        self.epochs = epochs
        self.loss_sum, self.correct_sum, self.seen = 0.0, 0.0, 0
        self.progress = Progress(
            TextColumn(f"epoch {epoch}/{epochs}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]} acc {task.fields[acc]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
            disable=not self.console.is_terminal,
        )
        self.progress.start()
        self.task = self.progress.add_task("train", total=batches, loss="-", acc="-")

    def on_batch_end(self, batch: int, loss: float, accuracy: float | None) -> None:
        self.seen += 1
        self.loss_sum += loss
        if accuracy is not None:
            self.correct_sum += accuracy
        acc = None if accuracy is None else self.correct_sum / self.seen
        self.progress.update(
            self.task, advance=1, loss=number(self.loss_sum / self.seen), acc=percent(acc)
        )

    def on_epoch_end(self, row: dict[str, Any]) -> None:
        self.stop()
        self.console.print(
            f"epoch {row['epoch']}/{self.epochs}  "
            f"train loss {number(row['train_loss'])} acc {percent(row['train_accuracy'])}  "
            f"val loss {number(row['val_loss'])} acc {percent(row['val_accuracy'])}  "
            f"lr {row['lr']:.3g}  {row['seconds']:.1f}s",
            highlight=False,
        )

    def on_train_end(self, summary: dict[str, Any]) -> None:
        self.stop()
        rows = read_metrics(self.run_dir)
        if len(rows) > 1:
            self.console.print(epochs_table(rows))
        status = summary["status"]
        colour = "green" if status == "completed" else "yellow"
        self.console.print(f"status: [{colour}]{status}[/]", highlight=False)
        if summary["message"]:
            self.console.print(escape(summary["message"]), highlight=False)
        if summary["test_accuracy"] is not None or summary["test_loss"] is not None:
            self.console.print(
                f"test loss {number(summary['test_loss'])}  "
                f"test accuracy {percent(summary['test_accuracy'])}  "
                f"({summary['duration_seconds']:.1f}s)",
                highlight=False,
            )

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def eval_tables(result: dict[str, Any]) -> list[Table]:
    headline = Table(
        title=f"{result['split']} split ({Path(result['run_dir']).name})", title_justify="left"
    )
    headline.add_column("samples", justify="right")
    headline.add_column("loss", justify="right")
    headline.add_column("accuracy", justify="right")
    headline.add_row(f"{result['samples']:,}", number(result["loss"]), percent(result["accuracy"]))
    tables = [headline]
    if "per_class" in result:
        per_class = Table(title="per class", title_justify="left")
        for column in ("class", "precision", "recall", "f1", "support"):
            per_class.add_column(column, justify="right")
        for row in result["per_class"]:
            per_class.add_row(
                str(row["class"]),
                percent(row["precision"]),
                percent(row["recall"]),
                percent(row["f1"]),
                str(row["support"]),
            )
        confusion = Table(
            title="confusion matrix (rows: true, columns: predicted)", title_justify="left"
        )
        confusion.add_column("", justify="right", style="bold")
        matrix = result["confusion_matrix"]
        for c in range(len(matrix)):
            confusion.add_column(str(c), justify="right")
        for c, counts in enumerate(matrix):
            cells = [
                f"[bold]{n}[/]" if i == c else (str(n) if n else "[dim]0[/]")
                for i, n in enumerate(counts)
            ]
            confusion.add_row(str(c), *cells)
        tables += [per_class, confusion]
    return tables


def verdict(error: float, tolerance: float) -> str:
    return "[green]ok[/]" if error < tolerance else "[red]FAIL[/]"


def gradcheck_all_table(rows: list[dict[str, Any]], tolerance: float) -> Table:
    table = Table(
        title=f"gradient check of every layer and loss (float64, tolerance {tolerance:g})",
        title_justify="left",
    )
    for column in ("kind", "name", "arguments", "input shape", "tensor"):
        table.add_column(column)
    table.add_column("max rel. error", justify="right")
    table.add_column("")
    for row in rows:
        arguments = ", ".join(f"{k}={v}" for k, v in row["args"].items())
        table.add_row(
            row["kind"],
            row["name"],
            escape(arguments),
            str(row["shape"]),
            row["tensor"],
            f"{row['error']:.2e}",
            verdict(row["error"], tolerance),
        )
    return table


def gradcheck_table(rows: list[dict[str, Any]], tolerance: float) -> Table:
    table = Table(
        title=f"gradient check (float64, central differences, tolerance {tolerance:g})",
        title_justify="left",
    )
    for column in ("layer", "name", "tensor", "shape", "checked"):
        table.add_column(column)
    table.add_column("max rel. error", justify="right")
    table.add_column("")
    for row in rows:
        table.add_row(
            str(row["layer"]),
            row["name"],
            row["tensor"],
            str(row["shape"]),
            str(row["checked"]),
            f"{row['error']:.2e}",
            verdict(row["error"], tolerance),
        )
    return table


def registry_tables() -> list[Table]:
    """One table per kind of component: every registered name, its parameters with their
    defaults, and the first line of its docstring."""
    from npnet.registry import DATASETS, INITIALIZERS, LAYERS, LOSSES, OPTIMIZERS, SCHEDULES

    tables = []
    for registry in (LAYERS, LOSSES, INITIALIZERS, OPTIMIZERS, SCHEDULES, DATASETS):
        plural = registry.kind + ("es" if registry.kind.endswith("s") else "s")
        table = Table(title=plural, title_justify="left")
        table.add_column("name", style="bold")
        table.add_column("parameters")
        table.add_column("what it is")
        for name in registry.names():
            component = registry.get(name)
            if registry is INITIALIZERS:
                parameters = ""  # called by layers with shape and fan-in/out, not by configs
            else:
                parameters = ", ".join(
                    p.name if p.default is p.empty else f"{p.name}={p.default!r}"
                    for p in registry.parameters(name).values()
                )
            summary = " ".join((component.__doc__ or "").strip().split("\n\n")[0].split())
            table.add_row(name, escape(parameters), escape(summary))
        tables.append(table)
    return tables


def runs_table(rows: list[dict[str, Any]], runs_dir: Path) -> Table:
    table = Table(title=f"runs in {runs_dir}", title_justify="left")
    table.add_column("run (date-time-name)", no_wrap=True)
    for column, justify in (
        ("status", "left"),
        ("epochs", "right"),
        ("best val acc", "right"),
        ("test acc", "right"),
        ("duration", "right"),
    ):
        table.add_column(column, justify=justify)
    colours = {"completed": "green", "interrupted": "yellow", "diverged": "red", "failed": "red"}
    for row in rows:
        colour = colours.get(row["status"], "dim")
        seconds = row["duration_seconds"]
        table.add_row(
            row["run"],
            f"[{colour}]{row['status']}[/]",
            "-" if row["epochs"] is None else str(row["epochs"]),
            percent(row["best_val_accuracy"]),
            percent(row["test_accuracy"]),
            "-" if seconds is None else f"{seconds:.0f}s",
        )
    return table


COMPARED_SUMMARY_KEYS = [
    "status",
    "epochs_completed",
    "best_val_accuracy",
    "final_val_loss",
    "test_loss",
    "test_accuracy",
    "num_params",
    "duration_seconds",
]


def compare_tables(comparison: dict[str, Any]) -> list[Table]:
    a, b = Path(comparison["a"]).name, Path(comparison["b"]).name
    config = Table(title="config differences", title_justify="left")
    for column in ("key", a, b):
        config.add_column(escape(column))
    for row in comparison["config_differences"]:
        config.add_row(row["key"], escape(repr(row["a"])), escape(repr(row["b"])))
    if not comparison["config_differences"]:
        config.add_row("(identical configs)", "", "")
    results = Table(title="results", title_justify="left")
    for column in ("", a, b):
        results.add_column(escape(column), justify="right")
    for key in COMPARED_SUMMARY_KEYS:
        values = [comparison["summary_a"].get(key), comparison["summary_b"].get(key)]
        if "accuracy" in key:
            cells = [percent(v) for v in values]
        elif isinstance(values[0], float):
            cells = [number(v) for v in values]
        else:
            cells = ["-" if v is None else str(v) for v in values]
        results.add_row(key, *cells)
    return [config, results]


# --- the tutorial chapters' tables (npnet summary, data, activations, losses, descent,
# gradnorms, features); the numbers come from npnet.explain ----------------------------


def dims(shape: tuple[int, ...]) -> str:
    """(55000, 1, 28, 28) as "55000×1×28×28": compact enough for an 80-column table."""
    return "×".join(str(d) for d in shape)


def summary_table(result: dict[str, Any]) -> Table:
    table = Table(
        title=f"{result['name']}: forward pass of {result['samples']} training samples through "
        "the untrained network (FLOPs: 2 per multiply-add, matrix products only)",
        title_justify="left",
    )
    for column, justify in (
        ("#", "right"),
        ("layer", "left"),
        ("output shape", "left"),
        ("parameters", "left"),
        ("params", "right"),
        ("FLOPs/sample", "right"),
        ("out mean", "right"),
        ("out std", "right"),
        ("zeros", "right"),
    ):
        table.add_column(column, justify=justify)
    for row in result["rows"]:
        shapes = " ".join(f"{k} {dims(v)}" for k, v in row["param_shapes"].items())
        table.add_row(
            str(row["index"]),
            row["layer"],
            dims(row["output_shape"]),
            shapes,
            f"{row['params']:,}",
            f"{row['flops']:,}" if row["flops"] else "",
            number(row.get("mean"), 3),
            number(row.get("std"), 3),
            percent(row.get("zeros")),
        )
    table.add_row(
        "",
        "[bold]total[/]",
        f"{dims(result['input_shape'])} in",
        "",
        f"[bold]{result['params']:,}[/]",
        f"[bold]{result['flops']:,}[/]",
        "",
        "",
        "",
    )
    return table


def dataset_tables(result: dict[str, Any]) -> list[Table]:
    stats = Table(
        title=f"{result['name']} ({result['task']}): {result['description']}",
        title_justify="left",
    )
    for column in ("split", "stage", "shape", "dtype", "min", "max", "mean", "std"):
        stats.add_column(
            column,
            justify="left" if column in ("split", "stage") else "right",
            no_wrap=column == "shape",
        )
    for row in result["rows"]:
        stats.add_row(
            row["split"],
            row["stage"],
            dims(row["shape"]),
            row["dtype"],
            *(f"{row[key]:.4g}" for key in ("min", "max")),
            *(f"{row[key]:.4f}" for key in ("mean", "std")),
        )
    tables = [stats]
    if result["classes"]:
        counts = Table(title="samples per class", title_justify="left")
        counts.add_column("split")
        for c in range(len(result["classes"][0]["counts"])):
            counts.add_column(str(c), justify="right")
        for row in result["classes"]:
            counts.add_row(row["split"], *(str(n) for n in row["counts"]))
        tables.append(counts)
    if result["info"]:
        info = Table(title="dataset info", title_justify="left")
        info.add_column("key")
        info.add_column("value")
        for key, value in result["info"].items():
            info.add_row(key, escape(str(value)))
        tables.append(info)
    return tables


def activation_tables(rows: list[dict[str, Any]], soft: dict[str, Any]) -> list[Table]:
    table = Table(
        title="activations: f(z), f'(z) and the central difference (f(z+ε) − f(z−ε)) / 2ε",
        title_justify="left",
    )
    for column in ("activation", "z", "f(z)", "f'(z)", "numerical", "|difference|"):
        table.add_column(column, justify="left" if column == "activation" else "right")
    for i, row in enumerate(rows):
        last = i + 1 == len(rows) or rows[i + 1]["activation"] != row["activation"]
        table.add_row(
            row["activation"],
            f"{row['z']:g}",
            f"{row['value']:.6f}",
            f"{row['derivative']:.6f}",
            f"{row['numerical']:.6f}",
            f"{row['error']:.1e}",
            end_section=last,
        )
    softmax = Table(title="softmax along the last axis", title_justify="left")
    for column in ("z", "softmax(z)", "sum", "backward vs numerical (rel. error)"):
        softmax.add_column(column, justify="right")
    softmax.add_row(
        str(soft["z"]),
        "[" + ", ".join(f"{p:.4f}" for p in soft["softmax"]) + "]",
        f"{soft['sum']:.6f}",
        f"{soft['error']:.1e}",
    )
    return [table, softmax]


def loss_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(
        title="losses on example predictions (cross-entropies from probabilities)",
        title_justify="left",
    )
    for column in ("loss", "case", "prediction", "target", "npnet", "by hand", "formula"):
        table.add_column(column, justify="right" if column in ("npnet", "by hand") else "left")
    for i, row in enumerate(rows):
        last = i + 1 == len(rows) or rows[i + 1]["loss"] != row["loss"]
        table.add_row(
            row["loss"],
            row["case"],
            escape(str([round(v, 4) for v in row["prediction"]])),
            escape(str(row["target"])),
            f"{row['value']:.4f}",
            f"{row['by_hand']:.4f}",
            row["formula"],
            end_section=last,
        )
    return table


def descent_tables(result: dict[str, Any]) -> list[Table]:
    names = [f"w{i}" for i in range(result["features"])] + ["b"]
    weights = Table(
        title=f"linear regression by gradient descent on {result['n_train']} samples",
        title_justify="left",
    )
    weights.add_column("")
    for name in names:
        weights.add_column(name, justify="right")
    weights.add_column("max |learned − true|", justify="right")
    if result["truth"] is not None:
        weights.add_row("true", *(f"{v:.4f}" for v in result["truth"]), "")
    for row in result["rows"]:
        weights.add_row(
            f"learned (batch {row['batch_size']})",
            *(f"{v:.4f}" for v in row["learned"]),
            "-" if row["max_error"] is None else f"{row['max_error']:.1e}",
        )
    runs = Table(title="batch size: speed and noise", title_justify="left")
    for column in ("batch size", "steps", "seconds", "train MSE", "test MSE", "noise"):
        runs.add_column(column, justify="right")
    for row in result["rows"]:
        runs.add_row(
            str(row["batch_size"]),
            f"{row['steps']:,}",
            f"{row['seconds']:.3f}",
            f"{row['train_mse']:.5f}",
            f"{row['test_mse']:.5f}",
            f"{row['noise']:.5f}",
        )
    runs.caption = "noise: std of the last epoch's step losses, each on its own batch"
    return [weights, runs]


def grad_norm_table(result: dict[str, Any]) -> Table:
    table = Table(
        title=f"mean weight-gradient norms per layer, {result['run_dir']} "
        f"({result['epochs']} epochs)",
        title_justify="left",
    )
    for column in ("param", "layer", "epoch 1", "last epoch", "epoch 1 / output layer"):
        table.add_column(column, justify="left" if column in ("param", "layer") else "right")
    for row in result["rows"]:
        table.add_row(
            row["key"],
            row["name"],
            f"{row['first']:.2e}",
            f"{row['last']:.2e}",
            f"{row['relative']:.3g}",
        )
    return table


def feature_table(result: dict[str, Any]) -> Table:
    table = Table(
        title=f"feature maps {dims(result['shape'])} of layer {result['layer']} (conv2d) for test "
        f"image {result['image']} (label {result['label']})",
        title_justify="left",
    )
    for column in ("filter", "min", "max", "mean", "> 0"):
        table.add_column(column, justify="right")
    for row in result["rows"]:
        table.add_row(
            str(row["filter"]),
            number(row["min"], 3),
            number(row["max"], 3),
            number(row["mean"], 3),
            percent(row["active"]),
        )
    return table
