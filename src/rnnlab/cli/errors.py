"""The one error -> exit-code table of the command line, and the one-line report.

A verb raises; :func:`report` (called by :func:`rnnlab.cli.main` only) prints one line
``rnnlab: error: <message>`` and returns the exit status of the first row of
:data:`EXIT_CODES` that names the exception's class or one of its bases. Rows name classes
by their import path so that reporting an error never imports anything (a failed import may
be the error). An exception no row names is a bug in rnnlab: it propagates with its
traceback.
"""

from __future__ import annotations

import os
import sys

__all__ = ["EXIT_CODES", "exit_code", "one_line", "report"]

EXIT_CODES: tuple[tuple[str, int], ...] = (
    ("builtins.KeyboardInterrupt", 130),  # Ctrl-C: "rnnlab: interrupted"
    ("builtins.BrokenPipeError", 141),  # `rnnlab presets | head`: quiet, as SIGPIPE's 128+13
    ("rnnlab.training.loop.TrainingStopped", 1),  # non-finite loss: the run failed
    ("rnnlab.cli.common.UsageError", 2),  # bad command line
    ("rnnlab.training.config.ConfigError", 2),  # bad preset, key or value
    ("rnnlab.training.experiment.DataError", 2),  # data that cannot be trained on
    ("rnnlab.training.checkpoint.CheckpointError", 2),  # missing / unreadable run or checkpoint
    ("rnnlab.data.datasets.DatasetNotFoundError", 2),
    ("rnnlab.data.datasets.DownloadError", 2),
    ("rnnlab.data.idx.IDXError", 2),
    ("rnnlab.evaluation.report.ReportError", 2),
    ("rnnlab.tune.study.TuneError", 2),
    ("optuna.exceptions.OptunaError", 2),  # a study that does not exist, a bad storage, ...
    ("sqlalchemy.exc.SQLAlchemyError", 2),
    ("builtins.MemoryError", 2),  # a size that cannot be allocated
    ("builtins.ImportError", 2),  # an optional dependency is missing
    ("builtins.ValueError", 2),
    ("builtins.OSError", 2),  # unreadable input, full disk (ENOSPC), permissions
)


def _names(exc: BaseException) -> set[str]:
    return {f"{c.__module__}.{c.__qualname__}" for c in type(exc).__mro__}


def exit_code(exc: BaseException) -> int | None:
    """The exit status :data:`EXIT_CODES` gives ``exc``; ``None`` when no row names it."""
    names = _names(exc)
    return next((code for name, code in EXIT_CODES if name in names), None)


def one_line(exc: BaseException) -> str:
    """``str(exc)`` on one line (``type name`` when it is empty)."""
    text = str(exc).strip() or type(exc).__name__
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def report(exc: BaseException) -> int:
    """Print ``exc`` as one line on stderr and return its exit status (see module docs)."""
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    code = exit_code(exc)
    if code is None:
        raise exc
    if code == 141:  # stdout is gone: send what is still buffered nowhere, say nothing
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return code
    if code == 130:
        print("rnnlab: interrupted", file=sys.stderr)
        return code
    message = one_line(exc)
    if isinstance(exc, MemoryError):
        message = f"out of memory{': ' + message if str(exc).strip() else ''}"
    print(f"rnnlab: error: {message}", file=sys.stderr)
    return code
