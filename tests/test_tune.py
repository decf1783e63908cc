"""``rnnlab tune``: SPACE.toml validation, one-line errors, a tiny search whose best preset
reproduces its score, median pruning through the epoch hook, a killed study resumed with its
finished trials intact, two worker processes on one SQLite study, and (slow) two workers
on a real PostgreSQL server started by the test."""

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from rnnlab.cli import main  # noqa: E402
from rnnlab.training import experiment  # noqa: E402
from rnnlab.training.config import ConfigError, apply_overrides, load_preset  # noqa: E402
from rnnlab.tune.space import load_space, parse_space, shipped_spaces  # noqa: E402
from rnnlab.tune.study import load_config  # noqa: E402

# The adding problem, tiny: a trial trains in well under a second on one CPU core.
TINY = [
    "--data.n_train=64", "--data.n_test=32", "--data.seq_len=5", "--data.batch_size=32",
    "--model.hidden_size=4", "--train.epochs=2", "--train.deterministic=true",
    "--train.device=cpu",
]  # fmt: skip
SPACE = """
description = "tiny adding-problem space"

[params."train.lr"]
type = "float"
low = 1e-3
high = 3e-2
log = true

[params."model.hidden_size"]
type = "int"
low = 2
high = 6
step = 2

[params."train.optimizer"]
type = "categorical"
choices = ["adam", "rmsprop"]
"""


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    """One torch thread here and in every child: on a shared 2-core machine, two threads per
    process make these tiny trials ~30x slower (spin-waiting), not faster."""
    import torch

    threads = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def space(tmp_path) -> Path:
    path = tmp_path / "space.toml"
    path.write_text(SPACE)
    return path


def tune_main(argv: list[str]) -> int:
    return main(["tune", *argv])


def _args(space: Path, study: Path, trials: int, *extra: str) -> list[str]:
    return ["adding-lstm", "--space", str(space), "--trials", str(trials),
            "--study-dir", str(study), *TINY, *extra]  # fmt: skip


def _study(study_dir: Path):
    url = f"sqlite:///{(study_dir / 'study.db').resolve()}"
    return optuna.load_study(study_name=study_dir.name, storage=url)


def _states(study) -> dict[int, str]:
    return {t.number: t.state.name for t in study.get_trials(deepcopy=False)}


# --- the space file -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec,message",
    [
        ({"params": {"train.lrr": {"type": "float", "low": 0.1, "high": 1.0}}},
         "unknown config key `train.lrr`; did you mean `train.lr`?"),
        ({"params": {"train.lr": {"type": "float", "low": -1.0, "high": 1.0}}},
         "`train.lr` must be > 0"),
        ({"params": {"train.lr": {"type": "float", "low": 1.0, "high": 0.1}}},
         "`low` must be < `high`"),
        ({"params": {"train.lr": {"type": "float", "low": 0.0, "high": 0.1, "log": True}}},
         "`log = true` needs `low` > 0"),
        ({"params": {"train.optimizer": {"type": "categorical", "choices": ["adam", "adamx"]}}},
         "`train.optimizer` must be one of"),
        ({"params": {"model.hidden_size": {"type": "int", "low": 2.5, "high": 8}}},
         "`low` must be an integer"),
        ({"params": {"train.lr": {"type": "uniform", "low": 0.1, "high": 1.0}}},
         "`type` must be one of float, int, categorical"),
        ({"params": {"train.lr": {"type": "float", "low": 0.1, "high": 1.0, "q": 2}}},
         "unknown field `q`"),
        ({"params": {"run.name": {"type": "categorical", "choices": ["a"]}}},
         "`run.*` keys cannot be tuned"),
        ({"param": {}}, "unknown top-level key `param`"),
        ({"params": {}}, "needs at least one"),
    ],
)  # fmt: skip
def test_bad_spaces_are_rejected_with_the_reason(spec, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("*", r"\*")):
        parse_space(spec, load_preset("adding-lstm"))


def test_space_parses_into_params():
    import tomllib

    params = parse_space(tomllib.loads(SPACE), load_preset("adding-lstm"))
    assert [(p.key, p.kind) for p in params] == [
        ("train.lr", "float"), ("model.hidden_size", "int"), ("train.optimizer", "categorical"),
    ]  # fmt: skip
    assert params[0].log and params[1].step == 2 and params[2].choices == ("adam", "rmsprop")


