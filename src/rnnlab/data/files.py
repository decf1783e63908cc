"""The user's own files -> tensors: CSV/TSV, ``.npy``/``.npz`` and UCR/UEA ``.ts``
(:mod:`.ts_format`). Nothing is ever unpickled (``np.load(..., allow_pickle=False)``).

Sequences for classification (:func:`read_sequences`, by file suffix):

- **wide CSV**: one sequence per row, one step per column (univariate); an optional label
  column (``label=`` a header name, or a column index such as ``0`` or ``-1`` in a file
  without a header). Trailing empty cells end a shorter sequence; a row with more or fewer
  cells than the first is an error.
- **long CSV** (``id_column=`` given): one time step per row, a sequence-id column, the other
  numeric columns as channels; rows of one id keep their file order; the label column (if
  any) must hold one value per sequence.
- **.npy / .npz**: ``x`` as ``(N, T)`` or ``(N, T, C)``, optional ``lengths (N,)`` (valid
  steps from the left) and ``y (N,)``. Ragged data is ``x`` flat ``(sum T_i, C)`` with
  ``lengths``: ``np.savez(f, x=np.concatenate(seqs), lengths=[len(s) for s in seqs], y=y)``;
  object (pickled) arrays are refused.
- **.ts**: :func:`rnnlab.data.ts_format.read_ts`.

One series for forecasting and anomaly detection (:func:`read_series`): a CSV with a header,
a time column (``time_column=``; by default a column named date, time, timestamp or
datetime, else the first column whose first cell is not a number) and numeric channels, one
row per step (ETTh1, NAB).

A header is present when some cell of the first row is not a number. Errors are
:class:`~.records.DataFileError` naming file, line and column, what was expected and what
came; missing values follow :mod:`.records`'s ``fill`` rules.
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rnnlab.utils import atomic_write_bytes

from .records import DataFileError, Sequences, Series, check_finite

__all__ = [
    "SEQUENCE_SUFFIXES", "read_arrays", "read_csv_long", "read_csv_wide", "read_sequences",
    "read_series", "write_arrays", "write_csv_long", "write_csv_wide", "write_series",
]  # fmt: skip

SEQUENCE_SUFFIXES = (".csv", ".tsv", ".txt", ".npy", ".npz", ".ts")
_MISSING = ("", "?", "na", "nan", "null")
_TIME_NAMES = ("date", "time", "timestamp", "datetime")
_NPZ_KEYS = ("x", "y", "lengths")
_RAGGED_HINT = (
    "save ragged data as x = np.concatenate(seqs) (sum T_i, C) with "
    "lengths = [len(s) for s in seqs]: np.savez(path, x=x, lengths=lengths, y=y)"
)


# ----------------------------------------------------------------------------- CSV cells
def _delimiter(path: Path, delimiter: str | None) -> str:
    return delimiter if delimiter is not None else ("\t" if path.suffix == ".tsv" else ",")


def _rows(path: Path, delimiter: str | None) -> list[tuple[int, list[str]]]:
    """``(line number, cells)`` of each non-empty row."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataFileError(
            f"{path}: expected a UTF-8 text file, got undecodable bytes ({e})"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(path, delimiter))
    rows = [(reader.line_num, [c.strip() for c in row]) for row in reader if any(row)]
    if not rows:
        raise DataFileError(f"{path}: expected at least one row, got an empty file")
    return rows


def _cell(path: Path, line: int, column: str, text: str) -> float:
    if text.lower() in _MISSING:
        return np.nan
    try:
        return float(text)
    except ValueError:
        raise DataFileError(
            f"{path}, line {line}, column {column}: expected a number, got {text!r}"
        ) from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _split_header(rows) -> tuple[list[str] | None, list]:
    first = rows[0][1]
    if all(_is_number(c) or c.lower() in _MISSING for c in first):
        return None, rows
    return first, rows[1:]


def _column(path: Path, header: list[str] | None, width: int, name: str, what: str) -> int:
    """The index of column ``name`` (a header name, or an integer index)."""
    if header is not None and name in header:
        return header.index(name)
    try:
        index = int(name)
    except ValueError:
        index = None
    if index is not None and -width <= index < width:
        return index % width
    have = (
        ", ".join(header) if header is not None else f"{width} unnamed columns (use 0..{width - 1})"
    )
    raise DataFileError(f"{path}: expected a {what} column {name!r}, got {have}")


