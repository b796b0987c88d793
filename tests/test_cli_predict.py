"""`npnet predict` and `npnet export` end to end on a briefly trained MNIST CNN: real image
files, directories and arrays in; one line per bad input, exit code 2, nothing written
where it should not be."""

import json
import shutil
import sys

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import npnet.tools
from npnet.cli import app
from npnet.data.digits import prepare_digit, read_image
from npnet.data.mnist import load_mnist
from npnet.tools.predict import Predictor

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def mnist_test():
    _, _, x_test, y_test = load_mnist(None)
    return x_test.reshape(-1, 28, 28), y_test


def photo(digit: np.ndarray) -> Image.Image:
    """An MNIST digit as a photo: dark on light grey paper, 5 times larger, off-centre."""
    big = Image.fromarray(255 - digit).resize((140, 140), Image.Resampling.BILINEAR)
    canvas = np.full((300, 240), 255, np.uint8)
    canvas[10:150, 90:230] = np.asarray(big)
    return Image.fromarray((canvas * 0.85).astype(np.uint8)).convert("RGB")


@pytest.fixture
def good_inputs(tmp_path, mnist_test):
    """A JPEG photo, a PNG, a directory of two images, a .npy and a .npz: 8 images."""
    images, labels = mnist_test
    photo(images[0]).save(tmp_path / "seven.jpg", quality=85)
    Image.fromarray(255 - images[1]).save(tmp_path / "two.png")
    folder = tmp_path / "folder"
    folder.mkdir()
    photo(images[2]).save(folder / "a.png")
    photo(images[3]).save(folder / "b.bmp")
    (folder / "readme.txt").write_text("not an image, and not looked at: no image suffix")
    np.save(tmp_path / "arrays.npy", images[4:6])
    np.savez(tmp_path / "arrays.npz", first=images[6], rest=images[7:9] / 255.0)
    paths = ["seven.jpg", "two.png", "folder", "arrays.npy", "arrays.npz"]
    return [tmp_path / p for p in paths], labels[:9]


def test_predict_reads_photos_directories_and_arrays(cnn_run, good_inputs, mnist_test):
    paths, labels = good_inputs
    result = invoke("predict", cnn_run, *paths, "--json", "--top", "2")
    assert result.exit_code == 0, result.output
    answers = json.loads(result.stdout)
    assert [a["input"] for a in answers] == [
        str(paths[0]),
        str(paths[1]),
        str(paths[2] / "a.png"),
        str(paths[2] / "b.bmp"),
        f"{paths[3]}[0]",
        f"{paths[3]}[1]",
        f"{paths[4]}[first]",
        f"{paths[4]}[rest][0]",
        f"{paths[4]}[rest][1]",
    ]
    # The command's answers are the library's on the same images.
    images, _ = mnist_test
    expected_images = [
        prepare_digit(read_image(paths[0])),
        prepare_digit(read_image(paths[1])),
        prepare_digit(read_image(paths[2] / "a.png")),
        prepare_digit(read_image(paths[2] / "b.bmp")),
        *(images[4:9] / 255.0),
    ]
    p = Predictor(cnn_run).probabilities(np.stack(expected_images))
    assert [a["class"] for a in answers] == p.argmax(axis=1).tolist()
    for answer, row in zip(answers, p, strict=True):
        assert len(answer["top"]) == 2
        assert answer["top"][0]["class"] == answer["class"] and answer["name"] == str(
            answer["class"]
        )
        assert answer["top"][0]["probability"] >= answer["top"][1]["probability"]
        assert answer["top"][0]["probability"] == pytest.approx(float(row.max()), rel=1e-6)
    # A briefly trained network still reads most of them.
    assert sum(a["class"] == label for a, label in zip(answers, labels, strict=True)) >= 7


def test_predict_prints_a_table_and_resolves_latest(cnn_run, good_inputs):
    paths, _ = good_inputs
    result = invoke("predict", "latest", paths[0], "--runs-dir", cnn_run.parent)
    assert result.exit_code == 0, result.output
    for text in ("predictions", "seven.jpg", "predicted", "#1", "#2", "#3", "%"):
        assert text in result.stdout


def test_save_inputs_writes_the_images_the_network_saw(cnn_run, good_inputs, tmp_path):
    paths, _ = good_inputs
    saved = tmp_path / "saw"
    result = invoke("predict", cnn_run, paths[0], paths[3], "--save-inputs", saved)
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in saved.iterdir())
    assert files == ["000-seven.jpg.png", "001-arrays.npy_0.png", "002-arrays.npy_1.png"]
    written = np.asarray(Image.open(saved / files[0]))
    assert written.shape == (28, 28) and written.dtype == np.uint8
    expected = np.round(prepare_digit(read_image(paths[0])) * 255)
    np.testing.assert_array_equal(written, expected)


