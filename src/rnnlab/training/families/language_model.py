"""language-model: next-token prediction over a whole corpus by truncated BPTT
(Zaremba et al. 2014; pytorch/examples' ``word_language_model``; char-rnn).

Data (:mod:`rnnlab.data.text_corpora`): ``data.dataset`` is ``tinyshakespeare`` (char,
nanoGPT's 90/10 split), ``ptb`` (word), ``ptb-char`` or ``text`` (the user's UTF-8 file
``data.path``, char or word level by ``data.level``). The vocabulary is built on the training
split and saved in the run's config as ``data.vocab`` (JSON), so evaluation and generation
use it unchanged. Training reads ``data.batch_size`` contiguous columns in windows of
``data.bptt`` steps (:class:`~rnnlab.data.text_corpora.LMStream`); the train step carries the
detached state from window to window and resets it at every epoch start. Validation and test
read each whole stream once, the state carried (:class:`StreamEval`): ``loss`` in nats per
token, ``bpc`` (char level) or ``perplexity`` (word level).

Model (:class:`rnnlab.models.language.LanguageModel`): ``model.kind`` simple_rnn | lstm | gru,
``model.embed_dim``, ``model.hidden_size`` x ``model.num_layers``, ``model.layer_dropout``
(Zaremba et al.'s dropout on the non-recurrent connections), ``model.dropout`` /
``model.recurrent_dropout`` (the layers' Gal & Ghahramani rates), ``model.tie_weights``
(Press & Wolf 2016), ``model.init_scale`` (U(-s, s) for every weight, Zaremba's 0.1).
Each epoch writes generated text at three temperatures to ``samples/``.
"""

from __future__ import annotations

import json

import torch
from torch import Tensor, nn

from rnnlab.data.text import EOS, UNK, TextDataError, Vocabulary
from rnnlab.data.text_corpora import CORPORA, LMStream, load_corpus
from rnnlab.models.generation import generate
from rnnlab.models.language import LM_KINDS, LanguageModel

from ..config import Config, changed_keys
from ..text_steps import LMTrainStep, evaluate_stream
from . import Data, DataSpec, Family, StepContext
from ._common import DataError

__all__ = ["FAMILY", "SAMPLE_TEMPERATURES", "StreamEval", "WholeStream", "vocabulary"]

SAMPLE_TEMPERATURES = (0.5, 0.8, 1.0)
DATASETS = (*CORPORA, "text")
TEXT_KEYS = frozenset({"data.path", "data.val_path", "data.test_path", "data.max_vocab",
                       "data.vocab"})  # fmt: skip
LM_KEYS = TEXT_KEYS | frozenset({
    "data.bptt", "data.level", "model.hidden_size", "model.num_layers", "model.dropout",
    "model.recurrent_dropout", "model.layer_dropout", "model.implementation", "model.init",
    "model.activation", "model.embed_dim", "model.tie_weights", "model.init_scale"
})  # fmt: skip


class WholeStream:
    """A split served as ONE batch ``(ids (1, N),)``: the eval step reads it window by window
    with the state carried, so every target is scored once and weighted equally."""

    def __init__(self, ids: Tensor) -> None:
        self.ids = ids

    def __iter__(self):
        yield (self.ids[None],)

    def __len__(self) -> int:
        return 1

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class StreamEval:
    """``eval_step(model, (ids (1, N),))`` -> ``{"loss", "bpc" | "perplexity"}`` over the
    whole stream (:func:`~rnnlab.training.text_steps.evaluate_stream`)."""

    def __init__(self, level: str, bptt: int) -> None:
        self.level, self.bptt = level, bptt

    def __call__(self, model: nn.Module, batch) -> dict[str, float]:
        ids = batch[0][0]
        out = evaluate_stream(model, ids, self.level, bptt=self.bptt, device=ids.device)
        out.pop("tokens")
        return out


def vocabulary(cfg: Config) -> Vocabulary | None:
    """The run's saved vocabulary (``data.vocab``), or None before training built it."""
    if not cfg.data.vocab:
        return None
    try:
        return Vocabulary.from_dict(json.loads(cfg.data.vocab))
    except json.JSONDecodeError as e:
        raise TextDataError(f"`data.vocab` is not a vocabulary (JSON): {e}") from None


def _synthetic(vocab: Vocabulary, n: int, seed: int) -> Tensor:
    return torch.randint(0, len(vocab), (n,), generator=torch.Generator().manual_seed(seed))


