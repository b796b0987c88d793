"""`npnet sweep`: a hyperparameter search on Optuna, with live progress and a final table.

The work lives in npnet.tools.sweep (the `sweep` extra), imported only when the command runs,
so the rest of the CLI works without Optuna installed.
"""

from __future__ import annotations

import time
from logging import WARNING
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from npnet.cli.main import RUNS_DIR, RunsDirOption, app, console, user_errors
from npnet.errors import ConfigError, NpnetError

MISSING_OPTUNA = "Optuna is not installed: pip install 'npnet[sweep]' (make venv installs it)"
POLL_SECONDS = 0.5


class SweepUnavailable(NpnetError):
    """Optuna, which `npnet sweep` runs on, is not installed (the `sweep` extra)."""


def sweep_tools() -> ModuleType:
    """npnet.tools.sweep's modules, or SweepUnavailable when the extra is missing."""
    try:
        import npnet.tools.sweep.launch
        import npnet.tools.sweep.results
        import npnet.tools.sweep.spec
        import npnet.tools.sweep.storage
        import npnet.tools.sweep.sweep_dir
    except ImportError as error:
        if error.name and error.name.split(".")[0] in ("optuna", "sqlalchemy"):
            raise SweepUnavailable(MISSING_OPTUNA) from None
        raise
    npnet.tools.sweep.spec.optuna.logging.set_verbosity(WARNING)  # its per-trial lines
    return npnet.tools.sweep


@app.command()
def sweep(
    sweep_file: Annotated[
        Path | None, typer.Argument(help="Sweep file, e.g. configs/sweeps/mlp.yaml.")
    ] = None,
    workers: Annotated[int, typer.Option(help="Trials trained at once, one process each.")] = 1,
    trials: Annotated[
        int | None, typer.Option(help="The study's total of trials (overrides the file's).")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            help="Study storage URL, e.g. postgresql://USER@HOST/DB (default: SQLite "
            "in the sweep directory)."
        ),
    ] = None,
    study: Annotated[
        str | None,
        typer.Option(help="Study name; processes given the same --storage and --study share it."),
    ] = None,
    runs_dir: RunsDirOption = RUNS_DIR,
    resume: Annotated[
        Path | None, typer.Option(help="Continue the sweep in this directory up to its trials.")
    ] = None,
) -> None:
    """Search hyperparameters with Optuna; writes runs/sweeps/YYYYmmdd-HHMMSS-NAME/ with one
    run directory per trial, trials.csv and best.yaml.

    Exit code 0 when the study has all its trials, 130 when interrupted (`--resume` continues),
    1 when the workers stopped on an error."""

    with user_errors():
        tools = sweep_tools()
        if workers < 1:
            raise ConfigError(f"--workers must be a positive int, got {workers}")
        if resume is not None:
            if sweep_file is not None or storage is not None or study is not None:
                raise ConfigError(
                    "--resume continues a sweep as it was made; give no SWEEP_FILE, --storage "
                    "or --study with it"
                )
            sweep_dir = resume
            spec = tools.sweep_dir.read_sweep(sweep_dir)
        else:
            if sweep_file is None:
                raise ConfigError("give a SWEEP_FILE (e.g. configs/sweeps/mlp.yaml), or --resume")
            spec = tools.spec.load_sweep(sweep_file)
            if storage is not None:
                tools.storage.backend(storage)
        if trials is not None:
            if trials < 1:
                raise ConfigError(f"--trials must be a positive int, got {trials}")
            spec.trials = trials
        if resume is not None:
            tools.sweep_dir.write_sweep(sweep_dir, spec)
        else:
            sweep_dir = tools.sweep_dir.create_sweep(spec, runs_dir, storage, study)
        opened = tools.sweep_dir.open_study(spec, sweep_dir)
    console.print(f"sweep {spec.study}: {sweep_dir}", highlight=False, soft_wrap=True)
    train_threads = spec.fixed.get("train.threads", spec.base_config["train"]["threads"])
    pool = tools.launch.Workers(sweep_dir, workers, train_threads)
    console.print(
        f"{workers} worker(s) on {tools.launch.cores()} cores: train.threads <= {pool.threads}, "
        f"BLAS threads {pool.blas} each",
        highlight=False,
    )
    outcome = watch(tools, spec, opened, pool)
    with user_errors():
        rows = tools.results.trial_rows(opened, spec)
        console.print(trials_table(rows, spec))
        paths = [tools.results.write_trials_csv(sweep_dir, rows, spec)]
        paths.append(tools.results.write_best(sweep_dir, opened, spec))
    for path in filter(None, paths):
        console.print(f"wrote {path}", highlight=False, soft_wrap=True)
    if outcome == "interrupted":
        console.print(
            f"interrupted; continue with: npnet sweep --resume {sweep_dir}", highlight=False
        )
        raise typer.Exit(code=130)
    if outcome == "failed":
        raise typer.Exit(code=1)


