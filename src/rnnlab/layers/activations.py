"""The one activation table: Keras's names -> functions, for cells, ``Dense`` and
``Activation`` (and the autoencoders in :mod:`rnnlab.models`).

``hard_sigmoid`` is Keras 3's (slope 1/6); ``softmax`` / ``log_softmax`` act on the last
axis; ``linear`` (alias ``identity``) is the identity.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["ACTIVATIONS", "get_activation", "hard_sigmoid"]


def hard_sigmoid(x: Tensor) -> Tensor:
    """Keras 3's ``hard_sigmoid``: ``relu6(x + 3) / 6``, i.e. ``clip(x / 6 + 1/2, 0, 1)``.

    (Keras 2 used the slope 0.2; Keras 3, our parity reference, uses 1/6.)
    """
    return F.relu6(x + 3.0) / 6.0


def _identity(x: Tensor) -> Tensor:
    return x


def _softmax(x: Tensor) -> Tensor:
    return torch.softmax(x, dim=-1)


def _log_softmax(x: Tensor) -> Tensor:
    return torch.log_softmax(x, dim=-1)


ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "hard_sigmoid": hard_sigmoid,
    "softsign": F.softsign,
    "relu": torch.relu,
    "linear": _identity,
    "identity": _identity,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
}


def get_activation(name: str, argument: str = "activation") -> Callable[[Tensor], Tensor]:
    """Look an activation up by its Keras name; unknown names raise naming the argument."""
    if name not in ACTIVATIONS:
        raise ValueError(
            f"Received an invalid value for argument `{argument}`: expected one of "
            f"{sorted(ACTIVATIONS)}, got {name!r}."
        )
    return ACTIVATIONS[name]