# ----------------------------------------------------------------------------- readers
def read_csv_wide(
    path: str | os.PathLike,
    *,
    label: str | None = None,
    delimiter: str | None = None,
    fill: str | None = None,
) -> Sequences:
    """One univariate sequence per row; ``label`` names the label column (see module doc)."""
    path = Path(path)
    header, rows = _split_header(_rows(path, delimiter))
    if not rows:
        raise DataFileError(f"{path}: expected data rows after the header, got none")
    width = len(header) if header is not None else len(rows[0][1])
    col = _column(path, header, width, label, "label") if label is not None else None
    names = header or [str(i) for i in range(width)]
    seqs, labels = [], []
    for line, cells in rows:
        if len(cells) != width:
            raise DataFileError(
                f"{path}, line {line}: expected {width} cells (as the first row), got {len(cells)}"
            )
        if col is not None:
            if cells[col] == "":
                raise DataFileError(
                    f"{path}, line {line}, column {names[col]}: expected a label, got an empty cell"
                )
            labels.append(cells[col])
        steps = [(names[j], c) for j, c in enumerate(cells) if j != col]
        while steps and steps[-1][1] == "":
            steps.pop()  # trailing empties: a shorter sequence
        if not steps:
            raise DataFileError(f"{path}, line {line}: expected at least one value, got none")
        values = np.array([[_cell(path, line, n, c)] for n, c in steps])

        def where(t, c, line=line, steps=steps):
            return f"{path}, line {line}, column {steps[t][0]}"

        seqs.append(check_finite(values, fill, where))
    return Sequences.from_arrays(seqs, labels if col is not None else None, ["value"], str(path))


def read_csv_long(
    path: str | os.PathLike,
    *,
    id_column: str,
    label: str | None = None,
    time_column: str | None = None,
    delimiter: str | None = None,
    fill: str | None = None,
) -> Sequences:
    """One step per row, grouped by ``id_column``; every other column except ``label`` and
    ``time_column`` is a numeric channel. Needs a header."""
    path = Path(path)
    header, rows = _split_header(_rows(path, delimiter))
    if header is None:
        raise DataFileError(
            f"{path}: expected a header row naming the columns (a long CSV), "
            "got numbers in the first row"
        )
    width = len(header)
    id_col = _column(path, header, width, id_column, "sequence-id")
    label_col = _column(path, header, width, label, "label") if label is not None else None
    time_col = _column(path, header, width, time_column, "time") if time_column else None
    channels = [j for j in range(width) if j not in (id_col, label_col, time_col)]
    if not channels:
        raise DataFileError(
            f"{path}: expected at least one value column, got only {', '.join(header)}"
        )
    groups: dict[str, list] = {}
    first_label: dict[str, tuple[str, int]] = {}
    for line, cells in rows:
        if len(cells) != width:
            raise DataFileError(
                f"{path}, line {line}: expected {width} cells (the header), got {len(cells)}"
            )
        key = cells[id_col]
        values = [_cell(path, line, header[j], cells[j]) for j in channels]
        groups.setdefault(key, []).append((line, values))
        if label_col is not None:
            got = cells[label_col]
            seen = first_label.setdefault(key, (got, line))
            if got != seen[0]:
                raise DataFileError(
                    f"{path}, line {line}, column {header[label_col]}: expected one label per "
                    f"sequence ({seen[0]!r} on line {seen[1]} for id {key!r}), got {got!r}"
                )
    seqs = []
    for steps in groups.values():
        values = np.array([v for _, v in steps])

        def where(t, c, steps=steps):
            return f"{path}, line {steps[t][0]}, column {header[channels[c]]}"

        seqs.append(check_finite(values, fill, where))
    labels = [first_label[k][0] for k in groups] if label_col is not None else None
    return Sequences.from_arrays(seqs, labels, [header[j] for j in channels], str(path))


def _load_npy(path: Path):
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e):
            raise DataFileError(
                f"{path}: expected plain numeric arrays, got a pickled object "
                f"array, which rnnlab never unpickles; {_RAGGED_HINT}"
            ) from None
        raise DataFileError(
            f"{path}: expected a .npy/.npz file, got unreadable data ({e})"
        ) from None
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise DataFileError(
            f"{path}: expected a .npy/.npz file, got unreadable data ({e})"
        ) from None
    if isinstance(data, np.ndarray):
        return {"x": data}
    with data:
        keys = list(data.files)
        unknown = [k for k in keys if k not in _NPZ_KEYS]
        if unknown or "x" not in keys:
            raise DataFileError(
                f"{path}: expected keys x (required), y, lengths, got {', '.join(keys) or 'none'}"
            )
        out = {}
        for k in keys:
            try:
                out[k] = data[k]
            except ValueError:
                raise DataFileError(
                    f"{path}, key {k!r}: expected a numeric array, got a "
                    f"pickled object array; {_RAGGED_HINT}"
                ) from None
        return out


