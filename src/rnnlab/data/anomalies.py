"""A generated sequence-anomaly task for sequence autoencoders (the chapter's "LSTM autoencoders
for anomaly detection"; the setting of Malhotra et al. 2016, "LSTM-based encoder-decoder for
multi-sensor anomaly detection", with synthetic series in place of sensor data).

Normal series are noisy periodic signals

.. math:: x_t = a \\sin(2\\pi f t / T_0 + \\phi) + \\tfrac{a}{3} \\sin(4\\pi f t / T_0 + \\psi)
          + \\sigma \\epsilon_t

with amplitude ``a``, phases ``φ, ψ`` and frequency ``f`` drawn per series from narrow ranges
(``f`` around 1, so about ``T / T_0`` periods per series) and Gaussian noise ``σ``. An anomalous
series is a normal one with one injected event inside a window of ``T // 4`` to ``T // 2``
steps that starts at a random step:

- ``spike``: 1 to 3 isolated steps jump by ``± spike_size``;
- ``level_shift``: the window is offset by ``± shift_size``;
- ``frequency``: inside the window the series continues with frequency ``f · freq_factor``
  (or ``f / freq_factor``), phase-continuous at both ends (after the window the base
  frequency resumes from the phase the event left, so the series stays shifted in phase).

:func:`sequence_anomalies` returns ``x (N, T, 1)``, ``kind (N,)`` (0 = normal, then the index in
:data:`ANOMALY_KINDS` plus one) and ``window (N, 2)`` (start, stop; (0, 0) for normal series).
Everything is drawn from its own ``torch.Generator`` seeded by ``seed``: the same arguments
give the same tensors.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["ANOMALY_KINDS", "KIND_NAMES", "sequence_anomalies"]

ANOMALY_KINDS = ("spike", "level_shift", "frequency")
KIND_NAMES = ("normal", *ANOMALY_KINDS)


def _check(n: int, steps: int, anomaly_fraction: float, kinds, sizes: dict) -> tuple[int, ...]:
    if n < 1 or steps < 16:
        raise ValueError(f"`n` must be >= 1 and `steps` >= 16; got n={n}, steps={steps}")
    if not 0.0 <= anomaly_fraction <= 1.0:
        raise ValueError(f"`anomaly_fraction` must be in [0, 1]; got {anomaly_fraction}")
    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in ANOMALY_KINDS]
    if not kinds or unknown:
        raise ValueError(f"`kinds` must be a non-empty subset of {ANOMALY_KINDS}; got {kinds}")
    for name, value in sizes.items():
        if not value > 0:
            raise ValueError(f"`{name}` must be > 0; got {value}")
    if sizes["freq_factor"] <= 1:
        raise ValueError(f"`freq_factor` must be > 1; got {sizes['freq_factor']}")
    return tuple(ANOMALY_KINDS.index(k) + 1 for k in kinds)


def sequence_anomalies(
    n: int,
    steps: int = 64,
    anomaly_fraction: float = 0.5,
    kinds=ANOMALY_KINDS,
    *,
    period: float = 16.0,
    noise: float = 0.1,
    spike_size: float = 1.5,
    shift_size: float = 0.5,
    freq_factor: float = 1.5,
    seed: int = 0,
) -> tuple[Tensor, Tensor, Tensor]:
    """``n`` series of ``steps`` steps; ``round(anomaly_fraction * n)`` of them anomalous, their
    kinds cycling through ``kinds`` in a random order. Returns ``(x, kind, window)``."""
    codes = _check(
        n,
        steps,
        anomaly_fraction,
        kinds,
        {"period": period, "noise": noise, "spike_size": spike_size,
         "shift_size": shift_size, "freq_factor": freq_factor},
    )  # fmt: skip
    g = torch.Generator().manual_seed(seed)

    def uniform(lo: float, hi: float, size=(n,)) -> Tensor:
        return lo + (hi - lo) * torch.rand(size, generator=g)

    t = torch.arange(steps, dtype=torch.float32)
    amp = uniform(0.8, 1.2)
    freq = uniform(0.9, 1.1)
    phi, psi = uniform(0.0, 2 * math.pi), uniform(0.0, 2 * math.pi)
    omega = 2 * math.pi * freq / period  # (n,) radians per step

    n_anom = round(anomaly_fraction * n)
    kind = torch.zeros(n, dtype=torch.long)
    order = torch.randperm(n, generator=g)[:n_anom]
    kind[order] = torch.tensor(codes)[torch.arange(n_anom) % len(codes)]
    width = torch.randint(steps // 4, steps // 2 + 1, (n,), generator=g)
    start = (torch.rand(n, generator=g) * (steps - width + 1)).long()
    stop = start + width
    inside = (t[None] >= start[:, None]) & (t[None] < stop[:, None])  # (n, T)
    sign = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)

    # phase of the base frequency; a frequency anomaly changes the slope inside the window
    factor = torch.where(torch.rand(n, generator=g) < 0.5, freq_factor, 1.0 / freq_factor)
    is_freq = kind == ANOMALY_KINDS.index("frequency") + 1
    rate = torch.where(is_freq[:, None] & inside, omega[:, None] * factor[:, None], omega[:, None])
    phase = torch.cumsum(rate, dim=1) - rate[:, :1]  # phase at step t: sum of earlier rates
    x = amp[:, None] * (torch.sin(phase + phi[:, None]) + torch.sin(2 * phase + psi[:, None]) / 3)
    x = x + noise * torch.randn(n, steps, generator=g)

    is_shift = kind == ANOMALY_KINDS.index("level_shift") + 1
    x = x + torch.where(is_shift[:, None] & inside, sign[:, None] * shift_size, 0.0)

    is_spike = kind == ANOMALY_KINDS.index("spike") + 1
    n_spikes = torch.randint(1, 4, (n,), generator=g)
    positions = start[:, None] + (torch.rand(n, 3, generator=g) * width[:, None]).long()
    spike_sign = torch.where(torch.rand(n, 3, generator=g) < 0.5, -1.0, 1.0)
    for j in range(3):
        active = is_spike & (n_spikes > j)
        rows = active.nonzero().flatten()
        x[rows, positions[rows, j]] += spike_sign[rows, j] * spike_size

    window = torch.stack([start, stop], dim=1)
    window[kind == 0] = 0
    return x[..., None], kind, window
