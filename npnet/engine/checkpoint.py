"""Checkpoints: everything needed to continue a run exactly where its last epoch ended.

checkpoint.npz holds the network's arrays ("net/<key>"), the optimizer's state ("opt/<key>"),
the best weights under early stopping ("best/<key>"), and one JSON document ("meta": epoch,
metrics so far, schedule state, random-stream states). No pickles: it loads with
`allow_pickle=False`.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from npnet.engine import runs
from npnet.engine.experiment import Experiment
from npnet.engine.state import Best, TrainingState
from npnet.errors import RunError
from npnet.validate import shown

CHECKPOINT_FILE = "checkpoint.npz"


def save(run_dir: Path, exp: Experiment, state: TrainingState) -> None:
    runs.write_file(*checkpoint_file(run_dir, exp, state))


def checkpoint_file(
    run_dir: Path, exp: Experiment, state: TrainingState
) -> tuple[Path, runs.Writer]:
    """checkpoint.npz's path and writer, for writing it together with other files."""
    arrays = {f"net/{k}": v for k, v in exp.net.state().items()}
    arrays.update({f"opt/{k}": np.asarray(v) for k, v in exp.optimizer.state_dict().items()})
    meta = {
        "epoch": state.epoch,
        "rows": state.rows,
        "seconds": state.seconds,
        "schedule": exp.schedule.state_dict(),
        "shuffle_rng": state.shuffle_rng.bit_generator.state,
        "noise_rng": state.noise_rng.bit_generator.state,
        "best": None,
    }
    if state.best is not None:
        meta["best"] = {"epoch": state.best.epoch, "value": state.best.value}
        arrays.update({f"best/{k}": v for k, v in state.best.state.items()})
    arrays["meta"] = np.array(json.dumps(meta))
    return runs.arrays_file(run_dir / CHECKPOINT_FILE, arrays)


def saved_epoch(run_dir: Path) -> int | None:
    """The epoch the run's checkpoint holds, or None when there is none (or it is unreadable):
    what messages about "what is saved" must say."""
    try:
        with np.load(run_dir / CHECKPOINT_FILE, allow_pickle=False) as archive:
            epoch = json.loads(str(archive["meta"]))["epoch"]
    except (OSError, KeyError, ValueError, TypeError, EOFError, zipfile.BadZipFile):
        return None
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None


class Fields:
    """Reads a checkpoint's fields one by one: whatever is missing, of the wrong type or
    shape is one RunError naming the file and the field, never a TypeError or KeyError."""

    def __init__(self, path: Path):
        self.path = path

    def error(self, name: str, problem: str) -> RunError:
        return RunError(
            f"{self.path}: damaged checkpoint: '{name}' {problem}; resume needs an intact "
            "checkpoint.npz (train the config again if there is none)"
        )

    def get(self, meta: dict[str, Any], name: str, types: tuple[type, ...]) -> Any:
        if name not in meta:
            raise self.error(name, "is missing")
        value = meta[name]
        if isinstance(value, bool) or not isinstance(value, types):
            raise self.error(
                name, f"should be {' or '.join(t.__name__ for t in types)}, got {shown(value)}"
            )
        return value

    def restore(self, name: str, apply: Callable[[], Any]) -> Any:
        """Run `apply`; its KeyError, TypeError, ValueError, ... become this field's error."""
        try:
            return apply()
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as e:
            raise self.error(name, f"does not load ({type(e).__name__}: {shown(str(e))})") from None


