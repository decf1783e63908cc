"""Forecast windows, baselines, scaler, forecasters and series anomaly detectors: invariants and
hand-computed tiny cases."""

from __future__ import annotations

import pytest
import torch

from rnnlab.data.anomaly_windows import (
    alarm_runs,
    detection_metrics,
    probationary_threshold,
    window_labels,
)
from rnnlab.data.windows import (
    Scaler,
    forecast_windows,
    persistence_forecast,
    seasonal_naive_forecast,
    split_rows,
)
from rnnlab.models.forecasters import (
    ForecastErrorDetector,
    Seq2SeqForecaster,
    Seq2VecForecaster,
    WindowAutoencoderDetector,
    sliding_windows,
)


def _series(T=30, C=2) -> torch.Tensor:
    """Row t holds t (channel 0) and 100 + t (channel 1): each value names its row."""
    t = torch.arange(T, dtype=torch.float32)
    return torch.stack([t, 100 + t], dim=1)[:, :C]


def test_windows_never_put_a_target_step_into_the_input():
    s = _series()
    x, y, t0 = forecast_windows(s, input_len=5, horizon=3, targets=[1], start=10, stop=25)
    assert x.shape == (len(t0), 5, 2) and y.shape == (len(t0), 3, 1)
    assert x[..., 0].max(1).values.lt(y[..., 0].min(1).values - 100).all()  # inputs < targets
    assert (x[:, -1, 0] + 1 == t0).all() and (y[:, 0, 0] - 100 == t0).all()  # contiguous
    assert t0.min() == 10 and (t0 + 3).max() == 25  # targets inside [start, stop)
    assert x[0, 0, 0] == 5  # the first input reaches back before `start`


def test_a_horizon_longer_than_the_series_is_refused():
    with pytest.raises(ValueError, match="`horizon` 40 with `input_len` 5 needs more rows"):
        forecast_windows(_series(30), 5, 40, [0])


def test_persistence_and_seasonal_naive_by_hand():
    x = torch.tensor([[1.0, 2, 3, 4, 5]])[..., None]  # one window, y_T = 5
    assert persistence_forecast(x, 3, [0])[0, :, 0].tolist() == [5, 5, 5]
    # season 2: y_{T+1} = y_{T-1} = 4, y_{T+2} = y_T = 5, y_{T+3} = y_{T-1} = 4
    assert seasonal_naive_forecast(x, 3, 2, [0])[0, :, 0].tolist() == [4, 5, 4]
    assert seasonal_naive_forecast(x, 2, 5, [0])[0, :, 0].tolist() == [1, 2]
    with pytest.raises(ValueError, match="season"):
        seasonal_naive_forecast(x, 2, 6, [0])


def test_scaler_statistics_come_from_the_training_part_only():
    train = torch.tensor([[0.0], [2.0]])
    scaler = Scaler.fit(train)
    assert scaler.mean == [1.0] and scaler.std == [1.0]
    shifted_test = train + 50
    assert Scaler.from_dict(scaler.to_dict()).transform(shifted_test)[:, 0].tolist() == [49, 51]
    assert torch.allclose(scaler.inverse(scaler.transform(shifted_test)), shifted_test)
    assert Scaler.fit(torch.ones(3, 1)).std == [1.0]  # constant channel: std 1, not 0


def test_split_rows_is_chronological():
    assert split_rows(100, (0.7, 0.1)) == ((0, 70), (70, 80), (80, 100))


def test_window_labels_and_sliding_windows():
    time = ["2020-01-01 00:00:00", "2020-01-01 01:00:00", "2020-01-01 02:00:00"]
    windows = [["2020-01-01 01:00:00.000000", "2020-01-01 01:30:00.000000"]]
    assert window_labels(time, windows).tolist() == [False, True, False]
    w = sliding_windows(_series(6, 1), 4, 2)
    assert w.shape == (2, 4, 1) and w[1, :, 0].tolist() == [2, 3, 4, 5]


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_seq2vec_residual_starts_at_persistence(kind):
    torch.manual_seed(0)
    model = Seq2VecForecaster(kind, 2, 8, horizon=4, n_targets=1, residual=True,
                              target_in_input=[1])  # fmt: skip
    torch.nn.init.zeros_(model.head.weight), torch.nn.init.zeros_(model.head.bias)
    x, _, _ = forecast_windows(_series(), 6, 4, [1])
    assert torch.equal(model(x), persistence_forecast(x, 4, [1]))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_seq2seq_shapes_and_teacher_forcing(kind):
    torch.manual_seed(0)
    x, y, _ = forecast_windows(_series(), 6, 3, [0])
    model = Seq2SeqForecaster(kind, 2, 8, 3, 1, target_in_input=[0], teacher_forcing=1.0)
    model.train()
    forced = model(x, y=y)
    free = model(x)
    assert forced.shape == free.shape == y.shape
    assert torch.equal(forced[:, 0], free[:, 0])  # step 1 reads y_T either way
    assert not torch.allclose(forced[:, 1:], free[:, 1:])  # later steps read the true y
    model.eval()
    assert torch.equal(model(x, y=y), free)  # never forced in eval mode
    with pytest.raises(ValueError, match="target_in_input"):
        Seq2SeqForecaster(kind, 2, 8, 3, 1)


