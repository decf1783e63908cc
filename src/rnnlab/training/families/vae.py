"""vae: the variational autoencoder (Kingma & Welling 2014; :mod:`rnnlab.models.vae`) on
images (B, 1, H, W) in [0, 1]. The step minimises the beta-weighted negative ELBO (Higgins et
al. 2017) through the one update path; eval reports it and the negative ELBO at beta = 1
(nats per example). ``train.iw_k`` > 0 adds the importance-weighted test NLL (Burda et al.
2016) of the dynamically binarized test images after training (``test_nll_binarized``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnlab.models.vae import VAE, ConvVAE, binarized_iw_nll

from ..config import Config
from ..update import Update
from . import DataSpec, StepContext, keyset
from ._common import IMAGE_GEN_KEYS, SIZE_KEYS, image_family, square
from ._samples import pairs

__all__ = ["FAMILY", "importance_weighted_test_nll", "vae_eval", "vae_step"]


def _first(batch) -> Tensor:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def model_input(cfg: Config, images: Tensor) -> Tensor:
    return images[:, None]


def build_model(cfg: Config, spec: DataSpec) -> nn.Module:
    m, example = cfg.model, spec.example
    if m.kind == "conv":
        return ConvVAE(1, square(example, "a conv VAE"), m.latent_dim, m.base_channels,
                       m.likelihood)  # fmt: skip
    hidden = (m.hidden_size,) * m.num_layers
    return VAE(example.numel(), m.latent_dim, hidden, m.likelihood, tuple(example.shape))


def vae_step(
    model: nn.Module, batch, optimizer, *, beta: float = 1.0, update: Update | None = None
) -> dict[str, float]:
    """One update on the negative ELBO (``model.elbo(x, beta)``); ``batch`` is ``x`` or
    ``(x, y)``. Returns ``{"loss", "reconstruction", "kl", "grad_norm"}`` (nats per example)."""
    update = update or Update()
    model.train()
    with update.autocast():
        loss, parts = model.elbo(_first(batch), beta=beta)
    parts = {k: v.item() for k, v in parts.items()}
    return {"loss": loss.item(), **parts, **update(loss, model, optimizer)}


@torch.no_grad()
def vae_eval(model: nn.Module, batch, *, beta: float = 1.0) -> dict[str, float]:
    """``loss`` (the training objective), ``neg_elbo`` (beta = 1) and its two parts."""
    model.eval()
    x = batch[0]
    loss, parts = model.elbo(x, beta=beta)
    neg_elbo, parts = model.elbo(x, beta=1.0) if beta != 1.0 else (loss, parts)
    return {"loss": loss.item(), "neg_elbo": neg_elbo.item(),
            **{k: v.item() for k, v in parts.items()}}  # fmt: skip


def importance_weighted_test_nll(model: nn.Module, batches, k: int, device) -> float:
    """Mean test NLL in nats of a Bernoulli VAE over ``batches``: the images binarized once
    (seed 0) and scored by the IWAE bound with ``k`` samples, exactly as ``rnnlab evaluate``
    scores them (:func:`rnnlab.models.vae.binarized_iw_nll`, with its progress lines); never
    the grey levels, whose "NLL" is a cross-entropy. The global generator is left alone."""
    x = torch.cat([_first(batch) for batch in batches])
    return binarized_iw_nll(model.to(device), x, k, seed=0, progress=True)


def finish(cfg: Config, model, test_batches, device, dry_run: bool) -> dict[str, float]:
    """``test_nll_binarized`` (train.iw_k > 0, Bernoulli decoders only: a Gaussian
    decoder's density on binary images is not a probability)."""
    if cfg.train.iw_k <= 0 or getattr(model, "likelihood", "") != "bernoulli":
        return {}
    k = min(cfg.train.iw_k, 8) if dry_run else cfg.train.iw_k
    return {"test_nll_binarized": importance_weighted_test_nll(model, test_batches, k, device)}


def generate(model: nn.Module, z: Tensor, labels: Tensor | None = None) -> Tensor:
    """Images in [0, 1] for latents ``z`` (N, latent_dim): the decoder's means."""
    return model.decode(z)


def _draw(model, x, y, n, rng) -> dict[str, Tensor]:
    z = torch.randn(n, model.latent_dim, generator=rng).to(x.device)
    return {"reconstructions": pairs(x, model.reconstruct(x)), "samples": generate(model, z)}


def steps(cfg: Config, ctx: StepContext):
    return ctx.bind(vae_step, vae_eval, beta=cfg.train.beta)


FAMILY = image_family(
    model_input,
    _draw,
    name="vae",
    description="variational autoencoders: negative ELBO; samples and IW-NLL",
    kinds=("mlp", "conv"),
    build_model=build_model,
    steps=steps,
    keys=SIZE_KEYS | IMAGE_GEN_KEYS | keyset("model.likelihood train.beta train.iw_k"),
    supports=frozenset({"samples", "generation", "likelihood"}),
    finish=finish,
    generate=generate,
)
