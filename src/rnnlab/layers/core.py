"""The few non-recurrent pieces the chapter's Keras models need: ``Embedding``, ``Dense``,
``Activation`` and a ``Sequential`` container whose layers hand their output to the next.

``Dense`` is ``torch.nn.Linear`` with Keras's initialisers (Glorot-uniform kernel, zero
bias) and an optional activation, so ``Dense(128, 10, activation="softmax")`` reads like the
listing's ``Dense(10, activation='softmax')``.
"""

from __future__ import annotations

from torch import Tensor, nn

from .activations import get_activation
from .bidirectional import Bidirectional
from .recurrent import RNN
from .stacked import Stacked


def _activation_fn(name: str | None):
    return None if name is None else get_activation(name)


class Embedding(nn.Embedding):
    """Keras's ``Embedding(input_dim, output_dim, mask_zero=False)``: token ids (B, T) ->
    vectors (B, T, output_dim), initialised U(-0.05, 0.05) as Keras does. With
    ``mask_zero``, id 0 is padding: :class:`Sequential` hands ``ids != 0`` to the recurrent
    layers that follow as their ``mask``."""

    def __init__(self, input_dim: int, output_dim: int, *, mask_zero: bool = False) -> None:
        super().__init__(input_dim, output_dim)
        self.mask_zero = bool(mask_zero)
        nn.init.uniform_(self.weight, -0.05, 0.05)

    def forward(self, ids: Tensor) -> Tensor:
        return super().forward(ids.long())

    def extra_repr(self) -> str:
        return super().extra_repr() + (", mask_zero=True" if self.mask_zero else "")


class Dense(nn.Linear):
    """Fully connected layer ``y = act(x Wᵀ + b)`` with Keras's default initialisers."""

    def __init__(
        self, in_features: int, units: int, *, activation: str | None = None, use_bias: bool = True
    ) -> None:
        super().__init__(in_features, units, bias=use_bias)
        self.activation = activation
        self._act = _activation_fn(activation)
        nn.init.xavier_uniform_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        y = super().forward(x)
        return y if self._act is None else self._act(y)


class Activation(nn.Module):
    """A parameter-free activation layer, e.g. ``Activation("softmax")``."""

    def __init__(self, activation: str) -> None:
        super().__init__()
        if activation is None:
            raise ValueError("`activation` must name an activation, got None.")
        self.activation = activation
        self._act = _activation_fn(activation)

    def forward(self, x: Tensor) -> Tensor:
        return self._act(x)

    def extra_repr(self) -> str:
        return repr(self.activation)


class Sequential(nn.Sequential):
    """``torch.nn.Sequential`` that also passes ``lengths`` (or a mask) to the recurrent
    layers in it.

    ``model(x, lengths=None, *, mask=None)``: the first layer that accepts ``lengths`` (a
    recurrent layer) gets them (and the next one too while outputs stay sequences);
    everything else sees only the running tensor. An :class:`Embedding` with
    ``mask_zero=True`` makes the mask ``ids != 0`` for the recurrent layers after it, as
    Keras's mask propagation does.
    """

    def forward(self, x: Tensor, lengths: Tensor | None = None, *, mask=None) -> Tensor:  # type: ignore[override]
        for layer in self:
            if isinstance(layer, Embedding) and layer.mask_zero:
                mask, lengths = x != 0, None
                x = layer(x)
            elif isinstance(layer, (RNN, Bidirectional, Stacked)):
                if lengths is None and mask is None:
                    x = layer(x)
                else:
                    x = layer(x, lengths, mask=mask)
                if not layer.return_sequences:
                    lengths = mask = None
            else:
                x = layer(x)
        return x
