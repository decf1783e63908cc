"""Run reports: read run folders and write one static page, ``report.html`` and ``report.md``.

``render_report([run, ...])`` reads what training left in each run folder (only
``config.json`` is required; everything else is optional and read defensively):
``metrics.jsonl`` (``{"split": "val", "loss": ..}`` records or the loop's ``val_loss`` form),
``summary.txt``, ``confusion.json``, ``robustness.json``, ``gradients.json`` and every PNG
(``samples/``, ``gates.png``, ``gates/``, others), via :mod:`rnnlab.evaluation.report_data`.
It draws curves and heatmaps (:mod:`rnnlab.evaluation.plots`), copies the PNGs beside the
page under ``report_files/`` and links them relatively: no server, no external CSS, JS or
fonts. Several runs are compared in one table and shared plots; each artefact is shown only
for the runs that have it (:mod:`rnnlab.evaluation.report_sections`).

With ``groups`` (section title -> runs, in order) the page has a table of contents and one
section per group holding only that group's runs, with ``notes[title]`` (preformatted text,
e.g. what the tour printed for that part) at its top. Everything read from disk is
HTML-escaped; files that cannot be read become notes at the end of the page, never a crash.
Reports never train. ``rnnlab report`` (:mod:`rnnlab.cli.report`) is the command line.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from . import report_sections as sections
from .plots import atomic_write_bytes
from .report_data import RunData, load_run
from .report_page import ASSETS, CSS, Page, Scope, esc, md, slug

__all__ = ["ReportError", "RunData", "load_run", "render_report"]

OTHER_GROUP = "Other runs"


class ReportError(ValueError):
    """A run folder that cannot be reported: missing, empty (no config.json) or unreadable;
    or ``groups``/``notes`` that do not fit together."""


def _default_out(paths: list[Path]) -> Path:
    if len(paths) == 1:
        return paths[0] / "report"
    return Path(os.path.commonpath([p.resolve() for p in paths])) / "report"


def _scope(page: Page, scope: Scope, plots: Path, note: str = "") -> None:
    """Everything the scope's runs have, in reading order; nothing they lack."""
    if not scope.runs:
        return
    if scope.level == 2:  # the whole page: settings near the top, as section 2
        page.heading(scope, "runs", "Runs and final metrics")
    sections.runs_table(page, scope)
    sections.metrics_table(page, scope)
    if scope.level == 2:
        page.heading(scope, "config", "Configuration")
        sections.config_section(page, scope)
    sections.curves_section(page, scope, plots)
    sections.analysis_sections(page, scope, plots)
    sections.image_sections(page, scope)
    sections.text_section(page, scope)
    sections.summaries_section(page, scope, skip=note)
    if scope.level > 2:  # a group: its settings last, collapsed
        sections.config_section(page, scope)


SMOKE_FLAGS = {"--dry-run": "a few steps on synthetic data", "--quick": "shrunk to a smoke test"}


def _smoke_banner(runs: list[RunData]) -> str:
    """A warning for runs whose recorded command line (``config.json``'s argv) says they
    were smoke tests; empty when none was."""
    flagged = {flag: [r.name for r in runs if flag in map(str, r.argv or ())]
               for flag in SMOKE_FLAGS}  # fmt: skip
    parts = [f"{', '.join(names)} ran with {flag} ({SMOKE_FLAGS[flag]})"
             for flag, names in flagged.items() if names]  # fmt: skip
    if not parts:
        return ""
    return ("Not results: " + "; ".join(parts) + ". Their numbers test the plumbing; the "
            "models have not converged.")  # fmt: skip


def _warnings_section(page: Page) -> None:
    notes = [(r.name, w) for r in page.runs for w in r.warnings]
    if notes:
        page.heading(Scope(page.runs), "notes", "Notes: files that could not be used")
        items = "".join(f"<li><b>{esc(n)}</b>: {esc(w)}</li>" for n, w in notes)
        page.html.append(f'<ul class="notes">{items}</ul>')
        page.md.extend(f"- **{md(n)}**: {md(w)}" for n, w in notes)


def _resolve_groups(
    paths: list[Path], groups: Mapping[str, Sequence[str | os.PathLike]] | None,
    notes: Mapping[str, str] | None,
) -> tuple[list[Path], dict[str, list[int]] | None]:  # fmt: skip
    """All run folders (``run_dirs`` first, then any only named in a group) and each group's
    runs as indices into them; runs in no group end up in a last ``Other runs`` group."""
    if groups is None:
        if notes:
            raise ReportError("`notes` are shown at the top of their group: pass `groups` too")
        return paths, None
    if isinstance(groups, (str, os.PathLike)) or not isinstance(groups, Mapping):
        raise ReportError(f"`groups` must map section titles to run folders, got {groups!r}")
    unknown = [k for k in notes or {} if k not in groups]
    if unknown:
        raise ReportError(f"`notes` for {unknown} name no group; groups are {list(groups)}")
    index = {p.resolve(): i for i, p in enumerate(paths)}
    found: dict[str, list[int]] = {}
    for title, members in groups.items():
        if isinstance(members, (str, os.PathLike)):
            raise ReportError(f"group {title!r} must list run folders, got {members!r}")
        found[str(title)] = []
        for member in members:
            key = Path(member).resolve()
            if key not in index:
                index[key] = len(paths)
                paths = [*paths, Path(member)]
            if index[key] not in found[str(title)]:
                found[str(title)].append(index[key])
    grouped = {i for members in found.values() for i in members}
    rest = [i for i in range(len(paths)) if i not in grouped]
    if rest:
        found[OTHER_GROUP if OTHER_GROUP not in found else f"{OTHER_GROUP} (2)"] = rest
    return paths, found


