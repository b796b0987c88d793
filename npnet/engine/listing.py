"""The runs directory as a whole: find a run (`latest`), list the runs with their summaries
(`npnet runs`), and compare two runs' configs and results (`npnet runs compare`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from npnet.config import to_dict
from npnet.engine.runs import (
    CONFIG_FILE,
    SUMMARY_FILE,
    SWEEP_FILE,
    SWEEPS_DIR,
    present,
    read_config,
    read_summary,
    run_directory,
)
from npnet.errors import RunError


def resolve_run_dir(run: str, runs_dir: Path) -> Path:
    """`run` as a directory; `latest` is the newest run in `runs_dir`."""
    if run == "latest":
        candidates = sorted(p for p in run_paths(runs_dir) if is_run_dir(p))
        if not candidates:
            raise RunError(f"{runs_dir}: no runs yet; train one with `npnet train CONFIG`")
        return candidates[-1]
    return run_directory(Path(run), f"try `latest`, or a path under {runs_dir}")


RUN_COLUMNS = [
    "run",
    "name",
    "date",
    "status",
    "epochs",
    "best_val_accuracy",
    "test_accuracy",
    "duration_seconds",
]


def run_paths(runs_dir: Path) -> list[Path]:
    """The entries of `runs_dir`, sorted; an unreadable runs directory is a RunError."""
    try:
        return sorted(runs_dir.iterdir()) if runs_dir.is_dir() else []
    except OSError as error:
        raise RunError(f"{runs_dir}: cannot list the runs ({error.strerror})") from None


def is_run_dir(path: Path) -> bool:
    """Whether `path` looks like a run directory (it has a config.yaml); False if unreadable."""
    try:
        return (path / CONFIG_FILE).is_file()
    except OSError:
        return False


def list_runs(runs_dir: Path) -> list[dict[str, Any]]:
    """One row per run directory under `runs_dir` (newest first), from its summary.json; a run
    still training (or killed) has no summary yet and shows status 'running?', a run whose
    summary is damaged shows 'unreadable' (and the reason in `note`), and the rest still list.
    Each sweep in `runs_dir/sweeps/` is one more row, whose `trials` are its trials' rows."""
    rows = []
    for path in reversed(run_paths(runs_dir)):
        if not is_run_dir(path):
            continue
        note = None
        if not present(path / SUMMARY_FILE):
            summary: dict[str, Any] = {"status": "running?"}
        else:
            try:
                summary = read_summary(path)
            except RunError as error:
                summary, note = {"status": "unreadable"}, str(error)
        rows.append(
            {
                "run": path.name,
                "name": summary.get("name") or path.name.split("-", 2)[-1],
                "date": f"{path.name[:4]}-{path.name[4:6]}-{path.name[6:8]} "
                f"{path.name[9:11]}:{path.name[11:13]}",
                "status": summary.get("status"),
                "epochs": summary.get("epochs_completed"),
                "best_val_accuracy": summary.get("best_val_accuracy"),
                "test_accuracy": summary.get("test_accuracy"),
                "duration_seconds": summary.get("duration_seconds"),
                "note": note,
            }
        )
    sweeps = reversed(run_paths(runs_dir / SWEEPS_DIR))
    rows.extend(sweep_row(path) for path in sweeps if is_sweep_dir(path))
    return rows


def is_sweep_dir(path: Path) -> bool:
    """Whether `path` is a sweep directory (`npnet sweep`: it has a sweep.yaml)."""
    try:
        return (path / SWEEP_FILE).is_file()
    except OSError:
        return False


def sweep_row(sweep_dir: Path) -> dict[str, Any]:
    """A sweep as one row of `list_runs`: status `sweep (N trials)`, the best accuracies of
    its trials and their total duration; `trials` holds the trials' own rows."""
    trials = list_runs(sweep_dir / "trials")

    def best(key: str) -> Any:
        values = [row[key] for row in trials if row[key] is not None]
        return max(values) if values else None

    durations = [row["duration_seconds"] or 0 for row in trials]
    return {
        "run": f"{SWEEPS_DIR}/{sweep_dir.name}",
        "name": sweep_dir.name,
        "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(sweep_dir.stat().st_mtime)),
        "status": f"sweep ({len(trials)})",
        "epochs": None,
        "best_val_accuracy": best("best_val_accuracy"),
        "test_accuracy": best("test_accuracy"),
        "duration_seconds": sum(durations) if trials else None,
        "note": None,
        "trials": trials,
    }


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}, "c": [x, y]} -> {"a.b": 1, "c[0]": x, "c[1]": y}."""
    if isinstance(data, dict):
        items = [(f"{prefix}.{k}" if prefix else str(k), v) for k, v in data.items()]
    elif isinstance(data, list) and data and isinstance(data[0], (dict, list)):
        items = [(f"{prefix}[{i}]", v) for i, v in enumerate(data)]
    else:
        return {prefix: data}
    flat: dict[str, Any] = {}
    for key, value in items:
        flat.update(flatten(value, key))
    return flat


def compare_runs(run_a: Path, run_b: Path) -> dict[str, Any]:
    """The config keys whose values differ between two runs, and both runs' summaries."""
    config_a = flatten(to_dict(read_config(run_a)))
    config_b = flatten(to_dict(read_config(run_b)))
    differences = [
        {"key": key, "a": config_a.get(key), "b": config_b.get(key)}
        for key in sorted(set(config_a) | set(config_b))
        if config_a.get(key) != config_b.get(key)
    ]
    return {
        "a": str(run_a),
        "b": str(run_b),
        "config_differences": differences,
        "summary_a": summary_or_status(run_a),
        "summary_b": summary_or_status(run_b),
    }


def summary_or_status(run_dir: Path) -> dict[str, Any]:
    """The run's summary, or just a status saying why there is none to show."""
    if not present(run_dir / SUMMARY_FILE):
        return {"status": "running?"}
    try:
        return read_summary(run_dir)
    except RunError as error:
        return {"status": "unreadable", "message": str(error)}
