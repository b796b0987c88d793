"""MNIST: find the four IDX files, download them if nowhere to be found, decode them once.

Search order for the directory holding the files (each place may hold them in a `mnist/`
subfolder or directly, gzipped or not):

    1. an explicit root (config `data.root`, CLI `--data-dir`)
    2. the NPNET_DATA environment variable
    3. the repository's `data/` (next to the npnet package)
    4. the user cache, ($XDG_CACHE_HOME or ~/.cache)/npnet
    5. a download into the user cache, unless NPNET_NO_DOWNLOAD=1

A download is verified against the SHA-256 of each file's uncompressed bytes and written
atomically, so a bad or partial file never lands where the search would find it.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import os
import urllib.error
import urllib.request
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from npnet.data.idx import GZIP_MAGIC, read_idx
from npnet.errors import DataError
from npnet.files import atomic_write

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

# SHA-256 of the *uncompressed* bytes, so a re-gzipped or gunzipped copy still verifies.
SHA256 = {
    TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

# The repository checkout's data/ folder; module-level so tests can point it elsewhere.
REPO_DATA = Path(__file__).resolve().parents[2] / "data"

_CHUNK = 1 << 16

# No MNIST file is larger than this, compressed or not (the largest holds 47 MB); a download
# or a decompression that goes past it is refused as it happens, not after filling memory.
MAX_FILE_BYTES = 64 << 20

# Decoded arrays per directory, keyed with the files' sizes and mtimes so a replaced file
# is decoded afresh; the arrays are read-only, so sharing them is safe.
_DECODED: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}


def cache_dir() -> Path:
    """npnet's user cache: ($XDG_CACHE_HOME or ~/.cache)/npnet."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "npnet"


def download_disabled() -> bool:
    """True when NPNET_NO_DOWNLOAD asks for no network access (1, true, yes or on)."""
    return os.environ.get("NPNET_NO_DOWNLOAD", "").strip().lower() in {"1", "true", "yes", "on"}


