"""One generic training loop. Nothing in this file knows about RNNs, images or losses:
families differ only in the train and eval steps handed to :func:`fit` (:mod:`.families`).

Each epoch reads: ``step.on_epoch_start`` -> batches -> train step -> LR schedule ->
evaluation -> best / early stopping -> checkpoint -> log. :class:`Batches` serves in-memory
tensors in an order drawn from its own ``torch.Generator``, whose state goes into the
checkpoint, so a resumed run sees the same batches as one never interrupted. Under
``torch.distributed`` each rank takes its share of every global batch and evaluation sums are
all-reduced.

A train step is any ``step(model, batch, optimizer) -> metrics``; a step with epoch-level
duties subclasses :class:`Step`: ``on_epoch_start(epoch, steps)`` (a schedule of its own, a
stateful model's reset) and ``epoch_metrics() -> (sums, seen)`` for metrics it defers (the
CUDA-graph step sums them on the device and reads them once per epoch, returning ``{}`` per
batch). ``epoch_metrics`` may raise :class:`~.update.NonFiniteError`, which stops training
like a per-step one. What :func:`fit` saves and where it continues from is one
:class:`Checkpointing` (the run folder, the :class:`FitState` to continue, ``extras``: ``{name:
object with state_dict/load_state_dict}``, e.g. the loss scaler, saved in every checkpoint
under their names); how it schedules, stops and reports is one :class:`FitOptions`.

On disk each epoch is written in the order that survives a kill at any point
(:meth:`~.checkpoint.RunDir.save`): ``best.pt`` (when the epoch improved), then ``last.pt``
(which holds the epoch's record), then the record is appended to ``metrics.jsonl``;
:func:`resume` trims the log to the checkpoint (or completes it from the checkpoint's
record). ``restore_best`` (Keras's ``restore_best_weights``) ends training with the weights
of the best epoch.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm import tqdm

from .checkpoint import RunDir, get_rng_state, load_checkpoint, set_rng_state, unwrap
from .update import NonFiniteError

__all__ = ["Batches", "Checkpointing", "FitOptions", "FitState", "Step", "TrainingStopped",
           "evaluate", "fit", "resume"]  # fmt: skip


class TrainingStopped(RuntimeError):
    """Training stopped early on a non-finite loss; ``state`` is the last good one."""

    def __init__(self, message: str, state: FitState) -> None:
        super().__init__(message)
        self.state = state


class Step:
    """A train step with epoch hooks; plain functions need none of this."""

    def __call__(self, model: nn.Module, batch, optimizer) -> dict[str, float]:
        raise NotImplementedError

    def on_epoch_start(self, epoch: int, steps: int) -> None:
        """Before epoch ``epoch`` (0-based, also after a resume) of ``steps`` batches."""

    def epoch_metrics(self) -> tuple[dict[str, float], int]:
        """Metric sums this step deferred during the epoch and the examples they cover."""
        return {}, 0


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
    best: float = math.inf  # best monitored value (val loss, else train loss; -accuracy)
    best_epoch: int = 0
    bad_epochs: int = 0  # epochs since the best (early stopping)
    stopped: str = ""  # why training ended early, if it did
    restored: int = 0  # the epoch whose weights restore_best put back (0 = none)
    # time spent in training passes (not evaluation); checkpointed beside "fit", not in it,
    # so two runs that trained alike have equal "fit" records whatever their timing
    train_seconds: float = field(default=0.0, compare=False)


@dataclass
class FitOptions:
    """How :func:`fit` schedules, stops, ends and reports.

    ``scheduler`` (a torch LR scheduler, or None) is stepped every ``scheduler_interval``:
    "step", "epoch" or "plateau" (with the monitored value); its state is checkpointed.
    ``patience`` > 0 stops after that many epochs without improvement; ``max_steps`` > 0 cuts
    each epoch short (dry runs); ``monitor``: False when the steps have no single loss (no
    best, no early stopping); ``restore_best``: end with the best epoch's weights (only when
    there is validation data); ``time_budget`` > 0: stop once ``FitState.train_seconds``
    reaches it, after the step that crossed it (the partial epoch is evaluated, checkpointed
    and counts as an epoch); ``progress``: a tqdm bar per epoch; ``log``: where each epoch's
    line goes (None = nowhere; rank 0 only); ``monitor_metric``: "loss" (lowest is best) or
    "accuracy" (highest is best; kept negated in ``FitState.best``), read from
    ``val_<metric>``, else ``train_<metric>``."""

    scheduler: Any = None  # a torch.optim.lr_scheduler object
    scheduler_interval: str = "epoch"
    patience: int = 0
    max_steps: int = 0
    monitor: bool = True
    restore_best: bool = False
    time_budget: float = 0.0  # seconds of training, then stop (mid-epoch if need be); 0 = none
    progress: bool = False
    log: Callable[[str], None] | None = print
    monitor_metric: str = "loss"  # "loss" (lower is better) or "accuracy" (higher)


@dataclass
class Checkpointing:
    """What :func:`fit` saves after each epoch and where it continues from.

    ``run``: the run folder each epoch's checkpoints and record go to (rank 0 only; None =
    nothing is saved); ``state``: the :class:`FitState` to continue from (what :func:`resume`
    returned, or a previous ``fit``'s; None = a new run); ``extras``: ``{name: object with
    state_dict/load_state_dict}`` saved in every checkpoint under its name (and restored by
    :func:`resume` from the same dict); ``best_checkpoint``: the file ``restore_best`` reads the
    best weights from when they are not in memory (a resumed run whose best epoch came before
    the resume; default: the run's best.pt)."""

    run: RunDir | None = None
    state: FitState | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    best_checkpoint: str | None = None


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


def _checkpoint(model, optimizer, scheduler, data, state: FitState, extras, record) -> dict:
    ckpt = {name: obj.state_dict() for name, obj in extras.items()}
    return ckpt | {
        "model": unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "data": data.state_dict(),
        "fit": {k: v for k, v in asdict(state).items() if k != "train_seconds"},
        "train_seconds": state.train_seconds,
        "rng": get_rng_state(),
        "record": record,
    }


def resume(path, model, optimizer, scheduler, data, extras: dict | None = None) -> FitState:
    """Restore everything :func:`fit` saved in checkpoint ``path``; returns its FitState
    (``Checkpointing(state=...)`` continues from it). ``scheduler``: the one in
    :class:`FitOptions` (or None); ``extras``: the objects of :class:`Checkpointing`'s
    ``extras`` (e.g. ``{"scaler": precision}``)."""
    ckpt = load_checkpoint(path)
    for name, obj in (extras or {}).items():
        obj.load_state_dict(ckpt.get(name))
    unwrap(model).load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    if scheduler is not None and ckpt["scheduler"] is not None:
        scheduler.load_state_dict(ckpt["scheduler"])
    data.load_state_dict(ckpt["data"])
    set_rng_state(ckpt["rng"])
    known = set(FitState.__dataclass_fields__) - {"train_seconds"}
    state = FitState(**{k: v for k, v in ckpt["fit"].items() if k in known})
    state.train_seconds = float(ckpt.get("train_seconds", 0.0))
    return state


def _stop(state: FitState, e: NonFiniteError, where: str) -> TrainingStopped:
    state.stopped = f"non-finite {where}"
    return TrainingStopped(f"training stopped: {e} ({state.stopped})", state)


def _out_of_time(state: FitState, options: FitOptions, started: float | None = None) -> bool:
    """Whether the time budget is spent (the time of the running epoch since ``started``
    included); says so in ``state.stopped``."""
    spent = state.train_seconds + (time.perf_counter() - started if started is not None else 0)
    if not options.time_budget or spent < options.time_budget:
        return False
    state.stopped = (
        f"time budget: {options.time_budget:g} s of training reached at epoch "
        f"{state.epoch + 1}, step {state.step}"
    )
    return True


def _train_epoch(model, optimizer, train_data, step, state, options, device, bar):
    """One pass over ``train_data`` (or until the time budget); returns the epoch's mean
    train metrics."""
    sums, seen, started = {}, 0, time.perf_counter()
    step.on_epoch_start(state.epoch, bar.total)
    for i, batch in enumerate(train_data):
        if options.max_steps and i >= options.max_steps:
            break
        try:
            metrics = step(model, _to(batch, device), optimizer)
        except NonFiniteError as e:
            raise _stop(state, e, f"at epoch {state.epoch + 1}, step {state.step + 1}") from e
        state.step += 1
        if options.scheduler is not None and options.scheduler_interval == "step":
            options.scheduler.step()
        if metrics:  # a deferring step returns {} and sums on the device
            n = len(batch[0])
            for key, value in metrics.items():
                sums[key] = sums.get(key, 0.0) + value * n
            seen += n
            bar.set_postfix({k: f"{v / seen:.4g}" for k, v in sums.items()}, refresh=False)
        bar.update()
        if _out_of_time(state, options, started):
            break
    try:
        deferred, n = step.epoch_metrics()  # one device -> host read per epoch
    except NonFiniteError as e:
        raise _stop(state, e, f"in epoch {state.epoch + 1}") from e
    for key, value in deferred.items():
        sums[key] = sums.get(key, 0.0) + value
    seen += n
    return {f"train_{k}": v / max(seen, 1) for k, v in sums.items()}


class _FunctionStep(Step):
    def __init__(self, fn: Callable) -> None:
        self.fn = fn

    def __call__(self, model, batch, optimizer):
        return self.fn(model, batch, optimizer)


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train_data,
    *,
    train_step: Callable | Step,
    epochs: int,
    eval_step: Callable | None = None,
    val_data=None,
    device: str | torch.device = "cpu",
    checkpointing: Checkpointing | None = None,
    options: FitOptions | None = None,
    on_epoch_end: Callable[[FitState, dict], None] | None = None,
) -> FitState:
    """Train ``model`` with ``optimizer`` for ``epochs`` (counted from ``state.epoch`` when
    continuing); returns the final :class:`FitState`.

    - ``train_data``: batches (:class:`Batches` or any iterable of tuples with ``len`` and
      ``state_dict``/``load_state_dict``, whose state is checkpointed);
    - ``train_step(model, batch, optimizer) -> metrics``: a function or a :class:`Step`;
    - ``eval_step(model, batch) -> metrics`` on ``val_data`` after each epoch. The monitored
      value is the validation loss, else the training loss;
    - ``device``: where each batch is moved;
    - ``checkpointing`` (:class:`Checkpointing`): with a ``run``, each epoch saves
      checkpoints and appends to metrics.jsonl (rank 0 only); ``state`` continues a run;
    - ``options`` (:class:`FitOptions`): the LR scheduler and its interval, early stopping,
      ``restore_best``, the time budget, progress bar and log;
    - ``on_epoch_end(state, record)`` runs after each epoch's checkpoint (on every rank);
      what it raises propagates (Optuna's ``TrialPruned`` ends the run there, its checkpoint
      intact); setting ``state.stopped`` in it stops training after the epoch.

    A non-finite loss or gradient raises :class:`TrainingStopped` before the optimizer
    steps; the last checkpoint stays good.
    """
    checkpointing, options = checkpointing or Checkpointing(), options or FitOptions()
    state, run, scheduler = checkpointing.state or FitState(), checkpointing.run, options.scheduler
    extras = checkpointing.extras
    step = train_step if isinstance(train_step, Step) else _FunctionStep(train_step)
    main = not _distributed() or dist.get_rank() == 0
    say = options.log if (options.log is not None and main) else (lambda _: None)
    restore = options.restore_best and options.monitor and val_data is not None
    best_weights, state.restored = None, 0
    while state.epoch < epochs:
        if _out_of_time(state, options):  # spent before this epoch (a resumed run)
            say(state.stopped)
            break
        t0 = time.perf_counter()
        total = min(len(train_data), options.max_steps) if options.max_steps else len(train_data)
        bar = tqdm(
            total=total, desc=f"epoch {state.epoch + 1}/{epochs}", leave=False,
            disable=not (options.progress and main), dynamic_ncols=True,
        )  # fmt: skip
        try:
            train = _train_epoch(model, optimizer, train_data, step, state, options, device, bar)
        finally:
            bar.close()
        state.epoch += 1
        state.train_seconds += time.perf_counter() - t0
        record = {"epoch": state.epoch, "step": state.step, "seconds": time.perf_counter() - t0}
        record |= train
        record["lr"] = float(optimizer.param_groups[0]["lr"])  # a tensor under capturable Adam
        if val_data is not None and eval_step is not None:
            val = evaluate(model, eval_step, val_data, device)
            record |= {f"val_{k}": v for k, v in val.items()}
        monitored = _monitored(record, options.monitor_metric)
        if scheduler is not None and options.scheduler_interval == "epoch":
            scheduler.step()
        elif scheduler is not None and options.scheduler_interval == "plateau":
            scheduler.step(monitored)
        improved = options.monitor and monitored < state.best
        if improved:
            state.best, state.best_epoch, state.bad_epochs = monitored, state.epoch, 0
            if restore:
                best_weights = copy.deepcopy(unwrap(model).state_dict())
        else:
            state.bad_epochs += 1
        if options.patience and state.bad_epochs >= options.patience:
            state.stopped = f"early stopping: no improvement for {options.patience} epochs"
        if run is not None and main:
            saved = _checkpoint(model, optimizer, scheduler, train_data, state, extras, record)
            run.save(saved, best=improved, record=record)
        say(_format(record, epochs))
        if on_epoch_end is not None:
            on_epoch_end(state, record)
        if state.stopped:
            say(state.stopped)
            break
    if restore and state.best_epoch and state.best_epoch != state.epoch:
        _restore_best(
            model,
            state,
            best_weights,
            run,
            checkpointing.best_checkpoint,
            say,
            options.monitor_metric,
        )
    return state


