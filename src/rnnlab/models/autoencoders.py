"""Autoencoders of the chapter, all behind one interface.

Every model has ``encode(x) -> z``, ``decode(z) -> x_hat``, ``forward(x) -> x_hat`` and
``loss(x) -> (total, parts)`` where ``parts["reconstruction"]`` is the mean squared error or
binary cross-entropy (per element) and every penalty appears under its own name, already
weighted, so ``total == sum(parts.values())``.

Models: :class:`Autoencoder` (one hidden layer; the chapter's 100-50-100 example by default),
:class:`DeepAutoencoder`, :class:`StackedAutoencoder` (greedy layer-wise pretraining, Bengio et
al. 2007), :class:`DenoisingAutoencoder` (Vincent et al. 2008), :class:`ContractiveAutoencoder`
(Rifai et al. 2011), :class:`SparseAutoencoder` (L1 or KL(ρ‖ρ̂) on the codes),
:class:`LinearAutoencoder` (Baldi & Hornik 1989; L2 term of Kunin et al. 2019),
:class:`ConvAutoencoder` (stride-2 convolutions, Masci et al. 2011) and :class:`LSTMAutoencoder`
(Srivastava et al. 2015, one latent vector repeated over time). ``train_autoencoder`` is a small
Adam loop for tests and benchmarks. The convolutional and LSTM models live in
:mod:`rnnlab.models.structured_autoencoders` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.losses import contractive_penalty_sigmoid, jacobian_frobenius_sq, kl_sparsity
from rnnlab.utils import check_choice

from .ae_base import AutoencoderBase, _activation
from .structured_autoencoders import ConvAutoencoder, LSTMAutoencoder  # noqa: F401 (re-export)


class DeepAutoencoder(AutoencoderBase):
    r"""MLP autoencoder ``sizes = [D, h1, ..., k]``; the decoder mirrors the encoder.

    :math:`z = a_c(W_L \dots a(W_1 x + b_1) \dots + b_L)`, decoder the same in reverse with
    ``activation`` between layers and ``output_activation`` at the end.

    A code larger than the input (``k > D``) raises: an unregularised overcomplete AE can learn
    the identity (Goodfellow et al. 2016, §14.2). The regularised kinds (denoising, sparse,
    contractive) accept it, as in Vincent et al. 2010 and Rifai et al. 2011.
    """

    overcomplete_ok = False

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "relu",
        code_activation: str | None = None,
        reconstruction: str = "mse",
        output_activation: str | None = None,
    ):
        super().__init__(reconstruction, output_activation)
        sizes = list(sizes)
        if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
            raise ValueError(f"`sizes` must be >= 2 positive ints [D, ..., k]; got {sizes}")
        if sizes[-1] > sizes[0] and not self.overcomplete_ok:
            raise ValueError(
                f"latent size {sizes[-1]} is larger than the input size {sizes[0]}: "
                f"{type(self).__name__} could learn the identity; use a smaller code or a "
                f"denoising, sparse or contractive autoencoder for an overcomplete one"
            )
        self.sizes = sizes
        self._act = _activation(activation, "activation")
        self._code_act = _activation(code_activation, "code_activation")
        pairs = list(zip(sizes[:-1], sizes[1:], strict=True))
        self.encoder_layers = nn.ModuleList(nn.Linear(a, b) for a, b in pairs)
        self.decoder_layers = nn.ModuleList(nn.Linear(b, a) for a, b in reversed(pairs))

    def encode(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.sizes[0]:
            raise ValueError(f"`x` must be (B, {self.sizes[0]}); got {tuple(x.shape)}")
        *hidden, last = self.encoder_layers
        for layer in hidden:
            x = self._act(layer(x))
        return self._code_act(last(x))

    def decode_logits(self, z: Tensor) -> Tensor:
        *hidden, last = self.decoder_layers
        for layer in hidden:
            z = self._act(layer(z))
        return last(z)


class Autoencoder(DeepAutoencoder):
    """One hidden layer ``D -> H -> D`` with ``activation`` on the code (default 100-50-100)."""

    def __init__(
        self,
        input_size: int = 100,
        hidden_size: int = 50,
        activation: str = "sigmoid",
        reconstruction: str = "mse",
        output_activation: str | None = None,
    ):
        super().__init__(
            [input_size, hidden_size], activation, activation, reconstruction, output_activation
        )


class StackedAutoencoder(DeepAutoencoder):
    """Deep AE trained greedily layer by layer, then fine-tuned end to end.

    Layer ``k`` is first trained as the shallow AE ``h_k -> a(W_k h_k) -> h_k`` on the codes
    ``h_k`` of the already trained layers below; its decoder becomes the mirror layer.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "sigmoid",
        reconstruction: str = "mse",
        output_activation: str | None = None,
    ):
        super().__init__(sizes, activation, activation, reconstruction, output_activation)

    def pretrain(
        self,
        data: Tensor,
        epochs: int,
        batch_size: int = 64,
        lr: float = 1e-3,
        finetune_epochs: int = 0,
        seed: int = 0,
    ) -> dict[str, list]:
        """Returns ``{"layers": [per-layer epoch losses], "finetune": [epoch losses]}``."""
        n = len(self.encoder_layers)
        history: dict[str, list] = {"layers": [], "finetune": []}
        codes = data
        for k, enc in enumerate(self.encoder_layers):
            dec = self.decoder_layers[n - 1 - k]
            out = self._out if k == 0 else self._act
            params = list(enc.parameters()) + list(dec.parameters())
            opt = torch.optim.Adam(params, lr=lr)
            gen = torch.Generator().manual_seed(seed + k)
            losses = []
            for _ in range(epochs):
                perm, total = torch.randperm(len(codes), generator=gen), 0.0
                for idx in perm.split(batch_size):
                    target = codes[idx]
                    logits = dec(self._act(enc(target)))
                    if k == 0 and self.reconstruction == "bce":
                        loss = F.binary_cross_entropy_with_logits(logits, target)
                    else:
                        loss = (out(logits) - target).pow(2).mean()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    total += loss.item() * len(idx)
                losses.append(total / len(codes))
            history["layers"].append(losses)
            with torch.no_grad():
                codes = self._act(enc(codes))
        if finetune_epochs > 0:
            history["finetune"] = train_autoencoder(
                self, data, finetune_epochs, batch_size, lr, seed=seed
            )
        return history


