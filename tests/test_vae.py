"""VAE: closed-form KL, likelihoods, ELBO parts, reparameterization, IWAE NLL, plots, step."""

import math

import pytest
import torch
from matplotlib.image import imread
from torch.distributions import Bernoulli, Normal, kl_divergence

from rnnlab.evaluation.latent import latent_map, manifold_grid
from rnnlab.losses import bernoulli_nll, gaussian_nll, kl_standard_normal
from rnnlab.models.vae import VAE, ConvVAE, importance_weighted_nll
from rnnlab.training.families.vae import vae_step


def _binary(n, shape=(1, 8, 8)):
    return torch.rand(n, *shape).bernoulli()


def test_kl_matches_torch_distributions():
    mu, logvar = torch.randn(5, 3), torch.randn(5, 3)
    q = Normal(mu, torch.exp(0.5 * logvar))
    p = Normal(torch.zeros(3), torch.ones(3))
    want = kl_divergence(q, p).sum(-1)
    torch.testing.assert_close(kl_standard_normal(mu, logvar), want)


def test_likelihoods_match_torch_distributions():
    logits, x = torch.randn(4, 1, 3, 3), torch.rand(4, 1, 3, 3).bernoulli()
    want = -Bernoulli(logits=logits).log_prob(x).sum((1, 2, 3))
    torch.testing.assert_close(bernoulli_nll(logits, x), want)
    mean, y = torch.randn(4, 6), torch.randn(4, 6)
    want = -Normal(mean, math.exp(0.3)).log_prob(y).sum(1)
    torch.testing.assert_close(gaussian_nll(mean, y, torch.tensor(0.3)), want)
    with pytest.raises(ValueError, match="logits"):
        bernoulli_nll(logits, x[:, 0])


def test_elbo_parts_add_up():
    model = VAE(64, 3, hidden=(16,), data_shape=(1, 8, 8))
    x = _binary(6)
    for beta in (1.0, 4.0):
        loss, parts = model.elbo(x, beta=beta)
        assert set(parts) == {"reconstruction", "kl"}
        torch.testing.assert_close(loss.detach(), parts["reconstruction"] + beta * parts["kl"])
    mu, logvar = model.encode(x)
    torch.testing.assert_close(parts["kl"], kl_standard_normal(mu, logvar).mean())


def test_reparameterization_statistics():
    mu = torch.tensor([[1.0, -2.0]]).expand(20000, 2)
    logvar = torch.log(torch.tensor([[0.25, 4.0]])).expand(20000, 2)
    z = VAE.reparameterize(mu, logvar, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(z.mean(0), torch.tensor([1.0, -2.0]), atol=0.05, rtol=0)
    torch.testing.assert_close(z.var(0), torch.tensor([0.25, 4.0]), atol=0, rtol=0.05)


def test_iwae_k1_is_negative_elbo_in_expectation_and_tightens_with_k():
    # an untrained model with a sharp decoder: q(z|x) is far from the true posterior, so the
    # IWAE bound has room to tighten
    model = VAE(16, 2, hidden=(8,))
    with torch.no_grad():
        model.decoder[-1].weight.mul_(8.0)
    reps = torch.rand(4, 16).bernoulli().repeat(2000, 1)  # many estimates of 4 examples
    with torch.no_grad():
        neg_elbo = model.elbo(reps)[0].item()
    nll1 = importance_weighted_nll(model, reps, k=1).mean().item()
    assert nll1 == pytest.approx(neg_elbo, rel=0.01)
    nll10 = importance_weighted_nll(model, reps[:2000], k=10, batch_k=3).mean().item()
    nll100 = importance_weighted_nll(model, reps[:400], k=100, batch_k=40).mean().item()
    assert nll10 < nll1 - 1.0
    assert nll100 < nll10 - 0.05
    assert model.training  # restored


def test_shapes_sample_reconstruct_interpolate():
    for model in (
        VAE(64, 4, hidden=(16, 8), data_shape=(1, 8, 8)),
        ConvVAE(1, 8, 4, base_channels=4),
        ConvVAE(1, 28, 4, base_channels=4, likelihood="gaussian"),
    ):
        s = model.data_shape[-1]
        x = torch.rand(3, 1, s, s)
        assert model.sample(5, generator=torch.Generator().manual_seed(0)).shape == (5, 1, s, s)
        assert model.reconstruct(x).shape == (3, 1, s, s)
        path = model.interpolate(x[0], x[1], steps=4)
        assert path.shape == (4, 1, s, s)
        torch.testing.assert_close(path[0], model.reconstruct(x[:1])[0])
        torch.testing.assert_close(path[-1], model.reconstruct(x[1:2])[0])
    g = ConvVAE(1, 8, 2, base_channels=4, likelihood="gaussian")
    g.elbo(torch.rand(2, 1, 8, 8))[0].backward()
    assert g.log_scale.grad is not None


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="likelihood"):
        VAE(16, 2, likelihood="poisson")
    with pytest.raises(ValueError, match="x"):
        VAE(16, 2).elbo(torch.rand(2, 15))
    with pytest.raises(ValueError, match="image_size"):
        ConvVAE(1, 10, 2)
    with pytest.raises(ValueError, match="latent_dim"):
        manifold_grid(VAE(16, 3, data_shape=(4, 4)), "unused.png")


def test_latent_plots_write_pngs(tmp_path):
    model = VAE(64, 2, hidden=(8,), data_shape=(1, 8, 8))
    x, y = torch.rand(30, 1, 8, 8), torch.arange(30) % 10
    p1 = latent_map(model, x, y, tmp_path / "latent.png")
    p2 = manifold_grid(model, tmp_path / "sub" / "grid.png", n=5)
    for p in (p1, p2):
        assert imread(p).ndim == 3
    assert sorted(f.name for f in tmp_path.rglob("*.png")) == ["grid.png", "latent.png"]


def test_vae_step_lowers_loss():
    model = ConvVAE(1, 8, 2, base_channels=4)
    x = _binary(32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = vae_step(model, x, opt)
    for _ in range(15):
        last = vae_step(model, x, opt, beta=1.0)
    assert set(first) == {"loss", "reconstruction", "kl", "grad_norm"}
    assert last["loss"] < first["loss"]
