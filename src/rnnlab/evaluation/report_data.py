"""Reading run folders for reports (:mod:`rnnlab.evaluation.report`), defensively.

:func:`load_run` -> :class:`RunData`. Only ``config.json`` is required (``{"config": {..},
"argv": [..]}`` as ``training.checkpoint.RunDir`` writes it, or a bare config dict). Optional:
``metrics.jsonl`` in either record form, ``{"split": "val", "loss": ..}`` or the training
loop's ``{"epoch": 3, "train_loss": .., "val_accuracy": ..}``, both normalised to
``series[metric][split] = [(x, value), ...]`` with x the epoch (else step, else record
number); ``summary.txt``; ``confusion.json`` ``{"labels": [..], "matrix": [[..]]}``;
``robustness.json`` ``{"model": [{"eps": e, "accuracy": a}, ..]}``; ``gradients.json``
``{"name": [norm per step]}``; and PNGs up to two folders deep (not ``checkpoints/``, hidden
folders or an earlier report). Whatever is missing is skipped; whatever is malformed is
skipped with a line in ``RunData.warnings``, which the report shows.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SPLITS = {"train": "train", "training": "train", "val": "val", "valid": "val",
          "validation": "val", "dev": "val", "test": "test"}  # fmt: skip
NO_PLOT = {"seconds", "time", "wall_time", "timestamp", "eps", "epoch", "step", "split"}
LOWER = {"loss", "error", "err", "nll", "fid", "kid", "mse", "bce", "perplexity", "kl", "mae",
         "bpc"}  # fmt: skip
HIGHER = {"accuracy", "acc", "auc", "auroc", "f1", "precision", "recall", "elbo", "iou"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_IMAGES = 2000  # per run; the page shows each series' last epoch and a strip of earlier ones
MAX_SETTING = 300  # characters of one setting shown in the configuration table
MAX_TEXT = 4000  # characters of a generated-text sample shown
MAX_CLASSES = 200


def fmt(value: float) -> str:
    """A metric for a table: 4 significant digits, scientific only when far from 1."""
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}" if value == 0 or 1e-3 <= abs(value) < 1e5 else f"{value:.3e}"


def lower_is_better(metric: str) -> bool | None:
    """True for losses and errors, False for accuracies and scores, None when unknown."""
    tokens = set(metric.lower().split("_"))
    return True if tokens & LOWER else False if tokens & HIGHER else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def png_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, or None when ``path`` is not a PNG."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != PNG_MAGIC or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return (width, height) if width > 0 and height > 0 else None


@dataclass
class RunData:
    """What one run folder holds, read and checked; ``warnings`` lists what was skipped."""

    path: Path
    name: str
    config: dict[str, Any]
    argv: list[Any] | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    series: dict[str, dict[str, list[tuple[float, float]]]] = field(default_factory=dict)
    xlabel: str = "epoch"
    summary: str | None = None
    confusion: tuple[list[str], list[list[float]]] | None = None
    robustness: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    gradients: dict[str, list[float]] = field(default_factory=dict)
    anomaly: Path | None = None  # anomaly_scores.csv of a seq-anomaly run
    images: list[Path] = field(default_factory=list)
    texts: list[tuple[Path, str]] = field(default_factory=list)  # generated text samples
    image_sizes: dict[Path, tuple[int, int]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def plottable(self, metric: str) -> bool:
        return metric not in NO_PLOT and any(
            math.isfinite(y) for pts in self.series.get(metric, {}).values() for _, y in pts
        )

    def last(self, split: str, metric: str) -> float | None:
        points = self.series.get(metric, {}).get(split)
        return points[-1][1] if points else None

    def best(self, split: str, metric: str) -> tuple[float, float] | None:
        """(x, value) of the best finite value, for metrics whose direction is known."""
        lower = lower_is_better(metric)
        points = [p for p in self.series.get(metric, {}).get(split, []) if math.isfinite(p[1])]
        if lower is None or not points:
            return None
        return (min if lower else max)(points, key=lambda p: p[1])

    def flat_config(self) -> dict[str, str]:
        flat: dict[str, str] = {}

        def walk(value: object, key: str) -> None:
            if isinstance(value, dict) and value:
                for k, v in value.items():
                    walk(v, f"{key}.{k}" if key else str(k))
            else:
                text = value if isinstance(value, str) and value else json.dumps(value)
                if len(text) > MAX_SETTING:  # a saved vocabulary: its size, not its words
                    text = f"{text[:60]}... ({len(text):,} characters)"
                flat[key or "(config)"] = text

        walk(self.config, "")
        if self.argv is not None:
            argv = self.argv
            flat["argv"] = " ".join(map(str, argv)) if isinstance(argv, list) else str(argv)
        return flat

    def category(self, rel: Path) -> str:
        name = rel.as_posix().lower()
        if "gate" in name:
            return "gates"
        if rel.parts[0] == "samples" or any(w in name for w in ("sample", "recon", "grid")):
            return "samples"
        return "other"


def _read_json(run: RunData, name: str) -> Any:
    path = run.path / name
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        run.warnings.append(f"{name}: not readable JSON ({type(err).__name__}: {err})")
        return None


def _x_key(records: list[dict[str, Any]]) -> str:
    """The x axis: ``epoch`` if most records carry one (a final test record often has none;
    it is drawn at the last x seen) and no split logs one epoch twice (per-step records), else
    ``step`` on the same terms, else ``record`` (the line number)."""
    for key in ("epoch", "step"):
        values = [(str(r.get("split")), _number(r.get(key))) for r in records]
        present = [v for v in values if v[1] is not None]
        if present and 2 * len(present) >= len(records) and len(set(present)) == len(present):
            return key
    return "record"


def _read_metrics(run: RunData) -> None:
    path = run.path / "metrics.jsonl"
    if not path.is_file():
        return
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as err:
        run.warnings.append(f"metrics.jsonl: not readable ({err})")
        return
    bad = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            run.records.append(record)
        else:
            bad.append(number)
    if bad:
        run.warnings.append(f"metrics.jsonl: skipped {len(bad)} line(s) that are not JSON "
                            f"objects (first: line {bad[0]})")  # fmt: skip
    run.xlabel = _x_key(run.records)
    x = 0.0
    for i, record in enumerate(run.records, 1):
        here = float(i) if run.xlabel == "record" else _number(record.get(run.xlabel))
        x = x if here is None else here
        split = record.get("split")
        for key, value in record.items():
            y = _number(value)
            if y is None or key in ("epoch", "step"):
                continue
            if isinstance(split, str) and split:
                where, metric = SPLITS.get(split.lower(), split), key
            else:
                prefix, _, rest = key.partition("_")
                where, metric = (SPLITS[prefix], rest) if prefix in SPLITS and rest else ("", key)
            run.series.setdefault(metric, {}).setdefault(where, []).append((x, y))


def _read_confusion(run: RunData) -> None:
    data = _read_json(run, "confusion.json")
    if data is None:
        return
    matrix = data.get("matrix") if isinstance(data, dict) else None
    n = len(matrix) if isinstance(matrix, list) else 0
    ok = 0 < n <= MAX_CLASSES and all(
        isinstance(row, list) and len(row) == n and all(_number(v) is not None for v in row)
        for row in matrix
    )
    labels = data.get("labels") if isinstance(data, dict) else None
    labels = list(range(n)) if labels is None else labels
    if not ok or not isinstance(labels, list) or len(labels) != n:
        run.warnings.append(
            'confusion.json: expected {"labels": [n names], "matrix": [n rows of n numbers]} '
            f"with 1 <= n <= {MAX_CLASSES}"
        )
        return
    run.confusion = ([str(label) for label in labels], [[float(v) for v in row] for row in matrix])


def _read_curves(run: RunData) -> None:
    robustness = _read_json(run, "robustness.json")
    if robustness is not None:
        if isinstance(robustness, list):
            robustness = {"model": robustness}
        if not isinstance(robustness, dict):
            robustness = {"": None}
        for model, points in robustness.items():
            good = [
                (_number(p.get("eps")), _number(p.get("accuracy")))
                for p in (points if isinstance(points, list) else [None])
                if isinstance(p, dict)
            ]
            good = [(e, a) for e, a in good if e is not None and a is not None]
            if good:
                run.robustness[str(model)] = good
            else:
                run.warnings.append(f"robustness.json: {str(model)[:80]!r} is not a list of "
                                    '{"eps": e, "accuracy": a}')  # fmt: skip
    gradients = _read_json(run, "gradients.json")
    if gradients is not None:
        for name, norms in gradients.items() if isinstance(gradients, dict) else [("", None)]:
            if (
                isinstance(norms, list)
                and norms
                and all(v is None or _number(v) is not None for v in norms)
            ):
                run.gradients[str(name)] = [math.nan if v is None else float(v) for v in norms]
            else:
                run.warnings.append(f"gradients.json: {str(name)[:80]!r} is not a list of norms")


def _find_images(run: RunData, exclude: tuple[Path, ...]) -> None:
    found: list[Path] = []
    for folder, dirs, files in os.walk(run.path):
        here = Path(folder)
        depth = len(here.relative_to(run.path).parts)
        dirs[:] = sorted(
            d for d in dirs
            if not d.startswith(".") and d != "checkpoints" and depth < 2
            and (here / d).resolve() not in exclude and not (here / d / "report.html").exists()
        )  # fmt: skip
        for name in sorted(files):
            path = here / name
            if name.lower().endswith(".png") and not name.startswith(".") and path.is_file():
                size = png_size(path)
                rel = path.relative_to(run.path)
                if size is None:
                    run.warnings.append(f"{rel.as_posix()}: not a PNG image; skipped")
                    continue
                found.append(rel)
                run.image_sizes[rel] = size
    if len(found) > MAX_IMAGES:
        run.warnings.append(f"{len(found)} PNGs found; showing the first {MAX_IMAGES}")
        found = found[:MAX_IMAGES]
    run.images = found


def _find_texts(run: RunData) -> None:
    """The last epoch's generated text (``samples/epoch-NNN.txt``, language models)."""
    folder = run.path / "samples"
    files = sorted(folder.glob("epoch-*.txt")) if folder.is_dir() else []
    if files:
        try:
            text = files[-1].read_text(encoding="utf-8", errors="replace")
        except OSError as err:
            run.warnings.append(f"{files[-1].name}: not readable ({err})")
            return
        run.texts.append((files[-1].relative_to(run.path), text[:MAX_TEXT]))


