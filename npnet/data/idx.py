"""The IDX file format (MNIST's), read and written with NumPy and no loops.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension, then the values
in C order, big-endian:

    0x00 0x00 <type code> <ndim> | dim_0 ... dim_{ndim-1} (uint32 each) | payload

The payload holds exactly prod(dims) values of the type code's dtype. Files may be gzipped;
the reader recognises that by the gzip magic bytes (0x1f 0x8b), not by the file name.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from npnet.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"

# Type code → big-endian dtype, as the format defines them.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IDX_CODES = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}


# The largest payload read_idx accepts (MNIST's largest file holds 47 MB): a header that asks
# for more is refused before anything is allocated or decompressed.
MAX_PAYLOAD_BYTES = 1 << 30


def read_idx(path: str | Path, limit: int = MAX_PAYLOAD_BYTES) -> np.ndarray:
    """Decode the (optionally gzipped) IDX file at `path` into an array of the stated shape.

    Returns a read-only array of shape (dim_0, ..., dim_{ndim-1}) in native byte order
    (uint8 for MNIST). The header's size is checked first, with Python integers, against
    `limit` bytes and then against the bytes that follow; gzip data is decompressed as a
    stream, never past that size, so a gzip bomb stops at the limit. Raises `DataError`
    naming the file when it is missing, not IDX, too large, truncated or has bytes to spare.
    """
    path = Path(path)
    try:
        with path.open("rb") as raw:
            compressed = raw.read(2) == GZIP_MAGIC
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw) if compressed else raw
            try:
                head = stream.read(4)
                ndim = head[3] if len(head) == 4 else 0
                head += stream.read(4 * ndim)
                shape, dtype, header = parse_header(head, str(path))
                expected = payload_bytes(shape, dtype, str(path), limit)
                blob = head + stream.read(expected)
                extra = count_remaining(stream, limit)
            except (OSError, EOFError, zlib.error) as error:
                if not compressed:
                    raise
                raise DataError(f"{path}: corrupt or truncated gzip data ({error})") from error
    except OSError as error:
        raise DataError(f"{path}: cannot read IDX file ({error.strerror or error})") from error
    if extra > limit:
        raise DataError(
            f"{path}: IDX payload goes on past the {expected} bytes shape {shape} of "
            f"{dtype.name} needs, for more than {limit:,} bytes more (a gzip bomb?)"
        )
    if extra:
        raise size_error(str(path), len(blob) - header + extra, expected, shape, dtype)
    return decode_idx(blob, source=str(path), limit=limit)


def count_remaining(stream: BinaryIO, limit: int) -> int:
    """How many bytes are left in `stream`, read in chunks; past `limit` it stops counting
    (returning more than `limit`) rather than read on."""
    count = 0
    while count <= limit and (chunk := stream.read(1 << 20)):
        count += len(chunk)
    return count


def size_error(
    source: str, actual: int, expected: int, shape: tuple[int, ...], dtype: np.dtype
) -> DataError:
    problem = "truncated" if actual < expected else f"{actual - expected} extra bytes"
    return DataError(
        f"{source}: IDX payload is {actual} bytes but shape {shape} of {dtype.name} "
        f"needs {expected} ({problem})"
    )


def parse_header(blob: bytes, source: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, header length) from the start of IDX bytes; DataError if malformed."""
    if len(blob) < 4:
        raise DataError(f"{source}: {len(blob)} bytes is too short for an IDX header")
    zero0, zero1, code, ndim = blob[:4]
    if zero0 != 0 or zero1 != 0:
        raise DataError(
            f"{source}: not an IDX file: the magic number starts with "
            f"0x{zero0:02x} 0x{zero1:02x} instead of 0x00 0x00"
        )
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02x} ({d.name})" for c, d in IDX_DTYPES.items())
        raise DataError(f"{source}: unknown IDX type code 0x{code:02x} (known: {known})")
    if ndim == 0:
        raise DataError(f"{source}: the IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(blob) < header:
        raise DataError(
            f"{source}: truncated IDX header: {ndim} dimensions need {header} bytes, "
            f"the file has {len(blob)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(blob, dtype=">u4", count=ndim, offset=4))
    return shape, IDX_DTYPES[code], header


def payload_bytes(shape: tuple[int, ...], dtype: np.dtype, source: str, limit: int) -> int:
    """The payload size the header states, as a Python integer (exact: no int64 wrap-around),
    refused when over `limit`."""
    expected = math.prod(shape) * dtype.itemsize
    if expected > limit:
        raise DataError(
            f"{source}: the IDX header states shape {shape} of {dtype.name}, {expected:,} "
            f"bytes, over the {limit:,}-byte limit"
        )
    return expected


def decode_idx(
    blob: bytes, *, source: str = "<bytes>", limit: int = MAX_PAYLOAD_BYTES
) -> np.ndarray:
    """Decode uncompressed IDX bytes; `source` names them in error messages."""
    shape, dtype, header = parse_header(blob, source)
    expected = payload_bytes(shape, dtype, source, limit)
    actual = len(blob) - header
    if actual != expected:
        raise size_error(source, actual, expected, shape, dtype)
    values = np.frombuffer(blob, dtype=dtype, offset=header).reshape(shape)
    if dtype.itemsize > 1:
        # Byte-swapping copies; the result is made read-only too, so both paths behave alike.
        values = values.astype(dtype.newbyteorder("="))
        values.flags.writeable = False
    return values


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX bytes of `array` (any of the format's dtypes, at least one dimension)."""
    array = np.asarray(array)
    code = IDX_CODES.get(array.dtype.newbyteorder("="))
    if code is None or array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"IDX cannot hold a {array.ndim}-d array of {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
