"""DataParallel: a batch in slices on several threads gives the whole batch's outputs and
gradients, batch norm's statistics included; dropout stays reproducible; a failing slice
neither hangs the others nor hides its error."""

import gc
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from npnet.engine.experiment import build_model
from npnet.nn import blas
from npnet.nn.blas import blas_kernels, cpu_flags, one_blas_thread, pinned_narrower_kernels
from npnet.nn.layer import cut_rows
from npnet.nn.losses import SoftmaxCrossEntropy
from npnet.nn.network import Network
from npnet.nn.parallel import DataParallel, slice_bounds

CNN = [
    {"conv2d": {"filters": 4, "kernel": 3, "padding": 1}},
    {"relu": {}},
    {"max_pool2d": {"size": 2}},
    {"conv2d": {"filters": 6, "kernel": 3}},
    {"relu": {}},
    {"flatten": {}},
    {"dense": {"units": 10}},
]


def build(specs, dtype=np.float64):
    return Network.from_specs(specs, (1, 8, 8), np.random.default_rng(0), dtype)


def step(model, x, y):
    """Forward, loss, backward; the outputs, the loss and copies of the gradients."""
    loss = SoftmaxCrossEntropy()
    out = model.forward(x, training=True)
    value = loss.forward(out, y)
    model.backward(loss.backward())
    return out, value, {k: v.copy() for k, v in model.gradients().items()}


@pytest.mark.parametrize("threads, batch", [(2, 10), (3, 10), (2, 1), (4, 3)])
def test_slices_give_the_whole_batch_outputs_and_gradients(threads, batch):
    net = build(CNN)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(batch, 1, 8, 8)), rng.integers(0, 10, size=batch)
    out, loss, grads = step(net, x, y)
    out_p, loss_p, grads_p = step(DataParallel(net, threads), x, y)
    np.testing.assert_allclose(out_p, out, rtol=1e-12)
    assert loss_p == pytest.approx(loss, rel=1e-12)
    assert set(grads_p) == set(grads) == set(net.parameters())
    for key in grads:
        np.testing.assert_allclose(grads_p[key], grads[key], rtol=1e-10, atol=1e-14)


def test_float32_stays_float32_and_the_parameters_are_shared():
    net = build(CNN, np.float32)
    model = DataParallel(net, 2)
    x = np.random.default_rng(1).normal(size=(8, 1, 8, 8)).astype(np.float32)
    out, _, grads = step(model, x, np.arange(8))
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())
    net.parameters()["6.b"][:] = 100.0  # the layers' copies see the change
    assert np.all(model.forward(x) > 50)


def test_evaluation_in_slices_equals_the_network():
    net = build(CNN)
    x = np.random.default_rng(1).normal(size=(25, 1, 8, 8))
    np.testing.assert_allclose(DataParallel(net, 2).forward(x), net.forward(x), rtol=1e-12)


def test_dropout_masks_come_from_the_noise_stream_not_from_thread_timing():
    specs = [{"flatten": {}}, {"dropout": {"rate": 0.5}}, {"dense": {"units": 3}}]
    x = np.ones((40, 1, 8, 8))

    def outputs():
        net = build(specs)
        net.set_noise_rng(np.random.default_rng(7))
        model = DataParallel(net, 2)
        return [model.forward(x, training=True) for _ in range(3)]

    first, second = outputs(), outputs()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    # each slice and each step draws its own masks
    assert not np.array_equal(first[0][:20], first[0][20:])
    assert not np.array_equal(first[0], first[1])


BN_CNN = [
    {"conv2d": {"filters": 4, "kernel": 3, "padding": 1}},
    {"batch_norm": {}},
    {"relu": {}},
    {"max_pool2d": {"size": 2}},
    {"flatten": {}},
    {"dense": {"units": 6}},
    {"batch_norm": {}},
    {"dense": {"units": 10}},
]


