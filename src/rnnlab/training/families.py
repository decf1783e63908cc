"""The generative families of the one training loop: ``autoencode``, ``vae``, ``gan`` and
``vaegan``. Each family gives :mod:`.experiment` what the classify family gets from
:mod:`.steps`: how images become model input, the model, its optimizer parts, a train step
``(model, batch, optimizer)`` and an eval step ``(model, batch)``. Sample and reconstruction
grids are drawn by :mod:`.samples`.

- autoencode (:mod:`rnnlab.models.autoencoders`): images flattened for the MLP kinds, (B, 1,
  H, W) for ``conv``, rows (B, H, W) for ``lstm``; loss ``model.loss(x)``; eval reports the
  reconstruction MSE (``mse``) beside the loss.
- vae (:mod:`rnnlab.models.vae`, Kingma & Welling 2014): ``vae_step`` on the beta-weighted
  negative ELBO; eval reports the negative ELBO (beta = 1, nats per example).
- gan (:mod:`rnnlab.models.gans`): Listing 5.5's MLP GAN or DCGAN (Radford et al. 2016),
  optionally conditional and with minibatch discrimination; images scaled to [-1, 1] (tanh);
  ``gan_step`` with two optimizers (G and D), Adam lr 2e-4 beta1 0.5 by default.
- vaegan (:mod:`rnnlab.models.vaegan`, Larsen et al. 2016): three optimizers.

Multi-optimizer families train a container module (:class:`GAN`, or ``VAEGAN`` itself) with a
:class:`~.optim.MultiOptimizer`, so checkpoints and ``--resume`` work unchanged. All of them
run in one process (their steps call methods, not ``forward``, which DDP cannot see).
"""

from __future__ import annotations

import contextlib
import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.losses import gan_discriminator_loss, gan_generator_loss

from . import generative_steps as gs
from .config import Config, ConfigError
from .steps import update

__all__ = [
    "FAMILIES", "GAN", "build_model", "check_kind", "model_input", "optimizer_parts", "pretrain",
    "steps_for",
]  # fmt: skip

FAMILIES: dict[str, tuple[str, ...]] = {
    "autoencode": (
        "basic", "deep", "stacked", "denoising", "contractive", "sparse", "linear", "conv", "lstm",
    ),
    "vae": ("mlp", "conv"),
    "gan": ("mlp", "dcgan"),
    "vaegan": ("dcgan",),
}  # fmt: skip
SIGNED = ("gan", "vaegan")  # families whose images live in [-1, 1] (tanh generators)
DCGAN_LAYERS = 2  # stride-2 blocks of DCGAN / VAE-GAN: 28 -> 14 -> 7, 8 -> 4 -> 2


def check_kind(cfg: Config) -> None:
    """Raise :class:`ConfigError` when ``model.kind`` is not one of the family's kinds."""
    kinds = FAMILIES[cfg.model.family]
    if cfg.model.kind not in kinds:
        raise ConfigError(
            f"`model.kind` for family {cfg.model.family!r} must be one of {', '.join(kinds)}, "
            f"got {cfg.model.kind!r}"
        )


def model_input(cfg: Config, images: Tensor) -> Tensor:
    """Images (N, H, W) in [0, 1] as the family's model reads them."""
    family, kind = cfg.model.family, cfg.model.kind
    if family == "autoencode":
        if kind == "lstm":
            return images  # one row per step
        return images[:, None] if kind == "conv" else images.flatten(1)
    x = images[:, None]  # (N, 1, H, W)
    return x * 2 - 1 if family in SIGNED else x


