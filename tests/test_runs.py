"""Run-directory files: atomic writes, unique directories, safe loading."""

import numpy as np
import pytest

from npnet.engine import runs
from npnet.errors import RunError


def test_run_directories_are_never_reused(tmp_path):
    first = runs.create_run_dir(tmp_path, "cnn")
    second = runs.create_run_dir(tmp_path, "cnn")
    assert first != second
    assert first.name.endswith("-cnn")
    assert first.parent == second.parent == tmp_path


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text("old")

    def explode(file):
        file.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        runs.atomic_write(path, explode)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_arrays_round_trip_without_pickles(tmp_path):
    arrays = {"0.W": np.arange(6, dtype=np.float32).reshape(2, 3), "0.b": np.zeros(3, np.float32)}
    runs.save_arrays(tmp_path / "w.npz", arrays)
    loaded = runs.load_arrays(tmp_path / "w.npz")
    assert loaded.keys() == arrays.keys()
    np.testing.assert_array_equal(loaded["0.W"], arrays["0.W"])


def test_pickled_and_foreign_files_are_refused(tmp_path):
    np.savez(tmp_path / "evil.npz", obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(RunError, match="not a readable weights file"):
        runs.load_arrays(tmp_path / "evil.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(RunError, match="not a readable weights file"):
        runs.load_arrays(tmp_path / "text.npz")
    with pytest.raises(RunError, match="no such file"):
        runs.load_arrays(tmp_path / "absent.npz")


def test_metrics_round_trip(tmp_path):
    rows = [
        {
            "epoch": 1,
            "train_loss": 0.5,
            "train_accuracy": 0.9,
            "val_loss": None,
            "val_accuracy": None,
            "lr": 0.01,
            "seconds": 1.5,
        }
    ]
    runs.write_metrics(tmp_path, rows)
    assert runs.read_metrics(tmp_path) == [{**rows[0], "epoch": 1.0}]
