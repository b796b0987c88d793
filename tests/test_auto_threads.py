"""`train.threads: auto`: the chooser's policy on hand-made step times; how many slices run at
once never changes a number (dropout, batch norm and updates included); what auto builds for
a network and a machine; a real `npnet train` prints its choice and equals `threads: 2`."""

import json
import sys

import numpy as np
import pytest
from test_cli import invoke, train_tiny
from test_parallel import BN_CNN, CNN, build
from threadpoolctl import threadpool_info, threadpool_limits

from npnet.config import load_config
from npnet.engine.experiment import build_model
from npnet.nn.blas import blas_kernels, idle_core_seconds
from npnet.nn.conv_pool import ConvMaxPool
from npnet.nn.losses import SoftmaxCrossEntropy
from npnet.nn.network import Network
from npnet.nn.parallel import DataParallel, OneBlasThread, auto_parallel
from npnet.nn.slice_process import fork_available
from npnet.nn.threads import FastestChoice
from npnet.optim.optimizers import SGD

# --- the chooser, fed exact step times ----------------------------------------------------


def feed(chooser, seconds_of):
    """One step: the time `seconds_of(setting)` of the setting the chooser runs; returns it."""
    setting = chooser.current
    chooser.record(seconds_of[setting])
    return setting


def test_a_trial_times_each_setting_in_a_row_then_keeps_the_fastest():
    chooser = FastestChoice([2, 1], samples=3, recheck=10, warmup=1)
    times = {2: 0.010, 1: 0.014}
    runs = [feed(chooser, times) for _ in range(7)]
    assert runs == [2, 2, 2, 2, 1, 1, 1]  # the untimed first step, then each in a row
    assert chooser.current == 2 and chooser.baseline == pytest.approx(0.010)
    assert [feed(chooser, times) for _ in range(10)] == [2] * 10
    assert chooser.current == 2  # its recheck is due: a new trial, the kept setting first


def test_the_other_setting_is_kept_once_it_is_faster():
    chooser = FastestChoice([2, 1], samples=2, recheck=4, warmup=0)
    idle, busy = {2: 0.010, 1: 0.015}, {2: 0.020, 1: 0.013}
    for _ in range(4):
        feed(chooser, idle)
    assert chooser.current == 2
    # another process takes a core: the step jumps past 1.5x the baseline, a trial follows
    for _ in range(5):
        feed(chooser, busy)
    assert chooser.in_trial
    for _ in range(4):
        feed(chooser, busy)
    assert chooser.current == 1 and not chooser.in_trial


@pytest.mark.parametrize(
    "times, kept, intervals",
    [
        ({2: 0.01, 1: 0.02}, 2, [3, 6, 12, 12]),  # side by side keeps winning: doubling
        # One slice after the other cannot see a core come back: only trying 2 at once tells.
        ({2: 0.03, 1: 0.02}, 1, [3, 3, 3, 3, 3]),
    ],
    ids=["first-doubles", "later-stays"],
)
def test_recheck_interval_doubles_only_while_the_first_setting_wins(times, kept, intervals):
    chooser = FastestChoice([2, 1], samples=1, recheck=3, max_recheck=12, warmup=0)
    seen = []
    for _ in range(60):
        if not chooser.in_trial and chooser.steps_left == chooser.recheck:
            seen.append(chooser.recheck)
        feed(chooser, times)
    assert chooser.kept == kept and seen[: len(intervals)] == intervals


class Machine:
    """A clock and an idle clock for the chooser: each step advances both, the idle one by
    `free` cores times the step (plus `pause` seconds of wall clock before the step)."""

    def __init__(self, monkeypatch):
        self.now, self.idle, self.free, self.pause = 100.0, 0.0, 0.0, 0.0
        monkeypatch.setattr("npnet.nn.threads.time.perf_counter", lambda: self.now)

    def step(self, chooser, seconds_of):
        self.now += self.pause
        setting = chooser.current
        seconds = seconds_of[setting]
        self.now += seconds
        self.idle += self.free * seconds
        chooser.record(seconds)
        return setting


LOADED = {2: 0.030, 1: 0.020}  # another process holds a core: one after the other is faster


