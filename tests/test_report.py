"""Run reports (rnnlab.evaluation.report) on tiny fake run folders."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imsave

from rnnlab.cli import main
from rnnlab.evaluation.report import ReportError, load_run, render_report


def report_main(argv):
    return main(["report", *argv])


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
    # per-class precision/recall/F1 from confusion.json, with the averages
    table = re.search(r"Per-class precision, recall and F1 \(test\); accuracy ([0-9.]+)</summary>"
                      r"(.*?)</details>", text, re.S)  # fmt: skip
    matrix = np.array(json.loads((run / "confusion.json").read_text())["matrix"])
    assert float(table.group(1)) == pytest.approx(np.trace(matrix) / matrix.sum(), abs=1e-4)
    assert table.group(2).count("<tr>") == 1 + 4 + 2 and "weighted avg" in table.group(2)


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
    assert re.search(r"<th>differs</th>.*<tr><td><code>model.hidden</code>", text)
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


def make_small_run(path: Path, metrics: dict[str, list[float]] | None = None, **files) -> Path:
    """A run folder with ``config.json``, per-epoch ``metrics`` in the loop's form
    (``{"train_loss": [..]}``) and any other ``files`` (name -> JSON-able or text)."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"config": {"name": path.name}}))
    if metrics:
        epochs = max(map(len, metrics.values()))
        lines = [{"epoch": e + 1} | {k: v[e] for k, v in metrics.items() if e < len(v)}
                 for e in range(epochs)]  # fmt: skip
        (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    for name, data in files.items():
        text = data if isinstance(data, str) else json.dumps(data)
        (path / name.replace("__", ".")).write_text(text)
    return path


def _sections(page: Path) -> dict[str, str]:
    """Group title -> the HTML of its <section>."""
    text = page.read_text()
    found = re.findall(r'<section><h2 id="[^"]*">(.*?)</h2>(.*?)</section>', text, re.S)
    return dict(found)


NO_PLACEHOLDERS = ("not in this run", "no confusion.json", 'class="missing"', "unreadable</")


def test_groups_show_only_their_runs_and_artefacts(tmp_path):
    root = tmp_path / "tour"
    lstm, gru = make_fake_run(root / "cls" / "lstm"), make_fake_run(root / "cls" / "gru", 1)
    adding = make_small_run(root / "mem" / "adding", {"train_loss": [1.0, 0.5],
                            "val_loss": [0.9, 0.6], "test_loss": [0.55]})  # fmt: skip
    grads = make_small_run(root / "mem" / "gradients",
                           gradients__json={"LSTM": [0.1, 0.5, 1.0]})  # fmt: skip
    listing = make_small_run(root / "sum" / "listing", summary__txt="Model: x\nTotal: 5")
    stray = make_small_run(root / "stray", {"val_accuracy": [0.5]})
    groups = {"Classifiers": [lstm, gru], "Memory": [adding, grads], "Summary": [listing],
              "Empty part": []}  # fmt: skip
    notes = {"Classifiers": f"lstm acc 0.9\n{EVIL}", "Summary": "Model: x\nTotal: 5",
             "Empty part": "trained nothing"}  # fmt: skip
    page = render_report([lstm, gru, adding, grads, listing, stray], out_dir=root / "report",
                         title="tour", groups=groups, notes=notes)  # fmt: skip
    text = page.read_text()
    sections = _sections(page)
    assert list(sections) == ["Classifiers", "Memory", "Summary", "Empty part", "Other runs"]
    toc = re.search(r'<nav class="toc">(.*?)</nav>', text, re.S).group(1)
    assert [t for t in re.findall(r">([^<>]+)</a>", toc)] == list(sections)
    assert "lstm, gru" in toc and "adding, gradients" in toc
    for placeholder in NO_PLACEHOLDERS:
        assert placeholder not in text
    cls, mem, summ, empty, other = sections.values()
    # notes: escaped, at the top of their section
    assert cls.index("<pre class=note>") < cls.index("<table")
    assert "&lt;script&gt;" in cls and "<script" not in text and "<img src=x" not in text
    assert empty.strip() == "<pre class=note>trained nothing</pre>"
    # classifiers: both confusion matrices, their gates and samples; no memory runs
    assert cls.count("</b> · confusion matrix: rows true class") == 2
    assert "Gate activations" in cls and "adding" not in cls and "gradients</b>" not in cls
    assert re.search(r"<th class=num>lstm</th><th class=num>gru</th></tr>", cls)
    # memory: its own loss curve, the gradient plot, no confusion/robustness/images
    assert "loss per epoch" in mem and "accuracy per epoch" not in mem
    assert "Gradient norm through time" in mem
    for absent in ("Confusion", "Robustness", "Gate activations", "Samples", "lstm</"):
        assert absent not in mem, absent
    assert re.search(r"<th class=num>adding</th></tr>", mem)  # gradients has no metrics column
    # summary-only: the note, no table of metrics, no curves; its summary.txt only repeats
    # the note, so it is not shown twice
    assert "Final metrics" not in summ and "Training curves" not in summ
    assert "Model summary" not in summ and summ.count("Total: 5") == 1
    assert "stray" in other and "stray" not in cls + mem + summ
    assert "Training curves" not in other  # one point of val accuracy: nothing to draw
    links = _links(page)
    assert links.srcs and all((page.parent / s).is_file() for s in links.srcs)
    md = (page.parent / "report.md").read_text()
    assert md.index("## Classifiers") < md.index("## Memory") < md.index("## Summary")
    assert "<script" not in md


def test_ungrouped_page_splits_curves_by_kind_and_has_no_placeholders(tmp_path):
    cls = make_fake_run(tmp_path / "cls")
    reg = make_small_run(tmp_path / "reg", {"train_loss": [1.0, 0.5], "val_loss": [0.8, 0.7]})
    page = render_report([cls, reg], out_dir=tmp_path / "out")
    text = page.read_text()
    for placeholder in NO_PLACEHOLDERS:
        assert placeholder not in text
    # a classifier's loss and a regressor's loss are not drawn on one axis
    assert text.count("</b> · loss per epoch") == 2 and text.count("</b> · accuracy per epoch") == 1
    assert text.count("</b> · confusion matrix: rows true class") == 1
    assert len(_links(page).srcs) == 3 + 1 + 1 + 2 + 2  # curves, confusion, robust+grads, images
    assert all((page.parent / s).is_file() for s in _links(page).srcs)


def test_many_runs_get_one_row_each(tmp_path):
    runs = [make_small_run(tmp_path / f"r{i}", {"val_loss": [1.0, 0.5 + i / 10]})
            for i in range(6)]  # fmt: skip
    text = render_report(runs, out_dir=tmp_path / "out").read_text()
    table = re.search(r"Final metrics.*?<table>(.*?)</table>", text, re.S).group(1)
    assert "<th>run</th><th class=num>val loss</th>" in table
    assert table.count("<tr>") == 1 + 6
    assert '<td class="num win">0.5</td>' in table


def test_bad_groups_and_notes(tmp_path):
    run = make_small_run(tmp_path / "a")
    with pytest.raises(ReportError, match="pass `groups` too"):
        render_report([run], notes={"x": "y"})
    with pytest.raises(ReportError, match="name no group"):
        render_report([run], groups={"A": [run]}, notes={"B": "y"})
    with pytest.raises(ReportError, match="must list run folders"):
        render_report([run], groups={"A": run})
    with pytest.raises(ReportError, match="RUN must be"):
        render_report([run], groups={"A": [tmp_path / "missing"]})


def _epoch_grids(run: Path, name: str, epochs: int, tiles: int = 16) -> None:
    """``samples/<name>-epochNNN.png`` grids as SampleWriter saves them (8 per row, pad 2)."""
    from rnnlab.utils import save_image_grid

    for e in range(1, epochs + 1):
        images = np.random.default_rng(e).random((tiles, 1, 8, 8))
        save_image_grid(images, run / "samples" / f"{name}-epoch{e:03d}.png", nrow=8)


def test_epoch_series_show_the_last_large_and_a_strip_of_earlier_ones(tmp_path):
    run = make_small_run(tmp_path / "vae", {"train_loss": [1.0, 0.5]})
    _epoch_grids(run, "samples", 40)
    _epoch_grids(run, "reconstructions", 3)
    imsave(run / "samples" / "latent-map.png", np.random.default_rng(0).random((40, 50)))
    page = render_report([run])
    text = page.read_text()
    captions = re.findall(r"<figcaption>([^<]*)</figcaption>", text)
    assert "latent map: the posterior mean" in text
    latent = next(c for c in captions if "latent-map.png" in c)
    assert "generated samples" not in latent.split("(")[0]
    final = next(c for c in captions if "samples-epoch040.png" in c)
    assert final.startswith("generated samples") and "epoch 40 (the last saved)" in final
    # 39 earlier epochs: 8 thumbnails, evenly spaced, the first kept; never dozens
    strips = re.findall(r'<details class="epochs"><summary>Earlier epochs \(([^)]*)\)</summary>'
                        r"(.*?)</details>", text, re.S)  # fmt: skip
    assert [s for s, _ in strips] == [
        "2 of 2".replace("2 of 2", "2"),
        "8 of 39 shown, evenly spaced",
    ]
    epochs = [int(e) for e in re.findall(r"<figcaption>epoch (\d+)</figcaption>", strips[1][1])]
    assert len(epochs) == 8 and epochs[0] == 1 and epochs[-1] == 39 and epochs == sorted(epochs)
    assert len(_links(page).srcs) == 1 + 3 + 2 + 8  # curve, 3 finals, the two strips
    assert all((page.parent / s).is_file() for s in _links(page).srcs)


def test_small_grids_are_enlarged_by_whole_pixels_and_labelled(tmp_path):
    from PIL import Image

    from rnnlab.evaluation.report_images import enlarge, grid_labels, series_of

    src = tmp_path / "tiny.png"
    pixels = (np.random.default_rng(0).random((10, 12)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(src)
    size = enlarge(src, tmp_path / "big.png", width=120)
    big = np.asarray(Image.open(tmp_path / "big.png").convert("L"))
    assert size == (120, 100) and big.shape == (100, 120)
    assert (big == np.kron(pixels, np.ones((10, 10), dtype=np.uint8))).all()  # nearest only
    # a conditional GAN's samples: each cell labelled with its class, named by the dataset
    run = make_small_run(tmp_path / "cgan")
    cfg = {"model": {"family": "gan", "conditional": True}, "data": {"dataset": "fashion-mnist"}}
    (run / "config.json").write_text(json.dumps({"config": cfg}))
    rows, cells, nrow = grid_labels(load_run(run), Path("samples/samples-epoch005.png"))
    assert rows is None and nrow == 8 and cells[9] == "Ankle boot" and len(cells) == 10
    recon_rows, _, _ = grid_labels(load_run(run), Path("samples/reconstructions-epoch001.png"))
    assert recon_rows == ["input", "reconstruction"]
    _epoch_grids(run, "samples", 1, tiles=64)
    w, h = enlarge(run / "samples" / "samples-epoch001.png", tmp_path / "labelled.png",
                   cell_labels=cells)  # fmt: skip
    assert w == 82 * 6 and h > 82 * 6  # a band of text above every row of cells
    found = series_of([Path("a-epoch2.png"), Path("a-epoch10.png"), Path("b.png")])
    assert [s.final.name for s in found] == ["a-epoch10.png", "b.png"]


def test_smoke_runs_get_a_banner_and_identical_curves_are_drawn_once(tmp_path):
    a = make_small_run(tmp_path / "a", {"train_loss": [1.0, 0.5], "lr": [0.1, 0.01]})
    b = make_small_run(tmp_path / "b", {"train_loss": [0.9, 0.4], "lr": [0.1, 0.01]})
    text = render_report([a, b], out_dir=tmp_path / "out").read_text()
    assert 'class="banner"' not in text
    assert "lr per epoch (log scale); a and b coincide (one line)" in text
    dry = json.loads((a / "config.json").read_text()) | {"argv": ["rnnlab", "train", "x",
                                                                  "--dry-run"]}  # fmt: skip
    (a / "config.json").write_text(json.dumps(dry))
    page = render_report([a, b], out_dir=tmp_path / "out")
    banner = re.search(r'<p class="banner" role="alert">([^<]*)</p>', page.read_text())
    assert banner and "a ran with --dry-run" in banner.group(1) and "b ran" not in banner.group(1)
    assert "> **Not results: a ran with --dry-run" in (page.parent / "report.md").read_text()
    custom = render_report([b], out_dir=tmp_path / "out2", banner="quick tour").read_text()
    assert '<p class="banner" role="alert">quick tour</p>' in custom
