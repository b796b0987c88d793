"""Interrupts: the block they must wait for, and messages that say what is on disk.

Ctrl-C and SIGTERM may land anywhere in a training. Where a few files must change together
(an epoch's files, the summary), `interrupts_deferred` holds them until the block is done;
everywhere else they stop the run at once, and the messages below are read from the
checkpoint on disk, so they describe what a resume would really find.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from npnet.engine import checkpoint, runs


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block is done, then raise KeyboardInterrupt: the
    block (an epoch's files) happens entirely or, when it fails, not at all."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def hold(signum: int, frame: Any) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        raise KeyboardInterrupt


def interrupted_message(run_dir: Path, epochs: int) -> str:
    """What an interrupt leaves, as the checkpoint on disk has it."""
    saved = checkpoint.saved_epoch(run_dir)
    resume = f"Resume with: npnet train --resume {run_dir}"
    if saved is None:
        return (
            "interrupted before the first epoch ended; nothing was trained or saved, so there "
            f"is nothing to resume. Train again with: npnet train {run_dir / runs.CONFIG_FILE}"
        )
    if saved >= epochs:
        return (
            f"interrupted during the final test evaluation; all {saved} epochs are saved. "
            f"{resume} (it evaluates the test split)"
        )
    return f"interrupted after epoch {saved}, which is saved. {resume}"


def diverged_kept(run_dir: Path) -> str:
    saved = checkpoint.saved_epoch(run_dir)
    if saved is None:
        return "no epoch had finished, so no weights were saved"
    return f"the files saved after epoch {saved}, the last good one, are kept"
