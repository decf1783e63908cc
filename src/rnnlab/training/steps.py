"""Family-specific halves of training: one optimisation step and one evaluation step each.

A train step is ``step(model, batch, optimizer, *, clip_norm=None, clip_value=None) ->
metrics`` and an eval step ``step(model, batch) -> metrics`` (plain floats, batch means;
the loop weights them by batch size). ``batch`` is ``(x, y)`` or ``(x, y, lengths)``.
Steps own their update (as :mod:`rnnlab.training.generative_steps` does), because TBPTT
and GANs need more than one backward per batch; :func:`update` is the shared one-backward
form, and it refuses to step on a non-finite loss or gradient (:class:`NonFiniteError`), so
the weights stay the last good ones. ``amp`` (a :class:`~.precision.Precision`) runs the
forward pass and loss under autocast; with fp16's loss scaler an overflowing gradient skips
the step and lowers the scale instead of stopping (only a non-finite loss stops).

- :func:`classify_step` / :func:`classify_eval`: cross-entropy on logits, accuracy.
- :func:`regress_step` / :func:`regress_eval`: MSE (the adding problem; 0.167 is the
  "always predict 1" baseline).
- :func:`tbptt_step`: the adding problem in truncated-BPTT chunks of ``k`` steps
  (:func:`rnnlab.training.tbptt.truncated_bptt`); the state is carried across chunks and
  detached, so the gradient of the final-step loss reaches back at most ``k`` steps.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .tbptt import clip_gradients, truncated_bptt

__all__ = [
    "NonFiniteError", "classify_eval", "classify_step", "regress_eval", "regress_step",
    "tbptt_step", "update",
]  # fmt: skip


class NonFiniteError(FloatingPointError):
    """The loss or the gradient norm became NaN or infinite; nothing was stepped."""


def _unpack(batch) -> tuple[Tensor, Tensor, Tensor | None]:
    if len(batch) == 2:
        return batch[0], batch[1], None
    return batch[0], batch[1], batch[2]


def update(
    loss: Tensor,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    clip_norm: float | None = None,
    clip_value: float | None = None,
    after_step: Callable[[nn.Module], None] | None = None,
    amp=None,
) -> float:
    """zero_grad -> backward -> clip -> finite check -> step -> ``after_step(model)`` (a
    constraint such as max-norm). Returns the gradient norm. With ``amp`` (a
    :class:`~.precision.Precision`) the loss is scaled before backward and the gradients
    unscaled before clipping (fp16)."""
    optimizer.zero_grad(set_to_none=True)
    if amp is None:
        loss.backward()
        norm = _clip_and_check(loss.item(), model, clip_norm, clip_value)
        optimizer.step()
    else:
        amp.backward(loss)
        amp.unscale(optimizer)
        norm = _clip_and_check(
            loss.item(), model, clip_norm, clip_value, overflow_ok=amp.skips_overflow
        )
        amp.step(optimizer)
    if after_step is not None:
        after_step(model)
    return norm


def _clip_and_check(
    loss: float, model: nn.Module, clip_norm, clip_value, *, overflow_ok: bool = False
) -> float:
    norm = clip_gradients(model.parameters(), max_norm=clip_norm, max_value=clip_value)
    if not math.isfinite(loss) or not (math.isfinite(norm) or overflow_ok):
        raise NonFiniteError(f"loss = {loss}, gradient norm = {norm}")
    return norm


def _autocast(amp):
    return amp.autocast() if amp is not None else contextlib.nullcontext()


def classify_step(
    model: nn.Module,
    batch,
    optimizer: torch.optim.Optimizer,
    *,
    clip_norm: float | None = None,
    clip_value: float | None = None,
    penalty: Callable[[nn.Module], Tensor] | None = None,
    after_step: Callable[[nn.Module], None] | None = None,
    amp=None,
) -> dict[str, float]:
    """One cross-entropy step; returns ``{"loss", "accuracy", "grad_norm"}`` (and
    ``"penalty"``, the regularizer ``penalty(model)`` added to the loss, when given).
    ``amp``: forward + loss under autocast (:mod:`.precision`)."""
    x, y, lengths = _unpack(batch)
    model.train()
    with _autocast(amp):
        logits = model(x, lengths)
        loss = F.cross_entropy(logits, y)
        total, extra = _penalized(loss, model, penalty)
    norm = update(
        total, model, optimizer, clip_norm=clip_norm, clip_value=clip_value,
        after_step=after_step, amp=amp,
    )  # fmt: skip
    accuracy = (logits.detach().argmax(-1) == y).float().mean().item()
    return {"loss": loss.item(), "accuracy": accuracy, "grad_norm": norm, **extra}


def _penalized(loss: Tensor, model: nn.Module, penalty) -> tuple[Tensor, dict[str, float]]:
    """``loss + penalty(model)`` and the penalty's value as a metric (nothing without one)."""
    if penalty is None:
        return loss, {}
    p = penalty(model)
    return loss + p, {"penalty": float(p.detach())}


