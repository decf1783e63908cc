"""A run's own PNGs on the report page (:mod:`rnnlab.evaluation.report`), made readable.

Images saved once per epoch (``samples/samples-epoch012.png``, ...) form a *series*: the
page shows the last epoch large and lists the earlier ones behind one ``<details>`` control
as a strip of at most :data:`STRIP` evenly spaced thumbnails, never dozens. Small pixel
images (8x8 or 28x28 digits tiled into a grid) are enlarged by nearest-neighbour upscaling
in the copied PNG itself, by a whole factor, so they stay crisp in any viewer; grids whose
rows or cells have a meaning get labels drawn beside them: the alternating input /
reconstruction rows of :class:`rnnlab.training.samples.SampleWriter`, the noisy / denoised /
clean rows of the tour's denoising figure, and the class of each sample of a conditional
GAN, named from the dataset (``Ankle boot``, not ``9``).

Captions say what a figure is, recognised from its file name (:data:`FIGURES`); a name that
is not recognised is shown as it is.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .plots import _text, atomic_write_bytes
from .report_data import RunData

STRIP = 8  # earlier epochs shown behind the control, at most
LARGE = 520  # an enlarged grid is about this wide (px), by a whole factor
THUMB = 150  # a thumbnail in the strip
EPOCH = re.compile(r"[-_]?(?:epoch|ep)[-_]?(\d+)", re.IGNORECASE)

# (substring of the file name, caption); the first match wins, so the specific come first
FIGURES = (
    ("latent", "latent map: the posterior mean of each test image in the 2-D latent space, "
               "coloured by its class (not generated samples)"),
    ("manifold", "decoded manifold: the decoder's mean image at each point of a grid over the "
                 "2-D latent space (prior quantiles 5%..95%; z[0] left to right, z[1] bottom "
                 "to top)"),
    ("gate", "gate activations and cell state at every step of one input"),
    ("adversarial", "clean inputs, adversarial perturbations and the predictions on each"),
    ("denois", "denoising: noisy inputs, the model's denoised outputs and the clean originals"),
    ("recon", "reconstructions: each row of test inputs is followed by a row of the model's "
              "reconstructions of them"),
    ("interp", "interpolation between codes in the latent space"),
    ("sample", "generated samples: new images decoded from fixed random codes (the same "
               "codes every epoch, so epochs compare)"),
    ("real", "real training images, for comparison"),
    ("gradient", "gradient norm through time"),
    ("confusion", "confusion matrix"),
    ("robust", "robustness curve"),
)  # fmt: skip


def describe(rel: Path) -> str:
    """What the figure at ``rel`` (relative to its run folder) shows, from its name."""
    name = EPOCH.sub("", rel.stem).lower()
    what = next((text for key, text in FIGURES if key in name), None)
    return what or rel.stem.replace("_", " ").replace("-", " ")


@dataclass
class Series:
    """One figure of a run, possibly saved at several epochs (``earlier``, oldest first)."""

    key: str  # the relative path without its epoch number
    final: Path
    epoch: int | None = None
    earlier: list[tuple[int, Path]] = field(default_factory=list)


def series_of(images: list[Path]) -> list[Series]:
    """Group a run's PNGs (relative paths) by name without the epoch number, in first-seen
    order; each series' final image is its highest epoch (or its only file)."""
    found: dict[str, list[tuple[int | None, Path]]] = {}
    for rel in images:
        match = EPOCH.search(rel.stem)
        key = (rel.parent / EPOCH.sub("", rel.stem)).as_posix() if match else rel.as_posix()
        found.setdefault(key, []).append((int(match.group(1)) if match else None, rel))
    out = []
    for key, members in found.items():
        members.sort(key=lambda m: -1 if m[0] is None else m[0])
        epoch, final = members[-1]
        earlier = [(e, p) for e, p in members[:-1] if e is not None]
        out.append(Series(key, final, epoch, earlier))
    return out


def spaced(items: list, k: int = STRIP) -> list:
    """At most ``k`` items, evenly spaced, the first always kept."""
    if len(items) <= k:
        return list(items)
    picks = np.linspace(0, len(items) - 1, k).round().astype(int)
    return [items[i] for i in dict.fromkeys(picks.tolist())]


def _class_names(run: RunData) -> list[str] | None:
    dataset = (run.config.get("data") or {}).get("dataset")
    try:
        from rnnlab.data.datasets import DATASETS

        spec = DATASETS.get(str(dataset))
    except ImportError:  # pragma: no cover - the registry moved
        return None
    return list(spec.class_names) if spec is not None else None


