"""The generic loop and the step functions: learning, early stopping, the NaN guard,
batch sharding, TBPTT."""

import functools
import itertools

import pytest
import torch

from rnnlab.data import adding_problem
from rnnlab.models.classifiers import SequenceClassifier, SequenceRegressor
from rnnlab.training.checkpoint import RunDir, load_checkpoint
from rnnlab.training.families.classify import classify_eval, classify_step
from rnnlab.training.families.tbptt import _final_step_mse, tbptt_step
from rnnlab.training.loop import Batches, Checkpointing, FitOptions, TrainingStopped, evaluate, fit
from rnnlab.training.update import Update


def _toy(n=64, T=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, T, 3, generator=g) * 0.3 + y[:, None, None].float()
    return x, y


def _fit(model, x, y, run=None, state=None, **kwargs):
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    data = Batches(x, y, batch_size=16, seed=0)
    val = Batches(x, y, batch_size=32, shuffle=False)
    kwargs.setdefault("epochs", 5)
    return fit(
        model, opt, data, train_step=classify_step, eval_step=classify_eval,
        val_data=val, checkpointing=Checkpointing(run, state), options=FitOptions(log=None),
        **kwargs,
    )  # fmt: skip


def test_fit_learns_a_separable_toy_task():
    model = SequenceClassifier("gru", 3, 8, 2)
    x, y = _toy()
    state = _fit(model, x, y)
    assert state.epoch == 5 and state.step == 20
    assert evaluate(model, classify_eval, Batches(x, y, batch_size=64))["accuracy"] > 0.9


def test_run_folder_holds_config_metrics_and_checkpoints(tmp_path):
    run = RunDir.create(tmp_path, "toy", {"a": 1}, ["rnnlab", "train"])
    assert not (tmp_path / "toy").exists()  # temporary name until the first checkpoint
    _fit(SequenceClassifier("lstm", 3, 4, 2), *_toy(), run=run, epochs=2)
    assert run.path == tmp_path / "toy" and run.committed
    assert [r["epoch"] for r in run.metrics()] == [1, 2]
    assert load_checkpoint(run.checkpoints / "last.pt")["fit"]["epoch"] == 2
    assert run.config()["argv"] == ["rnnlab", "train"]


def test_on_epoch_end_sees_each_record_and_its_exception_stops_the_run(tmp_path):
    seen = []

    def hook(state, record):
        seen.append((state.epoch, sorted(k for k in record if k.startswith("val_"))))
        if state.epoch == 2:
            raise KeyError("pruned")  # stands in for optuna.TrialPruned

    run = RunDir.create(tmp_path, "hook", {}, [])
    with pytest.raises(KeyError, match="pruned"):
        _fit(SequenceClassifier("lstm", 3, 4, 2), *_toy(), run=run, epochs=5, on_epoch_end=hook)
    assert seen == [(1, ["val_accuracy", "val_loss"]), (2, ["val_accuracy", "val_loss"])]
    assert load_checkpoint(run.checkpoints / "last.pt")["fit"]["epoch"] == 2  # intact


def test_experiment_train_passes_on_epoch_end_through(tmp_path):
    from rnnlab.training.config import apply_overrides, load_preset
    from rnnlab.training.experiment import train

    records = []
    flags = ["--data.limit=64", "--batch_size=32", "--hidden_size=4", "--epochs=2",
             "--max_steps=1", f"--run.out_dir={tmp_path}", "--run.name=t"]  # fmt: skip
    cfg = apply_overrides(load_preset("digits-lstm"), flags)
    train(cfg, on_epoch_end=lambda s, r: records.append(r["epoch"]), log=str, progress=False)
    assert records == [1, 2]


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    model = SequenceClassifier("lstm", 3, 4, 2)
    x, y = _toy()
    calls = []

    def frozen_eval(model, batch):
        calls.append(1)
        return {"loss": 1.0}  # never improves after epoch 1

    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    state = fit(
        model, opt, Batches(x, y, batch_size=16), train_step=classify_step,
        eval_step=frozen_eval, val_data=[(x, y)], epochs=10,
        options=FitOptions(patience=2, log=None),
    )  # fmt: skip
    assert state.epoch == 3 and "early stopping" in state.stopped


