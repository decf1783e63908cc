"""The one update path (rnnlab.training.update): a non-finite loss stops every family with
exit 1 and the last good checkpoint intact, clipping reaches a VAE's update, several losses at
the same parameters step only after all of them are checked."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from rnnlab.cli import main
from rnnlab.data.files import write_series
from rnnlab.data.ts_format import write_ts
from rnnlab.training import experiment
from rnnlab.training.checkpoint import load_checkpoint
from rnnlab.training.config import apply_overrides, load_preset
from rnnlab.training.experiment import build_data, build_model, steps_for, train
from rnnlab.training.loop import TrainingStopped
from rnnlab.training.optim import build_optimizer
from rnnlab.training.update import NonFiniteError, Update

ADDING = ["--data.seq_len=10", "--data.n_train=64", "--data.n_test=32"]
TINY = {
    "classify": ("digits-lstm", ["--model.hidden_size=8"]),
    "regress": ("adding-lstm", [*ADDING, "--model.hidden_size=8"]),
    "tbptt": ("adding-lstm", [*ADDING, "--model.family=tbptt", "--train.tbptt_k=4",
                              "--model.hidden_size=8"]),
    "autoencode": ("ae-basic", ["--data.dataset=digits", "--model.latent_dim=4"]),
    "vae": ("vae-mnist", ["--data.dataset=digits", "--model.hidden_size=8", "--train.iw_k=0"]),
    "gan": ("gan-mnist", ["--data.dataset=digits", "--model.hidden_size=8"]),
    "vaegan": ("vaegan-mnist", ["--data.dataset=digits", "--model.base_channels=4"]),
    # the families on text and on the user's own files: tiny files the test writes (FILES)
    "language-model": ("char-shakespeare", ["--data.dataset=text", "--model.hidden_size=8",
                                            "--model.embed_dim=4", "--data.bptt=8"]),
    "text-classify": ("sst2-bilstm", ["--data.dataset=text", "--model.hidden_size=8",
                                      "--model.embed_dim=4"]),
    "seq-classify": ("seq-classify", ["--model.hidden_size=8"]),
    "forecast": ("forecast", ["--data.target=OT", "--data.input_len=8", "--data.horizon=2",
                              "--data.split=0.6,0.2", "--model.hidden_size=8"]),
    "seq-anomaly": ("seq-anomaly", ["--data.window=8", "--data.probation=0.5",
                                    "--model.hidden_size=8", "--model.latent_dim=2"]),
}  # fmt: skip
NEW = ["language-model", "text-classify", "seq-classify", "forecast", "seq-anomaly"]


def _corpus(tmp_path) -> list[str]:
    words = "the cat sat on the mat . a dog ran to the cat .".split()
    rng = np.random.default_rng(0)
    (tmp_path / "corpus.txt").write_text(" ".join(rng.choice(words, 300)) + "\n")
    return [f"--data.path={tmp_path / 'corpus.txt'}"]


def _labelled(tmp_path) -> list[str]:
    lines = [("pos", "a good film"), ("neg", "a bad film"), ("pos", "good good")] * 16
    for name, rows in (("train.tsv", lines), ("test.tsv", lines[:8])):
        (tmp_path / name).write_text("".join(f"{y}\t{text}\n" for y, text in rows))
    return [f"--data.train={tmp_path / 'train.tsv'}", f"--data.test={tmp_path / 'test.tsv'}"]


def _ts(tmp_path) -> list[str]:
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(int(n), 2)) + i % 2 for i, n in enumerate(rng.integers(5, 9, 60))]
    write_ts(tmp_path / "d.ts", seqs, [str(i % 2) for i in range(60)])
    return [f"--data.train={tmp_path / 'd.ts'}"]


def _series(tmp_path) -> list[str]:
    t = np.arange(300)
    values = np.stack([np.sin(t / 4), np.cos(t / 4)], 1)
    time = [f"2020-01-{1 + i // 24:02d} {i % 24:02d}:00:00" for i in t]
    return [f"--data.path={write_series(tmp_path / 's.csv', values, ['load', 'OT'], time)}"]


FILES = {"language-model": _corpus, "text-classify": _labelled, "seq-classify": _ts,
         "forecast": _series, "seq-anomaly": _series}  # fmt: skip


def _flags(family, tmp_path) -> list[str]:
    """The tiny run's flags (the preset's data files written into ``tmp_path``)."""
    data = FILES[family](tmp_path) if family in FILES else ["--data.limit=96"]
    common = ["--train.epochs=3", "--train.max_steps=2", "--data.batch_size=16",
              f"--run.out_dir={tmp_path}", "--run.name=r"]  # fmt: skip
    return [*common, *data, *TINY[family][1]]


def _cfg(family, tmp_path, *flags):
    return apply_overrides(load_preset(TINY[family][0]), [*_flags(family, tmp_path), *flags])


@pytest.mark.parametrize("family", list(TINY))
def test_a_nan_stops_every_family_and_keeps_the_last_good_checkpoint(family, tmp_path, monkeypatch):
    built = []

    def spy(*args):
        built.append(build_model(*args))
        return built[-1]

    def poison(state, record):  # after epoch 1's checkpoint, one weight becomes NaN
        if state.epoch == 1:
            with torch.no_grad():
                next(p for p in built[-1].parameters() if p.requires_grad).fill_(math.nan)

    monkeypatch.setattr(experiment, "build_model", spy)
    with pytest.raises(TrainingStopped, match="non-finite at epoch 2, step 3"):
        train(_cfg(family, tmp_path), on_epoch_end=poison, log=lambda _: None)
    last = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")
    assert last["fit"]["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in last["model"].values())
    assert "last good checkpoint" in (tmp_path / "r" / "summary.txt").read_text()


@pytest.mark.parametrize("preset", ["vae-mnist", "gan-mnist", "vaegan-mnist"])
def test_an_exploding_generative_run_exits_1_with_one_line(preset, tmp_path, capsys):
    argv = ["train", preset, "--data.dataset=digits", "--train.lr=1e30", "--train.epochs=2",
            "--train.max_steps=3", "--data.limit=64", f"--run.out_dir={tmp_path}"]  # fmt: skip
    argv += ["--train.iw_k=0"] if preset == "vae-mnist" else []
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("rnnlab: error: training stopped: loss = ") and err.count("\n") == 1
    for last in tmp_path.glob("*/checkpoints/last.pt"):  # the last good one, if any was made
        assert all(torch.isfinite(v).all() for v in load_checkpoint(last)["model"].values())
    assert not list(tmp_path.glob(".*"))  # no partial folder or temp file left


@pytest.mark.parametrize("family", NEW)
def test_a_nan_in_a_new_family_exits_1_with_one_line_and_a_loadable_checkpoint(
    family, tmp_path, capsys, monkeypatch
):
    def poison(model):  # after epoch 1's checkpoint, one weight becomes NaN
        def hook(state, record):
            if state.epoch == 1:
                with torch.no_grad():
                    next(p for p in model.parameters() if p.requires_grad).fill_(math.nan)

        return hook

    hooked = experiment._epoch_hook
    monkeypatch.setattr(experiment, "_epoch_hook", lambda *a: hooked(*a[:5], poison(a[4])))
    assert main(["train", TINY[family][0], *_flags(family, tmp_path), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("rnnlab: error: training stopped: ") and err.count("\n") == 1, err
    assert "(non-finite at epoch 2, step 3)" in err
    run = tmp_path / "r"
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["fit"]["epoch"] == 1 and last["fit"]["step"] == 2
    cfg = _cfg(family, tmp_path)
    model = build_model(cfg, build_data(cfg).spec)
    model.load_state_dict(last["model"])  # the last good weights load into the family's model
    assert all(torch.isfinite(p).all() for p in model.state_dict().values())
    assert "last good checkpoint" in (run / "summary.txt").read_text()
    assert not list(tmp_path.glob(".*")) and not list(run.rglob("*.tmp"))  # nothing half-written


def _vae_delta(*flags):
    cfg = apply_overrides(load_preset("vae-mnist"), ["--data.dataset=digits", "--train.iw_k=0",
                          "--model.hidden_size=16", "--train.optimizer=sgd", "--train.lr=1",
                          *flags])  # fmt: skip
    data = build_data(cfg, dry_run=True)
    torch.manual_seed(0)
    model = build_model(cfg, data.spec)
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    out = steps_for(cfg)[0](model, tuple(t[:32] for t in data.train), build_optimizer(cfg, model))
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    return float((after - before).norm()), out


def test_clip_norm_reaches_the_vae_update():
    free, out = _vae_delta()
    clipped, out_clipped = _vae_delta("--train.clip_norm=0.001")
    assert out["grad_norm"] == pytest.approx(out_clipped["grad_norm"])  # measured before clipping
    assert free == pytest.approx(out["grad_norm"], rel=1e-4) and free > 0.01  # SGD, lr 1
    assert clipped == pytest.approx(0.001, rel=1e-3)  # the step is the clipped gradient


def test_kernel_l2_reaches_the_vae_update():
    _, out = _vae_delta("--train.kernel_l2=10")
    assert out["penalty"] > 0


def test_many_checks_every_part_before_any_steps():
    a, b = nn.Linear(2, 1), nn.Linear(2, 1)
    opt_a, opt_b = (torch.optim.SGD(m.parameters(), lr=1.0) for m in (a, b))
    x = torch.randn(4, 2)
    before = [p.detach().clone() for p in a.parameters()]
    loss_a, loss_b = a(x).sum(), b(x).sum() * math.inf
    with pytest.raises(NonFiniteError):
        Update().many({"a": (loss_a, a, opt_a), "b": (loss_b, b, opt_b)})
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), before, strict=True))


def test_many_differentiates_each_loss_wrt_its_own_module_only():
    a, b = nn.Linear(2, 1, bias=False), nn.Linear(2, 1, bias=False)
    x = torch.randn(4, 2)
    shared = (a(x) * b(x)).sum()
    opt_a, opt_b = (torch.optim.SGD(m.parameters(), lr=1.0) for m in (a, b))
    wa, wb = a.weight.detach().clone(), b.weight.detach().clone()
    out = Update().many({"a": (shared, a, opt_a), "b": (2 * shared, b, opt_b)})
    ga = (x * (x @ wb.T)).sum(0)  # d shared / d w_a
    gb = 2 * (x * (x @ wa.T)).sum(0)  # d (2 shared) / d w_b
    torch.testing.assert_close(a.weight.detach(), wa - ga[None])
    torch.testing.assert_close(b.weight.detach(), wb - gb[None])
    assert out["a"]["grad_norm"] == pytest.approx(float(ga.norm()))