@pytest.mark.parametrize("threads, batch", [(2, 10), (3, 11), (2, 2)])
def test_batch_norm_in_slices_uses_the_whole_batch_statistics(threads, batch):
    net, sliced = build(BN_CNN), build(BN_CNN)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(batch, 1, 8, 8)), rng.integers(0, 10, size=batch)
    out, loss, grads = step(net, x, y)
    out_p, loss_p, grads_p = step(DataParallel(sliced, threads), x, y)
    np.testing.assert_allclose(out_p, out, rtol=1e-10, atol=1e-12)
    assert loss_p == pytest.approx(loss, rel=1e-12)
    for key in grads:
        np.testing.assert_allclose(grads_p[key], grads[key], rtol=1e-9, atol=1e-12)
    # the running statistics move once per batch, by the whole batch's statistics
    for key, value in net.buffers().items():
        np.testing.assert_allclose(sliced.buffers()[key], value, rtol=1e-12)
    assert not np.allclose(net.buffers()["1.running_mean"], 0)


def test_build_model_slices_when_threads_is_above_one(write_config):
    from npnet.config import load_config

    path = write_config("name: bn\nmodel: {layers: [flatten]}\ntrain: {threads: 2}\n")
    config = load_config(path)
    model = build_model(config, build([{"flatten": {}}, {"batch_norm": {}}]))
    assert isinstance(model, DataParallel)
    assert model.threads == 2


def test_blas_threads_are_restored_after_a_step():
    before = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    net = build(CNN)
    step(DataParallel(net, 2), np.zeros((4, 1, 8, 8)), np.zeros(4, dtype=np.int64))
    after = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    assert after == before


def test_an_error_in_a_slice_reaches_the_caller():
    net = build(CNN)
    model = DataParallel(net, 2)
    with pytest.raises(ValueError):
        model.forward(np.zeros((4, 2, 8, 8)), training=True)  # two channels, one expected


@pytest.mark.parametrize(
    "failing_slice, error",
    [
        # the worker's slice fails before giving its part of batch norm's first sum, while
        # the calling thread's slice waits for it
        (1, ValueError("boom")),
        # Ctrl-C lands in the calling thread, possibly while its slice waits for the sums
        (0, KeyboardInterrupt()),
    ],
)
def test_a_failing_slice_frees_the_others_and_its_error_reaches_the_caller(failing_slice, error):
    net = build([{"flatten": {}}, {"batch_norm": {}}])
    model = DataParallel(net, 2)
    replicate = model.replicate

    def fail(part):
        raise error

    def replicate_with_a_failing_slice(index, training, rngs):
        replica = replicate(index, training, rngs)
        if index == failing_slice:
            replica.layers[1].batch_sum = fail
        return replica

    model.replicate = replicate_with_a_failing_slice
    with pytest.raises(type(error)):
        model.forward(np.ones((4, 1, 8, 8)), training=True)
    del model.replicate  # back to the class's method: the next batch runs normally
    assert model.forward(np.ones((4, 1, 8, 8)), training=True).shape == (4, 64)


def test_ctrl_c_before_the_calling_threads_slice_starts_frees_the_others():
    """The interrupt lands after the workers got their slices and before the calling thread
    began its own: a worker waiting at batch norm's sum must be freed (or the process hangs
    at exit joining it)."""
    net = build([{"flatten": {}}, {"batch_norm": {}}])
    model = DataParallel(net, 2)
    submit = model.pool.submit

    def submit_then_interrupt(*args):
        submit(*args)
        raise KeyboardInterrupt

    model.pool.submit = submit_then_interrupt
    with pytest.raises(KeyboardInterrupt):
        model.forward(np.ones((4, 1, 8, 8)), training=True)
    del model.pool.submit
    # The worker's slice was released (BrokenBarrierError), so its thread is free again.
    assert model.pool.submit(lambda: "free").result(timeout=30) == "free"
    assert model.forward(np.ones((4, 1, 8, 8)), training=True).shape == (4, 64)


def test_each_data_parallel_has_its_own_threads_and_they_end_with_it():
    net = build(CNN)
    x = np.zeros((6, 1, 8, 8))
    before = threading.active_count()
    for _ in range(20):
        DataParallel(net, 3).forward(x)
    gc.collect()
    for _ in range(100):  # the idle workers notice their pool is gone
        if threading.active_count() <= before:
            break
        threading.Event().wait(0.01)
    assert threading.active_count() <= before


