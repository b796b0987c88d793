"""Using a trained network: `predict` (your own digit images) and `export` (ONNX)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from PIL import Image
from rich.markup import escape
from rich.table import Table

from npnet.cli.main import RUNS_DIR, RunsDirOption, app, console, errors, user_errors
from npnet.engine.runs import atomic_write, resolve_run_dir
from npnet.errors import ConfigError, RunError
from npnet.tools.predict import Predictor, Prepared, prepare_inputs

EXPORT_EXTRA = (
    "npnet export needs the onnx package: pip install 'npnet[export]' (make venv installs it)"
)


@app.command()
def predict(
    run: Annotated[str, typer.Argument(help="A run directory, or 'latest'.")],
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="Image files (PNG, JPEG, BMP, GIF, TIFF, ...), directories of them, or "
            ".npy/.npz files of 28x28 images."
        ),
    ],
    top: Annotated[int, typer.Option(help="How many of the likeliest classes to show.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    save_inputs: Annotated[
        Path | None,
        typer.Option(help="Write the 28x28 images the network saw here, as PNG files."),
    ] = None,
    runs_dir: RunsDirOption = RUNS_DIR,
) -> None:
    """Classify your own digit images with a trained run.

    Each image is prepared as MNIST's digits were (grey, light on dark, the ink cropped and
    scaled to 20 px, centred by its centre of mass in 28x28), then normalized as the run's
    training data was. Arrays (.npy/.npz) are taken as already in that format. An input that
    cannot be used is one line on stderr and exit code 2; the others are still predicted."""

    with user_errors():
        if top < 1:
            raise ConfigError(f"--top must be a positive int, got {top}")
        predictor = Predictor(resolve_run_dir(run, runs_dir))
        prepared, problems = prepare_inputs(inputs)
        results = []
        if prepared:
            probabilities = predictor.probabilities(np.stack([p.image for p in prepared]))
            results = [
                describe(p.label, row, predictor.class_names, top)
                for p, row in zip(prepared, probabilities, strict=True)
            ]
        if save_inputs is not None and prepared:
            write_inputs(prepared, save_inputs)
    for problem in problems:
        errors.print(f"[bold red]error:[/] {escape(problem)}", soft_wrap=True, highlight=False)
    if as_json:
        typer.echo(json.dumps(results, indent=2))
    elif results:
        console.print(predictions_table(results, top))
    if problems:
        raise typer.Exit(code=2)


def describe(label: str, p: np.ndarray, names: list[str], top: int) -> dict[str, Any]:
    """One input's prediction: the likeliest class and the `top` likeliest with their
    probabilities."""
    order = np.argsort(-p, kind="stable")[:top]
    best = int(order[0])
    return {
        "input": label,
        "class": best,
        "name": names[best],
        "top": [{"class": int(c), "name": names[c], "probability": float(p[c])} for c in order],
    }


def predictions_table(results: list[dict[str, Any]], top: int) -> Table:
    table = Table(title="predictions", title_justify="left")
    table.add_column("input", overflow="fold")
    table.add_column("predicted", justify="right")
    for rank in range(1, min(top, len(results[0]["top"])) + 1):
        table.add_column(f"#{rank}", justify="right")
    for result in results:
        table.add_row(
            escape(result["input"]),
            f"[bold]{escape(result['name'])}[/]",
            *(f"{escape(t['name'])} {100 * t['probability']:.1f}%" for t in result["top"]),
        )
    return table


def write_inputs(prepared: list[Prepared], folder: Path) -> None:
    """Each 28×28 image as an 8-bit PNG, NNN-<input>.png, written atomically."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunError(f"{folder}: cannot create the directory ({error.strerror})") from None
    for index, item in enumerate(prepared):
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(item.label).name).strip("_")
        buffer = io.BytesIO()
        Image.fromarray(np.round(item.image * 255).astype(np.uint8)).save(buffer, format="PNG")
        data = buffer.getvalue()
        atomic_write(folder / f"{index:03d}-{stem}.png", lambda file, data=data: file.write(data))


@app.command("export")
def export(
    run: Annotated[str, typer.Argument(help="A run directory, or 'latest'.")],
    format_: Annotated[str, typer.Option("--format", help="The model format: onnx.")] = "onnx",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="The file to write (default: RUN/model.onnx)."),
    ] = None,
    runs_dir: RunsDirOption = RUNS_DIR,
) -> None:
    """Write the run's network as an ONNX model, its input normalization folded in.

    For image runs the model takes N×1×28×28 float32 pixel values in [0, 1], light digit on
    dark, and gives "scores" (logits) and "probabilities"; checked by onnx.checker."""

    with user_errors():
        if format_ != "onnx":
            raise ConfigError(f"--format must be onnx, got {format_!r}")
        run_dir = resolve_run_dir(run, runs_dir)
        try:
            from npnet.tools import export as onnx_export
        except ModuleNotFoundError as error:
            if error.name != "onnx":
                raise
            raise ConfigError(EXPORT_EXTRA) from None
        model = onnx_export.export_run(run_dir)
        path = output if output is not None else run_dir / "model.onnx"
        if path.is_dir():
            raise ConfigError(f"{path}: is a directory; give the model's file name with -o")
        if not path.parent.is_dir():
            raise ConfigError(f"{path}: the directory {path.parent} does not exist")
        onnx_export.write_model(model, path)
    console.print(f"wrote {path}", highlight=False, soft_wrap=True)
