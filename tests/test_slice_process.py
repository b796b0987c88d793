"""Slices side by side in forked processes: the same numbers as in threads, errors that reach
the caller, children that end with their network and never outlive a failure."""

import gc
import os
import signal
import time

import numpy as np
import pytest

from npnet.nn.conv_pool import ConvMaxPool
from npnet.nn.losses import SoftmaxCrossEntropy
from npnet.nn.network import Network
from npnet.nn.parallel import DataParallel
from npnet.nn.slice_process import fork_available
from npnet.optim.optimizers import SGD

pytestmark = pytest.mark.skipif(not fork_available(), reason="slices fork only on Linux")

CNN = [
    {"conv2d": {"filters": 4, "kernel": 3, "padding": 1}},
    {"relu": {}},
    {"max_pool2d": {"size": 2}},
    {"dropout": {"rate": 0.3}},
    {"conv2d": {"filters": 6, "kernel": 3}},
    {"relu": {}},
    {"flatten": {}},
    {"dense": {"units": 10}},
]


def build(specs=CNN, dtype=np.float32):
    net = Network.from_specs(specs, (1, 8, 8), np.random.default_rng(0), dtype)
    net.set_noise_rng(np.random.default_rng(7))
    return net


def batch(rows, seed=1, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, 1, 8, 8)).astype(dtype), rng.integers(0, 10, size=rows)


def in_two_slices(x):
    """What a fresh network gives on the two halves of x, one after the other: the numbers
    of `DataParallel(build(), 2)`, which one product over all the rows need not give (OpenBLAS
    may round a row by the number of rows in its product)."""
    net, half = build(), (len(x) + 1) // 2
    return np.concatenate([net.forward(x[:half]), net.forward(x[half:])])


def train(model, steps=4):
    """SGD steps on batches of 10, then an evaluation of 25 rows (more than the processes
    forked for the training slices have room for); everything they gave."""
    loss, optimizer = SoftmaxCrossEntropy(), SGD(lr=0.1, momentum=0.9)
    outs = []
    for step in range(steps):
        x, y = batch(10, seed=step)
        outs.append(model.forward(x, training=True))
        loss.forward(outs[-1], y)
        model.backward(loss.backward())
        optimizer.step(model.parameters(), model.gradients())
    outs.append(model.forward(batch(25, seed=99)[0]))
    return outs, {key: value.copy() for key, value in model.parameters().items()}


def gone(pid, timeout=10.0):
    """Whether process `pid` has ended (a zombie not yet reaped counts) within `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.01)
    return False


# The first conv with 12 filters for 9 rows per column: it runs merged with its pool.
MERGED = [{"conv2d": {"filters": 12, "kernel": 3, "padding": 1}}, *CNN[1:]]


@pytest.mark.parametrize("specs", [CNN, MERGED], ids=["apart", "first-conv-and-pool-merged"])
def test_processes_give_the_numbers_of_threads_and_of_one_slice_after_the_other(specs):
    assert isinstance(build(specs).run_order[0], ConvMaxPool) == (specs is MERGED)
    runs = {}
    for way in ("processes", "threads", "in order"):
        model = DataParallel(build(specs), 3)
        model.forks = way == "processes"
        model.workers = 1 if way == "in order" else 3
        runs[way] = train(model)
        assert model.in_processes == (way == "processes")
        assert bool(model.processes) == (way == "processes")
    for way in ("threads", "in order"):
        for a, b in zip(runs[way][0], runs["processes"][0], strict=True):
            np.testing.assert_array_equal(a, b)
        for key, value in runs["processes"][1].items():
            np.testing.assert_array_equal(runs[way][1][key], value)


def test_the_other_slices_run_in_live_children_that_end_with_the_network():
    model = DataParallel(build(), 3)
    train(model, steps=1)
    pids = [worker.process.pid for worker in model.processes]
    assert len(pids) == 2 and os.getpid() not in pids
    assert all(worker.process.is_alive() for worker in model.processes)
    del model
    gc.collect()
    assert all(gone(pid) for pid in pids)


def test_a_larger_slice_gets_a_process_with_room_for_it_and_keeps_it():
    model = DataParallel(build(), 2)
    model.forward(batch(10)[0], training=True)
    small = model.processes[0].process.pid
    x = batch(40)[0]
    np.testing.assert_array_equal(model.forward(x), in_two_slices(x))
    large = model.processes[0].process.pid
    assert large != small and gone(small)
    model.forward(batch(10)[0], training=True)
    assert model.processes[0].process.pid == large


def test_batch_norm_stays_in_threads():
    net = build([{"flatten": {}}, {"batch_norm": {}}, {"dense": {"units": 10}}])
    model = DataParallel(net, 2)
    model.forward(batch(6)[0], training=True)
    assert not model.forks and not model.processes


def test_an_error_in_a_childs_slice_reaches_the_caller_and_the_next_batch_runs():
    model = DataParallel(build(), 2)
    conv = model.layers[0]
    forward = conv.forward

    def fails_on_marked_rows(x, training):
        if np.any(x == 1234.0):
            raise ValueError("marked row")
        return forward(x, training)

    conv.forward = fails_on_marked_rows  # before the fork: the child has it too
    x, _ = batch(8)
    model.forward(x, training=True)  # forks
    first = model.processes[0].process.pid
    x[7] = 1234.0  # in the second slice: the child's
    with pytest.raises(ValueError, match="marked row"):
        model.forward(x, training=True)
    assert not model.processes and gone(first)  # stopped, not left out of step
    del conv.forward
    x, _ = batch(8)
    np.testing.assert_array_equal(model.forward(x), in_two_slices(x))


def test_numpy_error_settings_reach_the_child():
    model = DataParallel(build([{"flatten": {}}, {"dense": {"units": 3}}]), 2)
    x = np.ones((4, 1, 8, 8), dtype=np.float32)
    model.forward(x)  # forks
    x[3] = np.float32(3e38)  # overflows the child's product only
    with np.errstate(all="ignore"):
        assert not np.isfinite(model.forward(x)[3]).all()
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        model.forward(x)


def test_a_child_killed_from_outside_is_a_clear_error_and_is_replaced():
    model = DataParallel(build(), 2)
    x, _ = batch(8)
    model.forward(x)
    pid = model.processes[0].process.pid
    os.kill(pid, signal.SIGKILL)
    assert gone(pid)
    with pytest.raises(RuntimeError, match="process running a slice of the batch ended"):
        model.forward(x)
    np.testing.assert_array_equal(model.forward(x), in_two_slices(x))


def test_ctrl_c_in_the_callers_slice_stops_the_children():
    model = DataParallel(build(), 2)
    x, _ = batch(8)
    model.forward(x, training=True)
    pid = model.processes[0].process.pid
    replicate = model.replicate

    def ctrl_c(*args):
        raise KeyboardInterrupt

    def interrupted_first_slice(index, training, rngs):
        replica = replicate(index, training, rngs)
        if index == 0:
            replica.forward = ctrl_c  # after the children got their slices
        return replica

    model.replicate = interrupted_first_slice
    with pytest.raises(KeyboardInterrupt):
        model.forward(x, training=True)
    assert gone(pid)
    del model.replicate
    assert model.forward(x, training=True).shape == (8, 10)
