"""Optimizers and learning-rate schedules from a config, and the wrappers that let a family
with several optimizers (GAN: G and D; VAE-GAN: encoder, decoder, discriminator) run through
the one loop and checkpoint exactly like a family with one.

- :func:`build_optimizer`: SGD (momentum, Nesterov: Sutskever et al. 2013), RMSprop
  (Hinton's lecture 6e), AdaGrad (Duchi et al. 2011), Adadelta (Zeiler 2012; rho 0.95 and
  eps 1e-7, Keras's defaults, which Fawaz et al. 2019's MLP trains with), Adam (Kingma & Ba
  2015), AdamW (Loshchilov & Hutter 2019), each with ``weight_decay``.
- :func:`build_schedule`: step decay, per-epoch decay after a plateau of full lr (Zaremba
  et al. 2014), cosine annealing (Loshchilov & Hutter 2017), one-cycle
  (Smith & Topin 2019), reduce-on-plateau; ``(scheduler, interval)`` for :func:`..loop.fit`.
- :class:`MultiOptimizer` / :class:`MultiScheduler`: named optimizers (schedulers) behind the
  single-optimizer interface the loop and checkpoints use (``state_dict``,
  ``load_state_dict``, ``zero_grad``, ``param_groups``, ``step``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from .config import Config

__all__ = ["MultiOptimizer", "MultiScheduler", "build_optimizer", "build_schedule"]


def _one(name: str, params: Iterable, cfg: Config, capturable: bool = False):
    t = cfg.train
    kw = {"lr": t.lr, "weight_decay": t.weight_decay}
    if name == "sgd":
        return torch.optim.SGD(params, momentum=t.momentum, nesterov=t.nesterov, **kw)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, momentum=t.momentum, **kw)
    if name == "adagrad":
        return torch.optim.Adagrad(params, **kw)
    if name == "adadelta":
        return torch.optim.Adadelta(params, rho=0.95, eps=1e-7, **kw)
    from .families import get  # the registry imports this package's config

    beta1 = t.beta1 if t.beta1 is not None else get(cfg.model.family).beta1
    cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
    extra = {"capturable": True} if capturable else {}  # CUDA-graph capture (.cuda_graph)
    return cls(params, betas=(beta1, t.beta2), **kw, **extra)


class MultiOptimizer:
    """Several named optimizers seen as one: ``step``/``zero_grad`` act on all of them,
    ``param_groups`` lists every group (the first optimizer's first: the loop logs its lr),
    ``state_dict`` is ``{name: optimizer.state_dict()}``. ``self[name]`` is one optimizer."""

    def __init__(self, optimizers: Mapping[str, torch.optim.Optimizer]) -> None:
        if not optimizers:
            raise ValueError("`optimizers` must name at least one optimizer, got none")
        self.optimizers = dict(optimizers)

    def __getitem__(self, name: str) -> torch.optim.Optimizer:
        return self.optimizers[name]

    @property
    def param_groups(self) -> list[dict]:
        return [g for opt in self.optimizers.values() for g in opt.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for opt in self.optimizers.values():
            opt.step()

    def state_dict(self) -> dict:
        return {name: opt.state_dict() for name, opt in self.optimizers.items()}

    def load_state_dict(self, state: dict) -> None:
        if set(state) != set(self.optimizers):
            raise ValueError(
                f"optimizer state must hold {sorted(self.optimizers)}, got {sorted(state)}"
            )
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state[name])


class MultiScheduler:
    """One scheduler per optimizer of a :class:`MultiOptimizer`, stepped together."""

    def __init__(self, schedulers: Mapping[str, object]) -> None:
        self.schedulers = dict(schedulers)

    def step(self, *args) -> None:
        for s in self.schedulers.values():
            s.step(*args)

    def state_dict(self) -> dict:
        return {name: s.state_dict() for name, s in self.schedulers.items()}

    def load_state_dict(self, state: dict) -> None:
        for name, s in self.schedulers.items():
            s.load_state_dict(state[name])


def build_optimizer(
    cfg: Config,
    model: nn.Module,
    parts: Mapping[str, Iterable | nn.Module] | None = None,
    *,
    capturable: bool = False,
) -> torch.optim.Optimizer | MultiOptimizer:
    """``cfg.train.optimizer`` over ``model``'s parameters, or a :class:`MultiOptimizer` with
    one such optimizer per entry of ``parts`` (``{name: parameters or module}``).
    ``capturable``: Adam and AdamW keep their step count on the device, as CUDA-graph capture
    needs."""
    if parts is None:
        return _one(cfg.train.optimizer, model.parameters(), cfg, capturable)
    params = {k: p.parameters() if isinstance(p, nn.Module) else p for k, p in parts.items()}
    return MultiOptimizer({k: _one(cfg.train.optimizer, p, cfg) for k, p in params.items()})


def _schedule(cfg: Config, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
    t, total = cfg.train, max(cfg.train.epochs * steps_per_epoch, 1)
    sched = torch.optim.lr_scheduler
    if t.schedule == "step":
        return sched.StepLR(optimizer, t.step_size, t.gamma), "epoch"
    if t.schedule == "decay":  # Zaremba et al. 2014: lr * gamma ** max(0, epoch + 1 - step_size)
        full, gamma = t.step_size, t.gamma
        return sched.LambdaLR(optimizer, lambda e: gamma ** max(0, e + 1 - full)), "epoch"
    if t.schedule == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=total), "step"
    if t.schedule == "onecycle":
        return sched.OneCycleLR(optimizer, max_lr=t.lr, total_steps=total), "step"
    if t.schedule == "plateau":
        return sched.ReduceLROnPlateau(optimizer, factor=t.gamma, patience=t.plateau_patience,
                                       min_lr=t.min_lr), "plateau"  # fmt: skip
    return None, "epoch"


def build_schedule(cfg: Config, optimizer, steps_per_epoch: int):
    """``(scheduler or None, interval)`` for ``cfg.train.schedule``; ``interval`` is "step",
    "epoch" or "plateau" (:func:`rnnlab.training.loop.fit`'s ``scheduler_interval``)."""
    if not isinstance(optimizer, MultiOptimizer):
        return _schedule(cfg, optimizer, steps_per_epoch)
    built = {k: _schedule(cfg, o, steps_per_epoch) for k, o in optimizer.optimizers.items()}
    interval = next(iter(built.values()))[1]
    if all(s is None for s, _ in built.values()):
        return None, interval
    return MultiScheduler({k: s for k, (s, _) in built.items()}), interval
