"""Checkpoints: everything needed to continue a run exactly where its last epoch ended.

checkpoint.npz holds the network's arrays ("net/<key>"), the optimizer's state ("opt/<key>"),
the best weights under early stopping ("best/<key>"), and one JSON document ("meta": epoch,
metrics so far, schedule state, random-stream states). No pickles: it loads with
`allow_pickle=False`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from npnet.engine import runs
from npnet.engine.experiment import Experiment
from npnet.engine.state import Best, TrainingState
from npnet.errors import RunError

CHECKPOINT_FILE = "checkpoint.npz"


def save(run_dir: Path, exp: Experiment, state: TrainingState) -> None:
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
    runs.save_arrays(run_dir / CHECKPOINT_FILE, arrays)


def load(run_dir: Path, exp: Experiment) -> TrainingState:
    """Restore `exp` (weights, optimizer, schedule) from the run's checkpoint and return the
    training state to continue from."""
    path = run_dir / CHECKPOINT_FILE
    if not path.is_file():
        raise RunError(f"{run_dir}: no {CHECKPOINT_FILE}; only runs that finished an epoch resume")
    arrays = runs.load_arrays(path)
    try:
        meta = json.loads(str(arrays["meta"]))
    except (KeyError, ValueError):
        raise RunError(f"{path}: not an npnet checkpoint (no readable 'meta')") from None

    def section(prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}

    exp.net.load_state(section("net/"), str(path))
    exp.optimizer.load_state_dict(section("opt/"))
    exp.schedule.load_state_dict(meta["schedule"])
    shuffle_rng, noise_rng = np.random.default_rng(), np.random.default_rng()
    shuffle_rng.bit_generator.state = meta["shuffle_rng"]
    noise_rng.bit_generator.state = meta["noise_rng"]
    best = None
    if meta["best"] is not None:
        best = Best(**meta["best"], state=section("best/"))
    return TrainingState(
        epoch=meta["epoch"],
        rows=meta["rows"],
        shuffle_rng=shuffle_rng,
        noise_rng=noise_rng,
        seconds=meta["seconds"],
        best=best,
    )