def read_arrays(path: str | os.PathLike, *, fill: str | None = None) -> Sequences:
    """``.npy`` (``x`` only) or ``.npz`` (``x``, optional ``y`` and ``lengths``)."""
    path = Path(path)
    arrays = _load_npy(path)
    x = arrays["x"]
    if x.dtype.kind not in "biuf":
        raise DataFileError(f"{path}, key 'x': expected a numeric array, got dtype {x.dtype}")
    lengths = arrays.get("lengths")
    if lengths is not None:
        if lengths.ndim != 1 or lengths.dtype.kind not in "iu" or (lengths < 1).any():
            raise DataFileError(
                f"{path}, key 'lengths': expected positive integers (N,), got "
                f"dtype {lengths.dtype} shape {lengths.shape}"
            )
        lengths = lengths.astype(np.int64)
    if x.ndim == 2 and lengths is not None and int(lengths.sum()) == len(x):
        seqs = np.split(x.astype(np.float64), np.cumsum(lengths)[:-1])  # flat ragged
    elif x.ndim in (2, 3):
        x = x.astype(np.float64).reshape(*x.shape[:2], -1)
        if lengths is not None and (len(lengths) != len(x) or lengths.max() > x.shape[1]):
            raise DataFileError(
                f"{path}, key 'lengths': expected {len(x)} lengths <= {x.shape[1]} for x of "
                f"shape {x.shape} (or lengths summing to len(x) for flat ragged x), got "
                f"{len(lengths)} lengths up to {lengths.max()}"
            )
        seqs = [
            s[:n]
            for s, n in zip(
                x, lengths if lengths is not None else [x.shape[1]] * len(x), strict=True
            )
        ]
    else:
        raise DataFileError(f"{path}, key 'x': expected shape (N, T) or (N, T, C), got {x.shape}")
    y = arrays.get("y")
    if y is not None:
        if y.ndim != 1 or len(y) != len(seqs) or y.dtype.kind not in "biuUS":
            raise DataFileError(
                f"{path}, key 'y': expected {len(seqs)} integer or string "
                f"labels (N,), got dtype {y.dtype} shape {y.shape}"
            )
        y = [v.decode() if isinstance(v, bytes) else str(v) for v in y.tolist()]
    checked = []
    for i, s in enumerate(seqs):

        def where(t, c, i=i):
            return f"{path}, key 'x', sequence {i}, step {t}, channel {c}"

        checked.append(check_finite(s, fill, where))
    return Sequences.from_arrays(checked, y, None, str(path))


