"""classify: cross-entropy on a classifier's logits (rnnlab.models.classifiers).

Images are read as sequences (``data.view``: rows, T = H; pixels, T = H*W; permuted pixels,
Le et al. 2015) by the recurrent kinds, whole by ``cnn``, ``cnn-small`` and ``mlp``. A batch is
``(x, y)`` or ``(x, y, lengths)``. ``train.adversarial`` trains on adversarial examples
(:mod:`..adversarial`); metrics: ``loss``, ``accuracy`` (and ``grad_norm``, ``penalty``).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.data import images_to_sequences
from rnnlab.models.classifiers import CNNClassifier, MLPClassifier, SequenceClassifier, SmallCNN

from .. import cuda_graph
from ..adversarial import WarmupAdversarialStep, adversarial_step
from ..config import Config, ConfigError, changed_keys
from ..update import Update
from . import DataSpec, StepContext, keyset
from ._common import RNN_KEYS, image_family, rnn_kwargs

__all__ = ["FAMILY", "IMAGE_KINDS", "classify_eval", "classify_step", "plain_steps", "unpack"]

IMAGE_KINDS = ("cnn", "cnn-small", "mlp")  # read whole images, not row/pixel sequences
KINDS = ("simple_rnn", "lstm", "gru", "bilstm", *IMAGE_KINDS)
ADVERSARIAL_KEYS = keyset(
    "train.adversarial train.adv_eps train.adv_alpha train.adv_steps train.adv_mix "
    "train.adv_eps_warmup"
)


def unpack(batch) -> tuple[Tensor, Tensor, Tensor | None]:
    """``(x, y)`` or ``(x, y, lengths)`` as ``(x, y, lengths or None)``."""
    return (batch[0], batch[1], None) if len(batch) == 2 else (batch[0], batch[1], batch[2])


def classify_step(model: nn.Module, batch, optimizer, *, update: Update | None = None) -> dict:
    """One cross-entropy update; returns ``loss``, ``accuracy``, ``grad_norm`` (and
    ``penalty`` when the update adds regularisers)."""
    update = update or Update()
    x, y, lengths = unpack(batch)
    model.train()
    with update.autocast():
        logits = model(x, lengths)
        loss = F.cross_entropy(logits, y)
    out = update(loss, model, optimizer)
    accuracy = (logits.detach().argmax(-1) == y).float().mean().item()
    return {"loss": loss.item(), "accuracy": accuracy, **out}


@torch.no_grad()
def classify_eval(model: nn.Module, batch) -> dict[str, float]:
    """``{"loss", "accuracy"}`` of ``model`` in eval mode."""
    x, y, lengths = unpack(batch)
    model.eval()
    logits = model(x, lengths)
    return {
        "loss": F.cross_entropy(logits, y).item(),
        "accuracy": (logits.argmax(-1) == y).float().mean().item(),
    }


def model_input(cfg: Config, images: Tensor) -> Tensor:
    """Images (N, H, W) in [0, 1]: whole for the image kinds, else sequences (N, T, I)."""
    if cfg.model.kind in IMAGE_KINDS:
        return images
    return images_to_sequences(images, cfg.data.view, cfg.data.permute_seed)


def build_model(cfg: Config, spec: DataSpec) -> nn.Module:
    m, example, k = cfg.model, spec.example, spec.num_classes
    if m.kind == "cnn":
        return CNNClassifier(tuple(example.shape), k, hidden_size=m.hidden_size,
                             dropout=m.head_dropout)  # fmt: skip
    if m.kind == "cnn-small":
        return SmallCNN(tuple(example.shape), k, hidden_size=m.hidden_size)
    if m.kind == "mlp":
        hidden = (m.hidden_size,) * m.num_layers
        return MLPClassifier(tuple(example.shape), k, hidden_sizes=hidden, dropout=m.head_dropout)
    kw = rnn_kwargs(cfg)
    kw.pop("num_layers")
    return SequenceClassifier(
        m.kind, example.shape[-1], m.hidden_size, k, m.num_layers, head_dropout=m.head_dropout,
        **kw,
    )  # fmt: skip


def plain_steps(cfg: Config, ctx: StepContext):
    """The cross-entropy train and eval steps as they are (no adversarial examples, no CUDA
    graph): the steps of the families that train classifiers on other data (``seq-classify``,
    ``text-classify``)."""
    return ctx.bind(classify_step, classify_eval)


def steps(cfg: Config, ctx: StepContext):
    t, update = cfg.train, ctx.update
    if t.adversarial != "none":
        adv = {"method": t.adversarial, "eps": t.adv_eps, "alpha": t.adv_alpha,
               "steps": t.adv_steps, "mix": t.adv_mix, "update": update}  # fmt: skip
        if t.adv_eps_warmup > 0:
            return WarmupAdversarialStep(t.adv_eps_warmup, **adv), classify_eval
        return functools.partial(adversarial_step, **adv), classify_eval
    eager, evaluate = plain_steps(cfg, ctx)
    if ctx.graph:
        return cuda_graph.GraphedStep("classify", eager, update=update, log=ctx.log), evaluate
    return eager, evaluate


def check(cfg: Config) -> None:
    t = cfg.train
    if t.adversarial != "none" and t.precision != "fp32":
        raise ConfigError(
            f"`train.precision={t.precision}` does not apply to adversarial training "
            f"(`train.adversarial={t.adversarial}` trains in fp32)"
        )
    if t.adversarial == "none":
        changed = [k for k in changed_keys(cfg) if k in ADVERSARIAL_KEYS]
        if changed:
            raise ConfigError(
                f"`{changed[0]}` needs `train.adversarial` (fgsm, pgd or fast); it is none"
            )


FAMILY = image_family(
    model_input,
    name="classify",
    description="classifiers on images or image sequences: cross-entropy, accuracy",
    kinds=KINDS,
    build_model=build_model,
    steps=steps,
    keys=RNN_KEYS | ADVERSARIAL_KEYS | keyset("data.view data.permute_seed model.head_dropout"),
    supports=frozenset({"ddp", "cuda_graph", "precision", "classes"}),
    check=check,
    loss=F.cross_entropy,
)
