"""text-classify: sentence classification with a (stacked) bidirectional LSTM / GRU over word
embeddings learnt from scratch (no pretrained vectors; Kim 2014's CNN-rand is the anchor).

Data (:mod:`rnnlab.data.text_classification`): ``data.dataset`` ``sst2`` (train / dev / test
as given), ``trec`` (train / test) or ``text`` (the user's ``label<TAB>text``, ``LABEL text``
or CSV files ``data.train`` and ``data.test``, optional ``data.val``, ``data.format``: the
names seq-classify reads its own files by; the language model's ``data.path`` /
``data.val_path`` / ``data.test_path`` are refused here with the new name).
Without a validation file, ``data.val_fraction`` of the training sentences is held out (a
fixed permutation): model choice never sees the test set. The word vocabulary
(``data.max_vocab``, ``data.min_freq``; ``data.lowercase`` first lower-cases every sentence)
and the label names are built on the training split
and saved in the run's config (``data.vocab``, ``data.label_names``, JSON); a test label training
never saw is an error naming it. Batches are ``(ids, labels, lengths)``, padded.

Model (:class:`rnnlab.models.text_classifier.TextClassifier`): ``model.kind`` lstm | gru |
simple_rnn, ``model.bidirectional`` (default on here), ``model.pooling`` last | max | mean,
``model.embed_dim``, ``model.embed_dropout``, ``model.layer_dropout``, ``model.head_dropout``,
``model.word_dropout`` (words -> ``<unk>`` in training), ``model.embed_init`` (normal |
uniform). Steps and metrics are the classify family's (cross-entropy, accuracy);
``train.monitor=accuracy`` keeps the epoch of the best validation accuracy.
"""

from __future__ import annotations

import json

import torch
from torch import nn

from rnnlab.data.text import TextDataError, Vocabulary
from rnnlab.data.text_classification import (
    CLASSIFICATION_SETS,
    Labelled,
    LabelSet,
    build_word_vocab,
    encode_labelled,
    load_classification,
    read_sentences,
)
from rnnlab.models.text_classifier import TEXT_KINDS, TextClassifier

from ..config import Config, ConfigError, changed_keys
from . import Data, DataSpec, Family
from ._common import VAL_SEED, DataError
from .classify import plain_steps

__all__ = ["FAMILY", "labels_of", "predict_sentences", "vocabulary_of"]

DATASETS = (*CLASSIFICATION_SETS, "text")
# the names text-classify read its own files by before they followed seq-classify's
RENAMED = {"data.path": "data.train", "data.val_path": "data.val", "data.test_path": "data.test"}
KEYS = frozenset({
    "data.train", "data.val", "data.test", *RENAMED, "data.format", "data.max_vocab",
    "data.min_freq", "data.lowercase", "data.vocab", "data.label_names",
    "model.hidden_size", "model.num_layers", "model.bidirectional", "model.dropout",
    "model.recurrent_dropout", "model.layer_dropout", "model.head_dropout",
    "model.implementation", "model.init", "model.activation", "model.embed_dim",
    "model.embed_dropout", "model.pooling", "model.word_dropout", "model.embed_init",
})  # fmt: skip


def vocabulary_of(cfg: Config) -> Vocabulary | None:
    return Vocabulary.from_dict(json.loads(cfg.data.vocab)) if cfg.data.vocab else None


def labels_of(cfg: Config) -> LabelSet | None:
    return LabelSet(json.loads(cfg.data.label_names)) if cfg.data.label_names else None


def predict_sentences(cfg: Config, model: nn.Module, path) -> tuple[list[str], list[list[str]]]:
    """``(header, rows)`` of ``rnnlab predict``: one row per sentence of ``path``
    (:func:`~rnnlab.data.text_classification.read_sentences`): its ``line`` in the file, the
    predicted ``label`` (as the training file wrote it) and ``p_<label>`` for every class
    (softmax probabilities). Words the run's vocabulary lacks are ``<unk>``, as at test."""
    from torch.nn.utils.rnn import pad_sequence

    vocab, labels = vocabulary_of(cfg), labels_of(cfg)
    if vocab is None or labels is None:
        raise DataError("the run's config.json holds no vocabulary / label names (data.vocab, "
                        "data.label_names): it did not finish building its data")  # fmt: skip
    lines, tokens = read_sentences(path, lowercase=cfg.data.lowercase)
    seqs = [vocab.encode(words) for words in tokens]
    ids = pad_sequence(seqs, batch_first=True)
    lengths = torch.tensor([len(s) for s in seqs])
    size = cfg.train.eval_batch_size
    model.eval()
    with torch.no_grad():
        probs = torch.cat([torch.softmax(model(ids[i : i + size], lengths[i : i + size]), -1)
                           for i in range(0, len(seqs), size)])  # fmt: skip
    header = ["line", "label", *(f"p_{name}" for name in labels.names)]
    rows = [[str(n), labels.names[int(p.argmax())], *(f"{float(v):.6g}" for v in p)]
            for n, p in zip(lines, probs, strict=True)]  # fmt: skip
    return header, rows


