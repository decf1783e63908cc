"""Run reports: read run folders and write one static page, ``report.html`` and ``report.md``.

``render_report([run, ...])`` reads what training left in each run folder (only
``config.json`` is required; everything else is optional and read defensively):
``metrics.jsonl`` (``{"split": "val", "loss": ..}`` records or the loop's ``val_loss`` form),
``summary.txt``, ``confusion.json``, ``robustness.json``, ``gradients.json`` and every PNG
(``samples/``, ``gates.png``, ``gates/``, others), via :mod:`rnnlab.evaluation.report_data`.
It draws curves and heatmaps
(:mod:`rnnlab.evaluation.plots`), copies the PNGs beside the page under ``report_files/`` and
links them relatively: no server, no external CSS, JS or fonts. Several runs are shown side
by side (one column per run). Everything read from disk is HTML-escaped; files that cannot
be read become notes at the end of the page, never a crash. Reports never train.
``report_main(argv)`` is the ``rnnlab report`` command line.
"""

from __future__ import annotations

import argparse
import html
import math
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .plots import atomic_write_bytes, plot_confusion, plot_curves, plot_gradients, plot_robustness
from .report_data import RunData, fmt, load_run, lower_is_better

__all__ = ["ReportError", "RunData", "load_run", "render_report", "report_main"]

ASSETS = "report_files"
CURVE_FIRST = ("loss", "accuracy")
LOG_METRICS = ("lr", "grad_norm")
TABLE_SKIP = ("lr", "seconds", "grad_norm")  # settings and diagnostics, not results
IMAGE_SECTIONS = (
    ("gates", "Gate activations"),
    ("samples", "Samples and reconstructions"),
    ("other", "Other figures"),
)
CSS = """
:root{--fg:#1f2933;--muted:#66727f;--line:#e4e7eb;--soft:#f6f8fa;--accent:#2563eb}
*{box-sizing:border-box}
body{margin:0;background:#fff;color:var(--fg);
 font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:1200px;margin:0 auto;padding:28px 32px 72px}
h1{font-size:26px;margin:0 0 4px;letter-spacing:-.01em}
h2{font-size:19px;margin:40px 0 14px;padding-bottom:6px;border-bottom:1px solid var(--line)}
h3{font-size:14px;margin:18px 0 8px;color:var(--muted);font-weight:600}
.meta{color:var(--muted);font-size:13px;margin:0 0 14px}
nav{margin:10px 0 0;font-size:14px;display:flex;flex-wrap:wrap;gap:4px 18px}
nav a{color:var(--accent);text-decoration:none;white-space:nowrap}
nav a:hover{text-decoration:underline}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:14px}
th,td{border-bottom:1px solid var(--line);padding:6px 14px 6px 0;text-align:left;vertical-align:top}
th{font-weight:600;color:#374151}
thead th{border-bottom:2px solid var(--line)}
td.num{font-variant-numeric:tabular-nums;text-align:right;white-space:nowrap}
td.num+td.num{padding-left:14px}
td code,th code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.best{color:var(--muted);font-size:12px;font-weight:400}
.win{font-weight:700;color:#047857}
tr.diff td{background:#fffbeb}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:16px}
.cmp{display:grid;gap:16px;margin-bottom:16px}
figure{margin:0;border:1px solid var(--line);border-radius:8px;padding:10px;background:#fff}
figure img{display:block;max-width:100%;height:auto;margin:0 auto}
img.px{image-rendering:pixelated}
figcaption{font-size:12px;color:var(--muted);margin-top:6px;overflow-wrap:anywhere}
.missing{border:1px dashed var(--line);border-radius:8px;color:var(--muted);font-size:13px;
 display:flex;align-items:center;justify-content:center;min-height:80px}
details{border:1px solid var(--line);border-radius:8px;padding:8px 14px;margin:10px 0}
summary{cursor:pointer;font-weight:600}
pre{background:var(--soft);padding:12px;border-radius:6px;overflow:auto;font-size:12.5px;
 line-height:1.4}
.notes li{color:#92400e}
"""


class ReportError(ValueError):
    """A run folder that cannot be reported: missing, empty (no config.json) or unreadable."""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _md(value: object) -> str:
    text = html.escape(str(value), quote=False).replace("\n", " ")
    return re.sub(r"([\\`*_\[\]|#])", r"\\\1", text)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:60] or "x"