def _monitored(record: dict, metric: str) -> float:
    """The value to minimise: ``val_<metric>`` (else ``train_<metric>``), negated for
    accuracy; inf when the epoch reported neither."""
    value = record.get(f"val_{metric}", record.get(f"train_{metric}", math.inf))
    return -value if metric == "accuracy" and value != math.inf else value


def _restore_best(model, state: FitState, weights, run, best_checkpoint, say, metric) -> None:
    """Put the best epoch's weights back (from memory, or ``best.pt`` after a resume)."""
    if weights is None and best_checkpoint is None and run is not None:
        best_checkpoint = run.checkpoints / "best.pt"
    if weights is None and best_checkpoint is not None and os.path.isfile(best_checkpoint):
        weights = load_checkpoint(best_checkpoint)["model"]
    if weights is None:
        return  # no best weights anywhere (e.g. best.pt removed by hand)
    unwrap(model).load_state_dict(weights)
    state.restored = state.best_epoch
    if run is not None:  # last.pt keeps the last weights (for --resume) and says what ended
        last = load_checkpoint(run.checkpoints / "last.pt")
        last["fit"]["restored"] = state.restored
        run.save_last(last)
    best = -state.best if metric == "accuracy" else state.best
    say(f"restore_best: the weights of epoch {state.best_epoch} (best {metric} {best:.4f})")


def _format(record: dict, epochs: int) -> str:
    parts = [f"epoch {record['epoch']}/{epochs}"]
    for key, value in record.items():
        if key.startswith(("train_", "val_")) and not key.endswith("grad_norm"):
            parts.append(f"{key} {value:.4f}")
    parts.append(f"lr {record['lr']:.3g}  {record['seconds']:.1f}s")
    return "  ".join(parts)