def grid_labels(run: RunData, rel: Path) -> tuple[list[str] | None, list[str] | None, int]:
    """(row labels, cell labels, images per row) for a grid whose layout rnnlab knows."""
    name = rel.stem.lower()
    model = run.config.get("model") or {}
    if "recon" in name:
        return ["input", "reconstruction"], None, 8
    if "denois" in name:
        return ["noisy", "denoised", "clean"], None, 16
    if "sample" in name and model.get("family") == "gan" and model.get("conditional"):
        names = _class_names(run)
        if names:  # SampleWriter: sample i is conditioned on class i % n_classes
            return None, names, 8
    return None, None, 8


def _tiles(width: int, height: int, nrow: int, pad: int = 2) -> tuple[int, int, int] | None:
    """(tile width, tile height, rows) of a ``save_image_grid`` grid, or None if it is not one."""
    tile_w = (width - pad) / nrow - pad
    if tile_w < 1 or not tile_w.is_integer():
        return None
    fits = [
        (abs((height - pad) / rows - pad - tile_w), rows)
        for rows in range(1, 129)
        if ((height - pad) / rows - pad).is_integer() and (height - pad) / rows - pad >= 1
    ]
    if not fits:
        return None
    rows = min(fits)[1]  # the layout whose tiles are closest to square
    return int(tile_w), int((height - pad) / rows - pad), rows


def enlarge(src: Path, dest: Path, *, width: int = LARGE, row_labels: list[str] | None = None,
            cell_labels: list[str] | None = None, nrow: int = 8) -> tuple[int, int]:  # fmt: skip
    """Copy the PNG ``src`` to ``dest``, scaled up by the whole factor that brings it closest
    to ``width`` px (nearest neighbour; never down), with labels drawn when given: a row's
    label on its left (cycling, e.g. input / reconstruction), a cell's above it (cycling
    over the grid's cells in reading order). Returns the written image's (width, height)."""
    from PIL import Image

    with Image.open(src) as img:
        img.load()
        image = img.convert("RGB")
    w, h = image.size
    scale = max(1, min(16, round(width / w))) if w < width else 1
    grid = _tiles(w, h, nrow) if (row_labels or cell_labels) else None
    if grid is None:
        if scale == 1:
            data = src.read_bytes()
            atomic_write_bytes(dest, data)
            return w, h
        big = image.resize((w * scale, h * scale), Image.NEAREST)
        buf = io.BytesIO()
        big.save(buf, format="PNG", optimize=True)
        atomic_write_bytes(dest, buf.getvalue())
        return big.size
    return _labelled(np.asarray(image), dest, scale, grid, row_labels, cell_labels, nrow)


def _labelled(pixels: np.ndarray, dest: Path, scale: int, grid: tuple[int, int, int],
              row_labels: list[str] | None, cell_labels: list[str] | None,
              nrow: int) -> tuple[int, int]:  # fmt: skip
    """Draw the grid row by row with matplotlib's figimage (pixels unresampled) and text."""
    from matplotlib.figure import Figure

    from rnnlab.utils import save_figure

    tile_w, tile_h, rows = grid
    pad = 2
    big = pixels.repeat(scale, 0).repeat(scale, 1)
    left = 12 + 8 * max(map(len, row_labels)) if row_labels else 0
    band = 18 if cell_labels else 0  # a line of text above each row of cells
    row_px = (tile_h + pad) * scale
    width = left + big.shape[1]
    height = pad * scale + rows * (row_px + band)
    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    for r in range(rows):
        strip = big[r * row_px : (r + 1) * row_px + pad * scale]
        top = r * (row_px + band) + band  # from the top of the canvas, in px
        fig.figimage(strip, xo=left, yo=height - top - strip.shape[0], origin="upper")
        if row_labels:
            y = height - top - (pad + tile_h / 2) * scale
            fig.text((left - 6) / width, y / height, _text(row_labels[r % len(row_labels)]),
                     ha="right", va="center", fontsize=9, color="#1f2933")  # fmt: skip
        if cell_labels:
            for c in range(nrow):
                x = left + (pad + c * (tile_w + pad) + tile_w / 2) * scale
                label = _text(cell_labels[(r * nrow + c) % len(cell_labels)])
                size = 8 if len(label) < 10 else 7
                fig.text(x / width, (height - top + 3) / height, label, ha="center",
                         va="bottom", fontsize=size, color="#1f2933")  # fmt: skip
    save_figure(fig, dest, dpi=dpi)  # the canvas's own dpi: figimage pixels stay 1:1
    return width, height
