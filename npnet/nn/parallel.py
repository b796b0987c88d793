"""Data parallelism on one machine: the slices of a batch run through the network at once,
one thread each.

    model = DataParallel(net, threads=2)    # a Network, sharing net's layers and parameters
    out = model.forward(x, training=True)   # x[:N/2] and x[N/2:] through the layers at once
    net_loss = loss.forward(out, y)         # the loss of the whole batch, as before
    model.backward(loss.backward())         # each slice back-propagates its rows of dL/dout
    grads = model.gradients()               # dL/dθ = Σ over the slices

NumPy releases the GIL inside its loops and BLAS calls, so the threads really use separate
cores. That pays for a convolutional network, whose time goes to elementwise passes NumPy runs
on one core (im2col, pooling, ReLU); not for a small MLP, whose matrix products BLAS already
spreads over the cores. While the slices run, BLAS keeps to one thread in each.

Each slice goes through its own shallow copies of the layers, made afresh for every forward
pass: they share the parameter arrays, so an optimizer step or a loaded checkpoint reaches all
of them, and keep their own caches for the backward pass. The loss is the whole batch's, so
dL/dout already carries the 1/N of the mean, and the sum of the slices' parameter gradients is
the whole batch's gradient, up to the order of the float32 additions.

A layer whose training pass mixes the samples of a batch (batch norm) takes its sums over the
batch through `layer.batch_sum`; here that is a `SliceSum`, which waits for every slice's part
and returns the total, so the statistics stay the whole batch's.
"""

from __future__ import annotations

import copy
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from npnet.nn.network import Network


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@functools.cache
def blas_controller() -> ThreadpoolController:
    """The BLAS libraries NumPy loaded (inspecting them once costs about a millisecond)."""
    return ThreadpoolController()


class SliceSum:
    """A sum over all the slices of a batch, computed where each slice's thread needs it.

    `total(slice_index, part)` blocks until every slice has given its part, then returns the
    sum of all the parts, added in slice order, so every thread gets the same numbers.
    """

    def __init__(self, slices: int) -> None:
        self.parts: list[Any] = [None] * slices
        self.barrier = threading.Barrier(slices)

    def total(self, slice_index: int, part: Any) -> Any:
        self.parts[slice_index] = part
        self.barrier.wait()  # every part is in
        result = functools.reduce(lambda a, b: a + b, self.parts)
        self.barrier.wait()  # everyone has read the parts before the next sum overwrites them
        return result


class DataParallel(Network):
    """`net`'s layers, run on `threads` slices of each batch at once: a Network whose
    forward and backward passes run in slices (and whose parameters are `net`'s).

    Dropout draws each slice's masks from a generator seeded from the network's noise stream
    in the calling thread, so the run does not depend on which thread goes first; batch norm
    computes its statistics over all the slices (`SliceSum`) and updates its running
    statistics once, from the first slice.
    """

    def __init__(self, net: Network, threads: int) -> None:
        super().__init__(net.layers, net.input_shape)
        if threads < 2:
            raise ValueError(f"DataParallel needs at least 2 threads, got {threads}")
        self.threads = threads
        # Its own threads, which end when it is collected: slices waiting for each other's
        # sums must never queue behind another network's in a shared pool.
        self.pool = ThreadPoolExecutor(max_workers=threads - 1, thread_name_prefix="npnet")
        self.replicas: list[Network] = []
        self.bounds: list[int] = []
        self.slice_sum: SliceSum | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        slices = np.array_split(x, min(self.threads, len(x)))
        self.bounds = list(np.cumsum([len(xs) for xs in slices])[:-1])
        self.slice_sum = SliceSum(len(slices))
        self.replicas = [self.replicate(index, training) for index in range(len(slices))]
        return np.concatenate(self.run(lambda net, xs: net.forward(xs, training), slices))

    def backward(self, grad_out: np.ndarray) -> None:
        """Fill the grads of each slice's layers; `gradients()` sums them."""
        self.run(lambda net, grads: net.backward(grads), np.split(grad_out, self.bounds))

    def gradients(self) -> dict[str, np.ndarray]:
        total: dict[str, np.ndarray] = {}
        for replica in self.replicas:
            for key, grad in replica.gradients().items():
                total[key] = total[key] + grad if key in total else grad
        return total

    def replicate(self, slice_index: int, training: bool) -> Network:
        """Copies of the layers for one slice, sharing their parameters; dropout gets its own
        stream and batch norm the sums over all the slices."""
        layers = [copy.copy(layer) for layer in self.layers]
        if training:
            for layer in layers:
                if layer.stochastic:
                    layer.rng = np.random.default_rng(layer.rng.integers(2**63))
                if layer.mixes_batch:
                    layer.batch_sum = functools.partial(self.slice_sum.total, slice_index)
                    layer.updates_running_statistics = slice_index == 0
        return Network(layers, self.input_shape)

    def run(self, task: Callable[[Network, np.ndarray], Any], slices: list[np.ndarray]) -> list:
        """`task(replica, slice)` for each slice: the first in this thread, the others in the
        pool; all of them have finished when this returns or raises."""
        error_state = np.geterr()  # NumPy's is per thread: the workers take the caller's

        def in_thread(replica: Network, xs: np.ndarray) -> Any:
            with np.errstate(**error_state):
                try:
                    return task(replica, xs)
                except BaseException:
                    # Free the slices waiting for this one's part of a sum: they raise
                    # BrokenBarrierError instead of waiting for ever.
                    self.slice_sum.barrier.abort()
                    raise

        with blas_controller().limit(limits=1, user_api="blas"):
            pairs = list(zip(self.replicas, slices, strict=True))
            futures: list[Future] = []
            broken = None
            try:
                futures = [self.pool.submit(in_thread, *pair) for pair in pairs[1:]]
                first = in_thread(*pairs[0])
            except threading.BrokenBarrierError as error:
                broken = error  # another slice failed: its error is the one to report
            except BaseException:
                # A Ctrl-C can land in this thread before its slice started (or after
                # `in_thread`'s own handler): the others must not wait for its part for ever,
                # or the process would hang at exit joining them.
                self.slice_sum.barrier.abort()
                raise
            finally:
                wait(futures)
        failures = [future.exception() for future in futures if future.exception()]
        causes = [e for e in failures if not isinstance(e, threading.BrokenBarrierError)]
        for error in (*causes, broken, *failures):
            if error is not None:
                raise error
        return [first] + [future.result() for future in futures]
