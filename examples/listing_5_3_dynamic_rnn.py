"""Listing 5.3 (dynamic_rnn_2TP.py) in rnnlab: TF1's ``tf.nn.dynamic_rnn`` with
``sequence_length`` over a 4 x 2 x 3 batch, as a SimpleRNN(3 -> 5) taking ``lengths``.

The facts the chapter points at, checked here:

- ``outputs`` (4, 2, 5) holds every step's output, and zeros past a sequence's length
  (instance 1 has length 1, so its step t = 1 is all zeros);
- ``states`` (4, 5) is each instance's LAST VALID output: ``outputs[b, length_b - 1]``
  (step 1 for full sequences, step 0 for the short one).

Weights are random (seeded), so the numbers differ from the book's; the structure does not.
Run: ``python examples/listing_5_3_dynamic_rnn.py``.
"""

from __future__ import annotations

import numpy as np
import torch

from rnnlab.layers import SimpleRNN

N_STEPS = 2  # time steps
N_INPUTS = 3  # inputs per time step
N_NEURONS = 5  # hidden units

X_BATCH = np.array(
    [
        # t = 0      t = 1
        [[0, 1, 2], [9, 8, 7]],  # instance 0
        [[3, 4, 5], [0, 0, 0]],  # instance 1 (padding at t = 1)
        [[6, 7, 8], [6, 5, 4]],  # instance 2
        [[9, 0, 1], [3, 2, 1]],  # instance 3
    ]
)
SEQ_LENGTH_BATCH = np.array([2, 1, 2, 2])


def check_dynamic_rnn_facts(
    outputs: torch.Tensor, last_h: torch.Tensor, lengths, name: str = "state"
) -> None:
    """Raise if the TF1 ``dynamic_rnn`` semantics do not hold (``name``: what ``last_h`` is
    called in the message; Listing 5.4 checks an LSTM's ``h`` with it)."""
    lengths = torch.as_tensor(lengths)
    for b, n in enumerate(lengths.tolist()):
        if outputs[b, n:].abs().sum() != 0:
            raise RuntimeError(f"instance {b}: outputs past its length {n} are not zero")
        if not torch.equal(last_h[b], outputs[b, n - 1]):
            raise RuntimeError(f"instance {b}: {name} is not the output at step {n - 1}")


def feed_batch(layer):
    """``x``, ``lengths`` and ``layer(x, lengths)``'s outputs and states: the chapter's
    ``sess.run([outputs, states], feed_dict={X: X_batch, seq_length: seq_length_batch})``."""
    x = torch.as_tensor(X_BATCH, dtype=torch.float32)
    lengths = torch.as_tensor(SEQ_LENGTH_BATCH)
    with torch.no_grad():
        outputs, states = layer(x, lengths)
    return x, lengths, outputs, states


def main() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    basic_cell = SimpleRNN(N_INPUTS, N_NEURONS, return_sequences=True, return_state=True)
    x, lengths, outputs_val, states_val = feed_batch(basic_cell)

    with np.printoptions(precision=8, suppress=True):
        print("x_batch      shape:", tuple(x.shape))  # (4, 2, 3)
        print("outputs_val shape:", tuple(outputs_val.shape))  # (4, 2, 5)
        print("states_val  shape:", tuple(states_val.shape))  # (4, 5)
        print("outputs_val:", outputs_val.numpy())
        print("-----\n")
        print("states_val: ", states_val.numpy())

    check_dynamic_rnn_facts(outputs_val, states_val, lengths)
    print("\nchecked: outputs past each length are zero (instance 1, t = 1);")
    print("checked: states_val[b] == outputs_val[b, length_b - 1] for every instance")
    return {"x": x, "lengths": lengths, "outputs": outputs_val, "states": states_val}


if __name__ == "__main__":
    main()