class GAN(nn.Module):
    """The container a GAN trains as: ``generator`` and ``discriminator`` (one state dict)."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module, z_dim: int, n_classes: int):
        super().__init__()
        self.generator, self.discriminator = generator, discriminator
        self.z_dim, self.n_classes = z_dim, n_classes

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.generator(z) if labels is None else self.generator(z, labels=labels)

    def labels_of(self, batch) -> Tensor | None:
        return batch[1] if self.n_classes else None


def _square(example: Tensor, what: str) -> int:
    side = example.shape[-1]
    if example.shape[-2] != side:
        raise ConfigError(f"{what} needs square images, got {tuple(example.shape[-2:])}")
    return side


def _autoencoder(cfg: Config, example: Tensor) -> nn.Module:
    from rnnlab.models import autoencoders as ae

    m, kind = cfg.model, cfg.model.kind
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


def build_model(cfg: Config, example: Tensor, num_classes: int) -> nn.Module:
    """The family's model for one ``example`` of :func:`model_input` (no batch dim)."""
    check_kind(cfg)
    m, family = cfg.model, cfg.model.family
    if family == "autoencode":
        return _autoencoder(cfg, example)
    if family == "vae":
        from rnnlab.models.vae import VAE, ConvVAE

        if m.kind == "conv":
            side = _square(example, "a conv VAE")
            return ConvVAE(1, side, m.latent_dim, m.base_channels, m.likelihood)
        hidden = (m.hidden_size,) * m.num_layers
        return VAE(example.numel(), m.latent_dim, hidden, m.likelihood, tuple(example.shape))
    if family == "vaegan":
        from rnnlab.models.vaegan import VAEGAN

        side = _square(example, "VAE-GAN")
        return VAEGAN(m.latent_dim, 1, side, m.base_channels, DCGAN_LAYERS, cfg.train.vaegan_gamma)
    from rnnlab.models import gans

    k = num_classes if m.conditional else 0
    mb = (m.minibatch_kernels, m.minibatch_dim) if m.minibatch_kernels else None
    if m.kind == "dcgan":
        side = _square(example, "DCGAN")
        g = gans.DCGANGenerator(m.latent_dim, 1, side, m.base_channels, DCGAN_LAYERS, k)
        d = gans.DCGANDiscriminator(1, side, m.base_channels, DCGAN_LAYERS, k, minibatch=mb)
    else:
        hidden, shape = (m.hidden_size,) * m.num_layers, tuple(example.shape)
        g = gans.MLPGenerator(m.latent_dim, shape, hidden, n_classes=k)
        d = gans.MLPDiscriminator(shape, hidden, n_classes=k, minibatch=mb)
    return GAN(g, d, m.latent_dim, k)


def optimizer_parts(cfg: Config, model: nn.Module) -> dict[str, list] | None:
    """``{name: parameters}`` for a family with several optimizers, else ``None``."""
    if cfg.model.family == "gan":
        return {
            "g": list(model.generator.parameters()),
            "d": list(model.discriminator.parameters()),
        }
    if cfg.model.family == "vaegan":
        return model.parts()
    return None


def pretrain(cfg: Config, model: nn.Module, x: Tensor, dry_run: bool = False) -> None:
    """Greedy layer-wise pretraining of a stacked autoencoder (Bengio et al. 2007) before the
    end-to-end epochs, ``train.pretrain_epochs`` per layer; nothing for any other model."""
    if cfg.model.family != "autoencode" or cfg.model.kind != "stacked":
        return
    epochs = min(cfg.train.pretrain_epochs, 1) if dry_run else cfg.train.pretrain_epochs
    if epochs:
        x = (x[:256] if dry_run else x).to(next(model.parameters()).device)
        model.pretrain(x, epochs, cfg.data.batch_size, cfg.train.lr, seed=cfg.train.seed)


# ----------------------------------------------------------------------------- steps
def ae_step(
    model, batch, optimizer, *, clip_norm=None, clip_value=None, amp=None
) -> dict[str, float]:
    """One step on ``model.loss(x)``; returns the loss, its parts and the gradient norm.
    ``amp``: the loss under autocast (:mod:`.precision`)."""
    model.train()
    with amp.autocast() if amp is not None else contextlib.nullcontext():
        loss, parts = model.loss(batch[0])
    parts = {k: v.detach() for k, v in parts.items()}
    norm = update(loss, model, optimizer, clip_norm=clip_norm, clip_value=clip_value, amp=amp)
    return {"loss": loss.item(), **{k: v.item() for k, v in parts.items()}, "grad_norm": norm}


