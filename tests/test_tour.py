"""The tour (``make run``) runs end to end in its quick form and writes every part's run
folder and the HTML page."""

import json

from rnnlab import tour
from rnnlab.cli import main


def test_quick_tour_writes_every_part_and_the_report(tmp_path, capsys):
    assert main(["tour", "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Total params: 271,365" in out  # Listing 5.1
    assert "test accuracy" in out and "baseline MSE 0.167" in out
    for part in tour.ORDER:
        runs = [p for p in (tmp_path / part).iterdir() if (p / "config.json").is_file()]
        assert runs, f"part {part} wrote no run folder"
    assert (tmp_path / "report.html").is_file() and (tmp_path / "report.md").is_file()
    assert (tmp_path / "classifiers" / "lstm" / "gates.png").is_file()
    confusion = json.loads((tmp_path / "classifiers" / "lstm" / "confusion.json").read_text())
    assert sum(map(sum, confusion["matrix"])) == 360
    assert (tmp_path / "adversarial" / "cnn" / "samples" / "adversarial.png").is_file()
