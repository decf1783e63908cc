"""The figure of a series anomaly run (family ``seq-anomaly``): the series, its per-step anomaly
score, the threshold and the labelled windows, read from the run's ``anomaly_scores.csv``
(``time, value(s)..., score, label, threshold``; written by the family's ``finish``).

Top panel: the series (first value column), labelled windows shaded. Bottom panel: the score,
the threshold as a dashed line, steps above it marked. The x axis is the step index (the
time column's first and last entries are in the caption's title).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from rnnlab.utils import save_figure

__all__ = ["plot_series_anomaly", "read_anomaly_scores"]


def read_anomaly_scores(path: str | os.PathLike) -> dict:
    """``{"time", "value", "score", "label", "threshold"}`` of an ``anomaly_scores.csv``;
    ``ValueError`` naming the line when it is not one."""
    path = Path(path)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    head = rows[0] if rows else []
    if len(head) < 5 or head[0] != "time" or head[-3:] != ["score", "label", "threshold"]:
        raise ValueError(f"{path.name}: expected a header time,<values>,score,label,threshold")
    time, value, score, label = [], [], [], []
    for n, row in enumerate(rows[1:], start=2):
        try:
            value.append(float(row[1]))
            score.append(float(row[-3]))
            label.append(int(row[-2]))
            threshold = float(row[-1])
        except (ValueError, IndexError):
            raise ValueError(f"{path.name}, line {n}: expected numbers after the time") from None
        time.append(row[0])
    return {"time": time, "value": np.array(value), "score": np.array(score),
            "label": np.array(label, dtype=bool), "threshold": threshold}  # fmt: skip


def _spans(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def plot_series_anomaly(data: dict, path: str | os.PathLike, *, title: str = "") -> Path:
    """Draw :func:`read_anomaly_scores`'s ``data`` into a PNG at ``path``."""
    fig = Figure(figsize=(10, 4.6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    t = np.arange(len(data["value"]))
    for a, b in _spans(data["label"]):
        for ax in (top, bottom):
            ax.axvspan(a, b, color="#fca5a5", alpha=0.45, lw=0)
    top.plot(t, data["value"], lw=0.6, color="#1f2937")
    top.set_ylabel("value")
    span = f"{data['time'][0]} .. {data['time'][-1]}" if data["time"] else ""
    top.set_title(f"{title}  {span}  (labelled windows shaded)".strip(), fontsize=10, loc="left")
    score, threshold = data["score"], data["threshold"]
    bottom.plot(t, score, lw=0.6, color="#2563eb", label="score")
    bottom.axhline(threshold, ls="--", color="#dc2626", lw=1, label=f"threshold {threshold:.3g}")
    above = np.nan_to_num(score, nan=-np.inf) > threshold
    bottom.plot(t[above], score[above], ".", ms=2, color="#dc2626")
    bottom.set_yscale("log" if np.nanmin(score) > 0 else "linear")
    bottom.set_ylabel("anomaly score")
    bottom.set_xlabel("step")
    bottom.legend(loc="upper left", fontsize=8)
    return save_figure(fig, path)