def loaded_chooser(machine):
    """A chooser that has just kept one slice after the other (probe windows of 5 steps)."""
    chooser = FastestChoice(
        [2, 1], samples=1, recheck=20, max_recheck=200, warmup=0, idle_cores=lambda: machine.idle
    )
    chooser.probe = 5
    while chooser.in_trial:
        machine.step(chooser, LOADED)
    assert chooser.kept == 1
    return chooser


def steps_until_a_trial(machine, chooser, times, limit=1000):
    """Steps run with the kept setting before a trial starts."""
    for step in range(limit):
        if chooser.in_trial:
            return step
        machine.step(chooser, times)
    return limit


def test_with_the_cores_busy_a_later_setting_is_left_only_after_max_recheck(monkeypatch):
    machine = Machine(monkeypatch)
    chooser = loaded_chooser(machine)
    # no trial at the 20-step rechecks: only once 200 steps have passed (at a window's end)
    assert 200 <= steps_until_a_trial(machine, chooser, LOADED) <= 200 + chooser.probe
    assert machine.step(chooser, LOADED) == 1 and chooser.current == 2  # the kept one first


def test_a_core_gone_idle_brings_a_trial_within_two_windows(monkeypatch):
    machine = Machine(monkeypatch)
    chooser = loaded_chooser(machine)
    for _ in range(23):
        machine.step(chooser, LOADED)
    machine.free = 1.0  # the other process ended; one after the other is no faster for it
    assert steps_until_a_trial(machine, chooser, LOADED) <= 2 * chooser.probe
    idle = {2: 0.010, 1: 0.020}
    assert [machine.step(chooser, idle) for _ in range(2)] == [1, 2]
    assert chooser.kept == 2 and not chooser.in_trial


def test_a_later_setting_that_keeps_winning_beside_an_idle_core_is_tried_less_often(monkeypatch):
    # A core sits idle, yet one slice after the other keeps winning (the host slows the
    # other): the windows before each new trial double, 5, 10, 20, 40 steps.
    machine = Machine(monkeypatch)
    chooser = loaded_chooser(machine)
    machine.free = 1.0
    waits = []
    for _ in range(4):
        waits.append(steps_until_a_trial(machine, chooser, LOADED))
        while chooser.in_trial:
            machine.step(chooser, LOADED)
    assert waits == [6, 11, 21, 41]  # one step opens each window, then 5, 10, 20, 40
    assert chooser.kept == 1


def test_a_pause_in_the_idle_window_is_measured_again(monkeypatch):
    machine = Machine(monkeypatch)
    chooser = loaded_chooser(machine)
    for _ in range(7):
        machine.step(chooser, LOADED)
    machine.pause, machine.idle = 1.0, machine.idle + 1.0  # e.g. an evaluation: cores idle
    machine.step(chooser, LOADED)
    machine.pause = 0.0
    # the window with the pause says nothing of the steps: no trial, though a core was idle
    assert steps_until_a_trial(machine, chooser, LOADED, limit=100) == 100


def test_slower_steps_of_a_later_setting_bring_no_trial_with_an_idle_clock(monkeypatch):
    machine = Machine(monkeypatch)
    chooser = loaded_chooser(machine)
    runs = [machine.step(chooser, {2: 0.090, 1: 0.060}) for _ in range(19)]  # 3x its baseline
    assert runs == [1] * 19 and not chooser.in_trial


def test_idle_core_seconds_reads_the_kernel_or_says_it_cannot(monkeypatch):
    first = idle_core_seconds()
    if not sys.platform.startswith("linux"):
        assert first is None
        return
    assert isinstance(first, float) and 0 <= first <= idle_core_seconds()

    def unreadable(*args, **kwargs):
        raise PermissionError("/proc/stat")

    monkeypatch.setattr("builtins.open", unreadable)
    assert idle_core_seconds() is None


def test_one_hiccup_does_not_end_a_settings_turns():
    # Side by side 10 ms, one after the other 16 ms; one side-by-side step hit by the host
    # (31 ms, over 3x the best): it keeps its steps, and its median still wins.
    chooser = FastestChoice([2, 1], samples=3, warmup=0)
    steps = iter([0.010, 0.031, 0.010, 0.016, 0.016, 0.016])
    runs = []
    while chooser.in_trial:
        runs.append(chooser.current)
        chooser.record(next(steps))
    assert runs == [2, 2, 2, 1, 1, 1] and chooser.kept == 2


