"""forecast: multi-step forecasting of one series in a CSV (ETTh1-style: a time column and
numeric channels), the Informer protocol (Zhou et al. 2021).

``data.target`` names the target column(s); ``data.inputs`` the input columns ('' = the
targets only, Informer's univariate "S" setting; ``all`` = every numeric column). Rows are
split chronologically (``data.split``: Informer's ETTh1 borders, or ``TRAIN,VAL`` fractions);
one standard scaler per channel is fit on the training rows only and saved in the run's
``data.json``. Windows (:func:`rnnlab.data.windows.forecast_windows`) read ``data.input_len``
steps and predict the next ``data.horizon`` steps; a split's windows have their targets inside
it. A batch is ``(x (B, L, n_inputs), y (B, H, n_targets))``, both scaled.

Kinds: ``lstm``, ``gru`` (:class:`~rnnlab.models.forecasters.Seq2VecForecaster`),
``seq2seq-lstm``, ``seq2seq-gru`` (:class:`~rnnlab.models.forecasters.Seq2SeqForecaster`,
``model.teacher_forcing``). ``model.residual`` predicts the change from the last observed
value. The loss is the MSE on scaled values; after training the test split is scored in
scaled units (Informer's MSE / MAE) and in the data's units, beside the persistence and
seasonal-naive (``data.season``) baselines on the same windows.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from rnnlab.data.files import read_series
from rnnlab.data.records import DataFileError
from rnnlab.data.windows import (
    INFORMER_ETTH1_SPLIT,
    Scaler,
    forecast_windows,
    persistence_forecast,
    seasonal_naive_forecast,
    split_rows,
)
from rnnlab.models.forecasters import Seq2SeqForecaster, Seq2VecForecaster

from ..config import Config, ConfigError, copy_config
from ..update import Update
from . import Data, DataSpec, StepContext, keyset
from ._common import DataError
from ._files import file_family, fill_rule, synthetic_series, training_scaler

__all__ = [
    "FAMILY",
    "forecast_eval",
    "forecast_metrics",
    "forecast_step",
    "series_split",
]

KINDS = ("lstm", "gru", "seq2seq-lstm", "seq2seq-gru")
DRY_RUN = 64  # windows per split with --dry-run


def _names(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def series_split(cfg: Config, n_rows: int) -> tuple[tuple[int, int], ...]:
    """``(train, val, test)`` row ranges of ``data.split`` for a series of ``n_rows``."""
    split = cfg.data.split
    if split == "informer":
        need = INFORMER_ETTH1_SPLIT[-1][1]
        if n_rows < need:
            raise DataFileError(
                f"{cfg.data.path}: expected at least {need} rows for data.split=informer "
                f"(ETTh1's borders), got {n_rows}; set data.split to fractions such as 0.7,0.1"
            )
        return INFORMER_ETTH1_SPLIT
    try:
        a, b = (float(v) for v in split.split(","))
    except ValueError:
        a = b = -1.0
    if not (0 < a < 1 and 0 <= b < 1 and a + b < 1):
        raise ConfigError(f"`data.split` must be informer or TRAIN,VAL fractions summing below "
                          f"1 (e.g. 0.7,0.1), got {split!r}")  # fmt: skip
    return split_rows(n_rows, (a, b))


def build_data(cfg: Config, dry_run: bool) -> Data:
    d = cfg.data
    if dry_run and not d.path:  # sizes only (summary, tests): a stand-in, nothing is read
        names = list(dict.fromkeys(_names(d.target) + _names(d.inputs))) or ["value"]
        series = synthetic_series(INFORMER_ETTH1_SPLIT[-1][1], names)
        cfg = copy_config(cfg)
        cfg.data.target = cfg.data.target or names[0]
        d = cfg.data
    elif not d.path or not d.target:
        raise DataError(
            "family forecast needs `data.path` (the series CSV) and `data.target` "
            f"(the column(s) to forecast), got {d.path!r} and {d.target!r}"
        )
    else:
        series = read_series(d.path, time_column=d.time_column or None, fill=fill_rule(cfg))
    targets = _names(d.target)
    inputs = series.channels if d.inputs == "all" else (_names(d.inputs) or targets)
    missing = [t for t in targets if t not in inputs]
    if missing:
        raise ConfigError(f"`data.inputs` must include the target(s) {', '.join(missing)}, "
                          f"got {d.inputs!r}")  # fmt: skip
    columns = [series.column(c) for c in inputs]  # raises naming the columns there are
    for t in targets:
        series.column(t)
    values = series.values[:, columns]  # (T, n_inputs)
    target_in_input = [inputs.index(t) for t in targets]
    ranges = series_split(cfg, len(values))
    scaler = training_scaler(cfg, lambda: Scaler.fit(values[ranges[0][0] : ranges[0][1]]))
    scaled = scaler.transform(values)
    splits = []
    for name, (start, stop) in zip(("train", "val", "test"), ranges, strict=True):
        try:
            x, y, _ = forecast_windows(scaled, d.input_len, d.horizon, target_in_input,
                                       start=start, stop=stop)  # fmt: skip
        except ValueError as e:
            raise DataFileError(f"{d.path}, {name} rows [{start}, {stop}): {e}") from None
        splits.append((x[:DRY_RUN], y[:DRY_RUN]) if dry_run else (x, y))
    info = {
        "family": "forecast", "channels": inputs, "targets": targets,
        "target_in_input": target_in_input, "scaler": scaler.to_dict(),
        "input_len": d.input_len, "horizon": d.horizon, "split": [list(r) for r in ranges],
    }  # fmt: skip
    source = (
        f"{series.source}: {len(values)} rows, windows train/val/test "
        f"{'/'.join(str(len(s[0])) for s in splits)}, L={d.input_len}, H={d.horizon}"
    )
    return Data(splits[0], splits[1] if len(splits[1][0]) else None, splits[2], 0, source, info)


def build_model(cfg: Config, spec: DataSpec) -> nn.Module:
    m, info = cfg.model, spec.info  # info: data.json's, or (a bare example) from cfg
    k = len(info.get("targets", _names(cfg.data.target))) or 1
    n_in, horizon = spec.example.shape[-1], info.get("horizon", cfg.data.horizon)
    info = {"target_in_input": list(range(k))} | info
    if m.kind.startswith("seq2seq-"):
        return Seq2SeqForecaster(
            m.kind.split("-", 1)[1], n_in, m.hidden_size, horizon, k,
            target_in_input=info["target_in_input"], teacher_forcing=m.teacher_forcing,
            residual=m.residual, implementation=m.implementation,
        )  # fmt: skip
    return Seq2VecForecaster(
        m.kind, n_in, m.hidden_size, horizon, k, num_layers=m.num_layers, dropout=m.dropout,
        layer_dropout=m.layer_dropout, residual=m.residual,
        target_in_input=info["target_in_input"], implementation=m.implementation,
    )  # fmt: skip


def _predict(model: nn.Module, x, y=None):
    if y is not None and getattr(model, "teacher_forcing", 0) > 0:
        return model(x, None, y)
    return model(x)


def forecast_step(model: nn.Module, batch, optimizer, *, update: Update | None = None) -> dict:
    """One MSE update on scaled values (teacher forcing for a seq2seq model in training)."""
    update = update or Update()
    x, y = batch[0], batch[1]
    model.train()
    with update.autocast():
        loss = F.mse_loss(_predict(model, x, y).float(), y)
    return {"loss": loss.item(), **update(loss, model, optimizer)}


@torch.no_grad()
def forecast_eval(model: nn.Module, batch) -> dict[str, float]:
    """``loss`` (MSE) and ``mae`` on scaled values, in eval mode."""
    x, y = batch[0], batch[1]
    model.eval()
    pred = model(x)
    return {"loss": F.mse_loss(pred, y).item(), "mae": (pred - y).abs().mean().item()}


def steps(cfg: Config, ctx: StepContext):
    return ctx.bind(forecast_step, forecast_eval)


def forecast_metrics(pred, y, scaler: Scaler, targets_in_input, prefix: str) -> dict[str, float]:
    """MSE / MAE of ``pred`` against ``y`` (both scaled), scaled and in the data's units."""
    back = functools.partial(scaler.inverse, channels=targets_in_input)
    err, err_units = pred - y, back(pred) - back(y)
    return {
        f"{prefix}mse": err.pow(2).mean().item(), f"{prefix}mae": err.abs().mean().item(),
        f"{prefix}mse_units": err_units.pow(2).mean().item(),
        f"{prefix}mae_units": err_units.abs().mean().item(),
    }  # fmt: skip


