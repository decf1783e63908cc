"""Text -> token ids: reading corpora safely, character and word vocabularies.

A :class:`Vocabulary` is built on the TRAINING split only and saved with the run as JSON
(:meth:`Vocabulary.to_dict`); evaluation and generation load that file and use it unchanged,
so ids never shift between training and use.

- Character level (char-rnn, nanoGPT's ``shakespeare_char``): one token per Unicode
  character, the sorted characters of the training text (65 for tiny-shakespeare).
  ``<unk>`` is added only when the evaluation splits hold characters training never saw.
- Word level (Mikolov et al. 2010's PTB preprocessing): whitespace tokens, one ``<eos>``
  appended to every line, words outside the vocabulary mapped to ``<unk>``. Ids are ordered
  by training frequency (ties: first appearance), ``max_size`` keeps the most frequent.

Corpora are read as UTF-8 strictly: an empty or binary (non-UTF-8) file is a
:class:`TextDataError` naming the file and the first bad byte, never a silent replacement.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

__all__ = ["EOS", "LEVELS", "UNK", "TextDataError", "Vocabulary", "read_text", "tokenize"]

UNK, EOS = "<unk>", "<eos>"
LEVELS = ("char", "word")


class TextDataError(ValueError):
    """A corpus or labelled-text file that cannot be used (empty, not UTF-8, bad line...)."""


def read_text(path: str | os.PathLike, encoding: str = "utf-8") -> str:
    """The whole text of ``path``; refuses a missing, empty or undecodable file in one line."""
    path = Path(path)
    if not path.is_file():
        raise TextDataError(f"text file {path} does not exist")
    raw = path.read_bytes()
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise TextDataError(
            f"{path} is not {encoding} text: byte {raw[e.start]:#04x} at offset {e.start} "
            f"(line {line}); a binary file, or re-encode it as UTF-8"
        ) from None
    if not text.strip():
        raise TextDataError(f"{path} holds no text (empty or whitespace only)")
    return text


def tokenize(text: str, level: str) -> list[str]:
    """Tokens of ``text``: its characters (``"char"``), or per line its whitespace-separated
    words followed by ``<eos>`` (``"word"``; empty lines give nothing, as in Mikolov's PTB)."""
    if level == "char":
        return list(text)
    if level != "word":
        raise ValueError(f"`level` must be one of {LEVELS}, got {level!r}")
    tokens: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if words:
            tokens += words
            tokens.append(EOS)
    return tokens


class Vocabulary:
    """Token <-> id. ``tokens[i]`` is the token of id ``i``; ``unk`` (or ``None``) is where
    unknown tokens go."""

    def __init__(self, tokens: Sequence[str], level: str, unk: str | None = None) -> None:
        if level not in LEVELS:
            raise ValueError(f"`level` must be one of {LEVELS}, got {level!r}")
        if not tokens:
            raise TextDataError("a vocabulary needs at least one token, got none")
        if len(set(tokens)) != len(tokens):
            raise ValueError("`tokens` must not repeat a token")
        if unk is not None and unk not in tokens:
            raise ValueError(f"`unk` {unk!r} must be one of the tokens")
        self.tokens, self.level, self.unk = list(tokens), level, unk
        self.index = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def build(
        cls,
        train_tokens: Iterable[str],
        level: str,
        *,
        max_size: int = 0,
        min_freq: int = 1,
        also: Iterable[str] = (),
    ) -> Vocabulary:
        """The vocabulary of ``train_tokens``. Characters: sorted, plus ``<unk>`` when a
        token of ``also`` (the evaluation splits) is missing. Words: by frequency, at most
        ``max_size`` (0 = all) of those seen ``min_freq`` times, ``<unk>`` always present
        (PTB brings its own), ``<eos>`` among the words."""
        counts = collections.Counter(train_tokens)
        if not counts:
            raise TextDataError("the training split holds no tokens")
        if level == "char":
            chars = sorted(counts)
            unseen = set(also) - counts.keys()
            return cls(chars + [UNK] if unseen else chars, "char", UNK if unseen else None)
        ranked = [t for t, c in counts.most_common() if c >= min_freq and t != UNK]
        if max_size:
            ranked = ranked[: max_size - 1]
        return cls([*ranked, UNK], "word", UNK)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self.index

    def unknown(self, tokens: Iterable[str]) -> list[str]:
        """The distinct tokens of ``tokens`` outside the vocabulary, in order of appearance."""
        return list(dict.fromkeys(t for t in tokens if t not in self.index))

    def encode(self, tokens: Iterable[str], *, strict: bool = False) -> torch.Tensor:
        """Ids (N,) int64. Unknown tokens map to ``unk``; with ``strict`` (or no ``unk``)
        they raise :class:`TextDataError` naming them."""
        tokens = list(tokens)
        if strict or self.unk is None:
            missing = self.unknown(tokens)
            if missing:
                shown = ", ".join(repr(t) for t in missing[:10])
                more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
                raise TextDataError(f"not in the {self.level} vocabulary: {shown}{more}")
        unk = self.index.get(self.unk, -1)
        return torch.tensor([self.index.get(t, unk) for t in tokens], dtype=torch.long)

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``: characters joined, words joined by spaces (``<eos>`` -> newline)."""
        tokens = [self.tokens[int(i)] for i in ids]
        if self.level == "char":
            return "".join(tokens)
        return " ".join(tokens).replace(f" {EOS} ", "\n").replace(EOS, "\n")

    def to_dict(self) -> dict:
        return {"level": self.level, "unk": self.unk, "tokens": self.tokens}

    @classmethod
    def from_dict(cls, data: dict) -> Vocabulary:
        """The vocabulary :meth:`to_dict` wrote (``vocab.json`` in a run folder)."""
        try:
            return cls(list(data["tokens"]), str(data["level"]), data.get("unk"))
        except (KeyError, TypeError) as e:
            raise TextDataError(f"not a vocabulary file: {e}") from None

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} {self.level} tokens, unk={self.unk!r})"
