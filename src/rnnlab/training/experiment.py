"""From a :class:`~rnnlab.training.config.Config` to a trained run: data, model, optimizer,
schedule, then :func:`rnnlab.training.loop.fit`. Every ``model.family`` goes through here:
classify (optionally adversarial, :mod:`.adversarial`; Keras-style regularizers,
:mod:`.regularize`), regress, tbptt, and the generative families of :mod:`.families`.
``train.precision`` (:mod:`.precision`) and ``train.cuda_graph`` (:mod:`.cuda_graph`) are
wired in here: the first picks autocast and the loss scaler, the second puts the training
data on the GPU and wraps the classify/regress step in a captured graph, or says in one
line why it falls back to the eager step.
The CLI's ``train``/``evaluate``/``predict`` are thin shells around :func:`train`,
:func:`evaluate_run`, :func:`load_run`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from rnnlab.data import DATASETS, adding_problem, images_to_sequences, load, synthetic_images
from rnnlab.layers import chrono_init_
from rnnlab.models.classifiers import (
    CNNClassifier,
    MLPClassifier,
    SequenceClassifier,
    SequenceRegressor,
    SmallCNN,
)
from rnnlab.utils import count_parameters, seed_everything

from . import cuda_graph, distributed, families, steps
from .adversarial import WarmupAdversarialStep, adversarial_step
from .checkpoint import RunDir, export_safetensors, load_checkpoint
from .config import Config, ConfigError, config_from_dict, config_to_dict
from .loop import Batches, FitState, TrainingStopped, evaluate, fit, resume
from .optim import build_optimizer, build_schedule
from .precision import make_precision
from .regularize import regularizers
from .samples import epoch_hook, importance_weighted_test_nll

__all__ = [
    "DataError", "Data", "build_data", "build_model", "build_schedule", "evaluate_run",
    "load_run", "train",
]  # fmt: skip

IMAGE_KINDS = ("cnn", "cnn-small", "mlp")  # read whole images, not row/pixel sequences
CLASSIFY_KINDS = ("simple_rnn", "lstm", "gru", "bilstm", *IMAGE_KINDS)
ADDING_SEEDS = {"train": 1, "test": 2}  # fixed: every adding-problem run sees the same data


class DataError(ValueError):
    """Data that cannot be trained on (NaN, wrong family for the dataset, ...)."""


@dataclass
class Data:
    train: tuple[Tensor, ...]
    val: tuple[Tensor, ...] | None
    test: tuple[Tensor, ...]
    num_classes: int  # 0 for regression
    source: str


def _model_input(cfg: Config, images: Tensor) -> Tensor:
    if cfg.model.family in families.FAMILIES:
        return families.model_input(cfg, images)
    if cfg.model.kind in IMAGE_KINDS:
        return images
    return images_to_sequences(images, cfg.data.view, cfg.data.permute_seed)


def build_data(cfg: Config, *, dry_run: bool = False) -> Data:
    """Train / validation / test tensors for ``cfg`` (synthetic stand-ins with ``dry_run``)."""
    d, regression = cfg.data, cfg.model.family in ("regress", "tbptt")
    if regression != (d.dataset == "adding"):
        raise DataError(
            f"`model.family` {cfg.model.family!r} does not fit `data.dataset` {d.dataset!r}: "
            "regress/tbptt need dataset=adding, the other families an image dataset"
        )
    if regression:
        n_train, n_test = (64, 32) if dry_run else (d.n_train, d.n_test)
        train, test = (
            adding_problem(n, d.seq_len, seed=ADDING_SEEDS[s])
            for n, s in ((n_train, "train"), (n_test, "test"))
        )
        source, num_classes = f"adding problem, T={d.seq_len}", 0
    else:
        if dry_run:
            shape, k = DATASETS[d.dataset].image_shape, len(DATASETS[d.dataset].class_names)
            sets = [synthetic_images(n, shape, k, seed=i) for i, n in ((0, 256), (1, 64))]
        else:
            sets = [load(d.dataset, split, root=d.data_dir) for split in ("train", "test")]
        for s in sets:
            if not torch.isfinite(s.images).all():
                raise DataError(f"{d.dataset} ({s.split}, {s.location}) holds NaN or inf pixels")
        train = (_model_input(cfg, sets[0].images), sets[0].labels)
        test = (_model_input(cfg, sets[1].images), sets[1].labels)
        source, num_classes = f"{sets[0].name} ({sets[0].location})", sets[0].num_classes
    if d.limit:
        train = tuple(t[: d.limit] for t in train)
    val = None
    if d.val_fraction > 0:
        order = torch.randperm(len(train[0]), generator=torch.Generator().manual_seed(12345))
        n_val = max(1, int(len(order) * d.val_fraction))
        val = tuple(t[order[:n_val]] for t in train)
        train = tuple(t[order[n_val:]] for t in train)
    return Data(train, val, test, num_classes, source)


def build_model(cfg: Config, example: Tensor, num_classes: int) -> nn.Module:
    """The model ``cfg.model`` describes, sized from one example input (no batch dim);
    ``model.chrono_tmax`` > 0 then chrono-initialises its LSTM gate biases."""
    model = _build_model(cfg, example, num_classes)
    if cfg.model.chrono_tmax:
        try:
            chrono_init_(model, cfg.model.chrono_tmax)
        except ValueError as e:
            raise ConfigError(f"`model.chrono_tmax`: {e}") from None
    return model


def _build_model(cfg: Config, example: Tensor, num_classes: int) -> nn.Module:
    m = cfg.model
    if m.family in families.FAMILIES:
        return families.build_model(cfg, example, num_classes)
    if m.kind not in CLASSIFY_KINDS:
        raise ConfigError(
            f"`model.kind` for family {m.family!r} must be one of {', '.join(CLASSIFY_KINDS)}, "
            f"got {m.kind!r}"
        )
    rnn_kwargs = {
        "num_layers": m.num_layers, "bidirectional": m.bidirectional, "dropout": m.dropout,
        "recurrent_dropout": m.recurrent_dropout, "layer_dropout": m.layer_dropout,
        "activation": m.activation, "implementation": m.implementation, "init": m.init,
    }  # fmt: skip
    if m.family in ("regress", "tbptt"):
        if m.kind in IMAGE_KINDS:
            raise DataError(f"`model.kind` {m.kind!r} cannot read the adding problem's sequences")
        return SequenceRegressor(m.kind, example.shape[-1], m.hidden_size, 1, **rnn_kwargs)
    if m.kind == "cnn":
        return CNNClassifier(
            tuple(example.shape), num_classes, hidden_size=m.hidden_size, dropout=m.head_dropout
        )
    if m.kind == "cnn-small":
        return SmallCNN(tuple(example.shape), num_classes, hidden_size=m.hidden_size)
    if m.kind == "mlp":
        hidden = (m.hidden_size,) * m.num_layers
        return MLPClassifier(tuple(example.shape), num_classes, hidden_sizes=hidden,
                             dropout=m.head_dropout)  # fmt: skip
    rnn_kwargs.pop("num_layers")
    return SequenceClassifier(
        m.kind, example.shape[-1], m.hidden_size, num_classes, m.num_layers,
        head_dropout=m.head_dropout, **rnn_kwargs,
    )  # fmt: skip


def _steps_for(cfg: Config, amp=None, *, graph: bool = False, log=print):
    """``(train_step, eval_step)`` of ``cfg``'s family, options bound. ``amp``: the run's
    :class:`~.precision.Precision`; ``graph``: wrap the step in a
    :class:`~.cuda_graph.GraphedStep` (classify / regress; see
    :func:`~.cuda_graph.fallback_reason`)."""
    t, family = cfg.train, cfg.model.family
    if family in families.FAMILIES:
        return families.steps_for(cfg, amp)
    penalty, after_step = regularizers(cfg)
    kw = {"clip_norm": t.clip_norm, "clip_value": t.clip_value}
    if family == "tbptt":
        return functools.partial(steps.tbptt_step, k=t.tbptt_k, **kw), steps.regress_eval
    kw |= {"penalty": penalty, "after_step": after_step}
    if t.adversarial != "none":  # precision stays fp32 here (check_config)
        adv = {"method": t.adversarial, "eps": t.adv_eps, "alpha": t.adv_alpha,
               "steps": t.adv_steps, "mix": t.adv_mix}  # fmt: skip
        if t.adv_eps_warmup > 0:
            return WarmupAdversarialStep(t.adv_eps_warmup, **adv, **kw), steps.classify_eval
        return functools.partial(adversarial_step, **adv, **kw), steps.classify_eval
    kw["amp"] = amp
    if graph and family in cuda_graph.GRAPH_FAMILIES:
        eager = steps.classify_step if family == "classify" else steps.regress_step
        step = cuda_graph.GraphedStep(family, functools.partial(eager, **kw), log=log, **kw)
        return step, steps.classify_eval if family == "classify" else steps.regress_eval
    if family == "regress":
        return functools.partial(steps.regress_step, **kw), steps.regress_eval
    return functools.partial(steps.classify_step, **kw), steps.classify_eval


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
    t = cfg.train
    if cfg.run.tensorboard:
        from .logging import require_tensorboard

        require_tensorboard()  # before anything is made on disk
    rank, world_size, device = distributed.setup(t.device)
    log = log if rank == 0 else (lambda _: None)
    if world_size > 1 and cfg.model.family not in ("classify", "regress"):
        raise DataError(f"`model.family` {cfg.model.family} runs in one process; drop torchrun")
    amp = make_precision(t.precision, device)  # refuses fp16 off CUDA before anything is made
    graph = False
    if t.cuda_graph:
        why = cuda_graph.fallback_reason(cfg, device, world_size)
        graph = why is None
        if why is not None:
            log(f"cuda graph: off, {why}; training with the eager step")
    with _determinism(t.deterministic), contextlib.ExitStack() as stack:
        if world_size > 1:
            stack.callback(distributed.cleanup)
        seed_everything(t.seed)
        data = build_data(cfg, dry_run=dry_run)
        model = build_model(cfg, data.train[0][0], data.num_classes).to(device)
        n_params = count_parameters(model)
        model = distributed.wrap(model, device)
        shard = {"rank": rank, "world_size": world_size}
        train_tensors = data.train
        if graph:  # resident on the GPU, static batch shapes
            train_tensors = tuple(x.to(device) for x in data.train)
        train_data = Batches(
            *train_tensors, batch_size=cfg.data.batch_size, seed=t.seed, drop_last=graph, **shard
        )
        evals = {
            split: Batches(*tensors, batch_size=t.eval_batch_size, shuffle=False, **shard)
            for split, tensors in (("val", data.val), ("test", data.test)) if tensors is not None
        }  # fmt: skip
        capturable = graph and t.optimizer in cuda_graph.CAPTURABLE
        optimizer = build_optimizer(
            cfg, model, families.optimizer_parts(cfg, model), capturable=capturable
        )
        if capturable:
            cuda_graph.device_lr(optimizer, torch.device(device))
        max_steps = 3 if dry_run else t.max_steps
        per_epoch = min(len(train_data), max_steps) if max_steps else len(train_data)
        scheduler, interval = build_schedule(cfg, optimizer, per_epoch)
        train_step, eval_step = _steps_for(cfg, amp, graph=graph, log=log)

        run, state = None, None
        if resume_from is not None:
            run = RunDir.open(resume_from)
            planned = run.config()["config"]["train"]["epochs"]
            if t.schedule in ("cosine", "onecycle") and t.epochs != planned:
                raise ConfigError(
                    f"`train.epochs` must stay {planned} to resume a {t.schedule} schedule "
                    f"(it spans the planned steps), got {t.epochs}"
                )
            state = resume(
                run.checkpoints / "last.pt", model, optimizer, scheduler, train_data, amp
            )
            if capturable:  # a loaded param group brings its lr back as saved
                cuda_graph.device_lr(optimizer, torch.device(device))
        else:
            families.pretrain(cfg, model, data.train[0], dry_run)
        if rank == 0 and resume_from is None:
            out = stack.enter_context(tempfile.TemporaryDirectory()) if dry_run else None
            name = cfg.run.name or f"{cfg.run.preset or 'run'}-{time.strftime('%Y%m%d-%H%M%S')}"
            run = RunDir.create(out or cfg.run.out_dir, name, config_to_dict(cfg), argv or [])
        if run is not None and cfg.run.tensorboard:
            run.use_tensorboard()
        where = f"{device}" + (f" x {world_size} processes" if world_size > 1 else "")
        if rank == 0:
            log(f"{cfg.run.preset or 'run'}: {n_params:,} parameters on {where}; {data.source}")
        hook = epoch_hook(cfg, data.test, run, model, on_epoch_end)
        try:
            state = fit(
                model, optimizer, train_data, train_step=train_step, eval_step=eval_step,
                val_data=evals.get("val"), epochs=t.epochs, scheduler=scheduler,
                scheduler_interval=interval, device=device, run=run, patience=t.patience,
                max_steps=max_steps, state=state, log=log, progress=progress,
                on_epoch_end=hook, amp=amp,
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
        test = evaluate(model, eval_step, evals["test"], device)
        result = {"run": str(run.path) if run and not dry_run else None, "epochs": state.epoch,
                  "stopped": state.stopped, "parameters": n_params}  # fmt: skip
        result |= {f"test_{k}": v for k, v in test.items()}
        if isinstance(train_step, cuda_graph.GraphedStep):
            result["cuda_graph_replays"] = train_step.replays
        if cfg.model.family == "vae" and t.iw_k > 0:
            k = min(t.iw_k, 8) if dry_run else t.iw_k
            result["test_iw_nll"] = importance_weighted_test_nll(model, evals["test"], k, device)
        if run is not None and rank == 0:
            result |= _finish(run, model, cfg, result)
        if rank == 0:
            log("  ".join(f"{k} {v:.4f}" for k, v in result.items() if k.startswith("test_")))
        return result


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


def load_run(path: str | os.PathLike, checkpoint: str = "last") -> tuple[Config, nn.Module]:
    """The config and the trained model (eval mode, CPU) of run folder ``path``."""
    run = RunDir.open(path)
    cfg = config_from_dict(run.config()["config"])
    ckpt = load_checkpoint(run.checkpoints / f"{checkpoint}.pt")
    data = build_data(cfg, dry_run=True)  # only for shapes: nothing is read from disk
    model = build_model(cfg, data.train[0][0], _num_classes(cfg))
    model.load_state_dict(ckpt["model"])
    return cfg, model.eval()


def _num_classes(cfg: Config) -> int:
    return 0 if cfg.data.dataset == "adding" else len(DATASETS[cfg.data.dataset].class_names)


def evaluate_run(path: str | os.PathLike, *, data_dir: str | None = None) -> dict[str, float]:
    """Test-split metrics of a run folder's last checkpoint."""
    cfg, model = load_run(path)
    if data_dir is not None:
        cfg.data.data_dir = data_dir
    data = build_data(cfg)
    eval_step = _steps_for(cfg)[1]
    batches = Batches(*data.test, batch_size=cfg.train.eval_batch_size, shuffle=False)
    return {f"test_{k}": v for k, v in evaluate(model, eval_step, batches).items()}


def model_input(cfg: Config, images: Tensor) -> Tensor:
    """Images (N, H, W) in [0, 1] as the run's model reads them."""
    return _model_input(cfg, images)
