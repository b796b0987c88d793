"""How many cores this process may use, how long they sat idle, which kernels BLAS runs (and
whether the environment holds it to narrower ones than the CPU's), and blocks that keep BLAS
on one thread.

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


def running_kernels() -> str | None:
    """The kernels NumPy's BLAS runs, by OpenBLAS's names ("Haswell": AVX2, "SkylakeX":
    AVX-512); None for a BLAS that does not tell."""
    for library in blas_controller().lib_controllers:
        kernels = library.info().get("architecture")
        if library.user_api == "blas" and kernels:
            return kernels
    return None


def blas_kernels() -> str | None:
    """`running_kernels`, picked for the CPU as OpenBLAS loads unless `OPENBLAS_CORETYPE`
    names them (then said). A product's last bits depend on them."""
    kernels, named = running_kernels(), os.environ.get("OPENBLAS_CORETYPE")
    return f"{kernels} (OPENBLAS_CORETYPE={named})" if kernels and named else kernels


# OpenBLAS's x86 kernels (by the names threadpoolctl reports) that use AVX-512 and AVX2 with
# FMA; the others use narrower instructions.
AVX512_KERNELS = frozenset({"SkylakeX", "Cooperlake", "SapphireRapids"})
AVX2_KERNELS = AVX512_KERNELS | {"Haswell", "Zen"}


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The instruction sets this CPU reports (the `flags` of Linux's /proc/cpuinfo); empty
    where that cannot be read."""
    try:
        with open(cpuinfo) as info:
            for line in info:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def pinned_narrower_kernels() -> str | None:
    """When `OPENBLAS_CORETYPE` holds OpenBLAS to kernels narrower than this CPU runs (AVX2
    ones on an AVX-512 CPU, say), a line saying so for `npnet train` to print; else None.

    npnet obeys the variable (a product's last bits depend on the kernels, and an environment
    may pin them so that runs match across machines), but a user should know what it costs:
    on an AMD Zen 5 the AVX-512 kernels trained cnn.yaml's network 1.31x-1.33x, LeNet-5
    1.24x-1.34x and the MLP 1.31x-1.33x as fast on one thread (benchmarks/kernels.py).
    """
    kernels, named = running_kernels(), os.environ.get("OPENBLAS_CORETYPE")
    if not named or not kernels:
        return None
    flags = cpu_flags()
    if {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags and kernels not in AVX512_KERNELS:
        wider = "AVX-512"
    elif {"avx2", "fma"} <= flags and kernels not in AVX2_KERNELS:
        wider = "AVX2"
    else:
        return None
    return (
        f"OPENBLAS_CORETYPE={named} holds OpenBLAS to its {kernels} kernels, but this CPU runs "
        f"{wider}, whose kernels are faster: unset OPENBLAS_CORETYPE to use them (other last "
        "bits of every number; docs/performance.md)"
    )


# threadpoolctl's limits are process-wide, and it honours them from one thread at a time (a
# limit set or restored by a second thread while the first holds one is silently dropped), so
# blocks of different threads take turns; the same thread may nest them.
BLAS_LIMIT_TURNS = threading.RLock()


@contextlib.contextmanager
def one_blas_thread():
    """BLAS on one thread inside the block, as it was after it."""
    with BLAS_LIMIT_TURNS, blas_controller().limit(limits=1, user_api="blas"):
        yield
