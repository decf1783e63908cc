"""``rnnlab config PRESET [--section.key=value ...]``: the fully resolved configuration (the
preset with the overrides applied, exactly what ``rnnlab train`` would run) as TOML: every
key of every section with its value and a one-line comment saying what it means. A key
whose value is unset (``None``) is written commented out, since TOML has no null. The output
loads back as a preset: ``rnnlab config lstm-rows --train.lr=3e-3 > my.toml; rnnlab train
my.toml``."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re

from .common import resolve_config

HELP = "print a preset's resolved config as commented TOML (every key)"
SHARED = ("device", "data_dir")
OVERRIDES = True


def add_arguments(p) -> None:
    p.add_argument("preset", nargs="?", help="a shipped preset (`rnnlab presets`) or a .toml")
    p.add_argument("--resume", metavar="RUN", default=None, help="the config of run folder RUN")


@functools.cache
def _source_comments(cls: type) -> dict[str, str]:
    """``{field: trailing comment}`` from ``cls``'s source, plus a comment block just above a
    field, used where a field carries no ``metadata["help"]``."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return {}
    out, above = {}, []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("# ").strip())
            continue
        m = re.match(r"\s+(\w+)\s*:[^#]*?(?:#\s*(.*))?$", line)
        if m and not stripped.startswith(("def ", "@", "class ")):
            out[m.group(1)] = (m.group(2) or " ".join(above)).strip()
        above = []
    return out


def field_help(cls: type, f: dataclasses.Field) -> str:
    """One line saying what field ``f`` of config section ``cls`` means."""
    text = f.metadata.get("help") if f.metadata else None
    text = text or _source_comments(cls).get(f.name, "")
    choices = f.metadata.get("choices") if f.metadata else None
    if text and isinstance(choices, (tuple, list)) and choices and "|" not in text:
        text = f"{text} ({' | '.join(map(str, choices))})"
    if not text:  # no words for it yet: at least its type
        text = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    return " ".join(str(text).split())


def _toml(value) -> str:
    from rnnlab.tune.space import toml_value  # the one TOML value writer

    return toml_value(value)


def config_toml(cfg) -> str:
    """``cfg`` as commented TOML, every key of every section."""
    from rnnlab.training.config import SECTIONS

    lines = [
        f"description = {_toml(cfg.run.description)}  # one line, as `rnnlab presets` lists it"
    ]
    for section, cls in SECTIONS.items():
        lines += ["", f"[{section}]"]
        for f in dataclasses.fields(cls):
            value = getattr(getattr(cfg, section), f.name)
            note = field_help(cls, f)
            comment = f"  # {note}" if note else ""
            if value is None:
                lines.append(f"# {f.name} = (unset){comment}")
            else:
                lines.append(f"{f.name} = {_toml(value)}{comment}")
    return "\n".join(lines) + "\n"


def run(args) -> int:
    print(config_toml(resolve_config(args, args.preset)), end="")
    return 0
