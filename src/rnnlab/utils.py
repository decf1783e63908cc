"""Small helpers any module may import: seeding, device choice, parameter counts, ONE atomic
file writer (:func:`atomic_write`, with :func:`atomic_write_bytes` / :func:`atomic_write_text`
on top), figure saving and image grids (:func:`tile_images`, :func:`save_image_grid`, a numpy
take on torchvision's ``make_grid``/``save_image``).

Every file rnnlab writes goes through :func:`atomic_write`: the data goes to a temporary file
in the target's own folder, is flushed and ``fsync``-ed, then ``os.replace``-d onto the final
name, so a reader (or a resume after ``kill -9``) sees the old file or the new one, never half
of one; on any failure the temporary file is removed and the old file is left untouched.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

T = TypeVar("T")

__all__ = [
    "atomic_write", "atomic_write_bytes", "atomic_write_text", "check_choice",
    "check_nonnegative", "count_parameters",
    "pick_device", "progress", "save_figure", "save_image_grid", "seed_everything",
    "tile_images",
]  # fmt: skip


class _Lines:
    """Progress for a log file or a pipe: plain lines, no carriage returns. Quiet for the
    first ``every`` seconds (a short step prints nothing); then one ``desc: n/total (p%),
    s elapsed`` line every ``every`` seconds and one when it closes."""

    def __init__(self, iterable, total, desc, stream, every: float, enabled: bool):
        self.iterable, self.total, self.desc = iterable, total, desc
        self.stream, self.every, self.enabled = stream, every, enabled
        self.n, self.start = 0, time.monotonic()
        self.last, self.said = self.start, False

    def _line(self) -> None:
        elapsed = time.monotonic() - self.start
        of = f"/{self.total} ({100 * self.n / self.total:.0f}%)" if self.total else ""
        print(f"{self.desc}: {self.n}{of}, {elapsed:.0f} s", file=self.stream, flush=True)
        self.said = True

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if self.enabled and now - self.last >= self.every:
            self.last = now
            self._line()

    def set_description(self, desc: str) -> None:
        self.desc = desc

    def close(self) -> None:
        if self.said:  # finish what was started; a step that said nothing stays silent
            self._line()
            self.said = False

    def __iter__(self) -> Iterator:
        try:
            for item in self.iterable:
                yield item
                self.update()
        finally:
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
             enabled: bool = True, stream=None, every: float = 10.0):  # fmt: skip
    """A progress bar for a step that may take more than a few seconds: tqdm's bar on a
    terminal; on anything else (a log file, CI) plain lines without carriage returns, at
    most one per ``every`` seconds and none for a step that ends sooner. Use as tqdm:
    ``for x in progress(items, desc="FID features")`` or ``update(n)`` / ``close()``.
    ``stream`` defaults to stderr; ``enabled=False`` prints nothing."""
    stream = sys.stderr if stream is None else stream
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)
    if enabled and getattr(stream, "isatty", lambda: False)():
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, file=stream, leave=False,
                    dynamic_ncols=True)  # fmt: skip
    return _Lines(iterable, total, desc, stream, every, enabled)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) from one integer."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(device: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else is passed to torch."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"`device` must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    return torch.device(device)


def check_choice(name: str, value: T, choices: Iterable[T]) -> T:
    """``value`` when it is one of ``choices``, else a ``ValueError`` naming ``name``, the
    choices and the value (the one message every model constructor gives)."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value


