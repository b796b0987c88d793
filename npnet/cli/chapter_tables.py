"""The tables of the tutorial chapters that train nothing (npnet summary, data,
activations, losses, descent, gradnorms, features); the numbers come from
`npnet.tools.explain`."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from npnet.cli.tables import layer_cell, number, percent, reorder_caption


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
            layer_cell(row),
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
    reorder_caption(table, result["rows"])
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
        for name in result["class_names"]:
            counts.add_column(escape(name), justify="right")
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