def test_a_hopeless_setting_gets_no_more_turns_in_the_trial():
    chooser = FastestChoice([2, 1], samples=3, warmup=0)
    times = {2: 0.01, 1: 0.25}  # 25x: what spinning BLAS threads on a busy core cost
    runs = [feed(chooser, times) for _ in range(4)]
    assert runs == [2, 2, 2, 1]
    assert not chooser.in_trial and chooser.current == 2


def test_one_candidate_is_never_timed_against_itself():
    chooser = FastestChoice([1, 1])
    assert chooser.candidates == [1] and not chooser.in_trial
    assert [feed(chooser, {1: 0.01}) for _ in range(3)] == [1, 1, 1]
    with pytest.raises(ValueError, match="at least one"):
        FastestChoice([])


# --- slices at once change only the time ----------------------------------------------------


def train(model, steps=6, batch=10, seed=1):
    """`steps` SGD steps with momentum; the losses, outputs, parameters and buffers after."""
    rng = np.random.default_rng(seed)
    loss, optimizer = SoftmaxCrossEntropy(), SGD(lr=0.1, momentum=0.9)
    losses, outs = [], []
    for _ in range(steps):
        x, y = rng.normal(size=(batch, 1, 8, 8)), rng.integers(0, 10, size=batch)
        outs.append(model.forward(x, training=True))
        losses.append(loss.forward(outs[-1], y))
        model.backward(loss.backward())
        optimizer.step(model.parameters(), model.gradients())
    outs.append(model.forward(rng.normal(size=(25, 1, 8, 8))))  # evaluation in slices too
    state = {**model.parameters(), **model.buffers()}
    return losses, outs, {k: v.copy() for k, v in state.items()}


DROPOUT_CNN = [*CNN[:3], {"dropout": {"rate": 0.3}}, *CNN[3:]]


