"""Bidirectional wrapper: one layer reads forward, a copy reads each valid prefix backward.

As Keras's ``Bidirectional`` (and torch's ``bidirectional=True``): the backward copy gets
its own fresh weights, its outputs are flipped back into input order (only within each
sequence's valid prefix, so padding stays at the end; Flax's ``flip_sequences``), and the
two are merged per ``merge_mode``. Stacking and bidirectionality wrap the one time loop of
:class:`rnnlab.layers.RNN`; neither copies it.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from .masking import check_lengths, last_valid, reverse_padded
from .recurrent import RNN

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


class Bidirectional(nn.Module):
    """``Bidirectional(layer, merge_mode="concat")``.

    ``layer`` is an :class:`RNN` (SimpleRNN, LSTM, GRU); its ``return_sequences`` /
    ``return_state`` flags apply to the pair. Called as ``bi(x, lengths=None,
    initial_state=None)`` with ``initial_state = (forward_state, backward_state)``.
    Returns the merged output (``merge_mode=None``: the pair ``(forward, backward)``) and,
    with ``return_state``, ``(forward_state, backward_state)``. Without
    ``return_sequences`` the backward half of the output is its last processed step, i.e.
    the one at position 0, as in Keras.
    """

    def __init__(self, layer: RNN, merge_mode: str | None = "concat") -> None:
        super().__init__()
        if not isinstance(layer, RNN):
            raise TypeError(f"`layer` must be an rnnlab RNN layer, got {type(layer).__name__}.")
        if merge_mode not in MERGE_MODES:
            raise ValueError(
                f"Received an invalid value for argument `merge_mode`: expected one of "
                f"{MERGE_MODES}, got {merge_mode!r}."
            )
        self.forward_layer = layer
        self.backward_layer = copy.deepcopy(layer)
        self.backward_layer.go_backwards = not layer.go_backwards
        self.backward_layer.cell.reset_parameters()
        self.merge_mode = merge_mode

    @property
    def input_size(self) -> int:
        return self.forward_layer.input_size

    @property
    def output_size(self) -> int:
        h = self.forward_layer.output_size
        return 2 * h if self.merge_mode == "concat" else h

    @property
    def return_sequences(self) -> bool:
        return self.forward_layer.return_sequences

    @property
    def return_state(self) -> bool:
        return self.forward_layer.return_state

    def reset_state(self) -> None:
        self.forward_layer.reset_state()
        self.backward_layer.reset_state()

    def _merge(self, a: Tensor, b: Tensor):
        if self.merge_mode == "concat":
            return torch.cat([a, b], dim=-1)
        if self.merge_mode == "sum":
            return a + b
        if self.merge_mode == "mul":
            return a * b
        if self.merge_mode == "ave":
            return (a + b) / 2
        return a, b

    def _both(self, x: Tensor, lengths, initial_state):
        fwd_init, bwd_init = (None, None) if initial_state is None else initial_state
        out_f, state_f = self.forward_layer.run(x, lengths, fwd_init)
        out_b, state_b = self.backward_layer.run(x, lengths, bwd_init)
        lengths = check_lengths(lengths, x.size(0), x.size(1), x.device)
        return out_f, out_b, (state_f, state_b), lengths

    def run(self, x: Tensor, lengths: Tensor | None = None, initial_state=None):
        """Merged outputs (B, T, ·) in input order and ``(forward_state, backward_state)``."""
        out_f, out_b, states, lengths = self._both(x, lengths, initial_state)
        # The backward layer processed the reversed prefix: flip its outputs back.
        return self._merge(out_f, reverse_padded(out_b, lengths)), states

    def forward(self, x: Tensor, lengths: Tensor | None = None, initial_state=None):
        out_f, out_b, states, lengths = self._both(x, lengths, initial_state)
        if self.return_sequences:
            out = self._merge(out_f, reverse_padded(out_b, lengths))
        else:
            out = self._merge(last_valid(out_f, lengths), last_valid(out_b, lengths))
        return (out, states) if self.return_state else out
