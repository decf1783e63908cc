"""``rnnlab tour`` (what ``make run`` runs): the chapter, one part per section, on the data
embedded in the package (scikit-learn's 8x8 digits), in a few minutes on a laptop CPU.

Each part trains through the same engine as ``rnnlab train`` and writes ordinary run folders
(``config.json``, ``metrics.jsonl``, ``samples/``, ...) under ``--out``; at the end one HTML
page (``report.html``, plus Markdown) shows them all, rendered by ``rnnlab report``.
``--quick`` shrinks every part to a smoke test (the test suite runs it).
"""

from __future__ import annotations

import time
from pathlib import Path

from tqdm import tqdm

from .common import Tour
from .generative_parts import GENERATIVE_PARTS
from .sequence_parts import SEQUENCE_PARTS
from .text_part import TEXT_PARTS

PARTS = {**SEQUENCE_PARTS, **TEXT_PARTS, **GENERATIVE_PARTS}
ORDER = [name for name in (
    "summary", "classifiers", "dynamic_rnn", "memory", "text", "autoencoders", "vae", "gan",
    "adversarial",
) if name in PARTS]  # fmt: skip


def run_tour(
    parts: list[str] | None = None,
    out: str | Path | None = None,
    *,
    quick: bool = False,
    report: bool = True,
    progress: bool = True,
) -> Path:
    """Run ``parts`` (default :data:`ORDER`) into ``out`` (default ``runs/tour-TIME``), then
    render the report page unless ``report=False``. Returns the folder. The command line is
    ``rnnlab tour`` (:mod:`rnnlab.cli.tour`)."""
    parts = list(ORDER if parts is None else parts)
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise ValueError(f"--parts: unknown part(s) {unknown}; choose from {ORDER}")
    out = Path(out or f"runs/tour-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    tour = Tour(out=out, quick=quick)
    start = time.perf_counter()
    bar = tqdm(parts, desc="tour", disable=not progress, dynamic_ncols=True)
    for name in bar:
        bar.set_description(f"tour: {name}")
        t0 = time.perf_counter()
        first_run = len(tour.runs)
        lines = PARTS[name](tour)
        tour.record_part(name, PARTS[name], first_run, lines)
        tqdm.write(f"== {name} ({time.perf_counter() - t0:.0f} s) ==")
        for line in lines:
            tqdm.write(line)
    bar.close()
    print(f"tour finished in {time.perf_counter() - start:.0f} s; runs in {out}")
    if report and tour.runs:
        from rnnlab.evaluation.report import render_report

        banner = None
        if quick:
            banner = ("Quick tour (--quick): every part is shrunk to a smoke test, so the "
                      "numbers below are not results; `rnnlab tour` trains for real.")  # fmt: skip
        page = render_report(tour.runs, out_dir=out, title="rnnlab tour", groups=tour.groups,
                             notes=tour.notes, banner=banner)  # fmt: skip
        print(f"report: {page}")
    return out