def _stand_in(level: str) -> Vocabulary:
    """A small vocabulary of the right level for dry runs."""
    if level == "char":
        return Vocabulary(["\n", " ", *(chr(c) for c in range(97, 127))], "char")
    return Vocabulary([EOS, UNK, *(f"w{i}" for i in range(30))], "word", UNK)


def build_data(cfg: Config, dry_run: bool) -> Data:
    d = cfg.data
    saved = vocabulary(cfg)
    if dry_run:  # nothing read: random ids over the saved vocabulary (or a made-up one)
        vocab = saved or _stand_in(CORPORA[d.dataset][0] if d.dataset in CORPORA else d.level)
        train, val, test = (_synthetic(vocab, n, s) for s, n in ((0, 4000), (1, 500), (2, 500)))
        source = "synthetic token stream (dry run)"
    else:
        corpus = load_corpus(
            d.dataset, root=d.data_dir, path=d.path or None, val_path=d.val_path or None,
            test_path=d.test_path or None, level=d.level, max_vocab=d.max_vocab, vocab=saved,
        )  # fmt: skip
        vocab, train, val, test = corpus.vocab, corpus.train, corpus.val, corpus.test
        source = f"{corpus.source}: {len(train):,} training tokens, {len(vocab):,} {vocab.level}s"
        if test is None:
            source += "; no test split (test = validation)"
        d.vocab = json.dumps(vocab.to_dict(), ensure_ascii=False)  # saved in config.json
    if d.limit:
        train = train[: d.limit]
    if len(train) < 2 * d.batch_size:
        raise DataError(
            f"{len(train)} training tokens cannot fill `data.batch_size` = {d.batch_size} "
            "columns; use a smaller batch or a longer corpus"
        )
    test = val if test is None else test
    return Data(
        LMStream(train, d.batch_size, d.bptt), WholeStream(val) if val is not None else None,
        WholeStream(test), 0, source, {"vocab": vocab}, example=train[: d.bptt],
    )  # fmt: skip


def build_model(cfg: Config, spec: DataSpec) -> nn.Module:
    m = cfg.model
    vocab = spec.info["vocab"]
    # torch's init unless asked otherwise (see rnnlab.models.language: Keras's forget bias 1
    # drifted into cell counters a zero-state stream evaluation never reaches)
    init = m.init if "model.init" in changed_keys(cfg) else "torch"
    return LanguageModel(
        len(vocab), m.embed_dim, m.hidden_size, m.num_layers, kind=m.kind,
        dropout=m.layer_dropout, tie_weights=m.tie_weights, init_scale=m.init_scale,
        rnn_dropout=m.dropout, recurrent_dropout=m.recurrent_dropout,
        implementation=m.implementation, init=init, **_activation(cfg),
    )  # fmt: skip


def _activation(cfg: Config) -> dict:
    return {"activation": cfg.model.activation}


def steps(cfg: Config, ctx: StepContext):
    level = vocabulary(cfg).level if cfg.data.vocab else "char"
    return LMTrainStep(update=ctx.update), StreamEval(level, max(cfg.data.bptt, 256))


def samples(cfg: Config, data: Data, folder):
    """Each epoch: ``samples/epoch-NNN.txt`` with text at :data:`SAMPLE_TEMPERATURES`."""
    from rnnlab.utils import atomic_write_text

    vocab = data.info["vocab"]
    # from a line break when the vocabulary has one, else from its first token
    prime = "" if ("\n" in vocab or EOS in vocab) else vocab.tokens[0]

    def write(model: nn.Module, epoch: int) -> None:
        parts = []
        for t in SAMPLE_TEMPERATURES:
            text = generate(model, vocab, prime, 300 if vocab.level == "char" else 60,
                            temperature=t, seed=epoch)  # fmt: skip
            parts.append(f"--- temperature {t}\n{text}\n")
        path = folder() / "samples" / f"epoch-{epoch:03d}.txt"
        path.parent.mkdir(exist_ok=True)
        atomic_write_text(path, "".join(parts))
        model.train()

    return write


FAMILY = Family(
    name="language-model",
    description="next-token language models over a corpus by truncated BPTT: nats, bpc, perplexity",
    kinds=LM_KINDS,
    datasets=DATASETS,
    build_data=build_data,
    build_model=build_model,
    steps=steps,
    keys=LM_KEYS,
    supports=frozenset({"precision", "samples"}),
    samples=samples,
    summary_input=lambda cfg, spec: None,
)
