"""The sections of a run report (:mod:`rnnlab.evaluation.report`), each drawn for a
:class:`~rnnlab.evaluation.report_page.Scope`: the whole page, or one group of runs.

A section shows only what its runs have: a run without a confusion matrix is simply not in
the confusion section, and a section no run has is left out (no placeholders). Curves are
drawn per family of runs with the same metrics (a classifier's loss never shares axes with
a regressor's MSE) and only when some run has two or more points of them.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from . import report_images as images
from .plots import plot_confusion, plot_curves, plot_gradients, plot_robustness
from .report_data import RunData, fmt, lower_is_better
from .report_page import ASSETS, Page, Scope, esc, md, slug

CURVE_FIRST = ("loss", "accuracy")
LOG_METRICS = ("lr", "grad_norm")
TABLE_SKIP = ("lr", "seconds", "grad_norm")  # settings and diagnostics, not results
MAX_COLUMNS = 5  # more runs than this: one row per run instead of one column
IMAGE_SECTIONS = (("gates", "Gate activations"), ("samples", "Samples and reconstructions"),
                  ("other", "Other figures"))  # fmt: skip
DRAWN_FROM_DATA = {"confusion.png": "confusion", "robustness.png": "robustness",
                   "gradients.png": "gradients"}  # the report draws these itself  # fmt: skip


def _metric_order(metric: str) -> tuple[int, str]:
    return (CURVE_FIRST.index(metric) if metric in CURVE_FIRST else len(CURVE_FIRST), metric)


def _folder(page: Page, run: RunData) -> str:
    return os.path.relpath(run.path.resolve(), page.root)


def _contents(run: RunData) -> str:
    have = [("summary", run.summary), ("confusion", run.confusion),
            ("robustness", run.robustness), ("gradients", run.gradients)]  # fmt: skip
    parts = [name for name, value in have if value]
    shown = len(_shown_images(run))
    return ", ".join(parts + ([f"{shown} figure{'s' * (shown > 1)}"] if shown else [])) or "—"


def runs_table(page: Page, scope: Scope) -> None:
    """Which runs this scope shows, where they are and what each holds."""
    rows, md_rows = [], []
    for r in scope.runs:
        xs = {x for s in r.series.values() for pts in s.values() for x, _ in pts}
        n = f"{len(xs)}" if r.xlabel == "epoch" else f"{len(xs)} {r.xlabel}s"
        n = n if xs else "—"
        folder, contents = _folder(page, r), _contents(r)
        rows.append([f"<td><b>{esc(r.name)}</b></td>", f"<td><code>{esc(folder)}</code></td>",
                     f"<td>{esc(contents)}</td>", f'<td class="num">{esc(n)}</td>'])  # fmt: skip
        md_rows.append([md(r.name), md(folder), md(contents), md(n)])
    page.table(["run", "folder", "holds", "epochs"], rows, md_rows, numeric_from=3)


def _metric_keys(runs: list[RunData]) -> list[tuple[str, str]]:
    keys = []
    for split in ("test", "val", "train"):
        metrics = {m for r in runs for m, s in r.series.items()
                   if split in s and r.plottable(m) and m not in TABLE_SKIP}  # fmt: skip
        keys += [(split, m) for m in sorted(metrics, key=_metric_order)]
    return keys


def metrics_table(page: Page, scope: Scope) -> None:
    """Last value of every split/metric (and the best where it differs), winner in green.
    Runs are columns when there are at most MAX_COLUMNS of them, else rows."""
    keys = _metric_keys(scope.runs)
    runs = [r for r in scope.runs if _metric_keys([r])]
    if not keys:
        return
    sub = Scope(scope.runs, level=3, prefix=scope.prefix)  # under "Runs", never in the toc
    page.heading(sub, "metrics", "Final metrics: last value (best, where it differs)")
    cells: dict[tuple[int, int], tuple[str, str]] = {}
    for k, (split, metric) in enumerate(keys):
        lasts = [r.last(split, metric) for r in runs]
        finite = [v for v in lasts if v is not None and math.isfinite(v)]
        lower = lower_is_better(metric)
        contested = lower is not None and len(set(finite)) > 1
        winner = (min if lower else max)(finite) if contested else None
        for i, (run, last) in enumerate(zip(runs, lasts, strict=True)):
            best = run.best(split, metric) if split != "train" else None
            text = "—" if last is None else fmt(last)
            extra = ""
            if best is not None and best[1] != last:
                extra = f"best {fmt(best[1])} @ {run.xlabel} {fmt(best[0])}"
            cls = " win" if winner is not None and last == winner else ""
            html_cell = (f'<td class="num{cls}">{esc(text)}'
                         + (f'<br><span class="best">{esc(extra)}</span>' if extra else "")
                         + "</td>")  # fmt: skip
            md_text = md(text) + (f" ({md(extra)})" if extra else "")
            cells[k, i] = (html_cell, f"**{md_text}**" if cls else md_text)
    names = [f"{s} {m}" for s, m in keys]
    if len(runs) <= MAX_COLUMNS:
        header = ["metric", *[r.name for r in runs]]
        rows = [[f"<td><code>{esc(n)}</code></td>"] + [cells[k, i][0] for i in range(len(runs))]
                for k, n in enumerate(names)]  # fmt: skip
        md_rows = [[md(n)] + [cells[k, i][1] for i in range(len(runs))]
                   for k, n in enumerate(names)]  # fmt: skip
    else:
        header = ["run", *names]
        rows = [[f"<td><b>{esc(r.name)}</b></td>"] + [cells[k, i][0] for k in range(len(keys))]
                for i, r in enumerate(runs)]  # fmt: skip
        md_rows = [[md(r.name)] + [cells[k, i][1] for k in range(len(keys))]
                   for i, r in enumerate(runs)]  # fmt: skip
    page.table(header, rows, md_rows)


def config_section(page: Page, scope: Scope) -> None:
    """Settings, collapsed: those that differ between runs (one column per run), then the
    shared ones as key/value pairs."""
    flat = [r.flat_config() for r in scope.runs]
    keys = sorted(dict.fromkeys(k for f in flat for k in f), key=lambda k: k == "argv")
    if not keys:
        return
    values = {k: [f.get(k, "—") for f in flat] for k in keys}
    # a key only some runs have (a run that trains nothing) differs only if its values do
    differ = [k for k in keys if len({f[k] for f in flat if k in f}) > 1]
    shared = [k for k in keys if k not in differ]
    partial = any(k not in f for k in shared for f in flat)
    note = f", {len(differ)} differ between runs" if len(scope.runs) > 1 else ""
    page.html.append(f"<details><summary>Configuration: {len(keys)} settings{esc(note)}"
                     "</summary>")  # fmt: skip
    page.md.append(f"<details><summary>Configuration: {len(keys)} settings{md(note)}</summary>\n")
    code = "<td><code>{}</code></td>".format
    if differ:
        rows = [[code(esc(k))] + [code(esc(v)) for v in values[k]] for k in differ]
        md_rows = [[md(k)] + [md(v) for v in values[k]] for k in differ]
        page.table(["differs", *[r.name for r in scope.runs]], rows, md_rows,
                   numeric_from=len(scope.runs) + 1, cls="cfg")  # fmt: skip
    if shared:
        first = {k: next(f[k] for f in flat if k in f) for k in shared}
        rows = [[code(esc(k)), code(esc(first[k]))] for k in shared]
        md_rows = [[md(k), md(first[k])] for k in shared]
        same = "value (every run that sets it)" if partial else "value (all runs)"
        header = ["setting", "value" if len(scope.runs) == 1 else same]
        page.table(header, rows, md_rows, numeric_from=2, cls="cfg")
    page.html.append("</details>")
    page.md.append("</details>\n")


def _worth_plotting(runs: list[RunData], metric: str) -> bool:
    """Some run has >= 2 finite points of it; a learning rate only when it changes."""
    series = [pts for r in runs for pts in r.series.get(metric, {}).values()]
    points = [[y for _, y in pts if math.isfinite(y)] for pts in series]
    if metric == "lr":
        return any(len(set(p)) > 1 for p in points)
    return any(len(p) >= 2 for p in points)


def _families(runs: list[RunData]) -> list[list[RunData]]:
    """Runs grouped by the set of results they record (diagnostics aside), in page order."""
    families: dict[frozenset, list[RunData]] = {}
    for r in runs:
        sig = frozenset(m for m in r.series if r.plottable(m) and m not in LOG_METRICS)
        if sig:
            families.setdefault(sig, []).append(r)
    return list(families.values())


def _merge_identical(
    curves: dict[str, dict[str, list[tuple[float, float]]]],
) -> tuple[dict[str, dict[str, list[tuple[float, float]]]], list[list[str]]]:
    """Runs whose curves are equal point for point (e.g. the same learning-rate schedule)
    drawn once, as ``"a = b"``, so no line hides under another; returns the groups too."""
    groups: dict[str, list[str]] = {}
    for name, series in curves.items():
        key = repr(sorted(series.items()))
        groups.setdefault(key, []).append(name)
    merged = {" = ".join(names): curves[names[0]] for names in groups.values()}
    return merged, [names for names in groups.values() if len(names) > 1]


def curves_section(page: Page, scope: Scope, plots: Path) -> None:
    figures = []
    families = _families(scope.runs)
    for f, family in enumerate(families):
        metrics = sorted({m for r in family for m in r.series if r.plottable(m)},
                         key=_metric_order)  # fmt: skip
        xlabel = " / ".join(dict.fromkeys(r.xlabel for r in family))
        names = ", ".join(r.name for r in family)
        for metric in (m for m in metrics if _worth_plotting(family, m)):
            curves, same = _merge_identical(
                {r.name: r.series[metric] for r in family if metric in r.series}
            )
            values = [y for s in curves.values() for pts in s.values() for _, y in pts if y == y]
            log_y = metric in LOG_METRICS and bool(values) and min(values) > 0
            name = f"{scope.prefix}curve-{f}-{slug(metric)}.png"
            path = plot_curves(curves, metric, plots / name, xlabel=xlabel, log_y=log_y)
            splits = {s for c in curves.values() for s in c if s}
            style = ("; train solid, val dashed, test dotted"
                     if len(splits) > 1 else "")  # fmt: skip
            who = names if len(families) > 1 or len(curves) > 1 else None
            caption = f"{metric} per {xlabel}{' (log scale)' if log_y else ''}{style}"
            if same:
                caption += "; " + "; ".join(f"{' and '.join(g)} coincide (one line)" for g in same)
            figures.append(page.figure(page.rel(path), caption, who=who))
    if figures:
        page.heading(scope, "curves", "Training curves")
        page.grid(figures)


MAX_PER_CLASS = 50  # more classes than this: the matrix alone


def _per_class_table(page: Page, run: RunData, named: bool) -> None:
    """Per-class precision, recall, F1 and support from the run's confusion matrix (as
    scikit-learn's ``classification_report``), collapsed, with the two averages."""
    from .classification import classification_report

    labels, matrix = run.confusion
    if len(labels) > MAX_PER_CLASS:
        return
    report = classification_report(matrix, labels)
    who = f" — {run.name}" if named else ""
    title = f"Per-class precision, recall and F1 (test){who}; accuracy {fmt(report['accuracy'])}"
    page.html.append(f"<details><summary>{esc(title)}</summary>")
    page.md.append(f"<details><summary>{md(title)}</summary>\n")
    rows, md_rows = [], []
    for name in [*labels, "macro avg", "weighted avg"]:
        r = report[name]
        values = [fmt(r["precision"]), fmt(r["recall"]), fmt(r["f1"]), str(r["support"])]
        rows.append([f"<td>{esc(name)}</td>"] + [f'<td class="num">{v}</td>' for v in values])
        md_rows.append([md(name), *values])
    page.table(["class", "precision", "recall", "F1", "support"], rows, md_rows)
    page.html.append("</details>")
    page.md.append("</details>\n")


