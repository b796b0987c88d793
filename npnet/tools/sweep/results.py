"""What a sweep found, from its study: trial rows, trials.csv and best.yaml."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from npnet.engine import runs
from npnet.tools.sweep.spec import Sweep
from npnet.tools.sweep.storage import ERROR_ATTR

TRIALS_CSV = "trials.csv"
BEST_FILE = "best.yaml"
STATES = {
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
}


def trial_rows(study: optuna.Study, sweep: Sweep) -> list[dict[str, Any]]:
    """Every trial, the best first: finished ones by the metric (pruned ones by the last value
    they reported), then the running and failed ones by number."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        rows.append(
            {
                "trial": trial.number,
                "state": STATES[trial.state],
                "value": trial.value,
                "epochs": len(trial.intermediate_values),
                "seconds": trial.duration.total_seconds() if trial.duration else None,
                "params": dict(trial.params),
                "run_dir": trial.user_attrs.get("run_dir"),
                "host": trial.user_attrs.get("host"),
                "error": trial.user_attrs.get(ERROR_ATTR),
            }
        )
    sign = -1 if sweep.direction == "maximize" else 1

    def order(row: dict[str, Any]) -> tuple:
        value = row["value"]
        ranked = value is not None and math.isfinite(value)
        return (not ranked, sign * value if ranked else 0, row["trial"])

    return sorted(rows, key=order)


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best complete trial, if there is one yet."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if not complete:
        return None
    pick = max if study.direction == optuna.study.StudyDirection.MAXIMIZE else min
    return pick(complete, key=lambda t: t.value)


def write_trials_csv(sweep_dir: Path, rows: list[dict[str, Any]], sweep: Sweep) -> Path:
    keys = list(sweep.parameters)
    columns = ["trial", "state", sweep.metric, "epochs", "seconds", *keys, "run_dir", "host"]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    for row in sorted(rows, key=lambda r: r["trial"]):
        params = [row["params"].get(key, "") for key in keys]
        cells = [row["trial"], row["state"], row["value"], row["epochs"], row["seconds"]]
        writer.writerow(
            ["" if c is None else c for c in [*cells, *params, row["run_dir"], row["host"]]]
        )
    path = sweep_dir / TRIALS_CSV
    runs.write_text(path, text.getvalue())
    return path


def write_best(sweep_dir: Path, study: optuna.Study, sweep: Sweep) -> Path | None:
    """best.yaml: the best complete trial's full resolved config, as the trial trained it
    (kept in the study, so a machine that did not run the trial has it too), and the command
    that retrains it exactly."""
    best = best_trial(study)
    if best is None:
        return None
    config = best.user_attrs["config"]
    path = sweep_dir / BEST_FILE
    blas = best.user_attrs.get("blas_threads")  # None in a study older than the attribute
    params = ", ".join(f"{k}={v!r}" for k, v in best.params.items())
    header = (
        f"# The best trial of sweep {sweep.study}: trial {best.number}, "
        f"{sweep.metric} {best.value:.6g}\n# with {params}.\n"
        f"# Train it again, to the last digit, with its BLAS threads:\n"
        f"#   {'' if blas is None else f'OMP_NUM_THREADS={blas} '}npnet train {path}\n"
    )
    runs.write_text(path, header + yaml.safe_dump(config, sort_keys=False))
    return path
