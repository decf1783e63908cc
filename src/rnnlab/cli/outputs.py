"""What ``rnnlab train`` and ``rnnlab evaluate`` leave beside a classifier's metrics: the
test split's confusion matrix (``confusion.json`` + ``confusion.png``) and per-class
precision / recall / F1 (``classification_report.json``, also printed as a table), written
into the run folder by :func:`rnnlab.evaluation.classification.write_classification`."""

from __future__ import annotations

import os

__all__ = ["write_classifier_outputs"]


def write_classifier_outputs(path: str | os.PathLike, *, data_dir: str | None = None,
                             log=print) -> bool:  # fmt: skip
    """For a run whose family has classes: predict its test split with the run's final
    weights and write the files above into the run folder. Returns whether it did."""
    from rnnlab.evaluation.classification import predict_classes, write_classification
    from rnnlab.training import families
    from rnnlab.training.experiment import build_data, load_run

    cfg, model = load_run(path)
    if "classes" not in families.get(cfg.model.family).supports:
        return False
    if data_dir is not None:
        cfg.data.data_dir = data_dir
    data = build_data(cfg)
    x, y = data.test[0], data.test[1]
    lengths = data.test[2] if len(data.test) > 2 else None  # (x, y, lengths): padded text
    names = data.info.get("class_names") or [str(k) for k in range(data.num_classes)]
    pred = predict_classes(model, x, cfg.train.eval_batch_size, lengths=lengths)
    text = write_classification(
        path, y, pred, names, title=f"{cfg.run.name or cfg.run.preset}: test"
    )
    log(text)
    log(f"wrote confusion.json, confusion.png and classification_report.json in {path}")
    return True
