"""Recurrent forecasters of a series ``x (B, L, C)`` -> the next ``H`` steps of ``k`` target
channels ``(B, H, k)``, and the two series anomaly detectors built on them.

- :class:`Seq2VecForecaster`: recurrent layers read the window; their last output goes
  through one ``Dense(H * k)`` (the "direct multi-output" strategy; LSTMa-style baselines).
- :class:`Seq2SeqForecaster`: an encoder-decoder (Sutskever et al. 2014; Cho et al. 2014 for
  the GRU): the encoder's final state starts a decoder cell that is unrolled ``H`` steps; its
  input at step ``h`` is the previous target value, ``y_{T+h-1}`` (the last observed value at
  ``h = 1``). With ``teacher_forcing = p`` a training step feeds the true previous value with
  probability ``p`` (per step, one draw for the batch; Williams & Zipser 1989), else the model's
  own prediction; evaluation always feeds its own predictions.
- ``residual=True`` (both): the network predicts the change from the last observed target
  value, :math:`\\hat y_{T+h} = y_T + f(x)_h` (so the untrained model is the persistence
  forecast). It needs the targets to be among the inputs (``target_in_input``).

Series anomaly detectors give a score per time step (higher = more anomalous):

- :class:`ForecastErrorDetector` (Malhotra et al. 2015, "Long short term memory networks for
  anomaly detection in time series"): the absolute error of a one-step forecast,
  :math:`s_t = \\frac1k \\sum_j |y_{t,j} - \\hat y_{t,j}|` from the ``L`` steps before ``t``.
- :class:`WindowAutoencoderDetector` (Malhotra et al. 2016, LSTM encoder-decoder): an
  :class:`~rnnlab.models.autoencoders.LSTMAutoencoder` over sliding windows of ``W`` steps;
  the score of step ``t`` is the squared reconstruction error at ``t`` averaged over every
  window that holds ``t``.

The first steps that no window covers (``t < L`` for the forecaster) score NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from rnnlab.layers import GRUCell, LSTMCell

from .classifiers import RECURRENT_KINDS, recurrent_layers
from .structured_autoencoders import LSTMAutoencoder

__all__ = [
    "FORECAST_KINDS", "ForecastErrorDetector", "Seq2SeqForecaster", "Seq2VecForecaster",
    "WindowAutoencoderDetector", "sliding_windows",
]  # fmt: skip

FORECAST_KINDS = ("lstm", "gru", "simple_rnn")


def _check(horizon: int, n_targets: int, residual: bool, target_in_input) -> list[int] | None:
    if horizon < 1 or n_targets < 1:
        raise ValueError(f"`horizon` and `n_targets` must be >= 1, got {horizon}, {n_targets}")
    if residual:
        if target_in_input is None or len(target_in_input) != n_targets:
            raise ValueError(
                f"`residual=True` needs `target_in_input`: the input channel of each of the "
                f"{n_targets} targets, got {target_in_input!r}"
            )
        return [int(i) for i in target_in_input]
    return None


class Seq2VecForecaster(nn.Module):
    """Recurrent layers -> last output -> ``Dense(horizon * n_targets)`` -> ``(B, H, k)``."""

    def __init__(
        self,
        kind: str,
        input_size: int,
        hidden_size: int,
        horizon: int,
        n_targets: int = 1,
        *,
        num_layers: int = 1,
        dropout: float = 0.0,
        layer_dropout: float = 0.0,
        residual: bool = False,
        target_in_input: Sequence[int] | None = None,
        implementation: str = "auto",
    ) -> None:
        super().__init__()
        self.target_in_input = _check(horizon, n_targets, residual, target_in_input)
        self.horizon, self.n_targets = horizon, n_targets
        self.rnn = recurrent_layers(
            kind, input_size, hidden_size, num_layers=num_layers, dropout=dropout,
            layer_dropout=layer_dropout, implementation=implementation,
        )  # fmt: skip
        self.head = nn.Linear(self.rnn.output_size, horizon * n_targets)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        out = self.head(self.rnn(x, lengths)).view(len(x), self.horizon, self.n_targets)
        if self.target_in_input is not None:
            out = out + x[:, -1:, self.target_in_input]
        return out


class Seq2SeqForecaster(nn.Module):
    """Encoder-decoder forecaster (module doc). ``forward(x, y=None)``: ``y (B, H, k)`` is
    used only for teacher forcing in training mode."""

    def __init__(
        self,
        kind: str,
        input_size: int,
        hidden_size: int,
        horizon: int,
        n_targets: int = 1,
        *,
        target_in_input: Sequence[int] | None = None,
        teacher_forcing: float = 0.0,
        residual: bool = False,
        implementation: str = "auto",
    ) -> None:
        super().__init__()
        if kind not in ("lstm", "gru"):
            raise ValueError(f"`kind` of a seq2seq forecaster must be lstm or gru, got {kind!r}")
        if not 0.0 <= teacher_forcing <= 1.0:
            raise ValueError(f"`teacher_forcing` must be in [0, 1], got {teacher_forcing}")
        if target_in_input is None or len(target_in_input) != n_targets:
            raise ValueError(
                f"`target_in_input` must give the input channel of each of the "
                f"{n_targets} targets, got {target_in_input!r}"
            )
        _check(horizon, n_targets, residual, target_in_input)
        self.kind, self.horizon, self.n_targets = kind, horizon, n_targets
        self.target_in_input = [int(i) for i in target_in_input]
        self.teacher_forcing, self.residual = teacher_forcing, residual
        self.encoder = RECURRENT_KINDS[kind](
            input_size, hidden_size, return_state=True, implementation=implementation
        )
        self.decoder = (LSTMCell if kind == "lstm" else GRUCell)(n_targets, hidden_size)
        self.head = nn.Linear(hidden_size, n_targets)

    def forward(self, x: Tensor, lengths: Tensor | None = None, y: Tensor | None = None) -> Tensor:
        _, state = self.encoder(x, lengths)
        prev = x[:, -1, self.target_in_input]  # y_T: (B, k)
        last = prev
        force = self.training and y is not None and self.teacher_forcing > 0
        draws = torch.rand(self.horizon) < self.teacher_forcing if force else None
        outs = []
        for h in range(self.horizon):
            out, state = self.decoder(prev, state)
            pred = self.head(out) + (last if self.residual else 0.0)
            outs.append(pred)
            prev = y[:, h] if draws is not None and draws[h] else pred
        return torch.stack(outs, dim=1)  # (B, H, k)


def sliding_windows(series: Tensor, width: int, stride: int = 1) -> Tensor:
    """``(N, width, C)`` windows of ``series (T, C)`` starting at ``0, stride, ...``."""
    if not 1 <= width <= len(series):
        raise ValueError(f"`width` must be in [1, {len(series)}] (the series), got {width}")
    return series.unfold(0, width, stride).transpose(1, 2)


class ForecastErrorDetector(nn.Module):
    """A one-step :class:`Seq2VecForecaster` over the previous ``input_len`` steps; scores are
    mean absolute one-step errors (module doc). All channels are inputs and targets."""

    def __init__(self, kind: str, channels: int, hidden_size: int, input_len: int) -> None:
        super().__init__()
        self.input_len = input_len
        self.forecaster = Seq2VecForecaster(
            kind, channels, hidden_size, 1, channels, residual=True,
            target_in_input=list(range(channels)),
        )  # fmt: skip

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.forecaster(x, lengths)

    @torch.no_grad()
    def scores(self, series: Tensor, batch_size: int = 2048) -> Tensor:
        """``(T,)`` scores of ``series (T, C)``; NaN for ``t < input_len``."""
        self.eval()
        L = self.input_len
        out = torch.full((len(series),), float("nan"))
        windows = sliding_windows(series[:-1], L)  # window i: rows [i, i + L) -> row i + L
        preds = torch.cat([self(xb)[:, 0] for xb in windows.split(batch_size)])  # (T - L, C)
        out[L:] = (preds - series[L:]).abs().mean(-1).float().cpu()
        return out


class WindowAutoencoderDetector(nn.Module):
    """:class:`LSTMAutoencoder` on windows of ``width`` steps; per-step scores (module doc)."""

    def __init__(self, channels: int, hidden_size: int, latent_size: int, width: int) -> None:
        super().__init__()
        self.width = width
        self.autoencoder = LSTMAutoencoder(channels, hidden_size, latent_size)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.autoencoder(x, lengths)

    @torch.no_grad()
    def scores(self, series: Tensor, batch_size: int = 2048, stride: int = 1) -> Tensor:
        """``(T,)``: each step's squared error averaged over the windows holding it (channel
        mean); NaN where no window reaches (a tail shorter than ``stride``)."""
        self.eval()
        T, W = len(series), self.width
        total, count = torch.zeros(T, dtype=torch.float64), torch.zeros(T, dtype=torch.float64)
        windows = sliding_windows(series, W, stride)
        starts = torch.arange(0, T - W + 1, stride)
        for xb, sb in zip(windows.split(batch_size), starts.split(batch_size), strict=True):
            err = (self(xb) - xb).pow(2).mean(-1).double().cpu()  # (n, W)
            index = (sb[:, None] + torch.arange(W)).flatten()
            total.index_add_(0, index, err.flatten())
            count.index_add_(0, index, torch.ones(index.numel(), dtype=torch.float64))
        return torch.where(count > 0, total / count.clamp_min(1), float("nan")).float()