def test_forecast_error_scores_are_one_step_absolute_errors():
    torch.manual_seed(0)
    s = torch.randn(20, 2)
    det = ForecastErrorDetector("lstm", 2, 4, input_len=5)
    scores = det.scores(s, batch_size=4)
    assert scores.shape == (20,) and scores[:5].isnan().all()
    with torch.no_grad():
        want = (det(s[7:12][None])[0, 0] - s[12]).abs().mean()
    assert torch.allclose(scores[12], want)


def test_window_autoencoder_scores_average_the_windows_holding_a_step():
    torch.manual_seed(0)
    s = torch.randn(12, 1)
    det = WindowAutoencoderDetector(1, 4, 2, width=4)
    scores = det.scores(s, batch_size=3)
    with torch.no_grad():
        w = sliding_windows(s, 4)
        err = (det(w) - w).pow(2)[..., 0]  # (9, 4)
    assert torch.allclose(scores[0], err[0, 0])
    assert torch.allclose(scores[5], torch.stack([err[i, 5 - i] for i in range(2, 6)]).mean())


def test_the_threshold_reads_no_step_after_the_probationary_part():
    scores = torch.cat([torch.arange(100.0) % 7, torch.full((900,), float("nan"))])
    t = probationary_threshold(scores, 0.1, k=2.0)  # NaN after step 100 would poison it
    changed = scores.clone()
    changed[100:] = 1e6
    assert probationary_threshold(changed, 0.1, k=2.0) == t
    head = scores[:100].double()
    mad = (head - head.median()).abs().median()
    assert t == pytest.approx(float(head.median() + 2 * 1.4826 * mad))


def test_detection_metrics_by_hand():
    time = [f"2020-01-0{1 + i // 24} {i % 24:02d}:00:00" for i in range(48)]  # two days
    labels = torch.zeros(48, dtype=torch.bool)
    labels[10:15] = labels[30:35] = True
    scores = torch.zeros(48)
    scores[12] = scores[20] = scores[21] = scores[40] = 5.0  # hit window 1; two false runs
    m = detection_metrics(scores, labels, threshold=1.0, time=time)
    assert m["windows"] == 2 and m["windows_detected"] == 1 and m["false_alarms"] == 2
    assert m["false_alarms_per_day"] == pytest.approx(2 / (47 / 24))
    assert alarm_runs(scores > 1) == [(12, 13), (20, 22), (40, 41)]
    assert 0.5 < m["point_auroc"] < 0.6


@pytest.mark.parametrize("kind", ["fcn", "lstm-fcn", "mlp", "encoder", "inception", "inception-1"])
@pytest.mark.parametrize("length", [7, 8])
def test_series_classifiers_ignore_padding(kind, length):
    from rnnlab.models.series_classifiers import FCN, LSTMFCN, MLP, Encoder, Inception

    torch.manual_seed(0)
    channels = 1 if kind == "inception-1" else 2  # univariate: no bottleneck
    model = {"fcn": lambda: FCN(2, 3), "lstm-fcn": lambda: LSTMFCN(2, 3),
             "mlp": lambda: MLP(2, 3, steps=13), "encoder": lambda: Encoder(2, 3),
             "inception": lambda: Inception(2, 3),
             "inception-1": lambda: Inception(1, 3)}[kind]().eval()  # fmt: skip
    with torch.no_grad():  # BatchNorm's running statistics away from 0 / 1, as after training
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-1, 1), m.running_var.uniform_(0.5, 2)
    x = torch.randn(1, length, channels)
    padded = torch.cat([x, 10 * torch.randn(1, 5, channels)], dim=1)  # garbage past the length
    with torch.no_grad():
        want = model(x)
        got = model(padded, torch.tensor([length]))
    assert got.shape == (1, 3) and torch.allclose(got, want, atol=1e-5)


def test_inception_is_ismail_fawaz_et_al():
    from rnnlab.models.series_classifiers import Inception

    model = Inception(3, 4)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv1d)]
    # 6 modules x (bottleneck, 3 kernels, pool branch) + 2 shortcuts, no biases (BatchNorm)
    assert len(convs) == 6 * 5 + 2 and all(c.bias is None for c in convs)
    assert sorted({c.kernel_size[0] for c in convs}) == [1, 10, 20, 40]
    assert {c.out_channels for c in convs} == {32, 128} and model.dense.in_features == 128
    uni = [m for m in Inception(1, 2).blocks[0].modules() if isinstance(m, torch.nn.Conv1d)]
    assert [c.in_channels for c in uni] == [1, 1, 1, 1]  # no bottleneck on one channel
    assert model(torch.randn(2, 50, 3)).shape == (2, 4)


def test_mlp_is_wang_et_al_and_refuses_longer_series():
    from rnnlab.models.series_classifiers import MLP

    model = MLP(3, 4, steps=10)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (30, 500), (500, 500), (500, 500), (500, 4)]  # fmt: skip
    drops = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops == [0.1, 0.2, 0.2, 0.3]
    with pytest.raises(ValueError, match=r"expected x of \(B, <= 10, 3\), got \(2, 11, 3\)"):
        model(torch.zeros(2, 11, 3))
