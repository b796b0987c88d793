"""How many cores this process may use, and blocks that keep BLAS on one thread.

    with one_blas_thread():    # BLAS on one thread inside the block, as it was after it
        ...

Slices of a batch that run at once each keep BLAS to one thread (two BLAS threads per slice
on two cores compete for them), and so does `train.threads: auto` for dense networks.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading

from threadpoolctl import ThreadpoolController


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@functools.cache
def blas_controller() -> ThreadpoolController:
    """The BLAS libraries NumPy loaded (inspecting them once costs about a millisecond)."""
    return ThreadpoolController()


# threadpoolctl's limits are process-wide, and it honours them from one thread at a time (a
# limit set or restored by a second thread while the first holds one is silently dropped), so
# blocks of different threads take turns; the same thread may nest them.
BLAS_LIMIT_TURNS = threading.RLock()


@contextlib.contextmanager
def one_blas_thread():
    """BLAS on one thread inside the block, as it was after it."""
    with BLAS_LIMIT_TURNS, blas_controller().limit(limits=1, user_api="blas"):
        yield
