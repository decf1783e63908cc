"""seq-classify: sequence classification on the user's own files (UCR/UEA ``.ts``, wide or
long CSV, ``.npy``/``.npz``; :mod:`rnnlab.data.files`).

``data.train`` is read with ``data.target`` (a CSV's label column) and ``data.id_column`` (a
long CSV's sequence id); ``data.test`` the same way, or, when it is empty, a fixed
``data.test_fraction`` of the training file is held out as the test split. The validation
split (``data.val_fraction``) is carved from the training data only. Labels are mapped to
indices in sorted order (numerically when all are numbers) and the names saved; a test label
the training data lacks is an error. Each channel is standardised with the mean and standard
deviation of the training split's valid steps (padding excluded); the statistics go into the
run's ``data.json`` (:mod:`._files`), and ``data.scaler`` (set by ``rnnlab evaluate``) replaces
the fit. A batch is ``(x, y, lengths)``: variable-length
sequences are right-padded and read through ``lengths``.

Kinds: the recurrent ``lstm``, ``gru``, ``bilstm``, ``simple_rnn``
(:class:`~rnnlab.models.classifiers.SequenceClassifier`), ``fcn``, ``resnet``, ``mlp``,
``encoder``, ``inception`` and ``lstm-fcn`` (:mod:`rnnlab.models.series_classifiers`;
``model.hidden_size`` is the LSTM branch, ``model.head_dropout`` its dropout; the MLP's input
is the training file's longest series, shorter ones are zero-padded to it; the Encoder needs 4
steps).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnlab.data.files import read_sequences
from rnnlab.data.records import DataFileError, Sequences, class_names, encode_labels
from rnnlab.data.windows import Scaler
from rnnlab.models.classifiers import SequenceClassifier
from rnnlab.models.series_classifiers import FCN, LSTMFCN, MLP, Encoder, Inception, ResNet

from ..config import Config
from . import Data, DataSpec, keyset
from ._common import RNN_KEYS, DataError, rnn_kwargs, tensor_data
from ._files import file_family, fill_rule, training_scaler
from .classify import plain_steps

__all__ = ["FAMILY", "KINDS", "check_steps", "read_split", "scale_padded"]

KINDS = ("lstm", "gru", "bilstm", "simple_rnn", "fcn", "resnet", "mlp", "encoder", "inception",
         "lstm-fcn")  # fmt: skip
TEST_SEED = 54321  # the held-out test split of a run without data.test is always the same
DRY_RUN = 64  # sequences per split with --dry-run


def read_split(cfg: Config, path: str) -> Sequences:
    """One file of sequences with the run's reader options."""
    d = cfg.data
    return read_sequences(path, label=d.target or None, id_column=d.id_column or None,
                          time_column=d.time_column or None, fill=fill_rule(cfg))  # fmt: skip


def check_steps(cfg: Config, steps: int, seqs: Sequences) -> None:
    """The MLP reads a fixed number of steps, the training file's longest: a file of longer
    series is refused (``data.test`` at training, the file given to ``predict``)."""
    if cfg.model.kind == "mlp" and seqs.x.shape[1] > steps:
        raise DataFileError(f"{seqs.source}: expected series of at most {steps} steps (the "
                            "training data's longest, model.kind=mlp), got "
                            f"{seqs.x.shape[1]}")  # fmt: skip


def scale_padded(x: Tensor, lengths: Tensor, scaler: Scaler) -> Tensor:
    """``x (N, T, C)`` standardised, padding kept at zero."""
    valid = (torch.arange(x.shape[1]) < lengths[:, None])[..., None]
    return torch.where(valid, scaler.transform(x), torch.zeros(()))


def _stand_in() -> Sequences:
    """80 noisy sine / cosine sequences of 16 to 24 steps, two classes (``--dry-run``)."""
    g = torch.Generator().manual_seed(0)
    seqs, labels = [], []
    for i in range(80):
        t = torch.arange(16 + i % 9, dtype=torch.float32)[:, None]
        wave = torch.sin(t / 3) if i % 2 else torch.cos(t / 3)
        seqs.append((wave + 0.1 * torch.randn(t.shape, generator=g)).numpy())
        labels.append(str(i % 2))
    return Sequences.from_arrays(seqs, labels, ["value"], "synthetic stand-in (--dry-run)")


