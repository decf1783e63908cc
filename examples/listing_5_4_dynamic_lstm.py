"""Listing 5.4 (dynamic_lstm_2TP.py) in rnnlab: Listing 5.3's batch through an LSTM(3 -> 5).

TF1 returns ``LSTMStateTuple(c, h)``: cell state first. rnnlab (like torch) returns
``LSTMState(h, c)``; ``state.as_tf1()`` gives the TF1 order, so ``state.as_tf1()[0]`` is
``states_val.c``. The facts the chapter points at, checked here: outputs past each length
are zero (instance 1, t = 1), and ``h`` of the final state equals each instance's last
valid output. (``c`` is the cell's carry; it never appears among the outputs.)

Weights are random (seeded), so the numbers differ from the book's; the structure does not.
Run: ``python examples/listing_5_4_dynamic_lstm.py``.
"""

from __future__ import annotations

import numpy as np
import torch
from listing_5_3_dynamic_rnn import (  # the same batch and the same check as Listing 5.3
    N_INPUTS,
    N_NEURONS,
    check_dynamic_rnn_facts,
    feed_batch,
)

from rnnlab.layers import LSTM, LSTMState


def format_state(state: LSTMState) -> str:
    return f"LSTMState(h=array(\n{state.h.numpy()}),\n  c=array(\n{state.c.numpy()}))"


def format_tf1(state: LSTMState) -> str:
    c, h = state.as_tf1()
    return f"LSTMStateTuple(c=array(\n{c.numpy()}),\n  h=array(\n{h.numpy()}))"


def check_dynamic_lstm_facts(outputs: torch.Tensor, state: LSTMState, lengths) -> None:
    """Raise if the TF1 ``dynamic_rnn`` semantics do not hold for the LSTM."""
    check_dynamic_rnn_facts(outputs, state.h, lengths, name="h")
    c, h = state.as_tf1()
    if c is not state.c or h is not state.h:
        raise RuntimeError("as_tf1() must give (c, h)")


def main() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    basic_cell = LSTM(N_INPUTS, N_NEURONS, return_sequences=True, return_state=True)
    x, lengths, outputs_val, states_val = feed_batch(basic_cell)

    with np.printoptions(precision=8, suppress=True):
        print("x_batch shape:", tuple(x.shape))  # (4, 2, 3)
        print("outputs_val shape:", tuple(outputs_val.shape))  # (4, 2, 5)
        print("states: ", format_state(states_val))
        print("as TF1 sees it (states_val.as_tf1()):", format_tf1(states_val))
        print("outputs_val:", outputs_val.numpy())
        print("-----\n")
        print("states_val: ", format_state(states_val))

    check_dynamic_lstm_facts(outputs_val, states_val, lengths)
    print("\nchecked: outputs past each length are zero (instance 1, t = 1);")
    print("checked: states_val.h[b] == outputs_val[b, length_b - 1] for every instance;")
    print("checked: states_val.as_tf1() == (c, h), TF1's LSTMStateTuple order")
    return {"x": x, "lengths": lengths, "outputs": outputs_val, "states": states_val}


if __name__ == "__main__":
    main()
