"""autoencode: the autoencoders of :mod:`rnnlab.models.autoencoders` on images in [0, 1]:
flattened for the MLP kinds, (B, 1, H, W) for ``conv``, rows (B, H, W) for ``lstm``. The loss
is ``model.loss(x)`` (reconstruction plus the kind's penalty); eval reports the loss and the
reconstruction MSE (``mse``). ``stacked`` is first pretrained greedily, layer by layer
(Bengio et al. 2007), ``train.pretrain_epochs`` per layer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.models import autoencoders as ae

from ..config import Config
from ..update import Update
from . import Data, DataSpec, keyset
from ._common import IMAGE_GEN_KEYS, SIZE_KEYS, image_family
from ._samples import pairs

__all__ = ["FAMILY", "ae_eval", "ae_step"]

KINDS = ("basic", "deep", "stacked", "denoising", "contractive", "sparse", "linear", "conv", "lstm")


def model_input(cfg: Config, images: Tensor) -> Tensor:
    if cfg.model.kind == "lstm":
        return images  # one row per step
    return images[:, None] if cfg.model.kind == "conv" else images.flatten(1)


def build_model(cfg: Config, spec: DataSpec) -> nn.Module:
    m, kind, example = cfg.model, cfg.model.kind, spec.example
    out = {"reconstruction": m.reconstruction, "output_activation": "sigmoid"}
    if kind == "conv":
        channels = (m.base_channels, 2 * m.base_channels)
        return ae.ConvAutoencoder(tuple(example.shape[-2:]), m.latent_dim, channels, **out)
    if kind == "lstm":
        return ae.LSTMAutoencoder(example.shape[-1], m.hidden_size, m.latent_dim, **out)
    d = example.numel()
    if kind == "linear":
        return ae.LinearAutoencoder(d, m.latent_dim)
    sizes = [d, *([m.hidden_size] * m.num_layers), m.latent_dim]
    if kind == "deep":
        return ae.DeepAutoencoder(sizes, "relu", None, **out)
    if kind == "stacked":
        return ae.StackedAutoencoder(sizes, "sigmoid", **out)
    if kind == "denoising":
        return ae.DenoisingAutoencoder(d, m.latent_dim, m.noise, m.noise_level, **out)
    if kind == "contractive":
        return ae.ContractiveAutoencoder(d, m.latent_dim, m.contraction, **out)
    if kind == "sparse":
        return ae.SparseAutoencoder(
            d, m.latent_dim, m.sparsity, m.sparsity_weight, m.sparsity_target, **out
        )
    return ae.Autoencoder(d, m.latent_dim, **out)


def ae_step(model: nn.Module, batch, optimizer, *, update: Update | None = None) -> dict:
    """One update on ``model.loss(x)``; returns the loss, its parts and the gradient norm."""
    update = update or Update()
    model.train()
    with update.autocast():
        loss, parts = model.loss(batch[0])
    parts = {k: v.detach().item() for k, v in parts.items()}
    return {"loss": loss.item(), **parts, **update(loss, model, optimizer)}


@torch.no_grad()
def ae_eval(model: nn.Module, batch) -> dict[str, float]:
    """``loss`` (``model.loss`` in eval mode) and ``mse``, the reconstruction MSE."""
    model.eval()
    x = batch[0]
    loss, _ = model.loss(x)
    return {"loss": loss.item(), "mse": F.mse_loss(model(x), x).item()}


def prepare(cfg: Config, model: nn.Module, data: Data, dry_run: bool) -> None:
    """Greedy layer-wise pretraining of a stacked autoencoder before the end-to-end epochs."""
    if cfg.model.kind != "stacked":
        return
    epochs = min(cfg.train.pretrain_epochs, 1) if dry_run else cfg.train.pretrain_epochs
    if epochs:
        x = data.train[0]
        x = (x[:256] if dry_run else x).to(next(model.parameters()).device)
        model.pretrain(x, epochs, cfg.data.batch_size, cfg.train.lr, seed=cfg.train.seed)


def _draw(model, x, y, n, rng) -> dict[str, Tensor]:
    return {"reconstructions": pairs(x, model(x))}


FAMILY = image_family(
    model_input,
    _draw,
    name="autoencode",
    description="autoencoders on images: reconstruction loss (+ each kind's penalty)",
    kinds=KINDS,
    build_model=build_model,
    steps=lambda cfg, ctx: ctx.bind(ae_step, ae_eval),
    keys=SIZE_KEYS
    | IMAGE_GEN_KEYS
    | keyset(
        "model.reconstruction model.noise model.noise_level model.contraction model.sparsity "
        "model.sparsity_weight model.sparsity_target train.pretrain_epochs"
    ),
    supports=frozenset({"precision", "samples"}),
    prepare=prepare,
)
