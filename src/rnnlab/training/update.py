"""The one optimizer update every family's step goes through.

One update of one optimizer, in this order (nanoGPT's training step, with Keras's
regularizers and constraints)::

    zero_grad -> scale(loss + penalty).backward() -> unscale -> clip (value, then norm)
      -> non-finite guard -> optimizer.step() -> constraint (max-norm) -> scaler.update()

- ``penalty(module)``: the ``train.kernel_l1`` ... ``bias_l2`` terms (:mod:`.regularize`),
  added to the loss of the module the optimizer moves.
- clipping: :func:`~.tbptt.clip_gradients` on that module's parameters (Pascanu et al. 2013).
- the guard: a non-finite loss or gradient norm raises :class:`NonFiniteError` *before*
  ``step``, so the weights stay the last good ones and the loop stops the run with exit 1,
  the last checkpoint intact. Under fp16 loss scaling an overflowing gradient is the scaler's
  business instead (the step is skipped and the scale lowered); a non-finite loss still stops.
- ``constraint(module)``: e.g. max-norm (Srivastava et al. 2014), after the step.

A GAN's phase is an update of its own optimizer (``update(d_loss, discriminator, opt_d)``).
Several losses taken at the same parameters (VAE-GAN's encoder, decoder and discriminator,
Larsen et al. 2016) go through :meth:`Update.many`: every gradient is computed first (each
loss differentiated only w.r.t. its own module), every check made, then every part steps.
Truncated BPTT backpropagates several chunks before one step: :meth:`Update.backward` per
chunk, then :meth:`Update.step`. The LR schedule is stepped by the loop (per step or epoch).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from .precision import Precision
from .tbptt import clip_gradients

__all__ = ["NonFiniteError", "Update"]


class NonFiniteError(FloatingPointError):
    """The loss or the gradient norm became NaN or infinite; nothing was stepped."""


class Update:
    """``update(loss, module, optimizer) -> {"grad_norm", "penalty"?}``: one guarded step.

    ``clip_norm`` / ``clip_value``: gradient clipping (None = off); ``penalty(module) ->
    Tensor``: added to the loss; ``constraint(module)``: applied after the step, without
    grad; ``precision``: autocast and the loss scaler (fp32 when None).
    """

    def __init__(
        self,
        *,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        penalty: Callable[[nn.Module], Tensor] | None = None,
        constraint: Callable[[nn.Module], None] | None = None,
        precision: Precision | None = None,
    ) -> None:
        self.clip_norm, self.clip_value = clip_norm, clip_value
        self.penalty, self.constraint = penalty, constraint
        self.precision = precision if precision is not None else Precision()

    def autocast(self):
        """The forward pass and loss of a step run inside this."""
        return self.precision.autocast()

    def __call__(self, loss: Tensor, module: nn.Module, optimizer) -> dict[str, float]:
        """One update of ``optimizer`` (which holds ``module``'s parameters) on ``loss``."""
        return self.many({"": (loss, module, optimizer)})[""]

    def many(self, parts: Mapping[str, tuple[Tensor, nn.Module, object]]) -> dict[str, dict]:
        """``{name: (loss, module, optimizer)}`` at the same parameters: each loss's gradient
        w.r.t. its own module only; nothing steps unless every part is finite."""
        totals, metrics = {}, {}
        for name, (loss, module, _) in parts.items():
            with self.autocast():
                total, metrics[name] = self._penalized(loss, module)
            totals[name] = total
        for *_, optimizer in parts.values():
            optimizer.zero_grad(set_to_none=True)
        if len(parts) == 1:
            self.precision.scale(next(iter(totals.values()))).backward()
        else:
            for name, (_, module, _) in parts.items():
                params = [p for p in module.parameters() if p.requires_grad]
                grads = torch.autograd.grad(
                    self.precision.scale(totals[name]), params, retain_graph=True,
                    allow_unused=True,
                )  # fmt: skip
                for p, g in zip(params, grads, strict=True):
                    p.grad = g
        for name, (loss, module, optimizer) in parts.items():
            metrics[name]["grad_norm"] = self._unscale_clip_check(loss, module, optimizer)
        for _, module, optimizer in parts.values():
            self._step(module, optimizer)
        self.precision.update()
        return metrics

    def backward(self, loss: Tensor) -> None:
        """Accumulate ``loss``'s (scaled) gradient; :meth:`step` finishes the update. The
        caller zeroes the gradients first (``optimizer.zero_grad``)."""
        self.precision.scale(loss).backward()

    def step(self, loss: float | Tensor, module: nn.Module, optimizer) -> dict[str, float]:
        """Finish an update whose gradients :meth:`backward` accumulated: the penalty's
        gradient, unscale, clip, guard (``loss`` is the value it checks), step, constraint."""
        metrics: dict[str, float] = {}
        if self.penalty is not None:
            with self.autocast():
                p = self.penalty(module)
            self.precision.scale(p).backward()
            metrics["penalty"] = float(p.detach())
        metrics["grad_norm"] = self._unscale_clip_check(loss, module, optimizer)
        self._step(module, optimizer)
        self.precision.update()
        return metrics

    # ------------------------------------------------------------------ the parts
    def _penalized(self, loss: Tensor, module: nn.Module) -> tuple[Tensor, dict[str, float]]:
        if self.penalty is None:
            return loss, {}
        p = self.penalty(module)
        return loss + p, {"penalty": float(p.detach())}

    def _unscale_clip_check(self, loss, module: nn.Module, optimizer) -> float:
        self.precision.unscale(optimizer)
        norm = clip_gradients(
            module.parameters(), max_norm=self.clip_norm, max_value=self.clip_value
        )
        value = float(loss.detach()) if isinstance(loss, Tensor) else float(loss)
        if not math.isfinite(value) or not (math.isfinite(norm) or self.precision.skips_overflow):
            raise NonFiniteError(f"loss = {value}, gradient norm = {norm}")
        return norm

    def _step(self, module: nn.Module, optimizer) -> None:
        self.precision.step(optimizer)
        if self.constraint is not None:
            with torch.no_grad():
                self.constraint(module)