@torch.no_grad()
def classify_eval(model: nn.Module, batch) -> dict[str, float]:
    """``{"loss", "accuracy"}`` of ``model`` in eval mode."""
    x, y, lengths = _unpack(batch)
    model.eval()
    logits = model(x, lengths)
    return {
        "loss": F.cross_entropy(logits, y).item(),
        "accuracy": (logits.argmax(-1) == y).float().mean().item(),
    }


def regress_step(
    model: nn.Module,
    batch,
    optimizer: torch.optim.Optimizer,
    *,
    clip_norm: float | None = None,
    clip_value: float | None = None,
    penalty: Callable[[nn.Module], Tensor] | None = None,
    after_step: Callable[[nn.Module], None] | None = None,
    amp=None,
) -> dict[str, float]:
    """One full-BPTT MSE step (+ ``penalty(model)``); returns ``{"loss", "grad_norm"}``.
    ``amp``: forward + loss under autocast (:mod:`.precision`)."""
    x, y, lengths = _unpack(batch)
    model.train()
    with _autocast(amp):
        loss = F.mse_loss(model(x, lengths).float(), y)
        total, extra = _penalized(loss, model, penalty)
    norm = update(
        total, model, optimizer, clip_norm=clip_norm, clip_value=clip_value,
        after_step=after_step, amp=amp,
    )  # fmt: skip
    return {"loss": loss.item(), "grad_norm": norm, **extra}


@torch.no_grad()
def regress_eval(model: nn.Module, batch) -> dict[str, float]:
    """``{"loss"}``: the MSE of ``model`` in eval mode."""
    x, y, lengths = _unpack(batch)
    model.eval()
    return {"loss": F.mse_loss(model(x, lengths), y).item()}


def _final_step_mse(outputs: Tensor, target: Tensor) -> Tensor:
    """MSE over the steps whose target is not NaN; a zero that still backpropagates when
    the chunk holds none (so every chunk can call ``backward``)."""
    known = ~torch.isnan(target)
    if not known.any():
        return outputs.sum() * 0.0
    return F.mse_loss(outputs[known], target[known])


def tbptt_step(
    model: nn.Module,
    batch,
    optimizer: torch.optim.Optimizer,
    *,
    k: int = 50,
    clip_norm: float | None = None,
    clip_value: float | None = None,
) -> dict[str, float]:
    """Truncated BPTT on a sequence-to-one regression: ``model.run(x_chunk, state) ->
    (per-step predictions, state)`` (:class:`rnnlab.models.classifiers.SequenceRegressor`).

    The target sits at the last step only; chunk gradients accumulate and the optimizer
    steps once per batch. Returns ``{"loss"}`` (MSE at the last step) and ``"grad_norm"``.
    """
    x, y, _ = _unpack(batch)
    model.train()
    B, T = x.shape[:2]
    per_step = torch.full((B, T, y.size(-1)), float("nan"), device=y.device, dtype=y.dtype)
    per_step[:, -1] = y  # (B, T, 1): NaN = no target at this step
    inner = model.module if hasattr(model, "module") else model  # DDP keeps run() inside
    optimizer.zero_grad(set_to_none=True)
    losses, _ = truncated_bptt(inner.run, _final_step_mse, x, per_step, k)
    norm = _clip_and_check(losses[-1], model, clip_norm, clip_value)
    optimizer.step()
    return {"loss": losses[-1], "grad_norm": norm}
