"""Figures of a VAE's 2-D latent space, the Keras VAE example's two: ``latent_map`` (posterior
means of labelled data) and ``manifold_grid`` (decoded images over the prior's quantiles,
Kingma & Welling 2014, Fig. 4). They take any model with ``latent_dim``, ``encode``,
``decode`` and ``data_shape`` (:class:`rnnlab.models.vae.VAE`, ``ConvVAE``)."""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import Tensor, nn

from rnnlab.utils import save_figure

__all__ = ["latent_map", "manifold_grid"]


def _check_2d(model: nn.Module) -> None:
    if model.latent_dim != 2:
        raise ValueError(f"`model.latent_dim` must be 2 for this plot; got {model.latent_dim}")


@torch.no_grad()
def latent_map(model: nn.Module, x: Tensor, y: Tensor | np.ndarray, path: str | os.PathLike) -> str:
    """Scatter the posterior means of ``x`` in a 2-D latent space, coloured by label ``y``."""
    from matplotlib.figure import Figure  # Agg canvas, no pyplot state

    _check_2d(model)
    if len(y) != len(x):
        raise ValueError(f"`y` must have one label per row of `x` ({len(x)}); got {len(y)}")
    mu, _ = model.encode(model._check_x(x))
    mu = mu.cpu().numpy()
    fig = Figure(figsize=(6, 5))
    ax = fig.subplots()
    points = ax.scatter(mu[:, 0], mu[:, 1], c=np.asarray(y), cmap="tab10", s=4)
    fig.colorbar(points, ax=ax)
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    return str(save_figure(fig, path))


@torch.no_grad()
def manifold_grid(
    model: nn.Module, path: str | os.PathLike, n: int = 15, quantile: float = 0.05
) -> str:
    """Decode an ``n x n`` grid of a 2-D latent space at the N(0, 1) quantiles
    ``quantile .. 1 - quantile`` on each axis (so the grid covers the prior's mass) and save
    the mean images, tiled, as a PNG. Needs image-shaped output ``(C, H, W)`` or ``(H, W)``."""
    _check_2d(model)
    from matplotlib.figure import Figure
    from scipy.stats import norm

    if len(model.data_shape) not in (2, 3):
        raise ValueError(f"`model.data_shape` must be (H, W) or (C, H, W); got {model.data_shape}")
    p = next(model.parameters())
    axis = torch.as_tensor(norm.ppf(np.linspace(quantile, 1 - quantile, n)), dtype=p.dtype)
    zy, zx = torch.meshgrid(axis.flip(0), axis, indexing="ij")  # top row = largest z[1]
    z = torch.stack([zx.reshape(-1), zy.reshape(-1)], dim=1).to(p.device)
    imgs = model.decode(z).cpu()
    h, w = model.data_shape[-2:]
    imgs = imgs.reshape(n, n, -1, h, w)[:, :, 0]  # first channel: (n, n, H, W)
    tiled = imgs.permute(0, 2, 1, 3).reshape(n * h, n * w).numpy()
    fig = Figure(figsize=(6, 6))
    ax = fig.subplots()
    ax.imshow(tiled, cmap="gray")
    ax.set_axis_off()
    return str(save_figure(fig, path))
