"""The `npnet` command line: parses arguments and delegates; the work lives in the library.

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

from npnet.config import Config
from npnet.errors import ConfigError, NpnetError

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
    from npnet.config import load_config
    from npnet.display import TrainingProgress
    from npnet.train import fit
    from npnet.train import resume as resume_run

    with user_errors():
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
        from npnet.plots import plot_runs

        with user_errors():
            for path in plot_runs([run_dir]):
                console.print(f"wrote {path}", highlight=False, soft_wrap=True)
    console.print(f"run saved to {run_dir}", highlight=False, soft_wrap=True)
    exit_codes = {"completed": 0, "diverged": 1, "interrupted": 130}
    if exit_codes[summary["status"]]:
        raise typer.Exit(code=exit_codes[summary["status"]])


def show_check(config: Config) -> None:
    from npnet.config import dump_yaml
    from npnet.display import model_table
    from npnet.train import build_experiment

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
    from npnet.config import load_config

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
    from npnet.display import runs_table
    from npnet.runs import RUN_COLUMNS, list_runs

    if ctx.invoked_subcommand is not None:
        return
    with user_errors():
        if sort not in RUN_COLUMNS:
            raise ConfigError(f"--sort must be one of {', '.join(RUN_COLUMNS)}, got {sort!r}")
        rows = list_runs(runs_dir)
    if sort != "date":  # newest first is the natural order for dates
        rows.sort(key=lambda row: (row[sort] is None, row[sort]), reverse=sort.endswith("accuracy"))
    console.print(runs_table(rows, runs_dir))


@runs_app.command("compare")
def runs_compare(
    run_a: Annotated[str, typer.Argument(help="A run directory (or 'latest').")],
    run_b: Annotated[str, typer.Argument(help="Another run directory.")],
    runs_dir: RunsDirOption = RUNS_DIR,
) -> None:
    """Two runs side by side: the config keys that differ, and their results."""
    from npnet.display import compare_tables
    from npnet.runs import compare_runs, resolve_run_dir

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
    from npnet.plots import plot_runs
    from npnet.runs import resolve_run_dir

    with user_errors():
        paths = plot_runs([resolve_run_dir(run, runs_dir) for run in run_dirs], out)
    for path in paths:
        console.print(f"wrote {path}", highlight=False, soft_wrap=True)


@app.command("list")
def list_components() -> None:
    """Every registered component a config can name, by kind, with its parameters."""
    from npnet.display import registry_tables

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
    from npnet.display import epochs_table, eval_tables
    from npnet.evaluate import evaluate_run
    from npnet.runs import read_metrics, resolve_run_dir

    with user_errors():
        result = evaluate_run(resolve_run_dir(run, runs_dir), split, data_dir)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    history = read_metrics(Path(result["run_dir"]))
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
    from npnet import gradcheck as checks
    from npnet.config import load_config
    from npnet.display import gradcheck_all_table, gradcheck_table

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


# --- commands for the tutorial chapters that train nothing (see docs/chapters.md) ---------


@app.command()
def summary(
    config: Annotated[Path, typer.Argument(help="YAML config whose network is summarized.")],
    set_: SetOption = None,
    samples: Annotated[int, typer.Option(help="Training samples pushed through it.")] = 256,
    data_dir: DataDirOption = None,
) -> None:
    """A network layer by layer: output and parameter shapes, parameter counts, forward FLOPs
    per sample, and what one forward pass of real samples through the untrained network
    gives at each layer (mean, std, fraction of zeros)."""
    from npnet.config import load_config
    from npnet.display import summary_table
    from npnet.explain import summarize_config

    with user_errors():
        result = summarize_config(load_config(config, overrides(set_, data_dir=data_dir)), samples)
    console.print(summary_table(result))


@app.command()
def data(
    config: Annotated[Path, typer.Argument(help="YAML config whose data section is shown.")],
    set_: SetOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """A config's dataset as arrays: shapes, dtypes, min/max/mean/std of every split before
    and after normalization, and the class counts."""
    from npnet.config import load_config
    from npnet.display import dataset_tables
    from npnet.explain import describe_dataset

    with user_errors():
        result = describe_dataset(load_config(config, overrides(set_, data_dir=data_dir)))
    for table in dataset_tables(result):
        console.print(table)
    if result["normalize_check"] is not None:
        console.print(
            f"functional.normalize(raw train) vs the pipeline's '{result['normalize']}': "
            f"largest difference {result['normalize_check']:.1e}",
            highlight=False,
        )


@app.command()
def activations() -> None:
    """Activation functions and their derivatives at sample points, each derivative checked
    against central differences; and softmax on one vector."""
    from npnet.display import activation_tables
    from npnet.explain import activation_table, softmax_example

    for table in activation_tables(activation_table(), softmax_example()):
        console.print(table)


@app.command()
def losses() -> None:
    """MSE, binary and categorical cross-entropy on hand-picked predictions (confident and
    right, unsure, confident and wrong), next to the values worked out by hand."""
    from npnet.display import loss_table
    from npnet.explain import loss_examples

    console.print(loss_table(loss_examples()))


@app.command()
def descent(
    config: Annotated[Path, typer.Argument(help="YAML config with a regression dataset.")],
    batch_size: Annotated[
        list[int] | None,
        typer.Option(help="Mini-batch size to compare (repeatable); default: train.batch_size."),
    ] = None,
    set_: SetOption = None,
) -> None:
    """Linear regression by functional.gradient_descent on the config's data (its
    optimizer.lr, train.epochs, seed): the learned weights next to the true ones, and per
    batch size the steps, time, final loss and how noisy the last steps were."""
    from npnet.config import load_config
    from npnet.display import descent_tables
    from npnet.explain import fit_linear

    with user_errors():
        if batch_size and min(batch_size) < 1:
            raise ConfigError(f"--batch-size must be positive, got {min(batch_size)}")
        loaded = load_config(config, overrides(set_))
        result = fit_linear(loaded, list(batch_size or [loaded.train.batch_size]))
    for table in descent_tables(result):
        console.print(table)


@app.command()
def gradnorms(
    run: Annotated[str, typer.Argument(help="A run directory (or 'latest').")],
    runs_dir: RunsDirOption = RUNS_DIR,
) -> None:
    """Per-layer weight-gradient norms of a run trained with train.log_grad_norms: how much
    signal back-propagation delivers to each layer (vanishing gradients show here)."""
    from npnet.display import grad_norm_table as render
    from npnet.explain import grad_norm_table
    from npnet.runs import resolve_run_dir

    with user_errors():
        result = grad_norm_table(resolve_run_dir(run, runs_dir))
    console.print(render(result))


@app.command()
def features(
    run: Annotated[str, typer.Argument(help="A run directory (or 'latest') with a conv2d.")],
    image: Annotated[int, typer.Option(help="Index of the test image.")] = 0,
    out: Annotated[
        Path | None, typer.Option(help="PNG to write (default: RUN/feature_maps.png).")
    ] = None,
    runs_dir: RunsDirOption = RUNS_DIR,
    data_dir: DataDirOption = None,
) -> None:
    """The first conv layer's feature maps for one test image: statistics per filter, and a
    PNG of the image and every map."""
    from npnet.display import feature_table
    from npnet.explain import feature_maps
    from npnet.runs import resolve_run_dir

    with user_errors():
        run_dir = resolve_run_dir(run, runs_dir)
        result = feature_maps(run_dir, image, out or run_dir / "feature_maps.png", data_dir)
    console.print(feature_table(result))
    console.print(f"wrote {result['path']}", highlight=False, soft_wrap=True)