def _carve(data: Labelled, fraction: float) -> tuple[Labelled, Labelled]:
    """``fraction`` of ``data`` held out by a fixed permutation (the same for every run)."""
    n = len(data.labels)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(VAL_SEED)).tolist()
    n_val = max(1, int(n * fraction))
    if n_val >= n:
        raise DataError(f"`data.val_fraction` {fraction} of {n} sentences leaves none to train on")

    def pick(idx):
        return Labelled([data.labels[i] for i in idx], [data.tokens[i] for i in idx],
                        [data.lines[i] for i in idx], data.path)  # fmt: skip

    return pick(sorted(order[n_val:])), pick(sorted(order[:n_val]))


def _synthetic(vocab: Vocabulary, labels: LabelSet, n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 12, (n,), generator=g)
    ids = torch.randint(1, len(vocab), (n, 12), generator=g)
    ids[torch.arange(12)[None] >= lengths[:, None]] = 0
    return ids, torch.randint(0, len(labels), (n,), generator=g), lengths


def build_data(cfg: Config, dry_run: bool) -> Data:
    d = cfg.data
    vocab, labels = vocabulary_of(cfg), labels_of(cfg)
    if dry_run:  # nothing read: random sentences over the saved vocabulary (or 50 words)
        vocab = vocab or Vocabulary(["<pad>", "<unk>", *(f"w{i}" for i in range(48))], "word",
                                    "<unk>")  # fmt: skip
        labels = labels or LabelSet(["0", "1"])
        splits = [_synthetic(vocab, labels, n, s) for s, n in ((0, 128), (1, 32), (2, 32))]
        source = "synthetic sentences (dry run)"
    else:
        raw = load_classification(
            d.dataset, root=d.data_dir, train_path=d.train or None, val_path=d.val or None,
            test_path=d.test or None, fmt=d.format, lowercase=d.lowercase,
        )  # fmt: skip
        train, val, test = raw["train"], raw["val"], raw["test"]
        if d.limit:
            train = Labelled(train.labels[: d.limit], train.tokens[: d.limit],
                             train.lines[: d.limit], train.path)  # fmt: skip
        if val is None and d.val_fraction > 0:
            train, val = _carve(train, d.val_fraction)
        if test is None:
            raise TextDataError("`data.test` must name a labelled test file")
        vocab = vocab or build_word_vocab(train, min_freq=d.min_freq, max_size=d.max_vocab)
        labels = labels or LabelSet.build(train.labels)
        splits = [encode_labelled(s, vocab, labels) if s is not None else None
                  for s in (train, val, test)]  # fmt: skip
        n_val = len(val.labels) if val is not None else 0
        source = (f"{d.dataset} ({train.path}): {len(train.labels):,} train / {n_val:,} val / "
                  f"{len(test.labels):,} test sentences, {len(vocab):,} words, "
                  f"{len(labels)} classes")  # fmt: skip
        d.vocab = json.dumps(vocab.to_dict(), ensure_ascii=False)  # saved in config.json
        d.label_names = json.dumps(labels.names, ensure_ascii=False)
    info = {"vocab": vocab, "labels": labels, "class_names": labels.names}
    return Data(splits[0], splits[1], splits[2], len(labels), source, info)


def build_model(cfg: Config, spec: DataSpec) -> nn.Module:
    m = cfg.model
    bidirectional = m.bidirectional if "model.bidirectional" in changed_keys(cfg) else True
    vocab = spec.info["vocab"]
    return TextClassifier(
        len(vocab), spec.num_classes, m.embed_dim, m.hidden_size, m.num_layers,
        kind=m.kind, bidirectional=bidirectional, pooling=m.pooling,
        embed_dropout=m.embed_dropout, layer_dropout=m.layer_dropout,
        head_dropout=m.head_dropout, rnn_dropout=m.dropout,
        recurrent_dropout=m.recurrent_dropout, implementation=m.implementation, init=m.init,
        activation=m.activation, word_dropout=m.word_dropout, unk_id=vocab.index[vocab.unk],
        embed_init=m.embed_init,
    )  # fmt: skip


def check(cfg: Config) -> None:
    """Refuse the old own-file key names, naming the new ones."""
    old = [k for k in RENAMED if k in changed_keys(cfg)]
    if old:
        raise ConfigError(
            f"`{old[0]}` is `{RENAMED[old[0]]}` for family text-classify (its own files are "
            "data.train, data.val, data.test, as seq-classify's)"
        )


FAMILY = Family(
    name="text-classify",
    description="sentence classifiers: embedding -> bidirectional LSTM/GRU -> pooling -> "
    "dense; accuracy",
    kinds=TEXT_KINDS,
    datasets=DATASETS,
    build_data=build_data,
    build_model=build_model,
    steps=plain_steps,
    keys=KEYS,
    supports=frozenset({"precision", "classes"}),
    summary_input=lambda cfg, spec: None,
    check=check,
)
