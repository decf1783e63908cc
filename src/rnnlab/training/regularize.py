"""Keras-style regularizers from a config: the ``train.kernel_l1`` ... ``train.bias_l2``
penalties (added to the loss) and the ``train.max_norm`` constraint (applied after each
optimizer step), as in Keras's ``kernel_regularizer`` / ``recurrent_regularizer`` /
``bias_regularizer`` / ``kernel_constraint=max_norm(c)`` (Srivastava et al. 2014 for
max-norm). The formulas live in :mod:`rnnlab.layers.regularizers`, imported only when a key
is set, so configs without regularizers never need it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from torch import Tensor, nn

from .config import Config, ConfigError

__all__ = ["PENALTY_KEYS", "regularizers"]

PENALTY_KEYS = ("kernel_l1", "kernel_l2", "recurrent_l1", "recurrent_l2", "bias_l1", "bias_l2")


def _module(keys: list[str]):
    try:
        from rnnlab.layers import regularizers
    except ImportError as e:
        raise ConfigError(
            f"{', '.join(f'`train.{k}`' for k in keys)} need rnnlab.layers.regularizers, which "
            f"this installation lacks ({e}); unset them"
        ) from None
    return regularizers


def regularizers(
    cfg: Config,
) -> tuple[Callable[[nn.Module], Tensor] | None, Callable[[nn.Module], None] | None]:
    """``(penalty, after_step)`` for the classify/regress steps; ``None`` for each unset."""
    t = cfg.train
    weights = {k: getattr(t, k) for k in PENALTY_KEYS if getattr(t, k)}
    penalty = after = None
    if weights:
        penalty = functools.partial(_module(list(weights)).weight_penalty, **weights)
    if t.max_norm is not None:
        after = functools.partial(_module(["max_norm"]).apply_max_norm, max_norm=t.max_norm)
    return penalty, after
