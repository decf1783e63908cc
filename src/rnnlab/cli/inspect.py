"""What the run-inspecting verbs (``attack``, ``gradients``, ``gates``) share: the test
split of a run, and the checks that a run is a classifier / holds a recurrent layer."""

from __future__ import annotations

from torch import Tensor, nn

from .common import UsageError, open_run

__all__ = ["classifier", "require_recurrent", "test_split"]


def test_split(cfg, limit: int, dry_run: bool) -> tuple[Tensor, Tensor]:
    """The first ``limit`` (0: all) test examples ``(x, y)`` of ``cfg``'s data."""
    from rnnlab.training.experiment import build_data

    data = build_data(cfg, dry_run=dry_run)
    x, y = data.test[0], data.test[1]
    return (x[:limit], y[:limit]) if limit else (x, y)


def classifier(path, what: str, *, data_dir: str | None = None):
    """``(config, model)`` of classify run ``path``; :class:`UsageError` for other families."""
    from rnnlab.training import families

    cfg, model = open_run(path, data_dir=data_dir)
    if "classes" not in families.get(cfg.model.family).supports:
        raise UsageError(f"{what} needs a classify run; RUN {path} is a {cfg.model.family} run")
    if cfg.model.family == "text-classify":  # inputs are word ids: nothing to perturb or trace
        raise UsageError(f"{what} needs real-valued inputs; RUN {path} is a text-classify run "
                         "(its inputs are word ids)")  # fmt: skip
    return cfg, model


def require_recurrent(cfg, model: nn.Module, what: str) -> None:
    """:class:`UsageError` unless ``model`` holds an :class:`~rnnlab.layers.recurrent.RNN`."""
    from rnnlab.layers.recurrent import RNN

    if not any(isinstance(m, RNN) for m in model.modules()):
        raise UsageError(
            f"{what} needs a recurrent model; model.kind {cfg.model.kind!r} has no RNN layer"
        )
