"""``rnnlab datasets [download NAME]``: where each dataset is found (or how to get it), or
fetch one (checksummed, written atomically)."""

from __future__ import annotations

from .common import UsageError

HELP = "list or download datasets"
SHARED = ("data_dir",)
OVERRIDES = False


def add_arguments(p) -> None:
    p.add_argument("action", nargs="?", choices=("download",))
    p.add_argument("name", nargs="?")


def run(args) -> int:
    from rnnlab.data import describe, download

    root = getattr(args, "data_dir", None)
    if args.action == "download":
        if not args.name:
            raise UsageError(
                "`datasets download` needs a NAME, e.g. `rnnlab datasets download mnist`"
            )
        print(f"{args.name}: {download(args.name, root)}")
        return 0
    for row in describe(root):
        sizes = ", ".join(f"{k} {v if v is not None else '-'}" for k, v in row["splits"].items())
        where = row["location"] or f"missing: {row['how_to_get']}"
        if "error" in row:
            where += f" (error: {row['error']})"
        print(f"{row['name']:<14} {row['classes']:>3} classes  {sizes:<24} {where}")
    return 0
