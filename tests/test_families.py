"""The generative families through the one engine: each step moves the right parameters,
each family trains through the CLI and leaves its sample grids, a GAN resumes bit-exactly,
and the sample writer leaves the global RNG alone."""

import pytest
import torch

from rnnlab.cli import main
from rnnlab.training import families
from rnnlab.training.checkpoint import RunDir, load_checkpoint
from rnnlab.training.config import ConfigError, apply_overrides, load_preset
from rnnlab.training.experiment import build_data, build_model, model_input, steps_for, train
from rnnlab.training.optim import MultiOptimizer, build_optimizer

# the image families that write samples (the language model's samples are text: its tests
# are tests/test_text_families.py)
GENERATIVE = [f for f in families.names()
              if "samples" in families.get(f).supports and f != "language-model"]  # fmt: skip
KINDS = [(f, k) for f in GENERATIVE for k in families.get(f).kinds]
TINY = ["--data.limit=96", "--batch_size=16", "--hidden_size=8", "--latent_dim=4",
        "--base_channels=4", "--epochs=1", "--no-progress", "--schedule=none",
        "--clip_norm=none", "--samples=8"]  # fmt: skip


SECTION = {"hidden_size": "model", "latent_dim": "model", "base_channels": "model",
           "samples": "train"}  # fmt: skip


def _tiny(family, flags=TINY):
    """``flags`` without the sizes ``family`` does not use (it would refuse them)."""

    def used(flag):
        name = flag[2:].split("=")[0]
        return name not in SECTION or families.get(family).uses(f"{SECTION[name]}.{name}")

    return [f for f in flags if used(f)]


PRESET = {"autoencode": "ae-basic", "vae": "vae-mnist", "gan": "gan-mnist",
          "vaegan": "vaegan-mnist"}  # fmt: skip


def _cfg(family, kind, *flags):
    flags = ["--data.dataset=digits", f"--kind={kind}", *_tiny(family, TINY[:5]), *flags]
    return apply_overrides(load_preset(PRESET[family]), [*flags, "--schedule=none",
                                                         "--clip_norm=none"])  # fmt: skip


def _built(family, kind):
    cfg = _cfg(family, kind)
    data = build_data(cfg, dry_run=True)
    model = build_model(cfg, data.train[0][0], data.num_classes)
    parts = families.get(family).parts
    opt = build_optimizer(cfg, model, parts(model) if parts else None)
    return cfg, data, model, opt


@pytest.mark.parametrize(("family", "kind"), KINDS)
def test_one_step_moves_every_trainable_parameter_of_the_model(family, kind):
    cfg, data, model, opt = _built(family, kind)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    train_step, eval_step = steps_for(cfg)
    metrics = train_step(model, tuple(t[:16] for t in data.train), opt)
    assert metrics and all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    moved = {
        n for n, p in model.named_parameters() if n in before and not torch.equal(p, before[n])
    }
    unused = {n for n in before if "minibatch" in n}  # none here: minibatch is off
    assert moved == set(before) - unused
    assert eval_step(model, tuple(t[:16] for t in data.test))


@pytest.mark.parametrize("family", ["gan", "vaegan"])
def test_each_optimizer_holds_exactly_its_part(family):
    cfg, _, model, opt = _built(family, families.get(family).kinds[0])
    assert isinstance(opt, MultiOptimizer)
    groups = {name: {id(p) for g in o.param_groups for p in g["params"]}
              for name, o in opt.optimizers.items()}  # fmt: skip
    seen = [i for ids in groups.values() for i in ids]
    assert len(seen) == len(set(seen)) == len(list(model.parameters()))
    if family == "gan":
        assert groups["g"] == {id(p) for p in model.generator.parameters()}
        assert groups["d"] == {id(p) for p in model.discriminator.parameters()}
        assert opt["g"].param_groups[0]["betas"] == (0.5, 0.999)  # Radford et al.


def test_the_generator_phase_does_not_move_the_discriminator():
    cfg, data, model, opt = _built("gan", "mlp")
    d_before = [p.detach().clone() for p in model.discriminator.parameters()]
    opt["d"].param_groups[0]["lr"] = 0.0  # D's own update is a no-op: any change is a leak
    steps_for(cfg)[0](model, tuple(t[:16] for t in data.train), opt)
    assert all(
        torch.equal(a, b) for a, b in zip(d_before, model.discriminator.parameters(), strict=True)
    )


def test_a_conditional_gan_with_minibatch_discrimination_trains_on_the_labels():
    cfg = _cfg("gan", "dcgan", "--conditional=true", "--minibatch_kernels=3")
    data = build_data(cfg, dry_run=True)
    model = build_model(cfg, data.train[0][0], data.num_classes)
    assert model.n_classes == 10
    opt = build_optimizer(cfg, model, families.get("gan").parts(model))
    out = steps_for(cfg)[0](model, tuple(t[:16] for t in data.train), opt)
    assert {"d_loss", "g_loss"} <= set(out)


def test_model_input_shapes_and_ranges():
    images = torch.rand(3, 8, 8)
    shapes = {("autoencode", "basic"): (3, 64), ("autoencode", "conv"): (3, 1, 8, 8),
              ("autoencode", "lstm"): (3, 8, 8), ("vae", "mlp"): (3, 1, 8, 8),
              ("gan", "mlp"): (3, 1, 8, 8)}  # fmt: skip
    for (family, kind), shape in shapes.items():
        x = model_input(_cfg(family, kind), images)
        assert tuple(x.shape) == shape
    assert model_input(_cfg("gan", "mlp"), images).min() < 0  # tanh range [-1, 1]