def _file_in(directory: Path, name: str) -> Path | None:
    """`name` in `directory`, or its gunzipped twin (the name without `.gz`), or None."""
    for candidate in (directory / name, directory / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _check_place(base: Path) -> tuple[Path | None, str]:
    """The directory under `base` (`base/mnist` first, then `base`) holding all four files,
    or None and why not."""
    if not base.is_dir():
        return None, f"{base} (not a directory)"
    best_dir, best_missing = None, list(FILES)
    for directory in (base / "mnist", base):
        missing = [name for name in FILES if _file_in(directory, name) is None]
        if not missing:
            return directory, ""
        if len(missing) < len(best_missing):
            best_dir, best_missing = directory, missing
    where = f"{best_dir}" if best_dir is not None else f"{base}/mnist or {base}"
    return None, f"{where} (missing {', '.join(best_missing)})"


def search_places(root: str | Path | None = None) -> list[tuple[str, Path | None]]:
    """The places searched for MNIST, in order, as (label, path); path None if not given."""
    env = os.environ.get("NPNET_DATA")
    return [
        ("data.root / --data-dir", Path(root).expanduser() if root is not None else None),
        ("NPNET_DATA", Path(env).expanduser() if env else None),
        ("repository data", REPO_DATA),
        ("user cache", cache_dir()),
    ]


def find_mnist(
    root: str | Path | None = None,
    *,
    mirrors: Sequence[str] = MIRRORS,
    checksums: Mapping[str, str] = SHA256,
) -> Path:
    """The directory holding the four MNIST files, downloading them into the cache if needed.

    Raises one `DataError` listing every place tried, why each failed, and how to fix it.
    """
    tried = []
    for label, base in search_places(root):
        if base is None:
            tried.append(f"{label}: not set")
            continue
        found, why = _check_place(base)
        if found is not None:
            return found
        tried.append(f"{label}: {why}")
    if download_disabled():
        tried.append("download: turned off by NPNET_NO_DOWNLOAD")
    else:
        destination = cache_dir() / "mnist"
        try:
            return download_mnist(destination, mirrors=mirrors, checksums=checksums)
        except DataError as error:
            tried.append(f"download into {destination}: {error}")
    raise DataError(
        "MNIST not found; looked in: "
        + "; ".join(tried)
        + f". Fix: put {', '.join(FILES)} in the repository's data/mnist/, "
        "or set NPNET_DATA (or data.root / --data-dir) to a directory holding them."
    )


def load_mnist(
    root: str | Path | None = None,
    *,
    mirrors: Sequence[str] = MIRRORS,
    checksums: Mapping[str, str] = SHA256,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST as read-only uint8 arrays: x_train (N, 28, 28), y_train (N,), x_test, y_test.

    Decoded once per process and directory; later calls return the same arrays.
    """
    directory = find_mnist(root, mirrors=mirrors, checksums=checksums).resolve()
    paths = [_file_in(directory, name) for name in FILES]
    stats = [p.stat() for p in paths]
    key = (directory, *((s.st_size, s.st_mtime_ns) for s in stats))
    if key not in _DECODED:
        arrays = tuple(read_idx(p) for p in paths)
        _check_mnist(paths, arrays)
        _DECODED[key] = arrays
    return _DECODED[key]


def _check_mnist(paths: list[Path], arrays: tuple[np.ndarray, ...]) -> None:
    """Well-formed IDX files can still be the wrong ones: check shapes, dtype and labels."""
    for images, labels, image_path, label_path in (
        (arrays[0], arrays[1], paths[0], paths[1]),
        (arrays[2], arrays[3], paths[2], paths[3]),
    ):
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DataError(
                f"{image_path}: expected uint8 images of shape (N, 28, 28), "
                f"got {images.dtype} {images.shape}"
            )
        if labels.dtype != np.uint8 or labels.shape != images.shape[:1]:
            raise DataError(
                f"{label_path}: expected {images.shape[0]} uint8 labels to match {image_path}, "
                f"got {labels.dtype} {labels.shape}"
            )
        if labels.size and labels.max() > 9:
            raise DataError(f"{label_path}: labels must be 0..9, found {int(labels.max())}")


def download_mnist(
    directory: str | Path,
    *,
    mirrors: Sequence[str] = MIRRORS,
    checksums: Mapping[str, str] = SHA256,
    timeout: float = 30.0,
    progress: bool = True,
) -> Path:
    """Download the MNIST files missing from `directory`, trying `mirrors` in order.

    Each file must match `checksums[name]` (SHA-256 of its uncompressed bytes) before it is
    written, via a temporary file in `directory` and `os.replace`, so no partial or unverified
    file ever appears under its real name. Returns `directory`; raises `DataError` naming the
    file and every mirror's failure when one cannot be fetched.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"cannot create {directory}: {error.strerror or error}") from error
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), disable=not progress) as bar:
        for name in FILES:
            if _file_in(directory, name) is not None:
                continue
            failures = []
            for mirror in mirrors:
                url = mirror.rstrip("/") + "/" + name
                try:
                    payload = _fetch(url, bar, timeout)
                    _verify(payload, checksums[name])
                # HTTPException: a connection dropped mid-body; ValueError: a malformed URL.
                except (OSError, http.client.HTTPException, ValueError, DataError) as error:
                    failures.append(f"{url}: {_reason(error)}")
                    if progress:
                        # Reasons such as "[Errno 111] ..." are not rich markup.
                        bar.console.print(failures[-1], style="yellow", markup=False)
                    continue
                _write_atomically(directory / name, payload)
                break
            else:
                raise DataError(f"could not download {name}: " + "; ".join(failures))
    return directory


def _reason(error: Exception) -> str:
    """A short message for a failed fetch (urllib wraps the interesting part in `.reason`)."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    return str(error)


def _fetch(url: str, bar: Progress, timeout: float) -> bytes:
    """The body at `url`, read in chunks so the progress bar moves."""
    name = url.rsplit("/", 1)[-1]
    with urllib.request.urlopen(url, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > MAX_FILE_BYTES:
            raise DataError(f"{length} bytes announced, over the {MAX_FILE_BYTES:,}-byte limit")
        task = bar.add_task(name, total=int(length) if length else None)
        chunks, size = [], 0
        while chunk := response.read(_CHUNK):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                raise DataError(f"more than {MAX_FILE_BYTES:,} bytes, larger than any MNIST file")
            bar.advance(task, len(chunk))
    return b"".join(chunks)


def _verify(payload: bytes, expected: str) -> None:
    """Raise DataError unless the uncompressed `payload` hashes to `expected` (SHA-256)."""
    try:
        if payload[:2] == GZIP_MAGIC:
            raw = gzip.GzipFile(fileobj=io.BytesIO(payload)).read(MAX_FILE_BYTES + 1)
        else:
            raw = payload
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"corrupt gzip data ({error})") from error
    if len(raw) > MAX_FILE_BYTES:
        raise DataError(f"decompresses to more than {MAX_FILE_BYTES:,} bytes (a gzip bomb?)")
    digest = hashlib.sha256(raw).hexdigest()
    if digest != expected.lower():
        raise DataError(f"SHA-256 mismatch: got {digest}, expected {expected}")


def _write_atomically(path: Path, payload: bytes) -> None:
    """`npnet.files.atomic_write` of `payload`, a failure of the file system as a DataError."""
    try:
        atomic_write(path, lambda file: file.write(payload))
    except OSError as error:
        raise DataError(f"cannot write {path}: {error.strerror or error}") from error
