"""Image grids as PNG files: ``tile_images`` (numpy) and ``save_image_grid`` (atomic write via
``matplotlib.image.imsave``; no PIL needed). Like torchvision's ``make_grid``/``save_image``,
written with numpy only."""

from __future__ import annotations

import io
import os

import numpy as np
import torch

from rnnlab.utils import atomic_write_bytes


def _as_numpy(images: torch.Tensor | np.ndarray) -> np.ndarray:
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
    """Tile ``N`` images into a grid ``nrow`` images wide, scaled to [0, 1].

    ``value_range=None`` guesses: data in [0, 1] is kept, data in [-1, 1] (tanh outputs) is
    mapped from [-1, 1], anything else is min-max scaled. Returns ``(H', W')`` for one channel,
    ``(H', W', 3)`` for three.
    """
    arr = _as_numpy(images)
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
    """Write ``tile_images(images, nrow, padding, value_range)`` as a greyscale (or RGB) PNG.

    The file appears atomically: written to a temporary file in the same folder, then renamed,
    so a reader never sees half a PNG. Parent folders are created. Returns the path.
    """
    from matplotlib.image import imsave

    grid = tile_images(images, nrow=nrow, padding=padding, value_range=value_range)
    buf = io.BytesIO()
    if grid.ndim == 2:
        imsave(buf, grid, cmap="gray", vmin=0.0, vmax=1.0, format="png")
    else:
        imsave(buf, grid, format="png")
    return str(atomic_write_bytes(path, buf.getvalue()))
