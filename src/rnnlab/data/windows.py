"""One long series -> training examples: a standard scaler fit on the training part only,
sliding forecast windows that never put a target step into their input, and the two naive
forecasts every forecaster is compared with (labelled anomaly windows: :mod:`.anomaly_windows`).

Forecast windows (the Informer protocol, Zhou et al. 2021): window ``i`` reads steps
``[i, i + L)`` of every input channel and predicts steps ``[i + L, i + L + H)`` of the target
channels, so the last input step is always before the first target step. Informer's ETTh1
split (hourly rows) is train ``[0, 8640)``, validation ``[8640, 11520)``, test ``[11520,
14400)``; a split's first window reads its input from up to ``L`` rows before the split
starts (Informer's ``border1 = border - seq_len``), its targets lie inside it.

Baselines, for a window with last observed target value ``y_T``:

- persistence: :math:`\\hat y_{T+h} = y_T` for every ``h``;
- seasonal naive with season ``m``: :math:`\\hat y_{T+h} = y_{T+h-m\\lceil h/m\\rceil}`
  (the value one season before, repeated; Hyndman & Athanasopoulos, *Forecasting: Principles
  and Practice*, §5.2). It needs ``L >= m``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "INFORMER_ETTH1_SPLIT", "Scaler", "forecast_windows", "persistence_forecast",
    "seasonal_naive_forecast", "split_rows",
]  # fmt: skip

INFORMER_ETTH1_SPLIT = ((0, 8640), (8640, 11520), (11520, 14400))  # 12, 4, 4 months of hours


@dataclass
class Scaler:
    """Per-channel standardisation ``(x - mean) / std`` (std of 0 becomes 1).

    Fit it on training data only (:meth:`fit`); it travels with a run as JSON
    (:meth:`to_dict` / :meth:`from_dict`)."""

    mean: list[float]
    std: list[float]

    @staticmethod
    def fit(x: Tensor) -> Scaler:
        """Statistics over every axis but the last (channels) of ``x (..., C)``; NaN (padding
        marked as such) is ignored."""
        flat = x.reshape(-1, x.shape[-1]).double()
        ok = ~torch.isnan(flat)
        n = ok.sum(0).clamp_min(1)
        mean = torch.where(ok, flat, 0).sum(0) / n
        var = (torch.where(ok, flat - mean, 0) ** 2).sum(0) / n
        std = torch.where(var > 0, var.sqrt(), torch.ones_like(var))
        return Scaler(mean.tolist(), std.tolist())

    def _stats(self, x: Tensor, channels) -> tuple[Tensor, Tensor]:
        idx = list(range(len(self.mean))) if channels is None else list(channels)
        mean = torch.tensor([self.mean[i] for i in idx], dtype=x.dtype, device=x.device)
        std = torch.tensor([self.std[i] for i in idx], dtype=x.dtype, device=x.device)
        return mean, std

    def transform(self, x: Tensor, channels: Sequence[int] | None = None) -> Tensor:
        """Scale ``x (..., C)``; ``channels`` picks the statistics when ``x`` holds a subset."""
        mean, std = self._stats(x, channels)
        return (x - mean) / std

    def inverse(self, x: Tensor, channels: Sequence[int] | None = None) -> Tensor:
        """Undo :meth:`transform` (back to the data's units)."""
        mean, std = self._stats(x, channels)
        return x * std + mean

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std)}

    @staticmethod
    def from_dict(d: dict) -> Scaler:
        return Scaler([float(v) for v in d["mean"]], [float(v) for v in d["std"]])


def split_rows(n: int, fractions: tuple[float, float]) -> tuple[tuple[int, int], ...]:
    """Chronological ``(train, val, test)`` row ranges: the first ``fractions[0]`` of ``n``
    rows, the next ``fractions[1]``, the rest."""
    a = int(n * fractions[0])
    b = a + int(n * fractions[1])
    return (0, a), (a, b), (b, n)


def forecast_windows(
    series: Tensor,
    input_len: int,
    horizon: int,
    targets: Sequence[int],
    inputs: Sequence[int] | None = None,
    *,
    start: int = 0,
    stop: int | None = None,
    stride: int = 1,
) -> tuple[Tensor, Tensor, Tensor]:
    """Windows of ``series (T, C)`` whose targets lie in rows ``[start, stop)``.

    Returns ``x (N, input_len, len(inputs))``, ``y (N, horizon, len(targets))`` and ``t0 (N,)``,
    the row of each window's first target step: ``x[i]`` is rows ``[t0 - L, t0)``, ``y[i]``
    rows ``[t0, t0 + H)``. The first window's input may start before ``start`` (not before row
    0). Raises ``ValueError`` when no window fits.
    """
    T = len(series)
    stop = T if stop is None else min(stop, T)
    if input_len < 1 or horizon < 1 or stride < 1:
        raise ValueError(
            f"`input_len`, `horizon` and `stride` must be >= 1, got {input_len}, "
            f"{horizon}, {stride}"
        )
    first = max(start, input_len)
    last = stop - horizon  # t0 <= last
    if last < first:
        raise ValueError(
            f"`horizon` {horizon} with `input_len` {input_len} needs more rows than rows "
            f"[{start}, {stop}) of a {T}-row series hold (input_len + horizon = "
            f"{input_len + horizon})"
        )
    inputs = list(range(series.shape[1])) if inputs is None else list(inputs)
    t0 = torch.arange(first, last + 1, stride)
    steps_in = t0[:, None] + torch.arange(-input_len, 0)  # (N, L)
    steps_out = t0[:, None] + torch.arange(horizon)  # (N, H)
    x = series[steps_in][..., inputs]
    y = series[steps_out][..., list(targets)]
    return x, y, t0


def persistence_forecast(x: Tensor, horizon: int, target_in_input: Sequence[int]) -> Tensor:
    """``(N, horizon, k)``: the last input value of each target channel, repeated."""
    last = x[:, -1, list(target_in_input)]  # (N, k)
    return last[:, None, :].expand(-1, horizon, -1).clone()


def seasonal_naive_forecast(
    x: Tensor, horizon: int, season: int, target_in_input: Sequence[int]
) -> Tensor:
    """``(N, horizon, k)``: step ``h`` (1-based) is the input value ``m * ceil(h / m)`` steps
    before it; needs ``input_len >= season``."""
    L = x.shape[1]
    if not 1 <= season <= L:
        raise ValueError(f"`season` must be in [1, input_len={L}], got {season}")
    h = torch.arange(1, horizon + 1)
    back = season * torch.ceil(h / season).long()  # steps before T + h
    index = L - 1 + h - back  # position in the input (last input = L - 1 = time T)
    return x[:, index][..., list(target_in_input)]
