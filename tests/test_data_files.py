"""Your own data: npz, csv and image folders the tests write; shapes, class names, the seeded
test split, short real trainings through the CLI, and every bad-data case as one line with
exit code 2."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from npnet.cli import app
from npnet.data.dataset import load_dataset
from npnet.errors import ConfigError, DataError
from npnet.registry import DATASETS

runner = CliRunner()
CLASSES = 3


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Wide enough that no table cell or error line is wrapped."""
    monkeypatch.setenv("COLUMNS", "250")


def features(n=60, seed=0):
    """x (n, 4) float64 around one center per class, y (n,) int64 with every class."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % CLASSES
    centers = np.array([[3, 0, 0, 1], [0, 3, 0, 1], [0, 0, 3, 1]], dtype=np.float64)
    return centers[y] + 0.3 * rng.standard_normal((n, 4)), y


def images(n=45, seed=0, shape=(8, 8)):
    """x (n, H, W) uint8: class 0 bright on top, 1 on the left, 2 on the diagonal."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % CLASSES
    patterns = np.zeros((CLASSES, *shape))
    patterns[0, : shape[0] // 2] = 1
    patterns[1, :, : shape[1] // 2] = 1
    patterns[2][np.eye(*shape, dtype=bool)] = 1
    x = 200 * patterns[y] + rng.uniform(0, 55, (n, *shape))
    return x.astype(np.uint8), y


def write_csv(path, rows, header=("a", "b", "c", "d", "label")):
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def table_rows(n=60, seed=0):
    x, y = features(n, seed)
    return [[*(f"{v:.4f}" for v in row), int(label)] for row, label in zip(x, y, strict=True)]


def write_image_folder(root, names=("owl", "cat", "dog"), per_class=8, channels=1, seed=0):
    """PNGs of 10x12 pixels (resized to 8x8 on reading) under root/<name>/."""
    rng = np.random.default_rng(seed)
    for index, name in enumerate(names):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            grey = rng.uniform(0, 60, (10, 12))
            grey[:, 4 * index : 4 * index + 4] += 190  # a bright band per class
            pixels = grey.astype(np.uint8)
            if channels == 3:
                pixels = np.stack([pixels, pixels[::-1], pixels[:, ::-1]], axis=-1)
            Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return root


def config_text(data, layers=None, epochs=2):
    return yaml.safe_dump(
        {
            "name": "own",
            "data": {"validation": 0, "normalize": "standard", **data},
            "model": {"layers": layers or ["flatten", {"dense": {"units": CLASSES}}]},
            "optimizer": {"name": "adam", "lr": 0.05},
            "train": {"epochs": epochs, "batch_size": 16},
        }
    )


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def train(tmp_path, data, layers=None):
    path = tmp_path / "own.yaml"
    path.write_text(config_text(data, layers))
    result = invoke("train", path, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip().splitlines()[-1].removeprefix("run saved to "))


def rows_of(x):
    return sorted(map(tuple, np.asarray(x).reshape(len(x), -1).tolist()))


# ---- npz -------------------------------------------------------------------------------------


def test_npz_features_with_a_seeded_test_split(tmp_path):
    x, y = features()
    np.savez(tmp_path / "f.npz", feats=x, labels=y)
    options = {"path": str(tmp_path / "f.npz"), "x": "feats", "y": "labels"}
    splits = DATASETS.build("npz", options)
    assert splits.x_train.shape == (48, 4) and splits.x_test.shape == (12, 4)
    assert splits.num_classes == 3 and splits.image_max is None
    assert rows_of(np.concatenate([splits.x_train, splits.x_test])) == rows_of(x)
    again = DATASETS.build("npz", options)
    np.testing.assert_array_equal(again.x_test, splits.x_test)
    other = DATASETS.build("npz", {**options, "seed": 1, "test_fraction": 0.5})
    assert len(other.x_test) == 30 and rows_of(other.x_test) != rows_of(splits.x_test)
    ds = load_dataset("npz", options, validation=8, normalize="standard")
    assert ds.input_shape == (4,) and ds.class_names == ["0", "1", "2"]
    assert ds.x_train.shape == (40, 4) and ds.x_val.shape == (8, 4)
    np.testing.assert_allclose(ds.x_train.mean(axis=0), 0, atol=1e-5)


def test_npz_images_with_test_arrays_and_class_names_in_the_file(tmp_path):
    x, y = images()
    x_test, y_test = images(9, seed=1)
    names = np.array(["top", "left", "diagonal"])
    np.savez(tmp_path / "i.npz", x=x, y=y, xt=x_test, yt=y_test, class_names=names)
    options = {"path": str(tmp_path / "i.npz"), "x_test": "xt", "y_test": "yt"}
    ds = load_dataset("npz", options, normalize="standard")
    assert ds.input_shape == (1, 8, 8) and ds.num_classes == 3
    assert ds.class_names == ["top", "left", "diagonal"]
    np.testing.assert_array_equal(ds.y_test, y_test)
    # uint8 images are scaled by 255 (one scalar statistic, as for MNIST)
    assert ds.normalization["method"] == "standard" and isinstance(ds.normalization["mean"], float)
    ds = load_dataset("npz", {"path": str(tmp_path / "i.npz"), "class_names": ["a", "b", "c"]})
    assert ds.class_names == ["a", "b", "c"] and len(ds.x_test) == 9


def test_npz_test_path_and_channels(tmp_path):
    x, y = images()
    rgb = np.repeat(x[:, None], 3, axis=1).astype(np.float32) / 255
    np.savez(tmp_path / "train.npz", x=rgb, y=y.astype(np.float64))  # whole floats are fine
    np.savez(tmp_path / "test.npz", x=rgb[:6], y=y[:6])
    splits = DATASETS.build(
        "npz", {"path": str(tmp_path / "train.npz"), "test_path": str(tmp_path / "test.npz")}
    )
    assert splits.x_train.shape == (45, 3, 8, 8) and splits.x_test.shape == (6, 3, 8, 8)
    assert splits.y_train.dtype == np.int64
    assert splits.image_max == pytest.approx(float(rgb.max()))


def test_training_on_an_npz_file(tmp_path):
    x, y = features(90)
    np.savez(tmp_path / "f.npz", x=x, y=y)
    run_dir = train(tmp_path, {"dataset": "npz", "path": str(tmp_path / "f.npz")})
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["train_examples"] == 72
    assert summary["test_accuracy"] > 0.9  # three well-separated clusters
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["data"]["dataset"] == "npz" and saved["data"]["path"] == str(tmp_path / "f.npz")


# ---- csv -------------------------------------------------------------------------------------


def test_csv_features_labels_and_test_path(tmp_path):
    train_file = write_csv(tmp_path / "train.csv", table_rows(60))
    with train_file.open("a") as file:
        file.write("\n\n")  # trailing blank lines are skipped
    test_file = write_csv(tmp_path / "test.csv", table_rows(15, seed=1))
    splits = DATASETS.build(
        "csv",
        {
            "path": str(train_file),
            "label": "label",
            "test_path": str(test_file),
            "class_names": ["x", "y", "z"],
        },
    )
    assert splits.x_train.shape == (60, 4) and splits.x_test.shape == (15, 4)
    assert splits.x_train.dtype == np.float32 and splits.y_train.dtype == np.int64
    assert splits.info["features"] == ["a", "b", "c", "d"] and splits.class_names == ["x", "y", "z"]
    np.testing.assert_allclose(splits.x_train, features(60)[0], atol=1e-4)
    drawn = DATASETS.build("csv", {"path": str(train_file), "label": "label"})
    assert len(drawn.x_train) == 48 and len(drawn.x_test) == 12


def test_csv_label_column_anywhere(tmp_path):
    rows = [[row[-1], *row[:-1]] for row in table_rows(30)]
    path = write_csv(tmp_path / "t.csv", rows, header=("kind", "a", "b", "c", "d"))
    splits = DATASETS.build("csv", {"path": str(path), "label": "kind", "test_fraction": 0.1})
    np.testing.assert_array_equal(
        np.sort(np.concatenate([splits.y_train, splits.y_test])), np.sort(features(30)[1])
    )


def test_training_on_a_csv_file_and_data_shows_the_class_names(tmp_path):
    path = write_csv(tmp_path / "t.csv", table_rows(90))
    data = {
        "dataset": "csv",
        "path": str(path),
        "label": "label",
        "class_names": ["ant", "bee", "cow"],
    }
    run_dir = train(tmp_path, data, layers=[{"dense": {"units": 3}}])
    assert json.loads((run_dir / "summary.json").read_text())["test_accuracy"] > 0.9
    result = invoke("eval", run_dir, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["class_names"] == ["ant", "bee", "cow"]
    shown = invoke("eval", run_dir)
    assert "1 bee" in shown.stdout
    described = invoke("data", tmp_path / "own.yaml")
    assert described.exit_code == 0, described.output
    assert "ant" in described.stdout and "cow" in described.stdout


# ---- image folders ---------------------------------------------------------------------------


def test_image_folder_class_names_sorted_and_resized(tmp_path):
    root = write_image_folder(tmp_path / "pics")
    splits = DATASETS.build("image_folder", {"path": str(root), "size": [8, 8]})
    assert splits.class_names == ["cat", "dog", "owl"]  # sorted folder names
    assert splits.num_classes == 3 and splits.image_max == 255.0
    assert splits.x_train.shape == (19, 1, 8, 8) and splits.x_test.shape == (5, 1, 8, 8)
    assert splits.x_train.dtype == np.uint8
    # owl (written first) is class 2 now: its band is in the first columns
    owl = np.concatenate([splits.x_train[splits.y_train == 2], splits.x_test[splits.y_test == 2]])
    assert len(owl) == 8 and owl[:, 0, :, :2].mean() > 150 > owl[:, 0, :, 6:].mean()
    again = DATASETS.build("image_folder", {"path": str(root), "size": [8, 8]})
    np.testing.assert_array_equal(again.x_test, splits.x_test)
    rgb = DATASETS.build("image_folder", {"path": str(root), "size": [6, 5], "channels": 3})
    assert rgb.x_train.shape == (19, 3, 6, 5)


def test_image_folder_train_and_test_trees(tmp_path):
    write_image_folder(tmp_path / "pics" / "train", per_class=6)
    write_image_folder(tmp_path / "pics" / "test", per_class=2, seed=1)
    ds = load_dataset("image_folder", {"path": str(tmp_path / "pics"), "size": [8, 8]})
    assert (len(ds.x_train), len(ds.x_test)) == (18, 6)
    assert ds.class_names == ["cat", "dog", "owl"]
    np.testing.assert_array_equal(ds.y_test, [0, 0, 1, 1, 2, 2])


def test_training_on_an_image_folder_and_its_figures(tmp_path):
    root = write_image_folder(tmp_path / "pics", per_class=20, channels=3)
    data = {"dataset": "image_folder", "path": str(root), "size": [8, 8], "channels": 3}
    run_dir = train(tmp_path, data)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["train_examples"] == 48
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "checkpoint.npz",
        "config.yaml",
        "metrics.csv",
        "summary.json",
        "weights.npz",
    ]
    pytest.importorskip("matplotlib")
    result = invoke("plot", run_dir)
    assert result.exit_code == 0, result.output
    assert (run_dir / "confusion_matrix.png").is_file() and (
        run_dir / "misclassified.png"
    ).is_file()


def test_figures_carry_the_class_names():
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from npnet.cli.plots import confusion_figure, misclassified_figure

    matrix = np.array([[3, 1, 0], [0, 4, 0], [1, 0, 2]])
    figure = confusion_figure(Figure, matrix, "run", ["cat", "dog", "owl"])
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "owl"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog", "owl"]
    x = np.random.default_rng(0).uniform(size=(3, 3, 4, 4)).astype(np.float32)
    outputs = np.array([[0.0, 5.0, 0.0], [9.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    figure = misclassified_figure(Figure, x, np.array([0, 1, 2]), outputs, "run", ["a", "b", "c"])
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert titles == ["true b / pred a (100%)", "true a / pred b (99%)"]


# ---- bad data: one line, exit 2, the file and what is wrong ------------------------------------


def bad_npz(tmp_path, **arrays):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return {"dataset": "npz", "path": str(path)}


def bad_csv(tmp_path, text):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    return {"dataset": "csv", "path": str(path), "label": "label"}


def bad_folder(tmp_path, damage):
    root = write_image_folder(tmp_path / "pics", per_class=3)
    damage(root)
    return {"dataset": "image_folder", "path": str(root), "size": [8, 8]}


X, Y = features(20)
BAD = {
    "npz missing file": (
        lambda t: {"dataset": "npz", "path": str(t / "none.npz")},
        "T/none.npz: no such file",
    ),
    "npz not a zip": (
        lambda t: (
            (t / "bad.npz").write_text("hello") and {"dataset": "npz", "path": str(t / "bad.npz")}
        ),
        "T/bad.npz: not a readable .npz file of plain arrays (",
    ),
    "npz missing key": (
        lambda t: bad_npz(t, inputs=X, y=Y),
        "T/bad.npz: no array 'x' (it holds: inputs, y)",
    ),
    "npz mismatched lengths": (
        lambda t: bad_npz(t, x=X, y=Y[:-3]),
        "T/bad.npz: 'x' has 20 samples but 'y' has 17 labels",
    ),
    "npz fractional labels": (
        lambda t: bad_npz(t, x=X, y=np.where(Y == 2, 1.5, Y)),
        "T/bad.npz: 'y': labels must be integers 0..C-1, found 1.5",
    ),
    "npz string labels": (
        lambda t: bad_npz(t, x=X, y=np.array(["a", "b"] * 10)),
        "T/bad.npz: 'y': labels must be integers 0..C-1, found <U1 values 'a', 'b'",
    ),
    "npz labels with a gap": (
        lambda t: bad_npz(t, x=X, y=np.where(Y == 2, 3, Y)),
        "T/bad.npz: labels must be the integers 0..C-1 with every class present, "
        "found 0, 1, 3 (no 2)",
    ),
    "npz negative labels": (
        lambda t: bad_npz(t, x=X, y=Y - 1),
        "T/bad.npz: labels must be the integers 0..C-1 with every class present, found -1, 0, 1",
    ),
    "npz more classes than names": (
        lambda t: {**bad_npz(t, x=X, y=Y), "class_names": ["a", "b"]},
        "T/bad.npz: labels must be the integers 0..1 (2 class_names), found 2",
    ),
    "npz NaN features": (
        lambda t: bad_npz(t, x=np.where(np.arange(80).reshape(20, 4) == 29, np.nan, X), y=Y),
        "T/bad.npz: x has 1 NaN or infinite values (the first in sample 7); remove or fill them",
    ),
    "npz 5-d inputs": (
        lambda t: bad_npz(t, x=np.zeros((20, 1, 1, 2, 2)), y=Y),
        "T/bad.npz: x must be (N, D) features, (N, H, W) or (N, C, H, W) images with N > 0, "
        "got shape (20, 1, 1, 2, 2)",
    ),
    "csv missing column": (
        lambda t: {**bad_csv(t, "a,b,class\n1,2,0\n"), "label": "labl"},
        "T/bad.csv: no column 'labl' (columns: a, b, class)",
    ),
    "csv no header": (
        lambda t: bad_csv(t, "1,2,0\n3,4,1\n"),
        "T/bad.csv: line 1 must be a header row naming the columns, got numbers: 1, 2, 0",
    ),
    "csv non-numeric cell": (
        lambda t: bad_csv(t, "a,b,label\n1,2,0\n3,four,1\n"),
        "T/bad.csv: line 3, column 'b': 'four' is not a number",
    ),
    "csv non-integer label": (
        lambda t: bad_csv(t, "a,b,label\n1,2,0\n3,4,one\n"),
        "T/bad.csv: line 3, column 'label': 'one' is not an integer label 0..C-1",
    ),
    "csv fractional label": (
        lambda t: bad_csv(t, "a,b,label\n1,2,0\n3,4,0.5\n"),
        "T/bad.csv: column 'label': labels must be integers 0..C-1, found 0.5",
    ),
    "csv NaN feature": (
        lambda t: bad_csv(t, "a,b,label\n1,2,0\n3,nan,1\n"),
        "T/bad.csv: line 3, column 'b': 'nan' is not a finite number",
    ),
    "csv short row": (
        lambda t: bad_csv(t, "a,b,label\n1,2,0\n3,1\n"),
        "T/bad.csv: line 3 has 2 cells, the header has 3",
    ),
    "csv labels not 0..C-1": (
        lambda t: bad_csv(t, "a,b,label\n" + "".join(f"{i},1,{i % 2 + 1}\n" for i in range(10))),
        "T/bad.csv: labels must be the integers 0..C-1 with every class present, found 1, 2 (no 0)",
    ),
    "empty class folder": (
        lambda t: bad_folder(t, lambda root: (root / "emu").mkdir()),
        "T/pics/emu: the class folder 'emu' holds no images (.png, .jpg, .jpeg, .bmp, .gif, "
        ".webp, .tif, .tiff)",
    ),
    "unreadable image": (
        lambda t: bad_folder(t, lambda root: (root / "cat" / "broken.png").write_bytes(b"no png")),
        "T/pics/cat/broken.png: cannot read the image (cannot identify image file ",
    ),
    "truncated image": (
        lambda t: bad_folder(
            t,
            lambda root: (root / "dog" / "cut.png").write_bytes(
                (root / "dog" / "000.png").read_bytes()[:60]
            ),
        ),
        "T/pics/dog/cut.png: cannot read the image (",
    ),
    "train without test": (
        lambda t: {
            "dataset": "image_folder",
            "path": str(write_image_folder(t / "pics" / "train").parent),
            "size": [8, 8],
        },
        "T/pics: has train/ but no test/; give both, or put the class folders directly in it",
    ),
    "not a directory": (
        lambda t: {"dataset": "image_folder", "path": str(t / "none"), "size": [8, 8]},
        "T/none: no such directory (expected one sub-folder of images per class)",
    ),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_data_is_one_line_naming_the_file(tmp_path, case):
    make, expected = BAD[case]
    config = tmp_path / "own.yaml"
    config.write_text(config_text(make(tmp_path)))
    result = invoke("check", config)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    line = result.stderr.removeprefix("error: ")
    assert line.count("\n") == 1 and line.endswith("\n")
    assert line.startswith(expected.replace("T/", f"{tmp_path}/")), line


@pytest.mark.parametrize(
    ("dataset", "options", "message"),
    [
        ("npz", {"path": 3}, "'path' must be a file path, got 3"),
        ("npz", {"path": "f.npz", "x_test": "a"}, "give both 'x_test' and 'y_test'"),
        ("npz", {"path": "f.npz", "test_fraction": 1.0}, r"'test_fraction' must be in \(0, 1\)"),
        ("npz", {"path": "f.npz", "class_names": "ab"}, "'class_names' must be a list of names"),
        ("csv", {"path": "f.csv", "label": 2}, "'label' must be the name of the label column"),
        ("image_folder", {"path": "d", "size": 8}, r"'size' must be \[height, width\]"),
        ("image_folder", {"path": "d", "size": [8, 0]}, "'size' must be a positive int, got 0"),
        ("image_folder", {"path": "d", "size": [8, 8], "channels": 2}, "'channels' must be 1"),
    ],
)
def test_bad_options_are_config_errors(dataset, options, message):
    with pytest.raises(ConfigError, match=message):
        DATASETS.build(dataset, options)


def test_a_tiny_split_that_leaves_nothing_is_refused(tmp_path):
    np.savez(tmp_path / "f.npz", x=X[:3], y=Y[:3])
    with pytest.raises(DataError, match=r"test_fraction 0\.1 of 3 samples leaves 0 for testing"):
        DATASETS.build("npz", {"path": str(tmp_path / "f.npz"), "test_fraction": 0.1})


def test_output_units_are_checked_against_the_classes(tmp_path):
    """A 10-unit output on 3 classes: a config error naming both numbers."""
    x, y = features()
    np.savez(tmp_path / "f.npz", x=x, y=y)
    config = tmp_path / "own.yaml"
    config.write_text(
        config_text({"dataset": "npz", "path": str(tmp_path / "f.npz")}, [{"dense": {"units": 10}}])
    )
    result = invoke("check", config)
    assert result.exit_code == 2
    assert "10" in result.stderr and "3" in result.stderr


def test_a_dataset_option_error_names_the_config(tmp_path):
    config = tmp_path / "own.yaml"
    config.write_text(config_text({"dataset": "npz"}))
    result = invoke("check", config)
    assert result.exit_code == 2
    assert (
        result.stderr == f"error: {config}: data: missing required key 'path' for dataset 'npz'\n"
    )
