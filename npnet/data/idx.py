"""The IDX file format (MNIST's), read and written with NumPy and no loops.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension, then the values
in C order, big-endian:

    0x00 0x00 <type code> <ndim> | dim_0 ... dim_{ndim-1} (uint32 each) | payload

The payload holds exactly prod(dims) values of the type code's dtype. Files may be gzipped;
the reader recognises that by the gzip magic bytes (0x1f 0x8b), not by the file name.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

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


def read_idx(path: str | Path) -> np.ndarray:
    """Decode the (optionally gzipped) IDX file at `path` into an array of the stated shape.

    Returns a read-only array of shape (dim_0, ..., dim_{ndim-1}) in native byte order
    (uint8 for MNIST). Raises `DataError` naming the file when it is missing, not IDX,
    truncated or has bytes to spare.
    """
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read IDX file ({error.strerror or error})") from error
    if blob[:2] == GZIP_MAGIC:
        try:
            blob = gzip.decompress(blob)
        except (OSError, EOFError, zlib.error) as error:
            raise DataError(f"{path}: corrupt or truncated gzip data ({error})") from error
    return decode_idx(blob, source=str(path))


def decode_idx(blob: bytes, *, source: str = "<bytes>") -> np.ndarray:
    """Decode uncompressed IDX bytes; `source` names them in error messages."""
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
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(blob) - header
    if actual != expected:
        problem = "truncated" if actual < expected else f"{actual - expected} extra bytes"
        raise DataError(
            f"{source}: IDX payload is {actual} bytes but shape {shape} of {dtype.name} "
            f"needs {expected} ({problem})"
        )
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
