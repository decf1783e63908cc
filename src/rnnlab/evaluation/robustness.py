"""Robustness evaluation: accuracy under attack, accuracy-vs-epsilon curves, and figures.

Follows the accuracy-vs-epsilon experiment of the PyTorch FGSM tutorial and Madry et al. 2018
(robust accuracy under PGD), and draws Goodfellow, Shlens & Szegedy 2014, Fig. 1 ("panda"
57.7% + 0.007 x perturbation = "gibbon" 99.3%) for any classifier. Attacks come from
:mod:`rnnlab.attacks`. With ``A`` an attack (the identity for clean accuracy)::

    robust accuracy = (1/N) * sum_i [ argmax_c f(A(x_i, y_i))_c == y_i ]

Figures use matplotlib's Agg canvas directly (no pyplot state, no display) and are written
atomically: a temporary file in the target folder, then ``os.replace``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from rnnlab import utils
from rnnlab.attacks import bim, fgsm, pgd
from rnnlab.utils import save_figure

__all__ = [
    "robust_accuracy",
    "robust_correct",
    "accuracy_vs_epsilon",
    "plot_robustness_curves",
    "panda_figure",
]

ATTACKS: dict[str, Callable[..., Tensor]] = {"fgsm": fgsm, "bim": bim, "pgd": pgd}
Attack = str | Callable[..., Tensor] | None


def _resolve_attack(attack: Attack) -> Callable[..., Tensor] | None:
    if attack is None or attack == "none":
        return None
    if isinstance(attack, str):
        if attack not in ATTACKS:
            raise ValueError(
                f"`attack` must be one of {sorted(ATTACKS) + ['none']} or a callable, "
                f"got {attack!r}"
            )
        return ATTACKS[attack]
    if not callable(attack):
        raise TypeError(f"`attack` must be a name or a callable, got {type(attack).__name__}")
    return attack


def _device_of(model: nn.Module, fallback: torch.device) -> torch.device:
    p = next(iter(model.parameters()), None)
    return fallback if p is None else p.device


def _batches(data: Any, batch_size: int) -> Iterable[tuple[Tensor, Tensor]]:
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], Tensor):
        x, y = data
        if not isinstance(y, Tensor) or len(x) != len(y):
            raise ValueError("`data` as (x, y) tensors needs one label per example")
        return (
            (x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)
        )
    if isinstance(data, Iterable):
        return ((b[0], b[1]) for b in data)
    raise TypeError(f"`data` must be (x, y) tensors or a DataLoader, got {type(data).__name__}")


@torch.no_grad()
def _predict(model: nn.Module, x: Tensor) -> Tensor:
    """Softmax probabilities in eval mode; every module's mode restored after."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        return model(x).softmax(dim=1)
    finally:
        for m, mode in modes:
            m.training = mode


