"""MNIST: the committed files, the search order, and downloads from a local HTTP server."""

import functools
import gzip
import hashlib
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from npnet.data import mnist
from npnet.data.dataset import load_dataset
from npnet.data.idx import encode_idx
from npnet.data.mnist import FILES, SHA256, download_mnist, find_mnist, load_mnist
from npnet.errors import ConfigError, DataError

REPO_MNIST = Path(__file__).resolve().parents[1] / "data" / "mnist"
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No test downloads by accident or touches the user's cache or NPNET_DATA."""
    monkeypatch.setenv("NPNET_NO_DOWNLOAD", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("NPNET_DATA", raising=False)


def fake_mnist(n_train=3, n_test=2, seed=0):
    """{file name: uncompressed IDX bytes} of a tiny MNIST with random pixels and labels."""
    rng = np.random.default_rng(seed)
    arrays = {
        mnist.TRAIN_IMAGES: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        mnist.TRAIN_LABELS: rng.integers(0, 10, n_train, dtype=np.uint8),
        mnist.TEST_IMAGES: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        mnist.TEST_LABELS: rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    return {name: encode_idx(array) for name, array in arrays.items()}


def write_mnist(directory, n_train=3, files=FILES, gunzipped=False):
    directory.mkdir(parents=True, exist_ok=True)
    for name, raw in fake_mnist(n_train).items():
        if name in files:
            if gunzipped:
                (directory / name.removesuffix(".gz")).write_bytes(raw)
            else:
                (directory / name).write_bytes(gzip.compress(raw))
    return directory


# ---- the committed files -------------------------------------------------------------------


def test_checksums_are_the_published_ones():
    assert SHA256[mnist.TRAIN_LABELS] == (
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
    )
    assert set(SHA256) == set(FILES)


@pytest.mark.parametrize("name", FILES)
def test_committed_files_match_their_checksums(name):
    raw = gzip.decompress((REPO_MNIST / name).read_bytes())
    assert hashlib.sha256(raw).hexdigest() == SHA256[name]


def test_real_mnist_loads_with_the_right_shapes_and_labels():
    x_train, y_train, x_test, y_test = load_mnist(REPO_MNIST.parent)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert np.bincount(y_train).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test).tolist() == TEST_COUNTS
    assert (y_train[0], y_test[0]) == (5, 7)
    assert x_train.max() == 255 and x_train.min() == 0


def test_decoded_once_per_process_and_read_only():
    first = load_mnist(REPO_MNIST)
    assert load_mnist(REPO_MNIST.parent) is first
    assert not first[0].flags.writeable


def test_load_dataset_mnist_standardized_with_a_validation_split():
    ds = load_dataset("mnist", {"root": str(REPO_MNIST)}, validation=10000, normalize="standard")
    assert ds.x_train.shape == (50000, 1, 28, 28) and ds.x_val.shape == (10000, 1, 28, 28)
    assert ds.x_test.shape == (10000, 1, 28, 28) and ds.input_shape == (1, 28, 28)
    assert ds.x_train.dtype == np.float32 and ds.x_train.flags.c_contiguous
    assert ds.y_train.dtype == np.int64 and ds.num_classes == 10
    # The famous MNIST statistics, measured here on the 50,000 training images only.
    assert ds.normalization["mean"] == pytest.approx(0.1307, abs=1e-3)
    assert ds.normalization["std"] == pytest.approx(0.3081, abs=1e-3)
    assert abs(ds.x_train.mean(dtype=np.float64)) < 1e-5
    assert ds.x_train.std(dtype=np.float64) == pytest.approx(1.0, abs=1e-5)


def test_mnist_root_option_is_checked():
    with pytest.raises(ConfigError, match="'root' must be a directory path or null, got 5"):
        load_dataset("mnist", {"root": 5})


# ---- the search order ----------------------------------------------------------------------


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Four candidate places, each with a distinguishable tiny MNIST (3, 4, 5, 6 training
    images), wired to explicit root, NPNET_DATA, repository data and the user cache."""
    paths = {
        "root": write_mnist(tmp_path / "root" / "mnist", n_train=3).parent,
        "env": write_mnist(tmp_path / "env", n_train=4),
        "repo": write_mnist(tmp_path / "repo" / "mnist", n_train=5).parent,
        "cache": write_mnist(tmp_path / "xdg-cache" / "npnet" / "mnist", n_train=6).parent,
    }
    monkeypatch.setenv("NPNET_DATA", str(paths["env"]))
    monkeypatch.setattr(mnist, "REPO_DATA", paths["repo"])
    return paths


def test_search_order(places, monkeypatch):
    assert find_mnist(places["root"]) == places["root"] / "mnist"
    assert len(load_mnist(places["root"])[1]) == 3
    assert find_mnist() == places["env"]  # files directly in the folder, no mnist/
    monkeypatch.delenv("NPNET_DATA")
    assert find_mnist() == places["repo"] / "mnist"
    monkeypatch.setattr(mnist, "REPO_DATA", places["repo"] / "elsewhere")
    assert find_mnist() == places["cache"] / "mnist"
    assert len(load_mnist()[1]) == 6


def test_an_incomplete_place_is_skipped(places):
    (places["root"] / "mnist" / mnist.TEST_LABELS).unlink()
    assert find_mnist(places["root"]) == places["env"]


def test_gunzipped_files_are_found(tmp_path):
    write_mnist(tmp_path / "plain", n_train=7, gunzipped=True)
    assert len(load_mnist(tmp_path / "plain")[0]) == 7


def test_error_lists_every_place_and_the_fix(tmp_path, monkeypatch):
    partial = write_mnist(tmp_path / "partial", files=FILES[:3])
    monkeypatch.setenv("NPNET_DATA", str(partial))
    monkeypatch.setattr(mnist, "REPO_DATA", tmp_path / "empty-repo")
    (tmp_path / "empty-repo").mkdir()
    with pytest.raises(DataError) as caught:
        find_mnist(tmp_path / "no-such-dir")
    message = str(caught.value)
    assert "\n" not in message  # one line: the CLI prints it as one red line
    assert message.startswith("MNIST not found; looked in: ")
    places, fix = message.removeprefix("MNIST not found; looked in: ").split(". Fix: ")
    places = places.split("; ")
    assert places[0] == f"data.root / --data-dir: {tmp_path / 'no-such-dir'} (not a directory)"
    assert places[1] == f"NPNET_DATA: {partial} (missing t10k-labels-idx1-ubyte.gz)"
    assert places[2].startswith("repository data: ")
    assert "(missing train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz" in places[2]
    cache = tmp_path / "xdg-cache" / "npnet"
    assert places[3] == f"user cache: {cache} (not a directory)"
    assert places[4] == "download: turned off by NPNET_NO_DOWNLOAD"
    assert "data/mnist/" in fix and "NPNET_DATA" in fix


def test_unset_places_are_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "REPO_DATA", tmp_path / "none")
    with pytest.raises(DataError, match=r"data.root / --data-dir: not set; NPNET_DATA: not set"):
        find_mnist()


def test_wrong_shaped_files_are_rejected(tmp_path):
    directory = write_mnist(tmp_path / "odd")
    (directory / mnist.TEST_IMAGES).write_bytes(encode_idx(np.zeros((2, 8, 8), np.uint8)))
    with pytest.raises(DataError, match=r"expected uint8 images of shape \(N, 28, 28\)"):
        load_mnist(directory)


def test_labels_must_match_the_images(tmp_path):
    directory = write_mnist(tmp_path / "odd")
    (directory / mnist.TRAIN_LABELS).write_bytes(encode_idx(np.zeros(5, np.uint8)))
    with pytest.raises(DataError, match=r"expected 3 uint8 labels .* got uint8 \(5,\)"):
        load_mnist(directory)


# ---- downloads -----------------------------------------------------------------------------


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local HTTP server over tmp_path/served: good/ has a tiny MNIST, bad/ the same with
    a corrupted train-labels file, anything else is a 404. Yields (base URL, checksums)."""
    for proxy in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    files = fake_mnist(n_train=5)
    served = tmp_path / "served"
    for folder in ("good", "bad"):
        (served / folder).mkdir(parents=True)
        for name, raw in files.items():
            (served / folder / name).write_bytes(gzip.compress(raw))
    corrupt = bytearray(files[mnist.TRAIN_LABELS])
    corrupt[-1] ^= 1
    (served / "bad" / mnist.TRAIN_LABELS).write_bytes(gzip.compress(bytes(corrupt)))

    handler = functools.partial(QuietHandler, directory=str(served))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        checksums = {name: hashlib.sha256(raw).hexdigest() for name, raw in files.items()}
        yield f"http://127.0.0.1:{server.server_port}/", checksums
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name not in FILES)


