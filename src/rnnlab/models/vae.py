r"""Variational autoencoders: an MLP ``VAE`` and a convolutional ``ConvVAE``.

Follows Kingma & Welling 2014 (*Auto-Encoding Variational Bayes*): an encoder gives a diagonal
Gaussian posterior :math:`q(z|x) = N(\mu(x), \mathrm{diag}\,\sigma^2(x))`, the
reparameterization :math:`z = \mu + \sigma \odot \epsilon,\ \epsilon \sim N(0, I)` makes the
sample differentiable, and training minimises the negative evidence lower bound

.. math:: -\mathrm{ELBO}(x) = \mathbb{E}_{q(z|x)}[-\log p(x|z)]
          + \beta\,\mathrm{KL}(q(z|x)\,\|\,N(0, I)),

with the KL in closed form (their Appendix B) and ``beta = 1`` the plain VAE (``beta > 1``:
Higgins et al. 2017). The decoder is Bernoulli (logits) or Gaussian (mean, with one learned
log-scale as in Rybkin et al.'s sigma-VAE, or a fixed one). ``importance_weighted_nll`` is the
IWAE bound of Burda et al. 2016; ``binarized_iw_nll`` reports test NLL in nats with it on
dynamically binarized images. The figures of a 2-D latent space live in
:mod:`rnnlab.evaluation.latent` (models draw no figures).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from rnnlab.losses import bernoulli_nll, gaussian_nll, iwae_nll, kl_standard_normal
from rnnlab.utils import check_choice
from rnnlab.utils import progress as bar

_LIKELIHOODS = ("bernoulli", "gaussian")


class _VAEBase(nn.Module):
    """Everything but the encoder/decoder networks: subclasses set ``data_shape``,
    ``latent_dim`` and implement ``encode`` and ``decoder_output``."""

    data_shape: tuple[int, ...]
    latent_dim: int

    def _init_likelihood(self, likelihood: str, gaussian_log_scale: float | None) -> None:
        self.likelihood = check_choice("likelihood", likelihood, _LIKELIHOODS)
        # None: one learned log-scale for all pixels (sigma-VAE); a float fixes it.
        learn = gaussian_log_scale is None
        init = torch.tensor(0.0 if learn else float(gaussian_log_scale))
        self.log_scale = nn.Parameter(init, requires_grad=learn and likelihood == "gaussian")

    def _check_x(self, x: Tensor) -> Tensor:
        if tuple(x.shape[1:]) != self.data_shape and x[0].numel() != math.prod(self.data_shape):
            raise ValueError(
                f"`x` must be (B, {', '.join(map(str, self.data_shape))}); got {tuple(x.shape)}"
            )
        return x.reshape(x.shape[0], *self.data_shape)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def decoder_output(self, z: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Parameters of p(x|z): logits (Bernoulli) or mean (Gaussian), shape (B, *data_shape)."""
        raise NotImplementedError

    @staticmethod
    def reparameterize(
        mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I) (Kingma & Welling 2014, section 2.4)."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode(self, z: Tensor) -> Tensor:
        """Mean of p(x|z) in data space: probabilities (Bernoulli) or the Gaussian mean."""
        out = self.decoder_output(z)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    def nll(self, x: Tensor, out: Tensor) -> Tensor:
        """-log p(x|z) per example, in nats, given ``out = decoder_output(z)``."""
        if self.likelihood == "bernoulli":
            return bernoulli_nll(out, x)
        return gaussian_nll(out, x, self.log_scale)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Returns ``(decoder_output(z), mu, logvar)`` for one posterior sample ``z``."""
        mu, logvar = self.encode(x)
        return self.decoder_output(self.reparameterize(mu, logvar)), mu, logvar

    def elbo(self, x: Tensor, beta: float = 1.0) -> tuple[Tensor, dict[str, Tensor]]:
        r"""Negative ELBO averaged over the batch (one posterior sample per example):

        .. math:: \text{loss} = \frac1B \sum_b \left[-\log p(x_b|z_b)
                  + \beta\,\mathrm{KL}(q(z|x_b)\,\|\,N(0,I))\right]

        Returns ``(loss, {"reconstruction": mean -log p(x|z), "kl": mean KL})`` in nats per
        example; the parts are detached.
        """
        x = self._check_x(x)
        out, mu, logvar = self(x)
        rec = self.nll(x, out)
        kl = kl_standard_normal(mu, logvar)
        loss = (rec + beta * kl).mean()
        return loss, {"reconstruction": rec.mean().detach(), "kl": kl.mean().detach()}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Decode ``n`` prior draws z ~ N(0, I): mean images, shape (n, *data_shape)."""
        if n < 1:
            raise ValueError(f"`n` must be >= 1; got {n}")
        p = next(self.parameters())
        z = torch.randn(n, self.latent_dim, generator=generator, device=p.device, dtype=p.dtype)
        return self.decode(z)

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Decode the posterior mean: ``decode(mu(x))``."""
        mu, _ = self.encode(self._check_x(x))
        return self.decode(mu)

    @torch.no_grad()
    def interpolate(self, x1: Tensor, x2: Tensor, steps: int = 10) -> Tensor:
        """Decode ``steps`` points on the line between the posterior means of two single
        examples (shape ``data_shape`` or ``(1, *data_shape)``); returns (steps, *data_shape)."""
        if steps < 2:
            raise ValueError(f"`steps` must be >= 2; got {steps}")
        mu1, _ = self.encode(self._check_x(x1.reshape(1, -1)))
        mu2, _ = self.encode(self._check_x(x2.reshape(1, -1)))
        t = torch.linspace(0.0, 1.0, steps, device=mu1.device, dtype=mu1.dtype)[:, None]
        return self.decode((1 - t) * mu1 + t * mu2)


class VAE(_VAEBase):
    """MLP VAE: ``in_features -> hidden... -> (to_mu, to_logvar) -> latent_dim`` and back.

    ``data_shape`` (default ``(in_features,)``) is the shape decoded images take, e.g.
    ``(1, 28, 28)``; inputs of that shape or flat ``(B, in_features)`` are both accepted.
    """

    def __init__(
        self,
        in_features: int,
        latent_dim: int,
        hidden: tuple[int, ...] = (400,),
        likelihood: str = "bernoulli",
        data_shape: tuple[int, ...] | None = None,
        gaussian_log_scale: float | None = None,
    ) -> None:
        super().__init__()
        if in_features < 1 or latent_dim < 1:
            raise ValueError(
                f"`in_features` and `latent_dim` must be >= 1; got {in_features}, {latent_dim}"
            )
        self.data_shape = tuple(data_shape) if data_shape is not None else (in_features,)
        if math.prod(self.data_shape) != in_features:
            raise ValueError(f"`data_shape` must hold {in_features} values; got {self.data_shape}")
        self.latent_dim = latent_dim
        self._init_likelihood(likelihood, gaussian_log_scale)
        enc: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            enc += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.encoder = nn.Sequential(*enc)
        self.to_mu = nn.Linear(width, latent_dim)
        self.to_logvar = nn.Linear(width, latent_dim)
        dec: list[nn.Module] = []
        width = latent_dim
        for h in reversed(hidden):
            dec += [nn.Linear(width, h), nn.ReLU()]
            width = h
        dec.append(nn.Linear(width, in_features))
        self.decoder = nn.Sequential(*dec)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.encoder(x.reshape(x.shape[0], -1))
        return self.to_mu(h), self.to_logvar(h)

    def decoder_output(self, z: Tensor) -> Tensor:
        return self.decoder(z).reshape(z.shape[0], *self.data_shape)


class ConvVAE(_VAEBase):
    """Convolutional VAE for ``(C, S, S)`` images with ``S`` divisible by 4 (28, 32, 8, ...):
    two stride-2 4x4 convs down, two stride-2 transposed convs up."""

    def __init__(
        self,
        channels: int,
        image_size: int,
        latent_dim: int,
        base_channels: int = 32,
        likelihood: str = "bernoulli",
        gaussian_log_scale: float | None = None,
    ) -> None:
        super().__init__()
        if image_size % 4 != 0 or image_size < 4:
            raise ValueError(f"`image_size` must be a positive multiple of 4; got {image_size}")
        self.data_shape = (channels, image_size, image_size)
        self.latent_dim = latent_dim
        self._init_likelihood(likelihood, gaussian_log_scale)
        c, s = base_channels, image_size // 4
        self._bottom = (2 * c, s, s)
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, c, 4, stride=2, padding=1),  # (c, S/2, S/2)
            nn.ReLU(),
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1),  # (2c, S/4, S/4)
            nn.ReLU(),
            nn.Flatten(),  # (2c * S/4 * S/4,)
        )
        flat = 2 * c * s * s
        self.to_mu = nn.Linear(flat, latent_dim)
        self.to_logvar = nn.Linear(flat, latent_dim)
        self.from_z = nn.Sequential(nn.Linear(latent_dim, flat), nn.ReLU())
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1),  # (c, S/2, S/2)
            nn.ReLU(),
            nn.ConvTranspose2d(c, channels, 4, stride=2, padding=1),  # (C, S, S)
        )

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.encoder(x.reshape(x.shape[0], *self.data_shape))
        return self.to_mu(h), self.to_logvar(h)

    def decoder_output(self, z: Tensor) -> Tensor:
        return self.decoder(self.from_z(z).reshape(z.shape[0], *self._bottom))


@torch.no_grad()
def importance_weighted_nll(
    model: _VAEBase, x: Tensor, k: int = 1000, batch_k: int = 100
) -> Tensor:
    r"""Per-example NLL estimate in nats from the IWAE bound (Burda et al. 2016, eq. 8):

    .. math:: -\log p(x) \le -\log \frac1k \sum_{i=1}^k
              \frac{p(x|z_i)\,p(z_i)}{q(z_i|x)},\quad z_i \sim q(z|x),

    computed as a log-mean-exp of the log-weights. The ``k`` samples are drawn ``batch_k`` at a
    time, so memory is ``batch_k * B`` decoder passes, not ``k * B``. ``k = 1`` is a one-sample
    estimate of the negative ELBO; the bound tightens (weakly decreases in expectation) as
    ``k`` grows. Returns shape ``(B,)``; the model is put in eval mode and restored after.
    """
    if k < 1 or batch_k < 1:
        raise ValueError(f"`k` and `batch_k` must be >= 1; got k={k}, batch_k={batch_k}")
    was_training = model.training
    model.eval()
    try:
        x = model._check_x(x)
        mu, logvar = model.encode(x)  # (B, J)
        bsz, j = mu.shape
        std = torch.exp(0.5 * logvar)
        log_w = []
        for start in range(0, k, batch_k):
            m = min(batch_k, k - start)
            eps = torch.randn(m, bsz, j, device=mu.device, dtype=mu.dtype)
            z = mu + std * eps  # (m, B, J)
            log_q = -0.5 * (eps.pow(2) + logvar + math.log(2 * math.pi)).sum(-1)
            log_p_z = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)
            out = model.decoder_output(z.reshape(m * bsz, j))
            x_rep = x.unsqueeze(0).expand(m, *x.shape).reshape(m * bsz, *x.shape[1:])
            log_px = -model.nll(x_rep, out).reshape(m, bsz)
            log_w.append(log_px + log_p_z - log_q)  # (m, B)
        return iwae_nll(torch.cat(log_w, dim=0))
    finally:
        model.train(was_training)


def binarized_iw_nll(
    model: _VAEBase, x: Tensor, k: int, *, seed: int = 0, batch: int = 100, progress: bool = False
) -> float:
    """Mean test NLL in nats of a Bernoulli VAE, the protocol of published binarized-MNIST
    numbers: ``x`` (N, ...) in [0, 1] is binarized once as ``Bernoulli(x)`` with a generator
    seeded by ``seed`` (dynamic binarization, as in Burda et al. 2016), then scored with
    :func:`importance_weighted_nll` at ``k`` samples, ``batch`` images at a time, its draws
    seeded by ``seed`` too (torch's global generator is left as it was); ``progress``: a bar
    over the batches (:func:`rnnlab.utils.progress`).

    Grey levels are never scored: under a Bernoulli decoder their "NLL" is a cross-entropy,
    not a log-likelihood (pytorch/examples#460). A Gaussian decoder is refused: its density on
    binary images is not a probability.
    """
    if getattr(model, "likelihood", None) != "bernoulli":
        raise ValueError(
            "the binarized NLL needs a Bernoulli decoder; "
            f"got likelihood {getattr(model, 'likelihood', None)!r}"
        )
    if len(x) == 0:
        raise ValueError("`x` must hold at least one image")
    xb = torch.bernoulli(x.detach().float().cpu(), generator=torch.Generator().manual_seed(seed))
    p = next(model.parameters())
    total = 0.0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i in bar(range(0, len(xb), batch), desc=f"IW-NLL (k={k})", enabled=progress):
            xi = xb[i : i + batch].to(p.device, p.dtype)
            total += float(importance_weighted_nll(model, xi, k=k, batch_k=min(k, 100)).sum())
    return total / len(xb)
