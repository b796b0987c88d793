"""A sweep directory, and the study it belongs to.

    runs/sweeps/20261201-093000-mlp-search/
        sweep.yaml      the resolved sweep file (base config embedded, storage, study name)
        study.db        the Optuna study (SQLite), unless --storage names another
        trials/         one ordinary npnet run directory per trial
        workers/        each worker process's log
        trials.csv      every trial: number, state, value, parameters, run directory
        best.yaml       the best trial's full config, which `npnet train` accepts as is

The study keeps the resolved sweep in its user attributes too, so a second `npnet sweep` that
joins it (another machine, the same --storage and --study) is refused if its sweep differs.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import yaml

from npnet.engine import runs
from npnet.errors import ConfigError, RunError
from npnet.tools.sweep.spec import Sweep, load_sweep, resolved
from npnet.tools.sweep.storage import StudyLock, default_storage, open_storage

SWEEP_FILE = runs.SWEEP_FILE
TRIALS_DIR = "trials"
WORKERS_DIR = "workers"
SWEEP_ATTR = "npnet_sweep"


def storage_url(sweep: Sweep, sweep_dir: Path) -> str:
    return sweep.storage or default_storage(sweep_dir)


def read_sweep(sweep_dir: Path) -> Sweep:
    if not (sweep_dir / SWEEP_FILE).is_file():
        raise RunError(f"{sweep_dir}: no {SWEEP_FILE}; is this a sweep directory?")
    return load_sweep(sweep_dir / SWEEP_FILE)


def write_sweep(sweep_dir: Path, sweep: Sweep) -> None:
    text = yaml.safe_dump(resolved(sweep), sort_keys=False, default_flow_style=None)
    runs.write_text(sweep_dir / SWEEP_FILE, text)


def create_sweep(sweep: Sweep, runs_dir: Path, storage: str | None, study_name: str | None) -> Path:
    """A sweep directory under `runs_dir/sweeps/` and its study, created or joined.

    Without --study the directory is a new `<YYYYmmdd-HHMMSS>-<name>` and so is the study.
    With --study NAME the directory is `sweeps/NAME`, shared by every process that joins the
    study from this disk."""
    sweeps_dir = runs_dir / runs.SWEEPS_DIR
    if study_name is None:
        sweep_dir = runs.create_run_dir(sweeps_dir, sweep.name)
        study_name = sweep_dir.name
    else:
        sweep_dir = sweeps_dir / study_name
        try:
            (sweep_dir / TRIALS_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RunError(f"{sweep_dir}: cannot create the sweep directory ({error})") from None
    sweep.storage, sweep.study = storage, study_name
    join_study(sweep, sweep_dir)
    write_sweep(sweep_dir, sweep)
    return sweep_dir


def join_study(sweep: Sweep, sweep_dir: Path) -> None:
    """Create the study, or check that an existing one was made from the same sweep."""
    url = storage_url(sweep, sweep_dir)
    storage = open_storage(url, sweep.heartbeat_seconds)
    lock = StudyLock(url, sweep.study)  # two machines starting at once: one creates, one joins
    lock.acquire()
    try:
        study = optuna.create_study(
            study_name=sweep.study, storage=storage, direction=sweep.direction, load_if_exists=True
        )
        theirs = study.user_attrs.get(SWEEP_ATTR)
        ours = {k: v for k, v in resolved(sweep).items() if k not in ("base", "storage", "trials")}
        if theirs is None:
            study.set_user_attr(SWEEP_ATTR, ours)
            return
    finally:
        lock.release()
    differing = [key for key in ours if ours[key] != theirs.get(key)]
    if differing:
        raise ConfigError(
            f"{sweep.source}: study {sweep.study!r} in {url} was made from another sweep "
            f"('{differing[0]}' differs); give a new --study name"
        )


def open_study(sweep: Sweep, sweep_dir: Path) -> optuna.Study:
    storage = open_storage(storage_url(sweep, sweep_dir), sweep.heartbeat_seconds)
    return optuna.load_study(study_name=sweep.study, storage=storage)
