"""Loss terms as pure functions, each with its formula in the docstring.

Sections: autoencoder penalties (Rifai et al. 2011 contractive penalty; Ng's KL sparsity
target, as in the UFLDL sparse-autoencoder notes), and the VAE / GAN losses.
"""

from __future__ import annotations

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
    return (
        rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
    ).sum()


# --- end autoencoder penalties ---
