"""Callbacks: the hooks the training loop calls, so a display (or a sweep) can follow it.

Named, explicit no-op methods in the Lightning style: override the ones you need."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from npnet.data import Dataset
from npnet.nn.network import Network


class StopTraining(Exception):
    """Raised by a callback's `on_epoch_end` to end the run there with `status` (e.g. a sweep's
    pruner: `pruned`); the epoch's files are already written, and the loop ends cleanly."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Callback:
    """Hooks the trainer calls; each is a no-op here. The CLI's progress display is one."""

    def on_train_start(
        self, run_dir: Path, net: Network, dataset: Dataset, rows: list[dict[str, Any]]
    ) -> None:
        """Before the first epoch; `rows` are the epochs already done (a resumed run's)."""

    def on_epoch_start(self, epoch: int, epochs: int, batches: int) -> None: ...
    def on_batch_end(self, batch: int, loss: float, accuracy: float | None) -> None: ...
    def on_epoch_end(self, row: dict[str, Any]) -> None: ...
    def on_train_end(self, summary: dict[str, Any]) -> None: ...
