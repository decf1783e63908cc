"""A run killed at any write resumes to exactly the uninterrupted run (issue 18, item 1): the
same weights, optimizer, best.pt and metrics.jsonl, and no temp file, partial folder or lock
left behind. Kills are injected at each rename (``os.replace`` onto best.pt, last.pt, the run
folder) and between last.pt and the log; two of them with a real ``os._exit`` in a child
process, the rest by raising in this one. Two processes cannot train one folder at once."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rnnlab.cli import main
from rnnlab.training.checkpoint import RunDir, load_checkpoint
from rnnlab.training.config import apply_overrides, load_preset
from rnnlab.training.experiment import train

SRC = str(Path(__file__).resolve().parents[1] / "src")
FLAGS = ["--train.epochs=4", "--train.max_steps=4", "--data.batch_size=16", "--data.limit=256",
         "--model.hidden_size=8", "--train.deterministic=true", "--train.device=cpu",
         "--train.lr=2e-2", "--train.schedule=none"]  # fmt: skip
QUIET = {"log": lambda _: None, "progress": False}


def _cfg(out, name="r"):
    flags = [*FLAGS, f"--run.out_dir={out}", f"--run.name={name}"]
    return apply_overrides(load_preset("digits-lstm"), flags)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    train(_cfg(out), **QUIET)
    return out / "r"


class Killed(BaseException):
    """Stands in for SIGKILL: no ``except Exception`` catches it."""


def _records(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k != "seconds"} for x in lines]


def _same_run(run: Path, reference: Path) -> None:
    for name in ("last.pt", "best.pt"):
        a, b = (load_checkpoint(r / "checkpoints" / name) for r in (run, reference))
        assert a["fit"] == b["fit"], name
        for key, value in b["model"].items():
            assert torch.equal(a["model"][key], value), (name, key)
        for x, y in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values(),
                        strict=True):  # fmt: skip
            assert torch.equal(x["exp_avg"], y["exp_avg"]), name
    assert _records(run) == _records(reference)
    assert not list(run.rglob(".*")), "temp files left"
    assert not (run / RunDir.LOCK).exists()
    assert not list(run.parent.glob(".*partial*"))


@pytest.mark.parametrize(("target", "nth"), [("last.pt", 2), ("best.pt", 2), ("log", 3)])
def test_a_kill_at_each_write_resumes_to_the_uninterrupted_run(
    target, nth, tmp_path, reference, monkeypatch
):
    calls = []
    real_replace, real_log = os.replace, RunDir.log

    def replace(src, dst, *args, **kwargs):
        if Path(dst).name == target:
            calls.append(dst)
            if len(calls) == nth:
                raise Killed
        return real_replace(src, dst, *args, **kwargs)

    def log(self, record):
        if target == "log" and "epoch" in record:
            calls.append(record)
            if len(calls) == nth:
                raise Killed
        return real_log(self, record)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(RunDir, "log", log)
    with pytest.raises(Killed):
        train(_cfg(tmp_path), **QUIET)
    monkeypatch.undo()
    train(_cfg(tmp_path), resume_from=tmp_path / "r", **QUIET)
    _same_run(tmp_path / "r", reference)


CHILD = """
import os, sys
from pathlib import Path
target, nth = sys.argv[1], int(sys.argv[2])
real, seen = os.replace, []
def replace(src, dst, *a, **k):
    if Path(dst).name == target:
        seen.append(dst)
        if len(seen) == nth:
            os._exit(9)  # no cleanup at all, as under SIGKILL
    return real(src, dst, *a, **k)
os.replace = replace
from rnnlab.training.config import apply_overrides, load_preset
from rnnlab.training.experiment import train
flags = sys.argv[3:]
train(apply_overrides(load_preset("digits-lstm"), flags), log=lambda _: None, progress=False)
"""


def _killed_child(tmp_path, target: str, nth: int) -> None:
    flags = [*FLAGS, f"--run.out_dir={tmp_path}", "--run.name=r"]
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD, target, str(nth), *flags], env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 9, out.stderr[-2000:]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_stale_lock_and_temp_files_of_a_dead_run_are_cleared_on_resume(tmp_path, reference):
    with pytest.raises(Killed):
        train(_cfg(tmp_path), log=_kill_at("epoch 2/4"), progress=False)
    run = tmp_path / "r"
    (run / RunDir.LOCK).write_text(str(_dead_pid()))  # as a SIGKILLed process leaves them
    (run / "checkpoints" / ".last.pt.x1y2.tmp").write_bytes(b"half a checkpoint")
    train(_cfg(tmp_path), resume_from=run, **QUIET)
    _same_run(run, reference)


def test_a_partial_folder_of_a_dead_run_is_removed_by_the_next_run_of_its_name(tmp_path, reference):
    stale = tmp_path / f".r.partial-{_dead_pid()}-abc123"
    stale.mkdir()
    (stale / "config.json").write_text("{}")
    mine = tmp_path / f".r.partial-{os.getpid()}-live"  # a live process's: left alone
    mine.mkdir()
    train(_cfg(tmp_path), **QUIET)
    assert not stale.exists() and mine.exists()
    mine.rmdir()
    _same_run(tmp_path / "r", reference)


def _kill_at(prefix: str):
    def log(line: str) -> None:
        if line.startswith(prefix):
            raise Killed

    return log


@pytest.mark.slow
def test_a_real_kill_at_the_rename_onto_last_pt_leaves_a_temp_file_and_a_stale_lock(
    tmp_path, reference
):
    _killed_child(tmp_path, "last.pt", 3)
    run = tmp_path / "r"
    assert list((run / "checkpoints").glob(".last.pt.*.tmp"))  # the kill left them
    assert (run / RunDir.LOCK).is_file()  # ... and the dead process's lock
    train(_cfg(tmp_path), resume_from=run, **QUIET)  # takes the stale lock over
    _same_run(run, reference)


@pytest.mark.slow
def test_a_kill_before_the_first_checkpoint_leaves_nothing_the_next_run_keeps(tmp_path, reference):
    _killed_child(tmp_path, "r", 1)  # the rename of the partial folder into place
    assert list(tmp_path.glob(".r.partial-*"))
    train(_cfg(tmp_path), **QUIET)  # the same name again: the dead run's folder is removed
    _same_run(tmp_path / "r", reference)


def test_a_second_resume_of_a_run_in_use_is_refused_with_one_line(tmp_path, reference, capsys):
    run = tmp_path / "r"
    train(_cfg(tmp_path), **QUIET)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run / RunDir.LOCK).write_text(str(sleeper.pid))  # a live process holds it
        assert main(["train", "--resume", str(run), "--train.epochs=5", "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"rnnlab: error: run folder {run} is in use by process")
        assert err.count("\n") == 1
        assert load_checkpoint(run / "checkpoints" / "last.pt")["fit"]["epoch"] == 4
    finally:
        sleeper.kill()
        sleeper.wait()
    assert main(["train", "--resume", str(run), "--train.epochs=5", "--no-progress"]) == 0
    assert load_checkpoint(run / "checkpoints" / "last.pt")["fit"]["epoch"] == 5
    assert not (run / RunDir.LOCK).exists()
