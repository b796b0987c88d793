"""Terminal rendering helpers with exact, hand-computed output."""

import numpy as np
from rich.console import Console

from npnet.cli.progress import TrainingProgress
from npnet.cli.tables import epochs_table, sparkline
from npnet.data import load_dataset
from npnet.nn.network import Network


def test_sparkline_scales_from_lowest_to_highest():
    assert sparkline([0.90, 0.96, 1.00]) == "▁▅█"  # 0.6 of the way: round(4.2) = 4
    assert sparkline([0.5, None, 0.5]) == "██"
    assert sparkline([]) == ""


def test_epochs_table_has_a_row_per_epoch_and_the_trend_underneath():
    rows = [
        {
            "epoch": e,
            "train_loss": 1 / e,
            "train_accuracy": 0.8 + e / 100,
            "val_loss": 0.5,
            "val_accuracy": acc,
            "lr": 0.1,
            "seconds": 2.0,
        }
        for e, acc in [(1, 0.90), (2, 0.97), (3, 0.99)]
    ]
    table = epochs_table(rows)
    assert table.row_count == 3
    assert table.caption == "val accuracy ▁▆█"


def epoch_row(epoch):
    return {
        "epoch": epoch,
        "train_loss": 1.0 / epoch,
        "train_accuracy": 0.5,
        "val_loss": 0.5,
        "val_accuracy": 0.5 + epoch / 10,
        "lr": 0.1,
        "seconds": 1.0,
    }


def test_training_progress_tables_every_epoch_of_a_resumed_run(tmp_path):
    """The final table holds the epochs the loop reported: those before a resume (given to
    on_train_start) and those after; no file is read, so a missing run directory is fine."""
    console = Console(record=True, width=120)
    progress = TrainingProgress(console)
    dataset = load_dataset("digits", validation=100)
    net = Network.from_specs([{"dense": {"units": 10}}], (64,), np.random.default_rng(0))
    progress.on_train_start(tmp_path / "missing", net, dataset, [epoch_row(1), epoch_row(2)])
    progress.on_epoch_start(3, 3, 1)
    progress.on_batch_end(0, 0.3, 0.5)
    progress.on_epoch_end(epoch_row(3))
    summary = {"status": "completed", "message": None, "test_accuracy": 0.9, "test_loss": 0.3}
    progress.on_train_end({**summary, "duration_seconds": 3.0})
    text = console.export_text()
    epochs = [line.split()[1] for line in text.splitlines() if line.startswith("│")]
    assert epochs[-3:] == ["1", "2", "3"]
    assert "val accuracy ▁▄█" in text  # 0.6, 0.7, 0.8: the middle one at round(3.5) = 4