def analysis_sections(page: Page, scope: Scope, plots: Path) -> None:
    """Confusion matrices (one per run that has one), robustness and gradient curves (one
    plot for all the scope's runs that have them)."""
    figures = []
    for r in (r for r in scope.runs if r.confusion):
        labels, matrix = r.confusion
        path = plot_confusion(labels, matrix, plots / f"{scope.prefix}confusion-"
                              f"{page.slot[id(r)]}.png", title=r.name)  # fmt: skip
        caption = "confusion matrix: rows true class, columns predicted, colour = row fraction"
        figures.append(page.figure(page.rel(path), caption, who=r.name))
    if figures:
        page.heading(scope, "confusion", "Confusion matrix")
        page.grid(figures)
        for r in (r for r in scope.runs if r.confusion):
            _per_class_table(page, r, len(figures) > 1)
    _anomaly_section(page, scope, plots)
    for key, title, plot, caption in (
        ("robustness", "Robustness to adversarial examples", plot_robustness,
         "accuracy under attack against the perturbation size ε, per model and attack"),
        ("gradients", "Gradient norm through time", plot_gradients,
         "‖dL/dh_t‖ at each time step t (log scale): how far back the loss's gradient reaches"),
    ):  # fmt: skip
        curves = {r.name: getattr(r, key) for r in scope.runs if getattr(r, key)}
        if curves:
            page.heading(scope, key, title)
            path = plot(curves, plots / f"{scope.prefix}{key}.png")
            page.grid([page.figure(page.rel(path), caption, who=", ".join(curves))])


