"""Adversarial examples: FGSM, BIM and PGD as pure functions of ``(model, x, y)``.

Follows Goodfellow, Shlens & Szegedy 2014, "Explaining and Harnessing Adversarial Examples"
(FGSM); Kurakin, Goodfellow & Bengio 2016, "Adversarial examples in the physical world" (BIM);
Madry et al. 2018, "Towards Deep Learning Models Resistant to Adversarial Attacks" (PGD);
Carlini & Wagner 2017, "Towards Evaluating the Robustness of Neural Networks" (the margin
loss, their f_6, which PGD can ascend instead of the cross-entropy: ``loss_fn=margin_loss``).

With ``L(x)`` the loss of the model on input ``x`` and label ``y``::

    FGSM:  x' = clip(x + eps * sign(grad_x L(x)))
    BIM:   x_0 = x,  x_{n+1} = clip(P_{x,eps}(x_n + alpha * sign(grad_x L(x_n))))
    PGD:   BIM from a random start x_0 ~ U(B_eps(x)), best of ``restarts`` runs; with
           ``norm="l2"`` the step is alpha * g / ||g||_2 and P projects onto ||x' - x||_2 <= eps.

The margin (CW) loss on logits ``z`` with label ``y`` is ``max_{j != y} z_j - z_y``, clamped
at ``kappa`` when given; it is positive exactly when the example is misclassified and, unlike
the cross-entropy, does not saturate when the softmax does (a masked or overconfident model
can flatten the cross-entropy gradient while the margin's stays ``W_j* - W_y``).

``P_{x,eps}`` is the projection onto the eps-ball around the clean input, ``clip`` onto the
valid input range (``(0, 1)`` for images, ``None`` for unbounded inputs). Targeted attacks take
the target class in ``y`` and descend the loss (``x - alpha * sign(grad)``).

Contracts: no training state. During an attack the model is in eval mode and its parameters
do not require grad; every module's mode and every ``requires_grad`` flag are restored after,
and gradients are taken with ``torch.autograd.grad`` w.r.t. the input only, so no parameter's
``.grad`` changes. Any classifier mapping images or sequences ``(B, T, I)`` to logits ``(B, C)``
works, recurrent ones included: cuDNN refuses RNN backward in eval mode, so on CUDA cuDNN is
switched off while a model holding ``torch.nn`` RNN modules is attacked.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .utils import check_nonnegative

__all__ = ["fgsm", "bim", "pgd", "margin_loss", "NORMS"]

NORMS = ("linf", "l2")
LossFn = Callable[[Tensor, Tensor], Tensor]


# ----------------------------------------------------------------------------- validation
def _check_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}")
    return value


def _check_inputs(model: object, x: object, y: object, clip: object) -> tuple[float, float] | None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x, Tensor) or not x.is_floating_point():
        got = f"{x.dtype} tensor" if isinstance(x, Tensor) else type(x).__name__
        raise TypeError(f"`x` must be a floating-point tensor, got {got}")
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"`x` must be a non-empty batch (B, ...), got shape {tuple(x.shape)}")
    if not isinstance(y, Tensor) or y.dtype != torch.long or y.dim() != 1:
        got = f"{y.dtype} tensor of shape {tuple(y.shape)}" if isinstance(y, Tensor) else y
        raise TypeError(f"`y` must be a 1-D int64 tensor of class indices, got {got!r}")
    if y.shape[0] != x.shape[0]:
        raise ValueError(
            f"`x` and `y` must have the same batch size, got {x.shape[0]} and {y.shape[0]}"
        )
    if clip is None:
        return None
    if not isinstance(clip, (tuple, list)) or len(clip) != 2:
        raise TypeError(f"`clip` must be None or a (low, high) pair, got {clip!r}")
    lo, hi = (float(c) for c in clip)
    if not lo < hi:
        raise ValueError(f"`clip` must satisfy low < high, got {clip!r}")
    x_lo, x_hi = float(x.min()), float(x.max())
    if x_lo < lo - 1e-6 or x_hi > hi + 1e-6:
        raise ValueError(
            f"`x` has values in [{x_lo:.4g}, {x_hi:.4g}], outside clip={clip!r}; pass "
            "clip=None for unbounded (e.g. standardised) inputs, or the data's range"
        )
    return lo, hi


# ----------------------------------------------------------------------------- machinery
@contextmanager
def _attack_mode(model: nn.Module, device: torch.device) -> Iterator[None]:
    """Eval mode and frozen parameters for the attack; everything restored on exit."""
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    has_rnn = any(isinstance(m, nn.RNNBase) for m in model.modules())
    no_cudnn = has_rnn and device.type == "cuda"
    try:
        model.eval()
        for p, _ in flags:
            p.requires_grad_(False)
        with torch.backends.cudnn.flags(enabled=False) if no_cudnn else nullcontext():
            yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        for m, mode in modes:
            m.training = mode


def _forward(model: nn.Module, x: Tensor, y: Tensor, loss_fn: LossFn | None, check=False):
    """Logits ``(B, C)`` and loss (per example ``(B,)`` or a scalar from a custom loss_fn)."""
    logits = model(x)
    if not isinstance(logits, Tensor) or logits.dim() != 2 or logits.shape[0] != x.shape[0]:
        got = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise TypeError(f"`model` must map x to logits of shape (B, C), got {got}")
    if check and (int(y.min()) < 0 or int(y.max()) >= logits.shape[1]):
        n = logits.shape[1]
        raise ValueError(f"`y` must hold class indices in [0, {n}), got [{y.min()}, {y.max()}]")
    if loss_fn is None:
        return logits, F.cross_entropy(logits, y, reduction="none")
    loss = loss_fn(logits, y)
    if not isinstance(loss, Tensor) or loss.shape not in ((), (x.shape[0],)):
        got = tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
        raise ValueError(f"`loss_fn` must return a scalar or per-example (B,) loss, got {got}")
    return logits, loss


def _norms(t: Tensor) -> Tensor:
    """Per-example L2 norm, shaped to broadcast against ``t``."""
    return t.flatten(1).norm(dim=1).view(-1, *([1] * (t.dim() - 1)))


def _random_start(x: Tensor, eps: float, norm: str, generator: torch.Generator | None) -> Tensor:
    """Uniform sample from the eps-ball: a cube for linf; for l2 a Gaussian direction with
    radius eps * u^(1/d), which is uniform in volume."""
    kw = {"generator": generator, "device": x.device, "dtype": x.dtype}
    if norm == "linf":
        return (2 * torch.rand(x.shape, **kw) - 1) * eps
    direction = torch.randn(x.shape, **kw)
    direction = direction / _norms(direction).clamp_min(1e-12)
    u = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), **kw)
    return direction * u ** (1.0 / x[0].numel()) * eps


def _step(x_adv: Tensor, grad: Tensor, alpha: float, norm: str) -> Tensor:
    if norm == "linf":
        return x_adv + alpha * grad.sign()
    return x_adv + alpha * grad / _norms(grad).clamp_min(1e-12)


def _project(x_adv: Tensor, x: Tensor, eps: float, norm: str, clip) -> Tensor:
    if norm == "linf":
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps)
    else:
        delta = x_adv - x
        x_adv = x + delta * (eps / _norms(delta).clamp_min(1e-12)).clamp(max=1.0)
    # Clipping toward a point inside the box never moves x_adv away from x: stays in the ball.
    return x_adv if clip is None else x_adv.clamp(clip[0], clip[1])


def _run(model, x, y, eps, alpha, steps, norm, start, targeted, clip, loss_fn, check) -> Tensor:
    """One attack run: ``steps`` projected (sign-)gradient steps from ``start``."""
    x_adv = start
    for _ in range(steps):
        x_req = x_adv.detach().requires_grad_(True)
        with torch.enable_grad():
            logits, loss = _forward(model, x_req, y, loss_fn, check)
            check = False
            (grad,) = torch.autograd.grad(loss.sum(), x_req)
        x_adv = _project(_step(x_adv, -grad if targeted else grad, alpha, norm), x, eps, norm, clip)
    return x_adv.detach()


# ----------------------------------------------------------------------------- public API
def margin_loss(logits: Tensor, y: Tensor, kappa: float | None = None) -> Tensor:
    r"""Carlini & Wagner's margin loss per example, ``(B,)``, to be *ascended* by an attack:

    .. math:: \ell(z, y) = \max_{j \ne y} z_j - z_y \quad (\text{clamped above at } \kappa)

    ``logits`` is ``(B, C)`` with ``C >= 2``, ``y`` the labels ``(B,)``. ``kappa`` (CW's
    confidence; Madry et al.'s MNIST challenge used 50) stops the push once the wrong class
    leads by that much. For a targeted attack pass the target classes as ``y``: descending
    the same loss (``pgd(..., targeted=True)``) raises the target above every other class.
    Use as ``pgd(model, x, y, eps, loss_fn=margin_loss)``.
    """
    if logits.dim() != 2 or logits.shape[1] < 2:
        raise ValueError(f"`logits` must be (B, C) with C >= 2, got {tuple(logits.shape)}")
    true = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.scatter(1, y[:, None], float("-inf"))
    margin = others.max(dim=1).values - true
    return margin if kappa is None else margin.clamp(max=float(kappa))


def fgsm(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    targeted: bool = False,
    clip: tuple[float, float] | None = (0.0, 1.0),
    loss_fn: LossFn | None = None,
) -> Tensor:
    """Fast gradient sign method: ``x' = clip(x + eps * sign(grad_x L(model(x), y)))``.

    Targeted (``y`` = target classes): ``x' = clip(x - eps * sign(grad_x L))``. ``loss_fn``
    (default cross-entropy) maps ``(logits, y)`` to per-example losses or their sum/mean.
    """
    return bim(model, x, y, eps, eps, 1, targeted=targeted, clip=clip, loss_fn=loss_fn)


def bim(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    alpha: float | None = None,
    steps: int | None = None,
    *,
    targeted: bool = False,
    clip: tuple[float, float] | None = (0.0, 1.0),
    loss_fn: LossFn | None = None,
) -> Tensor:
    """Basic iterative method (iterative FGSM), started at ``x`` and kept in the linf ball:
    ``x_{n+1} = clip(min(max(x_n + alpha * sign(grad), x - eps), x + eps))``.

    Defaults are Kurakin et al.'s for pixels in [0, 1]: ``alpha = 1/255`` and
    ``steps = min(ceil(255 eps) + 4, ceil(1.25 * 255 eps))`` (at least 1).
    """
    eps = check_nonnegative("eps", eps)
    if steps is None:
        steps = max(1, min(math.ceil(255 * eps) + 4, math.ceil(1.25 * 255 * eps)))
    steps = _check_int("steps", steps)
    alpha = 1.0 / 255 if alpha is None else check_nonnegative("alpha", alpha)
    bounds = _check_inputs(model, x, y, clip)
    x = x.detach()
    with _attack_mode(model, x.device):
        return _run(model, x, y, eps, alpha, steps, "linf", x, targeted, bounds, loss_fn, True)


def pgd(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    alpha: float | None = None,
    steps: int = 40,
    *,
    norm: str = "linf",
    random_start: bool = True,
    restarts: int = 1,
    targeted: bool = False,
    clip: tuple[float, float] | None = (0.0, 1.0),
    loss_fn: LossFn | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Projected gradient descent on the loss (Madry et al. 2018), linf or l2 ball.

    Each of ``restarts`` runs starts at a uniform point of the eps-ball (or at ``x`` when
    ``random_start=False``) and takes ``steps`` steps of size ``alpha`` (default
    ``2.5 * eps / steps``, Madry et al.'s choice). Per example the result keeps the run that
    succeeds (untargeted: prediction != y; targeted: prediction == y) and, among equals, the
    one with the highest loss (targeted: lowest). Restarts stop early once every example
    succeeds. ``generator`` (on ``x``'s device) drives the random starts.
    """
    eps = check_nonnegative("eps", eps)
    steps = _check_int("steps", steps)
    restarts = _check_int("restarts", restarts)
    alpha = 2.5 * eps / steps if alpha is None else check_nonnegative("alpha", alpha)
    if norm not in NORMS:
        raise ValueError(f"`norm` must be one of {NORMS}, got {norm!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"`generator` must be a torch.Generator, got {type(generator).__name__}")
    bounds = _check_inputs(model, x, y, clip)
    x = x.detach()
    best = best_success = best_loss = None
    with _attack_mode(model, x.device):
        for r in range(restarts):
            start = x
            if random_start and eps > 0:
                start = _project(x + _random_start(x, eps, norm, generator), x, eps, norm, bounds)
            x_adv = _run(
                model, x, y, eps, alpha, steps, norm, start, targeted, bounds, loss_fn, r == 0
            )
            if restarts == 1:
                return x_adv
            with torch.no_grad():
                logits, loss = _forward(model, x_adv, y, loss_fn)
                if loss.dim() == 0:  # a reduced custom loss cannot rank examples
                    loss = F.cross_entropy(logits, y, reduction="none")
                hit = logits.argmax(1) == y
                success = hit if targeted else ~hit
                loss = -loss if targeted else loss  # higher is better from here on
            if best is None:
                best, best_success, best_loss = x_adv, success, loss
            else:
                better = (success & ~best_success) | (
                    (success == best_success) & (loss > best_loss)
                )
                mask = better.view(-1, *([1] * (x.dim() - 1)))
                best = torch.where(mask, x_adv, best)
                best_success = best_success | success
                best_loss = torch.where(better, loss, best_loss)
            if bool(best_success.all()):
                break
    return best
