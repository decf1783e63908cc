"""rnnlab: the systems of one deep-learning chapter (RNNs, LSTM, GRU, autoencoders, VAEs,
GANs, adversarial examples) as one PyTorch library and command-line tool.

The recurrent building blocks are re-exported here (``rnnlab.LSTM``, ``rnnlab.summary``);
everything else lives in its subpackage (``rnnlab.data``, ``rnnlab.models``, ...).
"""

from .layers import (
    GRU,
    LSTM,
    RNN,
    Activation,
    Bidirectional,
    Dense,
    Embedding,
    GRUCell,
    LSTMCell,
    LSTMState,
    Sequential,
    SimpleRNN,
    SimpleRNNCell,
    Stacked,
    from_keras,
    from_torch,
    load_keras,
    stacked,
    summary,
)

__version__ = "0.1.0"

__all__ = [
    "GRU", "LSTM", "RNN", "Activation", "Bidirectional", "Dense", "Embedding", "GRUCell",
    "LSTMCell", "LSTMState", "Sequential", "SimpleRNN", "SimpleRNNCell", "Stacked", "from_keras",
    "from_torch", "load_keras", "stacked", "summary",
    "fit", "History",
]  # fmt: skip


def __getattr__(name: str):
    """``rnnlab.fit`` / ``rnnlab.History`` (:mod:`rnnlab.training.api`), imported on first
    use so that ``import rnnlab`` stays light."""
    if name in ("fit", "History"):
        from .training import api

        return getattr(api, name)
    raise AttributeError(f"module 'rnnlab' has no attribute {name!r}")
