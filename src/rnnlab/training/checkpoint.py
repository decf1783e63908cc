"""Checkpoints and run folders: atomic writes, loading that never unpickles code.

A checkpoint holds the whole training state: model, optimizer and scheduler state dicts,
the loop's counters, the RNG states of Python, NumPy, torch and CUDA, and the state of the
generator that orders the data. Every RNG state is stored as a tensor, so
``torch.load(weights_only=True)`` reads it all back and ``--resume`` continues exactly.

Writes are atomic: ``torch.save`` to a temporary file in the same folder, ``fsync``, then
``os.replace`` onto the final name. A crash at any point leaves the previous checkpoint
whole (:func:`rnnlab.utils.atomic_write`). A run folder is made under a hidden temporary
name (``.NAME.partial-PID-*``, removed by the next run of that name once PID is gone) and
renamed to its real name at the first successful checkpoint; a run that fails before that
leaves nothing behind. Each epoch writes ``best.pt``, then ``last.pt`` (holding the epoch's
record), then appends to ``metrics.jsonl``; :meth:`RunDir.repair` restores that order after a
kill (temp files removed, the log cut back to the checkpoint). ``run.lock`` keeps two
processes from training one folder at once.

Run folder::

    runs/<name>/config.json      resolved config + argv
                metrics.jsonl    one JSON record per epoch
                run.lock         the pid of the process training it (while it does)
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

from rnnlab.utils import atomic_write, atomic_write_text

__all__ = [
    "CheckpointError", "RunDir", "RunLockedError", "export_safetensors", "get_rng_state",
    "load_checkpoint", "save_checkpoint", "set_rng_state", "unwrap",
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


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """``torch.save(state)`` to ``path`` atomically (temp file + fsync + ``os.replace``)."""
    with atomic_write(path) as f:
        torch.save(state, f)
    return Path(path)


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
    """The model's weights (state dict, contiguous copies) as a safetensors file, atomically.
    Each entry is its own copy: safetensors refuses tensors that share memory, as tied
    weights do (a language model's embedding and projection), and loading writes the same
    values into the shared parameter twice."""
    from safetensors.torch import save_file

    state = unwrap(model).state_dict()
    tensors = {k: v.detach().cpu().clone(memory_format=torch.contiguous_format)
               for k, v in state.items()}  # fmt: skip
    with atomic_write(path, None) as tmp:
        save_file(tensors, str(tmp))
    return Path(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


class RunLockedError(CheckpointError):
    """Another live process is training this run folder."""


class RunDir:
    """A run folder. :meth:`create` makes it under a temporary name ``.NAME.partial-PID-*``;
    the first :meth:`save` renames it into place; :meth:`abort` removes a folder never
    committed. :meth:`lock` claims the folder for this process (``run.lock`` holds the pid;
    a lock whose process is gone is taken over) until :meth:`unlock`."""

    LOCK = "run.lock"

    def __init__(self, path: str | os.PathLike, *, final: str | os.PathLike | None = None):
        self.path = Path(path)
        self.final = Path(final) if final is not None else self.path
        self.committed = final is None
        self.locked = False
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
        for stale in out.glob(f".{name}.partial-*"):  # left by a killed run of this name
            pid = stale.name[len(name) + 10 :].split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(stale, ignore_errors=True)
        prefix = f".{name}.partial-{os.getpid()}-"
        run = cls(tempfile.mkdtemp(dir=out, prefix=prefix), final=final)
        run.lock()
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

    # ------------------------------------------------------------------ the lock
    def lock(self) -> None:
        """Claim the folder; :class:`RunLockedError` when a live process holds it."""
        path = self.path / self.LOCK
        for _ in range(3):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                text = path.read_text().strip() if path.is_file() else ""
                if text.isdigit() and int(text) != os.getpid() and _alive(int(text)):
                    raise RunLockedError(
                        f"run folder {self.path} is in use by process {text} (another "
                        f"train or resume of it is running); wait for it or stop it"
                    ) from None
                path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            self.locked = True
            return
        raise RunLockedError(f"could not lock run folder {self.path} ({path} keeps reappearing)")

    def unlock(self) -> None:
        if self.locked:
            (self.path / self.LOCK).unlink(missing_ok=True)
            self.locked = False

    # ------------------------------------------------------------------ writing
    def write_json(self, name: str, data) -> None:
        atomic_write_text(self.path / name, json.dumps(data, indent=2))

    def write_text(self, name: str, text: str) -> None:
        atomic_write_text(self.path / name, text)

    def log(self, record: dict) -> None:
        """Append ``record`` to metrics.jsonl (always) and, after :meth:`use_tensorboard`,
        write its numbers as TensorBoard scalars under ``tensorboard/``."""
        with open(self.path / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())
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

    def save(self, state: dict, *, best: bool = False, record: dict | None = None) -> Path:
        """One epoch on disk, in the order a kill at any point survives: ``best.pt`` (when
        ``best``), ``last.pt``, the folder committed, then ``record`` appended to
        metrics.jsonl. :meth:`repair` puts a folder killed in between back in order."""
        if best:
            save_checkpoint(self.checkpoints / "best.pt", state)
        last = save_checkpoint(self.checkpoints / "last.pt", state)
        self.commit()
        if record is not None:
            self.log(record)
        return self.checkpoints / last.name

    def save_last(self, state: dict) -> None:
        """Rewrite ``last.pt`` alone (e.g. to record what training ended with)."""
        save_checkpoint(self.checkpoints / "last.pt", state)

    def repair(self, checkpoint: dict) -> None:
        """Before resuming from ``checkpoint`` (last.pt's contents): remove temp files of
        killed writes, cut metrics.jsonl back to the checkpoint's epoch (or append its
        record when the kill came before the log), and rewrite a ``best.pt`` that is not
        the checkpoint's best epoch when that epoch is the checkpoint's own."""
        for tmp in (*self.checkpoints.glob(".*.tmp"), *self.path.glob(".*.tmp")):
            tmp.unlink(missing_ok=True)
        fit, record = checkpoint.get("fit", {}), checkpoint.get("record")
        epoch = int(fit.get("epoch", 0))
        lines = []
        path = self.path / "metrics.jsonl"
        if path.is_file():
            for line in path.read_text().splitlines():
                if not line.strip():
                    continue
                r = json.loads(line)
                if "epoch" in r and r["epoch"] > epoch:
                    break
                if "epoch" not in r and lines and json.loads(lines[-1]).get("epoch") == epoch:
                    break  # the test record of a finished run: it is written again at the end
                lines.append(line)
        if record is not None and not any(json.loads(x).get("epoch") == epoch for x in lines):
            lines.append(json.dumps(record))
        atomic_write_text(path, "".join(x + "\n" for x in lines))
        best_path = self.checkpoints / "best.pt"
        if fit.get("best_epoch") == epoch and epoch:
            best = load_checkpoint(best_path) if best_path.is_file() else None
            if best is None or best.get("fit", {}).get("epoch") != epoch:
                save_checkpoint(best_path, checkpoint)

    def commit(self) -> None:
        if not self.committed:
            mask = os.umask(0o022)
            os.umask(mask)
            os.chmod(self.path, 0o777 & ~mask)  # mkdtemp made it 0700
            os.replace(self.path, self.final)
            self.path, self.committed = self.final, True

    def abort(self) -> None:
        """Remove the folder if it was never committed (nothing half-made stays)."""
        if not self.committed:
            shutil.rmtree(self.path, ignore_errors=True)
        self.unlock()
