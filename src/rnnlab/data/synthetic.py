"""Synthetic sequence tasks and images, deterministic from a seed (own ``torch.Generator``).

- :func:`adding_problem`: Hochreiter & Schmidhuber (1997), in the form of Le, Jaitly &
  Hinton (2015) and Arjovsky, Shah & Bengio (2016).
- :func:`copy_memory`: the copying memory task of Arjovsky, Shah & Bengio (2016).
- :func:`variable_length_sequences`: padded sequences whose label needs the whole valid
  prefix, to test length handling.
- :func:`synthetic_images`: class-templated noise images for ``--dry-run``.
"""

from __future__ import annotations

import math

import torch

from .datasets import ImageDataset

__all__ = [
    "adding_problem", "copy_memory", "copy_memory_baseline", "variable_length_sequences",
    "synthetic_images",
]  # fmt: skip


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def adding_problem(n: int, T: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` sequences ``x (n, T, 2)`` and targets ``y (n, 1)``.

    Channel 0 holds values drawn from U(0, 1); channel 1 is 1 at exactly two steps, one
    drawn uniformly from the first half ``[0, T//2)`` and one from the second
    ``[T//2, T)``, and 0 elsewhere. The target is the sum of the two marked values. As that
    sum has mean 1 and variance 2/12, always predicting 1 gives MSE ~= 0.167: the baseline
    a model must beat.
    """
    if n < 1 or T < 2:
        raise ValueError(f"`n` must be >= 1 and `T` >= 2, got n={n}, T={T}")
    g = _gen(seed)
    values = torch.rand(n, T, generator=g)
    half = T // 2
    first = torch.randint(0, half, (n,), generator=g)
    second = torch.randint(half, T, (n,), generator=g)
    markers = torch.zeros(n, T)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    y = (values[rows, first] + values[rows, second]).unsqueeze(1)
    return torch.stack([values, markers], dim=2), y


def copy_memory(
    n: int, T: int, n_symbols: int = 8, length: int = 10, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Copying-memory task: ``x, y`` both int64 ``(n, T + 2*length)``.

    Tokens: ``0`` blank, ``1..n_symbols`` data symbols, ``n_symbols + 1`` the delimiter
    (``n_symbols + 2`` classes in all). Layout, with ``L = length``::

        x: s_1 .. s_L | 0 x (T-1) | delim | 0 x L
        y: 0 x (T + L)                    | s_1 .. s_L

    i.e. ``L`` random symbols, ``T`` steps to wait (the delimiter is the last of them),
    then ``L`` steps to reproduce the symbols. A memoryless model that outputs blank for the
    first ``T + L`` steps and a uniform guess over the symbols after has cross-entropy
    ``L * log(n_symbols) / (T + 2L)`` per step (:func:`copy_memory_baseline`).
    """
    if n < 1 or T < 1 or n_symbols < 1 or length < 1:
        raise ValueError(
            f"`n`, `T`, `n_symbols`, `length` must all be >= 1, got {n}, {T}, {n_symbols}, {length}"
        )
    g = _gen(seed)
    symbols = torch.randint(1, n_symbols + 1, (n, length), generator=g)
    total = T + 2 * length
    x = torch.zeros(n, total, dtype=torch.int64)
    y = torch.zeros(n, total, dtype=torch.int64)
    x[:, :length] = symbols
    x[:, length + T - 1] = n_symbols + 1
    y[:, T + length :] = symbols
    return x, y


def copy_memory_baseline(T: int, n_symbols: int = 8, length: int = 10) -> float:
    """Per-step cross-entropy (nats) of the memoryless strategy on :func:`copy_memory`."""
    return length * math.log(n_symbols) / (T + 2 * length)


def variable_length_sequences(
    n: int, min_len: int, max_len: int, n_features: int = 1, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded ``x (n, max_len, n_features)``, ``lengths (n,)`` int64, ``labels (n,)`` int64.

    Lengths are uniform in ``[min_len, max_len]``; values are N(0, 1) on valid steps and 0
    after (right padding). The label is 1 when the first feature sums to > 0 over the valid
    steps, else 0: it depends on every valid step, and on no padded one.
    """
    if not 1 <= min_len <= max_len or n < 1 or n_features < 1:
        raise ValueError(
            f"need n >= 1, n_features >= 1 and 1 <= `min_len` <= `max_len`, got n={n}, "
            f"n_features={n_features}, min_len={min_len}, max_len={max_len}"
        )
    g = _gen(seed)
    lengths = torch.randint(min_len, max_len + 1, (n,), generator=g)
    x = torch.randn(n, max_len, n_features, generator=g)
    valid = torch.arange(max_len).unsqueeze(0) < lengths.unsqueeze(1)
    x = x * valid.unsqueeze(2)
    labels = (x[:, :, 0].sum(dim=1) > 0).long()
    return x, lengths, labels


def synthetic_images(
    n: int, shape: tuple[int, int] = (28, 28), n_classes: int = 10, seed: int = 0
) -> ImageDataset:
    """An :class:`ImageDataset` of ``n`` images in [0, 1], learnable but meaningless.

    Each class has a random template; an image is ``0.7 * template + 0.3 * noise``.
    Labels cycle through the classes in a seeded random order. For ``--dry-run``.
    """
    if n < 1 or n_classes < 1 or len(shape) != 2 or min(shape) < 1:
        raise ValueError(
            f"need n >= 1, n_classes >= 1, `shape` (H, W) positive, got n={n}, "
            f"n_classes={n_classes}, shape={shape}"
        )
    g = _gen(seed)
    templates = torch.rand(n_classes, *shape, generator=g)
    labels = (torch.arange(n) % n_classes)[torch.randperm(n, generator=g)]
    images = 0.7 * templates[labels] + 0.3 * torch.rand(n, *shape, generator=g)
    names = [f"class {i}" for i in range(n_classes)]
    return ImageDataset(images, labels, names, "synthetic", "train", f"generated (seed={seed})")
