"""Labelled anomaly windows of one series (NAB's ``combined_windows.json``, Lavin & Ahmad
2015) and how a per-step anomaly score is judged against them.

- :func:`window_labels`: the windows as per-step labels (True inside a window).
- :func:`probationary_threshold`: the alarm threshold from the first ``fraction`` of the
  series only (NAB's probationary period, 15%): a robust z-score rule,
  :math:`\\tau = \\operatorname{median}(s) + k \\cdot 1.4826 \\operatorname{MAD}(s)` over the
  finite scores of that part (1.4826 MAD is the standard deviation of normal data, and the
  median/MAD pair ignores a contaminated minority, such as an anomaly inside the part).
- :func:`detection_metrics`: point AUROC (every step with a finite score, anomalies positive),
  windows detected (a window counts when a step inside it scores above the threshold) and
  false alarms per day (an alarm is a maximal run of consecutive steps above the threshold;
  it is false when no step of it is inside a window; divided by the days the scored steps
  span).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import torch
from torch import Tensor

__all__ = ["alarm_runs", "days_between", "detection_metrics", "probationary_threshold",
           "window_labels"]  # fmt: skip


def window_labels(time: Sequence[str], windows: Sequence[Sequence[str]]) -> Tensor:
    """``(T,)`` bool: True at rows whose timestamp lies in a labelled ``[start, end]`` window
    (ISO timestamps compare as text once cut to one length)."""
    n = min(len(time[0]), *(len(s) for w in windows for s in w)) if windows else 0
    stamps = [t[:n] for t in time]
    out = torch.zeros(len(time), dtype=torch.bool)
    for start, end in windows:
        a, b = start[:n], end[:n]
        out |= torch.tensor([a <= s <= b for s in stamps])
    return out


def days_between(first: str, last: str) -> float:
    """Days from one ISO timestamp to another."""
    delta = datetime.fromisoformat(last) - datetime.fromisoformat(first)
    return delta.total_seconds() / 86400.0


def probationary_threshold(scores: Tensor, fraction: float = 0.15, k: float = 5.0) -> float:
    """``median + k * 1.4826 * MAD`` of the finite scores among the first ``fraction`` of
    steps; no later step is read."""
    head = scores[: int(len(scores) * fraction)]
    head = head[torch.isfinite(head)].double()
    if len(head) < 2:
        raise ValueError(f"the first {fraction:.0%} of the series holds {len(head)} finite "
                         "scores; a threshold needs at least 2")  # fmt: skip
    median = head.median()
    mad = (head - median).abs().median()
    return float(median + k * 1.4826 * mad)


def alarm_runs(above: Tensor) -> list[tuple[int, int]]:
    """``[start, stop)`` of each maximal run of True in ``above (T,)``."""
    padded = torch.cat([torch.zeros(1), above.float(), torch.zeros(1)])
    edges = torch.diff(padded)
    starts = (edges == 1).nonzero().flatten().tolist()
    stops = (edges == -1).nonzero().flatten().tolist()
    return list(zip(starts, stops, strict=True))


def detection_metrics(
    scores: Tensor, labels: Tensor, threshold: float, time: Sequence[str] | None = None
) -> dict[str, float]:
    """``point_auroc``, ``windows`` (labelled), ``windows_detected``, ``false_alarms`` and
    ``false_alarms_per_day`` (needs ``time``) of per-step ``scores`` (NaN = not scored)."""
    from sklearn.metrics import roc_auc_score

    scored = torch.isfinite(scores)
    s, y = scores[scored], labels[scored]
    out: dict[str, float] = {}
    if y.any() and not y.all():
        out["point_auroc"] = float(roc_auc_score(y.numpy(), s.double().numpy()))
    above = scored & (torch.nan_to_num(scores, nan=-torch.inf) > threshold)
    windows = alarm_runs(labels)
    out["windows"] = float(len(windows))
    out["windows_detected"] = float(sum(bool(above[a:b].any()) for a, b in windows))
    false = [(a, b) for a, b in alarm_runs(above) if not labels[a:b].any()]
    out["false_alarms"] = float(len(false))
    if time is not None:
        index = scored.nonzero().flatten()
        days = days_between(time[int(index[0])], time[int(index[-1])])
        out["false_alarms_per_day"] = len(false) / max(days, 1e-9)
    out["threshold"] = float(threshold)
    return out
