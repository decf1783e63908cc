"""MetricsLogger (rnnlab.training.logging): flushed JSONL lines, optional TensorBoard."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from rnnlab.training.logging import MetricsLogger, tensorboard_tag


def test_metrics_logger_appends_flushed_lines(tmp_path):
    torch = pytest.importorskip("torch")
    with MetricsLogger(tmp_path / "run") as log:
        log.log({"epoch": 1, "split": "train", "loss": torch.tensor(0.5), "acc": np.float32(1)})
        # flushed: readable before close
        first = json.loads((tmp_path / "run" / "metrics.jsonl").read_text())
        assert first == {"epoch": 1, "split": "train", "loss": 0.5, "acc": 1.0}
    assert log.closed
    with pytest.raises(ValueError, match="closed"):
        log.log({"loss": 1.0})
    with MetricsLogger(tmp_path / "run") as log:  # resumed: appended, not truncated
        log.log({"epoch": 2, "val_loss": float("nan")})
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and np.isnan(json.loads(lines[1])["val_loss"])
    with MetricsLogger(tmp_path / "run") as log, pytest.raises(TypeError, match="a mapping"):
        log.log([1.0])
    assert tensorboard_tag("val_loss") == "loss/val" == tensorboard_tag("loss", "val")
    assert tensorboard_tag("lr") == "lr"


def test_metrics_logger_tensorboard_missing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with pytest.raises(ImportError, match="pip install tensorboard"):
        MetricsLogger(tmp_path / "run", tensorboard=True)
    assert not (tmp_path / "run").exists()  # nothing created before the error


def test_metrics_logger_tensorboard_writes_events(tmp_path):
    if not os.environ.get("CI"):  # CI installs the `tensorboard` extra: there it must run
        pytest.importorskip("tensorboard", reason="optional dependency `tensorboard` not installed")
    with MetricsLogger(tmp_path, tensorboard=True) as log:
        log.log({"epoch": 1, "split": "val", "loss": 0.5})
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_train_with_tensorboard_flag_fails_cleanly_without_the_package(
    tmp_path, capsys, monkeypatch
):
    from rnnlab.cli import main

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if not installed
    code = main(["train", "digits-lstm", "--tensorboard", f"--run.out_dir={tmp_path}",
                 "--train.epochs=1", "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "pip install tensorboard" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir()), "nothing may be left on disk"
