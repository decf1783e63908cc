"""What the user-file readers (:mod:`.files`, :mod:`.ts_format`) return, their one error type,
the fill rules for missing values and the mapping of class labels to indices.

- :class:`Sequences`: many sequences ``x (N, T_max, C)`` right-padded with zeros, their
  ``lengths (N,)`` and optional string ``labels`` (classification files).
- :class:`Series`: one multichannel series ``values (T, C)`` with channel names and the
  time column as text (forecasting and anomaly files).

Non-finite values (an empty cell, ``?``, ``NaN``, ``inf``) are an error naming where they
are, unless a fill rule is asked for: ``ffill`` (carry the last finite value forward; leading
gaps take the first one), ``zero``, or ``linear`` (``numpy.interp`` between finite values,
constant beyond the ends). Rules work per sequence and channel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "FILL_RULES", "DataFileError", "Sequences", "Series", "check_finite", "class_names",
    "encode_labels", "fill_missing",
]  # fmt: skip

FILL_RULES = ("ffill", "zero", "linear")


class DataFileError(ValueError):
    """A user data file rnnlab cannot read; the message names the file, the line or key, what
    was expected and what came (the CLI prints it in one line and exits 2)."""


@dataclass
class Sequences:
    """``x (N, T_max, C)`` float32, zero past each length; ``lengths (N,)`` int64; ``labels``
    one string per sequence (or None); ``channels`` C names; ``source`` the file."""

    x: Tensor
    lengths: Tensor
    labels: list[str] | None
    channels: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.x)

    def arrays(self) -> list[np.ndarray]:
        """The unpadded sequences, ``(T_i, C)`` each."""
        return [s[:n].numpy() for s, n in zip(self.x, self.lengths.tolist(), strict=True)]

    @staticmethod
    def from_arrays(
        seqs: Sequence[np.ndarray], labels, channels: list[str] | None, source: str
    ) -> Sequences:
        from .sequences import pad_sequences

        if len(seqs) == 0:
            raise DataFileError(f"{source}: expected at least one sequence, got none")
        tensors = [torch.as_tensor(np.asarray(s, dtype=np.float32)) for s in seqs]
        x, lengths = pad_sequences(tensors)
        c = x.shape[-1]
        names = list(channels) if channels is not None else [f"c{i}" for i in range(c)]
        return Sequences(
            x, lengths, None if labels is None else [str(v) for v in labels], names, source
        )


@dataclass
class Series:
    """One series: ``values (T, C)`` float32, ``channels`` C names, ``time`` the time column's
    text per row (or None), ``source`` the file."""

    values: Tensor
    channels: list[str]
    time: list[str] | None
    source: str

    def column(self, name: str) -> int:
        """The index of channel ``name``; a :class:`DataFileError` naming the choices if absent."""
        if name not in self.channels:
            raise DataFileError(
                f"{self.source}: expected a column named {name!r}, got columns "
                f"{', '.join(self.channels)}"
            )
        return self.channels.index(name)


def fill_missing(values: np.ndarray, rule: str) -> np.ndarray:
    """``values (T, C)`` with non-finite entries replaced by ``rule`` (see the module doc)."""
    if rule not in FILL_RULES:
        raise ValueError(f"`fill` must be one of {', '.join(FILL_RULES)}, got {rule!r}")
    out = np.array(values, dtype=np.float64)
    for c in range(out.shape[1]):
        col, ok = out[:, c], np.isfinite(out[:, c])
        if ok.all():
            continue
        if rule == "zero":
            col[~ok] = 0.0
        elif not ok.any():
            raise ValueError(f"channel {c} has no finite value to fill from")
        elif rule == "linear":
            t = np.arange(len(col))
            col[~ok] = np.interp(t[~ok], t[ok], col[ok])
        else:  # ffill: index of the last finite value at or before each step
            last = np.where(ok, np.arange(len(col)), -1)
            last = np.maximum.accumulate(last)
            last[last < 0] = np.flatnonzero(ok)[0]
            out[:, c] = col[last]
    return out


def check_finite(
    values: np.ndarray, fill: str | None, where: Callable[[int, int], str]
) -> np.ndarray:
    """``values (T, C)`` if finite; else filled by ``fill``, or a :class:`DataFileError` at
    ``where(t, c)`` (the file, line and column of the first bad value) when ``fill`` is None."""
    bad = ~np.isfinite(values)
    if not bad.any():
        return values
    t, c = (int(i) for i in np.argwhere(bad)[0])
    if fill is None:
        raise DataFileError(
            f"{where(t, c)}: expected a finite number, got {values[t, c]} (a missing, NaN or "
            f"inf value; set data.fill to one of {', '.join(FILL_RULES)} to fill them)"
        )
    try:
        return fill_missing(values, fill)
    except ValueError as e:
        raise DataFileError(f"{where(t, c)}: cannot fill ({e})") from None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def class_names(labels: Sequence[str]) -> list[str]:
    """The sorted distinct labels: numerically when every label is a number, else as text."""
    distinct = set(labels)
    if all(_number(v) is not None for v in distinct):
        return sorted(distinct, key=lambda v: (float(v), v))
    return sorted(distinct)


def encode_labels(labels: Sequence[str], classes: Sequence[str], source: str) -> Tensor:
    """Class indices ``(N,)`` int64 of ``labels`` in ``classes`` (the training run's)."""
    index = {c: i for i, c in enumerate(classes)}
    for n, v in enumerate(labels):
        if v not in index:
            raise DataFileError(
                f"{source}, sequence {n}: expected a label among the training classes "
                f"{', '.join(classes)}, got {v!r}"
            )
    return torch.tensor([index[v] for v in labels], dtype=torch.int64)
