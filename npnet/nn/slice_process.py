"""One slice of each batch in a process of its own: the same layers, without the caller's GIL.

    worker = SliceProcess(net, x_part)           # forks; the child keeps copies of net's layers
    worker.start_forward(x_part, training, rngs, net.parameters())
    ...                                          # the caller runs its own slice meanwhile
    out_part = worker.finish()
    worker.start_backward(grad_part)
    worker.finish()
    worker.gradients()                           # dL/dθ of its slice, keyed like net.gradients()

Slices in threads share one interpreter: each NumPy call holds the GIL for the Python around
it, so two slices often wait for each other, and where an idle core halts (a virtual machine)
every such wait costs a wake-up. A forked child has its own interpreter. The numbers are the
same as in a thread: the child runs the same layer code on the same slice, BLAS on one thread.

The parameters go through shared memory: the caller copies its current values in before each
forward pass (so an optimizer step, a loaded checkpoint or a new array all reach the child)
and reads the child's gradients from shared arrays. So do the inputs, up to the rows of the
slice the child was made for (`fits`); the small messages (outputs, dL/dout) go through a
pipe. Each side waits for the other's answer spinning for a
few milliseconds before it sleeps: on a machine whose idle cores halt, waking a sleeping
process costs about as long as the gap between two passes. Dropout's generators are sent
with each forward pass, so the masks are those the caller drew. The child ignores Ctrl-C
(the caller decides what an interrupt stops) and ends when the caller closes the pipe, stops
it, or exits. Linux only: elsewhere `fork` is unsafe or absent.
"""

from __future__ import annotations

import mmap
import multiprocessing
import os
import signal
import sys
import time
import weakref
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from npnet.nn.network import Network

ALIGN = 64  # bytes: each shared array starts on its own cache line
# How long each side polls for the other's next message before it sleeps: longer than the
# gaps of a training step (the loss between the passes, the optimizer step between batches).
SPIN_SECONDS = 0.005


