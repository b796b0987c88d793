"""The IDX reader: exact bytes in, exact arrays out, and a DataError naming the file otherwise."""

import gzip
import re

import numpy as np
import pytest

from npnet.data.idx import decode_idx, encode_idx, read_idx
from npnet.errors import DataError

# A 2x3 uint8 array, byte by byte: magic (0, 0, type 0x08, ndim 2), dims 2 and 3, payload.
HAND_MADE = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 250, 251, 255])
HAND_MADE_ARRAY = np.array([[1, 2, 3], [250, 251, 255]], dtype=np.uint8)


def write(path, blob, compress=False):
    path.write_bytes(gzip.compress(blob) if compress else blob)
    return path


@pytest.mark.parametrize("compress", [False, True])
def test_reads_hand_made_bytes_exactly(tmp_path, compress):
    x = read_idx(write(tmp_path / "a.idx", HAND_MADE, compress))
    assert x.dtype == np.uint8
    assert x.shape == (2, 3)
    np.testing.assert_array_equal(x, HAND_MADE_ARRAY)


def test_encode_writes_the_same_bytes():
    assert encode_idx(HAND_MADE_ARRAY) == HAND_MADE


def test_big_endian_multi_byte_values():
    # int16 0x0102 = 258 and -2 (0xfffe), stored big-endian, come back in native order.
    blob = bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x02, 0xFF, 0xFE])
    x = decode_idx(blob)
    assert x.dtype == np.int16 and x.dtype.isnative
    np.testing.assert_array_equal(x, [258, -2])


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("compress", [False, True])
def test_round_trip(tmp_path, dtype, compress):
    array = (np.arange(2 * 3 * 4) - 7).astype(dtype).reshape(2, 3, 4)
    x = read_idx(write(tmp_path / "x", encode_idx(array), compress))
    assert x.dtype == dtype and x.shape == (2, 3, 4)
    np.testing.assert_array_equal(x, array)
    assert not x.flags.writeable


def test_gzip_is_detected_by_content_not_name(tmp_path):
    gz_named_raw = write(tmp_path / "raw.gz", HAND_MADE)
    plain_named_gzip = write(tmp_path / "plain.idx", HAND_MADE, compress=True)
    np.testing.assert_array_equal(read_idx(gz_named_raw), HAND_MADE_ARRAY)
    np.testing.assert_array_equal(read_idx(plain_named_gzip), HAND_MADE_ARRAY)


def test_empty_dimension(tmp_path):
    x = read_idx(write(tmp_path / "e", encode_idx(np.zeros((0, 28, 28), np.uint8))))
    assert x.shape == (0, 28, 28)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (HAND_MADE[:-1], r"payload is 5 bytes but shape \(2, 3\) of uint8 needs 6 \(truncated\)"),
        (HAND_MADE + b"\x00\x00", r"payload is 8 bytes .* needs 6 \(2 extra bytes\)"),
        (b"\x89PNG\r\n\x1a\n" + bytes(20), r"not an IDX file: .* 0x89 0x50 instead of 0x00 0x00"),
        (bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 0]), r"unknown IDX type code 0x07 \(known: 0x08"),
        (bytes([0, 0, 0x08, 0]), "declares 0 dimensions"),
        (HAND_MADE[:9], "truncated IDX header: 2 dimensions need 12 bytes, the file has 9"),
        (b"\x00\x00", "2 bytes is too short for an IDX header"),
    ],
    ids=["truncated", "extra-bytes", "png", "type-code", "zero-dims", "short-header", "tiny"],
)
@pytest.mark.parametrize("compress", [False, True])
def test_malformed_files_name_the_file_and_the_problem(tmp_path, blob, message, compress):
    path = write(tmp_path / "bad-idx1-ubyte", blob, compress)
    with pytest.raises(DataError, match=message) as caught:
        read_idx(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_truncated_gzip_stream(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(encode_idx(np.zeros((50, 28, 28), np.uint8)))[:-20])
    with pytest.raises(DataError, match=f"^{re.escape(str(path))}: corrupt or truncated gzip data"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.gz: cannot read IDX file"):
        read_idx(tmp_path / "nope.gz")


def test_encode_rejects_what_idx_cannot_hold():
    with pytest.raises(ValueError, match="IDX cannot hold a 1-d array of int64"):
        encode_idx(np.arange(3, dtype=np.int64))
