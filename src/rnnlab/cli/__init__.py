"""``rnnlab VERB ...``: the command line. ONE argparse parser, a verb table, one error table.

    rnnlab --version                            the installed version
    rnnlab presets                              list the shipped presets
    rnnlab config PRESET [--section.key=value ...]   the resolved config as commented TOML
    rnnlab train PRESET [--section.key=value ...] [--dry-run] [--resume RUN]
    rnnlab evaluate RUN                         test metrics of a run folder
    rnnlab predict RUN INPUT                    classes for images in an .npy or IDX file
    rnnlab summary PRESET [--key=value ...]     Keras-format model table
    rnnlab datasets [download NAME]             where each dataset is / fetch one
    rnnlab attack RUN [--method fgsm|bim|pgd] [--eps E | --eps-list E,E,..] [--steps N]
                                                robust accuracy -> RUN/robustness.json, figure
    rnnlab gradients RUN|PRESET [--layer L] [--batch N] [--out DIR]
                                                ||dL/dh_t|| table -> gradients.json/.png
    rnnlab gates RUN [--index I] [--layer L]    gate heatmaps -> RUN/gates/
    rnnlab report RUN [RUN ...] [--out DIR] [--title T]   HTML + Markdown report
    rnnlab tune PRESET --space SPACE.toml --trials N ...  Optuna study (rnnlab.tune)
    rnnlab sample RUN --n 64 --out grid.png [--label L]    samples of a VAE/GAN/VAE-GAN run
    rnnlab generate RUN --prime "ROMEO:" [--length 500] [--temperature 0.8] [--top-k 40]
                  [--seed 0] [--until "\\n"]     text from a language-model run
    rnnlab tour                                 the guided tour (rnnlab.tour)

Options follow the verb, and each verb takes only the options it uses (``rnnlab VERB
--help`` lists them). Bad input prints one line ``rnnlab: error: ...`` to stderr and exits
with status 2; a run that stops on a non-finite loss exits with 1; output cut short by a
closed pipe (``rnnlab presets | head``) ends quietly with 141, as a C tool killed by SIGPIPE.

Adding a verb = one module in this package + one row in :data:`VERBS`. The module defines
``HELP`` (one line), ``SHARED`` (the names of the shared options of :mod:`.common` it uses),
``OVERRIDES`` (whether it takes ``--section.key=value``), ``add_arguments(parser)`` for its
own options and ``run(args) -> int``; ``args.overrides`` holds its ``--section.key=value``
flags and ``args.argv`` the full command line. Exceptions map to exit codes in
:mod:`.errors`; a verb raises :class:`~rnnlab.cli.common.UsageError` (or any error there) and
never prints its own error line.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import errors
from .common import SHARED, Parser, UsageError

__all__ = ["VERBS", "main"]

VERBS = {
    "presets": "rnnlab.cli.presets",
    "config": "rnnlab.cli.config",
    "train": "rnnlab.cli.train",
    "evaluate": "rnnlab.cli.evaluate",
    "predict": "rnnlab.cli.predict",
    "summary": "rnnlab.cli.summary",
    "datasets": "rnnlab.cli.datasets",
    "attack": "rnnlab.cli.attack",
    "gradients": "rnnlab.cli.gradients",
    "gates": "rnnlab.cli.gates",
    "report": "rnnlab.cli.report",
    "tune": "rnnlab.cli.tune",
    "sample": "rnnlab.cli.sample",
    "generate": "rnnlab.cli.generate",
    "ensemble": "rnnlab.cli.ensemble",
    "tour": "rnnlab.cli.tour",
}
"""Verb name -> the module that implements it (see the package docstring)."""


def _version() -> str:
    from rnnlab import __version__

    return f"rnnlab {__version__}"


def build_parser() -> Parser:
    """The one parser: a sub-parser per verb, built from each verb module's declarations."""
    parser = Parser(
        prog="rnnlab",
        description="Train, evaluate and inspect the chapter's recurrent models.",
        epilog=__doc__.split("\n\n", 1)[1].split("\n\nAdding a verb", 1)[0].replace("``", "`"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=_version())
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    for name, module_name in VERBS.items():
        module = importlib.import_module(module_name)
        p = verbs.add_parser(
            name, help=module.HELP, description=(module.__doc__ or module.HELP).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False,
        )  # fmt: skip
        p.set_defaults(_module=module)
        for flag in module.SHARED:
            args, kwargs = SHARED[flag]
            p.add_argument(*args, **kwargs)
        module.add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 training stopped, 2 bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
            raise UsageError(
                f"options follow the VERB: `rnnlab VERB {argv[0]} ...`, got {argv[0]} first"
            )
        parser = build_parser()
        try:
            args, rest = parser.parse_known_args(argv)
        except SystemExit as e:  # --help / --version printed their text
            return e.code if isinstance(e.code, int) else 0
        if args.verb is None:
            raise UsageError("a VERB is required: " + ", ".join(VERBS))
        module = args._module
        overrides = [a for a in rest if a.startswith("--") and "=" in a]
        stray = [a for a in rest if a not in overrides]
        if stray or (overrides and not module.OVERRIDES):
            raise UsageError(
                f"unrecognized arguments: {' '.join(stray or overrides)} "
                f"(see `rnnlab {args.verb} --help`)"
            )
        args.overrides, args.argv = overrides, argv
        return module.run(args)
    except BaseException as e:  # noqa: BLE001 -- the one place errors become exit codes
        return errors.report(e)


if __name__ == "__main__":
    sys.exit(main())
