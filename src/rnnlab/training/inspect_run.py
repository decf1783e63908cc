"""The run-inspecting verbs of the CLI: ``attack``, ``gradients`` and ``gates``. Each loads a
trained run folder (never trains) and writes what it measured back into that folder, where
``rnnlab report`` finds it: ``robustness.json`` + ``samples/adversarial.png`` (Goodfellow et
al. 2014's panda figure), ``gradients.json`` + ``gradients.png`` (Pascanu et al. 2013's
``||dL/dh_t||``), ``gates/*.png`` (Karpathy et al. 2015's gate heatmaps).

The evaluation modules are imported inside the functions: the training code never needs
them, and they stay optional for it.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.utils import atomic_write_text

from .checkpoint import RunDir
from .config import Config, ConfigError
from .experiment import build_data, load_run

__all__ = ["attack_run", "gates_run", "gradients_run", "merge_json"]


def merge_json(path: Path, update: dict) -> dict:
    """``path``'s JSON object updated with ``update`` (a missing or unreadable file counts as
    ``{}``), written atomically; returns the merged object."""
    data = {}
    if path.is_file():
        try:
            loaded = json.loads(path.read_text())
            data = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            data = {}
    data.update(update)
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
    return data


def _test_split(cfg: Config, limit: int, dry_run: bool) -> tuple[Tensor, Tensor]:
    data = build_data(cfg, dry_run=dry_run)
    x, y = data.test[0], data.test[1]
    return (x[:limit], y[:limit]) if limit else (x, y)


def _classifier(path, what: str) -> tuple[Config, nn.Module]:
    cfg, model = load_run(path)
    if cfg.model.family != "classify":
        raise ConfigError(f"{what} needs a classify run; RUN {path} is a {cfg.model.family} run")
    return cfg, model


def attack_run(
    path: str | os.PathLike,
    *,
    method: str = "pgd",
    eps: float = 0.3,
    eps_list: list[float] | None = None,
    steps: int = 40,
    restarts: int = 1,
    alpha: float | None = None,
    limit: int = 0,
    batch_size: int = 256,
    device: str = "cpu",
    dry_run: bool = False,
    log=print,
) -> dict:
    """Attack the run's test split (first ``limit`` examples) at ``eps`` (or each of
    ``eps_list``); log clean and robust accuracy; merge the curve into ``robustness.json``
    under ``"<run> <method>"`` and draw the panda figure at the largest eps."""
    from rnnlab import attacks
    from rnnlab.data import DATASETS
    from rnnlab.evaluation.robustness import accuracy_vs_epsilon, panda_figure, robust_accuracy

    run = RunDir.open(path)
    cfg, model = _classifier(path, "attack")
    model = model.to(device)
    x, y = _test_split(cfg, limit, dry_run)
    epsilons = list(eps_list) if eps_list else [eps]
    kw: dict = {}
    if method in ("bim", "pgd"):
        kw = {"steps": steps, **({"alpha": alpha} if alpha is not None else {})}
    if method == "pgd":
        kw["restarts"] = restarts
    clean = robust_accuracy(model, (x, y), None, batch_size=batch_size)
    log(f"clean accuracy {clean:.4f} on {len(y)} test examples")
    attacked = [e for e in epsilons if e > 0]  # eps 0 is the clean accuracy: no attack to run
    curve = [{"eps": 0.0, "accuracy": clean}] if len(attacked) < len(epsilons) else []
    if attacked:
        curve += accuracy_vs_epsilon(model, x, y, attacked, method, batch_size=batch_size, **kw)
    for point in curve:
        log(f"{method} eps {point['eps']:g}: robust accuracy {point['accuracy']:.4f}")
    label = method if method == "fgsm" else f"{method}-{steps}"
    label += f"x{restarts}" if method == "pgd" and restarts > 1 else ""
    name = f"{run.path.name} {label}"
    old = merge_json(run.path / "robustness.json", {}).get(name, [])
    points = {float(p["eps"]): p for p in old if isinstance(p, dict) and "eps" in p}
    points |= {p["eps"]: p for p in curve}
    points.setdefault(0.0, {"eps": 0.0, "accuracy": clean})
    merge_json(run.path / "robustness.json", {name: [points[e] for e in sorted(points)]})
    top = max(epsilons)
    xs, ys = x[:4].to(device), y[:4].to(device)
    attack = {"fgsm": attacks.fgsm, "bim": attacks.bim, "pgd": attacks.pgd}[method]
    x_adv = attack(model, xs, ys, top, **kw)
    names = DATASETS[cfg.data.dataset].class_names
    figure = panda_figure(
        model, xs, ys, x_adv, names, run.path / "samples" / "adversarial.png", eps=top
    )
    log(f"wrote {run.path / 'robustness.json'} and {figure}")
    return {"clean": clean, "curve": curve, "name": name, "figure": figure}


def _recurrent_model(cfg: Config, model: nn.Module, what: str):
    from rnnlab.layers.recurrent import RNN

    if not any(isinstance(m, RNN) for m in model.modules()):
        raise ConfigError(
            f"{what} needs a recurrent model; model.kind {cfg.model.kind!r} has no RNN layer"
        )


def gradients_run(
    cfg: Config,
    model: nn.Module,
    name: str,
    *,
    out: str | os.PathLike | None,
    batch: int = 64,
    layer: int = 0,
    dry_run: bool = False,
    log=print,
) -> Tensor:
    """``||dL/dh_t||`` of recurrent layer ``layer`` on ``batch`` test examples: print the
    table; with ``out`` merge the curve into ``out/gradients.json`` and redraw every curve
    there into ``out/gradients.png``."""
    from rnnlab.evaluation.gradients import (
        format_gradient_table,
        gradient_norms_through_time,
        plot_gradient_norms,
    )

    _recurrent_model(cfg, model, "gradients")
    x, y = _test_split(cfg, batch, dry_run)
    model.eval()
    if cfg.model.family == "classify":
        loss_fn = F.cross_entropy
    else:
        loss_fn = F.mse_loss
    curve = gradient_norms_through_time(model, x, y, loss_fn, layer=layer)
    log(format_gradient_table({name: curve}))
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        data = merge_json(out / "gradients.json", {name: curve.tolist()})
        curves = {
            k: torch.tensor([math.nan if v is None else v for v in vals], dtype=torch.float64)
            for k, vals in data.items()
            if isinstance(vals, list) and vals
        }
        png = plot_gradient_norms(curves, out / "gradients.png", title=f"{name}: layer {layer}")
        log(f"wrote {out / 'gradients.json'} and {png}")
    return curve


def gates_run(
    path: str | os.PathLike,
    *,
    index: int = 0,
    layer: int = 0,
    dry_run: bool = False,
    log=print,
) -> str:
    """Record the gates of recurrent layer ``layer`` while the run's model reads test example
    ``index``; draw them into ``RUN/gates/example-<index>-layer<layer>.png``."""
    from rnnlab.evaluation.gates import plot_gates, record_gates
    from rnnlab.evaluation.gradients import find_recurrent

    run = RunDir.open(path)
    cfg, model = _classifier(path, "gates")
    _recurrent_model(cfg, model, "gates")
    x, y = _test_split(cfg, 0, dry_run)
    if not -len(x) <= index < len(x):
        raise ConfigError(f"`--index` must be in [0, {len(x)}) for this test split, got {index}")
    xi = x[index : index + 1]
    try:
        rnn = find_recurrent(model, layer)
    except ValueError as e:
        raise ConfigError(f"`--layer`: {e}") from None
    seen: list[Tensor] = []
    handle = rnn.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    try:
        with torch.no_grad():
            prediction = int(model(xi).argmax(-1))
    finally:
        handle.remove()
    trace = record_gates(rnn, seen[0])
    image = xi[0] if xi[0].dim() == 2 and cfg.data.view == "rows" else None
    target = run.path / "gates" / f"example-{index}-layer{layer}.png"
    title = f"test example {index}: label {int(y[index])}, predicted {prediction}"
    png = plot_gates(trace, 0, target, image, title=title)
    log(f"{title}\nwrote {png}")
    return png
