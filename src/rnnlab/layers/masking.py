"""Small pure tensor functions for padded and masked batches: lengths and masks, state
selection, reversing each sequence's span, and picking each sequence's last valid step.

Two ways to say which steps count:

- ``lengths`` (B,): right padding, sequence b occupies steps ``0 .. lengths[b] - 1``
  (a length may be 0: an empty row);
- ``mask`` (B, T) bool: any pattern, True on the steps that count (Keras's masks).

:func:`mask_to_lengths` tells when a mask is right padding (so the fast path can run it).
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnlab.data.sequences import lengths_to_mask

__all__ = [
    "check_lengths",
    "check_mask",
    "detach_state",
    "flatten_state",
    "last_valid",
    "lengths_to_mask",
    "map_state",
    "mask_spans",
    "mask_to_lengths",
    "reverse_padded",
    "select_state",
]


def check_lengths(
    lengths, batch_size: int, max_len: int, device: torch.device, *, values: bool = True
) -> Tensor | None:
    """Validate ``lengths`` and return it as an int64 tensor on ``device``.

    Returns ``None`` when every sequence is full length (the loop then needs no masks).
    Each length must satisfy ``0 <= length <= T`` (0: an empty row, which gives zero
    outputs and the initial state back); the batch size must match. ``values=False`` skips
    the checks that read the values (and the full-length shortcut), so that a traced or
    exported graph stays valid for any lengths.
    """
    if lengths is None:
        return None
    if not isinstance(lengths, Tensor):
        lengths = torch.as_tensor(lengths)
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise TypeError(f"`lengths` must hold integers, got dtype {lengths.dtype}.")
    if lengths.dim() != 1 or lengths.numel() != batch_size:
        raise ValueError(
            f"`lengths` must have shape (batch_size,) = ({batch_size},), "
            f"got shape {tuple(lengths.shape)}."
        )
    if not values:
        return lengths.to(device=device, dtype=torch.int64)
    lo, hi = int(lengths.min()), int(lengths.max())
    if lo < 0 or hi > max_len:
        raise ValueError(
            f"Every value of `lengths` must be in [0, T] = [0, {max_len}], got min {lo}, max {hi}."
        )
    if lo == max_len:
        return None
    return lengths.to(device=device, dtype=torch.int64)


def check_mask(mask, batch_size: int, max_len: int, device: torch.device) -> Tensor:
    """Validate a Keras-style step mask: a bool tensor of shape (B, T), True = step counts."""
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
        raise TypeError(
            f"`mask` must be a torch.bool tensor of shape (batch, time) = ({batch_size}, "
            f"{max_len}), got {got}."
        )
    if tuple(mask.shape) != (batch_size, max_len):
        raise ValueError(
            f"`mask` must have shape (batch, time) = ({batch_size}, {max_len}), "
            f"got {tuple(mask.shape)}."
        )
    return mask.to(device)


def mask_to_lengths(mask: Tensor) -> Tensor | None:
    """The lengths (B,) of a right-padded mask, or ``None`` when ``mask`` has holes."""
    lengths = mask.sum(1)
    if torch.equal(mask, lengths_to_mask(lengths, mask.size(1))):
        return lengths
    return None


def mask_spans(mask: Tensor) -> Tensor:
    """(B, T) mask -> (B,) index of each row's last True step + 1 (0 for an empty row)."""
    t = torch.arange(1, mask.size(1) + 1, device=mask.device)
    return (mask * t).amax(1)


def select_state(keep: Tensor, new, old):
    """``where(keep, new, old)`` on a tensor state or on each tensor of a nested state.

    ``keep`` is (B, 1) bool: masked steps keep the old state.
    """
    if isinstance(new, Tensor):
        return torch.where(keep, new, old)
    fields = [select_state(keep, n, o) for n, o in zip(new, old, strict=True)]
    return type(new)(*fields) if hasattr(new, "_fields") else type(new)(fields)


def map_state(fn, state):
    """Apply ``fn`` to a tensor state or to each tensor of a (nested) tuple/NamedTuple."""
    if isinstance(state, Tensor):
        return fn(state)
    if hasattr(state, "_fields"):
        return type(state)(*(map_state(fn, s) for s in state))
    return type(state)(map_state(fn, s) for s in state)


def flatten_state(state) -> list[Tensor]:
    """The tensors of a (nested) state, in order."""
    if isinstance(state, Tensor):
        return [state]
    return [t for s in state for t in flatten_state(s)]


def detach_state(state):
    """Cut the graph behind a state (truncated BPTT: "otherwise backprop would run to the
    start of the dataset")."""
    return map_state(lambda s: s.detach(), state)


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence's first ``lengths[b]`` steps along time, keeping the rest.

    ``x`` (B, T, ...). With ``lengths=None`` this is a plain flip. The map is its own
    inverse, so it also flips a backward pass's outputs back into input order.
    """
    if lengths is None:
        return x.flip(1)
    T = x.size(1)
    t = torch.arange(T, device=x.device)[None, :]  # (1, T)
    idx = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)  # (B, T)
    idx = idx.view(*idx.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, idx)


def last_valid(outputs: Tensor, lengths: Tensor | None) -> Tensor:
    """(B, T, H) outputs -> (B, H): each sequence's output at step ``lengths - 1`` (zeros
    for an empty row)."""
    if lengths is None:
        return outputs[:, -1]
    idx = (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, outputs.size(-1))
    return outputs.gather(1, idx).squeeze(1) * (lengths > 0)[:, None]
