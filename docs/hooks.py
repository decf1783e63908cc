"""mkdocs hooks: the reference pages that are generated, so they cannot drift from the code.

A page holds a marker line, ``<!-- generated: NAME -->``, that this hook replaces, at build
time, with Markdown made from the code itself:

- ``cli``: every verb of ``rnnlab`` from the one argparse parser
  (:func:`rnnlab.cli.build_parser`): its description, usage line and every option with its
  default and help;
- ``config``: every key of every config section from the dataclasses of
  :mod:`rnnlab.training.config` (:func:`~rnnlab.training.config.reference`), with its type,
  default, accepted values and the one-line meaning that ``rnnlab config`` prints;
- ``presets``: the shipped presets and their descriptions.

``tests/test_docs.py`` checks the same functions against the parser and dataclasses.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
if str(SRC) not in sys.path:  # the checkout's rnnlab, installed or not
    sys.path.insert(0, str(SRC))

MARKER = re.compile(r"^<!-- generated: (\w+) -->$", re.MULTILINE)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _verbs() -> dict[str, argparse.ArgumentParser]:
    from rnnlab.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _default(action: argparse.Action) -> str:
    if action.default in (None, argparse.SUPPRESS) or isinstance(
        action, (argparse._StoreTrueAction, argparse._HelpAction)
    ):
        return ""
    return f"`{action.default}`"


def cli_reference() -> str:
    """Markdown for every verb: description, usage and an options table."""
    out = []
    for name, p in _verbs().items():
        out.append(f"## `rnnlab {name}`\n")
        description = (p.description or "").strip()
        if description:
            out.append(description.replace("``", "`") + "\n")
        usage = " ".join(p.format_usage().split())
        usage = usage.removeprefix("usage: ")
        out.append(f"```text\n{usage}\n```\n")
        rows = []
        for action in p._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            flags = ", ".join(f"`{s}`" for s in action.option_strings) or f"`{action.dest}`"
            value = ""
            if action.option_strings and action.nargs != 0:
                value = f"`{action.metavar or action.dest.upper()}`"
            if action.choices:
                value = " \\| ".join(f"`{c}`" for c in action.choices)
            help_text = (action.help or "").replace("%(default)s", str(action.default))
            rows.append(f"| {flags} | {value} | {_default(action)} | {_cell(help_text)} |")
        if rows:
            out.append("| argument | value | default | meaning |\n|---|---|---|---|")
            out.extend(rows)
            out.append("")
    return "\n".join(out)


def config_reference() -> str:
    """Markdown for every config section: a table of its keys
    (:func:`rnnlab.training.config.reference`, what ``rnnlab config`` prints)."""
    from rnnlab.training.config import reference

    out, section = [], None
    for info in reference():
        if info.section != section:
            section = info.section
            out += ["", f"## `[{section}]`\n", "| key | type | default | accepted | meaning |",
                    "|---|---|---|---|---|"]  # fmt: skip
        accepted = " \\| ".join(f"`{c}`" for c in info.choices or ())
        out.append(f"| `{section}.{info.name}` | `{_cell(info.type)}` | `{info.default!r}` | "
                   f"{accepted} | {_cell(info.help)} |")  # fmt: skip
    return "\n".join(out).strip() + "\n"


def presets_reference() -> str:
    """Markdown table of the shipped presets (``rnnlab presets``)."""
    from rnnlab.training.config import list_presets

    rows = [f"| `{name}` | {_cell(text)} |" for name, text in sorted(list_presets().items())]
    return "| preset | what it trains |\n|---|---|\n" + "\n".join(rows) + "\n"


GENERATORS = {"cli": cli_reference, "config": config_reference, "presets": presets_reference}


def expand(markdown: str) -> str:
    """Replace every ``<!-- generated: NAME -->`` line by its generated Markdown."""

    def one(match: re.Match) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise ValueError(f"unknown generated section {name!r}; known: {sorted(GENERATORS)}")
        return GENERATORS[name]()

    return MARKER.sub(one, markdown)


def on_page_markdown(markdown: str, page, config, files) -> str:  # mkdocs hook
    return expand(markdown)


# The docstrings are written for Sphinx as much as for Markdown: ":class:`RNN`" and a
# paragraph ending in "::" before a literal block. mkdocstrings renders them as Markdown,
# so the role's name and the second colon would show; the API pages drop them.
ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj|math):(<code>)~?")
LITERAL = re.compile(r"::(</p>)")


def clean_roles(html: str) -> str:
    """``:class:<code>~x.Y</code>`` -> ``<code>x.Y</code>``; a paragraph's final "::" -> ":"."""
    return LITERAL.sub(r":\1", ROLE.sub(r"\1", html))


def on_page_content(html: str, page, config, files) -> str:  # mkdocs hook
    return clean_roles(html)
