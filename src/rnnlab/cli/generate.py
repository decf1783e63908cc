"""``rnnlab generate RUN [--prime TEXT | --prime-file FILE] [--length 500] [--temperature 0.8]
[--top-k 40] [--seed 0] [--until STRING]``: text from a language-model run.

The prompt is read once and the model then writes one token at a time with its carried state
(:func:`rnnlab.models.generation.generate`, O(length)); ``--temperature 0`` is greedy,
``--until "\\n"`` stops at the end of the line (sentence completion). Prints the prompt
followed by the continuation. The run's saved vocabulary is used unchanged: a prompt
character (or word) it does not hold is refused, naming it.
"""

from __future__ import annotations

from .common import UsageError, non_negative, open_run, positive, seed

HELP = "text from a language-model run (prime, temperature, top-k, until)"
SHARED = ("checkpoint",)
OVERRIDES = False


def _unescape(text: str) -> str:
    """``\\n`` and ``\\t`` typed on a command line as the characters they name."""
    return text.replace("\\n", "\n").replace("\\t", "\t")


def add_arguments(p) -> None:
    p.add_argument("run", help="a run folder of the language-model family")
    p.add_argument("--prime", default="", help="the prompt (\\n allowed; default: a line break)")
    p.add_argument("--prime-file", default=None, help="read the prompt from this UTF-8 file")
    p.add_argument("--length", type=positive, default=500, help="tokens to write (default 500)")
    p.add_argument("--temperature", type=non_negative, default=0.8,
                   help="softmax temperature; 0 = greedy (default 0.8)")  # fmt: skip
    p.add_argument("--top-k", type=int, default=0, help="sample among the k most likely (0 = all)")
    p.add_argument("--seed", type=seed, default=0, help="sampling seed (default 0)")
    p.add_argument("--until", default=None, help="stop once this string is written (\\n allowed)")


def run(args) -> int:
    from rnnlab.data.text import read_text
    from rnnlab.models.generation import generate
    from rnnlab.training.families.language_model import vocabulary

    if args.top_k < 0:
        raise UsageError(f"--top-k must be >= 0 (0 = no limit), got {args.top_k}")
    if args.until is not None and not args.until:
        raise UsageError("--until must be a non-empty string")
    prime = read_text(args.prime_file) if args.prime_file else _unescape(args.prime)
    cfg, model = open_run(args.run, getattr(args, "checkpoint", None))
    if cfg.model.family != "language-model":
        raise UsageError(
            f"RUN {args.run} is a {cfg.model.family} run; generate takes language-model runs"
        )
    vocab = vocabulary(cfg)
    until = _unescape(args.until) if args.until is not None else None
    text = generate(model, vocab, prime, args.length, temperature=args.temperature,
                    top_k=args.top_k, seed=args.seed, until=until)  # fmt: skip
    print(prime + text)
    return 0
