"""rnnlab.fit: arrays, ragged lists and Datasets in; the task read from y; the validation split,
restore-best and checkpoints of the one loop; the weights move only through the update path
(a non-finite loss stops it)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import rnnlab
from rnnlab.models.autoencoders import LSTMAutoencoder
from rnnlab.models.classifiers import SequenceClassifier
from rnnlab.training.api import evaluate_arrays


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6, 2)).astype(np.float32)
    return x, (x[:, :, 0].mean(1) > 0).astype(np.int64)


def test_fit_classifies_arrays_and_reports_per_epoch(tmp_path):
    torch.manual_seed(0)
    x, y = _data()
    model = SequenceClassifier("gru", 2, 8, 2)
    history = rnnlab.fit(model, x, y, epochs=3, val_split=0.25, lr=1e-2, progress=False,
                         log=None, checkpoint_dir=tmp_path)  # fmt: skip
    assert len(history["val_accuracy"]) == 3 and len(history["train_loss"]) == 3
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert (history.run / "checkpoints" / "best.pt").is_file()
    assert not model.training
    metrics = evaluate_arrays(model, x, y)
    assert set(metrics) == {"loss", "accuracy"}


def test_the_validation_split_is_held_out_of_training():
    seen = []

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Linear(1, 2)

        def forward(self, x):
            if self.training:
                seen.extend(x[:, 0].tolist())
            return self.w(x)

    x = torch.arange(20.0)[:, None]
    rnnlab.fit(Spy(), x, torch.zeros(20, dtype=torch.long), epochs=1, val_split=0.25,
               progress=False, log=None)  # fmt: skip
    assert len(seen) == 15 and len(set(seen)) == 15  # 5 examples never trained on


def test_ragged_lists_and_datasets_become_lengths():
    rng = np.random.default_rng(1)
    seqs = [rng.normal(size=(n, 3)).astype(np.float32) for n in (4, 7, 5, 6) * 4]
    history = rnnlab.fit(LSTMAutoencoder(3, 8, 2), seqs, epochs=1, progress=False, log=None)
    assert history["val_loss"]

    class Items(torch.utils.data.Dataset):
        def __len__(self):
            return 16

        def __getitem__(self, i):
            return torch.ones(5, 2) * (i % 2), i % 2

    model = SequenceClassifier("lstm", 2, 4, 2)
    history = rnnlab.fit(model, Items(), epochs=2, val_split=0.0, progress=False, log=None)
    assert len(history["train_accuracy"]) == 2


def test_float_y_regresses_and_bad_input_is_refused():
    x = torch.randn(32, 4)
    history = rnnlab.fit(nn.Linear(4, 1), x, x.sum(1, keepdim=True), epochs=2, progress=False,
                         log=None)  # fmt: skip
    assert "train_accuracy" not in history.records[0]
    with pytest.raises(ValueError, match="`y` must have one entry per example"):
        rnnlab.fit(nn.Linear(4, 1), x, torch.zeros(3), log=None)
    with pytest.raises(ValueError, match="NaN or inf"):
        rnnlab.fit(nn.Linear(4, 1), x * float("nan"), torch.zeros(32), log=None)
    with pytest.raises(ValueError, match="`task` must be one of classify, regress, reconstruct"):
        rnnlab.fit(nn.Linear(4, 1), x, task="cluster", log=None)


def test_a_non_finite_loss_stops_without_stepping():
    from rnnlab.training.loop import TrainingStopped

    model = nn.Linear(4, 1)
    before = [p.detach().clone() for p in model.parameters()]
    x = torch.randn(16, 4)
    with pytest.raises(TrainingStopped):
        rnnlab.fit(model, x, torch.full((16, 1), float("inf")), epochs=1, progress=False, log=None)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
