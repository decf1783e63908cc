"""Tour part for the text half of the chapter: a character-level LSTM language model trained
for a few seconds on rnnlab's own docstrings (text every machine that has rnnlab has; nothing
is downloaded), which then completes a prompt, stateful and one character at a time."""

from __future__ import annotations

import ast
from pathlib import Path

from rnnlab.training.experiment import load_run
from rnnlab.utils import atomic_write_text

from .common import Tour

PROMPT = "The state "


def docstring_corpus() -> str:
    """Every module, class and function docstring of the installed ``rnnlab`` package, in file
    order, one blank line apart (about 200 KB)."""
    root = Path(__file__).resolve().parents[1]
    docs = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    docs.append(doc.strip())
    return "\n\n".join(docs) + "\n"


def part_text(tour: Tour) -> list[str]:
    """A character-level LSTM language model on rnnlab's own docstrings completes a prompt."""
    from rnnlab.models.generation import generate
    from rnnlab.training.families.language_model import vocabulary

    corpus = tour.folder("text") / "docstrings.txt"
    text = docstring_corpus()
    atomic_write_text(corpus, text)
    budget = 3 if tour.quick else 20
    r = tour.train("text", "char-shakespeare", "docstrings-lstm", [
        "--data.dataset=text", f"--data.path={corpus}", "--model.hidden_size=128",
        "--model.embed_dim=32", "--data.batch_size=32", "--data.bptt=64", "--train.epochs=50",
        f"--train.time_budget={budget}",
    ])  # fmt: skip
    cfg, model = load_run(r["run"])
    vocab = vocabulary(cfg)
    completion = generate(model, vocab, PROMPT, 200, temperature=0.5, seed=0, until=".")
    atomic_write_text(r["run"] / "completion.txt", PROMPT + completion + "\n")
    return [
        f"corpus: rnnlab's docstrings, {len(text):,} characters, {len(vocab)} symbols",
        f"trained {budget} s: validation {r['test_loss']:.3f} nats/char "
        f"({r['test_bpc']:.3f} bits/char; uniform would be {len(vocab)} -> "
        f"{__import__('math').log(len(vocab)):.2f} nats)",
        f"completion (T=0.5, until '.'): {PROMPT}{completion!r}",
    ]


TEXT_PARTS = {"text": part_text}
