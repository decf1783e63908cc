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

from .masking import check_lengths, check_mask, mask_spans, reverse_padded
from .protocol import layout_in, layout_out
from .recurrent import RNN

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def _of_forward(name: str) -> property:
    """A read-only property: attribute ``name`` of ``self.forward_layer`` (both directions
    share it)."""
    return property(lambda self: getattr(self.forward_layer, name), doc=f"forward_layer.{name}")


class Bidirectional(nn.Module):
    """``Bidirectional(layer, merge_mode="concat")``.

    ``layer`` is an :class:`RNN` (SimpleRNN, LSTM, GRU); its ``return_sequences`` /
    ``return_state`` flags apply to the pair. Called as ``bi(x, lengths=None,
    initial_state=None, *, mask=None)`` with ``initial_state = (forward_state, backward_state)``.
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
    def output_size(self) -> int:
        h = self.forward_layer.output_size
        return 2 * h if self.merge_mode == "concat" else h

    input_size = _of_forward("input_size")
    batch_first = _of_forward("batch_first")
    return_sequences = _of_forward("return_sequences")
    return_state = _of_forward("return_state")

    def to_torch(self) -> nn.Module:
        """The equivalent ``torch.nn`` module, weights copied (:func:`rnnlab.layers.to_torch`)."""
        from .interop import to_torch

        return to_torch(self)

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

    def _both(self, x: Tensor, lengths, initial_state, mask):
        fwd_init, bwd_init = (None, None) if initial_state is None else initial_state
        f = self.forward_layer.unroll(x, lengths, fwd_init, mask=mask)
        b = self.backward_layer.unroll(x, lengths, bwd_init, mask=mask)
        return f, b, (f.final_state, b.final_state)

    def _backward_in_input_order(self, out_b: Tensor, x: Tensor, lengths, mask) -> Tensor:
        """Flip the backward layer's outputs (processing order) back into input order."""
        if self.backward_layer.go_backwards_layout == "keras":
            return out_b.flip(1)
        B, T = x.shape[:2]
        if mask is not None:
            return reverse_padded(out_b, mask_spans(check_mask(mask, B, T, x.device)))
        graph = torch.compiler.is_compiling() or torch.jit.is_tracing()
        return reverse_padded(out_b, check_lengths(lengths, B, T, x.device, values=not graph))

    def run(self, x: Tensor, lengths: Tensor | None = None, initial_state=None, *, mask=None):
        """Merged outputs (B, T, ·) in input order and ``(forward_state, backward_state)``."""
        f, b, states = self._both(x, lengths, initial_state, mask)
        return self._merge(
            f.outputs, self._backward_in_input_order(b.outputs, x, lengths, mask)
        ), states

    def forward(self, x: Tensor, lengths: Tensor | None = None, initial_state=None, *, mask=None):
        x, lengths, packed = layout_in(self, x, lengths, mask)
        out = self.call_batch_first(x, lengths, initial_state, mask=mask)
        return layout_out(self, out, lengths if packed else None)

    def call_batch_first(self, x: Tensor, lengths=None, initial_state=None, *, mask=None):
        """:meth:`forward` on batch-first ``x`` (B, T, I), without layout conversions."""
        f, b, states = self._both(x, lengths, initial_state, mask)
        if self.return_sequences:
            out = self._merge(f.outputs, self._backward_in_input_order(b.outputs, x, lengths, mask))
        else:  # each direction's last processed output: the backward one is at position 0
            out = self._merge(f.last, b.last)
        return (out, states) if self.return_state else out
