"""Figures of a sweep (`npnet plot SWEEP_DIR`), drawn by Optuna's matplotlib visualizations:

    history.png      each trial's value in order, and the best so far
    parameters.png   each parameter against the metric, one panel per parameter
    importances.png  how much of the metric's variation each parameter explains (fANOVA)

Optuna and matplotlib are optional (the `sweep` and `plot` extras), imported only here.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from npnet.cli.figure import DPI, MISSING_MATPLOTLIB, PlottingUnavailable
from npnet.cli.sweep import sweep_tools
from npnet.errors import RunError


def plot_sweep(sweep_dir: Path, out_dir: Path | None = None) -> list[Path]:
    """Write the sweep's figures into `out_dir` (default: the sweep directory)."""
    tools = sweep_tools()
    try:
        import matplotlib

        matplotlib.use("Agg")  # Optuna draws with pyplot; no display is needed
        from matplotlib import pyplot
        from optuna.visualization import matplotlib as figures
    except ImportError:
        raise PlottingUnavailable(MISSING_MATPLOTLIB) from None
    spec = tools.sweep_dir.read_sweep(sweep_dir)
    study = tools.sweep_dir.open_study(spec, sweep_dir)
    finished = [t for t in study.get_trials(deepcopy=False) if t.value is not None]
    if not finished:
        raise RunError(f"{sweep_dir}: no trial has finished yet, so there is nothing to plot")
    out_dir = sweep_dir if out_dir is None else out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    drawers = {
        "history.png": lambda: figures.plot_optimization_history(study, target_name=spec.metric),
        "parameters.png": lambda: figures.plot_slice(study, target_name=spec.metric),
    }
    complete = sum(t.state.name == "COMPLETE" for t in finished)
    if len(spec.parameters) > 1 and complete > 1:  # importances compare >= 2 parameters
        drawers["importances.png"] = lambda: figures.plot_param_importances(
            study, target_name=spec.metric
        )
    paths = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib figures experimental
        for name, draw in drawers.items():
            figure = first_axes(draw()).figure
            path = out_dir / name
            figure.savefig(path, dpi=DPI, bbox_inches="tight")
            pyplot.close(figure)
            paths.append(path)
    return paths


def first_axes(axes: Any) -> Any:
    """plot_slice returns an array of axes when there are several parameters."""
    return axes.flat[0] if hasattr(axes, "flat") else axes
