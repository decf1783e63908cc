"""Metrics logging for runs: JSON Lines always, TensorBoard event files on request.

:class:`MetricsLogger` appends one JSON object per :meth:`~MetricsLogger.log` call to
``<run_dir>/metrics.jsonl`` and flushes it, so a crash loses nothing that was logged and
``rnnlab report`` (or ``tail -f``) can read a run while it trains. Tensors and NumPy scalars
are stored as Python numbers; non-finite floats are written as Python's ``json`` writes them
(``NaN``, ``Infinity``), which ``json.loads`` reads back.

With ``tensorboard=True`` every numeric value is also written as a TensorBoard scalar through
``torch.utils.tensorboard.SummaryWriter`` (event files in ``<run_dir>/tensorboard/``). That
needs the optional ``tensorboard`` package; without it the logger raises at construction,
before touching the run folder, with the command that installs it. Tags group a metric's
splits in one TensorBoard panel: ``{"split": "val", "loss": ..}`` and ``{"val_loss": ..}``
both become ``loss/val``; keys without a split keep their name (``lr``).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["MetricsLogger", "tensorboard_tag"]

SPLIT_PREFIXES = ("train", "val", "test")
TENSORBOARD_HELP = (
    "MetricsLogger(tensorboard=True) needs the optional `tensorboard` package, which is not "
    "installed: run `pip install tensorboard`, or log without --tensorboard (metrics.jsonl is "
    "always written)."
)


def _plain(value: Any) -> Any:
    """Tensors / NumPy values -> Python numbers or lists; everything else unchanged."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def tensorboard_tag(key: str, split: str | None = None) -> str:
    """``loss`` in split ``val`` -> ``loss/val``; ``val_loss`` -> ``loss/val``; ``lr`` -> ``lr``."""
    if split:
        return f"{key}/{split}"
    prefix, _, rest = key.partition("_")
    return f"{rest}/{prefix}" if prefix in SPLIT_PREFIXES and rest else key


class MetricsLogger:
    """Append-only metrics log of one run folder.

    ``MetricsLogger(run_dir, tensorboard=False)``; :meth:`log` one record (a mapping with
    string keys) per call; :meth:`close` (or use it as a context manager). The run folder is
    created when missing; an existing ``metrics.jsonl`` is appended to (resumed runs).
    """

    def __init__(
        self, run_dir: str | os.PathLike, tensorboard: bool = False, *, jsonl: bool = True
    ) -> None:
        if not isinstance(tensorboard, bool):
            raise TypeError(f"`tensorboard` must be True or False, got {tensorboard!r}")
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "metrics.jsonl"
        writer_class = _summary_writer() if tensorboard else None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # closed in close(); jsonl=False: TensorBoard only (RunDir writes the JSONL itself)
        self._file = open(self.path if jsonl else os.devnull, "a", encoding="utf-8")
        self._writer = None
        if writer_class is not None:
            self._writer = writer_class(log_dir=str(self.run_dir / "tensorboard"))
        self._count = 0

    @property
    def closed(self) -> bool:
        return self._file.closed

    def log(self, record: Mapping[str, Any], step: int | None = None) -> None:
        """Append ``record`` as one JSON line and flush it; with TensorBoard, also write each
        finite numeric value as a scalar at ``step`` (default: the record's ``step``, else its
        ``epoch``, else the number of records logged so far)."""
        if self.closed:
            raise ValueError(f"MetricsLogger for {str(self.run_dir)!r} is closed; cannot log")
        if not isinstance(record, Mapping):
            raise TypeError(f"`record` must be a mapping of metric names to values, got "
                            f"{type(record).__name__}")  # fmt: skip
        plain = {str(k): _plain(v) for k, v in record.items()}
        line = json.dumps(plain, default=str)
        self._file.write(line + "\n")
        self._file.flush()
        self._count += 1
        if self._writer is not None:
            self._write_scalars(plain, step)

    def _write_scalars(self, record: dict[str, Any], step: int | None) -> None:
        if step is None:
            for key in ("step", "epoch"):
                value = record.get(key)
                if isinstance(value, int) and not isinstance(value, bool):
                    step = value
                    break
            else:
                step = self._count
        split = record.get("split") if isinstance(record.get("split"), str) else None
        for key, value in record.items():
            if key in ("step", "epoch", "split") or isinstance(value, bool):
                continue
            if isinstance(value, (int, float)) and math.isfinite(value):
                self._writer.add_scalar(tensorboard_tag(key, split), value, global_step=step)
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the JSONL file (and the TensorBoard writer). Idempotent."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.close()


def _summary_writer() -> type:
    """``torch.utils.tensorboard.SummaryWriter``, or an ImportError saying how to get it."""
    try:
        with warnings.catch_warnings():  # tensorboard's own imports warn on newer Pythons
            warnings.simplefilter("ignore", DeprecationWarning)
            from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise ImportError(TENSORBOARD_HELP) from err
    return SummaryWriter


def require_tensorboard() -> None:
    """Raise the ImportError of :func:`_summary_writer` now, before a run starts."""
    _summary_writer()
