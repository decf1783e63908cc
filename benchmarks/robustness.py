"""Robustness curves of trained run folders: accuracy vs epsilon under FGSM and PGD.

Madry et al. 2018 (PGD; their MNIST challenge reports, at eps 0.3 L-inf, 89.62% under PGD-100
with 50 restarts for an adversarially trained model) and Goodfellow, Shlens & Szegedy 2014
(FGSM) measure robustness as accuracy on attacked test images. This script does that for any
number of rnnlab classify runs (standard or adversarially trained, CNN or recurrent), with the
library's own pieces: :func:`rnnlab.training.experiment.load_run` (the run's model and config),
:func:`rnnlab.evaluation.robustness.accuracy_vs_epsilon` (the curves),
:func:`~rnnlab.evaluation.robustness.plot_robustness_curves` and
:func:`~rnnlab.evaluation.robustness.panda_figure`. It never trains.

Outputs, in ``--out``:

- ``<name>.json``: ``{"<label> <attack>": [{"eps", "accuracy"}, ...], ...}`` plus a
  ``"_meta"`` entry (examples attacked, attack settings, seconds per curve, the command), merged
  with what is already there so that runs can be added one at a time;
- ``<name>.png``: one line per (run, attack);
- ``<name>.md``: the Markdown table (rows: run and attack; columns: eps);
- with ``--panda``: ``<name>_panda.png``, Goodfellow's Fig. 1 for the first test images of the
  first run, attacked by PGD at the largest eps.

``--final-eps E --final-steps 100 --restarts 5`` adds one strong point per run: PGD with that
many steps and restarts at E (the "PGD-100 + restarts" column of Madry's leaderboard).
``--report-restarts 1,5`` also reports the final point after 1 and 5 of the ``--restarts``
(each restart attacks only the examples that survived the earlier ones).
``--losses ce cw`` runs every PGD curve and the final point twice, ascending the
cross-entropy and Carlini & Wagner's margin loss (:func:`rnnlab.attacks.margin_loss`); with
both, the final point also reports the per-example worst case of the two ("worst of"), the
number a robustness claim should quote. ``--pgd-restarts R`` gives the curves R restarts.
Sweep ε up to 0.5 (``--eps-list 0,0.1,...,0.5``): at ε = 0.5 every MNIST image can be turned
into flat grey, so an honest defence must reach about 0% there; one that does not is
masking gradients (Athalye et al. 2018; Carlini et al. 2019, "On Evaluating Adversarial
Robustness").

Run (from the repository root; run folders come from ``rnnlab train``)::

    python benchmarks/robustness.py RUNS/cnn-mnist=standard RUNS/cnn-mnist-fast-at=fast-AT \\
        --eps-list 0,0.1,0.2,0.3 --methods fgsm pgd --pgd-steps 40 --limit 1000 \\
        --final-eps 0.3 --final-steps 100 --restarts 5 \\
        --out docs/results --name adversarial_mnist --panda

PGD's random starts come from a generator seeded with ``--seed``, so a rerun gives the same
numbers on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import torch

from rnnlab.attacks import margin_loss, pgd
from rnnlab.data import DATASETS
from rnnlab.evaluation.robustness import (
    accuracy_vs_epsilon,
    panda_figure,
    plot_robustness_curves,
    robust_accuracy,
    robust_correct,
)
from rnnlab.training.checkpoint import CheckpointError
from rnnlab.training.experiment import build_data, load_run

LOSSES = {"ce": None, "cw": margin_loss}  # None: the attacks' default cross-entropy


def _suffix(loss: str) -> str:
    return "" if loss == "ce" else f" {loss}"


def _eps_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 0,0.1,0.3; got {text!r}") from None
    if not values or any(not v >= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected numbers >= 0, got {text!r}")
    return sorted(set(values))


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 1,5,10; got {text!r}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected integers >= 1, got {text!r}")
    return values


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", metavar="RUN[=LABEL]", help="run folders (classify)")
    p.add_argument("--eps-list", type=_eps_list, default=[0.0, 0.1, 0.2, 0.3])
    p.add_argument("--methods", nargs="*", choices=("fgsm", "pgd"), default=["fgsm", "pgd"],
                   help="curves to draw (none: only the final point)")  # fmt: skip
    p.add_argument("--pgd-steps", type=int, default=40)
    p.add_argument("--pgd-restarts", type=int, default=1, help="restarts of the PGD curves")
    p.add_argument("--losses", nargs="+", choices=tuple(LOSSES), default=["ce"],
                   help="losses PGD ascends: ce (cross-entropy), cw (CW margin)")  # fmt: skip
    p.add_argument("--final-eps", type=float, default=None, help="one strong PGD point")
    p.add_argument("--final-steps", type=int, default=100)
    p.add_argument("--restarts", type=int, default=1, help="restarts of the final PGD point")
    p.add_argument("--report-restarts", type=_ints, default=[], metavar="R1,R2",
                   help="also report the final point after these restart counts")  # fmt: skip
    p.add_argument("--final-limit", type=int, default=0, help="first N for it (0 = --limit)")
    p.add_argument("--limit", type=int, default=0, help="first N test examples (0 = all)")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="robustness-out")
    p.add_argument("--name", default="robustness")
    p.add_argument("--title", default=None)
    p.add_argument("--panda", action="store_true", help="panda figure of the first run")
    p.add_argument("--table-only", action="store_true", help="redraw from <name>.json")
    return p.parse_args(argv)


def _label(spec: str) -> tuple[Path, str]:
    path, _, label = spec.partition("=")
    return Path(path), label or Path(path).name


def _table(data: dict) -> str:
    curves = {k: v for k, v in data.items() if not k.startswith("_")}
    eps = sorted({float(p["eps"]) for v in curves.values() for p in v})
    lines = ["| model / attack | " + " | ".join(f"ε={e:g}" for e in eps) + " |"]
    lines.append("|---|" + "---|" * len(eps))
    for name, points in curves.items():
        acc = {float(p["eps"]): p["accuracy"] for p in points}
        cells = [f"{100 * acc[e]:.1f}%" if e in acc else "" for e in eps]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _write(out: Path, name: str, data: dict, title: str) -> None:
    tmp = out / f".{name}.json.{os.getpid()}"
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, out / f"{name}.json")
    curves = {k: v for k, v in data.items() if not k.startswith("_") and len(v) > 1}
    if curves:
        plot_robustness_curves(curves, out / f"{name}.png", title=title)
    (out / f"{name}.md").write_text(_table(data))


def _final_points(args, model, label, run, x, y, data, meta, command, out, title) -> None:
    """PGD-``final_steps`` at ``final_eps`` with ``restarts`` restarts per loss, reported
    after each restart count in ``report_restarts`` and, with several losses, for the
    per-example worst case over them.

    Restart r attacks only the examples that survived restarts 1..r-1 (one uniform random
    start each, drawn from one generator per loss): an example counts as robust after R
    restarts iff it survived all R, which is what ``pgd(..., restarts=R)`` keeps, at the
    cost of attacking survivors only."""
    n_final = args.final_limit or len(y)
    xf, yf = x[:n_final], y[:n_final]
    counts = sorted({r for r in args.report_restarts if r <= args.restarts} | {args.restarts})
    alive_at: dict[str, dict[int, torch.Tensor]] = {}
    for loss in args.losses:
        t1 = time.perf_counter()
        gen = torch.Generator().manual_seed(args.seed + 1)
        alive = torch.ones(len(yf), dtype=torch.bool)
        alive_at[loss] = {}
        for r in range(1, args.restarts + 1):
            idx = alive.nonzero().squeeze(1)
            if len(idx):
                survived = robust_correct(
                    model, (xf[idx], yf[idx]), "pgd", batch_size=args.batch_size,
                    eps=args.final_eps, steps=args.final_steps, generator=gen,
                    loss_fn=LOSSES[loss],
                )  # fmt: skip
                alive[idx[~survived]] = False
            if r in counts:
                alive_at[loss][r] = alive.clone()
                key = f"{label} pgd-{args.final_steps}x{r}{_suffix(loss)}"
                data[key] = [{"eps": args.final_eps, "accuracy": float(alive.float().mean())}]
                meta[key] = {"n": len(yf), "seconds": round(time.perf_counter() - t1, 1),
                             "run": str(run), "command": command}  # fmt: skip
                print(f"  {key} at eps {args.final_eps:g}: {data[key][0]['accuracy']:.4f}")
                _write(out, args.name, data, title)
    if len(args.losses) > 1:
        for r in counts:
            worst = torch.stack([alive_at[loss][r] for loss in args.losses]).all(0)
            key = f"{label} worst of pgd-{args.final_steps}x{r} " + "/".join(args.losses)
            data[key] = [{"eps": args.final_eps, "accuracy": float(worst.float().mean())}]
            meta[key] = {"n": len(yf), "run": str(run), "command": command}
            print(f"  {key} at eps {args.final_eps:g}: {data[key][0]['accuracy']:.4f}")
        _write(out, args.name, data, title)


def _load_all(specs: list[str]) -> list[tuple[Path, str, object, torch.nn.Module]]:
    """Every ``RUN[=LABEL]`` loaded before anything is written: ``(run, label, cfg, model)``."""
    loaded = []
    for spec in specs:
        run, label = _label(spec)
        cfg, model = load_run(run)
        loaded.append((run, label, cfg, model))
    return loaded


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        loaded = [] if args.table_only else _load_all(args.runs)
    except (CheckpointError, ValueError, OSError) as e:  # a folder that is not a run
        print(f"robustness.py: error: RUN: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{args.name}.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    title = args.title or args.name
    if args.table_only:
        _write(out, args.name, data, title)
        print(_table(data))
        return 0
    meta = data.setdefault("_meta", {})
    command = "python benchmarks/robustness.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    for i, (run, label, cfg, model) in enumerate(loaded):
        model.eval()
        test = build_data(cfg).test
        x, y = test[0], test[1]
        if args.limit:
            x, y = x[: args.limit], y[: args.limit]
        t0 = time.perf_counter()
        clean = robust_accuracy(model, (x, y), None, batch_size=args.batch_size)
        print(f"{label}: clean {clean:.4f} on {len(y)} test examples of {cfg.data.dataset}")
        for method, loss in [(m, lo) for m in args.methods for lo in args.losses]:
            if method == "fgsm" and loss != args.losses[0]:
                continue  # FGSM's one step is the same sign for both losses on most inputs
            kw, name = {"loss_fn": LOSSES[loss]}, method
            if method == "pgd":
                gen = torch.Generator().manual_seed(args.seed)
                kw |= {"steps": args.pgd_steps, "generator": gen, "restarts": args.pgd_restarts}
                name = f"pgd-{args.pgd_steps}" + (
                    f"x{args.pgd_restarts}" if args.pgd_restarts > 1 else ""
                )
            t1 = time.perf_counter()
            eps = [e for e in args.eps_list if e > 0]
            curve = accuracy_vs_epsilon(model, x, y, eps, method, batch_size=args.batch_size, **kw)
            curve = [{"eps": 0.0, "accuracy": clean}] + curve
            key = f"{label} {name}{_suffix(loss) if method == 'pgd' else ''}"
            data[key] = curve
            meta[key] = {"n": len(y), "seconds": round(time.perf_counter() - t1, 1),
                         "run": str(run), "command": command}  # fmt: skip
            print(f"  {key}: " + "  ".join(f"{p['eps']:g}:{p['accuracy']:.4f}" for p in curve))
            _write(out, args.name, data, title)
        if args.final_eps is not None:
            _final_points(args, model, label, run, x, y, data, meta, command, out, title)
        if args.panda and i == 0:
            top = max(args.eps_list)
            xs, ys = x[:4], y[:4]
            x_adv = pgd(
                model, xs, ys, top, steps=args.pgd_steps,
                generator=torch.Generator().manual_seed(args.seed),
            )  # fmt: skip
            names = DATASETS[cfg.data.dataset].class_names
            fig = panda_figure(model, xs, ys, x_adv, names, out / f"{args.name}_panda.png", eps=top)
            print(f"  wrote {fig}")
        print(f"  {label}: {time.perf_counter() - t0:.0f} s")
    _write(out, args.name, data, title)
    print(_table(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