def fork_available() -> bool:
    """Whether slices may run in forked processes here (Linux)."""
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def shared_zeros_like(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Zeroed arrays of the same shapes and dtypes, in one anonymous shared mapping: what a
    forked child writes there, the parent reads, and the other way round."""
    sizes = [-(-array.nbytes // ALIGN) * ALIGN for array in arrays.values()]
    memory = mmap.mmap(-1, max(sum(sizes), 1))
    shared, offset = {}, 0
    for (key, array), size in zip(arrays.items(), sizes, strict=True):
        view = np.frombuffer(memory, dtype=array.dtype, count=array.size, offset=offset)
        shared[key] = view.reshape(array.shape)
        offset += size
    return shared


class SliceProcess:
    """A forked child running one slice of each batch through its own copy of `net`'s layers."""

    def __init__(self, net: Network, example: np.ndarray) -> None:
        """`example`: the largest slice to come; those that `fits` may be sent."""
        parameters = net.parameters()
        self.params = shared_zeros_like(parameters)
        self.grads = shared_zeros_like(parameters)
        self.inputs = shared_zeros_like({"x": example})["x"]
        context = multiprocessing.get_context("fork")
        self.conn, child_end = context.Pipe()
        self.process = context.Process(
            target=serve,
            args=(child_end, self.conn, net, self.params, self.grads, self.inputs),
            name="npnet-slice",
            daemon=True,  # ended by multiprocessing when the caller exits
        )
        self.process.start()
        child_end.close()
        self.unshared: dict[str, np.ndarray] = {}
        # Collected or closed, the child is stopped; the finalizer must not hold `self`.
        self.finalizer = weakref.finalize(self, stop, self.conn, self.process)

    def start_forward(
        self,
        x: np.ndarray,
        training: bool,
        rngs: list[np.random.Generator] | None,
        parameters: dict[str, np.ndarray],
    ) -> None:
        """Send the slice `x` through the child's layers with the caller's parameter values and,
        when training, `rngs` for its stochastic layers in order; `finish` returns the output."""
        for key, value in parameters.items():
            np.copyto(self.params[key], value)
        np.copyto(self.inputs[: len(x)], x)
        # The child reads that many rows of the shared inputs.
        self.send(("forward", len(x), training, rngs, np.geterr()))

    def fits(self, x: np.ndarray) -> bool:
        """Whether the shared inputs hold `x`: its dtype and sample shape, no more rows."""
        inputs = self.inputs
        return x.dtype == inputs.dtype and x.shape[1:] == inputs.shape[1:] and len(x) <= len(inputs)

    def start_backward(self, grad_out: np.ndarray) -> None:
        """Back-propagate dL/dout of the slice; after `finish`, `gradients()` gives dL/dθ."""
        self.send(("backward", grad_out, None, None, np.geterr()))

    def send(self, message: tuple) -> None:
        try:
            self.conn.send(message)
        except OSError:  # the child is gone: say so, as `finish` would
            raise self.ended() from None

    def ended(self) -> RuntimeError:
        self.process.join(timeout=1)
        return RuntimeError(
            "the process running a slice of the batch ended (exit code "
            f"{self.process.exitcode}; negative: killed by that signal, e.g. -9 by the "
            "out-of-memory killer); `train.threads: 1` trains without it"
        )

    def finish(self) -> Any:
        """Wait for the child's answer: the forward pass's output (None after a backward pass),
        or its error, raised here."""
        try:
            spin_until_readable(self.conn)
            kind, value = self.conn.recv()
        except (EOFError, OSError):
            raise self.ended() from None
        if kind == "error":
            raise value
        if kind == "gradients":
            self.unshared = value
            return None
        return value

    def gradients(self) -> dict[str, np.ndarray]:
        """The last backward pass's dL/dθ: the shared arrays, except those of another dtype
        than the parameter (float64 data through float32 layers), which came by the pipe."""
        return {key: self.unshared.get(key, grad) for key, grad in self.grads.items()}

    def close(self) -> None:
        self.finalizer()


def spin_until_readable(conn: Connection) -> None:
    """Poll `conn` for up to SPIN_SECONDS, so that a message arriving soon finds this
    process awake; the blocking read after it sleeps if none did."""
    deadline = time.perf_counter() + SPIN_SECONDS
    while not conn.poll() and time.perf_counter() < deadline:
        pass


def stop(conn: Connection, process: multiprocessing.process.BaseProcess) -> None:
    conn.close()
    process.terminate()
    process.join(timeout=10)


def serve(
    conn: Connection,
    parent_end: Connection,
    net: Network,
    params: dict[str, np.ndarray],
    grads: dict[str, np.ndarray],
    inputs: np.ndarray,
) -> None:
    """The child: answer forward and backward requests on `conn` until it closes, then exit
    at once: none of the caller's clean-up (its atexit handlers, flushing its copies of
    stdout and stderr, whose locks another thread may have held at the fork) runs here."""
    parent_end.close()  # so the parent's exit closes the pipe for good
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the trainer's handler: `stop` ends it
    threadpool_limits(limits=1, user_api="blas")
    for index, layer in enumerate(net.layers):
        for name in layer.params:
            layer.params[name] = params[f"{index}.{name}"]
    replica = Network(net.layers, net.input_shape)
    stochastic = [layer for layer in replica.layers if layer.stochastic]
    while True:
        try:
            spin_until_readable(conn)
            kind, array, training, rngs, error_state = conn.recv()
        except (EOFError, OSError):  # the caller closed the pipe, or is gone
            os._exit(0)
        if kind == "forward":
            array = inputs[:array].copy()  # a copy: the layers may keep it for the backward pass
        try:
            with np.errstate(**error_state):
                if kind == "forward":
                    if rngs is not None:  # training: dropout's generators for this slice
                        for layer, rng in zip(stochastic, rngs, strict=True):
                            layer.rng = rng
                    reply: tuple[str, Any] = ("ok", replica.forward(array, training))
                else:
                    replica.backward(array)
                    unshared = {}
                    for key, grad in replica.gradients().items():
                        if grad.dtype == grads[key].dtype:
                            np.copyto(grads[key], grad)
                        else:
                            unshared[key] = grad
                    reply = ("gradients", unshared)
        except Exception as error:
            reply = ("error", error)
        try:
            conn.send(reply)
        except OSError:  # the caller is gone
            os._exit(0)
        except Exception as unpicklable:  # an error that does not pickle
            conn.send(("error", RuntimeError(f"{reply[1]!r} (not picklable: {unpicklable})")))
