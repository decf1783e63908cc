"""The VAE test-NLL protocol pinned against closed forms.

Two models whose exact log-likelihood is known:

- a *z-ignoring* Bernoulli VAE: the decoder returns fixed logits ``l`` whatever ``z`` is, so
  ``p(x) = prod_i sigmoid(l_i)^x_i (1 - sigmoid(l_i))^(1 - x_i)`` exactly (the prior
  integrates to one), and with ``q(z|x) = p(z)`` every importance weight equals ``p(x)``;
- a *linear-Gaussian* VAE (probabilistic PCA, Tipping & Bishop 1999): ``z ~ N(0, I)``,
  ``x|z ~ N(W z + b, s^2 I)``, so ``x ~ N(b, W W^T + s^2 I)``; with orthogonal columns of
  ``W`` the true posterior is diagonal, the encoder can output it exactly, and again every
  weight equals ``p(x)``.

Dropping the ``- log k`` of the IWAE estimator moves the estimate by ``log k`` (6.9 nats at
k = 1000); scoring grey levels instead of a seeded ``Bernoulli(x)`` draw moves it by nats.
Both fail here.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from rnnlab.evaluation.generative_report import binarized_test_nll
from rnnlab.losses import iwae_nll
from rnnlab.models.vae import VAE, _VAEBase, binarized_iw_nll, importance_weighted_nll
from rnnlab.training.families.vae import importance_weighted_test_nll

D, J = 12, 3


class _FixedDecoderVAE(_VAEBase):
    """q(z|x) = N(mu, diag exp(logvar)) for every x; p(x|z) = Bernoulli(sigmoid(logits))."""

    def __init__(self, logits: Tensor, mu: float = 0.0, logvar: float = 0.0) -> None:
        super().__init__()
        self.data_shape, self.latent_dim = (logits.numel(),), J
        self._init_likelihood("bernoulli", None)
        self.logits = nn.Parameter(logits.clone())
        self.mu, self.logvar = mu, logvar

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        shape = (x.shape[0], J)
        return torch.full(shape, self.mu), torch.full(shape, self.logvar)

    def decoder_output(self, z: Tensor) -> Tensor:
        return self.logits.expand(z.shape[0], -1)


def _exact_bernoulli_nll(logits: Tensor, x: Tensor) -> Tensor:
    """-log p(x) = sum_i softplus(l_i) - x_i l_i, per row."""
    return (nn.functional.softplus(logits) - x * logits).sum(-1)


class _LinearGaussianVAE(_VAEBase):
    """z ~ N(0, I_J), x|z ~ N(W z + b, s^2 I_D); encoder = the exact posterior when
    ``W^T W`` is diagonal: Sigma = (I + W^T W / s^2)^-1, mu = Sigma W^T (x - b) / s^2."""

    def __init__(self, w: Tensor, b: Tensor, log_s: float, shift: float = 0.0) -> None:
        super().__init__()
        self.data_shape, self.latent_dim = (w.shape[0],), w.shape[1]
        self._init_likelihood("gaussian", log_s)
        self.w, self.b, self.shift = nn.Parameter(w), b, shift

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        s2 = math.exp(2 * self.log_scale.item())
        var = 1.0 / (1.0 + (self.w * self.w).sum(0) / s2)  # (J,), diagonal posterior
        mu = (x - self.b) @ self.w * var / s2
        return mu + self.shift, var.log().expand_as(mu)

    def decoder_output(self, z: Tensor) -> Tensor:
        return z @ self.w.T + self.b


def _ppca(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(D, J, generator=g, dtype=torch.float64))
    w = q * torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64)  # orthogonal columns
    b = torch.randn(D, generator=g, dtype=torch.float64)
    log_s = math.log(0.3)
    cov = w @ w.T + math.exp(2 * log_s) * torch.eye(D, dtype=torch.float64)
    exact = torch.distributions.MultivariateNormal(b, covariance_matrix=cov)
    return w, b, log_s, exact


def test_iwae_nll_is_minus_log_mean_exp():
    log_w = torch.full((1000, 4), -3.5)  # every weight exp(-3.5): the bound is exact
    torch.testing.assert_close(iwae_nll(log_w), torch.full((4,), 3.5))
    lw = torch.randn(7, 3, dtype=torch.float64)
    torch.testing.assert_close(iwae_nll(lw), -lw.exp().mean(0).log())
    with pytest.raises(ValueError, match=r"\(k, B\)"):
        iwae_nll(torch.zeros(5))


@pytest.mark.parametrize("k", [1, 1000])
def test_z_ignoring_vae_nll_is_exact(k):
    torch.manual_seed(0)
    logits = torch.randn(D) * 2
    x = torch.bernoulli(torch.full((6, D), 0.4))
    model = _FixedDecoderVAE(logits)  # q = prior: every weight is p(x)
    got = importance_weighted_nll(model, x, k=k, batch_k=300)
    torch.testing.assert_close(got, _exact_bernoulli_nll(logits, x), atol=1e-4, rtol=0)


def test_z_ignoring_vae_with_a_wrong_posterior():
    """q != p(z|x): k = 1 is the negative ELBO = exact + KL(q || p) in expectation; the
    bound tightens towards the exact value as k grows."""
    torch.manual_seed(1)
    logits = torch.randn(D)
    x = torch.bernoulli(torch.full((400, D), 0.5))
    mu, logvar = 0.6, -0.8
    model = _FixedDecoderVAE(logits, mu, logvar)
    exact = _exact_bernoulli_nll(logits, x)
    kl = 0.5 * J * (mu**2 + math.exp(logvar) - 1 - logvar)
    k1 = importance_weighted_nll(model, x, k=1) - exact
    assert abs(k1.mean().item() - kl) < 0.1, (k1.mean().item(), kl)
    k500 = (importance_weighted_nll(model, x[:50], k=500) - exact[:50]).mean().item()
    assert 0 <= k500 < 0.1 * kl


def test_linear_gaussian_vae_nll_is_exact():
    w, b, log_s, exact = _ppca()
    model = _LinearGaussianVAE(w, b, log_s).double()
    x = exact.sample((8,))
    for k in (1, 50):
        got = importance_weighted_nll(model, x, k=k, batch_k=20)
        torch.testing.assert_close(got, -exact.log_prob(x), atol=1e-6, rtol=0)
    shifted = _LinearGaussianVAE(w, b, log_s, shift=0.1).double()  # a wrong posterior mean
    torch.manual_seed(0)
    x = exact.sample((4000,))
    loose = (importance_weighted_nll(shifted, x, k=1) + exact.log_prob(x)).mean()
    tight = (importance_weighted_nll(shifted, x[:40], k=2000) + exact.log_prob(x[:40])).mean()
    # E[k=1 bound] - exact = KL(q || true posterior) = sum_j shift^2 / (2 var_j)
    var = 1.0 / (1.0 + (w * w).sum(0) / math.exp(2 * log_s))
    kl = (0.1**2 / (2 * var)).sum().item()
    assert kl > 0.2 and abs(loose.item() - kl) < 0.05 and abs(tight.item()) < 0.03, (
        loose,
        kl,
        tight,
    )


def _grey_images(n: int = 20, seed: int = 0) -> Tensor:
    return torch.rand(n, D, generator=torch.Generator().manual_seed(seed))


def test_binarized_nll_scores_the_seeded_bernoulli_draw():
    torch.manual_seed(0)
    logits = torch.linspace(-4.0, 4.0, D)
    model = _FixedDecoderVAE(logits)
    x = _grey_images(1)  # one image: the grey-level cross-entropy is far from the draw's NLL
    xb = torch.bernoulli(x, generator=torch.Generator().manual_seed(5))  # the documented draw
    want = _exact_bernoulli_nll(logits, xb).mean().item()
    got = binarized_iw_nll(model, x, k=1000, seed=5, batch=7)
    assert got == pytest.approx(want, abs=1e-4)
    grey = _exact_bernoulli_nll(logits, x).mean().item()  # the cross-entropy on grey levels
    assert abs(grey - want) > 1.0, (grey, want)  # the test tells the two apart
    assert binarized_test_nll(model, x, 1000, seed=5) == pytest.approx(want, abs=1e-4)


def test_training_reports_the_same_binarized_nll():
    """`rnnlab train`'s test_nll_binarized = `rnnlab evaluate`'s, batches or not."""
    torch.manual_seed(0)
    model = VAE(D, 2, hidden=(8,))
    x = _grey_images(30)
    batches = [(x[i : i + 8], torch.zeros(len(x[i : i + 8]))) for i in range(0, 30, 8)]
    state = torch.get_rng_state()
    got = importance_weighted_test_nll(model, batches, 16, "cpu")
    assert torch.equal(torch.get_rng_state(), state)
    assert got == pytest.approx(binarized_test_nll(model, x, 16, seed=0), rel=1e-6)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        grey = importance_weighted_nll(model, x, k=16).mean().item()
    assert abs(got - grey) > 0.1


def test_binarized_nll_refuses_a_gaussian_decoder():
    w, b, log_s, _ = _ppca()
    with pytest.raises(ValueError, match="Bernoulli decoder"):
        binarized_iw_nll(_LinearGaussianVAE(w, b, log_s), _grey_images(), k=2)