def test_nan_loss_stops_before_the_optimizer_steps_and_keeps_the_last_checkpoint(tmp_path):
    model = SequenceClassifier("lstm", 3, 4, 2)
    x, y = _toy()
    run = RunDir.create(tmp_path, "nan", {}, [])
    _fit(model, x, y, run=run, epochs=1)
    good = {k: v.clone() for k, v in model.state_dict().items()}
    x_bad = x.clone()
    x_bad[:] = float("nan")
    with pytest.raises(TrainingStopped, match="non-finite at epoch 2") as e:
        _fit(model, x_bad, y, run=run, epochs=2, state=e_state(run))
    assert e.value.state.epoch == 1
    for k, v in model.state_dict().items():
        assert torch.equal(v, good[k]), k
    assert load_checkpoint(run.checkpoints / "last.pt")["fit"]["epoch"] == 1


def e_state(run):
    from rnnlab.training.loop import FitState

    return FitState(**load_checkpoint(run.checkpoints / "last.pt")["fit"])


def test_batches_shard_each_global_batch_across_ranks():
    x = torch.arange(20)
    one = [b[0].tolist() for b in Batches(x, batch_size=8, seed=3)]
    ranks = [[b[0].tolist() for b in Batches(x, batch_size=8, seed=3, rank=r, world_size=2)]
             for r in (0, 1)]  # fmt: skip
    for k, batch in enumerate(one):
        assert sorted(ranks[0][k] + ranks[1][k]) == sorted(batch)


def test_tbptt_step_lowers_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    x, y = adding_problem(32, 8, seed=0)
    model = SequenceRegressor("lstm", 2, 8)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    step = functools.partial(tbptt_step, k=4, update=Update(clip_norm=1.0))
    first = step(model, (x, y), opt)["loss"]
    for _ in range(10):
        last = step(model, (x, y), opt)["loss"]
    assert last < first


def test_tbptt_gradient_reaches_back_at_most_k_steps():
    model = SequenceRegressor("simple_rnn", 2, 4)
    x, y = adding_problem(4, 10, seed=0)
    x = x.clone().requires_grad_(True)
    per_step = torch.full((4, 10, 1), float("nan"))
    per_step[:, -1] = y
    from rnnlab.training.tbptt import truncated_bptt

    truncated_bptt(model.run, _final_step_mse, x, per_step, 3)
    assert x.grad[:, :9].abs().sum() == 0 and x.grad[:, 9:].abs().sum() > 0


@pytest.mark.parametrize("restore", [True, False])
def test_restore_best_ends_with_the_weights_of_the_best_validation_epoch(restore):
    torch.manual_seed(0)
    model = SequenceClassifier("gru", 3, 8, 2)
    x, y = _toy()
    losses = iter([3.0, 1.0, 2.0, 5.0])  # epoch 2 is the best
    weights = []

    def scripted_eval(model, batch):
        return {"loss": next(losses)}

    def keep(state, record):
        weights.append({k: v.clone() for k, v in model.state_dict().items()})

    state = fit(
        model, torch.optim.Adam(model.parameters(), lr=0.05), Batches(x, y, batch_size=16),
        train_step=classify_step, eval_step=scripted_eval, val_data=[(x, y)], epochs=4,
        options=FitOptions(restore_best=restore, log=None), on_epoch_end=keep,
    )  # fmt: skip
    assert state.best_epoch == 2 and state.restored == (2 if restore else 0)
    expected = weights[1] if restore else weights[3]
    for k, v in model.state_dict().items():
        assert torch.equal(v, expected[k]), k


def test_monitor_accuracy_keeps_the_epoch_of_the_best_validation_accuracy():
    torch.manual_seed(0)
    model = SequenceClassifier("gru", 3, 8, 2)
    x, y = _toy()
    # the loss is lowest at epoch 1, the accuracy highest at epoch 3
    scripted = iter([(0.5, 0.6), (0.7, 0.7), (0.9, 0.8), (0.6, 0.75)])
    weights = []

    def scripted_eval(model, batch):
        loss, accuracy = next(scripted)
        return {"loss": loss, "accuracy": accuracy}

    def keep(state, record):
        weights.append({k: v.clone() for k, v in model.state_dict().items()})

    lines = []
    state = fit(
        model, torch.optim.Adam(model.parameters(), lr=0.05), Batches(x, y, batch_size=16),
        train_step=classify_step, eval_step=scripted_eval, val_data=[(x, y)], epochs=4,
        options=FitOptions(restore_best=True, monitor_metric="accuracy", log=lines.append),
        on_epoch_end=keep,
    )  # fmt: skip
    assert state.best_epoch == 3 and state.restored == 3 and state.best == -0.8
    assert lines[-1] == "restore_best: the weights of epoch 3 (best accuracy 0.8000)"
    for k, v in model.state_dict().items():
        assert torch.equal(v, weights[2][k]), k


