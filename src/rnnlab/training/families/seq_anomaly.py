"""seq-anomaly: anomaly detection on one series in a CSV (NAB-style: a timestamp column and a
value), scored per time step and judged against labelled windows
(:mod:`rnnlab.data.anomaly_windows`).

Only the first ``data.probation`` of the series (NAB's probationary 15%) is used to learn:
the scaler is fit there, the detector trains on windows inside it (``data.val_fraction`` of
them held out for validation) and the alarm threshold comes from its scores there
(median + ``model.threshold_k`` x 1.4826 MAD). The test split is the rest of the series, in
windows, for the loss. After training every step is scored; the metrics are point AUROC,
windows detected and false alarms per day against ``data.labels`` (NAB's
``combined_windows.json``, by default the one beside ``data.path``; entries are matched by the
file name), and ``anomaly_scores.csv`` (time, value(s), score, label, threshold) goes into the
run folder for ``rnnlab report``'s plot.

Kinds: ``lstm-ae`` (:class:`~rnnlab.models.forecasters.WindowAutoencoderDetector`, windows of
``data.window`` steps, ``model.hidden_size`` / ``model.latent_dim``) and ``forecast-error``
(:class:`~rnnlab.models.forecasters.ForecastErrorDetector`, one step ahead from
``data.window`` steps).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from rnnlab.data.anomaly_windows import (
    detection_metrics,
    probationary_threshold,
    window_labels,
)
from rnnlab.data.files import read_series
from rnnlab.data.records import DataFileError, Series
from rnnlab.data.windows import Scaler, forecast_windows
from rnnlab.models.forecasters import (
    ForecastErrorDetector,
    WindowAutoencoderDetector,
    sliding_windows,
)
from rnnlab.utils import atomic_write_text

from ..config import Config
from ..update import Update
from . import Data, DataSpec, StepContext, keyset
from ._common import DataError, tensor_data
from ._files import (
    DATA_JSON,
    file_family,
    fill_rule,
    read_data_json,
    run_folder,
    synthetic_series,
    training_scaler,
)
from .forecast import forecast_eval, forecast_step

__all__ = [
    "FAMILY",
    "SCORES_CSV",
    "labelled_windows",
    "read_scored_series",
    "score_series",
]

KINDS = ("lstm-ae", "forecast-error")
SCORES_CSV = "anomaly_scores.csv"
DRY_RUN = 64


def labelled_windows(cfg: Config) -> list[list[str]] | None:
    """The labelled windows of ``data.path`` from ``data.labels`` (None when there is none)."""
    d = cfg.data
    path = Path(d.labels) if d.labels else Path(d.path).parent / "combined_windows.json"
    if not path.is_file():
        if d.labels:
            raise DataFileError(
                f"{path}: expected a JSON file of labelled windows, got no such file"
            )
        return None
    try:
        table = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataFileError(f"{path}: expected JSON, got invalid text ({e})") from None
    name = Path(d.path).name
    keys = [k for k in table if k == name or k.endswith("/" + name)]
    if not keys:
        if d.labels:
            raise DataFileError(f"{path}: expected an entry for {name} (a key ending in "
                                f"/{name}), got none")  # fmt: skip
        return None
    return table[keys[0]]


def read_scored_series(cfg: Config, dry_run: bool = False) -> tuple[Series, list[int]]:
    """The series and the indices of the columns it scores (``data.target``, '' = all)."""
    d = cfg.data
    if dry_run and not d.path:  # sizes only (summary, tests): a stand-in, nothing is read
        names = [c.strip() for c in d.target.split(",") if c.strip()] or ["value"]
        series = synthetic_series(1000, names)
        return series, list(range(len(names)))
    if not d.path:
        raise DataError("family seq-anomaly needs `data.path` (the series CSV), got none")
    series = read_series(d.path, time_column=d.time_column or None, fill=fill_rule(cfg))
    names = [c.strip() for c in d.target.split(",") if c.strip()] or series.channels
    return series, [series.column(c) for c in names]


def build_data(cfg: Config, dry_run: bool) -> Data:
    d = cfg.data
    series, columns = read_scored_series(cfg, dry_run)
    values = series.values[:, columns]
    n_prob = int(len(values) * d.probation)
    if n_prob < d.window + 2:
        raise DataFileError(f"{d.path}: expected the probationary {d.probation:.0%} to hold more "
                            f"than data.window={d.window} + 1 rows, got {n_prob}")  # fmt: skip
    scaler = training_scaler(cfg, lambda: Scaler.fit(values[:n_prob]))
    scaled = scaler.transform(values)
    if cfg.model.kind == "lstm-ae":
        train = (sliding_windows(scaled[:n_prob], d.window),)
        rest = scaled[n_prob:]
        test = (sliding_windows(rest, min(d.window, len(rest)), d.window),)
    else:
        x, y, _ = forecast_windows(scaled, d.window, 1, range(len(columns)), stop=n_prob)
        train = (x, y)
        test = forecast_windows(scaled, d.window, 1, range(len(columns)), start=n_prob)[:2]
    if dry_run:
        train, test = (tuple(t[:DRY_RUN] for t in s) for s in (train, test))
    source = (f"{series.source}: {len(values)} rows, the first {n_prob} "
              f"({d.probation:.0%}) train the detector and set the threshold")  # fmt: skip
    data = tensor_data(cfg, train, test, 0, source)
    data.info = {
        "family": "seq-anomaly", "channels": [series.channels[c] for c in columns],
        "scaler": scaler.to_dict(), "window": d.window, "probation": d.probation,
        "threshold_k": cfg.model.threshold_k,
    }  # fmt: skip
    return data


def build_model(cfg: Config, spec: DataSpec) -> nn.Module:
    m, channels = cfg.model, spec.example.shape[-1]
    if m.kind == "lstm-ae":
        return WindowAutoencoderDetector(channels, m.hidden_size, m.latent_dim, cfg.data.window)
    return ForecastErrorDetector("lstm", channels, m.hidden_size, cfg.data.window)


def ae_step(model: nn.Module, batch, optimizer, *, update: Update | None = None) -> dict:
    """One update on the windows' reconstruction MSE."""
    update = update or Update()
    x = batch[0]
    model.train()
    with update.autocast():
        loss = F.mse_loss(model(x).float(), x)
    return {"loss": loss.item(), **update(loss, model, optimizer)}


