"""Fashion-MNIST and KMNIST: MNIST's reader and search order in their own folders, and the
verified download, from a local HTTP server serving small generated IDX files (one of them
corrupt), through to a short training with the class names in eval."""

import dataclasses
import functools
import gzip
import hashlib
import json
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_data_mnist import QuietHandler, fake_mnist, write_mnist
from typer.testing import CliRunner

from npnet.cli import app
from npnet.data import mnist, mnist_like
from npnet.data.mnist import FILES, download_idx, find_idx, load_idx
from npnet.data.mnist_like import FASHION_CLASSES, FASHION_MNIST, KMNIST, KMNIST_CLASSES
from npnet.errors import DataError
from npnet.registry import DATASETS

SOURCES = {"fashion_mnist": FASHION_MNIST, "kmnist": KMNIST}


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No test downloads by accident or touches the user's cache, NPNET_DATA or data/."""
    monkeypatch.setenv("NPNET_NO_DOWNLOAD", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("NPNET_DATA", raising=False)
    monkeypatch.setattr(mnist, "REPO_DATA", tmp_path / "repo-data")


def test_registered_with_their_class_names():
    assert {"fashion_mnist", "kmnist"} <= set(DATASETS.names())
    assert FASHION_CLASSES[0] == "T-shirt/top" and FASHION_CLASSES[9] == "Ankle boot"
    assert len(FASHION_CLASSES) == len(KMNIST_CLASSES) == 10
    for source in SOURCES.values():
        assert sorted(source.sha256) == sorted(FILES)
        assert all(len(digest) == 64 for digest in source.sha256.values())
        assert source.hash_download and not source.loose


@pytest.mark.parametrize("name", SOURCES)
def test_search_order_uses_the_sets_own_folder(name, tmp_path, monkeypatch):
    source = SOURCES[name]
    env = tmp_path / "env"
    write_mnist(env, n_train=4)  # MNIST's files directly in NPNET_DATA: not this set's
    write_mnist(env / source.folder, n_train=5)
    monkeypatch.setenv("NPNET_DATA", str(env))
    assert find_idx(source) == env / source.folder
    assert len(load_idx(source)[0]) == 5
    (env / source.folder / mnist.TEST_LABELS).unlink()
    with pytest.raises(DataError) as caught:
        find_idx(source)
    message = str(caught.value)
    assert message.startswith(f"{source.title} not found; looked in: ")
    assert f"NPNET_DATA: {env / source.folder} (missing t10k-labels-idx1-ubyte.gz)" in message
    assert f"data/{source.folder}/" in message
    # The explicit root may hold the files directly (the user points at the very folder).
    root = write_mnist(tmp_path / "mine", n_train=6)
    assert find_idx(source, root) == root


class Server:
    """A local HTTP server over `directory`, on 127.0.0.1 and a free port."""

    def __init__(self, directory: Path):
        handler = functools.partial(QuietHandler, directory=str(directory))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}
        )
        self.url = f"http://127.0.0.1:{self.server.server_port}/"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def hosts(tmp_path, monkeypatch):
    """good/ serves a small generated set (40 train, 10 test images), bad/ the same with a
    corrupted train-labels file. Yields (base URL, {name: SHA-256 of the .gz as served})."""
    for proxy in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    served = tmp_path / "served"
    files = {name: gzip.compress(raw, mtime=0) for name, raw in fake_mnist(40, 10).items()}
    for folder in ("good", "bad"):
        (served / folder).mkdir(parents=True)
        for name, payload in files.items():
            (served / folder / name).write_bytes(payload)
    corrupt = bytearray(gzip.decompress(files[mnist.TRAIN_LABELS]))
    corrupt[-1] ^= 1
    (served / "bad" / mnist.TRAIN_LABELS).write_bytes(gzip.compress(bytes(corrupt), mtime=0))
    checksums = {name: hashlib.sha256(payload).hexdigest() for name, payload in files.items()}
    with Server(served) as server:
        yield server.url, checksums