def _anomaly_section(page: Page, scope: Scope, plots: Path) -> None:
    """Series, anomaly scores, threshold and labelled windows of each seq-anomaly run."""
    from .series_plots import plot_series_anomaly, read_anomaly_scores

    figures = []
    for r in (r for r in scope.runs if r.anomaly is not None):
        try:
            data = read_anomaly_scores(r.anomaly)
        except (OSError, ValueError) as err:
            r.warnings.append(f"anomaly_scores.csv: not plotted ({err})")
            continue
        path = plot_series_anomaly(data, plots / f"{scope.prefix}anomaly-{page.slot[id(r)]}.png",
                                   title=r.name)  # fmt: skip
        caption = "series (labelled windows shaded), per-step anomaly score and threshold"
        figures.append(page.figure(page.rel(path), caption, who=r.name))
    if figures:
        page.heading(scope, "anomaly", "Anomaly scores")
        page.grid(figures)


def _shown_images(run: RunData) -> list[Path]:
    drawn = {name for name, attr in DRAWN_FROM_DATA.items() if getattr(run, attr)}
    return [p for p in run.images if p.name not in drawn]


def _earlier_strip(page: Page, run: RunData, series: images.Series, base: str) -> str:
    """The earlier epochs of a series behind one ``<details>``: a strip of at most
    ``images.STRIP`` evenly spaced thumbnails (HTML); listed as links in the Markdown."""
    if not series.earlier:
        return ""
    picked = images.spaced(series.earlier)
    cells, links = [], []
    for epoch, rel in picked:
        dest = page.out / ASSETS / page.slot[id(run)] / f"{base}-epoch{epoch}.png"
        try:
            w, h = images.enlarge(run.path / rel, dest, width=images.THUMB)
        except (OSError, ValueError) as err:
            run.warnings.append(f"{rel.as_posix()}: not copied ({err})")
            continue
        src = page.rel(dest)
        cells.append(f'<figure><img src="{esc(src)}" alt="epoch {epoch}" width="{w}" '
                     f'height="{h}"><figcaption>epoch {epoch}</figcaption></figure>')  # fmt: skip
        links.append(f"[epoch {epoch}]({src})")
    if not cells:
        return ""
    n = len(series.earlier)
    shown = f"{len(cells)} of {n} shown, evenly spaced" if len(cells) < n else f"{n}"
    page.md.append(f"Earlier epochs ({shown}): " + ", ".join(links) + "\n")
    return (f'<details class="epochs"><summary>Earlier epochs ({esc(shown)})</summary>'
            f'<div class="strip">{"".join(cells)}</div></details>')  # fmt: skip


