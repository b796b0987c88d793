"""The Typer app every command module adds its commands to, and what they share: the
consoles, the options that recur, and the one place user mistakes become a red line.

User mistakes (a bad config, a missing file, a damaged run directory) print one red line on
stderr and exit with code 2, never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from npnet.errors import NpnetError

app = typer.Typer(
    help="npnet: neural networks from scratch in NumPy, trained from YAML configs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="markdown",  # joins a docstring's wrapped lines into paragraphs
)
console = Console()
errors = Console(stderr=True)

RUNS_DIR = Path("runs")
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config key, e.g. --set optimizer.lr=0.05 (repeatable)."),
]
RunsDirOption = Annotated[Path, typer.Option(help="Directory holding the run directories.")]
DataDirOption = Annotated[
    Path | None, typer.Option(help="Directory with the dataset files (sets data.root).")
]


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn npnet's user-facing errors into one red line on stderr and exit code 2."""
    try:
        yield
    except NpnetError as error:
        errors.print(f"[bold red]error:[/] {escape(str(error))}", soft_wrap=True, highlight=False)
        raise typer.Exit(code=2) from None


def overrides(
    set_: list[str] | None, seed: int | None = None, data_dir: Path | None = None
) -> list[str]:
    extra = list(set_ or [])
    if seed is not None:
        extra.append(f"seed={seed}")
    if data_dir is not None:
        extra.append(f"data.root={json.dumps(str(data_dir))}")
    return extra
