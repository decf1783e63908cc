"""Truncated backpropagation through time and gradient clipping, for any PyTorch loop.

Truncated BPTT (Williams & Peng 1990; the chapter's 截断BPTT) runs a long sequence in chunks
of ``k`` steps. The state is carried from chunk to chunk but detached at each boundary, so
gradients flow back at most ``k`` steps and memory stays O(k)::

    x: |---- k ----|---- k ----|---- k ----|--|
        chunk 0      chunk 1      chunk 2    tail
        state ──────> detach ───> detach ───> ...

Clipping is the chapter's defence against exploding gradients: rescale the whole gradient
when its global L2 norm exceeds ``max_norm`` (Pascanu et al. 2013), and/or clamp each
component to ``[-max_value, max_value]`` (the chapter's "maximum gradient value").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor

from rnnlab.layers.masking import detach_state


def clip_gradients(
    parameters: Iterable[torch.nn.Parameter],
    *,
    max_norm: float | None = None,
    max_value: float | None = None,
) -> float:
    """Clip gradients in place; returns the global L2 norm measured BEFORE norm clipping
    (after value clipping, if both are given: value clipping runs first)."""
    params = [p for p in parameters if p.grad is not None]
    if max_value is not None:
        if max_value <= 0:
            raise ValueError(f"`max_value` must be positive, got {max_value!r}.")
        torch.nn.utils.clip_grad_value_(params, max_value)
    if max_norm is not None:
        if max_norm <= 0:
            raise ValueError(f"`max_norm` must be positive, got {max_norm!r}.")
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
    if not params:
        return 0.0
    return float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))


def truncated_bptt(
    forward: Callable[[Tensor, object], tuple[Tensor, object]],
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    y: Tensor,
    k: int,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    parameters: Iterable[torch.nn.Parameter] | None = None,
    max_norm: float | None = None,
    max_value: float | None = None,
    state=None,
) -> tuple[list[float], object]:
    """Run ``x`` (B, T, ...) against per-step targets ``y`` (B, T, ...) in chunks of ``k``.

    ``forward(x_chunk, state) -> (outputs, new_state)``, e.g. a stateful model or
    ``lambda xc, s: layer(xc, initial_state=s)`` on a layer with ``return_state=True``.
    Each chunk: forward from the carried state, ``loss_fn(outputs, y_chunk).backward()``,
    clip, ``optimizer.step()`` and ``zero_grad()``; then the state is detached.
    With ``optimizer=None`` nothing is stepped and the gradients of all chunks accumulate
    in ``.grad`` (the truncated gradient of the summed chunk losses).

    Returns the list of chunk losses and the final (detached) state.
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"`k` must be a positive integer number of steps, got {k!r}.")
    if x.shape[:2] != y.shape[:2]:
        raise ValueError(
            f"`x` and `y` must share (batch, time), got {tuple(x.shape[:2])} and "
            f"{tuple(y.shape[:2])}."
        )
    if optimizer is not None and parameters is None:
        parameters = [p for group in optimizer.param_groups for p in group["params"]]
    params = list(parameters) if parameters is not None else []
    losses = []
    for t0 in range(0, x.size(1), k):
        outputs, state = forward(x[:, t0 : t0 + k], state)
        loss = loss_fn(outputs, y[:, t0 : t0 + k])
        loss.backward()
        if max_norm is not None or max_value is not None:
            clip_gradients(params, max_norm=max_norm, max_value=max_value)
        if optimizer is not None:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        state = detach_state(state)
        losses.append(float(loss.detach()))
    return losses, state