def test_download_writes_verified_files(mirror, tmp_path):
    base, checksums = mirror
    destination = tmp_path / "dl"
    assert (
        download_mnist(
            destination, mirrors=[base + "good/"], checksums=checksums, timeout=5, progress=False
        )
        == destination
    )
    for name in FILES:
        assert (destination / name).read_bytes() == (tmp_path / "served/good" / name).read_bytes()
    assert leftovers(destination) == []
    assert len(load_mnist(destination)[0]) == 5


def test_corrupted_download_never_lands(mirror, tmp_path):
    base, checksums = mirror
    destination = tmp_path / "dl"
    with pytest.raises(DataError) as caught:
        download_mnist(
            destination, mirrors=[base + "bad/"], checksums=checksums, timeout=5, progress=False
        )
    message = str(caught.value)
    assert message.startswith(f"could not download {mnist.TRAIN_LABELS}: ")
    assert f"bad/{mnist.TRAIN_LABELS}: SHA-256 mismatch: got " in message
    assert f"expected {checksums[mnist.TRAIN_LABELS]}" in message
    # train-images came first and verified; the bad labels file and any temporary are gone.
    assert sorted(p.name for p in destination.iterdir()) == [mnist.TRAIN_IMAGES]


def test_a_404_mirror_is_followed_by_the_next(mirror, tmp_path):
    base, checksums = mirror
    destination = tmp_path / "dl"
    download_mnist(
        destination,
        mirrors=[base + "missing/", base + "bad/", base + "good/"],
        checksums=checksums,
        timeout=5,
        progress=False,
    )
    assert sorted(p.name for p in destination.iterdir()) == sorted(FILES)


