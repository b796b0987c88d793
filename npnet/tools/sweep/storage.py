"""Where a study lives, and how workers claim its trials without running one too many.

The default storage is SQLite, `study.db` in the sweep directory: one file, no server, and
the one file storage whose Optuna backend (RDBStorage) has heartbeats, which is what turns a
killed worker's trial into a failed one (Optuna's journal file storage has none). PostgreSQL
(`postgresql://USER@HOST/DB`) is the same RDBStorage over the network, for many machines.

Optuna's own `n_trials` counts per process, so N workers would overshoot the study's total.
Each worker therefore claims a trial under a lock shared by all of them (StudyLock): it
counts the trials that are done or running and only then asks Optuna for a new one.
"""

from __future__ import annotations

import fcntl
import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

from npnet.errors import ConfigError

STUDY_FILE = "study.db"
ERROR_ATTR = "error"  # set on a trial that failed by its own error: it counts, and stays failed


def default_storage(sweep_dir: Path) -> str:
    return f"sqlite:///{(sweep_dir / STUDY_FILE).resolve()}"


def backend(url: str) -> str:
    try:
        name = sqlalchemy.engine.make_url(url).get_backend_name()
    except sqlalchemy.exc.ArgumentError:
        name = None
    if name not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"--storage: expected sqlite:///FILE or postgresql://USER@HOST/DB, got {url!r}"
        )
    return name


def driver_url(url: str) -> str:
    """`url` with the driver the `sweep` extra installs, whatever SQLAlchemy's default is."""
    if sqlalchemy.engine.make_url(url).drivername == "postgresql":
        return url.replace("postgresql://", "postgresql+psycopg://", 1)
    return url


def open_storage(url: str, heartbeat_seconds: int) -> optuna.storages.RDBStorage:
    """The study storage at `url`, with heartbeats: a running trial whose worker sent none
    for 3 heartbeats is failed by the next worker that claims a trial. Opening it creates
    Optuna's tables in a new database, so processes starting together take turns."""
    engine_kwargs: dict[str, Any] = (
        {"connect_args": {"timeout": 60}} if backend(url) == "sqlite" else {"pool_pre_ping": True}
    )
    lock = StudyLock(url, "npnet: create the tables")
    try:
        lock.acquire()
        with warnings.catch_warnings():  # heartbeats are marked experimental since Optuna 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                driver_url(url),
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_seconds,
                grace_period=3 * heartbeat_seconds,
            )
    except (sqlalchemy.exc.OperationalError, ImportError) as error:
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
        raise ConfigError(f"--storage {url}: cannot open the study storage ({reason})") from None
    finally:
        lock.release()


class StudyLock:
    """A lock shared by every process that uses the storage at `url`, one per `name`: workers
    hold it from counting the trials until their new trial exists.

    SQLite: `flock` on a file beside the database (one machine). PostgreSQL: a session
    advisory lock (any number of machines). The kernel or the server frees it if its holder
    dies."""

    def __init__(self, url: str, name: str):
        self.url = url
        # A stable 63-bit key for pg_advisory_lock.
        self.key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") >> 1
        self.engine: sqlalchemy.engine.Engine | None = None
        self.held: Any = None

    def acquire(self) -> None:
        if backend(self.url) == "sqlite":
            database = sqlalchemy.engine.make_url(self.url).database
            self.held = Path(f"{database}.lock").open("a")  # noqa: SIM115 (held until release)
            fcntl.flock(self.held, fcntl.LOCK_EX)
            return
        if self.engine is None:
            self.engine = sqlalchemy.create_engine(driver_url(self.url), pool_pre_ping=True)
        self.held = self.engine.connect()
        self.held.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": self.key})
        self.held.commit()

    def release(self) -> None:
        """Release if held (safe to call twice)."""
        held, self.held = self.held, None
        if held is None:
            return
        if isinstance(held, sqlalchemy.engine.Connection):
            held.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            held.commit()
        held.close()  # closing the file frees the flock


@dataclass
class Tally:
    complete: int = 0
    pruned: int = 0
    failed: int = 0  # all failed trials, including those of dead or interrupted workers
    errors: int = 0  # failed by their own error: these count towards the study's total
    running: int = 0

    @property
    def done(self) -> int:
        return self.complete + self.pruned + self.errors

    @property
    def claimed(self) -> int:
        return self.done + self.running


def tally(trials: list[FrozenTrial]) -> Tally:
    """Count trials by state; a failed trial counts as done only when it failed by its own
    error, so the place of a killed or interrupted one is taken by a new trial."""
    counts = Tally()
    for trial in trials:
        if trial.state == TrialState.COMPLETE:
            counts.complete += 1
        elif trial.state == TrialState.PRUNED:
            counts.pruned += 1
        elif trial.state == TrialState.FAIL:
            counts.failed += 1
            counts.errors += ERROR_ATTR in trial.user_attrs
        elif trial.state in (TrialState.RUNNING, TrialState.WAITING):
            counts.running += 1
    return counts
