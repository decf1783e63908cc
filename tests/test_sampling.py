"""`rnnlab sample` (rnnlab.cli.sample) on tiny runs trained on the embedded digits."""

import pytest
import torch

from rnnlab.cli import main
from rnnlab.training import families
from rnnlab.training.config import apply_overrides, load_preset
from rnnlab.training.experiment import train


def sample_main(argv):
    return main(["sample", *argv])


TINY = ["--data.dataset=digits", "--train.epochs=1", "--train.max_steps=2", "--train.samples=4"]


def _run(tmp_path, preset: str, *extra: str) -> str:
    cfg = load_preset(preset)
    flags = [*TINY, f"--run.out_dir={tmp_path}", f"--run.name={preset}", *extra]
    if not families.get(cfg.model.family).uses("train.samples"):  # a classifier refuses it
        flags.remove("--train.samples=4")
    cfg = apply_overrides(cfg, flags)
    return train(cfg, log=lambda _: None, progress=False)["run"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runs")
    return {
        "vae": _run(tmp, "vae-mnist", "--train.iw_k=0", "--model.hidden_size=16"),
        "dcgan": _run(tmp, "dcgan-mnist", "--model.base_channels=4"),
        "cgan": _run(tmp, "cgan-mnist", "--model.hidden_size=16"),
    }


def _png(path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kind", ["vae", "dcgan", "cgan"])
def test_sample_writes_a_png_grid(runs, tmp_path, kind, capsys):
    out = tmp_path / "grid.png"
    assert sample_main([runs[kind], "--n", "12", "--out", str(out), "--seed", "3"]) == 0
    assert _png(out)
    assert "wrote 12 samples" in capsys.readouterr().out


def test_same_seed_same_grid_and_global_rng_untouched(runs, tmp_path):
    a, b, c = (tmp_path / f"{n}.png" for n in "abc")
    state = torch.get_rng_state()
    sample_main([runs["dcgan"], "--n", "8", "--out", str(a), "--seed", "1"])
    sample_main([runs["dcgan"], "--n", "8", "--out", str(b), "--seed", "1"])
    sample_main([runs["dcgan"], "--n", "8", "--out", str(c), "--seed", "2"])
    assert torch.equal(torch.get_rng_state(), state)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_label_for_a_cgan(runs, tmp_path):
    out = tmp_path / "three.png"
    assert sample_main([runs["cgan"], "--n", "5", "--label", "3", "--out", str(out)]) == 0
    assert _png(out)


@pytest.mark.parametrize(
    ("kind", "args", "message"),
    [
        ("dcgan", ["--label", "1"], "needs a conditional GAN"),
        ("cgan", ["--label", "10"], "--label must be in 0..9"),
        ("vae", ["--n", "0"], "positive integer"),
        (None, [], "is not a run folder"),
    ],
)
def test_bad_input_is_one_line_and_status_2(runs, tmp_path, capsys, kind, args, message):
    run = runs[kind] if kind else str(tmp_path / "no-such-run")
    assert sample_main([run, "--out", str(tmp_path / "x.png"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnlab: error:") and message in err and err.count("\n") == 1


def test_refuses_a_classifier_run(tmp_path, capsys):
    run = _run(tmp_path, "cnn-mnist")
    assert sample_main([run, "--out", str(tmp_path / "x.png")]) == 2
    assert "sample takes gan, vae, vaegan runs" in capsys.readouterr().err
