"""tbptt: the adding problem trained by truncated BPTT (Williams & Peng 1990) in chunks of
``train.tbptt_k`` steps (:func:`rnnlab.training.tbptt.truncated_bptt`). The state is carried
across chunks and detached, so the gradient of the final-step loss reaches back at most ``k``
steps; chunk gradients accumulate and the optimizer steps once per batch."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import Config
from ..tbptt import truncated_bptt
from ..update import Update
from . import Family, StepContext, keyset
from ._common import RNN_KEYS
from .regress import ADDING_KEYS, adding_data, regress_eval
from .regress import build_model as regressor

__all__ = ["FAMILY", "tbptt_step"]


def _final_step_mse(outputs: Tensor, target: Tensor) -> Tensor:
    """MSE over the steps whose target is not NaN; a zero that still backpropagates when
    the chunk holds none (so every chunk can call ``backward``)."""
    known = ~torch.isnan(target)
    if not known.any():
        return outputs.sum() * 0.0
    return F.mse_loss(outputs[known], target[known])


def tbptt_step(
    model: nn.Module, batch, optimizer, *, k: int = 50, update: Update | None = None
) -> dict[str, float]:
    """Truncated BPTT on a sequence-to-one regression: ``model.run(x_chunk, state) ->
    (per-step predictions, state)`` (:class:`rnnlab.models.classifiers.SequenceRegressor`).
    Returns ``{"loss"}`` (MSE at the last step) and ``"grad_norm"``."""
    update = update or Update()
    x, y = batch[0], batch[1]
    model.train()
    B, T = x.shape[:2]
    per_step = torch.full((B, T, y.size(-1)), float("nan"), device=y.device, dtype=y.dtype)
    per_step[:, -1] = y  # (B, T, 1): NaN = no target at this step
    inner = model.module if hasattr(model, "module") else model  # DDP keeps run() inside

    optimizer.zero_grad(set_to_none=True)
    losses, _ = truncated_bptt(inner.run, _final_step_mse, x, per_step, k)  # fp32: no scaling
    return {"loss": losses[-1], **update.step(losses[-1], model, optimizer)}


def steps(cfg: Config, ctx: StepContext):
    return functools.partial(tbptt_step, k=cfg.train.tbptt_k, update=ctx.update), regress_eval


FAMILY = Family(
    name="tbptt",
    description="the adding problem by truncated BPTT in chunks of train.tbptt_k steps",
    kinds=("simple_rnn", "lstm", "gru"),
    datasets=("adding",),
    build_data=adding_data,
    build_model=regressor,
    steps=steps,
    keys=RNN_KEYS | ADDING_KEYS | keyset("train.tbptt_k"),
    supports=frozenset(),  # several backwards per step: one process, fp32
    loss=F.mse_loss,
)
