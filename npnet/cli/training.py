"""The training commands: train, check, eval, runs, plot, list and gradcheck."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from npnet.cli.main import (
    RUNS_DIR,
    DataDirOption,
    RunsDirOption,
    SetOption,
    app,
    console,
    errors,
    overrides,
    user_errors,
)
from npnet.cli.plots import plot_runs
from npnet.cli.progress import TrainingProgress
from npnet.cli.tables import (
    compare_tables,
    epochs_table,
    eval_tables,
    gradcheck_all_table,
    gradcheck_table,
    model_table,
    registry_tables,
    runs_table,
)
from npnet.config import Config, dump_yaml, load_config
from npnet.engine.evaluate import evaluate_run
from npnet.engine.experiment import build_experiment
from npnet.engine.loop import fit
from npnet.engine.loop import resume as resume_run
from npnet.engine.runs import RUN_COLUMNS, compare_runs, list_runs, read_metrics, resolve_run_dir
from npnet.errors import ConfigError, RunError
from npnet.files import dumps_strict_json
from npnet.tools import gradcheck as checks


@app.command()
def train(
    config: Annotated[
        Path | None, typer.Argument(help="YAML config, e.g. configs/cnn.yaml.")
    ] = None,
    set_: SetOption = None,
    seed: Annotated[int | None, typer.Option(help="Override the config's seed.")] = None,
    runs_dir: RunsDirOption = RUNS_DIR,
    data_dir: DataDirOption = None,
    resume: Annotated[
        Path | None,
        typer.Option(help="Continue an interrupted run in its directory, from its last epoch."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Validate and build everything, print it, train nothing.")
    ] = False,
    plot_figures: Annotated[
        bool, typer.Option("--plot", help="Write the run's figures (npnet plot) at the end.")
    ] = False,
) -> None:
    """Train a config; writes runs/YYYYmmdd-HHMMSS-NAME/ and names it on the last line.

    Exit code 0 when training completed, 1 when it diverged, 130 when interrupted
    (Ctrl-C or SIGTERM: the last completed epoch is saved and `--resume` continues it)."""

    with user_errors(), interrupted_before_training():
        if resume is not None:
            if config is not None or set_ or seed is not None or data_dir is not None or dry_run:
                raise ConfigError(
                    "--resume continues a run exactly as configured; give no CONFIG, --set, "
                    "--seed, --data-dir or --dry-run with it"
                )
            run_dir = resume
            summary = resume_run(run_dir, TrainingProgress(console))
        else:
            if config is None:
                raise ConfigError(
                    "give a CONFIG to train (e.g. configs/cnn.yaml), or --resume RUN_DIR"
                )
            loaded = load_config(config, overrides(set_, seed, data_dir))
            if dry_run:
                show_check(loaded)
                return
            run_dir, summary = fit(loaded, runs_dir, TrainingProgress(console))
    if plot_figures and summary["epochs_completed"]:
        with user_errors():
            for path in plot_runs([run_dir]):
                console.print(f"wrote {path}", highlight=False, soft_wrap=True)
    console.print(f"run saved to {run_dir}", highlight=False, soft_wrap=True)
    exit_codes = {"completed": 0, "diverged": 1, "interrupted": 130}
    if exit_codes[summary["status"]]:
        raise typer.Exit(code=exit_codes[summary["status"]])


@contextmanager
def interrupted_before_training() -> Iterator[None]:
    """Ctrl-C while the config is read and the data and network are built (once training
    starts, the loop itself turns it into an `interrupted` summary): one line, exit 130."""
    try:
        yield
    except KeyboardInterrupt:
        errors.print(
            "[yellow]interrupted[/] before training began; no run was saved or changed",
            highlight=False,
        )
        raise typer.Exit(code=130) from None


def show_check(config: Config) -> None:

    exp = build_experiment(config)
    console.print(f"# {config.source}, resolved", highlight=False)
    console.print(dump_yaml(config), highlight=False, markup=False)
    data = exp.dataset
    console.print(
        f"data: {data.name}, {len(data.x_train):,} train / {len(data.x_val):,} validation / "
        f"{len(data.x_test):,} test samples of shape {data.input_shape}",
        highlight=False,
    )
    console.print(model_table(exp.net))
    console.print("[green]config OK[/]: nothing was trained")


@app.command()
def check(
    config: Annotated[Path, typer.Argument(help="YAML config to validate.")],
    set_: SetOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Validate a config, build its data and network, and print them; trains nothing
    (the same as `npnet train CONFIG --dry-run`)."""

    with user_errors():
        show_check(load_config(config, overrides(set_, data_dir=data_dir)))


runs_app = typer.Typer(help="List and compare run directories.", invoke_without_command=True)
app.add_typer(runs_app, name="runs")


