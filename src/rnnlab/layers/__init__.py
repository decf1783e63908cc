"""Building blocks written from their equations: cells, the one time loop, wrappers."""

from .activations import ACTIVATIONS, get_activation
from .bidirectional import Bidirectional
from .cells import GRUCell, LSTMCell, LSTMState, SimpleRNNCell
from .core import Activation, Dense, Embedding, Sequential
from .init import chrono_init_
from .interop import from_torch, to_torch
from .keras_io import from_keras, load_keras
from .masking import detach_state, last_valid, lengths_to_mask, reverse_padded, select_state
from .recurrent import GRU, LSTM, RNN, SimpleRNN
from .stacked import Stacked, stacked
from .summary import summary

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "Bidirectional",
    "Dense",
    "Embedding",
    "GRU",
    "GRUCell",
    "LSTM",
    "LSTMCell",
    "LSTMState",
    "RNN",
    "Sequential",
    "SimpleRNN",
    "SimpleRNNCell",
    "Stacked",
    "chrono_init_",
    "detach_state",
    "from_keras",
    "from_torch",
    "get_activation",
    "last_valid",
    "lengths_to_mask",
    "load_keras",
    "reverse_padded",
    "select_state",
    "stacked",
    "summary",
    "to_torch",
]
