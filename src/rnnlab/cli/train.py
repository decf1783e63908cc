"""``rnnlab train PRESET [--section.key=value ...]``: train a preset into a run folder.

Any config key can be set with ``--section.key=value`` (``--train.lr=3e-3``,
``--model.hidden_size=64``; a bare ``--key=value`` works where only one section has that
key). ``rnnlab config PRESET [--section.key=value ...]`` prints every key with its value and
what it means. ``--resume RUN`` continues a run from its last checkpoint: its saved config
is used, and overrides given with it change that config. The restored optimizer and
schedule keep their learning rate: a changed ``--train.lr`` is NOT applied on resume, and
one line says so.
"""

from __future__ import annotations

import sys

from .common import resolve_config

HELP = "train a preset (--section.key=value sets any config key; see `rnnlab config`)"
SHARED = (
    "device", "data_dir", "precision", "cuda_graph", "dry_run", "resume", "no_progress",
    "tensorboard",
)  # fmt: skip
OVERRIDES = True


def add_arguments(p) -> None:
    p.add_argument("preset", nargs="?", help="a shipped preset (`rnnlab presets`) or a .toml")
    p.epilog = "config keys: --section.key=value, e.g. --train.lr=3e-3; list: rnnlab config PRESET"


def run(args) -> int:
    from rnnlab.training import experiment

    cfg = resolve_config(args, args.preset)
    result = experiment.train(
        cfg, argv=["rnnlab", *args.argv], dry_run=getattr(args, "dry_run", False),
        resume_from=getattr(args, "resume", None),
        progress=not getattr(args, "no_progress", False) and sys.stderr.isatty(),
    )  # fmt: skip
    print(f"run: {result['run'] or '(dry run, not kept)'}")
    return 0
