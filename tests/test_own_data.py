"""The families on the user's own files (seq-classify, forecast, seq-anomaly) end to end
through the CLI on tiny files each test writes: training, the saved data.json (scaler from the
training split only, class names), predict applying it, and every bad input as one line and
exit 2 with nothing left on disk."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from rnnlab.cli import main
from rnnlab.data.files import write_arrays, write_csv_wide, write_series
from rnnlab.data.ts_format import write_ts

FAST = ["--train.epochs=1", "--no-progress", "--data.batch_size=16"]


def _train(tmp_path, preset, *args) -> int:
    out = [f"--run.out_dir={tmp_path / 'runs'}", "--run.name=r", *FAST]
    return main(["train", preset, *out, *args])


def _run(tmp_path):
    return tmp_path / "runs" / "r"


def _one_line_exit_2(capsys, code: int, match: str, tmp_path=None):
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("rnnlab: error: ") and "\n" not in err and match in err, err
    if tmp_path is not None:  # nothing half-written
        runs = tmp_path / "runs"
        assert not runs.exists() or not any(runs.iterdir()), list(runs.iterdir())


def _classify_files(tmp_path, shift: float = 0.0):
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(int(n), 1)) + (3 if i % 2 else 0)
            for i, n in enumerate(rng.integers(6, 12, 40))]  # fmt: skip
    labels = ["up" if i % 2 else "down" for i in range(40)]
    write_csv_wide(tmp_path / "train.csv", seqs, labels)
    write_csv_wide(tmp_path / "test.csv", [s + shift for s in seqs[:10]], labels[:10])
    return seqs, labels


def test_seq_classify_saves_classes_and_training_only_statistics(tmp_path, capsys):
    seqs, _ = _classify_files(tmp_path, shift=100.0)
    code = _train(tmp_path, "seq-classify", f"--data.train={tmp_path / 'train.csv'}",
                  f"--data.test={tmp_path / 'test.csv'}", "--data.target=label",
                  "--model.hidden_size=8")  # fmt: skip
    assert code == 0, capsys.readouterr().err
    info = json.loads((_run(tmp_path) / "data.json").read_text())
    assert info["classes"] == ["down", "up"]
    # the validation split (a fixed 20% of train) is not in the statistics, the test set
    # (mean shifted by 100) does not move them
    from rnnlab.training.families._common import VAL_SEED

    order = torch.randperm(40, generator=torch.Generator().manual_seed(VAL_SEED))
    train_steps = np.concatenate([seqs[i] for i in order[8:].tolist()])
    assert info["scaler"]["mean"][0] == pytest.approx(train_steps.mean(), rel=1e-6)
    assert info["scaler"]["std"][0] == pytest.approx(train_steps.std(), rel=1e-6)


def test_predict_applies_the_saved_scaler_and_names_classes(tmp_path, capsys):
    _classify_files(tmp_path)
    assert (
        _train(
            tmp_path,
            "seq-classify",
            f"--data.train={tmp_path / 'train.csv'}",
            "--data.target=label",
            "--model.kind=gru",
            "--model.hidden_size=8",
        )
        == 0
    )
    out = tmp_path / "pred.csv"
    assert (
        main(["predict", str(_run(tmp_path)), str(tmp_path / "test.csv"), "--out", str(out)]) == 0
    )
    lines = out.read_text().splitlines()
    assert lines[0] == "sequence,label,p_down,p_up" and len(lines) == 11
    # the same numbers by hand: the run's model on the file scaled with data.json's statistics
    from rnnlab.data.files import read_csv_wide
    from rnnlab.data.windows import Scaler
    from rnnlab.training.families._predict import load_file_run
    from rnnlab.training.families.seq_classify import scale_padded

    _, model, info = load_file_run(_run(tmp_path))
    seqs = read_csv_wide(tmp_path / "test.csv", label="label")
    x = scale_padded(seqs.x, seqs.lengths, Scaler.from_dict(info["scaler"]))
    with torch.no_grad():
        p = torch.softmax(model(x, seqs.lengths), -1)
    first = lines[1].split(",")
    assert float(first[3]) == pytest.approx(float(p[0, 1]), rel=1e-4)
    assert first[1] == ["down", "up"][int(p[0].argmax())]


def test_seq_classify_ts_and_npz_files_hold_their_labels(tmp_path, capsys):
    rng = np.random.default_rng(1)
    seqs = [rng.normal(size=(int(n), 3)) for n in rng.integers(5, 9, 30)]
    labels = [str(i % 3) for i in range(30)]
    write_ts(tmp_path / "d.ts", seqs, labels)
    write_arrays(tmp_path / "d.npz", seqs, labels)
    for name in ("d.ts", "d.npz"):
        assert _train(tmp_path, "seq-classify", f"--data.train={tmp_path / name}",
                      "--model.kind=lstm-fcn", f"--run.name={name}") == 0  # fmt: skip
    out = tmp_path / "p.csv"
    run = tmp_path / "runs" / "d.ts"
    assert main(["predict", str(run), str(tmp_path / "d.npz"), "--out", str(out)]) == 0
    assert out.read_text().splitlines()[0] == "sequence,label,p_0,p_1,p_2"
    # a file with another channel count than the training data
    write_arrays(tmp_path / "two.npz", [s[:, :2] for s in seqs])
    code = main(["predict", str(run), str(tmp_path / "two.npz")])
    _one_line_exit_2(capsys, code, "expected 3 channels (as the training data), got 2")


def test_seq_classify_mlp_reads_at_most_the_training_length(tmp_path, capsys):
    rng = np.random.default_rng(2)
    seqs = [rng.normal(size=(int(n), 2)) for n in rng.integers(5, 9, 24)]
    write_arrays(tmp_path / "d.npz", seqs, [str(i % 2) for i in range(24)])
    long = [rng.normal(size=(12, 2)) for _ in range(4)]
    write_arrays(tmp_path / "long.npz", long, ["0", "1", "0", "1"])
    assert _train(tmp_path, "seq-classify", f"--data.train={tmp_path / 'd.npz'}",
                  "--model.kind=mlp") == 0  # fmt: skip
    out = tmp_path / "p.csv"
    assert main(["predict", str(_run(tmp_path)), str(tmp_path / "d.npz"), "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 25
    code = main(["predict", str(_run(tmp_path)), str(tmp_path / "long.npz")])
    _one_line_exit_2(capsys, code, "expected series of at most 8 steps")
    (tmp_path / "runs" / "r").rename(tmp_path / "kept")
    code = _train(tmp_path, "seq-classify", f"--data.train={tmp_path / 'd.npz'}",
                  f"--data.test={tmp_path / 'long.npz'}", "--model.kind=mlp")  # fmt: skip
    _one_line_exit_2(capsys, code, "expected series of at most 8 steps", tmp_path)


def _series_file(tmp_path, n=400):
    t = np.arange(n)
    values = np.stack([np.sin(2 * math.pi * t / 24), np.cos(2 * math.pi * t / 24) + t / n], 1)
    time = [f"2020-01-{1 + i // 24:02d} {i % 24:02d}:00:00" for i in range(n)]
    return write_series(tmp_path / "s.csv", values, ["load", "OT"], time), values


def test_forecast_reports_scaled_and_unit_metrics_beside_the_baselines(tmp_path, capsys):
    path, values = _series_file(tmp_path)
    code = _train(tmp_path, "forecast", f"--data.path={path}", "--data.target=OT",
                  "--data.inputs=all", "--data.input_len=30", "--data.horizon=6",
                  "--data.split=0.6,0.2", "--model.hidden_size=8")  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    for key in ("test_mse", "test_mae_units", "test_persistence_mse", "test_seasonal_mae"):
        assert key in out
    info = json.loads((_run(tmp_path) / "data.json").read_text())
    assert info["scaler"]["mean"] == pytest.approx(values[:240].mean(0).tolist(), rel=1e-5)
    pred = tmp_path / "f.csv"
    assert main(["predict", str(_run(tmp_path)), str(path), "--out", str(pred)]) == 0
    lines = pred.read_text().splitlines()
    assert lines[0] == "time,target,h1,h2,h3,h4,h5,h6" and len(lines) == 1 + 400 - 30 + 1
    assert lines[-1].startswith("2020-01-17 15:00:00,OT,")  # the last origin: the last row


def test_seq2seq_forecast_with_teacher_forcing_trains(tmp_path, capsys):
    path, _ = _series_file(tmp_path)
    assert _train(tmp_path, "forecast", f"--data.path={path}", "--data.target=OT",
                  "--data.input_len=24", "--data.horizon=4", "--data.split=0.6,0.2",
                  "--model.kind=seq2seq-gru", "--model.teacher_forcing=0.5",
                  "--model.hidden_size=8") == 0  # fmt: skip


def test_seq_anomaly_writes_scores_and_predict_uses_the_threshold(tmp_path, capsys):
    n = 600
    t = np.arange(n)
    values = np.sin(2 * math.pi * t / 20)[:, None]
    values[450:460] += 4.0
    time = [f"2020-01-{1 + i // 288:02d} {i % 288 // 12:02d}:{i % 12 * 5:02d}:00" for i in t]
    path = write_series(tmp_path / "m.csv", values, ["value"], time)
    windows = {"realKnownCause/m.csv": [[time[445] + ".000000", time[465] + ".000000"]]}
    (tmp_path / "combined_windows.json").write_text(json.dumps(windows))
    for kind in ("lstm-ae", "forecast-error"):
        code = _train(tmp_path, "seq-anomaly", f"--data.path={path}", "--data.window=16",
                      "--data.probation=0.3", f"--model.kind={kind}", "--model.hidden_size=8",
                      f"--run.name={kind}")  # fmt: skip
        out = capsys.readouterr().out
        assert code == 0 and "test_windows_detected" in out and "test_point_auroc" in out
        run = tmp_path / "runs" / kind
        scores = (run / "anomaly_scores.csv").read_text().splitlines()
        assert scores[0] == "time,value,score,label,threshold" and len(scores) == n + 1
        threshold = json.loads((run / "data.json").read_text())["threshold"]
        pred = tmp_path / f"{kind}.csv"
        assert main(["predict", str(run), str(path), "--out", str(pred)]) == 0
        row = pred.read_text().splitlines()[300].split(",")
        assert float(row[-1]) == pytest.approx(threshold, rel=1e-5)
        assert row[-2] == str(int(float(row[2]) > float(row[-1])))
    assert main(["report", str(run), "--out", str(tmp_path / "report")]) == 0
    assert list((tmp_path / "report" / "report_files" / "plots").glob("anomaly-*.png"))
    assert "Anomaly scores" in (tmp_path / "report" / "report.md").read_text()


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "text, extra, match",
    [
        ("label,t0,t1\na,1,2\nb,1,2,3\n", ["--data.target=label"], "line 3: expected 3 cells"),
        ("label,t0,t1\na,1,nan\nb,1,2\n", ["--data.target=label"],
         "line 2, column t1: expected a finite number, got nan"),
        ("label,t0,t1\na,1,x\nb,1,2\n", ["--data.target=label"],
         "line 2, column t1: expected a number, got 'x'"),
        ("label,t0,t1\na,1,2\nb,1,2\n", ["--data.target=kind"],
         "expected a label column 'kind', got label, t0, t1"),
    ],
)  # fmt: skip
def test_bad_csv_is_one_line_and_exit_2(tmp_path, capsys, text, extra, match):
    (tmp_path / "bad.csv").write_text(text)
    code = _train(tmp_path, "seq-classify", f"--data.train={tmp_path / 'bad.csv'}", *extra)
    _one_line_exit_2(capsys, code, match, tmp_path)


def test_nan_is_accepted_with_a_fill_rule(tmp_path, capsys):
    rows = "".join(f"{'ab'[i % 2]},{i},{'nan' if i == 3 else i + 1},{i % 5}\n" for i in range(20))
    (tmp_path / "gap.csv").write_text("label,t0,t1,t2\n" + rows)
    assert _train(tmp_path, "seq-classify", f"--data.train={tmp_path / 'gap.csv'}",
                  "--data.target=label", "--data.fill=linear") == 0  # fmt: skip


def test_bad_ts_npz_and_pickle_are_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "h.ts").write_text("@dimensions 2\n@classLabel true 1 2\n@data\n1,2,3:1\n")
    code = _train(tmp_path, "seq-classify", f"--data.train={tmp_path / 'h.ts'}")
    _one_line_exit_2(capsys, code, "line 4: expected 2 channels (the header), got 1", tmp_path)
    np.savez(tmp_path / "nox.npz", data=np.zeros((4, 3)))
    code = _train(tmp_path, "seq-classify", f"--data.train={tmp_path / 'nox.npz'}")
    _one_line_exit_2(capsys, code, "expected keys x (required), y, lengths, got data", tmp_path)
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = np.zeros((3, 1)), np.zeros((4, 1))
    np.savez(tmp_path / "obj.npz", x=ragged, y=np.array([0, 1]))
    code = _train(tmp_path, "seq-classify", f"--data.train={tmp_path / 'obj.npz'}")
    _one_line_exit_2(capsys, code, "pickled object array; save ragged data as x = ", tmp_path)


def test_a_horizon_longer_than_the_series_is_one_line_and_exit_2(tmp_path, capsys):
    path, _ = _series_file(tmp_path, n=100)
    code = _train(tmp_path, "forecast", f"--data.path={path}", "--data.target=OT",
                  "--data.input_len=10", "--data.horizon=500", "--data.split=0.6,0.2")  # fmt: skip
    _one_line_exit_2(capsys, code, "`horizon` 500 with `input_len` 10 needs more rows", tmp_path)
    code = _train(tmp_path, "forecast", f"--data.path={path}", "--data.target=nope")
    _one_line_exit_2(capsys, code, "expected a column named 'nope', got columns load, OT")


def test_a_key_the_family_does_not_read_is_refused(tmp_path, capsys):
    path, _ = _series_file(tmp_path)
    code = _train(tmp_path, "forecast", f"--data.path={path}", "--data.target=OT",
                  "--data.window=5")  # fmt: skip
    _one_line_exit_2(capsys, code, "`data.window` is not used by family 'forecast'")
