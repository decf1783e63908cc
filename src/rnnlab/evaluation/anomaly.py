"""One-class anomaly detection by reconstruction error (the chapter's AE use case; the score
PyOD's ``AutoEncoder`` uses, and the DCAE baseline of Ruff et al. 2018).

Score of an example: its mean reconstruction error
:math:`s(x) = \\frac1D \\sum_i \\ell(\\hat x_i, x_i)` (squared error, or the model's own
``per_example_error`` when it has one, e.g. BCE models). A threshold chosen on normal data at
false-positive rate α is the smallest ``t`` with :math:`\\#\\{s > t\\} \\le \\alpha N`.
AUROC treats anomalies as the positive class (``sklearn.metrics.roc_auc_score``); PR-AUC is
the average precision with anomalies positive (``sklearn.metrics.average_precision_score``),
whose chance level is the anomaly fraction.

:func:`one_class_protocol` is the protocol of Ruff et al. 2018 (Deep SVDD, ICML), also used by
Abati et al. 2019 and Perera et al. 2019 (OCGAN): for each class ``c`` train a fresh model on
the training images of class ``c`` only, score the whole test set, and report AUROC (and
PR-AUC) with the test images of every other class as anomalies.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import torch
from sklearn.metrics import average_precision_score, roc_auc_score
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


def _check_scores(scores: Tensor, is_anomaly: Tensor) -> tuple:
    scores, is_anomaly = torch.as_tensor(scores), torch.as_tensor(is_anomaly)
    if scores.dim() != 1 or scores.shape != is_anomaly.shape:
        raise ValueError(
            f"`scores` and `is_anomaly` must be 1-D of one length; got {tuple(scores.shape)} "
            f"and {tuple(is_anomaly.shape)}"
        )
    labels = is_anomaly.bool()
    if labels.all() or not labels.any():
        raise ValueError("`is_anomaly` must hold both normal (False) and anomalous (True) rows")
    if not torch.isfinite(scores.double()).all():
        raise ValueError("`scores` must be finite")
    return scores.double().cpu().numpy(), labels.cpu().numpy()


def auroc(scores: Tensor, is_anomaly: Tensor) -> float:
    """ROC-AUC of ``scores`` (higher = more anomalous) against boolean ``is_anomaly``."""
    s, y = _check_scores(scores, is_anomaly)
    return float(roc_auc_score(y, s))


def pr_auc(scores: Tensor, is_anomaly: Tensor) -> float:
    """Area under the precision-recall curve (average precision), anomalies positive."""
    s, y = _check_scores(scores, is_anomaly)
    return float(average_precision_score(y, s))


def one_class_auroc(model: nn.Module, x_normal_test: Tensor, x_anomalous_test: Tensor) -> float:
    """Area under the ROC curve separating anomalies (positive) from normal test data."""
    s_normal = reconstruction_scores(model, x_normal_test)
    s_anomal = reconstruction_scores(model, x_anomalous_test)
    labels = torch.cat([torch.zeros(len(s_normal)), torch.ones(len(s_anomal))]).bool()
    return auroc(torch.cat([s_normal, s_anomal]), labels)


def one_class_protocol(
    make_model: Callable[[int], nn.Module],
    train_fn: Callable[[nn.Module, Tensor], object],
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    y_test: Tensor,
    classes: Sequence[int] | None = None,
    score_fn: Callable[[nn.Module, Tensor], Tensor] = reconstruction_scores,
) -> dict:
    """Ruff et al. 2018's one-class protocol with a reconstruction-error detector.

    For each class ``c`` (default: every label in ``y_test``): ``model = make_model(c)``,
    ``train_fn(model, x_train[y_train == c])``, then ``score_fn(model, x_test)`` scores the
    whole test set with class ``c`` normal and the rest anomalous. Returns ``{"per_class":
    {c: {"auroc", "pr_auc", "n_train", "seconds"}}, "mean_auroc", "mean_pr_auc"}``.
    """
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise ValueError(
            f"images and labels must pair up; got {len(x_train)}/{len(y_train)} train and "
            f"{len(x_test)}/{len(y_test)} test"
        )
    classes = sorted(set(y_test.tolist())) if classes is None else list(classes)
    per_class = {}
    for c in classes:
        normal_train = x_train[y_train == c]
        if len(normal_train) == 0:
            raise ValueError(f"class {c} has no training images")
        t0 = time.perf_counter()
        model = make_model(c)
        train_fn(model, normal_train)
        scores = score_fn(model, x_test)
        is_anomaly = y_test != c
        per_class[c] = {
            "auroc": auroc(scores, is_anomaly),
            "pr_auc": pr_auc(scores, is_anomaly),
            "n_train": len(normal_train),
            "seconds": time.perf_counter() - t0,
        }
    n = len(per_class)
    return {
        "per_class": per_class,
        "mean_auroc": sum(r["auroc"] for r in per_class.values()) / n,
        "mean_pr_auc": sum(r["pr_auc"] for r in per_class.values()) / n,
    }


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