def test_a_kind_from_another_family_is_refused_with_the_choices():
    with pytest.raises(ConfigError, match="`model.kind` for family 'gan' must be one of mlp"):
        _cfg("gan", "lstm")
    with pytest.raises(ConfigError, match="no single loss to monitor"):
        _cfg("gan", "mlp", "--patience=2")


@pytest.mark.parametrize("family", GENERATIVE)
def test_dry_run_of_each_family_through_the_cli(family, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["train", PRESET[family], "--dry-run", "--data.dataset=digits", *_tiny(family),
            f"--kind={families.get(family).kinds[-1]}"]  # fmt: skip
    assert main(argv) == 0
    assert "dry run" in capsys.readouterr().out
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("family", "kind"), [("autoencode", "conv"), ("vae", "mlp"),
                                              ("gan", "mlp"), ("vaegan", "dcgan")])  # fmt: skip
def test_a_run_writes_samples_each_epoch(family, kind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["train", PRESET[family], "--data.dataset=digits", f"--kind={kind}", "--run.name=r",
            *_tiny(family), "--epochs=2", "--max_steps=2"]  # fmt: skip
    argv += ["--iw_k=3"] if family == "vae" else []
    assert main(argv) == 0
    run = tmp_path / "runs" / "r"
    names = sorted(p.name for p in (run / "samples").glob("*.png"))
    expected = {"autoencode": ["reconstructions"], "gan": ["samples"]}.get(
        family, ["reconstructions", "samples"]
    )
    assert names == sorted(f"{n}-epoch{e:03d}.png" for n in expected for e in (1, 2))
    final = RunDir.open(run).metrics()[-1]
    key = {"autoencode": "test_mse", "vae": "test_nll_binarized", "gan": "test_d_loss",
           "vaegan": "test_encoder_loss"}[family]  # fmt: skip
    assert key in final
    assert main(["evaluate", str(run)]) == 0


def test_gan_resume_is_bit_identical(tmp_path):
    def cfg(name):
        flags = [*TINY[:5], "--family=gan", "--kind=dcgan", "--epochs=3", "--max_steps=2",
                 "--deterministic=true", "--device=cpu", f"--run.name={name}",
                 f"--run.out_dir={tmp_path}", "--schedule=cosine", "--clip_norm=none",
                 "--samples=8"]  # fmt: skip
        return apply_overrides(load_preset("digits-lstm"), flags)

    quiet = {"log": lambda s: None, "progress": False}
    train(cfg("whole"), **quiet)

    def stop_after_epoch_1(line):
        if line.startswith("epoch 1/3"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg("split"), log=stop_after_epoch_1, progress=False)
    train(cfg("split"), resume_from=tmp_path / "split", **quiet)
    whole = load_checkpoint(tmp_path / "whole" / "checkpoints" / "last.pt")
    split = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    assert whole["fit"] == split["fit"]
    for key, value in whole["model"].items():
        assert torch.equal(value, split["model"][key]), key
    for part in ("g", "d"):
        for a, b in zip(whole["optimizer"][part]["state"].values(),
                        split["optimizer"][part]["state"].values(), strict=True):  # fmt: skip
            assert torch.equal(a["exp_avg"], b["exp_avg"])
    assert whole["scheduler"] == split["scheduler"]


def test_sample_grids_leave_the_global_rng_and_the_modes_alone(tmp_path):
    for family, kind in (("vae", "conv"), ("gan", "dcgan"), ("autoencode", "denoising")):
        cfg, data, model, _ = _built(family, kind)
        model.train()
        writer = families.get(family).samples(cfg, data, lambda: tmp_path)
        state = torch.get_rng_state()
        paths = writer(model, 7)
        assert torch.equal(state, torch.get_rng_state())
        assert all(m.training for m in model.modules())
        assert all(p.endswith("-epoch007.png") for p in paths) and paths


@pytest.mark.parametrize("scale", [False, True])
def test_minibatch_scale_reaches_the_discriminator(scale):
    cfg = _cfg("gan", "mlp", "--minibatch_kernels=3", f"--minibatch_scale={scale}")
    data = build_data(cfg, dry_run=True)
    model = build_model(cfg, data.spec)
    (layer,) = [m for m in model.modules() if hasattr(m, "initialised")]
    assert bool(layer.initialised) is not scale  # a scaled layer waits for its first batch


def test_step_context_binds_the_update_and_the_family_options():
    from rnnlab.training.update import Update

    ctx = families.StepContext(update=Update(clip_norm=1.0))
    seen = []

    def train(model, batch, optimizer, *, update, beta=0.0):
        seen.append(("train", update, beta))

    def evaluate(model, batch, *, beta=0.0):
        seen.append(("eval", beta))

    step, ev = ctx.bind(train, evaluate, beta=4.0)
    step(None, None, None)
    ev(None, None)
    assert seen == [("train", ctx.update, 4.0), ("eval", 4.0)]
    assert ctx.bind(train, evaluate)[1] is evaluate  # no options: the eval step as it is
    vae = apply_overrides(load_preset("vae-mnist"), ["--train.beta=4"])
    train_step, eval_step = families.get("vae").steps(vae, ctx)
    assert train_step.keywords == {"update": ctx.update, "beta": 4.0}
    assert eval_step.keywords == {"beta": 4.0}
