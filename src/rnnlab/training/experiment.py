"""From a :class:`~rnnlab.training.config.Config` to a trained run: the family's data and
model (:mod:`.families`), optimizer, schedule, the one update path (:mod:`.update`), then
:func:`rnnlab.training.loop.fit`. Nothing here branches on a family's name: it asks the
family's registry entry. ``train.precision`` (:mod:`.precision`) picks autocast and the loss
scaler; ``train.cuda_graph`` (:mod:`.cuda_graph`) puts the training data on the GPU and lets
the family capture its step, or says in one line why it falls back to the eager step.
The CLI's ``train``/``evaluate``/``predict`` are thin shells around :func:`train`,
:func:`evaluate_run`, :func:`load_run`.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from rnnlab.layers import chrono_init_
from rnnlab.utils import count_parameters, seed_everything

from . import cuda_graph, distributed, families
from .checkpoint import RunDir, export_safetensors, load_checkpoint
from .config import Config, ConfigError, config_from_dict, config_to_dict
from .families import Data, DataSpec, StepContext
from .families._common import DataError
from .families.classify import IMAGE_KINDS
from .families.regress import ADDING_SEEDS
from .loop import (
    Batches,
    Checkpointing,
    FitOptions,
    FitState,
    TrainingStopped,
    evaluate,
    fit,
    resume,
)
from .optim import build_optimizer, build_schedule
from .precision import Precision, make_precision
from .regularize import regularizers
from .update import Update

__all__ = [
    "ADDING_SEEDS", "IMAGE_KINDS", "DataError", "Data", "build_data", "build_model",
    "build_schedule", "evaluate_run", "load_run", "model_input", "steps_for", "train",
]  # fmt: skip


def build_data(cfg: Config, *, dry_run: bool = False) -> Data:
    """Train / validation / test data of ``cfg``'s family (synthetic stand-ins with
    ``dry_run``: nothing is read from disk)."""
    return families.get(cfg.model.family).build_data(cfg, dry_run)


def build_model(cfg: Config, example: Tensor | DataSpec, num_classes: int = 0) -> nn.Module:
    """The model ``cfg.model`` describes, sized from one example input (no batch dim) or a
    :class:`~.families.DataSpec`; ``model.chrono_tmax`` > 0 then chrono-initialises its LSTM
    gate biases."""
    spec = example if isinstance(example, DataSpec) else DataSpec(example, num_classes)
    model = families.get(cfg.model.family).build_model(cfg, spec)
    if cfg.model.chrono_tmax:
        try:
            chrono_init_(model, cfg.model.chrono_tmax)
        except ValueError as e:
            raise ConfigError(f"`model.chrono_tmax`: {e}") from None
    return model


def make_update(cfg: Config, precision: Precision | None = None) -> Update:
    """The one update path with ``cfg``'s clipping, regularisers and constraint."""
    penalty, constraint = regularizers(cfg)
    t = cfg.train
    return Update(clip_norm=t.clip_norm, clip_value=t.clip_value, penalty=penalty,
                  constraint=constraint, precision=precision)  # fmt: skip


def steps_for(cfg: Config, precision: Precision | None = None, *, graph: bool = False, log=print):
    """``(train_step, eval_step)`` of ``cfg``'s family, bound to the run's update path."""
    ctx = StepContext(update=make_update(cfg, precision), graph=graph, log=log)
    return families.get(cfg.model.family).steps(cfg, ctx)


_steps_for = steps_for  # the name benchmarks used


def _batches(split, batch_size: int, shard: dict, **kw):
    """A family's split as batches: tensor tuples through :class:`Batches`, a Loader as is."""
    if split is None or not isinstance(split, tuple):
        return split
    return Batches(*split, batch_size=batch_size, **shard, **kw)


@contextlib.contextmanager
def _determinism(on: bool):
    before = torch.are_deterministic_algorithms_enabled()
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(on)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