def render_report(
    run_dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike | None = None,
    title: str | None = None, *, groups: Mapping[str, Sequence[str | os.PathLike]] | None = None,
    notes: Mapping[str, str] | None = None, banner: str | None = None,
) -> Path:  # fmt: skip
    """Write ``report.html`` and ``report.md`` for one run folder or several.

    ``groups`` (optional, ordered): section title -> run folders. The page then has a table
    of contents by group and one section per group with only its runs: a runs table, final
    metrics, curves, and the artefacts those runs have. Runs in ``run_dirs`` but in no group
    go to a last "Other runs" section; a group may be empty (its note alone is shown).
    ``notes`` (optional): group title -> preformatted text shown at the top of its section.
    ``banner`` (optional): a warning shown above everything, e.g. that the runs are a quick
    smoke test; without it, runs whose command line says ``--dry-run`` or ``--quick`` get one.

    ``out_dir`` defaults to ``<run>/report`` for one run and ``<common parent>/report`` for
    several. Figures and copied PNGs go to ``<out_dir>/report_files/``. Returns the path of
    ``report.html``. Raises :class:`ReportError` when a run folder is missing or has no
    readable ``config.json``, or when ``groups``/``notes`` are malformed.
    """
    if isinstance(run_dirs, (str, os.PathLike)) or not run_dirs:
        raise ReportError(f"`run_dirs` must be a non-empty list of run folders, got {run_dirs!r}")
    notes = dict(notes or {})
    paths, members = _resolve_groups([Path(p) for p in run_dirs], groups, notes)
    out = Path(out_dir) if out_dir is not None else _default_out(paths)
    exclude = (out.resolve(), (out / ASSETS).resolve())
    runs = [load_run(p, exclude=exclude, error=ReportError) for p in paths]
    for i, run in enumerate(runs):  # two folders called "lstm" in different places
        if any(r.name == run.name for r in runs[:i]):
            run.name = f"{run.name} ({i + 1})"
    title = title or "rnnlab report: " + " vs ".join(r.name for r in runs[:4]) + (
        " …" if len(runs) > 4 else ""
    )
    page = Page(out, runs)
    plots = out / ASSETS / "plots"
    if members is None:
        _scope(page, Scope(runs), plots)
    else:
        for g, (group, idx) in enumerate(members.items(), 1):
            anchor = f"g{g}-{slug(group)}"
            scope = Scope([runs[i] for i in idx], level=3, prefix=f"{anchor}-")
            page.toc.append((anchor, group))
            page.html.append(f'<section><h2 id="{esc(anchor)}">{esc(group)}</h2>')
            page.md.append(f'\n<a id="{esc(anchor)}"></a>\n\n## {md(group)}\n')
            if notes.get(group):
                page.pre(str(notes[group]).strip("\n"), cls="note")
            _scope(page, scope, plots, note=str(notes.get(group, "")))
            page.html.append("</section>")
    _warnings_section(page)
    banner = banner or _smoke_banner(runs)
    stamp = time.strftime("%Y-%m-%d %H:%M")
    meta = (f"{len(runs)} run{'s' if len(runs) > 1 else ''} in {page.root} · generated {stamp} "
            "by rnnlab report")  # fmt: skip
    if members is None:
        nav = "<nav>" + " ".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in page.toc) + "</nav>"
    else:
        runs_of = dict(zip((a for a, _ in page.toc), members.values(), strict=False))
        items = "".join(
            f'<li><a href="#{a}">{esc(t)}</a> <span class="runs">'
            + esc(", ".join(runs[i].name for i in runs_of.get(a, [])))
            + "</span></li>"
            for a, t in page.toc
        )
        nav = f'<nav class="toc"><b>Contents</b><ol>{items}</ol></nav>'
    doc = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>"
        f'<h1>{esc(title)}</h1><p class="meta">{esc(meta)}</p>'
        + (f'<p class="banner" role="alert">{esc(banner)}</p>' if banner else "")
        + nav
        + "\n".join(page.html)
        + "</main></body></html>\n"
    )
    toc_md = "".join(f"{i}. [{md(t)}](#{a})\n" for i, (a, t) in enumerate(page.toc, 1))
    warn = f"> **{md(banner)}**\n\n" if banner else ""
    atomic_write_bytes(
        out / "report.md",
        f"# {md(title)}\n\n{md(meta)}\n\n{warn}{toc_md}{chr(10).join(page.md)}\n".encode(),
    )
    return atomic_write_bytes(out / "report.html", doc.encode("utf-8"))
