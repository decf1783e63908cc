"""The command line's edges (issue 18, items 5 and 6): tampered run folders and checkpoints,
hostile ``.npy`` files, sizes that cannot be allocated, a corrupt cache, a missing GPU, a
full disk, a closed pipe; each ends in one ``rnnlab: error: ...`` line (exit 2), never a
traceback. A seeded, time-bounded fuzz over argument lists and tampered run folders closes."""

from __future__ import annotations

import errno
import io
import json
import random
import shutil
import time

import numpy as np
import pytest
import torch
from test_cli import TINY, _isolated  # noqa: F401  (the tiny flags; the autouse isolation)

from rnnlab.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny LSTM digits run (trained once for the module); tests copy it."""
    out = tmp_path_factory.mktemp("trained")
    argv = ["train", "digits-lstm", f"--run.out_dir={out}", "--run.name=a", *TINY,
            "--device=cpu", "--train.schedule=none"]  # fmt: skip
    assert main(argv) == 0
    return out / "a"


@pytest.fixture
def run(trained, tmp_path):
    dest = tmp_path / "run"
    shutil.copytree(trained, dest)
    return dest


def _error(capsys, argv, code=2) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("rnnlab: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def _edit_config(run, edit) -> None:
    data = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(edit(data)))


def _edit_checkpoint(run, edit) -> None:
    path = run / "checkpoints" / "last.pt"
    torch.save(edit(torch.load(path, weights_only=True)), path)


def _hidden_16(d):
    d["config"]["model"]["hidden_size"] = 16
    return d


TAMPERED = {
    "config disagrees with the checkpoint": (
        lambda r: _edit_config(r, _hidden_16), "config.json does not match checkpoint"),
    "config.json without config": (
        lambda r: _edit_config(r, lambda d: {"argv": d["argv"]}), "must hold a `config` table"),
    "config without train": (
        lambda r: _edit_config(r, lambda d: {**d, "config": {
            k: v for k, v in d["config"].items() if k != "train"}}), "lacks its `train` table"),
    "config.json is a list": (lambda r: _edit_config(r, lambda d: [1, 2]), "got list"),
    "checkpoint without model": (
        lambda r: _edit_checkpoint(r, lambda c: {k: v for k, v in c.items() if k != "model"}),
        "holds no `model` weights"),
    "checkpoint is a list": (lambda r: _edit_checkpoint(r, lambda c: [1, 2]), "holds a list"),
    "truncated checkpoint": (
        lambda r: (r / "checkpoints" / "last.pt").write_bytes(b"PK\x03\x04"), "unreadable"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_a_tampered_run_folder_is_one_line_for_every_verb(run, capsys, case):
    tamper, message = TAMPERED[case]
    tamper(run)
    np.save("x.npy", np.zeros((2, 8, 8), np.float32))
    for argv in (["evaluate", str(run)], ["predict", str(run), "x.npy"],
                 ["gates", str(run)], ["attack", str(run), "--limit=4", "--steps=1"],
                 ["train", "--resume", str(run), "--no-progress"]):  # fmt: skip
        assert message in _error(capsys, argv), argv


RESUME_TAMPERED = {
    "bad RNG state": (lambda c: {**c, "rng": {"python": torch.zeros(3)}}, "RNG state"),
    "unknown key in the loop state": (
        lambda c: {**c, "fit": {**c["fit"], "warp": 1}}, "unknown loop state ['warp']"),
    "loop state missing": (lambda c: {k: v for k, v in c.items() if k != "fit"}, "lacks 'fit'"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(RESUME_TAMPERED))
def test_a_tampered_loop_state_is_refused_before_resuming(run, capsys, case):
    edit, message = RESUME_TAMPERED[case]
    _edit_checkpoint(run, edit)
    before = (run / "metrics.jsonl").read_text()
    state = torch.get_rng_state()
    assert message in _error(capsys, ["train", "--resume", str(run), "--no-progress"])
    assert (run / "metrics.jsonl").read_text() == before  # nothing was trained or written
    assert torch.equal(torch.get_rng_state(), state)  # the trial restore was undone


def test_a_log_that_is_not_json_lines_is_refused_before_resuming(run, capsys):
    (run / "metrics.jsonl").write_text('{"epoch": 1}\n1\n')
    assert "line 2 is not a JSON object" in _error(capsys, ["train", "--resume", str(run)])


def _npy_header(path, header: bytes) -> None:
    header = header + b" " * (-(len(header) + 11) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header)


def test_predict_refuses_hostile_npy_files(run, tmp_path, capsys):
    np.savez(tmp_path / "z.npz", x=np.zeros((2, 8, 8)))
    (tmp_path / "z.npz").rename(tmp_path / "z.npy")
    assert ".npz archive renamed?" in _error(capsys, ["predict", str(run), "z.npy"])
    np.save(tmp_path / "s.npy", np.zeros(3, dtype=[("a", "f4"), ("b", "i4")]))
    assert "expected a numeric dtype" in _error(capsys, ["predict", str(run), "s.npy"])
    _npy_header(tmp_path / "h.npy", b"{'descr': '<f4', 'fortran_order': False, "
                                    b"'shape': (100000000000,), }")  # fmt: skip
    assert "declares (100000000000,)" in _error(capsys, ["predict", str(run), "h.npy"])
    np.save(tmp_path / "f.npy", np.full((2, 8, 8), 255.0, np.float32))
    assert "images must be in [0, 1], got [255, 255]" in _error(
        capsys, ["predict", str(run), "f.npy"]
    )
    np.save(tmp_path / "o.npy", np.array([object()], dtype=object))
    assert "numeric dtype" in _error(capsys, ["predict", str(run), "o.npy"])


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "digits-lstm", "--model.hidden_size=100000000"],
        ["train", "vae-mnist", "--data.dataset=digits", "--model.latent_dim=2147483648"],
        ["summary", "digits-lstm", "--model.hidden_size=100000000"],
    ],
)
def test_sizes_that_cannot_be_allocated_are_refused_before_allocating(capsys, argv):
    assert "parameters: training it needs about" in _error(capsys, argv)
    assert not any(p.name == "runs" for p in __import__("pathlib").Path(".").iterdir())


def test_sample_refuses_a_grid_that_cannot_fit(tmp_path, capsys):
    flags = ["--family=gan", "--kind=mlp", "--run.name=g", "--latent_dim=4", "--samples=8"]
    assert main(["train", "digits-lstm", *TINY, *flags, "--schedule=none"]) == 0
    assert "draw fewer samples" in _error(capsys, ["sample", "runs/g", "--n", "100000000"])
    assert "expected an integer in [0, 2**63)" in _error(
        capsys, ["sample", "runs/g", "--seed", str(2**70)]
    )


def test_a_corrupt_cached_domain_classifier_is_rebuilt_saying_so(tmp_path):
    from rnnlab.evaluation.generative_report import domain_classifier

    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 8, 8, generator=g)
    y = torch.arange(40) % 2
    args = ("toy", (x, y), (x[:20], y[:20]))
    logs: list[str] = []
    _, info = domain_classifier(*args, epochs=1, cache_dir=tmp_path, log=logs.append)
    (weights,) = tmp_path.glob("*.safetensors")
    weights.write_bytes(b"\x00garbage")
    _, again = domain_classifier(*args, epochs=1, cache_dir=tmp_path, log=logs.append)
    assert any("cached copy unreadable" in line and "rebuilding" in line for line in logs)
    assert again["test_accuracy"] == info["test_accuracy"]  # same seed: the same classifier
    domain_classifier(*args, epochs=1, cache_dir=tmp_path, log=logs.append)
    assert not any("unreadable" in line for line in logs[-1:])  # the rebuilt cache reads


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda(run, capsys):
    assert "CUDA is not available" in _error(capsys, ["train", "digits-lstm", "--device=cuda"])
    assert "CUDA is not available" in _error(capsys, ["attack", str(run), "--device=cuda"])


def test_a_full_disk_at_the_first_checkpoint(tmp_path, capsys, monkeypatch):
    real_save = torch.save

    def full(obj, f, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    err = _error(capsys, ["train", "digits-lstm", "--run.name=f", *TINY])
    assert "No space left on device" in err
    monkeypatch.setattr(torch, "save", real_save)
    leftovers = [p for p in (tmp_path / "runs").rglob("*")] if (tmp_path / "runs").exists() else []
    assert not [p for p in leftovers if p.suffix == ".tmp"], leftovers


def test_a_closed_pipe_ends_quietly(capsys, monkeypatch):
    class Closed(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

        def fileno(self):
            raise io.UnsupportedOperation("no fd")

    monkeypatch.setattr("sys.stdout", Closed())
    assert main(["presets"]) == 141
    assert capsys.readouterr().err == ""


def test_gates_index_minus_one_and_relative_data_dir(run, tmp_path, capsys):
    assert "`--index` must be in [0, " in _error(capsys, ["gates", str(run), "--index=-1"])
    (tmp_path / "data").mkdir()
    assert main(["train", "digits-lstm", "--run.name=r", "--data-dir=data", *TINY]) == 0
    saved = json.loads((tmp_path / "runs" / "r" / "config.json").read_text())
    assert saved["config"]["data"]["data_dir"] == str(tmp_path / "data")


def test_resume_with_a_changed_lr_says_it_is_not_applied(run, capsys):
    assert main(["train", "--resume", str(run), "--epochs=2", "--train.lr=0.5",
                 "--no-progress"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "--train.lr=0.5 is not applied on resume" in err and err.count("\n") == 1


# --- fuzz -----------------------------------------------------------------------------------

VALUES = ["0", "-1", "1", "2", "1e30", "inf", "nan", "x", "", "-", "--", "9" * 40, "0.5",
          "runs/none", "/dev/null", "a,b", "true", "none"]  # fmt: skip
FLAGS = ["--index", "--layer", "--eps", "--eps-list", "--steps", "--n", "--seed", "--limit",
         "--method", "--out", "--label", "--batch", "--iw-k", "--nrow", "--checkpoint",
         "--device", "--data-dir", "--title", "--trials", "--space"]  # fmt: skip
KEYS = ["--train.lr", "--train.epochs", "--model.hidden_size", "--data.limit",
        "--train.seed", "--model.kind", "--data.batch_size", "--train.eval_batch_size"]  # fmt: skip
VERBS = ["evaluate", "predict", "gates", "attack", "gradients", "sample", "report", "config",
         "summary", "presets", "datasets", "tune", "frobnicate", ""]  # fmt: skip


def _random_argv(rng: random.Random, run: str) -> list[str]:
    verb = rng.choice(VERBS)
    argv = [verb] if verb else []
    if rng.random() < 0.8:
        argv.append(rng.choice([run, "digits-lstm", "nowhere", "x.npy", rng.choice(VALUES)]))
    for _ in range(rng.randrange(4)):
        r = rng.random()
        if r < 0.5:
            flag = rng.choice(FLAGS)
            argv += (
                [flag, rng.choice(VALUES)]
                if rng.random() < 0.5
                else [f"{flag}={rng.choice(VALUES)}"]
            )
        elif r < 0.8 and verb in ("config", "summary", "gradients"):
            argv.append(f"{rng.choice(KEYS)}={rng.choice(VALUES)}")
        else:
            argv.append(rng.choice(VALUES + [run]))
    if verb in ("gradients", "attack", "gates"):
        argv.append("--dry-run")  # synthetic data: fast, shapes of the real thing
    return argv


def _tamper(rng: random.Random, run) -> str:
    """One random damage to a copy of the run folder; returns what was done."""
    path = run / rng.choice(["config.json", "checkpoints/last.pt", "metrics.jsonl"])
    data = path.read_bytes()
    kind = rng.choice(["truncate", "flip", "empty", "json"])
    if kind == "truncate":
        path.write_bytes(data[: rng.randrange(len(data) + 1)])
    elif kind == "flip":
        b = bytearray(data)
        for _ in range(rng.randrange(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        path.write_bytes(bytes(b))
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        path.write_text(json.dumps(rng.choice([[], {}, 1, "x", {"config": []},
                                               {"config": {"data": 1}}])))  # fmt: skip
    return f"{kind} {path.name}"


def test_fuzzed_arguments_and_tampered_runs_never_raise(trained, tmp_path, capsys):
    """Seeded and time-bounded: random argument lists, then random damage to run folders;
    every call returns an exit status (an uncaught exception fails this test with it)."""
    rng = random.Random(18)
    np.save("x.npy", np.zeros((2, 8, 8), np.float32))
    deadline = time.monotonic() + 25
    cases = 0
    while time.monotonic() < deadline and cases < 60:
        argv = _random_argv(rng, str(trained))
        code = main(argv)
        err = capsys.readouterr().err.strip()
        assert code in (0, 1, 2), (argv, code)
        if code:
            assert err.startswith("rnnlab: error: ") and "Traceback" not in err, (argv, err)
        cases += 1
    for i in range(12):
        copy = tmp_path / f"t{i}"
        shutil.copytree(trained, copy)
        what = _tamper(rng, copy)
        verb = rng.choice([["evaluate"], ["gates", "--dry-run"], ["predict"],
                           ["train", "--no-progress", "--resume"]])  # fmt: skip
        argv = [*verb, str(copy)] + (["x.npy"] if verb == ["predict"] else [])
        code = main(argv)
        err = capsys.readouterr().err.strip()
        assert code in (0, 2), (what, argv, code, err)
        if code:
            assert err.startswith("rnnlab: error: ") and "\n" not in err, (what, argv, err)
    assert cases >= 10