@pytest.mark.parametrize("name", SOURCES)
def test_download_is_verified_and_atomic(name, hosts, tmp_path):
    base, checksums = hosts
    source = SOURCES[name]
    destination = tmp_path / "dl"
    with pytest.raises(DataError) as caught:
        download_idx(
            source, destination, mirrors=[base + "bad/"], checksums=checksums, progress=False
        )
    assert f"bad/{mnist.TRAIN_LABELS}: SHA-256 mismatch: got " in str(caught.value)
    assert sorted(p.name for p in destination.iterdir()) == [mnist.TRAIN_IMAGES]  # no partial
    download_idx(
        source,
        destination,
        mirrors=[base + "missing/", base + "bad/", base + "good/"],
        checksums=checksums,
        progress=False,
    )
    assert sorted(p.name for p in destination.iterdir()) == sorted(FILES)
    assert (destination / mnist.TRAIN_LABELS).read_bytes() == (
        tmp_path / "served/good" / mnist.TRAIN_LABELS
    ).read_bytes()


def test_the_checksum_is_of_the_file_as_served(hosts, tmp_path):
    """Fashion-MNIST's and KMNIST's pinned checksums are of the .gz files: the same images
    compressed differently do not verify."""
    base, checksums = hosts
    recompressed = tmp_path / "served" / "recompressed"
    recompressed.mkdir()
    for name in FILES:
        raw = gzip.decompress((tmp_path / "served/good" / name).read_bytes())
        (recompressed / name).write_bytes(gzip.compress(raw, compresslevel=1, mtime=1))
    with pytest.raises(DataError, match="SHA-256 mismatch"):
        download_idx(
            FASHION_MNIST,
            tmp_path / "dl",
            mirrors=[base + "recompressed/"],
            checksums=checksums,
            progress=False,
        )


@pytest.mark.parametrize(
    ("name", "classes"), [("fashion_mnist", FASHION_CLASSES), ("kmnist", KMNIST_CLASSES)]
)
def test_train_downloads_once_into_the_cache_and_eval_names_the_classes(
    name, classes, hosts, tmp_path, monkeypatch
):
    base, checksums = hosts
    attribute = {"fashion_mnist": "FASHION_MNIST", "kmnist": "KMNIST"}[name]
    local = dataclasses.replace(SOURCES[name], mirrors=(base + "good/",), sha256=checksums)
    monkeypatch.setattr(mnist_like, attribute, local)
    monkeypatch.delenv("NPNET_NO_DOWNLOAD")
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "data": {"dataset": name, "validation": 8, "normalize": "standard"},
                "model": {
                    "input_shape": [1, 28, 28],
                    "layers": ["flatten", {"dense": {"units": 10}}],
                },
                "train": {"epochs": 1, "batch_size": 16},
            }
        )
    )
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(config), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    cache = tmp_path / "xdg-cache" / "npnet" / SOURCES[name].folder
    assert sorted(p.name for p in cache.iterdir()) == sorted(FILES)
    (run_dir,) = (tmp_path / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["train_examples"] == 32
    # The cache now holds the files: eval finds them with the server's mirror gone.
    monkeypatch.setattr(mnist_like, attribute, dataclasses.replace(local, mirrors=()))
    result = runner.invoke(app, ["eval", str(run_dir), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["class_names"] == classes and report["samples"] == 10
    assert len(report["confusion_matrix"]) == 10


def test_a_failed_download_is_one_line_with_exit_2(hosts, tmp_path, monkeypatch):
    base, checksums = hosts
    bad = dataclasses.replace(KMNIST, mirrors=(base + "bad/",), sha256=checksums)
    monkeypatch.setattr(mnist_like, "KMNIST", bad)
    monkeypatch.delenv("NPNET_NO_DOWNLOAD")
    config = tmp_path / "c.yaml"
    config.write_text(
        "name: k\ndata: {dataset: kmnist}\nmodel: {layers: [flatten, {dense: {units: 10}}]}\n"
    )
    result = CliRunner().invoke(app, ["check", str(config)])
    assert result.exit_code == 2
    # The progress display reports each failed mirror as it happens; then the one error line.
    line = result.stderr.split("error: ")[-1]
    assert line.startswith("KMNIST not found; looked in: ") and line.count("\n") == 1
    assert "SHA-256 mismatch" in line
    cache = tmp_path / "xdg-cache" / "npnet" / "kmnist"
    assert mnist.TRAIN_LABELS not in {p.name for p in cache.iterdir()}
    assert np.all([not p.name.endswith(".part") for p in cache.iterdir()])