def watch(tools: ModuleType, spec: Any, study: Any, pool: Any) -> str:
    """Start the workers and show the study's progress until they end; returns `done`,
    `interrupted` or `failed`."""
    progress = Progress(
        TextColumn("trials"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
    )
    task = progress.add_task("trials", total=spec.trials, status="")
    interrupted = failed = False
    with progress:
        pool.start()
        try:
            while pool.running:
                time.sleep(POLL_SECONDS)
                for worker, code in pool.exited():
                    failed |= report_exit(progress.console, worker, code)
                update(tools, progress, task, study)
        except KeyboardInterrupt:
            interrupted = True
            progress.console.print("interrupted: each worker finishes its epoch, saves, stops")
            pool.interrupt()
            for worker, code in pool.wait():
                report_exit(progress.console, worker, code)
        update(tools, progress, task, study)
    done = tools.storage.tally(study.get_trials(deepcopy=False)).done >= spec.trials
    if done:
        return "done"
    # Workers that all died or were killed leave a study to resume, as Ctrl-C does.
    return "failed" if failed and not interrupted else "interrupted"


def update(tools: ModuleType, progress: Progress, task: Any, study: Any) -> None:
    trials = study.get_trials(deepcopy=False)
    counts = tools.storage.tally(trials)
    status = f"running {counts.running} · pruned {counts.pruned} · failed {counts.failed}"
    best = tools.results.best_trial(study)
    if best is not None:
        params = ", ".join(f"{k}={format_value(v)}" for k, v in best.params.items())
        status += f" · best {best.value:.4f} (trial {best.number}: {params})"
    progress.update(task, completed=counts.done, status=escape(status))


def report_exit(out: Console, worker: Any, code: int) -> bool:
    """Say how a worker ended, unless it simply finished; True if it stopped on an error."""
    if code == 0:
        return False
    if code < 0 or code == 130:
        how = f"killed by signal {-code}" if code < 0 else "interrupted"
        out.print(f"[yellow]worker {worker.index} {how}[/]; its trial will show as failed")
        return False
    out.print(
        f"[red]worker {worker.index} stopped (exit {code}):[/] {escape(worker.last_line())} "
        f"(log: {escape(str(worker.log))})",
        soft_wrap=True,
    )
    return True


def format_value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def trials_table(rows: list[dict[str, Any]], spec: Any) -> Table:
    table = Table(title=f"trials of {spec.study}, best first", title_justify="left")
    for column, justify in (("trial", "right"), ("state", "left"), (spec.metric, "right")):
        table.add_column(column, justify=justify)
    for key in spec.parameters:
        table.add_column(key, justify="right")
    table.add_column("epochs", justify="right")
    table.add_column("seconds", justify="right")
    colours = {"complete": "green", "pruned": "yellow", "failed": "red"}
    for row in rows:
        colour = colours.get(row["state"], "dim")
        table.add_row(
            str(row["trial"]),
            f"[{colour}]{row['state']}[/]",
            "-" if row["value"] is None else f"{row['value']:.4f}",
            *(format_value(row["params"].get(key, "-")) for key in spec.parameters),
            str(row["epochs"]),
            "-" if row["seconds"] is None else f"{row['seconds']:.1f}",
        )
    return table
