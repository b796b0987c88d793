"""Data parallelism on one machine: the slices of a batch run through the network at once,
one core each.

    model = DataParallel(net, threads=2)    # a Network, sharing net's layers and parameters
    out = model.forward(x, training=True)   # x[:N/2] and x[N/2:] through the layers at once
    net_loss = loss.forward(out, y)         # the loss of the whole batch, as before
    model.backward(loss.backward())         # each slice back-propagates its rows of dL/dout
    grads = model.gradients()               # dL/dθ = Σ over the slices

NumPy releases the GIL inside its loops and BLAS calls, so the threads really use separate
cores. That pays for a convolutional network, whose time goes to elementwise passes NumPy runs
on one core (im2col, pooling, ReLU); not for a small MLP, whose matrix products BLAS already
spreads over the cores. While the slices run, BLAS keeps to one thread in each.

On Linux the slices after the first run in forked processes (npnet.nn.slice_process), which
compute exactly what a thread would: threads share one GIL, which every NumPy call holds for
the Python around it, so two slices in threads keep waiting for each other (cnn.yaml's step:
0.79x the time of threads in processes, docs/performance.md). Batch norm's slices stay in
threads: they exchange sums in the middle of a pass.

Each slice goes through its own shallow copies of the layers, made afresh for every forward
pass: they share the parameter arrays, so an optimizer step or a loaded checkpoint reaches all
of them, and keep their own caches for the backward pass. The loss is the whole batch's, so
dL/dout already carries the 1/N of the mean, and the sum of the slices' parameter gradients is
the whole batch's gradient, up to the order of the float32 additions.

A layer whose training pass mixes the samples of a batch (batch norm) takes its sums over the
batch through `layer.batch_sum`; here that is a `SliceSum`, which waits for every slice's part
and returns the total, so the statistics stay the whole batch's.

How many slices run at once (`workers`, 1 to `threads`) changes nothing but the time: each
slice computes the same numbers on whichever thread it runs, and the sums over the slices are
added in slice order. One at a time, the slices run as one pass over the batch (unless they
draw their own dropout masks or share batch norm's sums): the layers take their sums over the
batch, and products whose size grows with it, slice by slice (`Layer.cuts`), so the numbers
are the slices' and every other pass runs once, not once per slice (LeNet-5: 0.93x the time).
`train.threads: auto` (`auto_parallel`) uses that: the number of slices is fixed by the
network, and a `FastestChoice` picks, as training runs, whether they run side by side or one
after the other (the faster when another process holds a core). BLAS threads are not switched
that way: OpenBLAS's float32 products give other bits on another number of threads (a 64x784
by 784x128 product does), so within a run they stay fixed.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import numpy as np

from npnet.nn.blas import available_cores, blas_kernels, idle_core_seconds, one_blas_thread
from npnet.nn.layer import cut_rows
from npnet.nn.network import Network
from npnet.nn.slice_process import SliceProcess, fork_available
from npnet.nn.threads import FastestChoice

AUTO_SLICES = 2  # `train.threads: auto` cuts the batch of a network with image layers in two


def has_image_layers(net: Network) -> bool:
    """Whether some layer works on (C, H, W) images: convolution, pooling, their ReLUs. Their
    elementwise passes run on one core each, so slices of the batch on several cores pay."""
    return any(len(layer.out_shape) == 3 for layer in net.layers)


def auto_parallel(net: Network, cores: int | None = None) -> Network:
    """`train.threads: auto`: `net` run the fast way for this machine, with numbers that depend
    only on the network (so a run resumes, or repeats, bit for bit wherever it runs).

    A network with image layers runs in AUTO_SLICES slices, BLAS on one thread in each; as it
    trains, a FastestChoice decides whether the slices run side by side on separate cores or
    one after the other (which changes no number). A network of dense layers runs whole,
    BLAS on one thread: two BLAS threads gain it ~20% on an idle machine and lose 3x to 6x
    when another process holds a core, and cannot be dropped mid-run without changing the
    numbers.
    """
    cores = available_cores() if cores is None else cores
    if not has_image_layers(net):
        return OneBlasThread(net)
    model = DataParallel(net, AUTO_SLICES)
    candidates = sorted({min(AUTO_SLICES, cores), 1}, reverse=True)
    model.chooser = FastestChoice(candidates, idle_cores=idle_core_seconds)
    return model


def threads_line(net: Network) -> str | None:
    """How `net` uses the cores, in words, for `npnet train` to print; None for a plain
    network (BLAS as the environment set it)."""
    if isinstance(net, OneBlasThread):
        return (
            "auto: each batch whole, BLAS on 1 thread (dense layers: a second BLAS thread "
            "gains little on an idle machine and loses 3-6x when another process holds a core)"
        )
    if not isinstance(net, DataParallel):
        return None
    if net.chooser is None:
        return f"{net.threads} (each batch in {net.threads} slices at once)"
    if len(net.chooser.candidates) == 1:
        return f"auto: each batch in {net.threads} slices, one after the other (1 free core)"
    beside = "in processes side by side" if net.forks else "side by side"
    return (
        f"auto: each batch in {net.threads} slices, BLAS on 1 thread in each; the slices run "
        f"{beside}, or one after the other while that steps faster (timed as it trains: "
        "another process may hold a core)"
    )


def threads_record(net: Network) -> dict[str, Any]:
    """How a run used the cores, for its summary (its numbers depend on the slices and the
    BLAS kernels, not on how many slices ran at once or where): slices per batch, BLAS threads
    and kernels, whether slices side by side run in processes or threads, and under `auto` the
    steps run with each number of slices at once (in this process: a resumed run its own)."""
    kernels = {"blas_kernels": blas_kernels()}
    if isinstance(net, OneBlasThread):
        return {"slices": 1, "blas_threads": 1, **kernels}
    if not isinstance(net, DataParallel):
        return {"slices": 1, "blas_threads": "as the environment set it", **kernels}
    record: dict[str, Any] = {"slices": net.threads, "blas_threads": 1, **kernels}
    record["side_by_side_in"] = "processes" if net.forks else "threads"
    if (chooser := net.chooser) is not None:
        record["slices_at_once_steps"] = {str(n): chooser.used[n] for n in chooser.candidates}
    return record


def slice_bounds(rows: int, slices: int) -> list[int]:
    """Where `np.array_split` would cut `rows` rows into `slices` (the first rows mod slices
    slices one row longer), without its overhead (~80 us, 1 % of cnn.yaml's step)."""
    size, extra = divmod(rows, slices)
    return [index * size + min(index, extra) for index in range(1, slices)]


class OneBlasThread(Network):
    """`net`'s layers, run whole with BLAS on one thread."""

    def __init__(self, net: Network) -> None:
        super().__init__(net.layers, net.input_shape)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        with one_blas_thread():
            return super().forward(x, training)

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        with one_blas_thread():
            return super().backward(grad_out)


class SliceSum:
    """A sum over all the slices of a batch, computed where each slice's thread needs it.

    `total(slice_index, part)` blocks until every slice has given its part, then returns the
    sum of all the parts, added in slice order, so every thread gets the same numbers. While
    it waits, a slice gives back its turn (`turns`), so fewer turns than slices never hang.
    """

    def __init__(self, slices: int, turns: threading.Semaphore) -> None:
        self.parts: list[Any] = [None] * slices
        self.barrier = threading.Barrier(slices)
        self.turns = turns

    def total(self, slice_index: int, part: Any) -> Any:
        self.parts[slice_index] = part
        self.turns.release()
        self.barrier.wait()  # every part is in
        result = functools.reduce(lambda a, b: a + b, self.parts)
        self.barrier.wait()  # everyone has read the parts before the next sum overwrites them
        self.turns.acquire()
        return result


class DataParallel(Network):
    """`net`'s layers, run on `threads` slices of each batch at once: a Network whose
    forward and backward passes run in slices (and whose parameters are `net`'s).

    Dropout draws each slice's masks from a generator seeded from the network's noise stream
    in the calling thread, so the run does not depend on which thread goes first; batch norm
    computes its statistics over all the slices (`SliceSum`) and updates its running
    statistics once, from the first slice.

    `workers` slices run at once (all of them unless set lower); with a `chooser`, it is the
    chooser's pick for each training step, and each step's time goes back to the chooser.
    """

    def __init__(self, net: Network, threads: int) -> None:
        super().__init__(net.layers, net.input_shape)
        if threads < 2:
            raise ValueError(f"DataParallel needs at least 2 threads, got {threads}")
        self.threads = threads
        # Its own threads, which end when it is collected: slices waiting for each other's
        # sums must never queue behind another network's in a shared pool.
        self.pool = ThreadPoolExecutor(max_workers=threads - 1, thread_name_prefix="npnet")
        self.workers = threads
        self.chooser: FastestChoice | None = None
        self.step_started = 0.0
        self.replicas: list[Network] = []
        self.bounds: list[int] = []
        self.slice_sum: SliceSum | None = None
        self.mixing = False  # the slices exchange sums (batch norm in training)
        # Side by side, the slices after the first run in processes of their own where fork
        # is safe (`SliceProcess`: no GIL shared with this thread). Not for batch norm: its
        # slices exchange sums as they run, and its running statistics change here.
        self.forks = fork_available() and not any(layer.mixes_batch for layer in self.layers)
        self.processes: list[SliceProcess] = []
        self.in_processes = False  # how the last forward pass ran its slices
        self.one_pass = False

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if training and self.chooser is not None:
            self.workers = self.chooser.current
            self.step_started = time.perf_counter()
        elif self.chooser is not None:  # an evaluation: the kept setting, not a trial's
            self.workers = self.chooser.kept
        self.bounds = slice_bounds(len(x), min(self.threads, len(x)))
        slices = cut_rows(x, self.bounds)
        # Each slice's generators for dropout, drawn slice after slice from the network's.
        rngs = [self.draw_rngs() if training else None for _ in slices]
        self.mixing = training and any(layer.mixes_batch for layer in self.layers)
        self.in_processes = self.forks and 1 < len(slices) <= self.workers
        # One after the other, and no slice draws its own masks or waits for the others' sums:
        # the slices as one pass (see the module docstring), the same numbers.
        self.one_pass = self.workers == 1 and not (
            training and any(layer.stochastic or layer.mixes_batch for layer in self.layers)
        )
        if self.one_pass:
            with one_blas_thread(), self.cut_at_the_slices():
                return super().forward(x, training)
        if self.in_processes:
            return np.concatenate(self.forward_in_processes(slices, training, rngs))
        self.slice_sum = SliceSum(len(slices), threading.Semaphore(self.workers))
        self.replicas = [self.replicate(i, training, rngs[i]) for i in range(len(slices))]
        return np.concatenate(self.run(lambda net, xs: net.forward(xs, training), slices))

    @contextlib.contextmanager
    def cut_at_the_slices(self) -> Iterator[None]:
        """The layers cut the batch where the slices begin (`Layer.cuts`) inside the block."""
        for layer in self.layers:
            layer.cuts = self.bounds
        try:
            yield
        finally:
            for layer in self.layers:
                layer.cuts = None

    def forward_in_processes(
        self, slices: list[np.ndarray], training: bool, rngs: list[list | None]
    ) -> list[np.ndarray]:
        """The first slice in this thread, each other in its process: those start first (the
        copies of the layers for this thread's slice are made while they run)."""
        self.fork_for(slices[1:])
        parameters = self.parameters()

        def start(worker: SliceProcess, index: int, xs: np.ndarray) -> None:
            worker.start_forward(xs, training, rngs[index], parameters)

        def first(xs: np.ndarray) -> np.ndarray:
            self.replicas = [self.replicate(0, training, rngs[0])]
            return self.replicas[0].forward(xs, training)

        return self.run_in_processes(start, first, slices)

    def backward(self, grad_out: np.ndarray) -> None:
        """Fill the grads of each slice's layers; `gradients()` sums them."""
        if self.one_pass:
            with one_blas_thread(), self.cut_at_the_slices():
                super().backward(grad_out)
        elif self.in_processes:

            def start(worker: SliceProcess, index: int, grads: np.ndarray) -> None:
                worker.start_backward(grads)

            self.run_in_processes(start, self.replicas[0].backward, cut_rows(grad_out, self.bounds))
        else:
            self.run(lambda net, grads: net.backward(grads), cut_rows(grad_out, self.bounds))
        if self.chooser is not None:
            self.chooser.record(time.perf_counter() - self.step_started)

    def gradients(self) -> dict[str, np.ndarray]:
        """dL/dθ of the batch: the slices' gradients added in slice order."""
        if self.one_pass:
            return super().gradients()  # the layers added them slice by slice
        parts = [self.replicas[0].gradients()]
        if self.in_processes:
            parts += [worker.gradients() for worker in self.processes[: len(self.bounds)]]
        else:
            parts += [replica.gradients() for replica in self.replicas[1:]]
        return {key: functools.reduce(np.add, [part[key] for part in parts]) for key in parts[0]}

    def draw_rngs(self) -> list[np.random.Generator]:
        """One slice's generators for the stochastic layers, in order, seeded from theirs."""
        return [
            np.random.default_rng(layer.rng.integers(2**63))
            for layer in self.layers
            if layer.stochastic
        ]

    def replicate(
        self, slice_index: int, training: bool, rngs: list[np.random.Generator] | None
    ) -> Network:
        """Copies of the layers for one slice, sharing their parameters; dropout gets the
        slice's generators (`draw_rngs`) and batch norm the sums over all the slices."""
        layers = [copy.copy(layer) for layer in self.layers]
        if training:
            slice_rngs = iter(rngs)
            for layer in layers:
                if layer.stochastic:
                    layer.rng = next(slice_rngs)
                if layer.mixes_batch:
                    layer.batch_sum = functools.partial(self.slice_sum.total, slice_index)
                    layer.updates_running_statistics = slice_index == 0
        return Network(layers, self.input_shape)

    def run_in_processes(
        self,
        start: Callable[[SliceProcess, int, np.ndarray], None],
        first: Callable[[np.ndarray], Any],
        parts: list[np.ndarray],
    ) -> list:
        """`start(process, index, part)` for each part but the first, each in its process,
        then `first(parts[0])` in this thread, then each process's answer, in slice order."""
        workers = self.processes[: len(parts) - 1]
        try:
            for index, (worker, part) in enumerate(zip(workers, parts[1:], strict=True), 1):
                start(worker, index, part)
            with one_blas_thread():
                results = [first(parts[0])]
            results += [worker.finish() for worker in workers]
        except BaseException:
            # A process may still be computing, and its answer would come out of step with
            # the next request: stop them all; the next pass forks fresh ones.
            self.stop_processes()
            raise
        return results

    def fork_for(self, parts: list[np.ndarray]) -> None:
        """A process for each part whose shared inputs hold it: one forked for a part too
        large for the last (an evaluation batch after the training ones). Outside the BLAS
        block, whose lock the child would inherit."""
        for index, part in enumerate(parts):
            if index < len(self.processes) and self.processes[index].fits(part):
                continue
            worker = SliceProcess(Network(self.layers, self.input_shape), part)
            if index < len(self.processes):
                self.processes[index].close()
                self.processes[index] = worker
            else:
                self.processes.append(worker)

    def stop_processes(self) -> None:
        for worker in self.processes:
            worker.close()
        self.processes = []

    def run(self, task: Callable[[Network, np.ndarray], Any], slices: list[np.ndarray]) -> list:
        """`task(replica, slice)` for each slice: the first in this thread, the others in the
        pool, at most `workers` at a time; all have finished when this returns or raises."""
        pairs = list(zip(self.replicas, slices, strict=True))
        if self.workers == 1 and not self.mixing:  # one after the other, no hand-offs
            with one_blas_thread():
                return [task(*pair) for pair in pairs]
        error_state = np.geterr()  # NumPy's is per thread: the workers take the caller's
        turns = self.slice_sum.turns

        def in_thread(replica: Network, xs: np.ndarray) -> Any:
            with np.errstate(**error_state), turns:
                try:
                    return task(replica, xs)
                except BaseException:
                    # Free the slices waiting for this one's part of a sum: they raise
                    # BrokenBarrierError instead of waiting for ever.
                    self.slice_sum.barrier.abort()
                    raise

        with one_blas_thread():
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
