"""Stacked recurrent layers: each layer reads the full output sequence of the one below.

``Stacked(layer_1, ..., layer_L, dropout=p)`` is torch's ``num_layers=L`` (and Keras's
stack of ``return_sequences=True`` layers): standard dropout with rate ``p`` on the outputs
of every layer except the last, in training mode only. :func:`stacked` builds the common
case (L layers of one kind, optionally bidirectional) in one call.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .bidirectional import Bidirectional
from .protocol import layout_in, layout_out
from .recurrent import GRU, LSTM, RNN, SimpleRNN

KINDS = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}


def _of_layer(index: int, name: str) -> property:
    """A read-only property: attribute ``name`` of ``self.layers[index]``."""
    return property(lambda self: getattr(self.layers[index], name), doc=f"layers[{index}].{name}")


class Stacked(nn.Module):
    """Layers on top of each other. The return flags are the LAST layer's; inner layers
    always hand their whole output sequence up. ``initial_state`` is a list (one entry per
    layer, ``None`` allowed); with ``return_state`` the final states come back as a list."""

    def __init__(self, *layers: nn.Module, dropout: float = 0.0) -> None:
        super().__init__()
        if not layers:
            raise ValueError("`layers` must hold at least one recurrent layer, got none.")
        for i, layer in enumerate(layers):
            if not isinstance(layer, (RNN, Bidirectional)):
                raise TypeError(
                    f"`layers[{i}]` must be an RNN or Bidirectional layer, "
                    f"got {type(layer).__name__}."
                )
            if isinstance(layer, Bidirectional) and layer.merge_mode is None:
                raise ValueError(f"`layers[{i}]`: a stacked Bidirectional needs a merge_mode.")
            if i and layer.input_size != layers[i - 1].output_size:
                raise ValueError(
                    f"`layers[{i}]` expects input_size {layer.input_size}, but layers[{i - 1}] "
                    f"outputs {layers[i - 1].output_size} features."
                )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be a rate in [0, 1), got {dropout!r}.")
        self.layers = nn.ModuleList(layers)
        self.dropout = dropout

    # what the stack reads is its first layer's; what it returns is its last layer's
    input_size = _of_layer(0, "input_size")
    batch_first = _of_layer(0, "batch_first")
    output_size = _of_layer(-1, "output_size")
    return_sequences = _of_layer(-1, "return_sequences")
    return_state = _of_layer(-1, "return_state")

    def to_torch(self) -> nn.Module:
        """The equivalent ``torch.nn`` module, weights copied (:func:`rnnlab.layers.to_torch`)."""
        from .interop import to_torch

        return to_torch(self)

    def reset_state(self) -> None:
        for layer in self.layers:
            layer.reset_state()

    def run(self, x: Tensor, lengths: Tensor | None = None, initial_state=None, *, mask=None):
        """Top layer's outputs (B, T, ·) and the list of every layer's final state."""
        if initial_state is not None and len(initial_state) != len(self.layers):
            raise ValueError(
                f"`initial_state` must be a list of {len(self.layers)} states (one per layer), "
                f"got {len(initial_state)}."
            )
        init = [None] * len(self.layers) if initial_state is None else initial_state
        *inner, top = self.layers
        x, states = self.run_layers(inner, x, lengths, init, mask)
        x, state = top.run(x, lengths, init[-1], mask=mask)
        return x, [*states, state]

    def run_layers(self, layers, x: Tensor, lengths, init, mask=None):
        """Run ``layers`` (all but the top), with dropout after each, in training mode."""
        states = []
        for layer, state in zip(layers, init, strict=False):
            x, state = layer.run(x, lengths, state, mask=mask)
            states.append(state)
            if self.training and self.dropout > 0:
                x = F.dropout(x, self.dropout, training=True)
        return x, states

    def forward(self, x: Tensor, lengths: Tensor | None = None, initial_state=None, *, mask=None):
        # The top layer formats its own output: a Bidirectional top layer's "last" output
        # is the forward half at each length - 1 and the backward half at step 0.
        x, lengths, packed = layout_in(self, x, lengths, mask)
        *inner, top = self.layers
        init = [None] * len(self.layers) if initial_state is None else initial_state
        x, states = self.run_layers(inner, x, lengths, init, mask)
        result = top.call_batch_first(x, lengths, init[-1], mask=mask)
        if self.return_state:
            out, state = result
            result = (out, [*states, state])
        return layout_out(self, result, lengths if packed else None)


def stacked(
    kind: str,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    *,
    bidirectional: bool = False,
    dropout: float = 0.0,
    input_dropout: float = 0.0,
    return_sequences: bool = False,
    return_state: bool = False,
    **layer_kwargs,
) -> Stacked:
    """``num_layers`` layers of ``kind`` ("simple_rnn", "lstm", "gru"), as torch's
    ``nn.LSTM(num_layers=..., bidirectional=...)``, with ``dropout`` between layers.

    ``input_dropout`` is each layer's own Keras ``dropout`` (one mask per sequence on its
    inputs); ``layer_kwargs`` (``recurrent_dropout``, ``activation``, ``implementation``,
    ...) go to every layer. The one stack factory: :mod:`rnnlab.models` builds with it.
    """
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {sorted(KINDS)}, got {kind!r}.")
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"`num_layers` must be a positive integer, got {num_layers!r}.")
    layers = []
    size = input_size
    for i in range(num_layers):
        last = i == num_layers - 1
        layer = KINDS[kind](
            size,
            hidden_size,
            dropout=input_dropout,
            return_sequences=return_sequences if last else True,
            return_state=return_state if last else False,
            **layer_kwargs,
        )
        layer = Bidirectional(layer) if bidirectional else layer
        layers.append(layer)
        size = layer.output_size
    return Stacked(*layers, dropout=dropout)