def image_sections(page: Page, scope: Scope) -> None:
    """The runs' own PNGs, copied beside the page, by category: per figure the final epoch
    large (small pixel grids enlarged, labelled where the layout is known), the earlier
    epochs behind one control."""
    assets = page.out / ASSETS
    for category, title in IMAGE_SECTIONS:
        figures = []
        for r in scope.runs:
            mine = [p for p in _shown_images(r) if r.category(p) == category]
            for k, series in enumerate(images.series_of(mine)):
                base = f"{category}-{k}-{slug(series.key.replace('/', '__'))}"
                dest = assets / page.slot[id(r)] / f"{base}.png"
                rows, cells, nrow = images.grid_labels(r, series.final)
                try:
                    size = images.enlarge(r.path / series.final, dest, row_labels=rows,
                                          cell_labels=cells, nrow=nrow)  # fmt: skip
                except (OSError, ValueError) as err:  # unreadable since it was found
                    r.warnings.append(f"{series.final.as_posix()}: not copied ({err})")
                    continue
                who = r.name if len(scope.runs) > 1 else None
                epoch = f", epoch {series.epoch}" if series.epoch is not None else ""
                if series.earlier:
                    epoch += " (the last saved)"
                caption = f"{images.describe(series.final)}{epoch} ({series.final.as_posix()})"
                figure = page.figure(page.rel(dest), caption, size, who=who)
                strip = _earlier_strip(page, r, series, base)
                figures.append(
                    figure.replace("</figure>", strip + "</figure>") if strip else figure
                )
        if figures:
            page.heading(scope, f"img-{category}", title)
            page.grid(figures)


def text_section(page: Page, scope: Scope) -> None:
    """Generated text (language-model runs): the last epoch's samples at each temperature."""
    found = [(r.name, rel, text) for r in scope.runs for rel, text in r.texts]
    if not found:
        return
    page.heading(scope, "text", "Generated text")
    for name, rel, text in found:
        page.html.append(f"<p>{esc(name)}: {esc(rel.as_posix())}</p>")
        page.md.append(f"{md(name)}: `{rel.as_posix()}`\n")
        page.pre(text)


def summaries_section(page: Page, scope: Scope, skip: str = "") -> None:
    """Each run's summary.txt, collapsed (one that only repeats ``skip`` is left out)."""
    found = [(r.name, r.summary) for r in scope.runs
             if r.summary and r.summary.strip() != skip.strip()]  # fmt: skip
    if not found:
        return
    page.heading(scope, "summary", "Model summaries" if len(found) > 1 else "Model summary")
    page.html.append('<div class="pair">')
    for name, text in found:
        page.html.append(f"<details><summary>{esc(name)}</summary>")
        page.md.append(f"<details><summary>{md(name)}</summary>\n")
        page.pre(text)
        page.html.append("</details>")
        page.md.append("</details>\n")
    page.html.append("</div>")
