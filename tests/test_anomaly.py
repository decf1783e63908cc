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


def test_auroc_and_pr_auc_match_sklearn_and_reject_bad_labels():
    from sklearn.metrics import average_precision_score, roc_auc_score

    from rnnlab.evaluation.anomaly import auroc, pr_auc

    g = torch.Generator().manual_seed(0)
    scores = torch.rand(50, generator=g)
    labels = torch.rand(50, generator=g) < 0.3
    assert auroc(scores, labels) == pytest.approx(roc_auc_score(labels.numpy(), scores.numpy()))
    assert pr_auc(scores, labels) == pytest.approx(
        average_precision_score(labels.numpy(), scores.numpy())
    )
    assert auroc(labels.float(), labels) == 1.0 and pr_auc(labels.float(), labels) == 1.0
    with pytest.raises(ValueError, match="both normal"):
        auroc(scores, torch.zeros(50, dtype=torch.bool))
    with pytest.raises(ValueError, match="one length"):
        pr_auc(scores[:3], labels)
    with pytest.raises(ValueError, match="finite"):
        auroc(torch.full((50,), float("nan")), labels)


def test_one_class_protocol_trains_one_model_per_class():
    from rnnlab.evaluation.anomaly import one_class_protocol

    g = torch.Generator().manual_seed(0)
    # three classes, each a 2-d subspace of R^10: an AE fitted on one class flags the others
    bases = [torch.linalg.qr(torch.randn(10, 2, generator=g))[0] for _ in range(3)]

    def draw(n):
        y = torch.arange(n) % 3
        x = torch.stack([bases[c] @ torch.randn(2, generator=g) * 2 for c in y.tolist()])
        return x, y

    (x_train, y_train), (x_test, y_test) = draw(150), draw(60)
    seen = []

    def make_model(c):
        seen.append(c)
        return LinearAutoencoder(10, 2)

    def train_fn(model, x):
        assert len(x) == 50
        train_autoencoder(model, x, epochs=100, batch_size=50, lr=0.05)

    result = one_class_protocol(make_model, train_fn, x_train, y_train, x_test, y_test)
    assert seen == [0, 1, 2] and set(result["per_class"]) == {0, 1, 2}
    for r in result["per_class"].values():
        assert r["auroc"] > 0.95 and r["pr_auc"] > 0.95 and r["n_train"] == 50
    assert result["mean_auroc"] == pytest.approx(
        sum(r["auroc"] for r in result["per_class"].values()) / 3
    )
    with pytest.raises(ValueError, match="pair up"):
        one_class_protocol(make_model, train_fn, x_train, y_train[:-1], x_test, y_test)
    with pytest.raises(ValueError, match="no training images"):
        one_class_protocol(make_model, train_fn, x_train, y_train, x_test, y_test, classes=[7])