@pytest.mark.parametrize("specs", [DROPOUT_CNN, BN_CNN], ids=["dropout", "batch_norm"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_slices_at_once_change_no_number(specs, dtype):
    def run(workers=None, chooser=None):
        net = build(specs, dtype)
        net.set_noise_rng(np.random.default_rng(7))
        model = DataParallel(net, 2)
        model.workers = workers or model.workers
        model.chooser = chooser
        return train(model)

    side_by_side = run()
    one_after_the_other = run(workers=1)
    # a chooser retried every step switches back and forth between the two
    switching = FastestChoice([2, 1], samples=1, recheck=1, warmup=0)
    switched = run(chooser=switching)
    assert switching.used[1] > 0 and switching.used[2] > 0
    for other in (one_after_the_other, switched):
        assert other[0] == side_by_side[0]
        for a, b in zip(other[1], side_by_side[1], strict=True):
            np.testing.assert_array_equal(a, b)
        for key, value in side_by_side[2].items():
            np.testing.assert_array_equal(other[2][key], value)


# One of each pass that cuts the batch in a pass of all the slices at once (`Layer.blocks`), on
# 1x16x16 images: a first conv (im2col, no dX), a 3x3 "same" conv on 4 channels of 256 pixels
# (shifted copies), a 5x5 "valid" conv (dX by rows), a 3x3 conv at stride 2 (dX by col2im),
# average pooling, dense layers; and a first conv merged with its max-pool.
ONE_PASS = [
    {"conv2d": {"filters": 4, "kernel": 3, "padding": 1}},
    {"relu": {}},
    {"conv2d": {"filters": 5, "kernel": 3, "padding": 1}},
    {"relu": {}},
    {"max_pool2d": {"size": 2}},
    {"conv2d": {"filters": 6, "kernel": 5}},
    {"tanh": {}},
    {"conv2d": {"filters": 3, "kernel": 3, "stride": 2, "padding": 1}},
    {"avg_pool2d": {"size": 2}},
    {"flatten": {}},
    {"dense": {"units": 7}},
    {"relu": {}},
    {"dense": {"units": 10}},
]
MERGED_FIRST = [{"conv2d": {"filters": 9, "kernel": 3, "padding": 1}}, {"relu": {}}, *ONE_PASS[4:]]


def one_pass_model(specs, dtype, workers):
    net = Network.from_specs(specs, (1, 16, 16), np.random.default_rng(0), dtype)
    model = DataParallel(net, 3)
    model.workers = workers
    return model


@pytest.mark.parametrize("specs", [ONE_PASS, MERGED_FIRST], ids=["one-of-each", "merged-first"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_the_slices_in_one_pass_give_the_numbers_of_the_slices_apart(specs, dtype):
    if specs is ONE_PASS:
        layers = one_pass_model(specs, dtype, 1).layers
        assert [layers[i].shifted for i in (0, 2, 5, 7)] == [False, True, False, False]
        assert layers[0].rebuilds_columns  # dW builds the first conv's columns again
    else:
        assert isinstance(one_pass_model(specs, dtype, 1).run_order[0], ConvMaxPool)
    runs = {}
    for workers in (3, 1):
        model = one_pass_model(specs, dtype, workers)
        model.forks = False  # threads: this test is about the one pass, not the processes
        rng = np.random.default_rng(3)
        loss, optimizer = SoftmaxCrossEntropy(), SGD(lr=0.1, momentum=0.9)
        record = []
        # 11 rows: slices of 4, 4 and 3; 2 rows: two slices of one row; 1 row: one slice.
        for batch in (11, 10, 2, 1, 7):
            x = rng.normal(size=(batch, 1, 16, 16)).astype(dtype)
            y = rng.integers(0, 10, size=batch)
            record.append(model.forward(x, training=True))
            record.append(np.float64(loss.forward(record[-1], y)))
            model.backward(loss.backward())
            record += [grad.copy() for grad in model.gradients().values()]
            optimizer.step(model.parameters(), model.gradients())
            assert model.one_pass == (workers == 1)
        record.append(model.forward(rng.normal(size=(25, 1, 16, 16)).astype(dtype)))
        record += [value.copy() for value in model.parameters().values()]
        assert all(layer.cuts is None for layer in model.layers)  # only during its passes
        runs[workers] = record
    assert len(runs[1]) == len(runs[3])
    for a, b in zip(runs[1], runs[3], strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_one_pass_waits_for_dropout_and_batch_norm_in_training_only():
    for specs in (DROPOUT_CNN, BN_CNN):
        model = DataParallel(build(specs), 2)
        model.workers = 1
        x = np.random.default_rng(0).normal(size=(6, 1, 8, 8))
        model.forward(x, training=True)
        assert not model.one_pass  # each slice draws its own masks / the slices share sums
        model.forward(x)
        assert model.one_pass


def test_one_slice_at_a_time_survives_a_failing_slice():
    model = DataParallel(build(BN_CNN), 2)
    model.workers = 1
    with pytest.raises(ValueError):
        model.forward(np.zeros((4, 1, 12, 12)), training=True)  # dense gets the wrong size
    out = model.forward(np.zeros((4, 1, 8, 8)), training=True)  # and the next step runs
    assert out.shape == (4, 10)


# --- what auto builds ----------------------------------------------------------------------


def blas_threads():
    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


def test_auto_slices_image_networks_and_times_the_choice_only_with_free_cores():
    model = auto_parallel(build(CNN), cores=2)
    assert isinstance(model, DataParallel) and model.threads == 2
    assert model.chooser.candidates == [2, 1]
    one_core = auto_parallel(build(CNN), cores=1)
    assert one_core.threads == 2 and one_core.chooser.candidates == [1]
    # the same slices whatever the cores: the same numbers
    np.testing.assert_array_equal(train(model)[2]["6.W"], train(one_core)[2]["6.W"])


def test_auto_runs_dense_networks_whole_on_one_blas_thread():
    net = build([{"flatten": {}}, {"dense": {"units": 10}}])
    model = auto_parallel(net, cores=2)
    assert isinstance(model, OneBlasThread)
    assert model.parameters().keys() == net.parameters().keys()
    before = blas_threads()
    seen = []
    dense = model.layers[1]
    forward = dense.forward
    dense.forward = lambda x, training: (seen.append(blas_threads()), forward(x, training))[1]
    train(model, steps=1)
    assert seen and all(threads == [1] * len(before) for threads in seen)
    assert blas_threads() == before
    # the same numbers as the bare network on one BLAS thread
    specs = [{"flatten": {}}, {"dense": {"units": 10}}]
    with threadpool_limits(limits=1, user_api="blas"):
        bare = train(build(specs))
    np.testing.assert_array_equal(train(auto_parallel(build(specs)))[2]["1.W"], bare[2]["1.W"])


def test_auto_is_the_default_and_an_explicit_number_is_obeyed(write_config):
    config = load_config(write_config("name: a\nmodel: {layers: [flatten]}\n"))
    assert config.train.threads == "auto"
    net = build(CNN)
    assert isinstance(build_model(config, net), DataParallel)
    config.train.threads = 1
    assert build_model(config, net) is net  # BLAS as the environment set it
    config.train.threads = 3
    model = build_model(config, net)
    assert model.threads == model.workers == 3 and model.chooser is None


def test_threads_must_be_a_positive_int_or_auto(write_config):
    from npnet.errors import ConfigError

    path = write_config("name: a\nmodel: {layers: [flatten]}\ntrain: {threads: many}\n")
    with pytest.raises(ConfigError, match="'threads' must be a positive int or auto, got 'many'"):
        load_config(path)


# --- npnet train ---------------------------------------------------------------------------

TINY_CNN = """\
name: tiny-cnn
data: {dataset: digits, validation: 200, normalize: scale}
model:
  layers:
    - conv2d: {filters: 4, kernel: 3, padding: 1}
    - relu
    - max_pool2d: {size: 2}
    - flatten
    - dense: {units: 10}
optimizer: {name: sgd, lr: 0.1, momentum: 0.9}
train: {epochs: 2, batch_size: 32}
"""


def test_train_prints_auto_and_equals_two_threads(write_config, tmp_path):
    auto_dir, result = train_tiny(write_config, tmp_path, text=TINY_CNN)
    assert "threads: auto: each batch in 2 slices" in result.stdout
    two_dir, result = train_tiny(write_config, tmp_path, "--set", "train.threads=2", text=TINY_CNN)
    assert "threads: 2 (each batch in 2 slices at once)" in result.stdout
    assert (auto_dir / "weights.npz").read_bytes() != b""
    summaries = [json.loads((d / "summary.json").read_text()) for d in (auto_dir, two_dir)]
    for key in ("test_accuracy", "test_loss", "best_val_accuracy"):
        assert summaries[0][key] == summaries[1][key]
    with np.load(auto_dir / "weights.npz") as a, np.load(two_dir / "weights.npz") as b:
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])
    result = invoke("eval", auto_dir)
    assert result.exit_code == 0, result.output
    threads = summaries[0]["threads"]
    assert threads["slices"] == 2 and threads["blas_threads"] == 1
    steps = sum(threads["slices_at_once_steps"].values())
    assert steps == 2 * -(-summaries[0]["train_examples"] // 32)  # every step of 2 epochs
    side_by_side_in = "processes" if fork_available() else "threads"
    expected = {"slices": 2, "blas_threads": 1, "side_by_side_in": side_by_side_in}
    expected["blas_kernels"] = blas_kernels()
    assert summaries[1]["threads"] == expected


def test_train_says_how_a_dense_network_runs(write_config, tmp_path):
    _, result = train_tiny(write_config, tmp_path)
    assert "threads: auto: each batch whole, BLAS on 1 thread" in result.stdout


def test_an_evaluation_runs_the_kept_setting_not_the_one_on_trial():
    model = DataParallel(build(CNN), 2)
    model.chooser = FastestChoice([2, 1], samples=1, warmup=0)
    model.chooser.record(0.01)  # 2 timed: the trial turns to 1
    assert model.chooser.current == 1 and model.chooser.kept == 2
    x = np.random.default_rng(1).normal(size=(6, 1, 8, 8))
    model.forward(x, training=True)
    assert model.workers == 1
    model.forward(x)  # the evaluation after that training step
    assert model.workers == 2
