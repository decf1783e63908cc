"""IDX reader under hostile input: 500 seeded mutations and special files.

Each case must end in :class:`IDXError` or a valid array (never another exception), must
allocate no more than a small bound (``tracemalloc`` sees numpy's and Python's buffers),
and must finish quickly: the declared size is checked before any data is allocated.
"""

from __future__ import annotations

import gzip
import os
import threading
import time
import tracemalloc
import zlib

import numpy as np
import pytest

from rnnlab.data import datasets as D
from rnnlab.data.idx import IDXError, read_idx, read_idx_header, write_idx

#: Largest allocation any hostile case may make: the reader's 1 MiB chunk, the small
#: file's data, and headroom; far below what a lying header asks for.
BOUND = 8 << 20


def _traced(fn, *args, **kwargs):
    """(result or IDXError, peak traced bytes, seconds) of ``fn(*args)``."""
    tracemalloc.start()
    start = time.monotonic()
    try:
        out = fn(*args, **kwargs)
    except IDXError as e:
        out = e
    finally:
        seconds = time.monotonic() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return out, peak, seconds


def _header(code: int, *dims: int) -> bytes:
    return bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


def _seeds(tmp_path) -> list[bytes]:
    """Valid files to mutate: several dtypes and shapes, raw and gzip'd."""
    rng = np.random.default_rng(0)
    arrays = [
        rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        (np.arange(7) % 10).astype(np.uint8),
        rng.standard_normal((3, 4)).astype(np.float32),
        rng.integers(-1000, 1000, (2, 3, 2), dtype=np.int16).astype(np.int16),
        rng.standard_normal(6),
    ]
    blobs = []
    for i, a in enumerate(arrays):
        for name in (f"s{i}", f"s{i}.gz"):
            write_idx(tmp_path / name, a)
            blobs.append((tmp_path / name).read_bytes())
    return blobs


