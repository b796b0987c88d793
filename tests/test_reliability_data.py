"""Issue 12, data files: IDX sizes checked with exact integers against the file and a stated
limit, gzip decompressed as a stream that stops at that limit, and MNIST downloads capped."""

import gzip
import math
import struct
import time

import numpy as np
import pytest

from npnet.data import mnist
from npnet.data.idx import MAX_PAYLOAD_BYTES, decode_idx, encode_idx, read_idx
from npnet.errors import DataError


def idx_header(dims, code=0x08):
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


@pytest.mark.parametrize(
    "dims",
    [
        [65536, 65536, 65536, 65536],  # 2**64: wraps to 0 in int64
        [2**32 - 1] * 3,
        [4294967295, 4294967295, 4294967295, 4294967295, 16],
        [MAX_PAYLOAD_BYTES + 1],
    ],
)
@pytest.mark.parametrize("compress", [False, True])
def test_headers_asking_for_more_than_the_limit_are_refused(tmp_path, dims, compress):
    blob = idx_header(dims)
    path = tmp_path / "huge-idx"
    path.write_bytes(gzip.compress(blob) if compress else blob)
    expected = math.prod(dims)
    with pytest.raises(DataError, match=f"{expected:,} bytes, over the {MAX_PAYLOAD_BYTES:,}"):
        read_idx(path)
    with pytest.raises(DataError, match="over the"):
        decode_idx(blob)


def test_a_gzip_bomb_stops_at_the_limit(tmp_path):
    # A header for 1,000 bytes, then 50 MB of zeros: decompression stops soon after the limit.
    path = tmp_path / "bomb.gz"
    with gzip.open(path, "wb", compresslevel=1) as file:
        file.write(idx_header([1000]))
        for _ in range(50):
            file.write(bytes(1 << 20))
    start = time.perf_counter()
    with pytest.raises(DataError, match=r"goes on past the 1000 bytes .* more than 4,096 bytes"):
        read_idx(path, limit=4096)
    assert time.perf_counter() - start < 2
    # Within the limit the count of extra bytes is exact.
    small = tmp_path / "small.gz"
    small.write_bytes(gzip.compress(idx_header([10]) + bytes(10) + bytes(7)))
    with pytest.raises(DataError, match=r"payload is 17 bytes .* needs 10 \(7 extra bytes\)"):
        read_idx(small, limit=4096)


def test_within_the_limit_everything_still_reads(tmp_path):
    array = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    path = tmp_path / "ok.gz"
    path.write_bytes(gzip.compress(encode_idx(array)))
    np.testing.assert_array_equal(read_idx(path, limit=48), array)
    with pytest.raises(DataError, match="48 bytes, over the 47-byte limit"):
        read_idx(path, limit=47)


def test_a_downloaded_gzip_bomb_is_refused(monkeypatch):
    monkeypatch.setattr(mnist, "MAX_FILE_BYTES", 1 << 20)
    bomb = gzip.compress(bytes(8 << 20), compresslevel=1)
    with pytest.raises(DataError, match=r"decompresses to more than 1,048,576 bytes"):
        mnist._verify(bomb, "0" * 64)
    plain = bytes((1 << 20) + 1)
    with pytest.raises(DataError, match="SHA-256 mismatch"):
        mnist._verify(plain[:100], "0" * 64)