@torch.no_grad()
def finish(cfg: Config, model: nn.Module, test_batches, device, dry_run: bool) -> dict:
    """Test MSE / MAE (scaled and in units) beside the persistence and seasonal-naive
    baselines of the same windows."""
    data = build_data(cfg, dry_run)
    info = data.info
    scaler, t_in = Scaler.from_dict(info["scaler"]), info["target_in_input"]
    model.eval()
    preds, xs, ys = [], [], []
    for x, y in test_batches:
        preds.append(model(x.to(device)).cpu())
        xs.append(x)
        ys.append(y)
    pred, x, y = torch.cat(preds), torch.cat(xs), torch.cat(ys)
    h = y.shape[1]
    out = forecast_metrics(pred, y, scaler, t_in, "test_")
    out |= forecast_metrics(persistence_forecast(x, h, t_in), y, scaler, t_in, "test_persistence_")
    if cfg.data.season <= x.shape[1]:
        naive = seasonal_naive_forecast(x, h, cfg.data.season, t_in)
        out |= forecast_metrics(naive, y, scaler, t_in, "test_seasonal_")
    return out


FAMILY = file_family(
    keyset(
        "data.path data.target data.inputs data.input_len data.horizon data.split data.season "
        "model.hidden_size model.num_layers model.dropout model.layer_dropout "
        "model.implementation model.teacher_forcing model.residual"
    ),
    name="forecast",
    description="multi-step forecasting of a series CSV (Informer protocol): seq2vec or "
    "seq2seq LSTM/GRU, persistence and seasonal-naive baselines",
    kinds=KINDS,
    build_data=build_data,
    build_model=build_model,
    steps=steps,
    finish=finish,
)
