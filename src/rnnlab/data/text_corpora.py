"""Language-model corpora and their contiguous batching (truncated BPTT over a whole corpus).

Corpora by name, with their standard splits:

- ``tinyshakespeare`` (char level): ``tinyshakespeare/input.txt``, first 90% train, last
  10% validation, as nanoGPT's ``data/shakespeare_char/prepare.py``; no test split.
- ``ptb`` (word level): Mikolov's ``ptb.{train,valid,test}.txt``, ``<eos>`` per line.
- ``ptb-char`` (char level): derived from the same files, each line read as
  ``' '.join('_'.join(words))`` (the common ``ptb.char.*`` files): one token per character,
  ``_`` between words, ``<eos>`` per line.
- ``text`` (char or word level): the user's own UTF-8 file ``path``, first 90% / last 10%
  unless validation and test files are given.

Folders are looked for as the image datasets are (:mod:`.datasets`: ``data_dir``,
``$RNNLAB_DATA``, ``~/.cache/rnnlab/<name>``), so ``--data-dir ../shared/datasets`` works.

:class:`LMStream` serves a corpus as pytorch/examples' ``batchify`` + ``get_batch`` do
(Zaremba et al. 2014): the stream is cut into ``B`` contiguous columns and read in windows
of ``bptt`` steps, input ``x`` and the next-token target ``y``::

    ids:  a b c d e f g h i j k l m n o p q r s t u v w x y z     (N = 26, B = 4)
    columns of (N - 1) // B = 6 targets each (the x input, the y shifted by one):
        b=0: x a b c d e f   y b c d e f g
        b=1: x g h i j k l   y h i j k l m
        b=2: x m n o p q r   y n o p q r s
        b=3: x s t u v w x   y t u v w x y      (z is only ever a target: dropped here)
    bptt = 4: window 0 = columns [0, 4), window 1 = [4, 6) (the shorter tail)

Row ``b`` of window ``i + 1`` continues where row ``b`` of window ``i`` stopped, so the
(detached) final state of one window is the right initial state of the next.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .datasets import DatasetNotFoundError, _search_dirs
from .text import EOS, TextDataError, Vocabulary, read_text, tokenize

__all__ = ["CORPORA", "Corpus", "LMStream", "load_corpus", "split_fraction"]

CORPORA = {
    "tinyshakespeare": ("char", ("input.txt",)),
    "ptb": ("word", ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt")),
    "ptb-char": ("char", ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt")),
}
FOLDERS = {"tinyshakespeare": "tinyshakespeare", "ptb": "ptb", "ptb-char": "ptb"}
TRAIN_FRACTION = 0.9  # nanoGPT's shakespeare_char split


@dataclass
class Corpus:
    """Token ids of each split (``test`` may be ``None``) and the training vocabulary."""

    vocab: Vocabulary
    train: Tensor
    val: Tensor | None
    test: Tensor | None
    source: str


def split_fraction(text: str, fraction: float = TRAIN_FRACTION) -> tuple[str, str]:
    """The first ``fraction`` of ``text`` and the rest, cut at character ``int(n * fraction)``."""
    n = int(len(text) * fraction)
    return text[:n], text[n:]


def _find(name: str, filenames: tuple[str, ...], root) -> list[Path]:
    folder_name = FOLDERS[name]
    for folder in _search_dirs(folder_name, root):
        found = [folder / f for f in filenames]
        if all(p.is_file() for p in found):
            return found
    looked = ", ".join(str(d) for d in _search_dirs(folder_name, root))
    raise DatasetNotFoundError(
        f"corpus {name!r} ({', '.join(filenames)}) not found; looked in: {looked} "
        "(give the folder with --data-dir DIR)"
    )


def _ptb_char_tokens(text: str) -> list[str]:
    """PTB character level: ``' '.join('_'.join(words))`` per line, tokens = its characters
    between the spaces, then ``<eos>``."""
    tokens: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if words:
            tokens += list("_".join(words))
            tokens.append(EOS)
    return tokens


def _tokens(text: str, name: str, level: str) -> list[str]:
    return _ptb_char_tokens(text) if name == "ptb-char" else tokenize(text, level)


def load_corpus(
    name: str,
    *,
    root: str | os.PathLike | None = None,
    path: str | os.PathLike | None = None,
    val_path: str | os.PathLike | None = None,
    test_path: str | os.PathLike | None = None,
    level: str = "char",
    max_vocab: int = 0,
    vocab: Vocabulary | None = None,
) -> Corpus:
    """Corpus ``name`` (see the module docstring) as ids. ``vocab``: a saved vocabulary to
    use unchanged (evaluation of a trained run); else one is built on the training split."""
    if name == "text":
        if path is None:
            raise TextDataError("`data.path` must name a UTF-8 text file for dataset 'text'")
        text = read_text(path)
        if val_path is None:
            train_text, val_text = split_fraction(text)
        else:
            train_text, val_text = text, read_text(val_path)
        test_text = read_text(test_path) if test_path is not None else None
        source = f"{path}" + (f" + {val_path}" if val_path else " (first 90% / last 10%)")
    elif name in CORPORA:
        level, files = CORPORA[name]
        found = _find(name, files, root)
        texts = [read_text(p) for p in found]
        if name == "tinyshakespeare":
            (train_text, val_text), test_text = split_fraction(texts[0]), None
        else:
            train_text, val_text, test_text = texts
        source = f"{name} ({found[0].parent})"
    else:
        raise ValueError(f"`name` must be one of {[*CORPORA, 'text']}, got {name!r}")
    train_tokens = _tokens(train_text, name, level)
    others = [_tokens(t, name, level) if t is not None else None for t in (val_text, test_text)]
    if not train_tokens:
        raise TextDataError(f"the training split of {source} holds no tokens")
    if vocab is None:
        seen = [tok for toks in others if toks for tok in toks]
        vocab = Vocabulary.build(train_tokens, level, max_size=max_vocab, also=seen)
    ids = [vocab.encode(t) if t is not None else None for t in (train_tokens, *others)]
    return Corpus(vocab, ids[0], ids[1], ids[2], source)


class LMStream:
    """Windows ``(x, y, start)`` over ``ids`` cut into ``batch_size`` contiguous columns
    (module docstring): ``x``, ``y`` (B, <= bptt) and ``start`` a bool scalar tensor, True
    for the first window of a pass (where a stateful model starts from zeros). Iterating
    starts at ``position`` (0 after a full pass), so a checkpoint taken mid-epoch
    (:meth:`state_dict`) resumes at the next window.
    """

    def __init__(self, ids: Tensor, batch_size: int, bptt: int) -> None:
        if ids.dim() != 1:
            raise ValueError(f"`ids` must be a 1-D stream of token ids, got {tuple(ids.shape)}")
        if batch_size < 1 or bptt < 1:
            raise ValueError(f"`batch_size` and `bptt` must be >= 1, got {batch_size}, {bptt}")
        steps = (len(ids) - 1) // batch_size
        if steps < 1:
            raise TextDataError(
                f"a stream of {len(ids)} tokens is too short for {batch_size} parallel columns "
                "(each needs at least one input and one target)"
            )
        cols = ids[: steps * batch_size + 1]
        # column b reads ids[b * steps : (b + 1) * steps + 1]: inputs and their next tokens
        starts = torch.arange(batch_size)[:, None] * steps
        index = starts + torch.arange(steps + 1)[None, :]  # (B, steps + 1)
        self.data = cols[index]
        self.batch_size, self.bptt, self.steps = batch_size, bptt, steps
        self.position = 0  # the next window's first column

    @property
    def tokens(self) -> int:
        """Targets per pass: ``batch_size * steps``."""
        return self.batch_size * self.steps

    def __len__(self) -> int:
        return -(-self.steps // self.bptt)

    def __iter__(self):
        while self.position < self.steps:
            t0 = self.position
            t1 = min(t0 + self.bptt, self.steps)
            self.position = t1
            yield self.data[:, t0:t1], self.data[:, t0 + 1 : t1 + 1], torch.tensor(t0 == 0)
        self.position = 0

    def state_dict(self) -> dict:
        return {"position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.position = int(state["position"])
