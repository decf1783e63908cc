"""Sentence classifiers: embedding -> (stacked) Bidirectional LSTM / GRU -> pooling -> dense.

The BiLSTM sentence encoder of Graves & Schmidhuber (2005) as used for classification by
Tai et al. (2015) and keras-io's ``bidirectional_lstm_imdb``, on rnnlab's layers::

    ids (B, T), lengths (B,) -> Embedding -> (B, T, E) -> dropout
        -> L x Bidirectional(LSTM/GRU, H) with lengths -> (B, T, 2H)
        -> pooling -> (B, 2H) -> dropout -> Dense -> logits (B, C)

``pooling``: ``"last"`` concatenates the forward state at each sentence's last valid word
and the backward state at its first word (Keras's ``Bidirectional`` without
``return_sequences``); ``"max"`` / ``"mean"`` pool the top layer's outputs over the valid
steps only. Padding never changes a logit: the layers run with ``lengths`` (a padded step
keeps the state and outputs zero), max pooling masks padded steps with -inf and mean pooling
divides by the length. A batch is trimmed to its longest sentence before the layers run.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.layers import lengths_to_mask

from .language import stacked_layers

__all__ = ["POOLINGS", "TEXT_KINDS", "TextClassifier"]

POOLINGS = ("last", "max", "mean")
TEXT_KINDS = ("lstm", "gru", "simple_rnn")


class TextClassifier(nn.Module):
    """Logits over ``num_classes`` for padded sentences ``ids`` (B, T) with ``lengths``.

    Args:
        vocab_size, num_classes: V and C; id 0 is padding (its embedding row stays zero).
        embed_dim, hidden_size, num_layers: E, H (per direction), L.
        kind: "lstm", "gru" or "simple_rnn"; ``bidirectional`` (default) wraps each layer.
        pooling: "last", "max" or "mean" (module docstring).
        embed_dropout: on the embedded words; ``layer_dropout`` between stacked layers;
            ``head_dropout`` before the dense layer; ``layer_kwargs`` go to each recurrent
            layer (``dropout`` as ``rnn_dropout``, ``recurrent_dropout``, ``implementation``...).
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embed_dim: int = 128,
        hidden_size: int = 128,
        num_layers: int = 1,
        *,
        kind: str = "lstm",
        bidirectional: bool = True,
        pooling: str = "last",
        embed_dropout: float = 0.0,
        layer_dropout: float = 0.0,
        head_dropout: float = 0.0,
        rnn_dropout: float = 0.0,
        **layer_kwargs,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"`pooling` must be one of {POOLINGS}, got {pooling!r}.")
        if kind not in TEXT_KINDS:
            raise ValueError(f"`kind` must be one of {TEXT_KINDS}, got {kind!r}.")
        self.pooling, self.embed_dropout, self.head_dropout = pooling, embed_dropout, head_dropout
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.rnn = stacked_layers(
            kind, embed_dim, hidden_size, num_layers, between=layer_dropout,
            rnn_dropout=rnn_dropout, bidirectional=bidirectional,
            return_sequences=pooling != "last", **layer_kwargs,
        )  # fmt: skip
        self.head = nn.Linear(self.rnn.output_size, num_classes)

    def forward(self, ids: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``ids`` (B, T) int64, ``lengths`` (B,) (``None``: all T valid) -> logits (B, C)."""
        if lengths is None:
            lengths = torch.full((ids.size(0),), ids.size(1), dtype=torch.long)
        lengths = lengths.to(ids.device)
        ids = ids[:, : int(lengths.max())]  # trim the batch to its longest sentence
        x = F.dropout(self.embedding(ids), self.embed_dropout, self.training)  # (B, T, E)
        out, _ = self.rnn(x, lengths)  # (B, 2H) for "last", else (B, T, 2H)
        if self.pooling == "max":
            valid = lengths_to_mask(lengths, ids.size(1))[..., None]  # (B, T, 1)
            out = out.masked_fill(~valid, float("-inf")).amax(1)
        elif self.pooling == "mean":
            out = out.sum(1) / lengths[:, None].to(out.dtype)  # padded outputs are zero
        return self.head(F.dropout(out, self.head_dropout, self.training))
