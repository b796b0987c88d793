"""Files written all at once and read with a bound: the one atomic-write helper every tier uses,
strict JSON, and bounded reads of small text files.

An atomic write goes to a temporary file beside the target (`.<name>.<random>.tmp`), is
flushed to disk, given the mode a plain `open()` would have given it (0666 minus the umask),
and renamed over the target: a reader sees the old file or the new one, never half of one.
A process killed mid-write can leave its temporary behind; `remove_stale_temporaries`
clears them.
"""

from __future__ import annotations

import json
import math
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

TEMPORARY_SUFFIX = ".tmp"


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (/proc), else by the
    classic set-and-restore."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


Writer = Callable[[IO[bytes]], None]


def atomic_write(path: Path, write: Writer) -> None:
    """Call `write(file)` on a temporary file beside `path`, then rename it over `path`.

    The file gets mode 0666 & ~umask (mkstemp's 0600 would hide runs from group and others).
    Any error, an interrupt included, removes the temporary and leaves `path` as it was;
    OSError (a full disk, a read-only directory) propagates for the caller to name.
    """
    atomic_write_all([(Path(path), write)])


def atomic_write_all(files: list[tuple[Path, Writer]]) -> None:
    """Write several files as nearly at once as a file system allows: every temporary is
    written and flushed first (where a full disk fails, leaving every target as it was), then
    all are renamed, in the order given, so the last one can mark the set as complete."""
    temporaries: list[tuple[str, Path]] = []
    try:
        for path, write in files:
            try:
                temporaries.append((write_temporary(Path(path), write), Path(path)))
            except OSError as error:
                if error.errno is not None and error.filename is None:
                    error.filename = str(path)  # a failed write() names no file
                raise
        for temporary, path in temporaries:
            os.replace(temporary, path)
    except BaseException:
        for temporary, _ in temporaries:
            Path(temporary).unlink(missing_ok=True)
        raise


def write_temporary(path: Path, write: Writer) -> str:
    """The name of a new temporary beside `path` holding what `write` wrote, on disk."""
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX
    )
    try:
        os.fchmod(handle, 0o666 & ~current_umask())
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return temporary


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda file: file.write(text.encode()))


def remove_stale_temporaries(directory: Path, names: list[str]) -> list[Path]:
    """Delete the temporaries `atomic_write` left in `directory` for the files `names` (a
    process killed mid-write); returns what was removed."""
    removed = []
    for name in names:
        for stale in directory.glob(f".{name}.*{TEMPORARY_SUFFIX}"):
            stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed


def read_text_bounded(path: Path, limit: int) -> str:
    """The text of the regular file at `path`, at most `limit` bytes of UTF-8.

    Raises OSError for what cannot be opened, ValueError (with the reason) for a device or
    pipe (`/dev/zero` would never end), a file over the limit, or bytes that are not UTF-8.
    """
    path = Path(path)
    # Checked before opening: opening a FIFO would wait for a writer.
    if not stat.S_ISREG(path.stat().st_mode):
        raise ValueError("not a regular file")
    with path.open("rb") as file:
        blob = file.read(limit + 1)
    if len(blob) > limit:
        raise ValueError(f"larger than {limit:,} bytes")
    try:
        return blob.decode()
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text (a binary file?)") from None


def strict_json_data(data: Any) -> Any:
    """`data` with every NaN or infinite float replaced by None, and beside each such entry of
    a mapping a `<key>_reason` saying what it was: JSON has no NaN or Infinity."""
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out[key] = strict_json_data(value)
            if isinstance(value, float) and not math.isfinite(value):
                out[f"{key}_reason"] = f"not a finite number ({value}); JSON has no {value}"
        return out
    if isinstance(data, (list, tuple)):
        return [strict_json_data(value) for value in data]
    return data


def dumps_strict_json(data: Any) -> str:
    """Indented, standard JSON (no NaN or Infinity tokens) of `data`; see `strict_json_data`."""
    return json.dumps(strict_json_data(data), indent=2, allow_nan=False)
