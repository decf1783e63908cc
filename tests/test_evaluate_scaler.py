"""``rnnlab evaluate`` on a run of a family on the user's files scales the test split with
the statistics the run saved (``data.json``), as ``predict`` does: files shifted after
training (the training file too, whose refit statistics would follow the shift) do not move
them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnlab.cli import main
from rnnlab.data.files import read_csv_wide, write_csv_wide, write_series
from rnnlab.data.windows import Scaler, forecast_windows

FAST = ["--train.epochs=1", "--no-progress", "--data.batch_size=16", "--run.name=r"]


def _metric(out: str, key: str) -> float:
    return float(next(ln for ln in out.splitlines() if ln.startswith(f"{key}: ")).split()[-1])


def test_evaluate_seq_classify_uses_the_saved_scaler(tmp_path, capsys):
    from rnnlab.training.families._predict import load_file_run
    from rnnlab.training.families.seq_classify import scale_padded

    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(int(n), 2)) + (2 if i % 2 else 0)
            for i, n in enumerate(rng.integers(6, 12, 40))]  # fmt: skip
    labels = ["up" if i % 2 else "down" for i in range(40)]
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    write_csv_wide(train, [s[:, :1] for s in seqs], labels)
    write_csv_wide(test, [s[:, :1] for s in seqs[:12]], labels[:12])
    run = tmp_path / "runs" / "r"
    assert main(["train", "seq-classify", f"--run.out_dir={tmp_path / 'runs'}", *FAST,
                 f"--data.train={train}", f"--data.test={test}", "--data.target=label",
                 "--model.kind=gru", "--model.hidden_size=8"]) == 0  # fmt: skip
    saved = json.loads((run / "data.json").read_text())["scaler"]
    # shift both files: statistics refit on the training file would move by 5
    write_csv_wide(train, [s[:, :1] + 5 for s in seqs], labels)
    write_csv_wide(test, [s[:, :1] + 5 for s in seqs[:12]], labels[:12])
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    got = _metric(capsys.readouterr().out, "test_loss")
    _, model, _ = load_file_run(run)
    shifted = read_csv_wide(test, label="label")
    x = scale_padded(shifted.x, shifted.lengths, Scaler.from_dict(saved))
    y = torch.tensor([["down", "up"].index(v) for v in shifted.labels])
    with torch.no_grad():
        want = F.cross_entropy(model(x, shifted.lengths), y).item()
    assert got == pytest.approx(want, abs=1e-4)
    refit = scale_padded(shifted.x, shifted.lengths, Scaler.fit(x.new_tensor(
        np.concatenate([s[:, :1] + 5 for s in seqs]))))  # fmt: skip
    with torch.no_grad():
        assert abs(F.cross_entropy(model(refit, shifted.lengths), y).item() - want) > 1e-3


def test_evaluate_forecast_uses_the_saved_scaler(tmp_path, capsys):
    from rnnlab.training.experiment import evaluate_run

    t = np.arange(300)
    values = np.sin(2 * np.pi * t / 24)[:, None] + t[:, None] / 300
    time = [f"2020-01-{1 + i // 24:02d} {i % 24:02d}:00:00" for i in t]
    path = write_series(tmp_path / "s.csv", values, ["OT"], time)
    run = tmp_path / "runs" / "r"
    code = main(["train", "forecast", f"--run.out_dir={tmp_path / 'runs'}", *FAST,
                 f"--data.path={path}", "--data.target=OT", "--data.input_len=24",
                 "--data.horizon=4", "--data.split=0.6,0.2", "--model.hidden_size=8"])  # fmt: skip
    assert code == 0
    before = evaluate_run(run)
    write_series(path, values * 3 + 10, ["OT"], time)  # the training rows' statistics move
    after = evaluate_run(run)
    assert after["test_loss"] != pytest.approx(before["test_loss"], rel=1e-3)
    # the same test windows scaled with the saved statistics, by hand
    from rnnlab.training.families._predict import load_file_run

    _, model, info = load_file_run(run)
    scaled = Scaler.from_dict(info["scaler"]).transform(torch.tensor(values * 3 + 10).float())
    start, stop = info["split"][2]
    x, y, _ = forecast_windows(scaled, 24, 4, [0], start=start, stop=stop)
    with torch.no_grad():
        want = F.mse_loss(model(x), y).item()
    assert after["test_loss"] == pytest.approx(want, rel=1e-4)
    # one epoch: its best.pt holds the same weights, read through the same scaler
    best = evaluate_run(run, checkpoint="best")["test_loss"]
    assert best == pytest.approx(after["test_loss"], rel=1e-6)
