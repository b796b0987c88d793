"""The commands of the tutorial chapters that train nothing (see docs/chapters.md): summary,
data, activations, losses, descent, gradnorms and features."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from npnet.cli.augment_figure import write_augmented_grid
from npnet.cli.chapter_tables import (
    activation_tables,
    dataset_tables,
    descent_tables,
    feature_table,
    grad_norm_table,
    loss_table,
    summary_table,
)
from npnet.cli.image_figures import write_feature_maps
from npnet.cli.main import (
    RUNS_DIR,
    DataDirOption,
    RunsDirOption,
    SetOption,
    app,
    console,
    overrides,
    user_errors,
)
from npnet.config import load_config
from npnet.engine.listing import resolve_run_dir
from npnet.errors import ConfigError
from npnet.tools.augmentation import augmented_samples
from npnet.tools.explain import (
    activation_table,
    describe_dataset,
    feature_maps,
    fit_linear,
    gradient_norms,
    loss_examples,
    softmax_example,
    summarize_config,
)


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

    with user_errors():
        result = summarize_config(load_config(config, overrides(set_, data_dir=data_dir)), samples)
    console.print(summary_table(result))


@app.command()
def data(
    config: Annotated[Path, typer.Argument(help="YAML config whose data section is shown.")],
    set_: SetOption = None,
    data_dir: DataDirOption = None,
    augment: Annotated[
        bool,
        typer.Option("--augment", help="Draw training images beside their data.augment warps."),
    ] = False,
    out: Annotated[Path, typer.Option(help="PNG the --augment grid is written to.")] = Path(
        "augmented.png"
    ),
) -> None:
    """A config's dataset as arrays: shapes, dtypes, min/max/mean/std of every split before
    and after normalization, and the class counts. With --augment, a grid of training images
    beside their random warps (what the network is fed) and the cost of one epoch's warps."""

    if augment:
        with user_errors():
            result = augmented_samples(load_config(config, overrides(set_, data_dir=data_dir)))
            write_augmented_grid(result, out)
        console.print(
            f"wrote {out}: {len(result['grid'])} training images, each beside "
            f"{result['grid'].shape[1] - 1} warps. Warping all {result['train_examples']:,} "
            f"training images in batches of {result['batch_size']} took "
            f"{result['seconds_per_epoch']:.2f} s, {result['cpu_seconds_per_epoch']:.2f} s of "
            "CPU (the cost per epoch)",
            highlight=False,
        )
        return
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

    for table in activation_tables(activation_table(), softmax_example()):
        console.print(table)


@app.command()
def losses() -> None:
    """MSE, binary and categorical cross-entropy on hand-picked predictions (confident and
    right, unsure, confident and wrong), next to the values worked out by hand."""

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

    with user_errors():
        result = gradient_norms(resolve_run_dir(run, runs_dir))
    console.print(grad_norm_table(result))


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

    with user_errors():
        run_dir = resolve_run_dir(run, runs_dir)
        result = feature_maps(run_dir, image, data_dir)
        path = write_feature_maps(result, out or run_dir / "feature_maps.png")
    console.print(feature_table(result))
    console.print(f"wrote {path}", highlight=False, soft_wrap=True)
