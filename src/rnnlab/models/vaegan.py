r"""VAE-GAN (Larsen et al. 2016, *Autoencoding beyond pixels using a learned similarity metric*).

A VAE whose decoder is also a GAN generator, and whose reconstruction error is measured in the
discriminator's l-th layer feature space instead of pixels:

.. math:: \mathcal{L}_{prior} = \mathrm{KL}(q(z|x)\,\|\,N(0,I)),\qquad
          \mathcal{L}^{Dis_l}_{llike} = -\log N(Dis_l(x);\,Dis_l(\tilde x), I)
          = \tfrac12\|Dis_l(x) - Dis_l(\tilde x)\|^2 + \text{const},

with :math:`\tilde x = Dec(z),\ z \sim q(z|x)`, and the GAN term on real data,
reconstructions and prior samples :math:`x_p = Dec(z_p),\ z_p \sim N(0, I)`:

.. math:: \mathcal{L}_{GAN} = \log Dis(x) + \log(1 - Dis(\tilde x)) + \log(1 - Dis(x_p)).

The paper's Algorithm 1 updates each part with its own loss, all at the same parameters:

- encoder: :math:`\mathcal{L}_{prior} + \mathcal{L}^{Dis_l}_{llike}`
- decoder: :math:`\gamma\,\mathcal{L}^{Dis_l}_{llike} - \mathcal{L}_{GAN}` (we use the
  non-saturating form of the generator's GAN term by default, as the authors' code does)
- discriminator: maximise :math:`\mathcal{L}_{GAN}` (BCE: real -> 1, both fakes -> 0).

The losses are computed here (``losses``); ``training.generative_steps.vaegan_step`` turns each
into gradients for its own part only.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnlab.losses import gan_discriminator_loss, gan_generator_loss, kl_standard_normal
from rnnlab.models.gans import DCGANDiscriminator, DCGANGenerator


class VAEGAN(nn.Module):
    """Encoder (stride-2 convs -> ``to_mu``/``to_logvar``), ``generator`` (DCGAN decoder) and
    ``discriminator`` (DCGAN, ``features`` = Dis_l) for ``(channels, S, S)`` images in [-1, 1]."""

    def __init__(
        self,
        latent_dim: int,
        channels: int = 1,
        image_size: int = 28,
        base_channels: int = 32,
        n_layers: int = 2,
        gamma: float = 1e-2,
    ) -> None:
        super().__init__()
        self.latent_dim, self.gamma = latent_dim, gamma
        self.generator = DCGANGenerator(latent_dim, channels, image_size, base_channels, n_layers)
        self.discriminator = DCGANDiscriminator(channels, image_size, base_channels, n_layers)
        self.image_shape = (channels, image_size, image_size)
        s = image_size // 2**n_layers
        blocks: list[nn.Module] = []
        c_in, c = channels, base_channels
        for _ in range(n_layers):
            blocks += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU()]
            c_in, c = c, 2 * c  # each block: channels x2, size /2
        self.encoder = nn.Sequential(*blocks, nn.Flatten())  # (c_in * s * s,)
        self.to_mu = nn.Linear(c_in * s * s, latent_dim)
        self.to_logvar = nn.Linear(c_in * s * s, latent_dim)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"`x` must be (B, *{self.image_shape}); got {tuple(x.shape)}")
        h = self.encoder(x)
        return self.to_mu(h), self.to_logvar(h)

    def reconstruct(self, x: Tensor) -> Tensor:
        """Decode the posterior mean."""
        return self.generator(self.encode(x)[0])

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        p = self.to_mu.weight
        z = torch.randn(n, self.latent_dim, generator=generator, device=p.device, dtype=p.dtype)
        return self.generator(z)

    def losses(
        self,
        x: Tensor,
        *,
        gamma: float | None = None,
        gan_loss: str = "non_saturating",
        rng: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """The three losses of Algorithm 1 (each to be differentiated only w.r.t. its part):
        ``encoder``, ``decoder``, ``discriminator``, plus the detached parts ``kl`` and
        ``feature_recon`` (per-example means)."""
        gamma = self.gamma if gamma is None else gamma
        mu, logvar = self.encode(x)
        eps = torch.randn(mu.shape, generator=rng, device=mu.device, dtype=mu.dtype)
        x_tilde = self.generator(mu + torch.exp(0.5 * logvar) * eps)
        z_p = torch.randn(mu.shape, generator=rng, device=mu.device, dtype=mu.dtype)
        x_p = self.generator(z_p)
        d = self.discriminator
        kl = kl_standard_normal(mu, logvar).mean()
        feat_real, feat_tilde = d.features(x), d.features(x_tilde)
        feature_recon = 0.5 * (feat_real - feat_tilde).pow(2).sum(dim=1).mean()
        logits_real = d.head(feat_real).squeeze(1)
        logits_tilde = d.head(feat_tilde).squeeze(1)
        logits_p = d(x_p)
        # D: real -> 1, reconstructions and prior samples -> 0 (the two fakes weighted equally)
        gan_d = 0.5 * (
            gan_discriminator_loss(logits_real, logits_tilde)
            + gan_discriminator_loss(logits_real, logits_p)
        )
        gan_g = gan_generator_loss(logits_tilde, gan_loss) + gan_generator_loss(logits_p, gan_loss)
        return {
            "encoder": kl + feature_recon,
            "decoder": gamma * feature_recon + gan_g,
            "discriminator": gan_d,
            "kl": kl.detach(),
            "feature_recon": feature_recon.detach(),
        }

    def parts(self) -> dict[str, list[nn.Parameter]]:
        """Parameters of each part, keyed like the losses."""
        enc = [*self.encoder.parameters(), *self.to_mu.parameters(), *self.to_logvar.parameters()]
        return {
            "encoder": enc,
            "decoder": list(self.generator.parameters()),
            "discriminator": list(self.discriminator.parameters()),
        }