def test_every_mirror_failing_is_reported(mirror, tmp_path):
    base, checksums = mirror
    with pytest.raises(DataError, match=r"HTTP 404 File not found; .*bad/.* SHA-256 mismatch"):
        download_mnist(
            tmp_path / "dl",
            mirrors=[base + "missing/", base + "bad/"],
            checksums=checksums,
            timeout=5,
            progress=False,
        )


def test_find_downloads_into_the_cache_when_allowed(mirror, tmp_path, monkeypatch):
    base, checksums = mirror
    monkeypatch.delenv("NPNET_NO_DOWNLOAD")
    monkeypatch.setattr(mnist, "REPO_DATA", tmp_path / "none")
    found = find_mnist(mirrors=[base + "good/"], checksums=checksums)
    assert found == tmp_path / "xdg-cache" / "npnet" / "mnist"
    assert sorted(p.name for p in found.iterdir()) == sorted(FILES)
    # Now the cache holds the files, so the next search finds them without a server.
    assert find_mnist(mirrors=[], checksums=checksums) == found


def test_failed_download_is_part_of_the_not_found_error(mirror, tmp_path, monkeypatch):
    base, checksums = mirror
    monkeypatch.delenv("NPNET_NO_DOWNLOAD")
    monkeypatch.setattr(mnist, "REPO_DATA", tmp_path / "none")
    with pytest.raises(DataError, match=r"; download into .*: could not download .*HTTP 404"):
        find_mnist(mirrors=[base + "missing/"], checksums=checksums)


def test_a_download_larger_than_any_mnist_file_is_cut_off(mirror, tmp_path, monkeypatch):
    # The served train images are a few hundred bytes; a 100-byte cap stands in for 64 MiB.
    base, checksums = mirror
    monkeypatch.setattr(mnist, "MAX_FILE_BYTES", 100)
    destination = tmp_path / "dl"
    with pytest.raises(DataError, match=r"over the 100-byte limit|more than 100 bytes"):
        download_mnist(
            destination, mirrors=[base + "good/"], checksums=checksums, timeout=5, progress=False
        )
    assert not any(p.name.startswith(mnist.TRAIN_IMAGES) for p in destination.iterdir())
