"""Issue 12, run directories: files read back robustly, checkpoints validated field by field,
umask-honouring and strict-JSON writes, a full disk, and what `--resume` may do."""

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from tiny import TINY_MLP
from typer.testing import CliRunner

from npnet.cli import app
from npnet.config import load_config
from npnet.engine import checkpoint, runs
from npnet.engine.callbacks import Callback
from npnet.engine.loop import fit, resume
from npnet.errors import RunError
from npnet.files import dumps_strict_json

TINY = TINY_MLP.replace("epochs: 3", "epochs: 2")


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line(result, code=2):
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    line = result.stderr.strip()
    assert line and "\n" not in line and "Traceback" not in result.output, result.output
    return line


def snapshot(run_dir):
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir()) if p.is_file()}


class StopAfterEpoch(Callback):
    """Ctrl-C (KeyboardInterrupt) as soon as epoch `epoch` has ended."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, row):
        if row["epoch"] == self.epoch:
            raise KeyboardInterrupt


@pytest.fixture
def finished(write_config, tmp_path):
    run_dir, _ = fit(load_config(write_config(TINY)), tmp_path / "runs")
    return run_dir


@pytest.fixture
def interrupted(write_config, tmp_path):
    """A 3-epoch run interrupted after epoch 1: resumable."""
    config = load_config(write_config(TINY_MLP))
    run_dir, summary = fit(config, tmp_path / "runs", StopAfterEpoch(1))
    assert summary["status"] == "interrupted" and summary["epochs_completed"] == 1
    return run_dir


# --- summary.json, metrics.csv, grad_norms.csv read back ------------------------------------

BROKEN_SUMMARIES = {
    "json-list": b"[1, 2, 3]",
    "binary": bytes(range(256)),
    "string-for-number": json.dumps({"status": "completed", "test_accuracy": "high"}).encode(),
    "bool-for-int": json.dumps({"status": "completed", "epochs_completed": True}).encode(),
    "status-as-markup": json.dumps({"status": "[/]", "epochs_completed": 1}).encode(),
    "number-for-name": json.dumps({"name": 5}).encode(),
}


@pytest.mark.parametrize("kind", [*BROKEN_SUMMARIES, "directory"])
def test_one_broken_summary_does_not_hide_the_other_runs(finished, write_config, tmp_path, kind):
    broken, _ = fit(load_config(write_config(TINY)), tmp_path / "runs")
    summary = broken / runs.SUMMARY_FILE
    if kind == "directory":
        summary.unlink()
        summary.mkdir()
    else:
        summary.write_bytes(BROKEN_SUMMARIES[kind])
    result = invoke("runs", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    rows = {row["run"]: row for row in runs.list_runs(tmp_path / "runs")}
    assert rows[finished.name]["status"] == "completed"
    if kind != "status-as-markup":
        assert rows[broken.name]["status"] == "unreadable"
        assert str(summary) in rows[broken.name]["note"]
    for sort in ("test_accuracy", "epochs", "name", "status"):
        assert invoke("runs", "--runs-dir", tmp_path / "runs", "--sort", sort).exit_code == 0
    compared = invoke("runs", "compare", finished, broken)
    assert compared.exit_code == 0, compared.output


@pytest.mark.parametrize(
    "damage",
    [
        b"\x00\xff\xfe binary \x00",
        b"epoch,train_loss\n1,abc\n",
        b"nonsense\n1\n",
        b"epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds\n1,2\n",
        b'epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds\n1,"0.5',
    ],
    ids=["binary", "text-cell", "no-columns", "short-row", "open-quote"],
)
def test_corrupt_metrics_csv(finished, tmp_path, damage):
    (finished / runs.METRICS_FILE).write_bytes(damage)
    # eval needs only config.yaml and weights.npz: the figures still come.
    result = invoke("eval", finished, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["loss"] == runs.read_summary(finished)["test_loss"]
    assert invoke("eval", finished).exit_code == 0
    # plot needs the curves, so it refuses, naming the file.
    line = one_line(invoke("plot", finished, "--out", tmp_path / "figures"))
    assert str(finished / runs.METRICS_FILE) in line


@pytest.mark.parametrize(
    "damage", [b"\x00\xff binary", b"epoch,0.W\n1,x\n", b"epoch,9.W\n1,0.5\n", b"epoch,W\n1,2\n"]
)
def test_corrupt_grad_norms_csv(write_config, tmp_path, damage):
    config = load_config(write_config(TINY), ["train.log_grad_norms=true", "train.epochs=1"])
    run_dir, _ = fit(config, tmp_path / "runs")
    (run_dir / runs.GRAD_NORMS_FILE).write_bytes(damage)
    assert str(run_dir / runs.GRAD_NORMS_FILE) in one_line(invoke("gradnorms", run_dir))
    line = one_line(invoke("plot", run_dir, "--out", tmp_path / "figures"))
    assert str(run_dir / runs.GRAD_NORMS_FILE) in line


# --- config.yaml and weights.npz of a run ---------------------------------------------------


@pytest.mark.parametrize("damage", ["binary", "directory", "symlink-loop", "dev-zero"])
def test_an_unreadable_run_config_is_one_line(interrupted, damage):
    path = interrupted / runs.CONFIG_FILE
    path.unlink()
    if damage == "binary":
        path.write_bytes(b"\x00\xff" * 100)
    elif damage == "directory":
        path.mkdir()
    elif damage == "symlink-loop":
        os.symlink(path, path)
    else:
        os.symlink("/dev/zero", path)
    before = snapshot(interrupted)
    assert str(path) in one_line(invoke("train", "--resume", interrupted))
    assert str(path) in one_line(invoke("eval", interrupted))
    assert snapshot(interrupted) == before


@pytest.mark.parametrize(
    "array",
    [
        lambda w: w.astype(np.complex64),
        lambda w: w.astype(np.int64),
        lambda w: w.astype("U8"),
        lambda w: np.zeros(w.shape, dtype=[("a", np.float32)]),
        lambda w: w.astype(bool),
    ],
    ids=["complex", "int64", "string", "structured", "bool"],
)
def test_weights_of_the_wrong_dtype_are_refused(finished, array):
    arrays = runs.load_arrays(finished / runs.WEIGHTS_FILE)
    arrays["1.W"] = array(arrays["1.W"])
    np.savez(finished / runs.WEIGHTS_FILE, **arrays)
    line = one_line(invoke("eval", finished))
    assert "'1.W' holds" in line and "floating-point" in line


# --- checkpoints validated field by field ---------------------------------------------------


def rewrite_checkpoint(run_dir, change_arrays=None, change_meta=None):
    path = run_dir / checkpoint.CHECKPOINT_FILE
    arrays = runs.load_arrays(path)
    meta = json.loads(str(arrays["meta"]))
    if change_meta:
        meta = change_meta(meta)
    arrays["meta"] = np.array(json.dumps(meta))
    if change_arrays:
        change_arrays(arrays)
    np.savez(path, **arrays)


def set_key(key, value):
    def change(meta):
        meta[key] = value
        return meta

    return change


def drop_key(key):
    def change(meta):
        del meta[key]
        return meta

    return change


def each_row(meta, change):
    for row in meta["rows"]:
        change(row)
    return meta


def first_opt_slot(arrays):
    return next(k for k in arrays if k.startswith("opt/state/"))


META_DAMAGE = {
    "meta-a-list": lambda meta: [meta],
    "epoch-missing": drop_key("epoch"),
    "epoch-a-string": set_key("epoch", "1"),
    "epoch-past-the-end": set_key("epoch", 7),
    "rows-missing": drop_key("rows"),
    "rows-too-few": set_key("rows", []),
    "rows-without-val-loss": lambda meta: each_row(meta, lambda row: row.pop("val_loss")),
    "rows-with-text": lambda meta: each_row(meta, lambda row: row.update(train_loss="low")),
    "seconds-a-list": set_key("seconds", [1]),
    "schedule-missing": drop_key("schedule"),
    "schedule-a-number": set_key("schedule", 3),
    "rng-missing": drop_key("shuffle_rng"),
    "rng-other-generator": set_key("noise_rng", {"bit_generator": "MT19937", "state": {}}),
    "rng-bad-state": set_key("shuffle_rng", {"bit_generator": "PCG64", "state": 5}),
    "best-a-string": set_key("best", "epoch 1"),
    "best-epoch-missing": set_key("best", {"value": 0.5}),
}


def _drop(key):
    return lambda arrays: arrays.pop(key)


ARRAY_DAMAGE = {
    "opt-lr-missing": _drop("opt/lr"),
    "opt-steps-a-vector": lambda a: a.update({"opt/steps": np.arange(3)}),
    "opt-slot-misshapen": lambda a: a.update({first_opt_slot(a): np.zeros(3, np.float32)}),
    "opt-slot-complex": lambda a: a.update(
        {first_opt_slot(a): a[first_opt_slot(a)].astype(np.complex64)}
    ),
    "opt-slot-stranger": lambda a: a.update({"opt/state/7.W/velocity": np.zeros(2, np.float32)}),
    "net-array-missing": _drop("net/1.b"),
    "net-array-int": lambda a: a.update({"net/1.b": a["net/1.b"].astype(np.int64)}),
    "meta-missing": _drop("meta"),
}


@pytest.mark.parametrize("damage", list(META_DAMAGE) + list(ARRAY_DAMAGE))
def test_a_malformed_checkpoint_is_refused_with_one_line(interrupted, damage):
    if damage in META_DAMAGE:
        rewrite_checkpoint(interrupted, change_meta=META_DAMAGE[damage])
    else:
        rewrite_checkpoint(interrupted, change_arrays=ARRAY_DAMAGE[damage])
    before = snapshot(interrupted)
    line = one_line(invoke("train", "--resume", interrupted))
    assert str(interrupted / checkpoint.CHECKPOINT_FILE) in line
    assert snapshot(interrupted) == before


@pytest.mark.parametrize("kind", ["directory", "dev-zero", "symlink-loop"])
def test_weights_that_are_not_a_file_are_one_line(finished, kind):
    path = finished / runs.WEIGHTS_FILE
    path.unlink()
    if kind == "directory":
        path.mkdir()
    else:
        os.symlink("/dev/zero" if kind == "dev-zero" else path, path)
    assert str(path) in one_line(invoke("eval", finished))


def test_a_checkpoint_that_is_not_a_zip_is_refused(interrupted):
    (interrupted / checkpoint.CHECKPOINT_FILE).write_bytes(b"PK\x03\x04 truncated")
    assert "not a readable weights file" in one_line(invoke("train", "--resume", interrupted))


@pytest.mark.parametrize("target", ["file", "missing", "symlink-loop"])
def test_resume_needs_a_run_directory(tmp_path, target):
    path = tmp_path / "thing"
    if target == "file":
        path.write_text("x")
    elif target == "symlink-loop":
        os.symlink(path, path)
    assert str(path) in one_line(invoke("train", "--resume", path))


# --- what --resume may do -------------------------------------------------------------------


@pytest.mark.parametrize("early", [False, True])
def test_resuming_a_completed_run_is_refused_and_changes_nothing(write_config, tmp_path, early):
    text = TINY_MLP
    if early:  # patience 1 with a tiny lr stops after epoch 2 of 5
        text = text.replace("epochs: 3,", "epochs: 5, early_stopping: {patience: 1, min_delta: 1},")
    run_dir, summary = fit(load_config(write_config(text)), tmp_path / "runs")
    assert summary["status"] == "completed"
    if early:
        assert summary["epochs_completed"] < 5
    before = snapshot(run_dir)
    line = one_line(invoke("train", "--resume", run_dir))
    assert "the run completed" in line and "nothing to resume" in line
    assert snapshot(run_dir) == before


def test_resume_removes_what_killed_writes_left(interrupted):
    stale = [interrupted / ".weights.npz.k1ll3d.tmp", interrupted / ".checkpoint.npz.abc.tmp"]
    for path in stale:
        path.write_bytes(b"half a file")
    keep = interrupted / "notes.tmp"
    keep.write_text("the user's")
    assert resume(interrupted)["status"] == "completed"
    assert not any(path.exists() for path in stale)
    assert keep.exists()


def test_duration_counts_every_session(write_config, tmp_path):
    slow = TINY_MLP.replace("epochs: 3,", "epochs: 2,")

    class Slow(StopAfterEpoch):
        def on_batch_end(self, batch, loss, accuracy):
            if batch == 0:
                import time

                time.sleep(0.3)

    run_dir, first = fit(load_config(write_config(slow)), tmp_path / "runs", Slow(1))
    assert first["duration_seconds"] >= 0.3
    second = resume(run_dir, Slow(99))
    assert second["duration_seconds"] >= 0.6
    assert second["duration_seconds"] >= sum(r["seconds"] for r in runs.read_metrics(run_dir))


def test_resume_repairs_files_a_kill_left_an_epoch_ahead(write_config, tmp_path):
    # A kill between the renames of one epoch: weights and metrics of epoch 2, the
    # checkpoint (the commit point) of epoch 1. Resume rewrites them and ends bit-identical.
    config = load_config(write_config(TINY_MLP))
    straight, _ = fit(config, tmp_path / "a")
    run_dir, _ = fit(config, tmp_path / "b", StopAfterEpoch(1))
    epoch_one = (run_dir / checkpoint.CHECKPOINT_FILE).read_bytes()
    (run_dir / runs.SUMMARY_FILE).unlink()
    resume(run_dir, StopAfterEpoch(2))
    (run_dir / checkpoint.CHECKPOINT_FILE).write_bytes(epoch_one)
    (run_dir / runs.SUMMARY_FILE).unlink()
    assert len(runs.read_metrics(run_dir)) == 2
    resume(run_dir)
    assert runs.read_metrics(run_dir)[-1]["epoch"] == 3
    a = runs.load_arrays(straight / runs.WEIGHTS_FILE)
    b = runs.load_arrays(run_dir / runs.WEIGHTS_FILE)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


# --- file modes, strict JSON, a full disk ---------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_run_files_honour_the_umask(write_config, tmp_path, umask):
    previous = os.umask(umask)
    try:
        run_dir, _ = fit(load_config(write_config(TINY), ["train.epochs=1"]), tmp_path / "runs")
    finally:
        os.umask(previous)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in run_dir.iterdir()}
    assert set(modes) >= {"config.yaml", "metrics.csv", "weights.npz", "summary.json"}
    assert set(modes.values()) == {0o666 & ~umask}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow is the point
def test_non_finite_figures_are_null_with_a_reason(finished):
    strict = {"parse_constant": lambda token: pytest.fail(f"non-JSON token {token}")}
    text = dumps_strict_json({"a": float("inf"), "b": [float("nan"), 1.0], "c": {"d": -np.inf}})
    assert json.loads(text, **strict) == {
        "a": None,
        "a_reason": "not a finite number (inf); JSON has no inf",
        "b": [None, 1.0],
        "c": {"d": None, "d_reason": "not a finite number (-inf); JSON has no -inf"},
    }
    # Weights that overflow give an infinite or NaN loss: eval --json stays JSON.
    arrays = runs.load_arrays(finished / runs.WEIGHTS_FILE)
    arrays["3.W"] = np.full_like(arrays["3.W"], 3e38)
    np.savez(finished / runs.WEIGHTS_FILE, **arrays)
    result = invoke("eval", finished, "--json")
    assert result.exit_code == 0, result.output
    evaluated = json.loads(result.stdout, **strict)
    assert evaluated["loss"] is None and "not a finite number" in evaluated["loss_reason"]


def test_diverged_summary_is_strict_json(write_config, tmp_path):
    config = load_config(write_config(TINY), ["optimizer.lr=1e30"])
    run_dir, summary = fit(config, tmp_path / "runs")
    assert summary["status"] == "diverged"
    text = (run_dir / runs.SUMMARY_FILE).read_text()
    json.loads(text, parse_constant=lambda token: pytest.fail(f"non-JSON token {token}"))
    assert "no epoch had finished, so no weights were saved" in summary["message"]
    assert not (run_dir / runs.WEIGHTS_FILE).exists()
    assert "train --resume" not in summary["message"]


FULL_DISK = """
import resource, signal, sys
from pathlib import Path
from npnet.cli import app
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
sys.argv = ["npnet", "train", sys.argv[1], "--runs-dir", sys.argv[2]]
app()
"""


def full_disk_train(config_path, runs_dir, limit):
    script = FULL_DISK.format(limit=limit)
    tests = str(Path(__file__).parent)
    env = {**os.environ, "PYTHONPATH": tests, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-c", script, str(config_path), str(runs_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_a_full_disk_at_start_leaves_no_run_directory(write_config, tmp_path):
    done = full_disk_train(write_config(TINY), tmp_path / "runs", limit=100)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "config.yaml: cannot write" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_full_disk_during_training_fails_with_files_that_agree(write_config, tmp_path):
    # 5 kB holds config.yaml, metrics.csv and summary.json, not the weights or checkpoint.
    done = full_disk_train(write_config(TINY), tmp_path / "runs", limit=5000)
    assert done.returncode == 2, done.stderr
    assert (
        "Traceback" not in done.stderr
        and "weights.npz: cannot write (File too large)" in done.stderr
    )
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = runs.read_summary(run_dir)
    assert summary["status"] == "failed" and summary["epochs_completed"] == 0
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.yaml", "summary.json"]
    with pytest.raises(RunError, match=r"no checkpoint\.npz"):
        resume(run_dir)


def test_an_interrupted_checkpoint_zip_is_not_half_there(interrupted):
    with zipfile.ZipFile(interrupted / checkpoint.CHECKPOINT_FILE) as archive:
        assert "meta.npy" in archive.namelist()
    assert checkpoint.saved_epoch(interrupted) == 1
