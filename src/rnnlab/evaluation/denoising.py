"""Denoising evaluation: corrupt clean test images, let an autoencoder clean them, and measure
peak signal-to-noise ratio before and after (the chapter's "denoising autoencoders"; Vincent
et al. 2008, 2010).

- :func:`corrupt`: the two corruptions of :class:`~rnnlab.models.autoencoders.DenoisingAutoencoder`
  with a seeded generator, so every model is scored on the same noisy images: additive Gaussian
  :math:`\\tilde x = x + \\sigma\\epsilon` and masking noise (each pixel set to 0 with
  probability ``p``). ``clip=False`` by default: the noise the model was trained on (the
  AE's own ``corrupt`` does not clip); ``clip=True`` keeps pixels in [0, 1] as a saved image.
- :func:`psnr`: :math:`10 \\log_{10}(R^2 / \\mathrm{MSE})` per image, ``R`` the data range
  (1 for images in [0, 1]); :func:`denoising_report` gives the mean over a test set for the
  noisy input and for the model's output.
- :func:`save_denoising_grid`: rows of noisy / denoised / clean images as one PNG.
"""

from __future__ import annotations

import math
import os

import torch
from torch import Tensor, nn

__all__ = ["corrupt", "denoise", "denoising_report", "psnr", "save_denoising_grid"]

NOISES = ("gaussian", "masking")


def corrupt(x: Tensor, noise: str, level: float, *, seed: int = 0, clip: bool = False) -> Tensor:
    """A corrupted copy of ``x`` (any shape): ``noise`` "gaussian" (σ = ``level``) or
    "masking" (drop probability ``level``), drawn from ``torch.Generator().manual_seed(seed)``."""
    if noise not in NOISES:
        raise ValueError(f"`noise` must be one of {NOISES}; got {noise!r}")
    if not 0.0 <= level <= 1.0 or (noise == "masking" and level == 1.0):
        raise ValueError(
            f"`level` must be in [0, 1] ([0, 1) for masking): the noise std or the fraction of "
            f"pixels dropped; got {level}"
        )
    g = torch.Generator().manual_seed(seed)
    if noise == "gaussian":
        noisy = x + level * torch.randn(x.shape, generator=g).to(x)
        return noisy.clamp(0.0, 1.0) if clip else noisy
    keep = torch.rand(x.shape, generator=g).to(x.device) >= level
    return x * keep.to(x.dtype)


def psnr(estimate: Tensor, clean: Tensor, data_range: float = 1.0) -> Tensor:
    """PSNR in dB of each example of ``estimate`` against ``clean`` (same shape), ``(N,)``.

    A perfect reconstruction gives ``inf``; average in dB with care (we report the mean of
    finite values and say so)."""
    if estimate.shape != clean.shape or estimate.dim() < 2:
        raise ValueError(
            f"`estimate` and `clean` must be batches (N, ...) of one shape; got "
            f"{tuple(estimate.shape)} and {tuple(clean.shape)}"
        )
    if data_range <= 0:
        raise ValueError(f"`data_range` must be > 0; got {data_range}")
    mse = (estimate.double() - clean.double()).pow(2).reshape(len(clean), -1).mean(dim=1)
    return 10.0 * torch.log10(data_range**2 / mse)


@torch.no_grad()
def denoise(model: nn.Module, noisy: Tensor, batch_size: int = 1024) -> Tensor:
    """``model(noisy)`` in eval mode (no training-time corruption), batch by batch."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(xb) for xb in noisy.split(batch_size)])
    finally:
        model.train(was_training)


def _mean_db(values: Tensor) -> float:
    finite = values[torch.isfinite(values)]
    return float(finite.mean()) if len(finite) else math.inf


def denoising_report(
    model: nn.Module, clean: Tensor, noise: str, level: float, *, seed: int = 0
) -> dict[str, float]:
    """Mean PSNR (dB) of the noisy inputs and of the model's outputs against ``clean``, and the
    per-pixel MSE of both. ``clean`` has the model's input shape."""
    noisy = corrupt(clean, noise, level, seed=seed)
    out = denoise(model, noisy)
    return {
        "psnr_noisy": _mean_db(psnr(noisy, clean)),
        "psnr_denoised": _mean_db(psnr(out, clean)),
        "mse_noisy": float((noisy - clean).pow(2).mean()),
        "mse_denoised": float((out - clean).pow(2).mean()),
    }


def save_denoising_grid(
    noisy: Tensor,
    denoised: Tensor,
    clean: Tensor,
    path: str | os.PathLike,
    image_shape: tuple[int, int] | None = None,
) -> str:
    """One PNG: a row of noisy images, the denoised row under it, the clean row last (``N``
    columns). Flat inputs need ``image_shape`` (H, W)."""
    from .images import save_image_grid

    if not noisy.shape == denoised.shape == clean.shape:
        raise ValueError(
            f"`noisy`, `denoised` and `clean` must share a shape; got {tuple(noisy.shape)}, "
            f"{tuple(denoised.shape)}, {tuple(clean.shape)}"
        )
    n = len(clean)
    rows = [t.detach().float().cpu() for t in (noisy, denoised, clean)]
    if image_shape is not None:
        rows = [r.reshape(n, *image_shape) for r in rows]
    stacked = torch.cat(rows).reshape(3 * n, *rows[0].shape[-2:])
    return save_image_grid(stacked, path, nrow=n, value_range=(0.0, 1.0))
