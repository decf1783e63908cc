"""PCA, principal angles and linear-AE direction recovery vs sklearn / scipy."""

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA

from rnnlab.evaluation.pca import (
    linear_ae_principal_directions,
    pca,
    principal_angles,
    reconstruction_mse_pca,
)
from rnnlab.models.autoencoders import LinearAutoencoder, train_autoencoder


def low_rank_data(n=200, d=10, rank=3, noise=0.01, seed=0):
    """Centred rank-``rank`` data with well separated variances plus small isotropic noise."""
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(d, rank, generator=g))
    scales = torch.tensor([3.0, 2.0, 1.0])[:rank]
    x = (torch.randn(n, rank, generator=g) * scales) @ basis.T
    x = x + noise * torch.randn(n, d, generator=g)
    return x - x.mean(dim=0)


def test_pca_matches_sklearn():
    x = torch.randn(60, 7, dtype=torch.float64) @ torch.randn(7, 7, dtype=torch.float64)
    comps, var, mean = pca(x, 4)
    ref = PCA(n_components=4, svd_solver="full").fit(x.numpy())
    signs = np.sign((comps.numpy() * ref.components_).sum(axis=1))
    np.testing.assert_allclose(comps.numpy(), ref.components_ * signs[:, None], atol=1e-10)
    np.testing.assert_allclose(var.numpy(), ref.explained_variance_, rtol=1e-10)
    np.testing.assert_allclose(mean.numpy(), ref.mean_, atol=1e-12)


def test_pca_rejects_bad_k():
    with pytest.raises(ValueError, match="`k`"):
        pca(torch.randn(5, 3), 4)


def test_principal_angles_match_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(12, 3)), rng.normal(size=(12, 5))
    got = principal_angles(a, b).numpy()
    ref = np.sort(np.rad2deg(subspace_angles(a, b)))
    np.testing.assert_allclose(got, ref, atol=1e-10)
    # tiny angles: the sine branch keeps them accurate
    c = a + 1e-9 * rng.normal(size=a.shape)
    np.testing.assert_allclose(
        principal_angles(a, c).numpy(), np.sort(np.rad2deg(subspace_angles(a, c))), atol=1e-10
    )
    assert principal_angles(a, a @ rng.normal(size=(3, 3))).max() < 1e-6


def test_reconstruction_mse_pca_full_rank_is_zero():
    x = torch.randn(30, 4, dtype=torch.float64)
    assert reconstruction_mse_pca(x, x, 4) < 1e-20
    assert reconstruction_mse_pca(x, x, 1) > reconstruction_mse_pca(x, x, 3)


@pytest.mark.parametrize("weight_decay", [0.0, 0.02])
def test_linear_ae_spans_pca_subspace(weight_decay):
    torch.manual_seed(0)
    x = low_rank_data()
    model = LinearAutoencoder(10, 3, weight_decay=weight_decay, bias=False)
    train_autoencoder(model, x, epochs=300, batch_size=200, lr=0.05)
    comps, _, _ = pca(x, 3)
    w = model.decoder_weight.detach()
    assert principal_angles(w, comps.T).max() < 2.0
    if weight_decay > 0:  # Kunin et al. 2019: ordered directions from the decoder's SVD
        dirs = linear_ae_principal_directions(w)
        cos = (dirs * comps.T).sum(dim=0).abs()
        assert (cos >= 0.99).all(), cos
