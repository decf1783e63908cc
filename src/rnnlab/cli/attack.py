"""``rnnlab attack RUN``: FGSM / BIM / PGD on a classifier run's test split. Prints clean and
robust accuracy, merges the curve into ``RUN/robustness.json`` under ``"<run> <method>"``
(where ``rnnlab report`` finds it), draws every curve there into ``RUN/robustness.png``
(accuracy against eps) and Goodfellow et al. (2014)'s panda figure at the largest eps into
``RUN/samples/adversarial.png``. Never trains."""

from __future__ import annotations

import os

from .common import check_device, eps_list, merge_json, non_negative, positive
from .inspect import classifier, test_split

HELP = "attack a run's test split"
SHARED = ("device", "data_dir", "dry_run")
OVERRIDES = False


def add_arguments(p) -> None:
    p.add_argument("run", help="a classify run folder")
    p.add_argument("--method", choices=("fgsm", "bim", "pgd"), default="pgd")
    p.add_argument("--eps", type=non_negative, default=0.3, help="L-inf radius")
    p.add_argument("--eps-list", type=eps_list, default=None, metavar="E,E,...")
    p.add_argument("--steps", type=positive, default=40, help="BIM/PGD steps")
    p.add_argument("--restarts", type=positive, default=1, help="PGD random restarts")
    p.add_argument("--alpha", type=non_negative, default=None, help="BIM/PGD step size")
    p.add_argument("--limit", type=positive, default=None, help="first N test examples")
    p.add_argument("--batch-size", type=positive, default=256)


def run(args) -> int:
    device = getattr(args, "device", "cpu")
    check_device(device)
    attack_run(
        args.run, method=args.method, eps=args.eps, eps_list=args.eps_list, steps=args.steps,
        restarts=args.restarts, alpha=args.alpha, limit=args.limit or 0,
        batch_size=args.batch_size, device="cpu" if device == "auto" else device,
        dry_run=getattr(args, "dry_run", False), data_dir=getattr(args, "data_dir", None),
    )  # fmt: skip
    return 0


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
    data_dir: str | None = None,
    log=print,
) -> dict:
    """Attack the run's test split (first ``limit`` examples) at ``eps`` (or each of
    ``eps_list``); log clean and robust accuracy; merge the curve into ``robustness.json``
    and draw the panda figure at the largest eps (see the module docs)."""
    from rnnlab import attacks
    from rnnlab.data import DATASETS
    from rnnlab.evaluation.plots import plot_robustness
    from rnnlab.evaluation.robustness import accuracy_vs_epsilon, panda_figure, robust_accuracy
    from rnnlab.training.checkpoint import RunDir
    from rnnlab.utils import pick_device

    run = RunDir.open(path)
    cfg, model = classifier(path, "attack", data_dir=data_dir)
    model = model.to(pick_device(device))
    x, y = test_split(cfg, limit, dry_run)
    epsilons = list(eps_list) if eps_list else [eps]
    kw: dict = {}
    if method in ("bim", "pgd"):
        kw = {"steps": steps, **({"alpha": alpha} if alpha is not None else {})}
    if method == "pgd":
        kw["restarts"] = restarts
    clean = robust_accuracy(model, (x, y), None, batch_size=batch_size, progress=True)
    log(f"clean accuracy {clean:.4f} on {len(y)} test examples")
    attacked = [e for e in epsilons if e > 0]  # eps 0 is the clean accuracy: no attack to run
    curve = [{"eps": 0.0, "accuracy": clean}] if len(attacked) < len(epsilons) else []
    if attacked:
        curve += accuracy_vs_epsilon(model, x, y, attacked, method, batch_size=batch_size,
                                     progress=True, **kw)  # fmt: skip
    for point in curve:
        log(f"{method} eps {point['eps']:g}: robust accuracy {point['accuracy']:.4f}")
    label = method if method == "fgsm" else f"{method}-{steps}"
    label += f"x{restarts}" if method == "pgd" and restarts > 1 else ""
    name = f"{run.path.name} {label}"
    old = merge_json(run.path / "robustness.json", {}).get(name, [])
    points = {float(p["eps"]): p for p in old if isinstance(p, dict) and "eps" in p}
    points |= {p["eps"]: p for p in curve}
    points.setdefault(0.0, {"eps": 0.0, "accuracy": clean})
    merged = merge_json(run.path / "robustness.json", {name: [points[e] for e in sorted(points)]})
    curves = {
        k: [(float(p["eps"]), float(p["accuracy"])) for p in v
            if isinstance(p, dict) and {"eps", "accuracy"} <= p.keys()]
        for k, v in merged.items() if isinstance(v, list)
    }  # fmt: skip
    plot = plot_robustness({run.path.name: curves}, run.path / "robustness.png")
    top = max(epsilons)
    dev = next(model.parameters()).device
    xs, ys = x[:4].to(dev), y[:4].to(dev)
    attack = {"fgsm": attacks.fgsm, "bim": attacks.bim, "pgd": attacks.pgd}[method]
    x_adv = attack(model, xs, ys, top, **kw)
    names = DATASETS[cfg.data.dataset].class_names
    figure = panda_figure(
        model, xs, ys, x_adv, names, run.path / "samples" / "adversarial.png", eps=top
    )
    log(f"wrote {run.path / 'robustness.json'}, {plot} and {figure}")
    return {"clean": clean, "curve": curve, "name": name, "figure": figure, "plot": str(plot)}
