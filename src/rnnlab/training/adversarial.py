"""Adversarial training: the classify family's step on adversarial examples.

- ``fgsm``: Goodfellow, Shlens & Szegedy 2014, eq. 6: the mixed objective
  ``mix * L(x) + (1 - mix) * L(x + eps * sign(grad_x L(x)))`` (their alpha = 0.5).
- ``pgd``: Madry et al. 2018: only adversarial examples, found by projected gradient ascent
  from a random start in the eps-ball (``steps`` steps of ``alpha``, default 2.5 eps / steps).
- ``fast``: Wong, Rice & Kolter 2020, "Fast is better than free": FGSM from a uniform random
  start with step 1.25 eps, projected back to the eps-ball; only adversarial examples.

``eps_warmup`` epochs ramp eps linearly from 0 to its value, one increment per update
(:class:`WarmupAdversarialStep`): Gowal et al. 2018 (IBP) and Wong et al. 2020 ramp eps this
way; at eps = 0.3 on MNIST it keeps the first epochs from being spent on an attack too strong
for an untrained model.

The examples come from :mod:`rnnlab.attacks` (model in eval mode, its parameters untouched,
modes restored); the loss is then taken in training mode. Random starts draw from torch's
global generator, which checkpoints hold, so a resumed run stays exact.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab import attacks

from .loop import Step
from .update import Update

__all__ = [
    "METHODS",
    "WarmupAdversarialStep",
    "adversarial_examples",
    "adversarial_step",
    "default_mix",
]

METHODS = ("fgsm", "pgd", "fast")


def default_mix(method: str) -> float:
    """The weight of the clean loss each method uses by default: 0.5 (fgsm), else 0."""
    return 0.5 if method == "fgsm" else 0.0


def adversarial_examples(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    method: str,
    eps: float,
    *,
    alpha: float | None = None,
    steps: int = 10,
) -> Tensor:
    """Adversarial examples for training with ``method`` in ``METHODS``, inputs in [0, 1]."""
    if method == "fgsm":
        return attacks.fgsm(model, x, y, eps)
    if method == "pgd":
        return attacks.pgd(model, x, y, eps, alpha, steps, random_start=True)
    if method == "fast":
        step = 1.25 * eps if alpha is None else alpha
        return attacks.pgd(model, x, y, eps, step, 1, random_start=True)
    raise ValueError(f"`method` must be one of {', '.join(METHODS)}, got {method!r}")


def adversarial_step(
    model: nn.Module,
    batch,
    optimizer: torch.optim.Optimizer,
    *,
    method: str,
    eps: float,
    alpha: float | None = None,
    steps: int = 10,
    mix: float | None = None,
    update: Update | None = None,
) -> dict[str, float]:
    """One step on ``mix * CE(x) + (1 - mix) * CE(x_adv)`` through ``update`` (clipping,
    regularisers, the NaN guard; fp32); returns ``loss`` (that mixture), ``accuracy`` (clean,
    when mix > 0), ``adv_accuracy`` (on x_adv) and ``grad_norm``."""
    update = update or Update()
    x, y = batch[0], batch[1]
    if len(batch) > 2:
        raise ValueError("`batch` for adversarial training must be (x, y) without lengths")
    mix = default_mix(method) if mix is None else mix
    x_adv = adversarial_examples(model, x, y, method, eps, alpha=alpha, steps=steps)
    model.train()
    if mix > 0:  # one forward over both halves: BatchNorm statistics see clean and adversarial
        logits_clean, logits_adv = model(torch.cat([x, x_adv])).split(len(x))
        loss = mix * F.cross_entropy(logits_clean, y)
        loss = loss + (1 - mix) * F.cross_entropy(logits_adv, y)
    else:
        logits_clean, logits_adv = None, model(x_adv)
        loss = F.cross_entropy(logits_adv, y)
    out = {"loss": loss.item(), **update(loss, model, optimizer)}
    out["adv_accuracy"] = (logits_adv.detach().argmax(-1) == y).float().mean().item()
    if logits_clean is not None:
        out["accuracy"] = (logits_clean.detach().argmax(-1) == y).float().mean().item()
    return out


class WarmupAdversarialStep(Step):
    """:func:`adversarial_step` with eps ramped over the first ``warmup_epochs`` epochs.

    At update u (counted from the run's start), ``eps_u = eps * min(1, u / (warmup_epochs * S))``
    with S updates per epoch; ``alpha=None`` follows the current eps. The loop calls
    :meth:`on_epoch_start` before each epoch (as ``DistributedSampler.set_epoch``), so a resumed run
    continues the same ramp. The metrics add ``adv_eps``, the last eps used.
    """

    def __init__(self, warmup_epochs: float, **step_kwargs) -> None:
        if isinstance(warmup_epochs, bool) or not warmup_epochs > 0:
            raise ValueError(f"`warmup_epochs` must be > 0, got {warmup_epochs!r}")
        self.warmup_epochs, self.kwargs = float(warmup_epochs), step_kwargs
        self.eps = float(step_kwargs["eps"])
        self._update, self._per_epoch = 0, 1

    def on_epoch_start(self, epoch: int, steps_per_epoch: int) -> None:
        self._per_epoch = max(1, int(steps_per_epoch))
        self._update = epoch * self._per_epoch

    def current_eps(self) -> float:
        return self.eps * min(1.0, (self._update + 1) / (self.warmup_epochs * self._per_epoch))

    def __call__(self, model: nn.Module, batch, optimizer: torch.optim.Optimizer) -> dict:
        eps = self.current_eps()
        out = adversarial_step(model, batch, optimizer, **{**self.kwargs, "eps": eps})
        self._update += 1
        return {**out, "adv_eps": eps}
