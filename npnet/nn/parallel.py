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
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from npnet.nn.network import Network


@functools.cache
def worker_pool(workers: int) -> ThreadPoolExecutor:
    """A pool of `workers` threads, shared by every DataParallel of the process."""
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="npnet")


@functools.cache
def blas_controller() -> ThreadpoolController:
    """The BLAS libraries NumPy loaded (inspecting them once costs about a millisecond)."""
    return ThreadpoolController()


class DataParallel(Network):
    """`net`'s layers, run on `threads` slices of each batch at once: a Network whose
    forward and backward passes run in slices (and whose parameters are `net`'s).

    Training needs layers whose forward pass treats each sample on its own: not batch norm,
    whose statistics span the batch. Dropout draws each slice's masks from a generator seeded
    from the network's noise stream in the calling thread, so the run does not depend on which
    thread goes first.
    """

    def __init__(self, net: Network, threads: int) -> None:
        super().__init__(net.layers, net.input_shape)
        if threads < 2:
            raise ValueError(f"DataParallel needs at least 2 threads, got {threads}")
        mixing = [layer.name for layer in self.layers if layer.mixes_batch]
        if mixing:
            raise ValueError(f"{mixing[0]} normalizes over the whole batch: it cannot be split")
        self.threads = threads
        self.replicas: list[Network] = []
        self.bounds: list[int] = []

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        slices = np.array_split(x, min(self.threads, len(x)))
        self.bounds = list(np.cumsum([len(xs) for xs in slices])[:-1])
        self.replicas = [self.replicate(training) for _ in slices]
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

    def replicate(self, training: bool) -> Network:
        """Copies of the layers sharing their parameters; dropout gets its own stream."""
        layers = [copy.copy(layer) for layer in self.layers]
        if training:
            for layer in layers:
                if layer.stochastic:
                    layer.rng = np.random.default_rng(layer.rng.integers(2**63))
        return Network(layers, self.input_shape)

    def run(self, task: Callable[[Network, np.ndarray], Any], slices: list[np.ndarray]) -> list:
        """`task(replica, slice)` for each slice: the first in this thread, the others in the
        pool; all of them have finished when this returns or raises."""
        errors = np.geterr()  # NumPy's error state is per thread: the workers take the caller's

        def in_worker(replica: Network, xs: np.ndarray) -> Any:
            with np.errstate(**errors):
                return task(replica, xs)

        with blas_controller().limit(limits=1, user_api="blas"):
            pairs = list(zip(self.replicas, slices, strict=True))
            pool = worker_pool(self.threads - 1)
            futures = [pool.submit(in_worker, *pair) for pair in pairs[1:]]
            try:
                first = task(*pairs[0])
            finally:
                wait(futures)
        return [first] + [future.result() for future in futures]