def robust_correct(
    model: nn.Module,
    data: tuple[Tensor, Tensor] | Iterable,
    attack: Attack = "fgsm",
    *,
    batch_size: int = 256,
    progress: bool = False,
    **attack_kw: Any,
) -> Tensor:
    """Per example, whether ``model`` still classifies ``attack(model, x, y, **attack_kw)``
    correctly: a bool tensor ``(N,)`` on the CPU, in ``data``'s order. ANDing the results of
    several attacks gives the accuracy under the strongest of them per example (the
    worst case over attacks, as robustness evaluations should report). ``data``, ``attack``,
    ``progress``: as :func:`robust_accuracy`."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an int >= 1, got {batch_size!r}")
    run = _resolve_attack(attack)
    parts = []
    n = math.ceil(len(data[0]) / batch_size) if isinstance(data, tuple) else None
    name = getattr(attack, "__name__", attack) or "clean"
    what = f"{name} eps {float(attack_kw['eps']):g}" if "eps" in attack_kw else str(name)
    for x, y in utils.progress(_batches(data, batch_size), total=n, desc=what, enabled=progress):
        device = _device_of(model, x.device)
        x, y = x.to(device), y.to(device)
        if run is not None:
            x = run(model, x, y, **attack_kw)
        parts.append((_predict(model, x).argmax(1) == y).cpu())
    if not parts or sum(len(p) for p in parts) == 0:
        raise ValueError("`data` held no examples")
    return torch.cat(parts)


def robust_accuracy(
    model: nn.Module, data: tuple[Tensor, Tensor] | Iterable, attack: Attack = "fgsm", **kw: Any
) -> float:
    """Accuracy of ``model`` on ``attack(model, x, y, **attack_kw)`` over all of ``data``: the
    mean of :func:`robust_correct`, which takes the same ``kw``: ``batch_size`` (default 256),
    ``progress`` (a bar over the batches; plain lines when stderr is not a terminal,
    :func:`rnnlab.utils.progress`) and the attack's own keywords (``attack_kw``).

    ``data`` is ``(x, y)`` tensors (cut into ``batch_size`` batches) or an iterable of
    ``(x, y, ...)`` batches such as a DataLoader; batches move to the model's device.
    ``attack`` is ``"fgsm"``, ``"bim"``, ``"pgd"``, ``"none"``/``None`` (clean accuracy) or a
    callable with the same signature, e.g. ``robust_accuracy(m, loader, "pgd", eps=0.3)``;
    ``loss_fn=margin_loss`` makes PGD ascend the CW margin instead of the cross-entropy.
    """
    return float(robust_correct(model, data, attack, **kw).float().mean())


def accuracy_vs_epsilon(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    epsilons: Sequence[float],
    method: str = "fgsm",
    *,
    batch_size: int = 256,
    progress: bool = False,
    **attack_kw: Any,
) -> list[dict[str, float]]:
    """``[{"eps": e, "accuracy": robust_accuracy(model, (x, y), method, eps=e)}, ...]``.

    ``attack_kw`` go to the attack (``steps``, ``norm``, ``restarts``, ``generator``...); with
    ``alpha`` left out, BIM and PGD scale their step with each ``eps``.
    """
    if method not in ATTACKS:
        raise ValueError(f"`method` must be one of {sorted(ATTACKS)}, got {method!r}")
    if isinstance(epsilons, (str, bytes)) or not isinstance(epsilons, Sequence) or not epsilons:
        raise ValueError(f"`epsilons` must be a non-empty sequence of numbers, got {epsilons!r}")
    for e in epsilons:
        if isinstance(e, bool) or not isinstance(e, (int, float)) or not e >= 0:
            raise ValueError(f"`epsilons` must hold numbers >= 0, got {e!r}")
    return [
        {
            "eps": float(e),
            "accuracy": robust_accuracy(
                model,
                (x, y),
                method,
                batch_size=batch_size,
                eps=e,
                progress=progress,
                **attack_kw,
            ),  # fmt: skip
        }
        for e in epsilons
    ]


def plot_robustness_curves(
    curves: Mapping[str, Sequence[Mapping[str, float]]],
    path: str | os.PathLike,
    *,
    title: str = "Accuracy under attack",
    xlabel: str = "ε",
) -> str:
    """One accuracy-vs-eps line per model (``{name: accuracy_vs_epsilon(...)}``) as a PNG."""
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError(f"`curves` must be a non-empty {{name: points}} dict, got {curves!r}")
    fig = Figure(figsize=(5.5, 4.0), dpi=100)
    ax = fig.add_subplot()
    for name, points in curves.items():
        if not points or not all(
            isinstance(p, Mapping) and {"eps", "accuracy"} <= set(p) for p in points
        ):
            raise ValueError(
                f"`curves[{name!r}]` must be a non-empty list of "
                f"{{'eps', 'accuracy'}} dicts, got {points!r}"
            )
        points = sorted(points, key=lambda p: p["eps"])
        ax.plot([p["eps"] for p in points], [p["accuracy"] for p in points], "o-", label=name)
    ax.set(xlabel=xlabel, ylabel="accuracy", title=title, ylim=(-0.02, 1.02))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return str(save_figure(fig, path))


def _as_images(t: Tensor, name: str) -> Tensor:
    """(B, H, W), (B, 1, H, W) or (B, 3, H, W) -> (B, H, W) or (B, H, W, 3) on the CPU.
    Sequences (B, T, I) show as T x I images (rows of a row-by-row MNIST sequence)."""
    t = t.detach().float().cpu()
    if t.dim() == 4 and t.shape[1] in (1, 3):
        return t[:, 0] if t.shape[1] == 1 else t.permute(0, 2, 3, 1)
    if t.dim() == 3:
        return t
    raise ValueError(
        f"`{name}` must be images (B, H, W), (B, 1|3, H, W) or sequences (B, T, I), "
        f"got shape {tuple(t.shape)}"
    )


def panda_figure(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    x_adv: Tensor,
    class_names: Sequence[str] | None,
    path: str | os.PathLike,
    *,
    max_rows: int = 4,
    eps: float | None = None,
) -> str:
    """Goodfellow et al.'s Fig. 1 for the first ``max_rows`` examples, one row each:
    clean image (prediction, confidence) | perturbation ``delta = x_adv - x`` shown as
    ``0.5 + 0.5 * delta / eps`` with a "+ eps ×" title | adversarial image (prediction,
    confidence). ``eps`` defaults to each row's ``max |delta|``. Titles are green when the
    prediction equals ``y``, red otherwise. ``class_names=None`` labels classes by index.
    """
    if not isinstance(x, Tensor) or not isinstance(x_adv, Tensor) or x.shape != x_adv.shape:
        raise ValueError(
            "`x_adv` must be a tensor shaped like `x`, got "
            f"{getattr(x_adv, 'shape', type(x_adv).__name__)} vs "
            f"{getattr(x, 'shape', type(x).__name__)}"
        )
    if not isinstance(y, Tensor) or y.dim() != 1 or len(y) != len(x):
        got = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
        raise ValueError(f"`y` must be a 1-D tensor with one label per image, got {got}")
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise ValueError(f"`max_rows` must be an int >= 1, got {max_rows!r}")
    if eps is not None and (not isinstance(eps, (int, float)) or not eps >= 0):
        raise ValueError(f"`eps` must be None or a number >= 0, got {eps!r}")
    n = min(max_rows, len(x))
    device = _device_of(model, x.device)
    p_clean = _predict(model, x[:n].to(device)).cpu()
    p_adv = _predict(model, x_adv[:n].to(device)).cpu()
    classes = p_clean.shape[1]
    if class_names is None:
        class_names = [str(c) for c in range(classes)]
    if isinstance(class_names, str) or len(class_names) < classes:
        raise ValueError(f"`class_names` must name all {classes} classes, got {class_names!r}")
    clean, adv = _as_images(x[:n], "x"), _as_images(x_adv[:n], "x_adv")
    lo, hi = (
        min(0.0, float(clean.min()), float(adv.min())),
        max(1.0, float(clean.max()), float(adv.max())),
    )

    def show(t: Tensor):
        return ((t - lo) / (hi - lo)).clamp(0, 1).numpy()

    gray = {"cmap": "gray", "vmin": 0.0, "vmax": 1.0} if clean.dim() == 3 else {}

    fig = Figure(figsize=(7.5, 2.5 * n), dpi=100)
    axes = fig.subplots(n, 3, squeeze=False)
    for i in range(n):
        delta = adv[i] - clean[i]
        scale = float(delta.abs().max()) if eps is None else float(eps)
        unit = (0.5 + 0.5 * delta / scale).clamp(0, 1) if scale > 0 else delta * 0 + 0.5
        truth = int(y[i])
        for ax, probs, image, kind in (
            (axes[i, 0], p_clean[i], clean[i], ""),
            (axes[i, 2], p_adv[i], adv[i], "= "),
        ):
            pred = int(probs.argmax())
            ax.imshow(show(image), **gray)
            ax.set_title(
                f"{kind}“{class_names[pred]}”\n{float(probs[pred]):.1%} confidence",
                color="tab:green" if pred == truth else "tab:red",
                fontsize=9,
            )
        axes[i, 1].imshow(unit.numpy(), **gray)
        axes[i, 1].set_title(f"+ {scale:.3g} ×\nδ / ε", fontsize=9)
        axes[i, 0].set_ylabel(f"true: {class_names[truth]}", fontsize=9)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return str(save_figure(fig, path))
