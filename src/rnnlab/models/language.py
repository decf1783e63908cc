"""Recurrent language models: embedding -> stacked SimpleRNN / LSTM / GRU -> projection.

The model of Zaremba, Sutskever & Vinyals (2014, "Recurrent Neural Network
Regularization") and of pytorch/examples' ``word_language_model``, built from rnnlab's own
layers (:class:`rnnlab.layers.Stacked`)::

    ids (B, T) -> Embedding -> (B, T, E) -> dropout -> layer 1 -> dropout -> ... -> layer L
               -> (B, T, H) -> dropout -> Linear(H, V) -> logits (B, T, V)

``dropout`` is Zaremba et al.'s: on the non-recurrent connections only (the embedding
output, between layers, before the projection), a fresh mask per step; the layers' own Gal &
Ghahramani rates (``rnn_dropout`` on inputs, ``recurrent_dropout`` on the state) are there
too. ``tie_weights`` shares the embedding matrix with the projection (Press & Wolf 2016,
"Using the Output Embedding to Improve Language Models", arXiv:1608.05859; Inan et al. 2016),
which needs ``embed_dim == hidden_size``.

The state is explicit: ``forward(ids, state) -> (logits, new_state)``, ``state`` a list with
one entry per layer (``None`` = zeros). A training loop carries the detached state from one
window to the next (truncated BPTT; the caller detaches, see :func:`rnnlab.layers.detach_state`).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.layers import GRU, LSTM, Bidirectional, SimpleRNN, Stacked
from rnnlab.utils import check_choice

__all__ = ["LM_KINDS", "LanguageModel", "stacked_layers"]

LAYERS = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}
LM_KINDS = tuple(LAYERS)


class LanguageModel(nn.Module):
    """Next-token model over a vocabulary of ``vocab_size`` ids.

    Args:
        vocab_size: V.
        embed_dim: E (the embedding width).
        hidden_size: H of every recurrent layer.
        num_layers: L.
        kind: "simple_rnn", "lstm" or "gru".
        dropout: Zaremba et al.'s rate on the embedding output, between layers and before
            the projection (training mode only).
        tie_weights: projection weight = embedding weight (Press & Wolf 2016).
        init_scale: > 0 draws every parameter from U(-s, s) as Zaremba et al. (0.1 for
            their small model); 0 keeps the layers' init (``init="torch"`` by default here:
            U(+-1/sqrt(H)), no forget bias) and U(-0.1, 0.1) embeddings and projection.
        layer_kwargs: the recurrent layers' options (``dropout`` is passed as
            ``rnn_dropout``; ``recurrent_dropout``, ``implementation``, ``init``,
            ``activation``).
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        kind: str = "lstm",
        dropout: float = 0.0,
        tie_weights: bool = False,
        init_scale: float = 0.0,
        rnn_dropout: float = 0.0,
        **layer_kwargs,
    ) -> None:
        super().__init__()
        check_choice("kind", kind, LM_KINDS)
        if vocab_size < 1:
            raise ValueError(f"`vocab_size` must be >= 1, got {vocab_size}.")
        if tie_weights and embed_dim != hidden_size:
            raise ValueError(
                "`tie_weights` needs embed_dim == hidden_size (the projection reads H "
                f"features and writes the E-wide embedding rows), got {embed_dim} and "
                f"{hidden_size}."
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be a rate in [0, 1), got {dropout!r}.")
        self.vocab_size, self.kind, self.dropout = vocab_size, kind, dropout
        # torch's U(+-1/sqrt(H)) init, not Keras's forget bias 1: with the latter, LMs trained
        # on carried state learned ever-growing cell "counters" and scored 5.9 nats/char on
        # a validation stream read from a zero state (2.3 with this init; docs/results/text.md)
        layer_kwargs.setdefault("init", "torch")
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.rnn = stacked_layers(
            kind, embed_dim, hidden_size, num_layers, between=dropout,
            rnn_dropout=rnn_dropout, **layer_kwargs,
        )  # fmt: skip
        self.projection = nn.Linear(hidden_size, vocab_size)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        nn.init.zeros_(self.projection.bias)
        if tie_weights:
            self.projection.weight = self.embedding.weight
        else:
            nn.init.uniform_(self.projection.weight, -0.1, 0.1)
        if init_scale > 0:
            for p in self.parameters():
                nn.init.uniform_(p, -init_scale, init_scale)
        self.tie_weights = tie_weights

    @property
    def num_layers(self) -> int:
        return len(self.rnn.layers)

    def forward(self, ids: Tensor, state: list | None = None) -> tuple[Tensor, list]:
        """``ids`` (B, T) int64 and the carried ``state`` (a list of L states, or ``None``)
        -> ``(logits (B, T, V), final state list)``."""
        x = self.embedding(ids)  # (B, T, E)
        x = F.dropout(x, self.dropout, self.training)
        out, new_state = self.rnn(x, None, state)  # (B, T, H), [state of each layer]
        out = F.dropout(out, self.dropout, self.training)
        return self.projection(out), new_state  # (B, T, V)


def stacked_layers(
    kind: str,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    *,
    between: float = 0.0,
    rnn_dropout: float = 0.0,
    bidirectional: bool = False,
    return_sequences: bool = True,
    **layer_kwargs,
) -> Stacked:
    """``num_layers`` layers of ``kind`` as a :class:`~rnnlab.layers.Stacked` that returns
    its states: ``between`` is the dropout between layers, ``rnn_dropout`` each layer's own
    Gal & Ghahramani input rate (Keras's ``dropout=``), ``layer_kwargs`` the rest
    (``recurrent_dropout``, ``implementation``, ``init``, ``activation``). ``bidirectional``
    wraps each layer in :class:`~rnnlab.layers.Bidirectional` (concat)."""
    check_choice("kind", kind, LM_KINDS)
    if not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"`num_layers` must be a positive integer, got {num_layers!r}.")
    layers, size = [], input_size
    for i in range(num_layers):
        last = i == num_layers - 1
        layer = LAYERS[kind](
            size, hidden_size, dropout=rnn_dropout, return_state=True,
            return_sequences=return_sequences or not last, **layer_kwargs,
        )  # fmt: skip
        layer = Bidirectional(layer) if bidirectional else layer
        layers.append(layer)
        size = layer.output_size
    return Stacked(*layers, dropout=between)