def test_blocks_of_two_threads_take_turns_and_restore_the_blas_threads():
    """A (this thread) is inside when B starts: B enters only after A has left, has BLAS on
    one thread inside, and leaves it as it was. Without the turns, B's limit is dropped
    (threadpoolctl lets one thread at a time set OpenBLAS's: A's) and B's exit, restoring
    the one thread it found, leaves BLAS on one."""

    def blas_threads() -> list[int]:
        return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]

    a_left, seen = threading.Event(), {}

    def b() -> None:
        with one_blas_thread():
            seen["a had left"] = a_left.is_set()
            seen["inside b"] = blas_threads()

    before = blas_threads()
    if max(before) == 1:
        pytest.skip("BLAS runs on one thread here: nothing to restore")
    thread = threading.Thread(target=b)
    with one_blas_thread():
        thread.start()
        thread.join(0.3)  # B waits for its turn
        a_left.set()
    thread.join(10)
    assert seen == {"a had left": True, "inside b": [1] * len(before)}
    assert blas_threads() == before


def test_slices_are_cut_where_array_split_cuts():
    for rows in range(1, 20):
        for slices in range(1, min(rows, 5) + 1):
            x = np.arange(rows)
            expected = np.array_split(x, slices)
            got = cut_rows(x, slice_bounds(rows, slices))
            assert [list(a) for a in got] == [list(a) for a in expected]


AVX512 = {"fma", "avx2", "avx512f", "avx512bw", "avx512dq", "avx512vl"}


@pytest.mark.parametrize(
    ("named", "kernels", "flags", "wider"),
    [
        ("Haswell", "Haswell", AVX512, "AVX-512"),  # this project's Zen 5 hosts
        ("Zen", "Zen", AVX512, "AVX-512"),
        ("Sandybridge", "Sandybridge", {"avx", "fma", "avx2"}, "AVX2"),
        ("Haswell", "Haswell", {"fma", "avx2"}, None),  # AVX2 is all this CPU runs
        ("Sandybridge", "Sandybridge", {"avx"}, None),
        ("Haswell", "Haswell", AVX512 - {"avx512vl"}, None),  # not all OpenBLAS's AVX-512 needs
        ("SkylakeX", "SkylakeX", AVX512, None),
        (None, "Haswell", AVX512, None),  # OpenBLAS's own choice: nothing to say
        ("Haswell", None, AVX512, None),  # a BLAS that does not name its kernels
    ],
)
def test_a_pin_to_narrower_kernels_than_the_cpu_runs_is_said(
    monkeypatch, named, kernels, flags, wider
):
    monkeypatch.setattr(blas, "running_kernels", lambda: kernels)
    monkeypatch.setattr(blas, "cpu_flags", lambda: frozenset(flags))
    if named is None:
        monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    else:
        monkeypatch.setenv("OPENBLAS_CORETYPE", named)
    line = pinned_narrower_kernels()
    if wider is None:
        assert line is None
    else:
        assert line == (
            f"OPENBLAS_CORETYPE={named} holds OpenBLAS to its {kernels} kernels, but this CPU "
            f"runs {wider}, whose kernels are faster: unset OPENBLAS_CORETYPE to use them "
            "(other last bits of every number; docs/performance.md)"
        )


def test_cpu_flags_are_the_flags_line_of_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu fma avx2\n\n")
    assert cpu_flags(str(cpuinfo)) == {"fpu", "fma", "avx2"}
    assert cpu_flags(str(tmp_path / "missing")) == frozenset()


def test_blas_kernels_name_what_openblas_runs_and_what_chose_them(monkeypatch):
    named = [info["architecture"] for info in threadpool_info() if info.get("architecture")]
    kernels = named[0] if named else None
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    assert blas_kernels() == kernels
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    assert blas_kernels() == (kernels and f"{kernels} (OPENBLAS_CORETYPE=Haswell)")