class DenoisingAutoencoder(Autoencoder):
    r"""Vincent et al. 2008: reconstruct clean ``x`` from a corrupted :math:`\tilde x`.

    ``noise="gaussian"``: :math:`\tilde x = x + \sigma \epsilon`; ``noise="masking"``: each
    input is set to 0 with probability ``noise_level``. Corruption only in training mode.
    ``noise_level`` must lie in [0, 1] ([0, 1) for masking): images live in [0, 1], so a larger
    σ buries the signal.
    """

    overcomplete_ok = True

    def __init__(
        self,
        input_size: int = 100,
        hidden_size: int = 50,
        noise: str = "gaussian",
        noise_level: float = 0.1,
        activation: str = "sigmoid",
        reconstruction: str = "mse",
        output_activation: str | None = None,
    ):
        super().__init__(input_size, hidden_size, activation, reconstruction, output_activation)
        check_choice("noise", noise, ("gaussian", "masking"))
        if not 0 <= noise_level <= 1 or (noise == "masking" and noise_level == 1):
            raise ValueError(
                f"`noise_level` must be in [0, 1] ([0, 1) for masking): the Gaussian std or the "
                f"fraction of inputs dropped; got {noise_level}"
            )
        self.noise, self.noise_level = noise, noise_level

    def corrupt(self, x: Tensor) -> Tensor:
        if not self.training or self.noise_level == 0:
            return x
        if self.noise == "gaussian":
            return x + self.noise_level * torch.randn_like(x)
        return x * (torch.rand_like(x) >= self.noise_level).to(x.dtype)


class ContractiveAutoencoder(Autoencoder):
    r"""Rifai et al. 2011: loss + :math:`\lambda \|J_f(x)\|_F^2` with ``f`` the encoder.

    ``jacobian="closed_form"`` (sigmoid encoder only) uses
    :math:`\sum_j (h_j(1-h_j))^2 \sum_i W_{ji}^2`; ``"autograd"`` works for any activation;
    ``"auto"`` picks the closed form when it applies.
    """

    overcomplete_ok = True

    def __init__(
        self,
        input_size: int = 100,
        hidden_size: int = 50,
        contraction: float = 0.1,
        jacobian: str = "auto",
        activation: str = "sigmoid",
        reconstruction: str = "mse",
        output_activation: str | None = None,
    ):
        super().__init__(input_size, hidden_size, activation, reconstruction, output_activation)
        check_choice("jacobian", jacobian, ("auto", "closed_form", "autograd"))
        if jacobian == "auto":
            jacobian = "closed_form" if activation == "sigmoid" else "autograd"
        if jacobian == "closed_form" and activation != "sigmoid":
            raise ValueError(f"closed-form Jacobian needs activation='sigmoid'; got {activation!r}")
        if contraction < 0:
            raise ValueError(f"`contraction` must be >= 0; got {contraction}")
        self.contraction, self.jacobian = contraction, jacobian

    def jacobian_penalty(self, x: Tensor, z: Tensor | None = None) -> Tensor:
        """Unweighted mean ‖J_f(x)‖_F² by the configured method."""
        if self.jacobian == "closed_form":
            h = self.encode(x) if z is None else z
            return contractive_penalty_sigmoid(h, self.encoder_layers[0].weight)
        return jacobian_frobenius_sq(self.encode, x)

    def penalties(self, x_in: Tensor, z: Tensor) -> dict[str, Tensor]:
        return {"contractive": self.contraction * self.jacobian_penalty(x_in, z)}


