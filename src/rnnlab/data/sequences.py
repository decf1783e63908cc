"""Turning data into batch-first sequences: images as rows or pixels, padding with lengths,
and cutting a long stream into batch columns and truncated-BPTT chunks.

Row-by-row MNIST (28 steps of 28 inputs) is the chapter's sequence classifier; pixel and
permuted-pixel MNIST (784 steps of 1 input) are Le, Jaitly & Hinton (2015)'s long-range
benchmarks. ``batchify`` / ``tbptt_chunks`` follow the layout of PyTorch's
word_language_model example (Zaremba et al. 2014's PTB setup).
"""

from __future__ import annotations

import torch

__all__ = [
    "images_to_sequences", "pixel_permutation", "pad_sequences", "lengths_to_mask",
    "batchify", "tbptt_chunks",
]  # fmt: skip

_MODES = ("rows", "pixels", "permuted")


def pixel_permutation(n_pixels: int, seed: int = 0) -> torch.Tensor:
    """The fixed permutation of ``n_pixels`` used by permuted-pixel sequences for ``seed``."""
    return torch.randperm(n_pixels, generator=torch.Generator().manual_seed(seed))


def images_to_sequences(images: torch.Tensor, mode: str = "rows", seed: int = 0) -> torch.Tensor:
    """Read images ``(N, H, W)`` as sequences ``(N, T, I)``.

    - ``"rows"``: one row per step, ``(N, H, W)``.
    - ``"pixels"``: one pixel per step in raster order, ``(N, H*W, 1)``.
    - ``"permuted"``: pixels in the order of :func:`pixel_permutation` ``(H*W, seed)``; the
      same permutation for every call with the same seed and image size.
    """
    if images.ndim != 3:
        raise ValueError(f"`images` must be (N, H, W), got shape {tuple(images.shape)}")
    if mode not in _MODES:
        raise ValueError(f"`mode` must be one of {_MODES}, got {mode!r}")
    n, h, w = images.shape
    if mode == "rows":
        return images
    pixels = images.reshape(n, h * w, 1)
    if mode == "pixels":
        return pixels
    perm = pixel_permutation(h * w, seed).to(images.device)
    return pixels[:, perm]


def pad_sequences(
    seqs: list[torch.Tensor], value: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad sequences ``(T_i, I)`` to ``(B, T_max, I)``; also return lengths ``(B,)``."""
    if len(seqs) == 0:
        raise ValueError("`seqs` must hold at least one sequence, got an empty list")
    for i, s in enumerate(seqs):
        if s.ndim != 2 or s.shape[1] != seqs[0].shape[1]:
            raise ValueError(
                f"`seqs` must all be (T_i, {seqs[0].shape[-1]}), item {i} is {tuple(s.shape)}"
            )
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.int64)
    out = seqs[0].new_full((len(seqs), int(lengths.max()), seqs[0].shape[1]), value)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out, lengths


def lengths_to_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """``(B, max_len)`` bool mask, True at valid steps ``t < lengths[b]``."""
    lengths = torch.as_tensor(lengths)
    if lengths.ndim != 1:
        raise ValueError(f"`lengths` must be 1-d (B,), got shape {tuple(lengths.shape)}")
    if max_len is None:
        max_len = int(lengths.max()) if len(lengths) else 0
    graph = torch.compiler.is_compiling()  # an exported graph cannot read the values
    if len(lengths) and not graph and int(lengths.max()) > max_len:
        raise ValueError(f"`max_len` must be >= max(lengths) = {int(lengths.max())}, got {max_len}")
    steps = torch.arange(max_len, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)


def batchify(stream: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut a stream ``(N, ...)`` into ``batch_size`` contiguous columns: ``(N // B, B, ...)``.

    The tail that does not fill a whole row (``N % B`` items) is dropped. Column ``b``
    holds ``stream[b * T : (b + 1) * T]`` with ``T = N // B``, so each batch entry reads an
    unbroken stretch of the stream and a stateful RNN can carry its state across chunks::

        stream: a b c d e f g h i j k l m n o p q r s t u v w x y z    (N=26, B=4: T=6,
                                                                        y z dropped)
        batchify -> (T, B)          batch-first (B, T) = .T, cut by tbptt_chunks(., k=4)
                 b=0 b=1 b=2 b=3
            t=0   a   g   m   s            b=0:  a b c d | e f
            t=1   b   h   n   t            b=1:  g h i j | k l
            t=2   c   i   o   u            b=2:  m n o p | q r
            t=3   d   j   p   v            b=3:  s t u v | w x
            t=4   e   k   q   w                  chunk 0   chunk 1 (T % k = 2 steps)
            t=5   f   l   r   x

    Chunk ``i + 1`` of every row continues where chunk ``i`` stopped, so the final state
    of one chunk (detached) is the right initial state of the next.

    Batch-first layers take ``batchify(s, B).transpose(0, 1)`` (a view);
    ``tbptt_chunks(batchify(s, B), k, dim=0)`` gives time-major chunks instead.
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1, got {batch_size}")
    steps = stream.shape[0] // batch_size
    if steps == 0:
        raise ValueError(
            f"`stream` must hold at least `batch_size` = {batch_size} items, got {stream.shape[0]}"
        )
    cols = stream[: steps * batch_size].reshape(batch_size, steps, *stream.shape[1:])
    return cols.transpose(0, 1)


def tbptt_chunks(x: torch.Tensor, k: int, dim: int = 1) -> list[torch.Tensor]:
    """Cut ``x`` along its time dimension ``dim`` (1 for ``(B, T, ...)``) into chunks of
    ``k`` steps; the last chunk holds the remaining ``T % k`` steps if any. Chunks are views.
    """
    if k < 1:
        raise ValueError(f"`k` must be >= 1, got {k}")
    return list(torch.split(x, k, dim=dim))
