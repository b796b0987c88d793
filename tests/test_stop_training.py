"""A callback can end a run after an epoch with its own status (a sweep's pruner: `pruned`):
the loop stops there cleanly, with that epoch's files written and no test evaluation."""

import json

from tiny import TINY_MLP

from npnet.config import config_from_dict, parse_yaml
from npnet.engine import runs
from npnet.engine.callbacks import Callback, StopTraining
from npnet.engine.loop import fit


class StopAfter(Callback):
    def __init__(self, epoch: int):
        self.epoch, self.seen = epoch, []

    def on_epoch_end(self, row):
        self.seen.append(row["epoch"])
        if row["epoch"] == self.epoch:
            raise StopTraining("pruned", f"stopped after epoch {self.epoch}")

    def on_train_end(self, summary):
        self.summary = summary


def test_stop_training_ends_the_run_after_the_epoch_with_its_status(tmp_path):
    config = config_from_dict(parse_yaml(TINY_MLP, "tiny"), "tiny")  # 3 epochs
    callback = StopAfter(2)
    run_dir, summary = fit(config, tmp_path, callback)
    assert callback.seen == [1, 2]
    assert (summary["status"], summary["message"]) == ("pruned", "stopped after epoch 2")
    assert summary["epochs_completed"] == 2 and summary["test_accuracy"] is None
    assert json.loads((run_dir / "summary.json").read_text()) == summary == callback.summary
    assert [row["epoch"] for row in runs.read_metrics(run_dir)] == [1.0, 2.0]
    assert (run_dir / "weights.npz").is_file() and (run_dir / "checkpoint.npz").is_file()
