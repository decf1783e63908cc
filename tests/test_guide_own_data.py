"""docs/guides/own_data.md runs as written: its python blocks (which write tiny files) and its
``rnnlab ...`` command lines, in order, in one empty folder."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from rnnlab.cli import main

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guides" / "own_data.md"


def _blocks() -> list[tuple[str, str]]:
    return re.findall(r"```(python|bash)\n(.*?)```", GUIDE.read_text(), flags=re.S)


def test_the_guide_has_an_example_per_format():
    commands = " ".join(code for lang, code in _blocks() if lang == "bash")
    for needle in ("wide.csv", "long.csv", "ragged.npz", "Toy_TRAIN.ts", "forecast",
                   "seq-anomaly", "rnnlab predict", "rnnlab report"):  # fmt: skip
        assert needle in commands, needle


def test_every_example_of_the_guide_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for lang, code in _blocks():
        if lang == "python":
            exec(compile(code, str(GUIDE), "exec"), namespace)  # noqa: S102 - our own docs
            continue
        for line in code.strip().splitlines():
            argv = shlex.split(line)
            assert argv[0] == "rnnlab", line
            code_ = main([*argv[1:], *(["--no-progress"] if argv[1] == "train" else [])])
            assert code_ == 0, (line, capsys.readouterr().err)
    assert (tmp_path / "wide-predictions.csv").read_text().startswith("sequence,label,p_falling")
    assert (tmp_path / "forecasts.csv").read_text().startswith("time,target,h1")
    assert "threshold" in (tmp_path / "scores.csv").read_text().splitlines()[0]
    assert (tmp_path / "sensor-report" / "report.html").is_file()
