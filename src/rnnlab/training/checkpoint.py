"""Checkpoints and run folders: atomic writes, loading that never unpickles code.

A checkpoint holds the whole training state: model, optimizer and scheduler state dicts,
the loop's counters, the RNG states of Python, NumPy, torch and CUDA, and the state of the
generator that orders the data. Every RNG state is stored as a tensor, so
``torch.load(weights_only=True)`` reads it all back and ``--resume`` continues exactly.

Writes are atomic: ``torch.save`` to a temporary file in the same folder, ``fsync``, then
``os.replace`` onto the final name. A crash at any point leaves the previous checkpoint
whole. A run folder is made under a hidden temporary name and renamed to its real name at
the first successful checkpoint; a run that fails before that leaves nothing behind.

Run folder::

    runs/<name>/config.json      resolved config + argv
                metrics.jsonl    one JSON record per epoch
                checkpoints/last.pt, best.pt, model.safetensors
                summary.txt
                samples/*.png     generative families: grids per epoch; `rnnlab attack`'s
                                  adversarial.png
                robustness.json, gradients.json/.png, gates/*.png   written by
                                  `rnnlab attack` / `gradients` / `gates` (rnnlab.cli)

A multi-optimizer family (GAN, VAE-GAN) stores ``{part: optimizer state}`` and
``{part: scheduler state}``: plain dicts of tensors, loadable the same way.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = [
    "CheckpointError", "RunDir", "export_safetensors", "get_rng_state", "load_checkpoint",
    "save_checkpoint", "set_rng_state", "unwrap",
]  # fmt: skip


class CheckpointError(OSError):
    """A checkpoint or run folder that is missing, unreadable or not ours."""


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel / DataParallel wrapper."""
    return model.module if hasattr(model, "module") else model


def get_rng_state() -> dict:
    """Every RNG state as tensors (``weights_only``-loadable)."""
    version, mt, gauss = random.getstate()
    _, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        "python": torch.tensor([version, *mt], dtype=torch.int64),
        "python_gauss": torch.tensor([float("nan") if gauss is None else gauss]),
        "numpy": torch.from_numpy(np_keys.astype(np.int64)),
        "numpy_extra": torch.tensor([np_pos, np_has_gauss, np_gauss], dtype=torch.float64),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Undo :func:`get_rng_state`."""
    version, *mt = state["python"].tolist()
    gauss = float(state["python_gauss"][0])
    random.setstate((version, tuple(mt), None if gauss != gauss else gauss))
    pos, has_gauss, np_gauss = state["numpy_extra"].tolist()
    keys = state["numpy"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, int(pos), int(has_gauss), np_gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish(tmp: str | Path, path: Path, mode: int = 0o666) -> None:
    """Give a mkstemp/mkdtemp file the mode a plain ``open`` would have, then rename it."""
    os.chmod(tmp, mode & ~_umask())
    os.replace(tmp, path)


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """``torch.save(state)`` to ``path`` atomically (temp file + fsync + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint with ``torch.load(weights_only=True)``: tensors and plain
    containers only, never code. Raises :class:`CheckpointError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # any unpickling failure means a bad file
        raise CheckpointError(f"checkpoint {path} is unreadable: {type(e).__name__}: {e}") from e


def export_safetensors(model: nn.Module, path: str | os.PathLike) -> Path:
    """The model's weights (state dict, contiguous copies) as a safetensors file, atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in unwrap(model).state_dict().items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp)
        _publish(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


class RunDir:
    """A run folder. :meth:`create` makes it under a temporary name; the first
    :meth:`save` renames it into place; :meth:`abort` removes a folder never committed."""

    def __init__(self, path: str | os.PathLike, *, final: str | os.PathLike | None = None):
        self.path = Path(path)
        self.final = Path(final) if final is not None else self.path
        self.committed = final is None
        self._tensorboard = None
        self._tensorboard_writer = None

    @classmethod
    def create(cls, out_dir: str | os.PathLike, name: str, config: dict, argv: list[str]):
        out = Path(out_dir)
        final = out / name
        if final.exists():
            raise CheckpointError(
                f"run folder {final} already exists; pick another --run.name or --resume {final}"
            )
        out.mkdir(parents=True, exist_ok=True)
        run = cls(tempfile.mkdtemp(dir=out, prefix=f".{name}.partial-"), final=final)
        run.write_json("config.json", {"config": config, "argv": argv})
        return run

    @classmethod
    def open(cls, path: str | os.PathLike) -> RunDir:
        path = Path(path)
        if not (path / "config.json").is_file():
            raise CheckpointError(f"{path} is not a run folder (no config.json in it)")
        return cls(path)

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def config(self) -> dict:
        return json.loads((self.path / "config.json").read_text())

    def write_json(self, name: str, data) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=f".{name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
        _publish(tmp, self.path / name)

    def write_text(self, name: str, text: str) -> None:
        (self.path / name).write_text(text)

    def log(self, record: dict) -> None:
        """Append ``record`` to metrics.jsonl (always) and, after :meth:`use_tensorboard`,
        write its numbers as TensorBoard scalars under ``tensorboard/``."""
        with open(self.path / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._tensorboard is not None:
            self._tensorboard_log(record)

    def use_tensorboard(self) -> None:
        """Turn TensorBoard logging on (check first with
        :func:`rnnlab.training.logging.require_tensorboard`)."""
        from .logging import MetricsLogger

        self._tensorboard = MetricsLogger  # the class: a logger is made per folder path
        self._tensorboard_writer = None

    def _tensorboard_log(self, record: dict) -> None:
        # The folder is renamed into place at its first checkpoint: reopen at the new path.
        writer = self._tensorboard_writer
        if writer is None or writer.run_dir != self.path:
            if writer is not None:
                writer.close()
            writer = self._tensorboard(self.path, tensorboard=True, jsonl=False)
            self._tensorboard_writer = writer
        writer.log(record)

    def metrics(self) -> list[dict]:
        """The records of metrics.jsonl, in order."""
        path = self.path / "metrics.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def save(self, state: dict, *, best: bool = False) -> Path:
        """Write ``checkpoints/last.pt`` (and ``best.pt``), then commit the folder."""
        last = save_checkpoint(self.checkpoints / "last.pt", state)
        if best:
            save_checkpoint(self.checkpoints / "best.pt", state)
        self.commit()
        return self.checkpoints / last.name

    def commit(self) -> None:
        if not self.committed:
            _publish(self.path, self.final, 0o777)
            self.path, self.committed = self.final, True

    def abort(self) -> None:
        """Remove the folder if it was never committed (nothing half-made stays)."""
        if not self.committed:
            shutil.rmtree(self.path, ignore_errors=True)