def _labelled(seqs: Sequences) -> list[str]:
    if seqs.labels is None:
        raise DataFileError(
            f"{seqs.source}: expected class labels (a CSV label column named by data.target, "
            "y in an .npz, @classLabel true in a .ts), got none"
        )
    return seqs.labels


def build_data(cfg: Config, dry_run: bool) -> Data:
    d = cfg.data
    if dry_run and not d.train:  # sizes only (summary, tests): a stand-in, nothing is read
        train = _stand_in()
    elif not d.train:
        raise DataError(
            "`data.train` must name the training file for family seq-classify, got none"
        )
    else:
        train = read_split(cfg, d.train)
    classes = class_names(_labelled(train))
    if len(classes) < 2:
        raise DataFileError(f"{train.source}: expected at least 2 classes, got {classes}")
    y = encode_labels(train.labels, classes, train.source)
    whole = (train.x, y, train.lengths)
    if d.test:
        test_seqs = read_split(cfg, d.test)
        if test_seqs.x.shape[-1] != train.x.shape[-1]:
            raise DataFileError(f"{test_seqs.source}: expected {train.x.shape[-1]} channels (as "
                                f"data.train), got {test_seqs.x.shape[-1]}")  # fmt: skip
        check_steps(cfg, train.x.shape[1], test_seqs)
        test = (test_seqs.x, encode_labels(_labelled(test_seqs), classes, test_seqs.source),
                test_seqs.lengths)  # fmt: skip
        source = f"{train.source} ({len(train)}) / {test_seqs.source} ({len(test_seqs)})"
    else:
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(TEST_SEED))
        n_test = max(1, int(len(y) * d.test_fraction))
        test = tuple(t[order[:n_test]] for t in whole)
        whole = tuple(t[order[n_test:]] for t in whole)
        source = f"{train.source}: {len(whole[0])} train, {n_test} held out as test"
    if dry_run:
        whole, test = (tuple(t[:DRY_RUN] for t in s) for s in (whole, test))
    data = tensor_data(cfg, whole, test, len(classes), source)
    x, _, lengths = data.train
    valid = (torch.arange(x.shape[1]) < lengths[:, None])[..., None]
    scaler = training_scaler(cfg, lambda: Scaler.fit(torch.where(valid, x, torch.nan)))
    splits = [data.train, data.val, data.test]
    data.train, data.val, data.test = (
        None if s is None else (scale_padded(s[0], s[2], scaler), s[1], s[2]) for s in splits
    )
    data.info = {"family": "seq-classify", "classes": classes, "channels": train.channels,
                 "steps": x.shape[1], "scaler": scaler.to_dict()}  # fmt: skip
    return data


def build_model(cfg: Config, spec: DataSpec) -> nn.Module:
    m, channels, k = cfg.model, spec.example.shape[-1], spec.num_classes
    if m.kind == "fcn":
        return FCN(channels, k)
    if m.kind == "resnet":
        return ResNet(channels, k)
    if m.kind == "mlp":
        return MLP(channels, k, steps=spec.example.shape[0])
    if m.kind == "encoder":
        return Encoder(channels, k)
    if m.kind == "inception":
        return Inception(channels, k)
    if m.kind == "lstm-fcn":
        return LSTMFCN(channels, k, m.hidden_size, m.head_dropout)
    kw = rnn_kwargs(cfg)
    layers = kw.pop("num_layers")
    return SequenceClassifier(m.kind, channels, m.hidden_size, k, layers,
                              head_dropout=m.head_dropout, **kw)  # fmt: skip


FAMILY = file_family(
    RNN_KEYS
    | keyset(
        "data.train data.test data.target data.id_column data.test_fraction model.head_dropout"
    ),
    name="seq-classify",
    description="sequence classification on your own files (.ts, CSV, .npy/.npz): "
    "cross-entropy, scaler fit on the training split",
    kinds=KINDS,
    build_data=build_data,
    build_model=build_model,
    steps=plain_steps,
)
