"""Reconstruction-error anomaly scores, one-class AUROC and FPR thresholds."""

import pytest
import torch

from rnnlab.evaluation.anomaly import (
    detect,
    fit_threshold,
    one_class_auroc,
    reconstruction_scores,
    threshold_at_fpr,
)
from rnnlab.models.autoencoders import (
    DenoisingAutoencoder,
    LinearAutoencoder,
    LSTMAutoencoder,
    train_autoencoder,
)


def subspace_data(n, d=10, rank=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(d, rank, generator=torch.Generator().manual_seed(99)))
    return torch.randn(n, rank, generator=g) @ basis.T * 2 + 0.01 * torch.randn(n, d, generator=g)


def test_auroc_near_one_on_off_subspace_anomalies():
    model = LinearAutoencoder(10, 2)
    train_autoencoder(model, subspace_data(200), epochs=150, batch_size=50, lr=0.03)
    normal = subspace_data(100, seed=1)
    anomalous = normal + torch.randn(100, 10, generator=torch.Generator().manual_seed(2))
    assert one_class_auroc(model, normal, anomalous) > 0.99
    t = fit_threshold(model, subspace_data(200, seed=3), fpr=0.05)
    assert detect(model, anomalous, t).float().mean() > 0.95
    assert detect(model, normal, t).float().mean() < 0.15


def test_scores_in_eval_mode_and_mode_restored():
    model = DenoisingAutoencoder(10, 3, noise_level=1.0)
    model.train()
    x = torch.rand(7, 10)
    s1, s2 = reconstruction_scores(model, x), reconstruction_scores(model, x, batch_size=3)
    torch.testing.assert_close(s1, s2)
    assert s1.shape == (7,) and model.training
    model.eval()
    torch.testing.assert_close(s1, (model(x) - x).pow(2).mean(dim=1))


def test_plain_module_and_sequence_model_scores():
    net = torch.nn.Linear(4, 4)
    x = torch.rand(5, 4)
    torch.testing.assert_close(reconstruction_scores(net, x), (net(x) - x).pow(2).mean(dim=1))
    seq = LSTMAutoencoder(3, 4, 2)
    assert reconstruction_scores(seq, torch.rand(5, 6, 3)).shape == (5,)


def test_threshold_at_fpr():
    scores = torch.arange(1.0, 101.0)  # 1..100
    t = threshold_at_fpr(scores, 0.05)
    assert (scores > t).sum() == 5
    assert (scores > threshold_at_fpr(scores, 0.0)).sum() == 0
    with pytest.raises(ValueError, match="fpr"):
        threshold_at_fpr(scores, 1.0)
    with pytest.raises(ValueError, match="normal_scores"):
        threshold_at_fpr(scores[None], 0.1)
