"""regress: a recurrent regressor on the adding problem (Hochreiter & Schmidhuber 1997),
full BPTT on the MSE; 0.167 is the "always predict 1" baseline. A batch is ``(x, y)`` with
``x`` (B, T, 2) and ``y`` (B, 1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rnnlab.data import adding_problem
from rnnlab.models.classifiers import SequenceRegressor

from .. import cuda_graph
from ..config import Config
from ..update import Update
from . import DataSpec, Family, StepContext, keyset
from ._common import RNN_KEYS, rnn_kwargs, tensor_data
from .classify import unpack

__all__ = ["ADDING_KEYS", "ADDING_SEEDS", "FAMILY", "adding_data", "regress_eval", "regress_step"]

ADDING_SEEDS = {"train": 1, "test": 2}  # fixed: every adding-problem run sees the same data
ADDING_KEYS = keyset("data.seq_len data.n_train data.n_test")


def adding_data(cfg: Config, dry_run: bool):
    """The adding problem's train and test sequences (64 / 32 of them with ``dry_run``)."""
    d = cfg.data
    n_train, n_test = (64, 32) if dry_run else (d.n_train, d.n_test)
    train = adding_problem(n_train, d.seq_len, seed=ADDING_SEEDS["train"])
    test = adding_problem(n_test, d.seq_len, seed=ADDING_SEEDS["test"])
    return tensor_data(cfg, train, test, 0, f"adding problem, T={d.seq_len}")


def regress_step(model: nn.Module, batch, optimizer, *, update: Update | None = None) -> dict:
    """One full-BPTT MSE update; returns ``loss``, ``grad_norm`` (and ``penalty``)."""
    update = update or Update()
    x, y, lengths = unpack(batch)
    model.train()
    with update.autocast():
        loss = F.mse_loss(model(x, lengths).float(), y)
    return {"loss": loss.item(), **update(loss, model, optimizer)}


@torch.no_grad()
def regress_eval(model: nn.Module, batch) -> dict[str, float]:
    """``{"loss"}``: the MSE of ``model`` in eval mode."""
    x, y, lengths = unpack(batch)
    model.eval()
    return {"loss": F.mse_loss(model(x, lengths), y).item()}


def build_model(cfg: Config, spec: DataSpec) -> nn.Module:
    m = cfg.model
    return SequenceRegressor(m.kind, spec.example.shape[-1], m.hidden_size, 1, **rnn_kwargs(cfg))


def steps(cfg: Config, ctx: StepContext):
    eager, evaluate = ctx.bind(regress_step, regress_eval)
    if ctx.graph:
        return cuda_graph.GraphedStep("regress", eager, update=ctx.update, log=ctx.log), evaluate
    return eager, evaluate


FAMILY = Family(
    name="regress",
    description="sequence-to-one regression on the adding problem: MSE, full BPTT",
    kinds=("simple_rnn", "lstm", "gru", "bilstm"),
    datasets=("adding",),
    build_data=adding_data,
    build_model=build_model,
    steps=steps,
    keys=RNN_KEYS | ADDING_KEYS,
    supports=frozenset({"ddp", "cuda_graph", "precision"}),
    loss=F.mse_loss,
)