@runs_app.callback()
def runs_list(
    ctx: typer.Context,
    runs_dir: RunsDirOption = RUNS_DIR,
    sort: Annotated[
        str, typer.Option(help="Sort by a column: date, name, status, test_accuracy, ...")
    ] = "date",
) -> None:
    """A table of runs: name, date, status, epochs, best validation and test accuracy."""

    if ctx.invoked_subcommand is not None:
        return
    with user_errors():
        if sort not in RUN_COLUMNS:
            raise ConfigError(f"--sort must be one of {', '.join(RUN_COLUMNS)}, got {sort!r}")
        rows = list_runs(runs_dir)
    if sort != "date":  # newest first is the natural order for dates
        rows.sort(key=lambda row: (row[sort] is None, row[sort]), reverse=sort.endswith("accuracy"))
    console.print(runs_table(rows, runs_dir))
    for row in rows:
        if row["note"]:
            console.print(f"[dim]{escape(row['run'])}: {escape(row['note'])}[/]", soft_wrap=True)


@runs_app.command("compare")
def runs_compare(
    run_a: Annotated[str, typer.Argument(help="A run directory (or 'latest').")],
    run_b: Annotated[str, typer.Argument(help="Another run directory.")],
    runs_dir: RunsDirOption = RUNS_DIR,
) -> None:
    """Two runs side by side: the config keys that differ, and their results."""

    with user_errors():
        comparison = compare_runs(
            resolve_run_dir(run_a, runs_dir), resolve_run_dir(run_b, runs_dir)
        )
    for table in compare_tables(comparison):
        console.print(table)


@app.command()
def plot(
    run_dirs: Annotated[list[str], typer.Argument(help="Run directories (or 'latest').")],
    out: Annotated[
        Path | None, typer.Option(help="Write the figures here instead of the run directory.")
    ] = None,
    runs_dir: RunsDirOption = RUNS_DIR,
) -> None:
    """Write PNG figures of runs: loss and accuracy curves (overlaid for several runs), the
    learning rate, the confusion matrix, the most confidently misclassified test images, the
    first conv layer's filters and, when logged, per-layer gradient norms."""

    with user_errors():
        paths = plot_runs([resolve_run_dir(run, runs_dir) for run in run_dirs], out)
    for path in paths:
        console.print(f"wrote {path}", highlight=False, soft_wrap=True)


@app.command("list")
def list_components() -> None:
    """Every registered component a config can name, by kind, with its parameters."""

    for table in registry_tables():
        console.print(table)


@app.command("eval")
def evaluate(
    run: Annotated[str, typer.Argument(help="A run directory, or 'latest'.")],
    split: Annotated[str, typer.Option(help="test, val or train.")] = "test",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    runs_dir: RunsDirOption = RUNS_DIR,
    data_dir: DataDirOption = None,
) -> None:
    """Rebuild a run's network from its directory and report loss, accuracy, per-class
    precision/recall and the confusion matrix."""

    with user_errors():
        result = evaluate_run(resolve_run_dir(run, runs_dir), split, data_dir)
    if as_json:
        typer.echo(dumps_strict_json(result))
        return
    try:
        history = read_metrics(Path(result["run_dir"]))
    except RunError as error:  # eval needs only config.yaml and weights.npz
        console.print(f"[dim]no epoch table: {escape(str(error))}[/]", soft_wrap=True)
        history = []
    if history:
        console.print(epochs_table(history))
    for table in eval_tables(result):
        console.print(table)


@app.command()
def gradcheck(
    config: Annotated[
        Path | None, typer.Argument(help="YAML config whose network is checked.")
    ] = None,
    check_all: Annotated[
        bool, typer.Option("--all", help="Check every registered layer and loss instead.")
    ] = False,
    set_: SetOption = None,
    samples: Annotated[int, typer.Option(help="Real samples in the checked batch.")] = 4,
    entries: Annotated[int, typer.Option(help="Entries checked per tensor (sampled).")] = 30,
    tolerance: Annotated[float, typer.Option(help="Largest relative error that passes.")] = 1e-6,
    data_dir: DataDirOption = None,
) -> None:
    """Compare analytic gradients with central differences in float64: a config's network on a
    small real batch, or (--all) every registered layer and loss on random inputs of several
    shapes. Exits 1 if any relative error reaches the tolerance."""

    with user_errors():
        if (config is None) == (not check_all):
            raise ConfigError("give a CONFIG to check its network, or --all (not both)")
        if check_all:
            rows = checks.check_all()
            table = gradcheck_all_table(rows, tolerance)
        else:
            loaded = load_config(config, overrides(set_, data_dir=data_dir))
            rows = checks.check_config(loaded, samples, entries)
            table = gradcheck_table(rows, tolerance)
    console.print(table)
    worst = max(row["error"] for row in rows)
    failed = sum(not row["error"] < tolerance for row in rows)
    if failed:
        console.print(
            f"[red]FAILED[/]: {failed} of {len(rows)} tensors; largest relative error "
            f"{worst:.2e} >= {tolerance:g}"
        )
        raise typer.Exit(code=1)
    console.print(f"[green]passed[/]: largest relative error {worst:.2e} < {tolerance:g}")
