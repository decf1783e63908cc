"""Autoencoders with structure in their input: :class:`ConvAutoencoder` for images (stride-2
convolutions, Masci et al. 2011) and :class:`LSTMAutoencoder` for sequences (Srivastava et al.
2015: one latent vector repeated over time), behind the interface of
:class:`rnnlab.models.ae_base.AutoencoderBase`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from rnnlab.layers import LSTM

from .ae_base import AutoencoderBase, _activation


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
