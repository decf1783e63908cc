"""vaegan: the VAE-GAN of Larsen et al. 2016 (:mod:`rnnlab.models.vaegan`) on images in
[-1, 1]. Algorithm 1: three losses at the same parameters, each differentiated only w.r.t.
its own part (encoder, decoder, discriminator), through
:meth:`~rnnlab.training.update.Update.many` (all gradients first, then every part steps), so
e.g. the discriminator is never moved by the decoder's loss."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnlab.models.vaegan import VAEGAN

from ..config import Config
from ..update import Update
from . import DataSpec, StepContext, keyset
from ._common import DCGAN_LAYERS, IMAGE_GEN_KEYS, image_family, square
from ._samples import pairs
from .gan import signed_images

__all__ = ["FAMILY", "parts", "vaegan_eval", "vaegan_step"]

NAMES = ("encoder", "decoder", "discriminator")


def build_model(cfg: Config, spec: DataSpec) -> nn.Module:
    m = cfg.model
    side = square(spec.example, "VAE-GAN")
    return VAEGAN(m.latent_dim, 1, side, m.base_channels, DCGAN_LAYERS, cfg.train.vaegan_gamma)


def parts(model: VAEGAN) -> dict[str, nn.Module]:
    """The three parts as modules (each one optimizer's): not registered, so the state dict
    stays the model's own."""
    return {
        "encoder": nn.ModuleList([model.encoder, model.to_mu, model.to_logvar]),
        "decoder": model.generator,
        "discriminator": model.discriminator,
    }


def vaegan_step(
    model: nn.Module,
    batch,
    opt_enc: torch.optim.Optimizer,
    opt_dec: torch.optim.Optimizer,
    opt_dis: torch.optim.Optimizer,
    *,
    gamma: float | None = None,
    gan_loss: str = "non_saturating",
    generator_rng: torch.Generator | None = None,
    update: Update | None = None,
) -> dict[str, float]:
    """One VAE-GAN iteration (Larsen et al. 2016, Algorithm 1); the three optimizers hold
    :func:`parts`. Returns the three losses, their parts and each part's gradient norm."""
    update = update or Update()
    model.train()
    x = batch[0] if isinstance(batch, (tuple, list)) else batch
    losses = model.losses(x, gamma=gamma, gan_loss=gan_loss, rng=generator_rng)
    modules, opts = parts(model), dict(zip(NAMES, (opt_enc, opt_dec, opt_dis), strict=True))
    stepped = update.many({k: (losses[k], modules[k], opts[k]) for k in NAMES})
    out = {f"{k}_loss" if k in NAMES else k: v.item() for k, v in losses.items()}
    out |= {f"{k}_{m}": v for k, ms in stepped.items() for m, v in ms.items()}
    return out


def vaegan_train(model, batch, optimizer, *, gan_loss: str, update: Update) -> dict[str, float]:
    return vaegan_step(model, batch, *(optimizer[k] for k in NAMES), gan_loss=gan_loss,
                       update=update)  # fmt: skip


@torch.no_grad()
def vaegan_eval(model, batch, *, gan_loss: str = "non_saturating") -> dict[str, float]:
    """The three losses of Larsen et al.'s Algorithm 1 and their parts, in eval mode."""
    model.eval()
    rng = torch.Generator().manual_seed(0)
    losses = model.losses(batch[0], gan_loss=gan_loss, rng=rng)
    return {f"{k}_loss" if k in NAMES else k: v.item() for k, v in losses.items()}


def generate(model: VAEGAN, z: Tensor, labels: Tensor | None = None) -> Tensor:
    """Images in [0, 1]: ``(G(z) + 1) / 2``."""
    return (model.generator(z) + 1) / 2


def _draw(model, x, y, n, rng) -> dict[str, Tensor]:
    z = torch.randn(n, model.latent_dim, generator=rng).to(x.device)
    return {"reconstructions": pairs(x, model.reconstruct(x)), "samples": model.generator(z)}


def steps(cfg: Config, ctx: StepContext):
    return ctx.bind(vaegan_train, vaegan_eval, gan_loss=cfg.train.gan_loss)


FAMILY = image_family(
    signed_images,
    _draw,
    signed=True,
    name="vaegan",
    description="VAE-GAN (Larsen et al. 2016): encoder, decoder and discriminator losses",
    kinds=("dcgan",),
    build_model=build_model,
    steps=steps,
    keys=IMAGE_GEN_KEYS | keyset("train.gan_loss train.vaegan_gamma"),
    supports=frozenset({"samples", "generation"}),
    monitor=False,
    parts=parts,
    beta1=0.5,
    summary_input=lambda cfg, spec: None,  # three parts, no single forward to trace
    generate=generate,
)
