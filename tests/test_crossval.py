"""Stratified k-fold cross-validation (rnnlab.training.crossval) and the plateau keys it
uses: folds by hand, the scaler from the training folds only, the pooled held-out curve
against a fold trained by hand, the choice of epochs off the smoothed curve."""

from __future__ import annotations

import pytest
import torch

from rnnlab.training.config import apply_overrides, load_preset
from rnnlab.training.crossval import CVCurve, cross_validate, scale_folds, stratified_folds
from rnnlab.training.optim import build_optimizer, build_schedule


def test_stratified_folds_partition_and_keep_class_shares():
    y = torch.tensor([0] * 12 + [1] * 6 + [2] * 3)
    folds = stratified_folds(y, 3, seed=5)
    every = torch.cat(folds).sort().values
    assert torch.equal(every, torch.arange(21))  # disjoint and covering
    for f in folds:
        assert len(f) == 7 and torch.equal(f, f.sort().values)
        assert torch.bincount(y[f], minlength=3).tolist() == [4, 2, 1]
    assert [f.tolist() for f in stratified_folds(y, 3, seed=5)] == [f.tolist() for f in folds]
    assert [f.tolist() for f in stratified_folds(y, 3, seed=6)] != [f.tolist() for f in folds]
    sizes = [len(f) for f in stratified_folds(torch.tensor([0] * 5 + [1] * 5 + [2] * 3), 4)]
    assert max(sizes) - min(sizes) <= 1  # dealing continues across classes
    with pytest.raises(ValueError, match="`k` must be in"):
        stratified_folds(y, 1)


def test_scale_folds_uses_the_training_rows_only():
    x = torch.zeros(4, 3, 1)
    x[0, :2, 0], x[1, :3, 0] = torch.tensor([1.0, 3.0]), torch.tensor([1.0, 3.0, 2.0])
    x[2:, :, 0] = 100.0  # the held-out rows: far away, must not move the statistics
    lengths = torch.tensor([2, 3, 3, 1])
    xt, xh = scale_folds(x, lengths, torch.tensor([0, 1]), torch.tensor([2, 3]))
    mean, std = 2.0, (0.8**0.5)  # of the valid steps 1, 3, 1, 3, 2
    assert xt[0, :2, 0].tolist() == pytest.approx([(1 - mean) / std, (3 - mean) / std])
    assert xt[0, 2, 0] == 0 and xh[1, 1:, 0].abs().sum() == 0  # padding stays zero
    assert xh[0, 0, 0] == pytest.approx((100 - mean) / std)


def _cfg(*flags):
    return apply_overrides(load_preset("seq-classify"), [
        "--data.train=unused.ts", "--data.val_fraction=0", "--train.patience=0",
        "--model.kind=gru", "--model.hidden_size=4", "--data.batch_size=4", *flags])  # fmt: skip


def test_cross_validate_pools_the_held_out_folds_as_a_run_trained_by_hand():
    from rnnlab.training.experiment import build_model, steps_for
    from rnnlab.training.families import DataSpec
    from rnnlab.training.loop import Batches, FitOptions, evaluate, fit
    from rnnlab.utils import seed_everything

    g = torch.Generator().manual_seed(0)
    y = torch.arange(12) % 2
    x = torch.randn(12, 5, 2, generator=g) + y[:, None, None]
    lengths = torch.tensor([5, 4, 3] * 4)
    x = torch.where((torch.arange(5) < lengths[:, None])[..., None], x, torch.zeros(()))
    cfg = _cfg("--train.epochs=3")
    folds = stratified_folds(y, 3)
    curve = cross_validate(cfg, x, y, lengths, 2, folds, log=None)
    assert len(curve.accuracy) == len(curve.loss) == 3 and len(curve.folds) == 3
    # fold 0 by hand: the same seed, scaler, batches and loop
    held = folds[0]
    train = torch.tensor([i for i in range(12) if i not in held.tolist()])
    xt, xh = scale_folds(x, lengths, train, held)
    seed_everything(0)
    model = build_model(cfg, DataSpec(xt[0], 2))
    step, eval_step = steps_for(cfg, log=lambda _: None)
    batches = Batches(xt, y[train], lengths[train], batch_size=4, seed=0)
    opt = build_optimizer(cfg, model)
    fit(model, opt, batches, train_step=step, epochs=3, options=FitOptions(log=None))
    want = evaluate(model, eval_step, Batches(xh, y[held], lengths[held], batch_size=99,
                                              shuffle=False))  # fmt: skip
    assert curve.folds[0][-1]["accuracy"] == pytest.approx(want["accuracy"])
    assert curve.folds[0][-1]["loss"] == pytest.approx(want["loss"], rel=1e-5)
    pooled = sum(f[-1]["accuracy"] * len(h) for f, h in zip(curve.folds, folds, strict=True))
    assert curve.accuracy[-1] == pytest.approx(pooled / 12)


