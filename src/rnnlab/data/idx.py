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
import stat
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
_MAX_HEADER = 4 + 4 * 255  # magic + 255 dimensions
_CHUNK = 1 << 20  # bytes decompressed or read per call
#: Deflate's maximum expansion is about 1032:1; a gzip file of C bytes holds < 1100 C.
_MAX_RATIO = 1100


class IDXError(ValueError):
    """A file is not valid IDX: bad magic, unknown type, wrong size or corrupt gzip."""


def _open(path: Path):
    """``path`` opened for binary reading, refused unless it is a regular file.

    ``O_NONBLOCK`` keeps a FIFO from blocking the open; the type check then refuses it
    (and directories, devices, sockets) before a byte is read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise IDXError(f"{path}: cannot open ({e.strerror or e})") from e
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
            raise IDXError(f"{path}: is {kind}; expected an IDX file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _is_gzip(f) -> bool:
    compressed = f.read(2) == _GZIP_MAGIC
    f.seek(0)
    return compressed


def _read_bytes(path: Path, limit: int) -> bytes:
    """At most ``limit`` of the file's (decompressed) bytes."""
    with _open(path) as f:
        if not _is_gzip(f):
            return f.read(limit)
        try:
            with gzip.GzipFile(fileobj=f, mode="rb") as g:
                return g.read(limit)
        except (OSError, EOFError, zlib.error) as e:
            raise IDXError(f"{path}: corrupted gzip stream ({e})") from e


def _memory_bytes() -> int | None:
    """This machine's physical memory in bytes, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


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
    buf = _read_bytes(path, limit=_MAX_HEADER)
    dtype, shape, _ = _parse_header(buf, path)
    return dtype.newbyteorder("="), shape


def _size_error(path: Path, dtype: np.dtype, shape: tuple[int, ...], held: str) -> IDXError:
    dims = "x".join(str(s) for s in shape)
    expected = math.prod(shape) * dtype.itemsize
    return IDXError(
        f"{path}: header says {dims} {dtype.newbyteorder('=').name} = {expected} bytes "
        f"of data, file holds {held}"
    )


def _fill(stream, out: memoryview) -> int:
    """Read from ``stream`` into ``out`` in chunks of at most ``_CHUNK`` bytes; bytes read."""
    done = 0
    while done < len(out):
        n = stream.readinto(out[done : done + _CHUNK])
        if not n:
            break
        done += n
    return done


def read_idx(path: str | os.PathLike, *, max_bytes: int | None = None) -> np.ndarray:
    """Read a raw or gzip'd IDX file into a native-endian numpy array.

    The header's declared size, ``prod(shape) * itemsize`` bytes, is checked before any
    data is allocated: against the file's size for a raw file; for a gzip'd file against
    what its compressed size can hold (deflate expands at most ~1032:1, so a 1 MB file
    cannot hold 10 GB), then while decompressing in bounded chunks, so a gzip bomb stops
    one chunk past the declared size. ``max_bytes`` (default: this machine's physical
    memory) caps the declared size. Memory used is the array itself plus one chunk.

    Raises :class:`IDXError` if the path is not a readable regular file (a FIFO,
    directory or dangling link is refused without blocking), the magic is wrong, the type
    code unknown, the gzip stream corrupt, the declared size too large, or the data is not
    exactly the declared size (truncated files and trailing bytes are both errors).
    """
    path = Path(path)
    cap = _memory_bytes() if max_bytes is None else max_bytes
    with _open(path) as f:
        file_size = os.fstat(f.fileno()).st_size
        compressed = _is_gzip(f)
        stream = gzip.GzipFile(fileobj=f, mode="rb") if compressed else f
        try:
            dtype, shape, data = _read_data(path, stream, compressed, file_size, cap)
        except (OSError, EOFError, zlib.error) as e:
            raise IDXError(f"{path}: corrupted gzip stream ({e})") from e
        finally:
            if compressed:
                stream.close()
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    if not dtype.isnative:
        array = array.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return array


def _read_data(path: Path, stream, compressed: bool, file_size: int, cap: int | None):
    """(dtype, shape, data bytearray) after the size checks :func:`read_idx` describes."""
    head = stream.read(4)
    if len(head) == 4 and head[:2] == b"\x00\x00":
        head += stream.read(4 * head[3])
    dtype, shape, header_len = _parse_header(head, path)
    expected = math.prod(shape) * dtype.itemsize
    if not compressed and file_size - header_len != expected:
        raise _size_error(path, dtype, shape, str(file_size - header_len))
    if compressed and expected > _MAX_RATIO * file_size + _MAX_HEADER:
        raise _size_error(path, dtype, shape, f"at most {_MAX_RATIO * file_size} (gzip'd)")
    if cap is not None and expected > cap:
        raise IDXError(
            f"{path}: header declares {expected} bytes of data, more than this machine's "
            f"memory ({cap} bytes)"
        )
    data = bytearray(expected)
    held = _fill(stream, memoryview(data))
    if held < expected:
        raise _size_error(path, dtype, shape, str(held))
    extra = len(stream.read(_CHUNK)) if compressed else 0  # bounded: a bomb stops here
    if extra:
        more = "at least " if extra == _CHUNK else ""
        raise _size_error(path, dtype, shape, f"{more}{expected + extra}")
    return dtype, shape, data


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
