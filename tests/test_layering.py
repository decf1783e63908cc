"""The layering of ``src/rnnlab`` holds, for every import: module-level, inside functions,
relative or absolute. Each folder (or top-level module) has a rank and imports only from
smaller ranks; ``utils`` and the package root (``__version__``) may be imported anywhere.

    data 0 -> layers 1 -> losses, attacks 2 -> models 3 -> training 4 -> evaluation 5
           -> tune, tour 6 -> cli 7

losses and attacks are pure functions below models (a model's likelihood is a loss); the
CLI sits on top because its verbs run tune studies and the tour. ``__main__.py`` files are
entry points that nothing imports, so they may call the CLI.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rnnlab"
RANKS = {
    "data": 0, "layers": 1, "losses": 2, "attacks": 2, "models": 3, "training": 4,
    "evaluation": 5, "tune": 6, "tour": 6, "cli": 7,
}  # fmt: skip
ANYWHERE = {"utils", "__init__", "__version__"}


def _module_parts(path: Path, root: Path) -> list[str]:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imports(path: Path, root: Path):
    """``(line, imported module)`` for every import in ``path``, relative ones resolved."""
    parts = _module_parts(path, root)
    package = parts if path.name == "__init__.py" else parts[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module == root.name:  # from rnnlab import attacks, __version__
                for alias in node.names:
                    yield node.lineno, f"{module}.{alias.name}"
            else:
                yield node.lineno, module


def _unit(parts: list[str]) -> str:
    return parts[1] if len(parts) > 1 else "__init__"


def violations(root: Path = SRC) -> list[str]:
    """Every import in the package at ``root`` against :data:`RANKS`, as readable lines."""
    out = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "__main__.py":
            continue
        here = _unit(_module_parts(path, root))
        if here in ANYWHERE:
            if here == "utils":  # utils itself stays at the bottom
                out += [
                    f"{path.relative_to(root.parent)}:{line}: utils imports {module}"
                    for line, module in _imports(path, root)
                    if module.split(".")[0] == root.name and _unit(module.split(".")) != "utils"
                ]
            continue
        if here not in RANKS:
            out.append(f"{path.relative_to(root.parent)}: `{here}` has no rank in RANKS")
            continue
        for line, module in _imports(path, root):
            parts = module.split(".")
            if parts[0] != root.name:
                continue
            there = _unit(parts)
            if there == here or there in ANYWHERE:
                continue
            if there not in RANKS or RANKS[there] >= RANKS[here]:
                out.append(
                    f"{path.relative_to(root.parent)}:{line}: {here} ({RANKS[here]}) imports "
                    f"{module} ({RANKS.get(there, 'no rank')})"
                )
    return out


def test_every_import_follows_the_layering():
    assert violations() == []


@pytest.mark.parametrize(
    "where, source, expected",
    [
        ("training/loop.py", "def f():\n    from rnnlab.evaluation import plots\n",
         "training (4) imports rnnlab.evaluation"),
        ("training/loop.py", "def f():\n    from ..evaluation import plots\n",
         "training (4) imports rnnlab.evaluation"),
        ("models/vae.py", "from rnnlab import tour\n", "models (3) imports rnnlab.tour"),
        ("tune/study.py", "import rnnlab.tour.common\n", "tune (6) imports rnnlab.tour"),
        ("losses.py", "from .attacks import pgd\n", "losses (2) imports rnnlab.attacks"),
        ("utils.py", "def f():\n    import rnnlab.data\n", "utils imports rnnlab.data"),
        ("plugins/x.py", "", "`plugins` has no rank"),
    ],
)  # fmt: skip
def test_the_walk_catches_what_it_must(tmp_path, where, source, expected):
    """The checker itself fails on each kind of bad import (so a pass above means something),
    and passes the same files once they import downwards."""
    root = tmp_path / "rnnlab"
    (root / where).parent.mkdir(parents=True, exist_ok=True)
    (root / where).write_text(source)
    found = violations(root)
    assert len(found) == 1 and expected in found[0], found
    (root / where).write_text("from rnnlab.utils import seed_everything\nimport torch\n")
    assert violations(root) == ([] if not where.startswith("plugins") else found)
