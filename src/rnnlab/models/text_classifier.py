"""Sentence classifiers: embedding -> (stacked) Bidirectional LSTM / GRU -> pooling -> dense.

The BiLSTM sentence encoder of Graves & Schmidhuber (2005) as used for classification by
Tai et al. (2015) and keras-io's ``bidirectional_lstm_imdb``, on rnnlab's layers::

    ids (B, T), lengths (B,) -> [word dropout] -> Embedding -> (B, T, E) -> dropout
        -> L x Bidirectional(LSTM/GRU, H) with lengths -> (B, T, 2H)
        -> pooling -> (B, 2H) (max_mean: (B, 4H)) -> dropout -> Dense -> logits (B, C)

``pooling``: ``"last"`` concatenates the forward state at each sentence's last valid word
and the backward state at its first word (Keras's ``Bidirectional`` without
``return_sequences``); ``"max"`` / ``"mean"`` pool the top layer's outputs over the valid
steps only; ``"max_mean"`` concatenates both, ``[max_t h_t ; (1/n) sum_t h_t]`` (the
pooling of Conneau et al. 2017's InferSent study and Howard & Ruder 2018's concat pooling,
without the last state). Padding never changes a logit: the layers run with ``lengths`` (a
padded step keeps the state and outputs zero), max pooling masks padded steps with -inf and
mean pooling divides by the length. A batch is trimmed to its longest sentence before the
layers run.

``word_dropout`` p (training only): each valid word is replaced by ``<unk>`` (id
``unk_id``) with probability p, so the ``<unk>`` embedding is trained on words the model
must do without, as the test set's unseen words will be (Bowman et al. 2016's word dropout;
Iyyer et al. 2015 drop the word instead). Without it, a vocabulary built on every training
word (``min_freq`` 1) never shows ``<unk>`` in training and its row stays at its random
init. ``embed_init`` "uniform" draws the embeddings U(-0.25, 0.25) (Kim 2014's CNN-rand)
instead of torch's N(0, 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.layers import lengths_to_mask
from rnnlab.utils import check_choice

from .language import stacked_layers

__all__ = ["EMBED_INITS", "POOLINGS", "TEXT_KINDS", "TextClassifier"]

POOLINGS = ("last", "max", "mean", "max_mean")
EMBED_INITS = ("normal", "uniform")
TEXT_KINDS = ("lstm", "gru", "simple_rnn")


class TextClassifier(nn.Module):
    """Logits over ``num_classes`` for padded sentences ``ids`` (B, T) with ``lengths``.

    Args:
        vocab_size, num_classes: V and C; id 0 is padding (its embedding row stays zero).
        embed_dim, hidden_size, num_layers: E, H (per direction), L.
        kind: "lstm", "gru" or "simple_rnn"; ``bidirectional`` (default) wraps each layer.
        pooling: "last", "max", "mean" or "max_mean" (module docstring).
        word_dropout: probability of replacing a word by ``unk_id`` in training (module
            docstring); ``embed_init``: "normal" (torch's N(0, 1)) or "uniform" (U(+-0.25)).
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
        word_dropout: float = 0.0,
        unk_id: int = 1,
        embed_init: str = "normal",
        **layer_kwargs,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"`pooling` must be one of {POOLINGS}, got {pooling!r}.")
        check_choice("embed_init", embed_init, EMBED_INITS)
        if not 0.0 <= word_dropout < 1.0:
            raise ValueError(f"`word_dropout` must be in [0, 1), got {word_dropout!r}.")
        if not 0 < unk_id < vocab_size:
            raise ValueError(f"`unk_id` must be in [1, {vocab_size}), got {unk_id!r}.")
        if kind not in TEXT_KINDS:
            raise ValueError(f"`kind` must be one of {TEXT_KINDS}, got {kind!r}.")
        self.pooling, self.embed_dropout, self.head_dropout = pooling, embed_dropout, head_dropout
        self.word_dropout, self.unk_id = word_dropout, unk_id
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        if embed_init == "uniform":
            with torch.no_grad():
                self.embedding.weight.uniform_(-0.25, 0.25)
                self.embedding.weight[0].zero_()
        self.rnn = stacked_layers(
            kind, embed_dim, hidden_size, num_layers, between=layer_dropout,
            rnn_dropout=rnn_dropout, bidirectional=bidirectional,
            return_sequences=pooling != "last", **layer_kwargs,
        )  # fmt: skip
        width = self.rnn.output_size * (2 if pooling == "max_mean" else 1)
        self.head = nn.Linear(width, num_classes)

    def forward(self, ids: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``ids`` (B, T) int64, ``lengths`` (B,) (``None``: all T valid) -> logits (B, C)."""
        if lengths is None:
            lengths = torch.full((ids.size(0),), ids.size(1), dtype=torch.long)
        lengths = lengths.to(ids.device)
        ids = ids[:, : int(lengths.max())]  # trim the batch to its longest sentence
        if self.training and self.word_dropout > 0:
            drop = torch.rand(ids.shape, device=ids.device) < self.word_dropout
            ids = ids.masked_fill(drop & (ids != 0), self.unk_id)
        x = F.dropout(self.embedding(ids), self.embed_dropout, self.training)  # (B, T, E)
        out, _ = self.rnn(x, lengths)  # (B, 2H) for "last", else (B, T, 2H)
        if self.pooling == "last":
            return self.head(F.dropout(out, self.head_dropout, self.training))
        pooled = []
        if self.pooling in ("max", "max_mean"):
            valid = lengths_to_mask(lengths, ids.size(1))[..., None]  # (B, T, 1)
            pooled.append(out.masked_fill(~valid, float("-inf")).amax(1))
        if self.pooling in ("mean", "max_mean"):
            pooled.append(out.sum(1) / lengths[:, None].to(out.dtype))  # padded outputs are 0
        out = torch.cat(pooled, 1)  # (B, 2H), max_mean (B, 4H)
        return self.head(F.dropout(out, self.head_dropout, self.training))