def _mutate(blob: bytes, rng: np.random.Generator) -> bytes:
    """One random mutation of ``blob`` (the raw bytes, or the bytes before gzip)."""
    b = bytearray(blob)
    op = int(rng.integers(8))
    if op == 0:  # flip one bit anywhere
        i = int(rng.integers(len(b)))
        b[i] ^= 1 << int(rng.integers(8))
    elif op == 1:  # overwrite a header byte
        b[int(rng.integers(min(len(b), 16)))] = int(rng.integers(256))
    elif op == 2 and len(b) >= 8:  # a dimension set to an extreme or random size
        ndim = max(1, min(b[3], (len(b) - 4) // 4))
        at = 4 + 4 * int(rng.integers(ndim))
        value = int(rng.choice([0, 1, 2**31, 2**32 - 1, int(rng.integers(2**32))]))
        b[at : at + 4] = value.to_bytes(4, "big")
    elif op == 3:  # truncate
        del b[int(rng.integers(len(b))) :]
    elif op == 4:  # trailing garbage
        b += rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
    elif op == 5:  # insert bytes in the middle
        i = int(rng.integers(len(b)))
        b[i:i] = rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
    elif op == 6:  # the number of dimensions changed
        if len(b) >= 4:
            b[3] = int(rng.integers(256))
    else:  # a random run of bytes overwritten
        i = int(rng.integers(len(b)))
        n = int(rng.integers(1, 16))
        b[i : i + n] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    return bytes(b)


def test_500_seeded_mutations(tmp_path):
    rng = np.random.default_rng(2026)
    seeds = _seeds(tmp_path)
    errors = 0
    for case in range(500):
        blob = seeds[int(rng.integers(len(seeds)))]
        if blob[:2] == b"\x1f\x8b" and rng.random() < 0.5:  # mutate inside the stream
            blob = gzip.compress(_mutate(gzip.decompress(blob), rng), mtime=0)
        else:
            blob = _mutate(blob, rng)
        path = tmp_path / f"m{case}"
        path.write_bytes(blob)
        for fn in (read_idx, read_idx_header):
            out, peak, seconds = _traced(fn, path)
            assert peak < BOUND, f"case {case}: {fn.__name__} allocated {peak} bytes"
            assert seconds < 2, f"case {case}: {fn.__name__} took {seconds:.1f} s"
            if isinstance(out, IDXError):
                errors += fn is read_idx
                assert str(path) in str(out) and "\n" not in str(out)
        path.unlink()
    assert 100 < errors < 500  # the mutations do break files, and some stay valid


def test_mutated_dataset_pairs_fail_as_data_errors(tmp_path):
    """Through :func:`datasets.load`: only IDXError, never IndexError/MemoryError/..."""
    rng = np.random.default_rng(7)
    folder = tmp_path / "mnist"
    folder.mkdir()
    images_name, labels_name = D.FILES["train"]
    good = {}
    for name, array in (
        (images_name, rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)),
        (labels_name, np.arange(4, dtype=np.uint8)),
    ):
        write_idx(folder / name, array)
        good[name] = (folder / name).read_bytes()
    for case in range(40):
        name = images_name if case % 2 else labels_name
        (folder / name).write_bytes(_mutate(gzip.decompress(good[name]), rng))
        out, peak, _ = _traced(D.load, "mnist", root=folder)
        assert peak < BOUND
        assert isinstance(out, IDXError | D.ImageDataset), type(out)
        (folder / name).write_bytes(good[name])


def test_pair_with_zero_images_is_refused(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    images_name, labels_name = D.FILES["train"]
    write_idx(folder / images_name, np.zeros((0, 28, 28), dtype=np.uint8))
    write_idx(folder / labels_name, np.zeros(0, dtype=np.uint8))
    with pytest.raises(IDXError, match="holds 0 images"):
        D.load("mnist", root=folder)


def _bomb(tmp_path, header: bytes, zeros: int) -> os.PathLike:
    """A gzip file: ``header``, then ``zeros`` zero bytes, as concatenated members."""
    member = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = member.compress(bytes(16 << 20)) + member.flush()  # 16 MiB of zeros, ~16 KB
    path = tmp_path / "bomb.gz"
    with open(path, "wb") as f:
        f.write(gzip.compress(header, mtime=0))
        for _ in range(zeros // (16 << 20)):
            f.write(block)
    return path


def test_gzip_bomb_stops_after_one_chunk(tmp_path):
    path = _bomb(tmp_path, _header(8, 100, 28, 28), zeros=1 << 30)  # 1 GiB in ~1 MB
    assert path.stat().st_size < 2 << 20
    out, peak, seconds = _traced(read_idx, path)
    assert isinstance(out, IDXError) and "= 78400 bytes of data, file holds at least" in str(out)
    assert peak < BOUND and seconds < 2


def test_gzip_that_cannot_hold_its_declared_size(tmp_path):
    path = tmp_path / "liar.gz"
    path.write_bytes(gzip.compress(_header(8, 60000, 28, 28) + bytes(100), mtime=0))
    out, peak, _ = _traced(read_idx, path)
    assert isinstance(out, IDXError) and "file holds at most" in str(out)
    assert peak < BOUND


def test_sparse_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "sparse"
    with open(path, "wb") as f:
        f.write(_header(8, 60000, 28, 28))
        f.truncate(64 << 30)  # 64 GiB, no blocks on disk
    out, peak, seconds = _traced(read_idx, path)
    assert isinstance(out, IDXError) and f"file holds {(64 << 30) - 16}" in str(out)
    assert peak < BOUND and seconds < 1


def test_declared_size_above_memory_is_refused(tmp_path):
    """A sparse file that is exactly as large as its header says, but larger than RAM."""
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    rows = memory // (1 << 20) + 1  # rows x 1 MiB > memory
    path = tmp_path / "huge"
    with open(path, "wb") as f:
        f.write(_header(8, rows, 1 << 20))
        f.truncate(12 + rows * (1 << 20))
    out, peak, _ = _traced(read_idx, path)
    assert isinstance(out, IDXError) and "more than this machine's memory" in str(out)
    assert peak < BOUND
    out, _, _ = _traced(read_idx, path, max_bytes=1 << 20)
    assert isinstance(out, IDXError) and "(1048576 bytes)" in str(out)


def test_fifo_is_refused_without_blocking(tmp_path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    result = []
    reader = threading.Thread(target=lambda: result.append(_traced(read_idx, path)[0]))
    reader.daemon = True
    reader.start()
    reader.join(timeout=5)
    if reader.is_alive():  # unblock the reader before failing
        with open(path, "wb"):
            pass
        pytest.fail("read_idx blocked on a FIFO")
    assert isinstance(result[0], IDXError) and "not a regular file" in str(result[0])


@pytest.mark.parametrize("kind", ["dangling symlink", "directory", "missing"])
def test_special_paths(tmp_path, kind):
    path = tmp_path / "x"
    if kind == "dangling symlink":
        path.symlink_to(tmp_path / "nowhere")
    elif kind == "directory":
        path.mkdir()
    for fn in (read_idx, read_idx_header):
        with pytest.raises(IDXError, match="directory|cannot open") as err:
            fn(path)
        assert str(path) in str(err.value)
