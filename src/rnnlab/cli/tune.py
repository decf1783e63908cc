"""``rnnlab tune PRESET --space SPACE.toml --trials N [...] [--section.key=value ...]``: an
Optuna study over a preset (:mod:`rnnlab.tune.study` explains trials, storage, workers,
resume and the files written). The space is checked against the preset before the study
starts."""

from __future__ import annotations

import sys

HELP = "Optuna study over a preset"
SHARED = ("device", "data_dir")
OVERRIDES = True
METRICS = ("val_loss", "val_accuracy")


def add_arguments(p) -> None:
    p.add_argument("preset", help="preset name or path to a preset .toml")
    p.add_argument("--space", required=True, help="SPACE.toml (or a shipped space's name)")
    p.add_argument("--trials", type=int, required=True, help="finished trials to reach")
    p.add_argument("--study-dir", help="default: <run.out_dir>/tune-<preset>")
    p.add_argument("--study-name", help="default: the study folder's name")
    p.add_argument("--storage", help="database URL; default sqlite:///<study-dir>/study.db")
    p.add_argument("--resume", action="store_true", help="continue an existing study")
    p.add_argument("--workers", type=int, default=1, help="processes on this machine")
    p.add_argument("--sampler", choices=("tpe", "random"), default="tpe")
    p.add_argument("--seed", type=int, default=0, help="sampler seed")
    p.add_argument("--metric", choices=METRICS, default="val_loss")
    p.add_argument("--direction", choices=("minimize", "maximize"))
    p.add_argument("--pruner", choices=("median", "none"), default="median")
    p.add_argument("--timeout", type=float, help="seconds; no new trial starts after it")


def run(args) -> int:
    import os
    from pathlib import Path

    from .common import UsageError, check_device

    try:
        from rnnlab.tune import study
    except ImportError as e:
        raise UsageError(f"`rnnlab tune` is not available ({e})") from None
    args.device = getattr(args, "device", None)
    if args.device:
        check_device(args.device)
    args.data_dir = getattr(args, "data_dir", None)
    if args.data_dir:  # every trial's run folder finds its data from anywhere
        args.data_dir = os.path.abspath(args.data_dir)
    job, _ = study.make_job(args, args.overrides)
    if args.resume and job.storage != study._default_storage(Path(job.study_dir)):
        study._open_study(job, 0, create=False)  # must exist in the database
    try:
        summary = study.tune(job, trials=args.trials, workers=args.workers, resume=args.resume)
    except KeyboardInterrupt:
        print("rnnlab: finished trials are kept; continue with --resume", file=sys.stderr)
        raise
    if summary["best_trial"] is None:
        print("best: none (no trial completed)")
    else:
        print(f"best: trial {summary['best_trial']}  {job.metric} {summary['best_value']}")
    for name, path in summary["files"].items():
        print(f"{name}: {path}")
    return 0
