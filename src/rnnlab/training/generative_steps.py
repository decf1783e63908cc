"""One optimisation step for each generative family: ``vae_step``, ``gan_step``,
``vaegan_step``, and ``make_gan_optimizers``.

The GAN step has two labelled phases, as in pytorch/examples' dcgan and the chapter's
Listing 5.5:

1. ``discriminator_phase``: D on a real batch and on ``fake.detach()`` (G gets no gradient).
2. ``generator_phase``: G through a *frozen* D. Keras builds a combined model after setting
   ``discriminator.trainable = False``; here D's parameters get ``requires_grad = False`` for
   the phase (restored after), so no gradient reaches them and their optimizer cannot move
   them. The loss is the non-saturating ``-log D(G(z))`` or the minimax ``log(1 - D(G(z)))``
   (Goodfellow et al. 2014); formulas in ``rnnlab.losses``.

``vaegan_step`` follows Larsen et al. 2016, Algorithm 1: three losses at the same parameters,
each differentiated only w.r.t. its own part (encoder, decoder, discriminator).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from rnnlab.losses import gan_discriminator_loss, gan_generator_loss


def _first(batch: Tensor | tuple | list) -> Tensor:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def vae_step(
    model: nn.Module,
    batch: Tensor | tuple | list,
    optimizer: torch.optim.Optimizer,
    *,
    beta: float = 1.0,
) -> dict[str, float]:
    """One step on the negative ELBO (``model.elbo(x, beta)``); ``batch`` is ``x`` or ``(x, y)``.
    Returns ``{"loss", "reconstruction", "kl"}`` in nats per example."""
    model.train()
    loss, parts = model.elbo(_first(batch), beta=beta)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"loss": loss.item(), **{k: v.item() for k, v in parts.items()}}


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
) -> dict[str, float]:
    """Phase 1: one D step on ``real`` (target ``1 - label_smoothing``) and ``fake.detach()``
    (target 0). Returns ``d_loss``, ``d_real`` = mean D(x), ``d_fake`` = mean D(G(z))."""
    kw = {} if labels is None else {"labels": labels}
    real_logits = discriminator(real, **kw)
    fake_logits = discriminator(fake.detach(), **kw)
    d_loss = gan_discriminator_loss(real_logits, fake_logits, label_smoothing)
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    return {
        "d_loss": d_loss.item(),
        "d_real": torch.sigmoid(real_logits).mean().item(),
        "d_fake": torch.sigmoid(fake_logits).mean().item(),
    }


def generator_phase(
    discriminator: nn.Module,
    fake: Tensor,
    opt_g: torch.optim.Optimizer,
    *,
    loss: str = "non_saturating",
    labels: Tensor | None = None,
) -> dict[str, float]:
    """Phase 2: one G step through the frozen D; ``fake`` must still carry G's graph.
    Returns ``g_loss``."""
    kw = {} if labels is None else {"labels": labels}
    with frozen(discriminator):
        g_loss = gan_generator_loss(discriminator(fake, **kw), loss)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
    return {"g_loss": g_loss.item()}


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
    out = discriminator_phase(
        discriminator, real, fake, opt_d, label_smoothing=label_smoothing, labels=labels
    )
    out.update(generator_phase(discriminator, fake, opt_g, loss=loss, labels=labels))
    return out


def vaegan_step(
    model: nn.Module,
    batch: Tensor | tuple | list,
    opt_enc: torch.optim.Optimizer,
    opt_dec: torch.optim.Optimizer,
    opt_dis: torch.optim.Optimizer,
    *,
    gamma: float | None = None,
    gan_loss: str = "non_saturating",
    generator_rng: torch.Generator | None = None,
) -> dict[str, float]:
    """One VAE-GAN iteration (Larsen et al. 2016, Algorithm 1). ``model`` is a
    ``rnnlab.models.vaegan.VAEGAN``; the three optimizers hold its ``parts()``. Each part's
    gradient comes from ``torch.autograd.grad`` of its own loss w.r.t. its own parameters only,
    so e.g. the discriminator is never moved by the decoder's loss."""
    model.train()
    losses = model.losses(_first(batch), gamma=gamma, gan_loss=gan_loss, rng=generator_rng)
    parts = model.parts()
    opts = {"encoder": opt_enc, "decoder": opt_dec, "discriminator": opt_dis}
    grads = {
        name: torch.autograd.grad(losses[name], parts[name], retain_graph=True, allow_unused=True)
        for name in opts
    }
    for name, opt in opts.items():
        opt.zero_grad(set_to_none=True)
        for p, g in zip(parts[name], grads[name], strict=True):
            p.grad = g
        opt.step()
    return {f"{k}_loss" if k in opts else k: v.item() for k, v in losses.items()}
