"""Listing 5.1 (keras_rnn_model.py) in rnnlab: a SimpleRNN(512) over 30 steps of 12 features,
then Dense(5, softmax), and the model summary the chapter prints:

    simple_rnn (SimpleRNN)  (None, 512)  268800     = 512 * (12 + 512 + 1)
    dense (Dense)           (None, 5)    2565       = 5 * (512 + 1)
    Total params: 271,365

Run: ``python examples/listing_5_1_rnn_model.py``.
"""

from __future__ import annotations

import torch

from rnnlab.layers import Dense, Sequential, SimpleRNN, summary

TIMESTEPS = 30
INPUT_DIM = 12
UNITS = 512  # hidden units in the RNN cell
N_CLASSES = 5  # classes to be identified


def build_model() -> Sequential:
    """Keras: Sequential([SimpleRNN(units, dropout=0.2, input_shape=(30, 12)),
    Dense(n_classes, activation='softmax')])."""
    return Sequential(
        SimpleRNN(INPUT_DIM, UNITS, dropout=0.2),
        Dense(UNITS, N_CLASSES, activation="softmax"),
    )


def main() -> str:
    torch.manual_seed(0)
    model = build_model()
    # The listing compiles with categorical cross-entropy and Adam; in torch the optimizer
    # is built from the parameters (and the loss is a function the training step calls).
    torch.optim.Adam(model.parameters())
    return summary(model, (TIMESTEPS, INPUT_DIM))


if __name__ == "__main__":
    main()