@torch.no_grad()
def ae_eval(model: nn.Module, batch) -> dict[str, float]:
    model.eval()
    return {"loss": F.mse_loss(model(batch[0]), batch[0]).item()}


def steps(cfg: Config, ctx: StepContext):
    if cfg.model.kind == "lstm-ae":
        return ctx.bind(ae_step, ae_eval)
    return ctx.bind(forecast_step, forecast_eval)


def score_series(cfg: Config, model: nn.Module, values: torch.Tensor, scaler: Scaler):
    """Per-step scores ``(T,)`` of raw ``values (T, C)`` (scaled with the run's scaler)."""
    inner = getattr(model, "module", model)
    return inner.scores(scaler.transform(values).to(next(model.parameters()).device))


@torch.no_grad()
def finish(cfg: Config, model: nn.Module, test_batches, device, dry_run: bool) -> dict:
    """Score every step; threshold from the probationary part; metrics against the labelled
    windows (when there are some); ``anomaly_scores.csv`` into the run folder."""
    d = cfg.data
    series, columns = read_scored_series(cfg, dry_run)
    values = series.values[:, columns]
    if dry_run:
        values = values[: max(4 * d.window, int(len(values) * d.probation) + d.window)]
    n_prob = int(len(series.values) * d.probation)
    scaler = training_scaler(cfg, lambda: Scaler.fit(values[:n_prob]))
    scores = score_series(cfg, model, values, scaler).cpu()
    threshold = probationary_threshold(scores, d.probation * len(series.values) / len(values),
                                       cfg.model.threshold_k)  # fmt: skip
    windows = labelled_windows(cfg)
    time = series.time[: len(values)] if series.time is not None else None
    labels = torch.zeros(len(values), dtype=torch.bool)
    if windows and time is not None:
        labels = window_labels(time, windows)
    metrics = detection_metrics(scores, labels, threshold, time)
    folder = run_folder(model)
    if folder is not None:
        head = [
            "time",
            *(series.channels[c] for c in columns),
            "score",
            "label",
            "threshold",
        ]
        rows = [",".join(head)]
        for i in range(len(values)):
            t = time[i] if time is not None else str(i)
            vals = ",".join(repr(float(v)) for v in values[i])
            rows.append(f"{t},{vals},{float(scores[i])!r},{int(labels[i])},{threshold!r}")
        atomic_write_text(folder / SCORES_CSV, "\n".join(rows) + "\n")
        info = read_data_json(folder)  # predict applies the same threshold
        info["threshold"] = threshold
        atomic_write_text(folder / DATA_JSON, json.dumps(info, indent=1, sort_keys=True))
    return {f"test_{k}": v for k, v in metrics.items()}


FAMILY = file_family(
    keyset(
        "data.path data.target data.labels data.probation data.window "
        "model.hidden_size model.latent_dim model.threshold_k"
    ),
    name="seq-anomaly",
    description="anomaly detection on a series CSV (NAB-style): LSTM-AE windows or forecast "
    "error; threshold from the probationary part",
    kinds=KINDS,
    build_data=build_data,
    build_model=build_model,
    steps=steps,
    finish=finish,
)
