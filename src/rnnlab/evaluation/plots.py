"""Figures for run reports (:mod:`rnnlab.evaluation.report`): training curves, a confusion
matrix heatmap, robustness (accuracy vs epsilon) curves and gradient norms through time.

Drawn with matplotlib's Agg canvas directly (no pyplot state, no display, as in
``evaluation.robustness``) and written atomically by :func:`rnnlab.utils.save_figure` (temp
file + ``os.replace``: a reader never sees half a file). Every function takes plain Python
data that the report has already read and checked, and returns the path it wrote. Labels
read from disk are drawn literally (``$`` is escaped so mathtext never parses them).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from rnnlab.utils import atomic_write_bytes
from rnnlab.utils import save_figure as _save_figure

__all__ = [
    "atomic_write_bytes", "plot_confusion", "plot_curves", "plot_gradients", "plot_robustness",
    "save_figure",
]  # fmt: skip

Points = Sequence[tuple[float, float]]
# One colour per run (colour-blind-friendly order), one line style per split.
PALETTE = ("#2563eb", "#dc2626", "#059669", "#9333ea", "#d97706", "#0891b2", "#be185d", "#4b5563")
SPLIT_STYLE = {"train": "-", "val": "--", "test": ":"}
MAX_ANNOTATED_CLASSES = 15


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Render ``fig`` to PNG at the report's 110 dpi and write it atomically to ``path``."""
    return _save_figure(fig, path, dpi=110)


def _text(label: object) -> str:
    return str(label).replace("$", r"\$")


def _finite(points: Points, *, positive: bool = False) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for x, y in points:
        if math.isfinite(x) and math.isfinite(y) and (y > 0 or not positive):
            xs.append(x)
            ys.append(y)
    return xs, ys


def _axes(figsize: tuple[float, float] = (6.4, 3.6)) -> tuple[Figure, Axes]:
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    ax.grid(True, color="#e5e7eb", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def _legend(ax: Axes, n: int, *, single: bool = False) -> None:
    if n > 1 or (single and n == 1):
        ax.legend(fontsize=8, frameon=False, ncol=1 if n <= 8 else 2)


def plot_curves(
    curves: Mapping[str, Mapping[str, Points]],
    metric: str,
    path: str | os.PathLike,
    *,
    xlabel: str = "epoch",
    log_y: bool = False,
) -> Path:
    """One line per run and split: ``curves[run][split] = [(x, value), ...]``.

    Colour = run, line style = split (train solid, val dashed, test dotted). With several
    runs the legend has one entry per run (colour) and one per split (style), outside the
    axes. Non-finite points are left out (and non-positive ones with ``log_y``); a single
    point is a marker.
    """
    several = len(curves) > 1
    fig, ax = _axes((7.4, 3.6) if several else (6.4, 3.6))
    lines, runs, splits = 0, {}, {}
    for i, (run, by_split) in enumerate(curves.items()):
        colour = PALETTE[i % len(PALETTE)]
        for split, points in by_split.items():
            xs, ys = _finite(points, positive=log_y)
            if not xs:
                continue
            style = SPLIT_STYLE.get(split, "-.") if split else "-"
            ax.plot(
                xs, ys, style, color=colour, label=_text(split or metric),
                marker="o" if len(xs) <= 30 else None, markersize=3.5, linewidth=1.6,
            )  # fmt: skip
            lines, runs[run], splits[split or metric] = lines + 1, colour, style
    if log_y and lines:
        ax.set_yscale("log")
    if all(float(x).is_integer() for s in curves.values() for p in s.values() for x, _ in p):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(_text(xlabel))
    ax.set_ylabel(_text(metric))
    ax.set_title(_text(metric), fontsize=11, loc="left")
    if several and lines:
        handles = [Line2D([], [], color=c, linewidth=2, label=_text(r)) for r, c in runs.items()]
        if len(splits) > 1:
            handles += [Line2D([], [], color="#4b5563", linestyle=s, label=_text(n))
                        for n, s in splits.items()]  # fmt: skip
        ax.legend(handles=handles, fontsize=8, frameon=False, loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), borderaxespad=0)  # fmt: skip
    else:
        _legend(ax, lines)
    return save_figure(fig, path)