def train(
    cfg: Config,
    *,
    argv: list[str] | None = None,
    dry_run: bool = False,
    resume_from: str | os.PathLike | None = None,
    log=print,
    progress: bool = True,
    on_epoch_end: Callable[[FitState, dict], None] | None = None,
) -> dict:
    """Train ``cfg`` and return ``{"run", "epochs", "seconds_per_epoch", test metrics...}``.

    ``resume_from`` is a run folder; its last checkpoint is restored (model, optimizer,
    schedule, data order, RNGs) and training continues to ``cfg.train.epochs``.
    ``dry_run`` trains 3 steps per epoch on synthetic data in a temporary folder.
    ``on_epoch_end(state, record)`` goes to :func:`~rnnlab.training.loop.fit` (tuning hooks).
    """
    t, family = cfg.train, families.get(cfg.model.family)
    if cfg.run.tensorboard:
        from .logging import require_tensorboard

        require_tensorboard()  # before anything is made on disk
    rank, world_size, device = distributed.setup(t.device)
    log = log if rank == 0 else (lambda _: None)
    if world_size > 1 and "ddp" not in family.supports:
        raise DataError(f"`model.family` {family.name} runs in one process; drop torchrun")
    precision = make_precision(t.precision, device)  # refuses fp16 off CUDA first
    graph = False
    if t.cuda_graph:
        why = cuda_graph.fallback_reason(cfg, device, world_size)
        graph = why is None
        if why is not None:
            log(f"cuda graph: off, {why}; training with the eager step")
    run = None
    with _determinism(t.deterministic), contextlib.ExitStack() as stack:
        if world_size > 1:
            stack.callback(distributed.cleanup)
        if resume_from is not None and rank == 0:
            run = RunDir.open(resume_from)
            run.lock()  # before anything is read: a second resume stops here
            stack.callback(run.unlock)
        seed_everything(t.seed)
        data = build_data(cfg, dry_run=dry_run)
        model = build_model(cfg, data.spec).to(device)
        n_params = count_parameters(model)
        model = distributed.wrap(model, device)
        shard = {"rank": rank, "world_size": world_size}
        train_split = data.train
        if graph and isinstance(train_split, tuple):  # resident on the GPU, static shapes
            train_split = tuple(x.to(device) for x in train_split)
        train_data = _batches(train_split, cfg.data.batch_size, shard, seed=t.seed, drop_last=graph)
        val_data = _batches(data.val, t.eval_batch_size, shard, shuffle=False)
        test_data = _batches(data.test, t.eval_batch_size, shard, shuffle=False)
        capturable = graph and t.optimizer in cuda_graph.CAPTURABLE
        parts = family.parts(model) if family.parts is not None else None
        optimizer = build_optimizer(cfg, model, parts, capturable=capturable)
        if capturable:
            cuda_graph.device_lr(optimizer, torch.device(device))
        max_steps = 3 if dry_run else t.max_steps
        per_epoch = min(len(train_data), max_steps) if max_steps else len(train_data)
        scheduler, interval = build_schedule(cfg, optimizer, per_epoch)
        train_step, eval_step = steps_for(cfg, precision, graph=graph, log=log)
        extras = {"scaler": precision}
        if hasattr(train_step, "state_dict"):  # a step with state (a language model's carry)
            extras["step"] = train_step

        state = None
        if resume_from is not None:
            config = RunDir.open(resume_from).config()["config"]
            planned = config["train"]["epochs"]
            if t.schedule in ("cosine", "onecycle") and t.epochs != planned:
                raise ConfigError(
                    f"`train.epochs` must stay {planned} to resume a {t.schedule} schedule "
                    f"(it spans the planned steps), got {t.epochs}"
                )
            last = run.checkpoints / "last.pt" if run is not None else None
            if run is not None:
                run.repair(load_checkpoint(last))
            last = last or RunDir.open(resume_from).checkpoints / "last.pt"
            state = resume(last, model, optimizer, scheduler, train_data, extras)
            if capturable:  # a loaded param group brings its lr back as saved
                cuda_graph.device_lr(optimizer, torch.device(device))
        elif family.prepare is not None:
            family.prepare(cfg, model, data, dry_run)
        if rank == 0 and resume_from is None:
            out = stack.enter_context(tempfile.TemporaryDirectory()) if dry_run else None
            name = cfg.run.name or f"{cfg.run.preset or 'run'}-{time.strftime('%Y%m%d-%H%M%S')}"
            run = RunDir.create(out or cfg.run.out_dir, name, config_to_dict(cfg), argv or [])
        if run is not None and cfg.run.tensorboard:
            run.use_tensorboard()
        where = f"{device}" + (f" x {world_size} processes" if world_size > 1 else "")
        log(f"{cfg.run.preset or 'run'}: {n_params:,} parameters on {where}; {data.source}")
        hook = _epoch_hook(family, cfg, data, run, model, on_epoch_end)
        best = None  # after a resume every rank reads the best weights from the run's best.pt
        if resume_from is not None:
            best = str(RunDir.open(resume_from).checkpoints / "best.pt")
        options = FitOptions(
            scheduler=scheduler, scheduler_interval=interval, patience=t.patience,
            max_steps=max_steps, monitor=family.monitor, restore_best=t.restore_best,
            time_budget=t.time_budget, progress=progress, log=log, monitor_metric=t.monitor,
        )  # fmt: skip
        checkpointing = Checkpointing(run, state, extras, best_checkpoint=best)
        try:
            state = fit(
                model, optimizer, train_data, train_step=train_step, eval_step=eval_step,
                val_data=val_data, epochs=t.epochs, device=device,
                checkpointing=checkpointing, options=options, on_epoch_end=hook,
            )  # fmt: skip
        except TrainingStopped as e:
            if run is not None and run.committed:
                run.write_text("summary.txt", f"{e}\nlast good checkpoint: {run.checkpoints}\n")
            elif run is not None:
                run.abort()
            raise
        except BaseException:
            if run is not None:
                run.abort()
            raise
        finally:
            if run is not None:
                run.unlock()
        test = evaluate(model, eval_step, test_data, device)
        result = {"run": str(run.path) if run and not dry_run else None, "epochs": state.epoch,
                  "stopped": state.stopped, "parameters": n_params,
                  "train_seconds": state.train_seconds}  # fmt: skip
        if state.restored:
            result["restored_best_epoch"] = state.restored
        result |= {f"test_{k}": v for k, v in test.items()}
        if isinstance(train_step, cuda_graph.GraphedStep):
            result["cuda_graph_replays"] = train_step.replays
        if family.finish is not None:
            result |= family.finish(cfg, model, test_data, device, dry_run)
        if run is not None and rank == 0:
            result |= _finish(run, model, cfg, result)
        log("  ".join(f"{k} {v:.4f}" for k, v in result.items() if k.startswith("test_")))
        return result


