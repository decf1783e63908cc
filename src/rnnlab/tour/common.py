"""What every part of the tour shares: where runs go, quick mode, and training a preset."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

from rnnlab.training.config import apply_overrides, load_preset
from rnnlab.utils import atomic_write_text


@dataclass
class Tour:
    out: Path
    quick: bool = False
    runs: list[Path] = field(default_factory=list)
    classifier_runs: dict[str, Path] = field(default_factory=dict)  # reused by later parts
    groups: dict[str, list[Path]] = field(default_factory=dict)  # report section -> its runs
    notes: dict[str, str] = field(default_factory=dict)  # report section -> printed lines

    def record_part(self, name: str, part: Callable, first_run: int, lines: list[str]) -> None:
        """File the runs made since ``tour.runs[first_run]`` and the lines the part printed
        under one report section, titled by the part's name and its docstring's first
        sentence."""
        doc = " ".join((part.__doc__ or "").split())
        sentence = re.split(r"(?<=[.?!])\s+", doc)[0].rstrip(".")
        title = f"{name} — {sentence}" if sentence else name
        self.groups[title] = self.runs[first_run:]
        self.notes[title] = "\n".join(lines)

    def folder(self, part: str) -> Path:
        path = self.out / part
        path.mkdir(parents=True, exist_ok=True)
        return path

    def train(self, part: str, preset: str, name: str, overrides: list[str]) -> dict:
        """Train ``preset`` with ``overrides`` into ``out/part/name``; quiet (the engine's
        own lines go to ``out/tour.log``). Returns the engine's result dict."""
        from rnnlab.training.experiment import train

        cfg = apply_overrides(load_preset(preset), overrides)
        cfg.run.out_dir, cfg.run.name, cfg.run.preset = str(self.folder(part)), name, preset
        buffer = io.StringIO()
        with redirect_stdout(buffer):
            result = train(cfg, argv=["tour", preset, *overrides], progress=False)
        with open(self.out / "tour.log", "a") as f:
            f.write(buffer.getvalue())
        result["run"] = Path(result["run"])
        self.runs.append(result["run"])
        return result

    def manual_run(self, part: str, name: str, config: dict) -> Path:
        """A run folder for a part that trains nothing (e.g. the summary)."""
        path = self.folder(part) / name
        path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path / "config.json", json.dumps({"config": config, "argv": ["tour"]}))
        self.runs.append(path)
        return path
