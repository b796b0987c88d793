"""The training progress display: a rich progress bar per epoch, one line per epoch, and
the epochs table at the end; a Callback of the training loop."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from npnet.cli.tables import epochs_table, model_table, number, percent
from npnet.data import Dataset
from npnet.engine.callbacks import Callback
from npnet.nn.blas import available_cores, pinned_narrower_kernels
from npnet.nn.network import Network
from npnet.nn.parallel import DataParallel, threads_line


class TrainingProgress(Callback):
    """A rich progress bar per epoch (batches, running loss and accuracy), then one line per
    epoch that stays in the scroll-back. Without a terminal only the lines are printed."""

    def __init__(self, console: Console):
        self.console = console
        self.progress: Progress | None = None
        self.rows: list[dict[str, Any]] = []  # every epoch of the run, for the final table
        self.task = None
        self.net: Network | None = None
        self.used: Counter = Counter()  # steps so far with each number of slices at once
        self.loss_sum = 0.0
        self.correct_sum = 0.0
        self.seen = 0
        self.epochs = 0

    def on_train_start(
        self, run_dir: Path, net: Network, dataset: Dataset, rows: list[dict[str, Any]]
    ) -> None:
        self.rows = list(rows)
        self.console.print(f"run directory: [bold]{escape(str(run_dir))}[/]")
        self.console.print(
            f"data: {dataset.name}, {len(dataset.x_train):,} train / {len(dataset.x_val):,} "
            f"validation / {len(dataset.x_test):,} test samples of shape {dataset.input_shape}"
        )
        self.net = net
        if threads_line(net):
            self.console.print(f"threads: {threads_line(net)}", highlight=False)
        if pinned := pinned_narrower_kernels():
            self.console.print(f"[yellow]blas: {escape(pinned)}[/]", highlight=False)
        if isinstance(net, DataParallel) and net.chooser is None:
            cores = available_cores()
            if net.threads > cores:
                self.console.print(
                    f"[yellow]note: train.threads is {net.threads}, but this process may use "
                    f"{cores} core(s): the slices will take turns, slower than "
                    f"train.threads: {cores}[/]"
                )
        self.console.print(model_table(net))

    def on_epoch_start(self, epoch: int, epochs: int, batches: int) -> None:
        self.epochs = epochs
        self.loss_sum, self.correct_sum, self.seen = 0.0, 0.0, 0
        self.progress = Progress(
            TextColumn(f"epoch {epoch}/{epochs}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]} acc {task.fields[acc]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
            disable=not self.console.is_terminal,
        )
        self.progress.start()
        self.task = self.progress.add_task("train", total=batches, loss="-", acc="-")

    def on_batch_end(self, batch: int, loss: float, accuracy: float | None) -> None:
        self.seen += 1
        self.loss_sum += loss
        if accuracy is not None:
            self.correct_sum += accuracy
        acc = None if accuracy is None else self.correct_sum / self.seen
        self.progress.update(
            self.task, advance=1, loss=number(self.loss_sum / self.seen), acc=percent(acc)
        )

    def on_epoch_end(self, row: dict[str, Any]) -> None:
        self.stop()
        self.rows.append(row)
        self.console.print(
            f"epoch {row['epoch']}/{self.epochs}  "
            f"train loss {number(row['train_loss'])} acc {percent(row['train_accuracy'])}  "
            f"val loss {number(row['val_loss'])} acc {percent(row['val_accuracy'])}  "
            f"lr {row['lr']:.3g}  {row['seconds']:.1f}s{self.slices_at_once()}",
            highlight=False,
        )

    def slices_at_once(self) -> str:
        """`train.threads: auto`'s choices in the epoch: "  slices at once: 2 x 840, 1 x 19"."""
        chooser = getattr(self.net, "chooser", None)
        if chooser is None or len(chooser.candidates) == 1:
            return ""
        epoch = chooser.used - self.used
        self.used = Counter(chooser.used)
        counts = ", ".join(f"{n} x {epoch[n]}" for n in chooser.candidates if epoch[n])
        return f"  slices at once: {counts}"

    def on_train_end(self, summary: dict[str, Any]) -> None:
        self.stop()
        if len(self.rows) > 1:
            self.console.print(epochs_table(self.rows))
        status = summary["status"]
        colour = "green" if status == "completed" else "yellow"
        self.console.print(f"status: [{colour}]{status}[/]", highlight=False)
        if summary["message"]:
            self.console.print(escape(summary["message"]), highlight=False)
        if summary["test_accuracy"] is not None or summary["test_loss"] is not None:
            self.console.print(
                f"test loss {number(summary['test_loss'])}  "
                f"test accuracy {percent(summary['test_accuracy'])}  "
                f"({summary['duration_seconds']:.1f}s)",
                highlight=False,
            )

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
