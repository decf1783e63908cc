"""Mixed precision (rnnlab.training.precision): bf16 autocast on CPU trains like fp32, fp16
is refused off CUDA in one line, the loss scaler's state is checkpointed and resumed; on a
GPU, fp16 with loss scaling and bf16 train."""

import functools

import pytest
import torch

from rnnlab.models.classifiers import SequenceClassifier, SequenceRegressor
from rnnlab.training.checkpoint import RunDir, load_checkpoint
from rnnlab.training.config import ConfigError, apply_overrides, load_preset
from rnnlab.training.families.classify import classify_step
from rnnlab.training.families.regress import regress_step
from rnnlab.training.loop import Batches, Checkpointing, FitOptions, fit, resume
from rnnlab.training.precision import Precision, make_precision
from rnnlab.training.update import Update


def _toy(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    return torch.randn(n, 6, 4, generator=g) * 0.5 + y[:, None, None].float(), y


def _curve(amp, epochs=6):
    torch.manual_seed(0)
    model = SequenceClassifier("lstm", 4, 16, 3)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    x, y = _toy()
    records = []
    fit(
        model, opt, Batches(x, y, batch_size=32, seed=0), epochs=epochs,
        options=FitOptions(log=None),
        train_step=functools.partial(classify_step, update=Update(precision=amp)),
        on_epoch_end=lambda state, record: records.append(record["train_loss"]),
    )  # fmt: skip
    return records


def test_bf16_on_cpu_trains_and_its_loss_is_close_to_fp32():
    fp32 = _curve(None)
    bf16 = _curve(make_precision("bf16", "cpu"))
    assert bf16[-1] < 0.5 * bf16[0]  # it learns
    # bf16 keeps 8 mantissa bits: the curves agree to about a percent, not bit for bit
    assert bf16 == pytest.approx(fp32, rel=0.05, abs=0.02)
    assert bf16 != fp32  # autocast really ran


def test_bf16_autocast_runs_the_forward_in_bf16_and_keeps_fp32_weights():
    model = SequenceClassifier("gru", 4, 8, 3)
    seen = []
    model.dense.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    x, y = _toy(8)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    out = classify_step(model, (x, y), opt, update=Update(precision=make_precision("bf16", "cpu")))
    assert seen == [torch.bfloat16]
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert out["loss"] > 0 and out["grad_norm"] > 0


def test_regress_step_under_bf16():
    model = SequenceRegressor("lstm", 2, 8, 1)
    x, y = torch.randn(16, 5, 2), torch.randn(16, 1)
    opt = torch.optim.Adam(model.parameters())
    out = regress_step(model, (x, y), opt, update=Update(precision=make_precision("bf16", "cpu")))
    assert out["loss"] > 0


def test_fp32_is_the_plain_step_and_fp16_is_refused_off_cuda():
    fp32 = make_precision("fp32", "cpu")  # always a Precision: nullcontext, a disabled scaler
    assert not fp32.scaler.is_enabled() and fp32.state_dict() is None
    loss = torch.tensor(2.0, requires_grad=True)
    assert fp32.scale(loss) is loss
    with pytest.raises(ConfigError, match="fp16.*needs a CUDA device.*bf16 on CPU"):
        make_precision("fp16", "cpu")
    with pytest.raises(ConfigError, match="fp16.*needs a CUDA device"):
        apply_overrides(load_preset("digits-lstm"), ["--device=cpu", "--precision=fp16"])


def test_precision_is_refused_where_the_step_has_no_autocast():
    base = load_preset("digits-lstm")
    with pytest.raises(ConfigError, match="train.precision=bf16.*adversarial"):
        apply_overrides(base, ["--precision=bf16", "--train.adversarial=fgsm"])
    with pytest.raises(ConfigError, match="train.precision=bf16.*'gan'"):
        apply_overrides(base, ["--precision=bf16", "--model.family=gan", "--model.kind=mlp"])
    with pytest.raises(ConfigError, match="must be one of fp32, bf16, fp16"):
        apply_overrides(base, ["--precision=fp8"])


def test_cli_refuses_fp16_on_cpu_in_one_line_and_trains_bf16(tmp_path, capsys):
    from rnnlab.cli import main

    argv = ["train", "digits-lstm", "--dry-run", "--no-progress", "--device", "cpu"]
    assert main([*argv, "--precision", "fp16"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnlab: error: `train.precision=fp16` needs a CUDA device")
    assert err.count("\n") == 1
    assert main([*argv, "--precision", "bf16", "--train.epochs=1"]) == 0


def test_the_loss_scaler_state_is_checkpointed_and_resumed(tmp_path):
    """A CPU GradScaler stands in for CUDA's (same state_dict): the scale grows every step
    here, and a resumed run starts from the saved scale, not the initial one."""

    def scaled():
        scaler = torch.amp.GradScaler("cpu", init_scale=8.0, growth_interval=1)
        return Precision("bf16", "cpu", scaler=scaler)

    x, y = _toy(64)
    torch.manual_seed(0)
    model = SequenceClassifier("gru", 4, 8, 3)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    data = Batches(x, y, batch_size=32, seed=0)
    amp = scaled()
    run = RunDir.create(tmp_path, "r", {}, [])
    fit(
        model, opt, data, epochs=2, checkpointing=Checkpointing(run, extras={"scaler": amp}),
        options=FitOptions(log=None),
        train_step=functools.partial(classify_step, update=Update(precision=amp)),
    )  # fmt: skip
    saved = load_checkpoint(run.checkpoints / "last.pt")["scaler"]
    assert saved["scale"] == amp.scaler.get_scale() == 8.0 * 2**4  # 4 steps, none overflowed
    fresh = scaled()
    resume(run.checkpoints / "last.pt", model, opt, None, data, {"scaler": fresh})
    assert fresh.scaler.get_scale() == amp.scaler.get_scale()


def test_a_run_without_a_scaler_checkpoints_none(tmp_path):
    x, y = _toy(32)
    model = SequenceClassifier("gru", 4, 8, 3)
    run = RunDir.create(tmp_path, "r", {}, [])
    opt = torch.optim.Adam(model.parameters())
    saving = Checkpointing(run, extras={"scaler": make_precision("fp32", "cpu")})
    fit(model, opt, Batches(x, y, batch_size=32), epochs=1, checkpointing=saving,
        options=FitOptions(log=None), train_step=classify_step)  # fmt: skip
    assert load_checkpoint(run.checkpoints / "last.pt")["scaler"] is None


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_on_cuda(precision):
    amp = make_precision(precision, "cuda")
    assert amp.scaler.is_enabled() == (precision == "fp16")
    torch.manual_seed(0)
    model = SequenceClassifier("lstm", 4, 16, 3).cuda()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    x, y = (t.cuda() for t in _toy())
    losses = [classify_step(model, (x, y), opt, update=Update(precision=amp))["loss"]
              for _ in range(30)]  # fmt: skip
    assert losses[-1] < 0.5 * losses[0]


def _quiet(_):
    pass


def test_bf16_resume_continues_exactly(tmp_path):
    from rnnlab.training.experiment import train

    flags = ["--device=cpu", "--precision=bf16", "--train.schedule=none", "--data.limit=256",
             f"--run.out_dir={tmp_path}"]  # fmt: skip
    base = load_preset("digits-lstm")
    straight = apply_overrides(base, [*flags, "--train.epochs=2", "--run.name=straight"])
    train(straight, log=_quiet, progress=False)
    first = apply_overrides(base, [*flags, "--train.epochs=1", "--run.name=split"])
    train(first, log=_quiet, progress=False)
    first.train.epochs = 2
    train(first, resume_from=tmp_path / "split", log=_quiet, progress=False)
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
