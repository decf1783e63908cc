"""The UCR/UEA time-series archive's ``.ts`` text format (sktime's ``load_from_tsfile``
format, Bagnall et al. 2018), read and written by rnnlab itself.

A file is ``#`` comments, header tags, ``@data``, then one series per line::

    @problemName JapaneseVowels
    @timeStamps false
    @univariate false
    @dimensions 12
    @equalLength false
    @classLabel true 1 2 3
    @data
    1.86,1.89,1.93:-0.20,-0.19,-0.23: ... :1      <- channels split by ':', the label last

Values are split by ``,``; ``?`` is a missing value. Univariate files have one channel per
line; ``@equalLength true`` (with ``@seriesLength n``) promises every series has ``n`` steps.
Every promise of the header is checked against the data: a disagreement is a
:class:`~.records.DataFileError` naming the line. Time-stamped values (``@timeStamps
true``) are not supported.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rnnlab.utils import atomic_write_bytes

from .records import DataFileError, Sequences, check_finite

__all__ = ["read_ts", "write_ts"]

_BOOL = {"true": True, "false": False}


def _header(path: Path, lines: list[str]) -> tuple[dict, int]:
    """The header tags as ``{tag: value text}`` and the index of the first data line."""
    tags: dict[str, tuple[int, str]] = {}
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("@"):
            raise DataFileError(f"{path}, line {i + 1}: expected a header tag or @data, got data")
        tag, _, value = line[1:].partition(" ")
        tag = tag.lower()
        if tag == "data":
            return tags, i + 1
        tags[tag] = (i + 1, value.strip())
    raise DataFileError(f"{path}: expected an @data line after the header, got none")


def _flag(path: Path, tags: dict, tag: str, default: bool | None) -> bool | None:
    if tag not in tags:
        return default
    line, text = tags[tag]
    word = text.split()[0].lower() if text else ""
    if word not in _BOOL:
        raise DataFileError(f"{path}, line {line}: expected @{tag} true or false, got {text!r}")
    return _BOOL[word]


def _int_tag(path: Path, tags: dict, tag: str) -> int | None:
    if tag not in tags:
        return None
    line, text = tags[tag]
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise DataFileError(
            f"{path}, line {line}: expected @{tag} a positive integer, got {text!r}"
        )
    return value


def _values(path: Path, line: int, text: str, channel: int) -> np.ndarray:
    out = []
    for cell in text.split(","):
        cell = cell.strip()
        if cell in ("?", "", "NaN", "nan"):
            out.append(np.nan)
            continue
        try:
            out.append(float(cell))
        except ValueError:
            raise DataFileError(
                f"{path}, line {line}, channel {channel}: expected a number, got {cell!r}"
            ) from None
    return np.asarray(out, dtype=np.float64)


def read_ts(path: str | os.PathLike, *, fill: str | None = None) -> Sequences:
    """A ``.ts`` file as :class:`~.records.Sequences` (labels as written, or None when
    ``@classLabel false``). ``fill``: a rule for missing values (:mod:`.records`)."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError as e:
        raise DataFileError(
            f"{path}: expected a UTF-8 text file, got undecodable bytes ({e})"
        ) from None
    tags, start = _header(path, lines)
    if _flag(path, tags, "timestamps", False):
        raise DataFileError(
            f"{path}, line {tags['timestamps'][0]}: expected @timeStamps "
            "false, got true (time-stamped .ts files are not supported)"
        )
    univariate = _flag(path, tags, "univariate", None)
    dims = _int_tag(path, tags, "dimensions")
    if univariate and dims not in (None, 1):
        raise DataFileError(
            f"{path}, line {tags['dimensions'][0]}: expected @dimensions 1 "
            f"for a univariate file, got {dims}"
        )
    dims = 1 if univariate else dims
    equal = _flag(path, tags, "equallength", None)
    series_length = _int_tag(path, tags, "serieslength")
    labelled, classes = False, None
    if "classlabel" in tags:
        line, text = tags["classlabel"]
        words = text.split()
        labelled = _flag(path, tags, "classlabel", False)
        classes = words[1:] if labelled else None
        if labelled and not classes:
            raise DataFileError(
                f"{path}, line {line}: expected the class labels after @classLabel true, got none"
            )

    seqs, labels = [], []
    for i in range(start, len(lines)):
        text, n = lines[i].strip(), i + 1
        if not text or text.startswith("#"):
            continue
        fields = text.split(":")
        if labelled:
            *fields, label = fields
            label = label.strip()
            if label not in classes:
                raise DataFileError(
                    f"{path}, line {n}: expected a class label among "
                    f"{' '.join(classes)} (@classLabel), got {label!r}"
                )
            labels.append(label)
        if dims is None:
            dims = len(fields)
        if len(fields) != dims:
            raise DataFileError(
                f"{path}, line {n}: expected {dims} channels (the header), got {len(fields)}"
            )
        channels = [_values(path, n, f, c) for c, f in enumerate(fields)]
        steps = {len(c) for c in channels}
        if len(steps) != 1:
            raise DataFileError(
                f"{path}, line {n}: expected one length for all channels, "
                f"got lengths {sorted(steps)}"
            )
        t = steps.pop()
        if series_length is not None and equal and t != series_length:
            raise DataFileError(
                f"{path}, line {n}: expected {series_length} steps (@seriesLength), got {t}"
            )
        values = np.stack(channels, axis=1)  # (T, C)

        def where(t, c, n=n):
            return f"{path}, line {n}, channel {c}, step {t}"

        seqs.append(check_finite(values, fill, where))
    if not seqs:
        raise DataFileError(f"{path}: expected at least one series after @data, got none")
    lengths = {len(s) for s in seqs}
    if equal and len(lengths) > 1:
        raise DataFileError(
            f"{path}, line {tags['equallength'][0]}: @equalLength true, but "
            f"the series have lengths {min(lengths)} to {max(lengths)}"
        )
    return Sequences.from_arrays(seqs, labels if labelled else None, None, str(path))


def write_ts(
    path: str | os.PathLike,
    seqs: Sequence[np.ndarray],
    labels: Sequence[str] | None = None,
    *,
    problem_name: str = "rnnlab",
) -> Path:
    """Write sequences ``(T_i, C)`` (and labels) as a ``.ts`` file, atomically."""
    seqs = [np.asarray(s, dtype=np.float64).reshape(len(s), -1) for s in seqs]
    dims = seqs[0].shape[1]
    lengths = {len(s) for s in seqs}
    head = [
        f"@problemName {problem_name}",
        "@timeStamps false",
        "@missing false",
        f"@univariate {'true' if dims == 1 else 'false'}",
    ]
    if dims > 1:
        head.append(f"@dimensions {dims}")
    head.append(f"@equalLength {'true' if len(lengths) == 1 else 'false'}")
    if len(lengths) == 1:
        head.append(f"@seriesLength {lengths.pop()}")
    if labels is not None:
        from .records import class_names

        head.append("@classLabel true " + " ".join(class_names([str(v) for v in labels])))
    else:
        head.append("@classLabel false")
    head.append("@data")
    body = []
    for i, s in enumerate(seqs):
        line = ":".join(",".join(repr(float(v)) for v in s[:, c]) for c in range(dims))
        body.append(line + (f":{labels[i]}" if labels is not None else ""))
    return atomic_write_bytes(path, ("\n".join(head + body) + "\n").encode())
