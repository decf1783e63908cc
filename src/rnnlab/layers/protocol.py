"""The cell protocol and the shapes around the time loop: checking that a cell follows the
protocol, fitting a user's ``initial_state`` to a cell's state structure, and the
batch-first / time-major / ``PackedSequence`` layouts of a layer's input and output.

The protocol (:class:`rnnlab.layers.RNN` needs nothing else and never checks a class)::

    cell.input_size, cell.hidden_size        # I, and the size of the recurrent state
    cell.initial_state(B, *, device, dtype)  # a tensor or a (Named)tuple of tensors
    cell.project_inputs(x)                   # (B, T, I) -> (B, T, ·): the input half
    cell.step(xp_t, state, mask)             # -> (output (B, O), new_state)
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

__all__ = ["PROTOCOL", "Unrolled", "check_cell", "fit_state", "layout_in", "layout_out"]

PROTOCOL = ("input_size", "hidden_size", "initial_state", "project_inputs", "step")


def check_cell(cell) -> None:
    missing = [name for name in PROTOCOL if not hasattr(cell, name)]
    if missing:
        raise TypeError(
            f"`cell` must follow the cell protocol ({', '.join(PROTOCOL)}; see "
            f"rnnlab.layers.RNN): {type(cell).__name__} has no {', '.join(missing)}."
        )


def fit_state(template, given, where: str = "initial_state"):
    """``given`` in the structure of ``template`` (the cell's initial state): a tensor, or a
    tuple/NamedTuple of states; lists and plain tuples are accepted for tuple states."""
    if isinstance(template, Tensor):
        if not isinstance(given, Tensor):
            raise TypeError(
                f"`{where}` must be a tensor {tuple(template.shape)}, got {type(given).__name__}."
            )
        if given.shape != template.shape:
            raise ValueError(
                f"`{where}` tensors must have shape {tuple(template.shape)}, "
                f"got {tuple(given.shape)}."
            )
        return given
    name = type(template).__name__
    if not isinstance(given, (tuple, list)) or len(given) != len(template):
        got = (
            f"{type(given).__name__} of {len(given)}"
            if isinstance(given, (tuple, list))
            else type(given).__name__
        )
        raise TypeError(
            f"`{where}` must be a {name} of {len(template)} (or a list/tuple in that order), "
            f"got {got}."
        )
    parts = [
        fit_state(t, g, f"{where}[{k}]")
        for k, (t, g) in enumerate(zip(template, given, strict=True))
    ]
    return type(template)(*parts) if hasattr(template, "_fields") else type(template)(parts)


def layout_in(module, x, lengths, mask):
    """A layer's input as the loop takes it: batch-first, a ``PackedSequence`` unpacked
    into padding + lengths. Returns ``(x (B, T, I), lengths, packed)``."""
    if isinstance(x, PackedSequence):
        if lengths is not None or mask is not None:
            raise ValueError("A PackedSequence carries its lengths: pass no `lengths` or `mask`.")
        x, lengths = pad_packed_sequence(x, batch_first=True)
        return x, lengths, True
    if isinstance(x, Tensor) and not module.batch_first:
        x = x.transpose(0, 1)
    return x, lengths, False


def layout_out(module, result, packed_lengths: Tensor | None):
    """Put a layer's sequence output back in its input's layout: packed again when the
    input was a ``PackedSequence`` (``packed_lengths``), time-major without batch_first."""
    if not module.return_sequences:
        return result
    out, rest = (result[0], result[1:]) if module.return_state else (result, ())

    def convert(o: Tensor):
        if packed_lengths is not None:
            return pack_padded_sequence(o, packed_lengths, batch_first=True, enforce_sorted=False)
        return o if module.batch_first else o.transpose(0, 1)

    out = tuple(convert(o) for o in out) if isinstance(out, tuple) else convert(out)
    return (out, *rest) if module.return_state else out


class Unrolled(NamedTuple):
    """What :meth:`RNN.unroll` returns: ``outputs`` (B, T, O) batch-first in processing
    order, the ``final_state``, and ``last`` (B, O), the output at each row's last unmasked
    step."""

    outputs: Tensor
    final_state: object
    last: Tensor
