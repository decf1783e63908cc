"""Command-line pieces shared by the benchmark scripts (imported as a sibling module)."""

from __future__ import annotations

import argparse
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def add_data_dir(ap: argparse.ArgumentParser) -> None:
    """Add ``--data-dir`` (alias ``--data-root``): the IDX folder, default ../shared/datasets."""
    ap.add_argument(
        "--data-dir",
        "--data-root",
        dest="data_dir",
        default=os.path.join(HERE, "..", "..", "shared", "datasets"),
        help="folder with the IDX files, as `rnnlab --data-dir` (--data-root: the old name)",
    )
