"""One-class anomaly detection by reconstruction error (the chapter's AE use case; the score
PyOD's ``AutoEncoder`` uses, and the DCAE baseline of Ruff et al. 2018).

Score of an example: its mean reconstruction error
:math:`s(x) = \\frac1D \\sum_i \\ell(\\hat x_i, x_i)` (squared error, or the model's own
``per_example_error`` when it has one, e.g. BCE models). A threshold chosen on normal data at
false-positive rate α is the smallest ``t`` with :math:`\\#\\{s > t\\} \\le \\alpha N`.
AUROC treats anomalies as the positive class (``sklearn.metrics.roc_auc_score``).
"""

from __future__ import annotations

import math

import torch
from sklearn.metrics import roc_auc_score
from torch import Tensor, nn


@torch.no_grad()
def reconstruction_scores(model: nn.Module, x: Tensor, batch_size: int = 1024) -> Tensor:
    """Per-example reconstruction error ``(N,)`` in eval mode (no noise, no dropout)."""
    if x.dim() < 2 or len(x) == 0:
        raise ValueError(f"`x` must be a non-empty batch (N, ...); got shape {tuple(x.shape)}")
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1; got {batch_size}")
    was_training = model.training
    model.eval()
    try:
        scores = []
        for xb in x.split(batch_size):
            if hasattr(model, "per_example_error"):
                scores.append(model.per_example_error(xb))
            else:
                scores.append((model(xb) - xb).pow(2).reshape(len(xb), -1).mean(dim=1))
    finally:
        model.train(was_training)
    return torch.cat(scores)


def one_class_auroc(model: nn.Module, x_normal_test: Tensor, x_anomalous_test: Tensor) -> float:
    """Area under the ROC curve separating anomalies (positive) from normal test data."""
    s_normal = reconstruction_scores(model, x_normal_test)
    s_anomal = reconstruction_scores(model, x_anomalous_test)
    labels = [0] * len(s_normal) + [1] * len(s_anomal)
    scores = torch.cat([s_normal, s_anomal]).double().cpu().numpy()
    return float(roc_auc_score(labels, scores))


def threshold_at_fpr(normal_scores: Tensor, fpr: float) -> float:
    """Threshold ``t`` on scores of normal data so that at most ``fpr`` of them exceed it
    (flag ``score > t``)."""
    if not 0.0 <= fpr < 1.0:
        raise ValueError(f"`fpr` must be in [0, 1); got {fpr}")
    if normal_scores.dim() != 1 or len(normal_scores) == 0:
        raise ValueError(
            f"`normal_scores` must be a non-empty 1-D tensor; got {tuple(normal_scores.shape)}"
        )
    ordered = normal_scores.sort().values
    allowed = math.floor(fpr * len(ordered) + 1e-9)  # how many normal points may exceed t
    return float(ordered[len(ordered) - 1 - allowed])


def fit_threshold(model: nn.Module, x_normal: Tensor, fpr: float = 0.05) -> float:
    """Threshold at false-positive rate ``fpr`` from held-out normal data."""
    return threshold_at_fpr(reconstruction_scores(model, x_normal), fpr)


def detect(model: nn.Module, x: Tensor, threshold: float) -> Tensor:
    """Boolean ``(N,)``: True where the reconstruction error exceeds ``threshold``."""
    return reconstruction_scores(model, x) > threshold
