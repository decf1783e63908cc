"""What the verbs share: the parser class, :class:`UsageError`, the shared options (each verb
names the ones it takes in ``SHARED``), argument types, the config a verb's flags resolve to,
and :func:`open_run`, which loads a run folder or says in one line why it cannot."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from rnnlab.utils import atomic_write_text

__all__ = [
    "SHARED", "Parser", "UsageError", "check_device", "eps_list", "merge_json", "non_negative",
    "open_run", "positive", "resolve_config", "seed", "check_model_size", "memory_bytes",
    "run_config",
]  # fmt: skip


class UsageError(ValueError):
    """Bad command-line input: reported in one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: :meth:`error` raises :class:`UsageError`."""

    def error(self, message: str):  # no usage block, no SystemExit
        raise UsageError(f"{message} (see `{self.prog} --help`)")


_S = argparse.SUPPRESS
SHARED: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "device": (("--device",), {"choices": ("auto", "cpu", "cuda"), "default": _S,
               "help": "where to run (same as --train.device=...)"}),
    "data_dir": (("--data-dir",), {"default": _S, "metavar": "DIR",
                 "help": "folder searched first for datasets (stored as an absolute path)"}),
    "precision": (("--precision",), {"choices": ("fp32", "bf16", "fp16"), "default": _S,
                  "help": "autocast precision (same as --train.precision=...)"}),
    "cuda_graph": (("--cuda-graph",), {"action": "store_true", "default": _S,
                   "help": "capture the train step as one CUDA graph"}),
    "dry_run": (("--dry-run",), {"action": "store_true", "default": _S,
                "help": "synthetic data of the right shape, 3 steps per epoch, nothing kept"}),
    "resume": (("--resume",), {"metavar": "RUN", "default": _S,
               "help": "continue run folder RUN from its last checkpoint"}),
    "no_progress": (("--no-progress",), {"action": "store_true", "default": _S,
                    "help": "no progress bar"}),
    "tensorboard": (("--tensorboard",), {"action": "store_true", "default": _S,
                    "help": "also write TensorBoard scalars (same as --run.tensorboard=true)"}),
    "checkpoint": (("--checkpoint",), {"choices": ("last", "best"), "default": _S,
                   "help": "which weights (default: those the run ended with, the best "
                           "under restore_best)"}),
}  # fmt: skip
"""Options several verbs take: name -> ``add_argument`` arguments (absent unless given)."""


def _number(text: str, kind, test, expected: str):
    try:
        value = kind(text)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not test(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive(text: str) -> int:
    """``argparse`` type: an integer >= 1."""
    return _number(text, int, lambda v: v >= 1, "an integer >= 1 (a positive integer)")


def non_negative(text: str) -> float:
    """``argparse`` type: a finite number >= 0."""
    return _number(text, float, lambda v: 0 <= v < float("inf"), "a number >= 0")


def seed(text: str) -> int:
    """``argparse`` type: an integer in [0, 2**63) (what torch's generators accept)."""
    return _number(text, int, lambda v: 0 <= v < 2**63, "an integer in [0, 2**63)")


def eps_list(text: str) -> list[float]:
    """``argparse`` type: comma-separated finite numbers >= 0."""
    return [non_negative(part) for part in text.split(",") if part.strip()] or non_negative("")


def resolve_config(args, preset: str | None = None):
    """The :class:`~rnnlab.training.config.Config` a verb's flags describe: ``--resume RUN``'s
    config or ``preset``'s, with the shared options and ``args.overrides`` applied. A relative
    ``data.data_dir`` is made absolute, so the run folder finds its data from anywhere."""
    from rnnlab.training.config import apply_overrides, config_from_dict, load_preset

    resume = getattr(args, "resume", None)
    if resume is not None:
        cfg = config_from_dict(run_config(resume))
    elif preset:
        cfg = load_preset(preset)
    else:
        raise UsageError(f"{args.verb} needs a PRESET (see `rnnlab presets`) or --resume RUN")
    flags = list(getattr(args, "overrides", []))
    if hasattr(args, "device"):
        flags.append(f"--train.device={args.device}")
    if hasattr(args, "data_dir"):
        flags.append(f"--data.data_dir={args.data_dir}")
    if getattr(args, "tensorboard", False):
        flags.append("--run.tensorboard=true")
    if hasattr(args, "precision"):
        flags.append(f"--train.precision={args.precision}")
    if getattr(args, "cuda_graph", False):
        flags.append("--train.cuda_graph=true")
    cfg = apply_overrides(cfg, flags)
    check_device(cfg.train.device)
    if cfg.data.data_dir and not os.path.isabs(cfg.data.data_dir):
        cfg.data.data_dir = os.path.abspath(cfg.data.data_dir)
    return cfg


def check_device(device: str) -> None:
    """:class:`UsageError` for a CUDA device on a machine without CUDA (before any work)."""
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UsageError(
                f"--device {device}: CUDA is not available here (torch {torch.__version__}); "
                "use --device cpu or auto"
            )


def memory_bytes(device: str = "cpu") -> int:
    """The memory one process can hope for on ``device``: CUDA's total device memory, else
    the machine's physical RAM (a generous bound: refusing means "cannot fit at all")."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.mem_get_info()[1]
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**40


def check_model_size(cfg) -> int:
    """Count ``cfg``'s model parameters on torch's ``meta`` device (shapes, no memory) and
    raise :class:`UsageError` when training it could not fit: weights, gradients and two
    Adam moments at 4 bytes each beyond :func:`memory_bytes`. Returns the count."""
    import torch

    from rnnlab.training import experiment

    data = experiment.build_data(cfg, dry_run=True)  # synthetic, only for shapes
    try:
        with torch.device("meta"):
            model = experiment.build_model(cfg, data.spec)
    except (RuntimeError, NotImplementedError, TypeError):  # a layer meta cannot build
        return -1
    n = sum(p.numel() for p in model.parameters())
    need, have = 16 * n, memory_bytes(cfg.train.device)
    if need > have:
        raise UsageError(
            f"the model of this config has {n:,} parameters: training it needs about "
            f"{need / 2**30:,.0f} GiB (weights, gradients, optimizer state), more than the "
            f"{have / 2**30:,.0f} GiB here; reduce model.hidden_size / model.latent_dim"
        )
    return n


def run_config(path: str | os.PathLike) -> dict:
    """``RUN/config.json``'s ``config`` table, or a :class:`UsageError` saying what is wrong."""
    from rnnlab.training.checkpoint import RunDir

    run = RunDir.open(path)
    try:
        data = run.config()
    except (OSError, ValueError) as e:
        raise UsageError(f"RUN {path}: config.json is unreadable: {e}") from None
    table = data.get("config") if isinstance(data, dict) else None
    if not isinstance(table, dict):
        got = type(data).__name__ if not isinstance(data, dict) else "no `config` table"
        raise UsageError(f"RUN {path}: config.json must hold a `config` table, got {got}")
    for section in ("data", "model", "train"):
        if not isinstance(table.get(section), dict):
            raise UsageError(f"RUN {path}: config.json's `config` lacks its `{section}` table")
    return table


def open_run(
    path: str | os.PathLike, checkpoint: str | None = None, *, data_dir: str | None = None
):
    """``(config, model)`` of run folder ``path`` (its ``checkpoint``: "last", "best", or by
    default the weights the run ended with; see ``experiment.load_run``), with
    one-line errors for a tampered folder: a ``config.json`` that is not a config or
    disagrees with the checkpoint, a checkpoint without ``model``."""
    import torch

    from rnnlab.training import experiment
    from rnnlab.training.checkpoint import load_checkpoint
    from rnnlab.training.config import config_from_dict

    config_from_dict(run_config(path))  # a config.json that is no config: one line here
    ckpt_file = Path(path) / "checkpoints" / f"{checkpoint or 'last'}.pt"
    ckpt = load_checkpoint(ckpt_file)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        what = "no `model` weights" if isinstance(ckpt, dict) else f"a {type(ckpt).__name__}"
        raise UsageError(f"RUN {path}: checkpoint {ckpt_file.name} holds {what}")
    del ckpt
    try:
        with torch.random.fork_rng(devices=[]):  # building the model draws initial weights
            cfg, model = experiment.load_run(path, checkpoint)
    except (RuntimeError, KeyError, TypeError) as e:  # load_state_dict: names or shapes
        first = " ".join(str(e).split())[:300]
        raise UsageError(
            f"RUN {path}: config.json does not match checkpoint {ckpt_file.name} ({first})"
        ) from None
    if data_dir is not None:
        cfg.data.data_dir = os.path.abspath(data_dir)
    return cfg, model


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