def test_a_run_records_the_restored_epoch_and_load_run_returns_those_weights(tmp_path, monkeypatch):
    from rnnlab.training import experiment
    from rnnlab.training.config import apply_overrides, load_preset

    losses = itertools.chain([2.0, 1.0, 3.0], itertools.repeat(9.0))  # then the test split
    real_steps = experiment.steps_for

    def scripted(cfg, *args, **kwargs):
        train_step, eval_step = real_steps(cfg, *args, **kwargs)
        return train_step, lambda model, batch: {"loss": next(losses), "accuracy": 0.0}

    monkeypatch.setattr(experiment, "steps_for", scripted)
    cfg = apply_overrides(load_preset("digits-lstm"), [
        "--epochs=3", "--max_steps=2", "--hidden_size=8", "--limit=64", "--schedule=none",
        "--eval_batch_size=1000", f"--run.out_dir={tmp_path}", "--run.name=r"])  # fmt: skip
    result = experiment.train(cfg, log=lambda _: None)
    assert result["restored_best_epoch"] == 2
    assert "restored_best_epoch: 2" in (tmp_path / "r" / "summary.txt").read_text()
    best = load_checkpoint(tmp_path / "r" / "checkpoints" / "best.pt")["model"]
    _, loaded = experiment.load_run(tmp_path / "r")
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, best[k]), k


def test_restore_best_after_a_resume_reads_the_best_epoch_from_best_pt(tmp_path, monkeypatch):
    from rnnlab.training import experiment
    from rnnlab.training.config import apply_overrides, load_preset

    losses = itertools.chain([2.0, 1.0, 3.0], [9.0], [4.0], itertools.repeat(9.0))
    real_steps = experiment.steps_for

    def scripted(cfg, *args, **kwargs):  # val 2, 1, 3; test 9; after the resume: val 4
        train_step, eval_step = real_steps(cfg, *args, **kwargs)
        return train_step, lambda model, batch: {"loss": next(losses)}

    monkeypatch.setattr(experiment, "steps_for", scripted)
    flags = ["--max_steps=2", "--hidden_size=8", "--limit=64", "--schedule=none",
             f"--run.out_dir={tmp_path}", "--run.name=r"]  # fmt: skip
    cfg = apply_overrides(load_preset("digits-lstm"), ["--epochs=3", *flags])
    experiment.train(cfg, log=lambda _: None)
    more = apply_overrides(cfg, ["--epochs=4"])
    result = experiment.train(more, resume_from=tmp_path / "r", log=lambda _: None)
    assert result["restored_best_epoch"] == 2  # from best.pt: the resumed process never saw it
    best = load_checkpoint(tmp_path / "r" / "checkpoints" / "best.pt")
    assert best["fit"]["epoch"] == 2
    _, loaded = experiment.load_run(tmp_path / "r")
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, best["model"][k]), k


def test_fit_takes_about_ten_parameters_each_named_in_its_docstring():
    import inspect

    params = inspect.signature(fit).parameters
    assert len(params) <= 11, list(params)
    for name in params:
        assert f"``{name}" in fit.__doc__, name


def test_the_scheduler_in_the_options_steps_at_its_interval():
    x, y = _toy(48)
    for interval, expected in (("step", 6), ("epoch", 2)):
        model = SequenceClassifier("gru", 3, 4, 2)
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        options = FitOptions(scheduler=scheduler, scheduler_interval=interval, log=None)
        fit(model, opt, Batches(x, y, batch_size=16), train_step=classify_step, epochs=2,
            options=options)  # fmt: skip
        assert opt.param_groups[0]["lr"] == 0.5**expected, interval
