"""Run directories: where a training keeps everything needed to rebuild and judge it.

    runs/20261125-093012-cnn/
        config.yaml     the fully resolved config (defaults, overrides and seed included)
        metrics.csv     one row per epoch
        grad_norms.csv  per epoch, each parameter's mean gradient norm (train.log_grad_norms)
        weights.npz     parameters and buffers, keyed "<layer>.<name>"; no pickles
        summary.json    status, test_loss, test_accuracy, duration, seed, versions
        checkpoint.npz  weights, optimizer, schedule and random states after the last epoch

Every file is written atomically (`npnet.files.atomic_write`: a temporary file in the same
directory, then a rename), so an interrupted write never leaves a half-written file where a
good one was. Every file is read back defensively: a damaged file is one RunError naming it,
never a traceback, and `list_runs` marks a damaged run instead of failing for all of them.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from npnet.config import Config, config_from_dict, dump_yaml, parse_yaml, to_dict
from npnet.errors import RunError
from npnet.files import (
    Writer,
    atomic_write_all,
    dumps_strict_json,
    read_text_bounded,
    remove_stale_temporaries,
)
from npnet.files import atomic_write as atomic_write  # re-exported: plots write figures with it

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.csv"
WEIGHTS_FILE = "weights.npz"
SUMMARY_FILE = "summary.json"
GRAD_NORMS_FILE = "grad_norms.csv"
METRIC_COLUMNS = [
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "lr",
    "seconds",
]


def write_files(files: list[tuple[Path, Writer]]) -> None:
    """`atomic_write_all`, with a failure of the file system (a full disk, a read-only
    directory) as a RunError naming the directory or file."""
    try:
        atomic_write_all(files)
    except OSError as error:
        where = error.filename or files[0][0].parent
        raise RunError(f"{where}: cannot write ({error.strerror or error})") from None


def write_file(path: Path, write: Writer) -> None:
    write_files([(path, write)])


def write_text(path: Path, text: str) -> None:
    write_file(path, text_writer(text))


def text_writer(text: str) -> Writer:
    return lambda file: file.write(text.encode())


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
    write_text(run_dir / CONFIG_FILE, dump_yaml(config))


def write_metrics(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Rewrite metrics.csv with every epoch so far (small, and never half-appended)."""
    write_file(*metrics_file(run_dir, rows))


def metrics_file(run_dir: Path, rows: list[dict[str, Any]]) -> tuple[Path, Writer]:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=METRIC_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in METRIC_COLUMNS})
    return run_dir / METRICS_FILE, text_writer(text.getvalue())


def write_grad_norms(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    """grad_norms.csv: per epoch, the mean L2 norm of each parameter's gradient ("0.W", ...)."""
    write_file(*grad_norms_file(run_dir, rows))


def grad_norms_file(run_dir: Path, rows: list[dict[str, Any]]) -> tuple[Path, Writer]:
    keys = list(rows[0]["grad_norms"])
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["epoch", *keys])
    for row in rows:
        writer.writerow([row["epoch"], *(row["grad_norms"][k] for k in keys)])
    return run_dir / GRAD_NORMS_FILE, text_writer(text.getvalue())


def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    """summary.json, strict JSON: a NaN or infinite figure is null with a `<key>_reason`."""
    write_text(run_dir / SUMMARY_FILE, dumps_strict_json(summary) + "\n")


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    write_file(*arrays_file(path, arrays))


def arrays_file(path: Path, arrays: dict[str, np.ndarray]) -> tuple[Path, Writer]:
    return path, lambda file: np.savez(file, **arrays)


RUN_FILES = [CONFIG_FILE, METRICS_FILE, WEIGHTS_FILE, SUMMARY_FILE, GRAD_NORMS_FILE]


def remove_stale_files(run_dir: Path, names: list[str]) -> None:
    """Remove what a killed write left in `run_dir`: the temporaries of the files `names`."""
    try:
        remove_stale_temporaries(run_dir, names)
    except OSError as error:
        raise RunError(f"{run_dir}: cannot clean up ({error.strerror or error})") from None


# Text files of a run are small; a bound keeps a hostile file (or /dev/zero) from filling memory.
TEXT_LIMIT = 16 * 1024 * 1024


