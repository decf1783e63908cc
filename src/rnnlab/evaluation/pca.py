"""PCA and the tools that compare a linear autoencoder with it.

- :func:`pca`: principal components by SVD of the centred data,
  :math:`X - \\bar x = U S V^\\top`, components = rows of :math:`V^\\top`, explained variance
  :math:`s_i^2 / (N - 1)` (the sklearn convention).
- :func:`principal_angles`: angles between two column spaces (Björck & Golub 1973), cosines
  from the singular values of :math:`Q_A^\\top Q_B`, small angles from the sines of
  :math:`(I - Q_A Q_A^\\top) Q_B` for accuracy (the scheme of ``scipy.linalg.subspace_angles``).
- :func:`linear_ae_principal_directions`: Kunin et al. 2019 ("Loss landscapes of regularized
  linear autoencoders"): with L2 regularisation the left singular vectors of the decoder
  weight, ordered by singular value, are the principal directions.
- :func:`reconstruction_mse_pca`: test error of the rank-k PCA reconstruction
  :math:`\\hat x = \\bar x + (x - \\bar x) V_k^\\top V_k`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def _as_matrix(a: Tensor | np.ndarray, name: str) -> Tensor:
    t = torch.as_tensor(a)
    if t.dim() != 2:
        raise ValueError(f"`{name}` must be a 2-D matrix; got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    return t


def _fix_signs(columns: Tensor) -> Tensor:
    """Flip each column so its largest-magnitude entry is positive (a deterministic sign)."""
    idx = columns.abs().argmax(dim=0)
    signs = torch.sign(columns[idx, torch.arange(columns.shape[1])])
    signs[signs == 0] = 1
    return columns * signs


def pca(x: Tensor | np.ndarray, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """Top-``k`` principal components of ``x`` (N, D).

    Returns ``components (k, D)`` (orthonormal rows, sign fixed so the largest entry of each
    is positive), ``explained_variance (k,)`` and ``mean (D,)``.
    """
    x = _as_matrix(x, "x")
    n, d = x.shape
    if not 1 <= k <= min(n, d):
        raise ValueError(f"`k` must be in [1, min(N, D) = {min(n, d)}]; got {k}")
    if n < 2:
        raise ValueError(f"`x` needs at least 2 rows; got {n}")
    mean = x.mean(dim=0)
    _, s, vh = torch.linalg.svd(x - mean, full_matrices=False)
    components = _fix_signs(vh[:k].T).T
    return components, s[:k].pow(2) / (n - 1), mean


def _orth(a: Tensor) -> Tensor:
    u, s, _ = torch.linalg.svd(a, full_matrices=False)
    tol = s.max() * max(a.shape) * torch.finfo(a.dtype).eps if s.numel() else 0.0
    rank = int((s > tol).sum())
    if rank == 0:
        raise ValueError("matrix for principal_angles has rank 0")
    return u[:, :rank]


def principal_angles(a: Tensor | np.ndarray, b: Tensor | np.ndarray) -> Tensor:
    """Principal angles in degrees, ascending, between the column spaces of ``a`` (D, p) and
    ``b`` (D, q); ``min(rank a, rank b)`` angles. Computed in float64."""
    a = _as_matrix(a, "a").to(torch.float64)
    b = _as_matrix(b, "b").to(torch.float64)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"`a` and `b` need the same row count; got {a.shape[0]} and {b.shape[0]}")
    qa, qb = _orth(a), _orth(b)
    if qa.shape[1] < qb.shape[1]:
        qa, qb = qb, qa  # qb spans the smaller space
    cos = torch.linalg.svdvals(qa.T @ qb).clamp(max=1.0)  # descending -> angles ascending
    sin = torch.linalg.svdvals(qb - qa @ (qa.T @ qb)).clamp(max=1.0).flip(0)
    angles = torch.where(cos.pow(2) >= 0.5, torch.arcsin(sin), torch.arccos(cos))
    return torch.rad2deg(angles)


def linear_ae_principal_directions(decoder_weight: Tensor | np.ndarray) -> Tensor:
    """Principal directions ``(D, k)`` recovered from a linear AE's decoder ``W_2`` (D, k):
    left singular vectors ordered by singular value, sign fixed as in :func:`pca`.

    Only meaningful for an L2-regularised linear AE (Kunin et al. 2019); without
    regularisation use :func:`principal_angles` to compare subspaces instead.
    """
    w = _as_matrix(decoder_weight, "decoder_weight").detach()
    if w.shape[1] > w.shape[0]:
        raise ValueError(f"`decoder_weight` must be (D, k) with k <= D; got {tuple(w.shape)}")
    u, _, _ = torch.linalg.svd(w, full_matrices=False)
    return _fix_signs(u)


def reconstruction_mse_pca(
    x_train: Tensor | np.ndarray, x_test: Tensor | np.ndarray, k: int
) -> float:
    """Mean squared error per element of ``x_test`` reconstructed from the top-``k`` PCA
    subspace fitted on ``x_train``."""
    x_test = _as_matrix(x_test, "x_test")
    components, _, mean = pca(x_train, k)
    if x_test.shape[1] != components.shape[1]:
        raise ValueError(f"`x_test` must have {components.shape[1]} columns; got {x_test.shape[1]}")
    centred = x_test.to(components.dtype) - mean
    recon = centred @ components.T @ components
    return float((recon - centred).pow(2).mean())
