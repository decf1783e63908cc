r"""What a classifier's run folder holds besides its metrics: the test confusion matrix and
per-class precision, recall and F1, in the form of scikit-learn's ``confusion_matrix`` and
``classification_report`` (and checked against them in the tests).

For class ``c`` with ``M`` the confusion matrix (rows true class, columns predicted):

    precision_c = M[c, c] / sum_i M[i, c]      (of the examples predicted c, the right ones)
    recall_c    = M[c, c] / sum_j M[c, j]      (of the examples of class c, those found)
    F1_c        = 2 precision_c recall_c / (precision_c + recall_c)

with 0 where a denominator is 0 (scikit-learn's ``zero_division=0``); ``macro avg`` is the
unweighted mean over classes, ``weighted avg`` the mean weighted by support (true count).

:func:`write_classification` writes ``confusion.json`` (``{"labels": [names], "matrix":
[[..]]}``, what :mod:`rnnlab.evaluation.report` draws), ``confusion.png`` and
``classification_report.json`` into a folder, atomically, and returns the report's text.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from rnnlab.utils import atomic_write_bytes

__all__ = ["classification_report", "confusion_matrix", "format_report", "predict_classes",
           "write_classification"]  # fmt: skip


def confusion_matrix(y_true: Tensor, y_pred: Tensor, num_classes: int) -> Tensor:
    """``(num_classes, num_classes)`` int64 counts: ``M[i, j]`` = examples of class ``i``
    predicted as ``j``. Labels must lie in ``[0, num_classes)``."""
    y_true, y_pred = torch.as_tensor(y_true).long().cpu(), torch.as_tensor(y_pred).long().cpu()
    if y_true.shape != y_pred.shape or y_true.dim() != 1:
        raise ValueError(f"`y_true` and `y_pred` must be (N,) alike, got {tuple(y_true.shape)} "
                         f"and {tuple(y_pred.shape)}")  # fmt: skip
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
            raise ValueError(f"`{name}` must lie in [0, {num_classes}), got "
                             f"{int(y.min())}..{int(y.max())}")  # fmt: skip
    flat = torch.bincount(y_true * num_classes + y_pred, minlength=num_classes**2)
    return flat.reshape(num_classes, num_classes)


def _ratio(a: Tensor, b: Tensor) -> Tensor:
    return torch.where(b > 0, a / b.clamp(min=1), torch.zeros_like(a))


def classification_report(matrix: Tensor, class_names: Sequence[str]) -> dict:
    """Per-class ``precision``, ``recall``, ``f1`` and ``support`` from a confusion matrix,
    plus ``accuracy``, ``macro avg`` and ``weighted avg`` (scikit-learn's output dict)."""
    m = torch.as_tensor(matrix, dtype=torch.float64)
    if m.dim() != 2 or m.shape[0] != m.shape[1] or m.shape[0] != len(class_names):
        raise ValueError(f"`matrix` must be (n, n) with n = {len(class_names)} class names, "
                         f"got {tuple(m.shape)}")  # fmt: skip
    tp, support, predicted = m.diagonal(), m.sum(1), m.sum(0)
    precision, recall = _ratio(tp, predicted), _ratio(tp, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    out: dict = {}
    for k, name in enumerate(class_names):
        out[str(name)] = {"precision": float(precision[k]), "recall": float(recall[k]),
                          "f1": float(f1[k]), "support": int(support[k])}  # fmt: skip
    n = float(support.sum())
    out["accuracy"] = float(tp.sum() / n) if n else 0.0
    weights = support / n if n else support
    for avg, w in (("macro avg", torch.full_like(support, 1 / len(class_names))),
                   ("weighted avg", weights)):  # fmt: skip
        out[avg] = {"precision": float((precision * w).sum()), "recall": float((recall * w).sum()),
                    "f1": float((f1 * w).sum()), "support": int(n)}  # fmt: skip
    return out


def format_report(report: dict, digits: int = 3) -> str:
    """The report as a table, laid out like scikit-learn's ``classification_report``."""
    names = [k for k in report if k not in ("accuracy", "macro avg", "weighted avg")]
    width = max(len(n) for n in [*names, "weighted avg"])
    head = f"{'':>{width}}  precision  recall      f1  support"
    row = "{:>{w}}  {:>9.{d}f}  {:>6.{d}f}  {:>6.{d}f}  {:>7}".format
    lines = [head, ""]
    lines += [row(n, *(report[n][k] for k in ("precision", "recall", "f1")), report[n]["support"],
                  w=width, d=digits) for n in names]  # fmt: skip
    total = report["macro avg"]["support"]
    lines += ["", f"{'accuracy':>{width}}  {'':>9}  {'':>6}  {report['accuracy']:>6.{digits}f}  "
              f"{total:>7}"]  # fmt: skip
    for avg in ("macro avg", "weighted avg"):
        r = report[avg]
        lines.append(row(avg, r["precision"], r["recall"], r["f1"], r["support"], w=width,
                         d=digits))  # fmt: skip
    return "\n".join(lines)


@torch.no_grad()
def predict_classes(
    model: nn.Module, x: Tensor, batch_size: int = 1000, *, lengths: Tensor | None = None
) -> Tensor:
    """``model(x).argmax(-1)`` in batches, in eval mode (the model's mode is restored);
    with ``lengths`` (B,) ``model(x, lengths)`` (padded sequences)."""
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device

        def logits(i: int) -> Tensor:
            args = [x[i : i + batch_size].to(device)]
            if lengths is not None:
                args.append(lengths[i : i + batch_size].to(device))
            return model(*args)

        parts = [logits(i).argmax(-1).cpu() for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)


def write_classification(folder: str | os.PathLike, y_true: Tensor, y_pred: Tensor,
                         class_names: Sequence[str], *, title: str = "") -> str:  # fmt: skip
    """Write ``confusion.json``, ``confusion.png`` and ``classification_report.json`` into
    ``folder`` (each atomically) and return the report as text."""
    from .plots import plot_confusion

    folder = Path(folder)
    names = [str(n) for n in class_names]
    matrix = confusion_matrix(y_true, y_pred, len(names))
    report = classification_report(matrix, names)
    confusion = {"labels": names, "matrix": matrix.tolist()}
    atomic_write_bytes(folder / "confusion.json", json.dumps(confusion).encode())
    atomic_write_bytes(folder / "classification_report.json",
                       json.dumps(report, indent=1).encode())  # fmt: skip
    plot_confusion(names, matrix.tolist(), folder / "confusion.png",
                   title=title or "confusion matrix (test)")  # fmt: skip
    return format_report(report)
