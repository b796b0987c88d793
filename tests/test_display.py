"""Terminal rendering helpers with exact, hand-computed output."""

from npnet.cli.tables import epochs_table, sparkline


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
