"""Model choice by stratified k-fold cross-validation on the training split, for sequence
classification data too small for one held-out validation split (the UCR sets have 67 to 270
training series: a 20% split of ECG200 is 20 series, one of which is 5 points of accuracy).

:func:`stratified_folds` deals each class's examples, in a seeded random order, round-robin
over ``k`` folds, so every fold holds each class in proportion (within one example) and the
folds' sizes differ by at most one. :func:`cross_validate` trains one config ``k`` times, on
all folds but one, exactly as ``rnnlab train seq-classify --data.val_fraction=0`` trains on
the whole file (the same model, optimizer, schedule and update path; the schedule and the
monitored value see the training loss only, no early stopping), with the scaler fit on the
training folds only, and scores the held-out fold after every epoch. The result is one
curve per metric: the pooled held-out accuracy (correct predictions over all ``N`` held-out
series) and the mean held-out loss, per epoch. :meth:`CVCurve.best` reads the recipe's score
and its number of epochs off the (optionally smoothed) accuracy curve; the chosen recipe is
then refit on the whole training split for that many epochs (``benchmarks/ucr_cv.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from rnnlab.data.windows import Scaler

from .config import Config
from .families import DataSpec
from .loop import Batches, FitOptions, evaluate, fit
from .optim import build_optimizer, build_schedule

__all__ = ["TIE_DIGITS", "CVCurve", "cross_validate", "scale_folds", "stratified_folds"]

TIE_DIGITS = 6  # accuracies equal to this many digits tie (float sums differ in the 9th)


def stratified_folds(labels: Tensor, k: int, seed: int = 0) -> list[Tensor]:
    """``k`` disjoint sorted index tensors that together cover ``range(N)``; each class's
    indices are shuffled with ``seed`` and dealt round-robin, continuing where the previous
    class ended (so fold sizes differ by at most one)."""
    n = len(labels)
    if not 2 <= k <= n:
        raise ValueError(f"`k` must be in [2, {n}] for {n} examples, got {k}")
    g = torch.Generator().manual_seed(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    dealt = 0
    for c in torch.unique(labels):
        members = torch.nonzero(labels == c).flatten()
        for i in members[torch.randperm(len(members), generator=g)].tolist():
            folds[dealt % k].append(i)
            dealt += 1
    return [torch.tensor(sorted(f), dtype=torch.long) for f in folds]


def _valid(x: Tensor, lengths: Tensor) -> Tensor:
    return (torch.arange(x.shape[1]) < lengths[:, None])[..., None]


def scale_folds(x: Tensor, lengths: Tensor, train: Tensor, held: Tensor) -> tuple[Tensor, Tensor]:
    """``x (N, T, C)`` rows ``train`` and ``held`` standardised per channel with the
    statistics of the ``train`` rows' valid steps (padding stays zero)."""
    xt, lt = x[train], lengths[train]
    scaler = Scaler.fit(torch.where(_valid(xt, lt), xt, torch.nan))
    out = []
    for rows in (train, held):
        xs, ls = x[rows], lengths[rows]
        out.append(torch.where(_valid(xs, ls), scaler.transform(xs), torch.zeros(())))
    return out[0], out[1]


@dataclass
class CVCurve:
    """Held-out metrics per epoch (index 0 = after epoch 1): ``accuracy`` pooled over all
    folds, ``loss`` the mean over all held-out examples; ``folds[i]`` fold i's own records."""

    accuracy: list[float]
    loss: list[float]
    folds: list[list[dict]] = field(default_factory=list)

    def best(self, smooth: int = 1) -> tuple[int, float, float]:
        """``(epochs, accuracy, loss)`` at the epoch of the highest accuracy after a trailing
        moving average over ``smooth`` epochs (ties: the lower smoothed loss, then the
        earlier epoch); accuracy and loss are the smoothed values there."""
        acc, loss = _trailing(self.accuracy, smooth), _trailing(self.loss, smooth)
        e = min(range(len(acc)), key=lambda i: (-round(acc[i], TIE_DIGITS), loss[i], i))
        return e + 1, acc[e], loss[e]


def _trailing(values: list[float], w: int) -> list[float]:
    return [sum(values[max(0, i - w + 1) : i + 1]) / (i + 1 - max(0, i - w + 1))
            for i in range(len(values))]  # fmt: skip


def _fold(cfg: Config, train: tuple, held: tuple, num_classes: int) -> list[dict]:
    """Train ``cfg`` on ``train = (x, y, lengths)`` (scaled) and score ``held`` after every
    epoch: one record per epoch (``epoch``, ``train_loss``, ``lr``, ``accuracy``, ``loss``)."""
    from rnnlab.utils import seed_everything

    from .experiment import build_model, steps_for

    seed_everything(cfg.train.seed)
    model = build_model(cfg, DataSpec(train[0][0], num_classes))
    train_step, eval_step = steps_for(cfg, log=lambda _: None)
    batches = Batches(*train, batch_size=cfg.data.batch_size, seed=cfg.train.seed)
    held_batches = Batches(*held, batch_size=cfg.train.eval_batch_size, shuffle=False)
    optimizer = build_optimizer(cfg, model)
    scheduler, interval = build_schedule(cfg, optimizer, len(batches))
    records: list[dict] = []

    def score(state, record) -> None:
        m = evaluate(model, eval_step, held_batches)
        records.append({"epoch": state.epoch, "train_loss": record.get("train_loss"),
                        "lr": record["lr"], **m})  # fmt: skip

    options = FitOptions(scheduler=scheduler, scheduler_interval=interval, log=None)
    fit(model, optimizer, batches, train_step=train_step, epochs=cfg.train.epochs,
        options=options, on_epoch_end=score)  # fmt: skip
    return records


def cross_validate(
    cfg: Config,
    x: Tensor,
    y: Tensor,
    lengths: Tensor,
    num_classes: int,
    folds: list[Tensor],
    *,
    log: Callable[[str], None] | None = print,
) -> CVCurve:
    """Train ``cfg`` (family ``seq-classify``) once per fold on the other folds of raw
    ``x (N, T, C)``, ``y (N,)``, ``lengths (N,)`` for ``cfg.train.epochs`` epochs and score
    the held-out fold after each; every fold's run starts from seed ``cfg.train.seed``."""
    cfg = copy.deepcopy(cfg)
    cfg.train.patience = 0  # every fold trains the planned epochs
    n, epochs = len(y), cfg.train.epochs
    correct, loss_sum = [0.0] * epochs, [0.0] * epochs
    records: list[list[dict]] = []
    for i, held in enumerate(folds):
        train = torch.tensor(sorted(set(range(n)) - set(held.tolist())), dtype=torch.long)
        xt, xh = scale_folds(x, lengths, train, held)
        fold = _fold(cfg, (xt, y[train], lengths[train]), (xh, y[held], lengths[held]),
                     num_classes)  # fmt: skip
        for e, r in enumerate(fold):
            correct[e] += round(r["accuracy"] * len(held))  # a count: exact
            loss_sum[e] += r["loss"] * len(held)
        records.append(fold)
        if log is not None:
            log(f"fold {i + 1}/{len(folds)}: {len(train)} train, {len(held)} held out; "
                f"epoch {epochs}: held-out accuracy {fold[-1]['accuracy']:.4f} loss "
                f"{fold[-1]['loss']:.4f}")  # fmt: skip
    return CVCurve([c / n for c in correct], [s / n for s in loss_sum], records)
