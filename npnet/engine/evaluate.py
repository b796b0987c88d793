"""Evaluate a finished run from its directory alone: config.yaml and weights.npz."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from npnet.engine import runs
from npnet.engine.experiment import Experiment, build_experiment
from npnet.engine.metrics import class_report, evaluate
from npnet.errors import ConfigError

SPLITS = ("test", "val", "train")


def load_run(run_dir: Path, data_dir: Path | None = None) -> Experiment:
    """Rebuild a run's data and network from its directory and load its weights."""
    config = runs.read_config(run_dir)
    if data_dir is not None:
        config.data.options["root"] = str(data_dir)
    exp = build_experiment(config)
    weights_path = run_dir / runs.WEIGHTS_FILE
    exp.net.load_state(runs.load_arrays(weights_path), str(weights_path))
    return exp


def evaluate_run(
    run_dir: Path, split: str = "test", data_dir: Path | None = None
) -> dict[str, Any]:
    """Rebuild the run's network, load its weights and measure loss, accuracy, the per-class
    report and the confusion matrix on `split`. The data is split and normalized exactly as it
    was for training (same config, same seed), so test figures match summary.json."""
    if split not in SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    exp = load_run(run_dir, data_dir)
    config, data = exp.config, exp.dataset
    x, y = {
        "test": (data.x_test, data.y_test),
        "val": (data.x_val, data.y_val),
        "train": (data.x_train, data.y_train),
    }[split]
    if len(x) == 0:
        raise ConfigError(f"{run_dir}: the run has no {split} split (data.validation is 0)")
    classify = data.num_classes is not None
    measured = evaluate(exp.net, exp.loss, x, y, config.train.eval_batch_size, classify)
    result = {
        "run_dir": str(run_dir),
        "split": split,
        "samples": len(x),
        "loss": measured["loss"],
        "accuracy": measured["accuracy"],
    }
    if classify:
        result.update(class_report(measured["outputs"], y, data.num_classes))
        result["class_names"] = data.class_names
    return result
