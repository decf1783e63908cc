"""The interface every rnnlab autoencoder shares (``encode``, ``decode``, ``forward``,
``loss -> (total, parts)``, ``per_example_error``) and the activation lookup; the models live
in :mod:`rnnlab.models.autoencoders` and :mod:`rnnlab.models.structured_autoencoders`."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.layers.activations import get_activation
from rnnlab.utils import check_choice


def _activation(name: str | None, arg: str):
    return get_activation("identity" if name is None else name, arg)


class AutoencoderBase(nn.Module):
    r"""Shared interface. Subclasses define ``encode`` and ``decode_logits`` (pre-activation).

    ``reconstruction="mse"``: :math:`\frac1n \sum (\hat x - x)^2` with ``output_activation``
    (default identity). ``"bce"``: :math:`-\frac1n \sum [x \log \hat x + (1-x)\log(1-\hat x)]`
    with :math:`\hat x = \sigma(\text{logits})`, computed stably from the logits. ``n`` counts
    the elements of the batch; ``loss`` returns ``reconstruction + Σ penalties``.
    """

    def __init__(self, reconstruction: str = "mse", output_activation: str | None = None):
        super().__init__()
        check_choice("reconstruction", reconstruction, ("mse", "bce"))
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
