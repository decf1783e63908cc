"""IDX reader/writer: round trips for every dtype, gzip by magic, and every validation error."""

import gzip

import numpy as np
import pytest

from rnnlab.data.idx import IDXError, read_idx, read_idx_header, write_idx


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_round_trip(tmp_path, dtype, name):
    rng = np.random.default_rng(0)
    arr = (rng.standard_normal((3, 4, 5)) * 50).astype(dtype)
    write_idx(tmp_path / name, arr)
    back = read_idx(tmp_path / name)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, arr)
    assert read_idx_header(tmp_path / name) == (np.dtype(dtype), (3, 4, 5))
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temp file left


def test_layout_is_big_endian_mnist_format(tmp_path):
    write_idx(tmp_path / "l", np.array([1, 2, 3], dtype=np.int32))
    raw = (tmp_path / "l").read_bytes()
    assert raw[:4] == b"\x00\x00\x0c\x01"
    assert raw[4:8] == (3).to_bytes(4, "big")
    assert raw[8:12] == (1).to_bytes(4, "big")


def test_gzip_detected_by_magic_not_name(tmp_path):
    arr = np.arange(6, dtype=np.uint8).reshape(2, 3)
    write_idx(tmp_path / "x.gz", arr)
    (tmp_path / "x.gz").rename(tmp_path / "plain-name")
    np.testing.assert_array_equal(read_idx(tmp_path / "plain-name"), arr)
    write_idx(tmp_path / "raw", arr)
    (tmp_path / "raw").rename(tmp_path / "raw.gz")
    np.testing.assert_array_equal(read_idx(tmp_path / "raw.gz"), arr)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"\x01\x00\x08\x01" + (2).to_bytes(4, "big") + b"ab", "bad IDX magic 0x01000801"),
        (b"\x00\x00\x07\x01" + (2).to_bytes(4, "big") + b"ab", "unknown type code 0x07"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (b"\x00\x00", "too short"),
        (b"\x00\x00\x08\x03" + (2).to_bytes(4, "big"), "header needs 16 bytes"),
    ],
)
def test_bad_headers(tmp_path, blob, message):
    (tmp_path / "f").write_bytes(blob)
    with pytest.raises(IDXError, match=message):
        read_idx(tmp_path / "f")


def _header(*dims: int) -> bytes:
    return bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_and_trailing_data(tmp_path, gz):
    for n_bytes, held in [(39, 39), (41, 41)]:
        blob = _header(10, 2, 2) + bytes(n_bytes)
        path = tmp_path / f"f{n_bytes}"
        path.write_bytes(gzip.compress(blob) if gz else blob)
        with pytest.raises(IDXError) as err:
            read_idx(path)
        assert f"header says 10x2x2 uint8 = 40 bytes of data, file holds {held}" in str(err.value)
        assert str(path) in str(err.value)


def test_corrupted_gzip(tmp_path):
    blob = gzip.compress(_header(100) + bytes(range(100)))
    (tmp_path / "cut.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(IDXError, match="corrupted gzip"):
        read_idx(tmp_path / "cut.gz")
    flipped = bytearray(blob)
    flipped[-6] ^= 0xFF  # the CRC32 trailer
    (tmp_path / "crc.gz").write_bytes(bytes(flipped))
    with pytest.raises(IDXError, match="corrupted gzip"):
        read_idx(tmp_path / "crc.gz")


def test_write_rejects_bad_arrays(tmp_path):
    with pytest.raises(IDXError, match="dtype uint8"):
        write_idx(tmp_path / "a", np.zeros(3, dtype=np.int64))
    with pytest.raises(IDXError, match="1..255 dimensions"):
        write_idx(tmp_path / "a", np.array(3, dtype=np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_write_replaces_atomically(tmp_path):
    write_idx(tmp_path / "a.gz", np.zeros(4, dtype=np.uint8))
    write_idx(tmp_path / "a.gz", np.ones(2, dtype=np.uint8))
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), [1, 1])
    assert [p.name for p in tmp_path.iterdir()] == ["a.gz"]