def _count(value: float) -> str:
    return f"{int(value)}" if float(value).is_integer() else f"{value:.2f}"


def plot_confusion(
    labels: Sequence[str], matrix: Sequence[Sequence[float]], path: str | os.PathLike, *,
    title: str = "confusion matrix",
) -> Path:  # fmt: skip
    """Heatmap of ``matrix[true][predicted]``, coloured by the fraction of each true class
    (row-normalised) and annotated with the counts when there are at most 15 classes."""
    m = np.asarray(matrix, dtype=np.float64)
    n = m.shape[0]
    rows = m.sum(axis=1, keepdims=True)
    frac = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    side = min(7.0, max(3.4, 0.36 * n + 1.8))
    fig = Figure(figsize=(side + 1.1, side), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of the true class")
    names = [_text(str(label)[:14]) for label in labels]
    ax.set_xticks(range(n), names, rotation=45 if n > 6 else 0, ha="right" if n > 6 else "center")
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(_text(title), fontsize=11, loc="left")
    if n <= MAX_ANNOTATED_CLASSES:
        for t in range(n):
            for p in range(n):
                colour = "white" if frac[t, p] > 0.55 else "#1f2937"
                ax.text(p, t, _count(m[t, p]), ha="center", va="center", fontsize=8, color=colour)
    return save_figure(fig, path)


def _grouped(
    ax: Axes, curves: Mapping[str, Mapping[str, Points]], *, positive: bool = False,
    marker: str | None = None,
) -> tuple[int, float]:  # fmt: skip
    """``curves[run][label]``: colour = label (the same model keeps its colour across runs),
    line style = run. Returns (lines drawn, largest value)."""
    colours = {label: PALETTE[i % len(PALETTE)] for i, label in
               enumerate(dict.fromkeys(k for c in curves.values() for k in c))}  # fmt: skip
    styles = ("-", "--", ":", "-.")
    lines, top = 0, -math.inf
    for i, (run, by_label) in enumerate(curves.items()):
        for label, points in by_label.items():
            xs, ys = _finite(sorted(points), positive=positive)
            if not xs:
                continue
            name = label if len(curves) == 1 else f"{run} · {label}"
            ax.plot(
                xs, ys, styles[i % len(styles)], color=colours[label], label=_text(name),
                marker=marker, markersize=4, linewidth=1.6,
            )  # fmt: skip
            lines, top = lines + 1, max(top, *ys)
    return lines, top


def plot_robustness(curves: Mapping[str, Mapping[str, Points]], path: str | os.PathLike) -> Path:
    """Accuracy under attack against the perturbation size ε:
    ``curves[run][model] = [(eps, accuracy), ...]``."""
    fig, ax = _axes()
    lines, top = _grouped(ax, curves, marker="o")
    if lines and top <= 1.0:
        ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("ε (perturbation size)")
    ax.set_ylabel("accuracy")
    ax.set_title("accuracy under attack", fontsize=11, loc="left")
    _legend(ax, lines, single=True)
    return save_figure(fig, path)


def plot_gradients(
    curves: Mapping[str, Mapping[str, Sequence[float]]], path: str | os.PathLike
) -> Path:
    """``||dL/dh_t||`` against the time step t on a log scale: ``curves[run][name] = [norm_t]``.
    Non-finite and non-positive norms (which a log axis cannot show) are left out."""
    fig, ax = _axes()
    as_points = {
        run: {name: list(enumerate(norms)) for name, norms in by_name.items()}
        for run, by_name in curves.items()
    }
    lines, _ = _grouped(ax, as_points, positive=True)
    if lines:
        ax.set_yscale("log")
    ax.set_xlabel("time step t")
    ax.set_ylabel("‖dL/dh_t‖")
    ax.set_title("gradient norm through time", fontsize=11, loc="left")
    _legend(ax, lines, single=True)
    return save_figure(fig, path)
