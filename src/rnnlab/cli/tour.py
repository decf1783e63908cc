"""``rnnlab tour [--quick] [--out DIR] [--parts a,b,..]``: the guided tour (what ``make run``
runs): the chapter, one part per section, on the embedded 8x8 digits, then one report page
(:mod:`rnnlab.tour`)."""

from __future__ import annotations

from .common import UsageError

HELP = "guided tour"
SHARED = ("no_progress",)
OVERRIDES = False


def add_arguments(p) -> None:
    p.add_argument("--quick", action="store_true", help="smoke version (for tests)")
    p.add_argument("--out", default=None, help="folder for the runs (default runs/tour-TIME)")
    p.add_argument("--parts", default=None, help="comma-separated subset of the parts")
    p.add_argument("--no-report", action="store_true", help="skip the HTML page")


def run(args) -> int:
    try:
        import rnnlab.tour as tour
    except ImportError as e:
        raise UsageError(f"the tour is not available ({e})") from None
    parts = None
    if args.parts is not None:
        parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    tour.run_tour(
        parts, args.out, quick=args.quick, report=not args.no_report,
        progress=not getattr(args, "no_progress", False),
    )  # fmt: skip
    return 0