class SparseAutoencoder(Autoencoder):
    r"""Sparse codes: ``sparsity="l1"`` adds :math:`\beta \frac1B\sum_b \|h_b\|_1`;
    ``"kl"`` adds :math:`\beta \sum_j \mathrm{KL}(\rho \| \hat\rho_j)` (sigmoid codes)."""

    overcomplete_ok = True

    def __init__(
        self,
        input_size: int = 100,
        hidden_size: int = 50,
        sparsity: str = "kl",
        beta: float = 1e-3,
        rho: float = 0.05,
        activation: str = "sigmoid",
        reconstruction: str = "mse",
        output_activation: str | None = None,
    ):
        super().__init__(input_size, hidden_size, activation, reconstruction, output_activation)
        check_choice("sparsity", sparsity, ("l1", "kl"))
        if sparsity == "kl" and activation != "sigmoid":
            raise ValueError(f"KL sparsity needs activation='sigmoid'; got {activation!r}")
        if not 0 < rho < 1:
            raise ValueError(f"`rho` must be in (0, 1); got {rho}")
        self.sparsity, self.beta, self.rho = sparsity, beta, rho

    def penalties(self, x_in: Tensor, z: Tensor) -> dict[str, Tensor]:
        if self.sparsity == "l1":
            return {"sparsity": self.beta * z.abs().sum(dim=1).mean()}
        return {"sparsity": self.beta * kl_sparsity(z, self.rho)}


class LinearAutoencoder(AutoencoderBase):
    r""":math:`\hat x = W_2 (W_1 x + b_1) + b_2`, no nonlinearity (Baldi & Hornik 1989).

    ``weight_decay`` λ adds :math:`\lambda(\|W_1\|_F^2 + \|W_2\|_F^2)` to the loss (Kunin et
    al. 2019); with λ > 0 the left singular vectors of ``W_2`` are the ordered principal
    directions, with λ = 0 only the span is determined.
    """

    def __init__(
        self, input_size: int, latent_size: int, weight_decay: float = 0.0, bias: bool = True
    ):
        super().__init__("mse", None)
        if not 1 <= latent_size <= input_size:
            raise ValueError(f"`latent_size` must be in [1, {input_size}]; got {latent_size}")
        if weight_decay < 0:
            raise ValueError(f"`weight_decay` must be >= 0; got {weight_decay}")
        self.encoder = nn.Linear(input_size, latent_size, bias=bias)
        self.decoder = nn.Linear(latent_size, input_size, bias=bias)
        self.weight_decay = weight_decay

    @property
    def decoder_weight(self) -> Tensor:
        """``W_2`` of shape ``(D, k)``."""
        return self.decoder.weight

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def decode_logits(self, z: Tensor) -> Tensor:
        return self.decoder(z)

    def weight_penalty(self) -> Tensor:
        """λ(‖W1‖² + ‖W2‖²), the L2 term of Kunin et al. 2019 (biases not penalised)."""
        sq = self.encoder.weight.pow(2).sum() + self.decoder.weight.pow(2).sum()
        return self.weight_decay * sq

    def penalties(self, x_in: Tensor, z: Tensor) -> dict[str, Tensor]:
        return {"weight_decay": self.weight_penalty()} if self.weight_decay > 0 else {}


def train_autoencoder(
    model: nn.Module,
    x: Tensor,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float = 0.0,
    seed: int = 0,
) -> list[float]:
    """Plain Adam loop over shuffled minibatches of ``model.loss``; returns epoch mean losses."""
    if epochs < 0 or batch_size < 1:
        raise ValueError(f"`epochs` >= 0 and `batch_size` >= 1 needed; got {epochs}, {batch_size}")
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    history = []
    for _ in range(epochs):
        total = 0.0
        for idx in torch.randperm(len(x), generator=gen).split(batch_size):
            loss, _ = model.loss(x[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        history.append(total / len(x))
    return history
