"""A cell rnnlab does not know, run by ``RNN(cell)``: a minimal IndRNN (Li et al. 2018),

    h' = relu(W x + b + u ⊙ h)        u: one recurrent weight per unit

whose output ``2 h'`` is not its state, and whose state is a NamedTuple ``(h, total)`` (the
running sum of ``h``). ``RNN`` never checks a cell's class: it needs ``input_size``,
``hidden_size``, ``initial_state``, ``project_inputs`` and ``step`` (the cell protocol of
:mod:`rnnlab.layers.recurrent`), and gives the cell lengths, masks, ``go_backwards``,
``stateful`` and recurrent dropout for free. ``tests/test_recurrent_custom_cell.py`` checks
this cell against the loop written out by hand and against Keras's ``RNN`` of the same step.

Run: ``python examples/custom_cell.py``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from rnnlab.layers import RNN


class IndState(NamedTuple):
    h: torch.Tensor
    total: torch.Tensor  # the running sum of h


class IndRNNCell(nn.Module):
    """Li et al. 2018: ``h' = relu(W x + b + u ⊙ h)``; output ``2 h'``, state
    ``(h', total + h')``."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.proj = nn.Linear(input_size, hidden_size)
        self.u = nn.Parameter(torch.rand(hidden_size))

    def initial_state(self, batch_size: int, *, device=None, dtype=None) -> IndState:
        zeros = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return IndState(zeros, zeros.clone())

    def project_inputs(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)  # (B, T, I) -> (B, T, H), all steps at once

    def step(self, xp: torch.Tensor, state: IndState, mask: torch.Tensor | None = None):
        h_in = state.h if mask is None else state.h * mask  # the recurrent-dropout mask
        h = torch.relu(xp + self.u * h_in)
        return 2 * h, IndState(h, state.total + h)  # the output is not the state


def main() -> dict:
    torch.manual_seed(0)
    layer = RNN(IndRNNCell(3, 8), return_sequences=True, return_state=True)
    x = torch.randn(4, 6, 3)
    mask = torch.rand(4, 6) < 0.7  # any pattern: masked steps keep the state, output zero
    with torch.no_grad():
        outputs, state = layer(x, mask=mask)
    print("outputs:", tuple(outputs.shape), " state:", type(state).__name__,
          tuple(state.h.shape), tuple(state.total.shape))  # fmt: skip
    return {"outputs": outputs, "state": state, "mask": mask}


if __name__ == "__main__":
    main()
