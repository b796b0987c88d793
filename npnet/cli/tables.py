"""The tables the terminal shows: per-epoch metrics, the model, eval, gradcheck, the
registry, runs and their comparison (rich renders them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from npnet.nn.network import Network
from npnet.registry import DATASETS, INITIALIZERS, LAYERS, LOSSES, OPTIMIZERS, SCHEDULES


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


REORDER_NOTE = (
    "runs after/before: a ReLU followed by a max-pool runs after it, "
    "max(relu(x)) = relu(max(x)): the same numbers, with ReLU on the pooled values"
)


def layer_cell(row: dict[str, Any]) -> str:
    """A layer's name, and where the network runs it when that is not its config place."""
    return row["layer"] + (f" [dim](runs {row['runs']})[/]" if row.get("runs") else "")


def reorder_caption(table: Table, rows: list[dict[str, Any]]) -> None:
    """Explain the "runs after" notes under a table that shows any."""
    if any(row.get("runs") for row in rows):
        table.caption = REORDER_NOTE
        table.caption_justify = "left"


def model_table(net: Network, title: str = "model") -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("layer")
    table.add_column("output shape")
    table.add_column("params", justify="right")
    rows = net.summary()
    for row in rows:
        table.add_row(
            str(row["index"]), layer_cell(row), str(row["output_shape"]), f"{row['params']:,}"
        )
    table.add_row(
        "", "[bold]total[/]", str(net.input_shape) + " in", f"[bold]{net.num_params():,}[/]"
    )
    reorder_caption(table, rows)
    return table


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
        names = result.get("class_names") or [str(row["class"]) for row in result["per_class"]]
        for row in result["per_class"]:
            per_class.add_row(
                escape(class_label(row["class"], names)),
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
            confusion.add_row(escape(class_label(c, names)), *cells)
        tables += [per_class, confusion]
    return tables


def class_label(c: int, names: list[str]) -> str:
    """ "3" for a class named by its number, "3 Dress" for a named one."""
    return str(c) if names[c] == str(c) else f"{c} {names[c]}"


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
    tables = []
    for registry in (LAYERS, LOSSES, INITIALIZERS, OPTIMIZERS, SCHEDULES, DATASETS):
        plural = registry.kind + ("es" if registry.kind.endswith("s") else "s")
        table = Table(title=plural, title_justify="left")
        table.add_column("name", style="bold")
        table.add_column("parameters")
        table.add_column("what it is")
        for name in registry.names():
            component = registry.get(name)
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
    colours = {
        "completed": "green",
        "interrupted": "yellow",
        "pruned": "yellow",
        "diverged": "red",
        "failed": "red",
    }
    # A sweep is a group: its row, then its trials indented under it.
    for row in rows:
        lines = [(row["run"], row)] + [(f"  └ {t['name']}", t) for t in row.get("trials", [])]
        for label, line in lines:
            colour = "cyan" if "trials" in line else colours.get(line["status"], "dim")
            seconds = line["duration_seconds"]
            table.add_row(
                escape(label),
                f"[{colour}]{escape(str(line['status']))}[/]",
                "-" if line["epochs"] is None else str(line["epochs"]),
                percent(line["best_val_accuracy"]),
                percent(line["test_accuracy"]),
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
            cells = ["-" if v is None else escape(str(v)) for v in values]
        results.add_row(key, *cells)
    return [config, results]
