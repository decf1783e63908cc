"""``rnnlab report RUN [RUN ...] [--out DIR] [--title T]``: one static HTML (and Markdown) page
for one or more run folders (:func:`rnnlab.evaluation.report.render_report`); prints its
path. Reports read run folders and never train."""

from __future__ import annotations

from pathlib import Path

HELP = "HTML + Markdown report of runs"
SHARED: tuple[str, ...] = ()
OVERRIDES = False


def add_arguments(p) -> None:
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run folder(s)")
    p.add_argument(
        "--out", type=Path, default=None, metavar="DIR",
        help="output folder (default: RUN/report, or the runs' common parent)",
    )  # fmt: skip
    p.add_argument("--title", default=None, help="page title")


def run(args) -> int:
    from rnnlab.evaluation.report import render_report

    print(render_report(args.runs, args.out, args.title))
    return 0