def _epoch_hook(family, cfg: Config, data: Data, run, model: nn.Module, user=None):
    """The loop's ``on_epoch_end``: the family's per-epoch artefacts into ``run``'s folder
    (where the run is, i.e. rank 0), then the caller's ``user(state, record)``."""
    if family.samples is None or run is None:
        return user
    writer = family.samples(cfg, data, lambda: run.path)

    def hook(state, record: dict) -> None:
        writer(model, state.epoch)
        if user is not None:
            user(state, record)

    return hook


def _finish(run: RunDir, model: nn.Module, cfg: Config, result: dict) -> dict:
    records = [r for r in run.metrics() if "seconds" in r]
    seconds = sum(r["seconds"] for r in records) / max(len(records), 1)
    run.log({k: v for k, v in result.items() if k.startswith("test_")})
    export_safetensors(model, run.checkpoints / "model.safetensors")
    lines = [f"preset: {cfg.run.preset}  {cfg.run.description}", f"data: {cfg.data.dataset}"]
    lines += [f"{k}: {v}" for k, v in result.items() if k != "run"]
    lines.append(f"seconds_per_epoch: {seconds:.2f}")
    run.write_text("summary.txt", "\n".join(lines) + "\n")
    return {"seconds_per_epoch": seconds}


def load_run(path: str | os.PathLike, checkpoint: str | None = None) -> tuple[Config, nn.Module]:
    """The config and the trained model (eval mode, CPU) of run folder ``path``.
    ``checkpoint``: "last" or "best"; by default the weights the run ended with (best when
    ``train.restore_best`` put them back, else last)."""
    run = RunDir.open(path)
    cfg = config_from_dict(run.config()["config"])
    last = load_checkpoint(run.checkpoints / "last.pt")
    if checkpoint is None:
        restored = last.get("fit", {}).get("restored", 0)
        checkpoint = "best" if restored and (run.checkpoints / "best.pt").is_file() else "last"
    ckpt = last if checkpoint == "last" else load_checkpoint(run.checkpoints / f"{checkpoint}.pt")
    data = build_data(cfg, dry_run=True)  # only for shapes: nothing is read from disk
    model = build_model(cfg, data.spec)
    model.load_state_dict(ckpt["model"])
    return cfg, model.eval()


def evaluate_run(
    path: str | os.PathLike, *, data_dir: str | None = None, checkpoint: str | None = None
) -> dict[str, float]:
    """Test-split metrics of a run folder's final weights, or of ``checkpoint`` ("last" or
    "best"; see :func:`load_run`). A run that saved its scaler (``data.json``, the families
    on the user's files) has its test split scaled with those training statistics, as
    ``predict`` does, not with refit ones."""
    cfg, model = load_run(path, checkpoint)
    if data_dir is not None:
        cfg.data.data_dir = data_dir
    saved = Path(path) / "data.json"
    if saved.is_file() and "scaler" in (info := json.loads(saved.read_text())):
        cfg.data.scaler = json.dumps(info["scaler"])
    data = build_data(cfg)
    eval_step = steps_for(cfg)[1]
    batches = _batches(data.test, cfg.train.eval_batch_size, {}, shuffle=False)
    return {f"test_{k}": v for k, v in evaluate(model, eval_step, batches).items()}


def model_input(cfg: Config, images: Tensor) -> Tensor:
    """Raw inputs (images (N, H, W) in [0, 1]) as the run's model reads them."""
    family = families.get(cfg.model.family)
    if family.model_input is None:
        raise ConfigError(f"family {family.name!r} does not read images")
    return family.model_input(cfg, images)
