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
Adam loop for tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.layers import LSTM
from rnnlab.losses import contractive_penalty_sigmoid, jacobian_frobenius_sq, kl_sparsity

_ACTIVATIONS = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "identity": lambda t: t,
}


def _activation(name: str | None, arg: str):
    key = "identity" if name is None else name
    if key not in _ACTIVATIONS:
        raise ValueError(f"`{arg}` must be one of {sorted(_ACTIVATIONS)} or None; got {name!r}")
    return _ACTIVATIONS[key]


class AutoencoderBase(nn.Module):
    r"""Shared interface. Subclasses define ``encode`` and ``decode_logits`` (pre-activation).

    ``reconstruction="mse"``: :math:`\frac1n \sum (\hat x - x)^2` with ``output_activation``
    (default identity). ``"bce"``: :math:`-\frac1n \sum [x \log \hat x + (1-x)\log(1-\hat x)]`
    with :math:`\hat x = \sigma(\text{logits})`, computed stably from the logits. ``n`` counts
    the elements of the batch; ``loss`` returns ``reconstruction + Σ penalties``.
    """

    def __init__(self, reconstruction: str = "mse", output_activation: str | None = None):
        super().__init__()
        if reconstruction not in ("mse", "bce"):
            raise ValueError(f"`reconstruction` must be 'mse' or 'bce'; got {reconstruction!r}")
        if output_activation is None and reconstruction == "bce":
            output_activation = "sigmoid"
        if reconstruction == "bce" and output_activation != "sigmoid":
            raise ValueError(
                f"`output_activation` must be 'sigmoid' with reconstruction='bce'; "
                f"got {output_activation!r}"
            )
        self.reconstruction = reconstruction
        self.output_activation = output_activation
        self._out = _activation(output_activation, "output_activation")

    def encode(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def decode_logits(self, z: Tensor) -> Tensor:
        raise NotImplementedError

    def decode(self, z: Tensor) -> Tensor:
        return self._out(self.decode_logits(z))

    def corrupt(self, x: Tensor) -> Tensor:
        """Input corruption applied in training mode (identity here)."""
        return x

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(self.corrupt(x)))

    def penalties(self, x_in: Tensor, z: Tensor) -> dict[str, Tensor]:
        """Weighted penalty terms given the (corrupted) input and its code."""
        return {}

    def elementwise_error(self, logits: Tensor, x: Tensor) -> Tensor:
        """Per-element reconstruction error from decoder logits, same shape as ``x``."""
        if logits.shape != x.shape:
            raise ValueError(f"`x` must have shape {tuple(logits.shape)}; got {tuple(x.shape)}")
        if self.reconstruction == "bce":
            return F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        return (self._out(logits) - x).pow(2)

    def per_example_error(self, x: Tensor) -> Tensor:
        """Mean reconstruction error of each example, shape ``(B,)`` (anomaly score)."""
        err = self.elementwise_error(self.decode_logits(self.encode(self.corrupt(x))), x)
        return err.reshape(x.shape[0], -1).mean(dim=1)

    def loss(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        x_in = self.corrupt(x)
        z = self.encode(x_in)
        parts = {"reconstruction": self.elementwise_error(self.decode_logits(z), x).mean()}
        parts.update(self.penalties(x_in, z))
        return sum(parts.values()), parts


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
        if noise not in ("gaussian", "masking"):
            raise ValueError(f"`noise` must be 'gaussian' or 'masking'; got {noise!r}")
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
        if jacobian == "auto":
            jacobian = "closed_form" if activation == "sigmoid" else "autograd"
        if jacobian not in ("closed_form", "autograd"):
            raise ValueError(f"`jacobian` must be auto/closed_form/autograd; got {jacobian!r}")
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
        if sparsity not in ("l1", "kl"):
            raise ValueError(f"`sparsity` must be 'l1' or 'kl'; got {sparsity!r}")
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


class ConvAutoencoder(AutoencoderBase):
    """Images ``(B, C, H, W)``: stride-2 convolutions down, a linear bottleneck of
    ``latent_size``, transposed stride-2 convolutions back up to exactly ``(H, W)``.

    Each conv block is ``Conv2d(k, stride 2, pad k//2) + activation``, halving the side
    (rounding up); ``output_padding`` on the way back restores odd or even sides exactly.
    """

    def __init__(
        self,
        image_size: tuple[int, int] = (28, 28),
        latent_size: int = 16,
        channels: Sequence[int] = (16, 32),
        in_channels: int = 1,
        kernel_size: int = 3,
        activation: str = "relu",
        reconstruction: str = "mse",
        output_activation: str | None = None,
    ):
        super().__init__(reconstruction, output_activation)
        channels = list(channels)
        if not channels or latent_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"`channels` non-empty, `latent_size` >= 1, odd `kernel_size` needed; got "
                f"{channels}, {latent_size}, {kernel_size}"
            )
        self._act = _activation(activation, "activation")
        if latent_size > in_channels * image_size[0] * image_size[1]:
            raise ValueError(
                f"latent size {latent_size} is larger than the input size "
                f"{in_channels * image_size[0] * image_size[1]} ({in_channels}x{image_size[0]}x"
                f"{image_size[1]}): the autoencoder could learn the identity"
            )
        self.image_shape = (in_channels, *image_size)
        sides = [tuple(image_size)]  # spatial size after each down block
        for _ in channels:
            sides.append(tuple((s + 1) // 2 for s in sides[-1]))
        pad, chans = kernel_size // 2, [in_channels, *channels]
        pairs = zip(chans[:-1], chans[1:], strict=True)
        self.down = nn.ModuleList(nn.Conv2d(a, b, kernel_size, 2, pad) for a, b in pairs)
        up = []
        for i in reversed(range(len(channels))):  # channels[i] at sides[i+1] -> sides[i]
            out_pad = tuple(t - (2 * s - 1) for s, t in zip(sides[i + 1], sides[i], strict=True))
            up.append(nn.ConvTranspose2d(chans[i + 1], chans[i], kernel_size, 2, pad, out_pad))
        self.up = nn.ModuleList(up)
        self._flat_shape = (channels[-1], *sides[-1])
        flat = channels[-1] * sides[-1][0] * sides[-1][1]
        self.to_latent = nn.Linear(flat, latent_size)
        self.from_latent = nn.Linear(latent_size, flat)

    def encode(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"`x` must be (B, {self.image_shape}); got {tuple(x.shape)}")
        for conv in self.down:
            x = self._act(conv(x))  # (B, C_i, ceil(H/2^i), ceil(W/2^i)), e.g. 28 -> 14 -> 7
        return self.to_latent(x.flatten(1))  # (B, latent_size)

    def decode_logits(self, z: Tensor) -> Tensor:
        h = self._act(self.from_latent(z)).view(-1, *self._flat_shape)  # (B, C_last, h, w)
        for i, deconv in enumerate(self.up):
            h = deconv(h)  # side doubles back: 7 -> 14 -> 28, channels mirror the encoder
            if i < len(self.up) - 1:
                h = self._act(h)
        return h  # (B, C, H, W) logits


class LSTMAutoencoder(AutoencoderBase):
    """Sequence AE (Srivastava et al. 2015, "unconditioned" decoder): an LSTM encoder's state at
    each sequence's last valid step -> ``Linear`` -> latent ``z`` (B, latent_size); ``z``
    repeated ``T`` times -> LSTM decoder -> ``Linear`` -> features (B, T, F).

    ``lengths`` (B,) marks right padding: padded steps are excluded from the loss and outputs
    past a sequence's length are zero. ``decode`` needs the number of ``steps``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        latent_size: int,
        reconstruction: str = "mse",
        output_activation: str | None = None,
    ):
        super().__init__(reconstruction, output_activation)
        if min(input_size, hidden_size, latent_size) < 1:
            raise ValueError(
                f"sizes must be >= 1; got input_size={input_size}, hidden_size={hidden_size}, "
                f"latent_size={latent_size}"
            )
        self.input_size = input_size
        self.encoder_rnn = LSTM(input_size, hidden_size)  # last valid h: (B, H)
        self.to_latent = nn.Linear(hidden_size, latent_size)
        self.decoder_rnn = LSTM(latent_size, hidden_size, return_sequences=True)
        self.to_features = nn.Linear(hidden_size, input_size)

    def _valid(self, lengths: Tensor | None, batch: int, steps: int, device) -> Tensor | None:
        if lengths is None:
            return None
        lengths = torch.as_tensor(lengths, device=device)
        if lengths.shape != (batch,) or lengths.min() < 1 or lengths.max() > steps:
            raise ValueError(
                f"`lengths` must be ({batch},) with values in [1, {steps}]; got {lengths.tolist()}"
            )
        return (torch.arange(steps, device=device) < lengths[:, None])[..., None]  # (B, T, 1)

    def encode(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        if x.dim() == 4:
            raise ValueError(
                f"LSTMAutoencoder reads sequences (B, T, {self.input_size}), not images "
                f"{tuple(x.shape)}: pass rows as steps, x[:, 0] of shape (B, H, W) with "
                f"input_size=W, or rnnlab.data.images_to_sequences"
            )
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"`x` must be (B, T, {self.input_size}); got {tuple(x.shape)}")
        return self.to_latent(self.encoder_rnn(x, lengths=lengths))  # (B, latent_size)

    def decode_logits(self, z: Tensor, steps: int, lengths: Tensor | None = None) -> Tensor:
        repeated = z[:, None, :].expand(z.shape[0], steps, z.shape[1])  # (B, T, latent_size)
        return self.to_features(self.decoder_rnn(repeated, lengths=lengths))  # (B, T, F)

    def decode(self, z: Tensor, steps: int, lengths: Tensor | None = None) -> Tensor:
        out = self._out(self.decode_logits(z, steps, lengths))
        valid = self._valid(lengths, z.shape[0], steps, z.device)
        return out if valid is None else torch.where(valid, out, torch.zeros_like(out))

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.decode(self.encode(x, lengths), x.shape[1], lengths)

    def _masked_error(self, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        """Per-element error with padded steps zeroed, and valid steps per sequence (B,)."""
        logits = self.decode_logits(self.encode(x, lengths), x.shape[1], lengths)
        err = self.elementwise_error(logits, x)
        valid = self._valid(lengths, x.shape[0], x.shape[1], x.device)
        if valid is None:
            return err, torch.full((x.shape[0],), x.shape[1], device=x.device)
        return torch.where(valid, err, torch.zeros_like(err)), valid.sum(dim=(1, 2))

    def per_example_error(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        err, steps = self._masked_error(x, lengths)
        return err.sum(dim=(1, 2)) / (steps * self.input_size)

    def loss(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Mean error over valid (step, feature) elements of the batch."""
        err, steps = self._masked_error(x, lengths)
        rec = err.sum() / (steps.sum() * self.input_size)
        return rec, {"reconstruction": rec}


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
