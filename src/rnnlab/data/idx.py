"""IDX files (the MNIST format): a validated reader and an atomic writer.

Layout, as LeCun, Cortes & Burges describe it for MNIST: a 4-byte big-endian magic
``0x00 0x00 TT NN`` (``TT`` = element type, ``NN`` = number of dimensions), then ``NN``
big-endian uint32 sizes, then the elements in C order, big-endian. Files may be gzip'd;
compression is detected by the gzip magic bytes ``1f 8b``, not by the file name.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from rnnlab.utils import atomic_write

__all__ = ["IDXError", "read_idx", "read_idx_header", "write_idx", "IDX_DTYPES"]

#: IDX type code -> numpy dtype (big-endian, as stored on disk).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_OF_KIND = {(dt.kind, dt.itemsize): code for code, dt in IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


class IDXError(ValueError):
    """A file is not valid IDX: bad magic, unknown type, wrong size or corrupt gzip."""


def _read_bytes(path: Path, limit: int | None = None) -> bytes:
    """The file's (decompressed) bytes; with ``limit``, at most that many."""
    with open(path, "rb") as f:
        compressed = f.read(2) == _GZIP_MAGIC
        f.seek(0)
        if not compressed:
            return f.read() if limit is None else f.read(limit)
        try:
            with gzip.GzipFile(fileobj=f, mode="rb") as g:
                return g.read() if limit is None else g.read(limit)
        except (OSError, EOFError, zlib.error) as e:
            raise IDXError(f"{path}: corrupted gzip stream ({e})") from e


def _parse_header(buf: bytes, path: Path | str) -> tuple[np.dtype, tuple[int, ...], int]:
    """Validate the header in ``buf``; return (dtype, shape, header length in bytes)."""
    if len(buf) < 4:
        raise IDXError(f"{path}: {len(buf)} bytes is too short for an IDX magic number")
    magic = int.from_bytes(buf[:4], "big")
    code, ndim = buf[2], buf[3]
    if buf[0] != 0 or buf[1] != 0:
        raise IDXError(
            f"{path}: bad IDX magic 0x{magic:08X}; expected 0x0000080N "
            "(two zero bytes, a type code, the number of dimensions)"
        )
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise IDXError(
            f"{path}: bad IDX magic 0x{magic:08X}: unknown type code 0x{code:02X}; "
            f"expected one of {known}"
        )
    if ndim < 1:
        raise IDXError(f"{path}: IDX magic 0x{magic:08X} says 0 dimensions; expected >= 1")
    header_len = 4 + 4 * ndim
    if len(buf) < header_len:
        raise IDXError(
            f"{path}: header needs {header_len} bytes for {ndim} dimensions, file holds {len(buf)}"
        )
    shape = tuple(int.from_bytes(buf[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return IDX_DTYPES[code], shape, header_len


def read_idx_header(path: str | os.PathLike) -> tuple[np.dtype, tuple[int, ...]]:
    """The (native-endian dtype, shape) an IDX file declares, without reading its data."""
    path = Path(path)
    buf = _read_bytes(path, limit=4 + 4 * 255)
    dtype, shape, _ = _parse_header(buf, path)
    return dtype.newbyteorder("="), shape


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read a raw or gzip'd IDX file into a native-endian numpy array.

    Raises :class:`IDXError` if the magic is wrong, the type code unknown, the gzip stream
    corrupt, or the data is not exactly ``prod(shape) * itemsize`` bytes long (truncated
    files and trailing bytes are both errors).
    """
    path = Path(path)
    buf = _read_bytes(path)
    dtype, shape, header_len = _parse_header(buf, path)
    expected = math.prod(shape) * dtype.itemsize
    held = len(buf) - header_len
    if held != expected:
        dims = "x".join(str(s) for s in shape)
        raise IDXError(
            f"{path}: header says {dims} {dtype.newbyteorder('=').name} = {expected} bytes "
            f"of data, file holds {held}"
        )
    data = np.frombuffer(buf, dtype=dtype, offset=header_len).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as IDX, gzip'd if ``path`` ends with ``.gz``.

    The file appears atomically: data goes to a temporary file in the same folder, which
    replaces ``path`` only once it is complete. Supported dtypes: uint8, int8, int16,
    int32, float32, float64; ``array.ndim`` must be 1..255.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _CODE_OF_KIND.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise IDXError(
            f"`array` must have dtype uint8, int8, int16, int32, float32 or float64 "
            f"to be written to {path}, got {array.dtype}"
        )
    if not 1 <= array.ndim <= 255:
        raise IDXError(f"`array` must have 1..255 dimensions for {path}, got {array.ndim}")
    if any(s >= 2**32 for s in array.shape):
        raise IDXError(f"`array` dimensions must be < 2**32 for {path}, got {array.shape}")
    header = bytes([0, 0, code, array.ndim]) + b"".join(
        int(s).to_bytes(4, "big") for s in array.shape
    )
    payload = header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    with atomic_write(path) as f:
        if path.name.endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as g:
                g.write(payload)
        else:
            f.write(payload)
