"""Mixed-precision training: ``train.precision = fp32 | bf16 | fp16`` (CLI ``--precision``).

The forward pass and the loss run under :class:`torch.autocast`; the backward pass and the
optimizer step stay outside it and the master weights stay fp32 (Micikevicius et al. 2018,
"Mixed Precision Training", ICLR; PyTorch's ``torch.amp`` recipe). ``bf16`` keeps fp32's
exponent range, so it needs no loss scaling and runs on CPU and GPU alike. ``fp16`` has a
5-bit exponent: small gradients underflow, so the loss is multiplied by a dynamic scale
before ``backward`` and the gradients divided by it before clipping and stepping
(:class:`torch.amp.GradScaler`); a step whose gradients overflow is skipped and the scale
halved. rnnlab uses fp16 on CUDA only and refuses it elsewhere with one clear line.
Evaluation runs in fp32. The scaler's state is part of every checkpoint, so ``--resume``
continues with the same scale.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor

from .config import ConfigError

__all__ = ["PRECISIONS", "Precision", "make_precision"]

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """Autocast dtype and the loss scaler of one training run; it always exists (fp32 is
    ``nullcontext`` and a disabled scaler), so no step branches on the precision.

    ``autocast()`` wraps forward + loss; ``scale(loss)`` before ``backward``,
    ``unscale(optimizer)`` before clipping, ``step(optimizer)`` per optimizer and ``update()``
    once per iteration replace ``loss.backward()`` / ``optimizer.step()``
    (:class:`torch.amp.GradScaler`'s protocol; every call is a no-op or the plain operation
    when the scaler is disabled). ``cache_enabled=False`` is what CUDA-graph capture needs
    (autocast's weight-cast cache must not outlive the capture).
    """

    def __init__(
        self,
        mode: str = "fp32",
        device_type: str = "cpu",
        *,
        scaler: torch.amp.GradScaler | None = None,
    ):
        if mode not in PRECISIONS:
            raise ValueError(f"`mode` must be one of {', '.join(PRECISIONS)}, got {mode!r}")
        self.mode, self.device_type, self.dtype = mode, device_type, PRECISIONS[mode]
        scaling = mode == "fp16"
        if scaler is None:  # a test may hand in its own (e.g. a CPU scaler that overflows)
            scaler = torch.amp.GradScaler("cuda" if scaling else "cpu", enabled=scaling)
        self.scaler = scaler

    def autocast(self, *, cache_enabled: bool = True):
        if self.mode == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype, cache_enabled=cache_enabled)

    def scale(self, loss: Tensor) -> Tensor:
        return self.scaler.scale(loss)

    def backward(self, loss: Tensor) -> None:
        self.scale(loss).backward()

    def unscale(self, optimizer) -> None:
        """Divide the gradients by the loss scale (before clipping reads them)."""
        self.scaler.unscale_(optimizer)

    def step(self, optimizer) -> None:
        """``optimizer.step()``; with loss scaling, skipped when the gradients overflowed."""
        self.scaler.step(optimizer)

    def update(self) -> None:
        """Adjust the loss scale after an iteration's steps (no-op without scaling)."""
        self.scaler.update()

    @property
    def skips_overflow(self) -> bool:
        """True when an inf/NaN gradient is the scaler's business (skip + lower the scale),
        not a reason to stop training."""
        return self.scaler.is_enabled()

    def state_dict(self) -> dict | None:
        return self.scaler.state_dict() if self.scaler.is_enabled() else None

    def load_state_dict(self, state: dict | None) -> None:
        if self.scaler.is_enabled() and state:
            self.scaler.load_state_dict(state)


def make_precision(mode: str, device: str | torch.device) -> Precision:
    """The :class:`Precision` for ``mode`` on ``device``. Raises :class:`ConfigError` for
    fp16 off CUDA and bf16 on a GPU without it."""
    device_type = torch.device(device).type
    if mode == "fp16" and device_type != "cuda":
        raise ConfigError(
            f"`train.precision=fp16` needs a CUDA device (loss-scaled fp16 training runs on "
            f"GPU only), but this run is on {device_type}; use --precision bf16 on CPU"
        )
    if mode == "bf16" and device_type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(
            "`train.precision=bf16` needs a GPU with bfloat16 support (Ampere or newer); "
            "use --precision fp16 or fp32"
        )
    return Precision(mode, device_type)