class _Page:
    """Sections collected as HTML and Markdown side by side."""

    def __init__(self, out: Path, runs: list[RunData]):
        self.out, self.runs = out, runs
        self.html: list[str] = []
        self.md: list[str] = []
        self.toc: list[tuple[str, str]] = []

    def section(self, anchor: str, title: str) -> None:
        self.toc.append((anchor, title))
        self.html.append(f'<h2 id="{anchor}">{_e(title)}</h2>')
        self.md.append(f"\n## {_md(title)}\n")

    def figure(
        self, rel: str, text: str, size: tuple[int, int] | None = None, caption: bool = True
    ) -> str:
        """One image (``text``: its alt text and caption); returns HTML for callers to place."""
        attrs, cls = "", ""
        if size is not None:
            w, h = size
            scale = max(1, min(8, 240 // w)) if w < 240 else 1
            attrs = f' width="{w * scale}" height="{h * scale}"'
            cls = ' class="px"' if scale > 1 else ""
        return (
            f'<figure><img src="{_e(rel)}" alt="{_e(text)}"{attrs}{cls}>'
            + (f"<figcaption>{_e(text)}</figcaption>" if caption else "")
            + "</figure>"
        )

    def md_image(self, rel: str, caption: str) -> None:
        self.md.append(f"![{_md(caption)}]({rel})\n")

    def table(self, header: list[str], rows: list[list[str]], md_rows: list[list[str]],
              row_classes: list[str] | None = None) -> None:  # fmt: skip
        """``rows`` are ready-made ``<td>`` cells; ``md_rows`` plain (already escaped) text."""
        head = "".join(f"<th>{_e(h)}</th>" for h in header)
        body = "".join(
            f'<tr class="{(row_classes or [""] * len(rows))[i]}">{"".join(r)}</tr>'
            for i, r in enumerate(rows)
        )
        self.html.append(
            f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>"
        )
        self.md.append("| " + " | ".join(_md(h) for h in header) + " |")
        self.md.append("|" + "---|" * len(header))
        self.md.extend("| " + " | ".join(r) + " |" for r in md_rows)
        self.md.append("")


def _default_out(paths: list[Path]) -> Path:
    if len(paths) == 1:
        return paths[0] / "report"
    return Path(os.path.commonpath([p.resolve() for p in paths])) / "report"


def _runs_section(page: _Page) -> None:
    page.section("runs", "Runs and final metrics")
    runs = page.runs
    rows = [
        [f"<td><b>{_e(r.name)}</b></td>", f"<td><code>{_e(r.path)}</code></td>",
         f'<td class="num">{len(r.records)}</td>', f'<td class="num">{len(r.images)}</td>']
        for r in runs
    ]  # fmt: skip
    md_rows = [[_md(r.name), _md(r.path), str(len(r.records)), str(len(r.images))] for r in runs]
    page.table(["run", "folder", "metric records", "figures"], rows, md_rows)
    keys = []
    for split in ("val", "test", "train"):
        metrics = {
            m for r in runs for m, s in r.series.items()
            if split in s and r.plottable(m) and m not in TABLE_SKIP
        }  # fmt: skip
        keys += [(split, m) for m in sorted(metrics, key=_metric_order)]
    if not keys:
        page.html.append('<p class="meta">No train/val/test metrics were recorded.</p>')
        page.md.append("No train/val/test metrics were recorded.\n")
        return
    rows, md_rows = [], []
    for split, metric in keys:
        lower = lower_is_better(metric)
        lasts = [r.last(split, metric) for r in runs]
        finite = [v for v in lasts if v is not None and math.isfinite(v)]
        contested = lower is not None and len(finite) > 1 and len(set(finite)) > 1
        winner = (min if lower else max)(finite) if contested else None
        cells, md_cells = (
            [f"<td><code>{_e(split)} {_e(metric)}</code></td>"],
            [_md(f"{split} {metric}")],
        )
        for run, last in zip(runs, lasts, strict=True):
            best = run.best(split, metric) if split != "train" else None
            text = "—" if last is None else fmt(last)
            extra = ""
            if best is not None and best[1] != last:
                extra = f"best {fmt(best[1])} @ {run.xlabel} {fmt(best[0])}"
            cls = " win" if winner is not None and last == winner else ""
            cells.append(
                f'<td class="num{cls}">{_e(text)}'
                + (f'<br><span class="best">{_e(extra)}</span>' if extra else "")
                + "</td>"
            )
            md_text = _md(text) + (f" ({_md(extra)})" if extra else "")
            md_cells.append(f"**{md_text}**" if cls else md_text)
        rows.append(cells)
        md_rows.append(md_cells)
    page.html.append("<h3>Final metrics: last value, and the best one where it differs</h3>")
    page.md.append("### Final metrics: last value, and the best one where it differs\n")
    page.table(["metric", *[r.name for r in runs]], rows, md_rows)


def _metric_order(metric: str) -> tuple[int, str]:
    return (CURVE_FIRST.index(metric) if metric in CURVE_FIRST else len(CURVE_FIRST), metric)


def _config_section(page: _Page) -> None:
    page.section("config", "Configuration")
    flat = [r.flat_config() for r in page.runs]
    keys = sorted(dict.fromkeys(k for f in flat for k in f), key=lambda k: k == "argv")
    rows, md_rows, classes = [], [], []
    for key in keys:
        values = [f.get(key, "—") for f in flat]
        differs = len(page.runs) > 1 and len(set(values)) > 1
        classes.append("diff" if differs else "")
        rows.append([f'<td class="key"><code>{_e(key)}</code></td>']
                    + [f"<td><code>{_e(v)}</code></td>" for v in values])  # fmt: skip
        md_rows.append([f"**{_md(key)}**" if differs else _md(key), *[_md(v) for v in values]])
    note = " (rows that differ between runs are {})" if len(page.runs) > 1 else ""
    page.html.append(
        f"<details><summary>{len(keys)} settings{note.format('highlighted')}</summary>"
    )
    page.md.append(f"<details><summary>{len(keys)} settings{note.format('in bold')}</summary>\n")
    page.table(["key", *[r.name for r in page.runs]], rows, md_rows, classes)
    page.html.append("</details>")
    page.md.append("</details>\n")


def _curves_section(page: _Page, plots: Path) -> None:
    metrics = sorted({m for r in page.runs for m in r.series if r.plottable(m)}, key=_metric_order)
    if not metrics:
        return
    page.section("curves", "Training curves")
    xlabel = " / ".join(dict.fromkeys(r.xlabel for r in page.runs))
    figures = []
    for i, metric in enumerate(metrics):
        curves = {r.name: r.series[metric] for r in page.runs if metric in r.series}
        values = [y for s in curves.values() for pts in s.values() for _, y in pts if y == y]
        log_y = metric in LOG_METRICS and bool(values) and min(values) > 0
        path = plot_curves(curves, metric, plots / f"curve-{i}-{_slug(metric)}.png",
                           xlabel=xlabel, log_y=log_y)  # fmt: skip
        rel = path.relative_to(page.out).as_posix()
        figures.append(page.figure(rel, metric, caption=False))
        page.md_image(rel, metric)
    page.html.append(f'<div class="grid">{"".join(figures)}</div>')
    if len(page.runs) > 1:
        page.html.append('<p class="meta">Colour: run; line style: train solid, val dashed, '
                         "test dotted.</p>")  # fmt: skip


def _row(page: _Page, items: list[str]) -> None:
    if len(items) == 1:
        page.html.append(f'<div class="grid">{items[0]}</div>')
        return
    style = f"grid-template-columns:repeat({len(items)},minmax(0,1fr))"
    page.html.append(f'<div class="cmp" style="{style}">{"".join(items)}</div>')


def _analysis_sections(page: _Page, plots: Path) -> None:
    runs = page.runs
    if any(r.confusion for r in runs):
        page.section("confusion", "Confusion matrix")
        items = []
        for i, r in enumerate(runs):
            if r.confusion is None:
                items.append(f'<div class="missing">{_e(r.name)}: no confusion.json</div>')
                continue
            labels, matrix = r.confusion
            path = plot_confusion(labels, matrix, plots / f"confusion-{i}-{_slug(r.name)}.png",
                                  title=r.name)  # fmt: skip
            rel = path.relative_to(page.out).as_posix()
            items.append(page.figure(rel, f"{r.name}: confusion matrix (rows: true class)"))
            page.md_image(rel, f"{r.name}: confusion matrix")
        _row(page, items)
    for key, anchor, title, plot, name in (
        ("robustness", "robustness", "Robustness to adversarial examples", plot_robustness,
         "robustness.png"),
        ("gradients", "gradients", "Gradient norm through time", plot_gradients, "gradients.png"),
    ):  # fmt: skip
        curves = {r.name: getattr(r, key) for r in runs if getattr(r, key)}
        if curves:
            page.section(anchor, title)
            path = plot(curves, plots / name)
            rel = path.relative_to(page.out).as_posix()
            page.html.append(f'<div class="grid">{page.figure(rel, title, caption=False)}</div>')
            page.md_image(rel, title)


def _image_sections(page: _Page) -> None:
    assets = page.out / ASSETS
    for category, title in IMAGE_SECTIONS:
        found = {
            r.name: {str(p): p for p in r.images if r.category(p) == category} for r in page.runs
        }
        keys = list(dict.fromkeys(k for f in found.values() for k in f))
        if not keys:
            continue
        page.section(f"img-{category}", title)
        figures = []
        for k, key in enumerate(keys):
            row = []
            for i, r in enumerate(page.runs):
                rel_src = found[r.name].get(key)
                if rel_src is None:
                    row.append(f'<div class="missing">{_e(r.name)}: not in this run</div>')
                    continue
                name = f"{category}-{k}-{_slug('__'.join(rel_src.with_suffix('').parts))}.png"
                dest = assets / f"{i}-{_slug(r.name)}" / name
                try:
                    atomic_write_bytes(dest, (r.path / rel_src).read_bytes())
                except OSError as err:  # unreadable since it was found
                    r.warnings.append(f"{rel_src.as_posix()}: not copied ({err})")
                    row.append(f'<div class="missing">{_e(r.name)}: unreadable</div>')
                    continue
                rel = dest.relative_to(page.out).as_posix()
                caption = key if len(page.runs) == 1 else f"{r.name}: {key}"
                row.append(page.figure(rel, caption, r.image_sizes.get(rel_src)))
                page.md_image(rel, caption)
            if len(page.runs) == 1:
                figures.extend(row)
            else:
                _row(page, row)
        if figures:
            page.html.append(f'<div class="grid">{"".join(figures)}</div>')


def _text_sections(page: _Page) -> None:
    summaries = [(r.name, r.summary) for r in page.runs if r.summary]
    if summaries:
        page.section("summary", "Model summary")
        for name, text in summaries:
            page.html.append(
                f"<details><summary>{_e(name)}</summary><pre>{_e(text)}</pre></details>"
            )
            page.md.append(f"<details><summary>{_md(name)}</summary>\n\n<pre>{html.escape(text)}"
                           "</pre>\n</details>\n")  # fmt: skip
    notes = [(r.name, w) for r in page.runs for w in r.warnings]
    if notes:
        page.section("notes", "Notes: files that could not be used")
        items = "".join(f"<li><b>{_e(n)}</b>: {_e(w)}</li>" for n, w in notes)
        page.html.append(f'<ul class="notes">{items}</ul>')
        page.md.extend(f"- **{_md(n)}**: {_md(w)}" for n, w in notes)


def render_report(
    run_dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike | None = None,
    title: str | None = None,
) -> Path:  # fmt: skip
    """Write ``report.html`` and ``report.md`` for one run folder or several side by side.

    ``out_dir`` defaults to ``<run>/report`` for one run and ``<common parent>/report`` for
    several. Figures and copied PNGs go to ``<out_dir>/report_files/``. Returns the path of
    ``report.html``. Raises :class:`ReportError` when a run folder is missing or has no
    readable ``config.json``.
    """
    if isinstance(run_dirs, (str, os.PathLike)) or not run_dirs:
        raise ReportError(f"`run_dirs` must be a non-empty list of run folders, got {run_dirs!r}")
    paths = [Path(p) for p in run_dirs]
    out = Path(out_dir) if out_dir is not None else _default_out(paths)
    exclude = (out.resolve(), (out / ASSETS).resolve())
    runs = [load_run(p, exclude=exclude, error=ReportError) for p in paths]
    for i, run in enumerate(runs):  # two folders called "lstm" in different places
        if any(r.name == run.name for r in runs[:i]):
            run.name = f"{run.name} ({i + 1})"
    title = title or "rnnlab report: " + " vs ".join(r.name for r in runs[:4]) + (
        " …" if len(runs) > 4 else ""
    )
    page = _Page(out, runs)
    plots = out / ASSETS / "plots"
    _runs_section(page)
    _config_section(page)
    _curves_section(page, plots)
    _analysis_sections(page, plots)
    _image_sections(page)
    _text_sections(page)
    stamp = time.strftime("%Y-%m-%d %H:%M")
    meta = f"{len(runs)} run{'s' if len(runs) > 1 else ''} · generated {stamp} by rnnlab report"
    nav = " ".join(f'<a href="#{a}">{_e(t)}</a>' for a, t in page.toc)
    doc = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>"
        f'<h1>{_e(title)}</h1><p class="meta">{_e(meta)}</p><nav>{nav}</nav>'
        + "\n".join(page.html)
        + "</main></body></html>\n"
    )
    atomic_write_bytes(
        out / "report.md", f"# {_md(title)}\n\n{_md(meta)}\n{chr(10).join(page.md)}\n".encode()
    )
    return atomic_write_bytes(out / "report.html", doc.encode("utf-8"))


def report_main(argv: Sequence[str] | None = None) -> int:
    """``rnnlab report RUN [RUN ...] [--out DIR] [--title T]``: print the page's path.

    Exit codes: 0 written; 2 bad arguments or a missing/empty run folder; 1 could not write.
    """
    parser = argparse.ArgumentParser(
        prog="rnnlab report",
        description="Render a static HTML (and Markdown) report for one or more run folders.",
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run folder(s)")
    parser.add_argument(
        "--out", type=Path, default=None, metavar="DIR",
        help="output folder (default: RUN/report, or the runs' common parent)",
    )  # fmt: skip
    parser.add_argument("--title", default=None, help="page title")
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        page = render_report(args.runs, args.out, args.title)
    except ReportError as err:
        print(f"rnnlab report: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"rnnlab report: error: could not write the report: {err}", file=sys.stderr)
        return 1
    print(page)
    return 0
