"""The few non-recurrent pieces the chapter's Keras models need: ``Dense``, ``Activation``
and a ``Sequential`` container whose layers hand their output to the next.

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
    """``torch.nn.Sequential`` that also passes ``lengths`` to the recurrent layers in it.

    ``model(x, lengths=None)``: the first layer that accepts ``lengths`` (a recurrent layer)
    gets them (and the next one too while outputs stay sequences); everything else sees
    only the running tensor.
    """

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:  # type: ignore[override]
        for layer in self:
            if lengths is not None and isinstance(layer, (RNN, Bidirectional, Stacked)):
                x = layer(x, lengths)
                lengths = None if not layer.return_sequences else lengths
            else:
                x = layer(x)
        return x
