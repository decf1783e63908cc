"""What the families on the user's own files share (``seq-classify``, ``forecast``,
``seq-anomaly``): their entry (:func:`file_family`), the config keys every reader takes, the
run's ``data.json`` and the remembered run folder.

``data.json`` holds what a trained model needs besides its weights to read new files: the
scaler (fit on the training split only), the class names in index order, the channel names,
window sizes. The family's ``samples`` hook writes it into the run folder after every epoch
(:class:`DataJSONWriter`); ``predict`` reads it back (:func:`read_data_json`), so new data
is scaled with the training statistics and labels come back as the file's own strings.
The writer also remembers the folder of its model, so a ``finish`` hook (which is not given
the folder) can leave its artefacts beside the checkpoints (:func:`run_folder`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from torch import nn

from rnnlab.data.windows import Scaler
from rnnlab.utils import atomic_write_text

from ..config import Config
from . import Data, Family

__all__ = [
    "DATA_JSON", "FILE_DATASETS", "FILE_KEYS", "DataJSONWriter", "file_family", "fill_rule",
    "read_data_json", "run_folder", "synthetic_series", "training_scaler",
]  # fmt: skip

DATA_JSON = "data.json"
FILE_DATASETS = ("file",)  # data.dataset of a family whose data comes from data.train / data.path
FILE_KEYS = frozenset({"data.time_column", "data.fill", "data.scaler"})
_FOLDERS: dict[int, Callable[[], str | os.PathLike]] = {}  # id(model) -> its run folder


def synthetic_series(rows: int, channels: list[str]):
    """A stand-in :class:`~rnnlab.data.records.Series` for ``--dry-run`` without a data file
    (and for ``rnnlab summary``): noisy daily sines, hourly time stamps; nothing is read."""
    import torch

    from rnnlab.data.records import Series

    g = torch.Generator().manual_seed(0)
    t = torch.arange(rows, dtype=torch.float32)[:, None]
    phase = torch.arange(len(channels), dtype=torch.float32)
    values = torch.sin(2 * torch.pi * t / 24 + phase) + 0.1 * torch.randn(
        rows, len(channels), generator=g
    )
    start = datetime(2000, 1, 1)
    time = [str(start + timedelta(hours=i)) for i in range(rows)]
    return Series(values, list(channels), time, "synthetic stand-in (--dry-run)")


def training_scaler(cfg: Config, fit: Callable[[], Scaler]) -> Scaler:
    """The scaler ``data.scaler`` holds (a finished run's, as ``rnnlab evaluate`` passes it),
    else ``fit()`` (on the training split only)."""
    return Scaler.from_dict(json.loads(cfg.data.scaler)) if cfg.data.scaler else fit()


def fill_rule(cfg: Config) -> str | None:
    """``data.fill`` as the readers take it (None = missing values are an error)."""
    return None if cfg.data.fill == "none" else cfg.data.fill


class DataJSONWriter:
    """The ``samples`` hook of a file family: writes ``data.info`` as ``data.json`` into the
    run folder after each epoch (atomically; the same bytes every time)."""

    def __init__(self, cfg: Config, data: Data, folder: Callable[[], str | os.PathLike]):
        self.text = json.dumps(data.info, indent=1, sort_keys=True)
        self.folder = folder

    def __call__(self, model: nn.Module, epoch: int) -> None:
        _FOLDERS[id(model)] = self.folder
        atomic_write_text(Path(self.folder()) / DATA_JSON, self.text)


def file_family(keys: frozenset[str], **fields) -> Family:
    """The entry of a family on the user's files: ``data.dataset`` is ``file``, the reader
    options :data:`FILE_KEYS` join the family's ``keys``, ``data.json`` is written after every
    epoch (:class:`DataJSONWriter`) and ``train.precision`` applies; the other ``fields`` are
    :class:`Family`'s."""
    return Family(
        datasets=FILE_DATASETS,
        keys=FILE_KEYS | keys,
        supports=frozenset({"precision"}),
        samples=DataJSONWriter,
        **fields,
    )


def run_folder(model: nn.Module) -> Path | None:
    """The run folder a :class:`DataJSONWriter` wrote for ``model`` (None before any epoch or
    without a run folder)."""
    folder = _FOLDERS.get(id(model))
    return Path(folder()) if folder is not None else None


def read_data_json(run: str | os.PathLike) -> dict:
    """A run folder's ``data.json`` (what :class:`DataJSONWriter` wrote)."""
    path = Path(run) / DATA_JSON
    if not path.is_file():
        raise ValueError(f"{run}: expected {DATA_JSON} in the run folder (written after the "
                         "first epoch), got none")  # fmt: skip
    return json.loads(path.read_text())
