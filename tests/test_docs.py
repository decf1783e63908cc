"""Every code block of the README and the documentation site runs, so none can rot.

- Python blocks (```` ```python ````) of one page run in order in one namespace, in a fresh
  folder, as a reader would paste them. A block may be preceded by a hidden setup comment,
  ``<!-- test: setup ... -->`` (code run first, e.g. tiny data), or be skipped with
  ``<!-- test: skip: REASON -->``, where a reason is required (code in another library, TF1).
- Shell blocks (no language, ``bash``, ``sh``, ``console``): each ``rnnlab ...`` line (also
  after ``python -m``, ``torchrun ... -m``) must parse with the real parser, name an existing
  verb and preset, and every ``--section.key=value`` must be a valid key with a valid value
  for that preset (what ``rnnlab config`` checks); ``make X`` must be a Makefile target and
  ``python benchmarks/x.py`` / ``examples/x.py`` an existing file.
- ``mkdocs build --strict`` succeeds (broken links, missing pages and docstring errors fail).

Generated reference pages (``docs/hooks.py``) are checked against the parser and config.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)``` *$",
                   re.MULTILINE | re.DOTALL)  # fmt: skip
DIRECTIVE = re.compile(
    r"<!--\s*test:\s*(?P<kind>setup|skip)[ \t]*:?(?P<text>.*?)-->\s*$", re.DOTALL
)
SHELL = ("", "bash", "sh", "shell", "console")
SCRIPTS = ("benchmarks/", "examples/")
# RUN, PRESET, ae-KIND, <run>: left for the reader to fill in
VALUE = "<shell variable>"  # whatever $R or $D holds: accepted where anything could stand
PLACEHOLDER = re.compile(r"^[A-Z][A-Z_]*$|^<.*>$|(^|[-_])[A-Z]{3,}($|[-_])")


def _blocks(page: Path) -> list[tuple[int, str, str, tuple[str, str] | None]]:
    """(line, language, code, directive) of every fenced block of ``page``."""
    text = page.read_text(encoding="utf-8")
    found = []
    for m in FENCE.finditer(text):
        before = text[: m.start()].rstrip()
        directive = None
        if before.endswith("-->"):
            start = before.rfind("<!--")
            d = DIRECTIVE.match(before[start:])
            if d:
                directive = (d.group("kind"), textwrap.dedent(d.group("text")).strip())
        indent = len(m.group("indent"))
        body = "\n".join(line[indent:] for line in m.group("body").splitlines())
        language = m.group("info").strip().split(" ")[0].lower()
        found.append((text[: m.start()].count("\n") + 1, language, body, directive))
    return found


def _rel(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


# pages whose Python blocks a test of their own runs, in order, with more checks than here
RUN_ELSEWHERE = {"docs/guides/own_data.md": "tests/test_guide_own_data.py"}
PYTHON_PAGES = [p for p in PAGES if any(b[1] in ("python", "py") for b in _blocks(p))
                and not (ROOT / RUN_ELSEWHERE.get(_rel(p), "-")).is_file()]  # fmt: skip


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=_rel)
def test_python_blocks_run(page, tmp_path, monkeypatch):
    import torch

    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RNNLAB_DATA", str(tmp_path / "no-data"))  # never a real download
    namespace: dict = {"__name__": "__docs__"}
    for line, language, code, directive in _blocks(page):
        if language not in ("python", "py"):
            continue
        where = f"{_rel(page)}:{line}"
        if directive and directive[0] == "skip":
            assert directive[1], f"{where}: a skipped block must say why"
            continue
        if directive and directive[0] == "setup":
            exec(compile(directive[1], f"{where} (setup)", "exec"), namespace)  # noqa: S102
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(code, where, "exec"), namespace)  # noqa: S102
        except Exception as err:
            pytest.fail(f"{where}: the Python block fails: {type(err).__name__}: {err}")


def _commands(code: str) -> list[list[str]]:
    """Shell command lines of a block, continuation lines joined, comments dropped."""
    lines, out = code.replace("\\\n", " ").splitlines(), []
    for line in lines:
        line = line.strip().removeprefix("$ ")
        if not line or line.startswith("#"):
            continue
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:
            continue  # not a command (a table, output)
        tokens = [VALUE if t.startswith("$") else t for t in tokens]  # a shell variable
        if tokens:
            out.append(tokens)
    return out


def _rnnlab_args(tokens: list[str]) -> list[str] | None:
    """The arguments after ``rnnlab`` (or ``python -m rnnlab``, ``torchrun ... -m rnnlab``)."""
    words = list(tokens)
    while words and re.match(r"^[A-Z_]+=", words[0]):  # OMP_NUM_THREADS=1 rnnlab ...
        words.pop(0)
    if words and words[0].split("/")[-1] == "rnnlab":
        return words[1:]
    if words and (words[0].endswith("python") or words[0] == "torchrun"):
        for i in range(len(words) - 1):
            if words[i] == "-m" and words[i + 1] == "rnnlab":
                return words[i + 2 :]
    return None


def check_rnnlab(args: list[str]) -> None:
    """Raise AssertionError unless ``rnnlab ARGS`` parses and resolves (nothing is run)."""
    from rnnlab.cli import build_parser
    from rnnlab.cli.common import UsageError
    from rnnlab.training.config import apply_overrides, list_presets, load_preset

    assert all(a not in ("|", "[", "]", "...") for a in args), f"pseudo-syntax in {args}"
    if args[:1] in (["--version"], ["--help"], ["-h"]):
        return
    parser = build_parser()
    try:
        with contextlib.redirect_stderr(io.StringIO()) as err:
            ns, rest = parser.parse_known_args(args)
    except SystemExit:
        raise AssertionError(f"does not parse: {err.getvalue().strip()}") from None
    except UsageError as e:
        raise AssertionError(f"does not parse: {e}") from None
    assert ns.verb, "no verb"
    if any(a in ("-h", "--help") for a in args):
        return
    overrides = [a for a in rest if a.startswith("--") and "=" in a]
    stray = [a for a in rest if a not in overrides and a != VALUE]
    assert not stray, f"unknown arguments {stray}"
    assert not overrides or ns._module.OVERRIDES, f"`{ns.verb}` takes no --key=value"
    overrides = [a for a in overrides if not PLACEHOLDER.search(a.split("=", 1)[1])]
    preset = getattr(ns, "preset", None)
    if preset is not None and not PLACEHOLDER.search(preset) and not preset.endswith(".toml"):
        assert preset in list_presets(), f"no preset {preset!r}"
        apply_overrides(load_preset(preset), overrides)  # ConfigError on a bad key or value
    space = getattr(ns, "space", None)
    if isinstance(space, str) and not PLACEHOLDER.search(space) and not space.endswith(".toml"):
        assert space in list_presets() or (ROOT / "src/rnnlab/configs" / f"{space}.toml").is_file()


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][\w-]*):", text, re.MULTILINE))


def _shell_cases() -> list[tuple[str, list[str]]]:
    cases = []
    for page in PAGES:
        for line, language, code, directive in _blocks(page):
            if language in SHELL and not (directive and directive[0] == "skip"):
                for tokens in _commands(code):
                    cases.append((f"{_rel(page)}:{line}", tokens))
    return cases


SHELL_CASES = _shell_cases()


def test_every_rnnlab_line_in_the_docs_parses_and_resolves():
    from rnnlab.training.config import ConfigError

    checked, failures = 0, []
    targets = _make_targets()
    for where, tokens in SHELL_CASES:
        args = _rnnlab_args(tokens)
        try:
            if args is not None:
                check_rnnlab(args)
                checked += 1
            elif tokens[0] == "make":
                missing = [t for t in tokens[1:] if "=" not in t and t not in targets]
                assert not missing, f"no Makefile target {missing}"
            elif any(t.startswith(SCRIPTS) and t.endswith(".py") for t in tokens[:3]):
                script = next(t for t in tokens[:3] if t.startswith(SCRIPTS))
                assert (ROOT / script).is_file(), f"no file {script}"
        except (AssertionError, ConfigError) as err:
            failures.append(f"{where}: {' '.join(tokens)}\n    -> {err}")
    assert not failures, "\n".join(failures)
    assert checked >= 20  # the README and guides hold many


def test_the_checker_refuses_what_it_should():
    from rnnlab.training.config import ConfigError

    check_rnnlab(["train", "gru-rows", "--train.epochs=5", "--data-dir", "../shared/datasets"])
    check_rnnlab(["evaluate", "RUN"])
    for bad, error in (
        (["trian", "gru-rows"], AssertionError),  # no such verb
        (["train", "gru-rowz"], AssertionError),  # no such preset
        (["train", "gru-rows", "--train.epoch=5"], ConfigError),  # no such key
        (["train", "gru-rows", "--train.epochs=five"], ConfigError),  # bad value
        (["evaluate", "RUN", "--train.lr=1"], AssertionError),  # evaluate takes no overrides
        (["evaluate", "RUN", "|", "predict"], AssertionError),  # pseudo-syntax
    ):
        with pytest.raises(error):
            check_rnnlab(bad)


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_references_cover_every_verb_option_and_key():
    import dataclasses

    from rnnlab.cli import VERBS, build_parser
    from rnnlab.training.config import Config, list_presets

    hooks = _hooks()
    cli = hooks.cli_reference()
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for verb in VERBS:
        assert f"## `rnnlab {verb}`" in cli
        for action in sub.choices[verb]._actions:
            for flag in [] if isinstance(action, argparse._HelpAction) else action.option_strings:
                assert f"`{flag}`" in cli, (verb, flag)
    config = hooks.config_reference()
    for section in dataclasses.fields(Config):
        for f in dataclasses.fields(section.default_factory):
            assert f"| `{section.name}.{f.name}` |" in config
    assert "| `train.optimizer` | `str` | `'adam'` | `sgd` \\| `adam`" in config
    assert all(f"| `{name}` |" in hooks.presets_reference() for name in list_presets())
    page = "intro\n<!-- generated: presets -->\nend\n"
    assert "| `lstm-rows` |" in hooks.expand(page) and "<!--" not in hooks.expand(page)
    rendered = "<p>See :class:<code>~rnnlab.RNN</code> and :func:<code>f</code>::</p>"
    assert hooks.clean_roles(rendered) == "<p>See <code>rnnlab.RNN</code> and <code>f</code>:</p>"
    with pytest.raises(ValueError, match="unknown generated section"):
        hooks.expand("<!-- generated: nope -->")
    # the pages that hold the markers exist
    markers = {p.name: p.read_text() for p in (ROOT / "docs" / "reference").glob("*.md")}
    for name in ("cli", "config", "presets"):
        assert any(f"<!-- generated: {name} -->" in t for t in markers.values()), name


def test_mkdocs_build_strict(tmp_path):
    if importlib.util.find_spec("mkdocs") is None and not os.environ.get("CI"):
        pytest.skip("the `docs` extra (mkdocs-material, mkdocstrings) is not installed")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    pages = ("index.html", "reference/cli.html", "reference/config.html",
             "reference/api/layers.html", "guides/recurrent-layers.html")  # fmt: skip
    for page in pages:
        assert (tmp_path / "site" / page).is_file(), page
    api = (tmp_path / "site" / "reference/api/layers.html").read_text()
    assert "Bidirectional" in api and "weight_hh" in api  # rendered from docstrings