@pytest.mark.parametrize("name", sorted(shipped_spaces()))
def test_shipped_spaces_fit_their_presets(name):
    """``configs/tune-<preset>.toml`` is a valid space for preset ``<preset>``."""
    params, data = load_space(name, load_preset(name.removeprefix("tune-")))
    assert params and data.get("description")


# --- command-line errors ------------------------------------------------------------------


def _error(capsys, argv) -> str:
    assert tune_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rnnlab: error: ") and "\n" not in err, err
    return err


def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, space):
    study = tmp_path / "s"
    assert "--trials must be a positive" in _error(capsys, _args(space, study, 0))
    assert "does not exist" in _error(capsys, _args(tmp_path / "none.toml", study, 1))
    assert "nothing to resume" in _error(capsys, _args(space, study, 1, "--resume"))
    assert "val_fraction" in _error(capsys, _args(space, study, 1, "--data.val_fraction=0"))
    assert "needs a classifier" in _error(capsys, _args(space, study, 1, "--metric=val_accuracy"))
    assert "unknown config key" in _error(capsys, _args(space, study, 1, "--train.lrr=1"))
    assert "unrecognized arguments: stray" in _error(capsys, _args(space, study, 1, "stray"))
    assert "unknown preset" in _error(capsys, ["nope", "--space", str(space), "--trials", "1"])
    assert not study.exists()  # nothing was left behind
    study.mkdir()
    (study / "study.db").write_text("")
    assert "pass --resume" in _error(capsys, _args(space, study, 1))


# --- a tiny search ------------------------------------------------------------------------


def test_tiny_search_writes_reports_and_its_best_preset_reproduces(tmp_path, space, capsys):
    study_dir = tmp_path / "study"
    assert tune_main(_args(space, study_dir, 3)) == 0
    out = capsys.readouterr().out
    assert "| rank | trial | val_loss |" in out and "best: trial" in out
    for name in ("best_trials.md", "importances.json", "history.png", "best.toml", "study.db"):
        assert (study_dir / name).is_file(), name
    assert sorted(p.name for p in study_dir.glob("trial_*")) == ["trial_0", "trial_1", "trial_2"]
    study = _study(study_dir)
    assert list(_states(study).values()) == ["COMPLETE"] * 3
    assert (study_dir / "history.png").read_bytes()[:4] == b"\x89PNG"

    # the best preset trains to the same validation score (same seed, deterministic CPU)
    cfg = load_config(str(study_dir / "best.toml"))
    assert cfg.train.lr == study.best_params["train.lr"]
    assert cfg.model.hidden_size == study.best_params["model.hidden_size"]
    cfg = apply_overrides(cfg, [f"--run.out_dir={tmp_path / 'again'}", "--run.name=best"])
    records = []
    experiment.train(cfg, log=lambda _: None, progress=False,
                     on_epoch_end=lambda state, record: records.append(record))  # fmt: skip
    assert records[-1]["val_loss"] == pytest.approx(study.best_value, rel=1e-6, abs=0)


def test_median_pruner_stops_a_bad_trial_after_its_first_epoch(tmp_path, space, monkeypatch):
    """The epoch hook reports to Optuna; a trial worse than the median at epoch 1 is pruned
    (MedianPruner waits for 5 finished trials). A fake train() gives the scores."""
    epochs_run = {}

    def fake_train(cfg, *, on_epoch_end, **_):
        number = int(cfg.run.name.split("_")[1])
        value = 1.0 if number < 5 else 5.0  # trial 5 is much worse
        state = type("State", (), {})()
        for epoch in (1, 2, 3):
            state.epoch = epoch
            epochs_run[number] = epoch
            on_epoch_end(state, {"epoch": epoch, "val_loss": value / epoch})
        return {"run": None, "epochs": 3, "test_loss": value}

    monkeypatch.setattr(experiment, "train", fake_train)
    assert tune_main(_args(space, tmp_path / "s", 6)) == 0
    study = _study(tmp_path / "s")
    assert _states(study) == {i: "COMPLETE" for i in range(5)} | {5: "PRUNED"}
    assert epochs_run[5] == 1 and epochs_run[4] == 3
    assert (tmp_path / "s" / "best.toml").is_file()