def check_nonnegative(name: str, value: object) -> float:
    """``value`` as a float when it is a finite real number >= 0 (a bool is not one), else a
    ``TypeError``/``ValueError`` naming ``name``: penalty coefficients, attack radii."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"`{name}` must be a float, got {type(value).__name__} {value!r}.")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"`{name}` must be a finite number >= 0, got {value!r}.")
    return float(value)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters (optionally only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once: os.umask is process-wide, so not per write (threads)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str | None = "wb") -> Iterator[Any]:
    """Write ``path`` atomically: temp file in the same folder, ``fsync``, ``os.replace``.

    ``mode="wb"`` (or ``"w"``, text in UTF-8) yields an open file whose ``name`` is the temp
    path (``torch.save``/``np.save`` take the file); ``mode=None`` yields the temp file's
    :class:`~pathlib.Path` for writers that want a name (``safetensors.torch.save_file``),
    which must write exactly that path. The file appears with the mode a plain ``open``
    would give (mkstemp's 0600 would survive the rename); parent folders are created. If the
    ``with`` body raises (``ENOSPC``, ``KeyboardInterrupt``, ...) the temp file is removed,
    ``path`` is untouched and the exception propagates.

        with atomic_write(run / "last.pt") as f:
            torch.save(state, f)
    """
    if mode not in ("wb", "w", None):
        raise ValueError(f"`mode` must be 'wb', 'w' or None, got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        os.close(fd)
        if mode is None:
            yield tmp
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        else:
            kwargs = {"encoding": "utf-8", "newline": ""} if mode == "w" else {}
            with open(tmp, mode, **kwargs) as f:  # f.name is the temp path
                yield f
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through :func:`atomic_write`; returns ``Path(path)``."""
    with atomic_write(path, "wb") as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_write`; returns ``Path(path)``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def save_figure(fig, path: str | os.PathLike, *, dpi: int | None = None) -> Path:
    """Render a matplotlib ``Figure`` to PNG (Agg canvas, no pyplot state) and write it
    atomically to ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buf = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return atomic_write_bytes(path, buf.getvalue())


def _as_numpy_images(images: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(images, torch.Tensor):
        images = images.detach().to("cpu", torch.float32).numpy()
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim == 3:  # (N, H, W)
        arr = arr[:, None]
    if arr.ndim != 4 or arr.shape[1] not in (1, 3):
        raise ValueError(
            f"`images` must be (N, H, W), (N, 1, H, W) or (N, 3, H, W); got {arr.shape}"
        )
    if arr.shape[0] == 0:
        raise ValueError("`images` must hold at least one image; got 0")
    return arr


def tile_images(
    images: torch.Tensor | np.ndarray,
    nrow: int = 8,
    padding: int = 2,
    value_range: tuple[float, float] | None = None,
    pad_value: float = 1.0,
) -> np.ndarray:
    """Tile ``N`` images ``(N, H, W)``/``(N, C, H, W)`` into a grid ``nrow`` images wide,
    scaled to [0, 1].

    ``value_range=None`` guesses: data in [0, 1] is kept, data in [-1, 1] (tanh outputs) is
    mapped from [-1, 1], anything else is min-max scaled. Returns ``(H', W')`` for one channel,
    ``(H', W', 3)`` for three.
    """
    arr = _as_numpy_images(images)
    if nrow < 1 or padding < 0:
        raise ValueError(f"`nrow` must be >= 1 and `padding` >= 0; got {nrow}, {padding}")
    if value_range is None:
        lo, hi = float(arr.min()), float(arr.max())
        if lo >= 0.0 and hi <= 1.0:
            value_range = (0.0, 1.0)
        elif lo >= -1.0 and hi <= 1.0:
            value_range = (-1.0, 1.0)
        else:
            value_range = (lo, hi if hi > lo else lo + 1.0)
    lo, hi = value_range
    arr = np.clip((arr - lo) / (hi - lo), 0.0, 1.0)
    n, c, h, w = arr.shape
    cols = min(nrow, n)
    rows = -(-n // cols)
    grid = np.full(
        (c, rows * (h + padding) + padding, cols * (w + padding) + padding),
        pad_value,
        np.float32,
    )
    for i in range(n):
        r, q = divmod(i, cols)
        top, left = padding + r * (h + padding), padding + q * (w + padding)
        grid[:, top : top + h, left : left + w] = arr[i]
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


def save_image_grid(
    images: torch.Tensor | np.ndarray,
    path: str | os.PathLike,
    nrow: int = 8,
    padding: int = 2,
    value_range: tuple[float, float] | None = None,
) -> str:
    """Write ``tile_images(images, nrow, padding, value_range)`` as a greyscale (or RGB) PNG
    via ``matplotlib.image.imsave`` (no PIL needed), atomically. Returns the path."""
    from matplotlib.image import imsave

    grid = tile_images(images, nrow=nrow, padding=padding, value_range=value_range)
    buf = io.BytesIO()
    if grid.ndim == 2:
        imsave(buf, grid, cmap="gray", vmin=0.0, vmax=1.0, format="png")
    else:
        imsave(buf, grid, format="png")
    return str(atomic_write_bytes(path, buf.getvalue()))