def test_each_bad_input_is_one_line_and_the_others_are_still_predicted(
    cnn_run, good_inputs, tmp_path
):
    paths, _ = good_inputs
    (tmp_path / "notes.png").write_text("a text file with an image's name")
    Image.fromarray(np.full((40, 30), 250, np.uint8)).save(tmp_path / "blank.png")
    whole = (tmp_path / "seven.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(whole[: len(whole) // 3])
    (tmp_path / "empty").mkdir()
    np.save(tmp_path / "wrong.npy", np.zeros((3, 5, 5), np.uint8))
    bad = {
        "notes.png": "not an image Pillow can read",
        "blank.png": "the image has no ink",
        "cut.jpg": "damaged or unreadable image",
        "empty": "no images in this directory",
        "missing.png": "no such file",
        "wrong.npy": "expected 28x28 images",
    }
    saved = tmp_path / "saw"
    result = invoke(
        "predict",
        cnn_run,
        paths[0],
        *(tmp_path / name for name in bad),
        "--json",
        "--save-inputs",
        saved,
    )
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == len(bad)
    for line, (name, message) in zip(lines, bad.items(), strict=True):
        assert line.startswith(f"error: {tmp_path / name}: ") and message in line, line
    assert "Traceback" not in result.output
    assert [a["input"] for a in json.loads(result.stdout)] == [str(paths[0])]
    assert [p.name for p in saved.iterdir()] == ["000-seven.jpg.png"]


def test_a_run_without_weights_is_one_line_and_writes_nothing(cnn_run, good_inputs, tmp_path):
    paths, _ = good_inputs
    broken = tmp_path / "broken-run"
    shutil.copytree(cnn_run, broken)
    (broken / "weights.npz").unlink()
    saved = tmp_path / "saw"
    result = invoke("predict", broken, paths[0], "--save-inputs", saved)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {broken}: no weights.npz; the run saved no epoch yet (train it, or resume it "
        "with `npnet train --resume`)\n"
    )
    assert not saved.exists()
    result = invoke("export", broken)
    assert result.exit_code == 2 and "no weights.npz" in result.stderr
    assert not (broken / "model.onnx").exists()
    result = invoke("predict", cnn_run, paths[0], "--top", "0")
    assert result.exit_code == 2 and result.stderr == "error: --top must be a positive int, got 0\n"


def test_export_writes_a_checked_onnx_model(cnn_run, tmp_path):
    onnx = pytest.importorskip("onnx")
    run = tmp_path / "run"
    shutil.copytree(cnn_run, run)
    result = invoke("export", run)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote {run / 'model.onnx'}\n"
    onnx.checker.check_model(onnx.load(str(run / "model.onnx")))
    result = invoke("export", run, "-o", tmp_path / "elsewhere.onnx", "--format", "onnx")
    assert result.exit_code == 0 and (tmp_path / "elsewhere.onnx").is_file()
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "tflite"], "error: --format must be onnx, got 'tflite'"),
        (["-o", "NOWHERE/model.onnx"], "error: NOWHERE/model.onnx: the directory NOWHERE does"),
        (["-o", "."], "error: .: is a directory; give the model's file name with -o"),
    ],
)
def test_export_refuses_bad_options_and_writes_nothing(cnn_run, tmp_path, args, message):
    args = [str(a).replace("NOWHERE", str(tmp_path / "nowhere")) for a in args]
    result = invoke("export", cnn_run, *args)
    assert result.exit_code == 2
    assert result.stderr.startswith(message.replace("NOWHERE", str(tmp_path / "nowhere")))
    assert not (cnn_run / "model.onnx").exists()


def test_export_without_the_extra_names_the_extra_to_install(cnn_run, monkeypatch):
    # As if onnx were not installed: importing it fails as a missing module does.
    monkeypatch.setitem(sys.modules, "onnx", None)
    monkeypatch.delitem(sys.modules, "npnet.tools.export", raising=False)
    monkeypatch.delattr(npnet.tools, "export", raising=False)
    result = invoke("export", cnn_run)
    assert result.exit_code == 2
    assert result.stderr == (
        "error: npnet export needs the onnx package: pip install 'npnet[export]' "
        "(make venv installs it)\n"
    )