def load_run(path: str | os.PathLike, *, exclude: tuple[Path, ...] = (),
             error: type[Exception] = ValueError) -> RunData:  # fmt: skip
    """Read one run folder. Only ``config.json`` is required (``error`` is raised without
    it); anything else that is missing or malformed becomes a line in ``warnings``."""
    path = Path(path)
    config_path = path / "config.json"
    if not path.is_dir():
        raise error(f"RUN must be an existing run folder; {str(path)!r} does not exist")
    if not config_path.is_file():
        raise error(f"RUN must be a run folder holding config.json; {str(path)!r} has none")
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise error(f"RUN's config.json must be a JSON object; {str(config_path)!r}: "
                    f"{type(err).__name__}: {err}".replace("\n", " ")) from err  # fmt: skip
    if not isinstance(data, dict):
        raise error(f"RUN's config.json must be a JSON object; {str(config_path)!r} holds a "
                    f"{type(data).__name__}")  # fmt: skip
    argv = data.get("argv")
    config = data["config"] if isinstance(data.get("config"), dict) else data
    config = {k: v for k, v in config.items() if k != "argv"}
    run = RunData(path=path, name=path.resolve().name or str(path), config=config, argv=argv)
    _read_metrics(run)
    summary = run.path / "summary.txt"
    if summary.is_file():
        try:
            run.summary = summary.read_text(encoding="utf-8", errors="replace")
        except OSError as err:
            run.warnings.append(f"summary.txt: not readable ({err})")
    _read_confusion(run)
    if (run.path / "anomaly_scores.csv").is_file():
        run.anomaly = run.path / "anomaly_scores.csv"
    _read_curves(run)
    _find_images(run, exclude)
    _find_texts(run)
    return run
