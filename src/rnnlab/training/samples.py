"""What the generative families leave in a run folder besides checkpoints: one image grid per
epoch in ``samples/`` (reconstructions for autoencoders, VAEs and VAE-GANs; prior samples
for VAEs, GANs and VAE-GANs, from fixed noise so epochs compare), drawn with
:func:`rnnlab.evaluation.images.save_image_grid`; and the VAE's importance-weighted test NLL
(Burda et al. 2016) at the end of training.

Nothing here touches torch's global random generator or leaves a module's mode changed: a
grid drawn between two epochs cannot change the training that follows (exact resume).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from .config import Config

__all__ = ["SampleWriter", "epoch_hook", "importance_weighted_test_nll"]

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


class SampleWriter:
    """``writer(model, epoch)`` writes this family's grids for ``epoch`` into ``folder()``.

    ``x`` / ``y``: a few fixed inputs (model input form, first rows of the test split) whose
    reconstructions are drawn; ``image_shape`` (H, W) turns flat inputs back into images.
    """

    def __init__(self, cfg: Config, x: Tensor, y: Tensor, image_shape: tuple[int, int], folder):
        self.family, self.n = cfg.model.family, cfg.train.samples
        self.x, self.y, self.image_shape, self.folder = x[:16], y[:16], image_shape, folder
        self.signed = self.family in ("gan", "vaegan")

    def _images(self, t: Tensor) -> Tensor:
        return t.detach().float().cpu().reshape(len(t), 1, *self.image_shape)

    def _save(self, images: Tensor, name: str, epoch: int) -> str:
        from rnnlab.utils import save_image_grid

        path = Path(self.folder()) / "samples" / f"{name}-epoch{epoch:03d}.png"
        value_range = (-1.0, 1.0) if self.signed else (0.0, 1.0)
        return save_image_grid(self._images(images), path, nrow=8, value_range=value_range)

    def _pairs(self, x: Tensor, recon: Tensor) -> Tensor:
        """Rows of 8 originals, each followed by a row of their reconstructions."""
        x, recon = self._images(x), self._images(recon)
        rows = [t for i in range(0, len(x), 8) for t in (x[i : i + 8], recon[i : i + 8])]
        return torch.cat(rows)

    @torch.no_grad()
    def __call__(self, model: nn.Module, epoch: int) -> list[str]:
        device = next(model.parameters()).device
        x = self.x.to(device)
        rng = torch.Generator().manual_seed(SAMPLE_SEED)
        written = []
        with _Modes(model):
            if self.family == "autoencode":
                written.append(self._save(self._pairs(x, model(x)), "reconstructions", epoch))
            elif self.family in ("vae", "vaegan"):
                written.append(self._save(self._pairs(x, model.reconstruct(x)),
                                          "reconstructions", epoch))  # fmt: skip
                z = torch.randn(self.n, model.latent_dim, generator=rng).to(device)
                fake = model.decode(z) if self.family == "vae" else model.generator(z)
                written.append(self._save(fake, "samples", epoch))
            else:  # gan
                z = torch.randn(self.n, model.z_dim, generator=rng).to(device)
                labels = None
                if model.n_classes:
                    labels = torch.arange(self.n, device=device) % model.n_classes
                written.append(self._save(model(z, labels), "samples", epoch))
        return written


def epoch_hook(cfg: Config, test: tuple[Tensor, ...], run, model: nn.Module, user=None) -> Callable:
    """The loop's ``on_epoch_end`` for a run: a generative family's grids into ``run``'s
    folder (where the run is, i.e. rank 0), then the caller's ``user(state, record)``."""
    from rnnlab.data import DATASETS

    if cfg.model.family not in ("autoencode", "vae", "gan", "vaegan") or run is None:
        return user
    shape = tuple(DATASETS[cfg.data.dataset].image_shape)
    writer = SampleWriter(cfg, test[0], test[1], shape, lambda: run.path)

    def hook(state, record: dict) -> None:
        writer(model, state.epoch)
        if user is not None:
            user(state, record)

    return hook


def importance_weighted_test_nll(model: nn.Module, batches, k: int, device) -> float:
    """Mean IWAE bound on -log p(x) in nats over ``batches`` with ``k`` samples each, drawn
    from a local generator (the global one is left alone)."""
    from rnnlab.models.vae import importance_weighted_nll

    total, count = 0.0, 0
    state = torch.get_rng_state()  # importance_weighted_nll draws from the global generator
    try:
        torch.manual_seed(SAMPLE_SEED)
        for batch in batches:
            x = batch[0].to(device)
            total += float(importance_weighted_nll(model, x, k=k, batch_k=min(k, 100)).sum())
            count += len(x)
    finally:
        torch.set_rng_state(state)
    return total / max(count, 1)
