"""gan: Listing 5.5's MLP GAN or DCGAN (Radford et al. 2016; :mod:`rnnlab.models.gans`),
optionally conditional (Mirza & Osindero 2014) and with minibatch discrimination (Salimans et
al. 2016), on images scaled to [-1, 1] (tanh). Two optimizers, ``g`` and ``d`` (Adam, beta1
0.5 by default). Each iteration has two labelled phases, as in pytorch/examples' dcgan and
the chapter's Listing 5.5, and each phase is one update of its own optimizer:

1. :func:`discriminator_phase`: D on a real batch and on ``fake.detach()`` (G gets no
   gradient).
2. :func:`generator_phase`: G through a *frozen* D. Keras builds a combined model after
   setting ``discriminator.trainable = False``; here D's parameters get ``requires_grad =
   False`` for the phase (restored after), so no gradient reaches them. The loss is the
   non-saturating ``-log D(G(z))`` or the minimax ``log(1 - D(G(z)))`` (Goodfellow et al.
   2014; formulas in :mod:`rnnlab.losses`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from rnnlab.losses import gan_discriminator_loss, gan_generator_loss
from rnnlab.models import gans

from ..config import Config, ConfigError
from ..update import Update
from . import DataSpec, StepContext, keyset
from ._common import DCGAN_LAYERS, GAN, IMAGE_GEN_KEYS, SIZE_KEYS, image_family, square

__all__ = [
    "FAMILY", "discriminator_phase", "frozen", "gan_eval", "gan_step", "generator_phase",
    "make_gan_optimizers", "signed_images",
]  # fmt: skip


def signed_images(cfg: Config, images: Tensor) -> Tensor:
    """Images (N, H, W) in [0, 1] as (N, 1, H, W) in [-1, 1], the range of tanh generators."""
    return images[:, None] * 2 - 1


def build_model(cfg: Config, spec: DataSpec) -> nn.Module:
    m, example = cfg.model, spec.example
    k = spec.num_classes if m.conditional else 0
    mb = (m.minibatch_kernels, m.minibatch_dim, m.minibatch_scale) if m.minibatch_kernels else None
    if m.kind == "dcgan":
        side = square(example, "DCGAN")
        g = gans.DCGANGenerator(m.latent_dim, 1, side, m.base_channels, DCGAN_LAYERS, k)
        d = gans.DCGANDiscriminator(1, side, m.base_channels, DCGAN_LAYERS, k, minibatch=mb)
    else:
        hidden, shape = (m.hidden_size,) * m.num_layers, tuple(example.shape)
        g = gans.MLPGenerator(m.latent_dim, shape, hidden, n_classes=k)
        d = gans.MLPDiscriminator(shape, hidden, n_classes=k, minibatch=mb)
    return GAN(g, d, m.latent_dim, k)


def make_gan_optimizers(
    generator: nn.Module,
    discriminator: nn.Module,
    lr: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam for G and for D with Radford et al.'s (and Listing 5.5's) lr 2e-4, beta1 0.5."""
    return (
        torch.optim.Adam(generator.parameters(), lr=lr, betas=betas),
        torch.optim.Adam(discriminator.parameters(), lr=lr, betas=betas),
    )


@contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """Set ``requires_grad = False`` on every parameter for the block; restore each flag after
    (also on error). The PyTorch form of Keras's ``trainable = False`` in a combined model."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def discriminator_phase(
    discriminator: nn.Module,
    real: Tensor,
    fake: Tensor,
    opt_d: torch.optim.Optimizer,
    *,
    label_smoothing: float = 0.0,
    labels: Tensor | None = None,
    update: Update | None = None,
) -> dict[str, float]:
    """Phase 1: one D update on ``real`` (target ``1 - label_smoothing``) and
    ``fake.detach()`` (target 0). Returns ``d_loss``, ``d_real`` = mean D(x), ``d_fake`` =
    mean D(G(z)) and ``d_grad_norm``."""
    update = update or Update()
    kw = {} if labels is None else {"labels": labels}
    real_logits = discriminator(real, **kw)
    fake_logits = discriminator(fake.detach(), **kw)
    d_loss = gan_discriminator_loss(real_logits, fake_logits, label_smoothing)
    out = update(d_loss, discriminator, opt_d)
    return {
        "d_loss": d_loss.item(),
        "d_real": torch.sigmoid(real_logits).mean().item(),
        "d_fake": torch.sigmoid(fake_logits).mean().item(),
        **{f"d_{k}": v for k, v in out.items()},
    }


def generator_phase(
    discriminator: nn.Module,
    fake: Tensor,
    opt_g: torch.optim.Optimizer,
    *,
    loss: str = "non_saturating",
    labels: Tensor | None = None,
    generator: nn.Module | None = None,
    update: Update | None = None,
) -> dict[str, float]:
    """Phase 2: one G update through the frozen D; ``fake`` must still carry G's graph.
    ``generator``: the module ``opt_g`` moves (its gradient is clipped and checked; default:
    the parameters of ``opt_g``). Returns ``g_loss`` and ``g_grad_norm``."""
    update = update or Update()
    kw = {} if labels is None else {"labels": labels}
    if generator is None:
        generator = _Params([p for g in opt_g.param_groups for p in g["params"]])
    with frozen(discriminator):
        g_loss = gan_generator_loss(discriminator(fake, **kw), loss)
        out = update(g_loss, generator, opt_g)
    return {"g_loss": g_loss.item(), **{f"g_{k}": v for k, v in out.items()}}


class _Params(nn.Module):
    """Parameters seen as a module (for an optimizer handed in without its module)."""

    def __init__(self, params: list[nn.Parameter]) -> None:
        super().__init__()
        self._list = params

    def parameters(self, recurse: bool = True):
        return iter(self._list)


def gan_step(
    generator: nn.Module,
    discriminator: nn.Module,
    real: Tensor,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    *,
    z_dim: int,
    loss: str = "non_saturating",
    label_smoothing: float = 0.0,
    labels: Tensor | None = None,
    generator_rng: torch.Generator | None = None,
    update: Update | None = None,
) -> dict[str, float]:
    """One GAN iteration: draw z ~ N(0, I) (from ``generator_rng`` if given), make one fake
    batch (conditioned on ``labels``, the real batch's classes, for a cGAN), then
    ``discriminator_phase`` and ``generator_phase`` on it. Returns both phases' metrics."""
    if loss not in ("non_saturating", "minimax"):
        raise ValueError(f"`loss` must be 'non_saturating' or 'minimax'; got {loss!r}")
    generator.train()
    discriminator.train()
    z = torch.randn(real.shape[0], z_dim, generator=generator_rng).to(real.device, real.dtype)
    fake = generator(z) if labels is None else generator(z, labels=labels)
    out = discriminator_phase(discriminator, real, fake, opt_d, label_smoothing=label_smoothing,
                              labels=labels, update=update)  # fmt: skip
    out.update(generator_phase(discriminator, fake, opt_g, loss=loss, labels=labels,
                               generator=generator, update=update))  # fmt: skip
    return out


def gan_train(model: GAN, batch, optimizer, *, loss: str, label_smoothing: float, update) -> dict:
    """:func:`gan_step` on the container: optimizers ``g`` and ``d``."""
    return gan_step(
        model.generator, model.discriminator, batch[0], optimizer["g"], optimizer["d"],
        z_dim=model.z_dim, loss=loss, label_smoothing=label_smoothing,
        labels=model.labels_of(batch), update=update,
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


def generate(model: GAN, z: Tensor, labels: Tensor | None = None) -> Tensor:
    """Images in [0, 1]: ``(G(z) + 1) / 2``; a cGAN without ``labels`` gets every class in
    turn (``arange(N) % n_classes``)."""
    if model.n_classes and labels is None:
        labels = torch.arange(len(z), device=z.device) % model.n_classes
    return (model(z, labels) + 1) / 2


def _draw(model, x, y, n, rng) -> dict[str, Tensor]:
    z = torch.randn(n, model.z_dim, generator=rng).to(x.device)
    return {"samples": generate(model, z)}


def check(cfg: Config) -> None:
    m = cfg.model
    if m.minibatch_scale and not m.minibatch_kernels:
        raise ConfigError("`model.minibatch_scale` needs `model.minibatch_kernels` > 0; it is 0")


def steps(cfg: Config, ctx: StepContext):
    t = cfg.train
    train = functools.partial(gan_train, loss=t.gan_loss, label_smoothing=t.label_smoothing,
                              update=ctx.update)  # fmt: skip
    return train, functools.partial(gan_eval, loss=t.gan_loss)


FAMILY = image_family(
    signed_images,
    _draw,
    name="gan",
    description="GANs (MLP, DCGAN; conditional, minibatch discrimination): two phases",
    kinds=("mlp", "dcgan"),
    build_model=build_model,
    steps=steps,
    keys=SIZE_KEYS
    | IMAGE_GEN_KEYS
    | keyset(
        "model.conditional model.minibatch_kernels model.minibatch_dim model.minibatch_scale "
        "train.gan_loss "
        "train.label_smoothing"
    ),
    supports=frozenset({"samples", "generation"}),
    monitor=False,
    check=check,
    parts=lambda model: {"g": model.generator, "d": model.discriminator},
    beta1=0.5,
    summary_input=lambda cfg, spec: (cfg.model.latent_dim,),  # the container's forward: z -> x
    generate=generate,
)
