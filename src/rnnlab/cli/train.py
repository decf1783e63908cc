"""``rnnlab train PRESET [--section.key=value ...]``: train a preset into a run folder.

Any config key can be set with ``--section.key=value`` (``--train.lr=3e-3``,
``--model.hidden_size=64``; a bare ``--key=value`` works where only one section has that
key). ``rnnlab config PRESET [--section.key=value ...]`` prints every key with its value and
what it means. ``--resume RUN`` continues a run from its last checkpoint: its saved config
is used, and overrides given with it change that config. The restored optimizer and
schedule keep their learning rate: a changed ``--train.lr`` is NOT applied on resume, and
one line says so. Before anything is built, the model's size is estimated (on torch's meta
device) and a model that cannot fit is refused; a run folder to resume is checked whole
(config, checkpoint keys, loop state, RNG state) so a tampered one fails in one line.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from .common import UsageError, check_model_size, open_run, resolve_config, run_config

HELP = "train a preset (--section.key=value sets any config key; see `rnnlab config`)"
SHARED = (
    "device", "data_dir", "precision", "cuda_graph", "dry_run", "resume", "no_progress",
    "tensorboard",
)  # fmt: skip
OVERRIDES = True
CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "data", "fit", "rng")


def add_arguments(p) -> None:
    p.add_argument("preset", nargs="?", help="a shipped preset (`rnnlab presets`) or a .toml")
    p.epilog = "config keys: --section.key=value, e.g. --train.lr=3e-3; list: rnnlab config PRESET"


def check_resumable(path: str) -> dict:
    """The checkpoint ``RUN/checkpoints/last.pt`` after checking what resuming will read:
    the keys :func:`rnnlab.training.loop.resume` reads, a loop state of known fields and an
    RNG state that restores (tried, then the current state is put back)."""
    from rnnlab.training.checkpoint import get_rng_state, load_checkpoint, set_rng_state
    from rnnlab.training.loop import FitState

    open_run(path)  # config.json readable, a config, and matching the weights
    ckpt_file = Path(path) / "checkpoints" / "last.pt"
    ckpt = load_checkpoint(ckpt_file)
    where = f"RUN {path}: checkpoint {ckpt_file.name}"
    missing = [k for k in CHECKPOINT_KEYS if k not in ckpt]
    if missing:
        raise UsageError(f"{where} lacks {', '.join(map(repr, missing))}: it cannot be resumed")
    fit = ckpt["fit"]
    known = {f.name for f in dataclasses.fields(FitState)}
    if not isinstance(fit, dict) or set(fit) - known:
        extra = sorted(set(fit) - known) if isinstance(fit, dict) else type(fit).__name__
        raise UsageError(f"{where}: unknown loop state {extra} (expected keys {sorted(known)})")
    for name in ("optimizer", "data"):
        if not isinstance(ckpt[name], dict):
            raise UsageError(f"{where}: `{name}` must be a state dict, got {type(ckpt[name])}")
    _check_log(Path(path) / "metrics.jsonl")
    saved = get_rng_state()
    try:
        set_rng_state(ckpt["rng"])
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError, AttributeError) as e:
        raise UsageError(f"{where}: its RNG state does not restore ({e})") from None
    finally:
        set_rng_state(saved)
    return ckpt


def _check_log(path: Path) -> None:
    """:class:`UsageError` unless every line of ``metrics.jsonl`` is a JSON object (resume
    appends to it and sums its epoch times)."""
    import json

    if not path.exists():
        return
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{path} is unreadable: {e}") from None
    for number, line in enumerate(lines, 1):
        try:
            ok = isinstance(json.loads(line), dict) if line.strip() else True
        except ValueError:
            ok = False
        if not ok:
            raise UsageError(f"{path}: line {number} is not a JSON object: {line[:60]!r}")


def _note_lr(path: str, cfg, ckpt: dict) -> None:
    """One line on stderr when ``--train.lr`` differs from the run's: it is not applied."""
    groups = ckpt["optimizer"].get("param_groups") or [{}]
    saved = groups[0].get("lr") if isinstance(groups[0], dict) else None
    planned = run_config(path)["train"].get("lr")
    if planned is not None and cfg.train.lr != planned:
        now = f"{saved:g}" if isinstance(saved, float) else f"{planned:g}"
        print(
            f"rnnlab: note: --train.lr={cfg.train.lr:g} is not applied on resume: the "
            f"restored optimizer continues at lr {now} (its schedule included)",
            file=sys.stderr,
        )


def run(args) -> int:
    from rnnlab.training import experiment

    cfg = resolve_config(args, args.preset)
    resume = getattr(args, "resume", None)
    if resume is not None:
        _note_lr(resume, cfg, check_resumable(resume))
    check_model_size(cfg)
    result = experiment.train(
        cfg, argv=["rnnlab", *args.argv], dry_run=getattr(args, "dry_run", False),
        resume_from=resume,
        progress=not getattr(args, "no_progress", False) and sys.stderr.isatty(),
    )  # fmt: skip
    if result["run"]:  # a classifier's confusion matrix and per-class precision/recall/F1
        from .outputs import write_classifier_outputs

        write_classifier_outputs(result["run"], data_dir=getattr(args, "data_dir", None))
    print(f"run: {result['run'] or '(dry run, not kept)'}")
    return 0
