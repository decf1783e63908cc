"""The generated sequence-anomaly task: shapes, determinism, labels and each injected kind."""

import pytest
import torch

from rnnlab.data.anomalies import ANOMALY_KINDS, KIND_NAMES, sequence_anomalies


def test_shapes_labels_and_determinism():
    x, kind, window = sequence_anomalies(30, 64, 0.6, seed=3)
    assert x.shape == (30, 64, 1) and kind.shape == (30,) and window.shape == (30, 2)
    assert (kind > 0).sum() == 18
    assert set(kind.tolist()) == {0, 1, 2, 3}
    assert (window[kind == 0] == 0).all()
    starts, stops = window[kind > 0].T
    assert ((stops - starts) >= 16).all() and ((stops - starts) <= 32).all() and (stops <= 64).all()
    x2, kind2, window2 = sequence_anomalies(30, 64, 0.6, seed=3)
    assert torch.equal(x, x2) and torch.equal(kind, kind2) and torch.equal(window, window2)
    assert not torch.equal(x, sequence_anomalies(30, 64, 0.6, seed=4)[0])
    assert KIND_NAMES[0] == "normal" and KIND_NAMES[1:] == ANOMALY_KINDS


def _noise_free(kinds, **kw):
    return sequence_anomalies(40, 64, 1.0, kinds, noise=1e-9, seed=5, **kw)


def test_each_kind_changes_only_its_window():
    for name in ANOMALY_KINDS:
        x, kind, window = _noise_free((name,), shift_size=0.75)
        assert (kind == ANOMALY_KINDS.index(name) + 1).all()
        # the same series without the event: same seed, only normal rows (same draws)
        base, _, _ = sequence_anomalies(40, 64, 1.0, (name,), noise=1e-9, seed=5, shift_size=1e-9,
                                        spike_size=1e-9, freq_factor=1.0 + 1e-9)  # fmt: skip
        diff = (x - base).abs()[..., 0] > 1e-4
        t = torch.arange(64)
        inside = (t >= window[:, :1]) & (t < window[:, 1:])
        before = t < window[:, :1]
        # nothing changes before the window; only a frequency change leaves a phase offset after
        assert not (diff & (before if name == "frequency" else ~inside)).any(), name
        assert diff.any(dim=1).all(), name  # every anomalous series changes
        if name == "level_shift":
            shift = (x - base).abs()[..., 0][inside]
            torch.testing.assert_close(shift, torch.full_like(shift, 0.75), atol=1e-4, rtol=0)
        if name == "spike":
            assert (diff.sum(dim=1) <= 3).all()


def test_only_normal_and_bad_arguments():
    _, kind, _ = sequence_anomalies(10, 32, 0.0)
    assert (kind == 0).all()
    with pytest.raises(ValueError, match="anomaly_fraction"):
        sequence_anomalies(10, 32, 1.5)
    with pytest.raises(ValueError, match="kinds"):
        sequence_anomalies(10, 32, 0.5, ("drift",))
    with pytest.raises(ValueError, match="steps"):
        sequence_anomalies(10, 8)
    with pytest.raises(ValueError, match="freq_factor"):
        sequence_anomalies(10, 32, freq_factor=0.5)
    with pytest.raises(ValueError, match="noise"):
        sequence_anomalies(10, 32, noise=-1.0)
