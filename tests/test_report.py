"""Run reports (rnnlab.evaluation.report) on tiny fake run folders, and MetricsLogger."""

from __future__ import annotations

import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imsave

from rnnlab.evaluation.logging import MetricsLogger, tensorboard_tag
from rnnlab.evaluation.report import ReportError, load_run, render_report, report_main

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def make_fake_run(path: Path, variant: int = 0, config: dict | None = None) -> Path:
    """A run folder as training writes it: config, 3 epochs of train/val metrics and a test
    record, a sample grid, gate heatmap, confusion matrix, robustness and gradient curves."""
    rng = np.random.default_rng(variant)
    (path / "samples").mkdir(parents=True)
    cfg = config or {"model": {"kind": "lstm", "hidden": 32 + variant}, "train": {"lr": 0.01}}
    (path / "config.json").write_text(json.dumps({"config": cfg, "argv": ["train", "--quick"]}))
    records = []
    for epoch, val_loss in zip((1, 2, 3), (1.0, 0.6, 0.7 + 0.1 * variant), strict=True):
        base = {"epoch": epoch, "step": 10 * epoch}
        records.append(base | {"split": "train", "loss": 1.2 / epoch + 0.1 * variant,
                               "accuracy": 0.5 + (0.1 - 0.02 * variant) * epoch,
                               "lr": 0.01 / epoch})  # fmt: skip
        records.append(base | {"split": "val", "loss": val_loss, "accuracy": 0.45 + 0.12 * epoch})
    records.append({"epoch": 3, "step": 30, "split": "test", "loss": 0.65, "accuracy": 0.8})
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    imsave(path / "samples" / "reconstructions.png", rng.random((30, 60)), cmap="gray")
    imsave(path / "gates.png", rng.random((16, 8)), cmap="viridis")
    matrix = (np.eye(4) * 20 + rng.integers(0, 4, (4, 4))).astype(int).tolist()
    (path / "confusion.json").write_text(json.dumps({"labels": list("abcd"), "matrix": matrix}))
    robust = {m: [{"eps": e, "accuracy": a - (2 + variant) * e} for e in (0.0, 0.1, 0.2)]
              for m, a in (("lstm", 0.9), ("gru", 0.85))}  # fmt: skip
    (path / "robustness.json").write_text(json.dumps(robust))
    grads = {"SimpleRNN": [0.8 ** (10 - t) for t in range(10)], "LSTM": [1.0] * 10}
    (path / "gradients.json").write_text(json.dumps(grads))
    (path / "summary.txt").write_text(
        "Layer (type)  Output Shape  Param #\nLSTM  (None, 32)  5,248\n"
    )
    return path


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.hrefs: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "img":
            self.srcs.append(found["src"] or "")
        if tag in ("a", "link") and found.get("href"):
            self.hrefs.append(found["href"] or "")
        self.scripts += tag == "script"


def _links(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def test_one_run_renders_and_links_only_existing_files(tmp_path):
    run = make_fake_run(tmp_path / "lstm")
    page = render_report([run])
    assert page == run / "report" / "report.html"
    assert (run / "report" / "report.md").is_file()
    links = _links(page)
    # curves (loss, accuracy, lr), confusion, robustness, gradients, gates, samples
    assert len(links.srcs) == 8
    for src in links.srcs:
        assert not re.match(r"^[a-z]+:|^/", src), f"not a relative link: {src}"
        assert (page.parent / src).is_file(), src
    assert all(h.startswith("#") for h in links.hrefs)  # no external CSS, JS, fonts, pages
    assert links.scripts == 0
    md = (page.parent / "report.md").read_text()
    for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
        assert (page.parent / target).is_file(), target
    text = page.read_text()
    assert "val loss" in text and "best 0.6 @ epoch 2" in text  # best differs from last (0.7)


def test_loop_record_form_and_missing_pieces(tmp_path):
    run = tmp_path / "bare"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "gru"}))
    lines = [
        {"epoch": 1, "train_loss": 1.0, "val_loss": 0.9, "val_accuracy": 0.5, "lr": 0.1},
        {"epoch": 2, "train_loss": 0.5, "val_loss": float("nan"), "val_accuracy": 0.7},
        {"test_accuracy": 0.6},  # the loop's final record: no epoch, drawn at the last one
    ]
    (run / "metrics.jsonl").write_text("\n".join(map(json.dumps, lines)) + "\n{not json\n")
    (run / "confusion.json").write_text('{"matrix": [[1, 2], [3]]}')
    (run / "broken.png").write_bytes(b"not a png")
    data = load_run(run)
    assert data.series["loss"]["val"][0] == (1.0, 0.9)
    assert data.xlabel == "epoch" and data.series["lr"] == {"": [(1.0, 0.1)]}
    assert data.series["accuracy"] == {"val": [(1.0, 0.5), (2.0, 0.7)], "test": [(2.0, 0.6)]}
    assert data.best("val", "loss") == (1.0, 0.9)  # the NaN is never "best"
    assert data.confusion is None and data.images == []
    assert len(data.warnings) == 3  # bad JSON line, ragged matrix, fake PNG
    page = render_report([run], out_dir=tmp_path / "out")
    text = page.read_text()
    assert "Notes: files that could not be used" in text and "broken.png" in text
    assert all((page.parent / s).is_file() for s in _links(page).srcs)


