"""Early stopping: stops after `patience` epochs without improvement and delivers the best
epoch's weights, in weights.npz and in the test figures."""

import numpy as np

from npnet.config import load_config
from npnet.engine import runs
from npnet.engine.evaluate import load_run
from npnet.engine.loop import fit
from npnet.engine.metrics import evaluate

# A small training set and a large learning rate: validation loss turns up within a few epochs.
OVERFIT = """\
name: overfit
data: {dataset: digits, validation: 300, normalize: scale, train_size: 150}
model:
  layers: [flatten, {dense: {units: 64}}, relu, {dense: {units: 10}}]
optimizer: {name: sgd, lr: 0.3, momentum: 0.9}
train: {epochs: 40, batch_size: 16, early_stopping: {patience: 2, metric: val_loss}}
"""


def test_stops_after_patience_and_keeps_the_best_epoch(write_config, tmp_path):
    run_dir, summary = fit(load_config(write_config(OVERFIT)), tmp_path)
    rows = runs.read_metrics(run_dir)
    losses = [row["val_loss"] for row in rows]
    best = int(np.argmin(losses)) + 1
    assert summary["status"] == "completed"
    assert summary["best_epoch"] == best
    assert summary["epochs_completed"] == best + 2 < 40
    assert summary["message"] == (
        f"stopped early after epoch {best + 2}: val_loss has not improved for 2 epochs; "
        f"the weights of the best epoch ({best}) are kept"
    )
    exp = load_run(run_dir)  # weights.npz holds the best epoch's weights
    data = exp.dataset
    val = evaluate(exp.net, exp.loss, data.x_val, data.y_val, 1000, classify=True)
    assert val["loss"] == losses[best - 1]
    test = evaluate(exp.net, exp.loss, data.x_test, data.y_test, 1000, classify=True)
    assert test["accuracy"] == summary["test_accuracy"]
