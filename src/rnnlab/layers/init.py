"""Initialisations for long memory.

:func:`chrono_init_`: Tallec & Ollivier 2018, "Can recurrent neural networks warp time?"
(ICLR), section 4. An LSTM whose forget gate sits at ``σ(b_f)`` keeps its cell state for
about ``1 / (1 - σ(b_f))`` steps, so Keras's ``b_f = 1`` remembers for about 4 steps. Chrono
initialisation spreads the units' time scales over the range the task needs::

    b_f ~ log(U(1, T_max - 1)),    b_i = -b_f

so unit ``j`` starts with a characteristic forgetting time between 1 and ``T_max - 1``
steps, and a cell that remembers long also writes little. The other weights keep their
initialisation.
"""

from __future__ import annotations

import torch
from torch import nn

from .cells import LSTMCell

__all__ = ["chrono_init_"]


def chrono_init_(module: nn.Module, t_max: int, generator: torch.Generator | None = None) -> int:
    """Chrono-initialise the gate biases of every :class:`LSTMCell` in ``module`` in place.

    ``t_max``: the longest dependency expected, in steps (e.g. the sequence length).
    Returns the number of cells changed; raises ``ValueError`` when there are none or a cell
    has no bias.
    """
    if isinstance(t_max, bool) or not isinstance(t_max, int) or t_max < 3:
        raise ValueError(f"`t_max` must be an int >= 3 (the longest dependency), got {t_max!r}")
    cells = [m for m in module.modules() if isinstance(m, LSTMCell)]
    if not cells:
        raise ValueError(
            f"chrono initialisation needs LSTM cells; {type(module).__name__} has none"
        )
    for cell in cells:
        if cell.bias is None:
            raise ValueError("chrono initialisation needs gate biases; the LSTM has use_bias=False")
        H = cell.hidden_size
        u = torch.rand(H, generator=generator, dtype=torch.float64) * (t_max - 2) + 1
        b_f = torch.log(u).to(cell.bias)
        with torch.no_grad():
            cell.bias[H : 2 * H] = b_f  # forget gate (torch/Keras order i, f, g, o)
            cell.bias[:H] = -b_f  # input gate
    return len(cells)
