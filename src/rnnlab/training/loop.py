"""One generic training loop. Nothing in this file knows about RNNs, images or losses:
families differ only in the step functions handed to :func:`fit` (:mod:`.steps`).

Each epoch reads: batches -> train step -> LR schedule -> evaluation -> log -> checkpoint
-> early stopping. :class:`Batches` serves in-memory tensors in an order drawn from its own
``torch.Generator``, whose state goes into the checkpoint, so a resumed run sees the same
batches as one never interrupted. Under ``torch.distributed`` each rank takes its share of
every global batch and evaluation sums are all-reduced.

A train step may defer its metrics (the CUDA-graph step of :mod:`.cuda_graph` sums them on
the device and reads them once per epoch): it returns ``{}`` per batch and offers
``start_epoch()`` and ``epoch_sums() -> (sums, seen)``; a step with a schedule of its own
offers ``set_epoch(epoch, steps_per_epoch)``, called before each epoch. ``epoch_sums`` may raise
:class:`NonFiniteError`, which stops training like a per-step one (the last checkpoint, the
previous epoch's, stays good). A loss scaler (fp16, :mod:`.precision`) goes into every
checkpoint as ``"scaler"``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm import tqdm

from .checkpoint import RunDir, get_rng_state, load_checkpoint, set_rng_state, unwrap
from .steps import NonFiniteError

__all__ = ["Batches", "FitState", "TrainingStopped", "evaluate", "fit", "resume"]


class TrainingStopped(RuntimeError):
    """Training stopped early on a non-finite loss; ``state`` is the last good one."""

    def __init__(self, message: str, state: FitState) -> None:
        super().__init__(message)
        self.state = state


class Batches:
    """Mini-batches of in-memory tensors that share their first dimension.

    With ``world_size > 1`` rank ``r`` gets rows ``r::world_size`` of every global batch of
    ``batch_size`` (the global batches equal the one-process ones, as DistributedSampler's
    interleaving gives). The order comes from ``generator`` (seeded by ``seed``).
    ``drop_last`` drops the last partial batch of each epoch (static shapes for CUDA graphs).
    Tensors may live on a GPU; the order is drawn on the CPU either way.
    """

    def __init__(
        self,
        *tensors: Tensor,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        if not tensors or any(len(t) != len(tensors[0]) for t in tensors):
            raise ValueError("`tensors` must be one or more tensors with equal first dimensions.")
        if batch_size < world_size:
            raise ValueError(f"`batch_size` must be >= world_size {world_size}, got {batch_size}")
        self.tensors, self.batch_size, self.shuffle = tensors, batch_size, shuffle
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        n = len(self.tensors[0])
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        n = len(self.tensors[0])
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        # tensors resident on a GPU: gather there (the order is drawn on the CPU either way,
        # so the batches are the same ones wherever the data lives)
        order = order.to(self.tensors[0].device)
        stop = len(self) * self.batch_size if self.drop_last else n
        for start in range(0, stop, self.batch_size):
            index = order[start : start + self.batch_size][self.rank :: self.world_size]
            yield tuple(t[index] for t in self.tensors)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


@dataclass
class FitState:
    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    best: float = math.inf  # best monitored value (val loss, else train loss)
    best_epoch: int = 0
    bad_epochs: int = 0  # epochs since the best (early stopping)
    stopped: str = ""  # why training ended early, if it did


def _to(batch, device) -> tuple:
    return tuple(t.to(device, non_blocking=True) for t in batch)


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def evaluate(model: nn.Module, eval_step: Callable, batches, device="cpu") -> dict[str, float]:
    """Batch-size-weighted means of ``eval_step(model, batch)`` over ``batches``
    (summed over all ranks under torch.distributed)."""
    sums: dict[str, float] = {}
    count = 0
    for batch in batches:
        n = len(batch[0])
        for key, value in eval_step(model, _to(batch, device)).items():
            sums[key] = sums.get(key, 0.0) + value * n
        count += n
    keys = sorted(sums)
    if _distributed():
        total = torch.tensor([sums[k] for k in keys] + [count], dtype=torch.float64)
        if dist.get_backend() == "nccl":  # nccl reduces device tensors only
            total = total.to(device)
        dist.all_reduce(total)
        *values, count = total.tolist()
        sums = dict(zip(keys, values, strict=True))
    return {k: sums[k] / max(count, 1) for k in keys}


def _checkpoint(model, optimizer, scheduler, data: Batches, state: FitState, amp=None) -> dict:
    return {
        "scaler": amp.state_dict() if amp is not None else None,
        "model": unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "data": data.state_dict(),
        "fit": asdict(state),
        "rng": get_rng_state(),
    }


def resume(path, model, optimizer, scheduler, data: Batches, amp=None) -> FitState:
    """Restore everything :func:`fit` saved in checkpoint ``path``; returns its FitState.
    ``amp``: the run's :class:`~.precision.Precision`, whose loss scaler is restored too."""
    ckpt = load_checkpoint(path)
    if amp is not None:
        amp.load_state_dict(ckpt.get("scaler"))
    unwrap(model).load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    if scheduler is not None and ckpt["scheduler"] is not None:
        scheduler.load_state_dict(ckpt["scheduler"])
    data.load_state_dict(ckpt["data"])
    set_rng_state(ckpt["rng"])
    return FitState(**ckpt["fit"])


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train_data: Batches,
    *,
    train_step: Callable,
    eval_step: Callable | None = None,
    val_data=None,
    epochs: int,
    scheduler=None,
    scheduler_interval: str = "epoch",
    device: str | torch.device = "cpu",
    run: RunDir | None = None,
    patience: int = 0,
    max_steps: int = 0,
    state: FitState | None = None,
    log: Callable[[str], None] | None = print,
    progress: bool = True,
    on_epoch_end: Callable[[FitState, dict], None] | None = None,
    amp=None,
) -> FitState:
    """Train ``model`` for ``epochs`` (from ``state.epoch`` when resuming).

    ``train_step(model, batch, optimizer) -> metrics`` (bind clipping etc. with
    ``functools.partial``); ``eval_step(model, batch) -> metrics`` on ``val_data`` after each
    epoch. ``scheduler_interval``: "step", "epoch" or "plateau" (stepped with the monitored
    value). The monitored value is the validation loss, else the training loss; ``patience``
    > 0 stops after that many epochs without improvement. ``max_steps`` > 0 cuts each
    epoch short (dry runs). With ``run``, each epoch appends to metrics.jsonl and saves
    checkpoints (only on rank 0). A non-finite loss or gradient raises
    :class:`TrainingStopped` before the optimizer steps; the last checkpoint stays good.
    ``on_epoch_end(state, record)`` runs after each epoch's evaluation, log and checkpoint
    (on every rank); what it raises propagates (Optuna's ``TrialPruned`` ends the run there,
    its checkpoint intact). Setting ``state.stopped`` in it stops training after the epoch.
    ``amp``: the :class:`~.precision.Precision` the steps use; its scaler is checkpointed.
    """
    state = state or FitState()
    main = not _distributed() or dist.get_rank() == 0
    say = log if (log is not None and main) else (lambda _: None)
    while state.epoch < epochs:
        # train one epoch
        t0, sums, seen = time.perf_counter(), {}, 0
        total = min(len(train_data), max_steps) if max_steps else len(train_data)
        bar = tqdm(
            total=total, desc=f"epoch {state.epoch + 1}/{epochs}", leave=False,
            disable=not (progress and main), dynamic_ncols=True,
        )  # fmt: skip
        if hasattr(train_step, "start_epoch"):
            train_step.start_epoch()
        if hasattr(train_step, "set_epoch"):  # steps with a schedule of their own
            train_step.set_epoch(state.epoch, total)
        for i, batch in enumerate(train_data):
            if max_steps and i >= max_steps:
                break
            try:
                metrics = train_step(model, _to(batch, device), optimizer)
            except NonFiniteError as e:
                bar.close()
                state.stopped = f"non-finite at epoch {state.epoch + 1}, step {state.step + 1}"
                raise TrainingStopped(f"training stopped: {e} ({state.stopped})", state) from e
            state.step += 1
            if scheduler is not None and scheduler_interval == "step":
                scheduler.step()
            if metrics:  # a deferring step returns {} and sums on the device
                n = len(batch[0])
                for key, value in metrics.items():
                    sums[key] = sums.get(key, 0.0) + value * n
                seen += n
                bar.set_postfix({k: f"{v / seen:.4g}" for k, v in sums.items()}, refresh=False)
            bar.update()
        bar.close()
        if hasattr(train_step, "epoch_sums"):
            try:
                deferred, n = train_step.epoch_sums()  # one device -> host read per epoch
            except NonFiniteError as e:
                state.stopped = f"non-finite in epoch {state.epoch + 1}"
                raise TrainingStopped(f"training stopped: {e} ({state.stopped})", state) from e
            for key, value in deferred.items():
                sums[key] = sums.get(key, 0.0) + value
            seen += n
        state.epoch += 1
        record = {"epoch": state.epoch, "step": state.step, "seconds": time.perf_counter() - t0}
        record |= {f"train_{k}": v / max(seen, 1) for k, v in sums.items()}
        record["lr"] = float(optimizer.param_groups[0]["lr"])  # a tensor under capturable Adam

        # evaluate, schedule, log
        if val_data is not None and eval_step is not None:
            record |= {
                f"val_{k}": v for k, v in evaluate(model, eval_step, val_data, device).items()
            }
        monitored = record.get("val_loss", record.get("train_loss", math.inf))
        if scheduler is not None and scheduler_interval == "epoch":
            scheduler.step()
        elif scheduler is not None and scheduler_interval == "plateau":
            scheduler.step(monitored)
        improved = monitored < state.best
        if improved:
            state.best, state.best_epoch, state.bad_epochs = monitored, state.epoch, 0
        else:
            state.bad_epochs += 1

        # checkpoint, log, then maybe stop
        if patience and state.bad_epochs >= patience:
            state.stopped = f"early stopping: no improvement for {patience} epochs"
        if run is not None and main:
            run.log(record)
            ckpt = _checkpoint(model, optimizer, scheduler, train_data, state, amp)
            run.save(ckpt, best=improved)
        say(_format(record, epochs))
        if on_epoch_end is not None:
            on_epoch_end(state, record)
        if state.stopped:
            say(state.stopped)
            break
    return state


def _format(record: dict, epochs: int) -> str:
    parts = [f"epoch {record['epoch']}/{epochs}"]
    for key, value in record.items():
        if key.startswith(("train_", "val_")) and key != "train_grad_norm":
            parts.append(f"{key} {value:.4f}")
    parts.append(f"lr {record['lr']:.3g}  {record['seconds']:.1f}s")
    return "  ".join(parts)