# --- kill and resume ----------------------------------------------------------------------


def _kill_when_trial_1_starts(argv: list[str]) -> tuple[list[str], list[int]]:
    """Run ``rnnlab tune argv`` in a subprocess and SIGKILL it the moment trial 1 starts;
    returns the lines it printed and the pids of its live children at that moment."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnlab", "tune", *argv],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines, children = [], []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("trial 1: started"):
                children = [p for p in _children(proc.pid) if _alive(p)]
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait(timeout=60)
        proc.stdout.close()
    return lines, children


@pytest.mark.slow  # worker processes: ~20 s each on the shared CPU
def test_a_killed_study_resumes_with_its_finished_trials_intact(tmp_path, space, capsys):
    study_dir = tmp_path / "study"
    argv = _args(space, study_dir, 2, "--train.epochs=12")  # trial 1 outlives the kill
    lines, _ = _kill_when_trial_1_starts(argv)
    assert any(line.startswith("trial 0: complete") for line in lines), "".join(lines)
    before = _study(study_dir).trials[0]
    assert _states(_study(study_dir)) == {0: "COMPLETE", 1: "RUNNING"}

    assert tune_main(argv) == 2  # an existing study needs --resume
    assert "pass --resume" in capsys.readouterr().err
    assert tune_main([*argv, "--resume"]) == 0
    study = _study(study_dir)
    after = study.trials[0]
    assert (after.state, after.value, after.params) == (before.state, before.value, before.params)
    states = _states(study)
    assert states[1] == "FAIL"  # the trial that was running when the study was killed
    assert states == {0: "COMPLETE", 1: "FAIL", 2: "COMPLETE"}


# --- several workers ----------------------------------------------------------------------


@pytest.mark.slow  # worker processes: ~20 s each on the shared CPU
def test_two_worker_processes_share_one_sqlite_study(tmp_path, space):
    study_dir = tmp_path / "study"
    assert tune_main(_args(space, study_dir, 2, "--workers", "2")) == 0
    study = _study(study_dir)
    assert _states(study) == {0: "COMPLETE", 1: "COMPLETE"}
    workers = {t.user_attrs["worker"] for t in study.trials}
    assert len(workers) == 2  # one trial each: both processes worked on the one study
    assert (study_dir / "best.toml").is_file()


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL server on a unix socket in a fresh /tmp folder (short path,
    reachable by the `postgres` user when the tests run as root); yields its URL."""
    pytest.importorskip("psycopg2", reason="needs the psycopg2 driver")
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("needs PostgreSQL's initdb and pg_ctl (Debian: apt-get install postgresql)")
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: use the package's system user
        no_user = subprocess.run(["id", "postgres"], capture_output=True).returncode != 0
        if shutil.which("runuser") is None or no_user:
            pytest.skip("running as root and no `postgres` user to run the server as")
        as_user = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="rnnlab-pg-"))
    data, port, env = root / "data", _free_port(), os.environ | {"LC_ALL": "C"}
    started = False
    try:
        if as_user:
            shutil.chown(root, "postgres")

        def run(*cmd: str) -> None:
            subprocess.run([*as_user, *cmd], check=True, capture_output=True, env=env, timeout=120)

        run(initdb, "-D", str(data), "-A", "trust", "-U", "postgres")
        opts = f"-k {root} -p {port} -c listen_addresses=''"
        run(pg_ctl, "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start")
        started = True
        yield f"postgresql+psycopg2://postgres@/postgres?host={root}&port={port}"
    finally:
        if started:
            subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
                           capture_output=True, env=env, timeout=120)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_two_workers_share_a_postgresql_study(tmp_path, space, postgres):
    study_dir = tmp_path / "pg-study"
    argv = _args(space, study_dir, 4, "--workers", "2", "--storage", postgres)
    assert tune_main(argv) == 0
    study = optuna.load_study(study_name="pg-study", storage=postgres)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2
    # a second machine joins the same study with its own folder and runs 2 more trials
    other = tmp_path / "machine-2" / "pg-study"
    assert tune_main(_args(space, other, 6, "--storage", postgres)) == 0
    study = optuna.load_study(study_name="pg-study", storage=postgres)
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == 6
    assert sorted(p.name for p in other.glob("trial_*")) == ["trial_4", "trial_5"]


