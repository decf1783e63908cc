"""The ``rnnlab`` command line, called in-process: every verb, and every kind of bad input
gives one line on stderr, exit status 2, no traceback and no half-made run folder."""

import numpy as np
import pytest
import torch

from rnnlab.cli import main
from rnnlab.data import write_idx

TINY = ["--data.limit=96", "--batch_size=32", "--hidden_size=8", "--epochs=1", "--no-progress"]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """No real datasets from the home cache or $RNNLAB_DATA; runs go to tmp_path."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RNNLAB_DATA", raising=False)
    monkeypatch.chdir(tmp_path)


def _error(capsys, argv, code=2):
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("rnnlab: error: ") and "\n" not in err and "Traceback" not in err
    return err


def _mnist(folder, images, labels):
    folder.mkdir(parents=True, exist_ok=True)
    for prefix in ("train", "t10k"):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels)


def test_presets_lists_each_with_its_description(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "listing-5-2" in out and "Listing 5.2: SimpleRNN(256)" in out


def test_summary_prints_listing_5_2_in_keras_format(capsys):
    assert main(["summary", "listing-5-2"]) == 0
    out = capsys.readouterr().out
    assert "simple_rnn (SimpleRNN)" in out and "72960" in out and "Total params: 75,530" in out


def test_summary_of_listing_5_5_and_of_a_vae_gan(capsys):
    assert main(["summary", "gan-mnist"]) == 0
    assert "Total params: 214,673" in capsys.readouterr().out  # G 114,064 + D 100,609
    assert main(["summary", "vaegan-mnist"]) == 0
    assert "discriminator" in capsys.readouterr().out


def test_dry_run_trains_on_synthetic_data_and_keeps_nothing(tmp_path, capsys):
    assert main(["train", "listing-5-2", "--dry-run", *TINY]) == 0  # mnist is not here
    assert "dry run" in capsys.readouterr().out
    assert not (tmp_path / "runs").exists()


def test_train_evaluate_predict_and_resume(tmp_path, capsys):
    args = ["train", "digits-lstm", "--run.name=d", *TINY, "--device=cpu", "--schedule=step"]
    assert main(args) == 0
    run = tmp_path / "runs" / "d"
    assert {p.name for p in run.iterdir()} >= {"config.json", "metrics.jsonl", "summary.txt"}
    assert main(["evaluate", str(run)]) == 0
    assert "test_accuracy" in capsys.readouterr().out
    np.save(tmp_path / "x.npy", np.zeros((3, 8, 8), np.float32))
    assert main(["predict", str(run), str(tmp_path / "x.npy")]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3
    assert main(["train", "--resume", str(run), "--epochs=2", "--no-progress"]) == 0
    assert '"epoch": 2' in (run / "metrics.jsonl").read_text()


def test_resume_refuses_to_stretch_a_one_cycle_schedule(tmp_path, capsys):
    assert main(["train", "digits-lstm", "--run.name=o", *TINY]) == 0
    err = _error(capsys, ["train", "--resume", "runs/o", "--epochs=2"])
    assert "`train.epochs` must stay 1 to resume a onecycle schedule" in err


def test_missing_dataset_says_where_it_looked_and_how_to_get_it(tmp_path, capsys):
    err = _error(capsys, ["train", "listing-5-2", f"--data-dir={tmp_path / 'none'}", *TINY])
    assert "looked in:" in err and str(tmp_path / "none") in err
    assert "rnnlab datasets download mnist" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_corrupted_idx_is_reported(tmp_path, capsys):
    folder = tmp_path / "data" / "mnist"
    _mnist(folder, np.zeros((4, 28, 28), np.uint8), np.zeros(4, np.uint8))
    (folder / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x09\x03garbage")
    err = _error(capsys, ["train", "listing-5-2", f"--data-dir={tmp_path / 'data'}", *TINY])
    assert "train-images-idx3-ubyte" in err
    assert not any((tmp_path / "runs").glob("*")) if (tmp_path / "runs").exists() else True


def test_nan_in_the_data_is_reported(tmp_path, capsys):
    images = np.full((4, 28, 28), np.nan, np.float32)
    _mnist(tmp_path / "data" / "mnist", images, np.zeros(4, np.uint8))
    err = _error(capsys, ["train", "listing-5-2", f"--data-dir={tmp_path / 'data'}", *TINY])
    assert "finite" in err or "NaN" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "lstm-row"], "did you mean `lstm-rows`"),
        (["train", "digits-lstm", "--train.lrr=1"], "did you mean `train.lr`"),
        (["train", "digits-lstm", "--epochs=many"], "`train.epochs` expects int, got 'many'"),
        (["train", "digits-lstm", "--device=tpu"], "invalid choice: 'tpu'"),
        (["train"], "needs a PRESET"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["evaluate", "nowhere"], "nowhere is not a run folder"),
        (["datasets", "download"], "needs a NAME"),
        (["presets", "--lr=3"], "unrecognized arguments: --lr=3"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    assert message in _error(capsys, argv)


def test_predict_rejects_images_of_the_wrong_size_or_with_nan(tmp_path, capsys):
    assert main(["train", "digits-lstm", "--run.name=p", *TINY]) == 0
    np.save(tmp_path / "big.npy", np.zeros((2, 28, 28), np.uint8))
    assert "expects (8, 8) images" in _error(
        capsys, ["predict", "runs/p", str(tmp_path / "big.npy")]
    )
    np.save(tmp_path / "nan.npy", np.full((2, 8, 8), np.nan, np.float32))
    assert "NaN" in _error(capsys, ["predict", "runs/p", str(tmp_path / "nan.npy")])


def test_datasets_lists_each_with_where_it_is(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "digits" in out and "rnnlab datasets download mnist" in out


def test_tour_is_delegated_or_reported(capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "rnnlab.tour", None)  # import fails
    _error(capsys, ["tour"])


@pytest.fixture
def tiny_run(tmp_path):
    """A trained (one tiny epoch) LSTM row classifier on the embedded digits."""
    assert main(["train", "digits-lstm", "--run.name=a", *TINY, "--device=cpu"]) == 0
    return tmp_path / "runs" / "a"


def test_attack_prints_accuracies_and_merges_a_robustness_curve(tiny_run, capsys):
    import json

    argv = ["attack", str(tiny_run), "--method=pgd", "--steps=3", "--limit=40"]
    assert main([*argv, "--eps-list=0.1,0.3"]) == 0
    out = capsys.readouterr().out
    assert "clean accuracy" in out and "pgd eps 0.3: robust accuracy" in out
    assert main(["attack", str(tiny_run), "--method=fgsm", "--eps=0.2", "--limit=40"]) == 0
    assert main([*argv, "--eps=0.2", "--dry-run"]) == 0  # synthetic test split, same shapes
    data = json.loads((tiny_run / "robustness.json").read_text())
    assert set(data) == {"a pgd-3", "a fgsm"}
    assert [p["eps"] for p in data["a pgd-3"]] == [0.0, 0.1, 0.2, 0.3]  # merged, sorted
    assert all(0 <= p["accuracy"] <= 1 for p in data["a pgd-3"])
    assert (tiny_run / "samples" / "adversarial.png").stat().st_size > 0


def test_gradients_of_a_run_and_of_a_preset(tiny_run, tmp_path, capsys):
    import json

    assert main(["gradients", str(tiny_run), "--batch=16"]) == 0
    assert "0/last" in capsys.readouterr().out
    assert len(json.loads((tiny_run / "gradients.json").read_text())["a"]) == 8  # T = 8 rows
    assert (tiny_run / "gradients.png").is_file()
    out = tmp_path / "g"
    assert main(["gradients", "digits-lstm", "--hidden_size=4", f"--out={out}"]) == 0
    assert set(json.loads((out / "gradients.json").read_text())) == {"digits-lstm (untrained)"}


def test_gates_draws_the_heatmaps_of_one_test_example(tiny_run, capsys):
    assert main(["gates", str(tiny_run), "--index=2"]) == 0
    assert "test example 2: label" in capsys.readouterr().out
    assert (tiny_run / "gates" / "example-2-layer0.png").stat().st_size > 0


def test_report_and_tune_are_delegated(tiny_run, tmp_path, capsys, monkeypatch):
    import sys

    assert main(["report", str(tiny_run), f"--out={tmp_path / 'rep'}"]) == 0
    assert (tmp_path / "rep").is_dir() and any((tmp_path / "rep").iterdir())
    import rnnlab.tune.study as study

    calls = []
    monkeypatch.setattr(study, "tune", lambda job, **kw: calls.append(kw) or
                        {"best_trial": 0, "best_value": 0.5, "files": {}})  # fmt: skip
    argv = ["tune", "digits-lstm", "--space=tune-digits-lstm", "--trials=1",
            f"--study-dir={tmp_path / 's'}"]  # fmt: skip
    assert main(argv) == 0
    assert calls == [{"trials": 1, "workers": 1, "resume": False}]
    monkeypatch.setitem(sys.modules, "rnnlab.tune", None)  # not installed
    assert "`rnnlab tune` is not available" in _error(
        capsys, ["tune", "x", "--space=s", "--trials=1"]
    )


def test_sample_is_delegated(tmp_path, capsys):
    flags = ["--family=gan", "--kind=mlp", "--run.name=s", "--latent_dim=4", "--samples=8"]
    assert main(["train", "digits-lstm", *TINY, *flags, "--schedule=none"]) == 0
    assert main(["sample", "runs/s", "--n", "8", "--out", str(tmp_path / "g.png")]) == 0
    assert (tmp_path / "g.png").stat().st_size > 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["attack", "runs/a", "--eps=-1"], "expected a number >= 0, got '-1'"),
        (["attack", "runs/a", "--method=cw"], "invalid choice: 'cw'"),
        (["attack", "runs/a", "--steps=0"], "expected an integer >= 1"),
        (["attack", "runs/g"], "attack needs a classify run; RUN runs/g is a gan run"),
        (["gates", "runs/a", "--index=999"], "`--index` must be in [0, "),
        (["gradients", "cnn-mnist", "--dry-run"], "gradients needs a recurrent model"),
        (["predict", "runs/g", "x.npy"], "is a gan run; predict takes image classifiers"),
    ],
)
def test_bad_inspection_input_is_one_line_and_exit_2(tiny_run, tmp_path, capsys, argv, message):
    flags = ["--family=gan", "--kind=mlp", "--run.name=g", "--latent_dim=4", "--samples=8"]
    assert main(["train", "digits-lstm", *TINY, *flags, "--schedule=none"]) == 0
    np.save(tmp_path / "x.npy", np.zeros((1, 8, 8), np.float32))
    capsys.readouterr()
    assert message in _error(capsys, argv)


def test_evaluate_scores_a_generative_run_offline(tmp_path, capsys, monkeypatch):
    from rnnlab.evaluation import generative_report

    monkeypatch.setattr(generative_report, "CACHE", tmp_path / "cache")
    out = tmp_path / "runs"
    assert main(["train", "vae-mnist", "--data.dataset=digits", "--train.epochs=1",
                 "--train.iw_k=0", "--model.hidden_size=16", f"--run.out_dir={out}",
                 "--run.name=v", "--no-progress"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["evaluate", str(out / "v"), "--n", "64", "--iw-k", "2"]) == 0
    text = capsys.readouterr().out
    for key in ("test_neg_elbo", "not Inception", "fid:", "kid:", "classes_covered:",
                "test_nll_binarized:"):  # fmt: skip
        assert key in text


# --- one parser (issue 13, item 5) ---------------------------------------------------------


def test_version_and_help_come_from_the_one_parser(capsys):
    from rnnlab import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"rnnlab {__version__}"
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--section.key=value" in out and "rnnlab config" in out and "--resume" in out
    assert main(["presets", "--help"]) == 0  # a verb lists only the options it takes
    out = capsys.readouterr().out
    assert "--device" not in out and "--dry-run" not in out
    assert main(["gates", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--index" in out and "--precision" not in out and "--resume" not in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--device", "cpu", "train"], "options follow the VERB"),
        (["report"], "the following arguments are required: RUN"),
        (["report", "nowhere"], "nowhere"),
        (["tune", "digits-lstm"], "the following arguments are required: --space, --trials"),
        (["sample"], "the following arguments are required: run"),
        (["tour", "--parts=nope"], "unknown part(s) ['nope']"),
        (["config", "digits-lstm", "--train.lr=-1"], "`train.lr` must be"),
        (["gates", "runs/a", "--precision=bf16"], "unrecognized arguments: --precision=bf16"),
        ([], "a VERB is required"),
    ],
)
def test_every_verb_errs_in_the_same_one_line_form(capsys, argv, message):
    assert message in _error(capsys, argv)


def test_every_verb_module_declares_what_the_table_needs():
    import importlib

    from rnnlab.cli import VERBS
    from rnnlab.cli.common import SHARED

    for name, module_name in VERBS.items():
        module = importlib.import_module(module_name)
        assert module.HELP and "\n" not in module.HELP, name
        assert set(module.SHARED) <= set(SHARED), name
        assert isinstance(module.OVERRIDES, bool) and callable(module.run), name
        assert callable(module.add_arguments), name


def test_config_prints_every_key_with_a_comment_and_loads_back(tmp_path, capsys):
    import dataclasses

    import tomllib

    from rnnlab.training.config import (
        SECTIONS,
        apply_overrides,
        config_from_dict,
        config_to_dict,
        load_preset,
    )

    assert main(["config", "digits-lstm", "--train.lr=3e-3", "--model.hidden_size=32"]) == 0
    text = capsys.readouterr().out
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            lines = [line for line in text.splitlines()
                     if line.lstrip("# ").startswith(f"{f.name} = ")]  # fmt: skip
            assert lines and all("  # " in line for line in lines), (section, f.name)
    want = apply_overrides(load_preset("digits-lstm"), ["--train.lr=3e-3", "--hidden_size=32"])
    got = config_from_dict(tomllib.loads(text))
    assert config_to_dict(got) == config_to_dict(want)
    (tmp_path / "mine.toml").write_text(text)
    assert main(["config", str(tmp_path / "mine.toml")]) == 0
    assert capsys.readouterr().out.replace('preset = "mine"', 'preset = "digits-lstm"') == text


def test_model_implementation_reference_trains_and_a_wrong_one_names_the_choices(capsys):
    from rnnlab.layers.recurrent import RNN
    from rnnlab.training import experiment
    from rnnlab.training.config import apply_overrides, load_preset

    argv = ["train", "digits-lstm", "--model.implementation=reference", "--dry-run", *TINY]
    assert main(argv) == 0 and "test_accuracy" in capsys.readouterr().out
    cfg = apply_overrides(load_preset("digits-lstm"), ["--model.implementation=reference"])
    model = experiment.build_model(cfg, experiment.build_data(cfg, dry_run=True).spec)
    layers = [m for m in model.modules() if isinstance(m, RNN)]
    assert layers and all(m.implementation == "reference" for m in layers)
    err = _error(capsys, ["train", "digits-lstm", "--model.implementation=fast", "--dry-run"])
    assert "model.implementation" in err and "reference" in err and "'fast'" in err


@pytest.mark.parametrize("verb", ["sample", "generate", "evaluate"])
def test_checkpoint_option_is_the_shared_one(verb, capsys):
    assert main([verb, "--help"]) == 0
    assert "--checkpoint {last,best}" in capsys.readouterr().out
    err = _error(capsys, [verb, "somewhere", "--checkpoint=worst"])
    assert "--checkpoint" in err and "'last', 'best'" in err


def test_evaluate_scores_the_checkpoint_asked_for_and_leaves_the_files(tmp_path, capsys):
    from rnnlab.training import experiment

    assert main(["train", "digits-lstm", "--run.name=c", *TINY[:-2], "--epochs=2"]) == 0
    run = tmp_path / "runs" / "c"
    assert main(["evaluate", str(run)]) == 0  # the final weights; writes confusion.json
    (run / "confusion.json").unlink()  # a --checkpoint run must not write it again
    best = run / "checkpoints" / "best.pt"
    ckpt = torch.load(best, weights_only=True)  # other weights in best.pt: the two must differ
    ckpt["model"] = {k: v * 0.5 for k, v in ckpt["model"].items()}
    torch.save(ckpt, best)
    capsys.readouterr()
    losses = {}
    for checkpoint in ("last", "best"):
        assert main(["evaluate", str(run), "--checkpoint", checkpoint]) == 0
        out = capsys.readouterr().out
        losses[checkpoint] = experiment.evaluate_run(run, checkpoint=checkpoint)["test_loss"]
        assert f"test_loss: {losses[checkpoint]:.4f}" in out
        assert f"checkpoint {checkpoint}.pt" in out
    assert f"{losses['last']:.4f}" != f"{losses['best']:.4f}"
    assert not (run / "confusion.json").exists()
    (run / "checkpoints" / "best.pt").unlink()
    err = _error(capsys, ["evaluate", str(run), "--checkpoint", "best"])
    assert "best.pt" in err