def test_per_step_records_use_the_step_axis(tmp_path):
    run = tmp_path / "steps"
    run.mkdir()
    (run / "config.json").write_text("{}")
    lines = [{"epoch": 1, "step": s, "split": "train", "loss": 1 / s} for s in (1, 2, 3)]
    (run / "metrics.jsonl").write_text("\n".join(map(json.dumps, lines)))
    assert load_run(run).xlabel == "step"


def test_two_runs_side_by_side(tmp_path):
    a, b = make_fake_run(tmp_path / "runs" / "lstm"), make_fake_run(tmp_path / "runs" / "gru", 1)
    page = render_report([a, b], title="LSTM vs GRU")
    assert page == tmp_path / "runs" / "report" / "report.html"
    text = page.read_text()
    assert "<title>LSTM vs GRU</title>" in text
    assert text.count('class="cmp"') >= 3  # confusion, gates and samples rows: one column each
    assert re.search(r'<tr class="diff"><td class="key"><code>model.hidden</code>', text)
    links = _links(page)
    assert len(links.srcs) == 3 + 2 + 2 + 2 * 2  # curves, confusion x2, robust+grads, images x2
    assert len(set(links.srcs)) == len(links.srcs)
    assert all((page.parent / s).is_file() for s in links.srcs)
    # a re-render must not pick up the report's own PNGs as run figures
    assert len(_links(render_report([a, b], title="again")).srcs) == len(links.srcs)


def test_strings_from_disk_are_escaped(tmp_path):
    run = make_fake_run(tmp_path / "evil", config={EVIL: EVIL, "nested": {"k": EVIL}})
    (run / "summary.txt").write_text(EVIL)
    with open(run / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"epoch": 3, "split": EVIL, EVIL: 1.0, "$x$": 2.0}) + "\n")
    (run / "gradients.json").write_text(json.dumps({EVIL: [1.0, 0.5], "$\\frac{$": [1.0]}))
    page = render_report([run], title=EVIL)
    text = page.read_text()
    assert "<script" not in text and "<img src=x" not in text
    assert "&lt;script&gt;" in text
    links = _links(page)
    assert links.scripts == 0
    assert all((page.parent / s).is_file() for s in links.srcs)
    md = (page.parent / "report.md").read_text()
    assert "<script" not in md and "<img src=x" not in md


def test_report_main_exit_codes(tmp_path, capsys):
    run = make_fake_run(tmp_path / "run")
    assert report_main([str(run), "--out", str(tmp_path / "out"), "--title", "T"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "out" / "report.html")
    empty = tmp_path / "empty"
    empty.mkdir()
    for bad in (tmp_path / "missing", empty):
        assert report_main([str(bad)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(bad) in err and "RUN must be" in err
    (empty / "config.json").write_text("[1, 2]")
    assert report_main([str(empty)]) == 2
    assert "JSON object" in capsys.readouterr().err
    assert report_main([]) == 2  # argparse: RUN is required
    capsys.readouterr()
    with pytest.raises(ReportError, match="non-empty list"):
        render_report([])


def test_metrics_logger_appends_flushed_lines(tmp_path):
    torch = pytest.importorskip("torch")
    with MetricsLogger(tmp_path / "run") as log:
        log.log({"epoch": 1, "split": "train", "loss": torch.tensor(0.5), "acc": np.float32(1)})
        # flushed: readable before close
        first = json.loads((tmp_path / "run" / "metrics.jsonl").read_text())
        assert first == {"epoch": 1, "split": "train", "loss": 0.5, "acc": 1.0}
    assert log.closed
    with pytest.raises(ValueError, match="closed"):
        log.log({"loss": 1.0})
    with MetricsLogger(tmp_path / "run") as log:  # resumed: appended, not truncated
        log.log({"epoch": 2, "val_loss": float("nan")})
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and np.isnan(json.loads(lines[1])["val_loss"])
    with MetricsLogger(tmp_path / "run") as log, pytest.raises(TypeError, match="a mapping"):
        log.log([1.0])
    assert tensorboard_tag("val_loss") == "loss/val" == tensorboard_tag("loss", "val")
    assert tensorboard_tag("lr") == "lr"


def test_metrics_logger_tensorboard_missing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with pytest.raises(ImportError, match="pip install tensorboard"):
        MetricsLogger(tmp_path / "run", tensorboard=True)
    assert not (tmp_path / "run").exists()  # nothing created before the error


def test_metrics_logger_tensorboard_writes_events(tmp_path):
    pytest.importorskip("tensorboard", reason="optional dependency `tensorboard` not installed")
    with MetricsLogger(tmp_path, tensorboard=True) as log:
        log.log({"epoch": 1, "split": "val", "loss": 0.5})
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