# --- spaces checked against their presets (issue 18, item 3) -------------------------------


@pytest.mark.parametrize("name", sorted(shipped_spaces()))
@pytest.mark.parametrize("seed", [0, 1, 2, 5, 7])
def test_every_point_of_a_shipped_space_trains_or_is_pruned_by_design(name, seed):
    """Points drawn as a study draws them (TPE, seeded) either build their optimizer and
    schedule or carry the reason; the space as a whole is never refused."""
    from rnnlab.tune.space import check_space, why_untrainable

    base = load_preset(name.removeprefix("tune-"))
    params, _ = load_space(name, base)
    check_space(base, params)  # raises if no point can train
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    from rnnlab.tune.space import sample

    for _ in range(6):
        trial = study.ask()
        values = sample(trial, params)
        reason = why_untrainable(base, [p.override(values[p.key]) for p in params])
        if values.get("train.optimizer") == "adagrad" and base.train.schedule == "onecycle":
            assert reason and "cycle_momentum" in reason
        else:
            assert reason is None, (values, reason)
        study.tell(trial, 0.0)


def test_the_readme_tune_command_with_seed_5_runs(tmp_path, capsys):
    """`rnnlab tune digits-lstm --space tune-digits-lstm --trials 2 --seed 5` drew AdaGrad
    under the preset's one-cycle schedule and crashed; now such trials are pruned."""
    argv = ["digits-lstm", "--space", "tune-digits-lstm", "--trials", "2", "--seed", "5",
            "--study-dir", str(tmp_path / "s"), "--data.limit=96", "--train.epochs=1",
            "--train.device=cpu"]  # fmt: skip
    assert tune_main(argv) == 0
    out = capsys.readouterr().out
    assert "cannot train with this preset" in out and "cycle_momentum" in out
    study = _study(tmp_path / "s")
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials)
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    assert all("cycle_momentum" in t.user_attrs["untrainable"] for t in pruned)


def test_a_space_no_point_of_which_can_train_is_refused(tmp_path, capsys):
    space = tmp_path / "bad.toml"
    space.write_text('[params."train.optimizer"]\ntype = "categorical"\nchoices = ["adagrad"]\n')
    err = _error(capsys, ["digits-lstm", "--space", str(space), "--trials", "1",
                          "--study-dir", str(tmp_path / "s")])  # fmt: skip
    assert "no point of the space can train" in err and "cycle_momentum" in err


# --- a killed main process takes its workers with it (issue 18, item 2) -------------------


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has died; only its parent's reaping is left


CHILD = """
import multiprocessing, os, sys, time
from rnnlab.tune.study import _die_with_parent

def worker(parent):
    _die_with_parent(parent)
    time.sleep(120)

if __name__ == "__main__":
    p = multiprocessing.get_context("spawn").Process(target=worker, args=(os.getpid(),))
    p.start()
    print(p.pid, flush=True)
    time.sleep(120)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_worker_dies_with_its_killed_parent(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(CHILD)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(proc.stdout.readline())
        time.sleep(1.0)  # the worker has called prctl by now (or is about to: it checks)
        assert _alive(worker)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 20
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker), "the worker outlived its killed parent"
    finally:
        proc.kill()
        proc.stdout.close()


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_the_main_process_ends_its_worker_and_resume_continues(tmp_path, space):
    study_dir = tmp_path / "study"
    argv = _args(space, study_dir, 2, "--workers", "2", "--train.epochs=60")
    _, workers = _kill_when_trial_1_starts(argv)
    assert workers, "the worker process was not found"
    deadline = time.monotonic() + 30
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(map(_alive, workers)), "a worker outlived the killed main process"
    running = [n for n, s in _states(_study(study_dir)).items() if s == "RUNNING"]
    assert 1 in running  # the worker's trial, left running by the kill
    assert tune_main([*argv, "--resume"]) == 0  # no orphan tells a trial it marked failed
    states = _states(_study(study_dir))
    assert all(states[n] == "FAIL" for n in running)
    assert sum(s == "COMPLETE" for s in states.values()) == 2