@torch.no_grad()
def ae_eval(model, batch) -> dict[str, float]:
    """``loss`` (``model.loss`` in eval mode) and ``mse``, the reconstruction MSE."""
    model.eval()
    x = batch[0]
    loss, _ = model.loss(x)
    return {"loss": loss.item(), "mse": F.mse_loss(model(x), x).item()}


@torch.no_grad()
def vae_eval(model, batch, *, beta: float = 1.0) -> dict[str, float]:
    """``loss`` (the training objective), ``neg_elbo`` (beta = 1) and its two parts."""
    model.eval()
    x = batch[0]
    loss, _ = model.elbo(x, beta=beta)
    neg_elbo, parts = model.elbo(x, beta=1.0) if beta != 1.0 else (loss, _)
    return {"loss": loss.item(), "neg_elbo": neg_elbo.item(),
            **{k: v.item() for k, v in parts.items()}}  # fmt: skip


def gan_train(model: GAN, batch, optimizer, *, loss: str, label_smoothing: float) -> dict:
    """``generative_steps.gan_step`` on the container: optimizer ``g`` and ``d``."""
    return gs.gan_step(
        model.generator, model.discriminator, batch[0], optimizer["g"], optimizer["d"],
        z_dim=model.z_dim, loss=loss, label_smoothing=label_smoothing,
        labels=model.labels_of(batch),
    )  # fmt: skip


@torch.no_grad()
def gan_eval(model: GAN, batch, *, loss: str = "non_saturating") -> dict[str, float]:
    """D's and G's losses on a real batch and fakes from fixed noise (eval mode)."""
    model.eval()
    real, labels = batch[0], model.labels_of(batch)
    z = torch.randn(len(real), model.z_dim, generator=torch.Generator().manual_seed(0))
    fake = model(z.to(real), labels)
    kw = {} if labels is None else {"labels": labels}
    real_logits, fake_logits = model.discriminator(real, **kw), model.discriminator(fake, **kw)
    return {
        "d_loss": gan_discriminator_loss(real_logits, fake_logits).item(),
        "g_loss": gan_generator_loss(fake_logits, loss).item(),
        "d_real": torch.sigmoid(real_logits).mean().item(),
        "d_fake": torch.sigmoid(fake_logits).mean().item(),
    }


def vaegan_train(model, batch, optimizer, *, gan_loss: str) -> dict[str, float]:
    """``generative_steps.vaegan_step`` with the three optimizers of the container."""
    return gs.vaegan_step(
        model, batch, optimizer["encoder"], optimizer["decoder"], optimizer["discriminator"],
        gan_loss=gan_loss,
    )  # fmt: skip


@torch.no_grad()
def vaegan_eval(model, batch, *, gan_loss: str = "non_saturating") -> dict[str, float]:
    """The three losses of Larsen et al.'s Algorithm 1 and their parts, in eval mode."""
    model.eval()
    rng = torch.Generator().manual_seed(0)
    losses = model.losses(batch[0], gan_loss=gan_loss, rng=rng)
    names = ("encoder", "decoder", "discriminator")
    return {f"{k}_loss" if k in names else k: v.item() for k, v in losses.items()}


def steps_for(cfg: Config, amp=None):
    """``(train_step, eval_step)`` of a generative family (``amp``: autoencode only)."""
    t, family = cfg.train, cfg.model.family
    if family == "autoencode":
        kw = {"clip_norm": t.clip_norm, "clip_value": t.clip_value, "amp": amp}
        return functools.partial(ae_step, **kw), ae_eval
    if family == "vae":
        return (functools.partial(gs.vae_step, beta=t.beta),
                functools.partial(vae_eval, beta=t.beta))  # fmt: skip
    if family == "gan":
        train = functools.partial(gan_train, loss=t.gan_loss, label_smoothing=t.label_smoothing)
        return train, functools.partial(gan_eval, loss=t.gan_loss)
    return (functools.partial(vaegan_train, gan_loss=t.gan_loss),
            functools.partial(vaegan_eval, gan_loss=t.gan_loss))  # fmt: skip
