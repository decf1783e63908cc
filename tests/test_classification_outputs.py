"""A classifier's confusion matrix and per-class precision/recall/F1
(rnnlab.evaluation.classification), pinned against scikit-learn, and the files that
``rnnlab train`` / ``evaluate`` / ``attack`` leave in a run folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn import metrics

from rnnlab.cli import main
from rnnlab.evaluation.classification import (
    classification_report,
    confusion_matrix,
    format_report,
    write_classification,
)


def test_confusion_and_report_equal_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 300)
    pred = np.where(rng.random(300) < 0.6, y, rng.integers(0, 5, 300))
    pred[pred == 4] = 3  # class 4 is never predicted: precision 0/0 -> 0, as zero_division=0
    matrix = confusion_matrix(torch.tensor(y), torch.tensor(pred), 5)
    assert (matrix.numpy() == metrics.confusion_matrix(y, pred, labels=range(5))).all()
    names = ["a", "b", "c", "d", "e"]
    ours = classification_report(matrix, names)
    theirs = metrics.classification_report(y, pred, labels=range(5), target_names=names,
                                           output_dict=True, zero_division=0)  # fmt: skip
    for name in [*names, "macro avg", "weighted avg"]:
        for k in ("precision", "recall"):
            assert ours[name][k] == pytest.approx(theirs[name][k], abs=1e-12), (name, k)
        assert ours[name]["f1"] == pytest.approx(theirs[name]["f1-score"], abs=1e-12)
        assert ours[name]["support"] == theirs[name]["support"]
    assert ours["accuracy"] == pytest.approx(theirs["accuracy"])
    text = format_report(ours)
    assert text.splitlines()[0].split() == ["precision", "recall", "f1", "support"]
    assert "weighted avg" in text and f"{ours['accuracy']:.3f}" in text
    with pytest.raises(ValueError, match=r"must lie in \[0, 5\)"):
        confusion_matrix(torch.tensor([0, 5]), torch.tensor([0, 1]), 5)


def test_write_classification_files(tmp_path):
    y, pred = torch.tensor([0, 1, 2, 2]), torch.tensor([0, 2, 2, 2])
    text = write_classification(tmp_path, y, pred, ["T-shirt/top", "Trouser", "Ankle boot"])
    confusion = json.loads((tmp_path / "confusion.json").read_text())
    assert confusion == {"labels": ["T-shirt/top", "Trouser", "Ankle boot"],
                         "matrix": [[1, 0, 0], [0, 0, 1], [0, 0, 2]]}  # fmt: skip
    report = json.loads((tmp_path / "classification_report.json").read_text())
    assert report["Ankle boot"] == {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2}
    assert (tmp_path / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Ankle boot" in text


def test_train_evaluate_and_attack_write_their_figures(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    tiny = ["--train.epochs=1", "--train.max_steps=2", "--no-progress", "--device=cpu"]
    assert main(["train", "digits-lstm", "--run.name=a", *tiny]) == 0
    run = tmp_path / "runs" / "a"
    out = capsys.readouterr().out
    assert "weighted avg" in out and "classification_report.json" in out
    matrix = json.loads((run / "confusion.json").read_text())["matrix"]
    report = json.loads((run / "classification_report.json").read_text())
    assert sum(map(sum, matrix)) == report["macro avg"]["support"] == 360  # the test split
    for name in ("confusion.json", "confusion.png", "classification_report.json"):
        (run / name).unlink()
    assert main(["evaluate", str(run)]) == 0
    assert (run / "confusion.png").is_file() and (run / "classification_report.json").is_file()
    assert main(["attack", str(run), "--method=fgsm", "--eps-list=0,0.1", "--limit=40"]) == 0
    assert (run / "robustness.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "robustness.png" in capsys.readouterr().out


def test_progress_is_plain_lines_off_a_terminal(monkeypatch):
    import io

    from rnnlab import utils

    clock = iter(range(0, 1000, 4))  # each call is 4 s later
    monkeypatch.setattr(utils.time, "monotonic", lambda: next(clock))
    stream = io.StringIO()
    assert list(utils.progress(range(10), desc="attack", stream=stream, every=10)) == [*range(10)]
    text = stream.getvalue()
    assert "\r" not in text and text.splitlines()[-1].startswith("attack: 10/10 (100%)")
    assert len(text.splitlines()) >= 3  # a line every 10 s of a 40 s loop, and the last
    quiet = io.StringIO()  # a step shorter than `every` says nothing at all
    monkeypatch.setattr(utils.time, "monotonic", lambda: 0.0)
    for _ in utils.progress(range(3), desc="fast", stream=quiet):
        pass
    assert quiet.getvalue() == ""
    off = io.StringIO()
    monkeypatch.setattr(utils.time, "monotonic", lambda: next(clock))
    list(utils.progress(range(10), stream=off, enabled=False, every=1))
    assert off.getvalue() == ""