def test_best_epochs_come_from_the_smoothed_curve_with_ties_to_the_lower_loss():
    curve = CVCurve(accuracy=[0.5, 0.9, 0.5, 0.8, 0.8, 0.8], loss=[1, 1, 1, 0.6, 0.5, 0.7])
    assert curve.best(1) == (2, 0.9, 1)  # the spike
    e, acc, loss = curve.best(3)  # trailing means: .5 .7 .633 .733 .7 .8
    assert e == 6 and acc == pytest.approx(0.8) and loss == pytest.approx(0.6)
    tie = CVCurve(accuracy=[0.7, 0.7 - 2e-9, 0.7], loss=[0.9, 0.4, 0.6])  # float-sum noise
    assert tie.best(1)[0] == 2


def test_plateau_keys_reach_the_scheduler():
    cfg = _cfg("--train.schedule=plateau", "--train.gamma=0.5", "--train.plateau_patience=2",
               "--train.min_lr=4e-4", "--train.lr=1e-3")  # fmt: skip
    opt = build_optimizer(cfg, torch.nn.Linear(1, 1))
    sched, interval = build_schedule(cfg, opt, steps_per_epoch=1)
    assert interval == "plateau"
    lrs = []
    for _ in range(8):
        sched.step(1.0)  # never improves: halved after every 3rd epoch without a better loss
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([1e-3] * 3 + [5e-4] * 3 + [4e-4] * 2)


def test_ucr_cv_script_chooses_refits_and_records(tmp_path, capsys):
    import importlib.util
    import json
    from pathlib import Path

    import numpy as np

    from rnnlab.data.ts_format import write_ts

    rng = np.random.default_rng(0)
    folder = tmp_path / "ucr" / "Toy"
    folder.mkdir(parents=True)
    for split, n in (("TRAIN", 12), ("TEST", 6)):
        seqs = [rng.normal(size=(8, 1)) + i % 2 for i in range(n)]
        write_ts(folder / f"Toy_{split}.ts", seqs, [str(i % 2) for i in range(n)])
    path = Path(__file__).parents[1] / "benchmarks" / "ucr_cv.py"
    spec = importlib.util.spec_from_file_location("ucr_cv", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "r.json"
    script.OWN_EPOCHS = {"mlp": 3}  # cross-validated for its own epochs, not --epochs
    argv = ["Toy", "--candidates", "gru", "lstm", "mlp", "--epochs", "2", "--folds", "2",
            "--smooth", "1", "--seeds", "0,1", "--out", str(out), "--run-dir",
            str(tmp_path / "runs"), "--data-dir", str(tmp_path)]  # fmt: skip
    assert script.main(argv) == 0
    r = json.loads(out.read_text())
    chosen = r["chosen"]["candidate"]
    assert chosen in ("gru", "lstm", "mlp") and set(r["cv"]) == {"gru", "lstm", "mlp"}
    assert len(r["cv"]["gru"]["accuracy"]) == 2 and len(r["refit"]) == 2
    assert len(r["cv"]["mlp"]["accuracy"]) == r["cv"]["mlp"]["epochs_run"] == 3
    assert all("--data.val_fraction=0" in v["command"] for v in r["refit"].values())
    assert "test accuracy" in capsys.readouterr().out
    # the same refits as one ensemble of two (read back, not retrained)
    assert script.main([*argv, "--ensemble", "2"]) == 0
    r = json.loads(out.read_text())
    assert r["test"]["ensemble"] == 2 and len(r["test"]["accuracies"]) == 1
    assert "ensemble of seeds 0,1" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        script.main([*argv, "--ensemble", "3"])
    assert e.value.code == 2 and "multiple of --ensemble=3" in capsys.readouterr().err
