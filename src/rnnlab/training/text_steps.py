"""Training and evaluation steps of the text families: a stateful language-model step
(truncated BPTT over a whole corpus) and the stream evaluation that reports nats per token,
bits per character and perplexity.

Why the state is detached between windows (pytorch/examples' ``repackage_hidden``): each
window starts from the final state of the previous one, so the model sees the corpus as one
unbroken sequence, but the graph is cut at the window boundary. Without the detach every
backward would run back to the start of the corpus (memory and time growing without bound).
The state is reset to zeros at the first window of every pass (the stream starts over).

Metrics (Graves 2013; nanoGPT's ``val loss`` is the first): ``loss`` is the mean negative
log-likelihood in nats per target token over the whole stream, ``bpc = loss / ln 2`` (char
level), ``perplexity = exp(loss)`` (word level).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.data.text_corpora import LMStream
from rnnlab.layers import detach_state

from .loop import Step
from .update import Update

__all__ = ["LMTrainStep", "evaluate_stream", "lm_metrics"]


def lm_metrics(nats: float, level: str) -> dict[str, float]:
    """``{"loss": nats}`` plus ``bpc`` (char level) or ``perplexity`` (word level)."""
    out = {"loss": nats}
    if level == "char":
        out["bpc"] = nats / math.log(2)
    else:
        out["perplexity"] = math.exp(min(nats, 700.0))
    return out


class LMTrainStep(Step):
    """``step(model, (x, y, start), optimizer)`` on window ``x`` (B, T) with next tokens ``y``
    (:class:`~rnnlab.data.text_corpora.LMStream`), starting from the state the previous window
    left, detached; ``start`` (True on a pass's first window) resets it to zeros, so every
    epoch starts over. ``state_dict()`` holds the carried state, so a checkpoint taken between
    two windows resumes exactly."""

    def __init__(self, *, update: Update | None = None) -> None:
        self.update = update or Update()
        self.state = None

    def __call__(self, model: nn.Module, batch, optimizer) -> dict[str, float]:
        x, y = batch[0], batch[1]
        if len(batch) > 2 and bool(batch[2]):
            self.state = None  # the first window of a pass: start from zeros
        model.train()
        with self.update.autocast():
            logits, state = model(x, self.state)  # (B, T, V)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1))
        out = self.update(loss, model, optimizer)  # clip, guard, step: the one update path
        # Starting each window, the state is detached from how it was produced: without the
        # detach, backward would run all the way to the start of the corpus.
        self.state = detach_state(state)
        return {"loss": loss.item(), **out}

    def state_dict(self) -> dict:
        """The carried state as plain tensors (a checkpoint loads without unpickling code)."""
        if self.state is None:
            return {"state": None}
        return {"state": [tuple(s) if isinstance(s, tuple) else s for s in self.state]}

    def load_state_dict(self, data: dict | None) -> None:
        self.state = (data or {}).get("state")


@torch.no_grad()
def evaluate_stream(
    model: nn.Module,
    ids: Tensor,
    level: str,
    *,
    bptt: int = 256,
    batch_size: int = 1,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Mean NLL over every target of ``ids`` (the whole stream with ``batch_size=1``; else
    the ``(len - 1) % batch_size`` tail is left out), the state carried across windows, plus
    ``bpc`` or ``perplexity`` (:func:`lm_metrics`) and ``tokens``, the targets scored."""
    model.eval()
    stream = LMStream(ids, batch_size, bptt)
    total, state = 0.0, None
    for x, y, _ in stream:
        logits, state = model(x.to(device), state)
        total += F.cross_entropy(
            logits.reshape(-1, logits.size(-1)).double(), y.to(device).reshape(-1),
            reduction="sum",
        ).item()  # fmt: skip
    return {**lm_metrics(total / stream.tokens, level), "tokens": float(stream.tokens)}