def load(run_dir: Path, exp: Experiment) -> TrainingState:
    """Restore `exp` (weights, optimizer, schedule) from the run's checkpoint and return the
    training state to continue from; every field is checked before it is used."""
    path = run_dir / CHECKPOINT_FILE
    try:
        present = path.is_file()
    except OSError:
        present = True  # load_arrays names what is wrong with it
    if not present:
        raise RunError(f"{run_dir}: no {CHECKPOINT_FILE}; only runs that finished an epoch resume")
    arrays = runs.load_arrays(path)
    fields = Fields(path)
    try:
        meta = json.loads(str(arrays["meta"]))
    except (KeyError, ValueError):
        raise RunError(f"{path}: not an npnet checkpoint (no readable 'meta')") from None
    if not isinstance(meta, dict):
        raise fields.error("meta", f"should be a mapping, got {shown(meta)}")

    def section(prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}

    epoch = fields.get(meta, "epoch", (int,))
    epochs = exp.config.train.epochs
    if not 1 <= epoch <= epochs:
        raise fields.error("epoch", f"is {epoch}, outside 1..{epochs} (train.epochs)")
    rows = fields.get(meta, "rows", (list,))
    grad_norms = list(exp.net.parameters()) if exp.config.train.log_grad_norms else None
    if len(rows) != epoch or not all(
        metric_row(row, i + 1, grad_norms) for i, row in enumerate(rows)
    ):
        raise fields.error(
            "rows", f"should be {epoch} rows of metrics ({', '.join(runs.METRIC_COLUMNS)})"
        )
    seconds = float(fields.get(meta, "seconds", (int, float)))
    exp.net.load_state(section("net/"), str(path))
    check_optimizer_state(fields, section("opt/"), exp.net.parameters())
    fields.restore("opt", lambda: exp.optimizer.load_state_dict(section("opt/")))
    fields.restore("schedule", lambda: exp.schedule.load_state_dict(meta["schedule"]))
    streams = []
    for name in ("shuffle_rng", "noise_rng"):
        stream = np.random.default_rng()
        state = fields.get(meta, name, (dict,))
        if state.get("bit_generator") != type(stream.bit_generator).__name__:
            raise fields.error(name, f"is not a {type(stream.bit_generator).__name__} state")
        fields.restore(name, lambda s=stream, state=state: setattr(s.bit_generator, "state", state))
        streams.append(stream)
    best = None
    if meta.get("best") is not None:
        best_meta = fields.get(meta, "best", (dict,))
        best_epoch = fields.get(best_meta, "epoch", (int,))
        value = fields.get(best_meta, "value", (int, float))
        if not 1 <= best_epoch <= epoch:
            raise fields.error("best.epoch", f"is {best_epoch}, outside 1..{epoch}")
        best_state = section("best/")
        exp.net.check_state(best_state, f"{path} (best/)")
        best = Best(epoch=best_epoch, value=value, state=best_state)
    return TrainingState(
        epoch=epoch,
        rows=rows,
        shuffle_rng=streams[0],
        noise_rng=streams[1],
        seconds=seconds,
        best=best,
    )


def metric_row(row: Any, epoch: int, grad_norms: list[str] | None) -> bool:
    """Whether `row` is epoch `epoch`'s metrics: every column a number (or None, for the
    validation and accuracy figures a run may lack), and with `grad_norms` (the parameter
    keys) one number per parameter."""
    if not isinstance(row, dict) or row.get("epoch") != epoch:
        return False
    for column in runs.METRIC_COLUMNS:
        value = row.get(column, "missing")
        if isinstance(value, bool) or not (value is None or isinstance(value, (int, float))):
            return False
    if grad_norms is not None:
        norms = row.get("grad_norms")
        if not isinstance(norms, dict) or list(norms) != grad_norms:
            return False
        return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in norms.values())
    return True


def check_optimizer_state(
    fields: Fields, flat: dict[str, np.ndarray], params: dict[str, np.ndarray]
) -> None:
    """The optimizer's arrays: a scalar lr and step count, and per-parameter slots of the
    parameter's shape and a floating dtype."""
    for name in ("lr", "steps"):
        value = flat.get(name)
        if value is None or value.shape != () or value.dtype.kind not in "iuf":
            raise fields.error(f"opt/{name}", "should be a number")
    for name, value in flat.items():
        if not name.startswith("state/"):
            continue
        key = name[len("state/") :].rsplit("/", 1)[0]
        if key not in params:
            raise fields.error(f"opt/{name}", "belongs to no parameter of this model")
        if value.shape != params[key].shape or value.dtype.kind != "f":
            raise fields.error(
                f"opt/{name}",
                f"is {value.dtype} {value.shape}, the parameter is "
                f"{params[key].dtype} {params[key].shape}",
            )
