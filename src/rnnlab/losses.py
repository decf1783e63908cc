"""Loss terms as pure functions, each with its formula in the docstring.

Sections: autoencoder penalties (Rifai et al. 2011 contractive penalty; Ng's KL sparsity
target, as in the UFLDL sparse-autoencoder notes), and the VAE / GAN losses.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

# --- autoencoder penalties ---


def contractive_penalty_sigmoid(h: Tensor, weight: Tensor) -> Tensor:
    r"""Closed-form squared Frobenius norm of a sigmoid encoder's Jacobian (Rifai et al. 2011).

    For ``h = sigmoid(W x + b)`` with ``W`` of shape ``(H, D)`` (torch ``nn.Linear`` layout),
    ``J_ji = dh_j/dx_i = h_j (1 - h_j) W_ji``, so

    .. math:: \|J_f(x)\|_F^2 = \sum_j (h_j (1 - h_j))^2 \sum_i W_{ji}^2 .

    ``h`` is ``(B, H)``; the result is the mean over the batch (a scalar).
    """
    if h.dim() != 2 or weight.dim() != 2 or h.shape[1] != weight.shape[0]:
        raise ValueError(
            f"`h` must be (B, H) and `weight` (H, D); got h {tuple(h.shape)}, "
            f"weight {tuple(weight.shape)}"
        )
    slope_sq = (h * (1 - h)).pow(2)  # (B, H)
    row_norm_sq = weight.pow(2).sum(dim=1)  # (H,)
    return (slope_sq * row_norm_sq).sum(dim=1).mean()


def jacobian_frobenius_sq(encoder: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    r"""Mean over the batch of :math:`\|J_f(x)\|_F^2 = \sum_{j,i} (\partial f_j / \partial x_i)^2`
    by autograd, for any encoder ``f`` whose examples do not interact (no batch-norm in training).

    One backward pass per code unit ``j``: ``grad(sum_b f_j(x_b), x)`` is row ``j`` of every
    example's Jacobian. ``create_graph=True`` so the penalty can itself be trained through.
    ``x`` is ``(B, ...)``; the code ``f(x)`` is ``(B, H)`` or ``(B, ...)`` (flattened).
    """
    if x.dim() < 2:
        raise ValueError(f"`x` must be (B, ...) with a batch axis; got shape {tuple(x.shape)}")
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        z = encoder(x).reshape(x.shape[0], -1)
        total = x.new_zeros(())
        for j in range(z.shape[1]):
            (g,) = torch.autograd.grad(z[:, j].sum(), x, create_graph=True)
            total = total + g.pow(2).sum()
    return total / x.shape[0]


def kl_sparsity(codes: Tensor, rho: float, eps: float = 1e-6) -> Tensor:
    r"""KL sparsity penalty of a sparse autoencoder with code units in (0, 1).

    With the mean activation :math:`\hat\rho_j = \frac1B \sum_b h_{bj}` of unit ``j``,

    .. math:: \sum_j \rho \log\frac{\rho}{\hat\rho_j}
              + (1 - \rho) \log\frac{1 - \rho}{1 - \hat\rho_j} ,

    the KL divergence between Bernoulli(ρ) and Bernoulli(ρ̂_j), summed over units.
    ``rho_hat`` is clamped to ``[eps, 1 - eps]`` so the logarithms stay finite.
    """
    if not 0.0 < rho < 1.0:
        raise ValueError(f"`rho` must be in (0, 1); got {rho}")
    if codes.dim() != 2:
        raise ValueError(f"`codes` must be (B, H); got shape {tuple(codes.shape)}")
    rho_hat = codes.mean(dim=0).clamp(eps, 1 - eps)
    return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


# --- end autoencoder penalties ---


# --- VAE and GAN losses ---
# Per-example terms return shape (B,): sums over every non-batch axis (a log-likelihood of one
# image is a sum over its pixels; averaging over pixels instead silently rescales the KL weight,
# orybkin/sigma-vae-pytorch#12). Callers average over the batch.

_LOG_2PI = 1.8378770664093453  # log(2 pi)


def _flat(t: Tensor) -> Tensor:
    return t.reshape(t.shape[0], -1)


def kl_standard_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    r"""KL(q(z|x) || p(z)) for a diagonal Gaussian posterior against N(0, I), per example.

    Closed form (Kingma & Welling 2014, *Auto-Encoding Variational Bayes*, Appendix B):

    .. math:: \mathrm{KL} = \tfrac12 \sum_j \left(\mu_j^2 + \sigma_j^2 - 1 - \log\sigma_j^2\right)

    ``mu`` and ``logvar`` are ``(B, J)``; the result is ``(B,)`` in nats.
    """
    if mu.shape != logvar.shape:
        raise ValueError(
            f"`mu` and `logvar` must have the same shape; got {tuple(mu.shape)} "
            f"and {tuple(logvar.shape)}"
        )
    return 0.5 * _flat(mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def bernoulli_nll(logits: Tensor, x: Tensor) -> Tensor:
    r"""-log p(x|z) of a Bernoulli decoder with logits ``l``, per example, in nats:

    .. math:: -\sum_i \left[x_i \log\sigma(l_i) + (1 - x_i)\log(1 - \sigma(l_i))\right]

    computed as BCE-with-logits (stable for large ``|l|``). A true log-likelihood only for
    binary ``x`` (pytorch/examples#460); on grey levels it is a cross-entropy.
    """
    if logits.shape != x.shape:
        raise ValueError(
            f"`logits` and `x` must have the same shape; got {tuple(logits.shape)} "
            f"and {tuple(x.shape)}"
        )
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return _flat(bce).sum(dim=1)


def iwae_nll(log_w: Tensor) -> Tensor:
    r"""The importance-weighted bound on -log p(x) (Burda et al. 2016, eq. 8), in nats.

    ``log_w`` is ``(k, B)``: ``log_w[i, b] = log p(x_b|z_i) + log p(z_i) - log q(z_i|x_b)``
    for ``k`` draws ``z_i ~ q(z|x_b)``. Returns ``(B,)``:

    .. math:: -\log \frac1k \sum_{i=1}^k w_i = -\left(\operatorname{logsumexp}_i \log w_i
              - \log k\right),

    an upper bound on -log p(x) that is exact when every weight equals p(x) (q the true
    posterior) and tightens as ``k`` grows; ``k = 1`` is the one-sample negative ELBO.
    """
    if log_w.dim() != 2 or log_w.shape[0] < 1:
        raise ValueError(f"`log_w` must be (k, B) with k >= 1; got {tuple(log_w.shape)}")
    return -(torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0]))


def gaussian_nll(mean: Tensor, x: Tensor, log_scale: Tensor | float = 0.0) -> Tensor:
    r"""-log N(x; mean, s^2 I) per example, in nats, with ``log_scale = log s``:

    .. math:: \sum_i \left[\frac{(x_i - m_i)^2}{2 s^2} + \log s + \tfrac12\log 2\pi\right]

    ``log_scale`` is a scalar or broadcasts against ``x`` (a learned scalar gives the
    sigma-VAE of Rybkin et al. 2021).
    """
    if mean.shape != x.shape:
        raise ValueError(
            f"`mean` and `x` must have the same shape; got {tuple(mean.shape)} and {tuple(x.shape)}"
        )
    log_scale = torch.as_tensor(log_scale, dtype=x.dtype, device=x.device)
    nll = 0.5 * ((x - mean) * torch.exp(-log_scale)).pow(2) + log_scale + 0.5 * _LOG_2PI
    return _flat(nll.expand_as(x)).sum(dim=1)


def gan_discriminator_loss(
    real_logits: Tensor, fake_logits: Tensor, label_smoothing: float = 0.0
) -> Tensor:
    r"""Discriminator loss of Goodfellow et al. 2014 on logits ``l = logit D(x)``:

    .. math:: -\mathbb{E}_x[(1-\epsilon)\log D(x) + \epsilon\log(1 - D(x))]
              - \mathbb{E}_z[\log(1 - D(G(z)))]

    as BCE-with-logits, with one-sided label smoothing ``epsilon`` on the real targets
    (Salimans et al. 2016, section 3.4: real target ``1 - epsilon``, fake target 0).
    """
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"`label_smoothing` must be in [0, 1); got {label_smoothing}")
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    real = bce(real_logits, torch.full_like(real_logits, 1.0 - label_smoothing))
    fake = bce(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def gan_generator_loss(fake_logits: Tensor, kind: str = "non_saturating") -> Tensor:
    r"""Generator loss on ``l = logit D(G(z))`` (Goodfellow et al. 2014, section 3):

    - ``"minimax"``: minimise :math:`\mathbb{E}_z \log(1 - D(G(z))) = -\mathbb{E}\,
      \mathrm{softplus}(l)`, the game's own objective; its gradient vanishes when D
      rejects the samples confidently (early training).
    - ``"non_saturating"``: minimise :math:`-\mathbb{E}_z \log D(G(z)) =
      \mathbb{E}\,\mathrm{softplus}(-l)`, i.e. BCE against target 1 (Listing 5.5's combined
      model compiled with ``binary_crossentropy`` and real labels).
    """
    if kind == "non_saturating":
        return torch.nn.functional.softplus(-fake_logits).mean()
    if kind == "minimax":
        return -torch.nn.functional.softplus(fake_logits).mean()
    raise ValueError(f"`kind` must be 'non_saturating' or 'minimax'; got {kind!r}")


# --- end VAE and GAN losses ---
