"""Text generation and sentence completion with a stateful language model.

The prompt is read ONCE (one forward pass over all its tokens, however long, from a zero
state); after that each new token is fed alone with the carried state, so ``length`` tokens
cost ``length`` single-step calls: O(length), not the O(length^2) of re-feeding the context
(char-rnn's ``sample.lua``; what keras #197, #415 ask for)::

    logits, state = model(prime_ids)               # (1, P, V), read the prompt once
    repeat: p = softmax(logits[-1] / T), keep top k -> sample t -> logits, state = model(t, state)

``temperature`` 0 is greedy (argmax); ``top_k`` keeps the k most likely tokens (Fan et al.
2018); ``until`` stops as soon as the generated text contains that string (sentence
completion: ``until="\\n"`` ends at the end of the line). Sampling draws from its own
``torch.Generator`` seeded by ``seed``, so the same seed gives the same text.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnlab.data.text import EOS, TextDataError, Vocabulary

__all__ = ["encode_prime", "generate", "next_token"]


def encode_prime(vocab: Vocabulary, prime: str) -> Tensor:
    """Ids (P,) of ``prime``: its characters, or its words (word level). An empty prime starts
    from a line break (``"\\n"`` or ``<eos>``). Tokens outside the vocabulary raise
    :class:`TextDataError` naming them (no silent ``<unk>``)."""
    tokens = list(prime) if vocab.level == "char" else prime.split()
    if not tokens:
        start = next((t for t in ("\n", EOS) if t in vocab), None)
        if start is None:
            raise TextDataError("an empty prime needs '\\n' or <eos> in the vocabulary")
        tokens = [start]
    missing = vocab.unknown(tokens)
    if missing:
        shown = ", ".join(repr(t) for t in missing[:20])
        raise TextDataError(
            f"`--prime` holds {'characters' if vocab.level == 'char' else 'words'} outside "
            f"the run's vocabulary: {shown}"
        )
    return vocab.encode(tokens)


def next_token(
    logits: Tensor, temperature: float, top_k: int, generator: torch.Generator
) -> Tensor:
    """One id (1,) from ``logits`` (V,): argmax at temperature 0, else a sample of
    softmax(logits / T) restricted to the ``top_k`` largest (0 = all)."""
    if temperature == 0:
        return logits.argmax(-1, keepdim=True)
    logits = logits.double() / temperature
    if 0 < top_k < logits.numel():
        kth = logits.topk(top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, -1)
    return torch.multinomial(probs.cpu(), 1, generator=generator).to(logits.device)


@torch.no_grad()
def generate(
    model: nn.Module,
    vocab: Vocabulary,
    prime: str = "",
    length: int = 500,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    seed: int = 0,
    until: str | None = None,
) -> str:
    """The ``length`` tokens (at most) ``model`` writes after ``prime``, as text (the prime
    itself not included). ``until``: stop once the continuation contains it (kept, cut
    right after it). ``model(ids (1, T), state) -> (logits (1, T, V), state)``."""
    if not isinstance(length, int) or length <= 0:
        raise ValueError(f"`length` must be a positive number of tokens, got {length!r}")
    if temperature < 0:
        raise ValueError(f"`temperature` must be >= 0 (0 = greedy), got {temperature!r}")
    if top_k < 0:
        raise ValueError(f"`top_k` must be >= 0 (0 = no limit), got {top_k!r}")
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    logits, state = model(encode_prime(vocab, prime).to(device)[None], None)  # (1, P, V)
    out: list[int] = []
    for _ in range(length):
        token = next_token(logits[0, -1], temperature, top_k, generator)
        out.append(int(token))
        # a string of n characters is inside the text of the last n tokens (one char or word
        # each): only that tail is decoded per step
        if until and until in vocab.decode(out[-len(until) :]):
            text = vocab.decode(out)
            return text[: text.index(until) + len(until)]
        logits, state = model(token[None], state)  # (1, 1, V): one step, state carried
    return vocab.decode(out)
