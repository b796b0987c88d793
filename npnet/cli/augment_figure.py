"""The figure of `npnet data CONFIG --augment`: training images beside their random warps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from npnet.cli.figure import matplotlib_figure, save_figure


def write_augmented_grid(result: dict[str, Any], out: Path) -> Path:
    """One row per image (npnet.tools.augmentation.augmented_samples): the original in the
    first column, then its warps, on one grey scale; written atomically to `out`."""
    grid = result["grid"]
    rows, columns = grid.shape[:2]
    figure = matplotlib_figure()(
        figsize=(1.1 * columns, 1.15 * rows), dpi=100, layout="constrained"
    )
    axes = figure.subplots(rows, columns, squeeze=False)
    low, high = float(grid.min()), float(grid.max())
    for r in range(rows):
        for c in range(columns):
            ax = axes[r, c]
            ax.set_axis_off()
            ax.imshow(grid[r, c, 0], cmap="gray", vmin=low, vmax=high)
            if r == 0:
                ax.set_title("original" if c == 0 else f"warp {c}", fontsize=8)
        axes[r, 0].text(-4, 14, str(result["labels"][r]), fontsize=10, va="center")
    return save_figure(figure, out)
