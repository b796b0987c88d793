"""Run directories: where a training keeps everything needed to rebuild and judge it.

    runs/20261125-093012-cnn/
        config.yaml     the fully resolved config (defaults, overrides and seed included)
        metrics.csv     one row per epoch
        grad_norms.csv  per epoch, each parameter's mean gradient norm (train.log_grad_norms)
        weights.npz     parameters and buffers, keyed "<layer>.<name>"; no pickles
        summary.json    status, test_loss, test_accuracy, duration, seed, versions
        checkpoint.npz  weights, optimizer, schedule and random states after the last epoch

Every file is written atomically (a temporary file in the same directory, then a rename), so
an interrupted write never leaves a half-written file where a good one was.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from npnet.config import Config, config_from_dict, dump_yaml, parse_yaml, to_dict
from npnet.errors import RunError

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.csv"
WEIGHTS_FILE = "weights.npz"
SUMMARY_FILE = "summary.json"
GRAD_NORMS_FILE = "grad_norms.csv"
SWEEPS_DIR = "sweeps"  # runs/sweeps/<YYYYmmdd-HHMMSS>-<name>/ (npnet sweep)
SWEEP_FILE = "sweep.yaml"
METRIC_COLUMNS = [
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "lr",
    "seconds",
]


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call `write(file)` on a temporary file beside `path`, then rename it over `path`."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda file: file.write(text.encode()))


def create_run_dir(runs_dir: Path, name: str) -> Path:
    """A new `runs_dir/<YYYYmmdd-HHMMSS>-<name>` directory; never an existing one."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunError(f"{runs_dir}: cannot create the runs directory ({error.strerror})") from None
    for attempt in range(1, 100):
        suffix = "" if attempt == 1 else f"-{attempt}"
        path = runs_dir / f"{stamp}-{name}{suffix}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as error:
            raise RunError(f"{path}: cannot create the run directory ({error.strerror})") from None
    raise RunError(f"{runs_dir}: too many runs named {name!r} this second")


def write_config(run_dir: Path, config: Config) -> None:
    atomic_write_text(run_dir / CONFIG_FILE, dump_yaml(config))


def write_metrics(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Rewrite metrics.csv with every epoch so far (small, and never half-appended)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=METRIC_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in METRIC_COLUMNS})
    atomic_write_text(run_dir / METRICS_FILE, text.getvalue())


def write_grad_norms(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    """grad_norms.csv: per epoch, the mean L2 norm of each parameter's gradient ("0.W", ...)."""
    keys = list(rows[0]["grad_norms"])
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["epoch", *keys])
    for row in rows:
        writer.writerow([row["epoch"], *(row["grad_norms"][k] for k in keys)])
    atomic_write_text(run_dir / GRAD_NORMS_FILE, text.getvalue())


def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    atomic_write_text(run_dir / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    atomic_write(path, lambda file: np.savez(file, **arrays))


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz file, refusing pickled objects; a damaged file is a RunError."""
    if not path.is_file():
        raise RunError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        raise RunError(f"{path}: not a readable weights file ({error})") from None


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return []
    with path.open() as file:
        return [
            {k: (float(v) if v not in ("", None) else None) for k, v in row.items()}
            for row in csv.DictReader(file)
        ]


def read_summary(run_dir: Path) -> dict[str, Any]:
    path = run_dir / SUMMARY_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(f"{run_dir}: no {SUMMARY_FILE}; is this a run directory?") from None
    except json.JSONDecodeError as error:
        raise RunError(f"{path}: not valid JSON ({error})") from None


def read_config(run_dir: Path) -> Config:
    path = run_dir / CONFIG_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise RunError(f"{run_dir}: no {CONFIG_FILE}; is this a run directory?") from None
    return config_from_dict(parse_yaml(text, str(path)), str(path))


def resolve_run_dir(run: str, runs_dir: Path) -> Path:
    """`run` as a directory; `latest` is the newest run in `runs_dir`."""
    if run == "latest":
        candidates = sorted(p for p in runs_dir.glob("*") if (p / CONFIG_FILE).is_file())
        if not candidates:
            raise RunError(f"{runs_dir}: no runs yet; train one with `npnet train CONFIG`")
        return candidates[-1]
    path = Path(run)
    if not path.is_dir():
        raise RunError(f"{run}: no such run directory (try `latest`, or a path under {runs_dir})")
    return path


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


def list_runs(runs_dir: Path) -> list[dict[str, Any]]:
    """One row per run directory under `runs_dir` (newest first), from its summary.json; a run
    still training (or killed) has no summary yet and shows status 'running?'. Each sweep in
    `runs_dir/sweeps/` is one more row, whose `trials` are its trials' rows."""
    rows = []
    for path in sorted(runs_dir.glob("*"), reverse=True):
        if not (path / CONFIG_FILE).is_file():
            continue
        try:
            summary = read_summary(path)
        except RunError:
            summary = {"status": "running?"}
        rows.append(
            {
                "run": path.name,
                "name": summary.get("name", path.name.split("-", 2)[-1]),
                "date": f"{path.name[:4]}-{path.name[4:6]}-{path.name[6:8]} "
                f"{path.name[9:11]}:{path.name[11:13]}",
                "status": summary.get("status"),
                "epochs": summary.get("epochs_completed"),
                "best_val_accuracy": summary.get("best_val_accuracy"),
                "test_accuracy": summary.get("test_accuracy"),
                "duration_seconds": summary.get("duration_seconds"),
            }
        )
    sweeps = sorted((runs_dir / SWEEPS_DIR).glob("*"), reverse=True)
    rows.extend(sweep_row(path) for path in sweeps if is_sweep_dir(path))
    return rows


def is_sweep_dir(path: Path) -> bool:
    return (path / SWEEP_FILE).is_file()


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
        "summary_a": read_summary(run_a),
        "summary_b": read_summary(run_b),
    }