def read_run_text(path: Path, what: str) -> str:
    """The text of a run file; a missing, unreadable, binary or oversized one is a RunError."""
    try:
        return read_text_bounded(path, TEXT_LIMIT)
    except FileNotFoundError:
        raise RunError(f"{path.parent}: no {path.name}; is this a run directory?") from None
    except OSError as error:
        raise RunError(f"{path}: cannot read the {what} ({error.strerror or error})") from None
    except ValueError as error:
        raise RunError(f"{path}: cannot read the {what} ({error})") from None


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz file, refusing pickled objects; a damaged file is a RunError."""
    try:
        if not path.is_file():
            problem = "not a regular file" if path.exists() else "no such file"
            raise RunError(f"{path}: {problem}")
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        reason = getattr(error, "strerror", None) or error
        raise RunError(f"{path}: not a readable weights file ({reason})") from None


def read_csv_numbers(path: Path, required: list[str]) -> list[dict[str, float | None]]:
    """The rows of a numeric CSV that npnet wrote (metrics.csv, grad_norms.csv): every cell a
    number or empty (None), every column of `required` present. Anything else is a RunError
    naming the file, the line and the cell."""
    text = read_run_text(path, "table")
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    missing = [name for name in required if name not in columns]
    if missing:
        raise RunError(f"{path}: not an npnet table (missing columns {', '.join(missing)})")
    rows = []
    try:
        for row in reader:
            if None in row or None in row.values():
                raise RunError(f"{path}: line {reader.line_num}: wrong number of cells")
            rows.append({k: number_cell(path, reader.line_num, k, v) for k, v in row.items()})
    except csv.Error as error:
        raise RunError(f"{path}: line {reader.line_num}: not CSV ({error})") from None
    return rows


def number_cell(path: Path, line: int, column: str, cell: str) -> float | None:
    if cell == "":
        return None
    try:
        return float(cell)
    except ValueError:
        raise RunError(
            f"{path}: line {line}, column {column!r}: expected a number, got {cell[:40]!r}"
        ) from None


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """metrics.csv's rows ([] when there is none yet); a damaged file is a RunError."""
    path = run_dir / METRICS_FILE
    if not present(path):
        return []
    return read_csv_numbers(path, METRIC_COLUMNS)


def read_grad_norms(run_dir: Path, layers: int) -> list[dict[str, float | None]]:
    """grad_norms.csv's rows; every column but `epoch` must name a parameter ("3.W") of one
    of the run's `layers` layers, and a damaged file is a RunError."""
    path = run_dir / GRAD_NORMS_FILE
    rows = read_csv_numbers(path, ["epoch"])
    for key in rows[0] if rows else []:
        index, _, name = key.partition(".")
        if key != "epoch" and not (index.isdigit() and int(index) < layers and name):
            raise RunError(f"{path}: column {key[:40]!r} names no parameter of the model")
    return rows


# summary.json keys and the types they must have (None is allowed for every one).
SUMMARY_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "status": (str,),
    "message": (str,),
    "epochs_completed": (int,),
    "epochs": (int,),
    "best_epoch": (int,),
    "test_loss": (int, float),
    "test_accuracy": (int, float),
    "final_val_loss": (int, float),
    "final_val_accuracy": (int, float),
    "best_val_accuracy": (int, float),
    "duration_seconds": (int, float),
    "seconds_per_epoch": (int, float),
    "seed": (int,),
    "num_params": (int,),
    "train_examples": (int,),
}


def read_summary(run_dir: Path) -> dict[str, Any]:
    """summary.json as a mapping whose known keys have their types; else a RunError."""
    path = run_dir / SUMMARY_FILE
    try:
        summary = json.loads(read_run_text(path, "summary"))
    except json.JSONDecodeError as error:
        raise RunError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(summary, dict):
        raise RunError(f"{path}: expected a JSON object, got a {type(summary).__name__}")
    for key, types in SUMMARY_TYPES.items():
        value = summary.get(key)
        bad_number = isinstance(value, float) and not math.isfinite(value)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, types) or bad_number
        ):
            raise RunError(f"{path}: '{key}' has the wrong type: {str(value)[:40]!r}")
    return summary


def read_config(run_dir: Path) -> Config:
    path = run_dir / CONFIG_FILE
    text = read_run_text(path, "config")
    return config_from_dict(parse_yaml(text, str(path)), str(path))


def resolve_run_dir(run: str, runs_dir: Path) -> Path:
    """`run` as a directory; `latest` is the newest run in `runs_dir`."""
    if run == "latest":
        candidates = sorted(p for p in run_paths(runs_dir) if is_run_dir(p))
        if not candidates:
            raise RunError(f"{runs_dir}: no runs yet; train one with `npnet train CONFIG`")
        return candidates[-1]
    return run_directory(Path(run), f"try `latest`, or a path under {runs_dir}")


def run_directory(path: Path, hint: str) -> Path:
    """`path` if it is a directory; a file, a symlink loop or a missing path is a RunError."""
    try:
        if path.is_dir():
            return path
        exists = path.exists()
    except OSError as error:
        raise RunError(f"{path}: cannot open the run directory ({error.strerror})") from None
    what = "not a directory; give the run's directory" if exists else "no such run directory"
    raise RunError(f"{path}: {what} ({hint})")


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


def present(path: Path) -> bool:
    """Whether `path` exists; True when that cannot even be checked (a directory without
    permission), so that reading it then names the problem instead of skipping it."""
    try:
        return path.exists()
    except OSError:
        return True


def is_run_dir(path: Path) -> bool:
    """Whether `path` looks like a run directory (it has a config.yaml); False if unreadable."""
    try:
        return (path / CONFIG_FILE).is_file()
    except OSError:
        return False


def list_runs(runs_dir: Path) -> list[dict[str, Any]]:
    """One row per run directory under `runs_dir` (newest first), from its summary.json; a run
    still training (or killed) has no summary yet and shows status 'running?', a run whose
    summary is damaged shows 'unreadable' (and the reason in `note`), and the rest still list."""
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
    return rows


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
