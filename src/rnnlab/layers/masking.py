"""Small pure tensor functions for right-padded batches: lengths -> masks, state selection,
reversing each sequence's valid prefix, and picking each sequence's last valid step.

Padding is always on the right: sequence b occupies steps ``0 .. lengths[b] - 1``.
"""

from __future__ import annotations

import torch
from torch import Tensor


def check_lengths(lengths, batch_size: int, max_len: int, device: torch.device) -> Tensor | None:
    """Validate ``lengths`` and return it as an int64 tensor on ``device``.

    Returns ``None`` when every sequence is full length (the loop then needs no masks).
    Each length must satisfy ``1 <= length <= T``; the batch size must match.
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
    lo, hi = int(lengths.min()), int(lengths.max())
    if lo < 1 or hi > max_len:
        raise ValueError(
            f"Every value of `lengths` must be in [1, T] = [1, {max_len}], got min {lo}, max {hi}."
        )
    if lo == max_len:
        return None
    return lengths.to(device=device, dtype=torch.int64)


def lengths_to_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(B,) lengths -> (B, T) bool mask, True on valid steps."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def select_state(keep: Tensor, new, old):
    """``where(keep, new, old)`` on a tensor state or on each field of a NamedTuple state.

    ``keep`` is (B, 1) bool: padded steps keep the old state.
    """
    if isinstance(new, Tensor):
        return torch.where(keep, new, old)
    return type(new)(*(torch.where(keep, n, o) for n, o in zip(new, old, strict=True)))


def map_state(fn, state):
    """Apply ``fn`` to a tensor state or to each field of a NamedTuple/tuple state."""
    if isinstance(state, Tensor):
        return fn(state)
    if hasattr(state, "_fields"):
        return type(state)(*(fn(s) for s in state))
    return type(state)(map_state(fn, s) for s in state)


def detach_state(state):
    """Cut the graph behind a state (truncated BPTT: "otherwise backprop would run to the
    start of the dataset")."""
    return map_state(lambda s: s.detach(), state)


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence's valid prefix along time, keeping padding at the end.

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
    """(B, T, H) outputs -> (B, H): each sequence's output at step ``lengths - 1``."""
    if lengths is None:
        return outputs[:, -1]
    idx = (lengths - 1).view(-1, 1, 1).expand(-1, 1, outputs.size(-1))
    return outputs.gather(1, idx).squeeze(1)