def _data_file(path: str | os.PathLike) -> Path:
    """``path`` as a :class:`Path`, or :class:`DataFileError` when no such file exists."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: expected a data file, got no such file")
    return path


def read_sequences(
    path: str | os.PathLike,
    *,
    label: str | None = None,
    id_column: str | None = None,
    time_column: str | None = None,
    fill: str | None = None,
) -> Sequences:
    """Sequences from any supported file, chosen by suffix (module doc)."""
    from .ts_format import read_ts

    path = _data_file(path)
    suffix = path.suffix.lower()
    if suffix not in SEQUENCE_SUFFIXES:
        raise DataFileError(
            f"{path}: expected a file ending in {', '.join(SEQUENCE_SUFFIXES)}, "
            f"got {suffix or 'no suffix'}"
        )
    if suffix in (".npy", ".npz", ".ts") and (label or id_column):
        raise DataFileError(
            f"{path}: data.target and data.id_column name CSV columns; a "
            f"{suffix} file holds its labels itself"
        )
    if suffix == ".ts":
        return read_ts(path, fill=fill)
    if suffix in (".npy", ".npz"):
        return read_arrays(path, fill=fill)
    if id_column:
        return read_csv_long(
            path, id_column=id_column, label=label, time_column=time_column, fill=fill
        )
    return read_csv_wide(path, label=label, fill=fill)


def read_series(
    path: str | os.PathLike,
    *,
    time_column: str | None = None,
    delimiter: str | None = None,
    fill: str | None = None,
) -> Series:
    """One multichannel series, one step per row (module doc)."""
    path = _data_file(path)
    header, rows = _split_header(_rows(path, delimiter))
    if header is None or not rows:
        raise DataFileError(
            f"{path}: expected a header row and data rows (a series CSV), got "
            f"{'no header' if header is None else 'no data rows'}"
        )
    width = len(header)
    if time_column:
        time_col = _column(path, header, width, time_column, "time")
    else:
        first = rows[0][1]
        named = [j for j, h in enumerate(header) if h.lower() in _TIME_NAMES]
        text = [j for j, c in enumerate(first) if j < width and not _is_number(c)]
        time_col = (named or text or [None])[0]
    channels = [j for j in range(width) if j != time_col]
    if not channels:
        raise DataFileError(f"{path}: expected at least one value column, got {', '.join(header)}")
    values, time = np.empty((len(rows), len(channels))), []
    for i, (line, cells) in enumerate(rows):
        if len(cells) != width:
            raise DataFileError(
                f"{path}, line {line}: expected {width} cells (the header), got {len(cells)}"
            )
        values[i] = [_cell(path, line, header[j], cells[j]) for j in channels]
        if time_col is not None:
            time.append(cells[time_col])

    def where(t, c):
        return f"{path}, line {rows[t][0]}, column {header[channels[c]]}"

    values = check_finite(values, fill, where)
    import torch

    return Series(
        torch.as_tensor(values, dtype=torch.float32),
        [header[j] for j in channels],
        time if time_col is not None else None,
        str(path),
    )


# ----------------------------------------------------------------------------- writers
def _csv_bytes(rows: Sequence[Sequence], delimiter: str) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode()


def _fmt(v) -> str:
    return repr(float(v))


def write_csv_wide(
    path: str | os.PathLike, seqs: Sequence[np.ndarray], labels: Sequence[str] | None = None
) -> Path:
    """Univariate sequences ``(T_i,)`` or ``(T_i, 1)`` as a wide CSV with a header (``label``
    first when given; shorter sequences end in empty cells), atomically."""
    path = Path(path)
    flat = [np.asarray(s).reshape(-1) for s in seqs]
    t_max = max(len(s) for s in flat)
    head = (["label"] if labels is not None else []) + [f"t{i}" for i in range(t_max)]
    rows = [head]
    for i, s in enumerate(flat):
        cells = [_fmt(v) for v in s] + [""] * (t_max - len(s))
        rows.append(([str(labels[i])] if labels is not None else []) + cells)
    return atomic_write_bytes(path, _csv_bytes(rows, _delimiter(path, None)))


def write_csv_long(
    path: str | os.PathLike,
    seqs: Sequence[np.ndarray],
    labels: Sequence[str] | None = None,
    channels: Sequence[str] | None = None,
) -> Path:
    """Sequences ``(T_i, C)`` as a long CSV: ``id,step[,label],channels...``, atomically."""
    path = Path(path)
    seqs = [np.asarray(s).reshape(len(s), -1) for s in seqs]
    names = list(channels) if channels is not None else [f"c{i}" for i in range(seqs[0].shape[1])]
    rows = [["id", "step", *(["label"] if labels is not None else []), *names]]
    for i, s in enumerate(seqs):
        for t, step in enumerate(s):
            label = [str(labels[i])] if labels is not None else []
            rows.append([f"s{i}", str(t), *label, *(_fmt(v) for v in step)])
    return atomic_write_bytes(path, _csv_bytes(rows, _delimiter(path, None)))


def write_series(
    path: str | os.PathLike, values: np.ndarray, channels: Sequence[str], time: Sequence[str]
) -> Path:
    """One series ``(T, C)`` as a CSV with a ``time`` column first, atomically."""
    path = Path(path)
    values = np.asarray(values).reshape(len(values), -1)
    rows = [["time", *channels]] + [
        [t, *(_fmt(v) for v in row)] for t, row in zip(time, values, strict=True)
    ]
    return atomic_write_bytes(path, _csv_bytes(rows, _delimiter(path, None)))


def write_arrays(
    path: str | os.PathLike, seqs: Sequence[np.ndarray], labels: Sequence | None = None
) -> Path:
    """Sequences ``(T_i, C)`` as an ``.npz``: padded ``x (N, T, C)`` when all lengths are
    equal, else flat ``x (sum T_i, C)``; ``lengths`` and ``y`` beside it. Atomic."""
    seqs = [np.asarray(s, dtype=np.float32).reshape(len(s), -1) for s in seqs]
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    x = np.stack(seqs) if len(set(lengths.tolist())) == 1 else np.concatenate(seqs)
    arrays = {"x": x, "lengths": lengths}
    if labels is not None:
        arrays["y"] = np.asarray([str(v) for v in labels])
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())
