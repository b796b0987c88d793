"""What every figure shares: matplotlib's Figure class (or one line naming the extra to
install), the figure size and resolution.

matplotlib is an optional dependency (`pip install 'npnet[plot]'`), imported only when a
figure is drawn, so `import npnet` never needs it. Figures use matplotlib's object-oriented
`Figure` API, which renders with Agg and needs neither pyplot nor a display.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from npnet.engine import runs
from npnet.errors import NpnetError, RunError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FIGSIZE = (7.0, 4.5)  # inches; at DPI this is 840 x 540 pixels
DPI = 120
MISSING_MATPLOTLIB = (
    "matplotlib is not installed: pip install 'npnet[plot]' (make venv installs it)"
)


class PlottingUnavailable(NpnetError):
    """matplotlib, the optional dependency that draws the figures, is not installed."""


def matplotlib_figure() -> type[Figure]:
    """matplotlib's Figure class, or PlottingUnavailable with the install command."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise PlottingUnavailable(MISSING_MATPLOTLIB) from None
    return Figure


def new_figure(figure_class: type[Figure], size: tuple[float, float] = FIGSIZE) -> Figure:
    return figure_class(figsize=size, dpi=DPI, layout="constrained")


def save_figure(figure: Figure, out: Path) -> Path:
    """Write `figure` as a PNG to `out`, atomically, its directory created if needed."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunError(f"{out.parent}: cannot create the directory ({error.strerror})") from None
    runs.atomic_write(out, lambda file: figure.savefig(file, format="png"))
    return out
