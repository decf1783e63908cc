"""The per-epoch image grids of the generative families (``samples/<name>-epochNNN.png``):
reconstructions of a few fixed test inputs and samples from fixed noise, so epochs compare.

Nothing here touches torch's global random generator or leaves a module's mode changed: a
grid drawn between two epochs cannot change the training that follows (exact resume).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from rnnlab.utils import save_image_grid

from ..config import Config
from . import Data

__all__ = ["SAMPLE_SEED", "GridWriter", "pairs"]

SAMPLE_SEED = 1234  # fixed noise for every epoch's sample grid


class _Modes:
    """Eval mode inside the block; every module's own mode restored after."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self):
        self.modes = [(m, m.training) for m in self.model.modules()]
        self.model.eval()

    def __exit__(self, *exc) -> None:
        for m, mode in self.modes:
            m.training = mode


def pairs(x: Tensor, recon: Tensor) -> Tensor:
    """Rows of 8 originals, each followed by a row of their reconstructions."""
    rows = [t for i in range(0, len(x), 8) for t in (x[i : i + 8], recon[i : i + 8])]
    return torch.cat(rows)


class GridWriter:
    """``writer(model, epoch) -> [paths]``: ``draw(model, x, y, n, rng) -> {name: images}``
    on the first 16 test inputs ``x`` (labels ``y``), ``n = train.samples`` and a generator
    seeded with :data:`SAMPLE_SEED`; each grid lands in ``folder()/samples``. Images are
    reshaped to ``info["image_shape"]``; ``signed`` images live in [-1, 1]."""

    def __init__(self, cfg: Config, data: Data, folder: Callable[[], Path], draw, *, signed=False):
        x, y = data.test[0], data.test[1]
        self.x, self.y, self.n, self.folder, self.draw = (
            x[:16],
            y[:16],
            cfg.train.samples,
            folder,
            draw,
        )
        self.image_shape = tuple(data.info["image_shape"])
        self.value_range = (-1.0, 1.0) if signed else (0.0, 1.0)

    @torch.no_grad()
    def __call__(self, model: nn.Module, epoch: int) -> list[str]:
        device = next(model.parameters()).device
        rng = torch.Generator().manual_seed(SAMPLE_SEED)
        with _Modes(model):
            grids = self.draw(model, self.x.to(device), self.y.to(device), self.n, rng)
        written = []
        for name, images in grids.items():
            images = images.detach().float().cpu().reshape(len(images), 1, *self.image_shape)
            path = Path(self.folder()) / "samples" / f"{name}-epoch{epoch:03d}.png"
            written.append(save_image_grid(images, path, nrow=8, value_range=self.value_range))
        return written
