"""``rnnlab presets``: the shipped presets, one line each with its description."""

from __future__ import annotations

HELP = "list the shipped presets"
SHARED: tuple[str, ...] = ()
OVERRIDES = False


def add_arguments(p) -> None:
    """No options of its own."""


def run(args) -> int:
    from rnnlab.training.config import list_presets

    presets = list_presets()
    width = max(map(len, presets))
    for name, description in presets.items():
        print(f"{name:<{width}}  {description}")
    return 0
