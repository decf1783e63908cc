"""``rnnlab predict RUN FILE`` for the families on the user's own files: the run's model (its
final weights, ``model.safetensors``, sized from ``data.json``: no training file is read) on a
new file of the same format, scaled with the training statistics.

- seq-classify: one row per sequence: ``sequence``, ``label`` (the predicted class, as the
  training file wrote it) and ``p_<class>`` for every class (softmax probabilities);
- forecast: one row per forecast origin (every step with ``input_len`` steps before it, the
  last one forecasting past the file's end) and target: ``time`` of the last input step,
  ``target``, ``h1`` ... ``hH`` in the data's units;
- seq-anomaly: one row per time step: ``time``, the scored value(s), ``score``, ``alarm``
  (score > threshold) and the ``threshold`` the run chose on its probationary part.

A file whose channels differ from the training data's (count, or a named column missing) is
a one-line error.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from rnnlab.data.files import read_sequences, read_series
from rnnlab.data.records import DataFileError
from rnnlab.data.windows import Scaler

from ..checkpoint import RunDir
from ..config import Config, config_from_dict
from . import DataSpec, get
from ._files import fill_rule, read_data_json

__all__ = [
    "FILE_FAMILIES",
    "family_of",
    "load_file_run",
    "predict_file",
    "write_csv",
    "write_predictions",
]

FILE_FAMILIES = ("seq-classify", "forecast", "seq-anomaly")


def load_file_run(run: str | os.PathLike) -> tuple[Config, nn.Module, dict]:
    """``(cfg, model in eval mode, data.json)`` of a run of one of :data:`FILE_FAMILIES`."""
    from safetensors.torch import load_file

    folder = RunDir.open(run)
    cfg = config_from_dict(folder.config()["config"])
    info = read_data_json(run)
    weights = Path(run) / "checkpoints" / "model.safetensors"
    if not weights.is_file():
        raise ValueError(f"{run}: expected checkpoints/model.safetensors (written when a run "
                         "finishes), got none")  # fmt: skip
    steps = {
        "forecast": info.get("input_len", 1),
        "seq-anomaly": info.get("window", 1),
        "seq-classify": info.get("steps", 1),
    }  # the MLP is sized from it
    example = torch.zeros(steps.get(cfg.model.family, 1), len(info["channels"]))
    spec = DataSpec(example, len(info.get("classes", [])), info)
    model = get(cfg.model.family).build_model(cfg, spec)
    model.load_state_dict(load_file(str(weights)))
    return cfg, model.eval(), info


def _csv_has_column(path: Path, name: str) -> bool:
    if path.suffix.lower() not in (".csv", ".tsv", ".txt") or not name:
        return False
    with open(path, encoding="utf-8-sig") as f:
        first = f.readline()
    return name in [
        c.strip() for c in first.rstrip("\n").split("\t" if path.suffix == ".tsv" else ",")
    ]


def _classify(cfg: Config, model: nn.Module, info: dict, path: Path):
    d = cfg.data
    label = d.target if _csv_has_column(path, d.target) else None
    seqs = read_sequences(path, label=label, id_column=d.id_column or None,
                          time_column=d.time_column or None, fill=fill_rule(cfg))  # fmt: skip
    channels = len(info["channels"])
    if seqs.x.shape[-1] != channels:
        raise DataFileError(f"{path}: expected {channels} channels (as the training data), got "
                            f"{seqs.x.shape[-1]}")  # fmt: skip
    from .seq_classify import check_steps, scale_padded

    check_steps(cfg, info["steps"], seqs)

    x = scale_padded(seqs.x, seqs.lengths, Scaler.from_dict(info["scaler"]))
    with torch.no_grad():
        probs = torch.softmax(model(x, seqs.lengths), dim=-1)
    classes = info["classes"]
    header = ["sequence", "label", *(f"p_{c}" for c in classes)]
    rows = [[str(i), classes[int(p.argmax())], *(f"{float(v):.6g}" for v in p)]
            for i, p in enumerate(probs)]  # fmt: skip
    return header, rows


def _series_columns(cfg: Config, info: dict, path: Path):
    series = read_series(path, time_column=cfg.data.time_column or None, fill=fill_rule(cfg))
    missing = [c for c in info["channels"] if c not in series.channels]
    if missing:
        raise DataFileError(f"{path}: expected the training columns {', '.join(info['channels'])}"
                            f", got {', '.join(series.channels)}")  # fmt: skip
    values = series.values[:, [series.channels.index(c) for c in info["channels"]]]
    time = series.time or [str(i) for i in range(len(values))]
    return values, time


def _forecast(cfg: Config, model: nn.Module, info: dict, path: Path):
    values, time = _series_columns(cfg, info, path)
    L, H = info["input_len"], info["horizon"]
    if len(values) < L:
        raise DataFileError(f"{path}: expected at least data.input_len={L} rows to forecast "
                            f"from, got {len(values)}")  # fmt: skip
    scaler = Scaler.from_dict(info["scaler"])
    scaled = scaler.transform(values)
    windows = scaled.unfold(0, L, 1).transpose(1, 2)  # origin i: rows [i, i + L)
    with torch.no_grad():
        pred = torch.cat([model(w) for w in windows.split(1024)])  # (N, H, k)
    pred = scaler.inverse(pred, channels=info["target_in_input"])
    header = ["time", "target", *(f"h{h}" for h in range(1, H + 1))]
    rows = []
    for i in range(len(pred)):
        for j, name in enumerate(info["targets"]):
            rows.append([time[i + L - 1], name, *(f"{float(v):.6g}" for v in pred[i, :, j])])
    return header, rows


def _anomaly(cfg: Config, model: nn.Module, info: dict, path: Path):
    values, time = _series_columns(cfg, info, path)
    if len(values) <= info["window"]:
        raise DataFileError(f"{path}: expected more than data.window={info['window']} rows, "
                            f"got {len(values)}")  # fmt: skip
    if "threshold" not in info:
        raise ValueError("the run's data.json holds no threshold (the run did not finish)")
    scaled = Scaler.from_dict(info["scaler"]).transform(values)
    scores = model.scores(scaled)
    threshold = float(info["threshold"])
    header = ["time", *info["channels"], "score", "alarm", "threshold"]
    rows = [[time[i], *(f"{float(v):.6g}" for v in values[i]), f"{float(scores[i]):.6g}",
             str(int(bool(scores[i] > threshold))), f"{threshold:.6g}"]
            for i in range(len(values))]  # fmt: skip
    return header, rows


def predict_file(run: str | os.PathLike, path: str | os.PathLike) -> tuple[list[str], list]:
    """``(header, rows)`` of the predictions of run ``run`` on file ``path`` (module doc)."""
    cfg, model, info = load_file_run(run)
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: expected a data file, got no such file")
    family = cfg.model.family
    if family == "seq-classify":
        return _classify(cfg, model, info, path)
    if family == "forecast":
        return _forecast(cfg, model, info, path)
    return _anomaly(cfg, model, info, path)


def family_of(run: str | os.PathLike) -> str | None:
    """The ``model.family`` a run folder was trained with, or None when its ``config.json``
    cannot say (the caller's own checks then report what is wrong with the folder)."""
    try:
        return str(RunDir.open(run).config()["config"]["model"]["family"])
    except (KeyError, TypeError, ValueError, OSError):
        return None


def write_predictions(run: str | os.PathLike, path: str | os.PathLike, out=None) -> int:
    """:func:`predict_file` as CSV into ``out`` (atomically; nothing on an error) or to
    stdout; returns the number of rows."""
    header, rows = predict_file(run, path)
    write_csv(header, rows, out)
    return len(rows)


def write_csv(header: list[str], rows: list, out=None) -> None:
    """``header`` and ``rows`` as CSV into file ``out`` (atomically) or to stdout."""
    import csv
    import io
    import sys

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, *rows])
    if out is None:
        sys.stdout.write(buf.getvalue())
    else:
        from rnnlab.utils import atomic_write_text

        atomic_write_text(out, buf.getvalue())
