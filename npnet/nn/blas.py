"""How many cores this process may use, how long they sat idle, and blocks that keep BLAS on
one thread.

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


def idle_core_seconds() -> float | None:
    """Seconds the cores this process may run on have spent idle since boot, summed over the
    cores (Linux's /proc/stat: idle, waiting for I/O, or running niced processes, which
    yield to this one); None where that cannot be read. Its growth over a wall-clock interval
    is how many cores were free meanwhile: ~1.0 with one of two cores free, 0.0 with both busy.
    """
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    try:
        with open("/proc/stat") as stat:
            lines = stat.read().splitlines()
        ticks = 0
        for line in lines:
            name, *fields = line.split()  # cpuN user nice system idle iowait ...: clock ticks
            core = name[3:]
            if name.startswith("cpu") and core.isdigit() and (cores is None or int(core) in cores):
                ticks += int(fields[1]) + int(fields[3]) + int(fields[4])
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


@functools.cache
def blas_controller() -> ThreadpoolController:
    """The BLAS libraries NumPy loaded (inspecting them once costs about a millisecond)."""
    return ThreadpoolController()


def blas_kernels() -> str | None:
    """The kernels NumPy's BLAS runs, by OpenBLAS's names ("Haswell": AVX2, "SkylakeX":
    AVX-512), picked for the CPU as it loads unless `OPENBLAS_CORETYPE` names them (then said);
    None for a BLAS that does not tell. A product's last bits depend on them."""
    for library in blas_controller().lib_controllers:
        kernels = library.info().get("architecture")
        if library.user_api == "blas" and kernels:
            named = os.environ.get("OPENBLAS_CORETYPE")
            return f"{kernels} (OPENBLAS_CORETYPE={named})" if named else kernels
    return None


# threadpoolctl's limits are process-wide, and it honours them from one thread at a time (a
# limit set or restored by a second thread while the first holds one is silently dropped), so
# blocks of different threads take turns; the same thread may nest them.
BLAS_LIMIT_TURNS = threading.RLock()


@contextlib.contextmanager
def one_blas_thread():
    """BLAS on one thread inside the block, as it was after it."""
    with BLAS_LIMIT_TURNS, blas_controller().limit(limits=1, user_api="blas"):
        yield
