"""``rnnlab tune``: hyper-parameter search over a preset with Optuna.

    rnnlab tune PRESET --space SPACE.toml --trials N [--study-dir DIR] [--storage URL]
                [--resume] [--workers K] [--sampler tpe|random] [--seed S]
                [--metric val_loss|val_accuracy] [--direction minimize|maximize]
                [--timeout SEC] [--pruner median|none] [--study-name NAME]
                [--section.key=value ...]

PRESET is a shipped preset name or a path to a preset TOML (``best.toml`` of an earlier
study, say). ``--section.key=value`` overrides apply to every trial; SPACE.toml (format in
:mod:`rnnlab.tune.space`) says which keys each trial samples.

Each trial is a normal ``rnnlab train`` run, in ``DIR/trial_<number>/``, scored by the
validation metric of its LAST epoch (the model the run leaves behind; ``data.val_fraction``
must be > 0). The sampler is Optuna's TPE (Bergstra et al. 2011), seeded (its first 10 trials
are random, Optuna's default start-up); ``--sampler random`` for a baseline. After every
epoch the trial reports its metric and Optuna's MedianPruner stops it when it is worse than
the median of earlier trials at the same epoch (after 5 finished trials).

Storage. By default ``DIR/study.db``, an SQLite file: every finished trial is committed as it
ends, so a study that is killed loses only the trials that were running. ``--resume``
continues it up to ``--trials`` finished (complete + pruned) trials; the trials that were
running when it died are marked failed (resuming a local SQLite study assumes no other
process is still working on it). Without ``--resume`` an existing DIR is an error.
``--storage URL`` puts the study in any database Optuna accepts
(``postgresql://user@host/db``, ``mysql://...``) so processes on several machines can work on
one study: each runs the same command with its own ``--study-dir``; a study that exists in
the database (same name, same preset, overrides, space and metric) is joined. There, trials
send a heartbeat and one silent for 3 minutes is marked failed. ``--workers K`` starts K
processes on this machine (spawned; each runs its own share of the remaining trials against
the same storage, with ``cores / K`` torch threads; TPE's constant liar keeps them from
sampling the same point).

Output, in DIR: ``best_trials.md`` (the best trials with their parameters and test metrics,
also printed; parameter importances by Optuna's fANOVA once 2 trials have completed),
``importances.json``, ``history.png`` (each trial's score and the best so far) and
``best.toml``, the best trial's full config as a preset: ``rnnlab train DIR/best.toml``.
Errors are one line on stderr and exit status 2.
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
import os
import socket
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnlab.training.config import (
    Config,
    ConfigError,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_preset,
)

from .space import Param, check_space, load_space, sample, why_untrainable

__all__ = ["Job", "TuneError", "load_config", "make_job", "tune"]

METRICS = ("val_loss", "val_accuracy")
HEARTBEAT_S, GRACE_S = 60, 180
TOP = 10  # rows of the best-trials table


class TuneError(ValueError):
    """Bad ``rnnlab tune`` input or study state (one line, exit status 2)."""


@dataclass
class Job:
    """Everything a worker process needs (picklable: spawned workers receive it)."""

    study_name: str
    storage: str
    study_dir: str
    base: dict  # the resolved base config (preset + overrides)
    params: list[Param]
    metric: str
    direction: str
    sampler: str = "tpe"
    seed: int = 0
    pruner: str = "median"
    timeout: float | None = None
    train_argv: list[str] = field(default_factory=list)  # `rnnlab train ...` of the base
    threads: int = 0  # torch threads per worker process (0: torch's default)


def load_config(preset: str) -> Config:
    """A shipped preset by name, or a preset TOML by path: :func:`load_preset` takes both."""
    return load_preset(preset)


# --- storage and study ------------------------------------------------------------------


def _optuna():
    try:
        import optuna
    except ModuleNotFoundError:
        raise TuneError("`rnnlab tune` needs optuna: pip install 'rnnlab[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _storage(url: str):
    optuna = _optuna()
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):  # wait for the other workers' write locks
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 120}}
    else:
        kwargs |= {"heartbeat_interval": HEARTBEAT_S, "grace_period": GRACE_S}
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, **kwargs)
    except ModuleNotFoundError as e:  # the database's driver (psycopg2, pymysql, ...)
        raise TuneError(f"--storage {url}: the database driver is missing ({e.name})") from None
    except Exception as e:  # sqlalchemy's errors: bad URL, server down, auth, ...
        raise TuneError(f"--storage {url}: cannot open it: {type(e).__name__}: {e}") from None


def _sampler(job: Job, worker: int):
    optuna = _optuna()
    seed = job.seed + worker  # workers draw different start-up points
    if job.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _pruner(job: Job):
    optuna = _optuna()
    if job.pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)


def _signature(job: Job) -> dict:
    return {
        "base": job.base,
        "params": [vars(p) | {"choices": list(p.choices)} for p in job.params],
        "metric": job.metric,
        "direction": job.direction,
    }


def _open_study(job: Job, worker: int, *, create: bool):
    optuna = _optuna()
    storage = _storage(job.storage)
    kwargs = {"sampler": _sampler(job, worker), "pruner": _pruner(job)}
    if create:
        study = optuna.create_study(
            storage=storage, study_name=job.study_name, direction=job.direction,
            load_if_exists=True, **kwargs,
        )  # fmt: skip
        signature = json.loads(json.dumps(_signature(job)))
        stored = study.user_attrs.get("rnnlab")
        if stored is None:
            study.set_user_attr("rnnlab", signature)
        elif stored != signature:
            changed = [k for k in signature if stored.get(k) != signature[k]]
            raise TuneError(
                f"study `{job.study_name}` in {job.storage} was started with a different "
                f"{' and '.join(changed)}; use another --study-dir / --study-name"
            )
        return study
    try:
        return optuna.load_study(study_name=job.study_name, storage=storage, **kwargs)
    except KeyError:
        raise TuneError(f"no study `{job.study_name}` in {job.storage} to resume") from None


def _finished(study) -> int:
    optuna = _optuna()
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def _fail_running(job: Job) -> list[int]:
    """Mark trials left RUNNING by a killed local study as FAIL; returns their numbers."""
    optuna = _optuna()
    state = optuna.trial.TrialState
    storage = _storage(job.storage)
    study_id = storage.get_study_id_from_name(job.study_name)
    numbers = []
    for t in storage.get_all_trials(study_id, deepcopy=False, states=(state.RUNNING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
        storage.set_trial_state_values(trial_id, state.FAIL)
        numbers.append(t.number)
    return numbers


# --- one trial ----------------------------------------------------------------------------


def _say(text: str) -> None:
    print(text, flush=True)


def _format_params(values: dict) -> str:
    text = (f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
    return "  ".join(text)


def _objective(trial, job: Job):
    optuna = _optuna()
    from rnnlab.training import experiment

    values = sample(trial, job.params)
    flags = [p.override(values[p.key]) for p in job.params]
    reason = why_untrainable(config_from_dict(job.base), flags)
    if reason is not None:  # a combination the space offers but the preset cannot train
        trial.set_user_attr("untrainable", reason)
        _say(f"trial {trial.number}: {_format_params(values)} cannot train ({reason}): pruned")
        raise optuna.TrialPruned(reason)
    cfg = apply_overrides(config_from_dict(job.base), flags)
    cfg.run.out_dir, cfg.run.name = job.study_dir, f"trial_{trial.number}"
    trial.set_user_attr("config", config_to_dict(cfg))
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    trial.set_user_attr("run", str(Path(job.study_dir) / cfg.run.name))
    _say(f"trial {trial.number}: started  {_format_params(values)}")
    seen: list[float] = []

    def on_epoch_end(state, record: dict) -> None:
        if job.metric not in record:
            keys = ", ".join(k for k in record if k.startswith("val_")) or "none"
            raise ConfigError(
                f"--metric {job.metric} is not in the epoch record (val keys: {keys})"
            )
        seen.append(float(record[job.metric]))
        trial.report(seen[-1], state.epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {state.epoch}: {job.metric} {seen[-1]:.4g}")

    result = experiment.train(
        cfg, argv=[*job.train_argv, *flags], progress=False, on_epoch_end=on_epoch_end,
        log=lambda s: _say(f"  trial {trial.number}: {s}"),
    )  # fmt: skip
    if not seen:
        raise ConfigError(f"trial {trial.number} reported no {job.metric}")
    for key, value in result.items():
        if key.startswith("test_") or key == "epochs":
            trial.set_user_attr(key, value)
    return seen[-1]


def _announce(study, trial) -> None:
    value = "-" if trial.value is None else f"{trial.value:.6g}"
    _say(f"trial {trial.number}: {trial.state.name.lower()}  value {value}")


def _worker(job: Job, worker: int, n_trials: int) -> None:
    """One process's share: ``n_trials`` trials of ``job``'s study."""
    import torch

    from rnnlab.training.loop import TrainingStopped

    study = _open_study(job, worker, create=False)
    threads = torch.get_num_threads()
    if job.threads:  # K workers share the cores instead of each spinning up all of them
        torch.set_num_threads(job.threads)
    try:
        study.optimize(
            lambda trial: _objective(trial, job), n_trials=n_trials, timeout=job.timeout,
            catch=(TrainingStopped,), callbacks=[_announce], gc_after_trial=True,
        )  # fmt: skip
    except ValueError as e:
        if "Cannot tell" not in str(e):
            raise
        raise TuneError(  # its trial was marked failed meanwhile (a resume, a heartbeat)
            f"worker {worker}: {_one_line(e)}: another process marked this worker's trial as "
            "failed (a `--resume`, or a missed heartbeat); this worker stops"
        ) from None
    finally:
        torch.set_num_threads(threads)


def _die_with_parent(parent: int) -> None:
    """End this worker when the process that started it ends, ``kill -9`` included: Linux's
    ``PR_SET_PDEATHSIG`` (the kernel sends SIGKILL), elsewhere a thread watching the parent
    pid. An orphan would keep training a trial that ``--resume`` has marked failed."""
    import signal
    import threading
    import time

    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)
            return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="rnnlab-tune-watchdog", daemon=True).start()


def _spawned(job: Job, worker: int, n_trials: int, parent: int) -> None:
    _die_with_parent(parent)
    try:
        _worker(job, worker, n_trials)
    except (TuneError, ConfigError) as e:
        print(f"rnnlab: error: worker {worker}: {_one_line(e)}", file=sys.stderr, flush=True)
        sys.exit(2)
    except KeyboardInterrupt:  # Ctrl-C reaches every worker; the main process reports it
        sys.exit(130)


# --- the search ---------------------------------------------------------------------------


def tune(job: Job, *, trials: int, workers: int = 1, resume: bool = False) -> dict:
    """Run ``job``'s study up to ``trials`` finished trials with ``workers`` processes, then
    write the reports. Returns ``{"finished", "best_value", "best_trial", "files"}``."""
    study_dir = Path(job.study_dir)
    study_dir.mkdir(parents=True, exist_ok=True)
    study = _open_study(job, 0, create=True)
    if resume and job.storage == _default_storage(study_dir):
        failed = _fail_running(job)
        if failed:
            _say(f"marked trials left running by the killed study as failed: {failed}")
    remaining = max(trials - _finished(study), 0)
    _say(f"study {job.study_name}: {_finished(study)} finished trials, {remaining} to run "
         f"({job.storage})")  # fmt: skip
    shares = [remaining // workers + (i < remaining % workers) for i in range(workers)]
    if workers > 1 and not job.threads:
        job = dataclasses.replace(job, threads=max(1, (os.cpu_count() or 1) // workers))
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_spawned, args=(job, i, n, os.getpid()), name=f"rnnlab-tune-{i}")
        for i, n in enumerate(shares) if i > 0 and n > 0
    ]  # fmt: skip
    for p in procs:
        p.start()
    try:
        if shares[0]:
            _worker(job, 0, shares[0])
    finally:
        for p in procs:
            p.join()
    bad = [f"{p.name} exited with {p.exitcode}" for p in procs if p.exitcode]
    if bad:
        raise TuneError("; ".join(bad) + " (its error is printed above)")
    from .report import write_reports

    return write_reports(study, job)


def _default_storage(study_dir: Path) -> str:
    return f"sqlite:///{(study_dir / 'study.db').resolve()}"


def _one_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def make_job(args, overrides: list[str]) -> tuple[Job, bool]:
    """The :class:`Job` that ``rnnlab tune``'s parsed ``args`` and ``overrides`` describe, and
    whether its study folder exists already. Raises :class:`TuneError` / ``ConfigError``."""
    if args.trials < 1:
        raise TuneError(f"--trials must be a positive integer, got {args.trials}")
    if args.workers < 1:
        raise TuneError(f"--workers must be a positive integer, got {args.workers}")
    if args.timeout is not None and not (math.isfinite(args.timeout) and args.timeout > 0):
        raise TuneError(f"--timeout must be a positive number of seconds, got {args.timeout}")
    flags = list(overrides)
    if args.device:
        flags.append(f"--train.device={args.device}")
    if args.data_dir:
        flags.append(f"--data.data_dir={args.data_dir}")
    cfg = apply_overrides(load_config(args.preset), flags)
    if not cfg.data.val_fraction > 0:
        raise TuneError("tuning scores trials on the validation split: set --data.val_fraction > 0")
    from rnnlab.training import families

    if args.metric == "val_accuracy" and "classes" not in families.get(cfg.model.family).supports:
        raise TuneError(
            f"--metric val_accuracy needs a classifier; `model.family` is {cfg.model.family!r}"
        )
    params, _ = load_space(args.space, cfg)
    bad = check_space(cfg, params)  # refuses a space none of whose points can train
    if bad:
        _say(f"note: {bad}; such trials are pruned without training")
    study_dir = Path(args.study_dir or Path(cfg.run.out_dir) / f"tune-{cfg.run.preset or 'run'}")
    exists = study_dir.exists() and any(study_dir.iterdir())
    storage = args.storage or _default_storage(study_dir)
    if exists and not args.resume:
        raise TuneError(
            f"study folder {study_dir} exists: pass --resume to continue it, "
            "or choose another --study-dir"
        )
    if args.resume and not args.storage and not (study_dir / "study.db").is_file():
        raise TuneError(f"nothing to resume: {study_dir / 'study.db'} does not exist")
    direction = args.direction or ("maximize" if args.metric == "val_accuracy" else "minimize")
    train_argv = ["rnnlab", "train", args.preset, *flags]
    job = Job(
        study_name=args.study_name or study_dir.resolve().name, storage=storage,
        study_dir=str(study_dir), base=config_to_dict(cfg), params=params, metric=args.metric,
        direction=direction, sampler=args.sampler, seed=args.seed, pruner=args.pruner,
        timeout=args.timeout, train_argv=train_argv,
    )  # fmt: skip
    return job, exists
